-- adversarial/reach_loadlib
-- Attacks: native code through package.loadlib (and package.cpath /
-- package.searchers through require).
-- Must happen: "'package' is not available to protocols" naming this file.
local R = require 'regimen'

return R.protocol {
  id = 'adv.reach-loadlib', version = '1',
  rules = { {
    id = 'adv.reach-loadlib', severity = 'info',
    check = function(h, now, p)
      local system = package.loadlib('/lib/x86_64-linux-gnu/libc.so.6', 'system')
      error('ESCAPED: package.loadlib returned ' .. tostring(system), 0)
    end,
  } },
}
