-- Scenarios for ketamine/maintenance.lua: booster.due, booster.overdue,
-- booster.relapse, booster.frequency and booster.tolerance.
-- Most use a plan of 2 acute infusions (on the enrolment) to reach the
-- maintenance phase quickly.
-- Run: build/regimen test protocols/ketamine/tests

local R = require "regimen"
local short = { program = "ketamine", acute_infusions = 2 }
local dose = { dose_mg_per_kg = 0.5 }
local function mg(d) return { dose_mg_per_kg = d } end
local function phq9(score) return { instrument = "phq9", score = score } end

return {
  -- booster.due -------------------------------------------------------------
  {
    name = "booster.due opens 28 days after the last acute infusion and resolves with the booster",
    events = {
      { "2026-03-01T09:00:00Z", "enrolled", { program = "ketamine" } },
      { "2026-03-02T09:00:00Z", "infusion", dose },
      { "2026-03-04T09:00:00Z", "infusion", dose },
      { "2026-03-06T09:00:00Z", "infusion", dose },
      { "2026-03-08T09:00:00Z", "infusion", dose },
      { "2026-03-10T09:00:00Z", "infusion", dose },
      { "2026-03-12T09:00:00Z", "infusion", dose },
      { "2026-04-12T09:00:00Z", "infusion", dose },
    },
    horizon = "2026-05-11T00:00:00Z",
    only = { "booster.due" },
    expect = {
      { "2026-04-09T09:00:00Z", "open", "booster.due", severity = "info",
        message = "booster infusion due since 9 Apr 2026 (every 28 days; last infusion 12 Mar 2026)" },
      { "2026-04-12T09:00:00Z", "resolved", "booster.due" },
      { "2026-05-10T09:00:00Z", "open", "booster.due", message = "last infusion 12 Apr 2026" },
    },
  },
  {
    name = "booster.due does not open for a booster one minute before, or exactly at, its due moment",
    events = {
      { "2026-03-01T09:00:00Z", "enrolled", short },
      { "2026-03-02T09:00:00Z", "infusion", dose },
      { "2026-03-04T09:00:00Z", "infusion", dose },
      { "2026-04-01T08:59:00Z", "infusion", dose },
      { "2026-04-29T08:59:00Z", "infusion", dose },
    },
    horizon = "2026-05-27T08:58:00Z",
    only = { "booster.due" },
    expect = {},
  },
  {
    name = "booster.due does not open in the acute phase",
    events = {
      { "2026-03-01T09:00:00Z", "enrolled", { program = "ketamine" } },
      { "2026-03-02T09:00:00Z", "infusion", dose },
    },
    horizon = "2026-05-01T00:00:00Z",
    only = { "booster.due", "booster.overdue" },
    expect = {},
  },
  {
    name = "booster.due follows the patient's booster_interval_days from enrolment (42) and plan_adjusted (56)",
    events = {
      { "2026-03-01T09:00:00Z", "enrolled", { program = "ketamine", acute_infusions = 2, booster_interval_days = 42 } },
      { "2026-03-02T09:00:00Z", "infusion", dose },
      { "2026-03-04T09:00:00Z", "infusion", dose },
      { "2026-04-20T09:00:00Z", "plan_adjusted", { booster_interval_days = 56 } },
    },
    horizon = "2026-05-01T00:00:00Z",
    only = { "booster.due" },
    expect = {
      { "2026-04-15T09:00:00Z", "open", "booster.due", message = "every 42 days" },
      { "2026-04-20T09:00:00Z", "resolved", "booster.due" },
      { "2026-04-29T09:00:00Z", "open", "booster.due", message = "every 56 days" },
    },
  },
  {
    name = "booster.due uses the clinic's booster_interval_days, with -05:00 times",
    params = { booster_interval_days = R.days(42) },
    events = {
      { "2026-03-01T09:00:00-05:00", "enrolled", short },
      { "2026-03-02T09:00:00-05:00", "infusion", dose },
      { "2026-03-04T21:00:00-05:00", "infusion", dose },   -- 5 Mar 02:00 UTC
    },
    horizon = "2026-05-01T00:00:00Z",
    only = { "booster.due" },
    expect = {
      { "2026-04-16T02:00:00Z", "open", "booster.due", message = "due since 16 Apr 2026 (every 42 days; last infusion 5 Mar 2026)" },
    },
  },

  -- booster.overdue ---------------------------------------------------------
  {
    name = "booster.overdue opens 14 days past the booster's due date and resolves with the booster",
    events = {
      { "2026-03-01T09:00:00Z", "enrolled", short },
      { "2026-03-02T09:00:00Z", "infusion", dose },
      { "2026-03-04T09:00:00Z", "infusion", dose },
      { "2026-04-16T09:00:00Z", "infusion", dose },
    },
    horizon = "2026-05-01T00:00:00Z",
    only = { "booster.due", "booster.overdue" },
    expect = {
      { "2026-04-01T09:00:00Z", "open", "booster.due" },
      { "2026-04-15T09:00:00Z", "open", "booster.overdue", severity = "warning",
        message = "booster infusion overdue since 15 Apr 2026 (it was due 1 Apr 2026; last infusion 4 Mar 2026)" },
      { "2026-04-16T09:00:00Z", "resolved", "booster.due" },
      { "2026-04-16T09:00:00Z", "resolved", "booster.overdue" },
    },
  },
  {
    name = "booster.overdue does not open for a booster exactly at the overdue moment",
    events = {
      { "2026-03-01T09:00:00Z", "enrolled", short },
      { "2026-03-02T09:00:00Z", "infusion", dose },
      { "2026-03-04T09:00:00Z", "infusion", dose },
      { "2026-04-15T09:00:00Z", "infusion", dose },
    },
    horizon = "2026-05-01T00:00:00Z",
    only = { "booster.overdue" },
    expect = {},
  },

  -- booster.relapse ---------------------------------------------------------
  {
    name = "booster.relapse opens at a PHQ-9 5 points above the baseline and resolves at a PHQ-9 that no longer meets it",
    events = {
      { "2026-03-01T09:00:00Z", "enrolled", short },
      { "2026-03-02T09:00:00Z", "infusion", dose },
      { "2026-03-04T09:00:00Z", "infusion", dose },
      { "2026-03-05T09:00:00Z", "assessment", phq9(9) },    -- the baseline
      { "2026-03-20T09:00:00Z", "assessment", phq9(13) },   -- 4 above: not yet
      { "2026-03-25T09:00:00Z", "assessment", phq9(14) },   -- 5 above
      { "2026-03-27T09:00:00Z", "assessment", phq9(14) },   -- still: the same alert
      { "2026-03-28T09:00:00Z", "assessment", phq9(10) },
    },
    horizon = "2026-03-30T00:00:00Z",
    only = { "booster.relapse" },
    expect = {
      { "2026-03-25T09:00:00Z", "open", "booster.relapse", severity = "warning",
        message = "PHQ-9 of 14 (baseline 9) since the last infusion on 4 Mar 2026" },
      { "2026-03-28T09:00:00Z", "resolved", "booster.relapse" },
    },
  },
  {
    name = "booster.relapse opens at a PHQ-9 of 15 (14 is not enough) and resolves with an infusion",
    events = {
      { "2026-03-01T09:00:00Z", "enrolled", short },
      { "2026-03-02T09:00:00Z", "infusion", dose },
      { "2026-03-04T09:00:00Z", "infusion", dose },
      { "2026-03-05T09:00:00Z", "assessment", phq9(12) },   -- the baseline
      { "2026-03-10T09:00:00Z", "assessment", phq9(14) },
      { "2026-03-12T09:00:00Z", "assessment", phq9(15) },
      { "2026-03-14T09:00:00Z", "infusion", dose },
    },
    horizon = "2026-03-20T00:00:00Z",
    only = { "booster.relapse" },
    expect = {
      { "2026-03-12T09:00:00Z", "open", "booster.relapse", message = "PHQ-9 of 15 (baseline 12)" },
      { "2026-03-14T09:00:00Z", "resolved", "booster.relapse" },
    },
  },
  {
    name = "booster.relapse: the baseline itself at 16 opens it; a PHQ-9 before the last infusion does not count",
    events = {
      { "2026-03-01T09:00:00Z", "enrolled", short },
      { "2026-03-02T09:00:00Z", "infusion", dose },
      { "2026-03-04T09:00:00Z", "infusion", dose },
      { "2026-03-05T09:00:00Z", "assessment", phq9(16) },
      { "2026-03-07T09:00:00Z", "infusion", dose },
      { "2026-03-12T09:00:00Z", "assessment", phq9(11) },
    },
    horizon = "2026-03-20T00:00:00Z",
    only = { "booster.relapse" },
    expect = {
      { "2026-03-05T09:00:00Z", "open", "booster.relapse", message = "PHQ-9 of 16 (baseline 16)" },
      { "2026-03-07T09:00:00Z", "resolved", "booster.relapse" },
    },
  },
  {
    name = "booster.relapse does not open in the acute phase",
    events = {
      { "2026-03-01T09:00:00Z", "enrolled", { program = "ketamine" } },
      { "2026-03-02T09:00:00Z", "infusion", dose },
      { "2026-03-04T09:00:00Z", "infusion", dose },
      { "2026-03-05T09:00:00Z", "assessment", phq9(20) },
    },
    horizon = "2026-03-20T00:00:00Z",
    only = { "booster.relapse" },
    expect = {},
  },

  -- booster.frequency -------------------------------------------------------
  {
    name = "booster.frequency opens at a 3rd maintenance infusion within 21 days and resolves when the 21 days pass",
    events = {
      { "2026-03-01T09:00:00Z", "enrolled", short },
      { "2026-03-02T09:00:00Z", "infusion", dose },
      { "2026-03-04T09:00:00Z", "infusion", dose },
      { "2026-03-10T09:00:00Z", "infusion", dose },
      { "2026-03-17T09:00:00Z", "infusion", dose },
      { "2026-03-24T09:00:00Z", "infusion", dose },
    },
    horizon = "2026-04-10T00:00:00Z",
    only = { "booster.frequency" },
    expect = {
      { "2026-03-24T09:00:00Z", "open", "booster.frequency", severity = "warning",
        message = "3 or more maintenance infusions within 21 days (since 24 Mar 2026)" },
      { "2026-03-31T09:00:00Z", "resolved", "booster.frequency" },
    },
  },
  {
    name = "booster.frequency does not open for 3 maintenance infusions spanning exactly 21 days",
    events = {
      { "2026-03-01T09:00:00Z", "enrolled", short },
      { "2026-03-02T09:00:00Z", "infusion", dose },
      { "2026-03-04T09:00:00Z", "infusion", dose },
      { "2026-03-10T09:00:00Z", "infusion", dose },
      { "2026-03-20T09:00:00Z", "infusion", dose },
      { "2026-03-31T09:00:00Z", "infusion", dose },
    },
    horizon = "2026-04-30T00:00:00Z",
    only = { "booster.frequency" },
    expect = {},
  },
  {
    name = "booster.frequency: acute infusions do not count; a 4th booster extends the same alert",
    events = {
      { "2026-03-01T09:00:00Z", "enrolled", { program = "ketamine" } },
      { "2026-03-02T09:00:00Z", "infusion", dose },
      { "2026-03-04T09:00:00Z", "infusion", dose },
      { "2026-03-06T09:00:00Z", "infusion", dose },
      { "2026-03-08T09:00:00Z", "infusion", dose },
      { "2026-03-10T09:00:00Z", "infusion", dose },
      { "2026-03-12T09:00:00Z", "infusion", dose },
      { "2026-03-14T09:00:00Z", "infusion", dose },
      { "2026-03-16T09:00:00Z", "infusion", dose },
      { "2026-03-18T09:00:00Z", "infusion", dose },
      { "2026-03-25T09:00:00Z", "infusion", dose },
    },
    horizon = "2026-04-30T00:00:00Z",
    only = { "booster.frequency" },
    expect = {
      { "2026-03-18T09:00:00Z", "open", "booster.frequency", message = "since 18 Mar 2026" },
      { "2026-04-06T09:00:00Z", "resolved", "booster.frequency" },
    },
  },

  -- booster.tolerance -------------------------------------------------------
  {
    name = "booster.tolerance opens at a third successive dose increase; an equal dose keeps it; a lower one resolves it",
    events = {
      { "2026-03-01T09:00:00Z", "enrolled", { program = "ketamine" } },
      { "2026-03-02T09:00:00Z", "infusion", mg(0.5) },
      { "2026-03-04T09:00:00Z", "infusion", mg(0.6) },
      { "2026-03-06T09:00:00Z", "infusion", mg(0.7) },
      { "2026-03-08T09:00:00Z", "infusion", mg(0.8) },
      { "2026-03-10T09:00:00Z", "infusion", mg(0.8) },
      { "2026-03-12T09:00:00Z", "infusion", mg(0.7) },
    },
    horizon = "2026-03-20T00:00:00Z",
    only = { "booster.tolerance" },
    expect = {
      { "2026-03-08T09:00:00Z", "open", "booster.tolerance", severity = "warning",
        message = "dose raised 3 times in a row (0.5 → 0.6 → 0.7 → 0.8 mg/kg)" },
      { "2026-03-12T09:00:00Z", "resolved", "booster.tolerance" },
    },
  },
  {
    name = "booster.tolerance does not open for two increases, an equal dose, then an increase",
    events = {
      { "2026-03-01T09:00:00Z", "enrolled", { program = "ketamine" } },
      { "2026-03-02T09:00:00Z", "infusion", mg(0.5) },
      { "2026-03-04T09:00:00Z", "infusion", mg(0.6) },
      { "2026-03-06T09:00:00Z", "infusion", mg(0.7) },
      { "2026-03-08T09:00:00Z", "infusion", mg(0.7) },
      { "2026-03-10T09:00:00Z", "infusion", mg(0.8) },
    },
    horizon = "2026-03-20T00:00:00Z",
    only = { "booster.tolerance" },
    expect = {},
  },
  {
    name = "booster.tolerance: a dose of 1.0 mg/kg is fine, 1.1 opens it, 1.05 keeps it, 0.9 resolves it",
    events = {
      { "2026-03-01T09:00:00Z", "enrolled", short },
      { "2026-03-02T09:00:00Z", "infusion", mg(0.5) },
      { "2026-03-04T09:00:00Z", "infusion", mg(1.0) },
      { "2026-04-01T09:00:00Z", "infusion", mg(1.1) },
      { "2026-04-29T09:00:00Z", "infusion", mg(1.05) },
      { "2026-05-27T09:00:00Z", "infusion", mg(0.9) },
    },
    horizon = "2026-06-01T00:00:00Z",
    only = { "booster.tolerance" },
    expect = {
      { "2026-04-01T09:00:00Z", "open", "booster.tolerance", message = "dose of 1.1 mg/kg is above 1 mg/kg" },
      { "2026-05-27T09:00:00Z", "resolved", "booster.tolerance" },
    },
  },

  -- the whole phase ---------------------------------------------------------
  {
    name = "maintenance: discharge resolves every open booster alert",
    events = {
      { "2026-03-01T09:00:00Z", "enrolled", short },
      { "2026-03-01T10:00:00Z", "preparation_session" },
      { "2026-03-02T09:00:00Z", "infusion", mg(0.5) },
      { "2026-03-03T09:00:00Z", "integration_session" },
      { "2026-03-04T09:00:00Z", "infusion", mg(0.5) },
      { "2026-03-04T10:00:00Z", "followup_visit" },
      { "2026-03-05T09:00:00Z", "assessment", phq9(8) },
      { "2026-03-05T10:00:00Z", "integration_session" },
      { "2026-04-20T09:00:00Z", "assessment", phq9(17) },
      { "2026-04-22T09:00:00Z", "discharged" },
    },
    horizon = "2026-05-01T00:00:00Z",
    expect = {
      { "2026-04-01T09:00:00Z", "open", "booster.due" },
      { "2026-04-04T09:00:00Z", "open", "assessment.due", message = "last one on 5 Mar 2026" },
      { "2026-04-15T09:00:00Z", "open", "booster.overdue" },
      { "2026-04-20T09:00:00Z", "resolved", "assessment.due" },
      { "2026-04-20T09:00:00Z", "open", "booster.relapse", message = "PHQ-9 of 17 (baseline 8)" },
      { "2026-04-22T09:00:00Z", "resolved", "booster.due" },
      { "2026-04-22T09:00:00Z", "resolved", "booster.overdue" },
      { "2026-04-22T09:00:00Z", "resolved", "booster.relapse" },
    },
  },
}
