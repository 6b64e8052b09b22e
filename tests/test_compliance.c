/*
 * test_compliance.c - the esketamine set in the real service (`regimen
 * serve` on loopback): its minute-scale wake-ups (the 40-minute reading and
 * the 2-hour point, shortened to seconds in the test clinic's clinic.lua)
 * open within a second of their moment across a restart and a kill -9 in
 * between, and GET /v1/reports/compliance answers what `regimen report`
 * prints, for the token's clinic only. Run from the repository root.
 */
#define RG_TEST_SERVE
#include "helpers.h"

#include "core/rg.h"

#include <limits.h>

#define TOKEN_WEST "west-token-0123456789ab"

/* Clinic north runs the shipped esketamine set (include) with the session's
 * minutes made seconds: the post-dose reading is due 3 s after the dose and
 * the 2-hour point comes after 6 s. Clinic west is examples/clinics/west. */
static void esketamine_setup(server *s)
{
    char cfg[PATH_MAX + 512], west[PATH_MAX];
    cr_assert_not_null(realpath("examples/clinics/west", west), "run from the repository root");
    rg_test_tmpdir(s->dir);
    snprintf(s->db, sizeof s->db, "%s/serve.db", s->dir);
    snprintf(s->config, sizeof s->config, "%s/config.json", s->dir);
    snprintf(s->log, sizeof s->log, "%s/serve.log", s->dir);
    rg_test_write(s->dir, "a/clinic.lua",
                  "local R = require 'regimen'\n"
                  "return {\n"
                  "  include = { 'esketamine' },\n"
                  "  params = { ['esketamine.session'] = {\n"
                  "    post_dose_bp_at = R.seconds(3), post_dose_bp_from = R.seconds(2),\n"
                  "    monitoring_min = R.seconds(6) } },\n"
                  "}\n");
    snprintf(cfg, sizeof cfg,
             "{ \"listen\": \"127.0.0.1:0\",\n"
             "  \"clinics\": {\n"
             "    \"north\": { \"protocols\": \"a\", \"tokens\": [\"" TOKEN_A "\"] },\n"
             "    \"west\": { \"protocols\": \"%s\", \"tokens\": [\"" TOKEN_WEST "\"] } } }\n",
             west);
    rg_test_write(s->dir, "config.json", cfg);
}

/* The `at` of the first transition of rule on the stream, as ms, or -1. */
static int64_t transition_at(const stream *st, const char *rule)
{
    char needle[128];
    snprintf(needle, sizeof needle, "\"rule\":\"%s\"", rule);
    const char *hit = strstr(st->buf, needle);
    if (!hit)
        return -1;
    const char *line = hit;
    while (line > st->buf && line[-1] != '\n')
        line--;
    const char *at = strstr(line, "\"at\":\"");
    rg_time t;
    char err[128];
    if (!at || at > hit)
        return -1;
    at += 6;
    const char *end = strchr(at, '"');
    if (!end || rg_time_parse(at, (size_t)(end - at), &t, NULL, err, sizeof err))
        return -1;
    return t;
}

/* Waits for rule on a fresh stream of north; returns how late (ms) it arrived
 * after its moment `due` (never before it). */
static int64_t arrival_after(server *s, const char *rule, int64_t due)
{
    stream st;
    char needle[128];
    stream_open(&st, s->port, TOKEN_A, NULL);
    snprintf(needle, sizeof needle, "\"rule\":\"%s\"", rule);
    int ms = stream_wait(&st, needle, (int)(due - now_ms()) + 5000);
    int64_t arrived = now_ms();
    cr_assert_neq(ms, -1, "%s never came:\n%s\nlog:\n%s", rule, st.buf, rg_test_read(s->log));
    cr_assert_eq(transition_at(&st, rule), due, "%s is stamped at its moment:\n%s", rule, st.buf);
    cr_assert_geq(arrived, due, "%s arrived %lld ms early", rule, (long long)(due - arrived));
    close(st.fd);
    return arrived - due;
}

Test(compliance, minute_scale_wakeups_open_within_a_second_across_restarts, .timeout = 60)
{
    server s = {0};
    char *out, body[4096], a[40], b[40], c[40], d[40];
    esketamine_setup(&s);
    server_start(&s);
    /* whole seconds: the transitions' `at` is then printed without a fraction */
    int64_t t0 = (now_ms() / 1000 + 1) * 1000;
    iso(t0 - 60000, a);
    iso(t0 - 50000, b);
    iso(t0 - 30000, c);
    iso(t0, d);
    snprintf(body, sizeof body,
             "[{\"id\":\"e1\",\"clinic\":\"north\",\"patient\":\"p1\",\"type\":\"enrolled\","
             "\"at\":\"%s\",\"data\":{\"program\":\"esketamine\"}},"
             "{\"id\":\"e2\",\"clinic\":\"north\",\"patient\":\"p1\",\"type\":\"rems_enrollment\","
             "\"at\":\"%s\"},"
             "{\"id\":\"e3\",\"clinic\":\"north\",\"patient\":\"p1\",\"type\":\"vitals\","
             "\"at\":\"%s\",\"data\":{\"systolic\":124,\"diastolic\":80,\"phase\":\"pre\"}},"
             "{\"id\":\"d1\",\"clinic\":\"north\",\"patient\":\"p1\",\"type\":\"esketamine_dose\","
             "\"at\":\"%s\",\"data\":{\"dose_mg\":56,\"devices\":2}}]",
             a, b, c, d);
    cr_assert_eq(http(s.port, "POST", "/v1/events", TOKEN_A, body, &out), 200, "%s", out);
    cr_assert(strstr(out, "\"stored\":4,"), "%s", out);
    free(out);

    /* a restart between the dose and the 40-minute (here 3-second) moment */
    cr_assert_eq(server_stop(&s, SIGTERM), 0, "%s", rg_test_read(s.log));
    server_start(&s);
    int64_t late_bp = arrival_after(&s, "bp.post-dose-due", t0 + 3000);
    cr_assert_lt(late_bp, 1000, "bp.post-dose-due arrived %lld ms after its moment",
                 (long long)late_bp);

    /* a kill -9 between it and the 2-hour (here 6-second) point */
    cr_assert_eq(server_stop(&s, SIGKILL), 128 + SIGKILL);
    server_start(&s);
    int64_t late_mon = arrival_after(&s, "monitoring.discharge-assessable", t0 + 6000);
    cr_assert_lt(late_mon, 1000, "monitoring.discharge-assessable arrived %lld ms after its "
                 "moment", (long long)late_mon);
    fprintf(stderr, "esketamine wake-ups in the service: the post-dose reading alert %lld ms, "
                    "the 2-hour alert %lld ms after their moment (restart and kill -9 between)\n",
            (long long)late_bp, (long long)late_mon);

    /* each opened once */
    cr_assert_eq(server_stop(&s, SIGTERM), 0, "%s", rg_test_read(s.log));
    cr_assert_eq(count_rows(s.db, "SELECT count(*) FROM transitions WHERE rule = "
                                  "'bp.post-dose-due'"), 1);
    cr_assert_eq(count_rows(s.db, "SELECT count(*) FROM transitions WHERE rule = "
                                  "'monitoring.discharge-assessable'"), 1);
    rg_test_rmdir(s.dir);
}

Test(compliance, the_service_report_is_the_command_line_report_of_the_token_clinic,
     .timeout = 60)
{
    server s = {0};
    char *out, *err;
    esketamine_setup(&s);
    server_start(&s);
    /* west's timeline, as a backfill in one request */
    char *lines = rg_test_read("examples/clinics/west/timeline.jsonl");
    size_t n = strlen(lines);
    char *body = malloc(n + 8);
    size_t k = 0;
    body[k++] = '[';
    for (size_t i = 0; i < n; i++)
        body[k++] = lines[i] == '\n' && i + 1 < n ? ',' : lines[i];
    body[k++] = ']';
    body[k] = '\0';
    cr_assert_eq(http(s.port, "POST", "/v1/events", TOKEN_WEST, body, &out), 200, "%s", out);
    cr_assert(strstr(out, "\"stored\":109"), "%.300s", out);
    free(out);
    free(body);
    free(lines);

    const char *q = "/v1/reports/compliance?from=2026-03-01T00:00:00-06:00&"
                    "to=2026-05-01T00:00:00-05:00";
    char path[256];
    char *expected = rg_test_read("examples/clinics/west/report.txt");
    cr_assert_eq(http(s.port, "GET", q, TOKEN_WEST, NULL, &out), 200, "%s", out);
    cr_assert_str_eq(out, expected, "the service's report differs from regimen report's");
    free(out);
    free(expected);
    snprintf(path, sizeof path, "%s&format=csv", q);
    expected = rg_test_read("examples/clinics/west/report.csv");
    cr_assert_eq(http(s.port, "GET", path, TOKEN_WEST, NULL, &out), 200, "%s", out);
    cr_assert_str_eq(out, expected);
    free(out);
    free(expected);
    snprintf(path, sizeof path, "%s&format=html", q);
    cr_assert_eq(http(s.port, "GET", path, TOKEN_WEST, NULL, &out), 200, "%s", out);
    cr_assert(strstr(out, "w-e4-d1") && strstr(out, "missing (due 2026-04-27 10:00 -05:00)"),
              "%s", out);
    free(out);

    /* another clinic's token sees none of west's patients */
    cr_assert_eq(http(s.port, "GET", q, TOKEN_A, NULL, &out), 200, "%s", out);
    cr_assert(strstr(out, "clinic north\n") && strstr(out, "sessions (esketamine doses)"
                                                           "                  0\n"), "%s", out);
    cr_assert(!strstr(out, "p-e"), "%s", out);
    free(out);
    /* bad requests name the parameter */
    cr_assert_eq(http(s.port, "GET", "/v1/reports/compliance?from=2026-03-01T00:00:00Z",
                      TOKEN_WEST, NULL, &out), 400);
    cr_assert(strstr(out, "'to' is required"), "%s", out);
    free(out);
    cr_assert_eq(http(s.port, "GET", "/v1/reports/compliance?from=yesterday&to=today",
                      TOKEN_WEST, NULL, &out), 400);
    cr_assert(strstr(out, "'from'"), "%s", out);
    free(out);
    cr_assert_eq(http(s.port, "GET", q, NULL, NULL, &out), 401);
    free(out);

    /* the command line on the service's database says the same */
    const char *args[] = {"report", "--clinic", "west=examples/clinics/west", "--from",
                          "2026-03-01T00:00:00-06:00", "--to", "2026-05-01T00:00:00-05:00",
                          "--db", s.db, NULL};
    cr_assert_eq(rg_test_run(args, NULL, &out, &err), 0, "%s", err);
    expected = rg_test_read("examples/clinics/west/report.txt");
    cr_assert_str_eq(out, expected);
    free(expected);
    free(out);
    free(err);
    cr_assert_eq(server_stop(&s, SIGTERM), 0, "%s", rg_test_read(s.log));
    rg_test_rmdir(s.dir);
}
