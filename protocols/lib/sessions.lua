-- lib/sessions.lua: the treatment sessions of an esketamine (Spravato) course.
--
-- A session is one `esketamine_dose` event (data.dose_mg, data.devices; `at`
-- is when the first device was given) and what belongs to it: the blood
-- pressure taken before it (`vitals` with data.phase = "pre"), the readings
-- after it (data.phase = "post") until the next dose, the `monitoring_end`
-- that judged the patient ready to leave, and the REMS patient monitoring
-- form (`rems_form` with data.dose = the dose's id). Only the current course
-- counts (see lib.course). Depends on lib.course.
--     local sessions = require "lib.sessions"

local R = require "regimen"
local course = require "lib.course"

local sessions = {}

sessions.program = "esketamine"

-- The doses of the current course, oldest first (shared: do not change it).
function sessions.doses(h)
  return course.events(h, sessions.program, "esketamine_dose")
end

local function is_pre(v) return v.data.phase == "pre" end
local function is_post(v) return v.data.phase == "post" end

-- Is a reading above the limits (strictly: 141/90 is above 140/90)?
function sessions.high(v, p)
  return course.number(v, "systolic") > p.bp_systolic_max
      or course.number(v, "diastolic") > p.bp_diastolic_max
end

-- Builds every session of the course once (h:memo, kept until an event it reads comes):
--   dose      the esketamine_dose event
--   next      the next dose, or nil
--   pre       the latest pre-dose reading within p.pre_dose_bp_within
--             before the dose (recorded before it), or nil
--   posts     the post-dose readings after the dose (before the next one)
--   ended     the first monitoring_end after the dose (before the next), or nil
--   form      the first rems_form reporting this dose, or nil
local function build(h, within)
  local list = {}
  local doses = sessions.doses(h)
  for i, dose in ipairs(doses) do
    local nxt = doses[i + 1]
    local function in_session(e) return not nxt or e.at < nxt.at end
    local pre = h:last_before(dose, "vitals", is_pre)
    if pre and dose.at - pre.at > within then pre = nil end
    local posts = {}
    for _, v in ipairs(h:after(dose, "vitals", is_post)) do
      if in_session(v) then posts[#posts + 1] = v end
    end
    local ended = h:first_after(dose, "monitoring_end")
    if ended and not in_session(ended) then ended = nil end
    list[i] = {
      dose = dose,
      next = nxt,
      pre = pre,
      posts = posts,
      ended = ended,
      form = h:first("rems_form", { dose = dose.id }),
    }
  end
  return list
end

-- Every session of the current course, oldest first (shared between rules:
-- read it, do not change it). p.pre_dose_bp_within says how long before a
-- dose a pre-dose reading still counts.
function sessions.all(h, p)
  return h:memo("sessions.all " .. p.pre_dose_bp_within, build, p.pre_dose_bp_within)
end

-- The first post-dose reading taken at least p.post_dose_bp_from after the
-- dose (the "40-minute" reading), or nil.
function sessions.reading_at_40(s, p)
  for _, v in ipairs(s.posts) do
    if v.at - s.dose.at >= p.post_dose_bp_from then return v end
  end
  return nil
end

-- The week of treatment (1, 2, ...) that time t falls in, counted from the
-- first dose of the course on the clinic's calendar: week 2 starts 7 days
-- after the first dose at the same local time, across a daylight-saving
-- change too.
function sessions.week(first, t)
  local n = (t - first.at) // R.weeks(1)
  if R.calendar_add(first.at, R.days(7 * (n + 1))) <= t then
    n = n + 1
  elseif n > 0 and R.calendar_add(first.at, R.days(7 * n)) > t then
    n = n - 1
  end
  return n + 1
end

return sessions
