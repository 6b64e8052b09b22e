/*
 * audit_api.c - the service's side of the audit trail (store/audit.h): an
 * entry for every request that reads or changes a clinic's patient data,
 * and GET /v1/audit, which reads the trail back.
 *
 * A request is noted when it is dispatched (rg_svc_audit_begin: who, role,
 * address, clinic, route, the patients it names) and completed when it is
 * answered (the HTTP server's respond hook gives the status), so that a POST
 * answered after its group commit records the outcome it got. Completed
 * entries wait in memory for the service's next group commit, which
 * appends them in its own transaction (rg_svc_audit_carry: no transaction
 * of their own, and on PostgreSQL one statement for them all), or, when no
 * group commit comes within RG__AUDIT_CARRY_MS, in one transaction of their
 * own: one fsync for however many requests came together. Should the store
 * fail, they wait and are tried again a second later, and the failure is
 * logged; none is dropped while the service runs.
 *
 * Retention (audit.retention_days in the configuration): once an hour the
 * entries older than that are deleted, and the hash of the last one becomes
 * the chain's base, so `regimen audit verify` still checks what is left.
 *
 * Who: the identity the request authenticated with. Today that is a clinic
 * token, recorded as "token:" and the first 12 hex digits of its SHA-256
 * (never the token); rg_svc_audit_begin takes a user and role for when
 * requests carry people's identities.
 */
#include "core/grow.h"
#include "service/service.h"

#include "store/audit.h"

#include <openssl/evp.h>

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define RG__AUDIT_RETRY_MS 1000
#define RG__AUDIT_CARRY_MS 100 /* the longest an entry waits for a group commit */
#define RG__AUDIT_ARCHIVE_MS (60 * 60 * 1000)
#define RG__AUDIT_MAX_PATIENTS 64 /* listed per entry; more are counted */

typedef struct rg__arec {
    rg_http_conn *conn; /* NULL once answered (then waiting to be appended) */
    rg_time at;
    char who[160], role[40], address[64], clinic[RG_EVENT_MAX_CLINIC + 1], route[320];
    char outcome[48];
    json_t *patients; /* array of ids */
    int more;         /* patients not listed */
} rg__arec;

struct rg_svc_audit {
    rg_svc *sv;
    rg__arec *open;   /* dispatched, not answered yet */
    int nopen;
    size_t capopen;
    rg__arec *done;   /* answered, to be appended */
    int ndone;
    size_t capdone;
    uv_check_t check;
    uv_idle_t idle;   /* the loop does not sleep while entries wait */
    uv_timer_t retry, archive, carry;
    int closing, handles, failing;
    int carried; /* done[0..carried) appended in the group's open transaction */
    uint64_t appended, failures;
};

static void rg__arec_free(rg__arec *r) { json_decref(r->patients); }

static int rg__grow(rg__arec **v, size_t *cap, int n)
{
    rg__arec *g = rg_grow(*v, cap, (size_t)n, sizeof **v, 16);
    if (!g)
        return RG_ENOMEM;
    *v = g;
    return RG_OK;
}

/* Appends every answered entry in the store's open transaction. */
static int rg__append_done(rg_svc_audit *a)
{
    int rc = RG_OK;
    for (int i = 0; i < a->ndone && !rc; i++) {
        rg__arec *r = &a->done[i];
        char *patients = json_dumps(r->patients, JSON_COMPACT | JSON_ENSURE_ASCII);
        rg_audit_entry e = {.at = r->at, .who = r->who, .role = r->role, .address = r->address,
                            .clinic = r->clinic, .patients = patients ? patients : "[]",
                            .route = r->route, .outcome = r->outcome};
        rc = rg_audit_append(a->sv->st, &e);
        free(patients);
    }
    return rc;
}

/* Appends every answered entry in one transaction. */
static void rg__flush(rg_svc_audit *a)
{
    rg_svc *sv = a->sv;
    int rc = a->ndone ? rg_store_begin(sv->st) : RG_OK;
    if (!rc)
        rc = rg__append_done(a);
    if (a->ndone && !rc)
        rc = rg_store_commit(sv->st);
    if (rc) {
        rg_store_rollback(sv->st);
        a->failures++;
        if (!a->failing)
            rg_log("error", "audit: %d entr%s not stored yet (%s); retrying every second",
                   a->ndone, a->ndone == 1 ? "y" : "ies", rg_store_errmsg(sv->st));
        a->failing = 1;
        return;
    }
    if (a->failing)
        rg_log("info", "audit: stored again");
    a->failing = 0;
    a->appended += (uint64_t)a->ndone;
    for (int i = 0; i < a->ndone; i++)
        rg__arec_free(&a->done[i]);
    a->ndone = 0;
}

static void rg__on_retry(uv_timer_t *t);

static void rg__on_check(uv_check_t *h)
{
    rg_svc_audit *a = h->data;
    rg__flush(a);
    uv_check_stop(&a->check);
    uv_idle_stop(&a->idle);
    if (a->ndone && !a->closing) /* failed: again in a second */
        uv_timer_start(&a->retry, rg__on_retry, RG__AUDIT_RETRY_MS, 0);
}

static void rg__on_idle(uv_idle_t *h) { (void)h; }

/* No group commit came for the entries: they are appended on their own. */
static void rg__on_carry(uv_timer_t *t)
{
    rg_svc_audit *a = t->data;
    if (a->closing || a->failing || !a->ndone)
        return;
    uv_check_start(&a->check, rg__on_check);
    uv_idle_start(&a->idle, rg__on_idle);
}

static void rg__soon(rg_svc_audit *a)
{
    if (a->closing || a->failing || uv_is_active((uv_handle_t *)&a->carry))
        return;
    uv_timer_start(&a->carry, rg__on_carry, RG__AUDIT_CARRY_MS, 0);
}

int rg_svc_audit_carry(rg_svc *sv)
{
    rg_svc_audit *a = sv->audit;
    if (!a || a->closing || a->failing || a->carried)
        return RG_OK; /* (a failing trail is retried on its own, not in every group) */
    int rc = rg__append_done(a);
    a->carried = rc ? 0 : a->ndone;
    return rc;
}

void rg_svc_audit_carried(rg_svc *sv, int committed)
{
    rg_svc_audit *a = sv->audit;
    if (!a || !a->carried)
        return;
    if (committed) {
        a->appended += (uint64_t)a->carried;
        for (int i = 0; i < a->carried; i++)
            rg__arec_free(&a->done[i]);
        a->ndone -= a->carried;
        memmove(a->done, a->done + a->carried, (size_t)a->ndone * sizeof *a->done);
        if (!a->ndone)
            uv_timer_stop(&a->carry);
    }
    a->carried = 0; /* (not committed: they wait for the next, or their own) */
}

static void rg__on_retry(uv_timer_t *t)
{
    rg_svc_audit *a = t->data;
    a->failing = 0;
    rg__soon(a);
}

/* Deletes what is older than the retention, keeping the chain's base. */
static void rg__on_archive(uv_timer_t *t)
{
    rg_svc_audit *a = t->data;
    rg_svc *sv = a->sv;
    int64_t n = 0;
    rg_time before = rg_now() - (rg_time)sv->audit_retention_days * 86400000;
    int rc = rg_store_begin(sv->st);
    if (!rc)
        rc = rg_store_audit_archive(sv->st, before, &n);
    if (!rc)
        rc = rg_store_commit(sv->st);
    if (rc) {
        rg_store_rollback(sv->st);
        rg_log("error", "audit: archiving entries older than %d days failed: %s",
               sv->audit_retention_days, rg_store_errmsg(sv->st));
    } else if (n) {
        rg_log("info", "audit: %" PRId64 " entr%s older than %d days archived (the chain keeps "
               "the last one's hash)", n, n == 1 ? "y" : "ies", sv->audit_retention_days);
    }
}

/* The HTTP server's respond hook: the request's outcome. */
static void rg__on_respond(void *ud, rg_http_conn *c, int status)
{
    rg_svc *sv = ud;
    rg_svc_audit *a = sv->audit;
    for (int i = 0; a && i < a->nopen; i++) {
        if (a->open[i].conn != c)
            continue;
        rg__arec r = a->open[i];
        a->open[i] = a->open[--a->nopen];
        snprintf(r.outcome, sizeof r.outcome, "%d", status);
        r.conn = NULL;
        if (r.more) { /* a bulk post or a long list: the rest counted in the route */
            size_t n = strlen(r.route);
            snprintf(r.route + n, sizeof r.route - n, " (+%d more patients)", r.more);
        }
        if (rg__grow(&a->done, &a->capdone, a->ndone)) {
            rg_log("error", "audit: out of memory: the entry of %s by %s was not kept", r.route,
                   r.who);
            rg__arec_free(&r);
            return;
        }
        a->done[a->ndone++] = r;
        rg__soon(a);
        return;
    }
}

int rg_svc_audit_start(rg_svc *sv)
{
    rg_svc_audit *a = calloc(1, sizeof *a);
    if (!a)
        return RG_ENOMEM;
    a->sv = sv;
    uv_check_init(&sv->loop, &a->check);
    uv_idle_init(&sv->loop, &a->idle);
    uv_timer_init(&sv->loop, &a->retry);
    uv_timer_init(&sv->loop, &a->archive);
    uv_timer_init(&sv->loop, &a->carry);
    a->check.data = a->idle.data = a->retry.data = a->archive.data = a->carry.data = a;
    a->handles = 5;
    sv->audit = a;
    rg_http_on_respond(sv->http, rg__on_respond, sv);
    if (sv->audit_retention_days > 0)
        uv_timer_start(&a->archive, rg__on_archive, 1000, RG__AUDIT_ARCHIVE_MS);
    return RG_OK;
}

static void rg__closed(uv_handle_t *h)
{
    rg_svc_audit *a = h->data;
    if (--a->handles)
        return;
    for (int i = 0; i < a->nopen; i++)
        rg__arec_free(&a->open[i]);
    for (int i = 0; i < a->ndone; i++)
        rg__arec_free(&a->done[i]);
    free(a->open);
    free(a->done);
    free(a);
}

void rg_svc_audit_stop(rg_svc *sv)
{
    rg_svc_audit *a = sv->audit;
    if (!a)
        return;
    /* requests never answered (their client left) are recorded as such */
    while (a->nopen)
        rg__on_respond(sv, a->open[0].conn, 0);
    rg__flush(a);
    if (a->ndone)
        rg_log("error", "audit: %d entr%s could not be stored at shutdown", a->ndone,
               a->ndone == 1 ? "y" : "ies");
    a->closing = 1;
    sv->audit = NULL;
    uv_close((uv_handle_t *)&a->check, rg__closed);
    uv_close((uv_handle_t *)&a->idle, rg__closed);
    uv_close((uv_handle_t *)&a->retry, rg__closed);
    uv_close((uv_handle_t *)&a->archive, rg__closed);
    uv_close((uv_handle_t *)&a->carry, rg__closed);
}

/* "token:" and 12 hex digits of the bearer token's SHA-256. */
static void rg__token_id(const char *authorization, char *out, size_t len)
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int n = 0;
    const char *tok = authorization && !strncmp(authorization, "Bearer ", 7) ? authorization + 7
                                                                            : "";
    if (!EVP_Digest(tok, strlen(tok), md, &n, EVP_sha256(), NULL) || n < 6) {
        snprintf(out, len, "token");
        return;
    }
    snprintf(out, len, "token:%02x%02x%02x%02x%02x%02x", md[0], md[1], md[2], md[3], md[4], md[5]);
}

static rg__arec *rg__open_of(rg_svc *sv, rg_http_conn *c)
{
    rg_svc_audit *a = sv->audit;
    for (int i = 0; a && i < a->nopen; i++)
        if (a->open[i].conn == c)
            return &a->open[i];
    return NULL;
}

void rg_svc_audit_patient(rg_svc *sv, rg_http_conn *c, const char *patient)
{
    rg__arec *r = rg__open_of(sv, c);
    if (!r || !patient)
        return;
    size_t i;
    json_t *v;
    json_array_foreach(r->patients, i, v) {
        if (!strcmp(json_string_value(v), patient))
            return;
    }
    if (json_array_size(r->patients) >= RG__AUDIT_MAX_PATIENTS)
        r->more++;
    else
        json_array_append_new(r->patients, json_string(patient));
}

void rg_svc_audit_items(rg_svc *sv, rg_http_conn *c, json_t *items)
{
    size_t i;
    json_t *ev;
    json_array_foreach(items, i, ev) {
        const char *p = json_string_value(json_object_get(ev, "patient"));
        if (p && strlen(p) <= RG_EVENT_MAX_ID)
            rg_svc_audit_patient(sv, c, p);
    }
}

static int rg__key_patient(void *ud, const rg_alert_view *v)
{
    snprintf(ud, RG_EVENT_MAX_ID + 1, "%s", v->patient);
    return 1;
}

void rg_svc_audit_begin(rg_svc *sv, rg_http_conn *c, const rg_http_req *req, int ci,
                        const char *who, const char *role)
{
    rg_svc_audit *a = sv->audit;
    const char *p = req->path;
    /* what is audited: the routes that read or change patient data */
    if (!a || strncmp(p, "/v1/", 4) || !strcmp(p, "/v1/stream-tickets"))
        return;
    if (rg__open_of(sv, c)) /* its client left unanswered: the pointer is reused */
        rg__on_respond(sv, c, 0);
    if (rg__grow(&a->open, &a->capopen, a->nopen)) {
        rg_log("error", "audit: out of memory: %s %s by clinic %s not recorded", req->method,
               p, sv->clinics[ci].name);
        return;
    }
    rg__arec *r = &a->open[a->nopen++];
    memset(r, 0, sizeof *r);
    r->conn = c;
    r->at = rg_now();
    r->patients = json_array();
    if (who)
        snprintf(r->who, sizeof r->who, "%s", who);
    else
        rg__token_id(req->authorization, r->who, sizeof r->who);
    snprintf(r->role, sizeof r->role, "%s", role ? role : "");
    snprintf(r->address, sizeof r->address, "%s", req->peer ? req->peer : "");
    snprintf(r->clinic, sizeof r->clinic, "%s", sv->clinics[ci].name);
    /* the query tells what was asked for (a stream ticket is never kept) */
    int q = req->query && *req->query && !strstr(req->query, "ticket=");
    snprintf(r->route, sizeof r->route, "%s %.200s%s%.100s", req->method, p, q ? "?" : "",
             q ? req->query : "");
    char buf[RG_EVENT_MAX_ID + 1];
    size_t pl = strlen(p);
    if (!strncmp(p, "/v1/patients/", 13) && pl > 13 + 9 && pl - 22 <= RG_EVENT_MAX_ID) {
        snprintf(buf, sizeof buf, "%.*s", (int)(pl - 22), p + 13);
        rg_svc_audit_patient(sv, c, buf);
    } else if (!strncmp(p, "/v1/alerts/", 11)) { /* the alert's patient */
        char key[64];
        const char *rest = p + 11, *slash = strchr(rest, '/');
        size_t kl = slash ? (size_t)(slash - rest) : strlen(rest);
        buf[0] = '\0';
        if (kl && kl < sizeof key) {
            snprintf(key, sizeof key, "%.*s", (int)kl, rest);
            rg_store_each_alert(sv->st, sv->clinics[ci].name, NULL, NULL, key, 1,
                                rg__key_patient, buf);
        }
        if (buf[0])
            rg_svc_audit_patient(sv, c, buf);
    } else if (rg_svc_query(req->query, "patient", buf, sizeof buf)) {
        rg_svc_audit_patient(sv, c, buf);
    } else if (strcmp(p, "/v1/events") && strcmp(p, "/v1/fhir") && strcmp(p, "/v1/alerts")) {
        rg_svc_audit_patient(sv, c, "*"); /* a read over all the clinic's patients */
    } /* (the events' patients, and those of the alerts listed, come from their handlers) */
}

void rg_svc_audit_note(rg_svc *sv, const char *who, const char *role, const char *clinic,
                       const char *route, const char *outcome)
{
    rg_svc_audit *a = sv->audit;
    if (!a || rg__grow(&a->done, &a->capdone, a->ndone))
        return;
    rg__arec *r = &a->done[a->ndone++];
    memset(r, 0, sizeof *r);
    r->at = rg_now();
    r->patients = json_array();
    snprintf(r->who, sizeof r->who, "%s", who);
    snprintf(r->role, sizeof r->role, "%s", role);
    snprintf(r->clinic, sizeof r->clinic, "%s", clinic);
    snprintf(r->route, sizeof r->route, "%s", route);
    snprintf(r->outcome, sizeof r->outcome, "%s", outcome);
    rg__soon(a);
}

static int rg__entry_to_json(void *ud, const rg_audit_entry *e)
{
    json_array_append_new(ud, rg_audit_json(e));
    return 0;
}

/* Who may read the trail. Today every clinic token may read its own
 * clinic's; with people and roles this is where the auditor role is
 * required (403 naming it). */
static int rg__may_read_audit(rg_svc *sv, int ci, const char *role)
{
    (void)sv;
    (void)ci;
    (void)role;
    return 1;
}

/* GET /v1/audit?since=&patient=&user=&after=&limit=: the clinic's entries. */
void rg_svc_get_audit(rg_svc *sv, int ci, rg_http_conn *c, const rg_http_req *req)
{
    char since[RG_SVC_QUERY_MAX + 1], patient[RG_SVC_QUERY_MAX + 1], user[RG_SVC_QUERY_MAX + 1],
        after[RG_SVC_QUERY_MAX + 1], limit[RG_SVC_QUERY_MAX + 1], why[200];
    rg_audit_filter f = {.clinic = sv->clinics[ci].name, .since = RG_TIME_NONE, .limit = 1000};
    if (!rg__may_read_audit(sv, ci, "clinic-token")) {
        rg_svc_reply_json(c, 403, json_pack("{s:s}", "error", "reading the audit trail needs "
                                                              "the auditor role"));
        return;
    }
    /* the entries waiting for a group commit first: the trail read shows
     * every request answered before it */
    if (sv->audit && sv->audit->ndone && !sv->audit->failing)
        rg__flush(sv->audit);
    f.patient = rg_svc_query(req->query, "patient", patient, sizeof patient);
    f.who = rg_svc_query(req->query, "user", user, sizeof user);
    if (rg_svc_query(req->query, "since", since, sizeof since) &&
        rg_time_parse(since, strlen(since), &f.since, NULL, why, sizeof why)) {
        rg_svc_reply_json(c, 400, json_pack("{s:s}", "error", "since must be an RFC 3339 time "
                                                              "such as 2026-03-02T14:05:00Z"));
        return;
    }
    if (rg_svc_query(req->query, "after", after, sizeof after))
        f.after = strtoll(after, NULL, 10);
    if (rg_svc_query(req->query, "limit", limit, sizeof limit)) {
        f.limit = atoi(limit);
        if (f.limit < 1 || f.limit > 10000) {
            rg_svc_reply_json(c, 400, json_pack("{s:s}", "error", "limit must be 1 to 10000"));
            return;
        }
    }
    json_t *list = json_array();
    if (rg_store_audit_each(sv->st, &f, rg__entry_to_json, list)) {
        json_decref(list);
        rg_svc_unavailable(sv, c, "the audit trail could not be read");
        return;
    }
    size_t n = json_array_size(list);
    json_int_t next = n ? json_integer_value(json_object_get(json_array_get(list, n - 1), "seq"))
                        : (json_int_t)f.after;
    rg_svc_reply_json(c, 200, json_pack("{s:o,s:I}", "entries", list, "next_after", next));
}
