-- adversarial/load_bytecode_default
-- Attacks: the text-only load with a real bytecode chunk passed as a plain
-- string with the default mode (and with an explicit nil mode and a custom
-- environment).
-- Must happen: load refuses ("attempt to load a binary chunk"); the chunk
-- never runs; the error names this file.
local R = require 'regimen'

-- string.dump(load('return "ESCAPED: a bytecode chunk was loaded and ran"'), true)
local BYTECODE =
  "\027\076\117\097\084\000\025\147\013\010\026\010\004\008\008\120" ..
  "\086\000\000\000\000\000\000\000\000\000\000\000\040\119\064\001" ..
  "\128\128\128\000\001\002\132\081\000\000\000\003\000\000\000\070" ..
  "\000\002\001\070\000\001\001\129\020\173\069\083\067\065\080\069" ..
  "\068\058\032\097\032\098\121\116\101\099\111\100\101\032\099\104" ..
  "\117\110\107\032\119\097\115\032\108\111\097\100\101\100\032\097" ..
  "\110\100\032\114\097\110\129\001\000\000\128\128\128\128\128"

return R.protocol {
  id = 'adv.load-bytecode-default', version = '1',
  rules = { {
    id = 'adv.load-bytecode-default', severity = 'info',
    check = function(h, now, p)
      local f = load(BYTECODE, 'chunk', nil, {})
      if f then error(f(), 0) end
      f = assert(load(BYTECODE))
      error(f(), 0)
    end,
  } },
}
