/*
 * load.c - load client for `regimen serve`: plain sockets, one thread per
 * client, HTTP/1.1 keep-alive, only to 127.0.0.1.
 *
 *   load ingest  --port P --token T --clients N --batch B --seconds S
 *                (--file COHORT.jsonl | --ping [--clinic C]) [--events MAX]
 *   load latency --port P --token T --clients N --rate R --seconds S
 *                [--timer-ms MS]
 *   load metrics --port P --token T      (prints GET /metrics)
 *
 * ingest: N clients each POST /v1/events with arrays of about B events, one
 * request at a time on their own connection, until their share is sent, S
 * seconds have passed or (--events) MAX events were stored in all. --file:
 * the cohort's patients (consecutive lines of one patient) are dealt to the
 * clients in turn, and a request carries whole patients, so every patient's
 * history arrives in one request. --ping: events of type "ping" of clinic C
 * (default bench) stamped with the current time, one new patient each. Counts the events the service
 * acknowledged as stored (it answers only after its commit with
 * synchronous=FULL). Prints
 *   ingest clients=N batch=B requests=Q events=E seconds=S events_per_s=X
 *          ack_p50_ms=.. ack_p99_ms=.. errors=K busy=R
 * A 503 with Retry-After (back-pressure: the clinic's owner is behind) is
 * waited out and the same request sent again; busy counts those answers.
 *
 * latency: listens on GET /v1/transitions/stream, then N clients together
 * POST one ping event at a time at a steady R events/s (each event a new
 * patient) for S seconds; a ping that could not be sent in time is skipped,
 * and the achieved rate says so. With bench/ping, each ping opens "echo <id>"
 * at once and "timer <id>" timer-ms later. Measures, per ping, from just
 * before the POST is written to the moment its echo transition is read from
 * the stream, and how late its timer transition arrives after its due time;
 * reads GET /metrics before and after for the service's own wake-lateness
 * histogram over this run. Prints
 *   latency rate=R sent=.. seconds=.. echo_p50_ms=.. echo_p99_ms=.. echo_max_ms=..
 *           echo_missing=.. ack_p50_ms=.. ack_p99_ms=.. timer_p50_ms=..
 *           timer_p99_ms=.. timer_max_ms=.. timer_missing=.. behind_max_ms=..
 *   wake_lateness count=.. le_0.001=.. le_0.005=.. le_0.01=.. ...
 * Exit 0 when the run completed (the numbers say how well: late or missing
 * transitions are results), 1 on request errors or when no echo came back.
 * Depends on POSIX sockets and pthreads only.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <math.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

/* ---- options ---------------------------------------------------------------- */

static struct {
    int port, clients, batch, ping, timer_ms;
    long events; /* ingest: stop after this many events in all (0: no cap) */
    double seconds, rate;
    const char *token, *file, *clinic;
} opt = {.clients = 4, .batch = 100, .seconds = 10, .rate = 1000, .timer_ms = 1000,
         .clinic = "bench"};

static void die(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "load: ");
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    exit(2);
}

static double now_mono(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Wall clock in milliseconds (fractional), the service's time base. */
static double now_wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static void stamp_ms(int64_t ms, char *buf, size_t len)
{
    time_t s = (time_t)(ms / 1000);
    struct tm tm;
    gmtime_r(&s, &tm);
    size_t n = strftime(buf, len, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(buf + n, len - n, ".%03dZ", (int)(ms % 1000));
}

/* ---- a keep-alive HTTP/1.1 connection ------------------------------------------ */

typedef struct conn {
    int fd;
    char *buf; /* response bytes read but not yet consumed */
    size_t len, cap;
} conn;

static int conn_open(conn *c)
{
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)opt.port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    c->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (c->fd < 0)
        return -1;
    int one = 1;
    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (connect(c->fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
        close(c->fd);
        c->fd = -1;
        return -1;
    }
    c->len = 0;
    if (!c->buf) {
        c->cap = 1 << 16;
        c->buf = malloc(c->cap);
        if (!c->buf)
            die("out of memory");
    }
    return 0;
}

static void conn_close(conn *c)
{
    if (c->fd >= 0)
        close(c->fd);
    c->fd = -1;
}

static int send_all(int fd, const char *p, size_t n)
{
    while (n) {
        ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return -1;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

/* Reads more bytes into c->buf; -1 on EOF or error. */
static int conn_fill(conn *c)
{
    if (c->cap - c->len < 4096) {
        c->cap *= 2;
        char *g = realloc(c->buf, c->cap);
        if (!g)
            die("out of memory");
        c->buf = g;
    }
    ssize_t r;
    do
        r = recv(c->fd, c->buf + c->len, c->cap - c->len - 1, 0);
    while (r < 0 && errno == EINTR);
    if (r <= 0)
        return -1;
    c->len += (size_t)r;
    c->buf[c->len] = '\0';
    return 0;
}

/* Reads one response with a Content-Length body; returns the status, sets
 * *body (inside c->buf, NUL-terminated, valid until the next call). */
static int conn_response(conn *c, char **body, size_t *blen)
{
    char *end;
    c->len = 0;
    for (;;) {
        if (c->len) {
            c->buf[c->len] = '\0';
            if ((end = strstr(c->buf, "\r\n\r\n")))
                break;
        }
        if (conn_fill(c))
            return -1;
    }
    int status = 0;
    if (sscanf(c->buf, "HTTP/1.1 %d", &status) != 1)
        return -1;
    size_t clen = 0;
    char *cl = strcasestr(c->buf, "\r\nContent-Length:");
    if (cl && cl < end)
        clen = strtoul(cl + 17, NULL, 10);
    size_t head = (size_t)(end + 4 - c->buf);
    while (c->len < head + clen)
        if (conn_fill(c))
            return -1;
    c->buf[head + clen] = '\0';
    *body = c->buf + head;
    *blen = clen;
    return status;
}

/* The Retry-After of the response last read on c, in seconds (0: none). */
static int retry_after(const conn *c)
{
    const char *end = strstr(c->buf, "\r\n\r\n");
    const char *h = strcasestr(c->buf, "\r\nRetry-After:");
    if (!h || !end || h > end)
        return 0;
    int s = atoi(h + 14);
    return s > 0 ? (s > 60 ? 60 : s) : 0;
}

/* POSTs body to path; returns the status (-1: connection lost, reconnected). */
static int conn_post(conn *c, const char *path, const char *body, size_t blen, char **resp,
                     size_t *rlen)
{
    char head[512];
    int n = snprintf(head, sizeof head,
                     "POST %s HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer %s\r\n"
                     "Content-Type: application/json\r\nContent-Length: %zu\r\n\r\n",
                     path, opt.token, blen);
    if (c->fd < 0 && conn_open(c))
        return -1;
    if (send_all(c->fd, head, (size_t)n) || send_all(c->fd, body, blen)) {
        conn_close(c);
        return -1;
    }
    int st = conn_response(c, resp, rlen);
    if (st < 0)
        conn_close(c);
    return st;
}

static long json_count(const char *body, const char *field)
{
    char pat[64];
    snprintf(pat, sizeof pat, "\"%s\":", field);
    const char *p = strstr(body, pat);
    return p ? strtol(p + strlen(pat), NULL, 10) : -1;
}

/* ---- statistics -------------------------------------------------------------- */

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* The q-quantile (nearest rank) of sorted v; -1 when empty. */
static double quantile(const double *v, size_t n, double q)
{
    if (!n)
        return -1;
    size_t k = (size_t)(q * (double)n + 0.999999);
    if (k < 1)
        k = 1;
    if (k > n)
        k = n;
    return v[k - 1];
}

/* ---- ingest ------------------------------------------------------------------- */

typedef struct group { /* one patient's lines in the cohort text */
    const char *p;
    size_t len;
    int lines;
} group;

typedef struct worker {
    int index;
    pthread_t th;
    group *groups;
    size_t ngroups, capgroups;
    long requests, stored, errors, busy;
    double *acks;
    size_t nacks, capacks;
    double finished;
} worker;

static double deadline;
static long id_base; /* makes ping ids unique across runs on one store */
static char *cohort;

static void add_ack(worker *w, double ms)
{
    if (w->nacks == w->capacks) {
        w->capacks = w->capacks ? w->capacks * 2 : 1024;
        w->acks = realloc(w->acks, w->capacks * sizeof *w->acks);
        if (!w->acks)
            die("out of memory");
    }
    w->acks[w->nacks++] = ms;
}

/* The patient key of a cohort line: the text of its clinic and patient. */
static int same_patient(const char *a, const char *b)
{
    const char *pa = strstr(a, "\"patient\":\""), *pb = strstr(b, "\"patient\":\"");
    const char *ca = strstr(a, "\"clinic\":\""), *cb = strstr(b, "\"clinic\":\"");
    if (!pa || !pb || !ca || !cb)
        return 0;
    size_t la = strcspn(pa + 11, "\""), lb = strcspn(pb + 11, "\"");
    size_t ka = strcspn(ca + 10, "\""), kb = strcspn(cb + 10, "\"");
    return la == lb && ka == kb && !memcmp(pa + 11, pb + 11, la) && !memcmp(ca + 10, cb + 10, ka);
}

static void *ingest_worker(void *arg)
{
    worker *w = arg;
    conn c = {.fd = -1};
    size_t cap = 1 << 20, gi = 0;
    char *body = malloc(cap), *resp;
    size_t rlen;
    long seq = 0;
    if (!body || conn_open(&c))
        die("cannot connect to 127.0.0.1:%d", opt.port);
    long cap_events = opt.events > 0 ? (opt.events + opt.clients - 1 - w->index) / opt.clients : 0;
    while (now_mono() < deadline && (!cap_events || w->stored < cap_events)) {
        size_t len = 0;
        int events = 0;
        body[len++] = '[';
        if (opt.ping) {
            char at[40];
            stamp_ms((int64_t)now_wall_ms(), at, sizeof at);
            int want = opt.batch;
            if (cap_events && cap_events - w->stored < want)
                want = (int)(cap_events - w->stored);
            for (int i = 0; i < want; i++, seq++) {
                if (cap - len < 512) {
                    cap *= 2;
                    body = realloc(body, cap);
                    if (!body)
                        die("out of memory");
                }
                len += (size_t)snprintf(body + len, cap - len,
                                        "%s{\"id\":\"w%ld-%d-%ld\",\"clinic\":\"%s\",\"patient\":"
                                        "\"w%ld-%d-%ld\",\"type\":\"ping\",\"at\":\"%s\"}",
                                        i ? "," : "", id_base, w->index, seq, opt.clinic, id_base,
                                        w->index, seq, at);
                events++;
            }
        } else {
            if (gi == w->ngroups)
                break;
            while (gi < w->ngroups && (events == 0 || events + w->groups[gi].lines <= opt.batch)) {
                group *g = &w->groups[gi++];
                while (cap - len < g->len + g->lines + 16) {
                    cap *= 2;
                    body = realloc(body, cap);
                    if (!body)
                        die("out of memory");
                }
                /* the lines joined by commas */
                const char *p = g->p, *e = g->p + g->len;
                while (p < e) {
                    const char *nl = memchr(p, '\n', (size_t)(e - p));
                    size_t l = nl ? (size_t)(nl - p) : (size_t)(e - p);
                    if (len > 1)
                        body[len++] = ',';
                    memcpy(body + len, p, l);
                    len += l;
                    p += l + 1;
                }
                events += g->lines;
            }
        }
        body[len++] = ']';
        double t0 = now_mono();
        int st = conn_post(&c, "/v1/events", body, len, &resp, &rlen);
        /* 503 with Retry-After (back-pressure: the clinic's evaluation is
         * behind; nothing was stored): wait as told, then the same request */
        int wait;
        while (st == 503 && (wait = retry_after(&c)) > 0) {
            w->busy++;
            struct timespec ts = {wait, 0};
            nanosleep(&ts, NULL);
            st = conn_post(&c, "/v1/events", body, len, &resp, &rlen);
        }
        double t1 = now_mono();
        w->requests++;
        if (st != 200) {
            w->errors++;
            if (w->errors <= 3)
                fprintf(stderr, "load: POST /v1/events: status %d: %.200s\n", st,
                        st > 0 ? resp : "connection lost");
            if (w->errors > 100)
                break;
            continue;
        }
        add_ack(w, (t1 - t0) * 1e3);
        long stored = json_count(resp, "stored");
        w->stored += stored > 0 ? stored : 0;
        if (stored != events)
            w->errors++;
    }
    w->finished = now_mono();
    conn_close(&c);
    free(c.buf);
    free(body);
    return NULL;
}

static int cmd_ingest(void)
{
    worker *ws = calloc((size_t)opt.clients, sizeof *ws);
    if (!ws)
        die("out of memory");
    if (!opt.ping) {
        FILE *f = fopen(opt.file, "rb");
        if (!f)
            die("cannot read %s", opt.file);
        fseek(f, 0, SEEK_END);
        long size = ftell(f);
        fseek(f, 0, SEEK_SET);
        cohort = malloc((size_t)size + 1);
        if (!cohort || fread(cohort, 1, (size_t)size, f) != (size_t)size)
            die("cannot read %s", opt.file);
        cohort[size] = '\0';
        fclose(f);
        /* patients, dealt to the clients in turn */
        size_t npatients = 0;
        const char *p = cohort, *end = cohort + size;
        group g = {0};
        const char *prev = NULL;
        for (;;) {
            const char *nl = p < end ? memchr(p, '\n', (size_t)(end - p)) : NULL;
            const char *le = nl ? nl : end;
            int last = p >= end;
            if (!last && le == p) { /* empty line */
                p = le + 1;
                continue;
            }
            if (last || !prev || !same_patient(prev, p)) {
                if (g.lines) {
                    worker *w = &ws[npatients++ % (size_t)opt.clients];
                    if (w->ngroups == w->capgroups) {
                        w->capgroups = w->capgroups ? w->capgroups * 2 : 64;
                        w->groups = realloc(w->groups, w->capgroups * sizeof *w->groups);
                        if (!w->groups)
                            die("out of memory");
                    }
                    w->groups[w->ngroups++] = g;
                }
                if (last)
                    break;
                g = (group){.p = p, .len = 0, .lines = 0};
            }
            g.len = (size_t)(le - g.p);
            g.lines++;
            prev = p;
            p = nl ? nl + 1 : end;
        }
    }
    double t0 = now_mono();
    deadline = t0 + opt.seconds;
    id_base = (long)now_wall_ms();
    for (int i = 0; i < opt.clients; i++) {
        ws[i].index = i;
        if (pthread_create(&ws[i].th, NULL, ingest_worker, &ws[i]))
            die("cannot start a thread");
    }
    long requests = 0, stored = 0, errors = 0, busy = 0;
    double t1 = t0;
    size_t nacks = 0;
    for (int i = 0; i < opt.clients; i++) {
        pthread_join(ws[i].th, NULL);
        requests += ws[i].requests;
        stored += ws[i].stored;
        errors += ws[i].errors;
        busy += ws[i].busy;
        nacks += ws[i].nacks;
        if (ws[i].finished > t1)
            t1 = ws[i].finished;
    }
    double *acks = malloc((nacks + 1) * sizeof *acks);
    size_t k = 0;
    for (int i = 0; i < opt.clients; i++) {
        memcpy(acks + k, ws[i].acks, ws[i].nacks * sizeof *acks);
        k += ws[i].nacks;
        free(ws[i].acks);
        free(ws[i].groups);
    }
    double secs = t1 - t0;
    qsort(acks, nacks, sizeof *acks, cmp_double);
    printf("ingest clients=%d batch=%d requests=%ld events=%ld seconds=%.3f events_per_s=%.0f "
           "ack_p50_ms=%.2f ack_p99_ms=%.2f errors=%ld busy=%ld\n", opt.clients, opt.batch,
           requests, stored, secs, secs > 0 ? (double)stored / secs : 0,
           quantile(acks, nacks, 0.5), quantile(acks, nacks, 0.99), errors, busy);
    free(acks);
    free(ws);
    free(cohort);
    return errors || stored == 0 ? 1 : 0;
}

/* ---- latency ------------------------------------------------------------------- */

static long nplanned;
static double *sent_ms, *ack_ms, *echo_ms, *timer_ms, *behind_ms; /* per ping, wall ms */
static int64_t *at_ms;
static volatile int reader_stop;
static double start_wall;
static long echo_other; /* transitions that matched no ping */

typedef struct sender {
    int index;
    pthread_t th;
    long sent, errors;
} sender;

static void *latency_sender(void *arg)
{
    sender *s = arg;
    conn c = {.fd = -1};
    char body[512], *resp;
    size_t rlen;
    if (conn_open(&c))
        die("cannot connect to 127.0.0.1:%d", opt.port);
    double stop = start_wall + opt.seconds * 1e3;
    for (long i = s->index; i < nplanned; i += opt.clients) {
        double due = start_wall + (double)i * 1e3 / opt.rate, now = now_wall_ms();
        if (now >= stop)
            break; /* behind: what was not sent in time is not sent */
        if (due > now) {
            struct timespec ts = {.tv_sec = (time_t)(due / 1e3),
                                  .tv_nsec = (long)((due - floor(due / 1e3) * 1e3) * 1e6)};
            while (clock_nanosleep(CLOCK_REALTIME, TIMER_ABSTIME, &ts, NULL) == EINTR)
                ;
        }
        double t = now_wall_ms();
        behind_ms[i] = t - due;
        at_ms[i] = (int64_t)t;
        char at[40];
        stamp_ms(at_ms[i], at, sizeof at);
        int n = snprintf(body, sizeof body,
                         "{\"id\":\"q%ld\",\"clinic\":\"bench\",\"patient\":\"q%ld\","
                         "\"type\":\"ping\",\"at\":\"%s\"}", id_base + i, id_base + i, at);
        sent_ms[i] = now_wall_ms();
        int st = conn_post(&c, "/v1/events", body, (size_t)n, &resp, &rlen);
        ack_ms[i] = now_wall_ms();
        if (st != 200 || json_count(resp, "stored") != 1) {
            s->errors++;
            sent_ms[i] = 0;
            if (s->errors <= 3)
                fprintf(stderr, "load: POST /v1/events: status %d\n", st);
            continue;
        }
        s->sent++;
    }
    conn_close(&c);
    free(c.buf);
    return NULL;
}

/* Reads the SSE stream; notes when each ping's echo / timer opened. */
static void *latency_reader(void *arg)
{
    conn *c = arg;
    size_t done = 0; /* bytes of c->buf already parsed */
    while (!reader_stop) {
        if (conn_fill(c))
            break;
        double t = now_wall_ms();
        for (;;) {
            char *line = c->buf + done, *nl = memchr(line, '\n', c->len - done);
            if (!nl)
                break;
            *nl = '\0';
            done = (size_t)(nl + 1 - c->buf);
            if (strncmp(line, "data: ", 6) || !strstr(line, "\"state\":\"open\""))
                continue;
            char *m = strstr(line, "\"message\":\"");
            long i;
            if (m && sscanf(m + 11, "echo q%ld", &i) == 1 && (i -= id_base) >= 0 && i < nplanned)
                echo_ms[i] = t;
            else if (m && sscanf(m + 11, "timer q%ld", &i) == 1 && (i -= id_base) >= 0 && i < nplanned)
                timer_ms[i] = t;
            else
                echo_other++;
        }
        if (done == c->len) {
            c->len = done = 0;
        } else if (done > (1u << 20)) {
            memmove(c->buf, c->buf + done, c->len - done);
            c->len -= done;
            done = 0;
        }
    }
    return NULL;
}

/* GET /metrics: a malloc'd copy of the body, or NULL. */
static char *get_metrics(void)
{
    conn c = {.fd = -1};
    char req[512], *body, *copy = NULL;
    size_t blen;
    if (conn_open(&c))
        return NULL;
    int n = snprintf(req, sizeof req, "GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                                      "Authorization: Bearer %s\r\n\r\n", opt.token);
    if (!send_all(c.fd, req, (size_t)n) && conn_response(&c, &body, &blen) == 200)
        copy = strdup(body);
    conn_close(&c);
    free(c.buf);
    return copy;
}

/* The service's wake-lateness histogram (cumulative buckets, count, sum). */
typedef struct lateness {
    double le[7], count, sum;
} lateness;
static const char *const le_names[7] = {"0.001", "0.005", "0.01", "0.05", "0.25", "1", "+Inf"};

static lateness parse_lateness(const char *text)
{
    lateness h = {{0}, 0, 0};
    for (const char *l = text; l && *l; l = strchr(l, '\n') ? strchr(l, '\n') + 1 : NULL) {
        char le[32];
        double v;
        if (sscanf(l, "regimen_wake_lateness_seconds_bucket{le=\"%31[^\"]\"} %lf", le, &v) == 2) {
            for (int i = 0; i < 7; i++)
                if (!strcmp(le, le_names[i]))
                    h.le[i] = v;
        } else if (sscanf(l, "regimen_wake_lateness_seconds_count %lf", &v) == 1) {
            h.count = v;
        } else if (sscanf(l, "regimen_wake_lateness_seconds_sum %lf", &v) == 1) {
            h.sum = v;
        }
    }
    return h;
}

static int cmd_metrics(void)
{
    char *m = get_metrics();
    if (!m)
        die("GET /metrics failed");
    fputs(m, stdout);
    free(m);
    return 0;
}
static int cmd_latency(void)
{
    nplanned = (long)(opt.rate * opt.seconds);
    id_base = (long)now_wall_ms() * 1000;
    sent_ms = calloc((size_t)nplanned, sizeof *sent_ms);
    ack_ms = calloc((size_t)nplanned, sizeof *ack_ms);
    echo_ms = calloc((size_t)nplanned, sizeof *echo_ms);
    timer_ms = calloc((size_t)nplanned, sizeof *timer_ms);
    behind_ms = calloc((size_t)nplanned, sizeof *behind_ms);
    at_ms = calloc((size_t)nplanned, sizeof *at_ms);
    sender *ss = calloc((size_t)opt.clients, sizeof *ss);
    if (!sent_ms || !ack_ms || !echo_ms || !timer_ms || !behind_ms || !at_ms || !ss)
        die("out of memory");

    /* the stream first, so that no transition is missed */
    conn sc = {.fd = -1};
    if (conn_open(&sc))
        die("cannot connect to 127.0.0.1:%d", opt.port);
    char req[512];
    int n = snprintf(req, sizeof req, "GET /v1/transitions/stream HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                                      "Authorization: Bearer %s\r\nAccept: text/event-stream\r\n\r\n",
                     opt.token);
    if (send_all(sc.fd, req, (size_t)n))
        die("cannot open the stream");
    while (!strstr(sc.buf ? sc.buf : "", "\r\n\r\n")) {
        if (conn_fill(&sc))
            die("the stream closed");
    }
    if (strncmp(sc.buf, "HTTP/1.1 200", 12))
        die("GET /v1/transitions/stream: %.80s", sc.buf);
    char *hend = strstr(sc.buf, "\r\n\r\n") + 4;
    memmove(sc.buf, hend, sc.len - (size_t)(hend - sc.buf));
    sc.len -= (size_t)(hend - sc.buf);
    sc.buf[sc.len] = '\0';
    pthread_t reader;
    if (pthread_create(&reader, NULL, latency_reader, &sc))
        die("cannot start a thread");

    char *m0 = get_metrics();
    lateness before = parse_lateness(m0);
    free(m0);
    start_wall = now_wall_ms() + 200;
    for (int i = 0; i < opt.clients; i++) {
        ss[i].index = i;
        if (pthread_create(&ss[i].th, NULL, latency_sender, &ss[i]))
            die("cannot start a thread");
    }
    long sent = 0, errors = 0;
    for (int i = 0; i < opt.clients; i++) {
        pthread_join(ss[i].th, NULL);
        sent += ss[i].sent;
        errors += ss[i].errors;
    }
    double end_wall = now_wall_ms();
    /* the last timers fall due timer-ms after the last ping: wait for them */
    double until = end_wall + opt.timer_ms + 1500;
    for (;;) {
        long missing = 0;
        for (long i = 0; i < nplanned; i++)
            missing += sent_ms[i] > 0 && (echo_ms[i] == 0 || timer_ms[i] == 0);
        if (!missing || now_wall_ms() > until)
            break;
        usleep(50000);
    }
    reader_stop = 1;
    shutdown(sc.fd, SHUT_RDWR);
    pthread_join(reader, NULL);
    conn_close(&sc);
    free(sc.buf);

    double *echo = malloc((size_t)nplanned * sizeof *echo), *ack = malloc((size_t)nplanned * sizeof *ack);
    double *timer = malloc((size_t)nplanned * sizeof *timer);
    size_t ne = 0, na = 0, nt = 0;
    long echo_missing = 0, timer_missing = 0;
    double behind_max = 0;
    for (long i = 0; i < nplanned; i++) {
        if (sent_ms[i] == 0)
            continue;
        if (behind_ms[i] > behind_max)
            behind_max = behind_ms[i];
        ack[na++] = ack_ms[i] - sent_ms[i];
        if (echo_ms[i] > 0)
            echo[ne++] = echo_ms[i] - sent_ms[i];
        else
            echo_missing++;
        if (timer_ms[i] > 0)
            timer[nt++] = timer_ms[i] - (double)(at_ms[i] + opt.timer_ms);
        else
            timer_missing++;
    }
    double secs = (end_wall - start_wall) / 1e3;
    qsort(echo, ne, sizeof *echo, cmp_double);
    qsort(ack, na, sizeof *ack, cmp_double);
    qsort(timer, nt, sizeof *timer, cmp_double);
    printf("latency rate=%.0f clients=%d sent=%ld seconds=%.3f achieved_per_s=%.0f "
           "echo_p50_ms=%.3f echo_p99_ms=%.3f echo_max_ms=%.3f echo_missing=%ld "
           "ack_p50_ms=%.3f ack_p99_ms=%.3f timer_p50_ms=%.3f timer_p99_ms=%.3f "
           "timer_max_ms=%.3f timer_missing=%ld behind_max_ms=%.3f other=%ld errors=%ld\n",
           opt.rate, opt.clients, sent, secs, secs > 0 ? (double)sent / secs : 0,
           quantile(echo, ne, 0.5), quantile(echo, ne, 0.99), ne ? echo[ne - 1] : -1,
           echo_missing, quantile(ack, na, 0.5), quantile(ack, na, 0.99),
           quantile(timer, nt, 0.5), quantile(timer, nt, 0.99), nt ? timer[nt - 1] : -1,
           timer_missing, behind_max, echo_other, errors);
    char *m1 = get_metrics();
    lateness after = parse_lateness(m1);
    free(m1);
    /* this run's wake-ups only: the histogram counts since the service started */
    printf("wake_lateness count=%.0f sum=%.6f", after.count - before.count, after.sum - before.sum);
    for (int i = 0; i < 7; i++)
        printf(" le_%s=%.0f", le_names[i], after.le[i] - before.le[i]);
    printf("\n");
    fflush(stdout);
    /* late or missing transitions are results; no echo at all is a failure
     * (timers can all be missing: behind an older backlog of due patients,
     * which the service evaluates the earliest due first) */
    return errors || sent == 0 || ne == 0 ? 1 : 0;
}

/* ---- main ------------------------------------------------------------------------- */

int main(int argc, char **argv)
{
    if (argc < 2)
        die("usage: load ingest|latency|metrics --port P --token T [options] (see bench/load.c)");
    const char *cmd = argv[1];
    for (int i = 2; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--ping")) {
            opt.ping = 1;
            continue;
        }
        if (!v)
            die("%s needs a value", a);
        i++;
        if (!strcmp(a, "--port"))
            opt.port = atoi(v);
        else if (!strcmp(a, "--token"))
            opt.token = v;
        else if (!strcmp(a, "--file"))
            opt.file = v;
        else if (!strcmp(a, "--clinic"))
            opt.clinic = v;
        else if (!strcmp(a, "--clients"))
            opt.clients = atoi(v);
        else if (!strcmp(a, "--batch"))
            opt.batch = atoi(v);
        else if (!strcmp(a, "--seconds"))
            opt.seconds = atof(v);
        else if (!strcmp(a, "--rate"))
            opt.rate = atof(v);
        else if (!strcmp(a, "--events"))
            opt.events = atol(v);
        else if (!strcmp(a, "--timer-ms"))
            opt.timer_ms = atoi(v);
        else
            die("unknown option %s", a);
    }
    if (opt.port <= 0 || !opt.token || opt.clients < 1 || opt.batch < 1 || opt.seconds <= 0 ||
        opt.rate <= 0)
        die("--port and --token are required; counts must be positive");
    if (!strcmp(cmd, "ingest")) {
        if (!opt.ping && !opt.file)
            die("ingest needs --file COHORT or --ping");
        return cmd_ingest();
    }
    if (!strcmp(cmd, "metrics"))
        return cmd_metrics();
    if (!strcmp(cmd, "latency"))
        return cmd_latency();
    die("unknown command %s (ingest, latency or metrics)", cmd);
    return 2;
}
