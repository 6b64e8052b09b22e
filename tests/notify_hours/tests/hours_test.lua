-- Escalation counted in opening hours (clinic.lua): times in UTC, the
-- clinic in Berlin (CET = UTC+1, CEST from 29 March 2026 = UTC+2).
-- Run: build/regimen test tests/notify_hours/tests

local enrolled = { program = "ketamine" }
local high_bp = { systolic = 175, diastolic = 105, heart_rate = 80, phase = "pre" }

return {
  {
    name = "a critical at 17:50 on a Friday reaches the prescriber at 08:05 on Monday",
    events = {
      { "2026-03-06T15:00:00Z", "enrolled", enrolled },
      { "2026-03-06T16:50:00Z", "vitals", high_bp }, -- Friday 17:50 CET
    },
    horizon = "2026-03-09T12:00:00Z",
    only = { "safety.bp-high" },
    expect = { { "2026-03-06T16:50:00Z", "open", "safety.bp-high" } },
    notifications = {
      { "2026-03-06T16:50:00Z", "desk", step = 1 },
      -- 10 minutes on Friday, closed at 18:00 and the weekend, 5 on Monday
      { "2026-03-09T07:05:00Z", "prescriber", step = 2 },           -- 08:05 CET
      { "2026-03-09T07:35:00Z", "prescriber", step = 2, round = 1 }, -- 08:35 CET
    },
  },
  {
    name = "the count crosses the change to summer time at the clinic's local opening",
    events = {
      { "2026-03-27T15:00:00Z", "enrolled", enrolled },
      { "2026-03-27T16:50:00Z", "vitals", high_bp }, -- Friday 17:50 CET
    },
    horizon = "2026-03-30T12:00:00Z",
    only = { "safety.bp-high" },
    expect = { { "2026-03-27T16:50:00Z", "open", "safety.bp-high" } },
    notifications = {
      { "2026-03-27T16:50:00Z", "desk", step = 1 },
      { "2026-03-30T06:05:00Z", "prescriber", step = 2 },           -- 08:05 CEST
      { "2026-03-30T06:35:00Z", "prescriber", step = 2, round = 1 }, -- 08:35 CEST
    },
  },
  {
    name = "an acknowledgement on Monday morning before minute 15 of opening time stops the chain",
    events = {
      { "2026-03-06T15:00:00Z", "enrolled", enrolled },
      { "2026-03-06T16:50:00Z", "vitals", high_bp },
    },
    horizon = "2026-03-09T12:00:00Z",
    only = { "safety.bp-high" },
    expect = { { "2026-03-06T16:50:00Z", "open", "safety.bp-high" } },
    acks = { { "2026-03-09T07:04:00Z", "safety.bp-high" } },
    notifications = {
      { "2026-03-06T16:50:00Z", "desk", step = 1 },
    },
  },
}
