/*
 * webhook.h - delivering each clinic's transitions to its webhook, with
 * libcurl driven by the service's libuv loop.
 *
 * Transitions go out one at a time per clinic, in the clinic's sequence, as
 * a POST of the transition JSON with an `Idempotency-Key: <clinic>-<seq>`
 * header. Only a 2xx answer moves the clinic's cursor (kept in SQLite); a
 * failure is retried with exponential backoff (1 s doubling to 5 min). After
 * a crash the transition that was in flight is sent again with the same key,
 * so a receiver that remembers keys sees each transition exactly once.
 *
 * Every delivery is signed as the Standard Webhooks specification says
 * (https://www.standardwebhooks.com): `webhook-id` (the Idempotency-Key,
 * the same on every attempt), `webhook-timestamp` (Unix seconds of this
 * attempt) and `webhook-signature`, "v1,<base64 HMAC-SHA256 of
 * id.timestamp.body>" under each of the clinic's secrets (two during a
 * rotation, space-separated). OpenSSL's libcrypto computes the HMAC.
 *
 * A transition is sent no earlier than its notify_at (the clinic's next
 * opening when it happened while the clinic was closed): a timer waits for
 * the earliest one. Those that may go now go first, in order, so a critical
 * alert is not held back behind an info one that waits for the morning; a
 * transition sent ahead of one still waiting is kept as sent (schema v6,
 * webhook_ahead) and the cursor moves over it once the one before is sent.
 *
 * Ownership: rg_webhooks_new creates the deliverer on a loop and store the
 * caller owns; rg_webhooks_close closes its handles and frees it, calling
 * done(ud) when everything is closed.
 */
#ifndef RG_WEBHOOK_H
#define RG_WEBHOOK_H

#include "store/store.h"

#include <uv.h>

typedef struct rg_webhooks rg_webhooks;

#include "core/zone.h"

/* One blocking POST of a JSON body to url (libcurl easy: http and https
 * only, 10 s, no signals), with the header lines headers[0..n-1] after the
 * Content-Type: for the notifier's sends on the thread pool and `regimen
 * notify-test`. RG_OK on a 2xx answer, else RG_EIO or RG_ENOMEM with err. */
int rg_webhook_post(const char *url, const char *body, const char *const *headers, int n,
                    char *err, size_t errlen);

/* A signing secret, decoded from its "whsec_<base64>" text. */
#define RG_WEBHOOK_KEYS 2
typedef struct rg_webhook_key {
    unsigned char key[64];
    size_t len;
} rg_webhook_key;
/* Decodes "whsec_<base64>" (24 to 64 bytes once decoded) into k; RG_EINVAL
 * when it is not one. */
int rg_webhook_key_parse(const char *text, rg_webhook_key *k);
/* The webhook-signature value for one delivery: "v1,<sig>" per key, joined
 * by spaces, into out (NUL-terminated); RG_EINVAL when out is too small. */
int rg_webhook_sign(const rg_webhook_key *keys, int nkeys, const char *id, long long ts,
                    const char *body, size_t len, char *out, size_t outlen);

/* zone_of(ud, clinic) gives the clinic's zone for the local times in the
 * body (at_local, due_local). */
int rg_webhooks_new(rg_webhooks **out, uv_loop_t *loop, rg_store *st,
                    const rg_zone *(*zone_of)(void *ud, const char *clinic), void *zone_ud);
/* Delivers clinic's transitions to url (http:// or https://), from the
 * stored cursor, signed with the nkeys keys (copied; 0: unsigned); again
 * after rg_webhooks_drop. */
int rg_webhooks_add(rg_webhooks *w, const char *clinic, const char *url,
                    const rg_webhook_key *keys, int nkeys);
/* Stops delivering clinic's transitions (its lease went to another worker):
 * a delivery in flight is abandoned, so the new owner sends it again with the
 * same Idempotency-Key. */
void rg_webhooks_drop(rg_webhooks *w, const char *clinic);
/* New transitions may have been committed: start whatever is idle. */
void rg_webhooks_kick(rg_webhooks *w);
void rg_webhooks_close(rg_webhooks *w, void (*done)(void *ud), void *ud);

typedef struct rg_webhook_stats {
    uint64_t delivered, failures;
    int64_t backlog; /* transitions committed but not yet acknowledged, all clinics */
} rg_webhook_stats;
void rg_webhooks_stats(rg_webhooks *w, rg_webhook_stats *st);

#endif
