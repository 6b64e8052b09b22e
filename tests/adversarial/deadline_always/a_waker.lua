-- A harmless protocol of the deadline_always clinic: it wakes each patient
-- every hour, so that deadline_always.lua runs (and runs into the deadline)
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
