-- Clinic "north": runs the shipped ketamine protocol set with one stricter
-- default. Illustrative values, not medical advice.
return {
  description = "North clinic: shipped ketamine set, stricter blood-pressure limit.",
  include = { "ketamine" },
  params = {
    ["ketamine.safety"] = {
      bp_systolic_max = 150, -- mmHg; the shipped default is 160
    },
  },
}
