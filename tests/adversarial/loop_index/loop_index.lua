-- adversarial/loop_index
-- Attacks: the budget through __index and __newindex metamethods that loop,
-- including when the runtime itself reads the returned alert (the alert
-- table has a looping __index, so reading its fields from C spins).
-- Must happen: "instruction budget" naming this file.
local R = require 'regimen'

local function spin() while true do end end

return R.protocol {
  id = 'adv.loop-index', version = '1',
  rules = { {
    id = 'adv.loop-index', severity = 'info',
    check = function(h, now, p)
      local t = setmetatable({}, { __index = spin, __newindex = spin })
      pcall(function() t.x = 1 end)
      pcall(function() return t.y end)
      -- a returned list whose elements are read by the runtime, through __index
      return setmetatable({}, { __index = spin, __len = function() return 3 end })
    end,
  } },
}
