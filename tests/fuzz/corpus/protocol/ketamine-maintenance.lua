-- ketamine/maintenance.lua: the maintenance phase after the acute series:
-- booster infusions every 4 to 12 weeks, relapse, and the risks of long-term
-- use (dependence, tolerance).
--
-- Illustrative defaults, not medical advice. A patient's `enrolled` /
-- `plan_adjusted` events can set acute_infusions and booster_interval_days
-- (a whole number of days; plans use 28 to 84).

local R = require "regimen"
local course = require "lib.course"
local scores = require "lib.scores"
local dose = require "lib.dose"
local window = require "lib.window"
local days = R.days

return R.protocol {
  id = "ketamine.maintenance",
  version = "1.0.0",
  description = "Boosters after the acute series: timing, relapse, frequency and tolerance.",
  applies = course.enrolled_in("ketamine"),

  params = {
    acute_infusions        = 6,        -- infusions in the acute series
    booster_interval_days  = 28,       -- days from the last infusion to the next booster
    booster_overdue_after  = days(14), -- a booster is overdue this long after its due date
    relapse_phq9_min       = 15,       -- a PHQ-9 at or above this since the last infusion is a relapse
    relapse_phq9_rise      = 5,        -- and so is one this many points above the baseline
    boosters_max_in_window = 2,        -- more maintenance infusions than this ...
    boosters_window        = days(21), -- ... within this long: dependence risk
    tolerance_increases    = 3,        -- this many successive dose increases suggest tolerance
    dose_max_mg_per_kg     = 1.0,      -- and so does a dose above this
  },

  rules = {
    {
      id = "booster.due",
      severity = "info",
      description = "Maintenance: a booster infusion is due booster_interval_days after the last infusion.",
      check = function(h, now, p)
        local s = course.series(h, "ketamine", p)
        if s.phase ~= "maintenance" or not s.last then return end
        local due = course.booster_due(s, p)
        return R.alert {
          key = s.last.id,
          due = due,
          message = ("booster infusion due since %s (every %d days; last infusion %s)"):format(
            R.day(due), p.booster_interval_days, R.day(s.last.at)),
        }
      end,
    },

    {
      id = "booster.overdue",
      severity = "warning",
      description = "Maintenance: the booster is 14 days past its due date.",
      check = function(h, now, p)
        local s = course.series(h, "ketamine", p)
        if s.phase ~= "maintenance" or not s.last then return end
        local booster_due = course.booster_due(s, p)
        local due = booster_due + p.booster_overdue_after
        return R.alert {
          key = s.last.id,
          due = due,
          message = ("booster infusion overdue since %s (it was due %s; last infusion %s)"):format(
            R.day(due), R.day(booster_due), R.day(s.last.at)),
        }
      end,
    },

    {
      id = "booster.relapse",
      severity = "warning",
      description = "Maintenance: the latest PHQ-9 since the last infusion is 15 or more, or 5 "
                 .. "points above the baseline (the first PHQ-9 after the acute series).",
      check = function(h, now, p)
        local s = course.series(h, "ketamine", p)
        if s.phase ~= "maintenance" or not s.last then return end
        local latest = scores.latest(h, "ketamine", "phq9", s.last)
        if not latest then return end
        local score = scores.score(latest)
        local baseline = scores.baseline_phq9(h, "ketamine", s)
        local base = baseline and scores.score(baseline)
        if score < p.relapse_phq9_min and not (base and score >= base + p.relapse_phq9_rise) then
          return
        end
        return R.alert {
          key = s.last.id,
          due = latest.at,
          message = ("PHQ-9 of %g (baseline %s) since the last infusion on %s: consider a booster"):format(
            score, base and ("%g"):format(base) or "none", R.day(s.last.at)),
        }
      end,
    },

    {
      id = "booster.frequency",
      severity = "warning",
      description = "More than 2 maintenance infusions within 21 days (dependence risk); "
                 .. "closes when the 21 days have passed.",
      check = function(h, now, p)
        local s = course.series(h, "ketamine", p)
        local episode = window.crowded(s.maintenance, p.boosters_max_in_window, p.boosters_window)
        if not episode then return end
        return R.alert {
          key = episode.first.id,
          due = episode.starts,
          ends = episode.ends,
          message = ("%d or more maintenance infusions within %g days (since %s): dependence risk"):format(
            p.boosters_max_in_window + 1, R.in_days(p.boosters_window), R.day(episode.starts)),
        }
      end,
    },

    {
      id = "booster.tolerance",
      severity = "warning",
      description = "Three successive dose increases, or the latest dose above 1.0 mg/kg; "
                 .. "until a later infusion at a lower dose.",
      check = function(h, now, p)
        local infusions = course.series(h, "ketamine", p).infusions
        local start, i = dose.tolerance(infusions, p.tolerance_increases, p.dose_max_mg_per_kg)
        if not start then return end
        local why
        if dose.of(start) > p.dose_max_mg_per_kg then
          why = ("dose of %g mg/kg is above %g mg/kg"):format(dose.of(start), p.dose_max_mg_per_kg)
        else
          why = ("dose raised %d times in a row (%s)"):format(
            p.tolerance_increases, dose.trail(infusions, i - p.tolerance_increases, i))
        end
        return R.alert {
          key = start.id,
          due = start.at,
          message = ("possible tolerance: %s at the infusion on %s"):format(why, R.day(start.at)),
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

--@@ lib/dose.lua
-- lib/dose.lua: infusion doses and their trend (tolerance).
--
-- An `infusion` event has data.dose_mg_per_kg. Depends on lib.course.
--     local dose = require "lib.dose"

local course = require "lib.course"

local dose = {}

-- An infusion's dose in mg/kg, or an error naming the event.
function dose.of(infusion)
  return course.number(infusion, "dose_mg_per_kg")
end

-- How many successive increases end at infusions[i]: 0 when infusions[i] is
-- not higher than the one before it, 1 when it is, 2 when that one was also
-- higher than its own predecessor, and so on.
function dose.increases_to(infusions, i)
  local n = 0
  while i - n > 1 and dose.of(infusions[i - n]) > dose.of(infusions[i - n - 1]) do
    n = n + 1
  end
  return n
end

-- The doses of infusions[from..to] as "0.5 → 0.6 → 0.7 mg/kg".
function dose.trail(infusions, from, to)
  local parts = {}
  for i = math.max(from, 1), to do
    parts[#parts + 1] = ("%g"):format(dose.of(infusions[i]))
  end
  return table.concat(parts, " → ") .. " mg/kg"
end

-- Tolerance, followed infusion by infusion: it starts at an infusion that
-- ends `increases` successive dose increases or whose dose is above
-- `max_dose`, and lasts until a later infusion at a lower dose than the one
-- before it (that is not itself a start). Returns the infusion that started
-- the current episode and its index, or nil when there is none now.
function dose.tolerance(infusions, increases, max_dose)
  local start, start_i
  for i, infusion in ipairs(infusions) do
    if dose.increases_to(infusions, i) >= increases or dose.of(infusion) > max_dose then
      if not start then start, start_i = infusion, i end
    elseif start and dose.of(infusion) < dose.of(infusions[i - 1]) then
      start, start_i = nil, nil
    end
  end
  return start, start_i
end

return dose

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
