-- Scenarios for ketamine/safety.lua: safety.bp-high, safety.adverse-event and
-- safety.suicidality.
-- Run: build/regimen test protocols/ketamine/tests

local enrolled = { program = "ketamine" }
local dose = { dose_mg_per_kg = 0.5 }
local function pre(sys, dia) return { systolic = sys, diastolic = dia, phase = "pre" } end
local function post(sys, dia) return { systolic = sys, diastolic = dia, phase = "post" } end
local function ae(kind, severity) return { kind = kind, severity = severity } end

return {
  -- safety.bp-high ----------------------------------------------------------
  {
    name = "safety.bp-high opens at pre-infusion vitals of 162/90 and resolves with later vitals below both limits",
    events = {
      { "2026-03-01T09:00:00Z", "enrolled", enrolled },
      { "2026-03-02T08:45:00Z", "vitals", pre(162, 90) },
      { "2026-03-02T10:30:00Z", "vitals", post(140, 85) },
    },
    horizon = "2026-03-05T00:00:00Z",
    only = { "safety.bp-high" },
    expect = {
      { "2026-03-02T08:45:00Z", "open", "safety.bp-high", severity = "critical",
        message = "blood pressure 162/90 before infusion on 2 Mar 2026 (limit 160/100)" },
      { "2026-03-02T10:30:00Z", "resolved", "safety.bp-high" },
    },
  },
  {
    name = "safety.bp-high: 159/99 does not open it, 160 systolic or 100 diastolic does",
    events = {
      { "2026-03-01T09:00:00Z", "enrolled", enrolled },
      { "2026-03-02T08:45:00Z", "vitals", pre(159, 99) },
      { "2026-03-03T08:45:00Z", "vitals", pre(160, 80) },
      { "2026-03-03T10:00:00Z", "vitals", post(120, 80) },
      { "2026-03-04T08:45:00Z", "vitals", pre(130, 100) },
    },
    horizon = "2026-03-05T00:00:00Z",
    only = { "safety.bp-high" },
    expect = {
      { "2026-03-03T08:45:00Z", "open", "safety.bp-high", message = "160/80" },
      { "2026-03-03T10:00:00Z", "resolved", "safety.bp-high" },
      { "2026-03-04T08:45:00Z", "open", "safety.bp-high", message = "130/100" },
    },
  },
  {
    name = "safety.bp-high: high post-infusion vitals do not open it; later high vitals keep it open",
    events = {
      { "2026-03-01T09:00:00Z", "enrolled", enrolled },
      { "2026-03-02T10:30:00Z", "vitals", post(170, 105) },
      { "2026-03-03T08:45:00Z", "vitals", { systolic = 165, diastolic = 95 } },  -- no phase: pre
      { "2026-03-03T10:30:00Z", "vitals", post(162, 92) },
      { "2026-03-04T08:45:00Z", "vitals", pre(130, 80) },
    },
    horizon = "2026-03-05T00:00:00Z",
    only = { "safety.bp-high" },
    expect = {
      { "2026-03-03T08:45:00Z", "open", "safety.bp-high", message = "165/95" },
      { "2026-03-04T08:45:00Z", "resolved", "safety.bp-high" },
    },
  },
  {
    name = "safety.bp-high uses the clinic's stricter limit (150 systolic)",
    params = { ["ketamine.safety"] = { bp_systolic_max = 150 } },
    events = {
      { "2026-03-01T09:00:00Z", "enrolled", enrolled },
      { "2026-03-02T08:45:00-05:00", "vitals", pre(152, 90) },
    },
    horizon = "2026-03-05T00:00:00Z",
    only = { "safety.bp-high" },
    expect = {
      { "2026-03-02T13:45:00Z", "open", "safety.bp-high", message = "152/90 before infusion on 2 Mar 2026 (limit 150/100)" },
    },
  },

  -- safety.adverse-event ----------------------------------------------------
  {
    name = "safety.adverse-event opens for a moderate event and resolves at a follow-up visit after it",
    events = {
      { "2026-03-01T09:00:00Z", "enrolled", enrolled },
      { "2026-03-02T09:00:00Z", "infusion", dose },
      { "2026-03-02T10:00:00Z", "adverse_event", ae("nausea", "moderate") },
      { "2026-03-04T09:00:00Z", "followup_visit" },
    },
    horizon = "2026-03-10T00:00:00Z",
    only = { "safety.adverse-event" },
    expect = {
      { "2026-03-02T10:00:00Z", "open", "safety.adverse-event", severity = "warning",
        message = "moderate nausea adverse event on 2 Mar 2026" },
      { "2026-03-04T09:00:00Z", "resolved", "safety.adverse-event" },
    },
  },
  {
    name = "safety.adverse-event does not open for mild nausea or mild dizziness",
    events = {
      { "2026-03-01T09:00:00Z", "enrolled", enrolled },
      { "2026-03-02T10:00:00Z", "adverse_event", ae("nausea", "mild") },
      { "2026-03-03T10:00:00Z", "adverse_event", ae("dizziness", "mild") },
    },
    horizon = "2026-03-10T00:00:00Z",
    only = { "safety.adverse-event" },
    expect = {},
  },
  {
    name = "safety.adverse-event: one alert per event; severe is critical; mild urinary and cognitive count; a visit before does not resolve",
    events = {
      { "2026-03-01T09:00:00Z", "enrolled", enrolled },
      { "2026-03-02T08:00:00Z", "followup_visit" },
      { "2026-03-02T10:00:00Z", "adverse_event", ae("dissociation", "severe"), id = "ae-1" },
      { "2026-03-03T10:00:00+02:00", "adverse_event", ae("urinary", "mild"), id = "ae-2" },  -- 08:00 UTC
      { "2026-03-04T10:00:00Z", "adverse_event", ae("cognitive", "mild"), id = "ae-3" },
      { "2026-03-05T10:00:00Z", "followup_visit" },
    },
    horizon = "2026-03-10T00:00:00Z",
    only = { "safety.adverse-event" },
    expect = {
      { "2026-03-02T10:00:00Z", "open", "safety.adverse-event", severity = "critical", message = "severe dissociation" },
      { "2026-03-03T08:00:00Z", "open", "safety.adverse-event", severity = "warning", message = "mild urinary" },
      { "2026-03-04T10:00:00Z", "open", "safety.adverse-event", severity = "warning", message = "mild cognitive" },
      { "2026-03-05T10:00:00Z", "resolved", "safety.adverse-event", message = "severe dissociation" },
      { "2026-03-05T10:00:00Z", "resolved", "safety.adverse-event", message = "mild urinary" },
      { "2026-03-05T10:00:00Z", "resolved", "safety.adverse-event", message = "mild cognitive" },
    },
  },
  {
    name = "safety.adverse-event: an event without a severity is not known to be mild and opens",
    events = {
      { "2026-03-01T09:00:00Z", "enrolled", enrolled },
      { "2026-03-02T10:00:00Z", "adverse_event", { kind = "cardiovascular" } },
    },
    horizon = "2026-03-10T00:00:00Z",
    only = { "safety.adverse-event" },
    expect = {
      { "2026-03-02T10:00:00Z", "open", "safety.adverse-event", severity = "warning", message = "unspecified cardiovascular" },
    },
  },

  -- safety.suicidality ------------------------------------------------------
  {
    name = "safety.suicidality opens at a PHQ-9 with item 9 above 0 and resolves at a later PHQ-9 with item 9 = 0",
    events = {
      { "2026-03-01T09:00:00Z", "enrolled", enrolled },
      { "2026-03-02T09:00:00Z", "assessment", { instrument = "phq9", score = 19, item9 = 1 } },
      { "2026-03-05T09:00:00Z", "assessment", { instrument = "phq9", score = 17, item9 = 2 } },
      { "2026-03-06T09:00:00Z", "assessment", { instrument = "phq9", score = 15 } },            -- item 9 not answered
      { "2026-03-07T09:00:00Z", "assessment", { instrument = "gad7", score = 12, item9 = 0 } }, -- not a PHQ-9
      { "2026-03-09T09:00:00Z", "assessment", { instrument = "phq9", score = 12, item9 = 0 } },
    },
    horizon = "2026-03-10T00:00:00Z",
    only = { "safety.suicidality" },
    expect = {
      { "2026-03-02T09:00:00Z", "open", "safety.suicidality", severity = "critical",
        message = "PHQ-9 item 9 (thoughts of self-harm) answered 1 on 2 Mar 2026" },
      { "2026-03-09T09:00:00Z", "resolved", "safety.suicidality" },
    },
  },
  {
    name = "safety.suicidality does not open for item 9 = 0",
    events = {
      { "2026-03-01T09:00:00Z", "enrolled", enrolled },
      { "2026-03-02T09:00:00Z", "assessment", { instrument = "phq9", score = 19, item9 = 0 } },
    },
    horizon = "2026-03-10T00:00:00Z",
    only = { "safety.suicidality" },
    expect = {},
  },
  {
    name = "safety: discharge resolves every safety alert; nothing returns after re-enrolment",
    events = {
      { "2026-03-01T09:00:00Z", "enrolled", enrolled },
      { "2026-03-02T08:45:00Z", "vitals", pre(170, 100) },
      { "2026-03-02T09:00:00Z", "assessment", { instrument = "phq9", score = 21, item9 = 2 } },
      { "2026-03-02T10:00:00Z", "adverse_event", ae("nausea", "severe") },
      { "2026-03-03T09:00:00Z", "discharged" },
      { "2026-03-10T09:00:00Z", "enrolled", enrolled },
    },
    horizon = "2026-03-20T00:00:00Z",
    only = { "safety.bp-high", "safety.adverse-event", "safety.suicidality" },
    expect = {
      { "2026-03-02T08:45:00Z", "open", "safety.bp-high" },
      { "2026-03-02T09:00:00Z", "open", "safety.suicidality" },
      { "2026-03-02T10:00:00Z", "open", "safety.adverse-event", severity = "critical" },
      { "2026-03-03T09:00:00Z", "resolved", "safety.bp-high" },
      { "2026-03-03T09:00:00Z", "resolved", "safety.suicidality" },
      { "2026-03-03T09:00:00Z", "resolved", "safety.adverse-event" },
    },
  },
  -- course.last with a filter searches back only to the start of the course
  {
    name = "safety.bp-high: vitals at the instant of the enrolment but recorded before it are not in the course",
    events = {
      { "2026-03-01T09:00:00Z", "vitals", pre(170, 100) },
      { "2026-03-01T09:00:00Z", "enrolled", enrolled },
      { "2026-03-02T10:30:00Z", "vitals", post(120, 80) },
    },
    horizon = "2026-03-05T00:00:00Z",
    only = { "safety.bp-high" },
    expect = {},
  },
  {
    name = "safety.bp-high: vitals at the instant of the enrolment and recorded after it are in the course",
    events = {
      { "2026-03-01T09:00:00Z", "enrolled", enrolled },
      { "2026-03-01T09:00:00Z", "vitals", pre(170, 100) },
      { "2026-03-02T10:30:00Z", "vitals", post(165, 80) },
    },
    horizon = "2026-03-05T00:00:00Z",
    only = { "safety.bp-high" },
    expect = {
      { "2026-03-01T09:00:00Z", "open", "safety.bp-high", message = "170/100" },
    },
  },
  {
    name = "safety.bp-high: after a re-enrolment, only post-infusion vitals: the last course's reading does not count",
    events = {
      { "2026-03-01T09:00:00Z", "enrolled", enrolled },
      { "2026-03-02T08:45:00Z", "vitals", pre(170, 100) },
      { "2026-03-03T09:00:00Z", "discharged" },
      { "2026-03-10T09:00:00Z", "enrolled", enrolled },
      { "2026-03-11T10:30:00Z", "vitals", post(170, 100) },
    },
    horizon = "2026-03-20T00:00:00Z",
    only = { "safety.bp-high" },
    expect = {
      { "2026-03-02T08:45:00Z", "open", "safety.bp-high" },
      { "2026-03-03T09:00:00Z", "resolved", "safety.bp-high" },
    },
  },
}
