/*
 * store_fixture.h - the fixture and helpers test_store.c and test_ingest.c
 * share: a fresh SQLite store in a temporary directory (setup, teardown),
 * a second connection to inspect it (peek_*), and readers that collect
 * what the store holds (events_of, rejected, transitions, ...). Included
 * once per test file, after its own includes; a file uses only some of the
 * helpers, hence the pragma.
 */
#ifndef RG_TEST_STORE_FIXTURE_H
#define RG_TEST_STORE_FIXTURE_H

#pragma GCC diagnostic ignored "-Wunused-function"

/* ---- fixture ------------------------------------------------------------ */

static char tmpdir[256];
static char dbpath[512];
static rg_store *st;

static int rm_entry(const char *p, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(p);
}

static void make_tmpdir(void)
{
    snprintf(tmpdir, sizeof tmpdir, "/tmp/regimen-store-test-XXXXXX");
    cr_assert_not_null(mkdtemp(tmpdir), "mkdtemp: %s", strerror(errno));
    snprintf(dbpath, sizeof dbpath, "%s/regimen.db", tmpdir);
}

static void remove_tmpdir(void)
{
    if (tmpdir[0]) {
        nftw(tmpdir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
        struct stat sb;
        cr_assert_neq(stat(tmpdir, &sb), 0, "%s was not removed", tmpdir);
        tmpdir[0] = '\0';
    }
}

static void open_store(void)
{
    char err[512] = "";
    int rc = rg_store_open(&st, dbpath, NULL, err, sizeof err);
    cr_assert_eq(rc, RG_OK, "rg_store_open(%s): %d %s", dbpath, rc, err);
    cr_assert_not_null(st);
}

static void close_store(void)
{
    rg_store_close(st);
    st = NULL;
}

static void setup(void)
{
    make_tmpdir();
    open_store();
}

static void teardown(void)
{
    close_store();
    remove_tmpdir();
}

/* ---- helpers ------------------------------------------------------------ */

/* A second connection to the database file, for independent inspection. */
static sqlite3 *peek_open(void)
{
    sqlite3 *db = NULL;
    cr_assert_eq(sqlite3_open_v2(dbpath, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK,
                 "peek open: %s", db ? sqlite3_errmsg(db) : "?");
    return db;
}

static int64_t peek_int(const char *sql)
{
    sqlite3 *db = peek_open();
    sqlite3_stmt *s;
    cr_assert_eq(sqlite3_prepare_v2(db, sql, -1, &s, NULL), SQLITE_OK, "%s: %s", sql,
                 sqlite3_errmsg(db));
    cr_assert_eq(sqlite3_step(s), SQLITE_ROW, "%s: no row", sql);
    int64_t v = sqlite3_column_int64(s, 0);
    sqlite3_finalize(s);
    sqlite3_close(db);
    return v;
}

static void peek_text(const char *sql, char *out, size_t n)
{
    sqlite3 *db = peek_open();
    sqlite3_stmt *s;
    cr_assert_eq(sqlite3_prepare_v2(db, sql, -1, &s, NULL), SQLITE_OK, "%s: %s", sql,
                 sqlite3_errmsg(db));
    cr_assert_eq(sqlite3_step(s), SQLITE_ROW, "%s: no row", sql);
    const char *v = (const char *)sqlite3_column_text(s, 0);
    snprintf(out, n, "%s", v ? v : "(null)");
    sqlite3_finalize(s);
    sqlite3_close(db);
}

static rg_time T(const char *s)
{
    rg_time t;
    char err[128];
    cr_assert_eq(rg_time_parse(s, strlen(s), &t, NULL, err, sizeof err), RG_OK, "%s: %s", s, err);
    return t;
}

/* Parses an event made of the given values (data: raw JSON or NULL). */
static void ev_make(rg_event *ev, const char *clinic, const char *id, const char *patient,
                    const char *type, const char *at, const char *data)
{
    char line[2048], field[RG_FIELD_MAX], err[256];
    if (data)
        snprintf(line, sizeof line,
                 "{\"id\":\"%s\",\"clinic\":\"%s\",\"patient\":\"%s\",\"type\":\"%s\","
                 "\"at\":\"%s\",\"data\":%s}",
                 id, clinic, patient, type, at, data);
    else
        snprintf(line, sizeof line,
                 "{\"id\":\"%s\",\"clinic\":\"%s\",\"patient\":\"%s\",\"type\":\"%s\","
                 "\"at\":\"%s\"}",
                 id, clinic, patient, type, at);
    cr_assert_eq(rg_event_parse(ev, line, strlen(line), field, err, sizeof err), RG_OK,
                 "%s: %s: %s", line, field, err);
}

static rg_put put(const char *clinic, const char *id, const char *patient, const char *type,
                  const char *at, const char *data)
{
    rg_event ev;
    rg_put res = (rg_put)-1;
    ev_make(&ev, clinic, id, patient, type, at, data);
    int rc = rg_store_put_event(st, &ev, 1000, &res);
    rg_event_clear(&ev);
    cr_assert_eq(rc, RG_OK, "put_event %s/%s: %d %s", clinic, id, rc, rg_store_errmsg(st));
    return res;
}

typedef struct got_event {
    int64_t seq;
    rg_time at;
    char id[RG_EVENT_MAX_ID + 1], type[RG_EVENT_MAX_TYPE + 1], data[256];
    int has_data;
    unsigned char fields[512];
    size_t nfields;
} got_event;

typedef struct got_events {
    got_event e[64];
    int n;
} got_events;

static int collect_event(void *ud, const rg_stored_event *e)
{
    got_events *g = ud;
    cr_assert_lt(g->n, 64);
    got_event *x = &g->e[g->n++];
    x->seq = e->seq;
    x->at = e->at;
    snprintf(x->id, sizeof x->id, "%s", e->id);
    snprintf(x->type, sizeof x->type, "%s", e->type);
    x->has_data = e->data != NULL;
    snprintf(x->data, sizeof x->data, "%s", e->data ? e->data : "");
    cr_assert_leq(e->nfields, sizeof x->fields);
    if (e->nfields)
        memcpy(x->fields, e->fields, e->nfields);
    x->nfields = e->nfields;
    return 0;
}

/* A patient's events with their data text, checked against what the
 * engine's read (the covering index, compiled data only) gives: the same
 * events in the same order, and fields equal to the reference compiler's
 * answer for the stored text. */
static got_events *events_of(const char *clinic, const char *patient)
{
    static got_events g, fast;
    memset(&g, 0, sizeof g);
    memset(&fast, 0, sizeof fast);
    cr_assert_eq(rg_store_each_event_data(st, clinic, patient, collect_event, &g), RG_OK);
    cr_assert_eq(rg_store_each_event(st, clinic, patient, collect_event, &fast), RG_OK);
    cr_assert_eq(fast.n, g.n);
    for (int i = 0; i < g.n; i++) {
        cr_assert_eq(fast.e[i].seq, g.e[i].seq);
        cr_assert_str_eq(fast.e[i].id, g.e[i].id);
        cr_assert_str_eq(fast.e[i].type, g.e[i].type);
        cr_assert_not(fast.e[i].has_data, "the covering read carries no data text");
        cr_assert_eq(g.e[i].nfields, fast.e[i].nfields);
        rg_buf want = {0};
        if (!g.e[i].has_data && fast.e[i].nfields)
            continue; /* a damaged body: no data text to derive (v12), fields as stored */
        if (g.e[i].has_data)
            cr_assert_eq(rg_fields_from_json(&want, g.e[i].data), RG_OK);
        cr_assert_eq(fast.e[i].nfields, want.len, "event %s: fields", g.e[i].id);
        cr_assert(!want.len || !memcmp(fast.e[i].fields, want.p, want.len), "event %s: fields",
                  g.e[i].id);
        rg_buf_free(&want);
    }
    return &g;
}

typedef struct got_rej {
    int64_t seq;
    rg_time received;
    long line;
    char source[64], field[RG_FIELD_MAX], reason[512], raw[1024];
} got_rej;

typedef struct got_rejs {
    got_rej r[32];
    int n;
} got_rejs;

static int collect_rej(void *ud, const rg_rejected *r)
{
    got_rejs *g = ud;
    cr_assert_lt(g->n, 32);
    got_rej *x = &g->r[g->n++];
    x->seq = r->seq;
    x->received = r->received;
    x->line = r->line;
    snprintf(x->source, sizeof x->source, "%s", r->source);
    snprintf(x->field, sizeof x->field, "%s", r->field);
    snprintf(x->reason, sizeof x->reason, "%s", r->reason);
    snprintf(x->raw, sizeof x->raw, "%s", r->raw);
    return 0;
}

static got_rejs *rejected(void)
{
    static got_rejs g;
    memset(&g, 0, sizeof g);
    cr_assert_eq(rg_store_each_rejected(st, collect_rej, &g), RG_OK);
    return &g;
}

static rg_transition tr(int open, const char *patient, const char *key, rg_time at)
{
    rg_transition t = {
        .at = at,
        .due = at - RG_MS_HOUR,
        .open = open,
        .clinic = "north",
        .patient = patient,
        .key = key,
        .protocol = "ketamine",
        .version = "1.2",
        .rule = "ket.monitor",
        .severity = "warning",
        .message = open ? "vitals overdue" : "vitals taken",
    };
    return t;
}

typedef struct got_tr {
    int64_t seq, cseq;
    rg_time at, due, notify_at;
    int open;
    char clinic[32], patient[32], key[32], protocol[32], version[16], rule[32], severity[16],
        message[64], params[64], evidence[64];
} got_tr;

typedef struct got_trs {
    got_tr t[32];
    int64_t alert_id[32];
    int n;
} got_trs;

static void copy_tr(got_tr *x, const rg_transition *t)
{
    x->seq = t->seq;
    x->cseq = t->cseq;
    x->at = t->at;
    x->due = t->due;
    x->notify_at = t->notify_at;
    x->open = t->open;
    snprintf(x->clinic, sizeof x->clinic, "%s", t->clinic);
    snprintf(x->patient, sizeof x->patient, "%s", t->patient);
    snprintf(x->key, sizeof x->key, "%s", t->key);
    snprintf(x->protocol, sizeof x->protocol, "%s", t->protocol);
    snprintf(x->version, sizeof x->version, "%s", t->version);
    snprintf(x->rule, sizeof x->rule, "%s", t->rule);
    snprintf(x->severity, sizeof x->severity, "%s", t->severity);
    snprintf(x->message, sizeof x->message, "%s", t->message);
    snprintf(x->params, sizeof x->params, "%s", t->params ? t->params : "(null)");
    snprintf(x->evidence, sizeof x->evidence, "%s", t->evidence ? t->evidence : "(null)");
}

static int collect_tr(void *ud, const rg_transition *t)
{
    got_trs *g = ud;
    cr_assert_lt(g->n, 32);
    copy_tr(&g->t[g->n++], t);
    return 0;
}

static int collect_open(void *ud, int64_t alert_id, const rg_transition *t)
{
    got_trs *g = ud;
    cr_assert_lt(g->n, 32);
    g->alert_id[g->n] = alert_id;
    copy_tr(&g->t[g->n++], t);
    return 0;
}

static got_trs *transitions(int64_t after, int by_time)
{
    static got_trs g;
    memset(&g, 0, sizeof g);
    cr_assert_eq(rg_store_each_transition(st, after, by_time, collect_tr, &g), RG_OK);
    return &g;
}

static got_trs *open_alerts(const char *patient)
{
    static got_trs g;
    memset(&g, 0, sizeof g);
    cr_assert_eq(rg_store_each_open_alert(st, "north", patient, collect_open, &g), RG_OK);
    return &g;
}

typedef struct got_pats {
    char clinic[16][32], patient[16][32];
    int n, stop_after;
} got_pats;

static int collect_pat(void *ud, const char *clinic, const char *patient)
{
    got_pats *g = ud;
    cr_assert_lt(g->n, 16);
    snprintf(g->clinic[g->n], 32, "%s", clinic);
    snprintf(g->patient[g->n], 32, "%s", patient);
    g->n++;
    return g->stop_after && g->n >= g->stop_after;
}

static void set_state(const char *clinic, const char *patient, rg_time clock, rg_time wake,
                      rg_time next_wake, int64_t last_seq)
{
    rg_patient_state was;
    cr_assert_neq(rg_store_patient_get(st, clinic, patient, &was), RG_EDB);
    /* as an evaluation does: against the count of schedulings it read */
    rg_patient_state ps = {.clock = clock, .wake = wake, .next_wake = next_wake,
                           .last_seq = last_seq, .scheduled = was.scheduled};
    cr_assert_eq(rg_store_patient_put(st, clinic, patient, &ps), RG_OK, "%s",
                 rg_store_errmsg(st));
}

static rg_patient_state get_state(const char *clinic, const char *patient)
{
    rg_patient_state ps;
    memset(&ps, 0x5A, sizeof ps);
    int rc = rg_store_patient_get(st, clinic, patient, &ps);
    cr_assert_eq(rc, RG_OK, "patient_get %s/%s: %d", clinic, patient, rc);
    return ps;
}

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    cr_assert_not_null(f, "%s: %s", path, strerror(errno));
    cr_assert_eq(fputs(text, f) >= 0, 1);
    cr_assert_eq(fclose(f), 0);
}

#endif
