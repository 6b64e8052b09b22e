/*
 * compliance.c - the esketamine (Spravato REMS) compliance report (see
 * compliance.h).
 *
 * One pass per patient over the stored events (in time order, current
 * versions) builds the sessions (one per esketamine_dose) and the courses
 * (one per `enrolled` with program "esketamine", until `discharged`); the
 * counting is here too; present/compliance.c writes the report as text, CSV
 * or HTML. Session and course follow the
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
    rg__ev *v = rg_grow(l->v, &l->cap, l->n, sizeof *v, 64);
    if (!v) {
        l->nomem = 1;
        return 1;
    }
    l->v = v;
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

static int rg__add_session(rg_compliance *r, const rg_compliance_session *s)
{
    rg_compliance_session *v = rg_grow(r->s, &r->caps, r->ns, sizeof *v, 64);
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

static int rg__add_course(rg_compliance *r, const rg_compliance_course *c)
{
    rg_compliance_course *v = rg_grow(r->c, &r->capc, r->nc, sizeof *v, 16);
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
        rg_compliance_session s = {.patient = (char *)patient, .id = d->id, .at = d->at,
                         .ended = RG_TIME_NONE, .form_at = RG_TIME_NONE,
                         .dose_mg = rg__num(d, "dose_mg", 0), .form = RG_COMPLIANCE_FORM_MISSING};
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
            s.form = s.form_at - d->at <= p->form_within ? RG_COMPLIANCE_FORM_IN_TIME : RG_COMPLIANCE_FORM_LATE;
        else if (d->at + p->form_within > r->as_of)
            s.form = RG_COMPLIANCE_FORM_NOT_DUE;
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
        rg_compliance_course c = {.patient = (char *)patient, .first_dose = l->v[first].at,
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
    char **v = rg_grow(nm->v, &nm->cap, nm->n, sizeof *v, 64);
    if (!v) {
        nm->nomem = 1;
        return 1;
    }
    nm->v = v;
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

/* ---- counting ---------------------------------------------------------------- */

int rg_compliance_monitored(const rg_compliance *r, const rg_compliance_session *s)
{
    return s->ended != RG_TIME_NONE && s->ended - s->at >= r->p.monitoring_min;
}

int rg_compliance_responded(const rg_compliance *r, const rg_compliance_course *c)
{
    return c->baseline > 0 && c->outcome >= 0 &&
           (c->baseline - c->outcome) >= r->p.response_fall * c->baseline;
}

int rg_compliance_remitted(const rg_compliance *r, const rg_compliance_course *c)
{
    return c->outcome >= 0 && c->outcome < r->p.remission_below;
}

rg_compliance_counts rg_compliance_count(const rg_compliance *r)
{
    rg_compliance_counts k = {0};
    for (size_t i = 0; i < r->ns; i++) {
        const rg_compliance_session *s = &r->s[i];
        k.sessions++;
        k.pre += s->pre;
        k.post40 += s->post40;
        k.both += s->pre && s->post40;
        k.monitored += rg_compliance_monitored(r, s);
        k.in_time += s->form == RG_COMPLIANCE_FORM_IN_TIME;
        k.late += s->form == RG_COMPLIANCE_FORM_LATE;
        k.missing += s->form == RG_COMPLIANCE_FORM_MISSING;
        k.not_due += s->form == RG_COMPLIANCE_FORM_NOT_DUE;
    }
    for (size_t i = 0; i < r->nc; i++) {
        const rg_compliance_course *c = &r->c[i];
        if (c->ended_early) {
            k.ended_early++;
            continue;
        }
        k.courses++;
        if (c->baseline >= 0 && c->outcome >= 0) {
            k.assessed++;
            k.response += rg_compliance_responded(r, c);
            k.remission += rg_compliance_remitted(r, c);
        }
    }
    return k;
}
