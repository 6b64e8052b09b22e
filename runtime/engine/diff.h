/*
 * diff.h - what a protocol change does to the same history: the transitions
 * of two runs compared (rg_diff_compute), as a result the caller prints
 * (present/diff.h) or answers with (the protocols API's shadow report).
 * Only reads stores. Why an alert opened or resolved, rg_explain, is
 * present/explain.h.
 */
#ifndef RG_DIFF_H
#define RG_DIFF_H

#include "engine/engine.h"
#include "store/store.h"

/* Each source calls fn for every transition of its list (src is its own
 * argument) and returns RG_OK or an error: two stores' transitions
 * (rg_diff_stores), a shadow version's feed against the active one
 * (governance.c). */
typedef int (*rg_diff_source)(void *src, int (*fn)(void *ud, const rg_transition *t),
                              void *ud);

/* One transition of a side, as compared. */
typedef struct rg_diff_tr {
    char *clinic, *patient, *rule, *severity, *message;
    int open, occurrence, matched;
    rg_time at;
} rg_diff_tr;

/* One difference: a transition of both sides at another time (MOVED) or
 * with another severity (SEVERITY), or one side's without a counterpart
 * (ONLY_OLD: old set, ONLY_NEW: new set). */
enum { RG_DIFF_MOVED, RG_DIFF_SEVERITY, RG_DIFF_ONLY_OLD, RG_DIFF_ONLY_NEW };
typedef struct rg_diff_item {
    int kind;
    const rg_diff_tr *old, *new; /* into rg_diff's sides */
} rg_diff_item;

/* The differences counted per rule: opened and resolved only under NEW,
 * only under OLD, moved, another severity. */
typedef struct rg_diff_rule {
    char *rule;
    long new_opened, new_resolved, old_opened, old_resolved, moved, severity;
} rg_diff_rule;
typedef struct rg_diff_summary {
    long differences, old_n, new_n;
    rg_diff_rule *v; /* by rule name */
    int n;
} rg_diff_summary;

/* A comparison: both sides (sorted by clinic, patient, rule, state and
 * occurrence), the differences in the order they are shown (the matched
 * pairs' moves and severities, then OLD's unmatched, then NEW's), and the
 * per-rule summary. */
typedef struct rg_diff {
    rg_diff_tr *old_v, *new_v;
    int old_n, new_n;
    size_t old_cap, new_cap;
    rg_diff_item *v;
    int n;
    size_t cap;
    rg_diff_summary sum;
} rg_diff;

/* Compares the two lists into d (rg_diff_free, also after an error): the
 * n-th opening of a rule for a patient under one is compared with the n-th
 * under the other. Returns the number of differences (0: same) or a
 * negative error. */
long rg_diff_compute(rg_diff_source old_each, void *old, rg_diff_source new_each, void *new,
                     rg_diff *d);
/* The same over two stores' transitions (every clinic). */
long rg_diff_compute_stores(rg_store *old, rg_store *new, rg_diff *d);
void rg_diff_free(rg_diff *d);

#endif
