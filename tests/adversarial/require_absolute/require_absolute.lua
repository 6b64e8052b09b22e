-- adversarial/require_absolute
-- Attacks: require with an absolute path, and dotted names that would turn
-- into one ('.etc.passwd'), during an evaluation.
-- Must happen: "is not valid" naming this file.
local R = require 'regimen'

return R.protocol {
  id = 'adv.require-absolute', version = '1',
  rules = { {
    id = 'adv.require-absolute', severity = 'info',
    check = function(h, now, p)
      for _, name in ipairs { '.etc.passwd', 'etc..passwd', '..etc.passwd' } do
        if pcall(require, name) then error('ESCAPED: require ' .. name, 0) end
      end
      local m = require '/etc/passwd'
      error('ESCAPED: require of an absolute path returned ' .. tostring(m), 0)
    end,
  } },
}
