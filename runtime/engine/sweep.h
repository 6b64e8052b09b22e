/*
 * sweep.h - re-evaluating every stored patient once, on several cores.
 *
 * Each worker thread has its own store connection and its own engine (so its
 * own Lua states) and evaluates whole pages of patients with
 * rg_engine_reevaluate, the same engine path as `serve` and `simulate`. A
 * worker's writes (transitions, patient clocks, errors, versions) are not
 * made on its connection: they are recorded in the page's write log, and the
 * calling thread applies the pages' logs in page order, one transaction per
 * page, on its own connection. So SQLite keeps one writer, the workers never
 * wait for its lock, and every sequence number (global and per clinic) comes
 * out exactly as a single-threaded sweep gives it.
 *
 * Ownership: the caller owns st (the writer's connection) and keeps it open;
 * the workers' connections and engines live only inside rg_sweep.
 */
#ifndef RG_SWEEP_H
#define RG_SWEEP_H

#include "engine/engine.h"

typedef struct rg_sweep_opts {
    const char *db; /* the store's path, opened once more per worker */
    rg_time at;
    int advance;    /* 1: advance each patient to `at` (simulate), not re-evaluate at it */
    int jobs;       /* worker threads; 1 or less: the caller's engine alone */
    /* Makes a worker's engine over its store, writing through sink (called
     * on the worker's thread, once). Returns RG_OK or an error code. */
    int (*make_engine)(void *ud, rg_store *st, const rg_engine_sink *sink, rg_engine **out);
    void *ud;
    /* NULL, or called on the caller's thread for each transition once
     * written, in the order of their seq (which t has), inside its page's
     * transaction; not 0: the sweep stops with that error */
    int (*applied)(void *applied_ud, const rg_transition *t);
    void *applied_ud;
    /* 1 (with applied): the transitions are handed to applied alone, not
     * written to the store, numbered as the store would have numbered them
     * (from 1: a store with none yet, as a simulation's scratch store).
     * An opening's alert id is its seq, as in the store; the store's own
     * (an evaluation-failed alert, rg_engine_rule_status) are written there
     * and handed to applied too, in their place. For a caller that makes its
     * output from applied and whose engines read no patient's alerts back
     * (each patient evaluated once, from none: `simulate`, `diff`) */
    int unstored;
} rg_sweep_opts;

/* A write log: what an engine wrote through rg_wlog_sink (transitions,
 * evaluation errors, rule statuses, patient clocks, protocol versions), recorded on the
 * evaluating thread and applied later, in order, by the one writer (the
 * sweep's caller; the service's loop, runtime/service/evaluate.c). Start
 * from a zeroed struct; the evaluating thread owns it until it hands it over. */
typedef struct rg_wlog_op rg_wlog_op;
typedef struct rg_wlog {
    rg_wlog_op *v;
    int n;
    size_t cap;
    rg_buf text;
    int rc; /* the first failure to record (memory) */
} rg_wlog;

/* A sink that records into lg (which must stay where it is). */
rg_engine_sink rg_wlog_sink(rg_wlog *lg);
/* Forgets what was recorded after n ops and text_len bytes of text (an
 * evaluation that failed half-way); rg_wlog_cut(lg, 0, 0) empties it. */
void rg_wlog_cut(rg_wlog *lg, int n, size_t text_len);
/* Records a shadow version's transition (set: the protocol set's id), for
 * rg_store_shadow_put: never the feed (docs/governance.md, "Shadow"). */
int rg_wlog_shadow(rg_wlog *lg, const char *set, const rg_transition *t);
/* Appends what from recorded after what to holds, as if recorded there
 * (its opens' provisional ids moved along): RG_ENOMEM, to unchanged. */
int rg_wlog_append(rg_wlog *to, const rg_wlog *from);
/* Applies the log on st, inside the caller's transaction. */
int rg_wlog_apply(rg_store *st, rg_wlog *lg);
void rg_wlog_free(rg_wlog *lg);
/* fn(clinic, patient, key, open) for each transition recorded, in order
 * (the service plans notifications from them, runtime/service/notifier.c). */
int rg_wlog_each_transition(const rg_wlog *lg,
                            int (*fn)(void *ud, const char *clinic, const char *patient,
                                      const char *key, int open),
                            void *ud);

/* Re-evaluates every patient at o->at. Returns the number of patients or a
 * negative error; *stats gets the workers' counters added up. */
long rg_sweep(rg_store *st, const rg_sweep_opts *o, rg_engine_stats *stats);

/* The default for --jobs: the processors this process may run on. */
int rg_sweep_default_jobs(void);

#endif
