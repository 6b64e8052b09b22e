/*
 * engine.c - evaluation and the alert lifecycle (see engine.h).
 *
 * Per patient: read its events once, then step through instants. At each
 * step every protocol runs in one protected call (rg__eval_protocol) that
 * returns plain Lua data: per rule, either an error or a flat list of alerts.
 * C reads that data without calling anything that can raise, compares it with
 * the open alerts, and writes transitions. Depends on clinic.c, store.c and
 * the history binding.
 */
#include "engine/engine.h"
#include "core/digest.h"
#include "core/fields.h"
#include "engine/hcache.h"

#include "bindings/bindings.h"

#include <lauxlib.h>
#include <jansson.h>

#include <assert.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define RG_MAX_MESSAGE 2000
#define RG_MAX_KEY 200
#define RG_ALERT_SLOTS 5 /* subkey, severity, message, due, ends */
#define RG_MAX_ALERTS 1000      /* alerts one rule may return at once */
#define RG_MAX_STEP_ALERTS 1000 /* alerts all rules of a clinic may return in one step */
/* Wake-up spacing (rg__space_wake): after a time-driven step, the next one
 * waits at least 1/RG_WAKE_SPACING_DIV of the time since the patient's last
 * event, at most RG_WAKE_SPACING_MAX, times transitions/RG_WAKE_TRANSITIONS
 * when the step made more than RG_WAKE_TRANSITIONS. */
#define RG_WAKE_SPACING_DIV 100
#define RG_WAKE_SPACING_MAX RG_MS_MINUTE
#define RG_WAKE_TRANSITIONS 10
#define RG_CPU_BUCKETS 60       /* a clinic's CPU window, in this many slices */

typedef struct rg__clinic_slot {
    char *name;
    rg_clinic *c;
    int failed;    /* loading failed and was reported */
    const rg_zone *zone; /* before c is loaded: the zone of its settings (rg_engine_zone) */
    char **pjson;  /* per protocol of c: its base parameters as JSON, once made */
    /* per protocol of c: whether its applies ([0]) and rule r ([1 + r]) use
     * their `now` argument (rg__reads_now), once found */
    unsigned char **nowuse;
    uint64_t stamp; /* which load of the clinic this is (kept answers name it) */
    /* evaluation time, in slices of the CPU window: slice number and ms */
    int64_t cpu_at[RG_CPU_BUCKETS];
    double cpu_ms[RG_CPU_BUCKETS];
} rg__clinic_slot;

typedef struct rg__open {
    int64_t id;
    char *key, *protocol, *version, *rule, *severity, *message;
    rg_time due;
    int live; /* 0 once resolved in this advance */
} rg__open;

struct rg_engine {
    rg_store *st;
    rg_engine_opts o; /* (o.shipped and o.default_dir point at the copies below) */
    char *shipped, *default_dir; /* the engine's own copies: a caller's buffers may go */
    rg_engine_sink w; /* where writes go */
    char cause[160];  /* rg_engine_set_cause: the transitions' cause ("": not known) */
    rg_hcache *hc;    /* compiled histories (o.history_cache_bytes), or NULL */
    uint64_t hc_gen;  /* rg_store_rollbacks when the cache was last known good */
    rg__clinic_slot *clinics;
    int nclinics;
    rg_engine_stats stats;
    /* keys hashed by rg__h_is_open in this step, for rg__read_alerts (the
     * subkey strings stay alive in the step's result lists) */
    struct rg__keyc {
        const char *subkey;
        char proto_rule[2][96];
        char key[RG_KEY_HEX + 1];
    } keyc[32];
    int nkeyc;
    /* per-advance scratch, reused */
    rg_hevent *ev;
    int nev, cap_ev;
    rg_buf text;
    int *tix, *toff;   /* per type, its events' indexes (rg_history.tix/toff) */
    int cap_tix;
    uint32_t *touched; /* per event: the mark it was last counted for (dedup) */
    int cap_touched;
    uint32_t mark;
    rg_touch_log log;
    rg__open *open;
    int nopen, cap_open;
    /* corrections: ev holds every stored version; when the patient has
     * corrections or withdrawn events (ncorr), vis holds the versions in
     * force at the step's instant, rebuilt when the number of corrections in
     * force (epoch) changes. sev/nsev is what the step and its history see:
     * ev or vis. */
    rg_hevent *vis;
    int nvis, cap_vis, ncorr, epoch;
    const rg_hevent *sev;
    int nsev;
    char *types[256]; /* interned event types */
    int ntypes;
    /* the patient's failing (protocol, rule) pairs (rg_engine_rule_status),
     * read when its state counts any, kept up to date step by step */
    struct rg__failing {
        char *proto, *rule;
    } *fail;
    int nfail, cap_fail;
    /* Incremental evaluation (docs/protocols.md, "What makes a rule run
     * again"): per protocol of the clinic being advanced, what its applies
     * and each rule read at the step they last ran, and whether their last
     * answer (the protocol's results table, kept at pidx on the Lua stack)
     * may stand. Within one advance: a new advance starts afresh. */
    int incremental; /* 0: every rule at every step (REGIMEN_INCREMENTAL=0) */
    int verify;      /* REGIMEN_VERIFY_INCREMENTAL=1: both, compared */
    struct rg__inc {
        int valid;            /* the results table at pidx[i + 1] may stand */
        rg_reads applies;     /* what applies read when it last ran */
        rg_reads *reads;      /* per rule: what it read when it last ran */
        rg_time *next;        /* per rule: its first due or end after the last step */
        unsigned char *keep;  /* per rule: its last answer may stand (no error, not capped) */
        unsigned char *ran;   /* per rule: it ran at this step (+ applies at [nrules]) */
        /* per rule: the keys of the alerts of its kept answer, by position
         * (have[j]: made), so a kept answer's keys are hashed once */
        struct rg__keys {
            char (*v)[RG_KEY_HEX + 1];
            unsigned char *have;
            int cap;
        } *keys;
        int nrules;
    } *inc;
    int ninc;
    const rg_clinic *inc_c; /* the clinic inc was made for */
    int pidx;               /* stack index of the previous results (a table by protocol) */
    int last_n;             /* events visible at the previous step (-1: no step yet) */
    int rebound;            /* the history was bound anew since the previous step */
    /* Kept answers (the service): the state above, kept for the patient
     * beside its history in the cache at the end of an advance and taken up
     * again at the start of its next one (rg__keep_save, rg__keep_restore). */
    uint64_t stamps;        /* the last clinic load's stamp (rg__clinic_slot.stamp) */
    rg_time last_t;         /* the instant of the previous step */
    int restored;           /* the state was taken up: the first step finds what changed */
    rg_time kept_t;         /* ... since this instant */
    int64_t kept_seq;       /* ... and the events newer than this seq */
    rg_buf keepbuf;         /* scratch for rg__keep_save */
};

/* ---- setup ------------------------------------------------------------------ */

static int rg__w_transition(void *ud, rg_transition *t, int64_t *alert_id)
{
    return rg_store_transition(ud, t, alert_id);
}

static int rg__w_eval_error(void *ud, const char *clinic, const char *patient,
                            const char *protocol, const char *rule, rg_time at, const char *msg)
{
    return rg_store_eval_error(ud, clinic, patient, protocol, rule, at, msg);
}

static int rg__w_patient_put(void *ud, const char *clinic, const char *patient,
                             const rg_patient_state *ps)
{
    return rg_store_patient_put(ud, clinic, patient, ps);
}

static int rg__w_protocol_loaded(void *ud, const char *clinic, const char *protocol,
                                 const char *version, const char *file, const char *hash)
{
    return rg_store_protocol_loaded(ud, clinic, protocol, version, file, hash);
}

static int rg__w_rule_status(void *ud, const char *clinic, const char *patient,
                             const char *protocol, const char *version, const char *rule,
                             rg_time at, const char *msg)
{
    return rg_engine_rule_status(ud, clinic, patient, protocol, version, rule, at, msg);
}

static rg_engine_sink rg__store_sink(rg_store *st)
{
    return (rg_engine_sink){rg__w_transition, rg__w_eval_error, rg__w_rule_status,
                            rg__w_patient_put, rg__w_protocol_loaded, st};
}

int rg_engine_new(rg_engine **out, rg_store *st, const rg_engine_opts *o)
{
    rg_engine *e = calloc(1, sizeof *e);
    if (!e)
        return RG_ENOMEM;
    e->st = st;
    e->o = *o;
    e->w = o->sink ? *o->sink : rg__store_sink(st);
    /* (rg__simulate returns its engine: the directories it named were on its stack) */
    if ((o->shipped && !(e->o.shipped = e->shipped = strdup(o->shipped))) ||
        (o->default_dir && !(e->o.default_dir = e->default_dir = strdup(o->default_dir))) ||
        (o->history_cache_bytes && !(e->hc = rg_hcache_new(o->history_cache_bytes)))) {
        free(e->shipped);
        free(e->default_dir);
        free(e);
        return RG_ENOMEM;
    }
    e->hc_gen = rg_store_rollbacks(st);
    const char *inc = getenv("REGIMEN_INCREMENTAL"), *ver = getenv("REGIMEN_VERIFY_INCREMENTAL");
    e->incremental = !(inc && !strcmp(inc, "0"));
    e->verify = e->incremental && ver && *ver && strcmp(ver, "0") != 0;
    *out = e;
    return RG_OK;
}

static void rg__slot_drop_params(rg__clinic_slot *s)
{
    for (int i = 0; s->pjson && s->c && i < s->c->nprotos; i++)
        free(s->pjson[i]);
    free(s->pjson);
    s->pjson = NULL;
    for (int i = 0; s->nowuse && s->c && i < s->c->nprotos; i++)
        free(s->nowuse[i]);
    free(s->nowuse);
    s->nowuse = NULL;
}

static void rg__inc_free(rg_engine *e)
{
    for (int i = 0; i < e->ninc; i++) {
        free(e->inc[i].reads);
        free(e->inc[i].next);
        free(e->inc[i].keep);
        free(e->inc[i].ran);
        for (int r = 0; e->inc[i].keys && r < e->inc[i].nrules; r++) {
            free(e->inc[i].keys[r].v);
            free(e->inc[i].keys[r].have);
        }
        free(e->inc[i].keys);
    }
    free(e->inc);
    e->inc = NULL;
    e->ninc = 0;
    e->inc_c = NULL;
}

static void rg__open_clear(rg_engine *e)
{
    for (int i = 0; i < e->nopen; i++) {
        rg__open *a = &e->open[i];
        free(a->key);
        free(a->protocol);
        free(a->version);
        free(a->rule);
        free(a->severity);
        free(a->message);
    }
    e->nopen = 0;
}

static void rg__fail_clear(rg_engine *e)
{
    for (int i = 0; i < e->nfail; i++) {
        free(e->fail[i].proto);
        free(e->fail[i].rule);
    }
    e->nfail = 0;
}

static int rg__fail_add(void *ud, const char *proto, const char *rule)
{
    rg_engine *e = ud;
    if (e->nfail == e->cap_fail) {
        int cap = e->cap_fail ? 2 * e->cap_fail : 8;
        struct rg__failing *grown = realloc(e->fail, (size_t)cap * sizeof *grown);
        if (!grown)
            return RG_ENOMEM;
        e->fail = grown;
        e->cap_fail = cap;
    }
    char *p = strdup(proto), *r = strdup(rule);
    if (!p || !r) {
        free(p);
        free(r);
        return RG_ENOMEM;
    }
    e->fail[e->nfail++] = (struct rg__failing){p, r};
    return RG_OK;
}

void rg_engine_free(rg_engine *e)
{
    if (!e)
        return;
    free(e->shipped);
    free(e->default_dir);
    for (int i = 0; i < e->nclinics; i++) {
        rg__slot_drop_params(&e->clinics[i]);
        rg_clinic_free(e->clinics[i].c);
        free(e->clinics[i].name);
    }
    free(e->clinics);
    free(e->ev);
    free(e->vis);
    rg_buf_free(&e->text);
    rg_hcache_free(e->hc);
    free(e->tix);
    free(e->toff);
    free(e->touched);
    free(e->log.v);
    rg__open_clear(e);
    free(e->open);
    for (int i = 0; i < e->ntypes; i++)
        free(e->types[i]);
    rg__fail_clear(e);
    free(e->fail);
    rg__inc_free(e);
    rg_buf_free(&e->keepbuf);
    free(e);
}

static int rg__nowuse(rg_engine *e, rg_clinic *c, unsigned char ***out);

static rg__clinic_slot *rg__slot(rg_engine *e, const char *clinic, int create)
{
    for (int i = 0; i < e->nclinics; i++)
        if (!strcmp(e->clinics[i].name, clinic))
            return &e->clinics[i];
    if (!create)
        return NULL;
    rg__clinic_slot *grown = realloc(e->clinics, (size_t)(e->nclinics + 1) * sizeof *grown);
    if (!grown)
        return NULL;
    e->clinics = grown;
    rg__clinic_slot *s = &e->clinics[e->nclinics];
    memset(s, 0, sizeof *s);
    if (!(s->name = strdup(clinic)))
        return NULL;
    e->nclinics++;
    return s;
}

/* Keeps a patient's evaluation error, then tells on_error. A store error is
 * returned (and nothing told): the caller's transaction fails as a whole. */
static int rg__report(rg_engine *e, const char *clinic, const char *patient, const char *proto,
                      const char *rule, rg_time at, const char *msg)
{
    int rc = patient ? e->w.eval_error(e->w.ud, clinic, patient, proto, rule, at, msg) : RG_OK;
    if (rc)
        return rc;
    e->stats.errors++;
    if (e->o.on_error)
        e->o.on_error(e->o.ud, clinic, patient, at, msg);
    return RG_OK;
}

/* ---- budgets: CPU per clinic, quarantine per protocol ------------------------ */

static int rg__q_hits(const rg_engine *e)
{
    int h = e->o.budget.hits ? e->o.budget.hits : 3;
    return h > 8 ? 8 : h; /* rg_protocol.hits holds 8 */
}

static int64_t rg__q_window_ms(const rg_engine *e)
{
    return (int64_t)(e->o.budget.window_s > 0 ? e->o.budget.window_s : 60) * 1000;
}

/* The width in ms of one slice of the clinic CPU window. */
static int64_t rg__cpu_slice_ms(const rg_engine *e)
{
    int64_t w = (int64_t)(e->o.budget.cpu_window_s > 0 ? e->o.budget.cpu_window_s : 60) * 1000;
    return w / RG_CPU_BUCKETS > 0 ? w / RG_CPU_BUCKETS : 1;
}

static double rg__cpu_used(const rg_engine *e, const rg__clinic_slot *s, int64_t now)
{
    int64_t b = now / rg__cpu_slice_ms(e);
    double used = 0;
    for (int i = 0; i < RG_CPU_BUCKETS; i++)
        if (s->cpu_at[i] > b - RG_CPU_BUCKETS)
            used += s->cpu_ms[i];
    return used;
}

static void rg__cpu_add(const rg_engine *e, rg__clinic_slot *s, int64_t now, double ms)
{
    int64_t b = now / rg__cpu_slice_ms(e);
    int i = (int)(b % RG_CPU_BUCKETS);
    if (s->cpu_at[i] != b) {
        s->cpu_at[i] = b;
        s->cpu_ms[i] = 0;
    }
    s->cpu_ms[i] += ms;
}

/* One protocol's hits and quarantine on a board (the fields of rg_protocol
 * of the same names). */
typedef struct rg__qentry {
    char *clinic, *id, *hash;
    int64_t hits[8];
    int nhits;
    int64_t quarantined_until;
    int quarantines;
} rg__qentry;

struct rg_qboard {
    pthread_mutex_t mu;
    rg__qentry *v; /* only protocols that hit a limit: usually none */
    int n, cap;
};

int rg_qboard_new(rg_qboard **out)
{
    rg_qboard *b = calloc(1, sizeof *b);
    if (!b)
        return RG_ENOMEM;
    pthread_mutex_init(&b->mu, NULL);
    *out = b;
    return RG_OK;
}

static void rg__qentry_free(rg__qentry *q)
{
    free(q->clinic);
    free(q->id);
    free(q->hash);
}

void rg_qboard_free(rg_qboard *b)
{
    if (!b)
        return;
    for (int i = 0; i < b->n; i++)
        rg__qentry_free(&b->v[i]);
    free(b->v);
    pthread_mutex_destroy(&b->mu);
    free(b);
}

void rg_qboard_clear(rg_qboard *b, const char *clinic)
{
    if (!b)
        return;
    pthread_mutex_lock(&b->mu);
    for (int i = 0; i < b->n;)
        if (!strcmp(b->v[i].clinic, clinic)) {
            rg__qentry_free(&b->v[i]);
            b->v[i] = b->v[--b->n];
        } else {
            i++;
        }
    pthread_mutex_unlock(&b->mu);
}

/* (under b->mu) Protocol p of clinic's entry; made when make (NULL: none,
 * or no memory). */
static rg__qentry *rg__qfind(rg_qboard *b, const char *clinic, const rg_protocol *p, int make)
{
    for (int i = 0; i < b->n; i++)
        if (!strcmp(b->v[i].id, p->id) && !strcmp(b->v[i].hash, p->hash) &&
            !strcmp(b->v[i].clinic, clinic))
            return &b->v[i];
    if (!make)
        return NULL;
    if (b->n == b->cap) {
        int cap = b->cap ? 2 * b->cap : 16;
        rg__qentry *grown = realloc(b->v, (size_t)cap * sizeof *grown);
        if (!grown)
            return NULL;
        b->v = grown;
        b->cap = cap;
    }
    rg__qentry *q = &b->v[b->n];
    memset(q, 0, sizeof *q);
    q->clinic = strdup(clinic);
    q->id = strdup(p->id);
    q->hash = strdup(p->hash);
    if (!q->clinic || !q->id || !q->hash) {
        rg__qentry_free(q);
        return NULL;
    }
    b->n++;
    return q;
}

/* Is protocol i of c quarantined at now? Releases it (and says so) once its
 * back-off is over. With a board, the board says (and p mirrors it), and
 * only the engine that finds the back-off over says so. */
static int rg__quarantined_now(rg_engine *e, rg_clinic *c, int i, int64_t now)
{
    rg_protocol *p = &c->protos[i];
    rg_qboard *b = e->o.budget.board;
    if (b) {
        int released = 0;
        pthread_mutex_lock(&b->mu);
        rg__qentry *q = b->n ? rg__qfind(b, c->name, p, 0) : NULL;
        p->quarantined_until = q ? q->quarantined_until : 0;
        if (q && q->quarantined_until && now >= q->quarantined_until) {
            q->quarantined_until = p->quarantined_until = 0;
            q->nhits = 0;
            released = 1;
        }
        pthread_mutex_unlock(&b->mu);
        if (released && e->o.budget.on_quarantine)
            e->o.budget.on_quarantine(e->o.budget.ud, c->name, p->id, p->file, 0,
                                      "back-off over");
        return p->quarantined_until != 0;
    }
    if (!p->quarantined_until)
        return 0;
    if (now < p->quarantined_until)
        return 1;
    p->quarantined_until = 0;
    p->nhits = 0;
    if (e->o.budget.on_quarantine)
        e->o.budget.on_quarantine(e->o.budget.ud, c->name, p->id, p->file, 0, "back-off over");
    else
        fprintf(stderr, "regimen: clinic %s: %s: protocol '%s' released from quarantine "
                "(back-off over)\n", c->name, p->file, p->id);
    return 0;
}

/* Counts a limit hit of protocol i; at the quarantine_hits-th within the
 * window it quarantines the protocol, writes why to note and returns 1. */
static int rg__limit_hit(rg_engine *e, rg_clinic *c, int i, int64_t now, const char *why,
                         char *note, size_t notelen)
{
    rg_protocol *p = &c->protos[i];
    if (e->o.budget.hits < 0 || p->quarantined_until)
        return 0;
    /* the counts: p's own, or the board's entry (under its mutex) */
    rg_qboard *b = e->o.budget.board;
    rg__qentry *q = NULL;
    if (b) {
        pthread_mutex_lock(&b->mu);
        if (!(q = rg__qfind(b, c->name, p, 1))) { /* (no memory: counted here alone) */
            pthread_mutex_unlock(&b->mu);
            b = NULL;
        }
    }
    int64_t *hits = q ? q->hits : p->hits, *until = q ? &q->quarantined_until : &p->quarantined_until;
    int *nhits = q ? &q->nhits : &p->nhits, *quarantines = q ? &q->quarantines : &p->quarantines;
    if (*until) { /* another engine quarantined it meanwhile */
        p->quarantined_until = *until;
        if (b)
            pthread_mutex_unlock(&b->mu);
        return 0;
    }
    hits[*nhits % 8] = now;
    (*nhits)++;
    int h = rg__q_hits(e), recent = 0;
    for (int k = 0; k < (*nhits < 8 ? *nhits : 8); k++)
        recent += now - hits[k] < rg__q_window_ms(e);
    if (recent < h) {
        if (b)
            pthread_mutex_unlock(&b->mu);
        return 0;
    }
    int64_t backoff = (int64_t)(e->o.budget.backoff_s > 0 ? e->o.budget.backoff_s : 60) * 1000
                      << (*quarantines < 6 ? *quarantines : 6);
    *until = now + backoff;
    (*quarantines)++;
    *nhits = 0;
    p->quarantined_until = *until;
    if (b)
        pthread_mutex_unlock(&b->mu);
    e->stats.quarantines++;
    snprintf(note, notelen, "%s: protocol '%s' is quarantined for %lld s after %d limit hits "
             "within %lld s (the last: %.300s); it is not evaluated, and its alerts stay as they "
             "are, until then or until its clinic is reloaded", p->file, p->id,
             (long long)(backoff / 1000), h, (long long)(rg__q_window_ms(e) / 1000), why);
    if (e->o.budget.on_quarantine)
        e->o.budget.on_quarantine(e->o.budget.ud, c->name, p->id, p->file, p->quarantined_until,
                                  note);
    else
        fprintf(stderr, "regimen: clinic %s: %s\n", c->name, note);
    return 1;
}

int rg_engine_quarantined(rg_engine *e, const char *clinic, const char *protocol,
                          int64_t *until_ms)
{
    rg__clinic_slot *s = rg__slot(e, clinic, 0);
    int64_t now = rg_monotonic_ms();
    for (int i = 0; s && s->c && i < s->c->nprotos; i++)
        if (!strcmp(s->c->protos[i].id, protocol) && rg__quarantined_now(e, s->c, i, now)) {
            if (until_ms)
                *until_ms = s->c->protos[i].quarantined_until;
            return 1;
        }
    return 0;
}

int rg_engine_quarantined_count(rg_engine *e)
{
    int n = 0;
    int64_t now = rg_monotonic_ms();
    for (int k = 0; k < e->nclinics; k++)
        for (int i = 0; e->clinics[k].c && i < e->clinics[k].c->nprotos; i++)
            n += rg__quarantined_now(e, e->clinics[k].c, i, now);
    return n;
}

/* Provenance: each protocol version the clinic runs, recorded before it runs
 * (INSERT OR IGNORE, so a retry after a partial failure completes it). */
static int rg__record_versions(rg_engine *e, rg_clinic *c)
{
    int rc = RG_OK;
    for (int i = 0; i < c->nprotos && rc == RG_OK; i++)
        rc = e->w.protocol_loaded(e->w.ud, c->name, c->protos[i].id, c->protos[i].version,
                                      c->protos[i].file, c->protos[i].hash);
    return rc;
}

int rg_engine_set_clinic(rg_engine *e, const char *clinic, const char *dir, char *err,
                         size_t errlen)
{
    return rg_engine_set_clinic_params(e, clinic, dir, NULL, err, errlen);
}

int rg_engine_set_clinic_params(rg_engine *e, const char *clinic, const char *dir,
                                const char *overrides, char *err, size_t errlen)
{
    return rg_engine_set_clinic_from(e, clinic, dir, e->o.shipped, overrides, err, errlen);
}

int rg_engine_set_clinic_from(rg_engine *e, const char *clinic, const char *dir,
                              const char *shipped, const char *overrides, char *err,
                              size_t errlen)
{
    rg_clinic *c;
    int rc = rg_clinic_load(&c, clinic, dir, shipped, overrides, &e->o.limits, err, errlen);
    if (rc)
        return rc;
    return rg_engine_set_clinic_loaded(e, clinic, c, err, errlen);
}

int rg_engine_set_clinic_loaded(rg_engine *e, const char *clinic, rg_clinic *c, char *err,
                                size_t errlen)
{
    int rc;
    if ((rc = rg__record_versions(e, c)) != RG_OK) { /* unrecorded versions do not run */
        rg_fail(err, errlen, rc, "clinic %s: protocols in %s not taken: their versions "
                "could not be recorded (%s)", clinic, c->dir, rg_store_errmsg(e->st));
        rg_clinic_free(c);
        return rc;
    }
    rg__clinic_slot *s = rg__slot(e, clinic, 1);
    if (!s) {
        rg_clinic_free(c);
        return rg_fail(err, errlen, RG_ENOMEM, "out of memory");
    }
    rg__slot_drop_params(s);
    if (e->inc_c == s->c)
        rg__inc_free(e); /* made for the clinic that goes */
    rg_clinic_free(s->c);
    s->c = c;
    s->failed = 0;
    s->stamp = ++e->stamps; /* answers kept under the clinic's earlier load no longer stand */
    /* which rules use `now`, from their source files read just now (else at
     * the first evaluation) */
    unsigned char **nowuse;
    (void)rg__nowuse(e, c, &nowuse);
    return RG_OK;
}

int rg_engine_has_clinic(rg_engine *e, const char *clinic)
{
    rg__clinic_slot *s = rg__slot(e, clinic, 0);
    return s && s->c;
}

rg_clinic *rg_engine_take_clinic(rg_engine *e, const char *clinic)
{
    rg__clinic_slot *s = rg__slot(e, clinic, 0);
    if (!s || !s->c)
        return NULL;
    rg__slot_drop_params(s);
    if (e->inc_c == s->c)
        rg__inc_free(e);
    rg_clinic *c = s->c;
    s->c = NULL;
    s->stamp = ++e->stamps;
    return c;
}

const rg_zone *rg_engine_zone(rg_engine *e, const char *clinic)
{
    /* a clinic no evaluation loaded yet (simulate printing what its workers'
     * engines found): its settings give the zone, its protocols are not
     * loaded for that */
    rg__clinic_slot *s = rg__slot(e, clinic, 1);
    if (s && !s->c && !s->failed && e->o.default_dir) {
        if (!s->zone)
            s->zone = rg_clinic_zone(clinic, e->o.default_dir, e->o.shipped, &e->o.limits);
        if (s->zone)
            return s->zone;
    }
    rg_clinic *c = rg_engine_clinic(e, clinic);
    return c ? c->cal.zone : rg_zone_utc();
}

rg_clinic *rg_engine_clinic(rg_engine *e, const char *clinic)
{
    rg__clinic_slot *s = rg__slot(e, clinic, 1);
    if (!s)
        return NULL;
    if (s->c || s->failed)
        return s->c;
    char err[2048];
    if (!e->o.default_dir)
        snprintf(err, sizeof err, "clinic '%s' has no protocols configured", clinic);
    else if (rg_engine_set_clinic(e, clinic, e->o.default_dir, err, sizeof err) == RG_OK)
        return rg__slot(e, clinic, 0)->c;
    s = rg__slot(e, clinic, 0);
    s->failed = 1;
    rg__report(e, clinic, NULL, NULL, NULL, RG_TIME_NONE, err);
    return NULL;
}

const rg_engine_stats *rg_engine_stats_get(const rg_engine *e) { return &e->stats; }

void rg_engine_set_cause(rg_engine *e, const char *cause)
{
    snprintf(e->cause, sizeof e->cause, "%s", cause ? cause : "");
}

void rg_engine_set_limits(rg_engine *e, const rg_limits *l, const rg_budget_opts *b)
{
    e->o.limits = *l;
    e->o.budget.hits = b->hits;
    e->o.budget.window_s = b->window_s;
    e->o.budget.backoff_s = b->backoff_s;
    e->o.budget.cpu_ms = b->cpu_ms;
    e->o.budget.cpu_window_s = b->cpu_window_s;
}

void rg_engine_stats_add(rg_engine_stats *to, const rg_engine_stats *a, const rg_engine_stats *b)
{
    static const rg_engine_stats zero;
    if (!b)
        b = &zero;
    to->patients += a->patients - b->patients;
    to->events += a->events - b->events;
    to->steps += a->steps - b->steps;
    to->protocol_calls += a->protocol_calls - b->protocol_calls;
    to->rule_checks += a->rule_checks - b->rule_checks;
    to->errors += a->errors - b->errors;
    to->limit_hits += a->limit_hits - b->limit_hits;
    to->opened += a->opened - b->opened;
    to->resolved += a->resolved - b->resolved;
    to->quarantines += a->quarantines - b->quarantines;
    to->quarantine_skips += a->quarantine_skips - b->quarantine_skips;
    to->cpu_budget_hits += a->cpu_budget_hits - b->cpu_budget_hits;
}

void rg_engine_stats_merge(rg_engine *e, const rg_engine_stats *s)
{
    rg_engine_stats_add(&e->stats, s, NULL);
}

void rg_engine_cache_stats(const rg_engine *e, rg_hcache_stats *s) { rg_hcache_stats_get(e->hc, s); }

/* ---- the protected part: one protocol at one instant ------------------------- */

/* [-0, +0] Checks the alert table at idx and appends its normalized slots to
 * the list at lidx (starting at slot *k). Raises naming the field. What only
 * an alert that opens needs is looked at only when it opens at this step:
 * not while it is due later or has ended (h's now), nor while it is open
 * already (h, proto). That is its message, when given as a function or a
 * template (rg_message_format; the slot holds "" otherwise: an open alert
 * keeps the message it opened with, and the rule runs again when the alert
 * falls due), and its fields other than key, severity, due and ends. A
 * history with `eager` set (regimen check) looks at every alert in full. */
static void rg__alert_slots(lua_State *L, int idx, int lidx, lua_Integer *k, const char *rule,
                            const rg_history *h, const char *proto)
{
    static const char *const known[] = {"key", "message", "severity", "due", "ends", NULL};
    luaL_checkstack(L, 8, "alerts");
    if (lua_type(L, idx) != LUA_TTABLE)
        luaL_error(L, "rule '%s' returned a %s where an alert table was expected", rule,
                   luaL_typename(L, idx));
    /* key */
    int t = lua_getfield(L, idx, "key");
    if (t == LUA_TNUMBER && lua_isinteger(L, -1))
        lua_pushstring(L, lua_tostring(L, -1)), lua_remove(L, -2);
    else if (t == LUA_TNIL)
        lua_pushliteral(L, ""), lua_remove(L, -2);
    else if (t != LUA_TSTRING)
        luaL_error(L, "rule '%s': alert key must be a string or an integer, not a %s", rule,
                   t == LUA_TNUMBER ? "fraction" : lua_typename(L, t));
    if (lua_rawlen(L, -1) > RG_MAX_KEY)
        luaL_error(L, "rule '%s': alert key is %d bytes; the limit is %d", rule,
                   (int)lua_rawlen(L, -1), RG_MAX_KEY);
    /* a NUL or a control character would make two keys one (or forge a
     * line where the key is shown): refused, never cut or dropped */
    size_t klen;
    const char *key = lua_tolstring(L, -1, &klen);
    for (size_t i = 0; i < klen; i++)
        if ((unsigned char)key[i] < 0x20 || key[i] == 0x7f) {
            char byte[8]; /* lua_pushfstring has no %x */
            snprintf(byte, sizeof byte, "0x%02x", (unsigned)(unsigned char)key[i]);
            luaL_error(L, "rule '%s': alert key has a control character (byte %s at offset "
                          "%d); a key is printable text", rule, byte, (int)i);
        }
    lua_rawseti(L, lidx, ++*k);
    /* severity */
    t = lua_getfield(L, idx, "severity");
    if (t != LUA_TNIL && (t != LUA_TSTRING || !rg_severity_ok(lua_tostring(L, -1))))
        luaL_error(L, "rule '%s': alert severity must be \"info\", \"warning\" or \"critical\"",
                   rule);
    if (t == LUA_TNIL)
        lua_pushboolean(L, 0), lua_remove(L, -2);
    lua_rawseti(L, lidx, ++*k);
    /* does it open at this step? (due and ends are checked below) */
    int opens = 1;
    if (h && !h->eager) {
        for (int i = 0; i < 2 && opens; i++) {
            lua_getfield(L, idx, i ? "ends" : "due");
            if (lua_isinteger(L, -1))
                opens = i ? h->now < lua_tointeger(L, -1) : lua_tointeger(L, -1) <= h->now;
            lua_pop(L, 1);
        }
        if (opens && h->is_open && proto) {
            lua_rawgeti(L, lidx, *k - 1); /* the key */
            opens = !h->is_open(h->open_ud, h->clinic, h->patient, proto, rule,
                                lua_tostring(L, -1));
            lua_pop(L, 1);
        }
    }
    if (opens) {
        lua_pushnil(L);
        while (lua_next(L, idx)) {
            lua_pop(L, 1);
            int ok = 0;
            const char *f = lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1) : NULL;
            for (int i = 0; f && known[i] && !ok; i++)
                ok = !strcmp(f, known[i]);
            if (!ok) {
                const char *near = f ? rg_suggest(f, known, 5) : NULL;
                luaL_error(L, "rule '%s': alert has an unknown field '%s'%s%s%s (alerts have "
                              "key, message, severity, due and ends)", rule,
                           f ? f : luaL_typename(L, -1), near ? " (did you mean '" : "",
                           near ? near : "", near ? "'?)" : "");
            }
        }
    }
    /* message */
    t = lua_getfield(L, idx, "message");
    if ((t == LUA_TFUNCTION || t == LUA_TTABLE) && !opens) {
        lua_pop(L, 1);
        lua_pushliteral(L, "");
    } else if (t == LUA_TTABLE) {
        char who[160] = "rule '"; /* "rule '%s'" (snprintf cost more than the rest) */
        size_t rl = strlen(rule), at = strlen(who);
        if (rl > sizeof who - at - 2)
            rl = sizeof who - at - 2;
        memcpy(who + at, rule, rl);
        memcpy(who + at + rl, "'", 2);
        rg_message_format(L, lua_gettop(L), who);
        lua_remove(L, -2);
    } else if (t == LUA_TFUNCTION) {
        lua_call(L, 0, 1);
        t = lua_type(L, -1);
        if (t != LUA_TSTRING)
            luaL_error(L, "rule '%s': alert message function must return a string, not %s",
                       rule, lua_typename(L, t));
    } else if (t != LUA_TSTRING) {
        luaL_error(L, "rule '%s': alert message must be a string, a template table or a "
                      "function%s", rule, t == LUA_TNIL ? " (it is missing)" : "");
    }
    if (lua_rawlen(L, -1) > RG_MAX_MESSAGE)
        luaL_error(L, "rule '%s': alert message is %d bytes; the limit is %d", rule,
                   (int)lua_rawlen(L, -1), RG_MAX_MESSAGE);
    lua_rawseti(L, lidx, ++*k);
    for (int i = 0; i < 2; i++) {
        const char *f = i ? "ends" : "due";
        t = lua_getfield(L, idx, f);
        if (t == LUA_TNIL)
            lua_pushboolean(L, 0), lua_remove(L, -2);
        else if (!lua_isinteger(L, -1))
            luaL_error(L, "rule '%s': alert field '%s' must be a time (like last.at + days(2)), "
                          "not %s", rule, f, t == LUA_TNUMBER ? "a fraction or NaN"
                                                               : lua_typename(L, t));
        lua_rawseti(L, lidx, ++*k);
    }
}

/* [-0, +1] What a rule returned (at idx) as a flat list of alert slots. */
static void rg__normalize(lua_State *L, int idx, const char *rule, const rg_history *h,
                          const char *proto)
{
    int t = lua_type(L, idx);
    if (t == LUA_TNIL || (t == LUA_TBOOLEAN && !lua_toboolean(L, idx))) {
        lua_newtable(L);
        return;
    }
    if (t != LUA_TTABLE)
        luaL_error(L, "rule '%s' must return nil, an alert or a list of alerts, not a %s", rule,
                   lua_typename(L, t));
    /* One alert has a message; a list has an alert at [1] (or is empty). Any
     * other table is one alert too, checked as such: an alert whose
     * 'message' is misspelt must fail naming the field, not pass as an empty
     * list and never open. */
    int single = lua_getfield(L, idx, "message") != LUA_TNIL;
    lua_pop(L, 1);
    if (!single) {
        int list = lua_rawgeti(L, idx, 1) != LUA_TNIL;
        lua_pop(L, 1);
        if (!list) {
            lua_pushnil(L);
            if ((single = lua_next(L, idx) != 0))
                lua_pop(L, 2);
        }
    }
    lua_Integer n = 1;
    if (!single) {
        n = (lua_Integer)luaL_len(L, idx);
        if (n > RG_MAX_ALERTS)
            luaL_error(L, "rule '%s' returned %I alerts; the limit is %d per rule", rule, n,
                       RG_MAX_ALERTS);
    }
    /* sized once: the slots are appended without the table growing */
    lua_createtable(L, n > 0 ? (int)n * RG_ALERT_SLOTS : 0, 0);
    int list = lua_gettop(L);
    lua_Integer k = 0;
    if (single) {
        rg__alert_slots(L, idx, list, &k, rule, h, proto);
    } else {
        for (lua_Integer i = 1; i <= n; i++) {
            lua_geti(L, idx, i);
            rg__alert_slots(L, lua_gettop(L), list, &k, rule, h, proto);
            lua_pop(L, 1);
        }
    }
    /* keys must be unique within a rule: compared pairwise when there are
     * a few (no table made), else through a set of them */
    lua_Integer nal = k / RG_ALERT_SLOTS;
    if (nal <= 16) {
        for (lua_Integer i = 2; i <= nal; i++) {
            lua_rawgeti(L, list, (i - 1) * RG_ALERT_SLOTS + 1);
            for (lua_Integer j = 1; j < i; j++) {
                lua_rawgeti(L, list, (j - 1) * RG_ALERT_SLOTS + 1);
                if (lua_rawequal(L, -1, -2))
                    luaL_error(L, "rule '%s' returned two alerts with the key '%s' (give each "
                                  "its own key, e.g. the event's id)", rule, lua_tostring(L, -1));
                lua_pop(L, 1);
            }
            lua_pop(L, 1);
        }
        return;
    }
    lua_createtable(L, 0, (int)nal);
    int seen = lua_gettop(L);
    for (lua_Integer i = 1; i <= k; i += RG_ALERT_SLOTS) {
        lua_rawgeti(L, list, i);
        lua_pushvalue(L, -1);
        if (lua_rawget(L, seen) != LUA_TNIL)
            luaL_error(L, "rule '%s' returned two alerts with the key '%s' (give each its "
                          "own key, e.g. the event's id)", rule, lua_tostring(L, -2));
        lua_pop(L, 1);
        lua_pushboolean(L, 1);
        lua_rawset(L, seen);
    }
    lua_settop(L, list);
}

/* The plan events of a history whose every event has its type interned,
 * from the index by type: tids[0..n) the plan types' ids (0: not in this
 * history). */
typedef struct {
    const rg_history *h;
    const int *tids;
    int n;
} rg__plan_it;

/* Where the plan starts: the latest event (so far) of the first plan type,
 * or 0 (as the scan back from the end found it). */
static int rg__plan_start(rg__plan_it *it)
{
    int t = it->tids[0];
    if (!t)
        return 0;
    int k = rg_history_type_lower(it->h, t, it->h->n);
    return k > 0 ? it->h->tix[it->h->toff[t - 1] + k - 1] : 0;
}

/* The first plan event at index >= i (every plan type at once, in history
 * order; a type named twice counts once), or h->n. */
static int rg__plan_next(rg__plan_it *it, int i)
{
    const rg_history *h = it->h;
    int best = h->n;
    for (int j = 0; j < it->n; j++) {
        int t = it->tids[j], dup = 0;
        for (int k = 0; k < j && !dup; k++)
            dup = it->tids[k] == t;
        if (!t || dup)
            continue;
        int end = h->toff[t] - h->toff[t - 1];
        const int *l = h->tix + h->toff[t - 1];
        int p = rg_history_type_lower(h, t, i);
        if (p < end && l[p] < best)
            best = l[p];
    }
    return best;
}

/* [-0, +1] The parameters in force for this patient: the clinic's base, or a
 * copy with the patient's own plan (plan events' data) applied over it. The
 * first plan event type (by default "enrolled") starts a new plan: what an
 * earlier course set does not carry over into a re-enrolment. Returns 1
 * for a plan's copy (a plain table), 0 for the base's read-only view. */
static int rg__params(lua_State *L, int desc, int hidx)
{
    rg_history *h = lua_touserdata(L, hidx);
    lua_getfield(L, desc, "params");
    int base = lua_gettop(L);
    lua_getfield(L, desc, "plan");
    int plan = base + 1;
    lua_pushnil(L); /* base + 2: the copy, made when a plan event sets a parameter */
    const int copy = base + 2;
    lua_getfield(L, desc, "kinds"); /* base + 3: the declarations, to check plan values */
    const int kinds = base + 3;
    int custom = 0, start = 0;
    /* the plan types as interned ids (0: compare strings) */
    int ntids = (int)lua_rawlen(L, plan), tids[8] = {0};
    const char *names[8] = {0};
    if (ntids > 8)
        ntids = 8;
    for (int j = 0; j < ntids; j++) {
        lua_rawgeti(L, plan, j + 1);
        names[j] = lua_tostring(L, -1); /* kept alive by the plan table */
        lua_pop(L, 1);
        for (int k = 0; names[j] && k < h->ntypes && !tids[j]; k++)
            if (!strcmp(h->types[k], names[j]))
                tids[j] = k + 1;
    }
    /* every event's type interned: the plan events are read from the index
     * by type (rg__plan_next), not found by a scan of the whole history
     * per protocol (0.9% of a sweep) */
    rg__plan_it it = {h, tids, ntids};
    int indexed = h->tix && h->toff && h->ntypes > 0 && h->toff[h->ntypes] == h->nev &&
                  ntids > 0 && names[0];
#define RG__IS(ev, j) ((ev)->tid ? (ev)->tid == tids[j] : !strcmp((ev)->type, names[j]))
    if (indexed)
        start = rg__plan_start(&it);
    for (int i = h->n - 1; !indexed && ntids > 0 && names[0] && i >= 0 && !start; i--)
        if (RG__IS(&h->ev[i], 0))
            start = i;
    for (int i = indexed ? rg__plan_next(&it, start) : start; i < h->n;
         i = indexed ? rg__plan_next(&it, i + 1) : i + 1) {
        int is_plan = indexed;
        for (int j = 0; j < ntids && !is_plan; j++)
            is_plan = names[j] && RG__IS(&h->ev[i], j);
#undef RG__IS
        const rg_hevent *pe = &h->ev[i];
        if (!is_plan || !pe->fields)
            continue;
        size_t pos = 0;
        rg_field f;
        int fr;
        while ((fr = rg_fields_next(pe->fields, pe->nfields, &pos, &f)) == 1) {
            if (f.tag == RG_F_NULL)
                continue;
            lua_pushlstring(L, f.key, f.klen);
            rg_field_push(L, &f); /* key, value */
            lua_pushvalue(L, -2);
            if (lua_rawget(L, base) == LUA_TNIL) { /* not a parameter of this protocol */
                lua_pop(L, 3);
                continue;
            }
            lua_pop(L, 1);
            lua_pushvalue(L, -2);
            lua_rawget(L, kinds); /* key, value, declaration */
            char why[600];
            if (!rg_param_fits(L, -1, -2, 1, why, sizeof why))
                luaL_error(L, "patient plan: event %s sets '%s', which %s", h->ev[i].id,
                           lua_tostring(L, -3), why);
            lua_pop(L, 1);
            if (!custom) { /* copy the base */
                lua_newtable(L);
                lua_pushnil(L);
                while (lua_next(L, base)) {
                    lua_pushvalue(L, -2);
                    lua_insert(L, -2);
                    lua_rawset(L, -4);
                }
                lua_replace(L, copy);
                custom = 1;
            }
            lua_pushvalue(L, -2);
            lua_pushvalue(L, -2);
            lua_rawset(L, copy);
            lua_pop(L, 2);
        }
        if (fr < 0)
            luaL_error(L, "the stored data of event %s is damaged", pe->id);
    }
    if (custom) {
        lua_copy(L, copy, base);
        lua_settop(L, base);
        return 1;
    }
    lua_settop(L, base - 1);
    lua_getfield(L, desc, "params_ro");
    return 0;
}

/* [-4, +1] (result, rule id, history, protocol id) -> flat list of alert slots */
static int rg__normalize_call(lua_State *L)
{
    rg__normalize(L, 1, lua_tostring(L, 2), lua_touserdata(L, 3), lua_tostring(L, 4));
    return 1;
}

/* [-7, +1] (desc, history, now, mark, previous results, inc, partial) ->
 * results table: { params = plain table, base = true when they are the
 * protocol's own (no patient plan changed them), p = the read-only view of
 * a plan's copy the rules got, applies = bool, [r] = true
 * (the rule returned nothing) | the flat alert list | "error text" }. A
 * rule's error stays in its entry; a limit stops the whole evaluation
 * (re-raised). inc (a light userdata, struct rg__inc, or nil): what applies
 * and each rule that runs read is recorded there. partial (with inc and the
 * previous results): the parameters (made again when the previous results
 * have none: kept answers) and applies stand, only the rules marked in
 * inc->ran run, the others keep their previous entry. */
static int rg__eval_protocol(lua_State *L)
{
    rg_sandbox *sb = rg_sandbox_of(L);
    rg_history *h = lua_touserdata(L, 2);
    lua_Integer now = lua_tointeger(L, 3);
    uint32_t mark = (uint32_t)lua_tointeger(L, 4);
    struct rg__inc *in = lua_touserdata(L, 6);
    int partial = in && lua_toboolean(L, 7) && lua_type(L, 5) == LUA_TTABLE;
    lua_settop(L, 5);
    lua_insert(L, 1); /* 1: previous results; desc, history, now, mark at 2..5 */
    h->mark = mark;
    h->reads = NULL;
    luaL_checkstack(L, 16, "evaluation");
    lua_createtable(L, 8, 3);
    const int prev = 1, desc = 2, hist = 3, res = 6, p = 7;
    /* an answer kept from an earlier advance has no parameters: made again */
    int again = 0;
    if (partial) {
        again = lua_getfield(L, prev, "params") != LUA_TNIL;
        lua_pop(L, 1);
    }
    if (again) { /* the parameters in force stand (no plan event came) */
        lua_getfield(L, prev, "base");
        int base = lua_toboolean(L, -1);
        lua_setfield(L, res, "base");
        lua_getfield(L, prev, "params");
        lua_setfield(L, res, "params");
        if (base)
            lua_getfield(L, desc, "params_ro");
        else
            lua_getfield(L, prev, "p"); /* the read-only view of the plan's copy */
        lua_pushvalue(L, -1);
        lua_setfield(L, res, "p");
    } else {
        int custom = rg__params(L, desc, hist); /* 7: p as the rules see it */
        if (!custom) { /* the read-only view: record the plain base */
            lua_pushboolean(L, 1);
            lua_setfield(L, res, "base");
            lua_getfield(L, desc, "params");
        } else {
            lua_pushvalue(L, p);
        }
        lua_setfield(L, res, "params");
        /* what is recorded is what the rules get: a plan's copy is handed out
         * read-only too, so no rule can change what explain shows as in force */
        if (custom) {
            rg_sandbox_freeze(L, "the parameter table p");
            lua_pushvalue(L, p);
            lua_setfield(L, res, "p"); /* what the rules got, for a partial run */
        }
    }
    assert(lua_gettop(L) == p);
    int applies = 1;
    if (partial) { /* applies stands too */
        lua_getfield(L, prev, "applies");
    } else if (lua_getfield(L, desc, "applies") == LUA_TFUNCTION) {
        h->mark = mark;
        h->depth = 0;
        if (in) {
            memset(&in->applies, 0, sizeof in->applies);
            h->reads = &in->applies;
        }
        lua_pushvalue(L, hist);
        lua_pushinteger(L, now);
        lua_pushvalue(L, p);
        lua_call(L, 3, 1);
        h->reads = NULL;
    } else {
        lua_pop(L, 1);
        lua_pushboolean(L, 1);
    }
    applies = lua_toboolean(L, -1);
    lua_pop(L, 1);
    lua_pushboolean(L, applies);
    lua_setfield(L, res, "applies");
    if (!applies)
        return 1;
    lua_getfield(L, desc, "rules");
    const int rules = 8;
    assert(lua_gettop(L) == rules);
    lua_Integer n = (lua_Integer)lua_rawlen(L, rules);
    for (lua_Integer r = 1; r <= n; r++) {
        if (partial && r <= in->nrules && !in->ran[r - 1]) { /* its answer stands */
            lua_rawgeti(L, prev, r);
            lua_rawseti(L, res, r);
            continue;
        }
        lua_rawgeti(L, rules, r);          /* 9: rule description */
        lua_getfield(L, 9, "id");          /* 10 */
        lua_pushcfunction(L, rg_sandbox_msgh); /* 11 */
        h->mark = mark + (uint32_t)r;
        h->depth = 0;
        if (in && r <= in->nrules) {
            memset(&in->reads[r - 1], 0, sizeof in->reads[r - 1]);
            h->reads = &in->reads[r - 1];
        }
        lua_getfield(L, 9, "check");
        lua_pushvalue(L, hist);
        lua_pushinteger(L, now);
        lua_pushvalue(L, p);
        int status = lua_pcall(L, 3, 1, 11); /* 12: result or error */
        if (status == LUA_ERRMEM)
            rg_sandbox_errmem(sb);
        if (status != LUA_OK && (rg_sandbox_limit_fired(sb) || status == LUA_ERRMEM))
            return lua_error(L);
        int nothing = status == LUA_OK && (lua_isnil(L, 12) ||
                                           (lua_isboolean(L, 12) && !lua_toboolean(L, 12)));
        if (status == LUA_OK && !nothing) {
            lua_pushcfunction(L, rg__normalize_call);
            lua_insert(L, 12);
            lua_pushvalue(L, 10);
            lua_pushvalue(L, hist);
            lua_getfield(L, desc, "id");
            status = lua_pcall(L, 4, 1, 11); /* 12: alert list or error */
            if (status == LUA_ERRMEM)
                rg_sandbox_errmem(sb);
            if (status != LUA_OK && (rg_sandbox_limit_fired(sb) || status == LUA_ERRMEM))
                return lua_error(L);
            if (status != LUA_OK) {
                lua_getfield(L, 9, "where");
                lua_pushfstring(L, "%s: %s", lua_tostring(L, -1), lua_tostring(L, 12));
                lua_replace(L, 12);
                lua_settop(L, 12);
            }
        }
        h->reads = NULL;
        /* res[r]: true (no alerts), the flat alert list, or the error text */
        if (nothing)
            lua_pushboolean(L, 1);
        else if (status == LUA_OK)
            lua_pushvalue(L, 12);
        else if (lua_type(L, 12) == LUA_TSTRING || lua_type(L, 12) == LUA_TNUMBER)
            lua_pushstring(L, lua_tostring(L, 12));
        else
            lua_pushliteral(L, "error");
        lua_rawseti(L, res, r);
        lua_settop(L, rules);
    }
    lua_settop(L, res);
    return 1;
}

/* ---- the C side: events in, transitions out -------------------------------- */

/* Event strings and compiled data go into one buffer; pointers are fixed up
 * afterwards because the buffer may move while it grows. */
static int rg__collect_event(void *ud, const rg_stored_event *se)
{
    rg_engine *e = ud;
    if (e->nev == e->cap_ev) {
        int cap = e->cap_ev ? e->cap_ev * 2 : 64;
        rg_hevent *grown = realloc(e->ev, (size_t)cap * sizeof *grown);
        if (!grown)
            return RG_ENOMEM;
        e->ev = grown;
        e->cap_ev = cap;
    }
    rg_hevent *h = &e->ev[e->nev++];
    h->seq = se->seq;
    h->at = se->at;
    h->id = (const char *)(uintptr_t)e->text.len;
    if (rg_buf_add(&e->text, se->id, strlen(se->id) + 1))
        return RG_ENOMEM;
    h->tid = 0;
    for (int i = 0; i < e->ntypes && !h->tid; i++)
        if (!strcmp(e->types[i], se->type))
            h->tid = i + 1;
    if (!h->tid && e->ntypes < (int)RG_COUNTOF(e->types) &&
        (e->types[e->ntypes] = strdup(se->type)))
        h->tid = ++e->ntypes;
    h->type = (const char *)(uintptr_t)e->text.len;
    if (rg_buf_add(&e->text, se->type, strlen(se->type) + 1))
        return RG_ENOMEM;
    h->fields = NULL;
    h->nfields = 0;
    h->replaces = se->replaces;
    h->corrected_at = se->corrected_at;
    h->retracted = se->retracted;
    if (se->fields && se->nfields) { /* compiled at ingest: copied, never parsed */
        h->fields = (const unsigned char *)(uintptr_t)(e->text.len + 1); /* +1: NULL stays NULL */
        h->nfields = se->nfields;
        if (rg_buf_add(&e->text, se->fields, se->nfields))
            return RG_ENOMEM;
    }
    return RG_OK;
}

/* (at, seq) order of the collected events. */
static int rg__cmp_events(const void *a, const void *b)
{
    const rg_hevent *x = a, *y = b;
    if (x->at != y->at)
        return x->at < y->at ? -1 : 1;
    return x->seq < y->seq ? -1 : x->seq > y->seq;
}

/* Collects the patient's events (in the positions form rg__fixup_events
 * turns into pointers): from the history cache and the store's newer events
 * when the cache has the patient, else all from the store. */
static int rg__read_history(rg_engine *e, const char *clinic, const char *patient)
{
    int64_t after = -1;
    if (e->hc) {
        if (rg_store_rollbacks(e->st) != e->hc_gen) { /* it may hold what was never stored */
            rg_hcache_clear(e->hc);
            e->hc_gen = rg_store_rollbacks(e->st);
        }
        const rg_hevent *cev;
        const char *ctext;
        size_t clen;
        int cn;
        if (rg_hcache_get(e->hc, clinic, patient, &cev, &cn, &ctext, &clen, &after)) {
            if (cn > e->cap_ev) {
                rg_hevent *grown = realloc(e->ev, (size_t)cn * sizeof *grown);
                if (!grown)
                    return RG_ENOMEM;
                e->ev = grown;
                e->cap_ev = cn;
            }
            memcpy(e->ev, cev, (size_t)cn * sizeof *cev);
            e->nev = cn;
            if (rg_buf_add(&e->text, ctext, clen))
                return RG_ENOMEM;
        }
    }
    int cached = e->nev;
    int rc = rg_store_each_event_after(e->st, clinic, patient, after, rg__collect_event, e);
    if (rc || !e->hc || (cached && e->nev == cached))
        return rc;
    /* a late event sorts before what was cached */
    if (cached && rg__cmp_events(&e->ev[cached], &e->ev[cached - 1]) < 0)
        qsort(e->ev, (size_t)e->nev, sizeof *e->ev, rg__cmp_events);
    int64_t max_seq = after;
    for (int i = 0; i < e->nev; i++)
        if (e->ev[i].seq > max_seq)
            max_seq = e->ev[i].seq;
    rg_hcache_put(e->hc, clinic, patient, e->ev, e->nev, e->text.p, e->text.len, max_seq);
    return RG_OK;
}

int64_t rg_engine_history_after(const rg_engine *e, const char *clinic, const char *patient)
{
    if (!e->hc || rg_store_rollbacks(e->st) != e->hc_gen) /* (rg__read_history clears it) */
        return -1;
    return rg_hcache_peek(e->hc, clinic, patient);
}

/* Builds the per-type index of ev (n events; tix has room for them). */
static void rg__type_index(rg_engine *e, const rg_hevent *ev, int n)
{
    /* counting sort by type id; events keep their time order within a type:
     * toff[t] is first the end of type t's span, then, filled backwards, its
     * start; shifted down one, type t spans [toff[t-1], toff[t]) */
    int typed = 0;
    memset(e->toff, 0, (size_t)(e->ntypes + 1) * sizeof *e->toff);
    for (int i = 0; i < n; i++)
        if (ev[i].tid)
            e->toff[ev[i].tid]++, typed++;
    for (int t = 1; t <= e->ntypes; t++)
        e->toff[t] += e->toff[t - 1];
    for (int i = n - 1; i >= 0; i--)
        if (ev[i].tid)
            e->tix[--e->toff[ev[i].tid]] = i;
    for (int t = 0; t < e->ntypes; t++)
        e->toff[t] = e->toff[t + 1];
    e->toff[e->ntypes] = typed;
}

/* Fixes the pointers into the text buffer and builds the per-type index. */
static int rg__fixup_events(rg_engine *e)
{
    e->ncorr = 0;
    for (int i = 0; i < e->nev; i++) {
        rg_hevent *h = &e->ev[i];
        h->id = e->text.p + (uintptr_t)h->id;
        h->type = e->text.p + (uintptr_t)h->type;
        if (h->fields)
            h->fields = (const unsigned char *)e->text.p + ((uintptr_t)h->fields - 1);
        e->ncorr += h->replaces != 0 || h->retracted; /* a first version may be withdrawn */
    }
    if (e->nev > e->cap_tix || !e->toff) {
        int cap = e->nev + 64;
        int *tix = malloc((size_t)cap * sizeof *tix);
        int *toff = e->toff ? e->toff : malloc((RG_COUNTOF(e->types) + 1) * sizeof *toff);
        if (!tix || !toff) {
            free(tix);
            if (!e->toff)
                free(toff);
            return RG_ENOMEM;
        }
        free(e->tix);
        e->tix = tix;
        e->toff = toff;
        e->cap_tix = cap;
    }
    e->sev = e->ev;
    e->nsev = e->nev;
    e->epoch = -1;
    if (!e->ncorr)
        rg__type_index(e, e->ev, e->nev);
    return RG_OK;
}

/* The instant a stored version starts to count: a correction's
 * corrected_at, any other event's own time. */
static rg_time rg__takes_effect(const rg_hevent *h)
{
    return h->replaces ? h->corrected_at : h->at;
}

/* The versions in force at t (docs/corrections.md): a correction counts from
 * its corrected_at on, and from then on hides every version before it; a
 * version in force that is entered-in-error hides the event. Returns 1 when
 * vis was rebuilt (the history must be bound to it again), 0 when what the
 * last step saw still holds, or RG_ENOMEM. */
static int rg__versions_at(rg_engine *e, rg_time t)
{
    if (!e->ncorr)
        return 0;
    int k = 0;
    for (int i = 0; i < e->nev; i++)
        k += e->ev[i].replaces && e->ev[i].corrected_at <= t;
    if (k == e->epoch)
        return 0;
    if (e->nev > e->cap_vis) {
        rg_hevent *grown = realloc(e->vis, (size_t)e->nev * sizeof *grown);
        if (!grown)
            return RG_ENOMEM;
        e->vis = grown;
        e->cap_vis = e->nev;
    }
    char *out = calloc((size_t)e->nev + 1, 1);
    if (!out)
        return RG_ENOMEM;
    for (int i = 0; i < e->nev; i++)
        if (e->ev[i].replaces && e->ev[i].corrected_at > t)
            out[i] = 1; /* not made yet */
    for (int i = 0; i < e->nev; i++) {
        if (out[i] || !e->ev[i].replaces)
            continue;
        /* a correction in force hides the whole chain before it (a few
         * corrections per patient: a linear search per link is enough) */
        for (int64_t seq = e->ev[i].replaces; seq;) {
            int j = 0;
            while (j < e->nev && e->ev[j].seq != seq)
                j++;
            if (j == e->nev)
                break;
            out[j] = 1;
            seq = e->ev[j].replaces;
        }
    }
    e->nvis = 0;
    for (int i = 0; i < e->nev; i++)
        if (!out[i] && !e->ev[i].retracted)
            e->vis[e->nvis++] = e->ev[i];
    free(out);
    rg__type_index(e, e->vis, e->nvis);
    e->sev = e->vis;
    e->nsev = e->nvis;
    e->epoch = k;
    return 1;
}

static int rg__add_open(rg_engine *e, int64_t id, const rg_transition *t)
{
    if (e->nopen == e->cap_open) {
        int cap = e->cap_open ? e->cap_open * 2 : 16;
        rg__open *grown = realloc(e->open, (size_t)cap * sizeof *grown);
        if (!grown)
            return RG_ENOMEM;
        e->open = grown;
        e->cap_open = cap;
    }
    rg__open *a = &e->open[e->nopen];
    memset(a, 0, sizeof *a);
    a->id = id;
    a->due = t->due;
    a->live = 1;
    a->key = strdup(t->key);
    a->protocol = strdup(t->protocol);
    a->version = strdup(t->version);
    a->rule = strdup(t->rule);
    a->severity = strdup(t->severity);
    a->message = strdup(t->message);
    e->nopen++;
    if (!a->key || !a->protocol || !a->version || !a->rule || !a->severity || !a->message)
        return RG_ENOMEM;
    return RG_OK;
}

static int rg__collect_open(void *ud, int64_t id, const rg_transition *t)
{
    return rg__add_open(ud, id, t);
}

/* The alert's stable key: one alert per (clinic, patient, protocol, rule,
 * subkey), the first RG_KEY_HEX hex digits of a SHA-256 over the five
 * length-prefixed (digest.h). The same events give the same keys in
 * simulate, test and serve. */
static void rg__alert_key(const char *clinic, const char *patient, const char *proto,
                          const char *rule, const char *subkey, char out[RG_KEY_HEX + 1])
{
    const char *parts[5] = {clinic, patient, proto, rule, subkey};
    rg_sha256_parts(parts, 5, out, RG_KEY_HEX);
}

/* The key as schema versions before 8 made it (16 hex digits of an FNV-1a
 * of the five parts, each followed by 0xff): an alert opened then keeps its
 * key, so it is matched to a rule's result by this form. */
#define RG__LEGACY_KEY_HEX 16
static void rg__legacy_key(const char *clinic, const char *patient, const char *proto,
                           const char *rule, const char *subkey, char out[17])
{
    const char *parts[5] = {clinic, patient, proto, rule, subkey};
    uint64_t h = RG_FNV1A_SEED;
    for (int i = 0; i < 5; i++) {
        h = rg_fnv1a(h, parts[i], strlen(parts[i]));
        h = rg_fnv1a(h, "\xff", 1); /* separator */
    }
    snprintf(out, 17, "%016llx", (unsigned long long)h);
}

/* JSON of a plain parameter table (no call here can raise). */
static char *rg__params_json(lua_State *L, int idx)
{
    json_t *o = json_object();
    if (!o)
        return NULL;
    if (lua_type(L, idx) == LUA_TTABLE) {
        lua_pushnil(L);
        while (lua_next(L, idx)) {
            json_t *v = NULL;
            if (lua_type(L, -2) == LUA_TSTRING) {
                if (lua_isinteger(L, -1))
                    v = json_integer((json_int_t)lua_tointeger(L, -1));
                else if (lua_type(L, -1) == LUA_TNUMBER)
                    v = json_real(lua_tonumber(L, -1));
                else if (lua_type(L, -1) == LUA_TSTRING)
                    v = json_string(lua_tostring(L, -1));
                else if (lua_type(L, -1) == LUA_TBOOLEAN)
                    v = json_boolean(lua_toboolean(L, -1));
            }
            if (v)
                json_object_set_new(o, lua_tostring(L, -2), v);
            lua_pop(L, 1);
        }
    }
    char *s = json_dumps(o, JSON_COMPACT | JSON_SORT_KEYS);
    json_decref(o);
    return s;
}

/* The parameters of protocol pi at this step (its results table at ridx) as
 * JSON. The protocol's own parameters (no patient plan changed them) are
 * written once per loaded clinic and shared; a plan's are written once per
 * step and protocol into step[pi] (the step's, freed with it: every
 * transition of the protocol at this step has the same; 6,700 instructions
 * each when made per transition); without step, *owned is the text, for
 * the caller to free. */
static const char *rg__step_params(rg_engine *e, const rg_clinic *c, lua_State *L, int ridx,
                                   int pi, char **step, char **owned)
{
    rg__clinic_slot *s = NULL;
    *owned = NULL;
    lua_getfield(L, ridx, "base");
    int shared = lua_toboolean(L, -1);
    lua_pop(L, 1);
    for (int i = 0; shared && i < e->nclinics && !s; i++)
        if (e->clinics[i].c == c)
            s = &e->clinics[i];
    if (s && s->pjson && s->pjson[pi])
        return s->pjson[pi];
    if (!s && step && step[pi])
        return step[pi];
    lua_getfield(L, ridx, "params");
    char *j = rg__params_json(L, lua_gettop(L));
    lua_pop(L, 1);
    if (s && j && !s->pjson)
        s->pjson = calloc((size_t)c->nprotos, sizeof *s->pjson);
    if (s && j && s->pjson)
        return s->pjson[pi] = j;
    if (!s && step && j)
        return step[pi] = j;
    return *owned = j;
}

/* Appends s as a JSON string, escaped as jansson's json_dumps escapes it
 * (s is UTF-8: event ids were checked when the event was parsed). */
static int rg__json_string(rg_buf *b, const char *s)
{
    int rc = rg_buf_add(b, "\"", 1);
    const char *run = s;
    for (; rc == RG_OK && *s; s++) {
        unsigned char ch = (unsigned char)*s;
        if (ch >= 0x20 && ch != '"' && ch != '\\')
            continue;
        char esc[8];
        switch (ch) {
        case '"': snprintf(esc, sizeof esc, "\\\""); break;
        case '\\': snprintf(esc, sizeof esc, "\\\\"); break;
        case '\b': snprintf(esc, sizeof esc, "\\b"); break;
        case '\f': snprintf(esc, sizeof esc, "\\f"); break;
        case '\n': snprintf(esc, sizeof esc, "\\n"); break;
        case '\r': snprintf(esc, sizeof esc, "\\r"); break;
        case '\t': snprintf(esc, sizeof esc, "\\t"); break;
        default: snprintf(esc, sizeof esc, "\\u%04X", ch); break;
        }
        if ((rc = rg_buf_add(b, run, (size_t)(s - run))) == RG_OK)
            rc = rg_buf_add(b, esc, strlen(esc));
        run = s + 1;
    }
    if (rc == RG_OK)
        rc = rg_buf_add(b, run, (size_t)(s - run));
    return rc ? rc : rg_buf_add(b, "\"", 1);
}

/* JSON list of the ids of events a rule looked at (its evidence), in the
 * order of the history: the same text json_dumps(JSON_COMPACT) would give. */
static char *rg__evidence_json(rg_engine *e, int n, uint32_t mark)
{
    rg_buf b = {0};
    for (int k = 0; k < e->log.n; k++)
        if (e->log.v[k].mark == mark && e->log.v[k].ev < n)
            e->touched[e->log.v[k].ev] = mark;
    int rc = rg_buf_add(&b, "[", 1), first = 1;
    for (int i = 0; i < n && rc == RG_OK; i++)
        if (e->touched[i] == mark) {
            /* an id of plain characters goes in with its comma and quotes in
             * one piece; others are escaped */
            const char *id = e->sev[i].id;
            char one[128];
            size_t len = 0;
            if (!first)
                one[len++] = ',';
            one[len++] = '"';
            for (; len < sizeof one - 1 && *id >= 0x20 && *id != '"' && *id != '\\'; id++)
                one[len++] = *id;
            if (!*id) {
                one[len++] = '"';
                rc = rg_buf_add(&b, one, len);
            } else {
                if (!first)
                    rc = rg_buf_add(&b, ",", 1);
                if (rc == RG_OK)
                    rc = rg__json_string(&b, e->sev[i].id);
            }
            first = 0;
        }
    if (rc == RG_OK)
        rc = rg_buf_add(&b, "]", 1);
    if (rc != RG_OK)
        rg_buf_free(&b);
    return b.p;
}

typedef struct rg__cand {
    int proto, rule;
    char key[RG_KEY_HEX + 1];
    const char *subkey, *severity, *message; /* in the results tables on the Lua stack */
    rg_time due;
    int matched;
} rg__cand;

/* Reads the flat alert list at lidx of rule (pi, ri); appends the alerts open
 * at t to cands and lowers *wake to the next due or end after t (and *rnext,
 * the rule's own). */
static int rg__read_alerts(rg_engine *e, lua_State *L, int lidx, const rg_clinic *c,
                           const char *patient,
                           int pi, int ri, rg_time t, rg__cand **cands, int *ncands, int *cap,
                           rg_time *wake, const rg_rule **waker, rg_time *rnext,
                           struct rg__keys *kcache)
{
    const rg_protocol *p = &c->protos[pi];
    lua_Integer n = (lua_Integer)lua_rawlen(L, lidx);
    int nal = (int)(n / RG_ALERT_SLOTS);
    if (kcache && nal > kcache->cap) { /* room for a key per alert (kept ones stay) */
        char(*v)[RG_KEY_HEX + 1] = realloc(kcache->v, (size_t)nal * sizeof *v);
        if (v)
            kcache->v = v;
        unsigned char *have = v ? realloc(kcache->have, (size_t)nal) : NULL;
        if (!v || !have)
            return RG_ENOMEM;
        memset(have + kcache->cap, 0, (size_t)(nal - kcache->cap));
        kcache->have = have;
        kcache->cap = nal;
    }
    for (lua_Integer k = 1; k + RG_ALERT_SLOTS - 1 <= n; k += RG_ALERT_SLOTS) {
        rg_time due = RG_TIME_NONE, ends = RG_TIME_NONE;
        lua_rawgeti(L, lidx, k + 3);
        if (lua_isinteger(L, -1))
            due = lua_tointeger(L, -1);
        lua_rawgeti(L, lidx, k + 4);
        if (lua_isinteger(L, -1))
            ends = lua_tointeger(L, -1);
        lua_pop(L, 2);
        if (due != RG_TIME_NONE && due > t && (*wake == RG_TIME_NONE || due < *wake))
            *wake = due, *waker = &p->rules[ri];
        if (ends != RG_TIME_NONE && ends > t && (*wake == RG_TIME_NONE || ends < *wake))
            *wake = ends, *waker = &p->rules[ri];
        if (due != RG_TIME_NONE && due > t && (*rnext == RG_TIME_NONE || due < *rnext))
            *rnext = due;
        if (ends != RG_TIME_NONE && ends > t && (*rnext == RG_TIME_NONE || ends < *rnext))
            *rnext = ends;
        if ((due != RG_TIME_NONE && due > t) || (ends != RG_TIME_NONE && t >= ends))
            continue;
        if (*ncands == *cap) {
            int ncap = *cap ? *cap * 2 : 16;
            rg__cand *grown = realloc(*cands, (size_t)ncap * sizeof *grown);
            if (!grown)
                return RG_ENOMEM;
            *cands = grown;
            *cap = ncap;
        }
        rg__cand *cd = &(*cands)[(*ncands)++];
        memset(cd, 0, sizeof *cd);
        cd->proto = pi;
        cd->rule = ri;
        cd->due = due == RG_TIME_NONE ? t : due;
        lua_rawgeti(L, lidx, k);
        cd->subkey = lua_tostring(L, -1);
        int j = (int)((k - 1) / RG_ALERT_SLOTS);
        int cached = kcache && kcache->have[j];
        if (cached)
            memcpy(cd->key, kcache->v[j], sizeof cd->key);
        for (int x = 0; x < e->nkeyc && !cached; x++) {
            const struct rg__keyc *kc = &e->keyc[x];
            if (kc->subkey == cd->subkey && !strcmp(kc->proto_rule[0], p->id) &&
                !strcmp(kc->proto_rule[1], p->rules[ri].id)) {
                memcpy(cd->key, kc->key, sizeof kc->key);
                cached = 1;
            }
        }
        if (!cached)
            rg__alert_key(c->name, patient, p->id, p->rules[ri].id, cd->subkey, cd->key);
        if (kcache && !kcache->have[j]) {
            memcpy(kcache->v[j], cd->key, sizeof cd->key);
            kcache->have[j] = 1;
        }
        lua_rawgeti(L, lidx, k + 1);
        cd->severity = lua_isstring(L, -1) ? lua_tostring(L, -1) : p->rules[ri].severity;
        lua_rawgeti(L, lidx, k + 2);
        cd->message = lua_tostring(L, -1);
        lua_pop(L, 3); /* the list keeps the strings alive */
    }
    return RG_OK;
}

static int rg__emit(rg_engine *e, rg_clinic *c, const char *patient, int open, int64_t alert_id,
                    const char *key, const char *proto, const char *version, const char *rule,
                    const char *severity, const char *message, rg_time due, rg_time t,
                    const char *params, char *params_owned, char *evidence)
{
    rg_transition tr = {
        .at = t, .due = due, .open = open, .clinic = c->name, .patient = patient,
        .notify_at = rg_calendar_notify_at(&c->cal, severity, t),
        .key = key, .protocol = proto, .version = version, .rule = rule,
        .severity = severity, .message = message, .params = params, .evidence = evidence,
        .cause = e->cause[0] ? e->cause : NULL,
    };
    int rc = e->w.transition(e->w.ud, &tr, &alert_id);
    if (rc == RG_OK && open)
        rc = rg__add_open(e, alert_id, &tr);
    if (rc == RG_OK)
        open ? e->stats.opened++ : e->stats.resolved++;
    free(params_owned);
    free(evidence);
    return rc;
}

/* ---- matching keys by hash ------------------------------------------------- */

/* An open-addressing index of positions (stored + 1; 0 is empty) by key
 * string, so that matching the alerts a step returned against the open ones
 * is linear, not quadratic. Equal keys follow one another along a probe
 * sequence in the order they were added. */
typedef struct rg__kindex {
    int *slot;
    size_t mask;
} rg__kindex;

static uint64_t rg__khash(const char *s)
{
    uint64_t h = rg_fnv1a(RG_FNV1A_SEED, s, strlen(s));
    return h ^ (h >> 29);
}

static int rg__kindex_init(rg__kindex *ix, int n)
{
    size_t cap = 16;
    while (cap < (size_t)n * 2 + 2)
        cap <<= 1;
    ix->slot = calloc(cap, sizeof *ix->slot);
    ix->mask = cap - 1;
    return ix->slot ? RG_OK : RG_ENOMEM;
}

static void rg__kindex_add(rg__kindex *ix, const char *key, int pos)
{
    size_t i = (size_t)rg__khash(key) & ix->mask;
    while (ix->slot[i])
        i = (i + 1) & ix->mask;
    ix->slot[i] = pos + 1;
}

/* [-1, +1] (n) -> a table with room for n items (keys 1..n are then set
 * without allocating: outside a protected call), made protected: creating it
 * can raise (memory). */
static int rg__new_table(lua_State *L)
{
    lua_createtable(L, (int)lua_tointeger(L, 1), 0);
    return 1;
}

/* [-1, +1] (number of events) -> a new history (creating it can raise:
 * memory, so it runs protected) whose cache of event tables
 * has an array slot for each event: filled out of order (an event gets its
 * table when a rule first reads it), a table without them grows its hash
 * part through rehashes (lua_rawseti was 15 million of 945 million
 * instructions in the sweep of 700 patients). */
static int rg__new_history(lua_State *L)
{
    int n = (int)lua_tointeger(L, 1);
    rg_history *h = rg_history_new(L);
    h->eager = rg_check_mode(L);
    /* at most 64k slots ahead (1 MiB): a long history whose rules read a few
     * events must not spend the clinic's memory limit on empty slots */
    lua_createtable(L, n > 0 ? (n < 65536 ? n : 65536) : 0, 0);
    lua_setiuservalue(L, -2, 1);
    return 1;
}

/* Whether candidate cd is the open alert with this key: its key, or, for
 * an alert opened before keys were SHA-256 (16 hex digits), the key it had
 * then, so that it stays open, and resolves, under the key it was given. */
static int rg__is_alert(const rg_clinic *c, const char *patient, const rg__cand *cd,
                        const char *key)
{
    if (!strcmp(cd->key, key))
        return 1;
    if (strlen(key) != RG__LEGACY_KEY_HEX)
        return 0;
    char old[17];
    rg__legacy_key(c->name, patient, c->protos[cd->proto].id,
                   c->protos[cd->proto].rules[cd->rule].id, cd->subkey, old);
    return !strcmp(old, key);
}

/* Which (protocol, rule) an open alert belongs to in the clinic now. */
static int rg__find_rule(const rg_clinic *c, const rg__open *a, int *ri)
{
    for (int i = 0; i < c->nprotos; i++) {
        if (strcmp(c->protos[i].id, a->protocol) != 0)
            continue;
        for (int j = 0; j < c->protos[i].nrules; j++)
            if (!strcmp(c->protos[i].rules[j].id, a->rule)) {
                *ri = j;
                return i;
            }
    }
    return -1;
}

/* ---- failures are alerts (engine.h) ---------------------------------------- */

typedef struct rg__find_open {
    const char *key, *message;
    int64_t id;
    int same; /* its message is message */
} rg__find_open;

static int rg__find_open_cb(void *ud, int64_t id, const rg_transition *t)
{
    rg__find_open *f = ud;
    if (!strcmp(t->key, f->key)) {
        f->id = id;
        f->same = t->message && !strcmp(t->message, f->message);
    }
    return 0;
}

int rg_engine_system_alert(rg_store *st, const char *clinic, const char *rule,
                           const char *protocol, const char *version, const char *subkey,
                           int open, rg_time at, const char *message)
{
    char key[RG_KEY_HEX + 1];
    rg__alert_key(clinic, "", protocol, rule, subkey, key);
    rg__find_open f = {key, message, 0, 0};
    int rc = rg_store_each_open_alert(st, clinic, "", rg__find_open_cb, &f);
    if (rc || (!open && !f.id) || (open && f.id && (open == 1 || f.same)))
        return rc;
    rg_transition t = {
        .at = at, .due = at, .open = 0, .clinic = clinic, .patient = "", .notify_at = at,
        .key = key, .protocol = protocol, .version = version ? version : "", .rule = rule,
        .severity = "critical", .message = message, .cause = "system",
    };
    if (open && f.id) { /* (RG_ALERT_RENEW) */
        t.message = "what this alert reports changed: the alert of the same key that follows "
                    "says what holds now";
        if ((rc = rg_store_transition(st, &t, &f.id)))
            return rc;
        t.message = message;
        f.id = 0;
    }
    t.open = open != 0;
    return rg_store_transition(st, &t, &f.id);
}

int rg_engine_rule_status(rg_store *st, const char *clinic, const char *patient,
                          const char *protocol, const char *version, const char *rule,
                          rg_time at, const char *msg)
{
    int64_t before = 0, after = 0;
    rg_time since = RG_TIME_NONE;
    int rc = rg_store_rule_failing(st, clinic, patient, protocol, rule, at, msg, &before, &after,
                                   &since);
    if (rc || (before == 0) == (after == 0))
        return rc;
    char text[RG_MAX_MESSAGE + 1], when[RG_TIME_BUFSZ], what[300];
    if (*rule)
        snprintf(what, sizeof what, "rule '%s' of protocol %s", rule, protocol);
    else
        snprintf(what, sizeof what, "protocol %s", protocol);
    /* the error's first line (it names the file and line; a traceback
     * follows in the evaluation errors), within an alert message's limit */
    int first = msg ? (int)strcspn(msg, "\n") : 0;
    if (after)
        snprintf(text, sizeof text, "%s fails to evaluate since %s for %lld patient%s (first: "
                 "%s), so its alerts cannot open or resolve: %.*s", what,
                 rg_time_format(since, when), (long long)after, after == 1 ? "" : "s", patient,
                 first < 1500 ? first : 1500, msg ? msg : "");
    else
        snprintf(text, sizeof text, "%s evaluates cleanly again for every patient it failed for",
                 what);
    return rg_engine_system_alert(st, clinic, RG_EVALUATION_FAILED, protocol, version, rule,
                                  after != 0, at, text);
}

static int rg__fail_find(const rg_engine *e, const char *proto, const char *rule)
{
    for (int i = 0; i < e->nfail; i++)
        if (!strcmp(e->fail[i].proto, proto) && !strcmp(e->fail[i].rule, rule))
            return i;
    return -1;
}

/* (protocol pi, rule) failed for the patient at t with msg: recorded once,
 * when it starts failing. */
static int rg__failed(rg_engine *e, const rg_clinic *c, const char *patient, int pi,
                      const char *rule, rg_time t, const char *msg)
{
    const rg_protocol *p = &c->protos[pi];
    if (rg__fail_find(e, p->id, rule) >= 0)
        return RG_OK;
    int rc = e->w.rule_status(e->w.ud, c->name, patient, p->id, p->version, rule, t, msg);
    return rc ? rc : rg__fail_add(e, p->id, rule);
}

/* After a step's results are read (the results tables of the protocols at
 * base + 1 + i): every failing pair that evaluated cleanly, or no longer
 * exists, is clean again. One that did not run (an earlier protocol hit a
 * limit) stays as it was. */
static int rg__fail_settle(rg_engine *e, const rg_clinic *c, lua_State *L, int base,
                           const char *patient, rg_time t)
{
    int rc = RG_OK;
    for (int k = e->nfail - 1; k >= 0 && rc == RG_OK; k--) {
        struct rg__failing *f = &e->fail[k];
        int pi = 0, clean = 1;
        while (pi < c->nprotos && strcmp(c->protos[pi].id, f->proto))
            pi++;
        if (pi < c->nprotos) {
            int res = base + 1 + pi, ri = 0;
            const rg_protocol *p = &c->protos[pi];
            while (*f->rule && ri < p->nrules && strcmp(p->rules[ri].id, f->rule))
                ri++;
            if (lua_type(L, res) != LUA_TTABLE) {
                clean = 0; /* the protocol failed or did not run */
            } else if (*f->rule && ri < p->nrules) {
                lua_getfield(L, res, "applies");
                int applies = lua_toboolean(L, -1);
                lua_pop(L, 1);
                clean = !applies || lua_rawgeti(L, res, ri + 1) != LUA_TSTRING;
                if (applies)
                    lua_pop(L, 1);
            }
        }
        if (!clean)
            continue;
        const char *version = pi < c->nprotos ? c->protos[pi].version : "";
        rc = e->w.rule_status(e->w.ud, c->name, patient, f->proto, version, f->rule, t, NULL);
        free(f->proto);
        free(f->rule);
        e->fail[k] = e->fail[--e->nfail];
    }
    return rc;
}

/* ---- incremental evaluation: what a rule read, and when it runs again ------- */

/* Counts the uses of the variable `name` in lines [from, to] of Lua source
 * text: identifier tokens outside comments and strings that are not a field
 * name (after a single '.' or ':'). */
static int rg__count_name(const char *src, size_t len, const char *name, int from, int to)
{
    size_t nl = strlen(name);
    int line = 1, count = 0;
    char prev = 0; /* the last character that is not a space */
    char prev2 = 0;
    for (size_t i = 0; i < len && line <= to;) {
        char ch = src[i];
        if (ch == '\n') {
            line++, i++;
            continue;
        }
        size_t lvl = 0;
        /* long brackets: [[ ]], [==[ ]==], also after -- */
        int comment = ch == '-' && i + 1 < len && src[i + 1] == '-';
        size_t j = comment ? i + 2 : i;
        if (j < len && src[j] == '[') {
            size_t k = j + 1;
            while (k < len && src[k] == '=')
                k++, lvl++;
            if (k < len && src[k] == '[') { /* a long string or comment */
                for (k++; k < len; k++) {
                    if (src[k] == '\n')
                        line++;
                    if (src[k] == ']') {
                        size_t m = k + 1, eq = 0;
                        while (m < len && src[m] == '=')
                            m++, eq++;
                        if (eq == lvl && m < len && src[m] == ']') {
                            k = m;
                            break;
                        }
                    }
                }
                i = k + 1;
                if (!comment)
                    prev2 = prev, prev = ']';
                continue;
            }
        }
        if (comment) {
            while (i < len && src[i] != '\n')
                i++;
            continue;
        }
        if (ch == '"' || ch == '\'') {
            for (i++; i < len && src[i] != ch; i++) {
                if (src[i] == '\\' && i + 1 < len)
                    i++;
                if (src[i] == '\n')
                    line++;
            }
            i++;
            prev2 = prev, prev = ch;
            continue;
        }
        if (ch == '_' || (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z')) {
            size_t k = i;
            while (k < len && (src[k] == '_' || (src[k] >= 'a' && src[k] <= 'z') ||
                               (src[k] >= 'A' && src[k] <= 'Z') || (src[k] >= '0' && src[k] <= '9')))
                k++;
            int field = (prev == '.' && prev2 != '.') || prev == ':';
            if (line >= from && k - i == nl && !memcmp(src + i, name, nl) && !field)
                count++;
            i = k;
            prev2 = prev, prev = 'a';
            continue;
        }
        if (ch != ' ' && ch != '\t' && ch != '\r')
            prev2 = prev, prev = ch;
        i++;
    }
    return count;
}

/* [-0, +0] Does the function at idx use its second parameter (`now`)? Found
 * in its source text as loaded (rg_sandbox_source: not the file as it may be
 * by now): 1 when the parameter's name is used as a variable in the
 * function's lines other than where it is declared, and whenever that cannot
 * be told (a C or vararg function, a source not loaded as a file, or one
 * that does not show the declaration). A function with fewer parameters
 * cannot see it. */
static int rg__reads_now(lua_State *L, int idx)
{
    if (lua_type(L, idx) != LUA_TFUNCTION)
        return 0; /* no function: nothing runs */
    lua_Debug ar;
    lua_pushvalue(L, idx);
    if (!lua_getinfo(L, ">Su", &ar) || strcmp(ar.what, "Lua") != 0 || ar.isvararg)
        return 1;
    if (ar.nparams < 2)
        return 0;
    lua_pushvalue(L, idx);
    const char *pname = lua_getlocal(L, NULL, 2); /* kept alive by the function's prototype */
    char name[64];
    snprintf(name, sizeof name, "%s", pname ? pname : "");
    lua_pop(L, 1);
    if (!*name || ar.source[0] != '@' || ar.linedefined <= 0)
        return 1;
    size_t len;
    const char *text = rg_sandbox_source(rg_sandbox_of(L), ar.source + 1, &len);
    if (!text)
        return 1;
    int uses = rg__count_name(text, len, name, ar.linedefined, ar.lastlinedefined);
    return uses != 1; /* 1: only its declaration; 0: not the file it came from */
}

/* Finds, once per loaded clinic, which applies and rules use `now`. */
static int rg__nowuse(rg_engine *e, rg_clinic *c, unsigned char ***out)
{
    rg__clinic_slot *s = rg__slot(e, c->name, 0);
    if (!s || s->c != c)
        return RG_EINVAL;
    if (s->nowuse) {
        *out = s->nowuse;
        return RG_OK;
    }
    unsigned char **u = calloc((size_t)c->nprotos + 1, sizeof *u);
    if (!u)
        return RG_ENOMEM;
    lua_State *L = rg_sandbox_state(c->sb);
    for (int i = 0; i < c->nprotos; i++) {
        if (!(u[i] = calloc((size_t)c->protos[i].nrules + 1, 1))) {
            for (int k = 0; k < i; k++)
                free(u[k]);
            free(u);
            return RG_ENOMEM;
        }
        if (!lua_checkstack(L, 8)) { /* cannot be told: each runs at every step */
            memset(u[i], 1, (size_t)c->protos[i].nrules + 1);
            continue;
        }
        rg_clinic_push_protocol(c, i);
        lua_getfield(L, -1, "applies");
        u[i][0] = (unsigned char)rg__reads_now(L, lua_gettop(L));
        lua_pop(L, 1);
        lua_getfield(L, -1, "rules");
        for (int r = 0; r < c->protos[i].nrules; r++) {
            lua_rawgeti(L, -1, r + 1);
            lua_getfield(L, -1, "check");
            u[i][1 + r] = (unsigned char)rg__reads_now(L, lua_gettop(L));
            lua_pop(L, 2);
        }
        lua_pop(L, 2);
    }
    *out = s->nowuse = u;
    return RG_OK;
}

/* Makes the per-protocol state for clinic c, as at the start of an advance:
 * nothing kept. */
static int rg__inc_reset(rg_engine *e, const rg_clinic *c)
{
    if (e->inc_c != c) {
        rg__inc_free(e);
        if (!(e->inc = calloc((size_t)c->nprotos + 1, sizeof *e->inc)))
            return RG_ENOMEM;
        e->ninc = c->nprotos;
        e->inc_c = c;
        for (int i = 0; i < c->nprotos; i++) {
            struct rg__inc *in = &e->inc[i];
            int nr = c->protos[i].nrules;
            in->nrules = nr;
            in->reads = calloc((size_t)nr + 1, sizeof *in->reads);
            in->next = calloc((size_t)nr + 1, sizeof *in->next);
            in->keep = calloc((size_t)nr + 1, 1);
            in->ran = calloc((size_t)nr + 2, 1);
            in->keys = calloc((size_t)nr + 1, sizeof *in->keys);
            if (!in->reads || !in->next || !in->keep || !in->ran || !in->keys) {
                rg__inc_free(e);
                return RG_ENOMEM;
            }
        }
    }
    for (int i = 0; i < e->ninc; i++)
        e->inc[i].valid = 0;
    e->last_n = -1;
    e->rebound = 1;
    e->restored = 0;
    return RG_OK;
}

/* ---- kept answers: the service's evaluations of a patient, one after another --- */

/* Each evaluation of a patient by the service (an event, a wake-up) is an
 * advance of its own. At the end of one, what e->inc and the results at
 * e->pidx hold is written as a blob beside the patient's history in the
 * cache (rg_hcache_keep); the next advance of the patient takes it up
 * (rg__keep_restore) when nothing it depends on moved meanwhile: the same
 * load of the clinic's protocols and parameters (stamp), the patient's
 * clock and newest seq as that advance left them (no other evaluation, no
 * lost write), the same open alerts (their keys), and no corrections in the
 * history. Its first step then finds what changed by seq and time
 * (rg__step) and rg__plan decides as within one advance. Anything else
 * starts afresh, as a cache miss or an eviction does. */

#define RG__KEEP_MAGIC 0x4b455031u /* "KEP1" */

typedef struct rg__keephdr {
    uint32_t magic;
    int32_t nprotos, last_n, nopen;
    uint64_t stamp, open_sig;
    int64_t clock, seq, last_t;
} rg__keephdr;

/* The open alerts as a signature: a sum of their keys' hashes (the order
 * the store hands them out in does not matter) and their number. */
static uint64_t rg__open_sig(const rg_engine *e, int *n)
{
    uint64_t sig = 0;
    *n = 0;
    for (int a = 0; a < e->nopen; a++)
        if (e->open[a].live) {
            sig += rg_fnv1a(RG_FNV1A_SEED, e->open[a].key, strlen(e->open[a].key));
            ++*n;
        }
    return sig;
}

static int rg__kw(rg_buf *b, const void *p, size_t n) { return rg_buf_add(b, p, n); }

/* [-0, +0] Appends the Lua value at idx (a scalar of an alert list) to b. */
static int rg__kw_value(rg_buf *b, lua_State *L, int idx)
{
    char tag;
    switch (lua_type(L, idx)) {
    case LUA_TSTRING: {
        size_t len;
        const char *v = lua_tolstring(L, idx, &len);
        uint32_t n = (uint32_t)len;
        tag = 's';
        return rg__kw(b, &tag, 1) || rg__kw(b, &n, sizeof n) || rg__kw(b, v, len);
    }
    case LUA_TNUMBER:
        if (lua_isinteger(L, idx)) {
            lua_Integer v = lua_tointeger(L, idx);
            tag = 'i';
            return rg__kw(b, &tag, 1) || rg__kw(b, &v, sizeof v);
        } else {
            lua_Number v = lua_tonumber(L, idx);
            tag = 'n';
            return rg__kw(b, &tag, 1) || rg__kw(b, &v, sizeof v);
        }
    case LUA_TBOOLEAN:
        tag = lua_toboolean(L, idx) ? 'T' : 'F';
        return rg__kw(b, &tag, 1);
    default:
        tag = '0'; /* (an alert list holds none) */
        return rg__kw(b, &tag, 1);
    }
}

/* [-0, +0] Keeps the answers of this advance for the patient (clock and seq: its
 * state as the advance leaves it), or drops what it had when they cannot
 * stand (corrections in its history, no step, nothing kept). Never fails:
 * without kept answers the next advance starts afresh. */
static void rg__keep_save(rg_engine *e, const rg_clinic *c, const char *patient, rg_time clock,
                          int64_t seq)
{
    if (!e->hc || !e->incremental)
        return;
    lua_State *L = rg_sandbox_state(c->sb);
    rg__clinic_slot *slot = rg__slot(e, c->name, 0);
    rg_buf *b = &e->keepbuf;
    b->len = 0;
    int any = 0;
    for (int i = 0; i < e->ninc; i++)
        any |= e->inc[i].valid;
    if (!any || e->ncorr || e->last_n < 0 || !slot || slot->c != c || e->inc_c != c ||
        !lua_checkstack(L, 4)) {
        rg_hcache_keep(e->hc, c->name, patient, NULL, 0);
        return;
    }
    rg__keephdr h = {.magic = RG__KEEP_MAGIC, .nprotos = c->nprotos, .last_n = e->last_n,
                     .stamp = slot->stamp, .clock = clock, .seq = seq, .last_t = e->last_t};
    h.open_sig = rg__open_sig(e, &h.nopen);
    int rc = rg__kw(b, &h, sizeof h);
    for (int i = 0; i < c->nprotos && rc == RG_OK; i++) {
        const struct rg__inc *in = &e->inc[i];
        lua_rawgeti(L, e->pidx, i + 1);
        int res = lua_gettop(L);
        unsigned char valid = in->valid && lua_type(L, res) == LUA_TTABLE;
        unsigned char applied = 0;
        if (valid) {
            lua_getfield(L, res, "applies");
            applied = (unsigned char)lua_toboolean(L, -1);
            lua_pop(L, 1);
        }
        rc = rg__kw(b, &valid, 1);
        if (valid && rc == RG_OK)
            rc = rg__kw(b, &applied, 1) || rg__kw(b, &in->applies, sizeof in->applies);
        for (int r = 0; valid && applied && r < in->nrules && rc == RG_OK; r++) {
            rc = rg__kw(b, &in->reads[r], sizeof in->reads[r]) ||
                 rg__kw(b, &in->next[r], sizeof in->next[r]) || rg__kw(b, &in->keep[r], 1);
            int kind = lua_rawgeti(L, res, r + 1);
            if (rc == RG_OK && kind == LUA_TTABLE) {
                uint32_t n = (uint32_t)lua_rawlen(L, -1);
                char tag = 'l';
                rc = rg__kw(b, &tag, 1) || rg__kw(b, &n, sizeof n);
                for (uint32_t k = 1; k <= n && rc == RG_OK; k++) {
                    lua_rawgeti(L, -1, (lua_Integer)k);
                    rc = rg__kw_value(b, L, lua_gettop(L));
                    lua_pop(L, 1);
                }
            } else if (rc == RG_OK) { /* true (nothing), or an error (it runs again) */
                rc = rg__kw_value(b, L, lua_gettop(L));
            }
            lua_pop(L, 1);
        }
        lua_settop(L, res - 1);
    }
    rg_hcache_keep(e->hc, c->name, patient, rc == RG_OK ? b->p : NULL, rc == RG_OK ? b->len : 0);
}

/* Reading a blob: each read checks that it stays inside. */
typedef struct rg__kr {
    const char *p;
    size_t len, at;
} rg__kr;

static int rg__kr_get(rg__kr *r, void *out, size_t n)
{
    if (r->len - r->at < n)
        return 0;
    memcpy(out, r->p + r->at, n);
    r->at += n;
    return 1;
}

/* [-0, +1] Pushes the value written by rg__kw_value (nil when the blob is
 * damaged: the caller gives up). */
static int rg__kr_value(lua_State *L, rg__kr *r)
{
    char tag = 0;
    if (!rg__kr_get(r, &tag, 1)) {
        lua_pushnil(L);
        return 0;
    }
    switch (tag) {
    case 's': {
        uint32_t n;
        if (!rg__kr_get(r, &n, sizeof n) || r->len - r->at < n)
            break;
        lua_pushlstring(L, r->p + r->at, n);
        r->at += n;
        return 1;
    }
    case 'i': {
        lua_Integer v;
        if (!rg__kr_get(r, &v, sizeof v))
            break;
        lua_pushinteger(L, v);
        return 1;
    }
    case 'n': {
        lua_Number v;
        if (!rg__kr_get(r, &v, sizeof v))
            break;
        lua_pushnumber(L, v);
        return 1;
    }
    case 'T':
    case 'F':
        lua_pushboolean(L, tag == 'T');
        return 1;
    }
    lua_pushnil(L);
    return 0;
}

/* [-2, +1] (engine, reader) -> the results by protocol as rg__step_collect
 * leaves them at e->pidx, e->inc filled as it was, from a kept blob past its
 * header; raises (memory) or returns nil (a damaged blob). A protocol's
 * table has no params: rg__eval_protocol makes them again at its next call
 * (rg__plan makes one). */
static int rg__keep_build(lua_State *L)
{
    rg_engine *e = lua_touserdata(L, 1);
    rg__kr *r = lua_touserdata(L, 2);
    lua_createtable(L, e->ninc, 0);
    int top = lua_gettop(L);
    for (int i = 0; i < e->ninc; i++) {
        struct rg__inc *in = &e->inc[i];
        unsigned char valid = 0, applied = 0;
        if (!rg__kr_get(r, &valid, 1))
            return lua_pushnil(L), 1;
        in->valid = 0;
        if (!valid)
            continue;
        if (!rg__kr_get(r, &applied, 1) || !rg__kr_get(r, &in->applies, sizeof in->applies))
            return lua_pushnil(L), 1;
        lua_createtable(L, in->nrules, 1);
        lua_pushboolean(L, applied);
        lua_setfield(L, -2, "applies");
        for (int k = 0; k < in->nrules; k++) {
            in->keep[k] = 0;
            in->next[k] = RG_TIME_NONE;
            if (in->keys[k].cap) /* the keys of another patient's answers */
                memset(in->keys[k].have, 0, (size_t)in->keys[k].cap);
        }
        for (int k = 0; applied && k < in->nrules; k++) {
            if (!rg__kr_get(r, &in->reads[k], sizeof in->reads[k]) ||
                !rg__kr_get(r, &in->next[k], sizeof in->next[k]) ||
                !rg__kr_get(r, &in->keep[k], 1))
                return lua_pushnil(L), 1;
            char tag = r->at < r->len ? r->p[r->at] : 0;
            if (tag == 'l') {
                uint32_t n;
                r->at++;
                if (!rg__kr_get(r, &n, sizeof n) || n > r->len - r->at)
                    return lua_pushnil(L), 1;
                lua_createtable(L, (int)n, 0);
                for (uint32_t j = 1; j <= n; j++) {
                    if (!rg__kr_value(L, r))
                        return lua_pushnil(L), 1;
                    lua_rawseti(L, -2, (lua_Integer)j);
                }
            } else if (!rg__kr_value(L, r)) {
                return lua_pushnil(L), 1;
            }
            lua_rawseti(L, -2, k + 1);
        }
        lua_rawseti(L, top, i + 1);
        in->valid = 1;
    }
    if (r->at != r->len)
        lua_pushnil(L);
    return 1;
}

/* [-0, +0] Takes up the answers kept for the patient (rg__keep_save) when they still
 * stand for this advance (ps: the patient's state as read at its start);
 * else the advance starts afresh, as without them. The results go to
 * e->pidx. Returns RG_OK either way, or RG_ENOMEM. */
static int rg__keep_restore(rg_engine *e, const rg_clinic *c, const char *patient,
                            const rg_patient_state *ps)
{
    const void *blob;
    size_t len;
    rg__keephdr h;
    if (!e->hc || !e->incremental)
        return RG_OK;
    if (!rg_hcache_kept(e->hc, c->name, patient, &blob, &len) || len < sizeof h)
        return RG_OK; /* (a miss of the history is counted by the cache) */
    memcpy(&h, blob, sizeof h);
    const rg__clinic_slot *slot = rg__slot(e, c->name, 0);
    int nopen;
    uint64_t sig = rg__open_sig(e, &nopen);
    int n = 0; /* the events the kept answers saw */
    for (int k = 0; k < e->nev; k++)
        n += e->ev[k].seq <= h.seq && e->ev[k].at <= h.last_t;
    if (h.magic != RG__KEEP_MAGIC || !slot || slot->c != c || h.stamp != slot->stamp ||
        h.nprotos != c->nprotos || e->inc_c != c || h.clock != ps->clock ||
        h.seq != ps->last_seq || h.open_sig != sig || h.nopen != nopen || e->ncorr ||
        n != h.last_n) {
        rg_hcache_kept_count(e->hc, 0);
        rg_hcache_keep(e->hc, c->name, patient, NULL, 0);
        return RG_OK;
    }
    lua_State *L = rg_sandbox_state(c->sb);
    rg__kr r = {.p = blob, .len = len, .at = sizeof h};
    lua_pushcfunction(L, rg__keep_build);
    lua_pushlightuserdata(L, e);
    lua_pushlightuserdata(L, &r);
    char err[256];
    if (rg_pcall(c->sb, 2, 1, err, sizeof err)) {
        for (int i = 0; i < e->ninc; i++)
            e->inc[i].valid = 0;
        lua_pop(L, 1);
        return RG_ENOMEM;
    }
    if (lua_type(L, -1) != LUA_TTABLE) { /* damaged: (never written so) start afresh */
        for (int i = 0; i < e->ninc; i++)
            e->inc[i].valid = 0;
        lua_pop(L, 1);
        rg_hcache_kept_count(e->hc, 0);
        rg_hcache_keep(e->hc, c->name, patient, NULL, 0);
        return RG_OK;
    }
    lua_replace(L, e->pidx);
    rg_hcache_kept_count(e->hc, 1);
    e->restored = 1;
    e->kept_t = e->last_t = h.last_t;
    e->kept_seq = h.seq;
    e->last_n = h.last_n;
    return RG_OK;
}

/* What one step works with: rg__step and its phases (run, collect, resolve,
 * open). The results of protocol i are at base + 1 + i on the Lua stack (a
 * table, or nil when it failed or did not run). */
typedef struct rg__stepctx {
    rg_clinic *c;
    const char *patient;
    lua_State *L;
    rg_history *h;
    int hidx, base;
    int n;            /* events visible at t */
    rg_time t;
    uint32_t *marks;  /* per protocol: the touch mark of its applies (rule r: + 1 + r) */
    char *failed;     /* per rule, flattened: it failed at this step (its alerts stay) */
    char **pjson;     /* per protocol: its plan's parameters as JSON, once made (rg__step_params) */
    int *first;       /* per protocol: the index of its first rule in failed */
    int nflags;       /* rules of the clinic */
    int limit;        /* a limit stopped the evaluation: later protocols did not run */
    rg_reads changed; /* the types of the events that came into view since the last step */
    rg__cand *cands;  /* the alerts open at t the rules returned */
    int ncands, cap;
    lua_Integer nalerts; /* alerts returned by the rules so far in this step */
    rg_time *wake;
    const rg_rule **waker;
    const unsigned char *const *nowuse; /* rg__nowuse, or NULL: every rule runs */
    rg__clinic_slot *slot;
    char err[4096];
} rg__stepctx;

/* Which of protocol i's rules must run at this step (inc->ran; ran[nrules]:
 * applies): 0 all of them (nothing kept, applies or the parameters may have
 * changed), 1 none (the previous results stand as they are), 2 those marked.
 * A rule runs again when its last answer was an error or was capped, when
 * it reads the clock (h.now, or its `now` argument), when an event of a type
 * it read came into view, or when one of its alerts falls due or ends. */
static int rg__plan(rg_engine *e, const rg__stepctx *s, int i)
{
    struct rg__inc *in = &e->inc[i];
    const rg_protocol *p = &s->c->protos[i];
    const unsigned char *nu = s->nowuse ? s->nowuse[i] : NULL;
    memset(in->ran, 1, (size_t)in->nrules + 1);
    if (!e->incremental || !nu || !in->valid || s->changed.all || nu[0] || in->applies.clock ||
        rg_reads_hit(&in->applies, &s->changed))
        return 0;
    rg_reads plan;
    memset(&plan, 0, sizeof plan);
    for (int j = 0; j < p->nplan; j++)
        rg_reads_type(&plan, p->plan_events[j]);
    if (rg_reads_hit(&plan, &s->changed)) /* the parameters may have changed */
        return 0;
    lua_rawgeti(s->L, e->pidx, i + 1);
    int table = lua_type(s->L, -1) == LUA_TTABLE, applied = 0, kept = 0;
    if (table) {
        lua_getfield(s->L, -1, "applies");
        applied = lua_toboolean(s->L, -1);
        /* kept from an earlier advance (rg__keep_restore): no parameters,
         * which a call makes again (rg__eval_protocol), even with no rule */
        kept = lua_getfield(s->L, -2, "params") == LUA_TNIL;
        lua_pop(s->L, 2);
    }
    lua_pop(s->L, 1);
    if (!table)
        return 0;
    memset(in->ran, 0, (size_t)in->nrules + 1);
    if (!applied)
        return kept ? 2 : 1;
    int any = 0;
    for (int r = 0; r < in->nrules; r++) {
        in->ran[r] = !in->keep[r] || nu[1 + r] || in->reads[r].clock ||
                     rg_reads_hit(&in->reads[r], &s->changed) ||
                     (in->next[r] != RG_TIME_NONE && in->next[r] <= s->t);
        any |= in->ran[r];
    }
    return any || kept ? 2 : 1;
}

/* [-0, +1] One protected call of protocol i (rg__eval_protocol) with touch
 * mark `mark`; in (NULL: nothing recorded) and partial as it takes them.
 * Pushes the results, or nil when the call failed (then returns its code:
 * RG_ELIMIT, RG_ENOMEM or another error, its text in s->err). */
static int rg__call_protocol(rg_engine *e, rg__stepctx *s, int i, uint32_t mark,
                             struct rg__inc *in, int partial, int64_t now_ms)
{
    lua_State *L = s->L;
    lua_pushcfunction(L, rg__eval_protocol);
    rg_clinic_push_protocol(s->c, i);
    lua_pushvalue(L, s->hidx);
    lua_pushinteger(L, s->t);
    lua_pushinteger(L, mark);
    lua_rawgeti(L, e->pidx, i + 1);
    if (in)
        lua_pushlightuserdata(L, in);
    else
        lua_pushnil(L);
    lua_pushboolean(L, partial);
    e->stats.protocol_calls++;
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    int prc = rg_pcall(s->c->sb, 7, 1, s->err, sizeof s->err);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    s->h->reads = NULL;
    s->c->protos[i].evaluations++;
    double took = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
    s->c->protos[i].seconds += took;
    if (s->slot)
        rg__cpu_add(e, s->slot, now_ms, took * 1000);
    if (prc)
        lua_pushnil(L);
    return prc;
}

/* Are two results tables of protocol i (at a and b) the same answer? Else
 * 0, with the rule (index, -1: applies or the parameters) and why. */
static int rg__same_results(lua_State *L, int a, int b, int nrules, int *rule, const char **why)
{
    a = lua_absindex(L, a);
    b = lua_absindex(L, b);
    *rule = -1;
    if (lua_type(L, a) != LUA_TTABLE || lua_type(L, b) != LUA_TTABLE) {
        *why = lua_type(L, a) == lua_type(L, b) ? "" : "one of the evaluations failed";
        return lua_type(L, a) == lua_type(L, b);
    }
    static const char *const top[] = {"applies", "base"};
    for (int k = 0; k < 2; k++) {
        lua_getfield(L, a, top[k]);
        lua_getfield(L, b, top[k]);
        int same = lua_toboolean(L, -1) == lua_toboolean(L, -2);
        lua_pop(L, 2);
        if (!same) {
            *why = k ? "the parameters in force differ" : "applies gave another answer";
            return 0;
        }
    }
    lua_getfield(L, a, "params");
    lua_getfield(L, b, "params");
    int pa = lua_gettop(L) - 1, same = 1;
    for (int side = 0; side < 2 && same; side++) { /* every key of each, equal in the other */
        int x = side ? pa + 1 : pa, y = side ? pa : pa + 1;
        if (lua_type(L, x) != LUA_TTABLE || lua_type(L, y) != LUA_TTABLE) {
            same = lua_type(L, x) == lua_type(L, y);
            break;
        }
        lua_pushnil(L);
        while (same && lua_next(L, x)) {
            lua_pushvalue(L, -2);
            lua_rawget(L, y);
            same = lua_rawequal(L, -1, -2);
            lua_pop(L, 2);
        }
        if (!same)
            lua_pop(L, 1); /* the key of the interrupted traversal */
    }
    lua_pop(L, 2);
    if (!same) {
        *why = "the parameters in force differ";
        return 0;
    }
    lua_getfield(L, a, "applies");
    int applies = lua_toboolean(L, -1);
    lua_pop(L, 1);
    for (int r = 0; applies && r < nrules; r++) {
        int ta = lua_rawgeti(L, a, r + 1), tb = lua_rawgeti(L, b, r + 1);
        *rule = r;
        if (ta != tb) {
            *why = "the rule gave another kind of answer (nothing, alerts, an error)";
        } else if (ta == LUA_TTABLE) {
            lua_Integer n = (lua_Integer)lua_rawlen(L, -2);
            same = n == (lua_Integer)lua_rawlen(L, -1);
            lua_Integer k = 1;
            for (; same && k <= n; k++) {
                lua_rawgeti(L, -2, k);
                lua_rawgeti(L, -2, k);
                same = lua_rawequal(L, -1, -2);
                /* a message is not made for an alert open when the rule ran
                 * ("": rg__alert_slots): the answer of an earlier step may
                 * have its text. Such a message is never used: an alert
                 * that opens comes from a rule that ran (rg__verify_ran). */
                if (!same && (k - 1) % RG_ALERT_SLOTS == 2)
                    same = (lua_type(L, -1) == LUA_TSTRING && !lua_rawlen(L, -1)) ||
                           (lua_type(L, -2) == LUA_TSTRING && !lua_rawlen(L, -2));
                lua_pop(L, 2);
            }
            static const char *const slot[] = {"key", "severity", "message", "due", "ends"};
            static _Thread_local char text[120];
            snprintf(text, sizeof text, "the rule returned other alerts (%s of alert %lld)",
                     n == (lua_Integer)lua_rawlen(L, -1) ? slot[(k - 2) % RG_ALERT_SLOTS]
                                                         : "the number",
                     (long long)((k - 2) / RG_ALERT_SLOTS + 1));
            *why = text;
        } else {
            same = 1; /* true (nothing), or an error (a rule that failed always runs again) */
        }
        lua_pop(L, 2);
        if (!same || ta != tb)
            return 0;
    }
    *rule = -1;
    return 1;
}

/* Reports an incremental answer that differs from the full one
 * (REGIMEN_VERIFY_INCREMENTAL) and returns the step's error. */
static int rg__verify_failed(rg_engine *e, const rg__stepctx *s, int pi, int ri, const char *why)
{
    char when[RG_TIME_BUFSZ];
    const rg_protocol *p = &s->c->protos[pi];
    fprintf(stderr, "regimen: incremental evaluation differs from a full one: clinic %s, "
            "patient %s, protocol %s, %s%s%s, step at %s: %s\n", s->c->name, s->patient, p->id,
            ri >= 0 ? "rule '" : "applies or parameters", ri >= 0 ? p->rules[ri].id : "",
            ri >= 0 ? "'" : "", rg_time_format(s->t, when), why);
    (void)e;
    return RG_EINVAL;
}

/* [-0, +1] Runs protocol i at this step: all of it, only the rules whose
 * inputs changed (rg__plan), or none (its previous results are pushed
 * again). REGIMEN_VERIFY_INCREMENTAL: the full evaluation's results are
 * pushed and the incremental one must give the same. Returns the call's
 * code as rg__call_protocol does, or RG_EINVAL when verification failed. */
static int rg__run_protocol(rg_engine *e, rg__stepctx *s, int i, int64_t now_ms)
{
    lua_State *L = s->L;
    struct rg__inc *in = &e->inc[i];
    int mode = rg__plan(e, s, i);
    int prc;
    if (e->verify) {
        s->marks[i] = e->mark;
        e->mark += (uint32_t)s->c->protos[i].nrules + 1;
        s->h->memo_fresh = 1; /* the full evaluation computes its h:memo values anew */
        prc = rg__call_protocol(e, s, i, s->marks[i], NULL, 0, now_ms);
        s->h->memo_fresh = 0;
        if (prc)
            return prc;
        int irc = RG_OK;
        if (mode == 1) {
            lua_rawgeti(L, e->pidx, i + 1);
        } else {
            uint32_t mark = e->mark;
            e->mark += (uint32_t)s->c->protos[i].nrules + 1;
            irc = rg__call_protocol(e, s, i, mark, in, mode == 2, now_ms);
        }
        int ri;
        const char *why = "";
        if (irc || !rg__same_results(L, -2, -1, in->nrules, &ri, &why))
            irc = rg__verify_failed(e, s, i, irc ? -1 : ri, irc ? s->err : why);
        lua_pop(L, 1); /* the full results stay */
        if (irc) {
            lua_pop(L, 1);
            lua_pushnil(L);
        }
        return irc;
    }
    s->marks[i] = e->mark;
    e->mark += (uint32_t)s->c->protos[i].nrules + 1;
    if (mode == 1) {
        lua_rawgeti(L, e->pidx, i + 1);
        return RG_OK;
    }
    return rg__call_protocol(e, s, i, s->marks[i], in, mode == 2, now_ms);
}

/* Phase 1: every protocol runs (or is skipped: quarantined, over the
 * clinic's CPU budget, after a limit); one value per protocol is pushed. */
static int rg__step_run(rg_engine *e, rg__stepctx *s)
{
    rg_clinic *c = s->c;
    lua_State *L = s->L;
    int rc = RG_OK;
    char note[1024];
    rg_sandbox_enter(c->sb);
    for (int i = 0; i < c->nprotos; i++) {
        if (s->limit || rc) {
            lua_pushnil(L);
            continue;
        }
        int64_t now_ms = rg_monotonic_ms();
        if (rg__quarantined_now(e, c, i, now_ms)) { /* not evaluated: its alerts stay */
            e->stats.quarantine_skips++;
            lua_pushnil(L);
            continue;
        }
        if (e->o.budget.cpu_ms > 0 && s->slot &&
            rg__cpu_used(e, s->slot, now_ms) >= (double)e->o.budget.cpu_ms) {
            /* not run; reported, and a limit hit, only for the protocol that
             * has taken the most time (the others wait for the window) */
            int top = 0;
            for (int k = 1; k < c->nprotos; k++)
                if (c->protos[k].seconds > c->protos[top].seconds)
                    top = k;
            e->stats.cpu_budget_hits++;
            if (top == i) {
                char msg[1024];
                snprintf(msg, sizeof msg, "%s: the clinic's CPU budget of %d ms per %d s is used "
                         "up, most of it by this protocol ('%s'): it is not evaluated at this "
                         "step (the clinic's other protocols wait too)", c->protos[i].file,
                         e->o.budget.cpu_ms,
                         e->o.budget.cpu_window_s > 0 ? e->o.budget.cpu_window_s : 60,
                         c->protos[i].id);
                e->stats.limit_hits++;
                rc = rg__report(e, c->name, s->patient, c->protos[i].id, "", s->t, msg);
                if (rc == RG_OK && rg__limit_hit(e, c, i, now_ms, msg, note, sizeof note))
                    rc = rg__report(e, c->name, s->patient, c->protos[i].id, "", s->t, note);
            }
            lua_pushnil(L);
            continue;
        }
        int prc = rg__run_protocol(e, s, i, now_ms);
        if (prc == RG_ENOMEM || (prc == RG_EINVAL && e->verify)) {
            /* the host's memory, not the protocol, or (verifying) the two
             * evaluations differ (rg_pcall never gives RG_EINVAL): the step fails */
            rc = prc;
        } else if (prc) {
            /* h->mark says which rule was running: name it and its file */
            uint32_t r = s->h->mark - s->marks[i];
            const rg_rule *rule = r >= 1 && r <= (uint32_t)c->protos[i].nrules
                                      ? &c->protos[i].rules[r - 1] : NULL;
            char msg[4400];
            if (strstr(s->err, c->protos[i].file))
                snprintf(msg, sizeof msg, "%s", s->err);
            else if (rule)
                snprintf(msg, sizeof msg, "%s: rule '%s': %s", rule->where, rule->id, s->err);
            else
                snprintf(msg, sizeof msg, "%s: %s", c->protos[i].file, s->err);
            rc = rg__report(e, c->name, s->patient, c->protos[i].id, rule ? rule->id : "", s->t,
                            msg);
            if (rc == RG_OK)
                rc = rg__failed(e, c, s->patient, i, rule ? rule->id : "", s->t, msg);
            if (prc == RG_ELIMIT) {
                s->limit = 1;
                e->stats.limit_hits++;
                if (rc == RG_OK &&
                    rg__limit_hit(e, c, i, rg_monotonic_ms(), s->err, note, sizeof note))
                    rc = rg__report(e, c->name, s->patient, c->protos[i].id, "", s->t, note);
            }
        }
        assert(lua_gettop(L) == s->base + 1 + i);
    }
    rg_sandbox_leave(c->sb);
    return rc;
}

/* Phase 2: per rule, its alerts or its error; the alerts open at t become
 * candidates, the next due or end lowers *wake; what stands for the next
 * step is kept (e->inc, the results at e->pidx). */
static int rg__step_collect(rg_engine *e, rg__stepctx *s)
{
    rg_clinic *c = s->c;
    lua_State *L = s->L;
    int rc = RG_OK;
    char note[1024];
    for (int i = 0; i < c->nprotos && rc == RG_OK; i++) {
        int res = s->base + 1 + i, flag = s->first[i];
        struct rg__inc *in = &e->inc[i];
        in->valid = lua_type(L, res) == LUA_TTABLE;
        lua_pushvalue(L, res);
        lua_rawseti(L, e->pidx, i + 1);
        if (!in->valid) {
            memset(s->failed + flag, 1, (size_t)c->protos[i].nrules);
            continue;
        }
        lua_getfield(L, res, "applies");
        int applies = lua_toboolean(L, -1);
        lua_pop(L, 1);
        for (int r = 0; applies && r < c->protos[i].nrules; r++)
            e->stats.rule_checks += in->ran[r];
        int capped = 0; /* a rule of this protocol went past RG_MAX_STEP_ALERTS */
        for (int r = 0; applies && r < c->protos[i].nrules && rc == RG_OK; r++) {
            int kind = lua_rawgeti(L, res, r + 1);
            in->keep[r] = kind != LUA_TSTRING;
            in->next[r] = RG_TIME_NONE;
            if (kind == LUA_TBOOLEAN) { /* it returned nothing */
                lua_pop(L, 1);
                continue;
            }
            if (kind == LUA_TSTRING) {
                s->failed[flag + r] = 1;
                const char *m = lua_tostring(L, -1);
                /* the first line must say where: errors raised with level 0
                 * or with a value other than a string carry no position */
                size_t first = strcspn(m, "\n");
                char located[4400];
                if (!memmem(m, first, ".lua:", 5)) {
                    snprintf(located, sizeof located, "%s: rule '%s': %s",
                             c->protos[i].rules[r].where, c->protos[i].rules[r].id, m);
                    m = located;
                }
                rc = rg__report(e, c->name, s->patient, c->protos[i].id,
                                c->protos[i].rules[r].id, s->t, m);
                if (rc == RG_OK)
                    rc = rg__failed(e, c, s->patient, i, c->protos[i].rules[r].id, s->t, m);
                lua_pop(L, 1);
                continue;
            }
            lua_Integer nal = (lua_Integer)lua_rawlen(L, -1) / RG_ALERT_SLOTS;
            if (s->nalerts + nal > RG_MAX_STEP_ALERTS) {
                /* bounded work per step: the rule fails, its alerts stay */
                s->failed[flag + r] = 1;
                in->keep[r] = 0;
                lua_pop(L, 1);
                if (capped++) /* reported once per protocol and step */
                    continue;
                char msg[1024];
                snprintf(msg, sizeof msg, "%s: rule '%s' returned %lld alerts; with the %lld "
                         "returned before it in this step that is more than the limit of %d "
                         "alerts per evaluation (it fails, and so does every later rule of "
                         "this protocol that returns alerts in this step: their alerts stay "
                         "as they were)", c->protos[i].rules[r].where,
                         c->protos[i].rules[r].id, (long long)nal, (long long)s->nalerts,
                         RG_MAX_STEP_ALERTS);
                e->stats.limit_hits++;
                rc = rg__report(e, c->name, s->patient, c->protos[i].id,
                                c->protos[i].rules[r].id, s->t, msg);
                if (rc == RG_OK && rg__limit_hit(e, c, i, rg_monotonic_ms(), msg, note,
                                                 sizeof note))
                    rc = rg__report(e, c->name, s->patient, c->protos[i].id, "", s->t, note);
                continue;
            }
            s->nalerts += nal;
            struct rg__keys *kc = &in->keys[r];
            if (in->ran[r] && kc->cap) /* a new answer: its keys are made anew */
                memset(kc->have, 0, (size_t)kc->cap);
            rc = rg__read_alerts(e, L, lua_gettop(L), c, s->patient, i, r, s->t, &s->cands,
                                 &s->ncands, &s->cap, s->wake, s->waker, &in->next[r], kc);
            /* keep the list (and so its strings) on the stack until the end */
        }
    }
    if (rc == RG_OK && e->nfail)
        rc = rg__fail_settle(e, c, L, s->base, s->patient, s->t);
    return rc;
}

/* REGIMEN_VERIFY_INCREMENTAL: a transition of rule ri of protocol pi (ri
 * -1: because applies no longer holds) needs what that rule (or applies) read
 * at this step, its evidence; the incremental evaluation must have run it. */
static int rg__verify_ran(rg_engine *e, const rg__stepctx *s, int pi, int ri)
{
    if (!e->verify || pi < 0)
        return RG_OK;
    const struct rg__inc *in = &e->inc[pi];
    if (in->ran[ri >= 0 ? ri : in->nrules])
        return RG_OK;
    return rg__verify_failed(e, s, pi, ri, "an alert opens or resolves but the incremental "
                             "evaluation kept the answer of an earlier step (its evidence is "
                             "not read)");
}

/* Phase 3: open alerts no rule returned any more are resolved (unless their
 * rule failed: they stay as they are). cix indexes the candidates by key. */
static int rg__step_resolve(rg_engine *e, rg__stepctx *s, const rg__kindex *cix)
{
    rg_clinic *c = s->c;
    lua_State *L = s->L;
    int rc = RG_OK;
    int nopen = e->nopen;
    for (int a = 0; a < nopen && rc == RG_OK; a++) {
        rg__open *al = &e->open[a];
        if (!al->live)
            continue;
        int ri = -1, pi = rg__find_rule(c, al, &ri);
        if (pi >= 0) {
            if (s->failed[s->first[pi] + ri])
                continue; /* its rule failed: keep the alert as it is */
            int found = 0;
            for (size_t x = (size_t)rg__khash(al->key) & cix->mask; cix->slot[x] && !found;
                 x = (x + 1) & cix->mask) {
                rg__cand *cd = &s->cands[cix->slot[x] - 1];
                if (!cd->matched && !strcmp(cd->key, al->key))
                    found = cd->matched = 1;
            }
            /* an alert opened before schema 9 keeps its old key (16 hex
             * digits): matched by the old form of each result's key */
            if (!found && strlen(al->key) == RG__LEGACY_KEY_HEX)
                for (int k = 0; k < s->ncands && !found; k++)
                    if (!s->cands[k].matched &&
                        rg__is_alert(c, s->patient, &s->cands[k], al->key))
                        found = s->cands[k].matched = 1;
            if (found)
                continue;
        }
        int res = pi >= 0 ? s->base + 1 + pi : 0;
        const char *params = NULL;
        char *owned = NULL;
        if (pi >= 0 && lua_type(L, res) == LUA_TTABLE)
            params = rg__step_params(e, c, L, res, pi, s->pjson, &owned);
        /* why it went: what the rule looked at, or, when the protocol no
         * longer applies (a discharge), what `applies` looked at */
        int applied = 1;
        if (pi >= 0 && lua_type(L, res) == LUA_TTABLE) {
            lua_getfield(L, res, "applies");
            applied = lua_toboolean(L, -1);
            lua_pop(L, 1);
        }
        if ((rc = rg__verify_ran(e, s, pi, applied ? ri : -1))) {
            free(owned);
            break;
        }
        char *evidence =
            pi >= 0 ? rg__evidence_json(e, s->n, s->marks[pi] + (applied ? (uint32_t)ri + 1 : 0))
                    : NULL;
        if (pi >= 0 && (!evidence || (!params && lua_type(L, res) == LUA_TTABLE))) {
            free(owned); /* out of memory: not a transition without its why */
            free(evidence);
            rc = RG_ENOMEM;
            break;
        }
        const char *version = pi >= 0 ? c->protos[pi].version : al->version;
        rc = rg__emit(e, c, s->patient, 0, al->id, al->key, al->protocol, version, al->rule,
                      al->severity, al->message, al->due, s->t, params, owned, evidence);
        e->open[a].live = 0;
    }
    return rc;
}

/* Phase 4: candidates that match no open alert open. oix indexes the open
 * alerts by key (those opened here are added). */
static int rg__step_open(rg_engine *e, rg__stepctx *s, rg__kindex *oix)
{
    rg_clinic *c = s->c;
    int rc = RG_OK;
    /* the evidence of the latest rule that opened one: a rule's alerts open
     * one after another and share it (a rule's touches all carry its mark),
     * so it is made once per rule, not once per alert */
    char *last = NULL;
    uint32_t last_mark = 0;
    for (int k = 0; k < s->ncands && rc == RG_OK; k++) {
        rg__cand *cd = &s->cands[k];
        if (cd->matched)
            continue;
        int dup = 0;
        for (size_t x = (size_t)rg__khash(cd->key) & oix->mask; oix->slot[x] && !dup;
             x = (x + 1) & oix->mask) {
            const rg__open *o = &e->open[oix->slot[x] - 1];
            dup = o->live && !strcmp(o->key, cd->key);
        }
        if (dup)
            continue;
        if ((rc = rg__verify_ran(e, s, cd->proto, cd->rule)))
            break;
        const rg_protocol *p = &c->protos[cd->proto];
        char *owned;
        const char *params =
            rg__step_params(e, c, s->L, s->base + 1 + cd->proto, cd->proto, s->pjson, &owned);
        uint32_t mark = s->marks[cd->proto] + (uint32_t)cd->rule + 1;
        if (!last || mark != last_mark) {
            free(last);
            last = rg__evidence_json(e, s->n, mark);
            last_mark = mark;
        }
        char *evidence = last ? strdup(last) : NULL;
        if (!params || !evidence) {
            free(owned);
            free(evidence);
            rc = RG_ENOMEM;
            break;
        }
        int before = e->nopen;
        rc = rg__emit(e, c, s->patient, 1, 0, cd->key, p->id, p->version, p->rules[cd->rule].id,
                      cd->severity, cd->message, cd->due, s->t, params, owned, evidence);
        if (rc == RG_OK && e->nopen > before)
            rg__kindex_add(oix, e->open[e->nopen - 1].key, e->nopen - 1);
    }
    free(last);
    return rc;
}

/* One step at instant t: run every protocol (or only what changed), read
 * what they returned, then resolve and open. */
static int rg__step(rg_engine *e, rg_clinic *c, const char *patient, int hidx, rg_time t,
                    rg_time *wake, const rg_rule **waker)
{
    lua_State *L = rg_sandbox_state(c->sb);
    rg__stepctx s = {.c = c, .patient = patient, .L = L, .hidx = hidx, .t = t, .wake = wake,
                     .waker = waker, .h = lua_touserdata(L, hidx)};
    int rc = RG_OK;
    while (s.n < e->nsev && e->sev[s.n].at <= t)
        s.n++;
    /* what came into view since the previous step of this advance, or
     * since the step the kept answers were made at (rg__keep_restore): the
     * events newer than those it saw, or later than its instant */
    if (e->restored) {
        int seen = 0;
        for (int k = 0; k < s.n; k++) {
            if (e->sev[k].seq > e->kept_seq || e->sev[k].at > e->kept_t)
                rg_reads_type(&s.changed, e->sev[k].type);
            else
                seen++;
        }
        s.changed.all = seen != e->last_n; /* (fewer: an instant before it) */
        e->restored = e->rebound = 0;
    } else {
        if (e->rebound || e->last_n < 0 || s.n < e->last_n)
            s.changed.all = 1;
        for (int k = e->last_n; !s.changed.all && k < s.n; k++)
            rg_reads_type(&s.changed, e->sev[k].type);
    }
    e->last_n = s.n;
    e->last_t = t;
    e->rebound = 0;
    s.h->n = s.n;
    s.h->now = t;
    s.h->reads = NULL;
    rg_history_memo_step(L, hidx, &s.changed); /* h:memo values on what changed go */
    e->log.n = 0;
    e->nkeyc = 0;
    *wake = RG_TIME_NONE;
    e->stats.steps++;
    s.base = lua_gettop(L);
    for (int i = 0; i < c->nprotos; i++)
        s.nflags += c->protos[i].nrules;
    if (!lua_checkstack(L, c->nprotos + 2 * s.nflags + 16))
        return RG_ENOMEM;
    s.marks = calloc((size_t)c->nprotos + 1, sizeof *s.marks);
    s.first = calloc((size_t)c->nprotos + 1, sizeof *s.first);
    s.failed = calloc((size_t)s.nflags + 1, 1);
    s.pjson = calloc((size_t)c->nprotos + 1, sizeof *s.pjson);
    if (!s.marks || !s.first || !s.failed || !s.pjson) {
        rc = RG_ENOMEM;
        goto done;
    }
    for (int i = 1; i < c->nprotos; i++)
        s.first[i] = s.first[i - 1] + c->protos[i - 1].nrules;
    s.slot = rg__slot(e, c->name, 0);
    s.nowuse = s.slot && s.slot->c == c ? (const unsigned char *const *)s.slot->nowuse : NULL;
    assert(e->inc_c == c && e->ninc == c->nprotos);

    rc = rg__step_run(e, &s);
    assert(rc || lua_gettop(L) == s.base + c->nprotos);
    if (rc == RG_OK)
        rc = rg__step_collect(e, &s);
    assert(rc || (s.nalerts <= RG_MAX_STEP_ALERTS && s.ncands <= s.nalerts));

    rg__kindex cix = {0}, oix = {0};
    if (rc == RG_OK &&
        (rg__kindex_init(&cix, s.ncands) || rg__kindex_init(&oix, e->nopen + s.ncands)))
        rc = RG_ENOMEM;
    for (int k = 0; k < s.ncands && rc == RG_OK; k++)
        rg__kindex_add(&cix, s.cands[k].key, k);
    if (rc == RG_OK)
        rc = rg__step_resolve(e, &s, &cix);
    for (int a = 0; a < e->nopen && rc == RG_OK; a++)
        if (e->open[a].live)
            rg__kindex_add(&oix, e->open[a].key, a);
    if (rc == RG_OK)
        rc = rg__step_open(e, &s, &oix);
    free(cix.slot);
    free(oix.slot);
done:
    lua_settop(L, s.base);
    free(s.cands);
    free(s.marks);
    free(s.first);
    free(s.failed);
    for (int i = 0; s.pjson && i < c->nprotos; i++)
        free(s.pjson[i]);
    free(s.pjson);
    return rc;
}

/* rg_history.is_open: whether the alert with these parts is open (live) for
 * the patient being advanced; the step's matching uses the same keys. */
static int rg__h_is_open(void *ud, const char *clinic, const char *patient, const char *proto,
                         const char *rule, const char *subkey)
{
    rg_engine *e = ud;
    char key[RG_KEY_HEX + 1], old[17];
    int have_old = 0;
    int same_rule = 0; /* the key's hash only when the rule has an open alert */
    for (int a = 0; a < e->nopen && !same_rule; a++)
        same_rule = e->open[a].live && !strcmp(e->open[a].rule, rule) &&
                    !strcmp(e->open[a].protocol, proto);
    if (!same_rule)
        return 0;
    rg__alert_key(clinic, patient, proto, rule, subkey, key);
    if (e->nkeyc < (int)(sizeof e->keyc / sizeof e->keyc[0]) && strlen(proto) < 96 &&
        strlen(rule) < 96) {
        struct rg__keyc *k = &e->keyc[e->nkeyc++];
        k->subkey = subkey;
        strcpy(k->proto_rule[0], proto);
        strcpy(k->proto_rule[1], rule);
        memcpy(k->key, key, sizeof k->key);
    }
    for (int a = 0; a < e->nopen; a++) {
        const rg__open *al = &e->open[a];
        if (!al->live)
            continue;
        if (!strcmp(al->key, key))
            return 1;
        if (strlen(al->key) == RG__LEGACY_KEY_HEX) {
            if (!have_old++)
                rg__legacy_key(clinic, patient, proto, rule, subkey, old);
            if (!strcmp(al->key, old))
                return 1;
        }
    }
    return 0;
}

/* Binds a new history at hidx (replacing what is there) to what the steps
 * see now (sev): a new one, because a history keeps the Lua tables of the
 * events it handed out by position. */
static int rg__bind_history(rg_engine *e, rg_clinic *c, const char *patient, int hidx)
{
    lua_State *L = rg_sandbox_state(c->sb);
    char err[512];
    if (lua_type(L, hidx) == LUA_TUSERDATA)
        rg_history_unbind(L, hidx);
    lua_pushcfunction(L, rg__new_history);
    lua_pushinteger(L, e->nsev);
    if (rg_pcall(c->sb, 1, 1, err, sizeof err))
        return RG_ENOMEM;
    lua_replace(L, hidx);
    rg_history *h = lua_touserdata(L, hidx);
    h->ev = e->sev;
    h->nev = e->nsev;
    h->clinic = c->name;
    h->patient = patient;
    h->log = &e->log;
    h->types = (const char *const *)e->types;
    h->ntypes = e->ntypes;
    h->tix = e->tix;
    h->toff = e->toff;
    h->memo_now = RG_TIME_NONE;
    h->is_open = rg__h_is_open;
    h->open_ud = e;
    h->memo_keep = e->incremental; /* h:memo values kept as rules' answers are */
    e->rebound = 1; /* every rule runs at the next step */
    return RG_OK;
}

/* A step at t with the versions in force at t. */
static int rg__step_at(rg_engine *e, rg_clinic *c, const char *patient, int hidx, rg_time t,
                       rg_time *wake, const rg_rule **waker)
{
    int rc = rg__versions_at(e, t);
    if (rc == 1)
        rc = rg__bind_history(e, c, patient, hidx);
    return rc ? rc : rg__step(e, c, patient, hidx, t, wake, waker);
}

/* The earlier of cand and the first correction that takes effect after
 * clock: an evaluation instant like an event's time. */
static rg_time rg__next_correction(const rg_engine *e, rg_time clock, rg_time cand)
{
    for (int i = 0; e->ncorr && i < e->nev; i++)
        if (e->ev[i].replaces && e->ev[i].corrected_at > clock &&
            (cand == RG_TIME_NONE || e->ev[i].corrected_at < cand))
            cand = e->ev[i].corrected_at;
    return cand;
}

/* A wake-up was postponed for waker's rule: a limit hit of its protocol. */
static void rg__waker_hit(rg_engine *e, rg_clinic *c, const char *patient, const rg_rule *waker,
                          rg_time at, const char *why)
{
    char note[1024];
    for (int i = 0; waker && i < c->nprotos; i++)
        if (waker >= c->protos[i].rules && waker < c->protos[i].rules + c->protos[i].nrules) {
            if (rg__limit_hit(e, c, i, rg_monotonic_ms(), why, note, sizeof note))
                rg__report(e, c->name, patient, c->protos[i].id, "", at, note);
            return;
        }
}

/* The latest evaluation instant that is an input (an event's time, a
 * correction's corrected_at) at or before t, RG_TIME_NONE when none is. */
static rg_time rg__last_input(const rg_engine *e, rg_time t)
{
    rg_time a = RG_TIME_NONE;
    for (int i = 0; i < e->nev; i++) {
        rg_time x = e->ev[i].at;
        if (x <= t && (a == RG_TIME_NONE || x > a))
            a = x;
        x = e->ev[i].replaces ? e->ev[i].corrected_at : RG_TIME_NONE;
        if (x != RG_TIME_NONE && x <= t && (a == RG_TIME_NONE || x > a))
            a = x;
    }
    return a;
}

/* A span of time in words: "250 ms", "1.5 s", "4 min 10 s", "3 h 20 min",
 * "12 d 3 h". */
static const char *rg__span_text(rg_time ms, char *buf, size_t len)
{
    if (ms < RG_MS_SECOND)
        snprintf(buf, len, "%lld ms", (long long)ms);
    else if (ms < RG_MS_MINUTE)
        snprintf(buf, len, "%.3g s", (double)ms / RG_MS_SECOND);
    else if (ms < RG_MS_HOUR)
        snprintf(buf, len, "%lld min %lld s", (long long)(ms / RG_MS_MINUTE),
                 (long long)(ms % RG_MS_MINUTE / RG_MS_SECOND));
    else if (ms < RG_MS_DAY)
        snprintf(buf, len, "%lld h %lld min", (long long)(ms / RG_MS_HOUR),
                 (long long)(ms % RG_MS_HOUR / RG_MS_MINUTE));
    else
        snprintf(buf, len, "%lld d %lld h", (long long)(ms / RG_MS_DAY),
                 (long long)(ms % RG_MS_DAY / RG_MS_HOUR));
    return buf;
}

/* floor(log2(x)) for x > 0 */
static int rg__log2(rg_time x)
{
    int k = 0;
    while (x >>= 1)
        k++;
    return k;
}

/* The shortest wait allowed between a time-driven step `since` after the
 * patient's last event and the next one: a hundredth of since, at most
 * RG_WAKE_SPACING_MAX; transitions/RG_WAKE_TRANSITIONS times that after a
 * step with more than RG_WAKE_TRANSITIONS transitions. */
static rg_time rg__wake_space(rg_time since, int64_t transitions)
{
    rg_time space = since / RG_WAKE_SPACING_DIV;
    if (space > RG_WAKE_SPACING_MAX)
        space = RG_WAKE_SPACING_MAX;
    if (space < 1) /* (the first 100 ms after an event: a flood still stretches the wait) */
        space = 1;
    if (transitions > RG_WAKE_TRANSITIONS)
        space = space * transitions / RG_WAKE_TRANSITIONS;
    return space;
}

/* The bound on time-driven work, after a step at t (the patient's step
 * before it at prev) that made `transitions` and asks to be woken at *wake:
 * a wake-up after a step that was not at an event waits at least
 * rg__wake_space of the time since the patient's last event, so a rule that
 * asks to be woken every millisecond or every second is woken about 1,200
 * times in the 100 minutes after an event and once a minute after that.
 * Everything it depends on is on the timeline (t, prev, the events, what the
 * step returned) and *wake is stored: the same steps whether the history is
 * evaluated in one advance or event by event, or caught up after a downtime
 * (a cap per advance cut a long history in simulate and not in the
 * service). A rule postponed once (two alerts due less than a minute apart,
 * days after an event) is not reported; one postponed at wake-ups that
 * themselves came at the shortest wait (or made many transitions) is, naming
 * its file, each time the time since the event doubles: 10-30 times over any
 * run, fewer and fewer, each a limit hit of its protocol. */
static int rg__space_wake(rg_engine *e, rg_clinic *c, const char *patient, rg_time prev,
                          rg_time t, int64_t transitions, rg_time *wake, const rg_rule *waker)
{
    if (*wake == RG_TIME_NONE || *wake <= t || *wake - t >= rg__wake_space(INT64_MAX, transitions))
        return RG_OK; /* (whatever the time since the last event) */
    rg_time a = rg__last_input(e, t);
    if (a == RG_TIME_NONE || a >= t) /* a step at an event: its wake-up comes as asked */
        return RG_OK;
    rg_time space = rg__wake_space(t - a, transitions);
    if (*wake - t >= space)
        return RG_OK;
    rg_time asked = *wake;
    *wake = t + space;
    if (prev == RG_TIME_NONE || prev <= a || prev >= t || rg__log2(t - a) == rg__log2(prev - a) ||
        (t - prev > rg__wake_space(prev - a, 0) && transitions <= RG_WAKE_TRANSITIONS))
        return RG_OK;
    char msg[900], at[RG_TIME_BUFSZ], s1[48], s2[48], s3[48];
    int n = snprintf(msg, sizeof msg, "%s: rule '%s' keeps asking to wake the patient sooner "
                     "than allowed: %s after a wake-up, %s after the patient's last event; woken "
                     "at %s (%s after) instead. A wake-up that follows another waits at least a "
                     "hundredth of the time since the last event, at most a minute",
                     waker ? waker->where : c->name, waker ? waker->id : "?",
                     rg__span_text(asked - t, s1, sizeof s1), rg__span_text(t - a, s2, sizeof s2),
                     rg_time_format(*wake, at), rg__span_text(space, s3, sizeof s3));
    if (transitions > RG_WAKE_TRANSITIONS && n > 0 && (size_t)n < sizeof msg)
        n += snprintf(msg + n, sizeof msg - (size_t)n, ", %lld/%d times that after one that "
                      "opened or resolved %lld alerts", (long long)transitions,
                      RG_WAKE_TRANSITIONS, (long long)transitions);
    if (n > 0 && (size_t)n < sizeof msg)
        snprintf(msg + n, sizeof msg - (size_t)n, " (noted again each time the time since the "
                 "event doubles)");
    int rc = rg__report(e, c->name, patient, NULL, waker ? waker->id : "", t, msg);
    if (rc)
        return rc;
    e->stats.limit_hits++;
    rg__waker_hit(e, c, patient, waker, t, msg);
    return RG_OK;
}

/* once: a single step at until (a re-evaluation), whatever the clock says. */
static int rg__advance(rg_engine *e, const char *clinic, const char *patient, rg_time until,
                       int once);

int rg_engine_advance(rg_engine *e, const char *clinic, const char *patient, rg_time until)
{
    return rg__advance(e, clinic, patient, until, 0);
}

int rg_engine_reevaluate(rg_engine *e, const char *clinic, const char *patient, rg_time at)
{
    return rg__advance(e, clinic, patient, at, 1);
}

static int rg__advance(rg_engine *e, const char *clinic, const char *patient, rg_time until,
                       int once)
{
    rg_clinic *c = rg_engine_clinic(e, clinic);
    if (!c) { /* reported once when loading failed; the patient waits for a
                 (re)load of its clinic, which wakes it (rg_store_wake_clinic) */
        rg_patient_state ps;
        int rc = rg_store_patient_get(e->st, clinic, patient, &ps);
        if (rc)
            return rc == RG_ENOTFOUND ? RG_OK : rc;
        ps.next_wake = RG_TIME_NONE;
        return e->w.patient_put(e->w.ud, clinic, patient, &ps);
    }
    lua_State *L = rg_sandbox_state(c->sb);
    int rc;
    e->nev = 0;
    e->text.len = 0;
    rg__open_clear(e);
    e->stats.patients++;
    /* the state first: its count of schedulings then covers every event
     * the history read below can miss (rg_patient_state) */
    rg_patient_state ps;
    rc = rg_store_patient_get(e->st, clinic, patient, &ps);
    if (rc && rc != RG_ENOTFOUND)
        return rc;
    if ((rc = rg__read_history(e, clinic, patient)))
        return rc;
    if ((rc = rg__fixup_events(e)))
        return rc;
    e->stats.events += e->nev;
    if (e->nev + 1 > e->cap_touched) { /* reused from patient to patient */
        free(e->touched);
        e->cap_touched = e->nev + 64;
        e->touched = malloc((size_t)e->cap_touched * sizeof *e->touched);
        if (!e->touched) {
            e->cap_touched = 0;
            return RG_ENOMEM;
        }
    }
    memset(e->touched, 0, (size_t)(e->nev + 1) * sizeof *e->touched);
    if ((rc = rg_store_each_open_alert(e->st, clinic, patient, rg__collect_open, e)))
        return rc;
    rg__fail_clear(e);
    if (ps.failing > 0 && (rc = rg_store_each_failing(e->st, clinic, patient, rg__fail_add, e)))
        return rc;

    int64_t max_seq = ps.last_seq;
    int late = 0;
    for (int i = 0; i < e->nev; i++) {
        /* late: an event, or a correction, that should have counted already */
        if (e->ev[i].seq > ps.last_seq && ps.clock != RG_TIME_NONE &&
            rg__takes_effect(&e->ev[i]) <= ps.clock)
            late = 1;
        if (e->ev[i].seq > max_seq)
            max_seq = e->ev[i].seq;
    }

    int top = lua_gettop(L);
    unsigned char **nowuse;
    if ((rc = rg__inc_reset(e, c)) || !lua_checkstack(L, 4))
        return rc ? rc : RG_ENOMEM;
    /* (without it every rule runs at every step) */
    if ((rc = rg__nowuse(e, c, &nowuse)) == RG_ENOMEM)
        return rc;
    lua_pushnil(L);
    int hidx = lua_gettop(L);
    lua_pushnil(L); /* the previous step's results by protocol (a table once made:
                     * rg__step_collect sets its items unprotected) */
    e->pidx = lua_gettop(L);
    lua_pushcfunction(L, rg__new_table);
    lua_pushinteger(L, c->nprotos);
    char perr[256];
    if (rg_pcall(c->sb, 1, 1, perr, sizeof perr)) {
        lua_settop(L, top);
        return RG_ENOMEM;
    }
    lua_replace(L, e->pidx);
    if ((rc = rg__bind_history(e, c, patient, hidx)) ||
        (rc = rg__keep_restore(e, c, patient, &ps))) {
        lua_settop(L, top);
        return rc;
    }

    const rg_rule *waker = NULL;
    if (once) {
        int64_t before = e->stats.opened + e->stats.resolved;
        rc = rg__step_at(e, c, patient, hidx, until, &ps.wake, &waker);
        if (rc == RG_OK)
            rc = rg__space_wake(e, c, patient, ps.clock, until,
                                e->stats.opened + e->stats.resolved - before, &ps.wake, waker);
        if (ps.clock == RG_TIME_NONE || ps.clock < until)
            ps.clock = until;
    }
    for (; !once;) {
        rg_time cand = RG_TIME_NONE;
        if (ps.clock == RG_TIME_NONE) {
            cand = e->nev ? e->ev[0].at : RG_TIME_NONE;
        } else if (late) {
            cand = ps.clock;
        } else {
            if (ps.wake != RG_TIME_NONE && ps.wake > ps.clock)
                cand = ps.wake;
            for (int i = 0; i < e->nev; i++)
                if (e->ev[i].at > ps.clock) {
                    if (cand == RG_TIME_NONE || e->ev[i].at < cand)
                        cand = e->ev[i].at;
                    break;
                }
            cand = rg__next_correction(e, ps.clock, cand);
        }
        /* a late event is taken in at the patient's clock even when the
         * wall clock stepped back below it: else it is marked seen unevaluated */
        if (cand == RG_TIME_NONE || (cand > until && !late))
            break;
        int64_t before = e->stats.opened + e->stats.resolved;
        if ((rc = rg__step_at(e, c, patient, hidx, cand, &ps.wake, &waker)))
            break;
        /* a rule that always asks to be woken a moment later would keep the
         * loop busy for ever with no instruction budget ever exceeded */
        if ((rc = rg__space_wake(e, c, patient, ps.clock, cand,
                                 e->stats.opened + e->stats.resolved - before, &ps.wake, waker)))
            break;
        ps.clock = cand;
        late = 0;
    }
    if (rc == RG_OK)
        rg__keep_save(e, c, patient, ps.clock, max_seq);
    else if (e->hc) /* what it kept may not be what the store will hold */
        rg_hcache_keep(e->hc, c->name, patient, NULL, 0);
    rg_history_unbind(L, hidx);
    lua_settop(L, top);
    if (rc)
        return rc;
    ps.last_seq = max_seq;
    ps.failing = e->nfail;
    ps.next_wake = ps.wake != RG_TIME_NONE && (ps.clock == RG_TIME_NONE || ps.wake > ps.clock)
                       ? ps.wake
                       : RG_TIME_NONE;
    for (int i = 0; i < e->nev; i++)
        if (ps.clock == RG_TIME_NONE || e->ev[i].at > ps.clock) {
            if (ps.next_wake == RG_TIME_NONE || e->ev[i].at < ps.next_wake)
                ps.next_wake = e->ev[i].at;
            break;
        }
    if (ps.clock != RG_TIME_NONE)
        ps.next_wake = rg__next_correction(e, ps.clock, ps.next_wake);
    return e->w.patient_put(e->w.ud, clinic, patient, &ps);
}

int rg_patient_page_add(void *ud, const char *clinic, const char *patient)
{
    rg_patient_page *pg = ud;
    snprintf(pg->keys[pg->n][0], sizeof pg->keys[0][0], "%s", clinic);
    snprintf(pg->keys[pg->n][1], sizeof pg->keys[0][1], "%s", patient);
    pg->n++;
    return 0;
}

static long rg__all(rg_engine *e, rg_time due, rg_time until, int once);

long rg_engine_advance_all(rg_engine *e, rg_time due, rg_time until)
{
    return rg__all(e, due, until, 0);
}

long rg_engine_reevaluate_all(rg_engine *e, rg_time at)
{
    return rg__all(e, RG_TIME_NONE, at, 1);
}

static long rg__all(rg_engine *e, rg_time due, rg_time until, int once)
{
    enum { PAGE = 256 };
    char clinic[RG_EVENT_MAX_ID + 1] = "", patient[RG_EVENT_MAX_ID + 1] = "";
    rg_patient_page pg = {0};
    long done = 0;
    int rc = RG_OK;
    pg.keys = malloc(PAGE * sizeof *pg.keys);
    if (!pg.keys)
        return RG_ENOMEM;
    for (;;) {
        pg.n = 0;
        int n = rg_store_patients_page(e->st, clinic, patient, due, PAGE, rg_patient_page_add, &pg);
        if (n < 0) {
            rc = n;
            break;
        }
        if (n == 0)
            break;
        if ((rc = rg_store_begin(e->st)))
            break;
        for (int i = 0; i < pg.n && rc == RG_OK; i++)
            rc = rg__advance(e, pg.keys[i][0], pg.keys[i][1], until, once);
        if (rc == RG_OK)
            rc = rg_store_commit(e->st);
        if (rc) {
            rg_store_rollback(e->st);
            break;
        }
        done += pg.n;
        snprintf(clinic, sizeof clinic, "%s", pg.keys[pg.n - 1][0]);
        snprintf(patient, sizeof patient, "%s", pg.keys[pg.n - 1][1]);
    }
    free(pg.keys);
    return rc ? rc : done;
}

long rg_engine_cache_all(rg_engine *e)
{
    enum { PAGE = 256 };
    char clinic[RG_EVENT_MAX_ID + 1] = "", patient[RG_EVENT_MAX_ID + 1] = "";
    rg_patient_page pg = {0};
    long done = 0;
    int rc = e->hc ? RG_OK : RG_EINVAL;
    pg.keys = rc ? NULL : malloc(PAGE * sizeof *pg.keys);
    if (!rc && !pg.keys)
        rc = RG_ENOMEM;
    while (!rc) {
        pg.n = 0;
        int n = rg_store_patients_page(e->st, clinic, patient, RG_TIME_NONE, PAGE,
                                       rg_patient_page_add, &pg);
        if (n <= 0) {
            rc = n;
            break;
        }
        for (int i = 0; i < pg.n && !rc; i++) {
            e->nev = 0;
            e->text.len = 0;
            rc = rg__read_history(e, pg.keys[i][0], pg.keys[i][1]);
        }
        done += pg.n;
        snprintf(clinic, sizeof clinic, "%s", pg.keys[pg.n - 1][0]);
        snprintf(patient, sizeof patient, "%s", pg.keys[pg.n - 1][1]);
    }
    free(pg.keys);
    return rc ? rc : done;
}
