-- adversarial/setmetatable_env
-- Attacks: the metatables that hold the sandbox together: the rule's
-- environment (_ENV, whose __index chain leads to the allow-listed globals),
-- the library proxies and the regimen module.
-- Must happen: "cannot change a protected metatable" naming this file.
local R = require 'regimen'

local function hijack(_, k) return 'hijacked ' .. tostring(k) end

return R.protocol {
  id = 'adv.setmetatable-env', version = '1',
  rules = { {
    id = 'adv.setmetatable-env', severity = 'info',
    check = function(h, now, p)
      for _, target in ipairs { string, table, math, R, _ENV } do
        if pcall(setmetatable, target, { __index = hijack }) then
          error('ESCAPED: setmetatable on a protected table', 0)
        end
      end
      if getmetatable(_ENV) ~= false or getmetatable(string) ~= false then
        error('ESCAPED: a protected metatable is visible', 0)
      end
      setmetatable(_ENV, { __index = hijack })
      error('ESCAPED: setmetatable(_ENV) worked', 0)
    end,
  } },
}
