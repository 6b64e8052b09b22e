-- Scenarios for ketamine/preparation.lua: prep.missing.
-- Run: build/regimen test protocols/ketamine/tests

local enrolled = { program = "ketamine" }
local dose = { dose_mg_per_kg = 0.5 }

return {
  {
    name = "prep.missing opens at a first infusion without preparation and resolves when one is recorded",
    events = {
      { "2026-03-01T09:00:00Z", "enrolled", enrolled },
      { "2026-03-02T09:00:00Z", "infusion", dose },
      { "2026-03-03T10:00:00Z", "preparation_session" },
    },
    horizon = "2026-03-10T00:00:00Z",
    only = { "prep.missing" },
    expect = {
      { "2026-03-02T09:00:00Z", "open", "prep.missing", severity = "info",
        message = "no preparation session before the first infusion on 2 Mar 2026" },
      { "2026-03-03T10:00:00Z", "resolved", "prep.missing" },
    },
  },
  {
    name = "prep.missing does not open when preparation came before the first infusion",
    events = {
      { "2026-03-01T09:00:00Z", "enrolled", enrolled },
      { "2026-03-01T10:00:00Z", "preparation_session" },
      { "2026-03-02T09:00:00Z", "infusion", dose },
      { "2026-03-04T09:00:00Z", "infusion", dose },
    },
    horizon = "2026-03-10T00:00:00Z",
    only = { "prep.missing" },
    expect = {},
  },
  {
    name = "prep.missing does not open before any infusion",
    events = {
      { "2026-03-01T09:00:00Z", "enrolled", enrolled },
    },
    horizon = "2026-03-10T00:00:00Z",
    only = { "prep.missing" },
    expect = {},
  },
  {
    name = "prep.missing with offsets: preparation recorded 1 minute before the first infusion (+02:00 vs -05:00)",
    events = {
      { "2026-03-01T09:00:00Z", "enrolled", enrolled },
      { "2026-03-02T15:59:00+02:00", "preparation_session" }, -- 13:59 UTC
      { "2026-03-02T09:00:00-05:00", "infusion", dose },      -- 14:00 UTC
    },
    horizon = "2026-03-10T00:00:00Z",
    only = { "prep.missing" },
    expect = {},
  },
  {
    name = "prep.missing: a preparation from an earlier course does not count after re-enrolment; discharge resolves",
    events = {
      { "2026-03-01T09:00:00Z", "enrolled", enrolled },
      { "2026-03-01T10:00:00Z", "preparation_session" },
      { "2026-03-02T09:00:00Z", "infusion", dose },
      { "2026-03-10T09:00:00Z", "discharged" },
      { "2026-04-01T09:00:00Z", "enrolled", enrolled },
      { "2026-04-02T09:00:00Z", "infusion", dose },
      { "2026-04-05T09:00:00Z", "discharged" },
    },
    horizon = "2026-04-10T00:00:00Z",
    only = { "prep.missing" },
    expect = {
      { "2026-04-02T09:00:00Z", "open", "prep.missing", message = "first infusion on 2 Apr 2026" },
      { "2026-04-05T09:00:00Z", "resolved", "prep.missing" },
    },
  },
}
