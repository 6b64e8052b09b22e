/*
 * service.h - what the files of `regimen serve` share (private to service/):
 * the service's state and the functions one file calls in another.
 *   serve.c   the loop: group commit, wake-ups, publishing, reload, start/stop
 *   api.c     the HTTP endpoints (auth, events, alerts, transitions, stream, metrics)
 *   config.c  the configuration file
 *   evaluate.c the evaluation threads (the loop hands them jobs)
 *   worklist.c the staff page (GET /, its assets), stream tickets, explain and
 *             the patient timeline
 *   auth.c    users, API keys, roles, sign-in sessions, the configuration's reload
 *   audit_api.c the audit trail of requests (store/audit.h) and GET /v1/audit
 */
#ifndef RG_SERVICE_H
#define RG_SERVICE_H

#include "engine/engine.h"
#include "core/fhir.h"
#include "engine/sweep.h"
#include "store/holder.h"
#include "service/http.h"
#include "service/tls.h"
#include "service/webhook.h"
#include "service/auth.h"
#include "service/oidc.h"

#include <jansson.h>
#include <pthread.h>
#include <stdatomic.h>
#include <uv.h>
#include <limits.h>

#define RG_MAX_CLINICS 64
#define RG_MAX_TOKENS 8
#define RG_MAX_STREAMS 256
#define RG_TIMER_CAP_MS 60000 /* re-read the wall clock at least this often while waiting */
#define RG_RETRY_MS 1000      /* while the store fails, wake-ups are retried this often */
#define RG_CLOCK_STEP_MS 1000 /* a wall clock that moved this far off the monotonic one stepped */
#define RG_GROUP_EVENTS 1000  /* a group commit closes once it holds this many events */
#define RG_MAX_TICKETS 256    /* stream tickets not yet used nor expired */
#define RG_TICKET_MS 30000    /* how long a stream ticket can be used */
#define RG_SVC_ALERTS_PAGE 200  /* GET /v1/alerts: alerts per page unless ?limit= */
#define RG_SVC_ALERTS_MAX 1000  /* ... and at most */
#define RG_SVC_STREAM_PAGE 100  /* transitions of a stream's backlog sent at a time */
#define RG_SVC_STREAM_PAGE_BYTES 32768 /* ... or fewer, once they make this many bytes */
#define RG_LEASE_MS 1000      /* a worker tries the leases nobody holds this often */
#define RG_SVC_CAUSE 128      /* a transition's cause, as recorded ("key ehr-feed (integration)") */
/* SIGTERM: a job still out this long after limits.deadline_ms (a thread held
 * in one C call the deadline cannot interrupt) is left behind, the service
 * stops without it (its patients' events are stored: evaluated at the next
 * start) */
#define RG_STOP_GRACE_MS 1000

typedef struct rg_svc_clinic {
    char name[RG_EVENT_MAX_CLINIC + 1];
    char dir[PATH_MAX];
    char *tokens[RG_MAX_TOKENS];
    int ntokens;
    char *webhook;      /* URL, or NULL */
    rg_webhook_key hook_keys[RG_WEBHOOK_KEYS]; /* its signing secrets (webhook.secret(s)) */
    int nhook_keys;
    rg_oidc *oidc; /* its identity provider's tokens (clinics.X.oidc), or NULL */
    int64_t last_cseq; /* last transition pushed to streams */
    int fresh; /* may have transitions after last_cseq: read at the next publish */
    uint64_t events[5]; /* stored, duplicate, conflict, rejected, corrected */
    uint64_t future;    /* of those stored: dated ahead of the clock (limits.future_skew_minutes) */
    uint64_t opened, resolved;
    int refused; /* the last reload of its protocols was refused */
    int check_open; /* its regimen.protocol-check alert is open (what check refuses, at start) */
    uint64_t live_fp; /* rg_clinic_fingerprint of what runs: a reload of the same skips the gate */
    int held;    /* this worker holds its lease: it evaluates it and sends its webhook */
    /* back-pressure while another worker holds it (limits.backlog_patients):
     * its due, unevaluated patients as last counted (up to the bound + 1),
     * when (monotonic ms), and the requests refused for it */
    int backlog;
    int64_t backlog_at;
    uint64_t busy;
    int64_t release_at; /* monotonic ms its quarantined protocols are all out (0: none) */
    int quarantined;    /* its protocols quarantined now (on whichever thread) */
    /* evaluation (evaluate.c): the generation of its protocols (bumped when a
     * load goes live; each thread takes the copy the gate loaded for it,
     * rg_svc_pool_offer, before its next job),
     * its job out on a thread (NULL: none), what its next job is to do: the
     * patients of stored requests (and the requests answered after it), and
     * a wake-up (advance its due patients) */
    unsigned gen;
    struct rg_svc_job *job;
    char (*want)[RG_EVENT_MAX_ID + 1];
    char (*want_by)[RG_SVC_CAUSE]; /* who asked for each (rg_transition.cause), as want */
    int nwant, wake;
    size_t cap_want;
    char wake_by[RG_SVC_CAUSE]; /* what the wake-up is for: "clock", "system: start-up", ... */
    int wake_keep;              /* ... set by a reload or an activation: kept by rg__catch_up */
    long woken; /* due patients evaluated in the wake-up under way (for the log) */
    struct rg_svc_pending *waiting, **waiting_tail;
    /* "protocol_changes": "approval": the version from the store that runs
     * (its id, "" for none: the directory as at start) and the private
     * directory it was written to (protocols_live.c) */
    char version[65], version_root[PATH_MAX];
    int version_new; /* taken up, not yet loaded */
    /* its shadow version as the store has it ("" for none; protocols_live.c)
     * and since when; the shadow's own store and engine, which only the
     * thread running the clinic's job touches (evaluate.c) */
    char shadow[65];
    rg_time shadow_since;
    struct rg_svc_shadow *shadow_run;
    /* removed from the configuration by a reload: served no more (no
     * identity of its, no lease, stream, webhook nor evaluation); its data
     * stays in the store, and the slot (name and index never change, the
     * evaluation threads read them) comes back if a reload lists it again */
    int gone;
} rg_svc_clinic;

/* A quarantine begun or ended during an evaluation, for its system alert
 * (regimen.protocol-quarantined), stored once the evaluation's transaction
 * is done (serve.c, rg__on_quarantine_note). */
typedef struct rg_svc_qnote {
    int clinic, open;
    char protocol[128], why[700];
} rg_svc_qnote;
#define RG_SVC_QNOTES 32

/* A transition stream. While its backlog is sent, a page at a time as the
 * client reads (api.c), last_cseq is RG_SVC_PAGING, so that the transitions
 * serve.c publishes skip it, and next is where the backlog goes on; once the
 * backlog is sent, last_cseq is the last transition sent. */
typedef struct rg_svc_stream {
    rg_http_conn *conn;
    int clinic;
    int64_t last_cseq, next;
    rg_svc_who who; /* closed when it is no longer valid (reload, sign out, expiry) */
} rg_svc_stream;
#define RG_SVC_PAGING INT64_MAX

/* A POST /v1/events waiting for its group commit (its conn and req stay
 * valid until it is answered). */
typedef struct rg_svc_pending {
    struct rg_svc_pending *next; /* once stored: in its clinic's waiting list, or a job's */
    rg_http_conn *conn;
    int clinic;
    json_t *items;   /* the events, an array; NULL when evs holds them */
    rg_event *evs;   /* the events read in one pass (rg_event_parse_body), valid */
    size_t nevs;
    json_t *results; /* per-event outcomes, filled in the group's transaction */
    rg_buf text;     /* the same as JSON text (the array's items) when evs held the events */
    uint64_t counts[5]; /* by outcome, as rg_svc_outcomes */
    uint64_t future;    /* stored, dated ahead of the clock */
    char source[160];
    char who[RG_SVC_CAUSE]; /* who sent it: its transitions' cause */
    rg_fhir_import *fhir; /* POST /v1/fhir: the entries the events came from */
    char (*patients)[RG_EVENT_MAX_ID + 1]; /* whose evaluation it waits for, once stored */
    int npatients;
} rg_svc_pending;

/* POST /v1/fhir of a clinic whose clinic.lua has a fhir.map: the mapping
 * runs on an evaluation thread (its Lua state is the thread's), all its
 * calls under one budget of limits.deadline_ms; the events it makes then
 * take the path of POST /v1/events (api.c, rg_svc_fhir_mapped). */
typedef struct rg_svc_fhir_job {
    rg_http_conn *conn; /* answered once the job is back */
    json_t *bundle;     /* the request's body */
    char source[160];   /* rg_svc_pending.source */
    char who[100];      /* rg_svc_pending.who */
    /* the thread's answer */
    rg_fhir_import *im;
    int rc;
    char msg[4096];
} rg_svc_fhir_job;

/* A clinic's work for an evaluation thread (evaluate.c). The loop fills the
 * first part and owns the job again once the thread hands it back. A job
 * with fhir set is a mapping job and nothing else: it does not touch the
 * store (so it is not the clinic's one job out, c->job). */
#define RG_SVC_JOB_PROTOS 64
typedef struct rg_svc_job {
    struct rg_svc_job *next;
    int clinic;
    unsigned gen; /* of the clinic's protocols */
    uint64_t fp;  /* ... and their files' fingerprint (live_fp) when handed out */
    rg_limits limits;      /* the service's when handed out (a reload may change them): */
    rg_budget_opts budget; /* the thread's engine takes them before the job */
    rg_time until; /* the wall clock when it was handed out: what it advances to */
    char (*patients)[RG_EVENT_MAX_ID + 1]; /* advanced to until, all of them */
    char (*patients_by)[RG_SVC_CAUSE];     /* ... each for whom (their transitions' cause) */
    int npatients;
    char wake_by[RG_SVC_CAUSE]; /* the cause of the wake-up part's transitions */
    int wake;               /* then the clinic's due patients, for a while */
    rg_svc_pending *reqs;   /* answered once its log is committed */
    /* set by the loop when a request for the clinic comes while the job is
     * out: the wake-up part hands back soon (evaluate.c, RG__YIELD_MS) */
    atomic_int asked;
    char shadow[65];        /* the clinic's shadow version to run too ("": none) */
    rg_time shadow_since;
    rg_svc_fhir_job *fhir;  /* a mapping job: only this */
    int abandoned; /* (under the pool's mutex) left behind by a stop: freed when it comes back */
    /* the thread's answer */
    int rc;        /* RG_OK, or the store error that stopped it */
    int evaluated; /* every one of patients was */
    int more;      /* some of the clinic's patients may still be due */
    int yielded;   /* its wake-up part was cut short for waiting requests */
    long lent;     /* runs of its patients other threads evaluated (evaluate.c, rg__shared) */
    long woken;    /* due patients advanced */
    rg_wlog log;   /* its writes, for the loop to apply */
    rg_engine_stats stats; /* what it added to its engine's */
    struct {
        char id[96];
        uint64_t evaluations;
        double seconds;
    } protos[RG_SVC_JOB_PROTOS]; /* what it added, per protocol */
    int nprotos;
} rg_svc_job;

/* A clinic's reload gate, run off the loop (reload.c): the loop fills the
 * first part, the gate's thread the answer. */
typedef struct rg_svc_gate {
    struct rg_svc_gate *next;
    int clinic;
    char dir[PATH_MAX + 16], shipped[PATH_MAX + 16]; /* what it loads ("": no shipped root) */
    uint64_t fp;                                     /* their rg_clinic_fingerprint */
    /* the answer */
    int rc;              /* RG_OK: passed, and loaded */
    char err[4096];      /* why not */
    rg_clinic *loaded;   /* for the loop's engine (rg_engine_set_clinic_loaded) */
    rg_limits limits;    /* the sandbox limits it loads under (the loop's, at submit:
                          * a reload may change those while the gate runs) */
    rg_clinic **copies;  /* ncopies more, one for each evaluation thread: all of them
                          * loaded from the files the gate passed (rg_svc_pool_offer) */
    int ncopies;
    double ms;           /* the gate and the load took */
} rg_svc_gate;

/* A stream ticket (POST /v1/stream-tickets): lets one EventSource, which
 * cannot send the token, open the clinic's stream once. */
typedef struct rg_svc_ticket {
    char id[65]; /* 32 random bytes, hex */
    char clinic[RG_EVENT_MAX_CLINIC + 1];
    uint64_t expires; /* uv_now() */
    rg_svc_who who;   /* who asked: the stream is theirs */
} rg_svc_ticket;

typedef struct rg_svc_audit rg_svc_audit;
typedef struct rg_svc_notifier rg_svc_notifier;

typedef struct rg_svc {
    uv_loop_t loop;
    rg_store *st;     /* the loop's connection: the one writer, and the GET routes' reads */
    rg_engine *eng;   /* the loop's engine: loads (checks) protocols, zones; never evaluates */
    struct rg_svc_pool *pool; /* the evaluation threads (evaluate.c) */
    struct rg_svc_gates *gates; /* the reload gate's thread (reload.c) */
    int gating;       /* clinics whose gate is out: a reload meanwhile waits for them */
    int reload_again; /* a reload was asked while gating: run once they are back */
    int eval_threads;         /* limits.evaluation_threads (0: the processors available) */
    int njobs;                /* jobs out on the threads */
    rg_svc_job *returned;     /* jobs back from them, applied in the next group */
    rg_engine_stats eval_stats; /* the threads' engines', added up */
    rg_error_fn on_eval_error;
    /* the quarantine hook of the threads' engines (serve.c, thread-safe) */
    rg_quarantine_fn budget_hook;
    rg_http_server *http;
    rg_webhooks *hooks;
    rg_svc_audit *audit;      /* audit_api.c; NULL before start and after shutdown */
    rg_svc_notifier *notifier; /* notifier.c; NULL before start and after shutdown */
    int audit_retention_days; /* audit.retention_days; 0: kept for ever */
    char host[64], shipped[PATH_MAX];
    int port;
    /* listen.certificate and listen.key: TLS (tls.c), reloaded on SIGHUP;
     * without them only loopback, unless behind_tls_proxy */
    char *tls_cert, *tls_key;
    int behind_tls_proxy;
    rg_tls *tls;
    rg_svc_clinic clinics[RG_MAX_CLINICS];
    int nclinics;
    rg_limits limits;
    rg_http_limits http_limits;
    int max_events;
    int backlog_max; /* limits.backlog_patients (0: no back-pressure) */
    /* streams and stream tickets (limits.max_streams_per_clinic, ...) */
    int max_streams_clinic, max_streams_token, max_tickets_clinic;
    size_t history_cache; /* bytes of compiled histories kept (limits.history_cache_mb) */
    rg_time future_skew;  /* limits.future_skew_minutes (0: the default; negative: no check) */
    rg_budget_opts budget; /* limits.clinic_cpu_ms and limits.quarantine_* */
    rg_qboard *qboard;     /* budget.board: one quarantine for every evaluation thread */
    int approval; /* "protocol_changes": "approval": clinics run their active version (protocols_live.c) */
    uv_timer_t wake, reload_delay, lag;
    uv_timer_t release; /* at the end of a quarantine: the clinic's patients re-evaluated */
    uv_timer_t qnote;   /* quarantine notes to store as system alerts (next loop turn) */
    uv_timer_t stop_grace; /* SIGTERM: jobs still out after deadline + RG_STOP_GRACE_MS are left */
    /* the engines' quarantine hook runs on the evaluation threads: qmu
     * guards qnotes, nqnotes and the clinics' release_at and quarantined,
     * and qasync wakes the loop to arm the timers (serve.c, rg__on_qasync) */
    rg_svc_qnote qnotes[RG_SVC_QNOTES];
    int nqnotes;
    pthread_mutex_t qmu;
    uv_async_t qasync;
    int qasync_open; /* under qmu: qasync may be sent to */
    uv_signal_t sighup, sigterm, sigint, notice;
    rg_holder *holder;     /* our lock on the database: one service per file */
    /* many workers on one PostgreSQL store: leases tried every RG_LEASE_MS,
     * other workers' writes signalled on notice_fd (rg_store_changes_fd; -1
     * on SQLite, where the holder's signal says it) */
    uv_timer_t lease_tick;
    uv_poll_t notice_poll;
    uv_prepare_t notice_drain; /* before the loop sleeps: notices libpq kept */
    uv_idle_t notice_again;    /* ...and, after one, no sleep until none is left */
    int notice_fd, nheld, nworkers; /* nworkers: seen at the last lease tick */
    uint64_t leases_taken, leases_released;
    uv_fs_event_t watch[RG_MAX_CLINICS + 2];
    char watched[RG_MAX_CLINICS + 2][PATH_MAX]; /* the directory of watch[i] */
    int nwatch;
    rg_svc_stream streams[RG_MAX_STREAMS];
    int nstreams;
    rg_svc_ticket tickets[RG_MAX_TICKETS];
    int ntickets;
    int stopping, closing, exit_code; /* closing: rg__stop_now ran */
    char config_path[PATH_MAX];  /* re-read by rg_svc_reload */
    char reload_by[RG_SVC_CAUSE]; /* who asked for the reload under way (transitions' cause) */
    struct rg_svc_auth *auth;    /* auth.c: identities, sessions, sign-in throttle */
    rg_time armed_for; /* the due moment the wake timer was armed for */
    rg_time wake_next; /* the earliest wake-up or snooze expiry last read (/metrics) */
    /* group commit (rg__flush): queued requests, a wake-up pass in progress
     * (a page of due patients per group) */
    uv_check_t flush_check;
    uv_idle_t flush_idle; /* keeps the loop from blocking while work is queued */
    rg_svc_pending *pending;
    int npending, wake_pending;
    size_t cap_pending;
    int wake_failed; /* the last wake-up pass failed: retried after RG_RETRY_MS */
    int wal_trouble; /* the WAL's checkpoints were in trouble at the last look (rg__wal_watch) */
    int catching_up; /* the start-up's catch-up has jobs out: "caught up" said when done */
    /* metrics */
    uint64_t reloads, reload_failures, db_errors, wakeups, groups, group_requests, notices;
    uint64_t wake_yields; /* jobs whose wake-up part handed back early for requests */
    uint64_t shared_runs; /* runs of a job's patients evaluated by another thread */
    double lateness_sum, lateness_max, loop_lag;
    uint64_t lateness_count, lateness_buckets[6];
    uint64_t lag_last;
    rg_time lag_wall; /* the wall clock at lag_last: a step shows as a difference */
} rg_svc;


/* The outcomes of an event, indexed by rg_put with 3 for a refused event
 * (the order of rg_svc_clinic.events); the bounds (seconds) of the wake-up lateness histogram. */
extern const char *const rg_svc_outcomes[5];
extern const double rg_svc_late_bounds[6];

/* protocols_live.c ("protocol_changes": "approval", docs/governance.md):
 * reads each clinic's version in force from the store and, where it is not
 * the one the clinic runs, writes it out for the loader; returns how many
 * clinics changed (their reload is the caller's, as for a file saved). */
int rg_svc_versions_take(rg_svc *sv);
/* Each clinic's shadow version as the store has it now (any mode; also
 * done by rg_svc_versions_take): its next job runs or stops it. */
void rg_svc_shadows_take(rg_svc *sv);
/* evaluate.c: frees the clinics' shadow runs (the threads stopped). */
void rg_svc_shadows_free(rg_svc *sv);
/* The directory and shipped root clinic i loads: its version's, or the
 * configured ones. */
void rg_svc_clinic_source(rg_svc *sv, int i, const char **dir, const char **shipped);
/* The same into the caller's buffers d and s (size bytes each), for the
 * evaluation threads, which load what the loop's engine loaded. */
void rg_svc_clinic_source_r(rg_svc *sv, int i, char *d, char *s, size_t size, const char **dir,
                            const char **shipped);
void rg_svc_versions_free(rg_svc *sv);
/* protocols_api.c: /v1/protocols/versions...; 0 when path is not one of
 * its routes (answered otherwise). */
int rg_svc_protocols_route(rg_svc *sv, int ci, struct rg_http_conn *c,
                           const struct rg_http_req *req, const rg_svc_who *w);

/* serve.c: the loop */
void rg_svc_arm(rg_svc *sv);        /* re-arm the wake timer at the earliest wake-up */
/* Seconds a client should wait before sending clinic ci's events again (a
 * 503 with Retry-After): its lease is another worker's and that worker's
 * backlog of due patients is over limits.backlog_patients; 0: take them. */
int rg_svc_backlog_wait(rg_svc *sv, int ci);
void rg_svc_flush_soon(rg_svc *sv); /* run a group commit after this loop iteration */
/* SIGHUP and POST /v1/admin/reload: the whole configuration (listen and
 * TLS, limits, clinics added and removed, their webhooks, users, keys and
 * roles), then the protocols; by and role name who asked (for the log and
 * the audit trail). A configuration that cannot be applied changes nothing:
 * RG_EINVAL with err naming file, field and what is expected. */
int rg_svc_reload(rg_svc *sv, const char *by, const char *role, char *err, size_t errlen);

/* evaluate.c: the evaluation threads. start makes nthreads threads, each
 * with its own connection to db and its own engine (a failure is said in
 * err); submit queues a job; done takes the jobs handed back (a list);
 * halt makes the threads stop at their next patient; close closes the
 * loop handle; free (after the loop ended) joins and frees them. */
int rg_svc_pool_start(rg_svc *sv, const char *db, int nthreads, char *err, size_t errlen);
/* The store the threads connect to (a SQLite path or a PostgreSQL URL):
 * for work off the loop that needs a connection of its own. */
const char *rg_svc_pool_db(rg_svc *sv);
void rg_svc_pool_submit(rg_svc *sv, rg_svc_job *j);
rg_svc_job *rg_svc_pool_done(rg_svc *sv);
void rg_svc_pool_halt(rg_svc *sv);
/* A stop that waited RG_STOP_GRACE_MS past the deadline: the jobs still out
 * (running, held in a C call; or queued behind them) are left behind, up to
 * max of them into out (those running are marked abandoned: the thread may
 * still finish them, and they are freed when they come back; those queued
 * are the caller's); returns how many. The threads running them are not
 * joined by rg_svc_pool_free. */
int rg_svc_pool_abandon(rg_svc *sv, rg_svc_job **out, int max);
void rg_svc_pool_close(rg_svc *sv);
int rg_svc_pool_free(rg_svc *sv); /* 1: a thread was left behind (still running) */
void rg_svc_pool_cache_stats(rg_svc *sv, rg_hcache_stats *s);
/* The number of evaluation threads (0 before the start). */
int rg_svc_pool_size(rg_svc *sv);
/* The protocols of clinic i that went live on the loop, one copy per
 * thread (copies[k] for thread k, n of them: taken, the array too): each
 * thread runs its copy from its next job of the clinic (a copy offered
 * before and not yet taken is freed). Threads never load the clinic's
 * files themselves after the start (those may have changed since the gate
 * passed them), but for a new engine after a store error, and only files
 * whose fingerprint is the live one (evaluate.c, rg__load). */
void rg_svc_pool_offer(rg_svc *sv, int i, rg_clinic **copies, int n);
/* api.c: a mapping job back on the loop: its request answered (an error,
 * or 503 when stopping) or queued for the group commit; frees the job. */
void rg_svc_fhir_mapped(rg_svc *sv, rg_svc_job *j);
/* reload.c: the reload gate's thread. start makes it (on_done runs on the
 * loop when answers are back); submit queues one clinic's gate (RG_ENOMEM:
 * no thread); done takes the answers, in the order they were submitted;
 * close closes the loop handle; free (after the loop ended) joins the
 * thread, or leaves it behind when a gate is under way. */
int rg_svc_gates_start(rg_svc *sv, void (*on_done)(rg_svc *sv));
int rg_svc_gates_submit(rg_svc *sv, rg_svc_gate *g);
rg_svc_gate *rg_svc_gates_done(rg_svc *sv);
void rg_svc_gate_free(rg_svc_gate *g);
void rg_svc_gates_close(rg_svc *sv);
void rg_svc_gates_free(rg_svc *sv);

/* serve.c: frees a job (its requests must have been answered) */
void rg_svc_job_free(rg_svc_job *j);

/* api.c: the HTTP endpoints */
void rg_svc_handle(void *ud, rg_http_conn *c, const rg_http_req *req); /* rg_http_handler */
void rg_svc_reply_json(rg_http_conn *c, int status, json_t *body);     /* steals body */
void rg_svc_unavailable(rg_svc *sv, rg_http_conn *c, const char *msg); /* 503, counted */

/* api.c: the value of name in a query string, decoded, or NULL; buffers
 * hold RG_SVC_QUERY_MAX + 1 bytes (longer values are refused with 400) */
#define RG_SVC_QUERY_MAX 256
const char *rg_svc_query(const char *q, const char *name, char *buf, size_t len);

/* worklist.c: GET of the page and its assets (1 when path is one of them,
 * answered without a token); the clinic a stream ticket opens (used up), or
 * RG_ENOTFOUND (no such ticket, or its clinic is gone), and the token that asked for it; the endpoints of the worklist, once authenticated */
int rg_svc_www(rg_http_conn *c, const char *path);
int rg_svc_ticket_use(rg_svc *sv, const char *ticket, rg_svc_who *w);
void rg_svc_post_ticket(rg_svc *sv, int ci, rg_http_conn *c, const rg_svc_who *w);
void rg_svc_get_explain(rg_svc *sv, int ci, rg_http_conn *c, const char *key);
void rg_svc_get_timeline(rg_svc *sv, int ci, rg_http_conn *c, const char *patient);

/* report_api.c: GET /v1/reports/compliance, the esketamine compliance
 * report of the token's clinic */
void rg_svc_get_compliance(rg_svc *sv, int ci, rg_http_conn *c, const rg_http_req *req);

/* audit_api.c: the audit trail. start once listening (the respond hook
 * gives each request's outcome); stop when the HTTP server closed (what
 * waits is stored). begin notes a request to a /v1/ route of clinic ci by
 * who (NULL: the bearer token's id) in role; patient and items add the
 * patients it concerns; note records what no request did (a reload). */
int rg_svc_audit_start(rg_svc *sv);
void rg_svc_audit_stop(rg_svc *sv);
void rg_svc_audit_begin(rg_svc *sv, rg_http_conn *c, const rg_http_req *req, int ci,
                        const char *who, const char *role);
void rg_svc_audit_patient(rg_svc *sv, rg_http_conn *c, const char *patient);
void rg_svc_audit_items(rg_svc *sv, rg_http_conn *c, json_t *items);
/* The answered entries appended inside the service's group commit (its
 * transaction open), and after its end whether it committed them. */
int rg_svc_audit_carry(rg_svc *sv);
void rg_svc_audit_carried(rg_svc *sv, int committed);
void rg_svc_audit_note(rg_svc *sv, const char *who, const char *role, const char *clinic,
                       const char *route, const char *outcome);
void rg_svc_get_audit(rg_svc *sv, int ci, rg_http_conn *c, const rg_http_req *req);

/* notifier.c: the notification policies' steps (docs/notifications.md).
 * plan: inside the group commit's transaction, after a write log was
 * applied, stores the steps of the patients it moved (>0: some are new, so
 * kick after the commit); start/close the sender (a timer on the loop, the
 * sends on the thread pool); kick: look for due steps now. */
int rg_svc_notify_plan(rg_svc *sv, const rg_wlog *lg);
int rg_svc_notify_start(rg_svc *sv);
void rg_svc_notify_kick(rg_svc *sv);
void rg_svc_notify_close(rg_svc *sv);

/* config.c: reads the configuration file into sv; an error names file and field */
int rg_svc_load_config(rg_svc *sv, const char *path, char *err, size_t errlen);

#endif
