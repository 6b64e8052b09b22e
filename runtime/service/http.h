/*
 * http.h - a small HTTP/1.1 server on a libuv loop, parsed with http-parser.
 *
 * It knows nothing of regimen: it accepts connections, parses requests under
 * limits (request line and headers, body size, connections, idle and
 * slow-request timeouts), hands each complete request to one handler, and
 * writes the handler's response. A handler may instead turn the connection
 * into a Server-Sent Events stream and push events on it later.
 *
 * Ownership: rg_http_listen creates the server on a loop the caller owns;
 * rg_http_close stops accepting, closes every connection (streams included)
 * and calls done(ud) once all handles are closed, after which the server's
 * memory is gone. A connection pointer handed to the handler stays valid until
 * the response is written (plain requests) or until the on_close callback of
 * the stream fires (streams); never keep it longer.
 */
#ifndef RG_HTTP_H
#define RG_HTTP_H

#include "core/rg.h"

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

typedef struct rg_http_limits {
    size_t max_header_bytes;  /* request line + headers (default 16 KiB) */
    size_t max_body_bytes;    /* default 1 MiB */
    int max_connections;      /* authenticated connections (default 256): see rg_http_authenticated */
    int idle_timeout_ms;      /* keep-alive connection with no request in progress (default 30 s) */
    int request_timeout_ms;   /* from a request's first byte to its last (default 10 s) */
    /* Connections that have not shown a token yet (default 128). When they
     * are all taken, a new connection closes the oldest one that is waiting
     * for its first request or idle between requests; only when every one is
     * busy (a response owed or being written) is the new one refused (503). */
    int max_unauthenticated;
    int max_per_address;          /* unauthenticated connections from one IP (default 32): 503 beyond */
    int first_request_timeout_ms; /* from accepting to the first request's last byte (default 5 s) */
    size_t max_unsent_bytes;      /* over this, a connection's next request is not read (default 1 MiB) */
    size_t stream_max_unsent;     /* a stream further behind than this is closed (default 1 MiB) */
    int stream_stall_ms;          /* a stream whose unsent bytes do not move this long is closed (10 s) */
} rg_http_limits;

#define RG_HTTP_LIMITS_DEFAULT                                                              \
    ((rg_http_limits){.max_header_bytes = 16384, .max_body_bytes = 1u << 20,                \
                      .max_connections = 256, .idle_timeout_ms = 30000,                     \
                      .request_timeout_ms = 10000, .max_unauthenticated = 128,              \
                      .max_per_address = 32, .first_request_timeout_ms = 5000,              \
                      .max_unsent_bytes = 1u << 20, .stream_max_unsent = 1u << 20,          \
                      .stream_stall_ms = 10000})

typedef struct rg_http_server rg_http_server;
typedef struct rg_http_conn rg_http_conn;

typedef struct rg_http_req {
    const char *method;        /* "GET", "POST", ... */
    const char *path;          /* decoded path without the query: "/v1/events" */
    const char *query;         /* raw query string without '?', or "" */
    const char *authorization; /* the Authorization header value, or NULL */
    const char *last_event_id; /* the Last-Event-ID header value, or NULL */
    const char *content_type;  /* or NULL */
    const char *cookie;        /* the Cookie header value, or NULL */
    const char *csrf;          /* the X-CSRF-Token header value, or NULL */
    const char *body;          /* NUL-terminated; body_len bytes */
    size_t body_len;
    const char *peer;          /* "127.0.0.1:53211" */
} rg_http_req;

/* Called once per complete request. The handler must eventually call exactly
 * one of rg_http_respond or rg_http_stream_start for this connection, either
 * before returning or later (the connection reads nothing more until then).
 * The strings in req are valid until that call. */
typedef void (*rg_http_handler)(void *ud, rg_http_conn *c, const rg_http_req *req);

/* Listens on host:port (port 0 picks a free one; rg_http_port tells which). */
int rg_http_listen(uv_loop_t *loop, const char *host, int port, const rg_http_limits *lim,
                   rg_http_handler handler, void *ud, rg_http_server **out);
int rg_http_port(const rg_http_server *s);
/* Listens on host:port instead (a reload that changed "listen"): the new
 * address is bound first, and only then is the old listener closed; the
 * connections it accepted go on until they end. On failure (a libuv error
 * code) the old listener stays. */
int rg_http_relisten(rg_http_server *s, const char *host, int port);
/* New limits (a reload): what is decided from now on (connections admitted,
 * requests read, streams checked) follows them; a zero limit is the default. */
void rg_http_set_limits(rg_http_server *s, const rg_http_limits *lim);
/* Stops accepting and closes every connection; done(ud) runs when all are
 * closed (on the loop). */
void rg_http_close(rg_http_server *s, void (*done)(void *ud), void *ud);

/* Sends a complete response (Content-Length, Connection: keep-alive unless
 * the client asked to close). body is copied. */
void rg_http_respond(rg_http_conn *c, int status, const char *content_type, const char *body,
                     size_t len);
/* The same with more header lines (each ending in "\r\n", under 512 bytes in
 * all), e.g. a page's Content-Security-Policy. */
void rg_http_respond_headers(rg_http_conn *c, int status, const char *content_type,
                             const char *headers, const char *body, size_t len);

/* The handler found a valid token (or ticket) on c's request: c moves from
 * the unauthenticated connections to the authenticated ones (max_connections)
 * for the rest of its life. When those are all taken, the oldest idle one
 * (silent, or not reading its answers; never a stream nor one owed an
 * answer) is closed to make room. Returns 1, or 0 when there is none (the
 * handler then answers 503; c stays unauthenticated). */
int rg_http_authenticated(rg_http_conn *c);

/* Turns the connection into an SSE stream: sends 200 with
 * text/event-stream headers and keeps it open. on_close(ud, c) runs once when
 * the stream ends (client gone, rg_http_close, or error). */
void rg_http_stream_start(rg_http_conn *c, void (*on_close)(void *ud, rg_http_conn *c), void *ud);
/* Queues one SSE event ("id: ...\nevent: ...\ndata: ...\n\n"; data must not
 * contain newlines). Returns 0, or RG_EGONE if the stream is closed or its client
 * is too slow (more than stream_max_unsent bytes unsent), in which case it is
 * closed. A stream whose unsent bytes make no progress for stream_stall_ms is
 * closed too. */
int rg_http_stream_send(rg_http_conn *c, const char *id, const char *event, const char *data);
/* Asks for drained(ud, c) (ud: the stream's) once everything queued on the
 * stream is written, e.g. to send the next page of a backlog: always from the
 * loop, later, a few streams' callbacks per loop iteration, so that many
 * streams' pages take turns with other requests. Returns 0, or RG_EGONE when the
 * stream is closed. One call, one callback; never after on_close. */
int rg_http_stream_on_drain(rg_http_conn *c, void (*drained)(void *ud, rg_http_conn *c));
/* Ends a stream (its on_close runs), e.g. when it could not be fed in order:
 * the client reconnects with Last-Event-ID. */
void rg_http_stream_end(rg_http_conn *c);
/* The one percent-decoder (the path here, query values in api.c): n bytes
 * at src into out (cap bytes with the NUL); '+' becomes a space when plus.
 * Returns the decoded length, RG_EINVAL for an escape that is not %XX with
 * two hex digits or is %00, or RG_ELIMIT when it does not fit in cap. */
int rg_http_unescape(const char *src, size_t n, int plus, char *out, size_t cap);

/* A comment line (": keep-alive") to keep proxies from closing the stream.
 * Returns 0, or RG_EGONE as rg_http_stream_send. */
int rg_http_stream_ping(rg_http_conn *c);

/* Speaks TLS (tls.h) on the connections accepted from now on; tls is the
 * caller's and must outlive the server. */
typedef struct rg_tls rg_tls;
void rg_http_set_tls(rg_http_server *s, rg_tls *tls);

/* fn(ud, c, status) as each response to a request starts (a stream: 200),
 * before anything of it is written: the service's audit trail. */
void rg_http_on_respond(rg_http_server *s, void (*fn)(void *ud, rg_http_conn *c, int status),
                        void *ud);

typedef struct rg_http_stats {
    uint64_t requests, bad_requests, rejected_connections, timeouts;
    uint64_t evicted;       /* unauthenticated connections closed to admit a new one */
    uint64_t slow_streams;  /* streams closed for being too far behind or stalled */
    int connections, streams;
    int unauthenticated;    /* of connections, those not authenticated */
} rg_http_stats;
void rg_http_stats_get(const rg_http_server *s, rg_http_stats *st);

#endif
