-- adversarial/reach_dofile
-- Attacks: running another file from the disk with dofile, at load time.
-- Must happen: loading is refused: "'dofile' is not available to protocols"
-- naming this file.
local R = require 'regimen'

dofile('/etc/passwd')

return R.protocol {
  id = 'adv.reach-dofile', version = '1',
  rules = { { id = 'adv.reach-dofile', severity = 'info', check = function() end } },
}
