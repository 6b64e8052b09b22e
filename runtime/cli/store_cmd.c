/*
 * store_cmd.c - the commands that put events into the store or check what it
 * holds: `regimen ingest` (JSON Lines), `import-fhir` (FHIR R4 resources
 * through core/fhir.c), `rejected` (the lines refused, with their reasons)
 * and `verify` (every stored event against its digest, store/verify.c).
 * They run beside a service on the same database: ingest and import-fhir
 * tell it of each commit (cli.c, rg_cli_open_store).
 */
#include "cli/cli.h"

#include "core/event.h"
#include "core/fhir.h"
#include "core/rg.h"
#include "engine/clinic.h"
#include "store/ingest.h"
#include "store/store.h"

#include <jansson.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* ---- ingest into a database that does not exist yet: written whole or not at
 * all. The events go into a new file beside it (NAME.ingest-XXXXXX), which nobody
 * else sees, in one transaction with its journal in memory and no syncs
 * (rg_store_opts.load); once complete it is turned to WAL (on close), synced and linked
 * under its name, which fails rather than overwrite a database another program
 * made meanwhile. On any failure, or SIGINT, SIGTERM, SIGHUP, SIGQUIT or SIGXFSZ
 * (unless ignored), the new file is removed: no half-written database is left
 * under any name. Only for a file as input, which can be read again: a stream
 * (standard input, a pipe) is stored batch by batch. */

static char rg__loading[PATH_MAX + 32];     /* the new file while it is written */
static char rg__loading_wal[PATH_MAX + 40]; /* and its WAL, while it is closed */

static void rg__loading_signal(int sig)
{
    unlink(rg__loading);
    unlink(rg__loading_wal);
    signal(sig, SIG_DFL);
    raise(sig);
}

/* The signals that remove the new file. One the caller ignores (nohup's
 * SIGHUP, a background job's SIGINT) stays ignored: the load goes on. */
static const int rg__loading_sigs[] = {SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGXFSZ};
#define RG__NSIGS ((int)(sizeof rg__loading_sigs / sizeof rg__loading_sigs[0]))

static void rg__loading_block(int block)
{
    sigset_t set;
    sigemptyset(&set);
    for (int i = 0; i < RG__NSIGS; i++)
        sigaddset(&set, rg__loading_sigs[i]);
    sigprocmask(block ? SIG_BLOCK : SIG_UNBLOCK, &set, NULL);
}

/* Puts the complete file under its name, never over a database another program
 * made meanwhile: link(), or on a file system without hard links an exclusive
 * rename. */
static int rg__publish(const char *from, const char *to)
{
    if (link(from, to) == 0)
        return 0;
    if (errno != EPERM && errno != ENOTSUP && errno != EOPNOTSUPP && errno != ENOSYS)
        return -1;
    return renameat2(AT_FDCWD, from, AT_FDCWD, to, RENAME_NOREPLACE);
}

/* 0 when path (a directory if dir) reached the disk. */
static int rg__sync_path(const char *path, int dir)
{
    int fd = open(path, dir ? O_RDONLY | O_DIRECTORY : O_RDWR);
    int rc = fd < 0 || fsync(fd) != 0 ? -1 : 0;
    if (fd >= 0)
        close(fd);
    return rc;
}

/* 1 when db names nothing (not even a dangling symbolic link, which SQLite
 * would follow), nor does the journal or WAL of a database. */
static int rg__db_absent(const char *db)
{
    char side[PATH_MAX + 16];
    struct stat sb;
    if (rg_store_is_server(db) || !strcmp(db, ":memory:") || !*db || lstat(db, &sb) == 0 ||
        errno != ENOENT)
        return 0;
    const char *suffix[] = {"-wal", "-journal"};
    for (int i = 0; i < 2; i++)
        if (snprintf(side, sizeof side, "%s%s", db, suffix[i]) >= (int)sizeof side ||
            lstat(side, &sb) == 0)
            return 0;
    return 1;
}

/* While the new file is written, its pages start on their way to the disk
 * every 100 ms (sync_file_range starts the writeback and waits for nothing;
 * SQLite writes them with synchronous=OFF), so the fsync before it takes its
 * name finds little left to write. fd is the file's own, kept open until the
 * store is closed: closing a descriptor of a file drops every POSIX lock this
 * process holds on it, SQLite's included. */
typedef struct rg__writeback {
    int fd, stop;
    pthread_mutex_t mu;
    pthread_cond_t cv;
} rg__writeback;

static void *rg__writeback_run(void *arg)
{
    rg__writeback *w = arg;
    pthread_mutex_lock(&w->mu);
    while (!w->stop) {
        struct timespec until;
        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_nsec += 100 * 1000000L;
        if (until.tv_nsec >= 1000000000L) {
            until.tv_sec++;
            until.tv_nsec -= 1000000000L;
        }
        if (pthread_cond_timedwait(&w->cv, &w->mu, &until) != 0 && !w->stop)
            sync_file_range(w->fd, 0, 0, SYNC_FILE_RANGE_WRITE); /* a failure: the fsync tells */
    }
    pthread_mutex_unlock(&w->mu);
    return NULL;
}

static int rg__ingest_new(const rg_cli_opts *o, const char *file)
{
    char err[1024], dir[PATH_MAX + 32];
    if (snprintf(rg__loading, sizeof rg__loading, "%s.ingest-XXXXXX", o->db) >=
        (int)sizeof rg__loading)
        return rg_cli_die("%s: the name is too long", o->db);
    rg__loading_block(1); /* no file without the handlers that remove it */
    int fd = mkstemp(rg__loading); /* 0600: patient data, the owner's alone */
    if (fd < 0) {
        rg__loading_block(0);
        fprintf(stderr, "regimen: cannot create database %s: %s\n", o->db, strerror(errno));
        return 2;
    }
    rg__writeback wb = {.fd = fd};
    pthread_t wbt;
    pthread_mutex_init(&wb.mu, NULL);
    pthread_cond_init(&wb.cv, NULL);
    int wb_on = pthread_create(&wbt, NULL, rg__writeback_run, &wb) == 0;
    snprintf(rg__loading_wal, sizeof rg__loading_wal, "%s-wal", rg__loading);
    struct sigaction sa = {.sa_handler = rg__loading_signal}, old[RG__NSIGS];
    for (int i = 0; i < RG__NSIGS; i++)
        if (sigaction(rg__loading_sigs[i], NULL, &old[i]) == 0 && old[i].sa_handler != SIG_IGN)
            sigaction(rg__loading_sigs[i], &sa, NULL);
    rg__loading_block(0);
    rg_store *st;
    rg_store_opts so = {.bulk = 1, .load = 1};
    int rc = 2;
    /* the first lines are read and validated while the new file gets its
     * schema (all the migrations from version 0): both on the critical path
     * before, now side by side */
    FILE *f = fopen(file, "r");
    rg_ingest_reader *r = f ? rg_ingest_start(f) : NULL;
    if (!f) {
        fprintf(stderr, "regimen: cannot read %s: %s\n", file, strerror(errno));
    } else if (rg_store_open(&st, rg__loading, &so, err, sizeof err) != RG_OK) {
        rg_ingest_stop(r);
        fprintf(stderr, "regimen: %s\n", err);
    } else {
        rg_ingest_counts counts = {.skew = o->future_skew, .whole = 1};
        rc = rg_cli_ingest_started(st, r, file, &counts, stdout);
        rg_store_close(st); /* turns it to WAL */
    }
    if (f)
        fclose(f);
    pthread_mutex_lock(&wb.mu);
    wb.stop = 1;
    pthread_cond_signal(&wb.cv);
    pthread_mutex_unlock(&wb.mu);
    if (wb_on)
        pthread_join(wbt, NULL);
    pthread_cond_destroy(&wb.cv);
    pthread_mutex_destroy(&wb.mu);
    close(fd); /* the store is closed: no lock of its own goes with it */
    snprintf(dir, sizeof dir, "%s", o->db);
    char *slash = strrchr(dir, '/');
    if (slash)
        slash[1] = '\0';
    else
        snprintf(dir, sizeof dir, ".");
    rg__loading_block(1); /* from here on it is complete: published whole, or removed */
    if (rc != 2 && (rg__sync_path(rg__loading, 0) != 0 || rg__publish(rg__loading, o->db) != 0)) {
        fprintf(stderr, "regimen: cannot store %s: %s\n", o->db,
                errno == EEXIST ? "another program created it meanwhile" : strerror(errno));
        rc = 2;
    }
    unlink(rg__loading);
    if (rc != 2 && rg__sync_path(dir, 1) != 0) {
        fprintf(stderr, "regimen: %s: cannot sync its directory: %s\n", o->db, strerror(errno));
        rc = 2;
    }
    for (int i = 0; i < RG__NSIGS; i++)
        sigaction(rg__loading_sigs[i], &old[i], NULL);
    rg__loading_block(0);
    if (rc == 2 && access(o->db, F_OK) != 0)
        fprintf(stderr, "regimen: %s was not created (a new database is stored whole or not at "
                "all)\n", o->db);
    return rc;
}

int rg_cmd_ingest(int argc, char **argv)
{
    rg_cli_opts o = {.db = "regimen.db"};
    rg_store *st;
    int rc = rg_cli_parse_common(argc, argv, &o);
    if (rc)
        return rc;
    if (optind != argc - 1)
        return rg_cli_die("%s", "ingest needs exactly one FILE (or - for standard input)");
    /* the whole-or-nothing load only from a file, which can be read again: a
     * stream's lines are stored batch by batch, as they come */
    struct stat in;
    if (rg__db_absent(o.db) && stat(argv[optind], &in) == 0 && !S_ISFIFO(in.st_mode) &&
        !S_ISSOCK(in.st_mode) && !S_ISCHR(in.st_mode))
        return rg__ingest_new(&o, argv[optind]);
    if ((rc = rg_cli_open_store(o.db, 3, NULL, NULL, &st)))
        return rc;
    rg_ingest_counts counts = {.skew = o.future_skew};
    rc = rg_cli_ingest_path(st, argv[optind], &counts, stdout);
    rg_store_close(st);
    /* not silent: say who evaluates them, and when */
    int told_errno;
    const char *told = rg_cli_told(&told_errno);
    if (told[0] && !told_errno)
        fprintf(stderr, "regimen: %s was told of the stored events and evaluates them\n",
                told);
    else if (told[0])
        fprintf(stderr, "regimen: %s could not be told of the stored events (%s); it evaluates "
                "them within a minute\n", told, strerror(told_errno));
    return rc;
}

/* One line per entry, then the counts and the unmapped resources by type. */
static void rg__fhir_report(const rg_fhir_import *im, json_t *reports, const char *source,
                            const rg_ingest_counts *c, FILE *out)
{
    size_t i, unmapped = 0, context = 0;
    json_t *r, *bytype = json_object();
    json_array_foreach(reports, i, r) {
        const char *status = json_string_value(json_object_get(r, "status"));
        const char *type = json_string_value(json_object_get(r, "resourceType"));
        const char *id = json_string_value(json_object_get(r, "id"));
        const char *why = json_string_value(json_object_get(r, "reason"));
        const char *loc = json_string_value(json_object_get(r, "location"));
        json_t *evs = json_object_get(r, "events");
        fprintf(out, im->bundle ? "%s: entry[%lld] %s/%s: %s" : "%s:%lld: %s/%s: %s", source,
                (long long)json_integer_value(json_object_get(r, im->bundle ? "entry" : "line")),
                type ? type : "?", id ? id : "?", status);
        size_t k;
        json_t *ev;
        json_array_foreach(evs, k, ev) {
            const char *evwhy = json_string_value(json_object_get(ev, "reason"));
            fprintf(out, "%s%s", k ? ", " : " ", json_string_value(json_object_get(ev, "id")));
            if (json_object_get(ev, "status") && strcmp(status, json_string_value(
                                                         json_object_get(ev, "status"))))
                fprintf(out, " (%s)", json_string_value(json_object_get(ev, "status")));
            if (evwhy)
                fprintf(out, " [field '%s': %s]", json_string_value(json_object_get(ev, "field")),
                        evwhy);
            else if (json_object_get(ev, "warning"))
                fprintf(out, " [%s]", json_string_value(json_object_get(ev, "warning")));
        }
        if (loc)
            fprintf(out, " at %s", loc);
        if (why)
            fprintf(out, ": %s", why);
        fputc('\n', out);
        if (!strcmp(status, "unmapped")) {
            unmapped++;
            json_t *ids = json_object_get(bytype, type ? type : "?");
            if (!ids)
                json_object_set_new(bytype, type ? type : "?", ids = json_array());
            json_array_append_new(ids, json_string(id ? id : "?"));
        }
        context += !strcmp(status, "context");
    }
    fprintf(out, "stored %ld, duplicates %ld, conflicts %ld, rejected %ld, unmapped %zu, "
            "context %zu, corrected %ld\n", c->stored, c->duplicates, c->conflicts, c->rejected,
            unmapped, context, c->corrected);
    const char *type;
    json_t *ids;
    json_object_foreach(bytype, type, ids) {
        fprintf(out, "unmapped %s: %zu (", type, json_array_size(ids));
        for (size_t k = 0; k < json_array_size(ids) && k < 20; k++)
            fprintf(out, "%s%s", k ? ", " : "", json_string_value(json_array_get(ids, k)));
        fprintf(out, "%s)\n", json_array_size(ids) > 20 ? ", ..." : "");
    }
    json_decref(bytype);
}

/* import-fhir's options: --clinic NAME[=DIR] names the events' clinic. */
typedef struct rg__fhir_opts {
    const char *db, *dir;
    char name[RG_EVENT_MAX_CLINIC + 1];
    int print;
    rg_limits limits; /* fhir.map runs under the evaluation limits */
} rg__fhir_opts;

static int rg__fhir_clinic(void *conf, const rg_cli_opt *opt, const char *arg, char *err,
                           size_t errlen)
{
    rg__fhir_opts *o = conf;
    const char *eq = strchr(arg, '=');
    size_t n = eq ? (size_t)(eq - arg) : strlen(arg);
    (void)opt;
    if (!n || n > RG_EVENT_MAX_CLINIC || (eq && !eq[1]))
        return rg_fail(err, errlen, RG_EINVAL, "--clinic expects NAME or NAME=DIR, got '%s'",
                       arg);
    snprintf(o->name, sizeof o->name, "%.*s", (int)n, arg);
    o->dir = eq ? eq + 1 : NULL;
    return RG_OK;
}

#define RG__F(f) offsetof(rg__fhir_opts, f)
static const rg_cli_opt rg__fhir_table[] = {
    {"db", 0, 1, rg_cli_str, RG__F(db)},
    RG_CLI_LIMITS(RG__F(limits)),
    {"clinic", 0, 1, rg__fhir_clinic, 0},
    {"print", 0, 0, rg_cli_flag, RG__F(print)},
    {"dry-run", 0, 0, rg_cli_flag, RG__F(print)},
    {"help", 'h', 0, rg_cli_help_opt, 0},
    {NULL, 0, 0, NULL, 0},
};

int rg_cmd_import_fhir(int argc, char **argv)
{
    rg__fhir_opts o = {.db = "regimen.db", .name = "default", .limits = RG_LIMITS_DEFAULT};
    char err[4096], shipped_buf[PATH_MAX];
    int rc = rg_cli_parse(rg__fhir_table, &o, argc, argv, 1, err, sizeof err);
    if (rc == RG_CLI_HELP)
        return rg_cli_help("import-fhir") ? 2 : 0;
    if (rc == RG_EINVAL)
        return rg_cli_die("%s", err);
    if (rc)
        return 2;
    if (optind != argc - 1)
        return rg_cli_die("%s", "import-fhir needs exactly one FILE (or - for standard input)");
    const char *path = argv[optind], *source = strcmp(path, "-") ? path : "<stdin>";
    size_t len;
    char *text = rg_slurp(path, &len);
    if (!text) {
        fprintf(stderr, "regimen: cannot read %s: %s\n", path, strerror(errno));
        return 2;
    }
    rg_clinic *clinic = NULL;
    rg_fhir_opts fo = {.clinic = o.name};
    if (o.dir) {
        if (rg_clinic_load(&clinic, o.name, o.dir, rg_cli_shipped(shipped_buf, sizeof shipped_buf),
                           NULL, &o.limits, err, sizeof err)) {
            fprintf(stderr, "regimen: %s\n", err);
            free(text);
            return 2;
        }
        rg_clinic_fhir_opts(clinic, &fo);
    }
    rg_fhir_import im;
    rc = rg_fhir_read(&im, text, len, &fo, err, sizeof err);
    free(text);
    if (rc) {
        fprintf(stderr, "regimen: %s: %s\n", source, err);
        rg_clinic_free(clinic);
        return 2;
    }
    json_t *reports = json_array();
    rg_ingest_counts counts = {0}; /* events dated ahead of the clock: flagged */
    if (o.print) {
        for (size_t i = 0; i < im.n; i++) {
            size_t k;
            json_t *ev;
            json_array_foreach(im.v[i].events, k, ev) {
                char *line = json_dumps(ev, JSON_COMPACT | JSON_SORT_KEYS | JSON_REAL_PRECISION(12));
                if (line)
                    puts(line);
                free(line);
            }
            counts.rejected += im.v[i].kind == RG_FHIR_REJECTED;
            json_array_append_new(reports, rg_fhir_entry_json(&im, &im.v[i], NULL));
        }
        rg__fhir_report(&im, reports, source, &counts, stderr);
        rc = counts.rejected ? 1 : 0;
    } else {
        rg_store *st;
        if ((rc = rg_cli_open_store(o.db, 2, NULL, NULL, &st)) == 0) {
            char label[PATH_MAX + 8];
            snprintf(label, sizeof label, "fhir %s", source);
            if (rg_ingest_fhir(st, &im, label, &counts, reports, err, sizeof err)) {
                fprintf(stderr, "regimen: %s\n", err);
                rc = 2;
            } else {
                rg__fhir_report(&im, reports, source, &counts, stdout);
                rc = counts.rejected || counts.conflicts ? 1 : 0;
            }
            rg_store_close(st);
        }
    }
    json_decref(reports);
    rg_fhir_free(&im);
    rg_clinic_free(clinic);
    return rc;
}

static int rg__print_rejected(void *ud, const rg_rejected *r)
{
    char at[RG_TIME_BUFSZ];
    (*(long *)ud)++;
    printf("%s:%ld: %s%s%s%s\n    received %s; the line: %.200s%s\n", r->source, r->line,
           *r->field ? "field '" : "", r->field, *r->field ? "': " : "", r->reason,
           rg_time_format(r->received, at), r->raw, strlen(r->raw) > 200 ? "..." : "");
    return 0;
}

int rg_cmd_rejected(int argc, char **argv)
{
    rg_cli_opts o = {.db = "regimen.db"};
    rg_store *st;
    int rc = rg_cli_parse_common(argc, argv, &o);
    if (rc)
        return rc;
    if (!rg_store_is_server(o.db) && access(o.db, F_OK) != 0)
        return rg_cli_die("no database at %s", o.db);
    if ((rc = rg_cli_open_store(o.db, 0, NULL, NULL, &st)))
        return rc;
    long n = 0;
    if (rg_store_each_rejected(st, rg__print_rejected, &n)) {
        fprintf(stderr, "regimen: %s\n", rg_store_errmsg(st));
        rc = 2;
    }
    if (!rc)
        printf("%ld rejected line%s\n", n, n == 1 ? "" : "s");
    rg_store_close(st);
    return rc;
}

/* regimen verify: is every stored event as it was stored (verify.c)? */
int rg_cmd_verify(int argc, char **argv)
{
    rg_cli_opts o = {.db = "regimen.db"};
    rg_store *st;
    int rc = rg_cli_parse_common(argc, argv, &o);
    if (rc)
        return rc;
    if (optind != argc)
        return rg_cli_die("%s", "verify takes no arguments but --db PATH");
    if (!rg_store_is_server(o.db) && access(o.db, F_OK) != 0)
        return rg_cli_die("no database at %s", o.db);
    if ((rc = rg_cli_open_store(o.db, 0, NULL, NULL, &st)))
        return rc;
    int64_t checked = 0, bad = 0;
    if (rg_store_verify(st, stdout, &checked, &bad)) {
        fprintf(stderr, "regimen: %s\n", rg_store_errmsg(st));
        rc = 2;
    } else {
        printf("%lld event version%s checked: ", (long long)checked, checked == 1 ? "" : "s");
        if (bad)
            printf("%lld damaged\n", (long long)bad);
        else
            printf("all intact\n");
        rc = bad ? 1 : 0;
    }
    rg_store_close(st);
    return rc;
}

