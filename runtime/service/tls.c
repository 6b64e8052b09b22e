/*
 * tls.c - TLS for the HTTP server (see tls.h), with OpenSSL on memory BIOs.
 *
 * The event loop owns the sockets; OpenSSL never touches them. Each
 * connection has an SSL object between two memory BIOs: what uv_read brings
 * is written into the read BIO (rg_tls_in), SSL_read takes the plaintext out
 * for the HTTP parser (rg_tls_read), SSL_write puts a response in and the
 * records it makes are taken from the write BIO (rg_tls_out) for uv_write.
 * The handshake runs inside SSL_read, its records leave the same way.
 *
 * The certificate and key are read into an SSL_CTX; rg_tls_reload reads them
 * again (SIGHUP) into a new one, which new connections use, while those open
 * keep theirs (an SSL holds a reference to its SSL_CTX). A pair that does
 * not load is refused and the old one stays. TLS 1.2 at least.
 */
#include "service/tls.h"

#include <openssl/err.h>
#include <openssl/ssl.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct rg_tls {
    SSL_CTX *ctx;
    char *cert, *key;
};

struct rg_tls_conn {
    SSL *ssl;
    BIO *in, *out; /* owned by ssl */
};

/* OpenSSL's last error as text, the queue emptied. */
static void rg__ssl_error(char *err, size_t errlen, const char *what, const char *path)
{
    unsigned long e = ERR_get_error();
    char buf[256] = "";
    if (e)
        ERR_error_string_n(e, buf, sizeof buf);
    ERR_clear_error();
    snprintf(err, errlen, "%s %s: %s", what, path, *buf ? buf : "not usable");
}

static SSL_CTX *rg__ctx(const char *cert, const char *key, char *err, size_t errlen)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    if (!ctx) {
        rg__ssl_error(err, errlen, "cannot create a TLS context for", cert);
        return NULL;
    }
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE);
    if (SSL_CTX_use_certificate_chain_file(ctx, cert) != 1) {
        rg__ssl_error(err, errlen, "cannot load the TLS certificate", cert);
    } else if (SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) != 1) {
        rg__ssl_error(err, errlen, "cannot load the TLS key", key);
    } else if (SSL_CTX_check_private_key(ctx) != 1) {
        rg__ssl_error(err, errlen, "the TLS key does not match the certificate: key", key);
    } else {
        return ctx;
    }
    SSL_CTX_free(ctx);
    return NULL;
}

int rg_tls_new(rg_tls **out, const char *cert, const char *key, char *err, size_t errlen)
{
    rg_tls *t = calloc(1, sizeof *t);
    *out = NULL;
    if (!t || !(t->cert = strdup(cert)) || !(t->key = strdup(key))) {
        rg_tls_free(t);
        return rg_fail(err, errlen, RG_ENOMEM, "out of memory");
    }
    if (!(t->ctx = rg__ctx(cert, key, err, errlen))) {
        rg_tls_free(t);
        return RG_EINVAL;
    }
    *out = t;
    return RG_OK;
}

int rg_tls_reload(rg_tls *t, char *err, size_t errlen)
{
    SSL_CTX *ctx = rg__ctx(t->cert, t->key, err, errlen);
    if (!ctx)
        return RG_EINVAL;
    SSL_CTX_free(t->ctx); /* connections open on it keep it until they end */
    t->ctx = ctx;
    return RG_OK;
}

void rg_tls_free(rg_tls *t)
{
    if (!t)
        return;
    SSL_CTX_free(t->ctx);
    free(t->cert);
    free(t->key);
    free(t);
}

rg_tls_conn *rg_tls_accept(rg_tls *t)
{
    rg_tls_conn *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    c->ssl = SSL_new(t->ctx);
    c->in = BIO_new(BIO_s_mem());
    c->out = BIO_new(BIO_s_mem());
    if (!c->ssl || !c->in || !c->out) {
        SSL_free(c->ssl);
        BIO_free(c->in);
        BIO_free(c->out);
        free(c);
        return NULL;
    }
    BIO_set_mem_eof_return(c->in, -1); /* empty: "try again", not end of file */
    SSL_set_bio(c->ssl, c->in, c->out);
    SSL_set_accept_state(c->ssl);
    return c;
}

void rg_tls_conn_free(rg_tls_conn *c)
{
    if (!c)
        return;
    SSL_free(c->ssl); /* and its BIOs */
    free(c);
}

int rg_tls_in(rg_tls_conn *c, const char *data, size_t n)
{
    if (n > RG_TLS_MAX_BACKLOG || BIO_ctrl_pending(c->in) > RG_TLS_MAX_BACKLOG)
        return RG_EINVAL; /* input nobody reads: a client sending on a stream */
    return BIO_write(c->in, data, (int)n) == (int)n ? RG_OK : RG_ENOMEM;
}

ssize_t rg_tls_read(rg_tls_conn *c, char *buf, size_t cap)
{
    ERR_clear_error();
    int n = SSL_read(c->ssl, buf, cap > INT32_MAX ? INT32_MAX : (int)cap);
    if (n > 0)
        return n;
    switch (SSL_get_error(c->ssl, n)) {
    case SSL_ERROR_WANT_READ:
    case SSL_ERROR_WANT_WRITE:
        return 0; /* more records needed (the handshake's answer is in rg_tls_out) */
    default: /* the client's close_notify; not TLS, a failed handshake, a bad record */
        ERR_clear_error();
        return RG_EIO;
    }
}

int rg_tls_write(rg_tls_conn *c, const char *data, size_t n)
{
    while (n > 0) {
        ERR_clear_error();
        int k = SSL_write(c->ssl, data, n > INT32_MAX ? INT32_MAX : (int)n);
        if (k <= 0)
            return RG_EIO; /* no handshake done, or the session failed */
        data += k;
        n -= (size_t)k;
    }
    return RG_OK;
}

size_t rg_tls_pending(rg_tls_conn *c) { return BIO_ctrl_pending(c->out); }

size_t rg_tls_out(rg_tls_conn *c, char *buf, size_t cap)
{
    int n = BIO_read(c->out, buf, cap > INT32_MAX ? INT32_MAX : (int)cap);
    return n > 0 ? (size_t)n : 0;
}
