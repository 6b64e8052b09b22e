/*
 * explain.c - the auditor's "why is this alert open?" (explain.h): for each
 * instance of an alert key, the rule and protocol version that produced it,
 * the parameters in force, and the events the rule looked at when it opened
 * and when it resolved (the evidence the engine records with every
 * transition), with every version of an event that was corrected and the
 * corrections made between two transitions (who, when, what they replaced).
 * It only reads the store and writes for people; the clinic's zone comes
 * from the engine. Used by `regimen explain` and the worklist.
 */
#include "present/explain.h"
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
