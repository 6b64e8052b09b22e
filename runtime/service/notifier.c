/*
 * notifier.c - the service notifies people (docs/notifications.md, "The
 * service"): the planning of a clinic's notification steps into the store
 * and the sender that sends them when due.
 *
 * Planning: in the group commit that applies an evaluation's write log
 * (serve.c, rg__group), each patient of a clinic with a `notify` policy
 * that had a transition is planned again with rg_notify_plan, the planner
 * simulate and `regimen test` use, over the transitions of the patient's
 * alerts; the steps of the alerts concerned (those that moved, those still
 * open) are stored under their idempotency key (rg_store_notify_plan), in
 * that same transaction. A crash loses none and a re-plan duplicates none.
 *
 * Sending, on the loop thread except the send itself: a timer wakes at the
 * earliest pending step of the clinics this worker holds. A due step whose
 * alert was acknowledged, snoozed or resolved stops its chain (all its
 * pending steps); one the planner held back is recorded as suppressed; the
 * steps of a group_by route due together for one patient go out as one
 * message. The message is claimed in the store, sent on libuv's thread pool
 * (libcurl's blocking calls: a webhook POST signed as the clinic's webhook,
 * an e-mail over SMTP, an SMS gateway's POST), and its outcome recorded
 * with the history entry in one transaction; a failure is retried with
 * back-off (1 s doubling) up to RG__TRIES attempts. One send at a time.
 * Depends on notify.c, smtp.c, webhook.c (signatures, the POST), store.h.
 */
#include "service/service.h"
#include "core/grow.h"

#include "engine/clinic.h"
#include "engine/notify.h"
#include "service/smtp.h"


#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define RG__TRIES 5          /* attempts of one step before it is recorded as failed */
#define RG__BACKOFF_MS 1000  /* the first retry's wait, doubled each time */
#define RG__CLAIM_MS 120000  /* a claim outlives a send (curl's timeouts are 10 s) */
#define RG__DUE_ROWS 64      /* due steps read at once */
#define RG__GROUP 64         /* alerts in one message at most */
#define RG__HORIZON (400 * RG_MS_DAY) /* how far ahead a plan lays out steps */

/* ---- planning ---------------------------------------------------------------------------- */

typedef struct rg__pat {
    char clinic[RG_EVENT_MAX_CLINIC + 1], patient[RG_EVENT_MAX_ID + 1];
} rg__pat;

typedef struct rg__keys {
    char **v;
    size_t n, cap;
} rg__keys;

static int rg__keys_add(rg__keys *k, const char *s)
{
    for (size_t i = 0; i < k->n; i++)
        if (!strcmp(k->v[i], s))
            return RG_OK;
    char **g = rg_grow(k->v, &k->cap, k->n, sizeof *g, 16);
    if (!g)
        return RG_ENOMEM;
    k->v = g;
    return (k->v[k->n] = strdup(s)) ? (k->n++, RG_OK) : RG_ENOMEM;
}

static int rg__keys_has(const rg__keys *k, const char *s)
{
    for (size_t i = 0; i < k->n; i++)
        if (!strcmp(k->v[i], s))
            return 1;
    return 0;
}

static void rg__keys_free(rg__keys *k)
{
    for (size_t i = 0; i < k->n; i++)
        free(k->v[i]);
    free(k->v);
    memset(k, 0, sizeof *k);
}

typedef struct rg__plan {
    rg_svc *sv;
    rg__pat *pats;
    int npats;
    size_t cappats;
    const char *clinic, *patient;
    rg__keys all, touched; /* the patient's alert keys; those to store steps of */
    rg_notify_alert_tx *txs;
    int64_t *seqs;
    size_t ntx, captx;
    int added;
} rg__plan;

static int rg__note_patient(void *ud, const char *clinic, const char *patient, const char *key,
                            int open)
{
    rg__plan *p = ud;
    (void)key;
    if (open == RG_TRANSITION_RERAISED)
        return RG_OK;
    rg_clinic *c = rg_engine_clinic(p->sv->eng, clinic);
    if (!c || !c->notify)
        return RG_OK;
    for (int i = 0; i < p->npats; i++)
        if (!strcmp(p->pats[i].clinic, clinic) && !strcmp(p->pats[i].patient, patient))
            return RG_OK;
    rg__pat *g = rg_grow(p->pats, &p->cappats, (size_t)p->npats, sizeof *g, 16);
    if (!g)
        return RG_ENOMEM;
    p->pats = g;
    snprintf(p->pats[p->npats].clinic, sizeof p->pats[0].clinic, "%s", clinic);
    snprintf(p->pats[p->npats].patient, sizeof p->pats[0].patient, "%s", patient);
    p->npats++;
    return RG_OK;
}

static int rg__note_key(void *ud, const char *clinic, const char *patient, const char *key,
                        int open)
{
    rg__plan *p = ud;
    if (open == RG_TRANSITION_RERAISED || strcmp(clinic, p->clinic) || strcmp(patient, p->patient))
        return RG_OK;
    return rg__keys_add(&p->touched, key);
}

static int rg__alert_key(void *ud, const rg_alert_view *a)
{
    rg__plan *p = ud;
    int rc = rg__keys_add(&p->all, a->key);
    if (!rc && !strcmp(a->state, "open"))
        rc = rg__keys_add(&p->touched, a->key);
    return rc;
}

static int rg__tx(void *ud, const rg_transition *t)
{
    rg__plan *p = ud;
    if (t->open == RG_TRANSITION_RERAISED) /* a re-raise continues its chain */
        return RG_OK;
    /* two arrays of one length: the second grows from the first's old cap */
    size_t cap = p->captx;
    rg_notify_alert_tx *g = rg_grow(p->txs, &p->captx, p->ntx, sizeof *g, 32);
    if (!g)
        return RG_ENOMEM;
    p->txs = g;
    int64_t *s = rg_grow(p->seqs, &cap, p->ntx, sizeof *s, 32);
    if (!s) {
        p->captx = cap; /* (txs is merely larger than needed) */
        return RG_ENOMEM;
    }
    p->seqs = s;
    rg_notify_alert_tx *x = &p->txs[p->ntx];
    memset(x, 0, sizeof *x);
    x->at = t->at;
    x->notify_at = t->notify_at;
    x->open = t->open;
    p->seqs[p->ntx] = t->seq;
    const char *src[6] = {t->clinic, t->patient, t->key, t->protocol, t->rule, t->severity};
    const char **dst[6] = {&x->clinic, &x->patient, &x->key, &x->protocol, &x->rule,
                           &x->severity};
    p->ntx++;
    for (int i = 0; i < 6; i++)
        if (!(*dst[i] = strdup(src[i] ? src[i] : "")))
            return RG_ENOMEM;
    return RG_OK;
}

static void rg__txs_free(rg__plan *p)
{
    for (size_t i = 0; i < p->ntx; i++) {
        free((char *)p->txs[i].clinic);
        free((char *)p->txs[i].patient);
        free((char *)p->txs[i].key);
        free((char *)p->txs[i].protocol);
        free((char *)p->txs[i].rule);
        free((char *)p->txs[i].severity);
    }
    p->ntx = 0;
}

/* (at, seq) order, as the planner takes them */
static rg__plan *rg__sorting;
static int rg__cmp_tx(const void *a, const void *b)
{
    size_t i = *(const size_t *)a, j = *(const size_t *)b;
    const rg_notify_alert_tx *x = &rg__sorting->txs[i], *y = &rg__sorting->txs[j];
    if (x->at != y->at)
        return x->at < y->at ? -1 : 1;
    return rg__sorting->seqs[i] < rg__sorting->seqs[j] ? -1 : 1;
}

/* The opening of key's latest life among the transitions. */
static rg_time rg__latest_opening(const rg__plan *p, const char *key)
{
    rg_time t = RG_TIME_NONE;
    for (size_t i = 0; i < p->ntx; i++)
        if (p->txs[i].open && !strcmp(p->txs[i].key, key) && (t == RG_TIME_NONE || p->txs[i].at > t))
            t = p->txs[i].at;
    return t;
}

static int rg__store_line(void *ud, const rg_notify_line *l)
{
    rg__plan *p = ud;
    if (!rg__keys_has(&p->touched, l->key) || l->opened != rg__latest_opening(p, l->key))
        return RG_OK; /* another life of the alert: planned when it happened */
    int part = l->reason && !strcmp(l->reason, "outside hours");
    rg_notify_row r = {.clinic = l->clinic, .patient = l->patient, .key = l->key,
                       .rule = l->rule, .receiver = l->receiver, .on_call = l->on_call,
                       .reason = l->reason, .opened = l->opened, .due = l->at,
                       .route = l->route, .step = l->step, .round = l->repeat, .part = part};
    int added = 0, rc = rg_store_notify_plan(p->sv->st, &r, &added);
    p->added |= added;
    return rc;
}

int rg_svc_notify_plan(rg_svc *sv, const rg_wlog *lg)
{
    rg__plan p = {.sv = sv};
    int rc = rg_wlog_each_transition(lg, rg__note_patient, &p);
    for (int i = 0; i < p.npats && !rc; i++) {
        rg_clinic *c = rg_engine_clinic(sv->eng, p.pats[i].clinic);
        p.clinic = p.pats[i].clinic;
        p.patient = p.pats[i].patient;
        rc = rg_wlog_each_transition(lg, rg__note_key, &p);
        if (!rc)
            rc = rg_store_each_alert(sv->st, p.clinic, p.patient, NULL, NULL, 1000000,
                                     rg__alert_key, &p);
        for (size_t k = 0; k < p.all.n && !rc; k++)
            rc = rg_store_key_transitions(sv->st, p.clinic, p.all.v[k], rg__tx, &p);
        size_t *order = rc ? NULL : malloc((p.ntx ? p.ntx : 1) * sizeof *order);
        rg_notify_alert_tx *sorted = order ? malloc((p.ntx ? p.ntx : 1) * sizeof *sorted) : NULL;
        if (!rc && !sorted)
            rc = RG_ENOMEM;
        if (!rc) {
            for (size_t k = 0; k < p.ntx; k++)
                order[k] = k;
            rg__sorting = &p; /* (the loop thread only) */
            qsort(order, p.ntx, sizeof *order, rg__cmp_tx);
            for (size_t k = 0; k < p.ntx; k++)
                sorted[k] = p.txs[order[k]];
            rc = rg_notify_plan(c->notify, sorted, p.ntx, NULL, 0, rg_now() + RG__HORIZON,
                                rg__store_line, &p);
        }
        free(order);
        free(sorted);
        rg__txs_free(&p);
        rg__keys_free(&p.all);
        rg__keys_free(&p.touched);
    }
    free(p.txs);
    free(p.seqs);
    free(p.pats);
    return rc ? rc : p.added;
}

/* ---- sending --------------------------------------------------------------------------- */

/* One alert of a message: its step row and what the alert says. */
typedef struct rg__member {
    int64_t id;
    int attempts;
    char key[64], patient[RG_EVENT_MAX_ID + 1], rule[160], severity[16], message[600];
    char receiver[128], on_call[128], opened[RG_TIME_BUFSZ];
    rg_time opened_at, due;
    int route, step, round;
} rg__member;

typedef struct rg_svc_notifier rg_svc_notifier;
typedef struct rg__send {
    uv_work_t work;
    rg_svc *sv;
    rg_svc_notifier *nf;
    int ci;
    char clinic[RG_EVENT_MAX_CLINIC + 1];
    rg__member m[RG__GROUP];
    int n;
    int kind;                   /* RG_NOTIFY_* of the receiver sent to */
    char *target, *smtp_url, *smtp_from;
    rg_webhook_key keys[RG_WEBHOOK_KEYS];
    int nkeys;
    char *body, *subject, idem[400];
    int rc;
    char err[512];
} rg__send;

struct rg_svc_notifier {
    rg_svc *sv;
    uv_timer_t timer;
    int busy, closing, started;
};

static const char *const rg__kinds[] = {"webhook", "email", "sms", "role"};

/* What a due step's alert is now. */
typedef struct rg__state {
    rg_time opened;
    int found;
    const char *stop; /* NULL: still to notify; else why its chain stops */
    char severity[16], message[600];
} rg__state;

static int rg__alert_state(void *ud, const rg_alert_view *a)
{
    rg__state *s = ud;
    if (a->opened_at != s->opened)
        return 0;
    s->found = 1;
    s->stop = strcmp(a->state, "resolved") == 0 ? "resolved"
              : a->acked_at != RG_TIME_NONE     ? "acknowledged"
              : a->snoozed_until != RG_TIME_NONE ? "snoozed"
                                                 : NULL;
    snprintf(s->severity, sizeof s->severity, "%s", a->severity ? a->severity : "");
    snprintf(s->message, sizeof s->message, "%s", a->message ? a->message : "");
    return 0;
}

static const rg_notify_receiver *rg__receiver(const rg_notify_policy *pol, const char *name)
{
    for (int i = 0; pol && name && i < pol->nreceivers; i++)
        if (!strcmp(pol->receivers[i].name, name))
            return &pol->receivers[i];
    return NULL;
}

static int rg__log(rg_svc *sv, const char *clinic, const rg__member *m, const char *kind,
                   const char *outcome, const char *reason, int alerts, int attempt)
{
    rg_notify_entry e = {.at = rg_now(), .opened = m->opened_at, .clinic = clinic,
                         .patient = m->patient, .key = m->key, .rule = m->rule,
                         .receiver = m->receiver, .kind = kind,
                         .on_call = *m->on_call ? m->on_call : NULL, .outcome = outcome,
                         .reason = reason, .route = m->route, .step = m->step,
                         .round = m->round, .alerts = alerts, .attempt = attempt};
    return rg_store_notify_log(sv->st, &e);
}

/* ---- on the thread pool: the send itself ---- */

static int rg__post(rg__send *s)
{
    char hdr[3][700];
    const char *lines[3] = {hdr[0], hdr[1], hdr[2]};
    int n = 2;
    long long ts = (long long)(rg_now() / 1000);
    snprintf(hdr[0], sizeof hdr[0], "webhook-id: %s", s->idem);
    snprintf(hdr[1], sizeof hdr[1], "webhook-timestamp: %lld", ts);
    if (s->nkeys) {
        char sig[600];
        if (rg_webhook_sign(s->keys, s->nkeys, s->idem, ts, s->body, strlen(s->body), sig,
                            sizeof sig) == RG_OK) {
            snprintf(hdr[2], sizeof hdr[2], "webhook-signature: %s", sig);
            n = 3;
        }
    }
    return rg_webhook_post(s->target, s->body, lines, n, s->err, sizeof s->err);
}

static void rg__on_work(uv_work_t *w)
{
    rg__send *s = w->data;
    if (s->kind == RG_NOTIFY_EMAIL) {
        rg_smtp_msg m = {.url = s->smtp_url, .from = s->smtp_from, .to = s->target,
                         .subject = s->subject, .body = s->body, .id = s->idem};
        s->rc = rg_smtp_send(&m, s->err, sizeof s->err);
    } else
        s->rc = rg__post(s);
}

/* ---- back on the loop ---- */

static void rg__send_free(rg__send *s)
{
    free(s->target);
    free(s->smtp_url);
    free(s->smtp_from);
    free(s->body);
    free(s->subject);
    free(s);
}

static void rg__after_work(uv_work_t *w, int status)
{
    rg__send *s = w->data;
    rg_svc *sv = s->sv;
    rg_svc_notifier *nf = s->nf;
    const char *kind = rg__kinds[s->kind];
    if (status == UV_ECANCELED && !s->rc)
        s->rc = rg_fail(s->err, sizeof s->err, RG_EIO, "the service stopped before it was sent");
    int rc = rg_store_begin(sv->st);
    for (int i = 0; i < s->n && !rc; i++) {
        rg__member *m = &s->m[i];
        int attempt = m->attempts + 1;
        if (!s->rc) {
            rc = rg_store_notify_set(sv->st, m->id, i ? "suppressed" : "sent", attempt, m->due);
            if (!rc)
                rc = rg__log(sv, s->clinic, m, kind, i ? "suppressed" : "sent",
                             i ? "grouped" : NULL, i ? 0 : s->n, attempt);
        } else if (attempt < RG__TRIES) {
            rg_time next = rg_now() + ((rg_time)RG__BACKOFF_MS << (attempt - 1));
            rc = rg_store_notify_set(sv->st, m->id, "pending", attempt, next);
            if (!rc && i == 0)
                rc = rg__log(sv, s->clinic, m, kind, "retried", s->err, s->n, attempt);
        } else {
            rc = rg_store_notify_set(sv->st, m->id, "failed", attempt, m->due);
            if (!rc && i == 0)
                rc = rg__log(sv, s->clinic, m, kind, "failed", s->err, s->n, attempt);
        }
    }
    if (!rc)
        rc = rg_store_commit(sv->st);
    if (rc) {
        rg_store_rollback(sv->st);
        rg_log("error", "clinic %s: the outcome of a notification to %s could not be stored: %s "
                        "(its claim runs out and it is tried again)",
               s->clinic, s->m[0].receiver, rg_store_errmsg(sv->st));
    } else if (s->rc)
        rg_log("warning", "clinic %s: notification of %s (%s) to %s: %s", s->clinic, s->m[0].key,
               s->m[0].rule, s->m[0].receiver, s->err);
    else
        rg_log("info", "clinic %s: notified %s of %s (%s), route %d step %d%s", s->clinic,
               s->m[0].receiver, s->m[0].key, s->m[0].rule, s->m[0].route, s->m[0].step,
               s->n > 1 ? " (grouped)" : "");
    rg__send_free(s);
    nf->busy = 0;
    if (nf->closing) { /* rg_svc_notify_close left it to this */
        free(nf);
        return;
    }
    rg_svc_notify_kick(sv);
}

typedef struct rg__due {
    rg_notify_row *rows; /* their strings owned */
    int n, cap;
} rg__due;

static char *rg__own(const char *s, int *bad)
{
    if (!s)
        return NULL;
    char *c = strdup(s);
    if (!c)
        *bad = 1;
    return c;
}

static int rg__take_row(void *ud, const rg_notify_row *r)
{
    rg__due *d = ud;
    if (d->n == d->cap)
        return 0;
    rg_notify_row *x = &d->rows[d->n];
    *x = *r;
    int bad = 0;
    x->clinic = rg__own(r->clinic, &bad);
    x->patient = rg__own(r->patient, &bad);
    x->key = rg__own(r->key, &bad);
    x->rule = rg__own(r->rule, &bad);
    x->receiver = rg__own(r->receiver, &bad);
    x->on_call = rg__own(r->on_call, &bad);
    x->reason = rg__own(r->reason, &bad);
    x->state = NULL;
    d->n++;
    return bad ? RG_ENOMEM : 0;
}

static void rg__due_free(rg__due *d)
{
    for (int i = 0; i < d->n; i++) {
        free((char *)d->rows[i].clinic);
        free((char *)d->rows[i].patient);
        free((char *)d->rows[i].key);
        free((char *)d->rows[i].rule);
        free((char *)d->rows[i].receiver);
        free((char *)d->rows[i].on_call);
        free((char *)d->rows[i].reason);
    }
    d->n = 0;
}

static void rg__member_of(rg__member *m, const rg_notify_row *r, const rg__state *st)
{
    memset(m, 0, sizeof *m);
    m->id = r->id;
    m->attempts = r->attempts;
    snprintf(m->key, sizeof m->key, "%s", r->key);
    snprintf(m->patient, sizeof m->patient, "%s", r->patient);
    snprintf(m->rule, sizeof m->rule, "%s", r->rule);
    snprintf(m->receiver, sizeof m->receiver, "%s", r->receiver);
    snprintf(m->on_call, sizeof m->on_call, "%s", r->on_call ? r->on_call : "");
    rg_time_format(r->opened, m->opened);
    m->opened_at = r->opened;
    m->due = r->due;
    m->route = r->route;
    m->step = r->step;
    m->round = r->round;
    if (st) {
        snprintf(m->severity, sizeof m->severity, "%s", st->severity);
        snprintf(m->message, sizeof m->message, "%s", st->message);
    }
}

/* The message's body (JSON for a webhook or SMS gateway, text for e-mail). */
static int rg__compose(rg__send *s, const rg_zone *zone)
{
    const rg__member *m0 = &s->m[0];
    snprintf(s->idem, sizeof s->idem, "%s-%s-%lld-%d-%d-%d", s->clinic, m0->key,
             (long long)m0->opened_at, m0->route, m0->step, m0->round);
    if (s->kind == RG_NOTIFY_EMAIL) {
        rg_buf b = {0};
        char sub[400];
        snprintf(sub, sizeof sub, "regimen %s: %s for patient %s%s", m0->severity, m0->rule,
                 m0->patient, s->n > 1 ? " (and more)" : "");
        for (int i = 0; i < s->n; i++) {
            char opened[RG_TIME_BUFSZ];
            rg_buf_printf(&b, "%s%s alert for patient %s in clinic %s\n%s\nOpened %s (alert key "
                              "%s).\n", i ? "\n" : "", s->m[i].severity, s->m[i].patient,
                          s->clinic, s->m[i].message,
                          zone ? rg_zone_format(zone, s->m[i].opened_at, opened) : s->m[i].opened,
                          s->m[i].key);
        }
        rg_buf_printf(&b, "\nRoute %d, step %d%s of the clinic's notification policy, to %s%s%s."
                          "\nAcknowledge the alert on the worklist to stop its escalation.\n",
                      m0->route, m0->step, m0->round ? " (repeated)" : "", m0->receiver,
                      *m0->on_call ? ", on call: " : "", m0->on_call);
        s->body = b.p;
        s->subject = strdup(sub);
        return s->body && s->subject ? RG_OK : RG_ENOMEM;
    }
    json_t *alerts = json_array();
    for (int i = 0; i < s->n; i++)
        json_array_append_new(alerts, json_pack("{s:s,s:s,s:s,s:s,s:s}", "key", s->m[i].key,
                                                "rule", s->m[i].rule, "severity",
                                                s->m[i].severity, "message", s->m[i].message,
                                                "opened", s->m[i].opened));
    char due[RG_TIME_BUFSZ];
    json_t *o = json_pack("{s:s,s:s,s:s,s:s,s:s,s:s,s:i,s:i,s:s,s:s,s:o}", "kind",
                          "notification", "id", s->idem, "at", rg_time_format(m0->due, due),
                          "clinic", s->clinic, "patient", m0->patient, "key", m0->key, "route",
                          m0->route, "step", m0->step, "receiver", m0->receiver, "outcome",
                          "sent", "alerts", alerts);
    if (o && m0->round)
        json_object_set_new(o, "round", json_integer(m0->round));
    if (o && *m0->on_call)
        json_object_set_new(o, "on_call", json_string(m0->on_call));
    if (o && s->kind == RG_NOTIFY_SMS) {
        char text[1200];
        snprintf(text, sizeof text, "%s %s, patient %s: %s", m0->severity, m0->rule,
                 m0->patient, m0->message);
        json_object_set_new(o, "text", json_string(text));
    }
    s->body = o ? json_dumps(o, JSON_COMPACT) : NULL;
    json_decref(o);
    return s->body ? RG_OK : RG_ENOMEM;
}

/* Handles what is due for clinic ci: the stops and suppressions at once,
 * and the first message to send (*out, claimed). Inside a transaction. */
static int rg__clinic_due(rg_svc *sv, int ci, const rg_notify_policy *pol, rg_time now,
                          rg__due *d, rg__send **out, int *handled)
{
    const char *clinic = sv->clinics[ci].name;
    d->n = 0;
    int rc = rg_store_notify_due(sv->st, clinic, now, RG__DUE_ROWS, rg__take_row, d);
    rg__send *s = NULL;
    for (int i = 0; i < d->n && !rc; i++) {
        rg_notify_row *r = &d->rows[i];
        if (r->state) /* stopped with an earlier row of its alert */
            continue;
        rg__state st = {.opened = r->opened};
        rc = rg_store_each_alert(sv->st, clinic, NULL, NULL, r->key, 1000, rg__alert_state, &st);
        if (rc)
            break;
        rg__member m;
        rg__member_of(&m, r, &st);
        const rg_notify_receiver *rv = rg__receiver(pol, *m.on_call ? m.on_call : m.receiver);
        const char *kind = rv ? rg__kinds[rv->kind] : "webhook";
        if (!st.found || st.stop) { /* the chain stops: every pending step of this life */
            rc = rg_store_notify_stop(sv->st, clinic, r->key, r->opened);
            if (!rc)
                rc = rg__log(sv, clinic, &m, kind, "stopped", st.found ? st.stop : "resolved",
                             0, r->attempts);
            for (int k = i + 1; k < d->n; k++)
                if (!strcmp(d->rows[k].key, r->key) && d->rows[k].opened == r->opened)
                    d->rows[k].state = "stopped";
            (*handled)++;
            continue;
        }
        if (r->reason && strcmp(r->reason, "grouped")) { /* held back by the planner */
            rc = rg_store_notify_set(sv->st, r->id, "suppressed", r->attempts, r->due);
            if (!rc)
                rc = rg__log(sv, clinic, &m, kind, "suppressed", r->reason, 0, r->attempts);
            (*handled)++;
            continue;
        }
        if (!rv || rv->kind == RG_NOTIFY_ROLE ||
            (rv->kind == RG_NOTIFY_EMAIL && !pol->smtp_url)) {
            const char *why = !rv ? "the policy has no such receiver now"
                              : rv->kind == RG_NOTIFY_ROLE ? "nobody is on call for the role"
                                                           : "notify.smtp is not set";
            rc = rg_store_notify_set(sv->st, r->id, "failed", r->attempts + 1, r->due);
            if (!rc)
                rc = rg__log(sv, clinic, &m, kind, "failed", why, 1, r->attempts + 1);
            (*handled)++;
            continue;
        }
        int groups = r->route >= 1 && r->route <= pol->nroutes &&
                     pol->routes[r->route - 1].group_by_patient;
        if (s) {
            const rg__member *f = &s->m[0];
            if (!groups || s->n == RG__GROUP || strcmp(f->patient, m.patient) || f->due != m.due ||
                f->route != m.route || f->step != m.step || f->round != m.round)
                continue; /* at the next turn */
        }
        int got = 0;
        rc = rg_store_notify_claim(sv->st, r->id, now, now + RG__CLAIM_MS, &got);
        if (rc || !got)
            continue;
        if (!s) {
            if (!(s = calloc(1, sizeof *s))) {
                rc = RG_ENOMEM;
                break;
            }
            s->sv = sv;
            s->nf = sv->notifier;
            s->ci = ci;
            snprintf(s->clinic, sizeof s->clinic, "%s", clinic);
            s->kind = rv->kind;
            s->target = strdup(rv->target);
            s->smtp_url = pol->smtp_url ? strdup(pol->smtp_url) : NULL;
            s->smtp_from = strdup(pol->smtp_from ? pol->smtp_from : "regimen@localhost");
            s->nkeys = sv->clinics[ci].nhook_keys;
            memcpy(s->keys, sv->clinics[ci].hook_keys, sizeof s->keys);
        }
        s->m[s->n++] = m;
    }
    if (!rc && s && rg__compose(s, rg_engine_zone(sv->eng, clinic)))
        rc = RG_ENOMEM;
    if (rc && s) {
        rg__send_free(s);
        s = NULL;
    }
    *out = s;
    return rc;
}

static void rg__on_timer(uv_timer_t *t)
{
    rg_svc_notifier *nf = t->data;
    rg_svc *sv = nf->sv;
    if (nf->busy || nf->closing || sv->stopping)
        return;
    rg_time now = rg_now(), next = RG_TIME_NONE;
    rg_notify_row rows[RG__DUE_ROWS];
    rg__due d = {rows, 0, RG__DUE_ROWS};
    rg__send *s = NULL;
    int handled = 0, rc = RG_OK;
    for (int ci = 0; ci < sv->nclinics && !s && !rc; ci++) {
        rg_clinic *c = rg_engine_clinic(sv->eng, sv->clinics[ci].name);
        if (!c || !c->notify || !sv->clinics[ci].held)
            continue;
        rc = rg_store_begin(sv->st);
        if (!rc)
            rc = rg__clinic_due(sv, ci, c->notify, now, &d, &s, &handled);
        rg__due_free(&d);
        if (!rc)
            rc = rg_store_commit(sv->st);
        if (rc) {
            rg_store_rollback(sv->st);
            if (s)
                rg__send_free(s);
            s = NULL;
        }
        rg_time w = RG_TIME_NONE;
        if (!rc && !rg_store_notify_next(sv->st, sv->clinics[ci].name, &w) && w != RG_TIME_NONE &&
            (next == RG_TIME_NONE || w < next))
            next = w;
    }
    if (rc) {
        rg_log("error", "notifications: the store failed: %s (%s); tried again in %d ms",
               rg_strerror(rc), rg_store_errmsg(sv->st), RG_RETRY_MS);
        uv_timer_start(&nf->timer, rg__on_timer, RG_RETRY_MS, 0);
        return;
    }
    if (s) {
        nf->busy = 1;
        s->work.data = s;
        if (uv_queue_work(&sv->loop, &s->work, rg__on_work, rg__after_work)) {
            nf->busy = 0;
            rg__send_free(s); /* its claim runs out */
        }
        return;
    }
    if (handled) {
        uv_timer_start(&nf->timer, rg__on_timer, 0, 0);
        return;
    }
    if (next != RG_TIME_NONE) {
        rg_time wait = next - rg_now();
        if (wait < 0)
            wait = 0;
        if (wait > RG_TIMER_CAP_MS)
            wait = RG_TIMER_CAP_MS;
        /* a claim of another worker still running: look again shortly */
        uv_timer_start(&nf->timer, rg__on_timer, (uint64_t)(wait ? wait : 100), 0);
    } else
        uv_timer_start(&nf->timer, rg__on_timer, RG_TIMER_CAP_MS, 0);
}

int rg_svc_notify_start(rg_svc *sv)
{
    rg_svc_notifier *nf = calloc(1, sizeof *nf);
    if (!nf)
        return RG_ENOMEM;
    nf->sv = sv;
    uv_timer_init(&sv->loop, &nf->timer);
    nf->timer.data = nf;
    nf->started = 1;
    sv->notifier = nf;
    /* SQLite: this process is the only one, so a claim left by a kill -9 is
     * void (on PostgreSQL, another worker's claims run out) */
    if (sv->notice_fd < 0 && rg_store_begin(sv->st) == RG_OK) {
        if (rg_store_notify_unclaim_all(sv->st) || rg_store_commit(sv->st))
            rg_store_rollback(sv->st);
    }
    rg_svc_notify_kick(sv);
    return RG_OK;
}

void rg_svc_notify_kick(rg_svc *sv)
{
    rg_svc_notifier *nf = sv->notifier;
    if (nf && !nf->busy && !nf->closing)
        uv_timer_start(&nf->timer, rg__on_timer, 0, 0);
}

static void rg__closed(uv_handle_t *h)
{
    free(h->data);
}

void rg_svc_notify_close(rg_svc *sv)
{
    rg_svc_notifier *nf = sv->notifier;
    if (!nf)
        return;
    sv->notifier = NULL;
    nf->closing = 1;
    uv_timer_stop(&nf->timer);
    /* a send in flight finishes on the pool and records its outcome; its
     * after-work frees nf then */
    uv_close((uv_handle_t *)&nf->timer, nf->busy ? NULL : rg__closed);
}
