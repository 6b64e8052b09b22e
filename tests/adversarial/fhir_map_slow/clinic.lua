-- adversarial/fhir_map_slow
-- Attacks: the service's loop, through the clinic's fhir.map (POST /v1/fhir):
-- each call stays under the per-call limits (about 1.2 M instructions, a few
-- ms), but a 500-entry Bundle makes 500 of them; run on the loop thread that
-- held /healthz and every other clinic for the whole Bundle (~20 s with a
-- slower map).
-- Must happen: the mapping runs on an evaluation thread, all its calls under
-- one deadline (limits.deadline_ms in all): /healthz and another clinic's
-- POST answer in under a second meanwhile; the request ends within the
-- deadline + 10% with 500 "deadline of ... ms for fhir.map over the whole
-- request exceeded" naming this file and line; nothing of the Bundle is
-- stored.
local spin = 300000

return {
  fhir = {
    map = function(resource, event)
      if resource.id == 'bp-0' then print('fhir.map began') end
      local n = 0
      for i = 1, spin do n = n + i end
      return event
    end,
  },
}
