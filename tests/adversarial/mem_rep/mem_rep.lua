-- adversarial/mem_rep
-- Attacks: memory, with string.rep asking for a gigabyte at once (and a
-- separator variant), after catching a first refusal with pcall.
-- Must happen: "memory limit" naming this file.
local R = require 'regimen'

return R.protocol {
  id = 'adv.mem-rep', version = '1',
  rules = { {
    id = 'adv.mem-rep', severity = 'info',
    check = function(h, now, p)
      pcall(string.rep, 'x', 1 << 30)
      local big = ('x'):rep(1 << 24, ('y'):rep(64))
      return R.alert { message = big:sub(1, 10) }
    end,
  } },
}
