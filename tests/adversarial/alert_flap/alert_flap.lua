-- adversarial/alert_flap
-- Attacks: the scheduler and the store, with an alert that opens and
-- resolves every millisecond: each wake-up makes a transition, so a guard
-- that counts only quiet wake-ups never fires (once: the POST never
-- answered, the WAL growing by 300 KB a second).
-- Must happen: the quick-wake guard counts these steps too: after 1,000
-- wake-ups less than a second apart, time-driven evaluation of the patient
-- is suspended, with an error naming this file, in well under a second.
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
