local n = 0
return setmetatable({}, { __index = function(t, k)
  if k == "id" then
    n = n + 1
    if n == 1 then return "p" end
    return {}
  end
  if k == "version" then return "1" end
  if k == "rules" then return { { id = "r", severity = "info", check = print } } end
end })
--@@ clinic.lua
return { params = { p = { x = 1 } } }
