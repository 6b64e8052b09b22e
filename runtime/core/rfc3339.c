/*
 * rfc3339.c - strict RFC 3339 timestamps to and from rg_time.
 *
 * Events must carry a real instant with an explicit offset, so the parser
 * refuses what RFC 3339's grammar refuses (missing offset, missing seconds,
 * a space instead of 'T') and dates that do not exist (2026-02-30). Leap
 * seconds (":60") are refused too: the calendar arithmetic below has none.
 * So are instants outside years 0000-9999 in UTC (0000-01-01T00:30:00+01:00),
 * which rg_time_format could not print as RFC 3339.
 * Day counting uses the proleptic Gregorian calendar (civil-from-days).
 */
#include "core/rg.h"

#include <stdio.h>
#include <string.h>

static int rg__digits(const char *s, size_t len, size_t pos, int n, int *out)
{
    int v = 0;
    if (pos + (size_t)n > len)
        return RG_EINVAL;
    for (int i = 0; i < n; i++) {
        char c = s[pos + (size_t)i];
        if (c < '0' || c > '9')
            return RG_EINVAL;
        v = v * 10 + (c - '0');
    }
    *out = v;
    return 0;
}

static int rg__leap(int y) { return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0; }

static int rg__mdays(int y, int m)
{
    static const int md[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    return m == 2 && rg__leap(y) ? 29 : md[m - 1];
}

/* Days since 1970-01-01 of a proleptic Gregorian date. */
static int64_t rg__days_from_civil(int64_t y, int m, int d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

static void rg__civil_from_days(int64_t z, int *y, int *m, int *d)
{
    z += 719468;
    int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    int64_t doe = z - era * 146097;
    int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    int64_t mp = (5 * doy + 2) / 153;
    *d = (int)(doy - (153 * mp + 2) / 5 + 1);
    *m = (int)(mp < 10 ? mp + 3 : mp - 9);
    *y = (int)(yoe + era * 400 + (*m <= 2));
}

int64_t rg_days_from_civil(int64_t y, int m, int d) { return rg__days_from_civil(y, m, d); }
void rg_civil_from_days(int64_t z, int *y, int *m, int *d) { rg__civil_from_days(z, y, m, d); }

#define BAD(...) rg_fail(err, errlen, RG_EINVAL, __VA_ARGS__)
#define RG__MIN_T INT64_C(-62167219200000) /* 0000-01-01T00:00:00Z */
#define RG__MAX_T INT64_C(253402300799999) /* 9999-12-31T23:59:59.999Z */

int rg_time_parse(const char *s, size_t len, rg_time *out, int *offset_min,
                  char *err, size_t errlen)
{
    int Y, M, D, h, mi, sec, oh = 0, om = 0, sign = 0;
    size_t p = 0;
    if (rg__digits(s, len, 0, 4, &Y) || len < 5 || s[4] != '-' ||
        rg__digits(s, len, 5, 2, &M) || len < 8 || s[7] != '-' ||
        rg__digits(s, len, 8, 2, &D))
        return BAD("expected an RFC 3339 date-time such as 2026-03-02T14:05:00-05:00");
    if (M < 1 || M > 12)
        return BAD("month %02d does not exist", M);
    if (D < 1 || D > rg__mdays(Y, M))
        return BAD("%04d-%02d-%02d is not a date (that month has %d days)", Y, M, D,
                   rg__mdays(Y, M));
    if (len < 11 || (s[10] != 'T' && s[10] != 't'))
        return BAD("expected 'T' and a time of day after the date");
    if (rg__digits(s, len, 11, 2, &h) || len < 14 || s[13] != ':' ||
        rg__digits(s, len, 14, 2, &mi) || len < 17 || s[16] != ':' ||
        rg__digits(s, len, 17, 2, &sec))
        return BAD("expected a time of day as HH:MM:SS");
    if (h > 23 || mi > 59)
        return BAD("time of day %02d:%02d does not exist", h, mi);
    if (sec > 59)
        return BAD("seconds must be 00-59 (leap seconds are not accepted)");
    p = 19;
    int ms = 0;
    if (p < len && s[p] == '.') {
        int nd = 0;
        p++;
        while (p < len && s[p] >= '0' && s[p] <= '9') {
            if (nd < 3)
                ms = ms * 10 + (s[p] - '0');
            nd++;
            p++;
        }
        if (nd == 0 || nd > 9)
            return BAD("fraction of a second must have 1 to 9 digits");
        for (int i = nd; i < 3; i++)
            ms *= 10;
    }
    if (p >= len)
        return BAD("missing UTC offset: end the time with 'Z' or an offset such as -05:00");
    if (s[p] == 'Z' || s[p] == 'z') {
        p++;
    } else if (s[p] == '+' || s[p] == '-') {
        sign = s[p] == '-' ? -1 : 1;
        if (rg__digits(s, len, p + 1, 2, &oh) || p + 3 >= len || s[p + 3] != ':' ||
            rg__digits(s, len, p + 4, 2, &om))
            return BAD("UTC offset must look like +HH:MM or -HH:MM");
        if (oh > 23 || om > 59)
            return BAD("UTC offset %c%02d:%02d does not exist", s[p], oh, om);
        p += 6;
    } else {
        return BAD("missing UTC offset: end the time with 'Z' or an offset such as -05:00");
    }
    if (p != len)
        return BAD("unexpected text after the UTC offset");
    int off = sign * (oh * 60 + om);
    int64_t days = rg__days_from_civil(Y, M, D);
    rg_time t = (((days * 24 + h) * 60 + mi - off) * 60 + sec) * 1000 + ms;
    /* The offset can carry a local time in years 0000-9999 outside them in
     * UTC, where rg_time_format could not print it as RFC 3339. */
    if (t < RG__MIN_T || t > RG__MAX_T)
        return BAD("UTC offset %c%02d:%02d puts the instant outside years 0000-9999 in UTC",
                   sign < 0 ? '-' : '+', oh, om);
    *out = t;
    if (offset_min)
        *offset_min = off;
    return RG_OK;
}

static void rg__split(rg_time t, int *y, int *m, int *d, int *h, int *mi, int *s, int *ms)
{
    int64_t days = t / RG_MS_DAY, rem = t % RG_MS_DAY;
    if (rem < 0) {
        rem += RG_MS_DAY;
        days--;
    }
    rg__civil_from_days(days, y, m, d);
    *h = (int)(rem / RG_MS_HOUR);
    *mi = (int)(rem / RG_MS_MINUTE % 60);
    *s = (int)(rem / RG_MS_SECOND % 60);
    *ms = (int)(rem % 1000);
}

/* v as n decimal digits at p (0 <= v < 10^n); the end. */
static char *rg__put(char *p, int v, int n)
{
    for (int i = n - 1; i >= 0; i--, v /= 10)
        p[i] = (char)('0' + v % 10);
    return p + n;
}

char *rg_time_format(rg_time t, char buf[RG_TIME_BUFSZ])
{
    int y, m, d, h, mi, s, ms;
    rg__split(t, &y, &m, &d, &h, &mi, &s, &ms);
    if (y >= 0 && y <= 9999) { /* the digits as the formats below print them, without
                                * snprintf's cost (simulate prints a time a line) */
        char *p = rg__put(buf, y, 4);
        *p++ = '-';
        p = rg__put(p, m, 2);
        *p++ = '-';
        p = rg__put(p, d, 2);
        *p++ = 'T';
        p = rg__put(p, h, 2);
        *p++ = ':';
        p = rg__put(p, mi, 2);
        *p++ = ':';
        p = rg__put(p, s, 2);
        if (ms) {
            *p++ = '.';
            p = rg__put(p, ms, 3);
        }
        *p++ = 'Z';
        *p = '\0';
        return buf;
    }
    if (ms)
        snprintf(buf, RG_TIME_BUFSZ, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", y, m, d, h, mi, s, ms);
    else
        snprintf(buf, RG_TIME_BUFSZ, "%04d-%02d-%02dT%02d:%02d:%02dZ", y, m, d, h, mi, s);
    return buf;
}

char *rg_time_date(rg_time t, char buf[RG_TIME_BUFSZ])
{
    int y, m, d, h, mi, s, ms;
    rg__split(t, &y, &m, &d, &h, &mi, &s, &ms);
    snprintf(buf, RG_TIME_BUFSZ, "%04d-%02d-%02d", y, m, d);
    return buf;
}

char *rg_time_day(rg_time t, char buf[RG_TIME_BUFSZ])
{
    static const char *const mon[12] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                        "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
    int y, m, d, h, mi, s, ms;
    rg__split(t, &y, &m, &d, &h, &mi, &s, &ms);
    if (y < 0 || y > 9999) {
        snprintf(buf, RG_TIME_BUFSZ, "%d %s %04d", d, mon[m - 1], y);
        return buf;
    }
    /* what "%d %s %04d" makes, without printf (a message's dates: 1.1% of a sweep) */
    char *o = rg__put(buf, d, d >= 10 ? 2 : 1);
    *o++ = ' ';
    memcpy(o, mon[m - 1], 3);
    o += 3;
    *o++ = ' ';
    *rg__put(o, y, 4) = '\0';
    return buf;
}
