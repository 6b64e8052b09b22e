-- Scenarios for esketamine/induction.lua: induction.dose-due,
-- induction.dose-overdue and induction.benefit-assessment.
-- Run: build/regimen test protocols/esketamine/tests

local enrolled = { program = "esketamine" }
local dose = { dose_mg = 56, devices = 2 }
local function phq9(score) return { instrument = "phq9", score = score } end

return {
  -- induction.dose-due ------------------------------------------------------
  {
    name = "induction.dose-due: twice weekly in week 1, due 3 days after the last dose, resolved by the next dose",
    events = {
      { "2026-03-02T08:00:00Z", "enrolled", enrolled },
      { "2026-03-02T09:00:00Z", "esketamine_dose", dose },
      { "2026-03-05T10:00:00Z", "esketamine_dose", dose },
    },
    horizon = "2026-03-08T12:00:00Z",
    only = { "induction.dose-due" },
    expect = {
      { "2026-03-05T09:00:00Z", "open", "induction.dose-due", severity = "info",
        message = "esketamine dose 2 due since 5 Mar 2026 (twice weekly, weeks 1-4)" },
      { "2026-03-05T10:00:00Z", "resolved", "induction.dose-due" },
      { "2026-03-08T10:00:00Z", "open", "induction.dose-due", message = "esketamine dose 3 due since 8 Mar 2026" },
    },
  },
  {
    name = "induction.dose-due: a dose in week 5 makes the next one due a week later",
    events = {
      { "2026-03-02T08:00:00Z", "enrolled", enrolled },
      { "2026-03-02T09:00:00Z", "esketamine_dose", dose },
      { "2026-03-31T09:00:00Z", "esketamine_dose", dose },   -- day 29: week 5
    },
    horizon = "2026-04-08T00:00:00Z",
    only = { "induction.dose-due" },
    expect = {
      { "2026-03-05T09:00:00Z", "open", "induction.dose-due", message = "dose 2 due since 5 Mar 2026" },
      { "2026-03-31T09:00:00Z", "resolved", "induction.dose-due" },
      { "2026-04-07T09:00:00Z", "open", "induction.dose-due",
        message = "esketamine dose 3 due since 7 Apr 2026 (weekly, weeks 5-8)" },
    },
  },
  {
    name = "induction.dose-due: from week 9 the patient's plan of every 14 days applies",
    events = {
      { "2026-03-02T08:00:00Z", "enrolled", { program = "esketamine", maintenance_interval_days = 14 } },
      { "2026-03-02T09:00:00Z", "esketamine_dose", dose },
      { "2026-04-28T09:00:00Z", "esketamine_dose", dose },   -- day 57: week 9
    },
    horizon = "2026-05-13T00:00:00Z",
    only = { "induction.dose-due" },
    expect = {
      { "2026-03-05T09:00:00Z", "open", "induction.dose-due" },
      { "2026-04-28T09:00:00Z", "resolved", "induction.dose-due" },
      { "2026-05-12T09:00:00Z", "open", "induction.dose-due",
        message = "esketamine dose 3 due since 12 May 2026 (every 14 days from week 9)" },
    },
  },

  -- induction.dose-overdue --------------------------------------------------
  {
    name = "induction.dose-overdue opens 4 days after the due date and resolves with the dose",
    events = {
      { "2026-03-02T08:00:00Z", "enrolled", enrolled },
      { "2026-03-02T09:00:00Z", "esketamine_dose", dose },
      { "2026-03-10T09:00:00Z", "esketamine_dose", dose },
    },
    horizon = "2026-03-12T00:00:00Z",
    only = { "induction.dose-overdue" },
    expect = {
      { "2026-03-09T09:00:00Z", "open", "induction.dose-overdue", severity = "warning",
        message = "esketamine dose 2 overdue since 9 Mar 2026 (twice weekly, weeks 1-4; last dose 2 Mar 2026)" },
      { "2026-03-10T09:00:00Z", "resolved", "induction.dose-overdue" },
    },
  },
  {
    name = "induction.*: nothing is due before the first dose",
    events = {
      { "2026-03-02T08:00:00Z", "enrolled", enrolled },
    },
    horizon = "2026-05-01T00:00:00Z",
    only = { "induction.dose-due", "induction.dose-overdue", "induction.benefit-assessment" },
    expect = {},
  },

  -- induction.benefit-assessment --------------------------------------------
  {
    name = "induction.benefit-assessment opens at the end of week 4 with the baseline PHQ-9 and resolves at an assessment",
    events = {
      { "2026-03-01T10:00:00Z", "enrolled", enrolled },
      { "2026-03-01T10:30:00Z", "assessment", phq9(20) },
      { "2026-03-02T09:00:00Z", "esketamine_dose", dose },
      { "2026-03-16T09:00:00Z", "assessment", phq9(15) },   -- mid-induction: too early to count
      { "2026-03-31T11:00:00Z", "assessment", phq9(9) },
    },
    horizon = "2026-04-10T00:00:00Z",
    only = { "induction.benefit-assessment" },
    expect = {
      { "2026-03-30T09:00:00Z", "open", "induction.benefit-assessment", severity = "info",
        message = "end of induction on 30 Mar 2026: assess the benefit of esketamine (PHQ-9 or another instrument; baseline PHQ-9 20 on 1 Mar 2026)" },
      { "2026-03-31T11:00:00Z", "resolved", "induction.benefit-assessment" },
    },
  },
  {
    name = "induction.benefit-assessment does not open for an assessment in the last week of induction",
    events = {
      { "2026-03-01T10:00:00Z", "enrolled", enrolled },
      { "2026-03-02T09:00:00Z", "esketamine_dose", dose },
      { "2026-03-24T09:00:00Z", "assessment", { instrument = "madrs", score = 18 } },
    },
    horizon = "2026-04-10T00:00:00Z",
    only = { "induction.benefit-assessment" },
    expect = {},
  },
}
