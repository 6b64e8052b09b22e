local co = coroutine.wrap(function() while true do coroutine.yield(1) end end)
for i = 1, 1e6 do co() end
