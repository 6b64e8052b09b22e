-- lib/course.lua: building blocks for protocols about a course of treatment.
--
-- A course starts with an `enrolled` event for a program and ends with a
-- `discharged` event. Everything here looks only at the current course (the
-- events after the latest enrolment), so a patient who is discharged and later
-- re-enrolled starts afresh. Clinic protocols can use these too:
--     local course = require "lib.course"
--
-- A course has an acute series of p.acute_infusions infusions, then a
-- maintenance phase of booster infusions every p.booster_interval_days (a
-- duration).

local R = require "regimen"

local course = {}

-- The parameters several protocols of a course share, declared once here.
-- A protocol lists the ones it reads (`acute_infusions =
-- course.params.acute_infusions`); a clinic sets each once for all of them
-- at the top of its params (`acute_infusions = 8`), never per protocol, so
-- the protocols cannot disagree about where the course stands. Illustrative
-- defaults, not medical advice.
course.params = {
  acute_infusions = R.param {
    6, kind = "count", shared = "course",
    description = "infusions in the acute series",
  },
  booster_interval_days = R.param {
    R.days(28), kind = "duration", shared = "course", plan = "days",
    description = "from the last infusion to the next booster (in a plan event's data: "
               .. "a number of days)",
  },
}

-- The `enrolled` event that opened the current course of `program`, or nil
-- when the patient is not enrolled (or was discharged since). Computed once
-- per evaluation (h:memo) and shared by every rule.
local function find_enrolment(h, program)
  local e = h:last("enrolled", { program = program })
  if not e then return nil end
  if #h:after(e, "discharged") > 0 then return nil end
  return e
end

-- The h:memo keys of the building blocks, made once per program (and plan)
-- rather than joined anew by every rule at every step.
local keys = {}
local function key(kind, program, extra)
  local by_kind = keys[kind]
  if not by_kind then by_kind = {} keys[kind] = by_kind end
  local by_program = by_kind[program]
  if not by_program then by_program = {} by_kind[program] = by_program end
  local k = by_program[extra or true]
  if not k then
    k = extra == nil and kind .. " " .. program or kind .. " " .. program .. " " .. extra
    by_program[extra or true] = k
  end
  return k
end

function course.enrolment(h, program)
  return h:memo(key("course.enrolment", program), find_enrolment, program)
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
  return h:memo(key("course.events", program, type), course_events, program, type)
end

-- Does event e match filter (data fields that must be equal, or a function)?
local function matches(e, filter)
  if type(filter) == "function" then return filter(e) end
  for k, v in pairs(filter) do
    if e.data[k] ~= v then return false end
  end
  return true
end

-- The latest event of `type` in the current course, or nil. With a filter it
-- searches back from the newest event and stops at the first match (or at
-- the start of the course), so the filter sees only the events from there on.
function course.last(h, program, type, filter)
  if filter == nil then return course.latest(course.events(h, program, type)) end
  local enrolment = course.enrolment(h, program)
  if not enrolment then return nil end
  local before_course = false
  local e = h:last(type, function(ev)
    if ev.at < enrolment.at then
      before_course = true
      return true
    end
    return matches(ev, filter)
  end)
  if not e or before_course then return nil end
  if e.at == enrolment.at then -- the same instant: was it recorded after the enrolment?
    local enrolments = h:before(e, "enrolled", { program = program })
    if enrolments[#enrolments] ~= enrolment then return nil end
  end
  return e
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
  return h:memo(key("course.series", program, p.acute_infusions), build_series, program, p)
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

-- When the next booster is due: p.booster_interval_days (a duration; a
-- patient's plan gives it as a number of days) after the latest infusion.
function course.booster_due(s, p)
  return R.calendar_add(s.last.at, p.booster_interval_days)
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
