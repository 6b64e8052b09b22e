-- adversarial/loop_tostring
-- Attacks: the budget through a __tostring metamethod that loops, reached
-- from C (tostring, string.format('%s'), print).
-- Must happen: "instruction budget" naming this file.
local R = require 'regimen'

local sneaky = setmetatable({}, { __tostring = function() while true do end end })

return R.protocol {
  id = 'adv.loop-tostring', version = '1',
  rules = { {
    id = 'adv.loop-tostring', severity = 'info',
    check = function(h, now, p)
      pcall(string.format, '%s', sneaky)
      pcall(print, sneaky)
      return R.alert { message = tostring(sneaky) }
    end,
  } },
}
