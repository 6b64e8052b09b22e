/*
 * serve.c - the service (see serve.h).
 *
 * Everything runs on one loop thread; SQLite calls are short and the Lua
 * evaluations are bounded by the sandbox limits, so the loop never waits on
 * one patient for long. Requests are answered only after the transaction
 * holding their events (and the evaluation they caused) has committed with
 * synchronous=FULL: an acknowledged event is on disk.
 *
 * Group commit: POST /v1/events bodies that arrive in one loop iteration, and
 * the wake-ups due then, are stored and evaluated in ONE transaction with one
 * fsync (rg__flush, from a uv_check handle after the loop's I/O). Only after
 * that commit are the requests answered and the transitions published; a
 * failed commit answers every request of the group with 503 and publishes
 * nothing. The transaction is opened and committed inside rg__flush, so no
 * other handler ever runs (or reads uncommitted rows) while it is open.
 *
 * Configuration is a JSON file:
 *   { "listen": "127.0.0.1:7878",
 *     "clinics": { "north": { "protocols": "clinics/north", "tokens": ["..."] } },
 *     "limits": { "max_memory_mb": 64, "max_instructions": 10000000, "deadline_ms": 2000,
 *                 "max_body_bytes": 1048576, "max_header_bytes": 16384,
 *                 "max_connections": 256, "idle_timeout_ms": 30000,
 *                 "request_timeout_ms": 10000, "max_events_per_request": 1000 } }
 * Relative paths are relative to the configuration file.
 *
 * Other writers: the service holds its database (holder.c: a lock file
 * beside it, so a second service on the file is refused at start). Events
 * another process stores there (regimen ingest) schedule their patient in
 * the store; the writer then sends RG_HOLDER_SIGNAL, on which the service
 * reads the earliest wake-up again (rg__on_notice) and so evaluates them at
 * once. Nothing polls: while nobody writes, nothing runs. A notice that never
 * comes (a writer killed between its commit and its signal) costs at most a
 * minute: the wake timer re-reads the store at least every RG_TIMER_CAP_MS,
 * also when nothing is due.
 */
#include "serve.h"

#include "engine.h"
#include "feed.h"
#include "holder.h"
#include "http.h"
#include "webhook.h"
#include "ingest.h"

#include <jansson.h>
#include <uv.h>

#include <errno.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define RG_MAX_CLINICS 64
#define RG_MAX_TOKENS 8
#define RG_MAX_STREAMS 256
#define RG_TIMER_CAP_MS 60000 /* re-read the wall clock at least this often while waiting */
#define RG_RETRY_MS 1000      /* while the store fails, wake-ups are retried this often */
#define RG_CLOCK_STEP_MS 1000 /* a wall clock that moved this far off the monotonic one stepped */
#define RG_GROUP_EVENTS 1000  /* a group commit closes once it holds this many events */
#define RG_WAKE_PAGE 256      /* due patients advanced per group commit */

typedef struct rg__clinic_cfg {
    char name[RG_EVENT_MAX_CLINIC + 1];
    char dir[PATH_MAX];
    char *tokens[RG_MAX_TOKENS];
    int ntokens;
    char *webhook;      /* URL, or NULL */
    int64_t last_cseq; /* last transition pushed to streams */
    uint64_t events[4]; /* stored, duplicate, conflict, rejected */
    uint64_t opened, resolved;
    int refused; /* the last reload of its protocols was refused */
} rg__clinic_cfg;

typedef struct rg__stream {
    rg_http_conn *conn;
    int clinic;
    int64_t last_cseq;
} rg__stream;

/* A POST /v1/events waiting for its group commit (its conn and req stay
 * valid until it is answered). */
typedef struct rg__pending {
    rg_http_conn *conn;
    int clinic;
    json_t *items;   /* the events, an array */
    json_t *results; /* per-event outcomes, filled in the group's transaction */
    uint64_t counts[4];
    char source[160];
} rg__pending;

/* A re-raised alert, announced on the streams once its commit is done. */
typedef struct rg__reraised {
    int clinic;
    char *key, *data;
} rg__reraised;

typedef struct rg__serve {
    uv_loop_t loop;
    rg_store *st;
    rg_engine *eng;
    rg_http_server *http;
    rg_webhooks *hooks;
    char host[64], shipped[PATH_MAX];
    int port;
    rg__clinic_cfg clinics[RG_MAX_CLINICS];
    int nclinics;
    rg_limits limits;
    rg_http_limits http_limits;
    int max_events;
    size_t history_cache; /* bytes of compiled histories kept (limits.history_cache_mb) */
    uv_timer_t wake, reload_delay, lag;
    uv_signal_t sighup, sigterm, sigint, notice;
    rg_holder *holder;     /* our lock on the database: one service per file */
    int64_t data_version;  /* PRAGMA data_version at the last notice */
    uv_fs_event_t watch[RG_MAX_CLINICS + 2];
    char watched[RG_MAX_CLINICS + 2][PATH_MAX]; /* the directory of watch[i] */
    int nwatch;
    rg__stream streams[RG_MAX_STREAMS];
    int nstreams;
    int stopping, exit_code;
    rg_time armed_for; /* the due moment the wake timer was armed for */
    /* group commit (rg__flush): queued requests, a wake-up pass in progress
     * (a page of due patients per group), re-raises to announce */
    uv_check_t flush_check;
    uv_idle_t flush_idle; /* keeps the loop from blocking while work is queued */
    rg__pending *pending;
    int npending, cap_pending, wake_pending;
    int wake_failed; /* the last wake-up pass failed: retried after RG_RETRY_MS */
    long wake_done;
    char due[RG_WAKE_PAGE][2][RG_EVENT_MAX_ID + 1];
    int ndue;
    rg__reraised *reraised;
    int nreraised, cap_reraised;
    /* metrics */
    uint64_t reloads, reload_failures, db_errors, wakeups, groups, group_requests, notices;
    double lateness_sum, lateness_max, loop_lag;
    uint64_t lateness_count, lateness_buckets[6];
    uint64_t lag_last;
    rg_time lag_wall; /* the wall clock at lag_last: a step shows as a difference */
} rg__serve;

static const double rg__late_bounds[6] = {0.001, 0.005, 0.01, 0.05, 0.25, 1.0};

/* ---- configuration ------------------------------------------------------------ */

static int rg__cfg_fail(char *err, size_t errlen, const char *file, const char *field,
                        const char *what)
{
    return rg_fail(err, errlen, RG_EINVAL, "%s: %s: %s", file, field, what);
}

static int rg__load_config(rg__serve *sv, const char *path, char *err, size_t errlen)
{
    json_error_t je;
    json_t *root = json_load_file(path, JSON_REJECT_DUPLICATES, &je);
    char base[PATH_MAX], field[128];
    if (!root)
        return rg_fail(err, errlen, RG_EINVAL, "%s:%d: not valid JSON: %s", path, je.line,
                       je.text);
    char tmp[PATH_MAX];
    snprintf(tmp, sizeof tmp, "%s", path);
    snprintf(base, sizeof base, "%s", dirname(tmp));
    int rc = RG_EINVAL;
    const char *key;
    json_t *v;
    snprintf(sv->host, sizeof sv->host, "127.0.0.1");
    sv->port = 7878;
    sv->limits = RG_LIMITS_DEFAULT;
    sv->http_limits = RG_HTTP_LIMITS_DEFAULT;
    sv->max_events = 1000;
    sv->history_cache = (size_t)64 << 20;
    if (!json_is_object(root)) {
        rc = rg__cfg_fail(err, errlen, path, "(top)", "expected a JSON object");
        goto done;
    }
    json_object_foreach(root, key, v) {
        if (strcmp(key, "listen") && strcmp(key, "clinics") && strcmp(key, "limits")) {
            rc = rg__cfg_fail(err, errlen, path, key, "unknown setting (known: listen, clinics, limits)");
            goto done;
        }
    }
    json_t *listen = json_object_get(root, "listen");
    if (listen) {
        const char *s = json_string_value(listen);
        const char *colon = s ? strrchr(s, ':') : NULL;
        char *end;
        long port = colon ? strtol(colon + 1, &end, 10) : -1;
        if (!colon || colon == s || *end || port < 0 || port > 65535 ||
            (size_t)(colon - s) >= sizeof sv->host) {
            rc = rg__cfg_fail(err, errlen, path, "listen", "expected \"HOST:PORT\" such as \"127.0.0.1:7878\"");
            goto done;
        }
        snprintf(sv->host, sizeof sv->host, "%.*s", (int)(colon - s), s);
        sv->port = (int)port;
    }
    json_t *limits = json_object_get(root, "limits");
    if (limits) {
        static const char *const names[] = {"max_memory_mb", "max_instructions", "deadline_ms",
                                            "max_body_bytes", "max_header_bytes", "max_connections",
                                            "idle_timeout_ms", "request_timeout_ms",
                                            "max_events_per_request", "history_cache_mb", NULL};
        if (!json_is_object(limits)) {
            rc = rg__cfg_fail(err, errlen, path, "limits", "expected an object");
            goto done;
        }
        json_object_foreach(limits, key, v) {
            int i;
            for (i = 0; names[i] && strcmp(names[i], key); i++)
                ;
            snprintf(field, sizeof field, "limits.%s", key);
            if (!names[i]) {
                rc = rg__cfg_fail(err, errlen, path, field, "unknown limit");
                goto done;
            }
            if (!json_is_integer(v) || json_integer_value(v) <= 0) {
                rc = rg__cfg_fail(err, errlen, path, field, "expected a positive whole number");
                goto done;
            }
            json_int_t n = json_integer_value(v);
            switch (i) {
            case 0: sv->limits.max_memory = (size_t)n << 20; break;
            case 1: sv->limits.max_instructions = n; break;
            case 2: sv->limits.deadline_ms = (int)n; break;
            case 3: sv->http_limits.max_body_bytes = (size_t)n; break;
            case 4: sv->http_limits.max_header_bytes = (size_t)n; break;
            case 5: sv->http_limits.max_connections = (int)n; break;
            case 6: sv->http_limits.idle_timeout_ms = (int)n; break;
            case 7: sv->http_limits.request_timeout_ms = (int)n; break;
            case 8: sv->max_events = (int)n; break;
            case 9: sv->history_cache = (size_t)n << 20; break;
            }
        }
    }
    json_t *clinics = json_object_get(root, "clinics");
    if (!json_is_object(clinics) || json_object_size(clinics) == 0) {
        rc = rg__cfg_fail(err, errlen, path, "clinics",
                          "expected an object of clinics: { \"north\": { \"protocols\": \"...\", "
                          "\"tokens\": [\"...\"] } }");
        goto done;
    }
    json_object_foreach(clinics, key, v) {
        if (sv->nclinics == RG_MAX_CLINICS) {
            rc = rg__cfg_fail(err, errlen, path, "clinics", "too many clinics");
            goto done;
        }
        rg__clinic_cfg *c = &sv->clinics[sv->nclinics];
        snprintf(field, sizeof field, "clinics.%.60s", key);
        if (strlen(key) > RG_EVENT_MAX_CLINIC || !*key || !json_is_object(v)) {
            rc = rg__cfg_fail(err, errlen, path, field, "expected { \"protocols\": DIR, \"tokens\": [...] }");
            goto done;
        }
        snprintf(c->name, sizeof c->name, "%s", key);
        const char *dir = json_string_value(json_object_get(v, "protocols"));
        if (!dir) {
            rc = rg__cfg_fail(err, errlen, path, field, "'protocols' (a directory) is required");
            goto done;
        }
        if (strlen(dir) + strlen(base) + 2 > sizeof c->dir) {
            rc = rg__cfg_fail(err, errlen, path, field, "'protocols' path is too long");
            goto done;
        }
        if (dir[0] == '/')
            snprintf(c->dir, sizeof c->dir, "%s", dir);
        else
            snprintf(c->dir, sizeof c->dir, "%.2000s/%.2000s", base, dir);
        json_t *tokens = json_object_get(v, "tokens");
        size_t i;
        json_t *t;
        if (!json_is_array(tokens) || json_array_size(tokens) == 0 ||
            json_array_size(tokens) > RG_MAX_TOKENS) {
            rc = rg__cfg_fail(err, errlen, path, field, "'tokens' must list 1 to 8 API tokens");
            goto done;
        }
        json_array_foreach(tokens, i, t) {
            const char *tok = json_string_value(t);
            if (!tok || strlen(tok) < 16) {
                rc = rg__cfg_fail(err, errlen, path, field,
                                  "each token must be a string of at least 16 characters");
                goto done;
            }
            if (!(c->tokens[c->ntokens++] = strdup(tok))) {
                rc = rg_fail(err, errlen, RG_ENOMEM, "out of memory");
                goto done;
            }
        }
        const char *ck;
        json_object_foreach(v, ck, t) {
            if (strcmp(ck, "protocols") && strcmp(ck, "tokens") && strcmp(ck, "webhook")) {
                rc = rg__cfg_fail(err, errlen, path, field,
                                  "unknown setting (known: protocols, tokens, webhook)");
                goto done;
            }
        }
        json_t *hook = json_object_get(v, "webhook");
        if (hook) {
            const char *url = json_string_value(hook);
            if (!url || (strncmp(url, "http://", 7) && strncmp(url, "https://", 8))) {
                rc = rg__cfg_fail(err, errlen, path, field,
                                  "'webhook' must be an http:// or https:// URL");
                goto done;
            }
            if (!(c->webhook = strdup(url))) {
                rc = rg_fail(err, errlen, RG_ENOMEM, "out of memory");
                goto done;
            }
        }
        sv->nclinics++;
    }
    rc = RG_OK;
done:
    json_decref(root);
    return rc;
}

/* ---- helpers ------------------------------------------------------------------- */

/* Compares in time independent of where the strings differ. */
static int rg__ct_equal(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    unsigned char diff = (unsigned char)(la != lb);
    for (size_t i = 0; i < lb; i++)
        diff |= (unsigned char)((unsigned char)(i < la ? a[i] : 0) ^ (unsigned char)b[i]);
    return diff == 0;
}

/* The clinic a bearer token belongs to, or -1. Every token is compared. */
static int rg__auth(rg__serve *sv, const char *header)
{
    if (!header || strncmp(header, "Bearer ", 7) != 0)
        return -1;
    const char *tok = header + 7;
    int found = -1;
    for (int i = 0; i < sv->nclinics; i++)
        for (int j = 0; j < sv->clinics[i].ntokens; j++)
            if (rg__ct_equal(tok, sv->clinics[i].tokens[j]))
                found = i;
    return found;
}

static void rg__reply_json(rg_http_conn *c, int status, json_t *body)
{
    char *text = json_dumps(body, JSON_COMPACT | JSON_ENSURE_ASCII);
    json_decref(body);
    if (!text) {
        rg_http_respond(c, 500, "application/json", "{\"error\":\"out of memory\"}", 25);
        return;
    }
    size_t n = strlen(text);
    text[n] = '\0';
    char *with_nl = realloc(text, n + 2);
    if (with_nl) {
        with_nl[n] = '\n';
        with_nl[n + 1] = '\0';
        text = with_nl;
        n++;
    }
    rg_http_respond(c, status, "application/json", text, n);
    free(text);
}

static void rg__error(rg_http_conn *c, int status, const char *msg)
{
    rg__reply_json(c, status, json_pack("{s:s}", "error", msg));
}

/* 503 when the store failed (nothing was written), with the cause. */
static void rg__unavailable(rg__serve *sv, rg_http_conn *c, const char *msg)
{
    const char *cause = rg_store_fault(sv->st, NULL);
    rg__reply_json(c, 503, json_pack("{s:s,s:s}", "error", msg, "cause",
                                     cause ? cause : rg_store_errmsg(sv->st)));
}

/* Value of name in a query string (no decoding beyond '+'/'%XX'), or NULL. */
static const char *rg__query(const char *q, const char *name, char *buf, size_t len)
{
    size_t nl = strlen(name);
    for (const char *p = q; p && *p;) {
        const char *amp = strchr(p, '&');
        size_t seg = amp ? (size_t)(amp - p) : strlen(p);
        if (seg > nl && !strncmp(p, name, nl) && p[nl] == '=') {
            size_t o = 0;
            for (size_t i = nl + 1; i < seg && o + 1 < len; i++) {
                char ch = p[i];
                if (ch == '+')
                    ch = ' ';
                else if (ch == '%' && i + 2 < seg) {
                    char hex[3] = {p[i + 1], p[i + 2], 0};
                    ch = (char)strtol(hex, NULL, 16);
                    i += 2;
                }
                buf[o++] = ch;
            }
            buf[o] = '\0';
            return buf;
        }
        p = amp ? amp + 1 : NULL;
    }
    return NULL;
}

/* ---- pushing transitions ---------------------------------------------------------- */

/* For webhook bodies: the clinic's zone as its protocols declare it now. */
static const rg_zone *rg__zone_of(void *ud, const char *clinic)
{
    rg__serve *sv = ud;
    return rg_engine_zone(sv->eng, clinic);
}

typedef struct rg__push {
    rg__serve *sv;
    int clinic;
} rg__push;

static int rg__push_one(void *ud, const rg_transition *t)
{
    rg__push *p = ud;
    rg__serve *sv = p->sv;
    rg__clinic_cfg *c = &sv->clinics[p->clinic];
    c->last_cseq = t->cseq;
    t->open ? c->opened++ : c->resolved++;
    /* encoded once, and only when some stream of the clinic is waiting for it */
    int wanted = 0;
    for (int i = 0; i < sv->nstreams && !wanted; i++)
        wanted = sv->streams[i].clinic == p->clinic && sv->streams[i].last_cseq < t->cseq;
    if (!wanted)
        return 0;
    json_t *j = rg_transition_json(t, 1, rg_engine_zone(sv->eng, c->name));
    char *data = json_dumps(j, JSON_COMPACT | JSON_ENSURE_ASCII);
    json_decref(j);
    char id[32];
    snprintf(id, sizeof id, "%lld", (long long)t->cseq);
    /* backwards: a stream closed by a send (its client too far behind) is
     * replaced by the last one, which has been served already */
    for (int i = sv->nstreams - 1; data && i >= 0; i--) {
        rg__stream *s = &sv->streams[i];
        if (s->clinic == p->clinic && s->last_cseq < t->cseq) {
            s->last_cseq = t->cseq;
            rg_http_stream_send(s->conn, id, "transition", data);
        }
    }
    free(data);
    return 0;
}

/* After a commit: every clinic's new transitions go to its streams and its
 * webhook. */
static void rg__publish(rg__serve *sv)
{
    for (int i = 0; i < sv->nclinics; i++) {
        rg__push p = {sv, i};
        rg_store_clinic_transitions(sv->st, sv->clinics[i].name, sv->clinics[i].last_cseq, 100000,
                                    rg__push_one, &p);
    }
    if (sv->hooks)
        rg_webhooks_kick(sv->hooks);
}

/* ---- time ---------------------------------------------------------------------------- */

static void rg__arm(rg__serve *sv);

/* Stores a re-raise; rg__reraised_done announces it after the commit. */
static int rg__reraise(void *ud, const char *clinic, const char *key, const char *patient)
{
    rg__serve *sv = ud;
    int rc = rg_store_alert_action(sv->st, clinic, key, "reraise", "regimen", "snooze expired",
                                   RG_TIME_NONE, rg_now());
    int ci = 0;
    while (ci < sv->nclinics && strcmp(sv->clinics[ci].name, clinic))
        ci++;
    if (rc != RG_OK || ci == sv->nclinics)
        return rc;
    if (sv->nreraised == sv->cap_reraised) {
        int cap = sv->cap_reraised ? 2 * sv->cap_reraised : 16;
        rg__reraised *grown = realloc(sv->reraised, (size_t)cap * sizeof *grown);
        if (!grown)
            return RG_ENOMEM;
        sv->reraised = grown;
        sv->cap_reraised = cap;
    }
    json_t *j = json_pack("{s:s,s:s,s:s}", "key", key, "patient", patient, "reason",
                          "snooze expired; the alert is still open");
    char *data = j ? json_dumps(j, JSON_COMPACT) : NULL, *k = strdup(key);
    json_decref(j);
    if (!data || !k) {
        free(data);
        free(k);
        return RG_ENOMEM;
    }
    sv->reraised[sv->nreraised++] = (rg__reraised){ci, k, data};
    return RG_OK;
}

/* After the commit that stored them (sent), or its failure (dropped). */
static void rg__reraised_done(rg__serve *sv, int send)
{
    for (int r = 0; r < sv->nreraised; r++) {
        rg__reraised *x = &sv->reraised[r];
        for (int i = sv->nstreams - 1; send && i >= 0; i--) /* backwards: see rg__push_one */
            if (sv->streams[i].clinic == x->clinic)
                rg_http_stream_send(sv->streams[i].conn, NULL, "reraise", x->data);
        if (send)
            rg_log("info", "alert %s of clinic %s re-raised: snooze expired", x->key,
                   sv->clinics[x->clinic].name);
        free(x->key);
        free(x->data);
    }
    sv->nreraised = 0;
}

/* Advances everyone who is due, re-raises expired snoozes, publishes. */
static void rg__catch_up(rg__serve *sv, const char *why)
{
    rg_time now = rg_now();
    long n = rg_engine_advance_all(sv->eng, now, now);
    if (n < 0) {
        sv->db_errors++;
        rg_log("error", "%s: evaluation could not be stored: %s", why, rg_store_errmsg(sv->st));
    } else if (n > 0) {
        rg_log("info", "%s: %ld patient%s evaluated", why, n, n == 1 ? "" : "s");
    }
    int count = 0;
    if (rg_store_begin(sv->st) == RG_OK) {
        if (rg_store_each_due_snooze(sv->st, now, rg__reraise, sv, &count) == RG_OK &&
            rg_store_commit(sv->st) == RG_OK) {
            rg__reraised_done(sv, 1);
        } else {
            rg_store_rollback(sv->st);
            rg__reraised_done(sv, 0);
        }
    }
    rg__publish(sv);
}

static void rg__flush_soon(rg__serve *sv);

static void rg__on_wake(uv_timer_t *t)
{
    rg__serve *sv = t->data;
    rg_time now = rg_now();
    if (sv->armed_for != RG_TIME_NONE && now >= sv->armed_for) {
        double late = (double)(now - sv->armed_for) / 1000.0;
        sv->lateness_sum += late;
        sv->lateness_count++;
        if (late > sv->lateness_max)
            sv->lateness_max = late;
        for (int i = 0; i < 6; i++)
            if (late <= rg__late_bounds[i])
                sv->lateness_buckets[i]++;
        sv->wakeups++;
        /* evaluated in the group commit of this loop iteration, which re-arms */
        sv->wake_pending = 1;
        rg__flush_soon(sv);
        return;
    }
    rg__arm(sv);
}

/* One timer at the earliest wake-up or snooze expiry. The wait is measured on
 * the monotonic clock but capped, so a wall clock that jumps is re-read; a
 * step of the wall clock re-arms it at once (rg__on_lag). */
static void rg__arm(rg__serve *sv)
{
    rg_time next = RG_TIME_NONE, snooze = RG_TIME_NONE;
    if (sv->stopping || sv->wake_pending) /* a wake-up pass re-arms when it is done */
        return;
    rg_store_next_wake(sv->st, &next);
    rg_store_next_snooze(sv->st, &snooze);
    if (snooze != RG_TIME_NONE && (next == RG_TIME_NONE || snooze < next))
        next = snooze;
    sv->armed_for = next;
    /* nothing due: still a re-read of the store now and then, in case a
     * writer's notice was lost (see the top of this file) */
    int64_t delay = next == RG_TIME_NONE ? RG_TIMER_CAP_MS + 1 : next - rg_now();
    if (delay < 0)
        delay = 0;
    if (delay < RG_RETRY_MS && (sv->wake_failed || rg_store_fault(sv->st, NULL)))
        delay = RG_RETRY_MS; /* a failing store or pass is retried, not spun on */
    if (delay > RG_TIMER_CAP_MS) {
        delay = RG_TIMER_CAP_MS;
        sv->armed_for = RG_TIME_NONE; /* just a re-check of the clock */
    }
    uv_timer_start(&sv->wake, rg__on_wake, (uint64_t)delay, 0);
}

/* Another process committed to the store (rg_holder_notify): its events
 * have scheduled their patients there, so the earliest wake-up is read again
 * and whatever is due now is evaluated in this loop iteration. A notice with
 * nothing new (data_version unchanged) costs one PRAGMA. */
static void rg__on_notice(uv_signal_t *h, int sig)
{
    rg__serve *sv = h->data;
    int64_t v = 0;
    (void)sig;
    if (rg_store_data_version(sv->st, &v) == RG_OK && v == sv->data_version)
        return;
    sv->data_version = v;
    sv->notices++;
    rg__arm(sv);
}

/* Loop lag: how late a 1 s timer fires. */
static void rg__on_lag(uv_timer_t *t)
{
    rg__serve *sv = t->data;
    uint64_t now = uv_hrtime();
    rg_time wall = rg_now();
    if (sv->lag_last)
        sv->loop_lag = (double)(now - sv->lag_last) / 1e9 - 1.0;
    if (sv->loop_lag < 0)
        sv->loop_lag = 0;
    /* The wake timer waits on the monotonic clock; when the wall clock steps
     * (NTP, an operator), it is re-armed from the wall clock at once. */
    int64_t step = sv->lag_last ? (wall - sv->lag_wall) - (int64_t)((now - sv->lag_last) / 1000000)
                                : 0;
    if (step > RG_CLOCK_STEP_MS || step < -RG_CLOCK_STEP_MS) {
        rg_log("warn", "the wall clock stepped %s by %.1f s: wake-up timer re-armed",
               step > 0 ? "forward" : "back", (double)(step > 0 ? step : -step) / 1000.0);
        rg__arm(sv);
    }
    sv->lag_last = now;
    sv->lag_wall = wall;
}

/* ---- handlers -------------------------------------------------------------------------- */

static const char *const rg__outcomes[4] = {"stored", "duplicate", "conflict", "rejected"};

/* Validates and stores one request's events and advances the patients they
 * concern (the same rg_engine_advance as simulate), inside the group's
 * transaction. Its outcomes are answered only after the commit. */
static int rg__store_events(rg__serve *sv, rg__pending *pr)
{
    rg__clinic_cfg *clinic = &sv->clinics[pr->clinic];
    size_t n = json_array_size(pr->items);
    /* patients to re-evaluate: distinct, in order */
    char (*patients)[RG_EVENT_MAX_ID + 1] = calloc(n + 1, sizeof *patients);
    int npatients = 0, rc = patients && (pr->results = json_array()) ? RG_OK : RG_ENOMEM;
    size_t i;
    json_t *item;
    memset(pr->counts, 0, sizeof pr->counts);
    json_array_foreach(pr->items, i, item) {
        if (rc)
            break;
        rg_event ev;
        char field[RG_FIELD_MAX], why[512];
        int outcome = 3;
        json_t *r = json_object();
        json_object_set(r, "id", json_is_object(item) && json_object_get(item, "id")
                                     ? json_object_get(item, "id") : json_null());
        int vrc = rg_event_from_json(&ev, item, field, why, sizeof why);
        if (vrc == RG_OK && strcmp(ev.clinic, clinic->name) != 0) {
            snprintf(field, sizeof field, "clinic");
            snprintf(why, sizeof why, "this token may only send events of clinic '%s'",
                     clinic->name);
            rg_event_clear(&ev);
            vrc = RG_EINVAL;
        }
        if (vrc == RG_OK) {
            rg_put put;
            rc = rg_store_put_event(sv->st, &ev, rg_now(), &put);
            if (!rc) /* else put is unset; the group rolls back and answers 503 */
                outcome = (int)put;
            if (!rc && put == RG_PUT_STORED) {
                int seen = 0;
                for (int k = 0; k < npatients && !seen; k++)
                    seen = !strcmp(patients[k], ev.patient);
                if (!seen)
                    snprintf(patients[npatients++], sizeof patients[0], "%s", ev.patient);
            }
            if (!rc && put == RG_PUT_CONFLICT) {
                snprintf(field, sizeof field, "id");
                snprintf(why, sizeof why, "an event with this id is already stored with different "
                                          "content; it was not overwritten");
            }
            rg_event_clear(&ev);
        } else if (vrc != RG_EINVAL) {
            rc = vrc;
        }
        if (!rc && outcome >= 2) {
            char *raw = json_dumps(item, JSON_COMPACT | JSON_ENCODE_ANY);
            rc = rg_store_reject(sv->st, pr->source, (long)i + 1, field, why, raw ? raw : "",
                                 raw ? strlen(raw) : 0);
            free(raw);
            json_object_set_new(r, "field", json_string(field));
            json_object_set_new(r, "reason", json_string(why));
        }
        json_object_set_new(r, "status", json_string(rg__outcomes[outcome]));
        json_array_append_new(pr->results, r);
        pr->counts[outcome]++;
    }
    rg_time now = rg_now();
    for (int k = 0; k < npatients && !rc; k++)
        rc = rg_engine_advance(sv->eng, clinic->name, patients[k], now);
    free(patients);
    return rc;
}

/* Answers a request once its group's commit is done (ok) or failed. The
 * reply goes last: answering may hand a pipelined request of the same
 * connection to rg__handle, which may grow sv->pending (and move pr). */
static void rg__answer(rg__serve *sv, rg__pending *pr, int ok)
{
    rg__clinic_cfg *clinic = &sv->clinics[pr->clinic];
    uint64_t *counts = pr->counts;
    json_decref(pr->items);
    if (!ok) {
        json_decref(pr->results);
        rg__unavailable(sv, pr->conn, "the events could not be stored; nothing was "
                                      "acknowledged, send them again");
        return;
    }
    for (int k = 0; k < 4; k++)
        clinic->events[k] += counts[k];
    rg_log("info", "clinic %s: %llu stored, %llu duplicate, %llu conflict, %llu rejected from %s",
           clinic->name, (unsigned long long)counts[0], (unsigned long long)counts[1],
           (unsigned long long)counts[2], (unsigned long long)counts[3], pr->source);
    json_t *reply = json_pack("{s:o,s:I,s:I,s:I,s:I}", "results", pr->results, "stored",
                              (json_int_t)counts[0], "duplicates", (json_int_t)counts[1],
                              "conflicts", (json_int_t)counts[2], "rejected", (json_int_t)counts[3]);
    rg__reply_json(pr->conn, 200, reply);
}

static int rg__due_add(void *ud, const char *clinic, const char *patient)
{
    rg__serve *sv = ud;
    snprintf(sv->due[sv->ndue][0], sizeof sv->due[0][0], "%s", clinic);
    snprintf(sv->due[sv->ndue][1], sizeof sv->due[0][1], "%s", patient);
    sv->ndue++;
    return 0;
}

/* The wake-up part of a group: the earliest due patients (a page of them),
 * advanced to now by the same rg_engine_advance as simulate, which moves
 * their next wake-up past now, and the snoozes that expired. */
static int rg__wake_page(rg__serve *sv, rg_time now)
{
    sv->ndue = 0;
    int rc = rg_store_due_patients(sv->st, now, RG_WAKE_PAGE, rg__due_add, sv);
    if (rc > 0)
        rc = RG_OK;
    for (int i = 0; i < sv->ndue && !rc; i++)
        rc = rg_engine_advance(sv->eng, sv->due[i][0], sv->due[i][1], now);
    if (!rc)
        rc = rg_store_each_due_snooze(sv->st, now, rg__reraise, sv, NULL);
    return rc;
}

/* One group commit: a page of the wake-up pass (when `wake`) and the queued
 * requests, up to RG_GROUP_EVENTS events, in one transaction. They are
 * answered, and the transitions published, only after the commit. */
static void rg__group(rg__serve *sv, int wake)
{
    int take = 0, rc;
    size_t events = 0;
    while (take < sv->npending) {
        size_t k = json_array_size(sv->pending[take].items);
        if (take > 0 && events + k > RG_GROUP_EVENTS)
            break;
        events += k;
        take++;
    }
    rg_time now = rg_now();
    sv->ndue = 0;
    rc = rg_store_begin(sv->st);
    /* the requests first: an event that arrived with the wake-up it makes
     * moot (a pong before the ping's due) is taken in before that due */
    for (int i = 0; i < take && !rc; i++)
        rc = rg__store_events(sv, &sv->pending[i]);
    if (!rc && wake)
        rc = rg__wake_page(sv, now);
    if (!rc)
        rc = rg_store_commit(sv->st);
    if (rc) {
        rg_store_rollback(sv->st);
        sv->db_errors++;
        rg_log("error", "%d request%s%s not stored: %s (%s)", take, take == 1 ? "" : "s",
               wake ? " and a wake-up" : "", rg_strerror(rc), rg_store_errmsg(sv->st));
    }
    sv->groups++;
    sv->group_requests += (uint64_t)take;
    for (int i = 0; i < take; i++)
        rg__answer(sv, &sv->pending[i], rc == RG_OK);
    if (take > 0) { /* (pending is NULL until the first POST) */
        sv->npending -= take;
        memmove(sv->pending, sv->pending + take, (size_t)sv->npending * sizeof *sv->pending);
    }
    rg__reraised_done(sv, rc == RG_OK);
    if (wake) {
        sv->wake_failed = rc != RG_OK;
        sv->wake_done += rc ? 0 : sv->ndue;
        if (rc || sv->ndue < RG_WAKE_PAGE) { /* else more may be due: the next iteration goes on */
            if (sv->wake_done > 0)
                rg_log("info", "wake-up: %ld patient%s evaluated", sv->wake_done,
                       sv->wake_done == 1 ? "" : "s");
            sv->wake_done = 0;
            sv->wake_pending = 0;
        }
    }
    if (!rc)
        rg__publish(sv);
}

/* Commits what this loop iteration queued: every request (in groups of at
 * most RG_GROUP_EVENTS events) and pages of a wake-up pass, as many due
 * patients as the requests bring events (at least one page): time-driven
 * work keeps pace with what arrives, and a long pass (after a reload, or
 * behind a burst) still lets the loop answer between its pages. */
static void rg__flush(rg__serve *sv)
{
    size_t budget = RG_WAKE_PAGE;
    for (int i = 0; i < sv->npending; i++)
        budget += json_array_size(sv->pending[i].items);
    for (;;) {
        int wake = sv->wake_pending && budget > 0;
        if (!wake && sv->npending == 0)
            break;
        rg__group(sv, wake);
        if (wake)
            budget = (size_t)sv->ndue < budget ? budget - (size_t)sv->ndue : 0;
    }
    if (!sv->wake_pending) {
        uv_check_stop(&sv->flush_check);
        uv_idle_stop(&sv->flush_idle);
        rg__arm(sv);
    }
}

static void rg__on_flush_check(uv_check_t *h) { rg__flush(h->data); }
static void rg__on_flush_idle(uv_idle_t *h) { (void)h; }

static void rg__flush_soon(rg__serve *sv)
{
    uv_check_start(&sv->flush_check, rg__on_flush_check);
    uv_idle_start(&sv->flush_idle, rg__on_flush_idle);
}

/* POST /v1/events: a body that is not an event or a list of them is refused
 * at once; the events are queued for this iteration's group commit. */
static void rg__post_events(rg__serve *sv, int ci, rg_http_conn *c, const rg_http_req *req)
{
    json_error_t je;
    json_t *body = json_loadb(req->body, req->body_len, JSON_REJECT_DUPLICATES, &je);
    char msg[512];
    if (!body) {
        snprintf(msg, sizeof msg, "body is not valid JSON: %s (line %d, column %d)", je.text,
                 je.line, je.column);
        rg__error(c, 400, msg);
        return;
    }
    json_t *items = body;
    if (json_is_object(body)) {
        items = json_array();
        json_array_append(items, body);
        json_decref(body);
    } else if (!json_is_array(body)) {
        json_decref(body);
        rg__error(c, 400, "body must be one event object or an array of events");
        return;
    }
    size_t n = json_array_size(items);
    if (n > (size_t)sv->max_events) {
        snprintf(msg, sizeof msg, "%zu events in one request; the limit is %d", n, sv->max_events);
        json_decref(items);
        rg__error(c, 413, msg);
        return;
    }
    if (sv->npending == sv->cap_pending) {
        int cap = sv->cap_pending ? 2 * sv->cap_pending : 64;
        rg__pending *grown = realloc(sv->pending, (size_t)cap * sizeof *grown);
        if (!grown) {
            json_decref(items);
            rg__error(c, 503, "out of memory; nothing was stored, send the events again");
            return;
        }
        sv->pending = grown;
        sv->cap_pending = cap;
    }
    rg__pending *pr = &sv->pending[sv->npending++];
    memset(pr, 0, sizeof *pr);
    pr->conn = c;
    pr->clinic = ci;
    pr->items = items;
    snprintf(pr->source, sizeof pr->source, "http %s", req->peer ? req->peer : "?");
    rg__flush_soon(sv);
}

/* A list being filled with one clinic's objects, and that clinic's zone. */
typedef struct rg__zlist {
    json_t *list;
    const rg_zone *zone;
} rg__zlist;

static int rg__alert_to_json(void *ud, const rg_alert_view *a)
{
    rg__zlist *zl = ud;
    json_t *o = json_object();
    json_object_set_new(o, "key", json_string(a->key));
    json_object_set_new(o, "state", json_string(a->state));
    json_object_set_new(o, "patient", json_string(a->patient));
    json_object_set_new(o, "protocol", json_string(a->protocol));
    json_object_set_new(o, "version", json_string(a->version));
    json_object_set_new(o, "rule", json_string(a->rule));
    json_object_set_new(o, "severity", json_string(a->severity));
    json_object_set_new(o, "message", json_string(a->message));
    json_object_set_new(o, "opened_at", rg_time_json(a->opened_at));
    json_object_set_new(o, "due", rg_time_json(a->due));
    json_object_set_new(o, "notify_at", rg_time_json(a->notify_at));
    json_object_set_new(o, "opened_at_local", rg_time_local_json(zl->zone, a->opened_at));
    json_object_set_new(o, "due_local", rg_time_local_json(zl->zone, a->due));
    json_object_set_new(o, "resolved_at", rg_time_json(a->resolved_at));
    json_object_set_new(o, "acknowledged_by", a->acked_by ? json_string(a->acked_by) : json_null());
    json_object_set_new(o, "acknowledged_at", rg_time_json(a->acked_at));
    json_object_set_new(o, "snoozed_until", rg_time_json(a->snoozed_until));
    rg_time now = rg_now();
    int quiet = a->acked_by || (a->snoozed_until != RG_TIME_NONE && a->snoozed_until > now);
    json_object_set_new(o, "quiet", json_boolean(quiet && !strcmp(a->state, "open")));
    json_array_append_new(zl->list, o);
    return 0;
}

static void rg__get_alerts(rg__serve *sv, int ci, rg_http_conn *c, const rg_http_req *req)
{
    char patient[RG_EVENT_MAX_ID + 1], state[16];
    const char *p = rg__query(req->query, "patient", patient, sizeof patient);
    const char *s = rg__query(req->query, "state", state, sizeof state);
    if (s && strcmp(s, "open") && strcmp(s, "resolved")) {
        rg__error(c, 400, "state must be open or resolved");
        return;
    }
    json_t *list = json_array();
    rg__zlist zl = {list, rg_engine_zone(sv->eng, sv->clinics[ci].name)};
    if (rg_store_each_alert(sv->st, sv->clinics[ci].name, p, s, NULL, 10000, rg__alert_to_json,
                            &zl)) {
        json_decref(list);
        rg__error(c, 503, "the alerts could not be read");
        return;
    }
    rg__reply_json(c, 200, json_pack("{s:o}", "alerts", list));
}

static int rg__action_to_json(void *ud, const rg_alert_action *a)
{
    json_t *o = json_pack("{s:s,s:s,s:s,s:o,s:o}", "action", a->action, "who", a->who, "note",
                          a->note, "at", rg_time_json(a->at), "until", rg_time_json(a->until));
    json_array_append_new(ud, o);
    return 0;
}

typedef struct rg__key_filter {
    const char *key;
    json_t *list;
    const rg_zone *zone;
} rg__key_filter;

static int rg__transition_of_key(void *ud, const rg_transition *t)
{
    rg__key_filter *f = ud;
    if (!strcmp(t->key, f->key))
        json_array_append_new(f->list, rg_transition_json(t, 1, f->zone));
    return 0;
}

/* GET /v1/alerts/{key}: every instance of the alert, its transitions and actions. */
static void rg__get_alert(rg__serve *sv, int ci, rg_http_conn *c, const char *key)
{
    json_t *instances = json_array(), *actions = json_array(), *transitions = json_array();
    const char *clinic = sv->clinics[ci].name;
    rg__key_filter f = {key, transitions, rg_engine_zone(sv->eng, clinic)};
    rg__zlist zl = {instances, f.zone};
    if (rg_store_each_alert(sv->st, clinic, NULL, NULL, key, 1000, rg__alert_to_json, &zl) ||
        rg_store_each_action(sv->st, clinic, key, rg__action_to_json, actions) ||
        rg_store_clinic_transitions(sv->st, clinic, 0, 1000000, rg__transition_of_key, &f)) {
        json_decref(instances);
        json_decref(actions);
        json_decref(transitions);
        rg__error(c, 503, "the alert could not be read");
        return;
    }
    if (json_array_size(instances) == 0) {
        json_decref(instances);
        json_decref(actions);
        json_decref(transitions);
        rg__error(c, 404, "no alert with this key in your clinic");
        return;
    }
    rg__reply_json(c, 200, json_pack("{s:o,s:o,s:o}", "alerts", instances, "transitions",
                                     transitions, "actions", actions));
}

static void rg__alert_action(rg__serve *sv, int ci, rg_http_conn *c, const rg_http_req *req,
                             const char *key, const char *action)
{
    json_error_t je;
    json_t *body = json_loadb(req->body, req->body_len, 0, &je);
    const char *who = json_string_value(json_object_get(body, "who"));
    const char *note = json_string_value(json_object_get(body, !strcmp(action, "ack") ? "note" : "reason"));
    const char *until_s = json_string_value(json_object_get(body, "until"));
    rg_time until = RG_TIME_NONE, now = rg_now();
    char why[200];
    if (!json_is_object(body) || !who || !*who || strlen(who) > 128 ||
        (note && strlen(note) > 2000)) {
        json_decref(body);
        rg__error(c, 400, !strcmp(action, "ack")
                              ? "body must be {\"who\": \"...\", \"note\": \"...\"}"
                              : "body must be {\"who\": \"...\", \"until\": \"RFC 3339\", \"reason\": \"...\"}");
        return;
    }
    if (!strcmp(action, "snooze")) {
        if (!until_s || rg_time_parse(until_s, strlen(until_s), &until, NULL, why, sizeof why)) {
            json_decref(body);
            rg__error(c, 400, "until must be an RFC 3339 time such as 2026-03-02T14:05:00-05:00");
            return;
        }
        if (until <= now) {
            json_decref(body);
            rg__error(c, 400, "until must be in the future");
            return;
        }
    }
    int rc = rg_store_begin(sv->st);
    if (!rc)
        rc = rg_store_alert_action(sv->st, sv->clinics[ci].name, key, action, who, note ? note : "",
                                   until, now);
    if (!rc)
        rc = rg_store_commit(sv->st);
    json_decref(body);
    if (rc) {
        rg_store_rollback(sv->st);
        if (rc == RG_ENOTFOUND) {
            rg__error(c, 404, "no open alert with this key in your clinic");
            return;
        }
        rg__unavailable(sv, c, "the action could not be stored");
        return;
    }
    rg_log("info", "clinic %s: alert %s %s", sv->clinics[ci].name, key,
           !strcmp(action, "ack") ? "acknowledged" : "snoozed");
    rg__get_alert(sv, ci, c, key);
    rg__arm(sv);
}

static int rg__collect_transition(void *ud, const rg_transition *t)
{
    rg__zlist *zl = ud;
    json_array_append_new(zl->list, rg_transition_json(t, 1, zl->zone));
    return 0;
}

static int64_t rg__parse_seq(const char *s, int *ok)
{
    char *end;
    errno = 0;
    long long v = s ? strtoll(s, &end, 10) : 0;
    *ok = !s || (!errno && *end == '\0' && v >= 0);
    return v;
}

static void rg__get_transitions(rg__serve *sv, int ci, rg_http_conn *c, const rg_http_req *req)
{
    char after_s[32], limit_s[32];
    int ok1, ok2;
    int64_t after = rg__parse_seq(rg__query(req->query, "after", after_s, sizeof after_s), &ok1);
    int64_t limit = rg__parse_seq(rg__query(req->query, "limit", limit_s, sizeof limit_s), &ok2);
    if (!ok1 || !ok2) {
        rg__error(c, 400, "after and limit must be whole numbers");
        return;
    }
    if (limit <= 0 || limit > 10000)
        limit = 10000;
    json_t *list = json_array();
    rg__zlist zl = {list, rg_engine_zone(sv->eng, sv->clinics[ci].name)};
    if (rg_store_clinic_transitions(sv->st, sv->clinics[ci].name, after, (int)limit,
                                    rg__collect_transition, &zl)) {
        json_decref(list);
        rg__error(c, 503, "the transitions could not be read");
        return;
    }
    size_t n = json_array_size(list);
    int64_t last = n ? json_integer_value(json_object_get(json_array_get(list, n - 1), "seq")) : after;
    rg__reply_json(c, 200, json_pack("{s:o,s:I}", "transitions", list, "last", (json_int_t)last));
}

static void rg__stream_closed(void *ud, rg_http_conn *conn)
{
    rg__serve *sv = ud;
    for (int i = 0; i < sv->nstreams; i++)
        if (sv->streams[i].conn == conn) {
            sv->streams[i] = sv->streams[--sv->nstreams];
            break;
        }
}

typedef struct rg__backlog {
    rg_http_conn *conn;
    int64_t last;
    const rg_zone *zone;
} rg__backlog;

static int rg__send_backlog(void *ud, const rg_transition *t)
{
    rg__backlog *b = ud;
    json_t *j = rg_transition_json(t, 1, b->zone);
    char *data = json_dumps(j, JSON_COMPACT | JSON_ENSURE_ASCII), id[32];
    json_decref(j);
    snprintf(id, sizeof id, "%lld", (long long)t->cseq);
    int rc = data ? rg_http_stream_send(b->conn, id, "transition", data) : -1;
    free(data);
    b->last = t->cseq;
    return rc ? 1 : 0;
}

static void rg__get_stream(rg__serve *sv, int ci, rg_http_conn *c, const rg_http_req *req)
{
    char after_s[32];
    int ok;
    const char *from = req->last_event_id ? req->last_event_id
                                          : rg__query(req->query, "after", after_s, sizeof after_s);
    int64_t after = rg__parse_seq(from, &ok);
    if (!ok) {
        rg__error(c, 400, "after (or Last-Event-ID) must be a whole number");
        return;
    }
    if (sv->nstreams == RG_MAX_STREAMS) {
        rg__error(c, 503, "too many streams");
        return;
    }
    /* with no position, start from now: only new transitions */
    if (!from)
        after = sv->clinics[ci].last_cseq;
    /* listed before anything is sent: a send that closes it (its client too
     * far behind on the backlog) unlists it in rg__stream_closed */
    sv->streams[sv->nstreams++] = (rg__stream){c, ci, after};
    rg_http_stream_start(c, rg__stream_closed, sv);
    rg__backlog b = {c, after, rg_engine_zone(sv->eng, sv->clinics[ci].name)};
    int rc = rg_store_clinic_transitions(sv->st, sv->clinics[ci].name, after, 1000000,
                                         rg__send_backlog, &b);
    if (rc < 0) { /* the backlog could not be read: a stream with a hole is worse */
        rg_log("error", "clinic %s: stream backlog not read: %s (%s); stream closed",
               sv->clinics[ci].name, rg_strerror(rc), rg_store_errmsg(sv->st));
        rg_http_stream_end(c);
        return;
    }
    for (int i = 0; i < sv->nstreams; i++)
        if (sv->streams[i].conn == c)
            sv->streams[i].last_cseq = b.last;
}

static int rg__metric_open(void *ud, const char *clinic, const char *severity, int64_t n)
{
    rg_buf_printf(ud, "regimen_open_alerts{clinic=\"%s\",severity=\"%s\"} %lld\n", clinic,
                  severity, (long long)n);
    return 0;
}

static void rg__get_metrics(rg__serve *sv, rg_http_conn *c)
{
    rg_buf b = {0};
    const rg_engine_stats *es = rg_engine_stats_get(sv->eng);
    rg_http_stats hs;
    rg_http_stats_get(sv->http, &hs);
    rg_buf_printf(&b, "# HELP regimen_events_total Events received over HTTP, by outcome.\n"
                      "# TYPE regimen_events_total counter\n");
    for (int i = 0; i < sv->nclinics; i++)
        for (int k = 0; k < 4; k++)
            rg_buf_printf(&b, "regimen_events_total{clinic=\"%s\",outcome=\"%s\"} %llu\n",
                          sv->clinics[i].name, rg__outcomes[k],
                          (unsigned long long)sv->clinics[i].events[k]);
    rg_buf_printf(&b, "# HELP regimen_transitions_total Alert transitions published.\n"
                      "# TYPE regimen_transitions_total counter\n");
    for (int i = 0; i < sv->nclinics; i++) {
        rg_buf_printf(&b, "regimen_transitions_total{clinic=\"%s\",state=\"open\"} %llu\n",
                      sv->clinics[i].name, (unsigned long long)sv->clinics[i].opened);
        rg_buf_printf(&b, "regimen_transitions_total{clinic=\"%s\",state=\"resolved\"} %llu\n",
                      sv->clinics[i].name, (unsigned long long)sv->clinics[i].resolved);
    }
    rg_buf_printf(&b, "# HELP regimen_evaluation_seconds_total Time spent evaluating, per protocol.\n"
                      "# TYPE regimen_evaluation_seconds_total counter\n");
    /* one family's samples together (the exposition format wants them so):
     * seconds first, then the counts */
    for (int f = 0; f < 2; f++) {
        if (f)
            rg_buf_printf(&b, "# HELP regimen_evaluations_total Evaluations, per protocol.\n"
                              "# TYPE regimen_evaluations_total counter\n");
        for (int i = 0; i < sv->nclinics; i++) {
            rg_clinic *cl = rg_engine_clinic(sv->eng, sv->clinics[i].name);
            for (int p = 0; cl && p < cl->nprotos; p++) {
                rg_buf_printf(&b, "regimen_evaluation%s{clinic=\"%s\",protocol=\"%s\",version=\"%s\"} ",
                              f ? "s_total" : "_seconds_total", cl->name, cl->protos[p].id,
                              cl->protos[p].version);
                if (f)
                    rg_buf_printf(&b, "%llu\n", (unsigned long long)cl->protos[p].evaluations);
                else
                    rg_buf_printf(&b, "%.6f\n", cl->protos[p].seconds);
            }
        }
    }
    rg_hcache_stats hc;
    rg_engine_cache_stats(sv->eng, &hc);
    rg_buf_printf(&b, "# HELP regimen_history_cache_bytes Compiled histories kept between "
                      "evaluations (limits.history_cache_mb).\n"
                      "# TYPE regimen_history_cache_bytes gauge\n"
                      "regimen_history_cache_bytes %zu\n"
                      "# HELP regimen_history_cache_limit_bytes The cache's cap.\n"
                      "# TYPE regimen_history_cache_limit_bytes gauge\n"
                      "regimen_history_cache_limit_bytes %zu\n"
                      "# HELP regimen_history_cache_patients Patients whose history is cached.\n"
                      "# TYPE regimen_history_cache_patients gauge\n"
                      "regimen_history_cache_patients %lld\n"
                      "# HELP regimen_history_cache_lookups_total Evaluations that found the "
                      "history cached (hit) or read it whole (miss).\n"
                      "# TYPE regimen_history_cache_lookups_total counter\n"
                      "regimen_history_cache_lookups_total{result=\"hit\"} %lld\n"
                      "regimen_history_cache_lookups_total{result=\"miss\"} %lld\n"
                      "# HELP regimen_history_cache_evictions_total Histories dropped (over the "
                      "cap, or after a rolled-back transaction).\n"
                      "# TYPE regimen_history_cache_evictions_total counter\n"
                      "regimen_history_cache_evictions_total %lld\n",
                  hc.bytes, hc.cap, (long long)hc.entries, (long long)hc.hits,
                  (long long)hc.misses, (long long)hc.evictions);
    rg_buf_printf(&b,
                  "# HELP regimen_evaluation_errors_total Rule evaluations that failed (an error in a protocol).\n"
                  "# TYPE regimen_evaluation_errors_total counter\nregimen_evaluation_errors_total %lld\n"
                  "# HELP regimen_limit_hits_total Evaluations stopped by a sandbox limit (memory, instructions, deadline).\n"
                  "# TYPE regimen_limit_hits_total counter\nregimen_limit_hits_total %lld\n"
                  "# HELP regimen_patient_steps_total Patient evaluation steps.\n"
                  "# TYPE regimen_patient_steps_total counter\nregimen_patient_steps_total %lld\n"
                  "# HELP regimen_reloads_total Protocol reloads, loaded or refused.\n"
                  "# TYPE regimen_reloads_total counter\nregimen_reloads_total{result=\"ok\"} %llu\n"
                  "regimen_reloads_total{result=\"refused\"} %llu\n"
                  "# HELP regimen_store_errors_total Database operations that failed.\n"
                  "# TYPE regimen_store_errors_total counter\nregimen_store_errors_total %llu\n"
                  "# HELP regimen_loop_lag_seconds How late the event loop ran a 1 s timer, last measured.\n"
                  "# TYPE regimen_loop_lag_seconds gauge\nregimen_loop_lag_seconds %.6f\n"
                  "# HELP regimen_wake_lateness_seconds How late time-driven evaluations ran after their due moment.\n"
                  "# TYPE regimen_wake_lateness_seconds histogram\n",
                  (long long)es->errors, (long long)es->limit_hits, (long long)es->steps,
                  (unsigned long long)(sv->reloads), (unsigned long long)sv->reload_failures,
                  (unsigned long long)sv->db_errors, sv->loop_lag);
    for (int i = 0; i < 6; i++)
        rg_buf_printf(&b, "regimen_wake_lateness_seconds_bucket{le=\"%g\"} %llu\n",
                      rg__late_bounds[i], (unsigned long long)sv->lateness_buckets[i]);
    rg_buf_printf(&b, "regimen_wake_lateness_seconds_bucket{le=\"+Inf\"} %llu\n"
                      "regimen_wake_lateness_seconds_sum %.6f\nregimen_wake_lateness_seconds_count %llu\n"
                      "# HELP regimen_open_alerts Open alerts, by clinic and severity.\n"
                  "# TYPE regimen_open_alerts gauge\n",
                  (unsigned long long)sv->lateness_count, sv->lateness_sum,
                  (unsigned long long)sv->lateness_count);
    rg_store_open_by_severity(sv->st, rg__metric_open, &b);
    rg_buf_printf(&b, "# HELP regimen_group_commits_total Transactions that stored POSTed events"
                      " and wake-ups together, each one fsync.\n"
                      "# TYPE regimen_group_commits_total counter\nregimen_group_commits_total %llu\n"
                      "# HELP regimen_group_requests_total Requests stored by those group commits.\n"
                      "# TYPE regimen_group_requests_total counter\nregimen_group_requests_total %llu\n"
                      "# HELP regimen_store_notices_total Commits by other processes (regimen ingest)"
                      " that the service was told of and read.\n"
                      "# TYPE regimen_store_notices_total counter\nregimen_store_notices_total %llu\n",
                  (unsigned long long)sv->groups, (unsigned long long)sv->group_requests,
                  (unsigned long long)sv->notices);
    rg_buf_printf(&b, "# HELP regimen_http_requests_total HTTP requests answered.\n"
                      "# TYPE regimen_http_requests_total counter\nregimen_http_requests_total %llu\n"
                      "# HELP regimen_http_connections Open HTTP connections.\n"
                      "# TYPE regimen_http_connections gauge\nregimen_http_connections %d\n"
                      "# HELP regimen_http_streams Open transition streams (Server-Sent Events).\n"
                      "# TYPE regimen_http_streams gauge\nregimen_http_streams %d\n",
                  (unsigned long long)hs.requests, hs.connections, hs.streams);
    if (sv->hooks) {
        rg_webhook_stats ws;
        rg_webhooks_stats(sv->hooks, &ws);
        rg_buf_printf(&b, "# HELP regimen_webhook_deliveries_total Webhook deliveries, by result.\n"
                  "# TYPE regimen_webhook_deliveries_total counter\n"
                          "regimen_webhook_deliveries_total{result=\"ok\"} %llu\n"
                          "regimen_webhook_deliveries_total{result=\"failed\"} %llu\n"
                          "# HELP regimen_webhook_backlog Transitions not yet delivered to the webhook.\n"
                  "# TYPE regimen_webhook_backlog gauge\nregimen_webhook_backlog %lld\n",
                      (unsigned long long)ws.delivered, (unsigned long long)ws.failures,
                      (long long)ws.backlog);
    }
    rg_http_respond(c, b.p ? 200 : 500, "text/plain; version=0.0.4", b.p ? b.p : "", b.len);
    rg_buf_free(&b);
}

static void rg__handle(void *ud, rg_http_conn *c, const rg_http_req *req)
{
    rg__serve *sv = ud;
    int get = !strcmp(req->method, "GET"), post = !strcmp(req->method, "POST");
    if (sv->stopping) {
        rg__error(c, 503, "shutting down");
        return;
    }
    if (get && !strcmp(req->path, "/healthz")) {
        rg_time since;
        const char *fault = rg_store_fault(sv->st, &since);
        /* degraded: alive and reading, but the last write failed (until one succeeds) */
        rg__reply_json(c, 200, fault ? json_pack("{s:s,s:s,s:o}", "status", "degraded", "reason",
                                                 fault, "since", rg_time_json(since))
                                     : json_pack("{s:s}", "status", "ok"));
        return;
    }
    int ci = rg__auth(sv, req->authorization);
    if (ci < 0) {
        rg_log("warn", "unauthorized %s %s from %s", req->method, req->path, req->peer);
        rg__error(c, 401, "a clinic API token is required: Authorization: Bearer <token>");
        return;
    }
    const char *p = req->path;
    if (post && !strcmp(p, "/v1/events"))
        rg__post_events(sv, ci, c, req);
    else if (get && !strcmp(p, "/v1/alerts"))
        rg__get_alerts(sv, ci, c, req);
    else if (get && !strcmp(p, "/v1/transitions"))
        rg__get_transitions(sv, ci, c, req);
    else if (get && !strcmp(p, "/v1/transitions/stream"))
        rg__get_stream(sv, ci, c, req);
    else if (get && !strcmp(p, "/metrics"))
        rg__get_metrics(sv, c);
    else if (!strncmp(p, "/v1/alerts/", 11)) {
        char key[64];
        const char *rest = p + 11, *slash = strchr(rest, '/');
        size_t kl = slash ? (size_t)(slash - rest) : strlen(rest);
        if (kl == 0 || kl >= sizeof key) {
            rg__error(c, 404, "no such alert");
            return;
        }
        snprintf(key, sizeof key, "%.*s", (int)kl, rest);
        if (get && !slash)
            rg__get_alert(sv, ci, c, key);
        else if (post && slash && !strcmp(slash, "/ack"))
            rg__alert_action(sv, ci, c, req, key, "ack");
        else if (post && slash && !strcmp(slash, "/snooze"))
            rg__alert_action(sv, ci, c, req, key, "snooze");
        else
            rg__error(c, get || post ? 404 : 405, "no such endpoint");
    } else {
        rg__error(c, 404, "no such endpoint");
    }
}

/* ---- reload and shutdown ------------------------------------------------------------------- */

/* Loads (or reloads) every clinic; a clinic whose new protocols fail keeps
 * its old ones. Clinics with changed protocols get their patients
 * re-evaluated now. Returns the number of clinics that failed. */
static int rg__load_clinics(rg__serve *sv, int initial)
{
    int failed = 0, changed = 0;
    char err[4096];
    for (int i = 0; i < sv->nclinics; i++) {
        const char *name = sv->clinics[i].name;
        char old_hashes[4096] = "";
        rg_clinic *old = initial ? NULL : rg_engine_clinic(sv->eng, name);
        for (int p = 0; old && p < old->nprotos && strlen(old_hashes) < 4000; p++) {
            strcat(old_hashes, old->protos[p].hash);
            strcat(old_hashes, old->protos[p].id);
        }
        if (rg_engine_set_clinic(sv->eng, name, sv->clinics[i].dir, err, sizeof err)) {
            failed++;
            if (!initial)
                sv->reload_failures++;
            rg_log("error", "clinic %s: protocols %s: %s%s", name, initial ? "not loaded" : "refused",
                   err, initial ? "" : " (the previous version keeps running)");
            sv->clinics[i].refused = 1;
            continue;
        }
        rg_clinic *now_c = rg_engine_clinic(sv->eng, name);
        char new_hashes[4096] = "";
        for (int p = 0; now_c && p < now_c->nprotos && strlen(new_hashes) < 4000; p++) {
            strcat(new_hashes, now_c->protos[p].hash);
            strcat(new_hashes, now_c->protos[p].id);
        }
        if (sv->clinics[i].refused && !strcmp(old_hashes, new_hashes))
            rg_log("info", "clinic %s: protocols in %s load again (unchanged)", name,
                   sv->clinics[i].dir);
        sv->clinics[i].refused = 0;
        if (initial || strcmp(old_hashes, new_hashes) != 0) {
            for (int p = 0; now_c && p < now_c->nprotos; p++)
                rg_log("info", "clinic %s: protocol %s %s loaded from %s", name,
                       now_c->protos[p].id, now_c->protos[p].version, now_c->protos[p].file);
            if (!initial) {
                sv->reloads++;
                changed++;
                if (rg_store_begin(sv->st) == RG_OK) {
                    rg_store_wake_clinic(sv->st, name, rg_now());
                    rg_store_commit(sv->st);
                }
            }
        }
    }
    if (changed)
        rg__catch_up(sv, "reload");
    rg__arm(sv);
    return failed;
}

static void rg__rewatch(rg__serve *sv);

static void rg__on_reload_delay(uv_timer_t *t)
{
    rg__serve *sv = t->data;
    rg_log("info", "protocol files changed: reloading");
    rg__load_clinics(sv, 0);
    rg__rewatch(sv);
}

static void rg__on_fs(uv_fs_event_t *h, const char *filename, int events, int status)
{
    rg__serve *sv = h->data;
    (void)events;
    if (status < 0 || sv->stopping)
        return;
    /* a .lua file changed, or the directory itself was removed or renamed */
    if (filename && !strstr(filename, ".lua") && access(sv->watched[h - sv->watch], F_OK) == 0)
        return;
    uv_timer_start(&sv->reload_delay, rg__on_reload_delay, 300, 0); /* let editors finish */
}

/* Watches every directory again after a reload: inotify follows a directory's
 * old inode, so one removed and made anew (or renamed back) would otherwise
 * go unwatched. A directory that is missing now is picked up by a later
 * reload (SIGHUP). */
static void rg__rewatch(rg__serve *sv)
{
    for (int i = 0; i < sv->nwatch && !sv->stopping; i++) {
        uv_fs_event_stop(&sv->watch[i]);
        uv_fs_event_start(&sv->watch[i], rg__on_fs, sv->watched[i], 0);
    }
}

static void rg__on_sighup(uv_signal_t *h, int sig)
{
    rg__serve *sv = h->data;
    (void)sig;
    rg_log("info", "SIGHUP: reloading protocols");
    rg__load_clinics(sv, 0);
    rg__rewatch(sv);
}

/* Evaluation errors: one log line each (the store keeps them too). */
static void rg__on_eval_error(void *ud, const char *clinic, const char *patient, rg_time at,
                              const char *msg)
{
    char when[RG_TIME_BUFSZ];
    (void)ud;
    rg_log("warn", "clinic %s%s%s at %s: evaluation failed: %.1500s", clinic,
           patient ? ", patient " : "", patient ? patient : "",
           at == RG_TIME_NONE ? "load" : rg_time_format(at, when), msg);
}

static void rg__close_handle(uv_handle_t *h)
{
    if (!uv_is_closing(h))
        uv_close(h, NULL);
}

static void rg__hooks_closed(void *ud)
{
    rg__serve *sv = ud;
    sv->hooks = NULL;
}

static void rg__http_closed(void *ud)
{
    rg__serve *sv = ud;
    sv->http = NULL;
    if (sv->hooks)
        rg_webhooks_close(sv->hooks, rg__hooks_closed, sv);
    rg__close_handle((uv_handle_t *)&sv->wake);
    rg__close_handle((uv_handle_t *)&sv->reload_delay);
    rg__close_handle((uv_handle_t *)&sv->lag);
    rg__close_handle((uv_handle_t *)&sv->flush_check);
    rg__close_handle((uv_handle_t *)&sv->flush_idle);
    rg__close_handle((uv_handle_t *)&sv->sighup);
    rg__close_handle((uv_handle_t *)&sv->sigterm);
    rg__close_handle((uv_handle_t *)&sv->sigint);
    rg__close_handle((uv_handle_t *)&sv->notice);
    for (int i = 0; i < sv->nwatch; i++)
        rg__close_handle((uv_handle_t *)&sv->watch[i]);
}

static void rg__on_stop(uv_signal_t *h, int sig)
{
    rg__serve *sv = h->data;
    if (sv->stopping)
        return;
    sv->stopping = 1;
    rg_log("info", "%s: stopping (finishing in-flight work)", sig == SIGTERM ? "SIGTERM" : "SIGINT");
    rg__flush(sv); /* queued requests are stored and answered first */
    if (sv->http)
        rg_http_close(sv->http, rg__http_closed, sv);
    else
        rg__http_closed(sv);
}

static void rg__watch(rg__serve *sv, const char *dir)
{
    if (sv->nwatch == RG_MAX_CLINICS + 2)
        return;
    uv_fs_event_t *w = &sv->watch[sv->nwatch];
    snprintf(sv->watched[sv->nwatch], sizeof sv->watched[0], "%s", dir);
    uv_fs_event_init(&sv->loop, w);
    w->data = sv;
    uv_fs_event_start(w, rg__on_fs, dir, 0); /* a missing directory: see rg__rewatch */
    sv->nwatch++;
}

int rg_serve_main(const char *db_path, const char *config_path, const char *shipped)
{
    static rg__serve sv_storage;
    rg__serve *sv = &sv_storage;
    char err[4096];
    int rc;
    memset(sv, 0, sizeof *sv);
    /* a writer's notice that comes before our handler is up must not kill us;
     * what it announced is read by the start-up catch-up below */
    signal(RG_HOLDER_SIGNAL, SIG_IGN);
    if (rg__load_config(sv, config_path, err, sizeof err)) {
        fprintf(stderr, "regimen serve: %s\n", err);
        return 2;
    }
    if (shipped)
        snprintf(sv->shipped, sizeof sv->shipped, "%s", shipped);
    rg_store_opts so = {.durable = 1, .check = 1};
    if (rg_store_open(&sv->st, db_path, &so, err, sizeof err)) {
        fprintf(stderr, "regimen serve: %s\n", err);
        return 2;
    }
    /* after the open, so a file that cannot be written is refused as such */
    if (rg_holder_take(&sv->holder, db_path, "serve", err, sizeof err)) {
        fprintf(stderr, "regimen serve: %s\n", err);
        rg_store_close(sv->st);
        return 2;
    }
    rg_store_data_version(sv->st, &sv->data_version);
    rg_engine_opts eo = {.limits = sv->limits, .shipped = shipped ? sv->shipped : NULL,
                         .on_error = rg__on_eval_error, .ud = sv,
                         .history_cache_bytes = sv->history_cache};
    if (rg_engine_new(&sv->eng, sv->st, &eo)) {
        rg_store_close(sv->st);
        rg_holder_release(sv->holder);
        return 2;
    }
    uv_loop_init(&sv->loop);
    uv_timer_init(&sv->loop, &sv->wake);
    uv_timer_init(&sv->loop, &sv->reload_delay);
    uv_timer_init(&sv->loop, &sv->lag);
    sv->wake.data = sv->reload_delay.data = sv->lag.data = sv;
    uv_check_init(&sv->loop, &sv->flush_check);
    uv_idle_init(&sv->loop, &sv->flush_idle);
    sv->flush_check.data = sv->flush_idle.data = sv;
    uv_signal_init(&sv->loop, &sv->sighup);
    uv_signal_init(&sv->loop, &sv->sigterm);
    uv_signal_init(&sv->loop, &sv->sigint);
    uv_signal_init(&sv->loop, &sv->notice);
    sv->sighup.data = sv->sigterm.data = sv->sigint.data = sv->notice.data = sv;
    signal(SIGPIPE, SIG_IGN);
    for (int i = 0; i < sv->nclinics; i++) {
        if (!sv->clinics[i].webhook)
            continue;
        if (!sv->hooks && rg_webhooks_new(&sv->hooks, &sv->loop, sv->st, rg__zone_of, sv)) {
            fprintf(stderr, "regimen serve: cannot start webhook delivery\n");
            return 2;
        }
        rg_webhooks_add(sv->hooks, sv->clinics[i].name, sv->clinics[i].webhook);
    }
    int failed = rg__load_clinics(sv, 1);
    if (failed) {
        fprintf(stderr, "regimen serve: %d clinic%s could not load their protocols (see above)\n",
                failed, failed == 1 ? "" : "s");
        sv->exit_code = 2;
        sv->stopping = 1;
        rg__http_closed(sv);
        goto run;
    }
    for (int i = 0; i < sv->nclinics; i++) {
        /* the feed starts where the store is: only new transitions are pushed */
        rg_store_last_cseq(sv->st, sv->clinics[i].name, &sv->clinics[i].last_cseq);
        rg__watch(sv, sv->clinics[i].dir);
    }
    if (shipped) {
        char d[PATH_MAX + 16];
        snprintf(d, sizeof d, "%.4000s/ketamine", sv->shipped);
        rg__watch(sv, d);
        snprintf(d, sizeof d, "%.4000s/lib", sv->shipped);
        rg__watch(sv, d);
    }
    rc = rg_http_listen(&sv->loop, sv->host, sv->port, &sv->http_limits, rg__handle, sv, &sv->http);
    if (rc) {
        rg_log("error", "cannot listen on %s:%d: %s", sv->host, sv->port, uv_strerror(rc));
        sv->exit_code = 2;
        sv->stopping = 1;
        rg__http_closed(sv);
        goto run;
    }
    rg_log("info", "listening on %s:%d (%d clinic%s, database %s)", sv->host, rg_http_port(sv->http),
           sv->nclinics, sv->nclinics == 1 ? "" : "s", db_path);
    fflush(stderr);
    char addr[128];
    snprintf(addr, sizeof addr, "%.64s:%d", sv->host, rg_http_port(sv->http));
    rg_holder_describe(sv->holder, addr);
    uv_signal_start(&sv->notice, rg__on_notice, RG_HOLDER_SIGNAL);
    uv_signal_start(&sv->sighup, rg__on_sighup, SIGHUP);
    uv_signal_start(&sv->sigterm, rg__on_stop, SIGTERM);
    uv_signal_start(&sv->sigint, rg__on_stop, SIGINT);
    sv->lag_last = uv_hrtime(); /* from here on, a step of the wall clock shows */
    sv->lag_wall = rg_now();
    uv_timer_start(&sv->lag, rg__on_lag, 1000, 1000);
    /* whatever fell due while the service was down, at its due time */
    rg__catch_up(sv, "start-up");
    rg__arm(sv);
run:
    uv_run(&sv->loop, UV_RUN_DEFAULT);
    signal(RG_HOLDER_SIGNAL, SIG_IGN); /* closing the handle restored the default: exit */
    rc = uv_loop_close(&sv->loop);
    if (rc)
        rg_log("error", "event loop did not close cleanly: %s", uv_strerror(rc));
    for (int i = 0; i < sv->npending; i++) /* none unless the loop stopped abnormally */
        json_decref(sv->pending[i].items);
    free(sv->pending);
    rg__reraised_done(sv, 0);
    free(sv->reraised);
    rg_engine_free(sv->eng);
    rg_store_close(sv->st);
    rg_holder_release(sv->holder);
    for (int i = 0; i < sv->nclinics; i++) {
        for (int j = 0; j < sv->clinics[i].ntokens; j++)
            free(sv->clinics[i].tokens[j]);
        free(sv->clinics[i].webhook);
    }
    if (!sv->exit_code)
        rg_log("info", "stopped");
    return rc ? 1 : sv->exit_code;
}
