-- A harmless protocol of the instructions_heavy clinic: it wakes each patient
-- every ten minutes, so that instructions_heavy.lua runs at every one of
-- those steps, not just at the four events (hourly was too little work to
-- use up the runner's CPU budget on an idle machine).
local R = require 'regimen'

return R.protocol {
  id = 'adv.waker', version = '1',
  rules = { {
    id = 'adv.waker', severity = 'info',
    check = function(h, now, p)
      return R.alert { message = 'every ten minutes', due = now + 600 * 1000 }
    end,
  } },
}
