/*
 * test_threads.c - one clinic's slow protocols do not stop the service for
 * the others (runtime/service/evaluate.c): the real binary, two clinics in
 * one process, clinic north's only rule running into its deadline for every
 * one of 30 patients (a storm of 30 x 300 ms). During the storm /healthz and
 * clinic south's POST are answered in under a second, south's transition is
 * in its feed, and SIGTERM stops the service within the deadline plus a
 * grace, with exit status 0 and its loop closed.
 */
#define RG_TEST_SERVE
#include "helpers.h"

#include <time.h>

#define DEADLINE_MS 300
#define PATIENTS 30

/* Never returns: every evaluation is stopped by the deadline (the
 * instruction budget is set out of reach, quarantine off: limits in
 * setup). The generated patients of the reload gate (runtime/engine/check.c,
 * "check-...") are left alone, so that a reload to it is not refused. */
static const char storm_protocol[] =
    "local R = require 'regimen'\n"
    "return R.protocol { id = 'storm', version = '1.0',\n"
    "  rules = { { id = 'storm.spin', severity = 'warning', check = function(h, now, p)\n"
    "      if h.patient:sub(1, 6) == 'check-' then return nil end\n"
    "      local n = 0\n"
    "      while true do n = n + 1 end\n"
    "    end } } }\n";

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* north runs the storm, south the fast protocol; threads: 0 leaves the
 * setting out (the default: the processors available). */
static void setup(server *s, int threads)
{
    char cfg[1024], th[64] = "";
    rg_test_tmpdir(s->dir);
    snprintf(s->db, sizeof s->db, "%s/serve.db", s->dir);
    snprintf(s->config, sizeof s->config, "%s/config.json", s->dir);
    snprintf(s->log, sizeof s->log, "%s/serve.log", s->dir);
    rg_test_write(s->dir, "a/p.lua", storm_protocol);
    rg_test_write(s->dir, "b/p.lua", fast_protocol);
    rg_test_write(s->dir, "b/clinic.lua", RG_TEST_EVENTS); /* (ping, pong: helpers.h) */
    if (threads)
        snprintf(th, sizeof th, ", \"evaluation_threads\": %d", threads);
    snprintf(cfg, sizeof cfg,
             "{ \"listen\": \"127.0.0.1:0\",\n"
             "  \"clinics\": {\n"
             "    \"north\": { \"protocols\": \"a\", \"tokens\": [\"" TOKEN_A "\"] },\n"
             "    \"south\": { \"protocols\": \"b\", \"tokens\": [\"" TOKEN_B "\"] } },\n"
             "  \"limits\": { \"max_instructions\": 1000000000, \"deadline_ms\": %d,\n"
             "              \"quarantine_hits\": 0%s } }\n",
             DEADLINE_MS, th);
    rg_test_write(s->dir, "config.json", cfg);
}

/* One JSON array of a ping for each of PATIENTS patients of clinic, named
 * prefix0, prefix1, ... (malloc'd). */
static char *pings(const char *clinic, const char *prefix)
{
    char *body = malloc(PATIENTS * 200 + 16), id[32];
    size_t len = 0;
    body[len++] = '[';
    for (int i = 0; i < PATIENTS; i++) {
        snprintf(id, sizeof id, "%s%d", prefix, i);
        char *ev = ping(clinic, id, id, now_ms() - 1000, "ping");
        len += (size_t)sprintf(body + len, "%s%s", i ? "," : "", ev);
        free(ev);
    }
    body[len++] = ']';
    body[len] = '\0';
    return body;
}

/* POSTs one event for each of north's PATIENTS patients, unanswered yet,
 * and waits until the storm has begun (the first evaluation stopped). */
static int start_storm(server *s)
{
    char *body = pings("north", "s");
    int fd = http_send(s->port, "POST", "/v1/events", TOKEN_A, body);
    free(body);
    cr_assert_geq(fd, 0);
    cr_assert(log_wait(s, "clinic north, patient s0", 10000), "the storm did not start:\n%s",
              rg_test_read(s->log));
    return fd;
}

/* Whether a reply is waiting on fd (without reading it). */
static int answered(int fd)
{
    struct pollfd p = {.fd = fd, .events = POLLIN};
    return poll(&p, 1, 0) == 1;
}

Test(threads, a_deadline_storm_leaves_healthz_and_another_clinic_answering, .timeout = 120)
{
    server s = {0};
    char *out;
    setup(&s, 2);
    server_start(&s);
    int storm = start_storm(&s);

    int64_t t0 = mono_ms();
    cr_assert_eq(http(s.port, "GET", "/healthz", NULL, NULL, &out), 200, "%s", out);
    int64_t healthz_ms = mono_ms() - t0;
    cr_assert(strstr(out, "\"status\":\"ok\""), "%s", out);
    free(out);

    char *ev = ping("south", "b1", "q1", now_ms() - 5000, "ping");
    t0 = mono_ms();
    cr_assert_eq(http(s.port, "POST", "/v1/events", TOKEN_B, ev, &out), 200, "%s", out);
    int64_t post_ms = mono_ms() - t0;
    free(ev);
    cr_assert(strstr(out, "\"stored\":1"), "%s", out);
    free(out);
    /* answered after its evaluation: south's alert is in south's feed already */
    cr_assert_eq(http(s.port, "GET", "/v1/transitions?after=0", TOKEN_B, NULL, &out), 200);
    cr_assert(strstr(out, "\"rule\":\"fast.ping-overdue\"") && strstr(out, "\"patient\":\"q1\"") &&
                  strstr(out, "\"state\":\"open\""),
              "%s", out);
    free(out);
    /* and all of it while north's storm went on (its POST unanswered) */
    cr_assert(!answered(storm), "north's storm was over before the measurements");
    fprintf(stderr, "during a %d x %d ms deadline storm of another clinic: /healthz %lld ms, "
            "a POST %lld ms\n", PATIENTS, DEADLINE_MS, (long long)healthz_ms, (long long)post_ms);
    cr_assert_lt(healthz_ms, 1000);
    cr_assert_lt(post_ms, 1000);

    /* north's own request is answered once its 30 evaluations are done,
     * each stopped by the deadline and named */
    cr_assert_eq(http_read(storm, &out), 200, "%s", out);
    cr_assert(strstr(out, "\"stored\":30"), "%s", out);
    free(out);
    char *log = rg_test_read(s.log);
    cr_assert(strstr(log, "clinic north, patient s29"), "%s", log);
    free(log);
    cr_assert_eq(server_stop(&s, SIGTERM), 0);
    log = rg_test_read(s.log);
    cr_assert(strstr(log, "info stopped") && !strstr(log, "did not close cleanly"), "%s", log);
    free(log);
    rg_test_rmdir(s.dir);
}

Test(threads, sigterm_during_a_storm_stops_within_the_deadline_and_a_grace, .timeout = 120)
{
    server s = {0};
    char *out;
    setup(&s, 0); /* the default number of threads */
    server_start(&s);
    int storm = start_storm(&s);
    int64_t t0 = mono_ms();
    cr_assert_eq(kill(s.pid, SIGTERM), 0);
    int status;
    cr_assert_eq(waitpid(s.pid, &status, 0), s.pid);
    int64_t stop_ms = mono_ms() - t0;
    fprintf(stderr, "SIGTERM during a deadline storm: stopped in %lld ms (deadline %d ms)\n",
            (long long)stop_ms, DEADLINE_MS);
    char *log = rg_test_read(s.log);
    cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "status %d:\n%s", status, log);
    cr_assert(strstr(log, "info stopped") && !strstr(log, "did not close cleanly") &&
                  !strstr(log, "Sanitizer") && !strstr(log, "runtime error:"),
              "%s", log);
    free(log);
    cr_assert_lt(stop_ms, DEADLINE_MS + 1500, "stopped in %lld ms", (long long)stop_ms);
    /* north's request: its events are stored, not all evaluated: 503, send
     * again (they are kept once) */
    cr_assert_eq(http_read(storm, &out), 503, "%s", out);
    cr_assert(strstr(out, "stored but"), "%s", out);
    free(out);
    cr_assert_eq(count_rows(s.db, "SELECT count(*) FROM events WHERE clinic = 'north'"),
                 PATIENTS);
    rg_test_rmdir(s.dir);
}

/* A reload that re-evaluates every patient of a clinic whose new protocols
 * run into their deadline: the re-evaluation runs in jobs on the threads,
 * so /healthz and the other clinic answer meanwhile, and SIGTERM stops it. */
Test(threads, a_reload_storm_leaves_healthz_answering_and_stops_on_sigterm, .timeout = 120)
{
    server s = {0};
    char *out, *body;
    setup(&s, 2);
    rg_test_write(s.dir, "a/p.lua", fast_protocol); /* north starts harmless */
    server_start(&s);
    body = pings("north", "r");
    cr_assert_eq(http(s.port, "POST", "/v1/events", TOKEN_A, body, &out), 200, "%s", out);
    free(body);
    cr_assert(strstr(out, "\"stored\":30"), "%s", out);
    free(out);
    /* the storm comes with a reload */
    rg_test_write(s.dir, "a/p.lua", storm_protocol);
    cr_assert_eq(kill(s.pid, SIGHUP), 0);
    cr_assert(log_wait(&s, "protocol storm 1.0 loaded", 10000), "%s", rg_test_read(s.log));
    cr_assert(log_wait(&s, "clinic north, patient r", 10000),
              "the re-evaluation did not start:\n%s", rg_test_read(s.log));
    int64_t t0 = mono_ms();
    cr_assert_eq(http(s.port, "GET", "/healthz", NULL, NULL, &out), 200, "%s", out);
    int64_t healthz_ms = mono_ms() - t0;
    free(out);
    char *ev = ping("south", "b2", "q2", now_ms() - 5000, "ping");
    t0 = mono_ms();
    cr_assert_eq(http(s.port, "POST", "/v1/events", TOKEN_B, ev, &out), 200, "%s", out);
    int64_t post_ms = mono_ms() - t0;
    free(ev);
    free(out);
    char *log = rg_test_read(s.log);
    cr_assert_null(strstr(log, "clinic north, patient r29 "), "the re-evaluation was over "
                   "before the measurements:\n%s", log);
    free(log);
    fprintf(stderr, "during a reload's deadline storm: /healthz %lld ms, another clinic's POST "
            "%lld ms\n", (long long)healthz_ms, (long long)post_ms);
    cr_assert_lt(healthz_ms, 1000);
    cr_assert_lt(post_ms, 1000);
    t0 = mono_ms();
    int status;
    cr_assert_eq(kill(s.pid, SIGTERM), 0);
    cr_assert_eq(waitpid(s.pid, &status, 0), s.pid);
    int64_t stop_ms = mono_ms() - t0;
    log = rg_test_read(s.log);
    cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0 && strstr(log, "info stopped") &&
                  !strstr(log, "did not close cleanly") && !strstr(log, "Sanitizer"),
              "status %d:\n%s", status, log);
    free(log);
    cr_assert_lt(stop_ms, DEADLINE_MS + 1500, "stopped in %lld ms", (long long)stop_ms);
    rg_test_rmdir(s.dir);
}

/* One C call the deadline cannot interrupt: integer keys i * (2^17 - 1) all
 * fall into one bucket of a table of 2^17 nodes (Lua 5.4 hashes an integer
 * modulo the node count minus one), so the resize at key 65,537 reinserts
 * every key through a chain that grows with each: about 7 s in one call of
 * luaH_resize on this machine, with no hook in between. It prints first, so
 * the test knows the call has begun. */
static const char collide_protocol[] =
    "local R = require 'regimen'\n"
    "return R.protocol { id = 'collide', version = '1.0',\n"
    "  rules = { { id = 'collide.resize', severity = 'warning', check = function(h, now, p)\n"
    "      if h.patient:sub(1, 6) == 'check-' then return nil end\n"
    "      print('colliding keys for ' .. h.patient)\n"
    "      local t = {}\n"
    "      for i = 1, 65537 do t[i * 131071] = true end\n"
    "      return R.alert { message = 'survived the resize' }\n"
    "    end } } }\n";


/* While an evaluation thread is held in that one C call, /healthz and the
 * other clinic answer; SIGTERM stops the service within the deadline plus
 * its grace (RG_STOP_GRACE_MS, 1 s) by leaving the thread behind; the
 * request is answered 503 (stored, not evaluated), and the next start
 * evaluates the patient: nothing is lost. */
Test(threads, a_thread_held_in_one_c_call_is_left_behind_by_sigterm, .timeout = 300)
{
    server s = {0};
    char *out;
    setup(&s, 2);
    rg_test_write(s.dir, "a/p.lua", collide_protocol);
    /* deadline 300 ms (setup) */
    server_start(&s);
    char *ev = ping("north", "c1", "h1", now_ms() - 1000, "ping");
    int held = http_send(s.port, "POST", "/v1/events", TOKEN_A, ev);
    free(ev);
    cr_assert_geq(held, 0);
    cr_assert(log_wait(&s, "colliding keys for h1", 10000), "%s", rg_test_read(s.log));
    int64_t t0 = mono_ms();
    cr_assert_eq(http(s.port, "GET", "/healthz", NULL, NULL, &out), 200, "%s", out);
    int64_t healthz_ms = mono_ms() - t0;
    free(out);
    ev = ping("south", "b1", "q1", now_ms() - 5000, "ping");
    t0 = mono_ms();
    cr_assert_eq(http(s.port, "POST", "/v1/events", TOKEN_B, ev, &out), 200, "%s", out);
    int64_t post_ms = mono_ms() - t0;
    free(ev);
    free(out);
    cr_assert(!answered(held), "north's evaluation was over before the measurements");

    t0 = mono_ms();
    cr_assert_eq(kill(s.pid, SIGTERM), 0);
    int status;
    cr_assert_eq(waitpid(s.pid, &status, 0), s.pid);
    int64_t stop_ms = mono_ms() - t0;
    fprintf(stderr, "a thread held in one C call (a table resize over colliding keys): "
            "/healthz %lld ms, another clinic's POST %lld ms; SIGTERM stopped the service in "
            "%lld ms (deadline %d ms + a grace of 1000 ms)\n", (long long)healthz_ms,
            (long long)post_ms, (long long)stop_ms, DEADLINE_MS);
    cr_assert_lt(healthz_ms, 1000);
    cr_assert_lt(post_ms, 1000);
    char *log = rg_test_read(s.log);
    cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "status %d:\n%s", status, log);
    cr_assert(strstr(log, "clinic north: its evaluation is still running") &&
                  strstr(log, "info stopped") && !strstr(log, "Sanitizer") &&
                  !strstr(log, "runtime error:"),
              "%s", log);
    free(log);
    cr_assert_lt(stop_ms, DEADLINE_MS + 1000 + 500, "stopped in %lld ms", (long long)stop_ms);
    cr_assert_eq(http_read(held, &out), 503, "%s", out);
    cr_assert(strstr(out, "stored but"), "%s", out);
    free(out);
    cr_assert_eq(count_rows(s.db, "SELECT count(*) FROM events WHERE clinic = 'north'"), 1);

    cr_assert_eq(count_rows(s.db, "SELECT count(*) FROM transitions WHERE clinic = 'north'"),
                 0); /* (not even the rule-failure alert: no evaluation ended) */

    /* the next start evaluates h1 (its start-up catch-up): the same call,
     * which returns seconds later; what it returned is not used: the
     * deadline's error names the rule and its file (a limit hit, counted
     * for the quarantine) */
    server_start(&s);
    cr_assert(log_wait(&s, "clinic north, patient h1", 180000), "h1 was not evaluated after the "
              "restart:\n%s", rg_test_read(s.log));
    log = rg_test_read(s.log);
    cr_assert_eq(count_of(log, "colliding keys for h1"), 2, "%s", log);
    cr_assert(strstr(log, "p.lua:3: rule 'collide.resize': deadline of 300 ms per evaluation "
                          "exceeded: one call into the Lua core ran "),
              "%s", log);
    free(log);
    cr_assert_eq(count_rows(s.db, "SELECT count(*) FROM transitions WHERE clinic = 'north' "
                                  "AND rule = 'collide.resize'"),
                 0, "the late result was used");
    cr_assert_eq(server_stop(&s, SIGTERM), 0);
    rg_test_rmdir(s.dir);
}

/* Replaces the first occurrence of from by to in dir/rel. */
static void edit(const char *dir, const char *rel, const char *from, const char *to)
{
    char path[700];
    snprintf(path, sizeof path, "%s/%s", dir, rel);
    char *text = rg_test_read(path);
    char *at = strstr(text, from);
    cr_assert_not_null(at, "%s has no '%s'", path, from);
    size_t len = strlen(text) + strlen(to) + 1;
    char *out = malloc(len);
    snprintf(out, len, "%.*s%s%s", (int)(at - text), text, to, at + strlen(from));
    rg_test_write(dir, rel, out);
    free(out);
    free(text);
}

/* Samples /healthz and south's POST until the log says the gate is back;
 * returns how many samples were taken while it ran, the worst times in
 * *healthz_ms and *post_ms. */
static int sample_while_gating(server *s, int64_t *healthz_ms, int64_t *post_ms)
{
    int n = 0;
    char *out;
    *healthz_ms = *post_ms = 0;
    for (int i = 0; i < 1000; i++) {
        char *log = rg_test_read(s->log);
        int back = strstr(log, "the reload's gate took") != NULL;
        free(log);
        if (back)
            break;
        int64_t t0 = mono_ms();
        cr_assert_eq(http(s->port, "GET", "/healthz", NULL, NULL, &out), 200, "%s", out);
        int64_t h = mono_ms() - t0;
        free(out);
        char id[32];
        snprintf(id, sizeof id, "g%d", i);
        char *ev = ping("south", id, id, now_ms() - 5000, "ping");
        t0 = mono_ms();
        cr_assert_eq(http(s->port, "POST", "/v1/events", TOKEN_B, ev, &out), 200, "%s", out);
        int64_t p = mono_ms() - t0;
        free(ev);
        free(out);
        *healthz_ms = h > *healthz_ms ? h : *healthz_ms;
        *post_ms = p > *post_ms ? p : *post_ms;
        n++;
        usleep(50000);
    }
    return n;
}

/* A reload of a clinic running a copy of the shipped ketamine set (its
 * scenario tests beside it): the gate (generated histories, the scenario
 * tests: seconds) runs on reload.c's thread, /healthz and the other clinic
 * answer in under a second meanwhile, and the new version goes live when it
 * passes; a version whose scenario tests fail is refused after its gate,
 * and the version in force stays. */
Test(threads, a_changed_reload_is_gated_off_the_loop, .timeout = 180)
{
    server s = {0};
    char a[600], cmd[1400], *out;
    setup(&s, 2);
    snprintf(a, sizeof a, "%s/a", s.dir);
    snprintf(cmd, sizeof cmd, "rm -f '%s/p.lua' && cp -R protocols/ketamine/. '%s/'", a, a);
    cr_assert_eq(system(cmd), 0, "%s (run from the repository root)", cmd);
    server_start(&s);
    cr_assert(log_wait(&s, "protocol ketamine.acute 1.0.0 loaded", 30000), "%s",
              rg_test_read(s.log));

    /* 1. a new version that passes */
    edit(a, "acute.lua", "version = \"1.0.0\"", "version = \"1.0.1-gated\"");
    cr_assert_eq(kill(s.pid, SIGHUP), 0);
    cr_assert(log_wait(&s, "clinic north: protocols in", 30000) &&
                  log_wait(&s, "changed: gating them off the loop", 30000),
              "%s", rg_test_read(s.log));
    int64_t healthz_ms, post_ms;
    int samples = sample_while_gating(&s, &healthz_ms, &post_ms);
    cr_assert(log_wait(&s, "protocol ketamine.acute 1.0.1-gated loaded", 30000),
              "the new version did not go live:\n%s", rg_test_read(s.log));
    char *log = rg_test_read(s.log);
    const char *took = strstr(log, "the reload's gate took ");
    cr_assert_not_null(took, "%s", log);
    double gate_ms = atof(took + strlen("the reload's gate took "));
    free(log);
    fprintf(stderr, "during a %.0f ms reload gate of the shipped ketamine set: %d samples, "
            "/healthz at most %lld ms, another clinic's POST at most %lld ms\n", gate_ms,
            samples, (long long)healthz_ms, (long long)post_ms);
    cr_assert_geq(samples, 1, "the gate (%.0f ms) was back before the first sample", gate_ms);
    cr_assert_lt(healthz_ms, 1000);
    cr_assert_lt(post_ms, 1000);
    /* the version in force is the new one: what north's engine records */
    cr_assert_eq(count_rows(s.db, "SELECT count(*) FROM protocol_versions WHERE "
                                  "protocol = 'ketamine.acute' AND version = '1.0.1-gated'"),
                 1);

    /* 2. a version whose scenario tests fail: refused, the previous stays */
    edit(a, "acute.lua", "version = \"1.0.1-gated\"", "version = \"1.0.2-refused\"");
    edit(a, "acute.lua", "infusion_due_after     = days(2)", "infusion_due_after     = days(20)");
    char *before = rg_test_read(s.log);
    size_t mark = strlen(before);
    free(before);
    cr_assert_eq(kill(s.pid, SIGHUP), 0);
    int refused = 0;
    for (int i = 0; i < 3000 && !refused; i++) {
        log = rg_test_read(s.log);
        refused = strstr(log + mark, "clinic north: protocols refused") != NULL;
        free(log);
        if (!refused)
            usleep(10000);
    }
    log = rg_test_read(s.log);
    cr_assert(refused, "not refused:\n%s", log + mark);
    cr_assert(strstr(log + mark, "acute_test.lua"), "the refusal names the failing scenario:\n%s",
              log + mark);
    cr_assert_null(strstr(log, "1.0.2-refused loaded"), "%s", log + mark);
    free(log);
    cr_assert_eq(http(s.port, "GET", "/healthz", NULL, NULL, &out), 200, "%s", out);
    cr_assert(strstr(out, "degraded"), "an open refusal alert: %s", out);
    free(out);
    cr_assert_eq(count_rows(s.db, "SELECT count(*) FROM protocol_versions WHERE "
                                  "version = '1.0.2-refused'"),
                 0);
    cr_assert_eq(server_stop(&s, SIGTERM), 0);
    rg_test_rmdir(s.dir);
}

/* Version n of a protocol whose alert says which version opened it, and
 * whose rule runs into the deadline for patients named slow... (not the
 * gate's); body: more lines of its rule (version 3 reads a field no event
 * carries, so that check, and with it the reload's gate, refuses it). */
static void write_version(const char *dir, int n, const char *body)
{
    char text[1024];
    snprintf(text, sizeof text,
             "local R = require 'regimen'\n"
             "return R.protocol { id = 'vers', version = '%d',\n"
             "  rules = { { id = 'vers.ping', severity = 'warning', check = function(h, now, p)\n"
             "      local last = h:last('ping')\n"
             "      if not last then return nil end\n"
             "      if h.patient:sub(1, 4) == 'slow' then while true do end end\n"
             "      %s\n"
             "      return R.alert { key = last.id, message = 'opened by version %d' }\n"
             "    end } } }\n",
             n, body, n);
    rg_test_write(dir, "a/p.lua", text);
}

/* The evaluation threads run the files the reload's gate passed, not the
 * directory as it is when they next evaluate the clinic. While north's
 * threads are busy (a storm of slow patients), version 2 goes live, and
 * version 3, which its gate refuses, is saved before north's next job:
 * that job runs version 2, and version 3 is never recorded as run (the
 * threads used to load the directory at their next job: version 3,
 * ungated; the last CI run caught it with the shipped set). */
Test(threads, the_threads_run_what_the_gate_passed_not_the_files_saved_after, .timeout = 120)
{
    server s = {0};
    char *out;
    setup(&s, 2);
    rg_test_write(s.dir, "a/clinic.lua", RG_TEST_EVENTS);
    write_version(s.dir, 1, "");
    server_start(&s);
    cr_assert(log_wait(&s, "protocol vers 1 loaded", 30000), "%s", rg_test_read(s.log));
    char *body = pings("north", "slow");
    int storm = http_send(s.port, "POST", "/v1/events", TOKEN_A, body);
    free(body);
    cr_assert_geq(storm, 0);
    cr_assert(log_wait(&s, "clinic north, patient slow", 30000), "%s", rg_test_read(s.log));
    write_version(s.dir, 2, "");
    cr_assert_eq(kill(s.pid, SIGHUP), 0);
    cr_assert(log_wait(&s, "protocol vers 2 loaded", 30000), "%s", rg_test_read(s.log));
    write_version(s.dir, 3, "local x = last.data.sytolic");
    fprintf(stderr, "version 3 saved %s north's storm was over\n",
            answered(storm) ? "after" : "before");
    cr_assert_eq(http_read(storm, &out), 200, "%s", out);
    free(out);
    char *ev = ping("north", "v1", "n1", now_ms() - 1000, "ping");
    cr_assert_eq(http(s.port, "POST", "/v1/events", TOKEN_A, ev, &out), 200, "%s", out);
    free(ev);
    free(out);
    cr_assert_eq(http(s.port, "GET", "/v1/transitions?after=0", TOKEN_A, NULL, &out), 200);
    cr_assert(strstr(out, "\"patient\":\"n1\"") && strstr(out, "opened by version 2"),
              "north's evaluation did not run the version in force:\n%s\n%s", out,
              rg_test_read(s.log));
    free(out);
    /* the watched directory's change reloads it: refused by its gate */
    cr_assert(log_wait(&s, "clinic north: protocols refused", 30000), "%s", rg_test_read(s.log));
    char *log = rg_test_read(s.log);
    cr_assert(strstr(log, "sytolic"), "%s", log);
    cr_assert_null(strstr(log, "vers 3 loaded"), "%s", log);
    free(log);
    cr_assert_eq(count_rows(s.db, "SELECT count(*) FROM protocol_versions WHERE "
                                  "protocol = 'vers' AND version = '3'"),
                 0);
    cr_assert_eq(server_stop(&s, SIGTERM), 0);
    rg_test_rmdir(s.dir);
}

/* Runs past the instruction budget for every patient but the gate's. */
static const char spin_protocol[] =
    "local R = require 'regimen'\n"
    "return R.protocol { id = 'spin', version = '1.0',\n"
    "  rules = { { id = 'spin.loop', severity = 'warning', check = function(h, now, p)\n"
    "      if h.patient:sub(1, 6) == 'check-' then return nil end\n"
    "      local n = 0\n"
    "      while true do n = n + 1 end\n"
    "    end } } }\n";

/* A quarantine holds for every evaluation thread: north's protocol hits the
 * instruction budget at each evaluation, quarantine_hits is 3, and twelve
 * POSTs, one after another, make twelve jobs, which the two idle threads
 * take in turn. Once quarantined (by whichever thread counted the third
 * hit), the protocol runs on no thread: exactly 3 limit hits, one
 * quarantine. (Each thread counting its own hits would make 6 and two.) */
Test(threads, a_quarantine_holds_on_every_evaluation_thread, .timeout = 60)
{
    server s = {0};
    char cfg[1024], *out;
    setup(&s, 2);
    rg_test_write(s.dir, "a/p.lua", spin_protocol);
    snprintf(cfg, sizeof cfg,
             "{ \"listen\": \"127.0.0.1:0\",\n"
             "  \"clinics\": {\n"
             "    \"north\": { \"protocols\": \"a\", \"tokens\": [\"" TOKEN_A "\"] },\n"
             "    \"south\": { \"protocols\": \"b\", \"tokens\": [\"" TOKEN_B "\"] } },\n"
             "  \"limits\": { \"max_instructions\": 200000, \"deadline_ms\": 2000,\n"
             "              \"quarantine_hits\": 3, \"quarantine_window_s\": 600,\n"
             "              \"quarantine_backoff_s\": 600, \"evaluation_threads\": 2 } }\n");
    rg_test_write(s.dir, "config.json", cfg);
    server_start(&s);
    for (int i = 0; i < 12; i++) {
        char id[32];
        snprintf(id, sizeof id, "z%d", i);
        char *ev = ping("north", id, id, now_ms() - 1000, "ping");
        cr_assert_eq(http(s.port, "POST", "/v1/events", TOKEN_A, ev, &out), 200, "%s", out);
        free(ev);
        free(out);
    }
    char *log = rg_test_read(s.log);
    /* (a quarantine is also an evaluation error of the patient at hand,
     * which names the last hit) */
    int hits = count_rows(s.db, "SELECT count(*) FROM eval_errors WHERE clinic = 'north' AND "
                                "message LIKE '%instruction budget%' AND "
                                "message NOT LIKE '%is quarantined for%'");
    int quarantines = count_rows(s.db, "SELECT count(*) FROM eval_errors WHERE clinic = "
                                       "'north' AND message LIKE '%is quarantined for%'");
    fprintf(stderr, "12 jobs of a protocol over its instruction budget on 2 threads: %d limit "
            "hits, %d quarantine%s\n", hits, quarantines, quarantines == 1 ? "" : "s");
    cr_assert_eq(hits, 3, "%s", log);
    cr_assert_eq(quarantines, 1, "%s", log);
    cr_assert_eq(count_of(log, "error clinic north: "), 1, "one quarantine logged:\n%s", log);
    free(log);
    cr_assert_eq(http(s.port, "GET", "/metrics", TOKEN_A, NULL, &out), 200);
    cr_assert(strstr(out, "\nregimen_quarantine_skips_total 9"), "%s", out);
    free(out);
    cr_assert_eq(server_stop(&s, SIGTERM), 0);
    rg_test_rmdir(s.dir);
}

Test(threads, evaluation_threads_must_be_a_positive_number)
{
    server s = {0};
    char *out = NULL, *err = NULL;
    setup(&s, 0);
    rg_test_write(s.dir, "config.json",
                  "{ \"listen\": \"127.0.0.1:0\", \"clinics\": { \"north\": { \"protocols\": "
                  "\"a\", \"tokens\": [\"" TOKEN_A "\"] } }, \"limits\": "
                  "{ \"evaluation_threads\": 0 } }\n");
    const char *args[] = {"serve", "--config", s.config, "--db", s.db, NULL};
    cr_assert_eq(rg_test_run(args, NULL, &out, &err), 2, "%s", err);
    cr_assert(strstr(err, "limits.evaluation_threads") && strstr(err, "config.json") &&
                  strstr(err, "positive whole number"), "%s", err);
    free(out);
    free(err);
    rg_test_rmdir(s.dir);
}
