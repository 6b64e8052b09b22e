/*
 * diff.c - comparing what protocols did: rg_diff_compute compares two lists
 * of transitions (two protocol versions' runs over the same history, a
 * shadow version's feed against the active one: governance.c) transition
 * by transition, into a result. Printing it is present/diff.c's. Reads only
 * the store.
 */
#include "engine/diff.h"
#include "core/grow.h"

#include <stddef.h>
#include <stdlib.h>
#include <string.h>

static int rg__keep(void *ud, const rg_transition *t)
{
    rg_diff_tr **v = ((void **)ud)[0];
    int *n = ((void **)ud)[1];
    size_t *cap = ((void **)ud)[2];
    rg_diff_tr *grown = rg_grow(*v, cap, (size_t)*n, sizeof *grown, 256);
    if (!grown)
        return RG_ENOMEM;
    *v = grown;
    rg_diff_tr *r = &grown[*n];
    memset(r, 0, sizeof *r);
    r->clinic = strdup(t->clinic);
    r->patient = strdup(t->patient);
    r->rule = strdup(t->rule);
    r->severity = strdup(t->severity);
    r->message = strdup(t->message);
    r->open = t->open;
    r->at = t->at;
    (*n)++;
    if (!r->clinic || !r->patient || !r->rule || !r->severity || !r->message)
        return RG_ENOMEM;
    return 0;
}

/* (clinic, patient, rule, state), then time: a transition's slot. */
static int rg__slot_cmp(const rg_diff_tr *a, const rg_diff_tr *b)
{
    int c = strcmp(a->clinic, b->clinic);
    if (!c)
        c = strcmp(a->patient, b->patient);
    if (!c)
        c = strcmp(a->rule, b->rule);
    if (!c)
        c = b->open - a->open;
    if (!c)
        c = a->occurrence - b->occurrence;
    return c;
}

static int rg__sort_cmp(const void *pa, const void *pb)
{
    const rg_diff_tr *a = pa, *b = pb;
    int c = rg__slot_cmp(a, b);
    return c ? c : (a->at > b->at) - (a->at < b->at);
}

static int rg__same_group(const rg_diff_tr *a, const rg_diff_tr *b)
{
    return a->open == b->open && !strcmp(a->clinic, b->clinic) &&
           !strcmp(a->patient, b->patient) && !strcmp(a->rule, b->rule);
}

/* Sorts by slot and numbers the occurrences of each (clinic, patient, rule,
 * state) in time order, so the n-th opening under one version is compared
 * with the n-th under the other. */
static void rg__number(rg_diff_tr *v, int n)
{
    if (n == 0) /* (v is NULL then: an empty history) */
        return;
    qsort(v, (size_t)n, sizeof *v, rg__sort_cmp); /* occurrences are all 0 here */
    for (int i = 1; i < n; i++)
        v[i].occurrence = rg__same_group(&v[i - 1], &v[i]) ? v[i - 1].occurrence + 1 : 0;
}

static void rg__free_trs(rg_diff_tr *v, int n)
{
    for (int i = 0; i < n; i++) {
        free(v[i].clinic);
        free(v[i].patient);
        free(v[i].rule);
        free(v[i].severity);
        free(v[i].message);
    }
    free(v);
}

/* One more difference on rule, in the summary: field is the offset of its
 * count in rg_diff_rule. */
static void rg__count(rg_diff_summary *s, const char *rule, size_t field)
{
    int i;
    for (i = 0; i < s->n && strcmp(s->v[i].rule, rule); i++)
        ;
    if (i == s->n) {
        rg_diff_rule *grown = realloc(s->v, (size_t)(s->n + 1) * sizeof *grown);
        if (!grown)
            return; /* the summary is short of a rule; the list is whole */
        s->v = grown;
        memset(&s->v[s->n], 0, sizeof s->v[0]);
        if (!(s->v[s->n].rule = strdup(rule)))
            return;
        s->n++;
    }
    (*(long *)((char *)&s->v[i] + field))++;
}

static int rg__rule_cmp(const void *a, const void *b)
{
    return strcmp(((const rg_diff_rule *)a)->rule, ((const rg_diff_rule *)b)->rule);
}

/* Adds a difference (x of the old side, y of the new, either NULL for an
 * unmatched one) and counts it for its rule. */
static int rg__add(rg_diff *d, int kind, const rg_diff_tr *x, const rg_diff_tr *y)
{
    rg_diff_item *grown = rg_grow(d->v, &d->cap, (size_t)d->n, sizeof *grown, 64);
    if (!grown)
        return RG_ENOMEM;
    d->v = grown;
    d->v[d->n++] = (rg_diff_item){.kind = kind, .old = x, .new = y};
    const rg_diff_tr *t = x ? x : y;
    size_t field = kind == RG_DIFF_MOVED      ? offsetof(rg_diff_rule, moved)
                   : kind == RG_DIFF_SEVERITY ? offsetof(rg_diff_rule, severity)
                   : kind == RG_DIFF_ONLY_OLD ? (t->open ? offsetof(rg_diff_rule, old_opened)
                                                         : offsetof(rg_diff_rule, old_resolved))
                   : t->open                  ? offsetof(rg_diff_rule, new_opened)
                                              : offsetof(rg_diff_rule, new_resolved);
    rg__count(&d->sum, t->rule, field);
    return RG_OK;
}

static int rg__each_stored(void *src, int (*fn)(void *ud, const rg_transition *t), void *ud)
{
    return rg_store_each_transition(src, 0, 1, fn, ud);
}

long rg_diff_compute_stores(rg_store *old, rg_store *new, rg_diff *d)
{
    return rg_diff_compute(rg__each_stored, old, rg__each_stored, new, d);
}

void rg_diff_free(rg_diff *d)
{
    rg__free_trs(d->old_v, d->old_n);
    rg__free_trs(d->new_v, d->new_n);
    free(d->v);
    for (int i = 0; i < d->sum.n; i++)
        free(d->sum.v[i].rule);
    free(d->sum.v);
    memset(d, 0, sizeof *d);
}

long rg_diff_compute(rg_diff_source old_each, void *old, rg_diff_source new_each, void *new,
                     rg_diff *d)
{
    memset(d, 0, sizeof *d);
    void *a[] = {&d->old_v, &d->old_n, &d->old_cap}, *b[] = {&d->new_v, &d->new_n, &d->new_cap};
    int rc = old_each(old, rg__keep, a);
    if (!rc)
        rc = new_each(new, rg__keep, b);
    if (rc)
        return rc;
    rg__number(d->old_v, d->old_n);
    rg__number(d->new_v, d->new_n);
    for (int i = 0, j = 0; i < d->old_n && j < d->new_n && !rc;) {
        rg_diff_tr *x = &d->old_v[i], *y = &d->new_v[j];
        int c = rg__slot_cmp(x, y);
        if (c < 0) {
            i++;
            continue;
        }
        if (c > 0) {
            j++;
            continue;
        }
        i++, j++;
        x->matched = y->matched = 1;
        if (x->at != y->at)
            rc = rg__add(d, RG_DIFF_MOVED, x, y);
        if (!rc && strcmp(x->severity, y->severity))
            rc = rg__add(d, RG_DIFF_SEVERITY, x, y);
    }
    for (int i = 0; i < d->old_n && !rc; i++)
        if (!d->old_v[i].matched)
            rc = rg__add(d, RG_DIFF_ONLY_OLD, &d->old_v[i], NULL);
    for (int j = 0; j < d->new_n && !rc; j++)
        if (!d->new_v[j].matched)
            rc = rg__add(d, RG_DIFF_ONLY_NEW, NULL, &d->new_v[j]);
    if (rc)
        return rc;
    if (d->sum.n)
        qsort(d->sum.v, (size_t)d->sum.n, sizeof d->sum.v[0], rg__rule_cmp);
    d->sum.differences = d->n;
    d->sum.old_n = d->old_n;
    d->sum.new_n = d->new_n;
    return d->n;
}
