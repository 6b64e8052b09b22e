-- adversarial/print_flood
-- Attacks: the service log, with short prints in a loop that catches every
-- error (once not stopped in 60 s: 90 MB of log).
-- Must happen: at most 100 lines (16 KiB) per evaluation reach the log, then
-- the evaluation is stopped ("print limit"), naming this file.
local R = require 'regimen'

return R.protocol {
  id = 'adv.print-flood', version = '1',
  rules = { {
    id = 'adv.print-flood', severity = 'info',
    check = function(h, now, p)
      local i = 0
      while true do
        i = i + 1
        pcall(print, 'flood line ' .. i)
      end
    end,
  } },
}
