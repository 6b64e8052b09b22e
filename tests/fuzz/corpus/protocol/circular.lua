local a = require "lib.a"
return a
--@@ lib/a.lua
return require "lib.b"
--@@ lib/b.lua
return require "lib.a"
