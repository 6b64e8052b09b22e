-- adversarial/error_table
-- Attacks: error reporting, with an error value that is a table (with a
-- __tostring that returns a table instead of a string).
-- Must happen: "(error object is a table value)" naming this file.
local R = require 'regimen'

return R.protocol {
  id = 'adv.error-table', version = '1',
  rules = { {
    id = 'adv.error-table', severity = 'info',
    check = function(h, now, p)
      error(setmetatable({ code = 42 }, { __tostring = function() return {} end }))
    end,
  } },
}
