-- adversarial/loop_gc
-- Attacks: finalizers. A __gc metamethod runs with hooks off, so one that
-- loops could never be stopped. Tries a protected setmetatable with __gc,
-- then adds __gc to a metatable after setmetatable (Lua does not mark the
-- object then; if it ever ran, the run would hang and the test's watchdog
-- would see it) and churns garbage, then asks for __gc plainly.
-- Must happen: "__gc metamethods are not available" naming this file.
local R = require 'regimen'

local function spin() while true do end end

return R.protocol {
  id = 'adv.loop-gc', version = '1',
  rules = { {
    id = 'adv.loop-gc', severity = 'info',
    check = function(h, now, p)
      if pcall(setmetatable, {}, { __gc = spin }) then
        error('ESCAPED: setmetatable accepted a __gc metamethod', 0)
      end
      local mt = {}
      local victim = setmetatable({}, mt)
      mt.__gc = spin                      -- too late to mark the object
      victim = nil
      for i = 1, 20000 do local _ = { i, tostring(i) } end   -- give the collector work
      setmetatable({}, { __gc = spin })   -- must raise
      error('ESCAPED: setmetatable with __gc did not raise', 0)
    end,
  } },
}
