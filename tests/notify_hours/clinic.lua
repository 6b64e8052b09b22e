-- Clinic "daytime" (tests/test_notify.c): escalation counted in opening
-- hours. A critical goes to the desk at once; if nobody acknowledges it
-- within 15 minutes of opening time, to the prescriber, then once more 30
-- opening minutes later. The clinic is open on weekdays 08:00-18:00 Berlin
-- time, so what is left of the count at closing goes on at the next opening.
-- Illustrative values, not medical advice.
local R = require "regimen"

return {
  description = "Escalation counted in opening hours.",
  include = { "ketamine" },
  timezone = "Europe/Berlin",
  hours = {
    mon = { "08:00", "18:00" }, tue = { "08:00", "18:00" }, wed = { "08:00", "18:00" },
    thu = { "08:00", "18:00" }, fri = { "08:00", "18:00" }, sat = false, sun = false,
  },
  notify = {
    receivers = {
      desk       = { webhook = "https://desk.example/hook" },
      prescriber = { email = "dr.lee@example.org" },
    },
    routes = {
      { match = { severity = "critical" }, count = "opening hours",
        steps = { { to = "desk" }, { after = R.minutes(15), to = "prescriber" } },
        repeat_every = R.minutes(30), repeat_times = 1 },
    },
  },
}
