-- adversarial/error_tostring_errors
-- Attacks: the message handler, with an error value whose __tostring itself
-- raises an error (an error inside error handling).
-- Must happen: a rule error naming this file (the inner error's message or
-- a description of the value); no "error in error handling" without a file.
local R = require 'regimen'

return R.protocol {
  id = 'adv.error-tostring-errors', version = '1',
  rules = { {
    id = 'adv.error-tostring-errors', severity = 'info',
    check = function(h, now, p)
      error(setmetatable({}, { __tostring = function() error('tostring refused') end }))
    end,
  } },
}
