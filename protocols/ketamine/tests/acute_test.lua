-- Scenarios for ketamine/acute.lua: acute.infusion-due, acute.infusion-overdue,
-- acute.too-soon and acute.window-exceeded.
-- Run: build/regimen test protocols/ketamine/tests

local enrolled = { program = "ketamine" }
local dose = { dose_mg_per_kg = 0.5 }

return {
  -- acute.infusion-due ------------------------------------------------------
  {
    name = "acute.infusion-due opens 2 days after an infusion and resolves with the next",
    events = {
      { "2026-03-01T09:00:00Z", "enrolled", enrolled },
      { "2026-03-02T09:00:00Z", "infusion", dose },
      { "2026-03-05T09:00:00Z", "infusion", dose },
    },
    horizon = "2026-03-10T00:00:00Z",
    only = { "acute.infusion-due" },
    expect = {
      { "2026-03-04T09:00:00Z", "open", "acute.infusion-due", message = "infusion 2 of 6 due since 4 Mar 2026", severity = "info" },
      { "2026-03-05T09:00:00Z", "resolved", "acute.infusion-due" },
      { "2026-03-07T09:00:00Z", "open", "acute.infusion-due", message = "infusion 3 of 6 due since 7 Mar 2026" },
    },
  },
  {
    name = "acute.infusion-due does not open when the next infusion comes exactly at the due moment",
    events = {
      { "2026-03-01T09:00:00Z", "enrolled", enrolled },
      { "2026-03-02T09:00:00Z", "infusion", dose },
      { "2026-03-04T09:00:00Z", "infusion", dose },
    },
    horizon = "2026-03-06T08:59:00Z",
    only = { "acute.infusion-due" },
    expect = {},
  },
  {
    name = "acute.infusion-due does not open before the first infusion",
    events = {
      { "2026-03-01T09:00:00Z", "enrolled", enrolled },
      { "2026-03-01T10:00:00Z", "preparation_session" },
    },
    horizon = "2026-04-01T00:00:00Z",
    only = { "acute.infusion-due", "acute.infusion-overdue", "acute.window-exceeded" },
    expect = {},
  },
  {
    name = "acute.infusion-due stops once the series is complete (acute_infusions = 2 on enrolment)",
    events = {
      { "2026-03-01T09:00:00Z", "enrolled", { program = "ketamine", acute_infusions = 2 } },
      { "2026-03-02T09:00:00Z", "infusion", dose },
      { "2026-03-05T09:00:00Z", "infusion", dose },
    },
    horizon = "2026-04-01T00:00:00Z",
    only = { "acute.infusion-due" },
    expect = {
      { "2026-03-04T09:00:00Z", "open", "acute.infusion-due", message = "infusion 2 of 2 due" },
      { "2026-03-05T09:00:00Z", "resolved", "acute.infusion-due" },
    },
  },
  {
    name = "acute.infusion-due with times given in -05:00 and +02:00",
    events = {
      { "2026-03-01T09:00:00-05:00", "enrolled", enrolled },
      { "2026-03-02T14:00:00-05:00", "infusion", dose },   -- 19:00 UTC
      { "2026-03-05T08:00:00+02:00", "infusion", dose },   -- 06:00 UTC
    },
    horizon = "2026-03-08T00:00:00Z",
    only = { "acute.infusion-due" },
    expect = {
      { "2026-03-04T19:00:00Z", "open", "acute.infusion-due", message = "infusion 2 of 6 due since 4 Mar 2026" },
      { "2026-03-05T06:00:00Z", "resolved", "acute.infusion-due" },
      { "2026-03-07T06:00:00Z", "open", "acute.infusion-due", message = "infusion 3 of 6 due since 7 Mar 2026" },
    },
  },
  {
    name = "acute.infusion-due: events given out of time order give the same alerts",
    events = {
      { "2026-03-05T09:00:00Z", "infusion", dose },
      { "2026-03-02T09:00:00Z", "infusion", dose },
      { "2026-03-01T09:00:00Z", "enrolled", enrolled },
    },
    horizon = "2026-03-10T00:00:00Z",
    only = { "acute.infusion-due" },
    expect = {
      { "2026-03-04T09:00:00Z", "open", "acute.infusion-due", message = "infusion 2 of 6" },
      { "2026-03-05T09:00:00Z", "resolved", "acute.infusion-due" },
      { "2026-03-07T09:00:00Z", "open", "acute.infusion-due", message = "infusion 3 of 6" },
    },
  },
  {
    name = "acute.infusion-due: a plan_adjusted lowering acute_infusions completes the series and resolves it",
    events = {
      { "2026-03-01T09:00:00Z", "enrolled", enrolled },
      { "2026-03-02T09:00:00Z", "infusion", dose },
      { "2026-03-04T09:00:00Z", "infusion", dose },
      { "2026-03-06T09:00:00Z", "infusion", dose },
      { "2026-03-08T09:00:00Z", "infusion", dose },
      { "2026-03-11T12:00:00Z", "plan_adjusted", { acute_infusions = 4 } },
    },
    horizon = "2026-03-20T00:00:00Z",
    only = { "acute.infusion-due" },
    expect = {
      { "2026-03-10T09:00:00Z", "open", "acute.infusion-due", message = "infusion 5 of 6" },
      { "2026-03-11T12:00:00Z", "resolved", "acute.infusion-due" },
    },
  },
  {
    name = "acute.infusion-due: the clinic's acute_infusions applies",
    params = { acute_infusions = 3 },
    events = {
      { "2026-03-01T09:00:00Z", "enrolled", enrolled },
      { "2026-03-02T09:00:00Z", "infusion", dose },
      { "2026-03-05T09:00:00Z", "infusion", dose },
      { "2026-03-08T09:00:00Z", "infusion", dose },
    },
    horizon = "2026-03-20T00:00:00Z",
    only = { "acute.infusion-due" },
    expect = {
      { "2026-03-04T09:00:00Z", "open", "acute.infusion-due", message = "infusion 2 of 3" },
      { "2026-03-05T09:00:00Z", "resolved", "acute.infusion-due" },
      { "2026-03-07T09:00:00Z", "open", "acute.infusion-due", message = "infusion 3 of 3" },
      { "2026-03-08T09:00:00Z", "resolved", "acute.infusion-due" },
    },
  },

  -- acute.infusion-overdue --------------------------------------------------
  {
    name = "acute.infusion-overdue opens 7 days after the last infusion and resolves with the next",
    events = {
      { "2026-03-01T09:00:00Z", "enrolled", enrolled },
      { "2026-03-02T09:00:00Z", "infusion", dose },
      { "2026-03-10T09:00:00Z", "infusion", dose },
    },
    horizon = "2026-03-12T12:00:00Z",
    only = { "acute.infusion-due", "acute.infusion-overdue" },
    expect = {
      { "2026-03-04T09:00:00Z", "open", "acute.infusion-due" },
      { "2026-03-09T09:00:00Z", "open", "acute.infusion-overdue", severity = "warning",
        message = "infusion 2 of 6 overdue since 9 Mar 2026" },
      { "2026-03-10T09:00:00Z", "resolved", "acute.infusion-due" },
      { "2026-03-10T09:00:00Z", "resolved", "acute.infusion-overdue" },
      { "2026-03-12T09:00:00Z", "open", "acute.infusion-due", message = "infusion 3 of 6" },
    },
  },
  {
    name = "acute.infusion-overdue does not open for an infusion 6 days 23 h 59 min later",
    events = {
      { "2026-03-01T09:00:00Z", "enrolled", enrolled },
      { "2026-03-02T09:00:00Z", "infusion", dose },
      { "2026-03-09T08:59:00Z", "infusion", dose },
    },
    horizon = "2026-03-16T08:00:00Z",
    only = { "acute.infusion-overdue" },
    expect = {},
  },
  {
    name = "acute.infusion-overdue does not open for an infusion exactly at the overdue moment",
    events = {
      { "2026-03-01T09:00:00Z", "enrolled", enrolled },
      { "2026-03-02T09:00:00Z", "infusion", dose },
      { "2026-03-09T09:00:00Z", "infusion", dose },
    },
    horizon = "2026-03-16T08:00:00Z",
    only = { "acute.infusion-overdue" },
    expect = {},
  },
  {
    name = "acute.infusion-overdue does not open after the series is complete",
    events = {
      { "2026-03-01T09:00:00Z", "enrolled", { program = "ketamine", acute_infusions = 1 } },
      { "2026-03-02T09:00:00Z", "infusion", dose },
    },
    horizon = "2026-03-25T00:00:00Z",
    only = { "acute.infusion-due", "acute.infusion-overdue" },
    expect = {},
  },

  -- acute.too-soon ----------------------------------------------------------
  {
    name = "acute.too-soon opens at an infusion 23 h after the previous one and resolves at a follow-up visit",
    events = {
      { "2026-03-01T09:00:00Z", "enrolled", enrolled },
      { "2026-03-02T09:00:00Z", "infusion", dose },
      { "2026-03-03T08:00:00Z", "infusion", dose },
      { "2026-03-04T10:00:00Z", "followup_visit" },
    },
    horizon = "2026-03-10T00:00:00Z",
    only = { "acute.too-soon" },
    expect = {
      { "2026-03-03T08:00:00Z", "open", "acute.too-soon", severity = "critical",
        message = "infusion on 3 Mar 2026 only 23.0 h after the previous one" },
      { "2026-03-04T10:00:00Z", "resolved", "acute.too-soon" },
    },
  },
  {
    name = "acute.too-soon does not open for infusions exactly 24 h apart",
    events = {
      { "2026-03-01T09:00:00Z", "enrolled", enrolled },
      { "2026-03-02T09:00:00Z", "infusion", dose },
      { "2026-03-03T09:00:00Z", "infusion", dose },
    },
    horizon = "2026-03-10T00:00:00Z",
    only = { "acute.too-soon" },
    expect = {},
  },
  {
    name = "acute.too-soon: one alert per infusion; a visit before the infusion does not resolve it",
    events = {
      { "2026-03-01T09:00:00Z", "enrolled", enrolled },
      { "2026-03-02T09:00:00Z", "infusion", dose },
      { "2026-03-02T20:00:00Z", "followup_visit" },
      { "2026-03-03T08:00:00Z", "infusion", dose },
      { "2026-03-03T20:00:00Z", "infusion", dose },
      { "2026-03-05T10:00:00Z", "followup_visit" },
    },
    horizon = "2026-03-10T00:00:00Z",
    only = { "acute.too-soon" },
    expect = {
      { "2026-03-03T08:00:00Z", "open", "acute.too-soon", message = "only 23.0 h" },
      { "2026-03-03T20:00:00Z", "open", "acute.too-soon", message = "only 12.0 h" },
      { "2026-03-05T10:00:00Z", "resolved", "acute.too-soon", message = "only 23.0 h" },
      { "2026-03-05T10:00:00Z", "resolved", "acute.too-soon", message = "only 12.0 h" },
    },
  },
  {
    name = "acute.too-soon also watches maintenance infusions, with offsets",
    events = {
      { "2026-03-01T09:00:00+02:00", "enrolled", { program = "ketamine", acute_infusions = 1 } },
      { "2026-03-02T09:00:00+02:00", "infusion", dose },   -- 07:00 UTC
      { "2026-03-02T20:00:00-05:00", "infusion", dose },   -- 3 Mar 01:00 UTC: 18 h later
    },
    horizon = "2026-03-10T00:00:00Z",
    only = { "acute.too-soon" },
    expect = {
      { "2026-03-03T01:00:00Z", "open", "acute.too-soon", message = "only 18.0 h" },
    },
  },

  -- acute.window-exceeded ---------------------------------------------------
  {
    name = "acute.window-exceeded opens 21 days after the first infusion and resolves when the series completes",
    events = {
      { "2026-03-01T09:00:00Z", "enrolled", enrolled },
      { "2026-03-02T09:00:00Z", "infusion", dose },
      { "2026-03-07T09:00:00Z", "infusion", dose },
      { "2026-03-12T09:00:00Z", "infusion", dose },
      { "2026-03-17T09:00:00Z", "infusion", dose },
      { "2026-03-22T09:00:00Z", "infusion", dose },
      { "2026-03-27T09:00:00Z", "infusion", dose },
    },
    horizon = "2026-04-10T00:00:00Z",
    only = { "acute.window-exceeded" },
    expect = {
      { "2026-03-23T09:00:00Z", "open", "acute.window-exceeded", severity = "warning",
        message = "acute series of 6 infusions not complete 21 days after the first infusion on 2 Mar 2026" },
      { "2026-03-27T09:00:00Z", "resolved", "acute.window-exceeded" },
    },
  },
  {
    name = "acute.window-exceeded does not open when the last infusion comes exactly 21 days after the first",
    events = {
      { "2026-03-01T09:00:00Z", "enrolled", enrolled },
      { "2026-03-02T09:00:00Z", "infusion", dose },
      { "2026-03-06T09:00:00Z", "infusion", dose },
      { "2026-03-10T09:00:00Z", "infusion", dose },
      { "2026-03-14T09:00:00Z", "infusion", dose },
      { "2026-03-18T09:00:00Z", "infusion", dose },
      { "2026-03-23T09:00:00Z", "infusion", dose },
    },
    horizon = "2026-04-10T00:00:00Z",
    only = { "acute.window-exceeded" },
    expect = {},
  },
  {
    name = "acute.window-exceeded follows the patient's plan: 4 infusions complete it, raising the plan to 8 reopens the series",
    events = {
      { "2026-03-01T09:00:00Z", "enrolled", { program = "ketamine", acute_infusions = 4 } },
      { "2026-03-02T09:00:00Z", "infusion", dose },
      { "2026-03-08T09:00:00Z", "infusion", dose },
      { "2026-03-14T09:00:00Z", "infusion", dose },
      { "2026-03-20T09:00:00Z", "infusion", dose },
      { "2026-03-21T09:00:00Z", "plan_adjusted", { acute_infusions = 8 } },
    },
    horizon = "2026-03-24T00:00:00Z",
    only = { "acute.window-exceeded", "acute.infusion-due" },
    expect = {
      { "2026-03-04T09:00:00Z", "open", "acute.infusion-due", message = "infusion 2 of 4" },
      { "2026-03-08T09:00:00Z", "resolved", "acute.infusion-due" },
      { "2026-03-10T09:00:00Z", "open", "acute.infusion-due", message = "infusion 3 of 4" },
      { "2026-03-14T09:00:00Z", "resolved", "acute.infusion-due" },
      { "2026-03-16T09:00:00Z", "open", "acute.infusion-due", message = "infusion 4 of 4" },
      { "2026-03-20T09:00:00Z", "resolved", "acute.infusion-due" },
      { "2026-03-22T09:00:00Z", "open", "acute.infusion-due", message = "infusion 5 of 8" },
      { "2026-03-23T09:00:00Z", "open", "acute.window-exceeded", message = "series of 8 infusions" },
    },
  },
  {
    name = "acute rules: discharge resolves them and re-enrolment counts infusions afresh",
    events = {
      { "2026-03-01T09:00:00Z", "enrolled", enrolled },
      { "2026-03-01T10:00:00Z", "preparation_session" },
      { "2026-03-02T09:00:00Z", "infusion", dose },
      { "2026-03-02T20:00:00Z", "infusion", dose },
      { "2026-03-03T10:00:00Z", "integration_session" },
      { "2026-03-12T09:00:00Z", "discharged" },
      { "2026-04-01T09:00:00Z", "enrolled", enrolled },
      { "2026-04-02T09:00:00Z", "infusion", dose },
    },
    horizon = "2026-04-05T00:00:00Z",
    only = { "acute.infusion-due", "acute.infusion-overdue", "acute.too-soon", "acute.window-exceeded" },
    expect = {
      { "2026-03-02T20:00:00Z", "open", "acute.too-soon" },
      { "2026-03-04T20:00:00Z", "open", "acute.infusion-due", message = "infusion 3 of 6" },
      { "2026-03-09T20:00:00Z", "open", "acute.infusion-overdue", message = "infusion 3 of 6" },
      { "2026-03-12T09:00:00Z", "resolved", "acute.too-soon" },
      { "2026-03-12T09:00:00Z", "resolved", "acute.infusion-due" },
      { "2026-03-12T09:00:00Z", "resolved", "acute.infusion-overdue" },
      { "2026-04-04T09:00:00Z", "open", "acute.infusion-due", message = "infusion 2 of 6" },
    },
  },
}
