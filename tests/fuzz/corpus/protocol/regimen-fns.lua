local R = require "regimen"
local t = R.at("2026-03-02T14:05:00-05:00")
local s = R.time(t) .. R.date(t) .. R.day(t) .. R.time(math.mininteger) .. R.day(math.maxinteger)
local d = R.days(1.5) + R.hours(2) + R.minutes(3) + R.seconds(4) + R.weeks(1)
return R.protocol { id = "r", version = s, rules = { { id = "x", severity = "critical", check = function() return R.alert { message = s .. R.in_days(d) .. R.in_hours(d), key = 1, severity = "info", ends = t } end } } }
