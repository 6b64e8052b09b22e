for i = 1, 100 do pcall(function() while true do end end) end
return {}
