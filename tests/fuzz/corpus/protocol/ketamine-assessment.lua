-- ketamine/assessment.lua: regular progress assessments (PHQ-9) that guide
-- the acute series and the timing of boosters.

local R = require "regimen"
local course = require "lib.course"
local scores = require "lib.scores"
local days = R.days

return R.protocol {
  id = "ketamine.assessment",
  version = "1.0.0",
  description = "A PHQ-9 every 14 days in the acute phase, every 30 days in maintenance.",
  applies = course.enrolled_in("ketamine"),

  params = {
    acute_infusions          = 6,        -- infusions in the acute series
    assessment_every_acute   = days(14), -- a PHQ-9 is due this long after the last one (acute phase)
    assessment_every_booster = days(30), -- and this long after it in the maintenance phase
  },

  rules = {
    {
      id = "assessment.due",
      severity = "info",
      description = "A PHQ-9 is due: 14 days (acute phase) or 30 days (maintenance) since the "
                 .. "last one, or since enrolment if there is none.",
      check = function(h, now, p)
        local s = course.series(h, "ketamine", p)
        local last = scores.latest(h, "ketamine", "phq9")
        local since = last or s.enrolment
        -- The acute interval applies when the series was still acute at the
        -- moment it ran out; otherwise the maintenance one.
        local due = since.at + p.assessment_every_acute
        if course.phase_at(s, math.min(due, now)) == "maintenance" then
          due = since.at + p.assessment_every_booster
        end
        local what = last and ("last one on %s"):format(R.day(last.at))
                          or ("none since enrolment on %s"):format(R.day(s.enrolment.at))
        return R.alert {
          due = due,
          message = ("PHQ-9 due since %s (%s)"):format(R.day(due), what),
        }
      end,
    },
  },
}

--@@ lib/course.lua
-- lib/course.lua: building blocks for protocols about a course of treatment.
--
-- A course starts with an `enrolled` event for a program and ends with a
-- `discharged` event. Everything here looks only at the current course (the
-- events after the latest enrolment), so a patient who is discharged and later
-- re-enrolled starts afresh. Clinic protocols can use these too:
--     local course = require "lib.course"
--
-- A course has an acute series of p.acute_infusions infusions, then a
-- maintenance phase of booster infusions every p.booster_interval_days days.

local R = require "regimen"

local course = {}

-- The `enrolled` event that opened the current course of `program`, or nil
-- when the patient is not enrolled (or was discharged since). Computed once
-- per evaluation (h:memo) and shared by every rule.
local function find_enrolment(h, program)
  local e = h:last("enrolled", { program = program })
  if not e then return nil end
  if #h:after(e, "discharged") > 0 then return nil end
  return e
end

function course.enrolment(h, program)
  return h:memo("course.enrolment " .. program, find_enrolment, program)
end

-- For a protocol's `applies`: true while the patient is in a course of program.
function course.enrolled_in(program)
  return function(h)
    return course.enrolment(h, program) ~= nil
  end
end

-- Events of `type` since the current course began (oldest first). Without a
-- filter the list is shared between rules: do not change it.
local function course_events(h, program, type, filter)
  local e = course.enrolment(h, program)
  if not e then return {} end
  return h:after(e, type, filter)
end

function course.events(h, program, type, filter)
  if filter ~= nil then return course_events(h, program, type, filter) end
  return h:memo("course.events " .. program .. " " .. type, course_events, program, type)
end

-- The latest event of `type` in the current course, or nil.
function course.last(h, program, type, filter)
  return course.latest(course.events(h, program, type, filter))
end

-- The acute series: "acute" until the patient has had p.acute_infusions
-- infusions in this course, "maintenance" after.
function course.phase(infusions, p)
  if #infusions < p.acute_infusions then return "acute" end
  return "maintenance"
end

-- The infusions of the current course, counted against the plan:
--   infusions    all of them, oldest first
--   given        how many so far; planned: p.acute_infusions
--   phase        "acute" or "maintenance"
--   first, last  the first and the latest infusion (nil before the first)
--   acute_end    the infusion that completed the acute series (nil while it
--                is under way); with a plan of 0 acute infusions, the enrolment
--   maintenance  the infusions after the acute series (the boosters)
--   enrolment    the `enrolled` event of the course
local function build_series(h, program, p)
  local infusions = course.events(h, program, "infusion")
  local planned = p.acute_infusions
  local s = {
    infusions = infusions,
    given = #infusions,
    planned = planned,
    phase = course.phase(infusions, p),
    first = infusions[1],
    last = infusions[#infusions],
    enrolment = course.enrolment(h, program),
    maintenance = {},
  }
  if s.phase == "maintenance" then
    s.acute_end = planned >= 1 and infusions[planned] or s.enrolment
    for i = math.max(planned, 0) + 1, #infusions do
      s.maintenance[#s.maintenance + 1] = infusions[i]
    end
  end
  return s
end

-- (shared between the rules of one evaluation: read it, do not change it)
function course.series(h, program, p)
  return h:memo("course.series " .. program .. " " .. p.acute_infusions, build_series, program, p)
end

-- The phase the series was in at time t (a time at or before now): phase
-- changes only with an infusion, so count those given by then.
function course.phase_at(s, t)
  local given = 0
  for _, infusion in ipairs(s.infusions) do
    if infusion.at <= t then given = given + 1 end
  end
  if given < s.planned then return "acute" end
  return "maintenance"
end

-- When the next booster is due: p.booster_interval_days (a whole number of
-- days, set per patient by the plan) after the latest infusion.
function course.booster_due(s, p)
  return s.last.at + R.days(p.booster_interval_days)
end

-- A number from an event's data, with an error that names the event and the
-- field when it is missing or not a number.
function course.number(event, field)
  local v = event.data[field]
  if type(v) ~= "number" then
    error(("event %s (%s): data.%s must be a number, got %s"):format(
      event.id, event.type, field, v == nil and "nothing" or type(v)), 2)
  end
  return v
end

-- The latest event in a list, or nil.
function course.latest(list)
  return list[#list]
end

-- "9 Mar 2026": how dates appear in messages.
course.day = R.day

return course

--@@ lib/scores.lua
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
