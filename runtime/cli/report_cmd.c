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
#include "cli/report_cmd.h"

#include "engine/clinic.h"
#include "engine/compliance.h"
#include "core/event.h"
#include "store/ingest.h"
#include "store/store.h"

#include <errno.h>
#include <getopt.h>
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

int rg_report_cmd(int argc, char **argv, const char *shipped, const rg_limits *lim)
{
    enum { O_CLINIC = 1, O_FROM, O_TO, O_FORMAT, O_DB, O_EVENTS, O_MEM, O_INSTR, O_DEADLINE };
    static const struct option longopts[] = {
        {"clinic", required_argument, NULL, O_CLINIC}, {"from", required_argument, NULL, O_FROM},
        {"to", required_argument, NULL, O_TO},         {"format", required_argument, NULL, O_FORMAT},
        {"db", required_argument, NULL, O_DB},         {"events", required_argument, NULL, O_EVENTS},
        {"max-memory-mb", required_argument, NULL, O_MEM},
        {"max-instructions", required_argument, NULL, O_INSTR},
        {"deadline-ms", required_argument, NULL, O_DEADLINE},
        {NULL, 0, NULL, 0},
    };
    const char *clinic = NULL, *from_s = NULL, *to_s = NULL, *format = "text", *db = NULL,
               *events = NULL;
    char name[RG_EVENT_MAX_CLINIC + 1], dir[PATH_MAX], err[4096];
    rg_limits limits = *lim;
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        switch (c) {
        case O_CLINIC: clinic = optarg; break;
        case O_FROM: from_s = optarg; break;
        case O_TO: to_s = optarg; break;
        case O_FORMAT: format = optarg; break;
        case O_DB: db = optarg; break;
        case O_EVENTS: events = optarg; break;
        case O_MEM:
        case O_INSTR:
        case O_DEADLINE: {
            char *end;
            errno = 0;
            long long v = strtoll(optarg, &end, 10);
            if (errno || *end || end == optarg || v <= 0 || v > INT_MAX)
                return rg__usage_error("expected a positive whole number, got '%s'", optarg);
            if (c == O_MEM)
                limits.max_memory = (size_t)v << 20;
            else if (c == O_INSTR)
                limits.max_instructions = v;
            else
                limits.deadline_ms = (int)v;
            break;
        }
        default: return rg__usage_error("%s", "unknown option");
        }
    }
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
    if (rg_clinic_load(&cl, name, dir, shipped, NULL, &limits, err, sizeof err)) {
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
