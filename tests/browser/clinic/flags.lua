-- tests/browser: a "flag" event opens a wl.flag alert with the severity and
-- the message it carries (the test puts hostile markup in one), a "note"
-- event an info wl.note alert; a "clear" event with data.of = that event's
-- id resolves it.
local R = require "regimen"

local function open_ones(h, type)
  local cleared, out = {}, {}
  for _, c in ipairs(h:list("clear")) do cleared[c.data.of] = true end
  for _, e in ipairs(h:list(type)) do
    if not cleared[e.id] then
      out[#out + 1] = R.alert {
        key = e.id, severity = e.data.severity, message = e.data.message, due = e.at,
      }
    end
  end
  return out
end

return R.protocol {
  id = "wl.flags",
  version = "1.0.0",
  rules = {
    { id = "wl.flag", severity = "warning", check = function(h) return open_ones(h, "flag") end },
    { id = "wl.note", severity = "info", check = function(h) return open_ones(h, "note") end },
  },
}
