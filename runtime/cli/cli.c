/*
 * cli.c - what the `regimen` commands share (cli.h): the one option parser,
 * a table of rows read by getopt_long, with the setters the rows use; the
 * common options; the store as a command opens it (beside a running service,
 * holder.h) and the engine as the command line makes it.
 *
 * Beside a running service: commands that store events (ingest) tell the
 * service after each commit, so it evaluates them at once; commands that
 * would write transitions of their own (sweep, simulate --db) take the store
 * as the service does, so they are refused while a service holds it, and a
 * service is refused while they run.
 */
#include "cli/cli.h"

#include "core/rg.h"
#include "store/holder.h"

#include <assert.h>
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---- the option parser ---- */

#define RG__MAX_OPTS 32

int rg_cli_parse(const rg_cli_opt *opts, void *conf, int argc, char **argv, int first, char *err,
                 size_t errlen)
{
    struct option longopts[RG__MAX_OPTS + 1];
    char shorts[2 * RG__MAX_OPTS + 1];
    size_t n = 0, ns = 0;
    for (; opts[n].name; n++) {
        assert(n < RG__MAX_OPTS);
        longopts[n] = (struct option){opts[n].name, opts[n].has_arg ? required_argument
                                                                    : no_argument,
                                      NULL, 256 + (int)n};
        if (opts[n].letter) {
            shorts[ns++] = (char)opts[n].letter;
            if (opts[n].has_arg)
                shorts[ns++] = ':';
        }
    }
    longopts[n] = (struct option){NULL, 0, NULL, 0};
    shorts[ns] = '\0';
    err[0] = '\0';
    int c, rc = RG_OK;
    optind = first;
    while (rc == RG_OK && (c = getopt_long(argc, argv, shorts, longopts, NULL)) != -1) {
        size_t i = 0;
        if (c >= 256)
            i = (size_t)(c - 256);
        else
            while (opts[i].name && opts[i].letter != c)
                i++;
        if (c == '?' || c == ':' || !opts[i].name)
            rc = RG_EUSAGE;
        else
            rc = opts[i].set(conf, &opts[i], opts[i].has_arg ? optarg : NULL, err, errlen);
    }
    return rc;
}

static void *rg__field(void *conf, const rg_cli_opt *opt)
{
    return (char *)conf + opt->offset;
}

int rg_cli_str(void *conf, const rg_cli_opt *opt, const char *arg, char *err, size_t errlen)
{
    (void)err, (void)errlen;
    *(const char **)rg__field(conf, opt) = arg;
    return RG_OK;
}

int rg_cli_flag(void *conf, const rg_cli_opt *opt, const char *arg, char *err, size_t errlen)
{
    (void)arg, (void)err, (void)errlen;
    *(int *)rg__field(conf, opt) = 1;
    return RG_OK;
}

int rg_cli_help_opt(void *conf, const rg_cli_opt *opt, const char *arg, char *err,
                    size_t errlen)
{
    (void)conf, (void)opt, (void)arg, (void)err, (void)errlen;
    return RG_CLI_HELP;
}

int rg_cli_positive(const char *arg, long long *v)
{
    char *end;
    errno = 0;
    *v = strtoll(arg, &end, 10);
    return !errno && !*end && end != arg && *v > 0;
}

static int rg__positive_or(const char *arg, long long max, long long *v, char *err,
                           size_t errlen)
{
    if (!rg_cli_positive(arg, v) || *v > max)
        return rg_fail(err, errlen, RG_EINVAL, "expected a positive whole number, got '%s'",
                       arg);
    return RG_OK;
}

int rg_cli_mem_mb(void *conf, const rg_cli_opt *opt, const char *arg, char *err, size_t errlen)
{
    long long v;
    int rc = rg__positive_or(arg, INT_MAX, &v, err, errlen);
    if (!rc)
        *(size_t *)rg__field(conf, opt) = (size_t)v << 20;
    return rc;
}

int rg_cli_count(void *conf, const rg_cli_opt *opt, const char *arg, char *err, size_t errlen)
{
    long long v;
    int rc = rg__positive_or(arg, LLONG_MAX, &v, err, errlen);
    if (!rc)
        *(int64_t *)rg__field(conf, opt) = v;
    return rc;
}

int rg_cli_int(void *conf, const rg_cli_opt *opt, const char *arg, char *err, size_t errlen)
{
    long long v;
    int rc = rg__positive_or(arg, INT_MAX, &v, err, errlen);
    if (!rc)
        *(int *)rg__field(conf, opt) = (int)v;
    return rc;
}

/* ---- the common options ---- */

/* --clinic NAME=DIR, up to 64 of them. */
static int rg__clinic(void *conf, const rg_cli_opt *opt, const char *arg, char *err,
                      size_t errlen)
{
    rg_cli_opts *o = conf;
    char *eq = strchr(arg, '=');
    (void)opt;
    if (!eq || eq == arg || !eq[1] || o->nclinics == 64)
        return rg_fail(err, errlen, RG_EINVAL, "--clinic expects NAME=DIR, got '%s'", arg);
    *eq = '\0'; /* arg is argv's own text */
    o->clinic_names[o->nclinics] = arg;
    o->clinic_dirs[o->nclinics++] = eq + 1;
    return RG_OK;
}

/* An int taken as far as max (--jobs 256, --clinic-cpu-ms 10^9). */
static int rg__capped(void *conf, const rg_cli_opt *opt, const char *arg, char *err,
                      size_t errlen, long long max)
{
    long long v;
    int rc = rg__positive_or(arg, LLONG_MAX, &v, err, errlen);
    if (!rc)
        *(int *)rg__field(conf, opt) = v > max ? (int)max : (int)v;
    return rc;
}

static int rg__jobs(void *conf, const rg_cli_opt *opt, const char *arg, char *err, size_t errlen)
{
    return rg__capped(conf, opt, arg, err, errlen, 256);
}

static int rg__cpu(void *conf, const rg_cli_opt *opt, const char *arg, char *err, size_t errlen)
{
    return rg__capped(conf, opt, arg, err, errlen, 1000000000);
}

/* Minutes an event may lie ahead of the clock unflagged; 0: no check. */
static int rg__skew(void *conf, const rg_cli_opt *opt, const char *arg, char *err,
                    size_t errlen)
{
    long long v = 0;
    if (strcmp(arg, "0") && !rg_cli_positive(arg, &v))
        return rg_fail(err, errlen, RG_EINVAL,
                       "--future-skew expects whole minutes (0: no check), got '%s'", arg);
    *(rg_time *)rg__field(conf, opt) = strcmp(arg, "0") ? (rg_time)v * RG_MS_MINUTE : -1;
    return RG_OK;
}

#define RG__O(f) offsetof(rg_cli_opts, f)
#define RG__COMMON_ROWS                                                                         \
    {"db", 0, 1, rg_cli_str, RG__O(db)},                                                        \
    {"events", 0, 1, rg_cli_str, RG__O(events)},                                                \
    {"until", 0, 1, rg_cli_str, RG__O(until)},                                                  \
    {"at", 0, 1, rg_cli_str, RG__O(until)},                                                     \
    {"format", 0, 1, rg_cli_str, RG__O(format)},                                                \
    {"protocols", 0, 1, rg_cli_str, RG__O(protocols)},                                          \
    {"clinic", 0, 1, rg__clinic, 0},                                                            \
    RG_CLI_LIMITS(RG__O(limits)),                                                               \
    {"jobs", 0, 1, rg__jobs, RG__O(jobs)},                                                      \
    {"from-memory", 0, 0, rg_cli_flag, RG__O(from_memory)},                                     \
    {"future-skew", 0, 1, rg__skew, RG__O(future_skew)},                                        \
    {"describe", 0, 0, rg_cli_flag, RG__O(describe)},                                           \
    {"clinic-cpu-ms", 0, 1, rg__cpu, RG__O(clinic_cpu_ms)},                                     \
    {"acks", 0, 1, rg_cli_str, RG__O(acks)},                                                    \
    {"help", 'h', 0, rg_cli_help_opt, 0}

static const rg_cli_opt rg__common[] = {RG__COMMON_ROWS, {NULL, 0, 0, NULL, 0}};
/* serve's: the same and --config FILE */
static const rg_cli_opt rg__serve[] = {
    RG__COMMON_ROWS, {"config", 0, 1, rg_cli_str, RG__O(config)}, {NULL, 0, 0, NULL, 0}};

static int rg__parse_common(const rg_cli_opt *table, int argc, char **argv, rg_cli_opts *o)
{
    char err[512];
    o->limits = RG_LIMITS_DEFAULT;
    int rc = rg_cli_parse(table, o, argc, argv, 1, err, sizeof err);
    if (rc == RG_CLI_HELP)
        exit(rg_cli_help(NULL));
    if (rc == RG_EINVAL)
        return rg_cli_die("%s", err);
    return rc ? 2 : 0;
}

int rg_cli_parse_common(int argc, char **argv, rg_cli_opts *o)
{
    return rg__parse_common(rg__common, argc, argv, o);
}

int rg_cli_parse_serve(int argc, char **argv, rg_cli_opts *o)
{
    return rg__parse_common(rg__serve, argc, argv, o);
}

/* ---- shared by the commands ---- */

int rg_cli_die(const char *fmt, const char *a)
{
    fprintf(stderr, "regimen: ");
    fprintf(stderr, fmt, a);
    fputc('\n', stderr);
    return 2;
}

/* The shipped protocol root: $REGIMEN_PROTOCOLS, else protocols/ next to the
 * build directory holding this binary, else share/regimen/protocols beside an
 * installed one (PREFIX/bin/regimen, `make install`), else ./protocols. */
const char *rg_cli_shipped(char *buf, size_t len)
{
    char exe[PATH_MAX - 32];
    const char *env = getenv("REGIMEN_PROTOCOLS");
    struct stat sb;
    if (env && *env)
        return env;
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n > 0) {
        exe[n] = '\0';
        char *slash = strrchr(exe, '/');
        static const char *const rel[] = {"../protocols", "../share/regimen/protocols"};
        for (int i = 0; slash && i < 2; i++) {
            *slash = '\0';
            snprintf(buf, len, "%s/%s", exe, rel[i]);
            if (stat(buf, &sb) == 0 && S_ISDIR(sb.st_mode)) {
                char *real = realpath(buf, NULL);
                if (real) {
                    snprintf(buf, len, "%s", real);
                    free(real);
                }
                return buf;
            }
        }
    }
    if (stat("protocols", &sb) == 0 && S_ISDIR(sb.st_mode))
        return "protocols";
    return NULL;
}

static void rg__print_reject(void *ud, const char *source, long line, const char *field,
                             const char *reason)
{
    (void)ud;
    if (*field)
        fprintf(stderr, "%s:%ld: field '%s': %s\n", source, line, field, reason);
    else
        fprintf(stderr, "%s:%ld: %s\n", source, line, reason);
}

static rg_holder *rg__held; /* the store this command holds (sweep, simulate --db) */
static char rg__told[400];  /* the service told of our commits, for the report */
static int rg__told_errno;  /* or why it could not be told */

/* After each commit of a command that does not hold the store. */
static void rg__notice(void *path)
{
    rg_holder_info info;
    int rc = rg_holder_notify(path);
    if (rc < 0)
        rg__told_errno = errno;
    if (rc != 0 && rg_holder_find(path, &info) == 1)
        rg_holder_who(&info, rg__told, sizeof rg__told);
}

const char *rg_cli_told(int *err)
{
    *err = rg__told_errno;
    return rg__told;
}

int rg_cli_put_json(json_t *j)
{
    char *s = j ? json_dumps(j, JSON_COMPACT | JSON_ENSURE_ASCII) : NULL;
    json_decref(j);
    if (!s)
        return RG_ENOMEM;
    puts(s);
    free(s);
    return RG_OK;
}

void rg_cli_release(void)
{
    rg_holder_release(rg__held);
    rg__held = NULL;
}

int rg_cli_open_store(const char *path, int durable, const char *kind, const char *hint,
                      rg_store **st)
{
    char err[1024];
    rg_store_opts so = {.durable = durable > 0, .check = durable >= 2, .bulk = durable == 3,
                        .alone = kind != NULL}; /* (a holder's kind: taken below, or refused) */
    if (rg_store_open(st, path, &so, err, sizeof err)) {
        fprintf(stderr, "regimen: %s\n", err);
        return 2;
    }
    if (!kind) {
        rg_store_on_commit(*st, rg__notice, (void *)path);
        return 0;
    }
    int rc = rg_holder_take(&rg__held, path, kind, err, sizeof err);
    if (rc == RG_EBUSY) {
        rg_holder_info info;
        char who[300];
        if (rg_holder_find(path, &info) == 1 && !strcmp(info.kind, "serve"))
            snprintf(err, sizeof err, "%s is held by %s; %s", path,
                     rg_holder_who(&info, who, sizeof who), hint);
    }
    int alone = 1; /* PostgreSQL: no serve worker on it (the file lock's twin) */
    if (!rc && (rc = rg_store_hold(*st, 1, &alone)) != RG_OK) {
        snprintf(err, sizeof err, "%s", rg_store_errmsg(*st));
    } else if (!rc && !alone) {
        snprintf(err, sizeof err, "%s is in use by regimen serve workers; %s", path, hint);
        rc = RG_EBUSY;
    }
    if (rc) {
        fprintf(stderr, "regimen %s: %s\n", kind, err);
        rg_store_close(*st);
        *st = NULL;
        return 2;
    }
    return 0;
}

int rg_cli_open_existing(const char *who, const char *db, rg_store **st)
{
    char err[1024];
    rg_store_opts so = {0};
    if (!rg_store_is_server(db) && access(db, F_OK) != 0) {
        fprintf(stderr, "%s: %s: no such database\n", who, db);
        return 2;
    }
    if (rg_store_open(st, db, &so, err, sizeof err)) {
        fprintf(stderr, "%s: %s\n", who, err);
        return 2;
    }
    return 0;
}

int rg_cli_ingest_path(rg_store *st, const char *path, rg_ingest_counts *counts, FILE *out)
{
    FILE *f = strcmp(path, "-") ? fopen(path, "r") : stdin;
    if (!f) {
        fprintf(stderr, "regimen: cannot read %s: %s\n", path, strerror(errno));
        return 2;
    }
    int rc = rg_cli_ingest_started(st, rg_ingest_start(f), path, counts, out);
    if (f != stdin)
        fclose(f);
    return rc;
}

int rg_cli_ingest_started(rg_store *st, rg_ingest_reader *r, const char *path,
                          rg_ingest_counts *counts, FILE *out)
{
    char err[1024];
    int rc = rg_ingest_finish(st, r, strcmp(path, "-") ? path : "<stdin>", counts,
                              rg__print_reject, NULL, err, sizeof err);
    fprintf(out, "stored %ld, duplicates %ld, conflicts %ld, rejected %ld, corrected %ld\n",
            counts->stored, counts->duplicates, counts->conflicts, counts->rejected,
            counts->corrected);
    if (counts->future)
        fprintf(out, "%ld of them dated ahead of the clock by more than the skew allowed (the "
                "warnings above): stored, but check the sender's clock\n", counts->future);
    if (rc) {
        fprintf(stderr, "regimen: %s\n", err);
        return 2;
    }
    return counts->rejected || counts->conflicts ? 1 : 0;
}

/* Text from protocols on one report: continuation lines are indented, so a
 * protocol cannot make a line that looks like another clinic's report. */
static void rg__print_indented(const char *msg)
{
    for (const char *c = msg; *c; c++) {
        if (*c == '\n')
            fputs("\n    ", stderr);
        else if ((unsigned char)*c < 0x20 && *c != '\t')
            fputc('?', stderr);
        else
            fputc(*c, stderr);
    }
    fputc('\n', stderr);
}

static void rg__print_error(void *ud, const char *clinic, const char *patient, rg_time at,
                            const char *msg)
{
    char when[RG_TIME_BUFSZ];
    (void)ud;
    flockfile(stderr); /* one report at a time: a sweep's workers share stderr */
    if (patient)
        fprintf(stderr, "error: clinic %s, patient %s, at %s: ", clinic, patient,
                rg_time_format(at, when));
    else
        fprintf(stderr, "error: clinic %s: ", clinic);
    rg__print_indented(msg);
    funlockfile(stderr);
}

int rg_cli_engine_opts(rg_cli_opts *o, const char *shipped, char *default_dir, size_t dlen,
                       rg_engine_opts *eo)
{
    if (o->protocols)
        snprintf(default_dir, dlen, "%s", o->protocols);
    else if (shipped)
        snprintf(default_dir, dlen, "%s/ketamine", shipped);
    else
        return rg_cli_die("%s", "cannot find the shipped protocols; pass --protocols DIR or set "
                                "REGIMEN_PROTOCOLS");
    *eo = (rg_engine_opts){.limits = o->limits, .shipped = shipped, .default_dir = default_dir,
                           .on_error = rg__print_error,
                           .budget = {.cpu_ms = o->clinic_cpu_ms}};
    return 0;
}

int rg_cli_engine_make(const rg_cli_opts *o, const rg_engine_opts *eo, rg_store *st,
                       rg_engine **eng)
{
    char err[4096];
    if (rg_engine_new(eng, st, eo))
        return rg_cli_die("%s", "out of memory");
    for (int i = 0; i < o->nclinics; i++) {
        if (rg_engine_set_clinic(*eng, o->clinic_names[i], o->clinic_dirs[i], err, sizeof err)) {
            fprintf(stderr, "regimen: clinic %s: %s\n", o->clinic_names[i], err);
            return 2;
        }
    }
    return 0;
}

int rg_cli_engine_for(rg_cli_opts *o, rg_store *st, const char *shipped, char *default_dir,
                      size_t dlen, long *errors, rg_engine **eng)
{
    rg_engine_opts eo;
    int rc = rg_cli_engine_opts(o, shipped, default_dir, dlen, &eo);
    eo.ud = errors;
    return rc ? rc : rg_cli_engine_make(o, &eo, st, eng);
}

int rg_cli_sweep_engine(void *ud, rg_store *st, const rg_engine_sink *sink, rg_engine **out)
{
    rg_cli_sweep_ctx *ctx = ud;
    rg_engine_opts eo = ctx->eo;
    eo.sink = sink;
    return rg_cli_engine_make(ctx->o, &eo, st, out) ? RG_EPROTOCOL : RG_OK;
}

int rg_cli_until(const rg_cli_opts *o, const char *what, rg_time *t)
{
    char err[256];
    if (!o->until)
        return rg_cli_die("%s", what);
    if (rg_time_parse(o->until, strlen(o->until), t, NULL, err, sizeof err))
        return rg_cli_die("--until: %s", err);
    return 0;
}
