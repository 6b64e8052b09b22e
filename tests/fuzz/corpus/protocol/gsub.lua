local s = ("x"):rep(100):gsub("x", function(c) return c:rep(10) end)
return { id = s, version = "1", rules = {} }
