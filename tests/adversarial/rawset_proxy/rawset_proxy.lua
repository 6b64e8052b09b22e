-- adversarial/rawset_proxy
-- Attacks: the read-only proxies around libraries, by writing around their
-- __newindex: rawset, table.insert and table.move into a proxy.
-- Must happen: the writes fail; rawset itself is not available:
-- "'rawset' is not available to protocols" naming this file.
local R = require 'regimen'

return R.protocol {
  id = 'adv.rawset-proxy', version = '1',
  rules = { {
    id = 'adv.rawset-proxy', severity = 'info',
    check = function(h, now, p)
      pcall(table.insert, string, 'junk')
      pcall(table.move, { 'junk' }, 1, 1, 1, math)
      pcall(table.insert, R, 1, 'junk')
      if rawlen(string) ~= 0 or rawget(math, 1) ~= nil or rawget(R, 1) ~= nil or #math ~= 0 then
        error('ESCAPED: wrote into a proxy', 0)
      end
      rawset(string, 'upper', function() return 'pwned' end)
      error('ESCAPED: rawset on the string proxy', 0)
    end,
  } },
}
