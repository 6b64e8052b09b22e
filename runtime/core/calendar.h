/*
 * calendar.h - a clinic's own time: its zone, opening hours and closure
 * days, and which severities reach staff at once. Instants stay exact UTC
 * (rg_time); this answers the questions a person's calendar asks: which
 * local day, is the clinic open, when does it open next, n days later at
 * the same local time.
 *
 * A plain value (no pointers but the process-lifetime zone): a clinic embeds
 * one, the Lua bindings keep one in the sandbox, anyone may copy it.
 */
#ifndef RG_CALENDAR_H
#define RG_CALENDAR_H

#include "core/zone.h"

#define RG_CAL_MAX_CLOSURES 512

typedef struct rg_calendar {
    const rg_zone *zone;
    int has_hours;        /* 0: open around the clock (except closures) */
    int open[7], close[7]; /* minutes of the local day, Monday = 0; open < 0: closed */
    int nclosed;
    int32_t closed[RG_CAL_MAX_CLOSURES]; /* local day numbers (days since 1970-01-01), sorted */
    unsigned at_once; /* bit per severity (info 1, warning 2, critical 4): never delayed */
} rg_calendar;

#define RG_CAL_INFO 1u
#define RG_CAL_WARNING 2u
#define RG_CAL_CRITICAL 4u

/* UTC, always open, critical at once: a clinic that declares nothing. */
void rg_calendar_default(rg_calendar *c);
/* The severity's bit (0 for an unknown one). */
unsigned rg_calendar_severity_bit(const char *severity);

/* "HH:MM" as minutes of the day (allow_end: also "24:00"), or RG_EINVAL. */
int rg_calendar_parse_clock(const char *s, int allow_end);

/* The local calendar day of instant t (days since 1970-01-01). */
int64_t rg_calendar_day(const rg_calendar *c, rg_time t);
/* Milliseconds since local midnight of t's local day (as the wall clock reads). */
int64_t rg_calendar_clock(const rg_calendar *c, rg_time t);
/* The instant of local day `day` at `ms` after local midnight (see
 * rg_zone_to_utc for skipped and repeated hours). */
rg_time rg_calendar_at(const rg_calendar *c, int64_t day, int64_t ms);
/* 1 when the clinic opens at all on local day `day` (its weekday has hours
 * and it is not a closure day). */
int rg_calendar_day_open(const rg_calendar *c, int64_t day);
int rg_calendar_is_open(const rg_calendar *c, rg_time t);
/* t when open at t, else the next opening; RG_TIME_NONE when it never opens
 * again within a year and a half (every day closed). */
rg_time rg_calendar_next_open(const rg_calendar *c, rg_time t);
/* When staff should hear of a transition at t: t itself for an at-once
 * severity or while open, else the next opening. */
rg_time rg_calendar_notify_at(const rg_calendar *c, const char *severity, rg_time t);
/* The instant at which ms of opening time have passed since t, counting only
 * while the clinic is open (hours and closures, in its zone, so a day of a
 * daylight-saving change counts its real length): walks the open intervals
 * day by day. ms <= 0 gives t. A count that completes at a closing instant
 * gives the next opening (nobody is there at closing). RG_TIME_NONE when the
 * walk passes RG_CAL_WALK_DAYS days, or 550 days pass with no opening (a
 * clinic open zero hours a week: `regimen check` refuses counting in its
 * opening hours). */
#define RG_CAL_WALK_DAYS 3660
rg_time rg_calendar_add_open(const rg_calendar *c, rg_time t, rg_time ms);

#endif
