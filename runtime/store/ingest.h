/*
 * ingest.h - JSON Lines of events into the store, shared by `regimen ingest`,
 * `regimen simulate` and (per request) the service.
 *
 * Every line is validated; good lines are stored, bad ones are kept in the
 * rejected table with their line number, field and reason, and reported
 * through on_reject (by rg_ingest_file once their batch is committed). Lines
 * are committed in batches: a batch is one transaction, so a failure never
 * leaves half of a line (or of a batch).
 */
#ifndef RG_INGEST_H
#define RG_INGEST_H

#include "core/fhir.h"
#include "store/store.h"

#include <stdio.h>

typedef struct rg_ingest_counts {
    long stored, duplicates, conflicts, rejected, corrected;
    /* of those stored or corrected: dated more than skew ahead of the wall
     * clock (a clock or time-zone slip in the sender). They are kept (they
     * count from their time on) and told through on_reject with field ""
     * and a reason that starts "warning:" */
    long future;
    rg_time skew; /* in: the skew allowed; 0: RG_INGEST_SKEW_MS; negative: no check */
    int whole;    /* in, rg_ingest_file: 1, the file is one transaction (a new database kept
                   * whole or not at all, rg_store_opts.load): refusals are still told every
                   * batch of lines, and a failure keeps nothing of the file */
} rg_ingest_counts;

#define RG_INGEST_SKEW_MS (15 * RG_MS_MINUTE)

/* How far ev's `at` lies ahead of now beyond skew (0: RG_INGEST_SKEW_MS),
 * with a warning in why (whylen bytes) naming the event, or 0 when it is
 * within it. */
rg_time rg_ingest_ahead(const rg_event *ev, rg_time now, rg_time skew, char *why, size_t whylen);

typedef void (*rg_reject_fn)(void *ud, const char *source, long line, const char *field,
                             const char *reason);

/* Why the store called ev a conflict, into field (RG_FIELD_MAX bytes) and
 * why: the store tells it for its last put only, so when others followed
 * (again: a batch) ev is put once more, which changes nothing for a
 * conflict. A later event of that batch that corrected it can make the
 * reason name the newer version; the outcome is the same. */
int rg_ingest_conflict_why(rg_store *st, const rg_event *ev, int again, char *field, char *why,
                           size_t whylen);

#define RG_INGEST_REJECTED 3
/* Outcome of one event: an rg_put value, RG_INGEST_REJECTED (kept in the
 * rejected table and reported), or a negative store error. */
int rg_ingest_one(rg_store *st, const char *text, size_t len, const char *source, long line,
                  rg_ingest_counts *counts, rg_reject_fn on_reject, void *ud);

/* Reads f to the end. Returns RG_OK, or RG_EDB/RG_EIO when a batch could not
 * be committed (that batch is rolled back and counts say what was kept). */
int rg_ingest_file(rg_store *st, FILE *f, const char *source, rg_ingest_counts *counts,
                   rg_reject_fn on_reject, void *ud, char *err, size_t errlen);

/* rg_ingest_file in two steps, so that the first lines are read and validated
 * (on a thread of its own) while the caller still opens the store: a new
 * database makes its schema meanwhile. rg_ingest_start starts reading f (NULL
 * when memory runs out: rg_ingest_finish then fails with RG_ENOMEM);
 * rg_ingest_finish stores what it reads as rg_ingest_file does and frees it;
 * rg_ingest_stop frees one that is not finished (the store could not be opened). */
typedef struct rg_ingest_reader rg_ingest_reader;
rg_ingest_reader *rg_ingest_start(FILE *f);
int rg_ingest_finish(rg_store *st, rg_ingest_reader *r, const char *source,
                     rg_ingest_counts *counts, rg_reject_fn on_reject, void *ud, char *err,
                     size_t errlen);
void rg_ingest_stop(rg_ingest_reader *r);

/* Stores the events of a FHIR import (fhir.h) in ONE transaction, each
 * through rg_ingest_one, and keeps its rejected resources in the rejected
 * table (line: the entry index or NDJSON line, field: the location). Appends
 * one report per entry (rg_fhir_entry_json) to reports. On a store error
 * everything is rolled back and nothing is reported or counted. */
int rg_ingest_fhir(rg_store *st, const rg_fhir_import *im, const char *source,
                   rg_ingest_counts *counts, json_t *reports, char *err, size_t errlen);

#endif
