-- Scenarios for esketamine/safety.lua: rems.adverse-event.
-- Run: build/regimen test protocols/esketamine/tests

local enrolled = { program = "esketamine" }
local dose = { dose_mg = 84, devices = 3 }
local function ae(kind, severity) return { kind = kind, severity = severity } end

return {
  {
    name = "rems.adverse-event is critical for sedation, dissociation and respiratory depression until a follow-up visit",
    events = {
      { "2026-03-02T08:00:00Z", "enrolled", enrolled },
      { "2026-03-02T09:00:00Z", "esketamine_dose", dose },
      { "2026-03-02T09:25:00Z", "adverse_event", ae("dissociation", "mild"), id = "ae-1" },
      { "2026-03-02T09:50:00Z", "adverse_event", ae("sedation", "moderate"), id = "ae-2" },
      { "2026-03-02T10:05:00Z", "adverse_event", ae("respiratory_depression"), id = "ae-3" },
      { "2026-03-03T10:00:00Z", "followup_visit" },
    },
    horizon = "2026-03-05T00:00:00Z",
    only = { "rems.adverse-event" },
    expect = {
      { "2026-03-02T09:25:00Z", "open", "rems.adverse-event", severity = "critical",
        message = "mild dissociation on 2 Mar 2026 at 09:25 after esketamine: follow the patient up" },
      { "2026-03-02T09:50:00Z", "open", "rems.adverse-event", message = "moderate sedation" },
      { "2026-03-02T10:05:00Z", "open", "rems.adverse-event", message = "unspecified respiratory depression" },
      { "2026-03-03T10:00:00Z", "resolved", "rems.adverse-event", message = "dissociation" },
      { "2026-03-03T10:00:00Z", "resolved", "rems.adverse-event", message = "sedation" },
      { "2026-03-03T10:00:00Z", "resolved", "rems.adverse-event", message = "respiratory" },
    },
  },
  {
    name = "rems.adverse-event: nausea does not open it; a visit before the event does not resolve it",
    events = {
      { "2026-03-02T08:00:00Z", "enrolled", enrolled },
      { "2026-03-02T08:30:00Z", "followup_visit" },
      { "2026-03-02T09:00:00Z", "esketamine_dose", dose },
      { "2026-03-02T09:20:00Z", "adverse_event", ae("nausea", "severe") },
      { "2026-03-02T09:30:00Z", "adverse_event", ae("sedation", "severe") },
    },
    horizon = "2026-03-05T00:00:00Z",
    only = { "rems.adverse-event" },
    expect = {
      { "2026-03-02T09:30:00Z", "open", "rems.adverse-event", message = "severe sedation" },
    },
  },
  {
    name = "rems.adverse-event follows the clinic's list of kinds",
    params = { ["esketamine.safety"] = { rems_adverse_kinds = "sedation dissociation respiratory_depression hypertension" } },
    events = {
      { "2026-03-02T08:00:00Z", "enrolled", enrolled },
      { "2026-03-02T09:45:00Z", "adverse_event", ae("hypertension", "moderate") },
    },
    horizon = "2026-03-05T00:00:00Z",
    only = { "rems.adverse-event" },
    expect = {
      { "2026-03-02T09:45:00Z", "open", "rems.adverse-event", message = "moderate hypertension" },
    },
  },
}
