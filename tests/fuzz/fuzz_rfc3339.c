/*
 * fuzz_rfc3339.c - libFuzzer harness for runtime/core/rfc3339.c.
 *
 * The input is handed to rg_time_parse as it is (not NUL-terminated, so a
 * read past its end is caught). A time it accepts must format with
 * rg_time_format as text that parses again to the same instant at offset 0.
 * The first 8 input bytes, read as an rg_time, are also formatted (time,
 * date, day), and when that instant lies in years 0000-9999 its text must
 * parse back to it.
 */
#include "core/rg.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MIN_T INT64_C(-62167219200000) /* 0000-01-01T00:00:00Z */
#define MAX_T INT64_C(253402300799999) /* 9999-12-31T23:59:59.999Z */

static void check_round_trip(rg_time t, const char *what)
{
    char buf[RG_TIME_BUFSZ], err[160];
    rg_time back = 0;
    int off = -1;
    rg_time_format(t, buf);
    if (rg_time_parse(buf, strlen(buf), &back, &off, err, sizeof err) != RG_OK) {
        fprintf(stderr, "%s: %lld formats as \"%s\", which does not parse: %s\n", what,
                (long long)t, buf, err);
        abort();
    }
    if (back != t || off != 0) {
        fprintf(stderr, "%s: %lld -> \"%s\" -> %lld (offset %d)\n", what, (long long)t, buf,
                (long long)back, off);
        abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    rg_time t;
    int off;
    char err[160], buf[RG_TIME_BUFSZ];
    if (rg_time_parse((const char *)data, size, &t, &off, err, sizeof err) == RG_OK) {
        if (off < -(23 * 60 + 59) || off > 23 * 60 + 59)
            abort();
        check_round_trip(t, "parsed time");
    } else if (!memchr(err, '\0', sizeof err)) {
        abort();
    }
    int64_t raw = 0;
    memcpy(&raw, data, size < sizeof raw ? size : sizeof raw);
    rg_time_date(raw, buf);
    rg_time_day(raw, buf);
    rg_time_format(raw, buf);
    if (raw >= MIN_T && raw <= MAX_T)
        check_round_trip(raw, "raw time");
    return 0;
}
