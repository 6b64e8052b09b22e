-- adversarial/pattern_find
-- Attacks: the wall clock from inside C, with a catastrophically
-- backtracking pattern in string.find (the count hook never fires inside a
-- C function). Catches the first failure with pcall and tries again.
-- Must happen: the guarded matcher stops it at the deadline ("deadline of
-- ... ms per evaluation exceeded") naming this file.
local R = require 'regimen'

local subject = ('a'):rep(40)
local evil = ('a*'):rep(40) .. 'b'

return R.protocol {
  id = 'adv.pattern-find', version = '1',
  rules = { {
    id = 'adv.pattern-find', severity = 'info',
    check = function(h, now, p)
      pcall(string.find, subject, evil)
      if string.find(subject, evil) then return R.alert { message = 'found' } end
    end,
  } },
}
