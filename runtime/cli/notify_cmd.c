/*
 * notify_cmd.c - `regimen notify-test DIR RECEIVER` (see notify_cmd.h).
 *
 * The clinic is loaded as every command loads it (its policy checked), the
 * receiver found by name; a webhook or SMS gateway gets one POST of a JSON
 * notification marked "test": true (rg_webhook_post: libcurl, blocking,
 * this is a command),
 * an e-mail address a message through smtp.c. `regimen notifications`
 * prints the service's notification history from the store (store.h,
 * rg_notify_entry), read-only beside a running service. Depends on clinic.c,
 * notify.c, smtp.c, libcurl and jansson.
 */
#include "cli/cli.h"

#include "engine/clinic.h"
#include "service/smtp.h"
#include "service/webhook.h"
#include "store/store.h"

#include <jansson.h>

#include <getopt.h>
#include <limits.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Sends a test message to one receiver of DIR/clinic.lua's notification
 * policy (a webhook or SMS gateway gets a JSON POST, an e-mail address a
 * message over notify.smtp), so a clinic can prove a receiver works before
 * it relies on it (docs/notifications.md). Exit 0 sent, 1 the receiver
 * refused or was unreachable, 2 bad usage or a clinic that does not load. */
int rg_cmd_notify_test(int argc, char **argv)
{
    char err[4096], shipped_buf[PATH_MAX];
    const char *shipped = rg_cli_shipped(shipped_buf, sizeof shipped_buf);
    if (argc != 3) {
        fprintf(stderr, "regimen: notify-test needs DIR RECEIVER: a protocol directory whose "
                        "clinic.lua has a notify policy, and one of its receivers\n");
        return 2;
    }
    const char *dir = argv[1], *name = argv[2];
    rg_limits lim = RG_LIMITS_DEFAULT;
    rg_clinic *c = NULL;
    if (rg_clinic_load(&c, "test", dir, shipped, NULL, &lim, err, sizeof err)) {
        fprintf(stderr, "regimen: %s\n", err);
        return 2;
    }
    const rg_notify_policy *p = c->notify;
    const rg_notify_receiver *r = NULL;
    for (int i = 0; p && i < p->nreceivers && !r; i++)
        if (!strcmp(p->receivers[i].name, name))
            r = &p->receivers[i];
    int rc = 2;
    if (!p)
        fprintf(stderr, "regimen: %s/clinic.lua has no notify policy (docs/notifications.md)\n",
                dir);
    else if (!r)
        fprintf(stderr, "regimen: %s/clinic.lua: notify.receivers has no receiver named '%s'\n",
                dir, name);
    else if (r->kind == RG_NOTIFY_ROLE)
        fprintf(stderr, "regimen: receiver '%s' is the role '%s': test the receivers its "
                        "schedule names instead\n", name, r->target);
    else if (r->kind == RG_NOTIFY_EMAIL && !p->smtp_url)
        fprintf(stderr, "regimen: %s/clinic.lua: e-mail needs notify.smtp = { url = "
                        "\"smtp://mail.example:587\", from = \"regimen@clinic.example\" }\n", dir);
    else {
        int sent;
        if (r->kind == RG_NOTIFY_EMAIL) {
            rg_smtp_msg m = {.url = p->smtp_url, .from = p->smtp_from, .to = r->target,
                             .subject = "regimen: test notification",
                             .body = "This is a test of the receiver '%s' of a regimen clinic's "
                                     "notification policy. No alert is open.\n"};
            char body[600];
            snprintf(body, sizeof body, m.body, name);
            m.body = body;
            sent = rg_smtp_send(&m, err, sizeof err);
        } else {
            json_t *j = json_pack("{s:s, s:b, s:s, s:s}", "kind", "notification", "test", 1,
                                  "receiver", name, "outcome", "sent");
            char *body = j ? json_dumps(j, JSON_COMPACT) : NULL;
            json_decref(j);
            sent = body ? rg_webhook_post(r->target, body, NULL, 0, err, sizeof err)
                        : rg_fail(err, sizeof err, RG_ENOMEM, "out of memory");
            free(body);
        }
        if (sent)
            fprintf(stderr, "regimen: %s\n", err);
        else
            printf("sent a test notification to %s (%s)\n", name, r->target);
        rc = sent ? 1 : 0;
    }
    rg_clinic_free(c);
    return rc;
}

/* ---- regimen notifications: the service's notification history ---- */

static const char rg__notes_usage[] =
    "usage: regimen notifications --clinic NAME [--patient P] [--key K] [--format text|json]\n"
    "                             [--db PATH]\n";

static int rg__note_text(void *ud, const rg_notify_entry *e)
{
    char at[RG_TIME_BUFSZ], round[24] = "";
    (void)ud;
    if (e->round)
        snprintf(round, sizeof round, " round %d", e->round);
    printf("%s\t%s\t%s\t%s\troute %d step %d%s\t%s%s%s (%s)\t%s%s%s", rg_time_format(e->at, at),
           e->patient, e->key, e->rule, e->route, e->step, round, e->receiver,
           e->on_call ? " on call: " : "", e->on_call ? e->on_call : "", e->kind, e->outcome,
           e->reason ? ": " : "", e->reason ? e->reason : "");
    if (e->alerts > 1)
        printf(" (%d alerts)", e->alerts);
    putchar('\n');
    return 0;
}

static int rg__note_json(void *ud, const rg_notify_entry *e)
{
    (void)ud;
    return rg_cli_put_json(rg_notify_entry_json(e, NULL));
}

typedef struct rg__notes_opts {
    const char *db, *clinic, *patient, *key, *format;
} rg__notes_opts;

#define RG__N(f) offsetof(rg__notes_opts, f)
static const rg_cli_opt rg__notes_table[] = {
    {"db", 0, 1, rg_cli_str, RG__N(db)},           {"clinic", 0, 1, rg_cli_str, RG__N(clinic)},
    {"patient", 0, 1, rg_cli_str, RG__N(patient)}, {"key", 0, 1, rg_cli_str, RG__N(key)},
    {"format", 0, 1, rg_cli_str, RG__N(format)},   {"help", 0, 0, rg_cli_help_opt, 0},
    {NULL, 0, 0, NULL, 0}};

/* `regimen notifications --clinic NAME [--patient P] [--key K] [--format
 * text|json] [--db PATH]`: the service's notification history, oldest
 * first, one attempt a line. Exit 0, or 2. */
int rg_cmd_notifications(int argc, char **argv)
{
    rg__notes_opts o = {.db = "regimen.db", .format = "text"};
    char err[1024];
    int opt = rg_cli_parse(rg__notes_table, &o, argc, argv, 1, err, sizeof err);
    if (opt == RG_CLI_HELP) {
        fputs(rg__notes_usage, stdout);
        return 0;
    }
    if (opt) {
        fputs(rg__notes_usage, stderr);
        return 2;
    }
    const char *db = o.db, *clinic = o.clinic, *format = o.format;
    if (optind != argc || !clinic || (strcmp(format, "text") && strcmp(format, "json"))) {
        fprintf(stderr, "regimen notifications: %s%s", !clinic ? "--clinic NAME is needed\n" : "",
                rg__notes_usage);
        return 2;
    }
    rg_store *st;
    int rc = rg_cli_open_existing("regimen notifications", db, &st);
    if (rc)
        return rc;
    rc = rg_store_begin_read(st);
    if (!rc)
        rc = rg_store_notify_each_log(st, clinic, o.patient, o.key,
                                      strcmp(format, "json") ? rg__note_text : rg__note_json,
                                      NULL);
    rg_store_rollback(st);
    if (rc)
        fprintf(stderr, "regimen notifications: %s: the history could not be read: %s\n", db,
                rg_store_errmsg(st));
    rg_store_close(st);
    return rc ? 2 : 0;
}
