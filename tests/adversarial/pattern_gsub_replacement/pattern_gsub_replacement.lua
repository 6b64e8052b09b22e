-- adversarial/pattern_gsub_replacement
-- Attacks: the wall clock inside string.gsub without backtracking: the empty
-- pattern matches at every one of 100,000 positions without a single matcher
-- step, and each match expands a 2,000,000-item replacement string ("%0"
-- repeated, the empty match) that adds nothing to the result. That is 2e11
-- steps in C with no guard check and almost no memory.
-- Must happen: "deadline" naming this file, within the deadline.
local R = require 'regimen'

local subject = ('a'):rep(100000)
local replacement = ('%0'):rep(2000000)

return R.protocol {
  id = 'adv.pattern-gsub-replacement', version = '1',
  rules = { {
    id = 'adv.pattern-gsub-replacement', severity = 'info',
    check = function(h, now, p)
      local out = subject:gsub('', replacement)
      return R.alert { message = tostring(#out) }
    end,
  } },
}
