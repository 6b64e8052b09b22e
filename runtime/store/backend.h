/*
 * backend.h - what a backend of the event store gives the front door
 * (store.c): one table of operations, as Knot Resolver's kr_cdb_api or
 * SQLite's sqlite3_io_methods. Only runtime/store/ includes this header.
 *
 * A backend is one file (sqlite.c, pg.c) that defines struct rg_backend for
 * itself (its connection, its prepared statements, whatever it keeps) and
 * one const rg_store_ops whose functions take that struct. The front door
 * holds an rg_store: the table and the backend's pointer; each rg_store_*
 * is st->ops->x(st->b, ...), and nothing outside the backend's own file
 * ever looks inside struct rg_backend. Every operation promises what its
 * rg_store_* says in store.h (tests/test_store_conformance.c runs the same
 * tests on every backend). None may be NULL.
 *
 * Choosing a backend: rg_store_open asks the tables of rg_store_backends
 * (store.c) in order whether they claim the path; the first that does opens
 * it. SQLite, last, claims everything. A third backend is one new file with
 * its table, and its line in that list.
 */
#ifndef RG_STORE_BACKEND_H
#define RG_STORE_BACKEND_H

#include "store/store.h"

/* Each backend's own state; each backend completes this type in its file. */
typedef struct rg_backend rg_backend;

/* One parameter of a statement run by rg_store_run_sql: text (v, NULL for
 * SQL NULL) or an integer. */
typedef struct rg_store_arg {
    const char *v;
    int64_t i;
    int is_int;
} rg_store_arg;

typedef struct rg_store_ops {
    const char *name; /* "sqlite", "postgresql" */
    int server;       /* 1: a database server many processes share (rg_store_is_server) */
    /* 1 when path (a file name, a URL) is this backend's to open */
    int (*claims)(const char *path);
    int (*open)(rg_backend **out, const char *path, const rg_store_opts *opts, char *err,
                size_t errlen);
    void (*close)(rg_backend *b);
    const char *(*errmsg)(rg_backend *b);
    const char *(*fault)(rg_backend *b, rg_time *since);
    void (*wal_state)(rg_backend *b, rg_store_wal *out);

    int (*begin)(rg_backend *b);
    int (*begin_read)(rg_backend *b);
    uint64_t (*rollbacks)(const rg_backend *b);
    int (*commit)(rg_backend *b);
    void (*rollback)(rg_backend *b);
    void (*on_commit)(rg_backend *b, void (*fn)(void *ud), void *ud);
    int (*changes_fd)(rg_backend *b, int *fd);
    int (*changed)(rg_backend *b, void (*fn)(void *ud, const char *clinic), void *ud);

    int (*put_event)(rg_backend *b, const rg_event *ev, rg_time received, rg_put *res);
    const char *(*put_reason)(const rg_backend *b);
    const char *(*put_field)(const rg_backend *b);
    int (*put_events)(rg_backend *b, const rg_event *const *evs, int n, rg_time received,
                      rg_put *res, int *failed);
    int (*reject)(rg_backend *b, const char *source, long line, const char *field,
                  const char *reason, const char *raw, size_t rawlen);
    int (*each_rejected)(rg_backend *b, int (*fn)(void *ud, const rg_rejected *r), void *ud);
    int (*each_event)(rg_backend *b, const char *clinic, const char *patient,
                      int (*fn)(void *ud, const rg_stored_event *e), void *ud);
    int (*each_event_after)(rg_backend *b, const char *clinic, const char *patient,
                            int64_t after_seq, int (*fn)(void *ud, const rg_stored_event *e),
                            void *ud);
    int (*each_event_data)(rg_backend *b, const char *clinic, const char *patient,
                           int (*fn)(void *ud, const rg_stored_event *e), void *ud);
    int (*get_event)(rg_backend *b, const char *clinic, const char *id,
                     int (*fn)(void *ud, const rg_stored_event *e), void *ud);
    int (*each_version)(rg_backend *b, const char *clinic, const char *id,
                        int (*fn)(void *ud, const rg_stored_event *e), void *ud);
    int (*each_correction)(rg_backend *b, const char *clinic, const char *patient, rg_time after,
                           rg_time upto,
                           int (*fn)(void *ud, const rg_stored_event *c,
                                     const rg_stored_event *replaced),
                           void *ud);
    int (*event_rows)(rg_backend *b, const char *after_clinic, const char *after_patient,
                      rg_time after_at, int64_t after_seq, int limit,
                      int (*fn)(void *ud, const rg_event_row *r), void *ud);
    int (*event_rows_of)(rg_backend *b, const char *clinic, const char *id,
                         int (*fn)(void *ud, const rg_event_row *r), void *ud);
    int (*each_event_body)(rg_backend *b, const char *clinic,
                           int (*fn)(void *ud, const char *body, size_t len), void *ud);
    int (*each_event_body_after)(rg_backend *b, const char *clinic, int64_t after,
                                 int (*fn)(void *ud, int64_t seq, const char *body, size_t len),
                                 void *ud);

    int (*patient_get)(rg_backend *b, const char *clinic, const char *patient,
                       rg_patient_state *ps);
    int (*patient_put)(rg_backend *b, const char *clinic, const char *patient,
                       const rg_patient_state *ps);
    int (*patients_page)(rg_backend *b, const char *after_clinic, const char *after_patient,
                         rg_time due, int limit,
                         int (*fn)(void *ud, const char *clinic, const char *patient), void *ud);
    int (*due_patients)(rg_backend *b, const char *clinic, rg_time due, int limit,
                        int (*fn)(void *ud, const char *clinic, const char *patient), void *ud);
    int (*next_wake)(rg_backend *b, rg_time *out);
    int (*wake_clinic)(rg_backend *b, const char *clinic, rg_time at);
    int (*wake_failing)(rg_backend *b, const char *clinic, rg_time at);

    int (*each_open_alert)(rg_backend *b, const char *clinic, const char *patient,
                           int (*fn)(void *ud, int64_t alert_id, const rg_transition *t),
                           void *ud);
    int (*transition)(rg_backend *b, rg_transition *t, int64_t *alert_id);
    int (*each_transition)(rg_backend *b, int64_t after, int by_time,
                           int (*fn)(void *ud, const rg_transition *t), void *ud);
    int (*clinic_transitions)(rg_backend *b, const char *clinic, int64_t after_cseq, int limit,
                              int (*fn)(void *ud, const rg_transition *t), void *ud);
    int (*key_transitions)(rg_backend *b, const char *clinic, const char *key,
                           int (*fn)(void *ud, const rg_transition *t), void *ud);
    int (*key_clinics)(rg_backend *b, const char *key, int (*fn)(void *ud, const char *clinic),
                       void *ud);
    int (*last_cseq)(rg_backend *b, const char *clinic, int64_t *out);
    int (*each_alert)(rg_backend *b, const char *clinic, const char *patient, const char *state,
                      const char *key, int64_t after, int limit,
                      int (*fn)(void *ud, const rg_alert_view *a), void *ud);
    int (*alert_action)(rg_backend *b, const char *clinic, const char *key, const char *action,
                        const char *who, const char *note, rg_time until, rg_time at);
    int (*each_action)(rg_backend *b, const char *clinic, const char *key,
                       int (*fn)(void *ud, const rg_alert_action *a), void *ud);
    int (*next_snooze)(rg_backend *b, rg_time *out);
    int (*next_due)(rg_backend *b, const char *const *skip, int nskip, rg_time *wake,
                    rg_time *snooze);
    int (*each_due_snooze)(rg_backend *b, rg_time now,
                           int (*fn)(void *ud, const char *clinic, const char *key,
                                     const char *patient),
                           void *ud, int *count);
    int (*open_by_severity)(rg_backend *b, const char *clinic,
                            int (*fn)(void *ud, const char *clinic, const char *severity,
                                      int64_t n),
                            void *ud);

    int (*webhook_get)(rg_backend *b, const char *clinic, int64_t *delivered, int *attempts);
    int (*webhook_delivered)(rg_backend *b, const char *clinic, int64_t cseq);
    int (*webhook_failed)(rg_backend *b, const char *clinic, const char *error);
    int (*webhook_next)(rg_backend *b, const char *clinic, rg_time now,
                        int (*fn)(void *ud, const rg_transition *t), void *ud, rg_time *wait);
    int (*webhook_sent)(rg_backend *b, const char *clinic, int64_t cseq);

    int (*eval_error)(rg_backend *b, const char *clinic, const char *patient,
                      const char *protocol, const char *rule, rg_time at, const char *msg);
    int (*rule_failing)(rg_backend *b, const char *clinic, const char *patient,
                        const char *protocol, const char *rule, rg_time at, const char *msg,
                        int64_t *before, int64_t *after, rg_time *since);
    int (*each_failing)(rg_backend *b, const char *clinic, const char *patient,
                        int (*fn)(void *ud, const char *protocol, const char *rule), void *ud);
    int (*failing_summary)(rg_backend *b,
                           int (*fn)(void *ud, const char *clinic, const char *protocol,
                                     const char *rule, int64_t patients, rg_time since,
                                     const char *message),
                           void *ud);
    int (*protocol_loaded)(rg_backend *b, const char *clinic, const char *protocol,
                           const char *version, const char *file, const char *hash);

    int (*audit_chain)(rg_backend *b, int lock, rg_audit_chain *c);
    int (*audit_insert)(rg_backend *b, const rg_audit_entry *e);
    int (*audit_each)(rg_backend *b, const rg_audit_filter *f,
                      int (*fn)(void *ud, const rg_audit_entry *e), void *ud);
    int (*audit_archive)(rg_backend *b, rg_time before, int64_t *n);

    int (*protoset_add)(rg_backend *b, const rg_protoset *v, const char *const *paths,
                        const char *const *contents, const size_t *lens, int nfiles);
    int (*protoset_each)(rg_backend *b, const char *clinic,
                         int (*fn)(void *ud, const rg_protoset *v), void *ud);
    int (*protoset_files)(rg_backend *b, const char *clinic, const char *id,
                          int (*fn)(void *ud, const char *path, const char *content,
                                    size_t len),
                          void *ud);
    int (*protoset_update)(rg_backend *b, const rg_protoset *v);
    int (*protoset_log)(rg_backend *b, const char *clinic, const char *id, const char *action,
                        const char *by, rg_time at, rg_time effective);
    int (*protoset_each_log)(rg_backend *b, const char *clinic, const char *id,
                             int (*fn)(void *ud, const char *id, const char *action,
                                       const char *by, rg_time at, rg_time effective),
                             void *ud);
    int (*shadow_put)(rg_backend *b, const char *set, const rg_transition *t);
    int (*shadow_each)(rg_backend *b, const char *clinic, const char *set, rg_time since,
                       int (*fn)(void *ud, const rg_transition *t), void *ud);

    int (*lease)(rg_backend *b, const char *clinic, int *held);
    int (*unlease)(rg_backend *b, const char *clinic);
    int (*workers)(rg_backend *b, int *n);
    void (*lease_only)(rg_backend *b, int on);
    int (*hold)(rg_backend *b, int alone, int *ok);

    /* Runs sql, written once for every backend with $1, $2, ... parameters
     * numbered in the order they first appear, with its nargs args; fn(ud,
     * cols, ncols) per row (the columns as text, NULL for SQL NULL), if fn;
     * a nonzero answer of fn stops and is returned. *changed (when not NULL)
     * gets the rows it changed. For the statements that run now and then
     * (notify_store.c), which are not prepared. */
    int (*run_sql)(rg_backend *b, const char *sql, const rg_store_arg *args, int nargs,
                   int (*fn)(void *ud, const char *const *cols, int ncols), void *ud,
                   int64_t *changed);

    /* A group's reads ahead, writes sent together, the backlog (store.h's
     * rg_store_prefetch, _prefetch_end, _defer_writes, _due_count): a
     * backend whose reads are function calls does nothing (prefetch 0). */
    int (*prefetch)(rg_backend *b, const char *clinic, const char *const *patients,
                    const int64_t *after, int n);
    void (*prefetch_end)(rg_backend *b);
    void (*defer_writes)(rg_backend *b, int on);
    int (*due_count)(rg_backend *b, const char *clinic, rg_time now, int max, int *n);
    /* Statements sent to a server and round trips made by every connection
     * of this backend in the process (no backend argument: process-wide). */
    void (*db_counts)(uint64_t *statements, uint64_t *round_trips);
} rg_store_ops;

/* The backends (sqlite.c, pg.c). */
extern const rg_store_ops rg_sqlite_ops;
extern const rg_store_ops rg_pg_ops;
/* rg_store_copy's work, both stores SQLite (sqlite.c) */
int rg_sqlite_copy(rg_backend *src, rg_backend *dst);

/* The front door's way to run_sql (for notify_store.c); at most
 * RG_STORE_MAX_ARGS args and columns. */
#define RG_STORE_MAX_ARGS 20
int rg_store_run_sql(rg_store *st, const char *sql, const rg_store_arg *args, int nargs,
                     int (*fn)(void *ud, const char *const *cols, int ncols), void *ud,
                     int64_t *changed);

/* Shared by the backends (defined in sqlite.c), so that all decide alike: whether a
 * stored body is the same event as ev (1, 0, or RG_ENOMEM), "version":1 and
 * "status":"final" being what their absence says; and the RG_STATUS_* of a
 * stored status text (NULL: final). */
int rg_store_same_body(const char *stored, const rg_event *ev);
int rg_store_status_of(const char *text);

#endif
