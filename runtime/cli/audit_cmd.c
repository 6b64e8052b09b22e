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
#include "cli/audit_cmd.h"

#include "store/audit.h"
#include "store/store.h"

#include <getopt.h>
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
    json_t *j = rg_audit_json(e);
    char *s = j ? json_dumps(j, JSON_COMPACT | JSON_ENSURE_ASCII) : NULL;
    json_decref(j);
    if (!s)
        return RG_ENOMEM;
    puts(s);
    free(s);
    return 0;
}

int rg_audit_cmd(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"db", required_argument, NULL, 'd'},      {"clinic", required_argument, NULL, 'c'},
        {"patient", required_argument, NULL, 'p'}, {"user", required_argument, NULL, 'u'},
        {"since", required_argument, NULL, 's'},   {"format", required_argument, NULL, 'f'},
        {"help", no_argument, NULL, 'h'},          {NULL, 0, NULL, 0}};
    const char *db = "regimen.db", *format = "text", *since = NULL;
    rg_audit_filter f = {.since = RG_TIME_NONE};
    char err[1024];
    if (argc < 2 || (strcmp(argv[1], "verify") && strcmp(argv[1], "show"))) {
        fputs(rg__audit_usage, argc >= 2 && !strcmp(argv[1], "--help") ? stdout : stderr);
        return argc >= 2 && !strcmp(argv[1], "--help") ? 0 : 2;
    }
    int verify = !strcmp(argv[1], "verify"), opt;
    optind = 1;
    while ((opt = getopt_long(argc - 1, argv + 1, "", longopts, NULL)) != -1) {
        switch (opt) {
        case 'd': db = optarg; break;
        case 'c': f.clinic = optarg; break;
        case 'p': f.patient = optarg; break;
        case 'u': f.who = optarg; break;
        case 's': since = optarg; break;
        case 'f': format = optarg; break;
        case 'h': fputs(rg__audit_usage, stdout); return 0;
        default: fputs(rg__audit_usage, stderr); return 2;
        }
    }
    if (optind != argc - 1 || (verify && (f.clinic || f.patient || f.who || since)) ||
        (strcmp(format, "text") && strcmp(format, "json"))) {
        fputs(rg__audit_usage, stderr);
        return 2;
    }
    if (since && rg_time_parse(since, strlen(since), &f.since, NULL, err, sizeof err)) {
        fprintf(stderr, "regimen audit: --since: %s\n", err);
        return 2;
    }
    if (!rg_store_is_server(db) && access(db, F_OK) != 0) {
        fprintf(stderr, "regimen audit: %s: no such database\n", db);
        return 2;
    }
    rg_store *st;
    rg_store_opts so = {0};
    if (rg_store_open(&st, db, &so, err, sizeof err)) {
        fprintf(stderr, "regimen audit: %s\n", err);
        return 2;
    }
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
        rc = rg_store_audit_each(st, &f, strcmp(format, "json") ? rg__show_text : rg__show_json,
                                 NULL);
    rg_store_rollback(st);
    if (rc)
        fprintf(stderr, "regimen audit: %s: the trail could not be read: %s\n", db,
                rg_store_errmsg(st));
    rg_store_close(st);
    return rc ? 2 : 0;
}
