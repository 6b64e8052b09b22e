-- adversarial/reach_loadfile
-- Attacks: compiling a file from the disk with loadfile (a neighbour
-- clinic's protocol, or any readable file) during an evaluation.
-- Must happen: "'loadfile' is not available to protocols" naming this file.
local R = require 'regimen'

return R.protocol {
  id = 'adv.reach-loadfile', version = '1',
  rules = { {
    id = 'adv.reach-loadfile', severity = 'info',
    check = function(h, now, p)
      local f = loadfile('protocols/ketamine/acute.lua')
      error('ESCAPED: loadfile returned ' .. tostring(f), 0)
    end,
  } },
}
