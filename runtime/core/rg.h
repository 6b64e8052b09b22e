/*
 * rg.h - what every regimen module shares: error codes, the time type, small
 * string helpers.
 *
 * Errors are values in C: functions return an int that is RG_OK (0) or a
 * negative RG_E* code, and write a human-readable message into a caller-owned
 * buffer (char *err, size_t errlen) when they have more to say than the code.
 * Time is an int64_t count of milliseconds since 1970-01-01T00:00:00Z (UTC);
 * offsets are kept only where an event was written with one.
 */
#ifndef RG_H
#define RG_H

#include <stddef.h>
#include <stdint.h>
#include <stdarg.h>

/* X(name, text): the error table. Codes are negative so that a non-negative
 * return can carry a count where that is useful. */
#define RG_ERRORS(X)                                                     \
    X(OK, "ok")                                                          \
    X(NOMEM, "out of memory")                                            \
    X(IO, "input/output error")                                          \
    X(DB, "database error")                                              \
    X(INVAL, "invalid input")                                            \
    X(CONFLICT, "conflicting event")                                     \
    X(PROTOCOL, "protocol error")                                        \
    X(LIMIT, "sandbox limit exceeded")                                   \
    X(USAGE, "usage error")                                              \
    X(NOTFOUND, "not found")                                             \
    X(BUSY, "held by another process")                                   \
    X(GONE, "connection closed")

enum {
#define RG__ENUM(name, text) RG__IDX_##name,
    RG_ERRORS(RG__ENUM)
#undef RG__ENUM
    RG__NERRORS
};

#define RG_OK 0
#define RG_ENOMEM (-RG__IDX_NOMEM)
#define RG_EIO (-RG__IDX_IO)
#define RG_EDB (-RG__IDX_DB)
#define RG_EINVAL (-RG__IDX_INVAL)
#define RG_ECONFLICT (-RG__IDX_CONFLICT)
#define RG_EPROTOCOL (-RG__IDX_PROTOCOL)
#define RG_ELIMIT (-RG__IDX_LIMIT)
#define RG_EUSAGE (-RG__IDX_USAGE)
#define RG_ENOTFOUND (-RG__IDX_NOTFOUND)
#define RG_EBUSY (-RG__IDX_BUSY)
#define RG_EGONE (-RG__IDX_GONE) /* the peer's connection (an HTTP stream) is closed */

/* Static text for an error code; never NULL. */
const char *rg_strerror(int code);

/* Writes a formatted message into err (if err and errlen are non-zero) and
 * returns code, so that callers can `return rg_fail(err, n, RG_EINVAL, ...)`. */
int rg_fail(char *err, size_t errlen, int code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

typedef int64_t rg_time; /* ms since the Unix epoch, UTC */

#define RG_TIME_NONE INT64_MIN /* "no such time" (no wake-up, no event) */
#define RG_MS_SECOND INT64_C(1000)
#define RG_MS_MINUTE (60 * RG_MS_SECOND)
#define RG_MS_HOUR (60 * RG_MS_MINUTE)
#define RG_MS_DAY (24 * RG_MS_HOUR)

/* Wall clock now, for meaning (received-at stamps, serve's "now"). */
rg_time rg_now(void);
/* Monotonic milliseconds, for measuring and waiting only. */
int64_t rg_monotonic_ms(void);

/* RFC 3339 (runtime/core/rfc3339.c). rg_time_parse accepts exactly
 * YYYY-MM-DDTHH:MM:SS[.fraction](Z|+HH:MM|-HH:MM), checks that the date exists,
 * and stores the instant (fraction truncated to ms) and the offset in minutes.
 * On failure it returns RG_EINVAL and says why in err. */
int rg_time_parse(const char *s, size_t len, rg_time *out, int *offset_min,
                  char *err, size_t errlen);
/* Formats t as UTC, "2026-03-09T14:05:00Z" (".123" before Z only when the
 * milliseconds are not zero). buf needs RG_TIME_BUFSZ bytes. */
#define RG_TIME_BUFSZ 32
char *rg_time_format(rg_time t, char buf[RG_TIME_BUFSZ]);
/* "2026-03-09" (UTC). buf needs RG_TIME_BUFSZ bytes. */
char *rg_time_date(rg_time t, char buf[RG_TIME_BUFSZ]);
/* "9 Mar 2026" (UTC), the way a nurse writes a date. */
char *rg_time_day(rg_time t, char buf[RG_TIME_BUFSZ]);
/* Day numbers (days since 1970-01-01) <-> proleptic Gregorian dates. */
int64_t rg_days_from_civil(int64_t y, int m, int d);
void rg_civil_from_days(int64_t z, int *y, int *m, int *d);

/* One log line on stderr: "2026-03-02T14:05:00.123Z info message". Logs
 * carry ids, never event payloads. */
void rg_log(const char *level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Dynamic string buffer for building output; aborts nothing, reports NOMEM. */
typedef struct rg_buf {
    char *p;
    size_t len, cap;
} rg_buf;
int rg_buf_add(rg_buf *b, const char *s, size_t n);
int rg_buf_printf(rg_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void rg_buf_free(rg_buf *b);

/* All of path ("-": standard input), NUL-terminated, its length in *len
 * (the caller frees it); NULL with errno set when it cannot be read. */
char *rg_slurp(const char *path, size_t *len);

/* "Did you mean": the candidate closest to word (optimal string alignment
 * distance, case-insensitive), or NULL when none is close enough to be a
 * likely typo (at most a third of word's length, and at least one edit). */
const char *rg_suggest(const char *word, const char *const *cands, size_t n);
/* The distance rg_suggest uses; large for words longer than 63 bytes. */
int rg_edit_distance(const char *a, const char *b);

#define RG_COUNTOF(a) (sizeof(a) / sizeof((a)[0]))

#endif
