-- adversarial/fhir_map_slow
-- Attacks: nothing itself; the attack is the clinic's fhir.map in clinic.lua
-- beside it (a clinic needs a protocol to load). See clinic.lua.
-- Must happen: see clinic.lua; this protocol opens an alert for every vitals
-- event, so a Bundle stored in part would show.
local R = require 'regimen'

return R.protocol {
  id = 'adv.fhir-map-slow', version = '1',
  applies = function(h) return true end,
  rules = { {
    id = 'adv.fhir-map-slow.vitals', severity = 'info',
    check = function(h, now, p)
      if h:last('vitals') then return R.alert { message = 'vitals stored' } end
    end,
  } },
}
