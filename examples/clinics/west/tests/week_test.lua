-- Scenarios for the esketamine set in west's own time (America/Chicago):
-- weeks of treatment count on the clinic's calendar across the change to
-- summer time (8 Mar 2026). Run: build/regimen test examples/clinics/west/tests

local enrolled = { program = "esketamine" }
local dose = { dose_mg = 84, devices = 3 }

return {
  {
    name = "a dose 4 calendar weeks after the first (27 days 23 hours by the clock, across the DST change) is in week 5: weekly",
    events = {
      { "2026-03-02T08:00:00-06:00", "enrolled", enrolled },
      { "2026-03-02T08:10:00-06:00", "rems_enrollment" },
      { "2026-03-02T09:00:00-06:00", "esketamine_dose", dose },
      { "2026-03-30T09:00:00-05:00", "esketamine_dose", dose },
    },
    horizon = "2026-04-07T00:00:00Z",
    only = { "induction.dose-due" },
    expect = {
      { "2026-03-05T09:00:00-06:00", "open", "induction.dose-due", message = "dose 2 due since 5 Mar 2026 (twice weekly" },
      { "2026-03-30T09:00:00-05:00", "resolved", "induction.dose-due" },
      { "2026-04-06T09:00:00-05:00", "open", "induction.dose-due",
        message = "esketamine dose 3 due since 6 Apr 2026 (weekly, weeks 5-8)" },
    },
  },
  {
    name = "the end of induction is 4 calendar weeks after the first dose, at the same local time",
    events = {
      { "2026-03-02T08:00:00-06:00", "enrolled", enrolled },
      { "2026-03-02T09:00:00-06:00", "esketamine_dose", dose },
    },
    horizon = "2026-04-01T00:00:00Z",
    only = { "induction.benefit-assessment" },
    expect = {
      { "2026-03-30T09:00:00-05:00", "open", "induction.benefit-assessment",
        message = "end of induction on 30 Mar 2026" },
    },
  },
  {
    name = "messages read the clinic's clock: the 40-minute reading of a 09:00 dose is due at 09:40 local",
    events = {
      { "2026-03-10T08:00:00-05:00", "enrolled", enrolled },
      { "2026-03-10T08:10:00-05:00", "rems_enrollment" },
      { "2026-03-10T08:50:00-05:00", "vitals", { systolic = 120, diastolic = 80, phase = "pre" } },
      { "2026-03-10T09:00:00-05:00", "esketamine_dose", dose },
      { "2026-03-10T09:45:00-05:00", "vitals", { systolic = 124, diastolic = 82, phase = "post" } },
    },
    horizon = "2026-03-10T23:00:00Z",
    only = { "bp.post-dose-due" },
    expect = {
      { "2026-03-10T09:40:00-05:00", "open", "bp.post-dose-due",
        message = "blood pressure due 40 minutes after the esketamine dose of 09:00 (at 09:40)" },
      { "2026-03-10T09:45:00-05:00", "resolved", "bp.post-dose-due" },
    },
  },
}
