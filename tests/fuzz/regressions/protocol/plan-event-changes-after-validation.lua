local n = 0
return setmetatable({}, { __index = function(t, k)
  if k == "id" then return "p" end
  if k == "version" then return "1" end
  if k == "rules" then return { { id = "r", severity = "info", check = print } } end
  if k == "plan_events" then
    n = n + 1
    if n == 1 then return { "enrolled" } end
    return { {} }
  end
end })
