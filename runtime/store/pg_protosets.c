/*
 * pg_protosets.c - protocol versions and shadow feeds in the PostgreSQL
 * store: protosets.c's functions (store.h, "protocol versions") over the
 * tables of pg_sql.c's steps 10 -> 11 and 11 -> 12, with the same
 * contracts. Versions change a few times a day, by hand, so their
 * statements are not prepared (rg_pg_query); the shadow's run with each
 * evaluation job of a shadowed clinic, a handful of rows at a time.
 */
#include "store/pg.h"

#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Up to 12 parameters as text (NULL: SQL NULL), or one as bytes. */
typedef struct rg__params {
    const char *v[12];
    int len[12], fmt[12], n;
    char num[12][24];
} rg__params;

static void rg__s(rg__params *p, const char *s)
{
    p->fmt[p->n] = 0;
    p->len[p->n] = 0;
    p->v[p->n++] = s;
}

static void rg__i(rg__params *p, int64_t v)
{
    snprintf(p->num[p->n], sizeof p->num[0], "%lld", (long long)v);
    rg__s(p, p->num[p->n]);
}

static void rg__t(rg__params *p, rg_time t)
{
    if (t == RG_TIME_NONE)
        rg__s(p, NULL);
    else
        rg__i(p, t);
}

static PGresult *rg__q(rg_pg *pg, const char *sql, const rg__params *p, int *constraint)
{
    return rg_pg_query(pg, sql, p->n, p->v, p->len, p->fmt, constraint);
}

static int rg__do(rg_pg *pg, const char *sql, const rg__params *p, int *constraint)
{
    PGresult *r = rg__q(pg, sql, p, constraint);
    PQclear(r);
    return r ? RG_OK : constraint && *constraint ? RG_ECONFLICT : RG_EDB;
}

static int64_t rg__int(const PGresult *r, int row, int col)
{
    return strtoll(PQgetvalue(r, row, col), NULL, 10);
}

static rg_time rg__time(const PGresult *r, int row, int col)
{
    return PQgetisnull(r, row, col) ? RG_TIME_NONE : rg__int(r, row, col);
}

static const char *rg__text(const PGresult *r, int row, int col)
{
    return PQgetisnull(r, row, col) ? NULL : PQgetvalue(r, row, col);
}

int rg_pg_protoset_add(rg_pg *pg, const rg_protoset *v, const char *const *paths,
                       const char *const *contents, const size_t *lens, int nfiles)
{
    rg__params p = {0};
    int constraint = 0;
    rg__s(&p, v->clinic);
    rg__s(&p, v->id);
    rg__s(&p, v->proposed_by);
    rg__i(&p, v->proposed_at);
    rg__s(&p, v->message ? v->message : "");
    int rc = rg__do(pg, "INSERT INTO protocol_sets(clinic, id, n, state, proposed_by,"
                        " proposed_at, message) VALUES($1, $2, 1 + (SELECT count(*)"
                        " FROM protocol_sets WHERE clinic = $1), 'proposed', $3, $4, $5)",
                    &p, &constraint);
    for (int i = 0; i < nfiles && rc == RG_OK; i++) {
        rg__params f = {0};
        rg__s(&f, v->clinic);
        rg__s(&f, v->id);
        rg__s(&f, paths[i]);
        f.fmt[f.n] = 1; /* bytea, as it is */
        f.len[f.n] = (int)lens[i];
        f.v[f.n++] = lens[i] ? contents[i] : "";
        rc = rg__do(pg, "INSERT INTO protocol_set_files(clinic, id, path, content)"
                        " VALUES($1, $2, $3, $4)", &f, &constraint);
        if (rc == RG_ECONFLICT) /* one path twice: the caller's list is wrong */
            rc = RG_EINVAL;
    }
    return rc;
}

int rg_pg_protoset_each(rg_pg *pg, const char *clinic,
                        int (*fn)(void *ud, const rg_protoset *v), void *ud)
{
    rg__params p = {0};
    rg__s(&p, clinic);
    PGresult *r = rg__q(pg, "SELECT clinic, id, n, state, proposed_by, proposed_at, message,"
                            " approved_by, approved_at, active_from FROM protocol_sets"
                            " WHERE clinic = $1 ORDER BY n", &p, NULL);
    if (!r)
        return RG_EDB;
    int frc = 0;
    for (int i = 0; i < PQntuples(r) && !frc; i++) {
        rg_protoset v = {.clinic = rg__text(r, i, 0), .id = rg__text(r, i, 1),
                         .n = rg__int(r, i, 2), .state = rg__text(r, i, 3),
                         .proposed_by = rg__text(r, i, 4), .proposed_at = rg__time(r, i, 5),
                         .message = rg__text(r, i, 6), .approved_by = rg__text(r, i, 7),
                         .approved_at = rg__time(r, i, 8), .active_from = rg__time(r, i, 9)};
        frc = fn(ud, &v);
    }
    PQclear(r);
    return frc;
}

int rg_pg_protoset_files(rg_pg *pg, const char *clinic, const char *id,
                         int (*fn)(void *ud, const char *path, const char *content, size_t len),
                         void *ud)
{
    rg__params p = {0};
    rg__s(&p, clinic);
    rg__s(&p, id);
    PGresult *r = rg__q(pg, "SELECT path, content FROM protocol_set_files"
                            " WHERE clinic = $1 AND id = $2 ORDER BY path", &p, NULL);
    if (!r)
        return RG_EDB;
    int frc = 0;
    for (int i = 0; i < PQntuples(r) && !frc; i++) {
        size_t len = 0;
        unsigned char *bytes = PQunescapeBytea((const unsigned char *)PQgetvalue(r, i, 1), &len);
        if (!bytes) {
            frc = RG_ENOMEM;
            break;
        }
        /* (fn copies: rg_gov_add; the bytes are not NUL-terminated) */
        frc = fn(ud, rg__text(r, i, 0), (const char *)bytes, len);
        PQfreemem(bytes);
    }
    PQclear(r);
    return frc;
}

int rg_pg_protoset_update(rg_pg *pg, const rg_protoset *v)
{
    rg__params p = {0};
    rg__s(&p, v->clinic);
    rg__s(&p, v->id);
    rg__s(&p, v->state);
    rg__s(&p, v->approved_by);
    rg__t(&p, v->approved_at);
    rg__t(&p, v->active_from);
    return rg__do(pg, "UPDATE protocol_sets SET state = $3, approved_by = $4,"
                      " approved_at = $5, active_from = $6 WHERE clinic = $1 AND id = $2",
                  &p, NULL);
}

int rg_pg_protoset_log(rg_pg *pg, const char *clinic, const char *id, const char *action,
                       const char *by, rg_time at, rg_time effective)
{
    rg__params p = {0};
    rg__s(&p, clinic);
    rg__s(&p, id);
    rg__s(&p, action);
    rg__s(&p, by);
    rg__i(&p, at);
    rg__i(&p, effective);
    /* the clinic's workers hear of it (rg_store_changed) */
    return rg__do(pg, "WITH x AS (INSERT INTO protocol_set_log(clinic, id, action, by, at,"
                      " effective) VALUES($1, $2, $3, $4, $5, $6) RETURNING clinic)"
                      " SELECT pg_notify('regimen', clinic) FROM x", &p, NULL);
}

int rg_pg_protoset_each_log(rg_pg *pg, const char *clinic, const char *id,
                            int (*fn)(void *ud, const char *id, const char *action,
                                      const char *by, rg_time at, rg_time effective),
                            void *ud)
{
    rg__params p = {0};
    rg__s(&p, clinic);
    rg__s(&p, id);
    PGresult *r = rg__q(pg, "SELECT id, action, by, at, effective FROM protocol_set_log"
                            " WHERE clinic = $1 AND ($2::text IS NULL OR id = $2) ORDER BY seq",
                        &p, NULL);
    if (!r)
        return RG_EDB;
    int frc = 0;
    for (int i = 0; i < PQntuples(r) && !frc; i++)
        frc = fn(ud, rg__text(r, i, 0), rg__text(r, i, 1), rg__text(r, i, 2),
                 rg__int(r, i, 3), rg__int(r, i, 4));
    PQclear(r);
    return frc;
}

int rg_pg_each_event_body_after(rg_pg *pg, const char *clinic, int64_t after,
                                int (*fn)(void *ud, int64_t seq, const char *body, size_t len),
                                void *ud)
{
    /* a page at a time: a clinic's whole history is not one result */
    for (;;) {
        rg__params p = {0};
        rg__s(&p, clinic);
        rg__i(&p, after);
        /* the whole body (rg_body: schema 17 keeps the rest after its head) */
        PGresult *r = rg__q(pg, "SELECT seq, rg_body(body, id, clinic, patient, type, at,"
                                " utc_offset) FROM events WHERE clinic = $1 AND seq > $2"
                                " ORDER BY seq LIMIT 2000", &p, NULL);
        if (!r)
            return RG_EDB;
        int n = PQntuples(r), frc = 0;
        for (int i = 0; i < n && !frc; i++) {
            after = rg__int(r, i, 0);
            frc = fn(ud, after, PQgetvalue(r, i, 1), (size_t)PQgetlength(r, i, 1));
        }
        PQclear(r);
        if (frc || n < 2000)
            return frc;
    }
}

typedef struct rg__body {
    int (*fn)(void *ud, const char *body, size_t len);
    void *ud;
} rg__body;

static int rg__body_only(void *ud, int64_t seq, const char *body, size_t len)
{
    rg__body *b = ud;
    (void)seq;
    return b->fn(b->ud, body, len);
}

/* Every body: those after seq 0. */
int rg_pg_each_event_body(rg_pg *pg, const char *clinic,
                          int (*fn)(void *ud, const char *body, size_t len), void *ud)
{
    return rg_pg_each_event_body_after(pg, clinic, 0, rg__body_only, &(rg__body){fn, ud});
}

int rg_pg_shadow_put(rg_pg *pg, const char *set, const rg_transition *t)
{
    rg__params p = {0};
    rg__s(&p, t->clinic);
    rg__s(&p, set);
    rg__s(&p, t->patient);
    rg__s(&p, t->key);
    rg__s(&p, RG_TRANSITION_STATE(t));
    rg__i(&p, t->at);
    rg__t(&p, t->due);
    rg__s(&p, t->protocol ? t->protocol : "");
    rg__s(&p, t->version ? t->version : "");
    rg__s(&p, t->rule ? t->rule : "");
    rg__s(&p, t->severity ? t->severity : "");
    rg__s(&p, t->message ? t->message : "");
    return rg__do(pg, "INSERT INTO shadow_transitions(clinic, set_id, patient, key, state, at,"
                      " due, protocol, version, rule, severity, message) VALUES($1, $2, $3, $4,"
                      " $5, $6, $7, $8, $9, $10, $11, $12) ON CONFLICT DO NOTHING", &p, NULL);
}

int rg_pg_shadow_each(rg_pg *pg, const char *clinic, const char *set, rg_time since,
                      int (*fn)(void *ud, const rg_transition *t), void *ud)
{
    rg__params p = {0};
    rg__s(&p, clinic);
    rg__s(&p, set);
    rg__i(&p, since);
    PGresult *r = rg__q(pg, "SELECT seq, patient, key, state, at, due, protocol, version, rule,"
                            " severity, message FROM shadow_transitions WHERE clinic = $1"
                            " AND set_id = $2 AND at >= $3 ORDER BY at, seq", &p, NULL);
    if (!r)
        return RG_EDB;
    int frc = 0;
    for (int i = 0; i < PQntuples(r) && !frc; i++) {
        const char *state = rg__text(r, i, 3);
        rg_transition t = {.seq = rg__int(r, i, 0), .clinic = clinic,
                           .patient = rg__text(r, i, 1), .key = rg__text(r, i, 2),
                           .open = !strcmp(state, "open")       ? 1
                                   : !strcmp(state, "reraised") ? RG_TRANSITION_RERAISED
                                                                : 0,
                           .at = rg__int(r, i, 4), .due = rg__time(r, i, 5),
                           .protocol = rg__text(r, i, 6), .version = rg__text(r, i, 7),
                           .rule = rg__text(r, i, 8), .severity = rg__text(r, i, 9),
                           .message = rg__text(r, i, 10)};
        t.notify_at = t.at;
        frc = fn(ud, &t);
    }
    PQclear(r);
    return frc;
}
