-- adversarial/mem_concat
-- Attacks: memory, with table.concat joining 64 copies of a 1 MiB string
-- into one 64 MiB string in a single C call.
-- Must happen: "memory limit" naming this file.
local R = require 'regimen'

return R.protocol {
  id = 'adv.mem-concat', version = '1',
  rules = { {
    id = 'adv.mem-concat', severity = 'info',
    check = function(h, now, p)
      local piece = ('x'):rep(1 << 20)
      local parts = {}
      for i = 1, 64 do parts[i] = piece end
      local all = table.concat(parts, ',')
      return R.alert { message = tostring(#all) }
    end,
  } },
}
