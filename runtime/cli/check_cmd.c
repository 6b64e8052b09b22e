/*
 * check_cmd.c - the commands that prove or explain protocols: `regimen
 * check` (load a protocol set, evaluate every rule on generated histories
 * and its scenario tests, engine/check.c), `test` (run scenario tests,
 * engine/scenario.c) and `explain` (why an alert opened or resolved,
 * engine/explain.c), the last over a stored database or a simulation.
 */
#include "cli/cli.h"

#include "core/rg.h"
#include "engine/check.h"
#include "engine/clinic.h"
#include "present/explain.h"
#include "engine/scenario.h"
#include "store/store.h"

#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

int rg_cmd_check(int argc, char **argv)
{
    rg_cli_opts o = {0};
    char shipped_buf[PATH_MAX], dflt[2][PATH_MAX + 16], err[4096];
    int rc = rg_cli_parse_common(argc, argv, &o);
    if (rc)
        return rc;
    const char *shipped = rg_cli_shipped(shipped_buf, sizeof shipped_buf);
    const char *both[2] = {dflt[0], dflt[1]};
    const char *const *dirs = (const char *const *)argv + optind;
    int ndirs = argc - optind;
    if (ndirs == 0) { /* the shipped sets */
        if (!shipped)
            return rg_cli_die("%s", "cannot find the shipped protocols; name a directory");
        snprintf(dflt[0], sizeof dflt[0], "%s/ketamine", shipped);
        snprintf(dflt[1], sizeof dflt[1], "%s/esketamine", shipped);
        dirs = both;
        ndirs = 2;
    }
    rg_check_opts co = {.shipped = shipped, .limits = o.limits, .tests = rg_scenario_check_tests,
                        .out = stdout};
    if (o.describe) {
        for (int i = 0; i < ndirs; i++)
            if (rg_check_describe(dirs[i], &co, stdout, err, sizeof err)) {
                fprintf(stderr, "%s\n", err);
                rc = 1;
            }
        return rc;
    }
    for (int i = 0; i < ndirs; i++) {
        rg_clinic *c;
        if (rg_clinic_load(&c, "check", dirs[i], shipped, NULL, &o.limits, err, sizeof err)) {
            fprintf(stderr, "%s\n", err);
            rc = 1;
            continue;
        }
        int nrules = 0;
        for (int p = 0; p < c->nprotos; p++)
            nrules += c->protos[p].nrules;
        printf("%s: ok, %d protocol%s, %d rule%s\n", dirs[i], c->nprotos,
               c->nprotos == 1 ? "" : "s", nrules, nrules == 1 ? "" : "s");
        for (int p = 0; p < c->nprotos; p++) {
            printf("  %s %s (%s)\n", c->protos[p].id, c->protos[p].version, c->protos[p].file);
            for (int r = 0; r < c->protos[p].nrules; r++)
                printf("    %-28s %-8s %s\n", c->protos[p].rules[r].id,
                       c->protos[p].rules[r].severity, c->protos[p].rules[r].where);
        }
        rg_clinic_free(c);
        /* then prove it: every rule on generated histories, and its scenarios */
        rg_check_result res;
        fflush(stdout);
        int crc = rg_check_clinic(dirs[i], &co, &res, err, sizeof err);
        fflush(stdout);
        if (crc) {
            fprintf(stderr, "%s\n", err);
            rc = 1;
        }
    }
    return rc;
}

int rg_cmd_test(int argc, char **argv)
{
    rg_cli_opts o = {0};
    char shipped_buf[PATH_MAX], dflt[PATH_MAX + 16];
    int rc = rg_cli_parse_common(argc, argv, &o);
    if (rc)
        return rc;
    const char *shipped = rg_cli_shipped(shipped_buf, sizeof shipped_buf);
    rg_scenario_totals totals = {0};
    char dflt2[PATH_MAX + 16];
    const char *paths[2] = {dflt, dflt2};
    if (optind == argc) {
        if (!shipped)
            return rg_cli_die("%s", "cannot find the shipped protocols; name a test file or directory");
        snprintf(dflt, sizeof dflt, "%s/ketamine/tests", shipped);
        snprintf(dflt2, sizeof dflt2, "%s/esketamine/tests", shipped);
    }
    /* --jobs N: scenarios over N threads (default: the cores), the same output */
    rg_scenario_run_paths(optind == argc ? paths : (const char *const *)argv + optind,
                          optind == argc ? 2 : argc - optind, shipped, &o.limits, o.jobs, stdout,
                          &totals);
    printf("scenarios: %d passed, %d failed\n", totals.passed, totals.failed);
    return totals.failed ? 1 : totals.passed ? 0 : rg_cli_die("%s", "no scenarios found");
}

typedef struct rg__explain_all {
    rg_store *st;
    rg_engine *eng;
    const char *key;
    int n;
} rg__explain_all;

/* The operator's explain reads the whole store: each clinic that has the
 * key is explained on its own (rg_explain reads one clinic only). */
static int rg__explain_clinic(void *ud, const char *clinic)
{
    rg__explain_all *x = ud;
    char name[RG_EVENT_MAX_CLINIC + 1];
    snprintf(name, sizeof name, "%s", clinic); /* the row is reused by rg_explain's reads */
    if (x->n++)
        fputc('\n', stdout);
    int rc = rg_explain(x->st, x->eng, name, x->key, stdout);
    return rc == RG_ENOTFOUND ? RG_OK : rc;
}

int rg_cmd_explain(int argc, char **argv)
{
    rg_cli_opts o = {.db = "regimen.db"};
    rg_store *st = NULL;
    rg_engine *eng = NULL;
    int ingest_rc = 0, rc = rg_cli_parse_common(argc, argv, &o);
    if (rc)
        return rc;
    if (optind != argc - 1)
        return rg_cli_die("%s", "explain needs one alert KEY (from the \"key\" field of a transition)");
    if (o.events) { /* explain an alert of a simulation */
        rg_time until;
        if (!strcmp(o.db, "regimen.db"))
            o.db = ":memory:";
        o.jobs = 1; /* one alert's explanation: one thread */
        if ((rc = rg_cli_until(&o, "explain --events needs --until TIME", &until)) ||
            (rc = rg_cli_simulate(&o, until, 1, &st, &eng, &ingest_rc)))
            return rc;
    } else {
        if (!rg_store_is_server(o.db) && access(o.db, F_OK) != 0)
            return rg_cli_die("no database at %s", o.db);
        if ((rc = rg_cli_open_store(o.db, 0, NULL, NULL, &st)))
            return rc;
    }
    if (!eng && o.nclinics) { /* the clinics' zones, for the times shown */
        char shipped_buf[PATH_MAX], default_dir[PATH_MAX + 16];
        static long errors; /* the engine's error callback keeps a pointer */
        if ((rc = rg_cli_engine_for(&o, st, rg_cli_shipped(shipped_buf, sizeof shipped_buf),
                                 default_dir, sizeof default_dir, &errors, &eng))) {
            rg_store_close(st);
            return rc;
        }
    }
    rg__explain_all x = {st, eng, argv[optind], 0};
    rc = rg_store_key_clinics(st, argv[optind], rg__explain_clinic, &x);
    if (rc == RG_OK && !x.n)
        rc = RG_ENOTFOUND;
    if (rc == RG_ENOTFOUND)
        fprintf(stderr, "regimen: no alert with key %s\n", argv[optind]);
    else if (rc)
        fprintf(stderr, "regimen: %s\n", rg_store_errmsg(st));
    rg_engine_free(eng);
    rg_store_close(st);
    return rc ? (rc == RG_ENOTFOUND ? 1 : 2) : 0;
}

