/*
 * compliance.c - the esketamine (Spravato REMS) compliance report (see
 * compliance.h).
 *
 * One pass per patient over the stored events (in time order, current
 * versions) builds the sessions (one per esketamine_dose) and the courses
 * (one per `enrolled` with program "esketamine", until `discharged`); the
 * writers then only count and print. Session and course follow the
 * definitions of protocols/lib/sessions.lua and esketamine/induction.lua:
 * a pre-dose reading is a "pre" vitals recorded before the dose within
 * pre_dose_bp_within; the 40-minute reading a "post" vitals at least
 * post_dose_bp_from after the dose and before the next one; monitoring the
 * first monitoring_end after the dose (before the next one); the form the
 * first rems_form whose data.dose names the dose. Depends on the store,
 * jansson (event data), the clinic's sandbox (its parameters) and zone.c.
 */
#include "engine/compliance.h"

#include "core/grow.h"

#include <jansson.h>
#include <lauxlib.h>

#include <stdlib.h>
#include <string.h>

#define RG__MIN (60 * 1000LL)
#define RG__HOUR (60 * RG__MIN)
#define RG__DAY (24 * RG__HOUR)

/* ---- parameters ------------------------------------------------------------ */

void rg_compliance_defaults(rg_compliance_params *p)
{
    *p = (rg_compliance_params){
        .pre_dose_bp_within = 2 * RG__HOUR,
        .post_dose_bp_from = 30 * RG__MIN,
        .monitoring_min = 2 * RG__HOUR,
        .form_within = 7 * RG__DAY,
        .induction_weeks = 4,
        .assessment_window = 7 * RG__DAY,
        .response_fall = 0.5,
        .remission_below = 5,
    };
}

/* [-0, +0] One integer parameter of the params table at idx, if it is one. */
static void rg__param(lua_State *L, int idx, const char *name, rg_time *out)
{
    lua_pushstring(L, name);
    if (lua_rawget(L, idx) == LUA_TNUMBER && lua_isinteger(L, -1))
        *out = (rg_time)lua_tointeger(L, -1);
    lua_pop(L, 1);
}

/* [-2, +1, m] (clinic, params as light userdata) Reads the esketamine
 * protocols' parameters; pushes how many protocols were found. Runs under
 * rg_pcall: pushing the names may allocate. */
static int rg__read_params(lua_State *L)
{
    rg_clinic *c = lua_touserdata(L, 1);
    rg_compliance_params *p = lua_touserdata(L, 2);
    int found = 0;
    for (int i = 0; i < c->nprotos; i++) {
        const char *id = c->protos[i].id;
        if (strcmp(id, "esketamine.session") && strcmp(id, "esketamine.rems") &&
            strcmp(id, "esketamine.induction"))
            continue;
        found++;
        rg_clinic_push_protocol(c, i);
        lua_pushliteral(L, "params");
        if (lua_rawget(L, -2) == LUA_TTABLE) {
            int t = lua_gettop(L);
            rg_time weeks = p->induction_weeks;
            rg__param(L, t, "pre_dose_bp_within", &p->pre_dose_bp_within);
            rg__param(L, t, "post_dose_bp_from", &p->post_dose_bp_from);
            rg__param(L, t, "monitoring_min", &p->monitoring_min);
            rg__param(L, t, "form_within", &p->form_within);
            rg__param(L, t, "twice_weekly_weeks", &weeks);
            rg__param(L, t, "benefit_assessment_window", &p->assessment_window);
            if (weeks >= 0 && weeks <= 520)
                p->induction_weeks = (int)weeks;
        }
        lua_pop(L, 2);
    }
    lua_pushinteger(L, found);
    return 1;
}

int rg_compliance_params_of(rg_clinic *c, rg_compliance_params *p)
{
    lua_State *L = rg_sandbox_state(c->sb);
    char err[256];
    rg_sandbox_enter(c->sb);
    lua_pushcfunction(L, rg__read_params);
    lua_pushlightuserdata(L, c);
    lua_pushlightuserdata(L, p);
    int rc = rg_pcall(c->sb, 2, 1, err, sizeof err);
    rg_sandbox_leave(c->sb);
    if (rc)
        return RG_ENOMEM;
    int found = (int)lua_tointeger(L, -1);
    lua_pop(L, 1);
    return found ? RG_OK : RG_ENOTFOUND;
}

/* ---- the report -------------------------------------------------------------- */

enum { RG__FORM_IN_TIME, RG__FORM_LATE, RG__FORM_MISSING, RG__FORM_NOT_DUE };

typedef struct rg__session {
    char *patient, *id;
    rg_time at, ended, form_at;
    double dose_mg;
    int pre, post40, form; /* form: RG__FORM_* */
} rg__session;

typedef struct rg__course {
    char *patient;
    rg_time first_dose, end; /* end: of induction */
    int ended_early;         /* discharged before the end of induction */
    double baseline, outcome; /* PHQ-9 scores; < 0: none */
} rg__course;

struct rg_compliance {
    char *clinic;
    rg_time from, to, as_of;
    rg_compliance_params p;
    rg_calendar cal;
    rg__session *s;
    size_t ns, caps;
    rg__course *c;
    size_t nc, capc;
};

/* One event of a patient, as far as the report needs it. */
typedef struct rg__ev {
    rg_time at;
    char *id, *type;
    json_t *data; /* NULL when none */
} rg__ev;

typedef struct rg__evs {
    rg__ev *v;
    size_t n, cap;
    int nomem;
} rg__evs;

static int rg__collect(void *ud, const rg_stored_event *e)
{
    rg__evs *l = ud;
    if (l->n == l->cap) {
        size_t cap = l->cap ? 2 * l->cap : 64;
        rg__ev *v = realloc(l->v, cap * sizeof *v);
        if (!v) {
            l->nomem = 1;
            return 1;
        }
        l->v = v;
        l->cap = cap;
    }
    rg__ev *x = &l->v[l->n];
    x->at = e->at;
    x->id = strdup(e->id);
    x->type = strdup(e->type);
    x->data = e->data ? json_loads(e->data, 0, NULL) : NULL;
    if (!x->id || !x->type) {
        free(x->id);
        free(x->type);
        json_decref(x->data);
        l->nomem = 1;
        return 1;
    }
    l->n++;
    return 0;
}

static void rg__evs_free(rg__evs *l)
{
    for (size_t i = 0; i < l->n; i++) {
        free(l->v[i].id);
        free(l->v[i].type);
        json_decref(l->v[i].data);
    }
    free(l->v);
}

static const char *rg__str(const rg__ev *e, const char *field)
{
    return json_string_value(json_object_get(e->data, field));
}

/* data[field] as a number, or def. */
static double rg__num(const rg__ev *e, const char *field, double def)
{
    json_t *v = json_object_get(e->data, field);
    return json_is_number(v) ? json_number_value(v) : def;
}

static int rg__is(const rg__ev *e, const char *type) { return !strcmp(e->type, type); }

static int rg__vitals(const rg__ev *e, const char *phase)
{
    const char *ph = rg__str(e, "phase");
    return rg__is(e, "vitals") && ph && !strcmp(ph, phase);
}

static int rg__phq9(const rg__ev *e)
{
    const char *in = rg__str(e, "instrument");
    return rg__is(e, "assessment") && in && !strcmp(in, "phq9") &&
           json_is_number(json_object_get(e->data, "score"));
}

/* n days after t's local day, at the same local time (R.calendar_add). */
static rg_time rg__calendar_add(const rg_calendar *cal, rg_time t, int64_t days)
{
    return rg_calendar_at(cal, rg_calendar_day(cal, t) + days, rg_calendar_clock(cal, t));
}

static int rg__add_session(rg_compliance *r, const rg__session *s)
{
    rg__session *v = rg_grow(r->s, &r->caps, r->ns, sizeof *v, 64);
    if (!v)
        return RG_ENOMEM;
    r->s = v;
    r->s[r->ns] = *s;
    if (!(r->s[r->ns].patient = strdup(s->patient)) || !(r->s[r->ns].id = strdup(s->id))) {
        free(r->s[r->ns].patient);
        return RG_ENOMEM;
    }
    r->ns++;
    return RG_OK;
}

static int rg__add_course(rg_compliance *r, const rg__course *c)
{
    rg__course *v = rg_grow(r->c, &r->capc, r->nc, sizeof *v, 16);
    if (!v)
        return RG_ENOMEM;
    r->c = v;
    r->c[r->nc] = *c;
    if (!(r->c[r->nc].patient = strdup(c->patient)))
        return RG_ENOMEM;
    r->nc++;
    return RG_OK;
}

/* The sessions and courses of one patient's events. */
static int rg__patient(rg_compliance *r, const char *patient, const rg__evs *l)
{
    const rg_compliance_params *p = &r->p;
    for (size_t i = 0; i < l->n; i++) {
        const rg__ev *d = &l->v[i];
        if (!rg__is(d, "esketamine_dose") || d->at < r->from || d->at >= r->to)
            continue;
        rg_time next = RG_TIME_NONE;
        for (size_t j = i + 1; j < l->n && next == RG_TIME_NONE; j++)
            if (rg__is(&l->v[j], "esketamine_dose"))
                next = l->v[j].at;
        rg__session s = {.patient = (char *)patient, .id = d->id, .at = d->at,
                         .ended = RG_TIME_NONE, .form_at = RG_TIME_NONE,
                         .dose_mg = rg__num(d, "dose_mg", 0), .form = RG__FORM_MISSING};
        for (size_t j = i; j-- > 0;) /* the latest pre-dose reading before it */
            if (rg__vitals(&l->v[j], "pre")) {
                s.pre = d->at - l->v[j].at <= p->pre_dose_bp_within;
                break;
            }
        for (size_t j = i + 1; j < l->n; j++) {
            const rg__ev *e = &l->v[j];
            if (next != RG_TIME_NONE && e->at >= next)
                break;
            if (rg__vitals(e, "post") && e->at - d->at >= p->post_dose_bp_from)
                s.post40 = 1;
            if (rg__is(e, "monitoring_end") && s.ended == RG_TIME_NONE)
                s.ended = e->at;
        }
        for (size_t j = 0; j < l->n && s.form_at == RG_TIME_NONE; j++) {
            const char *dose = rg__str(&l->v[j], "dose");
            if (rg__is(&l->v[j], "rems_form") && dose && !strcmp(dose, d->id))
                s.form_at = l->v[j].at;
        }
        if (s.form_at != RG_TIME_NONE)
            s.form = s.form_at - d->at <= p->form_within ? RG__FORM_IN_TIME : RG__FORM_LATE;
        else if (d->at + p->form_within > r->as_of)
            s.form = RG__FORM_NOT_DUE;
        if (rg__add_session(r, &s))
            return RG_ENOMEM;
    }

    /* courses: from an enrolment in esketamine to a discharge (or the next enrolment) */
    for (size_t i = 0; i < l->n; i++) {
        const rg__ev *en = &l->v[i];
        const char *prog = rg__str(en, "program");
        if (!rg__is(en, "enrolled") || !prog || strcmp(prog, "esketamine"))
            continue;
        size_t stop = i + 1;
        while (stop < l->n && !rg__is(&l->v[stop], "enrolled") &&
               !rg__is(&l->v[stop], "discharged"))
            stop++;
        rg_time course_end = stop < l->n ? l->v[stop].at : RG_TIME_NONE;
        size_t first = i + 1;
        while (first < stop && !rg__is(&l->v[first], "esketamine_dose"))
            first++;
        if (first >= stop)
            continue;
        rg__course c = {.patient = (char *)patient, .first_dose = l->v[first].at,
                        .baseline = -1, .outcome = -1};
        c.end = rg__calendar_add(&r->cal, c.first_dose, 7LL * p->induction_weeks);
        if (c.end < r->from || c.end >= r->to)
            continue;
        c.ended_early = course_end != RG_TIME_NONE && course_end < c.end;
        for (size_t j = i + 1; j < stop; j++) {
            const rg__ev *e = &l->v[j];
            if (!rg__phq9(e))
                continue;
            if (e->at <= c.first_dose)
                c.baseline = rg__num(e, "score", -1); /* the latest at or before the first dose */
            else if (c.outcome < 0 && e->at >= c.end - p->assessment_window &&
                     e->at <= c.end + p->assessment_window)
                c.outcome = rg__num(e, "score", -1);
        }
        if (rg__add_course(r, &c))
            return RG_ENOMEM;
    }
    return RG_OK;
}

typedef struct rg__names {
    char **v;
    size_t n, cap;
    const char *clinic;
    int other, nomem; /* other: a patient of a later clinic was reached */
    char last[RG_EVENT_MAX_ID + 1];
} rg__names;

static int rg__name(void *ud, const char *clinic, const char *patient)
{
    rg__names *nm = ud;
    if (strcmp(clinic, nm->clinic)) {
        nm->other = 1;
        return 1;
    }
    snprintf(nm->last, sizeof nm->last, "%s", patient);
    if (nm->n == nm->cap) {
        size_t cap = nm->cap ? 2 * nm->cap : 64;
        char **v = realloc(nm->v, cap * sizeof *v);
        if (!v) {
            nm->nomem = 1;
            return 1;
        }
        nm->v = v;
        nm->cap = cap;
    }
    if (!(nm->v[nm->n] = strdup(patient))) {
        nm->nomem = 1;
        return 1;
    }
    nm->n++;
    return 0;
}

int rg_compliance_build(rg_compliance **out, rg_store *st, const char *clinic, rg_time from,
                        rg_time to, rg_time as_of, const rg_compliance_params *p,
                        const rg_calendar *cal)
{
    *out = NULL;
    rg_compliance *r = calloc(1, sizeof *r);
    if (!r || !(r->clinic = strdup(clinic))) {
        free(r);
        return RG_ENOMEM;
    }
    r->from = from;
    r->to = to;
    r->as_of = as_of;
    r->p = *p;
    if (cal)
        r->cal = *cal;
    else
        rg_calendar_default(&r->cal);

    /* the clinic's patients, a page at a time */
    rg__names nm = {.clinic = clinic};
    int rc = RG_OK;
    for (;;) {
        size_t before = nm.n;
        int got = rg_store_patients_page(st, clinic, nm.n ? nm.last : "", RG_TIME_NONE, 500,
                                         rg__name, &nm);
        if (got < 0 || nm.nomem) {
            rc = got < 0 ? got : RG_ENOMEM;
            break;
        }
        if (nm.other || nm.n == before || got < 500)
            break;
    }
    for (size_t i = 0; !rc && i < nm.n; i++) {
        rg__evs l = {0};
        int erc = rg_store_each_event_data(st, clinic, nm.v[i], rg__collect, &l);
        if (l.nomem)
            rc = RG_ENOMEM;
        else if (erc < 0)
            rc = erc;
        else
            rc = rg__patient(r, nm.v[i], &l);
        rg__evs_free(&l);
    }
    for (size_t i = 0; i < nm.n; i++)
        free(nm.v[i]);
    free(nm.v);
    if (rc) {
        rg_compliance_free(r);
        return rc;
    }
    *out = r;
    return RG_OK;
}

void rg_compliance_free(rg_compliance *r)
{
    if (!r)
        return;
    for (size_t i = 0; i < r->ns; i++) {
        free(r->s[i].patient);
        free(r->s[i].id);
    }
    for (size_t i = 0; i < r->nc; i++)
        free(r->c[i].patient);
    free(r->s);
    free(r->c);
    free(r->clinic);
    free(r);
}

/* ---- writing ------------------------------------------------------------------ */

typedef struct rg__counts {
    size_t sessions, pre, post40, both, monitored, in_time, late, missing, not_due;
    size_t courses, assessed, response, remission, ended_early;
} rg__counts;

static int rg__monitored(const rg_compliance *r, const rg__session *s)
{
    return s->ended != RG_TIME_NONE && s->ended - s->at >= r->p.monitoring_min;
}

static int rg__responded(const rg_compliance *r, const rg__course *c)
{
    return c->baseline > 0 && c->outcome >= 0 &&
           (c->baseline - c->outcome) >= r->p.response_fall * c->baseline;
}

static int rg__remitted(const rg_compliance *r, const rg__course *c)
{
    return c->outcome >= 0 && c->outcome < r->p.remission_below;
}

static rg__counts rg__count(const rg_compliance *r)
{
    rg__counts k = {0};
    for (size_t i = 0; i < r->ns; i++) {
        const rg__session *s = &r->s[i];
        k.sessions++;
        k.pre += s->pre;
        k.post40 += s->post40;
        k.both += s->pre && s->post40;
        k.monitored += rg__monitored(r, s);
        k.in_time += s->form == RG__FORM_IN_TIME;
        k.late += s->form == RG__FORM_LATE;
        k.missing += s->form == RG__FORM_MISSING;
        k.not_due += s->form == RG__FORM_NOT_DUE;
    }
    for (size_t i = 0; i < r->nc; i++) {
        const rg__course *c = &r->c[i];
        if (c->ended_early) {
            k.ended_early++;
            continue;
        }
        k.courses++;
        if (c->baseline >= 0 && c->outcome >= 0) {
            k.assessed++;
            k.response += rg__responded(r, c);
            k.remission += rg__remitted(r, c);
        }
    }
    return k;
}

/* "12 of 19 (63.2%)"; "0 of 0 (-)" */
static const char *rg__share(char *buf, size_t len, size_t n, size_t of)
{
    if (of)
        snprintf(buf, len, "%zu of %zu (%.1f%%)", n, of, 100.0 * (double)n / (double)of);
    else
        snprintf(buf, len, "%zu of 0 (-)", n);
    return buf;
}

static const char *rg__form_name(int form)
{
    static const char *const names[] = {"in time", "late", "missing", "not yet due"};
    return names[form];
}

static const char *rg__when(const rg_compliance *r, rg_time t, char buf[RG_TIME_BUFSZ])
{
    return rg_zone_display(r->cal.zone ? r->cal.zone : rg_zone_utc(), t, buf);
}

static const char *rg__days(char *buf, size_t len, rg_time d)
{
    snprintf(buf, len, "%.1f days", (double)d / (double)RG__DAY);
    return buf;
}

/* "PHQ-9 22 -> 4 (-82%): response, remission" and its variants */
static const char *rg__outcome(const rg_compliance *r, const rg__course *c, char *buf, size_t len)
{
    if (c->ended_early)
        snprintf(buf, len, "course ended before the end of induction");
    else if (c->baseline < 0 && c->outcome < 0)
        snprintf(buf, len, "no baseline PHQ-9 and no PHQ-9 at the end of induction");
    else if (c->baseline < 0)
        snprintf(buf, len, "PHQ-9 %g at the end of induction, no baseline", c->outcome);
    else if (c->outcome < 0)
        snprintf(buf, len, "baseline PHQ-9 %g, no PHQ-9 at the end of induction", c->baseline);
    else
        snprintf(buf, len, "PHQ-9 %g -> %g (%+.0f%%): %s, %s", c->baseline, c->outcome,
                 c->baseline > 0 ? 100.0 * (c->outcome - c->baseline) / c->baseline : 0.0,
                 rg__responded(r, c) ? "response" : "no response",
                 rg__remitted(r, c) ? "remission" : "no remission");
    return buf;
}

static void rg__text(const rg_compliance *r, FILE *out)
{
    char a[RG_TIME_BUFSZ], b[RG_TIME_BUFSZ], s1[64], s2[64];
    rg__counts k = rg__count(r);
    const rg_compliance_params *p = &r->p;
    fprintf(out, "Esketamine (Spravato REMS) compliance, clinic %s\n", r->clinic);
    fprintf(out, "period %s to %s%s%s\n", rg__when(r, r->from, a), rg__when(r, r->to, b),
            r->cal.zone && strcmp(rg_zone_name(r->cal.zone), "UTC") ? ", times in " : "",
            r->cal.zone && strcmp(rg_zone_name(r->cal.zone), "UTC") ? rg_zone_name(r->cal.zone)
                                                                     : "");
    fprintf(out, "counted by: a pre-dose reading within %g h before the dose, a post-dose reading "
                 "%g min or more after it, monitoring of %g h, the form within %g days, "
                 "induction of %d weeks\n\n",
            (double)p->pre_dose_bp_within / RG__HOUR, (double)p->post_dose_bp_from / RG__MIN,
            (double)p->monitoring_min / RG__HOUR, (double)p->form_within / RG__DAY,
            p->induction_weeks);
    fprintf(out, "%-44s %zu\n", "sessions (esketamine doses)", k.sessions);
    fprintf(out, "%-44s %s\n", "with a pre-dose blood pressure", rg__share(s1, 64, k.pre, k.sessions));
    fprintf(out, "%-44s %s\n", "with a 40-minute blood pressure", rg__share(s1, 64, k.post40, k.sessions));
    fprintf(out, "%-44s %s\n", "with both", rg__share(s1, 64, k.both, k.sessions));
    char label[64];
    snprintf(label, sizeof label, "monitored at least %g hours", (double)p->monitoring_min / RG__HOUR);
    fprintf(out, "%-44s %s\n", label, rg__share(s1, 64, k.monitored, k.sessions));
    size_t due = k.sessions - k.not_due;
    snprintf(label, sizeof label, "monitoring forms submitted within %g days",
             (double)p->form_within / RG__DAY);
    fprintf(out, "%-44s %s\n", label, rg__share(s1, 64, k.in_time, due));
    fprintf(out, "%-44s %zu late, %zu missing, %zu not yet due\n", "", k.late, k.missing, k.not_due);
    fprintf(out, "%-44s %zu (%zu assessed, %zu ended before)\n", "courses ending induction",
            k.courses, k.assessed, k.ended_early);
    fprintf(out, "%-44s %s\n", "PHQ-9 response (a fall of 50% or more)", rg__share(s1, 64, k.response, k.assessed));
    fprintf(out, "%-44s %s\n", "PHQ-9 remission (below 5)", rg__share(s2, 64, k.remission, k.assessed));

    if (k.late + k.missing) {
        fprintf(out, "\nmonitoring forms late or missing:\n");
        for (size_t i = 0; i < r->ns; i++) {
            const rg__session *s = &r->s[i];
            if (s->form != RG__FORM_LATE && s->form != RG__FORM_MISSING)
                continue;
            fprintf(out, "  %-12s %-16s dose %s: ", s->patient, s->id, rg__when(r, s->at, a));
            if (s->form == RG__FORM_LATE)
                fprintf(out, "submitted %s, %s after\n", rg__when(r, s->form_at, b),
                        rg__days(s1, 64, s->form_at - s->at));
            else
                fprintf(out, "missing (due %s)\n", rg__when(r, s->at + p->form_within, b));
        }
    }
    if (r->nc) {
        fprintf(out, "\nend of induction:\n");
        for (size_t i = 0; i < r->nc; i++) {
            char o[200];
            fprintf(out, "  %-12s %s: %s\n", r->c[i].patient, rg__when(r, r->c[i].end, a),
                    rg__outcome(r, &r->c[i], o, sizeof o));
        }
    }
    if (r->ns) {
        fprintf(out, "\nsessions:\n  %-12s %-16s %-24s %-4s %-6s %-10s %s\n", "PATIENT", "DOSE",
                "AT", "PRE", "40-MIN", "MONITORED", "FORM");
        for (size_t i = 0; i < r->ns; i++) {
            const rg__session *s = &r->s[i];
            char mon[32];
            if (s->ended == RG_TIME_NONE)
                snprintf(mon, sizeof mon, "not ended");
            else
                snprintf(mon, sizeof mon, "%lld min", (long long)((s->ended - s->at) / RG__MIN));
            fprintf(out, "  %-12s %-16s %-24s %-4s %-6s %-10s %s\n", s->patient, s->id,
                    rg__when(r, s->at, a), s->pre ? "yes" : "no", s->post40 ? "yes" : "no", mon,
                    rg__form_name(s->form));
        }
    }
}

/* A CSV field (RFC 4180): quoted when it holds a comma, quote or line break. */
static void rg__csv(FILE *out, const char *s, int last)
{
    if (strpbrk(s, ",\"\r\n")) {
        fputc('"', out);
        for (; *s; s++) {
            if (*s == '"')
                fputc('"', out);
            fputc(*s, out);
        }
        fputc('"', out);
    } else {
        fputs(s, out);
    }
    fputs(last ? "\r\n" : ",", out);
}

/* One row per session, then one per course ending induction (record says
 * which); the same columns for both, empty where they do not apply. */
static void rg__csv_all(const rg_compliance *r, FILE *out)
{
    char a[RG_TIME_BUFSZ], b[RG_TIME_BUFSZ], n1[32], n2[32];
    fputs("record,clinic,patient,dose,at,pre_dose_bp,bp_40_min,monitoring_minutes,"
          "monitored_2h,form,form_at,phq9_baseline,phq9_end_of_induction,response,remission\r\n",
          out);
    for (size_t i = 0; i < r->ns; i++) {
        const rg__session *s = &r->s[i];
        rg__csv(out, "session", 0);
        rg__csv(out, r->clinic, 0);
        rg__csv(out, s->patient, 0);
        rg__csv(out, s->id, 0);
        rg__csv(out, rg_time_format(s->at, a), 0);
        rg__csv(out, s->pre ? "yes" : "no", 0);
        rg__csv(out, s->post40 ? "yes" : "no", 0);
        if (s->ended == RG_TIME_NONE)
            n1[0] = '\0';
        else
            snprintf(n1, sizeof n1, "%lld", (long long)((s->ended - s->at) / RG__MIN));
        rg__csv(out, n1, 0);
        rg__csv(out, rg__monitored(r, s) ? "yes" : "no", 0);
        rg__csv(out, rg__form_name(s->form), 0);
        rg__csv(out, s->form_at == RG_TIME_NONE ? "" : rg_time_format(s->form_at, b), 0);
        fputs(",,,\r\n", out);
    }
    for (size_t i = 0; i < r->nc; i++) {
        const rg__course *c = &r->c[i];
        int both = !c->ended_early && c->baseline >= 0 && c->outcome >= 0;
        rg__csv(out, c->ended_early ? "induction_ended_early" : "induction", 0);
        rg__csv(out, r->clinic, 0);
        rg__csv(out, c->patient, 0);
        fputs(",", out);
        rg__csv(out, rg_time_format(c->end, a), 0);
        fputs(",,,,,,", out);
        snprintf(n1, sizeof n1, "%g", c->baseline);
        snprintf(n2, sizeof n2, "%g", c->outcome);
        rg__csv(out, c->baseline >= 0 ? n1 : "", 0);
        rg__csv(out, c->outcome >= 0 ? n2 : "", 0);
        rg__csv(out, !both ? "" : rg__responded(r, c) ? "yes" : "no", 0);
        rg__csv(out, !both ? "" : rg__remitted(r, c) ? "yes" : "no", 1);
    }
}

static void rg__html_text(FILE *out, const char *s)
{
    for (; *s; s++)
        switch (*s) {
        case '<': fputs("&lt;", out); break;
        case '>': fputs("&gt;", out); break;
        case '&': fputs("&amp;", out); break;
        case '"': fputs("&quot;", out); break;
        case '\'': fputs("&#39;", out); break;
        default: fputc(*s, out);
        }
}

static void rg__html_row(FILE *out, const char *label, const char *value)
{
    fputs("<tr><th scope=\"row\">", out);
    rg__html_text(out, label);
    fputs("</th><td>", out);
    rg__html_text(out, value);
    fputs("</td></tr>\n", out);
}

static void rg__html_cell(FILE *out, const char *s, const char *cls)
{
    fprintf(out, "<td%s%s%s>", cls ? " class=\"" : "", cls ? cls : "", cls ? "\"" : "");
    rg__html_text(out, s);
    fputs("</td>", out);
}

/* One self-contained page: inline CSS, no script, no external resource. */
static void rg__html(const rg_compliance *r, FILE *out)
{
    char a[RG_TIME_BUFSZ], b[RG_TIME_BUFSZ], s1[64];
    rg__counts k = rg__count(r);
    fputs("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
          "<title>Esketamine compliance: ", out);
    rg__html_text(out, r->clinic);
    fputs("</title>\n<style>\n"
          "body{font:14px/1.4 system-ui,sans-serif;margin:2em;color:#222}\n"
          "h1{font-size:1.4em}h2{font-size:1.1em;margin-top:2em}\n"
          "table{border-collapse:collapse}th,td{padding:.25em .8em;border-bottom:1px solid #ddd;"
          "text-align:left}\n"
          "td.no{color:#b00020;font-weight:600}td.yes{color:#1b5e20}\n"
          "p.note{color:#555}\n"
          "</style>\n</head>\n<body>\n<h1>Esketamine (Spravato REMS) compliance: ", out);
    rg__html_text(out, r->clinic);
    fputs("</h1>\n<p>", out);
    fprintf(out, "%s to %s", rg__when(r, r->from, a), rg__when(r, r->to, b));
    fputs("</p>\n<table>\n", out);
    snprintf(s1, sizeof s1, "%zu", k.sessions);
    rg__html_row(out, "sessions (esketamine doses)", s1);
    rg__html_row(out, "with a pre-dose blood pressure", rg__share(s1, 64, k.pre, k.sessions));
    rg__html_row(out, "with a 40-minute blood pressure", rg__share(s1, 64, k.post40, k.sessions));
    rg__html_row(out, "with both", rg__share(s1, 64, k.both, k.sessions));
    char label[64];
    snprintf(label, sizeof label, "monitored at least %g hours",
             (double)r->p.monitoring_min / RG__HOUR);
    rg__html_row(out, label, rg__share(s1, 64, k.monitored, k.sessions));
    snprintf(label, sizeof label, "monitoring forms submitted within %g days",
             (double)r->p.form_within / RG__DAY);
    rg__html_row(out, label, rg__share(s1, 64, k.in_time, k.sessions - k.not_due));
    snprintf(s1, sizeof s1, "%zu late, %zu missing, %zu not yet due", k.late, k.missing, k.not_due);
    rg__html_row(out, "forms not in time", s1);
    rg__html_row(out, "PHQ-9 response at the end of induction (a fall of 50% or more)",
                 rg__share(s1, 64, k.response, k.assessed));
    rg__html_row(out, "PHQ-9 remission at the end of induction (below 5)",
                 rg__share(s1, 64, k.remission, k.assessed));
    fputs("</table>\n", out);

    fputs("<h2>Monitoring forms late or missing</h2>\n", out);
    if (!(k.late + k.missing)) {
        fputs("<p>None.</p>\n", out);
    } else {
        fputs("<table>\n<tr><th>patient</th><th>dose</th><th>given</th><th>form</th></tr>\n", out);
        for (size_t i = 0; i < r->ns; i++) {
            const rg__session *s = &r->s[i];
            if (s->form != RG__FORM_LATE && s->form != RG__FORM_MISSING)
                continue;
            char what[120];
            if (s->form == RG__FORM_LATE)
                snprintf(what, sizeof what, "submitted %s (%s after)", rg__when(r, s->form_at, b),
                         rg__days(s1, 64, s->form_at - s->at));
            else
                snprintf(what, sizeof what, "missing (due %s)",
                         rg__when(r, s->at + r->p.form_within, b));
            fputs("<tr>", out);
            rg__html_cell(out, s->patient, NULL);
            rg__html_cell(out, s->id, NULL);
            rg__html_cell(out, rg__when(r, s->at, a), NULL);
            rg__html_cell(out, what, "no");
            fputs("</tr>\n", out);
        }
        fputs("</table>\n", out);
    }

    fputs("<h2>End of induction</h2>\n", out);
    if (!r->nc) {
        fputs("<p>No course ended its induction in this period.</p>\n", out);
    } else {
        fputs("<table>\n<tr><th>patient</th><th>end of induction</th><th>PHQ-9</th></tr>\n", out);
        for (size_t i = 0; i < r->nc; i++) {
            char o[200];
            fputs("<tr>", out);
            rg__html_cell(out, r->c[i].patient, NULL);
            rg__html_cell(out, rg__when(r, r->c[i].end, a), NULL);
            rg__html_cell(out, rg__outcome(r, &r->c[i], o, sizeof o), NULL);
            fputs("</tr>\n", out);
        }
        fputs("</table>\n", out);
    }

    fputs("<h2>Sessions</h2>\n", out);
    if (!r->ns) {
        fputs("<p>No esketamine dose in this period.</p>\n", out);
    } else {
        fputs("<table>\n<tr><th>patient</th><th>dose</th><th>given</th><th>pre-dose BP</th>"
              "<th>40-minute BP</th><th>monitored</th><th>form</th></tr>\n", out);
        for (size_t i = 0; i < r->ns; i++) {
            const rg__session *s = &r->s[i];
            char mon[32];
            if (s->ended == RG_TIME_NONE)
                snprintf(mon, sizeof mon, "not ended");
            else
                snprintf(mon, sizeof mon, "%lld min", (long long)((s->ended - s->at) / RG__MIN));
            fputs("<tr>", out);
            rg__html_cell(out, s->patient, NULL);
            rg__html_cell(out, s->id, NULL);
            rg__html_cell(out, rg__when(r, s->at, a), NULL);
            rg__html_cell(out, s->pre ? "yes" : "no", s->pre ? "yes" : "no");
            rg__html_cell(out, s->post40 ? "yes" : "no", s->post40 ? "yes" : "no");
            rg__html_cell(out, mon, rg__monitored(r, s) ? "yes" : "no");
            rg__html_cell(out, rg__form_name(s->form),
                          s->form == RG__FORM_IN_TIME || s->form == RG__FORM_NOT_DUE ? "yes" : "no");
            fputs("</tr>\n", out);
        }
        fputs("</table>\n", out);
    }
    fputs("<p class=\"note\">Counted from the recorded events by the clinic's esketamine "
          "parameters. Illustrative, not medical or regulatory advice.</p>\n</body>\n</html>\n",
          out);
}

int rg_compliance_format_ok(const char *format)
{
    return !strcmp(format, "text") || !strcmp(format, "csv") || !strcmp(format, "html");
}

const char *rg_compliance_media_type(const char *format)
{
    return !strcmp(format, "csv")    ? "text/csv; charset=utf-8"
           : !strcmp(format, "html") ? "text/html; charset=utf-8"
                                     : "text/plain; charset=utf-8";
}

int rg_compliance_write(const rg_compliance *r, const char *format, FILE *out)
{
    if (!strcmp(format, "text"))
        rg__text(r, out);
    else if (!strcmp(format, "csv"))
        rg__csv_all(r, out);
    else if (!strcmp(format, "html"))
        rg__html(r, out);
    else
        return RG_EINVAL;
    return ferror(out) ? RG_EIO : RG_OK;
}
