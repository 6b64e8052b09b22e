-- adversarial/print_huge
-- Attacks: the service log, with one print of 16 MB (once written to the
-- unbuffered stderr one byte per write: 31 s), and then prints of the
-- longest string it can make.
-- Must happen: each line in the log is cut to 1,024 bytes and written at
-- once; the evaluation stops at the print limit per evaluation ("print
-- limit"), naming this file.
local R = require 'regimen'

return R.protocol {
  id = 'adv.print-huge', version = '1',
  rules = { {
    id = 'adv.print-huge', severity = 'info',
    check = function(h, now, p)
      local n = 16 << 20
      local ok, s = pcall(string.rep, 'x', n)
      while not ok do
        n = n // 2
        ok, s = pcall(string.rep, 'x', n)
      end
      while true do pcall(print, s, s, s) end
    end,
  } },
}
