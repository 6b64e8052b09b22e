/*
 * test_notify_service.c - the service notifies people (docs/notifications.md,
 * "The service"): the real `regimen serve` on a loopback port, a real SMTP
 * server on loopback (Debian's python3-aiosmtpd, started and stopped here)
 * that keeps what it receives in a maildir, and a clinic whose policy
 * escalates within seconds (R.seconds). An unacknowledged critical reaches
 * the second step at its time; an acknowledgement stops the chain; a kill -9
 * between two steps sends the second once after the restart; inhibition
 * holds a warning back and records it; three warnings due together are one
 * message. The history shows in GET /v1/alerts/{key}, `regimen
 * notifications` and /metrics.
 */
#include <criterion/criterion.h>

#define RG_TEST_SERVE
#include "helpers.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/wait.h>

static const char rg__protocol[] =
    "local R = require 'regimen'\n"
    "local function open(h, t)\n"
    "  local e = h:last(t)\n"
    "  return e and #h:after(e, 'ok') == 0\n"
    "end\n"
    "return R.protocol { id = 'n', version = '1.0', rules = {\n"
    "  { id = 'n.crit', severity = 'critical', check = function(h)\n"
    "      if open(h, 'crit') then return R.alert { message = 'blood pressure critical' } end end },\n"
    "  { id = 'n.w1', severity = 'warning', check = function(h)\n"
    "      if open(h, 'warn') then return R.alert { message = 'warning one' } end end },\n"
    "  { id = 'n.w2', severity = 'warning', check = function(h)\n"
    "      if open(h, 'warn') then return R.alert { message = 'warning two' } end end },\n"
    "  { id = 'n.w3', severity = 'warning', check = function(h)\n"
    "      if open(h, 'warn') then return R.alert { message = 'warning three' } end end },\n"
    "} }\n";

typedef struct rg__env {
    server s;
    pid_t smtpd;
    int smtp_port;
    char box[400];
} rg__env;

/* A server whose clinic north has the policy: critical to the desk at once,
 * to the prescriber `after` seconds later; warnings to the desk, grouped by
 * patient, held back while a critical is open (when inhibit). */
static void rg__setup(rg__env *e, int after, int inhibit)
{
    memset(e, 0, sizeof *e);
    server_setup(&e->s, rg__protocol, rg__protocol);
    snprintf(e->box, sizeof e->box, "%s/mail", e->s.dir);
    e->smtpd = smtpd_start(e->box, &e->smtp_port);
    char clinic[2000];
    snprintf(clinic, sizeof clinic,
             "local R = require 'regimen'\n"
             "return {\n"
             "  notify = {\n"
             "    smtp = { url = 'smtp://127.0.0.1:%d', from = 'regimen@clinic.example' },\n"
             "    receivers = {\n"
             "      desk = { email = 'desk@clinic.example' },\n"
             "      prescriber = { email = 'dr.lee@example.org' },\n"
             "    },\n"
             "    routes = {\n"
             "      { match = { severity = 'critical' },\n"
             "        steps = { { to = 'desk' }, { after = R.seconds(%d), to = 'prescriber' } } },\n"
             "      { match = { severity = 'warning' }, steps = { { to = 'desk' } },\n"
             "        group_by = 'patient' },\n"
             "    },\n"
             "%s"
             "  },\n"
             "}\n",
             e->smtp_port, after,
             inhibit ? "    inhibit = { { when = { severity = 'critical' },"
                       " hold = { severity = 'warning' } } },\n"
                     : "");
    rg_test_write(e->s.dir, "a/clinic.lua", clinic);
    server_start(&e->s);
}

static void rg__teardown(rg__env *e)
{
    server_stop(&e->s, SIGTERM);
    kill(e->smtpd, SIGTERM);
    waitpid(e->smtpd, NULL, 0);
    rg_test_rmdir(e->s.dir);
}

static int rg__wait_mails(rg__env *e, const char *to, int n, int ms)
{
    for (int i = 0; i < ms / 50; i++) {
        if (maildir_count(e->box, to, NULL) >= n)
            return 1;
        usleep(50000);
    }
    return 0;
}

/* `regimen notifications --clinic north --db ...`, its output. */
static char *rg__history(rg__env *e, const char *extra)
{
    char *out = NULL, *err = NULL;
    const char *args[] = {"notifications", "--clinic", "north", "--db", e->s.db,
                          extra ? "--key" : NULL, extra, NULL};
    int rc = rg_test_run(args, NULL, &out, &err);
    cr_assert_eq(rc, 0, "exit %d: %s%s", rc, out, err);
    free(err);
    return out;
}

static int rg__count(const char *text, const char *needle)
{
    int n = 0;
    for (const char *p = text; (p = strstr(p, needle)); p++)
        n++;
    return n;
}

/* Waits until the history holds needle n times; its text. */
static char *rg__wait_history(rg__env *e, const char *needle, int n, int ms)
{
    char *h = NULL;
    for (int i = 0; i < ms / 100; i++) {
        free(h);
        h = rg__history(e, NULL);
        if (rg__count(h, needle) >= n)
            return h;
        usleep(100000);
    }
    cr_assert_fail("the history never held %d of '%s':\n%s\nlog:\n%s", n, needle, h,
                   rg_test_read(e->s.log));
    return h;
}

static void rg__post(rg__env *e, const char *body)
{
    char *out = NULL;
    cr_assert_eq(http(e->s.port, "POST", "/v1/events", TOKEN_A, body, &out), 200, "%s", out);
    cr_assert(strstr(out, "\"rejected\":0"), "%s", out);
    free(out);
}

/* The key of the patient's open alert of rule. */
static void rg__key(rg__env *e, const char *rule, char key[64])
{
    char *out = NULL, want[100];
    snprintf(want, sizeof want, "\"rule\":\"%s\"", rule);
    for (int i = 0; i < 100; i++) {
        cr_assert_eq(http(e->s.port, "GET", "/v1/alerts?state=open", TOKEN_A, NULL, &out), 200);
        char *r = strstr(out, want);
        if (r) {
            /* the key of the same alert object: search back for its "key" */
            char *k = r;
            while (k > out && strncmp(k, "\"key\":\"", 7))
                k--;
            cr_assert(k > out, "%s", out);
            snprintf(key, 64, "%.*s", (int)strcspn(k + 7, "\""), k + 7);
            free(out);
            return;
        }
        free(out);
        usleep(50000);
    }
    cr_assert_fail("no open alert of %s", rule);
}

Test(notify_service, an_unacknowledged_critical_escalates_at_its_time, .timeout = 120)
{
    rg__env e;
    rg__setup(&e, 3, 1);
    int64_t t0 = now_ms();
    char *ev = ping("north", "c1", "p1", t0, "crit");
    rg__post(&e, ev);
    free(ev);
    cr_assert(rg__wait_mails(&e, "desk@clinic.example", 1, 20000), "no mail to the desk:\n%s",
              rg_test_read(e.s.log));
    int64_t desk_at = now_ms();
    cr_assert(rg__wait_mails(&e, "dr.lee@example.org", 1, 20000),
              "no escalation to the prescriber:\n%s", rg_test_read(e.s.log));
    int64_t esc_at = now_ms();
    cr_assert_geq(esc_at - t0, 2900, "escalated too early: %lld ms after the opening",
                  (long long)(esc_at - t0));
    fprintf(stderr, "desk mail %lld ms, escalation %lld ms after the event\n",
            (long long)(desk_at - t0), (long long)(esc_at - t0));
    char *mail = NULL;
    cr_assert_eq(maildir_count(e.box, "dr.lee@example.org", &mail), 1);
    cr_assert(strstr(mail, "Subject: regimen critical: n.crit for patient p1"), "%s", mail);
    cr_assert(strstr(mail, "blood pressure critical"), "%s", mail);
    free(mail);
    cr_assert_eq(maildir_count(e.box, NULL, NULL), 2, "two messages in all");

    char *h = rg__wait_history(&e, "\tsent", 2, 5000);
    cr_assert(strstr(h, "route 1 step 1\tdesk (email)\tsent"), "%s", h);
    cr_assert(strstr(h, "route 1 step 2\tprescriber (email)\tsent"), "%s", h);
    free(h);

    char key[64], path[128], *out = NULL;
    rg__key(&e, "n.crit", key);
    snprintf(path, sizeof path, "/v1/alerts/%s", key);
    cr_assert_eq(http(e.s.port, "GET", path, TOKEN_A, NULL, &out), 200);
    cr_assert(strstr(out, "\"notifications\":[{"), "%s", out);
    cr_assert(strstr(out, "\"receiver\":\"prescriber\"") && strstr(out, "\"step\":2"), "%s", out);
    free(out);
    cr_assert_eq(http(e.s.port, "GET", "/metrics", TOKEN_A, NULL, &out), 200);
    cr_assert(strstr(out, "regimen_notifications_total{clinic=\"north\",outcome=\"sent\","
                          "receiver=\"email\"} 2"), "%s", out);
    free(out);
    rg__teardown(&e);
}

Test(notify_service, an_acknowledgement_stops_the_chain, .timeout = 120)
{
    rg__env e;
    rg__setup(&e, 4, 1);
    char *ev = ping("north", "c1", "p1", now_ms(), "crit");
    rg__post(&e, ev);
    free(ev);
    cr_assert(rg__wait_mails(&e, "desk@clinic.example", 1, 20000), "no mail to the desk:\n%s",
              rg_test_read(e.s.log));
    char key[64], path[128], *out = NULL;
    rg__key(&e, "n.crit", key);
    snprintf(path, sizeof path, "/v1/alerts/%s/ack", key);
    cr_assert_eq(http(e.s.port, "POST", path, TOKEN_A, "{\"who\":\"nurse kim\"}", &out), 200,
                 "%s", out);
    free(out);
    /* at step 2's time the chain is found acknowledged and stops */
    char *h = rg__wait_history(&e, "stopped: acknowledged", 1, 20000);
    cr_assert_eq(rg__count(h, "\tsent"), 1, "%s", h);
    free(h);
    cr_assert_eq(maildir_count(e.box, "dr.lee@example.org", NULL), 0, "the prescriber was not told");
    rg__teardown(&e);
}

Test(notify_service, kill_9_between_two_steps_sends_the_second_once, .timeout = 120)
{
    rg__env e;
    rg__setup(&e, 4, 1);
    char *ev = ping("north", "c1", "p1", now_ms(), "crit");
    rg__post(&e, ev);
    free(ev);
    cr_assert(rg__wait_mails(&e, "desk@clinic.example", 1, 20000), "no mail to the desk:\n%s",
              rg_test_read(e.s.log));
    free(rg__wait_history(&e, "\tsent", 1, 5000));
    server_stop(&e.s, SIGKILL);
    server_start(&e.s); /* the stored step is due 4 s after the opening */
    cr_assert(rg__wait_mails(&e, "dr.lee@example.org", 1, 20000),
              "no escalation after the restart:\n%s", rg_test_read(e.s.log));
    char *h = rg__wait_history(&e, "\tsent", 2, 5000);
    cr_assert_eq(rg__count(h, "step 1\tdesk (email)\tsent"), 1, "%s", h);
    cr_assert_eq(rg__count(h, "step 2\tprescriber (email)\tsent"), 1, "%s", h);
    free(h);
    cr_assert_eq(maildir_count(e.box, "desk@clinic.example", NULL), 1, "the desk was told once");
    cr_assert_eq(maildir_count(e.box, "dr.lee@example.org", NULL), 1, "the prescriber was told once");
    rg__teardown(&e);
}

Test(notify_service, inhibition_holds_the_warnings_back_and_records_it, .timeout = 120)
{
    rg__env e;
    rg__setup(&e, 60, 1);
    int64_t t = now_ms();
    char *c = ping("north", "c1", "p1", t, "crit"), *w = ping("north", "w1", "p1", t, "warn");
    char body[1200];
    snprintf(body, sizeof body, "[%s,%s]", c, w);
    free(c);
    free(w);
    rg__post(&e, body);
    char *h = rg__wait_history(&e, "suppressed: inhibited", 3, 20000);
    free(h);
    /* the suppressed rows are written in the evaluation's commit, the sent
     * one after the delivery: waited for too (read at once, it was not
     * there yet once in a while under load) */
    h = rg__wait_history(&e, "\tsent", 1, 5000);
    cr_assert_eq(rg__count(h, "suppressed: inhibited"), 3, "%s", h);
    cr_assert_eq(rg__count(h, "\tsent"), 1, "only the critical's first step: %s", h);
    cr_assert(strstr(h, "n.crit\troute 1 step 1\tdesk (email)\tsent"), "%s", h);
    free(h);
    cr_assert(rg__wait_mails(&e, "desk@clinic.example", 1, 5000));
    char *mail = NULL;
    cr_assert_eq(maildir_count(e.box, NULL, &mail), 1, "one message, the critical's");
    cr_assert(strstr(mail, "n.crit"), "%s", mail);
    free(mail);
    rg__teardown(&e);
}

Test(notify_service, three_warnings_due_together_are_one_message, .timeout = 120)
{
    rg__env e;
    rg__setup(&e, 60, 1);
    char *w = ping("north", "w1", "p1", now_ms(), "warn");
    rg__post(&e, w);
    free(w);
    char *h = rg__wait_history(&e, "suppressed: grouped", 2, 20000);
    cr_assert_eq(rg__count(h, "\tsent"), 1, "%s", h);
    cr_assert(strstr(h, "(3 alerts)"), "%s", h);
    free(h);
    char *mail = NULL;
    cr_assert(rg__wait_mails(&e, "desk@clinic.example", 1, 5000));
    cr_assert_eq(maildir_count(e.box, NULL, &mail), 1, "one message for three alerts");
    cr_assert(strstr(mail, "warning one") && strstr(mail, "warning two") &&
              strstr(mail, "warning three"), "%s", mail);
    free(mail);
    rg__teardown(&e);
}

/* ---- webhook and SMS gateway receivers ---- */

#include "service/webhook.h"

#include <pthread.h>

typedef struct rg__rx {
    int fd, port, n;
    char req[2][8192];
    pthread_t thread;
} rg__rx;

/* Accepts two requests, answers each 200. */
static void *rg__rx_main(void *ud)
{
    rg__rx *r = ud;
    for (r->n = 0; r->n < 2;) {
        int c = accept(r->fd, NULL, NULL);
        if (c < 0)
            break;
        rg_test_read_request(c, r->req[r->n], sizeof r->req[0]);
        static const char ok[] = "HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
        (void)!write(c, ok, sizeof ok - 1);
        close(c);
        r->n++;
    }
    return NULL;
}

/* The value of header name in request q (to the end of its line), in out. */
static void rg__header(const char *q, const char *name, char *out, size_t len)
{
    const char *h = strcasestr(q, name);
    cr_assert_not_null(h, "no %s in:\n%s", name, q);
    h += strlen(name);
    while (*h == ' ')
        h++;
    snprintf(out, len, "%.*s", (int)strcspn(h, "\r\n"), h);
}

Test(notify_service, a_webhook_step_is_signed_and_an_sms_gateway_gets_the_text, .timeout = 120)
{
    static const char secret[] = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    rg__env e;
    memset(&e, 0, sizeof e);
    rg__rx r = {0};
    r.fd = rg_test_listen(4, &r.port);
    pthread_create(&r.thread, NULL, rg__rx_main, &r);
    server_setup(&e.s, rg__protocol, rg__protocol);
    char cfg[1500], clinic[1500];
    snprintf(cfg, sizeof cfg,
             "{ \"listen\": \"127.0.0.1:0\",\n"
             "  \"clinics\": {\n"
             "    \"north\": { \"protocols\": \"a\", \"tokens\": [\"" TOKEN_A "\"],\n"
             "      \"webhook\": { \"url\": \"http://127.0.0.1:9/transitions\", \"secret\": \"%s\" } },\n"
             "    \"south\": { \"protocols\": \"b\", \"tokens\": [\"" TOKEN_B "\"] } } }\n",
             secret);
    rg_test_write(e.s.dir, "config.json", cfg);
    snprintf(clinic, sizeof clinic,
             "local R = require 'regimen'\n"
             "return { notify = {\n"
             "  receivers = { desk = { webhook = 'http://127.0.0.1:%d/desk' },\n"
             "                pager = { sms = 'http://127.0.0.1:%d/sms' } },\n"
             "  routes = { { steps = { { to = 'desk' }, { after = R.seconds(2), to = 'pager' } } } },\n"
             "} }\n", r.port, r.port);
    rg_test_write(e.s.dir, "a/clinic.lua", clinic);
    server_start(&e.s);
    char *ev = ping("north", "c1", "p1", now_ms(), "crit");
    rg__post(&e, ev);
    free(ev);
    pthread_join(r.thread, NULL);
    close(r.fd);
    cr_assert_eq(r.n, 2, "two requests");
    /* the desk's: signed as the clinic's webhook is (Standard Webhooks) */
    const char *q = r.req[0], *body = strstr(q, "\r\n\r\n") + 4;
    cr_assert(!strncmp(q, "POST /desk ", 11), "%s", q);
    cr_assert(strstr(body, "\"kind\":\"notification\"") && strstr(body, "\"receiver\":\"desk\"") &&
              strstr(body, "\"rule\":\"n.crit\"") && strstr(body, "blood pressure critical"),
              "%s", body);
    char id[400], ts[40], sig[300], want[300];
    rg__header(q, "webhook-id:", id, sizeof id);
    rg__header(q, "webhook-timestamp:", ts, sizeof ts);
    rg__header(q, "webhook-signature:", sig, sizeof sig);
    cr_assert(!strncmp(id, "north-", 6) && strstr(id, "-1-1-0"), "the idempotency key: %s", id);
    rg_webhook_key k;
    cr_assert_eq(rg_webhook_key_parse(secret, &k), RG_OK);
    cr_assert_eq(rg_webhook_sign(&k, 1, id, atoll(ts), body, strlen(body), want, sizeof want),
                 RG_OK);
    cr_assert_str_eq(sig, want, "the signature verifies");
    /* the pager's: the SMS gateway gets the text to send */
    q = r.req[1];
    cr_assert(!strncmp(q, "POST /sms ", 10), "%s", q);
    cr_assert(strstr(q, "\"text\":\"critical n.crit, patient p1: blood pressure critical\""), "%s",
              q);
    char *h = rg__wait_history(&e, "\tsent", 2, 5000);
    cr_assert(strstr(h, "step 1\tdesk (webhook)\tsent") && strstr(h, "step 2\tpager (sms)\tsent"),
              "%s", h);
    free(h);
    server_stop(&e.s, SIGTERM);
    rg_test_rmdir(e.s.dir);
}
