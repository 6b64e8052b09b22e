/*
 * test_incremental.c - incremental evaluation (a rule runs again only when
 * what it read changed; docs/protocols.md, "What makes a rule run again")
 * gives the same transitions as evaluating every rule at every step. The
 * real binary under REGIMEN_VERIFY_INCREMENTAL=1 (both evaluations at every
 * step, compared; the first difference fails the command, naming patient,
 * rule and step) on every example clinic, every scenario test of the shipped
 * sets and the examples, a generated cohort (bench/gen.c), and a protocol
 * whose rules read the history in the ways a naive tracker misses. Run from
 * the repository root (make test does). Also `regimen test --jobs N`: the
 * scenarios spread over threads print exactly what one thread prints.
 * And `regimen serve`, which keeps each rule's answer per patient from one
 * evaluation to the next (the history cache): a cohort posted through HTTP
 * under REGIMEN_VERIFY_INCREMENTAL=1 gives the transitions of a service
 * that evaluates every rule every time, and a reload's new protocol shows
 * at the next event however little of what it reads changed.
 */
#define RG_TEST_SERVE
#include "helpers.h"

#include "core/rg.h"

#include <jansson.h>
#include <time.h>

/* Runs args with the environment variable name set to value (NULL: unset). */
static int rg__run_env(const char *name, const char *value, const char *const *args, char **out,
                       char **err)
{
    if (value)
        setenv(name, value, 1);
    else
        unsetenv(name);
    int rc = rg_test_run(args, NULL, out, err);
    unsetenv(name);
    return rc;
}

/* Rule checks per patient from simulate's summary line. */
static double rg__checks(const char *err)
{
    const char *p = strstr(err, "rule checks (");
    cr_assert_not_null(p, "%s", err);
    return strtod(p + strlen("rule checks ("), NULL);
}

static void rg__example(const char *clinic, const char *until)
{
    char events[256], spec[256], expected_path[256];
    snprintf(events, sizeof events, "examples/clinics/%s/timeline.jsonl", clinic);
    snprintf(spec, sizeof spec, "%s=examples/clinics/%s", clinic, clinic);
    snprintf(expected_path, sizeof expected_path, "examples/clinics/%s/expected.jsonl", clinic);
    const char *args[] = {"simulate", "--events", events, "--until", until, "--clinic", spec,
                          "--format", "jsonl", NULL};
    char *out, *err;
    int rc = rg__run_env("REGIMEN_VERIFY_INCREMENTAL", "1", args, &out, &err);
    cr_assert_eq(rc, 0, "%s: exit %d, stderr:\n%s", clinic, rc, err);
    char *expected = rg_test_read(expected_path);
    cr_assert_str_eq(out, expected, "%s: simulate output differs from expected.jsonl", clinic);
    free(expected);
    free(out);
    free(err);
}

Test(incremental, every_example_clinic_verified_step_by_step)
{
    rg__example("north", "2026-05-01T00:00:00Z");
    rg__example("south", "2026-09-01T00:00:00Z");
    rg__example("west", "2026-05-01T00:00:00Z");
    /* corrections: the history is bound anew when a correction takes effect */
    const char *args[] = {"simulate", "--events", "examples/corrections/timeline.jsonl", "--until",
                          "2026-03-04T00:00:00Z", "--format", "jsonl", NULL};
    char *out, *err;
    int rc = rg__run_env("REGIMEN_VERIFY_INCREMENTAL", "1", args, &out, &err);
    cr_assert_eq(rc, 0, "corrections: exit %d, stderr:\n%s", rc, err);
    char *expected = rg_test_read("examples/corrections/expected.jsonl");
    cr_assert_str_eq(out, expected, "corrections: simulate output differs from expected.jsonl");
    free(expected);
    free(out);
    free(err);
}

Test(incremental, every_scenario_test_verified_step_by_step)
{
    const char *sets[][3] = {
        {"test", NULL, NULL},
        {"test", "examples/clinics/south/tests", NULL},
        {"test", "examples/clinics/west/tests", NULL},
        {"test", "examples/notify/tests", NULL},
    };
    for (size_t i = 0; i < sizeof sets / sizeof sets[0]; i++) {
        char *out, *err;
        int rc = rg__run_env("REGIMEN_VERIFY_INCREMENTAL", "1", sets[i], &out, &err);
        cr_assert_eq(rc, 0, "%s: exit %d:\n%s%s", sets[i][1] ? sets[i][1] : "shipped", rc, out,
                     err);
        cr_assert(strstr(out, " 0 failed") && !strstr(err, "incremental evaluation differs"),
                  "%s%s", out, err);
        free(out);
        free(err);
    }
}

Test(incremental, generated_cohort_same_transitions_as_full_evaluation)
{
    char dir[256], cmd[1024], events[300];
    rg_test_tmpdir(dir);
    snprintf(events, sizeof events, "%s/cohort.jsonl", dir);
    snprintf(cmd, sizeof cmd, "cc -O1 -o %s/gen bench/gen.c -lm && %s/gen 150 4 7 > %s", dir, dir,
             events);
    cr_assert_eq(system(cmd), 0, "%s", cmd);
    const char *args[] = {"simulate", "--jobs", "1", "--events", events, "--until",
                          "2028-01-01T00:00:00Z", "--format", "jsonl", NULL};
    char *full, *inc, *ver, *err_full, *err_inc, *err_ver;
    cr_assert_eq(rg__run_env("REGIMEN_INCREMENTAL", "0", args, &full, &err_full), 0, "%s",
                 err_full);
    cr_assert_eq(rg__run_env("REGIMEN_INCREMENTAL", NULL, args, &inc, &err_inc), 0, "%s",
                 err_inc);
    cr_assert_eq(rg__run_env("REGIMEN_VERIFY_INCREMENTAL", "1", args, &ver, &err_ver), 0, "%s",
                 err_ver);
    cr_assert_gt(strlen(full), 10000, "the cohort raises alerts");
    cr_assert_str_eq(inc, full, "incremental and full evaluation give other transitions");
    cr_assert_str_eq(ver, full);
    /* and it is incremental: far fewer rule checks (issue 26: <= 1/4) */
    double f = rg__checks(err_full), i = rg__checks(err_inc);
    cr_assert_lt(i * 3, f, "rule checks per patient: %g incremental, %g full", i, f);
    free(full);
    free(inc);
    free(ver);
    free(err_full);
    free(err_inc);
    free(err_ver);
    rg_test_rmdir(dir);
}

/* A round every hour for 60 days (1,440 wake-ups a patient, each closing
 * the last hour's alert and opening the next), and two reminders 3 hours
 * after each check-in, due 20 s apart (the second is postponed to a minute
 * after the first: engine.c, rg__space_wake). */
static const char *const rg__hourly_lua =
    "local R = require 'regimen'\n"
    "local HOUR = 3600000\n"
    "return R.protocol { id = 'hourly', version = '1', rules = {\n"
    "  { id = 'hourly.round', severity = 'info', check = function(h, now, p)\n"
    "      local first = h:first('enrolled')\n"
    "      if not first then return end\n"
    "      local n = (now - first.at) // HOUR\n"
    "      if n >= 60 * 24 then return end\n"
    "      return R.alert { key = 'round ' .. n, message = 'hourly round ' .. n,\n"
    "                       due = first.at + n * HOUR, ends = first.at + (n + 1) * HOUR }\n"
    "    end },\n"
    "  { id = 'hourly.reminders', severity = 'info', check = function(h, now, p)\n"
    "      local c = h:last('checkin')\n"
    "      if not c then return end\n"
    "      return { R.alert { key = 'first ' .. c.id, message = 'first reminder',\n"
    "                         due = c.at + 3 * HOUR },\n"
    "               R.alert { key = 'second ' .. c.id, message = 'second reminder',\n"
    "                         due = c.at + 3 * HOUR + 20000 } }\n"
    "    end },\n"
    "} }\n";

/* simulate's output after evaluating the history of events[0..n) of dir
 * into db at until (a --db run ingests, duplicates and all, and advances
 * every patient to until). */
static char *rg__simulate_to(const char *dir, const char *db, char **events, int n,
                             const char *until)
{
    char path[400], clinic[400], *out, *err;
    rg_buf text = {0};
    for (int i = 0; i < n; i++)
        rg_buf_printf(&text, "%s\n", events[i]);
    rg_buf_add(&text, "", 1);
    rg_test_write(dir, "upto.jsonl", text.p);
    rg_buf_free(&text);
    snprintf(path, sizeof path, "%s/upto.jsonl", dir);
    snprintf(clinic, sizeof clinic, "h=%s/hourly", dir);
    const char *args[] = {"simulate", "--events", path, "--until", until, "--clinic", clinic,
                          "--format", "jsonl", db ? "--db" : NULL, db, NULL};
    int rc = rg_test_run(args, NULL, &out, &err);
    cr_assert_eq(rc, 0, "simulate --until %s exited %d:\n%s", until, rc, err);
    free(err);
    return out;
}

/* A patient with more than 1,000 wake-ups in their history: simulate (one
 * advance over the whole history) gives exactly, byte for byte, what
 * evaluating it event by event gives (simulate --db at each event's time,
 * as the service evaluates as events arrive, with a 20-day gap of no
 * evaluation in the middle: a catch-up after a downtime). Until the wake-up
 * bound counted patient time, one advance was cut at 1,000 wake-ups (the
 * rest skipped to its end) and the short ones were not. */
Test(incremental, wake_ups_past_a_thousand_same_in_one_advance_and_event_by_event,
     .timeout = 120)
{
    char dir[256], db[300], until[40];
    rg_test_tmpdir(dir);
    rg_test_write(dir, "hourly/hourly.lua", rg__hourly_lua);
    /* two patients, enrolled 37 min apart, a check-in every 4.5 days at odd
     * minutes and seconds (between the rounds) */
    enum { CHECKINS = 13, N = 2 * (CHECKINS + 1) };
    char *events[N], at[40];
    int64_t when[N];
    int n = 0;
    const int64_t t0 = INT64_C(1772352000000); /* 2026-03-01T08:00:00Z */
    for (int k = 0; k <= CHECKINS; k++)
        for (int p = 0; p < 2; p++) {
            int64_t t = t0 + p * 37 * 60000 + k * (INT64_C(108) * 3600000 + 17 * 60000 + 13000);
            iso(t, at);
            char line[256];
            snprintf(line, sizeof line,
                     "{\"id\":\"%c-%d\",\"clinic\":\"h\",\"patient\":\"%c\",\"type\":\"%s\","
                     "\"at\":\"%s\"}", "ab"[p], k, "ab"[p], k ? "checkin" : "enrolled", at);
            when[n] = t;
            events[n++] = strdup(line);
        }
    iso(t0 + INT64_C(70) * 86400000, until);

    char *one = rg__simulate_to(dir, NULL, events, N, until);
    snprintf(db, sizeof db, "%s/steps.db", dir);
    for (int i = 0; i < N; i++) {
        if (when[i] > t0 + INT64_C(20) * 86400000 && when[i] < t0 + INT64_C(40) * 86400000)
            continue; /* the downtime */
        iso(when[i], at);
        free(rg__simulate_to(dir, db, events, i + 1, at));
    }
    char *steps = rg__simulate_to(dir, db, events, N, until);

    /* more than 1,000 wake-ups: 1,440 rounds a patient */
    int rounds = 0;
    for (const char *p = one; (p = strstr(p, "\"message\":\"hourly round ")); p++)
        rounds++;
    cr_assert_eq(rounds, 2 * 2 * 60 * 24, "each round opens and resolves:\n%.2000s", one);
    cr_assert_str_eq(steps, one, "event by event gave other transitions than one advance");
    /* patient a's second reminder of its first check-in, due 20 s after
     * the first, opens a minute after it (the wake-up spacing, 3 h after an
     * event: a minute), and it is not an error (simulate exited 0) */
    char due[RG_TIME_BUFSZ], opened[RG_TIME_BUFSZ], needle[200], head[200];
    int64_t second = when[2] + 3 * INT64_C(3600000);
    rg_time_format(second + 20000, due);
    rg_time_format(second + 60000, opened);
    snprintf(needle, sizeof needle, "\"message\":\"second reminder\",\"due\":\"%s\"", due);
    snprintf(head, sizeof head, "{\"at\":\"%s\",\"state\":\"open\",\"clinic\":\"h\","
             "\"patient\":\"a\"", opened);
    const char *line = strstr(one, needle);
    cr_assert_not_null(line, "no %s:\n%.2000s", needle, one);
    while (line > one && line[-1] != '\n')
        line--;
    cr_assert(!strncmp(line, head, strlen(head)), "expected %s:\n%.300s", head, line);
    for (int i = 0; i < N; i++)
        free(events[i]);
    free(one);
    free(steps);
    rg_test_rmdir(dir);
}

/* Rules that read the history in ways a tracker of only the check's own
 * direct queries would miss: a type read only through a value another rule
 * computed (h:memo), the clock through the `now` argument and through h.now
 * in a helper outside the check, a type read inside a filter function, and
 * every type at once. Each would keep a wrong answer if its reads were not
 * seen. */
static const char *const rg__tracking_lua =
    "local R = require \"regimen\"\n"
    "local function count_x(h) return h:count(\"x\") end\n"
    "local function old(h, e) return e ~= nil and h.now >= e.at + R.days(2) end\n"
    "return R.protocol {\n"
    "  id = \"track\", version = \"1\", description = \"reads\",\n"
    "  rules = {\n"
    "    { id = \"memo.first\", severity = \"info\", description = \"computes the memo\",\n"
    "      check = function(h, now, p)\n"
    "        if h:memo(\"xs\", count_x) > 0 then return R.alert { message = \"x seen\" } end\n"
    "      end },\n"
    "    { id = \"memo.reuse\", severity = \"info\", description = \"reuses it\",\n"
    "      check = function(h, now, p)\n"
    "        local n = h:memo(\"xs\", count_x)\n"
    "        if n > 0 then return R.alert { key = n, message = \"x count \" .. n } end\n"
    "      end },\n"
    "    { id = \"clock.arg\", severity = \"info\", description = \"now\",\n"
    "      check = function(h, now, p)\n"
    "        local y = h:last(\"y\")\n"
    "        if y and now >= y.at + R.days(2) then return R.alert { message = \"y is old\" } end\n"
    "      end },\n"
    "    { id = \"clock.field\", severity = \"info\", description = \"h.now\",\n"
    "      check = function(h, now, p) -- (the argument is not used: the helper reads h.now)\n"
    "        if old(h, h:last(\"y\")) then return R.alert { message = \"y is old too\" } end\n"
    "      end },\n"
    "    { id = \"filter.reads\", severity = \"info\", description = \"z in a filter\",\n"
    "      check = function(h, now, p)\n"
    "        local c = h:count(\"y\", function(e) return h:count(\"z\") > 0 end)\n"
    "        if c > 0 then return R.alert { message = \"y with z\" } end\n"
    "      end },\n"
    "    { id = \"all.types\", severity = \"info\", description = \"every type\",\n"
    "      check = function(h, now, p)\n"
    "        local n = #h:list()\n"
    "        return R.alert { key = n, message = n .. \" events\" }\n"
    "      end },\n"
    "  },\n"
    "}\n";

static const char *const rg__tracking_events =
    "{\"id\":\"e1\",\"clinic\":\"t\",\"patient\":\"p1\",\"type\":\"x\",\"at\":\"2026-01-01T10:00:00Z\"}\n"
    "{\"id\":\"e2\",\"clinic\":\"t\",\"patient\":\"p1\",\"type\":\"y\",\"at\":\"2026-01-02T10:00:00Z\"}\n"
    "{\"id\":\"e3\",\"clinic\":\"t\",\"patient\":\"p1\",\"type\":\"z\",\"at\":\"2026-01-03T10:00:00Z\"}\n"
    "{\"id\":\"e4\",\"clinic\":\"t\",\"patient\":\"p1\",\"type\":\"x\",\"at\":\"2026-01-05T10:00:00Z\"}\n"
    "{\"id\":\"e5\",\"clinic\":\"t\",\"patient\":\"p1\",\"type\":\"w\",\"at\":\"2026-01-06T10:00:00Z\"}\n";

Test(incremental, rules_that_read_indirectly_run_again)
{
    char dir[256], spec[300], events[300];
    rg_test_tmpdir(dir);
    rg_test_write(dir, "track/track.lua", rg__tracking_lua);
    rg_test_write(dir, "events.jsonl", rg__tracking_events);
    snprintf(spec, sizeof spec, "t=%s/track", dir);
    snprintf(events, sizeof events, "%s/events.jsonl", dir);
    const char *args[] = {"simulate", "--events", events, "--until", "2026-02-01T00:00:00Z",
                          "--clinic", spec, NULL};
    char *full, *ver, *err_full, *err_ver;
    cr_assert_eq(rg__run_env("REGIMEN_INCREMENTAL", "0", args, &full, &err_full), 0, "%s",
                 err_full);
    int rc = rg__run_env("REGIMEN_VERIFY_INCREMENTAL", "1", args, &ver, &err_ver);
    cr_assert_eq(rc, 0, "exit %d:\n%s", rc, err_ver);
    cr_assert_str_eq(ver, full);
    /* what each rule must have seen: the second x through the memo, the
     * clock at the x event three days after y (no wake-up asks for it), z
     * inside the filter, the fifth event of a type no rule names */
    const char *want[] = {
        "2026-01-05T10:00:00Z     open      t           p1          memo.reuse",
        "2026-01-05T10:00:00Z     resolved  t           p1          memo.reuse",
        "2026-01-05T10:00:00Z     open      t           p1          clock.arg",
        "2026-01-05T10:00:00Z     open      t           p1          clock.field",
        "2026-01-03T10:00:00Z     open      t           p1          filter.reads",
        "2026-01-06T10:00:00Z     open      t           p1          all.types ",
    };
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++)
        cr_assert(strstr(full, want[i]), "missing '%s' in:\n%s", want[i], full);
    free(full);
    free(ver);
    free(err_full);
    free(err_ver);
    rg_test_rmdir(dir);
}

/* h:memo values stand across the steps of an evaluation while nothing they
 * read changed (docs/protocols.md, "What makes a rule run again"): each rule
 * here would keep a wrong answer if a stale value were kept (a memo over a
 * type whose new event arrives, one that reads h.now, one given `now`, one
 * whose function is a closure over `now`), and the last one's value must be
 * computed once for the whole evaluation, not at every step. */
static const char *const rg__memo_lua =
    "local R = require \"regimen\"\n"
    "local function count_x(h) return h:count(\"x\") end\n"
    "local function y_old(h)\n"
    "  local y = h:last(\"y\")\n"
    "  return y ~= nil and h.now >= y.at + R.days(2)\n"
    "end\n"
    "local function y_old_at(h, t)\n"
    "  local y = h:last(\"y\")\n"
    "  return y ~= nil and t >= y.at + R.days(2)\n"
    "end\n"
    "local function count_q(h)\n"
    "  print(\"computing qs\")\n"
    "  return h:count(\"q\")\n"
    "end\n"
    "return R.protocol {\n"
    "  id = \"memo\", version = \"1\", description = \"h:memo values kept across steps\",\n"
    "  rules = {\n"
    "    { id = \"memo.type\", severity = \"info\", description = \"a memo over x, x arrives\",\n"
    "      check = function(h, now, p)\n"
    "        local n = h:memo(\"xs\", count_x)\n"
    "        if n > 0 then return R.alert { key = n, message = { \"{n} x so far\", n = n } } end\n"
    "      end },\n"
    "    { id = \"memo.clock\", severity = \"info\", description = \"a memo that reads h.now\",\n"
    "      check = function(h, now, p)\n"
    "        if h:memo(\"y_old\", y_old) then return R.alert { message = \"y is old (h.now)\" } end\n"
    "      end },\n"
    "    { id = \"memo.now_arg\", severity = \"info\", description = \"now passed to a memo\",\n"
    "      check = function(h, now, p)\n"
    "        if h:memo(\"y_old_at\", y_old_at, now) then\n"
    "          return R.alert { message = \"y is old (now)\" }\n"
    "        end\n"
    "      end },\n"
    "    { id = \"memo.closure\", severity = \"info\", description = \"a closure over now\",\n"
    "      check = function(h, now, p)\n"
    "        local old = h:memo(\"y_old_closure\", function(hh)\n"
    "          local y = hh:last(\"y\")\n"
    "          return y ~= nil and now >= y.at + R.days(2)\n"
    "        end)\n"
    "        if old then return R.alert { message = \"y is old (closure)\" } end\n"
    "      end },\n"
    "    { id = \"memo.kept\", severity = \"info\", description = \"every type, and a memo kept\",\n"
    "      check = function(h, now, p)\n"
    "        local n = #h:list()\n"
    "        return R.alert { key = n + h:memo(\"qs\", count_q), message = \"events seen\" }\n"
    "      end },\n"
    "  },\n"
    "}\n";

Test(incremental, memo_values_kept_only_while_what_they_read_is_unchanged)
{
    char dir[256], spec[300], events[300];
    rg_test_tmpdir(dir);
    rg_test_write(dir, "memo/memo.lua", rg__memo_lua);
    rg_test_write(dir, "events.jsonl", rg__tracking_events);
    snprintf(spec, sizeof spec, "t=%s/memo", dir);
    snprintf(events, sizeof events, "%s/events.jsonl", dir);
    const char *args[] = {"simulate", "--events", events, "--until", "2026-02-01T00:00:00Z",
                          "--clinic", spec, NULL};
    char *full, *inc, *ver, *err_full, *err_inc, *err_ver;
    cr_assert_eq(rg__run_env("REGIMEN_INCREMENTAL", "0", args, &full, &err_full), 0, "%s",
                 err_full);
    cr_assert_eq(rg__run_env("REGIMEN_INCREMENTAL", NULL, args, &inc, &err_inc), 0, "%s",
                 err_inc);
    int rc = rg__run_env("REGIMEN_VERIFY_INCREMENTAL", "1", args, &ver, &err_ver);
    cr_assert_eq(rc, 0, "exit %d:\n%s", rc, err_ver);
    cr_assert_str_eq(inc, full);
    cr_assert_str_eq(ver, full);
    const char *want[] = {
        "2026-01-05T10:00:00Z     open      t           p1          memo.type                   info      2 x so far",
        "2026-01-05T10:00:00Z     open      t           p1          memo.clock ",
        "2026-01-05T10:00:00Z     open      t           p1          memo.now_arg ",
        "2026-01-05T10:00:00Z     open      t           p1          memo.closure ",
    };
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++)
        cr_assert(strstr(full, want[i]), "missing '%s' in:\n%s", want[i], full);
    /* "qs" reads a type no event has: computed at each of the 5 steps when
     * every rule runs every step, once when values are kept */
    int n_full = 0, n_inc = 0;
    for (const char *p = err_full; (p = strstr(p, "print: computing qs")); p++)
        n_full++;
    for (const char *p = err_inc; (p = strstr(p, "print: computing qs")); p++)
        n_inc++;
    cr_assert_eq(n_full, 5, "%s", err_full);
    cr_assert_eq(n_inc, 1, "%s", err_inc);
    free(full);
    free(inc);
    free(ver);
    free(err_full);
    free(err_inc);
    free(err_ver);
    rg_test_rmdir(dir);
}

Test(test_jobs, scenarios_over_threads_print_the_same)
{
    const char *one[] = {"test", "--jobs", "1", NULL};
    const char *three[] = {"test", "--jobs", "3", NULL};
    const char *dflt[] = {"test", NULL};
    char *o1, *o3, *od, *e1, *e3, *ed;
    cr_assert_eq(rg_test_run(one, NULL, &o1, &e1), 0, "%s%s", o1, e1);
    cr_assert_eq(rg_test_run(three, NULL, &o3, &e3), 0, "%s%s", o3, e3);
    cr_assert_eq(rg_test_run(dflt, NULL, &od, &ed), 0, "%s%s", od, ed);
    cr_assert(strstr(o1, " 0 failed"), "%s", o1);
    cr_assert_str_eq(o3, o1);
    cr_assert_str_eq(od, o1);
    free(o1), free(o3), free(od), free(e1), free(e3), free(ed);
    /* paths, a missing one, and a failing scenario among them: the same
     * lines in the same order, the same exit */
    char dir[256], spec[300];
    rg_test_tmpdir(dir);
    rg_test_write(dir, "tests/bad_test.lua",
                  "return { { name = \"expects what never comes\", horizon = \"2026-04-01T00:00:00Z\",\n"
                  "  events = { { \"2026-03-01T09:00:00Z\", \"enrolled\", { program = \"ketamine\" } } },\n"
                  "  expect = { { \"2026-03-02T09:00:00Z\", \"open\", \"acute.infusion-due\" } } } }\n");
    rg_test_write(dir, "p.lua", "return require(\"regimen\").protocol { id = \"x\", version = \"1\",\n"
                  "  description = \"x\", rules = {} }\n");
    snprintf(spec, sizeof spec, "%s/tests", dir);
    const char *a1[] = {"test", "--jobs", "1", "examples/clinics/south/tests", "/nonexistent/x",
                        spec, "examples/clinics/west/tests", NULL};
    const char *a2[] = {"test", "--jobs", "2", "examples/clinics/south/tests", "/nonexistent/x",
                        spec, "examples/clinics/west/tests", NULL};
    int r1 = rg_test_run(a1, NULL, &o1, &e1), r2 = rg_test_run(a2, NULL, &o3, &e3);
    cr_assert_eq(r1, 1, "%s%s", o1, e1);
    cr_assert_eq(r2, r1);
    cr_assert(strstr(o1, "FAIL /nonexistent/x") && strstr(o1, "FAIL ") &&
              strstr(o1, "bad_test.lua: scenario 1"), "%s", o1);
    cr_assert_str_eq(o3, o1);
    free(o1), free(o3), free(e1), free(e3);
    rg_test_rmdir(dir);
}

/* ---- the service: answers kept from one evaluation of a patient to the next ---- */

/* A metric's value in a /metrics text (0 when absent). */
static double rg__metric(const char *text, const char *name)
{
    const char *p = strstr(text, name);
    return p ? strtod(p + strlen(name), NULL) : 0;
}

/* Starts `regimen serve` in dir/name on clinic c0 with the shipped ketamine
 * protocols and rg__c0_threads evaluation threads (2 unless a test says),
 * with env=value set (NULL: unset). */
static int rg__c0_threads = 2;
static void rg__serve_c0(server *s, const char *dir, const char *name, const char *env,
                         const char *value)
{
    char cwd[512], cfg[2048], sub[300];
    cr_assert_not_null(getcwd(cwd, sizeof cwd));
    snprintf(s->dir, sizeof s->dir, "%s/%s", dir, name);
    snprintf(sub, sizeof sub, "%s/config.json", name);
    snprintf(s->db, sizeof s->db, "%s/serve.db", s->dir);
    snprintf(s->config, sizeof s->config, "%s/config.json", s->dir);
    snprintf(s->log, sizeof s->log, "%s/serve.log", s->dir);
    snprintf(cfg, sizeof cfg,
             "{ \"listen\": \"127.0.0.1:0\",\n"
             "  \"clinics\": { \"c0\": { \"protocols\": \"%s/protocols/ketamine\",\n"
             "                          \"tokens\": [\"" TOKEN_A "\"] } },\n"
             "  \"limits\": { \"evaluation_threads\": %d } }\n", cwd, rg__c0_threads);
    rg_test_write(dir, sub, cfg);
    if (env && value)
        setenv(env, value, 1);
    server_start(s);
    if (env)
        unsetenv(env);
}

/* Posts the cohort's events (lines of JSON) through HTTP, BATCH at a time,
 * the patients taken in turn so that each is evaluated once per event or
 * two: every evaluation but a patient's first can start from kept answers. */
static void rg__post_cohort(const server *s, char **lines, int n, int BATCH)
{
    rg_buf body = {0};
    int in_batch = 0;
    for (int i = 0; i <= n; i++) {
        if (i < n) {
            rg_buf_add(&body, in_batch ? "," : "[", 1);
            rg_buf_add(&body, lines[i], strlen(lines[i]));
            in_batch++;
        }
        if (in_batch && (in_batch == BATCH || i == n)) {
            char *out;
            rg_buf_add(&body, "]", 2); /* (with the NUL) */
            int st = http(s->port, "POST", "/v1/events", TOKEN_A, body.p, &out);
            cr_assert_eq(st, 200, "POST answered %d: %s\nserver log:\n%s", st, out,
                         rg_test_read(s->log));
            free(out);
            body.len = 0;
            in_batch = 0;
        }
    }
    rg_buf_free(&body);
}

static int rg__strcmp_p(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The clinic's transitions, one line each, "patient n protocol rule key
 * state" (n: the patient's nth transition), sorted: what two services must
 * agree on whatever the wall clock said (`at` is left out). */
static char *rg__transitions(const server *s)
{
    long long after = 0;
    size_t cap = 0, nl = 0;
    char **lines = NULL;
    json_t *count = json_object();
    for (;;) {
        char path[80], *out;
        snprintf(path, sizeof path, "/v1/transitions?after=%lld&limit=5000", after);
        cr_assert_eq(http(s->port, "GET", path, TOKEN_A, NULL, &out), 200, "%s", out);
        json_error_t je;
        json_t *doc = json_loads(out, 0, &je);
        cr_assert_not_null(doc, "%s: %s", je.text, out);
        json_t *arr = json_object_get(doc, "transitions");
        size_t k;
        json_t *t;
        json_array_foreach(arr, k, t) {
            const char *patient = json_string_value(json_object_get(t, "patient"));
            json_int_t seen = json_integer_value(json_object_get(count, patient));
            json_object_set_new(count, patient, json_integer(seen + 1));
            char line[1024];
            snprintf(line, sizeof line, "%s %05lld %s %s %s %s", patient, (long long)seen,
                     json_string_value(json_object_get(t, "protocol")),
                     json_string_value(json_object_get(t, "rule")),
                     json_string_value(json_object_get(t, "key")),
                     json_string_value(json_object_get(t, "state")));
            if (nl == cap)
                lines = realloc(lines, (cap = cap ? 2 * cap : 1024) * sizeof *lines);
            lines[nl++] = strdup(line);
        }
        long long last = (long long)json_integer_value(json_object_get(doc, "last"));
        size_t got = json_array_size(arr);
        json_decref(doc);
        free(out);
        if (!got)
            break;
        after = last;
    }
    json_decref(count);
    qsort(lines, nl, sizeof *lines, rg__strcmp_p);
    rg_buf all = {0};
    for (size_t i = 0; i < nl; i++) {
        rg_buf_printf(&all, "%s\n", lines[i]);
        free(lines[i]);
    }
    free(lines);
    rg_buf_add(&all, "", 1);
    return all.p;
}

/* A bench/gen.c cohort of one clinic in dir (its path in events): courses
 * that ended in the past, so every event is evaluated when posted. */
static void past_cohort(const char *dir, int patients, int seed, char *events, size_t n)
{
    char cmd[1024], start[16];
    time_t t0 = time(NULL) - 600 * 86400;
    strftime(start, sizeof start, "%Y-%m-%d", gmtime(&t0));
    snprintf(events, n, "%s/cohort.jsonl", dir);
    snprintf(cmd, sizeof cmd, "cc -O1 -o %s/gen bench/gen.c -lm && %s/gen %d 1 %d %s > %s", dir,
             dir, patients, seed, start, events);
    cr_assert_eq(system(cmd), 0, "%s", cmd);
}

/* A tick every 10 ms for 900 ms after each ping: 90 wake-ups a ping, none
 * postponed (the wait is a hundredth of the time since the ping: under 9 ms). */
static const char rg__tick_lua[] =
    "local R = require 'regimen'\n"
    "return R.protocol { id = 'tick', version = '1', rules = {\n"
    "  { id = 'tick.tock', severity = 'info', check = function(h, now, p)\n"
    "      local ping = h:last('ping')\n"
    "      if not ping then return end\n"
    "      local n = (now - ping.at) // 10\n"
    "      if n >= 90 then return end\n"
    "      return R.alert { key = ping.id .. ':' .. n, message = 'tick ' .. n,\n"
    "                       due = ping.at + n * 10, ends = ping.at + (n + 1) * 10 }\n"
    "    end } } }\n";

/* The feed of north as "at state patient rule key" lines (all pages). */
static int rg__feed_lines(const server *s, char **lines, int max)
{
    long long after = 0;
    int n = 0;
    for (;;) {
        char path[80], *out;
        snprintf(path, sizeof path, "/v1/transitions?after=%lld&limit=1000", after);
        cr_assert_eq(http(s->port, "GET", path, TOKEN_A, NULL, &out), 200, "%s", out);
        int got = rg_test_transition_lines(out, lines + n, max - n);
        n += got;
        const char *last = strstr(out, "\"last\":");
        after = last ? atoll(last + strlen("\"last\":")) : 0;
        free(out);
        if (!got || n == max)
            return n;
    }
}

static server rg__tick_s;
static void rg__tick_fini(void) { server_kill(&rg__tick_s); }

/* The service, evaluating as time passes (a wake-up job every 10 ms or so,
 * each a short advance; a bigger one when it falls behind), gives exactly
 * the transitions simulate gives in one advance per patient, for 1,080
 * wake-ups (12 pings a second apart, posted at once ahead of their time):
 * a history the old cap of 1,000 wake-ups per advance cut in simulate. */
Test(incremental, serve_wake_ups_past_a_thousand_same_as_simulate, .timeout = 120,
     .fini = rg__tick_fini)
{
    server *s = &rg__tick_s;
    char cfg[1024], dir[256];
    rg_test_tmpdir(dir);
    snprintf(s->dir, sizeof s->dir, "%s", dir);
    snprintf(s->db, sizeof s->db, "%s/serve.db", dir);
    snprintf(s->config, sizeof s->config, "%s/config.json", dir);
    snprintf(s->log, sizeof s->log, "%s/serve.log", dir);
    rg_test_write(dir, "tick/tick.lua", rg__tick_lua);
    rg_test_write(dir, "tick/clinic.lua", RG_TEST_EVENTS); /* (ping: helpers.h) */
    snprintf(cfg, sizeof cfg,
             "{ \"listen\": \"127.0.0.1:0\", \"clinics\": { \"north\": { \"protocols\": "
             "\"%s/tick\", \"tokens\": [\"" TOKEN_A "\"] } } }\n", dir);
    rg_test_write(dir, "config.json", cfg);
    server_start(s);
    enum { PINGS = 12, MAX = 4000 };
    int64_t t0 = (now_ms() / 1000 + 2) * 1000;
    rg_buf body = {0}, file = {0};
    for (int k = 0; k < PINGS; k++) {
        char id[16];
        snprintf(id, sizeof id, "k%d", k);
        char *ev = ping("north", id, "t1", t0 + k * 1000, "ping");
        rg_buf_printf(&body, "%s%s", k ? "," : "[", ev);
        rg_buf_printf(&file, "%s\n", ev);
        free(ev);
    }
    rg_buf_add(&body, "]", 2);
    rg_buf_add(&file, "", 1);
    char *out, *err;
    cr_assert_eq(http(s->port, "POST", "/v1/events", TOKEN_A, body.p, &out), 200, "%s", out);
    free(out);

    char events[400], until[40], clinic[400];
    rg_test_write(dir, "events.jsonl", file.p);
    snprintf(events, sizeof events, "%s/events.jsonl", dir);
    snprintf(clinic, sizeof clinic, "north=%s/tick", dir);
    iso(t0 + PINGS * 1000 + 1000, until);
    const char *args[] = {"simulate", "--events", events, "--until", until, "--clinic", clinic,
                          "--format", "jsonl", NULL};
    char *sim;
    cr_assert_eq(rg_test_run(args, NULL, &sim, &err), 0, "%s", err);
    static char *a[MAX], *b[MAX];
    int nb = rg_test_transition_lines(sim, b, MAX);
    cr_assert_eq(nb, PINGS * 90 * 2, "each tick opens and resolves: %d transitions", nb);

    /* the service as time passes: until its feed has them all, or long after */
    int na = 0;
    for (int i = 0; i < 600; i++) {
        for (int k = 0; k < na; k++)
            free(a[k]);
        na = rg__feed_lines(s, a, MAX);
        if (na >= nb && now_ms() > t0 + PINGS * 1000 + 1000)
            break;
        usleep(100000);
    }
    cr_assert_eq(na, nb, "serve gave %d transitions, simulate %d:\n%s", na, nb,
                 rg_test_read(s->log));
    qsort(a, (size_t)na, sizeof *a, rg_test_cmp_str);
    qsort(b, (size_t)nb, sizeof *b, rg_test_cmp_str);
    for (int i = 0; i < na; i++)
        cr_assert_str_eq(a[i], b[i]);
    for (int i = 0; i < na; i++)
        free(a[i]), free(b[i]);
    free(sim);
    free(err);
    rg_buf_free(&body);
    rg_buf_free(&file);
    cr_assert_eq(server_stop(s, SIGTERM), 0);
    rg_test_rmdir(dir);
}

static server rg__kept_s[2];
static void rg__kept_fini(void)
{
    server_kill(&rg__kept_s[0]);
    server_kill(&rg__kept_s[1]);
}

/* The cohort's lines in rounds (each patient's first event, then each
 * one's second...), in order[]: how many (n), and the patients (*np). */
static int rg__rounds(char *text, char **order, int *np_out)
{
    char *lines[4000], *patients[64];
    int n = 0, np = 0, of[4000];
    for (char *line = strtok(text, "\n"); line && n < 4000; line = strtok(NULL, "\n")) {
        const char *p = strstr(line, "\"patient\":\"");
        cr_assert_not_null(p);
        int k = 0;
        while (k < np && strncmp(patients[k], p, strcspn(p + 11, "\"") + 11))
            k++;
        if (k == np) {
            cr_assert_lt(np, 64);
            patients[np++] = (char *)p;
        }
        of[n] = k;
        lines[n++] = line;
    }
    int m = 0;
    for (int round = 0; m < n; round++)
        for (int k = 0; k < np; k++) {
            int seen = 0;
            for (int i = 0; i < n; i++)
                if (of[i] == k && seen++ == round)
                    order[m++] = lines[i];
        }
    *np_out = np;
    return n;
}

/* The cohort (order, n events, per a request) posted to a service that
 * evaluates in full (tag a) and to one that checks every evaluation from
 * kept answers against a full one (tag b): both services' transitions (the
 * same, and alerts raised) and the second's /metrics; its log says that no
 * evaluation differed. */
static void rg__full_and_verified(const char *dir, char **order, int n, int per, const char *a,
                                  const char *b, char **full, char **ver, char **metrics)
{
    rg__serve_c0(&rg__kept_s[0], dir, a, "REGIMEN_INCREMENTAL", "0");
    rg__post_cohort(&rg__kept_s[0], order, n, per);
    *full = rg__transitions(&rg__kept_s[0]);
    cr_assert_eq(server_stop(&rg__kept_s[0], SIGTERM), 0);
    rg__serve_c0(&rg__kept_s[1], dir, b, "REGIMEN_VERIFY_INCREMENTAL", "1");
    rg__post_cohort(&rg__kept_s[1], order, n, per);
    *ver = rg__transitions(&rg__kept_s[1]);
    cr_assert_eq(http(rg__kept_s[1].port, "GET", "/metrics", TOKEN_A, NULL, metrics), 200);
    cr_assert_eq(server_stop(&rg__kept_s[1], SIGTERM), 0);
    char *log = rg_test_read(rg__kept_s[1].log);
    cr_assert_null(strstr(log, "differs from a full one"), "%s", log);
    free(log);
    cr_assert_gt(strlen(*full), 20000, "the cohort raises alerts:\n%s", *full);
    cr_assert_str_eq(*ver, *full, "kept answers give other transitions than full evaluation");
}

/* A past cohort of 40 patients in a new directory dir, its events read into
 * *text (free it) and put in rounds (rg__rounds: the patients in turn, each
 * one's events in their order) into order; returns how many, np the
 * patients. */
static int rg__cohort_rounds(char dir[256], char **text, char *order[4000], int *np)
{
    char events[300];
    rg_test_tmpdir(dir);
    past_cohort(dir, 40, 11, events, sizeof events);
    *text = rg_test_read(events);
    return rg__rounds(*text, order, np);
}

Test(incremental, serve_keeps_answers_same_transitions_as_full_evaluation, .timeout = 300,
     .fini = rg__kept_fini)
{
    char dir[256], *text, *order[4000];
    int np, n = rg__cohort_rounds(dir, &text, order, &np);
    cr_assert_gt(n, 800, "the cohort has events");

    char *full, *ver, *metrics;
    rg__full_and_verified(dir, order, n, 5, "full", "verify", &full, &ver, &metrics);
    /* and the answers were kept: most evaluations started from them */
    double hits = rg__metric(metrics, "regimen_kept_answers_total{result=\"hit\"} ");
    cr_assert_gt(hits, n / 5 * 0.5, "evaluations from kept answers: %g of about %d:\n%s", hits,
                 n / 5, metrics);
    /* one clinic: its jobs stay on the thread whose cache holds its answers */
    cr_assert_eq(rg__metric(metrics, "regimen_kept_answers_total{result=\"stale\"} "), 0, "%s",
                 metrics);
    free(metrics);
    free(full);
    free(ver);
    free(text);
    rg_test_rmdir(dir);
}

/* One clinic's patients, one event each a round, 20 patients a request,
 * over two evaluation threads: every job is shared out in runs (evaluate.c,
 * rg__shared), and a run goes back to the thread that evaluated its patient
 * last, whose engine keeps the patient's answers (rg__take_run). A run taken
 * elsewhere meanwhile (the other thread had none of its own left, or was not
 * in the share yet) leaves answers on the first thread that no longer stand:
 * when the patient comes back there they are found stale (its state moved)
 * and every rule runs. Each evaluation from kept answers is checked against
 * a full one (REGIMEN_VERIFY_INCREMENTAL): a stale answer taken up would
 * differ, and the transitions must be those of full evaluation at every
 * step. The run must have met stale answers (else it checked nothing of
 * them), and most evaluations start from kept ones (measured on a loaded
 * machine: 16-30% of them stale, against 38-45% before runs went back to
 * their patients' threads, when a run landed on either). */
Test(incremental, serve_shared_runs_find_their_kept_answers_and_never_use_stale_ones,
     .timeout = 300, .fini = rg__kept_fini)
{
    char dir[256], *text, *order[4000];
    int np, n = rg__cohort_rounds(dir, &text, order, &np);
    cr_assert_gt(np, 20, "more patients than a request holds");

    char *full, *ver, *metrics;
    rg__full_and_verified(dir, order, n, 20, "full2", "verify2", &full, &ver, &metrics);
    double hits = rg__metric(metrics, "regimen_kept_answers_total{result=\"hit\"} ");
    double stale = rg__metric(metrics, "regimen_kept_answers_total{result=\"stale\"} ");
    double runs = rg__metric(metrics, "\nregimen_shared_runs_total ");
    cr_assert_gt(runs, 0, "no job was shared:\n%s", metrics);
    cr_assert_gt(stale, 0, "no patient came back to answers another thread had outdated: "
                 "nothing checked that stale ones are not used\n%s", metrics);
    cr_assert_gt(hits, stale, "evaluations from kept answers %g, stale %g: runs do not go "
                 "back to their patients' threads\n%s", hits, stale, metrics);
    fprintf(stderr, "shared runs over two threads: %g on the helping thread, %g evaluations "
            "from kept answers, %g stale (every one checked against a full evaluation)\n",
            runs, hits, stale);
    free(metrics);
    free(full);
    free(ver);
    free(text);
    rg_test_rmdir(dir);
}

/* The clinic's feed in its order (seq), every field but the times of
 * evaluation: one line per transition. */
static char *rg__feed(const server *s)
{
    rg_buf all = {0};
    long long after = 0;
    for (;;) {
        char path[80], *out;
        snprintf(path, sizeof path, "/v1/transitions?after=%lld&limit=1000", after);
        cr_assert_eq(http(s->port, "GET", path, TOKEN_A, NULL, &out), 200, "%s", out);
        json_t *doc = json_loads(out, 0, NULL);
        cr_assert_not_null(doc, "%s", out);
        free(out);
        size_t k, got = json_array_size(json_object_get(doc, "transitions"));
        json_t *t;
        json_array_foreach(json_object_get(doc, "transitions"), k, t) {
            const char *f[] = {"patient", "protocol", "version", "rule", "severity", "key",
                               "state", "message"};
            rg_buf_printf(&all, "%lld", (long long)json_integer_value(json_object_get(t, "seq")));
            for (size_t i = 0; i < sizeof f / sizeof *f; i++)
                rg_buf_printf(&all, " %s", json_string_value(json_object_get(t, f[i])));
            rg_buf_printf(&all, " %s\n", json_is_string(json_object_get(t, "due"))
                                             ? json_string_value(json_object_get(t, "due")) : "-");
        }
        after = (long long)json_integer_value(json_object_get(doc, "last"));
        json_decref(doc);
        if (!got)
            break;
    }
    rg_buf_add(&all, "", 1);
    return all.p;
}

static server rg__share_s;
static void rg__share_fini(void) { server_kill(&rg__share_s); }

/* One clinic's requests of many patients each (whole histories, 500 events
 * a request): with two evaluation threads the idle one takes runs of the
 * job's patients (evaluate.c, rg__shared), and the feed is the one a single
 * thread gives, transition for transition, in the same order (seq). */
Test(incremental, serve_shares_a_job_over_threads_same_feed_in_the_same_order, .timeout = 300,
     .fini = rg__share_fini)
{
    char dir[256], events[300];
    rg_test_tmpdir(dir);
    past_cohort(dir, 90, 5, events, sizeof events);
    char *text = rg_test_read(events);
    char *feed[2];
    double shared[2];
    for (int threads = 1; threads <= 2; threads++) {
        char name[16];
        snprintf(name, sizeof name, "threads%d", threads);
        rg__c0_threads = threads;
        rg__serve_c0(&rg__share_s, dir, name, NULL, NULL);
        rg__c0_threads = 2;
        /* the lines in file order (a patient's together), 500 a request */
        rg_buf body = {0};
        int in = 0, posts = 0;
        for (const char *p = text; *p;) {
            size_t len = strcspn(p, "\n");
            rg_buf_add(&body, in ? "," : "[", 1);
            rg_buf_add(&body, p, len);
            p += len + (p[len] == '\n');
            if (++in == 500 || !*p) {
                char *out;
                rg_buf_add(&body, "]", 2);
                cr_assert_eq(http(rg__share_s.port, "POST", "/v1/events", TOKEN_A, body.p, &out),
                             200, "%s", out);
                free(out);
                body.len = 0;
                in = 0;
                posts++;
            }
        }
        rg_buf_free(&body);
        cr_assert_geq(posts, 4, "the cohort makes several requests");
        feed[threads - 1] = rg__feed(&rg__share_s);
        char *metrics;
        cr_assert_eq(http(rg__share_s.port, "GET", "/metrics", TOKEN_A, NULL, &metrics), 200);
        shared[threads - 1] = rg__metric(metrics, "\nregimen_shared_runs_total ");
        cr_assert_not_null(strstr(metrics, "regimen_shared_runs_total "), "%s", metrics);
        free(metrics);
        cr_assert_eq(server_stop(&rg__share_s, SIGTERM), 0);
    }
    cr_assert_eq(shared[0], 0, "one thread shares with nobody");
    cr_assert_gt(shared[1], 0, "the second thread took no run of a job's patients");
    cr_assert_gt(strlen(feed[0]), 20000, "the cohort raises alerts:\n%s", feed[0]);
    cr_assert_str_eq(feed[1], feed[0], "two threads give another feed than one");
    fprintf(stderr, "a job's patients shared: %.0f runs on the other thread, the same %zu bytes "
            "of feed\n", shared[1], strlen(feed[0]));
    free(feed[0]);
    free(feed[1]);
    free(text);
    rg_test_rmdir(dir);
}

/* The rule reads only events of type a; version 2 of it never alerts. */
static const char rg__reads_a_v1[] =
    "local R = require 'regimen'\n"
    "return R.protocol { id = 'seen', version = '1.0', rules = {\n"
    "  { id = 'seen.a', severity = 'info', check = function(h, now, p)\n"
    "      if h:last('a') then return R.alert { key = 'a', message = 'an a was seen' } end\n"
    "    end } } }\n";
static const char rg__reads_a_v2[] =
    "local R = require 'regimen'\n"
    "return R.protocol { id = 'seen', version = '2.0', rules = {\n"
    "  { id = 'seen.a', severity = 'info', check = function(h, now, p)\n"
    "      if h:last('a') and false then return R.alert { key = 'a', message = 'never' } end\n"
    "    end } } }\n";

static server rg__reload_s;
static void rg__reload_fini(void) { server_kill(&rg__reload_s); }

/* A reload invalidates every kept answer of the clinic: an event the rule
 * does not read, after a reload, shows the new version's answer (without
 * the invalidation the old answer, still open, would stand). */
Test(incremental, serve_reload_drops_kept_answers, .timeout = 60, .fini = rg__reload_fini)
{
    server *s = &rg__reload_s;
    char *out, cfg[1024];
    server_setup(s, rg__reads_a_v1, fast_protocol);
    /* a and b are this test's own event types (the reload's gate, check,
     * refuses a rule that asks for an undeclared one) */
    rg_test_write(s->dir, "a/clinic.lua", "return { events = { a = {}, b = {} } }\n");
    snprintf(cfg, sizeof cfg,
             "{ \"listen\": \"127.0.0.1:0\",\n"
             "  \"clinics\": { \"north\": { \"protocols\": \"a\", \"tokens\": [\"" TOKEN_A "\"] } },\n"
             "  \"limits\": { \"evaluation_threads\": 1 } }\n");
    rg_test_write(s->dir, "config.json", cfg);
    server_start(s);
    const char *types[] = {"a", "b", "b"};
    for (int i = 0; i < 3; i++) {
        char id[16];
        snprintf(id, sizeof id, "e%d", i);
        char *ev = ping("north", id, "p1", now_ms() - 60000 + i * 1000, types[i]);
        cr_assert_eq(http(s->port, "POST", "/v1/events", TOKEN_A, ev, &out), 200, "%s", out);
        free(out);
        free(ev);
    }
    char *before = rg__transitions(s);
    cr_assert(strstr(before, "p1 00000 seen seen.a ") && !strstr(before, "p1 00001"),
              "the alert opened once:\n%s", before);
    free(before);
    cr_assert_eq(http(s->port, "GET", "/metrics", TOKEN_A, NULL, &out), 200);
    cr_assert_geq(rg__metric(out, "regimen_kept_answers_total{result=\"hit\"} "), 2, "%s", out);
    free(out);
    rg_test_write(s->dir, "a/p.lua", rg__reads_a_v2);
    kill(s->pid, SIGHUP);
    cr_assert(log_wait(s, "protocol seen 2.0 loaded", 10000), "%s", rg_test_read(s->log));
    char *ev = ping("north", "e9", "p1", now_ms() - 1000, "b");
    cr_assert_eq(http(s->port, "POST", "/v1/events", TOKEN_A, ev, &out), 200, "%s", out);
    free(out);
    free(ev);
    char *after = rg__transitions(s), *second = strstr(after, "p1 00001 seen seen.a ");
    cr_assert(second && strstr(second, " resolved\n"),
              "version 2.0's answer (no alert) shows at the next event:\n%s\n%s", after,
              rg_test_read(s->log));
    free(after);
    cr_assert_eq(server_stop(s, SIGTERM), 0);
    rg_test_rmdir(s->dir);
}
