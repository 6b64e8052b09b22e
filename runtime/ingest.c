/*
 * ingest.c - validated, idempotent, batched storage of event lines (see
 * ingest.h). Depends on event.c and store.c.
 */
#include "ingest.h"

#include <stdlib.h>
#include <string.h>

#define RG_BATCH_LINES 10000
#define RG_RAW_KEEP 65536 /* bytes of a refused line kept for the operator */

int rg_ingest_one(rg_store *st, const char *text, size_t len, const char *source, long line,
                  rg_ingest_counts *counts, rg_reject_fn on_reject, void *ud)
{
    rg_event ev;
    char field[RG_FIELD_MAX], why[512];
    int outcome = RG_INGEST_REJECTED;
    int rc = rg_event_parse(&ev, text, len, field, why, sizeof why);
    if (rc == RG_OK) {
        rg_put put;
        rc = rg_store_put_event(st, &ev, rg_now(), &put);
        rg_event_clear(&ev);
        if (rc)
            return rc;
        if (put == RG_PUT_STORED) {
            counts->stored++;
            return RG_PUT_STORED;
        }
        if (put == RG_PUT_DUPLICATE) {
            counts->duplicates++;
            return RG_PUT_DUPLICATE;
        }
        outcome = RG_PUT_CONFLICT;
        counts->conflicts++;
        snprintf(field, sizeof field, "id");
        snprintf(why, sizeof why, "an event with this clinic and id is already stored with "
                                  "different content; it was not overwritten");
    } else if (rc != RG_EINVAL) {
        return rc;
    } else {
        counts->rejected++;
    }
    rc = rg_store_reject(st, source, line, field, why, text, len > RG_RAW_KEEP ? RG_RAW_KEEP : len);
    if (rc)
        return rc;
    if (on_reject)
        on_reject(ud, source, line, field, why);
    return outcome;
}

static int rg__blank(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (s[i] != ' ' && s[i] != '\t' && s[i] != '\r' && s[i] != '\n')
            return 0;
    return 1;
}

/* Refusals of a batch are reported once the batch is committed: an operator
 * is never told of a kept line that the rollback of its batch took away. */
typedef struct rg__pending {
    rg_buf b; /* per refusal: long line, field, NUL, reason, NUL */
    int nomem;
} rg__pending;

static void rg__defer(void *ud, const char *source, long line, const char *field,
                      const char *reason)
{
    rg__pending *p = ud;
    (void)source;
    if (rg_buf_add(&p->b, (const char *)&line, sizeof line) ||
        rg_buf_add(&p->b, field, strlen(field) + 1) ||
        rg_buf_add(&p->b, reason, strlen(reason) + 1))
        p->nomem = 1;
}

static void rg__flush(rg__pending *p, const char *source, rg_reject_fn on_reject, void *ud)
{
    for (size_t off = 0; on_reject && off < p->b.len;) {
        long line;
        memcpy(&line, p->b.p + off, sizeof line);
        const char *field = p->b.p + off + sizeof line;
        const char *reason = field + strlen(field) + 1;
        off = (size_t)(reason + strlen(reason) + 1 - p->b.p);
        on_reject(ud, source, line, field, reason);
    }
    p->b.len = 0;
}

int rg_ingest_file(rg_store *st, FILE *f, const char *source, rg_ingest_counts *counts,
                   rg_reject_fn on_reject, void *ud, char *err, size_t errlen)
{
    rg__pending pend = {{0}, 0};
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    long lineno = 0, in_batch = 0;
    rg_ingest_counts committed = *counts;
    int rc = RG_OK;
    while ((n = getline(&line, &cap, f)) >= 0) {
        lineno++;
        size_t len = (size_t)n;
        while (len && (line[len - 1] == '\n' || line[len - 1] == '\r'))
            len--;
        if (rg__blank(line, len))
            continue;
        if (in_batch == 0 && (rc = rg_store_begin(st)))
            break;
        int r = rg_ingest_one(st, line, len, source, lineno, counts, rg__defer, &pend);
        if (r < 0 || pend.nomem) {
            rc = r < 0 ? r : RG_ENOMEM;
            break;
        }
        if (++in_batch == RG_BATCH_LINES) {
            if ((rc = rg_store_commit(st)))
                break;
            committed = *counts;
            rg__flush(&pend, source, on_reject, ud);
            in_batch = 0;
        }
    }
    if (rc == RG_OK && ferror(f))
        rc = RG_EIO;
    if (rc == RG_OK && in_batch && (rc = rg_store_commit(st)) == RG_OK) {
        committed = *counts;
        rg__flush(&pend, source, on_reject, ud);
    }
    free(line);
    rg_buf_free(&pend.b);
    if (rc) {
        rg_store_rollback(st);
        *counts = committed;
        return rg_fail(err, errlen, rc, "%s: stopped at line %ld: %s (%s); lines of the last "
                       "batch were rolled back", source, lineno, rg_strerror(rc),
                       rc == RG_EIO ? "read error"
                       : rc == RG_ENOMEM ? "out of memory" : rg_store_errmsg(st));
    }
    return RG_OK;
}
