/*
 * test_sweep.c - `regimen sweep` on several cores gives exactly the
 * single-threaded answer: the same transitions with the same global and
 * per-clinic sequence numbers, the same patient clocks and wake-ups, the same
 * evaluation errors. Runs the real binary on a generated cohort of several
 * hundred patients in three clinics (pages of 256 patients span clinics),
 * one of which runs a protocol that fails for some patients.
 */
#define RG_TEST_SERVE
#include "helpers.h"

#include <sqlite3.h>

static uint64_t rng = 12345;
static int roll(int n)
{
    rng = rng * 6364136223846793005ULL + 1442695040888963407ULL;
    return (int)((rng >> 33) % (uint64_t)n);
}

/* A cohort as JSON Lines: enrolment, preparation, infusions with vitals,
 * integration sessions, PHQ-9s and now and then an adverse event. */
static char *cohort(int patients)
{
    size_t cap = (size_t)patients * 4096, len = 0;
    char *s = malloc(cap);
    cr_assert_not_null(s);
    const char *clinics[3] = {"alpha", "beta", "gamma"};
    for (int p = 0; p < patients; p++) {
        const char *c = clinics[p % 3];
        int64_t t = INT64_C(1772409600000) + (int64_t)roll(30) * 86400000; /* March 2026 */
        char at[40];
        int k = 0;
#define EV(type, data)                                                                          \
        do {                                                                                    \
            iso(t, at);                                                                         \
            len += (size_t)snprintf(s + len, cap - len,                                          \
                                    "{\"id\":\"e%d-%d\",\"clinic\":\"%s\",\"patient\":\"p%04d\"," \
                                    "\"type\":\"%s\",\"at\":\"%s\"%s%s}\n",                       \
                                    p, k++, c, p, type, at, *(data) ? ",\"data\":" : "", data); \
        } while (0)
        EV("enrolled", "{\"program\":\"ketamine\"}");
        t += 3600000;
        if (roll(3))
            EV("preparation_session", "");
        int infusions = 2 + roll(8);
        for (int i = 0; i < infusions; i++) {
            char d[128];
            t += (int64_t)(1 + roll(5)) * 86400000 + roll(3600000);
            snprintf(d, sizeof d, "{\"systolic\":%d,\"diastolic\":%d,\"phase\":\"pre\"}",
                     118 + roll(60), 70 + roll(40));
            EV("vitals", d);
            t += 600000;
            snprintf(d, sizeof d, "{\"dose_mg_per_kg\":%.2f}", 0.4 + roll(80) / 100.0);
            EV("infusion", d);
            if (roll(4)) {
                t += (int64_t)roll(96) * 3600000;
                EV("integration_session", "");
            }
            if (roll(3) == 0) {
                t += 3600000;
                snprintf(d, sizeof d, "{\"instrument\":\"phq9\",\"score\":%d,\"item9\":%d}",
                         roll(27), roll(5) == 0);
                EV("assessment", d);
            }
            if (roll(12) == 0)
                EV("adverse_event", "{\"kind\":\"urinary\",\"severity\":\"mild\"}");
        }
#undef EV
    }
    return s;
}

/* Every row of table (all columns but `recorded`), in rowid/primary-key
 * order, as one text. */
static char *dump(const char *db, const char *sql)
{
    sqlite3 *h;
    sqlite3_stmt *st;
    cr_assert_eq(sqlite3_open_v2(db, &h, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    cr_assert_eq(sqlite3_prepare_v2(h, sql, -1, &st, NULL), SQLITE_OK, "%s", sqlite3_errmsg(h));
    size_t cap = 1 << 20, len = 0;
    char *out = malloc(cap);
    out[0] = '\0';
    while (sqlite3_step(st) == SQLITE_ROW) {
        for (int i = 0; i < sqlite3_column_count(st); i++) {
            if (!strcmp(sqlite3_column_name(st, i), "recorded"))
                continue;
            const char *v = (const char *)sqlite3_column_text(st, i);
            size_t n = strlen(v ? v : "NULL") + 2;
            if (len + n + 1 > cap)
                out = realloc(out, cap = 2 * cap + n);
            len += (size_t)snprintf(out + len, cap - len, "%s|", v ? v : "NULL");
        }
        out[len++] = '\n';
        out[len] = '\0';
    }
    sqlite3_finalize(st);
    sqlite3_close(h);
    return out;
}

static void sweep(const char *db, const char *at, const char *jobs, const char *gamma)
{
    char *out, *err;
    const char *args[] = {"sweep", "--db", db, "--at", at, "--jobs", jobs, "--clinic", gamma, NULL};
    int rc = rg_test_run(args, NULL, &out, &err);
    cr_assert(rc == 0 || rc == 1, "sweep --jobs %s exited %d: %s", jobs, rc, err);
    cr_assert(strstr(err, "swept "), "no summary: %s", err);
    free(out);
    free(err);
}

Test(sweep, parallel_sweep_gives_the_single_threaded_answer)
{
    char dir[256], path[512], dbs[3][512], gamma[600];
    rg_test_tmpdir(dir);
    char *events = cohort(700);
    rg_test_write(dir, "cohort.jsonl", events);
    free(events);
    /* clinic gamma: the shipped acute protocol plus one that fails for
     * patients with an even number in their id (an error per evaluation) */
    char *acute = rg_test_read("protocols/ketamine/acute.lua");
    snprintf(path, sizeof path, "%s/gamma", dir);
    cr_assert_eq(mkdir(path, 0755), 0);
    rg_test_write(path, "acute.lua", acute);
    free(acute);
    rg_test_write(path, "fragile.lua",
                  "local R = require 'regimen'\n"
                  "return R.protocol { id = 'gamma.fragile', version = '1.0.0',\n"
                  "  description = 'fails for some patients', params = {},\n"
                  "  rules = { { id = 'gamma.fragile', severity = 'info', check = function(h, now, p)\n"
                  "    if tonumber(h.patient:sub(2)) % 2 == 0 then error('no plan for ' .. h.patient) end\n"
                  "    if h:count('infusion') > 3 then return R.alert { message = 'many' } end\n"
                  "  end } } }\n");
    /* and its own time: calendar due dates and notifications moved to its
     * opening hours, computed on every worker (zones load under a lock) */
    rg_test_write(path, "clinic.lua",
                  "return { timezone = 'Europe/Berlin', hours = { mon = {'08:00', '17:00'},\n"
                  "  tue = {'08:00', '17:00'}, wed = {'08:00', '17:00'}, thu = {'08:00', '17:00'} },\n"
                  "  closures = { '2026-04-06' } }\n");
    snprintf(gamma, sizeof gamma, "gamma=%s", path);
    const char *jobs[3] = {"1", "2", "3"};
    for (int j = 0; j < 3; j++) {
        snprintf(dbs[j], sizeof dbs[j], "%s/s%s.db", dir, jobs[j]);
        snprintf(path, sizeof path, "%s/cohort.jsonl", dir);
        char *out, *err;
        const char *args[] = {"ingest", "--db", dbs[j], path, NULL};
        cr_assert_eq(rg_test_run(args, NULL, &out, &err), 0, "ingest: %s", err);
        free(out);
        free(err);
        /* two sweeps: alerts open at the first may resolve at the second */
        sweep(dbs[j], "2026-03-20T00:00:00Z", jobs[j], gamma);
        sweep(dbs[j], "2026-06-01T00:00:00Z", jobs[j], gamma);
    }
    static const char *const tables[] = {
        "SELECT * FROM transitions ORDER BY seq",
        "SELECT * FROM patients ORDER BY clinic, patient",
        "SELECT * FROM eval_errors ORDER BY seq",
        "SELECT * FROM failing_rules ORDER BY 1, 2, 3, 4",
        "SELECT clinic, protocol, version, file, hash FROM protocol_versions ORDER BY 1, 2, 3, 5",
    };
    cr_assert_gt(count_rows(dbs[0], "SELECT count(*) FROM transitions WHERE state = 'resolved'"),
                 0, "the cohort resolves nothing: the comparison would be weak");
    cr_assert_gt(count_rows(dbs[0], "SELECT count(*) FROM eval_errors"), 0);
    /* the fragile rule's failure is one alert of the clinic's, written by the
     * sweep's one writer whatever the number of workers */
    cr_assert_eq(count_rows(dbs[0], "SELECT count(*) FROM transitions WHERE rule ="
                                    " 'regimen.evaluation-failed' AND state = 'open'"), 1);
    cr_assert_gt(count_rows(dbs[0], "SELECT count(*) FROM transitions WHERE notify_at > at"), 0,
                 "no notification moved: the comparison would not cover them");
    cr_assert_gt(count_rows(dbs[0], "SELECT count(DISTINCT clinic) FROM transitions"), 2);
    for (size_t t = 0; t < sizeof tables / sizeof tables[0]; t++) {
        char *one = dump(dbs[0], tables[t]);
        cr_assert_gt(strlen(one), 0, "%s is empty", tables[t]);
        for (int j = 1; j < 3; j++) {
            char *many = dump(dbs[j], tables[t]);
            cr_assert(strcmp(one, many) == 0, "%s differs between --jobs 1 and --jobs %s",
                      tables[t], jobs[j]);
            free(many);
        }
        free(one);
    }
    for (int j = 0; j < 3; j++)
        integrity_ok(dbs[j]);
    rg_test_rmdir(dir);
}

/* sweep --from-memory: every history read into the history cache first
 * (untimed), then the same sweep from it: the same transitions and patient
 * states as a sweep from the store, each history found in memory (said on
 * stderr), and one core only. */
Test(sweep, from_memory_gives_the_same_answer_from_the_cache)
{
    char dir[256], path[512], dbs[2][512];
    rg_test_tmpdir(dir);
    char *events = cohort(200);
    rg_test_write(dir, "cohort.jsonl", events);
    free(events);
    snprintf(path, sizeof path, "%s/cohort.jsonl", dir);
    static const char *const ats[] = {"2026-03-20T00:00:00Z", "2026-06-01T00:00:00Z"};
    for (int j = 0; j < 2; j++) {
        snprintf(dbs[j], sizeof dbs[j], "%s/m%d.db", dir, j);
        char *out, *err;
        const char *ing[] = {"ingest", "--db", dbs[j], path, NULL};
        cr_assert_eq(rg_test_run(ing, NULL, &out, &err), 0, "ingest: %s", err);
        free(out);
        free(err);
        for (int a = 0; a < 2; a++) {
            const char *args[] = {"sweep", "--db", dbs[j], "--at", ats[a],
                                  j ? "--from-memory" : "--jobs", j ? NULL : "1", NULL};
            int rc = rg_test_run(args, NULL, &out, &err);
            cr_assert(rc == 0 || rc == 1, "sweep exited %d: %s", rc, err);
            cr_assert(strstr(err, "swept 200 patients"), "%s", err);
            if (j)
                cr_assert(strstr(err, "from memory: 200 of 200 patients' histories"), "%s", err);
            else
                cr_assert_null(strstr(err, "from memory"), "%s", err);
            free(out);
            free(err);
        }
    }
    cr_assert_gt(count_rows(dbs[0], "SELECT count(*) FROM transitions"), 0);
    static const char *const tables[] = {"SELECT * FROM transitions ORDER BY seq",
                                         "SELECT * FROM patients ORDER BY clinic, patient"};
    for (size_t t = 0; t < sizeof tables / sizeof tables[0]; t++) {
        char *disk = dump(dbs[0], tables[t]), *mem = dump(dbs[1], tables[t]);
        cr_assert(strcmp(disk, mem) == 0, "%s differs with --from-memory", tables[t]);
        free(disk);
        free(mem);
    }
    char *out, *err;
    const char *two[] = {"sweep", "--db", dbs[1], "--at", ats[1], "--from-memory", "--jobs", "2",
                         NULL};
    cr_assert_eq(rg_test_run(two, NULL, &out, &err), 2);
    cr_assert(strstr(err, "one core"), "%s", err);
    free(out);
    free(err);
    rg_test_rmdir(dir);
}

Test(sweep, jobs_must_be_a_positive_number)
{
    char *out, *err;
    const char *args[] = {"sweep", "--db", "/nonexistent.db", "--at", "2026-03-20T00:00:00Z",
                          "--jobs", "0", NULL};
    cr_assert_eq(rg_test_run(args, NULL, &out, &err), 2);
    cr_assert(strstr(err, "positive whole number"), "%s", err);
    free(out);
    free(err);
}

/* Runs regimen with args; its stdout (rc 0, or 1 for diff's differences). */
static char *run_out(const char *const *args, int ok1)
{
    char *out, *err;
    int rc = rg_test_run(args, NULL, &out, &err);
    cr_assert(rc == 0 || (ok1 && rc == 1), "%s exited %d: %s", args[0], rc, err);
    free(err);
    return out;
}

/* simulate and diff split patients over worker threads as sweep does (issue
 * 26): the same output, byte for byte, as one thread, on a generated cohort
 * over three clinics (one with its own zone and hours and a failing
 * protocol) and on the example clinics. */
Test(sweep, parallel_simulate_and_diff_give_the_single_threaded_output)
{
    char dir[256], path[512], gamma[600], oldd[600], newd[600];
    rg_test_tmpdir(dir);
    char *events = cohort(600);
    rg_test_write(dir, "cohort.jsonl", events);
    free(events);
    char *acute = rg_test_read("protocols/ketamine/acute.lua");
    snprintf(path, sizeof path, "%s/gamma", dir);
    cr_assert_eq(mkdir(path, 0755), 0);
    rg_test_write(path, "acute.lua", acute);
    rg_test_write(path, "fragile.lua",
                  "local R = require 'regimen'\n"
                  "return R.protocol { id = 'gamma.fragile', version = '1.0.0',\n"
                  "  description = 'fails for some patients', params = {},\n"
                  "  rules = { { id = 'gamma.fragile', severity = 'info', check = function(h, now, p)\n"
                  "    if tonumber(h.patient:sub(2)) % 5 == 0 then error('no plan for ' .. h.patient) end\n"
                  "    if h:count('infusion') > 3 then return R.alert { message = 'many' } end\n"
                  "  end } } }\n");
    rg_test_write(path, "clinic.lua",
                  "return { timezone = 'Europe/Berlin', hours = { mon = {'08:00', '17:00'},\n"
                  "  tue = {'08:00', '17:00'}, wed = {'08:00', '17:00'}, thu = {'08:00', '17:00'} },\n"
                  "  closures = { '2026-04-06' } }\n");
    snprintf(gamma, sizeof gamma, "gamma=%s", path);
    /* diff: the shipped acute protocol against a change of one parameter */
    snprintf(oldd, sizeof oldd, "%s/old", dir);
    snprintf(newd, sizeof newd, "%s/new", dir);
    cr_assert_eq(mkdir(oldd, 0755), 0);
    cr_assert_eq(mkdir(newd, 0755), 0);
    rg_test_write(oldd, "acute.lua", acute);
    char *changed = strstr(acute, "infusion_due_after     = days(2)");
    cr_assert_not_null(changed, "acute.lua no longer has the parameter this test changes");
    changed[strlen("infusion_due_after     = days(")] = '3';
    rg_test_write(newd, "acute.lua", acute);
    snprintf(path, sizeof path, "%s/cohort.jsonl", dir);
    const char *formats[] = {"jsonl", "text"};
    for (int f = 0; f < 2; f++) {
        char *one = NULL;
        for (int j = 1; j <= 3; j++) {
            char jobs[4];
            snprintf(jobs, sizeof jobs, "%d", j);
            const char *args[] = {"simulate", "--events", path, "--until", "2026-09-01T00:00:00Z",
                                  "--format", formats[f], "--clinic", gamma, "--jobs", jobs, NULL};
            char *out = run_out(args, 1);
            if (j == 1) {
                one = out;
                cr_assert(strstr(one, "regimen.evaluation-failed") && strstr(one, "resolved"),
                          "the simulation fails or resolves nothing: the comparison would be weak");
                continue;
            }
            cr_assert(strcmp(one, out) == 0, "simulate --format %s differs between --jobs 1 and "
                      "--jobs %d", formats[f], j);
            free(out);
        }
        free(one);
    }
    /* with no evaluation error, --jobs 2's text lines are made as the
     * transitions are written, not read back from the store: the same bytes */
    char *outs[2], calm[600], calmd[600];
    snprintf(calmd, sizeof calmd, "%s/calm", dir);
    cr_assert_eq(mkdir(calmd, 0755), 0);
    rg_test_write(calmd, "acute.lua", acute);
    rg_test_write(calmd, "clinic.lua",
                  "return { timezone = 'Europe/Berlin', hours = { mon = {'08:00', '17:00'},\n"
                  "  tue = {'08:00', '17:00'}, wed = {'08:00', '17:00'}, thu = {'08:00', '17:00'} } }\n");
    snprintf(calm, sizeof calm, "gamma=%s", calmd);
    for (int j = 1; j <= 2; j++) {
        const char *args[] = {"simulate", "--events", path, "--until", "2026-09-01T00:00:00Z",
                              "--clinic", calm, "--jobs", j == 1 ? "1" : "2", NULL};
        outs[j - 1] = run_out(args, 0);
    }
    cr_assert(strstr(outs[0], "resolved") && strstr(outs[0], "(notify "),
              "the simulation resolves nothing or moves no notification: the comparison would be weak");
    cr_assert(strcmp(outs[0], outs[1]) == 0, "simulate's text differs between --jobs 1 and 2 "
              "with no evaluation error");
    /* without --db the transitions go to the text alone (rg_sweep_opts.unstored);
     * with --db they are still stored, every one, the text the same */
    char simdb[600];
    snprintf(simdb, sizeof simdb, "%s/sim.db", dir);
    const char *dbargs[] = {"simulate", "--db", simdb, "--events", path, "--until",
                            "2026-09-01T00:00:00Z", "--clinic", calm, "--jobs", "2", NULL};
    char *dbout = run_out(dbargs, 0);
    cr_assert_str_eq(outs[0], dbout, "simulate --db's text differs from simulate's");
    long lines = 0;
    for (const char *c = dbout; *c; c++)
        lines += *c == '\n';
    cr_assert_eq(count_rows(simdb, "SELECT count(*) FROM transitions"), lines - 1,
                 "simulate --db --jobs 2 stored not every transition it printed");
    free(dbout);
    free(outs[0]);
    free(outs[1]);
    free(acute);
    char *one = NULL;
    for (int j = 1; j <= 2; j++) {
        const char *args[] = {"diff", "--events", path, "--until", "2026-09-01T00:00:00Z",
                              "--jobs", j == 1 ? "1" : "2", oldd, newd, NULL};
        char *out = run_out(args, 1);
        if (j == 1) {
            one = out;
            cr_assert_gt(strlen(one), 0, "the change makes no difference");
        } else {
            cr_assert_str_eq(one, out, "diff differs between --jobs 1 and --jobs 2");
            free(out);
        }
    }
    free(one);
    /* the example clinics, each on its own protocols */
    static const char *const ex[] = {"north", "south", "west"};
    for (int i = 0; i < 3; i++) {
        char tl[256], cl[256];
        snprintf(tl, sizeof tl, "examples/clinics/%s/timeline.jsonl", ex[i]);
        snprintf(cl, sizeof cl, "%s=examples/clinics/%s", ex[i], ex[i]);
        const char *a1[] = {"simulate", "--events", tl, "--until", "2027-01-01T00:00:00Z",
                            "--format", "jsonl", "--clinic", cl, "--jobs", "1", NULL};
        const char *a2[] = {"simulate", "--events", tl, "--until", "2027-01-01T00:00:00Z",
                            "--format", "jsonl", "--clinic", cl, "--jobs", "2", NULL};
        char *o1 = run_out(a1, 1), *o2 = run_out(a2, 1);
        cr_assert_gt(strlen(o1), 0);
        cr_assert_str_eq(o1, o2, "example clinic %s: --jobs 2 differs from --jobs 1", ex[i]);
        free(o1);
        free(o2);
    }
    rg_test_rmdir(dir);
}
