-- esketamine/rems.lua: the paperwork of the Spravato REMS: the patient's
-- enrollment form before the first treatment, and a patient monitoring form
-- for every session, submitted within 7 days.
--
-- Illustrative defaults taken from the Spravato REMS (docs/esketamine.md
-- names the sources), not medical or regulatory advice: a clinic sets its
-- own in clinic.lua.

local R = require "regimen"
local course = require "lib.course"
local sessions = require "lib.sessions"
local days = R.days

return R.protocol {
  id = "esketamine.rems",
  version = "1.0.0",
  description = "REMS paperwork: enrollment before the first dose, a monitoring form per session.",
  applies = course.enrolled_in("esketamine"),

  params = {
    form_within = days(7), -- the patient monitoring form is due this long after its dose
  },

  rules = {
    {
      id = "rems.enrollment-missing",
      severity = "critical",
      description = "A dose was given with no REMS patient enrollment form signed before it "
                 .. "(one alert per such dose, until the enrollment form is recorded).",
      check = function(h, now, p)
        -- the REMS enrollment is the patient's, not the course's: any one counts
        if h:last("rems_enrollment") then return end
        local alerts = {}
        for _, dose in ipairs(sessions.doses(h)) do
          alerts[#alerts + 1] = R.alert {
            key = dose.id,
            due = dose.at,
            message = { "esketamine given on {at:day} at {at:clock} before the REMS patient enrollment form ",
                        "was signed: enroll the patient before any further treatment",
                        at = dose.at },
          }
        end
        return alerts
      end,
    },

    {
      id = "rems.form-overdue",
      severity = "warning",
      description = "The REMS patient monitoring form of a session was not submitted 7 days "
                 .. "after its dose (one alert per dose, until a rems_form for it is recorded).",
      check = function(h, now, p)
        local alerts = {}
        for _, dose in ipairs(sessions.doses(h)) do
          if not h:first("rems_form", { dose = dose.id }) then
            local due = dose.at + p.form_within
            alerts[#alerts + 1] = R.alert {
              key = dose.id,
              due = due,
              message = { "REMS patient monitoring form for the session on {at:day} not submitted ",
                          "(due within {within:days} days, by {due:day} {due:clock})",
                          at = dose.at, within = p.form_within, due = due },
            }
          end
        end
        return alerts
      end,
    },
  },
}
