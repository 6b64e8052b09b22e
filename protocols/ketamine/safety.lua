-- ketamine/safety.lua: risks watched during the whole course.

local R = require "regimen"
local course = require "lib.course"
local scores = require "lib.scores"
local window = require "lib.window"
local words = require "lib.words"

-- Vitals taken before an infusion (vitals without a phase count as "pre").
local function before_infusion(v)
  return v.data.phase == nil or v.data.phase == "pre"
end

-- Adverse-event severities, mildest first.
local severities = { "mild", "moderate", "severe" }
local severity_rank = { mild = 1, moderate = 2, severe = 3 }

return R.protocol {
  id = "ketamine.safety",
  version = "1.0.0",
  description = "Blood pressure, adverse events and suicidality.",
  applies = course.enrolled_in("ketamine"),

  params = {
    bp_systolic_max = R.param {
      160, kind = "number", unit = "mmHg", min = 0, max = 300,
      description = "a systolic pressure at or above this before an infusion is too high",
    },
    bp_diastolic_max = R.param {
      100, kind = "number", unit = "mmHg", min = 0, max = 300,
      description = "and so is a diastolic pressure at or above this",
    },
    adverse_min_severity = R.param {
      "moderate", kind = "choice", choices = severities,
      description = "adverse events this severe or worse need a follow-up",
    },
    adverse_always_kinds = "urinary cognitive", -- and these kinds at any severity (space-separated)
    adverse_critical_severity = R.param {
      "severe", kind = "choice", choices = severities,
      description = "this severity makes the alert critical",
    },
    item9_min = R.param {
      1, kind = "score", min = 0, max = 3,
      description = "a PHQ-9 item 9 (self-harm) answer at or above this is critical",
    },
  },

  rules = {
    {
      id = "safety.bp-high",
      severity = "critical",
      description = "The latest pre-infusion blood pressure is {bp_systolic_max}/{bp_diastolic_max} mmHg "
                 .. "or higher (until later vitals are below both limits).",
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
          message = { "blood pressure {sys}/{dia} before infusion on {at:day} (limit {sys_max}/{dia_max})",
                      sys = v.data.systolic, dia = v.data.diastolic, at = v.at,
                      sys_max = p.bp_systolic_max, dia_max = p.bp_diastolic_max },
        }
      end,
    },

    {
      id = "safety.adverse-event",
      severity = "warning",
      description = "A moderate or severe adverse event, or any urinary or cognitive one (one "
                 .. "alert per event, critical when severe), until a follow-up visit after it.",
      check = function(h, now, p)
        local alerts = {}
        local min_rank = severity_rank[p.adverse_min_severity]
            or error(("adverse_min_severity must be mild, moderate or severe, not '%s'"):format(
                 p.adverse_min_severity))
        for _, ae in ipairs(course.events(h, "ketamine", "adverse_event")) do
          local kind = tostring(ae.data.kind or "unspecified")
          local severity = tostring(ae.data.severity or "unspecified")
          -- an unknown or missing severity is not known to be mild: it counts
          local rank = severity_rank[severity]
          local serious = rank == nil or rank >= min_rank or words.listed(p.adverse_always_kinds, kind)
          if serious and not window.followed_by(h, ae, "followup_visit") then
            alerts[#alerts + 1] = R.alert {
              key = ae.id,
              due = ae.at,
              severity = severity == p.adverse_critical_severity and "critical" or "warning",
              message = { "{severity} {kind} adverse event on {at:day}: see the patient at a follow-up visit",
                          severity = severity, kind = kind, at = ae.at },
            }
          end
        end
        return alerts
      end,
    },

    {
      id = "safety.suicidality",
      severity = "critical",
      description = "The latest PHQ-9 answers item 9 (self-harm) above 0, until a later PHQ-9 "
                 .. "answers it 0.",
      check = function(h, now, p)
        local phq9 = scores.latest_item9(h, "ketamine")
        if not phq9 or course.number(phq9, "item9") < p.item9_min then return end
        return R.alert {
          due = phq9.at,
          message = { "PHQ-9 item 9 (thoughts of self-harm) answered {item9} on {at:day}: assess suicide ",
                      "risk now", item9 = phq9.data.item9, at = phq9.at },
        }
      end,
    },
  },
}
