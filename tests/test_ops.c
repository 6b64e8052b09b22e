/*
 * test_ops.c - operational faults and clock surprises, end to end through
 * the real `regimen serve` (and `regimen ingest`):
 *   - a full disk (the database on a small tmpfs): the failing POST is 503
 *     with the cause and is not acknowledged, reads go on, /healthz says
 *     degraded, wake-ups are retried (not spun on), and once space is freed
 *     the events are taken, and a long stream after that does not fill the
 *     disk again (the WAL is kept short); nothing half-written;
 *   - a database that cannot be written: a missing or read-only directory, a
 *     file on a read-only file system (refused at start-up with one line
 *     naming the path and the cause), a file made immutable while the
 *     service runs (503, then recovery);
 *   - a damaged database file (garbage, or a good header over trashed pages):
 *     refused, named, and left as it was;
 *   - a clinic's protocol directory removed while serving: refused once with
 *     the path, the old protocols keep running, and it loads again when the
 *     directory comes back;
 *   - the wall clock stepping back or forward under libfaketime (only the
 *     wall clock moves; the service waits on the monotonic clock): an alert
 *     fires neither early nor twice, and a skipped-over due fires once at its
 *     due time.
 * Mounting needs root (as the CI runs); these tests skip when not root.
 */
#define RG_TEST_SERVE
#include "helpers.h"

#include "core/rg.h"

#include <glob.h>
#include <math.h>
#include <sys/mount.h>

/* A ping whose pong is overdue a few seconds later (south: an hour later). */
static const char hour_protocol[] =
    "local R = require 'regimen'\n"
    "return R.protocol { id = 'hour', version = '1.0',\n"
    "  params = { wait = R.hours(1) },\n"
    "  rules = { { id = 'hour.ping-overdue', severity = 'warning', check = function(h, now, p)\n"
    "      local last = h:last('ping')\n"
    "      if last and #h:after(last, 'pong') == 0 then\n"
    "        return R.alert { key = last.id, due = last.at + p.wait, message = 'no pong' }\n"
    "      end\n"
    "    end } } }\n";

/* What a failing test must not leave behind, undone by cleanup (.fini):
 * its server, its mounts, files made immutable. */
static server *live;
static char mounted[2][512], immutable[1200];

static void cleanup(void)
{
    server_kill(live);
    if (immutable[0])
        (void)!system(immutable);
    for (int i = 0; i < 2; i++)
        if (mounted[i][0])
            umount2(mounted[i], MNT_DETACH);
}

static void need_root(void)
{
    if (geteuid() != 0)
        cr_skip_test("needs root (mount, chattr)");
}

static void sh(const char *fmt, const char *arg)
{
    char cmd[1200];
    snprintf(cmd, sizeof cmd, fmt, arg);
    cr_assert_eq(system(cmd), 0, "failed: %s", cmd);
}

/* Mounts a tmpfs of size (e.g. "1m") on dir/name; path gets the mount point. */
static void tmpfs(const char *dir, const char *name, const char *opts, char path[512])
{
    snprintf(path, 512, "%s/%s", dir, name);
    cr_assert_eq(mkdir(path, 0700), 0);
    cr_assert_eq(mount("tmpfs", path, "tmpfs", 0, opts), 0, "mount tmpfs %s on %s: %s", opts, path,
                 strerror(errno));
    snprintf(mounted[mounted[0][0] ? 1 : 0], 512, "%s", path);
}

static void unmount(const char *path)
{
    for (int i = 0; i < 50 && umount(path) != 0; i++)
        usleep(100000);
    for (int i = 0; i < 2; i++)
        if (!strcmp(mounted[i], path))
            mounted[i][0] = '\0';
}

/* Occurrences of text in the server's log. */
static int log_count(server *s, const char *text)
{
    char *log = rg_test_read(s->log);
    int n = 0;
    for (const char *p = log; (p = strstr(p, text)); p++)
        n++;
    free(log);
    return n;
}

static int count_text(const char *s, const char *text)
{
    int n = 0;
    for (const char *p = s; (p = strstr(p, text)); p++)
        n++;
    return n;
}

static int lines(const char *s)
{
    return count_text(s, "\n");
}

/* ---- a full disk ---------------------------------------------------------------------- */

/* An event with pad bytes of data, so a 1 MB file system fills up soon.
 * Which commit meets the full disk first follows the file's layout: with
 * 3000 bytes a request's events (the POST fails), with 160 the evaluation
 * after them (the POST's 503 says its events were stored, not evaluated).
 * Both must recover once space is freed. (The second did not: the WAL, not
 * checkpointed below 1000 pages, held frames the full database file could
 * not take, and took the space freed before the checkpoint could use it;
 * then, checkpointed only every 4 MB, it filled the disk again by itself.) */
static char *fat_event(const char *id, int patient, int bytes)
{
    char at[40], pad[3001], *ev = malloc(4096);
    memset(pad, 'x', (size_t)bytes);
    pad[bytes] = '\0';
    iso(now_ms(), at);
    snprintf(ev, 4096,
             "{\"id\":\"%s\",\"clinic\":\"north\",\"patient\":\"p%d\",\"type\":\"note\","
             "\"at\":\"%s\",\"data\":{\"pad\":\"%s\"}}",
             id, patient, at, pad);
    return ev;
}

static void full_disk(int bytes, int evaluation_first)
{
    need_root();
    static server s; /* static: cleanup may run after an assertion left this frame */
    memset(&s, 0, sizeof s);
    live = &s;
    char *out, disk[512], ballast[600];
    server_setup(&s, fast_protocol, fast_protocol);
    tmpfs(s.dir, "disk", "size=1m", disk);
    /* space to free later: a ballast file on the same file system */
    snprintf(ballast, sizeof ballast, "%s/ballast", disk);
    int fd = open(ballast, O_WRONLY | O_CREAT, 0600);
    char block[4096] = {0};
    for (int i = 0; i < 64; i++)
        cr_assert_eq(write(fd, block, sizeof block), (ssize_t)sizeof block);
    close(fd);
    snprintf(s.db, sizeof s.db, "%.480s/serve.db", disk);
    server_start(&s);

    /* a pending time-driven alert, due (ping + 2 s) once the disk is full */
    int64_t due_ms = (now_ms() / 1000 + 8) * 1000;
    char *ev = ping("north", "w1", "pw", due_ms - 2000, "ping");
    cr_assert_eq(http(s.port, "POST", "/v1/events", TOKEN_A, ev, &out), 200, "%s", out);
    free(out);
    free(ev);

    int acked = 1, status = 0, failed_at = -1;
    char *reply = NULL;
    for (int i = 0; i < 2000; i++) {
        char id[16];
        snprintf(id, sizeof id, "f%d", i);
        ev = fat_event(id, i % 7, bytes);
        status = http(s.port, "POST", "/v1/events", TOKEN_A, ev, &reply);
        if (status != 200) {
            failed_at = i; /* ev: sent again below, the same bytes */
            break;
        }
        free(ev);
        cr_assert(strstr(reply, "\"status\":\"stored\""), "%s", reply);
        free(reply);
        acked++;
    }
    cr_assert_geq(failed_at, 0, "the 1 MB file system never filled up");
    cr_assert_eq(status, 503, "a full disk is 503 (got %d): %s", status, reply);
    cr_assert(strstr(reply, "\"cause\":\"database or disk is full\""), "%s", reply);
    if (evaluation_first) { /* its events were stored (and are counted), not evaluated */
        cr_assert(strstr(reply, "the events were stored but their evaluation could not be"),
                  "the evaluation's commit was to meet the full disk first: %s", reply);
        acked++;
    } else {
        cr_assert(strstr(reply, "nothing was acknowledged") && !strstr(reply, "\"stored\""),
                  "the events' commit was to meet the full disk first: %s", reply);
    }
    free(reply);
    fprintf(stderr, "full disk: %d events acknowledged, then 503\n", acked);

    /* reads go on; health says why; the due wake-up is retried, not spun on */
    cr_assert_eq(http(s.port, "GET", "/v1/alerts", TOKEN_A, NULL, &out), 200, "%s", out);
    free(out);
    cr_assert_eq(http(s.port, "GET", "/v1/transitions?after=0", TOKEN_A, NULL, &out), 200);
    free(out);
    cr_assert_eq(http(s.port, "GET", "/healthz", NULL, NULL, &out), 200);
    cr_assert(strstr(out, "\"status\":\"degraded\"") && strstr(out, "disk is full"), "%s", out);
    free(out);
    /* due now: its wake-up pass (evaluations, no request) cannot be stored, and is
     * tried again */
    for (int64_t end = now_ms() + 15000;
         log_count(&s, "0 requests and evaluations not stored") < 2 && now_ms() < end;)
        usleep(50000);
    cr_assert_geq(log_count(&s, "0 requests and evaluations not stored"), 2, "%s",
                  rg_test_read(s.log));
    cr_assert_eq(http(s.port, "GET", "/v1/transitions?after=0", TOKEN_A, NULL, &out), 200);
    cr_assert(strstr(out, "\"transitions\":[]"), "nothing could be stored: %s", out);
    free(out);
    cr_assert_eq(http(s.port, "GET", "/metrics", TOKEN_A, NULL, &out), 200);
    const char *m = strstr(out, "\nregimen_store_errors_total ");
    cr_assert_not_null(m, "%s", out);
    long errors = atol(m + strlen("\nregimen_store_errors_total "));
    cr_assert(errors >= 2 && errors < 20, "a failing wake-up is retried about once a second, "
              "not spun on (%ld store errors)", errors);
    free(out);
    if (!evaluation_first) { /* (the other's events are stored: a duplicate needs no write) */
        cr_assert_eq(http(s.port, "POST", "/v1/events", TOKEN_A, ev, &out), 503, "still full: %s",
                     out);
        free(out);
    }

    /* space freed: the same event is taken (kept once when it was stored
     * already), the due alert opens, health is ok */
    cr_assert_eq(unlink(ballast), 0);
    cr_assert_eq(http(s.port, "POST", "/v1/events", TOKEN_A, ev, &out), 200, "%s", out);
    cr_assert(strstr(out, evaluation_first ? "\"status\":\"duplicate\"" : "\"status\":\"stored\""),
              "%s", out);
    free(out);
    free(ev);
    acked += !evaluation_first;
    if (evaluation_first) { /* and a new one is stored and evaluated */
        char id[16];
        snprintf(id, sizeof id, "f%d", failed_at + 1);
        ev = fat_event(id, 1, bytes);
        cr_assert_eq(http(s.port, "POST", "/v1/events", TOKEN_A, ev, &out), 200, "%s", out);
        cr_assert(strstr(out, "\"status\":\"stored\""), "%s", out);
        free(out);
        free(ev);
        acked++;
    }
    int opened = 0;
    char due[40], want[64];
    iso(due_ms, due);
    due[19] = '\0';
    snprintf(want, sizeof want, "\"at\":\"%s", due);
    for (int i = 0; i < 100 && !opened; i++) {
        cr_assert_eq(http(s.port, "GET", "/v1/transitions?after=0", TOKEN_A, NULL, &out), 200);
        opened = strstr(out, "\"rule\":\"fast.ping-overdue\"") != NULL;
        if (opened)
            cr_assert(strstr(out, want), "at its due %s: %s", due, out);
        free(out);
        if (!opened)
            usleep(100000);
    }
    cr_assert(opened, "the alert that fell due while the disk was full opened afterwards: %s",
              rg_test_read(s.log));
    cr_assert_eq(http(s.port, "GET", "/healthz", NULL, NULL, &out), 200);
    cr_assert(strstr(out, "\"status\":\"ok\""), "%s", out);
    free(out);
    /* and it goes on: 1000 small events (2000 commits) are all taken. The
     * database grows by about 450 kB, which the space left holds, but not
     * with a WAL of 300 kB beside it: the WAL is checkpointed at each commit
     * while space is short, so it does not fill the disk again. */
    for (int i = 0; i < 1000; i++) {
        char id[16];
        snprintf(id, sizeof id, "s%d", i);
        ev = fat_event(id, i % 7, 100);
        cr_assert_eq(http(s.port, "POST", "/v1/events", TOKEN_A, ev, &out), 200, "s%d: %s", i,
                     out);
        free(out);
        free(ev);
        acked++;
    }
    cr_assert_eq(server_stop(&s, SIGTERM), 0);

    integrity_ok(s.db);
    cr_assert_eq(count_rows(s.db, "SELECT count(*) FROM events"), acked,
                 "every acknowledged event is stored, nothing else");
    for (int i = 0; i <= failed_at; i++) {
        char sql[96];
        snprintf(sql, sizeof sql, "SELECT count(*) FROM events WHERE id = 'f%d'", i);
        cr_assert_eq(count_rows(s.db, sql), 1, "f%d stored once", i);
    }
    cr_assert_eq(count_rows(s.db, "SELECT count(*) FROM transitions"), 1);
    unmount(disk);
    rg_test_rmdir(s.dir);
}

/* 3 kB events: a request's commit is the first to meet the full disk */
Test(ops, full_disk_is_503_unacknowledged_then_recovers_with_nothing_half_written,
     .timeout = 150, .fini = cleanup)
{
    full_disk(3000, 0);
}

/* 160-byte events: an evaluation's commit is the first to meet the full disk
 * (with schema 21's second wake index 2 kB events no longer did: the events'
 * commit, which sets next_wake too, met it first at every size from 304 to
 * 3000 bytes; 40 to 280 all give the evaluation's) */
Test(ops, full_disk_in_an_evaluations_commit_recovers_with_nothing_half_written,
     .timeout = 150, .fini = cleanup)
{
    full_disk(160, 1);
}

/* ---- a database that cannot be written ---------------------------------------------- */

/* serve and ingest both refuse db: non-zero, one line naming it and the cause. */
static void refused(server *s, const char *db, const char *cause)
{
    char events[600], *out, *err;
    snprintf(events, sizeof events, "%s/events.jsonl", s->dir);
    rg_test_write(s->dir, "events.jsonl",
                  "{\"id\":\"e1\",\"clinic\":\"north\",\"patient\":\"p1\",\"type\":\"ping\","
                  "\"at\":\"2026-03-01T10:00:00Z\"}\n");
    const char *serve[] = {"serve", "--config", s->config, "--db", db, NULL};
    const char *ingest[] = {"ingest", "--db", db, events, NULL};
    const char *const *cmds[] = {serve, ingest};
    for (int i = 0; i < 2; i++) {
        int rc = rg_test_run(cmds[i], NULL, &out, &err);
        cr_assert_neq(rc, 0, "%s on %s must fail: %s", cmds[i][0], db, err);
        cr_assert_neq(rc, 0);
        cr_assert(strstr(err, db) && strstr(err, cause), "%s: expected the path %s and '%s': %s",
                  cmds[i][0], db, cause, err);
        cr_assert_eq(lines(err), 1, "one line: %s", err);
        free(out);
        free(err);
    }
}

/* A configuration that cannot be used is refused at start in one line that
 * names the file, the line and column or the cause; a NUL byte is named as
 * such (jansson's own file reader took it for the end of the file). */
Test(ops, a_bad_configuration_is_refused_naming_file_line_and_column, .timeout = 30)
{
    server s = {0};
    server_setup(&s, fast_protocol, fast_protocol);
    static const struct {
        const char *text;
        size_t len;
        const char *want;
    } cases[] = {
#define TEXT(t) t, sizeof t - 1
        {TEXT("{\n  \"listen\": \"127.0.0.1:0\",\0\n  \"clinics\": {} }"),
         "config.json:2:27: not valid JSON: a NUL byte"},
        {TEXT("{ \"listen\": \"127.0.0.1:0\", \"listen\": \"127.0.0.1:1\" }"),
         "duplicate object key"},
#undef TEXT
        {NULL, 0, "cannot read the configuration: No such file or directory"},
    };
    char db[600], *out, *err;
    snprintf(db, sizeof db, "%s/serve.db", s.dir);
    const char *serve[] = {"serve", "--config", s.config, "--db", db, NULL};
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        unlink(s.config);
        if (cases[i].text) {
            FILE *f = fopen(s.config, "wb");
            cr_assert_not_null(f);
            cr_assert_eq(fwrite(cases[i].text, 1, cases[i].len, f), cases[i].len);
            fclose(f);
        }
        cr_assert_eq(rg_test_run(serve, NULL, &out, &err), 2, "case %zu: %s", i, err);
        cr_assert(strstr(err, s.config) && strstr(err, cases[i].want),
                  "case %zu: expected '%s': %s", i, cases[i].want, err);
        cr_assert_eq(lines(err), 1, "one line: %s", err);
        free(out);
        free(err);
    }
    rg_test_rmdir(s.dir);
}

Test(ops, unwritable_database_is_refused_at_start_naming_path_and_cause,
     .timeout = 60, .fini = cleanup)
{
    need_root();
    static server s; /* static: cleanup may run after an assertion left this frame */
    memset(&s, 0, sizeof s);
    live = &s;
    char db[600], ro[512], *out, *err;
    server_setup(&s, fast_protocol, fast_protocol);

    snprintf(db, sizeof db, "%s/missing/serve.db", s.dir);
    refused(&s, db, "No such file or directory");

    tmpfs(s.dir, "ro", "size=1m", ro);
    cr_assert_eq(mount("tmpfs", ro, NULL, MS_REMOUNT | MS_RDONLY, "size=1m"), 0, "%s",
                 strerror(errno));
    snprintf(db, sizeof db, "%s/serve.db", ro);
    refused(&s, db, "Read-only file system");

    /* a good database, then its file system made read-only */
    cr_assert_eq(mount("tmpfs", ro, NULL, MS_REMOUNT, "size=1m"), 0, "%s", strerror(errno));
    const char *make[] = {"ingest", "--db", db, "-", NULL};
    cr_assert_eq(rg_test_run(make, "{\"id\":\"e0\",\"clinic\":\"north\",\"patient\":\"p1\","
                                   "\"type\":\"ping\",\"at\":\"2026-03-01T09:00:00Z\"}\n",
                             &out, &err), 0, "%s", err);
    free(out);
    free(err);
    char *before = rg_test_read(db);
    cr_assert_eq(mount("tmpfs", ro, NULL, MS_REMOUNT | MS_RDONLY, "size=1m"), 0, "%s",
                 strerror(errno));
    refused(&s, db, "Read-only file system");
    char *after = rg_test_read(db);
    cr_assert_eq(memcmp(before, after, 4096), 0);
    free(before);
    free(after);
    unmount(ro);
    rg_test_rmdir(s.dir);
}

Test(ops, database_made_read_only_while_serving_is_503_then_recovers,
     .timeout = 60, .fini = cleanup)
{
    need_root();
    static server s; /* static: cleanup may run after an assertion left this frame */
    memset(&s, 0, sizeof s);
    live = &s;
    char *out, cmd[1200];
    server_setup(&s, fast_protocol, fast_protocol);
    server_start(&s);
    char *e1 = ping("north", "e1", "p1", now_ms(), "note");
    char *e2 = ping("north", "e2", "p1", now_ms(), "note");
    cr_assert_eq(http(s.port, "POST", "/v1/events", TOKEN_A, e1, &out), 200, "%s", out);
    free(out);
    /* root ignores permission bits; an immutable file refuses even root's
     * writes on open descriptors (ext4, xfs, btrfs: skipped elsewhere) */
    snprintf(immutable, sizeof immutable, "chattr -i '%s' '%s-wal'", s.db, s.db);
    snprintf(cmd, sizeof cmd, "chattr +i '%s' '%s-wal' 2>/dev/null", s.db, s.db);
    if (system(cmd) != 0) {
        server_stop(&s, SIGTERM);
        rg_test_rmdir(s.dir);
        cr_skip_test("the file system of %s has no immutable files (chattr +i)", s.dir);
    }
    cr_assert_eq(http(s.port, "POST", "/v1/events", TOKEN_A, e2, &out), 503, "%s", out);
    cr_assert(strstr(out, "\"cause\":\"disk I/O error (Operation not permitted)\""), "%s", out);
    free(out);
    cr_assert_eq(http(s.port, "GET", "/healthz", NULL, NULL, &out), 200);
    cr_assert(strstr(out, "\"status\":\"degraded\""), "%s", out);
    free(out);
    cr_assert_eq(http(s.port, "GET", "/v1/alerts", TOKEN_A, NULL, &out), 200);
    free(out);
    cr_assert_eq(system(immutable), 0);
    immutable[0] = '\0';
    cr_assert_eq(http(s.port, "POST", "/v1/events", TOKEN_A, e2, &out), 200, "%s", out);
    cr_assert(strstr(out, "\"status\":\"stored\""), "%s", out);
    free(out);
    cr_assert_eq(http(s.port, "GET", "/healthz", NULL, NULL, &out), 200);
    cr_assert(strstr(out, "\"status\":\"ok\""), "%s", out);
    free(out);
    cr_assert_eq(server_stop(&s, SIGTERM), 0);
    integrity_ok(s.db);
    cr_assert_eq(count_rows(s.db, "SELECT count(*) FROM events"), 2);
    /* and an immutable file at start-up is refused, naming it and the cause */
    snprintf(cmd, sizeof cmd, "chattr +i '%s'", s.db);
    snprintf(immutable, sizeof immutable, "chattr -i '%s'", s.db);
    cr_assert_eq(system(cmd), 0);
    refused(&s, s.db, "for writing: Operation not permitted");
    cr_assert_eq(system(immutable), 0);
    immutable[0] = '\0';
    free(e1);
    free(e2);
    rg_test_rmdir(s.dir);
}

/* ---- a damaged database ------------------------------------------------------------------ */

static void same_file(const char *path, const char *before, size_t n)
{
    FILE *f = fopen(path, "rb");
    cr_assert_not_null(f);
    char *now = malloc(n + 1);
    size_t got = fread(now, 1, n + 1, f);
    fclose(f);
    cr_assert_eq(got, n, "%s changed size", path);
    cr_assert_eq(memcmp(before, now, n), 0, "%s was changed", path);
    free(now);
}

Test(ops, damaged_database_is_refused_named_and_left_as_it_was, .timeout = 60, .fini = cleanup)
{
    static server s; /* static: cleanup may run after an assertion left this frame */
    memset(&s, 0, sizeof s);
    live = &s;
    char db[600], *out, *err;
    server_setup(&s, fast_protocol, fast_protocol);

    /* garbage */
    enum { N = 20000 };
    char *junk = malloc(N);
    srand(11);
    for (int i = 0; i < N; i++)
        junk[i] = (char)rand();
    snprintf(db, sizeof db, "%s/garbage.db", s.dir);
    FILE *f = fopen(db, "wb");
    fwrite(junk, 1, N, f);
    fclose(f);
    refused(&s, db, "not a database");
    same_file(db, junk, N);

    /* a real database whose pages after the header are trashed */
    snprintf(db, sizeof db, "%s/trashed.db", s.dir);
    rg_buf events = {0};
    for (int i = 0; i < 300; i++)
        rg_buf_printf(&events, "{\"id\":\"e%d\",\"clinic\":\"north\",\"patient\":\"p%d\","
                               "\"type\":\"ping\",\"at\":\"2026-03-01T10:00:00Z\"}\n", i, i % 40);
    const char *make[] = {"ingest", "--db", db, "-", NULL};
    cr_assert_eq(rg_test_run(make, events.p, &out, &err), 0, "%s", err);
    free(out);
    free(err);
    rg_buf_free(&events);
    struct stat sb;
    cr_assert_eq(stat(db, &sb), 0);
    size_t n = (size_t)sb.st_size;
    cr_assert_gt(n, 16384);
    char *bytes = rg_test_read(db);
    for (size_t i = 4096; i < n; i++)
        bytes[i] = junk[i % N];
    f = fopen(db, "wb");
    fwrite(bytes, 1, n, f);
    fclose(f);
    refused(&s, db, "is damaged");
    same_file(db, bytes, n);
    free(bytes);
    free(junk);
    rg_test_rmdir(s.dir);
}

/* ---- a protocol directory that disappears ------------------------------------------------ */

Test(ops, removed_protocol_directory_keeps_the_old_protocols_and_loads_again,
     .timeout = 60, .fini = cleanup)
{
    static server s; /* static: cleanup may run after an assertion left this frame */
    memset(&s, 0, sizeof s);
    live = &s;
    char *out, dir[600];
    server_setup(&s, fast_protocol, fast_protocol);
    server_start(&s);
    snprintf(dir, sizeof dir, "%s/a", s.dir);
    sh("rm -rf '%s'", dir);
    /* the watch sees it go: one refusal, naming the directory */
    cr_assert(log_wait(&s, "protocols refused", 5000), "%s", rg_test_read(s.log));
    cr_assert(log_wait(&s, "/a: not a protocol directory (No such file or directory)", 5000),
              "%s", rg_test_read(s.log));
    /* the old protocol keeps running */
    char *ev = ping("north", "d1", "p1", now_ms() - 5000, "ping");
    cr_assert_eq(http(s.port, "POST", "/v1/events", TOKEN_A, ev, &out), 200, "%s", out);
    free(out);
    free(ev);
    cr_assert_eq(http(s.port, "GET", "/v1/transitions?after=0", TOKEN_A, NULL, &out), 200);
    cr_assert(strstr(out, "\"rule\":\"fast.ping-overdue\""), "the old protocol ran: %s", out);
    free(out);
    /* it comes back (a new version): SIGHUP loads it */
    char v3[sizeof fast_protocol + 16];
    snprintf(v3, sizeof v3, "%s", fast_protocol);
    memcpy(strstr(v3, "'1.0'"), "'3.0'", 5);
    rg_test_write(s.dir, "a/p.lua", v3);
    /* with its clinic.lua: ping and pong are the test's own event types, and
     * the gate (check) refuses a protocol that asks for undeclared ones */
    rg_test_write(s.dir, "a/clinic.lua", "return { events = { ping = {}, pong = {} } }\n");
    kill(s.pid, SIGHUP);
    cr_assert(log_wait(&s, "protocol fast 3.0 loaded", 5000), "%s", rg_test_read(s.log));
    /* and the new directory is watched again: an edit reloads without a signal */
    memcpy(strstr(v3, "'3.0'"), "'4.0'", 5);
    rg_test_write(s.dir, "a/p.lua", v3);
    cr_assert(log_wait(&s, "protocol fast 4.0 loaded", 5000), "%s", rg_test_read(s.log));
    /* refused once: counted after two reloads that came after it, not after a sleep */
    cr_assert_eq(log_count(&s, "protocols refused"), 1, "refused once:\n%s", rg_test_read(s.log));
    cr_assert_eq(log_count(&s, "/a: not a protocol directory (No such file or directory)"), 1,
                 "%s", rg_test_read(s.log));
    cr_assert_eq(server_stop(&s, SIGTERM), 0);
    rg_test_rmdir(s.dir);
}

/* ---- the wall clock steps ------------------------------------------------------------------ */

/* Starts the server under libfaketime, its wall clock offset by the text of
 * s->dir/faketime ("+0", "-1h", "+2h"); the monotonic clock is not faked. */
static void clock_start(server *s, char ft[600])
{
    glob_t g;
    cr_assert_eq(glob("/usr/lib/*/faketime/libfaketime.so.1", 0, NULL, &g), 0,
                 "libfaketime is missing (Debian package faketime: .ci/install-deps)");
    snprintf(ft, 600, "%s/faketime", s->dir);
    rg_test_write(s->dir, "faketime", "+0\n");
    setenv("LD_PRELOAD", g.gl_pathv[0], 1);
    setenv("FAKETIME_TIMESTAMP_FILE", ft, 1);
    setenv("FAKETIME_NO_CACHE", "1", 1);
    setenv("FAKETIME_DONT_FAKE_MONOTONIC", "1", 1);
    /* a sanitizer build (make asan) would refuse a library preloaded before it */
    const char *asan = getenv("ASAN_OPTIONS");
    char *asan_was = asan ? strdup(asan) : NULL, opts[512];
    snprintf(opts, sizeof opts, "%s%sverify_asan_link_order=0", asan ? asan : "",
             asan && *asan ? ":" : "");
    setenv("ASAN_OPTIONS", opts, 1);
    server_start(s);
    unsetenv("LD_PRELOAD");
    if (asan_was)
        setenv("ASAN_OPTIONS", asan_was, 1);
    else
        unsetenv("ASAN_OPTIONS");
    free(asan_was);
    globfree(&g);
}

static void clock_set(server *s, const char *offset)
{
    rg_test_write(s->dir, "faketime.new", offset);
    char from[600], to[600];
    snprintf(from, sizeof from, "%s/faketime.new", s->dir);
    snprintf(to, sizeof to, "%s/faketime", s->dir);
    cr_assert_eq(rename(from, to), 0); /* the server never reads half a file */
}

/* The clinic's transitions, and the number of them. */
static int transitions(server *s, const char *token, char **out)
{
    cr_assert_eq(http(s->port, "GET", "/v1/transitions?after=0", token, NULL, out), 200);
    return count_text(*out, "\"seq\":");
}

/* Waits (up to ms) until the service's next wake-up (/metrics) is due_ms
 * (past 0: the event that makes it due is evaluated and its wake-up read),
 * or past it or for nothing (past 1: the wake-up pass that fired the due is
 * over and the service has read its next wake-up from the store; had the
 * due stayed scheduled, it would be armed for it again, and fire twice). */
static int wake_armed(server *s, int64_t due_ms, int past, int ms)
{
    for (int64_t end = now_ms() + ms; now_ms() < end; usleep(50000)) {
        char *out, *p;
        cr_assert_eq(http(s->port, "GET", "/metrics", TOKEN_A, NULL, &out), 200, "%s", out);
        double armed = -1;
        if ((p = strstr(out, "\nregimen_wake_next_seconds ")))
            armed = strtod(p + strlen("\nregimen_wake_next_seconds "), NULL);
        free(out);
        cr_assert_geq(armed, 0, "no regimen_wake_next_seconds in /metrics");
        if (past ? armed == 0 || armed * 1000.0 > (double)due_ms
                 : llround(armed * 1000.0) == due_ms)
            return 1;
    }
    return 0;
}

/* The due time as the feed writes it, to the second ("2026-11-23T10:00:05"). */
static void due_prefix(int64_t ms, char out[40])
{
    iso(ms, out);
    out[19] = '\0';
}

Test(ops, wall_clock_stepping_back_neither_fires_early_nor_twice, .timeout = 60, .fini = cleanup)
{
    static server s; /* static: cleanup may run after an assertion left this frame */
    memset(&s, 0, sizeof s);
    live = &s;
    char ft[600], *out, due[40], want[64];
    server_setup(&s, fast_protocol, hour_protocol);
    clock_start(&s, ft);
    /* a ping a few seconds ahead (whole second), its pong overdue 2 s after */
    int64_t at = (now_ms() / 1000 + 3) * 1000;
    char *ev = ping("north", "c1", "p1", at, "ping");
    cr_assert_eq(http(s.port, "POST", "/v1/events", TOKEN_A, ev, &out), 200, "%s", out);
    free(out);
    free(ev);
    clock_set(&s, "-1h\n");
    cr_assert(log_wait(&s, "the wall clock stepped back by", 5000), "%s", rg_test_read(s.log));
    /* real time passes the due; the service's wall clock is an hour short */
    while (now_ms() < at + 2000 + 2000) {
        cr_assert_eq(transitions(&s, TOKEN_A, &out), 0, "fired early: %s", out);
        free(out);
        usleep(200000);
    }
    /* the clock comes back: now it is due, and it fires once, at its due */
    clock_set(&s, "+0\n");
    int n = 0;
    for (int i = 0; i < 100 && n == 0; i++) {
        n = transitions(&s, TOKEN_A, &out);
        if (n == 0) {
            free(out);
            usleep(100000);
        }
    }
    cr_assert_eq(n, 1, "fired once the wall clock reached its due:\n%s", rg_test_read(s.log));
    due_prefix(at + 2000, due);
    snprintf(want, sizeof want, "\"at\":\"%s", due);
    cr_assert(strstr(out, want), "at is the due time %s: %s", due, out);
    free(out);
    cr_assert(wake_armed(&s, at + 2000, 1, 10000), "re-armed past the due:\n%s",
              rg_test_read(s.log));
    cr_assert_eq(transitions(&s, TOKEN_A, &out), 1, "not twice: %s", out);
    free(out);
    cr_assert_eq(server_stop(&s, SIGTERM), 0);
    rg_test_rmdir(s.dir);
}

Test(ops, wall_clock_stepping_forward_past_a_due_fires_it_once_at_its_due,
     .timeout = 60, .fini = cleanup)
{
    static server s; /* static: cleanup may run after an assertion left this frame */
    memset(&s, 0, sizeof s);
    live = &s;
    char ft[600], *out, due[40], want[64];
    server_setup(&s, fast_protocol, hour_protocol);
    clock_start(&s, ft);
    /* south: the pong is overdue an hour after the ping */
    int64_t at = (now_ms() / 1000) * 1000;
    char *ev = ping("south", "h1", "p1", at, "ping");
    cr_assert_eq(http(s.port, "POST", "/v1/events", TOKEN_B, ev, &out), 200, "%s", out);
    free(out);
    free(ev);
    cr_assert(wake_armed(&s, at + 3600 * 1000, 0, 10000), "armed for the due:\n%s",
              rg_test_read(s.log));
    cr_assert_eq(transitions(&s, TOKEN_B, &out), 0, "%s", out);
    free(out);
    clock_set(&s, "+2h\n");
    int n = 0;
    for (int i = 0; i < 100 && n == 0; i++) {
        n = transitions(&s, TOKEN_B, &out);
        if (n == 0) {
            free(out);
            usleep(100000);
        }
    }
    cr_assert_eq(n, 1, "the skipped-over due fired:\n%s", rg_test_read(s.log));
    due_prefix(at + 3600 * 1000, due);
    snprintf(want, sizeof want, "\"at\":\"%s", due);
    cr_assert(strstr(out, want), "at is the due time %s, not when the clock jumped: %s", due, out);
    free(out);
    /* and back again: nothing fires twice */
    clock_set(&s, "+0\n");
    cr_assert(log_wait(&s, "the wall clock stepped back by", 5000), "%s", rg_test_read(s.log));
    cr_assert(wake_armed(&s, at + 3600 * 1000, 1, 10000), "re-armed past the due:\n%s",
              rg_test_read(s.log));
    cr_assert_eq(transitions(&s, TOKEN_B, &out), 1, "not twice: %s", out);
    free(out);
    cr_assert_eq(server_stop(&s, SIGTERM), 0);
    rg_test_rmdir(s.dir);
}
