-- ketamine/acute.lua: the acute series of infusions.
--
-- Illustrative defaults, not medical advice: a clinic sets its own in
-- clinic.lua, and a patient's `enrolled` / `plan_adjusted` events can set
-- acute_infusions for that patient.
--
-- Due dates count days on the clinic's calendar (R.calendar_add): two days
-- after an infusion at 09:00 is 09:00, across a daylight-saving change too.
-- The minimum gap between infusions stays an exact 24 h.

local R = require "regimen"
local course = require "lib.course"
local window = require "lib.window"
local days, hours = R.days, R.hours

return R.protocol {
  id = "ketamine.acute",
  version = "1.0.0",
  description = "Acute series: about six infusions over two to three weeks.",
  applies = course.enrolled_in("ketamine"),

  params = {
    acute_infusions        = course.params.acute_infusions, -- shared by the course (lib/course.lua)
    infusion_due_after     = days(2),   -- the next infusion is due this long after the last
    infusion_overdue_after = days(7),   -- and overdue this long after it
    infusions_min_gap      = hours(24), -- two infusions closer than this are too close
    acute_window           = days(21),  -- the series should be complete this long after its first infusion
  },

  rules = {
    {
      id = "acute.infusion-due",
      severity = "info",
      description = "The next infusion of the acute series is due ({infusion_due_after} after the last one).",
      check = function(h, now, p)
        local s = course.series(h, "ketamine", p)
        if not s.last or s.phase ~= "acute" then return end
        local due = R.calendar_add(s.last.at, p.infusion_due_after)
        return R.alert {
          key = s.given + 1,
          due = due,
          message = { "infusion {n} of {planned} due since {due:day}",
                      n = s.given + 1, planned = s.planned, due = due },
        }
      end,
    },

    {
      id = "acute.infusion-overdue",
      severity = "warning",
      description = "The next infusion of the acute series is overdue ({infusion_overdue_after} after the "
                 .. "last one).",
      check = function(h, now, p)
        local s = course.series(h, "ketamine", p)
        if not s.last or s.phase ~= "acute" then return end
        local due = R.calendar_add(s.last.at, p.infusion_overdue_after)
        return R.alert {
          key = s.given + 1,
          due = due,
          message = { "infusion {n} of {planned} overdue since {due:day} (last infusion {last:day})",
                      n = s.given + 1, planned = s.planned, due = due, last = s.last.at },
        }
      end,
    },

    {
      id = "acute.too-soon",
      severity = "critical",
      description = "An infusion came less than {infusions_min_gap} after the previous one (one alert per "
                 .. "infusion, until a follow-up visit after it).",
      check = function(h, now, p)
        local alerts = {}
        local infusions = course.series(h, "ketamine", p).infusions
        for i = 2, #infusions do
          local previous, infusion = infusions[i - 1], infusions[i]
          local gap = infusion.at - previous.at
          if gap < p.infusions_min_gap and not window.followed_by(h, infusion, "followup_visit") then
            alerts[#alerts + 1] = R.alert {
              key = infusion.id,
              due = infusion.at,
              message = { "infusion on {at:day} only {gap:hours.1} h after the previous one ",
                          "(minimum {min:hours} h): see the patient at a follow-up visit",
                          at = infusion.at, gap = gap, min = p.infusions_min_gap },
            }
          end
        end
        return alerts
      end,
    },

    {
      id = "acute.window-exceeded",
      severity = "warning",
      description = "The acute series of {acute_infusions} infusions is still under way {acute_window} "
                 .. "after its first infusion.",
      check = function(h, now, p)
        local s = course.series(h, "ketamine", p)
        if not s.first or s.phase ~= "acute" then return end
        local due = R.calendar_add(s.first.at, p.acute_window)
        return R.alert {
          due = due,
          message = { "acute series of {planned} infusions not complete {window:days} days after the ",
                      "first infusion on {first:day}",
                      planned = s.planned, window = p.acute_window, first = s.first.at },
        }
      end,
    },
  },
}
