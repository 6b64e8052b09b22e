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

-- "140/90"
local function bp(v)
  return ("%g/%g"):format(v.data.systolic, v.data.diastolic)
end

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
              message = function() return ("esketamine given on %s at %s with no blood pressure taken in the %g h "
                      .. "before it"):format(R.day(s.dose.at), R.clock(s.dose.at),
                R.in_hours(p.pre_dose_bp_within)) end,
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
          message = function() return ("pre-dose blood pressure %s at %s (limit %d/%d): weigh delaying the "
                  .. "esketamine dose"):format(bp(v), R.clock(v.at), p.bp_systolic_max,
            p.bp_diastolic_max) end,
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
              message = function() return ("blood pressure due %g minutes after the esketamine dose of %s "
                      .. "(at %s)"):format(p.post_dose_bp_at / 60000, R.clock(s.dose.at),
                R.clock(due)) end,
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
              message = function() return ("blood pressure %s at %s, %d minutes after the dose, is above %d/%d: "
                      .. "re-check it"):format(bp(v), R.clock(v.at), (v.at - s.dose.at) // 60000,
                p.bp_systolic_max, p.bp_diastolic_max) end,
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
              message = function() return ("monitoring ended at %s, %d minutes after the esketamine dose of %s "
                      .. "(at least %g h are required)"):format(R.clock(ended.at),
                (ended.at - s.dose.at) // 60000, R.clock(s.dose.at), R.in_hours(p.monitoring_min)) end,
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
              message = function() return ("%g h since the esketamine dose of %s: the patient may be assessed "
                      .. "for discharge"):format(R.in_hours(p.monitoring_min), R.clock(s.dose.at)) end,
            }
          end
        end
        return alerts
      end,
    },
  },
}
