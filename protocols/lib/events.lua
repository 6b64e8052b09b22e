-- lib/events.lua: the event types regimen knows and the data fields each
-- carries. `regimen check` refuses a protocol or module that reads a data
-- field no type here carries (a misspelt systolic), or asks the history for
-- a type not here (a misspelt infusion): such a rule would pass its tests
-- on made-up events and never fire on real ones.
--
-- A clinic adds its own types, and fields to these, in clinic.lua, in the
-- same form:
--     events = { vitals = { "spo2" }, phone_call = {} },
-- Events may carry more fields than listed (they are stored as sent); this
-- is what rules may read. Depends on nothing.
--     local events = require "lib.events"

return {
  -- the ketamine course (protocols/ketamine); the plan fields set the
  -- course's parameters for the patient (docs/protocols.md)
  enrolled = { "program", "acute_infusions", "booster_interval_days" }, -- plan fields optional
  preparation_session = {},
  infusion = { "dose_mg_per_kg", "duration_min" },       -- duration_min optional
  vitals = { "systolic", "diastolic", "heart_rate", "phase" }, -- heart_rate, phase optional
  assessment = { "instrument", "score", "item9" },      -- item9 optional (PHQ-9)
  integration_session = { "modality" },                 -- optional
  followup_visit = {},
  adverse_event = { "kind", "severity", "description" }, -- description optional (FHIR)
  plan_adjusted = { "acute_infusions", "booster_interval_days" }, -- any of them
  discharged = {},

  -- esketamine nasal spray and its REMS (protocols/esketamine, lib/sessions.lua)
  esketamine_dose = { "dose_mg", "devices" },
  monitoring_end = {},
  rems_enrollment = {},
  rems_form = { "dose" },                                -- the id of the dose it reports
}
