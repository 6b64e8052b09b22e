/*
 * sqlite.c - the SQLite backend of the event store (see store.h; its table
 * of operations, rg_sqlite_ops, is at the end: store.c calls nothing else).
 *
 * One connection, WAL journal, statements prepared once and reused. The
 * schema is versioned with PRAGMA user_version: rg_store_migrations[i]
 * (store_sql.c, beside every statement's text) upgrades a file from version
 * i to i+1, so an old database is brought forward in place, inside one
 * transaction, when it is opened.
 */
#include "store/backend.h"
#include "store/sqlite.h"
#include "core/digest.h"
#include "core/fields.h"
#include "store/store_sql.h"

#define RG_STORE_MMAP "268435456" /* 256 MiB */
#define RG__WRITER_CACHE "8192" /* KiB: the service writer's page cache (rg_store_opts.writer) */
#define RG__BUSY_MS 5000 /* how long a write waits for the file's lock (sqlite3_busy_timeout) */

#include <sqlite3.h>

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statvfs.h>
#include <time.h>
#include <unistd.h>

struct rg_backend {
    sqlite3 *db;
    sqlite3_stmt *q[Q__COUNT];
    uint64_t rollbacks; /* transactions that did not commit (rg_store_rollbacks) */
    /* the patient last scheduled in this transaction, and at what instant:
     * a later event of the same patient cannot move its wake-up earlier */
    char sched_clinic[RG_EVENT_MAX_CLINIC + 1], sched_patient[RG_EVENT_MAX_ID + 1];
    rg_time sched_at;
    /* the last transition number (cseq) of a few clinics, read once per
     * transaction: BEGIN IMMEDIATE holds the write lock, so nobody else can
     * add transitions until it ends (emptied at begin, commit and rollback;
     * anything that undoes part of a transaction must empty it as well) */
    struct {
        char clinic[RG_EVENT_MAX_CLINIC + 1];
        int64_t cseq;
    } cseq[8];
    int ncseq, cseq_next;
    /* the last transition seq in this write transaction (0: not read yet;
     * emptied like cseq): an opening's seq is known before its insert, for
     * its open_alerts row (schema 16) */
    int64_t tseq;
    /* the last event seq given in this write transaction (0: not read yet
     * from event_seq) and whether event_seq must be written before commit
     * (schema v12: events has no rowid; emptied like cseq) */
    int64_t evseq;
    int evseq_dirty;
    char fault[256]; /* why the last write failed; "" once a commit succeeded */
    int full; /* a write met a full disk since the last commit (rg__reclaim_wal) */
    int short_wal; /* one did, and space is still short: rg__keep_wal_short */
    int load;      /* opened for a load (rg_store_opts.load) */
    char put_why[512]; /* why rg_store_put_event answered a conflict */
    const char *put_field; /* and the field it is about */
    rg_time fault_since;
    void (*on_commit)(void *ud); /* after each commit that succeeded (rg_store_on_commit) */
    void *on_commit_ud;
    int64_t data_version; /* PRAGMA data_version when rg_store_changed last looked */
    struct rg__ckpt *ckpt; /* the WAL's checkpoints, off this connection (rg__ckpt_start) */
};

/* (defined below, called before) */
static void rg_sqlite_close(rg_sqlite *st);
static void rg_sqlite_rollback(rg_sqlite *st);
static int rg_sqlite_last_cseq(rg_sqlite *st, const char *clinic, int64_t *out);

/* Prepared statement i, reset and with bindings cleared. */
static sqlite3_stmt *rg__q(rg_sqlite *st, int i)
{
    sqlite3_stmt *s = st->q[i];
    sqlite3_reset(s);
    sqlite3_clear_bindings(s);
    return s;
}

/* Remembers why a statement failed, with what the OS said (a full disk, a
 * read-only file), until a commit succeeds again: see rg_store_fault. */
static void rg__fault(rg_sqlite *st, int rc)
{
    int sys = sqlite3_system_errno(st->db);
    st->full |= (rc & 0xff) == SQLITE_FULL;
    if (st->fault[0])
        return; /* the first cause, not what followed from it */
    st->fault_since = rg_now();
    int io = (rc & 0xff) == SQLITE_IOERR || (rc & 0xff) == SQLITE_READONLY ||
             (rc & 0xff) == SQLITE_CANTOPEN;
    /* SQLite often keeps no errno: ask the files whether they can be written */
    const char *db = sqlite3_db_filename(st->db, "main");
    const char *files[2] = {db, db && *db ? sqlite3_filename_wal(db) : NULL};
    for (int i = 0; io && !sys && i < 2; i++)
        if (files[i] && *files[i] && access(files[i], W_OK) != 0 && errno != ENOENT)
            sys = errno;
    if (sys && io)
        snprintf(st->fault, sizeof st->fault, "%s (%s)", sqlite3_errstr(rc), strerror(sys));
    else
        snprintf(st->fault, sizeof st->fault, "%s", sqlite3_errstr(rc));
}

static int rg__done(rg_sqlite *st, sqlite3_stmt *s)
{
    int rc = sqlite3_step(s);
    if (rc != SQLITE_DONE && rc != SQLITE_ROW)
        rg__fault(st, sqlite3_extended_errcode(st->db));
    sqlite3_reset(s);
    return rc == SQLITE_DONE || rc == SQLITE_ROW ? RG_OK : RG_EDB;
}

void rg_store_process_init(void)
{
    sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0); /* refused once SQLite is initialized */
}

void rg_sqlite_text(sqlite3_stmt *s, int i, const char *v)
{
    if (v)
        sqlite3_bind_text(s, i, v, -1, SQLITE_STATIC);
    else
        sqlite3_bind_null(s, i);
}

void rg_sqlite_time(sqlite3_stmt *s, int i, rg_time t)
{
    if (t == RG_TIME_NONE)
        sqlite3_bind_null(s, i);
    else
        sqlite3_bind_int64(s, i, t);
}

rg_time rg_sqlite_col_time(sqlite3_stmt *s, int i)
{
    return sqlite3_column_type(s, i) == SQLITE_NULL ? RG_TIME_NONE : sqlite3_column_int64(s, i);
}

static const char *rg__col_text(sqlite3_stmt *s, int i)
{
    const char *v = (const char *)sqlite3_column_text(s, i);
    return v ? v : "";
}

int rg_store_status_of(const char *text)
{
    for (int i = 1; text && i <= RG_STATUS_ERROR; i++)
        if (!strcmp(text, rg_event_status_name(i)))
            return i;
    return RG_STATUS_FINAL;
}

/* An event row (RG__EV_COLS, or RG__EV_WIDE) from column k on. */
static void rg__col_event_at(sqlite3_stmt *s, int k, int wide, rg_stored_event *e)
{
    e->seq = sqlite3_column_int64(s, k);
    e->at = sqlite3_column_int64(s, k + 1);
    e->id = rg__col_text(s, k + 2);
    e->type = rg__col_text(s, k + 3);
    e->fields = sqlite3_column_blob(s, k + 4);
    e->nfields = (size_t)sqlite3_column_bytes(s, k + 4);
    e->replaces = sqlite3_column_int64(s, k + 5);
    e->corrected_at = rg_sqlite_col_time(s, k + 6);
    e->status = rg_store_status_of((const char *)sqlite3_column_text(s, k + 7));
    e->retracted = e->status == RG_STATUS_ERROR;
    e->data = wide ? (const char *)sqlite3_column_text(s, k + 8) : NULL;
    e->version = wide ? sqlite3_column_int64(s, k + 9) : 0;
    e->corrected_by = wide ? (const char *)sqlite3_column_text(s, k + 10) : NULL;
}

static void rg__col_event(sqlite3_stmt *s, rg_stored_event *e)
{
    rg__col_event_at(s, 0, sqlite3_column_count(s) > 8, e);
}

/* The end of a loop over rows that calls fn per row: fn's non-zero answer,
 * or whether the statement ran to its end. */
static int rg__each_end(sqlite3_stmt *s, int rc, int frc)
{
    sqlite3_reset(s);
    if (frc)
        return frc;
    return rc == SQLITE_DONE ? RG_OK : RG_EDB;
}

/* Refuses a database written by a newer program before touching it. */
static int rg__check_version(rg_sqlite *st, const char *path, char *err, size_t errlen)
{
    sqlite3_stmt *s;
    int version = 0;
    if (sqlite3_prepare_v2(st->db, "PRAGMA user_version", -1, &s, NULL) != SQLITE_OK)
        return rg_fail(err, errlen, RG_EDB, "cannot open database %s: %s", path,
                       sqlite3_errmsg(st->db));
    if (sqlite3_step(s) == SQLITE_ROW)
        version = sqlite3_column_int(s, 0);
    sqlite3_finalize(s);
    if (version > (int)rg_store_nmigrations)
        return rg_fail(err, errlen, RG_EDB,
                       "database %s: schema version %d is newer than this program (%d); "
                       "use a newer regimen", path, version, (int)rg_store_nmigrations);
    return RG_OK;
}

/* PRAGMA quick_check before anything is written: a file with damaged pages
 * is refused as it is (about 4 s per GB, so only where opts->check asks). */
static int rg__check_pages(rg_sqlite *st, const char *path, char *err, size_t errlen)
{
    sqlite3_stmt *s;
    int rc = sqlite3_prepare_v2(st->db, "PRAGMA quick_check(1)", -1, &s, NULL);
    if (rc == SQLITE_OK && (rc = sqlite3_step(s)) == SQLITE_ROW &&
        !strcmp(rg__col_text(s, 0), "ok")) {
        sqlite3_finalize(s);
        return RG_OK;
    }
    rg_fail(err, errlen, RG_EDB, "database %s is damaged (%s); it was not changed: restore it "
            "from a backup", path, rc == SQLITE_ROW ? rg__col_text(s, 0) : sqlite3_errmsg(st->db));
    sqlite3_finalize(s);
    for (char *nl = err ? strchr(err, '\n') : NULL; nl; nl = strchr(nl, '\n'))
        *nl = ' '; /* one line */
    return RG_EDB;
}

/* rg_fields(data): the compiled form of a data text, for the v5 migration. */
static void rg__sql_fields(sqlite3_context *cx, int argc, sqlite3_value **argv)
{
    (void)argc;
    const char *text = (const char *)sqlite3_value_text(argv[0]);
    rg_buf b = {0};
    int rc = text ? rg_fields_from_json(&b, text) : RG_OK;
    if (rc == RG_ENOMEM)
        sqlite3_result_error_nomem(cx);
    else if (rc)
        sqlite3_result_error(cx, "stored data is not a JSON object", -1);
    else if (b.len)
        sqlite3_result_blob(cx, b.p, (int)b.len, SQLITE_TRANSIENT);
    else
        sqlite3_result_null(cx);
    rg_buf_free(&b);
}

/* rg_sha256(text): an event body's digest (the v9 migration, every event
 * insert), the same bytes rg_store_verify checks. */
static void rg__sql_sha256(sqlite3_context *cx, int argc, sqlite3_value **argv)
{
    (void)argc;
    const unsigned char *text = sqlite3_value_text(argv[0]);
    char hex[RG_SHA256_HEX + 1];
    if (!text) {
        sqlite3_result_null(cx);
        return;
    }
    rg_sha256_hex(text, (size_t)sqlite3_value_bytes(argv[0]), hex);
    sqlite3_result_text(cx, hex, RG_SHA256_HEX, SQLITE_TRANSIENT);
}

/* rg_sha256b(text): the same digest as 32 bytes, as events keep it since v12. */
static void rg__sql_sha256b(sqlite3_context *cx, int argc, sqlite3_value **argv)
{
    (void)argc;
    const unsigned char *text = sqlite3_value_text(argv[0]);
    unsigned char raw[32];
    if (!text) {
        sqlite3_result_null(cx);
        return;
    }
    rg_sha256(text, (size_t)sqlite3_value_bytes(argv[0]), raw);
    sqlite3_result_blob(cx, raw, (int)sizeof raw, SQLITE_TRANSIENT);
}

/* rg_unhex(digest): a hex digest as its 32 bytes (the v12 migration); any
 * other text (a damaged digest) as it is, for verify to report. */
static void rg__sql_unhex(sqlite3_context *cx, int argc, sqlite3_value **argv)
{
    (void)argc;
    const char *t = (const char *)sqlite3_value_text(argv[0]);
    unsigned char raw[32];
    int ok = t && strlen(t) == 2 * sizeof raw;
    for (size_t i = 0; ok && i < sizeof raw; i++) {
        unsigned v = 0;
        for (int j = 0; j < 2 && ok; j++) {
            char c = t[2 * i + (size_t)j];
            ok = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
            v = v * 16 + (unsigned)(c <= '9' ? c - '0' : c - 'a' + 10);
        }
        raw[i] = (unsigned char)v;
    }
    if (ok)
        sqlite3_result_blob(cx, raw, (int)sizeof raw, SQLITE_TRANSIENT);
    else
        sqlite3_result_value(cx, argv[0]);
}

/* rg_data(body): the canonical data text of a stored body (v12 keeps the
 * body only), NULL when it has none. */
static void rg__sql_data(sqlite3_context *cx, int argc, sqlite3_value **argv)
{
    (void)argc;
    const char *body = (const char *)sqlite3_value_text(argv[0]);
    char *text = body ? rg_event_data_text(body, (size_t)sqlite3_value_bytes(argv[0])) : NULL;
    if (text)
        sqlite3_result_text(cx, text, -1, free);
    else
        sqlite3_result_null(cx);
}

/* The text columns of rg_body/rg_lean's arguments 1..4 (id, clinic,
 * patient, type), "" for NULL. */
static const char *rg__sql_arg(sqlite3_value **argv, int i)
{
    const char *t = (const char *)sqlite3_value_text(argv[i]);
    return t ? t : "";
}

/* rg_body(body, id, clinic, patient, type, at, utc_offset, fields): an
 * event's body as received, from what v17 keeps of it (rg_event_body_whole). */
static void rg__sql_body(sqlite3_context *cx, int argc, sqlite3_value **argv)
{
    (void)argc;
    const char *stored = (const char *)sqlite3_value_text(argv[0]);
    if (!rg_event_body_is_rest(stored)) {
        sqlite3_result_value(cx, argv[0]);
        return;
    }
    char *whole = rg_event_body_whole(stored, (size_t)sqlite3_value_bytes(argv[0]),
                                      rg__sql_arg(argv, 1), rg__sql_arg(argv, 2),
                                      rg__sql_arg(argv, 3), rg__sql_arg(argv, 4),
                                      sqlite3_value_int64(argv[5]), sqlite3_value_int(argv[6]),
                                      sqlite3_value_blob(argv[7]),
                                      (size_t)sqlite3_value_bytes(argv[7]));
    if (whole)
        sqlite3_result_text(cx, whole, -1, free);
    else
        sqlite3_result_error_nomem(cx);
}

/* rg_lean(body, id, clinic, patient, type, at, utc_offset, fields): what
 * v17 keeps of a whole body (the v17 migration; inserts bind the same,
 * rg_event_body_rest). */
static void rg__sql_lean(sqlite3_context *cx, int argc, sqlite3_value **argv)
{
    (void)argc;
    const char *body = (const char *)sqlite3_value_text(argv[0]);
    if (!body || rg_event_body_is_rest(body)) {
        sqlite3_result_value(cx, argv[0]);
        return;
    }
    const char *rest = rg_event_body_rest(body, rg__sql_arg(argv, 1), rg__sql_arg(argv, 2),
                                          rg__sql_arg(argv, 3), rg__sql_arg(argv, 4),
                                          sqlite3_value_int64(argv[5]), sqlite3_value_int(argv[6]),
                                          sqlite3_value_blob(argv[7]),
                                          (size_t)sqlite3_value_bytes(argv[7]));
    sqlite3_result_text(cx, rest, -1, SQLITE_TRANSIENT);
}

static int rg__migrate(rg_sqlite *st, char *err, size_t errlen)
{
    sqlite3_stmt *s;
    int version = 0;
    if (sqlite3_prepare_v2(st->db, "PRAGMA user_version", -1, &s, NULL) != SQLITE_OK)
        return rg_fail(err, errlen, RG_EDB, "%s", sqlite3_errmsg(st->db));
    if (sqlite3_step(s) == SQLITE_ROW)
        version = sqlite3_column_int(s, 0);
    sqlite3_finalize(s);
    if (version > (int)rg_store_nmigrations)
        return rg_fail(err, errlen, RG_EDB,
                       "database schema version %d is newer than this program (%d)", version,
                       (int)rg_store_nmigrations);
    if (version == (int)rg_store_nmigrations)
        return RG_OK;
    char *msg = NULL;
    if (sqlite3_create_function(st->db, "rg_fields", 1, SQLITE_UTF8 | SQLITE_DETERMINISTIC, NULL,
                                rg__sql_fields, NULL, NULL) != SQLITE_OK ||
        sqlite3_create_function(st->db, "rg_unhex", 1, SQLITE_UTF8 | SQLITE_DETERMINISTIC, NULL,
                                rg__sql_unhex, NULL, NULL) != SQLITE_OK)
        goto fail;
    /* Two processes may open a new file at the same moment: the version is
     * read again under the write lock, so the second one upgrades from where
     * the first one left it (nothing, once both are current), never from the
     * version it saw before waiting. */
    if (sqlite3_exec(st->db, "BEGIN IMMEDIATE", NULL, NULL, &msg) != SQLITE_OK)
        goto fail;
    if (sqlite3_prepare_v2(st->db, "PRAGMA user_version", -1, &s, NULL) != SQLITE_OK)
        goto fail;
    if (sqlite3_step(s) == SQLITE_ROW)
        version = sqlite3_column_int(s, 0);
    sqlite3_finalize(s);
    if (version > (int)rg_store_nmigrations) {
        sqlite3_exec(st->db, "ROLLBACK", NULL, NULL, NULL);
        return rg_fail(err, errlen, RG_EDB,
                       "database schema version %d is newer than this program (%d)", version,
                       (int)rg_store_nmigrations);
    }
    for (int v = version; v < (int)rg_store_nmigrations; v++) {
        char pragma[64];
        if (sqlite3_exec(st->db, rg_store_migrations[v], NULL, NULL, &msg) != SQLITE_OK)
            goto fail;
        snprintf(pragma, sizeof pragma, "PRAGMA user_version = %d", v + 1);
        if (sqlite3_exec(st->db, pragma, NULL, NULL, &msg) != SQLITE_OK)
            goto fail;
    }
    if (sqlite3_exec(st->db, "COMMIT", NULL, NULL, &msg) != SQLITE_OK)
        goto fail;
    return RG_OK;
fail:
    rg_fail(err, errlen, RG_EDB, "cannot upgrade the database schema from version %d: %s",
            version, msg ? msg : sqlite3_errmsg(st->db));
    sqlite3_free(msg);
    sqlite3_exec(st->db, "ROLLBACK", NULL, NULL, NULL);
    return RG_EDB;
}

/* The WAL's checkpoints on a thread of the store's own
 * (rg_store_opts.checkpointer). SQLite checkpoints inside the commit that
 * takes the WAL past 1,000 pages, in the committing connection: the
 * service's loop thread then copied about 4 MB of pages into the database
 * file and waited for its fsync (5-89 ms here, 100,000 patients stored,
 * 4 to 8 times a second at 1,000 POSTs/s) while every request, answer and
 * stream waited for the loop. Here a commit that finds the WAL longer than
 * RG__CKPT_PAGES wakes this thread (sqlite3_wal_hook, which takes the place
 * of SQLite's own checkpoint), which copies it through a connection of its
 * own, PASSIVE: it never waits for, nor holds up, the writer or a reader.
 *
 * What the writer commits meanwhile is left to the next pass, and the WAL
 * starts again from its beginning only once it is copied whole, which a
 * pass does only when no commit came while it ran: under a steady stream
 * of commits the thread never catches up, and the WAL would grow without
 * end (54 MB in 9 s). So once the WAL is RG__CKPT_LIMIT pages long, passes
 * follow each other until one leaves a short tail (what was committed while
 * it ran), which the writer's next commit copies itself (that and the
 * file's fsync: 0.5-7 ms here, about once a second at 1,000 POSTs/s), and its
 * next write starts the WAL again. Under the limit a pass waits for
 * RG__CKPT_STEP new pages: each syncs the database file. Durability
 * is SQLite's: each commit still syncs the WAL before it returns
 * (synchronous=FULL); a checkpoint copies synced frames and syncs the
 * database file before the WAL may start again. */
#define RG__CKPT_PAGES 4000  /* 16 MB: the thread copies (SQLite's own: 1,000) */
#define RG__CKPT_LIMIT 16000 /* 64 MB: the writer copies what is left, and the WAL starts again */
#define RG__CKPT_STEP 1000   /* new pages that make the next pass, under the limit */
#define RG__CKPT_TAIL 128    /* what the writer copies once past the limit */
/* Checkpoints that cannot do their work must not go unseen (the WAL would
 * grow until the disk is full): each one's outcome is counted, and the
 * trouble (rg_store_wal: an error, RG_STORE_WAL_BUSY_MAX busy in a row, or
 * more than RG__CKPT_BOUND frames not copied, 256 MB: four times the
 * writer's limit, which a WAL in good health never comes near) is what
 * rg_store_wal_state tells. While it lasts the thread tries again every
 * RG__CKPT_RETRY_S by itself, so it ends without waiting for a commit. */
#define RG__CKPT_BOUND (4 * RG__CKPT_LIMIT)
#define RG__CKPT_RETRY_S 1
typedef struct rg__ckpt {
    pthread_t tid;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    sqlite3 *db;
    int want, stop; /* under mu */
    int running;    /* under mu: a pass runs */
    int copied;     /* under mu: the WAL's frames the last pass left copied (-1: none since
                     * the WAL started again, or since the writer's own copy) */
    int pages;      /* under mu: the WAL's length at the writer's last commit */
    /* under mu, for rg_store_wal_state: the outcomes, busy ones in a row,
     * the last error ("" once one succeeded), the WAL's length a checkpoint
     * last saw and what of it is copied (both 0 when the WAL starts again),
     * since when in trouble, and whether the thread tries again by itself */
    uint64_t n_ok, n_busy, n_failed;
    int busy_run;
    char error[200];
    int64_t log, done;
    rg_time since;
    int retry;
} rg__ckpt;

/* The WAL's frames not copied into the database file, as last known. */
static int64_t rg__ckpt_behind(const rg__ckpt *c)
{
    int64_t wal = c->pages > c->log ? c->pages : c->log;
    return wal > c->done ? wal - c->done : 0;
}

/* What is wrong with the checkpoints, in why ("" and 0 when nothing). */
static int rg__ckpt_trouble(const rg__ckpt *c, char *why, size_t len)
{
    int64_t behind = rg__ckpt_behind(c);
    if (c->error[0])
        snprintf(why, len, "WAL checkpoints fail: %s (%lld WAL pages not copied into the "
                 "database file)", c->error, (long long)behind);
    else if (c->busy_run >= RG_STORE_WAL_BUSY_MAX)
        snprintf(why, len, "WAL checkpoints find the database busy, %d times in a row (another "
                 "connection checkpoints it or holds its lock; %lld WAL pages not copied)",
                 c->busy_run, (long long)behind);
    else if (behind > RG__CKPT_BOUND)
        snprintf(why, len, "the WAL holds %lld pages not copied into the database file, past "
                 "its bound of %d: a connection that keeps a read transaction open holds them "
                 "there, and the WAL grows", (long long)behind, RG__CKPT_BOUND);
    else
        why[0] = '\0';
    return why[0] != '\0';
}

/* Under c->mu: a checkpoint's outcome (rc, and on success the WAL's length
 * and its frames copied; db says why it failed). */
static void rg__ckpt_note(rg__ckpt *c, sqlite3 *db, int rc, int log, int copied)
{
    if (rc == SQLITE_OK) {
        c->n_ok++;
        c->busy_run = 0;
        c->error[0] = '\0';
        if (log >= 0 && copied >= 0) {
            c->log = log;
            c->done = copied;
        }
    } else if ((rc & 0xff) == SQLITE_BUSY || (rc & 0xff) == SQLITE_LOCKED) {
        c->n_busy++;
        c->busy_run++;
    } else {
        int sys = sqlite3_system_errno(db);
        c->n_failed++;
        if (sys)
            snprintf(c->error, sizeof c->error, "%s (%s)", sqlite3_errstr(rc), strerror(sys));
        else
            snprintf(c->error, sizeof c->error, "%s", sqlite3_errstr(rc));
    }
    char why[8];
    int bad = rg__ckpt_trouble(c, why, sizeof why);
    if (bad && c->since == RG_TIME_NONE)
        c->since = rg_now();
    else if (!bad)
        c->since = RG_TIME_NONE;
    c->retry = bad || rc != SQLITE_OK;
}

static void *rg__ckpt_main(void *arg)
{
    rg__ckpt *c = arg;
    pthread_mutex_lock(&c->mu);
    for (;;) {
        while (!c->want && !c->stop) {
            if (!c->retry) {
                pthread_cond_wait(&c->cv, &c->mu);
                continue;
            }
            struct timespec at;
            clock_gettime(CLOCK_REALTIME, &at);
            at.tv_sec += RG__CKPT_RETRY_S;
            if (pthread_cond_timedwait(&c->cv, &c->mu, &at) == ETIMEDOUT && c->retry)
                c->want = 1; /* (in trouble: again, commits or not) */
        }
        if (c->stop)
            break;
        c->want = 0;
        c->running = 1;
        pthread_mutex_unlock(&c->mu);
        /* (busy: the writer's own copy runs, and the next commit wakes this
         * again; or another connection holds the file, counted) */
        int log = 0, copied = -1;
        int rc = sqlite3_wal_checkpoint_v2(c->db, NULL, SQLITE_CHECKPOINT_PASSIVE, &log, &copied);
        /* SQLite syncs the database file only after a pass that reached the
         * WAL's end, as the writer's copy does: the pages copied here would
         * all be flushed by that sync, on the writer's thread (11 ms at p50
         * here). Flushed now, that sync has only what the writer copied. */
        sqlite3_file *f = NULL;
        if (copied > 0 &&
            sqlite3_file_control(c->db, "main", SQLITE_FCNTL_FILE_POINTER, &f) == SQLITE_OK &&
            f && f->pMethods)
            f->pMethods->xSync(f, SQLITE_SYNC_NORMAL);
        pthread_mutex_lock(&c->mu);
        c->copied = copied;
        rg__ckpt_note(c, c->db, rc, log, copied);
        c->running = 0;
    }
    pthread_mutex_unlock(&c->mu);
    return NULL;
}

/* After each commit of the writer, outside its locks: pages is the WAL's
 * length. Wakes the thread, or copies what its last pass left. */
static int rg__wal_hook(void *ud, sqlite3 *db, const char *name, int pages)
{
    rg__ckpt *c = ud;
    pthread_mutex_lock(&c->mu);
    if (pages < c->pages) { /* the WAL started again: a pass's count is of the old one */
        c->copied = -1;
        c->log = c->done = 0;
    }
    c->pages = pages;
    /* (while a pass runs, nothing: what came meanwhile is the next pass's) */
    int copy = 0, left = c->copied >= 0 && pages >= c->copied ? pages - c->copied : -1;
    if (pages >= RG__CKPT_PAGES && !c->running) {
        /* past the limit, a short tail; or any, when passes do not get it short */
        copy = left >= 0 && pages >= RG__CKPT_LIMIT &&
               (left <= RG__CKPT_TAIL || pages >= RG__CKPT_LIMIT + RG__CKPT_LIMIT / 4);
        if (copy)
            c->copied = -1;
        else if (left < 0 || left >= RG__CKPT_STEP || pages >= RG__CKPT_LIMIT) {
            c->want = 1; /* (not a pass for every commit: each syncs the file) */
            pthread_cond_signal(&c->cv);
        }
    }
    pthread_mutex_unlock(&c->mu);
    if (copy) {
        int log = -1, copied = -1;
        int rc = sqlite3_wal_checkpoint_v2(db, name, SQLITE_CHECKPOINT_PASSIVE, &log, &copied);
        pthread_mutex_lock(&c->mu);
        rg__ckpt_note(c, db, rc, log, copied);
        if (c->retry) /* (the thread tries again by itself) */
            pthread_cond_signal(&c->cv);
        pthread_mutex_unlock(&c->mu);
    }
    return SQLITE_OK;
}

static void rg_sqlite_wal_state(rg_sqlite *st, rg_store_wal *out)
{
    rg__ckpt *c = st->ckpt;
    if (!c)
        return;
    pthread_mutex_lock(&c->mu);
    out->ok = c->n_ok;
    out->busy = c->n_busy;
    out->failed = c->n_failed;
    out->behind = rg__ckpt_behind(c);
    out->bound = RG__CKPT_BOUND;
    if (rg__ckpt_trouble(c, out->why, sizeof out->why)) {
        if (c->since == RG_TIME_NONE) /* (past the bound at a commit: from now) */
            c->since = rg_now();
        out->since = c->since;
    }
    pthread_mutex_unlock(&c->mu);
}

static void rg__ckpt_stop(rg_sqlite *st)
{
    rg__ckpt *c = st->ckpt;
    if (!c)
        return;
    sqlite3_wal_hook(st->db, NULL, NULL);
    pthread_mutex_lock(&c->mu);
    c->stop = 1;
    pthread_cond_signal(&c->cv);
    pthread_mutex_unlock(&c->mu);
    pthread_join(c->tid, NULL);
    sqlite3_close(c->db);
    pthread_cond_destroy(&c->cv);
    pthread_mutex_destroy(&c->mu);
    free(c);
    st->ckpt = NULL;
}

static int rg__ckpt_start(rg_sqlite *st, const char *path, char *err, size_t errlen)
{
    rg__ckpt *c = calloc(1, sizeof *c);
    if (!c)
        return rg_fail(err, errlen, RG_ENOMEM, "out of memory");
    char *msg = NULL;
    if (sqlite3_open_v2(path, &c->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, NULL) !=
            SQLITE_OK ||
        sqlite3_busy_timeout(c->db, RG__BUSY_MS) != SQLITE_OK ||
        sqlite3_exec(c->db, "PRAGMA synchronous=FULL", NULL, NULL, &msg) != SQLITE_OK ||
        /* (a read: a connection checkpoints nothing until it has opened the WAL) */
        sqlite3_exec(c->db, "SELECT count(*) FROM sqlite_schema", NULL, NULL, &msg) !=
            SQLITE_OK) {
        rg_fail(err, errlen, RG_EDB, "database %s: cannot open its checkpoint connection: %s",
                path, msg ? msg : c->db ? sqlite3_errmsg(c->db) : "out of memory");
        sqlite3_free(msg);
        sqlite3_close(c->db);
        free(c);
        return RG_EDB;
    }
    c->copied = -1;
    c->since = RG_TIME_NONE;
    pthread_mutex_init(&c->mu, NULL);
    pthread_cond_init(&c->cv, NULL);
    if (pthread_create(&c->tid, NULL, rg__ckpt_main, c)) {
        sqlite3_close(c->db);
        pthread_cond_destroy(&c->cv);
        pthread_mutex_destroy(&c->mu);
        free(c);
        return rg_fail(err, errlen, RG_ENOMEM, "database %s: cannot start its checkpoint thread",
                       path);
    }
    st->ckpt = c;
    sqlite3_wal_hook(st->db, rg__wal_hook, c); /* (no automatic checkpoint from here on) */
    return RG_OK;
}

static int rg_sqlite_open(rg_sqlite **out, const char *path, const rg_store_opts *opts, char *err,
                          size_t errlen)
{
    *out = NULL;
    rg_sqlite *st = calloc(1, sizeof *st);
    if (!st)
        return rg_fail(err, errlen, RG_ENOMEM, "out of memory");
    /* Patient data: the file is the owner's alone from its first byte. */
    if (strcmp(path, ":memory:") != 0 && access(path, F_OK) != 0) {
        int fd = open(path, O_RDWR | O_CREAT | O_EXCL, 0600);
        if (fd < 0 && errno != EEXIST) {
            free(st);
            return rg_fail(err, errlen, RG_EIO, "cannot create database %s: %s", path,
                           strerror(errno));
        }
        if (fd >= 0)
            close(fd);
    } else if (strcmp(path, ":memory:") != 0 && access(path, R_OK | W_OK) != 0) {
        free(st); /* a read-only file or file system: say so, not "unable to open" */
        return rg_fail(err, errlen, RG_EIO, "cannot open database %s for writing: %s", path,
                       strerror(errno));
    }
    /* NOMUTEX: a store is used by one thread at a time (ingest's reader
     * thread never touches it), so SQLite's per-call locking is pure cost */
    if (sqlite3_open_v2(path, &st->db,
                        SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, NULL) !=
        SQLITE_OK) {
        rg_fail(err, errlen, RG_EDB, "cannot open database %s: %s", path,
                st->db ? sqlite3_errmsg(st->db) : "out of memory");
        rg_sqlite_close(st);
        return RG_EDB;
    }
    sqlite3_busy_timeout(st->db, RG__BUSY_MS);
    st->sched_patient[0] = '\0';
    st->load = opts && opts->load;
    int rc = rg__check_version(st, path, err, errlen);
    if (!rc && opts && opts->check) /* before the pragmas below write the header */
        rc = rg__check_pages(st, path, err, errlen);
    if (rc) {
        rg_sqlite_close(st);
        return rc;
    }
    char *msg = NULL;
    /* The store's cache: 64 MiB of pages plus up to RG_STORE_MMAP bytes of
     * the file mapped for reads, so a sweep's memory stays bounded however
     * large the database grows. A load into a new file also leaves out
     * Debian's default secure_delete (SQLITE_SECURE_DELETE: space freed in a
     * page is zeroed): what it frees there are cells that a page split moved,
     * and the rows of a group taken out again to be put one by one, copies of
     * what the file keeps anyway (issue 27: 1.4% of the writing thread's
     * instructions). The next open has it again. */
    const char *pragmas = opts && opts->load
                              ? "PRAGMA locking_mode=EXCLUSIVE; PRAGMA journal_mode=MEMORY;"
                                " PRAGMA synchronous=OFF; PRAGMA foreign_keys=ON;"
                                " PRAGMA secure_delete=OFF;"
                          : opts && opts->durable
                              ? "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;"
                                " PRAGMA foreign_keys=ON; PRAGMA cache_size=-65536;"
                                " PRAGMA mmap_size=" RG_STORE_MMAP ";"
                              : "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;"
                                " PRAGMA foreign_keys=ON; PRAGMA cache_size=-65536;"
                                " PRAGMA mmap_size=" RG_STORE_MMAP ";";
    /* Turning a new file to WAL needs it alone for a moment; when another
     * process opens it at the same time, SQLite answers "locked" at once
     * rather than wait (it could deadlock), so that is retried here for as
     * long as the busy timeout. */
    int rc_exec;
    for (int waited = 0;; waited += 10) {
        rc_exec = sqlite3_exec(st->db, pragmas, NULL, NULL, &msg);
        if (rc_exec != SQLITE_BUSY || waited >= 5000)
            break;
        sqlite3_free(msg);
        msg = NULL;
        usleep(10000);
    }
    /* a bulk load writes each page once: what the cache would keep of it is
     * not read again, and reused pages cost no new memory (store.h). A load
     * into a new file (one transaction, no journal to write first) spills
     * its pages to the file as it goes: 2 MiB of them hold where the
     * inserts land (issue 27: 4,662 -> 1,991 page faults on the 2k cohort,
     * 262 pages read back) */
    if (rc_exec == SQLITE_OK && opts && opts->bulk)
        rc_exec = sqlite3_exec(st->db, opts->load ? "PRAGMA cache_size=-2048;"
                                                  : "PRAGMA cache_size=-16384;", NULL, NULL, &msg);
    /* The service's writer: a page cache sized to what its group commits touch.
     * SQLite ends every write transaction by dropping the cached pages past the
     * database's end (pcache1Truncate), and a page split that reorders its
     * siblings renumbers a page through the lock-byte page's number (2^30 / page
     * size + 1: btree.c, balance_nonroot), which the cache keeps as its highest
     * page: the commit after such a split then walks the whole cache, every hash
     * slot and cached page. With 100,000 patients the alerts' keys (hashes) split
     * pages all the time, and a cache of 64 MiB (16,384 pages; 5,900 held three
     * seconds into a run at 1,000 POSTs/s, and growing) made that walk 13-14% of
     * the loop thread's CPU (perf, libsqlite3 +0xb7c00 under
     * sqlite3PagerCommitPhaseTwo; 16 MiB: 7%, 8 MiB: 2.8%, 4 MiB: 1.7%). 8 MiB
     * holds a group commit's pages about three times over (a cohort ingest's:
     * ~700; more spill to the WAL before the commit, as SQLite does) and the
     * file's pages are read through the mapping, not this cache. */
    if (rc_exec == SQLITE_OK && opts && opts->writer && !opts->load && !opts->bulk)
        rc_exec = sqlite3_exec(st->db, "PRAGMA cache_size=-" RG__WRITER_CACHE ";", NULL, NULL,
                               &msg);
    if (rc_exec == SQLITE_OK && opts && opts->scratch)
        rc_exec = sqlite3_exec(st->db, "PRAGMA ignore_check_constraints=ON; PRAGMA synchronous=OFF;"
                                       " PRAGMA wal_autocheckpoint=0;", NULL, NULL, &msg);
    if (rc_exec == SQLITE_OK && opts && opts->scratch)
        sqlite3_db_config(st->db, SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, 1, NULL);
    if (rc_exec != SQLITE_OK) {
        rg_fail(err, errlen, RG_EDB, "cannot use database %s: %s", path, msg);
        sqlite3_free(msg);
        rg_sqlite_close(st);
        return RG_EDB;
    }
    if (sqlite3_create_function(st->db, "rg_sha256", 1, SQLITE_UTF8 | SQLITE_DETERMINISTIC, NULL,
                                rg__sql_sha256, NULL, NULL) != SQLITE_OK ||
        sqlite3_create_function(st->db, "rg_sha256b", 1, SQLITE_UTF8 | SQLITE_DETERMINISTIC,
                                NULL, rg__sql_sha256b, NULL, NULL) != SQLITE_OK ||
        sqlite3_create_function(st->db, "rg_data", 1, SQLITE_UTF8 | SQLITE_DETERMINISTIC, NULL,
                                rg__sql_data, NULL, NULL) != SQLITE_OK ||
        sqlite3_create_function(st->db, "rg_body", 8, SQLITE_UTF8 | SQLITE_DETERMINISTIC, NULL,
                                rg__sql_body, NULL, NULL) != SQLITE_OK ||
        sqlite3_create_function(st->db, "rg_lean", 8, SQLITE_UTF8 | SQLITE_DETERMINISTIC, NULL,
                                rg__sql_lean, NULL, NULL) != SQLITE_OK) {
        rg_fail(err, errlen, RG_EDB, "database %s: %s", path, sqlite3_errmsg(st->db));
        rg_sqlite_close(st);
        return RG_EDB;
    }
    rc = rg__migrate(st, err, errlen);
    for (int i = 0; !rc && opts && opts->scratch && rg_store_scratch_drop[i]; i++) {
        char sql[128];
        snprintf(sql, sizeof sql, "DROP INDEX IF EXISTS %s", rg_store_scratch_drop[i]);
        if (sqlite3_exec(st->db, sql, NULL, NULL, NULL) != SQLITE_OK)
            rc = rg_fail(err, errlen, RG_EDB, "database %s: %s", path, sqlite3_errmsg(st->db));
    }
    if (!rc && opts && opts->checkpointer && !opts->load && !opts->scratch &&
        strcmp(path, ":memory:") != 0)
        rc = rg__ckpt_start(st, path, err, errlen);
    if (rc) {
        rg_sqlite_close(st);
        return rc;
    }
    for (int i = 0; i < Q__COUNT; i++) {
        if (sqlite3_prepare_v3(st->db, rg_store_sql[i], -1, SQLITE_PREPARE_PERSISTENT, &st->q[i],
                               NULL) != SQLITE_OK) {
            rg_fail(err, errlen, RG_EDB, "database %s: %s", path, sqlite3_errmsg(st->db));
            rg_sqlite_close(st);
            return RG_EDB;
        }
    }
    *out = st;
    return RG_OK;
}

sqlite3 *rg_sqlite_db(rg_sqlite *st) { return st->db; }

static void rg_sqlite_close(rg_sqlite *st)
{
    if (!st)
        return;
    rg__ckpt_stop(st);
    for (int i = 0; i < Q__COUNT; i++)
        sqlite3_finalize(st->q[i]);
    /* a loaded file leaves as any other store is: in WAL (which the next open
     * sets too, should this fail) */
    if (st->load)
        sqlite3_exec(st->db, "PRAGMA journal_mode=WAL", NULL, NULL, NULL);
    sqlite3_close(st->db);
    free(st);
}

/* After a rollback SQLite says "not an error": then the fault that caused it. */
static const char *rg_sqlite_errmsg(rg_sqlite *st)
{
    return sqlite3_errcode(st->db) == SQLITE_OK && st->fault[0] ? st->fault
                                                                : sqlite3_errmsg(st->db);
}

/* event_seq written back: the last seq this transaction gave. */
static int rg__evseq_put(rg_sqlite *st)
{
    sqlite3_stmt *s = rg__q(st, Q_EVENT_SEQ_PUT);
    sqlite3_bind_int64(s, 1, st->evseq);
    return rg__done(st, s);
}

/* The seq for the next event insert (given back by rg__evseq_undo when the
 * insert stores nothing): event_seq is read once per write transaction and
 * kept in st->evseq (BEGIN IMMEDIATE holds the write lock: nobody else
 * numbers events meanwhile). */
static int rg__evseq_next(rg_sqlite *st, int64_t *seq)
{
    if (!st->evseq || sqlite3_get_autocommit(st->db)) {
        sqlite3_stmt *s = rg__q(st, Q_EVENT_SEQ_GET);
        int rc = sqlite3_step(s);
        st->evseq = rc == SQLITE_ROW ? sqlite3_column_int64(s, 0) : 0;
        sqlite3_reset(s);
        if (rc != SQLITE_ROW) {
            rg__fault(st, sqlite3_extended_errcode(st->db));
            return RG_EDB;
        }
    }
    *seq = ++st->evseq;
    return RG_OK;
}

/* After an event insert: keeps the seq it took (written at once outside a
 * transaction, before the commit inside one), or gives it back. */
static int rg__evseq_used(rg_sqlite *st, int used)
{
    if (!used) {
        st->evseq--;
        return RG_OK;
    }
    if (sqlite3_get_autocommit(st->db))
        return rg__evseq_put(st);
    st->evseq_dirty = 1;
    return RG_OK;
}

/* After a write met a full disk the WAL holds frames the database file
 * could not take: the checkpoint that copies them over needs the file to
 * grow, and the WAL starts again from its beginning only once they are all
 * copied. Until then each commit appends to the WAL, which so takes any
 * space freed before the database can use it, and every write keeps failing.
 * So, until a commit succeeds, each write transaction first checkpoints and
 * truncates the WAL: once space is back the database file takes what it
 * needs, and the WAL gives back the rest. On a disk still full it fails at
 * once, and nothing is lost (every frame stays in the WAL). Readers in the
 * way are not waited for (busy timeout 0 meanwhile): it then copies what it
 * can, and the next write transaction tries again. */
static void rg__truncate_wal(rg_sqlite *st)
{
    sqlite3_busy_timeout(st->db, 0);
    sqlite3_wal_checkpoint_v2(st->db, NULL, SQLITE_CHECKPOINT_TRUNCATE, NULL, NULL);
    sqlite3_busy_timeout(st->db, RG__BUSY_MS);
}
static void rg__reclaim_wal(rg_sqlite *st)
{
    if (!st->full)
        return;
    st->short_wal = 1;
    rg__truncate_wal(st);
}

/* Space has been short (rg__reclaim_wal): while the file system has less
 * than RG__ROOM free, every commit is checkpointed at once, the WAL truncated
 * when no reader is in it. SQLite's own checkpoint (every 1000 pages, 4 MB)
 * would let the WAL grow into the space freed, and an evaluation thread's
 * read that began before it would keep the WAL from starting again, so a
 * stream of writes after the recovery filled the disk again with frames the
 * database then had no room to take: a full disk for good. Checkpointed at
 * each commit, the WAL holds no frame the database still needs when a write
 * meets a full disk, so the next write transaction's truncation gives its
 * space back once the readers in it are done. Done before on_commit wakes the
 * evaluation threads, so their reads begin on a WAL fully copied: they read
 * the database file alone and never keep the WAL from starting again (a
 * checkpoint meanwhile is put off to the next commit). With RG__ROOM free
 * again, SQLite's checkpoint is enough. */
#define RG__ROOM (64ull << 20) /* bytes */
static void rg__keep_wal_short(rg_sqlite *st)
{
    if (!st->short_wal)
        return;
    struct statvfs fs;
    const char *path = sqlite3_db_filename(st->db, "main");
    if (path && statvfs(path, &fs) == 0 && (unsigned long long)fs.f_bavail * fs.f_frsize >= RG__ROOM)
        st->short_wal = 0;
    else
        rg__truncate_wal(st);
}

static int rg_sqlite_begin(rg_sqlite *st)
{
    rg__reclaim_wal(st);
    st->sched_patient[0] = '\0';
    st->ncseq = 0;
    st->tseq = 0;
    st->evseq = 0;
    st->evseq_dirty = 0;
    return rg__done(st, rg__q(st, Q_BEGIN));
}
static uint64_t rg_sqlite_rollbacks(const rg_sqlite *st)
{
    return st->rollbacks;
}

static int rg_sqlite_begin_read(rg_sqlite *st)
{
    return rg__done(st, rg__q(st, Q_BEGIN_READ));
}
static int rg_sqlite_commit(rg_sqlite *st)
{
    st->ncseq = 0;
    st->tseq = 0;
    int rc = st->evseq_dirty ? rg__evseq_put(st) : RG_OK;
    st->evseq = 0;
    st->evseq_dirty = 0;
    if (rc) {
        rg_sqlite_rollback(st);
        return rc;
    }
    rc = rg__done(st, rg__q(st, Q_COMMIT));
    if (rc == RG_OK) {
        st->fault[0] = '\0';
        st->full = 0;
        rg__keep_wal_short(st);
    } else
        st->rollbacks++; /* what it held may not have been stored */
    if (rc == RG_OK && st->on_commit)
        st->on_commit(st->on_commit_ud);
    return rc;
}

static void rg_sqlite_on_commit(rg_sqlite *st, void (*fn)(void *ud), void *ud)
{
    st->on_commit = fn;
    st->on_commit_ud = ud;
}

/* PRAGMA data_version: changes when ANOTHER connection (another process)
 * committed to the file since the last call, never for this one's commits. */
static int rg_sqlite_data_version(rg_sqlite *st, int64_t *out)
{
    sqlite3_stmt *s;
    if (sqlite3_prepare_v2(st->db, "PRAGMA data_version", -1, &s, NULL) != SQLITE_OK)
        return RG_EDB;
    int rc = sqlite3_step(s);
    *out = rc == SQLITE_ROW ? sqlite3_column_int64(s, 0) : 0;
    sqlite3_finalize(s);
    return rc == SQLITE_ROW ? RG_OK : RG_EDB;
}

static const char *rg_sqlite_fault(rg_sqlite *st, rg_time *since)
{
    if (since)
        *since = st->fault[0] ? st->fault_since : RG_TIME_NONE;
    return st->fault[0] ? st->fault : NULL;
}
static void rg_sqlite_rollback(rg_sqlite *st)
{
    st->ncseq = 0;
    st->tseq = 0;
    st->evseq = 0;
    st->evseq_dirty = 0;
    st->rollbacks++;
    if (!sqlite3_get_autocommit(st->db))
        rg__done(st, rg__q(st, Q_ROLLBACK));
}

/* What the row keeps of ev's body (v17): "" or the rest after the head its
 * columns give back, or the whole body (event.h). */
static const char *rg__lean_body(const rg_event *ev)
{
    return ev->kept ? ev->kept
                    : rg_event_body_rest(ev->body, ev->id, ev->clinic, ev->patient, ev->type,
                                         ev->at, ev->offset_min, ev->fields.p, ev->fields.len);
}

/* Binds ev as ?1..?14 of an event insert, seq as ?7, the body's digest as
 * ?16 (its first RG_EVENT_DIGEST bytes, v18; computed here unless the parse
 * computed it). */
static void rg__bind_event(sqlite3_stmt *s, const rg_event *ev, rg_time received, int64_t seq)
{
    unsigned char digest[32];
    if (!ev->digested)
        rg_sha256(ev->body, strlen(ev->body), digest);
    sqlite3_bind_blob(s, 16, ev->digested ? ev->digest : digest, RG_EVENT_DIGEST, SQLITE_TRANSIENT);
    rg_sqlite_text(s, 1, ev->clinic);
    rg_sqlite_text(s, 2, ev->id);
    rg_sqlite_text(s, 3, ev->patient);
    rg_sqlite_text(s, 4, ev->type);
    sqlite3_bind_int64(s, 5, ev->at);
    sqlite3_bind_int(s, 6, ev->offset_min);
    sqlite3_bind_int64(s, 7, seq);
    rg_sqlite_text(s, 8, rg__lean_body(ev));
    sqlite3_bind_int64(s, 9, received);
    if (ev->fields.len)
        sqlite3_bind_blob(s, 10, ev->fields.p, (int)ev->fields.len, SQLITE_STATIC);
    sqlite3_bind_int64(s, 11, ev->version);
    rg_sqlite_text(s, 12, ev->status == RG_STATUS_FINAL ? NULL : rg_event_status_name(ev->status));
    rg_sqlite_time(s, 13, ev->corrected_at);
    rg_sqlite_text(s, 14, ev->corrected_by);
}

/* Schedules ev's patient at `at` (or at its clock, if that is later). */
static int rg__schedule(rg_sqlite *st, const rg_event *ev, rg_time at)
{
    sqlite3_stmt *s = rg__q(st, Q_PATIENT_SCHEDULE);
    rg_sqlite_text(s, 1, ev->clinic);
    rg_sqlite_text(s, 2, ev->patient);
    sqlite3_bind_int64(s, 3, at);
    return rg__done(st, s);
}

/* 1 when the stored body text is the same JSON value as ev's, 0 when not,
 * RG_ENOMEM when memory runs out. A stored body that is not JSON (a line
 * with a NUL byte, stored before rg_json_loadb refused them, ends at the
 * NUL) is not the same as any event: the newcomer is a conflict, reported
 * and kept, not a failed ingest. */
int rg_store_same_body(const char *stored, const rg_event *ev)
{
    if (!strcmp(stored, ev->body))
        return 1;
    json_error_t je, je_mine;
    /* an event the one-pass parser read has no tree: its (valid) body is loaded */
    json_t *j = json_loads(stored, 0, &je),
           *mine = ev->json ? json_copy(ev->json) : json_loads(ev->body, 0, &je_mine);
    if (!j || !mine) {
        int nomem = j ? ev->json || rg_json_failed_for_memory(&je_mine)
                      : rg_json_failed_for_memory(&je);
        json_decref(j);
        json_decref(mine);
        return nomem ? RG_ENOMEM : 0;
    }
    /* "version":1 and "status":"final" say what their absence says */
    json_t *both[2] = {j, mine};
    for (int i = 0; i < 2 && both[i]; i++) {
        json_t *v = json_object_get(both[i], "version");
        if (json_is_integer(v) && json_integer_value(v) == 1)
            json_object_del(both[i], "version");
        v = json_object_get(both[i], "status");
        if (json_is_string(v) && !strcmp(json_string_value(v), "final"))
            json_object_del(both[i], "status");
    }
    int same = json_equal(j, mine);
    json_decref(j);
    json_decref(mine);
    return same;
}

/* After a new event's insert: schedules its patient, once for a run of the
 * same patient's events in time order within a transaction. */
static int rg__stored(rg_sqlite *st, const rg_event *ev)
{
    if (!sqlite3_get_autocommit(st->db) && ev->at >= st->sched_at &&
        !strcmp(st->sched_patient, ev->patient) && !strcmp(st->sched_clinic, ev->clinic))
        return RG_OK;
    snprintf(st->sched_clinic, sizeof st->sched_clinic, "%s", ev->clinic);
    snprintf(st->sched_patient, sizeof st->sched_patient, "%s", ev->patient);
    st->sched_at = ev->at;
    return rg__schedule(st, ev, ev->at);
}

/* RG_STORE_MANY new events with one statement (inside a transaction): *all
 * 1 when every one was stored (and its patient scheduled), 0 when one of
 * their ids is stored already or comes twice among them: then the rows that
 * did go in are taken out again (nothing of the group stays) and the caller
 * puts them one by one. A trigger's veto (a constraint error) is answered
 * the same way; the one-by-one put says which event it was. */
static int rg__put_many(rg_sqlite *st, const rg_event *const *evs, rg_time received, int *all)
{
    unsigned char digest[RG_STORE_MANY][32];
    int64_t seq;
    *all = 0;
    if (rg__evseq_next(st, &seq))
        return RG_EDB;
    st->evseq--; /* taken back: the rows below number from seq */
    /* every parameter is bound below (fields too, NULL when there are none):
     * no sqlite3_clear_bindings of hundreds of them first (rg__q) */
    int plain = 1;
    for (int i = 0; i < RG_STORE_MANY && plain; i++)
        plain = evs[i]->version == 1 && evs[i]->status == RG_STATUS_FINAL &&
                evs[i]->corrected_at == RG_TIME_NONE && !evs[i]->corrected_by;
    sqlite3_stmt *s = st->q[plain ? Q_EVENT_INSERT_PLAIN : Q_EVENT_INSERT_MANY];
    sqlite3_reset(s);
    if (plain)
        sqlite3_bind_int64(s, 1, received);
    for (int i = 0; i < RG_STORE_MANY; i++) {
        const rg_event *ev = evs[i];
        /* the plain statement's row: ?1, then clinic, id, patient, type, at,
         * utc_offset, body, fields, digest, seq */
        int p = plain ? 1 + i * RG_STORE_PLAIN_COLS : i * RG_STORE_MANY_COLS;
        if (!ev->digested)
            rg_sha256(ev->body, strlen(ev->body), digest[i]);
        rg_sqlite_text(s, p + 1, ev->clinic);
        rg_sqlite_text(s, p + 2, ev->id);
        rg_sqlite_text(s, p + 3, ev->patient);
        rg_sqlite_text(s, p + 4, ev->type);
        sqlite3_bind_int64(s, p + 5, ev->at);
        sqlite3_bind_int(s, p + 6, ev->offset_min);
        rg_sqlite_text(s, p + 7, rg__lean_body(ev));
        if (!plain) {
            sqlite3_bind_int64(s, p + 8, received);
            sqlite3_bind_int64(s, p + 10, ev->version);
            rg_sqlite_text(s, p + 11, ev->status == RG_STATUS_FINAL ? NULL
                                                                     : rg_event_status_name(ev->status));
            rg_sqlite_time(s, p + 12, ev->corrected_at);
            rg_sqlite_text(s, p + 13, ev->corrected_by);
        }
        int f = plain ? p + 8 : p + 9; /* fields, then the digest and seq */
        if (ev->fields.len)
            sqlite3_bind_blob(s, f, ev->fields.p, (int)ev->fields.len, SQLITE_STATIC);
        else
            sqlite3_bind_null(s, f);
        sqlite3_bind_blob(s, plain ? p + 9 : p + 14, ev->digested ? ev->digest : digest[i],
                          RG_EVENT_DIGEST, SQLITE_STATIC);
        sqlite3_bind_int64(s, plain ? p + 10 : p + 15, seq + i);
    }
    int rc = sqlite3_step(s);
    int ext = sqlite3_extended_errcode(st->db);
    sqlite3_reset(s);
    if (rc != SQLITE_DONE) {
        if ((ext & 0xff) == SQLITE_CONSTRAINT)
            return RG_OK;
        rg__fault(st, ext);
        return RG_EDB;
    }
    int stored = sqlite3_changes(st->db);
    for (int i = 0; stored > 0 && stored < RG_STORE_MANY && i < RG_STORE_MANY; i++) {
        s = rg__q(st, Q_EVENT_UNDO); /* a known id among them: none of the group stays */
        rg_sqlite_text(s, 1, evs[i]->clinic);
        rg_sqlite_text(s, 2, evs[i]->id);
        sqlite3_bind_int64(s, 3, seq + i);
        if (rg__done(st, s))
            return RG_EDB;
    }
    if (stored < RG_STORE_MANY)
        return RG_OK;
    st->evseq = seq + RG_STORE_MANY - 1;
    st->evseq_dirty = 1;
    *all = 1;
    for (int i = 0; i < RG_STORE_MANY; i++)
        if ((rc = rg__stored(st, evs[i])))
            return rc;
    return RG_OK;
}

#define RG__CONFLICT(f, ...)                                               \
    do {                                                                   \
        st->put_field = (f);                                               \
        snprintf(st->put_why, sizeof st->put_why, __VA_ARGS__);            \
        *res = RG_PUT_CONFLICT;                                            \
        sqlite3_reset(s);                                                  \
        return RG_OK;                                                      \
    } while (0)

static int rg_sqlite_put_event(rg_sqlite *st, const rg_event *ev, rg_time received, rg_put *res)
{
    int64_t seq;
    if (rg__evseq_next(st, &seq))
        return RG_EDB;
    sqlite3_stmt *s = rg__q(st, Q_EVENT_INSERT);
    rg__bind_event(s, ev, received, seq);
    if (rg__done(st, s)) {
        rg__evseq_used(st, 0);
        return RG_EDB;
    }
    if (rg__evseq_used(st, sqlite3_changes(st->db) == 1))
        return RG_EDB;
    if (sqlite3_changes(st->db) == 1) {
        *res = RG_PUT_STORED;
        return rg__stored(st, ev);
    }
    /* the id is stored: a duplicate, a conflict or a correction */
    s = rg__q(st, Q_EVENT_CURRENT);
    rg_sqlite_text(s, 1, ev->clinic);
    rg_sqlite_text(s, 2, ev->id);
    if (sqlite3_step(s) != SQLITE_ROW) {
        sqlite3_reset(s);
        return RG_EDB;
    }
    int64_t cur_seq = sqlite3_column_int64(s, 0), cur_version = sqlite3_column_int64(s, 1);
    if (ev->version == cur_version) {
        int same = rg_store_same_body(rg__col_text(s, 4), ev);
        if (same < 0) {
            sqlite3_reset(s);
            return same;
        }
        if (!same)
            RG__CONFLICT("id", "an event with this clinic and id is already stored with "
                         "different content; it was not overwritten (a correction has a higher "
                         "version)");
        *res = RG_PUT_DUPLICATE;
        sqlite3_reset(s);
        return RG_OK;
    }
    if (ev->version < cur_version) {
        sqlite3_reset(s);
        s = rg__q(st, Q_EVENT_VERSION_BODY);
        rg_sqlite_text(s, 1, ev->clinic);
        rg_sqlite_text(s, 2, ev->id);
        sqlite3_bind_int64(s, 3, ev->version);
        int rc = sqlite3_step(s);
        if (rc == SQLITE_ROW) {
            int same = rg_store_same_body(rg__col_text(s, 0), ev);
            if (same < 0) {
                sqlite3_reset(s);
                return same;
            }
            if (same) {
                *res = RG_PUT_DUPLICATE;
                sqlite3_reset(s);
                return RG_OK;
            }
            RG__CONFLICT("id", "version %lld of this event is already stored with different "
                         "content; it was not overwritten", (long long)ev->version);
        } else if (rc != SQLITE_DONE) {
            sqlite3_reset(s);
            return RG_EDB;
        }
        RG__CONFLICT("version", "stale version %lld, stored is %lld; it was not stored",
                     (long long)ev->version, (long long)cur_version);
    }
    if (strcmp(rg__col_text(s, 2), ev->patient) != 0)
        RG__CONFLICT("patient", "a correction must keep the patient: version %lld is stored "
                     "for patient '%.128s', not '%.128s'", (long long)cur_version,
                     rg__col_text(s, 2), ev->patient);
    if (ev->status == RG_STATUS_ERROR && strcmp(rg__col_text(s, 3), ev->type) != 0)
        RG__CONFLICT("type", "an entered-in-error correction must keep the type: version %lld "
                     "is a '%.64s' event, not '%.64s'", (long long)cur_version,
                     rg__col_text(s, 3), ev->type);
    sqlite3_reset(s);
    if (rg__evseq_next(st, &seq))
        return RG_EDB;
    s = rg__q(st, Q_EVENT_INSERT_VERSION);
    rg__bind_event(s, ev, received, seq);
    sqlite3_bind_int64(s, 15, cur_seq);
    if (rg__done(st, s)) {
        rg__evseq_used(st, 0);
        return RG_EDB;
    }
    if (rg__evseq_used(st, 1))
        return RG_EDB;
    *res = RG_PUT_CORRECTED;
    st->sched_patient[0] = '\0'; /* the wake-up may move earlier than a later event's */
    return rg__schedule(st, ev, ev->corrected_at);
}
#undef RG__CONFLICT

static const char *rg_sqlite_put_reason(const rg_sqlite *st)
{
    return st->put_why;
}
static const char *rg_sqlite_put_field(const rg_sqlite *st)
{
    return st->put_field;
}

static int rg_sqlite_put_events(rg_sqlite *st, const rg_event *const *evs, int n, rg_time received,
                                rg_put *res, int *failed)
{
    if (failed)
        *failed = 0;
    /* within a transaction, RG_STORE_MANY new events at a time; after a group
     * with a known id, its events one by one */
    for (int i = 0, rc, single = 0; i < n; i++) {
        if (!single && n - i >= RG_STORE_MANY && !sqlite3_get_autocommit(st->db)) {
            int all;
            if ((rc = rg__put_many(st, evs + i, received, &all))) {
                if (failed)
                    *failed = i;
                return rc;
            }
            for (int k = 0; all && k < RG_STORE_MANY; k++)
                res[i + k] = RG_PUT_STORED;
            if (all) {
                i += RG_STORE_MANY - 1;
                continue;
            }
            single = RG_STORE_MANY;
        }
        if (single)
            single--;
        if ((rc = rg_sqlite_put_event(st, evs[i], received, &res[i]))) {
            if (failed)
                *failed = i;
            return rc;
        }
    }
    return RG_OK;
}

static int rg_sqlite_reject(rg_sqlite *st, const char *source, long line, const char *field,
                            const char *reason, const char *raw, size_t rawlen)
{
    sqlite3_stmt *s = rg__q(st, Q_REJECT);
    sqlite3_bind_int64(s, 1, rg_now());
    rg_sqlite_text(s, 2, source);
    sqlite3_bind_int64(s, 3, line);
    rg_sqlite_text(s, 4, field ? field : "");
    rg_sqlite_text(s, 5, reason);
    /* Raw text may be any bytes; keep it as given (as a blob if not UTF-8 is
     * not worth the distinction here: SQLite stores the bytes either way). */
    sqlite3_bind_text(s, 6, raw, (int)rawlen, SQLITE_STATIC);
    return rg__done(st, s);
}

static int rg_sqlite_each_rejected(rg_sqlite *st, int (*fn)(void *ud, const rg_rejected *r),
                                   void *ud)
{
    sqlite3_stmt *s = rg__q(st, Q_REJECTED_ALL);
    int rc, frc = 0;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        rg_rejected r = {
            .seq = sqlite3_column_int64(s, 0),
            .received = sqlite3_column_int64(s, 1),
            .source = rg__col_text(s, 2),
            .line = (long)sqlite3_column_int64(s, 3),
            .field = rg__col_text(s, 4),
            .reason = rg__col_text(s, 5),
            .raw = rg__col_text(s, 6),
        };
        if ((frc = fn(ud, &r)) != 0)
            break;
    }
    sqlite3_reset(s);
    return frc ? frc : rc == SQLITE_ROW || rc == SQLITE_DONE ? RG_OK : RG_EDB;
}

static int rg__each_event(sqlite3_stmt *s, const char *clinic, const char *patient,
                          int64_t after_seq, int (*fn)(void *ud, const rg_stored_event *e),
                          void *ud)
{
    int rc, frc = 0;
    rg_sqlite_text(s, 1, clinic);
    rg_sqlite_text(s, 2, patient);
    if (after_seq >= 0)
        sqlite3_bind_int64(s, 3, after_seq);
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        rg_stored_event e;
        rg__col_event(s, &e);
        if ((frc = fn(ud, &e)) != 0)
            break;
    }
    return rg__each_end(s, rc, frc);
}

static int rg_sqlite_each_event(rg_sqlite *st, const char *clinic, const char *patient,
                                int (*fn)(void *ud, const rg_stored_event *e), void *ud)
{
    return rg__each_event(rg__q(st, Q_EVENTS_OF), clinic, patient, -1, fn, ud);
}

static int rg_sqlite_each_event_after(rg_sqlite *st, const char *clinic, const char *patient,
                                      int64_t after_seq,
                                      int (*fn)(void *ud, const rg_stored_event *e), void *ud)
{
    return rg__each_event(rg__q(st, after_seq < 0 ? Q_EVENTS_OF : Q_EVENTS_AFTER), clinic,
                          patient, after_seq, fn, ud);
}

static int rg_sqlite_each_event_data(rg_sqlite *st, const char *clinic, const char *patient,
                                     int (*fn)(void *ud, const rg_stored_event *e), void *ud)
{
    return rg__each_event(rg__q(st, Q_EVENTS_OF_DATA), clinic, patient, -1, fn, ud);
}

static int rg_sqlite_patient_get(rg_sqlite *st, const char *clinic, const char *patient,
                                 rg_patient_state *ps)
{
    sqlite3_stmt *s = rg__q(st, Q_PATIENT_GET);
    rg_sqlite_text(s, 1, clinic);
    rg_sqlite_text(s, 2, patient);
    int rc = sqlite3_step(s);
    if (rc == SQLITE_ROW) {
        ps->clock = rg_sqlite_col_time(s, 0);
        ps->wake = rg_sqlite_col_time(s, 1);
        ps->next_wake = rg_sqlite_col_time(s, 2);
        ps->last_seq = sqlite3_column_int64(s, 3);
        ps->scheduled = sqlite3_column_int64(s, 4);
        ps->failing = sqlite3_column_int64(s, 5);
    } else {
        ps->clock = ps->wake = ps->next_wake = RG_TIME_NONE;
        ps->last_seq = ps->scheduled = ps->failing = 0;
    }
    sqlite3_reset(s);
    return rc == SQLITE_ROW ? RG_OK : rc == SQLITE_DONE ? RG_ENOTFOUND : RG_EDB;
}

static int rg_sqlite_patient_put(rg_sqlite *st, const char *clinic, const char *patient,
                                 const rg_patient_state *ps)
{
    sqlite3_stmt *s = rg__q(st, Q_PATIENT_PUT);
    rg_sqlite_text(s, 1, clinic);
    rg_sqlite_text(s, 2, patient);
    rg_sqlite_time(s, 3, ps->clock);
    rg_sqlite_time(s, 4, ps->wake);
    rg_sqlite_time(s, 5, ps->next_wake);
    sqlite3_bind_int64(s, 6, ps->last_seq);
    sqlite3_bind_int64(s, 7, ps->scheduled);
    sqlite3_bind_int64(s, 8, ps->failing);
    return rg__done(st, s);
}

/* Runs a bound query of (clinic, patient) rows: how many went to fn, or RG_EDB. */
static int rg__each_patient(sqlite3_stmt *s,
                            int (*fn)(void *ud, const char *clinic, const char *patient), void *ud)
{
    int rc, n = 0, frc = 0;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        n++;
        if ((frc = fn(ud, rg__col_text(s, 0), rg__col_text(s, 1))) != 0)
            break;
    }
    sqlite3_reset(s);
    return frc ? frc : rc == SQLITE_ROW || rc == SQLITE_DONE ? n : RG_EDB;
}

static int rg_sqlite_patients_page(rg_sqlite *st, const char *after_clinic,
                                   const char *after_patient, rg_time due, int limit,
                                   int (*fn)(void *ud, const char *clinic, const char *patient),
                                   void *ud)
{
    sqlite3_stmt *s = rg__q(st, due == RG_TIME_NONE ? Q_PATIENTS_PAGE : Q_PATIENTS_DUE_PAGE);
    rg_sqlite_text(s, 1, after_clinic);
    rg_sqlite_text(s, 2, after_patient);
    sqlite3_bind_int(s, 3, limit);
    if (due != RG_TIME_NONE)
        sqlite3_bind_int64(s, 4, due);
    return rg__each_patient(s, fn, ud);
}

static int rg_sqlite_due_patients(rg_sqlite *st, const char *clinic, rg_time due, int limit,
                                  int (*fn)(void *ud, const char *clinic, const char *patient),
                                  void *ud)
{
    sqlite3_stmt *s = rg__q(st, clinic ? Q_CLINIC_DUE : Q_PATIENTS_DUE);
    sqlite3_bind_int64(s, 1, due);
    sqlite3_bind_int(s, 2, limit);
    if (clinic)
        rg_sqlite_text(s, 3, clinic);
    return rg__each_patient(s, fn, ud);
}

const char *rg_sqlite_due_sql(int one_clinic)
{
    return rg_store_sql[one_clinic ? Q_CLINIC_DUE : Q_PATIENTS_DUE];
}

const char *rg_sqlite_key_sql(int which)
{
    static const int q[] = {Q_KEY_TRANSITIONS, Q_ALERT_BY_KEY, Q_ACTIONS_OF, Q_KEY_LAST};
    return which >= 0 && which < (int)(sizeof q / sizeof q[0]) ? rg_store_sql[q[which]] : NULL;
}

/* A query answering one time (or NULL). */
static int rg__one_time(rg_sqlite *st, int q, rg_time *out)
{
    sqlite3_stmt *s = rg__q(st, q);
    int rc = sqlite3_step(s);
    *out = rc == SQLITE_ROW ? rg_sqlite_col_time(s, 0) : RG_TIME_NONE;
    sqlite3_reset(s);
    return rc == SQLITE_ROW || rc == SQLITE_DONE ? RG_OK : RG_EDB;
}

static int rg_sqlite_next_wake(rg_sqlite *st, rg_time *out)
{
    return rg__one_time(st, Q_NEXT_WAKE, out);
}

static int rg_sqlite_each_open_alert(rg_sqlite *st, const char *clinic, const char *patient,
                                     int (*fn)(void *ud, int64_t alert_id, const rg_transition *t),
                                     void *ud)
{
    sqlite3_stmt *s = rg__q(st, Q_OPEN_ALERTS);
    int rc, frc = 0;
    rg_sqlite_text(s, 1, clinic);
    rg_sqlite_text(s, 2, patient);
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        rg_transition t = {
            .at = sqlite3_column_int64(s, 1),
            .due = sqlite3_column_int64(s, 2),
            .open = 1,
            .clinic = clinic,
            .patient = patient,
            .key = rg__col_text(s, 3),
            .protocol = rg__col_text(s, 4),
            .version = rg__col_text(s, 5),
            .rule = rg__col_text(s, 6),
            .severity = rg__col_text(s, 7),
            .message = rg__col_text(s, 8),
            .seq = sqlite3_column_int64(s, 9),
            .params = rg__col_text(s, 10),
            .evidence = rg__col_text(s, 11),
            .cseq = sqlite3_column_int64(s, 12),
        };
        if ((frc = fn(ud, sqlite3_column_int64(s, 0), &t)) != 0)
            break;
    }
    return rg__each_end(s, rc, frc);
}

/* The last cseq of clinic. Inside a transaction it is read once and then
 * kept in *slot, which the caller advances after each insert (NULL when it
 * is not kept: outside a transaction, or a name too long for the cache). */
static int rg__last_cseq(rg_sqlite *st, const char *clinic, int64_t *out, int64_t **slot)
{
    int in_txn = !sqlite3_get_autocommit(st->db);
    *slot = NULL;
    for (int i = 0; in_txn && i < st->ncseq; i++)
        if (!strcmp(st->cseq[i].clinic, clinic)) {
            *slot = &st->cseq[i].cseq;
            *out = **slot;
            return RG_OK;
        }
    int rc = rg_sqlite_last_cseq(st, clinic, out);
    if (rc == RG_OK && in_txn && strlen(clinic) < sizeof st->cseq[0].clinic) {
        int n = (int)RG_COUNTOF(st->cseq);
        int i = st->ncseq < n ? st->ncseq++ : st->cseq_next++ % n;
        snprintf(st->cseq[i].clinic, sizeof st->cseq[i].clinic, "%s", clinic);
        *slot = &st->cseq[i].cseq;
        **slot = *out;
    }
    return rc;
}

/* The last transition of the clinic's key: its seq and whether it opened
 * (seq 0 when the key has none). */
static int rg__key_last(rg_sqlite *st, const char *clinic, const char *key, int64_t *seq,
                        int *open)
{
    sqlite3_stmt *s = rg__q(st, Q_KEY_LAST);
    rg_sqlite_text(s, 1, clinic);
    rg_sqlite_text(s, 2, key);
    int rc = sqlite3_step(s);
    *seq = rc == SQLITE_ROW ? sqlite3_column_int64(s, 0) : 0;
    *open = rc == SQLITE_ROW && !strcmp(rg__col_text(s, 1), "open");
    sqlite3_reset(s);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
        rg__fault(st, sqlite3_extended_errcode(st->db));
        return RG_EDB;
    }
    return RG_OK;
}

/* The open_alerts row of transition t (schema 16), the store's own check
 * that a key's openings and resolutions alternate, with no read of the
 * key's transitions: an opening adds the key's row (alert seq), which its
 * primary key refuses while the key is open; a resolution takes out the row
 * naming its alert; a re-raise needs it there. RG_OK, RG_EDB (refused
 * opening, or a failed statement), RG_ENOTFOUND (refused otherwise). */
static int rg__open_row(rg_sqlite *st, const rg_transition *t, int64_t alert, int64_t seq)
{
    int q = t->open == 1 ? Q_OPEN_ADD : t->open ? Q_OPEN_HAS : Q_OPEN_DEL;
    sqlite3_stmt *s = rg__q(st, q);
    rg_sqlite_text(s, 1, t->clinic);
    rg_sqlite_text(s, 2, t->key);
    sqlite3_bind_int64(s, 3, q == Q_OPEN_ADD ? seq : alert);
    if (q == Q_OPEN_ADD)
        rg_sqlite_text(s, 4, t->patient);
    int rc = sqlite3_step(s);
    int found = q == Q_OPEN_HAS ? rc == SQLITE_ROW : sqlite3_changes(st->db) > 0;
    sqlite3_reset(s);
    if (rc != SQLITE_DONE && rc != SQLITE_ROW) {
        rg__fault(st, sqlite3_extended_errcode(st->db));
        return RG_EDB;
    }
    if (!found)
        return q == Q_OPEN_ADD ? RG_EDB /* the key is open already */ : RG_ENOTFOUND;
    return RG_OK;
}

/* The row of transition t, numbered seq (and cseq in its clinic). */
static int rg__transition_row(rg_sqlite *st, const rg_transition *t, int64_t alert, int64_t seq,
                              int64_t cseq)
{
    sqlite3_stmt *s = rg__q(st, Q_TRANSITION);
    if (alert)
        sqlite3_bind_int64(s, 1, alert);
    sqlite3_bind_int64(s, 2, t->at);
    rg_sqlite_text(s, 3, RG_TRANSITION_STATE(t));
    rg_sqlite_text(s, 4, t->clinic);
    rg_sqlite_text(s, 5, t->patient);
    rg_sqlite_text(s, 6, t->key);
    rg_sqlite_text(s, 7, t->protocol);
    rg_sqlite_text(s, 8, t->version);
    rg_sqlite_text(s, 9, t->rule);
    rg_sqlite_text(s, 10, t->severity);
    rg_sqlite_text(s, 11, t->message);
    sqlite3_bind_int64(s, 12, t->due);
    rg_sqlite_text(s, 13, t->params ? t->params : "{}");
    rg_sqlite_text(s, 14, t->evidence ? t->evidence : "[]");
    sqlite3_bind_int64(s, 15, rg_now());
    sqlite3_bind_int64(s, 16, cseq);
    if (t->notify_at > t->at) /* never earlier; unset (0, RG_TIME_NONE) means at */
        sqlite3_bind_int64(s, 17, t->notify_at);
    if (t->cause)
        rg_sqlite_text(s, 18, t->cause);
    sqlite3_bind_int64(s, 19, seq);
    return rg__done(st, s);
}

/* One row per transition: an opening is the alert (its id is the row's
 * seq), a resolution names the alert it closes. What is refused (opening an
 * open key, resolving what is not open) is refused by open_alerts' primary
 * key (rg__open_row) before the row goes in: no read before the insert but
 * the table's last seq, once per transaction. */
static int rg_sqlite_transition(rg_sqlite *st, rg_transition *t, int64_t *alert_idp)
{
    int64_t cseq, *cseq_slot, seq = st->tseq;
    int opening = t->open == 1, in_txn = !sqlite3_get_autocommit(st->db);
    if (rg__last_cseq(st, t->clinic, &cseq, &cseq_slot))
        return RG_EDB;
    /* outside a transaction the two writes still go in together or not at all */
    if (!in_txn && sqlite3_exec(st->db, "SAVEPOINT rg_transition", NULL, NULL, NULL) != SQLITE_OK) {
        rg__fault(st, sqlite3_extended_errcode(st->db));
        return RG_EDB;
    }
    int rc = RG_OK;
    if (!in_txn || !seq) {
        sqlite3_stmt *q = rg__q(st, Q_LAST_SEQ);
        int qrc = sqlite3_step(q);
        seq = qrc == SQLITE_ROW ? sqlite3_column_int64(q, 0) : 0;
        sqlite3_reset(q);
        if (qrc != SQLITE_ROW) {
            rg__fault(st, sqlite3_extended_errcode(st->db));
            rc = RG_EDB;
        }
    }
    seq++;
    if (rc == RG_OK)
        rc = rg__open_row(st, t, opening ? 0 : *alert_idp, seq);
    if (rc == RG_OK)
        rc = rg__transition_row(st, t, opening ? 0 : *alert_idp, seq, cseq + 1);
    if (!in_txn) {
        const char *end = rc ? "ROLLBACK TO rg_transition; RELEASE rg_transition"
                             : "RELEASE rg_transition";
        if (sqlite3_exec(st->db, end, NULL, NULL, NULL) != SQLITE_OK && !rc) {
            rg__fault(st, sqlite3_extended_errcode(st->db));
            rc = RG_EDB;
        }
    }
    if (rc) {
        st->tseq = 0; /* (in a transaction, the caller rolls it back) */
        return rc;
    }
    if (cseq_slot)
        *cseq_slot = cseq + 1;
    st->tseq = in_txn ? seq : 0;
    t->seq = seq;
    if (opening)
        *alert_idp = t->seq;
    return RG_OK;
}

static int rg__each_transition(rg_sqlite *st, sqlite3_stmt *s,
                               int (*fn)(void *ud, const rg_transition *t), void *ud);

static int rg_sqlite_each_transition(rg_sqlite *st, int64_t after, int by_time,
                                     int (*fn)(void *ud, const rg_transition *t), void *ud)
{
    sqlite3_stmt *s = rg__q(st, by_time ? Q_TRANSITIONS_TIME : Q_TRANSITIONS_SEQ);
    sqlite3_bind_int64(s, 1, after);
    return rg__each_transition(st, s, fn, ud);
}

static int rg_sqlite_clinic_transitions(rg_sqlite *st, const char *clinic, int64_t after_cseq,
                                        int limit, int (*fn)(void *ud, const rg_transition *t),
                                        void *ud)
{
    sqlite3_stmt *s = rg__q(st, Q_CLINIC_TRANSITIONS);
    rg_sqlite_text(s, 1, clinic);
    sqlite3_bind_int64(s, 2, after_cseq);
    sqlite3_bind_int(s, 3, limit);
    return rg__each_transition(st, s, fn, ud);
}

static int rg__each_transition(rg_sqlite *st, sqlite3_stmt *s,
                               int (*fn)(void *ud, const rg_transition *t), void *ud)
{
    int rc, frc = 0;
    (void)st;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        rg_transition t = {
            .seq = sqlite3_column_int64(s, 0),
            .at = sqlite3_column_int64(s, 1),
            .open = !strcmp(rg__col_text(s, 2), "open")       ? 1
                    : !strcmp(rg__col_text(s, 2), "reraised") ? RG_TRANSITION_RERAISED
                                                              : 0,
            .clinic = rg__col_text(s, 3),
            .patient = rg__col_text(s, 4),
            .key = rg__col_text(s, 5),
            .protocol = rg__col_text(s, 6),
            .version = rg__col_text(s, 7),
            .rule = rg__col_text(s, 8),
            .severity = rg__col_text(s, 9),
            .message = rg__col_text(s, 10),
            .due = sqlite3_column_int64(s, 11),
            .params = rg__col_text(s, 12),
            .evidence = rg__col_text(s, 13),
            .cseq = sqlite3_column_int64(s, 14),
            .notify_at = sqlite3_column_int64(s, 15),
            .cause = (const char *)sqlite3_column_text(s, 16), /* NULL: not known */
        };
        if ((frc = fn(ud, &t)) != 0)
            break;
    }
    return rg__each_end(s, rc, frc);
}

static int rg_sqlite_eval_error(rg_sqlite *st, const char *clinic, const char *patient,
                                const char *protocol, const char *rule, rg_time at, const char *msg)
{
    sqlite3_stmt *s = rg__q(st, Q_EVAL_ERROR);
    rg_sqlite_text(s, 1, clinic);
    rg_sqlite_text(s, 2, patient);
    rg_sqlite_text(s, 3, protocol ? protocol : "");
    rg_sqlite_text(s, 4, rule ? rule : "");
    sqlite3_bind_int64(s, 5, at);
    rg_sqlite_text(s, 6, msg);
    sqlite3_bind_int64(s, 7, rg_now());
    return rg__done(st, s);
}

/* How many patients (clinic, protocol, rule) fails for, and since when. */
static int rg__failing_count(rg_sqlite *st, const char *clinic, const char *protocol,
                             const char *rule, int64_t *n, rg_time *since)
{
    sqlite3_stmt *s = rg__q(st, Q_FAILING_COUNT);
    rg_sqlite_text(s, 1, clinic);
    rg_sqlite_text(s, 2, protocol);
    rg_sqlite_text(s, 3, rule);
    int rc = sqlite3_step(s);
    if (rc == SQLITE_ROW) {
        *n = sqlite3_column_int64(s, 0);
        *since = rg_sqlite_col_time(s, 1);
    }
    sqlite3_reset(s);
    return rc == SQLITE_ROW ? RG_OK : RG_EDB;
}

static int rg_sqlite_rule_failing(rg_sqlite *st, const char *clinic, const char *patient,
                                  const char *protocol, const char *rule, rg_time at,
                                  const char *msg, int64_t *before, int64_t *after, rg_time *since)
{
    if (rg__failing_count(st, clinic, protocol, rule, before, since))
        return RG_EDB;
    sqlite3_stmt *s = rg__q(st, msg ? Q_FAILING_ADD : Q_FAILING_DEL);
    rg_sqlite_text(s, 1, clinic);
    rg_sqlite_text(s, 2, protocol);
    rg_sqlite_text(s, 3, rule);
    rg_sqlite_text(s, 4, patient);
    if (msg) {
        sqlite3_bind_int64(s, 5, at);
        rg_sqlite_text(s, 6, msg);
    }
    if (rg__done(st, s))
        return RG_EDB;
    if (!sqlite3_changes(st->db)) {
        *after = *before;
        return RG_OK;
    }
    return rg__failing_count(st, clinic, protocol, rule, after, since) ? RG_EDB : RG_OK;
}

static int rg_sqlite_each_failing(rg_sqlite *st, const char *clinic, const char *patient,
                                  int (*fn)(void *ud, const char *protocol, const char *rule),
                                  void *ud)
{
    sqlite3_stmt *s = rg__q(st, Q_FAILING_OF);
    rg_sqlite_text(s, 1, clinic);
    rg_sqlite_text(s, 2, patient);
    int rc, frc = 0;
    while (!frc && (rc = sqlite3_step(s)) == SQLITE_ROW)
        frc = fn(ud, rg__col_text(s, 0), rg__col_text(s, 1));
    if (frc)
        rc = SQLITE_DONE;
    sqlite3_reset(s);
    return frc ? frc : rc == SQLITE_DONE ? RG_OK : RG_EDB;
}

static int rg_sqlite_failing_summary(rg_sqlite *st,
                                     int (*fn)(void *ud, const char *clinic, const char *protocol,
                                               const char *rule, int64_t patients, rg_time since,
                                               const char *message),
                                     void *ud)
{
    sqlite3_stmt *s = rg__q(st, Q_FAILING_ALL);
    int rc, frc = 0;
    while (!frc && (rc = sqlite3_step(s)) == SQLITE_ROW)
        frc = fn(ud, rg__col_text(s, 0), rg__col_text(s, 1), rg__col_text(s, 2),
                 sqlite3_column_int64(s, 3), rg_sqlite_col_time(s, 4), rg__col_text(s, 5));
    if (frc)
        rc = SQLITE_DONE;
    sqlite3_reset(s);
    return frc ? frc : rc == SQLITE_DONE ? RG_OK : RG_EDB;
}

static int rg_sqlite_protocol_loaded(rg_sqlite *st, const char *clinic, const char *protocol,
                                     const char *version, const char *file, const char *hash)
{
    sqlite3_stmt *s = rg__q(st, Q_PROTOCOL_LOADED);
    rg_sqlite_text(s, 1, clinic);
    rg_sqlite_text(s, 2, protocol);
    rg_sqlite_text(s, 3, version);
    rg_sqlite_text(s, 4, file);
    rg_sqlite_text(s, 5, hash);
    sqlite3_bind_int64(s, 6, rg_now());
    return rg__done(st, s);
}

static int rg_sqlite_each_alert(rg_sqlite *st, const char *clinic, const char *patient,
                                const char *state, const char *key, int64_t after, int limit,
                                int (*fn)(void *ud, const rg_alert_view *a), void *ud)
{
    sqlite3_stmt *s = rg__q(st, key ? Q_ALERT_BY_KEY : Q_ALERTS_VIEW);
    int rc, frc = 0;
    rg_sqlite_text(s, 1, clinic);
    rg_sqlite_text(s, 2, patient);
    rg_sqlite_text(s, 3, state);
    rg_sqlite_text(s, 4, key);
    sqlite3_bind_int(s, 5, limit);
    sqlite3_bind_int64(s, 6, after);
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        rg_alert_view a = {
            .id = sqlite3_column_int64(s, 0),
            .key = rg__col_text(s, 1),
            .state = rg__col_text(s, 2),
            .patient = rg__col_text(s, 3),
            .protocol = rg__col_text(s, 4),
            .version = rg__col_text(s, 5),
            .rule = rg__col_text(s, 6),
            .severity = rg__col_text(s, 7),
            .message = rg__col_text(s, 8),
            .opened_at = sqlite3_column_int64(s, 9),
            .due = sqlite3_column_int64(s, 10),
            .resolved_at = rg_sqlite_col_time(s, 11),
            .acked_by = (const char *)sqlite3_column_text(s, 12),
            .acked_at = rg_sqlite_col_time(s, 13),
            .snoozed_until = rg_sqlite_col_time(s, 14),
            .notify_at = rg_sqlite_col_time(s, 15),
        };
        if ((frc = fn(ud, &a)) != 0)
            break;
    }
    return rg__each_end(s, rc, frc);
}

static int rg_sqlite_alert_action(rg_sqlite *st, const char *clinic, const char *key,
                                  const char *action, const char *who, const char *note,
                                  rg_time until, rg_time at)
{
    sqlite3_stmt *s;
    int64_t id;
    int open;
    if (rg__key_last(st, clinic, key, &id, &open))
        return RG_EDB;
    if (!open)
        return RG_ENOTFOUND;
    if (!strcmp(action, "ack")) {
        s = rg__q(st, Q_ALERT_ACK);
        sqlite3_bind_int64(s, 1, id);
        rg_sqlite_text(s, 2, who);
        sqlite3_bind_int64(s, 3, at);
    } else if (!strcmp(action, "snooze")) {
        s = rg__q(st, Q_ALERT_SNOOZE);
        sqlite3_bind_int64(s, 1, id);
        sqlite3_bind_int64(s, 2, until);
    } else {
        s = rg__q(st, Q_ALERT_UNSNOOZE);
        sqlite3_bind_int64(s, 1, id);
    }
    if (rg__done(st, s))
        return RG_EDB;
    s = rg__q(st, Q_ACTION_ADD);
    sqlite3_bind_int64(s, 1, id);
    rg_sqlite_text(s, 2, clinic);
    rg_sqlite_text(s, 3, key);
    rg_sqlite_text(s, 4, action);
    rg_sqlite_text(s, 5, who ? who : "");
    rg_sqlite_text(s, 6, note ? note : "");
    rg_sqlite_time(s, 7, until);
    sqlite3_bind_int64(s, 8, at);
    return rg__done(st, s);
}

static int rg_sqlite_each_action(rg_sqlite *st, const char *clinic, const char *key,
                                 int (*fn)(void *ud, const rg_alert_action *a), void *ud)
{
    sqlite3_stmt *s = rg__q(st, Q_ACTIONS_OF);
    int rc, frc = 0;
    rg_sqlite_text(s, 1, clinic);
    rg_sqlite_text(s, 2, key);
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        rg_alert_action a = {
            .action = rg__col_text(s, 0),
            .who = rg__col_text(s, 1),
            .note = rg__col_text(s, 2),
            .until = rg_sqlite_col_time(s, 3),
            .at = sqlite3_column_int64(s, 4),
        };
        if ((frc = fn(ud, &a)) != 0)
            break;
    }
    sqlite3_reset(s);
    return frc ? frc : rc == SQLITE_ROW || rc == SQLITE_DONE ? RG_OK : RG_EDB;
}

static int rg_sqlite_next_snooze(rg_sqlite *st, rg_time *out)
{
    return rg__one_time(st, Q_NEXT_SNOOZE, out);
}

/* Whether "clinic/patient" is one of skip[0..nskip). */
static int rg__skipped(const char *const *skip, int nskip, const char *clinic,
                       const char *patient)
{
    size_t lc = strlen(clinic);
    for (int i = 0; i < nskip; i++)
        if (!strncmp(skip[i], clinic, lc) && skip[i][lc] == '/' && !strcmp(skip[i] + lc + 1, patient))
            return 1;
    return 0;
}

static int rg_sqlite_next_due(rg_sqlite *st, const char *const *skip, int nskip, rg_time *wake,
                              rg_time *snooze)
{
    *snooze = RG_TIME_NONE;
    int rc;
    if (nskip <= 0) {
        rc = rg_sqlite_next_wake(st, wake);
    } else { /* the earliest not skipped: at most nskip + 1 rows read */
        sqlite3_stmt *s = rg__q(st, Q_WAKE_ORDER);
        *wake = RG_TIME_NONE;
        while ((rc = sqlite3_step(s)) == SQLITE_ROW)
            if (!rg__skipped(skip, nskip, rg__col_text(s, 0), rg__col_text(s, 1))) {
                *wake = rg_sqlite_col_time(s, 2);
                break;
            }
        sqlite3_reset(s);
        rc = rc == SQLITE_ROW || rc == SQLITE_DONE ? RG_OK : RG_EDB;
    }
    return rc ? rc : rg_sqlite_next_snooze(st, snooze);
}

static int rg_sqlite_each_due_snooze(rg_sqlite *st, rg_time now,
                                     int (*fn)(void *ud, const char *clinic, const char *key,
                                               const char *patient),
                                     void *ud, int *count)
{
    /* collect first: fn writes to the same table */
    sqlite3_stmt *s = rg__q(st, Q_DUE_SNOOZES);
    char (*rows)[3][160] = NULL;
    int n = 0, rc;
    sqlite3_bind_int64(s, 1, now);
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        void *grown = realloc(rows, (size_t)(n + 1) * sizeof *rows);
        if (!grown) {
            rc = SQLITE_NOMEM;
            break;
        }
        rows = grown;
        snprintf(rows[n][0], sizeof rows[n][0], "%s", rg__col_text(s, 1));
        snprintf(rows[n][1], sizeof rows[n][1], "%s", rg__col_text(s, 2));
        snprintf(rows[n][2], sizeof rows[n][2], "%s", rg__col_text(s, 3));
        n++;
    }
    sqlite3_reset(s);
    int out = rc == SQLITE_DONE ? RG_OK : RG_EDB;
    for (int i = 0; i < n && out == RG_OK; i++)
        out = fn(ud, rows[i][0], rows[i][1], rows[i][2]);
    free(rows);
    if (count)
        *count = n;
    return out;
}

static int rg_sqlite_wake_clinic(rg_sqlite *st, const char *clinic, rg_time at)
{
    sqlite3_stmt *s = rg__q(st, Q_WAKE_CLINIC);
    rg_sqlite_text(s, 1, clinic);
    sqlite3_bind_int64(s, 2, at);
    sqlite3_bind_int(s, 3, 0);
    return rg__done(st, s);
}

static int rg_sqlite_wake_failing(rg_sqlite *st, const char *clinic, rg_time at)
{
    sqlite3_stmt *s = rg__q(st, Q_WAKE_CLINIC);
    rg_sqlite_text(s, 1, clinic);
    sqlite3_bind_int64(s, 2, at);
    sqlite3_bind_int(s, 3, 1);
    return rg__done(st, s);
}

static int rg_sqlite_open_by_severity(rg_sqlite *st, const char *clinic,
                                      int (*fn)(void *ud, const char *clinic, const char *severity,
                                                int64_t n),
                                      void *ud)
{
    sqlite3_stmt *s = rg__q(st, Q_OPEN_BY_SEVERITY);
    rg_sqlite_text(s, 1, clinic);
    int rc, frc = 0;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW)
        if ((frc = fn(ud, rg__col_text(s, 0), rg__col_text(s, 1),
                      sqlite3_column_int64(s, 2))) != 0)
            break;
    sqlite3_reset(s);
    return frc ? frc : rc == SQLITE_ROW || rc == SQLITE_DONE ? RG_OK : RG_EDB;
}

static int rg_sqlite_last_cseq(rg_sqlite *st, const char *clinic, int64_t *out)
{
    sqlite3_stmt *s = rg__q(st, Q_LAST_CSEQ);
    rg_sqlite_text(s, 1, clinic);
    int rc = sqlite3_step(s);
    *out = rc == SQLITE_ROW ? sqlite3_column_int64(s, 0) : 0;
    sqlite3_reset(s);
    return rc == SQLITE_ROW ? RG_OK : RG_EDB;
}

static int rg_sqlite_get_event(rg_sqlite *st, const char *clinic, const char *id,
                               int (*fn)(void *ud, const rg_stored_event *e), void *ud)
{
    sqlite3_stmt *s = rg__q(st, Q_EVENT_GET);
    rg_sqlite_text(s, 1, clinic);
    rg_sqlite_text(s, 2, id);
    int rc = sqlite3_step(s), out = RG_ENOTFOUND;
    if (rc == SQLITE_ROW) {
        rg_stored_event e;
        rg__col_event(s, &e);
        if (!e.retracted)
            out = fn(ud, &e);
    } else if (rc != SQLITE_DONE) {
        out = RG_EDB;
    }
    sqlite3_reset(s);
    return out;
}

static int rg_sqlite_each_version(rg_sqlite *st, const char *clinic, const char *id,
                                  int (*fn)(void *ud, const rg_stored_event *e), void *ud)
{
    /* the same loop as a patient's events: ?1 clinic, ?2 the id */
    return rg__each_event(rg__q(st, Q_EVENT_VERSIONS), clinic, id, -1, fn, ud);
}

static int rg_sqlite_each_correction(rg_sqlite *st, const char *clinic, const char *patient,
                                     rg_time after, rg_time upto,
                                     int (*fn)(void *ud, const rg_stored_event *c,
                                               const rg_stored_event *replaced),
                                     void *ud)
{
    sqlite3_stmt *s = rg__q(st, Q_CORRECTIONS);
    int rc, frc = 0;
    rg_sqlite_text(s, 1, clinic);
    rg_sqlite_text(s, 2, patient);
    sqlite3_bind_int64(s, 3, after);
    sqlite3_bind_int64(s, 4, upto);
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        rg_stored_event c, r;
        rg__col_event_at(s, 0, 1, &c);
        rg__col_event_at(s, 11, 1, &r);
        if ((frc = fn(ud, &c, &r)) != 0)
            break;
    }
    return rg__each_end(s, rc, frc);
}

static int rg_sqlite_key_transitions(rg_sqlite *st, const char *clinic, const char *key,
                                     int (*fn)(void *ud, const rg_transition *t), void *ud)
{
    sqlite3_stmt *s = rg__q(st, Q_KEY_TRANSITIONS);
    rg_sqlite_text(s, 1, clinic);
    rg_sqlite_text(s, 2, key);
    return rg__each_transition(st, s, fn, ud);
}

static void rg__col_row(sqlite3_stmt *s, rg_event_row *r)
{
    r->seq = sqlite3_column_int64(s, 0);
    r->version = sqlite3_column_int64(s, 1);
    r->at = sqlite3_column_int64(s, 2);
    r->clinic = rg__col_text(s, 3);
    r->id = rg__col_text(s, 4);
    r->patient = rg__col_text(s, 5);
    r->type = rg__col_text(s, 6);
    r->data = (const char *)sqlite3_column_text(s, 7);
    r->body = rg__col_text(s, 8);
    r->digest = (const char *)sqlite3_column_text(s, 9);
    r->fields = sqlite3_column_blob(s, 10);
    r->nfields = (size_t)sqlite3_column_bytes(s, 10);
    r->status = (const char *)sqlite3_column_text(s, 11);
    r->corrected_at = rg_sqlite_col_time(s, 12);
    r->corrected_by = (const char *)sqlite3_column_text(s, 13);
}

static int rg_sqlite_event_rows(rg_sqlite *st, const char *after_clinic, const char *after_patient,
                                rg_time after_at, int64_t after_seq, int limit,
                                int (*fn)(void *ud, const rg_event_row *r), void *ud)
{
    sqlite3_stmt *s = rg__q(st, Q_EVENT_ROWS);
    int rc, frc = 0, n = 0;
    rg_sqlite_text(s, 1, after_clinic);
    sqlite3_bind_int64(s, 2, after_seq);
    sqlite3_bind_int(s, 3, limit);
    rg_sqlite_text(s, 4, after_patient);
    sqlite3_bind_int64(s, 5, after_at);
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        rg_event_row r;
        rg__col_row(s, &r);
        n++;
        if ((frc = fn(ud, &r)) != 0)
            break;
    }
    rc = rg__each_end(s, rc, frc);
    return rc ? rc : n;
}

static int rg_sqlite_event_rows_of(rg_sqlite *st, const char *clinic, const char *id,
                                   int (*fn)(void *ud, const rg_event_row *r), void *ud)
{
    sqlite3_stmt *s = rg__q(st, Q_EVENT_ROWS_OF);
    int rc, frc = 0;
    rg_sqlite_text(s, 1, clinic);
    rg_sqlite_text(s, 2, id);
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        rg_event_row r;
        rg__col_row(s, &r);
        if ((frc = fn(ud, &r)) != 0)
            break;
    }
    return rg__each_end(s, rc, frc);
}

static int rg_sqlite_key_clinics(rg_sqlite *st, const char *key,
                                 int (*fn)(void *ud, const char *clinic), void *ud)
{
    sqlite3_stmt *s = rg__q(st, Q_KEY_CLINICS);
    int rc, frc = 0;
    rg_sqlite_text(s, 1, key);
    while ((rc = sqlite3_step(s)) == SQLITE_ROW)
        if ((frc = fn(ud, rg__col_text(s, 0))) != 0)
            break;
    return rg__each_end(s, rc, frc);
}

static int rg_sqlite_webhook_get(rg_sqlite *st, const char *clinic, int64_t *delivered,
                                 int *attempts)
{
    sqlite3_stmt *s = rg__q(st, Q_HOOK_GET);
    rg_sqlite_text(s, 1, clinic);
    int rc = sqlite3_step(s);
    *delivered = rc == SQLITE_ROW ? sqlite3_column_int64(s, 0) : 0;
    *attempts = rc == SQLITE_ROW ? sqlite3_column_int(s, 1) : 0;
    sqlite3_reset(s);
    return rc == SQLITE_ROW || rc == SQLITE_DONE ? RG_OK : RG_EDB;
}

static int rg_sqlite_webhook_delivered(rg_sqlite *st, const char *clinic, int64_t cseq)
{
    sqlite3_stmt *s = rg__q(st, Q_HOOK_DELIVERED);
    rg_sqlite_text(s, 1, clinic);
    sqlite3_bind_int64(s, 2, cseq);
    sqlite3_bind_int64(s, 3, rg_now());
    return rg__done(st, s);
}

static int rg_sqlite_webhook_next(rg_sqlite *st, const char *clinic, rg_time now,
                                  int (*fn)(void *ud, const rg_transition *t), void *ud,
                                  rg_time *wait)
{
    int64_t delivered;
    int attempts, rc;
    *wait = RG_TIME_NONE;
    if ((rc = rg_sqlite_webhook_get(st, clinic, &delivered, &attempts)))
        return rc;
    sqlite3_stmt *s = rg__q(st, Q_HOOK_WAIT);
    rg_sqlite_text(s, 1, clinic);
    sqlite3_bind_int64(s, 2, delivered);
    sqlite3_bind_int64(s, 3, now);
    rc = sqlite3_step(s);
    if (rc == SQLITE_ROW && sqlite3_column_type(s, 0) != SQLITE_NULL)
        *wait = sqlite3_column_int64(s, 0);
    sqlite3_reset(s);
    if (rc != SQLITE_ROW)
        return RG_EDB;
    s = rg__q(st, Q_HOOK_NEXT);
    rg_sqlite_text(s, 1, clinic);
    sqlite3_bind_int64(s, 2, delivered);
    sqlite3_bind_int64(s, 3, now);
    return rg__each_transition(st, s, fn, ud);
}

static int rg_sqlite_webhook_sent(rg_sqlite *st, const char *clinic, int64_t cseq)
{
    int64_t delivered;
    int attempts, rc;
    if ((rc = rg_sqlite_webhook_get(st, clinic, &delivered, &attempts)))
        return rc;
    if (cseq != delivered + 1) { /* it overtook one that waits for an opening */
        sqlite3_stmt *s = rg__q(st, Q_HOOK_AHEAD_ADD);
        rg_sqlite_text(s, 1, clinic);
        sqlite3_bind_int64(s, 2, cseq);
        return rg__done(st, s) ? RG_EDB : rg_sqlite_webhook_delivered(st, clinic, delivered);
    }
    /* the cursor moves on over what was sent ahead of it */
    for (;;) {
        sqlite3_stmt *s = rg__q(st, Q_HOOK_AHEAD_TAKE);
        rg_sqlite_text(s, 1, clinic);
        sqlite3_bind_int64(s, 2, cseq + 1);
        if (rg__done(st, s))
            return RG_EDB;
        if (sqlite3_changes(st->db) == 0)
            break;
        cseq++;
    }
    return rg_sqlite_webhook_delivered(st, clinic, cseq);
}

static int rg_sqlite_webhook_failed(rg_sqlite *st, const char *clinic, const char *error)
{
    sqlite3_stmt *s = rg__q(st, Q_HOOK_FAILED);
    rg_sqlite_text(s, 1, clinic);
    rg_sqlite_text(s, 2, error);
    sqlite3_bind_int64(s, 3, rg_now());
    return rg__done(st, s);
}

/* ---- the audit trail (the chain itself is audit.c's) ---------------------------------- */

static int rg_sqlite_audit_chain(rg_sqlite *st, int lock, rg_audit_chain *c)
{
    (void)lock; /* BEGIN IMMEDIATE already holds the file's write lock */
    sqlite3_stmt *s = rg__q(st, Q_AUDIT_CHAIN);
    int rc = sqlite3_step(s);
    if (rc == SQLITE_ROW) {
        c->base_seq = sqlite3_column_int64(s, 0);
        snprintf(c->base_hash, sizeof c->base_hash, "%s", rg__col_text(s, 1));
        c->tip_seq = sqlite3_column_int64(s, 2);
        snprintf(c->tip_hash, sizeof c->tip_hash, "%s", rg__col_text(s, 3));
        c->archived_at = rg_sqlite_col_time(s, 4);
    }
    sqlite3_reset(s);
    return rc == SQLITE_ROW ? RG_OK : RG_EDB;
}

static int rg_sqlite_audit_insert(rg_sqlite *st, const rg_audit_entry *e)
{
    sqlite3_stmt *s = rg__q(st, Q_AUDIT_INSERT);
    sqlite3_bind_int64(s, 1, e->seq);
    sqlite3_bind_int64(s, 2, e->at);
    const char *v[] = {e->who, e->role, e->address, e->clinic, e->patients, e->route, e->outcome,
                       e->prev, e->hash};
    for (int i = 0; i < 9; i++)
        rg_sqlite_text(s, 3 + i, v[i] ? v[i] : "");
    if (rg__done(st, s))
        return RG_EDB;
    s = rg__q(st, Q_AUDIT_TIP);
    sqlite3_bind_int64(s, 1, e->seq);
    rg_sqlite_text(s, 2, e->hash);
    return rg__done(st, s);
}

static int rg_sqlite_audit_each(rg_sqlite *st, const rg_audit_filter *f,
                                int (*fn)(void *ud, const rg_audit_entry *e), void *ud)
{
    sqlite3_stmt *s = rg__q(st, Q_AUDIT_EACH);
    sqlite3_bind_int64(s, 1, f->after);
    rg_sqlite_text(s, 2, f->clinic);
    rg_sqlite_text(s, 3, f->who);
    rg_sqlite_time(s, 4, f->since);
    rg_sqlite_text(s, 5, f->patient);
    sqlite3_bind_int64(s, 6, f->limit > 0 ? f->limit : INT64_MAX);
    int rc = SQLITE_DONE, frc = 0;
    while (!frc && (rc = sqlite3_step(s)) == SQLITE_ROW) {
        rg_audit_entry e = {
            .seq = sqlite3_column_int64(s, 0), .at = sqlite3_column_int64(s, 1),
            .who = rg__col_text(s, 2), .role = rg__col_text(s, 3),
            .address = rg__col_text(s, 4), .clinic = rg__col_text(s, 5),
            .patients = rg__col_text(s, 6), .route = rg__col_text(s, 7),
            .outcome = rg__col_text(s, 8), .prev = rg__col_text(s, 9), .hash = rg__col_text(s, 10)};
        frc = fn(ud, &e);
    }
    return rg__each_end(s, frc ? SQLITE_DONE : rc, frc);
}

static int rg_sqlite_audit_archive(rg_sqlite *st, rg_time before, int64_t *n)
{
    rg_audit_chain c;
    char hash[65];
    *n = 0;
    if (rg_sqlite_audit_chain(st, 1, &c))
        return RG_EDB;
    sqlite3_stmt *s = rg__q(st, Q_AUDIT_LAST_BEFORE);
    sqlite3_bind_int64(s, 1, before);
    int rc = sqlite3_step(s);
    int64_t last = rc == SQLITE_ROW ? sqlite3_column_int64(s, 0) : 0;
    snprintf(hash, sizeof hash, "%s", rc == SQLITE_ROW ? rg__col_text(s, 1) : "");
    sqlite3_reset(s);
    if (rc != SQLITE_ROW)
        return rc == SQLITE_DONE ? RG_OK : RG_EDB;
    s = rg__q(st, Q_AUDIT_DELETE);
    sqlite3_bind_int64(s, 1, last);
    if (rg__done(st, s))
        return RG_EDB;
    *n = sqlite3_changes(st->db);
    s = rg__q(st, Q_AUDIT_BASE);
    sqlite3_bind_int64(s, 1, last);
    rg_sqlite_text(s, 2, hash);
    sqlite3_bind_int64(s, 3, rg_now());
    return rg__done(st, s);
}

/* ---- other writers: the file's one service learns of them by the holder's
 * signal (holder.h: `regimen ingest` beside it sends it after each commit),
 * and asks here whether anything changed: PRAGMA data_version moves when
 * another connection committed, never for this one's own commits. */
static int rg_sqlite_changes_fd(rg_sqlite *st, int *fd)
{
    *fd = -1;
    /* from now on (should the file not say, the first rg_store_changed
     * reports news: a look at the store too many, nothing missed) */
    rg_sqlite_data_version(st, &st->data_version);
    return RG_OK;
}

static int rg_sqlite_changed(rg_sqlite *st, void (*fn)(void *ud, const char *clinic), void *ud)
{
    int64_t v = 0;
    int rc = rg_sqlite_data_version(st, &v);
    if (rc == RG_OK && v == st->data_version)
        return 0;
    st->data_version = v;
    if (rc == RG_OK && fn)
        fn(ud, NULL); /* (which clinic, the file does not say) */
    return rc ? rc : 1;
}

/* ---- many workers: a SQLite file has one service (holder.h), which holds
 * every clinic. */
static int rg_sqlite_lease(rg_sqlite *st, const char *clinic, int *held)
{
    (void)st, (void)clinic;
    *held = 1;
    return RG_OK;
}

static int rg_sqlite_unlease(rg_sqlite *st, const char *clinic)
{
    (void)st, (void)clinic;
    return RG_OK;
}

static int rg_sqlite_workers(rg_sqlite *st, int *n)
{
    (void)st;
    *n = 1;
    return RG_OK;
}

static void rg_sqlite_lease_only(rg_sqlite *st, int on) { (void)st, (void)on; }

static int rg_sqlite_hold(rg_sqlite *st, int alone, int *ok)
{
    (void)st, (void)alone;
    *ok = 1; /* holder.h locks the file */
    return RG_OK;
}

/* backend.h's run_sql: $1, $2, ... are SQLite's numbered parameters too. */
static int rg_sqlite_run_sql(rg_sqlite *st, const char *sql, const rg_store_arg *args, int nargs,
                             int (*fn)(void *ud, const char *const *cols, int ncols), void *ud,
                             int64_t *changed)
{
    sqlite3_stmt *s = NULL;
    if (sqlite3_prepare_v2(st->db, sql, -1, &s, NULL) != SQLITE_OK)
        return RG_EDB;
    for (int i = 0; i < nargs; i++) {
        if (args[i].is_int)
            sqlite3_bind_int64(s, i + 1, args[i].i);
        else if (args[i].v)
            sqlite3_bind_text(s, i + 1, args[i].v, -1, SQLITE_TRANSIENT);
        else
            sqlite3_bind_null(s, i + 1);
    }
    int rc = RG_OK, src;
    while (!rc && (src = sqlite3_step(s)) == SQLITE_ROW) {
        const char *cols[RG_STORE_MAX_ARGS];
        int nc = sqlite3_column_count(s);
        for (int c = 0; c < nc && c < RG_STORE_MAX_ARGS; c++)
            cols[c] = (const char *)sqlite3_column_text(s, c);
        rc = fn ? fn(ud, cols, nc) : RG_OK;
    }
    if (!rc && src != SQLITE_DONE)
        rc = RG_EDB;
    if (!rc && changed)
        *changed = sqlite3_changes(st->db);
    sqlite3_finalize(s);
    return rc;
}

/* Every path that is not another backend's is a SQLite file (or :memory:). */
static int rg_sqlite_claims(const char *path)
{
    (void)path;
    return 1;
}

/* (issue 27, back-pressure: a bounded count, so its cost stays small however
 * far behind the clinic's evaluation is) */
static int rg_sqlite_due_count(rg_backend *st, const char *clinic, rg_time now, int max, int *n)
{
    sqlite3_stmt *s = NULL;
    if (sqlite3_prepare_v2(st->db, "SELECT count(*) FROM (SELECT 1 FROM patients WHERE"
                           " clinic = ?1 AND next_wake <= ?2 LIMIT ?3)", -1, &s, NULL) != SQLITE_OK)
        return RG_EDB;
    sqlite3_bind_text(s, 1, clinic, -1, SQLITE_STATIC);
    sqlite3_bind_int64(s, 2, now);
    sqlite3_bind_int64(s, 3, (sqlite3_int64)max + 1);
    int rc = sqlite3_step(s) == SQLITE_ROW ? RG_OK : RG_EDB;
    if (rc == RG_OK)
        *n = sqlite3_column_int(s, 0);
    sqlite3_finalize(s);
    return rc;
}

/* SQLite's reads are function calls and its writes are not sent anywhere:
 * nothing to read ahead, nothing to send together, nothing to count. */
static int rg_sqlite_prefetch(rg_backend *st, const char *clinic, const char *const *patients,
                              const int64_t *after, int n)
{
    (void)st, (void)clinic, (void)patients, (void)after, (void)n;
    return 0;
}
static void rg_sqlite_prefetch_end(rg_backend *st) { (void)st; }
static void rg_sqlite_defer_writes(rg_backend *st, int on) { (void)st, (void)on; }
static void rg_sqlite_db_counts(uint64_t *statements, uint64_t *round_trips)
{
    *statements = *round_trips = 0;
}

int rg_sqlite_copy(rg_sqlite *src, rg_sqlite *dst)
{
    sqlite3_backup *b = sqlite3_backup_init(dst->db, "main", src->db, "main");
    if (!b) {
        rg__fault(dst, sqlite3_extended_errcode(dst->db));
        return RG_EDB;
    }
    int rc = sqlite3_backup_step(b, -1);
    int frc = sqlite3_backup_finish(b);
    if (rc != SQLITE_DONE || frc != SQLITE_OK) {
        rg__fault(dst, sqlite3_extended_errcode(dst->db));
        return RG_EDB;
    }
    /* what this connection kept of its own database is of the one replaced */
    dst->ncseq = dst->cseq_next = 0;
    dst->tseq = dst->evseq = 0;
    dst->evseq_dirty = 0;
    return RG_OK;
}

const rg_store_ops rg_sqlite_ops = {
    .name = "sqlite",
    .server = 0,
    .claims = rg_sqlite_claims,
    .open = rg_sqlite_open,
    .close = rg_sqlite_close,
    .errmsg = rg_sqlite_errmsg,
    .fault = rg_sqlite_fault,
    .wal_state = rg_sqlite_wal_state,
    .begin = rg_sqlite_begin,
    .begin_read = rg_sqlite_begin_read,
    .rollbacks = rg_sqlite_rollbacks,
    .commit = rg_sqlite_commit,
    .rollback = rg_sqlite_rollback,
    .on_commit = rg_sqlite_on_commit,
    .changes_fd = rg_sqlite_changes_fd,
    .changed = rg_sqlite_changed,
    .put_event = rg_sqlite_put_event,
    .put_reason = rg_sqlite_put_reason,
    .put_field = rg_sqlite_put_field,
    .put_events = rg_sqlite_put_events,
    .reject = rg_sqlite_reject,
    .each_rejected = rg_sqlite_each_rejected,
    .each_event = rg_sqlite_each_event,
    .each_event_after = rg_sqlite_each_event_after,
    .each_event_data = rg_sqlite_each_event_data,
    .get_event = rg_sqlite_get_event,
    .each_version = rg_sqlite_each_version,
    .each_correction = rg_sqlite_each_correction,
    .event_rows = rg_sqlite_event_rows,
    .event_rows_of = rg_sqlite_event_rows_of,
    .each_event_body = rg_sqlite_each_event_body,
    .each_event_body_after = rg_sqlite_each_event_body_after,
    .patient_get = rg_sqlite_patient_get,
    .patient_put = rg_sqlite_patient_put,
    .patients_page = rg_sqlite_patients_page,
    .due_patients = rg_sqlite_due_patients,
    .next_wake = rg_sqlite_next_wake,
    .wake_clinic = rg_sqlite_wake_clinic,
    .wake_failing = rg_sqlite_wake_failing,
    .each_open_alert = rg_sqlite_each_open_alert,
    .transition = rg_sqlite_transition,
    .each_transition = rg_sqlite_each_transition,
    .clinic_transitions = rg_sqlite_clinic_transitions,
    .key_transitions = rg_sqlite_key_transitions,
    .key_clinics = rg_sqlite_key_clinics,
    .last_cseq = rg_sqlite_last_cseq,
    .each_alert = rg_sqlite_each_alert,
    .alert_action = rg_sqlite_alert_action,
    .each_action = rg_sqlite_each_action,
    .next_snooze = rg_sqlite_next_snooze,
    .next_due = rg_sqlite_next_due,
    .each_due_snooze = rg_sqlite_each_due_snooze,
    .open_by_severity = rg_sqlite_open_by_severity,
    .webhook_get = rg_sqlite_webhook_get,
    .webhook_delivered = rg_sqlite_webhook_delivered,
    .webhook_failed = rg_sqlite_webhook_failed,
    .webhook_next = rg_sqlite_webhook_next,
    .webhook_sent = rg_sqlite_webhook_sent,
    .eval_error = rg_sqlite_eval_error,
    .rule_failing = rg_sqlite_rule_failing,
    .each_failing = rg_sqlite_each_failing,
    .failing_summary = rg_sqlite_failing_summary,
    .protocol_loaded = rg_sqlite_protocol_loaded,
    .audit_chain = rg_sqlite_audit_chain,
    .audit_insert = rg_sqlite_audit_insert,
    .audit_each = rg_sqlite_audit_each,
    .audit_archive = rg_sqlite_audit_archive,
    .protoset_add = rg_sqlite_protoset_add,
    .protoset_each = rg_sqlite_protoset_each,
    .protoset_files = rg_sqlite_protoset_files,
    .protoset_update = rg_sqlite_protoset_update,
    .protoset_log = rg_sqlite_protoset_log,
    .protoset_each_log = rg_sqlite_protoset_each_log,
    .shadow_put = rg_sqlite_shadow_put,
    .shadow_each = rg_sqlite_shadow_each,
    .lease = rg_sqlite_lease,
    .unlease = rg_sqlite_unlease,
    .workers = rg_sqlite_workers,
    .lease_only = rg_sqlite_lease_only,
    .hold = rg_sqlite_hold,
    .run_sql = rg_sqlite_run_sql,
    .prefetch = rg_sqlite_prefetch,
    .prefetch_end = rg_sqlite_prefetch_end,
    .defer_writes = rg_sqlite_defer_writes,
    .due_count = rg_sqlite_due_count,
    .db_counts = rg_sqlite_db_counts,
};
