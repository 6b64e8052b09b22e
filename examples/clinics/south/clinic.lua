-- Clinic "south": runs the shipped ketamine protocol set with its own
-- defaults, plus one rule of its own (anxiety.lua). Illustrative values, not
-- medical advice.
local R = require "regimen"

return {
  description = "South clinic: 8-infusion acute series, boosters every 42 days, "
             .. "blood-pressure limit 150/95, and a GAD-7 rule of its own.",
  include = { "ketamine" },
  timezone = "Europe/Berlin",
  hours = {
    mon = { "07:30", "17:00" }, tue = { "07:30", "17:00" }, wed = { "07:30", "17:00" },
    thu = { "07:30", "17:00" }, fri = { "07:30", "13:00" },
    sat = false, sun = false,
  },
  closures = { "2026-04-03", "2026-04-06", "2026-05-01", "2026-12-25", "2026-12-26" },
  params = {
    acute_infusions       = 8,  -- every protocol with this parameter; the shipped default is 6
    booster_interval_days = R.days(42), -- the shipped default is R.days(28)
    ["ketamine.safety"] = {
      bp_systolic_max  = 150,   -- mmHg; the shipped default is 160
      bp_diastolic_max = 95,    -- mmHg; the shipped default is 100
    },
  },
}
