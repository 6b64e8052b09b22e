/*
 * transition.h - one change of an alert's state (opened, resolved,
 * re-raised): what the engine produces, the store keeps and the feed, the
 * webhooks and the reports show. Here in core/ because every layer above
 * passes it on.
 */
#ifndef RG_TRANSITION_H
#define RG_TRANSITION_H

#include "core/rg.h"

#include <stdint.h>

typedef struct rg_transition {
    int64_t seq, cseq; /* global order; the clinic's own gap-free sequence */
    rg_time at, due;
    int open; /* 1 open, 0 resolved, RG_TRANSITION_RERAISED */
    /* when staff should hear of it: `at`, or the clinic's next opening when
     * it happened while closed (runtime/core/calendar.h). Written, a value
     * not after `at` (0, RG_TIME_NONE) means `at`; read, it is always set. */
    rg_time notify_at;
    const char *clinic, *patient, *key, *protocol, *version, *rule, *severity, *message;
    const char *params, *evidence; /* JSON text */
    /* who or what caused it: the user or key whose request led to it ("ann
     * (nurse)", "key ehr-feed (integration)"), "clock" (a wake-up), "system:
     * start-up", "reload: ..."; NULL when not known (rows from before schema
     * 12, a simulation) */
    const char *cause;
} rg_transition;

/* rg_transition.open of a re-raise: an open alert whose snooze expired
 * (state "reraised"), still open; like a resolution it names its alert. */
#define RG_TRANSITION_RERAISED 2
/* The state text of t ("open", "resolved", "reraised"). */
#define RG_TRANSITION_STATE(t) \
    ((t)->open == RG_TRANSITION_RERAISED ? "reraised" : (t)->open ? "open" : "resolved")

#endif
