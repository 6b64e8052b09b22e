-- Scenarios for ketamine/assessment.lua: assessment.due.
-- Run: build/regimen test protocols/ketamine/tests

local enrolled = { program = "ketamine" }
local dose = { dose_mg_per_kg = 0.5 }
local function phq9(score) return { instrument = "phq9", score = score } end

return {
  {
    name = "assessment.due opens 14 days after enrolment without a PHQ-9 and resolves when one is recorded",
    events = {
      { "2026-03-01T09:00:00Z", "enrolled", enrolled },
      { "2026-03-16T09:00:00Z", "assessment", phq9(12) },
    },
    horizon = "2026-03-31T00:00:00Z",
    only = { "assessment.due" },
    expect = {
      { "2026-03-15T09:00:00Z", "open", "assessment.due", severity = "info",
        message = "PHQ-9 due since 15 Mar 2026 (none since enrolment on 1 Mar 2026)" },
      { "2026-03-16T09:00:00Z", "resolved", "assessment.due" },
      { "2026-03-30T09:00:00Z", "open", "assessment.due",
        message = "PHQ-9 due since 30 Mar 2026 (last one on 16 Mar 2026)" },
    },
  },
  {
    name = "assessment.due does not open for a PHQ-9 13 days 23 h after the last; a GAD-7 does not count",
    events = {
      { "2026-03-01T09:00:00Z", "enrolled", enrolled },
      { "2026-03-10T09:00:00Z", "assessment", { instrument = "gad7", score = 8 } },
      { "2026-03-15T08:00:00Z", "assessment", phq9(12) },
    },
    horizon = "2026-03-29T07:59:00Z",
    only = { "assessment.due" },
    expect = {},
  },
  {
    name = "assessment.due does not open for a PHQ-9 exactly at the due moment (+02:00)",
    events = {
      { "2026-03-01T09:00:00Z", "enrolled", enrolled },
      { "2026-03-15T11:00:00+02:00", "assessment", phq9(12) },   -- 09:00 UTC
    },
    horizon = "2026-03-29T08:59:00Z",
    only = { "assessment.due" },
    expect = {},
  },
  {
    name = "assessment.due waits 30 days between PHQ-9s in the maintenance phase",
    events = {
      { "2026-03-01T09:00:00Z", "enrolled", { program = "ketamine", acute_infusions = 2 } },
      { "2026-03-02T09:00:00Z", "infusion", dose },
      { "2026-03-04T09:00:00Z", "infusion", dose },
      { "2026-03-05T09:00:00Z", "assessment", phq9(8) },
    },
    horizon = "2026-04-05T00:00:00Z",
    only = { "assessment.due" },
    expect = {
      { "2026-04-04T09:00:00Z", "open", "assessment.due", message = "last one on 5 Mar 2026" },
    },
  },
  {
    name = "assessment.due: when the series completes within 14 days of enrolment, the 30-day interval applies",
    events = {
      { "2026-03-01T09:00:00Z", "enrolled", { program = "ketamine", acute_infusions = 2 } },
      { "2026-03-02T09:00:00Z", "infusion", dose },
      { "2026-03-04T09:00:00Z", "infusion", dose },
    },
    horizon = "2026-04-01T00:00:00Z",
    only = { "assessment.due" },
    expect = {
      { "2026-03-31T09:00:00Z", "open", "assessment.due", message = "PHQ-9 due since 31 Mar 2026" },
    },
  },
  {
    name = "assessment.due opened in the acute phase stays open when the series completes, until a PHQ-9",
    events = {
      { "2026-03-01T09:00:00Z", "enrolled", { program = "ketamine", acute_infusions = 2 } },
      { "2026-03-10T09:00:00Z", "infusion", dose },
      { "2026-03-16T09:00:00Z", "infusion", dose },
      { "2026-03-18T09:00:00Z", "assessment", phq9(9) },
    },
    horizon = "2026-04-10T00:00:00Z",
    only = { "assessment.due" },
    expect = {
      { "2026-03-15T09:00:00Z", "open", "assessment.due" },
      { "2026-03-18T09:00:00Z", "resolved", "assessment.due" },
    },
  },
  {
    name = "assessment.due: the series completing exactly at the 14-day moment means the 30-day interval",
    events = {
      { "2026-03-01T09:00:00Z", "enrolled", { program = "ketamine", acute_infusions = 2 } },
      { "2026-03-10T09:00:00Z", "infusion", dose },
      { "2026-03-15T09:00:00Z", "infusion", dose },
    },
    horizon = "2026-04-01T00:00:00Z",
    only = { "assessment.due" },
    expect = {
      { "2026-03-31T09:00:00Z", "open", "assessment.due" },
    },
  },
  {
    name = "assessment.due: after discharge and re-enrolment, a PHQ-9 of the earlier course does not count",
    events = {
      { "2026-03-01T09:00:00Z", "enrolled", enrolled },
      { "2026-03-20T09:00:00Z", "assessment", phq9(14) },
      { "2026-03-22T09:00:00Z", "discharged" },
      { "2026-03-25T09:00:00Z", "enrolled", enrolled },
    },
    horizon = "2026-04-10T00:00:00Z",
    only = { "assessment.due" },
    expect = {
      { "2026-03-15T09:00:00Z", "open", "assessment.due" },
      { "2026-03-20T09:00:00Z", "resolved", "assessment.due" },
      { "2026-04-08T09:00:00Z", "open", "assessment.due", message = "none since enrolment on 25 Mar 2026" },
    },
  },
}
