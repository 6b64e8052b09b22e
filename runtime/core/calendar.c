/*
 * calendar.c - opening hours and closure days over a zone (see calendar.h).
 *
 * Hours are wall-clock readings of the local day, so an opening at 08:00 is
 * 08:00 on both sides of a daylight-saving change; an opening that falls in
 * a skipped hour moves forward with it (rg_zone_to_utc). Depends on zone.c.
 */
#include "core/calendar.h"
#include "core/rg.h"

#include <string.h>

void rg_calendar_default(rg_calendar *c)
{
    memset(c, 0, sizeof *c);
    c->zone = rg_zone_utc();
    c->at_once = RG_CAL_CRITICAL;
}

unsigned rg_calendar_severity_bit(const char *s)
{
    return !strcmp(s, "info") ? RG_CAL_INFO : !strcmp(s, "warning") ? RG_CAL_WARNING
         : !strcmp(s, "critical") ? RG_CAL_CRITICAL : 0;
}

int rg_calendar_parse_clock(const char *s, int allow_end)
{
    if (!s || strlen(s) != 5 || s[2] != ':')
        return RG_EINVAL;
    for (int i = 0; i < 5; i++)
        if (i != 2 && (s[i] < '0' || s[i] > '9'))
            return RG_EINVAL;
    int h = (s[0] - '0') * 10 + s[1] - '0', m = (s[3] - '0') * 10 + s[4] - '0';
    if (m > 59 || h > 24 || (h == 24 && (m || !allow_end)))
        return RG_EINVAL;
    return h * 60 + m;
}

static int64_t rg__floordiv(int64_t a, int64_t b) { return a / b - (a % b != 0 && (a < 0) != (b < 0)); }

int64_t rg_calendar_day(const rg_calendar *c, rg_time t)
{
    return rg__floordiv(t + (int64_t)rg_zone_offset(c->zone, t) * 1000, RG_MS_DAY);
}

int64_t rg_calendar_clock(const rg_calendar *c, rg_time t)
{
    int64_t local = t + (int64_t)rg_zone_offset(c->zone, t) * 1000;
    return local - rg__floordiv(local, RG_MS_DAY) * RG_MS_DAY;
}

rg_time rg_calendar_at(const rg_calendar *c, int64_t day, int64_t ms)
{
    return rg_zone_to_utc(c->zone, day * RG_MS_DAY + ms);
}

/* Monday = 0; 1970-01-01 was a Thursday. */
static int rg__weekday(int64_t day) { return (int)(((day + 3) % 7 + 7) % 7); }

static int rg__closed_day(const rg_calendar *c, int64_t day)
{
    int lo = 0, hi = c->nclosed - 1;
    while (lo <= hi) {
        int mid = (lo + hi) / 2;
        if (c->closed[mid] == day)
            return 1;
        if (c->closed[mid] < day)
            lo = mid + 1;
        else
            hi = mid - 1;
    }
    return 0;
}

int rg_calendar_day_open(const rg_calendar *c, int64_t day)
{
    if (rg__closed_day(c, day))
        return 0;
    return !c->has_hours || c->open[rg__weekday(day)] >= 0;
}

/* Opening and closing instants of an open day. */
static void rg__span(const rg_calendar *c, int64_t day, rg_time *from, rg_time *to)
{
    int wd = rg__weekday(day);
    int o = c->has_hours ? c->open[wd] : 0, k = c->has_hours ? c->close[wd] : 24 * 60;
    *from = rg_calendar_at(c, day, o * RG_MS_MINUTE);
    *to = k == 24 * 60 ? rg_calendar_at(c, day + 1, 0) : rg_calendar_at(c, day, k * RG_MS_MINUTE);
}

int rg_calendar_is_open(const rg_calendar *c, rg_time t)
{
    return rg_calendar_next_open(c, t) == t;
}

rg_time rg_calendar_next_open(const rg_calendar *c, rg_time t)
{
    if (!c->has_hours && !c->nclosed)
        return t;
    int64_t day = rg_calendar_day(c, t);
    for (int i = 0; i < 550; i++, day++) {
        if (!rg_calendar_day_open(c, day))
            continue;
        rg_time from, to;
        rg__span(c, day, &from, &to);
        if (t < to)
            return t >= from ? t : from;
    }
    return RG_TIME_NONE;
}

rg_time rg_calendar_notify_at(const rg_calendar *c, const char *severity, rg_time t)
{
    if (c->at_once & rg_calendar_severity_bit(severity))
        return t;
    rg_time n = rg_calendar_next_open(c, t);
    return n == RG_TIME_NONE ? t : n;
}

rg_time rg_calendar_add_open(const rg_calendar *c, rg_time t, rg_time ms)
{
    if (ms <= 0)
        return t;
    int64_t day = rg_calendar_day(c, t);
    for (int i = 0, idle = 0; i < RG_CAL_WALK_DAYS && idle < 550; i++, day++) {
        if (!rg_calendar_day_open(c, day)) {
            idle++;
            continue;
        }
        idle = 0;
        rg_time from, to;
        rg__span(c, day, &from, &to);
        if (t >= to)
            continue;
        if (t > from)
            from = t;
        if (ms < to - from)
            return from + ms;
        ms -= to - from; /* the rest counts from the next opening */
    }
    return RG_TIME_NONE;
}
