-- adversarial/recursion_lua
-- Attacks: the Lua stack, with unbounded recursion (not a tail call).
-- Must happen: stopped by Lua's "stack overflow" error or, when the memory
-- cap is smaller than a full Lua stack (1,000,000 slots), by "memory limit";
-- attributed to this file; no crash of the process.
local R = require 'regimen'

local function deeper(n) return 1 + deeper(n + 1) end

return R.protocol {
  id = 'adv.recursion-lua', version = '1',
  rules = { {
    id = 'adv.recursion-lua', severity = 'info',
    check = function(h, now, p)
      return R.alert { message = tostring(deeper(1)) }
    end,
  } },
}
