-- ketamine/safety.lua: risks watched during the whole course.

local R = require "regimen"
local course = require "lib.course"
local scores = require "lib.scores"
local window = require "lib.window"

-- Vitals taken before an infusion (vitals without a phase count as "pre").
local function before_infusion(v)
  return v.data.phase == nil or v.data.phase == "pre"
end

-- Adverse-event severities, mildest first.
local severity_rank = { mild = 1, moderate = 2, severe = 3 }

-- Is `word` one of the space-separated words of `list`?
local function listed(list, word)
  for item in list:gmatch("%S+") do
    if item == word then return true end
  end
  return false
end

return R.protocol {
  id = "ketamine.safety",
  version = "1.0.0",
  description = "Blood pressure, adverse events and suicidality.",
  applies = course.enrolled_in("ketamine"),

  params = {
    bp_systolic_max  = 160, -- mmHg: at or above this before an infusion is too high
    bp_diastolic_max = 100, -- mmHg
    adverse_min_severity      = "moderate",          -- adverse events this severe or worse need a follow-up
    adverse_always_kinds      = "urinary cognitive", -- and these kinds at any severity (space-separated)
    adverse_critical_severity = "severe",            -- this severity makes the alert critical
    item9_min = 1, -- a PHQ-9 item 9 (self-harm) answer at or above this is critical
  },

  rules = {
    {
      id = "safety.bp-high",
      severity = "critical",
      description = "The latest pre-infusion blood pressure is too high (until later vitals are below both limits).",
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
          local serious = rank == nil or rank >= min_rank or listed(p.adverse_always_kinds, kind)
          if serious and not window.followed_by(h, ae, "followup_visit") then
            alerts[#alerts + 1] = R.alert {
              key = ae.id,
              due = ae.at,
              severity = severity == p.adverse_critical_severity and "critical" or "warning",
              message = ("%s %s adverse event on %s: see the patient at a follow-up visit"):format(
                severity, kind, R.day(ae.at)),
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
          message = ("PHQ-9 item 9 (thoughts of self-harm) answered %g on %s: assess suicide "
                  .. "risk now"):format(phq9.data.item9, R.day(phq9.at)),
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
