-- adversarial/alert_nonstring_keys
-- Attacks: the runtime's reading of alerts, with an alert table whose keys
-- are not field names (a number, a boolean, a table).
-- Must happen: a rule error "alert has an unknown field" naming this file;
-- nothing is opened for that patient.
local R = require 'regimen'

return R.protocol {
  id = 'adv.alert-nonstring-keys', version = '1',
  rules = { {
    id = 'adv.alert-nonstring-keys', severity = 'info',
    check = function(h, now, p)
      return { message = 'odd keys', [1] = 'one', [true] = 'yes', [{}] = 'table' }
    end,
  } },
}
