/*
 * test_worklist.c - the worklist's side of `regimen serve` (worklist.c), end
 * to end through the real binary (the page itself is driven in a browser by
 * tests/browser/worklist.js):
 *   - GET / and its assets are the files of runtime/service/www/, compiled
 *     in, with the strict Content-Security-Policy and the other headers;
 *   - a stream ticket opens its own clinic's stream once, and only within
 *     its 30 s (libfaketime moves the clocks); unknown tickets, tickets with
 *     a token, and too many tickets are refused; none is ever logged;
 *   - GET /v1/alerts/{key}/explain is what `regimen explain KEY` prints, and
 *     it and the patient timeline are 404 for another clinic.
 */
#define RG_TEST_SERVE
#include "helpers.h"

#include "core/rg.h"

#include <glob.h>

static server *live;

static void cleanup(void)
{
    server_kill(live);
}

/* The whole response (status line, headers, body) of a GET without a token. */
static char *raw_get(int port, const char *path)
{
    int fd = connect_to(port);
    cr_assert_geq(fd, 0);
    char req[512];
    int n = snprintf(req, sizeof req, "GET %s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", path);
    cr_assert_eq(write(fd, req, (size_t)n), n);
    size_t cap = 1 << 20, len = 0;
    char *buf = malloc(cap);
    ssize_t r;
    while ((r = read(fd, buf + len, cap - len - 1)) > 0)
        len += (size_t)r;
    buf[len] = '\0';
    close(fd);
    return buf;
}

/* A new ticket for token (its 64 hex digits into out). */
static void ticket(server *s, const char *token, char out[65])
{
    char *body;
    cr_assert_eq(http(s->port, "POST", "/v1/stream-tickets", token, NULL, &body), 201, "%s", body);
    const char *t = strstr(body, "\"ticket\":\"");
    cr_assert_not_null(t, "%s", body);
    snprintf(out, 65, "%.64s", t + 10);
    cr_assert_eq(strspn(out, "0123456789abcdef"), 64, "%s", body);
    free(body);
}

/* Opens the stream with a ticket (no Authorization), from after=0. */
static void stream_ticket(stream *st, int port, const char *tk)
{
    char req[512];
    st->fd = connect_to(port);
    cr_assert_geq(st->fd, 0);
    st->len = 0;
    int n = snprintf(req, sizeof req,
                     "GET /v1/transitions/stream?after=0&ticket=%s HTTP/1.1\r\nHost: x\r\n\r\n", tk);
    cr_assert_eq(write(st->fd, req, (size_t)n), n);
}

static int with_ticket(server *s, const char *tk, char **body)
{
    char path[200];
    snprintf(path, sizeof path, "/v1/transitions/stream?ticket=%s", tk);
    return http(s->port, "GET", path, NULL, NULL, body);
}

Test(worklist, page_and_assets_are_compiled_in_with_a_strict_policy, .timeout = 30, .fini = cleanup)
{
    server s = {0};
    server_setup(&s, fast_protocol, fast_protocol);
    live = &s;
    server_start(&s);
    static const char *const files[][2] = {
        {"/", "runtime/service/www/index.html"},
        {"/app.js", "runtime/service/www/app.js"},
        {"/app.css", "runtime/service/www/app.css"},
        {"/favicon.svg", "runtime/service/www/favicon.svg"},
    };
    for (size_t i = 0; i < RG_COUNTOF(files); i++) {
        char *r = raw_get(s.port, files[i][0]), *want = rg_test_read(files[i][1]);
        const char *body = strstr(r, "\r\n\r\n");
        cr_assert(!strncmp(r, "HTTP/1.1 200 ", 13), "%s: %.200s", files[i][0], r);
        cr_assert(body && !strcmp(body + 4, want), "%s is not %s", files[i][0], files[i][1]);
        cr_assert(strstr(r, "\r\nContent-Security-Policy: default-src 'none'; script-src 'self'; "
                            "style-src 'self'; img-src 'self' data:; connect-src 'self'; "
                            "base-uri 'none'; form-action 'none'; frame-ancestors 'none'\r\n"),
                  "%s", r);
        cr_assert(strstr(r, "\r\nX-Content-Type-Options: nosniff\r\n"));
        cr_assert(strstr(r, "\r\nReferrer-Policy: no-referrer\r\n"));
        cr_assert(strstr(r, "\r\nCache-Control: no-store\r\n"));
        free(r);
        free(want);
    }
    char *r = raw_get(s.port, "/app.js");
    cr_assert(strstr(r, "\r\nContent-Type: text/javascript; charset=utf-8\r\n"));
    free(r);
    r = raw_get(s.port, "/timeline.css");
    cr_assert(strstr(r, "\r\nContent-Type: text/css; charset=utf-8\r\n") && strstr(r, ".sev-critical{"));
    free(r);
    /* the page has no inline script or style for the policy to block */
    char *page = rg_test_read("runtime/service/www/index.html");
    cr_assert_null(strstr(page, "<script>"));
    cr_assert_null(strstr(page, "<style"));
    cr_assert_null(strstr(page, " style="));
    for (const char *p = page; (p = strstr(p, " on")); p++) /* no onclick= and the like */
        cr_assert_neq(p[3 + strspn(p + 3, "abcdefghijklmnopqrstuvwxyz")], '=', "an inline handler: %.40s", p);
    free(page);
    /* anything else still needs a token */
    r = raw_get(s.port, "/index.html.bak");
    cr_assert(!strncmp(r, "HTTP/1.1 401 ", 13), "%.100s", r);
    free(r);
    cr_assert_eq(server_stop(&s, SIGTERM), 0);
    rg_test_rmdir(s.dir);
}

Test(worklist, a_ticket_opens_its_clinics_stream_once_and_is_never_logged, .timeout = 30,
     .fini = cleanup)
{
    server s = {0};
    server_setup(&s, fast_protocol, fast_protocol);
    live = &s;
    server_start(&s);
    char *body, *n1 = ping("north", "n1", "p-1", now_ms() - 5000, "ping"),
                *s1 = ping("south", "s1", "p-9", now_ms() - 5000, "ping");
    cr_assert_eq(http(s.port, "POST", "/v1/events", TOKEN_A, n1, &body), 200, "%s", body);
    free(body);
    cr_assert_eq(http(s.port, "POST", "/v1/events", TOKEN_B, s1, &body), 200, "%s", body);
    free(body);

    char tk[65], used[65];
    ticket(&s, TOKEN_A, tk);
    stream st;
    stream_ticket(&st, s.port, tk);
    cr_assert_geq(stream_wait(&st, "\"patient\":\"p-1\"", 5000), 0, "north's backlog: %s", st.buf);
    cr_assert_null(strstr(st.buf, "p-9"), "nothing of south on north's ticket");
    /* live, too */
    char *n2 = ping("north", "n2", "p-2", now_ms() - 5000, "ping");
    cr_assert_eq(http(s.port, "POST", "/v1/events", TOKEN_A, n2, &body), 200);
    free(body);
    cr_assert_geq(stream_wait(&st, "\"patient\":\"p-2\"", 2000), 0, "%s", st.buf);
    close(st.fd);

    /* once */
    cr_assert_eq(with_ticket(&s, tk, &body), 401);
    cr_assert(strstr(body, "unknown, used or expired"), "%s", body);
    free(body);
    memcpy(used, tk, sizeof used);
    /* a ticket is no token: not for anything but the stream */
    char path[200];
    ticket(&s, TOKEN_A, tk);
    snprintf(path, sizeof path, "/v1/alerts?ticket=%s", tk);
    cr_assert_eq(http(s.port, "GET", path, NULL, NULL, &body), 401);
    free(body);
    cr_assert_eq(with_ticket(&s, "not-a-ticket", &body), 401);
    free(body);
    char guess[65];
    memset(guess, '0', 64);
    guess[64] = '\0';
    cr_assert_eq(with_ticket(&s, guess, &body), 401);
    free(body);
    cr_assert_eq(http(s.port, "POST", "/v1/stream-tickets", NULL, NULL, &body), 401);
    free(body);
    cr_assert_eq(http(s.port, "POST", "/v1/stream-tickets", "wrong-token-0123456789", NULL, &body),
                 401);
    free(body);

    /* a clinic has at most 64 outstanding (limits.max_stream_tickets_per_clinic):
     * then 503 for it, while the other clinic still gets tickets and its
     * earlier ones still work */
    for (int i = 0; i < 64; i++) {
        char t[65];
        ticket(&s, TOKEN_B, t);
    }
    cr_assert_eq(http(s.port, "POST", "/v1/stream-tickets", TOKEN_B, NULL, &body), 503);
    cr_assert(strstr(body, "too many stream tickets outstanding for this clinic"), "%s", body);
    free(body);
    char other[65];
    ticket(&s, TOKEN_A, other);
    stream_ticket(&st, s.port, tk);
    cr_assert_geq(stream_wait(&st, "\"patient\":\"p-1\"", 5000), 0, "%s", st.buf);
    close(st.fd);

    cr_assert_eq(server_stop(&s, SIGTERM), 0);
    char *log = rg_test_read(s.log);
    cr_assert_null(strstr(log, used), "a ticket in the log:\n%s", log);
    cr_assert_null(strstr(log, tk), "a ticket in the log:\n%s", log);
    cr_assert_null(strstr(log, TOKEN_A));
    cr_assert(strstr(log, "unauthorized GET /v1/transitions/stream from 127.0.0.1:"), "%s", log);
    free(log);
    free(n1);
    free(n2);
    free(s1);
    rg_test_rmdir(s.dir);
}

/* The service under libfaketime with the monotonic clock faked too (what the
 * ticket's 30 s are counted on), offset by the text of dir/faketime. */
static void faked_start(server *s)
{
    glob_t g;
    char ft[600];
    cr_assert_eq(glob("/usr/lib/*/faketime/libfaketime.so.1", 0, NULL, &g), 0,
                 "libfaketime is missing (Debian package faketime: .ci/install-deps)");
    snprintf(ft, sizeof ft, "%s/faketime", s->dir);
    rg_test_write(s->dir, "faketime", "+0\n");
    setenv("LD_PRELOAD", g.gl_pathv[0], 1);
    setenv("FAKETIME_TIMESTAMP_FILE", ft, 1);
    setenv("FAKETIME_NO_CACHE", "1", 1);
    setenv("FAKETIME_DONT_FAKE_MONOTONIC", "0", 1);
    const char *asan = getenv("ASAN_OPTIONS"); /* a sanitizer build: see test_ops.c */
    char *asan_was = asan ? strdup(asan) : NULL, opts[512];
    snprintf(opts, sizeof opts, "%s%sverify_asan_link_order=0", asan ? asan : "",
             asan && *asan ? ":" : "");
    setenv("ASAN_OPTIONS", opts, 1);
    server_start(s);
    unsetenv("LD_PRELOAD");
    unsetenv("FAKETIME_TIMESTAMP_FILE");
    if (asan_was)
        setenv("ASAN_OPTIONS", asan_was, 1);
    else
        unsetenv("ASAN_OPTIONS");
    free(asan_was);
    globfree(&g);
}

Test(worklist, a_ticket_is_dead_after_30_seconds, .timeout = 30, .fini = cleanup)
{
    server s = {0};
    server_setup(&s, fast_protocol, fast_protocol);
    live = &s;
    faked_start(&s);
    char tk[65], fresh[65], *body;
    ticket(&s, TOKEN_A, tk);
    rg_test_write(s.dir, "faketime.new", "+31s\n");
    char from[600], to[600];
    snprintf(from, sizeof from, "%s/faketime.new", s.dir);
    snprintf(to, sizeof to, "%s/faketime", s.dir);
    cr_assert_eq(rename(from, to), 0);
    usleep(200000);
    ticket(&s, TOKEN_A, fresh); /* made after the jump: good */
    cr_assert_eq(with_ticket(&s, tk, &body), 401, "a 31 s old ticket opened the stream");
    free(body);
    stream st;
    stream_ticket(&st, s.port, fresh);
    cr_assert_geq(stream_wait(&st, "text/event-stream", 5000), 0, "%s", st.buf);
    close(st.fd);
    cr_assert_eq(server_stop(&s, SIGTERM), 0);
    rg_test_rmdir(s.dir);
}

static int the_key(const char *alerts, char key[33])
{
    const char *k = strstr(alerts, "\"key\":\"");
    if (!k)
        return -1;
    snprintf(key, 33, "%.32s", k + 7);
    return 0;
}

Test(worklist, explain_is_regimen_explain_and_other_clinics_get_404, .timeout = 30,
     .fini = cleanup)
{
    server s = {0};
    server_setup(&s, fast_protocol, fast_protocol);
    live = &s;
    server_start(&s);
    char *body, key[33], path[200], *text, *svg;
    char *n1 = ping("north", "n1", "p-1", now_ms() - 5000, "ping");
    cr_assert_eq(http(s.port, "POST", "/v1/events", TOKEN_A, n1, &body), 200);
    free(body);
    cr_assert_eq(http(s.port, "GET", "/v1/alerts", TOKEN_A, NULL, &body), 200);
    cr_assert_eq(the_key(body, key), 0, "%s", body);
    free(body);

    snprintf(path, sizeof path, "/v1/alerts/%s/explain", key);
    cr_assert_eq(http(s.port, "GET", path, TOKEN_A, NULL, &text), 200);
    cr_assert(strstr(text, "rule fast.ping-overdue"), "%s", text);
    cr_assert_eq(http(s.port, "GET", path, TOKEN_B, NULL, &body), 404);
    free(body);
    cr_assert_eq(http(s.port, "GET", "/v1/patients/p-1/timeline", TOKEN_A, NULL, &svg), 200);
    cr_assert(!strncmp(svg, "<svg ", 5) && strstr(svg, "class=\"bar sev-warning"), "%s", svg);
    cr_assert_eq(http(s.port, "GET", "/v1/patients/p-1/timeline", TOKEN_B, NULL, &body), 404);
    free(body);
    cr_assert_eq(http(s.port, "GET", "/v1/patients/nobody/timeline", TOKEN_A, NULL, &body), 404);
    free(body);
    cr_assert_eq(server_stop(&s, SIGTERM), 0);

    /* the same text as the command, on the same store */
    char *out, *err;
    const char *args[] = {"explain", "--db", s.db, key, NULL};
    cr_assert_eq(rg_test_run(args, NULL, &out, &err), 0, "%s", err);
    cr_assert_str_eq(text, out);
    free(out);
    free(err);
    free(text);
    free(svg);
    free(n1);
    rg_test_rmdir(s.dir);
}
