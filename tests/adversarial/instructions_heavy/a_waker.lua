-- A harmless protocol of the instructions_heavy clinic: it wakes each patient
-- every hour, so that instructions_heavy.lua runs
-- at every one of those steps, not just at the four events.
local R = require 'regimen'

return R.protocol {
  id = 'adv.waker', version = '1',
  rules = { {
    id = 'adv.waker', severity = 'info',
    check = function(h, now, p)
      return R.alert { message = 'hourly', due = now + 3600 * 1000 }
    end,
  } },
}
