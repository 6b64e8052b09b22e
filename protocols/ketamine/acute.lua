-- ketamine/acute.lua: the acute series of infusions.
--
-- Illustrative defaults, not medical advice: a clinic sets its own in
-- clinic.lua, and a patient's `enrolled` / `plan_adjusted` events can set
-- acute_infusions for that patient.

local R = require "regimen"
local course = require "lib.course"
local days = R.days

return R.protocol {
  id = "ketamine.acute",
  version = "1.0.0",
  description = "Acute series: about six infusions over two to three weeks.",
  applies = course.enrolled_in("ketamine"),

  params = {
    acute_infusions    = 6,        -- infusions in the acute series
    infusion_due_after = days(2),  -- the next infusion is due this long after the last
  },

  rules = {
    {
      id = "acute.infusion-due",
      severity = "info",
      description = "The next acute infusion is due.",
      check = function(h, now, p)
        local infusions = course.events(h, "ketamine", "infusion")
        if #infusions == 0 or course.phase(infusions, p) ~= "acute" then return end
        local last = course.latest(infusions)
        local due = last.at + p.infusion_due_after
        local next_no = #infusions + 1
        return R.alert {
          key = next_no,
          due = due,
          message = ("infusion %d of %d due since %s"):format(
            next_no, p.acute_infusions, R.day(due)),
        }
      end,
    },
  },
}
