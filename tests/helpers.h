/*
 * helpers.h - small helpers shared by the Criterion tests: temporary
 * directories, files, and running the real build/regimen binary.
 * Header-only (static functions) so each test binary stays one file.
 */
#ifndef RG_TEST_HELPERS_H
#define RG_TEST_HELPERS_H

#include <criterion/criterion.h>

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

/* A fresh directory under /tmp; removed by rg_test_rmdir. */
static inline void rg_test_tmpdir(char dir[256])
{
    snprintf(dir, 256, "/tmp/regimen-test-XXXXXX");
    cr_assert_not_null(mkdtemp(dir), "mkdtemp: %s", strerror(errno));
}

static inline void rg_test_rmdir(const char *dir)
{
    char cmd[512];
    snprintf(cmd, sizeof cmd, "rm -rf '%.480s'", dir);
    cr_assert_eq(system(cmd), 0);
}

/* Writes text to dir/name (creating dir/ subdirectories named in name). */
static inline void rg_test_write(const char *dir, const char *name, const char *text)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    for (char *p = path + strlen(dir) + 1; *p; p++)
        if (*p == '/') {
            *p = '\0';
            mkdir(path, 0700);
            *p = '/';
        }
    FILE *f = fopen(path, "w");
    cr_assert_not_null(f, "cannot write %s", path);
    fputs(text, f);
    fclose(f);
}

static inline char *rg_test_read(const char *path)
{
    FILE *f = fopen(path, "rb");
    cr_assert_not_null(f, "cannot read %s", path);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *s = malloc((size_t)n + 1);
    cr_assert_eq(fread(s, 1, (size_t)n, f), (size_t)n);
    s[n] = '\0';
    fclose(f);
    return s;
}

/* In a forked child: die with the test process. A test that fails mid-way
 * (an assertion ends its process) must not leave a server or a receiver
 * running behind it. */
static inline void rg_test_child(void)
{
    prctl(PR_SET_PDEATHSIG, SIGKILL);
}

static inline const char *rg_test_bin(void)
{
    const char *b = getenv("REGIMEN_BIN");
    return b && *b ? b : "build/regimen";
}

/* Runs the regimen binary with args (NULL-terminated, without argv[0]),
 * feeding in (may be NULL) on stdin; returns the exit status and the
 * captured stdout/stderr (malloc'd, caller frees). */
static inline int rg_test_run(const char *const *args, const char *in, char **out, char **err)
{
    int pin[2], pout[2], perr[2];
    cr_assert_eq(pipe(pin), 0);
    cr_assert_eq(pipe(pout), 0);
    cr_assert_eq(pipe(perr), 0);
    pid_t pid = fork();
    cr_assert_neq(pid, -1);
    if (pid == 0) {
        rg_test_child();
        const char *argv[64];
        int n = 0;
        argv[n++] = rg_test_bin();
        for (int i = 0; args[i] && n < 63; i++)
            argv[n++] = args[i];
        argv[n] = NULL;
        dup2(pin[0], 0);
        dup2(pout[1], 1);
        dup2(perr[1], 2);
        close(pin[1]);
        close(pout[0]);
        close(perr[0]);
        execv(argv[0], (char *const *)argv);
        _exit(127);
    }
    close(pin[0]);
    close(pout[1]);
    close(perr[1]);
    signal(SIGPIPE, SIG_IGN);
    if (in)
        (void)!write(pin[1], in, strlen(in));
    close(pin[1]);
    size_t cap[2] = {4096, 4096}, len[2] = {0, 0};
    char *buf[2] = {malloc(4096), malloc(4096)};
    struct pollfd fds[2] = {{.fd = pout[0], .events = POLLIN}, {.fd = perr[0], .events = POLLIN}};
    int open_fds = 2;
    while (open_fds) {
        poll(fds, 2, -1);
        for (int i = 0; i < 2; i++) {
            if (fds[i].fd < 0 || !(fds[i].revents & (POLLIN | POLLHUP)))
                continue;
            if (len[i] + 4096 > cap[i])
                buf[i] = realloc(buf[i], cap[i] *= 2);
            ssize_t r = read(fds[i].fd, buf[i] + len[i], cap[i] - len[i] - 1);
            if (r <= 0) {
                close(fds[i].fd);
                fds[i].fd = -1;
                open_fds--;
            } else {
                len[i] += (size_t)r;
            }
        }
    }
    buf[0][len[0]] = buf[1][len[1]] = '\0';
    int status;
    waitpid(pid, &status, 0);
    if (out)
        *out = buf[0];
    else
        free(buf[0]);
    if (err)
        *err = buf[1];
    else
        free(buf[1]);
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

/* ---- `regimen serve` end to end: the real binary on a free loopback port --------- */

/* Shared by test_serve.c and test_ops.c, which define RG_TEST_SERVE before
 * including this file (other tests have helpers of the same names). */
#ifdef RG_TEST_SERVE

#include <arpa/inet.h>
#include <dirent.h>
#include <netinet/in.h>
#include <sqlite3.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>

#define TOKEN_A "north-token-0123456789"
#define TOKEN_B "south-token-0123456789"

/* A protocol with second-scale times: a ping is answered by a pong within 2 s,
 * or the alert opens (time-driven) on its key. */
static const char fast_protocol[] =
    "local R = require 'regimen'\n"
    "return R.protocol { id = 'fast', version = '1.0',\n"
    "  params = { wait = R.seconds(2) },\n"
    "  rules = { { id = 'fast.ping-overdue', severity = 'warning', check = function(h, now, p)\n"
    "      local last = h:last('ping')\n"
    "      if last and #h:after(last, 'pong') == 0 then\n"
    "        return R.alert { key = last.id, due = last.at + p.wait, message = 'no pong' }\n"
    "      end\n"
    "    end } } }\n";

typedef struct server {
    char dir[256], db[512], config[512], log[512];
    pid_t pid;
    int port;
} server;

static inline int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static inline void iso(int64_t ms, char out[40])
{
    time_t s = (time_t)(ms / 1000);
    struct tm tm;
    gmtime_r(&s, &tm);
    size_t n = strftime(out, 40, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(out + n, 40 - n, ".%03dZ", (int)(ms % 1000));
}

/* The test protocols' own event types, declared (docs/protocols.md, "Event
 * types and their data fields"): a clinic whose sources read undeclared
 * types has the system alert regimen.protocol-check from its start, and its
 * reloads are refused. */
#define RG_TEST_EVENTS "return { events = { ping = {}, pong = {} } }\n"

/* Writes a config for clinics north (dir a/) and south (dir b/), each with
 * a clinic.lua that declares ping and pong (a test with types of its own
 * writes its own). */
static inline void server_setup(server *s, const char *protocol_a, const char *protocol_b)
{
    char cfg[2048];
    rg_test_tmpdir(s->dir);
    snprintf(s->db, sizeof s->db, "%s/serve.db", s->dir);
    snprintf(s->config, sizeof s->config, "%s/config.json", s->dir);
    snprintf(s->log, sizeof s->log, "%s/serve.log", s->dir);
    rg_test_write(s->dir, "a/p.lua", protocol_a);
    rg_test_write(s->dir, "b/p.lua", protocol_b);
    rg_test_write(s->dir, "a/clinic.lua", RG_TEST_EVENTS);
    rg_test_write(s->dir, "b/clinic.lua", RG_TEST_EVENTS);
    snprintf(cfg, sizeof cfg,
             "{ \"listen\": \"127.0.0.1:0\",\n"
             "  \"clinics\": {\n"
             "    \"north\": { \"protocols\": \"a\", \"tokens\": [\"" TOKEN_A "\"] },\n"
             "    \"south\": { \"protocols\": \"b\", \"tokens\": [\"" TOKEN_B "\"] } },\n"
             "  \"limits\": { \"max_instructions\": 2000000, \"deadline_ms\": 500 } }\n");
    rg_test_write(s->dir, "config.json", cfg);
}

static inline int count_listening(const char *log, int *port)
{
    int n = 0;
    for (const char *p = log; (p = strstr(p, "listening on 127.0.0.1:")); p++) {
        n++;
        *port = atoi(p + strlen("listening on 127.0.0.1:"));
    }
    return n;
}

/* Starts the binary and waits for a new "listening on" line in its log. */
static inline void server_start(server *s)
{
    int port = 0, before = 0;
    if (access(s->log, F_OK) == 0) {
        char *log = rg_test_read(s->log);
        before = count_listening(log, &port);
        free(log);
    }
    s->pid = fork();
    cr_assert_neq(s->pid, -1);
    if (s->pid == 0) {
        rg_test_child();
        int fd = open(s->log, O_WRONLY | O_CREAT | O_APPEND, 0600);
        dup2(fd, 2);
        dup2(fd, 1);
        execl(rg_test_bin(), rg_test_bin(), "serve", "--config", s->config, "--db", s->db,
              (char *)NULL);
        _exit(127);
    }
    for (int i = 0; i < 1000; i++) {
        if (access(s->log, F_OK) == 0) {
            char *log = rg_test_read(s->log);
            int n = count_listening(log, &port);
            free(log);
            if (n > before) {
                s->port = port;
                return;
            }
        }
        int status;
        cr_assert_eq(waitpid(s->pid, &status, WNOHANG), 0, "server exited early:\n%s",
                     rg_test_read(s->log));
        usleep(10000);
    }
    cr_assert_fail("server did not start:\n%s", rg_test_read(s->log));
}

/* Kills s's server (SIGKILL) if it still runs: for a test's .fini hook, so
 * that a test that failed mid-way leaves no `regimen serve` behind. */
static inline void server_kill(const server *s)
{
    int status;
    if (s && s->pid > 0 && waitpid(s->pid, &status, WNOHANG) == 0) {
        kill(s->pid, SIGKILL);
        waitpid(s->pid, &status, 0);
    }
}

static inline int server_stop(server *s, int sig)
{
    int status;
    kill(s->pid, sig);
    waitpid(s->pid, &status, 0);
    if (sig != SIGKILL) { /* a sanitizer build reports leaks and errors at exit */
        char *log = rg_test_read(s->log);
        cr_assert_null(strstr(log, "Sanitizer"), "sanitizer report from the server:\n%s", log);
        cr_assert_null(strstr(log, "runtime error:"), "UBSan report from the server:\n%s", log);
        free(log);
    }
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

/* A connection to 127.0.0.1:port whose connect, sends and receives give up
 * after ms (0: they wait as long as it takes); -1 when it cannot be made. */
static inline int connect_within(int port, int ms)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
    if (ms > 0) {
        struct timeval tv = {.tv_sec = ms / 1000, .tv_usec = (ms % 1000) * 1000};
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    }
    if (connect(fd, (struct sockaddr *)&a, sizeof a) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

static inline int connect_to(int port)
{
    return connect_within(port, 0);
}

/* Writes one request on fd (from connect_to or connect_within); returns fd,
 * or -1 (fd closed) when fd is -1 or the server is gone (a test killed it). */
static inline int http_write(int fd, const char *method, const char *path, const char *token,
                             const char *body, size_t blen)
{
    if (fd < 0)
        return -1;
    char head[1024];
    int n = snprintf(head, sizeof head,
                     "%s %s HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n"
                     "%s%s%sContent-Type: application/json\r\nContent-Length: %zu\r\n\r\n",
                     method, path, token ? "Authorization: Bearer " : "", token ? token : "",
                     token ? "\r\n" : "", blen);
    if (write(fd, head, (size_t)n) != n || (blen && write(fd, body, blen) != (ssize_t)blen)) {
        close(fd);
        return -1;
    }
    return fd;
}

/* Writes one request on a fresh connection; returns the socket, or -1 when
 * the server is gone (a test killed it). */
static inline int http_sendn(int port, const char *method, const char *path, const char *token,
                             const char *body, size_t blen)
{
    return http_write(connect_to(port), method, path, token, body, blen);
}

static inline int http_send(int port, const char *method, const char *path, const char *token,
                            const char *body)
{
    return http_sendn(port, method, path, token, body, body ? strlen(body) : 0);
}

/* Reads the response to http_send's request and closes the socket; returns
 * the status (0 when there was none), *body the body. With ms > 0 it stops
 * reading ms after it began (what came by then is the answer). */
static inline int http_read_within(int fd, int ms, char **out)
{
    if (fd < 0) {
        if (out)
            *out = strdup("");
        return 0;
    }
    size_t cap = 65536, len = 0;
    char *buf = malloc(cap);
    ssize_t r;
    struct timespec t0, t;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    while ((r = read(fd, buf + len, cap - len - 1)) > 0) {
        len += (size_t)r;
        if (len + 1 == cap)
            buf = realloc(buf, cap *= 2);
        clock_gettime(CLOCK_MONOTONIC, &t);
        if (ms > 0 && (t.tv_sec - t0.tv_sec) * 1000 + (t.tv_nsec - t0.tv_nsec) / 1000000 >= ms)
            break;
    }
    buf[len] = '\0';
    close(fd);
    int status = 0;
    sscanf(buf, "HTTP/1.1 %d", &status);
    char *sep = strstr(buf, "\r\n\r\n");
    if (out)
        *out = strdup(sep ? sep + 4 : "");
    free(buf);
    return status;
}

static inline int http_read(int fd, char **out)
{
    return http_read_within(fd, 0, out);
}

/* One request on a fresh connection; returns the status, *body the body. */
static inline int http(int port, const char *method, const char *path, const char *token,
                const char *body, char **out)
{
    return http_read(http_send(port, method, path, token, body), out);
}

/* http with connect, send and receive each bounded by ms and the whole
 * response read within ms: returns 0 (*body "") when the service is gone or
 * did not answer in time. */
static inline int http_within(int port, const char *method, const char *path, const char *token,
                              const char *body, int ms, char **out)
{
    return http_read_within(http_write(connect_within(port, ms), method, path, token, body,
                                       body ? strlen(body) : 0),
                            ms, out);
}

/* An SSE subscription: the socket, and what arrived so far. */
typedef struct stream {
    int fd;
    char buf[1 << 16];
    size_t len;
} stream;

static inline void stream_open(stream *st, int port, const char *token, const char *last_id)
{
    char req[512];
    st->fd = connect_to(port);
    cr_assert_geq(st->fd, 0, "connect: %s", strerror(errno));
    st->len = 0;
    int n = snprintf(req, sizeof req,
                     "GET /v1/transitions/stream HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\n"
                     "%s%s%s\r\n",
                     token, last_id ? "Last-Event-ID: " : "", last_id ? last_id : "",
                     last_id ? "\r\n" : "");
    cr_assert_eq(write(st->fd, req, (size_t)n), n);
}

/* Waits up to ms for text to appear on the stream; returns the ms it took or -1. */
static inline int stream_wait(stream *st, const char *text, int ms)
{
    int64_t start = now_ms();
    for (;;) {
        st->buf[st->len] = '\0';
        if (strstr(st->buf, text))
            return (int)(now_ms() - start);
        int left = ms - (int)(now_ms() - start);
        if (left <= 0)
            return -1;
        struct pollfd p = {.fd = st->fd, .events = POLLIN};
        if (poll(&p, 1, left) <= 0)
            continue;
        ssize_t r = read(st->fd, st->buf + st->len, sizeof st->buf - st->len - 1);
        if (r <= 0)
            return -1;
        st->len += (size_t)r;
    }
}

/* Whether the server closes the stream within ms (what arrives is read). */
static inline int stream_closed(stream *st, int ms)
{
    int64_t end = now_ms() + ms;
    while (now_ms() < end) {
        struct pollfd p = {.fd = st->fd, .events = POLLIN};
        if (poll(&p, 1, (int)(end - now_ms())) <= 0)
            continue;
        ssize_t r = read(st->fd, st->buf + st->len, sizeof st->buf - st->len - 1);
        if (r <= 0)
            return 1;
        st->len += (size_t)r;
        st->buf[st->len] = '\0';
    }
    return 0;
}

/* How many times what occurs in text (not overlapping). */
static inline int count_of(const char *text, const char *what)
{
    int n = 0;
    for (const char *p = text; (p = strstr(p, what)); p += strlen(what))
        n++;
    return n;
}

/* The value of the sample name (with its labels, if any: `name{k="v"}`) in
 * GET /metrics (as clinic north). */
static inline long metric(int port, const char *name)
{
    char *out, pat[128];
    long v = -1;
    cr_assert_eq(http(port, "GET", "/metrics", TOKEN_A, NULL, &out), 200, "%s", out);
    snprintf(pat, sizeof pat, "\n%s ", name);
    char *p = strstr(out, pat);
    if (p)
        v = atol(p + strlen(pat));
    free(out);
    cr_assert_geq(v, 0, "no %s in /metrics", name);
    return v;
}

static inline char *ping(const char *clinic, const char *id, const char *patient, int64_t at_ms,
                  const char *type)
{
    char at[40], *ev = malloc(512);
    iso(at_ms, at);
    snprintf(ev, 512,
             "{\"id\":\"%s\",\"clinic\":\"%s\",\"patient\":\"%s\",\"type\":\"%s\",\"at\":\"%s\"}",
             id, clinic, patient, type, at);
    return ev;
}

static inline int count_rows(const char *db, const char *sql)
{
    sqlite3 *h;
    sqlite3_stmt *st;
    cr_assert_eq(sqlite3_open_v2(db, &h, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    sqlite3_busy_timeout(h, 5000);
    cr_assert_eq(sqlite3_prepare_v2(h, sql, -1, &st, NULL), SQLITE_OK, "%s", sqlite3_errmsg(h));
    int n = sqlite3_step(st) == SQLITE_ROW ? sqlite3_column_int(st, 0) : -1;
    sqlite3_finalize(st);
    sqlite3_close(h);
    return n;
}

static inline void integrity_ok(const char *db)
{
    sqlite3 *h;
    sqlite3_stmt *st;
    cr_assert_eq(sqlite3_open_v2(db, &h, SQLITE_OPEN_READWRITE, NULL), SQLITE_OK);
    sqlite3_busy_timeout(h, 5000); /* another writer (regimen ingest) may hold it a moment */
    cr_assert_eq(sqlite3_prepare_v2(h, "PRAGMA integrity_check", -1, &st, NULL), SQLITE_OK,
                 "%s", sqlite3_errmsg(h));
    cr_assert_eq(sqlite3_step(st), SQLITE_ROW);
    cr_assert_str_eq((const char *)sqlite3_column_text(st, 0), "ok");
    sqlite3_finalize(st);
    sqlite3_close(h);
}

/* One POST of events that decide one another, on a started server of
 * server_setup's clinics (north: TOKEN_A): each item gets the outcome it
 * would get posted alone in order (a batch stores them in one call), a
 * conflict its own reason, a refusal its field. */
static inline void request_items_decide_in_order(const server *s)
{
    static const char body[] =
        "[{\"id\":\"m1\",\"clinic\":\"north\",\"patient\":\"p1\",\"type\":\"ping\","
        "\"at\":\"2026-03-02T10:00:00Z\"},"
        "{\"id\":\"m1\",\"clinic\":\"north\",\"patient\":\"p1\",\"type\":\"ping\","
        "\"at\":\"2026-03-02T10:00:00Z\"},"
        "{\"id\":\"m1\",\"clinic\":\"north\",\"patient\":\"p1\",\"type\":\"ping\","
        "\"at\":\"2026-03-02T11:00:00Z\"},"
        "{\"id\":\"m2\",\"clinic\":\"north\",\"patient\":\"p2\","
        "\"at\":\"2026-03-02T10:00:00Z\"},"
        "{\"id\":\"m3\",\"clinic\":\"north\",\"patient\":\"p3\",\"type\":\"ping\","
        "\"at\":\"2026-03-02T10:00:00Z\"},"
        "{\"id\":\"m3\",\"clinic\":\"north\",\"patient\":\"p3\",\"type\":\"ping\","
        "\"at\":\"2026-03-02T10:00:00Z\",\"version\":2,\"status\":\"entered-in-error\","
        "\"corrected_at\":\"2026-03-02T12:00:00Z\",\"corrected_by\":\"dr-lee\"},"
        "{\"id\":\"m4\",\"clinic\":\"south\",\"patient\":\"p4\",\"type\":\"ping\","
        "\"at\":\"2026-03-02T10:00:00Z\"},"
        "{\"id\":\"m5\",\"clinic\":\"north\",\"patient\":\"p5\",\"type\":\"ping\","
        "\"at\":\"2026-03-02T10:00:00Z\"}]";
    static const char *const want[] = {"stored", "duplicate", "conflict", "rejected",
                                       "stored", "corrected", "rejected", "stored"};
    char *out;
    cr_assert_eq(http(s->port, "POST", "/v1/events", TOKEN_A, body, &out), 200, "%s", out);
    const char *at = strstr(out, "\"results\":[");
    cr_assert_not_null(at, "%s", out);
    for (size_t i = 0; i < sizeof want / sizeof *want; i++) { /* each result's status, in order */
        char status[40];
        cr_assert_not_null(at = strstr(at, "\"status\":\""), "item %zu: %s", i, out);
        at += strlen("\"status\":\"");
        snprintf(status, sizeof status, "%.*s", (int)strcspn(at, "\""), at);
        cr_assert_str_eq(status, want[i], "item %zu: %s", i, out);
    }
    cr_assert_null(strstr(at, "\"status\":\""), "more results than items: %s", out);
    cr_assert_not_null(strstr(out, "different content"), "the conflict's reason: %s", out);
    cr_assert_not_null(strstr(out, "\"field\":\"type\""), "%s", out);
    cr_assert_not_null(strstr(out, "\"field\":\"clinic\""), "%s", out);
    free(out);
}

/* Waits up to ms for text in the server's log; returns 1 when it came, 0
 * when it did not (a reload under a slow sanitizer build on a busy machine
 * can take more than half a second). */
static inline int log_wait(const server *s, const char *text, int ms)
{
    for (int waited = 0;; waited += 50) {
        char *log = rg_test_read(s->log);
        int found = strstr(log, text) != NULL;
        free(log);
        if (found)
            return 1;
        if (waited >= ms)
            return 0;
        usleep(50000);
    }
}

/* Waits until the server's last start has caught up (its log says
 * "start-up: caught up" after its last "listening on"): every wake-up job of
 * the start-up back and committed. What a test waits for before it checks
 * that a restart did nothing more. */
static inline int caught_up_wait(const server *s, int ms)
{
    for (int waited = 0;; waited += 50) {
        char *log = rg_test_read(s->log), *last = NULL;
        for (char *p = log; (p = strstr(p, "listening on 127.0.0.1:")); p++)
            last = p;
        int done = last && strstr(last, "start-up: caught up") != NULL;
        free(log);
        if (done)
            return 1;
        if (waited >= ms)
            return 0;
        usleep(50000);
    }
}

/* Reads a stream up to transition `until`, checking that the ids go 1, 2,
 * 3, ... with none skipped or repeated (*last: the last id seen). One
 * stream per test binary: what follows `until` is kept for the next call. */
static inline void read_ids(int fd, long *last, long until)
{
    static char buf[1 << 16];
    static size_t len;
    while (*last < until) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        cr_assert_eq(poll(&p, 1, 20000), 1, "transition %ld did not come (last %ld)", until,
                     *last);
        ssize_t r = read(fd, buf + len, sizeof buf - len - 1);
        cr_assert_gt(r, 0, "the stream closed after transition %ld", *last);
        len += (size_t)r;
        buf[len] = '\0';
        char *line = buf, *nl;
        while ((nl = strchr(line, '\n'))) {
            if (!strncmp(line, "id: ", 4)) {
                long id = atol(line + 4);
                cr_assert_eq(id, *last + 1, "transition %ld came after %ld", id, *last);
                *last = id;
            }
            line = nl + 1;
        }
        len -= (size_t)(line - buf);
        memmove(buf, line, len);
    }
}

/* A port on 127.0.0.1 that was free a moment ago (bound, then closed). */
static inline int free_port(void)
{
    struct sockaddr_in a = {.sin_family = AF_INET};
    socklen_t alen = sizeof a;
    inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    cr_assert_eq(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
    cr_assert_eq(getsockname(fd, (struct sockaddr *)&a, &alen), 0);
    close(fd);
    return ntohs(a.sin_port);
}

/* An SMTP server (python3-aiosmtpd's SMTP, its Mailbox handler delivering
 * into the maildir box) on 127.0.0.1: its pid, its port in *port once it
 * listens. It binds port 0 itself and prints the port it got: a port taken
 * from free_port and handed to `python3 -m aiosmtpd -l` could be bound by
 * another test's server (or an outgoing connection) meanwhile, and then
 * whatever listened there (another test's aiosmtpd too) answered for it. */
static inline pid_t smtpd_start(const char *box, int *port)
{
    static const char script[] =
        "import asyncio, sys\n"
        "from aiosmtpd.smtp import SMTP\n"
        "from aiosmtpd.handlers import Mailbox\n"
        "async def main():\n"
        "    srv = await asyncio.get_running_loop().create_server(\n"
        "        lambda: SMTP(Mailbox(sys.argv[1])), '127.0.0.1', 0)\n"
        "    print(srv.sockets[0].getsockname()[1], flush=True)\n"
        "    await srv.serve_forever()\n"
        "asyncio.run(main())\n";
    int p[2];
    cr_assert_eq(pipe(p), 0);
    pid_t pid = fork();
    cr_assert_neq(pid, -1);
    if (pid == 0) {
        rg_test_child();
        dup2(p[1], 1);
        close(p[0]);
        close(p[1]);
        execl("/usr/bin/python3", "python3", "-c", script, box, (char *)NULL);
        _exit(127);
    }
    close(p[1]);
    char buf[32];
    size_t len = 0;
    struct pollfd pf = {.fd = p[0], .events = POLLIN};
    while (len < sizeof buf - 1 && !memchr(buf, '\n', len) && poll(&pf, 1, 30000) == 1) {
        ssize_t r = read(p[0], buf + len, sizeof buf - 1 - len);
        if (r <= 0)
            break;
        len += (size_t)r;
    }
    close(p[0]);
    buf[len] = '\0';
    *port = atoi(buf);
    if (*port <= 0) {
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
    }
    cr_assert_gt(*port, 0, "aiosmtpd did not start (is python3-aiosmtpd installed?): '%s'", buf);
    return pid;
}

/* The messages in the maildir box/new for `to` (all when NULL); the text of
 * the last in *last when last is not NULL (the caller frees it). */
static inline int maildir_count(const char *box, const char *to, char **last)
{
    char dir[600], path[1000], want[200];
    snprintf(dir, sizeof dir, "%s/new", box);
    snprintf(want, sizeof want, "To: %s", to ? to : "");
    DIR *d = opendir(dir);
    int n = 0;
    struct dirent *de;
    while (d && (de = readdir(d))) {
        if (de->d_name[0] == '.')
            continue;
        snprintf(path, sizeof path, "%s/%s", dir, de->d_name);
        char *m = rg_test_read(path);
        if (m && (!to || strstr(m, want))) {
            n++;
            if (last) {
                free(*last);
                *last = m;
                m = NULL;
            }
        }
        free(m);
    }
    if (d)
        closedir(d);
    return n;
}

/* ---- webhook receivers on loopback ------------------------------------------------ */

#include <pthread.h>

/* A socket listening on 127.0.0.1 with a free port, given in *port. */
static inline int rg_test_listen(int backlog, int *port)
{
    struct sockaddr_in a = {.sin_family = AF_INET};
    socklen_t alen = sizeof a;
    inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    cr_assert_eq(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
    cr_assert_eq(listen(fd, backlog), 0);
    getsockname(fd, (struct sockaddr *)&a, &alen);
    *port = ntohs(a.sin_port);
    return fd;
}

/* Reads one HTTP request from c into buf (NUL-terminated, at most cap - 1
 * bytes): the headers, then Content-Length bytes of body. Returns 1 when
 * the request came whole, 0 when the peer stopped (or buf filled) first. */
static inline int rg_test_read_request(int c, char *buf, size_t cap)
{
    size_t len = 0;
    buf[0] = '\0';
    for (;;) {
        ssize_t got = read(c, buf + len, cap - 1 - len);
        if (got <= 0)
            return 0;
        len += (size_t)got;
        buf[len] = '\0';
        char *end = strstr(buf, "\r\n\r\n");
        const char *cl = strcasestr(buf, "Content-Length:");
        if (end && cl && len >= (size_t)(end + 4 - buf) + (size_t)atoi(cl + 15))
            return 1;
    }
}

/* A webhook receiver on its own thread: answers 500 to the first fail_first
 * requests (after delay_ms, when set) and 200 to the rest, and keeps, for the
 * first 64 requests (later ones overwrite the last slot), the Idempotency-Key,
 * the body's "state", the body itself and the status it answered. */
typedef struct receiver {
    int fd, port, stop;
    int fail_first;   /* answer 500 to this many requests */
    int delay_ms;     /* wait before answering */
    int n;            /* requests seen */
    int arrived;      /* requests read, answered or not (a test waits on it) */
    char keys[64][64], states[64][16], body[64][2048];
    int status[64];
    pthread_t thread;
} receiver;

static inline void *receiver_main(void *ud)
{
    receiver *r = ud;
    while (!__atomic_load_n(&r->stop, __ATOMIC_SEQ_CST)) {
        struct pollfd p = {.fd = r->fd, .events = POLLIN};
        if (poll(&p, 1, 50) <= 0)
            continue;
        int c = accept(r->fd, NULL, NULL);
        if (c < 0)
            continue;
        char buf[16384];
        rg_test_read_request(c, buf, sizeof buf);
        __atomic_add_fetch(&r->arrived, 1, __ATOMIC_SEQ_CST);
        int i = r->n < 64 ? r->n : 63;
        const char *k = strcasestr(buf, "Idempotency-Key: ");
        snprintf(r->keys[i], sizeof r->keys[i], "%.*s", k ? (int)strcspn(k + 17, "\r\n") : 0,
                 k ? k + 17 : "");
        const char *st = strstr(buf, "\"state\":\"");
        snprintf(r->states[i], sizeof r->states[i], "%.*s", st ? (int)strcspn(st + 9, "\"") : 0,
                 st ? st + 9 : "");
        const char *end = strstr(buf, "\r\n\r\n");
        snprintf(r->body[i], sizeof r->body[i], "%s", end ? end + 4 : "");
        if (r->delay_ms)
            usleep((useconds_t)r->delay_ms * 1000);
        int status = r->n < r->fail_first ? 500 : 200;
        r->status[i] = status;
        char reply[128];
        int n = snprintf(reply, sizeof reply,
                         "HTTP/1.1 %d %s\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                         status, status == 200 ? "OK" : "Internal Server Error");
        (void)!write(c, reply, (size_t)n);
        close(c);
        __atomic_add_fetch(&r->n, 1, __ATOMIC_SEQ_CST);
    }
    return NULL;
}

/* Starts r (zeroed, with fail_first and delay_ms set as wanted) on a free port. */
static inline void receiver_start(receiver *r)
{
    r->fd = rg_test_listen(16, &r->port);
    pthread_create(&r->thread, NULL, receiver_main, r);
}

static inline void receiver_stop(receiver *r)
{
    __atomic_store_n(&r->stop, 1, __ATOMIC_SEQ_CST);
    pthread_join(r->thread, NULL);
    close(r->fd);
}

/* tests/webhook/receiver.py, a receiver verifying signatures with secret as
 * the Python in docs/service.md does, writing what it got to dir/name.log. */
typedef struct pyrecv {
    pid_t pid;
    int port, out; /* out: its standard output, open until it stops */
    char log[512];
} pyrecv;

static inline void pyrecv_start(pyrecv *r, const char *dir, const char *name, const char *secret)
{
    int p[2];
    snprintf(r->log, sizeof r->log, "%s/%s.log", dir, name);
    cr_assert_eq(pipe(p), 0);
    r->pid = fork();
    if (r->pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGTERM); /* a failed assertion ends the test: and it */
        dup2(p[1], 1);
        close(p[0]);
        execlp("python3", "python3", "tests/webhook/receiver.py", "docs/service.md", secret,
               r->log, (char *)NULL);
        _exit(127);
    }
    close(p[1]);
    char buf[32] = {0};
    size_t n = 0;
    while (n < sizeof buf - 1 && !strchr(buf, '\n')) {
        ssize_t got = read(p[0], buf + n, sizeof buf - 1 - n);
        cr_assert_gt(got, 0, "the receiver did not start");
        n += (size_t)got;
    }
    r->out = p[0];
    r->port = atoi(buf);
    cr_assert_gt(r->port, 0);
}

static inline void pyrecv_stop(pyrecv *r)
{
    kill(r->pid, SIGTERM);
    waitpid(r->pid, NULL, 0);
    close(r->out);
}

#endif /* RG_TEST_SERVE */

static inline int rg_test_cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* For comparing feeds: qsort's string order, and "at state patient rule key"
 * of every transition object in text (malloc'd lines, at most max). */
static inline int rg_test_transition_lines(const char *text, char **lines, int max)
{
    static const char *const fields[] = {"\"at\":\"", "\"state\":\"", "\"patient\":\"",
                                         "\"rule\":\"", "\"key\":\""};
    int n = 0;
    for (const char *p = strstr(text, "\"at\":\""); p && n < max; p = strstr(p + 1, "\"at\":\"")) {
        char line[512] = "";
        const char *end = strchr(p, '}');
        for (int f = 0; f < 5; f++) {
            const char *v = strstr(p, fields[f]);
            cr_assert(v && v < end, "field %s missing", fields[f]);
            v += strlen(fields[f]);
            size_t len = (size_t)(strchr(v, '"') - v);
            strncat(line, v, len);
            strcat(line, " ");
        }
        lines[n++] = strdup(line);
    }
    return n;
}

#endif
