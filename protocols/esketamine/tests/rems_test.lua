-- Scenarios for esketamine/rems.lua: rems.enrollment-missing and
-- rems.form-overdue.
-- Run: build/regimen test protocols/esketamine/tests

local enrolled = { program = "esketamine" }
local dose = { dose_mg = 56, devices = 2 }

return {
  -- rems.enrollment-missing -------------------------------------------------
  {
    name = "rems.enrollment-missing is critical at a dose before the REMS enrollment and resolves when it is signed",
    events = {
      { "2026-03-02T08:00:00Z", "enrolled", enrolled },
      { "2026-03-02T09:00:00Z", "esketamine_dose", dose, id = "d1" },
      { "2026-03-05T09:00:00Z", "esketamine_dose", dose, id = "d2" },
      { "2026-03-05T12:00:00Z", "rems_enrollment" },
    },
    horizon = "2026-03-06T00:00:00Z",
    only = { "rems.enrollment-missing" },
    expect = {
      { "2026-03-02T09:00:00Z", "open", "rems.enrollment-missing", severity = "critical",
        message = "esketamine given on 2 Mar 2026 at 09:00 before the REMS patient enrollment form was signed" },
      { "2026-03-05T09:00:00Z", "open", "rems.enrollment-missing", message = "on 5 Mar 2026 at 09:00" },
      { "2026-03-05T12:00:00Z", "resolved", "rems.enrollment-missing", message = "2 Mar" },
      { "2026-03-05T12:00:00Z", "resolved", "rems.enrollment-missing", message = "5 Mar" },
    },
  },
  {
    name = "rems.enrollment-missing does not open when the form was signed before, in an earlier course too",
    events = {
      { "2026-01-05T08:00:00Z", "enrolled", enrolled },
      { "2026-01-05T08:10:00Z", "rems_enrollment" },
      { "2026-01-20T08:00:00Z", "discharged" },
      { "2026-03-02T08:00:00Z", "enrolled", enrolled },
      { "2026-03-02T09:00:00Z", "esketamine_dose", dose },
    },
    horizon = "2026-03-03T00:00:00Z",
    only = { "rems.enrollment-missing" },
    expect = {},
  },
  {
    name = "rems.*: a patient enrolled for ketamine only is not in the esketamine set",
    events = {
      { "2026-03-02T08:00:00Z", "enrolled", { program = "ketamine" } },
      { "2026-03-02T09:00:00Z", "esketamine_dose", dose },
    },
    horizon = "2026-03-20T00:00:00Z",
    only = { "rems.enrollment-missing", "rems.form-overdue" },
    expect = {},
  },

  -- rems.form-overdue -------------------------------------------------------
  {
    name = "rems.form-overdue opens 7 days after a dose without its form and resolves when the form is recorded",
    events = {
      { "2026-03-02T08:00:00Z", "enrolled", enrolled },
      { "2026-03-02T08:30:00Z", "rems_enrollment" },
      { "2026-03-02T09:00:00Z", "esketamine_dose", dose, id = "d1" },
      { "2026-03-05T09:00:00Z", "esketamine_dose", dose, id = "d2" },
      { "2026-03-06T09:00:00Z", "rems_form", { dose = "d2" } },
      { "2026-03-10T15:00:00Z", "rems_form", { dose = "d1" } },
    },
    horizon = "2026-03-20T00:00:00Z",
    only = { "rems.form-overdue" },
    expect = {
      { "2026-03-09T09:00:00Z", "open", "rems.form-overdue", severity = "warning",
        message = "REMS patient monitoring form for the session on 2 Mar 2026 not submitted (due within 7 days, by 9 Mar 2026 09:00)" },
      { "2026-03-10T15:00:00Z", "resolved", "rems.form-overdue" },
    },
  },
  {
    name = "rems.form-overdue: a form for another dose does not count; a form at 6 days 23 h does",
    events = {
      { "2026-03-02T08:00:00Z", "enrolled", enrolled },
      { "2026-03-02T09:00:00Z", "esketamine_dose", dose, id = "d1" },
      { "2026-03-03T09:00:00Z", "rems_form", { dose = "d0" } },
      { "2026-03-09T08:00:00Z", "rems_form", { dose = "d1" } },
    },
    horizon = "2026-03-20T00:00:00Z",
    only = { "rems.form-overdue" },
    expect = {},
  },
}
