-- adversarial/yield_in_rule
-- Attacks: the runtime's call of the rule, by yielding out of it (at the top
-- level of the rule, and from a history filter called by C inside a
-- coroutine, across the C boundary).
-- Must happen: "attempt to yield from outside a coroutine" naming this file.
local R = require 'regimen'

return R.protocol {
  id = 'adv.yield-in-rule', version = '1',
  rules = { {
    id = 'adv.yield-in-rule', severity = 'info',
    check = function(h, now, p)
      local co = coroutine.wrap(function()
        return h:list(nil, function() coroutine.yield('out') return true end)
      end)
      pcall(co)
      coroutine.yield(R.alert { message = 'yielded' })
      error('ESCAPED: the rule resumed after yielding', 0)
    end,
  } },
}
