return { id = "x", version = 
