/*
 * serve.c - the service (see serve.h): its loop. The HTTP endpoints are in
 * api.c, the configuration file in config.c, what they share in service.h.
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
#include "service.h"

#include "engine.h"
#include "feed.h"
#include "gate.h"
#include "holder.h"
#include "http.h"
#include "webhook.h"
#include "ingest.h"

#include <jansson.h>
#include <uv.h>

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>


/* ---- pushing transitions ---------------------------------------------------------- */

/* For webhook bodies: the clinic's zone as its protocols declare it now. */
static const rg_zone *rg__zone_of(void *ud, const char *clinic)
{
    rg_svc *sv = ud;
    return rg_engine_zone(sv->eng, clinic);
}

typedef struct rg__push {
    rg_svc *sv;
    int clinic;
} rg__push;

static int rg__push_one(void *ud, const rg_transition *t)
{
    rg__push *p = ud;
    rg_svc *sv = p->sv;
    rg_svc_clinic *c = &sv->clinics[p->clinic];
    c->last_cseq = t->cseq;
    if (t->open != RG_TRANSITION_RERAISED) /* (a re-raise neither opens nor resolves) */
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
        rg_svc_stream *s = &sv->streams[i];
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
static void rg__publish(rg_svc *sv)
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


/* A snooze that expired on an open alert: recorded as staff's history shows
 * it (an action) and as a transition of its own, state "reraised", with the
 * alert's rule, severity and message: in the feed with the clinic's next
 * sequence number, then on the stream and the webhook like any other
 * (rg__publish, after the commit). */
typedef struct rg__raised {
    const char *key;
    int64_t id;
    rg_time due;
    char *s[7]; /* protocol, version, rule, severity, message, params, evidence */
} rg__raised;

static int rg__raised_find(void *ud, int64_t id, const rg_transition *t)
{
    rg__raised *r = ud;
    if (r->id || strcmp(t->key, r->key))
        return 0;
    const char *src[7] = {t->protocol, t->version, t->rule, t->severity, t->message, t->params,
                          t->evidence};
    r->id = id;
    r->due = t->due;
    for (int i = 0; i < 7; i++)
        if (!(r->s[i] = strdup(src[i] ? src[i] : "")))
            return RG_ENOMEM;
    return 0;
}

static int rg__reraise(void *ud, const char *clinic, const char *key, const char *patient)
{
    rg_svc *sv = ud;
    rg_time now = rg_now();
    rg__raised r = {.key = key};
    int rc = rg_store_alert_action(sv->st, clinic, key, "reraise", "regimen", "snooze expired",
                                   RG_TIME_NONE, now);
    if (rc == RG_OK)
        rc = rg_store_each_open_alert(sv->st, clinic, patient, rg__raised_find, &r);
    if (rc == RG_OK && r.id) {
        int known = 0; /* (a clinic of the store this service does not serve: no hours) */
        for (int i = 0; i < sv->nclinics && !known; i++)
            known = !strcmp(sv->clinics[i].name, clinic);
        rg_clinic *c = known ? rg_engine_clinic(sv->eng, clinic) : NULL;
        rg_transition t = {
            .at = now, .due = r.due, .open = RG_TRANSITION_RERAISED, .clinic = clinic,
            .patient = patient, .key = key, .protocol = r.s[0], .version = r.s[1],
            .rule = r.s[2], .severity = r.s[3], .message = r.s[4], .params = r.s[5],
            .evidence = r.s[6],
            .notify_at = c ? rg_calendar_notify_at(&c->cal, r.s[3], now) : now,
        };
        rc = rg_store_transition(sv->st, &t, &r.id);
    }
    if (rc == RG_OK)
        rg_log("info", "alert %s of clinic %s re-raised: snooze expired", key, clinic);
    for (int i = 0; i < 7; i++)
        free(r.s[i]);
    return rc;
}

/* Advances everyone who is due, re-raises expired snoozes, publishes. */
static void rg__catch_up(rg_svc *sv, const char *why)
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
        if (rg_store_each_due_snooze(sv->st, now, rg__reraise, sv, &count) != RG_OK ||
            rg_store_commit(sv->st) != RG_OK)
            rg_store_rollback(sv->st);
    }
    rg__publish(sv);
}

/* The same as a paged wake-up pass (rg__flush): the patients due are
 * evaluated in slices of RG_WAKE_SLICE_MS, the loop answering between them,
 * so a reload or a start-up after downtime never holds it. */
static void rg__catch_up_paced(rg_svc *sv, const char *why)
{
    rg_log("info", "%s: evaluating the patients due, in slices", why);
    sv->wake_pending = 1;
    rg_svc_flush_soon(sv);
}

static void rg__on_wake(uv_timer_t *t)
{
    rg_svc *sv = t->data;
    rg_time now = rg_now();
    if (sv->armed_for != RG_TIME_NONE && now >= sv->armed_for) {
        double late = (double)(now - sv->armed_for) / 1000.0;
        sv->lateness_sum += late;
        sv->lateness_count++;
        if (late > sv->lateness_max)
            sv->lateness_max = late;
        for (int i = 0; i < 6; i++)
            if (late <= rg_svc_late_bounds[i])
                sv->lateness_buckets[i]++;
        sv->wakeups++;
        /* evaluated in the group commit of this loop iteration, which re-arms */
        sv->wake_pending = 1;
        rg_svc_flush_soon(sv);
        return;
    }
    rg_svc_arm(sv);
}

/* One timer at the earliest wake-up or snooze expiry. The wait is measured on
 * the monotonic clock but capped, so a wall clock that jumps is re-read; a
 * step of the wall clock re-arms it at once (rg__on_lag). */
void rg_svc_arm(rg_svc *sv)
{
    rg_time next = RG_TIME_NONE, snooze = RG_TIME_NONE;
    if (sv->stopping || sv->wake_pending) /* a wake-up pass re-arms when it is done */
        return;
    /* (a notice that comes in while these read is seen by rg__drain_notices
     * before the loop sleeps, which arms again) */
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
static int rg__load_clinics(rg_svc *sv, int initial);

static void rg__on_notice(uv_signal_t *h, int sig)
{
    rg_svc *sv = h->data;
    int64_t v = 0;
    (void)sig;
    if (rg_store_data_version(sv->st, &v) == RG_OK && v == sv->data_version)
        return;
    sv->data_version = v;
    sv->notices++;
    if (rg_svc_versions_take(sv)) /* a protocol version activated (protocols_live.c) */
        rg__load_clinics(sv, 0);
    rg_svc_arm(sv);
}

/* Loop lag: how late a 1 s timer fires. */
static void rg__on_lag(uv_timer_t *t)
{
    rg_svc *sv = t->data;
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
        rg_svc_arm(sv);
    }
    sv->lag_last = now;
    sv->lag_wall = wall;
    if (rg_svc_versions_take(sv)) /* an activation --at a time that has come */
        rg__load_clinics(sv, 0);
}

/* ---- many workers (PostgreSQL) ------------------------------------------------------------ */

/* Webhook delivery of clinic i, by the worker holding its lease only; it
 * resumes from the cursor in the store, with the same Idempotency-Key as a
 * delivery the previous owner had in flight. */
static int rg__hook_add(rg_svc *sv, int i)
{
    if (!sv->clinics[i].webhook || !sv->clinics[i].held)
        return RG_OK;
    if (!sv->hooks && rg_webhooks_new(&sv->hooks, &sv->loop, sv->st, rg__zone_of, sv))
        return RG_ENOMEM;
    return rg_webhooks_add(sv->hooks, sv->clinics[i].name, sv->clinics[i].webhook,
                           sv->clinics[i].hook_keys, sv->clinics[i].nhook_keys);
}

/* How many clinic leases this worker keeps: its fair share of the clinics,
 * ceil(clinics / workers), so a worker that starts beside others gets its
 * part and the survivors of one that ended take over its part. SQLite (one
 * service): all of them. */
static int rg__share(rg_svc *sv)
{
    int n = 1;
    if (rg_store_workers(sv->st, &n) || n < 1)
        n = 1; /* (unknown: any lease nobody holds is still taken) */
    sv->nworkers = n;
    return (sv->nclinics + n - 1) / n;
}

/* Tries the lease of the clinics this worker does not hold, up to its share
 * (all at start when it is alone). SQLite, or a lease newly taken: the clinic
 * is evaluated here from now on, first whatever fell due while nobody held
 * it (a worker that ended, or one that gave the lease back). */
static int rg__take_leases(rg_svc *sv, int share)
{
    int taken = 0;
    for (int i = 0; i < sv->nclinics && sv->nheld < share; i++) {
        int held = 0;
        if (sv->clinics[i].held || rg_store_lease(sv->st, sv->clinics[i].name, &held) || !held)
            continue;
        sv->clinics[i].held = 1;
        sv->nheld++;
        sv->leases_taken++;
        taken++;
        if (sv->notice_fd >= 0)
            rg_log("info", "lease taken: clinic %s is evaluated by this worker", sv->clinics[i].name);
        if (rg__hook_add(sv, i))
            rg_log("error", "clinic %s: cannot start webhook delivery", sv->clinics[i].name);
    }
    return taken;
}

/* Gives back the leases over this worker's share (the last clinics first),
 * between two loop iterations: nothing of theirs is in flight but a webhook
 * delivery, which the next owner sends again under the same key. Requests
 * still queued for them are only stored (rg__store_events), as for any
 * clinic another worker holds. A lease that cannot be given back is still
 * held by the session: RG_EDB, and the worker stops. */
static int rg__give_back(rg_svc *sv, int share)
{
    for (int i = sv->nclinics - 1; i >= 0 && sv->nheld > share; i--) {
        if (!sv->clinics[i].held)
            continue;
        if (sv->hooks)
            rg_webhooks_drop(sv->hooks, sv->clinics[i].name);
        sv->clinics[i].held = 0;
        sv->nheld--;
        if (rg_store_unlease(sv->st, sv->clinics[i].name))
            return RG_EDB;
        sv->leases_released++;
        rg_log("info", "lease given back: clinic %s, for a worker with fewer (%d workers, at most %d "
               "clinic%s each)", sv->clinics[i].name, sv->nworkers, share, share == 1 ? "" : "s");
    }
    return RG_OK;
}

static void rg__on_stop(uv_signal_t *h, int sig);

/* A worker whose database session ended has lost its leases, and another
 * worker may hold them already: it stops (exit 2) rather than evaluate or
 * send webhooks without them; a supervisor starts it again (crash-only, as
 * after kill -9). */
static void rg__on_lease_tick(uv_timer_t *t)
{
    rg_svc *sv = t->data;
    int held;
    if (sv->stopping)
        return;
    /* (asking for a lease also tells a lost session; one it takes here is
     * marked held by rg__take_leases below) */
    if (sv->nclinics && rg_store_lease(sv->st, sv->clinics[0].name, &held) == RG_EIO) {
        rg_log("error", "%s: stopping", rg_store_errmsg(sv->st));
        sv->exit_code = 2;
        rg__on_stop(&sv->sigterm, 0);
        return;
    }
    int share = rg__share(sv), before = sv->nheld;
    if (rg__give_back(sv, share)) {
        rg_log("error", "cannot give a lease back (%s): stopping, which ends them all",
               rg_store_errmsg(sv->st));
        sv->exit_code = 2;
        rg__on_stop(&sv->sigterm, 0);
        return;
    }
    if (sv->nheld < before)
        rg_svc_arm(sv); /* (armed for a clinic no longer ours, maybe) */
    if (sv->nheld >= share || !rg__take_leases(sv, share))
        return;
    rg__catch_up(sv, "lease taken");
    rg_svc_arm(sv);
}

static void rg__on_notice_again(uv_idle_t *h) { (void)h; }

/* Another worker (or regimen ingest) wrote: new events to evaluate if the
 * clinic is ours, new transitions for the streams in any case. Run before
 * the loop sleeps, every iteration: libpq keeps the notices that arrive
 * while one of this worker's own statements runs (a request's, the lease
 * tick's, rg__publish's), and the socket then has nothing left to wake the
 * poll; read only when the poll fires, such a notice would wait for the
 * next write (over a second in the three-worker benchmark). Reading costs
 * one non-blocking recv. After a notice the loop does not sleep (the idle
 * handle) until a pass finds none: what publishing and arming ran may have
 * let in another. */
static void rg__drain_notices(uv_prepare_t *h)
{
    rg_svc *sv = h->data;
    int n = sv->stopping ? 0 : rg_store_notices(sv->st);
    if (n < 0) /* the session may have ended: the lease check stops the worker then */
        rg__on_lease_tick(&sv->lease_tick);
    if (n <= 0) {
        uv_idle_stop(&sv->notice_again);
        return;
    }
    sv->notices++;
    rg__publish(sv);
    rg_svc_arm(sv);
    uv_idle_start(&sv->notice_again, rg__on_notice_again);
}

/* The poll only wakes the loop; rg__drain_notices reads what came. */
static void rg__on_pg_notice(uv_poll_t *p, int status, int events)
{
    (void)p, (void)status, (void)events;
}

/* ---- handlers -------------------------------------------------------------------------- */

const char *const rg_svc_outcomes[5] = {"stored", "duplicate", "conflict", "rejected",
                                        "corrected"};
const double rg_svc_late_bounds[6] = {0.001, 0.005, 0.01, 0.05, 0.25, 1.0};

/* Validates and stores one request's events and advances the patients they
 * concern (the same rg_engine_advance as simulate), inside the group's
 * transaction. Its outcomes are answered only after the commit. The valid
 * events go to the store in one call (rg_store_put_events: one round trip
 * to PostgreSQL), with the outcomes n calls in order would give. */
static int rg__store_events(rg_svc *sv, rg_svc_pending *pr)
{
    rg_svc_clinic *clinic = &sv->clinics[pr->clinic];
    size_t n = json_array_size(pr->items), i;
    struct item {
        rg_event ev;
        int ok;     /* a valid event of this clinic, put in the batch */
        rg_put put; /* its outcome */
        char field[RG_FIELD_MAX], why[512]; /* of a refusal, or of a conflict */
    } *it = calloc(n + 1, sizeof *it);
    const rg_event **valid = calloc(n + 1, sizeof *valid);
    rg_put *res = calloc(n + 1, sizeof *res);
    /* patients to re-evaluate: distinct, in order */
    char (*patients)[RG_EVENT_MAX_ID + 1] = calloc(n + 1, sizeof *patients);
    int npatients = 0, nvalid = 0;
    int rc = it && valid && res && patients && (pr->results = json_array()) ? RG_OK : RG_ENOMEM;
    json_t *item;
    memset(pr->counts, 0, sizeof pr->counts);
    pr->future = 0;
    json_array_foreach(pr->items, i, item) {
        if (rc)
            break;
        struct item *t = &it[i];
        int vrc = rg_event_from_json(&t->ev, item, t->field, t->why, sizeof t->why);
        if (vrc == RG_OK && strcmp(t->ev.clinic, clinic->name) != 0) {
            snprintf(t->field, sizeof t->field, "clinic");
            snprintf(t->why, sizeof t->why, "this token may only send events of clinic '%s'",
                     clinic->name);
            rg_event_clear(&t->ev);
            vrc = RG_EINVAL;
        }
        if (vrc == RG_OK) {
            t->ok = 1;
            valid[nvalid++] = &t->ev;
        } else if (vrc != RG_EINVAL) {
            rc = vrc;
        }
    }
    /* (on an error the outcomes are unset; the group rolls back and answers 503) */
    if (!rc && nvalid)
        rc = rg_store_put_events(sv->st, valid, nvalid, rg_now(), res, NULL);
    for (size_t k = 0, j = 0; !rc && k < n; k++) /* (res is in the items' order) */
        if (it[k].ok)
            it[k].put = res[j++];
    json_array_foreach(pr->items, i, item) {
        if (rc)
            break;
        struct item *t = &it[i];
        int outcome = t->ok ? (int)t->put : 3;
        json_t *r = json_object();
        json_object_set(r, "id", json_is_object(item) && json_object_get(item, "id")
                                     ? json_object_get(item, "id") : json_null());
        if (outcome == RG_PUT_STORED || outcome == RG_PUT_CORRECTED) {
            int seen = 0;
            for (int k = 0; k < npatients && !seen; k++)
                seen = !strcmp(patients[k], t->ev.patient);
            if (!seen)
                snprintf(patients[npatients++], sizeof patients[0], "%s", t->ev.patient);
        }
        if (outcome == RG_PUT_CONFLICT &&
            (rc = rg_ingest_conflict_why(sv->st, &t->ev, 1, t->field, t->why, sizeof t->why)))
            break;
        if (outcome == RG_PUT_CONFLICT || outcome == 3) {
            char *raw = json_dumps(item, JSON_COMPACT | JSON_ENCODE_ANY);
            rc = rg_store_reject(sv->st, pr->source, (long)i + 1, t->field, t->why,
                                 raw ? raw : "", raw ? strlen(raw) : 0);
            free(raw);
            json_object_set_new(r, "field", json_string(t->field));
            json_object_set_new(r, "reason", json_string(t->why));
        }
        json_object_set_new(r, "status", json_string(rg_svc_outcomes[outcome]));
        char warn[512]; /* stored, but dated ahead of the clock: flagged */
        if ((outcome == RG_PUT_STORED || outcome == RG_PUT_CORRECTED) &&
            rg_ingest_ahead(&t->ev, rg_now(), sv->future_skew, warn, sizeof warn)) {
            json_object_set_new(r, "future", json_true());
            json_object_set_new(r, "warning", json_string(warn));
            pr->future++;
        }
        json_array_append_new(pr->results, r);
        pr->counts[outcome]++;
    }
    for (size_t k = 0; it && k < n; k++)
        if (it[k].ok)
            rg_event_clear(&it[k].ev);
    free(it);
    free(valid);
    free(res);
    /* resources refused before they became events are kept too */
    for (size_t k = 0; pr->fhir && k < pr->fhir->n && !rc; k++) {
        const rg_fhir_entry *e = &pr->fhir->v[k];
        if (e->kind != RG_FHIR_REJECTED)
            continue;
        char *raw = e->resource ? json_dumps(e->resource, JSON_COMPACT) : NULL;
        rc = rg_store_reject(sv->st, pr->source, e->index, e->location, e->reason,
                             raw ? raw : "", raw ? strlen(raw) : 0);
        free(raw);
        pr->counts[3]++;
    }
    rg_time now = rg_now();
    /* a clinic leased by another worker: stored only; its NOTIFY wakes the owner */
    for (int k = 0; k < npatients && !rc && clinic->held; k++)
        rc = rg_engine_advance(sv->eng, clinic->name, patients[k], now);
    free(patients);
    return rc;
}

/* The reply to POST /v1/fhir: one report per entry, its events' outcomes
 * taken in order from the group's results. */
static json_t *rg__fhir_reply(rg_svc_pending *pr)
{
    json_t *entries = json_array();
    size_t next = 0, unmapped = 0, context = 0;
    for (size_t k = 0; k < pr->fhir->n; k++) {
        const rg_fhir_entry *e = &pr->fhir->v[k];
        json_t *mine = NULL;
        if (e->kind == RG_FHIR_EVENTS) {
            mine = json_array();
            for (size_t j = 0; j < json_array_size(e->events); j++)
                json_array_append(mine, json_array_get(pr->results, next++));
        }
        unmapped += e->kind == RG_FHIR_UNMAPPED;
        context += e->kind == RG_FHIR_CONTEXT;
        json_array_append_new(entries, rg_fhir_entry_json(pr->fhir, e, mine));
        json_decref(mine);
    }
    return json_pack("{s:o,s:I,s:I,s:I,s:I,s:I,s:I,s:I}", "entries", entries, "stored",
                     (json_int_t)pr->counts[0], "duplicates", (json_int_t)pr->counts[1],
                     "conflicts", (json_int_t)pr->counts[2], "rejected",
                     (json_int_t)pr->counts[3], "unmapped", (json_int_t)unmapped, "context",
                     (json_int_t)context, "corrected", (json_int_t)pr->counts[4]);
}

static void rg__fhir_done(rg_svc_pending *pr)
{
    if (pr->fhir) {
        rg_fhir_free(pr->fhir);
        free(pr->fhir);
        pr->fhir = NULL;
    }
}

/* Answers a request once its group's commit is done (ok) or failed. The
 * reply goes last: answering may hand a pipelined request of the same
 * connection to rg_svc_handle, which may grow sv->pending (and move pr). */
static void rg__answer(rg_svc *sv, rg_svc_pending *pr, int ok)
{
    rg_svc_clinic *clinic = &sv->clinics[pr->clinic];
    uint64_t *counts = pr->counts;
    json_decref(pr->items);
    if (!ok) {
        json_decref(pr->results);
        rg__fhir_done(pr);
        rg_svc_unavailable(sv, pr->conn, "the events could not be stored; nothing was "
                                      "acknowledged, send them again");
        return;
    }
    for (int k = 0; k < 5; k++)
        clinic->events[k] += counts[k];
    clinic->future += pr->future;
    rg_log("info", "clinic %s: %llu stored, %llu corrected, %llu duplicate, %llu conflict, "
           "%llu rejected from %s", clinic->name, (unsigned long long)counts[0],
           (unsigned long long)counts[4], (unsigned long long)counts[1],
           (unsigned long long)counts[2], (unsigned long long)counts[3], pr->source);
    json_t *reply;
    if (pr->fhir) {
        reply = rg__fhir_reply(pr);
        json_decref(pr->results);
        rg__fhir_done(pr);
    } else {
        reply = json_pack("{s:o,s:I,s:I,s:I,s:I,s:I}", "results", pr->results, "stored",
                          (json_int_t)counts[0], "corrected", (json_int_t)counts[4],
                          "duplicates", (json_int_t)counts[1], "conflicts",
                          (json_int_t)counts[2], "rejected", (json_int_t)counts[3]);
    }
    rg_svc_reply_json(pr->conn, 200, reply);
}

static int rg__due_add(void *ud, const char *clinic, const char *patient)
{
    rg_svc *sv = ud;
    snprintf(sv->due[sv->ndue][0], sizeof sv->due[0][0], "%s", clinic);
    snprintf(sv->due[sv->ndue][1], sizeof sv->due[0][1], "%s", patient);
    sv->ndue++;
    return 0;
}

/* The wake-up part of a group: the earliest due patients (a page of them),
 * advanced to now by the same rg_engine_advance as simulate, which moves
 * their next wake-up past now, and the snoozes that expired. */
static int rg__wake_page(rg_svc *sv, rg_time now, int *more)
{
    sv->ndue = 0;
    int rc = rg_store_due_patients(sv->st, now, RG_WAKE_PAGE, rg__due_add, sv);
    if (rc > 0)
        rc = RG_OK;
    /* a slice of at most RG_WAKE_SLICE_MS (give or take one patient): the
     * rest stays due and is taken in the next loop iteration */
    int64_t t0 = rg_monotonic_ms();
    *more = sv->ndue == RG_WAKE_PAGE;
    for (int i = 0; i < sv->ndue && !rc; i++) {
        rc = rg_engine_advance(sv->eng, sv->due[i][0], sv->due[i][1], now);
        if (i + 1 < sv->ndue && rg_monotonic_ms() - t0 >= RG_WAKE_SLICE_MS) {
            sv->ndue = i + 1;
            *more = 1;
        }
    }
    if (!rc)
        rc = rg_store_each_due_snooze(sv->st, now, rg__reraise, sv, NULL);
    return rc;
}

/* One group commit: a page of the wake-up pass (when `wake`) and the queued
 * requests, up to RG_GROUP_EVENTS events, in one transaction. They are
 * answered, and the transitions published, only after the commit. */
static void rg__group(rg_svc *sv, int wake)
{
    int take = 0, rc, more = 0;
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
        rc = rg__wake_page(sv, now, &more);
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
    if (wake) {
        sv->wake_failed = rc != RG_OK;
        sv->wake_done += rc ? 0 : sv->ndue;
        if (rc || !more) { /* else more may be due: the next iteration goes on */
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
static void rg__flush(rg_svc *sv)
{
    size_t budget = RG_WAKE_PAGE;
    for (int i = 0; i < sv->npending; i++)
        budget += json_array_size(sv->pending[i].items);
    int64_t t0 = rg_monotonic_ms();
    for (;;) {
        /* wake-up work in slices: past RG_WAKE_SLICE_MS the loop polls again */
        int wake = sv->wake_pending && budget > 0 && rg_monotonic_ms() - t0 < RG_WAKE_SLICE_MS;
        if (!wake && sv->npending == 0)
            break;
        rg__group(sv, wake);
        if (wake)
            budget = (size_t)sv->ndue < budget ? budget - (size_t)sv->ndue : 0;
    }
    if (!sv->wake_pending) {
        uv_check_stop(&sv->flush_check);
        uv_idle_stop(&sv->flush_idle);
        rg_svc_arm(sv);
    }
}

static void rg__on_flush_check(uv_check_t *h) { rg__flush(h->data); }
static void rg__on_flush_idle(uv_idle_t *h) { (void)h; }

void rg_svc_flush_soon(rg_svc *sv)
{
    uv_check_start(&sv->flush_check, rg__on_flush_check);
    uv_idle_start(&sv->flush_idle, rg__on_flush_idle);
}

/* ---- reload and shutdown ------------------------------------------------------------------- */

static void rg__quarantine_end_all(rg_svc *sv, int ci);

/* A refused reload is a system alert of the clinic's, regimen.reload-refused
 * (why: opened with it), resolved by the next load that goes live (why NULL). */
static void rg__refusal_alert(rg_svc *sv, int i, const char *why)
{
    char msg[2000];
    if (why)
        snprintf(msg, sizeof msg, "protocols in %s refused, the previous version keeps running: "
                 "%.1800s", sv->clinics[i].dir, why);
    else
        snprintf(msg, sizeof msg, "protocols in %s went live", sv->clinics[i].dir);
    if (rg_store_begin(sv->st) != RG_OK)
        return;
    if (rg_engine_system_alert(sv->st, sv->clinics[i].name, RG_RELOAD_REFUSED, "", "", "",
                               why != NULL, rg_now(), msg) != RG_OK ||
        rg_store_commit(sv->st) != RG_OK) {
        rg_store_rollback(sv->st);
        rg_log("error", "clinic %s: the reload's alert could not be stored: %s",
               sv->clinics[i].name, rg_store_errmsg(sv->st));
    }
}

/* Loads (or reloads) every clinic; a clinic whose new protocols fail keeps
 * its old ones. Clinics with changed protocols get their patients
 * re-evaluated now. Returns the number of clinics that failed. */
static int rg__load_clinics(rg_svc *sv, int initial)
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
        /* a reload is a deployment: what changed goes live only when it
         * passes the gate (loading and its own scenario tests) */
        const char *shipped, *dir; /* the directory, or its active version's (approval) */
        rg_svc_clinic_source(sv, i, &dir, &shipped);
        uint64_t fp = rg_clinic_fingerprint(dir, shipped);
        int gated = initial || fp == sv->clinics[i].live_fp
                        ? RG_OK
                        : rg_clinic_gate(name, dir, shipped, &sv->limits, err, sizeof err);
        if (gated || rg_engine_set_clinic_from(sv->eng, name, dir, shipped, NULL, err,
                                               sizeof err)) {
            failed++;
            if (!initial)
                sv->reload_failures++;
            rg_log("error", "clinic %s: protocols %s: %s%s", name, initial ? "not loaded" : "refused",
                   err, initial ? "" : " (the previous version keeps running)");
            sv->clinics[i].refused = 1;
            if (!initial)
                rg__refusal_alert(sv, i, err);
            continue;
        }
        sv->clinics[i].live_fp = fp;
        if (initial || sv->clinics[i].refused) /* (at start: one from before may be open) */
            rg__refusal_alert(sv, i, NULL);
        rg__quarantine_end_all(sv, i); /* new protocols (or a restart): none is quarantined */
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
        /* failing rules are evaluated again at start: whatever changed
         * while the service was down may have fixed them */
        if (initial && rg_store_begin(sv->st) == RG_OK) {
            if (rg_store_wake_failing(sv->st, name, rg_now()) || rg_store_commit(sv->st))
                rg_store_rollback(sv->st);
        }
        /* a new version in force is re-evaluated even when only its
         * parameters changed (protocols_live.c) */
        int took = sv->clinics[i].version_new;
        sv->clinics[i].version_new = 0;
        if (initial || took || strcmp(old_hashes, new_hashes) != 0) {
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
        rg__catch_up_paced(sv, "reload");
    else if (!initial)
        rg__publish(sv); /* a refusal alerted, or resolved */
    rg_svc_arm(sv);
    return failed;
}

static void rg__rewatch(rg_svc *sv);

static void rg__on_reload_delay(uv_timer_t *t)
{
    rg_svc *sv = t->data;
    rg_log("info", "protocol files changed: reloading");
    rg__rewatch(sv); /* first: a file saved while the reload runs (its gate) reloads again */
    rg_svc_audit_note(sv, "protocol files", "system", "*", "reload (files changed)", "reloaded");
    rg__load_clinics(sv, 0);
}

static void rg__on_fs(uv_fs_event_t *h, const char *filename, int events, int status)
{
    rg_svc *sv = h->data;
    (void)events;
    if (status < 0 || sv->stopping || sv->approval) /* approval: versions, not files */
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
static void rg__rewatch(rg_svc *sv)
{
    for (int i = 0; i < sv->nwatch && !sv->stopping; i++) {
        uv_fs_event_stop(&sv->watch[i]);
        uv_fs_event_start(&sv->watch[i], rg__on_fs, sv->watched[i], 0);
    }
}

int rg_svc_reload(rg_svc *sv, const char *by, char *err, size_t errlen)
{
    rg_log("info", "%s: reloading the configuration and the protocols", by);
    if (sv->tls) { /* the certificate and key too: new connections use them */
        char terr[1024];
        if (rg_tls_reload(sv->tls, terr, sizeof terr))
            rg_log("error", "%s: %s; the TLS certificate in use stays", by, terr);
        else
            rg_log("info", "%s: TLS certificate %s reloaded", by, sv->tls_cert);
    }
    int rc = rg_svc_reload_config(sv, by, err, errlen); /* users, keys, roles, sessions */
    rg__rewatch(sv); /* first: a file saved while the reload runs (its gate) reloads again */
    rg__load_clinics(sv, 0);
    return rc;
}

static void rg__on_sighup(uv_signal_t *h, int sig)
{
    rg_svc *sv = h->data;
    char err[4096];
    (void)sig;
    rg_svc_audit_note(sv, "signal", "operator", "*", "SIGHUP reload", "reloaded");
    rg_svc_reload(sv, "SIGHUP", err, sizeof err);
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

static void rg__on_release(uv_timer_t *t);

/* Arms the release timer at the earliest end of a clinic's quarantines. */
static void rg__arm_release(rg_svc *sv)
{
    int64_t first = 0;
    for (int i = 0; i < sv->nclinics; i++)
        if (sv->clinics[i].release_at && (!first || sv->clinics[i].release_at < first))
            first = sv->clinics[i].release_at;
    if (!first || sv->stopping)
        return;
    int64_t delay = first - rg_monotonic_ms() + 10; /* past it: released at the first step */
    uv_timer_start(&sv->release, rg__on_release, (uint64_t)(delay > 0 ? delay : 0), 0);
}

/* A quarantine is over: a protocol that was not evaluated asked for no
 * wake-ups meanwhile, so the clinic's patients are all woken, as after a
 * reload, and evaluated in slices. */
static void rg__on_release(uv_timer_t *t)
{
    rg_svc *sv = t->data;
    int64_t now = rg_monotonic_ms();
    int woken = 0;
    for (int i = 0; i < sv->nclinics && !sv->stopping; i++) {
        if (!sv->clinics[i].release_at || sv->clinics[i].release_at > now)
            continue;
        sv->clinics[i].release_at = 0;
        if (rg_store_begin(sv->st) == RG_OK) {
            if (rg_store_wake_clinic(sv->st, sv->clinics[i].name, rg_now()) == RG_OK &&
                rg_store_commit(sv->st) == RG_OK) {
                woken++;
                rg_log("info", "clinic %s: quarantine over: its patients are evaluated again",
                       sv->clinics[i].name);
            } else {
                rg_store_rollback(sv->st);
            }
        }
    }
    if (woken)
        rg__catch_up_paced(sv, "quarantine over");
    rg__arm_release(sv);
}

/* A protocol was quarantined (until_ms > 0) or released (0) by the engine's
 * budgets: logged with its file, and the clinic's patients woken when it is
 * over (rg__on_release). (The place for a system alert.) */
/* The system alert of a quarantine: regimen.protocol-quarantined, critical,
 * keyed by the protocol, opened when the engine quarantines it and resolved
 * when its back-off ends or a reload replaces it. Stored in a transaction of
 * its own, outside the evaluation that hit the limit. */
static void rg__quarantine_alert(rg_svc *sv, int ci, const char *protocol, int open,
                                 const char *why)
{
    char msg[900];
    if (open)
        snprintf(msg, sizeof msg, "protocol '%s' quarantined (not evaluated) after repeated "
                 "limit hits: %.700s", protocol, why);
    else
        snprintf(msg, sizeof msg, "protocol '%s' evaluated again", protocol);
    if (rg_store_begin(sv->st) != RG_OK)
        return;
    if (rg_engine_system_alert(sv->st, sv->clinics[ci].name, RG_QUARANTINED, protocol, "",
                               protocol, open, rg_now(), msg) != RG_OK ||
        rg_store_commit(sv->st) != RG_OK) {
        rg_store_rollback(sv->st);
        rg_log("error", "clinic %s: the quarantine's alert could not be stored: %s",
               sv->clinics[ci].name, rg_store_errmsg(sv->st));
    }
}

static void rg__on_quarantine_note(uv_timer_t *t)
{
    rg_svc *sv = t->data;
    for (int k = 0; k < sv->nqnotes; k++)
        rg__quarantine_alert(sv, sv->qnotes[k].clinic, sv->qnotes[k].protocol,
                             sv->qnotes[k].open, sv->qnotes[k].why);
    sv->nqnotes = 0;
    rg__publish(sv);
}

/* Resolves every quarantine alert of clinic ci (its protocols were
 * replaced by a reload, which ends their quarantine). */
typedef struct rg__qopen {
    char protocols[8][128];
    int n;
} rg__qopen;

static int rg__qopen_cb(void *ud, int64_t id, const rg_transition *t)
{
    rg__qopen *q = ud;
    (void)id;
    if (!strcmp(t->rule, RG_QUARANTINED) && q->n < 8)
        snprintf(q->protocols[q->n++], sizeof q->protocols[0], "%s", t->protocol);
    return 0;
}

static void rg__quarantine_end_all(rg_svc *sv, int ci)
{
    rg__qopen q = {.n = 0};
    if (rg_store_each_open_alert(sv->st, sv->clinics[ci].name, "", rg__qopen_cb, &q) != RG_OK)
        return;
    for (int k = 0; k < q.n; k++)
        rg__quarantine_alert(sv, ci, q.protocols[k], 0, "");
}

static void rg__on_quarantine(void *ud, const char *clinic, const char *protocol,
                              const char *file, int64_t until_ms, const char *why)
{
    rg_svc *sv = ud;
    for (int i = 0; i < sv->nclinics; i++)
        if (!strcmp(sv->clinics[i].name, clinic) && sv->nqnotes < RG_SVC_QNOTES) {
            rg_svc_qnote *n = &sv->qnotes[sv->nqnotes++];
            n->clinic = i;
            n->open = until_ms != 0;
            snprintf(n->protocol, sizeof n->protocol, "%s", protocol);
            snprintf(n->why, sizeof n->why, "%s", why ? why : "");
            if (!sv->stopping)
                uv_timer_start(&sv->qnote, rg__on_quarantine_note, 0, 0);
        }
    if (!until_ms) {
        rg_log("info", "clinic %s: %s: protocol '%s' released from quarantine (%s)", clinic, file,
               protocol, why);
        return;
    }
    rg_log("error", "clinic %s: %.1500s", clinic, why);
    for (int i = 0; i < sv->nclinics; i++)
        if (!strcmp(sv->clinics[i].name, clinic) && until_ms > sv->clinics[i].release_at)
            sv->clinics[i].release_at = until_ms;
    rg__arm_release(sv);
}

static void rg__close_handle(uv_handle_t *h)
{
    if (!uv_is_closing(h))
        uv_close(h, NULL);
}

static void rg__hooks_closed(void *ud)
{
    rg_svc *sv = ud;
    sv->hooks = NULL;
}

static void rg__http_closed(void *ud)
{
    rg_svc *sv = ud;
    sv->http = NULL;
    rg_svc_audit_stop(sv);
    if (sv->hooks)
        rg_webhooks_close(sv->hooks, rg__hooks_closed, sv);
    rg__close_handle((uv_handle_t *)&sv->wake);
    rg__close_handle((uv_handle_t *)&sv->reload_delay);
    rg__close_handle((uv_handle_t *)&sv->release);
    rg__close_handle((uv_handle_t *)&sv->qnote);
    rg__close_handle((uv_handle_t *)&sv->lag);
    rg__close_handle((uv_handle_t *)&sv->flush_check);
    rg__close_handle((uv_handle_t *)&sv->flush_idle);
    rg__close_handle((uv_handle_t *)&sv->sighup);
    rg__close_handle((uv_handle_t *)&sv->sigterm);
    rg__close_handle((uv_handle_t *)&sv->sigint);
    rg__close_handle((uv_handle_t *)&sv->notice);
    rg__close_handle((uv_handle_t *)&sv->lease_tick);
    rg_svc_auth_stop(sv);
    if (sv->notice_fd >= 0) {
        rg__close_handle((uv_handle_t *)&sv->notice_poll);
        rg__close_handle((uv_handle_t *)&sv->notice_drain);
        rg__close_handle((uv_handle_t *)&sv->notice_again);
    }
    for (int i = 0; i < sv->nwatch; i++)
        rg__close_handle((uv_handle_t *)&sv->watch[i]);
}

static void rg__on_stop(uv_signal_t *h, int sig)
{
    rg_svc *sv = h->data;
    if (sv->stopping)
        return;
    sv->stopping = 1;
    if (sig)
        rg_log("info", "%s: stopping (finishing in-flight work)",
               sig == SIGTERM ? "SIGTERM" : "SIGINT");
    rg__flush(sv); /* queued requests are stored and answered first */
    if (sv->http)
        rg_http_close(sv->http, rg__http_closed, sv);
    else
        rg__http_closed(sv);
}

static void rg__watch(rg_svc *sv, const char *dir)
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
    static rg_svc sv_storage;
    rg_svc *sv = &sv_storage;
    char err[4096];
    int rc;
    memset(sv, 0, sizeof *sv);
    /* a writer's notice that comes before our handler is up must not kill us;
     * what it announced is read by the start-up catch-up below */
    signal(RG_HOLDER_SIGNAL, SIG_IGN);
    if (rg_svc_load_config(sv, config_path, err, sizeof err) ||
        (sv->tls_cert && rg_tls_new(&sv->tls, sv->tls_cert, sv->tls_key, err, sizeof err))) {
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
    int shared = 1; /* PostgreSQL: no sweep or simulation writing into it meanwhile */
    if (rg_store_hold(sv->st, 0, &shared) || !shared) {
        fprintf(stderr, "regimen serve: database %s is %s\n", db_path,
                shared ? rg_store_errmsg(sv->st)
                       : "held by a sweep or a simulation (regimen sweep, simulate --db); "
                         "start the service when it has finished");
        rg_store_close(sv->st);
        return 2;
    }
    /* The poll watches a copy of libpq's socket: libpq closes its own when
     * the session ends (a failed read, any statement's), and libuv aborts
     * on a watched descriptor closed under it. The copy stays open until
     * the handle is closed; an ended session leaves it readable, and the
     * next read of notices reports the loss (rg__drain_notices). */
    int pq_fd = rg_store_notice_fd(sv->st);
    sv->notice_fd = pq_fd >= 0 ? fcntl(pq_fd, F_DUPFD_CLOEXEC, 0) : -1;
    if (pq_fd >= 0 && sv->notice_fd < 0) {
        rg_log("error", "cannot watch the database's notices: %s", strerror(errno));
        rg_store_close(sv->st);
        rg_holder_release(sv->holder);
        return 2;
    }
    rg_store_data_version(sv->st, &sv->data_version);
    rg_engine_opts eo = {.limits = sv->limits, .shipped = shipped ? sv->shipped : NULL,
                         .on_error = rg__on_eval_error, .ud = sv,
                         .history_cache_bytes = sv->history_cache, .budget = sv->budget};
    eo.budget.on_quarantine = rg__on_quarantine;
    eo.budget.ud = sv;
    if (rg_engine_new(&sv->eng, sv->st, &eo)) {
        rg_store_close(sv->st);
        rg_holder_release(sv->holder);
        return 2;
    }
    uv_loop_init(&sv->loop);
    uv_timer_init(&sv->loop, &sv->wake);
    uv_timer_init(&sv->loop, &sv->reload_delay);
    uv_timer_init(&sv->loop, &sv->release);
    uv_timer_init(&sv->loop, &sv->qnote);
    uv_timer_init(&sv->loop, &sv->lag);
    sv->wake.data = sv->reload_delay.data = sv->lag.data = sv->release.data = sv->qnote.data = sv;
    uv_check_init(&sv->loop, &sv->flush_check);
    uv_idle_init(&sv->loop, &sv->flush_idle);
    sv->flush_check.data = sv->flush_idle.data = sv;
    uv_signal_init(&sv->loop, &sv->sighup);
    uv_signal_init(&sv->loop, &sv->sigterm);
    uv_signal_init(&sv->loop, &sv->sigint);
    uv_signal_init(&sv->loop, &sv->notice);
    sv->sighup.data = sv->sigterm.data = sv->sigint.data = sv->notice.data = sv;
    signal(SIGPIPE, SIG_IGN);
    uv_timer_init(&sv->loop, &sv->lease_tick);
    sv->lease_tick.data = sv;
    if (sv->notice_fd >= 0) { /* PostgreSQL: this worker evaluates the clinics it leases */
        rg_store_lease_only(sv->st, 1);
        uv_poll_init(&sv->loop, &sv->notice_poll, sv->notice_fd);
        uv_prepare_init(&sv->loop, &sv->notice_drain);
        uv_idle_init(&sv->loop, &sv->notice_again);
        sv->notice_poll.data = sv->notice_drain.data = sv->notice_again.data = sv;
    }
    rg__take_leases(sv, rg__share(sv)); /* SQLite: all of them (the holder lock made this process the one) */
    rg_svc_versions_take(sv); /* approval: the versions in force */
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
    rc = rg_http_listen(&sv->loop, sv->host, sv->port, &sv->http_limits, rg_svc_handle, sv, &sv->http);
    if (rc) {
        rg_log("error", "cannot listen on %s:%d: %s", sv->host, sv->port, uv_strerror(rc));
        sv->exit_code = 2;
        sv->stopping = 1;
        rg__http_closed(sv);
        goto run;
    }
    if (sv->tls) {
        rg_http_set_tls(sv->http, sv->tls);
        rg_svc_auth_tls(sv, 1); /* session cookies are Secure over TLS */
    }
    if (rg_svc_audit_start(sv))
        rg_log("error", "audit: out of memory at start; requests are not audited");
    rg_log("info", "listening on %s:%d (%d clinic%s, database %s%s)", sv->host,
           rg_http_port(sv->http), sv->nclinics, sv->nclinics == 1 ? "" : "s", db_path,
           sv->tls ? ", TLS" : sv->behind_tls_proxy ? ", behind a TLS proxy" : "");
    fflush(stderr);
    char addr[128];
    snprintf(addr, sizeof addr, "%.64s:%d", sv->host, rg_http_port(sv->http));
    rg_holder_describe(sv->holder, addr);
    uv_signal_start(&sv->notice, rg__on_notice, RG_HOLDER_SIGNAL);
    uv_signal_start(&sv->sighup, rg__on_sighup, SIGHUP);
    rg_svc_auth_start(sv); /* sessions expire */
    uv_signal_start(&sv->sigterm, rg__on_stop, SIGTERM);
    uv_signal_start(&sv->sigint, rg__on_stop, SIGINT);
    sv->lag_last = uv_hrtime(); /* from here on, a step of the wall clock shows */
    sv->lag_wall = rg_now();
    uv_timer_start(&sv->lag, rg__on_lag, 1000, 1000);
    if (sv->notice_fd >= 0) {
        uv_poll_start(&sv->notice_poll, UV_READABLE, rg__on_pg_notice);
        uv_prepare_start(&sv->notice_drain, rg__drain_notices);
        uv_timer_start(&sv->lease_tick, rg__on_lease_tick, RG_LEASE_MS, RG_LEASE_MS);
        rg_log("info", "worker holds %d of %d clinic lease%s", sv->nheld, sv->nclinics,
               sv->nclinics == 1 ? "" : "s");
    }
    /* whatever fell due while the service was down, at its due time */
    rg__catch_up_paced(sv, "start-up");
    rg_svc_arm(sv);
run:
    uv_run(&sv->loop, UV_RUN_DEFAULT);
    signal(RG_HOLDER_SIGNAL, SIG_IGN); /* closing the handle restored the default: exit */
    rc = uv_loop_close(&sv->loop);
    if (rc)
        rg_log("error", "event loop did not close cleanly: %s", uv_strerror(rc));
    if (sv->notice_fd >= 0)
        close(sv->notice_fd); /* (its poll handle is closed) */
    for (int i = 0; i < sv->npending; i++) { /* none unless the loop stopped abnormally */
        json_decref(sv->pending[i].items);
        rg__fhir_done(&sv->pending[i]);
    }
    free(sv->pending);
    rg_engine_free(sv->eng);
    rg_tls_free(sv->tls);
    free(sv->tls_cert);
    free(sv->tls_key);
    rg_store_close(sv->st);
    rg_holder_release(sv->holder);
    for (int i = 0; i < sv->nclinics; i++) {
        for (int j = 0; j < sv->clinics[i].ntokens; j++)
            free(sv->clinics[i].tokens[j]);
        free(sv->clinics[i].webhook);
    }
    rg_svc_auth_free(sv);
    rg_svc_versions_free(sv);
    if (!sv->exit_code)
        rg_log("info", "stopped");
    return rc ? 1 : sv->exit_code;
}
