-- adversarial/loop_concat
-- Attacks: the budget through a __concat metamethod that loops.
-- Must happen: "instruction budget" naming this file.
local R = require 'regimen'

local glue = setmetatable({}, { __concat = function() while true do end end })

return R.protocol {
  id = 'adv.loop-concat', version = '1',
  rules = { {
    id = 'adv.loop-concat', severity = 'info',
    check = function(h, now, p)
      return R.alert { message = 'patient ' .. h.patient .. glue }
    end,
  } },
}
