-- adversarial/sort_long_string
-- Attacks: the deadline from inside table.sort, which compares strings in C
-- with no hook between comparisons: references to one 20 MB string (every
-- comparison reads 20 MB, 29 s per evaluation once). When the 20 MB string
-- is refused, it sorts as many references as memory allows to the longest
-- string it can make.
-- Must happen: no string over the limit per string is made ("memory limit
-- of ... bytes per string"), and the sort of the longest allowed string is
-- stopped at the deadline ("deadline of ... ms per evaluation exceeded"),
-- within the deadline plus 10%, naming this file.
local R = require 'regimen'

local function longest()
  local ok, s = pcall(string.rep, 'x', 20 << 20)
  if ok then return s end
  local n = 20 << 20
  while not ok do
    n = n // 2
    ok, s = pcall(string.rep, 'x', n)
  end
  return s
end

return R.protocol {
  id = 'adv.sort-long-string', version = '1',
  rules = { {
    id = 'adv.sort-long-string', severity = 'info',
    check = function(h, now, p)
      local s = longest()
      local t = {}
      for i = 1, 200000 do t[i] = s end
      table.sort(t)
      return R.alert { message = 'sorted ' .. #s }
    end,
  } },
}
