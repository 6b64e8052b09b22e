-- adversarial/loop_coroutine
-- Attacks: the instruction budget from inside coroutines: one created while
-- the file loads (before any evaluation armed its budget), one created in the
-- rule; both loop, the caller swallows the failure (resume returns false)
-- and keeps looping in the main thread.
-- Must happen: "instruction budget" naming this file; the coroutines do not
-- carry the loop past the end of the evaluation.
local R = require 'regimen'

local made_at_load = coroutine.create(function()
  while true do coroutine.yield() end
end)

return R.protocol {
  id = 'adv.loop-coroutine', version = '1',
  rules = { {
    id = 'adv.loop-coroutine', severity = 'info',
    check = function(h, now, p)
      local spinner = coroutine.create(function() while true do end end)
      coroutine.resume(spinner)                 -- the limit fires inside: resume says false
      local w = coroutine.wrap(function() while true do end end)
      pcall(w)
      while true do coroutine.resume(made_at_load) end
    end,
  } },
}
