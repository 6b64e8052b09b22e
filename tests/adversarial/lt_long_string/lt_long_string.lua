-- adversarial/lt_long_string
-- Attacks: the deadline with '<' on two long equal strings (15 MB each, once
-- 0.6-0.8 s past a 2 s deadline): each comparison is one VM instruction that
-- reads the whole string, and the hook runs only every 1,000 instructions.
-- When 15 MB is refused, it compares the longest strings it can make, for
-- ever.
-- Must happen: "memory limit of ... bytes per string" for the 15 MB strings,
-- then the comparison loop is stopped by the deadline within the deadline
-- plus 10%, naming this file.
local R = require 'regimen'

local function longest(c)
  local n = 15 << 20
  local ok, s = pcall(string.rep, c, n)
  while not ok do
    n = n // 2
    ok, s = pcall(string.rep, c, n)
  end
  return s
end

return R.protocol {
  id = 'adv.lt-long-string', version = '1',
  rules = { {
    id = 'adv.lt-long-string', severity = 'info',
    check = function(h, now, p)
      local a, b = longest('x'), longest('x')
      local n = 0
      while true do
        if a < b then n = n + 1 end
        if b < a then n = n + 1 end
      end
    end,
  } },
}
