/*
 * main.c - the `regimen` command line: a table of commands (name, handler,
 * usage), as nginx's ngx_command_t or git's builtin table, and the dispatch.
 *
 * Each command group lives in a file of its own (cli.h lists them):
 * store_cmd.c (ingest, import-fhir, rejected, verify), simulate_cmd.c
 * (simulate, diff, sweep), check_cmd.c (check, test, explain), serve_cmd.c,
 * report_cmd.c, passwd_cmd.c, audit_cmd.c, notify_cmd.c (notify-test,
 * notifications) and protocols_cmd.c; what they share, the one option parser
 * among it, is cli.c. Each command parses its options, opens the store and
 * the engine, and calls the same functions the service calls. Exit codes: 0
 * all good, 1 the work was done but something was refused or failed
 * (rejected lines, conflicts, protocol errors), 2 the command could not run
 * (usage, unreadable files, database errors).
 */
#include "cli/cli.h"

#include "core/rg.h"
#include "store/holder.h"
#include "store/store.h"

#include <signal.h>
#include <stdio.h>
#include <string.h>

#define RG_VERSION "0.1.0"

/* One row per command: its name, its handler and its lines of the usage
 * (regimen --help shows them in this order; regimen help NAME shows one). */
static const struct rg__command {
    const char *name;
    int (*run)(int argc, char **argv);
    const char *usage;
} rg__commands[] = {
    {"ingest", rg_cmd_ingest,
     "  ingest [--db PATH] [--future-skew MIN] FILE|-\n"
     "                                   store events (JSON Lines); bad lines are kept aside;\n"
     "                                   an event dated more than MIN minutes (default 15;\n"
     "                                   0: no check) ahead of the clock is stored and flagged\n"},
    {"import-fhir", rg_cmd_import_fhir,
     "  import-fhir [--db PATH] [--clinic NAME[=DIR]] [--print] FILE|-\n"
     "                                   store FHIR R4 resources (a Bundle or NDJSON) as\n"
     "                                   events, one transaction; reports every entry:\n"
     "                                   stored, duplicate, conflict, rejected (with its\n"
     "                                   location), unmapped or context. Events are of\n"
     "                                   clinic NAME (default: default); DIR's clinic.lua\n"
     "                                   may adjust the mapping (fhir = {...}, docs/fhir.md);\n"
     "                                   --print prints the events as JSON Lines instead\n"
     "                                   of storing them\n"},
    {"rejected", rg_cmd_rejected,
     "  rejected [--db PATH]             list refused lines with their line, field and reason\n"},
    {"verify", rg_cmd_verify,
     "  verify [--db PATH]               check every stored event against its digest and\n"
     "                                   its columns against its body; name each damaged\n"
     "                                   one (clinic, id, seq); exit 1 if any is damaged\n"},
    {"simulate", rg_cmd_simulate,
     "  simulate --events FILE --until TIME [--format text|jsonl|html] [--protocols DIR]\n"
     "           [--acks FILE]  (jsonl: the notify policies' plan, FILE's acknowledgements)\n"
     "           [--clinic NAME=DIR]... [--db PATH] [--jobs N]\n"
     "                                   replay a timeline under a virtual clock and print\n"
     "                                   every alert transition in time order\n"
     "                                   (--jobs N: patients over N threads, default\n"
     "                                   the cores; the output is the same)\n"},
    {"sweep", rg_cmd_sweep,
     "  sweep --at TIME [--db PATH] [--protocols DIR] [--clinic NAME=DIR]... [--jobs N]\n"
     "        [--from-memory]            re-evaluate every stored patient once at TIME, as\n"
     "                                   after a protocol change, and report the rate;\n"
     "                                   --jobs N worker threads (default: the cores);\n"
     "                                   --from-memory: one core, every history read into\n"
     "                                   memory first (not timed), the sweep timed alone\n"},
    {"explain", rg_cmd_explain,
     "  explain KEY [--db PATH | --events FILE --until TIME [--protocols DIR]]\n"
     "                                   why an alert opened or resolved: rule, protocol\n"
     "                                   version, parameters and the events it rested on\n"},
    {"diff", rg_cmd_diff,
     "  diff --events FILE --until TIME [--jobs N] OLD_DIR NEW_DIR\n"
     "                                   replay one history under two protocol versions\n"
     "                                   and list the transitions that differ\n"},
    {"check", rg_cmd_check,
     "  check [--describe] [DIR...]      load protocols, evaluate every rule on generated\n"
     "                                   histories and DIR/tests, report errors with file and\n"
     "                                   line (default: the shipped sets); --describe: the\n"
     "                                   reference (Markdown)\n"},
    {"serve", rg_cmd_serve,
     "  serve --config FILE [--db PATH]  run the alerting service (HTTP API on one event\n"
     "                                   loop; see regimen serve --help)\n"},
    {"notify-test", rg_cmd_notify_test,
     "  notify-test DIR RECEIVER         send a test message to one receiver of DIR/clinic.lua's\n"
     "                                   notify policy (webhook, SMS gateway, e-mail over SMTP)\n"},
    {"notifications", rg_cmd_notifications,
     "  notifications --clinic NAME [--patient P] [--key K] [--format text|json] [--db PATH]\n"
     "                                   the service's notification history: every attempt\n"},
    {"passwd", rg_cmd_passwd,
     "  passwd                           read a password on standard input and print its\n"
     "                                   argon2id hash, for a user of serve's configuration\n"},
    {"report", rg_cmd_report,
     "  report --clinic NAME[=DIR] --from TIME --to TIME [--format text|csv|html]\n"
     "         [--db PATH | --events FILE]\n"
     "                                   the esketamine (Spravato REMS) compliance report:\n"
     "                                   sessions with pre-dose and 40-minute blood pressure,\n"
     "                                   2 h of monitoring, forms within 7 days (late and\n"
     "                                   missing ones), PHQ-9 response and remission at the\n"
     "                                   end of induction; DIR's numbers (default: shipped)\n"},
    {"audit", rg_cmd_audit,
     "  audit verify [--db PATH]         check the audit trail's hash chain: exit 1 naming\n"
     "                                   the first entry deleted, changed or added\n"
     "  audit show [--clinic C] [--patient P] [--user U] [--since TIME] [--format text|json]\n"
     "         [--db PATH]\n"
     "                                   who read or changed which patients' data, and when\n"},
    {"test", rg_cmd_test,
     "  test [--jobs N] [PATH...]        run protocol scenario tests (*_test.lua files or\n"
     "                                   directories of them; default: the shipped sets');\n"
     "                                   --jobs N threads (default: the cores), same output\n"},
    {"protocols", rg_cmd_protocols,
     "  protocols propose|approve|activate|rollback|list|show --clinic NAME [--by PERSON] ...\n"
     "                                   a clinic's protocol versions in the store: propose\n"
     "                                   (must pass check; prints the diff over the stored\n"
     "                                   history), approve (by another person), activate,\n"
     "                                   roll back (see regimen protocols --help)\n"},
};

static const char rg__usage_head[] =
    "usage: regimen <command> [options]\n"
    "\n"
    "commands:\n";

static const char rg__usage_tail[] =
    "\n"
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

static void rg__usage(FILE *f)
{
    fputs(rg__usage_head, f);
    for (size_t i = 0; i < RG_COUNTOF(rg__commands); i++)
        fputs(rg__commands[i].usage, f);
    fputs(rg__usage_tail, f);
}

/* regimen help COMMAND: the first entry of that command's usage (serve: its
 * own usage), then the common options; NULL: the whole usage. */
int rg_cli_help(const char *name)
{
    if (!name) {
        rg__usage(stdout);
        return 0;
    }
    if (!strcmp(name, "serve")) {
        static char serve[] = "serve", help[] = "--help";
        char *av[] = {serve, help, NULL};
        return rg_cmd_serve(2, av);
    }
    size_t nl = strlen(name);
    const char *at = NULL;
    for (size_t i = 0; i < RG_COUNTOF(rg__commands) && !at && nl; i++)
        if (!strcmp(rg__commands[i].name, name))
            at = rg__commands[i].usage;
    if (!at) {
        fprintf(stderr, "regimen: no command '%s' (regimen --help lists them)\n", name);
        return 2;
    }
    printf("usage: regimen");
    /* the command's line, then the lines indented under it */
    for (const char *l = at; *l && (l == at || !strncmp(l, "   ", 3)); l = strchr(l, '\n') + 1)
        printf("%s%.*s\n", l == at ? " " : "", (int)(strchr(l, '\n') - l - (l == at ? 2 : 0)),
               l + (l == at ? 2 : 0));
    fputs(rg__usage_tail, stdout);
    puts("\nSee regimen(1) for the whole manual.");
    return 0;
}

int main(int argc, char **argv)
{
    if (argc > 2 && !strcmp(argv[1], "help"))
        return rg_cli_help(argv[2]);
    if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") ||
        !strcmp(argv[1], "help")) {
        rg__usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    if (!strcmp(argv[1], "--version")) {
        printf("regimen %s\n", RG_VERSION);
        return 0;
    }
    rg_store_process_init(); /* before anything opens a database (store.h) */
    /* a service's notice meant for another process never stops a command */
    signal(RG_HOLDER_SIGNAL, SIG_IGN);
    for (size_t i = 0; i < RG_COUNTOF(rg__commands); i++)
        if (!strcmp(argv[1], rg__commands[i].name)) {
            int rc = rg__commands[i].run(argc - 1, argv + 1);
            rg_cli_release();
            return rc;
        }
    fprintf(stderr, "regimen: unknown command '%s'\n\n", argv[1]);
    rg__usage(stderr);
    return 2;
}
