--@@ clinic.lua
local n = 0
return setmetatable({}, { __index = function(t, k)
  n = n + 1
  if n > 2 then error("third read of the settings") end
end })
