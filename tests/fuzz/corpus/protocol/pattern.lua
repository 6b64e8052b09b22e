local s = string.rep("a", 5000)
return { id = s:match("(a*)*b") }
