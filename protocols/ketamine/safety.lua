-- ketamine/safety.lua: risks watched during the whole course.

local R = require "regimen"
local course = require "lib.course"

-- Vitals taken before an infusion (vitals without a phase count as "pre").
local function before_infusion(v)
  return v.data.phase == nil or v.data.phase == "pre"
end

return R.protocol {
  id = "ketamine.safety",
  version = "1.0.0",
  description = "Blood pressure, adverse events and suicidality.",
  applies = course.enrolled_in("ketamine"),

  params = {
    bp_systolic_max  = 160, -- mmHg: at or above this before an infusion is too high
    bp_diastolic_max = 100, -- mmHg
  },

  rules = {
    {
      id = "safety.bp-high",
      severity = "critical",
      description = "The latest pre-infusion blood pressure is too high.",
      check = function(h, now, p)
        local function high(v)
          return course.number(v, "systolic") >= p.bp_systolic_max
              or course.number(v, "diastolic") >= p.bp_diastolic_max
        end
        local v = h:last("vitals", before_infusion)
        if not v or not high(v) then return end
        for _, later in ipairs(h:after(v, "vitals")) do
          if not high(later) then return end -- a later reading is back below both limits
        end
        return R.alert {
          due = v.at,
          message = ("blood pressure %d/%d before infusion on %s (limit %d/%d)"):format(
            v.data.systolic, v.data.diastolic, R.day(v.at), p.bp_systolic_max, p.bp_diastolic_max),
        }
      end,
    },
  },
}
