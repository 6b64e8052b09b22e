/*
 * api.c - the service's HTTP endpoints (docs/openapi.yaml): each checked
 * for the role it needs (auth.c says who a request is from), POST /v1/events (queued for serve.c's group commit),
 * alerts, acks and snoozes, the transition feed and its SSE stream, /healthz
 * and /metrics. The worklist's page and endpoints are in worklist.c.
 */
#include "service/service.h"
#include "core/grow.h"

#include "engine/clinic.h"
#include "core/feed.h"
#include "store/ingest.h"

#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>


/* ---- helpers ------------------------------------------------------------------- */

void rg_svc_reply_json(rg_http_conn *c, int status, json_t *body)
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
    rg_svc_reply_json(c, status, json_pack("{s:s}", "error", msg));
}

/* 503 when the store failed (nothing was written), with the cause. */
void rg_svc_unavailable(rg_svc *sv, rg_http_conn *c, const char *msg)
{
    const char *cause = rg_store_fault(sv->st, NULL);
    rg_svc_reply_json(c, 503, json_pack("{s:s,s:s}", "error", msg, "cause",
                                     cause ? cause : rg_store_errmsg(sv->st)));
}

/* Value of name in a query string, decoded by rg_http_unescape, or NULL.
 * rg_svc_handle has refused (400) a query with a bad escape or a value over
 * RG_SVC_QUERY_MAX bytes, so with a buffer of RG_SVC_QUERY_MAX + 1 the value
 * is whole; one that does not fit is NULL, never cut. */
const char *rg_svc_query(const char *q, const char *name, char *buf, size_t len)
{
    size_t nl = strlen(name);
    for (const char *p = q; p && *p;) {
        const char *amp = strchr(p, '&');
        size_t seg = amp ? (size_t)(amp - p) : strlen(p);
        if (seg > nl && !strncmp(p, name, nl) && p[nl] == '=')
            return rg_http_unescape(p + nl + 1, seg - nl - 1, 1, buf, len) < 0 ? NULL : buf;
        p = amp ? amp + 1 : NULL;
    }
    return NULL;
}

/* 0 when every value in the query decodes (rg_http_unescape) to at most
 * RG_SVC_QUERY_MAX bytes; else RG_EINVAL and a message naming the
 * parameter in msg. */
static int rg__query_check(const char *q, char *msg, size_t msglen)
{
    char v[RG_SVC_QUERY_MAX + 1];
    for (const char *p = q; p && *p;) {
        const char *amp = strchr(p, '&');
        size_t seg = amp ? (size_t)(amp - p) : strlen(p);
        const char *eq = memchr(p, '=', seg);
        size_t nl = eq ? (size_t)(eq - p) : seg;
        int rc = eq ? rg_http_unescape(eq + 1, seg - nl - 1, 1, v, sizeof v) : 0;
        if (rc == RG_EINVAL)
            return rg_fail(msg, msglen, RG_EINVAL, "query parameter '%.*s': a bad percent-escape "
                           "(expected %%XX with two hex digits, not %%00)", (int)(nl < 64 ? nl : 64), p);
        if (rc < 0)
            return rg_fail(msg, msglen, RG_EINVAL, "query parameter '%.*s': longer than %d bytes",
                           (int)(nl < 64 ? nl : 64), p, RG_SVC_QUERY_MAX);
        p = amp ? amp + 1 : NULL;
    }
    return 0;
}

static void rg__queue(rg_svc *sv, int ci, rg_http_conn *c, const rg_http_req *req,
                      json_t *items, rg_event *evs, size_t nevs, rg_fhir_import *fhir,
                      const char *what, const rg_svc_who *w);

/* POST /v1/events: a body that is not an event or a list of them is refused
 * at once; the events are queued for this iteration's group commit. A body
 * of plain events is read in one pass, as bulk ingest reads its lines
 * (rg_event_parse_body); any other goes to jansson's tree, which gives the
 * answers and messages for every body (the one-pass read only ever says
 * "all valid", and only when the tree would). */
static void rg__post_events(rg_svc *sv, int ci, rg_http_conn *c, const rg_http_req *req,
                            const rg_svc_who *w)
{
    rg_event *evs;
    size_t nevs;
    if (rg_event_parse_body(req->body, req->body_len, &evs, &nevs) == RG_OK) {
        rg__queue(sv, ci, c, req, NULL, evs, nevs, NULL, "http", w);
        return;
    }
    json_error_t je;
    json_t *body = rg_json_loadb(req->body, req->body_len, JSON_REJECT_DUPLICATES, &je);
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
    rg__queue(sv, ci, c, req, items, NULL, 0, NULL, "http", w);
}

/* Queues a request's events (taken, with fhir: items, or evs already read)
 * for this iteration's group commit, or answers 413 / 503 at once. */
static void rg__queue_src(rg_svc *sv, int ci, rg_http_conn *c, json_t *items, rg_event *evs,
                          size_t nevs, rg_fhir_import *fhir, const char *source,
                          const char *who);

static void rg__queue(rg_svc *sv, int ci, rg_http_conn *c, const rg_http_req *req,
                      json_t *items, rg_event *evs, size_t nevs, rg_fhir_import *fhir,
                      const char *what, const rg_svc_who *w)
{
    char who[100], source[160];
    /* the source names the key: refused events and the log say who sent them */
    snprintf(source, sizeof source, "%s %s %s", what, req->peer ? req->peer : "?",
             rg_svc_who_text(w, who, sizeof who));
    rg__queue_src(sv, ci, c, items, evs, nevs, fhir, source, who);
}

/* The same with the source made (who: the sender, its transitions' cause). */
static void rg__queue_src(rg_svc *sv, int ci, rg_http_conn *c, json_t *items, rg_event *evs,
                          size_t nevs, rg_fhir_import *fhir, const char *source,
                          const char *who)
{
    char msg[160];
    size_t n = evs ? nevs : json_array_size(items);
    int refuse = n > (size_t)sv->max_events ? 413 : 0;
    if (!refuse) {
        rg_svc_pending *grown = rg_grow(sv->pending, &sv->cap_pending, (size_t)sv->npending,
                                        sizeof *grown, 64);
        if (grown)
            sv->pending = grown;
        else
            refuse = 503;
    }
    if (refuse) {
        json_decref(items);
        rg_event_free_all(evs, nevs);
        if (fhir) {
            rg_fhir_free(fhir);
            free(fhir);
        }
        if (refuse == 413)
            snprintf(msg, sizeof msg, "%zu events in one request; the limit is %d", n,
                     sv->max_events);
        rg__error(c, refuse, refuse == 413 ? msg : "out of memory; nothing was stored, send "
                                                   "the events again");
        return;
    }
    int wait = rg_svc_backlog_wait(sv, ci);
    if (wait > 0) { /* nothing taken: the clinic's evaluation is too far behind */
        char headers[64];
        json_decref(items);
        rg_event_free_all(evs, nevs);
        if (fhir) {
            rg_fhir_free(fhir);
            free(fhir);
        }
        snprintf(headers, sizeof headers, "Retry-After: %d\r\n", wait);
        char why[400];
        snprintf(why, sizeof why, "clinic %s: %d or more patients wait for evaluation "
                 "(limits.backlog_patients %d); nothing was stored, send the events again in "
                 "%d s", sv->clinics[ci].name, sv->clinics[ci].backlog, sv->backlog_max, wait);
        char *text = NULL;
        json_t *body = json_pack("{s:s,s:i}", "error", why, "retry_after", wait);
        text = body ? json_dumps(body, JSON_COMPACT | JSON_ENSURE_ASCII) : NULL;
        json_decref(body);
        rg_http_respond_headers(c, text ? 503 : 500, "application/json", headers,
                                text ? text : "{}", text ? strlen(text) : 2);
        free(text);
        return;
    }
    rg_svc_audit_items(sv, c, items);
    for (size_t i = 0; i < nevs; i++)
        rg_svc_audit_patient(sv, c, evs[i].patient);
    rg_svc_pending *pr = &sv->pending[sv->npending++];
    memset(pr, 0, sizeof *pr);
    pr->conn = c;
    pr->clinic = ci;
    pr->items = items;
    pr->evs = evs;
    pr->nevs = nevs;
    pr->fhir = fhir;
    snprintf(pr->source, sizeof pr->source, "%s", source);
    snprintf(pr->who, sizeof pr->who, "%s", who);
    if (sv->clinics[ci].job) /* its wake-up part hands back soon (evaluate.c) */
        atomic_store_explicit(&sv->clinics[ci].job->asked, 1, memory_order_relaxed);
    rg_svc_flush_soon(sv);
}

/* The answer to a Bundle that could not be converted (rc from
 * rg_fhir_bundle, msg says why): nothing was stored. */
static void rg__fhir_refused(rg_http_conn *c, int rc, const char *msg)
{
    if (rc == RG_ENOMEM)
        rg__error(c, 503, "out of memory; nothing was stored, send the Bundle again");
    else if (rc == RG_EINVAL)
        rg__error(c, 400, msg);
    else /* the clinic's fhir.map failed: its Lua file and line are in msg */
        rg__error(c, 500, msg);
    if (rc != RG_EINVAL && rc != RG_ENOMEM)
        rg_log("error", "POST /v1/fhir: %s", msg);
}

/* The events of an import, in its entries' order (json_array_extend). */
static json_t *rg__fhir_items(const rg_fhir_import *im)
{
    json_t *items = json_array();
    for (size_t i = 0; items && i < im->n; i++)
        json_array_extend(items, im->v[i].events);
    return items;
}

void rg_svc_fhir_mapped(rg_svc *sv, rg_svc_job *j)
{
    rg_svc_fhir_job *f = j->fhir;
    if (sv->stopping) {
        rg_svc_unavailable(sv, f->conn, "the service is stopping; nothing was stored, send the "
                                        "Bundle again");
    } else if (f->rc) {
        rg__fhir_refused(f->conn, f->rc, f->msg);
    } else {
        json_t *items = rg__fhir_items(f->im);
        rg_fhir_import *im = f->im;
        f->im = NULL; /* (the pending request's now) */
        if (items)
            rg__queue_src(sv, j->clinic, f->conn, items, NULL, 0, im, f->source, f->who);
        else
            rg__fhir_refused(f->conn, RG_ENOMEM, "");
    }
    rg_svc_job_free(j);
}

/* POST /v1/fhir: a Bundle converted by the default mapping and the clinic's
 * fhir settings (clinic.lua), whose events then take the path of POST
 * /v1/events: the same group commit, validation and outcomes. When the
 * clinic has a fhir.map, the conversion is a job for an evaluation thread
 * (rg_svc_fhir_mapped takes it up again): a slow map holds its own request
 * only, for at most limits.deadline_ms in all. */
static void rg__post_fhir(rg_svc *sv, int ci, rg_http_conn *c, const rg_http_req *req,
                          const rg_svc_who *w)
{
    json_error_t je;
    char msg[4096];
    json_t *body = rg_json_loadb(req->body, req->body_len, JSON_REJECT_DUPLICATES, &je);
    if (!body) {
        snprintf(msg, sizeof msg, "body is not valid JSON: %s (line %d, column %d)", je.text,
                 je.line, je.column);
        rg__error(c, 400, msg);
        return;
    }
    rg_fhir_opts fo = {.clinic = sv->clinics[ci].name};
    rg_clinic *clinic = rg_engine_clinic(sv->eng, sv->clinics[ci].name);
    if (clinic && clinic->fhir_map && sv->pool) {
        rg_svc_job *j = calloc(1, sizeof *j);
        rg_svc_fhir_job *f = j ? calloc(1, sizeof *f) : NULL;
        if (!f) {
            free(j);
            json_decref(body);
            rg__fhir_refused(c, RG_ENOMEM, "");
            return;
        }
        char who[100];
        j->clinic = ci;
        j->gen = sv->clinics[ci].gen;
        j->fp = sv->clinics[ci].live_fp;
        j->fhir = f;
        f->conn = c;
        f->bundle = body; /* (the thread's until the job is back) */
        snprintf(f->source, sizeof f->source, "fhir http %s %s", req->peer ? req->peer : "?",
                 rg_svc_who_text(w, who, sizeof who));
        snprintf(f->who, sizeof f->who, "%s", who);
        sv->njobs++; /* (a stop waits for it, as for an evaluation) */
        rg_svc_pool_submit(sv, j);
        return;
    }
    if (clinic)
        rg_clinic_fhir_opts(clinic, &fo);
    rg_fhir_import *im = calloc(1, sizeof *im);
    int rc = im ? rg_fhir_bundle(im, body, &fo, msg, sizeof msg) : RG_ENOMEM;
    json_decref(body);
    json_t *items = rc ? NULL : rg__fhir_items(im);
    if (!rc && !items) {
        rg_fhir_free(im);
        rc = RG_ENOMEM;
    }
    if (rc) {
        free(im);
        rg__fhir_refused(c, rc, msg);
        return;
    }
    rg__queue(sv, ci, c, req, items, NULL, 0, im, "fhir http", w);
}

/* A list being filled with one clinic's objects, and that clinic's zone. */
typedef struct rg__zlist {
    json_t *list;
    const rg_zone *zone;
    int64_t last; /* the id of the last alert listed */
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
    json_object_set_new(o, "notify_at_local", rg_time_local_json(zl->zone, a->notify_at));
    json_object_set_new(o, "resolved_at", rg_time_json(a->resolved_at));
    json_object_set_new(o, "resolved_at_local", rg_time_local_json(zl->zone, a->resolved_at));
    json_object_set_new(o, "acknowledged_by", a->acked_by ? json_string(a->acked_by) : json_null());
    json_object_set_new(o, "acknowledged_at", rg_time_json(a->acked_at));
    json_object_set_new(o, "snoozed_until", rg_time_json(a->snoozed_until));
    json_object_set_new(o, "snoozed_until_local", rg_time_local_json(zl->zone, a->snoozed_until));
    rg_time now = rg_now();
    int quiet = a->acked_by || (a->snoozed_until != RG_TIME_NONE && a->snoozed_until > now);
    json_object_set_new(o, "quiet", json_boolean(quiet && !strcmp(a->state, "open")));
    json_array_append_new(zl->list, o);
    zl->last = a->id;
    return 0;
}

static int64_t rg__parse_seq(const char *s, int *ok);

/* The alert's id, for the cursor of the next page. */
static int rg__alert_id(void *ud, const rg_alert_view *a)
{
    *(int64_t *)ud = a->id;
    return 0;
}

/* GET /v1/alerts: a page of at most limit alerts (RG_SVC_ALERTS_PAGE unless
 * asked, never more than RG_SVC_ALERTS_MAX), oldest first, after the
 * cursor (the id of the last alert of the previous page, opaque to
 * clients); "next" is the cursor of the following page, or null after the
 * last. A full page looks one alert further to know whether one follows. */
static void rg__get_alerts(rg_svc *sv, int ci, rg_http_conn *c, const rg_http_req *req)
{
    char patient[RG_SVC_QUERY_MAX + 1], state[RG_SVC_QUERY_MAX + 1], cursor_s[RG_SVC_QUERY_MAX + 1],
        limit_s[RG_SVC_QUERY_MAX + 1];
    const char *p = rg_svc_query(req->query, "patient", patient, sizeof patient);
    const char *s = rg_svc_query(req->query, "state", state, sizeof state);
    const char *cs = rg_svc_query(req->query, "cursor", cursor_s, sizeof cursor_s);
    const char *ls = rg_svc_query(req->query, "limit", limit_s, sizeof limit_s);
    int ok1, ok2;
    int64_t after = rg__parse_seq(cs && *cs ? cs : NULL, &ok1);
    int64_t limit = ls ? rg__parse_seq(ls, &ok2) : (ok2 = 1, RG_SVC_ALERTS_PAGE);
    if (s && strcmp(s, "open") && strcmp(s, "resolved")) {
        rg__error(c, 400, "state must be open or resolved");
        return;
    }
    if (!ok1) {
        rg__error(c, 400, "cursor must be the \"next\" of the previous page");
        return;
    }
    if (!ok2 || limit < 1 || limit > RG_SVC_ALERTS_MAX) {
        char msg[96];
        snprintf(msg, sizeof msg, "limit must be a whole number from 1 to %d", RG_SVC_ALERTS_MAX);
        rg__error(c, 400, msg);
        return;
    }
    json_t *list = json_array();
    rg__zlist zl = {list, rg_engine_zone(sv->eng, sv->clinics[ci].name), 0};
    if (rg_store_each_alert_after(sv->st, sv->clinics[ci].name, p, s, NULL, after, (int)limit,
                                  rg__alert_to_json, &zl)) {
        json_decref(list);
        rg__error(c, 503, "the alerts could not be read");
        return;
    }
    size_t i;
    json_t *a;
    json_array_foreach(list, i, a) /* the audit trail names whose alerts were shown */
        rg_svc_audit_patient(sv, c, json_string_value(json_object_get(a, "patient")));
    json_t *next = json_null();
    int64_t more = 0;
    if (json_array_size(list) == (size_t)limit &&
        !rg_store_each_alert_after(sv->st, sv->clinics[ci].name, p, s, NULL, zl.last, 1,
                                   rg__alert_id, &more) &&
        more > zl.last) {
        char cur[32];
        snprintf(cur, sizeof cur, "%lld", (long long)zl.last);
        next = json_string(cur);
    }
    rg_svc_reply_json(c, 200, json_pack("{s:o,s:o}", "alerts", list, "next", next));
}

static int rg__action_to_json(void *ud, const rg_alert_action *a)
{
    rg__zlist *zl = ud;
    json_t *o = json_pack("{s:s,s:s,s:s,s:o,s:o,s:o,s:o}", "action", a->action, "who", a->who,
                          "note", a->note, "at", rg_time_json(a->at), "until",
                          rg_time_json(a->until), "at_local", rg_time_local_json(zl->zone, a->at),
                          "until_local", rg_time_local_json(zl->zone, a->until));
    json_array_append_new(zl->list, o);
    return 0;
}

typedef struct rg__key_filter {
    const char *key;
    json_t *list;
    const rg_zone *zone;
} rg__key_filter;

/* the key's transitions, read by (clinic, key) through transitions_by_key */
static int rg__transition_of_key(void *ud, const rg_transition *t)
{
    rg__key_filter *f = ud;
    json_t *j = rg_transition_json(t, 1, f->zone);
    /* who or what caused it (not in the feed's JSON: simulate prints that) */
    json_object_set_new(j, "cause", json_string(t->cause ? t->cause : "unknown"));
    json_array_append_new(f->list, j);
    return 0;
}

static int rg__notification_to_json(void *ud, const rg_notify_entry *e)
{
    rg__zlist *zl = ud;
    json_array_append_new(zl->list, rg_notify_entry_json(e, zl->zone));
    return 0;
}

/* GET /v1/alerts/{key}: every instance of the alert, its transitions,
 * actions and notifications (the policy's history, docs/notifications.md). */
static void rg__get_alert(rg_svc *sv, int ci, rg_http_conn *c, const char *key)
{
    json_t *instances = json_array(), *actions = json_array(), *transitions = json_array();
    json_t *notes = json_array();
    const char *clinic = sv->clinics[ci].name;
    rg__key_filter f = {key, transitions, rg_engine_zone(sv->eng, clinic)};
    rg__zlist zl = {instances, f.zone, 0}, zactions = {actions, f.zone, 0};
    if (rg_store_each_alert(sv->st, clinic, NULL, NULL, key, 1000, rg__alert_to_json, &zl) ||
        rg_store_each_action(sv->st, clinic, key, rg__action_to_json, &zactions) ||
        rg_store_key_transitions(sv->st, clinic, key, rg__transition_of_key, &f) ||
        rg_store_notify_each_log(sv->st, clinic, NULL, key, rg__notification_to_json,
                                 &(rg__zlist){notes, f.zone, 0})) {
        json_decref(notes);
        json_decref(instances);
        json_decref(actions);
        json_decref(transitions);
        rg__error(c, 503, "the alert could not be read");
        return;
    }
    if (json_array_size(instances) == 0) {
        json_decref(notes);
        json_decref(instances);
        json_decref(actions);
        json_decref(transitions);
        rg__error(c, 404, "no alert with this key in your clinic");
        return;
    }
    rg_svc_reply_json(c, 200, json_pack("{s:o,s:o,s:o,s:o}", "alerts", instances, "transitions",
                                     transitions, "actions", actions, "notifications", notes));
}

/* POST /v1/alerts/{key}/ack and /snooze. A signed-in user or a key is
 * recorded as itself with its role ("ann (nurse)"): a "who" in the body is
 * ignored (docs/service.md). Only a legacy clinic token, which names nobody,
 * records the body's "who". */
static void rg__alert_action(rg_svc *sv, int ci, rg_http_conn *c, const rg_http_req *req,
                             const char *key, const char *action, const rg_svc_who *w)
{
    json_error_t je;
    json_t *body = rg_json_loadb(req->body, req->body_len, 0, &je);
    char self[200];
    const char *who = w->kind == RG_WHO_TOKEN ? json_string_value(json_object_get(body, "who"))
                                              : rg_svc_who_text(w, self, sizeof self);
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
    char by[160]; /* (a token's "who" is the body's: copied before it goes) */
    snprintf(by, sizeof by, "%s", who);
    who = by;
    json_decref(body);
    if (rc) {
        rg_store_rollback(sv->st);
        if (rc == RG_ENOTFOUND) {
            rg__error(c, 404, "no open alert with this key in your clinic");
            return;
        }
        rg_svc_unavailable(sv, c, "the action could not be stored");
        return;
    }
    rg_log("info", "clinic %s: alert %s %s by %s", sv->clinics[ci].name, key,
           !strcmp(action, "ack") ? "acknowledged" : "snoozed", who);
    rg__get_alert(sv, ci, c, key);
    rg_svc_arm(sv);
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

static void rg__get_transitions(rg_svc *sv, int ci, rg_http_conn *c, const rg_http_req *req)
{
    char after_s[RG_SVC_QUERY_MAX + 1], limit_s[RG_SVC_QUERY_MAX + 1];
    int ok1, ok2;
    int64_t after = rg__parse_seq(rg_svc_query(req->query, "after", after_s, sizeof after_s), &ok1);
    int64_t limit = rg__parse_seq(rg_svc_query(req->query, "limit", limit_s, sizeof limit_s), &ok2);
    if (!ok1 || !ok2) {
        rg__error(c, 400, "after and limit must be whole numbers");
        return;
    }
    if (limit <= 0 || limit > 10000)
        limit = 10000;
    json_t *list = json_array();
    rg__zlist zl = {list, rg_engine_zone(sv->eng, sv->clinics[ci].name), 0};
    if (rg_store_clinic_transitions(sv->st, sv->clinics[ci].name, after, (int)limit,
                                    rg__collect_transition, &zl)) {
        json_decref(list);
        rg__error(c, 503, "the transitions could not be read");
        return;
    }
    size_t n = json_array_size(list);
    int64_t last = n ? json_integer_value(json_object_get(json_array_get(list, n - 1), "seq")) : after;
    rg_svc_reply_json(c, 200, json_pack("{s:o,s:I}", "transitions", list, "last", (json_int_t)last));
}

static void rg__stream_closed(void *ud, rg_http_conn *conn)
{
    rg_svc *sv = ud;
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
    int n;        /* transitions sent */
    size_t bytes; /* ... and their size: a page ends at RG_SVC_STREAM_PAGE_BYTES too */
} rg__backlog;

static int rg__send_backlog(void *ud, const rg_transition *t)
{
    rg__backlog *b = ud;
    json_t *j = rg_transition_json(t, 1, b->zone);
    char *data = json_dumps(j, JSON_COMPACT | JSON_ENSURE_ASCII), id[32];
    json_decref(j);
    snprintf(id, sizeof id, "%lld", (long long)t->cseq);
    int rc = data ? rg_http_stream_send(b->conn, id, "transition", data) : RG_ENOMEM;
    b->bytes += data ? strlen(data) : 0;
    free(data);
    b->last = t->cseq;
    b->n++;
    return rc || b->bytes >= RG_SVC_STREAM_PAGE_BYTES ? 1 : 0;
}

static rg_svc_stream *rg__stream_of(rg_svc *sv, rg_http_conn *c)
{
    for (int i = 0; i < sv->nstreams; i++)
        if (sv->streams[i].conn == c)
            return &sv->streams[i];
    return NULL;
}

static void rg__stream_page(void *ud, rg_http_conn *c);

/* Sends a stream's backlog a page (RG_SVC_STREAM_PAGE transitions, or fewer
 * that make RG_SVC_STREAM_PAGE_BYTES) at a time, the next page once the
 * client has read the last: a backlog of megabytes is never read nor queued
 * whole, and a client that does not read costs one page until the stall
 * limit closes its stream. A short page is
 * the end of the backlog: from there the stream takes what serve.c
 * publishes. Runs as the stream's drain callback (http.c runs a few of those
 * per loop iteration: many streams' backlogs take turns with requests). */
static void rg__stream_page(void *ud, rg_http_conn *c)
{
    rg_svc *sv = ud;
    rg_svc_stream *s = rg__stream_of(sv, c);
    if (!s) /* closed meanwhile */
        return;
    const char *clinic = sv->clinics[s->clinic].name;
    rg__backlog b = {c, s->next, rg_engine_zone(sv->eng, clinic), 0, 0};
    int rc = rg_store_clinic_transitions(sv->st, clinic, s->next, RG_SVC_STREAM_PAGE,
                                         rg__send_backlog, &b);
    if (!(s = rg__stream_of(sv, c))) /* a send closed it: its client too far behind */
        return;
    if (rc < 0) { /* the backlog could not be read: a stream with a hole is worse */
        rg_log("error", "clinic %s: stream backlog not read: %s (%s); stream closed", clinic,
               rg_strerror(rc), rg_store_errmsg(sv->st));
        rg_http_stream_end(c);
        return;
    }
    s->next = b.last;
    if (b.n < RG_SVC_STREAM_PAGE && b.bytes < RG_SVC_STREAM_PAGE_BYTES)
        s->last_cseq = b.last; /* caught up */
    else
        rg_http_stream_on_drain(c, rg__stream_page);
}

/* Whether two identities are one (for the per-identity stream limit). */
static int rg__same_who(const rg_svc_who *a, const rg_svc_who *b)
{
    return a->kind == b->kind && a->clinic == b->clinic && !strcmp(a->name, b->name);
}

static void rg__get_stream(rg_svc *sv, int ci, rg_http_conn *c, const rg_http_req *req,
                           const rg_svc_who *w)
{
    char after_s[RG_SVC_QUERY_MAX + 1], msg[160];
    int ok;
    const char *from = req->last_event_id ? req->last_event_id
                                          : rg_svc_query(req->query, "after", after_s, sizeof after_s);
    int64_t after = rg__parse_seq(from, &ok);
    if (!ok) {
        rg__error(c, 400, "after (or Last-Event-ID) must be a whole number");
        return;
    }
    int of_clinic = 0, of_token = 0;
    for (int i = 0; i < sv->nstreams; i++) {
        of_clinic += sv->streams[i].clinic == ci;
        of_token += sv->streams[i].clinic == ci && rg__same_who(&sv->streams[i].who, w);
    }
    if (of_token >= sv->max_streams_token || of_clinic >= sv->max_streams_clinic) {
        snprintf(msg, sizeof msg, "too many streams for this %s (%d); close one first",
                 of_token >= sv->max_streams_token ? "user or key" : "clinic",
                 of_token >= sv->max_streams_token ? sv->max_streams_token
                                                   : sv->max_streams_clinic);
        rg__error(c, 429, msg);
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
     * far behind) unlists it in rg__stream_closed */
    sv->streams[sv->nstreams++] = (rg_svc_stream){c, ci, RG_SVC_PAGING, after, *w};
    rg_http_stream_start(c, rg__stream_closed, sv);
    rg_http_stream_on_drain(c, rg__stream_page); /* the first page once the head is out */
}

/* A label value as the Prometheus text format writes it: backslash, double
 * quote and line feed escaped (protocol ids and versions come from files). */
static const char *rg__label(const char *s, char *buf, size_t size)
{
    size_t n = 0;
    for (; *s && n + 3 < size; s++) {
        if (*s == '\\' || *s == '"' || *s == '\n') {
            buf[n++] = '\\';
            buf[n++] = *s == '\n' ? 'n' : *s;
        } else {
            buf[n++] = *s;
        }
    }
    buf[n] = '\0';
    return buf;
}

static int rg__metric_open(void *ud, const char *clinic, const char *severity, int64_t n)
{
    char c[160], s[64];
    rg_buf_printf(ud, "regimen_open_alerts{clinic=\"%s\",severity=\"%s\"} %lld\n",
                  rg__label(clinic, c, sizeof c), rg__label(severity, s, sizeof s), (long long)n);
    return 0;
}

/* The first clinic from i on (before end) that a reload has not removed, or end. */
static int rg__live(const rg_svc *sv, int i, int end)
{
    while (i < end && sv->clinics[i].gone)
        i++;
    return i;
}

typedef struct rg__notes {
    rg_svc *sv;
    rg_buf *b;
    int ci;
} rg__notes;

static int rg__note_count(void *ud, const char *clinic, const char *outcome, const char *kind,
                          int64_t n)
{
    rg__notes *x = ud;
    char lc[160], lo[64], lk[64];
    if (x->ci >= 0 && strcmp(clinic, x->sv->clinics[x->ci].name))
        return 0;
    rg_buf_printf(x->b, "regimen_notifications_total{clinic=\"%s\",outcome=\"%s\","
                        "receiver=\"%s\"} %lld\n", rg__label(clinic, lc, sizeof lc),
                  rg__label(outcome, lo, sizeof lo), rg__label(kind, lk, sizeof lk),
                  (long long)n);
    return 0;
}

/* What one GET /metrics reads: the service, the clinics shown (c0 to c1),
 * and a snapshot of the service-wide numbers the table's rows point into. */
typedef struct rg__mctx {
    rg_svc *sv;
    rg_buf *b;
    int ci, c0, c1; /* ci -1: every clinic */
} rg__mctx;

typedef struct rg__msnap {
    long long cache_bytes, cache_cap, cache_patients, cache_hits, cache_misses, cache_evictions;
    long long kept_hits, kept_misses;
    long long eval_errors, limit_hits, steps, reloads_ok, reloads_refused, store_errors;
    long long quarantined, quarantines, quarantine_skips, cpu_budget_hits;
    long long leases_held, leases_taken, leases_released, workers;
    long long groups, group_requests, notices, wake_yields, shared_runs;
    long long http_requests, http_connections, http_streams, http_unauthenticated;
    long long http_refused, http_evicted, http_dropped;
    long long hook_ok, hook_failed, hook_backlog;
    long long patients_evaluated, db_statements, db_round_trips;
    long long ckpt_ok, ckpt_busy, ckpt_failed, wal_behind;
    double loop_lag, wake_next;
} rg__msnap;

/* The clinics' live slots shown, in order. */
#define RG__EACH_CLINIC(m, i)                                                                    \
    for (int i = rg__live((m)->sv, (m)->c0, (m)->c1); i < (m)->c1;                              \
         i = rg__live((m)->sv, i + 1, (m)->c1))

static void rg__m_events(rg__mctx *m)
{
    char lc[160];
    RG__EACH_CLINIC(m, i)
        for (int k = 0; k < 5; k++)
            rg_buf_printf(m->b, "regimen_events_total{clinic=\"%s\",outcome=\"%s\"} %llu\n",
                          rg__label(m->sv->clinics[i].name, lc, sizeof lc), rg_svc_outcomes[k],
                          (unsigned long long)m->sv->clinics[i].events[k]);
}

static void rg__m_future(rg__mctx *m)
{
    char lc[160];
    RG__EACH_CLINIC(m, i)
        rg_buf_printf(m->b, "regimen_events_future_total{clinic=\"%s\"} %llu\n",
                      rg__label(m->sv->clinics[i].name, lc, sizeof lc),
                      (unsigned long long)m->sv->clinics[i].future);
}

static void rg__m_transitions(rg__mctx *m)
{
    char lc[160];
    RG__EACH_CLINIC(m, i) {
        rg__label(m->sv->clinics[i].name, lc, sizeof lc);
        rg_buf_printf(m->b, "regimen_transitions_total{clinic=\"%s\",state=\"open\"} %llu\n",
                      lc, (unsigned long long)m->sv->clinics[i].opened);
        rg_buf_printf(m->b, "regimen_transitions_total{clinic=\"%s\",state=\"resolved\"} %llu\n",
                      lc, (unsigned long long)m->sv->clinics[i].resolved);
    }
}

/* Per protocol: seconds (counts 0) or evaluations (counts 1). */
static void rg__m_protocols(rg__mctx *m, int counts)
{
    char lc[160], lp[512], lv[512];
    RG__EACH_CLINIC(m, i) {
        rg_clinic *cl = rg_engine_clinic(m->sv->eng, m->sv->clinics[i].name);
        for (int p = 0; cl && p < cl->nprotos; p++) {
            rg_buf_printf(m->b, "regimen_evaluation%s{clinic=\"%s\",protocol=\"%s\",version=\"%s\"} ",
                          counts ? "s_total" : "_seconds_total", rg__label(cl->name, lc, sizeof lc),
                          rg__label(cl->protos[p].id, lp, sizeof lp),
                          rg__label(cl->protos[p].version, lv, sizeof lv));
            if (counts)
                rg_buf_printf(m->b, "%llu\n", (unsigned long long)cl->protos[p].evaluations);
            else
                rg_buf_printf(m->b, "%.6f\n", cl->protos[p].seconds);
        }
    }
}

static void rg__m_seconds(rg__mctx *m)
{
    rg__m_protocols(m, 0);
}

static void rg__m_evaluations(rg__mctx *m)
{
    rg__m_protocols(m, 1);
}

static void rg__m_lease(rg__mctx *m)
{
    char lc[160];
    RG__EACH_CLINIC(m, i)
        rg_buf_printf(m->b, "regimen_lease_held{clinic=\"%s\"} %d\n",
                      rg__label(m->sv->clinics[i].name, lc, sizeof lc), m->sv->clinics[i].held);
}

/* back-pressure (serve.c, rg_svc_backlog_wait): what this worker last
 * counted of a clinic another worker holds, and the requests it refused */
static void rg__m_backlog(rg__mctx *m)
{
    char lc[160];
    RG__EACH_CLINIC(m, i)
        rg_buf_printf(m->b, "regimen_backlog_patients{clinic=\"%s\"} %d\n",
                      rg__label(m->sv->clinics[i].name, lc, sizeof lc),
                      m->sv->clinics[i].held ? 0 : m->sv->clinics[i].backlog);
}

static void rg__m_backpressure(rg__mctx *m)
{
    char lc[160];
    RG__EACH_CLINIC(m, i)
        rg_buf_printf(m->b, "regimen_backpressure_total{clinic=\"%s\"} %llu\n",
                      rg__label(m->sv->clinics[i].name, lc, sizeof lc),
                      (unsigned long long)m->sv->clinics[i].busy);
}

static void rg__m_lateness(rg__mctx *m)
{
    const rg_svc *sv = m->sv;
    for (int i = 0; i < 6; i++)
        rg_buf_printf(m->b, "regimen_wake_lateness_seconds_bucket{le=\"%g\"} %llu\n",
                      rg_svc_late_bounds[i], (unsigned long long)sv->lateness_buckets[i]);
    rg_buf_printf(m->b, "regimen_wake_lateness_seconds_bucket{le=\"+Inf\"} %llu\n"
                        "regimen_wake_lateness_seconds_sum %.6f\n"
                        "regimen_wake_lateness_seconds_count %llu\n",
                  (unsigned long long)sv->lateness_count, sv->lateness_sum,
                  (unsigned long long)sv->lateness_count);
}

static void rg__m_open(rg__mctx *m)
{
    rg_store_open_by_severity(m->sv->st, m->ci < 0 ? NULL : m->sv->clinics[m->ci].name,
                              rg__metric_open, m->b);
}

static void rg__m_notifications(rg__mctx *m)
{
    rg__notes nc = {m->sv, m->b, m->ci};
    rg_store_notify_counts(m->sv->st, rg__note_count, &nc);
}

/* One row per sample or family, in the order they are written, as nginx's
 * ngx_command_t: the family's name, type and help (written once, before its
 * first row), then either one sample read from the snapshot (at offset,
 * with labels when the family has several), or a writer that writes the
 * family's samples (per clinic, per protocol, from the store). A new metric
 * is one row. */
enum { RG__M_ALL, RG__M_HOOKS /* only when webhooks are configured */ };
static const struct rg__metric {
    const char *name, *type, *help;
    const char *labels;         /* NULL: none; else {labels} of this sample */
    size_t offset;              /* into rg__msnap (no writer) */
    int is_double;              /* the field is a double */
    void (*write)(rg__mctx *m); /* or: the family's samples */
    int when;
} rg__metrics[] = {
#define RG__S(f) offsetof(rg__msnap, f), 0, NULL, RG__M_ALL
#define RG__W(fn) 0, 0, fn, RG__M_ALL
    {"regimen_events_total", "counter", "Events received over HTTP, by outcome.", NULL,
     RG__W(rg__m_events)},
    {"regimen_events_future_total", "counter", "Events stored over HTTP dated ahead of the clock "
     "by more than limits.future_skew_minutes (flagged).", NULL, RG__W(rg__m_future)},
    {"regimen_transitions_total", "counter", "Alert transitions published.", NULL,
     RG__W(rg__m_transitions)},
    /* one family's samples together (the exposition format wants them so) */
    {"regimen_evaluation_seconds_total", "counter", "Time spent evaluating, per protocol.", NULL,
     RG__W(rg__m_seconds)},
    {"regimen_evaluations_total", "counter", "Evaluations, per protocol.", NULL,
     RG__W(rg__m_evaluations)},
    {"regimen_history_cache_bytes", "gauge", "Compiled histories kept between evaluations "
     "(limits.history_cache_mb).", NULL, RG__S(cache_bytes)},
    {"regimen_history_cache_limit_bytes", "gauge", "The cache's cap.", NULL, RG__S(cache_cap)},
    {"regimen_history_cache_patients", "gauge", "Patients whose history is cached.", NULL,
     RG__S(cache_patients)},
    {"regimen_history_cache_lookups_total", "counter", "Evaluations that found the history "
     "cached (hit) or read it whole (miss).", "result=\"hit\"", RG__S(cache_hits)},
    {"regimen_history_cache_lookups_total", NULL, NULL, "result=\"miss\"", RG__S(cache_misses)},
    {"regimen_kept_answers_total", "counter", "Evaluations that started from the rules' answers "
     "kept beside the cached history (hit: only the rules whose inputs changed ran) or found "
     "them no longer standing (stale: every rule ran).", "result=\"hit\"", RG__S(kept_hits)},
    {"regimen_kept_answers_total", NULL, NULL, "result=\"stale\"", RG__S(kept_misses)},
    {"regimen_history_cache_evictions_total", "counter", "Histories dropped (over the cap, or "
     "after a rolled-back transaction).", NULL, RG__S(cache_evictions)},
    {"regimen_evaluation_errors_total", "counter", "Rule evaluations that failed (an error in a "
     "protocol).", NULL, RG__S(eval_errors)},
    {"regimen_limit_hits_total", "counter", "Evaluations stopped by a sandbox limit (memory, "
     "instructions, deadline).", NULL, RG__S(limit_hits)},
    {"regimen_patient_steps_total", "counter", "Patient evaluation steps.", NULL, RG__S(steps)},
    {"regimen_reloads_total", "counter", "Protocol reloads, loaded or refused.", "result=\"ok\"",
     RG__S(reloads_ok)},
    {"regimen_reloads_total", NULL, NULL, "result=\"refused\"", RG__S(reloads_refused)},
    {"regimen_store_errors_total", "counter", "Database operations that failed.", NULL,
     RG__S(store_errors)},
    /* the WAL's checkpoints (SQLite; sqlite.c, rg__ckpt; 0 on PostgreSQL) */
    {"regimen_store_checkpoints_total", "counter", "WAL checkpoints (SQLite): copied, found the "
     "database busy, or failed (an I/O error, a full disk).", "result=\"ok\"",
     RG__S(ckpt_ok)},
    {"regimen_store_checkpoints_total", NULL, NULL, "result=\"busy\"", RG__S(ckpt_busy)},
    {"regimen_store_checkpoints_total", NULL, NULL, "result=\"failed\"", RG__S(ckpt_failed)},
    {"regimen_store_wal_pages", "gauge", "WAL pages not yet copied into the database file, as "
     "last known (SQLite; past 64000 /healthz says degraded).", NULL, RG__S(wal_behind)},
    {"regimen_loop_lag_seconds", "gauge", "How late the event loop ran a 1 s timer, last "
     "measured.", NULL, offsetof(rg__msnap, loop_lag), 1, NULL, RG__M_ALL},
    /* what a test waits on before it asserts that nothing fired twice */
    {"regimen_wake_next_seconds", "gauge", "The earliest wake-up or snooze expiry the service "
     "last read from the store, which its wake-up timer waits for (Unix time; 0: none); while "
     "a wake-up pass runs, the one it woke for.", NULL, offsetof(rg__msnap, wake_next), 1,
     NULL, RG__M_ALL},
    /* round trips to a database server (PostgreSQL; 0 on SQLite), beside the
     * patients evaluated: statements per evaluated patient (issue 27) */
    {"regimen_patients_evaluated_total", "counter", "Patient evaluations (one patient advanced "
     "to now).", NULL, RG__S(patients_evaluated)},
    {"regimen_db_statements_total", "counter", "Statements sent to the database server "
     "(PostgreSQL; 0 on SQLite).", NULL, RG__S(db_statements)},
    {"regimen_db_round_trips_total", "counter", "Round trips to the database server (a pipeline "
     "of statements is one).", NULL, RG__S(db_round_trips)},
    /* budgets (runtime/engine/engine.c): quarantined protocols, CPU budget */
    {"regimen_protocols_quarantined", "gauge", "Protocols quarantined now (not evaluated after "
     "repeated limit hits).", NULL, RG__S(quarantined)},
    {"regimen_quarantines_total", "counter", "Times a protocol was quarantined.", NULL,
     RG__S(quarantines)},
    {"regimen_quarantine_skips_total", "counter", "Protocol evaluations not made because the "
     "protocol was quarantined.", NULL, RG__S(quarantine_skips)},
    {"regimen_cpu_budget_hits_total", "counter", "Protocol evaluations not made because their "
     "clinic had used its CPU budget.", NULL, RG__S(cpu_budget_hits)},
    /* leases (many workers on PostgreSQL; a SQLite service holds all) */
    {"regimen_leases_held", "gauge", "Clinic leases this worker holds.", NULL,
     RG__S(leases_held)},
    {"regimen_lease_held", "gauge", "Whether this worker holds the clinic's lease.", NULL,
     RG__W(rg__m_lease)},
    {"regimen_leases_taken_total", "counter", "Clinic leases this worker took (at start, from a "
     "worker that ended or from one that gave them back).", NULL, RG__S(leases_taken)},
    {"regimen_leases_released_total", "counter", "Clinic leases this worker gave back to keep "
     "its share when another worker started.", NULL, RG__S(leases_released)},
    {"regimen_workers", "gauge", "Workers on this store, as seen at the last lease check.", NULL,
     RG__S(workers)},
    {"regimen_backlog_patients", "gauge", "Due patients not yet evaluated of a clinic another "
     "worker holds, as last counted (up to limits.backlog_patients + 1; 0 for a clinic held "
     "here).", NULL, RG__W(rg__m_backlog)},
    {"regimen_backpressure_total", "counter", "Requests answered 503 with Retry-After because the "
     "clinic's backlog was over limits.backlog_patients.", NULL, RG__W(rg__m_backpressure)},
    {"regimen_wake_lateness_seconds", "histogram", "How late time-driven evaluations ran after "
     "their due moment.", NULL, RG__W(rg__m_lateness)},
    {"regimen_open_alerts", "gauge", "Open alerts, by clinic and severity.", NULL,
     RG__W(rg__m_open)},
    {"regimen_group_commits_total", "counter", "Transactions that stored POSTed events and "
     "wake-ups together, each one fsync.", NULL, RG__S(groups)},
    {"regimen_group_requests_total", "counter", "Requests stored by those group commits.", NULL,
     RG__S(group_requests)},
    {"regimen_wake_yields_total", "counter", "Evaluation jobs whose wake-up part (due patients) "
     "handed back early because requests waited for the clinic's job.", NULL,
     RG__S(wake_yields)},
    {"regimen_shared_runs_total", "counter", "Runs of a job's requested patients evaluated by "
     "an idle evaluation thread other than the job's (one clinic's burst on every core).", NULL,
     RG__S(shared_runs)},
    {"regimen_store_notices_total", "counter", "Commits by other processes (regimen ingest) "
     "that the service was told of and read.", NULL, RG__S(notices)},
    {"regimen_http_requests_total", "counter", "HTTP requests answered.", NULL,
     RG__S(http_requests)},
    {"regimen_http_connections", "gauge", "Open HTTP connections.", NULL,
     RG__S(http_connections)},
    {"regimen_http_streams", "gauge", "Open transition streams (Server-Sent Events).", NULL,
     RG__S(http_streams)},
    {"regimen_http_unauthenticated_connections", "gauge", "Open HTTP connections that have not "
     "shown a token.", NULL, RG__S(http_unauthenticated)},
    {"regimen_http_connections_refused_total", "counter", "Connections refused with 503 (every "
     "unauthenticated slot busy, or too many from one address).", NULL, RG__S(http_refused)},
    {"regimen_http_connections_evicted_total", "counter", "Silent unauthenticated connections "
     "closed to make room for a new one.", NULL, RG__S(http_evicted)},
    {"regimen_http_streams_dropped_total", "counter", "Streams closed because their client fell "
     "too far behind or stopped reading.", NULL, RG__S(http_dropped)},
    {"regimen_notifications_total", "counter", "Notification attempts of the clinics' notify "
     "policies, by outcome and receiver kind.", NULL, RG__W(rg__m_notifications)},
    {"regimen_webhook_deliveries_total", "counter", "Webhook deliveries, by result.",
     "result=\"ok\"", offsetof(rg__msnap, hook_ok), 0, NULL, RG__M_HOOKS},
    {"regimen_webhook_deliveries_total", NULL, NULL, "result=\"failed\"",
     offsetof(rg__msnap, hook_failed), 0, NULL, RG__M_HOOKS},
    {"regimen_webhook_backlog", "gauge", "Transitions not yet delivered to the webhook.", NULL,
     offsetof(rg__msnap, hook_backlog), 0, NULL, RG__M_HOOKS},
#undef RG__S
#undef RG__W
};

/* The service-wide numbers, read once. */
static void rg__metrics_snap(rg_svc *sv, rg__msnap *s)
{
    /* evaluation runs on the threads (evaluate.c): their counters, added up;
     * the loop's engine only loads protocols */
    rg_engine_stats es = sv->eval_stats;
    const rg_engine_stats *mine = rg_engine_stats_get(sv->eng);
    es.errors += mine->errors;
    es.limit_hits += mine->limit_hits;
    es.steps += mine->steps;
    int quarantined = 0; /* (the threads' engines quarantine: their hook counts) */
    pthread_mutex_lock(&sv->qmu);
    for (int i = 0; i < sv->nclinics; i++)
        quarantined += sv->clinics[i].quarantined;
    pthread_mutex_unlock(&sv->qmu);
    rg_http_stats hs;
    rg_http_stats_get(sv->http, &hs);
    rg_hcache_stats hc;
    rg_svc_pool_cache_stats(sv, &hc);
    rg_webhook_stats ws = {0};
    if (sv->hooks)
        rg_webhooks_stats(sv->hooks, &ws);
    /* round trips to a database server (PostgreSQL; 0 on SQLite), beside
     * the patients evaluated: statements per evaluated patient (issue 27) */
    uint64_t db_stmts, db_trips;
    rg_store_db_counts(&db_stmts, &db_trips);
    rg_store_wal w;
    rg_store_wal_state(sv->st, &w);
    *s = (rg__msnap){
        .cache_bytes = (long long)hc.bytes, .cache_cap = (long long)hc.cap,
        .cache_patients = hc.entries, .cache_hits = hc.hits, .cache_misses = hc.misses,
        .cache_evictions = hc.evictions, .kept_hits = hc.kept_hits,
        .kept_misses = hc.kept_misses, .eval_errors = es.errors,
        .limit_hits = es.limit_hits, .steps = es.steps, .reloads_ok = (long long)sv->reloads,
        .reloads_refused = (long long)sv->reload_failures,
        .store_errors = (long long)sv->db_errors, .quarantined = quarantined,
        .quarantines = es.quarantines, .quarantine_skips = es.quarantine_skips,
        .cpu_budget_hits = es.cpu_budget_hits, .leases_held = sv->nheld,
        .leases_taken = (long long)sv->leases_taken,
        .leases_released = (long long)sv->leases_released, .workers = sv->nworkers,
        .groups = (long long)sv->groups, .group_requests = (long long)sv->group_requests,
        .notices = (long long)sv->notices, .wake_yields = (long long)sv->wake_yields,
        .shared_runs = (long long)sv->shared_runs,
        .http_requests = (long long)hs.requests,
        .http_connections = hs.connections, .http_streams = hs.streams,
        .http_unauthenticated = hs.unauthenticated,
        .http_refused = (long long)hs.rejected_connections, .http_evicted = (long long)hs.evicted,
        .http_dropped = (long long)hs.slow_streams, .hook_ok = (long long)ws.delivered,
        .hook_failed = (long long)ws.failures, .hook_backlog = (long long)ws.backlog,
        .patients_evaluated = es.patients, .db_statements = (long long)db_stmts,
        .db_round_trips = (long long)db_trips, .ckpt_ok = (long long)w.ok,
        .ckpt_busy = (long long)w.busy, .ckpt_failed = (long long)w.failed,
        .wal_behind = w.behind, .loop_lag = sv->loop_lag,
        .wake_next = sv->wake_next == RG_TIME_NONE ? 0 : (double)sv->wake_next / 1000.0};
}

/* GET /metrics: every clinic's series (ci -1: the metrics role) or those of
 * clinic ci only (its admin), with the service's own (without a clinic).
 * Another clinic's events, alerts, protocols and lease are not an admin's
 * to see. The rows of rg__metrics, in order. */
static void rg__get_metrics(rg_svc *sv, int ci, rg_http_conn *c)
{
    rg_buf b = {0};
    rg__mctx m = {sv, &b, ci, ci < 0 ? 0 : ci, ci < 0 ? sv->nclinics : ci + 1};
    rg__msnap s;
    rg__metrics_snap(sv, &s);
    for (size_t i = 0; i < RG_COUNTOF(rg__metrics); i++) {
        const struct rg__metric *r = &rg__metrics[i];
        if (r->when == RG__M_HOOKS && !sv->hooks)
            continue;
        if (r->help)
            rg_buf_printf(&b, "# HELP %s %s\n# TYPE %s %s\n", r->name, r->help, r->name, r->type);
        if (r->write) {
            r->write(&m);
            continue;
        }
        const char *at = (const char *)&s + r->offset;
        rg_buf_printf(&b, "%s%s%s%s ", r->name, r->labels ? "{" : "", r->labels ? r->labels : "",
                      r->labels ? "}" : "");
        if (r->is_double)
            rg_buf_printf(&b, "%.6f\n", *(const double *)at);
        else
            rg_buf_printf(&b, "%lld\n", *(const long long *)at);
    }
    rg_http_respond(c, b.p ? 200 : 500, "text/plain; version=0.0.4", b.p ? b.p : "", b.len);
    rg_buf_free(&b);
}

/* /healthz: the system alerts open (docs/service.md, "Failures are
 * alerts"), one sentence each, and since when the first. */
typedef struct rg__health {
    rg_buf why;
    rg_time since;
    const char *clinic;
} rg__health;

static void rg__health_add(rg__health *h, const char *text, rg_time since)
{
    if (h->why.len > 3000)
        return; /* enough to say what is wrong */
    rg_buf_printf(&h->why, "%s%s", h->why.len ? "; " : "", text);
    if (since != RG_TIME_NONE && (h->since == RG_TIME_NONE || since < h->since))
        h->since = since;
}

static int rg__health_failing(void *ud, const char *clinic, const char *protocol,
                              const char *rule, int64_t patients, rg_time since,
                              const char *message)
{
    char text[1200], when[RG_TIME_BUFSZ];
    snprintf(text, sizeof text, "clinic %s: %s%s%s%s fails to evaluate for %lld patient%s since %s "
             "(%s: %.600s)", clinic, *rule ? "rule '" : "protocol ", *rule ? rule : protocol,
             *rule ? "' of protocol " : "", *rule ? protocol : "", (long long)patients,
             patients == 1 ? "" : "s", rg_time_format(since, when), RG_EVALUATION_FAILED,
             message);
    /* (the first line of the error: it names the file and line) */
    char *nl = strchr(text, '\n');
    if (nl)
        *nl = '\0';
    rg__health_add(ud, text, since);
    return 0;
}

static int rg__health_alert(void *ud, const rg_alert_view *a)
{
    rg__health *h = ud;
    char text[1200];
    if (!strcmp(a->rule, RG_EVALUATION_FAILED))
        return 0; /* counted now by rg__health_failing */
    snprintf(text, sizeof text, "clinic %s: %s (%s)", h->clinic, a->message, a->rule);
    rg__health_add(h, text, a->opened_at);
    return 0;
}

static void rg__health_alerts(rg_svc *sv, rg__health *h)
{
    rg_store_failing_summary(sv->st, rg__health_failing, h);
    for (int i = 0; i < sv->nclinics; i++) {
        if (sv->clinics[i].gone)
            continue;
        h->clinic = sv->clinics[i].name;
        rg_store_each_alert(sv->st, h->clinic, "", "open", NULL, 20, rg__health_alert, h);
    }
}

void rg_svc_handle(void *ud, rg_http_conn *c, const rg_http_req *req)
{
    rg_svc *sv = ud;
    int get = !strcmp(req->method, "GET"), post = !strcmp(req->method, "POST");
    if (sv->stopping) {
        rg__error(c, 503, "shutting down");
        return;
    }
    if (get && !strcmp(req->path, "/healthz")) {
        rg_time since;
        const char *fault = rg_store_fault(sv->st, &since);
        /* degraded: alive and reading, but the last write failed (until one
         * succeeds), the WAL's checkpoints are in trouble (until one gets
         * through), or a clinic has a system alert open */
        rg__health h = {.since = RG_TIME_NONE};
        if (!fault) {
            rg_store_wal w; /* (the WAL's checkpoints in trouble: sqlite.c) */
            rg_store_wal_state(sv->st, &w);
            if (w.why[0])
                rg__health_add(&h, w.why, w.since);
            rg__health_alerts(sv, &h);
        }
        if (!fault && h.why.len)
            fault = h.why.p, since = h.since;
        rg_svc_reply_json(c, 200, fault ? json_pack("{s:s,s:s,s:o}", "status", "degraded", "reason",
                                                 fault, "since", rg_time_json(since))
                                     : json_pack("{s:s}", "status", "ok"));
        rg_buf_free(&h.why);
        return;
    }
    if (get && rg_svc_www(c, req->path))
        return;
    char qmsg[200];
    if (!strncmp(req->path, "/v1/", 4) && rg__query_check(req->query, qmsg, sizeof qmsg)) {
        rg__error(c, 400, qmsg);
        return;
    }
    if (rg_svc_session_route(sv, c, req)) /* sign in and out */
        return;
    /* an EventSource of an API client has no Authorization header: a
     * one-time ticket instead (never logged, the path below is without its
     * query); the worklist's runs on its session cookie */
    char ticket[RG_SVC_QUERY_MAX + 1], whotext[200];
    int by_ticket = get && !req->authorization && !strcmp(req->path, "/v1/transitions/stream") &&
                    rg_svc_query(req->query, "ticket", ticket, sizeof ticket);
    rg_svc_who who;
    const char *why = NULL;
    int status = 0;
    if (by_ticket) {
        if (rg_svc_ticket_use(sv, ticket, &who) < 0 || !rg_svc_who_valid(sv, &who)) {
            status = 401;
            why = "the stream ticket is unknown, used or expired: POST /v1/stream-tickets for a "
                  "new one";
        }
    } else {
        status = rg_svc_authenticate(sv, req, &who, &why);
    }
    if (status) {
        rg_log("warn", "%s %s %s from %s: %s", status == 401 ? "unauthorized" : "refused",
               req->method, req->path, req->peer, why);
        rg__error(c, status, why);
        return;
    }
    /* the connection leaves the unauthenticated ones (http.h) */
    if (!rg_http_authenticated(c)) {
        rg__error(c, 503, "too many connections; try again later");
        return;
    }
    int ci = who.clinic; /* -1: a key of every clinic (the metrics role) */
    const rg_svc_who *w = &who;
    /* the audit trail: who asked what of which patients (audit_api.c), as
     * the signed-in user or the key, with its role */
    if (ci >= 0) {
        char aw[200];
        /* a legacy clinic token names nobody: the audit keeps a digest of it
         * (audit_api.c), so that two tokens can be told apart */
        const char *whom = w->kind != RG_WHO_TOKEN ? rg_svc_who_text(w, aw, sizeof aw)
                           : by_ticket             ? "clinic token (stream ticket)"
                                                   : NULL;
        rg_svc_audit_begin(sv, c, req, ci, whom, rg_svc_role_names[w->role]);
    }
    const char *p = req->path;
    size_t pl = strlen(p);
#define RG__NEED(bits, what)                                                                       \
    do {                                                                                           \
        if (!rg_svc_allowed(sv, c, w, bits, what))                                                 \
            return;                                                                                \
    } while (0)
    if (post && !strcmp(p, "/v1/stream-tickets")) {
        RG__NEED(RG_NEED_READ, "open the transition stream");
        rg_svc_post_ticket(sv, ci, c, w);
    } else if (get && !strncmp(p, "/v1/patients/", 13) && pl > 13 + 9 &&
             !strcmp(p + pl - 9, "/timeline")) {
        RG__NEED(RG_NEED_READ, "read patients");
        char patient[RG_EVENT_MAX_ID + 1];
        if (pl - 13 - 9 >= sizeof patient) {
            rg__error(c, 404, "no patient with this id in your clinic");
            return;
        }
        snprintf(patient, sizeof patient, "%.*s", (int)(pl - 13 - 9), p + 13);
        rg_svc_get_timeline(sv, ci, c, patient);
    } else if (post && !strcmp(p, "/v1/events")) {
        RG__NEED(RG_NEED_INGEST, "post events");
        rg__post_events(sv, ci, c, req, w);
    } else if (post && !strcmp(p, "/v1/fhir")) {
        RG__NEED(RG_NEED_INGEST, "post FHIR");
        rg__post_fhir(sv, ci, c, req, w);
    } else if (get && !strcmp(p, "/v1/alerts")) {
        RG__NEED(RG_NEED_READ, "read alerts");
        rg__get_alerts(sv, ci, c, req);
    } else if (get && !strcmp(p, "/v1/transitions")) {
        RG__NEED(RG_NEED_READ, "read transitions");
        rg__get_transitions(sv, ci, c, req);
    } else if (get && !strcmp(p, "/v1/transitions/stream")) {
        RG__NEED(RG_NEED_READ, "open the transition stream");
        rg__get_stream(sv, ci, c, req, w);
    } else if (get && !strcmp(p, "/v1/audit")) {
        RG__NEED(RG_NEED_AUDIT, "read the audit trail");
        rg_svc_get_audit(sv, ci, c, req);
    } else if (get && !strcmp(p, "/v1/reports/compliance")) {
        RG__NEED(RG_NEED_READ, "read reports");
        rg_svc_get_compliance(sv, ci, c, req);
    } else if (get && !strcmp(p, "/metrics")) {
        RG__NEED(RG_NEED_METRICS, "read metrics");
        rg__get_metrics(sv, ci, c);
    } else if (rg_svc_protocols_route(sv, ci, c, req, w)) { /* protocols_api.c */
    } else if (post && !strcmp(p, "/v1/admin/reload")) {
        RG__NEED(RG_NEED_ADMIN, "reload the configuration");
        char err[4096];
        int rc = rg_svc_reload(sv, rg_svc_who_text(w, whotext, sizeof whotext),
                               rg_svc_role_names[w->role], err, sizeof err);
        rg_svc_reply_json(c, rc ? 400 : 200,
                          rc ? json_pack("{s:s,s:s}", "configuration", "refused", "error", err)
                             : json_pack("{s:s}", "configuration", "reloaded"));
    } else if (!strncmp(p, "/v1/alerts/", 11)) {
        char key[64];
        const char *rest = p + 11, *slash = strchr(rest, '/');
        size_t kl = slash ? (size_t)(slash - rest) : strlen(rest);
        if (kl == 0 || kl >= sizeof key) {
            rg__error(c, 404, "no such alert");
            return;
        }
        snprintf(key, sizeof key, "%.*s", (int)kl, rest);
        int act = post && slash && (!strcmp(slash, "/ack") || !strcmp(slash, "/snooze"));
        if (act)
            RG__NEED(RG_NEED_ACT, !strcmp(slash, "/ack") ? "acknowledge alerts" : "snooze alerts");
        else if (get)
            RG__NEED(RG_NEED_READ, "read alerts");
        if (get && !slash)
            rg__get_alert(sv, ci, c, key);
        else if (get && slash && !strcmp(slash, "/explain"))
            rg_svc_get_explain(sv, ci, c, key);
        else if (post && slash && !strcmp(slash, "/ack"))
            rg__alert_action(sv, ci, c, req, key, "ack", w);
        else if (post && slash && !strcmp(slash, "/snooze"))
            rg__alert_action(sv, ci, c, req, key, "snooze", w);
        else
            rg__error(c, get || post ? 404 : 405, "no such endpoint");
#undef RG__NEED
    } else {
        rg__error(c, 404, "no such endpoint");
    }
}

