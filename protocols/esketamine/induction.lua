-- esketamine/induction.lua: the dosing cadence of a Spravato course, which
-- changes with the week of treatment: twice a week in weeks 1-4 (the
-- induction phase), once a week in weeks 5-8, then once a week or every two
-- weeks; and the assessment of benefit at the end of induction.
--
-- Illustrative defaults taken from the Spravato prescribing information
-- (docs/esketamine.md), not medical advice. A patient's `enrolled` /
-- `plan_adjusted` events can set maintenance_interval_days (7 or 14).
-- Weeks count from the first dose of the course; the cadence of the next
-- dose is that of the week the last dose fell in. Due dates count days on
-- the clinic's calendar (R.calendar_add).

local R = require "regimen"
local course = require "lib.course"
local sessions = require "lib.sessions"
local scores = require "lib.scores"
local days = R.days

-- The cadence after a dose given in week `week`: how long until the next
-- dose is due, and how the schedule is called in messages.
local function cadence(week, p)
  if week <= p.twice_weekly_weeks then
    return p.twice_weekly_due_after, "twice weekly, weeks 1-" .. p.twice_weekly_weeks
  elseif week <= p.weekly_weeks then
    return p.weekly_due_after, ("weekly, weeks %d-%d"):format(p.twice_weekly_weeks + 1, p.weekly_weeks)
  end
  return days(p.maintenance_interval_days),
         ("every %d days from week %d"):format(p.maintenance_interval_days, p.weekly_weeks + 1)
end

-- The next dose: its number, when it is due, and the cadence (nil before
-- the first dose).
local function next_dose(h, p)
  local doses = sessions.doses(h)
  local first, last = doses[1], doses[#doses]
  if not last then return nil end
  local week = sessions.week(first, last.at)
  local after, what = cadence(week, p)
  return #doses + 1, R.calendar_add(last.at, after), what, last
end

return R.protocol {
  id = "esketamine.induction",
  version = "1.0.0",
  description = "Dosing cadence by week of treatment; benefit assessed at the end of induction.",
  applies = course.enrolled_in("esketamine"),

  params = {
    twice_weekly_weeks        = 4,       -- weeks 1-4: twice a week (the induction phase)
    twice_weekly_due_after    = days(3), -- then the next dose is due this long after the last
    weekly_weeks              = 8,       -- weeks 5-8: once a week
    weekly_due_after          = days(7),
    maintenance_interval_days = 7,       -- from week 9: every 7 or 14 days (set per patient)
    dose_overdue_after        = days(4), -- a dose is overdue this long after its due date
    benefit_assessment_window = days(7), -- an assessment this long before the end of induction counts
  },

  rules = {
    {
      id = "induction.dose-due",
      severity = "info",
      description = "The next esketamine dose is due: 3 days after the last in weeks 1-4, 7 days "
                 .. "in weeks 5-8, then every maintenance_interval_days.",
      check = function(h, now, p)
        local n, due, what = next_dose(h, p)
        if not n then return end
        return R.alert {
          key = n,
          due = due,
          message = { "esketamine dose {n} due since {due:day} ({what})", n = n, due = due, what = what },
        }
      end,
    },

    {
      id = "induction.dose-overdue",
      severity = "warning",
      description = "The next esketamine dose is 4 days past its due date.",
      check = function(h, now, p)
        local n, due, what, last = next_dose(h, p)
        if not n then return end
        local overdue = R.calendar_add(due, p.dose_overdue_after)
        return R.alert {
          key = n,
          due = overdue,
          message = { "esketamine dose {n} overdue since {overdue:day} ({what}; last dose {last:day})",
                      n = n, overdue = overdue, what = what, last = last.at },
        }
      end,
    },

    {
      id = "induction.benefit-assessment",
      severity = "info",
      description = "The end of induction (4 weeks after the first dose) has come with no "
                 .. "assessment (PHQ-9 or another instrument) in its last 7 days: assess the "
                 .. "benefit to decide on continued treatment (until one is recorded).",
      check = function(h, now, p)
        local first = sessions.doses(h)[1]
        if not first then return end
        local due = R.calendar_add(first.at, days(7 * p.twice_weekly_weeks))
        local from = due - p.benefit_assessment_window
        for _, a in ipairs(course.events(h, "esketamine", "assessment")) do
          if a.at >= from then return end
        end
        -- the baseline: the latest PHQ-9 at or before the first dose
        local baseline = course.last(h, "esketamine", "assessment", function(e)
          return e.data.instrument == "phq9" and e.at <= first.at
        end)
        return R.alert {
          due = due,
          message = function() return ("end of induction on %s: assess the benefit of esketamine (PHQ-9 or "
                  .. "another instrument; baseline %s)"):format(R.day(due),
            baseline and ("PHQ-9 %g on %s"):format(scores.score(baseline), R.day(baseline.at))
                      or "none recorded") end,
        }
      end,
    },
  },
}
