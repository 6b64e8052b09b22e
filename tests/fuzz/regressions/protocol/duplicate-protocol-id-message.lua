return { id = "p", version = "1", rules = { { id = "a", severity = "info", check = print } } }
--@@ b.lua
return { id = "p", version = "1", rules = { { id = "b", severity = "info", check = print } } }
