/*
 * test_signed_webhooks.c - webhook signatures (Standard Webhooks): the
 * signing function against the specification's published example, the
 * configuration's secrets, and the real service delivering to a loopback
 * receiver (tests/webhook/receiver.py) that verifies with the Python of
 * docs/service.md, taken from that file: a real delivery is accepted, the
 * same delivery tampered with or replayed six minutes later is refused, and
 * during a rotation a receiver that knows only the old secret still accepts.
 */
#define RG_TEST_SERVE
#include "helpers.h"

#include "core/rg.h"
#include "service/webhook.h"

#include <jansson.h>
#include <sys/prctl.h>

#define SECRET_NEW "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
#define SECRET_OLD "whsec_dGhlLW9sZC1zZWNyZXQtb2YtdGhlLWNsaW5pYy0xMjM0"

/* The example of the specification's reference libraries. */
Test(signed_webhooks, signature_matches_the_specification_example)
{
    rg_webhook_key k[2];
    char sig[256];
    const char *body = "{\"test\": 2432232314}";
    cr_assert_eq(rg_webhook_key_parse(SECRET_NEW, &k[0]), RG_OK);
    cr_assert_eq(rg_webhook_sign(k, 1, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body,
                                 strlen(body), sig, sizeof sig),
                 RG_OK);
    cr_assert_str_eq(sig, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
    cr_assert_eq(rg_webhook_key_parse(SECRET_OLD, &k[1]), RG_OK);
    cr_assert_eq(rg_webhook_sign(k, 2, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body,
                                 strlen(body), sig, sizeof sig),
                 RG_OK);
    cr_assert(!strncmp(sig, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE= v1,", 51), "%s",
              sig);
    cr_assert_eq(rg_webhook_key_parse("whsec_c2hvcnQ=", &k[0]), RG_EINVAL, "too short a key");
    cr_assert_eq(rg_webhook_key_parse("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", &k[0]), RG_EINVAL,
                 "without whsec_");
    cr_assert_eq(rg_webhook_key_parse("whsec_!!!!9r8GKYqrTwjUPD8ILPZIo2LaLaSw", &k[0]), RG_EINVAL);
}

static char *read_or_empty(const char *path)
{
    return access(path, F_OK) == 0 ? rg_test_read(path) : strdup("");
}

/* Sends a kept delivery (headers and body of LOG.last) to a receiver, with
 * body replaced when not NULL; returns the status. */
static int resend(int port, const char *path, json_t *kept, const char *body)
{
    json_t *h = json_object_get(kept, "headers");
    const char *b = body ? body : json_string_value(json_object_get(kept, "body"));
    char req[8192];
    int n = snprintf(req, sizeof req,
                     "POST %s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
                     "Content-Type: application/json\r\nContent-Length: %zu\r\n"
                     "webhook-id: %s\r\nwebhook-timestamp: %s\r\nwebhook-signature: %s\r\n\r\n%s",
                     path, strlen(b), json_string_value(json_object_get(h, "webhook-id")),
                     json_string_value(json_object_get(h, "webhook-timestamp")),
                     json_string_value(json_object_get(h, "webhook-signature")), b);
    int fd = connect_to(port);
    cr_assert_geq(fd, 0);
    cr_assert_eq(write(fd, req, (size_t)n), n);
    char reply[256] = {0};
    cr_assert_gt(read(fd, reply, sizeof reply - 1), 0);
    close(fd);
    int status = 0;
    sscanf(reply, "HTTP/1.%*d %d", &status); /* Python's http.server answers in 1.0 */
    return status;
}

Test(signed_webhooks, receiver_accepts_real_refuses_forged_and_replayed, .timeout = 60)
{
    server s = {0};
    pyrecv r, old;
    char cfg[1024], *out;
    server_setup(&s, fast_protocol, fast_protocol);
    pyrecv_start(&r, s.dir, "new", SECRET_NEW);
    pyrecv_start(&old, s.dir, "old", SECRET_OLD);
    snprintf(cfg, sizeof cfg,
             "{ \"listen\": \"127.0.0.1:0\", \"clinics\": { \"north\": { \"protocols\": \"a\","
             " \"tokens\": [\"" TOKEN_A "\"], \"webhook\": { \"url\": "
             "\"http://127.0.0.1:%d/hook\", \"secrets\": [\"" SECRET_NEW "\", \"" SECRET_OLD
             "\"] } } } }\n",
             r.port);
    rg_test_write(s.dir, "config.json", cfg);
    server_start(&s);
    char *ev = ping("north", "w1", "p1", now_ms() - 5000, "ping"); /* overdue at once */
    cr_assert_eq(http(s.port, "POST", "/v1/events", TOKEN_A, ev, &out), 200, "%s", out);
    free(out);
    free(ev);
    char *log = NULL;
    for (int i = 0; i < 100; i++) {
        free(log);
        log = read_or_empty(r.log);
        if (strstr(log, "ok north-1"))
            break;
        usleep(100000);
    }
    cr_assert(strstr(log, "ok north-1\n"), "the signed delivery verified: %s", log);
    cr_assert_null(strstr(log, "refused"), "%s", log);
    free(log);

    char last[600];
    snprintf(last, sizeof last, "%s.last", r.log);
    json_error_t je;
    json_t *kept = json_load_file(last, 0, &je);
    cr_assert_not_null(kept, "%s", je.text);
    const char *sig = json_string_value(json_object_get(json_object_get(kept, "headers"),
                                                        "webhook-signature"));
    cr_assert(sig && !strncmp(sig, "v1,", 3) && strstr(sig, " v1,"),
              "signed with both secrets of the rotation: %s", sig ? sig : "(none)");
    cr_assert_str_eq(json_string_value(json_object_get(json_object_get(kept, "headers"),
                                                       "webhook-id")),
                     "north-1");

    /* the same delivery again, now: accepted (it is fresh and unchanged) */
    cr_assert_eq(resend(r.port, "/check", kept, NULL), 200);
    /* a forged body under the real headers: refused */
    cr_assert_eq(resend(r.port, "/check", kept, "{\"key\":\"forged\"}"), 401);
    /* replayed six minutes later: refused by the timestamp */
    cr_assert_eq(resend(r.port, "/check?after=360", kept, NULL), 401);
    /* a receiver that knows only the old secret accepts it during the rotation */
    cr_assert_eq(resend(old.port, "/check", kept, NULL), 200);
    json_decref(kept);
    log = rg_test_read(r.log);
    cr_assert(strstr(log, "refused no valid signature") &&
                  strstr(log, "refused timestamp outside the tolerance"),
              "%s", log);
    free(log);

    cr_assert_eq(server_stop(&s, SIGTERM), 0);
    pyrecv_stop(&r);
    pyrecv_stop(&old);
    rg_test_rmdir(s.dir);
}

Test(signed_webhooks, a_bad_secret_is_refused_at_start_naming_the_field)
{
    char dir[256], *out, *err;
    rg_test_tmpdir(dir);
    rg_test_write(dir, "a/p.lua", fast_protocol);
    rg_test_write(dir, "config.json",
                  "{ \"clinics\": { \"north\": { \"protocols\": \"a\", \"tokens\": [\"" TOKEN_A
                  "\"], \"webhook\": { \"url\": \"http://127.0.0.1:9/h\", \"secret\": "
                  "\"not-a-secret\" } } } }\n");
    char cfg[512], db[512];
    snprintf(cfg, sizeof cfg, "%s/config.json", dir);
    snprintf(db, sizeof db, "%s/x.db", dir);
    const char *args[] = {"serve", "--config", cfg, "--db", db, NULL};
    cr_assert_eq(rg_test_run(args, NULL, &out, &err), 2, "%s", err);
    cr_assert(strstr(err, "clinics.north.webhook") && strstr(err, "whsec_"), "%s", err);
    free(out);
    free(err);
    rg_test_rmdir(dir);
}
