-- luacheck configuration for protocols and example clinics (make test runs
-- `luacheck protocols examples`). The globals below are exactly what the
-- sandbox gives a protocol (runtime/engine/sandbox.c: rg__base_allowed, rg__libs,
-- the replacements load/setmetatable/print/require, and the fields it
-- removes); anything else, io/os/debug/_G included, is an error there and so
-- is flagged here. Keep the two lists in step.
std = "protocol"
stds.protocol = {
  read_globals = {
    "assert", "error", "ipairs", "next", "pairs", "pcall", "rawequal", "rawget",
    "rawlen", "select", "tonumber", "tostring", "type", "xpcall", "getmetatable",
    "_VERSION", "load", "setmetatable", "print", "require",
    -- the libraries are read-only in the sandbox (frozen proxies)
    string = { fields = {
      "byte", "char", "find", "format", "gmatch", "gsub", "len", "lower", "match",
      "pack", "packsize", "rep", "reverse", "sub", "unpack", "upper" } },  -- no dump
    table = { fields = { "concat", "insert", "move", "pack", "remove", "sort", "unpack" } },
    math = { fields = {
      "abs", "ceil", "cos", "deg", "exp", "floor", "fmod", "huge", "log", "max",
      "maxinteger", "min", "mininteger", "modf", "pi", "rad", "sin", "sqrt", "tan",
      "tointeger", "type", "ult", "acos", "asin", "atan" } },  -- no random, randomseed
    utf8 = { fields = { "char", "charpattern", "codepoint", "codes", "len", "offset" } },
    coroutine = { fields = {
      "close", "create", "isyieldable", "resume", "running", "status", "wrap", "yield" } },
  },
}
-- check(h, now, p) is a fixed signature: a rule need not use all three
unused_args = false
max_line_length = 120
-- a scenario's expected transition reads best on one line
files["**/tests/*_test.lua"] = { max_line_length = false }
-- the LuaLS annotations: declarations with empty bodies, long type lines
files["protocols/meta/*.lua"] = { ignore = { "241" }, max_line_length = false }
