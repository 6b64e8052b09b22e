-- adversarial/string_dump
-- Attacks: string.dump (bytecode out of a function: the first half of
-- a bytecode attack), through the library, a string method and the string
-- metatable.
-- Must happen: it is not there: "attempt to call a nil value (field 'dump')"
-- naming this file.
local R = require 'regimen'

return R.protocol {
  id = 'adv.string-dump', version = '1',
  rules = { {
    id = 'adv.string-dump', severity = 'info',
    check = function(h, now, p)
      local fn = function() return 1 end
      if pcall(function() return (''):dump(fn) end) then error('ESCAPED: ("").dump works', 0) end
      local mt = getmetatable('')
      if type(mt) == 'table' and type(mt.__index) == 'table' and mt.__index.dump then
        error('ESCAPED: string metatable exposes dump', 0)
      end
      local bytes = string.dump(fn)
      error('ESCAPED: string.dump returned ' .. #bytes .. ' bytes', 0)
    end,
  } },
}
