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

#include "engine.h"

typedef struct rg_sweep_opts {
    const char *db; /* the store's path, opened once more per worker */
    rg_time at;
    int jobs;       /* worker threads; 1 or less: the caller's engine alone */
    /* Makes a worker's engine over its store, writing through sink (called
     * on the worker's thread, once). Returns RG_OK or an error code. */
    int (*make_engine)(void *ud, rg_store *st, const rg_engine_sink *sink, rg_engine **out);
    void *ud;
} rg_sweep_opts;

/* Re-evaluates every patient at o->at. Returns the number of patients or a
 * negative error; *stats gets the workers' counters added up. */
long rg_sweep(rg_store *st, const rg_sweep_opts *o, rg_engine_stats *stats);

/* The default for --jobs: the processors this process may run on. */
int rg_sweep_default_jobs(void);

#endif
