/*
 * auth.c - people, keys and roles of `regimen serve` (auth.h): the users,
 * API keys and legacy tokens of the configuration, the bearer check (SHA-256
 * of the presented key, compared in constant time with every configured
 * hash), sign-in sessions (POST/DELETE /v1/session: argon2id verification on
 * libuv's thread pool, an HttpOnly SameSite=Strict cookie, a CSRF value that
 * every state-changing cookie request repeats in X-CSRF-Token, idle and
 * absolute expiry), the slowing of failed sign-ins per user and per address
 * (counted in memory), the role check of every route, and the reload of all
 * this from the configuration file (SIGHUP, POST /v1/admin/reload), which
 * ends the sessions and streams of identities that are gone.
 */
#include "service/service.h"
#include "core/grow.h"

#include <sodium.h>

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define RG__MAX_SESSIONS 1024
#define RG__MAX_THROTTLE 4096
#define RG__COOKIE "regimen_session"
#define RG__SWEEP_MS 1000
#define RG__USER_FREE 3     /* failed sign-ins of a user before each waits */
#define RG__ADDR_FREE 10    /* ... of an address */
#define RG__THROTTLE_MAX 900 /* the longest wait, seconds */
#define RG__FORGET_MS (15 * 60 * 1000) /* failures this old are forgotten */

const char *const rg_svc_role_names[RG_NROLES] = {"nurse",       "prescriber", "admin", "auditor",
                                                  "integration", "metrics",    "clinic token"};

/* What each role may do (RG_NEED_* bits). A legacy token keeps what it could
 * do before roles: read, act, post events, its clinic's metrics. */
static const unsigned rg__perms[RG_NROLES] = {
    [RG_ROLE_NURSE] = RG_NEED_READ | RG_NEED_ACT,
    [RG_ROLE_PRESCRIBER] = RG_NEED_READ | RG_NEED_ACT | RG_NEED_APPROVE,
    [RG_ROLE_ADMIN] = RG_NEED_READ | RG_NEED_ADMIN | RG_NEED_METRICS,
    [RG_ROLE_AUDITOR] = RG_NEED_AUDIT,
    [RG_ROLE_INTEGRATION] = RG_NEED_INGEST,
    [RG_ROLE_METRICS] = RG_NEED_METRICS,
    [RG_ROLE_TOKEN] = RG_NEED_READ | RG_NEED_ACT | RG_NEED_INGEST | RG_NEED_METRICS,
};

typedef struct rg__ident {
    int kind, role, clinic;
    char name[65];
    char secret[128]; /* argon2id string, or the SHA-256 hex of a key */
} rg__ident;

typedef struct rg__session {
    char id[65], csrf[65];
    rg_svc_who who;
    uint64_t created, used; /* uv_now() */
} rg__session;

typedef struct rg__throttle {
    char key[160]; /* "u clinic/user" or "a address" */
    int failures;
    uint64_t last, until; /* uv_now() of the last failure; no attempt before until */
} rg__throttle;

struct rg_svc_auth {
    rg__ident *ids;
    int nids;
    int idle_s, max_s, secure, tls; /* cookies get Secure when either is set */
    rg__session sessions[RG__MAX_SESSIONS];
    int nsessions;
    rg__throttle throttle[RG__MAX_THROTTLE];
    int nthrottle;
    uv_timer_t sweep;
    int started;
};

/* ---- helpers --------------------------------------------------------------- */

static void rg__sha256_hex(const char *s, size_t n, char out[65])
{
    unsigned char h[crypto_hash_sha256_BYTES];
    crypto_hash_sha256(h, (const unsigned char *)s, n);
    sodium_bin2hex(out, 65, h, sizeof h);
}

static void rg__random_hex(char out[65])
{
    unsigned char raw[32];
    randombytes_buf(raw, sizeof raw);
    sodium_bin2hex(out, 65, raw, sizeof raw);
}

/* Equal strings of 64 characters, in time independent of where they differ. */
static int rg__eq64(const char *a, const char *b)
{
    return strlen(a) == 64 && strlen(b) == 64 && sodium_memcmp(a, b, 64) == 0;
}

static void rg__error(rg_http_conn *c, int status, const char *msg)
{
    rg_svc_reply_json(c, status, json_pack("{s:s}", "error", msg));
}

static void rg__reply_headers(rg_http_conn *c, int status, const char *headers, json_t *body)
{
    char *text = json_dumps(body, JSON_COMPACT | JSON_ENSURE_ASCII);
    json_decref(body);
    rg_http_respond_headers(c, text ? status : 500, "application/json", headers,
                            text ? text : "{}", text ? strlen(text) : 2);
    free(text);
}

static int rg__role_of(const char *s)
{
    for (int r = 0; s && r < RG_ROLE_TOKEN; r++)
        if (!strcmp(s, rg_svc_role_names[r]))
            return r;
    return -1;
}

const char *rg_svc_who_text(const rg_svc_who *w, char *buf, size_t len)
{
    if (w->kind == RG_WHO_TOKEN)
        snprintf(buf, len, "clinic token");
    else
        snprintf(buf, len, "%s%s (%s)",
                 w->kind == RG_WHO_KEY ? "key " : w->kind == RG_WHO_OIDC ? "oidc " : "", w->name,
                 rg_svc_role_names[w->role]);
    return buf;
}

/* ---- the configuration ------------------------------------------------------ */

typedef struct rg__idset {
    rg__ident *v;
    int n;
    size_t cap;
} rg__idset;

static int rg__add(rg__idset *s, const rg__ident *id)
{
    rg__ident *g = rg_grow(s->v, &s->cap, (size_t)s->n, sizeof *g, 16);
    if (!g)
        return RG_ENOMEM;
    s->v = g;
    s->v[s->n++] = *id;
    return RG_OK;
}

static int rg__fail(char *err, size_t errlen, const char *path, const char *field, const char *what)
{
    return rg_fail(err, errlen, RG_EINVAL, "%s: %s: %s", path, field, what);
}

/* A name of a user or key: 1 to 64 of letters, digits and . _ @ - */
static int rg__name_ok(const char *s)
{
    size_t n = s ? strlen(s) : 0;
    if (n == 0 || n > 64)
        return 0;
    for (; *s; s++)
        if (!isalnum((unsigned char)*s) && !strchr("._@-", *s))
            return 0;
    return 1;
}

/* One list of users or keys (field names it for errors). */
static int rg__load_list(rg__idset *set, json_t *list, int users, int clinic, const char *path,
                         const char *field, char *err, size_t errlen)
{
    char f[200];
    size_t i;
    json_t *o;
    if (!json_is_array(list))
        return rg__fail(err, errlen, path, field, "expected an array");
    json_array_foreach(list, i, o) {
        snprintf(f, sizeof f, "%s[%zu]", field, i);
        const char *k;
        json_t *v;
        if (!json_is_object(o))
            return rg__fail(err, errlen, path, f,
                            users ? "expected { \"name\", \"role\", \"password\" }"
                                  : "expected { \"name\", \"role\", \"sha256\" }");
        json_object_foreach(o, k, v)
            if (strcmp(k, "name") && strcmp(k, "role") && strcmp(k, users ? "password" : "sha256"))
                return rg__fail(err, errlen, path, f,
                                users ? "unknown setting (known: name, role, password)"
                                      : "unknown setting (known: name, role, sha256)");
        const char *name = json_string_value(json_object_get(o, "name"));
        const char *role = json_string_value(json_object_get(o, "role"));
        const char *secret = json_string_value(json_object_get(o, users ? "password" : "sha256"));
        rg__ident id = {.kind = users ? RG_WHO_USER : RG_WHO_KEY, .clinic = clinic};
        if (!rg__name_ok(name))
            return rg__fail(err, errlen, path, f,
                            "'name' must be 1 to 64 letters, digits, '.', '_', '@' or '-'");
        id.role = rg__role_of(role);
        if (id.role < 0)
            return rg__fail(err, errlen, path, f,
                            "'role' must be one of nurse, prescriber, admin, auditor, "
                            "integration, metrics");
        if (clinic < 0 && id.role != RG_ROLE_METRICS)
            return rg__fail(err, errlen, path, f,
                            "a top-level key is for every clinic: only the role metrics; give "
                            "other roles to a clinic's api_keys");
        if (clinic >= 0 && id.role == RG_ROLE_METRICS)
            return rg__fail(err, errlen, path, f,
                            "the role metrics is for every clinic: list it in the top-level "
                            "api_keys");
        if (users) {
            if (!secret || strncmp(secret, "$argon2id$", 10) || strlen(secret) >= sizeof id.secret)
                return rg__fail(err, errlen, path, f,
                                "'password' must be an argon2id hash ($argon2id$...): make one "
                                "with regimen passwd");
        } else {
            int hex = secret && strlen(secret) == 64;
            for (int d = 0; hex && d < 64; d++)
                hex = isxdigit((unsigned char)secret[d]) && !isupper((unsigned char)secret[d]);
            if (!hex)
                return rg__fail(err, errlen, path, f,
                                "'sha256' must be the SHA-256 of the key in 64 lowercase hex "
                                "digits (printf %s KEY | sha256sum)");
        }
        snprintf(id.name, sizeof id.name, "%s", name);
        snprintf(id.secret, sizeof id.secret, "%s", secret);
        for (int j = 0; j < set->n; j++) {
            const rg__ident *o2 = &set->v[j];
            if (o2->kind == id.kind && o2->clinic == clinic && !strcmp(o2->name, id.name))
                return rg__fail(err, errlen, path, f, users ? "a user of this name is listed twice"
                                                           : "a key of this name is listed twice");
            if (!users && o2->kind != RG_WHO_USER && !strcmp(o2->secret, id.secret))
                return rg__fail(err, errlen, path, f,
                                "the same key (sha256) is listed twice: one key, one identity");
        }
        if (rg__add(set, &id))
            return rg_fail(err, errlen, RG_ENOMEM, "out of memory");
    }
    return RG_OK;
}

/* The identities and session settings of a configuration, into set. */
static int rg__parse(rg_svc *sv, json_t *root, const char *path, rg__idset *set, int *idle,
                     int *max_age, int *secure, char *err, size_t errlen)
{
    char field[200];
    int rc;
    *idle = 1800;
    *max_age = 12 * 3600;
    *secure = 0;
    json_t *sess = json_object_get(root, "sessions");
    if (sess) {
        const char *k;
        json_t *v;
        if (!json_is_object(sess))
            return rg__fail(err, errlen, path, "sessions", "expected an object");
        json_object_foreach(sess, k, v) {
            snprintf(field, sizeof field, "sessions.%.100s", k);
            if (!strcmp(k, "secure_cookie")) {
                if (!json_is_boolean(v))
                    return rg__fail(err, errlen, path, field, "expected true or false");
                *secure = json_is_true(v);
            } else if (!strcmp(k, "idle_timeout_s") || !strcmp(k, "max_age_s")) {
                if (!json_is_integer(v) || json_integer_value(v) < 1 ||
                    json_integer_value(v) > 30 * 86400)
                    return rg__fail(err, errlen, path, field,
                                    "expected a whole number of seconds, 1 to 2592000");
                *(!strcmp(k, "idle_timeout_s") ? idle : max_age) = (int)json_integer_value(v);
            } else {
                return rg__fail(err, errlen, path, field,
                                "unknown setting (known: idle_timeout_s, max_age_s, secure_cookie)");
            }
        }
    }
    json_t *top = json_object_get(root, "api_keys");
    if (top && (rc = rg__load_list(set, top, 0, -1, path, "api_keys", err, errlen)))
        return rc;
    json_t *clinics = json_object_get(root, "clinics");
    for (int ci = 0; ci < sv->nclinics; ci++) {
        json_t *cl = json_object_get(clinics, sv->clinics[ci].name);
        json_t *users = json_object_get(cl, "users"), *keys = json_object_get(cl, "api_keys");
        json_t *tokens = json_object_get(cl, "tokens");
        snprintf(field, sizeof field, "clinics.%s.users", sv->clinics[ci].name);
        if (users && (rc = rg__load_list(set, users, 1, ci, path, field, err, errlen)))
            return rc;
        snprintf(field, sizeof field, "clinics.%s.api_keys", sv->clinics[ci].name);
        if (keys && (rc = rg__load_list(set, keys, 0, ci, path, field, err, errlen)))
            return rc;
        size_t i;
        json_t *t;
        json_array_foreach(tokens, i, t) { /* validated by config.c */
            const char *tok = json_string_value(t);
            rg__ident id = {.kind = RG_WHO_TOKEN, .role = RG_ROLE_TOKEN, .clinic = ci};
            snprintf(id.name, sizeof id.name, "token %zu", i + 1);
            rg__sha256_hex(tok, strlen(tok), id.secret);
            for (int k = 0; k < set->n; k++)
                if (set->v[k].kind != RG_WHO_USER && !strcmp(set->v[k].secret, id.secret)) {
                    snprintf(field, sizeof field, "clinics.%s.tokens[%zu]", sv->clinics[ci].name, i);
                    return rg__fail(err, errlen, path, field,
                                    "this token is also another token or key: one key, one "
                                    "identity");
                }
            if (rg__add(set, &id))
                return rg_fail(err, errlen, RG_ENOMEM, "out of memory");
        }
        if (!users && !keys && !tokens && !sv->clinics[ci].oidc) {
            snprintf(field, sizeof field, "clinics.%s", sv->clinics[ci].name);
            return rg__fail(err, errlen, path, field,
                            "nobody can use this clinic: list its 'users' and 'api_keys'");
        }
    }
    return RG_OK;
}

/* A warning per clinic that still has legacy tokens (at start and reload). */
static void rg__warn_tokens(rg_svc *sv)
{
    for (int ci = 0; ci < sv->nclinics; ci++)
        if (sv->clinics[ci].ntokens)
            rg_log("warn",
                   "clinic %s: 'tokens' are deprecated and go in the next release: give each "
                   "person a user and each system an api_key (docs/service.md, \"Migrating "
                   "from tokens\")",
                   sv->clinics[ci].name);
}

int rg_svc_auth_load(rg_svc *sv, json_t *root, const char *path, char *err, size_t errlen)
{
    rg__idset set = {0};
    int idle, max_age, secure;
    if (sodium_init() < 0)
        return rg_fail(err, errlen, RG_EIO, "libsodium could not start (no random source?)");
    int rc = rg__parse(sv, root, path, &set, &idle, &max_age, &secure, err, errlen);
    if (rc) {
        free(set.v);
        return rc;
    }
    if (!sv->auth && !(sv->auth = calloc(1, sizeof *sv->auth))) {
        free(set.v);
        return rg_fail(err, errlen, RG_ENOMEM, "out of memory");
    }
    free(sv->auth->ids);
    sv->auth->ids = set.v;
    sv->auth->nids = set.n;
    sv->auth->idle_s = idle;
    sv->auth->max_s = max_age;
    sv->auth->secure = secure;
    return RG_OK;
}

/* ---- sessions ---------------------------------------------------------------- */

static rg__session *rg__session_find(struct rg_svc_auth *a, const char *id)
{
    rg__session *found = NULL;
    for (int i = 0; i < a->nsessions; i++) /* every one compared */
        if (rg__eq64(a->sessions[i].id, id))
            found = &a->sessions[i];
    return found;
}

static int rg__session_expired(const struct rg_svc_auth *a, const rg__session *s, uint64_t now)
{
    return now - s->used >= (uint64_t)a->idle_s * 1000 ||
           now - s->created >= (uint64_t)a->max_s * 1000;
}

static void rg__session_drop(struct rg_svc_auth *a, rg__session *s)
{
    sodium_memzero(s, sizeof *s);
    *s = a->sessions[--a->nsessions];
}

/* The value of the session cookie in a Cookie header, into out (64 hex). */
static int rg__cookie(const char *h, char out[65])
{
    size_t nl = strlen(RG__COOKIE);
    for (const char *p = h; p && *p;) {
        while (*p == ' ' || *p == '\t')
            p++;
        const char *end = strchr(p, ';');
        size_t n = end ? (size_t)(end - p) : strlen(p);
        if (n == nl + 1 + 64 && !strncmp(p, RG__COOKIE "=", nl + 1)) {
            memcpy(out, p + nl + 1, 64);
            out[64] = '\0';
            return 1;
        }
        p = end ? end + 1 : NULL;
    }
    return 0;
}

/* Ends the streams of identities that are no longer valid (from the end:
 * a closed stream is replaced by the last one). */
static void rg__close_streams(rg_svc *sv)
{
    char who[200];
    for (int i = sv->nstreams - 1; i >= 0; i--) {
        if (i >= sv->nstreams || rg_svc_who_valid(sv, &sv->streams[i].who))
            continue;
        rg_log("info", "stream of %s closed: signed out, expired or removed",
               rg_svc_who_text(&sv->streams[i].who, who, sizeof who));
        rg_http_stream_end(sv->streams[i].conn);
    }
}

static void rg__on_sweep(uv_timer_t *t)
{
    rg_svc *sv = t->data;
    struct rg_svc_auth *a = sv->auth;
    uint64_t now = uv_now(&sv->loop);
    int dropped = 0;
    for (int i = a->nsessions - 1; i >= 0; i--)
        if (rg__session_expired(a, &a->sessions[i], now)) {
            rg__session_drop(a, &a->sessions[i]);
            dropped++;
        }
    for (int i = a->nthrottle - 1; i >= 0; i--)
        if (now - a->throttle[i].last >= RG__FORGET_MS && now >= a->throttle[i].until)
            a->throttle[i] = a->throttle[--a->nthrottle];
    if (dropped)
        rg__close_streams(sv);
}

void rg_svc_auth_tls(rg_svc *sv, int on)
{
    if (sv->auth)
        sv->auth->tls = on;
}

void rg_svc_auth_start(rg_svc *sv)
{
    uv_timer_init(&sv->loop, &sv->auth->sweep);
    sv->auth->sweep.data = sv;
    sv->auth->started = 1;
    rg__warn_tokens(sv);
    uv_timer_start(&sv->auth->sweep, rg__on_sweep, RG__SWEEP_MS, RG__SWEEP_MS);
}

void rg_svc_auth_stop(rg_svc *sv)
{
    if (sv->auth && sv->auth->started && !uv_is_closing((uv_handle_t *)&sv->auth->sweep))
        uv_close((uv_handle_t *)&sv->auth->sweep, NULL);
}

void rg_svc_auth_free(rg_svc *sv)
{
    if (!sv->auth)
        return;
    free(sv->auth->ids);
    sodium_memzero(sv->auth, sizeof *sv->auth);
    free(sv->auth);
    sv->auth = NULL;
}

/* ---- who a request is from ----------------------------------------------------- */

static void rg__who_of(const rg__ident *id, rg_svc_who *w)
{
    memset(w, 0, sizeof *w);
    w->kind = id->kind;
    w->role = id->role;
    w->clinic = id->clinic;
    memcpy(w->name, id->name, sizeof w->name);
    memcpy(w->secret, id->secret, sizeof w->secret);
}

/* An OpenID Connect token (oidc.c): the clinic whose provider issued it
 * for us; the person is named by the token, the role by its claim. */
static int rg__oidc(rg_svc *sv, const char *jwt, rg_svc_who *w, const char **msg)
{
    static char why[300]; /* (the loop's thread only) */
    for (int ci = 0; ci < sv->nclinics; ci++) {
        rg_svc_clinic *c = &sv->clinics[ci];
        if (c->gone || !c->oidc)
            continue;
        int role, rc = rg_oidc_verify(c->oidc, jwt, (long long)(rg_now() / 1000), w->name,
                                      sizeof w->name, &role, why, sizeof why);
        if (rc == RG_ENOTFOUND)
            continue;
        if (rc) {
            *msg = why;
            return 401;
        }
        w->kind = RG_WHO_OIDC;
        w->role = role;
        w->clinic = ci;
        snprintf(w->secret, sizeof w->secret, "oidc %.120s", rg_oidc_issuer(c->oidc));
        return 0;
    }
    *msg = "the token is not from an identity provider of any clinic here (iss, aud)";
    return 401;
}

int rg_svc_authenticate(rg_svc *sv, const rg_http_req *req, rg_svc_who *w, const char **msg)
{
    struct rg_svc_auth *a = sv->auth;
    char cookie[65];
    memset(w, 0, sizeof *w);
    if (req->authorization) {
        if (strncmp(req->authorization, "Bearer ", 7)) {
            *msg = "Authorization must be: Bearer <API key>";
            return 401;
        }
        char h[65];
        const char *key = req->authorization + 7;
        rg__sha256_hex(key, strlen(key), h);
        const rg__ident *found = NULL;
        for (int i = 0; i < a->nids; i++) /* every one compared */
            if (a->ids[i].kind != RG_WHO_USER && rg__eq64(a->ids[i].secret, h))
                found = &a->ids[i];
        if (!found && rg_oidc_is_jwt(key)) /* a clinic's identity provider's token */
            return rg__oidc(sv, key, w, msg);
        if (!found) {
            *msg = "an API key is required: Authorization: Bearer <key>, or sign in "
                   "(POST /v1/session)";
            return 401;
        }
        rg__who_of(found, w);
        return 0;
    }
    if (req->cookie && rg__cookie(req->cookie, cookie)) {
        rg__session *s = rg__session_find(a, cookie);
        uint64_t now = uv_now(&sv->loop);
        if (s && rg__session_expired(a, s, now)) {
            rg__session_drop(a, s);
            s = NULL;
        }
        if (!s) {
            *msg = "the session has ended (signed out, expired or the user was removed): sign "
                   "in again";
            return 401;
        }
        int safe = !strcmp(req->method, "GET") || !strcmp(req->method, "HEAD");
        if (!safe && (!req->csrf || !rg__eq64(req->csrf, s->csrf))) {
            *msg = "a request that changes something needs the session's csrf value in "
                   "X-CSRF-Token";
            return 403;
        }
        s->used = now;
        *w = s->who;
        return 0;
    }
    *msg = "an API key (Authorization: Bearer <key>) or a signed-in session is required";
    return 401;
}

int rg_svc_allowed(rg_svc *sv, rg_http_conn *c, const rg_svc_who *w, unsigned need,
                   const char *what)
{
    (void)sv;
    if (rg__perms[w->role] & need)
        return 1;
    json_t *roles = json_array();
    for (int r = 0; r < RG_ROLE_TOKEN; r++)
        if (rg__perms[r] & need)
            json_array_append_new(roles, json_string(rg_svc_role_names[r]));
    char msg[300];
    snprintf(msg, sizeof msg, "the role %s may not %s", rg_svc_role_names[w->role], what);
    rg_svc_reply_json(c, 403, json_pack("{s:s,s:o}", "error", msg, "needed", roles));
    return 0;
}

int rg_svc_who_valid(rg_svc *sv, const rg_svc_who *w)
{
    struct rg_svc_auth *a = sv->auth;
    if (w->kind == RG_WHO_OIDC) { /* its clinic still takes its provider's tokens */
        char want[sizeof w->secret];
        const rg_svc_clinic *c =
            w->clinic >= 0 && w->clinic < sv->nclinics ? &sv->clinics[w->clinic] : NULL;
        if (!c || c->gone || !c->oidc)
            return 0;
        snprintf(want, sizeof want, "oidc %.120s", rg_oidc_issuer(c->oidc));
        return !strcmp(want, w->secret);
    }
    if (w->session[0]) {
        rg__session *s = rg__session_find(a, w->session);
        if (!s || rg__session_expired(a, s, uv_now(&sv->loop)))
            return 0;
    }
    for (int i = 0; i < a->nids; i++) {
        const rg__ident *id = &a->ids[i];
        if (id->kind == w->kind && id->role == w->role && id->clinic == w->clinic &&
            !strcmp(id->name, w->name) && !strcmp(id->secret, w->secret))
            return 1;
    }
    return 0;
}

/* ---- slowing failed sign-ins ------------------------------------------------------ */

static rg__throttle *rg__throttle_get(struct rg_svc_auth *a, const char *key, int make,
                                      uint64_t now)
{
    for (int i = 0; i < a->nthrottle; i++)
        if (!strcmp(a->throttle[i].key, key))
            return &a->throttle[i];
    if (!make)
        return NULL;
    if (a->nthrottle == RG__MAX_THROTTLE) { /* full: the one least recently failed of
                                              * those not waiting goes */
        int old = -1;
        for (int i = 0; i < a->nthrottle; i++)
            if (a->throttle[i].until <= now && (old < 0 || a->throttle[i].last < a->throttle[old].last))
                old = i;
        if (old < 0)
            return NULL;
        a->throttle[old] = a->throttle[--a->nthrottle];
    }
    rg__throttle *t = &a->throttle[a->nthrottle++];
    memset(t, 0, sizeof *t);
    snprintf(t->key, sizeof t->key, "%s", key);
    return t;
}

/* Seconds until the next attempt on key may be tried, or 0. */
static int rg__throttle_wait(struct rg_svc_auth *a, const char *key, uint64_t now)
{
    rg__throttle *t = rg__throttle_get(a, key, 0, now);
    return t && t->until > now ? (int)((t->until - now + 999) / 1000) : 0;
}

/* A failure on key: after free ones, each waits twice as long as the one before. */
static void rg__throttle_fail(struct rg_svc_auth *a, const char *key, int free_tries, uint64_t now)
{
    rg__throttle *t = rg__throttle_get(a, key, 1, now);
    if (!t)
        return;
    if (now - t->last >= RG__FORGET_MS)
        t->failures = 0;
    t->failures++;
    t->last = now;
    if (t->failures >= free_tries) {
        int e = t->failures - free_tries;
        uint64_t s = e >= 10 ? RG__THROTTLE_MAX : (uint64_t)1 << e;
        t->until = now + (s > RG__THROTTLE_MAX ? RG__THROTTLE_MAX : s) * 1000;
    }
}

/* ---- POST and DELETE /v1/session ------------------------------------------------------- */

typedef struct rg__signin {
    uv_work_t work;
    rg_svc *sv;
    rg_http_conn *conn;
    char *password;
    char hash[128];
    int known; /* the user exists (else a dummy hash is checked, in the same time) */
    int ok;
    rg_svc_who who;
    char ukey[160], akey[160];
} rg__signin;

/* A hash of a password nobody has, for unknown users: their answer takes as
 * long as a known user's. */
static char rg__dummy[crypto_pwhash_STRBYTES];

static void rg__verify(uv_work_t *w)
{
    rg__signin *s = w->data;
    s->ok = crypto_pwhash_str_verify(s->hash, s->password, strlen(s->password)) == 0 && s->known;
}

static void rg__verified(uv_work_t *w, int status)
{
    rg__signin *s = w->data;
    rg_svc *sv = s->sv;
    struct rg_svc_auth *a = sv->auth;
    uint64_t now = uv_now(&sv->loop);
    char who[200];
    sodium_memzero(s->password, strlen(s->password));
    free(s->password);
    /* the user may have been removed or changed by a reload meanwhile */
    if (status == 0 && s->ok && rg_svc_who_valid(sv, &s->who)) {
        rg__throttle *t = rg__throttle_get(a, s->ukey, 0, now);
        if (t)
            *t = a->throttle[--a->nthrottle];
        for (int i = a->nsessions - 1; i >= 0; i--)
            if (rg__session_expired(a, &a->sessions[i], now))
                rg__session_drop(a, &a->sessions[i]);
        if (a->nsessions == RG__MAX_SESSIONS) {
            rg__error(s->conn, 503, "too many people signed in; try again later");
            free(s);
            return;
        }
        rg__session *ss = &a->sessions[a->nsessions++];
        memset(ss, 0, sizeof *ss);
        rg__random_hex(ss->id);
        rg__random_hex(ss->csrf);
        ss->who = s->who;
        memcpy(ss->who.session, ss->id, sizeof ss->who.session);
        ss->created = ss->used = now;
        char headers[400];
        snprintf(headers, sizeof headers,
                 "Set-Cookie: " RG__COOKIE "=%s; Path=/; Max-Age=%d; HttpOnly; SameSite=Strict%s\r\n"
                 "Cache-Control: no-store\r\n",
                 ss->id, a->max_s, a->secure || a->tls ? "; Secure" : "");
        rg_log("info", "clinic %s: %s signed in from %s", sv->clinics[s->who.clinic].name,
               rg_svc_who_text(&s->who, who, sizeof who), s->akey + 2);
        rg__reply_headers(s->conn, 200, headers,
                          json_pack("{s:s,s:s,s:s,s:s,s:i,s:i}", "user", s->who.name, "role",
                                    rg_svc_role_names[s->who.role], "clinic",
                                    sv->clinics[s->who.clinic].name, "csrf", ss->csrf,
                                    "idle_timeout_s", a->idle_s, "max_age_s", a->max_s));
        free(s);
        return;
    }
    rg__throttle_fail(a, s->ukey, RG__USER_FREE, now);
    rg__throttle_fail(a, s->akey, RG__ADDR_FREE, now);
    rg_log("warn", "failed sign-in as %s from %s", s->ukey + 2, s->akey + 2);
    rg__error(s->conn, 401, "wrong clinic, user or password");
    free(s);
}

static void rg__post_session(rg_svc *sv, rg_http_conn *c, const rg_http_req *req)
{
    struct rg_svc_auth *a = sv->auth;
    json_error_t je;
    if (!req->content_type || strncmp(req->content_type, "application/json", 16)) {
        rg__error(c, 415, "the body must be JSON (Content-Type: application/json)");
        return;
    }
    json_t *body = rg_json_loadb(req->body, req->body_len, JSON_REJECT_DUPLICATES, &je);
    const char *clinic = json_string_value(json_object_get(body, "clinic"));
    const char *user = json_string_value(json_object_get(body, "user"));
    const char *password = json_string_value(json_object_get(body, "password"));
    if (!json_is_object(body) || !clinic || !user || !password || strlen(clinic) > 64 ||
        strlen(user) > 64 || strlen(password) > 1024) {
        json_decref(body);
        rg__error(c, 400, "body must be {\"clinic\": \"...\", \"user\": \"...\", \"password\": \"...\"}");
        return;
    }
    uint64_t now = uv_now(&sv->loop);
    rg__signin *s = calloc(1, sizeof *s);
    if (!s || !(s->password = strdup(password))) {
        free(s);
        json_decref(body);
        rg__error(c, 503, "out of memory");
        return;
    }
    /* the address without its port */
    char addr[64];
    snprintf(addr, sizeof addr, "%s", req->peer ? req->peer : "?");
    char *colon = strrchr(addr, ':');
    if (colon)
        *colon = '\0';
    snprintf(s->ukey, sizeof s->ukey, "u %s/%s", clinic, user);
    snprintf(s->akey, sizeof s->akey, "a %s", addr);
    int wait_u = rg__throttle_wait(a, s->ukey, now), wait_a = rg__throttle_wait(a, s->akey, now);
    if (wait_u || wait_a) {
        int wait = wait_u > wait_a ? wait_u : wait_a;
        char headers[64], msg[200];
        snprintf(headers, sizeof headers, "Retry-After: %d\r\n", wait);
        snprintf(msg, sizeof msg, "too many failed sign-ins %s; try again in %d s",
                 wait_u >= wait_a ? "for this user" : "from this address", wait);
        rg_log("warn", "sign-in as %s from %s refused for %d s after failed ones", s->ukey + 2,
               addr, wait);
        rg__reply_headers(c, 429, headers, json_pack("{s:s,s:i}", "error", msg, "retry_after", wait));
        json_decref(body);
        sodium_memzero(s->password, strlen(s->password));
        free(s->password);
        free(s);
        return;
    }
    for (int i = 0; i < a->nids; i++) {
        const rg__ident *id = &a->ids[i];
        if (id->kind == RG_WHO_USER && !strcmp(id->name, user) &&
            !strcmp(sv->clinics[id->clinic].name, clinic)) {
            s->known = 1;
            rg__who_of(id, &s->who);
            snprintf(s->hash, sizeof s->hash, "%s", id->secret);
        }
    }
    json_decref(body); /* (clinic and user were in it) */
    if (!s->known) {
        if (!rg__dummy[0] &&
            crypto_pwhash_str(rg__dummy, "-", 1, crypto_pwhash_OPSLIMIT_INTERACTIVE,
                              crypto_pwhash_MEMLIMIT_INTERACTIVE))
            rg__dummy[0] = '\0';
        snprintf(s->hash, sizeof s->hash, "%s", rg__dummy);
    }
    s->sv = sv;
    s->conn = c;
    s->work.data = s;
    if (uv_queue_work(&sv->loop, &s->work, rg__verify, rg__verified)) {
        sodium_memzero(s->password, strlen(s->password));
        free(s->password);
        free(s);
        rg__error(c, 503, "the sign-in could not be checked; try again");
    }
}

int rg_svc_session_route(rg_svc *sv, rg_http_conn *c, const rg_http_req *req)
{
    if (strcmp(req->path, "/v1/session"))
        return 0;
    if (!strcmp(req->method, "POST")) {
        rg__post_session(sv, c, req);
        return 1;
    }
    if (strcmp(req->method, "DELETE")) {
        rg__error(c, 405, "POST /v1/session signs in, DELETE /v1/session signs out");
        return 1;
    }
    rg_svc_who w;
    const char *msg;
    int status = rg_svc_authenticate(sv, req, &w, &msg);
    if (status) {
        rg__error(c, status, msg);
        return 1;
    }
    if (!w.session[0]) {
        rg__error(c, 400, "this request is not signed in with a session (an API key has none)");
        return 1;
    }
    rg__session *s = rg__session_find(sv->auth, w.session);
    char who[200];
    if (s)
        rg__session_drop(sv->auth, s);
    rg_log("info", "clinic %s: %s signed out", sv->clinics[w.clinic].name,
           rg_svc_who_text(&w, who, sizeof who));
    rg__close_streams(sv);
    char headers[200];
    snprintf(headers, sizeof headers,
             "Set-Cookie: " RG__COOKIE "=; Path=/; Max-Age=0; HttpOnly; SameSite=Strict%s\r\n",
             sv->auth->secure || sv->auth->tls ? "; Secure" : "");
    rg__reply_headers(c, 200, headers, json_pack("{s:b}", "signed_out", 1));
    return 1;
}

/* ---- reload ---------------------------------------------------------------------------- */

void rg_svc_auth_apply(rg_svc *sv, rg_svc *tmp, const char *by)
{
    /* the identities are mapped onto the running clinics by name (the
     * caller has added and removed clinics as tmp lists them) */
    struct rg_svc_auth *na = tmp->auth;
    int kept = 0;
    for (int i = 0; i < na->nids; i++) {
        rg__ident id = na->ids[i];
        if (id.clinic >= 0) {
            int ci = -1;
            for (int k = 0; k < sv->nclinics; k++)
                if (!sv->clinics[k].gone &&
                    !strcmp(sv->clinics[k].name, tmp->clinics[id.clinic].name))
                    ci = k;
            if (ci < 0)
                continue; /* (not served: cannot happen once the caller applied the list) */
            id.clinic = ci;
        }
        na->ids[kept++] = id;
    }
    free(sv->auth->ids);
    sv->auth->ids = na->ids;
    sv->auth->nids = kept;
    na->ids = NULL;
    sv->auth->idle_s = na->idle_s;
    sv->auth->max_s = na->max_s;
    sv->auth->secure = na->secure;
    /* sessions of users that are gone or changed end now */
    for (int i = sv->auth->nsessions - 1; i >= 0; i--) {
        rg_svc_who w = sv->auth->sessions[i].who;
        w.session[0] = '\0';
        if (!rg_svc_who_valid(sv, &w))
            rg__session_drop(sv->auth, &sv->auth->sessions[i]);
    }
    rg__close_streams(sv);
    int users = 0, keys = 0;
    for (int i = 0; i < kept; i++)
        users += sv->auth->ids[i].kind == RG_WHO_USER, keys += sv->auth->ids[i].kind != RG_WHO_USER;
    rg__warn_tokens(tmp);
    rg_log("info", "configuration reloaded by %s: %d users, %d keys and tokens", by, users, keys);
}
