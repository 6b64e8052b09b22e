-- adversarial/pattern_gsub
-- Attacks: the wall clock with a backtracking pattern in string.gsub, in a
-- loop that swallows each failure with pcall.
-- Must happen: "deadline" naming this file.
local R = require 'regimen'

local subject = ('a'):rep(40)
local evil = ('a*'):rep(40) .. 'b'

return R.protocol {
  id = 'adv.pattern-gsub', version = '1',
  rules = { {
    id = 'adv.pattern-gsub', severity = 'info',
    check = function(h, now, p)
      for _ = 1, 3 do pcall(string.gsub, subject, evil, 'x') end
      local out = subject:gsub(evil, 'x')
      return R.alert { message = out }
    end,
  } },
}
