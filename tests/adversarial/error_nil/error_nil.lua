-- adversarial/error_nil
-- Attacks: error reporting, with error(nil): no message and no position.
-- Must happen: "(error object is a nil value)" naming this file.
local R = require 'regimen'

return R.protocol {
  id = 'adv.error-nil', version = '1',
  rules = { {
    id = 'adv.error-nil', severity = 'info',
    check = function(h, now, p)
      error(nil)
    end,
  } },
}
