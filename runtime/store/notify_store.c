/*
 * notify_store.c - the service's notifications in the store (store.h,
 * "notifications"; docs/notifications.md): notify_steps, each step the
 * planner laid out under its idempotency key with its due time and state,
 * and notify_log, every attempt (the notification history), both of schema
 * version 14.
 *
 * Each statement is written once, with $1, $2, ... parameters numbered in
 * the order they first appear, which both SQLite (named parameters take the
 * next index) and PostgreSQL read; a row reaches the callback as text
 * columns (NULL for SQL NULL). The statements run a few times per alert, so
 * they are prepared when called, through the backends' run_sql (backend.h):
 * this file knows no database client.
 */
#include "store/backend.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* One parameter: text (v, NULL for SQL NULL) or an integer. */
typedef rg_store_arg rg__arg;

#define RG__T(s) ((rg__arg){.v = (s)})
#define RG__I(n) ((rg__arg){.i = (n), .is_int = 1})
/* a time, NULL when none */
#define RG__TM(t) ((t) == RG_TIME_NONE ? RG__T(NULL) : RG__I(t))

/* Runs sql with args (backend.h's run_sql); fn(ud, cols, ncols) per row,
 * if any. *changed (when not NULL) gets the rows the statement changed. */
static int rg__q(rg_store *st, const char *sql, const rg__arg *args, int nargs,
                 int (*fn)(void *ud, const char *const *cols, int ncols), void *ud,
                 int64_t *changed)
{
    return rg_store_run_sql(st, sql, args, nargs, fn, ud, changed);
}

static int64_t rg__int(const char *s) { return s ? strtoll(s, NULL, 10) : 0; }
static rg_time rg__tm(const char *s) { return s ? strtoll(s, NULL, 10) : RG_TIME_NONE; }

int rg_store_notify_plan(rg_store *st, const rg_notify_row *r, int *added)
{
    /* a new step is stored pending; one stored already changes only while
     * it is pending (an inhibition or a grouping seen since) */
    static const char sql[] =
        "INSERT INTO notify_steps(clinic, patient, key, opened, route, step, round, part, rule,"
        " receiver, on_call, due, reason, state, attempts, next_try)"
        " VALUES($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, 'pending', 0, $12)"
        " ON CONFLICT(clinic, key, opened, route, step, round, part) DO UPDATE SET"
        " reason = excluded.reason, on_call = excluded.on_call, receiver = excluded.receiver"
        " WHERE notify_steps.state = 'pending' AND notify_steps.attempts = 0";
    rg__arg a[] = {RG__T(r->clinic), RG__T(r->patient), RG__T(r->key), RG__I(r->opened),
                   RG__I(r->route), RG__I(r->step), RG__I(r->round), RG__I(r->part),
                   RG__T(r->rule), RG__T(r->receiver), RG__T(r->on_call), RG__I(r->due),
                   RG__T(r->reason)};
    int64_t n = 0;
    int rc = rg__q(st, sql, a, 13, NULL, NULL, &n);
    if (added)
        *added = n > 0;
    return rc;
}

typedef struct rg__rows {
    int (*fn)(void *ud, const rg_notify_row *r);
    void *ud;
} rg__rows;

#define RG__ROW_COLS                                                                        \
    "id, clinic, patient, key, opened, route, step, round, part, rule, receiver, on_call,"  \
    " due, reason, state, attempts, next_try"

static int rg__row(void *ud, const char *const *c, int nc)
{
    rg__rows *x = ud;
    (void)nc;
    rg_notify_row r = {.id = rg__int(c[0]), .clinic = c[1], .patient = c[2], .key = c[3],
                       .opened = rg__int(c[4]), .route = (int)rg__int(c[5]),
                       .step = (int)rg__int(c[6]), .round = (int)rg__int(c[7]),
                       .part = (int)rg__int(c[8]), .rule = c[9], .receiver = c[10],
                       .on_call = c[11], .due = rg__int(c[12]), .reason = c[13],
                       .state = c[14], .attempts = (int)rg__int(c[15]),
                       .next_try = rg__int(c[16])};
    return x->fn(x->ud, &r);
}

int rg_store_notify_due(rg_store *st, const char *clinic, rg_time now, int limit,
                        int (*fn)(void *ud, const rg_notify_row *r), void *ud)
{
    static const char sql[] =
        "SELECT " RG__ROW_COLS " FROM notify_steps WHERE clinic = $1 AND state = 'pending'"
        " AND next_try <= $2 AND (claimed_until IS NULL OR claimed_until < $2)"
        " ORDER BY patient, due, route, step, round, part, id LIMIT $3";
    rg__arg a[] = {RG__T(clinic), RG__I(now), RG__I(limit)};
    rg__rows x = {fn, ud};
    return rg__q(st, sql, a, 3, rg__row, &x, NULL);
}

int rg_store_notify_claim(rg_store *st, int64_t id, rg_time now, rg_time until, int *got)
{
    static const char sql[] =
        "UPDATE notify_steps SET claimed_until = $1 WHERE id = $2 AND state = 'pending'"
        " AND (claimed_until IS NULL OR claimed_until < $3)";
    rg__arg a[] = {RG__I(until), RG__I(id), RG__I(now)};
    int64_t n = 0;
    int rc = rg__q(st, sql, a, 3, NULL, NULL, &n);
    *got = rc == RG_OK && n == 1;
    return rc;
}

int rg_store_notify_set(rg_store *st, int64_t id, const char *state, int attempts,
                        rg_time next_try)
{
    static const char sql[] =
        "UPDATE notify_steps SET state = $1, attempts = $2, next_try = $3, claimed_until = NULL"
        " WHERE id = $4";
    rg__arg a[] = {RG__T(state), RG__I(attempts), RG__I(next_try), RG__I(id)};
    return rg__q(st, sql, a, 4, NULL, NULL, NULL);
}

int rg_store_notify_stop(rg_store *st, const char *clinic, const char *key, rg_time opened)
{
    rg__arg a[] = {RG__T(clinic), RG__T(key), RG__I(opened)};
    return rg__q(st, "UPDATE notify_steps SET state = 'stopped', claimed_until = NULL"
                     " WHERE clinic = $1 AND key = $2 AND opened = $3 AND state = 'pending'",
                 a, 3, NULL, NULL, NULL);
}

int rg_store_notify_unclaim_all(rg_store *st)
{
    return rg__q(st, "UPDATE notify_steps SET claimed_until = NULL WHERE state = 'pending'"
                     " AND claimed_until IS NOT NULL", NULL, 0, NULL, NULL, NULL);
}

static int rg__one_time(void *ud, const char *const *c, int nc)
{
    (void)nc;
    *(rg_time *)ud = rg__tm(c[0]);
    return RG_OK;
}

int rg_store_notify_next(rg_store *st, const char *clinic, rg_time *out)
{
    *out = RG_TIME_NONE;
    rg__arg a[] = {RG__T(clinic)};
    return rg__q(st, "SELECT min(next_try) FROM notify_steps WHERE clinic = $1"
                     " AND state = 'pending'", a, 1, rg__one_time, out, NULL);
}

int rg_store_notify_log(rg_store *st, const rg_notify_entry *e)
{
    static const char sql[] =
        "INSERT INTO notify_log(clinic, patient, key, opened, route, step, round, rule, receiver,"
        " kind, on_call, at, outcome, reason, alerts, attempt)"
        " VALUES($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)";
    rg__arg a[] = {RG__T(e->clinic),  RG__T(e->patient), RG__T(e->key),    RG__I(e->opened),
                   RG__I(e->route),   RG__I(e->step),    RG__I(e->round),  RG__T(e->rule),
                   RG__T(e->receiver), RG__T(e->kind),   RG__T(e->on_call), RG__I(e->at),
                   RG__T(e->outcome), RG__T(e->reason),  RG__I(e->alerts), RG__I(e->attempt)};
    return rg__q(st, sql, a, 16, NULL, NULL, NULL);
}

typedef struct rg__entries {
    int (*fn)(void *ud, const rg_notify_entry *e);
    void *ud;
} rg__entries;

static int rg__entry(void *ud, const char *const *c, int nc)
{
    rg__entries *x = ud;
    (void)nc;
    rg_notify_entry e = {.seq = rg__int(c[0]), .clinic = c[1], .patient = c[2], .key = c[3],
                         .opened = rg__int(c[4]), .route = (int)rg__int(c[5]),
                         .step = (int)rg__int(c[6]), .round = (int)rg__int(c[7]),
                         .rule = c[8], .receiver = c[9], .kind = c[10], .on_call = c[11],
                         .at = rg__int(c[12]), .outcome = c[13], .reason = c[14],
                         .alerts = (int)rg__int(c[15]), .attempt = (int)rg__int(c[16])};
    return x->fn(x->ud, &e);
}

int rg_store_notify_each_log(rg_store *st, const char *clinic, const char *patient,
                             const char *key, int (*fn)(void *ud, const rg_notify_entry *e),
                             void *ud)
{
#define RG__LOG_COLS                                                                        \
    "SELECT seq, clinic, patient, key, opened, route, step, round, rule, receiver, kind,"   \
    " on_call, at, outcome, reason, alerts, attempt FROM notify_log WHERE clinic = $1"
    rg__entries x = {fn, ud};
    rg__arg a[] = {RG__T(clinic), RG__T(key ? key : patient), RG__T(patient)};
    if (key && patient)
        return rg__q(st, RG__LOG_COLS " AND key = $2 AND patient = $3 ORDER BY seq", a, 3,
                     rg__entry, &x, NULL);
    if (key)
        return rg__q(st, RG__LOG_COLS " AND key = $2 ORDER BY seq", a, 2, rg__entry, &x, NULL);
    if (patient)
        return rg__q(st, RG__LOG_COLS " AND patient = $2 ORDER BY seq", a, 2, rg__entry, &x,
                     NULL);
    return rg__q(st, RG__LOG_COLS " ORDER BY seq", a, 1, rg__entry, &x, NULL);
#undef RG__LOG_COLS
}

typedef struct rg__counts {
    int (*fn)(void *ud, const char *clinic, const char *outcome, const char *kind, int64_t n);
    void *ud;
} rg__counts;

static int rg__count(void *ud, const char *const *c, int nc)
{
    rg__counts *x = ud;
    (void)nc;
    return x->fn(x->ud, c[0], c[1], c[2], rg__int(c[3]));
}

int rg_store_notify_counts(rg_store *st,
                           int (*fn)(void *ud, const char *clinic, const char *outcome,
                                     const char *kind, int64_t n),
                           void *ud)
{
    rg__counts x = {fn, ud};
    return rg__q(st, "SELECT clinic, outcome, kind, count(*) FROM notify_log"
                     " GROUP BY clinic, outcome, kind ORDER BY clinic, outcome, kind",
                 NULL, 0, rg__count, &x, NULL);
}
