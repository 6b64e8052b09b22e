-- south/anxiety.lua: the south clinic's own rule. Anxiety (GAD-7) rising
-- during a course is reviewed with the patient's therapist.

local R = require "regimen"
local course = require "lib.course"
local scores = require "lib.scores"

return R.protocol {
  id = "south.anxiety",
  version = "1.0.0",
  description = "GAD-7 watched over the course: a rising score is reviewed with the therapist.",
  applies = course.enrolled_in("ketamine"),

  params = {
    gad7_rise_min = 5, -- points above the first GAD-7 of the course
  },

  rules = {
    {
      id = "south.gad7-rising",
      severity = "warning",
      description = "The latest GAD-7 is at least 5 points above the first GAD-7 of the course.",
      check = function(h, now, p)
        local first = scores.first(h, "ketamine", "gad7")
        local latest = scores.latest(h, "ketamine", "gad7")
        if not first or latest.id == first.id then return end
        local rise = scores.score(latest) - scores.score(first)
        if rise < p.gad7_rise_min then return end
        return R.alert {
          due = latest.at,
          message = { "GAD-7 of {latest} on {latest_at:day} is {rise} points above the first of the course ",
                      "({first} on {first_at:day}): review with the therapist",
                      latest = scores.score(latest), latest_at = latest.at, rise = rise,
                      first = scores.score(first), first_at = first.at },
        }
      end,
    },
  },
}
