-- adversarial/deadline_always
-- Attacks: everyone else's time, with a rule that runs into its deadline at
-- every step (a backtracking pattern): each evaluation is stopped and named,
-- but each costs the whole deadline, and there are hundreds of steps (the
-- clinic's a_waker.lua wakes every patient hourly; once: 30 patients stalled
-- everyone for 60 s, a reload of 1,005 patients for 33 minutes).
-- Must happen: after 3 limit hits within a minute the protocol is
-- quarantined ("quarantined", naming this file): it is not evaluated until
-- its back-off is over or its clinic is reloaded, so the run takes about 3
-- deadlines, not hundreds.
local R = require 'regimen'

local subject = ('a'):rep(40)
local evil = ('a*'):rep(40) .. 'b'

return R.protocol {
  id = 'adv.deadline-always', version = '1',
  rules = { {
    id = 'adv.deadline-always', severity = 'info',
    check = function(h, now, p)
      if string.find(subject, evil) then return R.alert { message = 'found' } end
    end,
  } },
}
