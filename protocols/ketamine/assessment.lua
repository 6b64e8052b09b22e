-- ketamine/assessment.lua: regular progress assessments (PHQ-9) that guide
-- the acute series and the timing of boosters.

local R = require "regimen"
local course = require "lib.course"
local scores = require "lib.scores"
local days = R.days

return R.protocol {
  id = "ketamine.assessment",
  version = "1.0.0",
  description = "A PHQ-9 every 14 days in the acute phase, every 30 days in maintenance.",
  applies = course.enrolled_in("ketamine"),

  params = {
    acute_infusions          = course.params.acute_infusions, -- shared by the course (lib/course.lua)
    assessment_every_acute   = days(14), -- a PHQ-9 is due this long after the last one (acute phase)
    assessment_every_booster = days(30), -- and this long after it in the maintenance phase
  },

  rules = {
    {
      id = "assessment.due",
      severity = "info",
      description = "A PHQ-9 is due: {assessment_every_acute} (acute phase) or {assessment_every_booster} "
                 .. "(maintenance) since the "
                 .. "last one, or since enrolment if there is none.",
      check = function(h, now, p)
        local s = course.series(h, "ketamine", p)
        local last = scores.latest(h, "ketamine", "phq9")
        local since = last or s.enrolment
        -- The acute interval applies when the series was still acute at the
        -- moment it ran out; otherwise the maintenance one. (The series holds
        -- the infusions so far, so its phase at `due` is its phase at the
        -- earlier of due and now: the rule need not read the clock, and keeps
        -- its answer from one event to the next; docs/protocols.md.)
        local due = R.calendar_add(since.at, p.assessment_every_acute)
        if course.phase_at(s, due) == "maintenance" then
          due = R.calendar_add(since.at, p.assessment_every_booster)
        end
        if last then
          return R.alert { due = due, message = { "PHQ-9 due since {due:day} (last one on {last:day})",
                                                  due = due, last = last.at } }
        end
        return R.alert { due = due, message = { "PHQ-9 due since {due:day} (none since enrolment on {enrolled:day})",
                                                due = due, enrolled = s.enrolment.at } }
      end,
    },
  },
}
