-- adversarial/alert_nan_time
-- Attacks: the scheduler, with NaN as an alert's due time (comparisons with
-- NaN are always false, so a careless scheduler could never wake or always
-- wake).
-- Must happen: "alert field 'due' must be a time ... not a fraction or NaN"
-- naming this file.
local R = require 'regimen'

return R.protocol {
  id = 'adv.alert-nan-time', version = '1',
  rules = { {
    id = 'adv.alert-nan-time', severity = 'info',
    check = function(h, now, p)
      return { message = 'when?', due = 0 / 0, ends = -(0 / 0) }
    end,
  } },
}
