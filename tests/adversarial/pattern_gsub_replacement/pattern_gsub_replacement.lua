-- adversarial/pattern_gsub_replacement
-- Attacks: the wall clock inside string.gsub without backtracking: the empty
-- pattern matches at every one of 100,000 positions without a single matcher
-- step, and each match expands a 100,000-item replacement string ("%0"
-- repeated, the empty match; strings are capped at 256 KiB) that adds nothing
-- to the result. That is 1e10 steps in C with no guard check and almost no
-- memory.
-- Must happen: "deadline" naming this file, within the deadline.
local R = require 'regimen'

local subject = ('a'):rep(100000)
local replacement = ('%0'):rep(100000)

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
