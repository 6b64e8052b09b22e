-- adversarial/mem_doubling
-- Attacks: memory, by doubling a string with concatenation until it no
-- longer fits (2^40 bytes if nothing stopped it).
-- Must happen: "memory limit" naming this file.
local R = require 'regimen'

return R.protocol {
  id = 'adv.mem-doubling', version = '1',
  rules = { {
    id = 'adv.mem-doubling', severity = 'info',
    check = function(h, now, p)
      local s = 'x'
      for _ = 1, 40 do s = s .. s end
      return R.alert { message = tostring(#s) }
    end,
  } },
}
