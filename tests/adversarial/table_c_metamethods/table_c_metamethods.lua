-- adversarial/table_c_metamethods
-- Attacks: the wall clock inside the table library: table.move loops in C
-- over a range the protocol chooses, and when the tables' __index and
-- __newindex are C functions (here rawequal), no Lua instruction runs and
-- nothing is allocated, so neither the count hook nor the memory cap ever
-- fires: 9.2e18 iterations. The same holds for table.concat over a table
-- whose __index is table.concat (each element is ""), and for table.insert
-- and table.remove on a table whose __len returns math.maxinteger - 1.
-- Must happen: stopped by the deadline (or refused) with an error naming
-- this file, within the deadline.
local R = require 'regimen'

local source = setmetatable({}, { __index = rawequal })
local sink = setmetatable({}, { __newindex = rawequal })

return R.protocol {
  id = 'adv.table-c-metamethods', version = '1',
  rules = { {
    id = 'adv.table-c-metamethods', severity = 'info',
    check = function(h, now, p)
      table.move(source, 1, math.maxinteger - 1, 1, sink)
      return R.alert { message = 'moved' }
    end,
  } },
}
