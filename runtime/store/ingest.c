/*
 * ingest.c - validated, idempotent, batched storage of event lines (see
 * ingest.h). Depends on event.c and store.c.
 *
 * A file is a two-stage pipeline: a reader thread reads and validates lines
 * (jansson, the compiled data) while the caller's thread writes them to the
 * store, which only it touches. The writer takes the lines in file order, so
 * batches, outcomes and line numbers are those of one loop over the file.
 * The valid events of a chunk go to the store in one call
 * (rg_store_put_events: one round trip to PostgreSQL).
 */
#include "store/ingest.h"
#include "core/digest.h"

#include <jansson.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#define RG_BATCH_LINES 10000
#define RG_RAW_KEEP 65536 /* bytes of a refused line kept for the operator */

int rg_ingest_conflict_why(rg_store *st, const rg_event *ev, int again, char *field, char *why,
                           size_t whylen)
{
    rg_put put;
    int rc = again ? rg_store_put_event(st, ev, rg_now(), &put) : RG_OK;
    if (rc)
        return rc;
    snprintf(field, RG_FIELD_MAX, "%s", rg_store_put_field(st));
    snprintf(why, whylen, "%s", rg_store_put_reason(st));
    return RG_OK;
}

rg_time rg_ingest_ahead(const rg_event *ev, rg_time now, rg_time skew, char *why, size_t whylen)
{
    if (!skew)
        skew = RG_INGEST_SKEW_MS;
    if (skew < 0 || ev->at <= now + skew)
        return 0;
    rg_time ahead = ev->at - now;
    char at[RG_TIME_BUFSZ];
    long h = (long)(ahead / RG_MS_HOUR), m = (long)(ahead % RG_MS_HOUR / RG_MS_MINUTE);
    snprintf(why, whylen, "warning: event %s is dated %s, %ld h %ld min ahead of the clock (more "
             "than the %ld min allowed: a clock or time-zone slip in the sender?); stored, it "
             "counts from that time on", ev->id, rg_time_format(ev->at, at), h, m,
             (long)(skew / RG_MS_MINUTE));
    return ahead;
}

#define RG__LEN_UNKNOWN ((size_t)-1) /* text's length, measured only if it is kept */

/* The store's half of one line: stores a validated event (or takes what
 * storing it gave, *stored, when it went in with others), or keeps the
 * refusal (rc RG_EINVAL with field and why) with the raw text (len bytes,
 * or RG__LEN_UNKNOWN: up to its NUL). now is the clock an event's date is
 * checked against (a chunk's lines share one reading: issue 27). */
static int rg__store_one(rg_store *st, int rc, rg_event *ev, char *field, char *why,
                         size_t whylen, const char *text, size_t len, const char *source,
                         long line, rg_ingest_counts *counts, rg_reject_fn on_reject, void *ud,
                         const rg_put *stored, rg_time now)
{
    int outcome = RG_INGEST_REJECTED;
    if (rc == RG_OK) {
        rg_put put = stored ? *stored : RG_PUT_STORED;
        rc = stored ? RG_OK : rg_store_put_event(st, ev, now, &put);
        if (rc)
            return rc;
        if (put == RG_PUT_STORED || put == RG_PUT_CORRECTED) {
            put == RG_PUT_STORED ? counts->stored++ : counts->corrected++;
            char warn[512];
            if (rg_ingest_ahead(ev, now, counts->skew, warn, sizeof warn)) {
                counts->future++;
                if (on_reject)
                    on_reject(ud, source, line, "", warn);
            }
            return (int)put;
        }
        if (put == RG_PUT_DUPLICATE) {
            counts->duplicates++;
            return RG_PUT_DUPLICATE;
        }
        outcome = RG_PUT_CONFLICT;
        counts->conflicts++;
        if ((rc = rg_ingest_conflict_why(st, ev, stored != NULL, field, why, whylen)))
            return rc;
    } else if (rc != RG_EINVAL) {
        return rc;
    } else {
        counts->rejected++;
    }
    if (len == RG__LEN_UNKNOWN)
        len = text ? strlen(text) : 0;
    rc = rg_store_reject(st, source, line, field, why, text, len > RG_RAW_KEEP ? RG_RAW_KEEP : len);
    if (rc)
        return rc;
    if (on_reject)
        on_reject(ud, source, line, field, why);
    return outcome;
}

int rg_ingest_one(rg_store *st, const char *text, size_t len, const char *source, long line,
                  rg_ingest_counts *counts, rg_reject_fn on_reject, void *ud)
{
    rg_event ev;
    char field[RG_FIELD_MAX], why[512];
    int rc = rg_event_parse(&ev, text, len, field, why, sizeof why);
    rc = rg__store_one(st, rc, &ev, field, why, sizeof why, text, len, source, line, counts,
                       on_reject, ud, NULL, rg_now());
    rg_event_clear(&ev);
    return rc;
}

static int rg__blank(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (s[i] != ' ' && s[i] != '\t' && s[i] != '\r' && s[i] != '\n')
            return 0;
    return 1;
}

/* Refusals of a batch are reported once the batch is committed: an operator
 * is never told of a kept line that the rollback of its batch took away. */
typedef struct rg__pending {
    rg_buf b; /* per refusal: long line, field, NUL, reason, NUL */
    int nomem;
} rg__pending;

static void rg__defer(void *ud, const char *source, long line, const char *field,
                      const char *reason)
{
    rg__pending *p = ud;
    (void)source;
    if (rg_buf_add(&p->b, (const char *)&line, sizeof line) ||
        rg_buf_add(&p->b, field, strlen(field) + 1) ||
        rg_buf_add(&p->b, reason, strlen(reason) + 1))
        p->nomem = 1;
}

static void rg__flush(rg__pending *p, const char *source, rg_reject_fn on_reject, void *ud)
{
    for (size_t off = 0; on_reject && off < p->b.len;) {
        long line;
        memcpy(&line, p->b.p + off, sizeof line);
        const char *field = p->b.p + off + sizeof line;
        const char *reason = field + strlen(field) + 1;
        off = (size_t)(reason + strlen(reason) + 1 - p->b.p);
        on_reject(ud, source, line, field, reason);
    }
    p->b.len = 0;
}

/* ---- the pipeline: lines are read and validated on one thread while the
 * store writes on the caller's. Chunks of lines go through a short queue in
 * file order, so the writer sees exactly the sequence a single loop would:
 * the same batches, outcomes and line numbers. */

#define RG_CHUNK_LINES 256
#define RG_CHUNKS_IN_FLIGHT 16 /* bounds the memory read ahead of the writer: 4,096
                                * lines, which cover a new database's schema being made
                                * (rg_ingest_start) */

typedef struct rg__item {
    long line;
    int rc; /* rg_event_parse's answer */
    rg_event ev;
    char field[RG_FIELD_MAX];
    char *why, *raw; /* a refusal: the reason and the line (RG_RAW_KEEP bytes) */
    size_t rawlen;
} rg__item;

typedef struct rg__chunk {
    struct rg__chunk *next;
    int n;
    int end;     /* the last chunk: after it, nothing more was read */
    int readerr; /* the read ended in an error, not at the end of the file */
    long lines;  /* with end: the number of lines read */
    rg__item it[RG_CHUNK_LINES];
} rg__chunk;

typedef struct rg__pipe {
    FILE *f;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    rg__chunk *head, *tail, *spare; /* full chunks in order; emptied ones to reuse */
    int queued, stop;
    int full; /* the reader waits for room: woken when the queue is down to half, not at
               * every chunk taken (a futex wake-up a chunk on the writer's thread, the
               * pipeline's slower stage: issue 27) */
} rg__pipe;

static void rg__chunk_clear(rg__chunk *c)
{
    for (int i = 0; i < c->n; i++) {
        rg_event_clear(&c->it[i].ev);
        free(c->it[i].why);
        free(c->it[i].raw);
    }
    c->n = 0;
    c->end = c->readerr = 0;
}

/* Validates one line into it; only an allocation can fail here. */
static void rg__parse_item(rg__item *it, const char *line, size_t len, long lineno)
{
    char why[512];
    it->line = lineno;
    it->why = it->raw = NULL;
    it->rc = rg_event_parse(&it->ev, line, len, it->field, why, sizeof why);
    if (it->rc == RG_OK) { /* the body's digest here too: the writer only binds it */
        rg_event *ev = &it->ev;
        rg_sha256(ev->body, strlen(ev->body), ev->digest);
        ev->digested = 1;
        /* and what the row keeps of the body (schema 17) */
        ev->kept = rg_event_body_rest(ev->body, ev->id, ev->clinic, ev->patient, ev->type, ev->at,
                                      ev->offset_min, ev->fields.p, ev->fields.len);
    }
    if (it->rc != RG_EINVAL)
        return;
    it->rawlen = len > RG_RAW_KEEP ? RG_RAW_KEEP : len;
    it->why = strdup(why);
    it->raw = malloc(it->rawlen ? it->rawlen : 1);
    if (!it->why || !it->raw)
        it->rc = RG_ENOMEM;
    else
        memcpy(it->raw, line, it->rawlen);
}

static void *rg__reader(void *arg)
{
    rg__pipe *p = arg;
    char *line = NULL;
    size_t cap = 0;
    long lineno = 0;
    for (int end = 0; !end;) {
        pthread_mutex_lock(&p->mu);
        while (!p->stop && p->queued >= RG_CHUNKS_IN_FLIGHT) {
            p->full = 1;
            pthread_cond_wait(&p->cv, &p->mu);
        }
        int stop = p->stop;
        rg__chunk *c = stop ? NULL : p->spare;
        if (c)
            p->spare = c->next;
        pthread_mutex_unlock(&p->mu);
        if (stop)
            break;
        if (c)
            rg__chunk_clear(c); /* here: memory is freed by the thread that took it */
        if (!c && !(c = calloc(1, sizeof *c))) {
            end = 1; /* the writer sees an allocation failure at this point */
        } else {
            ssize_t n = 0;
            while (c->n < RG_CHUNK_LINES && (n = getline(&line, &cap, p->f)) >= 0) {
                lineno++;
                size_t len = (size_t)n;
                while (len && (line[len - 1] == '\n' || line[len - 1] == '\r'))
                    len--;
                if (!rg__blank(line, len))
                    rg__parse_item(&c->it[c->n++], line, len, lineno);
            }
            if (n < 0) {
                end = c->end = 1;
                c->readerr = ferror(p->f) != 0;
                c->lines = lineno;
            }
        }
        pthread_mutex_lock(&p->mu);
        if (c) {
            c->next = NULL;
            if (p->tail)
                p->tail->next = c;
            else
                p->head = c;
            p->tail = c;
        }
        p->queued++; /* a NULL chunk still counts: the writer wakes to find none */
        if (!c)
            p->stop = -1;
        pthread_cond_broadcast(&p->cv);
        pthread_mutex_unlock(&p->mu);
    }
    free(line);
    return NULL;
}

/* The next chunk in file order, or NULL when the reader could not allocate one. */
static rg__chunk *rg__next_chunk(rg__pipe *p)
{
    pthread_mutex_lock(&p->mu);
    while (!p->head && p->stop != -1)
        pthread_cond_wait(&p->cv, &p->mu);
    rg__chunk *c = p->head;
    if (c) {
        p->head = c->next;
        if (!p->head)
            p->tail = NULL;
        p->queued--;
        if (p->full && p->queued <= RG_CHUNKS_IN_FLIGHT / 2) {
            p->full = 0;
            pthread_cond_broadcast(&p->cv);
        }
    }
    pthread_mutex_unlock(&p->mu);
    return c;
}

static void rg__recycle(rg__pipe *p, rg__chunk *c)
{
    pthread_mutex_lock(&p->mu);
    c->next = p->spare;
    p->spare = c;
    pthread_mutex_unlock(&p->mu);
}

/* The valid events of c from item i on, at most max items (the rest of the
 * batch), stored with one call: their outcomes in put[], *end the item after
 * the last one looked at. A line that ran out of memory ends the run there.
 * On an error, *lineno is the line of the event the store stopped at. */
static int rg__store_run(rg_store *st, rg__chunk *c, int i, long max, rg_put put[],
                         int *end, long *lineno)
{
    const rg_event *evs[RG_CHUNK_LINES];
    int at[RG_CHUNK_LINES], n = 0, j;
    rg_put res[RG_CHUNK_LINES];
    for (j = i; j < c->n && j - i < max && c->it[j].rc != RG_ENOMEM; j++)
        if (c->it[j].rc == RG_OK) {
            at[n] = j;
            evs[n++] = &c->it[j].ev;
        }
    *end = j > i ? j : i + 1;
    int failed = 0, rc = n ? rg_store_put_events(st, evs, n, rg_now(), res, &failed) : RG_OK;
    if (rc)
        *lineno = c->it[at[failed]].line;
    for (int k = 0; rc == RG_OK && k < n; k++)
        put[at[k]] = res[k];
    return rc;
}

/* The first stage alone (ingest.h): it reads while the caller opens its store. */
struct rg_ingest_reader {
    rg__pipe p;
    pthread_t thread;
    int started; /* the thread runs (it could not be made: the writer fails at once) */
};

rg_ingest_reader *rg_ingest_start(FILE *f)
{
    rg_ingest_reader *r = calloc(1, sizeof *r);
    if (!r)
        return NULL;
    r->p.f = f;
    pthread_mutex_init(&r->p.mu, NULL);
    pthread_cond_init(&r->p.cv, NULL);
    json_object_seed(0); /* jansson seeds its hashes once; not from two threads at once */
    r->started = pthread_create(&r->thread, NULL, rg__reader, &r->p) == 0;
    return r;
}

void rg_ingest_stop(rg_ingest_reader *r)
{
    if (!r)
        return;
    rg__pipe *p = &r->p;
    if (r->started) {
        pthread_mutex_lock(&p->mu);
        if (p->stop == 0)
            p->stop = 1;
        pthread_cond_broadcast(&p->cv);
        pthread_mutex_unlock(&p->mu);
        pthread_join(r->thread, NULL);
    }
    for (rg__chunk *c = p->head, *next; c; c = next) {
        next = c->next;
        rg__chunk_clear(c);
        free(c);
    }
    for (rg__chunk *c = p->spare, *next; c; c = next) {
        next = c->next;
        rg__chunk_clear(c);
        free(c);
    }
    pthread_cond_destroy(&p->cv);
    pthread_mutex_destroy(&p->mu);
    free(r);
}

int rg_ingest_file(rg_store *st, FILE *f, const char *source, rg_ingest_counts *counts,
                   rg_reject_fn on_reject, void *ud, char *err, size_t errlen)
{
    return rg_ingest_finish(st, rg_ingest_start(f), source, counts, on_reject, ud, err, errlen);
}

int rg_ingest_finish(rg_store *st, rg_ingest_reader *rd, const char *source,
                     rg_ingest_counts *counts, rg_reject_fn on_reject, void *ud, char *err,
                     size_t errlen)
{
    rg__pending pend = {{0}, 0};
    long lineno = 0, in_batch = 0;
    int in_tx = 0; /* a transaction is open (whole: from the first line to the end) */
    rg_ingest_counts committed = *counts;
    int rc = rd && rd->started ? RG_OK : RG_ENOMEM;
    for (int end = 0; rc == RG_OK && !end;) {
        rg__chunk *c = rg__next_chunk(&rd->p);
        rg_time now = rg_now(); /* one clock reading a chunk, not one a line */
        rg_put put[RG_CHUNK_LINES];
        int run_end = 0; /* items before it are stored (rg__store_run) */
        if (!c) {
            rc = RG_ENOMEM;
            break;
        }
        for (int i = 0; i < c->n; i++) {
            rg__item *it = &c->it[i];
            char why[512];
            lineno = it->line;
            if (it->rc == RG_ENOMEM) {
                rc = RG_ENOMEM;
                break;
            }
            if (!in_tx && (rc = rg_store_begin(st)))
                break;
            in_tx = 1;
            if (i >= run_end &&
                (rc = rg__store_run(st, c, i, RG_BATCH_LINES - in_batch, put, &run_end,
                                    &lineno)))
                break;
            why[0] = '\0'; /* no printf per line: this loop is the pipeline's slower stage */
            if (it->why)
                snprintf(why, sizeof why, "%s", it->why);
            int r = rg__store_one(st, it->rc, &it->ev, it->field, why, sizeof why,
                                  it->raw ? it->raw : it->ev.body,
                                  it->raw ? it->rawlen : RG__LEN_UNKNOWN,
                                  source, it->line, counts, rg__defer, &pend,
                                  it->rc == RG_OK ? &put[i] : NULL, now);
            if (r < 0 || pend.nomem) {
                rc = r < 0 ? r : RG_ENOMEM;
                break;
            }
            if (++in_batch == RG_BATCH_LINES) {
                if (!counts->whole) {
                    if ((rc = rg_store_commit(st)))
                        break;
                    in_tx = 0;
                    committed = *counts;
                }
                rg__flush(&pend, source, on_reject, ud);
                in_batch = 0;
            }
        }
        if (rc == RG_OK && c->end) {
            end = 1;
            lineno = c->lines;
            if (c->readerr)
                rc = RG_EIO;
        }
        rg__recycle(&rd->p, c);
    }
    rg_ingest_stop(rd);
    if (rc == RG_OK && in_tx && (rc = rg_store_commit(st)) == RG_OK) {
        committed = *counts;
        rg__flush(&pend, source, on_reject, ud);
    }
    rg_buf_free(&pend.b);
    if (rc) {
        rg_store_rollback(st);
        *counts = committed;
        return rg_fail(err, errlen, rc, "%s: stopped at line %ld: %s (%s); %s", source, lineno,
                       rg_strerror(rc), rc == RG_EIO ? "read error"
                       : rc == RG_ENOMEM ? "out of memory" : rg_store_errmsg(st),
                       counts->whole ? "nothing of the file was kept"
                                     : "lines of the last batch were rolled back");
    }
    return RG_OK;
}

/* ---- a FHIR import: its events, one transaction ---- */

typedef struct rg__why {
    char field[RG_FIELD_MAX], reason[512];
} rg__why;

static void rg__keep_why(void *ud, const char *source, long line, const char *field,
                         const char *reason)
{
    rg__why *w = ud;
    (void)source;
    (void)line;
    snprintf(w->field, sizeof w->field, "%s", field);
    snprintf(w->reason, sizeof w->reason, "%s", reason);
}

int rg_ingest_fhir(rg_store *st, const rg_fhir_import *im, const char *source,
                   rg_ingest_counts *counts, json_t *reports, char *err, size_t errlen)
{
    static const char *const outcome[] = {"stored", "duplicate", "conflict", "rejected",
                                         "corrected"};
    rg_ingest_counts c = *counts;
    size_t first = json_array_size(reports);
    int rc = rg_store_begin(st);
    for (size_t i = 0; i < im->n && !rc; i++) {
        const rg_fhir_entry *e = &im->v[i];
        json_t *results = NULL, *ev;
        size_t k;
        if (e->kind == RG_FHIR_REJECTED) {
            char *raw = e->resource ? json_dumps(e->resource, JSON_COMPACT) : NULL;
            rc = rg_store_reject(st, source, e->index, e->location, e->reason, raw ? raw : "",
                                 raw ? (strlen(raw) > RG_RAW_KEEP ? RG_RAW_KEEP : strlen(raw))
                                     : 0);
            free(raw);
            c.rejected++;
        } else if (e->kind == RG_FHIR_EVENTS && !(results = json_array())) {
            rc = RG_ENOMEM;
        }
        json_array_foreach(results ? e->events : NULL, k, ev) {
            char *text = json_dumps(ev, JSON_COMPACT | JSON_REAL_PRECISION(12));
            rg__why why = {"", ""};
            int r = text ? rg_ingest_one(st, text, strlen(text), source, e->index, &c,
                                         rg__keep_why, &why)
                         : RG_ENOMEM;
            free(text);
            if (r < 0) {
                rc = r;
                break;
            }
            json_t *o = json_pack("{s:O,s:s}", "id", json_object_get(ev, "id") ?
                                  json_object_get(ev, "id") : json_null(), "status", outcome[r]);
            if (o && (r == RG_PUT_CONFLICT || r == RG_INGEST_REJECTED)) {
                json_object_set_new(o, "field", json_string(why.field));
                json_object_set_new(o, "reason", json_string(why.reason));
            } else if (o && why.reason[0]) { /* stored, dated ahead of the clock */
                json_object_set_new(o, "future", json_true());
                json_object_set_new(o, "warning", json_string(why.reason));
            }
            json_array_append_new(results, o);
        }
        if (!rc)
            json_array_append_new(reports, rg_fhir_entry_json(im, e, results));
        json_decref(results);
    }
    if (!rc)
        rc = rg_store_commit(st);
    if (rc) {
        rg_store_rollback(st);
        while (json_array_size(reports) > first)
            json_array_remove(reports, json_array_size(reports) - 1);
        return rg_fail(err, errlen, rc, "%s: nothing was stored: %s (%s)", source,
                       rg_strerror(rc), rc == RG_ENOMEM ? "out of memory" : rg_store_errmsg(st));
    }
    *counts = c;
    return RG_OK;
}
