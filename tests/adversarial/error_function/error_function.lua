-- adversarial/error_function
-- Attacks: error reporting, with a function as the error value (a careless
-- handler might call it, or print its address as the reason).
-- Must happen: "(error object is a function value)" naming this file; the
-- function is never called.
local R = require 'regimen'

return R.protocol {
  id = 'adv.error-function', version = '1',
  rules = { {
    id = 'adv.error-function', severity = 'info',
    check = function(h, now, p)
      error(function() error('ESCAPED: the error value was called', 0) end)
    end,
  } },
}
