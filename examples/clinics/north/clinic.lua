-- Clinic "north": runs the shipped ketamine protocol set with one stricter
-- default. Illustrative values, not medical advice.
return {
  description = "North clinic: shipped ketamine set, stricter blood-pressure limit.",
  include = { "ketamine" },
  -- The clinic's own time: what staff read is in this zone, and alerts that
  -- fall due while it is closed reach staff at the next opening (critical
  -- ones at once).
  timezone = "America/New_York",
  hours = {
    mon = { "08:00", "18:00" }, tue = { "08:00", "18:00" }, wed = { "08:00", "18:00" },
    thu = { "08:00", "18:00" }, fri = { "08:00", "16:00" },
    sat = false, sun = false,
  },
  closures = { "2026-05-25", "2026-07-03", "2026-12-25" }, -- Memorial Day, Independence Day (observed), Christmas
  notify_at_once = { "critical" },
  params = {
    ["ketamine.safety"] = {
      bp_systolic_max = 150, -- mmHg; the shipped default is 160
    },
  },
}
