-- adversarial/load_time_loop
-- Attacks: the loader, with top-level code that never finishes (also
-- swallowing the first limit error with pcall).
-- Must happen: loading is stopped by the instruction budget
-- ("instruction budget") naming this file: check fails, simulate and serve
-- refuse the clinic, and a running service that reloads it keeps the old one.
local R = require 'regimen'

pcall(function() while true do end end)
while true do end

return R.protocol {
  id = 'adv.load-time-loop', version = '1',
  rules = { { id = 'adv.load-time-loop', severity = 'info', check = function() end } },
}
