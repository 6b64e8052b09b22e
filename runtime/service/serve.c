/*
 * serve.c - the service (see serve.h): its loop. The HTTP endpoints are in
 * api.c, the configuration file in config.c, what they share in service.h.
 *
 * The loop thread does I/O and the store's writes; the protocols run on
 * evaluation threads (evaluate.c), one clinic on one thread at a time, so a
 * clinic whose protocols are slow delays only its own requests. Requests
 * are answered only after the transactions holding their events and the
 * evaluation they caused have committed with synchronous=FULL: an
 * acknowledged event is on disk, and evaluated.
 *
 * Group commit (rg__flush, from a uv_check handle after the loop's I/O): the
 * POST bodies that arrived in one loop iteration, the write logs of the
 * evaluation jobs that came back, and the snoozes that expired are stored in
 * ONE transaction with one fsync. After that commit the requests whose
 * evaluation is in it are answered and the transitions published; the new
 * requests' patients go to their clinics' next jobs (rg__dispatch), handed
 * out once the clinic's previous job is committed, so each evaluation sees
 * every earlier one of its clinic. A failed commit answers every request of
 * the group with 503 and publishes nothing. The transaction is opened and
 * committed inside rg__flush, so no other handler ever runs (or reads
 * uncommitted rows) while it is open. docs/service.md has the whole design.
 *
 * Configuration is a JSON file:
 *   { "listen": "127.0.0.1:7878",
 *     "clinics": { "north": { "protocols": "clinics/north", "tokens": ["..."] } },
 *     "limits": { "max_memory_mb": 64, "max_instructions": 10000000, "deadline_ms": 2000,
 *                 "max_body_bytes": 1048576, "max_header_bytes": 16384,
 *                 "max_connections": 256, "idle_timeout_ms": 30000,
 *                 "request_timeout_ms": 10000, "max_events_per_request": 1000,
 *                 "evaluation_threads": 4 } }
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
#include "service/serve.h"
#include "core/grow.h"
#include "service/service.h"

#include "engine/engine.h"
#include "core/feed.h"
#include "engine/check.h"
#include "engine/gate.h"
#include "store/holder.h"
#include "service/http.h"
#include "service/webhook.h"
#include "store/ingest.h"

#include <jansson.h>
#include <uv.h>

#include <assert.h>
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

/* After a commit: the new transitions of the clinics that may have some go
 * to their streams and their webhook: every clinic's (all), or those marked
 * fresh (a group's evaluated clinics, another worker's notices): one read
 * a clinic, so a worker of many clinics does not read them all at every
 * commit of one. */
static void rg__publish_some(rg_svc *sv, int all)
{
    int any = 0;
    for (int i = 0; i < sv->nclinics; i++) {
        rg_svc_clinic *c = &sv->clinics[i];
        int want = all || c->fresh;
        c->fresh = 0;
        if (!want || c->gone) /* (a gone one's streams are closed, its webhook dropped) */
            continue;
        any = 1;
        rg__push p = {sv, i};
        rg_store_clinic_transitions(sv->st, c->name, c->last_cseq, 100000, rg__push_one, &p);
    }
    if (any && sv->hooks)
        rg_webhooks_kick(sv->hooks);
}

static void rg__publish(rg_svc *sv) { rg__publish_some(sv, 1); }

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
            .cause = "clock", /* (a snooze that expired) */
        };
        rc = rg_store_transition(sv->st, &t, &r.id);
    }
    if (rc == RG_OK)
        rg_log("info", "alert %s of clinic %s re-raised: snooze expired", key, clinic);
    for (int i = 0; i < 7; i++)
        free(r.s[i]);
    return rc;
}

/* Advances everyone who is due and re-raises expired snoozes: a wake-up
 * job for every clinic this worker holds, handed out by the group commit
 * of this loop iteration. */
static void rg__catch_up(rg_svc *sv, const char *why)
{
    /* (the timer's wake-ups are not logged: each clinic's job says what it did) */
    if (strcmp(why, "wake-up"))
        rg_log("info", "%s: evaluating the patients due (wake-up jobs, handed back every %d ms)",
               why, 250);
    /* the transitions' cause: the clock, unless the system or a reload's
     * author (rg__load_clinics, protocols_live.c) is why they are evaluated */
    const char *cause = !strcmp(why, "start-up")      ? "system: start-up"
                        : !strcmp(why, "lease taken") ? "system: lease taken"
                                                      : "clock";
    sv->catching_up |= !strcmp(why, "start-up");
    for (int i = 0; i < sv->nclinics; i++) {
        rg_svc_clinic *c = &sv->clinics[i];
        if (!c->wake_keep)
            snprintf(c->wake_by, sizeof c->wake_by, "%s", cause);
        c->wake_keep = 0;
        c->wake |= c->held;
    }
    sv->wake_pending = 1;
    rg_svc_flush_soon(sv);
}

/* A wake-up job is queued or out: the pass is under way, and its jobs
 * re-arm the timer as they come back. */
static int rg__waking(rg_svc *sv)
{
    for (int i = 0; i < sv->nclinics; i++)
        if (sv->clinics[i].wake || (sv->clinics[i].job && sv->clinics[i].job->wake))
            return 1;
    return 0;
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
        /* handed out by the group commit of this loop iteration, which re-arms */
        rg__catch_up(sv, "wake-up");
        return;
    }
    rg_svc_arm(sv);
}

/* Back-pressure (docs/scale-out.md): a worker that does not hold a clinic's
 * lease stores its events for the owner, which evaluates them as wake-ups.
 * While the owner's due patients number more than limits.backlog_patients,
 * this worker answers 503 with Retry-After instead, nothing stored. The
 * count is bounded (it stops at the bound + 1) and read at most every
 * RG__BACKLOG_MS per clinic, so a busy worker pays one short statement a
 * quarter second, not one a request. */
#define RG__BACKLOG_MS 250

int rg_svc_backlog_wait(rg_svc *sv, int ci)
{
    rg_svc_clinic *c = &sv->clinics[ci];
    if (sv->backlog_max <= 0 || c->held)
        return 0;
    int64_t now = (int64_t)uv_now(&sv->loop);
    if (!c->backlog_at || now - c->backlog_at >= RG__BACKLOG_MS) {
        int n = 0;
        /* (a failed count refuses nothing: the events are stored as before) */
        c->backlog = rg_store_due_count(sv->st, c->name, rg_now(), sv->backlog_max, &n) ? 0 : n;
        c->backlog_at = now ? now : 1;
    }
    if (c->backlog <= sv->backlog_max)
        return 0;
    c->busy++;
    return 1;
}

/* The patients being evaluated for requests, "clinic/patient" each: in
 * their clinic's job out or queued for its next (*n of them; NULL when
 * none, or out of memory: then none is left out). Their stored events made
 * them due, and the commit of their job moves them on and re-arms. */
static char **rg__in_flight(rg_svc *sv, int *n)
{
    size_t count = 0, bytes = 0;
    for (int i = 0; i < sv->nclinics; i++) {
        const rg_svc_clinic *c = &sv->clinics[i];
        size_t each = strlen(c->name) + 2 + RG_EVENT_MAX_ID;
        int k = c->nwant + (c->job ? c->job->npatients : 0);
        count += (size_t)k;
        bytes += (size_t)k * each;
    }
    *n = 0;
    char **keys = count ? malloc(count * sizeof *keys + bytes) : NULL;
    if (!keys)
        return NULL;
    char *at = (char *)(keys + count);
    for (int i = 0; i < sv->nclinics; i++) {
        const rg_svc_clinic *c = &sv->clinics[i];
        for (int part = 0; part < 2; part++) {
            int m = part ? (c->job ? c->job->npatients : 0) : c->nwant;
            for (int k = 0; k < m; k++) {
                const char *patient = part ? c->job->patients[k] : c->want[k];
                keys[(*n)++] = at;
                at += sprintf(at, "%s/%s", c->name, patient) + 1;
            }
        }
    }
    return keys;
}

/* One timer at the earliest wake-up or snooze expiry. The wait is measured on
 * the monotonic clock but capped, so a wall clock that jumps is re-read; a
 * step of the wall clock re-arms it at once (rg__on_lag). The patients being
 * evaluated for requests are left out: before, a group of requests made the
 * timer go off at once for their own patients, whose wake-up pass (the due
 * snoozes, the due patients read and evaluated again) cost more than the
 * requests' own statements. */
void rg_svc_arm(rg_svc *sv)
{
    rg_time next = RG_TIME_NONE, snooze = RG_TIME_NONE;
    if (sv->stopping || sv->wake_pending) /* a wake-up pass re-arms when it is done */
        return;
    int nskip = 0;
    char **skip = rg__in_flight(sv, &nskip);
    /* (a notice that comes in while these read is seen by rg__drain_notices
     * before the loop sleeps, which arms again) */
    rg_store_next_due(sv->st, (const char *const *)skip, nskip, &next, &snooze);
    free(skip);
    if (snooze != RG_TIME_NONE && (next == RG_TIME_NONE || snooze < next))
        next = snooze;
    sv->armed_for = sv->wake_next = next;
    /* nothing due: still a re-read of the store now and then, in case a
     * writer's notice was lost (see the top of this file) */
    int64_t delay = next == RG_TIME_NONE ? RG_TIMER_CAP_MS + 1 : next - rg_now();
    if (delay < 0)
        delay = 0;
    if (delay < RG_RETRY_MS && (sv->wake_failed || rg_store_fault(sv->st, NULL)))
        delay = RG_RETRY_MS; /* a failing store or pass is retried, not spun on */
    /* what is due may be a clinic's whose wake-up job is out (a slow clinic
     * still at it): its jobs re-arm as they come back, and the others' due
     * patients are looked for again a second later, not in a spin */
    if (delay < RG_RETRY_MS && rg__waking(sv)) {
        delay = RG_RETRY_MS;
        /* re-arming for every commit or notice would push it back for ever */
        if (uv_is_active((uv_handle_t *)&sv->wake) && uv_timer_get_due_in(&sv->wake) <= RG_RETRY_MS)
            return;
    }
    if (delay > RG_TIMER_CAP_MS) {
        delay = RG_TIMER_CAP_MS;
        sv->armed_for = RG_TIME_NONE; /* just a re-check of the clock */
    }
    uv_timer_start(&sv->wake, rg__on_wake, (uint64_t)delay, 0);
}

/* Another process committed to the store (rg_holder_notify): its events
 * have scheduled their patients there, so the earliest wake-up is read again
 * and whatever is due now is evaluated in this loop iteration. A notice with
 * nothing new (rg_store_changed says none) costs one look at the store. */
static int rg__load_clinics(rg_svc *sv, int initial);

static void rg__on_notice(uv_signal_t *h, int sig)
{
    rg_svc *sv = h->data;
    (void)sig;
    if (rg_store_changed(sv->st) == 0) /* (an error: looked at as news) */
        return;
    sv->notices++;
    /* (while gating: taken once the gates are back, rg__on_gated) */
    if (!sv->gating && rg_svc_versions_take(sv)) /* a protocol version activated (protocols_live.c) */
        rg__load_clinics(sv, 0);
    rg_svc_arm(sv);
}

/* The WAL's checkpoints (rg_store_wal_state, SQLite): a change between
 * trouble and health is logged once, however many checkpoints fail
 * meanwhile (/metrics counts them, /healthz says degraded). */
static void rg__wal_watch(rg_svc *sv)
{
    rg_store_wal w;
    rg_store_wal_state(sv->st, &w);
    int trouble = w.why[0] != '\0';
    if (trouble && !sv->wal_trouble)
        rg_log("error", "store: %s (%llu failed, %llu busy so far); /healthz says degraded "
               "until a checkpoint gets through", w.why, (unsigned long long)w.failed,
               (unsigned long long)w.busy);
    else if (!trouble && sv->wal_trouble)
        rg_log("info", "store: WAL checkpoints get through again (%lld WAL pages not copied)",
               (long long)w.behind);
    sv->wal_trouble = trouble;
}

/* Loop lag: how late a 1 s timer fires. */
static void rg__on_lag(uv_timer_t *t)
{
    rg_svc *sv = t->data;
    rg__wal_watch(sv);
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
    /* (while gating: taken once the gates are back, rg__on_gated) */
    if (!sv->gating && rg_svc_versions_take(sv)) /* an activation --at a time that has come */
        rg__load_clinics(sv, 0);
    /* a shadow version's own wake-ups: its due times are not the store's,
     * so a clinic with a shadow has a wake-up job once a second (evaluate.c) */
    int shadows = 0;
    for (int i = 0; i < sv->nclinics; i++)
        if (sv->clinics[i].shadow[0] && sv->clinics[i].held && !sv->stopping)
            shadows = sv->clinics[i].wake = 1;
    if (shadows)
        rg_svc_flush_soon(sv);
}

/* ---- many workers (PostgreSQL) ------------------------------------------------------------ */

static void rg__drop_work(rg_svc *sv, int ci);

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
    int live = 0;
    for (int i = 0; i < sv->nclinics; i++)
        live += !sv->clinics[i].gone;
    return (live + n - 1) / n;
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
        if (sv->clinics[i].held || sv->clinics[i].gone ||
            rg_store_lease(sv->st, sv->clinics[i].name, &held) || !held)
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
    if (taken) /* its notification chains go on here (notifier.c) */
        rg_svc_notify_kick(sv);
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
        if (!sv->clinics[i].held || sv->clinics[i].job) /* (a job out: at a later tick) */
            continue;
        rg__drop_work(sv, i);
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
    int held = 0;
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
    /* The probe above takes clinic 0's lease when nobody holds it. Kept, it
     * is marked held by rg__take_leases; a worker with its share already
     * gives it back at once, or it would hold the lease of a clinic that
     * nobody then evaluates (the others' tries fail for as long as this
     * worker lives). */
    if (sv->nclinics && held && !sv->clinics[0].held &&
        (sv->nheld >= share || sv->clinics[0].gone) && /* (gone: a reload removed it) */
        rg_store_unlease(sv->st, sv->clinics[0].name)) {
        rg_log("error", "cannot give a lease back (%s): stopping, which ends them all",
               rg_store_errmsg(sv->st));
        sv->exit_code = 2;
        rg__on_stop(&sv->sigterm, 0);
        return;
    }
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
static void rg__noticed(void *ud, const char *clinic)
{
    rg_svc *sv = ud;
    for (int i = 0; i < sv->nclinics; i++)
        if (!clinic || !strcmp(sv->clinics[i].name, clinic))
            sv->clinics[i].fresh = 1;
}

/* A notice names its clinic (rg_store_changed_each): only those clinics' new
 * transitions are read, and the timer is read again only when one of them
 * is this worker's (its wake-up reads cover only the clinics it leases: what
 * another clinic's owner commits cannot move them). So a worker reads
 * nothing more for the other workers' commits of their own clinics than
 * their streams' news. */
static void rg__drain_notices(uv_prepare_t *h)
{
    rg_svc *sv = h->data;
    int n = sv->stopping ? 0 : rg_store_changed_each(sv->st, rg__noticed, sv);
    if (n < 0) /* the session may have ended: the lease check stops the worker then */
        rg__on_lease_tick(&sv->lease_tick);
    if (n <= 0) {
        uv_idle_stop(&sv->notice_again);
        return;
    }
    sv->notices++;
    int mine = 0;
    for (int i = 0; i < sv->nclinics; i++)
        mine |= sv->clinics[i].fresh && sv->clinics[i].held;
    rg__publish_some(sv, 0);
    if (mine)
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

/* One event of a request being stored: its validated form and outcome. */
typedef struct rg__item {
    rg_event ev;
    int ok;     /* a valid event of its request's clinic, put in the batch */
    rg_put put; /* its outcome */
    char field[RG_FIELD_MAX], why[512]; /* of a refusal, or of a conflict */
} rg__item;

/* How many events request pr holds: read in one pass (evs), or a tree. */
static size_t rg__nitems(const rg_svc_pending *pr)
{
    return pr->evs ? pr->nevs : json_array_size(pr->items);
}

/* Validates one request's events into it[0..n): the valid ones are added
 * to valid[] (*nvalid), the others keep why they were refused. */
static int rg__validate(rg_svc *sv, rg_svc_pending *pr, rg__item *it, const rg_event **valid,
                        int *nvalid)
{
    rg_svc_clinic *clinic = &sv->clinics[pr->clinic];
    /* (a request read in one pass is answered as text: rg__outcomes) */
    int rc = pr->evs ? rg_buf_add(&pr->text, "{\"results\":[", 12)
                     : (pr->results = json_array()) ? RG_OK : RG_ENOMEM;
    size_t n = rg__nitems(pr);
    memset(pr->counts, 0, sizeof pr->counts);
    pr->future = 0;
    for (size_t i = 0; !rc && i < n; i++) {
        rg__item *t = &it[i];
        int vrc = RG_OK;
        if (pr->evs) { /* read in one pass at the request, valid: taken */
            t->ev = pr->evs[i];
            memset(&pr->evs[i], 0, sizeof pr->evs[i]);
        } else {
            vrc = rg_event_from_json(&t->ev, json_array_get(pr->items, i), t->field, t->why,
                                     sizeof t->why);
        }
        if (vrc == RG_OK && strcmp(t->ev.clinic, clinic->name) != 0) {
            snprintf(t->field, sizeof t->field, "clinic");
            snprintf(t->why, sizeof t->why, "this token may only send events of clinic '%s'",
                     clinic->name);
            vrc = RG_EINVAL; /* (ev is cleared below, with the others) */
        }
        if (vrc == RG_OK) {
            t->ok = 1;
            valid[(*nvalid)++] = &t->ev;
        } else if (vrc != RG_EINVAL) {
            rc = vrc;
        }
    }
    return rc;
}

/* Appends sep"key":<s as JSON> to b as json_dumps prints it (compact,
 * ASCII); nothing when s is not UTF-8, as json_object_set_new(..,
 * json_string(s)) then sets nothing. Printable ASCII but quotes and
 * backslashes (an id read in one pass, most reasons) is copied as it is;
 * anything else goes through jansson. */
static int rg__text_str(rg_buf *b, const char *sep, const char *key, const char *s)
{
    int plain = 1;
    for (const char *c = s; *c && plain; c++)
        plain = *c >= 0x20 && *c < 0x7f && *c != '"' && *c != '\\';
    char *quoted = NULL;
    if (!plain) {
        json_t *j = json_string(s);
        if (!j)
            return RG_OK;
        quoted = json_dumps(j, JSON_COMPACT | JSON_ENSURE_ASCII | JSON_ENCODE_ANY);
        json_decref(j);
        if (!quoted)
            return RG_ENOMEM;
    }
    /* (pieces, not a format: this runs for every event answered) */
    int rc = rg_buf_add(b, sep, strlen(sep));
    if (!rc && !(rc = rg_buf_add(b, "\"", 1)) && !(rc = rg_buf_add(b, key, strlen(key))))
        rc = rg_buf_add(b, plain ? "\":\"" : "\":", plain ? 3 : 2);
    if (!rc)
        rc = plain ? rg_buf_add(b, s, strlen(s)) : rg_buf_add(b, quoted, strlen(quoted));
    if (!rc && plain)
        rc = rg_buf_add(b, "\"", 1);
    free(quoted);
    return rc;
}

/* One event's outcome, read in one pass, as its tree's item would print:
 * {"id":..,["field":..,"reason":..,]"status":..[,"future":true,"warning":..]},
 * after a comma but the first. (Its id is printable ASCII: always there.) */
static int rg__text_item(rg_buf *b, int first, const rg__item *t, int outcome, const char *warn)
{
    int refused = outcome == RG_PUT_CONFLICT || outcome == 3;
    int rc = rg__text_str(b, first ? "{" : ",{", "id", t->ev.id);
    if (!rc && refused && !(rc = rg__text_str(b, ",", "field", t->field)))
        rc = rg__text_str(b, ",", "reason", t->why);
    if (!rc)
        rc = rg__text_str(b, ",", "status", rg_svc_outcomes[outcome]);
    if (!rc && warn && !(rc = rg_buf_add(b, ",\"future\":true", 14)))
        rc = rg__text_str(b, ",", "warning", warn);
    return rc ? rc : rg_buf_add(b, "}", 1);
}

/* A request's outcomes once the group's events are stored: its results (as
 * text when it was read in one pass: no tree of an object per event), its
 * refusals kept (rg_store_reject), the patients to evaluate noted. */
static int rg__outcomes(rg_svc *sv, rg_svc_pending *pr, rg__item *it)
{
    rg_svc_clinic *clinic = &sv->clinics[pr->clinic];
    size_t n = rg__nitems(pr);
    /* patients to re-evaluate: distinct, in order */
    char (*patients)[RG_EVENT_MAX_ID + 1] = calloc(n + 1, sizeof *patients);
    int npatients = 0, rc = patients ? RG_OK : RG_ENOMEM;
    for (size_t i = 0; !rc && i < n; i++) {
        rg__item *t = &it[i];
        int outcome = t->ok ? (int)t->put : 3;
        json_t *item = pr->evs ? NULL : json_array_get(pr->items, i); /* NULL: t->ev */
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
            char *raw = item ? json_dumps(item, JSON_COMPACT | JSON_ENCODE_ANY)
                             : strdup(t->ev.body);
            rc = rg_store_reject(sv->st, pr->source, (long)i + 1, t->field, t->why,
                                 raw ? raw : "", raw ? strlen(raw) : 0);
            free(raw);
        }
        char warn[512]; /* stored, but dated ahead of the clock: flagged */
        int ahead = (outcome == RG_PUT_STORED || outcome == RG_PUT_CORRECTED) &&
                    rg_ingest_ahead(&t->ev, rg_now(), sv->future_skew, warn, sizeof warn);
        pr->future += ahead;
        pr->counts[outcome]++;
        if (!pr->results) { /* read in one pass: as text */
            if (!rc)
                rc = rg__text_item(&pr->text, i == 0, t, outcome, ahead ? warn : NULL);
            continue;
        }
        json_t *r = json_object();
        if (!item)
            json_object_set_new(r, "id", json_string(t->ev.id));
        else
            json_object_set(r, "id", json_is_object(item) && json_object_get(item, "id")
                                         ? json_object_get(item, "id") : json_null());
        if (outcome == RG_PUT_CONFLICT || outcome == 3) {
            json_object_set_new(r, "field", json_string(t->field));
            json_object_set_new(r, "reason", json_string(t->why));
        }
        json_object_set_new(r, "status", json_string(rg_svc_outcomes[outcome]));
        if (ahead) {
            json_object_set_new(r, "future", json_true());
            json_object_set_new(r, "warning", json_string(warn));
        }
        json_array_append_new(pr->results, r);
    }
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
    /* a clinic leased by another worker: stored only; its NOTIFY wakes the owner */
    if (!rc && clinic->held && npatients) {
        pr->patients = patients;
        pr->npatients = npatients;
    } else {
        free(patients);
    }
    return rc;
}

/* Validates and stores the events of a group's requests (prs[0..n)) inside
 * the group's transaction, and notes the patients they concern: after the
 * commit they go to their clinic's next evaluation job (the same
 * rg_engine_advance as simulate, on an evaluation thread), and a request is
 * answered once that job's writes are committed too. The valid events of
 * every request go to the store in one call (rg_store_put_events: one
 * statement on PostgreSQL for the whole group), with the outcomes calls in
 * order, request by request, would give. On an error the outcomes are unset:
 * the group rolls back and answers 503. */
static int rg__store_events(rg_svc *sv, rg_svc_pending *prs, int n)
{
    size_t total = 0;
    for (int r = 0; r < n; r++)
        total += rg__nitems(&prs[r]);
    rg__item *it = calloc(total + 1, sizeof *it);
    const rg_event **valid = calloc(total + 1, sizeof *valid);
    rg_put *res = calloc(total + 1, sizeof *res);
    int nvalid = 0, rc = it && valid && res ? RG_OK : RG_ENOMEM;
    for (int r = 0, off = 0; r < n && !rc; off += (int)rg__nitems(&prs[r]), r++)
        rc = rg__validate(sv, &prs[r], it + off, valid, &nvalid);
    if (!rc && nvalid)
        rc = rg_store_put_events(sv->st, valid, nvalid, rg_now(), res, NULL);
    for (size_t k = 0, j = 0; !rc && k < total; k++) /* (res is in the items' order) */
        if (it[k].ok)
            it[k].put = res[j++];
    for (int r = 0, off = 0; r < n && !rc; off += (int)rg__nitems(&prs[r]), r++)
        rc = rg__outcomes(sv, &prs[r], it + off);
    for (size_t k = 0; it && k < total; k++)
        rg_event_clear(&it[k].ev);
    free(it);
    free(valid);
    free(res);
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

/* Why a request is answered 503 after its events were stored. */
#define RG__UNEVALUATED "the events were stored but their evaluation could not be (the service " \
                        "is stopping, or its database failed): send them again (an event is kept " \
                        "once; what is stored is evaluated when the service runs again)"

/* Answers a request once its group's commit and its evaluation's are done
 * (fail NULL) or one failed (fail says why). The reply goes last: answering
 * may hand a pipelined request of the same connection to rg_svc_handle,
 * which may grow sv->pending (and move pr). */
static void rg__answer(rg_svc *sv, rg_svc_pending *pr, const char *fail)
{
    rg_svc_clinic *clinic = &sv->clinics[pr->clinic];
    uint64_t *counts = pr->counts;
    json_decref(pr->items);
    rg_event_free_all(pr->evs, pr->nevs);
    pr->evs = NULL;
    free(pr->patients);
    pr->patients = NULL;
    if (fail) {
        json_decref(pr->results);
        rg_buf_free(&pr->text);
        rg__fhir_done(pr);
        rg_svc_unavailable(sv, pr->conn, fail);
        return;
    }
    for (int k = 0; k < 5; k++)
        clinic->events[k] += counts[k];
    clinic->future += pr->future;
    rg_log("info", "clinic %s: %llu stored, %llu corrected, %llu duplicate, %llu conflict, "
           "%llu rejected from %s", clinic->name, (unsigned long long)counts[0],
           (unsigned long long)counts[4], (unsigned long long)counts[1],
           (unsigned long long)counts[2], (unsigned long long)counts[3], pr->source);
    if (!pr->results) { /* read in one pass: its results are text, taken out of
                          * pr first: answering may move pr (above) */
        rg_buf text = pr->text, *b = &text;
        memset(&pr->text, 0, sizeof pr->text);
        int rc = rg_buf_printf(b, "]," "\"stored\":%llu,\"corrected\":%llu,\"duplicates\":%llu,"
                               "\"conflicts\":%llu,\"rejected\":%llu}\n",
                               (unsigned long long)counts[0], (unsigned long long)counts[4],
                               (unsigned long long)counts[1], (unsigned long long)counts[2],
                               (unsigned long long)counts[3]);
        if (rc)
            rg_http_respond(pr->conn, 500, "application/json", "{\"error\":\"out of memory\"}",
                            25);
        else
            rg_http_respond(pr->conn, 200, "application/json", b->p, b->len);
        rg_buf_free(b);
        return;
    }
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

/* A request stored (its copy, taken): its patients join its clinic's next
 * job, and it is answered after that job. */
static void rg__wait(rg_svc *sv, rg_svc_pending *pr)
{
    rg_svc_clinic *c = &sv->clinics[pr->clinic];
    /* (a patient in two requests is in the job twice: the thread
     * evaluates it once, rg__seen in evaluate.c) */
    for (int k = 0; k < pr->npatients; k++) {
        /* two arrays of one length: the second grows from the first's old cap */
        size_t cap = c->cap_want;
        char (*grown)[RG_EVENT_MAX_ID + 1] = rg_grow(c->want, &c->cap_want, (size_t)c->nwant,
                                                     sizeof *grown, 64);
        if (grown)
            c->want = grown;
        char (*by)[RG_SVC_CAUSE] = grown ? rg_grow(c->want_by, &cap, (size_t)c->nwant,
                                                   sizeof *by, 64) : NULL;
        if (!by) { /* its events are stored and due: a wake-up evaluates them */
            c->cap_want = cap;
            c->wake = 1;
            break;
        }
        c->want_by = by;
        snprintf(c->want_by[c->nwant], sizeof c->want_by[0], "%s", pr->who);
        memcpy(c->want[c->nwant++], pr->patients[k], sizeof c->want[0]);
    }
    pr->next = NULL;
    if (!c->waiting_tail)
        c->waiting_tail = &c->waiting;
    *c->waiting_tail = pr;
    c->waiting_tail = &pr->next;
}

/* Answers the requests of a list and frees them. */
static void rg__answer_list(rg_svc *sv, rg_svc_pending *list, const char *fail)
{
    while (list) {
        rg_svc_pending *next = list->next;
        rg__answer(sv, list, fail);
        free(list);
        list = next;
    }
}

/* A clinic is no longer evaluated here (its lease given back, or the
 * service stops): the requests waiting for its next job are answered, as
 * stored (the lease holder evaluates them) or not evaluated (stopping). */
static void rg__drop_work(rg_svc *sv, int ci)
{
    rg_svc_clinic *c = &sv->clinics[ci];
    rg_svc_pending *w = c->waiting;
    c->waiting = NULL;
    c->waiting_tail = &c->waiting;
    free(c->want);
    free(c->want_by);
    c->want = NULL;
    c->want_by = NULL;
    c->nwant = c->cap_want = c->wake = 0;
    rg__answer_list(sv, w, sv->stopping ? RG__UNEVALUATED : NULL);
}

void rg_svc_job_free(rg_svc_job *j)
{
    if (j->fhir) {
        json_decref(j->fhir->bundle);
        if (j->fhir->im) {
            rg_fhir_free(j->fhir->im);
            free(j->fhir->im);
        }
        free(j->fhir);
    }
    free(j->patients);
    free(j->patients_by);
    rg_wlog_free(&j->log);
    free(j);
}

/* Whether every clinic's job out (each has at most one) is counted in
 * sv->njobs, which also counts the Bundle mappings out (api.c): the group
 * commit's bookkeeping, asserted where a clinic's job comes and goes. */
static inline int rg__jobs_counted(const rg_svc *sv)
{
    int n = 0;
    for (int i = 0; i < sv->nclinics; i++)
        n += sv->clinics[i].job != NULL;
    return n <= sv->njobs;
}

/* Hands every clinic that has work and no job out its next job. */
static void rg__dispatch(rg_svc *sv)
{
    for (int i = 0; i < sv->nclinics && !sv->stopping; i++) {
        rg_svc_clinic *c = &sv->clinics[i];
        if (c->job || !c->held || (!c->nwant && !c->wake))
            continue;
        rg_svc_job *j = calloc(1, sizeof *j);
        if (!j) {
            rg_log("error", "clinic %s: out of memory for its evaluation job", c->name);
            continue; /* (tried again at the next group) */
        }
        j->clinic = i;
        j->gen = c->gen;
        j->fp = c->live_fp;
        j->limits = sv->limits;
        j->budget = sv->budget;
        j->until = rg_now(); /* (what it sees is what this loop has committed by now) */
        j->patients = c->want;
        j->patients_by = c->want_by;
        j->npatients = c->nwant;
        j->wake = c->wake;
        snprintf(j->wake_by, sizeof j->wake_by, "%s", c->wake_by[0] ? c->wake_by : "clock");
        j->reqs = c->waiting;
        memcpy(j->shadow, c->shadow, sizeof j->shadow); /* (evaluate.c runs it too) */
        j->shadow_since = c->shadow_since;
        c->want = NULL;
        c->want_by = NULL;
        c->nwant = c->cap_want = c->wake = 0;
        c->waiting = NULL;
        c->waiting_tail = &c->waiting;
        c->job = j;
        sv->njobs++;
        rg_svc_pool_submit(sv, j);
    }
    assert(rg__jobs_counted(sv));
}

/* A job back from its thread, after the group holding its log committed
 * (ok) or failed: its clinic free for the next; its requests are answered
 * by rg__job_answer (j->evaluated then says whether they were evaluated). */
static void rg__job_done(rg_svc *sv, rg_svc_job *j, int ok)
{
    rg_svc_clinic *c = &sv->clinics[j->clinic];
    /* a clinic has at most one job out at a time (evaluate.c): this one */
    assert(c->job == j && sv->njobs > 0);
    c->job = NULL;
    sv->njobs--;
    assert(rg__jobs_counted(sv));
    if (j->rc) {
        sv->db_errors++;
        rg_log("error", "clinic %s: evaluation stopped: %s", c->name, rg_strerror(j->rc));
    }
    if (ok) {
        rg_engine_stats_add(&sv->eval_stats, &j->stats, NULL);
        /* per protocol, into the loop's engine's (what /metrics reads) */
        rg_clinic *cl = rg_engine_clinic(sv->eng, c->name);
        for (int p = 0; cl && p < j->nprotos; p++)
            for (int q = 0; q < cl->nprotos; q++)
                if (!strncmp(cl->protos[q].id, j->protos[p].id, sizeof j->protos[p].id - 1)) {
                    cl->protos[q].evaluations += j->protos[p].evaluations;
                    cl->protos[q].seconds += j->protos[p].seconds;
                    break;
                }
        c->woken += j->woken;
        sv->wake_yields += (uint64_t)j->yielded;
        sv->shared_runs += (uint64_t)j->lent;
    }
    if (ok && !j->rc && j->more)
        c->wake = 1; /* what is left is still due: its next job goes on */
    if (!ok || j->rc)
        sv->wake_failed = 1; /* still due too, but retried by the timer, not spun on */
    if (!j->more && !c->wake && c->woken > 0) {
        rg_log("info", "clinic %s: wake-up: %ld patient%s evaluated", c->name, c->woken,
               c->woken == 1 ? "" : "s");
        c->woken = 0;
    }
    j->evaluated = ok && !j->rc && j->evaluated;
}

/* The requests of job j answered (after rg__job_done), and j freed. */
static void rg__job_answer(rg_svc *sv, rg_svc_job *j)
{
    rg__answer_list(sv, j->reqs, j->evaluated ? NULL : RG__UNEVALUATED);
    j->reqs = NULL;
    rg_svc_job_free(j);
}

/* Whether a request waits for its clinic's job out to come back: its
 * patients would join the clinic's next job, which starts after that one's
 * commit anyway, so its events are stored in that commit, with the job's
 * writes (one transaction and one round trip of writes where there were
 * two), not in one of their own before it. Nothing is answered any later:
 * a request is answered after its own evaluation's commit. */
static int rg__held_back(const rg_svc *sv, const rg_svc_pending *pr)
{
    const rg_svc_clinic *c = &sv->clinics[pr->clinic];
    if (sv->stopping || !c->held || !c->job)
        return 0;
    for (const rg_svc_job *j = sv->returned; j; j = j->next)
        if (j == c->job)
            return 0; /* (back: its writes are in this group) */
    return 1;
}

/* Moves the requests that are not held back (rg__held_back) to the front of
 * sv->pending, each kind in its order (a clinic's requests are all of one
 * kind, so each clinic's stay in theirs): how many there are. */
static int rg__ready(rg_svc *sv)
{
    int ready = 0;
    for (int i = 0; i < sv->npending; i++) {
        if (rg__held_back(sv, &sv->pending[i]))
            continue;
        if (i != ready) {
            rg_svc_pending keep = sv->pending[i];
            memmove(sv->pending + ready + 1, sv->pending + ready,
                    (size_t)(i - ready) * sizeof *sv->pending);
            sv->pending[ready] = keep;
        }
        ready++;
    }
    return ready;
}

/* One group commit, in one transaction: the logs of the jobs back from the
 * evaluation threads, the queued requests (up to RG_GROUP_EVENTS events),
 * and the expired snoozes when a wake-up is due. A request whose events
 * need no evaluation is answered after the commit; the others wait for
 * their clinic's next job. 1 when the timer must be read again after it:
 * not after a group of requests only whose patients all went to their
 * clinics' jobs (their events made them due now, but the jobs evaluate
 * them, and the commit of those jobs re-arms): reading it then woke the
 * service for patients already being evaluated (a wake-up pass, and its
 * statements, per group on PostgreSQL). */
static int rg__group(rg_svc *sv)
{
    int take = 0, rc, wake = sv->wake_pending, ready = rg__ready(sv);
    size_t events = 0;
    while (take < ready) {
        size_t k = rg__nitems(&sv->pending[take]);
        if (take > 0 && events + k > RG_GROUP_EVENTS)
            break;
        events += k;
        take++;
    }
    /* every group takes at least the first request ready, and no more than are */
    assert(take <= ready && (take > 0 || ready == 0));
    rg_svc_job *jobs = sv->returned;
    sv->returned = NULL;
    sv->wake_pending = 0;
    rg_time now = rg_now();
    /* jobs that wrote nothing (no patient was due) need no transaction: an
     * empty commit would also tell a failing store it has recovered */
    int writes = take > 0 || wake;
    for (rg_svc_job *j = jobs; j && !writes; j = j->next)
        writes = j->log.n > 0 || j->log.rc;
    rc = writes ? rg_store_begin(sv->st) : RG_OK;
    /* the logs first: each holds whole patients, evaluated against what was
     * committed before (a clinic's next job starts after this commit) */
    int planned = 0;
    for (rg_svc_job *j = jobs; j && !rc; j = j->next) {
        rc = rg_wlog_apply(sv->st, &j->log);
        /* the notification steps of what moved, in the same commit */
        int np = rc ? 0 : rg_svc_notify_plan(sv, &j->log);
        if (np < 0)
            rc = np;
        planned |= np > 0;
    }
    if (!rc && take > 0)
        rc = rg__store_events(sv, sv->pending, take);
    if (!rc && wake)
        rc = rg_store_each_due_snooze(sv->st, now, rg__reraise, sv, NULL);
    if (!rc && writes) /* the audit entries of requests answered before it */
        rc = rg_svc_audit_carry(sv);
    if (!rc && writes)
        rc = rg_store_commit(sv->st);
    if (rc) {
        rg_store_rollback(sv->st);
        sv->db_errors++;
        rg_log("error", "%d request%s%s%s not stored: %s (%s)", take, take == 1 ? "" : "s",
               jobs ? " and evaluations" : "", wake ? " and a wake-up" : "", rg_strerror(rc),
               rg_store_errmsg(sv->st));
    }
    rg_svc_audit_carried(sv, writes && rc == RG_OK);
    sv->groups += writes;
    sv->group_requests += (uint64_t)take;
    if (wake)
        sv->wake_failed = rc != RG_OK;
    /* what may have new transitions: the clinics whose logs wrote (a
     * request's events make none), all when snoozes were re-raised */
    for (rg_svc_job *j = jobs; j && !rc; j = j->next)
        sv->clinics[j->clinic].fresh |= j->log.n > 0;
    int arm = rc || wake || jobs;
    for (rg_svc_job *j = jobs; j; j = j->next)
        rg__job_done(sv, j, rc == RG_OK);
    /* (answering may queue more requests: sv->pending grows past take) */
    for (int i = 0; i < take; i++) {
        rg_svc_pending *pr = &sv->pending[i], *copy = NULL;
        if (!pr->npatients && (pr->counts[RG_PUT_STORED] || pr->counts[RG_PUT_CORRECTED]))
            arm = 1; /* (stored for another worker's clinic: due, not evaluated here) */
        if (rc || !pr->npatients || sv->stopping ||
            !(copy = malloc(sizeof *copy))) {
            arm |= pr->npatients > 0;
            rg__answer(sv, pr, rc ? "the events could not be stored; nothing was acknowledged, "
                                    "send them again"
                                  : pr->npatients ? RG__UNEVALUATED : NULL);
            continue;
        }
        *copy = *pr;
        rg__wait(sv, copy);
    }
    if (take > 0) { /* (pending is NULL until the first POST) */
        sv->npending -= take;
        memmove(sv->pending, sv->pending + take, (size_t)sv->npending * sizeof *sv->pending);
    }
    assert(sv->npending >= 0);
    /* the clinics' next jobs go out before anything is answered or
     * published, which then overlaps their evaluation (unless another group
     * follows in this flush: its requests join them, rg__flush dispatches) */
    if (!rc && rg__ready(sv) == 0)
        rg__dispatch(sv);
    while (jobs) {
        rg_svc_job *next = jobs->next;
        rg__job_answer(sv, jobs);
        jobs = next;
    }
    if (!rc)
        rg__publish_some(sv, wake);
    if (!rc && planned)
        rg_svc_notify_kick(sv);
    return arm;
}

static void rg__stop_now(rg_svc *sv);

/* Says once when the start-up's catch-up is done: every clinic's wake-up
 * jobs back and committed, none left to run. What a test (or an operator)
 * waits for before it checks that a restart did nothing more. */
static void rg__caught_up(rg_svc *sv)
{
    if (sv->wake_pending || sv->wake_failed || sv->returned)
        return;
    for (int i = 0; i < sv->nclinics; i++)
        if (sv->clinics[i].job || (sv->clinics[i].wake && sv->clinics[i].held))
            return;
    sv->catching_up = 0;
    rg_log("info", "start-up: caught up (every patient due evaluated)");
}

/* Commits what came in: the jobs the evaluation threads handed back, every
 * queued request (in groups of at most RG_GROUP_EVENTS events), the expired
 * snoozes; then hands the clinics with work their next jobs. Nothing here
 * evaluates: a slow clinic delays only its own requests. */
static void rg__flush(rg_svc *sv)
{
    for (rg_svc_job *j = rg_svc_pool_done(sv), *next; j; j = next) {
        next = j->next;
        if (j->abandoned) { /* left behind by a stop, back after all: answered then */
            rg_svc_job_free(j);
            continue;
        }
        if (j->fhir) { /* a Bundle mapped: its events queued for this flush */
            sv->njobs--;
            rg_svc_fhir_mapped(sv, j);
            continue;
        }
        j->next = sv->returned;
        sv->returned = j;
    }
    int arm = 0;
    if (rg__ready(sv) > 0 || sv->returned || sv->wake_pending)
        while (rg__ready(sv) > 0 || sv->returned || sv->wake_pending)
            arm |= rg__group(sv);
    else /* (requests held back wait for their clinic's job, which re-arms) */
        arm = sv->npending == 0;
    rg__dispatch(sv);
    if (sv->catching_up && !sv->stopping)
        rg__caught_up(sv);
    uv_check_stop(&sv->flush_check);
    uv_idle_stop(&sv->flush_idle);
    if (sv->stopping) {
        for (int i = 0; i < sv->nclinics; i++)
            rg__drop_work(sv, i);
        if (sv->njobs == 0)
            rg__stop_now(sv);
        return;
    }
    if (arm || !uv_is_active((uv_handle_t *)&sv->wake))
        rg_svc_arm(sv);
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
 * (why: opened with it), resolved by the next load that goes live (why
 * NULL). Another refusal while it is open leaves it as it is: an admin
 * editing a broken file saves it many times, each a reload refused for a
 * reason of its own, and each would page again (RG_ALERT_RENEW). */
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

/* What identifies the protocols clinic i runs on the loop's engine: their
 * hashes and ids ("" when none). */
static void rg__hashes(rg_svc *sv, int i, char *out, size_t len)
{
    rg_clinic *c = rg_engine_clinic(sv->eng, sv->clinics[i].name);
    out[0] = '\0';
    for (int p = 0; c && p < c->nprotos && strlen(out) + 200 < len; p++) {
        strcat(out, c->protos[p].hash);
        strcat(out, c->protos[p].id);
    }
}

/* Clinic i's new protocols were refused (or, at start, did not load): the
 * previous version keeps running. */
static void rg__refused(rg_svc *sv, int i, int initial, const char *err)
{
    if (!initial)
        sv->reload_failures++;
    rg_log("error", "clinic %s: protocols %s: %s%s", sv->clinics[i].name,
           initial ? "not loaded" : "refused", err,
           initial ? "" : " (the previous version keeps running)");
    sv->clinics[i].refused = 1;
    if (!initial)
        rg__refusal_alert(sv, i, err);
}

/* What check would refuse in a clinic's sources, found at start (where
 * nothing is gated): a warning each, and together the message of the
 * clinic's regimen.protocol-check alert (rg__check_alert), for its next
 * reload is refused until they are mended. */
typedef struct rg__start_check {
    const char *clinic;
    rg_buf msgs;
    int n;
} rg__start_check;

static void rg__start_warning(void *ud, const char *msg)
{
    rg__start_check *sc = ud;
    rg_log("warn", "clinic %s: %s (check refuses this: the clinic's next reload is refused "
           "until it is mended; `regimen check` on its directory lists all)", sc->clinic, msg);
    if (sc->msgs.len < 1500)
        rg_buf_printf(&sc->msgs, "%s%s", sc->n ? "; " : "", msg);
    sc->n++;
}

/* Clinic i's system alert regimen.protocol-check: opened at start when
 * check refuses something in its sources (sc's messages, file:line each),
 * resolved by a load that passes check going live (a start that finds
 * nothing, or a reload: its gate is check's). A restart that finds other
 * problems renews it (RG_ALERT_RENEW: resolved and opened again, a new
 * page), so that it lists what is wrong now, not what was at an earlier
 * start. */
static void rg__check_alert(rg_svc *sv, int i, const rg__start_check *sc)
{
    int open = sc && sc->n > 0;
    if (!sv->clinics[i].held) /* (PostgreSQL: the clinic's worker alerts, not every worker
                               * at once, which would race to store it twice) */
        return;
    if (!open && !sv->clinics[i].check_open)
        return;
    char msg[2000];
    if (open)
        snprintf(msg, sizeof msg, "protocols in %s: check refuses %d thing%s, so the clinic's "
                 "next reload is refused until mended (`regimen check` lists all): %.1600s%s",
                 sv->clinics[i].dir, sc->n, sc->n == 1 ? "" : "s", sc->msgs.p ? sc->msgs.p : "",
                 sc->msgs.len >= 1500 ? "; ..." : "");
    else
        snprintf(msg, sizeof msg, "protocols in %s pass check", sv->clinics[i].dir);
    if (rg_store_begin(sv->st) != RG_OK)
        return;
    if (rg_engine_system_alert(sv->st, sv->clinics[i].name, RG_PROTOCOL_CHECK, "", "", "",
                               open ? RG_ALERT_RENEW : 0, rg_now(), msg) != RG_OK ||
        rg_store_commit(sv->st) != RG_OK) {
        rg_store_rollback(sv->st);
        rg_log("error", "clinic %s: the protocol check's alert could not be stored: %s",
               sv->clinics[i].name, rg_store_errmsg(sv->st));
        return;
    }
    sv->clinics[i].check_open = open;
}

/* Clinic i runs the protocols of fingerprint fp now (in the loop's engine
 * already; old_hashes: what it ran before): the refusal alert resolved, its
 * quarantines ended, the threads load them before its next job. Returns 1
 * when they changed (its patients are to be re-evaluated). */
static int rg__went_live(rg_svc *sv, int i, int initial, const char *old_hashes, uint64_t fp)
{
    const char *name = sv->clinics[i].name;
    int gated = !initial && fp != sv->clinics[i].live_fp; /* (else the same files again) */
    sv->clinics[i].live_fp = fp;
    if (initial || sv->clinics[i].refused) /* (at start: one from before may be open) */
        rg__refusal_alert(sv, i, NULL);
    if (gated) /* (new files went live: they passed the gate, which is check's) */
        rg__check_alert(sv, i, NULL);
    rg__quarantine_end_all(sv, i); /* new protocols (or a restart): none is quarantined */
    rg_qboard_clear(sv->qboard, name); /* (on every thread: their hits counted there) */
    /* the evaluation threads load it before their next job (which also
     * ends a quarantine there, as on this engine) */
    sv->clinics[i].gen++;
    rg_clinic *now_c = rg_engine_clinic(sv->eng, name);
    char new_hashes[4096];
    rg__hashes(sv, i, new_hashes, sizeof new_hashes);
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
    if (!initial && !took && !strcmp(old_hashes, new_hashes))
        return 0;
    for (int p = 0; now_c && p < now_c->nprotos; p++)
        rg_log("info", "clinic %s: protocol %s %s loaded from %s", name, now_c->protos[p].id,
               now_c->protos[p].version, now_c->protos[p].file);
    if (initial)
        return 0;
    sv->reloads++;
    /* its patients' transitions now: caused by the reload (or the
     * activation protocols_live.c named) */
    if (!took)
        snprintf(sv->clinics[i].wake_by, sizeof sv->clinics[i].wake_by, "reload: %.100s",
                 sv->reload_by[0] ? sv->reload_by : "protocols");
    sv->clinics[i].wake_keep = 1;
    if (rg_store_begin(sv->st) == RG_OK) {
        rg_store_wake_clinic(sv->st, name, rg_now());
        rg_store_commit(sv->st);
    }
    return 1;
}

/* Gates back from reload.c's thread (on the loop): each clinic goes live
 * (its loaded protocols swapped into the loop's engine) or is refused;
 * then the changed ones are re-evaluated, and a reload asked meanwhile
 * runs. */
static void rg__on_gated(rg_svc *sv)
{
    int changed = 0, any = 0;
    for (rg_svc_gate *g = rg_svc_gates_done(sv), *next; g; g = next) {
        next = g->next;
        any = 1;
        sv->gating--;
        int i = g->clinic;
        if (sv->stopping || sv->clinics[i].gone) { /* (removed by a reload meanwhile) */
            rg_svc_gate_free(g);
            continue;
        }
        char old_hashes[4096];
        rg__hashes(sv, i, old_hashes, sizeof old_hashes);
        int rc = g->rc;
        if (rc == RG_OK) {
            rc = rg_engine_set_clinic_loaded(sv->eng, sv->clinics[i].name, g->loaded, g->err,
                                             sizeof g->err);
            g->loaded = NULL; /* (taken) */
        }
        if (rc == RG_OK) { /* the threads run the very files the gate passed */
            rg_svc_pool_offer(sv, i, g->copies, g->ncopies);
            g->copies = NULL; /* (taken) */
            g->ncopies = 0;
        }
        rg_log("info", "clinic %s: the reload's gate took %.0f ms (off the loop)",
               sv->clinics[i].name, g->ms);
        if (rc)
            rg__refused(sv, i, 0, g->err);
        else
            changed += rg__went_live(sv, i, 0, old_hashes, g->fp);
        if (!rc && memcmp(&g->limits, &sv->limits, sizeof g->limits))
            sv->clinics[i].live_fp = 0; /* (loaded under the limits before a reload changed
                                         * them: the reload asked meanwhile loads it again) */
        rg_svc_gate_free(g);
    }
    if (!any || sv->stopping)
        return;
    if (changed)
        rg__catch_up(sv, "reload");
    else
        rg__publish(sv); /* a refusal alerted, or resolved */
    rg_svc_arm(sv);
    if (!sv->gating) {
        int again = sv->reload_again;
        sv->reload_again = 0;
        if (sv->approval && rg_svc_versions_take(sv)) /* activated while gating */
            again = 1;
        if (again)
            rg__load_clinics(sv, 0);
    }
}

/* Loads (or reloads) every clinic; a clinic whose new protocols fail keeps
 * its old ones. At start they load here; on a reload a clinic whose
 * directory changed is gated and loaded on reload.c's thread (the loop
 * keeps serving its version in force until rg__on_gated), one that did not
 * change is not loaded again. Clinics with changed protocols get their
 * patients re-evaluated. Returns the number of clinics that failed now. */
static int rg__load_clinics(rg_svc *sv, int initial)
{
    int failed = 0, changed = 0;
    char err[4096];
    if (!initial && sv->gating) { /* one reload at a time: this one follows */
        sv->reload_again = 1;
        rg_log("info", "reload: %d clinic%s still gating; reloading again once %s back",
               sv->gating, sv->gating == 1 ? "" : "s", sv->gating == 1 ? "it is" : "they are");
        return 0;
    }
    for (int i = 0; i < sv->nclinics; i++) {
        const char *name = sv->clinics[i].name;
        char old_hashes[4096] = "";
        if (sv->clinics[i].gone)
            continue;
        if (!initial)
            rg__hashes(sv, i, old_hashes, sizeof old_hashes);
        /* a reload is a deployment: what changed goes live only when it
         * passes the gate (loading and its own scenario tests) */
        const char *shipped, *dir; /* the directory, or its active version's (approval) */
        rg_svc_clinic_source(sv, i, &dir, &shipped);
        uint64_t fp = rg_clinic_fingerprint(dir, shipped);
        int rc = RG_OK;
        if (!initial && fp != sv->clinics[i].live_fp) {
            rg_svc_gate *g = calloc(1, sizeof *g);
            if (g && (g->ncopies = rg_svc_pool_size(sv)) > 0 &&
                !(g->copies = calloc((size_t)g->ncopies, sizeof *g->copies))) {
                free(g);
                g = NULL;
            }
            if (g) {
                g->clinic = i;
                g->fp = fp;
                g->limits = sv->limits;
                snprintf(g->dir, sizeof g->dir, "%s", dir);
                snprintf(g->shipped, sizeof g->shipped, "%s", shipped ? shipped : "");
            }
            if (g && rg_svc_gates_submit(sv, g) == RG_OK) {
                sv->gating++;
                rg_log("info", "clinic %s: protocols in %s changed: gating them off the loop "
                       "(the version in force runs meanwhile)", name, sv->clinics[i].dir);
                continue;
            }
            rg_svc_gate_free(g); /* (and its copies' array) */
            rc = rg_fail(err, sizeof err, RG_ENOMEM, "out of memory for its gate");
        } else if (initial) {
            rc = rg_engine_set_clinic_from(sv->eng, name, dir, shipped, NULL, err, sizeof err);
            if (!rc) { /* (not gated at start: said and alerted, so that it is mended first) */
                rg__start_check sc = {.clinic = name};
                sv->clinics[i].check_open = 1; /* (one may be open from before: resolved) */
                if (rg_check_sources(dir, shipped, &sv->limits, rg__start_warning, &sc, err,
                                     sizeof err) == RG_OK)
                    rg__check_alert(sv, i, &sc);
                rg_buf_free(&sc.msgs);
            }
        } /* (else unchanged: the loop's engine runs them already) */
        if (rc) {
            failed++;
            rg__refused(sv, i, initial, err);
            continue;
        }
        changed += rg__went_live(sv, i, initial, old_hashes, fp);
    }
    if (changed)
        rg__catch_up(sv, "reload");
    else if (!initial)
        rg__publish(sv); /* a refusal alerted, or resolved */
    rg_svc_arm(sv);
    return failed;
}

static void rg__rewatch(rg_svc *sv);
static void rg__watch(rg_svc *sv, const char *dir);

static void rg__on_reload_delay(uv_timer_t *t)
{
    rg_svc *sv = t->data;
    rg_log("info", "protocol files changed: reloading");
    rg__rewatch(sv); /* first: a file saved while the reload runs (its gate) reloads again */
    rg_svc_audit_note(sv, "protocol files", "system", "*", "reload (files changed)", "reloaded");
    snprintf(sv->reload_by, sizeof sv->reload_by, "protocol files");
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

/* ---- the configuration's reload ---------------------------------------------------------- */

/* Clinic name's slot in sv (gone ones too), or -1. */
static int rg__clinic_slot(rg_svc *sv, const char *name)
{
    for (int i = 0; i < sv->nclinics; i++)
        if (!strcmp(sv->clinics[i].name, name))
            return i;
    return -1;
}

/* Clinic i leaves the configuration: its lease, webhook, streams, stream
 * tickets and queued evaluations end (a job out on a thread finishes and
 * its writes are applied: they are the clinic's data, kept in the store);
 * its identities are gone with the configuration (rg_svc_auth_apply). */
static void rg__clinic_remove(rg_svc *sv, int i)
{
    rg_svc_clinic *c = &sv->clinics[i];
    c->gone = 1;
    rg__drop_work(sv, i);
    if (sv->hooks)
        rg_webhooks_drop(sv->hooks, c->name);
    if (c->held) {
        c->held = 0;
        sv->nheld--;
        if (rg_store_unlease(sv->st, c->name))
            rg_log("error", "clinic %s: its lease could not be given back (%s); it ends with this "
                   "worker's session", c->name, rg_store_errmsg(sv->st));
    }
    for (int k = sv->nstreams - 1; k >= 0; k--)
        if (k < sv->nstreams && sv->streams[k].clinic == i)
            rg_http_stream_end(sv->streams[k].conn);
    for (int k = sv->ntickets - 1; k >= 0; k--)
        if (!strcmp(sv->tickets[k].clinic, c->name))
            sv->tickets[k] = sv->tickets[--sv->ntickets];
    rg_log("info", "clinic %s removed from the configuration: no longer served (its data stays "
           "in the store)", c->name);
}

/* What of n (a configuration read anew) cannot be applied to the running
 * service: RG_EINVAL with err set; nothing changed. tls gets the new TLS
 * context when listen's certificate changed (NULL otherwise), *relisten
 * whether the address changed. */
static int rg__reload_check(rg_svc *sv, rg_svc *n, rg_tls **tls, int *relisten, char *err,
                            size_t errlen)
{
    const char *path = sv->config_path;
    int slots = sv->nclinics;
    *tls = NULL;
    for (int k = 0; k < n->nclinics; k++) {
        rg_svc_clinic *nc = &n->clinics[k];
        int i = rg__clinic_slot(sv, nc->name);
        char field[120], why[4096];
        snprintf(field, sizeof field, "clinics.%s.protocols", nc->name);
        if (i >= 0 && !sv->clinics[i].gone) {
            if (strcmp(nc->dir, sv->clinics[i].dir) && sv->clinics[i].job)
                return rg_fail(err, errlen, RG_EINVAL,
                               "%s: %s: the clinic is being evaluated on a thread now; its new "
                               "directory is taken up by a reload once it is done (try again)",
                               path, field);
            continue;
        }
        if (i < 0 && ++slots > RG_MAX_CLINICS)
            return rg_fail(err, errlen, RG_EINVAL,
                           "%s: clinics: too many clinics for a reload (%d served or removed "
                           "since the start, at most %d): restart the service",
                           path, sv->nclinics, RG_MAX_CLINICS);
        /* a clinic added: its protocols must pass the gate, as a reload's */
        const char *shipped = sv->shipped[0] ? sv->shipped : NULL;
        if (rg_clinic_gate(nc->name, nc->dir, shipped, &n->limits, why, sizeof why))
            return rg_fail(err, errlen, RG_EINVAL, "%s: %s: the protocols of the clinic added "
                           "are refused: %.3000s", path, field, why);
    }
    int tls_changed = (n->tls_cert == NULL) != (sv->tls_cert == NULL) ||
                      (n->tls_cert && (strcmp(n->tls_cert, sv->tls_cert) ||
                                       strcmp(n->tls_key, sv->tls_key)));
    if (n->tls_cert && tls_changed) {
        char why[1024];
        if (rg_tls_new(tls, n->tls_cert, n->tls_key, why, sizeof why))
            return rg_fail(err, errlen, RG_EINVAL, "%s: listen: expected a usable certificate "
                           "and key: %s", path, why);
    }
    *relisten = strcmp(n->host, sv->host) || n->port != sv->port;
    if (*relisten && sv->http) {
        int rc = rg_http_relisten(sv->http, n->host, n->port);
        if (rc) {
            rg_tls_free(*tls);
            *tls = NULL;
            return rg_fail(err, errlen, RG_EINVAL, "%s: listen: cannot listen on %s:%d: %s",
                           path, n->host, n->port, uv_strerror(rc));
        }
    }
    if (!tls_changed && sv->tls) { /* the same files: read again (a renewed certificate) */
        char why[1024];
        if (rg_tls_reload(sv->tls, why, sizeof why))
            rg_log("error", "%s; the TLS certificate in use stays", why);
        else
            rg_log("info", "TLS certificate %s reloaded", sv->tls_cert);
    }
    return RG_OK;
}

/* Applies n to sv (rg__reload_check passed and, with a new address, the
 * server listens there already); n keeps what sv had, for the caller to
 * free. Returns the number of clinics added. */
static int rg__reload_apply(rg_svc *sv, rg_svc *n, rg_tls *tls, int relisten, const char *by)
{
    /* listen: the new listener is up; TLS for the connections accepted from
     * now on (those open keep theirs: OpenSSL counts the context's users) */
    if (relisten)
        rg_log("info", "%s: listening on %s:%d instead of %s:%d (open connections go on)", by,
               n->host, rg_http_port(sv->http), sv->host, sv->port);
    if (tls || (!n->tls_cert && sv->tls)) {
        rg_tls *old = sv->tls;
        sv->tls = tls;
        if (sv->http)
            rg_http_set_tls(sv->http, tls);
        rg_svc_auth_tls(sv, tls != NULL);
        rg_tls_free(old);
        rg_log("info", "%s: %s", by, tls ? "TLS with the certificate of the configuration"
                                         : "plain HTTP (no certificate configured)");
    }
    char host[sizeof sv->host];
    snprintf(host, sizeof host, "%s", sv->host);
    snprintf(sv->host, sizeof sv->host, "%s", n->host);
    snprintf(n->host, sizeof n->host, "%s", host);
    sv->port = n->port;
    char *t = sv->tls_cert;
    sv->tls_cert = n->tls_cert;
    n->tls_cert = t;
    t = sv->tls_key;
    sv->tls_key = n->tls_key;
    n->tls_key = t;
    sv->behind_tls_proxy = n->behind_tls_proxy;
    /* limits: HTTP ones for what the server decides from now on, the
     * others where they are read (requests, streams, tickets); the engines'
     * (sandbox, quarantine) with the protocols loaded next, the cache and
     * the threads at the next start */
    if (memcmp(&n->http_limits, &sv->http_limits, sizeof n->http_limits) && sv->http)
        rg_http_set_limits(sv->http, &n->http_limits);
    sv->http_limits = n->http_limits;
    sv->max_events = n->max_events;
    sv->backlog_max = n->backlog_max;
    sv->future_skew = n->future_skew;
    sv->max_streams_clinic = n->max_streams_clinic;
    sv->max_streams_token = n->max_streams_token;
    sv->max_tickets_clinic = n->max_tickets_clinic;
    if (memcmp(&n->limits, &sv->limits, sizeof n->limits)) {
        /* the sandbox's: every clinic loaded again under them, through the
         * gate (its scenario tests), here and on the threads (gen) */
        sv->limits = n->limits;
        for (int i = 0; i < sv->nclinics; i++)
            sv->clinics[i].live_fp = 0;
        rg_log("info", "%s: sandbox limits changed: every clinic's protocols are loaded again", by);
    }
    /* the budget's numbers, for the next evaluations (the jobs carry them) */
    sv->budget.hits = n->budget.hits;
    sv->budget.window_s = n->budget.window_s;
    sv->budget.backoff_s = n->budget.backoff_s;
    sv->budget.cpu_ms = n->budget.cpu_ms;
    sv->budget.cpu_window_s = n->budget.cpu_window_s;
    rg_engine_set_limits(sv->eng, &sv->limits, &sv->budget);
    if (n->history_cache != sv->history_cache || n->eval_threads != sv->eval_threads)
        rg_log("warn", "%s: limits history_cache_mb and evaluation_threads take effect at the next "
               "start", by);
    sv->audit_retention_days = n->audit_retention_days;
    /* clinics removed */
    for (int i = 0; i < sv->nclinics; i++) {
        int k;
        for (k = 0; k < n->nclinics && strcmp(n->clinics[k].name, sv->clinics[i].name); k++)
            ;
        if (k == n->nclinics && !sv->clinics[i].gone)
            rg__clinic_remove(sv, i);
    }
    /* clinics kept and added: directory, legacy tokens, webhook */
    int added = 0;
    for (int k = 0; k < n->nclinics; k++) {
        rg_svc_clinic *nc = &n->clinics[k];
        int i = rg__clinic_slot(sv, nc->name), isnew = i < 0 || sv->clinics[i].gone;
        if (i < 0) {
            i = sv->nclinics++;
            memset(&sv->clinics[i], 0, sizeof sv->clinics[i]);
            snprintf(sv->clinics[i].name, sizeof sv->clinics[i].name, "%s", nc->name);
            sv->clinics[i].waiting_tail = &sv->clinics[i].waiting;
        }
        rg_svc_clinic *c = &sv->clinics[i];
        if (isnew || strcmp(c->dir, nc->dir)) {
            if (!isnew)
                rg_log("info", "%s: clinic %s: protocols from %s instead of %s", by, c->name,
                       nc->dir, c->dir);
            snprintf(c->dir, sizeof c->dir, "%s", nc->dir);
            c->live_fp = 0; /* loaded (through the gate) by rg__load_clinics */
            int watched = 0;
            for (int w = 0; w < sv->nwatch; w++)
                watched |= !strcmp(sv->watched[w], c->dir);
            if (!watched)
                rg__watch(sv, c->dir);
        }
        for (int j = 0; j < RG_MAX_TOKENS; j++) { /* (n frees what sv had) */
            char *tok = c->tokens[j];
            c->tokens[j] = nc->tokens[j];
            nc->tokens[j] = tok;
        }
        int nt = c->ntokens;
        c->ntokens = nc->ntokens;
        nc->ntokens = nt;
        int hook_changed = strcmp(c->webhook ? c->webhook : "", nc->webhook ? nc->webhook : "") ||
                           c->nhook_keys != nc->nhook_keys ||
                           memcmp(c->hook_keys, nc->hook_keys, sizeof c->hook_keys);
        char *url = c->webhook;
        c->webhook = nc->webhook;
        nc->webhook = url;
        memcpy(c->hook_keys, nc->hook_keys, sizeof c->hook_keys);
        c->nhook_keys = nc->nhook_keys;
        rg_oidc *o = c->oidc; /* its identity provider (n frees the old one) */
        c->oidc = nc->oidc;
        nc->oidc = o;
        if (isnew) {
            c->gone = 0;
            rg_store_last_cseq(sv->st, c->name, &c->last_cseq); /* streams: new ones only */
            rg_log("info", "%s: clinic %s added, protocols in %s", by, c->name, c->dir);
            added++;
        } else if (hook_changed) {
            /* a delivery in flight is abandoned and sent again, with the same
             * webhook-id, to the new URL and under the new secrets */
            if (sv->hooks)
                rg_webhooks_drop(sv->hooks, c->name);
            if (rg__hook_add(sv, i))
                rg_log("error", "clinic %s: cannot start webhook delivery", c->name);
            rg_log("info", "%s: clinic %s: webhook %s%s", by, c->name,
                   c->webhook ? c->webhook : "none",
                   c->nhook_keys == 2 ? " (two secrets: a rotation)" : "");
        }
    }
    return added;
}

int rg_svc_reload(rg_svc *sv, const char *by, const char *role, char *err, size_t errlen)
{
    rg_log("info", "%s: reloading the configuration and the protocols", by);
    rg_svc *n = calloc(1, sizeof *n);
    rg_tls *tls = NULL;
    int relisten = 0, rc = n ? rg_svc_load_config(n, sv->config_path, err, errlen)
                             : rg_fail(err, errlen, RG_ENOMEM, "out of memory");
    if (!rc)
        rc = rg__reload_check(sv, n, &tls, &relisten, err, errlen);
    if (!rc) {
        int added = rg__reload_apply(sv, n, tls, relisten, by);
        rg_svc_auth_apply(sv, n, by); /* users, keys, roles, sessions */
        if (added) { /* its lease (all of them on SQLite), then loaded as at start */
            rg__take_leases(sv, rg__share(sv));
            for (int i = 0; i < sv->nclinics; i++)
                if (!sv->clinics[i].gone && !sv->clinics[i].live_fp && sv->clinics[i].held &&
                    rg_store_begin(sv->st) == RG_OK &&
                    (rg_store_wake_failing(sv->st, sv->clinics[i].name, rg_now()) ||
                     rg_store_commit(sv->st)))
                    rg_store_rollback(sv->st);
        }
    }
    if (n) { /* (and the slot a refused file stopped in, which may hold its tokens) */
        for (int i = 0; i <= n->nclinics && i < RG_MAX_CLINICS; i++) {
            for (int j = 0; j < n->clinics[i].ntokens; j++)
                free(n->clinics[i].tokens[j]);
            free(n->clinics[i].webhook);
            rg_oidc_free(n->clinics[i].oidc);
        }
        free(n->tls_cert);
        free(n->tls_key);
        if (n->auth)
            rg_svc_auth_free(n);
        free(n);
    }
    /* (the trail's outcome is short: what was wrong is in the log and the answer) */
    rg_svc_audit_note(sv, by, role, "*", "configuration reload", rc ? "refused" : "reloaded");
    if (rc) {
        rg_log("error", "configuration reload by %s refused (the previous one stays): %s", by, err);
        return rc;
    }
    rg__rewatch(sv); /* first: a file saved while the reload runs (its gate) reloads again */
    snprintf(sv->reload_by, sizeof sv->reload_by, "%s", by);
    rg__load_clinics(sv, 0);
    return RG_OK;
}

static void rg__on_sighup(uv_signal_t *h, int sig)
{
    rg_svc *sv = h->data;
    char err[4096];
    (void)sig;
    rg_svc_reload(sv, "signal SIGHUP", "operator", err, sizeof err);
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
    pthread_mutex_lock(&sv->qmu); /* (release_at is set by the evaluation threads' hook) */
    for (int i = 0; i < sv->nclinics; i++)
        if (sv->clinics[i].release_at && (!first || sv->clinics[i].release_at < first))
            first = sv->clinics[i].release_at;
    pthread_mutex_unlock(&sv->qmu);
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
        pthread_mutex_lock(&sv->qmu);
        int over = sv->clinics[i].release_at && sv->clinics[i].release_at <= now;
        if (over)
            sv->clinics[i].release_at = 0;
        pthread_mutex_unlock(&sv->qmu);
        if (!over)
            continue;
        if (rg_store_begin(sv->st) == RG_OK) {
            if (rg_store_wake_clinic(sv->st, sv->clinics[i].name, rg_now()) == RG_OK &&
                rg_store_commit(sv->st) == RG_OK) {
                woken++;
                rg_log("info", "clinic %s: quarantine over: its patients are evaluated again",
                       sv->clinics[i].name);
                /* its alerts resolve here: the thread whose engine quarantined
                 * it (and would say "back-off over") may not get the next job */
                rg__quarantine_end_all(sv, i);
            } else {
                rg_store_rollback(sv->st);
            }
        }
    }
    if (woken) {
        rg__publish(sv);
        rg__catch_up(sv, "quarantine over");
    }
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
    rg_svc_qnote notes[RG_SVC_QNOTES];
    pthread_mutex_lock(&sv->qmu); /* (the evaluation threads' hook adds to them) */
    int n = sv->nqnotes;
    memcpy(notes, sv->qnotes, (size_t)n * sizeof notes[0]);
    sv->nqnotes = 0;
    pthread_mutex_unlock(&sv->qmu);
    for (int k = 0; k < n; k++)
        rg__quarantine_alert(sv, notes[k].clinic, notes[k].protocol, notes[k].open, notes[k].why);
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
    pthread_mutex_lock(&sv->qmu);
    sv->clinics[ci].quarantined = 0;
    pthread_mutex_unlock(&sv->qmu);
    if (rg_store_each_open_alert(sv->st, sv->clinics[ci].name, "", rg__qopen_cb, &q) != RG_OK)
        return;
    for (int k = 0; k < q.n; k++)
        rg__quarantine_alert(sv, ci, q.protocols[k], 0, "");
}

/* Called on an evaluation thread (its engine's budget hook), or on the loop:
 * so it only records, under qmu, and wakes the loop (rg__on_qasync), which
 * arms the timers and stores the alerts. */
static void rg__on_quarantine(void *ud, const char *clinic, const char *protocol,
                              const char *file, int64_t until_ms, const char *why)
{
    rg_svc *sv = ud;
    pthread_mutex_lock(&sv->qmu);
    for (int i = 0; i < sv->nclinics; i++) {
        if (strcmp(sv->clinics[i].name, clinic))
            continue;
        if (sv->nqnotes < RG_SVC_QNOTES) {
            rg_svc_qnote *n = &sv->qnotes[sv->nqnotes++];
            n->clinic = i;
            n->open = until_ms != 0;
            snprintf(n->protocol, sizeof n->protocol, "%s", protocol);
            snprintf(n->why, sizeof n->why, "%s", why ? why : "");
        }
        if (until_ms) {
            sv->clinics[i].quarantined++;
            if (until_ms > sv->clinics[i].release_at)
                sv->clinics[i].release_at = until_ms;
        } else if (sv->clinics[i].quarantined > 0) {
            sv->clinics[i].quarantined--;
        }
    }
    int wake = sv->qasync_open;
    pthread_mutex_unlock(&sv->qmu);
    if (wake)
        uv_async_send(&sv->qasync);
    if (!until_ms)
        rg_log("info", "clinic %s: %s: protocol '%s' released from quarantine (%s)", clinic, file,
               protocol, why);
    else
        rg_log("error", "clinic %s: %.1500s", clinic, why);
}

/* On the loop: the quarantine notes the hook recorded are stored (after
 * this loop turn, outside any group's transaction) and the release timer
 * armed at the earliest end. */
static void rg__on_qasync(uv_async_t *h)
{
    rg_svc *sv = h->data;
    if (sv->stopping)
        return;
    pthread_mutex_lock(&sv->qmu);
    int notes = sv->nqnotes > 0;
    pthread_mutex_unlock(&sv->qmu);
    if (notes)
        uv_timer_start(&sv->qnote, rg__on_quarantine_note, 0, 0);
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
    rg_svc_notify_close(sv);
    if (sv->hooks)
        rg_webhooks_close(sv->hooks, rg__hooks_closed, sv);
    rg__close_handle((uv_handle_t *)&sv->wake);
    rg__close_handle((uv_handle_t *)&sv->reload_delay);
    rg__close_handle((uv_handle_t *)&sv->release);
    rg__close_handle((uv_handle_t *)&sv->qnote);
    rg__close_handle((uv_handle_t *)&sv->stop_grace);
    pthread_mutex_lock(&sv->qmu); /* (no hook sends to it from here on) */
    sv->qasync_open = 0;
    pthread_mutex_unlock(&sv->qmu);
    rg__close_handle((uv_handle_t *)&sv->qasync);
    rg__close_handle((uv_handle_t *)&sv->lag);
    rg__close_handle((uv_handle_t *)&sv->flush_check);
    rg__close_handle((uv_handle_t *)&sv->flush_idle);
    rg__close_handle((uv_handle_t *)&sv->sighup);
    rg__close_handle((uv_handle_t *)&sv->sigterm);
    rg__close_handle((uv_handle_t *)&sv->sigint);
    rg__close_handle((uv_handle_t *)&sv->notice);
    rg__close_handle((uv_handle_t *)&sv->lease_tick);
    rg_svc_auth_stop(sv);
    rg_svc_pool_close(sv);
    rg_svc_gates_close(sv);
    if (sv->notice_fd >= 0) {
        rg__close_handle((uv_handle_t *)&sv->notice_poll);
        rg__close_handle((uv_handle_t *)&sv->notice_drain);
        rg__close_handle((uv_handle_t *)&sv->notice_again);
    }
    for (int i = 0; i < sv->nwatch; i++)
        rg__close_handle((uv_handle_t *)&sv->watch[i]);
}

/* Once no job is out: the connections and every handle close. */
static void rg__stop_now(rg_svc *sv)
{
    if (sv->closing)
        return;
    sv->closing = 1;
    if (sv->http)
        rg_http_close(sv->http, rg__http_closed, sv);
    else
        rg__http_closed(sv);
}

/* limits.deadline_ms + RG_STOP_GRACE_MS after a stop, jobs still out: a
 * thread is held in one C call the deadline cannot interrupt (a Lua table
 * resize over colliding integer keys, say). The service stops without them:
 * their requests are answered 503 (the events are stored: evaluated at the
 * next start; a Bundle still mapping stored nothing), their threads are
 * not joined. */
static void rg__on_stop_grace(uv_timer_t *t)
{
    rg_svc *sv = t->data;
    rg_svc_job *left[1024];
    if (sv->closing || sv->njobs == 0)
        return;
    int n = rg_svc_pool_abandon(sv, left, 1024);
    for (int i = 0; i < n; i++) {
        rg_svc_job *j = left[i];
        rg_svc_clinic *c = &sv->clinics[j->clinic];
        rg_log("error", "clinic %s: its %s is still running %d ms after the stop was asked "
               "(held in one C call the deadline cannot interrupt): the service stops without "
               "it; the events it concerns are stored and are evaluated at the next start",
               c->name, j->fhir ? "Bundle mapping (fhir.map)" : "evaluation",
               sv->limits.deadline_ms + RG_STOP_GRACE_MS);
        sv->njobs--;
        if (j->fhir) {
            if (j->fhir->conn)
                rg_svc_unavailable(sv, j->fhir->conn, "the service is stopping; nothing was "
                                                      "stored, send the Bundle again");
            j->fhir->conn = NULL;
        } else {
            if (c->job == j)
                c->job = NULL;
            rg_svc_pending *reqs = j->reqs;
            j->reqs = NULL;
            rg__answer_list(sv, reqs, RG__UNEVALUATED);
        }
        if (!j->abandoned) /* (a queued one: ours) */
            rg_svc_job_free(j);
    }
    rg__flush(sv); /* no job out: everything closes (rg__stop_now) */
}

/* The evaluation threads stop at their next patient (one evaluation, which
 * the sandbox's deadline bounds); queued requests are stored and answered
 * (503 for those whose evaluation did not run: their events are stored and
 * are evaluated when the service runs again); once the last job is back and
 * its log committed, rg__flush closes everything (rg__stop_now). A job
 * not back by the deadline and a grace is left behind (rg__on_stop_grace). */
static void rg__on_stop(uv_signal_t *h, int sig)
{
    rg_svc *sv = h->data;
    if (sv->stopping)
        return;
    sv->stopping = 1;
    if (sig)
        rg_log("info", "%s: stopping (finishing in-flight work)",
               sig == SIGTERM ? "SIGTERM" : "SIGINT");
    rg_svc_pool_halt(sv);
    uv_timer_stop(&sv->wake);
    uv_timer_start(&sv->stop_grace, rg__on_stop_grace,
                   (uint64_t)sv->limits.deadline_ms + RG_STOP_GRACE_MS, 0);
    rg__flush(sv);
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

/* Start-up, first phase: the store opened and held as the one service on
 * it (and as the only writer beside PostgreSQL workers), its change notices
 * watched, the quarantine board and the loop's engine made. Returns 0, or
 * 2 (said on stderr) with nothing left open. */
static int rg__serve_open(rg_svc *sv, const char *db_path, const char *shipped)
{
    char err[4096];
    rg_store_opts so = {.durable = 1, .check = 1, .checkpointer = 1, .writer = 1};
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
    /* Other writers: a descriptor to poll (PostgreSQL), or none (SQLite:
     * the holder's signal says when to ask, rg__on_notice); either way
     * rg_store_changed tells what came. The store keeps the descriptor open
     * until it is closed, after the loop (an ended session leaves it
     * readable, and the next rg_store_changed reports the loss). */
    if (rg_store_changes_fd(sv->st, &sv->notice_fd)) {
        rg_log("error", "cannot watch the database's notices: %s", rg_store_errmsg(sv->st));
        rg_store_close(sv->st);
        rg_holder_release(sv->holder);
        return 2;
    }
    if (rg_qboard_new(&sv->qboard)) {
        fprintf(stderr, "regimen serve: out of memory\n");
        rg_store_close(sv->st);
        rg_holder_release(sv->holder);
        return 2;
    }
    sv->budget.board = sv->qboard; /* (every engine's: one quarantine for all threads) */
    rg_engine_opts eo = {.limits = sv->limits, .shipped = shipped ? sv->shipped : NULL,
                         .on_error = rg__on_eval_error, .ud = sv,
                         .history_cache_bytes = 0 /* it never evaluates */, .budget = sv->budget};
    eo.budget.on_quarantine = rg__on_quarantine;
    eo.budget.ud = sv;
    if (rg_engine_new(&sv->eng, sv->st, &eo)) {
        rg_qboard_free(sv->qboard);
        rg_store_close(sv->st);
        rg_holder_release(sv->holder);
        return 2;
    }
    return 0;
}

/* Start-up, second phase: the loop and every handle the service keeps for
 * its life (timers, signals, the flush's check and idle, PostgreSQL's
 * notice poll), initialised but not started. */
static void rg__serve_handles(rg_svc *sv)
{
    uv_loop_init(&sv->loop);
    uv_timer_init(&sv->loop, &sv->wake);
    uv_timer_init(&sv->loop, &sv->reload_delay);
    uv_timer_init(&sv->loop, &sv->release);
    uv_timer_init(&sv->loop, &sv->qnote);
    uv_timer_init(&sv->loop, &sv->stop_grace);
    sv->stop_grace.data = sv;
    uv_async_init(&sv->loop, &sv->qasync, rg__on_qasync);
    sv->qasync.data = sv;
    sv->qasync_open = 1;
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
}

/* Start-up ends without serving: the loop runs only to close what was
 * opened, and the service exits 2. */
static int rg__serve_fail(rg_svc *sv)
{
    sv->exit_code = 2;
    sv->stopping = 1;
    rg__http_closed(sv);
    return 2;
}

/* Start-up, last phase: the clinics' leases and protocols, the gate and
 * evaluation threads, the protocol directories watched, the listener, the
 * signals, and the catch-up of what fell due while the service was down.
 * Returns 0, or 2 when the service cannot serve (rg__serve_fail). */
static int rg__serve_start(rg_svc *sv, const char *db_path, const char *shipped)
{
    char err[4096];
    int rc;
    rg__take_leases(sv, rg__share(sv)); /* SQLite: all of them (the holder lock made this process the one) */
    rg_svc_versions_take(sv); /* approval: the versions in force */
    int failed = rg__load_clinics(sv, 1);
    if (failed) {
        fprintf(stderr, "regimen serve: %d clinic%s could not load their protocols (see above)\n",
                failed, failed == 1 ? "" : "s");
        return rg__serve_fail(sv);
    }
    sv->on_eval_error = rg__on_eval_error;
    sv->budget_hook = rg__on_quarantine;
    if (rg_svc_gates_start(sv, rg__on_gated)) /* (a reload then refuses changed clinics) */
        rg_log("error", "cannot start the reload gate's thread: changed protocols will be "
               "refused until the next start");
    int threads = sv->eval_threads > 0 ? sv->eval_threads : rg_sweep_default_jobs();
    if (rg_svc_pool_start(sv, db_path, threads, err, sizeof err)) {
        rg_log("error", "cannot start the evaluation threads: %s", err);
        return rg__serve_fail(sv);
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
        return rg__serve_fail(sv);
    }
    if (sv->tls) {
        rg_http_set_tls(sv->http, sv->tls);
        rg_svc_auth_tls(sv, 1); /* session cookies are Secure over TLS */
    }
    if (rg_svc_notify_start(sv))
        rg_log("error", "notifications: out of memory at start; the policies' steps are not sent");
    if (rg_svc_audit_start(sv))
        rg_log("error", "audit: out of memory at start; requests are not audited");
    char addr[128];
    snprintf(addr, sizeof addr, "%.64s:%d", sv->host, rg_http_port(sv->http));
    rg_holder_describe(sv->holder, addr);
    uv_signal_start(&sv->notice, rg__on_notice, RG_HOLDER_SIGNAL);
    uv_signal_start(&sv->sighup, rg__on_sighup, SIGHUP);
    rg_svc_auth_start(sv); /* sessions expire */
    uv_signal_start(&sv->sigterm, rg__on_stop, SIGTERM);
    uv_signal_start(&sv->sigint, rg__on_stop, SIGINT);
    /* Announced once the lock file names the address and the signals are
     * handled: whoever waits for this line may stop the service at once
     * (SIGTERM before its handler killed it with status 143, not 0) or ask
     * who holds the database. */
    rg_log("info", "listening on %s:%d (%d clinic%s, database %s, %d evaluation thread%s%s)",
           sv->host, rg_http_port(sv->http), sv->nclinics, sv->nclinics == 1 ? "" : "s", db_path,
           threads, threads == 1 ? "" : "s",
           sv->tls ? ", TLS" : sv->behind_tls_proxy ? ", behind a TLS proxy" : "");
    fflush(stderr);
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
    rg__catch_up(sv, "start-up");
    rg_svc_arm(sv);
    return 0;
}

/* After the loop: every handle is closed; what the service owns is freed.
 * Returns 1 when the loop did not close cleanly, else 0. */
static int rg__serve_free(rg_svc *sv)
{
    int rc;
    signal(RG_HOLDER_SIGNAL, SIG_IGN); /* closing the handle restored the default: exit */
    rc = uv_loop_close(&sv->loop);
    if (rc)
        rg_log("error", "event loop did not close cleanly: %s", uv_strerror(rc));
    /* (every job came back before the handles closed, or was left behind:
     * then its thread may still count on the board) */
    if (!rg_svc_pool_free(sv))
        rg_qboard_free(sv->qboard);
    rg_svc_gates_free(sv);
    for (int i = 0; i < sv->npending; i++) { /* none unless the loop stopped abnormally */
        json_decref(sv->pending[i].items);
        rg_event_free_all(sv->pending[i].evs, sv->pending[i].nevs);
        free(sv->pending[i].patients);
        rg__fhir_done(&sv->pending[i]);
    }
    for (int i = 0; i < sv->nclinics; i++) {
        free(sv->clinics[i].want);
        free(sv->clinics[i].want_by);
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
        rg_oidc_free(sv->clinics[i].oidc);
    }
    rg_svc_auth_free(sv);
    rg_svc_versions_free(sv);
    return rc ? 1 : 0;
}

/* regimen serve: configuration, the store, the loop's handles, the start,
 * the loop, and the teardown, each a phase of its own above. */
int rg_serve_main(const char *db_path, const char *config_path, const char *shipped)
{
    static rg_svc sv_storage;
    rg_svc *sv = &sv_storage;
    char err[4096];
    memset(sv, 0, sizeof *sv);
    pthread_mutex_init(&sv->qmu, NULL);
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
    if (rg__serve_open(sv, db_path, shipped))
        return 2;
    rg__serve_handles(sv);
    rg__serve_start(sv, db_path, shipped); /* (a failure stops the loop it runs) */
    uv_run(&sv->loop, UV_RUN_DEFAULT);
    int rc = rg__serve_free(sv);
    if (!sv->exit_code)
        rg_log("info", "stopped");
    return rc ? 1 : sv->exit_code;
}
