/*
 * store.h - the event store: events, rejected input, patients' clocks and
 * wake-ups, alerts, the transition feed and evaluation errors. One interface,
 * two backends: SQLite (sqlite.c, the default, one file) and PostgreSQL
 * (pg.c, many workers on one database); every function means the same on
 * both, which tests/test_store_conformance.c checks.
 *
 * A backend is a table of operations (backend.h, struct rg_store_ops, as
 * Knot Resolver's kr_cdb_api): store.c, the front door, chooses the backend
 * from the path rg_store_open is given and then calls st->ops->x for every
 * rg_store_x; it never asks which backend it has. A third backend is one
 * new file with its table, and its line in store.c's list. No database
 * client's type appears here.
 *
 * Callbacks: every function that takes fn calls it once per item, in the
 * order it documents; fn returns 0 to go on, and a nonzero answer stops the
 * walk at once and is what the function returns (for the functions that
 * return how many items they passed, a nonzero answer is returned in place
 * of the count). A store error ends the walk with its RG_E* code.
 *
 * Ownership: rg_store_open creates the handle, the caller owns it and frees it
 * with rg_store_close. Strings handed to callbacks live until the callback
 * returns. All SQL of the program lives in the backends' files.
 */
#ifndef RG_STORE_H
#define RG_STORE_H

#include "core/rg.h"
#include "core/event.h"
#include "core/transition.h"

#include <stdio.h>

/* 8: failing_rules and patients.failing (failures are alerts) */
/* 9: events carry a digest of their body, a key's actions are indexed by
 * (clinic, key) (issue 22) */
/* 10: the audit trail (audit, audit_chain; runtime/store/audit.c) */
/* 11: protocol_sets, protocol_set_files, protocol_set_log (protocol versions) */
/* 12: shadow_transitions (a shadow version's feed, which notifies nobody) */
/* 13: transitions.cause: who or what caused each transition (issue 24) */
/* 14: notify_steps and notify_log, the service's notifications (issue 29) */
/* 15: a lean event row (issue 27: the body and the compiled fields once,
 * clustered by (clinic, patient, at, seq), digests as 32 bytes) */
/* 16: open_alerts, the alerts open now by (clinic, key): its primary key
 * keeps a key's openings and resolutions alternating without a read before
 * each transition insert (issue 26) */
/* 17: an event keeps the rest of its body after the head its columns give
 * back (issue 27: the body stored once, store_sql.c) */
/* 18: an event's digest is its first 16 bytes, its compiled fields write
 * small integers and string lengths as varints (issue 27: the database
 * within twice the naive program's) */

/* 19: open_alerts_by_patient, so a patient's open alerts are read from
 * open_alerts (what is open now), not from every opening of its history
 * (issue 26) */

/* 20: the CHECK on a transition's state as comparisons, which SQLite tests
 * without building an ephemeral table at each insert (issue 26, the sweep) */

/* 21: patients_by_clinic_wake on (clinic, next_wake), so one clinic's due
 * page reads that clinic's due patients only, whatever other clinics have
 * due before them (tenant isolation, issue 26) */
#define RG_SCHEMA_VERSION 21

typedef struct rg_store rg_store;

typedef struct rg_store_opts {
    int durable; /* 1: synchronous=FULL, every commit reaches the disk (serve, ingest) */
    int check;   /* 1: check the store's integrity first, refusing a damaged one untouched
                  * (SQLite: PRAGMA quick_check; a server checks its own) */
    int bulk;    /* 1: a bulk load (ingest), SQLite: a page cache of 16 MiB, not 64, whose
                  * pages are used again batch after batch rather than new memory (a page
                  * fault) for each page written; a server keeps its own cache */
    int load;    /* 1: SQLite, a new file that nobody else sees until it is complete (ingest
                  * into a database that did not exist, cli/store_cmd.c): held alone
                  * (locking_mode=EXCLUSIVE), its journal in memory and no syncs, since a
                  * failure throws the whole file away; closed, it is turned to WAL, and
                  * the caller syncs it before it takes its name */

    int scratch; /* 1: a private store of one run (simulate's and diff's own file, which
                  * nobody else opens for writing): SQLite evaluates no CHECK constraint
                  * (transitions.state's IN list was built anew at every insert) */
    int reader;  /* 1: this connection only reads (the service's evaluation threads); on
                  * PostgreSQL its transactions are REPEATABLE READ READ ONLY unless
                  * begun otherwise, so a prefetch needs no BEGIN or COMMIT of its own */
    int alone;   /* 1: the run holds the store alone (rg_holder: sweep, simulate --db);
                  * PostgreSQL gathers statistics on what it wrote once, at close */
    int checkpointer; /* 1: SQLite, the WAL is copied into the database file by a thread of
                       * the store's own through a connection of its own, not inside this
                       * connection's commits, which copy only a short tail (serve: the
                       * commit that took the WAL past 1,000 pages held the loop thread for
                       * the copy and the file's fsync, 5-74 ms, several times a second at
                       * 1,000 POSTs/s; sqlite.c, rg__ckpt) */
    int writer; /* 1: the service's one writer (serve's loop thread): SQLite, a page cache
                 * of 8 MiB, not 64, sized to what its group commits touch (sqlite.c,
                 * RG__WRITER_CACHE: each commit after a page split scans the whole cache) */
} rg_store_opts;

/* path: a SQLite file (":memory:" for none), or a PostgreSQL connection URL,
 * "postgresql://..." or "postgres://..." (runtime/store/pg.c), which
 * rg_store_is_server tells apart. */
int rg_store_open(rg_store **out, const char *path, const rg_store_opts *opts, char *err,
                  size_t errlen);
int rg_store_is_server(const char *path);
void rg_store_close(rg_store *st);
/* Once at a program's start, before any store is opened or any other thread
 * runs: SQLite keeps no allocation statistics (nothing reads them; each of
 * its mallocs and frees otherwise takes a global mutex for them: issue 27,
 * about 2% of a bulk ingest's writing thread). Optional: a program that
 * does not call it gets SQLite's defaults. */
void rg_store_process_init(void);
const char *rg_store_errmsg(rg_store *st);
/* Why the last failed statement failed ("database or disk is full", "disk
 * I/O error (Operation not permitted)"), and since when; NULL once a commit
 * has succeeded after it. The service reports it as degraded health. */
const char *rg_store_fault(rg_store *st, rg_time *since);

/* How the WAL's checkpoints go (SQLite with rg_store_opts.checkpointer; on
 * any other store all 0, why "" and since RG_TIME_NONE). A checkpoint is
 * the checkpoint thread's pass or the writer's copy of the tail (sqlite.c,
 * rg__ckpt). Trouble (why not ""): the last one failed (an I/O error, a
 * full disk), RG_STORE_WAL_BUSY_MAX in a row found the file busy (another
 * connection checkpointing, or holding the lock for ever), or more than
 * bound frames of the WAL are not copied into the database file (a reader
 * that keeps a read transaction open keeps them there: the WAL grows
 * without end). Meanwhile the thread tries again every second, commits or
 * not, and the trouble ends with the first checkpoint that gets through.
 * The service logs each change, counts them in /metrics and reports the
 * trouble as degraded health. */
#define RG_STORE_WAL_BUSY_MAX 3
typedef struct rg_store_wal {
    uint64_t ok, busy, failed; /* checkpoints that copied, found the file busy, failed */
    int64_t behind;            /* the WAL's frames not yet copied, as last known */
    int64_t bound;             /* trouble past this many (4 x the writer's 16,000) */
    char why[320];             /* "" while none; else what is wrong, in a sentence */
    rg_time since;             /* when the trouble began (RG_TIME_NONE: none) */
} rg_store_wal;
void rg_store_wal_state(rg_store *st, rg_store_wal *out);

/* SQLite only: dst (a store just opened, which nothing else writes) becomes
 * a copy of src's database, page by page: a second simulation of one
 * history (`regimen diff`) takes the events stored for the first, not
 * parsed and stored again. RG_EINVAL when either is not SQLite. */
int rg_store_copy(rg_store *src, rg_store *dst);

int rg_store_begin(rg_store *st);
/* A read transaction (one snapshot, no write lock): end it with rollback. */
int rg_store_begin_read(rg_store *st);
/* How many transactions were rolled back or failed to commit: whoever keeps
 * copies of what it read (the history cache) drops them when this changes. */
uint64_t rg_store_rollbacks(const rg_store *st);
int rg_store_commit(rg_store *st);
void rg_store_rollback(rg_store *st);
/* fn(ud) after each commit that succeeded: a writer beside a running service
 * tells it (rg_holder_notify) that the store changed. NULL removes it. */
void rg_store_on_commit(rg_store *st, void (*fn)(void *ud), void *ud);
/* Other writers (another worker, `regimen ingest` beside a running
 * service): what they commit is learned here, however the backend hears of
 * it. rg_store_changes_fd starts the watch and sets *fd to a descriptor that
 * becomes readable when news may have come (PostgreSQL: LISTEN/NOTIFY on a
 * copy of the connection's socket, kept open until rg_store_close), or to -1
 * when the backend has none: then the caller asks when it is told another
 * way (SQLite: the holder's signal, holder.h). rg_store_changed says how
 * many changes came since the watch started or the last call (0: none;
 * SQLite: 1 when another connection committed; PostgreSQL: the notices
 * other sessions sent; never for this store's own commits), or RG_EDB (the
 * connection is lost). rg_store_changed_each also calls fn once a change
 * with the clinic it concerns, or NULL when the backend cannot tell
 * (SQLite): a worker then reads only those clinics' news. */
int rg_store_changes_fd(rg_store *st, int *fd);
int rg_store_changed(rg_store *st);
int rg_store_changed_each(rg_store *st, void (*fn)(void *ud, const char *clinic), void *ud);

/* 3 is left for "rejected", which ingest and the service count beside these. */
typedef enum {
    RG_PUT_STORED,
    RG_PUT_DUPLICATE,
    RG_PUT_CONFLICT,
    RG_PUT_CORRECTED = 4
} rg_put;

/* Stores ev unless (clinic, id) is already there; says which happened.
 * A stored event schedules its patient for evaluation at its instant (or at
 * the patient's clock, if the event is older than what was evaluated).
 * Corrections (docs/corrections.md): the same (clinic, id) with a higher
 * version is stored beside the versions before it (RG_PUT_CORRECTED) and
 * schedules the patient at its corrected_at; the same (id, version) again
 * is a duplicate or a conflict as for any event; a lower version, another
 * patient, or a retraction of another type is a conflict. After a conflict
 * rg_store_put_reason says why and rg_store_put_field names the field
 * ("id", "version", "patient" or "type"). */
int rg_store_put_event(rg_store *st, const rg_event *ev, rg_time received, rg_put *res);
const char *rg_store_put_reason(const rg_store *st);
const char *rg_store_put_field(const rg_store *st);
/* The same for n events in order (res[i] for evs[i]), as n calls would do:
 * ingest's batches. PostgreSQL stores them in one round trip. On an error,
 * *failed (when not NULL) is the index of the event it stopped at (0 on
 * PostgreSQL, where the statement of all n failed as one). */
int rg_store_put_events(rg_store *st, const rg_event *const *evs, int n, rg_time received,
                        rg_put *res, int *failed);

/* Keeps a refused input where an operator can see it. */
int rg_store_reject(rg_store *st, const char *source, long line, const char *field,
                    const char *reason, const char *raw, size_t rawlen);

typedef struct rg_rejected {
    int64_t seq;
    rg_time received;
    const char *source, *field, *reason, *raw;
    long line;
} rg_rejected;
int rg_store_each_rejected(rg_store *st, int (*fn)(void *ud, const rg_rejected *r), void *ud);

/* One stored event as the engine reads it. fields: its data compiled
 * (fields.h), nfields bytes, NULL/0 when it has none. */
typedef struct rg_stored_event {
    int64_t seq;
    rg_time at;
    const char *id, *type, *data; /* data may be NULL */
    const void *fields;
    size_t nfields;
    /* corrections: the seq of the version this one replaced (0 for the first
     * stored version of an id), when it was made (RG_TIME_NONE when the event
     * does not say) and whether it withdraws the event (entered-in-error) */
    int64_t replaces;
    rg_time corrected_at;
    int retracted;
    /* only from rg_store_get_event, rg_store_each_version and
     * rg_store_each_correction: the version, status (RG_STATUS_*) and who
     * sent it (NULL when not said) */
    int64_t version;
    int status;
    const char *corrected_by;
} rg_stored_event;
/* Calls fn for each stored version of each event of a patient in (at, seq)
 * order, from the covering index events_by_patient: seq, at, id, type,
 * fields and the correction fields; data is NULL here (rg_store_get_event
 * gives it). The engine chooses which version is in force at each instant;
 * the other readers (rg_store_each_event_data, rg_store_get_event) see only
 * the current version, and nothing of a retracted event. */
int rg_store_each_event(rg_store *st, const char *clinic, const char *patient,
                        int (*fn)(void *ud, const rg_stored_event *e), void *ud);
/* The same for the events with seq > after_seq only (all when it is < 0). */
int rg_store_each_event_after(rg_store *st, const char *clinic, const char *patient,
                              int64_t after_seq, int (*fn)(void *ud, const rg_stored_event *e),
                              void *ud);
/* The current versions of the patient's events, retracted ones left out,
 * with data too: a read of the table for every event, for the callers that
 * show the text (reports). */
int rg_store_each_event_data(rg_store *st, const char *clinic, const char *patient,
                             int (*fn)(void *ud, const rg_stored_event *e), void *ud);

/* A patient's evaluation state. clock: the instant of its last evaluation
 * step (RG_TIME_NONE before the first); wake: when its rules said their
 * answer next changes (RG_TIME_NONE: never); last_seq: the newest event seq
 * the last evaluation saw. next_wake (derived, for the scheduler) is the
 * earliest moment anything is due: a rule wake-up, a future event, or a late
 * event to take in. scheduled counts the times a writer scheduled the
 * patient (an event stored, a clinic woken); rg_store_patient_put is given
 * the count its evaluation read with rg_store_patient_get, before it read
 * the history, and when the count moved meanwhile (another worker stored
 * an event that evaluation did not see) it keeps the patient due at the
 * earlier of the two next_wakes instead of overwriting the schedule: the
 * next evaluation takes that event in. */
typedef struct rg_patient_state {
    rg_time clock, wake, next_wake;
    int64_t last_seq, scheduled;
    int64_t failing; /* how many (protocol, rule) fail for it (rg_store_rule_failing) */
} rg_patient_state;
int rg_store_patient_get(rg_store *st, const char *clinic, const char *patient,
                         rg_patient_state *ps);
int rg_store_patient_put(rg_store *st, const char *clinic, const char *patient,
                         const rg_patient_state *ps);

/* Pages through patients in (clinic, patient) order, starting after the given
 * pair ("" "" for the start), at most limit per call; returns how many it
 * passed to fn (0 at the end). Only patients with next_wake <= due, unless
 * due is RG_TIME_NONE. */
int rg_store_patients_page(rg_store *st, const char *after_clinic, const char *after_patient,
                           rg_time due, int limit,
                           int (*fn)(void *ud, const char *clinic, const char *patient),
                           void *ud);
/* A wake-up's patients (of clinic, or of every clinic when it is NULL): at
 * most limit of those with next_wake <= due, the earliest due first, passed
 * to fn in (clinic, patient) order. Returns how many it passed, or an error.
 * Advancing them to due or later takes them out of the set, so the next call
 * gives the next ones. Reads patients_by_clinic_wake for one clinic (the cost
 * follows that clinic's due patients, not what other clinics have due
 * earlier), patients_by_wake for all: never the size of the store
 * (rg_store_patients_page with a due time walks the clinic's patients in key
 * order until it has found limit due). */
int rg_store_due_patients(rg_store *st, const char *clinic, rg_time due, int limit,
                          int (*fn)(void *ud, const char *clinic, const char *patient), void *ud);
/* Earliest next_wake over all patients, RG_TIME_NONE when nothing is due ever. */
int rg_store_next_wake(rg_store *st, rg_time *out);

/* Open alerts of a patient; fn gets the alert's id and its last transition. */
int rg_store_each_open_alert(rg_store *st, const char *clinic, const char *patient,
                             int (*fn)(void *ud, int64_t alert_id, const rg_transition *t),
                             void *ud);
/* Records a transition as one row; for open it creates the alert and sets
 * *alert_id (the alert's id is its opening transition's seq), for resolved
 * it closes *alert_id, for reraised it re-raises it (RG_ENOTFOUND when that
 * alert is not open). Opening a key that is open fails with RG_EDB, writing
 * nothing. Sets t->seq. */
int rg_store_transition(rg_store *st, rg_transition *t, int64_t *alert_id);
/* Transitions with seq > after, in seq order or, when by_time, in (at, seq)
 * order. */
int rg_store_each_transition(rg_store *st, int64_t after, int by_time,
                             int (*fn)(void *ud, const rg_transition *t), void *ud);

/* A clinic's transitions with cseq > after_cseq, at most limit, in order. */
int rg_store_clinic_transitions(rg_store *st, const char *clinic, int64_t after_cseq, int limit,
                                int (*fn)(void *ud, const rg_transition *t), void *ud);

/* An alert as staff see it: its opening transition and what was done to it. */
typedef struct rg_alert_view {
    int64_t id;
    const char *key, *state, *patient, *protocol, *version, *rule, *severity, *message;
    const char *acked_by; /* NULL when not acknowledged */
    rg_time opened_at, due, resolved_at, acked_at, snoozed_until; /* RG_TIME_NONE if none */
    rg_time notify_at; /* when staff are told of its opening (see rg_transition) */
} rg_alert_view;
/* Alerts of a clinic, filtered by patient, state and key when not NULL, in
 * the order of their ids; _after: only those whose id is greater than after
 * (a page after the last of the previous one). */
int rg_store_each_alert(rg_store *st, const char *clinic, const char *patient, const char *state,
                        const char *key, int limit,
                        int (*fn)(void *ud, const rg_alert_view *a), void *ud);
int rg_store_each_alert_after(rg_store *st, const char *clinic, const char *patient,
                              const char *state, const char *key, int64_t after, int limit,
                              int (*fn)(void *ud, const rg_alert_view *a), void *ud);
/* Records action ("ack", "snooze" with until, "reraise") on the clinic's open
 * alert with this key; RG_ENOTFOUND when there is none. */
int rg_store_alert_action(rg_store *st, const char *clinic, const char *key, const char *action,
                          const char *who, const char *note, rg_time until, rg_time at);
typedef struct rg_alert_action {
    const char *action, *who, *note;
    rg_time until, at;
} rg_alert_action;
int rg_store_each_action(rg_store *st, const char *clinic, const char *key,
                         int (*fn)(void *ud, const rg_alert_action *a), void *ud);
/* Earliest snooze expiry of an open alert, RG_TIME_NONE if none. */
int rg_store_next_snooze(rg_store *st, rg_time *out);
/* rg_store_next_wake and rg_store_next_snooze together (the service's
 * timer after each commit): one statement on PostgreSQL. The wake-up leaves
 * out the patients of skip[0..nskip), each "clinic/patient" (a clinic has no
 * '/'): those the service is evaluating already, due because their events
 * were just stored, which the timer need not wake it for. */
int rg_store_next_due(rg_store *st, const char *const *skip, int nskip, rg_time *wake,
                      rg_time *snooze);
/* Calls fn for open alerts whose snooze expired at or before now. */
int rg_store_each_due_snooze(rg_store *st, rg_time now,
                             int (*fn)(void *ud, const char *clinic, const char *key,
                                       const char *patient),
                             void *ud, int *count);
/* Schedules a step at `at` for every patient of the clinic (after a reload). */
int rg_store_wake_clinic(rg_store *st, const char *clinic, rg_time at);
/* The same for the patients some rule fails for (at start: a protocol fixed
 * while the service was down resolves their regimen.evaluation-failed). */
int rg_store_wake_failing(rg_store *st, const char *clinic, rg_time at);
/* One stored event by clinic and id, its current version (fn called once),
 * or RG_ENOTFOUND (also when it was retracted). */
int rg_store_get_event(rg_store *st, const char *clinic, const char *id,
                       int (*fn)(void *ud, const rg_stored_event *e), void *ud);
/* Every stored version of one event, oldest first (the audit trail). */
int rg_store_each_version(rg_store *st, const char *clinic, const char *id,
                          int (*fn)(void *ud, const rg_stored_event *e), void *ud);
/* The corrections of a patient made in (after, upto] (by corrected_at), in
 * that order: fn gets the correction and the version it replaced. */
int rg_store_each_correction(rg_store *st, const char *clinic, const char *patient,
                             rg_time after, rg_time upto,
                             int (*fn)(void *ud, const rg_stored_event *c,
                                       const rg_stored_event *replaced),
                             void *ud);
/* An event version as stored, every column: what `regimen verify` and
 * explain check against its digest (runtime/store/verify.c). data, digest,
 * fields (nfields bytes) and corrected_by may be NULL. */
typedef struct rg_event_row {
    int64_t seq, version;
    rg_time at, corrected_at;
    const char *clinic, *id, *patient, *type, *data, *body, *digest, *status, *corrected_by;
    const void *fields;
    size_t nfields;
} rg_event_row;
/* Every stored event version in the store's order (clinic, patient, at,
 * seq: the table's own, schema v12), at most limit, after the row it gave
 * last ("", "", INT64_MIN, 0 to start); returns how many it passed to fn, 0
 * at the end, or an error. */
int rg_store_event_rows(rg_store *st, const char *after_clinic, const char *after_patient,
                        rg_time after_at, int64_t after_seq, int limit,
                        int (*fn)(void *ud, const rg_event_row *r), void *ud);
/* The stored versions of one event, oldest first. */
int rg_store_event_rows_of(rg_store *st, const char *clinic, const char *id,
                           int (*fn)(void *ud, const rg_event_row *r), void *ud);
/* Whether row r is as it was stored: its body matches its digest, and the
 * columns read from the body (clinic, id, patient, type, at, fields,
 * version, status, corrected_at, corrected_by) say what the body says.
 * 1 when intact, 0 (and why, one line) when not, RG_ENOMEM. */
int rg_store_row_intact(const rg_event_row *r, char *why, size_t whylen);
/* Checks every stored event version (rg_store_row_intact), printing one
 * line to out per damaged one, naming it (clinic, id, seq, version) and
 * what is wrong; *checked and *bad count them. RG_OK or a store error. */
int rg_store_verify(rg_store *st, FILE *out, int64_t *checked, int64_t *bad);

/* Every transition of an alert key in a clinic, in order (by the index on
 * (clinic, key)): a request reads only its own clinic's. */
int rg_store_key_transitions(rg_store *st, const char *clinic, const char *key,
                             int (*fn)(void *ud, const rg_transition *t), void *ud);
/* The clinics that have transitions under key, in name order: for the
 * operator's `regimen explain KEY` over a whole store, never for a request. */
int rg_store_key_clinics(rg_store *st, const char *key,
                         int (*fn)(void *ud, const char *clinic), void *ud);

/* Webhook delivery state of a clinic: the last sequence number the receiver
 * acknowledged, and failed attempts at the next one. */
int rg_store_webhook_get(rg_store *st, const char *clinic, int64_t *delivered, int *attempts);
int rg_store_webhook_delivered(rg_store *st, const char *clinic, int64_t cseq);
int rg_store_webhook_failed(rg_store *st, const char *clinic, const char *error);
/* The clinic's first undelivered transition whose notify_at is at or before
 * now (to fn, if any), in order, skipping those sent ahead; *wait is the
 * earliest notify_at still to come (RG_TIME_NONE if none). */
int rg_store_webhook_next(rg_store *st, const char *clinic, rg_time now,
                          int (*fn)(void *ud, const rg_transition *t), void *ud, rg_time *wait);
/* Records the delivery of cseq: the cursor moves when it is the next one
 * (and on over those sent ahead), else it is kept as sent ahead. */
int rg_store_webhook_sent(rg_store *st, const char *clinic, int64_t cseq);

/* The clinic's newest transition sequence number (0 when none). */
int rg_store_last_cseq(rg_store *st, const char *clinic, int64_t *out);
/* Open alerts by clinic and severity: of one clinic, or of all (NULL). */
int rg_store_open_by_severity(rg_store *st, const char *clinic,
                              int (*fn)(void *ud, const char *clinic, const char *severity,
                                        int64_t n),
                              void *ud);

int rg_store_eval_error(rg_store *st, const char *clinic, const char *patient,
                        const char *protocol, const char *rule, rg_time at, const char *msg);

/* Evaluation failures in force (docs/service.md, "Failures are alerts"):
 * which (protocol, rule) last failed for which patient, and since when. msg
 * not NULL: the rule failed for the patient at `at` (since stays the first
 * failure's); NULL: it evaluated cleanly (the row goes). *before and *after
 * are how many patients that (clinic, protocol, rule) fails for before and
 * after the change, *since the earliest failure among them (RG_TIME_NONE
 * when none). rule "" stands for the whole protocol (its `applies`, its
 * parameters). */
int rg_store_rule_failing(rg_store *st, const char *clinic, const char *patient,
                          const char *protocol, const char *rule, rg_time at, const char *msg,
                          int64_t *before, int64_t *after, rg_time *since);
/* The (protocol, rule) pairs failing for one patient. */
int rg_store_each_failing(rg_store *st, const char *clinic, const char *patient,
                          int (*fn)(void *ud, const char *protocol, const char *rule), void *ud);
/* Every failing (clinic, protocol, rule): how many patients, since when, and
 * one of their messages (for /healthz). */
int rg_store_failing_summary(rg_store *st,
                             int (*fn)(void *ud, const char *clinic, const char *protocol,
                                       const char *rule, int64_t patients, rg_time since,
                                       const char *message),
                             void *ud);

/* Provenance: remembers that this clinic ran this protocol version from this
 * source (hash of the file text). */
int rg_store_protocol_loaded(rg_store *st, const char *clinic, const char *protocol,
                             const char *version, const char *file, const char *hash);

/* ---- the audit trail (audit.h builds on these: the hash chain, verify).
 * An entry: who did what to which patients' data, and the SHA-256 (hex) of
 * the entry before it (prev) and of itself (hash). patients is a JSON array
 * of patient ids ("[]" for none; ["*"] for all of the clinic's). */
typedef struct rg_audit_entry {
    int64_t seq;
    rg_time at;
    const char *who, *role, *address, *clinic, *patients, *route, *outcome;
    const char *prev, *hash;
} rg_audit_entry;
/* The chain's base (the last archived entry; seq 0 and 64 zeros at first)
 * and its tip (the last entry appended). */
typedef struct rg_audit_chain {
    int64_t base_seq, tip_seq;
    char base_hash[65], tip_hash[65];
    rg_time archived_at; /* RG_TIME_NONE: never */
} rg_audit_chain;
/* Reads the chain's base and tip; lock (inside a write transaction) keeps
 * other writers from appending until it ends (PostgreSQL: FOR UPDATE). */
int rg_store_audit_chain(rg_store *st, int lock, rg_audit_chain *c);
/* Inserts e (seq, prev and hash set by the caller) and makes it the tip. */
int rg_store_audit_insert(rg_store *st, const rg_audit_entry *e);
typedef struct rg_audit_filter {
    int64_t after;     /* entries with seq > after */
    const char *clinic, *who, *patient; /* NULL: any */
    rg_time since;     /* RG_TIME_NONE: any */
    int limit;
} rg_audit_filter;
/* Entries matching f, in seq order. */
int rg_store_audit_each(rg_store *st, const rg_audit_filter *f,
                        int (*fn)(void *ud, const rg_audit_entry *e), void *ud);
/* Deletes the entries before `before` (the prefix of the chain up to the
 * last of them) and makes the last one deleted the chain's base; *n: how
 * many (0 when none). Inside a write transaction. */
int rg_store_audit_archive(rg_store *st, rg_time before, int64_t *n);
/* ---- protocol versions (docs/governance.md; runtime/store/protosets.c). A
 * clinic's protocol set captured as an immutable version: id (SHA-256 of its
 * files, hex), n (1 for the clinic's first), state ("proposed", "approved",
 * "shadow", "active", "superseded", "rolled back"), who proposed it, when
 * and why, who approved it, since when it is in force (RG_TIME_NONE: not
 * yet). Both backends (PostgreSQL: pg_protosets.c). */
typedef struct rg_protoset {
    const char *clinic, *id, *state, *proposed_by, *message;
    const char *approved_by; /* NULL until approved */
    int64_t n;
    rg_time proposed_at, approved_at, active_from;
} rg_protoset;
/* Adds version v (state "proposed") with its nfiles files; RG_ECONFLICT
 * when the clinic already has a version with this id. */
int rg_store_protoset_add(rg_store *st, const rg_protoset *v, const char *const *paths,
                          const char *const *contents, const size_t *lens, int nfiles);
/* The clinic's versions, oldest first (fn's nonzero answer stops and is
 * returned). */
int rg_store_protoset_each(rg_store *st, const char *clinic,
                           int (*fn)(void *ud, const rg_protoset *v), void *ud);
/* A version's files in path order. */
int rg_store_protoset_files(rg_store *st, const char *clinic, const char *id,
                            int (*fn)(void *ud, const char *path, const char *content,
                                      size_t len),
                            void *ud);
/* Sets a version's state, approval and time in force (as in v). */
int rg_store_protoset_update(rg_store *st, const rg_protoset *v);
/* Records what was done to a version (proposed, approved, activated...) by
 * whom, when, with effect from when; each_log gives them oldest first (id
 * NULL: every version's). */
int rg_store_protoset_log(rg_store *st, const char *clinic, const char *id, const char *action,
                          const char *by, rg_time at, rg_time effective);
int rg_store_protoset_each_log(rg_store *st, const char *clinic, const char *id,
                               int (*fn)(void *ud, const char *id, const char *action,
                                         const char *by, rg_time at, rg_time effective),
                               void *ud);
/* Every stored version of every event of the clinic as received (its body),
 * in the order stored: what a replay ingests again. */
int rg_store_each_event_body(rg_store *st, const char *clinic,
                             int (*fn)(void *ud, const char *body, size_t len), void *ud);
/* The same for the rows stored after seq `after`, with each row's seq: what
 * a shadow version (docs/governance.md) has not taken in yet. */
int rg_store_each_event_body_after(rg_store *st, const char *clinic, int64_t after,
                                   int (*fn)(void *ud, int64_t seq, const char *body,
                                             size_t len),
                                   void *ud);
/* A shadow version's transition (its own table, shadow_transitions: never
 * the feed, so no webhook, stream or worklist hears of it). t->version is
 * the protocol's version as in the feed; `set` the protocol set's id. The
 * same transition stored twice (a takeover replays) is kept once. */
int rg_store_shadow_put(rg_store *st, const char *set, const rg_transition *t);
/* The shadow transitions of set in clinic at or after since, in time order
 * (t->seq says nothing). */
int rg_store_shadow_each(rg_store *st, const char *clinic, const char *set, rg_time since,
                         int (*fn)(void *ud, const rg_transition *t), void *ud);

/* ---- many workers on one store. PostgreSQL: any number of services share
 * it, each clinic evaluated by the one holding its lease. SQLite: one
 * service holds the file (holder.h), so it holds every clinic. */
/* Takes the clinic's lease if nobody holds it: *held 1 when this store
 * holds it (now or already). The database enforces it and ends it with the
 * connection, so a worker that dies (kill -9) loses its leases at once.
 * RG_EIO when the connection is lost: so are all the leases it held.
 * SQLite: always held. */
int rg_store_lease(rg_store *st, const char *clinic, int *held);
/* Gives the clinic's lease back (if held), for another worker to take.
 * SQLite: nothing to do. */
int rg_store_unlease(rg_store *st, const char *clinic);
/* *n: how many services hold this store now (rg_store_hold shared), this
 * one included. SQLite: 1. */
int rg_store_workers(rg_store *st, int *n);
/* on: the wake-up reads (rg_store_due_patients, rg_store_patients_page
 * with a due time, rg_store_next_wake, the snoozes) see only the clinics
 * this store holds. No effect on SQLite. */
void rg_store_lease_only(rg_store *st, int on);
/* Reads, ahead, what evaluating these patients of clinic will read (their
 * states, their events after after[i] (-1: all; NULL: all for every one),
 * their open alerts): PostgreSQL in one round trip and one snapshot, the
 * engine's reads of them then answered from it, once each, until
 * rg_store_prefetch_end. Outside any transaction only. 1: read ahead (the
 * caller needs no read transaction of its own for them); 0: nothing done
 * (SQLite: its reads are function calls); <0: an error. */
int rg_store_prefetch(rg_store *st, const char *clinic, const char *const *patients,
                      const int64_t *after, int n);
void rg_store_prefetch_end(rg_store *st);
/* Statements sent to a database server and round trips made, by every
 * store of this process so far (0 for SQLite). */
void rg_store_db_counts(uint64_t *statements, uint64_t *round_trips);
/* Due patients of clinic not yet evaluated (next_wake <= now), counted up
 * to max + 1 only (cheap whatever the backlog). */
int rg_store_due_count(rg_store *st, const char *clinic, rg_time now, int max, int *n);
/* on: inside a write transaction, patient states and transitions are sent
 * together (PostgreSQL: one multi-row statement each) before the
 * transaction's next statement or its COMMIT; an opening's *alert_id is a
 * placeholder the store itself turns into the alert's id when a resolution
 * passes it back, and t->seq and t->cseq are not set. A refused transition
 * then fails that later statement (the caller rolls back, as for a refusal
 * now). For a write log's apply (rg_wlog_apply). No effect on SQLite. */
void rg_store_defer_writes(rg_store *st, int on);
/* PostgreSQL: holds the store shared (alone 0: each serve worker) or alone
 * (1: sweep, simulate --db), until the connection ends; *ok 0 when the
 * other kind holds it. SQLite: *ok 1 (holder.h locks the file). */
int rg_store_hold(rg_store *st, int alone, int *ok);

/* ---- the service's notifications (docs/notifications.md; notify_store.c).
 * A step the planner (engine/notify.c) laid out for an alert, kept under its
 * idempotency key (clinic, key, opened, route, step, round, part; part 1 is
 * the "outside hours" note before a step sent at the next opening). reason:
 * NULL (to send) or why the planner holds it back; state: pending, sent,
 * failed, suppressed, stopped. */
typedef struct rg_notify_row {
    int64_t id;
    const char *clinic, *patient, *key, *rule, *receiver, *on_call, *reason, *state;
    rg_time opened, due, next_try;
    int route, step, round, part, attempts;
} rg_notify_row;
/* Stores a planned step (pending, due at r->due) unless its key is there;
 * one there and still pending, never tried, takes r's reason, receiver and
 * on_call. *added (when not NULL): 1 when it was new. */
int rg_store_notify_plan(rg_store *st, const rg_notify_row *r, int *added);
/* The clinic's pending steps whose next_try has come and that nobody has
 * claimed (or whose claim ran out), at most limit, by (patient, due, route,
 * step, round): a group falls due together. */
int rg_store_notify_due(rg_store *st, const char *clinic, rg_time now, int limit,
                        int (*fn)(void *ud, const rg_notify_row *r), void *ud);
/* Claims step id until `until` (while it is sent); *got 0 when it is no
 * longer pending or another worker holds an unexpired claim. */
int rg_store_notify_claim(rg_store *st, int64_t id, rg_time now, rg_time until, int *got);
/* Sets a step's state, attempts and next try, and drops its claim. */
int rg_store_notify_set(rg_store *st, int64_t id, const char *state, int attempts,
                        rg_time next_try);
/* Stops the chain of one life of an alert: its pending steps. */
int rg_store_notify_stop(rg_store *st, const char *clinic, const char *key, rg_time opened);
/* Drops every claim (the one process of a SQLite store, at start). */
int rg_store_notify_unclaim_all(rg_store *st);
/* The earliest next_try of the clinic's pending steps (RG_TIME_NONE: none). */
int rg_store_notify_next(rg_store *st, const char *clinic, rg_time *out);
/* One attempt of the history: outcome sent, failed, retried, suppressed
 * (reason: inhibited, grouped, outside hours, held down) or stopped (reason:
 * acknowledged, snoozed, resolved). kind: webhook, email, sms. */
typedef struct rg_notify_entry {
    int64_t seq;
    rg_time at, opened;
    const char *clinic, *patient, *key, *rule, *receiver, *kind, *on_call, *outcome, *reason;
    int route, step, round, alerts, attempt;
} rg_notify_entry;
int rg_store_notify_log(rg_store *st, const rg_notify_entry *e);
/* The clinic's history in order, of one patient and/or key (NULL: any). */
int rg_store_notify_each_log(rg_store *st, const char *clinic, const char *patient,
                             const char *key, int (*fn)(void *ud, const rg_notify_entry *e),
                             void *ud);
/* The history counted by (clinic, outcome, kind). */
int rg_store_notify_counts(rg_store *st,
                           int (*fn)(void *ud, const char *clinic, const char *outcome,
                                     const char *kind, int64_t n),
                           void *ud);

#endif
