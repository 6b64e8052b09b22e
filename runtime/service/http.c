/*
 * http.c - a small HTTP/1.1 server on a libuv loop (see http.h).
 *
 * Depends on libuv (sockets, timers) and http-parser (all HTTP syntax: this
 * file never parses HTTP by hand). Each connection owns a uv_tcp_t, one
 * uv_timer_t (idle, request and lingering-close timeouts) and one parser.
 * Requests are handled one at a time: when a request is complete the parser
 * is paused and reading stops until the handler responds, so pipelined
 * requests are answered in order; nor is the next request read while more
 * than max_unsent_bytes of answers wait to be written (a client that sends
 * and never reads is left with its own backlog in its own socket).
 * Connections are counted in two pools: unauthenticated ones (the default,
 * also capped per address, the first request due within a short deadline)
 * and authenticated ones (rg_http_authenticated), so that silent connections
 * never take the slots of clients that showed a token. A stream's drain
 * callbacks (its next page of backlog) take turns, a few per loop iteration.
 * Memory is freed only in close callbacks,
 * except a connection that closed while its handler still owed a response:
 * that one is freed by the handler's late rg_http_respond/rg_http_stream_start.
 * Nothing is logged here; the caller reads rg_http_stats_get.
 *
 * With TLS (rg_http_set_tls) a connection's bytes pass through tls.c on
 * their way: what uv_read brings is handed to it and the parser reads the
 * plaintext it gives (rg__feed), and every write is encrypted before
 * uv_write (rg__write). Nothing else here knows of TLS.
 */
#include "service/http.h"
#include "service/tls.h"

#include <http_parser.h>

#include <arpa/inet.h>
#include <assert.h>
#include <sys/ioctl.h>
#include <ctype.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define RG__RBUF 16384                /* read buffer per connection */
#define RG__LINGER_MS 1000            /* read-and-discard time after a final response */
#define RG__BACKLOG 1024              /* a burst of connections waits in the kernel, not refused */
#define RG__DRAINS_PER_TURN 8         /* drain callbacks run per loop iteration (then I/O again) */
/* A stream's socket send buffer, fixed (no autotuning up to megabytes): what
 * a client does not read stays in our count of unsent bytes, where the
 * stall and unsent limits see it, not in the kernel. */
#define RG__STREAM_SNDBUF 65536

enum rg__state { RG__IDLE, RG__READING, RG__AWAIT, RG__STREAM, RG__LINGER };

/* Strings kept from a request, all stored in the connection's arena. */
enum { RG__URL, RG__AUTH, RG__LEID, RG__CTYPE, RG__TE, RG__EXPECT, RG__COOKIE, RG__CSRF, RG__PATH,
       RG__QUERY, RG__NSTR };
static const char *const rg__kept[] = {"", "authorization", "last-event-id", "content-type",
                                       "transfer-encoding", "expect", "cookie", "x-csrf-token"};
#define RG__NKEPT ((int)(sizeof rg__kept / sizeof rg__kept[0]))

struct rg_http_conn {
    rg_http_server *s; /* NULL once the handles are closed */
    rg_http_conn *prev, *next;
    uv_tcp_t tcp;
    uv_timer_t timer;
    uv_shutdown_t shut;
    http_parser parser;
    int handles; /* open handles: tcp, timer */
    enum rg__state state;
    int closing, reading, in_dispatch, counted, keep, is_head, close_when_sent;
    int authed;    /* counted among the authenticated connections, not the others */
    int throttled; /* reading stopped until the unsent bytes fall under the cap */
    long nreq;     /* requests handed to the handler */
    uint64_t deadline; /* uv_now() by which the first request must be complete */
    size_t unsent; /* bytes queued with uv_write and not yet written */
    unsigned char addr[17]; /* the peer's family and address, for the per-address limit */
    char peer[64];
    void (*drained)(void *ud, rg_http_conn *c); /* rg_http_stream_on_drain */
    rg_http_conn *rprev, *rnext; /* in the server's queue of drained streams, if queued */
    int queued;
    /* the request being read */
    char *arena; /* 2 * max_header_bytes + 64: kept strings, each NUL-ended */
    size_t alen, hdr_bytes;
    size_t off[RG__NSTR], len[RG__NSTR];
    unsigned have; /* bit i: string i is set */
    int cur;       /* string being appended, or -1 */
    int in_field, seen_field, trailers;
    char hname[24];
    size_t hname_len; /* > sizeof hname: too long to be a kept header */
    char *body;
    size_t body_len, body_cap;
    int err; /* status to answer when a callback stops the parser */
    /* input not parsed yet; reading only resumes once it is consumed */
    size_t rpos, rlen;
    void (*on_close)(void *ud, rg_http_conn *c);
    void *close_ud;
    rg_tls_conn *tls; /* TLS (tls.c), or NULL */
    char *cipher;     /* with TLS: uv_read's buffer (rbuf holds the plaintext) */
    char rbuf[RG__RBUF];
};

struct rg_http_server {
    uv_loop_t *loop;
    uv_tcp_t listener;
    uv_tcp_t *cur; /* the listener accepting now: &listener, or one of rg_http_relisten */
    rg_http_limits lim;
    rg_http_handler handler;
    void *ud;
    http_parser_settings settings;
    rg_http_conn *conns;
    int nconns;          /* connections whose handles are not closed yet */
    int active, streams; /* connections counted towards the limits; SSE streams */
    int unauth;          /* of active, those not authenticated */
    int port, closing, shandles; /* shandles: the listener and turn, until closed */
    /* streams whose drain callback is due, run a few per loop iteration by
     * turn so that a thousand backlogs never hold the loop in one go */
    uv_idle_t turn;
    int turn_open;
    rg_http_conn *ready, *ready_tail;
    rg_http_stats stats;
    rg_tls *tls; /* rg_http_set_tls, or NULL */
    void (*on_respond)(void *ud, rg_http_conn *c, int status); /* rg_http_on_respond */
    void *respond_ud;
    void (*done)(void *ud);
    void *done_ud;
};

typedef struct rg__wreq {
    uv_write_t req;
    size_t len;
    char data[];
} rg__wreq;

static void rg__feed(rg_http_conn *c);
static void rg__timer(rg_http_conn *c, int ms);
static int rg__evict(rg_http_server *s, int authed);

/* ---- closing ------------------------------------------------------------ */

/* Frees the server, then calls done, once the listener and every connection
 * have finished closing. */
static void rg__maybe_done(rg_http_server *s)
{
    if (!s->closing || s->shandles > 0 || s->nconns > 0)
        return;
    void (*done)(void *) = s->done;
    void *ud = s->done_ud;
    free(s);
    if (done)
        done(ud);
}

static void rg__on_listener_closed(uv_handle_t *h)
{
    rg_http_server *s = h->data;
    if (h != (uv_handle_t *)&s->listener && h != (uv_handle_t *)&s->turn)
        free(h); /* a listener of rg_http_relisten */
    s->shandles--;
    rg__maybe_done(s);
}

static void rg__ready_unlink(rg_http_conn *c)
{
    if (!c->queued)
        return;
    rg_http_server *s = c->s;
    if (c->rprev)
        c->rprev->rnext = c->rnext;
    else
        s->ready = c->rnext;
    if (c->rnext)
        c->rnext->rprev = c->rprev;
    else
        s->ready_tail = c->rprev;
    c->rprev = c->rnext = NULL;
    c->queued = 0;
}

/* Runs the drain callbacks that are due, RG__DRAINS_PER_TURN at a time. */
static void rg__on_turn(uv_idle_t *h)
{
    rg_http_server *s = h->data;
    for (int i = 0; i < RG__DRAINS_PER_TURN && s->ready; i++) {
        rg_http_conn *c = s->ready;
        rg__ready_unlink(c);
        if (c->closing || c->state != RG__STREAM || !c->drained)
            continue;
        if (c->unsent > 0) /* written to meanwhile: when that is written */
            continue;
        void (*cb)(void *, rg_http_conn *) = c->drained;
        c->drained = NULL;
        cb(c->close_ud, c);
    }
    if (!s->ready)
        uv_idle_stop(h);
}

/* Queues c's drain callback for a coming loop iteration. */
static void rg__ready_push(rg_http_conn *c)
{
    rg_http_server *s = c->s;
    if (c->queued || !s->turn_open)
        return;
    c->rprev = s->ready_tail;
    c->rnext = NULL;
    if (s->ready_tail)
        s->ready_tail->rnext = c;
    else
        s->ready = c;
    s->ready_tail = c;
    c->queued = 1;
    uv_idle_start(&s->turn, rg__on_turn);
}

static void rg__free_conn(rg_http_conn *c)
{
    rg_tls_conn_free(c->tls);
    free(c->cipher);
    free(c->arena);
    free(c->body);
    free(c);
}

static void rg__on_conn_closed(uv_handle_t *h)
{
    rg_http_conn *c = h->data;
    if (--c->handles > 0)
        return;
    rg_http_server *s = c->s;
    if (c->prev)
        c->prev->next = c->next;
    else
        s->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    s->nconns--;
    c->s = NULL;
    if (c->state != RG__AWAIT) /* else the handler still holds c and req */
        rg__free_conn(c);
    rg__maybe_done(s);
}

/* Starts closing a connection; a stream's on_close runs here, once. */
static void rg__close(rg_http_conn *c)
{
    if (c->closing)
        return;
    c->closing = 1;
    rg_http_server *s = c->s;
    if (c->counted) {
        s->active--;
        s->unauth -= !c->authed;
    }
    c->counted = 0;
    c->drained = NULL;
    rg__ready_unlink(c);
    if (c->state == RG__STREAM) {
        s->streams--;
        void (*cb)(void *, rg_http_conn *) = c->on_close;
        c->on_close = NULL;
        if (cb)
            cb(c->close_ud, c);
    }
    uv_close((uv_handle_t *)&c->tcp, rg__on_conn_closed);
    uv_close((uv_handle_t *)&c->timer, rg__on_conn_closed);
}

/* The connection's state changes, and only these: a request begins (IDLE ->
 * READING), is complete (READING -> AWAIT: the handler holds c), is answered
 * (AWAIT -> IDLE) or becomes a stream (AWAIT -> STREAM); the exchange ends
 * (LINGER) from any state but AWAIT, where the handler still holds c. */
static void rg__set_state(rg_http_conn *c, enum rg__state to)
{
    assert((c->state == RG__IDLE && to == RG__READING) ||
           (c->state == RG__READING && to == RG__AWAIT) ||
           (c->state == RG__AWAIT && (to == RG__IDLE || to == RG__STREAM)) ||
           (c->state != RG__AWAIT && to == RG__LINGER));
    c->state = to;
}

/* The handler is done with a connection that closed meanwhile: free it if
 * its handles are gone too. Returns 1 if c was closing. */
static int rg__release_closed(rg_http_conn *c)
{
    if (!c->closing)
        return 0;
    if (c->state == RG__AWAIT) {
        rg__set_state(c, RG__IDLE);
        if (c->handles == 0)
            rg__free_conn(c);
    }
    return 1;
}

/* ---- reading, writing, timers ------------------------------------------- */

static void rg__on_write(uv_write_t *req, int status)
{
    rg__wreq *w = (rg__wreq *)req;
    rg_http_conn *c = req->handle->data;
    c->unsent -= w->len;
    free(w);
    if (status < 0 || (c->close_when_sent && c->unsent == 0)) {
        rg__close(c);
        return;
    }
    if (c->closing)
        return;
    if (c->state == RG__STREAM) {
        if (c->unsent > 0) { /* progress: the stall timer starts again */
            rg__timer(c, c->s->lim.stream_stall_ms);
            return;
        }
        uv_timer_stop(&c->timer);
        if (c->drained)
            rg__ready_push(c);
    } else if (c->throttled && c->unsent <= c->s->lim.max_unsent_bytes) {
        c->throttled = 0;
        if (c->state == RG__IDLE && !c->in_dispatch)
            rg__feed(c);
    }
}

static int rg__write_raw(rg_http_conn *c, const char *head, size_t hlen, const char *body,
                         size_t blen);

/* With TLS: sends the records tls.c has ready (a handshake's, or a
 * response's). Returns 0, or RG_EGONE if closed. */
static int rg__tls_flush(rg_http_conn *c)
{
    size_t n = rg_tls_pending(c->tls);
    if (n == 0)
        return 0;
    char *buf = malloc(n);
    if (!buf) {
        rg__close(c);
        return RG_EGONE;
    }
    n = rg_tls_out(c->tls, buf, n);
    int rc = rg__write_raw(c, buf, n, NULL, 0);
    free(buf);
    return rc;
}

/* Queues head followed by body (both copied; encrypted first with TLS).
 * Returns 0, or RG_EGONE if closed. */
static int rg__write(rg_http_conn *c, const char *head, size_t hlen, const char *body, size_t blen)
{
    if (!c->tls || c->closing)
        return rg__write_raw(c, head, hlen, body, blen);
    if (rg_tls_write(c->tls, head, hlen) || (blen && rg_tls_write(c->tls, body, blen))) {
        rg__close(c);
        return RG_EGONE;
    }
    return rg__tls_flush(c);
}

static int rg__write_raw(rg_http_conn *c, const char *head, size_t hlen, const char *body,
                         size_t blen)
{
    if (c->closing)
        return RG_EGONE;
    rg__wreq *w = hlen + blen < UINT_MAX ? malloc(sizeof *w + hlen + blen) : NULL;
    if (!w) {
        rg__close(c);
        return RG_EGONE;
    }
    memcpy(w->data, head, hlen);
    if (blen)
        memcpy(w->data + hlen, body, blen);
    w->len = hlen + blen;
    uv_buf_t b = uv_buf_init(w->data, (unsigned)w->len);
    if (uv_write(&w->req, (uv_stream_t *)&c->tcp, &b, 1, rg__on_write) != 0) {
        free(w);
        rg__close(c);
        return RG_EGONE;
    }
    c->unsent += w->len;
    if (c->state == RG__STREAM && !uv_is_active((uv_handle_t *)&c->timer))
        rg__timer(c, c->s->lim.stream_stall_ms);
    return 0;
}

static void rg__alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
    (void)hint;
    rg_http_conn *c = h->data;
    *buf = uv_buf_init(c->tls ? c->cipher : c->rbuf, sizeof c->rbuf);
}

static void rg__on_read(uv_stream_t *st, ssize_t n, const uv_buf_t *buf)
{
    (void)buf;
    rg_http_conn *c = st->data;
    if (c->closing || n == 0)
        return;
    if (n < 0) {
        /* EOF: let queued bytes go out first (a half-closing client still
         * reads), unless it is a stream, whose client is gone */
        uv_read_stop(st);
        c->reading = 0;
        if (n == UV_EOF && c->unsent > 0 && c->state != RG__STREAM)
            c->close_when_sent = 1;
        else
            rg__close(c);
        return;
    }
    if (c->tls) { /* ciphertext: to tls.c, whose plaintext rg__feed reads */
        if (rg_tls_in(c->tls, c->cipher, (size_t)n)) {
            rg__close(c);
            return;
        }
        if (c->state != RG__IDLE && c->state != RG__READING)
            return;
        c->rpos = c->rlen = 0;
        rg__feed(c);
        return;
    }
    if (c->state != RG__IDLE && c->state != RG__READING)
        return; /* a stream or a lingering close: discard */
    c->rpos = 0;
    c->rlen = (size_t)n;
    rg__feed(c);
}

static void rg__read(rg_http_conn *c, int on)
{
    if (c->closing || on == c->reading)
        return;
    if (!on) {
        uv_read_stop((uv_stream_t *)&c->tcp);
        c->reading = 0;
    } else if (uv_read_start((uv_stream_t *)&c->tcp, rg__alloc, rg__on_read) == 0) {
        c->reading = 1;
    } else {
        rg__close(c);
    }
}

static void rg__fail(rg_http_conn *c, int status);

static void rg__on_timer(uv_timer_t *t)
{
    rg_http_conn *c = t->data;
    if (c->state == RG__READING) {
        c->s->stats.timeouts++;
        rg__fail(c, 408);
    } else if (c->state == RG__IDLE || c->state == RG__LINGER) {
        rg__close(c);
    } else if (c->state == RG__STREAM) { /* nothing written for stream_stall_ms */
        c->s->stats.slow_streams++;
        rg__close(c);
    }
}

static void rg__timer(rg_http_conn *c, int ms)
{
    if (!c->closing)
        uv_timer_start(&c->timer, rg__on_timer, (uint64_t)ms, 0);
}

static void rg__on_shutdown(uv_shutdown_t *req, int status)
{
    rg_http_conn *c = req->data;
    if (status < 0)
        rg__close(c);
    else
        rg__timer(c, RG__LINGER_MS);
}

/* Ends the exchange after the final response: FIN once it is written, then
 * read and discard until the client closes or the timer fires, so that unread
 * request bytes do not turn the close into a reset that destroys the
 * response at the client. */
static void rg__finish(rg_http_conn *c)
{
    if (c->closing)
        return;
    rg__set_state(c, RG__LINGER);
    c->rlen = 0;
    c->shut.data = c;
    if (uv_shutdown(&c->shut, (uv_stream_t *)&c->tcp, rg__on_shutdown) != 0) {
        rg__close(c);
        return;
    }
    rg__timer(c, c->s->lim.idle_timeout_ms); /* for the response to drain */
    rg__read(c, 1);
}

/* Writes status line and headers (and body unless HEAD) of a response;
 * extra: more header lines, each ending in CRLF, or NULL. */
static void rg__send(rg_http_conn *c, int status, const char *ctype, const char *extra,
                     const char *body, size_t len, int keep)
{
    char head[512 + 512], clen[48] = ""; /* 512 for ours, 512 for extra */
    int nobody = status == 204 || status == 304;
    if (!nobody)
        snprintf(clen, sizeof clen, "Content-Length: %zu\r\n", len);
    int n = snprintf(head, 512,
                     "HTTP/1.1 %d %s\r\nContent-Type: %s\r\n%s"
                     "Connection: %s\r\nCache-Control: no-store\r\n",
                     status, http_status_str((enum http_status)status),
                     ctype ? ctype : "text/plain; charset=utf-8", clen,
                     keep ? "keep-alive" : "close");
    int m = n < 0 || n >= 512 ? -1
            : snprintf(head + n, sizeof head - (size_t)n, "%s\r\n", extra ? extra : "");
    if (m < 0 || (size_t)(n + m) >= sizeof head) { /* a content type or headers far too long */
        rg__close(c);
        return;
    }
    n += m;
    if (nobody || c->is_head)
        len = 0;
    rg__write(c, head, (size_t)n, body, len);
}

/* Answers a request that cannot be served, then closes. */
static void rg__fail(rg_http_conn *c, int status)
{
    const char *reason = http_status_str((enum http_status)status);
    char body[64];
    int n = snprintf(body, sizeof body, "%s\n", reason);
    if (status != 408 && status != 503)
        c->s->stats.bad_requests++;
    c->is_head = 0;
    rg__send(c, status, NULL, NULL, body, (size_t)n, 0);
    rg__finish(c);
}

/* ---- parser callbacks ---------------------------------------------------- */

/* Adds n header bytes to the count; fails with status when over the limit. */
static int rg__count(rg_http_conn *c, size_t n, int status)
{
    c->hdr_bytes += n;
    if (c->hdr_bytes <= c->s->lim.max_header_bytes)
        return 0;
    c->err = status;
    return RG_ELIMIT;
}

/* NUL-ends the string being appended, if any, without trailing blanks
 * (http-parser strips only the leading ones of a header value). */
static void rg__end_str(rg_http_conn *c)
{
    if (c->cur < 0)
        return;
    while (c->len[c->cur] > 0 && (c->arena[c->alen - 1] == ' ' || c->arena[c->alen - 1] == '\t'))
        c->alen--, c->len[c->cur]--;
    c->arena[c->alen++] = '\0';
    c->cur = -1;
}

static void rg__append(rg_http_conn *c, const char *at, size_t n)
{
    memcpy(c->arena + c->alen, at, n);
    c->alen += n;
    c->len[c->cur] += n;
}

static int rg__on_message_begin(http_parser *p)
{
    rg_http_conn *c = p->data;
    size_t cap = 2 * c->s->lim.max_header_bytes + 64;
    if (!c->arena && !(c->arena = malloc(cap))) {
        c->err = 503;
        return RG_ENOMEM;
    }
    c->alen = c->hdr_bytes = c->body_len = 0;
    c->have = 0;
    c->cur = -1;
    c->in_field = c->seen_field = c->trailers = 0;
    c->err = 0;
    rg__set_state(c, RG__READING);
    int ms = c->s->lim.request_timeout_ms;
    if (c->nreq == 0) { /* the first request: within what is left of its deadline */
        uint64_t now = uv_now(c->s->loop);
        uint64_t left = c->deadline > now ? c->deadline - now : 1;
        if (left < (uint64_t)ms)
            ms = (int)left;
    }
    rg__timer(c, ms);
    return 0;
}

static int rg__on_url(http_parser *p, const char *at, size_t n)
{
    rg_http_conn *c = p->data;
    if (rg__count(c, n, 414))
        return RG_ELIMIT;
    if (c->cur != RG__URL) {
        c->cur = RG__URL;
        c->off[RG__URL] = c->alen;
        c->len[RG__URL] = 0;
        c->have |= 1u << RG__URL;
    }
    rg__append(c, at, n);
    return 0;
}

static int rg__on_header_field(http_parser *p, const char *at, size_t n)
{
    rg_http_conn *c = p->data;
    if (!c->in_field) {
        rg__end_str(c);
        c->in_field = c->seen_field = 1;
        c->hname_len = 0;
    }
    if (rg__count(c, n, 431))
        return RG_ELIMIT;
    if (c->hname_len + n < sizeof c->hname)
        memcpy(c->hname + c->hname_len, at, n);
    c->hname_len += n;
    return 0;
}

static int rg__on_header_value(http_parser *p, const char *at, size_t n)
{
    rg_http_conn *c = p->data;
    if (c->in_field) {
        c->in_field = 0;
        for (int i = 1; i < RG__NKEPT && !c->trailers; i++) /* chunked trailers are not kept */
            if (c->hname_len == strlen(rg__kept[i]) &&
                strncasecmp(c->hname, rg__kept[i], c->hname_len) == 0) {
                if (c->have & (1u << i)) { /* a repeated header is ambiguous */
                    c->err = 400;
                    return RG_EINVAL;
                }
                c->cur = i;
                c->off[i] = c->alen;
                c->len[i] = 0;
                c->have |= 1u << i;
            }
    }
    if (rg__count(c, n, 431))
        return RG_ELIMIT;
    if (c->cur >= 0)
        rg__append(c, at, n);
    return 0;
}

static int rg__hexval(char ch)
{
    if (!isxdigit((unsigned char)ch))
        return -1;
    return ch <= '9' ? ch - '0' : (ch | 0x20) - 'a' + 10;
}

int rg_http_unescape(const char *src, size_t n, int plus, char *out, size_t cap)
{
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        char ch = src[i];
        if (ch == '%') {
            int hi = i + 2 < n ? rg__hexval(src[i + 1]) : -1;
            int lo = hi >= 0 ? rg__hexval(src[i + 2]) : -1;
            if (lo < 0 || (hi == 0 && lo == 0))
                return RG_EINVAL;
            ch = (char)(hi * 16 + lo);
            i += 2;
        } else if (ch == '+' && plus) {
            ch = ' ';
        }
        if (o + 1 >= cap)
            return RG_ELIMIT;
        out[o++] = ch;
    }
    if (cap == 0)
        return RG_ELIMIT;
    out[o] = '\0';
    return (int)o;
}

/* Splits the URL into a percent-decoded path and the raw query (both into
 * the arena). Refuses bad escapes, a decoded NUL, and ".." segments. */
static int rg__parse_target(rg_http_conn *c)
{
    const char *url = c->arena + c->off[RG__URL];
    size_t n = c->len[RG__URL];
    struct http_parser_url u;
    http_parser_url_init(&u);
    if (!(c->have & (1u << RG__URL)) || n > 65535 || http_parser_parse_url(url, n, 0, &u) ||
        !(u.field_set & (1u << UF_PATH)))
        return RG_EINVAL;
    const char *src = url + u.field_data[UF_PATH].off;
    size_t slen = u.field_data[UF_PATH].len;
    char *path = c->arena + c->alen;
    int plen = rg_http_unescape(src, slen, 0, path, slen + 1); /* decoding never grows */
    if (plen < 0)
        return RG_EINVAL;
    if (path[0] != '/')
        return RG_EINVAL;
    for (const char *seg = path; seg; seg = strchr(seg + 1, '/'))
        if (strncmp(seg, "/..", 3) == 0 && (seg[3] == '/' || seg[3] == '\0'))
            return RG_EINVAL;
    c->off[RG__PATH] = c->alen;
    c->alen += (size_t)plen + 1;
    c->off[RG__QUERY] = c->alen;
    if (u.field_set & (1u << UF_QUERY)) {
        memcpy(c->arena + c->alen, url + u.field_data[UF_QUERY].off, u.field_data[UF_QUERY].len);
        c->alen += u.field_data[UF_QUERY].len;
    }
    c->arena[c->alen++] = '\0';
    return 0;
}

/* The value of a kept header, or NULL when absent. */
static const char *rg__hdr(const rg_http_conn *c, int i)
{
    return (c->have & (1u << i)) ? c->arena + c->off[i] : NULL;
}

static int rg__on_headers_complete(http_parser *p)
{
    rg_http_conn *c = p->data;
    rg__end_str(c);
    c->trailers = 1;
    c->err = 400;
    if (rg__parse_target(c))
        return RG_EINVAL;
    const char *te = rg__hdr(c, RG__TE), *expect = rg__hdr(c, RG__EXPECT);
    if (te && strcasecmp(te, "chunked") != 0)
        return RG_EINVAL; /* only plain chunked bodies are understood */
    c->err = 417;
    if (expect && strcasecmp(expect, "100-continue") != 0)
        return RG_EINVAL;
    c->err = 413;
    if ((p->flags & F_CONTENTLENGTH) && p->content_length > c->s->lim.max_body_bytes)
        return RG_ELIMIT;
    c->err = 0;
    if (expect && p->http_minor >= 1) {
        static const char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";
        rg__write(c, cont, sizeof cont - 1, NULL, 0);
    }
    return 0;
}

static int rg__on_body(http_parser *p, const char *at, size_t n)
{
    rg_http_conn *c = p->data;
    size_t max = c->s->lim.max_body_bytes;
    if (n > max - c->body_len) {
        c->err = 413;
        return RG_ELIMIT;
    }
    if (c->body_len + n + 1 > c->body_cap) {
        size_t cap = c->body_cap ? c->body_cap * 2 : 1024;
        if (p->content_length != ULLONG_MAX && !(p->flags & F_CHUNKED))
            cap = c->body_len + n + p->content_length + 1; /* what is left is known */
        if (cap < c->body_len + n + 1)
            cap = c->body_len + n + 1;
        if (cap > max + 1)
            cap = max + 1;
        char *b = realloc(c->body, cap);
        if (!b) {
            c->err = 503;
            return RG_ENOMEM;
        }
        c->body = b;
        c->body_cap = cap;
    }
    memcpy(c->body + c->body_len, at, n);
    c->body_len += n;
    return 0;
}

static int rg__on_message_complete(http_parser *p)
{
    rg_http_conn *c = p->data;
    c->keep = http_should_keep_alive(p);
    rg__set_state(c, RG__AWAIT);
    http_parser_pause(p, 1); /* one request at a time */
    return 0;
}

/* ---- requests ----------------------------------------------------------- */

/* Hands the complete request to the handler. */
static void rg__dispatch(rg_http_conn *c)
{
    rg_http_server *s = c->s;
    uv_timer_stop(&c->timer);
    rg__read(c, 0);
    if (c->body)
        c->body[c->body_len] = '\0';
    c->is_head = c->parser.method == HTTP_HEAD;
    rg_http_req req = {
        .method = http_method_str((enum http_method)c->parser.method),
        .path = c->arena + c->off[RG__PATH],
        .query = c->arena + c->off[RG__QUERY],
        .authorization = rg__hdr(c, RG__AUTH),
        .last_event_id = rg__hdr(c, RG__LEID),
        .content_type = rg__hdr(c, RG__CTYPE),
        .cookie = rg__hdr(c, RG__COOKIE),
        .csrf = rg__hdr(c, RG__CSRF),
        .body = c->body ? c->body : "",
        .body_len = c->body_len,
        .peer = c->peer,
    };
    s->stats.requests++;
    c->nreq++;
    c->in_dispatch = 1;
    s->handler(s->ud, c, &req);
    c->in_dispatch = 0;
}

/* Parses buffered input, dispatching complete requests, until a handler
 * owes a response, the input runs out (then reads more) or the connection
 * ends. */
static void rg__feed(rg_http_conn *c)
{
    while (!c->closing && (c->state == RG__IDLE || c->state == RG__READING)) {
        if (c->state == RG__IDLE && c->unsent > c->s->lim.max_unsent_bytes) {
            c->throttled = 1; /* rg__on_write goes on once the client has read */
            rg__read(c, 0);
            return;
        }
        if (c->rlen == 0 && c->tls) { /* the plaintext tls.c has (the handshake goes on) */
            ssize_t got = rg_tls_read(c->tls, c->rbuf, sizeof c->rbuf);
            if (got < 0 || rg__tls_flush(c)) {
                rg__close(c);
                return;
            }
            c->rpos = 0;
            c->rlen = (size_t)got;
        }
        if (c->rlen == 0) {
            rg__read(c, 1);
            return;
        }
        size_t n = http_parser_execute(&c->parser, &c->s->settings, c->rbuf + c->rpos, c->rlen);
        enum http_errno e = HTTP_PARSER_ERRNO(&c->parser);
        if (n > c->rlen)
            n = c->rlen;
        c->rpos += n;
        c->rlen -= n;
        if (e == HPE_PAUSED) {
            http_parser_pause(&c->parser, 0);
            rg__dispatch(c);
        } else if (e != HPE_OK || c->rlen > 0) {
            int st = c->err ? c->err : 400;
            if (e == HPE_HEADER_OVERFLOW)
                st = c->seen_field ? 431 : 414;
            rg__fail(c, st);
        }
    }
}

/* Forgets the request: its strings and body are no longer needed. */
static void rg__done_request(rg_http_conn *c)
{
    free(c->body);
    c->body = NULL;
    c->body_len = c->body_cap = 0;
    c->have = 0;
}

void rg_http_respond(rg_http_conn *c, int status, const char *content_type, const char *body,
                     size_t len)
{
    rg_http_respond_headers(c, status, content_type, NULL, body, len);
}

void rg_http_respond_headers(rg_http_conn *c, int status, const char *content_type,
                             const char *headers, const char *body, size_t len)
{
    if (c->s && c->s->on_respond && c->state == RG__AWAIT)
        c->s->on_respond(c->s->respond_ud, c, status);
    if (rg__release_closed(c) || c->state != RG__AWAIT)
        return;
    if (status < 100 || status > 599)
        status = 500;
    int keep = c->keep && !c->s->closing;
    /* Answered: the handler no longer holds c, so a close from here on (any
     * failure in rg__send or rg__write) frees it in rg__on_conn_closed. */
    rg__set_state(c, RG__IDLE);
    rg__send(c, status, content_type, headers, body ? body : "", body ? len : 0, keep);
    rg__done_request(c); /* after the copy: body may point into the request */
    if (!keep) {
        rg__finish(c);
        return;
    }
    rg__timer(c, c->s->lim.idle_timeout_ms);
    if (!c->in_dispatch) /* else rg__feed, up the stack, goes on */
        rg__feed(c);
}

/* ---- streams ------------------------------------------------------------ */

void rg_http_stream_start(rg_http_conn *c, void (*on_close)(void *ud, rg_http_conn *c), void *ud)
{
    if (c->state != RG__AWAIT)
        return;
    if (c->closing) { /* the stream ended before it began */
        if (on_close)
            on_close(ud, c);
        rg__release_closed(c);
        return;
    }
    static const char head[] = "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
                               "Cache-Control: no-store\r\nConnection: keep-alive\r\n\r\n";
    if (c->s->on_respond)
        c->s->on_respond(c->s->respond_ud, c, 200);
    rg__done_request(c);
    rg__set_state(c, RG__STREAM);
    c->on_close = on_close;
    c->close_ud = ud;
    c->rlen = 0;
    c->s->streams++;
    int sndbuf = RG__STREAM_SNDBUF;
    uv_send_buffer_size((uv_handle_t *)&c->tcp, &sndbuf);
    if (rg__write(c, head, sizeof head - 1, NULL, 0) == 0)
        rg__read(c, 1); /* to notice the client leaving; input is discarded */
}

/* Queues text on a stream, closing it when its client is too far behind. */
static int rg__stream_write(rg_http_conn *c, const char *text, size_t len)
{
    if (!c || c->closing || c->state != RG__STREAM)
        return RG_EGONE;
    if (c->unsent + len > c->s->lim.stream_max_unsent) {
        c->s->stats.slow_streams++;
        rg__close(c);
        return RG_EGONE;
    }
    return rg__write(c, text, len, NULL, 0);
}

int rg_http_stream_send(rg_http_conn *c, const char *id, const char *event, const char *data)
{
    if (!c || c->closing || c->state != RG__STREAM)
        return RG_EGONE;
    if (!data)
        data = "";
    size_t idn = id ? strlen(id) : 0, evn = event ? strlen(event) : 0, dn = strlen(data);
    char *buf = NULL;
    if ((id && strpbrk(id, "\r\n")) || (event && strpbrk(event, "\r\n")) ||
        !(buf = malloc(idn + evn + 7 * dn + 32))) {
        rg__close(c); /* cannot be framed; RG_EGONE always means the stream is gone */
        return RG_EGONE;
    }
    size_t n = 0;
    if (id)
        n += (size_t)sprintf(buf + n, "id: %s\n", id);
    if (event)
        n += (size_t)sprintf(buf + n, "event: %s\n", event);
    /* a line break in data (CRLF, CR or LF) starts another data line */
    n += (size_t)sprintf(buf + n, "data: ");
    for (const char *d = data; *d; d++) {
        if (*d != '\r' && *d != '\n') {
            buf[n++] = *d;
            continue;
        }
        if (d[0] == '\r' && d[1] == '\n')
            d++;
        memcpy(buf + n, "\ndata: ", 7);
        n += 7;
    }
    memcpy(buf + n, "\n\n", 2);
    n += 2;
    int rc = rg__stream_write(c, buf, n);
    free(buf);
    return rc;
}

int rg_http_stream_on_drain(rg_http_conn *c, void (*drained)(void *ud, rg_http_conn *c))
{
    if (!c || c->closing || c->state != RG__STREAM)
        return RG_EGONE;
    c->drained = drained;
    if (c->unsent == 0)
        rg__ready_push(c);
    return 0;
}

int rg_http_authenticated(rg_http_conn *c)
{
    if (c->authed || c->closing || !c->counted)
        return 1; /* a closing connection's answer goes nowhere anyway */
    rg_http_server *s = c->s;
    if (s->active - s->unauth >= s->lim.max_connections && !rg__evict(s, 1))
        return 0;
    c->authed = 1;
    s->unauth--;
    return 1;
}

void rg_http_stream_end(rg_http_conn *c)
{
    if (c && !c->closing && c->state == RG__STREAM)
        rg__close(c);
}

int rg_http_stream_ping(rg_http_conn *c)
{
    static const char ping[] = ": keep-alive\n\n";
    return rg__stream_write(c, ping, sizeof ping - 1);
}

/* ---- listening ---------------------------------------------------------- */

static int rg__port_of(const struct sockaddr_storage *ss)
{
    return ntohs(ss->ss_family == AF_INET6 ? ((const struct sockaddr_in6 *)ss)->sin6_port
                                           : ((const struct sockaddr_in *)ss)->sin_port);
}

/* Formats the peer address as "ip:port" ("[ip]:port" for IPv6). */
static void rg__peer(rg_http_conn *c)
{
    struct sockaddr_storage ss;
    int len = sizeof ss;
    char ip[INET6_ADDRSTRLEN] = "?";
    snprintf(c->peer, sizeof c->peer, "?");
    if (uv_tcp_getpeername(&c->tcp, (struct sockaddr *)&ss, &len) != 0 ||
        uv_ip_name((struct sockaddr *)&ss, ip, sizeof ip) != 0)
        return;
    int v6 = ss.ss_family == AF_INET6;
    snprintf(c->peer, sizeof c->peer, v6 ? "[%s]:%d" : "%s:%d", ip, rg__port_of(&ss));
    c->addr[0] = (unsigned char)(v6 ? 6 : 4);
    if (v6)
        memcpy(c->addr + 1, &((struct sockaddr_in6 *)&ss)->sin6_addr, 16);
    else
        memcpy(c->addr + 1, &((struct sockaddr_in *)&ss)->sin_addr, 4);
}

/* Unauthenticated connections from c's address, c not included. */
static int rg__same_address(rg_http_server *s, const rg_http_conn *c)
{
    int n = 0;
    for (const rg_http_conn *o = s->conns; o; o = o->next)
        n += o != c && o->counted && !o->authed && !memcmp(o->addr, c->addr, sizeof c->addr);
    return n;
}

/* Whether the client of an unauthenticated connection has sent nothing we
 * have not read: only such a connection is a candidate to make room (one
 * whose request waits in its socket is just not read yet, as in a burst). */
static int rg__silent(rg_http_conn *o)
{
    uv_os_fd_t fd;
    int n = 0;
    return o->rlen == 0 && uv_fileno((uv_handle_t *)&o->tcp, &fd) == 0 &&
           ioctl(fd, FIONREAD, &n) == 0 && n == 0;
}

/* Whether a connection of the pool authed may be closed to make room: pass
 * 0, it has sent nothing but is waiting for its first request; pass 1, it is
 * closing after its last answer, or between requests either silent or not
 * reading what it was sent. A connection whose handler owes an answer, a
 * stream, or one whose request waits unread in its socket is never one. */
static int rg__evictable(rg_http_conn *o, int authed, int pass)
{
    if (!o->counted || o->authed != authed || o->closing)
        return 0;
    if (pass == 0)
        return o->nreq == 0 && o->unsent == 0 &&
               (o->state == RG__IDLE || o->state == RG__READING) && rg__silent(o);
    return o->state == RG__LINGER ||
           (o->state == RG__IDLE && o->nreq > 0 && (o->unsent > 0 || rg__silent(o)));
}

/* Makes room among the unauthenticated (authed 0) or the authenticated
 * connections: closes the oldest one rg__evictable in pass 0, else in pass 1
 * (its client just opens another). Returns 0 when there is none (every one
 * is busy or has sent something). */
static int rg__evict(rg_http_server *s, int authed)
{
    rg_http_conn *tail = s->conns, *victim = NULL;
    while (tail && tail->next)
        tail = tail->next;
    for (int pass = 0; pass < 2 && !victim; pass++)
        for (rg_http_conn *o = tail; o && !victim; o = o->prev) /* oldest first */
            if (rg__evictable(o, authed, pass))
                victim = o;
    if (!victim)
        return 0;
    s->stats.evicted++;
    rg__close(victim);
    return 1;
}

static void rg__on_connection(uv_stream_t *ls, int status)
{
    rg_http_server *s = ls->data;
    if (status < 0 || s->closing)
        return;
    rg_http_conn *c = calloc(1, sizeof *c);
    if (!c)
        return;
    c->s = s;
    uv_tcp_init(s->loop, &c->tcp);
    uv_timer_init(s->loop, &c->timer);
    c->tcp.data = c->timer.data = c;
    c->handles = 2;
    c->cur = -1;
    c->next = s->conns;
    if (s->conns)
        s->conns->prev = c;
    s->conns = c;
    s->nconns++;
    if (uv_accept(ls, (uv_stream_t *)&c->tcp) != 0) {
        rg__close(c);
        return;
    }
    uv_tcp_nodelay(&c->tcp, 1);
    rg__peer(c);
    if (s->tls && (!(c->cipher = malloc(sizeof c->rbuf)) || !(c->tls = rg_tls_accept(s->tls)))) {
        rg__close(c);
        return;
    }
    if (rg__same_address(s, c) >= s->lim.max_per_address ||
        (s->unauth >= s->lim.max_unauthenticated && !rg__evict(s, 0))) {
        s->stats.rejected_connections++;
        rg__fail(c, 503);
        return;
    }
    s->active++;
    s->unauth++;
    c->counted = 1;
    http_parser_init(&c->parser, HTTP_REQUEST);
    c->parser.data = c;
    c->state = RG__IDLE;
    int first = s->lim.first_request_timeout_ms;
    /* the loop's clock is read again: after a blocking call (a store write
     * that waited on a lock) it is stale, and a deadline counted from it
     * would close a connection that has only just been accepted */
    uv_update_time(s->loop);
    c->deadline = uv_now(s->loop) + (uint64_t)first;
    rg__timer(c, first < s->lim.idle_timeout_ms ? first : s->lim.idle_timeout_ms);
    rg__read(c, 1);
}

/* http-parser's own header limit is process-wide: raise it to the largest
 * limit of any server; each server's exact limit is counted in callbacks. */
static void rg__parser_limit(size_t n);

/* s->lim from lim: a zero (or negative) limit means the default */
static void rg__limits_set(rg_http_server *s, const rg_http_limits *lim)
{
    rg_http_limits d = RG_HTTP_LIMITS_DEFAULT, *l = &s->lim;
    *l = lim ? *lim : d;
#define RG__DEFAULT(f) l->f = l->f > 0 ? l->f : d.f
    RG__DEFAULT(max_header_bytes);
    RG__DEFAULT(max_body_bytes);
    RG__DEFAULT(max_connections);
    RG__DEFAULT(idle_timeout_ms);
    RG__DEFAULT(request_timeout_ms);
    RG__DEFAULT(max_unauthenticated);
    RG__DEFAULT(max_per_address);
    RG__DEFAULT(first_request_timeout_ms);
    RG__DEFAULT(max_unsent_bytes);
    RG__DEFAULT(stream_max_unsent);
    RG__DEFAULT(stream_stall_ms);
#undef RG__DEFAULT
    rg__parser_limit(s->lim.max_header_bytes);
}

static void rg__parser_limit(size_t n)
{
    static size_t cur;
    if (n > cur && n < UINT32_MAX) {
        cur = n;
        http_parser_set_max_header_size((uint32_t)n);
    }
}

int rg_http_listen(uv_loop_t *loop, const char *host, int port, const rg_http_limits *lim,
                   rg_http_handler handler, void *ud, rg_http_server **out)
{
    struct sockaddr_storage addr;
    int rc;
    *out = NULL;
    if (!host || !handler || port < 0 || port > 65535)
        return UV_EINVAL;
    if (strchr(host, ':'))
        rc = uv_ip6_addr(host, port, (struct sockaddr_in6 *)&addr);
    else
        rc = uv_ip4_addr(host, port, (struct sockaddr_in *)&addr);
    if (rc)
        return rc;
    rg_http_server *s = calloc(1, sizeof *s);
    if (!s)
        return UV_ENOMEM;
    rg__limits_set(s, lim);
    s->loop = loop;
    s->handler = handler;
    s->ud = ud;
    http_parser_settings_init(&s->settings);
    s->settings.on_message_begin = rg__on_message_begin;
    s->settings.on_url = rg__on_url;
    s->settings.on_header_field = rg__on_header_field;
    s->settings.on_header_value = rg__on_header_value;
    s->settings.on_headers_complete = rg__on_headers_complete;
    s->settings.on_body = rg__on_body;
    s->settings.on_message_complete = rg__on_message_complete;
    if ((rc = uv_tcp_init(loop, &s->listener)) != 0) {
        free(s);
        return rc;
    }
    s->listener.data = s;
    s->cur = &s->listener;
    s->shandles = 1;
    struct sockaddr_storage bound;
    int blen = sizeof bound;
    if ((rc = uv_tcp_bind(&s->listener, (const struct sockaddr *)&addr, 0)) != 0 ||
        (rc = uv_listen((uv_stream_t *)&s->listener, RG__BACKLOG, rg__on_connection)) != 0 ||
        (rc = uv_tcp_getsockname(&s->listener, (struct sockaddr *)&bound, &blen)) != 0) {
        /* freed in the close callback: the caller must run the loop once */
        s->closing = 1;
        uv_close((uv_handle_t *)&s->listener, rg__on_listener_closed);
        return rc;
    }
    s->port = rg__port_of(&bound);
    uv_idle_init(loop, &s->turn);
    s->turn.data = s;
    s->turn_open = 1;
    s->shandles++;
    *out = s;
    return 0;
}

int rg_http_port(const rg_http_server *s)
{
    return s->port;
}

void rg_http_close(rg_http_server *s, void (*done)(void *ud), void *ud)
{
    if (!s || s->closing)
        return;
    s->closing = 1;
    s->done = done;
    s->done_ud = ud;
    uv_close((uv_handle_t *)s->cur, rg__on_listener_closed);
    s->turn_open = 0;
    uv_close((uv_handle_t *)&s->turn, rg__on_listener_closed);
    for (rg_http_conn *c = s->conns; c; c = c->next)
        rg__close(c);
}

void rg_http_stats_get(const rg_http_server *s, rg_http_stats *st)
{
    *st = s->stats;
    st->connections = s->active;
    st->unauthenticated = s->unauth;
    st->streams = s->streams;
}

void rg_http_on_respond(rg_http_server *s, void (*fn)(void *ud, rg_http_conn *c, int status),
                        void *ud)
{
    s->on_respond = fn;
    s->respond_ud = ud;
}

void rg_http_set_tls(rg_http_server *s, rg_tls *tls)
{
    s->tls = tls;
}

/* The address to parse for host:port. */
static int rg__addr(const char *host, int port, struct sockaddr_storage *addr)
{
    if (!host || port < 0 || port > 65535)
        return UV_EINVAL;
    if (strchr(host, ':'))
        return uv_ip6_addr(host, port, (struct sockaddr_in6 *)addr);
    return uv_ip4_addr(host, port, (struct sockaddr_in *)addr);
}

int rg_http_relisten(rg_http_server *s, const char *host, int port)
{
    struct sockaddr_storage addr, bound;
    int blen = sizeof bound, rc;
    if (s->closing)
        return UV_ECANCELED;
    if ((rc = rg__addr(host, port, &addr)) != 0)
        return rc;
    uv_tcp_t *l = calloc(1, sizeof *l);
    if (!l)
        return UV_ENOMEM;
    if ((rc = uv_tcp_init(s->loop, l)) != 0) {
        free(l);
        return rc;
    }
    l->data = s;
    s->shandles++;
    if ((rc = uv_tcp_bind(l, (const struct sockaddr *)&addr, 0)) != 0 ||
        (rc = uv_listen((uv_stream_t *)l, RG__BACKLOG, rg__on_connection)) != 0 ||
        (rc = uv_tcp_getsockname(l, (struct sockaddr *)&bound, &blen)) != 0) {
        uv_close((uv_handle_t *)l, rg__on_listener_closed); /* the old one stays */
        return rc;
    }
    uv_close((uv_handle_t *)s->cur, rg__on_listener_closed);
    s->cur = l;
    s->port = rg__port_of(&bound);
    return 0;
}

void rg_http_set_limits(rg_http_server *s, const rg_http_limits *lim)
{
    rg__limits_set(s, lim);
}
