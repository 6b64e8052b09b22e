/*
 * test_e2e.c - the real build/regimen binary, end to end: the example
 * clinic's expected alerts, every kind of bad event line, idempotent
 * re-ingest and conflicts, `rejected`, `check`, and hostile protocols that
 * fail cleanly while another clinic's protocol keeps producing alerts.
 * Run from the repository root (make test does).
 */
#include "helpers.h"

#include "core/rg.h"

#include <dirent.h>
#include <sqlite3.h>

Test(e2e, example_clinic_matches_expected_transitions)
{
    char *out, *err;
    const char *args[] = {"simulate", "--events", "examples/clinics/north/timeline.jsonl",
                          "--until", "2026-05-01T00:00:00Z", "--clinic",
                          "north=examples/clinics/north", "--format", "jsonl", NULL};
    int rc = rg_test_run(args, NULL, &out, &err);
    cr_assert_eq(rc, 0, "exit %d, stderr:\n%s", rc, err);
    char *expected = rg_test_read("examples/clinics/north/expected.jsonl");
    cr_assert_str_eq(out, expected, "simulate output differs from expected.jsonl");
    cr_assert(strstr(out, "\"rule\":\"safety.bp-high\""), "north's stricter limit applies");
    free(out);
    free(err);
    free(expected);
}

Test(e2e, south_clinic_matches_expected_transitions)
{
    char *out, *err;
    const char *args[] = {"simulate", "--events", "examples/clinics/south/timeline.jsonl",
                          "--until", "2026-09-01T00:00:00Z", "--clinic",
                          "south=examples/clinics/south", "--format", "jsonl", NULL};
    int rc = rg_test_run(args, NULL, &out, &err);
    cr_assert_eq(rc, 0, "exit %d, stderr:\n%s", rc, err);
    char *expected = rg_test_read("examples/clinics/south/expected.jsonl");
    cr_assert_str_eq(out, expected, "simulate output differs from expected.jsonl");
    cr_assert(strstr(out, "\"rule\":\"south.gad7-rising\""), "the clinic's own rule runs");
    free(out);
    free(err);
    free(expected);
}

/* west runs both shipped sets (include = { "ketamine", "esketamine" }) */
Test(e2e, west_clinic_runs_both_sets_and_matches_expected_transitions)
{
    char *out, *err;
    const char *args[] = {"simulate", "--events", "examples/clinics/west/timeline.jsonl",
                          "--until", "2026-05-01T00:00:00Z", "--clinic",
                          "west=examples/clinics/west", "--format", "jsonl", NULL};
    int rc = rg_test_run(args, NULL, &out, &err);
    cr_assert_eq(rc, 0, "exit %d, stderr:\n%s", rc, err);
    char *expected = rg_test_read("examples/clinics/west/expected.jsonl");
    cr_assert_str_eq(out, expected, "simulate output differs from expected.jsonl");
    cr_assert(strstr(out, "\"protocol\":\"esketamine.rems\""), "the esketamine set runs");
    cr_assert(strstr(out, "\"protocol\":\"ketamine.acute\""), "the ketamine set runs");
    free(out);
    free(err);
    free(expected);
}

/* regimen report: west's compliance in the three formats, from a timeline
 * and from a database, and its refusals */
Test(e2e, report_gives_west_compliance_as_text_csv_and_html)
{
    char *out, *err, *expected;
    const char *fmt[] = {"text", "csv"}, *file[] = {"examples/clinics/west/report.txt",
                                                    "examples/clinics/west/report.csv"};
    for (int i = 0; i < 2; i++) {
        const char *args[] = {"report", "--clinic", "west=examples/clinics/west", "--from",
                              "2026-03-01T00:00:00-06:00", "--to", "2026-05-01T00:00:00-05:00",
                              "--events", "examples/clinics/west/timeline.jsonl", "--format",
                              fmt[i], NULL};
        int rc = rg_test_run(args, NULL, &out, &err);
        cr_assert_eq(rc, 0, "exit %d, stderr:\n%s", rc, err);
        expected = rg_test_read(file[i]);
        cr_assert_str_eq(out, expected, "report --format %s differs from %s", fmt[i], file[i]);
        free(expected);
        free(out);
        free(err);
    }
    /* the numbers that matter, so a regenerated file cannot hide a wrong count */
    expected = rg_test_read("examples/clinics/west/report.txt");
    cr_assert(strstr(expected, "with a 40-minute blood pressure              16 of 17 (94.1%)"));
    cr_assert(strstr(expected, "monitored at least 2 hours                   16 of 17 (94.1%)"));
    cr_assert(strstr(expected, "1 late, 1 missing, 0 not yet due"));
    cr_assert(strstr(expected, "w-e4-d1          dose 2026-04-20 10:00 -05:00: missing"));
    cr_assert(strstr(expected, "PHQ-9 22 -> 4 (-82%): response, remission"));
    cr_assert(strstr(expected, "PHQ-9 18 -> 12 (-33%): no response, no remission"));
    free(expected);

    /* HTML: one self-contained page */
    const char *html[] = {"report", "--clinic", "west=examples/clinics/west", "--from",
                          "2026-03-01T00:00:00-06:00", "--to", "2026-05-01T00:00:00-05:00",
                          "--events", "examples/clinics/west/timeline.jsonl", "--format", "html",
                          NULL};
    cr_assert_eq(rg_test_run(html, NULL, &out, &err), 0, "%s", err);
    cr_assert(!strncmp(out, "<!DOCTYPE html>", 15), "%.200s", out);
    cr_assert(strstr(out, "<style>") && !strstr(out, "<script") && !strstr(out, "src=") &&
              !strstr(out, "<link"), "self-contained");
    cr_assert(strstr(out, "<td class=\"no\">missing (due 2026-04-27 10:00 -05:00)</td>"), "%s", out);
    cr_assert(strstr(out, "15 of 17 (88.2%)"), "forms in time");
    free(out);
    free(err);

    /* the same from a database */
    char dir[256], db[300];
    rg_test_tmpdir(dir);
    snprintf(db, sizeof db, "%s/west.db", dir);
    const char *ingest[] = {"ingest", "--db", db, "examples/clinics/west/timeline.jsonl", NULL};
    cr_assert_eq(rg_test_run(ingest, NULL, &out, &err), 0, "%s", err);
    free(out);
    free(err);
    const char *fromdb[] = {"report", "--clinic", "west=examples/clinics/west", "--from",
                            "2026-03-01T00:00:00-06:00", "--to", "2026-05-01T00:00:00-05:00",
                            "--db", db, NULL};
    cr_assert_eq(rg_test_run(fromdb, NULL, &out, &err), 0, "%s", err);
    expected = rg_test_read("examples/clinics/west/report.txt");
    cr_assert_str_eq(out, expected);
    free(expected);
    free(out);
    free(err);
    /* another clinic's name: nothing of west's */
    const char *other[] = {"report", "--clinic", "east", "--from", "2026-03-01T00:00:00Z",
                           "--to", "2026-05-01T00:00:00Z", "--db", db, NULL};
    cr_assert_eq(rg_test_run(other, NULL, &out, &err), 0, "%s", err);
    cr_assert(strstr(out, "sessions (esketamine doses)                  0\n"), "%s", out);
    free(out);
    free(err);
    /* counted by the clinic's own numbers (its clinic.lua) */
    char cdir[300], carg[320];
    snprintf(cdir, sizeof cdir, "%s/strict", dir);
    rg_test_write(dir, "strict/clinic.lua",
                  "local R = require 'regimen'\n"
                  "return { include = { 'esketamine' }, params = {\n"
                  "  ['esketamine.session'] = { monitoring_min = R.hours(3) },\n"
                  "  ['esketamine.rems'] = { form_within = R.days(5) } } }\n");
    snprintf(carg, sizeof carg, "west=%s", cdir);
    const char *strict[] = {"report", "--clinic", carg, "--from", "2026-03-01T00:00:00Z", "--to",
                            "2026-05-01T00:00:00Z", "--db", db, NULL};
    cr_assert_eq(rg_test_run(strict, NULL, &out, &err), 0, "%s", err);
    cr_assert(strstr(out, "monitored at least 3 hours                   0 of 17 (0.0%)"), "%s", out);
    cr_assert(strstr(out, "monitoring forms submitted within 5 days     15 of 17"), "%s", out);
    free(out);
    free(err);
    rg_test_rmdir(dir);

    /* refusals name what was expected */
    const char *bad_format[] = {"report", "--clinic", "west", "--from", "2026-03-01T00:00:00Z",
                                "--to", "2026-05-01T00:00:00Z", "--format", "pdf", NULL};
    cr_assert_eq(rg_test_run(bad_format, NULL, &out, &err), 2);
    cr_assert(strstr(err, "--format must be text, csv or html, not 'pdf'"), "%s", err);
    free(out);
    free(err);
    const char *backwards[] = {"report", "--clinic", "west", "--from", "2026-05-01T00:00:00Z",
                               "--to", "2026-03-01T00:00:00Z", NULL};
    cr_assert_eq(rg_test_run(backwards, NULL, &out, &err), 2);
    cr_assert(strstr(err, "--to must be after --from"), "%s", err);
    free(out);
    free(err);
    const char *bad_time[] = {"report", "--clinic", "west", "--from", "2026-03-01",
                              "--to", "2026-05-01T00:00:00Z", NULL};
    cr_assert_eq(rg_test_run(bad_time, NULL, &out, &err), 2);
    cr_assert(strstr(err, "--from: "), "%s", err);
    free(out);
    free(err);
}

Test(e2e, shipped_and_clinic_scenarios_pass)
{
    char *out, *err;
    const char *shipped[] = {"test", NULL};
    int rc = rg_test_run(shipped, NULL, &out, &err);
    cr_assert_eq(rc, 0, "shipped scenarios:\n%s%s", out, err);
    cr_assert(strstr(out, " 0 failed") && !strstr(out, "FAIL"), "%s", out);
    int passed = 0;
    cr_assert(strstr(out, "scenarios: "));
    sscanf(strstr(out, "scenarios: "), "scenarios: %d passed", &passed);
    cr_assert_geq(passed, 48, "every catalog rule has scenarios (%d)", passed);
    cr_assert(strstr(out, "esketamine/tests/session_test.lua"), "both shipped sets' scenarios run");
    free(out);
    free(err);
    const char *south[] = {"test", "examples/clinics/south/tests", NULL};
    rc = rg_test_run(south, NULL, &out, &err);
    cr_assert_eq(rc, 0, "south scenarios:\n%s%s", out, err);
    free(out);
    free(err);
    const char *west[] = {"test", "examples/clinics/west/tests", NULL};
    rc = rg_test_run(west, NULL, &out, &err);
    cr_assert_eq(rc, 0, "west scenarios:\n%s%s", out, err);
    cr_assert(strstr(out, "scenarios: 3 passed"), "%s", out);
    free(out);
    free(err);
}

Test(e2e, text_format_is_a_readable_table)
{
    char *out, *err;
    const char *args[] = {"simulate", "--events", "examples/clinics/north/timeline.jsonl",
                          "--until", "2026-05-01T00:00:00Z", "--clinic",
                          "north=examples/clinics/north", NULL};
    cr_assert_eq(rg_test_run(args, NULL, &out, &err), 0, "%s", err);
    cr_assert(strncmp(out, "AT ", 3) == 0, "%s", out);
    cr_assert(strstr(out, "infusion 3 of 6 due since 21 Mar 2026"), "%s", out);
    free(out);
    free(err);
}

Test(e2e, shipped_set_applies_without_protocols_flag)
{
    char dir[256], path[512], *out, *err;
    rg_test_tmpdir(dir);
    rg_test_write(dir, "ev.jsonl",
                  "{\"id\":\"1\",\"clinic\":\"z\",\"patient\":\"p\",\"type\":\"enrolled\","
                  "\"at\":\"2026-03-01T09:00:00Z\",\"data\":{\"program\":\"ketamine\"}}\n"
                  "{\"id\":\"2\",\"clinic\":\"z\",\"patient\":\"p\",\"type\":\"infusion\","
                  "\"at\":\"2026-03-02T09:00:00Z\",\"data\":{\"dose_mg_per_kg\":0.5}}\n");
    snprintf(path, sizeof path, "%s/ev.jsonl", dir);
    const char *args[] = {"simulate", "--events", path, "--until", "2026-03-10T00:00:00Z",
                          "--format", "jsonl", NULL};
    cr_assert_eq(rg_test_run(args, NULL, &out, &err), 0, "%s", err);
    cr_assert(strstr(out, "\"rule\":\"acute.infusion-due\""), "%s", out);
    cr_assert(strstr(out, "\"at\":\"2026-03-04T09:00:00Z\""), "%s", out);
    cr_assert(strstr(out, "\"rule\":\"integration.missing\""), "%s", out);
    free(out);
    free(err);
    rg_test_rmdir(dir);
}

/* Each bad line with the field the rejection must name. */
static const struct {
    const char *line, *field, *reason;
} bad_lines[] = {
    {"not json at all", "", "not valid JSON"},
    {"[1,2]", "", "expected a JSON object"},
    {"{\"clinic\":\"c\",\"patient\":\"p\",\"type\":\"x\",\"at\":\"2026-03-01T00:00:00Z\"}", "id",
     "missing"},
    {"{\"id\":1,\"clinic\":\"c\",\"patient\":\"p\",\"type\":\"x\",\"at\":\"2026-03-01T00:00:00Z\"}",
     "id", "must be a string"},
    {"{\"id\":\"b3\",\"clinic\":\"c\",\"patient\":\"p\",\"type\":\"Infusion\",\"at\":\"2026-03-01T00:00:00Z\"}",
     "type", "lower-case word"},
    {"{\"id\":\"b4\",\"clinic\":\"c\",\"patient\":\"p\",\"type\":\"x\",\"at\":\"2026-02-30T00:00:00Z\"}",
     "at", "not a date"},
    {"{\"id\":\"b5\",\"clinic\":\"c\",\"patient\":\"p\",\"type\":\"x\",\"at\":\"2026-03-01T00:00:00\"}",
     "at", "missing UTC offset"},
    {"{\"id\":\"b6\",\"clinic\":\"c\",\"patient\":\"p\",\"type\":\"x\",\"at\":\"yesterday\"}", "at",
     "RFC 3339"},
    {"{\"id\":\"b7\",\"clinic\":\"c\",\"patient\":\"p\",\"type\":\"x\",\"at\":\"2026-03-01T00:00:00Z\",\"data\":[1]}",
     "data", "must be a JSON object"},
    {"{\"id\":\"b8\",\"clinic\":\"c\",\"pateint\":\"p\",\"type\":\"x\",\"at\":\"2026-03-01T00:00:00Z\"}",
     "pateint", "unknown field"},
};

Test(e2e, every_bad_line_is_rejected_kept_and_listed)
{
    char dir[256], db[512], file[512], text[8192] = "", *out, *err;
    rg_test_tmpdir(dir);
    snprintf(db, sizeof db, "%s/r.db", dir);
    snprintf(file, sizeof file, "%s/in.jsonl", dir);
    strcat(text, "{\"id\":\"g1\",\"clinic\":\"c\",\"patient\":\"p\",\"type\":\"x\","
                 "\"at\":\"2026-03-01T00:00:00Z\"}\n");
    for (size_t i = 0; i < RG_COUNTOF(bad_lines); i++) {
        strcat(text, bad_lines[i].line);
        strcat(text, "\n");
    }
    strcat(text, "{\"id\":\"g2\",\"clinic\":\"c\",\"patient\":\"p\",\"type\":\"x\","
                 "\"at\":\"2026-03-02T00:00:00Z\"}\n");
    rg_test_write(dir, "in.jsonl", text);
    const char *args[] = {"ingest", "--db", db, file, NULL};
    int rc = rg_test_run(args, NULL, &out, &err);
    cr_assert_eq(rc, 1, "rejections make the exit code 1 (got %d)", rc);
    cr_assert(strstr(out, "stored 2, duplicates 0, conflicts 0, rejected 10"), "%s", out);
    for (size_t i = 0; i < RG_COUNTOF(bad_lines); i++) {
        char where[700];
        snprintf(where, sizeof where, "%s:%zu: %s%s%s", file, i + 2,
                 *bad_lines[i].field ? "field '" : "", bad_lines[i].field,
                 *bad_lines[i].field ? "'" : "");
        cr_assert(strstr(err, where), "stderr must say '%s':\n%s", where, err);
    }
    free(out);
    free(err);
    /* the operator's view: every line, its number, field, reason and text */
    const char *list[] = {"rejected", "--db", db, NULL};
    cr_assert_eq(rg_test_run(list, NULL, &out, &err), 0, "%s", err);
    for (size_t i = 0; i < RG_COUNTOF(bad_lines); i++) {
        cr_assert(strstr(out, bad_lines[i].reason), "rejected must list '%s':\n%s",
                  bad_lines[i].reason, out);
        char prefix[16];
        snprintf(prefix, sizeof prefix, "%.12s", bad_lines[i].line);
        cr_assert(strstr(out, prefix), "raw text kept: %s", prefix);
    }
    cr_assert(strstr(out, "10 rejected lines"), "%s", out);
    free(out);
    free(err);
    rg_test_rmdir(dir);
}

Test(e2e, reingest_is_idempotent_and_conflicts_do_not_overwrite)
{
    char dir[256], db[512], *out, *err;
    rg_test_tmpdir(dir);
    snprintf(db, sizeof db, "%s/r.db", dir);
    const char *line = "{\"id\":\"e1\",\"clinic\":\"c\",\"patient\":\"p\",\"type\":\"x\","
                       "\"at\":\"2026-03-01T00:00:00Z\",\"data\":{\"a\":1}}\n";
    const char *args[] = {"ingest", "--db", db, "-", NULL};
    cr_assert_eq(rg_test_run(args, line, &out, &err), 0, "%s", err);
    cr_assert(strstr(out, "stored 1,"), "%s", out);
    free(out);
    free(err);
    /* same event, keys in another order: a duplicate */
    const char *same = "{\"data\":{\"a\":1},\"at\":\"2026-03-01T00:00:00Z\",\"type\":\"x\","
                       "\"patient\":\"p\",\"clinic\":\"c\",\"id\":\"e1\"}\n";
    cr_assert_eq(rg_test_run(args, same, &out, &err), 0, "%s", err);
    cr_assert(strstr(out, "stored 0, duplicates 1, conflicts 0"), "%s", out);
    free(out);
    free(err);
    const char *changed = "{\"id\":\"e1\",\"clinic\":\"c\",\"patient\":\"p\",\"type\":\"x\","
                          "\"at\":\"2026-03-01T00:00:00Z\",\"data\":{\"a\":2}}\n";
    cr_assert_eq(rg_test_run(args, changed, &out, &err), 1, "%s", err);
    cr_assert(strstr(out, "conflicts 1"), "%s", out);
    cr_assert(strstr(err, "field 'id'") && strstr(err, "not overwritten"), "%s", err);
    free(out);
    free(err);
    rg_test_rmdir(dir);
}

Test(e2e, database_is_private_to_its_owner)
{
    char dir[256], db[512];
    struct stat sb;
    rg_test_tmpdir(dir);
    snprintf(db, sizeof db, "%s/r.db", dir);
    const char *args[] = {"ingest", "--db", db, "-", NULL};
    cr_assert_eq(rg_test_run(args, "", NULL, NULL), 0);
    cr_assert_eq(stat(db, &sb), 0);
    cr_assert_eq(sb.st_mode & 0777, 0600, "mode %o", sb.st_mode & 0777);
    rg_test_rmdir(dir);
}

/* Names in dir, sorted, joined by spaces. */
static void dir_names(const char *dir, char *out, size_t len)
{
    struct dirent **v;
    int n = scandir(dir, &v, NULL, alphasort);
    cr_assert_geq(n, 0);
    out[0] = '\0';
    for (int i = 0; i < n; i++) {
        if (v[i]->d_name[0] != '.')
            snprintf(out + strlen(out), len - strlen(out), "%s%s", out[0] ? " " : "",
                     v[i]->d_name);
        free(v[i]);
    }
    free(v);
}

/* ingest into a database that does not exist is written whole or not at
 * all (cli/store_cmd.c): a bad line and a repeated id are refused with
 * their lines as always and the new file is a store like any other (WAL,
 * the owner's alone), while a failure half-way leaves no file at all,
 * under its name or another */
Test(e2e, ingest_into_a_new_database_is_whole_or_nothing)
{
    char dir[256], db[300], file[300], names[512], *out, *err;
    struct stat sb;
    rg_test_tmpdir(dir);
    snprintf(db, sizeof db, "%s/n.db", dir);
    snprintf(file, sizeof file, "%s/in.jsonl", dir);
    rg_test_write(dir, "in.jsonl",
                  "{\"id\":\"a\",\"clinic\":\"c\",\"patient\":\"p\",\"type\":\"x\","
                  "\"at\":\"2026-03-01T00:00:00Z\"}\n"
                  "{\"id\":\"a\",\"clinic\":\"c\",\"patient\":\"p\",\"type\":\"x\","
                  "\"at\":\"2026-03-01T00:00:00Z\",\"data\":{\"v\":1}}\n"
                  "not json\n"
                  "{\"id\":\"a\",\"clinic\":\"c\",\"patient\":\"p\",\"type\":\"x\","
                  "\"at\":\"2026-03-01T00:00:00Z\"}\n");
    const char *args[] = {"ingest", "--db", db, file, NULL};
    cr_assert_eq(rg_test_run(args, NULL, &out, &err), 1, "%s%s", out, err);
    cr_assert(strstr(out, "stored 1, duplicates 1, conflicts 1, rejected 1"), "%s", out);
    char where[600];
    snprintf(where, sizeof where, "%s:2: field 'id': an event with this clinic and id is "
             "already stored with different content", file);
    cr_assert(strstr(err, where), "%s", err);
    snprintf(where, sizeof where, "%s:3: not valid JSON", file);
    cr_assert(strstr(err, where), "%s", err);
    free(out);
    free(err);
    dir_names(dir, names, sizeof names);
    cr_assert_str_eq(names, "in.jsonl n.db", "nothing else is left beside it");
    cr_assert_eq(stat(db, &sb), 0);
    cr_assert_eq(sb.st_mode & 0777, 0600, "mode %o", sb.st_mode & 0777);
    sqlite3 *h;
    sqlite3_stmt *q;
    cr_assert_eq(sqlite3_open_v2(db, &h, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    cr_assert_eq(sqlite3_prepare_v2(h, "SELECT (SELECT count(*) FROM events) || ' ' ||"
                                       " (SELECT count(*) FROM rejected) || ' ' ||"
                                       " (SELECT journal_mode FROM pragma_journal_mode)",
                                    -1, &q, NULL), SQLITE_OK, "%s", sqlite3_errmsg(h));
    cr_assert_eq(sqlite3_step(q), SQLITE_ROW);
    cr_assert_str_eq((const char *)sqlite3_column_text(q, 0), "1 2 wal");
    sqlite3_finalize(q);
    sqlite3_close(h);

    /* a read error half-way (a directory is no file of lines): nothing stays */
    char before[512];
    dir_names(dir, before, sizeof before);
    snprintf(db, sizeof db, "%s/m.db", dir);
    const char *broken[] = {"ingest", "--db", db, dir, NULL};
    cr_assert_eq(rg_test_run(broken, NULL, &out, &err), 2, "%s%s", out, err);
    cr_assert(strstr(err, "read error") && strstr(err, "nothing of the file was kept") &&
              strstr(err, "m.db was not created"), "%s", err);
    free(out);
    free(err);
    dir_names(dir, names, sizeof names);
    cr_assert_str_eq(names, before, "no half-written file is left: %s", names);
    rg_test_rmdir(dir);
}

Test(e2e, check_reports_file_and_line)
{
    char dir[256], path[512], *out, *err;
    rg_test_tmpdir(dir);
    rg_test_write(dir, "p/broken.lua",
                  "local R = require 'regimen'\n"
                  "return R.protocol {\n"
                  "  id = 'x', version = '1',\n"
                  "  rules = { { id = 'x.r', severity = 'urgent', check = function() end } },\n"
                  "}\n");
    snprintf(path, sizeof path, "%s/p", dir);
    const char *args[] = {"check", path, NULL};
    cr_assert_eq(rg_test_run(args, NULL, &out, &err), 1);
    cr_assert(strstr(err, "broken.lua:2:") && strstr(err, "severity must be"), "%s", err);
    free(out);
    free(err);
    const char *shipped[] = {"check", NULL};
    cr_assert_eq(rg_test_run(shipped, NULL, &out, &err), 0, "%s", err);
    cr_assert(strstr(out, "safety.bp-high"), "%s", out);
    cr_assert(strstr(out, "monitoring.ended-early"), "both shipped sets: %s", out);
    free(out);
    free(err);
    rg_test_rmdir(dir);
}

/* A clinic admin who writes a bare number for a duration parameter
 * ("infusion_due_after = 3", meaning days) would get 3 milliseconds: refused
 * with the fix in the message; the same override written as R.days(3) loads. */
Test(e2e, bare_number_for_a_duration_is_refused)
{
    char dir[256], path[512], *out, *err;
    rg_test_tmpdir(dir);
    rg_test_write(dir, "c/clinic.lua",
                  "return { include = { 'ketamine' },\n"
                  "  params = { ['ketamine.acute'] = { infusion_due_after = 3 } } }\n");
    snprintf(path, sizeof path, "%s/c", dir);
    const char *args[] = {"check", path, NULL};
    cr_assert_eq(rg_test_run(args, NULL, &out, &err), 1, "%s", out);
    cr_assert(strstr(err, "clinic.lua:2: params for 'ketamine.acute': 'infusion_due_after' is a "
                          "duration: write R.days(3) or R.hours(72)"),
              "%s", err);
    free(out);
    free(err);
    rg_test_write(dir, "c/clinic.lua",
                  "local R = require 'regimen'\n"
                  "return { include = { 'ketamine' },\n"
                  "  params = { ['ketamine.acute'] = { infusion_due_after = R.days(3) } } }\n");
    cr_assert_eq(rg_test_run(args, NULL, &out, &err), 0, "%s", err);
    free(out);
    free(err);
    rg_test_rmdir(dir);
}

/* Hostile protocols run as clinic "bad" next to the shipped set for clinic
 * "good": good must still get its alerts, bad must fail with a clear,
 * attributed error and the command must finish. */
static void hostile(const char *protocol_text, const char *expect)
{
    char dir[256], events[512], bad[512], good[600], *out, *err;
    rg_test_tmpdir(dir);
    rg_test_write(dir, "bad/hostile.lua", protocol_text);
    rg_test_write(dir, "ev.jsonl",
                  "{\"id\":\"1\",\"clinic\":\"good\",\"patient\":\"p\",\"type\":\"enrolled\","
                  "\"at\":\"2026-03-01T09:00:00Z\",\"data\":{\"program\":\"ketamine\"}}\n"
                  "{\"id\":\"2\",\"clinic\":\"good\",\"patient\":\"p\",\"type\":\"infusion\","
                  "\"at\":\"2026-03-02T09:00:00Z\",\"data\":{\"dose_mg_per_kg\":0.5}}\n"
                  "{\"id\":\"1\",\"clinic\":\"bad\",\"patient\":\"q\",\"type\":\"enrolled\","
                  "\"at\":\"2026-03-01T09:00:00Z\",\"data\":{\"program\":\"ketamine\"}}\n");
    snprintf(events, sizeof events, "%s/ev.jsonl", dir);
    snprintf(bad, sizeof bad, "bad=%s/bad", dir);
    snprintf(good, sizeof good, "good=protocols/ketamine");
    const char *args[] = {"simulate", "--events", events, "--until", "2026-03-10T00:00:00Z",
                          "--format", "jsonl", "--clinic", bad, "--clinic", good,
                          "--max-instructions", "2000000", "--deadline-ms", "500",
                          "--max-memory-mb", "32", NULL};
    int rc = rg_test_run(args, NULL, &out, &err);
    cr_assert_eq(rc, expect[0] == '!' ? 2 : 1, "exit %d\n%s", rc, err);
    const char *want = expect[0] == '!' ? expect + 1 : expect;
    cr_assert(strstr(err, want), "expected '%s' in stderr:\n%s", want, err);
    cr_assert(strstr(err, "hostile.lua"), "the error names the protocol file:\n%s", err);
    if (expect[0] != '!')
        cr_assert(strstr(out, "\"clinic\":\"good\"") && strstr(out, "acute.infusion-due"),
                  "the good clinic keeps alerting:\n%s", out);
    free(out);
    free(err);
    rg_test_rmdir(dir);
}

#define RULE(body)                                                                         \
    "local R = require 'regimen'\n"                                                        \
    "return R.protocol { id = 'h', version = '1', rules = { { id = 'h.r', severity = "     \
    "'info',\n  check = function(h, now, p)\n" body "\n  end } } }\n"

Test(e2e, hostile_endless_loop)
{
    hostile(RULE("while true do end"), "instruction budget");
}

Test(e2e, hostile_memory_bomb)
{
    hostile(RULE("local s = 'x' for i = 1, 40 do s = s .. s end"), "memory limit");
}

Test(e2e, hostile_forbidden_global)
{
    hostile(RULE("os.execute('touch /tmp/pwned')"), "'os' is not available");
}

Test(e2e, hostile_catastrophic_pattern)
{
    hostile(RULE("string.find(('a'):rep(40), ('a*'):rep(40) .. 'b')"), "deadline");
}

Test(e2e, hostile_protocol_refused_at_load)
{
    /* a clinic whose protocols cannot load is refused before simulating */
    hostile("local x = io.open('/etc/passwd')\n", "!'io' is not available");
}

Test(e2e, scenario_runner_reports_missing_and_unexpected)
{
    char dir[256], path[512], *out, *err;
    rg_test_tmpdir(dir);
    rg_test_write(dir, "p/t.lua",
                  "local R = require 'regimen'\n"
                  "return R.protocol { id = 't', version = '1', params = { wait = R.hours(2) },\n"
                  "  rules = { { id = 't.due', severity = 'info', check = function(h, now, p)\n"
                  "    local last = h:last('ping')\n"
                  "    if last then return R.alert { due = last.at + p.wait, message = 'late' } end\n"
                  "  end } } }\n");
    rg_test_write(dir, "p/tests/t_test.lua",
                  "return {\n"
                  "  { name = 'opens after the wait', horizon = '2026-03-02T00:00:00Z',\n"
                  "    events = { { '2026-03-01T10:00:00+01:00', 'ping' } },\n"
                  "    expect = { { '2026-03-01T11:00:00Z', 'open', 't.due' } } },\n"
                  "  { name = 'clinic params apply', params = { wait = 60000 },\n"
                  "    horizon = '2026-03-02T00:00:00Z',\n"
                  "    events = { { '2026-03-01T10:00:00Z', 'ping', {}, patient = 'p9' } },\n"
                  "    expect = { { '2026-03-01T10:01:00Z', 'open', 't.due', patient = 'p9' } } },\n"
                  "  { name = 'wrong on purpose', horizon = '2026-03-02T00:00:00Z',\n"
                  "    events = { { '2026-03-01T10:00:00Z', 'ping' } },\n"
                  "    expect = { { '2026-03-01T13:00:00Z', 'open', 't.due' } } },\n"
                  "}\n");
    snprintf(path, sizeof path, "%s/p/tests", dir);
    const char *args[] = {"test", path, NULL};
    int rc = rg_test_run(args, NULL, &out, &err);
    cr_assert_eq(rc, 1, "a failing scenario fails the command (%d)\n%s%s", rc, out, err);
    cr_assert(strstr(out, "ok   ") && strstr(out, "\"opens after the wait\""), "%s", out);
    cr_assert(strstr(out, "ok   ") && strstr(out, "\"clinic params apply\""), "%s", out);
    cr_assert(strstr(out, "FAIL ") && strstr(out, "\"wrong on purpose\""), "%s", out);
    cr_assert(strstr(out, "missing:    2026-03-01T13:00:00Z open     t.due for p1"), "%s", out);
    cr_assert(strstr(out, "it happened at 2026-03-01T12:00:00Z instead"), "%s", out);
    cr_assert(strstr(out, "unexpected: 2026-03-01T12:00:00Z open     t.due for p1"), "%s", out);
    cr_assert(strstr(out, "scenarios: 2 passed, 1 failed"), "%s", out);
    free(out);
    free(err);
    rg_test_rmdir(dir);
}

Test(e2e, explain_names_rule_version_parameters_and_events)
{
    char *out, *err;
    char *expected = rg_test_read("examples/clinics/north/expected.jsonl");
    const char *k = strstr(expected, "\"rule\":\"acute.infusion-due\"");
    cr_assert_not_null(k);
    k = strstr(k, "\"key\":\"") + 7;
    char key[33];
    snprintf(key, sizeof key, "%.32s", k);
    const char *args[] = {"explain", key, "--events", "examples/clinics/north/timeline.jsonl",
                          "--until", "2026-05-01T00:00:00Z", "--clinic",
                          "north=examples/clinics/north", NULL};
    cr_assert_eq(rg_test_run(args, NULL, &out, &err), 0, "%s", err);
    cr_assert(strstr(out, "rule acute.infusion-due of protocol ketamine.acute"), "%s", out);
    cr_assert(strstr(out, "protocol version 1.0.0"), "%s", out);
    cr_assert(strstr(out, "infusion_due_after       172800000  (2 days)"), "%s", out);
    cr_assert(strstr(out, "n-400-i1       infusion"), "the infusion it rested on:\n%s", out);
    /* north's own time (America/New_York), and when staff were told */
    cr_assert(strstr(out, "resolved 2026-03-06 02:00 -05:00"), "%s", out);
    cr_assert(strstr(out, "staff notified 2026-03-05 08:00 -05:00 (the clinic was closed)"), "%s",
              out);
    free(out);
    free(err);
    const char *unknown[] = {"explain", "0000000000000000", "--events",
                             "examples/clinics/north/timeline.jsonl", "--until",
                             "2026-05-01T00:00:00Z", NULL};
    cr_assert_eq(rg_test_run(unknown, NULL, &out, &err), 1);
    cr_assert(strstr(err, "no alert with key"), "%s", err);
    free(out);
    free(err);
    free(expected);
}

Test(e2e, diff_lists_what_a_protocol_change_does)
{
    char dir[256], newdir[300], cmd[2048], *out, *err;
    rg_test_tmpdir(dir);
    snprintf(newdir, sizeof newdir, "%s/new", dir);
    snprintf(cmd, sizeof cmd,
             "mkdir -p %s && cp protocols/ketamine/*.lua %s/ && "
             "sed -i 's/infusion_due_after     = days(2)/infusion_due_after     = days(3)/' %s/acute.lua",
             newdir, newdir, newdir);
    cr_assert_eq(system(cmd), 0);
    const char *same[] = {"diff", "--events", "examples/clinics/north/timeline.jsonl", "--until",
                          "2026-05-01T00:00:00Z", "protocols/ketamine", "protocols/ketamine", NULL};
    cr_assert_eq(rg_test_run(same, NULL, &out, &err), 0, "%s%s", out, err);
    cr_assert(strstr(out, "0 differences"), "%s", out);
    free(out);
    free(err);
    const char *args[] = {"diff", "--events", "examples/clinics/north/timeline.jsonl", "--until",
                          "2026-05-01T00:00:00Z", "protocols/ketamine", newdir, NULL};
    cr_assert_eq(rg_test_run(args, NULL, &out, &err), 1, "%s%s", out, err);
    cr_assert(strstr(out, "moved     north p-300 acute.infusion-due         open     "
                          "2026-03-21T17:00:00Z -> 2026-03-22T17:00:00Z"), "%s", out);
    cr_assert(strstr(out, "only OLD  north p-400 acute.infusion-due"), "%s", out);
    cr_assert(strstr(out, "15 differences"), "%s", out);
    free(out);
    free(err);
    rg_test_rmdir(dir);
}

/* A NEW directory that does not load is not "everything resolved": diff
 * refuses to compare, names the side, and exits 2. */
Test(e2e, diff_refuses_a_side_with_errors)
{
    char dir[256], *out, *err;
    rg_test_tmpdir(dir);
    rg_test_write(dir, "new/clinic.lua",
                  "return { include = { 'ketamine' },\n"
                  "  params = { ['ketamine.acute'] = { infusion_due_after = 3 } } }\n");
    char newdir[300];
    snprintf(newdir, sizeof newdir, "%s/new", dir);
    const char *args[] = {"diff", "--events", "examples/clinics/north/timeline.jsonl", "--until",
                          "2026-05-01T00:00:00Z", "protocols/ketamine", newdir, NULL};
    cr_assert_eq(rg_test_run(args, NULL, &out, &err), 2, "%s%s", out, err);
    cr_assert(strstr(err, "diff: NEW (") && strstr(err, "fix them, then compare"), "%s", err);
    cr_assert(!strstr(out, "only OLD"), "no comparison printed: %s", out);
    free(out);
    free(err);
    rg_test_rmdir(dir);
}

Test(e2e, html_timeline_is_one_self_contained_page)
{
    char *out, *err;
    const char *args[] = {"simulate", "--events", "examples/clinics/north/timeline.jsonl",
                          "--until", "2026-05-01T00:00:00Z", "--clinic",
                          "north=examples/clinics/north", "--format", "html", NULL};
    cr_assert_eq(rg_test_run(args, NULL, &out, &err), 0, "%s", err);
    cr_assert(strncmp(out, "<!DOCTYPE html>", 15) == 0, "%.200s", out);
    cr_assert(strstr(out, "</html>"), "the page is complete");
    for (const char *p = "p-100\0p-200\0p-300\0p-400\0"; *p; p += strlen(p) + 1)
        cr_assert(strstr(out, p), "patient %s has a timeline", p);
    cr_assert(strstr(out, "<svg") && strstr(out, "sev-critical"), "bars coloured by severity");
    cr_assert_null(strstr(out, "<script"), "no script");
    /* north's own time: its zone named, tooltips with the local offset */
    cr_assert(strstr(out, "All times local, America/New_York."), "%.600s", out);
    cr_assert(strstr(out, "opened 2026-03-05 02:00 -05:00"), "local times in tooltips");
    for (const char *u = out; (u = strstr(u, "://")); u++)
        cr_assert(strncmp(u - 4, "http://www.w3.org/2000/svg", 26) == 0, "no network: %.60s", u);
    free(out);
    free(err);
}

/* Corrections through the real binary (docs/corrections.md): `ingest` counts
 * them and names why a stale or changed version is refused; `simulate` of a
 * timeline with a retracted 171/99 reading and an amended PHQ-9 resolves
 * safety.bp-high and safety.suicidality at the corrections' instants; and
 * `explain` shows the correction, who sent it and what it replaced. */
Test(e2e, corrections_ingest_simulate_and_explain)
{
    char dir[256], db[512], file[512], *out, *err;
    rg_test_tmpdir(dir);
    snprintf(db, sizeof db, "%s/c.db", dir);
    const char *ing[] = {"ingest", "--db", db, "examples/corrections/timeline.jsonl", NULL};
    cr_assert_eq(rg_test_run(ing, NULL, &out, &err), 0, "%s%s", out, err);
    cr_assert(strstr(out, "stored 6, duplicates 1, conflicts 0, rejected 0, corrected 2"), "%s%s",
              out, err);
    free(out);
    free(err);
    rg_test_write(dir, "bad.jsonl",
                  "{\"id\":\"bp-1\",\"clinic\":\"east\",\"patient\":\"p-1\",\"type\":\"vitals\","
                  "\"at\":\"2026-03-02T09:30:00Z\",\"version\":1,\"data\":{\"systolic\":120}}\n"
                  "{\"id\":\"phq-1\",\"clinic\":\"east\",\"patient\":\"p-2\",\"type\":\"assessment\","
                  "\"at\":\"2026-03-02T09:20:00Z\",\"version\":3,\"corrected_at\":\"2026-03-02T17:00:00Z\"}\n"
                  "{\"id\":\"x\",\"clinic\":\"east\",\"patient\":\"p-1\",\"type\":\"vitals\","
                  "\"at\":\"2026-03-02T09:30:00Z\",\"version\":2}\n"
                  "{\"id\":\"x\",\"clinic\":\"east\",\"patient\":\"p-1\",\"type\":\"vitals\","
                  "\"at\":\"2026-03-02T09:30:00Z\",\"status\":\"withdrawn\"}\n");
    snprintf(file, sizeof file, "%s/bad.jsonl", dir);
    const char *bad[] = {"ingest", "--db", db, file, NULL};
    cr_assert_eq(rg_test_run(bad, NULL, &out, &err), 1, "%s%s", out, err);
    cr_assert(strstr(out, "stored 0, duplicates 0, conflicts 2, rejected 2, corrected 0"), "%s%s",
              out, err);
    cr_assert(strstr(err, "bad.jsonl:1: field 'id': version 1 of this event is already stored "
                          "with different content"), "%s", err);
    cr_assert(strstr(err, "bad.jsonl:2: field 'patient': a correction must keep the patient"),
              "%s", err);
    cr_assert(strstr(err, "bad.jsonl:3: field 'corrected_at': required field 'corrected_at' is "
                          "missing"), "%s", err);
    cr_assert(strstr(err, "bad.jsonl:4: field 'status'"), "%s", err);
    free(out);
    free(err);

    const char *sim[] = {"simulate", "--events", "examples/corrections/timeline.jsonl",
                         "--until", "2026-03-04T00:00:00Z", "--format", "jsonl", NULL};
    cr_assert_eq(rg_test_run(sim, NULL, &out, &err), 0, "%s", err);
    char *expected = rg_test_read("examples/corrections/expected.jsonl");
    cr_assert_str_eq(out, expected, "simulate output differs from expected.jsonl");
    cr_assert(strstr(out, "{\"at\":\"2026-03-02T15:00:00Z\",\"state\":\"resolved\",\"clinic\":"
                          "\"east\",\"patient\":\"p-1\",\"protocol\":\"ketamine.safety\","
                          "\"version\":\"1.0.0\",\"rule\":\"safety.bp-high\""), "%s", out);
    cr_assert(strstr(out, "{\"at\":\"2026-03-02T16:00:00Z\",\"state\":\"resolved\",\"clinic\":"
                          "\"east\",\"patient\":\"p-1\",\"protocol\":\"ketamine.safety\","
                          "\"version\":\"1.0.0\",\"rule\":\"safety.suicidality\""), "%s", out);
    /* the key of bp-high, for explain */
    const char *k = strstr(out, "\"rule\":\"safety.bp-high\"");
    cr_assert_not_null(k);
    k = strstr(k, "\"key\":\"");
    cr_assert_not_null(k);
    char key[33];
    snprintf(key, sizeof key, "%s", k + 7);
    free(out);
    free(err);
    const char *ex[] = {"explain", key, "--events", "examples/corrections/timeline.jsonl",
                        "--until", "2026-03-04T00:00:00Z", NULL};
    cr_assert_eq(rg_test_run(ex, NULL, &out, &err), 0, "%s", err);
    cr_assert(strstr(out, "bp-1           withdrawn (entered in error); its versions:"), "%s", out);
    cr_assert(strstr(out, "corrections made since the previous transition:\n      bp-1           "
                          "version 2 entered-in-error, corrected_at 2026-03-02T15:00:00Z by dr-lee, "
                          "replaced version 1 (vitals at 2026-03-02T09:30:00Z {\"diastolic\":99,"),
              "%s", out);
    free(out);
    free(err);
    free(expected);
    rg_test_rmdir(dir);
}
