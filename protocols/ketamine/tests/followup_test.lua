-- Scenarios for ketamine/followup.lua: followup.visit-overdue.
-- Run: build/regimen test protocols/ketamine/tests

local enrolled = { program = "ketamine" }
local dose = { dose_mg_per_kg = 0.5 }

-- An acute series of six infusions, every two days from 2 Mar 2026 09:00 UTC
-- (the last on 12 Mar), then the extra events given.
local function series(...)
  local events = {
    { "2026-03-01T09:00:00Z", "enrolled", enrolled },
    { "2026-03-02T09:00:00Z", "infusion", dose },
    { "2026-03-04T09:00:00Z", "infusion", dose },
    { "2026-03-06T09:00:00Z", "infusion", dose },
    { "2026-03-08T09:00:00Z", "infusion", dose },
    { "2026-03-10T09:00:00Z", "infusion", dose },
    { "2026-03-12T09:00:00Z", "infusion", dose },
  }
  for _, e in ipairs({ ... }) do events[#events + 1] = e end
  return events
end

return {
  {
    name = "followup.visit-overdue opens 14 days after the acute series ended and resolves with a visit",
    events = series({ "2026-03-28T09:00:00Z", "followup_visit" }),
    horizon = "2026-04-05T00:00:00Z",
    only = { "followup.visit-overdue" },
    expect = {
      { "2026-03-26T09:00:00Z", "open", "followup.visit-overdue", severity = "info",
        message = "follow-up visit overdue since 26 Mar 2026 (acute series ended 12 Mar 2026)" },
      { "2026-03-28T09:00:00Z", "resolved", "followup.visit-overdue" },
    },
  },
  {
    name = "followup.visit-overdue does not open for a visit within 14 days, or exactly at 14 days",
    events = {
      { "2026-03-01T09:00:00Z", "enrolled", enrolled },
      { "2026-03-02T09:00:00Z", "infusion", dose },
      { "2026-03-02T09:00:00Z", "enrolled", enrolled, patient = "p2" },
      { "2026-03-03T09:00:00Z", "infusion", dose, patient = "p2" },
      { "2026-03-10T09:00:00Z", "followup_visit" },
      { "2026-03-17T11:00:00+02:00", "followup_visit", patient = "p2" }, -- 09:00 UTC, exactly 14 days
    },
    params = { acute_infusions = 1 },
    horizon = "2026-05-01T00:00:00Z",
    only = { "followup.visit-overdue" },
    expect = {},
  },
  {
    name = "followup.visit-overdue: a visit during the acute series does not count",
    events = series({ "2026-03-09T09:00:00Z", "followup_visit" }),
    horizon = "2026-03-27T00:00:00Z",
    only = { "followup.visit-overdue" },
    expect = {
      { "2026-03-26T09:00:00Z", "open", "followup.visit-overdue" },
    },
  },
  {
    name = "followup.visit-overdue does not open while the series is under way; the patient's plan decides when it ends",
    events = {
      { "2026-03-01T09:00:00Z", "enrolled", enrolled },
      { "2026-03-02T09:00:00Z", "infusion", dose },
      { "2026-03-04T09:00:00Z", "infusion", dose },
      { "2026-03-06T09:00:00Z", "infusion", dose },
      { "2026-03-01T09:00:00Z", "enrolled", enrolled, patient = "p2" },
      { "2026-03-01T10:00:00Z", "plan_adjusted", { acute_infusions = 3 }, patient = "p2" },
      { "2026-03-02T09:00:00Z", "infusion", dose, patient = "p2" },
      { "2026-03-04T09:00:00Z", "infusion", dose, patient = "p2" },
      { "2026-03-06T09:00:00Z", "infusion", dose, patient = "p2" },
    },
    horizon = "2026-04-01T00:00:00Z",
    only = { "followup.visit-overdue" },
    expect = {
      { "2026-03-20T09:00:00Z", "open", "followup.visit-overdue", patient = "p2",
        message = "acute series ended 6 Mar 2026" },
    },
  },
  {
    name = "followup.visit-overdue resolves at discharge",
    events = series({ "2026-03-30T09:00:00Z", "discharged" }),
    horizon = "2026-04-05T00:00:00Z",
    only = { "followup.visit-overdue" },
    expect = {
      { "2026-03-26T09:00:00Z", "open", "followup.visit-overdue" },
      { "2026-03-30T09:00:00Z", "resolved", "followup.visit-overdue" },
    },
  },
}
