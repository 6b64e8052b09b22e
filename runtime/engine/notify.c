/*
 * notify.c - the notification policy and its planner (see notify.h).
 *
 * rg_notify_parse checks and copies the policy from JSON; every error names
 * the field and what was expected. rg_notify_plan is pure: for each opened
 * alert it takes the first matching route, lays out its steps and repeats
 * from the alert's notification time, drops what falls after the alert's
 * resolution, its acknowledgement or the horizon, marks what an open
 * inhibiting alert holds back, then (routes with group_by = "patient")
 * sends one notification for what falls due together for one patient and
 * records the others as grouped. Depends on jansson and zone.c.
 */
#include "engine/notify.h"

#include "engine/clinic.h"
#include "engine/engine.h"
#include "core/grow.h"
#include "store/store.h"
#include "core/zone.h"

#include <jansson.h>

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const rg__match_fields[4] = {"severity", "rule", "protocol", "patient"};

static int rg__bad(char *err, size_t errlen, char *needle, size_t nlen, const char *near,
                   const char *fmt, ...) __attribute__((format(printf, 6, 7)));
static int rg__bad(char *err, size_t errlen, char *needle, size_t nlen, const char *near,
                   const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
    snprintf(needle, nlen, "%s", near ? near : "notify");
    return RG_EINVAL;
}

static void rg__free_list(char **l)
{
    for (int i = 0; l && l[i]; i++)
        free(l[i]);
    free(l);
}

static void rg__free_match(rg_notify_match *m)
{
    for (int i = 0; i < 4; i++)
        rg__free_list(m->field[i]);
}

void rg_notify_free(rg_notify_policy *p)
{
    if (!p)
        return;
    for (int i = 0; i < p->nreceivers; i++) {
        free(p->receivers[i].name);
        free(p->receivers[i].target);
    }
    free(p->receivers);
    for (int i = 0; i < p->nschedules; i++) {
        free(p->schedules[i].name);
        free(p->schedules[i].rotation);
        free(p->schedules[i].overrides);
    }
    free(p->schedules);
    for (int i = 0; i < p->nroutes; i++) {
        rg__free_match(&p->routes[i].match);
        free(p->routes[i].steps);
    }
    free(p->routes);
    for (int i = 0; i < p->ninhibits; i++) {
        rg__free_match(&p->inhibits[i].when);
        rg__free_match(&p->inhibits[i].hold);
    }
    free(p->inhibits);
    free(p->smtp_url);
    free(p->smtp_from);
    free(p);
}

/* A list as jansson sees a Lua list: an array, or an object with keys "1".."n". */
static json_t *rg__item(json_t *l, size_t i)
{
    if (json_is_array(l))
        return json_array_get(l, i);
    char k[24];
    snprintf(k, sizeof k, "%zu", i + 1);
    return json_is_object(l) ? json_object_get(l, k) : NULL;
}

static size_t rg__len(json_t *l)
{
    size_t n = 0;
    if (json_is_array(l))
        return json_array_size(l);
    while (json_is_object(l) && rg__item(l, n))
        n++;
    return json_is_object(l) && n == json_object_size(l) ? n : (size_t)-1;
}

/* Unknown keys of object o (not in known) are an error naming what. */
static int rg__only(json_t *o, const char *const *known, const char *what, char *err,
                    size_t errlen, char *needle, size_t nlen)
{
    const char *k;
    json_t *v;
    json_object_foreach(o, k, v) {
        int ok = 0;
        for (int i = 0; known[i] && !ok; i++)
            ok = !strcmp(k, known[i]);
        if (!ok) {
            char list[200] = "";
            size_t w = 0;
            for (int i = 0; known[i] && w < sizeof list; i++)
                w += (size_t)snprintf(list + w, sizeof list - w, "%s%s", i ? ", " : "",
                                      known[i]);
            return rg__bad(err, errlen, needle, nlen, k, "%s: unknown field '%s' (known: %s)",
                           what, k, list);
        }
    }
    return RG_OK;
}

static int rg__match(json_t *j, rg_notify_match *m, const char *what, char *err, size_t errlen,
                     char *needle, size_t nlen)
{
    static const char *const known[] = {"severity", "rule", "protocol", "patient", NULL};
    if (!json_is_object(j))
        return rg__bad(err, errlen, needle, nlen, what, "%s must be a table such as "
                       "{ severity = \"critical\" } (fields: severity, rule, protocol, patient)",
                       what);
    int rc = rg__only(j, known, what, err, errlen, needle, nlen);
    for (int f = 0; f < 4 && !rc; f++) {
        json_t *v = json_object_get(j, rg__match_fields[f]);
        if (!v)
            continue;
        size_t n = json_is_string(v) ? 1 : rg__len(v);
        if (n == (size_t)-1 || n == 0 || !(m->field[f] = calloc(n + 1, sizeof(char *))))
            return rg__bad(err, errlen, needle, nlen, rg__match_fields[f],
                           "%s.%s must be a string or a list of strings", what,
                           rg__match_fields[f]);
        for (size_t i = 0; i < n; i++) {
            json_t *s = json_is_string(v) ? v : rg__item(v, i);
            if (!json_is_string(s))
                return rg__bad(err, errlen, needle, nlen, rg__match_fields[f],
                               "%s.%s must be a string or a list of strings", what,
                               rg__match_fields[f]);
            if (f == 0 && strcmp(json_string_value(s), "info") &&
                strcmp(json_string_value(s), "warning") && strcmp(json_string_value(s), "critical"))
                return rg__bad(err, errlen, needle, nlen, json_string_value(s),
                               "%s.severity: '%s' is not a severity (info, warning, critical)",
                               what, json_string_value(s));
            if (!(m->field[f][i] = strdup(json_string_value(s))))
                return RG_ENOMEM;
        }
    }
    return rc;
}

/* A duration in milliseconds (R.minutes(15)), positive. */
static int rg__duration(json_t *v, const char *what, int zero_ok, rg_time *out, char *err,
                        size_t errlen, char *needle, size_t nlen, const char *near)
{
    if (!json_is_integer(v) || json_integer_value(v) < (zero_ok ? 0 : 1))
        return rg__bad(err, errlen, needle, nlen, near, "%s must be a duration such as "
                       "R.minutes(15)%s", what, zero_ok ? "" : ", more than zero");
    if (json_integer_value(v) % RG_MS_SECOND)
        return rg__bad(err, errlen, needle, nlen, near, "%s must be whole seconds (write "
                       "R.minutes(15) or R.seconds(30), not a bare number of milliseconds)",
                       what);
    *out = json_integer_value(v);
    return RG_OK;
}

static int rg__receiver_index(const rg_notify_policy *p, const char *name)
{
    for (int i = 0; i < p->nreceivers; i++)
        if (!strcmp(p->receivers[i].name, name))
            return i;
    return -1;
}

static int rg__parse_receivers(json_t *r, rg_notify_policy *p, char *err, size_t errlen,
                               char *needle, size_t nlen)
{
    static const char *const kinds[] = {"webhook", "email", "sms", "role", NULL};
    if (!json_is_object(r) || !json_object_size(r))
        return rg__bad(err, errlen, needle, nlen, "receivers", "notify.receivers must be a "
                       "table of name -> { webhook = url } | { email = address } | { sms = url }"
                       " | { role = name }");
    if (!(p->receivers = calloc(json_object_size(r), sizeof *p->receivers)))
        return RG_ENOMEM;
    const char *name;
    json_t *v;
    json_object_foreach(r, name, v) {
        char what[200];
        snprintf(what, sizeof what, "notify.receivers.%s", name);
        if (!json_is_object(v) || json_object_size(v) != 1)
            return rg__bad(err, errlen, needle, nlen, name, "%s must be one of { webhook = url"
                           " }, { email = address }, { sms = url }, { role = name }", what);
        int rc = rg__only(v, kinds, what, err, errlen, needle, nlen);
        if (rc)
            return rc;
        const char *kind = json_object_iter_key(json_object_iter(v));
        json_t *t = json_object_iter_value(json_object_iter(v));
        int k = 0;
        while (strcmp(kinds[k], kind))
            k++;
        const char *s = json_string_value(t);
        if (!s || !*s)
            return rg__bad(err, errlen, needle, nlen, name, "%s.%s must be a non-empty string",
                           what, kind);
        if ((k == RG_NOTIFY_WEBHOOK || k == RG_NOTIFY_SMS) && strncmp(s, "http://", 7) &&
            strncmp(s, "https://", 8))
            return rg__bad(err, errlen, needle, nlen, s, "%s.%s must be an http:// or "
                           "https:// URL, not '%s'", what, kind, s);
        if (k == RG_NOTIFY_EMAIL && (!strchr(s, '@') || strchr(s, ' ') || strchr(s, '\n') ||
                                     strchr(s, '\r') || strchr(s, '<') || strchr(s, '>')))
            return rg__bad(err, errlen, needle, nlen, s, "%s.email must be an address such "
                           "as \"dr.lee@example.org\", not '%s'", what, s);
        rg_notify_receiver *rv = &p->receivers[p->nreceivers++];
        rv->kind = k;
        if (!(rv->name = strdup(name)) || !(rv->target = strdup(s)))
            return RG_ENOMEM;
    }
    return RG_OK;
}

static int rg__parse_route(json_t *j, int idx, rg_notify_policy *p, rg_notify_route *r,
                           char *err, size_t errlen, char *needle, size_t nlen)
{
    static const char *const known[] = {"match", "steps", "repeat_every", "repeat_times",
                                        "group_by", "hold_down", "count", NULL};
    static const char *const sknown[] = {"to", "after", NULL};
    char what[120];
    snprintf(what, sizeof what, "notify.routes[%d]", idx + 1);
    if (!json_is_object(j))
        return rg__bad(err, errlen, needle, nlen, "routes", "%s must be a table such as "
                       "{ match = { severity = \"critical\" }, steps = { { to = \"desk\" } } }",
                       what);
    int rc = rg__only(j, known, what, err, errlen, needle, nlen);
    if (rc)
        return rc;
    json_t *m = json_object_get(j, "match");
    char mwhat[140];
    snprintf(mwhat, sizeof mwhat, "%s.match", what);
    if (m && (rc = rg__match(m, &r->match, mwhat, err, errlen, needle, nlen)))
        return rc;
    json_t *steps = json_object_get(j, "steps");
    size_t n = rg__len(steps);
    if (!steps || n == (size_t)-1 || n == 0)
        return rg__bad(err, errlen, needle, nlen, "steps", "%s.steps must be a list of "
                       "{ to = \"receiver\", after = R.minutes(15) }, at least one", what);
    if (!(r->steps = calloc(n, sizeof *r->steps)))
        return RG_ENOMEM;
    for (size_t i = 0; i < n; i++) {
        json_t *s = rg__item(steps, i);
        char swhat[160];
        snprintf(swhat, sizeof swhat, "%s.steps[%zu]", what, i + 1);
        if (!json_is_object(s))
            return rg__bad(err, errlen, needle, nlen, "steps", "%s must be a table "
                           "{ to = \"receiver\", after = R.minutes(15) }", swhat);
        if ((rc = rg__only(s, sknown, swhat, err, errlen, needle, nlen)))
            return rc;
        const char *to = json_string_value(json_object_get(s, "to"));
        if (!to)
            return rg__bad(err, errlen, needle, nlen, "to", "%s.to must name a receiver",
                           swhat);
        int ri = rg__receiver_index(p, to);
        if (ri < 0)
            return rg__bad(err, errlen, needle, nlen, to, "%s.to: no receiver named '%s' "
                           "in notify.receivers", swhat, to);
        rg_notify_step *st = &r->steps[r->nsteps++];
        st->receiver = ri;
        json_t *after = json_object_get(s, "after");
        char awhat[180];
        snprintf(awhat, sizeof awhat, "%s.after", swhat);
        if (after && (rc = rg__duration(after, awhat, 1, &st->after, err, errlen, needle, nlen,
                                        "after")))
            return rc;
        if (i > 0 && st->after <= r->steps[i - 1].after)
            return rg__bad(err, errlen, needle, nlen, "after", "%s must be later than the "
                           "step before (each step's after counts from the alert's opening)",
                           awhat);
    }
    json_t *every = json_object_get(j, "repeat_every"), *times = json_object_get(j, "repeat_times");
    if (every) {
        snprintf(mwhat, sizeof mwhat, "%s.repeat_every", what);
        if ((rc = rg__duration(every, mwhat, 0, &r->repeat_every, err, errlen, needle, nlen,
                               "repeat_every")))
            return rc;
    }
    if (times) {
        if (!json_is_integer(times) || json_integer_value(times) < 0 ||
            json_integer_value(times) > 1000)
            return rg__bad(err, errlen, needle, nlen, "repeat_times", "%s.repeat_times must be"
                           " a whole number from 0 to 1000", what);
        r->repeat_times = (int)json_integer_value(times);
    }
    if ((every != NULL) != (times != NULL))
        return rg__bad(err, errlen, needle, nlen, every ? "repeat_every" : "repeat_times",
                       "%s: repeat_every and repeat_times go together", what);
    json_t *hd = json_object_get(j, "hold_down");
    if (hd) {
        snprintf(mwhat, sizeof mwhat, "%s.hold_down", what);
        if ((rc = rg__duration(hd, mwhat, 0, &r->hold_down, err, errlen, needle, nlen,
                               "hold_down")))
            return rc;
    }
    json_t *g = json_object_get(j, "group_by");
    if (g) {
        if (!json_is_string(g) || strcmp(json_string_value(g), "patient"))
            return rg__bad(err, errlen, needle, nlen, "group_by", "%s.group_by must be "
                           "\"patient\"", what);
        r->group_by_patient = 1;
    }
    json_t *cnt = json_object_get(j, "count");
    if (cnt) {
        const char *cs = json_string_value(cnt);
        if (!cs || (strcmp(cs, "wall clock") && strcmp(cs, "opening hours")))
            return rg__bad(err, errlen, needle, nlen, "count", "%s.count must be \"wall clock\""
                           " or \"opening hours\"", what);
        r->count_open = !strcmp(cs, "opening hours");
    }
    return RG_OK;
}

/* "YYYY-MM-DDTHH:MM" in the clinic's time, as local wall-clock ms. */
static int rg__local(const char *s, int64_t *out)
{
    char full[40], why[100];
    rg_time t;
    if (!s || strlen(s) != 16 || s[10] != 'T')
        return RG_EINVAL;
    snprintf(full, sizeof full, "%s:00Z", s);
    if (rg_time_parse(full, strlen(full), &t, NULL, why, sizeof why))
        return RG_EINVAL;
    *out = t;
    return RG_OK;
}

/* The receiver a schedule names: an existing receiver that is not a role. */
static int rg__member(const rg_notify_policy *p, json_t *v, const char *what, int *out,
                      char *err, size_t errlen, char *needle, size_t nlen)
{
    const char *name = json_string_value(v);
    int r = name ? rg__receiver_index(p, name) : -1;
    if (r < 0)
        return rg__bad(err, errlen, needle, nlen, name ? name : "schedules", "%s must name a "
                       "receiver of notify.receivers%s%s%s", what, name ? ", not '" : "",
                       name ? name : "", name ? "'" : "");
    if (p->receivers[r].kind == RG_NOTIFY_ROLE)
        return rg__bad(err, errlen, needle, nlen, name, "%s: '%s' is itself a role; name the "
                       "receivers who take turns", what, name);
    *out = r;
    return RG_OK;
}

static int rg__parse_schedules(json_t *sch, rg_notify_policy *p, char *err, size_t errlen,
                               char *needle, size_t nlen)
{
    static const char *const known[] = {"rotation", "start", "every", "overrides", NULL};
    static const char *const ok[] = {"from", "to", "who", NULL};
    if (!json_is_object(sch))
        return rg__bad(err, errlen, needle, nlen, "schedules", "notify.schedules must be a "
                       "table of role -> { rotation = { \"ana\", \"ben\" }, start = "
                       "\"2026-03-02T08:00\", every = R.days(7) }");
    if (!(p->schedules = calloc(json_object_size(sch) + 1, sizeof *p->schedules)))
        return RG_ENOMEM;
    const char *name;
    json_t *v;
    json_object_foreach(sch, name, v) {
        char what[200], w2[240];
        int rc;
        snprintf(what, sizeof what, "notify.schedules[\"%s\"]", name);
        rg_notify_schedule *s = &p->schedules[p->nschedules++];
        if (!(s->name = strdup(name)))
            return RG_ENOMEM;
        if (!json_is_object(v))
            return rg__bad(err, errlen, needle, nlen, name, "%s must be { rotation = { ... }, "
                           "start = \"2026-03-02T08:00\", every = R.days(7), overrides = "
                           "{ ... } }", what);
        if ((rc = rg__only(v, known, what, err, errlen, needle, nlen)))
            return rc;
        json_t *rot = json_object_get(v, "rotation");
        size_t n = rg__len(rot);
        if (!rot || n == (size_t)-1 || n == 0)
            return rg__bad(err, errlen, needle, nlen, "rotation", "%s.rotation must be a list "
                           "of receivers who take turns, at least one", what);
        if (!(s->rotation = calloc(n, sizeof *s->rotation)))
            return RG_ENOMEM;
        for (size_t i = 0; i < n; i++, s->nrotation++) {
            snprintf(w2, sizeof w2, "%s.rotation[%zu]", what, i + 1);
            if ((rc = rg__member(p, rg__item(rot, i), w2, &s->rotation[i], err, errlen, needle,
                                 nlen)))
                return rc;
        }
        const char *start = json_string_value(json_object_get(v, "start"));
        if (rg__local(start, &s->start))
            return rg__bad(err, errlen, needle, nlen, start ? start : "start", "%s.start must "
                           "be a local time of the clinic \"YYYY-MM-DDTHH:MM\" (the first "
                           "handoff)", what);
        snprintf(w2, sizeof w2, "%s.every", what);
        if ((rc = rg__duration(json_object_get(v, "every"), w2, 0, &s->every, err, errlen,
                               needle, nlen, "every")))
            return rc;
        json_t *ov = json_object_get(v, "overrides");
        n = ov ? rg__len(ov) : 0;
        if (n == (size_t)-1)
            return rg__bad(err, errlen, needle, nlen, "overrides", "%s.overrides must be a list"
                           " of { from = \"2026-03-10T08:00\", to = \"2026-03-11T08:00\", "
                           "who = \"receiver\" }", what);
        if (n && !(s->overrides = calloc(n, sizeof *s->overrides)))
            return RG_ENOMEM;
        for (size_t i = 0; i < n; i++) {
            json_t *o = rg__item(ov, i);
            rg_notify_override *x = &s->overrides[s->noverrides++];
            snprintf(w2, sizeof w2, "%s.overrides[%zu]", what, i + 1);
            if (!json_is_object(o))
                return rg__bad(err, errlen, needle, nlen, "overrides", "%s must be { from = "
                               "\"2026-03-10T08:00\", to = \"2026-03-11T08:00\", who = "
                               "\"receiver\" }", w2);
            if ((rc = rg__only(o, ok, w2, err, errlen, needle, nlen)))
                return rc;
            const char *from = json_string_value(json_object_get(o, "from")),
                       *to = json_string_value(json_object_get(o, "to"));
            if (rg__local(from, &x->from) || rg__local(to, &x->to) || x->to <= x->from)
                return rg__bad(err, errlen, needle, nlen, from ? from : "overrides", "%s: from "
                               "and to must be local times \"YYYY-MM-DDTHH:MM\", to after from",
                               w2);
            char w3[260];
            snprintf(w3, sizeof w3, "%s.who", w2);
            if ((rc = rg__member(p, json_object_get(o, "who"), w3, &x->receiver, err, errlen,
                                 needle, nlen)))
                return rc;
        }
    }
    return RG_OK;
}

int rg_notify_on_call(const rg_notify_policy *p, int r, rg_time t)
{
    if (p->receivers[r].kind != RG_NOTIFY_ROLE)
        return r;
    const rg_notify_schedule *s = NULL;
    for (int i = 0; i < p->nschedules && !s; i++)
        if (!strcmp(p->schedules[i].name, p->receivers[r].target))
            s = &p->schedules[i];
    if (!s) /* rg_notify_parse refuses such a policy */
        return r;
    int64_t local = t + (int64_t)rg_zone_offset(p->zone ? p->zone : rg_zone_utc(), t) * 1000;
    for (int i = s->noverrides - 1; i >= 0; i--) /* the last override listed wins */
        if (s->overrides[i].from <= local && local < s->overrides[i].to)
            return s->overrides[i].receiver;
    int64_t turns = (local - s->start) / s->every;
    if ((local - s->start) % s->every < 0)
        turns--; /* before the start: the rotation runs backwards too */
    int64_t k = turns % s->nrotation;
    return s->rotation[k < 0 ? k + s->nrotation : k];
}

int rg_notify_parse(json_t *j, rg_notify_policy **out, char *err, size_t errlen, char *needle,
                    size_t nlen)
{
    static const char *const known[] = {"receivers", "schedules", "routes", "inhibit", "smtp",
                                        NULL};
    *out = NULL;
    if (!json_is_object(j))
        return rg__bad(err, errlen, needle, nlen, "notify", "notify must be a table { receivers"
                       " = { ... }, routes = { ... }, inhibit = { ... } }");
    rg_notify_policy *p = calloc(1, sizeof *p);
    if (!p)
        return RG_ENOMEM;
    rg_calendar_default(&p->cal);
    int rc = rg__only(j, known, "notify", err, errlen, needle, nlen);
    if (!rc)
        rc = rg__parse_receivers(json_object_get(j, "receivers"), p, err, errlen, needle, nlen);
    json_t *sch = json_object_get(j, "schedules");
    if (!rc && sch)
        rc = rg__parse_schedules(sch, p, err, errlen, needle, nlen);
    for (int i = 0; !rc && i < p->nreceivers; i++) {
        int found = 0;
        for (int k = 0; k < p->nschedules && !found; k++)
            found = !strcmp(p->schedules[k].name, p->receivers[i].target);
        if (p->receivers[i].kind == RG_NOTIFY_ROLE && !found)
            rc = rg__bad(err, errlen, needle, nlen, p->receivers[i].target, "notify.receivers.%s"
                         ".role: no schedule named '%s' in notify.schedules",
                         p->receivers[i].name, p->receivers[i].target);
    }
    json_t *smtp = json_object_get(j, "smtp");
    if (!rc && smtp) {
        static const char *const sk[] = {"url", "from", NULL};
        const char *url = json_string_value(json_object_get(smtp, "url")),
                   *from = json_string_value(json_object_get(smtp, "from"));
        if (!json_is_object(smtp))
            rc = rg__bad(err, errlen, needle, nlen, "smtp", "notify.smtp must be { url = "
                         "\"smtp://mail.example:587\", from = \"regimen@clinic.example\" }");
        if (!rc)
            rc = rg__only(smtp, sk, "notify.smtp", err, errlen, needle, nlen);
        if (!rc && (!url || (strncmp(url, "smtp://", 7) && strncmp(url, "smtps://", 8))))
            rc = rg__bad(err, errlen, needle, nlen, url ? url : "smtp", "notify.smtp.url must "
                         "be an smtp:// or smtps:// URL such as \"smtp://mail.example:587\"");
        if (!rc && (!from || !strchr(from, '@') || strpbrk(from, " <>\r\n")))
            rc = rg__bad(err, errlen, needle, nlen, from ? from : "smtp", "notify.smtp.from "
                         "must be an address such as \"regimen@clinic.example\"");
        if (!rc && (!(p->smtp_url = strdup(url)) || !(p->smtp_from = strdup(from))))
            rc = RG_ENOMEM;
    }
    json_t *routes = json_object_get(j, "routes");
    size_t n = rg__len(routes);
    if (!rc && (!routes || n == (size_t)-1 || n == 0))
        rc = rg__bad(err, errlen, needle, nlen, "routes", "notify.routes must be a list of "
                     "{ match = { ... }, steps = { ... } }, at least one");
    if (!rc && !(p->routes = calloc(n, sizeof *p->routes)))
        rc = RG_ENOMEM;
    for (size_t i = 0; !rc && i < n; i++) {
        rc = rg__parse_route(rg__item(routes, i), (int)i, p, &p->routes[i], err, errlen, needle,
                             nlen);
        p->nroutes++;
    }
    json_t *inh = json_object_get(j, "inhibit");
    n = inh ? rg__len(inh) : 0;
    if (!rc && n == (size_t)-1)
        rc = rg__bad(err, errlen, needle, nlen, "inhibit", "notify.inhibit must be a list of "
                     "{ when = { severity = \"critical\" }, hold = { severity = \"warning\" } }");
    if (!rc && n && !(p->inhibits = calloc(n, sizeof *p->inhibits)))
        rc = RG_ENOMEM;
    for (size_t i = 0; !rc && i < n; i++) {
        static const char *const ik[] = {"when", "hold", NULL};
        json_t *x = rg__item(inh, i);
        char what[80], w2[100];
        snprintf(what, sizeof what, "notify.inhibit[%zu]", i + 1);
        rg_notify_inhibit *in = &p->inhibits[p->ninhibits++];
        if (!json_is_object(x) || !json_object_get(x, "when") || !json_object_get(x, "hold"))
            rc = rg__bad(err, errlen, needle, nlen, "inhibit", "%s must be { when = { ... }, "
                         "hold = { ... } }", what);
        if (!rc)
            rc = rg__only(x, ik, what, err, errlen, needle, nlen);
        snprintf(w2, sizeof w2, "%s.when", what);
        if (!rc)
            rc = rg__match(json_object_get(x, "when"), &in->when, w2, err, errlen, needle, nlen);
        snprintf(w2, sizeof w2, "%s.hold", what);
        if (!rc)
            rc = rg__match(json_object_get(x, "hold"), &in->hold, w2, err, errlen, needle, nlen);
    }
    if (rc) {
        if (rc == RG_ENOMEM)
            rg__bad(err, errlen, needle, nlen, NULL, "notify: out of memory");
        rg_notify_free(p);
        return rc;
    }
    *out = p;
    return RG_OK;
}

/* ---- the planner ---- */

static int rg__matches(const rg_notify_match *m, const rg_notify_alert_tx *t)
{
    const char *v[4] = {t->severity, t->rule, t->protocol, t->patient};
    for (int f = 0; f < 4; f++) {
        if (!m->field[f])
            continue;
        int any = 0;
        for (int i = 0; m->field[f][i] && !any; i++)
            any = v[f] && !strcmp(m->field[f][i], v[f]);
        if (!any)
            return 0;
    }
    return 1;
}

typedef struct rg__life {
    const rg_notify_alert_tx *open;
    rg_time end; /* resolved (or RG_TIME_NONE: still open) */
} rg__life;

typedef struct rg__pl {
    rg_notify_line l;
    int group_by; /* the route groups by patient */
    size_t order; /* the alert's index, for a stable order */
} rg__pl;

static int rg__cmp_line(const void *a, const void *b)
{
    const rg__pl *x = a, *y = b;
    if (x->l.at != y->l.at)
        return x->l.at < y->l.at ? -1 : 1;
    int c = strcmp(x->l.patient, y->l.patient);
    if (c)
        return c;
    if (x->l.route != y->l.route)
        return x->l.route - y->l.route;
    if (x->l.step != y->l.step)
        return x->l.step - y->l.step;
    if (x->l.repeat != y->l.repeat)
        return x->l.repeat - y->l.repeat;
    return x->order < y->order ? -1 : x->order > y->order;
}

/* Whether an alert matching `when` is open for the patient of a at time t. */
static int rg__inhibited(const rg_notify_policy *p, const rg__life *lives, size_t n,
                         const rg__life *a, rg_time t)
{
    for (int i = 0; i < p->ninhibits; i++) {
        if (!rg__matches(&p->inhibits[i].hold, a->open))
            continue;
        for (size_t k = 0; k < n; k++) {
            const rg__life *b = &lives[k];
            if (b == a || strcmp(b->open->patient, a->open->patient) ||
                strcmp(b->open->clinic, a->open->clinic) ||
                !rg__matches(&p->inhibits[i].when, b->open))
                continue;
            if (b->open->at <= t && (b->end == RG_TIME_NONE || b->end > t))
                return 1;
        }
    }
    return 0;
}

int rg_notify_plan(const rg_notify_policy *p, const rg_notify_alert_tx *txs, size_t ntx,
                   const rg_notify_ack *acks, size_t nacks, rg_time until,
                   int (*fn)(void *ud, const rg_notify_line *l), void *ud)
{
    rg__life *lives = calloc(ntx ? ntx : 1, sizeof *lives);
    size_t nl = 0, npl = 0, cap = 0;
    rg__pl *pls = NULL;
    int rc = RG_OK;
    if (!lives)
        return RG_ENOMEM;
    /* each alert's life: from its opening to its resolution */
    for (size_t i = 0; i < ntx; i++) {
        const rg_notify_alert_tx *t = &txs[i];
        if (t->open) {
            int again = 0;
            for (size_t k = 0; k < nl && !again; k++)
                again = lives[k].end == RG_TIME_NONE && !strcmp(lives[k].open->key, t->key);
            if (!again) /* a re-raise of an open alert does not start a new chain */
                lives[nl++] = (rg__life){t, RG_TIME_NONE};
        } else {
            for (size_t k = 0; k < nl; k++)
                if (lives[k].end == RG_TIME_NONE && !strcmp(lives[k].open->key, t->key))
                    lives[k].end = t->at;
        }
    }
    for (size_t k = 0; k < nl && !rc; k++) {
        const rg__life *a = &lives[k];
        const rg_notify_alert_tx *t = a->open;
        int r = 0;
        while (r < p->nroutes && !rg__matches(&p->routes[r].match, t))
            r++;
        if (r == p->nroutes)
            continue;
        const rg_notify_route *route = &p->routes[r];
        /* the chain stops at the first acknowledgement while open */
        rg_time stop = a->end;
        for (size_t i = 0; i < nacks; i++) {
            const rg_notify_ack *ak = &acks[i];
            int mine = (!ak->clinic || !strcmp(ak->clinic, t->clinic)) &&
                       (ak->key ? !strcmp(ak->key, t->key)
                                : ak->patient && ak->rule && !strcmp(ak->patient, t->patient) &&
                                      !strcmp(ak->rule, t->rule));
            if (mine && ak->at >= t->at && (a->end == RG_TIME_NONE || ak->at < a->end) &&
                (stop == RG_TIME_NONE || ak->at < stop))
                stop = ak->at;
        }
        rg_time start = t->notify_at > t->at ? t->notify_at : t->at;
        /* hold-down: the same alert resolved a moment ago; its first step
         * (the one that says it opened) is not sent twice */
        int held = 0;
        for (size_t q = 0; q < k && route->hold_down && !held; q++)
            held = lives[q].end != RG_TIME_NONE && !strcmp(lives[q].open->key, t->key) &&
                   t->at - lives[q].end < route->hold_down;
        int total = route->nsteps + route->repeat_times;
        rg_time prev = start, prev_off = 0; /* opening hours: count on from the last due */
        for (int s = 0; s < total; s++) {
            int step = s < route->nsteps ? s : route->nsteps - 1;
            rg_time off = route->steps[step].after, due;
            if (s >= route->nsteps)
                off = route->steps[route->nsteps - 1].after +
                      (rg_time)(s - route->nsteps + 1) * route->repeat_every;
            if (!route->count_open)
                due = start + off;
            else if ((due = rg_calendar_add_open(&p->cal, prev, off - prev_off)) == RG_TIME_NONE)
                break; /* no opening within ten years: nothing more falls due */
            prev = due, prev_off = off;
            if (due > until || (stop != RG_TIME_NONE && due >= stop))
                break;
            rg__pl *g = rg_grow(pls, &cap, npl + 1, sizeof *g, 64); /* room for two */
            if (!g) {
                rc = RG_ENOMEM;
                break;
            }
            pls = g;
            int rcv = route->steps[step].receiver, who = rg_notify_on_call(p, rcv, due);
            rg_notify_line base = {.on_call = who != rcv ? p->receivers[who].name : NULL,
                                   .clinic = t->clinic, .patient = t->patient, .key = t->key,
                                   .rule = t->rule, .opened = t->at,
                                   .receiver = p->receivers[route->steps[step].receiver].name,
                                   .route = r + 1, .step = step + 1,
                                   .repeat = s >= route->nsteps ? s - route->nsteps + 1 : 0,
                                   .grouped = 1};
            if (s == 0 && start > t->at) { /* happened while the clinic was closed */
                pls[npl] = (rg__pl){base, 0, k};
                pls[npl].l.at = t->at;
                pls[npl].l.reason = "outside hours";
                pls[npl++].l.grouped = 0;
            }
            pls[npl] = (rg__pl){base, route->group_by_patient, k};
            pls[npl].l.at = due;
            if (rg__inhibited(p, lives, nl, a, due)) {
                pls[npl].l.reason = "inhibited";
                pls[npl].l.grouped = 0;
            } else if (held && s == 0) {
                pls[npl].l.reason = "held down";
                pls[npl].l.grouped = 0;
            }
            npl++;
        }
    }
    if (!rc && npl)
        qsort(pls, npl, sizeof *pls, rg__cmp_line);
    /* grouping: one sent line per (time, patient, route, step, repeat) */
    for (size_t i = 0; !rc && i < npl; i++) {
        rg__pl *x = &pls[i];
        if (!x->group_by || x->l.reason)
            continue;
        for (size_t j = i + 1; j < npl; j++) {
            rg__pl *y = &pls[j];
            if (y->l.at != x->l.at || strcmp(y->l.patient, x->l.patient) ||
                y->l.route != x->l.route || y->l.step != x->l.step || y->l.repeat != x->l.repeat)
                break;
            if (y->l.reason)
                continue;
            y->l.reason = "grouped";
            y->l.grouped = 0;
            x->l.grouped++;
        }
    }
    for (size_t i = 0; !rc && i < npl; i++)
        rc = fn(ud, &pls[i].l);
    free(pls);
    free(lives);
    return rc;
}

json_t *rg_notify_line_json(const rg_notify_line *l, const void *zone)
{
    char at[RG_TIME_BUFSZ], local[RG_TIME_BUFSZ];
    json_t *o = json_object();
    json_object_set_new(o, "kind", json_string("notification"));
    json_object_set_new(o, "at", json_string(rg_time_format(l->at, at)));
    json_object_set_new(o, "clinic", json_string(l->clinic));
    json_object_set_new(o, "patient", json_string(l->patient));
    json_object_set_new(o, "key", json_string(l->key));
    json_object_set_new(o, "rule", json_string(l->rule));
    json_object_set_new(o, "route", json_integer(l->route));
    json_object_set_new(o, "step", json_integer(l->step));
    if (l->repeat)
        json_object_set_new(o, "round", json_integer(l->repeat));
    json_object_set_new(o, "receiver", json_string(l->receiver));
    if (l->on_call)
        json_object_set_new(o, "on_call", json_string(l->on_call));
    json_object_set_new(o, "outcome", json_string(l->reason ? "suppressed" : "sent"));
    if (l->reason)
        json_object_set_new(o, "reason", json_string(l->reason));
    if (!l->reason && l->grouped > 1)
        json_object_set_new(o, "alerts", json_integer(l->grouped));
    if (zone)
        json_object_set_new(o, "at_local", json_string(rg_zone_format(zone, l->at, local)));
    return o;
}

/* ---- a simulation's notifications, from its store ---- */

static int rg__set_tx(void *ud, const rg_transition *t)
{
    rg_notify_set *s = ud;
    if (t->open != 1 && t->open != 0) /* a re-raise continues its chain */
        return 0;
    rg_clinic *c = rg_engine_clinic(s->eng, t->clinic);
    if (!c || !c->notify)
        return 0;
    rg_notify_alert_tx *g = rg_grow(s->txs, &s->txcap, s->ntx, sizeof *g, 64);
    if (!g)
        return RG_ENOMEM;
    s->txs = g;
    rg_notify_alert_tx *x = &s->txs[s->ntx];
    memset(x, 0, sizeof *x);
    x->at = t->at;
    x->notify_at = t->notify_at;
    x->open = t->open;
    const char *src[6] = {t->clinic, t->patient, t->key, t->protocol, t->rule, t->severity};
    const char **dst[6] = {&x->clinic, &x->patient, &x->key, &x->protocol, &x->rule, &x->severity};
    s->ntx++;
    for (int i = 0; i < 6; i++)
        if (!(*dst[i] = strdup(src[i] ? src[i] : "")))
            return RG_ENOMEM;
    return 0;
}

static int rg__set_line(void *ud, const rg_notify_line *l)
{
    rg_notify_set *s = ud;
    rg_notify_line *g = rg_grow(s->lines, &s->cap, s->n, sizeof *g, 64);
    if (!g)
        return RG_ENOMEM;
    s->lines = g;
    s->lines[s->n++] = *l;
    return 0;
}

typedef struct rg__ordered {
    rg_notify_line l;
    size_t i;
} rg__ordered;

static int rg__cmp_at(const void *a, const void *b)
{
    const rg__ordered *x = a, *y = b;
    if (x->l.at != y->l.at)
        return x->l.at < y->l.at ? -1 : 1;
    return x->i < y->i ? -1 : x->i > y->i;
}

int rg_notify_set_build(rg_notify_set *s, rg_engine *eng, rg_store *st, const rg_notify_ack *acks,
                        size_t nacks, rg_time until)
{
    memset(s, 0, sizeof *s);
    s->eng = eng;
    int rc = rg_store_each_transition(st, 0, 1, rg__set_tx, s);
    rg_notify_alert_tx *one = rc ? NULL : malloc((s->ntx ? s->ntx : 1) * sizeof *one);
    if (!rc && !one)
        rc = RG_ENOMEM;
    /* clinic by clinic, in the order they first appear */
    for (size_t i = 0; !rc && i < s->ntx; i++) {
        int seen = 0;
        for (size_t k = 0; k < i && !seen; k++)
            seen = !strcmp(s->txs[k].clinic, s->txs[i].clinic);
        if (seen)
            continue;
        size_t n = 0;
        for (size_t k = i; k < s->ntx; k++)
            if (!strcmp(s->txs[k].clinic, s->txs[i].clinic))
                one[n++] = s->txs[k];
        rc = rg_notify_plan(rg_engine_clinic(eng, s->txs[i].clinic)->notify, one, n, acks, nacks,
                            until, rg__set_line, s);
    }
    free(one);
    if (!rc && s->n > 1) {
        rg__ordered *o = malloc(s->n * sizeof *o);
        if (!o)
            rc = RG_ENOMEM;
        for (size_t i = 0; o && i < s->n; i++)
            o[i] = (rg__ordered){s->lines[i], i};
        if (o) {
            qsort(o, s->n, sizeof *o, rg__cmp_at);
            for (size_t i = 0; i < s->n; i++)
                s->lines[i] = o[i].l;
            free(o);
        }
    }
    if (rc)
        rg_notify_set_free(s);
    return rc;
}

void rg_notify_set_free(rg_notify_set *s)
{
    for (size_t i = 0; i < s->ntx; i++) {
        free((char *)s->txs[i].clinic);
        free((char *)s->txs[i].patient);
        free((char *)s->txs[i].key);
        free((char *)s->txs[i].protocol);
        free((char *)s->txs[i].rule);
        free((char *)s->txs[i].severity);
    }
    free(s->txs);
    free(s->lines);
    memset(s, 0, sizeof *s);
}

/* ---- acknowledgements from a file (simulate --acks) ---- */

void rg_notify_acks_free(rg_notify_acks *l)
{
    for (size_t i = 0; i < l->n; i++) {
        free((char *)l->a[i].clinic);
        free((char *)l->a[i].patient);
        free((char *)l->a[i].rule);
        free((char *)l->a[i].key);
    }
    free(l->a);
    memset(l, 0, sizeof *l);
}

int rg_notify_acks_read(rg_notify_acks *out, const char *path, char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    FILE *f = fopen(path, "r");
    if (!f)
        return rg_fail(err, errlen, RG_EIO, "--acks %s: cannot read it", path);
    char *line = NULL;
    size_t cap = 0, acap = 0;
    long no = 0;
    int rc = RG_OK;
    while (!rc && getline(&line, &cap, f) > 0) {
        no++;
        if (strspn(line, " \t\r\n") == strlen(line))
            continue;
        json_error_t je;
        json_t *j = json_loads(line, 0, &je);
        const char *at = json_string_value(json_object_get(j, "at"));
        const char *clinic = json_string_value(json_object_get(j, "clinic"));
        const char *key = json_string_value(json_object_get(j, "key"));
        const char *patient = json_string_value(json_object_get(j, "patient"));
        const char *rule = json_string_value(json_object_get(j, "rule"));
        rg_time t = 0;
        char why[200] = "";
        if (!j)
            rc = rg_fail(err, errlen, RG_EINVAL, "%s:%ld: not JSON: %s", path, no, je.text);
        else if (!json_is_object(j))
            rc = rg_fail(err, errlen, RG_EINVAL, "%s:%ld: an acknowledgement must be an object",
                         path, no);
        else if (!at || rg_time_parse(at, strlen(at), &t, NULL, why, sizeof why))
            rc = rg_fail(err, errlen, RG_EINVAL, "%s:%ld: field 'at' must be an RFC 3339 time "
                         "such as \"2026-03-02T10:10:00Z\"%s%s", path, no, *why ? ": " : "", why);
        else if (!clinic || (!key && (!patient || !rule)))
            rc = rg_fail(err, errlen, RG_EINVAL, "%s:%ld: an acknowledgement names its alert: "
                         "{\"at\", \"clinic\", \"key\"} or {\"at\", \"clinic\", \"patient\", "
                         "\"rule\"}", path, no);
        if (!rc) {
            rg_notify_ack *g = rg_grow(out->a, &acap, out->n, sizeof *g, 16);
            if (!g)
                rc = rg_fail(err, errlen, RG_ENOMEM, "out of memory");
            else
                out->a = g;
        }
        if (!rc) {
            rg_notify_ack *a = &out->a[out->n++];
            memset(a, 0, sizeof *a);
            a->at = t;
            a->clinic = strdup(clinic);
            a->key = key ? strdup(key) : NULL;
            a->patient = strdup(patient ? patient : "");
            a->rule = strdup(rule ? rule : "");
            if (!a->clinic || (key && !a->key) || !a->patient || !a->rule)
                rc = rg_fail(err, errlen, RG_ENOMEM, "out of memory");
        }
        json_decref(j);
    }
    free(line);
    fclose(f);
    if (rc)
        rg_notify_acks_free(out);
    return rc;
}

/* ---- the service's notification history (store.h, rg_notify_entry) ---- */

json_t *rg_notify_entry_json(const rg_notify_entry *e, const void *zone)
{
    char at[RG_TIME_BUFSZ], opened[RG_TIME_BUFSZ], local[RG_TIME_BUFSZ];
    json_t *o = json_object();
    json_object_set_new(o, "at", json_string(rg_time_format(e->at, at)));
    if (zone)
        json_object_set_new(o, "at_local", json_string(rg_zone_format(zone, e->at, local)));
    json_object_set_new(o, "patient", json_string(e->patient));
    json_object_set_new(o, "key", json_string(e->key));
    json_object_set_new(o, "opened", json_string(rg_time_format(e->opened, opened)));
    json_object_set_new(o, "rule", json_string(e->rule));
    json_object_set_new(o, "route", json_integer(e->route));
    json_object_set_new(o, "step", json_integer(e->step));
    if (e->round)
        json_object_set_new(o, "round", json_integer(e->round));
    json_object_set_new(o, "receiver", json_string(e->receiver));
    json_object_set_new(o, "receiver_kind", json_string(e->kind));
    if (e->on_call)
        json_object_set_new(o, "on_call", json_string(e->on_call));
    json_object_set_new(o, "outcome", json_string(e->outcome));
    if (e->reason)
        json_object_set_new(o, "reason", json_string(e->reason));
    if (e->alerts > 1)
        json_object_set_new(o, "alerts", json_integer(e->alerts));
    json_object_set_new(o, "attempt", json_integer(e->attempt));
    return o;
}
