/*
 * test_adversarial.c - the hostile protocols of tests/adversarial/, each run
 * next to a good clinic (the shipped protocols/ketamine) through the real
 * binary, three ways:
 *
 *   1. `regimen check DIR`: a protocol that misbehaves only when a rule runs
 *      loads fine; one that misbehaves at load time is refused with an error
 *      that names its file;
 *   2. `regimen simulate` with small limits: the run ends by itself (exit 1,
 *      or 2 for a clinic refused at load time; never a signal), within the
 *      per-evaluation limits, every error report is about clinic "bad" and
 *      names the hostile file, and the good clinic's acute.infusion-due
 *      alert is in the output (its transitions are exactly those it gets
 *      when it runs alone);
 *   3. `regimen serve` with both clinics (a token each): the timelines are
 *      POSTed, the good clinic's feed shows its alert, /healthz answers, the
 *      process is alive, the evaluation errors stored for clinic "bad" name
 *      the file, and SIGTERM still stops it cleanly. A protocol refused at
 *      load time makes serve exit 2 naming the file; a running service that
 *      reloads into it keeps the old version and keeps serving.
 *
 * Each case measures the simulate run (wall time, peak RSS from wait4) and
 * the service's peak RSS (VmHWM); the runner prints the table to stderr at
 * the end. A protocol that is not stopped is killed by a watchdog, so the
 * suite stays bounded and the case fails saying so. Every child process
 * dies with its test (PR_SET_PDEATHSIG) and is killed by pid in .fini.
 *
 * A protocol that detects that one of its attacks worked (a write that
 * stuck, a forbidden function it reached, a change visible to the next
 * patient) raises or returns "ESCAPED: ..."; that word anywhere in the
 * output, the errors or the feeds fails the case.
 *
 * Run from the repository root (make test does), REGIMEN_BIN naming the
 * binary. Each protocol file's header says what it attacks and what must
 * happen; ADVERSARIAL below holds the same expectations for the machine.
 */
#define RG_TEST_SERVE
#include "helpers.h"

#include "core/rg.h"

#include <criterion/hooks.h>

#include <pthread.h>
#include <stdatomic.h>

#include <arpa/inet.h>
#include <dirent.h>
#include <netinet/in.h>
#include <sqlite3.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>

#define ADV_DIR "tests/adversarial"
#define GOOD_DIR "protocols/ketamine"
#define LIM_INSTRUCTIONS 2000000
#define LIM_DEADLINE_MS 500
#define LIM_MEMORY_MB 32
#define LIM_CLINIC_CPU_MS 600 /* per clinic per minute (instructions_heavy uses it up in its first patient on any machine: about 1,000 evaluations of 1-2 ms) */
/* The bad clinic's timeline: 2 patients x 2 events, no wake-ups expected. */
#define BAD_EVALUATIONS 4
/* A run that needs more than this was not held to the per-evaluation limits. */
#define SIM_BOUND_MS (BAD_EVALUATIONS * LIM_DEADLINE_MS + 3000)
/* ... and one still running at this point is killed (and the case fails). */
#define SIM_WATCHDOG_MS 6000
#define HTTP_TIMEOUT_MS 8000
#define SERVE_START_MS 10000
#define TOKEN_BAD "adversarial-bad-clinic-token-0123456789"
#define TOKEN_GOOD "adversarial-good-clinic-token-0123456789"
#define MARKER "/tmp/regimen-adversarial-pwned"
#define GOOD_ALERT "\"rule\":\"acute.infusion-due\""

/* FHIR: the attack is the clinic's fhir.map (clinic.lua beside the file),
 * tried through POST /v1/fhir only (serve_fhir_case). */
enum stage { EVAL, LOAD, FHIR };

typedef struct adv_case {
    const char *name;
    enum stage stage;
    const char *expect; /* alternatives separated by '|': one must be in the error */
} adv_case;

/* name, when it fails (EVAL: while a rule runs; LOAD: while the file loads),
 * what the error must say. (recursion_lua, mem_table and mem_closures take
 * 250-400 ms to reach the memory cap: on a loaded machine the 500 ms deadline
 * can stop them first, and after 3 such hits the protocol is quarantined.) */
#define ADVERSARIAL(X)                                                                         \
    X(loop_plain, EVAL, "instruction budget")                                                  \
    X(loop_pcall, EVAL, "instruction budget")                                                  \
    X(loop_coroutine, EVAL, "instruction budget")                                              \
    X(loop_gc, EVAL, "__gc metamethods are not available")                                     \
    X(loop_tostring, EVAL, "instruction budget")                                               \
    X(loop_index, EVAL, "instruction budget")                                                  \
    X(loop_eq, EVAL, "instruction budget")                                                     \
    X(loop_lt, EVAL, "instruction budget")                                                     \
    X(loop_concat, EVAL, "instruction budget")                                                 \
    X(loop_close, EVAL, "instruction budget")                                                  \
    X(pattern_find, EVAL, "deadline of 500 ms per evaluation exceeded")                        \
    X(pattern_match, EVAL, "deadline of 500 ms per evaluation exceeded")                       \
    X(pattern_gmatch, EVAL, "deadline of 500 ms per evaluation exceeded")                      \
    X(pattern_gsub, EVAL, "deadline of 500 ms per evaluation exceeded")                        \
    X(pattern_gsub_replacement, EVAL, "deadline of 500 ms per evaluation exceeded")            \
    X(rep_empty_string, EVAL, "returned at once: 0 bytes")                                 \
    X(table_c_metamethods, EVAL, "deadline|instruction budget")                                \
    X(recursion_lua, EVAL, "stack overflow|memory limit|deadline of 500 ms")                   \
    X(recursion_metamethod, EVAL, "stack overflow")                                            \
    X(mem_rep, EVAL, "memory limit")                                                           \
    X(mem_doubling, EVAL, "memory limit")                                                      \
    X(mem_table, EVAL, "memory limit|deadline of 500 ms")                                      \
    X(mem_closures, EVAL, "memory limit|deadline of 500 ms")                                   \
    X(mem_concat, EVAL, "memory limit")                                                        \
    X(mem_leak, EVAL, "memory limit")                                                          \
    X(mem_at_load, LOAD, "memory limit")                                                       \
    X(load_time_loop, LOAD, "instruction budget")                                              \
    X(error_at_load, LOAD, "(error object is a table value)")                                  \
    X(reach_io, LOAD, "'io' is not available to protocols")                                    \
    X(reach_os_execute, EVAL, "'os' is not available to protocols")                            \
    X(reach_debug, EVAL, "'debug' is not available to protocols")                              \
    X(reach_loadlib, EVAL, "'package' is not available to protocols")                          \
    X(reach_dofile, LOAD, "'dofile' is not available to protocols")                            \
    X(reach_loadfile, EVAL, "'loadfile' is not available to protocols")                        \
    X(load_bytecode_mode_b, EVAL, "only text chunks can be loaded in protocols")               \
    X(load_bytecode_default, EVAL, "attempt to load a binary chunk")                           \
    X(string_dump, EVAL, "attempt to call a nil value (field 'dump')")                         \
    X(require_parent, LOAD, "module name '../loop_plain/loop_plain' is not valid")             \
    X(require_absolute, EVAL, "module name '/etc/passwd' is not valid")                        \
    X(require_os, EVAL, "module 'os' not found in the protocol directories")                   \
    X(tamper_string_metatable, EVAL, "attempt to index a boolean value")                       \
    X(tamper_libraries, EVAL, "string is read-only in protocols (cannot set field 'upper')")   \
    X(tamper_regimen, EVAL, "module 'regimen' is read-only in protocols (cannot set field 'days')") \
    X(rawset_proxy, EVAL, "'rawset' is not available to protocols")                           \
    X(setmetatable_env, EVAL, "cannot change a protected metatable")                           \
    X(alert_nonstring_keys, EVAL, "alert has an unknown field")                                \
    X(alert_nan_time, EVAL, "alert field 'due' must be a time")                                \
    X(alert_inf_time, EVAL, "alert field 'due' must be a time")                                \
    X(alert_huge_message, EVAL, "alert message is 200000 bytes; the limit is 2000")           \
    X(alert_flood, EVAL, "deadline|alerts")                                                    \
    X(alert_deep_nesting, EVAL, "alert has an unknown field")                                  \
    X(alert_control_key, EVAL, "alert key has a control character")                           \
    X(params_write, EVAL, "the parameter table p is read-only in protocols")                   \
    X(error_table, EVAL, "(error object is a table value)")                                    \
    X(error_nil, EVAL, "(error object is a nil value)")                                        \
    X(error_function, EVAL, "(error object is a function value)")                              \
    X(error_tostring_errors, EVAL, "tostring refused|(error object is a table value)")         \
    X(error_tostring_loops, EVAL, "instruction budget")                                        \
    X(yield_in_rule, EVAL, "attempt to yield from outside a coroutine")                        \
    X(wakeup_storm, EVAL, "wake|steps|limit")                                                  \
    X(log_forging, EVAL, "FORGED")                                                             \
    X(sort_long_string, EVAL, "deadline of 500 ms per evaluation exceeded")                    \
    X(lt_long_string, EVAL, "deadline of 500 ms per evaluation exceeded")                      \
    X(load_labels, EVAL, "deadline of 500 ms per evaluation exceeded")                         \
    X(print_huge, EVAL, "print limit of 100 lines")                                            \
    X(print_flood, EVAL, "print limit of 100 lines")                                           \
    X(alert_flap, EVAL, "keeps asking to wake the patient sooner")                            \
    X(alerts_many_rules, EVAL, "alerts per evaluation")                                        \
    X(require_fifo, EVAL, "is not a regular file")                                             \
    X(deadline_always, EVAL, "quarantined")                                                    \
    X(instructions_heavy, EVAL, "CPU budget")                                                  \
    X(wakeup_second, EVAL, "keeps asking to wake the patient sooner")                         \
    X(table_long_loops, EVAL, "deadline of 500 ms per evaluation exceeded")                    \
    X(fhir_map_slow, FHIR, "deadline of 500 ms for fhir.map over the whole request exceeded")

#define ADV_ENTRY(n, s, e) {#n, s, e},
static const adv_case adv_cases[] = {ADVERSARIAL(ADV_ENTRY)};

/* Cases whose work is in one long C call (a sort, a comparison, a parse) or
 * in the runtime around the rules: their run must end within the deadline
 * plus 10% per evaluation (plus the start-up of simulate and the good
 * clinic), not just within the loose SIM_BOUND_MS. */
static const char *const tight_cases[] = {
    "sort_long_string", "lt_long_string", "load_labels", "print_huge", "print_flood",
    "alert_flap", "alerts_many_rules", "require_fifo", "deadline_always", "instructions_heavy",
    "wakeup_second", "table_long_loops",
};
#define TIGHT_BOUND_MS (BAD_EVALUATIONS * LIM_DEADLINE_MS * 11 / 10 + 600)

/* The timelines: the good clinic's patient p (whose acute.infusion-due must
 * open on 4 Mar) and the bad clinic's patients q1 and q2 (two patients, so a
 * change one evaluation leaves behind would be seen by the next). */
#define EV(id, clinic, patient, type, at, data)                                                \
    "{\"id\":\"" id "\",\"clinic\":\"" clinic "\",\"patient\":\"" patient "\",\"type\":\"" type \
    "\",\"at\":\"" at "\",\"data\":" data "}"
#define GOOD_EVENTS                                                                            \
    EV("g1", "good", "p", "enrolled", "2026-03-01T09:00:00Z", "{\"program\":\"ketamine\"}"),   \
    EV("g2", "good", "p", "infusion", "2026-03-02T09:00:00Z", "{\"dose_mg_per_kg\":0.5}")
#define BAD_EVENTS                                                                             \
    EV("b1", "bad", "q1", "enrolled", "2026-03-01T09:00:00Z", "{\"program\":\"ketamine\"}"),   \
    EV("b2", "bad", "q1", "infusion", "2026-03-02T09:00:00Z", "{\"dose_mg_per_kg\":0.5}"),     \
    EV("b3", "bad", "q2", "enrolled", "2026-03-01T10:00:00Z", "{\"program\":\"ketamine\"}"),   \
    EV("b4", "bad", "q2", "infusion", "2026-03-02T10:00:00Z", "{\"dose_mg_per_kg\":0.5}")

static const char *const good_events[] = {GOOD_EVENTS};
static const char *const bad_events[] = {BAD_EVENTS};

/* ---- the results table ------------------------------------------------------------ */

/* One case's measurements; written by .fini, even when an assertion failed. */
typedef struct adv_row {
    char name[64], stage[8], stopped_by[96], attributed[16], serve[48];
    long sim_ms, sim_rss_kb, serve_rss_kb;
    int used;
} adv_row;

static adv_row g_row;
static pid_t g_serve_pid;
static char g_tmp[256];
static char g_fifo[400]; /* require_fifo's module, made for the case */

static void write_events(const char *path);

/* Before any case: the results file, and the good clinic's transitions on its
 * own (the baseline every case compares with), made once. */
ReportHook(PRE_ALL)(struct criterion_test_set *set)
{
    (void)set;
    char path[] = "/tmp/regimen-adversarial-results-XXXXXX";
    int fd = mkstemp(path);
    if (fd >= 0) {
        close(fd);
        setenv("RG_ADV_RESULTS", path, 1);
    }
    char dir[] = "/tmp/regimen-adversarial-baseline-XXXXXX", events[128], out[128], cmd[1024];
    if (!mkdtemp(dir))
        return;
    snprintf(events, sizeof events, "%s/events.jsonl", dir);
    snprintf(out, sizeof out, "%s/good.jsonl", dir);
    write_events(events);
    snprintf(cmd, sizeof cmd,
             "'%s' simulate --events '%s' --until 2026-03-10T00:00:00Z --format jsonl "
             "--clinic good=" GOOD_DIR " > '%s' 2>/dev/null",
             rg_test_bin(), events, out);
    if (system(cmd) == 0)
        setenv("RG_ADV_BASELINE", out, 1);
}

static int cmp_lines(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

ReportHook(POST_ALL)(struct criterion_global_stats *stats)
{
    (void)stats;
    const char *path = getenv("RG_ADV_RESULTS");
    FILE *f = path ? fopen(path, "r") : NULL;
    if (!f)
        return;
    char *lines[256], buf[512];
    int n = 0;
    while (n < 256 && fgets(buf, sizeof buf, f))
        lines[n++] = strdup(buf);
    fclose(f);
    unlink(path);
    const char *base = getenv("RG_ADV_BASELINE");
    if (base) {
        char cmd[300];
        snprintf(cmd, sizeof cmd, "rm -rf \"$(dirname '%s')\"", base);
        (void)!system(cmd);
    }
    qsort(lines, (size_t)n, sizeof *lines, cmp_lines);
    fprintf(stderr,
            "\nadversarial protocols (limits: %d instructions, %d ms, %d MiB per clinic; good "
            "clinic %s alongside)\n"
            "%-26s %-5s %-34s %8s %9s %-10s %-26s %9s\n",
            LIM_INSTRUCTIONS, LIM_DEADLINE_MS, LIM_MEMORY_MB, GOOD_DIR, "protocol", "stage",
            "stopped by (simulate)", "ms", "RSS MiB", "attributed", "serve", "serve MiB");
    int not_stopped = 0, unattributed = 0;
    for (int i = 0; i < n; i++) {
        char *field[8] = {0};
        char *save = NULL, *p = lines[i];
        for (int k = 0; k < 8 && (field[k] = strtok_r(p, "\t\n", &save)); k++)
            p = NULL;
        if (!field[7]) {
            free(lines[i]);
            continue;
        }
        char serve_mib[32] = "-";
        if (atol(field[7]) > 0)
            snprintf(serve_mib, sizeof serve_mib, "%.1f", atol(field[7]) / 1024.0);
        fprintf(stderr, "%-26s %-5s %-34s %8s %9.1f %-10s %-26s %9s\n", field[0], field[1],
                field[2], field[3], atol(field[4]) / 1024.0, field[5], field[6], serve_mib);
        not_stopped += strstr(field[2], "NOT STOPPED") != NULL;
        unattributed += strcmp(field[5], "yes") != 0;
        free(lines[i]);
    }
    fprintf(stderr, "%d protocols: %d not stopped, %d not (or wrongly) attributed\n\n", n,
            not_stopped, unattributed);
}

static void row_write(void)
{
    const char *path = getenv("RG_ADV_RESULTS");
    if (!g_row.used || !path)
        return;
    char line[512];
    int len = snprintf(line, sizeof line, "%s\t%s\t%s\t%ld\t%ld\t%s\t%s\t%ld\n", g_row.name,
                       g_row.stage, *g_row.stopped_by ? g_row.stopped_by : "-", g_row.sim_ms,
                       g_row.sim_rss_kb, *g_row.attributed ? g_row.attributed : "-",
                       *g_row.serve ? g_row.serve : "not reached", g_row.serve_rss_kb);
    int fd = open(path, O_WRONLY | O_APPEND);
    if (fd >= 0) {
        (void)!write(fd, line, (size_t)len); /* one write: lines never interleave */
        close(fd);
    }
}

/* After every case, passed or failed: record the row, stop what we started. */
static void adv_fini(void)
{
    row_write();
    if (g_serve_pid > 0) {
        kill(g_serve_pid, SIGKILL);
        waitpid(g_serve_pid, NULL, 0);
        g_serve_pid = 0;
    }
    if (*g_fifo) {
        unlink(g_fifo);
        char *slash = strrchr(g_fifo, '/');
        *slash = '\0';
        rmdir(g_fifo);
        *g_fifo = '\0';
    }
    if (*g_tmp) {
        char cmd[300];
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", g_tmp);
        (void)!system(cmd);
        *g_tmp = '\0';
    }
}

/* ---- running the binary with a watchdog ---------------------------------------------- */

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

typedef struct run {
    int code;   /* exit code, or -1 when a signal ended it */
    int sig;    /* the signal, or 0 */
    int killed; /* the watchdog killed it */
    long ms, rss_kb;
    char *out, *err;
} run;

static void run_free(run *r)
{
    free(r->out);
    free(r->err);
    memset(r, 0, sizeof *r);
}

/* Runs the binary with args; kills it after watchdog_ms. */
static void run_bin(const char *const *args, int watchdog_ms, run *r)
{
    int pout[2], perr[2];
    memset(r, 0, sizeof *r);
    cr_assert_eq(pipe(pout), 0);
    cr_assert_eq(pipe(perr), 0);
    int64_t t0 = mono_ms();
    pid_t pid = fork();
    cr_assert_neq(pid, -1);
    if (pid == 0) {
        const char *argv[64];
        int n = 0;
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        argv[n++] = rg_test_bin();
        for (int i = 0; args[i] && n < 63; i++)
            argv[n++] = args[i];
        argv[n] = NULL;
        int devnull = open("/dev/null", O_RDONLY);
        dup2(devnull, 0);
        dup2(pout[1], 1);
        dup2(perr[1], 2);
        close(pout[0]);
        close(perr[0]);
        execv(argv[0], (char *const *)argv);
        _exit(127);
    }
    close(pout[1]);
    close(perr[1]);
    size_t cap[2] = {1 << 16, 1 << 16}, len[2] = {0, 0};
    char *buf[2] = {malloc(cap[0]), malloc(cap[1])};
    struct pollfd fds[2] = {{.fd = pout[0], .events = POLLIN}, {.fd = perr[0], .events = POLLIN}};
    int open_fds = 2;
    while (open_fds) {
        int left = (int)(t0 + watchdog_ms - mono_ms());
        if (left <= 0 && !r->killed) {
            kill(pid, SIGKILL);
            r->killed = 1;
        }
        if (poll(fds, 2, r->killed ? 1000 : left) <= 0)
            continue;
        for (int i = 0; i < 2; i++) {
            if (fds[i].fd < 0 || !(fds[i].revents & (POLLIN | POLLHUP | POLLERR)))
                continue;
            if (len[i] + 4096 > cap[i])
                buf[i] = realloc(buf[i], cap[i] *= 2);
            ssize_t got = read(fds[i].fd, buf[i] + len[i], cap[i] - len[i] - 1);
            if (got <= 0) {
                close(fds[i].fd);
                fds[i].fd = -1;
                open_fds--;
            } else {
                len[i] += (size_t)got;
            }
        }
    }
    buf[0][len[0]] = buf[1][len[1]] = '\0';
    int status;
    struct rusage ru;
    cr_assert_eq(wait4(pid, &status, 0, &ru), pid);
    r->ms = (long)(mono_ms() - t0);
    r->rss_kb = ru.ru_maxrss;
    r->code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    r->sig = WIFSIGNALED(status) ? WTERMSIG(status) : 0;
    r->out = buf[0];
    r->err = buf[1];
}

/* ---- small checks --------------------------------------------------------------------- */

/* Does text contain one of the '|'-separated alternatives? */
static int has_any(const char *text, const char *alternatives)
{
    char alt[256];
    snprintf(alt, sizeof alt, "%s", alternatives);
    char *save = NULL;
    for (char *a = strtok_r(alt, "|", &save); a; a = strtok_r(NULL, "|", &save))
        if (strstr(text, a))
            return 1;
    return 0;
}

static const struct {
    const char *needle, *label;
} stop_reasons[] = {
    {"CPU budget", "clinic CPU budget"},
    {"print limit", "print limit"},
    {"bytes per string", "string length cap"},
    {"alerts per evaluation", "alerts per evaluation"},
    {"keeps asking to wake the patient sooner", "wake-up spacing"},
    {"is not a regular file", "regular files only"},
    {"instruction budget", "instruction budget"},
    {"deadline of", "deadline"},
    {"memory limit", "memory cap"},
    {"stack overflow", "stack overflow"},
    {"__gc metamethods", "__gc refused"},
    {"is not available to protocols", "allow-list of globals"},
    {"read-only in protocols", "read-only proxy"},
    {"protected metatable", "protected metatable"},
    {"index a boolean value", "locked string metatable"},
    {"only text chunks", "text-only load"},
    {"binary chunk", "text-only load"},
    {"field 'dump'", "string.dump removed"},
    {"is not valid: use names", "require name check"},
    {"not found in the protocol directories", "require path check"},
    {"alert has an unknown field", "alert validation"},
    {"must be a time", "alert validation"},
    {"the limit is 2000", "alert validation"},
    {"error object is", "error value described"},
    {"attempt to yield", "yield refused"},
    {"quarantined", "quarantine"},
};

static void classify(const run *r, char *out, size_t len)
{
    if (r->killed) {
        snprintf(out, len, "NOT STOPPED (killed at %d s)", SIM_WATCHDOG_MS / 1000);
        return;
    }
    if (r->sig) {
        snprintf(out, len, "CRASHED (signal %d)", r->sig);
        return;
    }
    if (r->code == 0) {
        snprintf(out, len, "NOT STOPPED (no error)");
        return;
    }
    for (size_t i = 0; i < RG_COUNTOF(stop_reasons); i++)
        if (strstr(r->err, stop_reasons[i].needle)) {
            snprintf(out, len, "%s%s", stop_reasons[i].label,
                     r->ms > SIM_BOUND_MS ? " (TOO LATE)" : "");
            return;
        }
    snprintf(out, len, "rule error");
}

/* The error reports simulate printed: every one must be about clinic bad and
 * name file; the good clinic must have none, and no printed line may pass for
 * the good clinic's. A report is an "error: " line and its indented
 * continuation lines. Returns the number of reports, or -1 with *why set. */
static int check_reports(const char *err, const char *file, char *why, size_t whylen)
{
    int n = 0, in_report = 0, named = 1;
    const char *line = err;
    while (*line) {
        const char *end = strchr(line, '\n');
        size_t len = end ? (size_t)(end - line) : strlen(line);
        char l[2048];
        snprintf(l, sizeof l, "%.*s", (int)(len < sizeof l - 1 ? len : sizeof l - 1), line);
        int cont = l[0] == ' ' || l[0] == '\t';
        if (in_report && !cont) {
            if (!named) {
                snprintf(why, whylen, "report %d does not name %s", n, file);
                return -1;
            }
            in_report = 0;
        }
        if (!strncmp(l, "error: ", 7)) {
            n++;
            if (strncmp(l, "error: clinic bad, patient ", 27) != 0) {
                snprintf(why, whylen, "a report is not attributed to clinic bad: \"%.200s\"", l);
                return -1;
            }
            in_report = 1;
            named = 0;
        } else if (!strncmp(l, "regimen: clinic ", 16) && strncmp(l, "regimen: clinic bad: ", 21)) {
            snprintf(why, whylen, "a refusal is not attributed to clinic bad: \"%.200s\"", l);
            return -1;
        } else if (l[0] == '[' && strncmp(l, "[bad] ", 6) != 0) {
            snprintf(why, whylen, "a printed line passes for another clinic's: \"%.200s\"", l);
            return -1;
        }
        if (in_report && strstr(l, file))
            named = 1;
        line = end ? end + 1 : line + len;
    }
    if (in_report && !named) {
        snprintf(why, whylen, "report %d does not name %s", n, file);
        return -1;
    }
    return n;
}

/* The good clinic's transitions (its lines of simulate's JSON output). */
static char *good_lines(const char *out)
{
    size_t cap = strlen(out) + 1, used = 0;
    char *g = malloc(cap);
    g[0] = '\0';
    for (const char *l = out; *l;) {
        const char *nl = strchr(l, '\n');
        size_t len = nl ? (size_t)(nl - l) + 1 : strlen(l);
        const char *c = strstr(l, "\"clinic\":\"good\"");
        if (c && (!nl || c < nl)) {
            memcpy(g + used, l, len);
            used += len;
            g[used] = '\0';
        }
        l += len;
    }
    return g;
}

static void write_events(const char *path)
{
    FILE *f = fopen(path, "w");
    cr_assert_not_null(f, "cannot write %s", path);
    for (size_t i = 0; i < RG_COUNTOF(good_events); i++)
        fprintf(f, "%s\n", good_events[i]);
    for (size_t i = 0; i < RG_COUNTOF(bad_events); i++)
        fprintf(f, "%s\n", bad_events[i]);
    fclose(f);
}

static void json_array(char *out, size_t len, const char *const *ev, size_t n)
{
    size_t used = (size_t)snprintf(out, len, "[");
    for (size_t i = 0; i < n; i++)
        used += (size_t)snprintf(out + used, len - used, "%s%s", i ? "," : "", ev[i]);
    snprintf(out + used, len - used, "]");
}

/* ---- the service ---------------------------------------------------------------------- */

typedef struct service {
    char config[600], db[600], log[600];
    pid_t pid;
    int port, status; /* status: exit code once it has exited, else -1 */
} service;

static void service_config(service *s, const char *dir, const char *bad_dir)
{
    char cwd[512], cfg[4096];
    cr_assert_not_null(getcwd(cwd, sizeof cwd));
    snprintf(s->config, sizeof s->config, "%s/serve.json", dir);
    snprintf(s->db, sizeof s->db, "%s/serve.db", dir);
    snprintf(s->log, sizeof s->log, "%s/serve.log", dir);
    snprintf(cfg, sizeof cfg,
             "{ \"listen\": \"127.0.0.1:0\",\n"
             "  \"clinics\": {\n"
             "    \"bad\": { \"protocols\": \"%s%s%s\", \"tokens\": [\"" TOKEN_BAD "\"] },\n"
             "    \"good\": { \"protocols\": \"%s/" GOOD_DIR "\", \"tokens\": [\"" TOKEN_GOOD "\"] } },\n"
             "  \"limits\": { \"max_instructions\": %d, \"deadline_ms\": %d, \"max_memory_mb\": %d,\n"
             "              \"clinic_cpu_ms\": %d } }\n",
             bad_dir[0] == '/' ? "" : cwd, bad_dir[0] == '/' ? "" : "/", bad_dir, cwd,
             LIM_INSTRUCTIONS, LIM_DEADLINE_MS, LIM_MEMORY_MB, LIM_CLINIC_CPU_MS);
    FILE *f = fopen(s->config, "w");
    cr_assert_not_null(f);
    fputs(cfg, f);
    fclose(f);
}

static char *read_file_or_empty(const char *path)
{
    return access(path, F_OK) == 0 ? rg_test_read(path) : strdup("");
}

/* Starts serve; returns 1 once it listens, 0 if it exited first (s->status). */
static int service_start(service *s)
{
    s->status = -1;
    s->pid = fork();
    cr_assert_neq(s->pid, -1);
    if (s->pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        int fd = open(s->log, O_WRONLY | O_CREAT | O_APPEND, 0600);
        dup2(fd, 1);
        dup2(fd, 2);
        execl(rg_test_bin(), rg_test_bin(), "serve", "--config", s->config, "--db", s->db,
              (char *)NULL);
        _exit(127);
    }
    g_serve_pid = s->pid;
    int64_t until = mono_ms() + SERVE_START_MS;
    while (mono_ms() < until) {
        char *log = read_file_or_empty(s->log);
        int listening = count_listening(log, &s->port);
        free(log);
        if (listening)
            return 1;
        int status;
        if (waitpid(s->pid, &status, WNOHANG) == s->pid) {
            g_serve_pid = 0;
            s->status = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
            return 0;
        }
        usleep(10000);
    }
    cr_assert_fail("serve neither listened nor exited within %d ms:\n%s", SERVE_START_MS,
                   read_file_or_empty(s->log));
    return 0;
}

/* SIGTERM, and the exit status (SIGKILL and -1 if it does not stop in 10 s). */
static int service_stop(service *s)
{
    kill(s->pid, SIGTERM);
    for (int i = 0; i < 1000; i++) {
        int status;
        if (waitpid(s->pid, &status, WNOHANG) == s->pid) {
            g_serve_pid = 0;
            return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
        }
        usleep(10000);
    }
    kill(s->pid, SIGKILL);
    waitpid(s->pid, NULL, 0);
    g_serve_pid = 0;
    return -1;
}

static long vm_hwm_kb(pid_t pid)
{
    char path[64], *st;
    snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return 0;
    char line[256];
    long kb = 0;
    while (fgets(line, sizeof line, f))
        if (!strncmp(line, "VmHWM:", 6))
            kb = strtol(line + 6, &st, 10);
    fclose(f);
    return kb;
}

/* Every stored evaluation error: clinic bad's must name file, one must match
 * expect; clinic good must have none. Returns clinic bad's count. */
static int check_eval_errors(const char *db, const char *file, const char *expect)
{
    sqlite3 *h;
    sqlite3_stmt *st;
    cr_assert_eq(sqlite3_open_v2(db, &h, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    sqlite3_busy_timeout(h, 5000);
    cr_assert_eq(sqlite3_prepare_v2(h, "SELECT clinic, message FROM eval_errors ORDER BY seq", -1,
                                    &st, NULL),
                 SQLITE_OK, "%s", sqlite3_errmsg(h));
    int bad = 0, matched = 0;
    while (sqlite3_step(st) == SQLITE_ROW) {
        const char *clinic = (const char *)sqlite3_column_text(st, 0);
        const char *msg = (const char *)sqlite3_column_text(st, 1);
        cr_assert_str_eq(clinic, "bad", "serve stored an evaluation error for clinic %s: %s",
                         clinic, msg);
        cr_expect(strstr(msg, file), "serve: the stored error does not name %s: %s", file, msg);
        cr_assert_null(strstr(msg, "ESCAPED"), "serve: %s", msg);
        matched |= has_any(msg, expect);
        bad++;
    }
    sqlite3_finalize(st);
    sqlite3_close(h);
    cr_assert_gt(bad, 0, "serve stored no evaluation error for clinic bad");
    cr_expect(matched, "serve: no stored error says '%s'", expect);
    return bad;
}

/* Every printed line in the service log is attributed to the clinic that
 * printed it; nothing the hostile clinic wrote passes for the good one's. */
static void check_log_lines(const char *log)
{
    for (const char *l = log; *l;) {
        const char *nl = strchr(l, '\n');
        size_t len = nl ? (size_t)(nl - l) : strlen(l);
        char line[1024];
        snprintf(line, sizeof line, "%.*s", (int)(len < sizeof line - 1 ? len : sizeof line - 1), l);
        cr_expect(line[0] != '[' || !strncmp(line, "[bad] ", 6),
                  "serve log: a line passes for another clinic's: %s", line);
        cr_expect(!strstr(line, "FORGED") || strstr(line, "[bad]") || strstr(line, "clinic bad"),
                  "serve log: text from clinic bad on a line of its own: %s", line);
        l += len + (nl != NULL);
    }
    cr_assert_null(strstr(log, "Sanitizer"), "sanitizer report from the server:\n%s", log);
    cr_assert_null(strstr(log, "runtime error:"), "UBSan report from the server:\n%s", log);
}

static void good_alert_is_in_feed(int port, const char *what)
{
    char *out;
    int st = http_within(port, "GET", "/v1/transitions?after=0", TOKEN_GOOD, NULL, HTTP_TIMEOUT_MS,
                         &out);
    cr_assert_eq(st, 200, "%s: GET /v1/transitions for the good clinic: status %d", what, st);
    cr_assert(strstr(out, GOOD_ALERT) && strstr(out, "\"clinic\":\"good\""),
              "%s: the good clinic's alert is missing from its feed:\n%.2000s", what, out);
    free(out);
}

static void service_is_alive(service *s, const char *what)
{
    char *out;
    int st = http_within(s->port, "GET", "/healthz", NULL, NULL, HTTP_TIMEOUT_MS, &out);
    free(out);
    int status;
    cr_assert_eq(waitpid(s->pid, &status, WNOHANG), 0, "%s: the service died (status %d):\n%s",
                 what, status, read_file_or_empty(s->log));
    cr_assert_eq(st, 200, "%s: GET /healthz gave %d (0: no answer within %d ms)", what, st,
                 HTTP_TIMEOUT_MS);
}

/* ---- one case -------------------------------------------------------------------------- */

static const adv_case *find_case(const char *name)
{
    for (size_t i = 0; i < RG_COUNTOF(adv_cases); i++)
        if (!strcmp(adv_cases[i].name, name))
            return &adv_cases[i];
    return NULL;
}

static void check_header(const char *path, const char *name)
{
    char *text = rg_test_read(path);
    char first[128];
    snprintf(first, sizeof first, "-- adversarial/%s\n", name);
    cr_assert(!strncmp(text, first, strlen(first)), "%s must start with '%s'", path, first);
    const char *code = strstr(text, "\nlocal ");
    cr_assert_not_null(code, "%s: no code", path);
    const char *attacks = strstr(text, "-- Attacks:"), *must = strstr(text, "-- Must happen:");
    cr_assert(attacks && attacks < code && must && must < code,
              "%s: the comment header must say what it attacks and what must happen", path);
    free(text);
}

static void serve_eval_case(const adv_case *c, const char *dir, const char *file)
{
    service s = {0};
    char body[4096], *out;
    service_config(&s, g_tmp, dir);
    cr_assert(service_start(&s), "serve exited %d instead of starting:\n%s", s.status,
              read_file_or_empty(s.log));
    snprintf(g_row.serve, sizeof g_row.serve, "started");
    json_array(body, sizeof body, bad_events, RG_COUNTOF(bad_events));
    int64_t t0 = mono_ms();
    int st = http_within(s.port, "POST", "/v1/events", TOKEN_BAD, body, HTTP_TIMEOUT_MS, &out);
    long post_ms = (long)(mono_ms() - t0);
    if (st != 200)
        snprintf(g_row.serve, sizeof g_row.serve, st ? "POST failed" : "HUNG (no answer in %d s)",
                 HTTP_TIMEOUT_MS / 1000);
    cr_assert_eq(st, 200, "serve: POST of the bad clinic's events: status %d after %ld ms "
                          "(0: no answer)\n%.500s", st, post_ms, out);
    cr_assert(strstr(out, "\"status\":\"stored\""), "%.500s", out);
    free(out);
    json_array(body, sizeof body, good_events, RG_COUNTOF(good_events));
    st = http_within(s.port, "POST", "/v1/events", TOKEN_GOOD, body, HTTP_TIMEOUT_MS, &out);
    cr_assert_eq(st, 200, "serve: POST of the good clinic's events: status %d\n%.500s", st, out);
    free(out);
    good_alert_is_in_feed(s.port, "serve");
    service_is_alive(&s, "serve");
    st = http_within(s.port, "GET", "/v1/transitions?after=0", TOKEN_BAD, NULL, HTTP_TIMEOUT_MS,
                     &out);
    cr_assert_eq(st, 200);
    cr_assert_null(strstr(out, "ESCAPED"), "serve: %.500s", out);
    free(out);
    check_eval_errors(s.db, file, c->expect);
    if (strstr(c->expect, "quarantined") || strstr(c->expect, "CPU budget")) {
        /* the quarantine is counted in /metrics and logged with the file */
        st = http_within(s.port, "GET", "/metrics", TOKEN_BAD, NULL, HTTP_TIMEOUT_MS, &out);
        cr_assert_eq(st, 200);
        const char *q = strstr(out, "\nregimen_quarantines_total ");
        cr_assert(q && atol(q + strlen("\nregimen_quarantines_total ")) >= 1,
                  "serve: no quarantine counted in /metrics:\n%.3000s", out);
        cr_assert(strstr(out, "\nregimen_protocols_quarantined "), "%.3000s", out);
        free(out);
        char *log = rg_test_read(s.log);
        const char *line = strstr(log, "is quarantined for");
        cr_assert(line, "serve: the quarantine is not logged:\n%s", log);
        const char *bol = line;
        while (bol > log && bol[-1] != '\n')
            bol--;
        const char *eol = strchr(line, '\n');
        cr_assert(memmem(bol, eol ? (size_t)(eol - bol) : strlen(bol), file, strlen(file)),
                  "serve: the quarantine line does not name %s:\n%.*s", file,
                  (int)(eol ? eol - bol : (long)strlen(bol)), bol);
        free(log);
    }
    g_row.serve_rss_kb = vm_hwm_kb(s.pid);
    snprintf(g_row.serve, sizeof g_row.serve, "ok (POST %ld ms)", post_ms);
    int rc = service_stop(&s);
    cr_assert_eq(rc, 0, "serve: SIGTERM must stop it cleanly (got %d):\n%s", rc,
                 read_file_or_empty(s.log));
    char *log = rg_test_read(s.log);
    check_log_lines(log);
    free(log);
}

/* ---- a hostile fhir.map (stage FHIR) ---------------------------------------------------- */

#define FHIR_ENTRIES 500

/* A Bundle of n blood pressure Observations (vitals events), one patient
 * each, "bp-0" first. */
static char *bp_bundle(int n)
{
    size_t cap = (size_t)n * 700 + 256, len = 0;
    char *b = malloc(cap);
    cr_assert_not_null(b);
    len += (size_t)snprintf(b + len, cap - len, "{\"resourceType\":\"Bundle\",\"type\":"
                            "\"collection\",\"entry\":[");
    for (int i = 0; i < n; i++)
        len += (size_t)snprintf(
            b + len, cap - len,
            "%s{\"resource\":{\"resourceType\":\"Observation\",\"id\":\"bp-%d\","
            "\"status\":\"final\",\"code\":{\"coding\":[{\"system\":\"http://loinc.org\","
            "\"code\":\"85354-9\"}]},\"subject\":{\"reference\":\"Patient/f%d\"},"
            "\"effectiveDateTime\":\"2026-03-01T09:00:00Z\",\"component\":["
            "{\"code\":{\"coding\":[{\"system\":\"http://loinc.org\",\"code\":\"8480-6\"}]},"
            "\"valueQuantity\":{\"value\":120}},"
            "{\"code\":{\"coding\":[{\"system\":\"http://loinc.org\",\"code\":\"8462-4\"}]},"
            "\"valueQuantity\":{\"value\":80}}]}}",
            i ? "," : "", i, i);
    snprintf(b + len, cap - len, "]}");
    return b;
}

typedef struct fhir_post {
    int port;
    const char *body;
    int status;
    char *out;
    long ms;
    atomic_int done;
} fhir_post;

static void *fhir_post_main(void *arg)
{
    fhir_post *p = arg;
    int64_t t0 = mono_ms();
    p->status =
        http_within(p->port, "POST", "/v1/fhir", TOKEN_BAD, p->body, HTTP_TIMEOUT_MS, &p->out);
    p->ms = (long)(mono_ms() - t0);
    atomic_store(&p->done, 1);
    return NULL;
}

static int rows(const char *db, const char *sql)
{
    sqlite3 *h;
    sqlite3_stmt *st;
    int n = -1;
    cr_assert_eq(sqlite3_open_v2(db, &h, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    sqlite3_busy_timeout(h, 5000);
    cr_assert_eq(sqlite3_prepare_v2(h, sql, -1, &st, NULL), SQLITE_OK, "%s", sqlite3_errmsg(h));
    if (sqlite3_step(st) == SQLITE_ROW)
        n = sqlite3_column_int(st, 0);
    sqlite3_finalize(st);
    sqlite3_close(h);
    return n;
}

/* The clinic's fhir.map is slow per entry and the Bundle has 500 entries:
 * during the mapping /healthz and the good clinic's POST answer in under a
 * second, the hostile request ends within the deadline + 10% with a 500
 * naming clinic.lua, and nothing of it is stored; a Bundle of 3 entries,
 * mapped well within the deadline, is stored. */
static void serve_fhir_case(const adv_case *c, const char *dir)
{
    service s = {0};
    char body[4096], *out;
    service_config(&s, g_tmp, dir);
    cr_assert(service_start(&s), "serve exited %d instead of starting:\n%s", s.status,
              read_file_or_empty(s.log));
    char *bundle = bp_bundle(FHIR_ENTRIES);
    fhir_post p = {.port = s.port, .body = bundle};
    pthread_t th;
    cr_assert_eq(pthread_create(&th, NULL, fhir_post_main, &p), 0);
    /* the mapping has begun (its first call printed): the measurements
     * below are of the loop while it runs. (Waited for, up to 30 s: after
     * 1 s the measurements were taken anyway, before any mapping on a
     * machine slow to send and parse the Bundle, and proved nothing.) */
    int began = 0;
    for (int64_t end = mono_ms() + 30000; !began && mono_ms() < end; usleep(2000)) {
        char *log = read_file_or_empty(s.log);
        began = strstr(log, "fhir.map began") != NULL;
        free(log);
    }
    cr_assert(began, "the Bundle's fhir.map never began:\n%s", read_file_or_empty(s.log));
    int64_t t0 = mono_ms();
    int st = http_within(s.port, "GET", "/healthz", NULL, NULL, HTTP_TIMEOUT_MS, &out);
    long healthz_ms = (long)(mono_ms() - t0);
    free(out);
    cr_assert_eq(st, 200, "/healthz during the mapping: %d", st);
    json_array(body, sizeof body, good_events, RG_COUNTOF(good_events));
    t0 = mono_ms();
    st = http_within(s.port, "POST", "/v1/events", TOKEN_GOOD, body, HTTP_TIMEOUT_MS, &out);
    long post_ms = (long)(mono_ms() - t0);
    cr_assert_eq(st, 200, "the good clinic's POST during the mapping: %d\n%s", st, out);
    free(out);
    int during = !atomic_load(&p.done);
    pthread_join(th, NULL);
    fprintf(stderr, "fhir_map_slow: during a %d-entry Bundle's fhir.map: /healthz %ld ms, "
            "another clinic's POST %ld ms; the Bundle's request ended in %ld ms (deadline %d "
            "ms)\n", FHIR_ENTRIES, healthz_ms, post_ms, p.ms, LIM_DEADLINE_MS);
    cr_assert(during, "the hostile Bundle was answered (%ld ms) before the measurements", p.ms);
    cr_assert_lt(healthz_ms, 1000);
    cr_assert_lt(post_ms, 1000);
    good_alert_is_in_feed(s.port, "fhir");
    snprintf(g_row.serve, sizeof g_row.serve, "%d (%ld ms)", p.status, p.ms);
    snprintf(g_row.stopped_by, sizeof g_row.stopped_by, "deadline (serve: fhir.map, all calls)");
    snprintf(g_row.attributed, sizeof g_row.attributed, "%s",
             strstr(p.out, "clinic.lua:") ? "yes" : "NO");
    cr_assert_eq(p.status, 500, "the hostile Bundle: %d after %ld ms\n%.2000s", p.status, p.ms,
                 p.out);
    cr_assert(strstr(p.out, "clinic.lua:") && has_any(p.out, c->expect),
              "the error must name clinic.lua and its line and say '%s':\n%.2000s", c->expect,
              p.out);
    /* within the deadline + 10%, and a slack as TIGHT_BOUND_MS has for what
     * is not the mapping (sending and parsing 500 entries, the hand-over to
     * the thread and back, a machine shared with a parallel case): alone it
     * ends 28 to 38 ms past the deadline, beside another case up to 110 */
    cr_assert_lt(p.ms, LIM_DEADLINE_MS * 11 / 10 + 250, "the Bundle's request took %ld ms",
                 p.ms);
    free(p.out);
    free(bundle);
    cr_assert_eq(rows(s.db, "SELECT count(*) FROM events WHERE clinic = 'bad'"), 0,
                 "part of the refused Bundle was stored");
    /* a small Bundle is mapped (on a thread) and stored whole */
    bundle = bp_bundle(3);
    st = http_within(s.port, "POST", "/v1/fhir", TOKEN_BAD, bundle, HTTP_TIMEOUT_MS, &out);
    free(bundle);
    cr_assert_eq(st, 200, "a 3-entry Bundle: %d\n%.2000s", st, out);
    cr_assert(strstr(out, "\"stored\":3"), "%.2000s", out);
    free(out);
    cr_assert_eq(rows(s.db, "SELECT count(*) FROM events WHERE clinic = 'bad'"), 3);
    service_is_alive(&s, "fhir");
    g_row.serve_rss_kb = vm_hwm_kb(s.pid);
    int rc = service_stop(&s);
    cr_assert_eq(rc, 0, "fhir: SIGTERM must stop it cleanly (got %d):\n%s", rc,
                 read_file_or_empty(s.log));
    char *log = rg_test_read(s.log);
    check_log_lines(log);
    cr_assert(strstr(log, "clinic.lua:"), "the log must name clinic.lua:\n%s", log);
    free(log);
}

/* A running service whose clinic reloads into the hostile file keeps the old
 * version and keeps serving. */
static void serve_reload_case(const adv_case *c, const char *file_path, const char *file)
{
    service s = {0};
    char dir[400], path[600], body[4096], *out;
    snprintf(dir, sizeof dir, "%s/reload", g_tmp);
    snprintf(path, sizeof path, "%s/%s", dir, file);
    cr_assert_eq(mkdir(dir, 0700), 0);
    FILE *f = fopen(path, "w");
    cr_assert_not_null(f);
    fputs("local R = require 'regimen'\n"
          "return R.protocol { id = 'harmless', version = '1', rules = { { id = 'harmless.r',\n"
          "  severity = 'info', check = function() end } } }\n", f);
    fclose(f);
    service_config(&s, g_tmp, dir);
    cr_assert(service_start(&s), "serve with a harmless bad clinic exited %d:\n%s", s.status,
              read_file_or_empty(s.log));
    json_array(body, sizeof body, good_events, RG_COUNTOF(good_events));
    cr_assert_eq(http_within(s.port, "POST", "/v1/events", TOKEN_GOOD, body, HTTP_TIMEOUT_MS, &out),
                 200);
    free(out);
    char *hostile = rg_test_read(file_path);
    f = fopen(path, "w");
    cr_assert_not_null(f);
    fputs(hostile, f);
    fclose(f);
    free(hostile);
    kill(s.pid, SIGHUP);
    char *log = NULL;
    for (int i = 0; i < 500; i++) {
        free(log);
        log = read_file_or_empty(s.log);
        if (strstr(log, "protocols refused"))
            break;
        usleep(20000);
    }
    cr_assert(strstr(log, "clinic bad: protocols refused"), "reload: not refused:\n%s", log);
    const char *refusal = strstr(log, "clinic bad: protocols refused");
    cr_expect(strstr(refusal, file) && has_any(refusal, c->expect),
              "reload: the refusal must name %s and say '%s':\n%s", file, c->expect, log);
    free(log);
    service_is_alive(&s, "reload");
    good_alert_is_in_feed(s.port, "reload");
    g_row.serve_rss_kb = vm_hwm_kb(s.pid);
    snprintf(g_row.serve, sizeof g_row.serve, "refused; reload refused");
    int rc = service_stop(&s);
    cr_assert_eq(rc, 0, "reload: SIGTERM must stop it cleanly (got %d)", rc);
    log = rg_test_read(s.log);
    check_log_lines(log);
    free(log);
}

static void run_case(const char *name)
{
    const adv_case *c = find_case(name);
    char dir[300], file[200], file_path[600], events[600], why[512];
    cr_assert_not_null(c);
    memset(&g_row, 0, sizeof g_row);
    g_row.used = 1;
    snprintf(g_row.name, sizeof g_row.name, "%s", name);
    snprintf(g_row.stage, sizeof g_row.stage, "%s", c->stage == LOAD ? "load" : "eval");
    snprintf(dir, sizeof dir, ADV_DIR "/%s", name);
    snprintf(file, sizeof file, "%s.lua", name);
    snprintf(file_path, sizeof file_path, "%s/%s", dir, file);
    cr_assert_eq(access(file_path, R_OK), 0, "%s is missing", file_path);
    check_header(file_path, name);
    rg_test_tmpdir(g_tmp);
    if (c->stage == FHIR) { /* the attack is in clinic.lua, tried through the service */
        char clinic_path[600];
        snprintf(g_row.stage, sizeof g_row.stage, "fhir");
        snprintf(clinic_path, sizeof clinic_path, "%s/clinic.lua", dir);
        check_header(clinic_path, name);
        serve_fhir_case(c, dir);
        return;
    }
    snprintf(events, sizeof events, "%s/events.jsonl", g_tmp);
    write_events(events);
    if (!strcmp(name, "reach_os_execute"))
        unlink(MARKER);
    if (!strcmp(name, "require_fifo")) { /* git cannot hold a FIFO: made here, removed in fini */
        char lib[400];
        snprintf(lib, sizeof lib, "%s/lib", dir);
        mkdir(lib, 0700);
        snprintf(g_fifo, sizeof g_fifo, "%s/lib/fifo.lua", dir);
        unlink(g_fifo);
        cr_assert_eq(mkfifo(g_fifo, 0600), 0, "mkfifo %s: %s", g_fifo, strerror(errno));
    }

    /* 1. check */
    run r;
    char instr[32], deadline[32], memory[32];
    snprintf(instr, sizeof instr, "%d", LIM_INSTRUCTIONS);
    snprintf(deadline, sizeof deadline, "%d", LIM_DEADLINE_MS);
    snprintf(memory, sizeof memory, "%d", LIM_MEMORY_MB);
    const char *check[] = {"check", "--max-instructions", instr, "--deadline-ms", deadline,
                           "--max-memory-mb", memory, dir, NULL};
    run_bin(check, SIM_WATCHDOG_MS, &r);
    cr_assert(!r.killed && !r.sig, "check did not end by itself (killed %d, signal %d)",
              r.killed, r.sig);
    if (c->stage == EVAL) {
        char ok[400];
        snprintf(ok, sizeof ok, "%s: ok, ", dir);
        /* it loads (it only misbehaves when a rule runs); check then runs its rule on
         * generated histories, within the same limits, and refuses it when it fails */
        cr_assert(strstr(r.out, ok), "check must load %s; output:\n%s%s", dir, r.out, r.err);
        cr_assert(r.code == 0 || r.code == 1, "check exit %d:\n%s%s", r.code, r.out, r.err);
        if (r.code == 1)
            cr_assert(strstr(r.out, "  error: ") && strstr(r.out, file) &&
                      strstr(r.err, "evaluation error"),
                      "check must name the failing rule and %s:\n%s%s", file, r.out, r.err);
    } else {
        cr_assert_eq(r.code, 1, "check must refuse %s (exit %d):\n%s%s", dir, r.code, r.out,
                     r.err);
        cr_expect(strstr(r.err, file), "check: the error must name %s:\n%s", file, r.err);
        cr_expect(has_any(r.err, c->expect), "check: expected '%s':\n%s", c->expect, r.err);
    }
    run_free(&r);

    /* 2. simulate, next to the good clinic */
    char bad_arg[400], cpu[32];
    snprintf(bad_arg, sizeof bad_arg, "bad=%s", dir);
    snprintf(cpu, sizeof cpu, "%d", LIM_CLINIC_CPU_MS);
    const char *sim[] = {"simulate", "--events", events, "--until", "2026-03-10T00:00:00Z",
                         "--format", "jsonl", "--clinic", bad_arg, "--clinic", "good=" GOOD_DIR,
                         "--max-instructions", instr, "--deadline-ms", deadline,
                         "--max-memory-mb", memory, "--clinic-cpu-ms", cpu, NULL};
    run_bin(sim, SIM_WATCHDOG_MS, &r);
    g_row.sim_ms = r.ms;
    g_row.sim_rss_kb = r.rss_kb;
    classify(&r, g_row.stopped_by, sizeof g_row.stopped_by);
    int reports = check_reports(r.err, file, why, sizeof why);
    snprintf(g_row.attributed, sizeof g_row.attributed, "%s",
             reports < 0 ? "NO" : strstr(r.err, file) ? "yes" : "NO (no file)");
    cr_assert(!r.killed, "simulate was NOT stopped: still running after %d ms, killed by the "
                         "test\nstderr so far:\n%.3000s", SIM_WATCHDOG_MS, r.err);
    cr_assert_eq(r.sig, 0, "simulate CRASHED with signal %d\n%.3000s", r.sig, r.err);
    cr_assert_null(strstr(r.out, "ESCAPED"), "%.3000s", r.out);
    cr_assert_null(strstr(r.err, "ESCAPED"), "%.3000s", r.err);
    cr_expect_null(strstr(r.err, "Sanitizer"), "sanitizer report:\n%.3000s", r.err);
    cr_expect_null(strstr(r.err, "runtime error:"), "UBSan report:\n%.3000s", r.err);
    cr_assert_lt(r.ms, SIM_BOUND_MS, "simulate took %ld ms: the per-evaluation limits (%d "
                 "evaluations of at most %d ms) did not hold it", r.ms, BAD_EVALUATIONS,
                 LIM_DEADLINE_MS);
    for (size_t i = 0; i < RG_COUNTOF(tight_cases); i++)
        if (!strcmp(name, tight_cases[i]))
            cr_assert_lt(r.ms, TIGHT_BOUND_MS, "simulate took %ld ms: %d evaluations were not "
                         "held to %d ms + 10%% each", r.ms, BAD_EVALUATIONS, LIM_DEADLINE_MS);
    cr_expect_geq(reports, 0, "simulate: %s\n%.3000s", why, r.err);
    cr_expect(strstr(r.err, file), "simulate: the error must name %s:\n%.3000s", file, r.err);
    cr_expect(has_any(r.err, c->expect), "simulate: expected '%s':\n%.3000s", c->expect, r.err);
    if (c->stage == EVAL) {
        cr_assert_eq(r.code, 1, "simulate: exit %d, expected 1\n%.3000s", r.code, r.err);
        cr_expect_neq(reports, 0, "simulate printed no error report:\n%.3000s", r.err);
        cr_assert(strstr(r.out, GOOD_ALERT) && strstr(r.out, "\"clinic\":\"good\""),
                  "simulate: the good clinic's alert is missing:\n%.3000s", r.out);
        /* and exactly what it gets without the hostile neighbour */
        const char *base_path = getenv("RG_ADV_BASELINE");
        cr_assert_not_null(base_path, "the baseline run of the good clinic alone failed");
        char *base = rg_test_read(base_path);
        char *with = good_lines(r.out), *without = good_lines(base);
        cr_assert(strstr(without, GOOD_ALERT), "baseline:\n%s", base);
        cr_expect_str_eq(with, without, "the hostile neighbour changed the good clinic's "
                         "transitions");
        free(with);
        free(without);
        free(base);
    } else {
        cr_assert_eq(r.code, 2, "simulate must refuse the clinic (exit %d)\n%.3000s", r.code,
                     r.err);
        cr_assert_str_eq(r.out, "", "nothing is simulated when a clinic cannot load");
    }
    run_free(&r);

    /* 3. the service, with both clinics */
    if (c->stage == EVAL) {
        serve_eval_case(c, dir, file);
    } else {
        service s = {0};
        service_config(&s, g_tmp, dir);
        cr_assert(!service_start(&s), "serve must refuse to start with %s", dir);
        cr_assert_eq(s.status, 2, "serve must exit 2 (got %d)", s.status);
        char *log = rg_test_read(s.log);
        cr_expect(strstr(log, "clinic bad: protocols not loaded") && strstr(log, file) &&
                      has_any(log, c->expect),
                  "serve must name clinic bad, %s and say '%s':\n%s", file, c->expect, log);
        free(log);
        snprintf(g_row.serve, sizeof g_row.serve, "refused (exit 2)");
        /* (the shipped set's whole check with its scenario tests: its time is
         * not what this case measures, so a loaded machine or a sanitizer
         * build gets more than the hostile runs' watchdog) */
        const char *good_check[] = {"check", GOOD_DIR, NULL};
        run_bin(good_check, 5 * SIM_WATCHDOG_MS, &r);
        cr_assert_eq(r.code, 0, "the good clinic alone checks fine:\n%s", r.err);
        cr_assert(strstr(r.out, "acute.infusion-due"), "%s", r.out);
        run_free(&r);
        serve_reload_case(c, file_path, file);
    }
    if (!strcmp(name, "reach_os_execute"))
        cr_assert_neq(access(MARKER, F_OK), 0, "ESCAPED: %s exists", MARKER);
}

#define ADV_TEST(n, s, e)                                                                      \
    Test(adversarial, n, .timeout = 60, .fini = adv_fini) { run_case(#n); }
ADVERSARIAL(ADV_TEST)

/* The list above and the directory agree: a protocol added to
 * tests/adversarial/ without an entry would otherwise never run. */
Test(adversarial, every_protocol_directory_is_listed)
{
    DIR *d = opendir(ADV_DIR);
    cr_assert_not_null(d, "run from the repository root: %s not found", ADV_DIR);
    struct dirent *de;
    int dirs = 0;
    while ((de = readdir(d))) {
        if (de->d_name[0] == '.')
            continue;
        dirs++;
        cr_assert_not_null(find_case(de->d_name), "%s/%s has no entry in ADVERSARIAL", ADV_DIR,
                           de->d_name);
    }
    closedir(d);
    cr_assert_eq(dirs, (int)RG_COUNTOF(adv_cases), "%d directories, %d entries", dirs,
                 (int)RG_COUNTOF(adv_cases));
    cr_assert_geq(dirs, 25);
}
