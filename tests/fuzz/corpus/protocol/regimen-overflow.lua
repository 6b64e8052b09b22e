local R = require "regimen"
return R.days(math.maxinteger) + R.hours(1e300) + R.at("0000-01-01T00:00:00+23:59")
