-- adversarial/mem_table
-- Attacks: memory, by growing a table without end; table.move appends a
-- thousand slots per call from C, so the table outgrows the cap long before
-- the instruction budget runs out.
-- Must happen: "memory limit" naming this file.
local R = require 'regimen'

local chunk = {}
for i = 1, 1000 do chunk[i] = i end

return R.protocol {
  id = 'adv.mem-table', version = '1',
  rules = { {
    id = 'adv.mem-table', severity = 'info',
    check = function(h, now, p)
      local hoard = {}
      while true do table.move(chunk, 1, #chunk, #hoard + 1, hoard) end
    end,
  } },
}
