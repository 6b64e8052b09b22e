/*
 * evaluate.c - the service's evaluation threads: the loop thread only does
 * I/O and the store's writes, these threads run the protocols.
 *
 * The loop hands a clinic's work over as a job (rg_svc_job): the patients
 * its stored requests concern, and whether to advance its due patients
 * too. A clinic has at most one job out at a time, evaluated against a store
 * that already holds every write of its previous job (its requested patients
 * shared with the threads idle meanwhile, in runs whose logs join in order:
 * rg__shared; the rest of the job on its own thread); an idle thread takes the oldest job queued, leaving a
 * clinic's job to the thread that ran the clinic last when that one is idle
 * too (its engine keeps the rules' answers for the clinic's patients). Each thread
 * has its own store connection (SQLite WAL readers, or a PostgreSQL
 * session), its own engine and so its own Lua state per clinic and history
 * cache, and reads each patient in a read transaction of its own. What the
 * engine writes goes into the job's write log (rg_wlog, shared with the
 * parallel sweep, runtime/engine/sweep.c); the loop applies the logs it gets
 * back in its next group commit, through the store's one writer, and only
 * then answers the requests and publishes the transitions.
 *
 * A job comes back through a uv_async_t. Halting (SIGTERM) stops every
 * thread at its next patient: one evaluation at most, which the sandbox's
 * deadline bounds. Depends on engine.c, sweep.c (the write log), pthreads.
 *
 * A clinic's shadow version (docs/governance.md, "Shadow") runs in the same
 * job, after the active one: its own in-memory store holds the clinic's
 * events (taken in from the real store as they come) and its own alert
 * state, and its own engine evaluates them with rg_engine_advance, as
 * simulate does. Its transitions from the shadow's start on go into the
 * job's log as shadow rows (rg_wlog_shadow), which the loop writes to
 * shadow_transitions, never to the feed: no webhook, stream or worklist
 * hears of them. A job that finds another shadow (or none) builds it anew
 * (replaying the clinic's history) or drops it; a failure of the shadow is
 * logged and never touches the active evaluation.
 */
#include "service/service.h"
#include "core/digest.h"

#include "engine/governance.h"
#include "engine/gate.h"
#include "store/ingest.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define RG__PAGE 256   /* due patients read at once by a wake-up job */
#define RG__JOB_MS 250 /* a wake-up job hands back what it did after this long */
/* ... or, while requests wait for it (its own, or new ones for the
 * clinic), once its wake-up part has run this long and as long as its
 * requested patients took (a fair share for the due ones under a steady
 * stream of requests): requests are answered after the job's commit, so a
 * backlog of due patients would hold each POST up to RG__JOB_MS; the rest
 * of the backlog is the next job's */
#define RG__YIELD_MS 2
#define RG__PAGE_ASKED 32 /* due patients read at once while requests wait */

typedef struct rg__thread {
    struct rg_svc_pool *pool;
    pthread_t tid;
    int started, index;
    rg_store *st;
    rg_engine *eng;
    rg_wlog log; /* what eng writes; moved into the job it finishes */
    rg_svc_job *current; /* under mu: the job it runs */
    rg_svc_job *helping; /* under mu: the job whose patients it shares (rg__help) */
    int abandoned;       /* under mu: its job was left behind by a stop (never joined) */
    unsigned loaded[RG_MAX_CLINICS]; /* the generation of each clinic's protocols it runs */
    rg_clinic *offered[RG_MAX_CLINICS]; /* under mu: its copy of what went live since
                                         * (rg_svc_pool_offer), to run from its next job */
    rg_clinic *kept[RG_MAX_CLINICS]; /* what its engine ran before a store error (rg__disconnect) */
    rg_patient_page page;
    /* what other threads' engines added to the job it runs (rg__shared) */
    rg_engine_stats lent;
    uint64_t lent_evaluations[RG_SVC_JOB_PROTOS];
    double lent_seconds[RG_SVC_JOB_PROTOS];
    /* the patients of the job so far (open addressing): a patient evaluated
     * twice in one job would not see its first evaluation's writes, which
     * are in the log, not yet in the store */
    const char **seen;
    size_t cap_seen;
} rg__thread;

struct rg_svc_pool {
    rg_svc *sv;
    pthread_mutex_t mu;
    pthread_cond_t work;
    rg_svc_job *queue, **tail; /* FIFO of jobs not yet taken */
    /* under mu: per clinic, the thread that ran its last job (+1; 0: none).
     * Its engine keeps the rules' answers for the clinic's patients beside
     * their histories (engine.c, "kept answers"): an idle thread leaves a
     * clinic's job to that thread when it is idle too (rg__pick). */
    int owner[RG_MAX_CLINICS];
    struct rg__share *shares;  /* under mu: jobs' patients with runs left to take */
    pthread_cond_t shared;     /* a run of a share finished */
    rg_svc_job *done;          /* jobs handed back, for the loop */
    int stop;                  /* under mu: threads end when the queue is empty */
    int closed;                /* under mu: async is closed, not to be sent to */
    int abandoned;             /* under mu: some thread was left behind (the pool is never freed) */
    atomic_int halt;           /* read between patients: stop evaluating */
    uv_async_t async;
    rg__thread *threads;
    int nthreads;
    /* the thread (+1; 0: none known) that last evaluated a patient, by a
     * hash of its clinic and name (two patients may share a slot: a wrong
     * hint costs a stale cache, never a wrong answer): that thread takes a
     * shared job's run of the patient first (rg__take_run), since its
     * engine holds the patient's kept answers */
    atomic_uchar home[1 << 16];
    rg_hcache_stats *cache; /* per thread, under mu */
    char db[PATH_MAX];      /* what the threads connect to */
};

/* ---- a thread ------------------------------------------------------------------------ */

static int rg__halted(struct rg_svc_pool *pool)
{
    return atomic_load_explicit(&pool->halt, memory_order_relaxed);
}

/* 1 when patient was evaluated in this job already, else notes it (0);
 * the strings stay in the job or the page until the job ends. RG_ENOMEM:
 * memory. */
static int rg__seen(rg__thread *t, const char *patient, size_t nmax)
{
    if (t->cap_seen < 2 * nmax + 2) {
        size_t cap = 64;
        while (cap < 2 * nmax + 2)
            cap *= 2;
        const char **grown = calloc(cap, sizeof *grown);
        if (!grown)
            return RG_ENOMEM;
        /* (only at a job's start, when it is empty: see rg__run) */
        free(t->seen);
        t->seen = grown;
        t->cap_seen = cap;
    }
    uint64_t h = rg_fnv1a(RG_FNV1A_SEED, patient, strlen(patient));
    for (size_t i = h & (t->cap_seen - 1);; i = (i + 1) & (t->cap_seen - 1)) {
        if (!t->seen[i]) {
            t->seen[i] = patient;
            return 0;
        }
        if (!strcmp(t->seen[i], patient))
            return 1;
    }
}

static atomic_uchar *rg__home(struct rg_svc_pool *pool, const char *clinic, const char *patient)
{
    uint64_t h = rg_fnv1a(rg_fnv1a(RG_FNV1A_SEED, clinic, strlen(clinic) + 1), patient,
                          strlen(patient));
    return &pool->home[h & ((sizeof pool->home / sizeof pool->home[0]) - 1)];
}

/* One patient in a read transaction of its own (a snapshot that holds every
 * committed write of the clinic); what a failed evaluation recorded is cut
 * from the log, so a log holds whole patients only. */
static int rg__one(rg__thread *t, const char *clinic, const char *patient, rg_time until,
                   int pre)
{
    int n = t->log.n;
    size_t len = t->log.text.len;
    /* pre: its reads were taken ahead, in one snapshot (rg__ahead) */
    int rc = pre ? RG_OK : rg_store_begin_read(t->st);
    if (rc == RG_OK && pre) {
        rc = rg_engine_advance(t->eng, clinic, patient, until);
    } else if (rc == RG_OK) {
        rc = rg_engine_advance(t->eng, clinic, patient, until);
        /* (commit, not rollback, ends the read: a rollback would tell the
         * history cache that what it holds may never have been stored) */
        int crc = rg_store_commit(t->st);
        if (rc == RG_OK)
            rc = crc;
    }
    if (rc)
        rg_wlog_cut(&t->log, n, len);
    else /* (its kept answers are this thread's now) */
        atomic_store_explicit(rg__home(t->pool, clinic, patient), (unsigned char)(t->index + 1),
                              memory_order_relaxed);
    return rc;
}

/* Reads ahead what evaluating names[0..n) will read (PostgreSQL: one round
 * trip for the lot, rg_store_prefetch): 1 when done, 0 when the store reads
 * as it goes (SQLite), <0 on an error. */
static int rg__ahead(rg__thread *t, const char *clinic, const char *const *names, int n)
{
    int64_t after[RG__PAGE];
    if (n > RG__PAGE)
        n = RG__PAGE;
    for (int i = 0; i < n; i++)
        after[i] = rg_engine_history_after(t->eng, clinic, names[i]);
    return rg_store_prefetch(t->st, clinic, names, after, n);
}

/* t's engine and store go (a store error: it connects anew before its next
 * work). The protocols the engine ran are kept for the next one (rg__load):
 * the files may have changed since they went live, and a version a reload
 * refused must not be what the thread runs then. */
static void rg__disconnect(rg__thread *t)
{
    rg_svc *sv = t->pool->sv;
    for (int k = 0; t->eng && k < RG_MAX_CLINICS; k++) /* (loaded[k]: clinic k's name is set) */
        if (t->loaded[k] && !t->kept[k])
            t->kept[k] = rg_engine_take_clinic(t->eng, sv->clinics[k].name);
    rg_engine_free(t->eng);
    rg_store_close(t->st);
    t->eng = NULL;
    t->st = NULL;
    memset(t->loaded, 0, sizeof t->loaded);
}

/* The thread's connection and engine, made anew (after a job failed on a
 * store error: a PostgreSQL session that ended, say); the protocols are
 * taken up again before the next job of each clinic (rg__load). */
static int rg__connect(rg__thread *t, char *err, size_t errlen)
{
    rg_svc *sv = t->pool->sv;
    rg__disconnect(t);
    rg_store_opts so = {.reader = 1}; /* (its writes go to the loop's, in the log) */
    int rc = rg_store_open(&t->st, t->pool->db, &so, err, errlen);
    if (rc)
        return rc;
    rg_engine_sink sink = rg_wlog_sink(&t->log);
    rg_engine_opts eo = {.limits = sv->limits, .shipped = sv->shipped[0] ? sv->shipped : NULL,
                         .on_error = sv->on_eval_error, .ud = sv, .sink = &sink,
                         .history_cache_bytes = sv->history_cache / (size_t)t->pool->nthreads,
                         .budget = sv->budget};
    /* limits.clinic_cpu_ms and quarantine_*: the hook runs on this thread
     * (serve.c's records under a mutex and wakes the loop) */
    eo.budget.on_quarantine = sv->budget_hook;
    eo.budget.ud = sv;
    if ((rc = rg_engine_new(&t->eng, t->st, &eo)))
        return rg_fail(err, errlen, rc, "evaluation thread %d: cannot make its engine", t->index);
    return RG_OK;
}

/* ---- the shadow version --------------------------------------------------------------- */

struct rg_svc_shadow {
    char id[65];
    rg_time since;
    char root[PATH_MAX]; /* its files, written out */
    rg_store *st;        /* ":memory:": the clinic's events, its state, its transitions */
    rg_engine *eng;
    int64_t events_seq;  /* the real store's events taken in, up to */
    int64_t copied_seq;  /* its transitions handed to the log, up to */
    int broken;          /* could not be built: nothing runs until it changes */
    int started;         /* every patient advanced once */
};

static void rg__shadow_free(struct rg_svc_shadow *sh)
{
    if (!sh)
        return;
    rg_engine_free(sh->eng);
    rg_store_close(sh->st);
    rg_gov_remove(sh->root);
    free(sh);
}

static int rg__shadow_file(void *ud, const char *path, const char *content, size_t len)
{
    return rg_gov_add(ud, path, content, len);
}

typedef struct rg__shadow_in {
    struct rg_svc_shadow *sh;
    rg_ingest_counts counts;
    int rc;
} rg__shadow_in;

static int rg__shadow_event(void *ud, int64_t seq, const char *body, size_t len)
{
    rg__shadow_in *in = ud;
    int rc = rg_ingest_one(in->sh->st, body, len, "store", (long)seq, &in->counts, NULL, NULL);
    if (rc < 0) {
        in->rc = rc;
        return 1;
    }
    in->sh->events_seq = seq;
    return 0;
}

typedef struct rg__shadow_out {
    struct rg_svc_shadow *sh;
    rg_wlog *log;
    int rc;
} rg__shadow_out;

static int rg__shadow_copy(void *ud, const rg_transition *t)
{
    rg__shadow_out *o = ud;
    o->sh->copied_seq = t->seq;
    if (t->at >= o->sh->since && (o->rc = rg_wlog_shadow(o->log, o->sh->id, t)))
        return 1;
    return 0;
}

/* A new shadow of clinic: its files from the store, its own store and
 * engine (NULL with why on failure). */
static struct rg_svc_shadow *rg__shadow_new(rg__thread *t, const char *clinic, const char *id,
                                            rg_time since, char *why, size_t whylen)
{
    rg_svc *sv = t->pool->sv;
    struct rg_svc_shadow *sh = calloc(1, sizeof *sh);
    if (!sh) {
        snprintf(why, whylen, "out of memory");
        return NULL;
    }
    snprintf(sh->id, sizeof sh->id, "%s", id);
    sh->since = since;
    rg_gov_files files = {0};
    int rc = rg_store_protoset_files(t->st, clinic, id, rg__shadow_file, &files);
    if (rc == RG_OK && files.n == 0)
        rc = RG_ENOTFOUND;
    if (rc)
        snprintf(why, whylen, "reading its files: %s", rg_strerror(rc));
    else
        rc = rg_gov_materialize(&files, sh->root, sizeof sh->root, why, whylen);
    rg_gov_free(&files);
    if (rc) {
        sh->root[0] = '\0';
        sh->broken = 1;
        return sh;
    }
    char dir[PATH_MAX + 16], shipped[PATH_MAX + 16];
    snprintf(dir, sizeof dir, "%s/clinic", sh->root);
    snprintf(shipped, sizeof shipped, "%s/shipped", sh->root);
    rg_engine_opts eo = {.limits = sv->limits, .shipped = shipped, .default_dir = dir};
    if ((rc = rg_store_open(&sh->st, ":memory:", NULL, why, whylen)) ||
        (rc = rg_engine_new(&sh->eng, sh->st, &eo)) ||
        (rc = rg_engine_set_clinic_from(sh->eng, clinic, dir, shipped, NULL, why, whylen))) {
        if (!why[0])
            snprintf(why, whylen, "%s", rg_strerror(rc));
        sh->broken = 1;
    }
    return sh;
}

/* Runs the clinic's shadow version over what came since its last job: the
 * new events, the job's patients and its own due patients, to j->until;
 * its new transitions go to t->log as shadow rows. */
static void rg__shadow_step(rg__thread *t, rg_svc_job *j, const char *clinic)
{
    rg_svc *sv = t->pool->sv;
    struct rg_svc_shadow *sh = sv->clinics[j->clinic].shadow_run;
    if (sh && (strcmp(sh->id, j->shadow) || sh->since != j->shadow_since)) {
        rg__shadow_free(sh);
        sh = sv->clinics[j->clinic].shadow_run = NULL;
    }
    if (!j->shadow[0])
        return;
    char why[1024] = "";
    if (!sh) {
        sh = sv->clinics[j->clinic].shadow_run =
            rg__shadow_new(t, clinic, j->shadow, j->shadow_since, why, sizeof why);
        if (sh && sh->broken)
            rg_log("error", "clinic %s: the shadow version %.12s cannot run: %s", clinic,
                   j->shadow, why);
        if (!sh || sh->broken)
            return;
    }
    if (sh->broken)
        return;
    rg__shadow_in in = {.sh = sh, .counts = {.skew = -1}};
    int rc = rg_store_begin(sh->st);
    if (rc == RG_OK) {
        int frc = rg_store_each_event_body_after(t->st, clinic, sh->events_seq,
                                                 rg__shadow_event, &in);
        rc = in.rc ? in.rc : frc < 0 ? frc : RG_OK;
        int crc = rg_store_commit(sh->st);
        rc = rc ? rc : crc;
    }
    for (int i = 0; i < j->npatients && rc == RG_OK && !rg__halted(t->pool); i++) {
        if ((rc = rg_store_begin(sh->st)) == RG_OK) {
            rc = rg_engine_advance(sh->eng, clinic, j->patients[i], j->until);
            int crc = rg_store_commit(sh->st);
            rc = rc ? rc : crc;
        }
    }
    if (rc == RG_OK && !rg__halted(t->pool)) {
        /* every patient due under the shadow (a first job: every patient) */
        long n = rg_engine_advance_all(sh->eng, sh->started ? j->until : RG_TIME_NONE,
                                       j->until);
        rc = n < 0 ? (int)n : RG_OK;
        sh->started = rc == RG_OK;
    }
    rg__shadow_out out = {.sh = sh, .log = &t->log};
    if (rc == RG_OK) {
        int frc = rg_store_each_transition(sh->st, sh->copied_seq, 0, rg__shadow_copy, &out);
        rc = out.rc ? out.rc : frc;
    }
    if (rc) {
        rg_log("error", "clinic %s: the shadow version %.12s stopped running: %s", clinic,
               sh->id, rg_strerror(rc));
        sh->broken = 1;
    }
}

void rg_svc_shadows_free(rg_svc *sv)
{
    for (int i = 0; i < sv->nclinics; i++) {
        rg__shadow_free(sv->clinics[i].shadow_run);
        sv->clinics[i].shadow_run = NULL;
    }
}

/* A mapping job (POST /v1/fhir, rg_svc_fhir_job): the Bundle converted
 * with the clinic's fhir settings as this thread loaded them, every
 * fhir.map call of it within one deadline (limits.deadline_ms in all). */
static void rg__map(rg__thread *t, rg_svc_job *j, rg_clinic *cl)
{
    rg_svc_fhir_job *f = j->fhir;
    rg_svc *sv = t->pool->sv;
    rg_fhir_opts fo = {.clinic = sv->clinics[j->clinic].name};
    if (rg__halted(t->pool)) { /* (answered 503 on the loop) */
        f->rc = RG_EIO;
        return;
    }
    if (!cl) { /* (the loop's engine has a map: never skipped silently) */
        f->rc = RG_EPROTOCOL;
        snprintf(f->msg, sizeof f->msg, "clinic %s: its fhir.map could not be run: the "
                 "evaluation thread could not load clinic.lua (see the log); nothing was stored",
                 fo.clinic);
        return;
    }
    rg_clinic_fhir_opts(cl, &fo);
    rg_clinic_fhir_budget(cl, sv->limits.deadline_ms);
    if (!(f->im = calloc(1, sizeof *f->im)))
        f->rc = RG_ENOMEM;
    else if ((f->rc = rg_fhir_bundle(f->im, f->bundle, &fo, f->msg, sizeof f->msg))) {
        free(f->im);
        f->im = NULL;
    }
    rg_clinic_fhir_budget(cl, 0);
}

/* Whether the wake-up part of job j (begun at tw, the job at t0) hands
 * back what it did now: a stop, RG__JOB_MS in all, or, while requests wait
 * for the job, RG__YIELD_MS of it and as long as the part before it. */
static int rg__hand_back(rg__thread *t, rg_svc_job *j, uint64_t t0, uint64_t tw)
{
    uint64_t now = uv_hrtime(), share = tw - t0;
    if (rg__halted(t->pool) || now - t0 > (uint64_t)RG__JOB_MS * 1000000)
        return 1;
    if (share < (uint64_t)RG__YIELD_MS * 1000000)
        share = (uint64_t)RG__YIELD_MS * 1000000;
    if (now - tw > share &&
        (j->reqs || atomic_load_explicit(&j->asked, memory_order_relaxed))) {
        j->yielded = 1;
        return 1;
    }
    return 0;
}

/* The limits and the protocols of job j's clinic, on t's engine, before t
 * evaluates any of the job's patients: the copy offered to it when a load
 * went live (none: what went live is what it runs already, as after a
 * reload of unchanged files). An engine made anew (rg__connect) that has
 * none takes what the old one ran, else the directory's files when they are
 * still the live version's. RG_OK, or an error when the engine has no
 * protocols of the clinic: the job is then not run (its patients stay as
 * they are, tried again), never run without them. */
static int rg__load(rg__thread *t, rg_svc_job *j)
{
    rg_svc *sv = t->pool->sv;
    int k = j->clinic;
    rg_engine_set_limits(t->eng, &j->limits, &j->budget); /* (a reload may have changed them) */
    if (t->loaded[k] == j->gen)
        return RG_OK;
    pthread_mutex_lock(&t->pool->mu);
    rg_clinic *c = t->offered[k];
    t->offered[k] = NULL;
    pthread_mutex_unlock(&t->pool->mu);
    char err[4096];
    const char *name = sv->clinics[k].name;
    if (c && rg_engine_set_clinic_loaded(t->eng, name, c, err, sizeof err))
        rg_log("error", "clinic %s: evaluation thread %d cannot take its new protocols (%s)",
               name, t->index, err);
    else if (c) {
        rg_clinic_free(t->kept[k]); /* (older than the copy) */
        t->kept[k] = NULL;
    }
    if (!rg_engine_has_clinic(t->eng, name) && t->kept[k]) {
        c = t->kept[k];
        t->kept[k] = NULL;
        if (rg_engine_set_clinic_loaded(t->eng, name, c, err, sizeof err))
            rg_log("error", "clinic %s: evaluation thread %d cannot take its protocols (%s)",
                   name, t->index, err);
    }
    if (!rg_engine_has_clinic(t->eng, name)) {
        char d[PATH_MAX + 16], sh[PATH_MAX + 16];
        const char *dir, *shipped;
        rg_svc_clinic_source_r(sv, k, d, sh, sizeof d, &dir, &shipped);
        int rc = rg_clinic_load(&c, name, dir, shipped, NULL, &j->limits, err, sizeof err);
        if (rc == RG_OK && rg_clinic_fingerprint(dir, shipped) != j->fp) {
            rg_clinic_free(c);
            rc = rg_fail(err, sizeof err, RG_ECONFLICT, "its files changed since they went live");
        }
        if (rc == RG_OK)
            rc = rg_engine_set_clinic_loaded(t->eng, name, c, err, sizeof err);
        if (rc) {
            rg_log("error", "clinic %s: evaluation thread %d has no protocols of the clinic (%s): "
                   "its jobs there are not run until it has", name, t->index, err);
            return rc;
        }
    }
    t->loaded[k] = j->gen;
    return RG_OK;
}

int rg_svc_pool_size(rg_svc *sv) { return sv->pool ? sv->pool->nthreads : 0; }

void rg_svc_pool_offer(rg_svc *sv, int i, rg_clinic **copies, int n)
{
    struct rg_svc_pool *pool = sv->pool;
    for (int k = 0; k < n; k++) {
        rg_clinic *old = copies[k];
        if (pool && k < pool->nthreads) {
            pthread_mutex_lock(&pool->mu);
            old = pool->threads[k].offered[i];
            pool->threads[k].offered[i] = copies[k];
            pthread_mutex_unlock(&pool->mu);
        }
        rg_clinic_free(old); /* (one never taken) */
    }
    free(copies);
}

static rg_svc_job **rg__pick(struct rg_svc_pool *pool, const rg__thread *t);

/* ---- a job's patients shared out ------------------------------------------------------ */

/* A job's requested patients are evaluated by its thread and, while there
 * are runs left, by any idle thread (one clinic's requests then use every
 * core): consecutive runs of RG__RUN patients at most, taken in order. Each
 * run's writes go to a log of its own, and the job's log is the runs' logs
 * in order: the log one thread would have written, transitions in the same
 * order (so the same cseq). Patients are independent (each is read and
 * evaluated on its own, in a read transaction of its own), and a patient is
 * in one run only (the job's thread marks a second mention beforehand). */
#define RG__SHARE_MIN 6 /* requested patients from which a job is shared */
#define RG__RUN 1       /* patients per run at most: a thread that helps takes a job
                         * queued for it after its run (one clinic cannot stall the
                         * others for longer than one evaluation), and the job's
                         * last run, which one thread waits for, is one patient */

typedef struct rg__share {
    struct rg__share *next; /* under mu: in pool->shares while runs are left */
    rg_svc_job *job;
    const char *clinic;
    unsigned char *skip; /* a patient evaluated earlier in the job */
    int size, nruns;     /* patients per run, runs */
    int taken, done;     /* under mu: runs taken, runs finished */
    unsigned char *took; /* under mu: per run, taken */
    unsigned char *home; /* per run, the thread (+1) that last evaluated its patient (0: none) */
    int first;           /* under mu: no run before it is left */
    int helpers;         /* under mu: other threads in it */
    int stop;            /* under mu: a run failed or stopped short: no more are taken */
    int rc, cut;         /* under mu: the first failure; some run stopped short */
    rg_wlog *logs;       /* each run's writes */
    rg_engine_stats stats; /* what the other threads' engines added */
    long lent;             /* runs they evaluated */
    uint64_t evaluations[RG_SVC_JOB_PROTOS];
    double seconds[RG_SVC_JOB_PROTOS];
} rg__share;

/* Under mu: the run of sh that t takes next (-1: none left): the first left
 * whose patient t evaluated last, or no thread did; else (t's own are done)
 * the first left, whoever's it is. A patient so goes back to the thread
 * whose engine keeps its answers (elsewhere they would be stale there, and
 * every rule runs), a thread that joins late finds its own runs left, and
 * no thread waits for another: the job ends as soon as before. The share
 * leaves the pool's list with its last run. */
static int rg__take_run(struct rg_svc_pool *pool, rg__share *sh, const rg__thread *t)
{
    int k = -1;
    if (!sh->stop && !rg__halted(pool) && sh->taken < sh->nruns) {
        while (sh->took[sh->first])
            sh->first++;
        for (int r = sh->first; r < sh->nruns && k < 0; r++) {
            int h = sh->home[r] - 1;
            if (!sh->took[r] && (h < 0 || h == t->index || h >= pool->nthreads))
                k = r;
        }
        if (k < 0)
            k = sh->first;
        sh->took[k] = 1;
        sh->taken++;
    }
    if (k < 0 || sh->taken == sh->nruns) {
        for (rg__share **p = &pool->shares; *p; p = &(*p)->next)
            if (*p == sh) {
                *p = sh->next;
                break;
            }
    }
    return k;
}

/* Run k of sh on t (not under mu): its patients into sh->logs[k], then the
 * finish noted under mu. */
static void rg__do_run(rg__thread *t, rg__share *sh, int k)
{
    rg_svc_job *j = sh->job;
    int lo = k * sh->size, hi = lo + sh->size < j->npatients ? lo + sh->size : j->npatients;
    const char *names[RG__RUN];
    int idx[RG__RUN], n = 0, rc = RG_OK, i = 0;
    for (int p = lo; p < hi; p++)
        if (!sh->skip[p]) {
            idx[n] = p;
            names[n++] = j->patients[p];
        }
    int pre = n ? rg__ahead(t, sh->clinic, names, n) : 0;
    if (pre < 0)
        rc = pre;
    for (; i < n && rc == RG_OK && !rg__halted(t->pool); i++) {
        rg_engine_set_cause(t->eng, j->patients_by ? j->patients_by[idx[i]] : NULL);
        rc = rg__one(t, sh->clinic, names[i], j->until, pre > 0);
    }
    rg_store_prefetch_end(t->st);
    /* the run's writes move to its log; t's log starts empty again */
    rg_wlog mine = t->log;
    t->log = sh->logs[k];
    sh->logs[k] = mine;
    pthread_mutex_lock(&t->pool->mu);
    if (rc && !sh->rc)
        sh->rc = rc;
    if (rc || i < n) /* (halted) */
        sh->stop = sh->cut = 1;
    sh->done++;
    pthread_cond_broadcast(&t->pool->shared);
    pthread_mutex_unlock(&t->pool->mu);
}

/* Under mu, on an idle thread t: takes runs of sh until none is left
 * (the lock is dropped while evaluating); what its engine added goes to
 * sh's stats. */
static void rg__help(rg__thread *t, rg__share *sh)
{
    struct rg_svc_pool *pool = t->pool;
    rg_svc_job *j = sh->job;
    int k = rg__take_run(pool, sh, t);
    if (k < 0)
        return;
    sh->helpers++;
    t->helping = j;
    pthread_mutex_unlock(&pool->mu);
    char why[512];
    int rc = RG_OK;
    if (!t->eng && (rc = rg__connect(t, why, sizeof why)))
        rg_log("error", "evaluation thread %d: %s", t->index, why);
    rg_clinic *cl = NULL;
    rg_engine_stats before = {0};
    uint64_t ev[RG_SVC_JOB_PROTOS] = {0};
    double secs[RG_SVC_JOB_PROTOS] = {0};
    int np = 0, runs = 0;
    if (rc == RG_OK && (rc = rg__load(t, j)) == RG_OK) {
        before = *rg_engine_stats_get(t->eng);
        cl = rg_engine_clinic(t->eng, sh->clinic);
        np = cl ? cl->nprotos < RG_SVC_JOB_PROTOS ? cl->nprotos : RG_SVC_JOB_PROTOS : 0;
        for (int p = 0; p < np; p++) {
            ev[p] = cl->protos[p].evaluations;
            secs[p] = cl->protos[p].seconds;
        }
    }
    for (;;) {
        if (rc == RG_OK) {
            rg__do_run(t, sh, k);
            runs++;
        } else { /* no engine: the run is not done, nor the job */
            pthread_mutex_lock(&pool->mu);
            sh->rc = sh->rc ? sh->rc : RG_EIO;
            sh->stop = sh->cut = 1;
            sh->done++;
            pthread_cond_broadcast(&pool->shared);
            pthread_mutex_unlock(&pool->mu);
        }
        pthread_mutex_lock(&pool->mu);
        if (rg__pick(pool, t) || (k = rg__take_run(pool, sh, t)) < 0)
            break; /* (a job for it first: the job's thread takes the runs left) */
        pthread_mutex_unlock(&pool->mu);
    }
    /* (under mu again) */
    sh->lent += runs;
    if (rc == RG_OK) {
        rg_engine_stats_add(&sh->stats, rg_engine_stats_get(t->eng), &before);
        /* per protocol, matched by place: the same generation of the clinic runs */
        for (int p = 0; p < np && p < cl->nprotos && p < RG_SVC_JOB_PROTOS; p++) {
            sh->evaluations[p] += cl->protos[p].evaluations - ev[p];
            sh->seconds[p] += cl->protos[p].seconds - secs[p];
        }
        rg_engine_cache_stats(t->eng, &pool->cache[t->index]);
    }
    if (sh->rc && t->eng) /* (a store error: connected anew before its next work) */
        rg__disconnect(t);
    sh->helpers--;
    t->helping = NULL;
    pthread_cond_broadcast(&pool->shared);
}

/* Under mu: a share with runs left, for an idle thread (NULL: none). */
static rg__share *rg__share_open(struct rg_svc_pool *pool)
{
    return pool->shares;
}

/* The requested patients of job j shared with idle threads (see above): 1
 * when every one was evaluated, 0 when some were not (a store error, in
 * *rc, or a halt); the job's log is t's, in the patients' order. */
static int rg__shared(rg__thread *t, rg_svc_job *j, const char *clinic, size_t nmax, int *rc)
{
    struct rg_svc_pool *pool = t->pool;
    rg__share *sh = calloc(1, sizeof *sh);
    int n = j->npatients;
    if (sh) {
        sh->job = j;
        sh->clinic = clinic;
        sh->size = (n + 2 * pool->nthreads - 1) / (2 * pool->nthreads); /* (2 runs a thread) */
        sh->size = sh->size > RG__RUN ? RG__RUN : sh->size < 1 ? 1 : sh->size;
        sh->nruns = (n + sh->size - 1) / sh->size;
        sh->skip = calloc((size_t)n, 1);
        sh->logs = calloc((size_t)sh->nruns, sizeof *sh->logs);
        sh->took = calloc((size_t)sh->nruns, 2); /* (and home, its second half) */
        sh->home = sh->took ? sh->took + sh->nruns : NULL;
    }
    if (!sh || !sh->skip || !sh->logs || !sh->took) {
        if (sh) {
            free(sh->skip);
            free(sh->logs);
            free(sh->took);
        }
        free(sh);
        *rc = RG_ENOMEM;
        return 0;
    }
    for (int r = 0; r < sh->nruns; r++) /* (a run's first patient stands for it) */
        sh->home[r] = atomic_load_explicit(rg__home(pool, clinic, j->patients[r * sh->size]),
                                           memory_order_relaxed);
    /* every patient noted (the wake-up part skips them), a second mention skipped */
    for (int i = 0; i < n && *rc == RG_OK; i++) {
        int seen = rg__seen(t, j->patients[i], nmax);
        if (seen < 0)
            *rc = seen;
        sh->skip[i] = seen != 0;
    }
    if (*rc == RG_OK) {
        pthread_mutex_lock(&pool->mu);
        sh->next = pool->shares;
        pool->shares = sh;
        pthread_cond_broadcast(&pool->work);
        int k;
        while ((k = rg__take_run(pool, sh, t)) >= 0) {
            pthread_mutex_unlock(&pool->mu);
            rg__do_run(t, sh, k);
            pthread_mutex_lock(&pool->mu);
        }
        while (sh->done < sh->taken || sh->helpers > 0)
            pthread_cond_wait(&pool->shared, &pool->mu);
        pthread_mutex_unlock(&pool->mu);
        *rc = sh->rc;
    }
    /* the runs' logs, in order, make the job's (t's is empty: each run moved its out) */
    for (int k = 0; k < sh->nruns; k++) {
        int arc = rg_wlog_append(&t->log, &sh->logs[k]);
        if (arc && *rc == RG_OK)
            *rc = arc;
        rg_wlog_free(&sh->logs[k]);
    }
    rg_engine_stats_add(&t->lent, &sh->stats, NULL);
    j->lent = sh->lent;
    for (int p = 0; p < RG_SVC_JOB_PROTOS; p++) {
        t->lent_evaluations[p] += sh->evaluations[p];
        t->lent_seconds[p] += sh->seconds[p];
    }
    int all = *rc == RG_OK && !sh->cut && sh->taken == sh->nruns;
    free(sh->skip);
    free(sh->logs);
    free(sh->took);
    free(sh);
    return all;
}

static void rg__run(rg__thread *t, rg_svc_job *j)
{
    rg_svc *sv = t->pool->sv;
    char why[512];
    if (!t->eng && rg__connect(t, why, sizeof why)) {
        rg_log("error", "evaluation thread %d: %s", t->index, why);
        j->rc = RG_EIO;
        if (j->fhir) {
            j->fhir->rc = RG_ENOMEM; /* (503: nothing stored, send again) */
            snprintf(j->fhir->msg, sizeof j->fhir->msg, "%s", why);
        }
        return;
    }
    /* (name never changes; dir only while no job of the clinic is out) */
    const rg_svc_clinic *c = &sv->clinics[j->clinic];
    if ((j->rc = rg__load(t, j))) {
        if (j->fhir) {
            j->fhir->rc = RG_ENOMEM; /* (503: nothing stored, send again) */
            snprintf(j->fhir->msg, sizeof j->fhir->msg, "the clinic's protocols are not loaded "
                     "on evaluation thread %d", t->index);
        }
        return;
    }
    rg_clinic *cl = rg_engine_clinic(t->eng, c->name);
    if (j->fhir) {
        rg__map(t, j, cl);
        return;
    }
    int np = cl ? cl->nprotos : 0;
    if (np > RG_SVC_JOB_PROTOS)
        np = RG_SVC_JOB_PROTOS;
    for (int p = 0; p < np; p++) {
        snprintf(j->protos[p].id, sizeof j->protos[p].id, "%s", cl->protos[p].id);
        j->protos[p].evaluations = cl->protos[p].evaluations;
        j->protos[p].seconds = cl->protos[p].seconds;
    }
    j->nprotos = np;
    rg_engine_stats before = *rg_engine_stats_get(t->eng);
    rg_time now = j->until;
    uint64_t t0 = uv_hrtime();
    int rc = RG_OK, i;
    /* room for every patient the job can see: its own and one page; the
     * wake-up part stops at the first full page, so no page's names are
     * needed past it */
    size_t nmax = (size_t)j->npatients + RG__PAGE;
    if (t->cap_seen < 2 * nmax + 2 && rg__seen(t, "", nmax) < 0)
        rc = RG_ENOMEM;
    if (t->seen)
        memset(t->seen, 0, t->cap_seen * sizeof *t->seen);
    int pre = 0;
    memset(&t->lent, 0, sizeof t->lent);
    memset(t->lent_evaluations, 0, sizeof t->lent_evaluations);
    memset(t->lent_seconds, 0, sizeof t->lent_seconds);
    int part = -1; /* shared with idle threads: 1 when every patient was evaluated */
    /* (not on a database server: its reads go ahead a page of RG__PAGE
     * patients in one round trip, which runs of RG__RUN would multiply; nor
     * under limits.clinic_cpu_ms, counted per thread: a shared job would
     * have a budget on every thread at once) */
    if (rc == RG_OK && t->pool->nthreads > 1 && j->npatients >= RG__SHARE_MIN &&
        !rg_store_is_server(t->pool->db) && sv->budget.cpu_ms <= 0)
        part = rg__shared(t, j, c->name, nmax, &rc);
    for (i = 0; part < 0 && i < j->npatients && rc == RG_OK && !rg__halted(t->pool); i++) {
        if (i % RG__PAGE == 0) { /* the next RG__PAGE patients' reads, ahead */
            const char *names[RG__PAGE];
            int k = 0;
            for (; k < RG__PAGE && i + k < j->npatients; k++)
                names[k] = j->patients[i + k];
            if ((pre = rg__ahead(t, c->name, names, k)) < 0)
                rc = pre;
        }
        int seen = rc ? 1 : rg__seen(t, j->patients[i], nmax);
        if (seen == 0) {
            rg_engine_set_cause(t->eng, j->patients_by ? j->patients_by[i] : NULL);
            rc = rg__one(t, c->name, j->patients[i], now, pre > 0);
        }
    }
    rg_store_prefetch_end(t->st);
    if (part >= 0)
        i = part ? j->npatients : 0;
    j->evaluated = rc == RG_OK && i == j->npatients && !rg__halted(t->pool);
    /* the clinic's due patients, a page at a time, until the job has run
     * RG__JOB_MS (or RG__YIELD_MS of this part while requests wait: see
     * rg__hand_back): what is left is the next job's (j->more) */
    rg_engine_set_cause(t->eng, j->wake_by); /* the wake-up part's */
    uint64_t tw = uv_hrtime();
    while (j->wake && rc == RG_OK && !j->more) {
        if (rg__hand_back(t, j, t0, tw)) {
            j->more = 1;
            break;
        }
        /* (a smaller page while requests wait: less read ahead that the
         * hand-back would leave unused) */
        int lim = j->reqs || atomic_load_explicit(&j->asked, memory_order_relaxed)
                      ? RG__PAGE_ASKED : RG__PAGE;
        t->page.n = 0;
        /* (the clinic's earliest due, through patients_by_clinic_wake: a
         * page read costs what this clinic has due, not its patients, as a
         * walk of them in key order did, 65 ms a page with 100,000 stored,
         * nor what other clinics have due earlier) */
        int n = rg_store_due_patients(t->st, c->name, now, lim, rg_patient_page_add, &t->page);
        if (n < 0) {
            rc = n;
            break;
        }
        int mine = t->page.n;
        const char *names[RG__PAGE];
        for (int k = 0; k < mine; k++)
            names[k] = t->page.keys[k][1];
        if (mine && (pre = rg__ahead(t, c->name, names, mine)) < 0)
            rc = pre;
        for (int k = 0; k < mine && rc == RG_OK; k++) {
            if (rg__hand_back(t, j, t0, tw)) {
                j->more = 1;
                break;
            }
            if (rg__seen(t, t->page.keys[k][1], nmax) == 0) {
                rc = rg__one(t, c->name, t->page.keys[k][1], now, pre > 0);
                j->woken++;
            }
        }
        rg_store_prefetch_end(t->st);
        if (mine < lim) /* the clinic's last due patients */
            break;
        /* a full page: those evaluated are no longer due; the next read
         * (this snapshot ahead of the log) would find them again */
        j->more = 1;
    }
    rg_store_prefetch_end(t->st); /* (nothing read ahead outlives its job) */
    if (rc == RG_OK && !rg__halted(t->pool))
        rg__shadow_step(t, j, c->name);
    j->rc = rc;
    /* the log moves into the job; the job's (empty) buffers become the next */
    rg_wlog spare = j->log;
    j->log = t->log;
    rg_wlog_cut(&spare, 0, 0);
    t->log = spare;
    const rg_engine_stats *after = rg_engine_stats_get(t->eng);
    j->stats = (rg_engine_stats){0};
    rg_engine_stats_add(&j->stats, after, &before);
    for (int p = 0; cl && p < j->nprotos && p < cl->nprotos; p++) {
        j->protos[p].evaluations = cl->protos[p].evaluations - j->protos[p].evaluations;
        j->protos[p].seconds = cl->protos[p].seconds - j->protos[p].seconds;
        j->protos[p].evaluations += t->lent_evaluations[p]; /* (other threads': rg__shared) */
        j->protos[p].seconds += t->lent_seconds[p];
    }
    rg_engine_stats_add(&j->stats, &t->lent, NULL);
    if (rc) /* connected anew before the next job */
        rg__disconnect(t);
}

/* Under mu: where in the queue the job t takes next is linked (NULL: none
 * for t): the oldest job whose clinic last ran on t, on no thread, or on a
 * thread busy with another job; a job whose clinic's thread is idle is left
 * to that thread (woken too: rg_svc_pool_submit broadcasts), whose engine
 * holds the answers kept for the clinic's patients. */
static rg_svc_job **rg__pick(struct rg_svc_pool *pool, const rg__thread *t)
{
    for (rg_svc_job **pj = &pool->queue; *pj; pj = &(*pj)->next) {
        int c = (*pj)->clinic;
        int o = c >= 0 && c < RG_MAX_CLINICS ? pool->owner[c] - 1 : -1;
        const rg__thread *ot = o >= 0 && o < pool->nthreads ? &pool->threads[o] : NULL;
        if (!ot || ot == t || ot->current || ot->abandoned) /* (an owner has run: it started) */
            return pj;
    }
    return NULL;
}

static void *rg__thread_main(void *arg)
{
    rg__thread *t = arg;
    struct rg_svc_pool *pool = t->pool;
    pthread_mutex_lock(&pool->mu);
    for (;;) {
        rg_svc_job **pj;
        rg__share *sh = NULL;
        while (!(pj = rg__pick(pool, t)) && !(sh = rg__share_open(pool)) && !pool->stop)
            pthread_cond_wait(&pool->work, &pool->mu);
        if (!pj && sh) { /* no job for it: another job's patients */
            rg__help(t, sh);
            continue;
        }
        if (!pj && pool->queue) /* stopping: any job */
            pj = &pool->queue;
        rg_svc_job *j = pj ? *pj : NULL;
        if (!j)
            break; /* stopping, nothing queued */
        if (pool->tail == &j->next)
            pool->tail = pj;
        *pj = j->next;
        if (j->clinic >= 0 && j->clinic < RG_MAX_CLINICS)
            pool->owner[j->clinic] = t->index + 1;
        t->current = j;
        pthread_mutex_unlock(&pool->mu);
        rg__run(t, j);
        pthread_mutex_lock(&pool->mu);
        t->current = NULL;
        if (t->eng)
            rg_engine_cache_stats(t->eng, &pool->cache[t->index]);
        j->next = pool->done;
        pool->done = j;
        if (!pool->closed)
            uv_async_send(&pool->async);
    }
    pthread_mutex_unlock(&pool->mu);
    return NULL;
}

/* ---- the loop's side ---------------------------------------------------------------- */

static void rg__on_async(uv_async_t *h)
{
    struct rg_svc_pool *pool = h->data;
    rg_svc_flush_soon(pool->sv); /* the group commit takes what came back */
}

int rg_svc_pool_start(rg_svc *sv, const char *db, int nthreads, char *err, size_t errlen)
{
    struct rg_svc_pool *pool = calloc(1, sizeof *pool);
    if (!pool)
        return rg_fail(err, errlen, RG_ENOMEM, "out of memory");
    if (nthreads < 1)
        nthreads = 1;
    sv->pool = pool;
    pool->sv = sv;
    pool->tail = &pool->queue;
    pthread_mutex_init(&pool->mu, NULL);
    pthread_cond_init(&pool->work, NULL);
    pthread_cond_init(&pool->shared, NULL);
    atomic_init(&pool->halt, 0);
    uv_async_init(&sv->loop, &pool->async, rg__on_async);
    pool->async.data = pool;
    pool->threads = calloc((size_t)nthreads, sizeof *pool->threads);
    pool->cache = calloc((size_t)nthreads, sizeof *pool->cache);
    if (!pool->threads || !pool->cache)
        return rg_fail(err, errlen, RG_ENOMEM, "out of memory");
    snprintf(pool->db, sizeof pool->db, "%s", db);
    pool->nthreads = nthreads;
    /* connections and engines are made here, so a failure stops the start */
    for (int i = 0; i < nthreads; i++) {
        rg__thread *t = &pool->threads[i];
        t->pool = pool;
        t->index = i;
        int rc = rg__connect(t, err, errlen);
        if (rc)
            return rc;
        if (!(t->page.keys = malloc(RG__PAGE * sizeof *t->page.keys)))
            return rg_fail(err, errlen, RG_ENOMEM, "out of memory");
        /* the protocols the loop's engine loaded, now: a file broken later
         * is refused by a reload, and every thread keeps this version (the
         * files still the ones the loop loaded: else the threads would run
         * another version than the one the loop went live with) */
        for (int k = 0; k < sv->nclinics; k++) {
            char why[4096], d[PATH_MAX + 16], sh[PATH_MAX + 16];
            const char *dir, *shipped;
            rg_svc_clinic_source_r(sv, k, d, sh, sizeof d, &dir, &shipped);
            if (rg_engine_set_clinic_from(t->eng, sv->clinics[k].name, dir, shipped, NULL, why,
                                          sizeof why))
                return rg_fail(err, errlen, RG_EPROTOCOL, "clinic %s: %s", sv->clinics[k].name,
                               why);
            if (rg_clinic_fingerprint(dir, shipped) != sv->clinics[k].live_fp)
                return rg_fail(err, errlen, RG_ECONFLICT, "clinic %s: its protocol files "
                               "changed while the service started; start it again once they "
                               "are saved", sv->clinics[k].name);
            t->loaded[k] = sv->clinics[k].gen;
        }
    }
    for (int i = 0; i < nthreads; i++) {
        if (pthread_create(&pool->threads[i].tid, NULL, rg__thread_main, &pool->threads[i]))
            return rg_fail(err, errlen, RG_ENOMEM, "cannot start evaluation thread %d", i);
        pool->threads[i].started = 1;
    }
    return RG_OK;
}

const char *rg_svc_pool_db(rg_svc *sv)
{
    return sv->pool ? sv->pool->db : NULL;
}

void rg_svc_pool_submit(rg_svc *sv, rg_svc_job *j)
{
    struct rg_svc_pool *pool = sv->pool;
    j->next = NULL;
    pthread_mutex_lock(&pool->mu);
    *pool->tail = j;
    pool->tail = &j->next;
    pthread_cond_broadcast(&pool->work); /* (the clinic's own thread among them: rg__pick) */
    pthread_mutex_unlock(&pool->mu);
}

rg_svc_job *rg_svc_pool_done(rg_svc *sv)
{
    struct rg_svc_pool *pool = sv->pool;
    if (!pool)
        return NULL;
    pthread_mutex_lock(&pool->mu);
    rg_svc_job *j = pool->done;
    pool->done = NULL;
    pthread_mutex_unlock(&pool->mu);
    return j;
}

void rg_svc_pool_halt(rg_svc *sv)
{
    if (sv->pool)
        atomic_store(&sv->pool->halt, 1);
}

void rg_svc_pool_cache_stats(rg_svc *sv, rg_hcache_stats *s)
{
    memset(s, 0, sizeof *s);
    if (!sv->pool)
        return;
    pthread_mutex_lock(&sv->pool->mu);
    for (int i = 0; i < sv->pool->nthreads; i++) {
        const rg_hcache_stats *c = &sv->pool->cache[i];
        s->hits += c->hits;
        s->misses += c->misses;
        s->kept_hits += c->kept_hits;
        s->kept_misses += c->kept_misses;
        s->evictions += c->evictions;
        s->entries += c->entries;
        s->bytes += c->bytes;
        s->cap += c->cap;
    }
    pthread_mutex_unlock(&sv->pool->mu);
}

int rg_svc_pool_abandon(rg_svc *sv, rg_svc_job **out, int max)
{
    struct rg_svc_pool *pool = sv->pool;
    int n = 0;
    if (!pool)
        return 0;
    pthread_mutex_lock(&pool->mu);
    /* no thread starts on a run of a job left behind (it could be held in
     * the same stuck call, and then never joined) */
    for (rg__share *sh = pool->shares; sh; sh = sh->next)
        sh->stop = sh->cut = 1;
    pool->shares = NULL;
    for (int i = 0; i < pool->nthreads; i++) {
        rg__thread *t = &pool->threads[i];
        if (t->helping && !t->current) /* (its job is its own thread's, left below) */
            t->abandoned = pool->abandoned = 1;
        if (!t->current || n == max)
            continue;
        t->abandoned = pool->abandoned = 1;
        t->current->abandoned = 1;
        out[n++] = t->current;
    }
    while (pool->queue && n < max) { /* behind them: nobody would take these */
        rg_svc_job *j = pool->queue;
        if (!(pool->queue = j->next))
            pool->tail = &pool->queue;
        j->next = NULL;
        out[n++] = j;
    }
    pthread_mutex_unlock(&pool->mu);
    return n;
}

void rg_svc_pool_close(rg_svc *sv)
{
    if (!sv->pool)
        return;
    pthread_mutex_lock(&sv->pool->mu);
    sv->pool->closed = 1;
    pthread_mutex_unlock(&sv->pool->mu);
    if (!uv_is_closing((uv_handle_t *)&sv->pool->async))
        uv_close((uv_handle_t *)&sv->pool->async, NULL);
}

int rg_svc_pool_free(rg_svc *sv)
{
    struct rg_svc_pool *pool = sv->pool;
    if (!pool)
        return 0;
    pthread_mutex_lock(&pool->mu);
    pool->stop = 1;
    atomic_store(&pool->halt, 1);
    pthread_cond_broadcast(&pool->work);
    int abandoned = pool->abandoned;
    pthread_mutex_unlock(&pool->mu);
    if (abandoned) {
        /* a thread still held in one C call: the process exits without it;
         * the pool, its engine and connection stay as they are (it may still
         * be using them until the exit) */
        for (int i = 0; i < pool->nthreads; i++) {
            rg__thread *t = &pool->threads[i];
            pthread_mutex_lock(&pool->mu);
            int left = t->abandoned && (t->current || t->helping);
            pthread_mutex_unlock(&pool->mu);
            if (t->started && !left)
                pthread_join(t->tid, NULL);
        }
        sv->pool = NULL;
        return 1;
    }
    for (int i = 0; pool->threads && i < pool->nthreads; i++) {
        rg__thread *t = &pool->threads[i];
        if (t->started)
            pthread_join(t->tid, NULL);
        rg_engine_free(t->eng);
        for (int k = 0; k < RG_MAX_CLINICS; k++) {
            rg_clinic_free(t->offered[k]);
            rg_clinic_free(t->kept[k]);
        }
        rg_store_close(t->st);
        rg_wlog_free(&t->log);
        free(t->page.keys);
        free(t->seen);
    }
    /* jobs never handed to the loop (it stopped abnormally) */
    for (rg_svc_job *j = pool->done, *next; j; j = next) {
        next = j->next;
        rg_svc_job_free(j);
    }
    for (rg_svc_job *j = pool->queue, *next; j; j = next) {
        next = j->next;
        rg_svc_job_free(j);
    }
    rg_svc_shadows_free(sv); /* (the threads are gone) */
    free(pool->threads);
    free(pool->cache);
    pthread_cond_destroy(&pool->work);
    pthread_cond_destroy(&pool->shared);
    pthread_mutex_destroy(&pool->mu);
    free(pool);
    sv->pool = NULL;
    return 0;
}
