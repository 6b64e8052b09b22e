-- adversarial/require_parent
-- Attacks: require climbing out of the protocol directory with "../",
-- at load time, to run another directory's code.
-- Must happen: loading is refused: "module name '../loop_plain/loop_plain'
-- is not valid" naming this file.
local R = require 'regimen'

local neighbour = require '../loop_plain/loop_plain'

return R.protocol {
  id = 'adv.require-parent', version = '1',
  rules = { { id = 'adv.require-parent', severity = 'info', check = function() end } },
}
