/*
 * check.h - proving a clinic's configuration before it goes live, and the
 * reference generated from its protocols.
 *
 * rg_check_clinic loads a clinic directory (as serve and simulate do), then
 * evaluates every rule of every protocol, with the clinic's parameters,
 * against generated histories that cover every event type the protocols read
 * (found by running them: the history's methods are watched) with every data
 * field their sources name, through every phase of a course, and against the
 * clinic's own scenario tests. Every runtime error is reported with the
 * rule's file:line and the clinic.lua overrides of its protocol; a regimen
 * function the sources name that does not exist (R.alrt) with its line,
 * reached or not.
 * rg_check_describe prints what a clinic can set and send (protocols, rules,
 * parameters with kind, default, the clinic's value and where it was set,
 * event types and fields read) as Markdown: docs/reference.md is its output.
 *
 * The engine is the one simulate and serve use (rg_engine_advance), over a
 * throw-away in-memory store. Depends on clinic.c, engine.c, ingest.c.
 */
#ifndef RG_CHECK_H
#define RG_CHECK_H

#include "engine/sandbox.h"

#include <stdio.h>

/* Runs the scenario tests of dir (a *_test.lua file or a directory of
 * them), printing to out; adds to *passed and *failed. The command line
 * passes runtime/cli/scenario.c's runner, so the engine does not depend on
 * the command line. */
typedef int (*rg_check_tests_fn)(const char *dir, const char *shipped, const rg_limits *lim,
                                 FILE *out, int *passed, int *failed);

typedef struct rg_check_opts {
    const char *shipped;     /* the shipped protocol root (require, include); may be NULL */
    rg_limits limits;        /* per evaluation, as in serve */
    rg_check_tests_fn tests; /* NULL: the clinic's scenario tests are not run */
    FILE *out;               /* what was checked, and every failure; NULL: nothing */
} rg_check_opts;

typedef struct rg_check_result {
    int protocols, rules;
    int histories;          /* generated patients evaluated */
    long steps;             /* evaluation steps on them */
    int errors;             /* distinct runtime errors (rule and first line), and module
                             * names a source uses that do not exist (R.alrt) */
    int scenarios_passed, scenarios_failed;
    int types;              /* event types the protocols were seen to read */
} rg_check_result;

/* Proves dir (see the top). Returns RG_OK when it loads, every evaluation
 * ran without error and every scenario passed; RG_EPROTOCOL when something
 * failed (a load error is in err; evaluation errors and scenario failures
 * are printed to o->out and counted in *r); or another negative code (out
 * of memory, the store). */
int rg_check_clinic(const char *dir, const rg_check_opts *o, rg_check_result *r, char *err,
                    size_t errlen);

/* What check finds in dir's sources without running them (a regimen name
 * that does not exist, a data field or event type no event carries), each
 * passed to each as "file:LINE: ..." (paths relative to dir or shipped).
 * The service runs it at start, where nothing is gated: what it finds would
 * refuse the directory's next reload. RG_OK, or the load's error in err. */
int rg_check_sources(const char *dir, const char *shipped, const rg_limits *lim,
                     void (*each)(void *ud, const char *msg), void *ud, char *err, size_t errlen);

/* Prints the reference of dir as Markdown to out (paths relative to the
 * shipped root or to dir). Returns RG_OK, or an error with err set. */
int rg_check_describe(const char *dir, const rg_check_opts *o, FILE *out, char *err,
                      size_t errlen);

#endif
