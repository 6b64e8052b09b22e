-- adversarial/alerts_many_rules
-- Attacks: the runtime's matching of returned alerts against open ones, with
-- 60 rules of 1,000 alerts each (every rule within the 1,000-alert limit per
-- rule): 60,000 alerts in one step, matched pairwise in C (once: one event,
-- 17.8 s, 60,000 transitions, 500 MB on disk).
-- Must happen: at most 1,000 alerts per evaluation across the rules (the
-- rules past it fail with "alerts per evaluation", naming this file, and
-- keep their alerts as they were), matched by hash, within the deadline.
local R = require 'regimen'

-- one list, made once, returned by every rule (distinct keys per rule, as
-- the key hashes the rule's id): the work is all in the runtime
local list = {}
for i = 1, 1000 do list[i] = { key = 'k' .. i, message = 'alert ' .. i } end

local rules = {}
for r = 1, 60 do
  rules[r] = {
    id = 'adv.many-rules-' .. r, severity = 'info',
    check = function(h, now, p) return list end,
  }
end

return R.protocol { id = 'adv.alerts-many-rules', version = '1', rules = rules }
