/*
 * fuzz_http.c - libFuzzer harness for the HTTP server (runtime/service/http.c).
 *
 * One server lives on a libuv loop in this process for the whole run,
 * listening on 127.0.0.1 (port 0) with small limits and 10 ms timeouts.
 * Each input is one client connection on the same loop: the input bytes are
 * written, the client half-closes, reads until the server closes, and the
 * loop runs until the server has no connection left. The marker "\xff\xfe"
 * in the input splits it into separate writes; "\xff\xfd" does the same and
 * waits 15 ms before the next write (so timeouts fire; at most 2 per input);
 * "\xff\xfc" resets the connection (RST) instead of going on.
 * The handler answers every request: later from a timer (path "/later..."),
 * as an SSE stream (path "/stream..."), or at once, echoing the request with
 * the status named by a 3-digit query and the request's Content-Type.
 * Checks: the request handed over keeps http.h's contract (decoded path
 * without ".." segments, NUL-ended body), the reply starts "HTTP/1.1 ",
 * and the connection ends within 3 s (else the harness aborts: a hang).
 */
#include "service/http.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define HANG_MS 3000
#define PAUSE_MS 15
#define MAX_PAUSES 2

#define CHECK(cond)                                                                    \
    do {                                                                               \
        if (!(cond)) {                                                                 \
            fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond);   \
            abort();                                                                   \
        }                                                                              \
    } while (0)

static uv_loop_t *loop;
static rg_http_server *srv;
static struct sockaddr_in addr;
static uv_timer_t tick, later_timer;

/* ---- the server's side: a handler that answers everything --------------- */

typedef struct later {
    rg_http_conn *c;
    const char *body; /* the request's body: valid until the response */
    size_t len;
} later;
static later pending[8];
static int npending, streams;
static rg_http_conn *stream_closed; /* the stream whose on_close ran last */

static void on_later(uv_timer_t *t)
{
    (void)t;
    later now[8];
    int n = npending;
    memcpy(now, pending, sizeof now);
    npending = 0;
    for (int i = 0; i < n; i++) /* may dispatch pipelined requests: new pending */
        rg_http_respond(now[i].c, 202, "text/plain", now[i].body, now[i].len);
}

static void on_stream_close(void *ud, rg_http_conn *c)
{
    (void)ud;
    stream_closed = c;
    streams--;
}

static void check_request(const rg_http_req *r)
{
    CHECK(r->method && r->path && r->query && r->body && r->peer);
    CHECK(r->path[0] == '/' && r->body[r->body_len] == '\0');
    for (const char *s = r->path; (s = strstr(s, "/..")); s++)
        CHECK(s[3] != '/' && s[3] != '\0');
    const char *opt[] = {r->authorization, r->last_event_id, r->content_type};
    size_t n = strlen(r->method) + strlen(r->query) + strlen(r->peer); /* all readable */
    for (int i = 0; i < 3; i++)
        n += opt[i] ? strlen(opt[i]) : 0;
    CHECK(n > 0);
}

static void handler(void *ud, rg_http_conn *c, const rg_http_req *r)
{
    (void)ud;
    check_request(r);
    if (strncmp(r->path, "/stream", 7) == 0) { /* req dies in rg_http_stream_start */
        char *id = strdup(r->query), *text = strdup(r->body);
        CHECK(id && text);
        streams++;
        stream_closed = NULL;
        rg_http_stream_start(c, on_stream_close, NULL);
        if (stream_closed != c && rg_http_stream_send(c, id, "echo", text) == 0)
            rg_http_stream_ping(c);
        free(id);
        free(text);
        return;
    }
    if (strncmp(r->path, "/later", 6) == 0) {
        CHECK(npending < (int)(sizeof pending / sizeof pending[0]));
        pending[npending++] = (later){c, r->body, r->body_len};
        uv_timer_start(&later_timer, on_later, 0, 0);
        return;
    }
    int status = 200;
    if (strlen(r->query) == 3 && strspn(r->query, "0123456789") == 3)
        status = atoi(r->query);
    size_t cap = strlen(r->method) + strlen(r->path) + strlen(r->query) + r->body_len + 8;
    char *out = malloc(cap);
    CHECK(out);
    int n = snprintf(out, cap, "%s %s?%s\n", r->method, r->path, r->query);
    memcpy(out + n, r->body, r->body_len);
    rg_http_respond(c, status, r->content_type, out, (size_t)n + r->body_len);
    free(out);
}

/* ---- the client's side -------------------------------------------------- */

static struct client {
    uv_tcp_t tcp;
    uv_connect_t conn;
    uv_write_t wr;
    uv_shutdown_t shut;
    int connect_status, connected, writing, closing, closed;
    size_t got, headlen;
    char head[9]; /* the first bytes received */
} cl;

static void on_connect(uv_connect_t *req, int status)
{
    (void)req;
    cl.connect_status = status;
    cl.connected = 1;
}

static void on_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
    static char rbuf[65536];
    (void)h, (void)hint;
    *buf = uv_buf_init(rbuf, sizeof rbuf);
}

static void on_closed(uv_handle_t *h)
{
    (void)h;
    cl.closed = 1;
}

static void client_close(void)
{
    if (!cl.closing) {
        cl.closing = 1;
        uv_close((uv_handle_t *)&cl.tcp, on_closed);
    }
}

static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
    (void)s;
    if (n < 0) {
        client_close();
        return;
    }
    size_t take = sizeof cl.head - cl.headlen;
    take = (size_t)n < take ? (size_t)n : take;
    memcpy(cl.head + cl.headlen, buf->base, take);
    cl.headlen += take;
    cl.got += (size_t)n;
}

static void on_write(uv_write_t *req, int status)
{
    (void)req, (void)status;
    cl.writing = 0;
}

static void on_shutdown(uv_shutdown_t *req, int status) { (void)req, (void)status; }

static void on_tick(uv_timer_t *t) { (void)t; } /* wakes uv_run(UV_RUN_ONCE) */

/* ---- driving the loop --------------------------------------------------- */

static uint64_t started;

static uint64_t elapsed_ms(void) { return (uv_hrtime() - started) / 1000000; }

static int connected(void) { return cl.connected; }
static int written(void) { return !cl.writing; }
static int all_closed(void)
{
    rg_http_stats st;
    rg_http_stats_get(srv, &st);
    return cl.closed && st.connections == 0 && st.streams == 0 && streams == 0 && npending == 0;
}

/* Runs the loop until done() holds (done NULL: for ms milliseconds); aborts
 * when the input has taken HANG_MS. */
static void run_until(int (*done)(void), uint64_t ms)
{
    uint64_t until = elapsed_ms() + ms;
    while (done ? !done() : elapsed_ms() < until) {
        if (elapsed_ms() > HANG_MS) {
            rg_http_stats st;
            rg_http_stats_get(srv, &st);
            fprintf(stderr, "fuzz_http: hang: %s after %llu ms (server: %d connections, "
                    "%d streams, %llu requests, %d responses owed)\n",
                    done == all_closed ? "the server did not close the connection"
                                       : "the client is stuck",
                    (unsigned long long)elapsed_ms(), st.connections, st.streams,
                    (unsigned long long)st.requests, npending);
            abort();
        }
        uv_run(loop, UV_RUN_ONCE);
    }
}

/* The next marker ("\xff\xfe", "\xff\xfd" or "\xff\xfc") in [p, end), or NULL. */
static const char *next_split(const char *p, const char *end)
{
    for (; p + 1 < end; p++)
        if (p[0] == '\xff' && (p[1] == '\xfe' || p[1] == '\xfd' || p[1] == '\xfc'))
            return p;
    return NULL;
}

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc, (void)argv;
    signal(SIGPIPE, SIG_IGN);
    loop = uv_default_loop();
    rg_http_limits lim = {1024, 4096, 4, 10, 10};
    int rc = rg_http_listen(loop, "127.0.0.1", 0, &lim, handler, NULL, &srv);
    if (rc) {
        fprintf(stderr, "fuzz_http: cannot listen: %s\n", uv_strerror(rc));
        abort();
    }
    uv_ip4_addr("127.0.0.1", rg_http_port(srv), &addr);
    uv_timer_init(loop, &tick);
    uv_timer_init(loop, &later_timer);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *p = (const char *)data, *end = p + size;
    int pauses = 0;
    memset(&cl, 0, sizeof cl);
    started = uv_hrtime();
    uv_timer_start(&tick, on_tick, 5, 5);
    CHECK(uv_tcp_init(loop, &cl.tcp) == 0);
    CHECK(uv_tcp_connect(&cl.conn, &cl.tcp, (const struct sockaddr *)&addr, on_connect) == 0);
    run_until(connected, 0);
    if (cl.connect_status < 0) {
        fprintf(stderr, "fuzz_http: cannot connect: %s\n", uv_strerror(cl.connect_status));
        abort();
    }
    CHECK(uv_read_start((uv_stream_t *)&cl.tcp, on_alloc, on_read) == 0);
    while (p <= end && !cl.closing) {
        const char *m = next_split(p, end);
        size_t n = (size_t)((m ? m : end) - p);
        if (n) {
            uv_buf_t b = uv_buf_init((char *)p, (unsigned)n);
            cl.writing = 1;
            if (uv_write(&cl.wr, (uv_stream_t *)&cl.tcp, &b, 1, on_write) != 0)
                break;
            run_until(written, 0);
        }
        if (!m)
            break;
        if (m[1] == '\xfc') { /* unless the server's close was read meanwhile */
            if (!cl.closing) {
                cl.closing = 1;
                CHECK(uv_tcp_close_reset(&cl.tcp, on_closed) == 0);
            }
            break;
        }
        if (m[1] == '\xfd' && pauses < MAX_PAUSES) {
            pauses++;
            run_until(NULL, PAUSE_MS);
        } else { /* let the server read this part on its own */
            uv_run(loop, UV_RUN_NOWAIT);
            uv_run(loop, UV_RUN_NOWAIT);
        }
        p = m + 2;
    }
    if (!cl.closing && uv_shutdown(&cl.shut, (uv_stream_t *)&cl.tcp, on_shutdown) != 0)
        client_close();
    run_until(all_closed, 0);
    uv_timer_stop(&tick);
    uv_run(loop, UV_RUN_NOWAIT); /* close callbacks */
    if (memcmp(cl.head, "HTTP/1.1 ", cl.headlen) != 0) {
        fprintf(stderr, "fuzz_http: the reply does not start with \"HTTP/1.1 \": \"%.*s\"\n",
                (int)cl.headlen, cl.head);
        abort();
    }
    return 0;
}
