/*
 * report_cmd.c - `regimen report`: the esketamine (Spravato REMS) compliance
 * report of one clinic over a period (compliance.h), from a database or
 * from a timeline file.
 *
 *   regimen report --clinic NAME[=DIR] --from TIME --to TIME
 *                  [--format text|csv|html] [--db PATH | --events FILE]
 *
 * The clinic's numbers come from its protocols: DIR (its clinic.lua and
 * includes), else the shipped esketamine set. With --events the file is
 * loaded into a database in memory first, as `simulate` does; the report
 * reads events only, so nothing is evaluated. Exit 0, or 2 when it could
 * not run (usage, unreadable input, protocols that do not load); a file
 * with refused lines is reported on standard error and exits 1.
 */
#include "cli/cli.h"

#include "engine/clinic.h"
#include "present/compliance.h"
#include "core/event.h"
#include "store/ingest.h"
#include "store/store.h"

#include <errno.h>
#include <getopt.h>
#include <stddef.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int rg__usage_error(const char *msg, const char *arg)
{
    fprintf(stderr, "regimen report: ");
    fprintf(stderr, msg, arg);
    fputs("\nusage: regimen report --clinic NAME[=DIR] --from TIME --to TIME "
          "[--format text|csv|html] [--db PATH | --events FILE]\n", stderr);
    return 2;
}

static void rg__reject(void *ud, const char *source, long line, const char *field,
                       const char *reason)
{
    (void)ud;
    fprintf(stderr, "%s:%ld: %s%s%s%s\n", source, line, *field ? "field '" : "", field,
            *field ? "': " : "", reason);
}

/* The events of path into st (in memory); 1 when lines were refused, 2 when
 * the file could not be read. */
static int rg__load_events(rg_store *st, const char *path)
{
    FILE *f = strcmp(path, "-") ? fopen(path, "r") : stdin;
    char err[1024];
    if (!f) {
        fprintf(stderr, "regimen report: cannot read %s: %s\n", path, strerror(errno));
        return 2;
    }
    rg_ingest_counts counts = {0};
    int rc = rg_ingest_file(st, f, strcmp(path, "-") ? path : "<stdin>", &counts, rg__reject,
                            NULL, err, sizeof err);
    if (f != stdin)
        fclose(f);
    if (rc) {
        fprintf(stderr, "regimen report: %s\n", err);
        return 2;
    }
    return counts.rejected || counts.conflicts ? 1 : 0;
}

typedef struct rg__report_opts {
    const char *clinic, *from, *to, *format, *db, *events;
    rg_limits limits;
} rg__report_opts;

#define RG__R(f) offsetof(rg__report_opts, f)
static const rg_cli_opt rg__report_table[] = {
    {"clinic", 0, 1, rg_cli_str, RG__R(clinic)}, {"from", 0, 1, rg_cli_str, RG__R(from)},
    {"to", 0, 1, rg_cli_str, RG__R(to)},         {"format", 0, 1, rg_cli_str, RG__R(format)},
    {"db", 0, 1, rg_cli_str, RG__R(db)},         {"events", 0, 1, rg_cli_str, RG__R(events)},
    RG_CLI_LIMITS(RG__R(limits)),
    {NULL, 0, 0, NULL, 0},
};

int rg_cmd_report(int argc, char **argv)
{
    rg__report_opts o = {.format = "text", .limits = RG_LIMITS_DEFAULT};
    char name[RG_EVENT_MAX_CLINIC + 1], dir[PATH_MAX], err[4096], shipped_buf[PATH_MAX];
    const char *shipped = rg_cli_shipped(shipped_buf, sizeof shipped_buf);
    int c = rg_cli_parse(rg__report_table, &o, argc, argv, 1, err, sizeof err);
    if (c)
        return rg__usage_error("%s", err[0] ? err : "unknown option");
    const char *clinic = o.clinic, *from_s = o.from, *to_s = o.to, *format = o.format,
               *db = o.db, *events = o.events;
    if (optind != argc)
        return rg__usage_error("unexpected argument '%s'", argv[optind]);
    if (!clinic || !from_s || !to_s)
        return rg__usage_error("%s", "--clinic, --from and --to are required");
    if (db && events)
        return rg__usage_error("%s", "give --db or --events, not both");
    if (!rg_compliance_format_ok(format))
        return rg__usage_error("--format must be text, csv or html, not '%s'", format);
    rg_time from, to;
    if (rg_time_parse(from_s, strlen(from_s), &from, NULL, err, sizeof err))
        return rg__usage_error("--from: %s", err);
    if (rg_time_parse(to_s, strlen(to_s), &to, NULL, err, sizeof err))
        return rg__usage_error("--to: %s", err);
    if (to <= from)
        return rg__usage_error("--to must be after --from (%s)", to_s);

    const char *eq = strchr(clinic, '=');
    size_t nl = eq ? (size_t)(eq - clinic) : strlen(clinic);
    if (nl == 0 || nl > RG_EVENT_MAX_CLINIC || (eq && !eq[1]))
        return rg__usage_error("--clinic expects NAME or NAME=DIR, got '%s'", clinic);
    snprintf(name, sizeof name, "%.*s", (int)nl, clinic);
    if (eq)
        snprintf(dir, sizeof dir, "%s", eq + 1);
    else if (shipped)
        snprintf(dir, sizeof dir, "%s/esketamine", shipped);
    else
        return rg__usage_error("%s", "cannot find the shipped protocols; give --clinic NAME=DIR");

    rg_clinic *cl = NULL;
    if (rg_clinic_load(&cl, name, dir, shipped, NULL, &o.limits, err, sizeof err)) {
        fprintf(stderr, "regimen report: %s\n", err);
        return 2;
    }
    rg_compliance_params p;
    rg_compliance_defaults(&p);
    int rc = rg_compliance_params_of(cl, &p);
    if (rc == RG_ENOTFOUND)
        fprintf(stderr, "regimen report: %s runs no esketamine protocol; counting by the "
                        "shipped defaults\n", dir);
    else if (rc) {
        rg_clinic_free(cl);
        fprintf(stderr, "regimen report: out of memory\n");
        return 2;
    }

    rg_store *st = NULL;
    rg_store_opts so = {0};
    if (rg_store_open(&st, events ? ":memory:" : db ? db : "regimen.db", &so, err, sizeof err)) {
        rg_clinic_free(cl);
        fprintf(stderr, "regimen report: %s\n", err);
        return 2;
    }
    int exit_rc = events ? rg__load_events(st, events) : 0;
    rg_compliance *r = NULL;
    if (exit_rc != 2) {
        rc = rg_compliance_build(&r, st, name, from, to, rg_now(), &p, &cl->cal);
        if (rc) {
            fprintf(stderr, "regimen report: %s (%s)\n", rg_strerror(rc), rg_store_errmsg(st));
            exit_rc = 2;
        } else if (rg_compliance_write(r, format, stdout) || fflush(stdout)) {
            fprintf(stderr, "regimen report: cannot write the report: %s\n", strerror(errno));
            exit_rc = 2;
        }
    }
    rg_compliance_free(r);
    rg_store_close(st);
    rg_clinic_free(cl);
    return exit_rc;
}
