-- Scenarios across the whole ketamine set (every rule's transitions compared,
-- no `only`): a course that follows the plan, and a troubled course whose
-- events arrive out of order in several time zones and end in a discharge.
-- Run: build/regimen test protocols/ketamine/tests

local dose = { dose_mg_per_kg = 0.5 }
local function phq9(score, item9) return { instrument = "phq9", score = score, item9 = item9 } end

return {
  {
    name = "a course that follows the plan raises no alert at all",
    events = {
      { "2026-03-01T09:00:00Z", "enrolled", { program = "ketamine" } },
      { "2026-03-01T10:00:00Z", "assessment", phq9(18, 0) },
      { "2026-03-01T11:00:00Z", "preparation_session" },
      { "2026-03-02T08:45:00Z", "vitals", { systolic = 128, diastolic = 82, phase = "pre" } },
      { "2026-03-02T09:00:00Z", "infusion", dose },
      { "2026-03-03T09:00:00Z", "integration_session" },
      { "2026-03-04T09:00:00Z", "infusion", dose },
      { "2026-03-05T09:00:00Z", "integration_session" },
      { "2026-03-06T09:00:00Z", "infusion", dose },
      { "2026-03-06T10:00:00Z", "adverse_event", { kind = "nausea", severity = "mild" } },
      { "2026-03-07T09:00:00Z", "integration_session" },
      { "2026-03-08T09:00:00Z", "infusion", dose },
      { "2026-03-09T09:00:00Z", "integration_session" },
      { "2026-03-10T09:00:00Z", "infusion", dose },
      { "2026-03-11T09:00:00Z", "integration_session" },
      { "2026-03-12T09:00:00Z", "infusion", dose },
      { "2026-03-13T09:00:00Z", "integration_session" },
      { "2026-03-13T10:00:00Z", "assessment", phq9(8, 0) },   -- the maintenance baseline
      { "2026-03-20T09:00:00Z", "followup_visit" },
      { "2026-04-09T09:00:00Z", "infusion", dose },           -- the first booster, exactly when due
      { "2026-04-10T09:00:00Z", "integration_session" },
      { "2026-04-10T10:00:00Z", "assessment", phq9(10, 0) },
    },
    horizon = "2026-05-01T00:00:00Z",
    expect = {},
  },
  {
    name = "a troubled course, events out of order in -05:00 / +02:00 / UTC, then discharge resolves everything",
    events = {
      { "2026-03-31T11:00:00+02:00", "discharged" },                                       -- 09:00 UTC
      { "2026-03-03T04:00:00-05:00", "assessment", phq9(16, 1) },                          -- 09:00 UTC
      { "2026-03-02T15:00:00-05:00", "infusion", { dose_mg_per_kg = 0.6 } },               -- 20:00 UTC, 11 h later
      { "2026-03-02T09:00:00Z", "infusion", dose },
      { "2026-03-02T21:45:00+02:00", "vitals", { systolic = 165, diastolic = 95, phase = "pre" } }, -- 19:45 UTC
      { "2026-03-02T22:00:00Z", "adverse_event", { kind = "nausea", severity = "moderate" } },
      { "2026-03-01T09:00:00Z", "enrolled", { program = "ketamine", acute_infusions = 2 } },
    },
    horizon = "2026-04-15T00:00:00Z",
    expect = {
      { "2026-03-02T09:00:00Z", "open", "prep.missing" },
      { "2026-03-02T19:45:00Z", "open", "safety.bp-high", message = "165/95" },
      { "2026-03-02T20:00:00Z", "open", "acute.too-soon", message = "only 11.0 h" },
      { "2026-03-02T22:00:00Z", "open", "safety.adverse-event", severity = "warning" },
      { "2026-03-03T09:00:00Z", "open", "booster.relapse", message = "PHQ-9 of 16 (baseline 16)" },
      { "2026-03-03T09:00:00Z", "open", "safety.suicidality" },
      { "2026-03-05T09:00:00Z", "open", "integration.missing", message = "infusion on 2 Mar 2026" },
      { "2026-03-05T20:00:00Z", "open", "integration.missing", message = "infusion on 2 Mar 2026" },
      { "2026-03-16T20:00:00Z", "open", "followup.visit-overdue", message = "acute series ended 2 Mar 2026" },
      { "2026-03-30T20:00:00Z", "open", "booster.due", message = "booster infusion due since 30 Mar 2026" },
      { "2026-03-31T09:00:00Z", "resolved", "prep.missing" },
      { "2026-03-31T09:00:00Z", "resolved", "safety.bp-high" },
      { "2026-03-31T09:00:00Z", "resolved", "acute.too-soon" },
      { "2026-03-31T09:00:00Z", "resolved", "safety.adverse-event" },
      { "2026-03-31T09:00:00Z", "resolved", "booster.relapse" },
      { "2026-03-31T09:00:00Z", "resolved", "safety.suicidality" },
      { "2026-03-31T09:00:00Z", "resolved", "integration.missing" },
      { "2026-03-31T09:00:00Z", "resolved", "integration.missing" },
      { "2026-03-31T09:00:00Z", "resolved", "followup.visit-overdue" },
      { "2026-03-31T09:00:00Z", "resolved", "booster.due" },
    },
  },
  {
    name = "a patient's plan does not outlive a discharge: re-enrolment starts from the defaults",
    events = {
      { "2026-03-01T09:00:00Z", "enrolled", { program = "ketamine", acute_infusions = 2 } },
      { "2026-03-02T09:00:00Z", "discharged" },
      { "2026-03-03T09:00:00Z", "enrolled", { program = "ketamine" } },
      { "2026-03-04T09:00:00Z", "preparation_session" },
      { "2026-03-04T10:00:00Z", "infusion", { dose_mg_per_kg = 0.5 } },
      { "2026-03-04T12:00:00Z", "integration_session" },
      { "2026-03-05T10:00:00Z", "infusion", { dose_mg_per_kg = 0.5 } },
      { "2026-03-05T12:00:00Z", "integration_session" },
    },
    horizon = "2026-03-08T00:00:00Z",
    only = { "acute.infusion-due" },
    expect = {
      { "2026-03-07T10:00:00Z", "open", "acute.infusion-due", message = "infusion 3 of 6" },
    },
  },
}
