/*
 * audit_cmd.c - `regimen audit`: the audit trail of a service's database.
 *
 *   regimen audit verify [--db PATH]
 *   regimen audit show [--clinic C] [--patient P] [--user U] [--since TIME]
 *                      [--format text|json] [--db PATH]
 *
 * verify walks the hash chain (store/audit.h) from its base to its tip and
 * exits 0 when it is whole, 1 naming the first entry where it breaks (an
 * entry deleted, changed or added), 2 when it could not run. show prints
 * the entries that match, oldest first, one a line. Both only read: they
 * run beside a service on the same database.
 */
#include "cli/cli.h"

#include "store/audit.h"
#include "store/store.h"

#include <getopt.h>
#include <stddef.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char rg__audit_usage[] =
    "usage: regimen audit verify [--db PATH]\n"
    "       regimen audit show [--clinic C] [--patient P] [--user U] [--since TIME]\n"
    "                          [--format text|json] [--db PATH]\n";

static int rg__show_text(void *ud, const rg_audit_entry *e)
{
    char at[RG_TIME_BUFSZ];
    (void)ud;
    printf("%" PRId64 "\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", e->seq, rg_time_format(e->at, at),
           e->clinic, e->who, e->role, e->address, e->patients, e->route, e->outcome);
    return 0;
}

static int rg__show_json(void *ud, const rg_audit_entry *e)
{
    (void)ud;
    return rg_cli_put_json(rg_audit_json(e));
}

typedef struct rg__audit_opts {
    const char *db, *format, *since;
    rg_audit_filter f;
} rg__audit_opts;

#define RG__A(f) offsetof(rg__audit_opts, f)
static const rg_cli_opt rg__audit_table[] = {
    {"db", 0, 1, rg_cli_str, RG__A(db)},
    {"clinic", 0, 1, rg_cli_str, RG__A(f.clinic)},
    {"patient", 0, 1, rg_cli_str, RG__A(f.patient)},
    {"user", 0, 1, rg_cli_str, RG__A(f.who)},
    {"since", 0, 1, rg_cli_str, RG__A(since)},
    {"format", 0, 1, rg_cli_str, RG__A(format)},
    {"help", 0, 0, rg_cli_help_opt, 0},
    {NULL, 0, 0, NULL, 0}};

int rg_cmd_audit(int argc, char **argv)
{
    rg__audit_opts o = {.db = "regimen.db", .format = "text", .f = {.since = RG_TIME_NONE}};
    rg_audit_filter *f = &o.f;
    const char *db;
    char err[1024];
    if (argc < 2 || (strcmp(argv[1], "verify") && strcmp(argv[1], "show"))) {
        fputs(rg__audit_usage, argc >= 2 && !strcmp(argv[1], "--help") ? stdout : stderr);
        return argc >= 2 && !strcmp(argv[1], "--help") ? 0 : 2;
    }
    int verify = !strcmp(argv[1], "verify");
    int opt = rg_cli_parse(rg__audit_table, &o, argc - 1, argv + 1, 1, err, sizeof err);
    if (opt == RG_CLI_HELP) {
        fputs(rg__audit_usage, stdout);
        return 0;
    }
    if (opt) {
        fputs(rg__audit_usage, stderr);
        return 2;
    }
    db = o.db;
    if (optind != argc - 1 || (verify && (f->clinic || f->patient || f->who || o.since)) ||
        (strcmp(o.format, "text") && strcmp(o.format, "json"))) {
        fputs(rg__audit_usage, stderr);
        return 2;
    }
    if (o.since && rg_time_parse(o.since, strlen(o.since), &f->since, NULL, err, sizeof err)) {
        fprintf(stderr, "regimen audit: --since: %s\n", err);
        return 2;
    }
    rg_store *st;
    if (rg_cli_open_existing("regimen audit", db, &st))
        return 2;
    int rc;
    if (verify) {
        rg_audit_report r;
        rc = rg_audit_verify(st, &r);
        if (rc) {
            fprintf(stderr, "regimen audit: %s: the trail could not be read: %s\n", db,
                    rg_store_errmsg(st));
            rg_store_close(st);
            return 2;
        }
        if (!r.ok) {
            printf("audit trail BROKEN at entry %" PRId64 ": %s (%" PRId64
                   " entries before it verified, from entry %" PRId64 ")\n",
                   r.broken_seq, r.why, r.checked, r.chain.base_seq + 1);
        } else {
            printf("audit trail verified: %" PRId64 " entries, %" PRId64 " to %" PRId64
                   ", tip %s\n",
                   r.checked, r.chain.base_seq + (r.checked ? 1 : 0), r.chain.tip_seq,
                   r.chain.tip_hash);
            if (r.chain.base_seq) {
                char at[RG_TIME_BUFSZ];
                printf("entries 1 to %" PRId64 " archived (at %s); the chain starts from the "
                       "hash of entry %" PRId64 ", %s\n",
                       r.chain.base_seq, rg_time_format(r.chain.archived_at, at),
                       r.chain.base_seq, r.chain.base_hash);
            }
        }
        rg_store_close(st);
        return r.ok ? 0 : 1;
    }
    rc = rg_store_begin_read(st);
    if (!rc)
        rc = rg_store_audit_each(st, f, strcmp(o.format, "json") ? rg__show_text : rg__show_json,
                                 NULL);
    rg_store_rollback(st);
    if (rc)
        fprintf(stderr, "regimen audit: %s: the trail could not be read: %s\n", db,
                rg_store_errmsg(st));
    rg_store_close(st);
    return rc ? 2 : 0;
}
