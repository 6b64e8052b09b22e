-- Clinic "oncall": the shipped ketamine set with a notification policy
-- (docs/notifications.md). A critical alert goes to the desk at once and to
-- the prescriber 15 minutes later if nobody has acknowledged it, then again
-- every 30 minutes, twice; warnings go to the desk, one message per patient
-- for what falls due together, and are held back while the patient has an
-- open critical. Illustrative values, not medical advice.
local R = require "regimen"

return {
  description = "On-call example: escalation, inhibition and grouping.",
  include = { "ketamine" },
  notify = {
    receivers = {
      desk       = { webhook = "https://desk.example/hook" },
      prescriber = { email = "dr.lee@example.org" },
    },
    routes = {
      { match = { severity = "critical" },
        steps = { { to = "desk" }, { after = R.minutes(15), to = "prescriber" } },
        repeat_every = R.minutes(30), repeat_times = 2 },
      { match = { severity = "warning" }, steps = { { to = "desk" } }, group_by = "patient" },
    },
    inhibit = { { when = { severity = "critical" }, hold = { severity = "warning" } } },
  },
}
