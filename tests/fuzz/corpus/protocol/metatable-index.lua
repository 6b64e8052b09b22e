local R = require "regimen"
return setmetatable({}, { __index = function(t, k)
  if k == "id" then return "meta" end
  if k == "version" then return "1" end
  if k == "rules" then return { { id = "meta.r", severity = "info", check = function() end } } end
end })
