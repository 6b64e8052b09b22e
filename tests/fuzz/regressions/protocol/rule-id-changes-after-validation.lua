local n = 0
return setmetatable({}, { __index = function(t, k)
  if k == "id" then return "p" end
  if k == "version" then return "1" end
  if k == "rules" then
    n = n + 1
    if n == 1 then return { { id = "r", severity = "info", check = print } } end
    return { {} }
  end
end })
