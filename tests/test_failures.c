/*
 * test_failures.c - nothing fails silently (issue 23), end to end with the
 * real binary: a rule that fails to evaluate is a clinic's system alert
 * (regimen.evaluation-failed) on the stream and in the feed, /healthz says
 * degraded until a fixed protocol evaluates cleanly again; `simulate` prints
 * the same failure as a transition and exits 1; a reload whose scenario
 * tests fail is refused, alerted, and the old version keeps running; a
 * snooze that expires is a transition in the feed and on the webhook; an
 * event dated too far ahead of the clock is flagged where it is answered.
 */
#define RG_TEST_SERVE
#include "helpers.h"

#include "core/rg.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <sqlite3.h>
#include <sys/socket.h>
#include <time.h>

/* A rule that raises for a ping whose data says bad, and alerts otherwise. */
static const char flaky_protocol[] =
    "local R = require 'regimen'\n"
    "return R.protocol { id = 'flaky', version = '1',\n"
    "  rules = { { id = 'flaky.ping', severity = 'info', check = function(h, now, p)\n"
    "      local last = h:last('ping')\n"
    "      if last and last.data.bad then error('cannot read this ping') end\n"
    "      if last then return R.alert { key = last.id, message = 'ping seen' } end\n"
    "    end } } }\n";

/* The same rule, fixed: a bad ping is just a ping. */
static const char fixed_protocol[] =
    "local R = require 'regimen'\n"
    "return R.protocol { id = 'flaky', version = '2',\n"
    "  rules = { { id = 'flaky.ping', severity = 'info', check = function(h, now, p)\n"
    "      local last = h:last('ping')\n"
    "      if last then return R.alert { key = last.id, message = 'ping seen' } end\n"
    "    end } } }\n";

static char *bad_ping(const char *id, const char *patient, int64_t at_ms)
{
    char at[40], *ev = malloc(512);
    iso(at_ms, at);
    snprintf(ev, 512,
             "{\"id\":\"%s\",\"clinic\":\"north\",\"patient\":\"%s\",\"type\":\"ping\",\"at\":\"%s\","
             "\"data\":{\"bad\":true}}", id, patient, at);
    return ev;
}

static void post(server *s, const char *token, const char *body)
{
    char *out;
    cr_assert_eq(http(s->port, "POST", "/v1/events", token, body, &out), 200, "%s", out);
    free(out);
}

Test(failures, a_failing_rule_is_an_alert_on_the_stream_and_healthz_until_fixed, .timeout = 60)
{
    server s = {0};
    char *out;
    server_setup(&s, flaky_protocol, fast_protocol);
    /* ping (with its bad flag) is this test's own event type: declared, or
     * check (the reload's gate) refuses the fixed protocol that asks for it */
    rg_test_write(s.dir, "a/clinic.lua", "return { events = { ping = { 'bad' } } }\n");
    server_start(&s);
    stream st;
    stream_open(&st, s.port, TOKEN_A, NULL);
    cr_assert_neq(stream_wait(&st, "text/event-stream", 2000), -1, "%s", st.buf);

    /* a patient for whom the rule works: no system alert */
    char *ev = ping("north", "g1", "good", now_ms(), "ping");
    post(&s, TOKEN_A, ev);
    free(ev);
    cr_assert_neq(stream_wait(&st, "ping seen", 2000), -1, "%s", st.buf);
    cr_assert_eq(http(s.port, "GET", "/healthz", NULL, NULL, &out), 200);
    cr_assert(strstr(out, "\"status\":\"ok\""), "%s", out);
    free(out);

    /* two patients for whom it fails: one alert of the clinic's, at once */
    ev = bad_ping("b1", "p1", now_ms());
    post(&s, TOKEN_A, ev);
    free(ev);
    int ms = stream_wait(&st, "regimen.evaluation-failed", 1000);
    cr_assert_neq(ms, -1, "no system alert within 1 s of the failing evaluation:\n%s", st.buf);
    cr_assert(strstr(st.buf, "a/p.lua:5"), "the alert names the file and line:\n%s", st.buf);
    cr_assert(strstr(st.buf, "cannot read this ping"), "%s", st.buf);
    ev = bad_ping("b2", "p2", now_ms());
    post(&s, TOKEN_A, ev);
    free(ev);
    cr_assert_eq(http(s.port, "GET", "/healthz", NULL, NULL, &out), 200);
    cr_assert(strstr(out, "\"status\":\"degraded\""), "%s", out);
    cr_assert(strstr(out, "rule 'flaky.ping' of protocol flaky fails to evaluate for 2 patients"),
              "/healthz counts the patients affected now: %s", out);
    free(out);
    /* on the worklist, the clinic's own (patient ""), critical */
    cr_assert_eq(http(s.port, "GET", "/v1/alerts?state=open", TOKEN_A, NULL, &out), 200);
    cr_assert(strstr(out, "\"rule\":\"regimen.evaluation-failed\""), "%s", out);
    cr_assert(strstr(out, "\"patient\":\"\""), "%s", out);
    free(out);
    cr_assert_eq(count_rows(s.db, "SELECT count(*) FROM transitions WHERE rule ="
                                  " 'regimen.evaluation-failed'"), 1,
                 "one alert for the rule, however many patients");
    /* another clinic does not see it */
    cr_assert_eq(http(s.port, "GET", "/v1/alerts", TOKEN_B, NULL, &out), 200);
    cr_assert_null(strstr(out, "evaluation-failed"), "%s", out);
    free(out);

    /* fixed and reloaded: every affected patient evaluates cleanly, it resolves */
    rg_test_write(s.dir, "a/p.lua", fixed_protocol);
    kill(s.pid, SIGHUP);
    cr_assert_neq(stream_wait(&st, "evaluates cleanly again", 5000), -1, "%s", st.buf);
    cr_assert_eq(http(s.port, "GET", "/healthz", NULL, NULL, &out), 200);
    cr_assert(strstr(out, "\"status\":\"ok\""), "%s", out);
    free(out);
    cr_assert_eq(http(s.port, "GET", "/v1/transitions?after=0", TOKEN_A, NULL, &out), 200);
    cr_assert(strstr(out, "\"state\":\"resolved\",") || strstr(out, "\"state\":\"resolved\""),
              "%s", out);
    free(out);
    close(st.fd);
    cr_assert_eq(server_stop(&s, SIGTERM), 0);
    rg_test_rmdir(s.dir);
}

/* The state survives a restart: still degraded, and still resolved by the fix. */
Test(failures, a_failure_survives_a_restart, .timeout = 60)
{
    server s = {0};
    char *out;
    server_setup(&s, flaky_protocol, fast_protocol);
    server_start(&s);
    char *ev = bad_ping("b1", "p1", now_ms());
    post(&s, TOKEN_A, ev);
    free(ev);
    cr_assert_eq(server_stop(&s, SIGTERM), 0);
    server_start(&s);
    cr_assert_eq(http(s.port, "GET", "/healthz", NULL, NULL, &out), 200);
    cr_assert(strstr(out, "\"status\":\"degraded\"") && strstr(out, "for 1 patient since"),
              "%s", out);
    free(out);
    cr_assert_eq(server_stop(&s, SIGTERM), 0);
    rg_test_write(s.dir, "a/p.lua", fixed_protocol);
    server_start(&s);
    /* the patients a rule failed for are evaluated again at start */
    for (int i = 0; i < 100; i++) {
        cr_assert_eq(http(s.port, "GET", "/healthz", NULL, NULL, &out), 200);
        int ok = strstr(out, "\"status\":\"ok\"") != NULL;
        free(out);
        if (ok)
            break;
        usleep(50000);
    }
    cr_assert_eq(count_rows(s.db, "SELECT count(*) FROM transitions WHERE rule ="
                                  " 'regimen.evaluation-failed' AND state = 'resolved'"), 1);
    cr_assert_eq(server_stop(&s, SIGTERM), 0);
    rg_test_rmdir(s.dir);
}

Test(failures, simulate_prints_the_failure_as_a_transition_and_exits_1, .timeout = 30)
{
    char dir[256], path[512], *out, *err;
    rg_test_tmpdir(dir);
    rg_test_write(dir, "p/p.lua", flaky_protocol);
    rg_test_write(dir, "events.jsonl",
                  "{\"id\":\"e1\",\"clinic\":\"north\",\"patient\":\"p1\",\"type\":\"ping\","
                  "\"at\":\"2026-03-01T09:00:00Z\",\"data\":{\"bad\":true}}\n"
                  "{\"id\":\"e2\",\"clinic\":\"north\",\"patient\":\"p1\",\"type\":\"ping\","
                  "\"at\":\"2026-03-02T09:00:00Z\"}\n");
    snprintf(path, sizeof path, "%s/events.jsonl", dir);
    char clinic[300];
    snprintf(clinic, sizeof clinic, "north=%s/p", dir);
    const char *args[] = {"simulate", "--events", path, "--until", "2026-03-05T00:00:00Z",
                          "--clinic", clinic, NULL};
    int rc = rg_test_run(args, NULL, &out, &err);
    cr_assert_eq(rc, 1, "a failing evaluation sets the exit code:\n%s\n%s", out, err);
    cr_assert(strstr(out, "2026-03-01T09:00:00Z     open      north       -           "
                          "regimen.evaluation-failed   critical  rule 'flaky.ping' of protocol "
                          "flaky fails to evaluate since 2026-03-01T09:00:00Z"), "%s", out);
    cr_assert(strstr(out, "2026-03-02T09:00:00Z     resolved  north       -           "
                          "regimen.evaluation-failed"), "clean again at the next ping:\n%s", out);
    free(out);
    free(err);
    rg_test_rmdir(dir);
}

/* An event dated hours ahead of the clock: stored and flagged in the HTTP
 * answer, the FHIR answer and /metrics; ingest prints the warning for its
 * line; one within the skew is not flagged. */
Test(failures, a_future_dated_event_is_stored_and_flagged, .timeout = 60)
{
    server s = {0};
    char *out, *err;
    server_setup(&s, fast_protocol, fast_protocol);
    server_start(&s);
    char *ev = ping("north", "f1", "p1", now_ms() + 3 * 3600 * 1000, "ping");
    char *near = ping("north", "f2", "p1", now_ms() + 60 * 1000, "ping");
    char body[2048];
    snprintf(body, sizeof body, "[%s,%s]", ev, near);
    cr_assert_eq(http(s.port, "POST", "/v1/events", TOKEN_A, body, &out), 200, "%s", out);
    cr_assert(strstr(out, "{\"id\":\"f1\",\"status\":\"stored\",\"future\":true,\"warning\":"
                          "\"warning: event f1 is dated "), "%s", out);
    cr_assert(strstr(out, "2 h 59 min ahead of the clock") || strstr(out, "3 h 0 min ahead"),
              "%s", out);
    cr_assert(strstr(out, "{\"id\":\"f2\",\"status\":\"stored\"}"), "a minute ahead is fine: %s",
              out);
    free(out);
    free(ev);
    free(near);
    /* FHIR: an Observation dated ahead */
    char at[40], fhir[2048];
    iso(now_ms() + 2 * 3600 * 1000, at);
    snprintf(fhir, sizeof fhir,
             "{\"resourceType\":\"Bundle\",\"type\":\"collection\",\"entry\":[{\"resource\":"
             "{\"resourceType\":\"Observation\",\"id\":\"bp1\",\"status\":\"final\","
             "\"subject\":{\"reference\":\"Patient/p1\"},\"effectiveDateTime\":\"%s\","
             "\"code\":{\"coding\":[{\"system\":\"http://loinc.org\",\"code\":\"85354-9\"}]},"
             "\"component\":[{\"code\":{\"coding\":[{\"system\":\"http://loinc.org\","
             "\"code\":\"8480-6\"}]},\"valueQuantity\":{\"value\":150}},{\"code\":{\"coding\":"
             "[{\"system\":\"http://loinc.org\",\"code\":\"8462-4\"}]},\"valueQuantity\":"
             "{\"value\":90}}]}}]}", at);
    cr_assert_eq(http(s.port, "POST", "/v1/fhir", TOKEN_A, fhir, &out), 200, "%s", out);
    cr_assert(strstr(out, "\"future\":true"), "%s", out);
    free(out);
    cr_assert_eq(http(s.port, "GET", "/metrics", TOKEN_A, NULL, &out), 200);
    cr_assert(strstr(out, "regimen_events_future_total{clinic=\"north\"} 2\n"), "%s", out);
    /* a clinic's token sees its own clinic's series only */
    cr_assert_null(strstr(out, "regimen_events_future_total{clinic=\"south\"}"), "%s", out);
    free(out);
    cr_assert_eq(server_stop(&s, SIGTERM), 0);

    /* regimen ingest: the warning names the line; --future-skew moves the bound */
    char path[600], db[600];
    snprintf(path, sizeof path, "%s/future.jsonl", s.dir);
    snprintf(db, sizeof db, "%s/ingest.db", s.dir);
    ev = ping("north", "i1", "p9", now_ms() + 3 * 3600 * 1000, "ping");
    char line[700];
    snprintf(line, sizeof line, "%s\n", ev);
    rg_test_write(s.dir, "future.jsonl", line);
    free(ev);
    const char *args[] = {"ingest", "--db", db, path, NULL};
    cr_assert_eq(rg_test_run(args, NULL, &out, &err), 0, "%s%s", out, err);
    cr_assert(strstr(err, "future.jsonl:1: warning: event i1 is dated "), "%s", err);
    cr_assert(strstr(out, "stored 1,") && strstr(out, "1 of them dated ahead of the clock"),
              "%s", out);
    free(out);
    free(err);
    snprintf(db, sizeof db, "%s/ingest2.db", s.dir);
    const char *wide[] = {"ingest", "--db", db, "--future-skew", "600", path, NULL};
    cr_assert_eq(rg_test_run(wide, NULL, &out, &err), 0, "%s%s", out, err);
    cr_assert_null(strstr(err, "warning"), "within 10 h: %s", err);
    free(out);
    free(err);
    rg_test_rmdir(s.dir);
}

/* fast_protocol's own scenario test: a ping unanswered for 2 s opens. */
static const char fast_test[] =
    "return { { name = 'an unanswered ping is overdue after 2 s',\n"
    "  events = { { '2026-03-01T09:00:00Z', 'ping' } },\n"
    "  horizon = '2026-03-01T10:00:00Z',\n"
    "  expect = { { '2026-03-01T09:00:02Z', 'open', 'fast.ping-overdue' } } } }\n";

/* A reload whose scenario tests fail is refused and alerted; the running
 * version keeps evaluating; the next reload that goes live resolves it. */
Test(failures, a_reload_whose_scenario_tests_fail_is_refused_and_alerted, .timeout = 60)
{
    server s = {0};
    char *out;
    server_setup(&s, fast_protocol, fast_protocol);
    rg_test_write(s.dir, "a/tests/p_test.lua", fast_test);
    server_start(&s);
    stream st;
    stream_open(&st, s.port, TOKEN_A, NULL);
    cr_assert_neq(stream_wait(&st, "text/event-stream", 2000), -1, "%s", st.buf);

    /* loads, but waits 20 s: its own test fails */
    char slow[sizeof fast_protocol + 8];
    snprintf(slow, sizeof slow, "%s", fast_protocol);
    memcpy(strstr(slow, "R.seconds(2)"), "R.hours(2)  ", 12);
    rg_test_write(s.dir, "a/p.lua", slow);
    kill(s.pid, SIGHUP);
    cr_assert_neq(stream_wait(&st, "regimen.reload-refused", 10000), -1, "%s", st.buf);
    cr_assert(strstr(st.buf, "the previous version keeps running"), "%s", st.buf);
    cr_assert(strstr(st.buf, "p_test.lua: scenario 1"), "the failing test is named:\n%s", st.buf);
    cr_assert_eq(http(s.port, "GET", "/healthz", NULL, NULL, &out), 200);
    cr_assert(strstr(out, "\"status\":\"degraded\"") && strstr(out, "regimen.reload-refused"),
              "%s", out);
    free(out);
    char *log = rg_test_read(s.log);
    cr_assert(strstr(log, "protocols refused"), "%s", log);
    free(log);

    /* the old version runs: a ping 5 s old is overdue at once */
    char *ev = ping("north", "r1", "p1", now_ms() - 5000, "ping");
    post(&s, TOKEN_A, ev);
    free(ev);
    cr_assert_neq(stream_wait(&st, "\"rule\":\"fast.ping-overdue\"", 3000), -1, "%s", st.buf);

    /* refused again for another reason (an admin saving a broken file):
     * the open alert stays as it is, no second page */
    rg_test_write(s.dir, "a/p.lua", "this is not Lua (");
    kill(s.pid, SIGHUP);
    cr_assert(log_wait(&s, "syntax error", 20000));
    cr_assert_eq(http(s.port, "GET", "/v1/alerts?state=open", TOKEN_A, NULL, &out), 200);
    cr_assert(strstr(out, "p_test.lua: scenario 1"), "%s", out);
    free(out);

    /* the fix goes live: the refusal resolves, health is ok */
    rg_test_write(s.dir, "a/p.lua", fast_protocol);
    kill(s.pid, SIGHUP);
    cr_assert_neq(stream_wait(&st, "went live", 10000), -1, "%s", st.buf);
    cr_assert_eq(http(s.port, "GET", "/healthz", NULL, NULL, &out), 200);
    cr_assert(strstr(out, "\"status\":\"ok\""), "%s", out);
    free(out);
    cr_assert_eq(count_rows(s.db, "SELECT count(*) FROM transitions WHERE rule ="
                                  " 'regimen.reload-refused'"), 2,
                  "opened once (the second refusal pages no one again), resolved once");
    close(st.fd);
    cr_assert_eq(server_stop(&s, SIGTERM), 0);
    rg_test_rmdir(s.dir);
}

/* ---- a loopback webhook receiver (helpers.h), keeping each body's state ---- */

/* The state of the delivery with this idempotency key ("" when none came). */
static const char *delivered_state(receiver *r, const char *key)
{
    for (int i = 0; i < r->n && i < 64; i++)
        if (!strcmp(r->keys[i], key))
            return r->states[i];
    return "";
}

/* A snooze that expires on an open alert is a transition: in the feed with
 * the clinic's next seq, and delivered to the webhook like any other. */
Test(failures, a_snooze_expiry_is_in_the_feed_and_on_the_webhook, .timeout = 60)
{
    receiver r = {0};
    server s = {0};
    char *out, cfg[1024];
    receiver_start(&r);
    server_setup(&s, fast_protocol, fast_protocol);
    snprintf(cfg, sizeof cfg,
             "{ \"listen\": \"127.0.0.1:0\", \"clinics\": { \"north\": { \"protocols\": \"a\","
             " \"tokens\": [\"" TOKEN_A "\"], \"webhook\": \"http://127.0.0.1:%d/hook\" } } }\n",
             r.port);
    rg_test_write(s.dir, "config.json", cfg);
    server_start(&s);
    char *ev = ping("north", "s1", "p1", now_ms() - 5000, "ping"); /* overdue at once */
    post(&s, TOKEN_A, ev);
    free(ev);
    for (int i = 0; i < 100 && !*delivered_state(&r, "north-1"); i++)
        usleep(50000);
    cr_assert_str_eq(delivered_state(&r, "north-1"), "open");
    cr_assert_eq(http(s.port, "GET", "/v1/alerts?state=open", TOKEN_A, NULL, &out), 200);
    char *k = strstr(out, "\"key\":\"");
    cr_assert_not_null(k, "%s", out);
    char key[64], path[128], until[40], body[256];
    snprintf(key, sizeof key, "%.*s", (int)strcspn(k + 7, "\""), k + 7);
    free(out);
    iso(now_ms() + 500, until);
    snprintf(body, sizeof body, "{\"who\":\"nurse kim\",\"until\":\"%s\",\"reason\":\"later\"}",
             until);
    snprintf(path, sizeof path, "/v1/alerts/%s/snooze", key);
    cr_assert_eq(http(s.port, "POST", path, TOKEN_A, body, &out), 200, "%s", out);
    free(out);
    for (int i = 0; i < 100 && !*delivered_state(&r, "north-2"); i++)
        usleep(50000);
    cr_assert_str_eq(delivered_state(&r, "north-2"), "reraised",
                     "the re-raise reaches the webhook as transition 2");
    cr_assert_eq(http(s.port, "GET", "/v1/transitions?after=1", TOKEN_A, NULL, &out), 200);
    cr_assert(strstr(out, "\"seq\":2") && strstr(out, "\"state\":\"reraised\""), "%s", out);
    cr_assert(strstr(out, key), "of the snoozed alert: %s", out);
    free(out);
    /* still open, no longer quiet */
    snprintf(path, sizeof path, "/v1/alerts/%s", key);
    cr_assert_eq(http(s.port, "GET", path, TOKEN_A, NULL, &out), 200);
    cr_assert(strstr(out, "\"state\":\"open\"") && strstr(out, "\"quiet\":false"), "%s", out);
    free(out);
    /* a pong resolves it: transition 3, still one alert */
    ev = ping("north", "s2", "p1", now_ms(), "pong");
    post(&s, TOKEN_A, ev);
    free(ev);
    for (int i = 0; i < 100 && !*delivered_state(&r, "north-3"); i++)
        usleep(50000);
    cr_assert_str_eq(delivered_state(&r, "north-3"), "resolved");
    cr_assert_eq(server_stop(&s, SIGTERM), 0);
    receiver_stop(&r);
    rg_test_rmdir(s.dir);
}

/* ---- what check refuses at start is the clinic's system alert ---- */

/* A rule that reads a misspelt data field of ping ('bda': the clinic
 * declares 'bad'), and the same rule mended. Neither fails to evaluate. */
static const char misspelt_protocol[] =
    "local R = require 'regimen'\n"
    "return R.protocol { id = 'spell', version = '1',\n"
    "  rules = { { id = 'spell.ping', severity = 'info', check = function(h, now, p)\n"
    "      local last = h:last('ping')\n"
    "      if last and last.data.bda then return R.alert { key = last.id, message = 'bad' } end\n"
    "    end } } }\n";
static const char misspelt_otherwise[] =
    "local R = require 'regimen'\n"
    "return R.protocol { id = 'spell', version = '1',\n"
    "  rules = { { id = 'spell.ping', severity = 'info', check = function(h, now, p)\n"
    "      local last = h:last('ping')\n"
    "      if last and last.data.dab then return R.alert { key = last.id, message = 'bad' } end\n"
    "    end } } }\n";
static const char mended_protocol[] =
    "local R = require 'regimen'\n"
    "return R.protocol { id = 'spell', version = '2',\n"
    "  rules = { { id = 'spell.ping', severity = 'info', check = function(h, now, p)\n"
    "      local last = h:last('ping')\n"
    "      if last and last.data.bad then return R.alert { key = last.id, message = 'bad' } end\n"
    "    end } } }\n";

/* The open alerts of clinic north (TOKEN_A) as the API gives them. */
static char *open_alerts_of_north(server *s)
{
    char *out;
    cr_assert_eq(http(s->port, "GET", "/v1/alerts?state=open", TOKEN_A, NULL, &out), 200, "%s",
                 out);
    return out;
}

/* north's p.lua written (unless NULL), the service started, its open
 * alerts listing `listed` and not `gone` (each unless NULL), stopped. */
static void restart_listing(server *s, const char *protocol, const char *listed,
                            const char *gone)
{
    if (protocol)
        rg_test_write(s->dir, "a/p.lua", protocol);
    server_start(s);
    char *out = open_alerts_of_north(s);
    if (listed)
        cr_assert(strstr(out, listed), "%s", out);
    if (gone)
        cr_assert_null(strstr(out, gone), "%s", out);
    free(out);
    cr_assert_eq(server_stop(s, SIGTERM), 0);
}

/* A clinic whose protocol reads a misspelt data field starts (nothing is
 * gated at start), and the problem is not only a warning in the log: the
 * clinic has the system alert regimen.protocol-check naming the file and
 * line, /healthz is degraded. The mended file's reload (which passes the
 * gate, check's) resolves it; a restart opens it again while the file is
 * wrong, and a restart with the file mended resolves it too. */
Test(failures, a_protocol_problem_found_at_start_is_an_alert_until_mended, .timeout = 90)
{
    server s = {0};
    char *out;
    server_setup(&s, misspelt_protocol, fast_protocol);
    rg_test_write(s.dir, "a/clinic.lua", "return { events = { ping = { 'bad' } } }\n");
    server_start(&s);
    out = open_alerts_of_north(&s);
    cr_assert(strstr(out, "\"rule\":\"regimen.protocol-check\""), "%s", out);
    cr_assert(strstr(out, "p.lua:5: last.data.bda: no event type carries a data field 'bda'"),
              "the alert names the file, line and field: %s", out);
    cr_assert(strstr(out, "\"patient\":\"\"") && strstr(out, "\"severity\":\"critical\""), "%s",
              out);
    free(out);
    cr_assert(log_wait(&s, "clinic north: p.lua:5: last.data.bda: no event type carries a data "
                           "field 'bda' (did you mean 'bad'?) (check refuses this", 5000),
              "still a warning in the log too");
    cr_assert_eq(http(s.port, "GET", "/healthz", NULL, NULL, &out), 200);
    cr_assert(strstr(out, "\"status\":\"degraded\"") && strstr(out, "regimen.protocol-check"),
              "%s", out);
    free(out);
    cr_assert_eq(http(s.port, "GET", "/v1/alerts", TOKEN_B, NULL, &out), 200);
    cr_assert_null(strstr(out, "protocol-check"), "south's sources pass check: %s", out);
    free(out);

    /* a reload of the same files (here of nothing changed) does not pass
     * them through the gate: the alert stays open (the reload is done on the
     * loop before it answers the next request) */
    kill(s.pid, SIGHUP);
    cr_assert(log_wait(&s, "signal SIGHUP: reloading the configuration", 20000));
    out = open_alerts_of_north(&s);
    cr_assert(strstr(out, "p.lua:5: last.data.bda"), "still open after a reload: %s", out);
    free(out);

    /* mended and reloaded: it resolves, health is ok */
    stream st;
    stream_open(&st, s.port, TOKEN_A, NULL);
    cr_assert_neq(stream_wait(&st, "text/event-stream", 2000), -1, "%s", st.buf);
    rg_test_write(s.dir, "a/p.lua", mended_protocol);
    kill(s.pid, SIGHUP);
    cr_assert_neq(stream_wait(&st, "pass check", 20000), -1, "%s", st.buf);
    close(st.fd);
    out = open_alerts_of_north(&s);
    cr_assert_null(strstr(out, "protocol-check"), "%s", out);
    free(out);
    cr_assert_eq(http(s.port, "GET", "/healthz", NULL, NULL, &out), 200);
    cr_assert(strstr(out, "\"status\":\"ok\""), "%s", out);
    free(out);
    cr_assert_eq(server_stop(&s, SIGTERM), 0);

    /* a restart with the file wrong again opens it again; one wrong in
     * another way renews it (it lists what is wrong now, not what was);
     * one as wrong as before leaves it; one mended resolves it */
    restart_listing(&s, misspelt_protocol, "p.lua:5: last.data.bda", NULL);
    restart_listing(&s, misspelt_otherwise, "p.lua:5: last.data.dab", "last.data.bda");
    restart_listing(&s, NULL, "p.lua:5: last.data.dab", "last.data.bda");
    restart_listing(&s, mended_protocol, NULL, "protocol-check");
    cr_assert_eq(count_rows(s.db, "SELECT count(*) FROM transitions WHERE rule ="
                                  " 'regimen.protocol-check' AND state = 'open'"), 3);
    cr_assert_eq(count_rows(s.db, "SELECT count(*) FROM transitions WHERE rule ="
                                  " 'regimen.protocol-check' AND state = 'resolved'"), 3);
    rg_test_rmdir(s.dir);
}

/* ---- a WAL checkpoint that cannot get through is seen ---- */

/* Waits up to ms for /healthz to say status; returns its body (or fails). */
static char *healthz_wait(server *s, const char *status, int ms)
{
    char want[64];
    snprintf(want, sizeof want, "\"status\":\"%s\"", status);
    for (int waited = 0;; waited += 100) {
        char *out;
        cr_assert_eq(http(s->port, "GET", "/healthz", NULL, NULL, &out), 200);
        if (strstr(out, want))
            return out;
        cr_assert_lt(waited, ms, "/healthz is not %s after %d ms: %s", status, ms, out);
        free(out);
        usleep(100000);
    }
}

/* The service's checkpoints cannot get through while another process holds
 * the WAL's checkpoint lock (byte 121 of the -shm file, SQLite's WAL file
 * format: what `PRAGMA wal_checkpoint` holds in another process for as long
 * as its checkpoint lasts, here for ever). Once the WAL is long enough for
 * the checkpoint thread (4,000 pages) each of its tries finds the database
 * busy: counted in /metrics, logged once however many there are, and
 * /healthz is degraded. The lock let go, the next try (a second later, with
 * no commit to wake it) copies the WAL, and health is ok again. */
Test(failures, a_checkpoint_that_cannot_get_through_is_degraded_health_until_it_does,
     .timeout = 180)
{
    server s = {0};
    server_setup(&s, fast_protocol, fast_protocol);
    server_start(&s);
    char shm[600], wal[600], *out;
    snprintf(shm, sizeof shm, "%s-shm", s.db);
    snprintf(wal, sizeof wal, "%s-wal", s.db);
    int fd = open(shm, O_RDWR);
    cr_assert_geq(fd, 0, "%s: %s", shm, strerror(errno));
    struct flock lk = {.l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 121, .l_len = 1};
    cr_assert_eq(fcntl(fd, F_SETLKW, &lk), 0, "%s", strerror(errno));

    /* events of 15 kB each, until the WAL is past the thread's 4,000 pages */
    size_t cap = 1u << 20;
    char *body = malloc(cap), note[15001];
    memset(note, 'x', sizeof note - 1);
    note[sizeof note - 1] = '\0';
    struct stat sb = {0};
    for (int k = 0; k < 200 && (stat(wal, &sb) != 0 || sb.st_size < 4400L * 4096); k++) {
        size_t n = (size_t)snprintf(body, cap, "[");
        for (int i = 0; i < 60; i++)
            n += (size_t)snprintf(body + n, cap - n,
                                  "%s{\"id\":\"w%d-%d\",\"clinic\":\"north\",\"patient\":\"p%d\","
                                  "\"type\":\"ping\",\"at\":\"2026-03-01T09:00:00Z\","
                                  "\"data\":{\"note\":\"%s\"}}", i ? "," : "", k, i, i, note);
        snprintf(body + n, cap - n, "]");
        cr_assert_eq(http(s.port, "POST", "/v1/events", TOKEN_A, body, &out), 200, "%s", out);
        free(out);
    }
    free(body);
    cr_assert_geq(sb.st_size, 4400L * 4096, "the WAL did not grow: %lld bytes",
                  (long long)sb.st_size);

    out = healthz_wait(&s, "degraded", 60000);
    cr_assert(strstr(out, "WAL checkpoints find the database busy"), "%s", out);
    free(out);
    /* more tries, still one line in the log */
    for (int i = 0; i < 600 && metric(s.port, "regimen_store_checkpoints_total"
                                                       "{result=\"busy\"}") < 6; i++)
        usleep(100000);
    cr_assert_geq(metric(s.port, "regimen_store_checkpoints_total{result=\"busy\"}"), 6);
    cr_assert_eq(metric(s.port, "regimen_store_checkpoints_total{result=\"failed\"}"), 0);
    cr_assert_gt(metric(s.port, "regimen_store_wal_pages"), 4000);
    char *log = rg_test_read(s.log);
    cr_assert_eq(count_of(log, "WAL checkpoints find the database busy"), 1, "%s", log);
    free(log);

    /* let go: the next try gets through, by itself */
    long ok = metric(s.port, "regimen_store_checkpoints_total{result=\"ok\"}");
    close(fd);
    out = healthz_wait(&s, "ok", 60000);
    free(out);
    cr_assert_gt(metric(s.port, "regimen_store_checkpoints_total{result=\"ok\"}"), ok);
    /* the WAL copied into the database file (should an evaluation's read
     * have held part of it from that pass, a commit wakes the next) */
    for (int i = 0; i < 300 && metric(s.port, "regimen_store_wal_pages") >= 4000; i++) {
        char id[32];
        snprintf(id, sizeof id, "n%d", i);
        char *ev = ping("north", id, "p0", now_ms(), "pong");
        post(&s, TOKEN_A, ev);
        free(ev);
        usleep(100000);
    }
    cr_assert_lt(metric(s.port, "regimen_store_wal_pages"), 4000);
    cr_assert(log_wait(&s, "store: WAL checkpoints get through again", 10000));
    log = rg_test_read(s.log);
    cr_assert_eq(count_of(log, "WAL checkpoints find the database busy"), 1, "%s", log);
    free(log);
    cr_assert_eq(server_stop(&s, SIGTERM), 0);
    integrity_ok(s.db);
    rg_test_rmdir(s.dir);
}
