/*
 * scenario.c - `regimen test` (see scenario.h).
 *
 * The scenario file is Lua, so it is loaded in a sandbox of its own and then
 * copied into jansson values with calls that cannot raise; everything after
 * that is plain C. Each scenario gets a fresh in-memory store and engine:
 * its events go through the same validation as `ingest` and its clinic is
 * advanced to the horizon by the same rg_engine_advance_all as `simulate`.
 * Scenarios are independent, so --jobs runs them on several threads, each
 * printing into its own buffer, printed in order (the same output).
 * Depends on sandbox.c, engine.c, ingest.c and jansson.
 */
#include "engine/scenario.h"
#include "core/grow.h"

#include "engine/clinic.h"
#include "engine/engine.h"
#include "engine/sweep.h"
#include "store/ingest.h"

#include <lauxlib.h>
#include <jansson.h>

#include <dirent.h>
#include <errno.h>
#include <libgen.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* Loads a scenario file in a throw-away sandbox and returns its value as JSON. */
static json_t *rg__load_file(const char *path, const char *shipped, const rg_limits *lim,
                             char *err, size_t errlen)
{
    char dirbuf[4096];
    snprintf(dirbuf, sizeof dirbuf, "%s", path);
    const char *sp[2] = {dirname(dirbuf), shipped};
    rg_sandbox *sb;
    if (rg_sandbox_new(&sb, "test", lim, sp, shipped ? 2 : 1, err, errlen))
        return NULL;
    lua_State *L = rg_sandbox_state(sb);
    json_t *j = NULL;
    rg_sandbox_enter(sb);
    if (rg_sandbox_loadfile(sb, path, err, errlen) == RG_OK &&
        rg_pcall(sb, 0, 1, err, errlen) == RG_OK) {
        char why[256];
        if (lua_type(L, -1) != LUA_TTABLE)
            rg_fail(err, errlen, RG_EINVAL, "%s: a scenario file must return a list of "
                    "scenarios", path);
        else if (!(j = rg_lua_to_json(L, -1, 1, why, sizeof why)))
            rg_fail(err, errlen, RG_EINVAL, "%s: %s", path, why);
        else if (!json_is_array(j)) {
            rg_fail(err, errlen, RG_EINVAL, "%s: a scenario file must return a list "
                    "{ { name = ..., events = ..., expect = ... }, ... }", path);
            json_decref(j);
            j = NULL;
        }
    }
    rg_sandbox_leave(sb);
    rg_sandbox_free(sb);
    return j;
}

typedef struct rg__seen {
    rg_time at;
    int open, matched;
    char rule[128], patient[129], severity[16];
    char *message;
} rg__seen;

typedef struct rg__run {
    rg__seen *items;
    int n;
    size_t cap;
    json_t *only;
    char errors[4096];
    const rg_zone *zone; /* the clinic's: times are reported with its offset */
} rg__run;

static int rg__collect(void *ud, const rg_transition *t)
{
    rg__run *r = ud;
    if (json_is_array(r->only)) {
        size_t i;
        json_t *v;
        int keep = 0;
        json_array_foreach(r->only, i, v) keep |= json_is_string(v) &&
                                                 !strcmp(json_string_value(v), t->rule);
        if (!keep)
            return 0;
    }
    rg__seen *grown = rg_grow(r->items, &r->cap, (size_t)r->n, sizeof *grown, 32);
    if (!grown)
        return RG_ENOMEM;
    r->items = grown;
    rg__seen *s = &r->items[r->n++];
    memset(s, 0, sizeof *s);
    s->at = t->at;
    s->open = t->open;
    snprintf(s->rule, sizeof s->rule, "%s", t->rule);
    snprintf(s->patient, sizeof s->patient, "%s", t->patient);
    snprintf(s->severity, sizeof s->severity, "%s", t->severity);
    s->message = strdup(t->message);
    return s->message ? 0 : RG_ENOMEM;
}

static void rg__scenario_error(void *ud, const char *clinic, const char *patient, rg_time at,
                               const char *msg)
{
    rg__run *r = ud;
    char when[RG_TIME_BUFSZ];
    size_t n = strlen(r->errors);
    (void)clinic;
    snprintf(r->errors + n, sizeof r->errors - n, "    error%s%s at %s: %s\n",
             patient ? " for " : "", patient ? patient : "",
             at == RG_TIME_NONE ? "load" : rg_zone_format(r->zone ? r->zone : rg_zone_utc(), at,
                                                          when), msg);
}

static const char *rg__str(json_t *o, const char *k, size_t pos, const char *dflt)
{
    json_t *v = json_object_get(o, k);
    if (!v && json_is_array(o))
        v = json_array_get(o, pos);
    if (!v && json_is_object(o)) {
        char key[8];
        snprintf(key, sizeof key, "%zu", pos + 1);
        v = json_object_get(o, key);
    }
    return json_is_string(v) ? json_string_value(v) : dflt;
}

/* Positional fields of a mixed Lua table ({ "t", "open", "rule", patient = "p2" })
 * arrive as an object with keys "1", "2", ...; plain lists as arrays. */
static json_t *rg__pos(json_t *o, size_t pos)
{
    if (json_is_array(o))
        return json_array_get(o, pos);
    char key[8];
    snprintf(key, sizeof key, "%zu", pos + 1);
    return json_object_get(o, key);
}

/* The first key of object o that is not a position ("1", "2", ...) nor one
 * of known, written into why with a did-you-mean; 0 when all are known. */
static int rg__unknown_field(json_t *o, const char *const *known, size_t n, const char *what,
                             char *why, size_t len)
{
    const char *k;
    json_t *v;
    if (!json_is_object(o))
        return 0;
    json_object_foreach(o, k, v) {
        int ok = k[0] >= '1' && k[0] <= '9';
        for (size_t i = 0; i < n && !ok; i++)
            ok = !strcmp(k, known[i]);
        if (ok)
            continue;
        const char *near = rg_suggest(k, known, n);
        size_t w = (size_t)snprintf(why, len, "%s: unknown field '%s'%s%s%s (known: ", what, k,
                                    near ? " (did you mean '" : "", near ? near : "",
                                    near ? "'?)" : "");
        for (size_t i = 0; i < n && w < len; i++)
            w += (size_t)snprintf(why + w, len - w, "%s%s", i ? ", " : "", known[i]);
        if (w < len)
            snprintf(why + w, len - w, ")");
        return 1;
    }
    return 0;
}

/* " (did you mean 'x'?)" for a rule id the clinic does not have, "" when no
 * rule id is close. */
static const char *rg__near_rule(const rg_clinic *c, const char *rule, char *buf, size_t len)
{
    const char *ids[512];
    size_t n = 0;
    for (int i = 0; c && i < c->nprotos; i++)
        for (int j = 0; j < c->protos[i].nrules && n < 512; j++)
            ids[n++] = c->protos[i].rules[j].id;
    const char *near = rg_suggest(rule, ids, n);
    snprintf(buf, len, "%s%s%s", near ? " (did you mean '" : "", near ? near : "",
             near ? "'?)" : "");
    return buf;
}

/* The scenario's acks = { { at, rule, patient = "p1" } } planned with the
 * clinic's notification policy (rg_notify_set_build, as simulate) and
 * compared with notifications = { { at, receiver, step = N, outcome =
 * "sent"|"suppressed", reason = ..., patient = "p1", rule = ... } }: every
 * expected line must be planned, nothing else. Returns 0 when they agree, 1
 * with the differences appended to report, or negative with err. */
static int rg__notifications(json_t *sc, rg_engine *eng, rg_store *st, const char *clinic,
                             rg_time until, const rg_zone *zone, char *report, size_t *rl,
                             size_t rcap, char *err, size_t errlen)
{
    static const char *const a_fields[] = {"at", "rule", "patient"};
    static const char *const n_fields[] = {"at", "receiver", "step", "outcome", "reason",
                                           "patient", "rule", "round", "on_call"};
    json_t *acks = json_object_get(sc, "acks"), *want = json_object_get(sc, "notifications"), *x;
    size_t na = json_array_size(acks), i;
    rg_notify_ack *ak = calloc(na ? na : 1, sizeof *ak);
    rg_notify_set ns = {0};
    int rc = ak ? 0 : rg_fail(err, errlen, RG_ENOMEM, "out of memory");
    if (!rc && acks && !json_is_array(acks))
        rc = rg_fail(err, errlen, RG_EINVAL, "acks must be a list of { \"2026-03-04T09:00:00Z\", "
                     "\"rule.id\", patient = \"p1\" }");
    if (!rc && want && !json_is_array(want))
        rc = rg_fail(err, errlen, RG_EINVAL, "notifications must be a list of "
                     "{ \"2026-03-04T09:00:00Z\", \"receiver\", step = 1 } (use {} for none)");
    rg_clinic *c = rg_engine_clinic(eng, clinic);
    if (!rc && (!c || !c->notify))
        rc = rg_fail(err, errlen, RG_EINVAL, "acks and notifications need a notify policy in "
                     "the clinic's clinic.lua (docs/notifications.md)");
    json_array_foreach(rc ? NULL : acks, i, x) {
        char why[300];
        const char *at = rg__str(x, "at", 0, NULL), *rule = rg__str(x, "rule", 1, NULL);
        if (rg__unknown_field(x, a_fields, RG_COUNTOF(a_fields), "acks", why, sizeof why)) {
            rc = rg_fail(err, errlen, RG_EINVAL, "acks[%zu]: %s", i + 1, why + strlen("acks: "));
            break;
        }
        if (!at || !rule || rg_time_parse(at, strlen(at), &ak[i].at, NULL, why, sizeof why)) {
            rc = rg_fail(err, errlen, RG_EINVAL, "acks[%zu] must be { \"2026-03-04T09:00:00Z\", "
                         "\"rule.id\", patient = \"p1\" }", i + 1);
            break;
        }
        if (!rg_clinic_find_rule(c, rule, NULL)) {
            char near[200];
            rc = rg_fail(err, errlen, RG_EINVAL, "acks[%zu] names the rule '%s', which no "
                         "protocol of the clinic has%s", i + 1, rule,
                         rg__near_rule(c, rule, near, sizeof near));
            break;
        }
        ak[i].clinic = clinic;
        ak[i].rule = rule;
        ak[i].patient = rg__str(x, "patient", 999, "p1");
    }
    if (!rc && (rc = rg_notify_set_build(&ns, eng, st, ak, na, until)))
        rg_fail(err, errlen, rc, "out of memory");
    char *matched = rc ? NULL : calloc(ns.n + 1, 1);
    if (!rc && !matched)
        rc = rg_fail(err, errlen, RG_ENOMEM, "out of memory");
    int differs = 0;
    json_array_foreach(rc || !want ? NULL : want, i, x) {
        char why[300], when[RG_TIME_BUFSZ];
        const char *at = rg__str(x, "at", 0, NULL), *recv = rg__str(x, "receiver", 1, NULL),
                   *outcome = rg__str(x, "outcome", 999, "sent"),
                   *reason = rg__str(x, "reason", 999, NULL),
                   *pat = rg__str(x, "patient", 999, "p1"), *rule = rg__str(x, "rule", 999, NULL),
                   *who = rg__str(x, "on_call", 999, NULL);
        json_t *step = json_object_get(x, "step"), *rep = json_object_get(x, "round");
        rg_time t;
        if (rg__unknown_field(x, n_fields, RG_COUNTOF(n_fields), "notifications", why,
                              sizeof why)) {
            rc = rg_fail(err, errlen, RG_EINVAL, "notifications[%zu]: %s", i + 1,
                         why + strlen("notifications: "));
            break;
        }
        if (!at || !recv || rg_time_parse(at, strlen(at), &t, NULL, why, sizeof why) ||
            (strcmp(outcome, "sent") && strcmp(outcome, "suppressed"))) {
            rc = rg_fail(err, errlen, RG_EINVAL, "notifications[%zu] must be "
                         "{ \"2026-03-04T09:00:00Z\", \"receiver\", step = 1, outcome = "
                         "\"sent\" or \"suppressed\", reason = ... }", i + 1);
            break;
        }
        int found = 0;
        for (size_t k = 0; k < ns.n && !found; k++) {
            const rg_notify_line *l = &ns.lines[k];
            if (!matched[k] && l->at == t && !strcmp(l->receiver, recv) &&
                !strcmp(l->patient, pat) && (!rule || !strcmp(l->rule, rule)) &&
                (!step || json_integer_value(step) == l->step) &&
                (!rep || json_integer_value(rep) == l->repeat) &&
                (!who || (l->on_call && !strcmp(who, l->on_call))) &&
                !strcmp(outcome, l->reason ? "suppressed" : "sent") &&
                (!reason || (l->reason && !strcmp(reason, l->reason))))
                found = matched[k] = 1;
        }
        if (found)
            continue;
        differs = 1;
        *rl += (size_t)snprintf(report + *rl, *rl < rcap ? rcap - *rl : 0,
                                "    missing notification:    %s %s%s%s to %s for %s%s%s%s\n",
                                rg_zone_format(zone, t, when), outcome, reason ? ", " : "",
                                reason ? reason : "", recv, pat, rule ? " (" : "",
                                rule ? rule : "", rule ? ")" : "");
    }
    for (size_t k = 0; !rc && want && k < ns.n; k++) {
        const rg_notify_line *l = &ns.lines[k];
        char when[RG_TIME_BUFSZ];
        if (matched[k])
            continue;
        differs = 1;
        *rl += (size_t)snprintf(report + *rl, *rl < rcap ? rcap - *rl : 0,
                                "    unexpected notification: %s %s%s%s to %s for %s (%s), "
                                "route %d step %d%s\n", rg_zone_format(zone, l->at, when),
                                l->reason ? "suppressed, " : "sent", l->reason ? l->reason : "",
                                "", l->receiver, l->patient, l->rule, l->route, l->step,
                                l->repeat ? ", a repeat" : "");
    }
    free(matched);
    rg_notify_set_free(&ns);
    free(ak);
    return rc ? rc : differs;
}

/* Runs scenario number idx of file; prints its outcome. Returns 1 if it passed. */
static int rg__scenario(const char *file, const char *default_dir, size_t idx, json_t *sc,
                        const char *shipped, const rg_limits *lim, FILE *out)
{
    char err[4096], dir[4096], fdir[4096];
    const char *name = rg__str(sc, "name", 999, NULL);
    char label[300];
    snprintf(label, sizeof label, "%s: scenario %zu%s%s%s", file, idx + 1, name ? " \"" : "",
             name ? name : "", name ? "\"" : "");
    int ok = 1;
    rg_store *st = NULL;
    rg_engine *eng = NULL;
    rg__run run = {.only = json_object_get(sc, "only")};
#define SC_FAIL(...)                                                                       \
    do {                                                                                   \
        fprintf(out, "FAIL %s\n    ", label);                                             \
        fprintf(out, __VA_ARGS__);                                                         \
        fputc('\n', out);                                                                  \
        ok = 0;                                                                            \
        goto done;                                                                         \
    } while (0)

    static const char *const sc_fields[] = {"name", "events", "horizon", "only", "params",
                                            "protocols", "clinic", "expect", "acks",
                                            "notifications"};
    static const char *const ev_fields[] = {"at", "type", "data", "patient", "id"};
    static const char *const x_fields[] = {"at", "state", "rule", "patient", "message",
                                           "severity"};
    if (!json_is_object(sc))
        SC_FAIL("a scenario must be a table with name, events, horizon and expect");
    if (rg__unknown_field(sc, sc_fields, RG_COUNTOF(sc_fields), "scenario", err, sizeof err))
        SC_FAIL("%s", err);
    const char *horizon = rg__str(sc, "horizon", 999, NULL);
    rg_time until;
    if (!horizon || rg_time_parse(horizon, strlen(horizon), &until, NULL, err, sizeof err))
        SC_FAIL("horizon must be an RFC 3339 time such as \"2026-03-10T00:00:00Z\"%s%s",
                horizon ? ": " : "", horizon ? err : "");
    const char *protocols = rg__str(sc, "protocols", 999, NULL);
    snprintf(fdir, sizeof fdir, "%s", file);
    if (protocols)
        snprintf(dir, sizeof dir, "%s/%s", dirname(fdir), protocols);
    else
        snprintf(dir, sizeof dir, "%s", default_dir);
    const char *clinic = rg__str(sc, "clinic", 999, "test");
    if (rg_store_open(&st, ":memory:", NULL, err, sizeof err))
        SC_FAIL("%s", err);
    rg_engine_opts eo = {.limits = *lim, .shipped = shipped, .default_dir = NULL,
                         .on_error = rg__scenario_error, .ud = &run};
    if (rg_engine_new(&eng, st, &eo))
        SC_FAIL("out of memory");
    json_t *params = json_object_get(sc, "params");
    char *ptext = params ? json_dumps(params, JSON_COMPACT) : NULL;
    int prc = rg_engine_set_clinic_params(eng, clinic, dir, ptext, err, sizeof err);
    free(ptext);
    if (prc)
        SC_FAIL("protocols did not load: %s", err);
    run.zone = rg_engine_zone(eng, clinic);
    const rg_clinic *loaded = rg_engine_clinic(eng, clinic);

    /* every rule named must exist: a typo would read as "missing" */
    json_t *named[2] = {json_object_get(sc, "expect"), run.only};
    for (int w = 0; w < 2; w++) {
        size_t k;
        json_t *x;
        if (!json_is_array(named[w]))
            continue;
        json_array_foreach(named[w], k, x) {
            const char *rule = w ? json_string_value(x) : rg__str(x, "rule", 2, NULL);
            char near[200];
            if (!w && rg__unknown_field(x, x_fields, RG_COUNTOF(x_fields), "expect", err,
                                        sizeof err))
                SC_FAIL("expect[%zu]: %s", k + 1, err + strlen("expect: "));
            if (rule && loaded && !rg_clinic_find_rule(loaded, rule, NULL))
                SC_FAIL("%s[%zu] names the rule '%s', which no protocol of the clinic has%s",
                        w ? "only" : "expect", k + 1, rule,
                        rg__near_rule(loaded, rule, near, sizeof near));
        }
    }

    /* events, through the same validation as ingest */
    json_t *events = json_object_get(sc, "events");
    if (!json_is_array(events))
        SC_FAIL("events must be a list of { at, type, data }");
    size_t i;
    json_t *ev;
    if (rg_store_begin(st))
        SC_FAIL("%s", rg_store_errmsg(st));
    json_array_foreach(events, i, ev) {
        if (rg__unknown_field(ev, ev_fields, RG_COUNTOF(ev_fields), "event", err, sizeof err)) {
            rg_store_rollback(st);
            SC_FAIL("events[%zu]: %s", i + 1, err + strlen("event: "));
        }
        json_t *line = json_object();
        char id[32];
        snprintf(id, sizeof id, "s%zu", i + 1);
        json_t *at = rg__pos(ev, 0), *type = rg__pos(ev, 1), *data = rg__pos(ev, 2);
        json_object_set_new(line, "id", json_string(rg__str(ev, "id", 999, id)));
        json_object_set_new(line, "clinic", json_string(clinic));
        json_object_set_new(line, "patient", json_string(rg__str(ev, "patient", 999, "p1")));
        if (type)
            json_object_set(line, "type", type);
        if (at)
            json_object_set(line, "at", at);
        if (data && !(json_is_array(data) && json_array_size(data) == 0))
            json_object_set(line, "data", data);
        else if (data)
            json_object_set_new(line, "data", json_object()); /* {} arrives as an empty list */
        char *text = json_dumps(line, JSON_COMPACT);
        json_decref(line);
        rg_ingest_counts counts = {0};
        char why[600] = "";
        int r = text ? rg_ingest_one(st, text, strlen(text), "scenario", (long)i + 1, &counts,
                                     NULL, NULL)
                     : RG_ENOMEM;
        free(text);
        if (r == RG_INGEST_REJECTED || r == RG_PUT_CONFLICT || r < 0) {
            snprintf(why, sizeof why, "%s", r == RG_PUT_CONFLICT ? "two events with one id"
                                                                  : "see the field named");
            rg_store_rollback(st);
            SC_FAIL("events[%zu] is not a valid event (%s); write it as { \"2026-03-01T09:00:00Z\", "
                    "\"infusion\", { dose_mg_per_kg = 0.5 } }", i + 1, why);
        }
    }
    if (rg_store_commit(st))
        SC_FAIL("%s", rg_store_errmsg(st));
    if (rg_engine_advance_all(eng, RG_TIME_NONE, until) < 0)
        SC_FAIL("simulation failed: %s", rg_store_errmsg(st));
    if (rg_store_each_transition(st, 0, 1, rg__collect, &run))
        SC_FAIL("out of memory");

    /* compare: every expected transition must be seen, nothing else */
    json_t *expect = json_object_get(sc, "expect");
    if (!json_is_array(expect))
        SC_FAIL("expect must be a list of { at, state, rule } (use {} to expect nothing)");
    char report[8192] = "";
    size_t rl = 0;
    json_t *x;
    json_array_foreach(expect, i, x) {
        const char *xat = rg__str(x, "at", 0, NULL), *xstate = rg__str(x, "state", 1, NULL),
                   *xrule = rg__str(x, "rule", 2, NULL);
        const char *xpat = rg__str(x, "patient", 999, "p1"), *xmsg = rg__str(x, "message", 999, NULL),
                   *xsev = rg__str(x, "severity", 999, NULL);
        rg_time t;
        if (!xat || !xstate || !xrule || rg_time_parse(xat, strlen(xat), &t, NULL, err, sizeof err) ||
            (strcmp(xstate, "open") && strcmp(xstate, "resolved")))
            SC_FAIL("expect[%zu] must be { \"2026-03-04T09:00:00Z\", \"open\" or \"resolved\", "
                    "\"rule.id\" }", i + 1);
        int found = 0;
        for (int k = 0; k < run.n && !found; k++) {
            rg__seen *s = &run.items[k];
            if (!s->matched && s->at == t && s->open == !strcmp(xstate, "open") &&
                !strcmp(s->rule, xrule) && !strcmp(s->patient, xpat) &&
                (!xmsg || strstr(s->message, xmsg)) && (!xsev || !strcmp(s->severity, xsev)))
                found = s->matched = 1;
        }
        if (found)
            continue;
        ok = 0;
        char xwhen[RG_TIME_BUFSZ];
        rg_zone_format(run.zone, t, xwhen);
        rl += (size_t)snprintf(report + rl, rl < sizeof report ? sizeof report - rl : 0,
                               "    missing:    %s %-8s %s for %s%s%s%s%s%s\n", xwhen, xstate,
                               xrule, xpat, xsev ? ", severity " : "", xsev ? xsev : "",
                               xmsg ? " with message containing \"" : "", xmsg ? xmsg : "",
                               xmsg ? "\"" : "");
        for (int k = 0; k < run.n; k++) { /* a near miss: what differs */
            rg__seen *s = &run.items[k];
            char when[RG_TIME_BUFSZ], diff[600];
            if (s->matched || s->open != !strcmp(xstate, "open") || strcmp(s->rule, xrule) ||
                strcmp(s->patient, xpat) || rl >= sizeof report)
                continue;
            int other_time = s->at != t, other_sev = xsev && strcmp(s->severity, xsev),
                other_msg = xmsg && !strstr(s->message, xmsg);
            size_t dl = 0;
            rg_zone_format(run.zone, s->at, when);
            if (other_time && !other_sev && !other_msg)
                snprintf(diff, sizeof diff, "at %s instead", when);
            else {
                dl += (size_t)snprintf(diff, sizeof diff, "at %s%s", other_time ? when : "the "
                                       "same time", other_time ? " instead" : "");
                if (other_sev && dl < sizeof diff)
                    dl += (size_t)snprintf(diff + dl, sizeof diff - dl, ", with severity %s, "
                                           "not %s", s->severity, xsev);
                if (other_msg && dl < sizeof diff)
                    snprintf(diff + dl, sizeof diff - dl, ", with a message that does not "
                             "contain \"%s\"", xmsg);
            }
            rl += (size_t)snprintf(report + rl, sizeof report - rl,
                                   "                it happened %s: \"%s\"\n", diff, s->message);
        }
    }
    for (int k = 0; k < run.n; k++) {
        rg__seen *s = &run.items[k];
        char when[RG_TIME_BUFSZ];
        if (s->matched || rl >= sizeof report)
            continue;
        ok = 0;
        rl += (size_t)snprintf(report + rl, sizeof report - rl,
                               "    unexpected: %s %-8s %s for %s: \"%s\"\n",
                               rg_zone_format(run.zone, s->at, when), s->open ? "open" : "resolved", s->rule,
                               s->patient, s->message);
    }
    if (json_object_get(sc, "acks") || json_object_get(sc, "notifications")) {
        int nrc = rg__notifications(sc, eng, st, clinic, until, run.zone, report, &rl,
                                    sizeof report, err, sizeof err);
        if (nrc < 0)
            SC_FAIL("%s", err);
        if (nrc > 0)
            ok = 0;
    }
    if (run.errors[0])
        ok = 0;
    fprintf(out, "%s %s\n%s%s", ok ? "ok  " : "FAIL", label, ok ? "" : report,
            ok ? "" : run.errors);
done:
    for (int k = 0; k < run.n; k++)
        free(run.items[k].message);
    free(run.items);
    rg_engine_free(eng);
    rg_store_close(st);
    return ok;
#undef SC_FAIL
}

/* One unit of `regimen test`'s work: a scenario of a file, or a file that
 * could not be read (its failure text made already). Tasks are run in any
 * order, on any thread, each printing into its own buffer; the buffers are
 * printed in the tasks' order, so the output does not depend on --jobs. */
typedef struct rg__task {
    const char *file; /* (the file's name, owned by the list of files) */
    const char *dir;  /* the protocols under test (likewise) */
    size_t idx;
    json_t *sc;       /* the scenario (owned by its file's list); NULL: text is all */
    char *text;       /* what it printed */
    size_t len;
    int passed, failed;
} rg__task;

typedef struct rg__tasks {
    rg__task *v;
    int n, cap;
    char **names; /* file and protocol directory names, freed at the end */
    int nnames, cap_names;
    json_t **lists; /* the files' scenario lists */
    int nlists, cap_lists;
    const char *shipped;
    const rg_limits *lim;
    int files;
    int next; /* the next task to take (workers, under mu) */
    pthread_mutex_t mu;
} rg__tasks;

static int rg__grow(void **v, int *cap, int n, size_t size)
{
    if (n < *cap)
        return RG_OK;
    int ncap = *cap ? *cap * 2 : 16;
    void *grown = realloc(*v, (size_t)ncap * size);
    if (!grown)
        return RG_ENOMEM;
    *v = grown;
    *cap = ncap;
    return RG_OK;
}

static const char *rg__keep_name(rg__tasks *ts, const char *name)
{
    char *copy;
    if (rg__grow((void **)&ts->names, &ts->cap_names, ts->nnames, sizeof *ts->names) ||
        !(copy = strdup(name)))
        return NULL;
    return ts->names[ts->nnames++] = copy;
}

static rg__task *rg__add_task(rg__tasks *ts)
{
    if (rg__grow((void **)&ts->v, &ts->cap, ts->n, sizeof *ts->v))
        return NULL;
    rg__task *t = &ts->v[ts->n++];
    memset(t, 0, sizeof *t);
    return t;
}

/* A task that only prints a failure (a file that cannot be read). */
static int rg__fail_task(rg__tasks *ts, const char *what, const char *why)
{
    rg__task *t = rg__add_task(ts);
    if (!t)
        return RG_ENOMEM;
    t->failed = 1;
    FILE *mem = open_memstream(&t->text, &t->len);
    if (!mem)
        return RG_ENOMEM;
    fprintf(mem, "FAIL %s\n    %s\n", what, why);
    fclose(mem);
    return RG_OK;
}

static int rg__file_tasks(rg__tasks *ts, const char *path)
{
    char err[4096], dir[4096];
    json_t *list = rg__load_file(path, ts->shipped, ts->lim, err, sizeof err);
    ts->files++;
    if (!list)
        return rg__fail_task(ts, path, err);
    if (rg__grow((void **)&ts->lists, &ts->cap_lists, ts->nlists, sizeof *ts->lists)) {
        json_decref(list);
        return RG_ENOMEM;
    }
    ts->lists[ts->nlists++] = list;
    /* protocols under test: the parent of a tests/ directory, else the file's own */
    snprintf(dir, sizeof dir, "%s", path);
    char *d = dirname(dir);
    size_t dl = strlen(d);
    if (dl >= 5 && !strcmp(d + dl - 5, "tests") && (dl == 5 || d[dl - 6] == '/'))
        strcat(d, "/..");
    const char *file = rg__keep_name(ts, path), *pdir = rg__keep_name(ts, d);
    if (!file || !pdir)
        return RG_ENOMEM;
    size_t i;
    json_t *sc;
    json_array_foreach(list, i, sc) {
        rg__task *t = rg__add_task(ts);
        if (!t)
            return RG_ENOMEM;
        t->file = file;
        t->dir = pdir;
        t->idx = i;
        t->sc = sc;
    }
    return RG_OK;
}

static int rg__cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The tasks of path (a file, or a directory searched recursively, in name
 * order), in the order they are printed. */
static int rg__path_tasks(rg__tasks *ts, const char *path)
{
    struct stat sb;
    if (stat(path, &sb) != 0) {
        int rc = rg__fail_task(ts, path, strerror(errno));
        return rc ? rc : RG_EIO;
    }
    if (!S_ISDIR(sb.st_mode))
        return rg__file_tasks(ts, path);
    DIR *dh = opendir(path);
    if (!dh)
        return RG_EIO;
    char **names = NULL;
    int n = 0, rc = RG_OK;
    struct dirent *de;
    while ((de = readdir(dh))) {
        if (de->d_name[0] == '.')
            continue;
        size_t len = strlen(de->d_name);
        char full[4096];
        snprintf(full, sizeof full, "%s/%s", path, de->d_name);
        struct stat fs;
        int is_dir = stat(full, &fs) == 0 && S_ISDIR(fs.st_mode);
        if (!is_dir && (len < 9 || strcmp(de->d_name + len - 9, "_test.lua") != 0))
            continue;
        char **grown = realloc(names, (size_t)(n + 1) * sizeof *names);
        if (!grown || !(grown[n] = strdup(full))) {
            if (grown)
                names = grown;
            rc = RG_ENOMEM;
            break;
        }
        names = grown;
        n++;
    }
    closedir(dh);
    if (n)
        qsort(names, (size_t)n, sizeof *names, rg__cmp);
    for (int i = 0; i < n && rc == RG_OK; i++)
        rc = rg__path_tasks(ts, names[i]);
    for (int i = 0; i < n; i++)
        free(names[i]);
    free(names);
    return rc;
}

/* Runs task t into its own buffer. */
static void rg__run_task(rg__tasks *ts, rg__task *t)
{
    if (!t->sc)
        return; /* its failure is printed already */
    FILE *mem = open_memstream(&t->text, &t->len);
    if (!mem) {
        t->failed = 1;
        return;
    }
    if (rg__scenario(t->file, t->dir, t->idx, t->sc, ts->shipped, ts->lim, mem))
        t->passed = 1;
    else
        t->failed = 1;
    fclose(mem);
}

static void *rg__task_worker(void *ud)
{
    rg__tasks *ts = ud;
    for (;;) {
        pthread_mutex_lock(&ts->mu);
        int i = ts->next < ts->n ? ts->next++ : -1;
        pthread_mutex_unlock(&ts->mu);
        if (i < 0)
            return NULL;
        rg__run_task(ts, &ts->v[i]);
    }
}

int rg_scenario_run_paths(const char *const *paths, int npaths, const char *shipped,
                          const rg_limits *lim, int jobs, FILE *out, rg_scenario_totals *totals)
{
    rg__tasks ts = {.shipped = shipped, .lim = lim};
    int rc = RG_OK, first = RG_OK;
    for (int i = 0; i < npaths && rc != RG_ENOMEM; i++) {
        rc = rg__path_tasks(&ts, paths[i]);
        if (first == RG_OK)
            first = rc;
    }
    if (jobs < 1)
        jobs = rg_sweep_default_jobs();
    if (jobs > ts.n)
        jobs = ts.n;
    pthread_t threads[64];
    int started = 0;
    if (jobs > 1 && pthread_mutex_init(&ts.mu, NULL) == 0) {
        json_object_seed(0); /* before any thread makes a JSON object */
        for (; started < jobs && started < (int)RG_COUNTOF(threads); started++)
            if (pthread_create(&threads[started], NULL, rg__task_worker, &ts) != 0)
                break;
        for (int k = 0; k < started; k++)
            pthread_join(threads[k], NULL);
        pthread_mutex_destroy(&ts.mu);
    }
    for (int i = 0; i < ts.n; i++) {
        rg__task *t = &ts.v[i];
        if (!started)
            rg__run_task(&ts, t); /* one thread: printed as it goes */
        if (t->text)
            fwrite(t->text, 1, t->len, out);
        fflush(out);
        totals->passed += t->passed;
        totals->failed += t->failed;
        free(t->text);
    }
    totals->files += ts.files;
    for (int i = 0; i < ts.nlists; i++)
        json_decref(ts.lists[i]);
    for (int i = 0; i < ts.nnames; i++)
        free(ts.names[i]);
    free(ts.lists);
    free(ts.names);
    free(ts.v);
    return first;
}

int rg_scenario_run(const char *path, const char *shipped, const rg_limits *lim, FILE *out,
                    rg_scenario_totals *totals)
{
    return rg_scenario_run_paths(&path, 1, shipped, lim, 1, out, totals);
}

/* rg_check_tests_fn: the clinic's scenario tests, printing only failures. */
int rg_scenario_check_tests(const char *dir, const char *shipped, const rg_limits *lim,
                           FILE *out, int *passed, int *failed)
{
    char *text = NULL;
    size_t len = 0;
    FILE *mem = open_memstream(&text, &len);
    if (!mem)
        return RG_ENOMEM;
    rg_scenario_totals t = {0};
    int rc = rg_scenario_run(dir, shipped, lim, mem, &t);
    fclose(mem);
    *passed += t.passed;
    *failed += t.failed;
    for (char *line = text, *next; out && line && *line; line = next) {
        next = strchr(line, '\n');
        if (next)
            *next++ = '\0';
        if (strncmp(line, "ok  ", 4))
            fprintf(out, "  %s\n", line);
    }
    free(text);
    return rc < 0 && rc != RG_EIO ? rc : RG_OK;
}
