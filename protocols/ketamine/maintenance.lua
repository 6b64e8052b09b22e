-- ketamine/maintenance.lua: the maintenance phase after the acute series:
-- booster infusions every 4 to 12 weeks, relapse, and the risks of long-term
-- use (dependence, tolerance).
--
-- Illustrative defaults, not medical advice. A patient's `enrolled` /
-- `plan_adjusted` events can set acute_infusions and booster_interval_days
-- (in event data a number of days; plans use 28 to 84). Both are shared by
-- the course (lib/course.lua): a clinic sets them at the top of its params.

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
    acute_infusions        = course.params.acute_infusions, -- shared by the course (lib/course.lua)
    booster_interval_days  = course.params.booster_interval_days, -- shared (lib/course.lua)
    booster_overdue_after  = days(14), -- a booster is overdue this long after its due date
    relapse_phq9_min = R.param {
      15, kind = "score", min = 0, max = 27, unit = "PHQ-9 points",
      description = "a PHQ-9 at or above this since the last infusion is a relapse",
    },
    relapse_phq9_rise = R.param {
      5, kind = "score", min = 0, max = 27, unit = "PHQ-9 points",
      description = "and so is one this many points above the baseline",
    },
    boosters_max_in_window = 2,        -- more maintenance infusions than this ...
    boosters_window        = days(21), -- ... within this long: dependence risk
    tolerance_increases    = 3,        -- this many successive dose increases suggest tolerance
    dose_max_mg_per_kg = R.param {
      1.0, kind = "number", unit = "mg/kg", description = "and so does a dose above this",
    },
  },

  rules = {
    {
      id = "booster.due",
      severity = "info",
      description = "Maintenance: a booster infusion is due {booster_interval_days} after the last infusion.",
      check = function(h, now, p)
        local s = course.series(h, "ketamine", p)
        if s.phase ~= "maintenance" or not s.last then return end
        local due = course.booster_due(s, p)
        return R.alert {
          key = s.last.id,
          due = due,
          message = { "booster infusion due since {due:day} (every {every:days} days; last infusion {last:day})",
                      due = due, every = p.booster_interval_days, last = s.last.at },
        }
      end,
    },

    {
      id = "booster.overdue",
      severity = "warning",
      description = "Maintenance: the booster is {booster_overdue_after} past its due date.",
      check = function(h, now, p)
        local s = course.series(h, "ketamine", p)
        if s.phase ~= "maintenance" or not s.last then return end
        local booster_due = course.booster_due(s, p)
        local due = R.calendar_add(booster_due, p.booster_overdue_after)
        return R.alert {
          key = s.last.id,
          due = due,
          message = { "booster infusion overdue since {due:day} (it was due {booster_due:day}; ",
                      "last infusion {last:day})",
                      due = due, booster_due = booster_due, last = s.last.at },
        }
      end,
    },

    {
      id = "booster.relapse",
      severity = "warning",
      description = "Maintenance: the latest PHQ-9 since the last infusion is {relapse_phq9_min} or more, "
                 .. "or {relapse_phq9_rise} points above the baseline (the first PHQ-9 after the acute series).",
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
        if not base then
          return R.alert { key = s.last.id, due = latest.at,
            message = { "PHQ-9 of {score} (baseline none) since the last infusion on {last:day}: consider a booster",
                        score = score, last = s.last.at } }
        end
        return R.alert { key = s.last.id, due = latest.at,
          message = { "PHQ-9 of {score} (baseline {base}) since the last infusion on {last:day}: consider a booster",
                      score = score, base = base, last = s.last.at } }
      end,
    },

    {
      id = "booster.frequency",
      severity = "warning",
      description = "More than {boosters_max_in_window} maintenance infusions within {boosters_window} "
                 .. "(dependence risk); closes when the {boosters_window} have passed.",
      check = function(h, now, p)
        local s = course.series(h, "ketamine", p)
        local episode = window.crowded(s.maintenance, p.boosters_max_in_window, p.boosters_window)
        if not episode then return end
        return R.alert {
          key = episode.first.id,
          due = episode.starts,
          ends = episode.ends,
          message = { "{n} or more maintenance infusions within {window:days} days (since {starts:day}): ",
                      "dependence risk",
                      n = p.boosters_max_in_window + 1, window = p.boosters_window, starts = episode.starts },
        }
      end,
    },

    {
      id = "booster.tolerance",
      severity = "warning",
      description = "{tolerance_increases} successive dose increases, or the latest dose above "
                 .. "{dose_max_mg_per_kg} mg/kg; "
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
          message = { "possible tolerance: {why} at the infusion on {at:day}", why = why, at = start.at },
        }
      end,
    },
  },
}
