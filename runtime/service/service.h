/*
 * service.h - what the files of `regimen serve` share (private to service/):
 * the service's state and the functions one file calls in another.
 *   serve.c   the loop: group commit, wake-ups, publishing, reload, start/stop
 *   api.c     the HTTP endpoints (auth, events, alerts, transitions, stream, metrics)
 *   config.c  the configuration file
 *   evaluate.c the evaluation threads (the loop hands them jobs)
 *   worklist.c the staff page (GET /, its assets), stream tickets, explain and
 *             the patient timeline
 */
#ifndef RG_SERVICE_H
#define RG_SERVICE_H

#include "engine.h"
#include "fhir.h"
#include "sweep.h"
#include "holder.h"
#include "http.h"
#include "webhook.h"

#include <jansson.h>
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
#define RG_LEASE_MS 1000      /* a worker tries the leases nobody holds this often */

typedef struct rg_svc_clinic {
    char name[RG_EVENT_MAX_CLINIC + 1];
    char dir[PATH_MAX];
    char *tokens[RG_MAX_TOKENS];
    int ntokens;
    char *webhook;      /* URL, or NULL */
    int64_t last_cseq; /* last transition pushed to streams */
    uint64_t events[5]; /* stored, duplicate, conflict, rejected, corrected */
    uint64_t opened, resolved;
    int refused; /* the last reload of its protocols was refused */
    int held;    /* this worker holds its lease: it evaluates it and sends its webhook */
    /* evaluation (evaluate.c): the generation of its protocols (bumped by a
     * reload that changed them; the threads load it before their next job),
     * its job out on a thread (NULL: none), what its next job is to do: the
     * patients of stored requests (and the requests answered after it), and
     * a wake-up (advance its due patients) */
    unsigned gen;
    struct rg_svc_job *job;
    char (*want)[RG_EVENT_MAX_ID + 1];
    int nwant, cap_want, wake;
    long woken; /* due patients evaluated in the wake-up under way (for the log) */
    struct rg_svc_pending *waiting, **waiting_tail;
} rg_svc_clinic;

typedef struct rg_svc_stream {
    rg_http_conn *conn;
    int clinic;
    int64_t last_cseq;
} rg_svc_stream;

/* A POST /v1/events waiting for its group commit (its conn and req stay
 * valid until it is answered). */
typedef struct rg_svc_pending {
    struct rg_svc_pending *next; /* once stored: in its clinic's waiting list, or a job's */
    rg_http_conn *conn;
    int clinic;
    json_t *items;   /* the events, an array */
    json_t *results; /* per-event outcomes, filled in the group's transaction */
    uint64_t counts[5]; /* by outcome, as rg_svc_outcomes */
    char source[160];
    rg_fhir_import *fhir; /* POST /v1/fhir: the entries the events came from */
    char (*patients)[RG_EVENT_MAX_ID + 1]; /* whose evaluation it waits for, once stored */
    int npatients;
} rg_svc_pending;

/* A clinic's work for an evaluation thread (evaluate.c). The loop fills the
 * first part and owns the job again once the thread hands it back. */
#define RG_SVC_JOB_PROTOS 64
typedef struct rg_svc_job {
    struct rg_svc_job *next;
    int clinic;
    unsigned gen; /* of the clinic's protocols */
    rg_time until; /* the wall clock when it was handed out: what it advances to */
    char (*patients)[RG_EVENT_MAX_ID + 1]; /* advanced to until, all of them */
    int npatients;
    int wake;               /* then the clinic's due patients, for a while */
    rg_svc_pending *reqs;   /* answered once its log is committed */
    /* the thread's answer */
    int rc;        /* RG_OK, or the store error that stopped it */
    int evaluated; /* every one of patients was */
    int more;      /* some of the clinic's patients may still be due */
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

/* A stream ticket (POST /v1/stream-tickets): lets one EventSource, which
 * cannot send the token, open the clinic's stream once. */
typedef struct rg_svc_ticket {
    char id[65]; /* 32 random bytes, hex */
    char clinic[RG_EVENT_MAX_CLINIC + 1];
    uint64_t expires; /* uv_now() */
} rg_svc_ticket;

/* A re-raised alert, announced on the streams once its commit is done. */
typedef struct rg_svc_reraised {
    int clinic;
    char *key, *data;
} rg_svc_reraised;

typedef struct rg_svc {
    uv_loop_t loop;
    rg_store *st;     /* the loop's connection: the one writer, and the GET routes' reads */
    rg_engine *eng;   /* the loop's engine: loads (checks) protocols, zones; never evaluates */
    struct rg_svc_pool *pool; /* the evaluation threads (evaluate.c) */
    int eval_threads;         /* limits.evaluation_threads (0: the processors available) */
    int njobs;                /* jobs out on the threads */
    rg_svc_job *returned;     /* jobs back from them, applied in the next group */
    rg_engine_stats eval_stats; /* the threads' engines', added up */
    rg_error_fn on_eval_error;
    rg_http_server *http;
    rg_webhooks *hooks;
    char host[64], shipped[PATH_MAX];
    int port;
    rg_svc_clinic clinics[RG_MAX_CLINICS];
    int nclinics;
    rg_limits limits;
    rg_http_limits http_limits;
    int max_events;
    size_t history_cache; /* bytes of compiled histories kept (limits.history_cache_mb) */
    uv_timer_t wake, reload_delay, lag;
    uv_signal_t sighup, sigterm, sigint, notice;
    rg_holder *holder;     /* our lock on the database: one service per file */
    int64_t data_version;  /* PRAGMA data_version at the last notice */
    /* many workers on one PostgreSQL store: leases tried every RG_LEASE_MS,
     * NOTIFYs of other workers' writes read from notice_fd (-1 on SQLite) */
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
    rg_time armed_for; /* the due moment the wake timer was armed for */
    /* group commit (rg__flush): queued requests, a wake-up pass in progress
     * (a page of due patients per group), re-raises to announce */
    uv_check_t flush_check;
    uv_idle_t flush_idle; /* keeps the loop from blocking while work is queued */
    rg_svc_pending *pending;
    int npending, cap_pending, wake_pending;
    int wake_failed; /* the last wake-up pass failed: retried after RG_RETRY_MS */
    rg_svc_reraised *reraised;
    int nreraised, cap_reraised;
    /* metrics */
    uint64_t reloads, reload_failures, db_errors, wakeups, groups, group_requests, notices;
    double lateness_sum, lateness_max, loop_lag;
    uint64_t lateness_count, lateness_buckets[6];
    uint64_t lag_last;
    rg_time lag_wall; /* the wall clock at lag_last: a step shows as a difference */
} rg_svc;


/* The outcomes of an event, indexed by rg_put with 3 for a refused event
 * (the order of rg_svc_clinic.events); the bounds (seconds) of the wake-up lateness histogram. */
extern const char *const rg_svc_outcomes[5];
extern const double rg_svc_late_bounds[6];

/* serve.c: the loop */
void rg_svc_arm(rg_svc *sv);        /* re-arm the wake timer at the earliest wake-up */
void rg_svc_flush_soon(rg_svc *sv); /* run a group commit after this loop iteration */

/* evaluate.c: the evaluation threads. start makes nthreads threads, each
 * with its own connection to db and its own engine (a failure is said in
 * err); submit queues a job; done takes the jobs handed back (a list);
 * halt makes the threads stop at their next patient; close closes the
 * loop handle; free (after the loop ended) joins and frees them. */
int rg_svc_pool_start(rg_svc *sv, const char *db, int nthreads, char *err, size_t errlen);
void rg_svc_pool_submit(rg_svc *sv, rg_svc_job *j);
rg_svc_job *rg_svc_pool_done(rg_svc *sv);
void rg_svc_pool_halt(rg_svc *sv);
void rg_svc_pool_close(rg_svc *sv);
void rg_svc_pool_free(rg_svc *sv);
void rg_svc_pool_cache_stats(rg_svc *sv, rg_hcache_stats *s);
/* serve.c: frees a job (its requests must have been answered) */
void rg_svc_job_free(rg_svc_job *j);

/* api.c: the HTTP endpoints */
void rg_svc_handle(void *ud, rg_http_conn *c, const rg_http_req *req); /* rg_http_handler */
void rg_svc_reply_json(rg_http_conn *c, int status, json_t *body);     /* steals body */
void rg_svc_unavailable(rg_svc *sv, rg_http_conn *c, const char *msg); /* 503, counted */

/* api.c: the value of name in a query string, decoded, or NULL */
const char *rg_svc_query(const char *q, const char *name, char *buf, size_t len);

/* worklist.c: GET of the page and its assets (1 when path is one of them,
 * answered without a token); the clinic a stream ticket opens (used up), or
 * -1; the endpoints of the worklist, once authenticated */
int rg_svc_www(rg_http_conn *c, const char *path);
int rg_svc_ticket_use(rg_svc *sv, const char *ticket);
void rg_svc_post_ticket(rg_svc *sv, int ci, rg_http_conn *c);
void rg_svc_get_explain(rg_svc *sv, int ci, rg_http_conn *c, const char *key);
void rg_svc_get_timeline(rg_svc *sv, int ci, rg_http_conn *c, const char *patient);

/* config.c: reads the configuration file into sv; an error names file and field */
int rg_svc_load_config(rg_svc *sv, const char *path, char *err, size_t errlen);

#endif
