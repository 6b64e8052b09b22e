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
