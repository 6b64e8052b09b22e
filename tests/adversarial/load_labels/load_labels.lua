-- adversarial/load_labels
-- Attacks: the deadline from inside load(), whose parser runs in C with no
-- hook and checks each new label against every label and pending goto of
-- the function: 32,000 labels and gotos parse in quadratic time (2.6-2.8 s
-- against a 2 s deadline once).
-- Must happen: the parse is cut at the deadline ("deadline of ... ms per
-- evaluation exceeded") within the deadline plus 10%, naming this file.
local R = require 'regimen'

local N = 10000

return R.protocol {
  id = 'adv.load-labels', version = '1',
  rules = { {
    id = 'adv.load-labels', severity = 'info',
    check = function(h, now, p)
      local parts = {}
      for i = 1, N do parts[#parts + 1] = 'goto L' .. i .. ' ' end
      for i = 1, N do parts[#parts + 1] = '::L' .. i .. ':: ' end
      local chunk = table.concat(parts)
      while true do
        local f = load(chunk)
        if f then f() end
      end
    end,
  } },
}
