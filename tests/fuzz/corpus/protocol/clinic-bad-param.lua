local R = require "regimen"
return R.protocol {
  id = "fuzz.min", version = "1",
  params = { n = 3, name = "x", on = true },
  plan_events = { "enrolled" },
  applies = function(h, now, p) return true end,
  rules = {
    { id = "fuzz.min.r1", severity = "warning", description = "d",
      check = function(h, now, p) return R.alert { message = "m", due = now + R.days(1) } end },
  },
}
--@@ clinic.lua
return { params = { n = "five", nope = 1 } }
