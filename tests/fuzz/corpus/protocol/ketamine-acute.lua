-- ketamine/acute.lua: the acute series of infusions.
--
-- Illustrative defaults, not medical advice: a clinic sets its own in
-- clinic.lua, and a patient's `enrolled` / `plan_adjusted` events can set
-- acute_infusions for that patient.

local R = require "regimen"
local course = require "lib.course"
local window = require "lib.window"
local days, hours = R.days, R.hours

return R.protocol {
  id = "ketamine.acute",
  version = "1.0.0",
  description = "Acute series: about six infusions over two to three weeks.",
  applies = course.enrolled_in("ketamine"),

  params = {
    acute_infusions        = 6,         -- infusions in the acute series
    infusion_due_after     = days(2),   -- the next infusion is due this long after the last
    infusion_overdue_after = days(7),   -- and overdue this long after it
    infusions_min_gap      = hours(24), -- two infusions closer than this are too close
    acute_window           = days(21),  -- the series should be complete this long after its first infusion
  },

  rules = {
    {
      id = "acute.infusion-due",
      severity = "info",
      description = "The next infusion of the acute series is due (2 days after the last one).",
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
      id = "acute.infusion-overdue",
      severity = "warning",
      description = "The next infusion of the acute series is overdue (7 days after the last one).",
      check = function(h, now, p)
        local s = course.series(h, "ketamine", p)
        if not s.last or s.phase ~= "acute" then return end
        local due = s.last.at + p.infusion_overdue_after
        return R.alert {
          key = s.given + 1,
          due = due,
          message = ("infusion %d of %d overdue since %s (last infusion %s)"):format(
            s.given + 1, s.planned, R.day(due), R.day(s.last.at)),
        }
      end,
    },

    {
      id = "acute.too-soon",
      severity = "critical",
      description = "An infusion came less than 24 h after the previous one (one alert per "
                 .. "infusion, until a follow-up visit after it).",
      check = function(h, now, p)
        local alerts = {}
        local infusions = course.series(h, "ketamine", p).infusions
        for i = 2, #infusions do
          local previous, infusion = infusions[i - 1], infusions[i]
          local gap = infusion.at - previous.at
          if gap < p.infusions_min_gap and not window.followed_by(h, infusion, "followup_visit") then
            alerts[#alerts + 1] = R.alert {
              key = infusion.id,
              due = infusion.at,
              message = ("infusion on %s only %.1f h after the previous one "
                      .. "(minimum %g h): see the patient at a follow-up visit"):format(
                R.day(infusion.at), R.in_hours(gap), R.in_hours(p.infusions_min_gap)),
            }
          end
        end
        return alerts
      end,
    },

    {
      id = "acute.window-exceeded",
      severity = "warning",
      description = "The acute series is still under way 21 days after its first infusion.",
      check = function(h, now, p)
        local s = course.series(h, "ketamine", p)
        if not s.first or s.phase ~= "acute" then return end
        local due = s.first.at + p.acute_window
        return R.alert {
          due = due,
          message = ("acute series of %d infusions not complete %g days after the first "
                  .. "infusion on %s"):format(s.planned, R.in_days(p.acute_window), R.day(s.first.at)),
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

--@@ lib/window.lua
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
  return h:after(e, type, filter)[1]
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
