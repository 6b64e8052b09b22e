return { id = "h", version = "1", rules = { { id = "a", severity = "info", check = print }, nil, { id = "b", severity = "info", check = print }, x = 1 } }
