-- adversarial/pattern_match
-- Attacks: the wall clock with a backtracking pattern in string.match,
-- called as a method on a string (("..."):match goes through the string
-- metatable, which must reach the guarded matcher too).
-- Must happen: "deadline" naming this file.
local R = require 'regimen'

local subject = ('a'):rep(120)
local evil = ('.-'):rep(25) .. 'x'

return R.protocol {
  id = 'adv.pattern-match', version = '1',
  rules = { {
    id = 'adv.pattern-match', severity = 'info',
    check = function(h, now, p)
      local m = subject:match(evil)
      return m and R.alert { message = m } or nil
    end,
  } },
}
