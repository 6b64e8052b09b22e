-- adversarial/wakeup_second
-- Attacks: the catch-up after downtime, with an alert due exactly one second
-- later, for ever: just past the quick-wake guard (less than a second), so
-- every second of virtual time is a step (once: 1,001 steps a second, and a
-- 14 s stall after a day's downtime).
-- Must happen: at most 1,000 wake-ups per advance; the rest of the catch-up
-- is one step at its end, with an error naming this file ("times in one
-- advance"), within the deadline.
local R = require 'regimen'

return R.protocol {
  id = 'adv.wakeup-second', version = '1',
  rules = { {
    id = 'adv.wakeup-second', severity = 'info',
    check = function(h, now, p)
      return R.alert { message = 'one second more', due = now + 1000 }
    end,
  } },
}
