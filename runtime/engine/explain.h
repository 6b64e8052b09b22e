/*
 * explain.h - what a protocol change does to the same history (rg_diff).
 * Only reads stores. Why an alert opened or resolved, rg_explain, is
 * present/explain.h.
 */
#ifndef RG_EXPLAIN_H
#define RG_EXPLAIN_H

#include "engine/engine.h"
#include "store/store.h"

#include <stdio.h>

/* Compares the transitions of two runs over the same history: transitions
 * only in one, at another time, or with another severity. Returns the number
 * of differences (0: same) or a negative error. */
/* Times are shown in each clinic's zone as eng (the new run's) has it;
 * NULL: UTC. */
long rg_diff(rg_store *old, rg_store *new, const char *old_name, const char *new_name,
             rg_engine *eng, FILE *out);

/* The same over any two lists of transitions: each calls fn for every
 * transition of its list (src is its own argument) and returns RG_OK or an
 * error (a shadow version's feed against the active one: governance.c).
 * sum, when not NULL, gets the per-rule counts the summary prints
 * (rg_diff_summary_free). */
typedef int (*rg_diff_source)(void *src, int (*fn)(void *ud, const rg_transition *t),
                              void *ud);
typedef struct rg_diff_rule {
    char *rule;
    long new_opened, new_resolved, old_opened, old_resolved, moved, severity;
} rg_diff_rule;
typedef struct rg_diff_summary {
    long differences, old_n, new_n;
    rg_diff_rule *v; /* by rule name */
    int n;
} rg_diff_summary;
long rg_diff_each(rg_diff_source old_each, void *old, rg_diff_source new_each, void *new,
                  const char *old_name, const char *new_name, rg_engine *eng, FILE *out,
                  rg_diff_summary *sum);
void rg_diff_summary_free(rg_diff_summary *s);

#endif
