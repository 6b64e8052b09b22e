/*
 * test_serve.c - `regimen serve` end to end: the real binary on a free
 * loopback port, a real SQLite file, real HTTP. Ingest over HTTP, an alert
 * that becomes due while nobody calls, ack and snooze, the SSE stream and the
 * transition feed, clinic isolation, hot reload of a broken then a fixed
 * protocol, the same transitions as `simulate`, and kill -9 in the middle of
 * a stream of events.
 */
#define RG_TEST_SERVE
#include "helpers.h"

#include "core/event.h"
#include "core/rg.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sqlite3.h>
#include <sys/socket.h>
#include <time.h>

Test(serve, ingest_time_driven_alert_stream_and_feed, .timeout = 30)
{
    server s = {0};
    char *out;
    server_setup(&s, fast_protocol, fast_protocol);
    server_start(&s);
    cr_assert_eq(http(s.port, "GET", "/healthz", NULL, NULL, &out), 200);
    free(out);
    cr_assert_eq(http(s.port, "GET", "/v1/alerts", NULL, NULL, &out), 401, "%s", out);
    free(out);
    stream st;
    stream_open(&st, s.port, TOKEN_A, NULL);
    cr_assert_neq(stream_wait(&st, "text/event-stream", 2000), -1, "%s", st.buf);

    /* one good event, one bad: per-event outcome */
    char *ev = ping("north", "e1", "p1", now_ms(), "ping");
    char body[2048];
    snprintf(body, sizeof body, "[%s, {\"id\":\"bad\",\"clinic\":\"north\"}]", ev);
    cr_assert_eq(http(s.port, "POST", "/v1/events", TOKEN_A, body, &out), 200, "%s", out);
    cr_assert(strstr(out, "\"status\":\"stored\"") && strstr(out, "\"status\":\"rejected\""),
              "%s", out);
    cr_assert(strstr(out, "\"field\":\"patient\""), "%s", out);
    free(out);
    /* re-sending is a no-op */
    cr_assert_eq(http(s.port, "POST", "/v1/events", TOKEN_A, ev, &out), 200);
    cr_assert(strstr(out, "\"status\":\"duplicate\""), "%s", out);
    free(out);
    /* a NUL byte in the body (jansson alone would skip it): refused, not stored */
    const char nul[] = "{\"id\":\"e9\",\"clinic\":\"north\",\"patient\":\"p9\",\"type\":\"ping\","
                       "\"at\":\"2026-03-02T14:05:00Z\"\0}";
    cr_assert_eq(http_read(http_sendn(s.port, "POST", "/v1/events", TOKEN_A, nul, sizeof nul - 1),
                           &out),
                 400, "%s", out);
    cr_assert(strstr(out, "NUL byte") && strstr(out, "column 85"), "%s", out);
    free(out);

    /* nobody calls; the alert must open by time alone, about 2 s later */
    int64_t t0 = now_ms();
    int took = stream_wait(&st, "\"rule\":\"fast.ping-overdue\"", 6000);
    cr_assert_neq(took, -1, "no transition on the stream:\n%s\nlog:\n%s", st.buf,
                  rg_test_read(s.log));
    int64_t waited = now_ms() - t0;
    cr_assert_geq(waited, 1500, "the alert came too early (%lld ms)", (long long)waited);
    cr_assert(strstr(st.buf, "id: 1\nevent: transition\ndata: {"), "%s", st.buf);
    fprintf(stderr, "time-driven transition arrived %lld ms after the POST\n", (long long)waited);

    /* the feed: gap-free per clinic, resumable */
    cr_assert_eq(http(s.port, "GET", "/v1/transitions?after=0", TOKEN_A, NULL, &out), 200);
    cr_assert(strstr(out, "\"seq\":1,") && strstr(out, "\"last\":1"), "%s", out);
    free(out);
    cr_assert_eq(http(s.port, "GET", "/v1/transitions?after=1", TOKEN_A, NULL, &out), 200);
    cr_assert(strstr(out, "\"transitions\":[]"), "%s", out);
    free(out);

    /* isolation: south sees nothing of north and cannot write to it */
    cr_assert_eq(http(s.port, "GET", "/v1/transitions?after=0", TOKEN_B, NULL, &out), 200);
    cr_assert(strstr(out, "\"transitions\":[]"), "%s", out);
    free(out);
    cr_assert_eq(http(s.port, "GET", "/v1/alerts", TOKEN_B, NULL, &out), 200);
    cr_assert(strstr(out, "\"alerts\":[]"), "%s", out);
    free(out);
    char *foreign = ping("north", "x1", "p1", now_ms(), "pong");
    cr_assert_eq(http(s.port, "POST", "/v1/events", TOKEN_B, foreign, &out), 200);
    cr_assert(strstr(out, "\"status\":\"rejected\"") && strstr(out, "only send events of clinic"),
              "%s", out);
    free(out);
    free(foreign);

    /* ack, then snooze for 1 s: re-raised on the stream while still open */
    cr_assert_eq(http(s.port, "GET", "/v1/alerts?state=open", TOKEN_A, NULL, &out), 200);
    char *k = strstr(out, "\"key\":\"");
    cr_assert_not_null(k, "%s", out);
    char key[40];
    snprintf(key, sizeof key, "%.32s", k + 7);
    free(out);
    char path[128];
    snprintf(path, sizeof path, "/v1/alerts/%s", key);
    cr_assert_eq(http(s.port, "GET", path, TOKEN_B, NULL, &out), 404, "other clinic: %s", out);
    free(out);
    snprintf(path, sizeof path, "/v1/alerts/%s/ack", key);
    cr_assert_eq(http(s.port, "POST", path, TOKEN_A, "{\"who\":\"nurse kim\",\"note\":\"called\"}",
                      &out), 200, "%s", out);
    cr_assert(strstr(out, "\"acknowledged_by\":\"nurse kim\"") && strstr(out, "\"quiet\":true"),
              "%s", out);
    free(out);
    char until[40], snooze[200];
    iso(now_ms() + 1000, until);
    snprintf(snooze, sizeof snooze, "{\"who\":\"nurse kim\",\"until\":\"%s\",\"reason\":\"later\"}",
             until);
    snprintf(path, sizeof path, "/v1/alerts/%s/snooze", key);
    cr_assert_eq(http(s.port, "POST", path, TOKEN_A, snooze, &out), 200, "%s", out);
    cr_assert(strstr(out, "\"action\":\"snooze\"") && strstr(out, "\"action\":\"ack\""), "%s", out);
    free(out);
    /* the expiry is a transition of the feed, with the clinic's next id */
    cr_assert_neq(stream_wait(&st, "\"state\":\"reraised\"", 4000), -1, "%s", st.buf);
    cr_assert(strstr(st.buf, "id: 2\nevent: transition\n"), "%s", st.buf);
    snprintf(path, sizeof path, "/v1/alerts/%s", key);
    cr_assert_eq(http(s.port, "GET", path, TOKEN_A, NULL, &out), 200);
    cr_assert(strstr(out, "\"action\":\"reraise\""), "the history shows it: %s", out);
    free(out);

    /* a pong resolves it at once */
    char *pong = ping("north", "e2", "p1", now_ms(), "pong");
    cr_assert_eq(http(s.port, "POST", "/v1/events", TOKEN_A, pong, &out), 200);
    free(out);
    free(pong);
    cr_assert_neq(stream_wait(&st, "\"state\":\"resolved\"", 3000), -1, "%s", st.buf);
    cr_assert(strstr(st.buf, "id: 3\n"), "%s", st.buf);
    close(st.fd);

    /* resume from Last-Event-ID: 1 gives exactly transitions 2 and 3 */
    stream again;
    stream_open(&again, s.port, TOKEN_A, "1");
    cr_assert_neq(stream_wait(&again, "id: 3\n", 2000), -1, "%s", again.buf);
    cr_assert(strstr(again.buf, "id: 2\n"), "%s", again.buf);
    cr_assert_null(strstr(again.buf, "id: 1\n"), "%s", again.buf);
    close(again.fd);

    cr_assert_eq(http(s.port, "GET", "/metrics", TOKEN_A, NULL, &out), 200);
    cr_assert(strstr(out, "regimen_events_total{clinic=\"north\",outcome=\"stored\"} 2"), "%s", out);
    cr_assert(strstr(out, "regimen_wake_lateness_seconds_count"), "%s", out);
    /* p1's second event was evaluated on its cached history */
    cr_assert(strstr(out, "regimen_history_cache_lookups_total{result=\"hit\"} ") &&
                  !strstr(out, "regimen_history_cache_lookups_total{result=\"hit\"} 0\n"),
              "%s", out);
    free(out);
    free(ev);
    cr_assert_eq(server_stop(&s, SIGTERM), 0, "SIGTERM exits 0:\n%s", rg_test_read(s.log));
    char *log = rg_test_read(s.log);
    cr_assert_null(strstr(log, TOKEN_A), "tokens never reach the log");
    /* (the start's warning quotes the protocol's h:last("ping"): source, not payload) */
    cr_assert_null(strstr(log, "\"type\":\"ping\""), "payloads never reach the log");
    cr_assert_null(strstr(log, "\"patient\":\"p1\""), "payloads never reach the log");
    free(log);
    rg_test_rmdir(s.dir);
}

Test(serve, a_requests_items_decide_one_another_in_order, .timeout = 30)
{
    server s = {0};
    server_setup(&s, fast_protocol, fast_protocol);
    server_start(&s);
    request_items_decide_in_order(&s);
    cr_assert_eq(server_stop(&s, SIGTERM), 0);
    rg_test_rmdir(s.dir);
}

/* A body of plain events is read in one pass (no tree), any other by
 * jansson's tree: the same requests answer the same either way, item by
 * item. North gets plain bodies, south the same events with a \u escape
 * (the same value) in one of them, which sends the whole body to the tree;
 * the one-pass path keeps each event's text as received, spaces included. */
static void one_pass_or_tree(char *out, size_t len, const char *tmpl, const char *clinic,
                             const char *other, int tree)
{
    size_t k = 0;
    for (const char *p = tmpl; *p && k + 16 < len; p++) {
        if (*p == '#')
            k += (size_t)snprintf(out + k, len - k, "%s", clinic);
        else if (*p == '~')
            k += (size_t)snprintf(out + k, len - k, "%s", other);
        else if (*p == '^')
            k += (size_t)snprintf(out + k, len - k, "%s", tree ? "\\u0070ing" : "ping");
        else
            out[k++] = *p;
    }
    out[k] = '\0';
}

static char *answer_for(const server *s, const char *token, const char *tmpl, const char *clinic,
                        const char *other, int tree)
{
    char body[4096], *out;
    one_pass_or_tree(body, sizeof body, tmpl, clinic, other, tree);
    cr_assert_eq(http(s->port, "POST", "/v1/events", token, body, &out), 200, "%s", out);
    if (tree) /* the other clinic's name, so that the answers compare as text */
        for (char *p = out; (p = strstr(p, clinic)); p += 5)
            memcpy(p, other, 5);
    return out;
}

Test(serve, a_body_read_in_one_pass_answers_as_the_tree_does, .timeout = 30)
{
    static const char *const reqs[] = {
        "{ \"id\": \"m1\", \"clinic\": \"#\", \"patient\": \"p1\", \"type\": \"^\", "
        "\"at\": \"2026-03-02T10:00:00Z\", \"data\": {\"n\": 1.50, \"s\": \"x\"} }",
        "[{\"id\":\"m1\",\"clinic\":\"#\",\"patient\":\"p1\",\"type\":\"ping\","
        "\"at\":\"2026-03-02T10:00:00Z\",\"data\":{\"s\":\"x\",\"n\":1.5}},"
        "{\"id\":\"m1\",\"clinic\":\"#\",\"patient\":\"p1\",\"type\":\"^\","
        "\"at\":\"2026-03-02T10:00:00Z\",\"data\":{\"n\":2}},"
        "{\"id\":\"m2\",\"clinic\":\"#\",\"patient\":\"p2\",\"type\":\"ping\","
        "\"at\":\"2026-03-02T10:00:00Z\"},"
        "{\"id\":\"m2\",\"clinic\":\"#\",\"patient\":\"p2\",\"type\":\"ping\","
        "\"at\":\"2026-03-02T10:00:00Z\",\"version\":2,\"status\":\"entered-in-error\","
        "\"corrected_at\":\"2026-03-02T12:00:00Z\",\"corrected_by\":\"dr-lee\"},"
        "{\"id\":\"m3\",\"clinic\":\"~\",\"patient\":\"p3\",\"type\":\"ping\","
        "\"at\":\"2026-03-02T10:00:00Z\"},"
        "{\"id\":\"m4\",\"clinic\":\"#\",\"patient\":\"p4\",\"type\":\"ping\","
        "\"at\":\"2026-03-02T10:00:00Z\"},"
        /* an id that needs an escape, dated ahead of the clock (flagged) */
        "{\"id\":\"m\\\"5\",\"clinic\":\"#\",\"patient\":\"p5\",\"type\":\"ping\","
        "\"at\":\"2099-01-01T00:00:00Z\"}]",
    };
    static const char *const want[] = {"\"status\":\"stored\"", "\"status\":\"duplicate\"",
                                       "\"status\":\"conflict\"", "\"status\":\"corrected\"",
                                       "only send events of clinic 'north'",
                                       "{\"id\":\"m\\\"5\",\"status\":\"stored\",\"future\":true,"
                                       "\"warning\":"};
    server s = {0};
    server_setup(&s, fast_protocol, fast_protocol);
    server_start(&s);
    for (size_t i = 0; i < RG_COUNTOF(reqs); i++) {
        char *a = answer_for(&s, TOKEN_A, reqs[i], "north", "south", 0);
        char *b = answer_for(&s, TOKEN_B, reqs[i], "south", "north", 1);
        cr_assert_str_eq(a, b, "request %zu: one pass and tree answer differently", i);
        free(b);
        for (size_t k = 0; i == 1 && k < RG_COUNTOF(want); k++)
            cr_assert(strstr(a, want[k]), "%s missing: %s", want[k], a);
        free(a);
    }
    cr_assert_eq(server_stop(&s, SIGTERM), 0);
    /* north's first event as received (kept whole: its head is not the one its
     * columns print), south's printed again from the tree (compact, so the row
     * keeps only what follows that head: schema 17) */
    cr_assert_eq(count_rows(s.db, "SELECT count(*) FROM events WHERE clinic = 'north' AND id = 'm1' "
                                  "AND body LIKE '{ \"id\": \"m1\", %'"), 1);
    cr_assert_eq(count_rows(s.db, "SELECT count(*) FROM events WHERE clinic = 'south' AND id = 'm1' "
                                  "AND body NOT LIKE '{%' AND body NOT LIKE ' %'"), 1);
    rg_test_rmdir(s.dir);
}

Test(serve, hot_reload_refuses_a_broken_protocol_then_takes_the_fix, .timeout = 30)
{
    server s = {0};
    char *out;
    server_setup(&s, fast_protocol, fast_protocol);
    /* ping and pong are the test's own event types: declared, or the gate
     * (check) refuses the fix too */
    rg_test_write(s.dir, "a/clinic.lua", "return { events = { ping = {}, pong = {} } }\n");
    server_start(&s);
    rg_test_write(s.dir, "a/p.lua", "local R = require 'regimen'\nreturn R.protocol { id = \n");
    kill(s.pid, SIGHUP);
    log_wait(&s, "protocols refused", 10000);
    char *log = rg_test_read(s.log);
    cr_assert(strstr(log, "protocols refused") && strstr(log, "p.lua"), "%s", log);
    free(log);
    /* the old version keeps working */
    char *ev = ping("north", "r1", "p1", now_ms() - 5000, "ping");
    cr_assert_eq(http(s.port, "POST", "/v1/events", TOKEN_A, ev, &out), 200);
    free(out);
    free(ev);
    cr_assert_eq(http(s.port, "GET", "/v1/alerts?state=open", TOKEN_A, NULL, &out), 200);
    cr_assert(strstr(out, "\"version\":\"1.0\""), "%s", out);
    free(out);
    /* the fix: version 2.0 is loaded and the patient re-evaluated */
    char fixed[sizeof fast_protocol + 16];
    snprintf(fixed, sizeof fixed, "%s", fast_protocol);
    memcpy(strstr(fixed, "'1.0'"), "'2.0'", 5);
    rg_test_write(s.dir, "a/p.lua", fixed);
    kill(s.pid, SIGHUP);
    log_wait(&s, "protocol fast 2.0 loaded", 10000);
    log = rg_test_read(s.log);
    cr_assert(strstr(log, "protocol fast 2.0 loaded"), "%s", log);
    free(log);
    cr_assert_eq(http(s.port, "GET", "/metrics", TOKEN_A, NULL, &out), 200);
    cr_assert(strstr(out, "regimen_reloads_total{result=\"refused\"} ") &&
                  !strstr(out, "regimen_reloads_total{result=\"refused\"} 0"),
              "%s", out);
    cr_assert(strstr(out, "version=\"2.0\""), "%s", out);
    free(out);
    cr_assert_eq(server_stop(&s, SIGINT), 0);
    rg_test_rmdir(s.dir);
}

/* A reload re-evaluates every patient of the clinic; that catch-up runs in
 * slices, the loop answering between them, so /healthz never waits for it
 * (it once held the loop for the whole re-evaluation: a hot reload of 1,005
 * patients at their deadline, 33 minutes without /healthz). */
Test(serve, reload_catch_up_never_holds_the_loop, .timeout = 120)
{
    server s = {0};
    char *out;
    server_setup(&s, fast_protocol, fast_protocol);
    server_start(&s);
    enum { PATIENTS = 300 };
    rg_buf body = {0};
    rg_buf_add(&body, "[", 1);
    for (int i = 0; i < PATIENTS; i++) {
        char id[32], patient[32];
        snprintf(id, sizeof id, "c%d", i);
        snprintf(patient, sizeof patient, "cp%d", i);
        char *ev = ping("north", id, patient, now_ms() - 60000, "ping");
        rg_buf_printf(&body, "%s%s", i ? "," : "", ev);
        free(ev);
    }
    rg_buf_add(&body, "]", 1);
    cr_assert_eq(http(s.port, "POST", "/v1/events", TOKEN_A, body.p, &out), 200, "%s", out);
    free(out);
    rg_buf_free(&body);
    /* version 2.0 takes about 10 ms per patient: seconds for all of them */
    rg_test_write(s.dir, "a/p.lua",
                  "local R = require 'regimen'\n"
                  "return R.protocol { id = 'fast', version = '2.0', rules = { {\n"
                  "  id = 'fast.slow', severity = 'info', check = function(h, now, p)\n"
                  "    local x = 0\n for i = 1, 400000 do x = x + i end\n"
                  "    return R.alert { message = 'slow ' .. x } end } } }\n");
    kill(s.pid, SIGHUP);
    int64_t t0 = now_ms(), worst = 0;
    int polls = 0, done = 0;
    while (!done && now_ms() - t0 < 100000) {
        int64_t a = now_ms();
        cr_assert_eq(http(s.port, "GET", "/healthz", NULL, NULL, &out), 200);
        free(out);
        int64_t took = now_ms() - a;
        worst = took > worst ? took : worst;
        polls++;
        char *log = rg_test_read(s.log);
        const char *reload = strstr(log, "reload: evaluating the patients due");
        done = reload && strstr(reload, "wake-up: ");
        free(log);
        usleep(20000);
    }
    cr_assert(done, "the reload's catch-up did not end:\n%s", rg_test_read(s.log));
    int64_t catch_up = now_ms() - t0;
    cr_assert_lt(worst, 1000, "/healthz waited %lld ms during a %lld ms catch-up",
                 (long long)worst, (long long)catch_up);
    cr_assert_geq(polls, 5, "the catch-up (%lld ms) was too short to tell", (long long)catch_up);
    cr_assert_eq(count_rows(s.db, "SELECT count(*) FROM transitions WHERE rule = 'fast.slow'"),
                 PATIENTS, "every patient is re-evaluated");
    cr_assert_eq(server_stop(&s, SIGTERM), 0);
    rg_test_rmdir(s.dir);
}

/* A protocol that keeps hitting a limit is quarantined (logged, counted);
 * when the back-off is over the clinic's patients are evaluated again, since
 * a protocol that was not evaluated asked for no wake-ups meanwhile. */
Test(serve, quarantine_then_release_evaluates_the_patients_again, .timeout = 60)
{
    server s = {0};
    char *out, protocol[1024], cfg[1024];
    /* hits the instruction budget at every step before T0 (wall ms), then
     * opens an alert */
    int64_t t0 = now_ms() + 500;
    snprintf(protocol, sizeof protocol,
             "local R = require 'regimen'\n"
             "return R.protocol { id = 'q', version = '1', rules = { {\n"
             "  id = 'q.late', severity = 'warning', check = function(h, now, p)\n"
             "    if now < %lld then while true do end end\n"
             "    return R.alert { message = 'back' } end } } }\n", (long long)t0);
    server_setup(&s, protocol, fast_protocol);
    snprintf(cfg, sizeof cfg,
             "{ \"listen\": \"127.0.0.1:0\",\n"
             "  \"clinics\": {\n"
             "    \"north\": { \"protocols\": \"a\", \"tokens\": [\"" TOKEN_A "\"] },\n"
             "    \"south\": { \"protocols\": \"b\", \"tokens\": [\"" TOKEN_B "\"] } },\n"
             "  \"limits\": { \"max_instructions\": 2000000, \"deadline_ms\": 500,\n"
             "              \"quarantine_backoff_s\": 1 } }\n");
    rg_test_write(s.dir, "config.json", cfg);
    server_start(&s);
    char body[2048];
    int n = snprintf(body, sizeof body, "[");
    for (int i = 0; i < 3; i++) {
        char id[16], patient[16];
        snprintf(id, sizeof id, "q%d", i);
        snprintf(patient, sizeof patient, "qp%d", i);
        char *ev = ping("north", id, patient, now_ms() - 60000, "ping");
        n += snprintf(body + n, sizeof body - (size_t)n, "%s%s", i ? "," : "", ev);
        free(ev);
    }
    snprintf(body + n, sizeof body - (size_t)n, "]");
    cr_assert_eq(http(s.port, "POST", "/v1/events", TOKEN_A, body, &out), 200, "%s", out);
    free(out);
    log_wait(&s, "is quarantined for 1 s after 3 limit hits", 10000);
    char *log = rg_test_read(s.log);
    cr_assert(strstr(log, "is quarantined for 1 s after 3 limit hits") && strstr(log, "a/p.lua"),
              "%s", log);
    free(log);
    cr_assert_eq(http(s.port, "GET", "/metrics", TOKEN_A, NULL, &out), 200);
    cr_assert(strstr(out, "\nregimen_quarantines_total 1\n"), "%s", out);
    free(out);
    /* the release wakes the patients: each opens its alert */
    int open = 0;
    for (int i = 0; i < 100 && open < 3; i++) {
        usleep(100000);
        open = count_rows(s.db, "SELECT count(*) FROM transitions WHERE rule = 'q.late' AND "
                                "state = 'open'");
    }
    log = rg_test_read(s.log);
    cr_assert_eq(open, 3, "after the quarantine, %d of 3 patients evaluated again:\n%s", open, log);
    cr_assert(strstr(log, "clinic north: quarantine over"), "%s", log);
    free(log);
    /* the quarantine was a critical system alert of the clinic's, in its
     * feed, and its end resolved it */
    int qopen = 0, qresolved = 0;
    for (int i = 0; i < 100 && !qresolved; i++) {
        qopen = count_rows(s.db, "SELECT count(*) FROM transitions WHERE clinic = 'north' AND "
                                 "rule = 'regimen.protocol-quarantined' AND patient = '' AND "
                                 "protocol = 'q' AND severity = 'critical' AND state = 'open'");
        qresolved = count_rows(s.db, "SELECT count(*) FROM transitions WHERE clinic = 'north' "
                                     "AND rule = 'regimen.protocol-quarantined' AND "
                                     "state = 'resolved'");
        if (!qresolved)
            usleep(100000);
    }
    cr_assert_eq(qopen, 1, "one quarantine alert opened");
    cr_assert_eq(qresolved, 1, "the quarantine alert resolved when it ended");
    cr_assert_eq(http(s.port, "GET", "/v1/transitions?after=0", TOKEN_A, NULL, &out), 200);
    cr_assert(strstr(out, "regimen.protocol-quarantined") && strstr(out, "quarantined"), "%s",
              out);
    free(out);
    cr_assert_eq(server_stop(&s, SIGTERM), 0);
    rg_test_rmdir(s.dir);
}

/* The shipped protocols, fed the north example timeline in one request, give
 * exactly the transitions `regimen simulate --until now` gives. */
Test(serve, same_transitions_as_simulate, .timeout = 60)
{
    server s = {0};
    char *out, *err, cfg[1024], cwd[512];
    rg_test_tmpdir(s.dir);
    cr_assert_not_null(getcwd(cwd, sizeof cwd));
    snprintf(s.db, sizeof s.db, "%s/serve.db", s.dir);
    snprintf(s.config, sizeof s.config, "%s/config.json", s.dir);
    snprintf(s.log, sizeof s.log, "%s/serve.log", s.dir);
    snprintf(cfg, sizeof cfg,
             "{ \"listen\": \"127.0.0.1:0\", \"clinics\": { \"north\": { \"protocols\": "
             "\"%s/examples/clinics/north\", \"tokens\": [\"" TOKEN_A "\"] } } }\n", cwd);
    rg_test_write(s.dir, "config.json", cfg);
    server_start(&s);
    char *lines = rg_test_read("examples/clinics/north/timeline.jsonl");
    rg_buf body = {0};
    rg_buf_add(&body, "[", 1);
    for (char *l = strtok(lines, "\n"); l; l = strtok(NULL, "\n")) {
        if (body.len > 1)
            rg_buf_add(&body, ",", 1);
        rg_buf_add(&body, l, strlen(l));
    }
    rg_buf_add(&body, "]", 1);
    cr_assert_eq(http(s.port, "POST", "/v1/events", TOKEN_A, body.p, &out), 200, "%s", out);
    free(out);
    char now[40];
    iso(now_ms(), now);
    cr_assert_eq(http(s.port, "GET", "/v1/transitions?after=0", TOKEN_A, NULL, &out), 200);
    const char *args[] = {"simulate", "--events", "examples/clinics/north/timeline.jsonl",
                          "--until", now, "--clinic", "north=examples/clinics/north",
                          "--format", "jsonl", NULL};
    char *sim;
    cr_assert_eq(rg_test_run(args, NULL, &sim, &err), 0, "%s", err);
    /* compare the sets of (at, state, patient, rule, key): serve commits a
     * backfill patient by patient, simulate prints in time order */
    char *a_lines[512], *b_lines[512];
    int na = rg_test_transition_lines(out, a_lines, 512), nb = rg_test_transition_lines(sim, b_lines, 512);
    cr_assert_eq(na, nb, "serve gave %d transitions, simulate %d", na, nb);
    qsort(a_lines, (size_t)na, sizeof *a_lines, rg_test_cmp_str);
    qsort(b_lines, (size_t)nb, sizeof *b_lines, rg_test_cmp_str);
    for (int i = 0; i < na; i++)
        cr_assert_str_eq(a_lines[i], b_lines[i]);
    int n = na;
    for (int i = 0; i < na; i++)
        free(a_lines[i]), free(b_lines[i]);
    cr_assert_gt(n, 10, "the example produces transitions (%d)", n);
    free(out);
    free(sim);
    free(err);
    free(lines);
    rg_buf_free(&body);
    cr_assert_eq(server_stop(&s, SIGTERM), 0);
    rg_test_rmdir(s.dir);
}

/* One alert per ping, open from the ping for a second: every event opens an
 * alert and the passing of time closes it. */
static const char window_protocol[] =
    "local R = require 'regimen'\n"
    "return R.protocol { id = 'window', version = '1.0', params = { wait = R.seconds(1) },\n"
    "  rules = { { id = 'window.ping', severity = 'info', check = function(h, now, p)\n"
    "      local alerts = {}\n"
    "      for _, e in ipairs(h:after(now - p.wait, 'ping')) do\n"
    "        alerts[#alerts + 1] = R.alert { key = e.id, due = e.at, ends = e.at + p.wait,\n"
    "                                        message = 'ping ' .. e.id }\n"
    "      end\n"
    "      return alerts\n"
    "    end } } }\n";

/* Writes the stored events (as received) to path, one per line. */
static void export_events(const char *db, const char *path)
{
    sqlite3 *h;
    sqlite3_stmt *st;
    FILE *f = fopen(path, "w");
    cr_assert_not_null(f);
    cr_assert_eq(sqlite3_open_v2(db, &h, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    /* the body as received from what the row keeps (schema 17) */
    cr_assert_eq(sqlite3_prepare_v2(h, "SELECT body, id, clinic, patient, type, at, utc_offset,"
                                       " fields FROM events ORDER BY seq", -1, &st, NULL),
                 SQLITE_OK);
    while (sqlite3_step(st) == SQLITE_ROW) {
        char *body = rg_event_body_whole(
            (const char *)sqlite3_column_text(st, 0), (size_t)sqlite3_column_bytes(st, 0),
            (const char *)sqlite3_column_text(st, 1), (const char *)sqlite3_column_text(st, 2),
            (const char *)sqlite3_column_text(st, 3), (const char *)sqlite3_column_text(st, 4),
            sqlite3_column_int64(st, 5), sqlite3_column_int(st, 6), sqlite3_column_blob(st, 7),
            (size_t)sqlite3_column_bytes(st, 7));
        cr_assert_not_null(body);
        fprintf(f, "%s\n", body);
        free(body);
    }
    sqlite3_finalize(st);
    sqlite3_close(h);
    fclose(f);
}

/* ---- corrections (docs/corrections.md) ------------------------------------------------ */

/* A 171/99 reading POSTed opens safety.bp-high; its retraction (entered in
 * error, made a second from now) resolves it at that instant, by a wake-up
 * of the service; the opening stays on the feed. Every stored version fed to
 * `simulate` gives the same transitions. With the history cache (MiB) on or
 * off. */
static void correction_on_the_feed(int cache_mb)
{
    server s = {0};
    char *out, *err, cfg[1024], cwd[512], body[2048], t_enrol[40], t_bp[40], t_fix[40];
    char want[64];
    rg_test_tmpdir(s.dir);
    cr_assert_not_null(getcwd(cwd, sizeof cwd));
    snprintf(s.db, sizeof s.db, "%s/serve.db", s.dir);
    snprintf(s.config, sizeof s.config, "%s/config.json", s.dir);
    snprintf(s.log, sizeof s.log, "%s/serve.log", s.dir);
    snprintf(cfg, sizeof cfg,
             "{ \"listen\": \"127.0.0.1:0\", \"clinics\": { \"north\": { \"protocols\": "
             "\"%s/examples/clinics/north\", \"tokens\": [\"" TOKEN_A "\"] } },"
             " \"limits\": { \"history_cache_mb\": %d } }\n", cwd, cache_mb);
    rg_test_write(s.dir, "config.json", cfg);
    server_start(&s);
    int64_t t0 = now_ms() / 1000 * 1000;
    iso(t0 - 10000, t_enrol);
    iso(t0 - 5000, t_bp);
    iso(t0 + 1000, t_fix);
    snprintf(body, sizeof body,
             "[{\"id\":\"e1\",\"clinic\":\"north\",\"patient\":\"p1\",\"type\":\"enrolled\","
             "\"at\":\"%s\",\"data\":{\"program\":\"ketamine\"}},"
             "{\"id\":\"bp1\",\"clinic\":\"north\",\"patient\":\"p1\",\"type\":\"vitals\","
             "\"at\":\"%s\",\"data\":{\"systolic\":171,\"diastolic\":99,\"phase\":\"pre\"}}]",
             t_enrol, t_bp);
    cr_assert_eq(http(s.port, "POST", "/v1/events", TOKEN_A, body, &out), 200, "%s", out);
    free(out);
    cr_assert_eq(http(s.port, "GET", "/v1/transitions?after=0", TOKEN_A, NULL, &out), 200);
    cr_assert(strstr(out, "\"state\":\"open\"") && strstr(out, "safety.bp-high"), "%s", out);
    cr_assert_null(strstr(out, "\"resolved\""), "%s", out);
    free(out);
    snprintf(body, sizeof body,
             "{\"id\":\"bp1\",\"clinic\":\"north\",\"patient\":\"p1\",\"type\":\"vitals\","
             "\"at\":\"%s\",\"version\":2,\"status\":\"entered-in-error\",\"corrected_at\":\"%s\","
             "\"corrected_by\":\"dr-lee\"}", t_bp, t_fix);
    cr_assert_eq(http(s.port, "POST", "/v1/events", TOKEN_A, body, &out), 200, "%s", out);
    cr_assert(strstr(out, "\"status\":\"corrected\"") && strstr(out, "\"corrected\":1"), "%s", out);
    free(out);
    /* a stale version is a conflict, with its reason */
    snprintf(body, sizeof body,
             "{\"id\":\"bp1\",\"clinic\":\"north\",\"patient\":\"p1\",\"type\":\"vitals\","
             "\"at\":\"%s\",\"data\":{\"systolic\":120,\"diastolic\":80,\"phase\":\"pre\"}}", t_bp);
    cr_assert_eq(http(s.port, "POST", "/v1/events", TOKEN_A, body, &out), 200, "%s", out);
    cr_assert(strstr(out, "\"status\":\"conflict\"") && strstr(out, "different content"), "%s", out);
    free(out);
    /* the resolution at corrected_at, by the wake-up the correction set */
    rg_time_format(t0 + 1000, want);
    char needle[128];
    snprintf(needle, sizeof needle, "%s resolved p1 safety.bp-high ", want);
    int found = 0;
    for (int i = 0; i < 100 && !found; i++) {
        usleep(100000);
        cr_assert_eq(http(s.port, "GET", "/v1/transitions?after=0", TOKEN_A, NULL, &out), 200);
        char *lines[64];
        int n = rg_test_transition_lines(out, lines, 64);
        for (int k = 0; k < n; k++) {
            found |= !strncmp(lines[k], needle, strlen(needle));
            free(lines[k]);
        }
        if (!found)
            free(out);
    }
    cr_assert(found, "no resolution of bp-high at %s on the feed", want);
    cr_assert(strstr(out, "\"state\":\"open\""), "the opening stays published: %s", out);
    cr_assert_eq(count_rows(s.db, "SELECT count(*) FROM events WHERE id = 'bp1'"), 2,
                 "both versions are kept");
    /* the differential: simulate over every stored version */
    char events[600], until[40], clinic[600];
    snprintf(events, sizeof events, "%s/stored.jsonl", s.dir);
    export_events(s.db, events);
    iso(now_ms(), until);
    snprintf(clinic, sizeof clinic, "north=%s/examples/clinics/north", cwd);
    const char *args[] = {"simulate", "--events", events, "--until", until, "--clinic", clinic,
                          "--format", "jsonl", NULL};
    char *sim;
    cr_assert_eq(rg_test_run(args, NULL, &sim, &err), 0, "%s", err);
    char *a[64], *b[64];
    int na = rg_test_transition_lines(out, a, 64), nb = rg_test_transition_lines(sim, b, 64);
    cr_assert_eq(na, nb, "serve gave %d transitions, simulate %d:\n%s\n%s", na, nb, out, sim);
    qsort(a, (size_t)na, sizeof *a, rg_test_cmp_str);
    qsort(b, (size_t)nb, sizeof *b, rg_test_cmp_str);
    for (int i = 0; i < na; i++) {
        cr_assert_str_eq(a[i], b[i]);
        free(a[i]);
        free(b[i]);
    }
    free(sim);
    free(err);
    free(out);
    cr_assert_eq(server_stop(&s, SIGTERM), 0);
    rg_test_rmdir(s.dir);
}

Test(serve, a_retraction_resolves_its_alert_on_the_feed_as_simulate_does, .timeout = 60)
{
    correction_on_the_feed(64);
}

Test(serve, a_retraction_resolves_its_alert_without_the_history_cache, .timeout = 60)
{
    correction_on_the_feed(0);
}

/* ---- the crash loop -------------------------------------------------------------------- */

#include <pthread.h>
#include <spawn.h>

/* One writer beside the crash loop: an HTTP client (POST one event at a
 * time) or a back-office import (`regimen ingest --db` of a few lines at a
 * time, straight into the store, whether the service is up or not). No
 * asserts off the main thread: it records what was acknowledged. */
typedef struct crash_writer {
    int ingest, n;
    const server *s;
    volatile int *port, *stop;
    int sent, acked, cap;
    char (*ids)[24];
} crash_writer;

static void crash_acked(crash_writer *w, const char *id)
{
    if (w->acked == w->cap) {
        w->cap = w->cap ? 2 * w->cap : 1024;
        w->ids = realloc(w->ids, (size_t)w->cap * sizeof *w->ids);
    }
    snprintf(w->ids[w->acked++], sizeof w->ids[0], "%s", id);
}

static void *crash_writer_main(void *ud)
{
    crash_writer *w = ud;
    char file[600];
    snprintf(file, sizeof file, "%s/ingest-%d.jsonl", w->s->dir, w->n);
    while (!*w->stop) {
        char id[24], patient[24], *ev, *out;
        if (!w->ingest) {
            snprintf(id, sizeof id, "w%d-%d", w->n, w->sent++);
            /* over 8 patients (each history shorter: simulate below
             * evaluates it as one advance; until the wake-up bound counted
             * patient time, engine.c rg__space_wake, one past 1,000
             * wake-ups was cut there and not in the service) */
            snprintf(patient, sizeof patient, "w%d-p%d", w->n, w->sent % 8);
            /* stamped a little ahead, so an event never arrives after a
             * wake-up of its patient already moved past it (a late event is
             * taken in at the patient's clock: see README) */
            ev = ping("north", id, patient, now_ms() + 500, w->sent % 4 ? "ping" : "pong");
            int st = http(*w->port, "POST", "/v1/events", TOKEN_A, ev, &out);
            if (st == 200 && strstr(out, "\"status\":\"stored\""))
                crash_acked(w, id);
            free(ev);
            free(out);
            if (st == 0) /* the server is gone: wait for the next one */
                usleep(5000);
            continue;
        }
        /* ingest: 5 lines a run, acknowledged when it exits 0 (all stored);
         * stamped further ahead, as a run may wait for the service's commit */
        enum { LINES = 5 };
        char ids[LINES][24];
        FILE *f = fopen(file, "w");
        if (!f)
            break;
        for (int k = 0; k < LINES; k++) {
            snprintf(ids[k], sizeof ids[k], "i%d-%d", w->n, w->sent++);
            snprintf(patient, sizeof patient, "i%d-p%d", w->n, k % 2);
            ev = ping("north", ids[k], patient, now_ms() + 3000, w->sent % 4 ? "ping" : "pong");
            fprintf(f, "%s\n", ev);
            free(ev);
        }
        fclose(f);
        const char *argv[] = {rg_test_bin(), "ingest", "--db", w->s->db, file, NULL};
        posix_spawn_file_actions_t fa;
        posix_spawn_file_actions_init(&fa);
        posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
        posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
        pid_t pid;
        int status = -1;
        if (posix_spawn(&pid, argv[0], &fa, NULL, (char *const *)argv, environ) == 0)
            waitpid(pid, &status, 0);
        posix_spawn_file_actions_destroy(&fa);
        if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
            for (int k = 0; k < LINES; k++)
                crash_acked(w, ids[k]);
        usleep(20000);
    }
    return NULL;
}

/* A crash loop: events come in from HTTP clients and from a concurrent
 * `regimen ingest` while the server is killed with SIGKILL at random
 * moments, `cycles` times, restarting each time. At the end every
 * acknowledged event is stored exactly once, the database is intact after
 * every crash, the transition feed has no gap and no duplicate and equals
 * `regimen simulate` on the stored events, and a restart with nothing new
 * sends nothing new. make test runs 50 cycles; make soak runs it longer
 * (RG_CRASH_CYCLES, RG_CRASH_CLIENTS) and prints the same figures. */
static void crash_loop(int cycles, int clients)
{
    enum { MAXT = 400000, MAXW = 16 };
    server s = {0};
    server_setup(&s, window_protocol, window_protocol);
    server_start(&s);
    srand(7);
    volatile int port = s.port, stop = 0;
    int nw = clients + 1;
    crash_writer w[MAXW];
    pthread_t th[MAXW];
    cr_assert_leq(nw, MAXW);
    for (int i = 0; i < nw; i++) {
        w[i] = (crash_writer){.ingest = i == clients, .n = i, .s = &s, .port = &port, .stop = &stop};
        cr_assert_eq(pthread_create(&th[i], NULL, crash_writer_main, &w[i]), 0);
    }
    for (int round = 0; round < cycles; round++) {
        usleep((useconds_t)(60 + rand() % 200) * 1000);
        kill(s.pid, SIGKILL);
        waitpid(s.pid, NULL, 0);
        integrity_ok(s.db);
        server_start(&s);
        port = s.port;
    }
    stop = 1;
    int sent = 0, acked = 0, lost = 0, twice = 0, by_ingest = 0;
    sqlite3 *h;
    sqlite3_stmt *q;
    for (int i = 0; i < nw; i++)
        pthread_join(th[i], NULL);
    cr_assert_eq(sqlite3_open_v2(s.db, &h, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    cr_assert_eq(sqlite3_prepare_v2(h, "SELECT count(*) FROM events WHERE id = ?", -1, &q, NULL),
                 SQLITE_OK);
    for (int i = 0; i < nw; i++) {
        cr_assert_gt(w[i].acked, 0, "writer %d (%s) had events acknowledged", i,
                     w[i].ingest ? "ingest" : "http");
        sent += w[i].sent;
        acked += w[i].acked;
        by_ingest += w[i].ingest ? w[i].acked : 0;
        for (int k = 0; k < w[i].acked; k++) {
            sqlite3_bind_text(q, 1, w[i].ids[k], -1, SQLITE_STATIC);
            int n = sqlite3_step(q) == SQLITE_ROW ? sqlite3_column_int(q, 0) : -1;
            sqlite3_reset(q);
            lost += n == 0;
            twice += n > 1;
        }
    }
    sqlite3_finalize(q);
    sqlite3_close(h);
    /* every pending event and 1 s window falls due and is emitted: the service
     * has nothing left to wake for (its wake-up read from the store, after
     * the last pass committed; before the start-up's catch-up it reads 0 too) */
    cr_assert(caught_up_wait(&s, 30000), "%s", rg_test_read(s.log));
    for (int64_t end = now_ms() + 30000;
         metric(s.port, "regimen_wake_next_seconds") != 0 && now_ms() < end;)
        usleep(100000);
    cr_assert_eq(metric(s.port, "regimen_wake_next_seconds"), 0, "still something due");
    int stored = count_rows(s.db, "SELECT count(*) FROM events");
    int gaps = count_rows(s.db, "SELECT coalesce(max(cseq), 0) FROM transitions WHERE clinic = 'north'") -
               count_rows(s.db, "SELECT count(*) FROM transitions WHERE clinic = 'north'");
    int duplicated = twice + count_rows(s.db, "SELECT count(*) FROM (SELECT key, state, at, count(*) c "
                                              "FROM transitions GROUP BY key, state, at HAVING c > 1)");
    /* the whole feed, page by page */
    rg_buf fb = {0};
    for (int64_t after = 0;;) {
        char path[96], *page;
        snprintf(path, sizeof path, "/v1/transitions?after=%lld&limit=10000", (long long)after);
        cr_assert_eq(http(s.port, "GET", path, TOKEN_A, NULL, &page), 200);
        const char *last = strstr(page, "\"last\":");
        int64_t next = last ? atoll(last + 7) : after;
        rg_buf_add(&fb, page, strlen(page));
        free(page);
        if (next == after)
            break;
        after = next;
    }
    char until[40], events[600], clinic[600];
    iso(now_ms(), until);
    snprintf(events, sizeof events, "%s/stored.jsonl", s.dir);
    snprintf(clinic, sizeof clinic, "north=%s/a", s.dir);
    export_events(s.db, events);
    const char *args[] = {"simulate", "--events", events, "--until", until, "--clinic", clinic,
                          "--format", "jsonl", NULL};
    char *sim, *err;
    cr_assert_eq(rg_test_run(args, NULL, &sim, &err), 0, "%s", err);
    char **a = calloc(MAXT, sizeof *a), **b = calloc(MAXT, sizeof *b);
    int na = rg_test_transition_lines(fb.p, a, MAXT), nb = rg_test_transition_lines(sim, b, MAXT);
    qsort(a, (size_t)na, sizeof *a, rg_test_cmp_str);
    qsort(b, (size_t)nb, sizeof *b, rg_test_cmp_str);
    int differ = na != nb;
    for (int i = 0; i < na && i < nb && !differ; i++)
        differ = strcmp(a[i], b[i]) != 0;
    fprintf(stderr, "crash loop: %d kill -9 cycles, %d writers (%d HTTP clients, 1 ingest); "
                    "%d events sent, %d acknowledged (%d of them by ingest), %d stored, "
                    "%d transitions; %d lost, %d duplicated, %d gaps; feed %s simulate on the "
                    "stored events\n",
            cycles, nw, clients, sent, acked, by_ingest, stored, na, lost, duplicated, gaps,
            differ ? "DIFFERS FROM" : "equals");
    cr_assert_gt(acked, cycles, "events were acknowledged (%d of %d sent)", acked, sent);
    cr_assert_eq(lost, 0, "acknowledged events lost");
    cr_assert_eq(duplicated, 0, "duplicates");
    cr_assert_eq(gaps, 0, "no gap in the sequence");
    cr_assert_gt(na, cycles, "the crash loop produced transitions (%d)", na);
    cr_assert_eq(na, nb, "the feed has %d transitions, simulate on the stored events %d", na, nb);
    for (int i = 0; i < na; i++)
        cr_assert_str_eq(a[i], b[i], "feed and simulate differ at %d: %s vs %s", i, a[i], b[i]);
    /* unchanged state: a restart sends nothing new */
    cr_assert_eq(server_stop(&s, SIGTERM), 0);
    int before = count_rows(s.db, "SELECT count(*) FROM transitions");
    server_start(&s);
    cr_assert(caught_up_wait(&s, 20000), "%s", rg_test_read(s.log));
    cr_assert_eq(count_rows(s.db, "SELECT count(*) FROM transitions"), before,
                 "no new transition after a restart with nothing new");
    cr_assert_eq(server_stop(&s, SIGTERM), 0);
    for (int i = 0; i < na; i++)
        free(a[i]);
    for (int i = 0; i < nb; i++)
        free(b[i]);
    for (int i = 0; i < nw; i++)
        free(w[i].ids);
    free(a);
    free(b);
    free(fb.p);
    free(sim);
    free(err);
    rg_test_rmdir(s.dir);
}

static int env_int(const char *name, int dflt)
{
    const char *v = getenv(name);
    return v && atoi(v) > 0 ? atoi(v) : dflt;
}

Test(serve, crash_loop_kill_9_loses_nothing_and_repeats_nothing, .timeout = 1800)
{
    crash_loop(env_int("RG_CRASH_CYCLES", 50), env_int("RG_CRASH_CLIENTS", 2));
}
/* ---- webhooks: a real receiver on loopback (helpers.h) --------------------------- */

/* Waits until the webhook has delivered every transition it knows of
 * (regimen_webhook_backlog 0 in /metrics). */
static int backlog_empty_wait(int port, int ms)
{
    for (int waited = 0;; waited += 50) {
        char *out;
        int empty = http(port, "GET", "/metrics", TOKEN_A, NULL, &out) == 200 &&
                    strstr(out, "regimen_webhook_backlog 0\n") != NULL;
        free(out);
        if (empty)
            return 1;
        if (waited >= ms)
            return 0;
        usleep(50000);
    }
}

/* Times a successful (200) delivery of key was seen. */
static int delivered(receiver *r, const char *key)
{
    int n = 0;
    for (int i = 0; i < r->n && i < 64; i++)
        n += r->status[i] == 200 && !strcmp(r->keys[i], key);
    return n;
}

static void webhook_setup(server *s, int port)
{
    char cfg[1024];
    server_setup(s, fast_protocol, fast_protocol);
    snprintf(cfg, sizeof cfg,
             "{ \"listen\": \"127.0.0.1:0\", \"clinics\": { \"north\": { \"protocols\": \"a\","
             " \"tokens\": [\"" TOKEN_A "\"], \"webhook\": \"http://127.0.0.1:%d/hook\" } } }\n",
             port);
    rg_test_write(s->dir, "config.json", cfg);
}

Test(serve, webhook_retries_with_backoff_and_delivers_each_transition_once, .timeout = 60)
{
    receiver r = {.fail_first = 2};
    server s = {0};
    char *out;
    receiver_start(&r);
    webhook_setup(&s, r.port);
    server_start(&s);
    char *ev = ping("north", "w1", "p1", now_ms() - 5000, "ping"); /* overdue at once */
    cr_assert_eq(http(s.port, "POST", "/v1/events", TOKEN_A, ev, &out), 200, "%s", out);
    free(out);
    free(ev);
    for (int i = 0; i < 100 && !delivered(&r, "north-1"); i++)
        usleep(100000);
    cr_assert_eq(delivered(&r, "north-1"), 1, "delivered after two failures (%d requests)", r.n);
    cr_assert_geq(r.n, 3, "two failed attempts came first");
    cr_assert_str_eq(r.keys[0], "north-1", "the same idempotency key on every attempt");
    cr_assert_str_eq(r.keys[1], "north-1");
    char *pong = ping("north", "w2", "p1", now_ms(), "pong");
    cr_assert_eq(http(s.port, "POST", "/v1/events", TOKEN_A, pong, &out), 200);
    free(out);
    free(pong);
    for (int i = 0; i < 50 && !delivered(&r, "north-2"); i++)
        usleep(100000);
    cr_assert_eq(delivered(&r, "north-2"), 1);
    cr_assert_eq(server_stop(&s, SIGTERM), 0);
    int seen = r.n;
    server_start(&s); /* a restart repeats nothing the receiver acknowledged */
    /* caught up, and the webhook's backlog empty: a delivery repeated
     * would have been made (and counted at the receiver) by then */
    cr_assert(caught_up_wait(&s, 20000), "%s", rg_test_read(s.log));
    cr_assert(backlog_empty_wait(s.port, 20000), "the webhook's backlog did not empty");
    cr_assert_eq(r.n, seen, "no delivery repeated after a restart");
    cr_assert_eq(http(s.port, "GET", "/metrics", TOKEN_A, NULL, &out), 200);
    cr_assert(strstr(out, "regimen_webhook_backlog 0"), "%s", out);
    free(out);
    cr_assert_eq(server_stop(&s, SIGTERM), 0);
    receiver_stop(&r);
    rg_test_rmdir(s.dir);
}

/* An info alert at a ping, a critical one at an alarm. */
static const char hours_protocol[] =
    "local R = require 'regimen'\n"
    "return R.protocol { id = 'h', version = '1', rules = {\n"
    "  { id = 'h.ping', severity = 'info', check = function(h)\n"
    "      local e = h:last('ping'); if e then return R.alert { key = e.id, message = 'ping' } end\n"
    "    end },\n"
    "  { id = 'h.alarm', severity = 'critical', check = function(h)\n"
    "      local e = h:last('alarm'); if e then return R.alert { key = e.id, message = 'alarm' } end\n"
    "    end } } }\n";

/* The clinic is closed now and opens at the next minute (UTC, at least 4 s
 * away): an info alert's webhook waits for the opening, a critical one that
 * opens after it overtakes it, and the cursor then moves over both. */
Test(serve, webhook_waits_for_notify_at_but_not_for_critical, .timeout = 120)
{
    static const char *const wd[7] = {"sun", "mon", "tue", "wed", "thu", "fri", "sat"};
    receiver r = {0};
    server s = {0};
    char *out, settings[320];
    int64_t open_at = (now_ms() / 60000 + 1) * 60000;
    if (open_at - now_ms() < 10000) { /* too close for a loaded machine: the minute after */
        usleep((useconds_t)(open_at - now_ms() + 100) * 1000);
        open_at += 60000;
    }
    time_t ot = (time_t)(open_at / 1000);
    struct tm tm;
    gmtime_r(&ot, &tm);
    snprintf(settings, sizeof settings,
             "return { timezone = 'UTC', hours = { %s = { '%02d:%02d', '24:00' } },\n"
             "  events = { ping = {}, alarm = {} } }\n",
             wd[tm.tm_wday], tm.tm_hour, tm.tm_min);
    receiver_start(&r);
    webhook_setup(&s, r.port);
    rg_test_write(s.dir, "a/p.lua", hours_protocol);
    rg_test_write(s.dir, "a/clinic.lua", settings);
    server_start(&s);
    char *ev = ping("north", "w1", "p1", now_ms() - 1000, "ping");
    cr_assert_eq(http(s.port, "POST", "/v1/events", TOKEN_A, ev, &out), 200, "%s", out);
    free(out);
    free(ev);
    /* the info alert is in the feed, to be notified at the opening (the
     * critical one below overtakes it: the webhook did wait) */
    char want[80], at[40];
    iso(open_at, at);
    snprintf(want, sizeof want, "\"notify_at\":\"%.19sZ\"", at);
    int found = 0;
    for (int i = 0; i < 100 && !found; i++) {
        cr_assert_eq(http(s.port, "GET", "/v1/transitions", TOKEN_A, NULL, &out), 200);
        found = strstr(out, want) != NULL;
        if (!found)
            usleep(50000);
        if (!found && i < 99)
            free(out);
    }
    cr_assert(found, "want %s in %s", want, out);
    free(out);
    cr_assert_eq(r.n, 0, "the info alert waits for the opening");
    ev = ping("north", "w2", "p1", now_ms(), "alarm");
    cr_assert_eq(http(s.port, "POST", "/v1/events", TOKEN_A, ev, &out), 200, "%s", out);
    free(out);
    free(ev);
    for (int i = 0; i < 50 && !delivered(&r, "north-2"); i++)
        usleep(100000);
    cr_assert_eq(delivered(&r, "north-2"), 1, "critical goes at once");
    cr_assert_eq(delivered(&r, "north-1"), 0);
    cr_assert_lt(now_ms(), open_at, "the test ran too slowly to see the wait");
    while (now_ms() < open_at + 5000 && !delivered(&r, "north-1"))
        usleep(100000);
    cr_assert_eq(delivered(&r, "north-1"), 1, "delivered at the opening");
    cr_assert_geq(now_ms(), open_at);
    cr_assert_eq(http(s.port, "GET", "/metrics", TOKEN_A, NULL, &out), 200);
    cr_assert(strstr(out, "regimen_webhook_backlog 0"), "the cursor moved over both:\n%s", out);
    free(out);
    cr_assert_eq(http(s.port, "GET", "/v1/alerts", TOKEN_A, NULL, &out), 200);
    cr_assert(strstr(out, want), "GET /v1/alerts carries notify_at: %s", out);
    free(out);
    cr_assert_eq(server_stop(&s, SIGTERM), 0);
    int seen = r.n;
    server_start(&s); /* nothing is sent twice after a restart */
    cr_assert(caught_up_wait(&s, 20000), "%s", rg_test_read(s.log));
    cr_assert(backlog_empty_wait(s.port, 20000), "the webhook's backlog did not empty");
    cr_assert_eq(r.n, seen);
    cr_assert_eq(server_stop(&s, SIGTERM), 0);
    receiver_stop(&r);
    rg_test_rmdir(s.dir);
}

Test(serve, webhook_interrupted_before_acknowledgement_is_sent_again_with_its_key, .timeout = 60)
{
    receiver r = {.delay_ms = 1500};
    server s = {0};
    char *out;
    receiver_start(&r);
    webhook_setup(&s, r.port);
    server_start(&s);
    char *ev = ping("north", "w1", "p1", now_ms() - 5000, "ping");
    cr_assert_eq(http(s.port, "POST", "/v1/events", TOKEN_A, ev, &out), 200, "%s", out);
    free(out);
    free(ev);
    /* the request is at the receiver, not yet answered */
    for (int i = 0; i < 200 && !__atomic_load_n(&r.arrived, __ATOMIC_SEQ_CST); i++)
        usleep(50000);
    cr_assert_eq(__atomic_load_n(&r.arrived, __ATOMIC_SEQ_CST), 1, "the webhook's request came");
    cr_assert_eq(__atomic_load_n(&r.n, __ATOMIC_SEQ_CST), 0, "and is not answered yet");
    server_stop(&s, SIGKILL);
    r.delay_ms = 0;
    for (int i = 0; i < 30 && r.n < 1; i++)
        usleep(100000);
    server_start(&s);
    for (int i = 0; i < 50 && delivered(&r, "north-1") < 2; i++)
        usleep(100000);
    cr_assert_eq(delivered(&r, "north-1"), 2,
                 "sent again after the crash, with the same key (%d requests)", r.n);
    cr_assert_eq(server_stop(&s, SIGTERM), 0);
    receiver_stop(&r);
    rg_test_rmdir(s.dir);
}

Test(serve, a_changed_protocol_file_is_reloaded_without_a_signal, .timeout = 30)
{
    server s = {0};
    server_setup(&s, fast_protocol, fast_protocol);
    /* ping and pong are the test's own event types: declared, or the gate
     * (check) refuses the new version */
    rg_test_write(s.dir, "a/clinic.lua", "return { events = { ping = {}, pong = {} } }\n");
    server_start(&s);
    char fixed[sizeof fast_protocol + 16];
    snprintf(fixed, sizeof fixed, "%s", fast_protocol);
    memcpy(strstr(fixed, "'1.0'"), "'3.0'", 5);
    rg_test_write(s.dir, "a/p.lua", fixed);
    char *log = NULL;
    for (int i = 0; i < 40; i++) {
        usleep(100000);
        free(log);
        log = rg_test_read(s.log);
        if (strstr(log, "protocol fast 3.0 loaded"))
            break;
    }
    cr_assert(strstr(log, "protocol files changed") && strstr(log, "protocol fast 3.0 loaded"),
              "%s", log);
    free(log);
    cr_assert_eq(server_stop(&s, SIGTERM), 0);
    rg_test_rmdir(s.dir);
}

/* ---- group commit ------------------------------------------------------------------ */

/* An alert for every ping, open at once: one transition per stored event. */
static const char echo_protocol[] =
    "local R = require 'regimen'\n"
    "return R.protocol { id = 'echo', version = '1.0',\n"
    "  rules = { { id = 'echo.ping', severity = 'info', check = function(h, now, p)\n"
    "      local last = h:last('ping')\n"
    "      if last then return R.alert { key = last.id, due = last.at, message = 'echo' } end\n"
    "    end } } }\n";

typedef struct poster {
    int port, id, ok;
} poster;

/* One client: POSTs of one new ping each, one at a time (no asserts off the
 * main thread: it counts the acknowledged ones). */
static void *poster_main(void *ud)
{
    poster *p = ud;
    for (int i = 0; i < 5; i++) {
        char id[32], *out;
        snprintf(id, sizeof id, "t%d-%d", p->id, i);
        char *ev = ping("north", id, id, now_ms(), "ping");
        if (http(p->port, "POST", "/v1/events", TOKEN_A, ev, &out) == 200 &&
            strstr(out, "\"stored\":1,"))
            p->ok++;
        free(out);
        free(ev);
    }
    return NULL;
}

/* Requests that arrive together are stored and evaluated in shared commits;
 * every one is acknowledged with its own outcomes, every event is stored
 * once (one sent twice in the same group is a duplicate the second time),
 * and the feed and the stream count 1, 2, 3, ... without a gap. */
Test(serve, concurrent_posts_share_commits_each_acknowledged_feed_gap_free, .timeout = 60)
{
    enum { HELD = 8, THREADS = 4, EACH = 5, TOTAL = 2 * HELD - 1 + THREADS * EACH };
    server s = {0};
    char *out, body[2048], id[32];
    server_setup(&s, echo_protocol, echo_protocol);
    server_start(&s);
    stream st;
    stream_open(&st, s.port, TOKEN_A, NULL);
    cr_assert_neq(stream_wait(&st, "text/event-stream", 2000), -1, "%s", st.buf);
    long groups0 = metric(s.port, "regimen_group_commits_total");
    long requests0 = metric(s.port, "regimen_group_requests_total");

    /* With the server paused, HELD requests wait in its sockets; it reads
     * them in one loop iteration. Requests 0 and 1 both carry event "dup". */
    char *dup = ping("north", "dup", "pdup", now_ms(), "ping");
    int fds[HELD];
    cr_assert_eq(kill(s.pid, SIGSTOP), 0);
    for (int i = 0; i < HELD; i++) {
        snprintf(id, sizeof id, "h%d", i);
        char *a = ping("north", id, id, now_ms(), "ping"), *b;
        snprintf(id, sizeof id, "h%d-b", i);
        b = i < 2 ? strdup(dup) : ping("north", id, id, now_ms(), "ping");
        snprintf(body, sizeof body, "[%s,%s]", a, b);
        fds[i] = http_send(s.port, "POST", "/v1/events", TOKEN_A, body);
        free(a);
        free(b);
    }
    cr_assert_eq(kill(s.pid, SIGCONT), 0); /* before any assert: never leave it stopped */
    for (int i = 0; i < HELD; i++)
        cr_assert_geq(fds[i], 0, "request %d could not be sent", i);
    int stored = 0, duplicates = 0;
    for (int i = 0; i < HELD; i++) {
        int n1 = -1, n2 = -1;
        cr_assert_eq(http_read(fds[i], &out), 200, "request %d: %s", i, out);
        char *p1 = strstr(out, "\"stored\":"), *p2 = strstr(out, "\"duplicates\":");
        cr_assert(p1 && p2 && sscanf(p1, "\"stored\":%d", &n1) == 1 &&
                      sscanf(p2, "\"duplicates\":%d", &n2) == 1 && n1 + n2 == 2,
                  "request %d: %s", i, out);
        stored += n1;
        duplicates += n2;
        free(out);
    }
    free(dup);
    cr_assert_eq(stored, 2 * HELD - 1);
    cr_assert_eq(duplicates, 1, "the event sent twice is stored once");
    long groups = metric(s.port, "regimen_group_commits_total") - groups0;
    cr_assert_eq(metric(s.port, "regimen_group_requests_total") - requests0, HELD);
    cr_assert_lt(groups, HELD, "%ld commits for %d requests read together", groups, HELD);
    fprintf(stderr, "group commit: %d requests read together, %ld commit%s\n", HELD, groups,
            groups == 1 ? "" : "s");

    /* clients posting at the same time, as they come */
    poster ps[THREADS];
    pthread_t th[THREADS];
    for (int i = 0; i < THREADS; i++) {
        ps[i] = (poster){s.port, i, 0};
        cr_assert_eq(pthread_create(&th[i], NULL, poster_main, &ps[i]), 0);
    }
    for (int i = 0; i < THREADS; i++) {
        pthread_join(th[i], NULL);
        cr_assert_eq(ps[i].ok, EACH, "client %d: %d of %d acknowledged as stored", i, ps[i].ok,
                     EACH);
    }

    /* one transition per stored event, numbered 1..TOTAL on the stream and in the feed */
    char want[48];
    snprintf(want, sizeof want, "id: %d\n", TOTAL);
    cr_assert_neq(stream_wait(&st, want, 10000), -1, "%s", st.buf);
    const char *at = st.buf;
    for (int k = 1; k <= TOTAL; k++) {
        snprintf(want, sizeof want, "id: %d\nevent: transition\n", k);
        const char *next = strstr(at, want);
        cr_assert_not_null(next, "transition %d missing or out of order:\n%s", k, st.buf);
        at = next + 1;
    }
    snprintf(want, sizeof want, "id: %d\n", TOTAL + 1);
    cr_assert_null(strstr(st.buf, want), "%s", st.buf);
    close(st.fd);
    cr_assert_eq(http(s.port, "GET", "/v1/transitions?after=0", TOKEN_A, NULL, &out), 200);
    snprintf(want, sizeof want, "\"last\":%d", TOTAL);
    cr_assert(strstr(out, want), "%s", out);
    free(out);
    cr_assert_eq(server_stop(&s, SIGTERM), 0, "%s", rg_test_read(s.log));
    cr_assert_eq(count_rows(s.db, "SELECT count(*) FROM events"), TOTAL);
    cr_assert_eq(count_rows(s.db, "SELECT count(DISTINCT id) FROM events"), TOTAL);
    cr_assert_eq(count_rows(s.db, "SELECT count(*) FROM transitions"), TOTAL);
    char sql[160];
    snprintf(sql, sizeof sql, "SELECT count(DISTINCT cseq) FROM transitions"
                              " WHERE clinic = 'north' AND cseq BETWEEN 1 AND %d", TOTAL);
    cr_assert_eq(count_rows(s.db, sql), TOTAL);
    rg_test_rmdir(s.dir);
}

/* A POST that comes while its clinic's job works through a backlog of due
 * patients (here the start-up's catch-up of pings stored by `regimen ingest`
 * while the service was down) waits for a short part of that job, not for
 * the backlog: the job's wake-up part hands back for it (evaluate.c,
 * RG__YIELD_MS), which regimen_wake_yields_total counts. Before, each POST
 * in a backlog waited for a whole wake-up job (up to 250 ms) or two. */
Test(serve, post_during_backlog_cuts_the_wake_up_short, .timeout = 180)
{
    enum { BACKLOG = 50000 };
    server s = {0};
    char *out, *err, file[600];
    server_setup(&s, echo_protocol, echo_protocol);
    snprintf(file, sizeof file, "%s/backlog.jsonl", s.dir);
    FILE *f = fopen(file, "w");
    cr_assert_not_null(f);
    int64_t at = now_ms() - 60000;
    for (int i = 0; i < BACKLOG; i++) {
        char id[32], *ev;
        snprintf(id, sizeof id, "b%d", i);
        ev = ping("north", id, id, at, "ping");
        fprintf(f, "%s\n", ev);
        free(ev);
    }
    cr_assert_eq(fclose(f), 0);
    const char *args[] = {"ingest", "--db", s.db, file, NULL};
    cr_assert_eq(rg_test_run(args, NULL, &out, &err), 0, "%s", err);
    free(out);
    free(err);
    server_start(&s);
    /* the POST comes once the catch-up runs (its first wake-up job is
     * back): before that, the POST's own job could run first, with no
     * wake-up part to cut short */
    for (int64_t end = now_ms() + 30000;
         metric(s.port, "regimen_patients_evaluated_total") < 1 && now_ms() < end;)
        usleep(2000);

    /* up to three POSTs while the backlog is still due: one POST can land
     * where no wake-up part is under way to cut (seen once in a fresh-clone
     * run, the suite's tests in parallel); all three waiting for whole
     * wake-up jobs would be the fault */
    long yields = 0;
    int live = 0, behind = 1;
    for (; live < 3 && yields < 1 && behind; live++) {
        char lid[16];
        snprintf(lid, sizeof lid, "live%d", live);
        char *ev = ping("north", lid, "p-live", now_ms(), "ping");
        cr_assert_eq(http(s.port, "POST", "/v1/events", TOKEN_A, ev, &out), 200, "%s", out);
        cr_assert(strstr(out, "\"stored\":1,"), "%s", out);
        free(out);
        free(ev);
        behind = !caught_up_wait(&s, 0); /* (read before the metric: it is what was) */
        yields = metric(s.port, "regimen_wake_yields_total");
        cr_assert(behind || live > 0, "the catch-up of %d patients was over before the POST "
                  "was answered: nothing to measure", BACKLOG);
    }
    cr_assert_geq(yields, 1, "%d POSTs answered during the backlog waited for its wake-up "
                  "jobs%s", live, behind ? "" : " (the catch-up ended meanwhile)");
    cr_assert(caught_up_wait(&s, 150000), "no catch-up:\n%s", rg_test_read(s.log));
    fprintf(stderr, "a POST in a backlog of %d due patients: answered before the catch-up, "
                    "%ld wake-up part%s handed back\n", BACKLOG,
            metric(s.port, "regimen_wake_yields_total"), yields == 1 ? "" : "s");
    cr_assert_eq(server_stop(&s, SIGTERM), 0, "%s", rg_test_read(s.log));
    /* (the live patient's each ping opens its own alert and resolves the one before) */
    cr_assert_eq(count_rows(s.db, "SELECT count(*) FROM transitions WHERE rule = 'echo.ping'"),
                 BACKLOG + 2 * live - 1, "every patient of the backlog and the live one "
                 "evaluated once a ping");
    rg_test_rmdir(s.dir);
}

/* A group whose transaction cannot be written (another connection holds the
 * database's write lock until the server gives up) answers every request of
 * the group with 503, stores nothing and publishes nothing; the same events
 * sent again are stored and the feed goes on without a gap. */
Test(serve, a_failed_group_commit_acknowledges_and_publishes_nothing, .timeout = 60)
{
    enum { HELD = 3 };
    server s = {0};
    char *out, id[32];
    server_setup(&s, echo_protocol, echo_protocol);
    server_start(&s);
    stream st;
    stream_open(&st, s.port, TOKEN_A, NULL);
    cr_assert_neq(stream_wait(&st, "text/event-stream", 2000), -1, "%s", st.buf);
    char *first = ping("north", "a1", "a1", now_ms(), "ping");
    cr_assert_eq(http(s.port, "POST", "/v1/events", TOKEN_A, first, &out), 200, "%s", out);
    free(out);
    free(first);
    cr_assert_neq(stream_wait(&st, "id: 1\n", 5000), -1, "%s", st.buf);

    /* the audit entry of that POST is stored first (a transaction of its
     * own after the answer): the lock below must stop the group commit of
     * the held requests, not that append */
    for (int i = 0; i < 100 && count_rows(s.db, "SELECT count(*) FROM audit WHERE route LIKE "
                                                "'POST /v1/events%'") < 1; i++)
        usleep(50000);
    sqlite3 *lock;
    cr_assert_eq(sqlite3_open_v2(s.db, &lock, SQLITE_OPEN_READWRITE, NULL), SQLITE_OK);
    sqlite3_busy_timeout(lock, 5000); /* the service may be appending to its audit trail */
    cr_assert_eq(sqlite3_exec(lock, "BEGIN IMMEDIATE", NULL, NULL, NULL), SQLITE_OK,
                 "%s", sqlite3_errmsg(lock));
    char *evs[HELD];
    int fds[HELD];
    cr_assert_eq(kill(s.pid, SIGSTOP), 0);
    for (int i = 0; i < HELD; i++) {
        snprintf(id, sizeof id, "f%d", i);
        evs[i] = ping("north", id, id, now_ms(), "ping");
        fds[i] = http_send(s.port, "POST", "/v1/events", TOKEN_A, evs[i]);
    }
    cr_assert_eq(kill(s.pid, SIGCONT), 0); /* before any assert: never leave it stopped */
    for (int i = 0; i < HELD; i++)
        cr_assert_geq(fds[i], 0, "request %d could not be sent", i);
    for (int i = 0; i < HELD; i++) {
        int status = http_read(fds[i], &out);
        if (status != 503) {
            char *log = rg_test_read(s.log);
            fprintf(stderr, "FAILED-GROUP-COMMIT server log:\n%s\n", log);
            free(log);
        }
        cr_assert_eq(status, 503, "request %d: %s", i, out);
        cr_assert(strstr(out, "nothing was acknowledged"), "%s", out);
        free(out);
    }
    sqlite3_exec(lock, "ROLLBACK", NULL, NULL, NULL);
    sqlite3_close(lock);
    cr_assert_eq(count_rows(s.db, "SELECT count(*) FROM events"), 1);
    cr_assert_eq(count_rows(s.db, "SELECT count(*) FROM transitions"), 1);

    /* sent again: stored, and the stream goes on at 2 */
    char body[2048];
    snprintf(body, sizeof body, "[%s,%s,%s]", evs[0], evs[1], evs[2]);
    cr_assert_eq(http(s.port, "POST", "/v1/events", TOKEN_A, body, &out), 200, "%s", out);
    cr_assert(strstr(out, "\"stored\":3,"), "%s", out);
    free(out);
    cr_assert_neq(stream_wait(&st, "id: 4\n", 5000), -1, "%s", st.buf);
    const char *at = st.buf;
    for (int k = 1; k <= 4; k++) {
        char want[48];
        snprintf(want, sizeof want, "id: %d\nevent: transition\n", k);
        const char *next = strstr(at, want);
        cr_assert_not_null(next, "transition %d missing or out of order:\n%s", k, st.buf);
        cr_assert_null(strstr(next + 1, want), "transition %d sent twice:\n%s", k, st.buf);
        at = next + 1;
    }
    cr_assert_null(strstr(st.buf, "id: 5\n"), "%s", st.buf);
    close(st.fd);
    for (int i = 0; i < HELD; i++)
        free(evs[i]);
    cr_assert_eq(metric(s.port, "regimen_store_errors_total"), 1);
    cr_assert_eq(server_stop(&s, SIGTERM), 0, "%s", rg_test_read(s.log));
    rg_test_rmdir(s.dir);
}

/* Alerts with a long message (2000 bytes): a few hundred transitions put a
 * stream that does not read megabytes behind. */
static const char wide_protocol[] =
    "local R = require 'regimen'\n"
    "return R.protocol { id = 'wide', version = '1.0',\n"
    "  rules = { { id = 'wide.ping', severity = 'info', check = function(h, now, p)\n"
    "      local last = h:last('ping')\n"
    "      if last then return R.alert { key = last.id, message = string.rep('m', 2000) } end\n"
    "    end } } }\n";

/* A stream whose client has a tiny receive window and, after the response
 * head, never reads: the service falls behind on it. */
static int slow_stream(int port, const char *last_id)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0), small = 4096;
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
    cr_assert_eq(setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof small), 0);
    cr_assert_eq(connect(fd, (struct sockaddr *)&a, sizeof a), 0, "%s", strerror(errno));
    char req[512], head[256];
    int n = snprintf(req, sizeof req,
                     "GET /v1/transitions/stream HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer "
                     TOKEN_A "\r\n%s%s%s\r\n", last_id ? "Last-Event-ID: " : "",
                     last_id ? last_id : "", last_id ? "\r\n" : "");
    cr_assert_eq(write(fd, req, (size_t)n), n);
    ssize_t r = read(fd, head, sizeof head - 1); /* the head: the stream is registered */
    cr_assert_gt(r, 0);
    head[r] = '\0';
    cr_assert(strstr(head, "text/event-stream"), "%s", head);
    return fd;
}


/* 400 pings of new patients in one request: 400 transitions. */
static void post_wide(int port, int k)
{
    size_t cap = 400 * 200, n = 1;
    char *body = malloc(cap), *out, id[32];
    body[0] = '[';
    for (int i = 0; i < 400; i++) {
        snprintf(id, sizeof id, "w%d-%d", k, i);
        char *ev = ping("north", id, id, now_ms(), "ping");
        n += (size_t)snprintf(body + n, cap - n, "%s%s", i ? "," : "", ev);
        free(ev);
    }
    snprintf(body + n, cap - n, "]");
    cr_assert_eq(http(port, "POST", "/v1/events", TOKEN_A, body, &out), 200, "%s", out);
    cr_assert(strstr(out, "\"stored\":400,"), "%.300s", out);
    free(out);
    free(body);
}

/* A stream closed for falling too far behind, while a transition is being
 * handed to every stream, costs the other streams nothing: they still get
 * every transition once, in order. A stream that falls behind on its
 * backlog is closed and forgotten (not written to afterwards: the sanitizer
 * build would report it). */
Test(serve, a_stream_closed_for_falling_behind_costs_the_others_nothing, .timeout = 120)
{
    server s = {0};
    server_setup(&s, wide_protocol, wide_protocol);
    server_start(&s);
    int slow = slow_stream(s.port, NULL); /* first in the service's list of streams */
    int fast = connect_to(s.port);
    cr_assert_geq(fast, 0);
    char req[256];
    int n = snprintf(req, sizeof req, "GET /v1/transitions/stream HTTP/1.1\r\nHost: x\r\n"
                                      "Authorization: Bearer " TOKEN_A "\r\n\r\n");
    cr_assert_eq(write(fast, req, (size_t)n), n);
    long last = 0;
    int k = 0;
    for (; k < 30 && metric(s.port, "regimen_http_streams") == 2; k++) {
        post_wide(s.port, k);
        read_ids(fast, &last, 400L * (k + 1));
    }
    cr_assert_eq(metric(s.port, "regimen_http_streams"), 1, "the slow stream was not closed");
    post_wide(s.port, k++);
    read_ids(fast, &last, 400L * k);
    close(slow);

    /* a stream whose backlog alone is megabytes, its client not reading: it
     * gets a page of the backlog, which it never reads, and is closed when
     * that has not moved for limits.stream_stall_ms (10 s) */
    slow = slow_stream(s.port, "0");
    for (int i = 0; i < 300 && metric(s.port, "regimen_http_streams") == 2; i++)
        usleep(50000);
    cr_assert_eq(metric(s.port, "regimen_http_streams"), 1, "the slow stream was not closed");
    post_wide(s.port, k++);
    read_ids(fast, &last, 400L * k);
    close(slow);
    close(fast);
    cr_assert_eq(server_stop(&s, SIGTERM), 0, "%s", rg_test_read(s.log));
    rg_test_rmdir(s.dir);
}

/* A statement that fails in the middle of a group (here a trigger refuses
 * one event, after other requests of the group stored theirs and raised
 * transitions): the whole group is 503 and rolled back, the service stays
 * up, and the events sent again get the transition numbers the failed group
 * would have used (no gap). */
Test(serve, an_event_refused_mid_group_rolls_back_the_group_without_a_gap, .timeout = 60)
{
    server s = {0};
    char *out;
    server_setup(&s, echo_protocol, echo_protocol);
    server_start(&s);
    char *first = ping("north", "a1", "a1", now_ms(), "ping");
    cr_assert_eq(http(s.port, "POST", "/v1/events", TOKEN_A, first, &out), 200, "%s", out);
    free(out);
    free(first);
    sqlite3 *db;
    cr_assert_eq(sqlite3_open_v2(s.db, &db, SQLITE_OPEN_READWRITE, NULL), SQLITE_OK);
    sqlite3_busy_timeout(db, 5000); /* the service may be appending to its audit trail */
    cr_assert_eq(sqlite3_exec(db, "CREATE TRIGGER refuse BEFORE INSERT ON events WHEN NEW.id = "
                                  "'boom' BEGIN SELECT RAISE(ABORT, 'refused'); END",
                              NULL, NULL, NULL), SQLITE_OK, "%s", sqlite3_errmsg(db));
    char *good = ping("north", "g1", "g1", now_ms(), "ping");
    char *bad = ping("north", "boom", "g2", now_ms(), "ping");
    char both[1100];
    snprintf(both, sizeof both, "[%s,%s]", good, bad);
    cr_assert_eq(kill(s.pid, SIGSTOP), 0);
    int fd1 = http_send(s.port, "POST", "/v1/events", TOKEN_A, good);
    int fd2 = http_send(s.port, "POST", "/v1/events", TOKEN_A, both);
    cr_assert_eq(kill(s.pid, SIGCONT), 0); /* before any assert: never leave it stopped */
    /* (both are read in one loop iteration, so one group, as a rule; the
     * first alone, had it been read first, is stored: 200) */
    int st1 = http_read(fd1, &out), alone = st1 == 200;
    cr_assert(st1 == 503 || alone, "%d %s", st1, out);
    free(out);
    cr_assert_eq(http_read(fd2, &out), 503, "%s", out);
    cr_assert(strstr(out, "nothing was acknowledged"), "%s", out);
    free(out);
    cr_assert_eq(count_rows(s.db, "SELECT count(*) FROM events"), 1 + alone);
    cr_assert_eq(count_rows(s.db, "SELECT count(*) FROM transitions"), 1 + alone);
    cr_assert_eq(sqlite3_exec(db, "DROP TRIGGER refuse", NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);
    cr_assert_eq(http(s.port, "POST", "/v1/events", TOKEN_A, both, &out), 200, "%s", out);
    cr_assert(strstr(out, alone ? "\"stored\":1," : "\"stored\":2,"), "%s", out);
    free(out);
    cr_assert_eq(count_rows(s.db, "SELECT max(cseq) FROM transitions WHERE clinic = 'north'"), 3);
    cr_assert_eq(count_rows(s.db, "SELECT count(DISTINCT cseq) FROM transitions"), 3);
    free(good);
    free(bad);
    cr_assert_eq(server_stop(&s, SIGTERM), 0, "%s", rg_test_read(s.log));
    rg_test_rmdir(s.dir);
}

/* A pong overdue 3 s after its ping. */
static const char pong3_protocol[] =
    "local R = require 'regimen'\n"
    "return R.protocol { id = 'pong3', version = '1.0',\n"
    "  rules = { { id = 'pong3.overdue', severity = 'warning', check = function(h, now, p)\n"
    "      local last = h:last('ping')\n"
    "      if last and #h:after(last, 'pong') == 0 then\n"
    "        return R.alert { key = last.id, due = last.at + R.seconds(3), message = 'no pong' }\n"
    "      end\n"
    "    end } } }\n";

/* Writes a POST of body on a kept-alive connection. */
static void post_write(int fd, const char *body)
{
    char req[1024];
    int n = snprintf(req, sizeof req,
                     "POST /v1/events HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " TOKEN_A
                     "\r\nContent-Type: application/json\r\nContent-Length: %zu\r\n\r\n%s",
                     strlen(body), body);
    cr_assert_eq(write(fd, req, (size_t)n), n);
}

/* Reads one response from a kept-alive connection; returns its status. */
static int post_read(int fd)
{
    char resp[4096];
    size_t len = 0;
    const char *end = NULL, *cl = NULL;
    while (!end || len < (size_t)(end + 4 - resp) + (size_t)atol(cl + 16)) {
        ssize_t r = read(fd, resp + len, sizeof resp - len - 1);
        cr_assert_gt(r, 0);
        len += (size_t)r;
        resp[len] = '\0';
        end = strstr(resp, "\r\n\r\n");
        cl = strstr(resp, "Content-Length: ");
        cr_assert(!end || cl, "%s", resp);
    }
    int status = 0;
    sscanf(resp, "HTTP/1.1 %d", &status);
    return status;
}

/* A pong that arrives after its ping fell due, while the wake-up for that
 * due is also pending (the service is stopped across the due, the pong
 * written meanwhile on a connection already open). When the request and the
 * wake-up share a group, the group takes the request in first and the alert
 * the pong prevents is neither opened nor resolved (as simulate, given both
 * events, says). Since evaluation runs on threads, the wake-up's job can be
 * handed out one loop iteration before the request is read; then the alert
 * opens at its due and the back-dated pong resolves it, the outcome of any
 * late event. Either way no alert is left open and nothing else happens:
 * no transitions at all, or exactly that opening and its resolution. */
Test(serve, an_event_and_the_wake_up_it_prevents_in_one_group_raise_nothing, .timeout = 60)
{
    server s = {0};
    char *out;
    server_setup(&s, pong3_protocol, pong3_protocol);
    server_start(&s);
    int fd = connect_to(s.port);
    cr_assert_geq(fd, 0);
    int64_t at = now_ms();
    char *ev = ping("north", "k1", "p1", at, "ping");
    post_write(fd, ev);
    cr_assert_eq(post_read(fd), 200);
    free(ev);
    cr_assert_eq(kill(s.pid, SIGSTOP), 0);
    while (now_ms() < at + 4000) /* the ping falls due while the service is stopped */
        usleep(100000);
    ev = ping("north", "k2", "p1", at + 1000, "pong");
    post_write(fd, ev);
    cr_assert_eq(kill(s.pid, SIGCONT), 0);
    cr_assert_eq(post_read(fd), 200);
    free(ev);
    close(fd);
    cr_assert_eq(http(s.port, "GET", "/v1/transitions?after=0", TOKEN_A, NULL, &out), 200);
    if (strcmp(out, "{\"transitions\":[],\"last\":0}\n")) {
        const char *open = strstr(out, "\"seq\":1,"), *res = strstr(out, "\"seq\":2,");
        cr_assert(open && res && !strstr(out, "\"seq\":3,") && strstr(out, "\"last\":2}"),
                  "%s", out);
        cr_assert(strstr(open, "\"state\":\"open\"") < res, "%s", out);
        cr_assert_not_null(strstr(res, "\"state\":\"resolved\""), "%s", out);
        cr_assert_not_null(strstr(open, "\"rule\":\"pong3.overdue\""), "%s", out);
    }
    free(out);
    cr_assert_eq(http(s.port, "GET", "/v1/alerts?state=open", TOKEN_A, NULL, &out), 200);
    cr_assert_not_null(strstr(out, "\"alerts\":[]"), "an alert was left open: %s", out);
    free(out);
    cr_assert_eq(server_stop(&s, SIGTERM), 0, "%s", rg_test_read(s.log));
    rg_test_rmdir(s.dir);
}

/* ---- other processes writing to the service's store (runtime/store/holder.c) ---------------- */

/* A config for clinic north under the shipped protocols (the north example:
 * a blood-pressure limit of 150/100). */
static void north_setup(server *s)
{
    char cfg[1024], cwd[512];
    rg_test_tmpdir(s->dir);
    cr_assert_not_null(getcwd(cwd, sizeof cwd));
    snprintf(s->db, sizeof s->db, "%s/serve.db", s->dir);
    snprintf(s->config, sizeof s->config, "%s/config.json", s->dir);
    snprintf(s->log, sizeof s->log, "%s/serve.log", s->dir);
    snprintf(cfg, sizeof cfg,
             "{ \"listen\": \"127.0.0.1:0\", \"clinics\": { \"north\": { \"protocols\": "
             "\"%s/examples/clinics/north\", \"tokens\": [\"" TOKEN_A "\"] } } }\n", cwd);
    rg_test_write(s->dir, "config.json", cfg);
}

static int lines(const char *text)
{
    int n = 0;
    for (const char *p = text; *p; p++)
        n += *p == '\n';
    return n;
}

/* A back-office import into the live store: `regimen ingest --db` stores an
 * enrolment and pre-infusion vitals of 190/110, and the service opens the
 * critical safety.bp-high on its stream within a second, without a restart
 * or a signal from anyone but ingest. */
Test(serve, ingest_into_a_live_store_opens_the_alert_within_a_second, .timeout = 30)
{
    server s = {0};
    char *out, *err, at[40], file[600], text[1024];
    north_setup(&s);
    server_start(&s);
    stream st;
    stream_open(&st, s.port, TOKEN_A, NULL);
    cr_assert_neq(stream_wait(&st, "text/event-stream", 2000), -1, "%s", st.buf);
    iso(now_ms(), at);
    snprintf(text, sizeof text,
             "{\"id\":\"late-1\",\"clinic\":\"north\",\"patient\":\"p-late\",\"type\":\"enrolled\","
             "\"at\":\"%s\",\"data\":{\"program\":\"ketamine\"}}\n"
             "{\"id\":\"late-2\",\"clinic\":\"north\",\"patient\":\"p-late\",\"type\":\"vitals\","
             "\"at\":\"%s\",\"data\":{\"systolic\":190,\"diastolic\":110,\"phase\":\"pre\"}}\n",
             at, at);
    rg_test_write(s.dir, "late.jsonl", text);
    snprintf(file, sizeof file, "%s/late.jsonl", s.dir);
    const char *args[] = {"ingest", "--db", s.db, file, NULL};
    int64_t t0 = now_ms();
    cr_assert_eq(rg_test_run(args, NULL, &out, &err), 0, "%s", err);
    int64_t took = now_ms() - t0;
    cr_assert(strstr(out, "stored 2,"), "%s", out);
    char who[96];
    snprintf(who, sizeof who, "regimen serve (pid %d, listening on 127.0.0.1:%d) was told",
             (int)s.pid, s.port);
    cr_assert(strstr(err, who), "ingest says the service evaluates them: %s", err);
    int ms = stream_wait(&st, "\"rule\":\"safety.bp-high\"", 1000);
    cr_assert_neq(ms, -1, "no safety.bp-high on the stream within 1 s of ingest's exit:\n%s",
                  st.buf);
    cr_assert(strstr(st.buf, "\"severity\":\"critical\""), "%s", st.buf);
    fprintf(stderr, "ingest beside the service: ingest ran %lld ms; the critical alert was on "
                    "the stream %lld ms after ingest started\n", (long long)took,
            (long long)(now_ms() - t0));
    free(out);
    free(err);
    cr_assert_eq(http(s.port, "GET", "/v1/alerts?state=open", TOKEN_A, NULL, &out), 200);
    cr_assert(strstr(out, "safety.bp-high"), "%s", out);
    free(out);
    cr_assert_geq(metric(s.port, "regimen_store_notices_total"), 1);

    /* the same file again: all duplicates, nothing new for the service */
    cr_assert_eq(rg_test_run(args, NULL, &out, &err), 0, "%s", err);
    cr_assert(strstr(out, "stored 0, duplicates 2"), "%s", out);
    free(out);
    free(err);
    close(st.fd);
    cr_assert_eq(server_stop(&s, SIGTERM), 0, "%s", rg_test_read(s.log));
    cr_assert_eq(count_rows(s.db, "SELECT count(*) FROM transitions WHERE rule = 'safety.bp-high'"),
                 1, "opened once");
    rg_test_rmdir(s.dir);
}

/* One service per file: a second `serve` on the same database is refused at
 * start with one line naming the file and the process that holds it; the
 * first goes on; once it is gone (SIGTERM, or kill -9) the file can be
 * served again. */
Test(serve, a_second_service_on_the_same_file_is_refused_naming_the_holder, .timeout = 30)
{
    server s = {0};
    char *out, *err, want[700];
    server_setup(&s, fast_protocol, fast_protocol);
    server_start(&s);
    const char *args[] = {"serve", "--config", s.config, "--db", s.db, NULL};
    cr_assert_eq(rg_test_run(args, NULL, &out, &err), 2, "%s", err);
    snprintf(want, sizeof want, "regimen serve: database %s is in use by regimen serve (pid %d, "
             "listening on 127.0.0.1:%d)", s.db, (int)s.pid, s.port);
    cr_assert(strstr(err, want), "%s", err);
    cr_assert_eq(lines(err), 1, "one line: %s", err);
    cr_assert_null(strstr(err, "listening on 127.0.0.1:0"), "%s", err);
    free(out);
    free(err);
    cr_assert_eq(http(s.port, "GET", "/healthz", NULL, NULL, &out), 200, "the first goes on");
    free(out);
    cr_assert_eq(server_stop(&s, SIGTERM), 0);
    server_start(&s);
    cr_assert_eq(server_stop(&s, SIGKILL), 128 + SIGKILL);
    server_start(&s); /* the kernel dropped the lock of the killed one */
    cr_assert_eq(server_stop(&s, SIGTERM), 0);
    rg_test_rmdir(s.dir);
}

/* sweep and simulate --db would write transitions of their own into the
 * service's feed: beside it they are refused with one line saying who holds
 * the store and what to do, and the feed, the open alerts and the store stay
 * exactly what the service alone made: gap-free, and equal to `simulate`
 * on the stored events. */
Test(serve, sweep_and_simulate_beside_the_service_are_refused_feed_unchanged, .timeout = 60)
{
    server s = {0};
    char *out, *err, *alerts, *feed, now[40];
    north_setup(&s);
    server_start(&s);
    char *timeline = rg_test_read("examples/clinics/north/timeline.jsonl");
    rg_buf body = {0};
    rg_buf_add(&body, "[", 1);
    for (char *l = strtok(timeline, "\n"); l; l = strtok(NULL, "\n")) {
        if (body.len > 1)
            rg_buf_add(&body, ",", 1);
        rg_buf_add(&body, l, strlen(l));
    }
    rg_buf_add(&body, "]", 1);
    cr_assert_eq(http(s.port, "POST", "/v1/events", TOKEN_A, body.p, &out), 200, "%s", out);
    free(out);
    rg_buf_free(&body);
    free(timeline);
    cr_assert_eq(http(s.port, "GET", "/v1/alerts?state=open", TOKEN_A, NULL, &alerts), 200);
    int before = count_rows(s.db, "SELECT count(*) FROM transitions");
    cr_assert_gt(before, 10);

    iso(now_ms(), now);
    const char *sweep[] = {"sweep", "--db", s.db, "--at", now, "--clinic",
                           "north=examples/clinics/north", NULL};
    cr_assert_eq(rg_test_run(sweep, NULL, &out, &err), 2, "%s", err);
    char want[700];
    snprintf(want, sizeof want, "regimen sweep: %s is held by regimen serve (pid %d, listening on "
             "127.0.0.1:%d); the service re-evaluates", s.db, (int)s.pid, s.port);
    cr_assert(strstr(err, want), "%s", err);
    cr_assert_eq(lines(err), 1, "one line: %s", err);
    free(out);
    free(err);
    const char *sim_db[] = {"simulate", "--db", s.db, "--events",
                            "examples/clinics/north/timeline.jsonl", "--until", now, NULL};
    cr_assert_eq(rg_test_run(sim_db, NULL, &out, &err), 2, "%s", err);
    snprintf(want, sizeof want, "regimen simulate: %s is held by regimen serve (pid %d", s.db,
             (int)s.pid);
    cr_assert(strstr(err, want) && strstr(err, "virtual clock"), "%s", err);
    cr_assert_eq(lines(err), 1, "one line: %s", err);
    free(out);
    free(err);

    cr_assert_eq(count_rows(s.db, "SELECT count(*) FROM transitions"), before, "nothing written");
    cr_assert_eq(http(s.port, "GET", "/v1/alerts?state=open", TOKEN_A, NULL, &out), 200);
    cr_assert_str_eq(out, alerts, "the open alerts are unchanged");
    free(out);
    free(alerts);
    cr_assert_eq(count_rows(s.db, "SELECT count(*) FROM transitions WHERE clinic = 'north'"),
                 count_rows(s.db, "SELECT max(cseq) FROM transitions WHERE clinic = 'north'"),
                 "no gap in the sequence");
    cr_assert_eq(http(s.port, "GET", "/v1/transitions?after=0", TOKEN_A, NULL, &feed), 200);
    char events[600];
    snprintf(events, sizeof events, "%s/stored.jsonl", s.dir);
    export_events(s.db, events);
    iso(now_ms(), now);
    const char *sim[] = {"simulate", "--events", events, "--until", now, "--clinic",
                         "north=examples/clinics/north", "--format", "jsonl", NULL};
    char *simout;
    cr_assert_eq(rg_test_run(sim, NULL, &simout, &err), 0, "%s", err);
    char *a[512], *b[512];
    int na = rg_test_transition_lines(feed, a, 512), nb = rg_test_transition_lines(simout, b, 512);
    cr_assert_eq(na, nb, "the feed has %d transitions, simulate on the stored events %d", na, nb);
    qsort(a, (size_t)na, sizeof *a, rg_test_cmp_str);
    qsort(b, (size_t)nb, sizeof *b, rg_test_cmp_str);
    for (int i = 0; i < na; i++) {
        cr_assert_str_eq(a[i], b[i]);
        free(a[i]);
        free(b[i]);
    }
    free(feed);
    free(simout);
    free(err);
    cr_assert_eq(server_stop(&s, SIGTERM), 0);

    /* with the service gone, the sweep runs */
    cr_assert_eq(rg_test_run(sweep, NULL, &out, &err), 0, "%s", err);
    cr_assert(strstr(err, "swept 4 patients"), "%s", err);
    free(out);
    free(err);
    rg_test_rmdir(s.dir);
}

/* One strict percent-decoder for query values: a bad escape or a value too
 * long is a 400 naming the parameter, never a NUL or a value cut short. */
Test(serve, query_values_bad_escape_or_too_long_are_refused_by_name, .timeout = 30)
{
    server s = {0};
    char *out;
    server_setup(&s, fast_protocol, fast_protocol);
    server_start(&s);
    cr_assert_eq(http(s.port, "GET", "/v1/alerts?patient=%zz", TOKEN_A, NULL, &out), 400, "%s", out);
    cr_assert(strstr(out, "'patient'") && strstr(out, "percent-escape"), "%s", out);
    free(out);
    cr_assert_eq(http(s.port, "GET", "/v1/alerts?state=open&patient=p%00", TOKEN_A, NULL, &out), 400,
                 "%s", out);
    cr_assert(strstr(out, "'patient'"), "%s", out);
    free(out);
    char path[600];
    int n = snprintf(path, sizeof path, "/v1/transitions?limit=5&after=");
    memset(path + n, '1', 300);
    path[n + 300] = '\0';
    cr_assert_eq(http(s.port, "GET", path, TOKEN_A, NULL, &out), 400, "%s", out);
    cr_assert(strstr(out, "'after'") && strstr(out, "longer than 256 bytes"), "%s", out);
    free(out);
    /* good escapes still decode: "p 1" and "p+1" are patients of their own */
    cr_assert_eq(http(s.port, "GET", "/v1/alerts?patient=p%201", TOKEN_A, NULL, &out), 200, "%s", out);
    free(out);
    cr_assert_eq(http(s.port, "GET", "/v1/alerts?patient=p+1&state=open", TOKEN_A, NULL, &out), 200,
                 "%s", out);
    free(out);
    cr_assert_eq(server_stop(&s, SIGTERM), 0);
    rg_test_rmdir(s.dir);
}
