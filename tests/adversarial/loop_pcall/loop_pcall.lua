-- adversarial/loop_pcall
-- Attacks: the instruction budget, by catching the limit error with pcall
-- and xpcall (whose message handler loops too) and looping again.
-- Must happen: the limit is raised again after every catch, until control is
-- back in the runtime: "instruction budget" naming this file.
local R = require 'regimen'

local function spin() while true do end end

return R.protocol {
  id = 'adv.loop-pcall', version = '1',
  rules = { {
    id = 'adv.loop-pcall', severity = 'info',
    check = function(h, now, p)
      local caught = 0
      while true do
        pcall(spin)
        xpcall(spin, spin)            -- the handler loops as well
        caught = caught + 1
        pcall(error, 'swallow this')  -- a harmless error, caught
      end
    end,
  } },
}
