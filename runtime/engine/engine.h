/*
 * engine.h - the one evaluation path: advance a patient's protocol clock to a
 * moment, evaluating its protocols at every event instant and every wake-up
 * on the way, and record the alert transitions that follow.
 *
 * `regimen simulate` and `regimen serve` both call rg_engine_advance; they
 * differ only in the `until` they pass (a virtual moment or the wall clock)
 * and where the events came from.
 *
 * Semantics (docs/design.md, "One evaluation path"): at each step instant t a protocol sees
 * the events at or before t. An alert is open at t when its rule returned it
 * with due <= t (or no due) and t < ends (or no ends). It opens the first
 * step it is open and resolves the first step it is not; transition times are
 * step instants, i.e. the event's time or the due moment. A rule that fails
 * keeps its alerts as they were. An event older than the patient's clock (a
 * late arrival) is taken in at the clock: transitions already emitted are
 * never rewritten. Corrections (docs/corrections.md): at each step a protocol
 * sees the versions in force then; a correction's corrected_at is a step
 * instant like an event's time, and a late one is taken in at the clock.
 *
 * Ownership: rg_engine_new creates the engine, which borrows the store (the
 * caller keeps and closes it) and owns its clinics. Free with rg_engine_free.
 * rg_engine_advance does not begin or commit transactions: callers batch.
 */
#ifndef RG_ENGINE_H
#define RG_ENGINE_H

#include "engine/clinic.h"
#include "engine/hcache.h"
#include "store/store.h"

typedef struct rg_engine rg_engine;

/* Called for every evaluation error (also kept in the store). */
typedef void (*rg_error_fn)(void *ud, const char *clinic, const char *patient, rg_time at,
                            const char *msg);

/* Where an engine's writes go: by default its store; a parallel sweep's
 * workers record them instead, for one writer to apply in order
 * (runtime/engine/sweep.c). A sink returns RG_OK or an error code; transition sets
 * *alert_id when it can (0 when the alert has no id yet). */
typedef struct rg_engine_sink {
    int (*transition)(void *ud, rg_transition *t, int64_t *alert_id);
    int (*eval_error)(void *ud, const char *clinic, const char *patient, const char *protocol,
                      const char *rule, rg_time at, const char *msg);
    /* a (protocol, rule) started failing for a patient (msg) or evaluates
     * cleanly again (msg NULL): applied by rg_engine_rule_status */
    int (*rule_status)(void *ud, const char *clinic, const char *patient, const char *protocol,
                       const char *version, const char *rule, rg_time at, const char *msg);
    int (*patient_put)(void *ud, const char *clinic, const char *patient,
                       const rg_patient_state *ps);
    int (*protocol_loaded)(void *ud, const char *clinic, const char *protocol,
                           const char *version, const char *file, const char *hash);
    void *ud;
} rg_engine_sink;

/* Called when a protocol is quarantined (until_ms: the monotonic ms it is
 * released at) and when it is released again (until_ms 0), with the
 * protocol's file and why (for a quarantine, a sentence that names the file).
 * The hook for a system alert; without one the engine prints the sentence to
 * stderr. A reload of the clinic releases its protocols without a call (their
 * rg_protocol is new). rg_engine_quarantined answers at any time. */
typedef void (*rg_quarantine_fn)(void *ud, const char *clinic, const char *protocol,
                                 const char *file, int64_t until_ms, const char *why);

/* Quarantine state shared by engines that evaluate the same clinics on
 * different threads (the service's evaluation threads): each protocol's
 * limit hits and quarantine, keyed by clinic, protocol id and hash, under a
 * mutex, so that one quarantine holds on every thread. new: RG_OK or
 * RG_ENOMEM. clear forgets a clinic's hits and quarantines (its protocols
 * were reloaded). */
typedef struct rg_qboard rg_qboard;
int rg_qboard_new(rg_qboard **out);
void rg_qboard_free(rg_qboard *b);
void rg_qboard_clear(rg_qboard *b, const char *clinic);

/* Budgets over wall-clock time (0 in a field: its default; see below). */
typedef struct rg_budget_opts {
    /* A protocol with this many limit hits (deadline, instructions, memory,
     * print, alerts, wake-ups, CPU budget) within window_s seconds is
     * quarantined: not evaluated (its alerts stay as they were) for
     * backoff_s seconds, doubling at each new quarantine up to 64 times
     * that, or until its clinic is reloaded. Defaults 3, 60, 60; hits < 0
     * turns quarantine off. */
    int hits, window_s, backoff_s;
    /* Per clinic: at most cpu_ms milliseconds of evaluation in any
     * cpu_window_s seconds; a protocol called past it is not run, which
     * counts as a limit hit (skipped, not deferred). Default 0: no budget
     * (serve: limits.clinic_cpu_ms). */
    int cpu_ms, cpu_window_s;
    rg_quarantine_fn on_quarantine;
    void *ud;
    /* NULL: each engine counts its own hits (its rg_protocol's fields);
     * else the hits and quarantines are counted there, for every engine
     * given the same board (it outlives them) */
    rg_qboard *board;
} rg_budget_opts;

typedef struct rg_engine_opts {
    rg_limits limits;
    const char *shipped;     /* root of the shipped protocol set (require, include) */
    const char *default_dir; /* protocols for clinics without their own; NULL: none */
    rg_error_fn on_error;
    void *ud;
    const rg_engine_sink *sink; /* NULL: write to the store */
    /* Bytes of compiled histories kept between evaluations (0: none), so an
     * evaluation reads only the events it has not seen (runtime/engine/hcache.h). */
    size_t history_cache_bytes;
    rg_budget_opts budget;
} rg_engine_opts;

typedef struct rg_engine_stats {
    int64_t patients, events, steps, protocol_calls, errors, limit_hits, opened, resolved;
    int64_t quarantines;       /* protocols quarantined (each time) */
    int64_t quarantine_skips;  /* protocol calls not made because of a quarantine */
    int64_t cpu_budget_hits;   /* protocol calls not made because the clinic's CPU budget was used */
    int64_t rule_checks;       /* rules' check functions called */
} rg_engine_stats;

/* A page of patients as rg_store_patients_page hands them out: keys[i] is
 * (clinic, patient); rg_patient_page_add is the callback that fills it
 * (keys must have room for the page's limit). */
typedef struct rg_patient_page {
    char (*keys)[2][RG_EVENT_MAX_ID + 1];
    int n;
} rg_patient_page;
int rg_patient_page_add(void *ud, const char *clinic, const char *patient);

int rg_engine_new(rg_engine **out, rg_store *st, const rg_engine_opts *o);
void rg_engine_free(rg_engine *e);

/* Loads dir as clinic's protocols, replacing what it ran before. On failure
 * the previous protocols (if any) stay in force and err says why. */
int rg_engine_set_clinic(rg_engine *e, const char *clinic, const char *dir, char *err,
                         size_t errlen);
/* The same with parameter overrides (JSON object, like clinic.lua's params). */
int rg_engine_set_clinic_params(rg_engine *e, const char *clinic, const char *dir,
                                const char *overrides, char *err, size_t errlen);
/* The same with its own shipped root (a stored protocol version carries
 * the shipped sets it was proven with: docs/governance.md). */
int rg_engine_set_clinic_from(rg_engine *e, const char *clinic, const char *dir,
                              const char *shipped, const char *overrides, char *err,
                              size_t errlen);
/* The same for protocols loaded already (rg_clinic_load, on another thread:
 * the service's reload gate, runtime/service/reload.c): c is taken, also on
 * failure (freed). */
int rg_engine_set_clinic_loaded(rg_engine *e, const char *clinic, rg_clinic *c, char *err,
                                size_t errlen);
/* Whether e has the clinic's protocols loaded (never loads them). */
int rg_engine_has_clinic(rg_engine *e, const char *clinic);
/* Takes the clinic's loaded protocols out of e (NULL: none loaded), for
 * another engine's rg_engine_set_clinic_loaded: the service's evaluation
 * thread that connects anew keeps the version in force that way. */
rg_clinic *rg_engine_take_clinic(rg_engine *e, const char *clinic);
/* The clinic's loaded protocols (loading the default directory on first use);
 * NULL if they cannot be loaded (the reason is reported through on_error
 * once). */
rg_clinic *rg_engine_clinic(rg_engine *e, const char *clinic);
/* The clinic's time zone (UTC when it declares none or cannot be loaded):
 * zones live as long as the process, so callers may keep it. */
const rg_zone *rg_engine_zone(rg_engine *e, const char *clinic);

/* Advances one patient to until. Returns RG_OK, or a store/memory error
 * (protocol errors are reported, not returned). */
int rg_engine_advance(rg_engine *e, const char *clinic, const char *patient, rg_time until);

/* Re-evaluates one patient with one step at `at` (its history up to then),
 * as after a protocol change; the clock moves to `at` if it was earlier. */
int rg_engine_reevaluate(rg_engine *e, const char *clinic, const char *patient, rg_time at);
/* The same for every patient (paged, committed in batches): a sweep. */
long rg_engine_reevaluate_all(rg_engine *e, rg_time at);
/* Reads every stored patient's history into the history cache
 * (history_cache_bytes), evaluating nothing: a sweep after it reads its
 * histories from memory (sweep --from-memory). Returns the patients read,
 * or a negative error (RG_EINVAL: the engine has no cache). */
long rg_engine_cache_all(rg_engine *e);

/* Advances every patient (due == RG_TIME_NONE) or every patient with
 * something due at or before `due`, to until, committing every few hundred
 * patients. Returns the number of patients advanced or a negative error. */
long rg_engine_advance_all(rg_engine *e, rg_time due, rg_time until);

/* Failures are alerts (docs/service.md). While a rule of a clinic's
 * protocol fails for any patient, the clinic has one open system alert,
 * rule RG_EVALUATION_FAILED, critical, patient "" (no event can name a
 * patient "", so it is never a patient's), keyed by (protocol, rule): opened
 * at the first failing evaluation's step instant, resolved at the step
 * instant where the rule evaluates cleanly again for the last patient it
 * failed for. The same on every path (simulate, test, sweep, serve); the
 * state is the store's failing_rules. rule "" is the protocol as a whole.
 * rg_engine_rule_status records one patient's change (msg: it failed with
 * this error; NULL: clean again) and writes the alert's transition when the
 * count of failing patients leaves or reaches zero. */
#define RG_EVALUATION_FAILED "regimen.evaluation-failed"
#define RG_RELOAD_REFUSED "regimen.reload-refused" /* the service's: runtime/service/serve.c */
#define RG_QUARANTINED "regimen.protocol-quarantined" /* the service's: serve.c */
#define RG_PROTOCOL_CHECK "regimen.protocol-check" /* the service's at start: serve.c */
int rg_engine_rule_status(rg_store *st, const char *clinic, const char *patient,
                          const char *protocol, const char *version, const char *rule,
                          rg_time at, const char *msg);
/* A clinic's system alert as a transition: rule (e.g. RG_EVALUATION_FAILED,
 * "regimen.reload-refused"), subkey (what it is about within the clinic),
 * opened (open 1) or resolved (0) at `at` with message. Opening one that is
 * open, or resolving one that is not, does nothing; but open RG_ALERT_RENEW
 * resolves one open with another message and opens it again with this one
 * (for alerts whose text is the current finding, not the first one). */
#define RG_ALERT_RENEW 2
int rg_engine_system_alert(rg_store *st, const char *clinic, const char *rule,
                           const char *protocol, const char *version, const char *subkey,
                           int open, rg_time at, const char *message);

const rg_engine_stats *rg_engine_stats_get(const rg_engine *e);
/* New limits (serve: a reload of its configuration): the sandbox limits
 * apply to the clinics loaded from now on, the budget's numbers (not its
 * hook) to the evaluations from now on. */
void rg_engine_set_limits(rg_engine *e, const rg_limits *l, const rg_budget_opts *b);
/* Who or what the transitions written from now on were caused by
 * (rg_transition.cause; serve sets it before each patient's evaluation);
 * NULL or "": not known (simulate, sweep). */
void rg_engine_set_cause(rg_engine *e, const char *cause);
/* Adds counters of other engines (a sweep's workers) to e's. */
void rg_engine_stats_merge(rg_engine *e, const rg_engine_stats *s);
/* to += a - b, field by field (b NULL: to += a): one engine's counts added
 * to another's, or what an engine counted since b was taken of it. */
void rg_engine_stats_add(rg_engine_stats *to, const rg_engine_stats *a, const rg_engine_stats *b);
/* Protocols quarantined now (across clinics). */
int rg_engine_quarantined_count(rg_engine *e);
/* Is the clinic's protocol quarantined now? 1 and *until_ms, else 0. */
int rg_engine_quarantined(rg_engine *e, const char *clinic, const char *protocol,
                          int64_t *until_ms);
/* The history cache's counters (all 0 without a cache). */
void rg_engine_cache_stats(const rg_engine *e, rg_hcache_stats *s);
/* The event seq the history cache holds the patient's history up to (the
 * read of its next evaluation starts after it), or -1: for a store that
 * reads a group's histories ahead (rg_store_prefetch). */
int64_t rg_engine_history_after(const rg_engine *e, const char *clinic, const char *patient);

#endif
