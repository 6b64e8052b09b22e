-- adversarial/wakeup_storm
-- Attacks: the scheduler. Each evaluation is tiny and within every limit,
-- but the alert is always due one millisecond later, so the runtime wakes
-- the patient again every millisecond of virtual time: 745 million
-- evaluations per patient for the 8.6 days simulate covers, and tens of
-- billions in the service (from the events in March to the real "now"), on
-- its one event-loop thread, which then answers nobody.
-- Must happen: the clinic is stopped with an error naming this file (the
-- wake-up spacing: a hundredth of the time since the last event, at most a
-- minute), within seconds.
local R = require 'regimen'

return R.protocol {
  id = 'adv.wakeup-storm', version = '1',
  rules = { {
    id = 'adv.wakeup-storm', severity = 'info',
    check = function(h, now, p)
      return R.alert { message = 'almost due', due = now + 1 }
    end,
  } },
}
