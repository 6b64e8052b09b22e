-- adversarial/error_at_load
-- Attacks: error reporting at load time, with a top-level error whose value
-- is a table (no message to show, no position).
-- Must happen: loading is refused with "(error object is a table value)"
-- and the message still names this file.
local R = require 'regimen'

error({ reason = 'not a string' })

return R.protocol {
  id = 'adv.error-at-load', version = '1',
  rules = { { id = 'adv.error-at-load', severity = 'info', check = function() end } },
}
