/*
 * store.c - the front door of the event store (store.h): it chooses a
 * backend when a store is opened and then hands every call to that
 * backend's table of operations (backend.h). It holds no SQL and knows no
 * database client; what is the same for every backend (a page of alerts
 * from the start, the default count of workers) is written here once.
 */
#include "store/backend.h"

#include <stdlib.h>

struct rg_store {
    const rg_store_ops *ops;
    rg_backend *b;
};

/* The backends, asked in order whether they claim a path; SQLite, which
 * claims every path, last. */
static const rg_store_ops *const rg__backends[] = {&rg_pg_ops, &rg_sqlite_ops};
#define RG__NBACKENDS (sizeof rg__backends / sizeof rg__backends[0])

static const rg_store_ops *rg__backend_of(const char *path)
{
    for (size_t i = 0; i < RG__NBACKENDS; i++)
        if (rg__backends[i]->claims(path))
            return rg__backends[i];
    return NULL;
}

int rg_store_open(rg_store **out, const char *path, const rg_store_opts *opts, char *err,
                  size_t errlen)
{
    *out = NULL;
    const rg_store_ops *ops = rg__backend_of(path);
    if (!ops)
        return rg_fail(err, errlen, RG_EUSAGE, "%s: no store can open it", path);
    rg_store *st = calloc(1, sizeof *st);
    if (!st)
        return rg_fail(err, errlen, RG_ENOMEM, "out of memory");
    st->ops = ops;
    int rc = ops->open(&st->b, path, opts, err, errlen);
    if (rc) {
        free(st);
        return rc;
    }
    *out = st;
    return RG_OK;
}

int rg_store_is_server(const char *path)
{
    const rg_store_ops *ops = rg__backend_of(path);
    return ops && ops->server;
}

void rg_store_close(rg_store *st)
{
    if (!st)
        return;
    st->ops->close(st->b);
    free(st);
}

int rg_store_changes_fd(rg_store *st, int *fd)
{
    return st->ops->changes_fd(st->b, fd);
}

int rg_store_changed(rg_store *st) { return st->ops->changed(st->b, NULL, NULL); }

int rg_store_changed_each(rg_store *st, void (*fn)(void *ud, const char *clinic), void *ud)
{
    return st->ops->changed(st->b, fn, ud);
}

int rg_store_put_events(rg_store *st, const rg_event *const *evs, int n, rg_time received,
                        rg_put *res, int *failed)
{
    return st->ops->put_events(st->b, evs, n, received, res, failed);
}

int rg_store_each_alert(rg_store *st, const char *clinic, const char *patient, const char *state,
                        const char *key, int limit,
                        int (*fn)(void *ud, const rg_alert_view *a), void *ud)
{
    return st->ops->each_alert(st->b, clinic, patient, state, key, 0, limit, fn, ud);
}

int rg_store_each_alert_after(rg_store *st, const char *clinic, const char *patient,
                              const char *state, const char *key, int64_t after, int limit,
                              int (*fn)(void *ud, const rg_alert_view *a), void *ud)
{
    return st->ops->each_alert(st->b, clinic, patient, state, key, after, limit, fn, ud);
}

int rg_store_workers(rg_store *st, int *n)
{
    *n = 1; /* (when the backend cannot tell) */
    return st->ops->workers(st->b, n);
}

int rg_store_run_sql(rg_store *st, const char *sql, const rg_store_arg *args, int nargs,
                     int (*fn)(void *ud, const char *const *cols, int ncols), void *ud,
                     int64_t *changed)
{
    return st->ops->run_sql(st->b, sql, args, nargs, fn, ud, changed);
}

/* ---- the rest is one call each ---------------------------------------------------------- */

const char *rg_store_errmsg(rg_store *st)
{
    return st->ops->errmsg(st->b);
}

const char *rg_store_fault(rg_store *st, rg_time *since)
{
    return st->ops->fault(st->b, since);
}

void rg_store_wal_state(rg_store *st, rg_store_wal *out)
{
    *out = (rg_store_wal){.since = RG_TIME_NONE};
    st->ops->wal_state(st->b, out);
}

int rg_store_copy(rg_store *src, rg_store *dst)
{
    if (src->ops != &rg_sqlite_ops || dst->ops != &rg_sqlite_ops)
        return RG_EINVAL;
    return rg_sqlite_copy(src->b, dst->b);
}

int rg_store_begin(rg_store *st)
{
    return st->ops->begin(st->b);
}

int rg_store_begin_read(rg_store *st)
{
    return st->ops->begin_read(st->b);
}

uint64_t rg_store_rollbacks(const rg_store *st)
{
    return st->ops->rollbacks(st->b);
}

int rg_store_commit(rg_store *st)
{
    return st->ops->commit(st->b);
}

void rg_store_rollback(rg_store *st)
{
    st->ops->rollback(st->b);
}

void rg_store_on_commit(rg_store *st, void (*fn)(void *ud), void *ud)
{
    st->ops->on_commit(st->b, fn, ud);
}

int rg_store_put_event(rg_store *st, const rg_event *ev, rg_time received, rg_put *res)
{
    return st->ops->put_event(st->b, ev, received, res);
}

const char *rg_store_put_reason(const rg_store *st)
{
    return st->ops->put_reason(st->b);
}

const char *rg_store_put_field(const rg_store *st)
{
    return st->ops->put_field(st->b);
}

int rg_store_reject(rg_store *st, const char *source, long line, const char *field,
                    const char *reason, const char *raw, size_t rawlen)
{
    return st->ops->reject(st->b, source, line, field, reason, raw, rawlen);
}

int rg_store_each_rejected(rg_store *st, int (*fn)(void *ud, const rg_rejected *r), void *ud)
{
    return st->ops->each_rejected(st->b, fn, ud);
}

int rg_store_each_event(rg_store *st, const char *clinic, const char *patient,
                        int (*fn)(void *ud, const rg_stored_event *e), void *ud)
{
    return st->ops->each_event(st->b, clinic, patient, fn, ud);
}

int rg_store_each_event_after(rg_store *st, const char *clinic, const char *patient,
                              int64_t after_seq, int (*fn)(void *ud, const rg_stored_event *e),
                              void *ud)
{
    return st->ops->each_event_after(st->b, clinic, patient, after_seq, fn, ud);
}

int rg_store_each_event_data(rg_store *st, const char *clinic, const char *patient,
                             int (*fn)(void *ud, const rg_stored_event *e), void *ud)
{
    return st->ops->each_event_data(st->b, clinic, patient, fn, ud);
}

int rg_store_patient_get(rg_store *st, const char *clinic, const char *patient,
                         rg_patient_state *ps)
{
    return st->ops->patient_get(st->b, clinic, patient, ps);
}

int rg_store_patient_put(rg_store *st, const char *clinic, const char *patient,
                         const rg_patient_state *ps)
{
    return st->ops->patient_put(st->b, clinic, patient, ps);
}

int rg_store_patients_page(rg_store *st, const char *after_clinic, const char *after_patient,
                           rg_time due, int limit,
                           int (*fn)(void *ud, const char *clinic, const char *patient),
                           void *ud)
{
    return st->ops->patients_page(st->b, after_clinic, after_patient, due, limit, fn, ud);
}

int rg_store_due_patients(rg_store *st, const char *clinic, rg_time due, int limit,
                          int (*fn)(void *ud, const char *clinic, const char *patient), void *ud)
{
    return st->ops->due_patients(st->b, clinic, due, limit, fn, ud);
}

int rg_store_next_wake(rg_store *st, rg_time *out)
{
    return st->ops->next_wake(st->b, out);
}

int rg_store_each_open_alert(rg_store *st, const char *clinic, const char *patient,
                             int (*fn)(void *ud, int64_t alert_id, const rg_transition *t),
                             void *ud)
{
    return st->ops->each_open_alert(st->b, clinic, patient, fn, ud);
}

int rg_store_transition(rg_store *st, rg_transition *t, int64_t *alert_id)
{
    return st->ops->transition(st->b, t, alert_id);
}

int rg_store_each_transition(rg_store *st, int64_t after, int by_time,
                             int (*fn)(void *ud, const rg_transition *t), void *ud)
{
    return st->ops->each_transition(st->b, after, by_time, fn, ud);
}

int rg_store_clinic_transitions(rg_store *st, const char *clinic, int64_t after_cseq, int limit,
                                int (*fn)(void *ud, const rg_transition *t), void *ud)
{
    return st->ops->clinic_transitions(st->b, clinic, after_cseq, limit, fn, ud);
}

int rg_store_alert_action(rg_store *st, const char *clinic, const char *key, const char *action,
                          const char *who, const char *note, rg_time until, rg_time at)
{
    return st->ops->alert_action(st->b, clinic, key, action, who, note, until, at);
}

int rg_store_each_action(rg_store *st, const char *clinic, const char *key,
                         int (*fn)(void *ud, const rg_alert_action *a), void *ud)
{
    return st->ops->each_action(st->b, clinic, key, fn, ud);
}

int rg_store_next_snooze(rg_store *st, rg_time *out)
{
    return st->ops->next_snooze(st->b, out);
}

int rg_store_next_due(rg_store *st, const char *const *skip, int nskip, rg_time *wake,
                      rg_time *snooze)
{
    return st->ops->next_due(st->b, skip, nskip, wake, snooze);
}

int rg_store_each_due_snooze(rg_store *st, rg_time now,
                             int (*fn)(void *ud, const char *clinic, const char *key,
                                       const char *patient),
                             void *ud, int *count)
{
    return st->ops->each_due_snooze(st->b, now, fn, ud, count);
}

int rg_store_wake_clinic(rg_store *st, const char *clinic, rg_time at)
{
    return st->ops->wake_clinic(st->b, clinic, at);
}

int rg_store_wake_failing(rg_store *st, const char *clinic, rg_time at)
{
    return st->ops->wake_failing(st->b, clinic, at);
}

int rg_store_get_event(rg_store *st, const char *clinic, const char *id,
                       int (*fn)(void *ud, const rg_stored_event *e), void *ud)
{
    return st->ops->get_event(st->b, clinic, id, fn, ud);
}

int rg_store_each_version(rg_store *st, const char *clinic, const char *id,
                          int (*fn)(void *ud, const rg_stored_event *e), void *ud)
{
    return st->ops->each_version(st->b, clinic, id, fn, ud);
}

int rg_store_each_correction(rg_store *st, const char *clinic, const char *patient,
                             rg_time after, rg_time upto,
                             int (*fn)(void *ud, const rg_stored_event *c,
                                       const rg_stored_event *replaced),
                             void *ud)
{
    return st->ops->each_correction(st->b, clinic, patient, after, upto, fn, ud);
}

int rg_store_event_rows(rg_store *st, const char *after_clinic, const char *after_patient,
                        rg_time after_at, int64_t after_seq, int limit,
                        int (*fn)(void *ud, const rg_event_row *r), void *ud)
{
    return st->ops->event_rows(st->b, after_clinic, after_patient, after_at, after_seq, limit, fn,
                               ud);
}

int rg_store_event_rows_of(rg_store *st, const char *clinic, const char *id,
                           int (*fn)(void *ud, const rg_event_row *r), void *ud)
{
    return st->ops->event_rows_of(st->b, clinic, id, fn, ud);
}

int rg_store_key_transitions(rg_store *st, const char *clinic, const char *key,
                             int (*fn)(void *ud, const rg_transition *t), void *ud)
{
    return st->ops->key_transitions(st->b, clinic, key, fn, ud);
}

int rg_store_key_clinics(rg_store *st, const char *key,
                         int (*fn)(void *ud, const char *clinic), void *ud)
{
    return st->ops->key_clinics(st->b, key, fn, ud);
}

int rg_store_webhook_get(rg_store *st, const char *clinic, int64_t *delivered, int *attempts)
{
    return st->ops->webhook_get(st->b, clinic, delivered, attempts);
}

int rg_store_webhook_delivered(rg_store *st, const char *clinic, int64_t cseq)
{
    return st->ops->webhook_delivered(st->b, clinic, cseq);
}

int rg_store_webhook_failed(rg_store *st, const char *clinic, const char *error)
{
    return st->ops->webhook_failed(st->b, clinic, error);
}

int rg_store_webhook_next(rg_store *st, const char *clinic, rg_time now,
                          int (*fn)(void *ud, const rg_transition *t), void *ud, rg_time *wait)
{
    return st->ops->webhook_next(st->b, clinic, now, fn, ud, wait);
}

int rg_store_webhook_sent(rg_store *st, const char *clinic, int64_t cseq)
{
    return st->ops->webhook_sent(st->b, clinic, cseq);
}

int rg_store_last_cseq(rg_store *st, const char *clinic, int64_t *out)
{
    return st->ops->last_cseq(st->b, clinic, out);
}

int rg_store_open_by_severity(rg_store *st, const char *clinic,
                              int (*fn)(void *ud, const char *clinic, const char *severity,
                                        int64_t n),
                              void *ud)
{
    return st->ops->open_by_severity(st->b, clinic, fn, ud);
}

int rg_store_eval_error(rg_store *st, const char *clinic, const char *patient,
                        const char *protocol, const char *rule, rg_time at, const char *msg)
{
    return st->ops->eval_error(st->b, clinic, patient, protocol, rule, at, msg);
}

int rg_store_rule_failing(rg_store *st, const char *clinic, const char *patient,
                          const char *protocol, const char *rule, rg_time at, const char *msg,
                          int64_t *before, int64_t *after, rg_time *since)
{
    return st->ops->rule_failing(st->b, clinic, patient, protocol, rule, at, msg, before, after,
                                 since);
}

int rg_store_each_failing(rg_store *st, const char *clinic, const char *patient,
                          int (*fn)(void *ud, const char *protocol, const char *rule), void *ud)
{
    return st->ops->each_failing(st->b, clinic, patient, fn, ud);
}

int rg_store_failing_summary(rg_store *st,
                             int (*fn)(void *ud, const char *clinic, const char *protocol,
                                       const char *rule, int64_t patients, rg_time since,
                                       const char *message),
                             void *ud)
{
    return st->ops->failing_summary(st->b, fn, ud);
}

int rg_store_protocol_loaded(rg_store *st, const char *clinic, const char *protocol,
                             const char *version, const char *file, const char *hash)
{
    return st->ops->protocol_loaded(st->b, clinic, protocol, version, file, hash);
}

int rg_store_audit_chain(rg_store *st, int lock, rg_audit_chain *c)
{
    return st->ops->audit_chain(st->b, lock, c);
}

int rg_store_audit_insert(rg_store *st, const rg_audit_entry *e)
{
    return st->ops->audit_insert(st->b, e);
}

int rg_store_audit_each(rg_store *st, const rg_audit_filter *f,
                        int (*fn)(void *ud, const rg_audit_entry *e), void *ud)
{
    return st->ops->audit_each(st->b, f, fn, ud);
}

int rg_store_audit_archive(rg_store *st, rg_time before, int64_t *n)
{
    return st->ops->audit_archive(st->b, before, n);
}

int rg_store_protoset_add(rg_store *st, const rg_protoset *v, const char *const *paths,
                          const char *const *contents, const size_t *lens, int nfiles)
{
    return st->ops->protoset_add(st->b, v, paths, contents, lens, nfiles);
}

int rg_store_protoset_each(rg_store *st, const char *clinic,
                           int (*fn)(void *ud, const rg_protoset *v), void *ud)
{
    return st->ops->protoset_each(st->b, clinic, fn, ud);
}

int rg_store_protoset_files(rg_store *st, const char *clinic, const char *id,
                            int (*fn)(void *ud, const char *path, const char *content,
                                      size_t len),
                            void *ud)
{
    return st->ops->protoset_files(st->b, clinic, id, fn, ud);
}

int rg_store_protoset_update(rg_store *st, const rg_protoset *v)
{
    return st->ops->protoset_update(st->b, v);
}

int rg_store_protoset_log(rg_store *st, const char *clinic, const char *id, const char *action,
                          const char *by, rg_time at, rg_time effective)
{
    return st->ops->protoset_log(st->b, clinic, id, action, by, at, effective);
}

int rg_store_protoset_each_log(rg_store *st, const char *clinic, const char *id,
                               int (*fn)(void *ud, const char *id, const char *action,
                                         const char *by, rg_time at, rg_time effective),
                               void *ud)
{
    return st->ops->protoset_each_log(st->b, clinic, id, fn, ud);
}

int rg_store_each_event_body(rg_store *st, const char *clinic,
                             int (*fn)(void *ud, const char *body, size_t len), void *ud)
{
    return st->ops->each_event_body(st->b, clinic, fn, ud);
}

int rg_store_each_event_body_after(rg_store *st, const char *clinic, int64_t after,
                                   int (*fn)(void *ud, int64_t seq, const char *body,
                                             size_t len),
                                   void *ud)
{
    return st->ops->each_event_body_after(st->b, clinic, after, fn, ud);
}

int rg_store_shadow_put(rg_store *st, const char *set, const rg_transition *t)
{
    return st->ops->shadow_put(st->b, set, t);
}

int rg_store_shadow_each(rg_store *st, const char *clinic, const char *set, rg_time since,
                         int (*fn)(void *ud, const rg_transition *t), void *ud)
{
    return st->ops->shadow_each(st->b, clinic, set, since, fn, ud);
}

int rg_store_lease(rg_store *st, const char *clinic, int *held)
{
    return st->ops->lease(st->b, clinic, held);
}

int rg_store_unlease(rg_store *st, const char *clinic)
{
    return st->ops->unlease(st->b, clinic);
}

void rg_store_lease_only(rg_store *st, int on)
{
    st->ops->lease_only(st->b, on);
}

int rg_store_hold(rg_store *st, int alone, int *ok)
{
    return st->ops->hold(st->b, alone, ok);
}

int rg_store_due_count(rg_store *st, const char *clinic, rg_time now, int max, int *n)
{
    *n = 0;
    return st->ops->due_count(st->b, clinic, now, max, n);
}

int rg_store_prefetch(rg_store *st, const char *clinic, const char *const *patients,
                      const int64_t *after, int n)
{
    return st->ops->prefetch(st->b, clinic, patients, after, n);
}

void rg_store_prefetch_end(rg_store *st)
{
    st->ops->prefetch_end(st->b);
}

void rg_store_defer_writes(rg_store *st, int on)
{
    st->ops->defer_writes(st->b, on);
}

/* (process-wide: the sum over every backend's counters) */
void rg_store_db_counts(uint64_t *statements, uint64_t *round_trips)
{
    *statements = *round_trips = 0;
    for (size_t i = 0; i < RG__NBACKENDS; i++) {
        uint64_t s = 0, t = 0;
        rg__backends[i]->db_counts(&s, &t);
        *statements += s;
        *round_trips += t;
    }
}
