-- Scenarios for the south clinic: its own rule (south.gad7-rising) and its
-- defaults for the shipped set (8 acute infusions, 42-day boosters, 150/95).
-- Run: build/regimen test examples/clinics/south/tests

local enrolled = { program = "ketamine" }
local dose = { dose_mg_per_kg = 0.5 }
local function gad7(score) return { instrument = "gad7", score = score } end

return {
  {
    name = "south.gad7-rising opens at a GAD-7 5 points above the first of the course and resolves when it falls back",
    protocols = "../",
    events = {
      { "2026-03-01T09:00:00Z", "enrolled", enrolled },
      { "2026-03-01T10:00:00Z", "assessment", gad7(8) },
      { "2026-03-08T10:00:00Z", "assessment", gad7(12) },   -- 4 above: not yet
      { "2026-03-15T10:00:00Z", "assessment", gad7(13) },   -- 5 above
      { "2026-03-22T10:00:00Z", "assessment", gad7(15) },   -- still: the same alert
      { "2026-03-29T10:00:00Z", "assessment", gad7(9) },
    },
    horizon = "2026-04-01T00:00:00Z",
    only = { "south.gad7-rising" },
    expect = {
      { "2026-03-15T10:00:00Z", "open", "south.gad7-rising", severity = "warning",
        message = "GAD-7 of 13 on 15 Mar 2026 is 5 points above the first of the course (8 on 1 Mar 2026)" },
      { "2026-03-29T10:00:00Z", "resolved", "south.gad7-rising" },
    },
  },
  {
    name = "south.gad7-rising: the first GAD-7 of an earlier course does not count; discharge resolves",
    protocols = "../",
    events = {
      { "2026-03-01T09:00:00+02:00", "enrolled", enrolled },
      { "2026-03-01T10:00:00+02:00", "assessment", gad7(4) },
      { "2026-03-10T09:00:00+02:00", "discharged" },
      { "2026-04-01T09:00:00-05:00", "enrolled", enrolled },
      { "2026-04-01T10:00:00-05:00", "assessment", gad7(7) },
      { "2026-04-08T10:00:00-05:00", "assessment", gad7(11) },  -- 7 above 4, only 4 above 7
      { "2026-04-15T10:00:00-05:00", "assessment", gad7(12) },
      { "2026-04-20T10:00:00-05:00", "discharged" },
    },
    horizon = "2026-05-01T00:00:00Z",
    only = { "south.gad7-rising" },
    expect = {
      { "2026-04-15T15:00:00Z", "open", "south.gad7-rising", message = "5 points above the first of the course (7 on 1 Apr 2026)" },
      { "2026-04-20T15:00:00Z", "resolved", "south.gad7-rising" },
    },
  },
  {
    name = "south.gad7-rising does not open with a single GAD-7 or without any",
    protocols = "../",
    events = {
      { "2026-03-01T09:00:00Z", "enrolled", enrolled },
      { "2026-03-01T10:00:00Z", "assessment", gad7(21) },
      { "2026-03-01T09:00:00Z", "enrolled", enrolled, patient = "p2" },
      { "2026-03-01T10:00:00Z", "assessment", { instrument = "phq9", score = 20, item9 = 0 }, patient = "p2" },
    },
    horizon = "2026-04-01T00:00:00Z",
    only = { "south.gad7-rising" },
    expect = {},
  },
  {
    name = "south defaults: the acute series has 8 infusions and boosters come every 42 days",
    protocols = "../",
    events = {
      { "2026-03-01T09:00:00Z", "enrolled", enrolled },
      { "2026-03-02T09:00:00Z", "infusion", dose },
      { "2026-03-04T09:00:00Z", "infusion", dose },
      { "2026-03-06T09:00:00Z", "infusion", dose },
      { "2026-03-08T09:00:00Z", "infusion", dose },
      { "2026-03-10T09:00:00Z", "infusion", dose },
      { "2026-03-12T09:00:00Z", "infusion", dose },
      { "2026-03-15T09:00:00Z", "infusion", dose },
      { "2026-03-17T09:00:00Z", "infusion", dose },
    },
    horizon = "2026-05-01T00:00:00Z",
    only = { "acute.infusion-due", "booster.due" },
    expect = {
      { "2026-03-14T09:00:00Z", "open", "acute.infusion-due", message = "infusion 7 of 8" },
      { "2026-03-15T09:00:00Z", "resolved", "acute.infusion-due" },
      -- 42 days on the clinic's calendar (Europe/Berlin): the last infusion
      -- was at 10:00 CET, so the booster is due at 10:00 CEST, an hour
      -- earlier in UTC than 42 x 24 h after it, summer time began on 29 Mar
      { "2026-04-28T10:00:00+02:00", "open", "booster.due", message = "every 42 days" },
    },
  },
  {
    name = "south defaults: blood pressure 150/95 before an infusion is too high, 149/94 is not",
    protocols = "../",
    events = {
      { "2026-03-01T09:00:00Z", "enrolled", enrolled },
      { "2026-03-02T08:45:00Z", "vitals", { systolic = 149, diastolic = 94, phase = "pre" } },
      { "2026-03-04T08:45:00Z", "vitals", { systolic = 135, diastolic = 95, phase = "pre" } },
    },
    horizon = "2026-03-05T00:00:00Z",
    only = { "safety.bp-high" },
    expect = {
      { "2026-03-04T08:45:00Z", "open", "safety.bp-high", message = "135/95 before infusion on 4 Mar 2026 (limit 150/95)" },
    },
  },
}
