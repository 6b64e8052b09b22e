-- adversarial/wakeup_second
-- Attacks: the catch-up after downtime, with an alert due exactly one second
-- later, for ever: just past the old quick-wake guard (less than a second),
-- so every second of virtual time was a step (once: 1,001 steps a second,
-- and a 14 s stall after a day's downtime).
-- Must happen: the wake-up spacing: past 100 s after an event its wake-ups
-- wait a hundredth of the time since the event, at most a minute (1,440 a
-- day of patient time, whether caught up in one advance or as time passes),
-- with an error naming this file ("keeps asking to wake the patient
-- sooner"), within the deadline.
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
