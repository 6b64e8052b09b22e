-- adversarial/error_tostring_loops
-- Attacks: the message handler, with an error value whose __tostring loops
-- forever (the handler runs after the protocol's code has "finished").
-- Must happen: "instruction budget" naming this file.
local R = require 'regimen'

return R.protocol {
  id = 'adv.error-tostring-loops', version = '1',
  rules = { {
    id = 'adv.error-tostring-loops', severity = 'info',
    check = function(h, now, p)
      error(setmetatable({}, { __tostring = function() while true do end end }))
    end,
  } },
}
