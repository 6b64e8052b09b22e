-- adversarial/params_write
-- Attacks: the record of what was in force. The patient's plan (the
-- enrolled event's data) sets `program`, so the rule gets the plan's own
-- copy of the parameters; writing into it would make explain show, as the
-- "parameters in force", a value nobody set (and a later rule of the same
-- evaluation would see it).
-- Must happen: "the parameter table p is read-only" naming this file and
-- the line of the write; no alert opens.
local R = require 'regimen'

return R.protocol {
  id = 'adv.params-write', version = '1',
  params = { program = 'none', threshold = 3 },
  rules = { {
    id = 'adv.params-write', severity = 'info',
    check = function(h, now, p)
      p.program = 'forged by the rule'
      p.threshold = 0
      return R.alert { message = 'ESCAPED: p accepted a write (' .. tostring(p.program) .. ')' }
    end,
  } },
}
