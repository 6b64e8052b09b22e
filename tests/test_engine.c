/*
 * test_engine.c - the evaluation path: wake-ups at exact due moments, alert
 * lifecycle (open once, resolve once), windows that end, failing rules that
 * keep their alerts, late events, parameter layers, provenance, and the
 * property serve relies on: advancing in pieces gives the same transitions
 * as advancing at once.
 */
#include "helpers.h"

#include "engine/engine.h"
#include "engine/hcache.h"
#include "store/ingest.h"

#include <jansson.h>
#include <sqlite3.h>

static const char test_protocol[] =
    "local R = require 'regimen'\n"
    "return R.protocol { id = 't', version = '2.0',\n"
    "  params = { wait = R.hours(2), limit = 3 },\n"
    "  rules = {\n"
    "    { id = 't.due', severity = 'warning', check = function(h, now, p)\n"
    "        local last = h:last('ping')\n"
    "        if not last or h:count('ping') >= p.limit then return end\n"
    "        return R.alert { key = last.id, due = last.at + p.wait, message = 'ping overdue' }\n"
    "      end },\n"
    "    { id = 't.window', severity = 'info', check = function(h, now, p)\n"
    "        local s = h:last('start')\n"
    "        if not s then return end\n"
    "        return R.alert { due = s.at, ends = s.at + R.hours(1), message = 'in window' }\n"
    "      end },\n"
    "    { id = 't.boom', severity = 'critical', check = function(h, now, p)\n"
    "        if h:last('boom') then error('kaboom') end\n"
    "        if h:last('alarm') then return R.alert { message = 'alarm' } end\n"
    "      end },\n"
    "  } }\n";

typedef struct fixture {
    char dir[256], err_text[8192];
    rg_store *st;
    rg_engine *eng;
} fixture;

static void on_error(void *ud, const char *clinic, const char *patient, rg_time at,
                     const char *msg)
{
    fixture *f = ud;
    (void)clinic;
    (void)at;
    size_t n = strlen(f->err_text);
    snprintf(f->err_text + n, sizeof f->err_text - n, "%s: %s\n", patient ? patient : "-", msg);
}

static void fx_open(fixture *f, const char *clinic_lua)
{
    char err[4096], path[512];
    memset(f->err_text, 0, sizeof f->err_text);
    rg_test_tmpdir(f->dir);
    rg_test_write(f->dir, "c/t.lua", test_protocol);
    if (clinic_lua)
        rg_test_write(f->dir, "c/clinic.lua", clinic_lua);
    snprintf(path, sizeof path, "%s/db.sqlite", f->dir);
    cr_assert_eq(rg_store_open(&f->st, path, NULL, err, sizeof err), 0, "%s", err);
    rg_engine_opts o = {.limits = RG_LIMITS_DEFAULT, .on_error = on_error, .ud = f};
    cr_assert_eq(rg_engine_new(&f->eng, f->st, &o), 0);
    snprintf(path, sizeof path, "%s/c", f->dir);
    cr_assert_eq(rg_engine_set_clinic(f->eng, "c", path, err, sizeof err), 0, "%s", err);
}

static void fx_close(fixture *f)
{
    rg_engine_free(f->eng);
    rg_store_close(f->st);
    rg_test_rmdir(f->dir);
}

static rg_time T(const char *s)
{
    rg_time t;
    cr_assert_eq(rg_time_parse(s, strlen(s), &t, NULL, NULL, 0), 0, "bad time %s", s);
    return t;
}

/* Stores one event: type at time (data optional JSON). */
static void put(fixture *f, const char *id, const char *patient, const char *type,
                const char *at, const char *data)
{
    char line[1024];
    rg_ingest_counts c = {0};
    snprintf(line, sizeof line,
             "{\"id\":\"%s\",\"clinic\":\"c\",\"patient\":\"%s\",\"type\":\"%s\",\"at\":\"%s\"%s%s}",
             id, patient, type, at, data ? ",\"data\":" : "", data ? data : "");
    cr_assert_eq(rg_ingest_one(f->st, line, strlen(line), "test", 1, &c, NULL, NULL),
                 RG_PUT_STORED, "%s", line);
}

/* Stores a correction of event id: version v, status, corrected_at, and
 * (not for entered-in-error) its new type, time and data. */
static void correct(fixture *f, const char *id, const char *patient, int v, const char *status,
                    const char *type, const char *at, const char *corrected_at)
{
    char line[1024];
    rg_ingest_counts c = {0};
    snprintf(line, sizeof line,
             "{\"id\":\"%s\",\"clinic\":\"c\",\"patient\":\"%s\",\"type\":\"%s\",\"at\":\"%s\","
             "\"version\":%d,\"status\":\"%s\",\"corrected_at\":\"%s\",\"corrected_by\":\"test\"}",
             id, patient, type, at, v, status, corrected_at);
    int r = rg_ingest_one(f->st, line, strlen(line), "test", 1, &c, NULL, NULL);
    cr_assert_eq(r, RG_PUT_CORRECTED, "%s: outcome %d", line, r);
}

/* Stores version 3 of a new id, entered in error. */
static void correct_first(fixture *f, const char *id, const char *patient, const char *type)
{
    char line[1024];
    rg_ingest_counts c = {0};
    snprintf(line, sizeof line,
             "{\"id\":\"%s\",\"clinic\":\"c\",\"patient\":\"%s\",\"type\":\"%s\","
             "\"at\":\"2026-03-01T10:00:00Z\",\"version\":3,\"status\":\"entered-in-error\","
             "\"corrected_at\":\"2026-03-01T10:30:00Z\"}", id, patient, type);
    cr_assert_eq(rg_ingest_one(f->st, line, strlen(line), "test", 1, &c, NULL, NULL),
                 RG_PUT_STORED, "%s", line);
}

static void advance(fixture *f, const char *patient, const char *until)
{
    cr_assert_eq(rg_engine_advance(f->eng, "c", patient, T(until)), 0);
}

/* The transitions as "at state rule key-ish" lines, in seq order. */
typedef struct seen {
    char text[8192];
    int n;
    char last_params[512], last_evidence[512];
} seen;

static int collect(void *ud, const rg_transition *t)
{
    seen *s = ud;
    char at[RG_TIME_BUFSZ];
    size_t n = strlen(s->text);
    /* a system alert names the protocol's file: its temporary directory as DIR */
    const char *m = t->message, *tmp = strstr(m, "/tmp/regimen-test-");
    const char *rest = tmp ? strchr(tmp + 18, '/') : NULL;
    snprintf(s->text + n, sizeof s->text - n, "%s %s %s %.*s%s%s\n", rg_time_format(t->at, at),
             t->open ? "open" : "resolved", t->rule, rest ? (int)(tmp - m) : (int)strlen(m), m,
             rest ? "DIR" : "", rest ? rest : "");
    snprintf(s->last_params, sizeof s->last_params, "%s", t->params);
    snprintf(s->last_evidence, sizeof s->last_evidence, "%s", t->evidence);
    s->n++;
    return 0;
}

static seen transitions(fixture *f)
{
    seen s;
    memset(&s, 0, sizeof s);
    cr_assert_eq(rg_store_each_transition(f->st, 0, 0, collect, &s), 0);
    return s;
}

Test(engine, opens_exactly_at_due_and_resolves_with_the_next_event)
{
    fixture f;
    fx_open(&f, NULL);
    put(&f, "a1", "p", "ping", "2026-03-01T10:00:00Z", NULL);
    advance(&f, "p", "2026-03-01T11:59:59.999Z");
    cr_assert_eq(transitions(&f).n, 0, "nothing is due a millisecond early");
    advance(&f, "p", "2026-03-01T12:00:00Z");
    seen s = transitions(&f);
    cr_assert_str_eq(s.text, "2026-03-01T12:00:00Z open t.due ping overdue\n");
    put(&f, "a2", "p", "ping", "2026-03-01T12:30:00+00:00", NULL);
    advance(&f, "p", "2026-03-02T00:00:00Z");
    s = transitions(&f);
    cr_assert_str_eq(s.text,
                     "2026-03-01T12:00:00Z open t.due ping overdue\n"
                     "2026-03-01T12:30:00Z resolved t.due ping overdue\n"
                     "2026-03-01T14:30:00Z open t.due ping overdue\n");
    fx_close(&f);
}

Test(engine, an_event_exactly_at_the_due_moment_prevents_the_alert)
{
    fixture f;
    fx_open(&f, NULL);
    put(&f, "a1", "p", "ping", "2026-03-01T10:00:00Z", NULL);
    put(&f, "a2", "p", "ping", "2026-03-01T07:00:00-05:00", NULL); /* 12:00Z */
    advance(&f, "p", "2026-03-01T13:00:00Z");
    cr_assert_eq(transitions(&f).n, 0, "%s", transitions(&f).text);
    fx_close(&f);
}

static int count_failing(void *ud, const char *clinic, const char *protocol, const char *rule,
                         int64_t patients, rg_time since, const char *message)
{
    (void)clinic, (void)protocol, (void)rule, (void)since, (void)message;
    *(int64_t *)ud += patients;
    return 0;
}

/* One system alert per failing rule however many patients it fails for;
 * it resolves when the last of them evaluates cleanly (here: the protocol
 * fixed and the patients re-evaluated), and the state is in the store. */
Test(engine, a_failing_rule_is_one_clinic_alert_until_every_patient_is_clean)
{
    fixture f;
    char err[4096], dir[512];
    fx_open(&f, NULL);
    put(&f, "x1", "p", "boom", "2026-03-01T11:00:00Z", NULL);
    put(&f, "x2", "q", "boom", "2026-03-01T12:00:00Z", NULL);
    advance(&f, "p", "2026-03-02T00:00:00Z");
    advance(&f, "q", "2026-03-02T00:00:00Z");
    seen s = transitions(&f);
    cr_assert_eq(s.n, 1, "%s", s.text);
    cr_assert(strstr(s.text, "2026-03-01T11:00:00Z open regimen.evaluation-failed rule 't.boom'"),
              "%s", s.text);
    int64_t failing = 0;
    cr_assert_eq(rg_store_failing_summary(f.st, count_failing, &failing), 0);
    cr_assert_eq(failing, 2);
    rg_patient_state ps;
    cr_assert_eq(rg_store_patient_get(f.st, "c", "q", &ps), 0);
    cr_assert_eq(ps.failing, 1);
    /* fixed: the rule no longer raises */
    char fixed[sizeof test_protocol + 16];
    snprintf(fixed, sizeof fixed, "%s", test_protocol);
    memcpy(strstr(fixed, "error('kaboom')"), "return         ", 15);
    rg_test_write(f.dir, "c/t.lua", fixed);
    snprintf(dir, sizeof dir, "%s/c", f.dir);
    cr_assert_eq(rg_engine_set_clinic(f.eng, "c", dir, err, sizeof err), 0, "%s", err);
    cr_assert_eq(rg_engine_reevaluate(f.eng, "c", "p", T("2026-03-03T00:00:00Z")), 0);
    cr_assert_eq(transitions(&f).n, 1, "q still fails: the alert stays open");
    cr_assert_eq(rg_engine_reevaluate(f.eng, "c", "q", T("2026-03-03T01:00:00Z")), 0);
    s = transitions(&f);
    cr_assert_eq(s.n, 2, "%s", s.text);
    cr_assert(strstr(s.text, "2026-03-03T01:00:00Z resolved regimen.evaluation-failed rule "
                             "'t.boom' of protocol t evaluates cleanly again"), "%s", s.text);
    failing = 0;
    cr_assert_eq(rg_store_failing_summary(f.st, count_failing, &failing), 0);
    cr_assert_eq(failing, 0);
    cr_assert_eq(rg_store_patient_get(f.st, "c", "q", &ps), 0);
    cr_assert_eq(ps.failing, 0);
    fx_close(&f);
}

/* A limit hit (here the instruction budget) is a failure like an error:
 * the clinic's alert names the rule that was running. */
Test(engine, a_limit_hit_is_a_failing_rule_too)
{
    fixture f;
    char err[4096], dir[512];
    fx_open(&f, NULL);
    rg_test_write(f.dir, "c/spin.lua",
                  "local R = require 'regimen'\n"
                  "return R.protocol { id = 'spin', version = '1',\n"
                  "  rules = { { id = 'spin.forever', severity = 'info', check = function(h, now, p)\n"
                  "      if h:last('spin') then while true do end end\n"
                  "    end } } }\n");
    snprintf(dir, sizeof dir, "%s/c", f.dir);
    cr_assert_eq(rg_engine_set_clinic(f.eng, "c", dir, err, sizeof err), 0, "%s", err);
    put(&f, "s1", "p", "spin", "2026-03-01T10:00:00Z", NULL);
    advance(&f, "p", "2026-03-02T00:00:00Z");
    seen s = transitions(&f);
    cr_assert_eq(s.n, 1, "%s", s.text);
    cr_assert(strstr(s.text, "2026-03-01T10:00:00Z open regimen.evaluation-failed rule "
                             "'spin.forever' of protocol spin fails to evaluate"), "%s", s.text);
    fx_close(&f);
}

Test(engine, windows_close_at_their_end)
{
    fixture f;
    fx_open(&f, NULL);
    put(&f, "s1", "p", "start", "2026-03-01T10:00:00+02:00", NULL);
    advance(&f, "p", "2026-03-02T00:00:00Z");
    cr_assert_str_eq(transitions(&f).text, "2026-03-01T08:00:00Z open t.window in window\n"
                                           "2026-03-01T09:00:00Z resolved t.window in window\n");
    fx_close(&f);
}

Test(engine, a_failing_rule_keeps_its_alerts_and_is_reported)
{
    fixture f;
    fx_open(&f, NULL);
    put(&f, "x1", "p", "alarm", "2026-03-01T10:00:00Z", NULL);
    put(&f, "x2", "p", "boom", "2026-03-01T11:00:00Z", NULL);
    advance(&f, "p", "2026-03-02T00:00:00Z");
    /* the failure is an alert of the clinic's (patient ""), at the failing step */
    cr_assert_str_eq(transitions(&f).text,
                     "2026-03-01T10:00:00Z open t.boom alarm\n"
                     "2026-03-01T11:00:00Z open regimen.evaluation-failed rule 't.boom' of "
                     "protocol t fails to evaluate since 2026-03-01T11:00:00Z for 1 patient "
                     "(first: p), so its alerts cannot open or resolve: DIR/c/t.lua:16: kaboom\n");
    cr_assert(strstr(f.err_text, "kaboom"), "%s", f.err_text);
    cr_assert(strstr(f.err_text, "t.lua:16:"), "the error names file and line: %s", f.err_text);
    fx_close(&f);
}

Test(engine, advancing_in_pieces_equals_advancing_at_once)
{
    const char *stops[] = {"2026-03-01T09:00:00Z", "2026-03-01T12:00:00Z",
                           "2026-03-01T12:10:00Z", "2026-03-01T13:30:00Z",
                           "2026-03-01T14:31:00Z", "2026-03-03T00:00:00Z"};
    fixture a, b;
    fx_open(&a, NULL);
    fx_open(&b, NULL);
    fixture *both[2] = {&a, &b};
    for (int i = 0; i < 2; i++) {
        put(both[i], "a1", "p", "ping", "2026-03-01T10:00:00Z", NULL);
        put(both[i], "s1", "p", "start", "2026-03-01T12:00:00Z", NULL);
        put(both[i], "a2", "p", "ping", "2026-03-01T12:30:00Z", NULL);
        put(both[i], "x1", "p", "alarm", "2026-03-01T13:00:00Z", NULL);
    }
    for (size_t i = 0; i < RG_COUNTOF(stops); i++)
        advance(&a, "p", stops[i]);
    advance(&b, "p", stops[RG_COUNTOF(stops) - 1]);
    seen sa = transitions(&a), sb = transitions(&b);
    cr_assert_gt(sa.n, 4);
    cr_assert_str_eq(sa.text, sb.text);
    advance(&b, "p", stops[RG_COUNTOF(stops) - 1]);
    cr_assert_eq(transitions(&b).n, sb.n, "re-advancing to the same moment adds nothing");
    fx_close(&a);
    fx_close(&b);
}

Test(engine, a_late_event_is_taken_in_at_the_patients_clock)
{
    fixture f;
    fx_open(&f, NULL);
    put(&f, "x0", "p", "note", "2026-03-01T15:00:00Z", NULL);
    advance(&f, "p", "2026-03-01T16:00:00Z");
    put(&f, "x1", "p", "alarm", "2026-03-01T09:00:00Z", NULL); /* arrives late */
    rg_patient_state ps;
    cr_assert_eq(rg_store_patient_get(f.st, "c", "p", &ps), 0);
    cr_assert_eq(ps.next_wake, T("2026-03-01T15:00:00Z"), "a late event is due at once");
    advance(&f, "p", "2026-03-01T17:00:00Z");
    cr_assert_str_eq(transitions(&f).text, "2026-03-01T15:00:00Z open t.boom alarm\n");
    fx_close(&f);
}

/* The wall clock stepped back below the patient's clock (NTP, an operator):
 * a late event that arrives then is still evaluated, at the patient's clock
 * (time never runs backwards for a patient), not marked seen and dropped. */
Test(engine, a_late_event_is_evaluated_when_the_wall_clock_stepped_back)
{
    fixture f;
    fx_open(&f, NULL);
    put(&f, "x0", "p", "note", "2026-03-01T15:00:00Z", NULL);
    advance(&f, "p", "2026-03-01T16:00:00Z");
    put(&f, "x1", "p", "alarm", "2026-03-01T09:00:00Z", NULL); /* arrives late */
    advance(&f, "p", "2026-03-01T14:00:00Z"); /* the wall clock is now behind the patient's */
    cr_assert_str_eq(transitions(&f).text, "2026-03-01T15:00:00Z open t.boom alarm\n");
    advance(&f, "p", "2026-03-01T17:00:00Z");
    cr_assert_eq(transitions(&f).n, 1, "%s", transitions(&f).text);
    fx_close(&f);
}

Test(engine, params_layer_protocol_clinic_patient)
{
    fixture f;
    /* the clinic lowers the limit to 2; p2's plan raises it to 5 */
    fx_open(&f, "return { params = { limit = 2, t = { wait = 60 * 60 * 1000 } } }\n");
    for (int p = 1; p <= 2; p++) {
        char pid[8], id[16];
        snprintf(pid, sizeof pid, "p%d", p);
        if (p == 2) {
            snprintf(id, sizeof id, "e%d", p);
            put(&f, id, pid, "enrolled", "2026-03-01T09:00:00Z", "{\"limit\":5}");
        }
        snprintf(id, sizeof id, "a%d", p);
        put(&f, id, pid, "ping", "2026-03-01T10:00:00Z", NULL);
        snprintf(id, sizeof id, "b%d", p);
        put(&f, id, pid, "ping", "2026-03-01T10:10:00Z", NULL);
        advance(&f, pid, "2026-03-02T00:00:00Z");
    }
    /* p1: limit 2 reached, no alert. p2: limit 5, alert after wait = 1 h */
    seen s = transitions(&f);
    cr_assert_str_eq(s.text, "2026-03-01T11:10:00Z open t.due ping overdue\n");
    cr_assert(strstr(s.last_params, "\"limit\":5") && strstr(s.last_params, "\"wait\":3600000"),
              "provenance keeps the parameters in force: %s", s.last_params);
    cr_assert(strstr(s.last_evidence, "\"b2\""), "evidence names the events: %s",
              s.last_evidence);
    fx_close(&f);
}

Test(engine, a_bad_patient_plan_is_an_error_not_a_silent_default)
{
    fixture f;
    fx_open(&f, NULL);
    put(&f, "e1", "p", "plan_adjusted", "2026-03-01T09:00:00Z", "{\"limit\":\"five\"}");
    put(&f, "a1", "p", "ping", "2026-03-01T10:00:00Z", NULL);
    advance(&f, "p", "2026-03-02T00:00:00Z");
    cr_assert(strstr(f.err_text, "patient plan: event e1 sets 'limit', which is a count: write "
                                 "a whole number such as 3, not \"five\""), "%s", f.err_text);
    fx_close(&f);
}

static void expect_clinic_error(const char *clinic_lua, const char *expect)
{
    fixture f;
    char err[4096], path[512];
    rg_test_tmpdir(f.dir);
    rg_test_write(f.dir, "c/t.lua", test_protocol);
    rg_test_write(f.dir, "c/clinic.lua", clinic_lua);
    snprintf(path, sizeof path, "%s/c", f.dir);
    rg_clinic *c = NULL;
    rg_limits lim = RG_LIMITS_DEFAULT;
    cr_assert_neq(rg_clinic_load(&c, "c", path, NULL, NULL, &lim, err, sizeof err), 0);
    cr_assert_null(c);
    cr_assert(strstr(err, expect), "expected '%s' in: %s", expect, err);
    rg_test_rmdir(f.dir);
}

Test(engine, clinic_settings_are_checked)
{
    expect_clinic_error("return { params = { limt = 2 } }",
                        "no loaded protocol has a parameter named 'limt'");
    expect_clinic_error("return { params = { t = { limt = 2 } } }",
                        "clinic.lua:1: params for 't': no parameter named 'limt' (did you mean "
                        "'limit'?) (known: ");
    expect_clinic_error("return { params = { t = { limit = 'two' } } }",
                        "clinic.lua:1: params for 't': 'limit' is a count: write a whole number "
                        "such as 3, not \"two\"");
    expect_clinic_error("return { params = {\n  wait = 3 } }",
                        "clinic.lua:2: params: 'wait' is a duration: write R.hours(3) or "
                        "R.minutes(180)");
    expect_clinic_error("return { params = { nope = { limit = 2 } } }",
                        "params for 'nope': no protocol with that id");
    expect_clinic_error("return { paramz = {} }", "unknown setting 'paramz'");
    expect_clinic_error("return { include = { '../etc' } }", "must be the name of a shipped");
}

/* A protocol version that cannot be recorded in provenance is not run: the
 * clinic keeps the version it had, and the error says why. */
Test(engine, protocols_whose_versions_cannot_be_recorded_are_not_taken)
{
    fixture f;
    char err[4096], path[600], db[600];
    fx_open(&f, NULL);
    snprintf(db, sizeof db, "%s/db.sqlite", f.dir);
    sqlite3 *h;
    cr_assert_eq(sqlite3_open(db, &h), SQLITE_OK);
    cr_assert_eq(sqlite3_exec(h, "CREATE TRIGGER no_versions BEFORE INSERT ON protocol_versions "
                                 "BEGIN SELECT RAISE(ABORT, 'provenance refused'); END;",
                              NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(h);
    rg_test_write(f.dir, "c/t.lua", "local R = require 'regimen'\n"
                  "return R.protocol { id = 't', version = '3.0', rules = { { id = 't.r',\n"
                  "  severity = 'info', check = function() end } } }\n");
    snprintf(path, sizeof path, "%s/c", f.dir);
    cr_assert_neq(rg_engine_set_clinic(f.eng, "c", path, err, sizeof err), 0);
    cr_assert(strstr(err, "not taken: their versions could not be recorded") &&
              strstr(err, "provenance refused"), "%s", err);
    rg_clinic *c = rg_engine_clinic(f.eng, "c");
    cr_assert(c && !strcmp(c->protos[0].version, "2.0"), "the old version keeps running");
    fx_close(&f);
}

Test(engine, discharge_like_applies_false_resolves_everything)
{
    fixture f;
    char err[4096], path[512];
    fx_open(&f, NULL);
    rg_test_write(f.dir, "d/t.lua",
                  "local R = require 'regimen'\n"
                  "return R.protocol { id = 'd', version = '1',\n"
                  "  applies = function(h) return h:last('stop') == nil end,\n"
                  "  rules = { { id = 'd.a', severity = 'info', check = function(h)\n"
                  "    return { R.alert { key = 1, message = 'one' }, R.alert { key = 2, message = 'two' } }\n"
                  "  end } } }\n");
    snprintf(path, sizeof path, "%s/d", f.dir);
    cr_assert_eq(rg_engine_set_clinic(f.eng, "c", path, err, sizeof err), 0, "%s", err);
    put(&f, "a", "p", "note", "2026-03-01T10:00:00Z", NULL);
    put(&f, "b", "p", "stop", "2026-03-01T11:00:00Z", NULL);
    advance(&f, "p", "2026-03-02T00:00:00Z");
    cr_assert_str_eq(transitions(&f).text, "2026-03-01T10:00:00Z open d.a one\n"
                                           "2026-03-01T10:00:00Z open d.a two\n"
                                           "2026-03-01T11:00:00Z resolved d.a one\n"
                                           "2026-03-01T11:00:00Z resolved d.a two\n");
    fx_close(&f);
}

/* Event tables decode `data` when a rule first reads it (not before), keep
 * it, show it to pairs, and refuse to decode once their evaluation is over. */
Test(engine, event_data_is_decoded_when_read)
{
    fixture f;
    char err[4096], path[512];
    fx_open(&f, NULL);
    rg_test_write(f.dir, "l/t.lua",
                  "local R = require 'regimen'\n"
                  "local kept\n"
                  "return R.protocol { id = 'l', version = '1',\n"
                  "  rules = { { id = 'l.a', severity = 'info', check = function(h)\n"
                  "    if kept then local ok, e = pcall(function() return kept.data end)\n"
                  "      return R.alert { key = 'late', message = tostring(ok) .. ' ' .. tostring(e) }\n"
                  "    end\n"
                  "    local v = h:last('vitals')\n"
                  "    if not v then return end\n"
                  "    local before = rawget(v, 'data')\n"
                  "    local d = v.data\n"
                  "    local fields = {}\n"
                  "    for k in pairs(h:first('note')) do fields[#fields + 1] = k end\n"
                  "    table.sort(fields)\n"
                  "    kept = h:first('other')\n"
                  "    return R.alert { key = 'v', message = ('%s %d %s %s %s %s'):format(\n"
                  "      tostring(before), d.bp[2], d.who, tostring(rawget(v, 'data') == d),\n"
                  "      table.concat(fields, ','), tostring(next(h:first('note').data))) }\n"
                  "  end } } }\n");
    snprintf(path, sizeof path, "%s/l", f.dir);
    cr_assert_eq(rg_engine_set_clinic(f.eng, "c", path, err, sizeof err), 0, "%s", err);
    put(&f, "o1", "p", "other", "2026-03-01T08:00:00Z", "{\"a\":1}");
    put(&f, "n1", "p", "note", "2026-03-01T09:00:00Z", NULL);
    put(&f, "v1", "p", "vitals", "2026-03-01T10:00:00Z",
        "{\"bp\":[150,95],\"who\":\"n\\u00e9e\",\"x\":null}");
    put(&f, "n2", "q", "note", "2026-03-01T09:00:00Z", NULL);
    put(&f, "v2", "q", "vitals", "2026-03-01T10:00:00Z", "{\"bp\":[1,2],\"who\":\"q\"}");
    advance(&f, "p", "2026-03-02T00:00:00Z");
    advance(&f, "q", "2026-03-02T00:00:00Z");
    seen s = transitions(&f);
    cr_assert_eq(s.n, 2, "%s", s.text);
    static const char want[] = "2026-03-01T10:00:00Z open l.a nil 95 n\xc3\xa9" "e true "
                               "at,data,id,type nil\n2026-03-01T09:00:00Z open l.a false ";
    cr_assert(!strncmp(s.text, want, sizeof want - 1), "%s", s.text);
    cr_assert(strstr(s.text, "l/t.lua:5: event data read outside the evaluation the event was "
                             "given to\n"), "%s", s.text);
    fx_close(&f);
}

/* The history's queries over compiled data: filters compare the compiled
 * fields as Lua's == would (1 == 1.0, strings, booleans; null and nested
 * values equal nothing given), first_after / last_before / since / values,
 * events at one instant in arrival order, types no event has. */
Test(engine, history_queries_read_the_compiled_history)
{
    fixture f;
    char err[4096], path[512];
    fx_open(&f, NULL);
    rg_test_write(f.dir, "q/t.lua",
                  "local R = require 'regimen'\n"
                  "local function ids(list) local t = {} for i, e in ipairs(list) do t[i] = e.id end\n"
                  "  return table.concat(t, ',') end\n"
                  "local function id(e) return e and e.id or 'nil' end\n"
                  "return R.protocol { id = 'q', version = '1',\n"
                  "  rules = { { id = 'q.a', severity = 'info', check = function(h, now)\n"
                  "    if not h:last('a', { s = 'v' }) then return end -- all four are in\n"
                  "    local a2 = h:first('a', { n = 2 })\n"
                  "    local parts = {\n"
                  "      h:count('a', { n = 1.0 }), h:count('a', { f = 2 }), h:count('a', { f = 2.5 }),\n"
                  "      h:count('a', { s = 'x' }), h:count('a', { b = true }), h:count('a', { b = false }),\n"
                  "      h:count('a', { z = 0 }), h:count('a', { o = 1 }), h:count('a', { n = 1, s = 'x' }),\n"
                  "      h:count('nosuch'), id(h:first_after(a2, 'a')), id(h:first_after(a2)),\n"
                  "      id(h:last_before(a2, 'a')), id(h:first_after(a2, 'a', { n = 9 })),\n"
                  "      ids(h:since(a2.at, 'a')), table.concat(h:values('a', 'n'), ','),\n"
                  "      table.concat(h:values('a', 's', { b = true }), ','), ids(h:after(a2.at)),\n"
                  "      id(h:first_after(a2.at - 1, 'a')), tostring(h:first('a', { n = 2 }) == a2),\n"
                  "    }\n"
                  "    for i, v in ipairs(parts) do parts[i] = tostring(v) end\n"
                  "    return R.alert { message = table.concat(parts, ' ') }\n"
                  "  end } } }\n");
    snprintf(path, sizeof path, "%s/q", f.dir);
    cr_assert_eq(rg_engine_set_clinic(f.eng, "c", path, err, sizeof err), 0, "%s", err);
    put(&f, "a1", "p", "a", "2026-03-01T08:00:00Z",
        "{\"n\":1,\"f\":2.0,\"s\":\"x\",\"b\":true,\"z\":null,\"o\":{\"k\":1}}");
    put(&f, "a2", "p", "a", "2026-03-01T09:00:00Z", "{\"n\":2,\"f\":2.5,\"s\":\"y\",\"b\":false}");
    put(&f, "b1", "p", "b", "2026-03-01T09:00:00Z", NULL); /* same instant, arrived later */
    put(&f, "a3", "p", "a", "2026-03-01T09:00:00Z", "{\"n\":3,\"s\":\"w\",\"b\":true}");
    put(&f, "a4", "p", "a", "2026-03-01T10:00:00Z", "{\"s\":\"v\"}");
    advance(&f, "p", "2026-03-02T00:00:00Z");
    seen s = transitions(&f);
    cr_assert_eq(s.n, 1, "%s", s.text);
    cr_assert_str_eq(s.text, "2026-03-01T10:00:00Z open q.a "
                             "1 1 1 1 2 1 0 0 1 0 a3 b1 a1 nil a2,a3,a4 1,2,3 x,w a4 a2 true\n");
    fx_close(&f);
}

/* The parameters written with each transition are the ones in force: shared
 * text for a protocol's own, made again when the clinic is reloaded with
 * other values, and the patient's own when a plan changed them. */
Test(engine, transition_params_follow_reloads_and_plans)
{
    fixture f;
    char err[4096], path[512];
    fx_open(&f, NULL);
    put(&f, "a1", "p1", "ping", "2026-03-01T10:00:00Z", NULL);
    advance(&f, "p1", "2026-03-02T00:00:00Z");
    cr_assert_str_eq(transitions(&f).last_params, "{\"limit\":3,\"wait\":7200000}");
    /* an enrolment whose data sets no parameter keeps the protocol's own */
    put(&f, "e2", "p2", "enrolled", "2026-03-01T09:00:00Z", "{\"program\":\"x\"}");
    put(&f, "a2", "p2", "ping", "2026-03-01T10:00:00Z", NULL);
    advance(&f, "p2", "2026-03-02T00:00:00Z");
    cr_assert_str_eq(transitions(&f).last_params, "{\"limit\":3,\"wait\":7200000}");
    rg_test_write(f.dir, "c/clinic.lua", "return { params = { t = { wait = 60 * 60 * 1000 } } }\n");
    snprintf(path, sizeof path, "%s/c", f.dir);
    cr_assert_eq(rg_engine_set_clinic(f.eng, "c", path, err, sizeof err), 0, "%s", err);
    put(&f, "a3", "p3", "ping", "2026-03-01T10:00:00Z", NULL);
    advance(&f, "p3", "2026-03-02T00:00:00Z");
    cr_assert_str_eq(transitions(&f).last_params, "{\"limit\":3,\"wait\":3600000}");
    put(&f, "e4", "p4", "enrolled", "2026-03-01T09:00:00Z", "{\"limit\":4}");
    put(&f, "a4", "p4", "ping", "2026-03-01T10:00:00Z", NULL);
    advance(&f, "p4", "2026-03-02T00:00:00Z");
    cr_assert_str_eq(transitions(&f).last_params, "{\"limit\":4,\"wait\":3600000}");
    put(&f, "a5", "p5", "ping", "2026-03-01T10:00:00Z", NULL);
    advance(&f, "p5", "2026-03-02T00:00:00Z");
    cr_assert_str_eq(transitions(&f).last_params, "{\"limit\":3,\"wait\":3600000}");
    fx_close(&f);
}

/* The plan in force is read from the latest enrolment on (the plan events
 * found through the index by type): an earlier course's settings (limit 5,
 * limit 9) do not carry over a re-enrolment, a later plan_adjusted applies
 * whatever lies between (a ping, a note). */
Test(engine, a_re_enrolment_starts_a_new_plan)
{
    fixture f;
    fx_open(&f, NULL);
    put(&f, "e1", "p6", "enrolled", "2026-03-01T08:00:00Z", "{\"limit\":5}");
    put(&f, "j1", "p6", "plan_adjusted", "2026-03-01T08:30:00Z", "{\"limit\":9}");
    put(&f, "e2", "p6", "enrolled", "2026-03-01T09:00:00Z", "{\"program\":\"x\"}");
    put(&f, "n1", "p6", "note", "2026-03-01T09:30:00Z", NULL);
    put(&f, "a1", "p6", "ping", "2026-03-01T10:00:00Z", NULL);
    put(&f, "j2", "p6", "plan_adjusted", "2026-03-01T10:30:00Z", "{\"wait\":10800000}");
    advance(&f, "p6", "2026-03-02T00:00:00Z");
    cr_assert_str_eq(transitions(&f).last_params, "{\"limit\":3,\"wait\":10800000}");
    fx_close(&f);
}

/* Evidence is the JSON list json_dumps would write, escapes included. */
Test(engine, evidence_names_events_as_json)
{
    fixture f;
    fx_open(&f, NULL);
    put(&f, "q\\\"uote\\\\d/\\u00e9", "p", "ping", "2026-03-01T10:00:00Z", NULL);
    put(&f, "plain", "p", "ping", "2026-03-01T10:05:00Z", NULL);
    advance(&f, "p", "2026-03-02T00:00:00Z");
    seen s = transitions(&f);
    json_t *want = json_pack("[ss]", "q\"uote\\d/\xc3\xa9", "plain");
    char *text = json_dumps(want, JSON_COMPACT);
    cr_assert_str_eq(s.last_evidence, text);
    cr_assert_str_eq(s.last_evidence, "[\"q\\\"uote\\\\d/\xc3\xa9\",\"plain\"]");
    free(text);
    json_decref(want);
    fx_close(&f);
}

/* ---- corrections (docs/corrections.md) ------------------------------------------ */

/* An alarm entered in error: its alert resolves at the correction's instant;
 * the opening already published stays. Replayed from a store that holds both
 * versions, the same two transitions at the same instants. */
Test(engine, a_retracted_event_resolves_its_alert_at_corrected_at)
{
    fixture f, g;
    fx_open(&f, NULL);
    put(&f, "a1", "p1", "alarm", "2026-03-01T10:00:00Z", NULL);
    advance(&f, "p1", "2026-03-01T11:00:00Z");
    cr_assert_str_eq(transitions(&f).text, "2026-03-01T10:00:00Z open t.boom alarm\n");
    correct(&f, "a1", "p1", 2, "entered-in-error", "alarm", "2026-03-01T10:00:00Z",
            "2026-03-01T12:00:00Z");
    advance(&f, "p1", "2026-03-01T13:00:00Z");
    const char *want = "2026-03-01T10:00:00Z open t.boom alarm\n"
                       "2026-03-01T12:00:00Z resolved t.boom alarm\n";
    cr_assert_str_eq(transitions(&f).text, want);
    cr_assert_str_eq(transitions(&f).last_evidence, "[]", "the retracted alarm is not evidence");

    fx_open(&g, NULL);
    put(&g, "a1", "p1", "alarm", "2026-03-01T10:00:00Z", NULL);
    correct(&g, "a1", "p1", 2, "entered-in-error", "alarm", "2026-03-01T10:00:00Z",
            "2026-03-01T12:00:00Z");
    advance(&g, "p1", "2026-03-01T13:00:00Z");
    cr_assert_str_eq(transitions(&g).text, want, "a replay of both versions");
    /* an id first seen withdrawn (an EHR sending its latest version) is never seen */
    correct_first(&g, "a2", "p2", "alarm");
    advance(&g, "p2", "2026-03-01T13:00:00Z");
    cr_assert_str_eq(transitions(&g).text, want, "the withdrawn alarm opened nothing");
    fx_close(&f);
    fx_close(&g);
}

/* A correction made before the patient's clock (it arrived late) is taken
 * in at the clock, as a late event is. */
Test(engine, a_late_correction_takes_effect_at_the_patients_clock)
{
    fixture f;
    fx_open(&f, NULL);
    put(&f, "a1", "p1", "alarm", "2026-03-01T10:00:00Z", NULL);
    put(&f, "o1", "p1", "other", "2026-03-01T12:30:00Z", NULL);
    advance(&f, "p1", "2026-03-01T13:00:00Z"); /* clock: 12:30 */
    correct(&f, "a1", "p1", 2, "entered-in-error", "alarm", "2026-03-01T10:00:00Z",
            "2026-03-01T12:00:00Z");
    advance(&f, "p1", "2026-03-01T13:00:00Z");
    cr_assert_str_eq(transitions(&f).text, "2026-03-01T10:00:00Z open t.boom alarm\n"
                                           "2026-03-01T12:30:00Z resolved t.boom alarm\n");
    fx_close(&f);
}

/* An amended time: from corrected_at on the rules see the new version only
 * (its due moves later, so the alert resolves and opens again when due). */
Test(engine, an_amended_event_is_re_evaluated_at_corrected_at)
{
    fixture f;
    fx_open(&f, NULL);
    put(&f, "p-a", "p1", "ping", "2026-03-01T10:00:00Z", NULL);
    advance(&f, "p1", "2026-03-01T13:00:00Z");
    correct(&f, "p-a", "p1", 2, "amended", "ping", "2026-03-01T12:30:00Z", "2026-03-01T13:30:00Z");
    advance(&f, "p1", "2026-03-01T16:00:00Z");
    cr_assert_str_eq(transitions(&f).text, "2026-03-01T12:00:00Z open t.due ping overdue\n"
                                           "2026-03-01T13:30:00Z resolved t.due ping overdue\n"
                                           "2026-03-01T14:30:00Z open t.due ping overdue\n");
    /* a third version back to the first time, then a retraction */
    correct(&f, "p-a", "p1", 3, "corrected", "ping", "2026-03-01T10:00:00Z", "2026-03-01T17:00:00Z");
    correct(&f, "p-a", "p1", 4, "entered-in-error", "ping", "2026-03-01T10:00:00Z",
            "2026-03-01T18:00:00Z");
    advance(&f, "p1", "2026-03-01T19:00:00Z");
    seen s = transitions(&f);
    cr_assert_eq(s.n, 4, "%s", s.text); /* still open at 17:00 (due 12:00); resolved at 18:00 */
    cr_assert(strstr(s.text, "2026-03-01T18:00:00Z resolved t.due"), "%s", s.text);
    fx_close(&f);
}

/* ---- the history cache: an optimisation only ------------------------------------ */

static void fx_open_cached(fixture *f, size_t cache_bytes)
{
    char err[4096], path[512];
    memset(f->err_text, 0, sizeof f->err_text);
    rg_test_tmpdir(f->dir);
    rg_test_write(f->dir, "c/t.lua", test_protocol);
    snprintf(path, sizeof path, "%s/db.sqlite", f->dir);
    cr_assert_eq(rg_store_open(&f->st, path, NULL, err, sizeof err), 0, "%s", err);
    rg_engine_opts o = {.limits = RG_LIMITS_DEFAULT, .on_error = on_error, .ud = f,
                        .history_cache_bytes = cache_bytes};
    cr_assert_eq(rg_engine_new(&f->eng, f->st, &o), 0);
    snprintf(path, sizeof path, "%s/c", f->dir);
    cr_assert_eq(rg_engine_set_clinic(f->eng, "c", path, err, sizeof err), 0, "%s", err);
}

/* The same rounds of events into engines with and without a cache: events
 * in order, late ones (before the patient's clock), several at one instant,
 * corrections of earlier events (amended, entered in error, some late: a
 * corrected history no longer only grows), and a round whose transaction is rolled back after it was evaluated (what
 * the cache saw then was never stored). Every transition must be the same. */
static void cache_equals_cold(size_t cache_bytes)
{
    fixture f[2];
    fx_open_cached(&f[0], cache_bytes);
    fx_open_cached(&f[1], 0);
    static const char *const types[] = {"ping", "ping", "start", "alarm", "boom", "other"};
    /* per event (round * 5 + j): patient, type, version, retracted, time */
    static int ptn[300], typ[300], ver[300], kept[300];
    static char when[300][RG_TIME_BUFSZ];
    int corrections = 0;
    memset(ver, 0, sizeof ver);
    for (int i = 0; i < 300; i++)
        kept[i] = 2; /* not stored (yet) */
    uint64_t r = 7;
    rg_time now = T("2026-03-01T08:00:00Z");
    char at[RG_TIME_BUFSZ], id[32], patient[16], until[RG_TIME_BUFSZ];
    for (int round = 0; round < 60; round++) {
        int rollback = round % 13 == 12;
        for (int k = 0; k < 2; k++)
            cr_assert_eq(rg_store_begin(f[k].st), 0);
        for (int j = 0; j < 5; j++) {
            r = r * 6364136223846793005ULL + 1442695040888963407ULL;
            int late = (r >> 40) % 5 == 0;
            rg_time t = now - (late ? (rg_time)((r >> 20) % 7200000) : 0);
            snprintf(id, sizeof id, "e%d-%d", round, j);
            snprintf(patient, sizeof patient, "p%d", (int)((r >> 33) % 4));
            rg_time_format(t, at);
            int earlier = round ? (int)((r >> 13) % (unsigned)(5 * round)) : -1;
            if (!rollback && earlier >= 0 && (r >> 55) % 4 == 0 && kept[earlier] == 0) {
                /* a correction of an earlier event: amended (another type and
                 * time) or entered in error; made now or, sometimes, late */
                char cid[32], cpatient[16], cat[RG_TIME_BUFSZ];
                snprintf(cid, sizeof cid, "e%d-%d", earlier / 5, earlier % 5);
                snprintf(cpatient, sizeof cpatient, "p%d", ptn[earlier]);
                int retract = (r >> 9) % 3 == 0;
                rg_time_format(late ? t : now, cat);
                if (retract)
                    kept[earlier] = 1; /* its type stays; no later version */
                else
                    typ[earlier] = (int)((r >> 45) % 6);
                ver[earlier]++;
                corrections++;
                for (int k = 0; k < 2; k++)
                    correct(&f[k], cid, cpatient, ver[earlier],
                            retract ? "entered-in-error" : "amended", types[typ[earlier]],
                            retract ? when[earlier] : at, cat);
                continue;
            }
            int me = round * 5 + j;
            ptn[me] = (int)((r >> 33) % 4);
            typ[me] = (int)((r >> 45) % 6);
            ver[me] = 1;
            kept[me] = 0;
            snprintf(when[me], sizeof when[me], "%s", at);
            for (int k = 0; k < 2; k++)
                put(&f[k], id, patient, types[typ[me]], at, NULL);
        }
        now += (rg_time)((r >> 50) % 3) * 1800000;
        rg_time_format(now, until);
        for (int k = 0; k < 2; k++) {
            for (int p = 0; p < 4; p++) {
                snprintf(patient, sizeof patient, "p%d", p);
                advance(&f[k], patient, until);
            }
            if (rollback) {
                rg_store_rollback(f[k].st);
                for (int j = 0; j < 5; j++)
                    kept[round * 5 + j] = 2; /* never stored */
            }
            else
                cr_assert_eq(rg_store_commit(f[k].st), 0);
        }
    }
    seen a = transitions(&f[0]), b = transitions(&f[1]);
    cr_assert_gt(b.n, 10, "the rounds make too few transitions to compare");
    cr_assert_gt(corrections, 10, "the rounds make too few corrections (%d)", corrections);
    cr_assert_str_eq(a.text, b.text, "with a cache of %zu bytes:\n%s\nwithout:\n%s", cache_bytes,
                     a.text, b.text);
    rg_hcache_stats hs;
    rg_engine_cache_stats(f[0].eng, &hs);
    cr_assert_gt(hs.hits, 0, "the cache was never used");
    cr_assert_gt(hs.evictions, 0, "neither the rollbacks nor the cap ever dropped an entry");
    cr_assert_leq(hs.bytes, hs.cap);
    /* the rules' answers kept beside the histories were taken up (and gave
     * the cold evaluation's transitions, compared above) */
    if (cache_bytes >= (size_t)1 << 20)
        cr_assert_gt(hs.kept_hits, 0, "no evaluation started from kept answers");
    for (int k = 0; k < 2; k++)
        fx_close(&f[k]);
}

Test(engine, history_cache_gives_the_answers_of_a_cold_evaluation)
{
    cache_equals_cold((size_t)64 << 20);
}

Test(engine, history_cache_evicting_under_a_tiny_cap_changes_no_answer)
{
    cache_equals_cold(2048);
}

/* Kept answers count in their entry's bytes, stay with the patient's next
 * history and go with the entry (over the cap, or cleared). */
Test(engine, history_cache_counts_kept_answers_in_its_bytes)
{
    rg_hevent ev[2];
    memset(ev, 0, sizeof ev);
    rg_hcache *c = rg_hcache_new(4096);
    cr_assert_not_null(c);
    rg_hcache_stats st;
    const void *blob;
    size_t len;
    rg_hcache_keep(c, "c", "p1", "xx", 2); /* no history: nothing kept */
    cr_assert_eq(rg_hcache_kept(c, "c", "p1", &blob, &len), 0);
    rg_hcache_put(c, "c", "p1", ev, 1, "t", 1, 1);
    rg_hcache_stats_get(c, &st);
    size_t bare = st.bytes;
    char big[1000];
    memset(big, 'k', sizeof big);
    rg_hcache_keep(c, "c", "p1", big, sizeof big);
    rg_hcache_stats_get(c, &st);
    cr_assert_eq(st.bytes, bare + sizeof big);
    rg_hcache_put(c, "c", "p1", ev, 2, "tt", 2, 2); /* a new history: the answers stay */
    cr_assert_eq(rg_hcache_kept(c, "c", "p1", &blob, &len), 1);
    cr_assert_eq(len, sizeof big);
    cr_assert_eq(memcmp(blob, big, len), 0);
    rg_hcache_keep(c, "c", "p1", "ab", 2); /* replaced */
    rg_hcache_stats_get(c, &st);
    cr_assert_eq(rg_hcache_kept(c, "c", "p1", &blob, &len), 1);
    cr_assert_eq(len, 2);
    size_t with_two = st.bytes;
    /* others fill the cache: p1, the oldest, goes with its answers */
    for (int i = 0; i < 40; i++) {
        char name[16];
        snprintf(name, sizeof name, "q%d", i);
        rg_hcache_put(c, "c", name, ev, 2, "tt", 2, 2);
        rg_hcache_keep(c, "c", name, big, 200);
        rg_hcache_stats_get(c, &st);
        cr_assert_leq(st.bytes, st.cap);
    }
    cr_assert_eq(rg_hcache_kept(c, "c", "p1", &blob, &len), 0);
    cr_assert_gt(with_two, bare);
    rg_hcache_clear(c);
    rg_hcache_stats_get(c, &st);
    cr_assert_eq(st.bytes, 0);
    cr_assert_eq(st.entries, 0);
    rg_hcache_free(c);
}

/* An alert's message may be a function: called when the alert opens, never
 * while it stays open (issue 26: an open alert costs no formatting). The
 * function below fails if it is called for the open alert 'k' once a second
 * ping is there; a third ping changes the key, so it is called again. */
static const char lazy_protocol[] =
    "local R = require 'regimen'\n"
    "return R.protocol { id = 't', version = '1',\n"
    "  rules = {\n"
    "    { id = 't.lazy', severity = 'info', check = function(h, now, p)\n"
    "        local n = h:count('ping')\n"
    "        if n == 0 then return end\n"
    "        local key = n >= 3 and 'k3' or 'k'\n"
    "        return R.alert { key = key, message = function()\n"
    "            if n == 2 then error('called for an open alert') end\n"
    "            return ('opened at ping %d'):format(n) end }\n"
    "      end },\n"
    "    { id = 't.bad', severity = 'info', check = function(h, now, p)\n"
    "        if h:last('bad') then return R.alert { message = function() return 42 end } end\n"
    "      end },\n"
    "  } }\n";

Test(engine, a_message_function_is_called_only_when_the_alert_opens)
{
    fixture f;
    char err[4096], path[512];
    memset(f.err_text, 0, sizeof f.err_text);
    rg_test_tmpdir(f.dir);
    rg_test_write(f.dir, "c/t.lua", lazy_protocol);
    snprintf(path, sizeof path, "%s/db.sqlite", f.dir);
    cr_assert_eq(rg_store_open(&f.st, path, NULL, err, sizeof err), 0, "%s", err);
    rg_engine_opts o = {.limits = RG_LIMITS_DEFAULT, .on_error = on_error, .ud = &f};
    cr_assert_eq(rg_engine_new(&f.eng, f.st, &o), 0);
    snprintf(path, sizeof path, "%s/c", f.dir);
    cr_assert_eq(rg_engine_set_clinic(f.eng, "c", path, err, sizeof err), 0, "%s", err);
    put(&f, "a1", "p", "ping", "2026-03-01T10:00:00Z", NULL);
    put(&f, "a2", "p", "ping", "2026-03-01T11:00:00Z", NULL);
    put(&f, "a3", "p", "ping", "2026-03-01T12:00:00Z", NULL);
    advance(&f, "p", "2026-03-02T00:00:00Z");
    cr_assert_str_eq(f.err_text, "", "the message function ran for an open alert: %s",
                     f.err_text);
    seen s = transitions(&f);
    cr_assert_str_eq(s.text,
                     "2026-03-01T10:00:00Z open t.lazy opened at ping 1\n"
                     "2026-03-01T12:00:00Z resolved t.lazy opened at ping 1\n"
                     "2026-03-01T12:00:00Z open t.lazy opened at ping 3\n");
    put(&f, "b1", "p", "bad", "2026-03-02T10:00:00Z", NULL);
    advance(&f, "p", "2026-03-03T00:00:00Z");
    cr_assert(strstr(f.err_text, "t.lua") && strstr(f.err_text, "t.bad") &&
                  strstr(f.err_text, "message function must return a string, not number"),
              "%s", f.err_text);
    fx_close(&f);
}
