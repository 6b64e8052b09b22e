-- adversarial/reach_io
-- Attacks: the file system through io, at load time (top-level code).
-- Must happen: loading is refused: "'io' is not available to protocols"
-- naming this file; check fails, simulate and serve refuse the clinic.
local R = require 'regimen'

local passwd = io.open('/etc/passwd'):read('a')

return R.protocol {
  id = 'adv.reach-io', version = '1',
  rules = { { id = 'adv.reach-io', severity = 'info',
    check = function() return R.alert { message = passwd } end } },
}
