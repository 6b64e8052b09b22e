x = 1
return { id = y, version = "1" }
