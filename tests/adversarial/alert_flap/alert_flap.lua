-- adversarial/alert_flap
-- Attacks: the scheduler and the store, with an alert that opens and
-- resolves every millisecond: each wake-up makes a transition, so a guard
-- that counts only quiet wake-ups never fires (once: the POST never
-- answered, the WAL growing by 300 KB a second).
-- Must happen: the wake-up spacing (engine.c, rg__space_wake) holds it like
-- any wake-up: a wake-up after a wake-up waits a hundredth of the time since
-- the patient's last event (at most a minute), so at most about 2,600 steps
-- (and transitions) in the first day after an event and 1,440 a day after
-- that, the same in simulate and in the service; an error naming this file
-- ("keeps asking to wake the patient sooner"), in well under a second.
local R = require 'regimen'

return R.protocol {
  id = 'adv.alert-flap', version = '1',
  rules = { {
    id = 'adv.alert-flap', severity = 'info',
    check = function(h, now, p)
      if now % 2 == 0 then
        return R.alert { message = 'flap', ends = now + 1 }
      end
      return R.alert { message = 'flap', due = now + 1 }
    end,
  } },
}
