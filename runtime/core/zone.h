/*
 * zone.h - IANA time zones from the system tz database, as tables of UTC
 * offset changes, so that converting an instant is a lock-free lookup that
 * any thread (a parallel sweep's workers) may do.
 *
 * Ownership: zones are loaded once per process (rg_zone_get caches them by
 * name) and live until the process ends; a pointer is never freed, so a
 * transition, a webhook or a report may keep one however long it likes.
 */
#ifndef RG_ZONE_H
#define RG_ZONE_H

#include "core/rg.h"

typedef struct rg_zone rg_zone;

/* The zone of clinics that name none. */
const rg_zone *rg_zone_utc(void);
/* Loads (or finds) the zone `name` ("America/New_York"). An unknown name is
 * RG_EINVAL with err saying so; glibc itself would quietly use UTC. */
int rg_zone_get(const rg_zone **out, const char *name, char *err, size_t errlen);
const char *rg_zone_name(const rg_zone *z);
/* Seconds east of UTC at instant t. */
int rg_zone_offset(const rg_zone *z, rg_time t);
/* The instant whose local wall-clock reading is `local` (milliseconds of a
 * local calendar counted as if it were UTC). A reading in a skipped hour
 * (spring forward) is shifted forward by the gap (02:30 -> 03:30 new
 * offset); a reading in a repeated hour (fall back) is its first
 * occurrence (the offset before the change). */
rg_time rg_zone_to_utc(const rg_zone *z, int64_t local);
/* RFC 3339 with the zone's offset: "2026-03-09T09:05:00-05:00". The UTC
 * zone of a clinic without one is written as rg_time_format does ("...Z"),
 * so such clinics read exactly as before. "-" for RG_TIME_NONE. buf needs
 * RG_TIME_BUFSZ bytes. */
char *rg_zone_format(const rg_zone *z, rg_time t, char buf[RG_TIME_BUFSZ]);
/* What a person reads: "2026-03-09 09:05 -05:00" (seconds only when not
 * zero); rg_time_format's text for the UTC zone, "-" for RG_TIME_NONE. */
char *rg_zone_display(const rg_zone *z, rg_time t, char buf[RG_TIME_BUFSZ]);

#endif
