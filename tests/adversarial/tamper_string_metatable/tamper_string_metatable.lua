-- adversarial/tamper_string_metatable
-- Attacks: the string metatable, shared by every string in the clinic's
-- state: replacing its __index would change ("x"):upper() for the next
-- patient (and a protocol of another clinic, if states were shared).
-- Every evaluation first checks that nothing a previous one tried is
-- visible, then tries setmetatable on a string and writes through
-- getmetatable("").
-- Must happen: the metatable is locked (getmetatable gives false), so the
-- write fails with "attempt to index a boolean value" naming this file;
-- nothing persists to the next patient.
local R = require 'regimen'

local function intact()
  return ('abc'):upper() == 'ABC' and ('a,b'):find(',', 1, true) == 2 and #'xyz' == 3
end

return R.protocol {
  id = 'adv.tamper-string-metatable', version = '1',
  rules = { {
    id = 'adv.tamper-string-metatable', severity = 'info',
    check = function(h, now, p)
      if not intact() then error('ESCAPED: a previous evaluation changed string methods', 0) end
      local mt = getmetatable('')
      if type(mt) == 'table' then error('ESCAPED: the string metatable is reachable', 0) end
      pcall(setmetatable, 'abc', { __index = { upper = function() return 'pwned' end } })
      if not intact() then error('ESCAPED: setmetatable on a string worked', 0) end
      getmetatable('').__index = { upper = function() return 'pwned' end }
      error('ESCAPED: wrote to the string metatable', 0)
    end,
  } },
}
