-- ketamine/integration.lua: integration therapy after each infusion.

local R = require "regimen"
local course = require "lib.course"
local window = require "lib.window"
local hours = R.hours

return R.protocol {
  id = "ketamine.integration",
  version = "1.0.0",
  description = "An integration session should follow every infusion.",
  applies = course.enrolled_in("ketamine"),

  params = {
    integration_within = hours(72), -- an integration session is expected this soon after an infusion
  },

  rules = {
    {
      id = "integration.missing",
      severity = "warning",
      description = "No integration session within {integration_within} after an infusion (one alert "
                 .. "per infusion).",
      check = function(h, now, p)
        local alerts = {}
        for _, infusion in ipairs(course.events(h, "ketamine", "infusion")) do
          if not window.followed_by(h, infusion, "integration_session") then
            alerts[#alerts + 1] = R.alert {
              key = infusion.id,
              due = infusion.at + p.integration_within,
              message = { "no integration session within {within:hours} h of the infusion on {at:day}",
                          within = p.integration_within, at = infusion.at },
            }
          end
        end
        return alerts
      end,
    },
  },
}
