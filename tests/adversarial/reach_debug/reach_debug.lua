-- adversarial/reach_debug
-- Attacks: the debug library (sethook would switch the limits off,
-- getregistry would reach every clinic-wide table, setupvalue/setlocal would
-- rewrite the runtime's closures).
-- Must happen: "'debug' is not available to protocols" naming this file.
local R = require 'regimen'

return R.protocol {
  id = 'adv.reach-debug', version = '1',
  rules = { {
    id = 'adv.reach-debug', severity = 'info',
    check = function(h, now, p)
      local ok, d = pcall(function() return require('debug') end)
      if ok and d then error('ESCAPED: require("debug")', 0) end
      debug.sethook()
      while true do end   -- would run forever if the hook was gone
    end,
  } },
}
