/*
 * test_http.c - Criterion tests for runtime/service/http.c: a real server on
 * 127.0.0.1 (port 0) and plain client sockets.
 *
 * Everything runs on the test's thread: the client writes with send() (small
 * requests fit in the socket buffer) and reads with MSG_DONTWAIT while the
 * helpers drive the server's loop with uv_run(UV_RUN_NOWAIT), sleeping in
 * poll() on the loop's backend fd and the client fd. Responses are compared
 * byte for byte. Every test ends with rg_http_close, waits for its done
 * callback and asserts uv_loop_close(&loop) == 0.
 */
#include "service/http.h"

#include <criterion/criterion.h>

#include <arpa/inet.h>
#include <errno.h>
#include <malloc.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

/* ---- server side -------------------------------------------------------- */

enum mode { M_ECHO, M_ASYNC, M_HOLD, M_SSE };

typedef struct rec {
    char method[16], path[256], query[256], auth[128], leid[64], ctype[64], peer[64];
    int has_auth, has_leid, has_ctype;
    char body[4096];
    size_t body_len;
} rec;

static uv_loop_t loop;
static rg_http_server *srv;
static int port;
static enum mode mode;
static rec recs[16];
static int nrec;
static rg_http_conn *held[4]; /* connections whose handler has not responded */
static int nheld, max_outstanding;
static uv_timer_t late_timer;
static int late_timer_open;
static int closes;            /* SSE on_close calls */
static rg_http_conn *closed_conn;

static void copy(char *dst, size_t cap, const char *src, int *has)
{
    if (has)
        *has = src != NULL;
    snprintf(dst, cap, "%s", src ? src : "");
}

static void on_stream_close(void *ud, rg_http_conn *c)
{
    cr_assert_eq(ud, &closes);
    closes++;
    closed_conn = c;
}

/* Answers the oldest held request: "late <path>". */
static void on_late(uv_timer_t *t)
{
    (void)t;
    char body[300];
    int n = snprintf(body, sizeof body, "late %s", recs[nrec - 1].path);
    rg_http_conn *c = held[0];
    held[0] = NULL;
    nheld = 0;
    rg_http_respond(c, 200, "text/plain", body, (size_t)n);
}

static void handler(void *ud, rg_http_conn *c, const rg_http_req *req)
{
    cr_assert_eq(ud, &recs);
    cr_assert_lt(nrec, 16);
    rec *r = &recs[nrec++];
    copy(r->method, sizeof r->method, req->method, NULL);
    copy(r->path, sizeof r->path, req->path, NULL);
    copy(r->query, sizeof r->query, req->query, NULL);
    copy(r->auth, sizeof r->auth, req->authorization, &r->has_auth);
    copy(r->leid, sizeof r->leid, req->last_event_id, &r->has_leid);
    copy(r->ctype, sizeof r->ctype, req->content_type, &r->has_ctype);
    copy(r->peer, sizeof r->peer, req->peer, NULL);
    cr_assert_lt(req->body_len, sizeof r->body);
    cr_assert_eq(req->body[req->body_len], '\0');
    memcpy(r->body, req->body, req->body_len + 1);
    r->body_len = req->body_len;
    if (strncmp(req->path, "/auth", 5) == 0 && !rg_http_authenticated(c)) {
        rg_http_respond(c, 503, "text/plain", "full", 4);
        return;
    }
    if (mode == M_ECHO && strcmp(req->path, "/raw") == 0) { /* the request's own bytes */
        rg_http_respond(c, 200, req->content_type, req->body, req->body_len);
        return;
    }
    if (mode == M_ECHO) {
        char body[1024];
        int n = snprintf(body, sizeof body, "%s %s ?%s [%s]", req->method, req->path, req->query,
                         req->body);
        rg_http_respond(c, 200, "text/plain", body, (size_t)n);
        return;
    }
    held[nheld++] = c;
    if (nheld > max_outstanding)
        max_outstanding = nheld;
    if (mode == M_ASYNC) {
        if (!late_timer_open) {
            uv_timer_init(&loop, &late_timer);
            late_timer_open = 1;
        }
        uv_timer_start(&late_timer, on_late, 30, 0);
    } else if (mode == M_SSE) {
        rg_http_stream_start(c, on_stream_close, &closes);
    }
}

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* Runs the loop once, first sleeping up to ms for loop or client activity. */
static void step(int fd, int ms)
{
    int t = uv_backend_timeout(&loop);
    if (t < 0 || t > ms)
        t = ms;
    struct pollfd p[2] = {{uv_backend_fd(&loop), POLLIN, 0}, {fd, POLLIN, 0}};
    poll(p, fd >= 0 ? 2 : 1, t);
    uv_run(&loop, UV_RUN_NOWAIT);
}

/* Runs the loop for about ms milliseconds. */
static void pump(int ms)
{
    uint64_t end = now_ms() + (uint64_t)ms;
    for (uint64_t t = now_ms(); t < end; t = now_ms())
        step(-1, (int)(end - t));
}

static void start(const rg_http_limits *lim, enum mode m)
{
    mode = m;
    signal(SIGPIPE, SIG_IGN); /* as the service does: writes to a gone client fail instead */
    cr_assert_eq(uv_loop_init(&loop), 0);
    cr_assert_eq(rg_http_listen(&loop, "127.0.0.1", 0, lim, handler, &recs, &srv), 0);
    port = rg_http_port(srv);
    cr_assert_gt(port, 0);
}

static void on_done(void *ud)
{
    *(int *)ud = 1;
}

static void on_closed_timer(uv_handle_t *h)
{
    (void)h;
    late_timer_open = 0;
}

/* Closes the server and the loop; both must finish cleanly. */
static void stop(void)
{
    int done = 0;
    if (late_timer_open)
        uv_close((uv_handle_t *)&late_timer, on_closed_timer);
    rg_http_close(srv, on_done, &done);
    for (uint64_t end = now_ms() + 2000; !done && now_ms() < end;)
        step(-1, 10);
    cr_assert(done, "done callback never ran");
    uv_run(&loop, UV_RUN_NOWAIT);
    cr_assert_eq(uv_loop_close(&loop), 0);
}

static rg_http_stats stats(void)
{
    rg_http_stats st;
    rg_http_stats_get(srv, &st);
    return st;
}

/* ---- client side -------------------------------------------------------- */

typedef struct client {
    int fd;
    char buf[1 << 16];
    size_t len;
    int eof;
} client;

static void cli_open(client *c)
{
    memset(c, 0, sizeof *c);
    c->fd = socket(AF_INET, SOCK_STREAM, 0);
    cr_assert_geq(c->fd, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    cr_assert_eq(connect(c->fd, (struct sockaddr *)&a, sizeof a), 0, "%s", strerror(errno));
}

static void cli_close(client *c)
{
    close(c->fd);
    c->fd = -1;
}

static void cli_sendn(client *c, const char *s, size_t n)
{
    cr_assert_eq(send(c->fd, s, n, MSG_NOSIGNAL), (ssize_t)n);
}

static void cli_send(client *c, const char *s)
{
    cli_sendn(c, s, strlen(s));
}

/* Reads whatever is there without blocking. */
static void cli_drain(client *c)
{
    while (!c->eof && c->len < sizeof c->buf - 1) {
        ssize_t n = recv(c->fd, c->buf + c->len, sizeof c->buf - 1 - c->len, MSG_DONTWAIT);
        if (n > 0)
            c->len += (size_t)n;
        else if (n == 0 || (errno != EAGAIN && errno != EINTR))
            c->eof = 1; /* a reset counts as the end too */
        else
            break;
    }
    c->buf[c->len] = '\0';
}

/* Pumps the loop until the input contains until (or, with NULL, until EOF)
 * or ms pass. Returns 1 when the condition was met. */
static int cli_wait(client *c, const char *until, int ms)
{
    for (uint64_t end = now_ms() + (uint64_t)ms;;) {
        cli_drain(c);
        if (until ? strstr(c->buf, until) != NULL : c->eof)
            return 1;
        if (now_ms() >= end || (until && c->eof))
            return 0;
        step(c->fd, 10);
    }
}

/* Forgets what was read so far. */
static void cli_clear(client *c)
{
    c->len = 0;
    c->buf[0] = '\0';
}

/* The exact bytes of a response. */
static const char *resp(const char *status, const char *ctype, const char *body, const char *conn)
{
    static char out[4][2048];
    static int i;
    char *o = out[i++ % 4];
    snprintf(o, sizeof out[0],
             "HTTP/1.1 %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\nConnection: %s\r\n"
             "Cache-Control: no-store\r\n\r\n%s",
             status, ctype, strlen(body), conn, body);
    return o;
}

static const char *ok(const char *body)
{
    return resp("200 OK", "text/plain", body, "keep-alive");
}

/* The response to a request refused by the server (then closed). */
static const char *refusal(const char *status, const char *reason)
{
    char body[128];
    snprintf(body, sizeof body, "%s\n", reason);
    char st[128];
    snprintf(st, sizeof st, "%s %s", status, reason);
    return resp(st, "text/plain; charset=utf-8", body, "close");
}

/* Sends a request that must be refused, checks the exact refusal and EOF. */
static void expect_refusal(const char *request, const char *status, const char *reason)
{
    client c;
    cli_open(&c);
    cli_send(&c, request);
    cr_assert(cli_wait(&c, NULL, 2000), "no EOF after %s", request);
    cr_assert_str_eq(c.buf, refusal(status, reason), "for %s", request);
    cli_close(&c);
}

/* ---- plain requests ----------------------------------------------------- */

TestSuite(http, .timeout = 3);

Test(http, get_reaches_handler_with_fields)
{
    start(NULL, M_ECHO);
    client c;
    cli_open(&c);
    cli_send(&c, "GET /v1/a%20b/%C3%A9?x=1&y=%20 HTTP/1.1\r\nHost: t\r\n"
                 "authorization: Bearer s3cret \t\r\nLAST-EVENT-ID:42\r\nX-Other: skip\r\n\r\n");
    cr_assert(cli_wait(&c, "]", 2000));
    cr_assert_str_eq(c.buf, ok("GET /v1/a b/\xC3\xA9 ?x=1&y=%20 []"));
    cr_assert_eq(nrec, 1);
    cr_assert_str_eq(recs[0].method, "GET");
    cr_assert_str_eq(recs[0].path, "/v1/a b/\xC3\xA9");
    cr_assert_str_eq(recs[0].query, "x=1&y=%20");
    cr_assert(recs[0].has_auth);
    cr_assert_str_eq(recs[0].auth, "Bearer s3cret");
    cr_assert(recs[0].has_leid);
    cr_assert_str_eq(recs[0].leid, "42");
    cr_assert_not(recs[0].has_ctype);
    cr_assert_eq(recs[0].body_len, 0);
    cr_assert_eq(strncmp(recs[0].peer, "127.0.0.1:", 10), 0, "peer %s", recs[0].peer);

    /* no query, no Authorization */
    cli_clear(&c);
    cli_send(&c, "GET /plain HTTP/1.1\r\n\r\n");
    cr_assert(cli_wait(&c, "]", 2000));
    cr_assert_str_eq(c.buf, ok("GET /plain ? []"));
    cr_assert_str_eq(recs[1].query, "");
    cr_assert_not(recs[1].has_auth);
    cr_assert_not(recs[1].has_leid);
    cli_close(&c);
    stop();
}

Test(http, post_bodies_length_and_chunked)
{
    start(NULL, M_ECHO);
    client c;
    cli_open(&c);
    cli_send(&c, "POST /v1/events HTTP/1.1\r\nContent-Type: application/json\r\n"
                 "Content-Length: 13\r\n\r\n{\"a\":\"b c\"}\r\n");
    cr_assert(cli_wait(&c, "]", 2000));
    cr_assert_str_eq(c.buf, ok("POST /v1/events ? [{\"a\":\"b c\"}\r\n]"));
    cr_assert_str_eq(recs[0].method, "POST");
    cr_assert_str_eq(recs[0].ctype, "application/json");
    cr_assert_eq(recs[0].body_len, 13);
    cr_assert_str_eq(recs[0].body, "{\"a\":\"b c\"}\r\n");

    cli_clear(&c);
    cli_send(&c, "POST /c HTTP/1.1\r\nTransfer-Encoding: Chunked  \r\n\r\n"
                 "5\r\nhello\r\n6\r\n world\r\n0\r\nAuthorization: trailer\r\n\r\n");
    cr_assert(cli_wait(&c, "]", 2000));
    cr_assert_str_eq(c.buf, ok("POST /c ? [hello world]"));
    cr_assert_eq(recs[1].body_len, 11);
    cr_assert_str_eq(recs[1].body, "hello world");
    cr_assert_not(recs[1].has_auth, "a trailer was taken for a header");

    /* the handler may answer with the request's own body */
    cli_clear(&c);
    cli_send(&c, "POST /raw HTTP/1.1\r\nContent-Type: x/y\r\nContent-Length: 7\r\n\r\nmirror!");
    cr_assert(cli_wait(&c, "mirror!", 2000));
    cr_assert_str_eq(c.buf, resp("200 OK", "x/y", "mirror!", "keep-alive"));

    /* Expect: 100-continue gets the interim response before the body */
    cli_clear(&c);
    cli_send(&c, "PUT /e HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\n");
    cr_assert(cli_wait(&c, "\r\n\r\n", 2000));
    cr_assert_str_eq(c.buf, "HTTP/1.1 100 Continue\r\n\r\n");
    cli_clear(&c);
    cli_send(&c, "abc");
    cr_assert(cli_wait(&c, "]", 2000));
    cr_assert_str_eq(c.buf, ok("PUT /e ? [abc]"));
    cli_close(&c);
    stop();
}

Test(http, keep_alive_two_requests_and_head)
{
    start(NULL, M_ECHO);
    client c;
    cli_open(&c);
    cli_send(&c, "GET /one HTTP/1.1\r\n\r\n");
    cr_assert(cli_wait(&c, "]", 2000));
    cr_assert_str_eq(c.buf, ok("GET /one ? []"));
    cli_clear(&c);
    cli_send(&c, "HEAD /two HTTP/1.1\r\n\r\n");
    cr_assert(cli_wait(&c, "\r\n\r\n", 2000));
    pump(20); /* no body may follow a HEAD response */
    cli_drain(&c);
    cr_assert_str_eq(c.buf, "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 14\r\n"
                            "Connection: keep-alive\r\nCache-Control: no-store\r\n\r\n");
    cli_clear(&c);
    cli_send(&c, "GET /three HTTP/1.1\r\n\r\n");
    cr_assert(cli_wait(&c, "]", 2000));
    cr_assert_str_eq(c.buf, ok("GET /three ? []"));
    cr_assert_not(c.eof);
    rg_http_stats st = stats();
    cr_assert_eq(st.requests, 3);
    cr_assert_eq(st.connections, 1);
    cli_close(&c);
    stop();
}

Test(http, connection_close_and_http10)
{
    start(NULL, M_ECHO);
    client c;
    cli_open(&c);
    cli_send(&c, "GET /bye HTTP/1.1\r\nConnection: close\r\n\r\n");
    cr_assert(cli_wait(&c, NULL, 2000), "server did not close");
    cr_assert_str_eq(c.buf, resp("200 OK", "text/plain", "GET /bye ? []", "close"));
    cli_close(&c);

    cli_open(&c);
    cli_send(&c, "GET /old HTTP/1.0\r\n\r\n");
    cr_assert(cli_wait(&c, NULL, 2000), "server did not close");
    cr_assert_str_eq(c.buf, resp("200 OK", "text/plain", "GET /old ? []", "close"));
    cli_close(&c);
    for (int i = 0; i < 100 && stats().connections > 0; i++)
        pump(5);
    cr_assert_eq(stats().connections, 0);
    stop();
}

Test(http, async_response_later)
{
    start(NULL, M_ASYNC);
    client c;
    cli_open(&c);
    cli_send(&c, "GET /late HTTP/1.1\r\n\r\n");
    for (int i = 0; i < 200 && nrec == 0; i++)
        step(c.fd, 5);
    cr_assert_eq(nrec, 1);
    cli_drain(&c);
    cr_assert_eq(c.len, 0, "answered before the handler responded");
    cr_assert(cli_wait(&c, "/late", 2000));
    cr_assert_str_eq(c.buf, ok("late /late"));
    cli_close(&c);
    stop();
}

Test(http, pipelined_requests_answered_in_order)
{
    start(NULL, M_ASYNC);
    client c;
    cli_open(&c);
    cli_send(&c, "GET /1 HTTP/1.1\r\n\r\nPOST /2 HTTP/1.1\r\nContent-Length: 2\r\n\r\nhi"
                 "GET /3 HTTP/1.1\r\n\r\n");
    cr_assert(cli_wait(&c, "late /3", 2000));
    char want[4096];
    snprintf(want, sizeof want, "%s", ok("late /1"));
    strcat(want, ok("late /2"));
    strcat(want, ok("late /3"));
    cr_assert_str_eq(c.buf, want);
    cr_assert_eq(nrec, 3);
    cr_assert_str_eq(recs[1].body, "hi");
    cr_assert_eq(max_outstanding, 1, "requests were handled concurrently");
    cli_close(&c);
    stop();
}

Test(http, request_arriving_while_handler_busy_waits)
{
    start(NULL, M_HOLD);
    client c;
    cli_open(&c);
    cli_send(&c, "GET /first HTTP/1.1\r\n\r\n");
    for (int i = 0; i < 200 && nrec == 0; i++)
        step(c.fd, 5);
    cr_assert_eq(nrec, 1);
    cli_send(&c, "GET /second HTTP/1.1\r\n\r\n"); /* a separate read on the server */
    pump(50);
    cr_assert_eq(nrec, 1, "second request handled before the first was answered");
    rg_http_respond(held[0], 200, "text/plain", "one", 3);
    for (int i = 0; i < 200 && nrec < 2; i++)
        step(c.fd, 5);
    cr_assert_eq(nrec, 2);
    cr_assert_str_eq(recs[1].path, "/second");
    rg_http_respond(held[1], 200, "text/plain", "two", 3);
    cr_assert(cli_wait(&c, "two", 2000));
    char want[1024];
    snprintf(want, sizeof want, "%s%s", ok("one"), ok("two"));
    cr_assert_str_eq(c.buf, want);
    cli_close(&c);
    stop();
}

/* ---- limits and bad input ---------------------------------------------- */

Test(http, body_over_limit_413)
{
    rg_http_limits lim = RG_HTTP_LIMITS_DEFAULT;
    lim.max_body_bytes = 100;
    start(&lim, M_ECHO);
    char req[2048];
    int n = snprintf(req, sizeof req, "POST /big HTTP/1.1\r\nContent-Length: 1000\r\n\r\n");
    memset(req + n, 'x', 1000);
    req[n + 1000] = '\0';
    expect_refusal(req, "413", "Payload Too Large");
    /* chunked, so the size is only known while reading */
    n = snprintf(req, sizeof req, "POST /big HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
                                  "40\r\n%064d\r\n40\r\n%064d\r\n0\r\n\r\n", 1, 2);
    expect_refusal(req, "413", "Payload Too Large");
    /* exactly at the limit is fine */
    client c;
    cli_open(&c);
    n = snprintf(req, sizeof req, "POST /ok HTTP/1.1\r\nContent-Length: 100\r\n\r\n%0100d", 7);
    cli_sendn(&c, req, (size_t)n);
    cr_assert(cli_wait(&c, "7]", 2000));
    cr_assert_eq(recs[0].body_len, 100);
    cr_assert_eq(nrec, 1);
    cr_assert_eq(stats().bad_requests, 2);
    cli_close(&c);
    stop();
}

Test(http, headers_over_limit_431_url_414)
{
    rg_http_limits lim = RG_HTTP_LIMITS_DEFAULT;
    lim.max_header_bytes = 1024;
    start(&lim, M_ECHO);
    char req[4096];
    int n = snprintf(req, sizeof req, "GET / HTTP/1.1\r\nX-Big: ");
    memset(req + n, 'a', 2000);
    strcpy(req + n + 2000, "\r\n\r\n");
    expect_refusal(req, "431", "Request Header Fields Too Large");
    /* many small headers add up too */
    n = snprintf(req, sizeof req, "GET / HTTP/1.1\r\n");
    for (int i = 0; i < 100; i++)
        n += snprintf(req + n, sizeof req - (size_t)n, "X-H%d: 0123456789\r\n", i);
    strcat(req, "\r\n");
    expect_refusal(req, "431", "Request Header Fields Too Large");
    n = snprintf(req, sizeof req, "GET /");
    memset(req + n, 'u', 2000);
    strcpy(req + n + 2000, " HTTP/1.1\r\n\r\n");
    expect_refusal(req, "414", "URI Too Long");
    cr_assert_eq(nrec, 0);
    cr_assert_eq(stats().bad_requests, 3);
    stop();
}

Test(http, malformed_requests_400_and_server_survives)
{
    start(NULL, M_ECHO);
    static const char *bad[] = {
        "HELLO WORLD\r\n\r\n",
        "GET / HTTP/9\r\n\r\n",
        "GET /x HTTP/1.1\r\nBad Header\r\n\r\n",
        "GET /../etc/passwd HTTP/1.1\r\n\r\n",
        "GET /a/%2e%2E/b HTTP/1.1\r\n\r\n",
        "GET /a%00b HTTP/1.1\r\n\r\n",
        "GET /a%zz HTTP/1.1\r\n\r\n",
        "GET * HTTP/1.1\r\n\r\n",
        "POST /x HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab",
        "POST /x HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\nzz",
        "POST /x HTTP/1.1\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n",
        "POST /x HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
        "GET /x HTTP/1.1\r\nAuthorization: a\r\nAuthorization: b\r\n\r\n",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        expect_refusal(bad[i], "400", "Bad Request");
    expect_refusal("POST /x HTTP/1.1\r\nExpect: teapot\r\nContent-Length: 1\r\n\r\nx", "417",
                   "Expectation Failed");
    cr_assert_eq(nrec, 0, "a bad request reached the handler");
    cr_assert_eq(stats().bad_requests, sizeof bad / sizeof bad[0] + 1);
    /* a binary mess does not crash it either */
    client c;
    cli_open(&c);
    char junk[512];
    for (size_t i = 0; i < sizeof junk; i++)
        junk[i] = (char)(i * 7 + 3);
    cli_sendn(&c, junk, sizeof junk);
    cr_assert(cli_wait(&c, NULL, 2000));
    cr_assert_eq(strncmp(c.buf, "HTTP/1.1 400 Bad Request\r\n", 26), 0);
    cli_close(&c);
    /* ".." as part of a name is fine, and the server still works */
    cli_open(&c);
    cli_send(&c, "GET /a..b/..c HTTP/1.1\r\n\r\n");
    cr_assert(cli_wait(&c, "]", 2000));
    cr_assert_str_eq(c.buf, ok("GET /a..b/..c ? []"));
    cli_close(&c);
    stop();
}

/* Unauthenticated connections have their own slots: when they are taken by
 * connections that owe nothing, the oldest idle one makes room; when every
 * one is busy, a new connection gets 503. */
Test(http, unauthenticated_slots_evict_idle_refuse_when_busy)
{
    rg_http_limits lim = RG_HTTP_LIMITS_DEFAULT;
    lim.max_unauthenticated = 2;
    start(&lim, M_HOLD);
    client a, b, x;
    cli_open(&a);
    cli_open(&b);
    cli_send(&a, "GET /a HTTP/1.1\r\n\r\n");
    cli_send(&b, "GET /b HTTP/1.1\r\n\r\n");
    for (int i = 0; i < 200 && nheld < 2; i++)
        pump(5);
    cr_assert_eq(nheld, 2);
    cli_open(&x);
    cr_assert(cli_wait(&x, NULL, 2000), "third connection was not closed");
    cr_assert_str_eq(x.buf, refusal("503", "Service Unavailable"));
    cli_close(&x);
    rg_http_stats st = stats();
    cr_assert_eq(st.rejected_connections, 1);
    cr_assert_eq(st.connections, 2);
    cr_assert_eq(st.unauthenticated, 2);
    /* answered, a and b are idle: a new connection closes the older one */
    mode = M_ECHO;
    rg_http_respond(held[0], 200, "text/plain", "A", 1);
    cr_assert(cli_wait(&a, "A", 2000));
    rg_http_respond(held[1], 200, "text/plain", "B", 1);
    cr_assert(cli_wait(&b, "B", 2000));
    nheld = 0;
    cli_open(&x);
    cli_send(&x, "GET /x HTTP/1.1\r\n\r\n");
    cr_assert(cli_wait(&x, "]", 2000));
    cr_assert_str_eq(x.buf, ok("GET /x ? []"));
    cr_assert(cli_wait(&a, NULL, 2000), "the oldest idle connection was not closed");
    cli_drain(&b);
    cr_assert_not(b.eof);
    cr_assert_eq(stats().evicted, 1);
    cr_assert_eq(stats().connections, 2);
    cli_close(&x);
    cli_close(&a);
    cli_close(&b);
    stop();
}

/* An authenticated connection leaves the unauthenticated slots for its own
 * (max_connections); with those taken, the oldest idle one makes room, and
 * when none is idle (a stream), rg_http_authenticated says so. */
Test(http, authenticated_slots_are_separate)
{
    rg_http_limits lim = RG_HTTP_LIMITS_DEFAULT;
    lim.max_connections = 1;
    lim.max_unauthenticated = 1;
    start(&lim, M_ECHO);
    client a, b;
    cli_open(&a);
    cli_send(&a, "GET /auth HTTP/1.1\r\n\r\n");
    cr_assert(cli_wait(&a, "]", 2000));
    cr_assert_eq(stats().unauthenticated, 0);
    cr_assert_eq(stats().connections, 1);
    cli_open(&b); /* the unauthenticated slot is free */
    cli_send(&b, "GET /b HTTP/1.1\r\n\r\n");
    cr_assert(cli_wait(&b, "]", 2000));
    cr_assert_str_eq(b.buf, ok("GET /b ? []"));
    cr_assert_eq(stats().unauthenticated, 1);
    cli_clear(&b);
    cli_send(&b, "GET /auth2 HTTP/1.1\r\n\r\n"); /* a, idle, makes room */
    cr_assert(cli_wait(&b, "]", 2000));
    cr_assert_str_eq(b.buf, ok("GET /auth2 ? []"));
    cr_assert(cli_wait(&a, NULL, 2000), "the idle authenticated connection was not closed");
    cr_assert_eq(stats().evicted, 1);
    cr_assert_eq(stats().unauthenticated, 0);
    cli_close(&a);
    /* b becomes a stream: not idle, never closed to make room */
    mode = M_SSE;
    cli_clear(&b);
    cli_send(&b, "GET /auth3 HTTP/1.1\r\n\r\n");
    cr_assert(cli_wait(&b, "\r\n\r\n", 2000));
    cr_assert_eq(stats().streams, 1);
    mode = M_ECHO;
    client x;
    cli_open(&x);
    cli_send(&x, "GET /auth4 HTTP/1.1\r\n\r\n");
    cr_assert(cli_wait(&x, "full", 2000));
    cr_assert_eq(stats().unauthenticated, 1);
    cr_assert_eq(stats().streams, 1);
    cli_close(&x);
    cli_close(&b);
    stop();
}

/* Beyond max_per_address unauthenticated connections from one address,
 * more get 503 (no eviction: one address cannot push the others out). */
Test(http, per_address_limit_503)
{
    rg_http_limits lim = RG_HTTP_LIMITS_DEFAULT;
    lim.max_per_address = 2;
    start(&lim, M_ECHO);
    client a, b, x;
    cli_open(&a);
    cli_open(&b);
    for (int i = 0; i < 100 && stats().connections < 2; i++)
        pump(5);
    cli_open(&x);
    cr_assert(cli_wait(&x, NULL, 2000), "third connection from one address was not closed");
    cr_assert_str_eq(x.buf, refusal("503", "Service Unavailable"));
    cr_assert_eq(stats().evicted, 0);
    cli_close(&x);
    cli_close(&a);
    cli_close(&b);
    stop();
}

/* A connection must send its first request within first_request_timeout_ms. */
Test(http, first_request_deadline)
{
    rg_http_limits lim = RG_HTTP_LIMITS_DEFAULT;
    lim.first_request_timeout_ms = 300;
    start(&lim, M_ECHO);
    client c;
    cli_open(&c);
    uint64_t t0 = now_ms();
    cli_send(&c, "GET /slow HTTP/1.1\r\n"); /* begun, never finished */
    cr_assert(cli_wait(&c, NULL, 2000), "not closed");
    uint64_t dt = now_ms() - t0;
    cr_assert(dt >= 250 && dt < 1000, "closed after %d ms", (int)dt);
    cr_assert_str_eq(c.buf, refusal("408", "Request Timeout"));
    cli_close(&c);
    stop();
}

Test(http, slowloris_408)
{
    rg_http_limits lim = RG_HTTP_LIMITS_DEFAULT;
    lim.request_timeout_ms = 300;
    start(&lim, M_ECHO);
    client c;
    cli_open(&c);
    const char *req = "GET /slow HTTP/1.1\r\nHost: example\r\nX-Padding: trickle\r\n\r\n";
    uint64_t t0 = now_ms();
    for (const char *p = req; *p && c.len == 0 && !c.eof; p++) {
        send(c.fd, p, 1, MSG_NOSIGNAL);
        cli_wait(&c, "\r\n\r\n", 100);
    }
    cr_assert(cli_wait(&c, NULL, 1000), "not closed");
    uint64_t dt = now_ms() - t0;
    cr_assert_str_eq(c.buf, refusal("408", "Request Timeout"));
    cr_assert(dt >= 250 && dt < 1000, "closed after %d ms", (int)dt);
    cr_assert_eq(nrec, 0);
    cr_assert_eq(stats().timeouts, 1);
    cli_close(&c);
    stop();
}

Test(http, idle_keep_alive_closed)
{
    rg_http_limits lim = RG_HTTP_LIMITS_DEFAULT;
    lim.idle_timeout_ms = 200;
    start(&lim, M_ECHO);
    client c;
    cli_open(&c);
    cli_send(&c, "GET /i HTTP/1.1\r\n\r\n");
    cr_assert(cli_wait(&c, "]", 2000));
    uint64_t t0 = now_ms();
    cr_assert(cli_wait(&c, NULL, 1500), "idle connection stayed open");
    uint64_t dt = now_ms() - t0;
    cr_assert(dt >= 150 && dt < 1000, "closed after %d ms", (int)dt);
    cr_assert_str_eq(c.buf, ok("GET /i ? []"), "nothing may follow the response");
    cli_close(&c);
    /* a connection that never sends anything is closed too, silently */
    cli_open(&c);
    t0 = now_ms();
    cr_assert(cli_wait(&c, NULL, 1500));
    cr_assert_eq(c.len, 0);
    cr_assert_geq(now_ms() - t0, 150);
    cr_assert_eq(stats().timeouts, 0);
    cli_close(&c);
    stop();
}

/* ---- server-sent events ------------------------------------------------- */

static const char sse_head[] = "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
                               "Cache-Control: no-store\r\nConnection: keep-alive\r\n\r\n";

/* Opens a stream on c; the server side is held[0]. */
static void open_stream(client *c)
{
    cli_open(c);
    cli_send(c, "GET /v1/stream HTTP/1.1\r\nLast-Event-ID: 4\r\nAccept: text/event-stream\r\n\r\n");
    cr_assert(cli_wait(c, "\r\n\r\n", 2000));
    cr_assert_str_eq(c->buf, sse_head);
    cr_assert_eq(nheld, 1);
    cr_assert_str_eq(recs[0].leid, "4");
    cli_clear(c);
}

Test(http, sse_events_and_client_disconnect)
{
    start(NULL, M_SSE);
    client c;
    open_stream(&c);
    cr_assert_eq(stats().streams, 1);
    cr_assert_eq(rg_http_stream_send(held[0], "5", "transition", "{\"alert\":\"a-1\",\"to\":\"open\"}"),
                 0);
    cr_assert(cli_wait(&c, "\n\n", 2000));
    cr_assert_str_eq(c.buf,
                     "id: 5\nevent: transition\ndata: {\"alert\":\"a-1\",\"to\":\"open\"}\n\n");
    cli_clear(&c);
    cr_assert_eq(rg_http_stream_ping(held[0]), 0);
    cr_assert_eq(rg_http_stream_send(held[0], NULL, NULL, "two\nlines"), 0);
    cr_assert_eq(rg_http_stream_send(held[0], "6", "x", ""), 0);
    cr_assert(cli_wait(&c, "id: 6\nevent: x\ndata: \n\n", 2000));
    cr_assert_str_eq(c.buf, ": keep-alive\n\ndata: two\ndata: lines\n\nid: 6\nevent: x\ndata: \n\n");
    cr_assert_eq(closes, 0);
    cli_close(&c);
    for (int i = 0; i < 200 && closes == 0; i++)
        pump(5);
    cr_assert_eq(closes, 1, "on_close did not run when the client left");
    cr_assert_eq(closed_conn, held[0]);
    cr_assert_eq(stats().streams, 0);
    stop();
    cr_assert_eq(closes, 1);
}

Test(http, sse_closed_by_rg_http_close)
{
    start(NULL, M_SSE);
    client c;
    open_stream(&c);
    cr_assert_eq(rg_http_stream_send(held[0], "1", "transition", "{}"), 0);
    cr_assert(cli_wait(&c, "\n\n", 2000));
    cr_assert_str_eq(c.buf, "id: 1\nevent: transition\ndata: {}\n\n");
    stop();
    cr_assert_eq(closes, 1);
    cli_drain(&c);
    cr_assert(c.eof, "client still connected after rg_http_close");
    cli_close(&c);
}

Test(http, sse_slow_client_closed)
{
    start(NULL, M_SSE);
    client c;
    open_stream(&c);
    int small = 4096;
    setsockopt(c.fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
    static char data[65536];
    memset(data, 'd', sizeof data - 1);
    int rc = 0, sent = 0;
    while (rc == 0 && sent < 2000) {
        rc = rg_http_stream_send(held[0], NULL, "big", data);
        sent += rc == 0;
        uv_run(&loop, UV_RUN_NOWAIT);
    }
    cr_assert_eq(rc, RG_EGONE, "a slow client's stream is gone (RG_EGONE), not out of memory");
    cr_assert_eq(closes, 1);
    cr_assert_geq((size_t)sent * sizeof data, RG_HTTP_LIMITS_DEFAULT.stream_max_unsent,
                  "closed after only %d events", sent);
    cr_assert_eq(stats().streams, 0);
    cr_assert_eq(stats().slow_streams, 1);
    stop();
    cli_close(&c);
}

static int drained;
static void on_drained(void *ud, rg_http_conn *c)
{
    cr_assert_eq(ud, &closes);
    cr_assert_eq(c, held[0]);
    drained++;
}

/* A stream whose client stops reading is closed once its unsent bytes have
 * not moved for stream_stall_ms, even under the unsent cap; a drain
 * callback runs when everything queued is written. */
Test(http, sse_stalled_client_closed_and_drain_callback)
{
    rg_http_limits lim = RG_HTTP_LIMITS_DEFAULT;
    lim.stream_max_unsent = 64u << 20;
    lim.stream_stall_ms = 300;
    start(&lim, M_SSE);
    client c;
    open_stream(&c);
    cr_assert_eq(rg_http_stream_send(held[0], "1", "x", "small"), 0);
    cr_assert_eq(rg_http_stream_on_drain(held[0], on_drained), 0);
    cr_assert(cli_wait(&c, "small\n\n", 2000));
    for (int i = 0; i < 200 && !drained; i++)
        pump(5);
    cr_assert_eq(drained, 1);
    cr_assert_eq(rg_http_stream_on_drain(held[0], on_drained), 0, "nothing queued: at once");
    for (int i = 0; i < 200 && drained < 2; i++)
        pump(5);
    cr_assert_eq(drained, 2);
    int small = 4096;
    setsockopt(c.fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
    static char data[65536];
    memset(data, 'd', sizeof data - 1);
    uint64_t t0 = now_ms(); /* the stall timer starts with the first of these */
    for (int i = 0; i < 128; i++) /* 8 MiB: more than the sockets hold */
        cr_assert_eq(rg_http_stream_send(held[0], NULL, "big", data), 0);
    cr_assert_eq(rg_http_stream_on_drain(held[0], on_drained), 0);
    for (int i = 0; i < 400 && closes == 0; i++)
        pump(5);
    cr_assert_eq(closes, 1, "a stalled stream was not closed");
    cr_assert_geq(now_ms() - t0, 250);
    cr_assert_eq(drained, 2, "no drain callback after the stream closed");
    cr_assert_eq(stats().slow_streams, 1);
    stop();
    cli_close(&c);
}

/* ---- lifetime ----------------------------------------------------------- */

Test(http, close_while_handler_owes_response)
{
    start(NULL, M_HOLD);
    client a, b;
    cli_open(&a);
    cli_open(&b);
    cli_send(&a, "GET /held HTTP/1.1\r\n\r\n");
    cli_send(&b, "GET /stream HTTP/1.1\r\n\r\n");
    for (int i = 0; i < 200 && nheld < 2; i++)
        pump(5);
    cr_assert_eq(nheld, 2);
    rg_http_stats st = stats();
    cr_assert_eq(st.requests, 2);
    cr_assert_eq(st.connections, 2);
    stop(); /* the loop is closed: the held connections' handles are gone */
    cli_drain(&a);
    cr_assert(a.eof);
    cr_assert_eq(a.len, 0);
    /* late answers are accepted and free what is left */
    rg_http_respond(held[0], 200, "text/plain", "late", 4);
    rg_http_stream_start(held[1], on_stream_close, &closes);
    cr_assert_eq(closes, 1);
    cr_assert_eq(closed_conn, held[1]);
    held[0] = held[1] = closed_conn = NULL; /* so that a leak would show */
    cli_close(&a);
    cli_close(&b);
}

/* Bytes malloc has handed out and not taken back (glibc). */
static size_t heap_in_use(void)
{
    struct mallinfo2 mi = mallinfo2();
    return mi.uordblks + mi.hblkhd;
}

/* n HTTP/1.0 requests to /raw whose Content-Type (echoed into the response)
 * is too long for the response's header block: each connection is closed
 * without a response. */
static void long_content_type_round(int n)
{
    char req[1024], ctype[700];
    memset(ctype, 'x', sizeof ctype - 1);
    ctype[sizeof ctype - 1] = '\0';
    snprintf(req, sizeof req, "POST /raw HTTP/1.0\r\nContent-Type: %s\r\nContent-Length: 0\r\n\r\n",
             ctype);
    start(NULL, M_ECHO);
    for (int i = 0; i < n; i++) {
        client c;
        cli_open(&c);
        cli_send(&c, req);
        cr_assert(cli_wait(&c, NULL, 2000), "server did not close");
        cr_assert_eq(c.len, 0, "got a response: %s", c.buf);
        cli_close(&c);
    }
    stop();
}

/* Fuzz regression (tests/fuzz/regressions/http/long-content-type-close): a
 * response that fails to be written to a non-keep-alive request left the
 * connection (17 KiB and its arena) owned by nobody. Every one is freed. */
Test(http, failed_response_to_http10_frees_connection)
{
    nrec = 0;
    long_content_type_round(1); /* whatever libuv and libc allocate once */
    nrec = 0;
    size_t before = heap_in_use();
    long_content_type_round(12);
    size_t after = heap_in_use();
    cr_assert_eq(nrec, 12);
    cr_assert_lt(after, before + 64 * 1024, "%zu bytes more in use after 12 connections",
                 after - before);
}

Test(http, listen_errors_leave_loop_closable)
{
    start(NULL, M_ECHO);
    rg_http_server *other = (rg_http_server *)&loop; /* must be reset */
    cr_assert_neq(rg_http_listen(&loop, "not-an-address", 0, NULL, handler, &recs, &other), 0);
    cr_assert_null(other);
    other = (rg_http_server *)&loop;
    cr_assert_neq(rg_http_listen(&loop, "127.0.0.1", port, NULL, handler, &recs, &other), 0);
    cr_assert_null(other);
    uv_run(&loop, UV_RUN_NOWAIT); /* releases the failed listener */
    client c;
    cli_open(&c);
    cli_send(&c, "GET /still HTTP/1.1\r\n\r\n");
    cr_assert(cli_wait(&c, "]", 2000));
    cr_assert_str_eq(c.buf, ok("GET /still ? []"));
    cli_close(&c);
    stop();
}
