-- adversarial/mem_at_load
-- Attacks: memory while the file loads (top-level code), before any
-- evaluation.
-- Must happen: loading is refused with "memory limit" naming this file:
-- check fails, simulate and serve refuse the clinic.
local R = require 'regimen'

local s = 'x'
for _ = 1, 40 do s = s .. s end

return R.protocol {
  id = 'adv.mem-at-load', version = '1',
  rules = { { id = 'adv.mem-at-load', severity = 'info', check = function() end } },
}
