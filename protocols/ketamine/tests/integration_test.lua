-- Scenarios for ketamine/integration.lua: integration.missing.
-- Run: build/regimen test protocols/ketamine/tests
local R = require "regimen"

local enrolled = { program = "ketamine" }
local dose = { dose_mg_per_kg = 0.5 }

return {
  {
    name = "integration.missing opens 72 h after an infusion without a session and resolves with a later session",
    events = {
      { "2026-03-01T09:00:00Z", "enrolled", enrolled },
      { "2026-03-02T09:00:00Z", "infusion", dose },
      { "2026-03-06T10:00:00Z", "integration_session", { modality = "talk" } },
    },
    horizon = "2026-03-10T00:00:00Z",
    only = { "integration.missing" },
    expect = {
      { "2026-03-05T09:00:00Z", "open", "integration.missing", severity = "warning",
        message = "no integration session within 72 h of the infusion on 2 Mar 2026" },
      { "2026-03-06T10:00:00Z", "resolved", "integration.missing" },
    },
  },
  {
    name = "integration.missing does not open for a session 71 h 59 min after the infusion",
    events = {
      { "2026-03-01T09:00:00Z", "enrolled", enrolled },
      { "2026-03-02T09:00:00Z", "infusion", dose },
      { "2026-03-05T08:59:00Z", "integration_session" },
    },
    horizon = "2026-03-10T00:00:00Z",
    only = { "integration.missing" },
    expect = {},
  },
  {
    name = "integration.missing opens at 72 h and resolves at a session 72 h 01 min after the infusion",
    events = {
      { "2026-03-01T09:00:00Z", "enrolled", enrolled },
      { "2026-03-02T09:00:00Z", "infusion", dose },
      { "2026-03-05T09:01:00Z", "integration_session" },
    },
    horizon = "2026-03-10T00:00:00Z",
    only = { "integration.missing" },
    expect = {
      { "2026-03-05T09:00:00Z", "open", "integration.missing" },
      { "2026-03-05T09:01:00Z", "resolved", "integration.missing" },
    },
  },
  {
    name = "integration.missing does not open for a session exactly 72 h after the infusion",
    events = {
      { "2026-03-01T09:00:00Z", "enrolled", enrolled },
      { "2026-03-02T09:00:00Z", "infusion", dose },
      { "2026-03-05T09:00:00Z", "integration_session" },
    },
    horizon = "2026-03-10T00:00:00Z",
    only = { "integration.missing" },
    expect = {},
  },
  {
    name = "integration.missing at 71 h 59 min and 72 h 01 min with -05:00 and +02:00 offsets (two patients)",
    events = {
      { "2026-03-01T09:00:00-05:00", "enrolled", enrolled },
      { "2026-03-02T14:00:00-05:00", "infusion", dose },            -- 19:00 UTC
      { "2026-03-05T20:59:00+02:00", "integration_session" },       -- 18:59 UTC: 71 h 59 min
      { "2026-03-01T09:00:00-05:00", "enrolled", enrolled, patient = "p2" },
      { "2026-03-02T14:00:00-05:00", "infusion", dose, patient = "p2" },
      { "2026-03-05T21:01:00+02:00", "integration_session", patient = "p2" }, -- 19:01 UTC: 72 h 01 min
    },
    horizon = "2026-03-10T00:00:00Z",
    only = { "integration.missing" },
    expect = {
      { "2026-03-05T19:00:00Z", "open", "integration.missing", patient = "p2",
        message = "infusion on 2 Mar 2026" },
      { "2026-03-05T19:01:00Z", "resolved", "integration.missing", patient = "p2" },
    },
  },
  {
    name = "integration.missing: one alert per infusion; one later session resolves both",
    events = {
      { "2026-03-01T09:00:00Z", "enrolled", enrolled },
      { "2026-03-02T09:00:00Z", "infusion", dose },
      { "2026-03-04T09:00:00Z", "infusion", dose },
      { "2026-03-08T09:00:00Z", "integration_session" },
    },
    horizon = "2026-03-10T00:00:00Z",
    only = { "integration.missing" },
    expect = {
      { "2026-03-05T09:00:00Z", "open", "integration.missing", message = "infusion on 2 Mar 2026" },
      { "2026-03-07T09:00:00Z", "open", "integration.missing", message = "infusion on 4 Mar 2026" },
      { "2026-03-08T09:00:00Z", "resolved", "integration.missing", message = "infusion on 2 Mar 2026" },
      { "2026-03-08T09:00:00Z", "resolved", "integration.missing", message = "infusion on 4 Mar 2026" },
    },
  },
  {
    name = "integration.missing: a session before the infusion does not count",
    events = {
      { "2026-03-01T09:00:00Z", "enrolled", enrolled },
      { "2026-03-01T12:00:00Z", "integration_session" },
      { "2026-03-02T09:00:00Z", "infusion", dose },
    },
    horizon = "2026-03-10T00:00:00Z",
    only = { "integration.missing" },
    expect = {
      { "2026-03-05T09:00:00Z", "open", "integration.missing" },
    },
  },
  {
    name = "integration.missing uses the clinic's integration_within (48 h)",
    params = { ["ketamine.integration"] = { integration_within = R.hours(48) } },
    events = {
      { "2026-03-01T09:00:00Z", "enrolled", enrolled },
      { "2026-03-02T09:00:00Z", "infusion", dose },
      { "2026-03-04T12:00:00Z", "integration_session" },
    },
    horizon = "2026-03-10T00:00:00Z",
    only = { "integration.missing" },
    expect = {
      { "2026-03-04T09:00:00Z", "open", "integration.missing", message = "within 48 h" },
      { "2026-03-04T12:00:00Z", "resolved", "integration.missing" },
    },
  },
  {
    name = "integration.missing resolves at discharge and old infusions do not count after re-enrolment",
    events = {
      { "2026-03-01T09:00:00Z", "enrolled", enrolled },
      { "2026-03-02T09:00:00Z", "infusion", dose },
      { "2026-03-06T09:00:00Z", "discharged" },
      { "2026-03-20T09:00:00Z", "enrolled", enrolled },
      { "2026-03-21T09:00:00Z", "infusion", dose },
      { "2026-03-22T09:00:00Z", "integration_session" },
    },
    horizon = "2026-03-30T00:00:00Z",
    only = { "integration.missing" },
    expect = {
      { "2026-03-05T09:00:00Z", "open", "integration.missing" },
      { "2026-03-06T09:00:00Z", "resolved", "integration.missing" },
    },
  },
}
