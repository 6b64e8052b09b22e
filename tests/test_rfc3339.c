/*
 * test_rfc3339.c - Criterion tests for runtime/core/rfc3339.c: strict RFC 3339
 * parsing into rg_time (UTC ms) + offset, and the UTC formatters.
 *
 * Expected instants were computed independently (Python's datetime and
 * calendar.timegm), and the formatters are cross-checked against libc's
 * gmtime_r over a wide range of instants, including ones before 1970.
 */
#include "core/rg.h"

#include <criterion/criterion.h>

#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

/* ---- helpers ------------------------------------------------------------ */

/* Parses s (whole string) and asserts success; returns the instant. */
static rg_time parse_ok(const char *s, int *offset_min)
{
    rg_time t = 12345;
    int off = 9999;
    char err[256] = "";
    int rc = rg_time_parse(s, strlen(s), &t, &off, err, sizeof err);
    cr_assert_eq(rc, RG_OK, "rg_time_parse(\"%s\") failed: rc=%d err=%s", s, rc, err);
    if (offset_min)
        *offset_min = off;
    return t;
}

/* Asserts that s is refused with RG_EINVAL and an error text holding phrase. */
static void parse_bad(const char *s, size_t len, const char *phrase)
{
    rg_time t = 777;
    int off = 555;
    char err[256] = "";
    int rc = rg_time_parse(s, len, &t, &off, err, sizeof err);
    cr_assert_eq(rc, RG_EINVAL, "rg_time_parse(\"%.*s\") returned %d, expected RG_EINVAL",
                 (int)len, s, rc);
    cr_assert(err[0] != '\0', "no error text for \"%.*s\"", (int)len, s);
    cr_assert_not_null(strstr(err, phrase), "error for \"%.*s\" is \"%s\"; expected it to mention \"%s\"",
                       (int)len, s, err, phrase);
}

static void parse_bad_s(const char *s, const char *phrase) { parse_bad(s, strlen(s), phrase); }

/* ---- valid forms -------------------------------------------------------- */

Test(rfc3339, design_example_with_negative_offset)
{
    int off = 0;
    rg_time t = parse_ok("2026-03-02T14:05:00-05:00", &off);
    cr_assert_eq(t, INT64_C(1772478300000));
    cr_assert_eq(off, -300);
}

Test(rfc3339, utc_designators_Z_and_z_and_zero_offsets_agree)
{
    int off = 123;
    const rg_time want = INT64_C(1773065100000); /* 2026-03-09T14:05:00Z */
    cr_assert_eq(parse_ok("2026-03-09T14:05:00Z", &off), want);
    cr_assert_eq(off, 0);
    off = 123;
    cr_assert_eq(parse_ok("2026-03-09T14:05:00z", &off), want);
    cr_assert_eq(off, 0);
    off = 123;
    cr_assert_eq(parse_ok("2026-03-09T14:05:00+00:00", &off), want);
    cr_assert_eq(off, 0);
    off = 123;
    cr_assert_eq(parse_ok("2026-03-09T14:05:00-00:00", &off), want);
    cr_assert_eq(off, 0);
}

Test(rfc3339, lower_case_t_separator)
{
    cr_assert_eq(parse_ok("2026-03-09t14:05:00Z", NULL), INT64_C(1773065100000));
    cr_assert_eq(parse_ok("2026-03-02t14:05:00-05:00", NULL), INT64_C(1772478300000));
}

Test(rfc3339, positive_offset_is_subtracted)
{
    int off = 0;
    /* 16:05+02:00 is 14:05Z */
    cr_assert_eq(parse_ok("2026-03-09T16:05:00+02:00", &off), INT64_C(1773065100000));
    cr_assert_eq(off, 120);
    /* half-hour and odd-minute offsets */
    cr_assert_eq(parse_ok("2026-03-09T19:35:00+05:30", &off), INT64_C(1773065100000));
    cr_assert_eq(off, 330);
    cr_assert_eq(parse_ok("2026-03-09T09:50:00-04:15", &off), INT64_C(1773065100000));
    cr_assert_eq(off, -255);
    cr_assert_eq(parse_ok("2026-03-10T14:04:00+23:59", &off), INT64_C(1773065100000));
    cr_assert_eq(off, 23 * 60 + 59);
    cr_assert_eq(parse_ok("2026-03-08T14:06:00-23:59", &off), INT64_C(1773065100000));
    cr_assert_eq(off, -(23 * 60 + 59));
}

Test(rfc3339, fractions_of_1_to_9_digits_truncate_to_ms)
{
    const rg_time base = INT64_C(1773065100000);
    static const struct {
        const char *s;
        int ms;
    } cases[] = {
        {"2026-03-09T14:05:00.1Z", 100},
        {"2026-03-09T14:05:00.12Z", 120},
        {"2026-03-09T14:05:00.123Z", 123},
        {"2026-03-09T14:05:00.1239Z", 123}, /* truncated, not rounded */
        {"2026-03-09T14:05:00.99999Z", 999},
        {"2026-03-09T14:05:00.000001Z", 0},
        {"2026-03-09T14:05:00.0000009Z", 0},
        {"2026-03-09T14:05:00.05Z", 50},
        {"2026-03-09T14:05:00.007Z", 7},
        {"2026-03-09T14:05:00.999999999Z", 999},
        {"2026-03-09T14:05:00.000000001Z", 0},
        {"2026-03-09T14:05:00.456789123Z", 456},
        {"2026-03-09T14:05:00.0Z", 0},
    };
    for (size_t i = 0; i < RG_COUNTOF(cases); i++)
        cr_assert_eq(parse_ok(cases[i].s, NULL), base + cases[i].ms, "%s", cases[i].s);
    /* fraction followed by a numeric offset */
    int off = 0;
    cr_assert_eq(parse_ok("2026-03-02T14:05:00.250-05:00", &off), INT64_C(1772478300250));
    cr_assert_eq(off, -300);
}

Test(rfc3339, leap_days)
{
    cr_assert_eq(parse_ok("2024-02-29T00:00:00Z", NULL), INT64_C(1709164800000));
    cr_assert_eq(parse_ok("2000-02-29T12:00:00Z", NULL), INT64_C(951825600000));
    /* the day after a leap day is March 1st, 24 h later */
    cr_assert_eq(parse_ok("2024-03-01T00:00:00Z", NULL) - parse_ok("2024-02-29T00:00:00Z", NULL),
                 RG_MS_DAY);
    /* and a non-leap February runs straight into March */
    cr_assert_eq(parse_ok("2026-03-01T00:00:00Z", NULL) - parse_ok("2026-02-28T00:00:00Z", NULL),
                 RG_MS_DAY);
}

Test(rfc3339, year_boundaries_and_extremes)
{
    cr_assert_eq(parse_ok("1970-01-01T00:00:00Z", NULL), 0);
    cr_assert_eq(parse_ok("1970-01-01T00:00:00.001Z", NULL), 1);
    cr_assert_eq(parse_ok("1969-12-31T23:59:59Z", NULL), -1000);
    cr_assert_eq(parse_ok("1969-12-31T23:59:59.999Z", NULL), -1);
    cr_assert_eq(parse_ok("1969-12-31T23:59:59.5Z", NULL), -500);
    cr_assert_eq(parse_ok("1900-01-01T00:00:00Z", NULL), INT64_C(-2208988800000));
    cr_assert_eq(parse_ok("1600-03-01T00:00:00Z", NULL), INT64_C(-11670912000000));
    cr_assert_eq(parse_ok("0001-01-01T00:00:00Z", NULL), INT64_C(-62135596800000));
    /* proleptic Gregorian year 0 is a leap year: 366 days before 0001-01-01 */
    cr_assert_eq(parse_ok("0000-01-01T00:00:00Z", NULL),
                 INT64_C(-62135596800000) - 366 * RG_MS_DAY);
    cr_assert_eq(parse_ok("9999-12-31T23:59:59Z", NULL), INT64_C(253402300799000));
    cr_assert_eq(parse_ok("9999-12-31T23:59:59.999Z", NULL), INT64_C(253402300799999));
    cr_assert_eq(parse_ok("2026-01-01T00:00:00Z", NULL) - parse_ok("2025-12-31T23:59:59Z", NULL),
                 RG_MS_SECOND);
}

Test(rfc3339, offsets_convert_across_midnight_month_and_year)
{
    int off = 0;
    /* across the year: 2025-12-31T23:30-01:00 == 2026-01-01T00:30Z */
    cr_assert_eq(parse_ok("2025-12-31T23:30:00-01:00", &off), INT64_C(1767227400000));
    cr_assert_eq(off, -60);
    cr_assert_eq(parse_ok("2026-01-01T00:30:00Z", NULL), INT64_C(1767227400000));
    /* backwards across the year: 2026-01-01T01:30+02:00 == 2025-12-31T23:30Z */
    cr_assert_eq(parse_ok("2026-01-01T01:30:00+02:00", &off), INT64_C(1767223800000));
    cr_assert_eq(off, 120);
    /* across the month end: 2026-03-31T22:00-03:00 == 2026-04-01T01:00Z */
    cr_assert_eq(parse_ok("2026-03-31T22:00:00-03:00", &off), INT64_C(1775005200000));
    cr_assert_eq(off, -180);
    /* backwards across Feb/Mar (non-leap): 2026-03-01T00:15+01:00 == 2026-02-28T23:15Z */
    cr_assert_eq(parse_ok("2026-03-01T00:15:00+01:00", &off), INT64_C(1772320500000));
    cr_assert_eq(parse_ok("2026-02-28T23:15:00Z", NULL), INT64_C(1772320500000));
    /* forwards onto a leap day */
    cr_assert_eq(parse_ok("2024-02-28T23:00:00-02:00", NULL),
                 parse_ok("2024-02-29T01:00:00Z", NULL));
}

Test(rfc3339, length_is_respected_not_nul_terminator)
{
    /* Only the first len bytes are the timestamp. */
    const char *s = "2026-03-09T14:05:00Zjunk";
    rg_time t = 0;
    int off = 7;
    char err[128] = "";
    cr_assert_eq(rg_time_parse(s, 20, &t, &off, err, sizeof err), RG_OK, "%s", err);
    cr_assert_eq(t, INT64_C(1773065100000));
    cr_assert_eq(off, 0);
    /* cut inside the offset: refused */
    parse_bad("2026-03-02T14:05:00-05:00", 24, "offset");
    /* cut before the offset */
    parse_bad("2026-03-02T14:05:00-05:00", 19, "missing UTC offset");
}

Test(rfc3339, offset_out_param_may_be_null_and_err_may_be_null)
{
    rg_time t = 0;
    cr_assert_eq(rg_time_parse("2026-03-02T14:05:00-05:00", 25, &t, NULL, NULL, 0), RG_OK);
    cr_assert_eq(t, INT64_C(1772478300000));
    cr_assert_eq(rg_time_parse("2026-02-30T14:05:00Z", 20, &t, NULL, NULL, 0), RG_EINVAL);
}

/* ---- invalid forms ------------------------------------------------------ */

Test(rfc3339, dates_that_do_not_exist)
{
    parse_bad_s("2026-02-30T10:00:00Z", "not a date");
    parse_bad_s("2026-02-30T10:00:00Z", "28 days");
    parse_bad_s("2025-02-29T10:00:00Z", "not a date");
    parse_bad_s("1900-02-29T10:00:00Z", "not a date"); /* century, not leap */
    parse_bad_s("2100-02-29T10:00:00Z", "not a date");
    parse_bad_s("2026-04-31T10:00:00Z", "30 days");
    parse_bad_s("2026-01-32T10:00:00Z", "not a date");
    parse_bad_s("2026-01-00T10:00:00Z", "not a date");
    parse_bad_s("2026-13-01T10:00:00Z", "month 13");
    parse_bad_s("2026-00-10T10:00:00Z", "month 00");
}

Test(rfc3339, times_that_do_not_exist)
{
    parse_bad_s("2026-03-02T24:00:00Z", "does not exist");
    parse_bad_s("2026-03-02T24:00:00Z", "24:00");
    parse_bad_s("2026-03-02T23:60:00Z", "23:60");
    parse_bad_s("2026-03-02T23:59:60Z", "leap second");
    parse_bad_s("2026-12-31T23:59:60Z", "00-59");
    parse_bad_s("2026-03-02T14:05:00+24:00", "does not exist");
    parse_bad_s("2026-03-02T14:05:00-05:60", "does not exist");
}

/* Fuzz regressions (tests/fuzz/regressions/rfc3339/): a local time in years
 * 0000-9999 whose offset puts the instant outside them in UTC, which
 * rg_time_format would print as "-001-12-31T23:59:00Z" or "10000-...". */
Test(rfc3339, offset_may_not_leave_years_0000_to_9999)
{
    parse_bad_s("0000-01-01T00:00:00+00:01", "outside years 0000-9999");
    parse_bad_s("0000-01-01T00:00:00+00:01", "+00:01");
    parse_bad_s("0000-01-01T05:59:59.999+06:00", "outside years 0000-9999");
    parse_bad_s("9999-12-31T23:59:59-00:01", "outside years 0000-9999");
    parse_bad_s("9999-12-31T23:59:59-00:01", "-00:01");
    parse_bad_s("9999-12-31T18:00:00-06:00", "outside years 0000-9999");
    /* the edges themselves, reached through an offset, are still instants */
    cr_assert_eq(parse_ok("0000-01-01T06:00:00+06:00", NULL), INT64_C(-62167219200000));
    cr_assert_eq(parse_ok("9999-12-31T17:59:59.999-06:00", NULL), INT64_C(253402300799999));
    char buf[RG_TIME_BUFSZ];
    cr_assert_str_eq(rg_time_format(parse_ok("0000-01-01T00:01:00+00:01", NULL), buf),
                     "0000-01-01T00:00:00Z");
    cr_assert_str_eq(rg_time_format(parse_ok("9999-12-31T23:58:59-00:01", NULL), buf),
                     "9999-12-31T23:59:59Z");
}

Test(rfc3339, missing_or_malformed_offset)
{
    parse_bad_s("2026-03-02T14:05:00", "missing UTC offset");
    parse_bad_s("2026-03-02T14:05:00.123", "missing UTC offset");
    parse_bad_s("2026-03-02T14:05:00+0500", "+HH:MM");
    parse_bad_s("2026-03-02T14:05:00+05", "+HH:MM");
    parse_bad_s("2026-03-02T14:05:00-5:00", "+HH:MM");
    parse_bad_s("2026-03-02T14:05:00+05:0", "+HH:MM");
    parse_bad_s("2026-03-02T14:05:00+", "+HH:MM");
    parse_bad_s("2026-03-02T14:05:00 -05:00", "missing UTC offset");
    parse_bad_s("2026-03-02T14:05:00UTC", "missing UTC offset");
}

Test(rfc3339, separator_must_be_T)
{
    parse_bad_s("2026-03-02 14:05:00Z", "'T'");
    parse_bad_s("2026-03-02_14:05:00Z", "'T'");
    parse_bad_s("2026-03-02", "'T'"); /* lone date */
    parse_bad_s("2026-03-02T", "HH:MM:SS");
}

Test(rfc3339, trailing_garbage)
{
    parse_bad_s("2026-03-02T14:05:00Zjunk", "unexpected text");
    parse_bad_s("2026-03-02T14:05:00-05:00 ", "unexpected text");
    parse_bad_s("2026-03-02T14:05:00ZZ", "unexpected text");
    parse_bad_s("2026-03-02T14:05:00+05:00:00", "unexpected text");
}

Test(rfc3339, empty_and_truncated)
{
    parse_bad_s("", "RFC 3339");
    parse_bad("2026-03-02T14:05:00Z", 0, "RFC 3339");
    parse_bad_s("2026", "RFC 3339");
    parse_bad_s("2026-03", "RFC 3339");
    parse_bad_s("2026-03-0", "RFC 3339");
    parse_bad_s("2026-03-02T14:05", "HH:MM:SS");
    parse_bad_s("2026-03-02T14:05:0Z", "HH:MM:SS");
}

Test(rfc3339, fraction_digit_count)
{
    parse_bad_s("2026-03-02T14:05:00.1234567890Z", "1 to 9 digits");
    parse_bad_s("2026-03-02T14:05:00.Z", "1 to 9 digits");
    parse_bad_s("2026-03-02T14:05:00.-05:00", "1 to 9 digits");
}

Test(rfc3339, non_digits)
{
    parse_bad_s("2O26-03-02T14:05:00Z", "RFC 3339"); /* letter O */
    parse_bad_s("2026-0a-02T14:05:00Z", "RFC 3339");
    parse_bad_s("2026/03/02T14:05:00Z", "RFC 3339");
    parse_bad_s("+2026-03-02T14:05:00Z", "RFC 3339");
    parse_bad_s(" 2026-03-02T14:05:00Z", "RFC 3339");
    parse_bad_s("2026-3-02T14:05:00Z", "RFC 3339");
    parse_bad_s("2026-03-02T1x:05:00Z", "HH:MM:SS");
    parse_bad_s("2026-03-02T14-05-00Z", "HH:MM:SS");
    parse_bad_s("2026-03-02T14:05:00.12a4Z", "missing UTC offset");
    parse_bad_s("2026-03-02T14:05:00+0a:00", "+HH:MM");
    parse_bad_s("2026-03-02T14:05:00+05:a0", "+HH:MM");
}

/* ---- formatting --------------------------------------------------------- */

Test(rfc3339, format_known_values)
{
    char buf[RG_TIME_BUFSZ];
    cr_assert_str_eq(rg_time_format(0, buf), "1970-01-01T00:00:00Z");
    cr_assert_str_eq(rg_time_format(INT64_C(1773065100000), buf), "2026-03-09T14:05:00Z");
    cr_assert_str_eq(rg_time_format(INT64_C(1773065100123), buf), "2026-03-09T14:05:00.123Z");
    cr_assert_str_eq(rg_time_format(INT64_C(1773065100100), buf), "2026-03-09T14:05:00.100Z");
    cr_assert_str_eq(rg_time_format(INT64_C(1773065100007), buf), "2026-03-09T14:05:00.007Z");
    cr_assert_str_eq(rg_time_format(INT64_C(1772478300000), buf), "2026-03-02T19:05:00Z");
    /* returns its buffer */
    cr_assert_eq(rg_time_format(0, buf), buf);
}

Test(rfc3339, format_before_1970)
{
    char buf[RG_TIME_BUFSZ];
    cr_assert_str_eq(rg_time_format(-1, buf), "1969-12-31T23:59:59.999Z");
    cr_assert_str_eq(rg_time_format(-1000, buf), "1969-12-31T23:59:59Z");
    cr_assert_str_eq(rg_time_format(-500, buf), "1969-12-31T23:59:59.500Z");
    cr_assert_str_eq(rg_time_format(-RG_MS_DAY, buf), "1969-12-31T00:00:00Z");
    cr_assert_str_eq(rg_time_format(-RG_MS_DAY - 1, buf), "1969-12-30T23:59:59.999Z");
    cr_assert_str_eq(rg_time_format(INT64_C(-2208988800000), buf), "1900-01-01T00:00:00Z");
    cr_assert_str_eq(rg_time_format(INT64_C(-11670912000000), buf), "1600-03-01T00:00:00Z");
    cr_assert_str_eq(rg_time_format(INT64_C(-11670912000001), buf), "1600-02-29T23:59:59.999Z");
    cr_assert_str_eq(rg_time_format(INT64_C(-62135596800000), buf), "0001-01-01T00:00:00Z");
    cr_assert_str_eq(rg_time_format(INT64_C(-62135596800000) - 366 * RG_MS_DAY, buf),
                     "0000-01-01T00:00:00Z");
}

Test(rfc3339, round_trip_of_utc_inputs)
{
    static const char *const inputs[] = {
        "1970-01-01T00:00:00Z",     "2026-03-09T14:05:00Z",     "2026-03-09T14:05:00.123Z",
        "2026-03-09T14:05:00.001Z", "2024-02-29T23:59:59.999Z", "2025-12-31T23:59:59Z",
        "2026-01-01T00:00:00Z",     "1969-12-31T23:59:59.999Z", "1969-07-20T20:17:40Z",
        "1900-02-28T12:00:00Z",     "0000-01-01T00:00:00Z",     "0000-02-29T06:07:08.009Z",
        "9999-12-31T23:59:59.999Z", "2000-02-29T00:00:00Z",     "2100-03-01T00:00:00Z",
    };
    char buf[RG_TIME_BUFSZ];
    for (size_t i = 0; i < RG_COUNTOF(inputs); i++) {
        rg_time t = parse_ok(inputs[i], NULL);
        cr_assert_str_eq(rg_time_format(t, buf), inputs[i]);
    }
    /* non-canonical UTC spellings come back canonical */
    cr_assert_str_eq(rg_time_format(parse_ok("2026-03-09t14:05:00.5z", NULL), buf),
                     "2026-03-09T14:05:00.500Z");
    cr_assert_str_eq(rg_time_format(parse_ok("2026-03-09T14:05:00.000Z", NULL), buf),
                     "2026-03-09T14:05:00Z");
    cr_assert_str_eq(rg_time_format(parse_ok("2026-03-09T14:05:00.123999Z", NULL), buf),
                     "2026-03-09T14:05:00.123Z");
    /* offsets come back as the same instant in UTC */
    cr_assert_str_eq(rg_time_format(parse_ok("2025-12-31T23:30:00-01:00", NULL), buf),
                     "2026-01-01T00:30:00Z");
}

/* Independent oracle: libc's gmtime_r. Checks format/date/day for many
 * instants spread over 1600..2400 (negative included) and parse(format(t)) == t. */
Test(rfc3339, format_matches_gmtime_and_parses_back)
{
    static const char *const mon[12] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                        "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
    const int64_t lo = INT64_C(-11670912000000), hi = INT64_C(13569465600000);
    const int64_t step = INT64_C(503316617); /* ~5.8 days, odd, not day-aligned */
    int n = 0;
    for (int64_t t = lo; t < hi; t += step, n++) {
        int64_t secs = t >= 0 ? t / 1000 : -((-t + 999) / 1000); /* floor */
        int ms = (int)(t - secs * 1000);
        time_t tt = (time_t)secs;
        struct tm tm;
        cr_assert_not_null(gmtime_r(&tt, &tm));
        char want[64], got[RG_TIME_BUFSZ];
        if (ms)
            snprintf(want, sizeof want, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
                     tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, ms);
        else
            snprintf(want, sizeof want, "%04d-%02d-%02dT%02d:%02d:%02dZ", tm.tm_year + 1900,
                     tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
        cr_assert_str_eq(rg_time_format(t, got), want, "t=%lld", (long long)t);
        snprintf(want, sizeof want, "%04d-%02d-%02d", tm.tm_year + 1900, tm.tm_mon + 1,
                 tm.tm_mday);
        cr_assert_str_eq(rg_time_date(t, got), want, "t=%lld", (long long)t);
        snprintf(want, sizeof want, "%d %s %04d", tm.tm_mday, mon[tm.tm_mon], tm.tm_year + 1900);
        cr_assert_str_eq(rg_time_day(t, got), want, "t=%lld", (long long)t);
        rg_time back = 0;
        char err[128] = "";
        rg_time_format(t, got);
        cr_assert_eq(rg_time_parse(got, strlen(got), &back, NULL, err, sizeof err), RG_OK,
                     "%s: %s", got, err);
        cr_assert_eq(back, t, "%s parsed back as %lld, not %lld", got, (long long)back,
                     (long long)t);
    }
    cr_assert_gt(n, 10000, "too few samples (%d)", n);
}

Test(rfc3339, date_and_day)
{
    char buf[RG_TIME_BUFSZ];
    rg_time t = INT64_C(1773065100000); /* 2026-03-09T14:05:00Z */
    cr_assert_str_eq(rg_time_date(t, buf), "2026-03-09");
    cr_assert_str_eq(rg_time_day(t, buf), "9 Mar 2026");
    cr_assert_eq(rg_time_day(t, buf), buf);
    cr_assert_eq(rg_time_date(t, buf), buf);
    cr_assert_str_eq(rg_time_day(0, buf), "1 Jan 1970");
    cr_assert_str_eq(rg_time_date(-1, buf), "1969-12-31");
    cr_assert_str_eq(rg_time_day(-1, buf), "31 Dec 1969");
    cr_assert_str_eq(rg_time_day(parse_ok("2024-02-29T23:59:59.999Z", NULL), buf), "29 Feb 2024");
    cr_assert_str_eq(rg_time_day(parse_ok("2026-12-25T00:00:00Z", NULL), buf), "25 Dec 2026");
    /* the UTC date, not the local one: 2026-03-02T21:00-05:00 is March 3rd in UTC */
    t = parse_ok("2026-03-02T21:00:00-05:00", NULL);
    cr_assert_str_eq(rg_time_date(t, buf), "2026-03-03");
    cr_assert_str_eq(rg_time_day(t, buf), "3 Mar 2026");
    /* last ms of a day and first of the next */
    t = parse_ok("2026-03-09T00:00:00Z", NULL);
    cr_assert_str_eq(rg_time_date(t - 1, buf), "2026-03-08");
    cr_assert_str_eq(rg_time_date(t, buf), "2026-03-09");
}
