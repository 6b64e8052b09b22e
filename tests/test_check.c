/*
 * test_check.c - a clinic's mistakes caught before they go live (issue 23),
 * through the real build/regimen binary: parameter kinds and where a
 * parameter is set (clinic.lua lines, did-you-mean, course parameters set
 * once), `regimen check` evaluating every rule on generated histories and
 * the clinic's scenarios, the generated reference (docs/reference.md),
 * `simulate --clinic` for a clinic no event names, and scenario failures
 * that say what differs. Run from the repository root (make test does).
 */
#define RG_TEST_SERVE
#include "helpers.h"

#include "core/rg.h"

/* Runs `regimen check DIR` on a clinic directory whose clinic.lua is text;
 * returns the exit code, with stdout and stderr joined in *all. */
static int check_clinic(const char *dir, const char *clinic_lua, char **all)
{
    char path[512], *out, *err;
    rg_test_write(dir, "c/clinic.lua", clinic_lua);
    snprintf(path, sizeof path, "%s/c", dir);
    const char *args[] = {"check", path, NULL};
    int rc = rg_test_run(args, NULL, &out, &err);
    size_t n = strlen(out) + strlen(err) + 1;
    *all = malloc(n);
    snprintf(*all, n, "%s%s", out, err);
    free(out);
    free(err);
    return rc;
}

/* Runs `regimen simulate` of clinic c (DIR/c) on one event of type x at
 * 2026-03-09T14:05, until May, in format fmt (NULL: the table); returns the
 * exit code, with its stdout and stderr. */
static int simulate_one_x(const char *dir, const char *fmt, char **out, char **err)
{
    char path[600], events[600];
    rg_test_write(dir, "events.jsonl",
                  "{\"id\":\"e1\",\"clinic\":\"c\",\"patient\":\"p\",\"type\":\"x\","
                  "\"at\":\"2026-03-09T14:05:00Z\"}\n");
    snprintf(path, sizeof path, "c=%s/c", dir);
    snprintf(events, sizeof events, "%s/events.jsonl", dir);
    const char *sim[] = {"simulate", "--events", events, "--until", "2026-05-01T00:00:00Z",
                         "--clinic", path, fmt ? "--format" : NULL, fmt, NULL};
    return rg_test_run(sim, NULL, out, err);
}

/* The first case: R.weeks(6) for the booster interval passed check,
 * then failed every maintenance evaluation inside lib/course.lua. Now it is
 * a duration parameter: check evaluates it, and simulate gives the booster
 * six weeks after the last infusion. */
Test(check, a_weeks_override_of_the_booster_interval_works_end_to_end)
{
    char dir[256], path[600], events[600], *all, *out, *err;
    rg_test_tmpdir(dir);
    const char *lua = "local R = require \"regimen\"\n"
                      "return { include = { \"ketamine\" },\n"
                      "  params = {\n"
                      "    booster_interval_days = R.weeks(6),\n"
                      "  },\n"
                      "}\n";
    cr_assert_eq(check_clinic(dir, lua, &all), 0, "%s", all);
    cr_assert(strstr(all, ": 0 errors"), "every rule evaluated cleanly:\n%s", all);
    free(all);
    rg_test_write(dir, "events.jsonl",
                  "{\"id\":\"e1\",\"clinic\":\"c\",\"patient\":\"p\",\"type\":\"enrolled\","
                  "\"at\":\"2026-03-02T09:00:00Z\",\"data\":{\"program\":\"ketamine\","
                  "\"acute_infusions\":1}}\n"
                  "{\"id\":\"e2\",\"clinic\":\"c\",\"patient\":\"p\",\"type\":\"infusion\","
                  "\"at\":\"2026-03-03T09:00:00Z\",\"data\":{\"dose_mg_per_kg\":0.5}}\n");
    snprintf(path, sizeof path, "c=%s/c", dir);
    snprintf(events, sizeof events, "%s/events.jsonl", dir);
    const char *sim[] = {"simulate", "--events", events, "--until", "2026-05-01T00:00:00Z",
                         "--clinic", path, "--format", "jsonl", NULL};
    cr_assert_eq(rg_test_run(sim, NULL, &out, &err), 0, "%s", err);
    cr_assert(strstr(out, "booster infusion due since 14 Apr 2026 (every 42 days"), "%s", out);
    cr_assert(strstr(err, " 0 evaluation errors"), "%s", err);
    free(out);
    free(err);
    rg_test_rmdir(dir);
}

/* A value of the wrong kind is refused by check, naming the clinic.lua line
 * and what to write. */
Test(check, a_wrong_kind_is_refused_with_its_line_and_what_to_write)
{
    static const struct {
        const char *lua, *want;
    } cases[] = {
        {"return { include = { \"ketamine\" },\n  params = {\n    booster_interval_days = 42,\n"
         "  } }\n",
         "clinic.lua:3: params: 'booster_interval_days' is a duration: write R.weeks(6) or "
         "R.days(42) (local R = require \"regimen\"), not 42"},
        {"return { include = { \"ketamine\" },\n  params = { booster_interval_days = \"6 weeks\" } }\n",
         "clinic.lua:2: params: 'booster_interval_days' is a duration: write R.weeks(4) or "
         "R.days(28)"},
        {"return { include = { \"ketamine\" }, params = {\n  [\"ketamine.safety\"] = {\n"
         "    bp_systolic_max = \"150\" } } }\n",
         "clinic.lua:3: params for 'ketamine.safety': 'bp_systolic_max' is a number (mmHg): "
         "write a number such as 160, not \"150\""},
        {"return { include = { \"ketamine\" }, params = {\n  [\"ketamine.safety\"] = {\n"
         "    adverse_min_severity = \"sever\" } } }\n",
         "clinic.lua:3: params for 'ketamine.safety': 'adverse_min_severity' is one of "
         "\"mild\", \"moderate\", \"severe\", not \"sever\" (did you mean \"severe\"?)"},
        {"return { include = { \"ketamine\" }, params = { acute_infusions = 8.5 } }\n",
         "clinic.lua:1: params: 'acute_infusions' is a count: write a whole number such as 6, "
         "not 8.5"},
        {"return { include = { \"ketamine\" }, params = { item9_min = 5 } }\n",
         "'item9_min' is a score from 0 to 3, not 5"},
    };
    char dir[256];
    rg_test_tmpdir(dir);
    for (size_t i = 0; i < RG_COUNTOF(cases); i++) {
        char *all;
        cr_assert_eq(check_clinic(dir, cases[i].lua, &all), 1, "case %zu:\n%s", i, all);
        cr_assert(strstr(all, cases[i].want), "case %zu: want\n%s\nin:\n%s", i, cases[i].want,
                  all);
        free(all);
    }
    rg_test_rmdir(dir);
}

/* The acute series length is one parameter of the course: setting it for
 * one protocol only would make the protocols disagree. */
Test(check, a_per_protocol_override_of_a_course_parameter_is_refused)
{
    char dir[256], *all;
    rg_test_tmpdir(dir);
    cr_assert_eq(check_clinic(dir, "return { include = { \"ketamine\" },\n  params = {\n"
                                   "    [\"ketamine.acute\"] = { acute_infusions = 8 },\n  } }\n",
                              &all), 1, "%s", all);
    cr_assert(strstr(all, "clinic.lua:3: params for 'ketamine.acute': 'acute_infusions' is a "
                          "course parameter, shared by ketamine.acute, ketamine.assessment, "
                          "ketamine.followup, ketamine.maintenance: set it once for all of "
                          "them at the top of params (acute_infusions = 8), not under "
                          "[\"ketamine.acute\"]"), "%s", all);
    free(all);
    cr_assert_eq(check_clinic(dir, "return { include = { \"ketamine\" },\n"
                                   "  params = { acute_infusions = 8 } }\n", &all), 0, "%s", all);
    free(all);
    rg_test_rmdir(dir);
}

/* A clinic's own protocol that declares a course parameter with another
 * default would disagree with the shipped ones; with the same default it
 * joins them, and cannot be set for itself alone either. */
Test(check, a_clinic_protocol_cannot_redefine_a_course_parameter)
{
    char dir[256], *all;
    rg_test_tmpdir(dir);
    const char *proto = "local R = require \"regimen\"\n"
                        "return R.protocol { id = \"c.x\", version = \"1\",\n"
                        "  params = { acute_infusions = %d },\n"
                        "  rules = { { id = \"c.x\", severity = \"info\", check = function() end } } }\n";
    char text[600];
    snprintf(text, sizeof text, proto, 4);
    rg_test_write(dir, "c/x.lua", text);
    cr_assert_eq(check_clinic(dir, "return { include = { \"ketamine\" } }\n", &all), 1, "%s", all);
    cr_assert(strstr(all, "x.lua: parameter 'acute_infusions' is shared by the course (a count, "
                          "default 6) but declared here as a count with default 4: declare it "
                          "as course.params.acute_infusions"), "%s", all);
    free(all);
    snprintf(text, sizeof text, proto, 6);
    rg_test_write(dir, "c/x.lua", text);
    cr_assert_eq(check_clinic(dir, "return { include = { \"ketamine\" }, params = {\n"
                                   "  [\"c.x\"] = { acute_infusions = 8 } } }\n", &all), 1, "%s", all);
    cr_assert(strstr(all, "clinic.lua:2: params for 'c.x': 'acute_infusions' is a course "
                          "parameter"), "%s", all);
    free(all);
    rg_test_rmdir(dir);
}

Test(check, unknown_names_get_a_line_and_a_suggestion)
{
    char dir[256], *all;
    rg_test_tmpdir(dir);
    cr_assert_eq(check_clinic(dir, "return { include = { \"ketamine\" },\n  params = {\n"
                                   "    booster_interval = 42,\n  } }\n", &all), 1, "%s", all);
    cr_assert(strstr(all, "clinic.lua:3: params: no loaded protocol has a parameter named "
                          "'booster_interval' (did you mean 'booster_interval_days'?)"),
              "%s", all);
    free(all);
    cr_assert_eq(check_clinic(dir, "return { include = { \"ketamine\" }, params = {\n"
                                   "  [\"ketamine.safty\"] = { bp_systolic_max = 150 } } }\n",
                              &all), 1, "%s", all);
    cr_assert(strstr(all, "clinic.lua:2: params for 'ketamine.safty': no protocol with that id "
                          "is loaded (did you mean 'ketamine.safety'?)"), "%s", all);
    free(all);
    rg_test_rmdir(dir);
}

/* R.alrt passed check and failed at the patient's first evaluation: check
 * now runs every rule, so it names the rule, its line and the function
 * meant. The same for a history method. */
Test(check, a_typo_in_a_rule_is_found_by_check_with_a_suggestion)
{
    char dir[256], *all;
    rg_test_tmpdir(dir);
    rg_test_write(dir, "c/call.lua",
                  "local R = require \"regimen\"\n"
                  "local course = require \"lib.course\"\n"
                  "return R.protocol {\n"
                  "  id = \"c.call\", version = \"1\", applies = course.enrolled_in(\"ketamine\"),\n"
                  "  params = { acute_infusions = course.params.acute_infusions },\n"
                  "  rules = {\n"
                  "    { id = \"c.call-due\", severity = \"info\", check = function(h, now, p)\n"
                  "        local s = course.series(h, \"ketamine\", p)\n"
                  "        if s.phase ~= \"maintenance\" then return end\n"
                  "        return R.alrt { due = s.last.at, message = \"call\" }\n"
                  "      end },\n"
                  "    { id = \"c.visit\", severity = \"info\", check = function(h, now, p)\n"
                  "        if h:cout(\"infusion\") < 2 then return end\n"
                  "      end },\n"
                  "  },\n"
                  "}\n");
    cr_assert_eq(check_clinic(dir, "return { include = { \"ketamine\" } }\n", &all), 1, "%s", all);
    cr_assert(strstr(all, "error: rule c.call-due (call.lua:7)") &&
              strstr(all, "call.lua:10: the regimen module has no 'alrt' (did you mean "
                          "R.alert?)"), "%s", all);
    cr_assert(strstr(all, "error: rule c.visit (call.lua:12)") &&
              strstr(all, "call.lua:13: history has no field or method 'cout' (did you mean "
                          "h:count?)"), "%s", all);
    /* R.alrt is found in the source too, wherever it is (a branch the generated
     * histories do not reach included) */
    cr_assert(strstr(all, "error: call.lua:10: R.alrt: the regimen module has no 'alrt' (did "
                          "you mean R.alert?)"), "%s", all);
    cr_assert(strstr(all, "1 error in the sources, 2 evaluation errors"), "%s", all);
    free(all);
    rg_test_rmdir(dir);
}

/* Message templates (docs/protocols.md, "Message templates"): made when the
 * alert opens, with every format; a mistake in one is found by check, at
 * the R.alert line (or the rule's, for a plain table), even in an alert
 * that never opens, while simulate, which never makes that message, runs. */
Test(check, message_templates_are_made_when_the_alert_opens_and_checked_by_check)
{
    char dir[256], *all, *out, *err;
    rg_test_tmpdir(dir);
    rg_test_write(dir, "c/tmpl.lua",
                  "local R = require \"regimen\"\n"
                  "return R.protocol {\n"
                  "  id = \"c.tmpl\", version = \"1\",\n"
                  "  params = { gap = R.hours(30), span = R.days(21) },\n"
                  "  rules = {\n"
                  "    { id = \"c.all\", severity = \"info\", check = function(h, now, p)\n"
                  "        local x = h:last(\"x\")\n"
                  "        if not x then return end\n"
                  "        return R.alert { due = x.at, message = {\n"
                  "          \"n={n} f={f} s={s} f1={f:.1} day={at:day} date={at:date} \",\n"
                  "          \"time={at:time} clock={at:clock} h={gap:hours} h1={gap:hours.1} \",\n"
                  "          \"d={span:days} min={gap:minutes} {{braces}}\",\n"
                  "          n = 3, f = 2.5, s = \"text\", at = x.at, gap = p.gap, span = p.span } }\n"
                  "      end },\n"
                  "    { id = \"c.later\", severity = \"info\", check = function(h, now, p)\n"
                  "        local x = h:last(\"x\")\n"
                  "        if not x then return end\n"
                  "        return R.alert { due = x.at + R.days(900),\n"
                  "          message = { \"{infusoins} infusions\", infusions = 2 } }\n"
                  "      end },\n"
                  "    { id = \"c.plain\", severity = \"info\", check = function(h, now, p)\n"
                  "        local x = h:last(\"x\")\n"
                  "        if not x then return end\n"
                  "        return { due = x.at + R.days(900), message = { \"on {at:day}\", at = x.id } }\n"
                  "      end },\n"
                  "  },\n"
                  "}\n");
    cr_assert_eq(simulate_one_x(dir, "jsonl", &out, &err), 0, "%s", err);
    cr_assert(strstr(out, "\"message\":\"n=3 f=2.5 s=text f1=2.5 day=9 Mar 2026 date=2026-03-09 "
                          "time=2026-03-09T14:05:00Z clock=14:05 h=30 h1=30.0 d=21 min=1800 "
                          "{braces}\""), "%s", out);
    cr_assert(strstr(err, " 0 evaluation errors"), "the later alerts' messages are not made:\n%s",
              err);
    free(out);
    free(err);
    cr_assert_eq(check_clinic(dir, "return { events = { x = {} } }\n", &all), 1, "%s", all);
    cr_assert(strstr(all, "tmpl.lua:18: alert: message template \"{infusoins} infusions\": "
                          "{infusoins} has no argument: give infusoins = ... beside the text "
                          "(did you mean infusions?)"), "%s", all);
    cr_assert(strstr(all, "error: rule c.plain (tmpl.lua:21)") &&
              strstr(all, "rule 'c.plain': message template \"on {at:day}\": {at:day} needs a "
                          "time (an integer such as event.at), not a string"), "%s", all);
    free(all);
    rg_test_rmdir(dir);
}

/* An alert field the engine does not take ('because' was once let through by
 * check, then failed every evaluation that opened the alert): check refuses
 * it at the R.alert line, with what was meant, even for an alert that would
 * open only years later; simulate, which opens it, fails naming the rule. */
Test(check, an_alert_field_the_engine_refuses_is_refused_by_check)
{
    char dir[256], *all, *out, *err;
    rg_test_tmpdir(dir);
    rg_test_write(dir, "c/why.lua",
                  "local R = require \"regimen\"\n"
                  "return R.protocol {\n"
                  "  id = \"c.why\", version = \"1\",\n"
                  "  rules = {\n"
                  "    { id = \"c.late\", severity = \"info\", check = function(h, now, p)\n"
                  "        local x = h:last(\"x\")\n"
                  "        if not x then return end\n"
                  "        return R.alert { due = x.at + R.days(900), message = \"late\",\n"
                  "                         because = \"x seen\" }\n"
                  "      end },\n"
                  "    { id = \"c.now\", severity = \"info\", check = function(h, now, p)\n"
                  "        local x = h:last(\"x\")\n"
                  "        if not x then return end\n"
                  "        return R.alert { due = x.at, mesage = \"now\" }\n"
                  "      end },\n"
                  "  },\n"
                  "}\n");
    cr_assert_eq(check_clinic(dir, "return { events = { x = {} } }\n", &all), 1, "%s", all);
    cr_assert(strstr(all, "why.lua:8: alert: unknown field 'because' (known fields: key, message, "
                          "severity, due, ends)"), "%s", all);
    cr_assert(strstr(all, "why.lua:14: alert: unknown field 'mesage' (did you mean 'message'?) "
                          "(known fields: key, message, severity, due, ends)"), "%s", all);
    free(all);
    simulate_one_x(dir, NULL, &out, &err);
    cr_assert(strstr(err, "rule 'c.now': alert has an unknown field 'mesage' (did you mean "
                          "'message'?)"), "%s", err);
    cr_assert(strstr(err, " 0 alerts opened, 0 resolved, 1 evaluation errors"), "%s", err);
    free(out);
    free(err);
    rg_test_rmdir(dir);
}

/* An override of the right kind can still break a rule at run time: check
 * names the rule's file:line and the clinic.lua override involved. */
Test(check, a_runtime_error_names_the_rule_and_the_override)
{
    char dir[256], *all;
    rg_test_tmpdir(dir);
    cr_assert_eq(check_clinic(dir, "local R = require \"regimen\"\n"
                                   "return { include = { \"ketamine\" }, params = {\n"
                                   "  [\"ketamine.acute\"] = {\n"
                                   "    infusion_due_after = R.days(200000) } } }\n", &all),
                 1, "%s", all);
    cr_assert(strstr(all, "error: rule acute.infusion-due (ketamine/acute.lua:") &&
              strstr(all, "calendar_add: too long a duration") &&
              strstr(all, "the clinic's overrides for ketamine.acute: infusion_due_after = "
                          "R.days(200000) (clinic.lua:4)"), "%s", all);
    free(all);
    rg_test_rmdir(dir);
}

/* A clinic's scenario tests are part of the proof. */
Test(check, a_failing_scenario_fails_check)
{
    char dir[256], *all;
    rg_test_tmpdir(dir);
    rg_test_write(dir, "c/tests/x_test.lua",
                  "return { { name = \"nothing happens\", horizon = \"2026-04-10T00:00:00Z\",\n"
                  "  events = { { \"2026-03-01T09:00:00Z\", \"enrolled\", { program = \"ketamine\" } } },\n"
                  "  expect = {} } }\n");
    cr_assert_eq(check_clinic(dir, "return { include = { \"ketamine\" } }\n", &all), 1, "%s", all);
    cr_assert(strstr(all, "FAIL ") && strstr(all, "unexpected:") &&
              strstr(all, "scenarios (tests): 0 passed, 1 failed"), "%s", all);
    free(all);
    rg_test_rmdir(dir);
}

/* docs/reference.md is the output of `regimen check --describe`. */
Test(check, the_reference_page_is_current)
{
    char *out, *err;
    const char *args[] = {"check", "--describe", NULL};
    cr_assert_eq(rg_test_run(args, NULL, &out, &err), 0, "%s", err);
    char *doc = rg_test_read("docs/reference.md");
    cr_assert_str_eq(out, doc, "docs/reference.md is out of date: build/regimen check --describe "
                               "> docs/reference.md");
    cr_assert(strstr(out, "| `booster_interval_days` | ketamine.maintenance (shared by the "
                          "course) | duration | `R.days(28)` |"), "%s", out);
    cr_assert(strstr(out, "| `assessment` | `instrument` = \"phq9\" |"), "%s", out);
    free(out);
    free(err);
    free(doc);
    /* a clinic's values in force, and where it set them */
    const char *south[] = {"check", "--describe", "examples/clinics/south", NULL};
    cr_assert_eq(rg_test_run(south, NULL, &out, &err), 0, "%s", err);
    cr_assert(strstr(out, "`R.days(28)` | `R.days(42)` | clinic.lua:19 |"), "%s", out);
    cr_assert(strstr(out, "due (2 days after the last one)"), "%s", out);
    free(out);
    free(err);
}

Test(check, simulate_refuses_a_clinic_no_event_names)
{
    char *out, *err;
    const char *args[] = {"simulate", "--events", "examples/clinics/south/timeline.jsonl",
                          "--until", "2026-05-01T00:00:00Z", "--clinic",
                          "suoth=examples/clinics/south", NULL};
    cr_assert_eq(rg_test_run(args, NULL, &out, &err), 2, "%s", err);
    cr_assert(strstr(err, "--clinic suoth=examples/clinics/south: no event names the clinic "
                          "'suoth' (did you mean 'south'?); the events name the clinics south"),
              "%s", err);
    cr_assert_str_eq(out, "");
    free(out);
    free(err);
}

/* Scenario failures say what differs, in the clinic's zone. */
Test(check, scenario_failures_say_what_differs)
{
    char dir[256], path[512], *out, *err;
    rg_test_tmpdir(dir);
    rg_test_write(dir, "c/clinic.lua",
                  "return { include = { \"ketamine\" }, timezone = \"America/New_York\" }\n");
    rg_test_write(dir, "c/tests/a_test.lua",
                  "local ev = {\n"
                  "  { \"2026-03-02T09:00:00-05:00\", \"enrolled\", { program = \"ketamine\" } },\n"
                  "  { \"2026-03-03T10:00:00-05:00\", \"infusion\", { dose_mg_per_kg = 0.5 } },\n"
                  "}\n"
                  "local function one(x) return { events = ev, horizon = \"2026-03-06T00:00:00Z\",\n"
                  "  only = { \"acute.infusion-due\" }, expect = { x } } end\n"
                  "local s = one({ \"2026-03-05T15:00:00Z\", \"open\", \"acute.infusion-due\", severity = \"warning\" })\n"
                  "local m = one({ \"2026-03-05T15:00:00Z\", \"open\", \"acute.infusion-due\", message = \"infusion 3\" })\n"
                  "local t = one({ \"2026-03-05T14:00:00Z\", \"open\", \"acute.infusion-due\" })\n"
                  "local r = one({ \"2026-03-05T15:00:00Z\", \"open\", \"acute.infusion-dew\" })\n"
                  "local h = { events = ev, horizont = \"2026-03-06T00:00:00Z\", expect = {} }\n"
                  "return { s, m, t, r, h }\n");
    snprintf(path, sizeof path, "%s/c/tests", dir);
    const char *args[] = {"test", path, NULL};
    cr_assert_eq(rg_test_run(args, NULL, &out, &err), 1, "%s%s", out, err);
    cr_assert(strstr(out, "missing:    2026-03-05T10:00:00-05:00 open     acute.infusion-due for "
                          "p1, severity warning\n                it happened at the same time, "
                          "with severity info, not warning: \"infusion 2 of 6"), "%s", out);
    cr_assert(strstr(out, "it happened at the same time, with a message that does not contain "
                          "\"infusion 3\": \"infusion 2 of 6"), "%s", out);
    cr_assert(strstr(out, "missing:    2026-03-05T09:00:00-05:00 open     acute.infusion-due for "
                          "p1\n                it happened at 2026-03-05T10:00:00-05:00 instead"),
              "%s", out);
    cr_assert(strstr(out, "expect[1] names the rule 'acute.infusion-dew', which no protocol of "
                          "the clinic has (did you mean 'acute.infusion-due'?)"), "%s", out);
    cr_assert(strstr(out, "scenario: unknown field 'horizont' (did you mean 'horizon'?)"), "%s",
              out);
    cr_assert(strstr(out, "scenarios: 0 passed, 5 failed"), "%s", out);
    free(out);
    free(err);
    rg_test_rmdir(dir);
}

/* A plan event keeps giving the booster interval as a number of days (the
 * event vocabulary is a public contract); text there is refused, naming the
 * event. */
Test(check, plan_events_give_days_and_are_checked)
{
    char dir[256], path[600], events[600], *out, *err;
    rg_test_tmpdir(dir);
    rg_test_write(dir, "c/clinic.lua", "return { include = { \"ketamine\" } }\n");
    rg_test_write(dir, "events.jsonl",
                  "{\"id\":\"e1\",\"clinic\":\"c\",\"patient\":\"p\",\"type\":\"enrolled\","
                  "\"at\":\"2026-03-02T09:00:00Z\",\"data\":{\"program\":\"ketamine\","
                  "\"acute_infusions\":1,\"booster_interval_days\":42}}\n"
                  "{\"id\":\"e2\",\"clinic\":\"c\",\"patient\":\"p\",\"type\":\"infusion\","
                  "\"at\":\"2026-03-03T09:00:00Z\",\"data\":{\"dose_mg_per_kg\":0.5}}\n"
                  "{\"id\":\"e3\",\"clinic\":\"c\",\"patient\":\"q\",\"type\":\"enrolled\","
                  "\"at\":\"2026-03-02T09:00:00Z\",\"data\":{\"program\":\"ketamine\","
                  "\"booster_interval_days\":\"six weeks\"}}\n");
    snprintf(path, sizeof path, "c=%s/c", dir);
    snprintf(events, sizeof events, "%s/events.jsonl", dir);
    const char *sim[] = {"simulate", "--events", events, "--until", "2026-05-01T00:00:00Z",
                         "--clinic", path, "--format", "jsonl", NULL};
    cr_assert_eq(rg_test_run(sim, NULL, &out, &err), 1, "%s", err);
    cr_assert(strstr(out, "booster infusion due since 14 Apr 2026 (every 42 days"), "%s", out);
    cr_assert(strstr(err, "patient plan: event e3 sets 'booster_interval_days', which is a "
                          "number of days (such as 28), not \"six weeks\""), "%s", err);
    free(out);
    free(err);
    rg_test_rmdir(dir);
}

/* serve loads clinics through the same code: it refuses to start with a
 * parameter of the wrong kind, naming the clinic.lua line. */
Test(check, serve_refuses_a_wrong_kind_at_start)
{
    server s;
    char *out, *err;
    server_setup(&s, fast_protocol, fast_protocol);
    rg_test_write(s.dir, "a/clinic.lua", "return {\n  params = { wait = \"2 s\" } }\n");
    const char *args[] = {"serve", "--config", s.config, "--db", s.db, NULL};
    int rc = rg_test_run(args, NULL, &out, &err);
    cr_assert_neq(rc, 0, "serve started:\n%s%s", out, err);
    cr_assert(strstr(err, "clinic.lua:2: params: 'wait' is a count: write a whole number such "
                          "as 2000, not \"2 s\"") ||
                  strstr(out, "clinic.lua:2: params: 'wait' is a count"),
              "%s%s", out, err);
    free(out);
    free(err);
    rg_test_rmdir(s.dir);
}

/* A rule that reads a misspelt data field (e.data.sytolic) or asks for a
 * misspelt event type (h:last("infusoin")) passed check, whose generated
 * histories carry whatever the source names, and never fired on a real
 * event. check now reads them against the event vocabulary
 * (protocols/lib/events.lua and clinic.lua's events): each is an error with
 * its file, line and the nearest known name, read from the source (so also
 * in a branch no generated history reaches) or, for a type or filter field
 * passed through a module, found when the rule runs. */
static const char bp_typos_lua[] =
    "local R = require \"regimen\"\n"                               /* 1 */
    "local course = require \"lib.course\"\n"                       /* 2 */
    "return R.protocol {\n"                                         /* 3 */
    "  id = \"c.bp\", version = \"1\",\n"                           /* 4 */
    "  applies = course.enrolled_in(\"ketamine\"),\n"               /* 5 */
    "  rules = {\n"                                                 /* 6 */
    "    { id = \"c.bp-high\", severity = \"warning\", check = function(h, now, p)\n"
    "        local e = h:last(\"vitals\")\n"                        /* 8 */
    "        if not e then return end\n"                            /* 9 */
    "        if (e.data.sytolic or 0) > 150 then\n"                 /* 10 */
    "          return R.alert { message = \"high\" }\n"             /* 11 */
    "        end\n"                                                 /* 12 */
    "        if course.number(e, \"diastolc\") > 100 then return end\n"
    "        if now < 0 and h:last(\"infusoin\") then return end\n" /* 14: never reached */
    "        if course.last(h, \"ketamine\", \"infuson\") then return end\n"
    "        if h:last(\"vitals\", { phsae = \"pre\" }) then return end\n"
    "      end },\n"
    "  },\n"
    "}\n";

Test(check, a_misspelt_data_field_or_event_type_fails_check_with_its_line)
{
    char dir[256], *all;
    rg_test_tmpdir(dir);
    rg_test_write(dir, "c/bp.lua", bp_typos_lua);
    cr_assert_eq(check_clinic(dir, "return { include = { \"ketamine\" } }\n", &all), 1, "%s", all);
    static const char *const want[] = {
        "error: bp.lua:10: e.data.sytolic: no event type carries a data field 'sytolic' (did "
        "you mean 'systolic'?)\n",
        "error: bp.lua:13: course.number(e, \"diastolc\"): no event type carries a data field "
        "'diastolc' (did you mean 'diastolic'?)\n",
        "error: bp.lua:14: h:last(\"infusoin\"): no event type is named 'infusoin' (did you mean "
        "'infusion'?)\n",
        "error: bp.lua:15 (through lib/course.lua:",
        "): no event type is named 'infuson' (did you mean 'infusion'?)\n",
        "error: bp.lua:16: h:last(\"vitals\", { phsae = ... }): no event type carries a data "
        "field 'phsae' (did you mean 'phase'?)\n",
        "5 errors in the sources, 0 evaluation errors",
    };
    for (size_t i = 0; i < RG_COUNTOF(want); i++)
        cr_assert(strstr(all, want[i]), "want\n%s\nin:\n%s", want[i], all);
    free(all);
    rg_test_rmdir(dir);
}

/* A clinic's own types and fields are declared in clinic.lua (events):
 * with the declaration its rule passes check, without it the same rule is
 * refused; a declaration that is not a list of field names is refused at
 * load, naming its clinic.lua line. */
Test(check, a_clinic_declares_its_own_event_types_and_fields)
{
    char dir[256], *all;
    rg_test_tmpdir(dir);
    rg_test_write(dir, "c/spo2.lua",
                  "local R = require \"regimen\"\n"
                  "local course = require \"lib.course\"\n"
                  "return R.protocol {\n"
                  "  id = \"c.spo2\", version = \"1\",\n"
                  "  applies = course.enrolled_in(\"ketamine\"),\n"
                  "  rules = {\n"
                  "    { id = \"c.spo2-low\", severity = \"warning\", check = function(h, now, p)\n"
                  "        local v = h:last(\"vitals\")\n"
                  "        if not v or h:last(\"phone_call\") then return end\n"
                  "        if (v.data.spo2 or 100) < 92 then return R.alert { message = \"low\" } end\n"
                  "      end },\n"
                  "  },\n"
                  "}\n");
    cr_assert_eq(check_clinic(dir, "return { include = { \"ketamine\" },\n"
                                   "  events = { vitals = { \"spo2\" }, phone_call = {} } }\n",
                              &all), 0, "%s", all);
    cr_assert(strstr(all, "c: ok, 8 protocols") && strstr(all, ": 0 errors") &&
              !strstr(all, "error:"), "%s", all);
    free(all);
    cr_assert_eq(check_clinic(dir, "return { include = { \"ketamine\" } }\n", &all), 1, "%s", all);
    cr_assert(strstr(all, "error: spo2.lua:10: v.data.spo2: no event type carries a data field "
                          "'spo2' (declare a field of the clinic's own in clinic.lua, under the "
                          "type that carries it: events = { <type> = { \"spo2\" } })"), "%s", all);
    cr_assert(strstr(all, "error: spo2.lua:9: h:last(\"phone_call\"): no event type is named "
                          "'phone_call' (declare a type of the clinic's own in clinic.lua: "
                          "events = { phone_call = { ... } })"), "%s", all);
    free(all);
    static const struct {
        const char *lua, *want;
    } bad[] = {
        {"return {\n  events = {\n    vitals = { \"spo2\", optional = { \"pulse\" } },\n  } }\n",
         "clinic.lua:3: events.vitals: unknown key 'optional' (a type's data fields are a list: "
         "vitals = { \"spo2\", \"pulse\" })"},
        {"return {\n  events = {\n    vitals = \"spo2\" } }\n",
         "clinic.lua:3: events.vitals must be a list of data field names such as { \"spo2\" } "
         "({} for none), not string"},
        {"return {\n  events = { phone_call = { 1 } } }\n",
         "clinic.lua:2: events.phone_call[1] must be a data field name such as \"spo2\", not "
         "number"},
        {"return {\n  events = \"vitals\" }\n",
         "clinic.lua:2: events must be a table of event type -> its data fields"},
        {"return { event = {} }\n", "unknown setting 'event' (known: include, params, "
         "description, fhir, timezone, hours, closures, notify_at_once, notify, events)"},
    };
    for (size_t i = 0; i < RG_COUNTOF(bad); i++) {
        cr_assert_eq(check_clinic(dir, bad[i].lua, &all), 1, "case %zu:\n%s", i, all);
        cr_assert(strstr(all, bad[i].want), "case %zu: want\n%s\nin:\n%s", i, bad[i].want, all);
        free(all);
    }
    rg_test_rmdir(dir);
}

/* What a block comment or a long string holds is not read: a field or type
 * commented out does not fail check (nor a reload), and the lines after the
 * comment keep their numbers. */
Test(check, a_block_comment_or_long_string_is_not_read_for_fields_or_types)
{
    char dir[256], *all;
    rg_test_tmpdir(dir);
    rg_test_write(dir, "c/old.lua",
                  "local R = require \"regimen\"\n"
                  "local course = require \"lib.course\"\n"
                  "--[[ the old rule read\n"
                  "  e.data.old_systolic and h:last(\"old_vitals\")\n"
                  "]]\n"
                  "local note = [==[ v.data.sytolic ]==]\n"
                  "return R.protocol {\n"
                  "  id = \"c.old\", version = \"1\",\n"
                  "  applies = course.enrolled_in(\"ketamine\"),\n"
                  "  rules = {\n"
                  "    { id = \"c.old-bp\", severity = \"warning\", check = function(h, now, p)\n"
                  "        local v = h:last(\"vitals\")\n"
                  "        if v and (v.data.systolic or 0) > 200 then return R.alert { message = note } end\n"
                  "      end },\n"
                  "  },\n"
                  "}\n");
    cr_assert_eq(check_clinic(dir, "return { include = { \"ketamine\" } }\n", &all), 0, "%s",
                 all);
    cr_assert(strstr(all, ": 0 errors") && !strstr(all, "error:"), "%s", all);
    free(all);
    /* the same read outside the comment is found, at its own line */
    rg_test_write(dir, "c/old.lua",
                  "local R = require \"regimen\"\n"
                  "local course = require \"lib.course\"\n"
                  "--[[ a comment\n"
                  "]]\n"
                  "return R.protocol {\n"
                  "  id = \"c.old\", version = \"1\",\n"
                  "  applies = course.enrolled_in(\"ketamine\"),\n"
                  "  rules = {\n"
                  "    { id = \"c.old-bp\", severity = \"warning\", check = function(h, now, p)\n"
                  "        local v = h:last(\"vitals\")\n"
                  "        if v and (v.data.sytolic or 0) > 200 then return R.alert { message = \"m\" } end\n"
                  "      end },\n"
                  "  },\n"
                  "}\n");
    cr_assert_eq(check_clinic(dir, "return { include = { \"ketamine\" } }\n", &all), 1, "%s",
                 all);
    cr_assert(strstr(all, "error: old.lua:11: v.data.sytolic: no event type carries a data field "
                          "'sytolic' (did you mean 'systolic'?)"), "%s", all);
    free(all);
    rg_test_rmdir(dir);
}

/* Every shipped set and every example clinic reads only what the
 * vocabulary knows: check passes each, without an error. */
Test(check, every_shipped_set_and_example_clinic_passes_check)
{
    static const char *const dirs[] = {"protocols/ketamine", "protocols/esketamine",
                                       "examples/clinics/north", "examples/clinics/south",
                                       "examples/clinics/west", "examples/notify"};
    for (size_t i = 0; i < RG_COUNTOF(dirs); i++) {
        char *out, *err;
        const char *args[] = {"check", dirs[i], NULL};
        cr_assert_eq(rg_test_run(args, NULL, &out, &err), 0, "%s:\n%s%s", dirs[i], out, err);
        cr_assert(strstr(out, ": 0 errors") && !strstr(out, "error:"), "%s:\n%s", dirs[i], out);
        free(out);
        free(err);
    }
}
