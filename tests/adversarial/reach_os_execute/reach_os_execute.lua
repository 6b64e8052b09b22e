-- adversarial/reach_os_execute
-- Attacks: the system through os.execute, directly and through every
-- indirect route a sandbox might forget (_ENV, _G, a fresh load environment,
-- require). A success would create /tmp/regimen-adversarial-pwned.
-- Must happen: "'os' is not available to protocols" naming this file; the
-- marker file does not exist.
local R = require 'regimen'

local CMD = 'touch /tmp/regimen-adversarial-pwned'

local routes = {
  function() return _ENV.os end,
  function() return rawget(_ENV, 'os') end,
  function() return _G.os end,
  function() return load('return os')() end,
  function() return load('return ...', '=x', 't', _ENV)(os) end,
  function() return require('os') end,
}

return R.protocol {
  id = 'adv.reach-os-execute', version = '1',
  rules = { {
    id = 'adv.reach-os-execute', severity = 'info',
    check = function(h, now, p)
      for i, route in ipairs(routes) do
        local ok, os_lib = pcall(route)
        if ok and type(os_lib) == 'table' then
          pcall(os_lib.execute, CMD)
          error('ESCAPED: route ' .. i .. ' reached os', 0)
        end
      end
      os.execute(CMD)
      error('ESCAPED: os.execute ran', 0)
    end,
  } },
}
