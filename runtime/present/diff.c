/*
 * diff.c - the text of a comparison of two protocol versions (engine/diff.c
 * computes it): a line a difference ("moved", "severity", "only OLD", "only
 * NEW"), the count, then the counts by rule; and what governance.c's diff
 * and proposal find, as `regimen protocols` prints it.
 */
#include "present/diff.h"
#include "core/digest.h"

#include <stddef.h>

/* An id, a type or a name made printable (digest.h): every byte escaped
 * takes at most 4. */
#define RG__SAFE_ID (4 * RG_EVENT_MAX_ID + 1)

/* The zone a transition of clinic is shown in (UTC without an engine). */
static const rg_zone *rg__zone(rg_engine *eng, const char *clinic)
{
    return eng ? rg_engine_zone(eng, clinic) : rg_zone_utc();
}

/* "by rule:", then a line a rule: what NEW would do that OLD did not. */
static void rg__print_counts(const rg_diff_summary *s, const char *old_name,
                             const char *new_name, FILE *out)
{
    if (!s->n)
        return;
    static const struct {
        size_t field;
        const char *what;
        int old;
    } kinds[] = {
        {offsetof(rg_diff_rule, new_opened), "opened only under %s", 0},
        {offsetof(rg_diff_rule, new_resolved), "resolved only under %s", 0},
        {offsetof(rg_diff_rule, old_opened), "opened only under %s", 1},
        {offsetof(rg_diff_rule, old_resolved), "resolved only under %s", 1},
        {offsetof(rg_diff_rule, moved), "moved", 0},
        {offsetof(rg_diff_rule, severity), "changed severity", 0},
    };
    fprintf(out, "by rule:\n");
    for (int i = 0; i < s->n; i++) {
        fprintf(out, "  %-26s", s->v[i].rule);
        const char *sep = "";
        for (size_t k = 0; k < sizeof kinds / sizeof kinds[0]; k++) {
            long n = *(const long *)((const char *)&s->v[i] + kinds[k].field);
            if (!n)
                continue;
            fprintf(out, "%s%ld ", sep, n);
            fprintf(out, kinds[k].what, kinds[k].old ? old_name : new_name);
            sep = ", ";
        }
        fputc('\n', out);
    }
}

/* A transition of one side without a counterpart. */
static void rg__print_only(const rg_diff_tr *t, const char *name, rg_engine *eng, FILE *out)
{
    char when[RG_TIME_BUFSZ], patient[RG__SAFE_ID], rule[512];
    fprintf(out, "only %-4s %s %s %-26s %-8s %s \"", name, t->clinic,
            rg_printable(t->patient, patient, sizeof patient),
            rg_printable(t->rule, rule, sizeof rule), t->open ? "open" : "resolved",
            rg_zone_display(rg__zone(eng, t->clinic), t->at, when));
    rg_fput_printable(out, t->message);
    fputs("\"\n", out);
}

void rg_diff_print(const rg_diff *d, const char *old_name, const char *new_name,
                   rg_engine *eng, FILE *out)
{
    char t1[RG_TIME_BUFSZ], t2[RG_TIME_BUFSZ];
    for (int i = 0; i < d->n; i++) {
        const rg_diff_tr *x = d->v[i].old, *y = d->v[i].new;
        switch (d->v[i].kind) {
        case RG_DIFF_MOVED:
            fprintf(out, "moved     %s %s %-26s %-8s %s -> %s\n", x->clinic, x->patient,
                    x->rule, x->open ? "open" : "resolved",
                    rg_zone_display(rg__zone(eng, x->clinic), x->at, t1),
                    rg_zone_display(rg__zone(eng, x->clinic), y->at, t2));
            break;
        case RG_DIFF_SEVERITY:
            fprintf(out, "severity  %s %s %-26s %-8s %s: %s -> %s\n", x->clinic, x->patient,
                    x->rule, x->open ? "open" : "resolved",
                    rg_zone_display(rg__zone(eng, x->clinic), y->at, t2), x->severity,
                    y->severity);
            break;
        case RG_DIFF_ONLY_OLD:
            rg__print_only(x, old_name, eng, out);
            break;
        default:
            rg__print_only(y, new_name, eng, out);
            break;
        }
    }
    fprintf(out, "%ld difference%s (%d transitions under %s, %d under %s)\n",
            d->sum.differences, d->sum.differences == 1 ? "" : "s", d->old_n, old_name,
            d->new_n, new_name);
    rg__print_counts(&d->sum, old_name, new_name, out);
}

long rg_diff_stores(rg_store *old, rg_store *new, const char *old_name, const char *new_name,
                    rg_engine *eng, FILE *out)
{
    rg_diff d;
    long n = rg_diff_compute_stores(old, new, &d);
    if (n >= 0)
        rg_diff_print(&d, old_name, new_name, eng, out);
    rg_diff_free(&d);
    return n;
}

/* ---- governance's findings, as `regimen protocols` prints them ---------------------- */

static void rg__stored(void *ud, const char *id)
{
    fprintf(ud, "version %s\n", id);
    fflush(ud);
}

static void rg__no_active(void *ud, const char *clinic, int shipped)
{
    if (shipped)
        fprintf(ud, "no version of clinic %s is active: compared with the shipped default "
                "(ketamine)\n", clinic);
    else
        fprintf(ud, "no version of clinic %s is active: nothing to compare with\n", clinic);
}

static void rg__errors(void *ud, const char *side, long long errors)
{
    fprintf(ud, "the %s version had %lld evaluation errors on the history: no diff\n", side,
            errors);
}

static void rg__diff(void *ud, const rg_diff *d, rg_engine *eng)
{
    rg_diff_print(d, "OLD", "NEW", eng, ud);
}

rg_gov_writer rg_gov_printer(FILE *out)
{
    return (rg_gov_writer){.stored = rg__stored, .no_active = rg__no_active,
                           .errors = rg__errors, .diff = rg__diff, .ud = out};
}
