-- adversarial/mem_leak
-- Attacks: memory across evaluations: every evaluation adds 12 MiB to a
-- table kept in an upvalue from load time, which no per-evaluation reset
-- clears, so the clinic's state fills up patient after patient.
-- Must happen: once the state is full, evaluations fail with "memory limit"
-- naming this file; the other clinic (another Lua state) is not affected.
local R = require 'regimen'

local hoard = {}

return R.protocol {
  id = 'adv.mem-leak', version = '1',
  rules = { {
    id = 'adv.mem-leak', severity = 'info',
    check = function(h, now, p)
      hoard[#hoard + 1] = ('x'):rep(12 << 20) .. now
      return R.alert { message = 'hoarding ' .. #hoard }
    end,
  } },
}
