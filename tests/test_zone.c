/*
 * test_zone.c - time zones from the system tz database (runtime/core/zone.c)
 * and clinic calendars over them (calendar.c), across both 2026 daylight-
 * saving changes of a US zone (Mar 8, Nov 1) and a European one (Mar 29,
 * Oct 25): offsets, the skipped and the repeated hour, opening hours and
 * closures, and that zones load safely from many threads at once.
 */
#include <criterion/criterion.h>

#include "core/calendar.h"

#include <pthread.h>
#include <stdio.h>
#include <string.h>

static rg_time T(const char *s)
{
    rg_time t;
    char err[128];
    cr_assert_eq(rg_time_parse(s, strlen(s), &t, NULL, err, sizeof err), RG_OK, "%s: %s", s, err);
    return t;
}

static const rg_zone *Z(const char *name)
{
    const rg_zone *z;
    char err[256];
    cr_assert_eq(rg_zone_get(&z, name, err, sizeof err), RG_OK, "%s", err);
    return z;
}

/* The local wall-clock reading "YYYY-MM-DDTHH:MM:SS" as if UTC. */
static int64_t L(const char *s)
{
    char full[40];
    snprintf(full, sizeof full, "%sZ", s);
    return T(full);
}

static const char *fmt(const rg_zone *z, rg_time t)
{
    static char buf[4][RG_TIME_BUFSZ];
    static int i;
    return rg_zone_format(z, t, buf[i++ % 4]);
}

Test(zone, offsets_change_at_the_exact_second)
{
    const rg_zone *ny = Z("America/New_York"), *be = Z("Europe/Berlin");
    cr_assert_eq(rg_zone_offset(ny, T("2026-03-08T06:59:59Z")), -5 * 3600);
    cr_assert_eq(rg_zone_offset(ny, T("2026-03-08T07:00:00Z")), -4 * 3600);
    cr_assert_eq(rg_zone_offset(ny, T("2026-11-01T05:59:59Z")), -4 * 3600);
    cr_assert_eq(rg_zone_offset(ny, T("2026-11-01T06:00:00Z")), -5 * 3600);
    cr_assert_eq(rg_zone_offset(be, T("2026-03-29T00:59:59Z")), 3600);
    cr_assert_eq(rg_zone_offset(be, T("2026-03-29T01:00:00Z")), 7200);
    cr_assert_eq(rg_zone_offset(be, T("2026-10-25T00:59:59Z")), 7200);
    cr_assert_eq(rg_zone_offset(be, T("2026-10-25T01:00:00Z")), 3600);
    /* far years come from the zone's rule (TZif footer), not a table's end */
    cr_assert_eq(rg_zone_offset(ny, T("2090-07-01T12:00:00Z")), -4 * 3600);
    cr_assert_str_eq(fmt(ny, T("2026-03-09T14:05:00Z")), "2026-03-09T10:05:00-04:00");
    cr_assert_str_eq(fmt(be, T("2026-01-09T14:05:00.250Z")), "2026-01-09T15:05:00.250+01:00");
    char d[RG_TIME_BUFSZ];
    cr_assert_str_eq(rg_zone_display(ny, T("2026-03-02T14:05:00Z"), d), "2026-03-02 09:05 -05:00");
    /* a clinic without a zone reads as it always did */
    cr_assert_str_eq(fmt(rg_zone_utc(), T("2026-03-02T14:05:00Z")), "2026-03-02T14:05:00Z");
    cr_assert_eq(Z("America/New_York"), ny, "zones are loaded once and shared");
}

/* Skipped hour: shifted forward by the gap. Repeated hour: the first
 * occurrence (the offset before the change). */
Test(zone, skipped_and_repeated_hours)
{
    const rg_zone *ny = Z("America/New_York"), *be = Z("Europe/Berlin");
    cr_assert_str_eq(fmt(ny, rg_zone_to_utc(ny, L("2026-03-08T02:30:00"))),
                     "2026-03-08T03:30:00-04:00");
    cr_assert_str_eq(fmt(ny, rg_zone_to_utc(ny, L("2026-03-08T03:00:00"))),
                     "2026-03-08T03:00:00-04:00");
    cr_assert_str_eq(fmt(ny, rg_zone_to_utc(ny, L("2026-11-01T01:30:00"))),
                     "2026-11-01T01:30:00-04:00");
    cr_assert_eq(rg_zone_to_utc(ny, L("2026-11-01T01:30:00")), T("2026-11-01T05:30:00Z"));
    cr_assert_str_eq(fmt(be, rg_zone_to_utc(be, L("2026-03-29T02:15:00"))),
                     "2026-03-29T03:15:00+02:00");
    cr_assert_eq(rg_zone_to_utc(be, L("2026-10-25T02:30:00")), T("2026-10-25T00:30:00Z"));
    cr_assert_eq(rg_zone_to_utc(be, L("2026-10-25T03:00:00")), T("2026-10-25T02:00:00Z"));
    /* every ordinary reading round-trips */
    for (rg_time t = T("2026-01-01T00:00:00Z"); t < T("2027-01-01T00:00:00Z"); t += 7 * RG_MS_HOUR) {
        rg_time back = rg_zone_to_utc(be, t + (int64_t)rg_zone_offset(be, t) * 1000);
        cr_assert(back == t || rg_zone_offset(be, t) == 3600, "%s", fmt(be, t));
    }
}

Test(zone, unknown_names_are_refused)
{
    const rg_zone *z;
    char err[256];
    cr_assert_eq(rg_zone_get(&z, "America/Nwe_York", err, sizeof err), RG_EINVAL);
    cr_assert(strstr(err, "unknown time zone 'America/Nwe_York'"), "%s", err);
    cr_assert_eq(rg_zone_get(&z, "../../etc/passwd", err, sizeof err), RG_EINVAL);
    cr_assert_eq(rg_zone_get(&z, "", err, sizeof err), RG_EINVAL);
    cr_assert_eq(rg_zone_get(&z, "zone.tab", err, sizeof err), RG_EINVAL, "not a TZif file");
}

static void *rg__load(void *arg)
{
    static const char *const names[] = {"Asia/Tokyo", "Australia/Sydney", "America/Chicago",
                                        "Europe/Paris"};
    const rg_zone *z;
    char err[256];
    for (int i = 0; i < 4; i++)
        if (rg_zone_get(&z, names[(i + (int)(intptr_t)arg) % 4], err, sizeof err))
            return (void *)1;
    return NULL;
}

/* A parallel sweep's workers load clinics (and zones) at once. */
Test(zone, loading_from_many_threads)
{
    pthread_t th[4];
    for (intptr_t i = 0; i < 4; i++)
        pthread_create(&th[i], NULL, rg__load, (void *)i);
    for (int i = 0; i < 4; i++) {
        void *r;
        pthread_join(th[i], &r);
        cr_assert_null(r);
    }
    cr_assert_eq(rg_zone_offset(Z("Asia/Tokyo"), T("2026-07-01T00:00:00Z")), 9 * 3600);
    cr_assert_eq(rg_zone_offset(Z("Australia/Sydney"), T("2026-01-01T00:00:00Z")), 11 * 3600);
}

/* Mon-Thu 08:00-18:00, Fri 08:00-13:00, closed at weekends and on
 * 2026-03-09 (a Monday). */
static rg_calendar clinic(const char *zone)
{
    rg_calendar c;
    rg_calendar_default(&c);
    c.zone = Z(zone);
    c.has_hours = 1;
    for (int d = 0; d < 7; d++) {
        c.open[d] = d < 5 ? 8 * 60 : -1;
        c.close[d] = d < 4 ? 18 * 60 : d == 4 ? 13 * 60 : -1;
    }
    c.closed[c.nclosed++] = (int32_t)(T("2026-03-09T00:00:00Z") / RG_MS_DAY);
    return c;
}

Test(calendar, hours_and_closures_move_notifications)
{
    rg_calendar c = clinic("America/New_York");
    /* Friday 14:00 local (after Friday's closing): Monday is a closure day,
     * so Tuesday 08:00, after the change to summer time */
    rg_time fri = T("2026-03-06T19:00:00Z");
    cr_assert_not(rg_calendar_is_open(&c, fri));
    cr_assert_str_eq(fmt(c.zone, rg_calendar_next_open(&c, fri)), "2026-03-10T08:00:00-04:00");
    cr_assert_eq(rg_calendar_notify_at(&c, "info", fri), T("2026-03-10T12:00:00Z"));
    cr_assert_eq(rg_calendar_notify_at(&c, "warning", fri), T("2026-03-10T12:00:00Z"));
    cr_assert_eq(rg_calendar_notify_at(&c, "critical", fri), fri, "critical is never delayed");
    /* while open: at once, whatever the severity */
    rg_time tue = T("2026-03-10T15:00:00Z");
    cr_assert(rg_calendar_is_open(&c, tue));
    cr_assert_eq(rg_calendar_notify_at(&c, "info", tue), tue);
    /* before opening on an open day: that morning */
    cr_assert_str_eq(fmt(c.zone, rg_calendar_next_open(&c, T("2026-03-11T05:00:00Z"))),
                     "2026-03-11T08:00:00-04:00");
    /* the closing minute is closed */
    cr_assert_not(rg_calendar_is_open(&c, T("2026-03-11T22:00:00Z")));
    cr_assert(rg_calendar_is_open(&c, T("2026-03-11T21:59:59Z")));
    /* a clinic that declares nothing: always open */
    rg_calendar always;
    rg_calendar_default(&always);
    cr_assert_eq(rg_calendar_notify_at(&always, "info", fri), fri);
    /* notify_at_once = {} : even critical waits */
    c.at_once = 0;
    cr_assert_eq(rg_calendar_notify_at(&c, "critical", fri), T("2026-03-10T12:00:00Z"));
}

Test(calendar, opening_hours_are_local_across_both_european_changes)
{
    rg_calendar c = clinic("Europe/Berlin");
    cr_assert_str_eq(fmt(c.zone, rg_calendar_next_open(&c, T("2026-03-27T20:00:00Z"))),
                     "2026-03-30T08:00:00+02:00");
    cr_assert_str_eq(fmt(c.zone, rg_calendar_next_open(&c, T("2026-10-23T20:00:00Z"))),
                     "2026-10-26T08:00:00+01:00");
    cr_assert_eq(rg_calendar_day(&c, T("2026-10-24T22:30:00Z")),
                 T("2026-10-25T00:00:00Z") / RG_MS_DAY, "00:30 local is the next local day");
    cr_assert_eq(rg_calendar_clock(&c, T("2026-10-25T05:00:00Z")), 6 * RG_MS_HOUR);
}
