-- adversarial/table_long_loops
-- Attacks: the deadline from inside table.insert, table.remove and
-- table.move, whose loops run in C: a table whose __len says a billion
-- makes insert shift a billion elements, and table.move({}, 1, 1e9, 2)
-- copies a billion nils (minutes each, no memory, no hook).
-- Must happen: each is stopped at the deadline ("deadline of ... ms per
-- evaluation exceeded") within the deadline plus 10%, naming this file.
local R = require 'regimen'

return R.protocol {
  id = 'adv.table-long-loops', version = '1',
  rules = { {
    id = 'adv.table-long-loops', severity = 'info',
    check = function(h, now, p)
      local t = setmetatable({}, { __len = function() return 1e9 end })
      pcall(table.insert, t, 1, 'x')
      pcall(table.remove, t, 1)
      table.move({}, 1, 1e9, 2)
    end,
  } },
}
