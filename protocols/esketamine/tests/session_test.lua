-- Scenarios for esketamine/session.lua: blood pressure around the dose and
-- the 2 hours of monitoring (bp.*, monitoring.*).
-- Run: build/regimen test protocols/esketamine/tests

local enrolled = { program = "esketamine" }
local dose = { dose_mg = 56, devices = 2 }
local function pre(sys, dia) return { systolic = sys, diastolic = dia, phase = "pre" } end
local function post(sys, dia) return { systolic = sys, diastolic = dia, phase = "post" } end

return {
  -- bp.pre-dose-missing -----------------------------------------------------
  {
    name = "bp.pre-dose-missing opens at a dose with no pre-dose reading and resolves with the monitoring form",
    events = {
      { "2026-03-02T08:00:00Z", "enrolled", enrolled },
      { "2026-03-02T09:00:00Z", "esketamine_dose", dose, id = "d1" },
      { "2026-03-04T10:00:00Z", "rems_form", { dose = "d1" } },
    },
    horizon = "2026-03-05T00:00:00Z",
    only = { "bp.pre-dose-missing" },
    expect = {
      { "2026-03-02T09:00:00Z", "open", "bp.pre-dose-missing", severity = "warning",
        message = "esketamine given on 2 Mar 2026 at 09:00 with no blood pressure taken in the 2 h before it" },
      { "2026-03-04T10:00:00Z", "resolved", "bp.pre-dose-missing" },
    },
  },
  {
    name = "bp.pre-dose-missing: a reading 1 h 59 before the dose counts, one 2 h 01 before does not, a post reading does not",
    events = {
      { "2026-03-02T08:00:00Z", "enrolled", enrolled },
      { "2026-03-02T07:01:00Z", "vitals", pre(120, 80) },
      { "2026-03-02T09:00:00Z", "esketamine_dose", dose, id = "d1" },
      { "2026-03-05T06:59:00Z", "vitals", pre(120, 80) },
      { "2026-03-05T08:50:00Z", "vitals", post(120, 80) },
      { "2026-03-05T09:00:00Z", "esketamine_dose", dose, id = "d2" },
    },
    horizon = "2026-03-06T00:00:00Z",
    only = { "bp.pre-dose-missing" },
    expect = {
      { "2026-03-05T09:00:00Z", "open", "bp.pre-dose-missing", message = "on 5 Mar 2026 at 09:00" },
    },
  },

  -- bp.pre-dose-high --------------------------------------------------------
  {
    name = "bp.pre-dose-high opens at 142/88 before the dose and resolves when the dose is given",
    events = {
      { "2026-03-02T08:00:00Z", "enrolled", enrolled },
      { "2026-03-02T08:50:00Z", "vitals", pre(142, 88) },
      { "2026-03-02T09:10:00Z", "esketamine_dose", dose },
    },
    horizon = "2026-03-03T00:00:00Z",
    only = { "bp.pre-dose-high" },
    expect = {
      { "2026-03-02T08:50:00Z", "open", "bp.pre-dose-high", severity = "warning",
        message = "pre-dose blood pressure 142/88 at 08:50 (limit 140/90): weigh delaying the esketamine dose" },
      { "2026-03-02T09:10:00Z", "resolved", "bp.pre-dose-high" },
    },
  },
  {
    name = "bp.pre-dose-high: 140/90 is within the limits; 130/91 is not; a lower reading resolves it; without a dose it closes after 2 h",
    events = {
      { "2026-03-02T08:00:00Z", "enrolled", enrolled },
      { "2026-03-02T08:50:00Z", "vitals", pre(140, 90) },
      { "2026-03-03T08:50:00Z", "vitals", pre(130, 91) },
      { "2026-03-03T09:05:00Z", "vitals", pre(128, 84) },
      { "2026-03-04T08:50:00Z", "vitals", pre(150, 95) },
    },
    horizon = "2026-03-05T00:00:00Z",
    only = { "bp.pre-dose-high" },
    expect = {
      { "2026-03-03T08:50:00Z", "open", "bp.pre-dose-high", message = "130/91" },
      { "2026-03-03T09:05:00Z", "resolved", "bp.pre-dose-high" },
      { "2026-03-04T08:50:00Z", "open", "bp.pre-dose-high", message = "150/95" },
      { "2026-03-04T10:50:00Z", "resolved", "bp.pre-dose-high" },
    },
  },
  {
    name = "bp.pre-dose-high uses the clinic's limits (150/95)",
    params = { ["esketamine.session"] = { bp_systolic_max = 150, bp_diastolic_max = 95 } },
    events = {
      { "2026-03-02T08:00:00Z", "enrolled", enrolled },
      { "2026-03-02T08:50:00Z", "vitals", pre(148, 92) },
      { "2026-03-03T08:50:00Z", "vitals", pre(151, 80) },
    },
    horizon = "2026-03-04T00:00:00Z",
    only = { "bp.pre-dose-high" },
    expect = {
      { "2026-03-03T08:50:00Z", "open", "bp.pre-dose-high", message = "151/80 at 08:50 (limit 150/95)" },
      { "2026-03-03T10:50:00Z", "resolved", "bp.pre-dose-high" },
    },
  },

  -- bp.post-dose-due --------------------------------------------------------
  {
    name = "bp.post-dose-due opens 40 minutes after the dose and resolves at the post-dose reading",
    events = {
      { "2026-03-02T08:00:00Z", "enrolled", enrolled },
      { "2026-03-02T08:50:00Z", "vitals", pre(128, 82) },
      { "2026-03-02T09:00:00Z", "esketamine_dose", dose },
      { "2026-03-02T09:20:00Z", "vitals", post(150, 92) },   -- too early to count
      { "2026-03-02T09:47:00Z", "vitals", post(136, 86) },
    },
    horizon = "2026-03-03T00:00:00Z",
    only = { "bp.post-dose-due" },
    expect = {
      { "2026-03-02T09:40:00Z", "open", "bp.post-dose-due", severity = "warning",
        message = "blood pressure due 40 minutes after the esketamine dose of 09:00 (at 09:40)" },
      { "2026-03-02T09:47:00Z", "resolved", "bp.post-dose-due" },
    },
  },
  {
    name = "bp.post-dose-due does not open for a reading at 35 minutes",
    events = {
      { "2026-03-02T08:00:00Z", "enrolled", enrolled },
      { "2026-03-02T08:50:00Z", "vitals", pre(128, 82) },
      { "2026-03-02T09:00:00Z", "esketamine_dose", dose },
      { "2026-03-02T09:35:00Z", "vitals", post(130, 82) },
    },
    horizon = "2026-03-03T00:00:00Z",
    only = { "bp.post-dose-due" },
    expect = {},
  },

  -- bp.post-dose-high -------------------------------------------------------
  {
    name = "bp.post-dose-high: a high post-dose reading is re-checked 15 minutes later until one falls",
    events = {
      { "2026-03-02T08:00:00Z", "enrolled", enrolled },
      { "2026-03-02T08:50:00Z", "vitals", pre(128, 82) },
      { "2026-03-02T09:00:00Z", "esketamine_dose", dose },
      { "2026-03-02T09:40:00Z", "vitals", post(152, 94) },
      { "2026-03-02T10:00:00Z", "vitals", post(146, 91) },
      { "2026-03-02T10:30:00Z", "vitals", post(132, 84) },
    },
    horizon = "2026-03-03T00:00:00Z",
    only = { "bp.post-dose-high" },
    expect = {
      { "2026-03-02T09:55:00Z", "open", "bp.post-dose-high", severity = "warning",
        message = "blood pressure 152/94 at 09:40, 40 minutes after the dose, is above 140/90: re-check it" },
      { "2026-03-02T10:00:00Z", "resolved", "bp.post-dose-high" },
      { "2026-03-02T10:15:00Z", "open", "bp.post-dose-high", message = "146/91 at 10:00, 60 minutes" },
      { "2026-03-02T10:30:00Z", "resolved", "bp.post-dose-high" },   -- 132/84 has fallen
    },
  },

  -- monitoring.ended-early / monitoring.discharge-assessable ----------------
  {
    name = "monitoring.ended-early is critical when monitoring ends 1 h 30 after the dose, until the form",
    events = {
      { "2026-03-02T08:00:00Z", "enrolled", enrolled },
      { "2026-03-02T09:00:00Z", "esketamine_dose", dose, id = "d1" },
      { "2026-03-02T10:30:00Z", "monitoring_end" },
      { "2026-03-03T12:00:00Z", "rems_form", { dose = "d1" } },
    },
    horizon = "2026-03-04T00:00:00Z",
    only = { "monitoring.ended-early" },
    expect = {
      { "2026-03-02T10:30:00Z", "open", "monitoring.ended-early", severity = "critical",
        message = "monitoring ended at 10:30, 90 minutes after the esketamine dose of 09:00 (at least 2 h are required)" },
      { "2026-03-03T12:00:00Z", "resolved", "monitoring.ended-early" },
    },
  },
  {
    name = "monitoring: 2 h after the dose the patient may be assessed for discharge; monitoring_end at 2 h 10 resolves it and is not early",
    events = {
      { "2026-03-02T08:00:00Z", "enrolled", enrolled },
      { "2026-03-02T09:00:00Z", "esketamine_dose", dose },
      { "2026-03-02T11:10:00Z", "monitoring_end" },
    },
    horizon = "2026-03-03T00:00:00Z",
    only = { "monitoring.discharge-assessable", "monitoring.ended-early" },
    expect = {
      { "2026-03-02T11:00:00Z", "open", "monitoring.discharge-assessable", severity = "info",
        message = "2 h since the esketamine dose of 09:00: the patient may be assessed for discharge" },
      { "2026-03-02T11:10:00Z", "resolved", "monitoring.discharge-assessable" },
    },
  },
  {
    name = "monitoring: a clinic's 3-hour minimum moves both rules",
    params = { ["esketamine.session"] = { monitoring_min = 3 * 3600000 } },
    events = {
      { "2026-03-02T08:00:00Z", "enrolled", enrolled },
      { "2026-03-02T09:00:00Z", "esketamine_dose", dose },
      { "2026-03-02T11:30:00Z", "monitoring_end" },
    },
    horizon = "2026-03-03T00:00:00Z",
    only = { "monitoring.discharge-assessable", "monitoring.ended-early" },
    expect = {
      { "2026-03-02T11:30:00Z", "open", "monitoring.ended-early", message = "150 minutes after the esketamine dose of 09:00 (at least 3 h" },
    },
  },
  {
    name = "a whole session by the book raises nothing but the 2-hour point",
    events = {
      { "2026-03-02T08:00:00Z", "enrolled", enrolled },
      { "2026-03-02T08:30:00Z", "rems_enrollment" },
      { "2026-03-02T08:50:00Z", "vitals", pre(128, 82) },
      { "2026-03-02T09:00:00Z", "esketamine_dose", dose, id = "d1" },
      { "2026-03-02T09:40:00Z", "vitals", { systolic = 138, diastolic = 88, spo2 = 97, phase = "post" } },
      { "2026-03-02T11:05:00Z", "monitoring_end" },
      { "2026-03-03T10:00:00Z", "rems_form", { dose = "d1" } },
    },
    horizon = "2026-03-04T00:00:00Z",
    only = { "bp.pre-dose-missing", "bp.pre-dose-high", "bp.post-dose-due", "bp.post-dose-high",
             "monitoring.ended-early", "monitoring.discharge-assessable", "rems.enrollment-missing",
             "rems.form-overdue", "rems.adverse-event" },
    expect = {
      { "2026-03-02T11:00:00Z", "open", "monitoring.discharge-assessable" },
      { "2026-03-02T11:05:00Z", "resolved", "monitoring.discharge-assessable" },
    },
  },
}
