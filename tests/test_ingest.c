/*
 * test_ingest.c - Criterion tests for runtime/store/ingest.c against a real
 * SQLite file in a fresh temporary directory: batched ingest of JSON Lines
 * files with exact counts and line numbers, rejected lines kept with their
 * field, and the reader pipeline (order, lines and batches kept). Moved
 * whole out of test_store.c; the fixture is store_fixture.h.
 */
#include "core/fields.h"
#include "store/ingest.h"
#include "store/sqlite.h"
#include "store/store.h"

#include <criterion/criterion.h>
#include <sqlite3.h>

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "store_fixture.h"

TestSuite(ingest, .init = setup, .fini = teardown);

/* ---- ingest ------------------------------------------------------------- */

typedef struct seen_rej {
    long line[16];
    char field[16][RG_FIELD_MAX];
    int n;
} seen_rej;

static void on_reject(void *ud, const char *source, long line, const char *field,
                      const char *reason)
{
    seen_rej *s = ud;
    cr_assert_str_eq(source, "day1.jsonl");
    cr_assert_not_null(reason);
    cr_assert_lt(s->n, 16);
    s->line[s->n] = line;
    snprintf(s->field[s->n], RG_FIELD_MAX, "%s", field);
    s->n++;
}

#define L_GOOD1                                                                               \
    "{\"id\":\"ev-1\",\"clinic\":\"north\",\"patient\":\"p-17\",\"type\":\"infusion\","      \
    "\"at\":\"2026-03-02T14:05:00-05:00\",\"data\":{\"dose_mg_per_kg\":0.5}}"
#define L_DUP1                                                                                \
    "{\"data\":{\"dose_mg_per_kg\":0.5},\"at\":\"2026-03-02T14:05:00-05:00\","                 \
    "\"type\":\"infusion\",\"patient\":\"p-17\",\"clinic\":\"north\",\"id\":\"ev-1\"}"
#define L_CONFLICT1                                                                           \
    "{\"id\":\"ev-1\",\"clinic\":\"north\",\"patient\":\"p-17\",\"type\":\"infusion\","      \
    "\"at\":\"2026-03-02T14:05:00-05:00\",\"data\":{\"dose_mg_per_kg\":5}}"
#define L_GOOD2                                                                               \
    "{\"id\":\"ev-2\",\"clinic\":\"north\",\"patient\":\"p-17\",\"type\":\"vitals\","        \
    "\"at\":\"2026-03-02T15:05:00-05:00\"}"
#define L_MISSING "{\"id\":\"ev-3\",\"patient\":\"p-17\",\"type\":\"vitals\",\"at\":\"2026-03-02T15:05:00Z\"}"
#define L_GOOD3                                                                               \
    "{\"id\":\"ev-4\",\"clinic\":\"north\",\"patient\":\"p-18\",\"type\":\"vitals\","        \
    "\"at\":\"2026-03-02T16:00:00Z\"}"
#define L_BADTYPE                                                                             \
    "{\"id\":\"ev-5\",\"clinic\":\"north\",\"patient\":\"p-18\",\"type\":\"Vitals\","        \
    "\"at\":\"2026-03-02T16:00:00Z\"}"

Test(ingest, counts_and_rejected_lines)
{
    char path[600];
    snprintf(path, sizeof path, "%s/day1.jsonl", tmpdir);
    write_file(path, L_GOOD1 "\n"     /* 1 stored */
                     "\n"             /* 2 blank */
                     L_DUP1 "\n"      /* 3 duplicate */
                     "not json\n"     /* 4 rejected */
                     L_CONFLICT1 "\n" /* 5 conflict */
                     "   \t \n"       /* 6 blank */
                     L_GOOD2 "\r\n"   /* 7 stored, CRLF */
                     L_MISSING "\n"   /* 8 rejected: clinic missing */
                     "\r\n"           /* 9 blank */
                     L_GOOD3 "\n"     /* 10 stored */
                     L_BADTYPE);      /* 11 rejected, no final newline */
    FILE *f = fopen(path, "r");
    cr_assert_not_null(f);
    rg_ingest_counts c = {0};
    seen_rej seen;
    memset(&seen, 0, sizeof seen);
    char err[512] = "";
    int rc = rg_ingest_file(st, f, "day1.jsonl", &c, on_reject, &seen, err, sizeof err);
    fclose(f);
    cr_assert_eq(rc, RG_OK, "%s", err);
    cr_assert_eq(c.stored, 3);
    cr_assert_eq(c.duplicates, 1);
    cr_assert_eq(c.conflicts, 1);
    cr_assert_eq(c.rejected, 3);

    got_rejs *g = rejected();
    cr_assert_eq(g->n, 4);
    static const long want_line[] = {4, 5, 8, 11};
    static const char *const want_field[] = {"", "id", "clinic", "type"};
    static const char *const want_reason[] = {"not valid JSON", "different content",
                                              "required field 'clinic' is missing",
                                              "lower-case word"};
    static const char *const want_raw[] = {"not json", L_CONFLICT1, L_MISSING, L_BADTYPE};
    for (int i = 0; i < 4; i++) {
        cr_assert_eq(g->r[i].line, want_line[i], "rejected %d: line %ld", i, g->r[i].line);
        cr_assert_str_eq(g->r[i].field, want_field[i], "rejected %d", i);
        cr_assert_not_null(strstr(g->r[i].reason, want_reason[i]), "rejected %d: %s", i,
                           g->r[i].reason);
        cr_assert_str_eq(g->r[i].raw, want_raw[i], "rejected %d", i);
        cr_assert_str_eq(g->r[i].source, "day1.jsonl");
    }
    /* the callback saw the same lines */
    cr_assert_eq(seen.n, 4);
    for (int i = 0; i < 4; i++) {
        cr_assert_eq(seen.line[i], want_line[i]);
        cr_assert_str_eq(seen.field[i], want_field[i]);
    }
    /* the conflict did not overwrite */
    got_events *e = events_of("north", "p-17");
    cr_assert_eq(e->n, 2);
    cr_assert_str_eq(e->e[0].id, "ev-1");
    cr_assert_str_eq(e->e[0].data, "{\"dose_mg_per_kg\":0.5}");
    cr_assert_str_eq(e->e[1].id, "ev-2");
    cr_assert_eq(events_of("north", "p-18")->n, 1);

    /* ingesting the same file again: everything already there */
    f = fopen(path, "r");
    rg_ingest_counts c2 = {0};
    cr_assert_eq(rg_ingest_file(st, f, "day1.jsonl", &c2, NULL, NULL, err, sizeof err), RG_OK,
                 "%s", err);
    fclose(f);
    cr_assert_eq(c2.stored, 0);
    cr_assert_eq(c2.duplicates, 4); /* lines 1, 3, 7, 10 */
    cr_assert_eq(c2.conflicts, 1);
    cr_assert_eq(c2.rejected, 3);
    cr_assert_eq(peek_int("SELECT count(*) FROM events"), 3);
    cr_assert_eq(peek_int("SELECT count(*) FROM rejected"), 8);
}

Test(ingest, counts_accumulate_into_callers_totals)
{
    char path[600];
    snprintf(path, sizeof path, "%s/x.jsonl", tmpdir);
    write_file(path, L_GOOD1 "\n" L_GOOD2 "\n");
    FILE *f = fopen(path, "r");
    rg_ingest_counts c = {.stored = 10, .duplicates = 20, .conflicts = 30, .rejected = 40};
    char err[256];
    cr_assert_eq(rg_ingest_file(st, f, "x", &c, NULL, NULL, err, sizeof err), RG_OK, "%s", err);
    fclose(f);
    cr_assert_eq(c.stored, 12);
    cr_assert_eq(c.duplicates, 20);
    cr_assert_eq(c.conflicts, 30);
    cr_assert_eq(c.rejected, 40);
}

Test(ingest, empty_file)
{
    FILE *f = fmemopen((void *)"", 0, "r");
    cr_assert_not_null(f);
    rg_ingest_counts c = {0};
    char err[256];
    cr_assert_eq(rg_ingest_file(st, f, "empty", &c, NULL, NULL, err, sizeof err), RG_OK, "%s",
                 err);
    fclose(f);
    cr_assert_eq(c.stored + c.duplicates + c.conflicts + c.rejected, 0);
    cr_assert_eq(peek_int("SELECT count(*) FROM events"), 0);
}

/* The reader started before the store is opened (rg_ingest_start, as a new
 * database's ingest does while it makes the schema): the file read ahead,
 * more lines than the reader may hold, then stored with the outcomes of
 * rg_ingest_file, a repeated id of the same file included; and a reader
 * stopped with no store (it could not be opened) ends and frees its lines. */
Test(ingest, reader_started_before_the_store_opens)
{
    const long N = 6000, REPEAT = 5001; /* line REPEAT repeats line 2, then changed */
    char path[600];
    snprintf(path, sizeof path, "%s/ahead.jsonl", tmpdir);
    FILE *w = fopen(path, "w");
    cr_assert_not_null(w);
    for (long i = 1; i <= N; i++)
        fprintf(w, "{\"id\":\"ev-%ld\",\"clinic\":\"north\",\"patient\":\"p-%ld\","
                "\"type\":\"vitals\",\"at\":\"2026-03-02T00:00:00Z\",\"data\":{\"i\":%ld}}\n",
                i == REPEAT ? 2 : i, (i == REPEAT ? 2 : i) % 50, i == REPEAT ? -2 : i);
    cr_assert_eq(fclose(w), 0);

    close_store(); /* the fixture's store: opened again once reading runs */
    FILE *f = fopen(path, "r");
    cr_assert_not_null(f);
    rg_ingest_reader *r = rg_ingest_start(f);
    cr_assert_not_null(r);
    usleep(100000); /* it reads ahead meanwhile, up to what it may hold */
    open_store();
    rg_ingest_counts c = {0};
    seen_rej seen;
    memset(&seen, 0, sizeof seen);
    char err[512] = "";
    cr_assert_eq(rg_ingest_finish(st, r, "day1.jsonl", &c, on_reject, &seen, err, sizeof err),
                 RG_OK, "%s", err);
    fclose(f);
    cr_assert_eq(c.stored, N - 1);
    cr_assert_eq(c.conflicts, 1);
    cr_assert_eq(c.duplicates + c.rejected, 0);
    cr_assert_eq(seen.n, 1);
    cr_assert_eq(seen.line[0], REPEAT, "the repeated id is told with its own line");
    cr_assert_str_eq(seen.field[0], "id");
    cr_assert_eq(peek_int("SELECT count(*) FROM events"), N - 1);
    cr_assert_eq(peek_int("SELECT count(*) FROM rejected WHERE line = 5001"), 1);

    f = fopen(path, "r");
    cr_assert_not_null(f);
    r = rg_ingest_start(f);
    cr_assert_not_null(r);
    usleep(50000);
    rg_ingest_stop(r); /* blocked with a full queue: it ends and frees it */
    fclose(f);
    cr_assert_eq(peek_int("SELECT count(*) FROM events"), N - 1, "nothing more was stored");
}

Test(ingest, file_bigger_than_one_batch)
{
    const long N = 25000, BAD = 15001, DUP = 24001;
    char path[600];
    snprintf(path, sizeof path, "%s/big.jsonl", tmpdir);
    FILE *w = fopen(path, "w");
    cr_assert_not_null(w);
    for (long i = 1; i <= N; i++) {
        if (i == BAD) {
            fprintf(w, "{\"id\":\"bad\",\"clinic\":\"north\"}\n");
            continue;
        }
        if (i == DUP) { /* a copy of line 2 */
            fprintf(w,
                    "{\"id\":\"ev-%ld\",\"clinic\":\"north\",\"patient\":\"p-%ld\","
                    "\"type\":\"vitals\",\"at\":\"2026-03-02T00:00:02Z\",\"data\":{\"i\":%ld}}\n",
                    2L, 2L % 50, 2L);
            continue;
        }
        long s = i % 86400;
        fprintf(w,
                "{\"id\":\"ev-%ld\",\"clinic\":\"north\",\"patient\":\"p-%ld\","
                "\"type\":\"vitals\",\"at\":\"2026-03-02T%02ld:%02ld:%02ldZ\",\"data\":{\"i\":%ld}}\n",
                i, i % 50, s / 3600, s / 60 % 60, s % 60, i);
    }
    cr_assert_eq(fclose(w), 0);

    FILE *f = fopen(path, "r");
    rg_ingest_counts c = {0};
    char err[512] = "";
    int rc = rg_ingest_file(st, f, "big.jsonl", &c, NULL, NULL, err, sizeof err);
    fclose(f);
    cr_assert_eq(rc, RG_OK, "%s", err);
    cr_assert_eq(c.stored, N - 2);
    cr_assert_eq(c.duplicates, 1);
    cr_assert_eq(c.conflicts, 0);
    cr_assert_eq(c.rejected, 1);
    cr_assert_eq(peek_int("SELECT count(*) FROM events"), N - 2);
    cr_assert_eq(peek_int("SELECT count(DISTINCT patient) FROM events"), 50);
    cr_assert_eq(peek_int("SELECT count(*) FROM patients"), 50);
    cr_assert_eq(peek_int("SELECT max(seq) FROM events"), N - 2);
    got_rejs *g = rejected();
    cr_assert_eq(g->n, 1);
    cr_assert_eq(g->r[0].line, BAD);
    cr_assert_str_eq(g->r[0].field, "patient");
    /* the last line made it (third batch) */
    cr_assert_eq(peek_int("SELECT count(*) FROM events WHERE id = 'ev-25000'"), 1);
    cr_assert_eq(peek_int("SELECT count(*) FROM events WHERE patient = 'p-0'"), N / 50);
    /* no transaction left open: a new one can start */
    cr_assert_eq(rg_store_begin(st), RG_OK);
    cr_assert_eq(rg_store_commit(st), RG_OK);
}

typedef struct seen_lines {
    long line[64];
    int n;
} seen_lines;

static void on_reject_line(void *ud, const char *source, long line, const char *field,
                           const char *reason)
{
    seen_lines *s = ud;
    (void)source;
    (void)field;
    (void)reason;
    cr_assert_lt(s->n, 64);
    s->line[s->n++] = line;
}

/* Lines are read and validated on a second thread (runtime/store/ingest.c): the
 * writer must still see them in file order, with their own line numbers,
 * across its chunks and batches; a store failure stops at the line it
 * happened on and takes back only the batch it was in. */
#define ORDER_LINES 23000L
#define ORDER_BOOM 21001L

/* order.jsonl in tmpdir, ORDER_LINES lines: a refusal every 997th (their
 * lines in want[], *nwant), a blank line every 301st, else a new event;
 * returns its path. */
static const char *write_order_file(long want[64], int *nwant)
{
    static char path[600];
    const long N = ORDER_LINES;
    snprintf(path, sizeof path, "%s/order.jsonl", tmpdir);
    FILE *w = fopen(path, "w");
    cr_assert_not_null(w);
    *nwant = 0;
    for (long i = 1; i <= N; i++) {
        if (i % 997 == 0) {
            fprintf(w, "{\"id\":\"x%ld\",\"clinic\":\"north\"}\n", i);
            want[(*nwant)++] = i;
        } else if (i % 301 == 0) {
            fprintf(w, "  \r\n");
        } else {
            fprintf(w,
                    "{\"id\":\"ev-%ld\",\"clinic\":\"north\",\"patient\":\"p-%ld\","
                    "\"type\":\"vitals\",\"at\":\"2026-03-02T00:00:00Z\",\"data\":{\"i\":%ld}}\n",
                    i, i % 7, i);
        }
    }
    cr_assert_eq(fclose(w), 0);
    return path;
}

/* Makes the store fail at the insert of ev-ORDER_BOOM (a trigger's veto). */
static void boom_at_order_line(void)
{
    sqlite3 *db;
    cr_assert_eq(sqlite3_open(dbpath, &db), SQLITE_OK);
    char sql[256];
    snprintf(sql, sizeof sql, "CREATE TRIGGER boom BEFORE INSERT ON events WHEN NEW.id = 'ev-%ld'"
                              " BEGIN SELECT RAISE(ABORT, 'boom'); END", ORDER_BOOM);
    cr_assert_eq(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK, "%s", sqlite3_errmsg(db));
    sqlite3_close(db);
}

Test(ingest, pipeline_keeps_order_lines_and_batches)
{
    const long N = ORDER_LINES, BOOM = ORDER_BOOM;
    long want[64];
    int nwant;
    const char *path = write_order_file(want, &nwant);

    /* first run: everything but the refusals is stored, in file order */
    FILE *f = fopen(path, "r");
    rg_ingest_counts c = {0};
    seen_lines seen = {{0}, 0};
    char err[512] = "";
    cr_assert_eq(rg_ingest_file(st, f, "order", &c, on_reject_line, &seen, err, sizeof err), RG_OK,
                 "%s", err);
    fclose(f);
    long blanks = N / 301 - N / (301 * 997);
    cr_assert_eq(c.rejected, nwant);
    cr_assert_eq(c.stored, N - nwant - blanks);
    cr_assert_eq(seen.n, nwant);
    for (int i = 0; i < nwant; i++)
        cr_assert_eq(seen.line[i], want[i], "refusal %d: line %ld", i, seen.line[i]);
    /* (each event's line number after its predecessor's in seq order: a
     * window, since the lean row of schema 15 has no index on seq alone) */
    cr_assert_eq(peek_int("SELECT count(*) FROM (SELECT CAST(substr(id, 4) AS INTEGER) AS n,"
                          " lag(CAST(substr(id, 4) AS INTEGER)) OVER (ORDER BY seq) AS p"
                          " FROM events) WHERE n <= p"),
                 0, "events stored out of file order");

    /* second run into a fresh store, with the store failing at line BOOM */
    close_store();
    remove(dbpath);
    char wal[600];
    snprintf(wal, sizeof wal, "%s-wal", dbpath);
    remove(wal);
    open_store();
    boom_at_order_line();
    f = fopen(path, "r");
    rg_ingest_counts c2 = {0};
    seen_lines seen2 = {{0}, 0};
    int rc = rg_ingest_file(st, f, "order", &c2, on_reject_line, &seen2, err, sizeof err);
    fclose(f);
    cr_assert_eq(rc, RG_EDB);
    char at[64];
    snprintf(at, sizeof at, "stopped at line %ld:", BOOM);
    cr_assert_not_null(strstr(err, at), "%s", err);
    /* two whole batches of 10,000 non-blank lines were committed */
    cr_assert_eq(c2.stored + c2.rejected, 20000);
    cr_assert_eq(peek_int("SELECT count(*) FROM events") + peek_int("SELECT count(*) FROM rejected"),
                 20000);
    for (int i = 0; i < seen2.n; i++)
        cr_assert_eq(seen2.line[i], want[i]);
    cr_assert_eq(seen2.n, c2.rejected, "only refusals that were committed are reported");
    cr_assert_eq(rg_store_begin(st), RG_OK);
    cr_assert_eq(rg_store_commit(st), RG_OK);
}

/* A new database loaded whole (counts.whole, rg_store_opts.load: `regimen
 * ingest` into a file that did not exist): one transaction, so the store
 * failing at line ORDER_BOOM keeps nothing of the file, while refusals are
 * still told batch by batch, with their lines; without the failure it
 * stores what the batched ingest stores. */
Test(ingest, whole_file_keeps_everything_or_nothing)
{
    long want[64];
    int nwant;
    const char *path = write_order_file(want, &nwant);
    rg_store_opts load = {.bulk = 1, .load = 1};
    char err[512] = "";
    for (int boom = 1; boom >= 0; boom--) {
        close_store();
        remove(dbpath);
        if (boom) { /* a file with the trigger in it, as the load finds it */
            open_store();
            close_store();
            boom_at_order_line();
        }
        cr_assert_eq(rg_store_open(&st, dbpath, &load, err, sizeof err), RG_OK, "%s", err);
        FILE *f = fopen(path, "r");
        rg_ingest_counts c = {.whole = 1};
        seen_lines seen = {{0}, 0};
        int rc = rg_ingest_file(st, f, "order", &c, on_reject_line, &seen, err, sizeof err);
        fclose(f);
        close_store();
        if (boom) {
            cr_assert_eq(rc, RG_EDB);
            cr_assert(strstr(err, "stopped at line 21001:") &&
                      strstr(err, "nothing of the file was kept"), "%s", err);
            cr_assert_eq(c.stored + c.rejected, 0, "the counts say nothing was kept");
            cr_assert_eq(peek_int("SELECT count(*) FROM events"), 0);
            cr_assert_eq(peek_int("SELECT count(*) FROM rejected"), 0);
            cr_assert_eq(seen.n, 20, "the refusals of the first 20,000 lines were told");
        } else {
            long blanks = ORDER_LINES / 301 - ORDER_LINES / (301 * 997);
            cr_assert_eq(rc, RG_OK, "%s", err);
            cr_assert_eq(c.stored, ORDER_LINES - nwant - blanks);
            cr_assert_eq(peek_int("SELECT count(*) FROM events"), c.stored);
            cr_assert_eq(peek_int("SELECT max(seq) FROM events"), c.stored);
            cr_assert_eq(peek_int("SELECT count(*) FROM rejected"), nwant);
            cr_assert_eq(seen.n, nwant);
        }
        for (int i = 0; i < seen.n; i++)
            cr_assert_eq(seen.line[i], want[i]);
    }
    open_store();
}

/* The whole events and patients tables of the database at path, as text. */
static char *dump_tables(const char *path)
{
    sqlite3 *db;
    cr_assert_eq(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    sqlite3_stmt *s;
    cr_assert_eq(sqlite3_prepare_v2(db,
                                    "SELECT group_concat(r, char(10)) FROM (SELECT 'e|' || seq ||"
                                    " '|' || clinic || '|' || id || '|' || version || '|' ||"
                                    " replaces || '|' || patient || '|' || at || '|' || body ||"
                                    " '|' || coalesce(hex(fields), '-') || '|' || hex(digest) ||"
                                    " '|' || coalesce(status, '-') AS r FROM events"
                                    " UNION ALL SELECT 'p|' || clinic || '|' || patient || '|' ||"
                                    " coalesce(next_wake, '-') || '|' || scheduled FROM patients"
                                    " ORDER BY 1)",
                                    -1, &s, NULL),
                 SQLITE_OK, "%s", sqlite3_errmsg(db));
    cr_assert_eq(sqlite3_step(s), SQLITE_ROW);
    char *text = strdup((const char *)sqlite3_column_text(s, 0));
    cr_assert_not_null(text);
    sqlite3_finalize(s);
    sqlite3_close(db);
    return text;
}

/* The pipeline stores new events RG_STORE_MANY at a time; a group with a
 * known id (stored before, or twice in the group) goes one by one. Either
 * way the outcome of every line, the rows, their seq and the patients'
 * schedules are what putting the lines one by one gives. */
Test(ingest, groups_of_new_events_store_what_one_by_one_stores)
{
    char path[600];
    snprintf(path, sizeof path, "%s/groups.jsonl", tmpdir);
    FILE *w = fopen(path, "w");
    cr_assert_not_null(w);
    for (int k = 1; k <= 300; k++) {
        /* line 40: line 5 again, in another group of 32 (a duplicate); line 71:
         * line 70 again, in the same group */
        int i = k == 40 ? 5 : k == 71 ? 70 : k;
        int p = (i * 7) % 13, day = 1 + (i * 5) % 27;
        if (k == 41) /* ev-6 with other data: a conflict */
            fprintf(w, "{\"id\":\"ev-6\",\"clinic\":\"c\",\"patient\":\"p1\",\"type\":\"vitals\","
                       "\"at\":\"2026-03-02T10:00:00Z\",\"data\":{\"n\":-1}}\n");
        else if (k == 100) /* a correction of ev-3 */
            fprintf(w, "{\"id\":\"ev-3\",\"clinic\":\"c\",\"patient\":\"p%d\",\"type\":\"vitals\","
                       "\"at\":\"2026-03-%02dT10:00:00Z\",\"data\":{\"n\":33},\"version\":2,"
                       "\"corrected_at\":\"2026-03-28T00:00:00Z\"}\n",
                    (3 * 7) % 13, 1 + (3 * 5) % 27);
        else if (k == 130)
            fprintf(w, "{\"id\":\"ev-130\",\"clinic\":\"c\"\n");
        else
            fprintf(w, "{\"id\":\"ev-%d\",\"clinic\":\"c%s\",\"patient\":\"p%d\",\"type\":\"vitals\","
                       "\"at\":\"2026-03-%02dT%02d:00:00Z\",\"data\":{\"n\":%d}}\n",
                    i, i % 50 == 0 ? "x" : "", p, day, i % 24, i);
    }
    cr_assert_eq(fclose(w), 0);

    /* the pipeline, into the suite's store */
    FILE *f = fopen(path, "r");
    rg_ingest_counts a = {0};
    char err[512] = "";
    cr_assert_eq(rg_ingest_file(st, f, "groups", &a, NULL, NULL, err, sizeof err), RG_OK, "%s",
                 err);
    fclose(f);
    close_store();

    /* the same lines one by one (rg_ingest_one), into a second store */
    char bpath[600];
    snprintf(bpath, sizeof bpath, "%s/one-by-one.db", tmpdir);
    rg_store *b;
    cr_assert_eq(rg_store_open(&b, bpath, NULL, err, sizeof err), RG_OK, "%s", err);
    cr_assert_eq(rg_store_begin(b), RG_OK);
    rg_ingest_counts c = {0};
    f = fopen(path, "r");
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    for (long ln = 1; (n = getline(&line, &cap, f)) > 0; ln++)
        cr_assert_geq(rg_ingest_one(b, line, (size_t)n - 1, "groups", ln, &c, NULL, NULL), 0);
    free(line);
    fclose(f);
    cr_assert_eq(rg_store_commit(b), RG_OK);
    rg_store_close(b);

    cr_assert_eq(a.stored, c.stored);
    cr_assert_eq(a.duplicates, 2, "line 40 and line 71");
    cr_assert_eq(a.duplicates, c.duplicates);
    cr_assert_eq(a.conflicts, 1);
    cr_assert_eq(a.conflicts, c.conflicts);
    cr_assert_eq(a.corrected, 1);
    cr_assert_eq(a.corrected, c.corrected);
    cr_assert_eq(a.rejected, 1);
    cr_assert_eq(a.rejected, c.rejected);
    char *ta = dump_tables(dbpath), *tb = dump_tables(bpath);
    cr_assert_str_eq(ta, tb, "the pipeline's rows differ from one by one's");
    free(ta);
    free(tb);
    open_store(); /* for the suite's teardown */
}

