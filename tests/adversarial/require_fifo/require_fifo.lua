-- adversarial/require_fifo
-- Attacks: the thread that loads modules, with a module that is a FIFO
-- (lib/fifo.lua, made by the test runner: git cannot hold one): fopen of a
-- FIFO blocks until a writer comes, for ever, and no hook runs (once:
-- SIGTERM ignored).
-- Must happen: modules are opened without blocking and only regular files
-- are read: "is not a regular file", naming this file, at once.
local R = require 'regimen'

return R.protocol {
  id = 'adv.require-fifo', version = '1',
  rules = { {
    id = 'adv.require-fifo', severity = 'info',
    check = function(h, now, p)
      local m = require 'lib.fifo'
      return R.alert { message = tostring(m) }
    end,
  } },
}
