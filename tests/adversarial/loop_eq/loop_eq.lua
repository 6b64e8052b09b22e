-- adversarial/loop_eq
-- Attacks: the budget through an __eq metamethod that loops.
-- Must happen: "instruction budget" naming this file.
local R = require 'regimen'

local mt = { __eq = function() while true do end end }

return R.protocol {
  id = 'adv.loop-eq', version = '1',
  rules = { {
    id = 'adv.loop-eq', severity = 'info',
    check = function(h, now, p)
      local a, b = setmetatable({}, mt), setmetatable({}, mt)
      if a == b then return R.alert { message = 'equal' } end
    end,
  } },
}
