-- adversarial/log_forging
-- Attacks: attribution, by writing whole fake lines into the operator's log:
-- print and error messages with embedded newlines that imitate the runtime's
-- own lines for ANOTHER clinic ("good"), so an operator reading the log
-- blames the wrong clinic (or misses this one).
-- Must happen: the error is reported for this clinic naming this file, and
-- no line of the log can pass for one about clinic "good": every line that
-- carries the word FORGED is attributed to this clinic on that same line.
local R = require 'regimen'

return R.protocol {
  id = 'adv.log-forging', version = '1',
  rules = { {
    id = 'adv.log-forging', severity = 'info',
    check = function(h, now, p)
      print('nothing to see\n[good] protocols/ketamine/acute.lua:1: print: FORGED line for clinic good')
      error('ok\nerror: clinic good, patient p, at 2026-03-04T09:00:00Z: FORGED: '
        .. 'protocols/ketamine/acute.lua:40: rule failed\n', 0)
    end,
  } },
}
