/*
 * test_auth.c - people, keys and roles of `regimen serve` (runtime/service/
 * auth.c), through the real binary: users signed in with passwords hashed by
 * `regimen passwd`, API keys, the role check of every route, CSRF, sessions
 * that expire and end, failed sign-ins that slow down, a reload (SIGHUP and
 * the admin route) that removes a user and a key at once and closes their
 * streams, /metrics per role.
 */
#include <criterion/criterion.h>

#define RG_TEST_SERVE
#include "helpers.h"

#include <sodium.h>

#define KEY_EHR "ehr-feed-key-0123456789abcdef"
#define KEY_SOUTH "south-feed-key-0123456789abcdef"
#define KEY_PROM "prometheus-key-0123456789abcdef"
#define PW_ANN "ann-password-1"
#define PW_ADAM "adam-password-1"
#define PW_SAM "sam-password-1"

static void hex256(const char *s, char out[65])
{
    unsigned char h[crypto_hash_sha256_BYTES];
    crypto_hash_sha256(h, (const unsigned char *)s, strlen(s));
    sodium_bin2hex(out, 65, h, sizeof h);
}

/* The hash `regimen passwd` prints for pw (its one line). */
static char *pwhash(const char *pw)
{
    char in[256], *out, *err;
    snprintf(in, sizeof in, "%s\n", pw);
    const char *args[] = {"passwd", NULL};
    cr_assert_eq(rg_test_run(args, in, &out, &err), 0, "regimen passwd: %s", err);
    free(err);
    out[strcspn(out, "\n")] = '\0';
    return out;
}

typedef struct auth_env {
    server s;
    char *ann, *adam, *sam; /* password hashes */
} auth_env;

/* The configuration: north has ann (nurse), adam (admin) and the ehr-feed
 * key (integration); south has sam (admin) and its feed; prometheus reads
 * every clinic's metrics. with_ann 0 removes ann and the ehr-feed key. */
static void write_config(auth_env *e, int with_ann, int idle_s, int max_s)
{
    char cfg[8192], ehr[65], south[65], prom[65];
    hex256(KEY_EHR, ehr);
    hex256(KEY_SOUTH, south);
    hex256(KEY_PROM, prom);
    char annline[512] = "", ehrline[256] = "";
    if (with_ann) {
        snprintf(annline, sizeof annline, "{\"name\": \"ann\", \"role\": \"nurse\", \"password\": \"%s\"}, ",
                 e->ann);
        snprintf(ehrline, sizeof ehrline,
                 "{\"name\": \"ehr-feed\", \"role\": \"integration\", \"sha256\": \"%s\"}", ehr);
    }
    snprintf(cfg, sizeof cfg,
             "{ \"listen\": \"127.0.0.1:0\",\n"
             "  \"sessions\": { \"idle_timeout_s\": %d, \"max_age_s\": %d },\n"
             "  \"clinics\": {\n"
             "    \"north\": { \"protocols\": \"a\",\n"
             "      \"users\": [ %s{\"name\": \"adam\", \"role\": \"admin\", \"password\": \"%s\"} ],\n"
             "      \"api_keys\": [ %s ] },\n"
             "    \"south\": { \"protocols\": \"b\",\n"
             "      \"users\": [ {\"name\": \"sam\", \"role\": \"admin\", \"password\": \"%s\"} ],\n"
             "      \"api_keys\": [ {\"name\": \"south-feed\", \"role\": \"integration\", \"sha256\": \"%s\"} ] } },\n"
             "  \"api_keys\": [ {\"name\": \"prometheus\", \"role\": \"metrics\", \"sha256\": \"%s\"} ],\n"
             "  \"limits\": { \"max_instructions\": 2000000, \"deadline_ms\": 500 } }\n",
             idle_s, max_s, annline, e->adam, ehrline, e->sam, south, prom);
    rg_test_write(e->s.dir, "config.json", cfg);
}

static void auth_start_with(auth_env *e, int idle_s, int max_s, const char *protocol_a)
{
    memset(e, 0, sizeof *e);
    cr_assert_geq(sodium_init(), 0);
    server_setup(&e->s, protocol_a, fast_protocol);
    e->ann = pwhash(PW_ANN);
    e->adam = pwhash(PW_ADAM);
    e->sam = pwhash(PW_SAM);
    write_config(e, 1, idle_s, max_s);
    server_start(&e->s);
}

static void auth_start(auth_env *e, int idle_s, int max_s)
{
    auth_start_with(e, idle_s, max_s, fast_protocol);
}

static void auth_stop(auth_env *e)
{
    cr_assert_eq(server_stop(&e->s, SIGTERM), 0);
    rg_test_rmdir(e->s.dir);
    free(e->ann);
    free(e->adam);
    free(e->sam);
}

/* One request with extra header lines (each ending in CRLF); returns the
 * status, *head the headers and *body the body. */
static int req(int port, const char *method, const char *path, const char *hdrs, const char *body,
               char **head, char **out)
{
    int fd = connect_to(port);
    cr_assert_geq(fd, 0);
    char buf[4096];
    size_t blen = body ? strlen(body) : 0;
    int n = snprintf(buf, sizeof buf,
                     "%s %s HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n%s"
                     "Content-Type: application/json\r\nContent-Length: %zu\r\n\r\n%s",
                     method, path, hdrs ? hdrs : "", blen, body ? body : "");
    cr_assert_eq(write(fd, buf, (size_t)n), n);
    size_t cap = 65536, len = 0;
    char *all = malloc(cap);
    ssize_t r;
    while ((r = read(fd, all + len, cap - len - 1)) > 0) {
        len += (size_t)r;
        if (len + 1 == cap)
            all = realloc(all, cap *= 2);
    }
    all[len] = '\0';
    close(fd);
    int status = 0;
    sscanf(all, "HTTP/1.1 %d", &status);
    char *sep = strstr(all, "\r\n\r\n");
    if (out)
        *out = strdup(sep ? sep + 4 : "");
    if (head) {
        if (sep)
            *sep = '\0';
        *head = strdup(all);
    }
    free(all);
    return status;
}

typedef struct sess {
    char hdrs[400];   /* Cookie and X-CSRF-Token */
    char cookie[200]; /* Cookie only */
} sess;

/* Signs in; returns the status. */
static int sign_in(int port, const char *clinic, const char *user, const char *pw, sess *se,
                   char **head, char **out)
{
    char body[300], *h, *o;
    snprintf(body, sizeof body, "{\"clinic\":\"%s\",\"user\":\"%s\",\"password\":\"%s\"}", clinic,
             user, pw);
    int st = req(port, "POST", "/v1/session", NULL, body, &h, &o);
    if (st == 200 && se) {
        const char *c = strstr(h, "Set-Cookie: regimen_session=");
        cr_assert_not_null(c, "%s", h);
        c += strlen("Set-Cookie: ");
        const char *csrf = strstr(o, "\"csrf\":\"");
        cr_assert_not_null(csrf, "%s", o);
        snprintf(se->cookie, sizeof se->cookie, "Cookie: %.*s\r\n", (int)strcspn(c, ";\r"), c);
        snprintf(se->hdrs, sizeof se->hdrs, "%sX-CSRF-Token: %.64s\r\n", se->cookie, csrf + 8);
    }
    if (head)
        *head = h;
    else
        free(h);
    if (out)
        *out = o;
    else
        free(o);
    return st;
}

/* Posts a ping (ten seconds old, so its alert is due at once) with key and
 * waits for the alert to be open; returns its key. */
static char *open_alert(int port, const char *bearer, const char *clinic, const char *id,
                        const char *patient, const sess *reader)
{
    char *ev = ping(clinic, id, patient, now_ms() - 10000, "ping"), *out;
    cr_assert_eq(http(port, "POST", "/v1/events", bearer, ev, &out), 200, "%s", out);
    free(ev);
    free(out);
    for (int i = 0; i < 500; i++) {
        char path[200];
        snprintf(path, sizeof path, "/v1/alerts?state=open&patient=%s", patient);
        cr_assert_eq(req(port, "GET", path, reader->cookie, NULL, NULL, &out), 200, "%s", out);
        char *k = strstr(out, "\"key\":\"");
        if (k) {
            k += 7;
            char *key = strndup(k, strcspn(k, "\""));
            free(out);
            return key;
        }
        free(out);
        usleep(10000);
    }
    cr_assert_fail("the alert of %s did not open", patient);
    return NULL;
}

/* An SSE stream opened with extra headers (a cookie). */
static void stream_open_with(stream *st, int port, const char *hdrs)
{
    char r[1024];
    st->fd = connect_to(port);
    cr_assert_geq(st->fd, 0);
    st->len = 0;
    int n = snprintf(r, sizeof r, "GET /v1/transitions/stream HTTP/1.1\r\nHost: x\r\n%s\r\n", hdrs);
    cr_assert_eq(write(st->fd, r, (size_t)n), n);
}

/* A nurse's ack records the nurse whatever "who" says; an integration key
 * cannot ack, a nurse cannot post events (403 naming the roles needed); a
 * cookie request that changes something needs the session's csrf; signing
 * out ends the session. */
Test(auth, nurse_ack_records_the_nurse_and_roles_are_checked, .timeout = 60)
{
    auth_env e;
    auth_start(&e, 1800, 43200);
    int port = e.s.port;
    sess ann;
    char *out, *head, path[200];
    cr_assert_eq(sign_in(port, "north", "ann", PW_ANN, &ann, &head, &out), 200, "%s", out);
    cr_assert(strstr(out, "\"user\":\"ann\"") && strstr(out, "\"role\":\"nurse\"") &&
              strstr(out, "\"clinic\":\"north\""), "%s", out);
    cr_assert(strstr(head, "HttpOnly") && strstr(head, "SameSite=Strict") && !strstr(head, "Secure"),
              "%s", head);
    free(head);
    free(out);
    char *key = open_alert(port, KEY_EHR, "north", "k1", "p1", &ann);

    /* an integration key: no ack, 403 naming who may */
    snprintf(path, sizeof path, "/v1/alerts/%s/ack", key);
    cr_assert_eq(http(port, "POST", path, KEY_EHR, "{\"who\":\"nurse ann\"}", &out), 403, "%s", out);
    cr_assert(strstr(out, "\"needed\":[\"nurse\",\"prescriber\"]") && strstr(out, "integration"),
              "%s", out);
    free(out);
    /* a nurse posts no events */
    char *ev = ping("north", "k2", "p2", now_ms(), "ping");
    cr_assert_eq(req(port, "POST", "/v1/events", ann.hdrs, ev, NULL, &out), 403, "%s", out);
    cr_assert(strstr(out, "\"needed\":[\"integration\"]"), "%s", out);
    free(out);
    free(ev);
    /* the cookie without the csrf value (or a wrong one) changes nothing */
    cr_assert_eq(req(port, "POST", path, ann.cookie, "{}", NULL, &out), 403, "%s", out);
    cr_assert(strstr(out, "X-CSRF-Token"), "%s", out);
    free(out);
    char wrong[400];
    snprintf(wrong, sizeof wrong, "%sX-CSRF-Token: %064d\r\n", ann.cookie, 0);
    cr_assert_eq(req(port, "POST", path, wrong, "{}", NULL, &out), 403, "%s", out);
    free(out);
    /* with it: recorded as ann the nurse, whatever "who" says */
    cr_assert_eq(req(port, "POST", path, ann.hdrs, "{\"who\":\"dr mallory\",\"note\":\"called\"}",
                     NULL, &out), 200, "%s", out);
    cr_assert(strstr(out, "\"acknowledged_by\":\"ann (nurse)\"") && !strstr(out, "mallory"), "%s",
              out);
    free(out);
    cr_assert(log_wait(&e.s, "acknowledged by ann (nurse)", 2000));
    /* the admin reads, does not ack */
    sess adam;
    cr_assert_eq(sign_in(port, "north", "adam", PW_ADAM, &adam, NULL, NULL), 200);
    snprintf(path, sizeof path, "/v1/alerts/%s", key);
    cr_assert_eq(req(port, "GET", path, adam.cookie, NULL, NULL, &out), 200, "%s", out);
    free(out);
    /* no credentials at all, an unknown key */
    cr_assert_eq(http(port, "GET", "/v1/alerts", NULL, NULL, &out), 401, "%s", out);
    free(out);
    cr_assert_eq(http(port, "GET", "/v1/alerts", "not-a-key-of-anyone-here", NULL, &out), 401);
    free(out);
    /* sign out: the cookie is refused from then on; signing out needs csrf too */
    cr_assert_eq(req(port, "DELETE", "/v1/session", ann.cookie, NULL, NULL, &out), 403, "%s", out);
    free(out);
    cr_assert_eq(req(port, "DELETE", "/v1/session", ann.hdrs, NULL, &head, &out), 200, "%s", out);
    cr_assert(strstr(head, "regimen_session=;") && strstr(head, "Max-Age=0"), "%s", head);
    free(head);
    free(out);
    cr_assert_eq(req(port, "GET", "/v1/alerts", ann.cookie, NULL, NULL, &out), 401, "%s", out);
    free(out);
    free(key);
    auth_stop(&e);
}

/* One clinic's admin cannot read another clinic's alerts, explain,
 * timeline, stream or metrics; the metrics role reads every clinic's. */
Test(auth, an_admin_sees_only_the_own_clinic, .timeout = 60)
{
    auth_env e;
    auth_start(&e, 1800, 43200);
    int port = e.s.port;
    sess adam, sam;
    char *out, path[200];
    cr_assert_eq(sign_in(port, "north", "adam", PW_ADAM, &adam, NULL, NULL), 200);
    cr_assert_eq(sign_in(port, "south", "sam", PW_SAM, &sam, NULL, NULL), 200);
    stream north_st, south_st;
    stream_open_with(&north_st, port, adam.cookie);
    stream_open_with(&south_st, port, sam.cookie);
    cr_assert_neq(stream_wait(&north_st, "\r\n\r\n", 5000), -1);
    cr_assert_neq(stream_wait(&south_st, "\r\n\r\n", 5000), -1);
    char *nkey = open_alert(port, KEY_EHR, "north", "n1", "north-patient", &adam);
    cr_assert_neq(stream_wait(&north_st, "north-patient", 5000), -1, "%s", north_st.buf);
    /* south's own alert reaches sam's stream: north's, published before it, did not */
    char *skey = open_alert(port, KEY_SOUTH, "south", "s1", "south-patient", &sam);
    cr_assert_neq(stream_wait(&south_st, "south-patient", 5000), -1, "%s", south_st.buf);
    cr_assert_null(strstr(south_st.buf, "north-patient"), "%s", south_st.buf);
    close(north_st.fd);
    close(south_st.fd);

    cr_assert_eq(req(port, "GET", "/v1/alerts", sam.cookie, NULL, NULL, &out), 200);
    cr_assert(!strstr(out, "north-patient") && strstr(out, "south-patient"), "%s", out);
    free(out);
    snprintf(path, sizeof path, "/v1/alerts/%s", nkey);
    cr_assert_eq(req(port, "GET", path, sam.cookie, NULL, NULL, &out), 404, "%s", out);
    free(out);
    snprintf(path, sizeof path, "/v1/alerts/%s/explain", nkey);
    cr_assert_eq(req(port, "GET", path, sam.cookie, NULL, NULL, &out), 404, "%s", out);
    free(out);
    cr_assert_eq(req(port, "GET", path, adam.cookie, NULL, NULL, &out), 200, "%s", out);
    free(out);
    cr_assert_eq(req(port, "GET", "/v1/patients/north-patient/timeline", sam.cookie, NULL, NULL, &out),
                 404, "%s", out);
    free(out);
    cr_assert_eq(req(port, "GET", "/v1/patients/north-patient/timeline", adam.cookie, NULL, NULL,
                     &out), 200, "%s", out);
    free(out);
    /* metrics: each admin its own clinic's series, prometheus every clinic's,
     * a nurse's or an integration key's none */
    cr_assert_eq(req(port, "GET", "/metrics", sam.cookie, NULL, NULL, &out), 200, "%s", out);
    cr_assert(strstr(out, "clinic=\"south\"") && !strstr(out, "clinic=\"north\""), "%s", out);
    free(out);
    cr_assert_eq(req(port, "GET", "/metrics", adam.cookie, NULL, NULL, &out), 200, "%s", out);
    cr_assert(strstr(out, "clinic=\"north\"") && !strstr(out, "clinic=\"south\""), "%s", out);
    free(out);
    cr_assert_eq(http(port, "GET", "/metrics", KEY_PROM, NULL, &out), 200, "%s", out);
    cr_assert(strstr(out, "clinic=\"north\"") && strstr(out, "clinic=\"south\""), "%s", out);
    free(out);
    cr_assert_eq(http(port, "GET", "/metrics", KEY_EHR, NULL, &out), 403, "%s", out);
    cr_assert(strstr(out, "\"needed\":[\"admin\",\"metrics\"]"), "%s", out);
    free(out);
    /* and the metrics key reads nothing else */
    cr_assert_eq(http(port, "GET", "/v1/alerts", KEY_PROM, NULL, &out), 403, "%s", out);
    free(out);
    free(nkey);
    free(skey);
    auth_stop(&e);
}

/* A user and a key removed from the file are refused on the next request
 * after SIGHUP, and their open streams are closed; the admin route reloads
 * too, and only for an admin. */
Test(auth, a_removed_user_and_key_stop_at_once_on_reload, .timeout = 60)
{
    auth_env e;
    auth_start(&e, 1800, 43200);
    int port = e.s.port;
    sess ann, adam;
    char *out;
    cr_assert_eq(sign_in(port, "north", "ann", PW_ANN, &ann, NULL, NULL), 200);
    cr_assert_eq(sign_in(port, "north", "adam", PW_ADAM, &adam, NULL, NULL), 200);
    stream ann_st, adam_st;
    stream_open_with(&ann_st, port, ann.cookie);
    stream_open(&adam_st, port, KEY_EHR, NULL); /* an integration key may not: 403 */
    cr_assert_neq(stream_wait(&adam_st, "403", 5000), -1, "%s", adam_st.buf);
    close(adam_st.fd);
    stream_open_with(&adam_st, port, adam.cookie);
    cr_assert_neq(stream_wait(&ann_st, "text/event-stream", 5000), -1, "%s", ann_st.buf);
    cr_assert_neq(stream_wait(&adam_st, "text/event-stream", 5000), -1, "%s", adam_st.buf);
    /* the nurse may not reload, the admin may */
    cr_assert_eq(req(port, "POST", "/v1/admin/reload", ann.hdrs, NULL, NULL, &out), 403, "%s", out);
    free(out);
    cr_assert_eq(req(port, "POST", "/v1/admin/reload", adam.hdrs, NULL, NULL, &out), 200, "%s", out);
    cr_assert(strstr(out, "reloaded"), "%s", out);
    free(out);
    cr_assert(log_wait(&e.s, "configuration reloaded by adam (admin)", 5000));
    cr_assert_eq(req(port, "GET", "/v1/alerts", ann.cookie, NULL, NULL, &out), 200, "%s", out);
    free(out);

    write_config(&e, 0, 1800, 43200); /* ann and the ehr-feed key are gone */
    kill(e.s.pid, SIGHUP);
    cr_assert(log_wait(&e.s, "configuration reloaded by signal SIGHUP", 5000));
    cr_assert(stream_closed(&ann_st, 5000), "ann's stream stays open: %s", ann_st.buf);
    close(ann_st.fd);
    cr_assert_eq(req(port, "GET", "/v1/alerts", ann.cookie, NULL, NULL, &out), 401, "%s", out);
    free(out);
    cr_assert_eq(http(port, "GET", "/v1/alerts", KEY_EHR, NULL, &out), 401, "%s", out);
    free(out);
    cr_assert_eq(sign_in(port, "north", "ann", PW_ANN, NULL, NULL, &out), 401, "%s", out);
    free(out);
    /* adam stays, his stream too: the next transition reaches it */
    cr_assert_eq(req(port, "GET", "/v1/alerts", adam.cookie, NULL, NULL, &out), 200, "%s", out);
    free(out);
    cr_assert_eq(stream_closed(&adam_st, 200), 0);
    close(adam_st.fd);
    /* a broken file is refused and the running configuration stays */
    rg_test_write(e.s.dir, "config.json", "{ \"clinics\": 1 }");
    kill(e.s.pid, SIGHUP);
    cr_assert(log_wait(&e.s, "configuration reload by signal SIGHUP refused", 5000));
    cr_assert_eq(req(port, "GET", "/v1/alerts", adam.cookie, NULL, NULL, &out), 200, "%s", out);
    free(out);
    auth_stop(&e);
}

/* Failed sign-ins of a user slow down: after three, the next attempt (even
 * with the right password) waits, told by 429 and Retry-After. */
Test(auth, failed_sign_ins_slow_down, .timeout = 60)
{
    auth_env e;
    auth_start(&e, 1800, 43200);
    int port = e.s.port;
    char *out, *head;
    for (int i = 0; i < 3; i++) {
        cr_assert_eq(sign_in(port, "north", "ann", "wrong-password", NULL, NULL, &out), 401, "%s",
                     out);
        free(out);
    }
    int64_t t0 = now_ms();
    cr_assert_eq(sign_in(port, "north", "ann", PW_ANN, NULL, &head, &out), 429, "%s", out);
    cr_assert(strstr(head, "Retry-After: 1"), "%s", head);
    free(head);
    free(out);
    /* another user from the same address is not held up by ann's */
    cr_assert_eq(sign_in(port, "north", "adam", PW_ADAM, NULL, NULL, NULL), 200);
    while (now_ms() - t0 < 1100)
        usleep(20000);
    cr_assert_eq(sign_in(port, "north", "ann", PW_ANN, NULL, NULL, &out), 200, "%s", out);
    free(out);
    /* the wait doubles with each further failure: 1 s, then 2 s */
    for (int i = 0; i < 3; i++)
        cr_assert_eq(sign_in(port, "north", "ann", "wrong-password", NULL, NULL, NULL), 401);
    t0 = now_ms();
    cr_assert_eq(sign_in(port, "north", "ann", "wrong-password", NULL, NULL, NULL), 429);
    while (now_ms() - t0 < 1100)
        usleep(20000);
    cr_assert_eq(sign_in(port, "north", "ann", "wrong-password", NULL, NULL, NULL), 401);
    cr_assert_eq(sign_in(port, "north", "ann", PW_ANN, NULL, &head, NULL), 429);
    cr_assert(strstr(head, "Retry-After: 2"), "%s", head);
    free(head);
    /* an unknown user fails the same way */
    cr_assert_eq(sign_in(port, "north", "nobody", PW_ANN, NULL, NULL, NULL), 401);
    cr_assert(log_wait(&e.s, "failed sign-in as north/nobody", 2000));
    auth_stop(&e);
}

/* A session ends after its idle time without requests, and after its
 * absolute age whatever the use; its stream is closed then. */
Test(auth, sessions_expire, .timeout = 60)
{
    auth_env e;
    auth_start(&e, 2, 4);
    int port = e.s.port;
    sess ann;
    char *out;
    /* idle */
    cr_assert_eq(sign_in(port, "north", "ann", PW_ANN, &ann, NULL, NULL), 200);
    stream st;
    stream_open_with(&st, port, ann.cookie);
    cr_assert_neq(stream_wait(&st, "text/event-stream", 5000), -1, "%s", st.buf);
    cr_assert_eq(req(port, "GET", "/v1/alerts", ann.cookie, NULL, NULL, &out), 200, "%s", out);
    free(out);
    int64_t t0 = now_ms();
    cr_assert(stream_closed(&st, 6000), "the stream outlived its session");
    cr_assert_geq(now_ms() - t0, 1500);
    close(st.fd);
    cr_assert_eq(req(port, "GET", "/v1/alerts", ann.cookie, NULL, NULL, &out), 401, "%s", out);
    free(out);
    /* absolute: used every half second, still ended after 4 s */
    cr_assert_eq(sign_in(port, "north", "ann", PW_ANN, &ann, NULL, NULL), 200);
    t0 = now_ms();
    int status;
    while ((status = req(port, "GET", "/v1/alerts", ann.cookie, NULL, NULL, NULL)) == 200 &&
           now_ms() - t0 < 10000)
        usleep(500000);
    cr_assert_eq(status, 401);
    cr_assert_geq(now_ms() - t0, 3500, "ended after %lld ms", (long long)(now_ms() - t0));
    auth_stop(&e);
}

/* regimen passwd prints an argon2id hash that verifies the password (and
 * no other), and refuses a short one. */
Test(auth, passwd_prints_a_hash_that_verifies)
{
    cr_assert_geq(sodium_init(), 0);
    char *h = pwhash("correct horse battery");
    cr_assert(!strncmp(h, "$argon2id$v=19$m=65536,t=2,p=1$", 31), "%s", h);
    cr_assert_eq(crypto_pwhash_str_verify(h, "correct horse battery", 21), 0);
    cr_assert_neq(crypto_pwhash_str_verify(h, "correct horse batterx", 21), 0);
    free(h);
    char *out, *err;
    const char *args[] = {"passwd", NULL};
    cr_assert_eq(rg_test_run(args, "short\n", &out, &err), 2);
    cr_assert(strstr(err, "at least 8"), "%s", err);
    free(out);
    free(err);
}

/* /metrics label values are escaped as the Prometheus text format says: a
 * protocol version with a double quote, a backslash and a line feed. */
Test(auth, metrics_label_values_are_escaped, .timeout = 60)
{
    char proto[sizeof fast_protocol + 32];
    snprintf(proto, sizeof proto, "%s", fast_protocol);
    char *v = strstr(proto, "'1.0'");
    cr_assert_not_null(v);
    /* the Lua text '1.0 \"x\\\n' is the version 1.0 "x\<line feed> */
    static const char lua[] = "'1.0 \\\"x\\\\\\n'";
    memmove(v + strlen(lua), v + 5, strlen(v + 5) + 1);
    memcpy(v, lua, strlen(lua));
    auth_env e;
    auth_start_with(&e, 1800, 43200, proto);
    char *out;
    cr_assert_eq(http(e.s.port, "GET", "/metrics", KEY_PROM, NULL, &out), 200, "%s", out);
    cr_assert(strstr(out, "protocol=\"fast\",version=\"1.0 \\\"x\\\\\\n\"}"), "%s", out);
    free(out);
    auth_stop(&e);
}

/* The clinics' old tokens still work, with a warning at start naming each
 * clinic; a token's ack records the body's who (it names nobody). */
Test(auth, legacy_tokens_work_with_a_warning, .timeout = 60)
{
    server s = {0};
    char *out;
    server_setup(&s, fast_protocol, fast_protocol);
    server_start(&s);
    cr_assert(log_wait(&s, "clinic north: 'tokens' are deprecated", 5000));
    cr_assert(log_wait(&s, "clinic south: 'tokens' are deprecated", 5000));
    cr_assert_eq(http(s.port, "GET", "/v1/alerts", TOKEN_A, NULL, &out), 200, "%s", out);
    free(out);
    cr_assert_eq(http(s.port, "GET", "/metrics", TOKEN_A, NULL, &out), 200, "%s", out);
    cr_assert(strstr(out, "clinic=\"north\"") && !strstr(out, "clinic=\"south\""), "%s", out);
    free(out);
    cr_assert_eq(server_stop(&s, SIGTERM), 0);
    rg_test_rmdir(s.dir);
}

/* A clinic's name is a label value too: one with a double quote and a
 * backslash is written escaped in every family that names the clinic, so a
 * scraper reads the series it meant (the metrics are a table: api.c). */
Test(auth, metrics_clinic_names_are_escaped, .timeout = 60)
{
    server s = {0};
    char cfg[2048], prom[65], *out;
    hex256(KEY_PROM, prom);
    server_setup(&s, fast_protocol, fast_protocol);
    char ehr[65];
    hex256(KEY_EHR, ehr);
    snprintf(cfg, sizeof cfg,
             "{ \"listen\": \"127.0.0.1:0\",\n"
             "  \"clinics\": { \"we\\\"st\\\\\": { \"protocols\": \"a\",\n"
             "      \"api_keys\": [ {\"name\": \"feed\", \"role\": \"integration\", "
             "\"sha256\": \"%s\"} ] } },\n"
             "  \"api_keys\": [ {\"name\": \"prometheus\", \"role\": \"metrics\", "
             "\"sha256\": \"%s\"} ] }\n", ehr, prom);
    rg_test_write(s.dir, "config.json", cfg);
    server_start(&s);
    cr_assert_eq(http(s.port, "GET", "/metrics", KEY_PROM, NULL, &out), 200, "%s", out);
    static const char *const want[] = {
        "regimen_events_total{clinic=\"we\\\"st\\\\\",outcome=\"stored\"} 0\n",
        "regimen_transitions_total{clinic=\"we\\\"st\\\\\",state=\"open\"} 0\n",
        "regimen_evaluations_total{clinic=\"we\\\"st\\\\\",protocol=\"fast\",version=\"1.0\"} ",
        "regimen_lease_held{clinic=\"we\\\"st\\\\\"} 1\n",
    };
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++)
        cr_assert(strstr(out, want[i]), "no %s in:\n%s", want[i], out);
    cr_assert_null(strstr(out, "clinic=\"we\"st"), "%s", out);
    free(out);
    cr_assert_eq(server_stop(&s, SIGTERM), 0);
    rg_test_rmdir(s.dir);
}
