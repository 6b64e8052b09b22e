-- lib/window.lua: windows of time after an event.
--
-- "Was the infusion followed by an integration session?", "is a follow-up
-- visit recorded since?", "were there more than 2 boosters within 21 days?".
-- Depends only on the history methods of the `regimen` module.
--     local window = require "lib.window"

local window = {}

-- The first event of `type` (matching `filter`) after event e, or nil.
-- Events at the same instant as e count when they were recorded after it.
function window.next(h, e, type, filter)
  return h:first_after(e, type, filter)
end

-- Has an event of `type` been recorded after event e?
function window.followed_by(h, e, type, filter)
  return window.next(h, e, type, filter) ~= nil
end

-- Crowding: the events (oldest first) are "crowded" while more than `limit`
-- of them fall within `length` of each other, i.e. from the moment the
-- (limit+1)-th such event happens until `length` after the oldest of them has
-- passed. Overlapping or touching stretches merge into one episode.
-- Returns the latest episode { first = the event that started it,
-- starts = time, ends = time }, or nil when there has been none.
function window.crowded(events, limit, length)
  local episode
  for i = limit + 1, #events do
    local starts = events[i].at
    local ends = events[i - limit].at + length
    if starts < ends then
      if episode and starts <= episode.ends then
        if ends > episode.ends then episode.ends = ends end
      else
        episode = { first = events[i], starts = starts, ends = ends }
      end
    end
  end
  return episode
end

return window
