/*
 * pg.h - the PostgreSQL backend of the event store (runtime/store/pg.c).
 *
 * store.h stays the one interface: rg_store_open hands a "postgresql://" or
 * "postgres://" --db to rg_pg_open, and every rg_store_* function of such a
 * store routes to its rg_pg_* twin here, with the same contract. Nothing
 * outside runtime/store/ includes this header. The many-worker functions of
 * store.h (rg_store_lease, rg_store_notices, ...) are defined in pg.c.
 *
 * Ownership: rg_pg_open creates the handle (one libpq connection), the
 * store owns it and frees it with rg_pg_close.
 */
#ifndef RG_PG_H
#define RG_PG_H

#include "store/store.h"

typedef struct rg_pg rg_pg;

/* The PostgreSQL backend of st, NULL for SQLite (store.c). */
rg_pg *rg_store_pg(rg_store *st);

/* The libpq connection (a PGconn *) and the note of a failed statement's
 * message, for the store's files that run their SQL when called
 * (notify_store.c). */
void *rg_pg_conn(rg_pg *pg);
void rg_pg_failed(rg_pg *pg, const char *msg);

/* 1 when path is a PostgreSQL connection URL rather than a file. */
int rg_pg_url(const char *path);

int rg_pg_open(rg_pg **out, const char *url, const rg_store_opts *opts, char *err,
               size_t errlen);
void rg_pg_close(rg_pg *pg);
/* A group's reads in one round trip (store.h, rg_store_prefetch). */
int rg_pg_prefetch(rg_pg *pg, const char *clinic, const char *const *patients,
                   const int64_t *after, int n);
void rg_pg_prefetch_end(rg_pg *pg);
int rg_pg_due_count(rg_pg *pg, const char *clinic, rg_time now, int max, int *n);
const char *rg_pg_errmsg(rg_pg *pg);
const char *rg_pg_fault(rg_pg *pg, rg_time *since);
int rg_pg_begin(rg_pg *pg);
int rg_pg_begin_read(rg_pg *pg);
uint64_t rg_pg_rollbacks(const rg_pg *pg);
int rg_pg_commit(rg_pg *pg);
void rg_pg_rollback(rg_pg *pg);
void rg_pg_on_commit(rg_pg *pg, void (*fn)(void *ud), void *ud);
int rg_pg_data_version(rg_pg *pg, int64_t *out);
int rg_pg_put_event(rg_pg *pg, const rg_event *ev, rg_time received, rg_put *res);
int rg_pg_put_events(rg_pg *pg, const rg_event *const *evs, int n, rg_time received,
                     rg_put *res);
const char *rg_pg_put_reason(const rg_pg *pg);
const char *rg_pg_put_field(const rg_pg *pg);
int rg_pg_reject(rg_pg *pg, const char *source, long line, const char *field,
                 const char *reason, const char *raw, size_t rawlen);
int rg_pg_each_rejected(rg_pg *pg, int (*fn)(void *ud, const rg_rejected *r), void *ud);
int rg_pg_each_event(rg_pg *pg, const char *clinic, const char *patient,
                     int (*fn)(void *ud, const rg_stored_event *e), void *ud);
int rg_pg_each_event_after(rg_pg *pg, const char *clinic, const char *patient,
                           int64_t after_seq, int (*fn)(void *ud, const rg_stored_event *e),
                           void *ud);
int rg_pg_each_event_data(rg_pg *pg, const char *clinic, const char *patient,
                          int (*fn)(void *ud, const rg_stored_event *e), void *ud);
int rg_pg_patient_get(rg_pg *pg, const char *clinic, const char *patient,
                      rg_patient_state *ps);
int rg_pg_patient_put(rg_pg *pg, const char *clinic, const char *patient,
                      const rg_patient_state *ps);
int rg_pg_patients_page(rg_pg *pg, const char *after_clinic, const char *after_patient,
                        rg_time due, int limit,
                        int (*fn)(void *ud, const char *clinic, const char *patient),
                        void *ud);
int rg_pg_due_patients(rg_pg *pg, rg_time due, int limit,
                       int (*fn)(void *ud, const char *clinic, const char *patient), void *ud);
int rg_pg_next_wake(rg_pg *pg, rg_time *out);
int rg_pg_each_open_alert(rg_pg *pg, const char *clinic, const char *patient,
                          int (*fn)(void *ud, int64_t alert_id, const rg_transition *t),
                          void *ud);
int rg_pg_transition(rg_pg *pg, rg_transition *t, int64_t *alert_id);
int rg_pg_each_transition(rg_pg *pg, int64_t after, int by_time,
                          int (*fn)(void *ud, const rg_transition *t), void *ud);
int rg_pg_clinic_transitions(rg_pg *pg, const char *clinic, int64_t after_cseq, int limit,
                             int (*fn)(void *ud, const rg_transition *t), void *ud);
int rg_pg_each_alert(rg_pg *pg, const char *clinic, const char *patient, const char *state,
                     const char *key, int64_t after, int limit,
                     int (*fn)(void *ud, const rg_alert_view *a), void *ud);
int rg_pg_alert_action(rg_pg *pg, const char *clinic, const char *key, const char *action,
                       const char *who, const char *note, rg_time until, rg_time at);
int rg_pg_each_action(rg_pg *pg, const char *clinic, const char *key,
                      int (*fn)(void *ud, const rg_alert_action *a), void *ud);
int rg_pg_next_snooze(rg_pg *pg, rg_time *out);
int rg_pg_each_due_snooze(rg_pg *pg, rg_time now,
                          int (*fn)(void *ud, const char *clinic, const char *key,
                          const char *patient),
                          void *ud, int *count);
int rg_pg_wake_clinic(rg_pg *pg, const char *clinic, rg_time at);
int rg_pg_get_event(rg_pg *pg, const char *clinic, const char *id,
                    int (*fn)(void *ud, const rg_stored_event *e), void *ud);
int rg_pg_each_version(rg_pg *pg, const char *clinic, const char *id,
                       int (*fn)(void *ud, const rg_stored_event *e), void *ud);
int rg_pg_each_correction(rg_pg *pg, const char *clinic, const char *patient, rg_time after,
                          rg_time upto,
                          int (*fn)(void *ud, const rg_stored_event *c,
                                    const rg_stored_event *replaced),
                          void *ud);
int rg_pg_key_transitions(rg_pg *pg, const char *clinic, const char *key,
                          int (*fn)(void *ud, const rg_transition *t), void *ud);
int rg_pg_event_rows(rg_pg *pg, const char *after_clinic, const char *after_patient,
                     rg_time after_at, int64_t after_seq, int limit,
                     int (*fn)(void *ud, const rg_event_row *r), void *ud);
int rg_pg_event_rows_of(rg_pg *pg, const char *clinic, const char *id,
                        int (*fn)(void *ud, const rg_event_row *r), void *ud);
int rg_pg_key_clinics(rg_pg *pg, const char *key, int (*fn)(void *ud, const char *clinic),
                      void *ud);
int rg_pg_webhook_get(rg_pg *pg, const char *clinic, int64_t *delivered, int *attempts);
int rg_pg_webhook_delivered(rg_pg *pg, const char *clinic, int64_t cseq);
int rg_pg_webhook_next(rg_pg *pg, const char *clinic, rg_time now,
                       int (*fn)(void *ud, const rg_transition *t), void *ud, rg_time *wait);
int rg_pg_webhook_sent(rg_pg *pg, const char *clinic, int64_t cseq);
int rg_pg_webhook_failed(rg_pg *pg, const char *clinic, const char *error);
int rg_pg_audit_chain(rg_pg *pg, int lock, rg_audit_chain *c);
int rg_pg_audit_insert(rg_pg *pg, const rg_audit_entry *e);
int rg_pg_audit_each(rg_pg *pg, const rg_audit_filter *f,
                     int (*fn)(void *ud, const rg_audit_entry *e), void *ud);
int rg_pg_audit_archive(rg_pg *pg, rg_time before, int64_t *n);
int rg_pg_last_cseq(rg_pg *pg, const char *clinic, int64_t *out);
int rg_pg_open_by_severity(rg_pg *pg, const char *clinic,
                           int (*fn)(void *ud, const char *clinic, const char *severity,
                           int64_t n),
                           void *ud);
int rg_pg_eval_error(rg_pg *pg, const char *clinic, const char *patient,
                     const char *protocol, const char *rule, rg_time at, const char *msg);
int rg_pg_wake_failing(rg_pg *pg, const char *clinic, rg_time at);
int rg_pg_rule_failing(rg_pg *pg, const char *clinic, const char *patient, const char *protocol,
                       const char *rule, rg_time at, const char *msg, int64_t *before,
                       int64_t *after, rg_time *since);
int rg_pg_each_failing(rg_pg *pg, const char *clinic, const char *patient,
                       int (*fn)(void *ud, const char *protocol, const char *rule), void *ud);
int rg_pg_failing_summary(rg_pg *pg,
                          int (*fn)(void *ud, const char *clinic, const char *protocol,
                                    const char *rule, int64_t patients, rg_time since,
                                    const char *message),
                          void *ud);
int rg_pg_protocol_loaded(rg_pg *pg, const char *clinic, const char *protocol,
                          const char *version, const char *file, const char *hash);
/* Shared by the two backends (defined in store.c), so that both decide
 * alike: whether a stored body is the same event as ev (1, 0, or
 * RG_ENOMEM), "version":1 and "status":"final" being what their absence
 * says; and the RG_STATUS_* of a stored status text (NULL: final). */
int rg_store_same_body(const char *stored, const rg_event *ev);
int rg_store_status_of(const char *text);

/* Runs sql with n text (fmt NULL or 0) or binary (1) parameters: its
 * result, or NULL with the error kept (rg_pg_errmsg); *constraint (may be
 * NULL) 1 when a constraint refused it. For statements that run now and
 * then (pg_protosets.c), which are not prepared. */
struct pg_result;
struct pg_result *rg_pg_query(rg_pg *pg, const char *sql, int n, const char *const *v,
                              const int *len, const int *fmt, int *constraint);
/* Protocol versions and shadow feeds (pg_protosets.c), as protosets.c's. */
int rg_pg_protoset_add(rg_pg *pg, const rg_protoset *v, const char *const *paths,
                       const char *const *contents, const size_t *lens, int nfiles);
int rg_pg_protoset_each(rg_pg *pg, const char *clinic,
                        int (*fn)(void *ud, const rg_protoset *v), void *ud);
int rg_pg_protoset_files(rg_pg *pg, const char *clinic, const char *id,
                         int (*fn)(void *ud, const char *path, const char *content, size_t len),
                         void *ud);
int rg_pg_protoset_update(rg_pg *pg, const rg_protoset *v);
int rg_pg_protoset_log(rg_pg *pg, const char *clinic, const char *id, const char *action,
                       const char *by, rg_time at, rg_time effective);
int rg_pg_protoset_each_log(rg_pg *pg, const char *clinic, const char *id,
                            int (*fn)(void *ud, const char *id, const char *action,
                                      const char *by, rg_time at, rg_time effective),
                            void *ud);
int rg_pg_each_event_body_after(rg_pg *pg, const char *clinic, int64_t after,
                                int (*fn)(void *ud, int64_t seq, const char *body, size_t len),
                                void *ud);
int rg_pg_shadow_put(rg_pg *pg, const char *set, const rg_transition *t);
int rg_pg_shadow_each(rg_pg *pg, const char *clinic, const char *set, rg_time since,
                      int (*fn)(void *ud, const rg_transition *t), void *ud);

int rg_pg_lease(rg_pg *pg, const char *clinic, int *held);
int rg_pg_unlease(rg_pg *pg, const char *clinic);
int rg_pg_workers(rg_pg *pg, int *n);
void rg_pg_lease_only(rg_pg *pg, int on);
int rg_pg_notice_fd(rg_pg *pg);
int rg_pg_notices(rg_pg *pg);

#endif
