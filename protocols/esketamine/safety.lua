-- esketamine/safety.lua: the serious adverse outcomes the Spravato REMS
-- exists for: sedation, dissociation and respiratory depression during
-- monitoring are recorded and followed up.
--
-- Illustrative defaults, not medical advice.

local R = require "regimen"
local course = require "lib.course"
local window = require "lib.window"
local words = require "lib.words"

return R.protocol {
  id = "esketamine.safety",
  version = "1.0.0",
  description = "Sedation, dissociation and respiratory depression: critical until followed up.",
  applies = course.enrolled_in("esketamine"),

  params = {
    -- adverse_event kinds (data.kind) that are critical at any severity (space-separated)
    rems_adverse_kinds = "sedation dissociation respiratory_depression",
  },

  rules = {
    {
      id = "rems.adverse-event",
      severity = "critical",
      description = "A sedation, dissociation or respiratory-depression adverse event (one alert "
                 .. "per event, until a follow-up visit after it).",
      check = function(h, now, p)
        local alerts = {}
        for _, ae in ipairs(course.events(h, "esketamine", "adverse_event")) do
          local kind = tostring(ae.data.kind or "unspecified")
          if words.listed(p.rems_adverse_kinds, kind) and not window.followed_by(h, ae, "followup_visit") then
            alerts[#alerts + 1] = R.alert {
              key = ae.id,
              due = ae.at,
              message = function() return ("%s %s on %s at %s after esketamine: follow the patient up (and report "
                      .. "it on the REMS monitoring form)"):format(
                tostring(ae.data.severity or "unspecified"), kind:gsub("_", " "), R.day(ae.at),
                R.clock(ae.at)) end,
            }
          end
        end
        return alerts
      end,
    },
  },
}
