/*
 * sweep.c - a sweep on several cores (see sweep.h for the design).
 *
 * Pages of patients are numbered as the caller reads them; workers take the
 * next queued page, evaluate it inside one read transaction, and hand back
 * its write log; the caller applies the logs strictly in page order. At most
 * RG__INFLIGHT pages per worker are read ahead, so memory stays bounded
 * whatever the size of the store. Depends on engine.c, store.c and pthreads.
 */
#include "engine/sweep.h"
#include "core/grow.h"

#include <assert.h>
#include <pthread.h>
#include <stdio.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define RG__PAGE 256
#define RG__INFLIGHT 2
#define RG__NSTR 11

/* One recorded write; strings are offsets + 1 into the log's text (0: NULL),
 * because the text buffer moves as it grows. */
struct rg_wlog_op {
    char kind; /* 't' transition, 'e' evaluation error, 'f' rule status, 'p' patient state,
                  'v' version, 's' a shadow version's transition (s[8]: the set's id) */
    size_t s[RG__NSTR];
    rg_time at, due, notify_at;
    int open;
    int64_t alert_id; /* an open's: its id once applied (rg_wlog_apply) */
    rg_patient_state ps;
};

typedef struct rg__page {
    long seq; /* -1: free */
    int state; /* 0 queued, 1 taken, 2 done */
    int rc;
    rg_patient_page p;
    rg_wlog log;
} rg__page;

typedef struct rg__sweep {
    const rg_sweep_opts *o;
    pthread_mutex_t mu;
    pthread_cond_t work, done;
    rg__page *pages;
    int npages;
    int stop;
    rg_engine_stats stats;
} rg__sweep;

typedef struct rg__worker {
    rg__sweep *sw;
    pthread_t tid;
    rg_wlog log; /* what the engine writes; moved into the page it finishes */
    int started;
} rg__worker;

/* ---- the write log ------------------------------------------------------------ */

static size_t rg__str(rg_wlog *lg, const char *s)
{
    if (!s)
        return 0;
    size_t off = lg->text.len + 1;
    if (lg->rc == RG_OK && rg_buf_add(&lg->text, s, strlen(s) + 1))
        lg->rc = RG_ENOMEM;
    return off;
}

static rg_wlog_op *rg__push(rg_wlog *lg, char kind)
{
    rg_wlog_op *grown = rg_grow(lg->v, &lg->cap, (size_t)lg->n, sizeof *grown, 64);
    if (!grown) {
        lg->rc = RG_ENOMEM;
        return NULL;
    }
    lg->v = grown;
    rg_wlog_op *op = &lg->v[lg->n++];
    memset(op, 0, sizeof *op);
    op->kind = kind;
    return op;
}

/* An alert opened in this log has no id until the log is applied: the
 * engine gets a provisional one, minus the open's place in the log, which
 * a resolve later in the same log (a patient advanced over several steps)
 * hands back and rg_wlog_apply turns into the id the open got. */
static int rg__log_transition(void *ud, rg_transition *t, int64_t *alert_id)
{
    rg_wlog *lg = ud;
    rg_wlog_op *op = rg__push(lg, 't');
    if (!op)
        return RG_ENOMEM;
    const char *s[RG__NSTR] = {t->clinic, t->patient, t->key, t->protocol, t->version,
                               t->rule, t->severity, t->message, t->params, t->evidence,
                               t->cause};
    for (int i = 0; i < RG__NSTR; i++)
        op->s[i] = rg__str(lg, s[i]);
    op->at = t->at;
    op->due = t->due;
    op->notify_at = t->notify_at;
    op->open = t->open;
    op->alert_id = *alert_id;
    if (t->open)
        *alert_id = -(int64_t)lg->n; /* provisional: see above */
    return lg->rc;
}

static int rg__log_error(void *ud, const char *clinic, const char *patient, const char *protocol,
                         const char *rule, rg_time at, const char *msg)
{
    rg_wlog *lg = ud;
    rg_wlog_op *op = rg__push(lg, 'e');
    if (!op)
        return RG_ENOMEM;
    const char *s[5] = {clinic, patient, protocol, rule, msg};
    for (int i = 0; i < 5; i++)
        op->s[i] = rg__str(lg, s[i]);
    op->at = at;
    return lg->rc;
}

static int rg__log_patient(void *ud, const char *clinic, const char *patient,
                           const rg_patient_state *ps)
{
    rg_wlog *lg = ud;
    rg_wlog_op *op = rg__push(lg, 'p');
    if (!op)
        return RG_ENOMEM;
    op->s[0] = rg__str(lg, clinic);
    op->s[1] = rg__str(lg, patient);
    op->ps = *ps;
    return lg->rc;
}

static int rg__log_version(void *ud, const char *clinic, const char *protocol,
                           const char *version, const char *file, const char *hash)
{
    rg_wlog *lg = ud;
    rg_wlog_op *op = rg__push(lg, 'v');
    if (!op)
        return RG_ENOMEM;
    const char *s[5] = {clinic, protocol, version, file, hash};
    for (int i = 0; i < 5; i++)
        op->s[i] = rg__str(lg, s[i]);
    return lg->rc;
}

static int rg__log_rule_status(void *ud, const char *clinic, const char *patient,
                               const char *protocol, const char *version, const char *rule,
                               rg_time at, const char *msg)
{
    rg_wlog *lg = ud;
    rg_wlog_op *op = rg__push(lg, 'f');
    if (!op)
        return RG_ENOMEM;
    const char *s[6] = {clinic, patient, protocol, version, rule, msg};
    for (int i = 0; i < 6; i++)
        op->s[i] = rg__str(lg, s[i]);
    op->at = at;
    return lg->rc;
}

int rg_wlog_shadow(rg_wlog *lg, const char *set, const rg_transition *t)
{
    rg_wlog_op *op = rg__push(lg, 's');
    if (!op)
        return RG_ENOMEM;
    const char *s[RG__NSTR] = {t->clinic, t->patient, t->key, t->protocol, t->version,
                               t->rule, t->severity, t->message, set, NULL};
    for (int i = 0; i < RG__NSTR; i++)
        op->s[i] = rg__str(lg, s[i]);
    op->at = t->at;
    op->due = t->due;
    op->open = t->open;
    return lg->rc;
}

rg_engine_sink rg_wlog_sink(rg_wlog *lg)
{
    return (rg_engine_sink){rg__log_transition, rg__log_error, rg__log_rule_status, rg__log_patient,
                            rg__log_version, lg};
}

void rg_wlog_cut(rg_wlog *lg, int n, size_t text_len)
{
    /* a mark taken before what is forgotten: never past the end */
    assert(n >= 0 && n <= lg->n && text_len <= lg->text.len);
    if (n < lg->n)
        lg->n = n;
    if (text_len < lg->text.len)
        lg->text.len = text_len;
    lg->rc = RG_OK;
}

int rg_wlog_append(rg_wlog *to, const rg_wlog *from)
{
    size_t base = to->text.len;
    while (to->cap < (size_t)to->n + (size_t)from->n) { /* (doubled until it holds both) */
        rg_wlog_op *grown = rg_grow(to->v, &to->cap, to->cap, sizeof *grown, 64);
        if (!grown)
            return RG_ENOMEM;
        to->v = grown;
    }
    if (from->text.len && rg_buf_add(&to->text, from->text.p, from->text.len))
        return RG_ENOMEM;
    for (int i = 0; i < from->n; i++) {
        rg_wlog_op *op = &to->v[to->n + i];
        *op = from->v[i];
        for (int k = 0; k < RG__NSTR; k++)
            op->s[k] += op->s[k] ? base : 0; /* (0: NULL) */
        if (op->kind == 't' && op->alert_id < 0) /* opened earlier in from: its place in to */
            op->alert_id -= to->n;
    }
    to->n += from->n;
    if (to->rc == RG_OK)
        to->rc = from->rc;
    return RG_OK;
}

void rg_wlog_free(rg_wlog *lg)
{
    free(lg->v);
    rg_buf_free(&lg->text);
    memset(lg, 0, sizeof *lg);
}

/* Where the transitions of an unstored sweep (rg_sweep_opts.unstored) go:
 * applied(ud, t) alone, numbered as the store would number them (given:
 * the last seq handed out). An evaluation-failed alert is the store's own
 * (rg_engine_rule_status writes it, and reads the clinic's open ones back):
 * it is read back after the write (stored: the last of the store's seqs
 * read) and handed on with the next number, the place it has in a stored
 * sweep. */
typedef struct rg__feed {
    int (*applied)(void *ud, const rg_transition *t);
    void *ud;
    int unstored;
    int64_t given, stored;
} rg__feed;

static int rg__feed_stored(void *ud, const rg_transition *t)
{
    rg__feed *fd = ud;
    rg_transition r = *t;
    fd->stored = t->seq;
    r.seq = ++fd->given;
    return fd->applied(fd->ud, &r);
}

/* rg_wlog_apply, handing each transition written (its seq set) to fd
 * (NULL: none). */
static int rg__apply(rg_store *st, rg_wlog *lg, rg__feed *fd)
{
    int rc = lg->rc;
    /* (what follows uses no transition's seq: the writes can go as a batch) */
    rg_store_defer_writes(st, 1);
    for (int i = 0; i < lg->n && rc == RG_OK; i++) {
        rg_wlog_op *op = &lg->v[i];
        const char *s[RG__NSTR];
        for (int k = 0; k < RG__NSTR; k++) {
            assert(op->s[k] <= lg->text.len); /* recorded with its text, cut with it */
            s[k] = op->s[k] ? lg->text.p + op->s[k] - 1 : NULL;
        }
        switch (op->kind) {
        case 't': {
            rg_transition t = {
                .at = op->at, .due = op->due, .notify_at = op->notify_at, .open = op->open,
                .clinic = s[0],
                .patient = s[1], .key = s[2], .protocol = s[3], .version = s[4], .rule = s[5],
                .severity = s[6], .message = s[7], .params = s[8], .evidence = s[9],
                .cause = s[10],
            };
            int64_t id = op->alert_id;
            if (id < 0) { /* opened earlier in this log */
                if (-id > i || lg->v[-id - 1].kind != 't' || !lg->v[-id - 1].open) {
                    rg_store_defer_writes(st, 0);
                    return RG_EINVAL;
                }
                id = lg->v[-id - 1].alert_id;
            }
            if (fd && fd->unstored) { /* an opening's id is its seq, as the store gives */
                t.seq = ++fd->given;
                if (op->open == 1)
                    id = t.seq;
            } else {
                rc = rg_store_transition(st, &t, &id);
            }
            if (rc == RG_OK && op->open)
                op->alert_id = id;
            if (rc == RG_OK && fd && fd->applied)
                rc = fd->applied(fd->ud, &t);
            break;
        }
        case 'e':
            rc = rg_store_eval_error(st, s[0], s[1], s[2], s[3], op->at, s[4]);
            break;
        case 'f': /* (s[5] NULL: clean again) */
            rc = rg_engine_rule_status(st, s[0], s[1], s[2], s[3], s[4], op->at, s[5]);
            if (rc == RG_OK && fd && fd->unstored)
                rc = rg_store_each_transition(st, fd->stored, 0, rg__feed_stored, fd);
            break;
        case 'p':
            rc = rg_store_patient_put(st, s[0], s[1], &op->ps);
            break;
        case 'v':
            rc = rg_store_protocol_loaded(st, s[0], s[1], s[2], s[3], s[4]);
            break;
        case 's': {
            rg_transition t = {.at = op->at, .due = op->due, .open = op->open, .clinic = s[0],
                               .patient = s[1], .key = s[2], .protocol = s[3],
                               .version = s[4], .rule = s[5], .severity = s[6],
                               .message = s[7]};
            rc = rg_store_shadow_put(st, s[8], &t);
            break;
        }
        default:
            assert(!"a write log op of no known kind");
        }
    }
    rg_store_defer_writes(st, 0);
    return rc;
}

int rg_wlog_apply(rg_store *st, rg_wlog *lg)
{
    return rg__apply(st, lg, NULL);
}

/* ---- workers -------------------------------------------------------------------- */

static void rg__add_stats(rg_engine_stats *to, const rg_engine_stats *s)
{
    to->patients += s->patients;
    to->events += s->events;
    to->steps += s->steps;
    to->protocol_calls += s->protocol_calls;
    to->rule_checks += s->rule_checks;
    to->errors += s->errors;
    to->limit_hits += s->limit_hits;
    to->opened += s->opened;
    to->resolved += s->resolved;
}

/* Reads ahead the page's patients of the clinic at from (one clinic's run):
 * rg_store_prefetch's answer (0 on SQLite). */
static int rg__ahead(rg_store *st, rg_engine *eng, const rg_patient_page *p, int from)
{
    const char *names[RG__PAGE];
    int64_t after[RG__PAGE];
    int n = 0;
    for (int i = from; i < p->n && n < RG__PAGE && !strcmp(p->keys[i][0], p->keys[from][0]); i++) {
        names[n] = p->keys[i][1];
        after[n++] = rg_engine_history_after(eng, p->keys[from][0], p->keys[i][1]);
    }
    return rg_store_prefetch(st, p->keys[from][0], names, after, n);
}

static void *rg__work(void *arg)
{
    rg__worker *w = arg;
    rg__sweep *sw = w->sw;
    const rg_sweep_opts *o = sw->o;
    rg_engine_sink sink = rg_wlog_sink(&w->log);
    rg_store *st = NULL;
    rg_engine *eng = NULL;
    char err[512];
    rg_store_opts so = {.reader = 1}; /* (it only reads: the logs are applied by the caller) */
    int rc = rg_store_open(&st, o->db, &so, err, sizeof err);
    if (rc)
        fprintf(stderr, "regimen: sweep worker: %s\n", err);
    else
        rc = o->make_engine(o->ud, st, &sink, &eng);
    for (;;) {
        pthread_mutex_lock(&sw->mu);
        rg__page *pg = NULL;
        while (!sw->stop && !pg) {
            for (int i = 0; i < sw->npages; i++) /* the oldest queued page */
                if (sw->pages[i].seq >= 0 && sw->pages[i].state == 0 &&
                    (!pg || sw->pages[i].seq < pg->seq))
                    pg = &sw->pages[i];
            if (!pg && !sw->stop)
                pthread_cond_wait(&sw->work, &sw->mu);
        }
        if (pg)
            pg->state = 1;
        pthread_mutex_unlock(&sw->mu);
        if (!pg)
            break;
        int prc = rc;
        /* PostgreSQL: each clinic's run of the page read ahead in one round
         * trip and one snapshot (rg_store_prefetch); SQLite (0): one read
         * transaction for the page */
        int pre = prc == RG_OK ? rg__ahead(st, eng, &pg->p, 0) : 0;
        if (pre < 0)
            prc = pre;
        if (prc == RG_OK && pre > 0) {
            for (int i = 0; i < pg->p.n && prc == RG_OK; i++) {
                if (i && strcmp(pg->p.keys[i][0], pg->p.keys[i - 1][0]) &&
                    (prc = rg__ahead(st, eng, &pg->p, i)) < 0)
                    break;
                prc = o->advance
                          ? rg_engine_advance(eng, pg->p.keys[i][0], pg->p.keys[i][1], o->at)
                          : rg_engine_reevaluate(eng, pg->p.keys[i][0], pg->p.keys[i][1], o->at);
            }
            rg_store_prefetch_end(st);
        } else if (prc == RG_OK && (prc = rg_store_begin_read(st)) == RG_OK) {
            for (int i = 0; i < pg->p.n && prc == RG_OK; i++)
                prc = o->advance
                          ? rg_engine_advance(eng, pg->p.keys[i][0], pg->p.keys[i][1], o->at)
                          : rg_engine_reevaluate(eng, pg->p.keys[i][0], pg->p.keys[i][1], o->at);
            rg_store_rollback(st); /* it only read */
        }
        pthread_mutex_lock(&sw->mu);
        rg_wlog spare = pg->log; /* the page's old buffers become the next log */
        pg->log = w->log;
        spare.n = 0;
        spare.text.len = 0;
        spare.rc = RG_OK;
        w->log = spare;
        pg->rc = prc;
        pg->state = 2;
        pthread_cond_broadcast(&sw->done);
        pthread_mutex_unlock(&sw->mu);
    }
    pthread_mutex_lock(&sw->mu);
    if (eng)
        rg__add_stats(&sw->stats, rg_engine_stats_get(eng));
    pthread_mutex_unlock(&sw->mu);
    rg_engine_free(eng);
    rg_store_close(st);
    return NULL;
}

/* ---- the caller: read pages ahead, apply them in order ------------------------------- */

long rg_sweep(rg_store *st, const rg_sweep_opts *o, rg_engine_stats *stats)
{
    int jobs = o->jobs < 1 ? 1 : o->jobs;
    rg__sweep sw = {.o = o, .npages = jobs * RG__INFLIGHT};
    rg__worker *ws = calloc((size_t)jobs, sizeof *ws);
    sw.pages = calloc((size_t)sw.npages, sizeof *sw.pages);
    int rc = ws && sw.pages ? RG_OK : RG_ENOMEM;
    for (int i = 0; rc == RG_OK && i < sw.npages; i++) {
        sw.pages[i].seq = -1;
        if (!(sw.pages[i].p.keys = malloc(RG__PAGE * sizeof *sw.pages[i].p.keys)))
            rc = RG_ENOMEM;
    }
    pthread_mutex_init(&sw.mu, NULL);
    pthread_cond_init(&sw.work, NULL);
    pthread_cond_init(&sw.done, NULL);
    for (int i = 0; rc == RG_OK && i < jobs; i++) {
        ws[i].sw = &sw;
        if (pthread_create(&ws[i].tid, NULL, rg__work, &ws[i]) != 0)
            rc = RG_ENOMEM;
        else
            ws[i].started = 1;
    }
    char after_clinic[RG_EVENT_MAX_ID + 1] = "", after_patient[RG_EVENT_MAX_ID + 1] = "";
    long filled = 0, applied = 0, done = 0;
    int end = 0;
    rg__feed feed = {o->applied, o->applied_ud, o->unstored && o->applied, 0, 0};
    while (rc == RG_OK && (!end || applied < filled)) {
        /* read ahead into free pages */
        for (int i = 0; !end && rc == RG_OK && i < sw.npages; i++) {
            rg__page *pg = &sw.pages[i];
            pthread_mutex_lock(&sw.mu);
            int free_slot = pg->seq < 0;
            pthread_mutex_unlock(&sw.mu);
            if (!free_slot)
                continue;
            pg->p.n = 0;
            int n = rg_store_patients_page(st, after_clinic, after_patient, RG_TIME_NONE,
                                           RG__PAGE, rg_patient_page_add, &pg->p);
            if (n < 0) {
                rc = n;
                break;
            }
            if (n == 0) {
                end = 1;
                break;
            }
            snprintf(after_clinic, sizeof after_clinic, "%s", pg->p.keys[pg->p.n - 1][0]);
            snprintf(after_patient, sizeof after_patient, "%s", pg->p.keys[pg->p.n - 1][1]);
            pthread_mutex_lock(&sw.mu);
            pg->seq = filled++;
            pg->state = 0;
            pthread_cond_signal(&sw.work);
            pthread_mutex_unlock(&sw.mu);
        }
        if (rc || applied == filled)
            continue;
        /* the next page in order, once its worker is done */
        rg__page *next = NULL;
        pthread_mutex_lock(&sw.mu);
        for (;;) {
            for (int i = 0; i < sw.npages && !next; i++)
                if (sw.pages[i].seq == applied && sw.pages[i].state == 2)
                    next = &sw.pages[i];
            if (next)
                break;
            pthread_cond_wait(&sw.done, &sw.mu);
        }
        pthread_mutex_unlock(&sw.mu);
        rc = next->rc;
        if (rc == RG_OK && (rc = rg_store_begin(st)) == RG_OK) {
            rc = rg__apply(st, &next->log, &feed);
            if (rc == RG_OK)
                rc = rg_store_commit(st);
            if (rc)
                rg_store_rollback(st);
        }
        done += next->p.n;
        pthread_mutex_lock(&sw.mu);
        next->seq = -1;
        applied++;
        pthread_mutex_unlock(&sw.mu);
    }
    pthread_mutex_lock(&sw.mu);
    sw.stop = 1;
    pthread_cond_broadcast(&sw.work);
    pthread_mutex_unlock(&sw.mu);
    for (int i = 0; ws && i < jobs; i++)
        if (ws[i].started)
            pthread_join(ws[i].tid, NULL);
    *stats = sw.stats;
    for (int i = 0; ws && i < jobs; i++)
        rg_wlog_free(&ws[i].log);
    for (int i = 0; sw.pages && i < sw.npages; i++) {
        free(sw.pages[i].p.keys);
        rg_wlog_free(&sw.pages[i].log);
    }
    free(sw.pages);
    free(ws);
    pthread_cond_destroy(&sw.done);
    pthread_cond_destroy(&sw.work);
    pthread_mutex_destroy(&sw.mu);
    return rc ? rc : done;
}

int rg_sweep_default_jobs(void)
{
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof set, &set) == 0 && CPU_COUNT(&set) > 0)
        return CPU_COUNT(&set);
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? (int)n : 1;
}

int rg_wlog_each_transition(const rg_wlog *lg,
                            int (*fn)(void *ud, const char *clinic, const char *patient,
                                      const char *key, int open),
                            void *ud)
{
    int rc = RG_OK;
    for (int i = 0; i < lg->n && rc == RG_OK; i++)
        if (lg->v[i].kind == 't')
            rc = fn(ud, lg->text.p + lg->v[i].s[0] - 1, lg->text.p + lg->v[i].s[1] - 1,
                    lg->text.p + lg->v[i].s[2] - 1, lg->v[i].open);
    return rc;
}
