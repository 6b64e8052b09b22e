/*
 * test_time.c - clinic time end to end, through the real binary: a clinic
 * that declares a zone and opening hours in clinic.lua, protocols that use
 * the calendar helpers, and what comes out (jsonl's at_local, due_local and
 * notify_at; the text table in local time). Covers both 2026 daylight-saving
 * changes of America/New_York (Mar 8, Nov 1) and Europe/Berlin (Mar 29,
 * Oct 25), and clinic.lua's errors for bad time settings.
 */
#include <criterion/criterion.h>

#include "helpers.h"
#include "core/rg.h"

#include <string.h>

/* Three rules: a daily call at the enrolment's local time for 12 days; a
 * "visit" asks for a call next day at the HH:MM in its data; an info and a
 * critical alert at a "flag" event (to see notifications move). Messages
 * use the helpers so their answers show in the output. */
static const char time_protocol[] =
    "local R = require 'regimen'\n"
    "return R.protocol { id = 't', version = '1',\n"
    "  rules = {\n"
    "    { id = 't.daily', severity = 'info', check = function(h, now)\n"
    "        local e = h:first('enrolled')\n"
    "        if not e then return end\n"
    "        local out = {}\n"
    "        for n = 1, 12 do\n"
    "          local due = R.calendar_days(e.at, n)\n"
    "          out[#out + 1] = R.alert { key = n, due = due, ends = due + R.minutes(30),\n"
    "            message = 'call ' .. R.day(due) .. ' ' .. R.clock(due) }\n"
    "        end\n"
    "        return out\n"
    "      end },\n"
    "    { id = 't.at', severity = 'info', check = function(h, now)\n"
    "        local out = {}\n"
    "        for _, v in ipairs(h:list('visit')) do\n"
    "          local due = R.calendar_days(v.at, 1, v.data.clock)\n"
    "          out[#out + 1] = R.alert { key = v.id, due = due, ends = due + R.minutes(1),\n"
    "            message = 'at ' .. R.time(due) }\n"
    "        end\n"
    "        return out\n"
    "      end },\n"
    "    { id = 't.flag', severity = 'info', check = function(h, now)\n"
    "        local f = h:last('flag')\n"
    "        if f then return R.alert { key = f.id, message = 'next open ' ..\n"
    "          R.time(R.next_open(f.at)) .. '; open now ' .. tostring(R.is_open(f.at)) ..\n"
    "          '; 2 business days ' .. R.time(R.business_days(f.at, 2)) } end\n"
    "      end },\n"
    "    { id = 't.flag-critical', severity = 'critical', check = function(h, now)\n"
    "        local f = h:last('flag')\n"
    "        if f then return R.alert { key = f.id, message = 'critical' } end\n"
    "      end },\n"
    "  } }\n";

/* A clinic directory in dir/name with clinic.lua `settings` and t.lua. */
static void make_clinic(const char *dir, const char *name, const char *settings)
{
    char sub[400];
    snprintf(sub, sizeof sub, "%s/%s", dir, name);
    mkdir(sub, 0755);
    rg_test_write(sub, "clinic.lua", settings);
    rg_test_write(sub, "t.lua", time_protocol);
}

static char *simulate(const char *dir, const char *name, const char *events, const char *until,
                      const char *format)
{
    char ev[400], cl[400];
    snprintf(ev, sizeof ev, "%s/%s.jsonl", dir, name);
    FILE *f = fopen(ev, "w");
    fputs(events, f);
    fclose(f);
    snprintf(cl, sizeof cl, "%s=%s/%s", name, dir, name);
    const char *args[] = {"simulate", "--events", ev, "--until", until, "--clinic", cl,
                          "--format", format, NULL};
    char *out, *err;
    int rc = rg_test_run(args, NULL, &out, &err);
    cr_assert_eq(rc, 0, "exit %d:\n%s%s", rc, out, err);
    free(err);
    return out;
}

static const char ny_settings[] =
    "return {\n"
    "  timezone = 'America/New_York',\n"
    "  hours = { mon = {'08:00', '18:00'}, tue = {'08:00', '18:00'}, wed = {'08:00', '18:00'},\n"
    "            thu = {'08:00', '18:00'}, fri = {'08:00', '13:00'}, sat = false },\n"
    "  closures = { '2026-03-09' },\n"
    "}\n";

static const char berlin_settings[] =
    "return { timezone = 'Europe/Berlin' }\n";

#define EV(c, id, type, at, data)                                                            \
    "{\"id\":\"" id "\",\"clinic\":\"" c "\",\"patient\":\"p1\",\"type\":\"" type           \
    "\",\"at\":\"" at "\"" data "}\n"

/* The daily rule opens at 09:00 local on both sides of the change: 14:00Z
 * before Mar 8, 13:00Z after (US); 08:00Z before Mar 29, 07:00Z after (EU). */
Test(clinic_time, daily_rule_keeps_local_time_across_spring_changes)
{
    char dir[256];
    rg_test_tmpdir(dir);
    make_clinic(dir, "ny", ny_settings);
    char *out = simulate(dir, "ny", EV("ny", "e1", "enrolled", "2026-03-04T09:00:00-05:00", ""),
                         "2026-03-20T00:00:00Z", "jsonl");
    static const char *const want[] = {
        "\"at\":\"2026-03-06T14:00:00Z\",\"state\":\"open\"",
        "\"at\":\"2026-03-07T14:00:00Z\",\"state\":\"open\"",
        "\"at\":\"2026-03-08T13:00:00Z\",\"state\":\"open\"",
        "\"at\":\"2026-03-09T13:00:00Z\",\"state\":\"open\"",
        "\"at_local\":\"2026-03-07T09:00:00-05:00\"",
        "\"at_local\":\"2026-03-08T09:00:00-04:00\"",
        "\"message\":\"call 8 Mar 2026 09:00\"",
    };
    for (size_t i = 0; i < RG_COUNTOF(want); i++)
        cr_assert(strstr(out, want[i]), "missing %s in:\n%s", want[i], out);
    free(out);

    make_clinic(dir, "be", berlin_settings);
    out = simulate(dir, "be", EV("be", "e1", "enrolled", "2026-03-26T09:00:00+01:00", ""),
                   "2026-04-05T00:00:00Z", "jsonl");
    cr_assert(strstr(out, "\"at\":\"2026-03-28T08:00:00Z\",\"state\":\"open\""), "%s", out);
    cr_assert(strstr(out, "\"at\":\"2026-03-29T07:00:00Z\",\"state\":\"open\""), "%s", out);
    cr_assert(strstr(out, "\"at_local\":\"2026-03-30T09:00:00+02:00\""), "%s", out);
    free(out);
    rg_test_rmdir(dir);
}

Test(clinic_time, daily_rule_keeps_local_time_across_autumn_changes)
{
    char dir[256];
    rg_test_tmpdir(dir);
    make_clinic(dir, "ny", "return { timezone = 'America/New_York' }\n");
    char *out = simulate(dir, "ny", EV("ny", "e1", "enrolled", "2026-10-29T09:00:00-04:00", ""),
                         "2026-11-10T00:00:00Z", "jsonl");
    cr_assert(strstr(out, "\"at\":\"2026-10-31T13:00:00Z\",\"state\":\"open\""), "%s", out);
    cr_assert(strstr(out, "\"at\":\"2026-11-01T14:00:00Z\",\"state\":\"open\""), "%s", out);
    cr_assert(strstr(out, "\"at_local\":\"2026-11-01T09:00:00-05:00\""), "%s", out);
    free(out);
    make_clinic(dir, "be", berlin_settings);
    out = simulate(dir, "be", EV("be", "e1", "enrolled", "2026-10-22T09:00:00+02:00", ""),
                   "2026-11-01T00:00:00Z", "jsonl");
    cr_assert(strstr(out, "\"at\":\"2026-10-24T07:00:00Z\",\"state\":\"open\""), "%s", out);
    cr_assert(strstr(out, "\"at\":\"2026-10-25T08:00:00Z\",\"state\":\"open\""), "%s", out);
    free(out);
    rg_test_rmdir(dir);
}

/* A due time in the skipped hour is shifted forward by the gap; one in the
 * repeated hour is its first occurrence. */
Test(clinic_time, due_in_the_skipped_and_the_repeated_hour)
{
    char dir[256];
    rg_test_tmpdir(dir);
    make_clinic(dir, "ny", "return { timezone = 'America/New_York' }\n");
    char *out = simulate(dir, "ny",
                         EV("ny", "v1", "visit", "2026-03-07T10:00:00-05:00", ",\"data\":{\"clock\":\"02:30\"}")
                         EV("ny", "v2", "visit", "2026-10-31T10:00:00-04:00", ",\"data\":{\"clock\":\"01:30\"}"),
                         "2026-11-05T00:00:00Z", "jsonl");
    cr_assert(strstr(out, "\"due\":\"2026-03-08T07:30:00Z\""), "02:30 -> 03:30 EDT:\n%s", out);
    cr_assert(strstr(out, "\"message\":\"at 2026-03-08T03:30:00-04:00\""), "%s", out);
    cr_assert(strstr(out, "\"due\":\"2026-11-01T05:30:00Z\""), "01:30 EDT, the first:\n%s", out);
    cr_assert(strstr(out, "\"due_local\":\"2026-11-01T01:30:00-04:00\""), "%s", out);
    free(out);
    make_clinic(dir, "be", berlin_settings);
    out = simulate(dir, "be",
                   EV("be", "v1", "visit", "2026-03-28T10:00:00+01:00", ",\"data\":{\"clock\":\"02:30\"}")
                   EV("be", "v2", "visit", "2026-10-24T10:00:00+02:00", ",\"data\":{\"clock\":\"02:30\"}"),
                   "2026-10-30T00:00:00Z", "jsonl");
    cr_assert(strstr(out, "\"due\":\"2026-03-29T01:30:00Z\""), "02:30 -> 03:30 CEST:\n%s", out);
    cr_assert(strstr(out, "\"due\":\"2026-10-25T00:30:00Z\""), "02:30 CEST, the first:\n%s", out);
    free(out);
    rg_test_rmdir(dir);
}

/* Friday 14:00 local, after Friday's closing, before the closure Monday
 * (Mar 9) and the US change: the info alert's notification moves to Tuesday
 * 08:00 EDT; the critical one is not delayed; `at` and `due` stay exact. */
Test(clinic_time, closed_hours_and_closures_move_notify_at_but_not_critical)
{
    char dir[256];
    rg_test_tmpdir(dir);
    make_clinic(dir, "ny", ny_settings);
    const char *events = EV("ny", "f1", "flag", "2026-03-06T14:00:00-05:00", "")
                         EV("ny", "f2", "flag", "2026-03-10T10:00:00-04:00", "");
    char *out = simulate(dir, "ny", events, "2026-03-12T00:00:00Z", "jsonl");
    cr_assert(strstr(out, "\"at\":\"2026-03-06T19:00:00Z\",\"state\":\"open\",\"clinic\":\"ny\","
                          "\"patient\":\"p1\",\"protocol\":\"t\",\"version\":\"1\",\"rule\":\"t.flag\""),
              "%s", out);
    cr_assert(strstr(out, "\"message\":\"next open 2026-03-10T08:00:00-04:00; open now false; "
                          "2 business days 2026-03-11T08:00:00-04:00\",\"due\":\"2026-03-06T19:00:00Z\","
                          "\"at_local\":\"2026-03-06T14:00:00-05:00\","
                          "\"due_local\":\"2026-03-06T14:00:00-05:00\","
                          "\"notify_at\":\"2026-03-10T12:00:00Z\""), "%s", out);
    cr_assert(strstr(out, "\"rule\":\"t.flag-critical\",\"severity\":\"critical\",\"key\":\"3f202185f8600947297727cf66b9d915\","
                          "\"message\":\"critical\",\"due\":\"2026-03-06T19:00:00Z\",\"at_local\":"
                          "\"2026-03-06T14:00:00-05:00\",\"due_local\":\"2026-03-06T14:00:00-05:00\","
                          "\"notify_at\":\"2026-03-06T19:00:00Z\""),
              "%s", out);
    /* Tuesday 10:00 is open hours: no delay */
    cr_assert(strstr(out, "open now true; 2 business days 2026-03-12T08:00:00-04:00\",\"due\":\"2026-03-10T14:00:00Z\","
                          "\"at_local\":\"2026-03-10T10:00:00-04:00\","
                          "\"due_local\":\"2026-03-10T10:00:00-04:00\","
                          "\"notify_at\":\"2026-03-10T14:00:00Z\""), "%s", out);
    free(out);
    /* the text table: local times, and where the notification went */
    out = simulate(dir, "ny", events, "2026-03-12T00:00:00Z", "text");
    cr_assert(strstr(out, "2026-03-06 14:00 -05:00  open      ny          p1          t.flag "),
              "%s", out);
    cr_assert(strstr(out, "(notify 2026-03-10 08:00 -04:00)"), "%s", out);
    free(out);
    rg_test_rmdir(dir);
}

/* regimen diff shows the moved times in the clinic's zone. */
Test(clinic_time, diff_reads_in_local_time)
{
    char dir[256], ev[400], oldd[400], newd[400];
    rg_test_tmpdir(dir);
    make_clinic(dir, "old", ny_settings);
    make_clinic(dir, "new", ny_settings);
    char *later = strdup(time_protocol), *p = strstr(later, "R.calendar_days(e.at, n)");
    cr_assert_not_null(p);
    memcpy(p, "R.calendar_days(e.at, 2)", 24); /* every call on the second day */
    snprintf(newd, sizeof newd, "%s/new", dir);
    rg_test_write(newd, "t.lua", later);
    free(later);
    snprintf(oldd, sizeof oldd, "%s/old", dir);
    snprintf(ev, sizeof ev, "%s/ev.jsonl", dir);
    FILE *f = fopen(ev, "w");
    fputs(EV("ny", "e1", "enrolled", "2026-03-04T09:00:00-05:00", ""), f);
    fclose(f);
    const char *args[] = {"diff", "--events", ev, "--until", "2026-03-20T00:00:00Z", oldd, newd,
                          NULL};
    char *out, *err;
    rg_test_run(args, NULL, &out, &err);
    cr_assert(strstr(out, "2026-03-05 09:00 -05:00 -> 2026-03-06 09:00 -05:00"), "%s%s", out, err);
    cr_assert(strstr(out, "2026-03-08 09:00 -04:00 -> 2026-03-06 09:00 -05:00"), "%s%s", out, err);
    free(out);
    free(err);
    rg_test_rmdir(dir);
}

/* clinic.lua's time settings are checked at load: file, line, key. */
Test(clinic_time, bad_settings_name_file_line_and_key)
{
    static const struct {
        const char *settings, *want;
    } cases[] = {
        {"return {\n  timezone = 'America/Nwe_York',\n}\n",
         "clinic.lua:2: timezone: unknown time zone 'America/Nwe_York'"},
        {"return {\n  timezone = 5,\n}\n", "clinic.lua:2: timezone must be an IANA zone name"},
        {"return {\n  hours = {\n    mon = {'08:00', '18:00'},\n    thur = {'08:00', '18:00'},\n  },\n}\n",
         "clinic.lua:4: hours: unknown day 'thur'"},
        {"return {\n  hours = {\n    mon = {'8:00', '18:00'},\n  },\n}\n",
         "clinic.lua:3: hours.mon must be {\"HH:MM\", \"HH:MM\"}"},
        {"return {\n  hours = {\n    tue = {'18:00', '08:00'},\n  },\n}\n",
         "clinic.lua:3: hours.tue: closing 08:00 is not after opening 18:00"},
        {"return {\n  closures = {\n    '2026-02-30',\n  },\n}\n",
         "clinic.lua:3: closures[1] must be a date \"YYYY-MM-DD\" that exists, not 2026-02-30"},
        {"return {\n  notify_at_once = { 'urgent' },\n}\n",
         "clinic.lua:2: notify_at_once[1] must be \"info\", \"warning\" or \"critical\""},
        {"return { time_zone = 'UTC' }\n", "unknown setting 'time_zone'"},
    };
    char dir[256];
    rg_test_tmpdir(dir);
    for (size_t i = 0; i < RG_COUNTOF(cases); i++) {
        make_clinic(dir, "c", cases[i].settings);
        char path[400];
        snprintf(path, sizeof path, "%s/c", dir);
        const char *args[] = {"check", path, NULL};
        char *out, *err;
        int rc = rg_test_run(args, NULL, &out, &err);
        cr_assert_neq(rc, 0, "case %zu loaded", i);
        cr_assert(strstr(err, cases[i].want) || strstr(out, cases[i].want),
                  "case %zu: want \"%s\" in:\n%s%s", i, cases[i].want, out, err);
        free(out);
        free(err);
    }
    rg_test_rmdir(dir);
}
