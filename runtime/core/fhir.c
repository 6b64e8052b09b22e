/*
 * fhir.c - the default FHIR R4 -> event mapping (see fhir.h, docs/fhir.md).
 * Depends on jansson and rfc3339.c only; what a clinic overrides reaches it
 * as code lists and a hook (clinic.c runs the clinic's Lua there).
 *
 * Two passes over the resources: the first collects what others refer to
 * (Patients by fullUrl and id, Medications, body weights), the second maps
 * each resource. A resource's events are named after it (fhir:Type/id), so
 * importing the same resources again stores nothing new (duplicates).
 * Heart rate and PHQ-9 item 9 sent as Observations of their own join the
 * blood pressure / PHQ-9 total of the same patient and instant, the way EHRs
 * (and Synthea) split what regimen keeps as one event.
 */
#include "core/fhir.h"

#include "core/grow.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *const rg_fhir_list_name[RG_FHIR_NLISTS] = {
    "ketamine", "infusion", "enrolled", "discharged", "preparation_session",
    "integration_session", "followup_visit", "pcl5",
};

#define RG__RXNORM "http://www.nlm.nih.gov/research/umls/rxnorm"
#define RG__LOINC "http://loinc.org"
#define RG__SCT "http://snomed.info/sct"
#define RG__OWN "urn:regimen:event" /* code = the event type, for any list */

static const char *const rg__def_ketamine[] = {RG__RXNORM "|6130", NULL};
static const char *const rg__def_empty[] = {NULL};
static const char *const rg__def_integration[] = {RG__SCT "|75516001", NULL}; /* psychotherapy */
static const char *const rg__def_followup[] = {RG__SCT "|390906007", NULL};   /* follow-up encounter */
static const char *const *const rg__defaults[RG_FHIR_NLISTS] = {
    rg__def_ketamine, rg__def_empty, rg__def_empty, rg__def_empty,
    rg__def_empty, rg__def_integration, rg__def_followup, rg__def_empty,
};
/* the event type that RG__OWN codes name, per list (NULL: none) */
static const char *const rg__own_code[RG_FHIR_NLISTS] = {
    NULL, "infusion", "enrolled", "discharged", "preparation_session",
    "integration_session", "followup_visit", "pcl5",
};

const char *rg_fhir_kind_name(rg_fhir_kind k)
{
    static const char *const names[] = {"events", "context", "unmapped", "rejected"};
    return names[k];
}

typedef struct rg__weight {
    char patient[RG_EVENT_MAX_ID + 1];
    rg_time at;
    double kg;
} rg__weight;

typedef struct rg__cx {
    const rg_fhir_opts *o;
    rg_fhir_import *im;
    json_t *refs;    /* "urn:uuid:..", "Patient/x", "Medication/y" -> resource */
    json_t *joins;   /* "vitals|<ms>|patient", "phq9|..." -> the event a lone heart rate
                        or item 9 joins */
    rg__weight *w;
    size_t nw, capw;
    char prefix[64]; /* entry[3].resource, or the resource type (NDJSON) */
} rg__cx;

/* ---- small readers ----------------------------------------------------------------- */

static const char *rg__str(json_t *o, const char *k) { return json_string_value(json_object_get(o, k)); }

/* Marks e rejected at prefix.rel (rel may be ""). Returns 1 for `return`. */
static int rg__reject(rg__cx *cx, rg_fhir_entry *e, const char *rel, const char *fmt, ...)
{
    va_list ap;
    e->kind = RG_FHIR_REJECTED;
    json_array_clear(e->events);
    snprintf(e->location, sizeof e->location, "%s%s%s", cx->prefix, *rel ? "." : "", rel);
    va_start(ap, fmt);
    vsnprintf(e->reason, sizeof e->reason, fmt, ap);
    va_end(ap);
    return 1;
}

static int rg__note(rg_fhir_entry *e, rg_fhir_kind kind, const char *fmt, ...)
{
    va_list ap;
    e->kind = kind;
    va_start(ap, fmt);
    vsnprintf(e->reason, sizeof e->reason, fmt, ap);
    va_end(ap);
    return 0;
}

static const char *const *rg__list(rg__cx *cx, int list)
{
    return cx->o->codes[list] ? cx->o->codes[list] : rg__defaults[list];
}

/* 1 when a coding matches "system|code" or a bare "code" of the list, or is
 * regimen's own code for the list. */
static int rg__coding_in(rg__cx *cx, json_t *coding, int list)
{
    const char *sys = rg__str(coding, "system"), *code = rg__str(coding, "code");
    if (!code)
        return 0;
    if (sys && rg__own_code[list] && !strcmp(sys, RG__OWN) && !strcmp(code, rg__own_code[list]))
        return 1;
    for (const char *const *l = rg__list(cx, list); *l; l++) {
        const char *bar = strchr(*l, '|');
        if (!bar ? !strcmp(*l, code)
                 : (!strcmp(bar + 1, code) && sys && strlen(sys) == (size_t)(bar - *l) &&
                    !strncmp(*l, sys, (size_t)(bar - *l))))
            return 1;
    }
    return 0;
}

/* 1 when the CodeableConcept (or an array of them) has a coding in list. */
static int rg__concept_in(rg__cx *cx, json_t *cc, int list)
{
    size_t i, j;
    json_t *c, *coding;
    if (json_is_array(cc)) {
        json_array_foreach(cc, i, c) if (rg__concept_in(cx, c, list)) return 1;
        return 0;
    }
    json_array_foreach(json_object_get(cc, "coding"), j, coding) if (rg__coding_in(cx, coding, list))
        return 1;
    return 0;
}

/* 1 when the CodeableConcept has this LOINC code. */
static int rg__loinc(json_t *cc, const char *code)
{
    size_t i;
    json_t *coding;
    json_array_foreach(json_object_get(cc, "coding"), i, coding) {
        const char *s = rg__str(coding, "system"), *c = rg__str(coding, "code");
        if (s && c && !strcmp(s, RG__LOINC) && !strcmp(c, code))
            return 1;
    }
    return 0;
}

/* The codes of a concept list, for messages: "http://snomed.info/sct|162673000, ..." */
static void rg__codes_text(json_t *cc, char *out, size_t len)
{
    size_t i, j, n = 0;
    json_t *c, *coding;
    out[0] = '\0';
    json_t *one = json_is_array(cc) ? NULL : cc;
    for (i = 0; one ? i < 1 : i < json_array_size(cc); i++) {
        c = one ? one : json_array_get(cc, i);
        json_array_foreach(json_object_get(c, "coding"), j, coding) if (n + 1 < len)
            n += (size_t)snprintf(out + n, len - n, "%s%s|%s", n ? ", " : "",
                                  rg__str(coding, "system") ? rg__str(coding, "system") : "",
                                  rg__str(coding, "code") ? rg__str(coding, "code") : "");
    }
    if (!out[0])
        snprintf(out, len, "no coding");
}

/* A FHIR dateTime as an event time: with an offset as given, a bare date as
 * its midnight UTC. 0, or 1 with e rejected at rel. */
static int rg__at(rg__cx *cx, rg_fhir_entry *e, const char *rel, json_t *v, char out[64],
                  rg_time *t)
{
    const char *s = json_string_value(v);
    char why[160];
    if (!s)
        return rg__reject(cx, e, rel, "expected a dateTime string");
    size_t n = strlen(s);
    if (n == 10)
        snprintf(out, 64, "%sT00:00:00Z", s);
    else if (n < 64)
        snprintf(out, 64, "%s", s);
    else
        return rg__reject(cx, e, rel, "not a dateTime");
    if (n < 10)
        return rg__reject(cx, e, rel, "\"%s\" is too imprecise for an event: a day at least",
                          s);
    if (rg_time_parse(out, strlen(out), t, NULL, why, sizeof why))
        return rg__reject(cx, e, rel, "\"%.40s\" is not a dateTime with a time zone: %s", s,
                          why);
    return 0;
}

/* The first of the named time fields present (a Period's start for *Period
 * names; "period.end" for the end). Rejects when none is. */
static int rg__when(rg__cx *cx, rg_fhir_entry *e, json_t *res, const char *const *names,
                    char out[64], rg_time *t)
{
    char rel[64];
    for (const char *const *n = names; *n; n++) {
        const char *dot = strchr(*n, '.');
        json_t *v;
        if (dot) {
            char head[32];
            snprintf(head, sizeof head, "%.*s", (int)(dot - *n), *n);
            v = json_object_get(json_object_get(res, head), dot + 1);
        } else {
            v = json_object_get(res, *n);
        }
        if (v)
            return rg__at(cx, e, *n, v, out, t);
    }
    snprintf(rel, sizeof rel, "%s", names[0]);
    return rg__reject(cx, e, rel, "the event needs a time; none of %s%s%s is given", names[0],
                      names[1] ? " / " : "", names[1] ? names[1] : "");
}

/* The patient of a reference: "Patient/x" (also a full URL, with or without
 * _history), or a fullUrl of the import whose resource is a Patient. */
static int rg__patient(rg__cx *cx, rg_fhir_entry *e, json_t *res, const char *field,
                       char out[RG_EVENT_MAX_ID + 1])
{
    char rel[64];
    snprintf(rel, sizeof rel, "%s.reference", field);
    json_t *ref = json_object_get(res, field);
    const char *r = rg__str(ref, "reference");
    if (!ref)
        return rg__reject(cx, e, field, "the patient is required (a reference to a Patient)");
    if (!r)
        return rg__reject(cx, e, rel, "a reference to the Patient is required (the event's "
                                      "patient is taken from it)");
    json_t *known = json_object_get(cx->refs, r);
    if (known && rg__str(known, "id") && !strcmp(rg__str(known, "resourceType"), "Patient")) {
        snprintf(out, RG_EVENT_MAX_ID + 1, "%s", rg__str(known, "id"));
        return 0;
    }
    if (!strncmp(r, "urn:uuid:", 9) && r[9]) {
        snprintf(out, RG_EVENT_MAX_ID + 1, "%s", r + 9);
        return 0;
    }
    const char *p = NULL;
    for (const char *s = strstr(r, "Patient/"); s; s = strstr(s + 1, "Patient/"))
        if (s == r || s[-1] == '/')
            p = s + 8;
    if (!p || !*p || *p == '/')
        return rg__reject(cx, e, rel, "\"%.80s\" is not a reference to a Patient", r);
    size_t n = strcspn(p, "/");
    if (n > RG_EVENT_MAX_ID)
        return rg__reject(cx, e, rel, "the Patient id is longer than %d characters",
                          RG_EVENT_MAX_ID);
    snprintf(out, RG_EVENT_MAX_ID + 1, "%.*s", (int)n, p);
    return 0;
}

/* A Quantity's value as a number, or rejects at rel. */
static int rg__number(rg__cx *cx, rg_fhir_entry *e, const char *rel, json_t *v, double *out)
{
    if (!json_is_number(v))
        return rg__reject(cx, e, rel, "expected a number");
    *out = json_number_value(v);
    return 0;
}

static json_t *rg__num_json(double v)
{
    double r = round(v * 1000.0) / 1000.0;
    if (r == floor(r) && fabs(r) < 1e15)
        return json_integer((json_int_t)r);
    return json_real(r);
}

/* The key under which a vitals or PHQ-9 event waits for what joins it. */
static void rg__join_key(char *key, size_t len, const char *what, const char *patient, rg_time at)
{
    snprintf(key, len, "%s|%lld|%s", what, (long long)at, patient);
}

/* Appends an event for this entry; suffix (or NULL) tells apart a second
 * event of one resource. data is taken (may be NULL). */
static json_t *rg__event(rg__cx *cx, rg_fhir_entry *e, const char *suffix, const char *type,
                         const char *patient, const char *at, json_t *data)
{
    char id[RG_EVENT_MAX_ID * 2];
    snprintf(id, sizeof id, "fhir:%s/%s%s%s", e->type, e->id, suffix ? "#" : "",
             suffix ? suffix : "");
    json_t *ev = json_pack("{s:s,s:s,s:s,s:s,s:s}", "id", id, "clinic", cx->o->clinic, "patient",
                           patient, "type", type, "at", at);
    if (ev && data)
        json_object_set_new(ev, "data", data);
    else
        json_decref(data);
    if (!ev)
        return NULL;
    json_array_append_new(e->events, ev);
    const char *what = !strcmp(type, "vitals") ? "vitals"
                     : !strcmp(type, "assessment") && data &&
                               !strcmp(rg__str(data, "instrument"), "phq9") ? "phq9" : NULL;
    rg_time t;
    if (what && !rg_time_parse(at, strlen(at), &t, NULL, NULL, 0)) {
        char key[RG_EVENT_MAX_ID + 64];
        rg__join_key(key, sizeof key, what, patient, t);
        json_object_set(cx->joins, key, ev);
    }
    return ev;
}

/* ---- corrections: FHIR status and meta onto the correction contract --------------- */

static const char *rg__display_of(json_t *res)
{
    static const char *const who[] = {"performer", "recorder", "asserter", "author", NULL};
    for (const char *const *k = who; *k; k++) {
        json_t *v = json_object_get(res, *k);
        if (json_is_array(v))
            v = json_array_get(v, 0);
        const char *d = rg__str(v, "display");
        if (!d)
            d = rg__str(json_object_get(v, "actor"), "display");
        if (d)
            return d;
    }
    return NULL;
}

/* Adds version / status / corrected_at / corrected_by to the entry's events
 * when the resource is a correction (status amended, corrected or
 * entered-in-error, or meta.versionId above 1); ordinary resources get none. */
static int rg__correction(rg__cx *cx, rg_fhir_entry *e, json_t *res)
{
    const char *status = rg__str(res, "status");
    json_t *meta = json_object_get(res, "meta");
    const char *vid = rg__str(meta, "versionId");
    long version = 0;
    if (vid) {
        char *end;
        version = strtol(vid, &end, 10);
        if (*end || end == vid || version < 1)
            return rg__reject(cx, e, "meta.versionId", "\"%.40s\" is not a positive whole "
                              "number (regimen keeps versions as integers)", vid);
    }
    int corrects = status && (!strcmp(status, "amended") || !strcmp(status, "corrected") ||
                              !strcmp(status, "entered-in-error"));
    if (!corrects && version <= 1)
        return 0;
    char at[64] = "";
    rg_time t;
    json_t *lu = json_object_get(meta, "lastUpdated");
    if (lu && rg__at(cx, e, "meta.lastUpdated", lu, at, &t))
        return 1;
    if (version > 1 && !at[0])
        return rg__reject(cx, e, "meta.lastUpdated", "version %ld is a correction and needs the "
                          "time it was made (meta.lastUpdated)", version);
    const char *by = rg__str(meta, "source");
    if (!by)
        by = rg__display_of(res);
    size_t i;
    json_t *ev;
    json_array_foreach(e->events, i, ev) {
        if (version)
            json_object_set_new(ev, "version", json_integer(version));
        if (corrects)
            json_object_set_new(ev, "status", json_string(status));
        if (at[0])
            json_object_set_new(ev, "corrected_at", json_string(at));
        if (by)
            json_object_set_new(ev, "corrected_by", json_string(by));
    }
    return 0;
}

/* ---- per resource type ------------------------------------------------------------------ */

static const char *const rg__obs_when[] = {"effectiveDateTime", "effectivePeriod.start",
                                           "effectiveInstant", "issued", NULL};

/* The value of a component or Observation: valueQuantity.value or valueInteger. */
static json_t *rg__value(json_t *o, const char **rel)
{
    json_t *q = json_object_get(o, "valueQuantity");
    if (q) {
        *rel = "valueQuantity.value";
        return json_object_get(q, "value");
    }
    if (json_object_get(o, "valueInteger")) {
        *rel = "valueInteger";
        return json_object_get(o, "valueInteger");
    }
    *rel = "valueQuantity";
    return NULL;
}

/* The vitals / PHQ-9 assessment of the import with this patient and time
 * (to join a heart rate or PHQ-9 item 9 sent on its own), or NULL. */
static json_t *rg__find_event(rg__cx *cx, const char *what, const char *patient, rg_time at)
{
    char key[RG_EVENT_MAX_ID + 64];
    rg__join_key(key, sizeof key, what, patient, at);
    return json_object_get(cx->joins, key);
}

static int rg__observation(rg__cx *cx, rg_fhir_entry *e, json_t *res, int pass)
{
    json_t *code = json_object_get(res, "code");
    const char *status = rg__str(res, "status");
    char patient[RG_EVENT_MAX_ID + 1], at[64], rel[96];
    rg_time t;
    const char *vrel;
    double v = 0;
    int weight = rg__loinc(code, "29463-7"), lone = rg__loinc(code, "8867-4") ||
                                                   rg__loinc(code, "44260-8");
    if (pass == 1 && !weight)
        return 0;
    if (pass == 2 && weight)
        return 0; /* taken in the first pass */
    if (status && (!strcmp(status, "cancelled") || !strcmp(status, "registered")))
        return rg__note(e, RG_FHIR_UNMAPPED, "status %s: nothing was measured", status);
    if (pass == 3 && !lone)
        return 0;
    if (pass == 2 && lone)
        return 0; /* after the panels and totals they join */
    if (rg__patient(cx, e, res, "subject", patient) || rg__when(cx, e, res, rg__obs_when, at, &t))
        return 1;
    if (weight) {
        json_t *q = json_object_get(res, "valueQuantity");
        const char *unit = rg__str(q, "code") ? rg__str(q, "code") : rg__str(q, "unit");
        if (rg__number(cx, e, "valueQuantity.value", json_object_get(q, "value"), &v))
            return 1;
        double f = !unit ? 0 : !strcmp(unit, "kg") ? 1 : !strcmp(unit, "g") ? 0.001
                 : (!strcmp(unit, "[lb_av]") || !strcmp(unit, "lb") || !strcmp(unit, "lbs"))
                     ? 0.45359237 : 0;
        if (f == 0 || v <= 0)
            return rg__reject(cx, e, "valueQuantity", "a body weight must be a positive value in "
                              "kg, g or [lb_av], not %g %s", v, unit ? unit : "(no unit)");
        rg__weight *grown = rg_grow(cx->w, &cx->capw, cx->nw, sizeof *grown, 16);
        if (!grown)
            return RG_ENOMEM;
        cx->w = grown;
        rg__weight *w = &cx->w[cx->nw++];
        snprintf(w->patient, sizeof w->patient, "%s", patient);
        w->at = t;
        w->kg = v * f;
        return rg__note(e, RG_FHIR_CONTEXT, "body weight %g kg of patient '%s', for doses in mg",
                        w->kg, patient);
    }
    if (rg__loinc(code, "85354-9") || rg__loinc(code, "55284-4")) {
        json_t *data = json_object(), *c;
        size_t i;
        json_array_foreach(json_object_get(res, "component"), i, c) {
            json_t *cc = json_object_get(c, "code");
            const char *k = rg__loinc(cc, "8480-6") ? "systolic" : rg__loinc(cc, "8462-4")
                          ? "diastolic" : rg__loinc(cc, "8867-4") ? "heart_rate" : NULL;
            if (!k)
                continue;
            json_t *val = rg__value(c, &vrel);
            snprintf(rel, sizeof rel, "component[%zu].%s", i, vrel);
            if (rg__number(cx, e, rel, val, &v)) {
                json_decref(data);
                return 1;
            }
            json_object_set_new(data, k, rg__num_json(v));
        }
        if (!json_object_get(data, "systolic") || !json_object_get(data, "diastolic")) {
            json_decref(data);
            return rg__reject(cx, e, "component", "a blood pressure needs a systolic (8480-6) "
                              "and a diastolic (8462-4) component with values");
        }
        return rg__event(cx, e, NULL, "vitals", patient, at, data) ? 0 : RG_ENOMEM;
    }
    static const struct { const char *loinc, *instrument; } totals[] = {
        {"44261-6", "phq9"}, {"70274-6", "gad7"}};
    for (size_t k = 0; k < 3; k++) {
        int is = k < 2 ? rg__loinc(code, totals[k].loinc) : rg__concept_in(cx, code, RG_FHIR_PCL5);
        if (!is)
            continue;
        json_t *val = rg__value(res, &vrel);
        if (rg__number(cx, e, vrel, val, &v))
            return 1;
        json_t *data = json_pack("{s:s,s:o}", "instrument", k < 2 ? totals[k].instrument : "pcl5",
                                 "score", rg__num_json(v));
        json_t *c;
        size_t i;
        json_array_foreach(json_object_get(res, "component"), i, c) {
            if (k != 0 || !rg__loinc(json_object_get(c, "code"), "44260-8"))
                continue;
            json_t *iv = rg__value(c, &vrel);
            snprintf(rel, sizeof rel, "component[%zu].%s", i, vrel);
            if (rg__number(cx, e, rel, iv, &v)) {
                json_decref(data);
                return 1;
            }
            json_object_set_new(data, "item9", rg__num_json(v));
        }
        return rg__event(cx, e, NULL, "assessment", patient, at, data) ? 0 : RG_ENOMEM;
    }
    if (lone) {
        int hr = rg__loinc(code, "8867-4");
        json_t *val = rg__value(res, &vrel);
        if (rg__number(cx, e, vrel, val, &v))
            return 1;
        json_t *ev = rg__find_event(cx, hr ? "vitals" : "phq9", patient, t);
        if (!ev)
            return rg__note(e, RG_FHIR_UNMAPPED, "%s without a %s of the same patient at the "
                            "same time in this import", hr ? "a heart rate" : "a PHQ-9 item 9",
                            hr ? "blood pressure" : "PHQ-9 total");
        json_object_set_new(json_object_get(ev, "data"), hr ? "heart_rate" : "item9",
                            rg__num_json(v));
        return rg__note(e, RG_FHIR_CONTEXT, "joined to %s", rg__str(ev, "id"));
    }
    char codes[200];
    rg__codes_text(code, codes, sizeof codes);
    return rg__note(e, RG_FHIR_UNMAPPED, "no mapping for an Observation of %s", codes);
}

/* The Medication a MedicationAdministration names: its concept, a contained
 * one (#id) or one of the import. */
static json_t *rg__medication(rg__cx *cx, json_t *res, const char **missing)
{
    json_t *cc = json_object_get(res, "medicationCodeableConcept");
    if (cc)
        return cc;
    const char *r = rg__str(json_object_get(res, "medicationReference"), "reference");
    *missing = r;
    if (!r)
        return NULL;
    if (r[0] == '#') {
        size_t i;
        json_t *c;
        json_array_foreach(json_object_get(res, "contained"), i, c) if (
            rg__str(c, "id") && !strcmp(rg__str(c, "id"), r + 1) &&
            !strcmp(rg__str(c, "resourceType") ? rg__str(c, "resourceType") : "", "Medication"))
            return json_object_get(c, "code");
        return NULL;
    }
    return json_object_get(json_object_get(cx->refs, r), "code");
}

static const char *const rg__admin_when[] = {"effectiveDateTime", "effectivePeriod.start", NULL};

static int rg__infusion_duration(json_t *period, json_t *data)
{
    const char *s = rg__str(period, "start"), *f = rg__str(period, "end");
    rg_time a, b;
    if (s && f && !rg_time_parse(s, strlen(s), &a, NULL, NULL, 0) &&
        !rg_time_parse(f, strlen(f), &b, NULL, NULL, 0) && b > a)
        json_object_set_new(data, "duration_min", rg__num_json((double)(b - a) / 60000.0));
    return 0;
}

static int rg__administration(rg__cx *cx, rg_fhir_entry *e, json_t *res)
{
    const char *status = rg__str(res, "status"), *missing = NULL;
    char patient[RG_EVENT_MAX_ID + 1], at[64];
    rg_time t;
    double v = 0;
    if (status && (!strcmp(status, "not-done") || !strcmp(status, "unknown")))
        return rg__note(e, RG_FHIR_UNMAPPED, "status %s: no dose was given", status);
    json_t *med = rg__medication(cx, res, &missing);
    if (!med && missing)
        return rg__note(e, RG_FHIR_UNMAPPED, "medication %.100s is not in this import, so it "
                        "cannot be told to be ketamine", missing);
    if (!rg__concept_in(cx, med, RG_FHIR_KETAMINE))
        return rg__note(e, RG_FHIR_UNMAPPED, "not ketamine (RxNorm 6130 or the clinic's "
                        "fhir.codes.ketamine)");
    if (rg__patient(cx, e, res, "subject", patient) || rg__when(cx, e, res, rg__admin_when, at, &t))
        return 1;
    json_t *dose = json_object_get(json_object_get(res, "dosage"), "dose");
    if (!dose)
        return rg__reject(cx, e, "dosage.dose", "an infusion needs its dose (in mg or mg/kg)");
    const char *unit = rg__str(dose, "code") ? rg__str(dose, "code") : rg__str(dose, "unit");
    if (rg__number(cx, e, "dosage.dose.value", json_object_get(dose, "value"), &v))
        return 1;
    double per_kg;
    if (unit && !strcmp(unit, "mg/kg")) {
        per_kg = v;
    } else if (unit && (!strcmp(unit, "mg") || !strcmp(unit, "g") || !strcmp(unit, "ug"))) {
        double mg = v * (!strcmp(unit, "g") ? 1000.0 : !strcmp(unit, "ug") ? 0.001 : 1.0);
        const rg__weight *w = NULL;
        for (size_t i = 0; i < cx->nw; i++)
            if (!strcmp(cx->w[i].patient, patient) && cx->w[i].at <= t &&
                (!w || cx->w[i].at >= w->at))
                w = &cx->w[i];
        if (!w)
            return rg__reject(cx, e, "dosage.dose", "a dose in %s needs a body weight (LOINC "
                              "29463-7) of patient '%s' taken at or before %s in the same "
                              "import", unit, patient, at);
        per_kg = mg / w->kg;
    } else {
        return rg__reject(cx, e, "dosage.dose", "the dose must be in mg, g, ug or mg/kg, not %s",
                          unit ? unit : "(no unit)");
    }
    json_t *data = json_pack("{s:o}", "dose_mg_per_kg", rg__num_json(per_kg));
    rg__infusion_duration(json_object_get(res, "effectivePeriod"), data);
    return rg__event(cx, e, NULL, "infusion", patient, at, data) ? 0 : RG_ENOMEM;
}

static const char *const rg__proc_when[] = {"performedDateTime", "performedPeriod.start", NULL};
static const char *const rg__enc_when[] = {"period.start", NULL};

/* The event type of an Encounter.type or Procedure.code, or NULL. */
static const char *rg__session_type(rg__cx *cx, json_t *cc)
{
    static const int lists[] = {RG_FHIR_ENROLLED, RG_FHIR_DISCHARGED, RG_FHIR_PREPARATION,
                                RG_FHIR_INTEGRATION, RG_FHIR_FOLLOWUP};
    for (size_t i = 0; i < RG_COUNTOF(lists); i++)
        if (rg__concept_in(cx, cc, lists[i]))
            return rg_fhir_list_name[lists[i]];
    return NULL;
}

static int rg__session(rg__cx *cx, rg_fhir_entry *e, json_t *res, const char *type,
                       const char *const *when, const char *subject)
{
    char patient[RG_EVENT_MAX_ID + 1], at[64];
    rg_time t;
    if (rg__patient(cx, e, res, subject, patient) || rg__when(cx, e, res, when, at, &t))
        return 1;
    json_t *data = !strcmp(type, "enrolled") ? json_pack("{s:s}", "program", "ketamine") : NULL;
    return rg__event(cx, e, NULL, type, patient, at, data) ? 0 : RG_ENOMEM;
}

static int rg__procedure(rg__cx *cx, rg_fhir_entry *e, json_t *res)
{
    const char *status = rg__str(res, "status");
    json_t *code = json_object_get(res, "code");
    char patient[RG_EVENT_MAX_ID + 1], at[64], codes[200];
    rg_time t;
    if (status && (!strcmp(status, "not-done") || !strcmp(status, "preparation")))
        return rg__note(e, RG_FHIR_UNMAPPED, "status %s: it did not take place", status);
    if (rg__concept_in(cx, code, RG_FHIR_INFUSION) ||
        rg__concept_in(cx, json_object_get(res, "usedCode"), RG_FHIR_KETAMINE)) {
        if (rg__patient(cx, e, res, "subject", patient) ||
            rg__when(cx, e, res, rg__proc_when, at, &t))
            return 1;
        json_t *data = json_object();
        rg__infusion_duration(json_object_get(res, "performedPeriod"), data);
        return rg__event(cx, e, NULL, "infusion", patient, at, data) ? 0 : RG_ENOMEM;
    }
    const char *type = rg__session_type(cx, code);
    if (type)
        return rg__session(cx, e, res, type, rg__proc_when, "subject");
    rg__codes_text(code, codes, sizeof codes);
    return rg__note(e, RG_FHIR_UNMAPPED, "no mapping for a Procedure of %s", codes);
}

static int rg__encounter(rg__cx *cx, rg_fhir_entry *e, json_t *res)
{
    const char *status = rg__str(res, "status");
    char codes[200];
    if (status && (!strcmp(status, "planned") || !strcmp(status, "cancelled") ||
                   !strcmp(status, "arrived") || !strcmp(status, "triaged")))
        return rg__note(e, RG_FHIR_UNMAPPED, "status %s: the encounter has not taken place",
                        status);
    json_t *type = json_object_get(res, "type");
    const char *ev = rg__session_type(cx, type);
    if (ev)
        return rg__session(cx, e, res, ev, rg__enc_when, "subject");
    rg__codes_text(type, codes, sizeof codes);
    return rg__note(e, RG_FHIR_UNMAPPED, "Encounter type not configured (%s); see fhir.codes in "
                    "docs/fhir.md", codes);
}

static int rg__episode(rg__cx *cx, rg_fhir_entry *e, json_t *res)
{
    const char *status = rg__str(res, "status");
    char patient[RG_EVENT_MAX_ID + 1], at[64];
    rg_time t;
    if (status && (!strcmp(status, "planned") || !strcmp(status, "waitlist") ||
                   !strcmp(status, "cancelled")))
        return rg__note(e, RG_FHIR_UNMAPPED, "status %s: the episode has not begun", status);
    static const char *const start[] = {"period.start", NULL};
    if (rg__patient(cx, e, res, "patient", patient) || rg__when(cx, e, res, start, at, &t))
        return 1;
    if (!rg__event(cx, e, NULL, "enrolled", patient, at, json_pack("{s:s}", "program", "ketamine")))
        return RG_ENOMEM;
    json_t *end = json_object_get(json_object_get(res, "period"), "end");
    if (end) {
        rg_time t2;
        if (rg__at(cx, e, "period.end", end, at, &t2))
            return 1;
        if (!rg__event(cx, e, "discharged", "discharged", patient, at, NULL))
            return RG_ENOMEM;
    }
    return 0;
}

static int rg__adverse(rg__cx *cx, rg_fhir_entry *e, json_t *res)
{
    static const char *const when[] = {"date", "detected", "recordedDate", NULL};
    static const struct { const char *code, *kind; } kinds[] = {
        {"422587007", "nausea"}, {"404640003", "dizziness"}, {"422400008", "nausea"},
        {"40917007", "confusion"}, {"44376007", "dissociation"}};
    char patient[RG_EVENT_MAX_ID + 1], at[64];
    rg_time t;
    const char *actuality = rg__str(res, "actuality");
    if (actuality && !strcmp(actuality, "potential"))
        return rg__note(e, RG_FHIR_UNMAPPED, "actuality potential: a near miss, not an event");
    if (rg__patient(cx, e, res, "subject", patient) || rg__when(cx, e, res, when, at, &t))
        return 1;
    json_t *sev = json_object_get(res, "severity"), *c;
    const char *severity = rg__str(json_array_get(json_object_get(sev, "coding"), 0), "code");
    if (!severity || (strcmp(severity, "mild") && strcmp(severity, "moderate") &&
                      strcmp(severity, "severe")))
        return rg__reject(cx, e, "severity", "an adverse event needs a severity coded mild, "
                          "moderate or severe");
    const char *kind = "other";
    size_t i;
    json_t *event = json_object_get(res, "event");
    json_array_foreach(json_object_get(event, "coding"), i, c) {
        const char *code = rg__str(c, "code");
        for (size_t k = 0; code && k < RG_COUNTOF(kinds); k++)
            if (!strcmp(code, kinds[k].code))
                kind = kinds[k].kind;
    }
    json_t *data = json_pack("{s:s,s:s}", "kind", kind, "severity", severity);
    const char *text = rg__str(event, "text");
    if (!text)
        text = rg__str(json_array_get(json_object_get(event, "coding"), 0), "display");
    if (text)
        json_object_set_new(data, "description", json_string(text));
    return rg__event(cx, e, NULL, "adverse_event", patient, at, data) ? 0 : RG_ENOMEM;
}

/* A QuestionnaireResponse answer's score: a number, or an ordinal coding. */
static int rg__answer_score(json_t *ans, double *out)
{
    json_t *v;
    if ((v = json_object_get(ans, "valueInteger")) || (v = json_object_get(ans, "valueDecimal")) ||
        (v = json_object_get(json_object_get(ans, "valueQuantity"), "value"))) {
        if (!json_is_number(v))
            return 1;
        *out = json_number_value(v);
        return 0;
    }
    json_t *coding = json_object_get(ans, "valueCoding");
    if (!coding)
        return 1;
    size_t i;
    json_t *x;
    json_array_foreach(json_object_get(coding, "extension"), i, x) {
        const char *url = rg__str(x, "url");
        if (url && (strstr(url, "ordinalValue") || strstr(url, "itemWeight")) &&
            json_is_number(json_object_get(x, "valueDecimal"))) {
            *out = json_number_value(json_object_get(x, "valueDecimal"));
            return 0;
        }
    }
    /* the PHQ answer list (LOINC LL358-3) */
    static const char *const la[] = {"LA6568-5", "LA6569-3", "LA6570-1", "LA6571-9"};
    const char *code = rg__str(coding, "code");
    for (int k = 0; code && k < 4; k++)
        if (!strcmp(code, la[k])) {
            *out = k;
            return 0;
        }
    return 1;
}

/* Finds an item by linkId ("44261-6" or "/44261-6"), depth first; sets path. */
static json_t *rg__qr_item(rg__cx *cx, json_t *items, const char *code, int list, char *path,
                           size_t len)
{
    size_t i, n = strlen(path);
    json_t *it;
    json_array_foreach(items, i, it) {
        const char *id = rg__str(it, "linkId");
        snprintf(path + n, len - n, "%sitem[%zu]", n ? "." : "", i);
        if (id && *id == '/')
            id++;
        int hit = 0;
        if (id && code)
            hit = !strcmp(id, code);
        else if (id && list >= 0) /* a linkId has no system: the codes of the list */
            for (const char *const *l = rg__list(cx, list); *l && !hit; l++)
                hit = !strcmp(strchr(*l, '|') ? strchr(*l, '|') + 1 : *l, id);
        if (hit)
            return it;
        json_t *sub = rg__qr_item(cx, json_object_get(it, "item"), code, list, path, len);
        if (sub)
            return sub;
        path[n] = '\0';
    }
    path[n] = '\0';
    return NULL;
}

static int rg__questionnaire(rg__cx *cx, rg_fhir_entry *e, json_t *res)
{
    static const char *const when[] = {"authored", NULL};
    char patient[RG_EVENT_MAX_ID + 1], at[64], path[160] = "", rel[200];
    rg_time t;
    double v = 0;
    const char *status = rg__str(res, "status");
    if (status && (!strcmp(status, "in-progress") || !strcmp(status, "stopped")))
        return rg__note(e, RG_FHIR_UNMAPPED, "status %s: not a finished questionnaire", status);
    static const struct { const char *code, *instrument; int list; } totals[] = {
        {"44261-6", "phq9", -1}, {"70274-6", "gad7", -1}, {NULL, "pcl5", RG_FHIR_PCL5}};
    json_t *items = json_object_get(res, "item");
    for (size_t k = 0; k < RG_COUNTOF(totals); k++) {
        path[0] = '\0';
        json_t *it = rg__qr_item(cx, items, totals[k].code, totals[k].list, path, sizeof path);
        if (!it)
            continue;
        if (rg__patient(cx, e, res, "subject", patient) || rg__when(cx, e, res, when, at, &t))
            return 1;
        snprintf(rel, sizeof rel, "%s.answer[0]", path);
        if (rg__answer_score(json_array_get(json_object_get(it, "answer"), 0), &v))
            return rg__reject(cx, e, rel, "the %s total needs a numeric answer",
                              totals[k].instrument);
        json_t *data = json_pack("{s:s,s:o}", "instrument", totals[k].instrument, "score",
                                 rg__num_json(v));
        path[0] = '\0';
        json_t *i9 = k == 0 ? rg__qr_item(cx, items, "44260-8", -1, path, sizeof path) : NULL;
        if (i9) {
            snprintf(rel, sizeof rel, "%s.answer[0]", path);
            if (rg__answer_score(json_array_get(json_object_get(i9, "answer"), 0), &v)) {
                json_decref(data);
                return rg__reject(cx, e, rel, "PHQ-9 item 9 needs a scored answer (a number, "
                                  "an ordinal value or a LOINC LL358-3 answer)");
            }
            json_object_set_new(data, "item9", rg__num_json(v));
        }
        return rg__event(cx, e, NULL, "assessment", patient, at, data) ? 0 : RG_ENOMEM;
    }
    return rg__note(e, RG_FHIR_UNMAPPED, "no total score item (linkId 44261-6 PHQ-9, 70274-6 "
                    "GAD-7, or the clinic's fhir.codes.pcl5)");
}

/* ---- the import ----------------------------------------------------------------------- */

static rg_fhir_entry *rg__entry(rg_fhir_import *im, long index)
{
    rg_fhir_entry *v = rg_grow(im->v, &im->cap, im->n, sizeof *v, 32);
    if (!v)
        return NULL;
    im->v = v;
    rg_fhir_entry *e = &im->v[im->n++];
    memset(e, 0, sizeof *e);
    e->index = index;
    e->events = json_array();
    return e->events ? e : NULL;
}

static void rg__prefix(rg__cx *cx, const rg_fhir_entry *e)
{
    if (cx->im->bundle)
        snprintf(cx->prefix, sizeof cx->prefix, "entry[%ld].resource", e->index);
    else
        snprintf(cx->prefix, sizeof cx->prefix, "%s", e->type[0] ? e->type : "resource");
}

/* Pass 0 for one entry: its identity, and what others may refer to. */
static int rg__identify(rg__cx *cx, rg_fhir_entry *e, json_t *res, const char *full_url)
{
    const char *type = rg__str(res, "resourceType"), *id = rg__str(res, "id");
    snprintf(e->type, sizeof e->type, "%s", type ? type : "");
    rg__prefix(cx, e);
    if (!json_is_object(res))
        return rg__reject(cx, e, "", "a resource must be a JSON object");
    if (!type || !*type)
        return rg__reject(cx, e, "resourceType", "a resource needs its resourceType");
    if (!id && full_url && !strncmp(full_url, "urn:uuid:", 9))
        id = full_url + 9;
    if (!id || !*id)
        return rg__reject(cx, e, "id", "a resource needs an id (or a urn:uuid fullUrl): the "
                          "event id is made from it, so that a re-import is recognised");
    if (strlen(id) > 64)
        return rg__reject(cx, e, "id", "an id of at most 64 characters, as FHIR allows");
    snprintf(e->id, sizeof e->id, "%s", id);
    char key[RG_EVENT_MAX_ID + 80];
    snprintf(key, sizeof key, "%s/%s", type, id);
    json_object_set(cx->refs, key, res);
    if (full_url)
        json_object_set(cx->refs, full_url, res);
    return 0;
}

static int rg__map(rg__cx *cx, rg_fhir_entry *e, json_t *res, int pass)
{
    const char *t = e->type;
    rg__prefix(cx, e);
    if (!strcmp(t, "Observation"))
        return rg__observation(cx, e, res, pass);
    if (pass != 2)
        return 0;
    if (!strcmp(t, "Patient"))
        return rg__note(e, RG_FHIR_CONTEXT, "patient identity: its events are stored as "
                        "patient '%s'", e->id);
    if (!strcmp(t, "Medication"))
        return rg__note(e, RG_FHIR_CONTEXT, "a medication, read by the administrations that "
                        "refer to it");
    if (!strcmp(t, "MedicationAdministration"))
        return rg__administration(cx, e, res);
    if (!strcmp(t, "Procedure"))
        return rg__procedure(cx, e, res);
    if (!strcmp(t, "Encounter"))
        return rg__encounter(cx, e, res);
    if (!strcmp(t, "EpisodeOfCare"))
        return rg__episode(cx, e, res);
    if (!strcmp(t, "AdverseEvent"))
        return rg__adverse(cx, e, res);
    if (!strcmp(t, "QuestionnaireResponse"))
        return rg__questionnaire(cx, e, res);
    return rg__note(e, RG_FHIR_UNMAPPED, "no mapping for %s resources", t);
}

/* Maps the entries of im (identified already) in passes: body weights first
 * (doses divide by them), then everything else, then heart rates and item 9
 * answers that join events of the second pass. Then corrections and the
 * clinic's hook. */
static int rg__convert(rg__cx *cx, char *err, size_t errlen)
{
    rg_fhir_import *im = cx->im;
    for (int pass = 1; pass <= 3; pass++)
        for (size_t i = 0; i < im->n; i++) {
            rg_fhir_entry *e = &im->v[i];
            if (e->kind != RG_FHIR_EVENTS || !e->resource ||
                (pass > 1 && (json_array_size(e->events) || e->reason[0])))
                continue;
            int rc = rg__map(cx, e, e->resource, pass);
            if (rc < 0)
                return rg_fail(err, errlen, RG_ENOMEM, "out of memory");
        }
    for (size_t i = 0; i < im->n; i++) {
        rg_fhir_entry *e = &im->v[i];
        rg__prefix(cx, e);
        if (e->kind == RG_FHIR_EVENTS && json_array_size(e->events))
            rg__correction(cx, e, e->resource);
        if (e->kind == RG_FHIR_EVENTS && !json_array_size(e->events) && !e->reason[0])
            rg__note(e, RG_FHIR_UNMAPPED, "no mapping for this %s", e->type);
        if (cx->o->hook && e->kind != RG_FHIR_REJECTED && e->resource) {
            int rc = cx->o->hook(cx->o->hook_ud, e, err, errlen);
            if (rc)
                return rc;
        }
    }
    return RG_OK;
}

static void rg__cx_init(rg__cx *cx, rg_fhir_import *im, const rg_fhir_opts *o)
{
    memset(cx, 0, sizeof *cx);
    memset(im, 0, sizeof *im);
    cx->o = o;
    cx->im = im;
    cx->refs = json_object();
    cx->joins = json_object();
}

static int rg__cx_done(rg__cx *cx, int rc)
{
    json_decref(cx->refs);
    json_decref(cx->joins);
    free(cx->w);
    if (rc)
        rg_fhir_free(cx->im);
    return rc;
}

int rg_fhir_bundle(rg_fhir_import *im, json_t *bundle, const rg_fhir_opts *o, char *err,
                   size_t errlen)
{
    rg__cx cx;
    rg__cx_init(&cx, im, o);
    im->bundle = 1;
    const char *rt = rg__str(bundle, "resourceType"), *type = rg__str(bundle, "type");
    int rc = RG_OK;
    if (!rt || strcmp(rt, "Bundle"))
        rc = rg_fail(err, errlen, RG_EINVAL, "expected a FHIR Bundle (resourceType \"Bundle\")");
    else if (!type || (strcmp(type, "collection") && strcmp(type, "batch") &&
                       strcmp(type, "transaction") && strcmp(type, "searchset")))
        rc = rg_fail(err, errlen, RG_EINVAL, "Bundle.type must be collection, batch, transaction "
                     "or searchset, not %s", type ? type : "missing");
    else if (json_object_get(bundle, "entry") && !json_is_array(json_object_get(bundle, "entry")))
        rc = rg_fail(err, errlen, RG_EINVAL, "Bundle.entry must be an array");
    size_t i;
    json_t *ent;
    json_array_foreach(json_object_get(bundle, "entry"), i, ent) {
        if (rc)
            break;
        rg_fhir_entry *e = rg__entry(im, (long)i);
        if (!e) {
            rc = rg_fail(err, errlen, RG_ENOMEM, "out of memory");
            break;
        }
        json_t *res = json_object_get(ent, "resource");
        snprintf(cx.prefix, sizeof cx.prefix, "entry[%zu]", i);
        if (!res) {
            const char *m = rg__str(json_object_get(ent, "request"), "method");
            const char *u = rg__str(json_object_get(ent, "request"), "url");
            if (m)
                rg__note(e, RG_FHIR_UNMAPPED, "a %s %.80s request without a resource is not "
                         "imported", m, u ? u : "");
            else
                rg__reject(&cx, e, "resource", "a Bundle entry needs a resource");
            continue;
        }
        e->resource = json_incref(res);
        rg__identify(&cx, e, res, rg__str(ent, "fullUrl"));
    }
    if (!rc)
        rc = rg__convert(&cx, err, errlen);
    return rg__cx_done(&cx, rc);
}

int rg_fhir_read(rg_fhir_import *im, const char *text, size_t len, const rg_fhir_opts *o,
                 char *err, size_t errlen)
{
    json_error_t je;
    json_t *whole = rg_json_loadb(text, len, JSON_REJECT_DUPLICATES, &je);
    if (whole && json_is_object(whole) && rg__str(whole, "resourceType") &&
        !strcmp(rg__str(whole, "resourceType"), "Bundle")) {
        int rc = rg_fhir_bundle(im, whole, o, err, errlen);
        json_decref(whole);
        return rc;
    }
    rg__cx cx;
    rg__cx_init(&cx, im, o);
    int rc = RG_OK;
    if (whole) { /* one resource */
        rg_fhir_entry *e = rg__entry(im, 1);
        if (!e) {
            json_decref(whole);
            return rg__cx_done(&cx, rg_fail(err, errlen, RG_ENOMEM, "out of memory"));
        }
        e->resource = whole;
        rg__identify(&cx, e, whole, NULL);
    } else { /* NDJSON: one resource per line */
        long line = 0;
        for (size_t off = 0; off < len && !rc;) {
            const char *nl = memchr(text + off, '\n', len - off);
            size_t n = nl ? (size_t)(nl - (text + off)) : len - off;
            const char *s = text + off;
            off += n + 1;
            line++;
            size_t k = 0;
            while (k < n && (s[k] == ' ' || s[k] == '\t' || s[k] == '\r'))
                k++;
            if (k == n)
                continue;
            rg_fhir_entry *e = rg__entry(im, line);
            if (!e) {
                rc = rg_fail(err, errlen, RG_ENOMEM, "out of memory");
                break;
            }
            json_t *res = rg_json_loadb(s, n, JSON_REJECT_DUPLICATES, &je);
            if (!res) {
                snprintf(cx.prefix, sizeof cx.prefix, "line %ld", line);
                rg__reject(&cx, e, "", "not JSON: %s (column %d)", je.text, je.column);
                continue;
            }
            e->resource = res;
            rg__identify(&cx, e, res, NULL);
        }
        if (!rc && im->n == 0)
            rc = rg_fail(err, errlen, RG_EINVAL, "no FHIR resources: expected a Bundle, a "
                         "resource or NDJSON (%s)", len ? je.text : "the input is empty");
    }
    if (!rc)
        rc = rg__convert(&cx, err, errlen);
    return rg__cx_done(&cx, rc);
}

void rg_fhir_free(rg_fhir_import *im)
{
    for (size_t i = 0; i < im->n; i++) {
        json_decref(im->v[i].events);
        json_decref(im->v[i].resource);
    }
    free(im->v);
    memset(im, 0, sizeof *im);
}

json_t *rg_fhir_entry_json(const rg_fhir_import *im, const rg_fhir_entry *e, json_t *results)
{
    json_t *o = json_object();
    json_object_set_new(o, im->bundle ? "entry" : "line", json_integer(e->index));
    json_object_set_new(o, "resourceType", e->type[0] ? json_string(e->type) : json_null());
    json_object_set_new(o, "id", e->id[0] ? json_string(e->id) : json_null());
    const char *status = rg_fhir_kind_name(e->kind);
    if (e->kind == RG_FHIR_EVENTS && results) {
        /* the entry's outcome: a refusal of any of its events, else the first's */
        size_t i;
        json_t *r;
        status = NULL;
        json_array_foreach(results, i, r) {
            const char *s = rg__str(r, "status");
            if (!status || !strcmp(s, "rejected") || (!strcmp(s, "conflict") &&
                                                      strcmp(status, "rejected")))
                status = s;
        }
        json_object_set(o, "events", results);
    } else if (e->kind == RG_FHIR_EVENTS) {
        json_object_set(o, "events", e->events);
    }
    json_object_set_new(o, "status", json_string(status ? status : "unmapped"));
    if (e->location[0])
        json_object_set_new(o, "location", json_string(e->location));
    if (e->reason[0])
        json_object_set_new(o, "reason", json_string(e->reason));
    return o;
}
