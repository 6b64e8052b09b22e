/*
 * auth.h - who a request of `regimen serve` comes from and what it may do
 * (auth.c; docs/service.md "People, keys and roles").
 *
 * An identity is a clinic's user (name, role, argon2id password hash), an
 * API key (name, role, SHA-256 of the key; a clinic's, or a top-level one
 * for every clinic) or a legacy clinic token. A request is authenticated by
 * `Authorization: Bearer <key or token>` or by the session cookie that
 * POST /v1/session sets for a user; rg_svc_who says who it is, and
 * rg_svc_allowed whether its role may do what the route needs.
 */
#ifndef RG_AUTH_H
#define RG_AUTH_H

#include <jansson.h>
#include <stdint.h>

struct rg_svc;
struct rg_http_conn;
struct rg_http_req;

/* Roles, in the order of rg_svc_role_names. RG_ROLE_TOKEN is a legacy
 * clinic token (clinics.X.tokens): what such a token could do before roles. */
enum {
    RG_ROLE_NURSE,
    RG_ROLE_PRESCRIBER,
    RG_ROLE_ADMIN,
    RG_ROLE_AUDITOR,
    RG_ROLE_INTEGRATION,
    RG_ROLE_METRICS,
    RG_ROLE_TOKEN,
    RG_NROLES
};
extern const char *const rg_svc_role_names[RG_NROLES];

/* What a route needs (one of these bits). */
enum {
    RG_NEED_READ = 1,     /* alerts, explain, timeline, transitions, stream, reports */
    RG_NEED_ACT = 2,      /* acknowledge, snooze */
    RG_NEED_INGEST = 4,   /* POST /v1/events, /v1/fhir */
    RG_NEED_APPROVE = 8,  /* approving protocol changes */
    RG_NEED_ADMIN = 16,   /* the clinic's settings: reload */
    RG_NEED_AUDIT = 32,   /* the audit trail */
    RG_NEED_METRICS = 64, /* /metrics (every clinic with the metrics role, else the own) */
};

enum { RG_WHO_NONE, RG_WHO_USER, RG_WHO_KEY, RG_WHO_TOKEN, RG_WHO_OIDC };

/* The identity a request is made with. */
typedef struct rg_svc_who {
    int kind;   /* RG_WHO_* */
    int role;   /* RG_ROLE_* */
    int clinic; /* index in sv->clinics, -1: every clinic (top-level keys) */
    char name[65];
    char secret[128]; /* the hash it was checked against: a changed one is another identity */
    char session[65]; /* signed in: the session's id, else "" */
} rg_svc_who;

/* The listener speaks TLS: session cookies get Secure (whatever
 * sessions.secure_cookie says). For the TLS listener to call. */
void rg_svc_auth_tls(struct rg_svc *sv, int on);

/* Starts and stops the session sweep (expiry; its timer runs on sv->loop). */
void rg_svc_auth_start(struct rg_svc *sv);
void rg_svc_auth_stop(struct rg_svc *sv);
void rg_svc_auth_free(struct rg_svc *sv);

/* Reads the users, api_keys, legacy tokens and session settings of a
 * configuration (clinics already in sv) into sv->auth; err names the field. */
int rg_svc_auth_load(struct rg_svc *sv, json_t *root, const char *path, char *err, size_t errlen);

/* Who the request is from: 0 with *w filled, or the status to answer
 * (401: no or unknown credentials, 403: a cookie request without its
 * X-CSRF-Token) with *msg set. */
int rg_svc_authenticate(struct rg_svc *sv, const struct rg_http_req *req, rg_svc_who *w,
                        const char **msg);
/* Whether w may do need in clinic ci (ci -1: a route of no clinic); when
 * not, answers 403 naming the roles that may and returns 0. */
int rg_svc_allowed(struct rg_svc *sv, struct rg_http_conn *c, const rg_svc_who *w, unsigned need,
                   const char *what);
/* Whether an identity seen earlier still exists as it was (reload, sign
 * out, expiry). */
int rg_svc_who_valid(struct rg_svc *sv, const rg_svc_who *w);
/* "ann (nurse)", "key ehr-feed (integration)", "clinic token" */
const char *rg_svc_who_text(const rg_svc_who *w, char *buf, size_t len);

/* POST and DELETE /v1/session (1 when path is /v1/session). */
int rg_svc_session_route(struct rg_svc *sv, struct rg_http_conn *c, const struct rg_http_req *req);

/* A reload (serve.c, rg_svc_reload; by: "signal SIGHUP", "ann (admin)"):
 * the identities and session settings of tmp, a configuration read anew
 * whose clinics sv serves now, replace sv's (tmp's are taken); sessions and
 * open streams of identities that are gone end at once. */
void rg_svc_auth_apply(struct rg_svc *sv, struct rg_svc *tmp, const char *by);

#endif
