-- adversarial/instructions_heavy
-- Attacks: everyone else's time without ever hitting a limit: each
-- evaluation stays just under the instruction budget (1.5 million of 2
-- million here; 9 million of 10 million by default), at every step of
-- hundreds (the clinic's a_waker.lua wakes every patient every ten minutes; once: 1,000
-- patients, 29 s with no error).
-- Must happen: the clinic's CPU budget over a sliding window (the runner
-- sets 600 ms a minute) runs out: its protocols are not run past it ("CPU
-- budget", naming this file), and after 3 such hits the protocol is
-- quarantined, so the run ends within seconds.
local R = require 'regimen'

return R.protocol {
  id = 'adv.instructions-heavy', version = '1',
  rules = { {
    id = 'adv.instructions-heavy', severity = 'info',
    check = function(h, now, p)
      local x = 0
      for i = 1, 370000 do x = x + i end
      -- reading the clock makes it run at every step (a rule that reads
      -- nothing that changes keeps its answer: docs/protocols.md)
      if x < 0 or now < 0 then return R.alert { message = 'never' } end
    end,
  } },
}
