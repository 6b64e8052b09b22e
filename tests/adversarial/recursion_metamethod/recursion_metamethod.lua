-- adversarial/recursion_metamethod
-- Attacks: the C stack, with recursion through metamethods that the VM
-- calls from C: an __index that indexes itself and a __tostring that calls
-- tostring on itself (each level is a C call: luaV_finishget, luaL_tolstring).
-- Must happen: a "stack overflow" error (Lua's C-stack limit), attributed to
-- this file; no crash (SIGSEGV) of the process.
local R = require 'regimen'

local selfish = setmetatable({}, {
  __index = function(t, k) return t[k .. 'x'] end,
  __tostring = function(t) return 'x' .. tostring(t) end,
})

return R.protocol {
  id = 'adv.recursion-metamethod', version = '1',
  rules = { {
    id = 'adv.recursion-metamethod', severity = 'info',
    check = function(h, now, p)
      pcall(tostring, selfish)
      return R.alert { message = selfish.message }
    end,
  } },
}
