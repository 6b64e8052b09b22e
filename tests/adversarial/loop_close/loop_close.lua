-- adversarial/loop_close
-- Attacks: the budget through __close metamethods (to-be-closed variables)
-- that loop, including while the limit error unwinds the stack and when a
-- suspended coroutine is closed with coroutine.close.
-- Must happen: "instruction budget" naming this file.
local R = require 'regimen'

local function spin() while true do end end
local closer = { __close = spin }

return R.protocol {
  id = 'adv.loop-close', version = '1',
  rules = { {
    id = 'adv.loop-close', severity = 'info',
    check = function(h, now, p)
      local co = coroutine.create(function()
        local guard <close> = setmetatable({}, closer)
        coroutine.yield()
      end)
      coroutine.resume(co)
      pcall(coroutine.close, co)          -- runs the looping __close
      do
        local guard <close> = setmetatable({}, closer)
        spin()                            -- unwinding runs __close, which loops too
      end
    end,
  } },
}
