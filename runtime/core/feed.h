/*
 * feed.h - alert transitions as the "Alerts out" JSON objects of
 * docs/design.md: one definition for simulate's jsonl, the HTTP feed,
 * the SSE stream and webhooks.
 */
#ifndef RG_FEED_H
#define RG_FEED_H

#include "core/transition.h"
#include "core/zone.h"

#include <jansson.h>

/* A time as RFC 3339 text, or JSON null for RG_TIME_NONE. */
json_t *rg_time_json(rg_time t);
/* A time as RFC 3339 with zone z's offset, or JSON null. */
json_t *rg_time_local_json(const rg_zone *z, rg_time t);
/* The transition object; with_seq adds "seq" (the clinic's sequence number)
 * first, for the service's feed. `at` and `due` stay UTC (the audit truth);
 * at_local and due_local are the same instants with the clinic's offset
 * (zone z); notify_at (UTC, always present) is when staff are told: `at`, or
 * the clinic's next opening when it happened while the clinic was closed. */
json_t *rg_transition_json(const rg_transition *t, int with_seq, const rg_zone *z);

#endif
