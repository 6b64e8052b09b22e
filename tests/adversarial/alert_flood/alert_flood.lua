-- adversarial/alert_flood
-- Attacks: the runtime's handling of a rule's result, with 50,000 alerts
-- (distinct keys) for one patient at once: small in Lua memory (about 12 MiB,
-- about 500,000 instructions), but the runtime checks keys pairwise and
-- matches them against open alerts in C, outside the instruction budget and
-- the deadline.
-- Must happen: the evaluation is bounded: refused with an error naming this
-- file (a cap on alerts per rule, or the deadline) within the per-evaluation
-- deadline, not minutes of CPU.
local R = require 'regimen'

local N = 50000

return R.protocol {
  id = 'adv.alert-flood', version = '1',
  rules = { {
    id = 'adv.alert-flood', severity = 'info',
    check = function(h, now, p)
      local list = {}
      for i = 1, N do list[i] = { key = i, message = 'alert' } end
      return list
    end,
  } },
}
