/*
 * webhook.c - webhook delivery (see webhook.h).
 *
 * libcurl's multi interface on the libuv loop: curl tells us which sockets
 * to watch (uv_poll per socket, freed in its close callback) and when to
 * call it back (one uv_timer); uv tells curl when a socket is ready. Nothing
 * here blocks the loop. Depends on libcurl, libuv, store.c and feed.c, and
 * on OpenSSL's libcrypto for the signatures (HMAC-SHA256, base64).
 */
#include "service/webhook.h"

#include "core/feed.h"

#include <curl/curl.h>
#include <openssl/evp.h>
#include <openssl/params.h>

#include <stdlib.h>
#include <string.h>
#include <time.h>

#define RG_HOOK_MAX 64
#define RG_HOOK_BACKOFF_MIN 1000
#define RG_HOOK_BACKOFF_MAX (5 * 60 * 1000)
#define RG_HOOK_TIMEOUT_MS 10000

typedef struct rg__hook {
    rg_webhooks *w;
    char clinic[80];
    char *url;
    rg_webhook_key keys[RG_WEBHOOK_KEYS];
    int nkeys;
    CURL *easy;       /* the delivery in flight, or NULL */
    struct curl_slist *headers;
    char *body;
    int64_t seq;      /* sequence number in flight */
    uv_timer_t retry; /* backoff before the next attempt */
    uv_timer_t later; /* the next notify_at still to come */
    int waiting, backoff_ms;
    int off;          /* the clinic's lease went to another worker (rg_webhooks_drop) */
} rg__hook;

struct rg_webhooks {
    uv_loop_t *loop;
    rg_store *st;
    CURLM *multi;
    uv_timer_t timeout;
    rg__hook hooks[RG_HOOK_MAX];
    int nhooks, closing, pending_closes;
    uint64_t delivered, failures;
    const rg_zone *(*zone_of)(void *ud, const char *clinic);
    void *zone_ud;
    void (*done)(void *);
    void *done_ud;
};

typedef struct rg__sock {
    uv_poll_t poll;
    curl_socket_t fd;
    rg_webhooks *w;
    int counted; /* its close is awaited by rg_webhooks_close */
} rg__sock;

static void rg__start(rg__hook *h);

int rg_webhook_key_parse(const char *text, rg_webhook_key *k)
{
    unsigned char buf[3 * 128 / 4 + 3];
    if (!text || strncmp(text, "whsec_", 6))
        return RG_EINVAL;
    const char *b64 = text + 6;
    size_t n = strlen(b64);
    if (n == 0 || n % 4 || n > 128)
        return RG_EINVAL;
    int got = EVP_DecodeBlock(buf, (const unsigned char *)b64, (int)n);
    if (got < 0)
        return RG_EINVAL;
    /* EVP_DecodeBlock counts the padding as zero bytes: take them off */
    got -= (b64[n - 1] == '=') + (b64[n - 2] == '=');
    if (got < 24 || got > (int)sizeof k->key)
        return RG_EINVAL;
    memcpy(k->key, buf, (size_t)got);
    k->len = (size_t)got;
    return RG_OK;
}

int rg_webhook_sign(const rg_webhook_key *keys, int nkeys, const char *id, long long ts,
                    const char *body, size_t len, char *out, size_t outlen)
{
    char head[200];
    int hl = snprintf(head, sizeof head, "%s.%lld.", id, ts);
    size_t o = 0;
    if (hl < 0 || (size_t)hl >= sizeof head || outlen == 0)
        return RG_EINVAL;
    out[0] = '\0';
    for (int i = 0; i < nkeys; i++) {
        unsigned char mac[EVP_MAX_MD_SIZE];
        EVP_MAC *m = EVP_MAC_fetch(NULL, "HMAC", NULL);
        EVP_MAC_CTX *ctx = m ? EVP_MAC_CTX_new(m) : NULL;
        OSSL_PARAM params[] = {OSSL_PARAM_construct_utf8_string("digest", (char *)"SHA256", 0),
                               OSSL_PARAM_construct_end()};
        size_t mlen = 0;
        int ok = ctx && EVP_MAC_init(ctx, keys[i].key, keys[i].len, params) &&
                 EVP_MAC_update(ctx, (const unsigned char *)head, (size_t)hl) &&
                 EVP_MAC_update(ctx, (const unsigned char *)body, len) &&
                 EVP_MAC_final(ctx, mac, &mlen, sizeof mac);
        EVP_MAC_CTX_free(ctx);
        EVP_MAC_free(m);
        if (!ok)
            return RG_ENOMEM;
        char b64[4 * ((EVP_MAX_MD_SIZE + 2) / 3) + 1];
        int bl = EVP_EncodeBlock((unsigned char *)b64, mac, (int)mlen);
        if (o + (i ? 1 : 0) + 3 + (size_t)bl + 1 > outlen)
            return RG_EINVAL;
        o += (size_t)sprintf(out + o, "%sv1,%s", i ? " " : "", b64);
    }
    return RG_OK;
}

/* Frees the delivery that finished, or ends the one in flight: its cursor
 * did not move, so whoever sends next sends it again with the same key. */
static void rg__abandon(rg__hook *h)
{
    if (!h->easy)
        return;
    curl_multi_remove_handle(h->w->multi, h->easy);
    curl_easy_cleanup(h->easy);
    curl_slist_free_all(h->headers);
    free(h->body);
    h->easy = NULL;
    h->headers = NULL;
    h->body = NULL;
}

static void rg__on_retry(uv_timer_t *t)
{
    rg__hook *h = t->data;
    h->waiting = 0;
    rg__start(h);
}

static void rg__on_later(uv_timer_t *t)
{
    rg__start(t->data);
}

static void rg__finish(rg__hook *h, CURLcode res, long status)
{
    rg_webhooks *w = h->w;
    char err[256];
    int ok = res == CURLE_OK && status >= 200 && status < 300;
    if (ok) {
        if (rg_store_webhook_sent(w->st, h->clinic, h->seq) == RG_OK) {
            w->delivered++;
            h->backoff_ms = 0;
        } else {
            ok = 0; /* not recorded: send again (same key) rather than lose it */
            snprintf(err, sizeof err, "delivered but not recorded: %s", rg_store_errmsg(w->st));
        }
    } else if (res != CURLE_OK) {
        snprintf(err, sizeof err, "%s", curl_easy_strerror(res));
    } else {
        snprintf(err, sizeof err, "HTTP status %ld", status);
    }
    rg__abandon(h);
    if (w->closing)
        return;
    if (ok) {
        rg__start(h);
        return;
    }
    w->failures++;
    rg_store_webhook_failed(w->st, h->clinic, err);
    h->backoff_ms = h->backoff_ms ? h->backoff_ms * 2 : RG_HOOK_BACKOFF_MIN;
    if (h->backoff_ms > RG_HOOK_BACKOFF_MAX)
        h->backoff_ms = RG_HOOK_BACKOFF_MAX;
    rg_log("warn", "clinic %s: webhook delivery of transition %lld failed (%s); retrying in %d ms",
           h->clinic, (long long)h->seq, err, h->backoff_ms);
    h->waiting = 1;
    uv_timer_start(&h->retry, rg__on_retry, (uint64_t)h->backoff_ms, 0);
}

static void rg__check_done(rg_webhooks *w)
{
    CURLMsg *msg;
    int left;
    while ((msg = curl_multi_info_read(w->multi, &left))) {
        if (msg->msg != CURLMSG_DONE)
            continue;
        rg__hook *h = NULL;
        long status = 0;
        curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&h);
        curl_easy_getinfo(msg->easy_handle, CURLINFO_RESPONSE_CODE, &status);
        rg__finish(h, msg->data.result, status);
    }
}

static void rg__on_poll(uv_poll_t *p, int status, int events)
{
    rg__sock *s = p->data;
    int running, flags = 0;
    if (status < 0)
        flags = CURL_CSELECT_ERR;
    if (events & UV_READABLE)
        flags |= CURL_CSELECT_IN;
    if (events & UV_WRITABLE)
        flags |= CURL_CSELECT_OUT;
    rg_webhooks *w = s->w;
    curl_multi_socket_action(w->multi, s->fd, flags, &running);
    rg__check_done(w);
}

static void rg__release(rg_webhooks *w);

static void rg__sock_closed(uv_handle_t *h)
{
    rg__sock *s = h->data;
    rg_webhooks *w = s->w;
    int counted = s->counted;
    free(s);
    if (counted)
        rg__release(w);
}

/* curl: watch (or stop watching) a socket. */
static int rg__curl_socket(CURL *easy, curl_socket_t fd, int what, void *userp, void *socketp)
{
    rg_webhooks *w = userp;
    rg__sock *s = socketp;
    (void)easy;
    if (what == CURL_POLL_REMOVE) {
        if (s) {
            uv_poll_stop(&s->poll);
            if (!w->closing)
                curl_multi_assign(w->multi, fd, NULL);
            else
                w->pending_closes++;
            s->counted = w->closing;
            uv_close((uv_handle_t *)&s->poll, rg__sock_closed);
        }
        return 0;
    }
    if (w->closing)
        return 0;
    if (!s) {
        s = calloc(1, sizeof *s);
        if (!s)
            return -1;
        s->fd = fd;
        s->w = w;
        if (uv_poll_init_socket(w->loop, &s->poll, fd)) {
            free(s);
            return -1;
        }
        s->poll.data = s;
        curl_multi_assign(w->multi, fd, s);
    }
    int events = 0;
    if (what & CURL_POLL_IN)
        events |= UV_READABLE;
    if (what & CURL_POLL_OUT)
        events |= UV_WRITABLE;
    uv_poll_start(&s->poll, events, rg__on_poll);
    return 0;
}

static void rg__on_timeout(uv_timer_t *t)
{
    rg_webhooks *w = t->data;
    int running;
    curl_multi_socket_action(w->multi, CURL_SOCKET_TIMEOUT, 0, &running);
    rg__check_done(w);
}

/* curl: call me back in timeout_ms (-1: never). */
static int rg__curl_timer(CURLM *multi, long timeout_ms, void *userp)
{
    rg_webhooks *w = userp;
    (void)multi;
    if (timeout_ms < 0)
        uv_timer_stop(&w->timeout);
    else
        uv_timer_start(&w->timeout, rg__on_timeout, (uint64_t)timeout_ms, 0);
    return 0;
}

typedef struct rg__next {
    json_t *j;
    int64_t seq;
    const rg_zone *zone;
} rg__next;

static int rg__take(void *ud, const rg_transition *t)
{
    rg__next *n = ud;
    n->j = rg_transition_json(t, 1, n->zone);
    n->seq = t->cseq;
    return 0;
}

/* Sends the clinic's next undelivered transition, if any and if idle. */
static void rg__start(rg__hook *h)
{
    rg_webhooks *w = h->w;
    rg__next next = {NULL, 0, w->zone_of(w->zone_ud, h->clinic)};
    char key[160];
    rg_time now = rg_now(), wait;
    if (w->closing || h->off || h->easy || h->waiting)
        return;
    int rc = rg_store_webhook_next(w->st, h->clinic, now, rg__take, &next, &wait);
    if (rc == RG_OK && wait != RG_TIME_NONE) /* again when the next one may go */
        uv_timer_start(&h->later, rg__on_later, (uint64_t)(wait - now), 0);
    if (rc || !next.j) {
        json_decref(next.j);
        return;
    }
    h->body = json_dumps(next.j, JSON_COMPACT | JSON_ENSURE_ASCII);
    json_decref(next.j);
    h->seq = next.seq;
    snprintf(key, sizeof key, "Idempotency-Key: %s-%lld", h->clinic, (long long)h->seq);
    h->headers = curl_slist_append(NULL, "Content-Type: application/json");
    h->headers = h->headers ? curl_slist_append(h->headers, key) : NULL;
    /* Standard Webhooks: the id is the idempotency key, the timestamp this
     * attempt's (a receiver refuses old ones), the signature over both and
     * the body under every secret of the rotation */
    int signed_ok = !h->nkeys;
    if (h->nkeys && h->body && h->headers) {
        char id[120], sig[RG_WEBHOOK_KEYS * 64 + 8], line[RG_WEBHOOK_KEYS * 64 + 40];
        long long ts = (long long)time(NULL);
        snprintf(id, sizeof id, "%s-%lld", h->clinic, (long long)h->seq);
        if (rg_webhook_sign(h->keys, h->nkeys, id, ts, h->body, strlen(h->body), sig,
                            sizeof sig) == RG_OK) {
            snprintf(line, sizeof line, "webhook-id: %s", id);
            h->headers = curl_slist_append(h->headers, line);
            snprintf(line, sizeof line, "webhook-timestamp: %lld", ts);
            h->headers = h->headers ? curl_slist_append(h->headers, line) : NULL;
            snprintf(line, sizeof line, "webhook-signature: %s", sig);
            h->headers = h->headers ? curl_slist_append(h->headers, line) : NULL;
            signed_ok = 1;
        }
    }
    h->easy = curl_easy_init();
    if (!h->body || !h->headers || !h->easy || !signed_ok) {
        curl_slist_free_all(h->headers);
        free(h->body);
        if (h->easy)
            curl_easy_cleanup(h->easy);
        h->easy = NULL;
        h->headers = NULL;
        h->body = NULL;
        return;
    }
    curl_easy_setopt(h->easy, CURLOPT_URL, h->url);
    curl_easy_setopt(h->easy, CURLOPT_POSTFIELDS, h->body);
    curl_easy_setopt(h->easy, CURLOPT_HTTPHEADER, h->headers);
    curl_easy_setopt(h->easy, CURLOPT_PRIVATE, h);
    curl_easy_setopt(h->easy, CURLOPT_TIMEOUT_MS, (long)RG_HOOK_TIMEOUT_MS);
    curl_easy_setopt(h->easy, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h->easy, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(h->easy, CURLOPT_FOLLOWLOCATION, 0L);
    curl_multi_add_handle(w->multi, h->easy);
}

int rg_webhooks_new(rg_webhooks **out, uv_loop_t *loop, rg_store *st,
                    const rg_zone *(*zone_of)(void *ud, const char *clinic), void *zone_ud)
{
    static int global_init;
    if (!global_init++ && curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
        return RG_ENOMEM;
    rg_webhooks *w = calloc(1, sizeof *w);
    if (!w || !(w->multi = curl_multi_init())) {
        free(w);
        return RG_ENOMEM;
    }
    w->loop = loop;
    w->st = st;
    w->zone_of = zone_of;
    w->zone_ud = zone_ud;
    uv_timer_init(loop, &w->timeout);
    w->timeout.data = w;
    curl_multi_setopt(w->multi, CURLMOPT_SOCKETFUNCTION, rg__curl_socket);
    curl_multi_setopt(w->multi, CURLMOPT_SOCKETDATA, w);
    curl_multi_setopt(w->multi, CURLMOPT_TIMERFUNCTION, rg__curl_timer);
    curl_multi_setopt(w->multi, CURLMOPT_TIMERDATA, w);
    *out = w;
    return RG_OK;
}

static rg__hook *rg__hook_of(rg_webhooks *w, const char *clinic)
{
    for (int i = 0; i < w->nhooks; i++)
        if (!strcmp(w->hooks[i].clinic, clinic))
            return &w->hooks[i];
    return NULL;
}

int rg_webhooks_add(rg_webhooks *w, const char *clinic, const char *url,
                    const rg_webhook_key *keys, int nkeys)
{
    rg__hook *h = rg__hook_of(w, clinic);
    if (nkeys < 0 || nkeys > RG_WEBHOOK_KEYS)
        return RG_EINVAL;
    if (h) { /* dropped before: delivering again, from the stored cursor */
        char *u = strdup(url);
        if (!u)
            return RG_ENOMEM;
        free(h->url);
        h->url = u;
        memcpy(h->keys, keys, (size_t)nkeys * sizeof *keys);
        h->nkeys = nkeys;
        h->off = h->waiting = h->backoff_ms = 0;
        rg__start(h);
        return RG_OK;
    }
    if (w->nhooks == RG_HOOK_MAX)
        return RG_EINVAL;
    h = &w->hooks[w->nhooks];
    memset(h, 0, sizeof *h);
    h->w = w;
    snprintf(h->clinic, sizeof h->clinic, "%s", clinic);
    if (!(h->url = strdup(url)))
        return RG_ENOMEM;
    memcpy(h->keys, keys, (size_t)nkeys * sizeof *keys);
    h->nkeys = nkeys;
    uv_timer_init(w->loop, &h->retry);
    h->retry.data = h;
    uv_timer_init(w->loop, &h->later);
    h->later.data = h;
    w->nhooks++;
    return RG_OK;
}

void rg_webhooks_drop(rg_webhooks *w, const char *clinic)
{
    rg__hook *h = rg__hook_of(w, clinic);
    if (!h || h->off)
        return;
    rg__abandon(h);
    uv_timer_stop(&h->retry);
    uv_timer_stop(&h->later);
    h->off = 1;
}

void rg_webhooks_kick(rg_webhooks *w)
{
    for (int i = 0; i < w->nhooks; i++)
        rg__start(&w->hooks[i]);
}

/* Every handle closed during rg_webhooks_close comes here; the last one
 * frees the deliverer. */
static void rg__release(rg_webhooks *w)
{
    if (--w->pending_closes > 0)
        return;
    for (int i = 0; i < w->nhooks; i++)
        free(w->hooks[i].url);
    void (*done)(void *) = w->done;
    void *ud = w->done_ud;
    free(w);
    if (done)
        done(ud);
}

static void rg__timer_closed(uv_handle_t *handle)
{
    rg__release(handle->data);
}

void rg_webhooks_close(rg_webhooks *w, void (*done)(void *ud), void *ud)
{
    w->closing = 1;
    w->done = done;
    w->done_ud = ud;
    w->pending_closes = 1; /* held until every close below has been started */
    /* deliveries in flight are abandoned: their cursor did not move, so they
     * are sent again, with the same key, after a restart */
    for (int i = 0; i < w->nhooks; i++)
        rg__abandon(&w->hooks[i]);
    curl_multi_cleanup(w->multi); /* closes its sockets: their polls close (counted) */
    w->multi = NULL;
    for (int i = 0; i < w->nhooks; i++) {
        w->pending_closes += 2;
        w->hooks[i].retry.data = w;
        uv_close((uv_handle_t *)&w->hooks[i].retry, rg__timer_closed);
        w->hooks[i].later.data = w;
        uv_close((uv_handle_t *)&w->hooks[i].later, rg__timer_closed);
    }
    w->pending_closes++;
    w->timeout.data = w;
    uv_close((uv_handle_t *)&w->timeout, rg__timer_closed);
    rg__release(w);
}

void rg_webhooks_stats(rg_webhooks *w, rg_webhook_stats *st)
{
    st->delivered = w->delivered;
    st->failures = w->failures;
    st->backlog = 0;
    for (int i = 0; i < w->nhooks; i++) {
        int64_t delivered, last = 0;
        int attempts;
        if (!w->hooks[i].off && rg_store_webhook_get(w->st, w->hooks[i].clinic, &delivered, &attempts) == RG_OK &&
            rg_store_last_cseq(w->st, w->hooks[i].clinic, &last) == RG_OK && last > delivered)
            st->backlog += last - delivered;
    }
}

/* ---- one blocking POST (the notifier's, notify-test's) ---- */

static size_t rg__discard(char *p, size_t size, size_t n, void *ud)
{
    (void)p, (void)ud;
    return size * n;
}

int rg_webhook_post(const char *url, const char *body, const char *const *headers, int n,
                    char *err, size_t errlen)
{
    char curl_err[CURL_ERROR_SIZE] = "";
    struct curl_slist *h = curl_slist_append(NULL, "Content-Type: application/json");
    for (int i = 0; h && i < n; i++) {
        struct curl_slist *more = curl_slist_append(h, headers[i]);
        if (!more)
            curl_slist_free_all(h);
        h = more;
    }
    CURL *c = curl_easy_init();
    int rc = RG_OK;
    if (!c || !h) {
        rc = rg_fail(err, errlen, RG_ENOMEM, "out of memory");
        goto done;
    }
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, rg__discard);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 10000L);
    curl_easy_setopt(c, CURLOPT_ERRORBUFFER, curl_err);
    CURLcode cc = curl_easy_perform(c);
    long code = 0;
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
    if (cc != CURLE_OK)
        rc = rg_fail(err, errlen, RG_EIO, "POST %s failed: %s", url,
                     *curl_err ? curl_err : curl_easy_strerror(cc));
    else if (code < 200 || code > 299)
        rc = rg_fail(err, errlen, RG_EIO, "POST %s: the receiver answered HTTP %ld", url, code);
done:
    curl_easy_cleanup(c);
    curl_slist_free_all(h);
    return rc;
}
