/*
 * tls.h - TLS for the HTTP server (tls.c): OpenSSL on memory BIOs, so that
 * the libuv loop keeps doing all the socket I/O.
 *
 * Ownership: rg_tls_new creates a server context from a certificate (PEM,
 * the chain) and key file the caller names; rg_tls_free frees it (after the
 * connections, which hold their own reference). rg_tls_accept creates one
 * connection's TLS state, rg_tls_conn_free frees it.
 */
#ifndef RG_TLS_H
#define RG_TLS_H

#include "core/rg.h"

#include <stddef.h>
#include <sys/types.h>

#define RG_TLS_MAX_BACKLOG (1u << 20) /* ciphertext taken in and not read yet */

typedef struct rg_tls rg_tls;
typedef struct rg_tls_conn rg_tls_conn;

int rg_tls_new(rg_tls **out, const char *cert, const char *key, char *err, size_t errlen);
/* Reads the certificate and key again (SIGHUP): new connections use them;
 * on failure (err says why) the old pair stays. */
int rg_tls_reload(rg_tls *t, char *err, size_t errlen);
void rg_tls_free(rg_tls *t);

rg_tls_conn *rg_tls_accept(rg_tls *t); /* NULL: out of memory */
void rg_tls_conn_free(rg_tls_conn *c);
/* Ciphertext from the socket in; RG_EINVAL when too much waits unread. */
int rg_tls_in(rg_tls_conn *c, const char *data, size_t n);
/* Plaintext out: bytes (> 0), 0 when more ciphertext is needed, RG_EIO
 * when the session ended (the client closed it, or it is not TLS). */
ssize_t rg_tls_read(rg_tls_conn *c, char *buf, size_t cap);
/* Plaintext in, to be sent; RG_EIO when the session cannot carry it. */
int rg_tls_write(rg_tls_conn *c, const char *data, size_t n);
/* Ciphertext to send (handshake and records): how much, and taking it. */
size_t rg_tls_pending(rg_tls_conn *c);
size_t rg_tls_out(rg_tls_conn *c, char *buf, size_t cap);

#endif
