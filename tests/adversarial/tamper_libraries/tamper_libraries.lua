-- adversarial/tamper_libraries
-- Attacks: the shared library tables (string, table, math, utf8, coroutine)
-- and the global environment, to change what the next patient's evaluation
-- sees. Every evaluation first checks that nothing from a previous one is
-- visible, then tries to overwrite library fields (under pcall), sets a
-- global, and finally overwrites string.upper plainly.
-- Must happen: "string is read-only in protocols (cannot set field 'upper')"
-- naming this file; no change and no global survives to the next patient.
local R = require 'regimen'

local function clean()
  return ('abc'):upper() == 'ABC' and table.insert ~= nil and math.pi > 3.14
    and math.pi < 3.15 and utf8.char(72) == 'H' and coroutine.wrap ~= nil
    and rawget(_ENV, 'left_behind') == nil
end

return R.protocol {
  id = 'adv.tamper-libraries', version = '1',
  rules = { {
    id = 'adv.tamper-libraries', severity = 'info',
    check = function(h, now, p)
      if not clean() then error('ESCAPED: a previous evaluation left a change behind', 0) end
      pcall(function() table.insert = function() end end)
      pcall(function() math.pi = 3 end)
      pcall(function() utf8.char = nil end)
      pcall(function() coroutine.wrap = nil end)
      pcall(function() string.format = nil end)
      left_behind = 'from patient ' .. h.patient
      if table.insert == nil or math.pi == 3 or utf8.char == nil or coroutine.wrap == nil then
        error('ESCAPED: a library table accepted a write', 0)
      end
      string.upper = function() return 'pwned' end
      error('ESCAPED: string.upper was replaced', 0)
    end,
  } },
}
