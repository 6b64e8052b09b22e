-- adversarial/pattern_gmatch
-- Attacks: the wall clock with the classic a?^n a^n pattern in
-- string.gmatch (each call of the iterator runs the matcher in C).
-- Must happen: "deadline" naming this file.
local R = require 'regimen'

local n = 40
local subject = ('a'):rep(n)
local evil = ('a?'):rep(n) .. ('a'):rep(n) .. 'b'

return R.protocol {
  id = 'adv.pattern-gmatch', version = '1',
  rules = { {
    id = 'adv.pattern-gmatch', severity = 'info',
    check = function(h, now, p)
      local count = 0
      for _ in subject:gmatch(evil) do count = count + 1 end
      return R.alert { message = 'matches: ' .. count }
    end,
  } },
}
