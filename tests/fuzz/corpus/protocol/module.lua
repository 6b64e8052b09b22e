local m = require "lib.m"
return { id = m.id, version = "2", rules = { { id = "r", severity = "info", check = m.check } } }
--@@ lib/m.lua
local M = {}
M.id = "from.module"
function M.check(h, now, p) return nil end
return M
