-- adversarial/require_os
-- Attacks: require of the standard libraries that are not in the
-- allow-list ("io", "debug", "package" under pcall, then "os").
-- Must happen: "module 'os' not found in the protocol directories" naming
-- this file.
local R = require 'regimen'

return R.protocol {
  id = 'adv.require-os', version = '1',
  rules = { {
    id = 'adv.require-os', severity = 'info',
    check = function(h, now, p)
      for _, name in ipairs { 'io', 'debug', 'package', '_G' } do
        local ok, lib = pcall(require, name)
        if ok and lib then error('ESCAPED: require ' .. name, 0) end
      end
      local os_lib = require 'os'
      error('ESCAPED: require "os" returned ' .. tostring(os_lib), 0)
    end,
  } },
}
