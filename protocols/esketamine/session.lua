-- esketamine/session.lua: one treatment session, minute by minute: blood
-- pressure before the dose, the reading about 40 minutes after it and the
-- re-checks until it falls, and at least 2 hours of monitoring before a
-- clinician judges the patient ready to leave.
--
-- Illustrative defaults taken from the Spravato prescribing information and
-- REMS (docs/esketamine.md names the sources), not medical advice: a clinic
-- sets its own in clinic.lua. Every interval here is exact (R.minutes,
-- R.hours): these are clinical intervals inside one visit.
--
-- The alerts of a session that cannot be put right afterwards (no pre-dose
-- reading, monitoring ended early) stay open until the session's REMS
-- monitoring form is recorded: the form is where the session is documented.

local R = require "regimen"
local course = require "lib.course"
local sessions = require "lib.sessions"
local minutes, hours = R.minutes, R.hours

return R.protocol {
  id = "esketamine.session",
  version = "1.0.0",
  description = "A Spravato session: blood pressure before and after the dose, 2 hours of monitoring.",
  applies = course.enrolled_in("esketamine"),

  params = {
    bp_systolic_max         = 140,         -- mmHg: a reading above this is elevated
    bp_diastolic_max        = 90,          -- mmHg
    pre_dose_bp_within      = hours(2),    -- a pre-dose reading counts this long before the dose
    post_dose_bp_at         = minutes(40), -- blood pressure is re-measured this long after the dose
    post_dose_bp_from       = minutes(30), -- a post-dose reading this long after the dose or later counts
    post_dose_recheck_after = minutes(15), -- an elevated post-dose reading is re-checked this soon
    monitoring_min          = hours(2),    -- the patient is monitored at least this long after the dose
  },

  rules = {
    {
      id = "bp.pre-dose-missing",
      severity = "warning",
      description = "A dose was given with no pre-dose blood pressure in the 2 hours before it "
                 .. "(until the session's monitoring form is recorded).",
      check = function(h, now, p)
        local alerts = {}
        for _, s in ipairs(sessions.all(h, p)) do
          if not s.pre and not s.form then
            alerts[#alerts + 1] = R.alert {
              key = s.dose.id,
              due = s.dose.at,
              message = { "esketamine given on {at:day} at {at:clock} with no blood pressure taken in the ",
                          "{within:hours} h before it", at = s.dose.at, within = p.pre_dose_bp_within },
            }
          end
        end
        return alerts
      end,
    },

    {
      id = "bp.pre-dose-high",
      severity = "warning",
      description = "The latest pre-dose blood pressure is above 140/90 and no dose has followed "
                 .. "it yet: the prescriber weighs delaying the dose (until a dose, a reading "
                 .. "within the limits, or 2 hours without a dose).",
      check = function(h, now, p)
        local v = course.last(h, "esketamine", "vitals", function(e) return e.data.phase == "pre" end)
        if not v or not sessions.high(v, p) then return end
        if h:first_after(v, "esketamine_dose") then return end -- the decision was taken
        return R.alert {
          key = v.id,
          due = v.at,
          ends = v.at + p.pre_dose_bp_within,
          message = { "pre-dose blood pressure {sys}/{dia} at {at:clock} (limit {sys_max}/{dia_max}): ",
                      "weigh delaying the esketamine dose", sys = v.data.systolic, dia = v.data.diastolic,
                      at = v.at, sys_max = p.bp_systolic_max, dia_max = p.bp_diastolic_max },
        }
      end,
    },

    {
      id = "bp.post-dose-due",
      severity = "warning",
      description = "No post-dose blood pressure 40 minutes after the dose (until a post-dose "
                 .. "reading at least 30 minutes after it, or the monitoring form).",
      check = function(h, now, p)
        local alerts = {}
        for _, s in ipairs(sessions.all(h, p)) do
          if not sessions.reading_at_40(s, p) and not s.form then
            local due = s.dose.at + p.post_dose_bp_at
            alerts[#alerts + 1] = R.alert {
              key = s.dose.id,
              due = due,
              message = { "blood pressure due {after:minutes} minutes after the esketamine dose of ",
                          "{dose:clock} (at {due:clock})", after = p.post_dose_bp_at, dose = s.dose.at,
                          due = due },
            }
          end
        end
        return alerts
      end,
    },

    {
      id = "bp.post-dose-high",
      severity = "warning",
      description = "The latest post-dose blood pressure of a session is above 140/90 and no "
                 .. "later reading has been taken: re-check it 15 minutes later (until a later "
                 .. "reading).",
      check = function(h, now, p)
        local alerts = {}
        for _, s in ipairs(sessions.all(h, p)) do
          local v = s.posts[#s.posts]
          if v and sessions.high(v, p) then
            local due = v.at + p.post_dose_recheck_after
            alerts[#alerts + 1] = R.alert {
              key = s.dose.id,
              due = due,
              message = { "blood pressure {sys}/{dia} at {at:clock}, {after} minutes after the dose, is above ",
                          "{sys_max}/{dia_max}: re-check it", sys = v.data.systolic, dia = v.data.diastolic,
                          at = v.at, after = (v.at - s.dose.at) // 60000, sys_max = p.bp_systolic_max,
                          dia_max = p.bp_diastolic_max },
            }
          end
        end
        return alerts
      end,
    },

    {
      id = "monitoring.ended-early",
      severity = "critical",
      description = "Monitoring ended less than 2 hours after the dose (until the session's "
                 .. "monitoring form is recorded).",
      check = function(h, now, p)
        local alerts = {}
        for _, s in ipairs(sessions.all(h, p)) do
          local ended = s.ended
          if ended and ended.at - s.dose.at < p.monitoring_min and not s.form then
            alerts[#alerts + 1] = R.alert {
              key = s.dose.id,
              due = ended.at,
              message = { "monitoring ended at {ended:clock}, {after} minutes after the esketamine dose of ",
                          "{dose:clock} (at least {min:hours} h are required)", ended = ended.at,
                          after = (ended.at - s.dose.at) // 60000, dose = s.dose.at, min = p.monitoring_min },
            }
          end
        end
        return alerts
      end,
    },

    {
      id = "monitoring.discharge-assessable",
      severity = "info",
      description = "2 hours have passed since the dose and monitoring has not ended: the "
                 .. "patient may be assessed for discharge (until monitoring_end).",
      check = function(h, now, p)
        local alerts = {}
        for _, s in ipairs(sessions.all(h, p)) do
          if not s.ended and not s.next then
            local due = s.dose.at + p.monitoring_min
            alerts[#alerts + 1] = R.alert {
              key = s.dose.id,
              due = due,
              message = { "{min:hours} h since the esketamine dose of {dose:clock}: the patient may be ",
                          "assessed for discharge", min = p.monitoring_min, dose = s.dose.at },
            }
          end
        end
        return alerts
      end,
    },
  },
}
