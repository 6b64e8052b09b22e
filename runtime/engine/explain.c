/*
 * explain.c - comparing what protocols did: rg_diff compares two runs over
 * the same history (two protocol versions) transition by transition, and
 * rg_diff_each any two lists of transitions (a shadow version's against the
 * active one: governance.c). Reads only the store. (Why one alert opened or
 * resolved, rg_explain, is present/explain.c: it only reads and writes.)
 */
#include "engine/explain.h"
#include "core/digest.h"
#include "core/grow.h"

#include <stdlib.h>
#include <string.h>

/* An id, a type or a name made printable (digest.h): every byte escaped
 * takes at most 4. */
#define RG__SAFE_ID (4 * RG_EVENT_MAX_ID + 1)

/* ---- diff ------------------------------------------------------------------------ */

typedef struct rg__tr {
    char *clinic, *patient, *rule, *severity, *message;
    int open, occurrence, matched;
    rg_time at;
} rg__tr;

typedef struct rg__trs {
    rg__tr *v;
    int n;
    size_t cap;
} rg__trs;

static int rg__keep(void *ud, const rg_transition *t)
{
    rg__trs *l = ud;
    rg__tr *grown = rg_grow(l->v, &l->cap, (size_t)l->n, sizeof *grown, 256);
    if (!grown)
        return RG_ENOMEM;
    l->v = grown;
    rg__tr *r = &l->v[l->n];
    memset(r, 0, sizeof *r);
    r->clinic = strdup(t->clinic);
    r->patient = strdup(t->patient);
    r->rule = strdup(t->rule);
    r->severity = strdup(t->severity);
    r->message = strdup(t->message);
    r->open = t->open;
    r->at = t->at;
    l->n++;
    if (!r->clinic || !r->patient || !r->rule || !r->severity || !r->message)
        return RG_ENOMEM;
    return 0;
}

/* (clinic, patient, rule, state), then time: a transition's slot. */
static int rg__slot_cmp(const rg__tr *a, const rg__tr *b)
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
    const rg__tr *a = pa, *b = pb;
    int c = rg__slot_cmp(a, b);
    return c ? c : (a->at > b->at) - (a->at < b->at);
}

static int rg__same_group(const rg__tr *a, const rg__tr *b)
{
    return a->open == b->open && !strcmp(a->clinic, b->clinic) &&
           !strcmp(a->patient, b->patient) && !strcmp(a->rule, b->rule);
}

/* Sorts by slot and numbers the occurrences of each (clinic, patient, rule,
 * state) in time order, so the n-th opening under one version is compared
 * with the n-th under the other. */
static void rg__number(rg__trs *l)
{
    if (l->n == 0) /* (v is NULL then: an empty history) */
        return;
    qsort(l->v, (size_t)l->n, sizeof *l->v, rg__sort_cmp); /* occurrences are all 0 here */
    for (int i = 1; i < l->n; i++)
        l->v[i].occurrence = rg__same_group(&l->v[i - 1], &l->v[i]) ? l->v[i - 1].occurrence + 1 : 0;
}

static void rg__free_trs(rg__trs *l)
{
    for (int i = 0; i < l->n; i++) {
        free(l->v[i].clinic);
        free(l->v[i].patient);
        free(l->v[i].rule);
        free(l->v[i].severity);
        free(l->v[i].message);
    }
    free(l->v);
}

/* The zone a transition of clinic is shown in (UTC without an engine). */
static const rg_zone *rg__zone(rg_engine *eng, const char *clinic)
{
    return eng ? rg_engine_zone(eng, clinic) : rg_zone_utc();
}

/* Differences counted per rule, for the summary after the list: opened
 * and resolved only under NEW, only under OLD, moved, another severity. */
enum { RG__NEW_OPEN, RG__NEW_RESOLVED, RG__OLD_OPEN, RG__OLD_RESOLVED, RG__MOVED,
       RG__SEVERITY, RG__NKINDS };
typedef struct rg__rule_count {
    const char *rule; /* borrowed from a transition list */
    long n[RG__NKINDS];
} rg__rule_count;
typedef struct rg__counts {
    rg__rule_count *v;
    int n;
} rg__counts;

static void rg__count(rg__counts *c, const char *rule, int kind)
{
    int i;
    for (i = 0; i < c->n && strcmp(c->v[i].rule, rule); i++)
        ;
    if (i == c->n) {
        rg__rule_count *grown = realloc(c->v, (size_t)(c->n + 1) * sizeof *grown);
        if (!grown)
            return; /* the summary is short of a rule; the list above is whole */
        c->v = grown;
        memset(&c->v[c->n], 0, sizeof c->v[0]);
        c->v[c->n++].rule = rule;
    }
    c->v[i].n[kind]++;
}

static int rg__count_cmp(const void *a, const void *b)
{
    return strcmp(((const rg__rule_count *)a)->rule, ((const rg__rule_count *)b)->rule);
}

/* "by rule:", then a line a rule: what NEW would do that OLD did not. */
static void rg__print_counts(rg__counts *c, const char *old_name, const char *new_name,
                             FILE *out)
{
    if (!c->n)
        return;
    qsort(c->v, (size_t)c->n, sizeof c->v[0], rg__count_cmp);
    fprintf(out, "by rule:\n");
    for (int i = 0; i < c->n; i++) {
        static const char *const what[RG__NKINDS] = {
            "opened only under %s", "resolved only under %s", "opened only under %s",
            "resolved only under %s", "moved", "changed severity"};
        fprintf(out, "  %-26s", c->v[i].rule);
        const char *sep = "";
        for (int k = 0; k < RG__NKINDS; k++) {
            if (!c->v[i].n[k])
                continue;
            fprintf(out, "%s%ld ", sep, c->v[i].n[k]);
            fprintf(out, what[k], k < RG__OLD_OPEN ? new_name : old_name);
            sep = ", ";
        }
        fputc('\n', out);
    }
}

/* Prints the transitions of l that have no counterpart ("only OLD"/"only
 * NEW"); returns how many. */

static long rg__print_unmatched(const rg__trs *l, const char *name, rg_engine *eng, FILE *out,
                                rg__counts *c, int first_kind)
{
    char t[RG_TIME_BUFSZ];
    long n = 0;
    for (int i = 0; i < l->n; i++)
        if (!l->v[i].matched) {
            n++;
            rg__count(c, l->v[i].rule, first_kind + !l->v[i].open);
            char patient[RG__SAFE_ID], rule[512];
            fprintf(out, "only %-4s %s %s %-26s %-8s %s \"", name, l->v[i].clinic,
                    rg_printable(l->v[i].patient, patient, sizeof patient),
                    rg_printable(l->v[i].rule, rule, sizeof rule),
                    l->v[i].open ? "open" : "resolved",
                    rg_zone_display(rg__zone(eng, l->v[i].clinic), l->v[i].at, t));
            rg_fput_printable(out, l->v[i].message);
            fputs("\"\n", out);
        }
    return n;
}

static int rg__each_stored(void *src, int (*fn)(void *ud, const rg_transition *t), void *ud)
{
    return rg_store_each_transition(src, 0, 1, fn, ud);
}

long rg_diff(rg_store *old, rg_store *new, const char *old_name, const char *new_name,
             rg_engine *eng, FILE *out)
{
    return rg_diff_each(rg__each_stored, old, rg__each_stored, new, old_name, new_name, eng, out,
                        NULL);
}

void rg_diff_summary_free(rg_diff_summary *s)
{
    for (int i = 0; i < s->n; i++)
        free(s->v[i].rule);
    free(s->v);
    memset(s, 0, sizeof *s);
}

long rg_diff_each(rg_diff_source old_each, void *old, rg_diff_source new_each, void *new,
                  const char *old_name, const char *new_name, rg_engine *eng, FILE *out,
                  rg_diff_summary *sum)
{
    rg__trs a = {0}, b = {0};
    rg__counts counts = {0};
    long differences = 0;
    char t1[RG_TIME_BUFSZ], t2[RG_TIME_BUFSZ];
    int rc = old_each(old, rg__keep, &a);
    if (!rc)
        rc = new_each(new, rg__keep, &b);
    if (rc) {
        rg__free_trs(&a);
        rg__free_trs(&b);
        return rc;
    }
    rg__number(&a);
    rg__number(&b);
    for (int i = 0, j = 0; i < a.n && j < b.n;) {
        rg__tr *x = &a.v[i], *y = &b.v[j];
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
        {
            x->matched = y->matched = 1;
            if (x->at != y->at) {
                differences++;
                rg__count(&counts, x->rule, RG__MOVED);
                fprintf(out, "moved     %s %s %-26s %-8s %s -> %s\n", x->clinic, x->patient,
                        x->rule, x->open ? "open" : "resolved",
                        rg_zone_display(rg__zone(eng, x->clinic), x->at, t1),
                        rg_zone_display(rg__zone(eng, x->clinic), y->at, t2));
            }
            if (strcmp(x->severity, y->severity)) {
                differences++;
                rg__count(&counts, x->rule, RG__SEVERITY);
                fprintf(out, "severity  %s %s %-26s %-8s %s: %s -> %s\n", x->clinic, x->patient,
                        x->rule, x->open ? "open" : "resolved",
                        rg_zone_display(rg__zone(eng, x->clinic), y->at, t2),
                        x->severity, y->severity);
            }
        }
    }
    differences += rg__print_unmatched(&a, old_name, eng, out, &counts, RG__OLD_OPEN);
    differences += rg__print_unmatched(&b, new_name, eng, out, &counts, RG__NEW_OPEN);
    fprintf(out, "%ld difference%s (%d transitions under %s, %d under %s)\n", differences,
            differences == 1 ? "" : "s", a.n, old_name, b.n, new_name);
    rg__print_counts(&counts, old_name, new_name, out);
    if (sum) {
        memset(sum, 0, sizeof *sum);
        sum->differences = differences;
        sum->old_n = a.n;
        sum->new_n = b.n;
        if (counts.n && (sum->v = calloc((size_t)counts.n, sizeof *sum->v)))
            for (int i = 0; i < counts.n; i++) {
                rg_diff_rule *r = &sum->v[sum->n];
                if (!(r->rule = strdup(counts.v[i].rule)))
                    break;
                r->new_opened = counts.v[i].n[RG__NEW_OPEN];
                r->new_resolved = counts.v[i].n[RG__NEW_RESOLVED];
                r->old_opened = counts.v[i].n[RG__OLD_OPEN];
                r->old_resolved = counts.v[i].n[RG__OLD_RESOLVED];
                r->moved = counts.v[i].n[RG__MOVED];
                r->severity = counts.v[i].n[RG__SEVERITY];
                sum->n++;
            }
    }
    free(counts.v);
    rg__free_trs(&a);
    rg__free_trs(&b);
    return differences;
}
