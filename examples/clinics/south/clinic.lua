-- Clinic "south": runs the shipped ketamine protocol set with its own
-- defaults, plus one rule of its own (anxiety.lua). Illustrative values, not
-- medical advice.
return {
  description = "South clinic: 8-infusion acute series, boosters every 42 days, "
             .. "blood-pressure limit 150/95, and a GAD-7 rule of its own.",
  include = { "ketamine" },
  params = {
    acute_infusions       = 8,  -- every protocol with this parameter; the shipped default is 6
    booster_interval_days = 42, -- days; the shipped default is 28
    ["ketamine.safety"] = {
      bp_systolic_max  = 150,   -- mmHg; the shipped default is 160
      bp_diastolic_max = 95,    -- mmHg; the shipped default is 100
    },
  },
}
