-- adversarial/alert_inf_time
-- Attacks: the scheduler and the time formatting, with infinite due and end
-- times (and 2^63, a float just past the integer range).
-- Must happen: "alert field 'due' must be a time" naming this file.
local R = require 'regimen'

return R.protocol {
  id = 'adv.alert-inf-time', version = '1',
  rules = { {
    id = 'adv.alert-inf-time', severity = 'info',
    check = function(h, now, p)
      return {
        { key = 'a', message = 'never', due = math.huge },
        { key = 'b', message = 'always', ends = -math.huge },
        { key = 'c', message = 'overflow', due = 2 ^ 63 },
      }
    end,
  } },
}
