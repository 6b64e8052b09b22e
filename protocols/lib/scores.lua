-- lib/scores.lua: progress assessments (PHQ-9, GAD-7, PCL-5) in a course.
--
-- An `assessment` event has data.instrument ("phq9", "gad7", "pcl5") and
-- data.score; a PHQ-9 may carry data.item9 (the self-harm item). Only the
-- current course counts (see lib.course).
--     local scores = require "lib.scores"

local course = require "lib.course"

local scores = {}

-- The names nurses read in messages.
scores.names = { phq9 = "PHQ-9", gad7 = "GAD-7", pcl5 = "PCL-5" }

function scores.name(instrument)
  return scores.names[instrument] or instrument
end

-- The assessments of `instrument` in the current course, oldest first; with
-- `since` (an event), only those recorded after it.
function scores.list(h, program, instrument, since)
  local filter = { instrument = instrument }
  if since then return h:after(since, "assessment", filter) end
  return course.events(h, program, "assessment", filter)
end

-- The latest assessment of `instrument` in the course (after `since`), or nil.
function scores.latest(h, program, instrument, since)
  return course.latest(scores.list(h, program, instrument, since))
end

-- The first assessment of `instrument` in the course (after `since`), or nil.
function scores.first(h, program, instrument, since)
  return scores.list(h, program, instrument, since)[1]
end

-- An assessment's score, or an error naming the event.
function scores.score(e)
  return course.number(e, "score")
end

-- The PHQ-9 baseline for the maintenance phase: the first PHQ-9 after the
-- acute series was completed (s from course.series), or nil.
function scores.baseline_phq9(h, program, s)
  if not s.acute_end then return nil end
  return scores.first(h, program, "phq9", s.acute_end)
end

-- The latest PHQ-9 of the course that answers item 9 (self-harm), or nil.
function scores.latest_item9(h, program)
  return course.last(h, program, "assessment", function(e)
    return e.data.instrument == "phq9" and e.data.item9 ~= nil
  end)
end

return scores
