/*
 * simulate_cmd.c - the commands that replay a timeline or a stored history
 * through the engine: `regimen simulate` (a timeline under a virtual clock,
 * its transitions printed as text, JSON Lines or HTML), `diff` (one history
 * under two protocol directories) and `sweep` (every stored patient
 * re-evaluated at one moment, with the rate). They call the engine the
 * service calls (rg_engine_advance_all, rg_sweep); rg_cli_simulate is also
 * explain's (check_cmd.c).
 */
#include "cli/cli.h"

#include "core/digest.h"
#include "core/event.h"
#include "core/feed.h"
#include "core/grow.h"
#include "core/rg.h"
#include "engine/diff.h"
#include "engine/engine.h"
#include "present/diff.h"
#include "engine/notify.h"
#include "engine/sweep.h"
#include "present/report.h"
#include "store/store.h"

#include <jansson.h>

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

/* Where simulate prints, the engine that knows each clinic's zone, and the
 * notifications of clinics with a policy (printed after the transitions at
 * or before their time). */
typedef struct rg__out {
    FILE *f;
    rg_engine *eng;
    rg_notify_set *ns;
    size_t next;
} rg__out;

static void rg__print_notifications(rg__out *o, rg_time before)
{
    for (; o->ns && o->next < o->ns->n && (before == RG_TIME_NONE ||
                                           o->ns->lines[o->next].at < before); o->next++) {
        const rg_notify_line *l = &o->ns->lines[o->next];
        json_t *j = rg_notify_line_json(l, rg_engine_zone(o->eng, l->clinic));
        json_dumpf(j, o->f, JSON_COMPACT | JSON_ENSURE_ASCII);
        fputc('\n', o->f);
        json_decref(j);
    }
}

static int rg__print_jsonl(void *ud, const rg_transition *t)
{
    rg__out *o = ud;
    rg__print_notifications(o, t->at);
    json_t *j = rg_transition_json(t, 0, rg_engine_zone(o->eng, t->clinic));
    json_dumpf(j, o->f, JSON_COMPACT | JSON_ENSURE_ASCII);
    fputc('\n', o->f);
    json_decref(j);
    return 0;
}

/* s, then spaces up to width and two more: printf's "%-*s  " at a fraction
 * of its cost (a line of text a transition). */
static void rg__column(FILE *f, const char *s, size_t width)
{
    static const char spaces[] = "                              "; /* 30: the widest + 2 */
    size_t n = strlen(s);
    fwrite(s, 1, n, f);
    fwrite(spaces, 1, (n < width ? width - n : 0) + 2, f);
}

/* The clinic's local time with its offset; a notification moved to the
 * next opening is said after the message. */
static int rg__print_text(void *ud, const rg_transition *t)
{
    rg__out *o = ud;
    const rg_zone *z = rg_engine_zone(o->eng, t->clinic);
    char at[RG_TIME_BUFSZ], later[RG_TIME_BUFSZ], patient[4 * RG_EVENT_MAX_ID + 1], rule[512];
    /* what protocols and events wrote, with control characters escaped:
     * a message cannot end the line, forge the next or drive the terminal;
     * "-" is the clinic's own patient (a system alert); the widths as the
     * header's (rg_cmd_simulate) */
    rg__column(o->f, rg_zone_display(z, t->at, at), 23);
    rg__column(o->f, RG_TRANSITION_STATE(t), 8);
    rg__column(o->f, t->clinic, 10);
    rg__column(o->f, *t->patient ? rg_printable(t->patient, patient, sizeof patient) : "-", 10);
    rg__column(o->f, rg_printable(t->rule, rule, sizeof rule), 26);
    rg__column(o->f, t->severity, 8);
    rg_fput_printable(o->f, t->message);
    if (t->notify_at != RG_TIME_NONE && t->notify_at != t->at)
        fprintf(o->f, " (notify %s)", rg_zone_display(z, t->notify_at, later));
    fputc('\n', o->f);
    return 0;
}

/* The text lines of a simulation on several threads, formatted as its
 * transitions are written (rg_sweep_opts.applied: while the workers
 * evaluate the next pages), printed at the end in the store's order (time,
 * then seq) with no read back of the transitions: the same bytes as
 * rg__print_text over rg_store_each_transition(st, 0, 1, ...) gives. For
 * diff (keep), what it compares of each transition instead: clinic,
 * patient, rule, severity and message, each ended by a NUL. */
typedef struct rg__line {
    rg_time at;
    int64_t seq;
    size_t off, len;
    int open;
} rg__line;

typedef struct rg__lines {
    rg__out out; /* out.f: a memory stream */
    char *text;
    size_t size;
    rg__line *v;
    size_t n, cap;
    int gap; /* a transition written past the hook (an evaluation-failed alert, written
              * with its rule's status): print from the store */
    int keep; /* diff's fields, not text */
    int unstored; /* the transitions went to the lines alone, not to the store
                   * (rg_sweep_opts.unstored): the lines are the only copy */
} rg__lines;

static int rg__line_add(void *ud, const rg_transition *t)
{
    rg__lines *ls = ud;
    if (ls->gap || t->seq != (int64_t)ls->n + 1) {
        ls->gap = 1;
        return RG_OK;
    }
    rg__line *v = rg_grow(ls->v, &ls->cap, ls->n, sizeof *v, 4096);
    if (!v)
        return RG_ENOMEM;
    ls->v = v;
    rg_transition r = *t; /* as the store gives it back: notify_at never before at */
    if (r.notify_at <= r.at)
        r.notify_at = r.at;
    long off = ftell(ls->out.f);
    if (ls->keep) {
        const char *f[] = {r.clinic, r.patient, r.rule, r.severity, r.message};
        for (int i = 0; i < 5; i++)
            fwrite(f[i], 1, strlen(f[i]) + 1, ls->out.f);
    } else {
        rg__print_text(&ls->out, &r);
    }
    long end = ftell(ls->out.f);
    if (off < 0 || end < off || ferror(ls->out.f))
        return RG_ENOMEM;
    ls->v[ls->n++] = (rg__line){r.at, r.seq, (size_t)off, (size_t)(end - off), r.open};
    return RG_OK;
}

static int rg__line_cmp(const void *a, const void *b)
{
    const rg__line *x = a, *y = b;
    return x->at != y->at ? (x->at < y->at ? -1 : 1) : (x->seq > y->seq) - (x->seq < y->seq);
}

static int rg__stop(void *ud, const rg_transition *t)
{
    (void)t;
    *(int *)ud = 1;
    return 1;
}

/* Whether the lines are all of st's transitions (none written past the
 * hook, none after the last; unstored: all there are): then they are
 * closed and sorted by time. */
static int rg__lines_whole(rg__lines *ls, rg_store *st)
{
    int more = 0;
    if (!ls->out.f || ls->gap ||
        (!ls->unstored &&
         (rg_store_each_transition(st, (int64_t)ls->n, 0, rg__stop, &more) < 0 || more)))
        return 0;
    int bad = fclose(ls->out.f);
    ls->out.f = NULL;
    if (bad)
        return 0;
    qsort(ls->v, ls->n, sizeof *ls->v, rg__line_cmp);
    return 1;
}

/* Prints the lines (rg__lines_whole) in time order. */
static void rg__lines_print(const rg__lines *ls, FILE *f)
{
    for (size_t i = 0; i < ls->n; i++)
        fwrite(ls->text + ls->v[i].off, 1, ls->v[i].len, f);
}

/* A diff source (rg_diff_source) over kept lines (rg__lines_whole), in the
 * order rg_store_each_transition(st, 0, 1, ...) gives. */
static int rg__lines_each(void *src, int (*fn)(void *ud, const rg_transition *t), void *ud)
{
    const rg__lines *ls = src;
    int rc = RG_OK;
    for (size_t i = 0; i < ls->n && rc == RG_OK; i++) {
        const char *f[5], *c = ls->text + ls->v[i].off;
        for (int k = 0; k < 5; k++, c += strlen(c) + 1)
            f[k] = c;
        rg_transition t = {.seq = ls->v[i].seq, .at = ls->v[i].at, .open = ls->v[i].open,
                           .clinic = f[0], .patient = f[1], .rule = f[2], .severity = f[3],
                           .message = f[4], .key = "", .protocol = "", .version = "",
                           .params = "{}", .evidence = "[]"};
        rc = fn(ud, &t);
    }
    return rc;
}

static void rg__lines_free(rg__lines *ls)
{
    if (ls->out.f)
        fclose(ls->out.f);
    free(ls->text);
    free(ls->v);
    memset(ls, 0, sizeof *ls);
}

/* Text from protocols on one report: continuation lines are indented, so a
 * protocol cannot make a line that looks like another clinic's report. */
/* The clinics the stored events name, for checking --clinic. */
typedef struct rg__clinic_names {
    char name[64][129];
    int n, more;
    char after_clinic[129], after_patient[129];
} rg__clinic_names;

static int rg__note_clinic(void *ud, const char *clinic, const char *patient)
{
    rg__clinic_names *c = ud;
    if (!c->n || strcmp(c->name[c->n - 1], clinic)) {
        if (c->n < 64)
            snprintf(c->name[c->n++], sizeof c->name[0], "%s", clinic);
        else
            c->more = 1;
    }
    snprintf(c->after_clinic, sizeof c->after_clinic, "%s", clinic);
    snprintf(c->after_patient, sizeof c->after_patient, "%s", patient);
    return 0;
}

/* Refuses a --clinic NAME=DIR that no stored event names: a misspelt name
 * would otherwise run that clinic on the default protocols, silently. */
static int rg__clinics_named(const rg_cli_opts *o, rg_store *st)
{
    static rg__clinic_names c;
    memset(&c, 0, sizeof c);
    while (c.n < 64 && rg_store_patients_page(st, c.after_clinic, c.after_patient, RG_TIME_NONE,
                                              512, rg__note_clinic, &c) > 0)
        ;
    for (int i = 0; i < o->nclinics; i++) {
        int found = 0;
        for (int j = 0; j < c.n && !found; j++)
            found = !strcmp(c.name[j], o->clinic_names[i]);
        if (found || c.more)
            continue;
        const char *names[64];
        char list[2048] = "";
        size_t len = 0;
        for (int j = 0; j < c.n; j++) {
            names[j] = c.name[j];
            len += (size_t)snprintf(list + len, len < sizeof list ? sizeof list - len : 0,
                                    "%s%s", j ? ", " : "", c.name[j]);
        }
        const char *name = o->clinic_names[i];
        const char *near = rg_suggest(name, names, (size_t)c.n);
        fprintf(stderr, "regimen: --clinic %s=%s: no event names the clinic '%s'%s%s%s; the "
                        "events name %s%s\n", name, o->clinic_dirs[i], name,
                near ? " (did you mean '" : "", near ? near : "", near ? "'?)" : "",
                c.n ? "the clinics " : "no clinic", list);
        return 2;
    }
    return 0;
}

/* The temporary store of a simulation on several threads (each worker opens
 * it, which an in-memory database does not allow), removed at exit. */
static char rg__sim_tmp[4][PATH_MAX];
static int rg__sim_ntmp;

static void rg__sim_cleanup(void)
{
    static const char *const ext[] = {"", "-wal", "-shm", "-journal"};
    for (int i = 0; i < rg__sim_ntmp; i++) {
        char f[sizeof rg__sim_tmp + 32];
        for (int k = 0; k < 4; k++) {
            snprintf(f, sizeof f, "%s/sim.db%s", rg__sim_tmp[i], ext[k]);
            unlink(f);
        }
        rmdir(rg__sim_tmp[i]);
    }
    rg__sim_ntmp = 0;
}

/* A simulation's store, events in, not evaluated yet (rg__sim_store). */
typedef struct rg__sim {
    rg_store *st;
    const char *db; /* o->db, or path: our own file for the workers */
    int jobs;
    rg__lines *lines; /* NULL, or the text lines to collect as the sweep writes */
    char path[PATH_MAX + 16];
} rg__sim;

/* Opens the store of a simulation and stores o->events in it, or, with
 * from (a simulation's store of the same events, not evaluated yet: diff's
 * other side), copies that store's pages. 0 or the exit code. */
static int rg__sim_store(rg_cli_opts *o, rg_store *from, FILE *devnull, rg__sim *sim,
                         int *ingest_rc)
{
    /* --jobs: patients over worker threads, as sweep does (runtime/engine/sweep.h):
     * their writes are applied in page order, so the output is the same */
    int jobs = o->jobs ? o->jobs : rg_sweep_default_jobs(), rc;
    const char *db = o->db;
    if (jobs > 1 && !strcmp(db, ":memory:")) {
        /* in memory still where there is a tmpfs (what :memory: would take),
         * if it has room for about 8 times the events file (a container's
         * /dev/shm is often 64 MiB) */
        const char *tmp = getenv("TMPDIR");
        struct stat est;
        struct statvfs vfs;
        if (access("/dev/shm", W_OK) == 0 && statvfs("/dev/shm", &vfs) == 0 &&
            (!o->events || !strcmp(o->events, "-") || stat(o->events, &est) != 0 ||
             (double)vfs.f_bavail * (double)vfs.f_frsize > 8.0 * (double)est.st_size))
            tmp = "/dev/shm";
        if (rg__sim_ntmp == 4)
            jobs = 1;
        else {
            snprintf(rg__sim_tmp[rg__sim_ntmp], sizeof rg__sim_tmp[0], "%s/regimen-sim-XXXXXX",
                     tmp && *tmp ? tmp : "/tmp");
            if (!mkdtemp(rg__sim_tmp[rg__sim_ntmp])) {
                jobs = 1; /* no room for a file: in memory, on this thread */
            } else {
                if (!rg__sim_ntmp)
                    atexit(rg__sim_cleanup);
                snprintf(sim->path, sizeof sim->path, "%s/sim.db", rg__sim_tmp[rg__sim_ntmp++]);
                db = sim->path;
            }
        }
    }
    rg_store *st = NULL;
    if (db != o->db) { /* our own file: no holder, no notices, not durable */
        char err[1024];
        rg_store_opts so = {.scratch = 1};
        rc = rg_store_open(&st, db, &so, err, sizeof err) ? 2 : 0;
        if (rc)
            fprintf(stderr, "regimen: %s\n", err);
    } else {
        rc = rg_cli_open_store(db, 0, "simulate",
                            "a simulation would write transitions on a virtual clock into its "
                            "live feed: simulate into another --db file, or in memory (no --db)",
                            &st);
    }
    if (rc)
        return rc;
    if (from) {
        if (rg_store_copy(from, st)) {
            fprintf(stderr, "regimen: cannot copy the stored events: %s\n", rg_store_errmsg(st));
            rg_store_close(st);
            return 2;
        }
    } else {
        rg_ingest_counts counts = {.skew = -1}; /* a simulation replays any dates */
        *ingest_rc = rg_cli_ingest_path(st, o->events, &counts, devnull ? devnull : stderr);
        if (*ingest_rc == 2) {
            rg_store_close(st);
            return 2;
        }
    }
    sim->st = st;
    sim->db = db;
    sim->jobs = jobs;
    return 0;
}

/* Advances every patient of sim's store to until: the engine into *engp.
 * 0 or the exit code (then the store is closed). */
static int rg__sim_run(rg_cli_opts *o, rg_time until, int quiet, rg__sim *sim, rg_engine **engp)
{
    char shipped_buf[PATH_MAX], default_dir[PATH_MAX + 16];
    static long errors;
    rg_store *st = sim->st;
    rg_engine *eng = NULL;
    const char *shipped = rg_cli_shipped(shipped_buf, sizeof shipped_buf);
    int rc;
    if ((rc = rg__clinics_named(o, st)))
        goto fail;
    if ((rc = rg_cli_engine_for(o, st, shipped, default_dir, sizeof default_dir, &errors, &eng)))
        goto fail;
    long n;
    if (sim->jobs > 1 && strcmp(sim->db, ":memory:")) {
        char dir2[PATH_MAX + 16];
        rg_cli_sweep_ctx ctx = {.o = o};
        if ((rc = rg_cli_engine_opts(o, shipped, dir2, sizeof dir2, &ctx.eo)))
            goto fail;
        json_object_seed(0); /* before any thread makes a JSON object */
        rg_sweep_opts so = {.db = sim->db, .at = until, .advance = 1, .jobs = sim->jobs,
                            .make_engine = rg_cli_sweep_engine, .ud = &ctx};
        /* the lines are collected only when the sweep writes every
         * transition the store will have (none before it) */
        int any = 0;
        if (sim->lines && rg_store_each_transition(st, 0, 0, rg__stop, &any) >= 0 && !any &&
            (sim->lines->out.f = open_memstream(&sim->lines->text, &sim->lines->size))) {
            sim->lines->out.eng = eng;
            so.applied = rg__line_add;
            so.applied_ud = sim->lines;
            /* our own scratch store (no --db): the lines are all the
             * output reads of the transitions, so they are not stored */
            so.unstored = sim->lines->unstored = sim->db != o->db;
        }
        rg_engine_stats total = {0};
        n = rg_sweep(st, &so, &total);
        rg_engine_stats_merge(eng, &total);
    } else {
        n = rg_engine_advance_all(eng, RG_TIME_NONE, until);
    }
    if (n < 0) {
        fprintf(stderr, "regimen: simulation failed: %s (%s)\n", rg_strerror((int)n),
                rg_store_errmsg(st));
        rc = 2;
        goto fail;
    }
    if (!quiet) {
        const rg_engine_stats *s = rg_engine_stats_get(eng);
        fprintf(stderr, "simulated %ld patients: %lld steps, %lld alerts opened, %lld resolved, "
                        "%lld evaluation errors; %lld protocol evaluations, %lld rule checks "
                        "(%.1f per patient)\n", n, (long long)s->steps, (long long)s->opened,
                (long long)s->resolved, (long long)s->errors, (long long)s->protocol_calls,
                (long long)s->rule_checks, n > 0 ? (double)s->rule_checks / (double)n : 0.0);
    }
    *engp = eng;
    return 0;
fail:
    rg_engine_free(eng);
    rg_store_close(st);
    sim->st = NULL;
    return rc;
}

/* rg_cli_simulate; lines: NULL, or where to collect the text lines (used
 * when lines->out.f is set after it) */
static int rg__simulate(rg_cli_opts *o, rg_time until, int quiet, rg__lines *lines,
                        rg_store **stp, rg_engine **engp, int *ingest_rc)
{
    FILE *devnull = quiet ? fopen("/dev/null", "w") : NULL;
    rg__sim sim = {.lines = lines};
    int rc = rg__sim_store(o, NULL, devnull, &sim, ingest_rc);
    if (devnull)
        fclose(devnull);
    if (!rc)
        rc = rg__sim_run(o, until, quiet, &sim, engp);
    if (!rc)
        *stp = sim.st;
    return rc;
}

int rg_cli_simulate(rg_cli_opts *o, rg_time until, int quiet, rg_store **stp, rg_engine **engp,
                    int *ingest_rc)
{
    return rg__simulate(o, until, quiet, NULL, stp, engp, ingest_rc);
}

int rg_cmd_simulate(int argc, char **argv)
{
    rg_cli_opts o = {.db = ":memory:", .format = "text"};
    rg_store *st = NULL;
    rg_engine *eng = NULL;
    rg_time until;
    int ingest_rc = 0, rc = rg_cli_parse_common(argc, argv, &o);
    if (rc)
        return rc;
    if (!o.events || optind != argc)
        return rg_cli_die("%s", "simulate needs --events FILE and --until TIME (see regimen --help)");
    if ((rc = rg_cli_until(&o, "simulate needs --until TIME", &until)))
        return rc;
    if (strcmp(o.format, "text") && strcmp(o.format, "jsonl") && strcmp(o.format, "html"))
        return rg_cli_die("--format must be text, jsonl or html, not '%s'", o.format);
    if (o.acks && strcmp(o.format, "jsonl"))
        return rg_cli_die("--acks goes with --format jsonl (the notification lines), not '%s'",
                       o.format);
    rg__lines lines = {0};
    int text = !strcmp(o.format, "text");
    if ((rc = rg__simulate(&o, until, 0, text ? &lines : NULL, &st, &eng, &ingest_rc))) {
        rg__lines_free(&lines);
        return rc;
    }
    if (!strcmp(o.format, "html")) {
        /* the clinics' zone when they share one, else UTC */
        const rg_zone *z = o.nclinics ? rg_engine_zone(eng, o.clinic_names[0]) : NULL;
        for (int i = 1; i < o.nclinics; i++)
            if (rg_engine_zone(eng, o.clinic_names[i]) != z)
                z = NULL;
        rc = rg_report_html(st, stdout, o.events, until, z) ? 2 : 0;
    } else {
        if (!strcmp(o.format, "text"))
            printf("%-23s  %-8s  %-10s  %-10s  %-26s  %-8s  %s\n", "AT", "STATE", "CLINIC",
                   "PATIENT", "RULE", "SEVERITY", "MESSAGE");
        rg_notify_set ns = {0};
        rg__out out = {stdout, eng, NULL, 0};
        rg_notify_acks acks = {0};
        char err[600];
        if (o.acks && rg_notify_acks_read(&acks, o.acks, err, sizeof err)) {
            rg_engine_free(eng);
            rg_store_close(st);
            return rg_cli_die("%s", err);
        }
        if (!strcmp(o.format, "jsonl")) {
            int nrc = rg_notify_set_build(&ns, eng, st, acks.a, acks.n, until);
            rg_notify_acks_free(&acks);
            if (nrc)
                return rg_cli_die("%s", "simulate: out of memory planning notifications");
            out.ns = &ns;
        }
        rg_notify_acks_free(&acks);
        if (rg__lines_whole(&lines, st))
            rg__lines_print(&lines, stdout);
        else if (lines.unstored) /* (the store has not got them) */
            rc = rg_cli_die("%s", "simulate: out of memory collecting the transitions");
        else
            rg_store_each_transition(st, 0, 1, text ? rg__print_text : rg__print_jsonl, &out);
        rg__print_notifications(&out, RG_TIME_NONE);
        rg_notify_set_free(&ns);
    }
    if (!rc)
        rc = ingest_rc || rg_engine_stats_get(eng)->errors ? 1 : 0;
    rg__lines_free(&lines);
    rg_engine_free(eng);
    rg_store_close(st);
    return rc;
}

int rg_cmd_diff(int argc, char **argv)
{
    rg_cli_opts o = {.db = ":memory:"};
    rg_store *st[2] = {NULL, NULL};
    rg_engine *eng[2] = {NULL, NULL};
    rg_time until;
    int ingest_rc = 0, rc = rg_cli_parse_common(argc, argv, &o);
    if (rc)
        return rc;
    if (!o.events || optind != argc - 2)
        return rg_cli_die("%s", "diff needs --events FILE --until TIME OLD_DIR NEW_DIR");
    if ((rc = rg_cli_until(&o, "diff needs --until TIME", &until)))
        return rc;
    if (o.nclinics)
        return rg_cli_die("%s", "diff compares two protocol directories for every clinic; "
                             "--clinic is not used");
    /* the events are parsed and stored once: the new side starts from a
     * copy of the old side's store before either is evaluated */
    rg__sim sim[2] = {{0}, {0}};
    o.db = ":memory:";
    FILE *devnull = fopen("/dev/null", "w");
    for (int i = 0; i < 2 && !rc; i++)
        rc = rg__sim_store(&o, i ? sim[0].st : NULL, devnull, &sim[i], &ingest_rc);
    if (devnull)
        fclose(devnull);
    rg__lines kept[2] = {{.keep = 1}, {.keep = 1}};
    for (int i = 0; i < 2 && !rc; i++) {
        o.protocols = argv[optind + i];
        sim[i].lines = &kept[i];
        rc = rg__sim_run(&o, until, 1, &sim[i], &eng[i]);
        st[i] = sim[i].st;
    }
    if (rc) /* (a store whose run failed is closed already) */
        for (int i = 0; i < 2; i++)
            if (sim[i].st != st[i])
                rg_store_close(sim[i].st);
    for (int i = 0; i < 2 && !rc; i++) {
        long errors = rg_engine_stats_get(eng[i])->errors;
        if (errors) { /* a comparison with a side that did not run right would mislead */
            fprintf(stderr, "regimen: diff: %s (%s) had %ld evaluation error%s (above); fix "
                    "them, then compare\n", i ? "NEW" : "OLD", argv[optind + i], errors,
                    errors == 1 ? "" : "s");
            rc = 2;
        }
    }
    if (!rc && rg__lines_whole(&kept[0], st[0]) && rg__lines_whole(&kept[1], st[1])) {
        /* each side's transitions as kept while its sweep wrote them */
        rg_diff d;
        long n = rg_diff_compute(rg__lines_each, &kept[0], rg__lines_each, &kept[1], &d);
        if (n >= 0)
            rg_diff_print(&d, "OLD", "NEW", eng[1], stdout);
        rg_diff_free(&d);
        rc = n < 0 ? 2 : n > 0 ? 1 : 0;
    } else if (!rc && (kept[0].unstored || kept[1].unstored)) { /* (not in the stores) */
        rc = rg_cli_die("%s", "diff: out of memory collecting the transitions");
    } else if (!rc) {
        long d = rg_diff_stores(st[0], st[1], "OLD", "NEW", eng[1], stdout);
        rc = d < 0 ? 2 : d > 0 ? 1 : 0;
    }
    for (int i = 0; i < 2; i++) {
        rg__lines_free(&kept[i]);
        rg_engine_free(eng[i]);
        rg_store_close(st[i]);
    }
    return rc;
}

/* sweep --from-memory: the history cache's cap, far above any cohort the
 * benchmark sweeps from memory (an entry evicted is read from the store,
 * and the report's count of histories found in the cache says so). */
#define RG__SWEEP_CACHE ((size_t)4 << 30)

int rg_cmd_sweep(int argc, char **argv)
{
    rg_cli_opts o = {.db = "regimen.db"};
    char shipped_buf[PATH_MAX], default_dir[PATH_MAX + 16], err[512];
    rg_store *st = NULL;
    rg_engine *eng = NULL;
    rg_time at;
    int rc = rg_cli_parse_common(argc, argv, &o);
    if (rc)
        return rc;
    if (!o.until || optind != argc)
        return rg_cli_die("%s", "sweep needs --at TIME (see regimen --help)");
    if (rg_time_parse(o.until, strlen(o.until), &at, NULL, err, sizeof err))
        return rg_cli_die("--at: %s", err);
    if (!rg_store_is_server(o.db) && access(o.db, F_OK) != 0)
        return rg_cli_die("no database at %s", o.db);
    if ((rc = rg_cli_open_store(o.db, 1, "sweep",
                             "the service re-evaluates a clinic's patients itself when its "
                             "protocols change (on SIGHUP, or a changed .lua file); stop it "
                             "to sweep at another moment", &st)))
        return rc;
    const char *shipped = rg_cli_shipped(shipped_buf, sizeof shipped_buf);
    rg_cli_sweep_ctx ctx = {.o = &o};
    if ((rc = rg_cli_engine_opts(&o, shipped, default_dir, sizeof default_dir, &ctx.eo)))
        goto out;
    if (o.from_memory && o.jobs > 1) {
        rc = rg_cli_die("%s", "--from-memory sweeps on one core (its engine's history cache): "
                              "give --jobs 1 or no --jobs");
        goto out;
    }
    int jobs = o.from_memory ? 1 : o.jobs ? o.jobs : rg_sweep_default_jobs();
    rg_engine_stats total = {0};
    const rg_engine_stats *s = &total;
    int64_t t0 = rg_monotonic_ms();
    long n;
    double warm = -1; /* --from-memory: seconds taken to read the histories in, untimed */
    if (jobs <= 1) { /* the plain path: this thread evaluates and writes */
        if (o.from_memory) /* every history kept: the cap only guards against a runaway */
            ctx.eo.history_cache_bytes = RG__SWEEP_CACHE;
        if ((rc = rg_cli_engine_make(&o, &ctx.eo, st, &eng)))
            goto out;
        if (o.from_memory) {
            long k = rg_engine_cache_all(eng);
            if (k < 0) {
                fprintf(stderr, "regimen: sweep --from-memory: reading the histories failed: "
                                "%s (%s)\n", rg_strerror((int)k), rg_store_errmsg(st));
                rc = 2;
                goto out;
            }
            warm = (double)(rg_monotonic_ms() - t0) / 1000.0;
            t0 = rg_monotonic_ms();
        }
        n = rg_engine_reevaluate_all(eng, at);
        s = rg_engine_stats_get(eng);
    } else {
        json_object_seed(0); /* before any thread makes a JSON object */
        rg_sweep_opts so = {.db = o.db, .at = at, .jobs = jobs, .make_engine = rg_cli_sweep_engine,
                            .ud = &ctx};
        n = rg_sweep(st, &so, &total);
    }
    double secs = (double)(rg_monotonic_ms() - t0) / 1000.0;
    if (n < 0) {
        fprintf(stderr, "regimen: sweep failed: %s (%s)\n", rg_strerror((int)n), rg_store_errmsg(st));
        rc = 2;
        goto out;
    }
    if (secs <= 0)
        secs = 0.001;
    fprintf(stderr, "swept %ld patients (%lld events) in %.3f s: %.0f patients/s, %.0f events/s; "
                    "%lld alerts opened, %lld resolved, %lld evaluation errors; %d job%s\n",
            n, (long long)s->events, secs, (double)n / secs, (double)s->events / secs,
            (long long)s->opened, (long long)s->resolved, (long long)s->errors, jobs,
            jobs == 1 ? "" : "s");
    if (warm >= 0) { /* what the sweep above read from memory, and what it cost before */
        rg_hcache_stats hs;
        rg_engine_cache_stats(eng, &hs);
        fprintf(stderr, "from memory: %lld of %ld patients' histories from the history cache "
                        "(%.1f MB), read into it in %.3f s before the timed sweep\n",
                (long long)hs.hits, n, (double)hs.bytes / 1e6, warm);
    }
    rc = s->errors ? 1 : 0;
out:
    rg_engine_free(eng);
    rg_store_close(st);
    return rc;
}

