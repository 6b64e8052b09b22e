/*
 * main.c - the `regimen` command line: ingest, rejected, simulate, check.
 *
 * Thin on purpose: each command parses its options, opens the store and the
 * engine, and calls the same functions the service calls. Exit codes: 0 all
 * good, 1 the work was done but something was refused or failed (rejected
 * lines, conflicts, protocol errors), 2 the command could not run (usage,
 * unreadable files, database errors).
 *
 * Beside a running service (holder.h): commands that store events (ingest)
 * tell the service after each commit, so it evaluates them at once; commands
 * that would write transitions of their own (sweep, simulate --db) take the
 * store as the service does, so they are refused while a service holds it,
 * and a service is refused while they run.
 */
#include "engine/check.h"
#include "core/digest.h"
#include "engine/clinic.h"
#include "engine/engine.h"
#include "core/fhir.h"
#include "store/holder.h"
#include "store/ingest.h"
#include "engine/scenario.h"
#include "service/serve.h"
#include "engine/explain.h"
#include "core/feed.h"
#include "present/report.h"
#include "cli/report_cmd.h"
#include "cli/passwd_cmd.h"
#include "cli/audit_cmd.h"
#include "cli/notify_cmd.h"
#include "cli/protocols_cmd.h"
#include "engine/sweep.h"

#include <jansson.h>

#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#define RG_VERSION "0.1.0"

static const char rg__usage[] =
    "usage: regimen <command> [options]\n"
    "\n"
    "commands:\n"
    "  ingest [--db PATH] [--future-skew MIN] FILE|-\n"
    "                                   store events (JSON Lines); bad lines are kept aside;\n"
    "                                   an event dated more than MIN minutes (default 15;\n"
    "                                   0: no check) ahead of the clock is stored and flagged\n"
    "  import-fhir [--db PATH] [--clinic NAME[=DIR]] [--print] FILE|-\n"
    "                                   store FHIR R4 resources (a Bundle or NDJSON) as\n"
    "                                   events, one transaction; reports every entry:\n"
    "                                   stored, duplicate, conflict, rejected (with its\n"
    "                                   location), unmapped or context. Events are of\n"
    "                                   clinic NAME (default: default); DIR's clinic.lua\n"
    "                                   may adjust the mapping (fhir = {...}, docs/fhir.md);\n"
    "                                   --print prints the events as JSON Lines instead\n"
    "                                   of storing them\n"
    "  rejected [--db PATH]             list refused lines with their line, field and reason\n"
    "  verify [--db PATH]               check every stored event against its digest and\n"
    "                                   its columns against its body; name each damaged\n"
    "                                   one (clinic, id, seq); exit 1 if any is damaged\n"
    "  simulate --events FILE --until TIME [--format text|jsonl|html] [--protocols DIR]\n"
    "           [--acks FILE]  (jsonl: the notify policies' plan, FILE's acknowledgements)\n"
    "           [--clinic NAME=DIR]... [--db PATH] [--jobs N]\n"
    "                                   replay a timeline under a virtual clock and print\n"
    "                                   every alert transition in time order\n"
    "                                   (--jobs N: patients over N threads, default\n"
    "                                   the cores; the output is the same)\n"
    "  sweep --at TIME [--db PATH] [--protocols DIR] [--clinic NAME=DIR]... [--jobs N]\n"
    "                                   re-evaluate every stored patient once at TIME, as\n"
    "                                   after a protocol change, and report the rate;\n"
    "                                   --jobs N worker threads (default: the cores)\n"
    "  explain KEY [--db PATH | --events FILE --until TIME [--protocols DIR]]\n"
    "                                   why an alert opened or resolved: rule, protocol\n"
    "                                   version, parameters and the events it rested on\n"
    "  diff --events FILE --until TIME [--jobs N] OLD_DIR NEW_DIR\n"
    "                                   replay one history under two protocol versions\n"
    "                                   and list the transitions that differ\n"
    "  check [--describe] [DIR...]      load protocols, evaluate every rule on generated\n"
    "                                   histories and DIR/tests, report errors with file and\n"
    "                                   line (default: the shipped sets); --describe: the\n"
    "                                   reference (Markdown)\n"
    "  serve --config FILE [--db PATH]  run the alerting service (HTTP API on one event\n"
    "                                   loop; see regimen serve --help)\n"
    "  notify-test DIR RECEIVER         send a test message to one receiver of DIR/clinic.lua's\n"
    "                                   notify policy (webhook, SMS gateway, e-mail over SMTP)\n"
    "  notifications --clinic NAME [--patient P] [--key K] [--format text|json] [--db PATH]\n"
    "                                   the service's notification history: every attempt\n"
    "  passwd                           read a password on standard input and print its\n"
    "                                   argon2id hash, for a user of serve's configuration\n"
    "  report --clinic NAME[=DIR] --from TIME --to TIME [--format text|csv|html]\n"
    "         [--db PATH | --events FILE]\n"
    "                                   the esketamine (Spravato REMS) compliance report:\n"
    "                                   sessions with pre-dose and 40-minute blood pressure,\n"
    "                                   2 h of monitoring, forms within 7 days (late and\n"
    "                                   missing ones), PHQ-9 response and remission at the\n"
    "                                   end of induction; DIR's numbers (default: shipped)\n"
    "  audit verify [--db PATH]         check the audit trail's hash chain: exit 1 naming\n"
    "                                   the first entry deleted, changed or added\n"
    "  audit show [--clinic C] [--patient P] [--user U] [--since TIME] [--format text|json]\n"
    "         [--db PATH]\n"
    "                                   who read or changed which patients' data, and when\n"
    "  test [--jobs N] [PATH...]        run protocol scenario tests (*_test.lua files or\n"
    "                                   directories of them; default: the shipped sets');\n"
    "                                   --jobs N threads (default: the cores), same output\n"
    "  protocols propose|approve|activate|rollback|list|show --clinic NAME [--by PERSON] ...\n"
    "                                   a clinic's protocol versions in the store: propose\n"
    "                                   (must pass check; prints the diff over the stored\n"
    "                                   history), approve (by another person), activate,\n"
    "                                   roll back (see regimen protocols --help)\n"    "\n"
    "common options:\n"
    "  --db PATH              SQLite database (default regimen.db; simulate: in memory),\n"
    "                         or a PostgreSQL one: postgresql://... (or postgres://...)\n"
    "  --max-memory-mb N      memory cap per clinic Lua state (default 64)\n"
    "  --max-instructions N   Lua instructions per evaluation (default 10000000)\n"
    "  --deadline-ms N        wall-clock limit per evaluation (default 2000)\n"
    "  --clinic-cpu-ms N      evaluation time per clinic per minute; past it protocols are\n"
    "                         not run (default: no budget; serve: limits.clinic_cpu_ms)\n"
    "\n"
    "Without --protocols the shipped protocol set (protocols/ketamine) applies to every\n"
    "clinic. Shipped defaults are illustrative, not medical advice.\n";

typedef struct rg__opts {
    const char *db, *events, *format, *protocols, *until;
    const char *acks; /* simulate --acks FILE: acknowledgements for the notification plan */
    const char *clinic_names[64], *clinic_dirs[64];
    int nclinics;
    int jobs; /* sweep: worker threads; 0: the processors available */
    int describe; /* check --describe */
    rg_limits limits;
    rg_time future_skew; /* ingest: --future-skew (0: the default; negative: no check) */
    int clinic_cpu_ms; /* 0: no CPU budget per clinic */
} rg__opts;

static int rg__die(const char *fmt, const char *a)
{
    fprintf(stderr, "regimen: ");
    fprintf(stderr, fmt, a);
    fputc('\n', stderr);
    return 2;
}

/* The shipped protocol root: $REGIMEN_PROTOCOLS, else protocols/ next to the
 * build directory holding this binary, else share/regimen/protocols beside an
 * installed one (PREFIX/bin/regimen, `make install`), else ./protocols. */
static const char *rg__shipped(char *buf, size_t len)
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

/* 1 when arg is a positive whole number (in *v). */
static int rg__positive(const char *arg, long long *v)
{
    char *end;
    errno = 0;
    *v = strtoll(arg, &end, 10);
    return !errno && !*end && end != arg && *v > 0;
}

static int rg__parse(int argc, char **argv, rg__opts *o)
{
    enum { O_AT = 100, O_DB = 1, O_EVENTS, O_UNTIL, O_FORMAT, O_PROTOCOLS, O_CLINIC, O_MEM, O_INSTR, O_DEADLINE, O_JOBS, O_DESCRIBE, O_CPU, O_SKEW = 120, O_ACKS };
    static const struct option longopts[] = {
        {"db", required_argument, NULL, O_DB},
        {"events", required_argument, NULL, O_EVENTS},
        {"until", required_argument, NULL, O_UNTIL},
        {"at", required_argument, NULL, O_AT},
        {"format", required_argument, NULL, O_FORMAT},
        {"protocols", required_argument, NULL, O_PROTOCOLS},
        {"clinic", required_argument, NULL, O_CLINIC},
        {"max-memory-mb", required_argument, NULL, O_MEM},
        {"max-instructions", required_argument, NULL, O_INSTR},
        {"deadline-ms", required_argument, NULL, O_DEADLINE},
        {"jobs", required_argument, NULL, O_JOBS},
        {"future-skew", required_argument, NULL, O_SKEW},
        {"describe", no_argument, NULL, O_DESCRIBE},
        {"clinic-cpu-ms", required_argument, NULL, O_CPU},
        {"acks", required_argument, NULL, O_ACKS},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    int c;
    o->limits = RG_LIMITS_DEFAULT;
    optind = 1;
    while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
        switch (c) {
        case O_DB: o->db = optarg; break;
        case O_EVENTS: o->events = optarg; break;
        case O_UNTIL: o->until = optarg; break;
        case O_AT: o->until = optarg; break;
        case O_FORMAT: o->format = optarg; break;
        case O_PROTOCOLS: o->protocols = optarg; break;
        case O_DESCRIBE: o->describe = 1; break;
        case O_ACKS: o->acks = optarg; break;
        case O_CLINIC: {
            char *eq = strchr(optarg, '=');
            if (!eq || eq == optarg || !eq[1] || o->nclinics == 64)
                return rg__die("--clinic expects NAME=DIR, got '%s'", optarg);
            *eq = '\0';
            o->clinic_names[o->nclinics] = optarg;
            o->clinic_dirs[o->nclinics++] = eq + 1;
            break;
        }
        case O_MEM:
        case O_INSTR:
        case O_JOBS:
        case O_CPU:
        case O_DEADLINE: {
            long long v;
            if (!rg__positive(optarg, &v))
                return rg__die("expected a positive whole number, got '%s'", optarg);
            if (c == O_MEM)
                o->limits.max_memory = (size_t)v << 20;
            else if (c == O_INSTR)
                o->limits.max_instructions = v;
            else if (c == O_JOBS)
                o->jobs = v > 256 ? 256 : (int)v;
            else if (c == O_CPU)
                o->clinic_cpu_ms = v > 1000000000 ? 1000000000 : (int)v;
            else
                o->limits.deadline_ms = (int)v;
            break;
        }
        case O_SKEW: { /* minutes an event may lie ahead of the clock unflagged; 0: no check */
            long long v;
            if (strcmp(optarg, "0") && !rg__positive(optarg, &v))
                return rg__die("--future-skew expects whole minutes (0: no check), got '%s'",
                               optarg);
            o->future_skew = strcmp(optarg, "0") ? (rg_time)v * RG_MS_MINUTE : -1;
            break;
        }
        case 'h': fputs(rg__usage, stdout); exit(0);
        default: return 2;
        }
    }
    return 0;
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

/* durable: 0 no, 1 every commit synced, 2 that and the file checked first
 * (PRAGMA quick_check: ingest refuses a damaged file before writing to it).
 * kind NULL: the command may run beside a service, which is told of each of
 * its commits. Else the command takes the store (kind names it) and is
 * refused with one line, ending in hint, while a service holds it. */
static int rg__open_store(const char *path, int durable, const char *kind, const char *hint,
                          rg_store **st)
{
    char err[1024];
    rg_store_opts so = {.durable = durable > 0, .check = durable == 2};
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

/* Reads events from path ("-": stdin) into st and prints the counts. */
static int rg__ingest_path(rg_store *st, const char *path, rg_ingest_counts *counts, FILE *out)
{
    FILE *f = strcmp(path, "-") ? fopen(path, "r") : stdin;
    char err[1024];
    if (!f) {
        fprintf(stderr, "regimen: cannot read %s: %s\n", path, strerror(errno));
        return 2;
    }
    int rc = rg_ingest_file(st, f, strcmp(path, "-") ? path : "<stdin>", counts, rg__print_reject,
                            NULL, err, sizeof err);
    if (f != stdin)
        fclose(f);
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

static int rg__cmd_ingest(int argc, char **argv)
{
    rg__opts o = {.db = "regimen.db"};
    rg_store *st;
    int rc = rg__parse(argc, argv, &o);
    if (rc)
        return rc;
    if (optind != argc - 1)
        return rg__die("%s", "ingest needs exactly one FILE (or - for standard input)");
    if ((rc = rg__open_store(o.db, 2, NULL, NULL, &st)))
        return rc;
    rg_ingest_counts counts = {.skew = o.future_skew};
    rc = rg__ingest_path(st, argv[optind], &counts, stdout);
    rg_store_close(st);
    /* not silent: say who evaluates them, and when */
    if (rg__told[0] && !rg__told_errno)
        fprintf(stderr, "regimen: %s was told of the stored events and evaluates them\n",
                rg__told);
    else if (rg__told[0])
        fprintf(stderr, "regimen: %s could not be told of the stored events (%s); it evaluates "
                "them within a minute\n", rg__told, strerror(rg__told_errno));
    return rc;
}

static int rg__help(const char *name);

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

static int rg__cmd_import_fhir(int argc, char **argv)
{
    enum { O_DB = 1, O_CLINIC, O_PRINT, O_MEM, O_INSTR, O_DEADLINE };
    static const struct option longopts[] = {
        {"db", required_argument, NULL, O_DB},
        {"max-memory-mb", required_argument, NULL, O_MEM},
        {"max-instructions", required_argument, NULL, O_INSTR},
        {"deadline-ms", required_argument, NULL, O_DEADLINE},
        {"clinic", required_argument, NULL, O_CLINIC},
        {"print", no_argument, NULL, O_PRINT},
        {"dry-run", no_argument, NULL, O_PRINT},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *db = "regimen.db";
    char name[RG_EVENT_MAX_CLINIC + 1] = "default", err[4096], shipped_buf[PATH_MAX];
    const char *dir = NULL;
    int c, print = 0, rc;
    rg_limits lim = RG_LIMITS_DEFAULT; /* fhir.map runs under the evaluation limits */
    optind = 1;
    while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
        switch (c) {
        case O_DB: db = optarg; break;
        case O_CLINIC: {
            char *eq = strchr(optarg, '=');
            size_t n = eq ? (size_t)(eq - optarg) : strlen(optarg);
            if (!n || n > RG_EVENT_MAX_CLINIC || (eq && !eq[1]))
                return rg__die("--clinic expects NAME or NAME=DIR, got '%s'", optarg);
            snprintf(name, sizeof name, "%.*s", (int)n, optarg);
            dir = eq ? eq + 1 : NULL;
            break;
        }
        case O_PRINT: print = 1; break;
        case O_MEM:
        case O_INSTR:
        case O_DEADLINE: {
            long long v;
            if (!rg__positive(optarg, &v))
                return rg__die("expected a positive whole number, got '%s'", optarg);
            if (c == O_MEM)
                lim.max_memory = (size_t)v << 20;
            else if (c == O_INSTR)
                lim.max_instructions = v;
            else
                lim.deadline_ms = (int)v;
            break;
        }
        case 'h': return rg__help("import-fhir") ? 2 : 0;
        default: return 2;
        }
    }
    if (optind != argc - 1)
        return rg__die("%s", "import-fhir needs exactly one FILE (or - for standard input)");
    const char *path = argv[optind], *source = strcmp(path, "-") ? path : "<stdin>";
    size_t len;
    char *text = rg_slurp(path, &len);
    if (!text) {
        fprintf(stderr, "regimen: cannot read %s: %s\n", path, strerror(errno));
        return 2;
    }
    rg_clinic *clinic = NULL;
    rg_fhir_opts fo = {.clinic = name};
    if (dir) {
        if (rg_clinic_load(&clinic, name, dir, rg__shipped(shipped_buf, sizeof shipped_buf), NULL,
                           &lim, err, sizeof err)) {
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
    if (print) {
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
        if ((rc = rg__open_store(db, 2, NULL, NULL, &st)) == 0) {
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

static int rg__cmd_rejected(int argc, char **argv)
{
    rg__opts o = {.db = "regimen.db"};
    rg_store *st;
    int rc = rg__parse(argc, argv, &o);
    if (rc)
        return rc;
    if (!rg_store_is_server(o.db) && access(o.db, F_OK) != 0)
        return rg__die("no database at %s", o.db);
    if ((rc = rg__open_store(o.db, 0, NULL, NULL, &st)))
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
static int rg__cmd_verify(int argc, char **argv)
{
    rg__opts o = {.db = "regimen.db"};
    rg_store *st;
    int rc = rg__parse(argc, argv, &o);
    if (rc)
        return rc;
    if (optind != argc)
        return rg__die("%s", "verify takes no arguments but --db PATH");
    if (!rg_store_is_server(o.db) && access(o.db, F_OK) != 0)
        return rg__die("no database at %s", o.db);
    if ((rc = rg__open_store(o.db, 0, NULL, NULL, &st)))
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

/* The clinic's local time with its offset; a notification moved to the
 * next opening is said after the message. */
static int rg__print_text(void *ud, const rg_transition *t)
{
    rg__out *o = ud;
    const rg_zone *z = rg_engine_zone(o->eng, t->clinic);
    char at[RG_TIME_BUFSZ], later[RG_TIME_BUFSZ], patient[4 * RG_EVENT_MAX_ID + 1], rule[512];
    /* what protocols and events wrote, with control characters escaped:
     * a message cannot end the line, forge the next or drive the terminal;
     * "-" is the clinic's own patient (a system alert) */
    fprintf(o->f, "%-23s  %-8s  %-10s  %-10s  %-26s  %-8s  ", rg_zone_display(z, t->at, at),
            RG_TRANSITION_STATE(t), t->clinic,
            *t->patient ? rg_printable(t->patient, patient, sizeof patient) : "-",
            rg_printable(t->rule, rule, sizeof rule), t->severity);
    rg_fput_printable(o->f, t->message);
    if (t->notify_at != RG_TIME_NONE && t->notify_at != t->at)
        fprintf(o->f, " (notify %s)", rg_zone_display(z, t->notify_at, later));
    fputc('\n', o->f);
    return 0;
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

/* The engine options of the command line: its limits, and --protocols DIR
 * (or the shipped set) as the default for clinics without their own. */
static int rg__engine_opts(rg__opts *o, const char *shipped, char *default_dir, size_t dlen,
                           rg_engine_opts *eo)
{
    if (o->protocols)
        snprintf(default_dir, dlen, "%s", o->protocols);
    else if (shipped)
        snprintf(default_dir, dlen, "%s/ketamine", shipped);
    else
        return rg__die("%s", "cannot find the shipped protocols; pass --protocols DIR or set "
                             "REGIMEN_PROTOCOLS");
    *eo = (rg_engine_opts){.limits = o->limits, .shipped = shipped, .default_dir = default_dir,
                           .on_error = rg__print_error,
                           .budget = {.cpu_ms = o->clinic_cpu_ms}};
    return 0;
}

/* An engine over st with eo and the clinics of the options (--clinic NAME=DIR). */
static int rg__engine_make(const rg__opts *o, const rg_engine_opts *eo, rg_store *st,
                           rg_engine **eng)
{
    char err[4096];
    if (rg_engine_new(eng, st, eo))
        return rg__die("%s", "out of memory");
    for (int i = 0; i < o->nclinics; i++) {
        if (rg_engine_set_clinic(*eng, o->clinic_names[i], o->clinic_dirs[i], err, sizeof err)) {
            fprintf(stderr, "regimen: clinic %s: %s\n", o->clinic_names[i], err);
            return 2;
        }
    }
    return 0;
}

/* The engine with the clinics of the options. */
static int rg__engine_for(rg__opts *o, rg_store *st, const char *shipped, char *default_dir,
                          size_t dlen, long *errors, rg_engine **eng)
{
    rg_engine_opts eo;
    int rc = rg__engine_opts(o, shipped, default_dir, dlen, &eo);
    eo.ud = errors;
    return rc ? rc : rg__engine_make(o, &eo, st, eng);
}

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
static int rg__clinics_named(const rg__opts *o, rg_store *st)
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

/* A sweep worker's engine: the command line's, writing through the sink. */
typedef struct rg__sweep_ctx {
    const rg__opts *o;
    rg_engine_opts eo;
} rg__sweep_ctx;

static int rg__sweep_engine(void *ud, rg_store *st, const rg_engine_sink *sink, rg_engine **out)
{
    rg__sweep_ctx *ctx = ud;
    rg_engine_opts eo = ctx->eo;
    eo.sink = sink;
    return rg__engine_make(ctx->o, &eo, st, out) ? RG_EPROTOCOL : RG_OK;
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

/* A simulation: the events of o->events into a store at o->db, every patient
 * advanced to until. *ingest_rc is 1 when lines were refused. Returns 0 or
 * the exit code of a failure; on success the caller owns *stp and *engp. */
static int rg__simulate(rg__opts *o, rg_time until, int quiet, rg_store **stp, rg_engine **engp,
                        int *ingest_rc)
{
    char shipped_buf[PATH_MAX], default_dir[PATH_MAX + 16];
    static long errors;
    rg_store *st = NULL;
    rg_engine *eng = NULL;
    FILE *devnull = quiet ? fopen("/dev/null", "w") : NULL;
    const char *shipped = rg__shipped(shipped_buf, sizeof shipped_buf);
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
        static char path[PATH_MAX + 16];
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
                snprintf(path, sizeof path, "%s/sim.db", rg__sim_tmp[rg__sim_ntmp++]);
                db = path;
            }
        }
    }
    if (db != o->db) { /* our own file: no holder, no notices, not durable */
        char err[1024];
        rg_store_opts so = {0};
        rc = rg_store_open(&st, db, &so, err, sizeof err) ? 2 : 0;
        if (rc)
            fprintf(stderr, "regimen: %s\n", err);
    } else {
        rc = rg__open_store(db, 0, "simulate",
                            "a simulation would write transitions on a virtual clock into its "
                            "live feed: simulate into another --db file, or in memory (no --db)",
                            &st);
    }
    if (rc)
        goto fail;
    rg_ingest_counts counts = {.skew = -1}; /* a simulation replays any dates */
    *ingest_rc = rg__ingest_path(st, o->events, &counts, devnull ? devnull : stderr);
    if (*ingest_rc == 2) {
        rc = 2;
        goto fail;
    }
    if ((rc = rg__clinics_named(o, st)))
        goto fail;
    if ((rc = rg__engine_for(o, st, shipped, default_dir, sizeof default_dir, &errors, &eng)))
        goto fail;
    long n;
    if (jobs > 1 && strcmp(db, ":memory:")) {
        char dir2[PATH_MAX + 16];
        rg__sweep_ctx ctx = {.o = o};
        if ((rc = rg__engine_opts(o, shipped, dir2, sizeof dir2, &ctx.eo)))
            goto fail;
        json_object_seed(0); /* before any thread makes a JSON object */
        rg_sweep_opts so = {.db = db, .at = until, .advance = 1, .jobs = jobs,
                            .make_engine = rg__sweep_engine, .ud = &ctx};
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
    if (devnull)
        fclose(devnull);
    *stp = st;
    *engp = eng;
    return 0;
fail:
    if (devnull)
        fclose(devnull);
    rg_engine_free(eng);
    rg_store_close(st);
    return rc;
}

/* Reads --until (named what) into *t. */
static int rg__until(const rg__opts *o, const char *what, rg_time *t)
{
    char err[256];
    if (!o->until)
        return rg__die("%s", what);
    if (rg_time_parse(o->until, strlen(o->until), t, NULL, err, sizeof err))
        return rg__die("--until: %s", err);
    return 0;
}

static int rg__cmd_simulate(int argc, char **argv)
{
    rg__opts o = {.db = ":memory:", .format = "text"};
    rg_store *st = NULL;
    rg_engine *eng = NULL;
    rg_time until;
    int ingest_rc = 0, rc = rg__parse(argc, argv, &o);
    if (rc)
        return rc;
    if (!o.events || optind != argc)
        return rg__die("%s", "simulate needs --events FILE and --until TIME (see regimen --help)");
    if ((rc = rg__until(&o, "simulate needs --until TIME", &until)))
        return rc;
    if (strcmp(o.format, "text") && strcmp(o.format, "jsonl") && strcmp(o.format, "html"))
        return rg__die("--format must be text, jsonl or html, not '%s'", o.format);
    if (o.acks && strcmp(o.format, "jsonl"))
        return rg__die("--acks goes with --format jsonl (the notification lines), not '%s'",
                       o.format);
    if ((rc = rg__simulate(&o, until, 0, &st, &eng, &ingest_rc)))
        return rc;
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
            return rg__die("%s", err);
        }
        if (!strcmp(o.format, "jsonl")) {
            int nrc = rg_notify_set_build(&ns, eng, st, acks.a, acks.n, until);
            rg_notify_acks_free(&acks);
            if (nrc)
                return rg__die("%s", "simulate: out of memory planning notifications");
            out.ns = &ns;
        }
        rg_notify_acks_free(&acks);
        rg_store_each_transition(st, 0, 1,
                                 strcmp(o.format, "text") ? rg__print_jsonl : rg__print_text, &out);
        rg__print_notifications(&out, RG_TIME_NONE);
        rg_notify_set_free(&ns);
    }
    if (!rc)
        rc = ingest_rc || rg_engine_stats_get(eng)->errors ? 1 : 0;
    rg_engine_free(eng);
    rg_store_close(st);
    return rc;
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

static int rg__cmd_notify_test(int argc, char **argv)
{
    char shipped[PATH_MAX];
    return rg_notify_test_cmd(argc, argv, rg__shipped(shipped, sizeof shipped));
}

static int rg__cmd_explain(int argc, char **argv)
{
    rg__opts o = {.db = "regimen.db"};
    rg_store *st = NULL;
    rg_engine *eng = NULL;
    int ingest_rc = 0, rc = rg__parse(argc, argv, &o);
    if (rc)
        return rc;
    if (optind != argc - 1)
        return rg__die("%s", "explain needs one alert KEY (from the \"key\" field of a transition)");
    if (o.events) { /* explain an alert of a simulation */
        rg_time until;
        if (!strcmp(o.db, "regimen.db"))
            o.db = ":memory:";
        o.jobs = 1; /* one alert's explanation: one thread */
        if ((rc = rg__until(&o, "explain --events needs --until TIME", &until)) ||
            (rc = rg__simulate(&o, until, 1, &st, &eng, &ingest_rc)))
            return rc;
    } else {
        if (!rg_store_is_server(o.db) && access(o.db, F_OK) != 0)
            return rg__die("no database at %s", o.db);
        if ((rc = rg__open_store(o.db, 0, NULL, NULL, &st)))
            return rc;
    }
    if (!eng && o.nclinics) { /* the clinics' zones, for the times shown */
        char shipped_buf[PATH_MAX], default_dir[PATH_MAX + 16];
        static long errors; /* the engine's error callback keeps a pointer */
        if ((rc = rg__engine_for(&o, st, rg__shipped(shipped_buf, sizeof shipped_buf),
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

static int rg__cmd_diff(int argc, char **argv)
{
    rg__opts o = {.db = ":memory:"};
    rg_store *st[2] = {NULL, NULL};
    rg_engine *eng[2] = {NULL, NULL};
    rg_time until;
    int ingest_rc = 0, rc = rg__parse(argc, argv, &o);
    if (rc)
        return rc;
    if (!o.events || optind != argc - 2)
        return rg__die("%s", "diff needs --events FILE --until TIME OLD_DIR NEW_DIR");
    if ((rc = rg__until(&o, "diff needs --until TIME", &until)))
        return rc;
    if (o.nclinics)
        return rg__die("%s", "diff compares two protocol directories for every clinic; "
                             "--clinic is not used");
    for (int i = 0; i < 2 && !rc; i++) {
        o.protocols = argv[optind + i];
        o.db = ":memory:";
        rc = rg__simulate(&o, until, 1, &st[i], &eng[i], &ingest_rc);
    }
    for (int i = 0; i < 2 && !rc; i++) {
        long errors = rg_engine_stats_get(eng[i])->errors;
        if (errors) { /* a comparison with a side that did not run right would mislead */
            fprintf(stderr, "regimen: diff: %s (%s) had %ld evaluation error%s (above); fix "
                    "them, then compare\n", i ? "NEW" : "OLD", argv[optind + i], errors,
                    errors == 1 ? "" : "s");
            rc = 2;
        }
    }
    if (!rc) {
        long d = rg_diff(st[0], st[1], "OLD", "NEW", eng[1], stdout);
        rc = d < 0 ? 2 : d > 0 ? 1 : 0;
    }
    for (int i = 0; i < 2; i++) {
        rg_engine_free(eng[i]);
        rg_store_close(st[i]);
    }
    return rc;
}

static int rg__cmd_sweep(int argc, char **argv)
{
    rg__opts o = {.db = "regimen.db"};
    char shipped_buf[PATH_MAX], default_dir[PATH_MAX + 16], err[512];
    rg_store *st = NULL;
    rg_engine *eng = NULL;
    rg_time at;
    int rc = rg__parse(argc, argv, &o);
    if (rc)
        return rc;
    if (!o.until || optind != argc)
        return rg__die("%s", "sweep needs --at TIME (see regimen --help)");
    if (rg_time_parse(o.until, strlen(o.until), &at, NULL, err, sizeof err))
        return rg__die("--at: %s", err);
    if (!rg_store_is_server(o.db) && access(o.db, F_OK) != 0)
        return rg__die("no database at %s", o.db);
    if ((rc = rg__open_store(o.db, 1, "sweep",
                             "the service re-evaluates a clinic's patients itself when its "
                             "protocols change (on SIGHUP, or a changed .lua file); stop it "
                             "to sweep at another moment", &st)))
        return rc;
    const char *shipped = rg__shipped(shipped_buf, sizeof shipped_buf);
    rg__sweep_ctx ctx = {.o = &o};
    if ((rc = rg__engine_opts(&o, shipped, default_dir, sizeof default_dir, &ctx.eo)))
        goto out;
    int jobs = o.jobs ? o.jobs : rg_sweep_default_jobs();
    rg_engine_stats total = {0};
    const rg_engine_stats *s = &total;
    int64_t t0 = rg_monotonic_ms();
    long n;
    if (jobs <= 1) { /* the plain path: this thread evaluates and writes */
        if ((rc = rg__engine_make(&o, &ctx.eo, st, &eng)))
            goto out;
        n = rg_engine_reevaluate_all(eng, at);
        s = rg_engine_stats_get(eng);
    } else {
        json_object_seed(0); /* before any thread makes a JSON object */
        rg_sweep_opts so = {.db = o.db, .at = at, .jobs = jobs, .make_engine = rg__sweep_engine,
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
    rc = s->errors ? 1 : 0;
out:
    rg_engine_free(eng);
    rg_store_close(st);
    return rc;
}

static int rg__cmd_check(int argc, char **argv)
{
    rg__opts o = {0};
    char shipped_buf[PATH_MAX], dflt[2][PATH_MAX + 16], err[4096];
    int rc = rg__parse(argc, argv, &o);
    if (rc)
        return rc;
    const char *shipped = rg__shipped(shipped_buf, sizeof shipped_buf);
    const char *both[2] = {dflt[0], dflt[1]};
    const char *const *dirs = (const char *const *)argv + optind;
    int ndirs = argc - optind;
    if (ndirs == 0) { /* the shipped sets */
        if (!shipped)
            return rg__die("%s", "cannot find the shipped protocols; name a directory");
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

static int rg__cmd_test(int argc, char **argv)
{
    rg__opts o = {0};
    char shipped_buf[PATH_MAX], dflt[PATH_MAX + 16];
    int rc = rg__parse(argc, argv, &o);
    if (rc)
        return rc;
    const char *shipped = rg__shipped(shipped_buf, sizeof shipped_buf);
    rg_scenario_totals totals = {0};
    char dflt2[PATH_MAX + 16];
    const char *paths[2] = {dflt, dflt2};
    if (optind == argc) {
        if (!shipped)
            return rg__die("%s", "cannot find the shipped protocols; name a test file or directory");
        snprintf(dflt, sizeof dflt, "%s/ketamine/tests", shipped);
        snprintf(dflt2, sizeof dflt2, "%s/esketamine/tests", shipped);
    }
    /* --jobs N: scenarios over N threads (default: the cores), the same output */
    rg_scenario_run_paths(optind == argc ? paths : (const char *const *)argv + optind,
                          optind == argc ? 2 : argc - optind, shipped, &o.limits, o.jobs, stdout,
                          &totals);
    printf("scenarios: %d passed, %d failed\n", totals.passed, totals.failed);
    return totals.failed ? 1 : totals.passed ? 0 : rg__die("%s", "no scenarios found");
}

static const char rg__serve_usage[] =
    "usage: regimen serve --config FILE [--db PATH]\n"
    "\n"
    "Runs the alerting service: an HTTP/1.1 JSON API on one event loop that stores\n"
    "events durably, evaluates the patient they concern at once, and wakes exactly\n"
    "when a protocol says something falls due (no polling).\n"
    "\n"
    "The configuration is JSON (relative paths are relative to the file):\n"
    "  { \"listen\": \"127.0.0.1:7878\",\n"
    "    \"clinics\": { \"north\": { \"protocols\": \"clinics/north\",\n"
    "        \"users\": [ { \"name\": \"ann\", \"role\": \"nurse\",\n"
    "                     \"password\": \"$argon2id$... (regimen passwd)\" } ],\n"
    "        \"api_keys\": [ { \"name\": \"ehr-feed\", \"role\": \"integration\",\n"
    "                        \"sha256\": \"<printf %s KEY | sha256sum>\" } ] } },\n"
    "    \"api_keys\": [ { \"name\": \"prometheus\", \"role\": \"metrics\", \"sha256\": \"...\" } ],\n"
    "    \"sessions\": { \"idle_timeout_s\": 1800, \"max_age_s\": 43200 },\n"
    "    \"limits\": { \"max_memory_mb\": 64, \"max_instructions\": 10000000,\n"
    "                \"deadline_ms\": 2000, \"max_body_bytes\": 1048576,\n"
    "                \"max_header_bytes\": 16384, \"max_connections\": 256,\n"
    "                \"idle_timeout_ms\": 30000, \"request_timeout_ms\": 10000,\n"
    "                \"max_events_per_request\": 1000, \"history_cache_mb\": 64,\n"
    "                \"future_skew_minutes\": 15,\n"
    "                \"max_unauthenticated_connections\": 128,\n"
    "                \"max_connections_per_address\": 32,\n"
    "                \"first_request_timeout_ms\": 5000, \"max_unsent_bytes\": 1048576,\n"
    "                \"stream_max_unsent_bytes\": 1048576, \"stream_stall_ms\": 10000,\n"
    "                \"max_streams_per_clinic\": 64, \"max_streams_per_token\": 32,\n"
    "                \"max_stream_tickets_per_clinic\": 64,\n"
    "                \"clinic_cpu_ms\": 0, \"clinic_cpu_window_s\": 60,\n"
    "                \"quarantine_hits\": 3, \"quarantine_window_s\": 60,\n"
    "                \"quarantine_backoff_s\": 60,\n"
    "                \"evaluation_threads\": 4 },\n"
    "    \"audit\": { \"retention_days\": 2190 } }\n"
    "A token belongs to one clinic: one listed for two clinics is refused.\n"
    "\"listen\" may instead be { \"address\": \"0.0.0.0:7443\", \"certificate\": PEM,\n"
    "\"key\": PEM } for TLS (read again on SIGHUP); plain HTTP listens on loopback\n"
    "only, unless { \"address\": ..., \"behind_tls_proxy\": true }.\n"
    "A clinic's \"webhook\" is a URL, or { \"url\": URL, \"secret\": \"whsec_...\" } (or\n"
    "\"secrets\": [new, old] during a rotation): deliveries are then signed as the\n"
    "Standard Webhooks specification says (docs/service.md, \"Signed webhooks\").\n"
    "Protocols run on evaluation_threads threads (default: the processors\n"
    "available), one clinic on one thread at a time; the loop only does I/O.\n"
    "\n"
    "Roles: nurse (read, ack, snooze), prescriber, admin (reload, the clinic's\n"
    "metrics), auditor, integration (events and FHIR only), metrics (/metrics of\n"
    "every clinic). Endpoints (all but /healthz and POST /v1/session need an API\n"
    "key, Authorization: Bearer <key>, or a signed-in session cookie):\n"
    "  POST /v1/session                {\"clinic\", \"user\", \"password\"}: sign in\n"
    "                                  (cookie; send csrf in X-CSRF-Token); DELETE: out\n"
    "  POST /v1/events                 one event or an array; per-event outcome\n"
    "  GET  /v1/alerts?patient=&state=&limit=&cursor= the clinic's alerts, paged\n"
    "  GET  /v1/alerts/{key}           an alert, its transitions and actions\n"
    "  POST /v1/alerts/{key}/ack       {\"note\": ...} (recorded as the user or key)\n"
    "  POST /v1/alerts/{key}/snooze    {\"until\": RFC 3339, \"reason\": ...}\n"
    "  GET  /v1/transitions?after=SEQ  the clinic's transitions, gap-free sequence\n"
    "  GET  /v1/transitions/stream     the same, live, as Server-Sent Events\n"
    "  GET  /v1/reports/compliance?from=&to=&format=text|csv|html\n"
    "                                  the esketamine (Spravato REMS) compliance report\n"
    "  POST /v1/admin/reload           (admin) as SIGHUP\n"
    "  GET  /v1/audit?since=&patient=&user=  (auditor) the clinic's audit trail (regimen audit)\n"
    "  GET  /healthz, GET /metrics     liveness; Prometheus text (metrics key or admin)\n"
    "\n"
    "Signals: SIGHUP reloads the configuration (users, keys, roles: a removed\n"
    "one stops at once) and the protocols (a changed protocol file too); a\n"
    "version that fails to load is refused and the old one keeps running. SIGTERM/SIGINT\n"
    "stop accepting, finish in-flight work and exit 0. SIGUSR1 (sent by regimen\n"
    "ingest after it stores events in the same database) makes the service read\n"
    "the store again and evaluate them at once.\n"
    "\n"
    "One service per database: a second serve on the file (or a sweep, or a\n"
    "simulate --db beside the service) is refused, naming the process holding it.\n";

static int rg__cmd_serve(int argc, char **argv)
{
    rg__opts o = {.db = "regimen.db"};
    char shipped_buf[PATH_MAX];
    const char *config = NULL;
    for (int i = 1; i < argc; i++)
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            fputs(rg__serve_usage, stdout);
            return 0;
        }
    /* --config is serve's own option; take it out before the common parser */
    for (int i = 1; i < argc; i++)
        if (!strcmp(argv[i], "--config") && i + 1 < argc) {
            config = argv[i + 1];
            memmove(argv + i, argv + i + 2, (size_t)(argc - i - 1) * sizeof *argv);
            argc -= 2;
            break;
        }
    int rc = rg__parse(argc, argv, &o);
    if (rc)
        return rc;
    if (!config || optind != argc) {
        fputs(rg__serve_usage, stderr);
        return 2;
    }
    return rg_serve_main(o.db, config, rg__shipped(shipped_buf, sizeof shipped_buf));
}

static int rg__cmd_report(int argc, char **argv)
{
    char shipped_buf[PATH_MAX];
    rg_limits lim = RG_LIMITS_DEFAULT;
    return rg_report_cmd(argc, argv, rg__shipped(shipped_buf, sizeof shipped_buf), &lim);
}

/* regimen help COMMAND: that command's lines of the usage (serve: its own
 * usage), then the common options. The text stays in one place, rg__usage. */
static int rg__help(const char *name)
{
    if (!strcmp(name, "serve")) {
        fputs(rg__serve_usage, stdout);
        return 0;
    }
    size_t nl = strlen(name);
    const char *at = NULL;
    for (const char *l = rg__usage; *l; l = strchr(l, '\n') + 1)
        if (!strncmp(l, "  ", 2) && !strncmp(l + 2, name, nl) && (l[2 + nl] == ' ' ||
                                                                  l[2 + nl] == '\n')) {
            at = l;
            break;
        }
    if (!at || !nl) {
        fprintf(stderr, "regimen: no command '%s' (regimen --help lists them)\n", name);
        return 2;
    }
    printf("usage: regimen");
    /* the command's line, then the lines indented under it */
    for (const char *l = at; *l && (l == at || !strncmp(l, "   ", 3)); l = strchr(l, '\n') + 1)
        printf("%s%.*s\n", l == at ? " " : "", (int)(strchr(l, '\n') - l - (l == at ? 2 : 0)),
               l + (l == at ? 2 : 0));
    fputs(strstr(rg__usage, "\ncommon options:") , stdout);
    puts("\nSee regimen(1) for the whole manual.");
    return 0;
}

/* `regimen protocols`, with the shipped root it captures beside a clinic's
 * directory (protocols_cmd.c). */
static int rg__cmd_protocols(int argc, char **argv)
{
    char shipped_buf[PATH_MAX];
    return rg_protocols_cmd(argc, argv, rg__shipped(shipped_buf, sizeof shipped_buf));
}

int main(int argc, char **argv)
{
    if (argc > 2 && !strcmp(argv[1], "help"))
        return rg__help(argv[2]);
    if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") ||
        !strcmp(argv[1], "help")) {
        fputs(rg__usage, argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    if (!strcmp(argv[1], "--version")) {
        printf("regimen %s\n", RG_VERSION);
        return 0;
    }
    static const struct {
        const char *name;
        int (*fn)(int, char **);
    } cmds[] = {
        {"ingest", rg__cmd_ingest},
        {"import-fhir", rg__cmd_import_fhir},
        {"rejected", rg__cmd_rejected},
        {"verify", rg__cmd_verify},
        {"simulate", rg__cmd_simulate},
        {"check", rg__cmd_check},
        {"test", rg__cmd_test},
        {"serve", rg__cmd_serve},
        {"sweep", rg__cmd_sweep},
        {"explain", rg__cmd_explain},
        {"diff", rg__cmd_diff},
        {"report", rg__cmd_report},
        {"passwd", rg_passwd_cmd},
        {"audit", rg_audit_cmd},
        {"notify-test", rg__cmd_notify_test},
        {"notifications", rg_notifications_cmd},
        {"protocols", rg__cmd_protocols},
    };
    /* a service's notice meant for another process never stops a command */
    signal(RG_HOLDER_SIGNAL, SIG_IGN);
    for (size_t i = 0; i < RG_COUNTOF(cmds); i++)
        if (!strcmp(argv[1], cmds[i].name)) {
            int rc = cmds[i].fn(argc - 1, argv + 1);
            rg_holder_release(rg__held);
            return rc;
        }
    fprintf(stderr, "regimen: unknown command '%s'\n\n%s", argv[1], rg__usage);
    return 2;
}
