/*
 * protocols_cmd.c - `regimen protocols`: a clinic's protocol set as versions
 * in the store, changed by a reviewed workflow (docs/governance.md):
 *
 *   propose  --clinic NAME --by PERSON [-m TEXT] [--until TIME] DIR
 *   approve  --clinic NAME --by PERSON VERSION
 *   activate --clinic NAME --by PERSON [--at TIME] VERSION
 *   rollback --clinic NAME --by PERSON VERSION
 *   shadow   --clinic NAME --by PERSON VERSION | --stop
 *   list     --clinic NAME
 *   show     --clinic NAME [--until TIME] VERSION
 *
 * A proposal must pass `regimen check` (rg_clinic_gate, with the scenario
 * tests) on the very files it stores; its answer is "version ID", then what
 * the change does to the clinic's stored history: both versions replayed
 * (governance.c) and compared by rg_diff, the engine of `regimen diff`.
 * Approval needs a second person. Exit 0 done, 1 refused (one line saying
 * why), 2 could not run. Depends on governance.c, gate.c, explain.c.
 */
#include "cli/cli.h"

#include "engine/gate.h"
#include "engine/governance.h"
#include "present/diff.h"
#include "store/holder.h"
#include "store/store.h"

#include <getopt.h>
#include <stddef.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct rg__popts {
    const char *db, *clinic, *by, *message, *at, *until;
    int stop; /* shadow --stop */
} rg__popts;

static int rg__die2(const char *what)
{
    fprintf(stderr, "regimen protocols: %s\n", what);
    return 2;
}

static int rg__refuse(const char *fmt, const char *a, const char *b)
{
    fprintf(stderr, "regimen protocols: refused: ");
    fprintf(stderr, fmt, a, b);
    fputc('\n', stderr);
    return 1;
}

/* The clinic's versions; 2 (printed why) when they cannot be read. */
static int rg__load(rg_store *st, const char *clinic, rg_gov_vers *vs)
{
    int rc = rg_gov_versions(st, clinic, vs);
    if (rc == RG_EUSAGE)
        fprintf(stderr, "regimen protocols: protocol versions are kept in SQLite stores only "
                        "for now; --db names a PostgreSQL database\n");
    else if (rc)
        fprintf(stderr, "regimen protocols: reading the versions: %s (%s)\n", rg_strerror(rc),
                rg_store_errmsg(st));
    return rc ? 2 : 0;
}

/* The version named by ref, or NULL with exit code 1 in *rc and the reason
 * printed. */
static rg_gov_ver *rg__find(rg_gov_vers *vs, const char *clinic, const char *ref, int *rc)
{
    char why[512];
    rg_gov_ver *v = rg_gov_find(vs, clinic, ref, why, sizeof why);
    if (!v)
        *rc = rg__refuse("%s%s", why, "");
    return v;
}

static int rg__open(const rg__popts *o, rg_store **st)
{
    char err[1024];
    rg_store_opts so = {.durable = 1};
    if (rg_store_open(st, o->db, &so, err, sizeof err)) {
        fprintf(stderr, "regimen: %s\n", err);
        return 2;
    }
    return 0;
}

/* The stored version id of clinic written out (root) for the loader. */
static int rg__materialize(rg_store *st, const char *clinic, const char *id, char *root,
                           size_t rootlen)
{
    char err[1024];
    if (rg_gov_write_out(st, clinic, id, root, rootlen, err, sizeof err)) {
        fprintf(stderr, "regimen protocols: %s\n", err);
        return 2;
    }
    return 0;
}

/* rg_gov_diff on stdout; 2 (printed why) when it could not run. */
static int rg__diff(rg_store *st, const char *clinic, const char *old_root, const char *new_root,
                    const char *shipped_root, rg_time until)
{
    char err[4096];
    rg_gov_writer w = rg_gov_printer(stdout);
    if (rg_gov_diff(st, clinic, old_root, new_root, shipped_root, until, &w, err, sizeof err)) {
        fprintf(stderr, "regimen protocols: %s\n", err);
        return 2;
    }
    return 0;
}

static int rg__time_opt(const char *s, const char *name, rg_time *t)
{
    char err[256];
    *t = rg_now();
    if (s && rg_time_parse(s, strlen(s), t, NULL, err, sizeof err)) {
        fprintf(stderr, "regimen protocols: %s: %s\n", name, err);
        return 2;
    }
    return 0;
}

static int rg__propose(rg_store *st, const rg__popts *o, const char *dir, const char *shipped)
{
    char why[4096], id[65];
    rg_time until;
    int rc = rg__time_opt(o->until, "--until", &until);
    if (rc)
        return rc;
    rg_gov_writer w = rg_gov_printer(stdout);
    rc = rg_gov_propose(st, o->clinic, dir, dir, shipped, o->by, o->message, until, &w, id, why,
                        sizeof why);
    if (id[0]) /* stored: a service holding the file hears of it */
        rg_holder_notify(o->db);
    if (rc == RG_ECONFLICT)
        return rg__refuse("%s%s", why, "");
    if (rc == RG_ENOMEM)
        return rg__die2("out of memory");
    if (rc)
        return rg__die2(why);
    return 0;
}

/* The answer to a change of the clinic's versions (rc and msg from
 * rg_gov_change or rg_gov_shadow): refused, could not run, or done (a
 * service holding the file hears of it). */
static int rg__changed(rg_store *st, const rg__popts *o, int rc, const char *msg)
{
    if (rc == RG_ENOTFOUND || rc == RG_ECONFLICT)
        return rg__refuse("%s%s", msg, "");
    if (rc == RG_EUSAGE)
        return rg__load(st, o->clinic, &(rg_gov_vers){0});
    if (rc) {
        fprintf(stderr, "regimen protocols: %s\n", msg);
        return 2;
    }
    rg_holder_notify(o->db);
    printf("%s\n", msg);
    return 0;
}

/* approve, activate, rollback: a change of state, logged. */
static int rg__change(rg_store *st, const rg__popts *o, const char *what, const char *ref)
{
    rg_time at;
    char msg[2048];
    int rc = rg__time_opt(o->at, "--at", &at);
    if (rc)
        return rc;
    rc = rg_gov_change(st, o->clinic, what, ref, o->by, at, msg, sizeof msg);
    return rg__changed(st, o, rc, msg);
}

/* shadow VERSION, or shadow --stop (ref NULL). */
static int rg__shadow(rg_store *st, const rg__popts *o, const char *ref)
{
    char msg[2048];
    int rc = rg_gov_shadow(st, o->clinic, ref, o->by, msg, sizeof msg);
    return rg__changed(st, o, rc, msg);
}

/* The running comparison of the clinic's shadow id since `since`. */
static int rg__shadow_report(rg_store *st, const char *clinic, const char *id, rg_time since,
                             const char *by)
{
    char when[RG_TIME_BUFSZ], root[PATH_MAX], err[1024];
    printf("shadow since %s (set by %s): what it did beside the active version\n",
           rg_time_format(since, when), by);
    fflush(stdout);
    /* the clinic's zone, as the version declares it (UTC when it cannot load) */
    rg_engine *eng = NULL;
    if (rg_gov_write_out(st, clinic, id, root, sizeof root, err, sizeof err) == RG_OK) {
        char dir[PATH_MAX + 16], shipped[PATH_MAX + 16];
        snprintf(dir, sizeof dir, "%s/clinic", root);
        snprintf(shipped, sizeof shipped, "%s/shipped", root);
        rg_engine_opts eo = {.limits = RG_LIMITS_DEFAULT, .shipped = shipped,
                             .default_dir = dir};
        if (rg_engine_new(&eng, st, &eo) == RG_OK &&
            rg_engine_set_clinic_from(eng, clinic, dir, shipped, NULL, err, sizeof err)) {
            rg_engine_free(eng);
            eng = NULL;
        }
    } else {
        root[0] = '\0';
    }
    rg_diff d;
    long n = rg_gov_shadow_report(st, clinic, id, since, &d);
    if (n >= 0)
        rg_diff_print(&d, "ACTIVE", "SHADOW", eng, stdout);
    rg_diff_free(&d);
    rg_engine_free(eng);
    rg_gov_remove(root);
    if (n < 0) {
        fprintf(stderr, "regimen protocols: reading the shadow feed: %s\n", rg_strerror((int)n));
        return 2;
    }
    return 0;
}

static int rg__list(rg_store *st, const rg__popts *o)
{
    rg_gov_vers vs;
    int rc = rg__load(st, o->clinic, &vs);
    if (rc)
        return rc;
    char shadow[65];
    rg_time since;
    if (rg_gov_shadow_of(st, o->clinic, shadow, &since, NULL, 0))
        shadow[0] = '\0';
    for (int i = 0; i < vs.n; i++) {
        const rg_gov_ver *v = &vs.v[i];
        char when[RG_TIME_BUFSZ], from[RG_TIME_BUFSZ];
        printf("%.12s  %-11s  %-12s  %s", v->id, v->state, v->by,
               rg_time_format(v->proposed_at, when));
        if (v->approved)
            printf("  approved by %s", v->approved_by);
        if (v->active_from != RG_TIME_NONE && !strcmp(v->state, "active"))
            printf("  active from %s", rg_time_format(v->active_from, from));
        if (!strcmp(v->id, shadow))
            printf("  shadow since %s", rg_time_format(since, from));
        printf("%s%s\n", v->message[0] ? "  " : "", v->message);
    }
    if (!vs.n)
        printf("no versions of clinic %s\n", o->clinic);
    free(vs.v);
    return 0;
}

static int rg__show_file(void *ud, const char *path, const char *content, size_t len)
{
    (void)ud;
    (void)content;
    printf("  %-48s  %zu bytes\n", path, len);
    return 0;
}

static int rg__show_log(void *ud, const char *id, const char *action, const char *by,
                        rg_time at, rg_time effective)
{
    char a[RG_TIME_BUFSZ], e[RG_TIME_BUFSZ];
    (void)ud;
    (void)id;
    printf("  %s  %-14s  by %s", rg_time_format(at, a), action, by);
    if (effective != at)
        printf("  (from %s)", rg_time_format(effective, e));
    putchar('\n');
    return 0;
}

static int rg__show(rg_store *st, const rg__popts *o, const char *ref, const char *shipped)
{
    rg_gov_vers vs;
    rg_time until;
    char when[RG_TIME_BUFSZ], root[PATH_MAX], active_root[PATH_MAX];
    int rc = rg__time_opt(o->until, "--until", &until);
    if (rc || (rc = rg__load(st, o->clinic, &vs)))
        return rc;
    rg_gov_ver *v = rg__find(&vs, o->clinic, ref, &rc);
    if (!v)
        goto done;
    printf("version %s\n", v->id);
    printf("clinic   %s\nstate    %s\nproposed by %s at %s\n", o->clinic, v->state, v->by,
           rg_time_format(v->proposed_at, when));
    if (v->message[0])
        printf("message  %s\n", v->message);
    printf("files:\n");
    if ((rc = rg_store_protoset_files(st, o->clinic, v->id, rg__show_file, NULL)))
        goto failed;
    printf("history:\n");
    if ((rc = rg_store_protoset_each_log(st, o->clinic, v->id, rg__show_log, NULL)))
        goto failed;
    char shadow[65], shadow_by[256];
    rg_time since;
    if (rg_gov_shadow_of(st, o->clinic, shadow, &since, shadow_by, sizeof shadow_by) == RG_OK &&
        !strcmp(shadow, v->id) && (rc = rg__shadow_report(st, o->clinic, v->id, since, shadow_by)))
        goto done;
    rg_gov_ver *act = rg_gov_active(&vs);
    if (act == v) {
        printf("diff: this is the active version\n");
        goto done;
    }
    printf("diff against the active version:\n");
    fflush(stdout);
    if ((rc = rg__materialize(st, o->clinic, v->id, root, sizeof root)))
        goto done;
    if (act && (rc = rg__materialize(st, o->clinic, act->id, active_root, sizeof active_root))) {
        rg_gov_remove(root);
        goto done;
    }
    rc = rg__diff(st, o->clinic, act ? active_root : NULL, root, shipped, until);
    rg_gov_remove(root);
    if (act)
        rg_gov_remove(active_root);
    goto done;
failed:
    fprintf(stderr, "regimen protocols: reading version %.12s: %s\n", v->id, rg_strerror(rc));
    rc = 2;
done:
    free(vs.v);
    return rc;
}

static const char rg__usage[] =
    "usage: regimen protocols COMMAND --clinic NAME [--db PATH] ...\n"
    "  propose  --clinic NAME --by PERSON [-m TEXT] [--until TIME] DIR\n"
    "  approve  --clinic NAME --by PERSON VERSION\n"
    "  activate --clinic NAME --by PERSON [--at TIME] VERSION\n"
    "  rollback --clinic NAME --by PERSON VERSION\n"
    "  shadow   --clinic NAME --by PERSON VERSION | --stop\n"
    "  list     --clinic NAME\n"
    "  show     --clinic NAME [--until TIME] VERSION\n"
    "VERSION is a version's id or a unique prefix of it. Exit 0: done; 1: refused;\n"
    "2: could not run.\n";

#define RG__P(f) offsetof(rg__popts, f)
static const rg_cli_opt rg__protocols_table[] = {
    {"db", 0, 1, rg_cli_str, RG__P(db)},         {"clinic", 0, 1, rg_cli_str, RG__P(clinic)},
    {"by", 0, 1, rg_cli_str, RG__P(by)},         {"message", 'm', 1, rg_cli_str, RG__P(message)},
    {"at", 0, 1, rg_cli_str, RG__P(at)},         {"until", 0, 1, rg_cli_str, RG__P(until)},
    {"stop", 0, 0, rg_cli_flag, RG__P(stop)},    {"help", 0, 0, rg_cli_help_opt, 0},
    {NULL, 0, 0, NULL, 0}};

int rg_cmd_protocols(int argc, char **argv)
{
    char shipped_buf[PATH_MAX], err[256];
    const char *shipped = rg_cli_shipped(shipped_buf, sizeof shipped_buf);
    rg__popts o = {.db = "regimen.db"};
    if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
        fputs(rg__usage, argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    const char *cmd = argv[1];
    static const char *const cmds[] = {"propose", "approve", "activate", "rollback", "list",
                                       "show", "shadow"};
    int known = 0;
    for (size_t i = 0; i < sizeof cmds / sizeof cmds[0]; i++)
        known |= !strcmp(cmd, cmds[i]);
    if (!known) {
        fprintf(stderr, "regimen protocols: unknown command '%s'\n%s", cmd, rg__usage);
        return 2;
    }
    int c = rg_cli_parse(rg__protocols_table, &o, argc, argv, 2, err, sizeof err);
    if (c == RG_CLI_HELP) {
        fputs(rg__usage, stdout);
        return 0;
    }
    if (c) {
        fputs(rg__usage, stderr);
        return 2;
    }
    int lists = !strcmp(cmd, "list");
    if (o.stop && strcmp(cmd, "shadow"))
        return rg__die2("--stop is for shadow");
    lists |= o.stop; /* (shadow --stop takes no VERSION) */
    if (!o.clinic || !*o.clinic)
        return rg__die2("needs --clinic NAME");
    if (!o.by && strcmp(cmd, "list") && strcmp(cmd, "show"))
        return rg__die2("needs --by PERSON (who does this, recorded with it)");
    if (o.by && !*o.by)
        return rg__die2("--by names a person: it is empty");
    if (o.at && strcmp(cmd, "activate"))
        return rg__die2("--at is for activate");
    if (optind != argc - !lists) {
        fprintf(stderr, "regimen protocols %s: %s\n", cmd,
                lists ? "takes no arguments"
                      : !strcmp(cmd, "propose") ? "needs one DIR" : "needs one VERSION");
        return 2;
    }
    rg_store *st = NULL;
    int rc = rg__open(&o, &st);
    if (rc)
        return rc;
    if (!strcmp(cmd, "propose"))
        rc = rg__propose(st, &o, argv[optind], shipped);
    else if (!strcmp(cmd, "shadow"))
        rc = rg__shadow(st, &o, o.stop ? NULL : argv[optind]);
    else if (lists)
        rc = rg__list(st, &o);
    else if (!strcmp(cmd, "show"))
        rc = rg__show(st, &o, argv[optind], shipped);
    else
        rc = rg__change(st, &o, cmd, argv[optind]);
    rg_store_close(st);
    return rc;
}
