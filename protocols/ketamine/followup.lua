-- ketamine/followup.lua: the follow-up visit after the acute series.

local R = require "regimen"
local course = require "lib.course"
local window = require "lib.window"
local days = R.days

return R.protocol {
  id = "ketamine.followup",
  version = "1.0.0",
  description = "A follow-up visit within 14 days of the end of the acute series.",
  applies = course.enrolled_in("ketamine"),

  params = {
    acute_infusions = course.params.acute_infusions, -- shared by the course (lib/course.lua)
    followup_within = days(14), -- a follow-up visit is expected this soon after the series ends
  },

  rules = {
    {
      id = "followup.visit-overdue",
      severity = "info",
      description = "No follow-up visit {followup_within} after the acute series ended (until one is "
                 .. "recorded).",
      check = function(h, now, p)
        local s = course.series(h, "ketamine", p)
        if not s.acute_end or window.followed_by(h, s.acute_end, "followup_visit") then return end
        local due = R.calendar_add(s.acute_end.at, p.followup_within)
        return R.alert {
          due = due,
          message = { "follow-up visit overdue since {due:day} (acute series ended {ended:day})",
                      due = due, ended = s.acute_end.at },
        }
      end,
    },
  },
}
