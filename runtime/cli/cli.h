/*
 * cli.h - what the `regimen` commands share: the one option parser (a table
 * of options, as nginx's ngx_command_t), the options most commands take, the
 * store and engine as a command opens them, and the command entry points
 * main.c's table dispatches to (one file per command group).
 *
 * Every command is `int rg_cmd_X(int argc, char **argv)` with argv[0] the
 * command's name; it returns the exit code: 0 all good, 1 the work was done
 * but something was refused or failed, 2 the command could not run.
 */
#ifndef RG_CLI_H
#define RG_CLI_H

#include "engine/engine.h"
#include "engine/sandbox.h"
#include "store/ingest.h"
#include "store/store.h"

#include <jansson.h>

#include <stddef.h>
#include <stdio.h>

/* ---- the option parser ---- */

typedef struct rg_cli_opt rg_cli_opt;

/* Sets one option of conf from arg (NULL for an option without an
 * argument). Returns RG_OK, RG_CLI_HELP, or RG_EINVAL with err saying why. */
typedef int (*rg_cli_set)(void *conf, const rg_cli_opt *opt, const char *arg, char *err,
                          size_t errlen);

/* One row per option: its long name (without "--"), its letter (0: none),
 * whether it takes an argument, the setter and where in the command's
 * options struct the value goes (offsetof). A new option is one row. */
struct rg_cli_opt {
    const char *name;
    int letter;
    int has_arg;
    rg_cli_set set;
    size_t offset;
};

#define RG_CLI_HELP 1 /* rg_cli_parse: --help (or -h where the table has it) */

/* Parses argv[first..argc-1] by the table opts (ended by a row with a NULL
 * name) into conf, with getopt_long underneath, so its messages for an
 * unknown option or a missing argument are printed as they always were,
 * naming argv[0]. Once per process (getopt keeps state). Returns RG_OK with optind at the first operand (an
 * index into argv), RG_CLI_HELP, RG_EUSAGE (getopt said why on stderr; err
 * is empty) or RG_EINVAL (a setter refused; err says why). */
int rg_cli_parse(const rg_cli_opt *opts, void *conf, int argc, char **argv, int first, char *err,
                 size_t errlen);

/* The setters of the rows. */
int rg_cli_str(void *conf, const rg_cli_opt *opt, const char *arg, char *err, size_t errlen);
int rg_cli_flag(void *conf, const rg_cli_opt *opt, const char *arg, char *err, size_t errlen);
int rg_cli_help_opt(void *conf, const rg_cli_opt *opt, const char *arg, char *err,
                    size_t errlen);
/* rg_limits fields: --max-memory-mb (a size_t in bytes), --max-instructions
 * (a long long), --deadline-ms (an int); each a positive whole number. */
int rg_cli_mem_mb(void *conf, const rg_cli_opt *opt, const char *arg, char *err, size_t errlen);
int rg_cli_count(void *conf, const rg_cli_opt *opt, const char *arg, char *err, size_t errlen);
int rg_cli_int(void *conf, const rg_cli_opt *opt, const char *arg, char *err, size_t errlen);

/* The three limit rows of every command that loads protocols, for a conf
 * holding an rg_limits at offset off. */
#define RG_CLI_LIMITS(off)                                                                       \
    {"max-memory-mb", 0, 1, rg_cli_mem_mb, (off) + offsetof(rg_limits, max_memory)},              \
    {"max-instructions", 0, 1, rg_cli_count, (off) + offsetof(rg_limits, max_instructions)},      \
    {"deadline-ms", 0, 1, rg_cli_int, (off) + offsetof(rg_limits, deadline_ms)}

/* 1 when arg is a positive whole number (in *v). */
int rg_cli_positive(const char *arg, long long *v);

/* ---- the options most commands share (regimen --help, "common options") ---- */

typedef struct rg_cli_opts {
    const char *db, *events, *format, *protocols, *until;
    const char *acks; /* simulate --acks FILE: acknowledgements for the notification plan */
    const char *clinic_names[64], *clinic_dirs[64];
    int nclinics;
    int jobs;     /* sweep: worker threads; 0: the processors available */
    int from_memory; /* sweep --from-memory: histories read into memory first, untimed */
    int describe; /* check --describe */
    rg_limits limits;
    rg_time future_skew; /* ingest: --future-skew (0: the default; negative: no check) */
    int clinic_cpu_ms;   /* 0: no CPU budget per clinic */
    const char *config;  /* serve --config FILE */
} rg_cli_opts;

/* The common options into o (its limits reset to the defaults); --help
 * prints the usage and exits 0. Returns 0 or the exit code (2). */
int rg_cli_parse_common(int argc, char **argv, rg_cli_opts *o);
/* The same for serve, which also takes --config FILE. */
int rg_cli_parse_serve(int argc, char **argv, rg_cli_opts *o);

/* ---- shared by the commands ---- */

/* "regimen: " fmt (with a), on stderr; returns 2. */
int rg_cli_die(const char *fmt, const char *a);

/* The shipped protocol root (buf holds it), or NULL when none is found. */
const char *rg_cli_shipped(char *buf, size_t len);

/* Opens the store at path. durable: 0 no, 1 every commit synced, 2 that and
 * the file checked first, 3 that for a bulk load (ingest: rg_store_opts.bulk).
 * kind NULL: the command may run beside a service,
 * which is told of each of its commits. Else the command takes the store
 * (kind names it) and is refused with one line, ending in hint, while a
 * service holds it. Returns 0 or the exit code (2, said on stderr). */
int rg_cli_open_store(const char *path, int durable, const char *kind, const char *hint,
                      rg_store **st);

/* Opens an existing store (a file that is there, or a server) to read
 * beside a service; who ("regimen audit") starts the line saying why not.
 * Returns 0 or the exit code (2). */
int rg_cli_open_existing(const char *who, const char *db, rg_store **st);

/* Prints j (taken: freed here) as one line of compact ASCII JSON on
 * standard output; RG_OK, or RG_ENOMEM when j is NULL or cannot be written. */
int rg_cli_put_json(json_t *j);

/* Lets go of the store a command took (main, after the command). */
void rg_cli_release(void);

/* The service told of our commits ("" when none), and why it could not be. */
const char *rg_cli_told(int *err);

/* Reads events from path ("-": stdin) into st and prints the counts on out.
 * Returns 0, 1 when lines were refused or conflicted, 2 when it failed. */
int rg_cli_ingest_path(rg_store *st, const char *path, rg_ingest_counts *counts, FILE *out);
/* The same for a file whose reading has started (rg_ingest_start) before st
 * was opened; r is freed. */
int rg_cli_ingest_started(rg_store *st, rg_ingest_reader *r, const char *path,
                          rg_ingest_counts *counts, FILE *out);

/* The engine options of the command line: its limits, and --protocols DIR
 * (or the shipped set) as the default for clinics without their own. */
int rg_cli_engine_opts(rg_cli_opts *o, const char *shipped, char *default_dir, size_t dlen,
                       rg_engine_opts *eo);
/* An engine over st with eo and the clinics of the options. */
int rg_cli_engine_make(const rg_cli_opts *o, const rg_engine_opts *eo, rg_store *st,
                       rg_engine **eng);
/* Both: the engine with the clinics of the options; errors counts them. */
int rg_cli_engine_for(rg_cli_opts *o, rg_store *st, const char *shipped, char *default_dir,
                      size_t dlen, long *errors, rg_engine **eng);

/* A sweep worker's engine: the command line's, writing through the sink
 * (rg_sweep_opts.make_engine with ud an rg_cli_sweep_ctx). */
typedef struct rg_cli_sweep_ctx {
    const rg_cli_opts *o;
    rg_engine_opts eo;
} rg_cli_sweep_ctx;
int rg_cli_sweep_engine(void *ud, rg_store *st, const rg_engine_sink *sink, rg_engine **out);

/* A simulation: the events of o->events into a store at o->db, every patient
 * advanced to until (simulate_cmd.c). *ingest_rc is 1 when lines were
 * refused. Returns 0 or the exit code of a failure; on success the caller
 * owns *stp and *engp. */
int rg_cli_simulate(rg_cli_opts *o, rg_time until, int quiet, rg_store **stp, rg_engine **engp,
                    int *ingest_rc);

/* Reads --until (named what when missing) into *t; 0 or the exit code. */
int rg_cli_until(const rg_cli_opts *o, const char *what, rg_time *t);

/* `regimen help NAME` (main.c): that command's usage and the common
 * options; 0, or 2 when there is no such command. */
int rg_cli_help(const char *name);

/* ---- the commands (main.c's table), by group ---- */

/* store_cmd.c */
int rg_cmd_ingest(int argc, char **argv);
int rg_cmd_import_fhir(int argc, char **argv);
int rg_cmd_rejected(int argc, char **argv);
int rg_cmd_verify(int argc, char **argv);
/* simulate_cmd.c */
int rg_cmd_simulate(int argc, char **argv);
int rg_cmd_diff(int argc, char **argv);
int rg_cmd_sweep(int argc, char **argv);
/* check_cmd.c */
int rg_cmd_check(int argc, char **argv);
int rg_cmd_test(int argc, char **argv);
int rg_cmd_explain(int argc, char **argv);
/* serve_cmd.c */
int rg_cmd_serve(int argc, char **argv);
/* report_cmd.c */
int rg_cmd_report(int argc, char **argv);
/* passwd_cmd.c */
int rg_cmd_passwd(int argc, char **argv);
/* audit_cmd.c */
int rg_cmd_audit(int argc, char **argv);
/* notify_cmd.c: notify-test DIR RECEIVER, and the notification history */
int rg_cmd_notify_test(int argc, char **argv);
int rg_cmd_notifications(int argc, char **argv);
/* protocols_cmd.c */
int rg_cmd_protocols(int argc, char **argv);

#endif
