/*
 * test_store.c - Criterion tests for runtime/store/sqlite.c against a real
 * SQLite file in a fresh temporary directory: schema and file mode,
 * migrations from each old version, idempotent/conflicting puts, event
 * order, rejected input, patient scheduling, paging, alert transitions and
 * corrections. Ingest of JSON Lines files is test_ingest.c; the fixture and
 * helpers both use are store_fixture.h.
 *
 * The database is also inspected through a second, independent SQLite
 * connection so that the checks do not rely only on the store's own readers.
 */
#include "core/fields.h"
#include "store/ingest.h"
#include "store/sqlite.h"
#include "store/store.h"
#include "store/store_sql.h"

#include <criterion/criterion.h>
#include <sqlite3.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "store_fixture.h"

TestSuite(store, .init = setup, .fini = teardown);
TestSuite(store_file, .init = make_tmpdir, .fini = remove_tmpdir);

/* ---- schema and file ---------------------------------------------------- */

Test(store, schema_version_and_wal_journal)
{
    cr_assert_eq(peek_int("PRAGMA user_version"), RG_SCHEMA_VERSION);
    char mode[32];
    peek_text("PRAGMA journal_mode", mode, sizeof mode);
    cr_assert_str_eq(mode, "wal");
    static const char *const tables[] = {"events",      "rejected",    "patients",
                                         "alerts",      "transitions", "eval_errors",
                                         "protocol_versions"};
    for (size_t i = 0; i < RG_COUNTOF(tables); i++) {
        char sql[256];
        snprintf(sql, sizeof sql,
                 "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = '%s'",
                 tables[i]);
        cr_assert_eq(peek_int(sql), 1, "table %s missing", tables[i]);
    }
    /* still WAL and version 1 once the program has closed it */
    close_store();
    peek_text("PRAGMA journal_mode", mode, sizeof mode);
    cr_assert_str_eq(mode, "wal");
    cr_assert_eq(peek_int("PRAGMA user_version"), RG_SCHEMA_VERSION);
    open_store();
}

Test(store_file, database_file_is_created_0600)
{
    mode_t old = umask(0); /* the program must not rely on the caller's umask */
    char err[512] = "";
    int rc = rg_store_open(&st, dbpath, NULL, err, sizeof err);
    umask(old);
    cr_assert_eq(rc, RG_OK, "%s", err);
    cr_assert_eq(put("north", "e1", "p1", "infusion", "2026-03-02T14:05:00Z", NULL),
                 RG_PUT_STORED);
    struct stat sb;
    cr_assert_eq(stat(dbpath, &sb), 0);
    cr_assert_eq(sb.st_mode & 0777, 0600, "database mode is %o", (unsigned)(sb.st_mode & 0777));
    /* the WAL beside it holds patient data too */
    char wal[600];
    snprintf(wal, sizeof wal, "%s-wal", dbpath);
    cr_assert_eq(stat(wal, &sb), 0, "no WAL file: %s", strerror(errno));
    cr_assert_eq(sb.st_mode & 0777, 0600, "WAL mode is %o", (unsigned)(sb.st_mode & 0777));
    close_store();
}

Test(store_file, durable_open_works)
{
    rg_store_opts o = {.durable = 1};
    char err[512] = "";
    cr_assert_eq(rg_store_open(&st, dbpath, &o, err, sizeof err), RG_OK, "%s", err);
    cr_assert_eq(put("north", "e1", "p1", "infusion", "2026-03-02T14:05:00Z", NULL),
                 RG_PUT_STORED);
    close_store();
    cr_assert_eq(peek_int("SELECT count(*) FROM events"), 1);
}

/* The bytes a thread of this process has written (/proc's per-thread
 * wchar): tid 0, every thread but the caller. */
static uint64_t written_by(pid_t tid)
{
    pid_t self = (pid_t)syscall(SYS_gettid);
    uint64_t sum = 0;
    DIR *d = opendir("/proc/self/task");
    cr_assert_not_null(d, "/proc/self/task: %s", strerror(errno));
    for (struct dirent *e; (e = readdir(d));) {
        pid_t t = (pid_t)atoi(e->d_name);
        if (t <= 0 || (tid ? t != tid : t == self))
            continue;
        char path[128], line[128];
        snprintf(path, sizeof path, "/proc/self/task/%d/io", (int)t);
        FILE *f = fopen(path, "r");
        unsigned long long v;
        while (f && fgets(line, sizeof line, f))
            if (sscanf(line, "wchar: %llu", &v) == 1)
                sum += v;
        if (f)
            fclose(f);
    }
    closedir(d);
    return sum;
}

/* The service's store (rg_store_opts.checkpointer) copies its WAL into the
 * database file on a thread of its own: under a stream of commits another
 * thread writes most pages into the file (SQLite's own checkpoint writes
 * them all in the commits, on the writer's thread), and the WAL still
 * starts again from its beginning, so it stays bounded (a checkpoint that
 * never caught up with the writer let it grow without end). */
Test(store_file, the_checkpointer_copies_the_wal_off_the_writers_thread)
{
    rg_store_opts o = {.checkpointer = 1};
    char err[512] = "", wal[600], id[32], pid[32], data[600];
    cr_assert_eq(rg_store_open(&st, dbpath, &o, err, sizeof err), RG_OK, "%s", err);
    snprintf(wal, sizeof wal, "%s-wal", dbpath);
    pid_t self = (pid_t)syscall(SYS_gettid);
    uint64_t mine0 = written_by(self), others0 = written_by(0);
    off_t longest = 0;
    snprintf(data, sizeof data, "{\"note\":\"%0500d\"}", 7);
    for (int i = 0; i < 12000; i++) {
        snprintf(id, sizeof id, "e%d", i);
        snprintf(pid, sizeof pid, "p%d", i * 7919 % 3001);
        cr_assert_eq(rg_store_begin(st), RG_OK);
        cr_assert_eq(put("north", id, pid, "infusion", "2026-03-02T14:05:00Z", data),
                     RG_PUT_STORED);
        cr_assert_eq(rg_store_commit(st), RG_OK, "%s", rg_store_errmsg(st));
        struct stat sb;
        if (stat(wal, &sb) == 0 && sb.st_size > longest)
            longest = sb.st_size;
    }
    uint64_t mine = written_by(self) - mine0, others = written_by(0) - others0;
    /* several WAL lengths went through (16,000 pages of 4 KiB each at most) */
    cr_assert_gt(mine, 200u << 20, "the writer wrote %llu bytes", (unsigned long long)mine);
    cr_assert_gt(others, 4u << 20, "other threads wrote %llu bytes: no checkpoint of their own",
                 (unsigned long long)others);
    /* (without end: as long as all that was written; one long pass on a busy
     * machine lets it grow for a while, so the bound is loose) */
    cr_assert_lt((uint64_t)longest, mine / 3, "the WAL grew to %lld bytes of the %llu written",
                 (long long)longest, (unsigned long long)mine);
    close_store();
    cr_assert_eq(peek_int("SELECT count(*) FROM events"), 12000);
}

/* A scratch store (simulate's, diff's) drops the indexes only the service
 * reads: each name still is an index of the schema (a rename would leave it
 * in place unseen), the scratch file has none of them, and what it is used
 * for still works, open_alerts still refusing a second opening of a key. */
Test(store_file, scratch_store_drops_the_service_only_indexes)
{
    char err[512] = "", sql[256];
    open_store();
    close_store();
    for (int i = 0; rg_store_scratch_drop[i]; i++) {
        snprintf(sql, sizeof sql,
                 "SELECT count(*) FROM sqlite_master WHERE type = 'index' AND name = '%s'",
                 rg_store_scratch_drop[i]);
        cr_assert_eq(peek_int(sql), 1, "%s is no index of the schema", rg_store_scratch_drop[i]);
    }
    cr_assert(unlink(dbpath) == 0);
    rg_store_opts o = {.scratch = 1};
    cr_assert_eq(rg_store_open(&st, dbpath, &o, err, sizeof err), RG_OK, "%s", err);
    for (int i = 0; rg_store_scratch_drop[i]; i++) {
        snprintf(sql, sizeof sql, "SELECT count(*) FROM sqlite_master WHERE name = '%s'",
                 rg_store_scratch_drop[i]);
        cr_assert_eq(peek_int(sql), 0, "%s kept", rg_store_scratch_drop[i]);
    }
    int64_t a = 0, b = 0;
    rg_transition t = tr(1, "p1", "k1", T("2026-03-02T14:00:00Z"));
    cr_assert_eq(rg_store_transition(st, &t, &a), RG_OK, "%s", rg_store_errmsg(st));
    t = tr(1, "p1", "k1", T("2026-03-02T15:00:00Z"));
    cr_assert_neq(rg_store_transition(st, &t, &b), RG_OK, "a second opening of an open key");
    cr_assert_eq(open_alerts("p1")->n, 1);
    t = tr(0, "p1", "k1", T("2026-03-02T16:00:00Z"));
    cr_assert_eq(rg_store_transition(st, &t, &a), RG_OK, "%s", rg_store_errmsg(st));
    cr_assert_eq(open_alerts("p1")->n, 0);
    got_trs *g = transitions(0, 1);
    cr_assert_eq(g->n, 2);
    cr_assert_eq(g->t[1].cseq, 2);
    close_store();
}

Test(store_file, newer_schema_version_is_refused)
{
    const int newer = RG_SCHEMA_VERSION + 1;
    char sql[128], want[128];
    snprintf(sql, sizeof sql, "CREATE TABLE future(x); PRAGMA user_version = %d;", newer);
    sqlite3 *db;
    cr_assert_eq(sqlite3_open(dbpath, &db), SQLITE_OK);
    cr_assert_eq(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);
    rg_store *s2 = (rg_store *)&s2; /* must be reset to NULL */
    char err[512] = "";
    int rc = rg_store_open(&s2, dbpath, NULL, err, sizeof err);
    cr_assert_eq(rc, RG_EDB, "rc %d (%s)", rc, err);
    cr_assert_null(s2);
    snprintf(want, sizeof want, "schema version %d is newer than this program (%d)", newer,
             RG_SCHEMA_VERSION);
    cr_assert_not_null(strstr(err, want), "error \"%s\" does not say \"%s\"", err, want);
    /* and the file was not migrated */
    cr_assert_eq(peek_int("PRAGMA user_version"), newer);
    cr_assert_eq(peek_int("SELECT count(*) FROM sqlite_master WHERE name = 'events'"), 0);
}

Test(store_file, missing_directory_and_non_database_file)
{
    char bad[600], err[512] = "";
    snprintf(bad, sizeof bad, "%s/no/such/dir/x.db", tmpdir);
    rg_store *s2 = NULL;
    int rc = rg_store_open(&s2, bad, NULL, err, sizeof err);
    cr_assert_eq(rc, RG_EIO, "rc %d: %s", rc, err);
    cr_assert_null(s2);
    cr_assert_not_null(strstr(err, "cannot create database"), "%s", err);
    cr_assert_not_null(strstr(err, "x.db"), "%s", err);

    write_file(dbpath, "this is not a database, just some text that is long enough to have "
                       "a header of one hundred bytes or more, which SQLite will read first.\n");
    err[0] = '\0';
    rc = rg_store_open(&s2, dbpath, NULL, err, sizeof err);
    cr_assert_eq(rc, RG_EDB, "rc %d: %s", rc, err);
    cr_assert_null(s2);
    cr_assert_not_null(strstr(err, "not a database"), "%s", err);
}

Test(store_file, empty_existing_file_is_migrated)
{
    int fd = open(dbpath, O_CREAT | O_WRONLY, 0600);
    cr_assert_geq(fd, 0);
    close(fd);
    open_store();
    cr_assert_eq(peek_int("PRAGMA user_version"), RG_SCHEMA_VERSION);
    cr_assert_eq(put("north", "e1", "p1", "infusion", "2026-03-02T14:05:00Z", NULL),
                 RG_PUT_STORED);
    close_store();
}

/* The schema as versions 3 and 4 of the program made it (its migrations,
 * verbatim), for upgrade tests: a file the program of then would have left. */
static const char schema_v3[] =
    "CREATE TABLE events("
    "  seq INTEGER PRIMARY KEY,"
    "  clinic TEXT NOT NULL, id TEXT NOT NULL, patient TEXT NOT NULL, type TEXT NOT NULL,"
    "  at INTEGER NOT NULL, utc_offset INTEGER NOT NULL, data TEXT, body TEXT NOT NULL,"
    "  received INTEGER NOT NULL,"
    "  UNIQUE(clinic, id));"
    "CREATE INDEX events_by_patient ON events(clinic, patient, at, seq);"
    "CREATE TABLE rejected("
    "  seq INTEGER PRIMARY KEY, received INTEGER NOT NULL, source TEXT NOT NULL,"
    "  line INTEGER NOT NULL, field TEXT NOT NULL, reason TEXT NOT NULL, raw TEXT NOT NULL);"
    "CREATE TABLE patients("
    "  clinic TEXT NOT NULL, patient TEXT NOT NULL, clock INTEGER, wake INTEGER,"
    "  next_wake INTEGER, last_seq INTEGER NOT NULL DEFAULT 0,"
    "  PRIMARY KEY(clinic, patient)) WITHOUT ROWID;"
    "CREATE INDEX patients_by_wake ON patients(next_wake) WHERE next_wake IS NOT NULL;"
    "CREATE TABLE alerts("
    "  id INTEGER PRIMARY KEY, clinic TEXT NOT NULL, patient TEXT NOT NULL, key TEXT NOT NULL,"
    "  state TEXT NOT NULL CHECK(state IN ('open','resolved')),"
    "  opened_seq INTEGER NOT NULL, resolved_seq INTEGER);"
    "CREATE UNIQUE INDEX alerts_open ON alerts(clinic, key) WHERE state = 'open';"
    "CREATE INDEX alerts_by_patient ON alerts(clinic, patient, state);"
    "CREATE TABLE transitions("
    "  seq INTEGER PRIMARY KEY, alert_id INTEGER NOT NULL REFERENCES alerts(id),"
    "  at INTEGER NOT NULL, state TEXT NOT NULL, clinic TEXT NOT NULL, patient TEXT NOT NULL,"
    "  key TEXT NOT NULL, protocol TEXT NOT NULL, version TEXT NOT NULL, rule TEXT NOT NULL,"
    "  severity TEXT NOT NULL, message TEXT NOT NULL, due INTEGER NOT NULL,"
    "  params TEXT NOT NULL, evidence TEXT NOT NULL, recorded INTEGER NOT NULL);"
    "CREATE TABLE eval_errors("
    "  seq INTEGER PRIMARY KEY, clinic TEXT NOT NULL, patient TEXT NOT NULL,"
    "  protocol TEXT NOT NULL, rule TEXT NOT NULL, at INTEGER NOT NULL, message TEXT NOT NULL,"
    "  recorded INTEGER NOT NULL);"
    "CREATE TABLE protocol_versions("
    "  clinic TEXT NOT NULL, protocol TEXT NOT NULL, version TEXT NOT NULL, file TEXT NOT NULL,"
    "  hash TEXT NOT NULL, first_loaded INTEGER NOT NULL,"
    "  PRIMARY KEY(clinic, protocol, version, hash)) WITHOUT ROWID;"
    "ALTER TABLE transitions ADD COLUMN cseq INTEGER;"
    "UPDATE transitions SET cseq = (SELECT count(*) FROM transitions t2"
    "  WHERE t2.clinic = transitions.clinic AND t2.seq <= transitions.seq);"
    "CREATE UNIQUE INDEX transitions_by_clinic ON transitions(clinic, cseq);"
    "ALTER TABLE alerts ADD COLUMN acked_by TEXT;"
    "ALTER TABLE alerts ADD COLUMN acked_at INTEGER;"
    "ALTER TABLE alerts ADD COLUMN snoozed_until INTEGER;"
    "CREATE INDEX alerts_snoozed ON alerts(snoozed_until) WHERE snoozed_until IS NOT NULL;"
    "CREATE TABLE alert_actions("
    "  seq INTEGER PRIMARY KEY, alert_id INTEGER NOT NULL REFERENCES alerts(id),"
    "  clinic TEXT NOT NULL, key TEXT NOT NULL, action TEXT NOT NULL, who TEXT NOT NULL,"
    "  note TEXT NOT NULL, until INTEGER, at INTEGER NOT NULL);"
    "CREATE TABLE webhook_cursor("
    "  clinic TEXT PRIMARY KEY, delivered INTEGER NOT NULL DEFAULT 0,"
    "  attempts INTEGER NOT NULL DEFAULT 0, last_error TEXT, updated INTEGER) WITHOUT ROWID;";
static const char schema_v3_to_v4[] =
    "DROP INDEX events_by_patient;"
    "CREATE INDEX events_by_patient ON events(clinic, patient, at, seq, id, type, data);";

/* An events row as the v4 program stored it, from the real validator. */
/* Migration 4 -> 5 as version 5 of the program had it (runtime/store/store.c, now sqlite.c). */
static const char schema_v4_to_v5[] =
    "ALTER TABLE events ADD COLUMN fields BLOB;"
    "UPDATE events SET fields = rg_fields(data) WHERE data IS NOT NULL;"
    "DROP INDEX events_by_patient;"
    "CREATE INDEX events_by_patient ON events(clinic, patient, at, seq, id, type, fields);"
    "CREATE TABLE transitions_v5("
    "  seq INTEGER PRIMARY KEY, alert_id INTEGER,"
    "  at INTEGER NOT NULL, state TEXT NOT NULL CHECK(state IN ('open','resolved')),"
    "  clinic TEXT NOT NULL, patient TEXT NOT NULL, key TEXT NOT NULL, protocol TEXT NOT NULL,"
    "  version TEXT NOT NULL, rule TEXT NOT NULL, severity TEXT NOT NULL, message TEXT NOT NULL,"
    "  due INTEGER NOT NULL, params TEXT NOT NULL, evidence TEXT NOT NULL,"
    "  recorded INTEGER NOT NULL, cseq INTEGER);"
    "INSERT INTO transitions_v5 SELECT t.seq,"
    "  CASE WHEN t.state = 'open' THEN NULL ELSE a.opened_seq END, t.at, t.state, t.clinic,"
    "  t.patient, t.key, t.protocol, t.version, t.rule, t.severity, t.message, t.due, t.params,"
    "  t.evidence, t.recorded, t.cseq FROM transitions t JOIN alerts a ON a.id = t.alert_id;"
    "CREATE TABLE alerts_v5("
    "  id INTEGER PRIMARY KEY, acked_by TEXT, acked_at INTEGER, snoozed_until INTEGER);"
    "INSERT INTO alerts_v5 SELECT opened_seq, acked_by, acked_at, snoozed_until FROM alerts"
    "  WHERE acked_by IS NOT NULL OR acked_at IS NOT NULL OR snoozed_until IS NOT NULL;"
    "CREATE TABLE alert_actions_v5("
    "  seq INTEGER PRIMARY KEY, alert_id INTEGER NOT NULL,"
    "  clinic TEXT NOT NULL, key TEXT NOT NULL, action TEXT NOT NULL, who TEXT NOT NULL,"
    "  note TEXT NOT NULL, until INTEGER, at INTEGER NOT NULL);"
    "INSERT INTO alert_actions_v5 SELECT x.seq, a.opened_seq, x.clinic, x.key, x.action, x.who,"
    "  x.note, x.until, x.at FROM alert_actions x JOIN alerts a ON a.id = x.alert_id;"
    "DROP TABLE alert_actions;"
    "DROP TABLE transitions;"
    "DROP TABLE alerts;"
    "ALTER TABLE transitions_v5 RENAME TO transitions;"
    "ALTER TABLE alerts_v5 RENAME TO alerts;"
    "ALTER TABLE alert_actions_v5 RENAME TO alert_actions;"
    "CREATE UNIQUE INDEX transitions_by_clinic ON transitions(clinic, cseq);"
    "CREATE INDEX transitions_by_key ON transitions(clinic, key, seq);"
    "CREATE INDEX transitions_open ON transitions(clinic, patient) WHERE state = 'open';"
    "CREATE INDEX alerts_snoozed ON alerts(snoozed_until) WHERE snoozed_until IS NOT NULL;";

/* rg_fields(data), as the program registers it for the v5 migration. */
static void sql_fields(sqlite3_context *cx, int argc, sqlite3_value **argv)
{
    (void)argc;
    const char *text = (const char *)sqlite3_value_text(argv[0]);
    rg_buf b = {0};
    if (text && rg_fields_from_json(&b, text) == RG_OK && b.len)
        sqlite3_result_blob(cx, b.p, (int)b.len, SQLITE_TRANSIENT);
    else
        sqlite3_result_null(cx);
    rg_buf_free(&b);
}

static void old_put(sqlite3 *db, int64_t seq, const char *id, const char *patient,
                    const char *type, const char *at, const char *data)
{
    rg_event ev;
    ev_make(&ev, "north", id, patient, type, at, data);
    sqlite3_stmt *s;
    cr_assert_eq(sqlite3_prepare_v2(db, "INSERT INTO events(seq, clinic, id, patient, type, at,"
                                        " utc_offset, data, body, received)"
                                        " VALUES(?1, ?2, ?3, ?4, ?5, ?6, 0, ?7, ?8, 1000)",
                                    -1, &s, NULL),
                 SQLITE_OK, "%s", sqlite3_errmsg(db));
    sqlite3_bind_int64(s, 1, seq);
    sqlite3_bind_text(s, 2, ev.clinic, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 3, ev.id, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 4, ev.patient, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 5, ev.type, -1, SQLITE_STATIC);
    sqlite3_bind_int64(s, 6, ev.at);
    char *text = rg_event_data_text(ev.body, strlen(ev.body)); /* what v3 kept as data */
    if (text)
        sqlite3_bind_text(s, 7, text, -1, free);
    sqlite3_bind_text(s, 8, ev.body, -1, SQLITE_STATIC);
    cr_assert_eq(sqlite3_step(s), SQLITE_DONE, "%s", sqlite3_errmsg(db));
    sqlite3_finalize(s);
    rg_event_clear(&ev);
}

static sqlite3 *old_file(int version)
{
    sqlite3 *db;
    cr_assert_eq(sqlite3_open(dbpath, &db), SQLITE_OK);
    cr_assert_eq(sqlite3_exec(db, schema_v3, NULL, NULL, NULL), SQLITE_OK, "%s",
                 sqlite3_errmsg(db));
    if (version >= 4)
        cr_assert_eq(sqlite3_exec(db, schema_v3_to_v4, NULL, NULL, NULL), SQLITE_OK, "%s",
                     sqlite3_errmsg(db));
    if (version >= 5) {
        sqlite3_create_function(db, "rg_fields", 1, SQLITE_UTF8, NULL, sql_fields, NULL, NULL);
        cr_assert_eq(sqlite3_exec(db, schema_v4_to_v5, NULL, NULL, NULL), SQLITE_OK, "%s",
                     sqlite3_errmsg(db));
    }
    char pragma[64];
    snprintf(pragma, sizeof pragma, "PRAGMA user_version = %d", version);
    cr_assert_eq(sqlite3_exec(db, pragma, NULL, NULL, NULL), SQLITE_OK);
    return db;
}

typedef struct got_views {
    struct {
        int64_t id;
        char state[16], severity[16], acked_by[32];
        rg_time opened_at, resolved_at, acked_at, snoozed_until;
    } a[8];
    int n;
} got_views;

static int collect_view(void *ud, const rg_alert_view *a)
{
    got_views *g = ud;
    cr_assert_lt(g->n, 8);
    g->a[g->n].id = a->id;
    snprintf(g->a[g->n].state, sizeof g->a[0].state, "%s", a->state);
    snprintf(g->a[g->n].severity, sizeof g->a[0].severity, "%s", a->severity);
    snprintf(g->a[g->n].acked_by, sizeof g->a[0].acked_by, "%s", a->acked_by ? a->acked_by : "");
    g->a[g->n].opened_at = a->opened_at;
    g->a[g->n].resolved_at = a->resolved_at;
    g->a[g->n].acked_at = a->acked_at;
    g->a[g->n].snoozed_until = a->snoozed_until;
    g->n++;
    return 0;
}

static got_views *alert_views(const char *state)
{
    static got_views g;
    memset(&g, 0, sizeof g);
    cr_assert_eq(rg_store_each_alert(st, "north", NULL, state, NULL, 100, collect_view, &g), RG_OK);
    return &g;
}

static const char event_cols[] = "SELECT group_concat(name, ',') FROM (SELECT name FROM"
                                 " pragma_index_info('events_by_patient') ORDER BY seqno)";
/* Since v12 the table itself is in the order an evaluation reads, without
 * a rowid, and holds no second copy of the events in an index. */
static const char event_key[] = "SELECT (SELECT group_concat(name, ',') FROM (SELECT name FROM"
                                " pragma_table_info('events') WHERE pk > 0 ORDER BY pk))"
                                " || (SELECT CASE WHEN count(*) THEN ' and events_by_patient'"
                                " ELSE '' END FROM sqlite_master WHERE name = 'events_by_patient')"
                                " || (SELECT CASE WHEN sql LIKE '%WITHOUT ROWID' THEN '' ELSE"
                                " ' with a rowid' END FROM sqlite_master WHERE name = 'events')";

/* The engine's read is answered from the table's own key, in order: one
 * b-tree, no second copy, no sort. */
static void assert_covering_event_read(void)
{
    sqlite3 *pk = peek_open();
    sqlite3_stmt *s;
    char plan[1024] = "";
    cr_assert_eq(sqlite3_prepare_v2(pk, "EXPLAIN QUERY PLAN SELECT seq, at, id, type, fields,"
                                        " replaces, corrected_at, status"
                                        " FROM events WHERE clinic = ?1 AND patient = ?2"
                                        " ORDER BY at, seq", -1, &s, NULL),
                 SQLITE_OK, "%s", sqlite3_errmsg(pk));
    while (sqlite3_step(s) == SQLITE_ROW) {
        size_t n = strlen(plan);
        snprintf(plan + n, sizeof plan - n, "%s\n", (const char *)sqlite3_column_text(s, 3));
    }
    sqlite3_finalize(s);
    sqlite3_close(pk);
    cr_assert_not_null(strstr(plan, "USING PRIMARY KEY (clinic=? AND patient=?)"), "plan:\n%s",
                       plan);
    cr_assert_null(strstr(plan, "TEMP B-TREE"), "plan:\n%s", plan);
}

/* Schema 21's index of (clinic, next_wake), partial as patients_by_wake. */
static const char clinic_wake_index[] =
    "SELECT count(*) FROM sqlite_schema WHERE type = 'index' AND tbl_name = 'patients'"
    " AND name = 'patients_by_clinic_wake' AND sql LIKE '%(clinic, next_wake)"
    " WHERE next_wake IS NOT NULL'";

/* A version 3 file is upgraded in place through 4 to 5: the index then
 * covers what an evaluation reads (compiled data, not the text), and the
 * events are all still there, in order. */
Test(store_file, v3_file_gets_the_covering_event_index)
{
    sqlite3 *db = old_file(3);
    old_put(db, 1, "b", "p1", "vitals", "2026-03-02T11:00:00Z", "{\"sys\":150}");
    old_put(db, 2, "a", "p1", "infusion", "2026-03-02T10:00:00Z", NULL);
    old_put(db, 3, "c", "p2", "vitals", "2026-03-02T09:00:00Z", NULL);
    sqlite3_close(db);
    char got[256];
    peek_text(event_cols, got, sizeof got);
    cr_assert_str_eq(got, "clinic,patient,at,seq", "the v3 file is not as version 3 had it");

    open_store();
    cr_assert_eq(peek_int("PRAGMA user_version"), RG_SCHEMA_VERSION);
    peek_text(event_key, got, sizeof got);
    cr_assert_str_eq(got, "clinic,patient,at,seq");
    assert_covering_event_read();
    cr_assert_eq(peek_int(clinic_wake_index), 1, "3 -> ... -> 21");
    got_events *g = events_of("north", "p1");
    cr_assert_eq(g->n, 2);
    cr_assert_str_eq(g->e[0].id, "a");
    cr_assert_not(g->e[0].has_data);
    cr_assert_str_eq(g->e[1].id, "b");
    cr_assert_str_eq(g->e[1].data, "{\"sys\":150}");
    cr_assert_eq(events_of("north", "p2")->n, 1);
    close_store();
}

/* A version 4 file: every event gets the fields a fresh ingest of the same
 * line gives (bytewise), and its alerts become one row per transition with
 * the same answers from every alert query. */
Test(store_file, v4_file_upgrades_fields_and_alerts)
{
    static const char *const datas[] = {
        "{\"mg\":5,\"route\":\"iv\"}",
        "{\"z\":null,\"a\":true,\"m\":false,\"r\":0.1,\"big\":1e300,\"neg\":-7}",
        "{\"s\":\"caf\\u00e9 \\\"q\\\" \\n\",\"nested\":{\"b\":[1,2.5,{\"c\":null}],\"a\":{}}}",
        "{}",
        NULL,
    };
    sqlite3 *db = old_file(4);
    for (int i = 0; i < (int)RG_COUNTOF(datas); i++) {
        char id[16];
        snprintf(id, sizeof id, "e%d", i);
        old_put(db, i + 1, id, "p1", "vitals", "2026-03-02T10:00:00Z", datas[i]);
    }
    /* alert 1 (k-a): opened seq 1, resolved seq 3; alert 2 (k-b): opened
     * seq 2, acknowledged and snoozed; alert 3 (k-a again): opened seq 4 */
    cr_assert_eq(sqlite3_exec(db,
        "INSERT INTO alerts(id, clinic, patient, key, state, opened_seq, resolved_seq) VALUES"
        " (1, 'north', 'p1', 'k-a', 'resolved', 1, 3),"
        " (2, 'north', 'p1', 'k-b', 'open', 2, NULL),"
        " (3, 'north', 'p2', 'k-a', 'open', 4, NULL);"
        "UPDATE alerts SET acked_by = 'nurse', acked_at = 5000, snoozed_until = 9000 WHERE id = 2;"
        "INSERT INTO transitions(seq, alert_id, at, state, clinic, patient, key, protocol,"
        " version, rule, severity, message, due, params, evidence, recorded, cseq) VALUES"
        " (1, 1, 100, 'open', 'north', 'p1', 'k-a', 'ket', '1', 'r1', 'warning', 'm1', 90,"
        "  '{}', '[]', 1, 1),"
        " (2, 2, 200, 'open', 'north', 'p1', 'k-b', 'ket', '1', 'r2', 'critical', 'm2', 190,"
        "  '{\"w\":1}', '[\"e1\"]', 2, 2),"
        " (3, 1, 300, 'resolved', 'north', 'p1', 'k-a', 'ket', '1', 'r1', 'warning', 'm3', 90,"
        "  '{}', '[]', 3, 3),"
        " (4, 3, 400, 'open', 'north', 'p2', 'k-a', 'ket', '1', 'r1', 'warning', 'm4', 390,"
        "  '{}', '[]', 4, 4);"
        "INSERT INTO alert_actions(alert_id, clinic, key, action, who, note, until, at) VALUES"
        " (2, 'north', 'k-b', 'ack', 'nurse', 'seen', NULL, 5000),"
        " (2, 'north', 'k-b', 'snooze', 'nurse', '', 9000, 5001);",
        NULL, NULL, NULL), SQLITE_OK, "%s", sqlite3_errmsg(db));
    sqlite3_close(db);

    open_store();
    cr_assert_eq(peek_int("PRAGMA user_version"), RG_SCHEMA_VERSION);
    assert_covering_event_read();
    got_events *g = events_of("north", "p1"); /* checks fields against the text */
    cr_assert_eq(g->n, (int)RG_COUNTOF(datas));
    for (int i = 0; i < (int)RG_COUNTOF(datas); i++) {
        rg_event ev;
        ev_make(&ev, "north", g->e[i].id, "p1", "vitals", "2026-03-02T10:00:00Z",
                datas[atoi(g->e[i].id + 1)]);
        cr_assert_eq(g->e[i].nfields, ev.fields.len, "%s", g->e[i].id);
        cr_assert(!ev.fields.len || !memcmp(g->e[i].fields, ev.fields.p, ev.fields.len),
                  "%s: the upgrade's fields differ from a fresh ingest's", g->e[i].id);
        rg_event_clear(&ev);
    }

    got_trs *o = open_alerts("p1");
    cr_assert_eq(o->n, 1);
    cr_assert_eq(o->alert_id[0], 2);
    cr_assert_str_eq(o->t[0].key, "k-b");
    cr_assert_str_eq(o->t[0].params, "{\"w\":1}");
    cr_assert_eq(open_alerts("p2")->alert_id[0], 4, "an alert's id is now its opening seq");
    cr_assert_eq(transitions(0, 0)->n, 4);
    cr_assert_eq(transitions(0, 0)->t[2].open, 0);
    rg_time snooze;
    cr_assert_eq(rg_store_next_snooze(st, &snooze), RG_OK);
    cr_assert_eq(snooze, 9000);
    got_views *v = alert_views(NULL);
    cr_assert_eq(v->n, 3);
    cr_assert_eq(v->a[0].id, 1);
    cr_assert_str_eq(v->a[0].state, "resolved");
    cr_assert_eq(v->a[0].opened_at, 100);
    cr_assert_eq(v->a[0].resolved_at, 300);
    cr_assert_str_eq(v->a[1].state, "open");
    cr_assert_str_eq(v->a[1].acked_by, "nurse");
    cr_assert_eq(v->a[1].acked_at, 5000);
    cr_assert_eq(v->a[1].snoozed_until, 9000);
    cr_assert_str_eq(v->a[1].severity, "critical");
    cr_assert_eq(v->a[2].id, 4);
    cr_assert_str_eq(v->a[2].acked_by, "");
    cr_assert_eq(v->a[2].resolved_at, RG_TIME_NONE);
    cr_assert_eq(alert_views("resolved")->n, 1);
    cr_assert_eq(alert_views("open")->n, 2);
    /* resolving k-b, then acting on it, goes to the migrated alert */
    cr_assert_eq(rg_store_alert_action(st, "north", "k-b", "ack", "doc", "", RG_TIME_NONE, 6000),
                 RG_OK);
    cr_assert_eq(peek_int("SELECT count(*) FROM alert_actions WHERE alert_id = 2"), 3);
    rg_transition t = tr(0, "p1", "k-b", 500);
    int64_t aid = 2;
    cr_assert_eq(rg_store_transition(st, &t, &aid), RG_OK, "%s", rg_store_errmsg(st));
    cr_assert_eq(t.seq, 5);
    cr_assert_eq(open_alerts("p1")->n, 0);
    cr_assert_eq(rg_store_next_snooze(st, &snooze), RG_OK);
    cr_assert_eq(snooze, RG_TIME_NONE, "a resolved alert's snooze no longer counts");
    close_store();
}

Test(store_file, reopening_keeps_data)
{
    open_store();
    cr_assert_eq(put("north", "e1", "p1", "infusion", "2026-03-02T14:05:00Z", "{\"mg\":5}"),
                 RG_PUT_STORED);
    set_state("north", "p1", T("2026-03-02T14:05:00Z"), T("2026-03-02T16:05:00Z"),
              T("2026-03-02T16:05:00Z"), 1);
    rg_transition t = tr(1, "p1", "k1", T("2026-03-02T14:05:00Z"));
    int64_t aid = 0;
    cr_assert_eq(rg_store_transition(st, &t, &aid), RG_OK);
    cr_assert_eq(rg_store_reject(st, "f.jsonl", 7, "id", "why", "raw", 3), RG_OK);
    close_store();

    for (int round = 0; round < 2; round++) {
        open_store();
        cr_assert_eq(peek_int("PRAGMA user_version"), RG_SCHEMA_VERSION);
        got_events *g = events_of("north", "p1");
        cr_assert_eq(g->n, 1);
        cr_assert_str_eq(g->e[0].id, "e1");
        cr_assert_str_eq(g->e[0].data, "{\"mg\":5}");
        rg_patient_state ps = get_state("north", "p1");
        cr_assert_eq(ps.clock, T("2026-03-02T14:05:00Z"));
        cr_assert_eq(ps.wake, T("2026-03-02T16:05:00Z"));
        cr_assert_eq(ps.last_seq, 1);
        cr_assert_eq(open_alerts("p1")->n, 1);
        cr_assert_eq(transitions(0, 0)->n, 1);
        cr_assert_eq(rejected()->n, 1);
        /* still the same event: a re-send is a duplicate */
        cr_assert_eq(put("north", "e1", "p1", "infusion", "2026-03-02T14:05:00Z", "{\"mg\":5}"),
                     RG_PUT_DUPLICATE);
        close_store();
    }
    cr_assert_eq(peek_int("SELECT count(*) FROM events"), 1);
}

/* ---- events ------------------------------------------------------------- */

/* A body stored before NUL bytes were refused ends at the NUL and is not
 * JSON: the same id sent again is a conflict (reported, kept aside), where
 * it used to fail the whole ingest as "out of memory". */
Test(store, stored_body_that_is_not_json_makes_a_conflict)
{
    cr_assert_eq(put("north", "ev-1", "p-17", "infusion", "2026-03-02T14:05:00Z",
                     "{\"duration_min\":4}"),
                 RG_PUT_STORED);
    close_store();
    sqlite3 *db;
    cr_assert_eq(sqlite3_open(dbpath, &db), SQLITE_OK);
    /* (a whole body: since v17 a row may keep only the rest after its head) */
    cr_assert_eq(sqlite3_exec(db, "UPDATE events SET body = '{\"id\":\"ev-1\",\"clini'", NULL,
                              NULL, NULL),
                 SQLITE_OK);
    sqlite3_close(db);
    open_store();
    cr_assert_eq(put("north", "ev-1", "p-17", "infusion", "2026-03-02T14:05:00Z",
                     "{\"duration_min\":4}"),
                 RG_PUT_CONFLICT);
    cr_assert_eq(events_of("north", "p-17")->n, 1);
}

Test(store, put_stored_duplicate_conflict)
{
    cr_assert_eq(put("north", "ev-1", "p-17", "infusion", "2026-03-02T14:05:00-05:00",
                     "{\"dose_mg_per_kg\":0.5}"),
                 RG_PUT_STORED);
    /* identical content, spelt differently: duplicate */
    rg_event ev;
    const char *same = "{ \"data\": {\"dose_mg_per_kg\": 0.5}, \"at\": \"2026-03-02T14:05:00-05:00\","
                       " \"type\": \"infusion\", \"patient\": \"p-17\", \"clinic\": \"north\","
                       " \"id\": \"ev-1\" }";
    char field[RG_FIELD_MAX], err[256];
    cr_assert_eq(rg_event_parse(&ev, same, strlen(same), field, err, sizeof err), RG_OK, "%s",
                 err);
    rg_put res = (rg_put)-1;
    cr_assert_eq(rg_store_put_event(st, &ev, 2000, &res), RG_OK);
    cr_assert_eq(res, RG_PUT_DUPLICATE);
    rg_event_clear(&ev);
    /* same (clinic, id), different content: conflict, not overwritten */
    cr_assert_eq(put("north", "ev-1", "p-17", "infusion", "2026-03-02T14:05:00-05:00",
                     "{\"dose_mg_per_kg\":5}"),
                 RG_PUT_CONFLICT);
    cr_assert_eq(put("north", "ev-1", "p-17", "infusion.end", "2026-03-02T14:05:00-05:00",
                     "{\"dose_mg_per_kg\":0.5}"),
                 RG_PUT_CONFLICT);
    cr_assert_eq(put("north", "ev-1", "p-99", "infusion", "2026-03-02T14:05:00-05:00",
                     "{\"dose_mg_per_kg\":0.5}"),
                 RG_PUT_CONFLICT);
    cr_assert_eq(put("north", "ev-1", "p-17", "infusion", "2026-03-02T19:05:00Z",
                     "{\"dose_mg_per_kg\":0.5}"),
                 RG_PUT_CONFLICT);
    got_events *g = events_of("north", "p-17");
    cr_assert_eq(g->n, 1);
    cr_assert_str_eq(g->e[0].id, "ev-1");
    cr_assert_str_eq(g->e[0].type, "infusion");
    cr_assert_str_eq(g->e[0].data, "{\"dose_mg_per_kg\":0.5}");
    cr_assert_eq(g->e[0].at, INT64_C(1772478300000));
    cr_assert_eq(events_of("north", "p-99")->n, 0);
    /* the conflicting patient was not scheduled either */
    rg_patient_state ps;
    cr_assert_eq(rg_store_patient_get(st, "north", "p-99", &ps), RG_ENOTFOUND);
    /* the same id in another clinic is another event */
    cr_assert_eq(put("south", "ev-1", "p-17", "infusion", "2026-03-02T14:05:00-05:00", NULL),
                 RG_PUT_STORED);
    cr_assert_eq(events_of("south", "p-17")->n, 1);
    cr_assert_eq(peek_int("SELECT count(*) FROM events"), 2);
    cr_assert_eq(peek_int("SELECT utc_offset FROM events WHERE clinic = 'north'"), -300);
    cr_assert_eq(peek_int("SELECT received FROM events WHERE clinic = 'north'"), 1000);
}

Test(store, events_come_back_in_at_then_seq_order)
{
    cr_assert_eq(put("north", "c", "p1", "vitals", "2026-03-02T12:00:00Z", NULL), RG_PUT_STORED);
    cr_assert_eq(put("north", "a", "p1", "infusion", "2026-03-02T10:00:00Z", "{\"n\":1}"),
                 RG_PUT_STORED);
    cr_assert_eq(put("north", "b", "p1", "vitals", "2026-03-02T11:00:00Z", NULL), RG_PUT_STORED);
    /* same instant as "a" (written with an offset), inserted later */
    cr_assert_eq(put("north", "a2", "p1", "note", "2026-03-02T05:00:00-05:00", NULL),
                 RG_PUT_STORED);
    /* other patients / clinics are not mixed in */
    cr_assert_eq(put("north", "x", "p2", "vitals", "2026-03-02T09:00:00Z", NULL), RG_PUT_STORED);
    cr_assert_eq(put("south", "y", "p1", "vitals", "2026-03-02T09:00:00Z", NULL), RG_PUT_STORED);
    /* before 1970 sorts first */
    cr_assert_eq(put("north", "old", "p1", "birth", "1969-07-20T20:17:40Z", NULL), RG_PUT_STORED);

    got_events *g = events_of("north", "p1");
    cr_assert_eq(g->n, 5);
    static const char *const want[] = {"old", "a", "a2", "b", "c"};
    static const int64_t want_seq[] = {7, 2, 4, 3, 1};
    for (int i = 0; i < 5; i++) {
        cr_assert_str_eq(g->e[i].id, want[i], "position %d", i);
        cr_assert_eq(g->e[i].seq, want_seq[i], "position %d: seq %lld", i,
                     (long long)g->e[i].seq);
    }
    cr_assert_eq(g->e[0].at, INT64_C(-14182940000));
    cr_assert_eq(g->e[1].at, g->e[2].at);
    cr_assert(g->e[1].has_data);
    cr_assert_str_eq(g->e[1].data, "{\"n\":1}");
    cr_assert_not(g->e[2].has_data, "an event without data must come back with data == NULL");
    cr_assert_str_eq(g->e[3].type, "vitals");
    cr_assert_eq(events_of("north", "nobody")->n, 0);
}

/* rg_store_copy (diff's second side): a fresh store becomes the same
 * database, its events read back through it and its next writes numbered
 * after the copied ones. */
Test(store, copy_makes_a_fresh_store_the_same_database)
{
    cr_assert_eq(put("north", "a", "p1", "infusion", "2026-03-02T10:00:00Z", "{\"n\":1}"),
                 RG_PUT_STORED);
    cr_assert_eq(put("north", "b", "p1", "vitals", "2026-03-02T11:00:00Z", NULL), RG_PUT_STORED);
    char path[600], err[512] = "";
    snprintf(path, sizeof path, "%s/copy.db", tmpdir);
    rg_store *kept = st, *copy = NULL;
    rg_store_opts so = {.scratch = 1};
    cr_assert_eq(rg_store_open(&copy, path, &so, err, sizeof err), RG_OK, "%s", err);
    cr_assert_eq(rg_store_copy(kept, copy), RG_OK, "%s", rg_store_errmsg(copy));
    st = copy; /* events_of and put read and write st */
    got_events *g = events_of("north", "p1");
    cr_assert_eq(g->n, 2);
    cr_assert_str_eq(g->e[0].id, "a");
    cr_assert_str_eq(g->e[0].data, "{\"n\":1}");
    cr_assert_eq(put("north", "c", "p1", "note", "2026-03-02T12:00:00Z", NULL), RG_PUT_STORED);
    g = events_of("north", "p1");
    cr_assert_eq(g->n, 3);
    cr_assert_eq(g->e[2].seq, 3, "the copy numbers on from the copied events");
    rg_store_close(copy);
    st = kept;
    cr_assert_eq(events_of("north", "p1")->n, 2, "the source is left as it was");
}

/* ---- patients and scheduling ------------------------------------------- */

Test(store, first_event_schedules_patient_at_its_instant)
{
    rg_patient_state ps;
    memset(&ps, 0, sizeof ps);
    cr_assert_eq(rg_store_patient_get(st, "north", "p1", &ps), RG_ENOTFOUND);
    cr_assert_eq(ps.clock, RG_TIME_NONE);
    cr_assert_eq(ps.wake, RG_TIME_NONE);
    cr_assert_eq(ps.next_wake, RG_TIME_NONE);
    cr_assert_eq(ps.last_seq, 0);

    cr_assert_eq(put("north", "e1", "p1", "infusion", "2026-03-02T14:05:00-05:00", NULL),
                 RG_PUT_STORED);
    ps = get_state("north", "p1");
    cr_assert_eq(ps.next_wake, INT64_C(1772478300000));
    cr_assert_eq(ps.clock, RG_TIME_NONE);
    cr_assert_eq(ps.wake, RG_TIME_NONE);
    cr_assert_eq(ps.last_seq, 0);
    /* an earlier event moves next_wake back; a later one does not move it */
    cr_assert_eq(put("north", "e0", "p1", "vitals", "2026-03-02T18:00:00Z", NULL), RG_PUT_STORED);
    cr_assert_eq(get_state("north", "p1").next_wake, T("2026-03-02T18:00:00Z"));
    cr_assert_eq(put("north", "e2", "p1", "vitals", "2026-03-03T18:00:00Z", NULL), RG_PUT_STORED);
    cr_assert_eq(get_state("north", "p1").next_wake, T("2026-03-02T18:00:00Z"));
    /* duplicates and conflicts do not schedule */
    cr_assert_eq(put("north", "e9", "p2", "vitals", "2026-03-03T18:00:00Z", NULL), RG_PUT_STORED);
    set_state("north", "p2", RG_TIME_NONE, RG_TIME_NONE, RG_TIME_NONE, 0);
    cr_assert_eq(put("north", "e9", "p2", "vitals", "2026-03-03T18:00:00Z", NULL),
                 RG_PUT_DUPLICATE);
    cr_assert_eq(put("north", "e9", "p2", "vitals", "2026-03-01T18:00:00Z", NULL),
                 RG_PUT_CONFLICT);
    cr_assert_eq(get_state("north", "p2").next_wake, RG_TIME_NONE);
}

Test(store, patient_put_get_round_trip)
{
    set_state("north", "p1", T("2026-03-02T14:05:00Z"), T("2026-03-02T16:05:00.250Z"),
              T("2026-03-02T15:00:00Z"), 42);
    rg_patient_state ps = get_state("north", "p1");
    cr_assert_eq(ps.clock, T("2026-03-02T14:05:00Z"));
    cr_assert_eq(ps.wake, T("2026-03-02T16:05:00.250Z"));
    cr_assert_eq(ps.next_wake, T("2026-03-02T15:00:00Z"));
    cr_assert_eq(ps.last_seq, 42);
    /* overwrite, with "none" values and a time before 1970 */
    set_state("north", "p1", -5000, RG_TIME_NONE, RG_TIME_NONE, 43);
    ps = get_state("north", "p1");
    cr_assert_eq(ps.clock, -5000);
    cr_assert_eq(ps.wake, RG_TIME_NONE);
    cr_assert_eq(ps.next_wake, RG_TIME_NONE);
    cr_assert_eq(ps.last_seq, 43);
    /* patients are per clinic */
    rg_patient_state other;
    cr_assert_eq(rg_store_patient_get(st, "south", "p1", &other), RG_ENOTFOUND);
    cr_assert_eq(peek_int("SELECT count(*) FROM patients"), 1);
    cr_assert_eq(peek_int("SELECT count(*) FROM patients WHERE wake IS NULL AND next_wake IS NULL"),
                 1);
}

Test(store, late_event_schedules_at_the_clock)
{
    rg_time clock = T("2026-03-05T12:00:00Z");
    cr_assert_eq(put("north", "e1", "p1", "infusion", "2026-03-02T10:00:00Z", NULL),
                 RG_PUT_STORED);
    /* evaluated up to clock, nothing due */
    set_state("north", "p1", clock, RG_TIME_NONE, RG_TIME_NONE, 1);
    /* an event older than the clock: due at once, i.e. at the clock */
    cr_assert_eq(put("north", "late", "p1", "vitals", "2026-03-04T09:00:00Z", NULL),
                 RG_PUT_STORED);
    rg_patient_state ps = get_state("north", "p1");
    cr_assert_eq(ps.next_wake, clock);
    cr_assert_eq(ps.clock, clock);
    cr_assert_eq(ps.last_seq, 1);

    /* exactly at the clock counts as late too */
    set_state("north", "p1", clock, RG_TIME_NONE, RG_TIME_NONE, 2);
    cr_assert_eq(put("north", "same", "p1", "vitals", "2026-03-05T12:00:00Z", NULL),
                 RG_PUT_STORED);
    cr_assert_eq(get_state("north", "p1").next_wake, clock);

    /* a future event with nothing else due: its own instant */
    set_state("north", "p1", clock, RG_TIME_NONE, RG_TIME_NONE, 3);
    cr_assert_eq(put("north", "fut", "p1", "vitals", "2026-03-06T12:00:00Z", NULL),
                 RG_PUT_STORED);
    cr_assert_eq(get_state("north", "p1").next_wake, T("2026-03-06T12:00:00Z"));
    /* then a late one pulls it back to the clock */
    cr_assert_eq(put("north", "late2", "p1", "vitals", "2026-03-01T00:00:00Z", NULL),
                 RG_PUT_STORED);
    cr_assert_eq(get_state("north", "p1").next_wake, clock);

    /* a future event after a pending rule wake-up keeps the earlier wake-up */
    rg_time wake = T("2026-03-05T14:00:00Z");
    set_state("north", "p1", clock, wake, wake, 4);
    cr_assert_eq(put("north", "fut2", "p1", "vitals", "2026-03-05T15:00:00Z", NULL),
                 RG_PUT_STORED);
    ps = get_state("north", "p1");
    cr_assert_eq(ps.next_wake, wake);
    cr_assert_eq(ps.wake, wake);
    /* a future event before it moves next_wake (not wake) */
    cr_assert_eq(put("north", "fut3", "p1", "vitals", "2026-03-05T13:00:00Z", NULL),
                 RG_PUT_STORED);
    ps = get_state("north", "p1");
    cr_assert_eq(ps.next_wake, T("2026-03-05T13:00:00Z"));
    cr_assert_eq(ps.wake, wake);
}

Test(store, next_wake_is_the_minimum)
{
    rg_time t = 12345;
    cr_assert_eq(rg_store_next_wake(st, &t), RG_OK);
    cr_assert_eq(t, RG_TIME_NONE);
    set_state("north", "a", RG_TIME_NONE, RG_TIME_NONE, RG_TIME_NONE, 0);
    cr_assert_eq(rg_store_next_wake(st, &t), RG_OK);
    cr_assert_eq(t, RG_TIME_NONE);
    set_state("north", "b", 0, 0, T("2026-03-05T14:00:00Z"), 0);
    set_state("south", "c", 0, 0, T("2026-03-04T14:00:00Z"), 0);
    set_state("west", "d", 0, 0, T("2026-03-06T14:00:00Z"), 0);
    cr_assert_eq(rg_store_next_wake(st, &t), RG_OK);
    cr_assert_eq(t, T("2026-03-04T14:00:00Z"));
    cr_assert_eq(put("east", "e", "e", "vitals", "2026-03-01T00:00:00Z", NULL), RG_PUT_STORED);
    cr_assert_eq(rg_store_next_wake(st, &t), RG_OK);
    cr_assert_eq(t, T("2026-03-01T00:00:00Z"));
    set_state("east", "e", T("2026-03-01T00:00:00Z"), RG_TIME_NONE, RG_TIME_NONE, 1);
    cr_assert_eq(rg_store_next_wake(st, &t), RG_OK);
    cr_assert_eq(t, T("2026-03-04T14:00:00Z"));
    /* negative instants are ordered too */
    set_state("north", "a", RG_TIME_NONE, RG_TIME_NONE, -1, 0);
    cr_assert_eq(rg_store_next_wake(st, &t), RG_OK);
    cr_assert_eq(t, -1);
}

Test(store, patients_page_in_clinic_patient_order_with_due_filter)
{
    rg_time due = T("2026-03-05T00:00:00Z");
    /* inserted out of order; "p10" sorts between "p1" and "p2" */
    set_state("b", "p1", 0, RG_TIME_NONE, due + 1, 0);          /* not yet due */
    set_state("a", "p2", 0, RG_TIME_NONE, due, 0);              /* due exactly */
    set_state("c", "x", 0, RG_TIME_NONE, RG_TIME_NONE, 0);      /* never due */
    set_state("a", "p10", 0, RG_TIME_NONE, due - RG_MS_DAY, 0); /* due */
    set_state("a", "p1", 0, RG_TIME_NONE, RG_TIME_NONE, 0);     /* never due */
    set_state("B", "z", 0, RG_TIME_NONE, due - 1, 0);           /* upper case sorts first */
    static const char *const all_c[] = {"B", "a", "a", "a", "b", "c"};
    static const char *const all_p[] = {"z", "p1", "p10", "p2", "p1", "x"};

    got_pats g;
    memset(&g, 0, sizeof g);
    char ac[32] = "", ap[32] = "";
    int pages = 0, n;
    while ((n = rg_store_patients_page(st, ac, ap, RG_TIME_NONE, 2, collect_pat, &g)) > 0) {
        cr_assert_leq(n, 2);
        snprintf(ac, sizeof ac, "%s", g.clinic[g.n - 1]);
        snprintf(ap, sizeof ap, "%s", g.patient[g.n - 1]);
        pages++;
    }
    cr_assert_eq(n, 0);
    cr_assert_eq(pages, 3);
    cr_assert_eq(g.n, 6);
    for (int i = 0; i < 6; i++) {
        cr_assert_str_eq(g.clinic[i], all_c[i], "row %d", i);
        cr_assert_str_eq(g.patient[i], all_p[i], "row %d", i);
    }

    /* only the due ones: B/z, a/p10, a/p2 */
    memset(&g, 0, sizeof g);
    ac[0] = ap[0] = '\0';
    pages = 0;
    while ((n = rg_store_patients_page(st, ac, ap, due, 2, collect_pat, &g)) > 0) {
        snprintf(ac, sizeof ac, "%s", g.clinic[g.n - 1]);
        snprintf(ap, sizeof ap, "%s", g.patient[g.n - 1]);
        pages++;
    }
    cr_assert_eq(n, 0);
    cr_assert_eq(pages, 2);
    cr_assert_eq(g.n, 3);
    cr_assert_str_eq(g.clinic[0], "B");
    cr_assert_str_eq(g.patient[0], "z");
    cr_assert_str_eq(g.clinic[1], "a");
    cr_assert_str_eq(g.patient[1], "p10");
    cr_assert_str_eq(g.clinic[2], "a");
    cr_assert_str_eq(g.patient[2], "p2");

    /* starting in the middle */
    memset(&g, 0, sizeof g);
    cr_assert_eq(rg_store_patients_page(st, "a", "p10", RG_TIME_NONE, 100, collect_pat, &g), 3);
    cr_assert_str_eq(g.patient[0], "p2");
    cr_assert_str_eq(g.clinic[2], "c");

    /* a callback that stops early: its answer is returned (store.h) */
    memset(&g, 0, sizeof g);
    g.stop_after = 2;
    cr_assert_eq(rg_store_patients_page(st, "", "", RG_TIME_NONE, 100, collect_pat, &g), 1);
    cr_assert_eq(g.n, 2);

    /* nothing due before all of them */
    memset(&g, 0, sizeof g);
    cr_assert_eq(rg_store_patients_page(st, "", "", due - 2 * RG_MS_DAY, 100, collect_pat, &g), 0);
    cr_assert_eq(g.n, 0);
}

/* The plan of the wake-up read of every clinic (0) or of one (1), as
 * EXPLAIN QUERY PLAN tells it on a connection of its own, a line a step. */
static void due_plan(int one_clinic, char *plan, size_t size)
{
    sqlite3 *db = peek_open();
    char sql[1024];
    sqlite3_stmt *s;
    snprintf(sql, sizeof sql, "EXPLAIN QUERY PLAN %s", rg_sqlite_due_sql(one_clinic));
    cr_assert_eq(sqlite3_prepare_v2(db, sql, -1, &s, NULL), SQLITE_OK, "%s", sqlite3_errmsg(db));
    plan[0] = '\0';
    while (sqlite3_step(s) == SQLITE_ROW) {
        size_t n = strlen(plan);
        snprintf(plan + n, size - n, "%s\n", (const char *)sqlite3_column_text(s, 3));
    }
    sqlite3_finalize(s);
    sqlite3_close(db);
}

/* A wake-up reads only the due patients: the query of every clinic walks
 * the partial index patients_by_wake, never the whole table, and hands the
 * earliest due over in (clinic, patient) order (one clinic's: below). */
Test(store, due_patients_read_the_wake_index_earliest_first)
{
    rg_time due = T("2026-03-05T00:00:00Z");
    for (int i = 0; i < 200; i++) { /* a table big enough to tempt a scan */
        char p[16];
        snprintf(p, sizeof p, "p%03d", i);
        set_state(i % 2 ? "b" : "a", p, 0, RG_TIME_NONE, i % 40 ? due + 1 : due - i, 0);
    }
    char plan[2048];
    due_plan(0, plan, sizeof plan);
    cr_assert(strstr(plan, "INDEX patients_by_wake (next_wake<?)"), "plan:\n%s", plan);
    cr_assert_null(strstr(plan, "PRIMARY KEY"), "plan:\n%s", plan);
    cr_assert_null(strstr(plan, "SCAN patients"), "plan:\n%s", plan);

    /* due: p000, p040, p080, p120, p160 (all of clinic a), p160 the earliest */
    got_pats g;
    memset(&g, 0, sizeof g);
    cr_assert_eq(rg_store_due_patients(st, NULL, due, 100, collect_pat, &g), 5);
    static const char *const all[] = {"p000", "p040", "p080", "p120", "p160"};
    for (int i = 0; i < 5; i++)
        cr_assert_str_eq(g.patient[i], all[i], "row %d", i);
    /* one clinic's: the same five for a, none for b */
    memset(&g, 0, sizeof g);
    cr_assert_eq(rg_store_due_patients(st, "a", due, 100, collect_pat, &g), 5);
    cr_assert_str_eq(g.patient[4], "p160");
    memset(&g, 0, sizeof g);
    cr_assert_eq(rg_store_due_patients(st, "b", due, 100, collect_pat, &g), 0);
    /* a page of 2: the two earliest due, in patient order */
    memset(&g, 0, sizeof g);
    cr_assert_eq(rg_store_due_patients(st, NULL, due, 2, collect_pat, &g), 2);
    cr_assert_str_eq(g.patient[0], "p120");
    cr_assert_str_eq(g.patient[1], "p160");
    /* once advanced past due they leave the set */
    set_state("a", "p120", due, RG_TIME_NONE, due + 5, 0);
    set_state("a", "p160", due, RG_TIME_NONE, RG_TIME_NONE, 0);
    memset(&g, 0, sizeof g);
    cr_assert_eq(rg_store_due_patients(st, NULL, due, 2, collect_pat, &g), 2);
    cr_assert_str_eq(g.patient[0], "p040");
    cr_assert_str_eq(g.patient[1], "p080");
    memset(&g, 0, sizeof g);
    cr_assert_eq(rg_store_due_patients(st, NULL, due - 200, 100, collect_pat, &g), 0);
}

/* Clinic B's due page read as the store reads it (the same SQL) on a
 * connection of its own: the patients in g, and the virtual machine steps it
 * took (they grow with the index entries it goes through). */
static int clinic_due_steps(const char *clinic, rg_time due, int limit, got_pats *g)
{
    sqlite3 *db = peek_open();
    sqlite3_stmt *s;
    cr_assert_eq(sqlite3_prepare_v2(db, rg_sqlite_due_sql(1), -1, &s, NULL), SQLITE_OK, "%s",
                 sqlite3_errmsg(db));
    sqlite3_bind_int64(s, 1, due);
    sqlite3_bind_int(s, 2, limit);
    sqlite3_bind_text(s, 3, clinic, -1, SQLITE_STATIC);
    memset(g, 0, sizeof *g);
    while (sqlite3_step(s) == SQLITE_ROW)
        collect_pat(g, (const char *)sqlite3_column_text(s, 0),
                    (const char *)sqlite3_column_text(s, 1));
    int steps = sqlite3_stmt_status(s, SQLITE_STMTSTATUS_VM_STEP, 0);
    sqlite3_finalize(s);
    sqlite3_close(db);
    return steps;
}

/* Tenant isolation (schema 21): a page of one clinic's wake-up is read from
 * patients_by_clinic_wake, so it goes through that clinic's due patients
 * only, however many another clinic has due before them. Through
 * patients_by_wake filtered by clinic (schema 20), clinic B's page went
 * through all of clinic A's 3,000 first: 12,097 steps for a page of 4. */
Test(store, one_clinics_due_page_skips_the_other_clinics_backlog)
{
    rg_time due = T("2026-03-05T00:00:00Z");
    sqlite3 *db;
    cr_assert_eq(sqlite3_open(dbpath, &db), SQLITE_OK);
    char sql[512];
    snprintf(sql, sizeof sql, /* A: 3,000 due, all before any of B's */
             "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 3000)"
             " INSERT INTO patients(clinic, patient, next_wake) SELECT 'A', 'a' || i,"
             " %lld + i FROM n",
             (long long)(due - RG_MS_DAY));
    cr_assert_eq(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK, "%s", sqlite3_errmsg(db));
    sqlite3_close(db);
    for (int i = 0; i < 12; i++) { /* B: b00..b09 due, the later ones earlier; b10, b11 not */
        char p[16];
        snprintf(p, sizeof p, "b%02d", i);
        set_state("B", p, 0, RG_TIME_NONE, i < 10 ? due - 10 + (9 - i) : due + i, 0);
    }
    for (int analyzed = 0; analyzed < 2; analyzed++) {
        char plan[2048];
        due_plan(1, plan, sizeof plan);
        cr_assert(strstr(plan, "INDEX patients_by_clinic_wake (clinic=? AND next_wake<?)"),
                  "analyzed %d, plan:\n%s", analyzed, plan);
        cr_assert_null(strstr(plan, "patients_by_wake"), "plan:\n%s", plan);
        got_pats g;
        int steps = clinic_due_steps("B", due, 4, &g);
        cr_assert_lt(steps, 300, "%d steps for a page of 4", steps);
        cr_assert_eq(g.n, 4);
        static const char *const want[] = {"b06", "b07", "b08", "b09"};
        for (int i = 0; i < 4; i++) {
            cr_assert_str_eq(g.clinic[i], "B");
            cr_assert_str_eq(g.patient[i], want[i], "row %d", i);
        }
        /* the store's own read gives the same page */
        memset(&g, 0, sizeof g);
        cr_assert_eq(rg_store_due_patients(st, "B", due, 4, collect_pat, &g), 4);
        for (int i = 0; i < 4; i++)
            cr_assert_str_eq(g.patient[i], want[i], "row %d", i);
        cr_assert_eq(sqlite3_open(dbpath, &db), SQLITE_OK);
        cr_assert_eq(sqlite3_exec(db, "ANALYZE", NULL, NULL, NULL), SQLITE_OK);
        sqlite3_close(db);
    }
    /* A's own page: its earliest, all of it still there */
    got_pats g;
    memset(&g, 0, sizeof g);
    cr_assert_eq(rg_store_due_patients(st, "A", due, 3, collect_pat, &g), 3);
    cr_assert_str_eq(g.patient[0], "a1");
    cr_assert_str_eq(g.patient[1], "a2");
    cr_assert_str_eq(g.patient[2], "a3");
}

/* Every read by alert key (explain, GET /v1/alerts/{key}, its actions, the
 * engine's open check) is a lookup in an index on (clinic, key): its cost is
 * the key's rows, never a walk through the clinic's transitions. */
Test(store, reads_by_key_use_an_index_on_clinic_and_key)
{
    sqlite3 *db = peek_open();
    for (int i = 0; rg_sqlite_key_sql(i); i++) {
        char sql[2048], plan[2048] = "";
        sqlite3_stmt *s;
        snprintf(sql, sizeof sql, "EXPLAIN QUERY PLAN %s", rg_sqlite_key_sql(i));
        cr_assert_eq(sqlite3_prepare_v2(db, sql, -1, &s, NULL), SQLITE_OK, "%s",
                     sqlite3_errmsg(db));
        while (sqlite3_step(s) == SQLITE_ROW) {
            size_t n = strlen(plan);
            snprintf(plan + n, sizeof plan - n, "%s\n", (const char *)sqlite3_column_text(s, 3));
        }
        sqlite3_finalize(s);
        cr_assert(strstr(plan, "_by_key (clinic=? AND key=?"), "read %d:\n%s", i, plan);
        cr_assert_null(strstr(plan, "SCAN "), "read %d:\n%s", i, plan);
    }
    sqlite3_close(db);
}

/* ---- alerts and transitions -------------------------------------------- */

/* A version 5 file (as this program leaves one, less what version 6 adds):
 * its transitions read with notify_at = at, and new ones keep theirs. */
Test(store_file, v5_file_upgrades_to_notify_at)
{
    open_store();
    int64_t a = 0;
    rg_transition t = tr(1, "p1", "k-a", T("2026-03-07T15:00:00Z"));
    cr_assert_eq(rg_store_transition(st, &t, &a), RG_OK, "%s", rg_store_errmsg(st));
    close_store();
    sqlite3 *db;
    cr_assert_eq(sqlite3_open(dbpath, &db), SQLITE_OK);
    cr_assert_eq(sqlite3_exec(db, "DROP TABLE webhook_ahead;"
                                  "ALTER TABLE transitions DROP COLUMN notify_at;"
                                  "ALTER TABLE patients DROP COLUMN scheduled;"
                                  "DROP TABLE failing_rules;"
                                  "ALTER TABLE patients DROP COLUMN failing;"
                                  "DROP INDEX alert_actions_by_key;"
                                  "DROP TABLE events; DROP TABLE event_seq;" /* v12's */
                                  "CREATE TABLE events(seq INTEGER PRIMARY KEY,"
                                  "  clinic TEXT NOT NULL, id TEXT NOT NULL,"
                                  "  patient TEXT NOT NULL, type TEXT NOT NULL,"
                                  "  at INTEGER NOT NULL, utc_offset INTEGER NOT NULL, data TEXT,"
                                  "  body TEXT NOT NULL, received INTEGER NOT NULL, fields BLOB,"
                                  "  UNIQUE(clinic, id));"
                                  "CREATE INDEX events_by_patient ON events(clinic, patient,"
                                  "  at, seq, id, type, fields);"
                                  "DROP TABLE audit; DROP TABLE audit_chain;"
                                  "DROP TABLE protocol_sets;" /* version 11's */
                                  "DROP TABLE protocol_set_files;"
                                  "DROP TABLE protocol_set_log;"
                                  "DROP TABLE shadow_transitions;" /* 12's */
                                  "ALTER TABLE transitions DROP COLUMN cause;" /* 13's */
                                  "DROP TABLE notify_steps; DROP TABLE notify_log;" /* 14's */
                                  "DROP TABLE open_alerts;" /* 16's */
                                  "DROP INDEX patients_by_clinic_wake;" /* 21's */
                                  "PRAGMA user_version = 5;", NULL, NULL, NULL),
                 SQLITE_OK, "%s", sqlite3_errmsg(db));
    sqlite3_close(db);
    open_store();
    cr_assert_eq(peek_int("PRAGMA user_version"), RG_SCHEMA_VERSION);
    got_trs *g = transitions(0, 0);
    cr_assert_eq(g->n, 1);
    cr_assert_eq(g->t[0].notify_at, T("2026-03-07T15:00:00Z"), "a v5 row is told at its at");
    rg_transition t2 = tr(1, "p1", "k-b", T("2026-03-07T16:00:00Z"));
    t2.notify_at = T("2026-03-09T13:00:00Z");
    cr_assert_eq(rg_store_transition(st, &t2, &a), RG_OK, "%s", rg_store_errmsg(st));
    g = transitions(0, 0);
    cr_assert_eq(g->n, 2);
    cr_assert_eq(g->t[1].notify_at, T("2026-03-09T13:00:00Z"));
    close_store();
}

/* A version 19 file: its transitions table, rebuilt by 19 -> 20 with the
 * CHECK on state as comparisons (SQLite built an ephemeral table at each
 * insert for the IN list), keeps every row and its indexes, and the CHECK
 * still refuses a state that is none of the three. */
Test(store_file, v19_transitions_rebuilt_with_the_same_check)
{
    open_store();
    int64_t a = 0;
    rg_transition t = tr(1, "p1", "k-a", T("2026-03-07T15:00:00Z"));
    t.cause = "e1";
    cr_assert_eq(rg_store_transition(st, &t, &a), RG_OK, "%s", rg_store_errmsg(st));
    rg_transition r = tr(0, "p1", "k-a", T("2026-03-08T15:00:00Z"));
    cr_assert_eq(rg_store_transition(st, &r, &a), RG_OK, "%s", rg_store_errmsg(st));
    close_store();
    static const char rows[] = "SELECT group_concat(seq || alert_id || at || state || clinic ||"
                               " patient || key || protocol || version || rule || severity ||"
                               " message || due || params || evidence || recorded || cseq ||"
                               " coalesce(notify_at, '-') || coalesce(cause, '-'), char(10))"
                               " FROM (SELECT * FROM transitions ORDER BY seq)";
    char before[4096], after[4096];
    peek_text(rows, before, sizeof before);
    sqlite3 *db;
    cr_assert_eq(sqlite3_open(dbpath, &db), SQLITE_OK);
    static const char v19[] =
        "CREATE TABLE t19 AS SELECT * FROM transitions; DROP TABLE transitions;"
        "CREATE TABLE transitions(seq INTEGER PRIMARY KEY, alert_id INTEGER,"
        "  at INTEGER NOT NULL, state TEXT NOT NULL"
        "  CHECK(state IN ('open','resolved','reraised')),"
        "  clinic TEXT NOT NULL, patient TEXT NOT NULL, key TEXT NOT NULL,"
        "  protocol TEXT NOT NULL, version TEXT NOT NULL, rule TEXT NOT NULL,"
        "  severity TEXT NOT NULL, message TEXT NOT NULL, due INTEGER NOT NULL,"
        "  params TEXT NOT NULL, evidence TEXT NOT NULL, recorded INTEGER NOT NULL,"
        "  cseq INTEGER, notify_at INTEGER, cause TEXT);"
        "INSERT INTO transitions SELECT * FROM t19; DROP TABLE t19;"
        "CREATE UNIQUE INDEX transitions_by_clinic ON transitions(clinic, cseq);"
        "CREATE INDEX transitions_by_key ON transitions(clinic, key, seq);"
        "CREATE INDEX transitions_open ON transitions(clinic, patient)"
        "  WHERE state = 'open';"
        "DROP INDEX patients_by_clinic_wake;" /* 21's */
        "PRAGMA user_version = 19;";
    cr_assert_eq(sqlite3_exec(db, v19, NULL, NULL, NULL), SQLITE_OK, "%s", sqlite3_errmsg(db));
    sqlite3_close(db);
    open_store();
    cr_assert_eq(peek_int("PRAGMA user_version"), RG_SCHEMA_VERSION);
    peek_text(rows, after, sizeof after);
    cr_assert_str_eq(after, before);
    cr_assert_eq(peek_int("SELECT count(*) FROM sqlite_schema WHERE name = 'transitions'"
                          " AND sql LIKE '%state = ''open'' OR state = ''resolved'' OR"
                          " state = ''reraised''%'"), 1);
    cr_assert_eq(peek_int("SELECT count(*) FROM sqlite_schema WHERE tbl_name = 'transitions'"
                          " AND type = 'index'"), 3);
    cr_assert_eq(peek_int(clinic_wake_index), 1, "19 -> 20 -> 21");
    cr_assert_eq(sqlite3_open(dbpath, &db), SQLITE_OK);
    cr_assert_eq(sqlite3_exec(db, "INSERT INTO transitions SELECT seq + 10, alert_id, at,"
                                  " 'closed', clinic, patient, key, protocol, version, rule,"
                                  " severity, message, due, params, evidence, recorded,"
                                  " cseq + 10, notify_at, cause FROM transitions WHERE seq = 1",
                              NULL, NULL, NULL),
                 SQLITE_CONSTRAINT);
    sqlite3_close(db);
    /* and the next transition goes in after them */
    rg_transition t2 = tr(1, "p1", "k-a", T("2026-03-09T15:00:00Z"));
    cr_assert_eq(rg_store_transition(st, &t2, &a), RG_OK, "%s", rg_store_errmsg(st));
    cr_assert_eq(transitions(0, 0)->n, 3);
    close_store();
}

/* A version 20 file (patients_by_wake alone) gets patients_by_clinic_wake
 * in place: the patients are all still there, a clinic's due page is read
 * through the new index and patients_by_wake stays for the reads of every
 * clinic. */
Test(store_file, v20_file_gets_the_clinic_wake_index)
{
    rg_time due = T("2026-03-05T00:00:00Z");
    open_store();
    set_state("A", "a1", 0, RG_TIME_NONE, due - 30, 0);
    set_state("B", "b1", 0, RG_TIME_NONE, due - 10, 0);
    set_state("B", "b2", 0, RG_TIME_NONE, due + 10, 0);
    set_state("B", "b3", 0, RG_TIME_NONE, RG_TIME_NONE, 0);
    close_store();
    static const char rows[] = "SELECT group_concat(clinic || patient || coalesce(next_wake, '-'),"
                               " ',') FROM (SELECT * FROM patients ORDER BY clinic, patient)";
    char before[256], after[256];
    peek_text(rows, before, sizeof before);
    sqlite3 *db;
    cr_assert_eq(sqlite3_open(dbpath, &db), SQLITE_OK);
    cr_assert_eq(sqlite3_exec(db, "DROP INDEX patients_by_clinic_wake; PRAGMA user_version = 20;",
                              NULL, NULL, NULL),
                 SQLITE_OK, "%s", sqlite3_errmsg(db));
    sqlite3_close(db);
    cr_assert_eq(peek_int(clinic_wake_index), 0);
    open_store();
    cr_assert_eq(peek_int("PRAGMA user_version"), RG_SCHEMA_VERSION);
    cr_assert_eq(peek_int(clinic_wake_index), 1);
    cr_assert_eq(peek_int("SELECT count(*) FROM sqlite_schema WHERE name = 'patients_by_wake'"), 1);
    peek_text(rows, after, sizeof after);
    cr_assert_str_eq(after, before);
    char plan[2048];
    due_plan(1, plan, sizeof plan);
    cr_assert(strstr(plan, "INDEX patients_by_clinic_wake (clinic=? AND next_wake<?)"),
              "plan:\n%s", plan);
    got_pats g;
    memset(&g, 0, sizeof g);
    cr_assert_eq(rg_store_due_patients(st, "B", due, 10, collect_pat, &g), 1);
    cr_assert_str_eq(g.patient[0], "b1");
    memset(&g, 0, sizeof g);
    cr_assert_eq(rg_store_due_patients(st, NULL, due, 10, collect_pat, &g), 2);
    cr_assert_str_eq(g.patient[0], "a1");
    cr_assert_str_eq(g.patient[1], "b1");
    close_store();
}

Test(store, transitions_open_resolve_and_feed_order)
{
    int64_t a1 = 0, a2 = 0, a3 = 0;
    rg_transition t1 = tr(1, "p1", "k-a", T("2026-03-02T15:00:00Z"));
    t1.params = "{\"wait\":7200000}";
    t1.evidence = "[\"ev-1\"]";
    cr_assert_eq(rg_store_transition(st, &t1, &a1), RG_OK, "%s", rg_store_errmsg(st));
    cr_assert_eq(t1.seq, 1);
    cr_assert_eq(a1, 1);

    rg_transition t2 = tr(1, "p1", "k-b", T("2026-03-02T13:00:00Z"));
    cr_assert_eq(rg_store_transition(st, &t2, &a2), RG_OK);
    cr_assert_eq(t2.seq, 2);
    cr_assert_eq(a2, 2);

    got_trs *o = open_alerts("p1");
    cr_assert_eq(o->n, 2);
    cr_assert_eq(o->alert_id[0], 1);
    cr_assert_str_eq(o->t[0].key, "k-a");
    cr_assert_eq(o->alert_id[1], 2);
    cr_assert_str_eq(o->t[1].key, "k-b");

    rg_transition t3 = tr(0, "p1", "k-a", T("2026-03-02T14:00:00Z"));
    cr_assert_eq(rg_store_transition(st, &t3, &a1), RG_OK, "%s", rg_store_errmsg(st));
    cr_assert_eq(t3.seq, 3);
    cr_assert_eq(a1, 1, "resolving must not change the alert id");

    /* only k-b is still open, with its opening transition's content */
    o = open_alerts("p1");
    cr_assert_eq(o->n, 1);
    cr_assert_eq(o->alert_id[0], a2);
    cr_assert_str_eq(o->t[0].key, "k-b");
    cr_assert_eq(o->t[0].open, 1);
    cr_assert_eq(o->t[0].at, T("2026-03-02T13:00:00Z"));
    cr_assert_eq(o->t[0].due, T("2026-03-02T12:00:00Z"));
    cr_assert_str_eq(o->t[0].clinic, "north");
    cr_assert_str_eq(o->t[0].patient, "p1");
    cr_assert_str_eq(o->t[0].protocol, "ketamine");
    cr_assert_str_eq(o->t[0].version, "1.2");
    cr_assert_str_eq(o->t[0].rule, "ket.monitor");
    cr_assert_str_eq(o->t[0].severity, "warning");
    cr_assert_str_eq(o->t[0].message, "vitals overdue");
    cr_assert_eq(open_alerts("p2")->n, 0);

    /* feed in seq order: 1, 2, 3 with all fields */
    got_trs *g = transitions(0, 0);
    cr_assert_eq(g->n, 3);
    for (int i = 0; i < 3; i++)
        cr_assert_eq(g->t[i].seq, i + 1);
    cr_assert_eq(g->t[0].open, 1);
    cr_assert_str_eq(g->t[0].key, "k-a");
    cr_assert_str_eq(g->t[0].params, "{\"wait\":7200000}");
    cr_assert_str_eq(g->t[0].evidence, "[\"ev-1\"]");
    cr_assert_eq(g->t[0].at, T("2026-03-02T15:00:00Z"));
    cr_assert_eq(g->t[0].due, T("2026-03-02T14:00:00Z"));
    cr_assert_str_eq(g->t[1].params, "{}"); /* NULL params/evidence stored as {} and [] */
    cr_assert_str_eq(g->t[1].evidence, "[]");
    cr_assert_eq(g->t[2].open, 0);
    cr_assert_str_eq(g->t[2].key, "k-a");
    cr_assert_str_eq(g->t[2].message, "vitals taken");
    cr_assert_str_eq(g->t[2].clinic, "north");
    cr_assert_str_eq(g->t[2].patient, "p1");

    /* by time: 13:00 (seq 2), 14:00 (seq 3), 15:00 (seq 1) */
    g = transitions(0, 1);
    cr_assert_eq(g->n, 3);
    cr_assert_eq(g->t[0].seq, 2);
    cr_assert_eq(g->t[1].seq, 3);
    cr_assert_eq(g->t[2].seq, 1);
    /* after a seq */
    g = transitions(1, 0);
    cr_assert_eq(g->n, 2);
    cr_assert_eq(g->t[0].seq, 2);
    cr_assert_eq(g->t[1].seq, 3);
    g = transitions(1, 1);
    cr_assert_eq(g->n, 2);
    cr_assert_eq(g->t[0].seq, 2);
    cr_assert_eq(g->t[1].seq, 3);
    cr_assert_eq(transitions(3, 0)->n, 0);

    /* the key can open again once resolved: a new alert, next seq (since
     * schema v5 an alert's id is its opening transition's seq) */
    rg_transition t4 = tr(1, "p1", "k-a", T("2026-03-02T16:00:00Z"));
    cr_assert_eq(rg_store_transition(st, &t4, &a3), RG_OK, "%s", rg_store_errmsg(st));
    cr_assert_eq(t4.seq, 4);
    cr_assert_eq(a3, 4);
    cr_assert_eq(open_alerts("p1")->n, 2);
    /* one row per transition: the resolution names its alert, nothing else */
    cr_assert_eq(peek_int("SELECT count(*) FROM transitions"), 4);
    cr_assert_eq(peek_int("SELECT alert_id FROM transitions WHERE seq = 3"), 1);
    cr_assert_eq(peek_int("SELECT count(*) FROM transitions WHERE alert_id IS NULL"), 3);
    cr_assert_eq(peek_int("SELECT count(*) FROM alerts"), 0);
}

/* Inside a transaction the clinic's last cseq is read once and counted on in
 * memory: a rollback must not leave a gap, and what another connection wrote
 * between two transactions must be seen by the next one. */
Test(store, clinic_sequence_counts_on_across_transactions)
{
    int64_t a1 = 0, a2 = 0, a3 = 0, a4 = 0, a5 = 0;
    rg_transition t;
    cr_assert_eq(rg_store_begin(st), RG_OK);
    t = tr(1, "p1", "k1", T("2026-03-02T10:00:00Z"));
    cr_assert_eq(rg_store_transition(st, &t, &a1), RG_OK, "%s", rg_store_errmsg(st));
    t = tr(1, "p2", "k2", T("2026-03-02T10:00:00Z"));
    cr_assert_eq(rg_store_transition(st, &t, &a2), RG_OK, "%s", rg_store_errmsg(st));
    rg_store_rollback(st); /* cseq 1 and 2 were never committed */
    cr_assert_eq(rg_store_begin(st), RG_OK);
    t = tr(1, "p3", "k3", T("2026-03-02T10:00:00Z"));
    cr_assert_eq(rg_store_transition(st, &t, &a3), RG_OK, "%s", rg_store_errmsg(st));
    /* the same key opened twice fails; the counter must not move */
    int64_t again = 0;
    cr_assert_neq(rg_store_transition(st, &t, &again), RG_OK);
    t = tr(1, "p4", "k4", T("2026-03-02T10:00:00Z"));
    cr_assert_eq(rg_store_transition(st, &t, &a4), RG_OK, "%s", rg_store_errmsg(st));
    cr_assert_eq(rg_store_commit(st), RG_OK);
    /* another writer adds north's cseq 3 between the transactions */
    sqlite3 *db;
    cr_assert_eq(sqlite3_open(dbpath, &db), SQLITE_OK);
    cr_assert_eq(sqlite3_exec(db,
                              "INSERT INTO transitions(alert_id, at, state, clinic, patient, key,"
                              " protocol, version, rule, severity, message, due, params, evidence,"
                              " recorded, cseq) SELECT alert_id, at, state, clinic, patient, 'kx',"
                              " protocol, version, rule, severity, message, due, params, evidence,"
                              " recorded, 3 FROM transitions WHERE cseq = 2",
                              NULL, NULL, NULL),
                 SQLITE_OK, "%s", sqlite3_errmsg(db));
    sqlite3_close(db);
    cr_assert_eq(rg_store_begin(st), RG_OK);
    t = tr(1, "p5", "k5", T("2026-03-02T10:00:00Z"));
    cr_assert_eq(rg_store_transition(st, &t, &a5), RG_OK, "%s", rg_store_errmsg(st));
    cr_assert_eq(rg_store_commit(st), RG_OK);
    /* and outside a transaction */
    t = tr(0, "p5", "k5", T("2026-03-02T11:00:00Z"));
    cr_assert_eq(rg_store_transition(st, &t, &a5), RG_OK, "%s", rg_store_errmsg(st));

    got_trs *g = transitions(0, 0);
    cr_assert_eq(g->n, 5);
    static const char *const want_key[] = {"k3", "k4", "kx", "k5", "k5"};
    for (int i = 0; i < 5; i++) {
        cr_assert_str_eq(g->t[i].key, want_key[i], "row %d", i);
        cr_assert_eq(g->t[i].cseq, i + 1, "row %d: cseq %lld", i, (long long)g->t[i].cseq);
    }
}

/* ---- several processes on one file ---------------------------------------------- */

#include <sys/wait.h>

/* Processes that open a new database at the same moment all get the current
 * schema: the one that waited for the write lock reads the version again
 * under it, and does not create the tables a second time. */
Test(store_file, first_open_of_a_new_file_by_racing_processes_is_safe, .timeout = 60)
{
    enum { ROUNDS = 15, PROCS = 4 };
    for (int round = 0; round < ROUNDS; round++) {
        char path[600];
        snprintf(path, sizeof path, "%s/race-%d.db", tmpdir, round);
        int go[2];
        cr_assert_eq(pipe(go), 0);
        pid_t kids[PROCS];
        for (int k = 0; k < PROCS; k++) {
            kids[k] = fork();
            cr_assert_neq(kids[k], -1);
            if (kids[k] == 0) { /* no asserts here: the exit status says it */
                char c, err[512] = "";
                rg_store *mine;
                close(go[1]);
                if (read(go[0], &c, 1) != 0)
                    _exit(3);
                int rc = rg_store_open(&mine, path, NULL, err, sizeof err);
                if (rc)
                    fprintf(stderr, "process %d: %s\n", k, err);
                rg_store_close(mine);
                _exit(rc ? 1 : 0);
            }
        }
        close(go[0]);
        close(go[1]); /* every child reads EOF at once: the start */
        for (int k = 0; k < PROCS; k++) {
            int status;
            cr_assert_eq(waitpid(kids[k], &status, 0), kids[k]);
            cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0,
                      "round %d: process %d could not open the new file", round, k);
        }
        char err[512] = "";
        cr_assert_eq(rg_store_open(&st, path, NULL, err, sizeof err), RG_OK, "%s", err);
        rg_store_close(st);
        st = NULL;
    }
}

static void count_commit(void *ud) { (*(int *)ud)++; }

/* Another connection's commits are news to rg_store_changed, this one's
 * own never are; the commit hook runs after each commit that succeeded,
 * not after a rollback. */
Test(store_file, changed_and_the_commit_hook)
{
    char err[512] = "";
    rg_store *other;
    int commits = 0, fd = 0;
    cr_assert_eq(rg_store_open(&st, dbpath, NULL, err, sizeof err), RG_OK, "%s", err);
    cr_assert_eq(rg_store_open(&other, dbpath, NULL, err, sizeof err), RG_OK, "%s", err);
    rg_store_on_commit(st, count_commit, &commits);
    cr_assert_eq(rg_store_changes_fd(other, &fd), RG_OK);
    cr_assert_eq(rg_store_changes_fd(st, &fd), RG_OK);
    cr_assert_eq(rg_store_begin(st), RG_OK);
    cr_assert_eq(rg_store_reject(st, "t", 1, "f", "r", "x", 1), RG_OK);
    cr_assert_eq(rg_store_commit(st), RG_OK);
    cr_assert_eq(commits, 1);
    cr_assert_eq(rg_store_changed(st), 0, "our own commit is no news to us");
    cr_assert_eq(rg_store_changed(other), 1, "another connection's commit is");
    cr_assert_eq(rg_store_begin(st), RG_OK);
    rg_store_rollback(st);
    cr_assert_eq(commits, 1, "no hook for a rollback");
    rg_store_close(other);
    rg_store_close(st);
    st = NULL;
}

/* ---- corrections (docs/corrections.md) ---------------------------------- */

/* Puts one event line; returns the outcome and copies the conflict's reason. */
static rg_put put_line(const char *line, char *why, size_t whylen)
{
    rg_event ev;
    char field[RG_FIELD_MAX], err[256];
    cr_assert_eq(rg_event_parse(&ev, line, strlen(line), field, err, sizeof err), RG_OK,
                 "%s: %s %s", line, field, err);
    rg_put res = (rg_put)-1;
    cr_assert_eq(rg_store_put_event(st, &ev, 1000, &res), RG_OK, "%s", rg_store_errmsg(st));
    rg_event_clear(&ev);
    if (why)
        snprintf(why, whylen, "%s", res == RG_PUT_CONFLICT ? rg_store_put_reason(st) : "");
    return res;
}

#define BP_V(v, extra, data)                                                              \
    "{\"id\":\"bp\",\"clinic\":\"north\",\"patient\":\"p1\",\"type\":\"vitals\","         \
    "\"at\":\"2026-03-02T10:00:00Z\",\"version\":" #v extra data "}"

static int collect_versions(void *ud, const rg_stored_event *e)
{
    got_events *g = ud;
    cr_assert_lt(g->n, 64);
    g->e[g->n].seq = e->seq;
    snprintf(g->e[g->n].id, sizeof g->e[0].id, "%s", e->data ? e->data : "(none)");
    snprintf(g->e[g->n].type, sizeof g->e[0].type, "v%lld %s %s", (long long)e->version,
             rg_event_status_name(e->status), e->corrected_by ? e->corrected_by : "-");
    g->n++;
    return 0;
}

Test(store, corrections_keep_every_version_and_refuse_stale_ones)
{
    char why[512];
    cr_assert_eq(put_line(BP_V(1, "", ",\"data\":{\"systolic\":171,\"diastolic\":99}"), why,
                          sizeof why), RG_PUT_STORED);
    const char *v2 = BP_V(2, ",\"status\":\"amended\",\"corrected_at\":\"2026-03-02T12:00:00Z\","
                             "\"corrected_by\":\"nurse-7\"",
                          ",\"data\":{\"systolic\":131,\"diastolic\":79}");
    cr_assert_eq(put_line(v2, why, sizeof why), RG_PUT_CORRECTED);
    /* the same (id, version) again: a duplicate, whichever version it is */
    cr_assert_eq(put_line(v2, why, sizeof why), RG_PUT_DUPLICATE);
    cr_assert_eq(put_line(BP_V(1, "", ",\"data\":{\"systolic\":171,\"diastolic\":99}"), why,
                          sizeof why), RG_PUT_DUPLICATE);
    /* the same (id, version) with other content: a conflict */
    cr_assert_eq(put_line(BP_V(1, "", ",\"data\":{\"systolic\":100,\"diastolic\":99}"), why,
                          sizeof why), RG_PUT_CONFLICT);
    cr_assert_not_null(strstr(why, "different content"), "%s", why);
    cr_assert_eq(put_line(BP_V(2, ",\"status\":\"amended\",\"corrected_at\":\"2026-03-02T12:00:00Z\"",
                               ",\"data\":{\"systolic\":1}"), why, sizeof why), RG_PUT_CONFLICT);
    /* a retraction: version 4 (3 never came); then 3 is stale */
    cr_assert_eq(put_line(BP_V(4, ",\"status\":\"entered-in-error\","
                                  "\"corrected_at\":\"2026-03-02T13:00:00Z\"", ""), why,
                          sizeof why), RG_PUT_CORRECTED);
    cr_assert_eq(put_line(BP_V(3, ",\"status\":\"amended\",\"corrected_at\":\"2026-03-02T12:30:00Z\"",
                               ",\"data\":{\"systolic\":1}"), why, sizeof why), RG_PUT_CONFLICT);
    cr_assert_str_eq(why, "stale version 3, stored is 4; it was not stored");
    /* another patient, or a retraction of another type: conflicts */
    cr_assert_eq(put_line("{\"id\":\"bp\",\"clinic\":\"north\",\"patient\":\"p2\",\"type\":\"vitals\","
                          "\"at\":\"2026-03-02T10:00:00Z\",\"version\":5,"
                          "\"corrected_at\":\"2026-03-02T14:00:00Z\"}", why, sizeof why),
                 RG_PUT_CONFLICT);
    cr_assert_not_null(strstr(why, "must keep the patient"), "%s", why);
    cr_assert_eq(put_line("{\"id\":\"bp\",\"clinic\":\"north\",\"patient\":\"p1\",\"type\":\"infusion\","
                          "\"at\":\"2026-03-02T10:00:00Z\",\"version\":5,\"status\":\"entered-in-error\","
                          "\"corrected_at\":\"2026-03-02T14:00:00Z\"}", why, sizeof why),
                 RG_PUT_CONFLICT);
    cr_assert_not_null(strstr(why, "must keep the type"), "%s", why);

    /* every version kept for audit, oldest first, with who sent it */
    got_events g = {0};
    cr_assert_eq(rg_store_each_version(st, "north", "bp", collect_versions, &g), RG_OK);
    cr_assert_eq(g.n, 3);
    cr_assert_str_eq(g.e[0].type, "v1 final -");
    cr_assert_str_eq(g.e[0].id, "{\"diastolic\":99,\"systolic\":171}");
    cr_assert_str_eq(g.e[1].type, "v2 amended nurse-7");
    cr_assert_str_eq(g.e[2].type, "v4 entered-in-error -");
    /* the engine's read has all three; the readers of the current version see
     * nothing of a retracted event */
    got_events all = {0}, cur = {0};
    cr_assert_eq(rg_store_each_event(st, "north", "p1", collect_event, &all), RG_OK);
    cr_assert_eq(all.n, 3);
    cr_assert_eq(rg_store_each_event_data(st, "north", "p1", collect_event, &cur), RG_OK);
    cr_assert_eq(cur.n, 0);
    cr_assert_eq(rg_store_get_event(st, "north", "bp", collect_versions, &g), RG_ENOTFOUND);
    cr_assert_eq(peek_int("SELECT count(*) FROM events WHERE replaces <> 0"), 2);
}

Test(store, an_amended_event_is_read_in_its_current_version)
{
    cr_assert_eq(put_line(BP_V(1, "", ",\"data\":{\"systolic\":171}"), NULL, 0), RG_PUT_STORED);
    cr_assert_eq(put_line(BP_V(2, ",\"status\":\"corrected\",\"corrected_at\":\"2026-03-02T12:00:00Z\"",
                               ",\"data\":{\"systolic\":120}"), NULL, 0), RG_PUT_CORRECTED);
    got_events g = {0};
    cr_assert_eq(rg_store_get_event(st, "north", "bp", collect_versions, &g), RG_OK);
    cr_assert_eq(g.n, 1);
    cr_assert_str_eq(g.e[0].id, "{\"systolic\":120}");
    got_events cur = {0};
    cr_assert_eq(rg_store_each_event_data(st, "north", "p1", collect_event, &cur), RG_OK);
    cr_assert_eq(cur.n, 1);
    /* a version > 1 for an id never seen is its first stored version */
    cr_assert_eq(put_line("{\"id\":\"q\",\"clinic\":\"north\",\"patient\":\"p1\",\"type\":\"vitals\","
                          "\"at\":\"2026-03-02T10:00:00Z\",\"version\":3,"
                          "\"corrected_at\":\"2026-03-02T11:00:00Z\"}", NULL, 0), RG_PUT_STORED);
    cr_assert_eq(peek_int("SELECT count(*) FROM events WHERE id = 'q' AND replaces = 0"), 1);
    /* a correction schedules its patient at its corrected_at (the clock is earlier) */
    rg_patient_state ps;
    cr_assert_eq(rg_store_patient_get(st, "north", "p1", &ps), RG_OK);
    cr_assert_eq(ps.next_wake, 1772445600000); /* 2026-03-02T10:00:00Z: the first event */
}

/* A version 5 file is upgraded in place to 6: every event kept with its
 * compiled data, seq and body, as version 1, and the index covers the
 * correction fields; a correction can then be stored. */
Test(store_file, v5_file_upgrades_to_versioned_events)
{
    sqlite3 *db = old_file(5);
    sqlite3_stmt *s;
    cr_assert_eq(sqlite3_prepare_v2(db, "INSERT INTO events(seq, clinic, id, patient, type, at,"
                                        " utc_offset, data, body, received, fields)"
                                        " VALUES(?1, 'north', ?2, 'p1', 'vitals', ?3, 0, ?4, ?5,"
                                        " 1000, rg_fields(?4))", -1, &s, NULL),
                 SQLITE_OK, "%s", sqlite3_errmsg(db));
    for (int i = 1; i <= 3; i++) {
        char id[16], data[64], body[256];
        snprintf(id, sizeof id, "e%d", i);
        snprintf(data, sizeof data, "{\"systolic\":%d}", 150 + i);
        snprintf(body, sizeof body, "{\"id\":\"%s\",\"clinic\":\"north\",\"patient\":\"p1\","
                 "\"type\":\"vitals\",\"at\":\"2026-03-02T1%d:00:00Z\",\"data\":%s}", id, i, data);
        sqlite3_bind_int64(s, 1, i * 10);
        sqlite3_bind_text(s, 2, id, -1, SQLITE_TRANSIENT);
        sqlite3_bind_int64(s, 3, 1772445600000 + (int64_t)i * 3600000);
        sqlite3_bind_text(s, 4, data, -1, SQLITE_TRANSIENT);
        sqlite3_bind_text(s, 5, body, -1, SQLITE_TRANSIENT);
        cr_assert_eq(sqlite3_step(s), SQLITE_DONE, "%s", sqlite3_errmsg(db));
        sqlite3_reset(s);
    }
    sqlite3_finalize(s);
    sqlite3_close(db);

    open_store();
    cr_assert_eq(peek_int("PRAGMA user_version"), RG_SCHEMA_VERSION);
    cr_assert_eq(peek_int("SELECT count(*) FROM events WHERE version = 1 AND replaces = 0"
                          " AND fields IS NOT NULL"), 3);
    cr_assert_eq(peek_int("SELECT sum(seq) FROM events"), 60);
    char got[256];
    peek_text(event_key, got, sizeof got);
    cr_assert_str_eq(got, "clinic,patient,at,seq");
    assert_covering_event_read();
    got_events *g = events_of("north", "p1");
    cr_assert_eq(g->n, 3);
    cr_assert_str_eq(g->e[2].id, "e3");
    cr_assert_eq(put_line("{\"id\":\"e2\",\"clinic\":\"north\",\"patient\":\"p1\",\"type\":\"vitals\","
                          "\"at\":\"2026-03-02T12:00:00Z\",\"version\":2,\"status\":\"entered-in-error\","
                          "\"corrected_at\":\"2026-03-02T13:30:00Z\"}", NULL, 0), RG_PUT_CORRECTED);
    cr_assert_eq(put_line("{\"id\":\"e1\",\"clinic\":\"north\",\"patient\":\"p1\",\"type\":\"vitals\","
                          "\"at\":\"2026-03-02T11:00:00Z\",\"data\":{\"systolic\":151}}", NULL, 0),
                 RG_PUT_DUPLICATE);
    got_events cur = {0};
    cr_assert_eq(rg_store_each_event_data(st, "north", "p1", collect_event, &cur), RG_OK);
    cr_assert_eq(cur.n, 2);
    close_store();
}

/* Appends a body to the text at ud, a line each (no newline before the first). */
static int add_body(void *ud, const char *body, size_t len)
{
    char *all = ud;
    size_t n = strlen(all);
    cr_assert_lt(n + len + 2, 4096);
    if (n)
        all[n++] = '\n';
    memcpy(all + n, body, len);
    all[n + len] = '\0';
    return 0;
}

/* A version 11 file (tests/fixtures/v11_events.sql, made by the program of
 * then) is upgraded in place to the lean event row of v12: the events,
 * their seq, versions and corrections are all still there; each keeps its
 * digest (32 bytes since v12, its first 16 since v18) and verify finds
 * nothing damaged, its fields (written before v18's varint tags) included; the data text
 * shown is the one v11 kept beside the body, derived from the body now;
 * the table is keyed (clinic, patient, at, seq) without a rowid and
 * without events_by_patient; the next event is numbered after the last. */
Test(store_file, v11_file_upgrades_to_the_lean_event_row)
{
    FILE *f = fopen("tests/fixtures/v11_events.sql", "r");
    cr_assert_not_null(f, "run from the repository root");
    static char fixture[65536];
    size_t n = fread(fixture, 1, sizeof fixture - 1, f);
    fclose(f);
    fixture[n] = '\0';
    sqlite3 *db;
    char *msg = NULL;
    cr_assert_eq(sqlite3_open(dbpath, &db), SQLITE_OK);
    cr_assert_eq(sqlite3_exec(db, fixture, NULL, NULL, &msg), SQLITE_OK, "%s", msg);
    sqlite3_close(db);
    cr_assert_eq(peek_int("PRAGMA user_version"), 11);
    char old_digests[1024], got[1024];
    /* (what v18 keeps of them: their first 16 bytes, 32 hex digits) */
    peek_text("SELECT group_concat(seq || ':' || substr(digest, 1, 32), ',') FROM (SELECT seq,"
              " digest FROM events ORDER BY seq)", old_digests, sizeof old_digests);
    char old_data[1024];
    peek_text("SELECT group_concat(seq || ':' || coalesce(data, '-'), ',') FROM (SELECT seq, data"
              " FROM events ORDER BY seq)", old_data, sizeof old_data);
    char old_bodies[4096], old_fields[1024];
    peek_text("SELECT group_concat(body, char(10)) FROM (SELECT body FROM events"
              " ORDER BY clinic, seq)", old_bodies, sizeof old_bodies);
    peek_text("SELECT group_concat(seq || ':' || coalesce(hex(fields), '-'), ',') FROM"
              " (SELECT seq, fields FROM events ORDER BY seq)", old_fields, sizeof old_fields);

    open_store();
    cr_assert_eq(peek_int("PRAGMA user_version"), RG_SCHEMA_VERSION);
    peek_text(event_key, got, sizeof got);
    cr_assert_str_eq(got, "clinic,patient,at,seq");
    assert_covering_event_read();
    cr_assert_eq(peek_int("SELECT count(*) FROM events WHERE typeof(digest) = 'blob'"
                          " AND length(digest) = 16"), 5);
    peek_text("SELECT group_concat(seq || ':' || lower(hex(digest)), ',') FROM (SELECT seq, digest"
              " FROM events ORDER BY seq)", got, sizeof got);
    cr_assert_str_eq(got, old_digests, "the digests as v11 kept them");
    /* v17: each row keeps only what its columns do not say of its body, and
     * every body comes back byte for byte, with its fields as they were */
    cr_assert_eq(peek_int("SELECT count(*) FROM events WHERE body NOT LIKE '{%'"), 5);
    static char bodies[4096];
    bodies[0] = '\0';
    cr_assert_eq(rg_store_each_event_body(st, "north", add_body, bodies), RG_OK);
    cr_assert_eq(rg_store_each_event_body(st, "south", add_body, bodies), RG_OK);
    cr_assert_str_eq(bodies, old_bodies);
    peek_text("SELECT group_concat(seq || ':' || coalesce(hex(fields), '-'), ',') FROM"
              " (SELECT seq, fields FROM events ORDER BY seq)", got, sizeof got);
    cr_assert_str_eq(got, old_fields);
    int64_t checked = 0, bad = 0;
    char *text = NULL;
    size_t len = 0;
    FILE *m = open_memstream(&text, &len);
    cr_assert_eq(rg_store_verify(st, m, &checked, &bad), RG_OK);
    fclose(m);
    cr_assert_eq(checked, 5);
    cr_assert_eq(bad, 0, "%s", text);
    free(text);
    /* the data text, derived from the body, is what v11 stored */
    got_events *g = events_of("north", "p2");
    cr_assert_eq(g->n, 1);
    cr_assert_str_eq(g->e[0].data, "{\"a\":[1,2.5,{\"b\":true}],\"r\":0.10000000000000001,\"z\":null}");
    cr_assert(strstr(old_data, "3:{\"a\":[1,2.5,{\"b\":true}],\"r\":0.10000000000000001,\"z\":null}"),
              "%s", old_data);
    got_events cur = {0};
    cr_assert_eq(rg_store_each_event_data(st, "north", "p1", collect_event, &cur), RG_OK);
    cr_assert_eq(cur.n, 2, "e2 and the current version of e1");
    cr_assert_str_eq(cur.e[1].data, "{\"diastolic\":90,\"systolic\":140}");
    cr_assert(strstr(old_data, "4:{\"diastolic\":90,\"systolic\":140}"), "%s", old_data);
    cr_assert_not(cur.e[0].has_data);
    /* e2 (09:00+01:00 is 08:00Z) is before e1 (10:00Z): the table's order */
    got_events all = {0};
    cr_assert_eq(rg_store_each_event(st, "north", "p1", collect_event, &all), RG_OK);
    cr_assert_eq(all.n, 3);
    cr_assert_eq(all.e[0].seq, 2);
    cr_assert_str_eq(all.e[0].id, "e2");
    /* the next event is numbered after the last one stored */
    cr_assert_eq(put_line("{\"id\":\"e9\",\"clinic\":\"south\",\"patient\":\"p1\",\"type\":\"ping\","
                          "\"at\":\"2026-01-03T09:00:00Z\"}", NULL, 0), RG_PUT_STORED);
    cr_assert_eq(peek_int("SELECT seq FROM events WHERE id = 'e9'"), 6);
    cr_assert_eq(peek_int("SELECT n FROM event_seq"), 6);
    close_store();
}
