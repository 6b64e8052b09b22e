-- adversarial/loop_lt
-- Attacks: the budget through __lt and __le metamethods that loop, called
-- from C by table.sort.
-- Must happen: "instruction budget" naming this file.
local R = require 'regimen'

local function spin() while true do end end
local mt = { __lt = spin, __le = spin }

return R.protocol {
  id = 'adv.loop-lt', version = '1',
  rules = { {
    id = 'adv.loop-lt', severity = 'info',
    check = function(h, now, p)
      local list = {}
      for i = 1, 100 do list[i] = setmetatable({}, mt) end
      table.sort(list)
    end,
  } },
}
