/*
 * zone.c - time zones as offset tables (see zone.h).
 *
 * The rules come from the system tz database through glibc, never from
 * offsets written here and never from a TZif parser of our own: a zone is
 * loaded by setting TZ to its name, calling tzset and probing localtime_r
 * once a day from 1970 to 2100 (glibc reads the TZif file, and its POSIX
 * footer for the years past the file's last transition). Where the offset
 * differs between two probes, bisection finds the exact second of the
 * change. Two changes less than a day apart that cancel out would be missed;
 * the tz database has none since 1970. Before 1970 the 1970 offset holds,
 * after 2100 the last one (no daylight saving there).
 *
 * TZ is process-wide state, so loading happens under one mutex and TZ is put
 * back afterwards; everything after loading reads immutable tables without a
 * lock. Other threads must not read TZ (getenv, localtime) meanwhile:
 * regimen's own code never does (it formats times with rfc3339.c), and
 * zones load when clinics do: a sweep's main thread loads every --clinic
 * before its workers start, so they find the zones cached.
 */
#include "core/zone.h"
#include "core/grow.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct rg_zone {
    char name[64];
    int n;
    int64_t *start; /* UTC ms at which period i begins; start[0] is "always" */
    int *off;       /* seconds east of UTC during period i */
    rg_zone *next;
};

static int64_t rg__utc_start[1] = {INT64_MIN};
static int rg__utc_off[1] = {0};
static rg_zone rg__utc = {"UTC", 1, rg__utc_start, rg__utc_off, NULL};
static pthread_mutex_t rg__lock = PTHREAD_MUTEX_INITIALIZER;
static rg_zone *rg__zones; /* loaded zones, never freed (see zone.h) */

const rg_zone *rg_zone_utc(void) { return &rg__utc; }
const char *rg_zone_name(const rg_zone *z) { return z->name; }

/* Offset at second s under the TZ now set. */
static long rg__probe(time_t s)
{
    struct tm tm;
    return localtime_r(&s, &tm) ? tm.tm_gmtoff : 0;
}

static int rg__push(rg_zone *z, size_t *cap, int64_t start_ms, int off)
{
    /* two arrays of one length: the second grows from the first's old cap */
    size_t old = *cap;
    int64_t *s = rg_grow(z->start, cap, (size_t)z->n, sizeof *s, 64);
    if (!s)
        return RG_ENOMEM;
    z->start = s;
    int *o = rg_grow(z->off, &old, (size_t)z->n, sizeof *o, 64);
    if (!o) {
        *cap = old; /* (start is merely larger than needed) */
        return RG_ENOMEM;
    }
    z->off = o;
    z->start[z->n] = start_ms;
    z->off[z->n] = off;
    z->n++;
    return RG_OK;
}

/* Builds z's table; TZ must name the zone. */
static int rg__scan(rg_zone *z)
{
    const time_t from = 0, to = 4102444800; /* 1970-01-01 .. 2100-01-01 */
    size_t cap = 0;
    long prev = rg__probe(from);
    if (rg__push(z, &cap, INT64_MIN, (int)prev))
        return RG_ENOMEM;
    for (time_t a = from; a < to;) {
        if (rg__probe(a + 86400) == prev) {
            a += 86400;
            continue;
        }
        time_t lo = a, hi = a + 86400; /* offset(lo) == prev, offset(hi) != prev */
        while (hi - lo > 1) {
            time_t mid = lo + (hi - lo) / 2;
            if (rg__probe(mid) == prev)
                lo = mid;
            else
                hi = mid;
        }
        prev = rg__probe(hi);
        if (rg__push(z, &cap, (int64_t)hi * 1000, (int)prev))
            return RG_ENOMEM;
        a = hi; /* a second change within the day is found from here */
    }
    return RG_OK;
}

/* A name glibc would read as a file under the zoneinfo directory, and that
 * file is a TZif file: what an unknown name is refused by. */
static int rg__known(const char *name, char *err, size_t errlen)
{
    size_t len = strlen(name);
    if (!len || len >= sizeof ((rg_zone *)0)->name || name[0] == '/' || strstr(name, ".."))
        return rg_fail(err, errlen, RG_EINVAL, "'%s' is not a time zone name such as "
                       "\"America/New_York\"", name);
    for (const char *p = name; *p; p++)
        if (!((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') ||
              *p == '/' || *p == '_' || *p == '-' || *p == '+'))
            return rg_fail(err, errlen, RG_EINVAL, "'%s' is not a time zone name such as "
                           "\"America/New_York\"", name);
    const char *dir = getenv("TZDIR");
    char path[4200], magic[4];
    snprintf(path, sizeof path, "%s/%s", dir && *dir ? dir : "/usr/share/zoneinfo", name);
    FILE *f = fopen(path, "rb");
    int ok = f && fread(magic, 1, 4, f) == 4 && !memcmp(magic, "TZif", 4);
    if (f)
        fclose(f);
    if (!ok)
        return rg_fail(err, errlen, RG_EINVAL, "unknown time zone '%s' (not in the tz database "
                       "at %s; names look like \"America/New_York\" or \"Europe/Berlin\")", name,
                       dir && *dir ? dir : "/usr/share/zoneinfo");
    return RG_OK;
}

int rg_zone_get(const rg_zone **out, const char *name, char *err, size_t errlen)
{
    if (!name || !strcmp(name, "UTC")) {
        *out = &rg__utc;
        return RG_OK;
    }
    int rc = RG_OK;
    pthread_mutex_lock(&rg__lock);
    for (rg_zone *z = rg__zones; z; z = z->next)
        if (!strcmp(z->name, name)) {
            *out = z;
            goto done;
        }
    if ((rc = rg__known(name, err, errlen)))
        goto done;
    rg_zone *z = calloc(1, sizeof *z);
    if (!z) {
        rc = rg_fail(err, errlen, RG_ENOMEM, "out of memory");
        goto done;
    }
    snprintf(z->name, sizeof z->name, "%s", name);
    const char *was = getenv("TZ");
    char *saved = was ? strdup(was) : NULL;
    setenv("TZ", name, 1);
    tzset();
    rc = rg__scan(z);
    if (saved)
        setenv("TZ", saved, 1);
    else
        unsetenv("TZ");
    tzset();
    free(saved);
    if (rc) {
        free(z->start);
        free(z->off);
        free(z);
        rc = rg_fail(err, errlen, RG_ENOMEM, "out of memory");
        goto done;
    }
    z->next = rg__zones;
    rg__zones = z;
    *out = z;
done:
    pthread_mutex_unlock(&rg__lock);
    return rc;
}

/* Index of the period holding instant t. */
static int rg__period(const rg_zone *z, rg_time t)
{
    int lo = 0, hi = z->n - 1;
    while (lo < hi) {
        int mid = (lo + hi + 1) / 2;
        if (z->start[mid] <= t)
            lo = mid;
        else
            hi = mid - 1;
    }
    return lo;
}

int rg_zone_offset(const rg_zone *z, rg_time t) { return z->off[rg__period(z, t)]; }

rg_time rg_zone_to_utc(const rg_zone *z, int64_t local)
{
    /* the last period whose local start is at or before the reading */
    int lo = 0, hi = z->n - 1;
    while (lo < hi) {
        int mid = (lo + hi + 1) / 2;
        if (z->start[mid] + (int64_t)z->off[mid] * 1000 <= local)
            lo = mid;
        else
            hi = mid - 1;
    }
    /* a repeated hour: the previous period still shows this reading, first */
    if (lo > 0 && local < z->start[lo] + (int64_t)z->off[lo - 1] * 1000)
        lo--;
    /* in a skipped hour lo's offset applies past its end: shifted forward */
    return local - (int64_t)z->off[lo] * 1000;
}

char *rg_zone_format(const rg_zone *z, rg_time t, char buf[RG_TIME_BUFSZ])
{
    if (t == RG_TIME_NONE)
        return strcpy(buf, "-");
    if (z == &rg__utc) /* a clinic without a zone reads as it always did */
        return rg_time_format(t, buf);
    int off = rg_zone_offset(z, t);
    rg_time_format(t + (int64_t)off * 1000, buf);
    size_t len = strlen(buf); /* ends in 'Z' */
    int a = off < 0 ? -off : off;
    snprintf(buf + len - 1, RG_TIME_BUFSZ - (len - 1), "%c%02d:%02d", off < 0 ? '-' : '+',
             a / 3600, a / 60 % 60);
    return buf;
}

char *rg_zone_display(const rg_zone *z, rg_time t, char buf[RG_TIME_BUFSZ])
{
    char full[RG_TIME_BUFSZ];
    if (t == RG_TIME_NONE)
        return strcpy(buf, "-");
    if (z == &rg__utc)
        return rg_time_format(t, buf);
    rg_zone_format(z, t, full);
    /* "2026-03-09T09:05:00-05:00" -> "2026-03-09 09:05 -05:00" */
    size_t len = strlen(full);
    int secs = full[17] != '0' || full[18] != '0' || full[19] == '.';
    snprintf(buf, RG_TIME_BUFSZ, "%.10s %.*s %s", full, secs ? 8 : 5, full + 11, full + len - 6);
    return buf;
}
