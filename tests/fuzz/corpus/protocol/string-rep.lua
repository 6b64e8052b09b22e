local s = string.rep("ab", 1 << 30)
return s
