/*
 * test_store_conformance.c - one suite, both store backends: every function
 * of store.h, through store.h only, against a real SQLite file (suite
 * conf_sqlite, always) and a real PostgreSQL database (suite conf_pg, when
 * RG_TEST_PG_URL names one: `make test-postgres` starts a throw-away
 * cluster with tests/pg/cluster.sh and sets it; without it those tests are
 * skipped, and say so). Each PostgreSQL test gets a schema of its own.
 *
 * Covered: idempotent and conflicting puts (one by one and in batches),
 * event order and reads, rejected lines with their bytes, scheduling and
 * paging, transitions and the gap-free per-clinic sequence (across
 * transactions and rollbacks), alerts and staff actions, snoozes, webhook
 * cursors, corrections (versions, duplicates, conflicts with their reason
 * and field, stale versions, the audit trail, the current version's
 * readers, batches), notify_at and webhook order with deliveries sent
 * ahead, ingest of a file, schema versions (reopen, newer refused, racing
 * first opens, a v5 PostgreSQL database upgraded), and the many-worker
 * parts: leases and notices.
 */
#include "core/digest.h"
#include "store/audit.h"
#include "store/ingest.h"
#include "store/pg_sql.h"
#include "store/store.h"
#include "store/store_sql.h"

#include "helpers.h"

#include <criterion/criterion.h>
#include <sqlite3.h>
#include <libpq-fe.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <poll.h>
#include <sys/wait.h>
#include <unistd.h>

static char dir[256], url[1200], schema[64];
static int backend_pg;
static rg_store *st;

/* A statement run outside the store, on the same database. */
static void raw_sql(const char *sql)
{
    if (backend_pg) {
        const char *base = getenv("RG_TEST_PG_URL");
        PGconn *c = PQconnectdb(url[0] ? url : base);
        cr_assert_eq(PQstatus(c), CONNECTION_OK, "%s", PQerrorMessage(c));
        PQclear(PQexec(c, "SET client_min_messages = warning"));
        PGresult *r = PQexec(c, sql);
        cr_assert(PQresultStatus(r) == PGRES_COMMAND_OK || PQresultStatus(r) == PGRES_TUPLES_OK,
                  "%s: %s", sql, PQresultErrorMessage(r));
        PQclear(r);
        PQfinish(c);
    } else {
        sqlite3 *db;
        cr_assert_eq(sqlite3_open(url, &db), SQLITE_OK);
        cr_assert_eq(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK, "%s: %s", sql,
                     sqlite3_errmsg(db));
        sqlite3_close(db);
    }
}

/* A count read outside the store, on the same database. */
static long long raw_int(const char *sql)
{
    long long v = -1;
    if (backend_pg) {
        const char *base = getenv("RG_TEST_PG_URL");
        PGconn *c = PQconnectdb(url[0] ? url : base);
        cr_assert_eq(PQstatus(c), CONNECTION_OK, "%s", PQerrorMessage(c));
        PGresult *r = PQexec(c, sql);
        cr_assert_eq(PQresultStatus(r), PGRES_TUPLES_OK, "%s: %s", sql, PQresultErrorMessage(r));
        v = atoll(PQgetvalue(r, 0, 0));
        PQclear(r);
        PQfinish(c);
    } else {
        sqlite3 *db;
        sqlite3_stmt *q;
        cr_assert_eq(sqlite3_open(url, &db), SQLITE_OK);
        cr_assert_eq(sqlite3_prepare_v2(db, sql, -1, &q, NULL), SQLITE_OK, "%s: %s", sql,
                     sqlite3_errmsg(db));
        cr_assert_eq(sqlite3_step(q), SQLITE_ROW);
        v = sqlite3_column_int64(q, 0);
        sqlite3_finalize(q);
        sqlite3_close(db);
    }
    return v;
}

static void open_store(void)
{
    char err[512] = "";
    int rc = rg_store_open(&st, url, NULL, err, sizeof err);
    cr_assert_eq(rc, RG_OK, "rg_store_open(%s): %d %s", url, rc, err);
}

static void setup_sqlite(void)
{
    rg_test_tmpdir(dir);
    snprintf(url, sizeof url, "%s/regimen.db", dir);
    open_store();
}

/* A schema of this test's own on the cluster's database. */
static void setup_pg(void)
{
    const char *base = getenv("RG_TEST_PG_URL");
    backend_pg = 1;
    if (!base || !*base)
        return;
    snprintf(schema, sizeof schema, "conf_%d", (int)getpid());
    url[0] = '\0';
    char sql[256];
    snprintf(sql, sizeof sql, "DROP SCHEMA IF EXISTS %s CASCADE; CREATE SCHEMA %s", schema,
             schema);
    raw_sql(sql);
    snprintf(url, sizeof url, "%s%soptions=-csearch_path%%3D%s", base,
             strchr(base, '?') ? "&" : "?", schema);
    open_store();
}

static void teardown(void)
{
    rg_store_close(st);
    st = NULL;
    if (backend_pg && url[0]) {
        char sql[256];
        snprintf(sql, sizeof sql, "DROP SCHEMA IF EXISTS %s CASCADE", schema);
        raw_sql(sql);
    }
    if (!backend_pg && dir[0])
        rg_test_rmdir(dir);
}

#define NO_PG_SKIP()                                                                        \
    do {                                                                                    \
        if (!getenv("RG_TEST_PG_URL") || !*getenv("RG_TEST_PG_URL"))                        \
            cr_skip_test("no PostgreSQL (RG_TEST_PG_URL): make test-postgres runs this"); \
    } while (0)

/* One test body, run against both backends. */
#define CONFORM(name)                                                                       \
    static void name##_body(void);                                                          \
    Test(conf_sqlite, name, .init = setup_sqlite, .fini = teardown, .timeout = 60)          \
    {                                                                                       \
        name##_body();                                                                      \
    }                                                                                       \
    Test(conf_pg, name, .init = setup_pg, .fini = teardown, .timeout = 60)                  \
    {                                                                                       \
        NO_PG_SKIP();                                                                       \
        name##_body();                                                                      \
    }                                                                                       \
    static void name##_body(void)

/* ---- helpers ------------------------------------------------------------ */

static rg_time T(const char *s)
{
    rg_time t;
    char err[128];
    cr_assert_eq(rg_time_parse(s, strlen(s), &t, NULL, err, sizeof err), RG_OK, "%s", err);
    return t;
}

static void ev_make(rg_event *ev, const char *clinic, const char *id, const char *patient,
                    const char *at, const char *data)
{
    char line[2048], field[RG_FIELD_MAX], err[256];
    snprintf(line, sizeof line,
             "{\"id\":\"%s\",\"clinic\":\"%s\",\"patient\":\"%s\",\"type\":\"vitals\","
             "\"at\":\"%s\"%s%s}",
             id, clinic, patient, at, data ? ",\"data\":" : "", data ? data : "");
    cr_assert_eq(rg_event_parse(ev, line, strlen(line), field, err, sizeof err), RG_OK,
                 "%s: %s", line, err);
}

static rg_put put(const char *clinic, const char *id, const char *patient, const char *at,
                  const char *data)
{
    rg_event ev;
    rg_put res = (rg_put)-1;
    ev_make(&ev, clinic, id, patient, at, data);
    int rc = rg_store_put_event(st, &ev, 1000, &res);
    rg_event_clear(&ev);
    cr_assert_eq(rc, RG_OK, "put %s/%s: %s", clinic, id, rg_store_errmsg(st));
    return res;
}

typedef struct got {
    int n;
    int64_t seq[64];
    char id[64][64], data[64][128];
    size_t nfields[64];
} got;

static int collect_event(void *ud, const rg_stored_event *e)
{
    got *g = ud;
    cr_assert_lt(g->n, 64);
    g->seq[g->n] = e->seq;
    g->nfields[g->n] = e->nfields;
    snprintf(g->id[g->n], sizeof g->id[0], "%s", e->id);
    snprintf(g->data[g->n++], sizeof g->data[0], "%s", e->data ? e->data : "-");
    return 0;
}

static rg_transition tr(int open, const char *clinic, const char *patient, const char *key,
                        rg_time at)
{
    rg_transition t = {.at = at, .due = at - RG_MS_HOUR, .open = open, .clinic = clinic,
                       .patient = patient, .key = key, .protocol = "ketamine", .version = "1.2",
                       .rule = "ket.monitor", .severity = open ? "warning" : "info",
                       .message = open ? "vitals overdue" : "vitals taken"};
    return t;
}

typedef struct trs {
    int n;
    int64_t seq[64], cseq[64], alert[64];
    char key[64][32], clinic[64][16], params[64][32], evidence[64][32];
    int open[64];
} trs;

static int collect_tr(void *ud, const rg_transition *t)
{
    trs *g = ud;
    cr_assert_lt(g->n, 64);
    g->seq[g->n] = t->seq;
    g->cseq[g->n] = t->cseq;
    g->open[g->n] = t->open;
    snprintf(g->key[g->n], sizeof g->key[0], "%s", t->key);
    snprintf(g->params[g->n], sizeof g->params[0], "%s", t->params ? t->params : "(null)");
    snprintf(g->evidence[g->n], sizeof g->evidence[0], "%s", t->evidence ? t->evidence : "(null)");
    snprintf(g->clinic[g->n++], sizeof g->clinic[0], "%s", t->clinic);
    return 0;
}

static int collect_open(void *ud, int64_t alert_id, const rg_transition *t)
{
    trs *g = ud;
    g->alert[g->n] = alert_id;
    return collect_tr(ud, t);
}

typedef struct names {
    int n;
    char v[64][2][32];
} names;

static int collect_pat(void *ud, const char *clinic, const char *patient)
{
    names *g = ud;
    cr_assert_lt(g->n, 64);
    snprintf(g->v[g->n][0], 32, "%s", clinic);
    snprintf(g->v[g->n++][1], 32, "%s", patient);
    return 0;
}

/* ---- events ------------------------------------------------------------- */

CONFORM(put_is_idempotent_and_conflicts_are_told)
{
    cr_assert_eq(put("north", "e1", "p1", "2026-03-02T10:00:00Z", "{\"a\":1,\"b\":2}"),
                 RG_PUT_STORED);
    cr_assert_eq(put("north", "e1", "p1", "2026-03-02T10:00:00Z", "{\"a\":1,\"b\":2}"),
                 RG_PUT_DUPLICATE);
    /* the same JSON value with its keys in another order is still the same */
    cr_assert_eq(put("north", "e1", "p1", "2026-03-02T10:00:00Z", "{\"b\":2,\"a\":1}"),
                 RG_PUT_DUPLICATE);
    cr_assert_eq(put("north", "e1", "p1", "2026-03-02T10:00:00Z", "{\"a\":2}"), RG_PUT_CONFLICT);
    cr_assert_eq(put("south", "e1", "p1", "2026-03-02T10:00:00Z", NULL), RG_PUT_STORED,
                 "ids are per clinic");
    got g = {0};
    cr_assert_eq(rg_store_each_event_data(st, "north", "p1", collect_event, &g), RG_OK);
    cr_assert_eq(g.n, 1);
    cr_assert_str_eq(g.data[0], "{\"a\":1,\"b\":2}", "a conflict overwrites nothing");
}

CONFORM(put_events_in_a_batch_as_one_by_one)
{
    rg_event ev[5];
    const rg_event *evs[5];
    rg_put res[5];
    int failed = -1;
    cr_assert_eq(put("north", "old", "p1", "2026-03-02T09:00:00Z", "{\"x\":1}"), RG_PUT_STORED);
    ev_make(&ev[0], "north", "b1", "p1", "2026-03-02T10:00:00Z", "{\"v\":\"q\\\"uote\\\\\"}");
    ev_make(&ev[1], "north", "b1", "p1", "2026-03-02T10:00:00Z", "{\"v\":\"q\\\"uote\\\\\"}");
    ev_make(&ev[2], "north", "b1", "p1", "2026-03-02T10:00:00Z", "{\"v\":\"other\"}");
    ev_make(&ev[3], "north", "old", "p1", "2026-03-02T09:00:00Z", "{\"x\":1}");
    ev_make(&ev[4], "south", "b2", "p9", "2026-03-02T08:00:00Z", NULL);
    for (int i = 0; i < 5; i++)
        evs[i] = &ev[i];
    cr_assert_eq(rg_store_begin(st), RG_OK);
    cr_assert_eq(rg_store_put_events(st, evs, 5, 2000, res, &failed), RG_OK, "%s",
                 rg_store_errmsg(st));
    cr_assert_eq(rg_store_commit(st), RG_OK);
    rg_put want[5] = {RG_PUT_STORED, RG_PUT_DUPLICATE, RG_PUT_CONFLICT, RG_PUT_DUPLICATE,
                      RG_PUT_STORED};
    for (int i = 0; i < 5; i++) {
        cr_assert_eq(res[i], want[i], "event %d: %d", i, res[i]);
        rg_event_clear(&ev[i]);
    }
    got g = {0};
    cr_assert_eq(rg_store_each_event_data(st, "north", "p1", collect_event, &g), RG_OK);
    cr_assert_eq(g.n, 2);
    cr_assert_str_eq(g.id[1], "b1");
    cr_assert_str_eq(g.data[1], "{\"v\":\"q\\\"uote\\\\\"}", "text kept byte for byte");
    cr_assert_gt(g.nfields[1], 0, "compiled data kept");
    cr_assert_gt(g.seq[1], g.seq[0], "a batch is numbered after what was stored");
    rg_patient_state ps;
    cr_assert_eq(rg_store_patient_get(st, "south", "p9", &ps), RG_OK);
    cr_assert_eq(ps.next_wake, T("2026-03-02T08:00:00Z"), "a batch schedules its patients");
}

CONFORM(events_read_back_in_at_then_seq_order)
{
    put("north", "c", "p1", "2026-03-02T12:00:00Z", NULL);
    put("north", "a", "p1", "2026-03-02T10:00:00Z", "{\"n\":1}");
    put("north", "b", "p1", "2026-03-02T10:00:00Z", NULL);
    put("north", "z", "p2", "2026-03-02T09:00:00Z", NULL);
    got g = {0};
    cr_assert_eq(rg_store_each_event(st, "north", "p1", collect_event, &g), RG_OK);
    cr_assert_eq(g.n, 3);
    cr_assert_str_eq(g.id[0], "a");
    cr_assert_str_eq(g.id[1], "b");
    cr_assert_str_eq(g.id[2], "c");
    cr_assert_str_eq(g.data[0], "-", "each_event carries no data text");
    cr_assert_gt(g.nfields[0], 0);
    got after = {0};
    /* stored c, a, b: after a's number comes b only */
    cr_assert_eq(rg_store_each_event_after(st, "north", "p1", g.seq[0], collect_event, &after),
                 RG_OK);
    cr_assert_eq(after.n, 1);
    cr_assert_str_eq(after.id[0], "b");
    got every = {0};
    cr_assert_eq(rg_store_each_event_after(st, "north", "p1", -1, collect_event, &every), RG_OK);
    cr_assert_eq(every.n, 3);
    got one = {0};
    cr_assert_eq(rg_store_get_event(st, "north", "a", collect_event, &one), RG_OK);
    cr_assert_str_eq(one.data[0], "{\"n\":1}");
    cr_assert_eq(rg_store_get_event(st, "north", "nope", collect_event, &one), RG_ENOTFOUND);
}

/* What a prefetch reads ahead answers as the reads themselves do, whatever
 * order the server sends its rows in (PostgreSQL: in no order asked; the
 * patients here stored in an order that is not strcmp's, events whose (at,
 * seq) order is not their seq's; SQLite reads without one) */
CONFORM(a_prefetch_answers_as_the_reads_do)
{
    put("north", "e1", "p3", "2026-03-02T12:00:00Z", NULL);
    put("north", "e2", "p3", "2026-03-02T10:00:00Z", NULL);
    put("north", "e3", "p13", "2026-03-02T11:00:00Z", NULL);
    put("north", "e4", "p13", "2026-03-02T09:00:00Z", "{\"n\":4}");
    put("north", "e5", "p2", "2026-03-02T08:00:00Z", NULL);
    put("south", "e6", "p3", "2026-03-02T07:00:00Z", NULL);
    const char *const pats[] = {"p3", "p13", "p9", "p2"};
    rg_patient_state want[4];
    got direct[4] = {{0}};
    int found[4];
    for (int i = 0; i < 4; i++) {
        found[i] = rg_store_patient_get(st, "north", pats[i], &want[i]);
        cr_assert_eq(rg_store_each_event_after(st, "north", pats[i], -1, collect_event,
                                               &direct[i]), RG_OK);
    }
    cr_assert_eq(found[2], RG_ENOTFOUND);
    cr_assert_eq(direct[0].n, 2);
    cr_assert_str_eq(direct[0].id[0], "e2", "10:00 first, stored second");
    int pre = rg_store_prefetch(st, "north", pats, NULL, 4);
    cr_assert_eq(pre, backend_pg ? 1 : 0, "%s", rg_store_errmsg(st));
    for (int i = 0; i < 4; i++) {
        rg_patient_state ps;
        cr_assert_eq(rg_store_patient_get(st, "north", pats[i], &ps), found[i], "%s", pats[i]);
        if (found[i] == RG_OK) {
            cr_assert_eq(ps.clock, want[i].clock);
            cr_assert_eq(ps.next_wake, want[i].next_wake, "%s", pats[i]);
            cr_assert_eq(ps.last_seq, want[i].last_seq);
            cr_assert_eq(ps.scheduled, want[i].scheduled);
        }
        got g = {0};
        cr_assert_eq(rg_store_each_event_after(st, "north", pats[i], -1, collect_event, &g),
                     RG_OK);
        cr_assert_eq(g.n, direct[i].n, "%s: %d events, %d read", pats[i], g.n, direct[i].n);
        for (int j = 0; j < g.n; j++) {
            cr_assert_str_eq(g.id[j], direct[i].id[j], "%s's event %d", pats[i], j);
            cr_assert_eq(g.seq[j], direct[i].seq[j]);
            cr_assert_eq(g.nfields[j], direct[i].nfields[j]);
        }
    }
    rg_store_prefetch_end(st);
}

CONFORM(rollback_undoes_events_and_their_schedule)
{
    uint64_t rb = rg_store_rollbacks(st);
    cr_assert_eq(rg_store_begin(st), RG_OK);
    put("north", "e1", "p1", "2026-03-02T10:00:00Z", NULL);
    rg_store_rollback(st);
    cr_assert_gt(rg_store_rollbacks(st), rb);
    got g = {0};
    cr_assert_eq(rg_store_each_event(st, "north", "p1", collect_event, &g), RG_OK);
    cr_assert_eq(g.n, 0);
    rg_patient_state ps;
    cr_assert_eq(rg_store_patient_get(st, "north", "p1", &ps), RG_ENOTFOUND);
    rg_time w;
    cr_assert_eq(rg_store_next_wake(st, &w), RG_OK);
    cr_assert_eq(w, RG_TIME_NONE);
    /* a commit keeps; a rollback with nothing open is harmless */
    cr_assert_eq(rg_store_begin(st), RG_OK);
    put("north", "e1", "p1", "2026-03-02T10:00:00Z", NULL);
    cr_assert_eq(rg_store_commit(st), RG_OK);
    rg_store_rollback(st);
    cr_assert_eq(rg_store_each_event(st, "north", "p1", collect_event, &g), RG_OK);
    cr_assert_eq(g.n, 1);
}

static int rej_n;
static char rej_raw[4][64], rej_field[4][RG_FIELD_MAX], rej_source[4][32], rej_reason[4][64];
static long rej_line[4];
static rg_time rej_received[4];
static int collect_rej(void *ud, const rg_rejected *r)
{
    (void)ud;
    cr_assert_lt(rej_n, 4);
    snprintf(rej_raw[rej_n], 64, "%s", r->raw);
    snprintf(rej_field[rej_n], RG_FIELD_MAX, "%s", r->field);
    snprintf(rej_source[rej_n], 32, "%s", r->source);
    snprintf(rej_reason[rej_n], 64, "%s", r->reason);
    rej_received[rej_n] = r->received;
    rej_line[rej_n++] = r->line;
    return 0;
}

CONFORM(rejected_lines_keep_line_field_reason_and_bytes)
{
    rg_time before = rg_now();
    cr_assert_eq(rg_store_reject(st, "a.jsonl", 7, "at", "not a time", "{\"at\":1}", 8), RG_OK);
    cr_assert_eq(rg_store_reject(st, "a.jsonl", 9, NULL, "empty", "", 0), RG_OK);
    cr_assert_eq(rg_store_reject(st, "a.jsonl", 11, "", "bytes", "\xff\xfe{", 3), RG_OK);
    rej_n = 0;
    cr_assert_eq(rg_store_each_rejected(st, collect_rej, NULL), RG_OK);
    cr_assert_eq(rej_n, 3);
    cr_assert_eq(rej_line[0], 7);
    cr_assert_str_eq(rej_field[0], "at");
    cr_assert_str_eq(rej_raw[0], "{\"at\":1}");
    cr_assert_str_eq(rej_raw[1], "");
    cr_assert_str_eq(rej_field[1], "");
    cr_assert_str_eq(rej_raw[2], "\xff\xfe{", "bytes that are not UTF-8 are kept as they are");
    cr_assert_str_eq(rej_source[0], "a.jsonl");
    cr_assert_str_eq(rej_reason[0], "not a time");
    cr_assert_geq(rej_received[0], before, "stamped when it was refused");
    cr_assert_leq(rej_received[0], rg_now());
}

/* ---- patients ----------------------------------------------------------- */

/* How the store's read of one clinic's due page (rg_store_due_patients with a
 * clinic) runs for clinic at due, limit, on a connection of its own: SQLite's
 * EXPLAIN QUERY PLAN, PostgreSQL's EXPLAIN ANALYZE of the prepared statement,
 * a line a row. */
static void clinic_due_plan(const char *clinic, rg_time due, int limit, char *plan, size_t size)
{
    plan[0] = '\0';
    if (backend_pg) {
        PGconn *c = PQconnectdb(url);
        cr_assert_eq(PQstatus(c), CONNECTION_OK, "%s", PQerrorMessage(c));
        char sql[1024];
        snprintf(sql, sizeof sql, "PREPARE due(bigint, bigint, text) AS %s", rg_pg_sql[P_CLINIC_DUE]);
        PGresult *r = PQexec(c, sql);
        cr_assert_eq(PQresultStatus(r), PGRES_COMMAND_OK, "%s", PQresultErrorMessage(r));
        PQclear(r);
        snprintf(sql, sizeof sql, "EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY OFF)"
                 " EXECUTE due(%lld, %d, '%s')", (long long)due, limit, clinic);
        r = PQexec(c, sql);
        cr_assert_eq(PQresultStatus(r), PGRES_TUPLES_OK, "%s", PQresultErrorMessage(r));
        for (int i = 0; i < PQntuples(r); i++) {
            size_t n = strlen(plan);
            snprintf(plan + n, size - n, "%s\n", PQgetvalue(r, i, 0));
        }
        PQclear(r);
        PQfinish(c);
        return;
    }
    sqlite3 *db;
    sqlite3_stmt *q;
    char sql[1024];
    cr_assert_eq(sqlite3_open(url, &db), SQLITE_OK);
    snprintf(sql, sizeof sql, "EXPLAIN QUERY PLAN %s", rg_store_sql[Q_CLINIC_DUE]);
    cr_assert_eq(sqlite3_prepare_v2(db, sql, -1, &q, NULL), SQLITE_OK, "%s", sqlite3_errmsg(db));
    while (sqlite3_step(q) == SQLITE_ROW) {
        size_t n = strlen(plan);
        snprintf(plan + n, size - n, "%s\n", (const char *)sqlite3_column_text(q, 3));
    }
    sqlite3_finalize(q);
    sqlite3_close(db);
}

/* The rows a PostgreSQL plan read and dropped (its "Rows Removed by
 * Filter" lines added up). */
static long rows_removed(const char *plan)
{
    long n = 0;
    for (const char *p = plan; (p = strstr(p, "Rows Removed by Filter: ")); p++)
        n += atol(p + strlen("Rows Removed by Filter: "));
    return n;
}

/* Schema 21's index, on either store (how many: 1 when there). */
static const char clinic_wake_index_pg[] = /* (the definition read of this schema's index
                                            * alone: other tests drop theirs meanwhile) */
    "SELECT count(*) FROM (SELECT c.oid FROM pg_class c JOIN pg_namespace n"
    " ON n.oid = c.relnamespace WHERE n.nspname = current_schema()"
    " AND c.relname = 'patients_by_clinic_wake' OFFSET 0) i"
    " WHERE pg_get_indexdef(i.oid) LIKE '%(clinic, next_wake) WHERE (next_wake IS NOT NULL)'";
static long long clinic_wake_index(void)
{
    return raw_int(backend_pg ? clinic_wake_index_pg
                              : "SELECT count(*) FROM sqlite_schema WHERE type = 'index'"
                                " AND name = 'patients_by_clinic_wake'"
                                " AND sql LIKE '%(clinic, next_wake) WHERE next_wake IS NOT NULL'");
}

/* A version 20 database (patients_by_wake alone) gets the index in place,
 * its patients unchanged, and a clinic's due page is read through it. */
CONFORM(a_v20_database_gets_the_clinic_wake_index)
{
    rg_time due = T("2026-03-05T00:00:00Z");
    const char *who[] = {"A", "a1", "B", "b1", "B", "b2"};
    const rg_time at[] = {due - 30, due - 10, due + 10};
    for (int i = 0; i < 3; i++) {
        rg_patient_state ps = {.clock = 0, .wake = RG_TIME_NONE, .next_wake = at[i]};
        cr_assert_eq(rg_store_patient_put(st, who[2 * i], who[2 * i + 1], &ps), RG_OK);
    }
    rg_store_close(st);
    st = NULL;
    raw_sql(backend_pg ? "DROP INDEX patients_by_clinic_wake; UPDATE schema_version SET version = 20"
                       : "DROP INDEX patients_by_clinic_wake; PRAGMA user_version = 20");
    cr_assert_eq(clinic_wake_index(), 0);
    open_store();
    cr_assert_eq(clinic_wake_index(), 1);
    cr_assert_eq(raw_int(backend_pg ? "SELECT version FROM schema_version" : "PRAGMA user_version"),
                 RG_SCHEMA_VERSION);
    cr_assert_eq(raw_int("SELECT count(*) FROM patients WHERE next_wake IS NOT NULL"), 3);
    if (!backend_pg) { /* (PostgreSQL scans a partition of three rows) */
        char plan[4096];
        clinic_due_plan("B", due, 10, plan, sizeof plan);
        cr_assert(strstr(plan, "INDEX patients_by_clinic_wake (clinic=? AND next_wake<?)"),
                  "plan:\n%s", plan);
    }
    names g = {0};
    cr_assert_eq(rg_store_due_patients(st, "B", due, 10, collect_pat, &g), 1);
    cr_assert_str_eq(g.v[0][1], "b1");
}

/* Tenant isolation (schema 21): clinic B's due page is B's earliest due, read
 * through the index on (clinic, next_wake), however many patients other
 * clinics have due before them; before ANALYZE and after. Through
 * patients_by_wake with the clinic filtered afterwards, B's page went through
 * the 3,000 of A0..A29 (on PostgreSQL those in B's hash partition: with 30
 * clinics in 8 partitions, some share it). */
CONFORM(one_clinics_due_page_skips_the_other_clinics_backlog)
{
    rg_time due = T("2026-03-05T00:00:00Z");
    char sql[512];
    snprintf(sql, sizeof sql,
             "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 3000)"
             " INSERT INTO patients(clinic, patient, next_wake) SELECT 'A' || (i %% 30),"
             " 'a' || i, %lld + i FROM n",
             (long long)(due - RG_MS_DAY));
    raw_sql(sql);
    for (int i = 0; i < 12; i++) { /* B: b00..b09 due, the later ones earlier; b10, b11 not */
        char p[16];
        snprintf(p, sizeof p, "b%02d", i);
        rg_patient_state ps = {.clock = 0, .wake = RG_TIME_NONE,
                               .next_wake = i < 10 ? due - 10 + (9 - i) : due + i};
        cr_assert_eq(rg_store_patient_put(st, "B", p, &ps), RG_OK, "%s", rg_store_errmsg(st));
    }
    for (int analyzed = 0; analyzed < 2; analyzed++) {
        char plan[4096];
        clinic_due_plan("B", due, 4, plan, sizeof plan);
        if (backend_pg) {
            cr_assert(strstr(plan, "Index Cond: ((clinic = 'B'::text) AND (next_wake <= "),
                      "analyzed %d, plan:\n%s", analyzed, plan);
            cr_assert_lt(rows_removed(plan), 10, "analyzed %d, plan:\n%s", analyzed, plan);
        } else {
            cr_assert(strstr(plan, "INDEX patients_by_clinic_wake (clinic=? AND next_wake<?)"),
                      "analyzed %d, plan:\n%s", analyzed, plan);
        }
        names g = {0};
        cr_assert_eq(rg_store_due_patients(st, "B", due, 4, collect_pat, &g), 4);
        static const char *const want[] = {"b06", "b07", "b08", "b09"};
        for (int i = 0; i < 4; i++) {
            cr_assert_str_eq(g.v[i][0], "B");
            cr_assert_str_eq(g.v[i][1], want[i], "row %d", i);
        }
        raw_sql("ANALYZE");
    }
    names a = {0};
    cr_assert_eq(rg_store_due_patients(st, "A1", due, 3, collect_pat, &a), 3);
    cr_assert_str_eq(a.v[0][1], "a1");
    cr_assert_str_eq(a.v[1][1], "a31");
    cr_assert_str_eq(a.v[2][1], "a61");
    /* every clinic's, through patients_by_wake: the earliest of all */
    names all = {0};
    cr_assert_eq(rg_store_due_patients(st, NULL, due, 2, collect_pat, &all), 2);
    cr_assert_str_eq(all.v[0][0], "A1");
    cr_assert_str_eq(all.v[1][0], "A2");
}

/* An evaluation's answer for north's patient, evaluated to `clock` through
 * event seq last_seq, nothing due, against the count of schedulings it read:
 * the state then stored. */
static rg_patient_state answer(const char *patient, rg_time clock, int64_t last_seq,
                               int64_t scheduled)
{
    rg_patient_state ps = {.clock = clock, .wake = RG_TIME_NONE, .next_wake = RG_TIME_NONE,
                           .last_seq = last_seq, .scheduled = scheduled};
    cr_assert_eq(rg_store_patient_put(st, "north", patient, &ps), RG_OK, "%s",
                 rg_store_errmsg(st));
    cr_assert_eq(rg_store_patient_get(st, "north", patient, &ps), RG_OK);
    return ps;
}

CONFORM(scheduling_follows_the_clock_and_paging_the_key_order)
{
    put("north", "e1", "p2", "2026-03-02T10:00:00Z", NULL);
    put("north", "e2", "p2", "2026-03-02T08:00:00Z", NULL);
    rg_patient_state ps;
    cr_assert_eq(rg_store_patient_get(st, "north", "p2", &ps), RG_OK);
    cr_assert_eq(ps.next_wake, T("2026-03-02T08:00:00Z"), "the earliest event");
    ps = answer("p2", T("2026-03-02T12:00:00Z"), 42, ps.scheduled);
    cr_assert_eq(ps.clock, T("2026-03-02T12:00:00Z"));
    cr_assert_eq(ps.wake, RG_TIME_NONE);
    cr_assert_eq(ps.next_wake, RG_TIME_NONE);
    cr_assert_eq(ps.last_seq, 42);
    /* a late event is due at once: at the patient's clock */
    put("north", "e3", "p2", "2026-03-02T09:00:00Z", NULL);
    cr_assert_eq(rg_store_patient_get(st, "north", "p2", &ps), RG_OK);
    cr_assert_eq(ps.next_wake, T("2026-03-02T12:00:00Z"));

    put("north", "e4", "p10", "2026-03-02T07:00:00Z", NULL);
    put("north", "e5", "P1", "2026-03-03T07:00:00Z", NULL);
    put("alpha", "e6", "p1", "2026-03-04T07:00:00Z", NULL);
    names all = {0};
    cr_assert_eq(rg_store_patients_page(st, "", "", RG_TIME_NONE, 10, collect_pat, &all), 4);
    const char *want[4][2] = {{"alpha", "p1"}, {"north", "P1"}, {"north", "p10"},
                              {"north", "p2"}};
    for (int i = 0; i < 4; i++) {
        cr_assert_str_eq(all.v[i][0], want[i][0], "row %d: byte order, as SQLite", i);
        cr_assert_str_eq(all.v[i][1], want[i][1], "row %d", i);
    }
    names page = {0};
    cr_assert_eq(rg_store_patients_page(st, "north", "P1", RG_TIME_NONE, 1, collect_pat, &page),
                 1);
    cr_assert_str_eq(page.v[0][1], "p10");
    names due = {0};
    cr_assert_eq(rg_store_patients_page(st, "", "", T("2026-03-02T12:00:00Z"), 10, collect_pat,
                                        &due), 2);
    cr_assert_str_eq(due.v[0][1], "p10");
    cr_assert_str_eq(due.v[1][1], "p2");
    names earliest = {0};
    cr_assert_eq(rg_store_due_patients(st, NULL, T("2026-03-05T00:00:00Z"), 2, collect_pat, &earliest),
                 2);
    cr_assert_str_eq(earliest.v[0][1], "p10", "the earliest due, in key order");
    cr_assert_str_eq(earliest.v[1][1], "p2");
    /* one clinic's (a service's wake-up job): only its patients; a name that
     * needs quoting in an array literal finds nothing, and no error */
    names mine = {0}, none = {0};
    int nmine = rg_store_due_patients(st, "north", T("2026-03-05T00:00:00Z"), 10, collect_pat,
                                      &mine);
    cr_assert_geq(nmine, 2);
    for (int i = 0; i < nmine; i++)
        cr_assert_str_eq(mine.v[i][0], "north", "row %d", i);
    cr_assert_eq(rg_store_due_patients(st, "no\"one\\", T("2026-03-05T00:00:00Z"), 10,
                                       collect_pat, &none), 0);
    rg_time w;
    cr_assert_eq(rg_store_next_wake(st, &w), RG_OK);
    cr_assert_eq(w, T("2026-03-02T07:00:00Z"));
    /* the service's timer leaves out the patients it is evaluating already */
    rg_time sn;
    const char *skip1[] = {"north/p10"}, *skip2[] = {"north/p2", "north/p10"},
               *other[] = {"alpha/p10", "north/p1"},
               *all4[] = {"alpha/p1", "north/P1", "north/p10", "north/p2"};
    cr_assert_eq(rg_store_next_due(st, NULL, 0, &w, &sn), RG_OK);
    cr_assert_eq(w, T("2026-03-02T07:00:00Z"));
    cr_assert_eq(rg_store_next_due(st, skip1, 1, &w, &sn), RG_OK);
    cr_assert_eq(w, T("2026-03-02T12:00:00Z"), "north/p10 left out");
    cr_assert_eq(rg_store_next_due(st, skip2, 2, &w, &sn), RG_OK);
    cr_assert_eq(w, T("2026-03-03T07:00:00Z"), "north/p2 and p10 left out");
    cr_assert_eq(rg_store_next_due(st, other, 2, &w, &sn), RG_OK);
    cr_assert_eq(w, T("2026-03-02T07:00:00Z"), "another clinic's p10, and p1 is not P1");
    cr_assert_eq(rg_store_next_due(st, all4, 4, &w, &sn), RG_OK);
    cr_assert_eq(w, RG_TIME_NONE, "every patient left out");
    /* a reload wakes every patient of the clinic whose clock is behind */
    cr_assert_eq(rg_store_wake_clinic(st, "north", T("2026-03-02T11:00:00Z")), RG_OK);
    cr_assert_eq(rg_store_patient_get(st, "north", "p2", &ps), RG_OK);
    cr_assert_eq(ps.next_wake, T("2026-03-02T12:00:00Z"), "its clock is ahead: untouched");
    cr_assert_eq(rg_store_patient_get(st, "north", "P1", &ps), RG_OK);
    cr_assert_eq(ps.next_wake, T("2026-03-02T11:00:00Z"));
    cr_assert_eq(ps.wake, T("2026-03-02T11:00:00Z"));
}

/* ---- transitions and alerts --------------------------------------------- */

CONFORM(transitions_open_resolve_and_refuse_what_does_not_fit)
{
    int64_t a1 = 0, a2 = 0, x = 0;
    rg_transition t1 = tr(1, "north", "p1", "k-a", T("2026-03-02T15:00:00Z"));
    t1.params = "{\"wait\":7200000}";
    t1.evidence = "[\"ev-1\"]";
    cr_assert_eq(rg_store_transition(st, &t1, &a1), RG_OK, "%s", rg_store_errmsg(st));
    cr_assert_eq(a1, t1.seq);
    int64_t cseq = -1;
    cr_assert_eq(rg_store_last_cseq(st, "north", &cseq), RG_OK);
    cr_assert_eq(cseq, 1);
    rg_transition t2 = tr(1, "north", "p1", "k-b", T("2026-03-02T13:00:00Z"));
    cr_assert_eq(rg_store_transition(st, &t2, &a2), RG_OK);
    cr_assert_gt(t2.seq, t1.seq);
    rg_transition again = tr(1, "north", "p1", "k-a", T("2026-03-02T16:00:00Z"));
    cr_assert_eq(rg_store_transition(st, &again, &x), RG_EDB, "k-a is open already");
    trs o = {0};
    cr_assert_eq(rg_store_each_open_alert(st, "north", "p1", collect_open, &o), RG_OK);
    cr_assert_eq(o.n, 2);
    cr_assert_eq(o.alert[0], a1);
    cr_assert_str_eq(o.key[1], "k-b");
    /* an open alert comes with its whole opening transition */
    cr_assert_eq(o.seq[0], t1.seq);
    cr_assert_str_eq(o.params[0], "{\"wait\":7200000}");
    cr_assert_str_eq(o.evidence[0], "[\"ev-1\"]");

    rg_transition r1 = tr(0, "north", "p1", "k-a", T("2026-03-02T14:00:00Z"));
    cr_assert_eq(rg_store_transition(st, &r1, &a1), RG_OK);
    cr_assert_eq(a1, t1.seq, "resolving keeps the alert id");
    cr_assert_eq(rg_store_last_cseq(st, "north", &cseq), RG_OK);
    cr_assert_eq(cseq, 3, "the clinic's sequence has no gap after a refusal");
    rg_transition r2 = tr(0, "north", "p1", "k-a", T("2026-03-02T14:30:00Z"));
    cr_assert_eq(rg_store_transition(st, &r2, &a1), RG_ENOTFOUND, "not open any more");
    /* nor is an alert that never was; the caller's rollback leaves no trace */
    int64_t none = 999999;
    cr_assert_eq(rg_store_begin(st), RG_OK);
    rg_transition r3 = tr(0, "north", "p1", "k-a", T("2026-03-02T14:40:00Z"));
    cr_assert_neq(rg_store_transition(st, &r3, &none), RG_OK);
    rg_store_rollback(st);

    trs bseq = {0}, btime = {0}, key = {0};
    cr_assert_eq(rg_store_each_transition(st, 0, 0, collect_tr, &bseq), RG_OK);
    cr_assert_eq(bseq.n, 3);
    cr_assert_str_eq(bseq.key[2], "k-a");
    cr_assert_eq(bseq.open[2], 0);
    cr_assert_eq(rg_store_each_transition(st, 0, 1, collect_tr, &btime), RG_OK);
    cr_assert_str_eq(btime.key[0], "k-b", "13:00 first");
    cr_assert_eq(rg_store_each_transition(st, t2.seq, 0, collect_tr, &key), RG_OK);
    cr_assert_eq(key.n, 1);
    trs kt = {0};
    cr_assert_eq(rg_store_key_transitions(st, "north", "k-a", collect_tr, &kt), RG_OK);
    cr_assert_eq(kt.n, 2);
    cr_assert_eq(kt.open[0], 1);
    cr_assert_eq(kt.open[1], 0);
}

/* Since schema 19 a patient's open alerts are read from open_alerts, not
 * from every opening the patient ever had: a long history of closed alerts
 * (and re-raises), other patients' and another clinic's open alerts, and
 * exactly the one open alert comes back, whole, by the plain read, the
 * prefetched read (PostgreSQL) and the count by severity. */
static int64_t sev_all;
static int on_sev_all(void *ud, const char *clinic, const char *severity, int64_t n)
{
    (void)ud;
    (void)severity;
    if (!strcmp(clinic, "north"))
        sev_all += n;
    return 0;
}

CONFORM(a_patient_with_many_closed_alerts_reads_only_the_open_one)
{
    char key[32];
    int64_t a = 0, id = 0;
    rg_time at = T("2026-03-02T08:00:00Z");
    for (int i = 0; i < 40; i++) {
        snprintf(key, sizeof key, "k-%d", i % 7); /* keys open and close again */
        rg_transition o = tr(1, "north", "p1", key, at += RG_MS_HOUR);
        cr_assert_eq(rg_store_transition(st, &o, &a), RG_OK, "%s", rg_store_errmsg(st));
        id = a;
        if (i % 5 == 0) {
            rg_transition r = tr(RG_TRANSITION_RERAISED, "north", "p1", key, at += 60000);
            cr_assert_eq(rg_store_transition(st, &r, &id), RG_OK, "%s", rg_store_errmsg(st));
        }
        rg_transition c = tr(0, "north", "p1", key, at += 60000);
        cr_assert_eq(rg_store_transition(st, &c, &id), RG_OK, "%s", rg_store_errmsg(st));
    }
    rg_transition open = tr(1, "north", "p1", "k-3", at += RG_MS_HOUR);
    open.params = "{\"wait\":60}";
    open.evidence = "[\"ev-9\"]";
    cr_assert_eq(rg_store_transition(st, &open, &a), RG_OK, "%s", rg_store_errmsg(st));
    rg_transition r = tr(RG_TRANSITION_RERAISED, "north", "p1", "k-3", at += 60000);
    id = a;
    cr_assert_eq(rg_store_transition(st, &r, &id), RG_OK, "%s", rg_store_errmsg(st));
    /* others' open alerts: another patient of the clinic, p1 of another clinic */
    rg_transition p2 = tr(1, "north", "p2", "k-p2", at += 60000);
    rg_transition s1 = tr(1, "south", "p1", "k-3", at += 60000);
    cr_assert_eq(rg_store_transition(st, &p2, &id), RG_OK);
    cr_assert_eq(rg_store_transition(st, &s1, &id), RG_OK);

    trs g = {0};
    cr_assert_eq(rg_store_each_open_alert(st, "north", "p1", collect_open, &g), RG_OK);
    cr_assert_eq(g.n, 1, "40 closed alerts, one open: %d read", g.n);
    cr_assert_eq(g.alert[0], a);
    cr_assert_eq(g.seq[0], open.seq);
    cr_assert_str_eq(g.key[0], "k-3");
    cr_assert_str_eq(g.clinic[0], "north");
    cr_assert_eq(g.open[0], 1);
    cr_assert_str_eq(g.params[0], "{\"wait\":60}");
    cr_assert_str_eq(g.evidence[0], "[\"ev-9\"]");
    memset(&g, 0, sizeof g);
    cr_assert_eq(rg_store_each_open_alert(st, "north", "p2", collect_open, &g), RG_OK);
    cr_assert_eq(g.n, 1);
    cr_assert_str_eq(g.key[0], "k-p2");

    /* the same answers read ahead (PostgreSQL: one round trip) */
    const char *const pats[] = {"p1", "p2"};
    int pre = rg_store_prefetch(st, "north", pats, NULL, 2);
    cr_assert_geq(pre, 0, "%s", rg_store_errmsg(st));
    memset(&g, 0, sizeof g);
    cr_assert_eq(rg_store_each_open_alert(st, "north", "p1", collect_open, &g), RG_OK);
    cr_assert_eq(g.n, 1);
    cr_assert_eq(g.alert[0], a);
    cr_assert_str_eq(g.params[0], "{\"wait\":60}");
    memset(&g, 0, sizeof g);
    cr_assert_eq(rg_store_each_open_alert(st, "north", "p2", collect_open, &g), RG_OK);
    cr_assert_eq(g.n, 1);
    cr_assert_str_eq(g.key[0], "k-p2");
    rg_store_prefetch_end(st);

    sev_all = 0;
    cr_assert_eq(rg_store_open_by_severity(st, "north", on_sev_all, NULL), RG_OK);
    cr_assert_eq(sev_all, 2, "north: p1's and p2's");
    sev_all = 0;
    cr_assert_eq(rg_store_open_by_severity(st, NULL, on_sev_all, NULL), RG_OK);
    cr_assert_eq(sev_all, 2, "every clinic's rows, north's counted");
}

typedef struct causes {
    int n;
    char v[8][64];
} causes;

static int collect_cause(void *ud, const rg_transition *t)
{
    causes *c = ud;
    cr_assert_lt(c->n, 8);
    snprintf(c->v[c->n++], sizeof c->v[0], "%s", t->cause ? t->cause : "(null)");
    return 0;
}

/* A transition's cause (schema 13) is kept and read back by every read of
 * transitions; one written without a cause reads as NULL (unknown). */
CONFORM(a_transitions_cause_round_trips)
{
    int64_t a = 0;
    rg_transition o = tr(1, "north", "p1", "k-c", T("2026-03-02T12:00:00Z"));
    o.cause = "key ehr-feed (integration)";
    cr_assert_eq(rg_store_transition(st, &o, &a), RG_OK, "%s", rg_store_errmsg(st));
    rg_transition r = tr(0, "north", "p1", "k-c", T("2026-03-02T13:00:00Z"));
    cr_assert_eq(rg_store_transition(st, &r, &a), RG_OK, "%s", rg_store_errmsg(st));
    causes k = {0}, c = {0}, e = {0};
    cr_assert_eq(rg_store_key_transitions(st, "north", "k-c", collect_cause, &k), RG_OK);
    cr_assert_eq(rg_store_clinic_transitions(st, "north", 0, 10, collect_cause, &c), RG_OK);
    cr_assert_eq(rg_store_each_transition(st, 0, 0, collect_cause, &e), RG_OK);
    causes *all[] = {&k, &c, &e};
    for (int i = 0; i < 3; i++) {
        cr_assert_eq(all[i]->n, 2);
        cr_assert_str_eq(all[i]->v[0], "key ehr-feed (integration)");
        cr_assert_str_eq(all[i]->v[1], "(null)");
    }
}

static int collect_clinic(void *ud, const char *clinic)
{
    trs *l = ud;
    snprintf(l->key[l->n++], sizeof l->key[0], "%s", clinic);
    return 0;
}

static int collect_alert_key(void *ud, const rg_alert_view *a)
{
    trs *l = ud;
    snprintf(l->key[l->n], sizeof l->key[0], "%s", a->patient);
    l->open[l->n++] = !strcmp(a->state, "open");
    return 0;
}

static rg_put put_line(const char *line, char *why, char *field);

static int take_row_digest(void *ud, const rg_event_row *r)
{
    snprintf(ud, 80, "%s", r->digest ? r->digest : "(none)");
    return 0;
}

/* Every stored version keeps the SHA-256 of its body, the same on both
 * stores; verify finds a changed body or a column that no longer says what
 * the body says, and names the event. */
CONFORM(verify_names_an_event_changed_behind_the_stores_back)
{
    cr_assert_eq(put("north", "e1", "p1", "2026-03-02T10:00:00Z", "{\"systolic\":171}"),
                 RG_PUT_STORED);
    cr_assert_eq(put("north", "e2", "p1", "2026-03-02T11:00:00Z", NULL), RG_PUT_STORED);
    /* keys in another order: this body is kept whole (since v17 the others
     * keep only what their columns do not say) */
    cr_assert_eq(put_line("{\"clinic\":\"south\",\"id\":\"e1\",\"patient\":\"p9\",\"type\":\"vitals\","
                          "\"at\":\"2026-03-02T12:00:00Z\",\"data\":{\"systolic\":90}}", NULL, NULL),
                 RG_PUT_STORED);
    cr_assert_eq(put_line("{\"clinic\":\"south\",\"id\":\"e3\",\"patient\":\"p9\",\"type\":\"vitals\","
                          "\"at\":\"2026-03-02T13:00:00Z\",\"data\":{\"systolic\":-300,\"n\":\"a\"}}",
                          NULL, NULL),
                 RG_PUT_STORED);
    char digest[80] = "", *text = NULL;
    size_t len = 0;
    cr_assert_eq(rg_store_event_rows_of(st, "north", "e2", take_row_digest, digest), RG_OK);
    rg_event ev;
    ev_make(&ev, "north", "e2", "p1", "2026-03-02T11:00:00Z", NULL);
    char want[RG_SHA256_HEX + 1];
    rg_sha256_hex(ev.body, strlen(ev.body), want);
    want[2 * RG_EVENT_DIGEST] = '\0'; /* what a row keeps of it since v18 */
    rg_event_clear(&ev);
    cr_assert_str_eq(digest, want, "the digest of the body as received");
    int64_t checked = 0, bad = 0;
    FILE *m = open_memstream(&text, &len);
    cr_assert_eq(rg_store_verify(st, m, &checked, &bad), RG_OK);
    fclose(m);
    cr_assert_eq(checked, 4);
    cr_assert_eq(bad, 0, "%s", text);
    free(text);
    /* its compiled fields (v18's varint tags) changed to another event's */
    raw_sql("UPDATE events SET fields = (SELECT fields FROM events WHERE clinic = 'south'"
            " AND id = 'e1') WHERE clinic = 'south' AND id = 'e3'");
    /* e2's body is its columns (v17): one changed is a changed body */
    raw_sql("UPDATE events SET at = at + 60000 WHERE id = 'e2'");
    /* (data is derived from the body since v12: a column that still is kept) */
    raw_sql("UPDATE events SET type = 'vitalz' WHERE clinic = 'south' AND id = 'e1'");
    m = open_memstream(&text, &len);
    cr_assert_eq(rg_store_verify(st, m, &checked, &bad), RG_OK);
    fclose(m);
    cr_assert_eq(checked, 4);
    cr_assert_eq(bad, 3, "%s", text);
    cr_assert(strstr(text, "event clinic south, id e3, seq "), "%s", text);
    cr_assert(strstr(text, "(version 1): its column fields does not say what its body says"), "%s",
              text);
    cr_assert(strstr(text, "event clinic north, id e2, seq 2 (version 1): its body does not "
                           "match its digest"), "%s", text);
    cr_assert(strstr(text, "event clinic south, id e1, seq "), "%s", text);
    cr_assert(strstr(text, "(version 1): its column type does not say what its body says"), "%s",
              text);
    cr_assert_null(strstr(text, "clinic north, id e1"), "%s", text);
    free(text);
}

static int collect_body(void *ud, const char *body, size_t len)
{
    char *all = ud;
    size_t n = strlen(all);
    cr_assert_lt(n + len + 2, 16384);
    memcpy(all + n, body, len);
    memcpy(all + n + len, "\n", 2);
    return 0;
}

/* The body as received comes back byte for byte, whatever part of it the
 * row keeps (v17: the rest after the head the columns say, "" when that
 * rest is the compiled fields printed back, or all of it): reals as sent,
 * escapes, unicode, offsets, milliseconds, keys in another order, spacing,
 * a correction; and each one's digest is the SHA-256 of that text. */
CONFORM(bodies_come_back_byte_for_byte)
{
    static const char *const lines[] = {
        "{\"id\":\"b1\",\"clinic\":\"north\",\"patient\":\"p1\",\"type\":\"vitals\",\"at\":\"2026-03-02T10:00:00Z\"}",
        "{\"id\":\"b2\",\"clinic\":\"north\",\"patient\":\"p1\",\"type\":\"vitals\",\"at\":\"2026-03-02T10:00:00Z\",\"data\":{\"a\":1,\"b\":\"x\"}}",
        "{\"id\":\"b3\",\"clinic\":\"north\",\"patient\":\"p1\",\"type\":\"vitals\",\"at\":\"2026-03-02T10:00:00Z\",\"data\":{\"b\":1,\"a\":2}}",
        "{\"id\":\"b4\",\"clinic\":\"north\",\"patient\":\"p1\",\"type\":\"infusion\",\"at\":\"2026-03-02T10:00:00.250+05:30\",\"data\":{\"dose\":0.50,\"r\":0.1,\"e\":1e5,\"big\":1.7976931348623157e308,\"n\":-0,\"t\":true,\"f\":false,\"z\":null}}",
        "{\"id\":\"b5\",\"clinic\":\"north\",\"patient\":\"p1\",\"type\":\"note\",\"at\":\"2026-03-02T10:00:00-08:00\",\"data\":{\"r\":0.1,\"s\":\"caf\u00e9 \\\"q\\\" \\n \\u00e9 \\/ \\u0001\",\"x\":[1,{\"y\":2}],\"y\":{}}}",
        "{\"id\":\"b\\\"6\",\"clinic\":\"north\",\"patient\":\"p\u00e9\\\\1\",\"type\":\"vitals\",\"at\":\"2026-03-02T10:00:00Z\",\"data\":{\"k\\u0002\":\"\\u00e9\"}}",
        "{\"id\":\"b7\",\"clinic\":\"north\",\"patient\":\"p1\",\"type\":\"vitals\",\"at\":\"2026-03-02T10:00:00+00:00\",\"data\":{\"a\":1}}",
        " { \"id\": \"b8\", \"clinic\": \"north\", \"patient\": \"p1\", \"type\": \"vitals\", \"at\": \"2026-03-02T10:00:00Z\" } ",
        "{\"id\":\"b9\",\"clinic\":\"north\",\"patient\":\"p1\",\"type\":\"vitals\",\"at\":\"2026-03-02T10:00:00Z\" ,\"data\":{}}",
        "{\"type\":\"vitals\",\"id\":\"b10\",\"clinic\":\"north\",\"patient\":\"p1\",\"at\":\"2026-03-02T10:00:00Z\"}",
        "{\"id\":\"b2\",\"clinic\":\"north\",\"patient\":\"p1\",\"type\":\"vitals\",\"at\":\"2026-03-02T10:00:00Z\",\"version\":2,\"corrected_at\":\"2026-03-02T11:00:00Z\",\"data\":{\"a\":2,\"b\":\"x\"}}",
        "{\"id\":\"b11\",\"clinic\":\"north\",\"patient\":\"p1\",\"type\":\"vitals\",\"at\":\"1969-12-31T23:59:59.999Z\",\"data\":{\"a\":9223372036854775807,\"b\":-9223372036854775808}}",
    };
    static char want[16384], back[16384];
    want[0] = back[0] = '\0';
    for (size_t i = 0; i < RG_COUNTOF(lines); i++) {
        rg_put res = put_line(lines[i], NULL, NULL);
        cr_assert(res == RG_PUT_STORED || res == RG_PUT_CORRECTED, "%s: %d", lines[i], res);
        strcat(want, lines[i]);
        strcat(want, "\n");
    }
    cr_assert_eq(rg_store_each_event_body(st, "north", collect_body, back), RG_OK);
    cr_assert_str_eq(back, want);
    /* each version as stored: its body and its digest, and verify agrees */
    for (size_t i = 0; i < RG_COUNTOF(lines); i++) {
        rg_event ev;
        char bad[RG_FIELD_MAX], err[256], row[80] = "", hex[RG_SHA256_HEX + 1];
        cr_assert_eq(rg_event_parse(&ev, lines[i], strlen(lines[i]), bad, err, sizeof err), RG_OK);
        if (strcmp(ev.id, "b2") || ev.version == 2) { /* the rows read end at b2's last */
            cr_assert_eq(rg_store_event_rows_of(st, "north", ev.id, take_row_digest, row), RG_OK);
            rg_sha256_hex(lines[i], strlen(lines[i]), hex);
            hex[2 * RG_EVENT_DIGEST] = '\0';
            cr_assert_str_eq(row, hex, "%s", lines[i]);
        }
        rg_event_clear(&ev);
    }
    int64_t checked = 0, bad = 0;
    char *text = NULL;
    size_t len = 0;
    FILE *m = open_memstream(&text, &len);
    cr_assert_eq(rg_store_verify(st, m, &checked, &bad), RG_OK);
    fclose(m);
    cr_assert_eq(checked, (int64_t)RG_COUNTOF(lines));
    cr_assert_eq(bad, 0, "%s", text);
    free(text);
    /* most rows keep less than their body; those with another head (b7's
     * "+00:00", b8's and b9's spaces, b10's key order) keep it all */
    cr_assert_eq(raw_int("SELECT count(*) FROM events WHERE body LIKE '{%' OR body LIKE ' %'"), 4);
    if (!backend_pg) /* "" for a rest that is the compiled fields printed back: b1, b2 at least */
        cr_assert_geq(raw_int("SELECT count(*) FROM events WHERE body = ''"), 2);
}

/* Tenancy: the same key text in two clinics; a read by key in one clinic
 * never returns the other's rows (explain and GET /v1/alerts/{key} read
 * through these). */
CONFORM(reads_by_key_see_only_their_clinic)
{
    int64_t a = 0, b = 0;
    rg_transition tn = tr(1, "north", "p1", "k-same", T("2026-03-02T12:00:00Z"));
    rg_transition ts = tr(1, "south", "p9", "k-same", T("2026-03-02T12:30:00Z"));
    cr_assert_eq(rg_store_transition(st, &tn, &a), RG_OK);
    cr_assert_eq(rg_store_transition(st, &ts, &b), RG_OK);
    rg_transition rs = tr(0, "south", "p9", "k-same", T("2026-03-02T13:00:00Z"));
    cr_assert_eq(rg_store_transition(st, &rs, &b), RG_OK);
    trs n = {0}, s = {0}, none = {0}, clinics = {0}, an = {0}, as = {0};
    cr_assert_eq(rg_store_key_transitions(st, "north", "k-same", collect_tr, &n), RG_OK);
    cr_assert_eq(n.n, 1, "north sees only its own opening");
    cr_assert_eq(rg_store_key_transitions(st, "south", "k-same", collect_tr, &s), RG_OK);
    cr_assert_eq(s.n, 2);
    cr_assert_eq(rg_store_key_transitions(st, "west", "k-same", collect_tr, &none), RG_OK);
    cr_assert_eq(none.n, 0);
    cr_assert_eq(rg_store_key_clinics(st, "k-same", collect_clinic, &clinics), RG_OK);
    cr_assert_eq(clinics.n, 2);
    cr_assert_str_eq(clinics.key[0], "north");
    cr_assert_str_eq(clinics.key[1], "south");
    cr_assert_eq(rg_store_each_alert(st, "north", NULL, NULL, "k-same", 10, collect_alert_key, &an),
                 RG_OK);
    cr_assert_eq(an.n, 1);
    cr_assert_str_eq(an.key[0], "p1");
    cr_assert_eq(an.open[0], 1, "north's alert is open (south's resolution is not its)");
    cr_assert_eq(rg_store_each_alert(st, "south", NULL, "resolved", "k-same", 10,
                                     collect_alert_key, &as), RG_OK);
    cr_assert_eq(as.n, 1);
    cr_assert_str_eq(as.key[0], "p9");
}

CONFORM(each_clinic_sequence_is_gap_free_across_transactions_and_rollbacks)
{
    int64_t id = 0, last = -1, want[6] = {1, 1, 2, 2, 2, 3};
    char k[32];
    for (int i = 0; i < 6; i++) {
        cr_assert_eq(rg_store_begin(st), RG_OK);
        snprintf(k, sizeof k, "k-%d", i);
        rg_transition t = tr(1, i % 2 ? "south" : "north", "p1", k, T("2026-03-02T10:00:00Z"));
        cr_assert_eq(rg_store_transition(st, &t, &id), RG_OK, "%s", rg_store_errmsg(st));
        cr_assert_eq(rg_store_last_cseq(st, t.clinic, &last), RG_OK);
        cr_assert_eq(last, want[i], "transition %d", i);
        if (i == 2)
            rg_store_rollback(st); /* north's second one: its number is given again */
        else
            cr_assert_eq(rg_store_commit(st), RG_OK);
    }
    cr_assert_eq(rg_store_last_cseq(st, "north", &last), RG_OK);
    cr_assert_eq(last, 2);
    cr_assert_eq(rg_store_last_cseq(st, "south", &last), RG_OK);
    cr_assert_eq(last, 3);
    cr_assert_eq(rg_store_last_cseq(st, "west", &last), RG_OK);
    cr_assert_eq(last, 0);
    trs feed = {0};
    cr_assert_eq(rg_store_clinic_transitions(st, "south", 0, 100, collect_tr, &feed), RG_OK);
    cr_assert_eq(feed.n, 3);
    for (int i = 0; i < 3; i++)
        cr_assert_eq(feed.cseq[i], i + 1);
    trs page = {0};
    cr_assert_eq(rg_store_clinic_transitions(st, "south", 1, 1, collect_tr, &page), RG_OK);
    cr_assert_eq(page.n, 1);
    cr_assert_eq(page.cseq[0], 2);
    trs none = {0};
    cr_assert_eq(rg_store_clinic_transitions(st, "west", 0, 100, collect_tr, &none), RG_OK);
    cr_assert_eq(none.n, 0);
}

static int n_alerts;
static char alert_state[8][16], alert_acked[8][16];
static rg_time alert_snooze[8];
static int collect_alert(void *ud, const rg_alert_view *a)
{
    (void)ud;
    snprintf(alert_state[n_alerts], 16, "%s", a->state);
    snprintf(alert_acked[n_alerts], 16, "%s", a->acked_by ? a->acked_by : "-");
    alert_snooze[n_alerts++] = a->snoozed_until;
    return 0;
}
static int n_actions;
static int collect_action(void *ud, const rg_alert_action *a)
{
    (void)ud;
    (void)a;
    n_actions++;
    return 0;
}
static int n_due;
static int on_due(void *ud, const char *clinic, const char *key, const char *patient)
{
    (void)ud;
    cr_assert_str_eq(clinic, "north");
    cr_assert_str_eq(key, "k-a");
    cr_assert_str_eq(patient, "p1");
    n_due++;
    return 0;
}
static int64_t sev_n;
static int on_sev(void *ud, const char *clinic, const char *severity, int64_t n)
{
    (void)ud;
    (void)clinic;
    if (!strcmp(severity, "warning"))
        sev_n += n;
    return 0;
}

CONFORM(alerts_staff_actions_and_snoozes)
{
    int64_t a = 0, b = 0;
    rg_transition t1 = tr(1, "north", "p1", "k-a", T("2026-03-02T10:00:00Z"));
    rg_transition t2 = tr(1, "north", "p2", "k-b", T("2026-03-02T11:00:00Z"));
    cr_assert_eq(rg_store_transition(st, &t1, &a), RG_OK);
    cr_assert_eq(rg_store_transition(st, &t2, &b), RG_OK);
    cr_assert_eq(rg_store_alert_action(st, "north", "k-a", "ack", "nurse", "seen",
                                       RG_TIME_NONE, T("2026-03-02T10:05:00Z")),
                 RG_OK);
    cr_assert_eq(rg_store_alert_action(st, "north", "k-a", "snooze", "nurse", "",
                                       T("2026-03-02T12:00:00Z"), T("2026-03-02T10:06:00Z")),
                 RG_OK);
    cr_assert_eq(rg_store_alert_action(st, "north", "k-zz", "ack", "nurse", "", RG_TIME_NONE,
                                       T("2026-03-02T10:06:00Z")),
                 RG_ENOTFOUND);
    n_alerts = 0;
    cr_assert_eq(rg_store_each_alert(st, "north", NULL, NULL, NULL, 10, collect_alert, NULL),
                 RG_OK);
    cr_assert_eq(n_alerts, 2);
    cr_assert_str_eq(alert_acked[0], "nurse");
    cr_assert_eq(alert_snooze[0], T("2026-03-02T12:00:00Z"));
    cr_assert_str_eq(alert_acked[1], "-");
    rg_time next, wake = 0, snooze = 0, w1 = 0;
    cr_assert_eq(rg_store_next_snooze(st, &next), RG_OK);
    cr_assert_eq(next, T("2026-03-02T12:00:00Z"));
    /* the two reads in one: the same answers */
    cr_assert_eq(rg_store_next_due(st, NULL, 0, &wake, &snooze), RG_OK);
    cr_assert_eq(rg_store_next_wake(st, &w1), RG_OK);
    cr_assert_eq(snooze, next);
    cr_assert_eq(wake, w1);
    int count = -1;
    n_due = 0;
    cr_assert_eq(rg_store_each_due_snooze(st, T("2026-03-02T11:59:00Z"), on_due, NULL, &count),
                 RG_OK);
    cr_assert_eq(count, 0);
    cr_assert_eq(rg_store_each_due_snooze(st, T("2026-03-02T12:00:00Z"), on_due, NULL, &count),
                 RG_OK);
    cr_assert_eq(count, 1);
    cr_assert_eq(n_due, 1);
    cr_assert_eq(rg_store_alert_action(st, "north", "k-a", "reraise", "system", "", RG_TIME_NONE,
                                       T("2026-03-02T12:00:00Z")),
                 RG_OK);
    cr_assert_eq(rg_store_next_snooze(st, &next), RG_OK);
    cr_assert_eq(next, RG_TIME_NONE);
    cr_assert_eq(rg_store_next_due(st, NULL, 0, &wake, &snooze), RG_OK);
    cr_assert_eq(snooze, RG_TIME_NONE);
    n_actions = 0;
    cr_assert_eq(rg_store_each_action(st, "north", "k-a", collect_action, NULL), RG_OK);
    cr_assert_eq(n_actions, 3);
    sev_n = 0;
    cr_assert_eq(rg_store_open_by_severity(st, NULL, on_sev, NULL), RG_OK);
    cr_assert_eq(sev_n, 2);

    rg_transition r = tr(0, "north", "p1", "k-a", T("2026-03-02T13:00:00Z"));
    cr_assert_eq(rg_store_transition(st, &r, &a), RG_OK);
    n_alerts = 0;
    cr_assert_eq(rg_store_each_alert(st, "north", NULL, "resolved", NULL, 10, collect_alert,
                                     NULL), RG_OK);
    cr_assert_eq(n_alerts, 1);
    n_alerts = 0;
    cr_assert_eq(rg_store_each_alert(st, "north", "p2", "open", "k-b", 10, collect_alert, NULL),
                 RG_OK);
    cr_assert_eq(n_alerts, 1);
    sev_n = 0;
    cr_assert_eq(rg_store_open_by_severity(st, NULL, on_sev, NULL), RG_OK);
    cr_assert_eq(sev_n, 1);
    sev_n = 0;
    cr_assert_eq(rg_store_open_by_severity(st, "north", on_sev, NULL), RG_OK);
    cr_assert_eq(sev_n, 1, "north's own");
    sev_n = 0;
    cr_assert_eq(rg_store_open_by_severity(st, "south", on_sev, NULL), RG_OK);
    cr_assert_eq(sev_n, 0, "nothing of north when south asks");
}

CONFORM(webhook_cursor_errors_and_provenance)
{
    int64_t delivered = -1;
    int attempts = -1;
    cr_assert_eq(rg_store_webhook_get(st, "north", &delivered, &attempts), RG_OK);
    cr_assert_eq(delivered, 0);
    cr_assert_eq(attempts, 0);
    cr_assert_eq(rg_store_webhook_failed(st, "north", "HTTP 503"), RG_OK);
    cr_assert_eq(rg_store_webhook_failed(st, "north", "HTTP 503"), RG_OK);
    cr_assert_eq(rg_store_webhook_get(st, "north", &delivered, &attempts), RG_OK);
    cr_assert_eq(attempts, 2);
    cr_assert_eq(rg_store_webhook_delivered(st, "north", 7), RG_OK);
    cr_assert_eq(rg_store_webhook_get(st, "north", &delivered, &attempts), RG_OK);
    cr_assert_eq(delivered, 7);
    cr_assert_eq(attempts, 0);
    cr_assert_eq(rg_store_eval_error(st, "north", "p1", "ketamine", "r1", 5, "boom"), RG_OK);
    cr_assert_eq(rg_store_protocol_loaded(st, "north", "ketamine", "1.2", "k.lua", "abc"), RG_OK);
    cr_assert_eq(rg_store_protocol_loaded(st, "north", "ketamine", "1.2", "k.lua", "abc"), RG_OK,
                 "the same version again is no error");
}

/* ---- the audit trail (store/audit.h) ----------------------------------- */

static void audit_add(rg_time at, const char *who, const char *clinic, const char *patients,
                      const char *route)
{
    rg_audit_entry e = {.at = at, .who = who, .role = "nurse", .address = "127.0.0.1:1",
                        .clinic = clinic, .patients = patients, .route = route, .outcome = "200"};
    cr_assert_eq(rg_store_begin(st), RG_OK);
    cr_assert_eq(rg_audit_append(st, &e), RG_OK, "%s", rg_store_errmsg(st));
    cr_assert_eq(rg_store_commit(st), RG_OK);
}

static int audit_count(void *ud, const rg_audit_entry *e)
{
    (void)e;
    (*(int *)ud)++;
    return 0;
}

static int audit_n(const char *clinic, const char *who, const char *patient, rg_time since)
{
    int n = 0;
    rg_audit_filter f = {.clinic = clinic, .who = who, .patient = patient, .since = since};
    cr_assert_eq(rg_store_audit_each(st, &f, audit_count, &n), RG_OK, "%s", rg_store_errmsg(st));
    return n;
}

CONFORM(audit_chain_filters_verifies_and_archives)
{
    rg_audit_report r;
    cr_assert_eq(rg_audit_verify(st, &r), RG_OK);
    cr_assert(r.ok && r.checked == 0, "an empty trail verifies");
    audit_add(1000, "ann", "north", "[\"p1\"]", "GET /v1/patients/p1/timeline");
    audit_add(2000, "bob", "north", "[\"p2\",\"p,1\"]", "POST /v1/events");
    audit_add(3000, "ann", "south", "[\"p1\"]", "GET /v1/alerts?patient=p1");
    audit_add(4000, "ann", "north", "[\"*\"]", "GET /v1/alerts");
    cr_assert_eq(audit_n(NULL, NULL, NULL, RG_TIME_NONE), 4);
    cr_assert_eq(audit_n("north", NULL, NULL, RG_TIME_NONE), 3);
    cr_assert_eq(audit_n(NULL, "ann", NULL, RG_TIME_NONE), 3);
    cr_assert_eq(audit_n(NULL, NULL, "p1", RG_TIME_NONE), 2, "p1, not \"p,1\"");
    cr_assert_eq(audit_n(NULL, NULL, "p,1", RG_TIME_NONE), 1);
    cr_assert_eq(audit_n("north", NULL, NULL, 2000), 2);
    cr_assert_eq(rg_audit_verify(st, &r), RG_OK);
    cr_assert(r.ok && r.checked == 4 && r.chain.tip_seq == 4, "%s", r.why);

    /* an edit is found at the entry edited */
    raw_sql("UPDATE audit SET who = 'eve' WHERE seq = 2");
    cr_assert_eq(rg_audit_verify(st, &r), RG_OK);
    cr_assert(!r.ok && r.broken_seq == 2 && strstr(r.why, "changed"), "%lld %s",
              (long long)r.broken_seq, r.why);
    raw_sql("UPDATE audit SET who = 'bob' WHERE seq = 2");
    cr_assert_eq(rg_audit_verify(st, &r), RG_OK);
    cr_assert(r.ok, "%s", r.why);

    /* retention: the entries before 2500 go, the chain's base keeps entry 2's hash */
    int64_t n = -1;
    cr_assert_eq(rg_store_begin(st), RG_OK);
    cr_assert_eq(rg_store_audit_archive(st, 2500, &n), RG_OK, "%s", rg_store_errmsg(st));
    cr_assert_eq(rg_store_commit(st), RG_OK);
    cr_assert_eq(n, 2);
    cr_assert_eq(audit_n(NULL, NULL, NULL, RG_TIME_NONE), 2);
    cr_assert_eq(rg_audit_verify(st, &r), RG_OK);
    cr_assert(r.ok && r.checked == 2 && r.chain.base_seq == 2, "%s", r.why);
    audit_add(5000, "cy", "north", "[]", "POST /v1/alerts/k/ack");
    cr_assert_eq(rg_audit_verify(st, &r), RG_OK);
    cr_assert(r.ok && r.checked == 3 && r.chain.tip_seq == 5, "%s", r.why);

    /* a deleted entry, in the middle or at the end */
    raw_sql("DELETE FROM audit WHERE seq = 4");
    cr_assert_eq(rg_audit_verify(st, &r), RG_OK);
    cr_assert(!r.ok && r.broken_seq == 4 && strstr(r.why, "missing"), "%s", r.why);
    raw_sql("DELETE FROM audit WHERE seq = 5");
    cr_assert_eq(rg_audit_verify(st, &r), RG_OK);
    cr_assert(!r.ok && r.broken_seq == 4, "%s", r.why);
}

static int commits;
static void on_commit(void *ud)
{
    (void)ud;
    commits++;
}

CONFORM(commit_hook_and_fault_state)
{
    rg_store_on_commit(st, on_commit, NULL);
    commits = 0;
    cr_assert_eq(rg_store_begin(st), RG_OK);
    put("north", "e1", "p1", "2026-03-02T10:00:00Z", NULL);
    cr_assert_eq(rg_store_commit(st), RG_OK);
    cr_assert_eq(commits, 1);
    rg_time since;
    cr_assert_null(rg_store_fault(st, &since));
    cr_assert_eq(since, RG_TIME_NONE);
}

/* ---- corrections (docs/corrections.md) ---------------------------------- */

/* Puts one event line: its outcome, with a conflict's reason and field. */
static rg_put put_line(const char *line, char *why, char *field)
{
    rg_event ev;
    char bad[RG_FIELD_MAX], err[256];
    cr_assert_eq(rg_event_parse(&ev, line, strlen(line), bad, err, sizeof err), RG_OK,
                 "%s: %s %s", line, bad, err);
    rg_put res = (rg_put)-1;
    cr_assert_eq(rg_store_put_event(st, &ev, 1000, &res), RG_OK, "%s", rg_store_errmsg(st));
    rg_event_clear(&ev);
    if (why)
        snprintf(why, 512, "%s", res == RG_PUT_CONFLICT ? rg_store_put_reason(st) : "");
    if (field)
        snprintf(field, RG_FIELD_MAX, "%s", res == RG_PUT_CONFLICT ? rg_store_put_field(st) : "");
    return res;
}

#define BP(id, patient, type, v, extra, data)                                               \
    "{\"id\":\"" id "\",\"clinic\":\"north\",\"patient\":\"" patient "\",\"type\":\"" type \
    "\",\"at\":\"2026-03-02T10:00:00Z\",\"version\":" #v extra data "}"
#define BP_V(v, extra, data) BP("bp", "p1", "vitals", v, extra, data)

typedef struct versions {
    int n;
    int64_t seq[16], replaces[16], version[16];
    rg_time corrected_at[16];
    int retracted[16];
    char text[16][96], data[16][96];
} versions;

static int collect_version(void *ud, const rg_stored_event *e)
{
    versions *g = ud;
    cr_assert_lt(g->n, 16);
    g->seq[g->n] = e->seq;
    g->replaces[g->n] = e->replaces;
    g->version[g->n] = e->version;
    g->corrected_at[g->n] = e->corrected_at;
    g->retracted[g->n] = e->retracted;
    snprintf(g->text[g->n], sizeof g->text[0], "v%lld %s %s", (long long)e->version,
             rg_event_status_name(e->status), e->corrected_by ? e->corrected_by : "-");
    snprintf(g->data[g->n++], sizeof g->data[0], "%s", e->data ? e->data : "-");
    return 0;
}

CONFORM(corrections_keep_every_version_and_conflicts_say_why)
{
    char why[512], field[RG_FIELD_MAX];
    cr_assert_eq(put_line(BP_V(1, "", ",\"data\":{\"systolic\":171}"), why, field),
                 RG_PUT_STORED);
    const char *v2 = BP_V(2, ",\"status\":\"amended\",\"corrected_at\":\"2026-03-02T12:00:00Z\","
                             "\"corrected_by\":\"nurse-7\"", ",\"data\":{\"systolic\":131}");
    cr_assert_eq(put_line(v2, why, field), RG_PUT_CORRECTED);
    /* the same (id, version) again is a duplicate, whichever version it is */
    cr_assert_eq(put_line(v2, why, field), RG_PUT_DUPLICATE);
    cr_assert_eq(put_line(BP_V(1, "", ",\"data\":{\"systolic\":171}"), why, field),
                 RG_PUT_DUPLICATE);
    /* "version":1 and "status":"final" say what their absence says */
    cr_assert_eq(put_line(BP_V(1, ",\"status\":\"final\"", ",\"data\":{\"systolic\":171}"), why,
                          field), RG_PUT_DUPLICATE);
    /* the same (id, version) with other content: a conflict about the id */
    cr_assert_eq(put_line(BP_V(1, "", ",\"data\":{\"systolic\":100}"), why, field),
                 RG_PUT_CONFLICT);
    cr_assert_str_eq(why, "version 1 of this event is already stored with different content; "
                          "it was not overwritten");
    cr_assert_str_eq(field, "id");
    cr_assert_eq(put_line(BP_V(2, ",\"status\":\"amended\",\"corrected_at\":\"2026-03-02T12:00:00Z\"",
                               ",\"data\":{\"systolic\":1}"), why, field), RG_PUT_CONFLICT);
    cr_assert_not_null(strstr(why, "already stored with different content"), "%s", why);
    cr_assert_str_eq(field, "id");
    /* a retraction as version 4 (3 never came); then 3 is stale */
    cr_assert_eq(put_line(BP_V(4, ",\"status\":\"entered-in-error\","
                                  "\"corrected_at\":\"2026-03-02T13:00:00Z\"", ""), why, field),
                 RG_PUT_CORRECTED);
    cr_assert_eq(put_line(BP_V(3, ",\"status\":\"amended\",\"corrected_at\":\"2026-03-02T12:30:00Z\"",
                               ",\"data\":{\"systolic\":1}"), why, field), RG_PUT_CONFLICT);
    cr_assert_str_eq(why, "stale version 3, stored is 4; it was not stored");
    cr_assert_str_eq(field, "version");
    /* another patient, or a retraction of another type */
    cr_assert_eq(put_line(BP("bp", "p2", "vitals", 5, ",\"corrected_at\":\"2026-03-02T14:00:00Z\"",
                             ""), why, field), RG_PUT_CONFLICT);
    cr_assert_str_eq(why, "a correction must keep the patient: version 4 is stored for patient "
                          "'p1', not 'p2'");
    cr_assert_str_eq(field, "patient");
    cr_assert_eq(put_line(BP("bp", "p1", "infusion", 5, ",\"status\":\"entered-in-error\","
                             "\"corrected_at\":\"2026-03-02T14:00:00Z\"", ""), why, field),
                 RG_PUT_CONFLICT);
    cr_assert_str_eq(why, "an entered-in-error correction must keep the type: version 4 is a "
                          "'vitals' event, not 'infusion'");
    cr_assert_str_eq(field, "type");

    /* every version kept for audit, oldest first, each naming the one it replaced */
    versions g = {0};
    cr_assert_eq(rg_store_each_version(st, "north", "bp", collect_version, &g), RG_OK);
    cr_assert_eq(g.n, 3);
    cr_assert_str_eq(g.text[0], "v1 final -");
    cr_assert_str_eq(g.data[0], "{\"systolic\":171}");
    cr_assert_str_eq(g.text[1], "v2 amended nurse-7");
    cr_assert_str_eq(g.text[2], "v4 entered-in-error -");
    cr_assert_eq(g.replaces[0], 0);
    cr_assert_eq(g.replaces[1], g.seq[0]);
    cr_assert_eq(g.replaces[2], g.seq[1]);
    cr_assert_eq(g.corrected_at[0], RG_TIME_NONE);
    cr_assert_eq(g.corrected_at[1], T("2026-03-02T12:00:00Z"));
    /* the engine's read has every version with its correction fields; the
     * readers of the current version see nothing of a retracted event */
    versions all = {0};
    cr_assert_eq(rg_store_each_event(st, "north", "p1", collect_version, &all), RG_OK);
    cr_assert_eq(all.n, 3);
    cr_assert_eq(all.replaces[2], g.seq[1]);
    cr_assert_eq(all.retracted[2], 1);
    cr_assert_eq(all.retracted[1], 0);
    cr_assert_eq(all.corrected_at[2], T("2026-03-02T13:00:00Z"));
    got cur = {0};
    cr_assert_eq(rg_store_each_event_data(st, "north", "p1", collect_event, &cur), RG_OK);
    cr_assert_eq(cur.n, 0);
    cr_assert_eq(rg_store_get_event(st, "north", "bp", collect_event, &cur), RG_ENOTFOUND);
}

static int n_corr;
static char corr[4][128];
static int collect_correction(void *ud, const rg_stored_event *c, const rg_stored_event *r)
{
    (void)ud;
    cr_assert_lt(n_corr, 4);
    cr_assert_eq(c->replaces, r->seq);
    snprintf(corr[n_corr++], sizeof corr[0], "%s v%lld %s <- v%lld %s", c->id,
             (long long)c->version, c->data ? c->data : "-", (long long)r->version,
             r->data ? r->data : "-");
    return 0;
}

/* An evaluation reads the patient, then writes its answer: an event (or a
 * wake-up) another writer stored in between, which that evaluation did not
 * see, keeps the patient due. Unscheduled, it would never be evaluated:
 * with many workers the owner's answer overwrote a non-owner's schedule,
 * and that patient's next alert never came (the failover test, once in a
 * few runs). The writes here come one after another on one connection: the
 * order the race takes, on both stores; conf_pg's twin below has them race. */
CONFORM(an_event_stored_during_an_evaluation_keeps_its_patient_due)
{
    const rg_time ten = T("2026-03-02T10:00:00Z");
    put("north", "e1", "p1", "2026-03-02T10:00:00Z", NULL);
    rg_patient_state ps;
    cr_assert_eq(rg_store_patient_get(st, "north", "p1", &ps), RG_OK);
    ps = answer("p1", ten, 1, ps.scheduled);
    cr_assert_eq(ps.next_wake, RG_TIME_NONE, "evaluated through e1: nothing due");
    /* the next evaluation reads the patient; e2 is stored before it answers */
    int64_t read = ps.scheduled;
    put("north", "e2", "p1", "2026-03-02T11:00:00Z", NULL);
    ps = answer("p1", ten, 1, read);
    cr_assert_eq(ps.next_wake, T("2026-03-02T11:00:00Z"), "e2 is still due");
    cr_assert_eq(ps.last_seq, 1);
    /* so is a wake-up of the clinic (a reload) */
    read = ps.scheduled;
    cr_assert_eq(rg_store_wake_clinic(st, "north", T("2026-03-02T10:30:00Z")), RG_OK);
    ps = answer("p1", ten, 1, read);
    cr_assert_eq(ps.next_wake, T("2026-03-02T10:30:00Z"), "the wake-up is still due");
    /* an evaluation that read the patient after them answers for them */
    ps = answer("p1", T("2026-03-02T11:00:00Z"), 2, ps.scheduled);
    cr_assert_eq(ps.next_wake, RG_TIME_NONE);
    /* a patient's first event, stored after an evaluation found no row */
    cr_assert_eq(rg_store_patient_get(st, "north", "p9", &ps), RG_ENOTFOUND);
    put("north", "e9", "p9", "2026-03-02T12:00:00Z", NULL);
    ps = answer("p9", ten, 0, ps.scheduled);
    cr_assert_eq(ps.next_wake, T("2026-03-02T12:00:00Z"), "the first event is still due");
}

CONFORM(readers_see_the_current_version_and_corrections_wake_the_patient)
{
    cr_assert_eq(put_line(BP_V(1, "", ",\"data\":{\"systolic\":171}"), NULL, NULL),
                 RG_PUT_STORED);
    /* the patient was evaluated to 11:00, nothing due */
    rg_patient_state ps;
    cr_assert_eq(rg_store_patient_get(st, "north", "p1", &ps), RG_OK);
    ps = (rg_patient_state){.clock = T("2026-03-02T11:00:00Z"), .wake = RG_TIME_NONE,
                            .next_wake = RG_TIME_NONE, .last_seq = 1, .scheduled = ps.scheduled};
    cr_assert_eq(rg_store_patient_put(st, "north", "p1", &ps), RG_OK);
    cr_assert_eq(put_line(BP_V(2, ",\"status\":\"corrected\",\"corrected_at\":\"2026-03-02T12:00:00Z\"",
                               ",\"data\":{\"systolic\":120}"), NULL, NULL), RG_PUT_CORRECTED);
    cr_assert_eq(rg_store_patient_get(st, "north", "p1", &ps), RG_OK);
    cr_assert_eq(ps.next_wake, T("2026-03-02T12:00:00Z"), "woken at its corrected_at");
    got one = {0};
    cr_assert_eq(rg_store_get_event(st, "north", "bp", collect_event, &one), RG_OK);
    cr_assert_eq(one.n, 1);
    cr_assert_str_eq(one.data[0], "{\"systolic\":120}");
    got cur = {0};
    cr_assert_eq(rg_store_each_event_data(st, "north", "p1", collect_event, &cur), RG_OK);
    cr_assert_eq(cur.n, 1);
    cr_assert_str_eq(cur.data[0], "{\"systolic\":120}");
    /* a version > 1 of an id never seen is its first stored version */
    cr_assert_eq(put_line(BP("q", "p1", "vitals", 3, ",\"corrected_at\":\"2026-03-02T11:00:00Z\"",
                             ""), NULL, NULL), RG_PUT_STORED);
    versions q = {0};
    cr_assert_eq(rg_store_each_version(st, "north", "q", collect_version, &q), RG_OK);
    cr_assert_eq(q.n, 1);
    cr_assert_eq(q.replaces[0], 0);
    cr_assert_eq(q.version[0], 3);
    /* the corrections made in (after, upto], with the version each replaced */
    n_corr = 0;
    cr_assert_eq(rg_store_each_correction(st, "north", "p1", T("2026-03-02T11:00:00Z"),
                                          T("2026-03-02T12:00:00Z"), collect_correction, NULL),
                 RG_OK);
    cr_assert_eq(n_corr, 1);
    cr_assert_str_eq(corr[0], "bp v2 {\"systolic\":120} <- v1 {\"systolic\":171}");
    n_corr = 0;
    cr_assert_eq(rg_store_each_correction(st, "north", "p1", T("2026-03-02T12:00:00Z"),
                                          T("2026-03-02T23:00:00Z"), collect_correction, NULL),
                 RG_OK);
    cr_assert_eq(n_corr, 0);
}

CONFORM(corrections_in_a_batch_as_one_by_one)
{
    const char *lines[] = {
        BP("x", "p1", "vitals", 1, "", ",\"data\":{\"systolic\":150}"),
        BP("x", "p1", "vitals", 2, ",\"status\":\"amended\",\"corrected_at\":\"2026-03-02T12:00:00Z\"",
           ",\"data\":{\"systolic\":140}"),
        BP("x", "p1", "vitals", 1, "", ",\"data\":{\"systolic\":150}"),
        BP("y", "p1", "vitals", 2, ",\"corrected_at\":\"2026-03-02T11:00:00Z\"", ""),
        BP("y", "p1", "vitals", 1, "", ""),
    };
    rg_event ev[5];
    const rg_event *evs[5];
    rg_put res[5];
    char bad[RG_FIELD_MAX], err[256];
    for (int i = 0; i < 5; i++) {
        cr_assert_eq(rg_event_parse(&ev[i], lines[i], strlen(lines[i]), bad, err, sizeof err),
                     RG_OK, "%s", err);
        evs[i] = &ev[i];
    }
    cr_assert_eq(rg_store_begin(st), RG_OK);
    cr_assert_eq(rg_store_put_events(st, evs, 5, 2000, res, NULL), RG_OK, "%s",
                 rg_store_errmsg(st));
    cr_assert_eq(rg_store_commit(st), RG_OK);
    rg_put want[5] = {RG_PUT_STORED, RG_PUT_CORRECTED, RG_PUT_DUPLICATE, RG_PUT_STORED,
                      RG_PUT_CONFLICT};
    for (int i = 0; i < 5; i++) {
        cr_assert_eq(res[i], want[i], "event %d: %d", i, res[i]);
        rg_event_clear(&ev[i]);
    }
    cr_assert_str_eq(rg_store_put_reason(st), "stale version 1, stored is 2; it was not stored");
    cr_assert_str_eq(rg_store_put_field(st), "version");
    versions g = {0};
    cr_assert_eq(rg_store_each_version(st, "north", "x", collect_version, &g), RG_OK);
    cr_assert_eq(g.n, 2);
    cr_assert_str_eq(g.data[1], "{\"systolic\":140}");
}

/* ---- clinic time: notify_at and webhook order --------------------------- */

static rg_time notify_seen[8];
static int n_notify;
static int collect_notify(void *ud, const rg_transition *t)
{
    (void)ud;
    cr_assert_lt(n_notify, 8);
    notify_seen[n_notify++] = t->notify_at;
    return 0;
}
static int collect_alert_notify(void *ud, const rg_alert_view *a)
{
    (void)ud;
    cr_assert_lt(n_notify, 8);
    notify_seen[n_notify++] = a->notify_at;
    return 0;
}

CONFORM(notify_at_round_trips_and_unset_means_at)
{
    int64_t a = 0;
    rg_transition t1 = tr(1, "north", "p1", "k-1", T("2026-03-07T19:00:00Z"));
    t1.notify_at = T("2026-03-09T13:00:00Z"); /* closed: told on Monday */
    rg_transition t2 = tr(1, "north", "p1", "k-2", T("2026-03-07T19:30:00Z")); /* unset: 0 */
    rg_transition t3 = tr(1, "north", "p1", "k-3", T("2026-03-07T19:45:00Z"));
    t3.notify_at = T("2026-03-07T18:00:00Z"); /* never earlier than at */
    rg_transition t4 = tr(1, "north", "p1", "k-4", T("2026-03-07T19:50:00Z"));
    t4.notify_at = RG_TIME_NONE;
    cr_assert_eq(rg_store_transition(st, &t1, &a), RG_OK, "%s", rg_store_errmsg(st));
    cr_assert_eq(rg_store_transition(st, &t2, &a), RG_OK);
    cr_assert_eq(rg_store_transition(st, &t3, &a), RG_OK);
    cr_assert_eq(rg_store_transition(st, &t4, &a), RG_OK);
    rg_time want[4] = {T("2026-03-09T13:00:00Z"), T("2026-03-07T19:30:00Z"),
                       T("2026-03-07T19:45:00Z"), T("2026-03-07T19:50:00Z")};
    for (int how = 0; how < 4; how++) {
        n_notify = 0;
        if (how == 0)
            cr_assert_eq(rg_store_each_transition(st, 0, 0, collect_notify, NULL), RG_OK);
        else if (how == 1)
            cr_assert_eq(rg_store_each_transition(st, 0, 1, collect_notify, NULL), RG_OK);
        else if (how == 2)
            cr_assert_eq(rg_store_clinic_transitions(st, "north", 0, 10, collect_notify, NULL),
                         RG_OK);
        else
            cr_assert_eq(rg_store_each_alert(st, "north", NULL, NULL, NULL, 10,
                                             collect_alert_notify, NULL), RG_OK);
        cr_assert_eq(n_notify, 4, "read %d", how);
        for (int i = 0; i < 4; i++)
            cr_assert_eq(notify_seen[i], want[i], "read %d, transition %d", how, i);
    }
    n_notify = 0;
    cr_assert_eq(rg_store_key_transitions(st, "north", "k-1", collect_notify, NULL), RG_OK);
    cr_assert_eq(n_notify, 1);
    cr_assert_eq(notify_seen[0], want[0]);
}

static int take_cseq(void *ud, const rg_transition *t)
{
    *(int64_t *)ud = t->cseq;
    return 0;
}

/* What may go now goes first; the cursor moves over what was sent ahead
 * once the one before it is sent. */
CONFORM(webhook_sends_ahead_of_a_transition_that_waits)
{
    int64_t a = 0, next = 0, delivered;
    int attempts;
    rg_time wait, now = T("2026-03-07T20:00:00Z");
    rg_transition t1 = tr(1, "north", "p1", "k-1", T("2026-03-07T19:00:00Z"));
    t1.notify_at = T("2026-03-09T13:00:00Z"); /* waits for Monday */
    rg_transition t2 = tr(1, "north", "p1", "k-2", T("2026-03-07T19:30:00Z")); /* at once */
    rg_transition t3 = tr(1, "north", "p1", "k-3", T("2026-03-07T19:40:00Z"));
    t3.notify_at = T("2026-03-08T13:00:00Z"); /* waits for Sunday */
    cr_assert_eq(rg_store_transition(st, &t1, &a), RG_OK);
    cr_assert_eq(rg_store_transition(st, &t2, &a), RG_OK);
    cr_assert_eq(rg_store_transition(st, &t3, &a), RG_OK);
    cr_assert_eq(rg_store_webhook_next(st, "north", now, take_cseq, &next, &wait), RG_OK);
    cr_assert_eq(next, 2);
    cr_assert_eq(wait, T("2026-03-08T13:00:00Z"), "the earliest still to come");
    cr_assert_eq(rg_store_webhook_sent(st, "north", 2), RG_OK);
    cr_assert_eq(rg_store_webhook_sent(st, "north", 2), RG_OK, "sent twice is kept once");
    cr_assert_eq(rg_store_webhook_get(st, "north", &delivered, &attempts), RG_OK);
    cr_assert_eq(delivered, 0, "1 is still to go");
    next = 0;
    cr_assert_eq(rg_store_webhook_next(st, "north", now, take_cseq, &next, &wait), RG_OK);
    cr_assert_eq(next, 0, "nothing more may go before Sunday");
    now = T("2026-03-08T13:00:00Z");
    cr_assert_eq(rg_store_webhook_next(st, "north", now, take_cseq, &next, &wait), RG_OK);
    cr_assert_eq(next, 3);
    cr_assert_eq(wait, T("2026-03-09T13:00:00Z"));
    cr_assert_eq(rg_store_webhook_sent(st, "north", 3), RG_OK);
    next = 0;
    cr_assert_eq(rg_store_webhook_next(st, "north", now, take_cseq, &next, &wait), RG_OK);
    cr_assert_eq(next, 0);
    now = T("2026-03-09T13:00:00Z");
    cr_assert_eq(rg_store_webhook_next(st, "north", now, take_cseq, &next, &wait), RG_OK);
    cr_assert_eq(next, 1);
    cr_assert_eq(wait, RG_TIME_NONE);
    cr_assert_eq(rg_store_webhook_sent(st, "north", 1), RG_OK);
    cr_assert_eq(rg_store_webhook_get(st, "north", &delivered, &attempts), RG_OK);
    cr_assert_eq(delivered, 3, "the cursor moved over the two sent ahead");
    /* and what was sent ahead is forgotten: a 4th goes as the next one */
    rg_transition t4 = tr(1, "north", "p1", "k-4", T("2026-03-09T13:30:00Z"));
    cr_assert_eq(rg_store_transition(st, &t4, &a), RG_OK);
    next = 0;
    cr_assert_eq(rg_store_webhook_next(st, "north", T("2026-03-09T14:00:00Z"), take_cseq, &next,
                                       &wait), RG_OK);
    cr_assert_eq(next, 4);
    cr_assert_eq(rg_store_webhook_sent(st, "north", 4), RG_OK);
    cr_assert_eq(rg_store_webhook_get(st, "north", &delivered, &attempts), RG_OK);
    cr_assert_eq(delivered, 4);
}

/* ---- ingest ------------------------------------------------------------- */

/* Events of one instant come back in file order (e1, e6, e11, ...). */
static int order_n, order_last;
static int check_order(void *ud, const rg_stored_event *e)
{
    (void)ud;
    int i = atoi(e->id + 1);
    cr_assert_gt(i, order_last, "%s after e%d", e->id, order_last);
    order_last = i;
    order_n++;
    return 0;
}

CONFORM(ingest_counts_duplicates_conflicts_and_rejected_lines)
{
    char path[600];
    snprintf(path, sizeof path, "/tmp/regimen-conf-%d.jsonl", (int)getpid());
    FILE *w = fopen(path, "w");
    cr_assert_not_null(w);
    for (int i = 1; i <= 700; i++) /* more than a chunk of the pipeline */
        fprintf(w,
                "{\"id\":\"e%d\",\"clinic\":\"north\",\"patient\":\"p%d\",\"type\":\"vitals\","
                "\"at\":\"2026-03-02T10:00:00Z\",\"data\":{\"i\":%d}}\n",
                i, i % 5, i);
    fprintf(w, "{not json\n");
    fprintf(w, "{\"id\":\"e1\",\"clinic\":\"north\",\"patient\":\"p1\",\"type\":\"vitals\","
               "\"at\":\"2026-03-02T10:00:00Z\",\"data\":{\"i\":1}}\n");
    fprintf(w, "{\"id\":\"e2\",\"clinic\":\"north\",\"patient\":\"p2\",\"type\":\"vitals\","
               "\"at\":\"2026-03-02T10:00:00Z\",\"data\":{\"i\":999}}\n");
    cr_assert_eq(fclose(w), 0);
    FILE *f = fopen(path, "r");
    rg_ingest_counts c = {0};
    char err[512] = "";
    cr_assert_eq(rg_ingest_file(st, f, "in.jsonl", &c, NULL, NULL, err, sizeof err), RG_OK, "%s",
                 err);
    fclose(f);
    remove(path);
    cr_assert_eq(c.stored, 700);
    cr_assert_eq(c.duplicates, 1);
    cr_assert_eq(c.conflicts, 1);
    cr_assert_eq(c.rejected, 1);
    rej_n = 0;
    cr_assert_eq(rg_store_each_rejected(st, collect_rej, NULL), RG_OK);
    cr_assert_eq(rej_n, 2);
    cr_assert_eq(rej_line[0], 701);
    cr_assert_eq(rej_line[1], 703);
    cr_assert_str_eq(rej_field[1], "id");
    order_n = 0;
    order_last = 0;
    cr_assert_eq(rg_store_each_event(st, "north", "p1", check_order, NULL), RG_OK);
    cr_assert_eq(order_n, 140);
}

/* ---- schema ------------------------------------------------------------- */

CONFORM(reopening_keeps_data_and_a_newer_schema_is_refused)
{
    put("north", "e1", "p1", "2026-03-02T10:00:00Z", NULL);
    rg_store_close(st);
    st = NULL;
    open_store();
    cr_assert_eq(put("north", "e1", "p1", "2026-03-02T10:00:00Z", NULL), RG_PUT_DUPLICATE);
    rg_store_close(st);
    st = NULL;
    raw_sql(backend_pg ? "UPDATE schema_version SET version = 99" : "PRAGMA user_version = 99");
    char err[512] = "";
    cr_assert_eq(rg_store_open(&st, url, NULL, err, sizeof err), RG_EDB);
    cr_assert_null(st);
    cr_assert_not_null(strstr(err, "newer than this program"), "%s", err);
}

/* Every field of each transition as text, one line each, appended to ud (a
 * 16 KiB buffer). */
static int dump_tr(void *ud, const rg_transition *t)
{
    char *b = ud;
    size_t n = strlen(b);
    snprintf(b + n, 16384 - n, "%lld %lld %lld %lld %d %lld %s %s %s %s %s %s %s %s %s %s %s\n",
             (long long)t->seq, (long long)t->cseq, (long long)t->at, (long long)t->due,
             t->open, (long long)t->notify_at, t->clinic, t->patient, t->key, t->protocol,
             t->version, t->rule, t->severity, t->message, t->params ? t->params : "(null)",
             t->evidence ? t->evidence : "(null)", t->cause ? t->cause : "(null)");
    return 0;
}

static int dump_open(void *ud, int64_t alert_id, const rg_transition *t)
{
    char *b = ud;
    size_t n = strlen(b);
    snprintf(b + n, 16384 - n, "alert %lld: ", (long long)alert_id);
    return dump_tr(ud, t);
}

/* All that reads transitions back: the whole table by seq and by time, a
 * clinic's feed, a key's history and each patient's open alerts. */
static void dump_all(char *b)
{
    b[0] = '\0';
    cr_assert_eq(rg_store_each_transition(st, 0, 0, dump_tr, b), RG_OK);
    cr_assert_eq(rg_store_each_transition(st, 0, 1, dump_tr, b), RG_OK);
    cr_assert_eq(rg_store_clinic_transitions(st, "north", 0, 100, dump_tr, b), RG_OK);
    cr_assert_eq(rg_store_key_transitions(st, "north", "k-b", dump_tr, b), RG_OK);
    cr_assert_eq(rg_store_each_open_alert(st, "north", "p1", dump_open, b), RG_OK);
    cr_assert_eq(rg_store_each_open_alert(st, "north", "p2", dump_open, b), RG_OK);
    cr_assert_eq(rg_store_each_open_alert(st, "south", "p9", dump_open, b), RG_OK);
}

/* A store of version 15 (before open_alerts) is brought to 16 in place:
 * its transitions read back as they were, the alerts open before are open
 * after, and the migrated open_alerts refuses what breaks the alternation
 * of a key's openings and resolutions as a new store does. */
CONFORM(a_v15_store_upgrades_to_open_alerts_in_place)
{
    int64_t a = 0, b = 0, c = 0, d = 0, s = 0, x = 0;
    rg_transition t = tr(1, "north", "p1", "k-a", T("2026-03-02T10:00:00Z"));
    t.params = "{\"wait\":7200000}";
    t.evidence = "[\"ev-1\",\"ev-2\"]";
    t.cause = "ann (nurse)";
    cr_assert_eq(rg_store_transition(st, &t, &a), RG_OK, "%s", rg_store_errmsg(st));
    t = tr(1, "north", "p1", "k-b", T("2026-03-02T11:00:00Z"));
    cr_assert_eq(rg_store_transition(st, &t, &b), RG_OK);
    t = tr(0, "north", "p1", "k-b", T("2026-03-02T12:00:00Z"));
    cr_assert_eq(rg_store_transition(st, &t, &b), RG_OK);
    t = tr(1, "north", "p2", "k-c", T("2026-03-02T13:00:00Z"));
    t.notify_at = T("2026-03-03T08:00:00Z");
    cr_assert_eq(rg_store_transition(st, &t, &c), RG_OK);
    int64_t cr = c;
    t = tr(RG_TRANSITION_RERAISED, "north", "p2", "k-c", T("2026-03-02T14:00:00Z"));
    cr_assert_eq(rg_store_transition(st, &t, &cr), RG_OK);
    t = tr(1, "south", "p9", "k-a", T("2026-03-02T15:00:00Z"));
    cr_assert_eq(rg_store_transition(st, &t, &s), RG_OK);
    static char before[16384], after[16384];
    dump_all(before);
    rg_store_close(st);
    st = NULL;
    raw_sql(backend_pg ? "DROP TABLE open_alerts; DROP INDEX patients_by_clinic_wake;"
                         " UPDATE schema_version SET version = 15"
                       : "DROP TABLE open_alerts; DROP INDEX patients_by_clinic_wake;"
                         " PRAGMA user_version = 15");
    open_store();
    cr_assert_eq(clinic_wake_index(), 1, "15 -> ... -> 21");
    dump_all(after);
    cr_assert_str_eq(after, before, "the transitions read back as before the upgrade");
    cr_assert_not_null(strstr(after, "alert "), "open alerts were read");

    /* what is open after the upgrade is what was open before */
    t = tr(1, "north", "p1", "k-a", T("2026-03-02T16:00:00Z"));
    cr_assert_eq(rg_store_transition(st, &t, &x), RG_EDB, "k-a is still open");
    t = tr(0, "north", "p1", "k-b", T("2026-03-02T16:00:00Z"));
    cr_assert_eq(rg_store_transition(st, &t, &b), RG_ENOTFOUND, "k-b was resolved");
    t = tr(0, "north", "p2", "k-c", T("2026-03-02T16:00:00Z"));
    cr_assert_eq(rg_store_transition(st, &t, &a), RG_ENOTFOUND, "k-c's alert is c, not a");
    cr_assert_eq(rg_store_transition(st, &t, &c), RG_OK, "%s", rg_store_errmsg(st));
    t = tr(1, "north", "p1", "k-b", T("2026-03-02T16:10:00Z"));
    cr_assert_eq(rg_store_transition(st, &t, &d), RG_OK, "k-b opens again");
    cr_assert_gt(d, s, "after every seq of before");
    t = tr(0, "south", "p9", "k-a", T("2026-03-02T16:20:00Z"));
    cr_assert_eq(rg_store_transition(st, &t, &s), RG_OK, "a key is open per clinic");
    trs o = {0};
    cr_assert_eq(rg_store_each_open_alert(st, "north", "p1", collect_open, &o), RG_OK);
    cr_assert_eq(o.n, 2);
    cr_assert(o.alert[0] == a && o.alert[1] == d);
    int64_t cseq = 0;
    cr_assert_eq(rg_store_last_cseq(st, "north", &cseq), RG_OK);
    cr_assert_eq(cseq, 7, "no gap after the refusals");
}

CONFORM(first_open_by_racing_processes_is_safe)
{
    /* a fresh database: the fixture's own store is closed and the schema emptied */
    rg_store_close(st);
    st = NULL;
    if (backend_pg) {
        char sql[256];
        snprintf(sql, sizeof sql, "DROP SCHEMA %s CASCADE; CREATE SCHEMA %s", schema, schema);
        raw_sql(sql);
    } else {
        remove(url);
    }
    pid_t kids[4];
    for (int i = 0; i < 4; i++) {
        kids[i] = fork();
        cr_assert_geq(kids[i], 0);
        if (kids[i] == 0) {
            rg_store *mine = NULL;
            char err[512];
            int rc = rg_store_open(&mine, url, NULL, err, sizeof err);
            if (rc)
                fprintf(stderr, "racer %d: %s\n", i, err);
            rg_store_close(mine);
            _exit(rc ? 1 : 0);
        }
    }
    for (int i = 0; i < 4; i++) {
        int status;
        cr_assert_eq(waitpid(kids[i], &status, 0), kids[i]);
        cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "racer %d failed", i);
    }
    open_store();
    cr_assert_eq(put("north", "e1", "p1", "2026-03-02T10:00:00Z", NULL), RG_PUT_STORED);
}

/* ---- a v5 PostgreSQL database upgrades in place ---------------------------------------- */

static long long pg_int(const char *sql)
{
    PGconn *c = PQconnectdb(url);
    cr_assert_eq(PQstatus(c), CONNECTION_OK, "%s", PQerrorMessage(c));
    PGresult *r = PQexec(c, sql);
    cr_assert_eq(PQresultStatus(r), PGRES_TUPLES_OK, "%s: %s", sql, PQresultErrorMessage(r));
    long long v = atoll(PQgetvalue(r, 0, 0));
    PQclear(r);
    PQfinish(c);
    return v;
}

/* A database as version 5 left it (schemas v6 to v8 taken back: no event
 * versions, UNIQUE(clinic, id), no notify_at, no webhook_ahead, no
 * patients.scheduled) is brought to the current version when opened: its events, transitions and cursor kept, as version 1 and told at
 * their `at`; then corrections and deliveries ahead work on it. */
Test(conf_pg, a_v5_database_upgrades_in_place, .init = setup_pg, .fini = teardown)
{
    NO_PG_SKIP();
    int64_t a = 0;
    cr_assert_eq(put("north", "e1", "p1", "2026-03-02T10:00:00Z", "{\"systolic\":171}"),
                 RG_PUT_STORED);
    cr_assert_eq(put("north", "e2", "p1", "2026-03-02T11:00:00Z", NULL), RG_PUT_STORED);
    rg_transition t1 = tr(1, "north", "p1", "k-1", T("2026-03-07T19:00:00Z"));
    cr_assert_eq(rg_store_transition(st, &t1, &a), RG_OK);
    rg_store_close(st);
    st = NULL;
    raw_sql("UPDATE events SET body = rg_body(body, id, clinic, patient, type, at, utc_offset);"
            "DROP FUNCTION rg_body; DROP FUNCTION rg_lean; DROP FUNCTION rg_head;" /* v17's */
            "ALTER TABLE events ADD COLUMN data text;" /* version 12's lean row, undone */
            "UPDATE events SET data = '{\"systolic\":171}' WHERE id = 'e1';"
            "ALTER TABLE events DROP CONSTRAINT events_pkey;"
            "ALTER TABLE events ADD PRIMARY KEY (clinic, seq);"
            "CREATE INDEX events_by_patient ON events(clinic, patient, at, seq);"
            "ALTER TABLE events DROP CONSTRAINT events_clinic_id_replaces_key;"
            "ALTER TABLE events DROP COLUMN version, DROP COLUMN status,"
            "  DROP COLUMN corrected_at, DROP COLUMN corrected_by, DROP COLUMN replaces;"
            "ALTER TABLE events ADD CONSTRAINT events_clinic_id_key UNIQUE(clinic, id);"
            "ALTER TABLE transitions DROP COLUMN notify_at;"
            "DROP TABLE webhook_ahead;"
            "ALTER TABLE patients DROP COLUMN scheduled;"
            "DROP TABLE failing_rules;"
            "ALTER TABLE patients DROP COLUMN failing;"
            "ALTER TABLE events DROP COLUMN digest;"
            "DROP INDEX alert_actions_by_key;"
            "DROP TABLE audit; DROP TABLE audit_chain;"
            "DROP TABLE protocol_sets;" /* version 11's */
            "DROP TABLE protocol_set_files;"
            "DROP TABLE protocol_set_log;"
            "DROP TABLE shadow_transitions;" /* version 12's */
            "ALTER TABLE transitions DROP COLUMN cause;" /* version 13's */
            "DROP TABLE notify_steps; DROP TABLE notify_log;" /* version 14's */
            "DROP TABLE open_alerts;" /* version 16's */
            "DROP INDEX patients_by_clinic_wake;" /* version 21's */
            "UPDATE schema_version SET version = 5");
    cr_assert_eq(pg_int("SELECT count(*) FROM information_schema.columns"
                        " WHERE table_schema = current_schema() AND column_name = 'notify_at'"),
                 0);
    open_store();
    cr_assert_eq(pg_int("SELECT version FROM schema_version"), RG_SCHEMA_VERSION);
    cr_assert_eq(pg_int(clinic_wake_index_pg), 1, "5 -> ... -> 21");
    cr_assert_eq(pg_int("SELECT count(*) FROM events WHERE version = 1 AND replaces = 0"
                        " AND status IS NULL AND fields IS NOT NULL"), 1);
    /* v12: no data column, keyed in the order an evaluation reads, one
     * index fewer */
    cr_assert_eq(pg_int("SELECT count(*) FROM information_schema.columns WHERE table_schema ="
                        " current_schema() AND table_name = 'events' AND column_name = 'data'"), 0);
    cr_assert_eq(pg_int("SELECT count(*) FROM pg_indexes WHERE schemaname = current_schema()"
                        " AND tablename = 'events'"), 2);
    cr_assert_eq(pg_int("SELECT count(*) FROM pg_index i JOIN pg_class c ON c.oid = i.indrelid"
                        " WHERE c.relname = 'events' AND c.relnamespace = current_schema()::regnamespace"
                        " AND i.indisprimary AND i.indnkeyatts = 4"), 1);
    /* the upgrade's digests (SQL's sha256) are the ones C computes */
    int64_t checked = 0, bad = 0;
    FILE *devnull = fopen("/dev/null", "w");
    cr_assert_eq(rg_store_verify(st, devnull, &checked, &bad), RG_OK);
    fclose(devnull);
    cr_assert_eq(checked, 2);
    cr_assert_eq(bad, 0);
    /* v18: what they keep of them is their first 16 bytes */
    cr_assert_eq(pg_int("SELECT count(*) FROM events WHERE digest ~ '^[0-9a-f]{32}$'"), 2);
    /* v17: the rows keep the rest after their head, the bodies come back whole */
    cr_assert_eq(pg_int("SELECT count(*) FROM events WHERE body NOT LIKE '{%'"), 2);
    static char bodies[4096];
    bodies[0] = '\0';
    cr_assert_eq(rg_store_each_event_body(st, "north", collect_body, bodies), RG_OK);
    cr_assert_str_eq(bodies,
                     "{\"id\":\"e1\",\"clinic\":\"north\",\"patient\":\"p1\",\"type\":\"vitals\","
                     "\"at\":\"2026-03-02T10:00:00Z\",\"data\":{\"systolic\":171}}\n"
                     "{\"id\":\"e2\",\"clinic\":\"north\",\"patient\":\"p1\",\"type\":\"vitals\","
                     "\"at\":\"2026-03-02T11:00:00Z\"}\n");
    cr_assert_eq(pg_int("SELECT count(*) FROM pg_inherits WHERE inhparent = 'webhook_ahead'::regclass"),
                 8, "partitioned by clinic like the rest");
    n_notify = 0;
    cr_assert_eq(rg_store_each_transition(st, 0, 0, collect_notify, NULL), RG_OK);
    cr_assert_eq(n_notify, 1);
    cr_assert_eq(notify_seen[0], T("2026-03-07T19:00:00Z"), "a v5 row is told at its at");
    cr_assert_eq(put("north", "e1", "p1", "2026-03-02T10:00:00Z", "{\"systolic\":171}"),
                 RG_PUT_DUPLICATE);
    cr_assert_eq(put_line("{\"id\":\"e2\",\"clinic\":\"north\",\"patient\":\"p1\",\"type\":\"vitals\","
                          "\"at\":\"2026-03-02T11:00:00Z\",\"version\":2,\"status\":\"entered-in-error\","
                          "\"corrected_at\":\"2026-03-02T13:30:00Z\"}", NULL, NULL),
                 RG_PUT_CORRECTED);
    got cur = {0};
    cr_assert_eq(rg_store_each_event_data(st, "north", "p1", collect_event, &cur), RG_OK);
    cr_assert_eq(cur.n, 1);
    cr_assert_str_eq(cur.id[0], "e1");
    cr_assert_str_eq(cur.data[0], "{\"systolic\":171}", "data derived from the body (v12)");
    rg_transition t2 = tr(1, "north", "p1", "k-2", T("2026-03-07T19:30:00Z"));
    t2.notify_at = T("2026-03-09T13:00:00Z");
    rg_transition t3 = tr(1, "north", "p1", "k-3", T("2026-03-07T19:40:00Z"));
    cr_assert_eq(rg_store_transition(st, &t2, &a), RG_OK);
    cr_assert_eq(rg_store_transition(st, &t3, &a), RG_OK);
    cr_assert_eq(rg_store_webhook_delivered(st, "north", 1), RG_OK);
    cr_assert_eq(rg_store_webhook_sent(st, "north", 3), RG_OK);
    cr_assert_eq(pg_int("SELECT count(*) FROM webhook_ahead"), 1);
}

/* Another worker (a process of its own): stores `line`, expecting `want`,
 * and holds it uncommitted for 300 ms; returns once it is stored. */
static pid_t other_worker_holds(const char *line, rg_put want)
{
    int ready[2];
    cr_assert_eq(pipe(ready), 0);
    pid_t kid = fork();
    cr_assert_geq(kid, 0);
    if (kid == 0) {
        rg_store *other = NULL;
        char err[512], bad[RG_FIELD_MAX];
        rg_event ev;
        rg_put res;
        int ok = rg_store_open(&other, url, NULL, err, sizeof err) == RG_OK &&
                 rg_event_parse(&ev, line, strlen(line), bad, err, sizeof err) == RG_OK &&
                 rg_store_begin(other) == RG_OK &&
                 rg_store_put_event(other, &ev, 1000, &res) == RG_OK && res == want;
        ok = write(ready[1], "x", 1) == 1 && ok; /* stored, not committed */
        usleep(300000);
        ok = ok && rg_store_commit(other) == RG_OK;
        rg_store_close(other);
        _exit(ok ? 0 : 1);
    }
    char x;
    close(ready[1]);
    cr_assert_eq(read(ready[0], &x, 1), 1, "the other worker stored nothing");
    close(ready[0]);
    return kid;
}

static void other_worker_done(pid_t kid)
{
    int status;
    cr_assert_eq(waitpid(kid, &status, 0), kid);
    cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "the other worker failed");
}

/* Two workers correct one version at the same moment: the second waits for
 * the first's commit and is then decided against what it stored (a
 * duplicate when the same, a correction of it when newer), never an error. */
Test(conf_pg, two_workers_correcting_one_version_at_once, .init = setup_pg, .fini = teardown)
{
    NO_PG_SKIP();
    const char *v2 = BP_V(2, ",\"status\":\"amended\",\"corrected_at\":\"2026-03-02T12:00:00Z\"",
                          ",\"data\":{\"systolic\":131}");
    const char *v3 = BP_V(3, ",\"status\":\"amended\",\"corrected_at\":\"2026-03-02T12:30:00Z\"",
                          ",\"data\":{\"systolic\":132}");
    cr_assert_eq(put_line(BP_V(1, "", ",\"data\":{\"systolic\":171}"), NULL, NULL),
                 RG_PUT_STORED);
    for (int round = 0; round < 2; round++) {
        /* the other worker corrects v1 as v2 */
        pid_t kid = other_worker_holds(v2, RG_PUT_CORRECTED);
        cr_assert_eq(rg_store_begin(st), RG_OK);
        /* v1 is current here: this corrects it too, and waits for the other */
        rg_time t0 = rg_now();
        rg_put outcome = put_line(round ? v3 : v2, NULL, NULL);
        cr_assert_geq(rg_now() - t0, 200, "it waited for the other's commit");
        cr_assert_eq(rg_store_commit(st), RG_OK, "%s", rg_store_errmsg(st));
        other_worker_done(kid);
        cr_assert_eq(outcome, round ? RG_PUT_CORRECTED : RG_PUT_DUPLICATE, "round %d: %d", round,
                     outcome);
        versions g = {0};
        cr_assert_eq(rg_store_each_version(st, "north", "bp", collect_version, &g), RG_OK);
        cr_assert_eq(g.n, 2 + round, "round %d", round);
        cr_assert_eq(g.replaces[1], g.seq[0]);
        if (round) {
            cr_assert_eq(g.replaces[2], g.seq[1], "v3 replaces the v2 the other stored");
            break;
        }
        /* for round 1: back to v1 alone */
        raw_sql("DELETE FROM events WHERE version > 1");
    }
}

/* The race itself: another worker's event, stored and not yet committed,
 * holds the patient's row; the owner's answer waits for that commit and is
 * then written against the row as it committed, keeping the event due. */
Test(conf_pg, an_event_committed_while_the_owner_answers_keeps_its_patient_due,
     .init = setup_pg, .fini = teardown)
{
    NO_PG_SKIP();
    put("north", "e1", "p1", "2026-03-02T10:00:00Z", NULL);
    rg_patient_state ps;
    cr_assert_eq(rg_store_patient_get(st, "north", "p1", &ps), RG_OK);
    ps = answer("p1", T("2026-03-02T10:00:00Z"), 1, ps.scheduled);
    int64_t read = ps.scheduled; /* the next evaluation's read */
    pid_t kid = other_worker_holds("{\"id\":\"e2\",\"clinic\":\"north\",\"patient\":\"p1\","
                                   "\"type\":\"vitals\",\"at\":\"2026-03-02T11:00:00Z\"}",
                                   RG_PUT_STORED);
    rg_time t0 = rg_now();
    ps = answer("p1", T("2026-03-02T10:00:00Z"), 1, read);
    cr_assert_geq(rg_now() - t0, 200, "it waited for the other's commit");
    other_worker_done(kid);
    cr_assert_eq(ps.next_wake, T("2026-03-02T11:00:00Z"), "e2 is still due");
}

/* A connection that inserted 1,000 events or more analyses events and
 * patients after its commit (the prefetch of a group read every row of the
 * clinic without statistics), only the columns the statements read (no
 * body), and not the tables it did not grow (transitions). The digests it
 * sent (pg.c's, not the server's) are the server's sha256 of each body. */
Test(conf_pg, a_connection_that_grew_events_analyses_them, .init = setup_pg, .fini = teardown)
{
    NO_PG_SKIP();
    enum { N = 100 };
    rg_event ev[N];
    const rg_event *evs[N];
    rg_put res[N];
    for (int b = 0; b < 11; b++) {
        for (int i = 0; i < N; i++) {
            char id[16], pat[16];
            snprintf(id, sizeof id, "e%d", b * N + i);
            snprintf(pat, sizeof pat, "p%d", b * N + i);
            ev_make(&ev[i], "north", id, pat, "2026-03-02T10:00:00Z", "{\"x\":\"\u00e9\"}");
            evs[i] = &ev[i];
        }
        const char *stats = "SELECT count(*) FROM pg_stats WHERE schemaname = current_schema()"
                            " AND tablename = 'events' AND attname = 'patient'";
        if (b <= 9) /* (900 events before the tenth batch) */
            cr_assert_eq(raw_int(stats), 0, "not analysed before (batch %d)", b);
        cr_assert_eq(rg_store_begin(st), RG_OK);
        cr_assert_eq(rg_store_put_events(st, evs, N, 2000, res, NULL), RG_OK, "%s",
                     rg_store_errmsg(st));
        cr_assert_eq(rg_store_commit(st), RG_OK);
        for (int i = 0; i < N; i++) {
            cr_assert_eq(res[i], RG_PUT_STORED);
            rg_event_clear(&ev[i]);
        }
        if (b < 9)
            continue;
        cr_assert_eq(raw_int(stats), 1, "analysed after 1,000 (batch %d)", b);
    }
    static const char *const want[][3] = {{"events", "patient", "1"}, {"events", "body", "0"},
                                          {"events", "fields", "0"}, {"patients", "patient", "1"},
                                          {"transitions", "key", "0"}};
    for (int k = 0; k < 5; k++) {
        char sql[512];
        snprintf(sql, sizeof sql, "SELECT count(*) FROM pg_stats WHERE schemaname ="
                 " current_schema() AND tablename = '%s' AND attname = '%s'",
                 want[k][0], want[k][1]);
        cr_assert_eq(raw_int(sql), atoi(want[k][2]), "%s.%s", want[k][0], want[k][1]);
    }
    cr_assert_eq(raw_int("SELECT count(*) FROM events WHERE digest = left(encode(sha256("
                         "convert_to(rg_body(body, id, clinic, patient, type, at, utc_offset),"
                         " 'UTF8')), 'hex'), 32)"),
                 11 * N);
}

/* Two workers open the same key at once: the second's insert of its
 * open_alerts row waits for the first's commit and is then refused, so the
 * key has one opening (a read of the key's last transition, as the guard
 * was before schema 16, would see nothing uncommitted and let both in). */
Test(conf_pg, two_workers_opening_one_key_get_one_opening, .init = setup_pg, .fini = teardown)
{
    NO_PG_SKIP();
    int ready[2];
    cr_assert_eq(pipe(ready), 0);
    pid_t kid = fork();
    cr_assert_geq(kid, 0);
    if (kid == 0) {
        rg_store *other = NULL;
        char err[512];
        int64_t a = 0;
        rg_transition t = tr(1, "north", "p1", "k-z", T("2026-03-02T10:00:00Z"));
        int ok = rg_store_open(&other, url, NULL, err, sizeof err) == RG_OK &&
                 rg_store_begin(other) == RG_OK && rg_store_transition(other, &t, &a) == RG_OK;
        ok = write(ready[1], "x", 1) == 1 && ok; /* opened, not committed */
        usleep(300000);
        ok = ok && rg_store_commit(other) == RG_OK;
        rg_store_close(other);
        _exit(ok ? 0 : 1);
    }
    char x;
    close(ready[1]);
    cr_assert_eq(read(ready[0], &x, 1), 1, "the other worker opened nothing");
    close(ready[0]);
    int64_t b = 0;
    rg_transition t = tr(1, "north", "p1", "k-z", T("2026-03-02T10:00:30Z"));
    cr_assert_eq(rg_store_begin(st), RG_OK);
    rg_time t0 = rg_now();
    cr_assert_eq(rg_store_transition(st, &t, &b), RG_EDB, "the key is open (the other's)");
    cr_assert_geq(rg_now() - t0, 200, "it waited for the other's commit");
    rg_store_rollback(st);
    int status = 0;
    cr_assert_eq(waitpid(kid, &status, 0), kid);
    cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "the other worker failed");
    cr_assert_eq(pg_int("SELECT count(*) FROM transitions WHERE key = 'k-z'"), 1);
    int64_t cseq = 0;
    cr_assert_eq(rg_store_last_cseq(st, "north", &cseq), RG_OK);
    cr_assert_eq(cseq, 1, "the refused one took no number");
}

/* Two connections appending to one audit trail, in turn and in several
 * entries a transaction (two workers' group commits): each chains its first
 * entry from the tip its own last commit left without reading the chain,
 * and when the other moved it since, its insert finds that out under the
 * row's lock and chains its entries again from the tip found: the trail
 * verifies whole, every entry there once, in one statement a transaction
 * once a connection has committed one. */
Test(conf_pg, audit_entries_of_two_connections_chain_whole, .init = setup_pg, .fini = teardown)
{
    NO_PG_SKIP();
    rg_store *two = NULL;
    char err[256];
    cr_assert_eq(rg_store_open(&two, url, NULL, err, sizeof err), RG_OK, "%s", err);
    rg_store *by[2] = {st, two}, *prev = NULL;
    int n = 0;
    /* st, two, st, two (each after the other moved the tip), st, st */
    for (int round = 0; round < 6; round++) {
        rg_store *s = by[round == 5 ? 0 : round % 2];
        uint64_t s0, s1, t;
        rg_store_db_counts(&s0, &t);
        cr_assert_eq(rg_store_begin(s), RG_OK);
        for (int k = 0; k < 3; k++, n++) {
            char who[16];
            snprintf(who, sizeof who, "w%d-%d", round, k);
            rg_audit_entry e = {.at = 1000 + n, .who = who, .role = "nurse",
                                .address = "127.0.0.1:1", .clinic = "north",
                                .patients = "[\"p1\"]", .route = "POST /v1/events",
                                .outcome = "200"};
            cr_assert_eq(rg_audit_append(s, &e), RG_OK, "%s", rg_store_errmsg(s));
        }
        cr_assert_eq(rg_store_commit(s), RG_OK, "round %d: %s", round, rg_store_errmsg(s));
        rg_store_db_counts(&s1, &t);
        if (s == prev) /* (its own tip is the trail's) */
            cr_assert_eq(s1 - s0, 1, "the entries only, no read of the chain");
        prev = s;
    }
    rg_audit_report r;
    cr_assert_eq(rg_audit_verify(st, &r), RG_OK);
    cr_assert(r.ok, "%s (entry %lld)", r.why, (long long)r.broken_seq);
    cr_assert_eq(r.checked, n);
    cr_assert_eq(pg_int("SELECT count(DISTINCT who) FROM audit"), n);
    cr_assert_eq(pg_int("SELECT max(seq) FROM audit"), n);
    rg_store_close(two);
}

/* The feed's read right after a commit (the service publishing what it
 * evaluated) is answered from the transitions the transaction wrote, with
 * the seq and cseq they got: the same rows a read of the database gives, no
 * statement sent; a read that asks for more than them (from an earlier
 * cseq), or comes after another statement, reads the database. */
Test(conf_pg, feed_after_a_commit_is_what_it_wrote, .init = setup_pg, .fini = teardown)
{
    NO_PG_SKIP();
    int64_t a = 0, b = 0, c = 0, last = 0;
    uint64_t s0, s1, t0;
    cr_assert_eq(rg_store_begin(st), RG_OK);
    rg_store_defer_writes(st, 1);
    rg_transition o1 = tr(1, "north", "p1", "k-a", T("2026-03-02T10:00:00Z"));
    cr_assert_eq(rg_store_transition(st, &o1, &a), RG_OK);
    cr_assert_eq(rg_store_commit(st), RG_OK, "%s", rg_store_errmsg(st));
    rg_store_defer_writes(st, 0);
    cr_assert_eq(rg_store_last_cseq(st, "north", &last), RG_OK);
    cr_assert_eq(last, 1);
    for (int round = 0; round < 3; round++) {
        cr_assert_eq(rg_store_begin(st), RG_OK);
        rg_store_defer_writes(st, 1);
        char kb[16], kc[16], ks[16];
        snprintf(kb, sizeof kb, "k-b%d", round);
        snprintf(kc, sizeof kc, "k-c%d", round);
        snprintf(ks, sizeof ks, "k-s%d", round);
        rg_transition o2 = tr(1, "north", "p2", kb, T("2026-03-02T11:00:00Z"));
        rg_transition o3 = tr(1, "south", "p3", ks, T("2026-03-02T11:00:00Z"));
        rg_transition r1 = tr(1, "north", "p1", kc, T("2026-03-02T12:00:00Z"));
        rg_transition r2 = tr(0, "north", "p2", kb, T("2026-03-02T12:00:00Z"));
        o2.params = "{\"x\":1}";
        o2.notify_at = T("2026-03-02T13:00:00Z");
        o2.cause = "ann (nurse)";
        cr_assert_eq(rg_store_transition(st, &o2, &b), RG_OK);
        cr_assert_eq(rg_store_transition(st, &o3, &c), RG_OK);
        cr_assert_eq(rg_store_transition(st, &r1, &a), RG_OK);
        cr_assert_eq(rg_store_transition(st, &r2, &b), RG_OK);
        cr_assert_eq(rg_store_commit(st), RG_OK, "%s", rg_store_errmsg(st));
        rg_store_defer_writes(st, 0);
        int64_t unused;
        if (round == 2) /* a statement in between: read */
            cr_assert_eq(rg_store_last_cseq(st, "south", &unused), RG_OK);
        trs mem = {0}, db = {0};
        rg_store_db_counts(&s0, &t0);
        /* round 1: from an earlier cseq than what it wrote: read */
        cr_assert_eq(rg_store_clinic_transitions(st, "north", round == 1 ? last - 1 : last, 100,
                                                 collect_tr, &mem), RG_OK);
        rg_store_db_counts(&s1, &t0);
        cr_assert_eq(s1 - s0, round == 0 ? 0 : 1, "round %d: %s", round,
                     round ? "read from the database" : "answered from the writes");
        cr_assert_eq(rg_store_clinic_transitions(st, "north", round == 1 ? last - 1 : last, 100,
                                                 collect_tr, &db), RG_OK);
        rg_store_db_counts(&s0, &t0);
        cr_assert_eq(s0 - s1, 1, "a second read goes to the database");
        cr_assert_eq(mem.n, round == 1 ? 4 : 3);
        cr_assert_eq(db.n, mem.n);
        for (int i = 0; i < mem.n; i++) {
            cr_assert_eq(mem.seq[i], db.seq[i]);
            cr_assert_eq(mem.cseq[i], db.cseq[i]);
            cr_assert_eq(mem.cseq[i], last + i + (round == 1 ? 0 : 1));
            cr_assert_eq(mem.open[i], db.open[i]);
            cr_assert_str_eq(mem.key[i], db.key[i]);
            cr_assert_str_eq(mem.clinic[i], "north");
            cr_assert_str_eq(mem.params[i], db.params[i]);
            cr_assert_str_eq(mem.evidence[i], db.evidence[i]);
        }
        last += 3;
    }
}

/* A group's transitions in one call of the session function
 * (rg_store_defer_writes): every key's first row of the call guarded
 * against the store, each later row against its key's row before it in the
 * call, a key's open_alerts row left as its last row leaves it; whatever
 * breaks the alternation is refused (the whole transaction), and the
 * clinic's cseq has one number a stored transition, no gaps. */
Test(conf_pg, deferred_transitions_keep_the_alternation_and_cseq, .init = setup_pg,
     .fini = teardown)
{
    NO_PG_SKIP();
    int64_t a = 0, b = 0, c = 0, x = 0;
    cr_assert_eq(rg_store_begin(st), RG_OK);
    rg_store_defer_writes(st, 1);
    rg_transition o1 = tr(1, "north", "p1", "k-a", T("2026-03-02T10:00:00Z"));
    rg_transition o2 = tr(1, "north", "p2", "k-b", T("2026-03-02T10:00:00Z"));
    rg_transition o3 = tr(1, "south", "p3", "k-s", T("2026-03-02T10:00:00Z"));
    rg_transition r1 = tr(0, "north", "p1", "k-a", T("2026-03-02T11:00:00Z"));
    rg_transition o4 = tr(1, "north", "p1", "k-a", T("2026-03-02T12:00:00Z"));
    cr_assert_eq(rg_store_transition(st, &o1, &a), RG_OK);
    cr_assert_eq(rg_store_transition(st, &o2, &b), RG_OK);
    cr_assert_eq(rg_store_transition(st, &o3, &c), RG_OK);
    cr_assert_eq(rg_store_transition(st, &r1, &a), RG_OK);
    cr_assert_eq(rg_store_transition(st, &o4, &x), RG_OK);
    cr_assert_eq(rg_store_commit(st), RG_OK, "%s", rg_store_errmsg(st));
    rg_store_defer_writes(st, 0);
    cr_assert_eq(pg_int("SELECT count(*) FROM transitions"), 5);
    cr_assert_eq(pg_int("SELECT count(*) FROM open_alerts"), 3, "k-a again, k-b, k-s");
    cr_assert_eq(pg_int("SELECT count(*) FROM transitions t JOIN transitions o ON o.clinic ="
                        " t.clinic AND o.seq = t.alert_id AND o.state = 'open' AND o.key = 'k-a'"
                        " WHERE t.state = 'resolved'"),
                 1, "the resolution names the opening of the same call");
    int64_t cseq = 0;
    cr_assert_eq(rg_store_last_cseq(st, "north", &cseq), RG_OK);
    cr_assert_eq(cseq, 4);
    cr_assert_eq(pg_int("SELECT max(cseq) - min(cseq) + 1 - count(*) FROM transitions"
                        " WHERE clinic = 'north'"),
                 0, "north's numbers without gaps");
    cr_assert_eq(rg_store_last_cseq(st, "south", &cseq), RG_OK);
    cr_assert_eq(cseq, 1);

    /* an opening of an open key: k-b (open before the call, first round),
     * k-n (opened in the call's first round, again in its second) */
    for (int many = 0; many < 2; many++) {
        cr_assert_eq(rg_store_begin(st), RG_OK);
        rg_store_defer_writes(st, 1);
        rg_transition n1 = tr(1, "north", "p4", "k-n", T("2026-03-02T13:00:00Z"));
        rg_transition bad = tr(1, "north", many ? "p4" : "p2", many ? "k-n" : "k-b",
                               T("2026-03-02T13:00:00Z"));
        cr_assert_eq(rg_store_transition(st, &n1, &x), RG_OK);
        cr_assert_eq(rg_store_transition(st, &bad, &x), RG_OK, "deferred");
        cr_assert_neq(rg_store_commit(st), RG_OK, "an opening of an open key (%s round)",
                      many ? "second" : "first");
        rg_store_rollback(st);
        rg_store_defer_writes(st, 0);
        cr_assert_eq(pg_int("SELECT count(*) FROM transitions"), 5, "nothing of it stored");
        cr_assert_eq(rg_store_last_cseq(st, "north", &cseq), RG_OK);
        cr_assert_eq(cseq, 4, "no number taken");
    }
    /* a resolution of another alert of an open key, met once in the call */
    cr_assert_eq(rg_store_begin(st), RG_OK);
    rg_store_defer_writes(st, 1);
    int64_t wrong = pg_int("SELECT seq FROM transitions WHERE key = 'k-s'");
    rg_transition rb = tr(0, "north", "p2", "k-b", T("2026-03-02T14:00:00Z"));
    cr_assert_eq(rg_store_transition(st, &rb, &wrong), RG_OK, "deferred");
    cr_assert_neq(rg_store_commit(st), RG_OK, "k-b's alert is not k-s's");
    rg_store_rollback(st);
    rg_store_defer_writes(st, 0);
    cr_assert_eq(pg_int("SELECT count(*) FROM transitions"), 5);
    /* a key met more than once in the call ends as its last row leaves it:
     * k-a's row is o4's; k-b resolved then opened again (its row the new
     * opening's), k-m opened then resolved (no row) */
#define RG__LAST_OPENING(k)                                                                 \
    "SELECT count(*) FROM open_alerts WHERE key = '" k "' AND alert = (SELECT max(seq)"    \
    " FROM transitions WHERE key = '" k "' AND state = 'open')"
    cr_assert_eq(pg_int(RG__LAST_OPENING("k-a")), 1, "k-a's open alert is its last opening");
    cr_assert_eq(rg_store_begin(st), RG_OK);
    rg_store_defer_writes(st, 1);
    int64_t y = 0, m = 0;
    rg_transition rb1 = tr(0, "north", "p2", "k-b", T("2026-03-02T15:00:00Z"));
    rg_transition ob2 = tr(1, "north", "p2", "k-b", T("2026-03-02T16:00:00Z"));
    rg_transition om = tr(1, "north", "p5", "k-m", T("2026-03-02T15:00:00Z"));
    rg_transition rm = tr(0, "north", "p5", "k-m", T("2026-03-02T16:00:00Z"));
    b = pg_int("SELECT alert FROM open_alerts WHERE key = 'k-b'"); /* (a token no more) */
    cr_assert_eq(rg_store_transition(st, &rb1, &b), RG_OK);
    cr_assert_eq(rg_store_transition(st, &om, &m), RG_OK);
    cr_assert_eq(rg_store_transition(st, &ob2, &y), RG_OK);
    cr_assert_eq(rg_store_transition(st, &rm, &m), RG_OK);
    cr_assert_eq(rg_store_commit(st), RG_OK, "%s", rg_store_errmsg(st));
    rg_store_defer_writes(st, 0);
    cr_assert_eq(pg_int("SELECT count(*) FROM transitions"), 9);
    cr_assert_eq(pg_int(RG__LAST_OPENING("k-b")), 1, "k-b's open alert is the call's opening");
    cr_assert_eq(pg_int("SELECT count(*) FROM transitions WHERE key = 'k-b'"), 3);
    cr_assert_eq(pg_int("SELECT count(*) FROM open_alerts WHERE key = 'k-m'"), 0,
                 "k-m opened and resolved in the call");
    cr_assert_eq(pg_int("SELECT count(*) FROM open_alerts"), 3, "k-a, k-b, k-s");
    cr_assert_eq(rg_store_last_cseq(st, "north", &cseq), RG_OK);
    cr_assert_eq(cseq, 8);
    /* a resolution of another alert, second of its key in the call */
    cr_assert_eq(rg_store_begin(st), RG_OK);
    rg_store_defer_writes(st, 1);
    rg_transition oq = tr(1, "north", "p6", "k-q", T("2026-03-02T17:00:00Z"));
    rg_transition rq = tr(0, "north", "p6", "k-q", T("2026-03-02T18:00:00Z"));
    int64_t z = 0;
    cr_assert_eq(rg_store_transition(st, &oq, &z), RG_OK);
    cr_assert_eq(rg_store_transition(st, &rq, &wrong), RG_OK, "deferred");
    cr_assert_neq(rg_store_commit(st), RG_OK, "k-q's alert is not k-s's");
    rg_store_rollback(st);
    rg_store_defer_writes(st, 0);
    cr_assert_eq(pg_int("SELECT count(*) FROM transitions"), 9, "nothing of it stored");
    cr_assert_eq(pg_int("SELECT count(*) FROM open_alerts"), 3);
    (void)c;
}

/* ---- leases (many workers) ---------------------------------------------------------- */

/* A second connection to the test's store (another worker). */
static rg_store *open_other(void)
{
    rg_store *other = NULL;
    char err[512];
    cr_assert_eq(rg_store_open(&other, url, NULL, err, sizeof err), RG_OK, "%s", err);
    return other;
}

Test(conf_pg, a_lease_is_one_connections_until_it_ends, .init = setup_pg, .fini = teardown)
{
    NO_PG_SKIP();
    rg_store *other = open_other();
    int held = -1;
    cr_assert_eq(rg_store_lease(st, "north", &held), RG_OK);
    cr_assert_eq(held, 1);
    cr_assert_eq(rg_store_lease(st, "north", &held), RG_OK);
    cr_assert_eq(held, 1, "held already");
    cr_assert_eq(rg_store_lease(other, "north", &held), RG_OK);
    cr_assert_eq(held, 0, "one holder at a time");
    cr_assert_eq(rg_store_lease(other, "south", &held), RG_OK);
    cr_assert_eq(held, 1);
    /* only the leased clinics' wake-ups, once asked */
    put("north", "e1", "p1", "2026-03-02T10:00:00Z", NULL);
    rg_store_lease_only(other, 1);
    rg_time w;
    cr_assert_eq(rg_store_next_wake(other, &w), RG_OK);
    cr_assert_eq(w, RG_TIME_NONE, "north is not other's");
    rg_time sn = 0;
    cr_assert_eq(rg_store_next_due(other, NULL, 0, &w, &sn), RG_OK);
    cr_assert_eq(w, RG_TIME_NONE, "north is not other's (the two reads in one)");
    cr_assert_eq(rg_store_next_wake(st, &w), RG_OK);
    cr_assert_eq(w, T("2026-03-02T10:00:00Z"));
    cr_assert_eq(rg_store_next_due(st, NULL, 0, &w, &sn), RG_OK);
    cr_assert_eq(w, T("2026-03-02T10:00:00Z"));
    names due = {0};
    cr_assert_eq(rg_store_due_patients(other, NULL, T("2026-03-03T00:00:00Z"), 10, collect_pat, &due),
                 0);
    /* the holder's connection ends: the lease is free as soon as its server
     * process is gone (a few milliseconds: it ends after the socket closes) */
    rg_store_close(st);
    st = NULL;
    held = 0;
    for (int i = 0; i < 500 && !held; i++) {
        cr_assert_eq(rg_store_lease(other, "north", &held), RG_OK);
        if (!held)
            usleep(10000);
    }
    cr_assert_eq(held, 1, "the lease came free within 5 s");
    cr_assert_eq(rg_store_next_wake(other, &w), RG_OK);
    cr_assert_eq(w, T("2026-03-02T10:00:00Z"));
    rg_store_close(other);
}

/* A lease given back is another's to take, and off the wake-up reads of the
 * one that gave it (given back in the middle, first and last of its list). */
Test(conf_pg, a_lease_given_back_is_free_and_no_longer_read, .init = setup_pg, .fini = teardown)
{
    NO_PG_SKIP();
    rg_store *other = open_other();
    int held = -1;
    const char *clinics[3] = {"north", "south", "west"};
    for (int i = 0; i < 3; i++) {
        cr_assert_eq(rg_store_lease(st, clinics[i], &held), RG_OK);
        cr_assert_eq(held, 1);
    }
    put("north", "e1", "p1", "2026-03-02T10:00:00Z", NULL);
    put("south", "e2", "p2", "2026-03-02T11:00:00Z", NULL);
    put("west", "e3", "p3", "2026-03-02T12:00:00Z", NULL);
    rg_store_lease_only(st, 1);
    rg_time w;
    const char *order[3] = {"south", "north", "west"}; /* middle, then first, then last */
    const char *next[3] = {"2026-03-02T10:00:00Z", "2026-03-02T12:00:00Z", NULL};
    for (int i = 0; i < 3; i++) {
        cr_assert_eq(rg_store_lease(other, order[i], &held), RG_OK);
        cr_assert_eq(held, 0, "%s is held", order[i]);
        cr_assert_eq(rg_store_unlease(st, order[i]), RG_OK);
        cr_assert_eq(rg_store_unlease(st, order[i]), RG_OK, "giving back twice is nothing");
        cr_assert_eq(rg_store_lease(other, order[i], &held), RG_OK);
        cr_assert_eq(held, 1, "%s came free", order[i]);
        cr_assert_eq(rg_store_next_wake(st, &w), RG_OK);
        cr_assert_eq(w, next[i] ? T(next[i]) : RG_TIME_NONE, "after giving back %s", order[i]);
    }
    /* none left, then one taken again: the list is whole again */
    cr_assert_eq(rg_store_unlease(other, "north"), RG_OK);
    cr_assert_eq(rg_store_lease(st, "north", &held), RG_OK);
    cr_assert_eq(held, 1);
    cr_assert_eq(rg_store_next_wake(st, &w), RG_OK);
    cr_assert_eq(w, T("2026-03-02T10:00:00Z"));
    rg_store_close(other);
}

static char due_clinics[64];
static int on_due_clinic(void *ud, const char *clinic, const char *key, const char *patient)
{
    (void)ud;
    (void)key;
    (void)patient;
    strncat(due_clinics, clinic, sizeof due_clinics - strlen(due_clinics) - 2);
    strcat(due_clinics, " ");
    return 0;
}

/* The timer's reads on a worker that reads its leased clinics only: the
 * snoozes (their join names the clinic on each of its tables) and the
 * earliest wake-up past the patients it leaves out (a hashed NOT IN) are
 * the leased clinic's; another connection reading every clinic sees both. */
Test(conf_pg, the_timers_reads_keep_to_the_leased_clinics, .init = setup_pg, .fini = teardown)
{
    NO_PG_SKIP();
    rg_store *other = open_other();
    int held = -1;
    cr_assert_eq(rg_store_lease(st, "north", &held), RG_OK);
    cr_assert_eq(held, 1);
    int64_t a = 0, b = 0;
    rg_transition tn = tr(1, "north", "p1", "k-n", T("2026-03-02T09:00:00Z"));
    rg_transition ts = tr(1, "south", "p9", "k-s", T("2026-03-02T09:00:00Z"));
    cr_assert_eq(rg_store_transition(st, &tn, &a), RG_OK);
    cr_assert_eq(rg_store_transition(st, &ts, &b), RG_OK);
    cr_assert_eq(rg_store_alert_action(st, "north", "k-n", "snooze", "nurse", "",
                                       T("2026-03-02T12:00:00Z"), T("2026-03-02T09:05:00Z")),
                 RG_OK);
    cr_assert_eq(rg_store_alert_action(st, "south", "k-s", "snooze", "nurse", "",
                                       T("2026-03-02T11:00:00Z"), T("2026-03-02T09:05:00Z")),
                 RG_OK);
    put("north", "e1", "p1", "2026-03-02T10:00:00Z", NULL);
    put("north", "e2", "p2", "2026-03-02T10:30:00Z", NULL);
    put("south", "e3", "p3", "2026-03-02T08:00:00Z", NULL);
    rg_store_lease_only(st, 1);
    rg_time sn = 0, w = 0;
    cr_assert_eq(rg_store_next_snooze(st, &sn), RG_OK);
    cr_assert_eq(sn, T("2026-03-02T12:00:00Z"), "south's snooze is not st's");
    cr_assert_eq(rg_store_next_due(st, NULL, 0, &w, &sn), RG_OK);
    cr_assert_eq(w, T("2026-03-02T10:00:00Z"));
    cr_assert_eq(sn, T("2026-03-02T12:00:00Z"));
    const char *skip[] = {"north/p1", "south/p3"};
    cr_assert_eq(rg_store_next_due(st, skip, 2, &w, &sn), RG_OK);
    cr_assert_eq(w, T("2026-03-02T10:30:00Z"), "north/p1 left out");
    const char *both[] = {"north/p2", "north/p1"};
    cr_assert_eq(rg_store_next_due(st, both, 2, &w, &sn), RG_OK);
    cr_assert_eq(w, RG_TIME_NONE, "every north patient left out");
    cr_assert_eq(sn, T("2026-03-02T12:00:00Z"));
    int count = -1;
    due_clinics[0] = 0;
    cr_assert_eq(rg_store_each_due_snooze(st, T("2026-03-02T11:30:00Z"), on_due_clinic, NULL, &count),
                 RG_OK);
    cr_assert_eq(count, 0, "south's due snooze is not st's");
    cr_assert_eq(rg_store_each_due_snooze(st, T("2026-03-02T12:00:00Z"), on_due_clinic, NULL, &count),
                 RG_OK);
    cr_assert_eq(count, 1);
    cr_assert_str_eq(due_clinics, "north ");
    /* a connection that reads every clinic */
    cr_assert_eq(rg_store_next_due(other, skip, 2, &w, &sn), RG_OK);
    cr_assert_eq(w, T("2026-03-02T10:30:00Z"));
    cr_assert_eq(sn, T("2026-03-02T11:00:00Z"));
    due_clinics[0] = 0;
    cr_assert_eq(rg_store_each_due_snooze(other, T("2026-03-02T12:00:00Z"), on_due_clinic, NULL,
                                          &count),
                 RG_OK);
    cr_assert_eq(count, 2);
    cr_assert(strstr(due_clinics, "north") && strstr(due_clinics, "south"), "%s", due_clinics);
    rg_store_close(other);
}

/* The workers are the connections that hold the store shared; a sweep's
 * (alone) is not one. */
Test(conf_pg, the_workers_are_counted_by_their_shared_hold, .init = setup_pg, .fini = teardown)
{
    NO_PG_SKIP();
    rg_store *other = open_other();
    int n = -1, ok = 0;
    cr_assert_eq(rg_store_workers(st, &n), RG_OK);
    cr_assert_eq(n, 0);
    cr_assert_eq(rg_store_hold(st, 0, &ok), RG_OK);
    cr_assert_eq(ok, 1);
    cr_assert_eq(rg_store_workers(other, &n), RG_OK);
    cr_assert_eq(n, 1);
    cr_assert_eq(rg_store_hold(other, 0, &ok), RG_OK);
    cr_assert_eq(rg_store_workers(st, &n), RG_OK);
    cr_assert_eq(n, 2);
    rg_store_close(other);
    for (int i = 0; i < 500 && n != 1; i++) { /* gone with its server process */
        usleep(10000);
        cr_assert_eq(rg_store_workers(st, &n), RG_OK);
    }
    cr_assert_eq(n, 1);
}

Test(conf_pg, a_notice_comes_when_another_connection_stores_events, .init = setup_pg,
     .fini = teardown)
{
    NO_PG_SKIP();
    rg_store *other = open_other();
    int fd = -1;
    cr_assert_eq(rg_store_changes_fd(other, &fd), RG_OK);
    cr_assert_geq(fd, 0);
    cr_assert_eq(rg_store_changed(other), 0);
    put("north", "e1", "p1", "2026-03-02T10:00:00Z", NULL);
    struct pollfd p = {.fd = fd, .events = POLLIN};
    cr_assert_eq(poll(&p, 1, 5000), 1, "the socket became readable");
    cr_assert_gt(rg_store_changed(other), 0);
    rg_store_close(other);
}

typedef struct news {
    int n, unnamed;
    char clinic[64];
} news;

/* A connection's own commits are no news to it (as SQLite's data_version):
 * a worker reads its own commits' transitions and timer after committing,
 * not once more when PostgreSQL hands it back its own NOTIFY. */
Test(conf_pg, a_connections_own_commit_is_no_news_to_it, .init = setup_pg, .fini = teardown)
{
    NO_PG_SKIP();
    rg_store *other = open_other();
    int fd = -1;
    cr_assert_eq(rg_store_changes_fd(st, &fd), RG_OK);
    cr_assert_eq(rg_store_changes_fd(other, &fd), RG_OK);
    put("north", "e1", "p1", "2026-03-02T10:00:00Z", NULL); /* (on st) */
    struct pollfd p = {.fd = fd, .events = POLLIN};
    cr_assert_eq(poll(&p, 1, 5000), 1, "the other one was told");
    cr_assert_gt(rg_store_changed(other), 0);
    cr_assert_eq(rg_store_changed(st), 0, "its own commit is not news to st");
    rg_store_close(other);
}

typedef struct two_sides {
    int a, b, others;
} two_sides;

static void note_side(void *ud, const char *clinic)
{
    two_sides *w = ud;
    if (clinic && !strcmp(clinic, "aside"))
        w->a++;
    else if (clinic && !strcmp(clinic, "bside"))
        w->b++;
    else
        w->others++;
}

/* The notice channel is the schema's: PostgreSQL's channels are the
 * database's, and a database may hold several stores (a schema each), whose
 * workers must not wake each other. A write in this test's schema (A), then
 * one in schema B: a listener in B is told of B's and never of A's (notices
 * come in commit order, so A's would have come first). */
Test(conf_pg, a_write_in_one_schema_wakes_no_listener_of_another, .init = setup_pg,
     .fini = teardown)
{
    NO_PG_SKIP();
    const char *base = getenv("RG_TEST_PG_URL");
    char b_schema[80], b_url[1300], sql[256], err[512] = "";
    snprintf(b_schema, sizeof b_schema, "%s_b", schema);
    snprintf(sql, sizeof sql, "DROP SCHEMA IF EXISTS %s CASCADE; CREATE SCHEMA %s", b_schema,
             b_schema);
    raw_sql(sql);
    snprintf(b_url, sizeof b_url, "%s%soptions=-csearch_path%%3D%s", base,
             strchr(base, '?') ? "&" : "?", b_schema);
    rg_store *b_listen = NULL, *b_write = NULL, *a_listen = open_other();
    cr_assert_eq(rg_store_open(&b_listen, b_url, NULL, err, sizeof err), RG_OK, "%s", err);
    cr_assert_eq(rg_store_open(&b_write, b_url, NULL, err, sizeof err), RG_OK, "%s", err);
    int fd = -1, afd = -1;
    cr_assert_eq(rg_store_changes_fd(b_listen, &fd), RG_OK);
    cr_assert_eq(rg_store_changes_fd(a_listen, &afd), RG_OK);
    put("aside", "e1", "p1", "2026-03-02T10:00:00Z", NULL); /* (on st: schema A) */
    rg_event ev;
    rg_put res;
    ev_make(&ev, "bside", "e1", "p1", "2026-03-02T10:00:00Z", NULL);
    cr_assert_eq(rg_store_put_event(b_write, &ev, 1000, &res), RG_OK, "%s",
                 rg_store_errmsg(b_write));
    rg_event_clear(&ev);
    two_sides w = {0}, wa = {0};
    for (int i = 0; i < 50 && !w.b; i++) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        cr_assert_geq(poll(&p, 1, 100), 0);
        cr_assert_geq(rg_store_changed_each(b_listen, note_side, &w), 0);
    }
    cr_assert_eq(w.b, 1, "B's listener is told of B's write");
    cr_assert_eq(w.a, 0, "and not of A's");
    cr_assert_eq(w.others, 0);
    for (int i = 0; i < 50 && !wa.a; i++) { /* (A's listener still hears A) */
        struct pollfd p = {.fd = afd, .events = POLLIN};
        cr_assert_geq(poll(&p, 1, 100), 0);
        cr_assert_geq(rg_store_changed_each(a_listen, note_side, &wa), 0);
    }
    cr_assert_eq(wa.a, 1, "A's listener is told of A's write");
    cr_assert_eq(wa.b, 0, "and not of B's");
    rg_store_close(a_listen);
    rg_store_close(b_listen);
    rg_store_close(b_write);
    snprintf(sql, sizeof sql, "DROP SCHEMA IF EXISTS %s CASCADE", b_schema);
    raw_sql(sql);
}

/* The one way to learn of other writers (rg_store_changes_fd, then
 * rg_store_changed): nothing before another connection commits, news once
 * it has (after the descriptor, when there is one, says so), and nothing
 * again until the next commit. */
static void note_news(void *ud, const char *clinic)
{
    news *w = ud;
    w->n++;
    if (clinic)
        snprintf(w->clinic, sizeof w->clinic, "%s", clinic);
    else
        w->unnamed++;
}

/* ... and the clinic each change concerns when the backend can tell
 * (PostgreSQL: the notice's payload; SQLite: NULL, any clinic). */
CONFORM(another_writers_commit_is_seen_by_changed)
{
    rg_store *other = open_other();
    int fd = -2;
    news w = {0};
    cr_assert_eq(rg_store_changes_fd(other, &fd), RG_OK);
    cr_assert_geq(fd, -1);
    cr_assert_eq(rg_store_changed_each(other, note_news, &w), 0, "nothing yet");
    cr_assert_eq(w.n, 0);
    put("north", "e1", "p1", "2026-03-02T10:00:00Z", NULL);
    if (fd >= 0) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        cr_assert_eq(poll(&p, 1, 5000), 1, "the descriptor became readable");
    }
    cr_assert_gt(rg_store_changed_each(other, note_news, &w), 0, "the commit is news");
    cr_assert_geq(w.n, 1, "told once a change");
    if (fd >= 0)
        cr_assert_str_eq(w.clinic, "north", "a notice names its clinic");
    else
        cr_assert_eq(w.unnamed, w.n, "SQLite cannot tell which clinic");
    cr_assert_eq(rg_store_changed(other), 0, "and only once");
    rg_store_close(other);
}

Test(conf_sqlite, sqlite_holds_every_lease_and_has_no_notices, .init = setup_sqlite,
     .fini = teardown)
{
    int held = 0;
    cr_assert_eq(rg_store_lease(st, "north", &held), RG_OK);
    cr_assert_eq(held, 1);
    cr_assert_eq(rg_store_unlease(st, "north"), RG_OK);
    int n = 0;
    cr_assert_eq(rg_store_workers(st, &n), RG_OK);
    cr_assert_eq(n, 1, "one service holds a SQLite file");
    int fd = 0;
    cr_assert_eq(rg_store_changes_fd(st, &fd), RG_OK);
    cr_assert_eq(fd, -1, "no descriptor: the holder's signal says when to ask");
    cr_assert_eq(rg_store_changed(st), 0);
}

static int sum_failing(void *ud, const char *clinic, const char *protocol, const char *rule,
                       int64_t patients, rg_time since, const char *message)
{
    (void)clinic, (void)protocol, (void)rule, (void)message;
    cr_assert_eq(since, 5, "since the first failure");
    *(int64_t *)ud += patients;
    return 0;
}

static int count_pairs(void *ud, const char *protocol, const char *rule)
{
    (void)protocol, (void)rule;
    ++*(int *)ud;
    return 0;
}

/* Failing rules (failures are alerts): counted per (clinic, protocol, rule)
 * before and after each change, kept per patient; a re-raise is a
 * transition that leaves its alert open and the key's alternation intact. */
CONFORM(failing_rules_and_reraised_transitions)
{
    int64_t before = -1, after = -1, total = 0;
    rg_time since = 0;
    cr_assert_eq(rg_store_rule_failing(st, "north", "p1", "ket", "r1", 5, "boom", &before,
                                       &after, &since), RG_OK);
    cr_assert(before == 0 && after == 1 && since == 5);
    cr_assert_eq(rg_store_rule_failing(st, "north", "p1", "ket", "r1", 9, "boom again", &before,
                                       &after, &since), RG_OK);
    cr_assert(before == 1 && after == 1 && since == 5, "a failure again changes nothing");
    cr_assert_eq(rg_store_rule_failing(st, "north", "p2", "ket", "r1", 7, "boom", &before,
                                       &after, &since), RG_OK);
    cr_assert(before == 1 && after == 2 && since == 5);
    cr_assert_eq(rg_store_failing_summary(st, sum_failing, &total), RG_OK);
    cr_assert_eq(total, 2);
    int pairs = 0;
    cr_assert_eq(rg_store_each_failing(st, "north", "p2", count_pairs, &pairs), RG_OK);
    cr_assert_eq(pairs, 1);
    cr_assert_eq(rg_store_rule_failing(st, "north", "p1", "ket", "r1", 11, NULL, &before, &after,
                                       &since), RG_OK);
    cr_assert(before == 2 && after == 1);
    cr_assert_eq(rg_store_rule_failing(st, "north", "p2", "ket", "r1", 12, NULL, &before, &after,
                                       &since), RG_OK);
    cr_assert(before == 1 && after == 0);
    /* patients.failing goes with the state; wake_failing schedules only those */
    cr_assert_eq(put("north", "e1", "p1", "2026-03-02T10:00:00Z", NULL), RG_PUT_STORED);
    cr_assert_eq(put("north", "e2", "p2", "2026-03-02T10:00:00Z", NULL), RG_PUT_STORED);
    rg_patient_state ps = {.clock = T("2026-03-02T10:00:00Z"), .wake = RG_TIME_NONE,
                           .next_wake = RG_TIME_NONE, .last_seq = 99, .failing = 1};
    cr_assert_eq(rg_store_patient_get(st, "north", "p1", &ps), RG_OK);
    ps.clock = T("2026-03-02T10:00:00Z");
    ps.next_wake = RG_TIME_NONE;
    ps.failing = 1;
    cr_assert_eq(rg_store_patient_put(st, "north", "p1", &ps), RG_OK);
    cr_assert_eq(rg_store_patient_get(st, "north", "p2", &ps), RG_OK);
    ps.clock = T("2026-03-02T10:00:00Z");
    ps.next_wake = RG_TIME_NONE;
    ps.failing = 0;
    cr_assert_eq(rg_store_patient_put(st, "north", "p2", &ps), RG_OK);
    cr_assert_eq(rg_store_wake_failing(st, "north", T("2026-03-03T10:00:00Z")), RG_OK);
    cr_assert_eq(rg_store_patient_get(st, "north", "p1", &ps), RG_OK);
    cr_assert_eq(ps.failing, 1);
    cr_assert_eq(ps.next_wake, T("2026-03-03T10:00:00Z"));
    cr_assert_eq(rg_store_patient_get(st, "north", "p2", &ps), RG_OK);
    cr_assert_eq(ps.next_wake, RG_TIME_NONE, "a patient nothing fails for stays unscheduled");

    /* open, re-raised, still open; resolved by the alert's id */
    int64_t a = 0, id;
    rg_transition o = tr(1, "north", "p1", "k-r", T("2026-03-07T10:00:00Z"));
    cr_assert_eq(rg_store_transition(st, &o, &a), RG_OK);
    id = a;
    rg_transition r = tr(RG_TRANSITION_RERAISED, "north", "p1", "k-r", T("2026-03-07T11:00:00Z"));
    cr_assert_eq(rg_store_transition(st, &r, &id), RG_OK, "%s", rg_store_errmsg(st));
    cr_assert_eq(id, a, "a re-raise names its alert, makes none");
    trs g = {0};
    cr_assert_eq(rg_store_each_open_alert(st, "north", "p1", collect_open, &g), RG_OK);
    cr_assert_eq(g.n, 1, "still open after its re-raise");
    rg_transition again = tr(1, "north", "p1", "k-r", T("2026-03-07T11:30:00Z"));
    int64_t b = 0;
    cr_assert_eq(rg_store_transition(st, &again, &b), RG_EDB, "the key is open");
    rg_transition done = tr(0, "north", "p1", "k-r", T("2026-03-07T12:00:00Z"));
    cr_assert_eq(rg_store_transition(st, &done, &id), RG_OK);
    memset(&g, 0, sizeof g);
    cr_assert_eq(rg_store_each_transition(st, 0, 0, collect_tr, &g), RG_OK);
    cr_assert_eq(g.n, 3);
    cr_assert(g.open[0] == 1 && g.open[1] == RG_TRANSITION_RERAISED && g.open[2] == 0);
    cr_assert(g.cseq[1] == g.cseq[0] + 1 && g.cseq[2] == g.cseq[1] + 1, "one gap-free sequence");
    n_alerts = 0;
    cr_assert_eq(rg_store_each_alert(st, "north", "p1", NULL, "k-r", 10, collect_alert, NULL),
                 RG_OK);
    cr_assert_eq(n_alerts, 1);
    cr_assert_str_eq(alert_state[0], "resolved");
}

/* ---- the callback rule (store.h): a nonzero answer stops and is returned - */

#define STOP 7 /* what the callbacks below answer: no RG_E* code, so it cannot be the store's */
static int calls;

static int stop_event(void *ud, const rg_stored_event *e) { return (void)ud, (void)e, ++calls, STOP; }
static int stop_correction(void *ud, const rg_stored_event *c, const rg_stored_event *r)
{
    return (void)ud, (void)c, (void)r, ++calls, STOP;
}
static int stop_row(void *ud, const rg_event_row *r) { return (void)ud, (void)r, ++calls, STOP; }
static int stop_body(void *ud, const char *b, size_t n)
{
    return (void)ud, (void)b, (void)n, ++calls, STOP;
}
static int stop_body_after(void *ud, int64_t seq, const char *b, size_t n)
{
    return (void)ud, (void)seq, (void)b, (void)n, ++calls, STOP;
}
static int stop_rejected(void *ud, const rg_rejected *r) { return (void)ud, (void)r, ++calls, STOP; }
static int stop_pair(void *ud, const char *a, const char *b)
{
    return (void)ud, (void)a, (void)b, ++calls, STOP;
}
static int stop_open(void *ud, int64_t id, const rg_transition *t)
{
    return (void)ud, (void)id, (void)t, ++calls, STOP;
}
static int stop_tr(void *ud, const rg_transition *t) { return (void)ud, (void)t, ++calls, STOP; }
static int stop_one(void *ud, const char *a) { return (void)ud, (void)a, ++calls, STOP; }
static int stop_alert(void *ud, const rg_alert_view *a) { return (void)ud, (void)a, ++calls, STOP; }
static int stop_action(void *ud, const rg_alert_action *a)
{
    return (void)ud, (void)a, ++calls, STOP;
}
static int stop_snooze(void *ud, const char *c, const char *k, const char *p)
{
    return (void)ud, (void)c, (void)k, (void)p, ++calls, STOP;
}
static int stop_severity(void *ud, const char *c, const char *s, int64_t n)
{
    return (void)ud, (void)c, (void)s, (void)n, ++calls, STOP;
}
static int stop_summary(void *ud, const char *c, const char *p, const char *r, int64_t n,
                        rg_time since, const char *m)
{
    return (void)ud, (void)c, (void)p, (void)r, (void)n, (void)since, (void)m, ++calls, STOP;
}
static int stop_audit(void *ud, const rg_audit_entry *e) { return (void)ud, (void)e, ++calls, STOP; }
static int stop_set(void *ud, const rg_protoset *v) { return (void)ud, (void)v, ++calls, STOP; }
static int stop_file(void *ud, const char *p, const char *c, size_t n)
{
    return (void)ud, (void)p, (void)c, (void)n, ++calls, STOP;
}
static int stop_log(void *ud, const char *id, const char *a, const char *by, rg_time at,
                    rg_time eff)
{
    return (void)ud, (void)id, (void)a, (void)by, (void)at, (void)eff, ++calls, STOP;
}
static int stop_step(void *ud, const rg_notify_row *r) { return (void)ud, (void)r, ++calls, STOP; }
static int stop_entry(void *ud, const rg_notify_entry *e)
{
    return (void)ud, (void)e, ++calls, STOP;
}
static int stop_count(void *ud, const char *c, const char *o, const char *k, int64_t n)
{
    return (void)ud, (void)c, (void)o, (void)k, (void)n, ++calls, STOP;
}

/* Each walk, over two or more items, with a callback that answers STOP to
 * the first: called once, and STOP is what the walk returns. */
#define STOPS(call)                                                                         \
    do {                                                                                    \
        calls = 0;                                                                          \
        int rc_ = (call);                                                                   \
        cr_assert_eq(rc_, STOP, "%s returned %d, not the callback's answer", #call, rc_);   \
        cr_assert_eq(calls, 1, "%s went on after the callback said stop (%d calls)", #call, \
                     calls);                                                                \
    } while (0)

CONFORM(a_callbacks_nonzero_answer_stops_every_walk_and_is_returned)
{
    rg_time t0 = T("2026-03-02T10:00:00Z");
    put("north", "e1", "p1", "2026-03-02T10:00:00Z", "{\"a\":1}");
    put("north", "e2", "p1", "2026-03-02T11:00:00Z", "{\"a\":2}");
    put("north", "e3", "p2", "2026-03-02T12:00:00Z", NULL);
    put("south", "e1", "p1", "2026-03-02T12:00:00Z", NULL);
    /* a second version of north/e1: the corrections and versions walks */
    {
        const char *line = "{\"id\":\"e1\",\"clinic\":\"north\",\"patient\":\"p1\","
                           "\"type\":\"vitals\",\"at\":\"2026-03-02T10:00:00Z\",\"version\":2,"
                           "\"corrected_at\":\"2026-03-02T13:00:00Z\",\"data\":{\"a\":3}}";
        char field[RG_FIELD_MAX], err[256];
        rg_event ev;
        rg_put res;
        cr_assert_eq(rg_event_parse(&ev, line, strlen(line), field, err, sizeof err), RG_OK,
                     "%s", err);
        cr_assert_eq(rg_store_put_event(st, &ev, 1000, &res), RG_OK);
        cr_assert_eq(res, RG_PUT_CORRECTED);
        rg_event_clear(&ev);
        line = "{\"id\":\"e2\",\"clinic\":\"north\",\"patient\":\"p1\","
               "\"type\":\"vitals\",\"at\":\"2026-03-02T11:00:00Z\",\"version\":2,"
               "\"corrected_at\":\"2026-03-02T13:30:00Z\",\"data\":{\"a\":4}}";
        cr_assert_eq(rg_event_parse(&ev, line, strlen(line), field, err, sizeof err), RG_OK,
                     "%s", err);
        cr_assert_eq(rg_store_put_event(st, &ev, 1000, &res), RG_OK);
        rg_event_clear(&ev);
    }
    cr_assert_eq(rg_store_reject(st, "t", 1, "f", "bad", "x", 1), RG_OK);
    cr_assert_eq(rg_store_reject(st, "t", 2, "f", "bad", "y", 1), RG_OK);
    int64_t id1 = 0, id2 = 0, id3 = 0;
    rg_transition a = tr(1, "north", "p1", "k1", t0), b = tr(1, "north", "p1", "k2", t0 + 1),
                  c = tr(1, "south", "p1", "k1", t0 + 2);
    cr_assert_eq(rg_store_transition(st, &a, &id1), RG_OK);
    cr_assert_eq(rg_store_transition(st, &b, &id2), RG_OK);
    cr_assert_eq(rg_store_transition(st, &c, &id3), RG_OK);
    cr_assert_eq(rg_store_alert_action(st, "north", "k1", "ack", "ann", "seen", RG_TIME_NONE,
                                       t0 + 10),
                 RG_OK);
    cr_assert_eq(rg_store_alert_action(st, "north", "k1", "snooze", "ann", NULL, t0 + 20, t0 + 11),
                 RG_OK);
    cr_assert_eq(rg_store_alert_action(st, "north", "k2", "snooze", "bob", NULL, t0 + 20, t0 + 12),
                 RG_OK);
    int64_t before, after;
    rg_time since;
    cr_assert_eq(rg_store_rule_failing(st, "north", "p1", "ket", "r1", t0, "boom", &before, &after,
                                       &since),
                 RG_OK);
    cr_assert_eq(rg_store_rule_failing(st, "north", "p1", "ket", "r2", t0, "boom", &before, &after,
                                       &since),
                 RG_OK);
    audit_add(t0, "ann", "north", "[\"p1\"]", "GET /v1/alerts");
    audit_add(t0 + 1, "bob", "north", "[\"p2\"]", "GET /v1/alerts");
    const char *paths[2] = {"a.lua", "b.lua"}, *contents[2] = {"return 1", "return 2"};
    const size_t lens[2] = {8, 8};
    rg_protoset v1 = {.clinic = "north", .id = "aa", .proposed_by = "ann", .message = "one",
                      .proposed_at = t0, .approved_at = RG_TIME_NONE,
                      .active_from = RG_TIME_NONE},
                v2 = v1;
    v2.id = "bb";
    cr_assert_eq(rg_store_protoset_add(st, &v1, paths, contents, lens, 2), RG_OK);
    cr_assert_eq(rg_store_protoset_add(st, &v2, paths, contents, lens, 2), RG_OK);
    cr_assert_eq(rg_store_protoset_log(st, "north", "aa", "proposed", "ann", t0, RG_TIME_NONE),
                 RG_OK);
    cr_assert_eq(rg_store_protoset_log(st, "north", "bb", "proposed", "ann", t0, RG_TIME_NONE),
                 RG_OK);
    cr_assert_eq(rg_store_shadow_put(st, "aa", &a), RG_OK);
    cr_assert_eq(rg_store_shadow_put(st, "aa", &b), RG_OK);
    rg_notify_row s1 = {.clinic = "north", .patient = "p1", .key = "k1", .rule = "ket.monitor",
                        .receiver = "ward", .opened = t0, .due = t0, .route = 0, .step = 0},
                  s2 = s1;
    s2.step = 1;
    cr_assert_eq(rg_store_notify_plan(st, &s1, NULL), RG_OK);
    cr_assert_eq(rg_store_notify_plan(st, &s2, NULL), RG_OK);
    rg_notify_entry l1 = {.at = t0, .opened = t0, .clinic = "north", .patient = "p1",
                          .key = "k1", .rule = "ket.monitor", .receiver = "ward",
                          .kind = "webhook", .outcome = "sent", .reason = NULL},
                    l2 = l1;
    l2.kind = "email";
    cr_assert_eq(rg_store_notify_log(st, &l1), RG_OK);
    cr_assert_eq(rg_store_notify_log(st, &l2), RG_OK);

    rg_time far = T("2030-01-01T00:00:00Z"), wait;
    int count = 0;
    STOPS(rg_store_each_event(st, "north", "p1", stop_event, NULL));
    got all = {0}; /* and a stopped walk leaves nothing behind: it runs again whole */
    cr_assert_eq(rg_store_each_event(st, "north", "p1", collect_event, &all), RG_OK);
    cr_assert_eq(all.n, 4, "two versions of two events");
    STOPS(rg_store_each_event_after(st, "north", "p1", -1, stop_event, NULL));
    STOPS(rg_store_each_event_data(st, "north", "p1", stop_event, NULL));
    STOPS(rg_store_get_event(st, "north", "e1", stop_event, NULL));
    STOPS(rg_store_each_version(st, "north", "e1", stop_event, NULL));
    STOPS(rg_store_each_correction(st, "north", "p1", 0, far, stop_correction, NULL));
    STOPS(rg_store_event_rows(st, "", "", INT64_MIN, 0, 100, stop_row, NULL));
    STOPS(rg_store_event_rows_of(st, "north", "e1", stop_row, NULL));
    STOPS(rg_store_each_event_body(st, "north", stop_body, NULL));
    STOPS(rg_store_each_event_body_after(st, "north", 0, stop_body_after, NULL));
    STOPS(rg_store_each_rejected(st, stop_rejected, NULL));
    STOPS(rg_store_patients_page(st, "", "", RG_TIME_NONE, 10, stop_pair, NULL));
    STOPS(rg_store_due_patients(st, NULL, far, 10, stop_pair, NULL));
    STOPS(rg_store_each_open_alert(st, "north", "p1", stop_open, NULL));
    STOPS(rg_store_each_transition(st, 0, 0, stop_tr, NULL));
    STOPS(rg_store_each_transition(st, 0, 1, stop_tr, NULL));
    STOPS(rg_store_clinic_transitions(st, "north", 0, 10, stop_tr, NULL));
    STOPS(rg_store_key_clinics(st, "k1", stop_one, NULL));
    STOPS(rg_store_each_alert(st, "north", NULL, NULL, NULL, 10, stop_alert, NULL));
    STOPS(rg_store_each_alert_after(st, "north", NULL, NULL, NULL, 0, 10, stop_alert, NULL));
    STOPS(rg_store_each_action(st, "north", "k1", stop_action, NULL));
    STOPS(rg_store_each_due_snooze(st, far, stop_snooze, NULL, &count));
    STOPS(rg_store_open_by_severity(st, NULL, stop_severity, NULL));
    STOPS(rg_store_webhook_next(st, "north", far, stop_tr, NULL, &wait));
    STOPS(rg_store_each_failing(st, "north", "p1", stop_pair, NULL));
    STOPS(rg_store_failing_summary(st, stop_summary, NULL));
    rg_audit_filter f = {.after = 0, .since = RG_TIME_NONE, .limit = 10};
    STOPS(rg_store_audit_each(st, &f, stop_audit, NULL));
    STOPS(rg_store_protoset_each(st, "north", stop_set, NULL));
    STOPS(rg_store_protoset_files(st, "north", "aa", stop_file, NULL));
    STOPS(rg_store_protoset_each_log(st, "north", NULL, stop_log, NULL));
    STOPS(rg_store_shadow_each(st, "north", "aa", 0, stop_tr, NULL));
    STOPS(rg_store_notify_due(st, "north", far, 10, stop_step, NULL));
    STOPS(rg_store_notify_each_log(st, "north", NULL, NULL, stop_entry, NULL));
    STOPS(rg_store_notify_counts(st, stop_count, NULL));
    /* the key's transitions: two on k1 */
    rg_transition r = tr(0, "north", "p1", "k1", t0 + 30);
    cr_assert_eq(rg_store_transition(st, &r, &id1), RG_OK);
    STOPS(rg_store_key_transitions(st, "north", "k1", stop_tr, NULL));
}
