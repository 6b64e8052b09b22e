-- adversarial/rep_empty_string
-- Attacks: the wall clock inside C, with Lua 5.4's own string.rep: repeating
-- the empty string math.maxinteger times allocates nothing and executes no
-- Lua instruction, but loops 9.2e18 times in C (memcpy of 0 bytes).
-- Must happen: the sandbox's string.rep answers "" at once (it is the right
-- result); the rule then raises, so the test sees it finished in time and the
-- error names this file.
local R = require 'regimen'

return R.protocol {
  id = 'adv.rep-empty-string', version = '1',
  rules = { {
    id = 'adv.rep-empty-string', severity = 'info',
    check = function(h, now, p)
      local nothing = (''):rep(math.maxinteger)
      error('string.rep of the empty string returned at once: ' .. #nothing .. ' bytes')
    end,
  } },
}
