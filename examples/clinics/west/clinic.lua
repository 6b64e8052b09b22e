-- Clinic "west": gives both ketamine infusions and esketamine nasal spray
-- (Spravato), so it runs both shipped sets. Illustrative values, not medical
-- advice.
return {
  description = "West clinic: the shipped ketamine and esketamine (Spravato REMS) sets.",
  include = { "ketamine", "esketamine" },
  timezone = "America/Chicago",
  hours = {
    mon = { "08:00", "18:00" }, tue = { "08:00", "18:00" }, wed = { "08:00", "18:00" },
    thu = { "08:00", "18:00" }, fri = { "08:00", "17:00" },
    sat = false, sun = false,
  },
  notify_at_once = { "critical" },
  params = {
    -- a stricter pre-dose limit for the ketamine infusions only; the
    -- esketamine set keeps the REMS's 140/90
    ["ketamine.safety"] = { bp_systolic_max = 150 },
  },
}
