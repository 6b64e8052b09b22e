/*
 * config.c - the service's configuration file (see serve.c for its form).
 */
#include "service/service.h"

#include <errno.h>
#include <stddef.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ---- configuration ------------------------------------------------------------ */

static int rg__cfg_fail(char *err, size_t errlen, const char *file, const char *field,
                        const char *what)
{
    return rg_fail(err, errlen, RG_EINVAL, "%s: %s: %s", file, field, what);
}

/* The file as JSON, through rg_json_loadb as every outside text (a NUL byte
 * is refused, not skipped); NULL with err set. */
static json_t *rg__cfg_read(const char *path, char *err, size_t errlen)
{
    size_t len;
    char *text = rg_slurp(path, &len);
    json_error_t je;
    json_t *root = NULL;
    if (!text)
        rg_fail(err, errlen, RG_EINVAL, "%s: cannot read the configuration: %s", path,
                strerror(errno));
    else if (!(root = rg_json_loadb(text, len, JSON_REJECT_DUPLICATES, &je)))
        rg_fail(err, errlen, RG_EINVAL, "%s:%d:%d: not valid JSON: %s", path, je.line, je.column,
                je.text);
    free(text);
    return root;
}

/* 127.0.0.0/8, ::1 or localhost. */
static int rg__loopback(const char *host)
{
    return !strncmp(host, "127.", 4) || !strcmp(host, "::1") || !strcmp(host, "[::1]") ||
           !strcmp(host, "localhost");
}

/* "listen": {"address", "certificate", "key", "behind_tls_proxy"} (paths
 * relative to the configuration's directory); the address is read by the
 * caller as the string form. */
static int rg__cfg_listen_object(rg_svc *sv, json_t *listen, const char *path, const char *base,
                                 char *err, size_t errlen)
{
    const char *k;
    json_t *v;
    json_object_foreach(listen, k, v) {
        if (strcmp(k, "address") && strcmp(k, "certificate") && strcmp(k, "key") &&
            strcmp(k, "behind_tls_proxy"))
            return rg__cfg_fail(err, errlen, path, "listen",
                                "unknown setting (known: address, certificate, key, "
                                "behind_tls_proxy)");
    }
    const char *cert = json_string_value(json_object_get(listen, "certificate"));
    const char *key = json_string_value(json_object_get(listen, "key"));
    json_t *proxy = json_object_get(listen, "behind_tls_proxy");
    if (!json_is_string(json_object_get(listen, "address")))
        return rg__cfg_fail(err, errlen, path, "listen.address",
                            "expected \"HOST:PORT\" such as \"0.0.0.0:7443\"");
    if ((json_object_get(listen, "certificate") || json_object_get(listen, "key")) &&
        (!cert || !key || !*cert || !*key))
        return rg__cfg_fail(err, errlen, path, "listen",
                            "\"certificate\" and \"key\" go together: the PEM files of the "
                            "certificate (its chain) and of its private key");
    if (proxy && !json_is_boolean(proxy))
        return rg__cfg_fail(err, errlen, path, "listen.behind_tls_proxy", "expected true or false");
    sv->behind_tls_proxy = json_is_true(proxy);
    if (cert) {
        char full[2][PATH_MAX];
        const char *f[2] = {cert, key};
        for (int i = 0; i < 2; i++)
            snprintf(full[i], sizeof full[i], "%.2000s%s%.2000s", f[i][0] == '/' ? "" : base,
                     f[i][0] == '/' ? "" : "/", f[i]);
        if (!(sv->tls_cert = strdup(full[0])) || !(sv->tls_key = strdup(full[1])))
            return rg_fail(err, errlen, RG_ENOMEM, "out of memory");
    }
    return RG_OK;
}

/* A clinic's "webhook": its URL as a string, or {"url", "secret",
 * "secrets"} with one or two signing secrets "whsec_<base64>" (two while a
 * rotation is under way: both sign every delivery). */
static int rg__cfg_webhook(rg_svc_clinic *c, json_t *hook, const char *path, const char *field,
                           char *err, size_t errlen)
{
    char f[200];
    const char *url = json_string_value(json_is_object(hook) ? json_object_get(hook, "url") : hook);
    snprintf(f, sizeof f, "%s.webhook", field);
    if (json_is_object(hook)) {
        const char *k;
        json_t *x;
        json_object_foreach(hook, k, x) {
            if (strcmp(k, "url") && strcmp(k, "secret") && strcmp(k, "secrets"))
                return rg__cfg_fail(err, errlen, path, f,
                                    "unknown setting (known: url, secret, secrets)");
        }
        json_t *one = json_object_get(hook, "secret"), *many = json_object_get(hook, "secrets");
        json_t *all = json_array();
        if (one)
            json_array_append(all, one);
        if (json_is_array(many))
            json_array_extend(all, many);
        int bad = (many && !json_is_array(many)) || json_array_size(all) > RG_WEBHOOK_KEYS;
        size_t i;
        json_array_foreach(all, i, x) {
            if (bad || rg_webhook_key_parse(json_string_value(x), &c->hook_keys[i])) {
                bad = 1;
                break;
            }
            c->nhook_keys++;
        }
        json_decref(all);
        if (bad)
            return rg__cfg_fail(err, errlen, path, f,
                                "'secret' (or 'secrets', at most two during a rotation) must be "
                                "\"whsec_<base64 of 24 to 64 random bytes>\"");
    }
    if (!url || (strncmp(url, "http://", 7) && strncmp(url, "https://", 8)))
        return rg__cfg_fail(err, errlen, path, f,
                            "expected an http:// or https:// URL, or {\"url\": URL, \"secret\": "
                            "\"whsec_...\"}");
    if (!(c->webhook = strdup(url)))
        return rg_fail(err, errlen, RG_ENOMEM, "out of memory");
    return RG_OK;
}

/* ---- limits ----------------------------------------------------------------------------- */

/* The "limits" object, by name: where each goes in rg_svc, how it is read,
 * its range and what the error says is expected. */
enum { RG__L_INT, RG__L_SIZE, RG__L_MB, RG__L_I64, RG__L_MINUTES, RG__L_HITS };
typedef struct rg__limit {
    const char *name;
    size_t off; /* in rg_svc */
    int kind;   /* RG__L_*: int, size_t, size_t of MiB, int64_t, rg_time of minutes, hits */
    int zero_ok;
    json_int_t max;
    const char *expect;
} rg__limit;

#define RG__POS "expected a positive whole number"
#define RG__L(name, field, kind) {name, offsetof(rg_svc, field), kind, 0, 1000000000, RG__POS}
static const rg__limit rg__limits[] = {
    RG__L("max_memory_mb", limits.max_memory, RG__L_MB),
    RG__L("max_instructions", limits.max_instructions, RG__L_I64),
    RG__L("deadline_ms", limits.deadline_ms, RG__L_INT),
    RG__L("max_body_bytes", http_limits.max_body_bytes, RG__L_SIZE),
    RG__L("max_header_bytes", http_limits.max_header_bytes, RG__L_SIZE),
    RG__L("max_connections", http_limits.max_connections, RG__L_INT),
    RG__L("idle_timeout_ms", http_limits.idle_timeout_ms, RG__L_INT),
    RG__L("request_timeout_ms", http_limits.request_timeout_ms, RG__L_INT),
    RG__L("max_events_per_request", max_events, RG__L_INT),
    {"history_cache_mb", offsetof(rg_svc, history_cache), RG__L_MB, 1, 1000000000,
     "expected a whole number (0: no cache)"},
    {"future_skew_minutes", offsetof(rg_svc, future_skew), RG__L_MINUTES, 1, 1000000000,
     "expected a whole number of minutes (0: no check)"},
    RG__L("max_unauthenticated_connections", http_limits.max_unauthenticated, RG__L_INT),
    RG__L("max_connections_per_address", http_limits.max_per_address, RG__L_INT),
    RG__L("first_request_timeout_ms", http_limits.first_request_timeout_ms, RG__L_INT),
    RG__L("max_unsent_bytes", http_limits.max_unsent_bytes, RG__L_SIZE),
    RG__L("stream_max_unsent_bytes", http_limits.stream_max_unsent, RG__L_SIZE),
    RG__L("stream_stall_ms", http_limits.stream_stall_ms, RG__L_INT),
    /* (RG_MAX_TICKETS is the same 256) */
    {"max_streams_per_clinic", offsetof(rg_svc, max_streams_clinic), RG__L_INT, 0, RG_MAX_STREAMS,
     "expected a whole number from 1 to 256"},
    {"max_streams_per_token", offsetof(rg_svc, max_streams_token), RG__L_INT, 0, RG_MAX_STREAMS,
     "expected a whole number from 1 to 256"},
    {"max_stream_tickets_per_clinic", offsetof(rg_svc, max_tickets_clinic), RG__L_INT, 0,
     RG_MAX_TICKETS, "expected a whole number from 1 to 256"},
    {"clinic_cpu_ms", offsetof(rg_svc, budget.cpu_ms), RG__L_INT, 1, 1000000000,
     "expected a whole number of ms (0: no CPU budget)"},
    RG__L("clinic_cpu_window_s", budget.cpu_window_s, RG__L_INT),
    {"quarantine_hits", offsetof(rg_svc, budget.hits), RG__L_HITS, 1, 1000000000,
     "expected a whole number of limit hits (0: never quarantine)"},
    RG__L("quarantine_window_s", budget.window_s, RG__L_INT),
    RG__L("quarantine_backoff_s", budget.backoff_s, RG__L_INT),
    {"backlog_patients", offsetof(rg_svc, backlog_max), RG__L_INT, 1, 1000000000,
     "expected a whole number of patients (0: no back-pressure)"},
    {"evaluation_threads", offsetof(rg_svc, eval_threads), RG__L_INT, 0, 256,
     "expected a positive whole number of threads, 1 to 256"},
};
#undef RG__L

static const rg__limit *rg__limit_find(const char *name)
{
    for (size_t i = 0; i < sizeof rg__limits / sizeof *rg__limits; i++)
        if (!strcmp(rg__limits[i].name, name))
            return &rg__limits[i];
    return NULL;
}

/* n is in the limit's range (at most 10^9, below INT_MAX). */
static void rg__limit_set(rg_svc *sv, const rg__limit *l, json_int_t n)
{
    char *at = (char *)sv + l->off;
    switch (l->kind) {
    case RG__L_INT: *(int *)at = (int)n; break;
    case RG__L_SIZE: *(size_t *)at = (size_t)n; break;
    case RG__L_MB: *(size_t *)at = (size_t)n << 20; break;
    case RG__L_I64: *(int64_t *)at = (int64_t)n; break;
    case RG__L_MINUTES: *(rg_time *)at = n ? (rg_time)n * RG_MS_MINUTE : -1; break;
    case RG__L_HITS: *(int *)at = n ? (int)(n > 8 ? 8 : n) : -1; break;
    }
}

int rg_svc_load_config(rg_svc *sv, const char *path, char *err, size_t errlen)
{
    json_t *root = rg__cfg_read(path, err, errlen);
    char base[PATH_MAX], field[160];
    if (!root)
        return RG_EINVAL;
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
    sv->backlog_max = 2000;
    sv->history_cache = (size_t)64 << 20;
    sv->max_streams_clinic = 64;
    sv->max_streams_token = 32;
    sv->max_tickets_clinic = 64;
    /* no CPU budget by default: past it evaluations are skipped, not deferred,
     * which a busy clinic (an import) must not meet unasked */
    sv->budget = (rg_budget_opts){.hits = 3, .window_s = 60, .backoff_s = 60, .cpu_ms = 0,
                                  .cpu_window_s = 60};
    if (!json_is_object(root)) {
        rc = rg__cfg_fail(err, errlen, path, "(top)", "expected a JSON object");
        goto done;
    }
    snprintf(sv->config_path, sizeof sv->config_path, "%s", path);
    json_object_foreach(root, key, v) {
        if (strcmp(key, "listen") && strcmp(key, "clinics") && strcmp(key, "limits") &&
            strcmp(key, "api_keys") && strcmp(key, "sessions") && strcmp(key, "audit") &&
            strcmp(key, "protocol_changes")) {
            rc = rg__cfg_fail(err, errlen, path, key,
                              "unknown setting (known: listen, clinics, limits, api_keys, "
                              "sessions, audit, protocol_changes)");
            goto done;
        }
    }
    json_t *audit = json_object_get(root, "audit");
    if (audit) { /* "audit": {"retention_days": N}: older entries archived */
        json_t *days = json_object_get(audit, "retention_days");
        if (!json_is_object(audit) || json_object_size(audit) != (days ? 1u : 0u) ||
            (days && (!json_is_integer(days) || json_integer_value(days) < 0 ||
                      json_integer_value(days) > 36500))) {
            rc = rg__cfg_fail(err, errlen, path, "audit",
                              "expected { \"retention_days\": DAYS } (0 to 36500; 0 or absent: "
                              "kept for ever)");
            goto done;
        }
        sv->audit_retention_days = days ? (int)json_integer_value(days) : 0;
    }
    /* docs/governance.md: "approval" runs only versions activated in the
     * store; "development" (the default) reloads the directories */
    json_t *changes = json_object_get(root, "protocol_changes");
    if (changes) {
        const char *s = json_string_value(changes);
        if (!s || (strcmp(s, "approval") && strcmp(s, "development"))) {
            rc = rg__cfg_fail(err, errlen, path, "protocol_changes",
                              "expected \"approval\" or \"development\"");
            goto done;
        }
        sv->approval = !strcmp(s, "approval");
    }
    json_t *listen = json_object_get(root, "listen");
    if (json_is_object(listen) && (rc = rg__cfg_listen_object(sv, listen, path, base, err, errlen)))
        goto done;
    rc = RG_EINVAL;
    if (listen) {
        const char *s = json_string_value(json_is_object(listen) ? json_object_get(listen, "address")
                                                                 : listen);
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
    /* plain HTTP carries tokens and patient data in the clear: only on
     * loopback, or behind a proxy that terminates TLS */
    if (!sv->tls_cert && !sv->behind_tls_proxy && !rg__loopback(sv->host)) {
        rc = rg__cfg_fail(err, errlen, path, "listen",
                          "plain HTTP only on loopback: give \"certificate\" and \"key\" "
                          "for TLS, or \"behind_tls_proxy\": true when a proxy terminates TLS");
        goto done;
    }
    json_t *limits = json_object_get(root, "limits");
    if (limits) {
        if (!json_is_object(limits)) {
            rc = rg__cfg_fail(err, errlen, path, "limits", "expected an object");
            goto done;
        }
        json_object_foreach(limits, key, v) {
            const rg__limit *l = rg__limit_find(key);
            snprintf(field, sizeof field, "limits.%s", key);
            if (!l) {
                rc = rg__cfg_fail(err, errlen, path, field, "unknown limit");
                goto done;
            }
            if (!json_is_integer(v) || json_integer_value(v) < (l->zero_ok ? 0 : 1) ||
                json_integer_value(v) > l->max) {
                rc = rg__cfg_fail(err, errlen, path, field, l->expect);
                goto done;
            }
            rg__limit_set(sv, l, json_integer_value(v));
        }
    }
    json_t *clinics = json_object_get(root, "clinics");
    if (!json_is_object(clinics) || json_object_size(clinics) == 0) {
        rc = rg__cfg_fail(err, errlen, path, "clinics",
                          "expected an object of clinics: { \"north\": { \"protocols\": \"...\", "
                          "\"users\": [...], \"api_keys\": [...] } }");
        goto done;
    }
    json_object_foreach(clinics, key, v) {
        if (sv->nclinics == RG_MAX_CLINICS) {
            rc = rg__cfg_fail(err, errlen, path, "clinics", "too many clinics");
            goto done;
        }
        rg_svc_clinic *c = &sv->clinics[sv->nclinics];
        snprintf(field, sizeof field, "clinics.%.60s", key);
        if (strlen(key) > RG_EVENT_MAX_CLINIC || !*key || !json_is_object(v)) {
            rc = rg__cfg_fail(err, errlen, path, field,
                              "expected { \"protocols\": DIR, \"users\": [...], \"api_keys\": [...] }");
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
        /* deprecated (auth.c warns): users and api_keys instead */
        if (tokens && (!json_is_array(tokens) || json_array_size(tokens) == 0 ||
                       json_array_size(tokens) > RG_MAX_TOKENS)) {
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
            if (strcmp(ck, "protocols") && strcmp(ck, "tokens") && strcmp(ck, "webhook") &&
                strcmp(ck, "users") && strcmp(ck, "api_keys") && strcmp(ck, "oidc")) {
                rc = rg__cfg_fail(err, errlen, path, field,
                                  "unknown setting (known: protocols, users, api_keys, webhook, "
                                  "oidc, tokens)");
                goto done;
            }
        }
        json_t *hook = json_object_get(v, "webhook");
        if (hook && (rc = rg__cfg_webhook(c, hook, path, field, err, errlen)))
            goto done;
        json_t *oidc = json_object_get(v, "oidc");
        char ofield[200];
        snprintf(ofield, sizeof ofield, "%s.oidc", field);
        /* the roles a token may carry: a clinic's people and systems (not
         * metrics, a top-level key's) */
        if (oidc && (rc = rg_oidc_load(oidc, base, path, ofield, rg_svc_role_names,
                                       RG_ROLE_INTEGRATION + 1, &c->oidc, err, errlen)))
            goto done;
        rc = RG_EINVAL;
        sv->nclinics++;
    }
    /* A token names one clinic: one shared by two would let the first
     * listed answer for both (and read the other's patients). The error
     * names the clinics, never the token. */
    for (int a = 0; a < sv->nclinics; a++)
        for (int b = a + 1; b < sv->nclinics; b++)
            for (int i = 0; i < sv->clinics[a].ntokens; i++)
                for (int j = 0; j < sv->clinics[b].ntokens; j++)
                    if (!strcmp(sv->clinics[a].tokens[i], sv->clinics[b].tokens[j])) {
                        snprintf(field, sizeof field, "clinics.%.60s and clinics.%.60s",
                                 sv->clinics[a].name, sv->clinics[b].name);
                        rc = rg__cfg_fail(err, errlen, path, field,
                                          "the same API token is configured for both "
                                          "(each clinic needs tokens of its own)");
                        goto done;
                    }
    rc = rg_svc_auth_load(sv, root, path, err, errlen); /* users, api_keys, sessions */
done:
    json_decref(root);
    return rc;
}

