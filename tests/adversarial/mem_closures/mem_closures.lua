-- adversarial/mem_closures
-- Attacks: memory, with closures: each one made here carries 190 upvalues
-- (about 1.5 KiB), built from generated source with the text-only load.
-- Must happen: "memory limit" naming this file.
local R = require 'regimen'

local names = {}
for i = 1, 190 do names[i] = 'u' .. i end
local maker = load('local ' .. table.concat(names, ', ') .. ' = 0\n' ..
  'return function() return function() return ' .. table.concat(names, ' + ') .. ' end end',
  '=closure-maker', 't')()

return R.protocol {
  id = 'adv.mem-closures', version = '1',
  rules = { {
    id = 'adv.mem-closures', severity = 'info',
    check = function(h, now, p)
      local keep, n = {}, 0
      while true do
        n = n + 1
        keep[n] = maker()
      end
    end,
  } },
}
