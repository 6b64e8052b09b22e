/*
 * feed.h - alert transitions as DESIGN's "Alerts out" JSON objects: one
 * definition for simulate's jsonl, the HTTP feed, the SSE stream and
 * webhooks.
 */
#ifndef RG_FEED_H
#define RG_FEED_H

#include "store.h"

#include <jansson.h>

/* A time as RFC 3339 text, or JSON null for RG_TIME_NONE. */
json_t *rg_time_json(rg_time t);
/* The transition object; with_seq adds "seq" (the clinic's sequence number)
 * first, for the service's feed. */
json_t *rg_transition_json(const rg_transition *t, int with_seq);

#endif
