/*
 * test_notify.c - notification policies (clinic.lua's notify) through the
 * real build/regimen binary: `check` refuses a bad policy naming clinic.lua
 * and its line; `simulate --format jsonl` prints the planned notifications
 * under the virtual clock (escalation at the configured minute, repeats, the
 * horizon), only for clinics with a policy; the example's scenarios
 * (examples/notify/tests) show an acknowledgement stopping the chain,
 * inhibition and grouping, and a wrong expectation fails them.
 * Run from the repository root (make test does).
 */
#include "helpers.h"

#include "rg.h"

static const char rg__timeline[] =
    "{\"id\":\"a\",\"clinic\":\"oncall\",\"patient\":\"p1\",\"type\":\"enrolled\","
    "\"at\":\"2026-03-02T09:00:00Z\",\"data\":{\"program\":\"ketamine\"}}\n"
    "{\"id\":\"b\",\"clinic\":\"oncall\",\"patient\":\"p1\",\"type\":\"vitals\","
    "\"at\":\"2026-03-02T10:00:00Z\",\"data\":{\"systolic\":175,\"diastolic\":105,"
    "\"heart_rate\":80,\"phase\":\"pre\"}}\n"
    "{\"id\":\"c\",\"clinic\":\"oncall\",\"patient\":\"p2\",\"type\":\"enrolled\","
    "\"at\":\"2026-03-02T09:00:00Z\",\"data\":{\"program\":\"ketamine\"}}\n"
    "{\"id\":\"d\",\"clinic\":\"oncall\",\"patient\":\"p2\",\"type\":\"vitals\","
    "\"at\":\"2026-03-02T10:00:00Z\",\"data\":{\"systolic\":175,\"diastolic\":105,"
    "\"heart_rate\":80,\"phase\":\"pre\"}}\n"
    "{\"id\":\"e\",\"clinic\":\"oncall\",\"patient\":\"p2\",\"type\":\"vitals\","
    "\"at\":\"2026-03-02T10:10:00Z\",\"data\":{\"systolic\":120,\"diastolic\":80,"
    "\"heart_rate\":70,\"phase\":\"pre\"}}\n";

static int rg__count(const char *text, const char *needle)
{
    int n = 0;
    for (const char *p = text; (p = strstr(p, needle)); p++)
        n++;
    return n;
}

Test(notify, simulate_prints_the_escalation_under_the_virtual_clock)
{
    char dir[256], path[300], *out, *err;
    rg_test_tmpdir(dir);
    rg_test_write(dir, "t.jsonl", rg__timeline);
    snprintf(path, sizeof path, "%s/t.jsonl", dir);
    const char *args[] = {"simulate", "--events", path, "--until", "2026-03-02T11:00:00Z",
                          "--clinic", "oncall=examples/notify", "--format", "jsonl", NULL};
    int rc = rg_test_run(args, NULL, &out, &err);
    cr_assert_eq(rc, 0, "exit %d, stderr:\n%s", rc, err);
    /* p1: desk at 10:00, the prescriber at minute 15, the first repeat at 10:45 */
    const char *want[] = {
        "{\"kind\":\"notification\",\"at\":\"2026-03-02T10:00:00Z\",\"clinic\":\"oncall\","
        "\"patient\":\"p1\"",
        "\"at\":\"2026-03-02T10:15:00Z\",\"clinic\":\"oncall\",\"patient\":\"p1\"",
        "\"route\":1,\"step\":2,\"receiver\":\"prescriber\",\"outcome\":\"sent\"",
        "\"at\":\"2026-03-02T10:45:00Z\",\"clinic\":\"oncall\",\"patient\":\"p1\"",
        "\"step\":2,\"round\":1,\"receiver\":\"prescriber\"",
    };
    for (size_t i = 0; i < RG_COUNTOF(want); i++)
        cr_assert(strstr(out, want[i]), "missing %s in:\n%s", want[i], out);
    /* p2's alert resolved at 10:10: only the desk heard of it */
    cr_assert_eq(rg__count(out, "\"kind\":\"notification\""), 4, "%s", out);
    cr_assert_eq(rg__count(out, "\"patient\":\"p2\",\"key\""), 1, "%s", out);
    /* the horizon: nothing after 11:00 (the second repeat is at 11:15) */
    cr_assert_null(strstr(out, "\"round\":2"), "%s", out);
    /* a notification follows the transition that opened its alert */
    cr_assert_lt(strstr(out, "\"state\":\"open\""), strstr(out, "\"kind\":\"notification\""));
    free(out);
    free(err);
    rg_test_rmdir(dir);
}

Test(notify, clinics_without_a_policy_print_no_notification)
{
    char *out, *err;
    const char *args[] = {"simulate", "--events", "examples/clinics/north/timeline.jsonl",
                          "--until", "2026-05-01T00:00:00Z", "--clinic",
                          "north=examples/clinics/north", "--format", "jsonl", NULL};
    int rc = rg_test_run(args, NULL, &out, &err);
    cr_assert_eq(rc, 0, "exit %d, stderr:\n%s", rc, err);
    cr_assert_null(strstr(out, "notification"));
    free(out);
    free(err);
}

Test(notify, the_example_scenarios_pass_and_a_wrong_minute_fails)
{
    char *out, *err, dir[256], path[400];
    const char *args[] = {"test", "examples/notify/tests", NULL};
    int rc = rg_test_run(args, NULL, &out, &err);
    cr_assert_eq(rc, 0, "exit %d:\n%s%s", rc, out, err);
    cr_assert(strstr(out, "scenarios: 4 passed, 0 failed"), "%s", out);
    free(out);
    free(err);

    /* the same scenarios expecting the prescriber at minute 20 and the ack
     * after minute 15 must fail, naming what was planned instead */
    rg_test_tmpdir(dir);
    char *clinic = rg_test_read("examples/notify/clinic.lua");
    char *tests = rg_test_read("examples/notify/tests/notify_test.lua");
    rg_test_write(dir, "clinic.lua", clinic);
    for (char *p = tests; (p = strstr(p, "10:15:00Z\", \"prescriber\"")); p++)
        memcpy(p, "10:20", 5);
    char *ack = strstr(tests, "\"2026-03-02T10:10:00Z\", \"safety.bp-high\"");
    cr_assert_not_null(ack);
    memcpy(ack + 15, "20", 2);
    rg_test_write(dir, "tests/notify_test.lua", tests);
    snprintf(path, sizeof path, "%s/tests", dir);
    const char *bad[] = {"test", path, NULL};
    rc = rg_test_run(bad, NULL, &out, &err);
    cr_assert_eq(rc, 1, "exit %d:\n%s%s", rc, out, err);
    cr_assert(strstr(out, "scenarios: 2 passed, 2 failed"), "%s", out);
    cr_assert(strstr(out, "missing notification:    2026-03-02T10:20:00Z sent to prescriber"),
              "%s", out);
    cr_assert(strstr(out, "unexpected notification: 2026-03-02T10:15:00Z sent to prescriber"),
              "%s", out);
    free(out);
    free(err);
    free(clinic);
    free(tests);
    rg_test_rmdir(dir);
}

/* check (and every load) refuses a bad policy with clinic.lua's line */
static void rg__refused(const char *from, const char *to, const char *want)
{
    char dir[256], *out, *err;
    rg_test_tmpdir(dir);
    char *clinic = rg_test_read("examples/notify/clinic.lua");
    char *at = strstr(clinic, from);
    cr_assert_not_null(at, "%s", from);
    size_t fl = strlen(from), tl = strlen(to), rest = strlen(at + fl);
    char *text = malloc(strlen(clinic) + tl + 1);
    memcpy(text, clinic, (size_t)(at - clinic));
    memcpy(text + (at - clinic), to, tl);
    memcpy(text + (at - clinic) + tl, at + fl, rest + 1);
    rg_test_write(dir, "clinic.lua", text);
    const char *args[] = {"check", dir, NULL};
    int rc = rg_test_run(args, NULL, &out, &err);
    cr_assert_neq(rc, 0, "accepted:\n%s", out);
    cr_assert(strstr(err, want) || strstr(out, want), "want %s in:\n%s%s", want, out, err);
    free(out);
    free(err);
    free(text);
    free(clinic);
    rg_test_rmdir(dir);
}

Test(notify, check_refuses_a_bad_policy_naming_the_line)
{
    rg__refused("to = \"prescriber\"", "to = \"prescribr\"",
                "clinic.lua:19: notify.routes[1].steps[2].to: no receiver named 'prescribr'");
    rg__refused("severity = \"critical\" },\n        steps", "severity = \"urgent\" },\n        steps",
                "clinic.lua:18: notify.routes[1].match.severity: 'urgent' is not a severity");
    rg__refused("after = R.minutes(15)", "after = 15",
                "clinic.lua:19: notify.routes[1].steps[2].after must be whole minutes");
    rg__refused("repeat_every = R.minutes(30), ", "",
                "notify.routes[1]: repeat_every and repeat_times go together");
    rg__refused("group_by = \"patient\"", "group_by = \"ward\"",
                "clinic.lua:21: notify.routes[2].group_by must be \"patient\"");
    rg__refused("email = \"dr.lee@example.org\"", "email = \"dr.lee\"",
                "clinic.lua:15: notify.receivers.prescriber.email must be an address");
    rg__refused("inhibit = {", "inhibt = {", "clinic.lua:23: notify: unknown field 'inhibt'");
}
