/*
 * explain.h - why an alert opened or resolved (explain.c), written for
 * people from what the store keeps: `regimen explain` and the worklist.
 */
#ifndef RG_PRESENT_EXPLAIN_H
#define RG_PRESENT_EXPLAIN_H

#include "engine/engine.h"
#include "store/store.h"

#include <stdio.h>

/* Prints every instance of the alert with this key in clinic (only that
 * clinic's transitions and events are read): rule, protocol version,
 * parameters in force and the events it rested on when it opened and when
 * it resolved. Times are shown in the clinic's zone, which eng knows (NULL:
 * UTC). RG_ENOTFOUND when the clinic has no transition with that key. */
int rg_explain(rg_store *st, rg_engine *eng, const char *clinic, const char *key, FILE *out);

#endif
