/*
 * scenario.h - `regimen test`: protocol scenario tests as clinic admins write
 * them (a timeline, a horizon, the transitions expected), run through the
 * same store and engine as `simulate`, with a virtual clock.
 *
 * A scenario file is Lua returning a list of scenarios:
 *   { name = "...", events = { { "2026-03-01T09:00:00Z", "enrolled", {program = "ketamine"} }, ... },
 *     horizon = "2026-03-10T00:00:00Z", only = { "rule.id", ... },
 *     params = { acute_infusions = 4 }, protocols = "../",
 *     expect = { { "2026-03-04T09:00:00Z", "open", "acute.infusion-due" }, ... } }
 * Events and expectations take optional named fields: patient (default
 * "p1"), id; and for expectations message (a substring) and severity.
 */
#ifndef RG_SCENARIO_H
#define RG_SCENARIO_H

#include "engine/sandbox.h"

#include <stdio.h>

typedef struct rg_scenario_totals {
    int passed, failed, files;
} rg_scenario_totals;

/* Runs every scenario of path (a *_test.lua file, or a directory searched
 * recursively for them), printing one line per scenario and, for failures,
 * what was missing or unexpected. Returns RG_OK when the files could be run
 * (failures are counted in totals), or an error for unreadable input. */
int rg_scenario_run(const char *path, const char *shipped, const rg_limits *lim, FILE *out,
                    rg_scenario_totals *totals);

/* The same for several paths, their scenarios spread over jobs threads (0:
 * the processors available); the output is the same for any jobs. Returns
 * the first path's error, if any. */
int rg_scenario_run_paths(const char *const *paths, int npaths, const char *shipped,
                          const rg_limits *lim, int jobs, FILE *out, rg_scenario_totals *totals);

/* rg_check_tests_fn (runtime/engine/check.h) for `regimen check` and a
 * reload that checks first: runs the scenarios of dir, printing only what
 * failed (indented) to out (NULL: nothing), and adds to the counts. */
int rg_scenario_check_tests(const char *dir, const char *shipped, const rg_limits *lim,
                            FILE *out, int *passed, int *failed);

#endif
