-- adversarial/alert_control_key
-- Attacks: alert identity and the record. Two alerts whose keys differ only
-- after a NUL byte were one alert before (the key was hashed as a C string:
-- the second was dropped without a word); a key with CR, LF or ESC would
-- reach explain and the text table raw, forging lines or driving the
-- operator's terminal.
-- Must happen: the rule's error "alert key has a control character" naming
-- this file; nothing is opened for that patient.
local R = require 'regimen'

return R.protocol {
  id = 'adv.alert-control-key', version = '1',
  rules = { {
    id = 'adv.alert-control-key', severity = 'info',
    check = function(h, now, p)
      return {
        R.alert { key = 'dose\0first', message = 'ESCAPED: a NUL in a key' },
        R.alert { key = 'dose\0second', message = 'ESCAPED: a NUL in a key' },
        R.alert { key = 'x\r\n\27[2Jforged', message = 'ESCAPED: a control character in a key' },
      }
    end,
  } },
}
