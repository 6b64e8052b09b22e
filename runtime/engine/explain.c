/*
 * explain.c - understanding and comparing what protocols did.
 *
 * rg_explain answers the auditor's "why is this alert open?": for each
 * instance of an alert key, the rule and protocol version that produced it,
 * the parameters in force, and the events the rule looked at when it opened
 * and when it resolved (the evidence the engine records with every
 * transition), with every version of an event that was corrected and the
 * corrections made between two transitions (who, when, what they replaced).
 * rg_diff compares two runs over the same history (two protocol
 * versions) transition by transition. Both read only the store.
 */
#include "engine/explain.h"
#include "core/grow.h"
#include "core/digest.h"

#include <jansson.h>

#include <stdlib.h>
#include <string.h>

/* "172800000 (2 days)": parameters are plain numbers; most long ones are
 * durations in milliseconds, so say what they are in days or hours too. */
static void rg__param_line(FILE *out, const char *name, json_t *v)
{
    char *text = json_dumps(v, JSON_ENCODE_ANY | JSON_COMPACT), safe[256];
    fprintf(out, "      %-24s %s", rg_printable(name, safe, sizeof safe), text ? text : "?");
    free(text);
    if (json_is_integer(v)) {
        json_int_t n = json_integer_value(v);
        if (n >= RG_MS_HOUR && n % RG_MS_DAY == 0)
            fprintf(out, "  (%lld day%s)", (long long)(n / RG_MS_DAY), n == RG_MS_DAY ? "" : "s");
        else if (n >= RG_MS_HOUR && n % RG_MS_HOUR == 0)
            fprintf(out, "  (%lld hours)", (long long)(n / RG_MS_HOUR));
        else if (n >= RG_MS_SECOND && n % RG_MS_SECOND == 0 && n < RG_MS_HOUR)
            fprintf(out, "  (%lld seconds)", (long long)(n / RG_MS_SECOND));
    }
    fputc('\n', out);
}

/* An id, a type or a name made printable (digest.h): every byte escaped
 * takes at most 4. */
#define RG__SAFE_ID (4 * RG_EVENT_MAX_ID + 1)

static int rg__count_versions(void *ud, const rg_stored_event *e)
{
    (void)e;
    ++*(int64_t *)ud;
    return 0;
}

typedef struct rg__explain {
    rg_store *st;
    FILE *out;
    int n;
    rg_time prev_at; /* the key's previous transition (RG_TIME_NONE before the first) */
    rg_engine *eng;
    const rg_zone *zone; /* the alert's clinic's, once known */
    const char *clinic;
} rg__explain;

static int rg__print_event(void *ud, const rg_stored_event *e)
{
    rg__explain *x = ud;
    char at[RG_TIME_BUFSZ], id[RG__SAFE_ID], type[RG__SAFE_ID];
    fprintf(x->out, "      %-14s %-22s %s  ", rg_printable(e->id, id, sizeof id),
            rg_printable(e->type, type, sizeof type), rg_zone_display(x->zone, e->at, at));
    rg_fput_printable(x->out, e->data ? e->data : "");
    fputc('\n', x->out);
    return 0;
}

/* One line per version of a corrected event, after the event's current line. */
static int rg__print_version(void *ud, const rg_stored_event *e)
{
    rg__explain *x = ud;
    char at[RG_TIME_BUFSZ], ca[RG_TIME_BUFSZ], type[RG__SAFE_ID];
    fprintf(x->out, "        version %lld %s", (long long)e->version, rg_event_status_name(e->status));
    if (e->corrected_at != RG_TIME_NONE)
        fprintf(x->out, ", corrected_at %s", rg_zone_display(x->zone, e->corrected_at, ca));
    if (e->corrected_by) {
        fputs(" by ", x->out);
        rg_fput_printable(x->out, e->corrected_by);
    }
    if (e->status != RG_STATUS_ERROR) {
        fprintf(x->out, ": %s at %s ", rg_printable(e->type, type, sizeof type),
                rg_zone_display(x->zone, e->at, at));
        rg_fput_printable(x->out, e->data ? e->data : "");
    }
    fputc('\n', x->out);
    return 0;
}

/* A stored version of an evidence event that is not as it was stored
 * (verify.c): said where the event is shown, so nobody reads a changed
 * record as the one the rule saw. */
static int rg__check_row(void *ud, const rg_event_row *r)
{
    rg__explain *x = ud;
    char why[512], id[RG__SAFE_ID];
    int ok = rg_store_row_intact(r, why, sizeof why);
    if (ok == 0)
        fprintf(x->out, "        DAMAGED: event %s, seq %lld (version %lld): %s; "
                        "see regimen verify\n", rg_printable(r->id, id, sizeof id),
                (long long)r->seq, (long long)r->version, why);
    return ok < 0 ? ok : 0;
}

/* An evidence event: its current version, and every version when it was
 * corrected (a retracted one has no current version); each checked
 * against its digest. */
static void rg__print_evidence(rg__explain *x, const char *clinic, const char *id)
{
    int rc = rg_store_get_event(x->st, clinic, id, rg__print_event, x);
    int64_t n = 0;
    char safe[RG__SAFE_ID];
    if (rg_store_each_version(x->st, clinic, id, rg__count_versions, &n) == RG_OK && n > 1) {
        if (rc == RG_ENOTFOUND)
            fprintf(x->out, "      %-14s withdrawn (entered in error); its versions:\n",
                    rg_printable(id, safe, sizeof safe));
        else
            fprintf(x->out, "        corrected; its versions:\n");
        rg_store_each_version(x->st, clinic, id, rg__print_version, x);
    } else if (rc == RG_ENOTFOUND) {
        fprintf(x->out, "      %s (no longer in this database)\n", rg_printable(id, safe, sizeof safe));
    }
    rg_store_event_rows_of(x->st, clinic, id, rg__check_row, x);
}

static int rg__count_correction(void *ud, const rg_stored_event *c, const rg_stored_event *r)
{
    (void)c;
    (void)r;
    ++*(int64_t *)ud;
    return 0;
}

/* A correction taken in between the key's previous transition and this one. */
static int rg__print_correction(void *ud, const rg_stored_event *c, const rg_stored_event *r)
{
    rg__explain *x = ud;
    char ca[RG_TIME_BUFSZ], at[RG_TIME_BUFSZ], id[RG__SAFE_ID], type[RG__SAFE_ID];
    fprintf(x->out, "      %-14s version %lld %s, corrected_at %s",
            rg_printable(c->id, id, sizeof id), (long long)c->version,
            rg_event_status_name(c->status), rg_zone_display(x->zone, c->corrected_at, ca));
    if (c->corrected_by) {
        fputs(" by ", x->out);
        rg_fput_printable(x->out, c->corrected_by);
    }
    fprintf(x->out, ", replaced version %lld (%s at %s ", (long long)r->version,
            rg_printable(r->type, type, sizeof type), rg_zone_display(x->zone, r->at, at));
    rg_fput_printable(x->out, r->data ? r->data : "");
    fputs(")\n", x->out);
    return rg_store_event_rows_of(x->st, x->clinic, c->id, rg__check_row, x);
}

static int rg__explain_one(void *ud, const rg_transition *t)
{
    rg__explain *x = ud;
    if (t->open == RG_TRANSITION_RERAISED) /* staff's snooze ran out: not the rule's doing */
        return 0;
    FILE *out = x->out;
    char at[RG_TIME_BUFSZ], due[RG_TIME_BUFSZ], notify[RG_TIME_BUFSZ];
    if (!x->zone)
        x->zone = x->eng ? rg_engine_zone(x->eng, t->clinic) : rg_zone_utc();
    const rg_zone *z = x->zone;
    /* everything a protocol or an event wrote is shown with its control
     * characters escaped (digest.h): no line of the record can be forged */
    char key[256], rule[512], proto[512], patient[RG__SAFE_ID], version[512];
    rg_printable(t->key, key, sizeof key);
    rg_printable(t->rule, rule, sizeof rule);
    rg_printable(t->protocol, proto, sizeof proto);
    rg_printable(t->patient, patient, sizeof patient);
    rg_printable(t->version, version, sizeof version);
    if (x->n++ == 0)
        fprintf(out, "alert %s: rule %s of protocol %s, clinic %s, patient %s\n", key, rule,
                proto, t->clinic, patient);
    if (t->open) {
        fprintf(out, "\n  opened %s (due %s), %s, protocol version %s\n    \"",
                rg_zone_display(z, t->at, at), rg_zone_display(z, t->due, due), t->severity,
                version);
        rg_fput_printable(out, t->message);
        fputs("\"\n", out);
    } else {
        fprintf(out, "\n  resolved %s, protocol version %s: the rule no longer returned it\n",
                rg_zone_display(z, t->at, at), version);
    }
    /* who or what led to it (schema 13): a person or key's request, the
     * clock, the system, a reload; unknown for older rows and simulations */
    char cause[256];
    rg_printable(t->cause ? t->cause : "unknown", cause, sizeof cause);
    fprintf(out, "    caused by: %s\n", cause);
    if (t->notify_at != RG_TIME_NONE && t->notify_at != t->at)
        fprintf(out, "    staff notified %s (the clinic was closed)\n",
                rg_zone_display(z, t->notify_at, notify));
    json_t *params = json_loads(t->params ? t->params : "{}", 0, NULL);
    if (json_object_size(params)) {
        const char *k;
        json_t *v;
        fprintf(out, "    parameters in force:\n");
        json_object_foreach(params, k, v) rg__param_line(out, k, v);
    }
    json_decref(params);
    json_t *ev = json_loads(t->evidence ? t->evidence : "[]", 0, NULL);
    size_t i;
    json_t *id;
    fprintf(out, "    %s:\n", json_array_size(ev) ? "events the rule looked at" : "no events examined");
    json_array_foreach(ev, i, id) {
        if (json_is_string(id))
            rg__print_evidence(x, t->clinic, json_string_value(id));
    }
    json_decref(ev);
    /* the corrections of the patient's events made since the key's last
     * transition: what a resolution at a correction's instant came from */
    int64_t corrections = 0;
    if (x->prev_at != RG_TIME_NONE &&
        rg_store_each_correction(x->st, t->clinic, t->patient, x->prev_at, t->at,
                                 rg__count_correction, &corrections) == RG_OK &&
        corrections) {
        fprintf(out, "    corrections made since the previous transition:\n");
        rg_store_each_correction(x->st, t->clinic, t->patient, x->prev_at, t->at,
                                 rg__print_correction, x);
    }
    x->prev_at = t->at;
    return 0;
}

int rg_explain(rg_store *st, rg_engine *eng, const char *clinic, const char *key, FILE *out)
{
    rg__explain x = {st, out, 0, RG_TIME_NONE, eng, NULL, clinic};
    int rc = rg_store_key_transitions(st, clinic, key, rg__explain_one, &x);
    if (rc)
        return rc;
    return x.n ? RG_OK : RG_ENOTFOUND;
}

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
