/*
 * test_connections.c - what a client can hold of `regimen serve`, end to end
 * through the real binary on loopback (http.c's connection limits, api.c's
 * streams and pages, worklist.c's tickets):
 *   - 300 silent connections (from 127.0.0.2.. so that the per-address limit
 *     does not stop them first) leave /healthz and a token's POST answered
 *     in under a second: unauthenticated connections have their own slots
 *     and a silent one makes room for a new one;
 *   - one address cannot open more than max_connections_per_address;
 *   - one token's idle connections make room for another token's;
 *   - a silent connection is closed at the first-request deadline;
 *   - a client that pipelines GET /app.js and never reads leaves the
 *     service's memory bounded (reading stops while its answers are unsent)
 *     and is served again once it reads; such clients in every
 *     unauthenticated slot make room for /healthz;
 *   - 256 streams that never read, opened on a backlog of megabytes, cost
 *     other requests nothing and are dropped; a reading stream gets the
 *     backlog, page after page, in order;
 *   - streams are limited per token and per clinic;
 *   - GET /v1/alerts pages give every alert exactly once.
 * Every loop is bounded in count and time; every address is loopback.
 */
#define RG_TEST_SERVE
#include "helpers.h"

#include "core/rg.h"

#include <fcntl.h>
#include <pthread.h>

static server *live;

static void cleanup(void)
{
    server_kill(live);
}

#define TOKEN_A2 "north-second-token-0123456789"

/* An alert per ping, opened at once; its message msg_len bytes long. */
static char *alert_protocol(int msg_len)
{
    char *p = malloc(1024);
    snprintf(p, 1024,
             "local R = require 'regimen'\n"
             "return R.protocol { id = 'each', version = '1.0',\n"
             "  rules = { { id = 'each.ping', severity = 'info', check = function(h, now, p)\n"
             "      local last = h:last('ping')\n"
             "      if last then return R.alert { key = last.id, message = string.rep('m', %d) } "
             "end\n"
             "    end } } }\n",
             msg_len);
    return p;
}

/* Two clinics (north with two tokens), and these limits (JSON members). */
static void setup(server *s, const char *protocol, const char *limits)
{
    char cfg[2048];
    server_setup(s, protocol, protocol);
    snprintf(cfg, sizeof cfg,
             "{ \"listen\": \"127.0.0.1:0\",\n"
             "  \"clinics\": {\n"
             "    \"north\": { \"protocols\": \"a\", \"tokens\": [\"" TOKEN_A "\", \"" TOKEN_A2
             "\"] },\n"
             "    \"south\": { \"protocols\": \"b\", \"tokens\": [\"" TOKEN_B "\"] } },\n"
             "  \"limits\": { \"max_instructions\": 2000000, \"deadline_ms\": 500%s%s } }\n",
             limits ? ", " : "", limits ? limits : "");
    rg_test_write(s->dir, "config.json", cfg);
    live = s;
    server_start(s);
}

/* A connection to the service from a loopback address of our choice. */
static int connect_from(int port, const char *from, int rcvbuf)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    cr_assert_geq(fd, 0);
    struct sockaddr_in src = {.sin_family = AF_INET}, dst = {.sin_family = AF_INET,
                                                             .sin_port = htons((uint16_t)port)};
    inet_pton(AF_INET, from, &src.sin_addr);
    inet_pton(AF_INET, "127.0.0.1", &dst.sin_addr);
    if (rcvbuf)
        cr_assert_eq(setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf), 0);
    cr_assert_eq(bind(fd, (struct sockaddr *)&src, sizeof src), 0, "bind %s: %s", from,
                 strerror(errno));
    cr_assert_eq(connect(fd, (struct sockaddr *)&dst, sizeof dst), 0, "connect from %s: %s",
                 from, strerror(errno));
    return fd;
}

/* Waits up to ms for the metric to reach at least (or, with below, at most) want. */
static long metric_wait(int port, const char *name, long want, int below, int ms)
{
    long v = metric(port, name);
    for (int64_t end = now_ms() + ms; (below ? v > want : v < want) && now_ms() < end;) {
        usleep(20000);
        v = metric(port, name);
    }
    return v;
}

/* One request on a fresh connection; its status, and how long it took. */
static int timed(int port, const char *method, const char *path, const char *token,
                 const char *body, int64_t *ms)
{
    char *out;
    int64_t t0 = now_ms();
    int st = http(port, method, path, token, body, &out);
    *ms = now_ms() - t0;
    free(out);
    return st;
}

/* The service's resident memory, in KiB (VmRSS of /proc/PID/status). */
static long rss_kib(pid_t pid)
{
    char path[64], line[256];
    long kib = -1;
    snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
    FILE *f = fopen(path, "r");
    cr_assert_not_null(f, "%s: %s", path, strerror(errno));
    while (fgets(line, sizeof line, f))
        if (!strncmp(line, "VmRSS:", 6))
            kib = atol(line + 6);
    fclose(f);
    cr_assert_gt(kib, 0);
    return kib;
}

/* ---- unauthenticated connections ------------------------------------------------ */

Test(connections, silent_connections_leave_healthz_and_a_token_answered, .timeout = 60,
     .fini = cleanup)
{
    enum { N = 300, PER = 30 }; /* 10 addresses, each under the per-address 32 */
    server s = {0};
    char *proto = alert_protocol(10), from[32];
    setup(&s, proto, NULL);
    static int fds[N];
    for (int i = 0; i < N; i++) {
        snprintf(from, sizeof from, "127.0.0.%d", 2 + i / PER);
        fds[i] = connect_from(s.port, from, 0);
    }
    /* all 300 taken in: 128 hold the unauthenticated slots, the others made
     * room for later ones (each metric request makes room for itself too) */
    long evicted = metric_wait(s.port, "regimen_http_connections_evicted_total", N - 128, 0, 5000);
    cr_assert_geq(evicted, N - 128, "only %ld silent connections made room", evicted);
    long unauth = metric(s.port, "regimen_http_unauthenticated_connections");
    cr_assert(unauth >= 127 && unauth <= 128, "%ld unauthenticated", unauth); /* 127: ours left */

    int64_t ms;
    cr_assert_eq(timed(s.port, "GET", "/healthz", NULL, NULL, &ms), 200);
    cr_assert_lt(ms, 1000, "/healthz took %lld ms", (long long)ms);
    char *ev = ping("north", "n1", "p-1", now_ms(), "ping");
    cr_assert_eq(timed(s.port, "POST", "/v1/events", TOKEN_A, ev, &ms), 200);
    cr_assert_lt(ms, 1000, "POST /v1/events took %lld ms", (long long)ms);
    free(ev);
    cr_assert_eq(metric(s.port, "regimen_http_connections_refused_total"), 0);
    fprintf(stderr, "300 silent connections: %ld made room, /healthz and a POST in < 1 s\n",
            evicted);
    for (int i = 0; i < N; i++)
        close(fds[i]);
    cr_assert_eq(server_stop(&s, SIGTERM), 0, "%s", rg_test_read(s.log));
    free(proto);
    rg_test_rmdir(s.dir);
}

/* Waits up to ms for fd to be answered or closed; 503 if it got a 503, 0 if
 * closed without an answer, -1 if still open and silent. */
static int answered(int fd, int ms)
{
    struct pollfd p = {.fd = fd, .events = POLLIN};
    if (poll(&p, 1, ms) <= 0)
        return -1;
    char buf[64] = "";
    ssize_t r = recv(fd, buf, sizeof buf - 1, MSG_DONTWAIT);
    if (r <= 0)
        return 0;
    return !strncmp(buf, "HTTP/1.1 503", 12) ? 503 : 1;
}

Test(connections, one_address_cannot_take_more_than_its_share, .timeout = 60, .fini = cleanup)
{
    enum { N = 40, LIMIT = 32 }; /* the default max_connections_per_address */
    server s = {0};
    char *proto = alert_protocol(10);
    setup(&s, proto, NULL);
    int fds[N], refused = 0;
    for (int i = 0; i < N; i++)
        fds[i] = connect_from(s.port, "127.0.0.2", 0);
    cr_assert_eq(metric_wait(s.port, "regimen_http_connections_refused_total", N - LIMIT, 0, 5000),
                 N - LIMIT);
    for (int i = 0; i < N; i++)
        refused += answered(fds[i], i >= LIMIT ? 2000 : 0) == 503;
    cr_assert_eq(refused, N - LIMIT, "%d of %d connections of one address refused", refused, N);
    cr_assert_eq(metric(s.port, "regimen_http_connections_evicted_total"), 0,
                 "one address pushed out no one");
    /* another address is served at once; the full one still refused */
    int fd = connect_from(s.port, "127.0.0.3", 0);
    const char req[] = "GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
    cr_assert_eq(write(fd, req, sizeof req - 1), (ssize_t)sizeof req - 1);
    char *out;
    cr_assert_eq(http_read(fd, &out), 200, "%s", out);
    free(out);
    fd = connect_from(s.port, "127.0.0.2", 0);
    cr_assert_eq(answered(fd, 2000), 503);
    close(fd);
    for (int i = 0; i < N; i++)
        close(fds[i]);
    cr_assert_eq(server_stop(&s, SIGTERM), 0, "%s", rg_test_read(s.log));
    free(proto);
    rg_test_rmdir(s.dir);
}

Test(connections, a_silent_connection_is_closed_at_the_first_request_deadline, .timeout = 60,
     .fini = cleanup)
{
    server s = {0};
    char *proto = alert_protocol(10);
    setup(&s, proto, NULL); /* the default first_request_timeout_ms: 5 s */
    int fd = connect_from(s.port, "127.0.0.2", 0);
    int64_t t0 = now_ms();
    int got = answered(fd, 9000);
    int64_t dt = now_ms() - t0;
    cr_assert_eq(got, 0, "not closed within 9 s (%d)", got);
    cr_assert(dt >= 4500 && dt < 8000, "closed after %lld ms", (long long)dt);
    close(fd);
    /* begun but not finished within the deadline: 408 */
    fd = connect_from(s.port, "127.0.0.2", 0);
    cr_assert_eq(write(fd, "GET /healthz HTTP/1.1\r\n", 23), 23);
    char *out;
    t0 = now_ms();
    cr_assert_eq(http_read(fd, &out), 408, "%s", out);
    cr_assert_lt(now_ms() - t0, 8000);
    free(out);
    cr_assert_eq(server_stop(&s, SIGTERM), 0, "%s", rg_test_read(s.log));
    free(proto);
    rg_test_rmdir(s.dir);
}

/* One token's idle keep-alive connections cannot hold every authenticated
 * slot: the oldest idle one makes room for another client's token. */
Test(connections, idle_connections_of_one_token_make_room_for_another, .timeout = 60,
     .fini = cleanup)
{
    enum { SLOTS = 8 };
    server s = {0};
    char *proto = alert_protocol(10);
    setup(&s, proto, "\"max_connections\": 8");
    int fds[SLOTS];
    static const char req[] = "GET /v1/alerts?limit=1 HTTP/1.1\r\nHost: x\r\n"
                              "Authorization: Bearer " TOKEN_A "\r\n\r\n";
    for (int i = 0; i < SLOTS; i++) {
        fds[i] = connect_from(s.port, "127.0.0.2", 0);
        cr_assert_eq(write(fds[i], req, sizeof req - 1), (ssize_t)sizeof req - 1);
        char buf[4096];
        struct pollfd p = {.fd = fds[i], .events = POLLIN};
        cr_assert_eq(poll(&p, 1, 5000), 1);
        ssize_t r = read(fds[i], buf, sizeof buf - 1);
        cr_assert_gt(r, 0);
        buf[r] = '\0';
        cr_assert(!strncmp(buf, "HTTP/1.1 200", 12), "%s", buf); /* kept alive */
    }
    int64_t ms;
    char *ev = ping("south", "s1", "p-s1", now_ms(), "ping");
    cr_assert_eq(timed(s.port, "POST", "/v1/events", TOKEN_B, ev, &ms), 200);
    cr_assert_lt(ms, 1000);
    free(ev);
    cr_assert_eq(answered(fds[0], 2000), 0, "the oldest idle connection was not closed");
    cr_assert_geq(metric(s.port, "regimen_http_connections_evicted_total"), 1);
    for (int i = 0; i < SLOTS; i++)
        close(fds[i]);
    cr_assert_eq(server_stop(&s, SIGTERM), 0, "%s", rg_test_read(s.log));
    free(proto);
    rg_test_rmdir(s.dir);
}

/* ---- answers nobody reads ---------------------------------------------------------- */

/* Opens a connection from `from` that pipelines up to max GET /app.js and
 * reads nothing (a tiny receive window): writes until max requests, or the
 * socket takes nothing for 1 s, or 10 s. Returns the requests written. */
static long pipeline(int port, const char *from, int max, int *fd)
{
    static const char req[] = "GET /app.js HTTP/1.1\r\nHost: x\r\n\r\n";
    static char burst[100 * (sizeof req - 1)];
    for (int i = 0; i < 100; i++)
        memcpy(burst + i * (sizeof req - 1), req, sizeof req - 1);
    *fd = connect_from(port, from, 4096);
    fcntl(*fd, F_SETFL, O_NONBLOCK);
    size_t off = 0;
    long n = 0;
    int64_t start = now_ms(), stuck = 0;
    while (n < max && now_ms() - start < 10000) {
        ssize_t w = send(*fd, burst + off, sizeof burst - off, MSG_NOSIGNAL);
        if (w > 0) {
            off += (size_t)w;
            stuck = 0;
            if (off == sizeof burst) {
                off = 0;
                n += 100;
            }
            continue;
        }
        cr_assert(w < 0 && errno == EAGAIN, "send: %s", strerror(errno));
        if (!stuck)
            stuck = now_ms();
        if (now_ms() - stuck > 1000)
            break;
        usleep(10000);
    }
    return n;
}

/* Waits (up to 10 s) until the service stops reading requests; returns its
 * count of requests then. */
static long requests_settled(int port)
{
    long before = -2, now = metric(port, "regimen_http_requests_total");
    for (int i = 0; i < 50 && now - before > 1; i++) { /* 1: the metric request itself */
        usleep(200000);
        before = now;
        now = metric(port, "regimen_http_requests_total");
    }
    cr_assert_leq(now - before, 1, "the service kept reading requests");
    return now;
}

Test(connections, a_never_reading_pipeliner_leaves_memory_bounded, .timeout = 90, .fini = cleanup)
{
    enum { CONNS = 2, MAX_REQ = 10000 };
    server s = {0};
    char *proto = alert_protocol(10), *out;
    /* (an idle connection, one whose last answer is queued, is closed after
     * idle_timeout_ms, 30 s by default, however much of it is still unsent:
     * on a loaded machine the writing and the settling below could take that
     * long before the client reads, and it then found its connection closed) */
    setup(&s, proto, "\"idle_timeout_ms\": 120000");
    cr_assert_eq(http(s.port, "GET", "/app.js", NULL, NULL, &out), 200);
    size_t app_js = strlen(out);
    free(out);
    long base = rss_kib(s.pid);
    int fds[CONNS];
    long written = 0;
    for (int c = 0; c < CONNS; c++)
        written += pipeline(s.port, "127.0.0.1", MAX_REQ, &fds[c]);
    /* the service stops reading: its count of requests stops moving */
    long now = requests_settled(s.port);
    long rss = rss_kib(s.pid);
    /* Per connection at most max_unsent_bytes (1 MiB) of answers, plus the
     * one answer that crossed it (app.js) and the read buffer and request
     * arena (48 KiB), wait in the service; 16 MiB more for the allocator's
     * slack. Without the cap every request written is an app.js queued:
     * MAX_REQ x app.js = 160 MiB a connection. */
    long bound = base + CONNS * (1024 + (long)app_js / 1024 + 1 + 48) + 16 * 1024;
    fprintf(stderr, "pipelining without reading: %ld requests written, %ld read; RSS %ld KiB "
                    "(was %ld, bound %ld)\n", written, now, rss, base, bound);
    cr_assert_lt(rss, bound, "RSS %ld KiB, bound %ld KiB (base %ld)", rss, bound, base);
    cr_assert_lt(now, written, "every request was read: nothing held back");
    /* once the client reads, it is served again: it reads until the service
     * has read 100 more requests (each look at the metric is one more), for
     * up to 30 s. (Not a fixed 4 MiB: how many answers wait in the kernel's
     * buffers, which TCP sizes as it goes, and how soon the service takes
     * the next requests varied with the machine's load; under load 4 MiB
     * could all be answers already queued.) */
    char buf[65536];
    long looks = 0, read_since = 0, got = 0;
    int64_t t0 = now_ms();
    for (int64_t end = t0 + 30000; now_ms() < end && read_since <= 100;) {
        struct pollfd p = {.fd = fds[0], .events = POLLIN};
        for (int i = 0; i < 64 && poll(&p, 1, 500) > 0; i++) {
            ssize_t r = read(fds[0], buf, sizeof buf);
            cr_assert_gt(r, 0, "the connection closed");
            got += r;
        }
        read_since = metric(s.port, "regimen_http_requests_total") - ++looks - now;
    }
    fprintf(stderr, "reading again: %ld KiB read in %ld ms, %ld more requests read\n",
            got / 1024, (long)(now_ms() - t0), read_since);
    cr_assert_gt(read_since, 100, "reading did not resume once answers were read");
    for (int c = 0; c < CONNS; c++)
        close(fds[c]);
    cr_assert_eq(server_stop(&s, SIGTERM), 0, "%s", rg_test_read(s.log));
    free(proto);
    rg_test_rmdir(s.dir);
}

/* Connections that take answers and never read them hold no slot that
 * /healthz needs: with every unauthenticated slot taken by such a client,
 * the oldest is closed to make room. */
Test(connections, non_reading_clients_make_room_for_healthz, .timeout = 90, .fini = cleanup)
{
    enum { CONNS = 4 };
    server s = {0};
    char *proto = alert_protocol(10), *out;
    setup(&s, proto, "\"max_unauthenticated_connections\": 4");
    int fds[CONNS];
    for (int c = 0; c < CONNS; c++) {
        pipeline(s.port, "127.0.0.2", 2000, &fds[c]);
        /* answered at least once: the service has read it, it is not just
         * a request waiting in a socket (which is never closed to make room) */
        struct pollfd p = {.fd = fds[c], .events = POLLIN};
        cr_assert_eq(poll(&p, 1, 5000), 1, "client %d got no answer", c);
    }
    int64_t t0 = now_ms();
    cr_assert_eq(http(s.port, "GET", "/healthz", NULL, NULL, &out), 200, "%s", out);
    cr_assert_lt(now_ms() - t0, 1000);
    free(out);
    cr_assert_geq(metric(s.port, "regimen_http_connections_evicted_total"), 1);
    cr_assert_eq(metric(s.port, "regimen_http_connections_refused_total"), 0);
    for (int c = 0; c < CONNS; c++)
        close(fds[c]);
    cr_assert_eq(server_stop(&s, SIGTERM), 0, "%s", rg_test_read(s.log));
    free(proto);
    rg_test_rmdir(s.dir);
}

/* ---- streams --------------------------------------------------------------------------- */

/* POSTs n pings of new patients (n alerts, n transitions), in requests of 500. */
static void post_pings(int port, const char *clinic, const char *token, const char *prefix,
                       int n)
{
    for (int done = 0; done < n;) {
        int k = n - done < 500 ? n - done : 500;
        size_t cap = (size_t)k * 200 + 16, len = 1;
        char *body = malloc(cap), *out, id[64];
        body[0] = '[';
        for (int i = 0; i < k; i++) {
            snprintf(id, sizeof id, "%s%d", prefix, done + i);
            char *ev = ping(clinic, id, id, now_ms(), "ping");
            len += (size_t)snprintf(body + len, cap - len, "%s%s", i ? "," : "", ev);
            free(ev);
        }
        snprintf(body + len, cap - len, "]");
        cr_assert_eq(http(port, "POST", "/v1/events", token, body, &out), 200, "%.300s", out);
        free(out);
        free(body);
        done += k;
    }
}

typedef struct opener {
    int port, n, *fds;
} opener;

/* Opens n streams after=0 with a tiny receive window, writing each request
 * without waiting for an answer (no asserts off the main thread). */
static void *open_streams(void *ud)
{
    opener *o = ud;
    for (int i = 0; i < o->n; i++) {
        int fd = socket(AF_INET, SOCK_STREAM, 0), small = 4096;
        struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)o->port)};
        inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
        setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
        o->fds[i] = -1;
        if (connect(fd, (struct sockaddr *)&a, sizeof a) != 0) {
            close(fd);
            continue;
        }
        static const char req[] = "GET /v1/transitions/stream?after=0 HTTP/1.1\r\nHost: x\r\n"
                                  "Authorization: Bearer " TOKEN_A "\r\n\r\n";
        if (write(fd, req, sizeof req - 1) != (ssize_t)sizeof req - 1) {
            close(fd);
            continue;
        }
        o->fds[i] = fd;
    }
    return NULL;
}


Test(connections, slow_stream_readers_on_a_backlog_cost_the_others_nothing, .timeout = 180,
     .fini = cleanup)
{
    enum { STREAMS = 256, BACKLOG = 1500 };
    server s = {0};
    char *proto = alert_protocol(2000);
    setup(&s, proto, "\"max_streams_per_clinic\": 256, \"max_streams_per_token\": 256, "
                     "\"stream_stall_ms\": 2000, \"max_unauthenticated_connections\": 1024, "
                     "\"max_connections_per_address\": 1024, \"max_connections\": 1024");
    post_pings(s.port, "north", TOKEN_A, "b", BACKLOG); /* about 3.5 MB of backlog */
    long base = rss_kib(s.pid);
    int64_t ms_quiet;
    char *quiet = ping("south", "s0", "p-s0", now_ms(), "ping");
    cr_assert_eq(timed(s.port, "POST", "/v1/events", TOKEN_B, quiet, &ms_quiet), 200);
    free(quiet);

    static int fds[STREAMS];
    opener o = {s.port, STREAMS, fds};
    pthread_t th;
    cr_assert_eq(pthread_create(&th, NULL, open_streams, &o), 0);
    pthread_join(th, NULL);
    int64_t ms_health, ms_post;
    cr_assert_eq(timed(s.port, "GET", "/healthz", NULL, NULL, &ms_health), 200);
    char *ev = ping("south", "s1", "p-s1", now_ms(), "ping");
    cr_assert_eq(timed(s.port, "POST", "/v1/events", TOKEN_B, ev, &ms_post), 200);
    free(ev);
    long streams = metric(s.port, "regimen_http_streams");
    long rss = rss_kib(s.pid);
    fprintf(stderr, "%d slow streams on a backlog of %d: /healthz %lld ms, POST %lld ms "
                    "(%lld ms before), %ld streams open, RSS %ld KiB (was %ld)\n", STREAMS,
            BACKLOG, (long long)ms_health, (long long)ms_post, (long long)ms_quiet, streams, rss,
            base);
    cr_assert_lt(ms_health, 1000, "/healthz took %lld ms", (long long)ms_health);
    cr_assert_lt(ms_post, 1000, "another clinic's POST took %lld ms", (long long)ms_post);
    cr_assert_eq(streams, STREAMS, "every stream was opened");
    /* each stream holds at most a page (64 KiB of transitions) plus what the
     * kernel did not take; 64 MiB more for the allocator and SQLite. Sending
     * each the whole backlog would be 256 x 3.5 MB. */
    cr_assert_lt(rss, base + STREAMS * 96 + 64 * 1024, "RSS %ld KiB (base %ld)", rss, base);

    /* none of them reads: each is dropped once its page has not moved for 2 s */
    cr_assert_eq(metric_wait(s.port, "regimen_http_streams", 0, 1, 20000), 0,
                 "slow readers were not dropped");
    cr_assert_geq(metric(s.port, "regimen_http_streams_dropped_total"), STREAMS);
    for (int i = 0; i < STREAMS; i++)
        if (fds[i] >= 0)
            close(fds[i]);

    /* a reader gets the whole backlog, page after page, in order, then live */
    int fd = connect_to(s.port);
    cr_assert_geq(fd, 0);
    static const char req[] = "GET /v1/transitions/stream HTTP/1.1\r\nHost: x\r\n"
                              "Authorization: Bearer " TOKEN_A "\r\nLast-Event-ID: 0\r\n\r\n";
    cr_assert_eq(write(fd, req, sizeof req - 1), (ssize_t)sizeof req - 1);
    long last = 0;
    read_ids(fd, &last, BACKLOG);
    post_pings(s.port, "north", TOKEN_A, "live", 1);
    read_ids(fd, &last, BACKLOG + 1);
    close(fd);
    cr_assert_eq(server_stop(&s, SIGTERM), 0, "%s", rg_test_read(s.log));
    free(proto);
    rg_test_rmdir(s.dir);
}

/* Opens a stream; returns the fd and the status of its answer. */
static int open_stream(int port, const char *token, const char *ticket, int *status)
{
    int fd = connect_to(port);
    cr_assert_geq(fd, 0);
    char req[512], head[512];
    int n = token ? snprintf(req, sizeof req, "GET /v1/transitions/stream HTTP/1.1\r\nHost: x\r\n"
                                              "Authorization: Bearer %s\r\n\r\n", token)
                  : snprintf(req, sizeof req, "GET /v1/transitions/stream?ticket=%s HTTP/1.1\r\n"
                                              "Host: x\r\n\r\n", ticket);
    cr_assert_eq(write(fd, req, (size_t)n), n);
    struct pollfd p = {.fd = fd, .events = POLLIN};
    cr_assert_eq(poll(&p, 1, 5000), 1, "no answer");
    ssize_t r = read(fd, head, sizeof head - 1);
    cr_assert_gt(r, 0);
    head[r] = '\0';
    *status = 0;
    sscanf(head, "HTTP/1.1 %d", status);
    return fd;
}

Test(connections, streams_are_limited_per_token_and_per_clinic, .timeout = 60, .fini = cleanup)
{
    server s = {0};
    char *proto = alert_protocol(10), *out;
    setup(&s, proto, "\"max_streams_per_token\": 2, \"max_streams_per_clinic\": 3");
    int st, a1 = open_stream(s.port, TOKEN_A, NULL, &st);
    cr_assert_eq(st, 200);
    int a2 = open_stream(s.port, TOKEN_A, NULL, &st);
    cr_assert_eq(st, 200);
    int x = open_stream(s.port, TOKEN_A, NULL, &st);
    cr_assert_eq(st, 429, "a third stream of one token");
    close(x);
    /* a ticket counts for the token that asked for it */
    cr_assert_eq(http(s.port, "POST", "/v1/stream-tickets", TOKEN_A, NULL, &out), 201, "%s", out);
    char tk[65];
    snprintf(tk, sizeof tk, "%.64s", strstr(out, "\"ticket\":\"") + 10);
    free(out);
    x = open_stream(s.port, NULL, tk, &st);
    cr_assert_eq(st, 429, "a ticket of a token at its limit");
    close(x);
    int b1 = open_stream(s.port, TOKEN_A2, NULL, &st);
    cr_assert_eq(st, 200, "the clinic's other token");
    x = open_stream(s.port, TOKEN_A2, NULL, &st);
    cr_assert_eq(st, 429, "a fourth stream of the clinic");
    close(x);
    int c1 = open_stream(s.port, TOKEN_B, NULL, &st);
    cr_assert_eq(st, 200, "another clinic is not affected");
    /* a stream that ends gives its place back */
    close(a1);
    cr_assert_eq(metric_wait(s.port, "regimen_http_streams", 3, 1, 5000), 3);
    a1 = open_stream(s.port, TOKEN_A, NULL, &st);
    cr_assert_eq(st, 200);
    close(a1);
    close(a2);
    close(b1);
    close(c1);
    cr_assert_eq(server_stop(&s, SIGTERM), 0, "%s", rg_test_read(s.log));
    free(proto);
    rg_test_rmdir(s.dir);
}

/* ---- pages -------------------------------------------------------------------------- */

/* Adds the keys of a page's alerts to keys (n of them); returns the page's
 * next cursor (malloc'd) or NULL. */
static char *page_keys(const char *body, char **keys, int *n, int max)
{
    for (const char *p = body; (p = strstr(p, "{\"key\":\""));) {
        p += 8;
        const char *q = strchr(p, '"');
        cr_assert_lt(*n, max);
        keys[(*n)++] = strndup(p, (size_t)(q - p));
    }
    const char *nx = strstr(body, "\"next\":");
    cr_assert_not_null(nx, "no next: %.200s", body);
    nx += 7;
    if (!strncmp(nx, "null", 4))
        return NULL;
    cr_assert_eq(*nx, '"');
    return strndup(nx + 1, strcspn(nx + 1, "\""));
}

Test(connections, alert_pages_give_every_alert_exactly_once, .timeout = 60, .fini = cleanup)
{
    enum { FIRST = 450, MORE = 10, MAX = 1000 };
    server s = {0};
    char *proto = alert_protocol(10), *out, path[256];
    setup(&s, proto, NULL);
    post_pings(s.port, "north", TOKEN_A, "k", FIRST);
    post_pings(s.port, "south", TOKEN_B, "south", 5);

    /* without limit: the default page of 200, and a cursor */
    cr_assert_eq(http(s.port, "GET", "/v1/alerts", TOKEN_A, NULL, &out), 200);
    static char *keys[MAX];
    int n = 0, pages = 0;
    char *next = page_keys(out, keys, &n, MAX);
    free(out);
    cr_assert_eq(n, 200);
    cr_assert_not_null(next);
    free(next);
    for (int i = 0; i < n; i++)
        free(keys[i]);
    n = 0;

    /* pages of 100, with alerts opening between the first and the second */
    next = NULL;
    do {
        snprintf(path, sizeof path, "/v1/alerts?limit=100%s%s", next ? "&cursor=" : "",
                 next ? next : "");
        free(next);
        cr_assert_eq(http(s.port, "GET", path, TOKEN_A, NULL, &out), 200, "%s", out);
        int before = n;
        next = page_keys(out, keys, &n, MAX);
        free(out);
        cr_assert_leq(n - before, 100);
        if (++pages == 1)
            post_pings(s.port, "north", TOKEN_A, "later", MORE);
    } while (next && pages < 20);
    cr_assert_null(next, "more than 20 pages");
    cr_assert_eq(pages, 5);
    cr_assert_eq(n, FIRST + MORE, "%d alerts across the pages", n);
    qsort(keys, (size_t)n, sizeof *keys, rg_test_cmp_str);
    for (int i = 1; i < n; i++)
        cr_assert_str_neq(keys[i - 1], keys[i], "alert %s came twice", keys[i]);
    for (int i = 0; i < n; i++)
        free(keys[i]);
    /* state and patient filters page too; bad limits and cursors are 400 */
    cr_assert_eq(http(s.port, "GET", "/v1/alerts?state=open&limit=1000", TOKEN_A, NULL, &out), 200);
    n = 0;
    next = page_keys(out, keys, &n, MAX);
    cr_assert_null(next);
    cr_assert_eq(n, FIRST + MORE);
    for (int i = 0; i < n; i++)
        free(keys[i]);
    free(out);
    cr_assert_eq(http(s.port, "GET", "/v1/alerts?limit=1001", TOKEN_A, NULL, &out), 400);
    free(out);
    cr_assert_eq(http(s.port, "GET", "/v1/alerts?limit=0", TOKEN_A, NULL, &out), 400);
    free(out);
    cr_assert_eq(http(s.port, "GET", "/v1/alerts?cursor=abc", TOKEN_A, NULL, &out), 400);
    free(out);
    cr_assert_eq(server_stop(&s, SIGTERM), 0, "%s", rg_test_read(s.log));
    free(proto);
    rg_test_rmdir(s.dir);
}

/* The new limits are checked like the others: the file and field named. */
Test(connections, a_stream_limit_over_256_is_refused_naming_the_field, .timeout = 30)
{
    server s = {0};
    char *proto = alert_protocol(10), *out = NULL, *err = NULL;
    server_setup(&s, proto, proto);
    rg_test_write(s.dir, "config.json",
                  "{ \"listen\": \"127.0.0.1:0\", \"clinics\": { \"north\": { \"protocols\": \"a\","
                  " \"tokens\": [\"" TOKEN_A "\"] } }, \"limits\": { \"max_streams_per_clinic\": 300 } }");
    const char *args[] = {"serve", "--config", s.config, "--db", s.db, NULL};
    int rc = rg_test_run(args, NULL, &out, &err);
    cr_assert_eq(rc, 2, "exit %d: %s", rc, err);
    cr_assert(strstr(err, "config.json: limits.max_streams_per_clinic: expected a whole number "
                          "from 1 to 256"), "%s", err);
    free(out);
    free(err);
    free(proto);
    rg_test_rmdir(s.dir);
}
