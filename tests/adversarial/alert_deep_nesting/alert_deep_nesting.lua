-- adversarial/alert_deep_nesting
-- Attacks: any recursive reader of the returned value (JSON encoders,
-- validators), with a list nested 100,000 levels deep and a cycle.
-- Must happen: a plain rule error ("alert has an unknown field") naming this
-- file; no stack overflow in C.
local R = require 'regimen'

return R.protocol {
  id = 'adv.alert-deep-nesting', version = '1',
  rules = { {
    id = 'adv.alert-deep-nesting', severity = 'info',
    check = function(h, now, p)
      local cycle = { message = 'loop' }
      cycle.key = 'k'
      cycle[1] = cycle
      if pcall(function() return { cycle } end) then end
      local deep = { message = 'bottom' }
      for _ = 1, 100000 do deep = { deep } end
      return deep
    end,
  } },
}
