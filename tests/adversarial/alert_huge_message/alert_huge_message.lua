-- adversarial/alert_huge_message
-- Attacks: storage and every consumer of alerts (feed, webhook, log), with a
-- 200 KB alert message and a 200 KB key (a string may not exceed 256 KiB).
-- Must happen: "alert message is 200000 bytes; the limit is 2000" naming
-- this file; the alert is not opened.
local R = require 'regimen'

local MiB = ('m'):rep(200000)

return R.protocol {
  id = 'adv.alert-huge-message', version = '1',
  rules = { {
    id = 'adv.alert-huge-message', severity = 'info',
    check = function(h, now, p)
      return { { key = 'k', message = MiB }, { key = MiB, message = 'big key' } }
    end,
  } },
}
