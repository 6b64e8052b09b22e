-- ketamine/preparation.lua: preparation (relaxation, counselling) before the
-- first infusion of a course.

local R = require "regimen"
local course = require "lib.course"

return R.protocol {
  id = "ketamine.preparation",
  version = "1.0.0",
  description = "A preparation session should come before the first infusion.",
  applies = course.enrolled_in("ketamine"),

  rules = {
    {
      id = "prep.missing",
      severity = "info",
      description = "The first infusion of the course had no preparation session before it "
                 .. "(until one is recorded).",
      check = function(h, now, p)
        local first = course.events(h, "ketamine", "infusion")[1]
        if not first then return end
        if #course.events(h, "ketamine", "preparation_session") > 0 then return end
        return R.alert {
          due = first.at,
          message = { "no preparation session before the first infusion on {at:day}",
                      at = first.at },
        }
      end,
    },
  },
}
