/*
 * test_reload.c - the configuration's reload without a restart (SIGHUP and
 * POST /v1/admin/reload, runtime/service/serve.c rg_svc_reload), through the
 * real binary: a webhook URL and secret changed take the next delivery (a
 * real loopback receiver verifying the signature); a clinic added accepts
 * events and raises alerts; a clinic removed is refused and its stream
 * closed, its data kept; a changed limit holds for the next request; a new
 * listen address is taken up while an open stream on the old one goes on;
 * a bad configuration changes nothing and says file, field and what is
 * expected, in the log and in the admin route's answer; each reload is in
 * the audit trail with who asked.
 */
#define RG_TEST_SERVE
#include "helpers.h"

#include <netinet/in.h>
#include <sodium.h>
#include <sys/prctl.h>

#define SECRET_1 "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
#define SECRET_2 "whsec_dGhlLW9sZC1zZWNyZXQtb2YtdGhlLWNsaW5pYy0xMjM0"
#define KEY_ADMIN "north-admin-key-0123456789abcdef"

/* Waits up to ms for text in the file at path. */
static int file_has(const char *path, const char *text, int ms)
{
    for (int64_t end = now_ms() + ms; now_ms() < end; usleep(20000)) {
        char *t = access(path, F_OK) == 0 ? rg_test_read(path) : NULL;
        int found = t && strstr(t, text);
        free(t);
        if (found)
            return 1;
    }
    return 0;
}

/* Posts one overdue ping (its alert opens at once) for clinic with token. */
static void post_overdue(int port, const char *token, const char *clinic, const char *id,
                         const char *patient)
{
    char *out, *ev = ping(clinic, id, patient, now_ms() - 5000, "ping");
    cr_assert_eq(http(port, "POST", "/v1/events", token, ev, &out), 200, "%s", out);
    free(out);
    free(ev);
}

/* Waits for GET /v1/alerts of token to show text. */
static int alerts_show(int port, const char *token, const char *text, int ms)
{
    for (int64_t end = now_ms() + ms; now_ms() < end; usleep(50000)) {
        char *out;
        int st = http(port, "GET", "/v1/alerts", token, NULL, &out);
        int found = st == 200 && strstr(out, text);
        free(out);
        if (found)
            return 1;
    }
    return 0;
}

/* A configuration: north (dir a) with its token, the admin key and the
 * webhook (port 0: none); south (dir b) when with_south; extra is added to
 * the top level (a "limits" or "listen" line ending in a comma). */
static void write_cfg(const server *s, int hook_port, const char *secret, int with_south,
                      const char *listen, const char *limits)
{
    char cfg[4096], hook[512] = "", south[256] = "", admin[65];
    unsigned char h[crypto_hash_sha256_BYTES];
    crypto_hash_sha256(h, (const unsigned char *)KEY_ADMIN, strlen(KEY_ADMIN));
    sodium_bin2hex(admin, sizeof admin, h, sizeof h);
    if (hook_port)
        snprintf(hook, sizeof hook,
                 ", \"webhook\": { \"url\": \"http://127.0.0.1:%d/hook\", \"secret\": \"%s\" }",
                 hook_port, secret);
    if (with_south)
        snprintf(south, sizeof south,
                 ",\n    \"south\": { \"protocols\": \"b\", \"tokens\": [\"" TOKEN_B "\"] }");
    snprintf(cfg, sizeof cfg,
             "{ \"listen\": \"%s\",\n"
             "  \"clinics\": {\n"
             "    \"north\": { \"protocols\": \"a\", \"tokens\": [\"" TOKEN_A "\"],\n"
             "      \"api_keys\": [ {\"name\": \"ops\", \"role\": \"admin\", \"sha256\": \"%s\"} ]%s }%s },\n"
             "  \"limits\": { \"max_instructions\": 2000000, \"deadline_ms\": 500%s } }\n",
             listen, admin, hook, south, limits);
    rg_test_write(s->dir, "config.json", cfg);
}

Test(reload, a_webhook_changed_by_sighup_takes_the_next_delivery, .timeout = 60)
{
    server s = {0};
    pyrecv r1, r2;
    cr_assert_geq(sodium_init(), 0);
    server_setup(&s, fast_protocol, fast_protocol);
    pyrecv_start(&r1, s.dir, "one", SECRET_1);
    pyrecv_start(&r2, s.dir, "two", SECRET_2);
    write_cfg(&s, r1.port, SECRET_1, 0, "127.0.0.1:0", "");
    server_start(&s);
    /* (what check refuses at start: test_failures.c,
     * a_protocol_problem_found_at_start_is_an_alert_until_mended) */
    post_overdue(s.port, TOKEN_A, "north", "w1", "p1");
    cr_assert(file_has(r1.log, "ok north-1\n", 10000), "the first receiver verified north-1");

    /* the other receiver, with another secret: the next delivery goes there,
     * signed so that it verifies with the new secret */
    write_cfg(&s, r2.port, SECRET_2, 0, "127.0.0.1:0", "");
    kill(s.pid, SIGHUP);
    char want[128];
    snprintf(want, sizeof want, "clinic north: webhook http://127.0.0.1:%d/hook", r2.port);
    cr_assert(log_wait(&s, want, 5000));
    post_overdue(s.port, TOKEN_A, "north", "w2", "p2");
    cr_assert(file_has(r2.log, "ok north-2\n", 10000), "the new receiver verified north-2");
    char *log = rg_test_read(r1.log);
    cr_assert_null(strstr(log, "north-2"), "the old receiver got it too: %s", log);
    free(log);
    log = rg_test_read(r2.log);
    cr_assert_null(strstr(log, "refused"), "%s", log);
    free(log);
    cr_assert_eq(server_stop(&s, SIGTERM), 0);
    pyrecv_stop(&r1);
    pyrecv_stop(&r2);
    rg_test_rmdir(s.dir);
}

Test(reload, clinics_added_and_removed_limits_and_a_bad_file, .timeout = 90)
{
    server s = {0};
    char *out;
    cr_assert_geq(sodium_init(), 0);
    /* (ping and pong, the test's own event types, declared by server_setup:
     * or the gate, check's, refuses south's protocol when it is added) */
    server_setup(&s, fast_protocol, fast_protocol);
    write_cfg(&s, 0, NULL, 0, "127.0.0.1:0", "");
    server_start(&s);
    int port = s.port;
    cr_assert_eq(http(port, "GET", "/v1/alerts", TOKEN_B, NULL, &out), 401, "%s", out);
    free(out);

    /* south added, and at most one event per request */
    write_cfg(&s, 0, NULL, 1, "127.0.0.1:0", ", \"max_events_per_request\": 1");
    kill(s.pid, SIGHUP);
    cr_assert(log_wait(&s, "clinic south added", 5000));
    cr_assert(log_wait(&s, "configuration reloaded by signal SIGHUP", 5000));
    post_overdue(port, TOKEN_B, "south", "s1", "q1");
    cr_assert(alerts_show(port, TOKEN_B, "fast.ping-overdue", 10000),
              "the clinic added raises its alert");
    char two[600], *e1 = ping("north", "n1", "p1", now_ms(), "ping"),
                   *e2 = ping("north", "n2", "p1", now_ms(), "pong");
    snprintf(two, sizeof two, "[%s,%s]", e1, e2);
    cr_assert_eq(http(port, "POST", "/v1/events", TOKEN_A, two, &out), 413, "%s", out);
    free(out);
    free(e1);
    free(e2);

    /* south removed: its stream closed, its token refused, its data kept */
    stream st;
    stream_open(&st, port, TOKEN_B, NULL);
    cr_assert_neq(stream_wait(&st, "text/event-stream", 5000), -1, "%s", st.buf);
    write_cfg(&s, 0, NULL, 0, "127.0.0.1:0", "");
    kill(s.pid, SIGHUP);
    cr_assert(log_wait(&s, "clinic south removed from the configuration", 5000));
    cr_assert(stream_closed(&st, 5000), "south's stream stays open: %s", st.buf);
    close(st.fd);
    cr_assert_eq(http(port, "GET", "/v1/alerts", TOKEN_B, NULL, &out), 401, "%s", out);
    free(out);
    char *ev = ping("south", "s2", "q1", now_ms(), "pong");
    cr_assert_eq(http(port, "POST", "/v1/events", TOKEN_B, ev, &out), 401, "%s", out);
    free(out);
    free(ev);
    /* the limit went back to the default: two events in one request pass */
    e1 = ping("north", "n1", "p1", now_ms(), "ping");
    e2 = ping("north", "n2", "p1", now_ms(), "pong");
    snprintf(two, sizeof two, "[%s,%s]", e1, e2);
    cr_assert_eq(http(port, "POST", "/v1/events", TOKEN_A, two, &out), 200, "%s", out);
    free(out);
    free(e1);
    free(e2);

    /* a bad file: refused, naming file and field, by the admin route too;
     * the running configuration stays (south still refused, north served) */
    rg_test_write(s.dir, "config.json",
                  "{ \"listen\": \"127.0.0.1:0\", \"clinics\": { \"north\": { \"protocols\": "
                  "\"a\", \"tokens\": [\"" TOKEN_A "\"], \"webhook\": \"ftp://x\" },"
                  " \"south\": { \"protocols\": \"b\", \"tokens\": [\"" TOKEN_B "\"] } } }\n");
    cr_assert_eq(http(port, "POST", "/v1/admin/reload", KEY_ADMIN, "", &out), 400, "%s", out);
    cr_assert(strstr(out, "config.json: clinics.north.webhook: expected an http:// or https:// URL"),
              "%s", out);
    free(out);
    cr_assert(log_wait(&s, "configuration reload by key ops (admin) refused", 5000));
    cr_assert_eq(http(port, "GET", "/v1/alerts", TOKEN_B, NULL, &out), 401, "%s", out);
    free(out);
    cr_assert_eq(http(port, "GET", "/v1/alerts", TOKEN_A, NULL, &out), 200, "%s", out);
    free(out);
    /* a clinic whose protocols do not load is refused as a whole */
    rg_test_write(s.dir, "c/p.lua", "return 1 +\n");
    rg_test_write(s.dir, "config.json",
                  "{ \"listen\": \"127.0.0.1:0\", \"clinics\": { \"north\": { \"protocols\": "
                  "\"a\", \"tokens\": [\"" TOKEN_A "\"] },"
                  " \"east\": { \"protocols\": \"c\", \"tokens\": [\"east-token-0123456789\"] } } }\n");
    kill(s.pid, SIGHUP);
    cr_assert(log_wait(&s, "clinics.east.protocols: the protocols of the clinic added are refused",
                      5000));
    cr_assert_eq(http(port, "GET", "/v1/alerts", "east-token-0123456789", NULL, &out), 401, "%s",
                 out);
    free(out);
    cr_assert_eq(server_stop(&s, SIGTERM), 0);

    /* south's data stayed in the store; the trail names who reloaded */
    cr_assert_gt(count_rows(s.db, "SELECT count(*) FROM events WHERE clinic = 'south'"), 0);
    const char *args[] = {"audit", "show", "--db", s.db, NULL};
    char *err;
    cr_assert_eq(rg_test_run(args, NULL, &out, &err), 0, "%s", err);
    cr_assert(strstr(out, "signal SIGHUP\toperator") && strstr(out, "configuration reload\treloaded"),
              "%s", out);
    cr_assert(strstr(out, "key ops (admin)\tadmin") && strstr(out, "configuration reload\trefused"),
              "%s", out);
    free(out);
    free(err);
    rg_test_rmdir(s.dir);
}

/* A port nobody listens on now. */
Test(reload, a_new_listen_address_is_taken_up_and_open_streams_go_on, .timeout = 60)
{
    server s = {0};
    char *out, addr[64];
    cr_assert_geq(sodium_init(), 0);
    server_setup(&s, fast_protocol, fast_protocol);
    write_cfg(&s, 0, NULL, 0, "127.0.0.1:0", "");
    server_start(&s);
    int old = s.port, port = free_port();
    stream st;
    stream_open(&st, old, TOKEN_A, NULL);
    cr_assert_neq(stream_wait(&st, "text/event-stream", 5000), -1, "%s", st.buf);
    snprintf(addr, sizeof addr, "127.0.0.1:%d", port);
    write_cfg(&s, 0, NULL, 0, addr, "");
    kill(s.pid, SIGHUP);
    char want[128];
    snprintf(want, sizeof want, "listening on 127.0.0.1:%d instead of", port);
    cr_assert(log_wait(&s, want, 5000));
    cr_assert_eq(http(port, "GET", "/v1/alerts", TOKEN_A, NULL, &out), 200, "%s", out);
    free(out);
    cr_assert_eq(connect_to(old), -1, "the old address still accepts");
    /* the stream opened on the old address still gets the next transition */
    post_overdue(port, TOKEN_A, "north", "l1", "p1");
    cr_assert_neq(stream_wait(&st, "fast.ping-overdue", 10000), -1, "%s", st.buf);
    close(st.fd);
    /* an address taken by someone else: refused, the current one stays */
    /* (bound to port 0 and held: a port free_port picked could be another
     * test's by the time this bound it) */
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET};
    socklen_t alen = sizeof a;
    inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
    cr_assert_eq(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
    cr_assert_eq(listen(fd, 1), 0);
    cr_assert_eq(getsockname(fd, (struct sockaddr *)&a, &alen), 0);
    int busy = ntohs(a.sin_port);
    snprintf(addr, sizeof addr, "127.0.0.1:%d", busy);
    write_cfg(&s, 0, NULL, 0, addr, "");
    kill(s.pid, SIGHUP);
    snprintf(want, sizeof want, "listen: cannot listen on 127.0.0.1:%d", busy);
    cr_assert(log_wait(&s, want, 5000));
    close(fd);
    cr_assert_eq(http(port, "GET", "/v1/alerts", TOKEN_A, NULL, &out), 200, "%s", out);
    free(out);
    cr_assert_eq(server_stop(&s, SIGTERM), 0);
    rg_test_rmdir(s.dir);
}
