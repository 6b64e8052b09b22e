-- adversarial/loop_plain
-- Attacks: the CPU, with the simplest endless loop inside a rule.
-- Must happen: the protocol loads fine; every evaluation is stopped by the
-- instruction budget ("instruction budget ... exceeded"), the error names this
-- file, and the other clinic keeps alerting.
local R = require 'regimen'

return R.protocol {
  id = 'adv.loop-plain', version = '1',
  rules = { {
    id = 'adv.loop-plain', severity = 'info',
    check = function(h, now, p)
      while true do end
    end,
  } },
}
