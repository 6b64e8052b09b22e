-- bench/two-rules/two.lua: the two rules of the peer comparison.
--
-- acute.infusion-due and safety.bp-high with the shipped semantics and
-- defaults (protocols/ketamine/acute.lua and safety.lua), in one protocol,
-- so `regimen sweep --protocols bench/two-rules` does the same work as the
-- json-rules-engine script in bench/peer/peer.js. Illustrative values, not
-- medical advice.

local R = require "regimen"
local course = require "lib.course"
local days = R.days

-- Vitals taken before an infusion (vitals without a phase count as "pre").
local function before_infusion(v)
  return v.data.phase == nil or v.data.phase == "pre"
end

return R.protocol {
  id = "bench.two-rules",
  version = "1.0.0",
  description = "The next acute infusion is due; the pre-infusion blood pressure is too high.",
  applies = course.enrolled_in("ketamine"),

  params = {
    acute_infusions    = 6,       -- infusions in the acute series
    infusion_due_after = days(2), -- the next infusion is due this long after the last
    bp_systolic_max    = 160,     -- mmHg: at or above this before an infusion is too high
    bp_diastolic_max   = 100,     -- mmHg
  },

  rules = {
    {
      id = "acute.infusion-due",
      severity = "info",
      check = function(h, now, p)
        local s = course.series(h, "ketamine", p)
        if not s.last or s.phase ~= "acute" then return end
        local due = s.last.at + p.infusion_due_after
        return R.alert {
          key = s.given + 1,
          due = due,
          message = ("infusion %d of %d due since %s"):format(s.given + 1, s.planned, R.day(due)),
        }
      end,
    },

    {
      id = "safety.bp-high",
      severity = "critical",
      check = function(h, now, p)
        local function high(v)
          return course.number(v, "systolic") >= p.bp_systolic_max
              or course.number(v, "diastolic") >= p.bp_diastolic_max
        end
        local v = course.last(h, "ketamine", "vitals", before_infusion)
        if not v or not high(v) then return end
        for _, later in ipairs(h:after(v, "vitals")) do
          if not high(later) then return end -- a later reading is back below both limits
        end
        return R.alert {
          due = v.at,
          message = ("blood pressure %g/%g before infusion on %s (limit %d/%d)"):format(
            v.data.systolic, v.data.diastolic, R.day(v.at), p.bp_systolic_max, p.bp_diastolic_max),
        }
      end,
    },
  },
}
