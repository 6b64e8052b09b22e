/*
 * reload.c - a reload's gate off the loop thread. A clinic whose protocol
 * directory changed must pass rg_clinic_gate (runtime/engine/gate.c: it
 * loads, its rules run on generated histories, its scenario tests pass;
 * seconds for the shipped sets) before it goes live. That runs here, on one
 * worker thread of its own (not an evaluation thread: a change to the
 * shipped set gates every clinic at once, and the clinics' evaluations must
 * go on meanwhile), one clinic after another, followed by the load of the
 * protocols the loop's engine will run (rg_clinic_load), so that the switch
 * on the loop is a pointer swap and a version record. The loop keeps serving
 * the version in force until the answer comes back (a uv_async_t; serve.c,
 * rg__on_gated, takes it up: goes live, or refused with its alert).
 *
 * Stopping: a gate under way is not waited for (it can take seconds and
 * nothing of it is live yet): rg_svc_gates_free leaves a busy thread behind,
 * the process exits without it. Depends on gate.c, clinic.c, pthreads, libuv.
 */
#include "service/service.h"

#include "engine/gate.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct rg_svc_gates {
    rg_svc *sv;
    pthread_t tid;
    int started;
    pthread_mutex_t mu;
    pthread_cond_t work;
    rg_svc_gate *queue, **tail; /* FIFO, under mu */
    rg_svc_gate *done;          /* answered, for the loop (under mu) */
    int busy;                   /* under mu: a gate is running */
    int stop, closed;           /* under mu: end the thread; async closed */
    uv_async_t async;
    void (*on_done)(rg_svc *sv);
};

static void rg__unload(rg_svc_gate *q)
{
    rg_clinic_free(q->loaded);
    q->loaded = NULL;
    for (int k = 0; k < q->ncopies; k++) {
        rg_clinic_free(q->copies[k]);
        q->copies[k] = NULL;
    }
}

/* One clinic: the gate, then the loads for the loop's engine and for each
 * evaluation thread, all of the same files: when they changed meanwhile (an
 * editor still saving), all of it again, three times at most, so that
 * nothing runs that the gate did not pass. q->fp: the files gated. */
static void rg__gate_one(struct rg_svc_gates *g, rg_svc_gate *q)
{
    rg_svc *sv = g->sv;
    const char *name = sv->clinics[q->clinic].name; /* (never changes) */
    const char *shipped = q->shipped[0] ? q->shipped : NULL;
    uint64_t t0 = uv_hrtime();
    for (int attempt = 1;; attempt++) {
        uint64_t fp = rg_clinic_fingerprint(q->dir, shipped);
        q->rc = rg_clinic_gate(name, q->dir, shipped, &q->limits, q->err, sizeof q->err);
        if (q->rc == RG_OK)
            q->rc = rg_clinic_load(&q->loaded, name, q->dir, shipped, NULL, &q->limits,
                                   q->err, sizeof q->err);
        for (int k = 0; k < q->ncopies && q->rc == RG_OK; k++)
            q->rc = rg_clinic_load(&q->copies[k], name, q->dir, shipped, NULL, &q->limits,
                                   q->err, sizeof q->err);
        if (rg_clinic_fingerprint(q->dir, shipped) == fp) {
            q->fp = fp;
            break;
        }
        rg__unload(q);
        if (attempt == 3) {
            q->rc = rg_fail(q->err, sizeof q->err, RG_ECONFLICT, "its files changed while they "
                            "were gated, three times: reload again once they are saved");
            break;
        }
    }
    if (q->rc)
        rg__unload(q);
    q->ms = (double)(uv_hrtime() - t0) / 1e6;
}

static void *rg__gates_main(void *arg)
{
    struct rg_svc_gates *g = arg;
    pthread_mutex_lock(&g->mu);
    for (;;) {
        while (!g->queue && !g->stop)
            pthread_cond_wait(&g->work, &g->mu);
        if (g->stop)
            break;
        rg_svc_gate *q = g->queue;
        if (!(g->queue = q->next))
            g->tail = &g->queue;
        g->busy = 1;
        pthread_mutex_unlock(&g->mu);
        rg__gate_one(g, q);
        pthread_mutex_lock(&g->mu);
        g->busy = 0;
        q->next = g->done;
        g->done = q;
        if (!g->closed)
            uv_async_send(&g->async);
    }
    pthread_mutex_unlock(&g->mu);
    return NULL;
}

static void rg__on_async(uv_async_t *h)
{
    struct rg_svc_gates *g = h->data;
    g->on_done(g->sv);
}

int rg_svc_gates_start(rg_svc *sv, void (*on_done)(rg_svc *sv))
{
    struct rg_svc_gates *g = calloc(1, sizeof *g);
    if (!g)
        return RG_ENOMEM;
    g->sv = sv;
    g->on_done = on_done;
    g->tail = &g->queue;
    pthread_mutex_init(&g->mu, NULL);
    pthread_cond_init(&g->work, NULL);
    uv_async_init(&sv->loop, &g->async, rg__on_async);
    g->async.data = g;
    if (pthread_create(&g->tid, NULL, rg__gates_main, g)) {
        uv_close((uv_handle_t *)&g->async, NULL);
        g->closed = 1;
        sv->gates = g; /* (freed with the others; submit refuses) */
        return RG_ENOMEM;
    }
    g->started = 1;
    sv->gates = g;
    return RG_OK;
}

int rg_svc_gates_submit(rg_svc *sv, rg_svc_gate *q)
{
    struct rg_svc_gates *g = sv->gates;
    if (!g || !g->started)
        return RG_ENOMEM;
    q->next = NULL;
    pthread_mutex_lock(&g->mu);
    *g->tail = q;
    g->tail = &q->next;
    pthread_cond_signal(&g->work);
    pthread_mutex_unlock(&g->mu);
    return RG_OK;
}

rg_svc_gate *rg_svc_gates_done(rg_svc *sv)
{
    struct rg_svc_gates *g = sv->gates;
    if (!g)
        return NULL;
    pthread_mutex_lock(&g->mu);
    rg_svc_gate *list = g->done, *ordered = NULL;
    g->done = NULL;
    pthread_mutex_unlock(&g->mu);
    while (list) { /* (pushed last first: back in the order they were gated) */
        rg_svc_gate *next = list->next;
        list->next = ordered;
        ordered = list;
        list = next;
    }
    return ordered;
}

void rg_svc_gate_free(rg_svc_gate *q)
{
    if (q) {
        rg__unload(q);
        free(q->copies);
        free(q);
    }
}

void rg_svc_gates_close(rg_svc *sv)
{
    struct rg_svc_gates *g = sv->gates;
    if (!g)
        return;
    pthread_mutex_lock(&g->mu);
    int was = g->closed;
    g->closed = 1;
    pthread_mutex_unlock(&g->mu);
    if (!was)
        uv_close((uv_handle_t *)&g->async, NULL);
}

void rg_svc_gates_free(rg_svc *sv)
{
    struct rg_svc_gates *g = sv->gates;
    if (!g)
        return;
    sv->gates = NULL;
    pthread_mutex_lock(&g->mu);
    g->stop = 1;
    pthread_cond_signal(&g->work);
    int busy = g->busy;
    pthread_mutex_unlock(&g->mu);
    if (busy) { /* a gate under way: left behind, the process exits without it */
        rg_log("info", "a reload's gate was under way: stopped without it (nothing of it was "
               "live)");
        return;
    }
    if (g->started)
        pthread_join(g->tid, NULL);
    for (rg_svc_gate *lists[2] = {g->queue, g->done}, **l = lists; l < lists + 2; l++)
        for (rg_svc_gate *q = *l, *next; q; q = next) {
            next = q->next;
            rg_svc_gate_free(q);
        }
    pthread_cond_destroy(&g->work);
    pthread_mutex_destroy(&g->mu);
    free(g);
}
