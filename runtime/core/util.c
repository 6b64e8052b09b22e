/*
 * util.c - error text, clocks and the growable output buffer shared by all
 * modules. Depends only on libc.
 */
#include "core/rg.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static const char *const rg__errtext[RG__NERRORS] = {
#define RG__TEXT(name, text) text,
    RG_ERRORS(RG__TEXT)
#undef RG__TEXT
};

const char *rg_strerror(int code)
{
    int idx = -code;
    if (idx < 0 || idx >= RG__NERRORS)
        return "unknown error";
    return rg__errtext[idx];
}

int rg_fail(char *err, size_t errlen, int code, const char *fmt, ...)
{
    if (err && errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return code;
}

rg_time rg_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (rg_time)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t rg_monotonic_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int rg_buf_add(rg_buf *b, const char *s, size_t n)
{
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->len + n + 1)
            cap *= 2;
        char *p = realloc(b->p, cap);
        if (!p)
            return RG_ENOMEM;
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
    return RG_OK;
}

int rg_buf_printf(rg_buf *b, const char *fmt, ...)
{
    char small[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(small, sizeof small, fmt, ap);
    va_end(ap);
    if (n < 0)
        return RG_EINVAL;
    if ((size_t)n < sizeof small)
        return rg_buf_add(b, small, (size_t)n);
    char *big = malloc((size_t)n + 1);
    if (!big)
        return RG_ENOMEM;
    va_start(ap, fmt);
    vsnprintf(big, (size_t)n + 1, fmt, ap);
    va_end(ap);
    int rc = rg_buf_add(b, big, (size_t)n);
    free(big);
    return rc;
}

void rg_buf_free(rg_buf *b)
{
    free(b->p);
    b->p = NULL;
    b->len = b->cap = 0;
}

void rg_log(const char *level, const char *fmt, ...)
{
    char when[RG_TIME_BUFSZ], line[2048];
    rg_time t = rg_now();
    int64_t ms = t % 1000;
    rg_time_format(t - ms, when);
    when[19] = '\0'; /* drop the Z: milliseconds follow */
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    for (char *c = line; *c; c++) /* one event, one line: nothing forges another */
        if (*c == '\n')
            *c = '|';
        else if ((unsigned char)*c < 0x20 && *c != '\t')
            *c = '?';
    fprintf(stderr, "%s.%03dZ %s %s\n", when, (int)ms, level, line);
}

char *rg_slurp(const char *path, size_t *len)
{
    FILE *f = strcmp(path, "-") ? fopen(path, "rb") : stdin;
    rg_buf b = {0};
    char chunk[65536];
    size_t n;
    int nomem = 0;
    if (!f)
        return NULL;
    while (!nomem && (n = fread(chunk, 1, sizeof chunk, f)) > 0)
        nomem = rg_buf_add(&b, chunk, n) != RG_OK;
    int bad = ferror(f);
    if (f != stdin)
        fclose(f);
    if (bad || nomem || rg_buf_add(&b, "", 1)) {
        rg_buf_free(&b);
        errno = bad ? EIO : ENOMEM;
        return NULL;
    }
    *len = b.len - 1;
    return b.p;
}

int rg_edit_distance(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    if (la > 63 || lb > 63)
        return 1000;
    int d[64][64];
    for (size_t i = 0; i <= la; i++)
        d[i][0] = (int)i;
    for (size_t j = 0; j <= lb; j++)
        d[0][j] = (int)j;
    for (size_t i = 1; i <= la; i++)
        for (size_t j = 1; j <= lb; j++) {
            int cost = tolower((unsigned char)a[i - 1]) != tolower((unsigned char)b[j - 1]);
            int v = d[i - 1][j] + 1;
            if (d[i][j - 1] + 1 < v)
                v = d[i][j - 1] + 1;
            if (d[i - 1][j - 1] + cost < v)
                v = d[i - 1][j - 1] + cost;
            if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] &&
                d[i - 2][j - 2] + 1 < v) /* a swap of two letters is one typo */
                v = d[i - 2][j - 2] + 1;
            d[i][j] = v;
        }
    return d[la][lb];
}

const char *rg_suggest(const char *word, const char *const *cands, size_t n)
{
    const char *best = NULL;
    int bd = 1000, limit = (int)strlen(word) / 3;
    if (limit < 1)
        limit = 1;
    for (size_t i = 0; i < n; i++) {
        if (!cands[i] || !strcmp(cands[i], word))
            continue;
        int dd = rg_edit_distance(word, cands[i]);
        /* a prefix is a likely slip too: horizont / horizon, booster_interval */
        size_t lc = strlen(cands[i]), lw = strlen(word);
        if (dd > limit && lw >= 4 && lc > lw && !strncmp(cands[i], word, lw))
            dd = limit;
        if (dd < bd) {
            bd = dd;
            best = cands[i];
        }
    }
    return bd <= limit ? best : NULL;
}
