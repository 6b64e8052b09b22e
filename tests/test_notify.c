/*
 * test_notify.c - notification policies (clinic.lua's notify) through the
 * real build/regimen binary: `check` refuses a bad policy naming clinic.lua
 * and its line; `simulate --format jsonl` prints the planned notifications
 * under the virtual clock (escalation at the configured minute, repeats, the
 * horizon), only for clinics with a policy; the example's scenarios
 * (examples/notify/tests) show an acknowledgement stopping the chain,
 * inhibition and grouping, and a wrong expectation fails them; a route
 * counted in opening hours (tests/notify_hours) escalates across a closing,
 * a weekend and a daylight-saving change (rg_calendar_add_open).
 * Run from the repository root (make test does).
 */
#define RG_TEST_SERVE /* smtpd_start */
#include "helpers.h"

#include "core/rg.h"

static const char rg__timeline[] =
    "{\"id\":\"a\",\"clinic\":\"oncall\",\"patient\":\"p1\",\"type\":\"enrolled\","
    "\"at\":\"2026-03-02T09:00:00Z\",\"data\":{\"program\":\"ketamine\"}}\n"
    "{\"id\":\"b\",\"clinic\":\"oncall\",\"patient\":\"p1\",\"type\":\"vitals\","
    "\"at\":\"2026-03-02T10:00:00Z\",\"data\":{\"systolic\":175,\"diastolic\":105,"
    "\"heart_rate\":80,\"phase\":\"pre\"}}\n"
    "{\"id\":\"c\",\"clinic\":\"oncall\",\"patient\":\"p2\",\"type\":\"enrolled\","
    "\"at\":\"2026-03-02T09:00:00Z\",\"data\":{\"program\":\"ketamine\"}}\n"
    "{\"id\":\"d\",\"clinic\":\"oncall\",\"patient\":\"p2\",\"type\":\"vitals\","
    "\"at\":\"2026-03-02T10:00:00Z\",\"data\":{\"systolic\":175,\"diastolic\":105,"
    "\"heart_rate\":80,\"phase\":\"pre\"}}\n"
    "{\"id\":\"e\",\"clinic\":\"oncall\",\"patient\":\"p2\",\"type\":\"vitals\","
    "\"at\":\"2026-03-02T10:10:00Z\",\"data\":{\"systolic\":120,\"diastolic\":80,"
    "\"heart_rate\":70,\"phase\":\"pre\"}}\n";

static int rg__count(const char *text, const char *needle)
{
    int n = 0;
    for (const char *p = text; (p = strstr(p, needle)); p++)
        n++;
    return n;
}

Test(notify, simulate_prints_the_escalation_under_the_virtual_clock)
{
    char dir[256], path[300], *out, *err;
    rg_test_tmpdir(dir);
    rg_test_write(dir, "t.jsonl", rg__timeline);
    snprintf(path, sizeof path, "%s/t.jsonl", dir);
    const char *args[] = {"simulate", "--events", path, "--until", "2026-03-02T11:00:00Z",
                          "--clinic", "oncall=examples/notify", "--format", "jsonl", NULL};
    int rc = rg_test_run(args, NULL, &out, &err);
    cr_assert_eq(rc, 0, "exit %d, stderr:\n%s", rc, err);
    /* p1: desk at 10:00, the prescriber at minute 15, the first repeat at 10:45 */
    const char *want[] = {
        "{\"kind\":\"notification\",\"at\":\"2026-03-02T10:00:00Z\",\"clinic\":\"oncall\","
        "\"patient\":\"p1\"",
        "\"at\":\"2026-03-02T10:15:00Z\",\"clinic\":\"oncall\",\"patient\":\"p1\"",
        "\"route\":1,\"step\":2,\"receiver\":\"prescriber\",\"outcome\":\"sent\"",
        "\"at\":\"2026-03-02T10:45:00Z\",\"clinic\":\"oncall\",\"patient\":\"p1\"",
        "\"step\":2,\"round\":1,\"receiver\":\"prescriber\"",
    };
    for (size_t i = 0; i < RG_COUNTOF(want); i++)
        cr_assert(strstr(out, want[i]), "missing %s in:\n%s", want[i], out);
    /* p2's alert resolved at 10:10: only the desk heard of it */
    cr_assert_eq(rg__count(out, "\"kind\":\"notification\""), 4, "%s", out);
    cr_assert_eq(rg__count(out, "\"patient\":\"p2\",\"key\""), 1, "%s", out);
    /* the horizon: nothing after 11:00 (the second repeat is at 11:15) */
    cr_assert_null(strstr(out, "\"round\":2"), "%s", out);
    /* a notification follows the transition that opened its alert */
    cr_assert_lt(strstr(out, "\"state\":\"open\""), strstr(out, "\"kind\":\"notification\""));
    free(out);
    free(err);
    rg_test_rmdir(dir);
}

Test(notify, clinics_without_a_policy_print_no_notification)
{
    char *out, *err;
    const char *args[] = {"simulate", "--events", "examples/clinics/north/timeline.jsonl",
                          "--until", "2026-05-01T00:00:00Z", "--clinic",
                          "north=examples/clinics/north", "--format", "jsonl", NULL};
    int rc = rg_test_run(args, NULL, &out, &err);
    cr_assert_eq(rc, 0, "exit %d, stderr:\n%s", rc, err);
    cr_assert_null(strstr(out, "notification"));
    free(out);
    free(err);
}

Test(notify, the_example_scenarios_pass_and_a_wrong_minute_fails)
{
    char *out, *err, dir[256], path[400];
    const char *args[] = {"test", "examples/notify/tests", NULL};
    int rc = rg_test_run(args, NULL, &out, &err);
    cr_assert_eq(rc, 0, "exit %d:\n%s%s", rc, out, err);
    cr_assert(strstr(out, "scenarios: 4 passed, 0 failed"), "%s", out);
    free(out);
    free(err);

    /* the same scenarios expecting the prescriber at minute 20 and the ack
     * after minute 15 must fail, naming what was planned instead */
    rg_test_tmpdir(dir);
    char *clinic = rg_test_read("examples/notify/clinic.lua");
    char *tests = rg_test_read("examples/notify/tests/notify_test.lua");
    rg_test_write(dir, "clinic.lua", clinic);
    for (char *p = tests; (p = strstr(p, "10:15:00Z\", \"prescriber\"")); p++)
        memcpy(p, "10:20", 5);
    char *ack = strstr(tests, "\"2026-03-02T10:10:00Z\", \"safety.bp-high\"");
    cr_assert_not_null(ack);
    memcpy(ack + 15, "20", 2);
    rg_test_write(dir, "tests/notify_test.lua", tests);
    snprintf(path, sizeof path, "%s/tests", dir);
    const char *bad[] = {"test", path, NULL};
    rc = rg_test_run(bad, NULL, &out, &err);
    cr_assert_eq(rc, 1, "exit %d:\n%s%s", rc, out, err);
    cr_assert(strstr(out, "scenarios: 2 passed, 2 failed"), "%s", out);
    cr_assert(strstr(out, "missing notification:    2026-03-02T10:20:00Z sent to prescriber"),
              "%s", out);
    cr_assert(strstr(out, "unexpected notification: 2026-03-02T10:15:00Z sent to prescriber"),
              "%s", out);
    free(out);
    free(err);
    free(clinic);
    free(tests);
    rg_test_rmdir(dir);
}

/* check (and every load) refuses a bad policy with clinic.lua's line */
static void rg__refused_in(const char *file, const char *from, const char *to,
                           const char *want)
{
    char dir[256], *out, *err;
    rg_test_tmpdir(dir);
    char *clinic = rg_test_read(file);
    char *at = strstr(clinic, from);
    cr_assert_not_null(at, "%s", from);
    size_t fl = strlen(from), tl = strlen(to), rest = strlen(at + fl);
    char *text = malloc(strlen(clinic) + tl + 1);
    memcpy(text, clinic, (size_t)(at - clinic));
    memcpy(text + (at - clinic), to, tl);
    memcpy(text + (at - clinic) + tl, at + fl, rest + 1);
    rg_test_write(dir, "clinic.lua", text);
    const char *args[] = {"check", dir, NULL};
    int rc = rg_test_run(args, NULL, &out, &err);
    cr_assert_neq(rc, 0, "accepted:\n%s", out);
    cr_assert(strstr(err, want) || strstr(out, want), "want %s in:\n%s%s", want, out, err);
    free(out);
    free(err);
    free(text);
    free(clinic);
    rg_test_rmdir(dir);
}

static void rg__refused(const char *from, const char *to, const char *want)
{
    rg__refused_in("examples/notify/clinic.lua", from, to, want);
}

Test(notify, check_refuses_a_bad_policy_naming_the_line)
{
    rg__refused("to = \"prescriber\"", "to = \"prescribr\"",
                "clinic.lua:19: notify.routes[1].steps[2].to: no receiver named 'prescribr'");
    rg__refused("severity = \"critical\" },\n        steps", "severity = \"urgent\" },\n        steps",
                "clinic.lua:18: notify.routes[1].match.severity: 'urgent' is not a severity");
    rg__refused("after = R.minutes(15)", "after = 15",
                "clinic.lua:19: notify.routes[1].steps[2].after must be whole seconds");
    rg__refused("repeat_every = R.minutes(30), ", "",
                "notify.routes[1]: repeat_every and repeat_times go together");
    rg__refused("group_by = \"patient\"", "group_by = \"ward\"",
                "clinic.lua:21: notify.routes[2].group_by must be \"patient\"");
    rg__refused("email = \"dr.lee@example.org\"", "email = \"dr.lee\"",
                "clinic.lua:15: notify.receivers.prescriber.email must be an address");
    rg__refused("inhibit = {", "inhibt = {", "clinic.lua:23: notify: unknown field 'inhibt'");
    rg__refused("repeat_times = 2 },", "repeat_times = 2, count = \"hours\" },",
                "clinic.lua:20: notify.routes[1].count must be \"wall clock\" or \"opening "
                "hours\"");
}

/* ---- the planner itself (rg_notify_plan), on plain values ---- */

#include "engine/notify.h"

#include <jansson.h>

#define M(min) ((rg_time)(min) * RG_MS_MINUTE)

typedef struct rg__got {
    rg_notify_line l[32];
    char key[32][40];
    int n;
} rg__got;

static int rg__keep(void *ud, const rg_notify_line *l)
{
    rg__got *g = ud;
    cr_assert_lt(g->n, 32);
    g->l[g->n] = *l;
    snprintf(g->key[g->n], sizeof g->key[0], "%s", l->key);
    g->n++;
    return 0;
}

static rg_notify_policy *rg__policy(const char *text)
{
    json_error_t je;
    json_t *j = json_loads(text, 0, &je);
    cr_assert_not_null(j, "%s", je.text);
    rg_notify_policy *p;
    char err[600], needle[200];
    int rc = rg_notify_parse(j, &p, err, sizeof err, needle, sizeof needle);
    cr_assert_eq(rc, RG_OK, "%s", err);
    json_decref(j);
    return p;
}

static rg_notify_alert_tx rg__tx(rg_time at, int open, const char *patient, const char *key,
                                 const char *rule, const char *severity)
{
    return (rg_notify_alert_tx){.at = at, .notify_at = at, .open = open, .clinic = "c",
                                .patient = patient, .key = key, .protocol = "ketamine.safety",
                                .rule = rule, .severity = severity};
}

static const char rg__chain[] =
    "{\"receivers\":{\"desk\":{\"webhook\":\"https://d.example/h\"},"
    "\"dr\":{\"email\":\"dr@example.org\"}},"
    "\"routes\":[{\"match\":{\"rule\":[\"x.other\",\"x.bp\"],\"patient\":\"p1\"},"
    "\"steps\":[{\"to\":\"desk\"},{\"to\":\"dr\",\"after\":900000}],\"hold_down\":1800000},"
    "{\"match\":{\"protocol\":\"ketamine.safety\"},\"steps\":[{\"to\":\"dr\"}]}],"
    "\"inhibit\":[{\"when\":{\"severity\":\"critical\"},\"hold\":{\"severity\":\"warning\"}}]}";

Test(notify, the_first_matching_route_takes_the_alert)
{
    rg_notify_policy *p = rg__policy(rg__chain);
    rg_notify_alert_tx tx[] = {rg__tx(M(600), 1, "p1", "k1", "x.bp", "critical"),
                               rg__tx(M(600), 1, "p2", "k2", "x.bp", "critical")};
    rg__got g = {0};
    cr_assert_eq(rg_notify_plan(p, tx, 2, NULL, 0, M(2000), rg__keep, &g), 0);
    cr_assert_eq(g.n, 3);
    cr_assert_str_eq(g.key[0], "k1");
    cr_assert_eq(g.l[0].route, 1);
    cr_assert_str_eq(g.key[1], "k2"); /* p2: the second route, its one step */
    cr_assert_eq(g.l[1].route, 2);
    cr_assert_str_eq(g.l[1].receiver, "dr");
    cr_assert_eq(g.l[2].at, M(615));
    cr_assert_eq(g.l[2].step, 2);
    rg_notify_free(p);
}

Test(notify, an_alert_that_fell_due_while_closed_is_sent_at_the_opening_and_escalates_from_it)
{
    rg_notify_policy *p = rg__policy(rg__chain);
    rg_notify_alert_tx tx = rg__tx(M(100), 1, "p1", "k1", "x.bp", "critical");
    tx.notify_at = M(480);
    rg__got g = {0};
    rg_notify_plan(p, &tx, 1, NULL, 0, M(2000), rg__keep, &g);
    cr_assert_eq(g.n, 3);
    cr_assert_eq(g.l[0].at, M(100));
    cr_assert_str_eq(g.l[0].reason, "outside hours");
    cr_assert_eq(g.l[1].at, M(480));
    cr_assert_null(g.l[1].reason);
    cr_assert_eq(g.l[2].at, M(495));
    rg_notify_free(p);
}

Test(notify, an_alert_reopened_within_the_hold_down_does_not_notify_its_first_step_twice)
{
    rg_notify_policy *p = rg__policy(rg__chain);
    rg_notify_alert_tx tx[] = {rg__tx(M(600), 1, "p1", "k1", "x.bp", "critical"),
                               rg__tx(M(605), 0, "p1", "k1", "x.bp", "critical"),
                               rg__tx(M(620), 1, "p1", "k1", "x.bp", "critical"),
                               rg__tx(M(625), 0, "p1", "k1", "x.bp", "critical"),
                               rg__tx(M(700), 1, "p1", "k1", "x.bp", "critical")};
    rg__got g = {0};
    rg_notify_plan(p, tx, 5, NULL, 0, M(705), rg__keep, &g);
    cr_assert_eq(g.n, 3);
    cr_assert_null(g.l[0].reason); /* 10:00 sent; resolved before minute 15 */
    cr_assert_eq(g.l[1].at, M(620));
    cr_assert_str_eq(g.l[1].reason, "held down");
    cr_assert_eq(g.l[2].at, M(700)); /* 75 minutes after: outside the 30-minute hold-down */
    cr_assert_null(g.l[2].reason);
    rg_notify_free(p);
}

Test(notify, acks_and_inhibition_follow_the_clock)
{
    rg_notify_policy *p = rg__policy(rg__chain);
    rg_notify_alert_tx tx[] = {rg__tx(M(600), 1, "p3", "crit", "x.bp", "critical"),
                               rg__tx(M(600), 1, "p3", "warn", "x.warn", "warning"),
                               rg__tx(M(630), 0, "p3", "crit", "x.bp", "critical"),
                               rg__tx(M(640), 1, "p3", "warn2", "x.warn2", "warning"),
                               rg__tx(M(650), 1, "p1", "k1", "x.bp", "critical")};
    /* an ack before the alert opened does not count; one by key stops its chain */
    rg_notify_ack acks[] = {{.at = M(640), .key = "k1"}, {.at = M(651), .key = "k1"}};
    rg__got g = {0};
    rg_notify_plan(p, tx, 5, acks, 2, M(2000), rg__keep, &g);
    cr_assert_eq(g.n, 4);
    cr_assert_str_eq(g.key[0], "crit");
    cr_assert_str_eq(g.key[1], "warn");
    cr_assert_str_eq(g.l[1].reason, "inhibited");
    cr_assert_str_eq(g.key[2], "warn2"); /* the critical resolved at 630: no longer held */
    cr_assert_null(g.l[2].reason);
    cr_assert_str_eq(g.key[3], "k1");
    cr_assert_eq(g.l[3].step, 1); /* acknowledged at 651: step 2 (665) never falls due */
    rg_notify_free(p);
}

Test(notify, a_reraise_continues_the_chain_instead_of_starting_another)
{
    rg_notify_policy *p = rg__policy(rg__chain);
    rg_notify_alert_tx tx[] = {rg__tx(M(600), 1, "p1", "k1", "x.bp", "critical"),
                               rg__tx(M(610), 1, "p1", "k1", "x.bp", "critical")};
    rg__got g = {0};
    rg_notify_plan(p, tx, 2, NULL, 0, M(2000), rg__keep, &g);
    cr_assert_eq(g.n, 2);
    cr_assert_eq(g.l[1].at, M(615));
    rg_notify_free(p);
}

/* ---- regimen notify-test: real receivers on loopback ---- */

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <dirent.h>

/* The example clinic, its receivers pointed at loopback ports. */
static void rg__loopback_clinic(const char *dir, int smtp_port, int hook_port)
{
    char *clinic = rg_test_read("examples/notify/clinic.lua");
    char head[300], *text = malloc(strlen(clinic) + 600);
    snprintf(head, sizeof head, "  notify = {\n    smtp = { url = \"smtp://127.0.0.1:%d\", from = "
             "\"regimen@clinic.example\" },", smtp_port);
    char *at = strstr(clinic, "  notify = {");
    cr_assert_not_null(at);
    sprintf(text, "%.*s%s%s", (int)(at - clinic), clinic, head, at + strlen("  notify = {"));
    char url[100];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/hook", hook_port);
    char *hook = strstr(text, "https://desk.example/hook");
    cr_assert_not_null(hook);
    size_t ul = strlen(url), hl = strlen("https://desk.example/hook");
    memmove(hook + ul, hook + hl, strlen(hook + hl) + 1);
    memcpy(hook, url, ul);
    rg_test_write(dir, "clinic.lua", text);
    free(text);
    free(clinic);
}

Test(notify, notify_test_sends_an_email_to_a_real_smtp_server, .timeout = 60)
{
    char dir[256], box[300], *out, *err;
    rg_test_tmpdir(dir);
    snprintf(box, sizeof box, "%s/mail", dir);
    int port;
    pid_t smtpd = smtpd_start(box, &port);
    rg__loopback_clinic(dir, port, 1);
    const char *args[] = {"notify-test", dir, "prescriber", NULL};
    int rc = rg_test_run(args, NULL, &out, &err);
    kill(smtpd, SIGTERM);
    waitpid(smtpd, NULL, 0);
    cr_assert_eq(rc, 0, "exit %d:\n%s%s", rc, out, err);
    cr_assert(strstr(out, "sent a test notification to prescriber (dr.lee@example.org)"), "%s",
              out);
    char newdir[400], path[700];
    snprintf(newdir, sizeof newdir, "%s/new", box);
    DIR *d = opendir(newdir);
    cr_assert_not_null(d, "no mail arrived in %s", newdir);
    struct dirent *de;
    int n = 0;
    while ((de = readdir(d)))
        if (de->d_name[0] != '.') {
            snprintf(path, sizeof path, "%s/%s", newdir, de->d_name);
            n++;
        }
    closedir(d);
    cr_assert_eq(n, 1, "one message, not %d", n);
    char *mail = rg_test_read(path);
    cr_assert(strstr(mail, "To: dr.lee@example.org"), "%s", mail);
    cr_assert(strstr(mail, "From: regimen@clinic.example"), "%s", mail);
    cr_assert(strstr(mail, "Subject: regimen: test notification"), "%s", mail);
    cr_assert(strstr(mail, "receiver 'prescriber'"), "%s", mail);
    free(mail);
    free(out);
    free(err);

    /* the server gone: a clear failure, exit 1 */
    rc = rg_test_run(args, NULL, &out, &err);
    cr_assert_eq(rc, 1, "exit %d:\n%s%s", rc, out, err);
    cr_assert(strstr(err, "e-mail to dr.lee@example.org via smtp://127.0.0.1:"), "%s", err);
    free(out);
    free(err);
    rg_test_rmdir(dir);
}

typedef struct rg__hook_rx {
    int fd, port, status;
    char request[8192];
    pthread_t thread;
} rg__hook_rx;

static void *rg__hook_main(void *ud)
{
    rg__hook_rx *r = ud;
    int c = accept(r->fd, NULL, NULL);
    size_t len = 0;
    for (;;) {
        ssize_t got = read(c, r->request + len, sizeof r->request - 1 - len);
        if (got <= 0)
            break;
        len += (size_t)got;
        r->request[len] = '\0';
        char *end = strstr(r->request, "\r\n\r\n");
        const char *cl = strcasestr(r->request, "Content-Length:");
        if (end && cl && len >= (size_t)(end + 4 - r->request) + (size_t)atoi(cl + 15))
            break;
    }
    char reply[100];
    int n = snprintf(reply, sizeof reply, "HTTP/1.1 %d X\r\nContent-Length: 0\r\n"
                     "Connection: close\r\n\r\n", r->status);
    (void)!write(c, reply, (size_t)n);
    close(c);
    return NULL;
}

static void rg__hook_start(rg__hook_rx *r)
{
    struct sockaddr_in a = {.sin_family = AF_INET};
    socklen_t alen = sizeof a;
    inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
    r->fd = socket(AF_INET, SOCK_STREAM, 0);
    cr_assert_eq(bind(r->fd, (struct sockaddr *)&a, sizeof a), 0);
    cr_assert_eq(listen(r->fd, 4), 0);
    getsockname(r->fd, (struct sockaddr *)&a, &alen);
    r->port = ntohs(a.sin_port);
    pthread_create(&r->thread, NULL, rg__hook_main, r);
}

Test(notify, notify_test_posts_to_a_webhook_and_reports_a_refusal, .timeout = 30)
{
    char dir[256], *out, *err;
    const char *args[3 + 1];
    for (int status = 200; status <= 500; status += 300) {
        rg__hook_rx r = {.status = status};
        rg__hook_start(&r);
        rg_test_tmpdir(dir);
        rg__loopback_clinic(dir, 1, r.port);
        args[0] = "notify-test", args[1] = dir, args[2] = "desk", args[3] = NULL;
        int rc = rg_test_run(args, NULL, &out, &err);
        pthread_join(r.thread, NULL);
        close(r.fd);
        cr_assert(strstr(r.request, "POST /hook"), "%s", r.request);
        cr_assert(strstr(r.request, "{\"kind\":\"notification\",\"test\":true,"
                                    "\"receiver\":\"desk\""), "%s", r.request);
        if (status == 200) {
            cr_assert_eq(rc, 0, "exit %d:\n%s%s", rc, out, err);
        } else {
            cr_assert_eq(rc, 1, "exit %d:\n%s%s", rc, out, err);
            cr_assert(strstr(err, "the receiver answered HTTP 500"), "%s", err);
        }
        free(out);
        free(err);
        rg_test_rmdir(dir);
    }
    /* no such receiver, or a role: refused before anything is sent */
    args[0] = "notify-test", args[1] = "examples/notify", args[2] = "nobody", args[3] = NULL;
    int rc = rg_test_run(args, NULL, &out, &err);
    cr_assert_eq(rc, 2);
    cr_assert(strstr(err, "notify.receivers has no receiver named 'nobody'"), "%s", err);
    free(out);
    free(err);
}

Test(notify, simulate_acks_stop_the_chain_and_bad_lines_are_refused)
{
    char dir[256], events[300], acks[300], *out, *err;
    rg_test_tmpdir(dir);
    rg_test_write(dir, "t.jsonl", rg__timeline);
    /* p1 acknowledged at minute 20: the prescriber (minute 15) heard, the repeats do not come */
    rg_test_write(dir, "acks.jsonl", "\n{\"at\":\"2026-03-02T10:20:00Z\",\"clinic\":\"oncall\","
                                     "\"patient\":\"p1\",\"rule\":\"safety.bp-high\"}\n");
    snprintf(events, sizeof events, "%s/t.jsonl", dir);
    snprintf(acks, sizeof acks, "%s/acks.jsonl", dir);
    const char *args[] = {"simulate", "--events", events, "--until", "2026-03-02T11:00:00Z",
                          "--clinic", "oncall=examples/notify", "--format", "jsonl", "--acks",
                          acks, NULL};
    int rc = rg_test_run(args, NULL, &out, &err);
    cr_assert_eq(rc, 0, "exit %d, stderr:\n%s", rc, err);
    cr_assert_eq(rg__count(out, "\"kind\":\"notification\""), 3, "%s", out);
    cr_assert(strstr(out, "\"at\":\"2026-03-02T10:15:00Z\",\"clinic\":\"oncall\",\"patient\":\"p1\""));
    cr_assert_null(strstr(out, "\"round\":1"), "%s", out);
    free(out);
    free(err);

    rg_test_write(dir, "acks.jsonl", "{\"at\":\"2026-03-02T10:20:00Z\",\"clinic\":\"oncall\","
                                     "\"patient\":\"p1\",\"rule\":\"safety.bp-high\"}\n"
                                     "{\"at\":\"2026-03-02T10:20:00Z\",\"clinic\":\"oncall\"}\n");
    rc = rg_test_run(args, NULL, &out, &err);
    cr_assert_eq(rc, 2, "exit %d:\n%s", rc, err);
    cr_assert(strstr(err, "acks.jsonl:2: an acknowledgement names its alert"), "%s", err);
    free(out);
    free(err);
    const char *text[] = {"simulate", "--events", events, "--until", "2026-03-02T11:00:00Z",
                          "--acks", acks, NULL};
    rc = rg_test_run(text, NULL, &out, &err);
    cr_assert_eq(rc, 2);
    cr_assert(strstr(err, "--acks goes with --format jsonl"), "%s", err);
    free(out);
    free(err);
    rg_test_rmdir(dir);
}

/* ---- on-call schedules in clinic time ---- */

#include "core/zone.h"

static const char rg__oncall[] =
    "{\"receivers\":{\"ana\":{\"email\":\"ana@example.org\"},\"ben\":{\"email\":\"ben@example.org\"},"
    "\"cara\":{\"email\":\"cara@example.org\"},\"nurse\":{\"role\":\"nurse-on-call\"}},"
    "\"schedules\":{\"nurse-on-call\":{\"rotation\":[\"ana\",\"ben\"],"
    "\"start\":\"2026-03-02T08:00\",\"every\":604800000,"
    "\"overrides\":[{\"from\":\"2026-03-10T08:00\",\"to\":\"2026-03-11T08:00\",\"who\":\"cara\"}]}},"
    "\"routes\":[{\"steps\":[{\"to\":\"nurse\"}]}]}";

static const char *rg__who(const rg_notify_policy *p, const char *at)
{
    rg_time t;
    char why[100];
    cr_assert_eq(rg_time_parse(at, strlen(at), &t, NULL, why, sizeof why), 0, "%s", why);
    return p->receivers[rg_notify_on_call(p, 3, t)].name;
}

Test(notify, a_rotation_hands_off_at_its_local_hour_across_daylight_saving)
{
    rg_notify_policy *p = rg__policy(rg__oncall);
    const rg_zone *z;
    char err[200];
    cr_assert_eq(rg_zone_get(&z, "America/New_York", err, sizeof err), 0);
    p->zone = z;
    cr_assert_str_eq(rg__who(p, "2026-03-02T13:30:00Z"), "ana"); /* 08:30 EST, the first turn */
    cr_assert_str_eq(rg__who(p, "2026-03-02T12:30:00Z"), "ben"); /* 07:30 EST: the turn before */
    /* DST began on 8 March: the handoff of the 9th is at 08:00 EDT, 12:00Z */
    cr_assert_str_eq(rg__who(p, "2026-03-09T11:59:00Z"), "ana");
    cr_assert_str_eq(rg__who(p, "2026-03-09T12:00:00Z"), "ben");
    cr_assert_str_eq(rg__who(p, "2026-03-10T12:00:00Z"), "cara"); /* the override, 08:00 EDT */
    cr_assert_str_eq(rg__who(p, "2026-03-11T11:59:00Z"), "cara");
    cr_assert_str_eq(rg__who(p, "2026-03-11T12:00:00Z"), "ben");
    cr_assert_str_eq(rg__who(p, "2026-03-16T12:00:00Z"), "ana");

    /* the planner says who was on call when each step fell due */
    rg_notify_alert_tx tx = rg__tx(M(0), 1, "p1", "k1", "x.bp", "critical");
    char why[100];
    cr_assert_eq(rg_time_parse("2026-03-10T12:30:00Z", 20, &tx.at, NULL, why, sizeof why), 0);
    tx.notify_at = tx.at;
    rg__got g = {0};
    rg_notify_plan(p, &tx, 1, NULL, 0, tx.at + M(60), rg__keep, &g);
    cr_assert_eq(g.n, 1);
    cr_assert_str_eq(g.l[0].receiver, "nurse");
    cr_assert_str_eq(g.l[0].on_call, "cara");
    rg_notify_free(p);
}

Test(notify, a_bad_schedule_is_refused_naming_the_field)
{
    static const char *const bad[][2] = {
        {"[\"ana\",\"ben\"]", "[\"ana\",\"nurse\"]"},
        {"\"2026-03-02T08:00\"", "\"2026-03-02 08:00\""},
        {"\"who\":\"cara\"", "\"who\":\"carla\""},
        {"\"role\":\"nurse-on-call\"", "\"role\":\"nurse-on-cal\""},
    };
    static const char *const want[] = {
        "notify.schedules[\"nurse-on-call\"].rotation[2]: 'nurse' is itself a role",
        "notify.schedules[\"nurse-on-call\"].start must be a local time of the clinic",
        "notify.schedules[\"nurse-on-call\"].overrides[1].who must name a receiver",
        "notify.receivers.nurse.role: no schedule named 'nurse-on-cal'",
    };
    for (size_t i = 0; i < RG_COUNTOF(bad); i++) {
        char text[2048], err[600], needle[200];
        const char *at = strstr(rg__oncall, bad[i][0]);
        cr_assert_not_null(at);
        snprintf(text, sizeof text, "%.*s%s%s", (int)(at - rg__oncall), rg__oncall, bad[i][1],
                 at + strlen(bad[i][0]));
        json_t *j = json_loads(text, 0, NULL);
        cr_assert_not_null(j, "%s", text);
        rg_notify_policy *p;
        cr_assert_eq(rg_notify_parse(j, &p, err, sizeof err, needle, sizeof needle), RG_EINVAL);
        cr_assert(strstr(err, want[i]), "want %s, got %s", want[i], err);
        json_decref(j);
    }
}

/* ---- escalation counted in opening hours (tests/notify_hours) ---- */

Test(notify, check_refuses_counting_opening_hours_of_a_clinic_without_any)
{
    /* the example clinic declares no hours: open around the clock */
    rg__refused("repeat_times = 2 },", "repeat_times = 2, count = \"opening hours\" },",
                "clinic.lua:20: notify.routes[1].count = \"opening hours\" needs opening "
                "hours: clinic.lua has no hours");
    /* hours that open on no day of the week */
    rg__refused_in("tests/notify_hours/clinic.lua",
                   "mon = { \"08:00\", \"18:00\" }, tue = { \"08:00\", \"18:00\" }, wed = "
                   "{ \"08:00\", \"18:00\" },\n    thu = { \"08:00\", \"18:00\" }, fri = "
                   "{ \"08:00\", \"18:00\" }, ",
                   "", "clinic.lua:22: notify.routes[1].count = \"opening hours\" needs opening "
                   "hours: clinic.lua's hours open on no day of the week");
}

Test(notify, scenarios_count_escalation_in_opening_hours_and_wall_clock_fails_them)
{
    char *out, *err, dir[256], path[400];
    const char *args[] = {"test", "tests/notify_hours/tests", NULL};
    int rc = rg_test_run(args, NULL, &out, &err);
    cr_assert_eq(rc, 0, "exit %d:\n%s%s", rc, out, err);
    cr_assert(strstr(out, "scenarios: 3 passed, 0 failed"), "%s", out);
    free(out);
    free(err);

    /* the same clinic counting on the wall clock escalates at 18:05 on Friday
     * (and the Monday acknowledgement comes too late to stop it) */
    rg_test_tmpdir(dir);
    char *clinic = rg_test_read("tests/notify_hours/clinic.lua");
    char *tests = rg_test_read("tests/notify_hours/tests/hours_test.lua");
    char *at = strstr(clinic, "count = \"opening hours\"");
    cr_assert_not_null(at);
    memcpy(at, "count = \"wall clock\"   ", 23);
    rg_test_write(dir, "clinic.lua", clinic);
    rg_test_write(dir, "tests/hours_test.lua", tests);
    snprintf(path, sizeof path, "%s/tests", dir);
    const char *wall[] = {"test", path, NULL};
    rc = rg_test_run(wall, NULL, &out, &err);
    cr_assert_eq(rc, 1, "exit %d:\n%s%s", rc, out, err);
    cr_assert(strstr(out, "scenarios: 0 passed, 3 failed"), "%s", out);
    cr_assert(strstr(out, "unexpected notification: 2026-03-06T18:05:00+01:00 sent to "
                          "prescriber"), "%s", out);
    cr_assert(strstr(out, "missing notification:    2026-03-09T08:05:00+01:00 sent to "
                          "prescriber"), "%s", out);
    cr_assert(strstr(out, "missing notification:    2026-03-30T08:05:00+02:00 sent to "
                          "prescriber"), "%s", out);
    free(out);
    free(err);
    free(clinic);
    free(tests);
    rg_test_rmdir(dir);
}

static rg_time rg__at(const char *s)
{
    rg_time t;
    char why[100];
    cr_assert_eq(rg_time_parse(s, strlen(s), &t, NULL, why, sizeof why), 0, "%s: %s", s, why);
    return t;
}

static void rg__add_is(const rg_calendar *c, const char *from, int minutes, const char *want)
{
    char got[RG_TIME_BUFSZ];
    rg_time t = rg_calendar_add_open(c, rg__at(from), M(minutes));
    cr_assert_neq(t, RG_TIME_NONE, "%s + %d min", from, minutes);
    cr_assert_eq(t, rg__at(want), "%s + %d opening minutes: want %s, got %s", from, minutes,
                 want, rg_time_format(t, got));
}

Test(notify, adding_opening_time_walks_the_open_intervals)
{
    rg_calendar c;
    char err[200];
    rg_calendar_default(&c);
    cr_assert_eq(rg_zone_get(&c.zone, "Europe/Berlin", err, sizeof err), 0, "%s", err);
    c.has_hours = 1;
    for (int d = 0; d < 7; d++) {
        c.open[d] = d < 5 ? 8 * 60 : -1; /* weekdays 08:00-18:00 */
        c.close[d] = d < 5 ? 18 * 60 : -1;
    }
    /* nothing to add: the instant itself, even while closed */
    rg__add_is(&c, "2026-03-07T12:00:00Z", 0, "2026-03-07T12:00:00Z");
    /* within the day */
    rg__add_is(&c, "2026-03-06T09:00:00Z", 15, "2026-03-06T09:15:00Z");
    /* Friday 17:50 CET: 10 minutes, the weekend, 5 on Monday at 08:05 CET */
    rg__add_is(&c, "2026-03-06T16:50:00Z", 15, "2026-03-09T07:05:00Z");
    /* a count complete at the closing instant goes to the next opening */
    rg__add_is(&c, "2026-03-06T16:50:00Z", 10, "2026-03-09T07:00:00Z");
    /* from a closed Saturday: from Monday's opening */
    rg__add_is(&c, "2026-03-07T10:00:00Z", 5, "2026-03-09T07:05:00Z");
    /* before opening on a weekday */
    rg__add_is(&c, "2026-03-10T05:00:00Z", 30, "2026-03-10T07:30:00Z");
    /* a whole opening day and a bit: 10 hours on Monday, 1 more on Tuesday */
    rg__add_is(&c, "2026-03-09T07:00:00Z", 11 * 60, "2026-03-10T08:00:00Z");
    /* across the change to summer time (29 March): 08:05 CEST is 06:05Z */
    rg__add_is(&c, "2026-03-27T16:50:00Z", 15, "2026-03-30T06:05:00Z");
    /* and back to winter time (25 October): 08:05 CET is 07:05Z */
    rg__add_is(&c, "2026-10-23T15:50:00Z", 15, "2026-10-26T07:05:00Z");
    /* a closure day is skipped: Monday 9 March closed */
    c.closed[c.nclosed++] = (int32_t)(rg__at("2026-03-09T00:00:00Z") / RG_MS_DAY);
    rg__add_is(&c, "2026-03-06T16:50:00Z", 15, "2026-03-10T07:05:00Z");
    /* around the clock (no hours): the wall clock, less closure days */
    c.has_hours = 0;
    rg__add_is(&c, "2026-03-06T12:00:00Z", 60, "2026-03-06T13:00:00Z");
    rg__add_is(&c, "2026-03-08T22:30:00Z", 60, "2026-03-09T23:30:00Z"); /* Monday skipped */
    /* hours that never open: the walk stops */
    c.has_hours = 1;
    for (int d = 0; d < 7; d++)
        c.open[d] = c.close[d] = -1;
    cr_assert_eq(rg_calendar_add_open(&c, rg__at("2026-03-06T16:50:00Z"), M(15)), RG_TIME_NONE);
}

Test(notify, the_planner_counts_a_route_in_opening_hours)
{
    rg_notify_policy *p = rg__policy(
        "{\"receivers\":{\"desk\":{\"webhook\":\"https://d.example/h\"},"
        "\"dr\":{\"email\":\"dr@example.org\"}},"
        "\"routes\":[{\"count\":\"opening hours\",\"steps\":[{\"to\":\"desk\"},"
        "{\"to\":\"dr\",\"after\":900000}],\"repeat_every\":1800000,\"repeat_times\":1}]}");
    char err[200];
    cr_assert_eq(rg_zone_get(&p->cal.zone, "Europe/Berlin", err, sizeof err), 0, "%s", err);
    p->zone = p->cal.zone;
    p->cal.has_hours = 1;
    for (int d = 0; d < 7; d++) {
        p->cal.open[d] = d < 5 ? 8 * 60 : -1;
        p->cal.close[d] = d < 5 ? 18 * 60 : -1;
    }
    rg_notify_alert_tx tx = rg__tx(0, 1, "p1", "k1", "x.bp", "critical");
    tx.at = tx.notify_at = rg__at("2026-03-06T16:50:00Z"); /* Friday 17:50 CET */
    rg__got g = {0};
    rg_notify_plan(p, &tx, 1, NULL, 0, rg__at("2026-03-10T00:00:00Z"), rg__keep, &g);
    cr_assert_eq(g.n, 3);
    cr_assert_eq(g.l[0].at, tx.at);
    cr_assert_eq(g.l[1].at, rg__at("2026-03-09T07:05:00Z"));
    cr_assert_eq(g.l[2].at, rg__at("2026-03-09T07:35:00Z"));
    cr_assert_eq(g.l[2].repeat, 1);
    rg_notify_free(p);
}
