/*
 * test_cause.c - each transition names who or what caused it
 * (rg_transition.cause, schema 13): through the real binary, an alert opened
 * by an integration key's event post names the key, one opened by a wake-up
 * names the clock, its resolution by a clinic token's post names the token,
 * in GET /v1/alerts/{key} and in explain; a row from before schema 13 (a
 * version 11 file, upgraded) reads as unknown in `regimen explain`.
 */
#define RG_TEST_SERVE
#include "helpers.h"

#include "store/store.h"

#include <jansson.h>
#include <sodium.h>

#define KEY_EHR "ehr-feed-key-0123456789abcdef"

/* The open alert of patient on north (its key into key), waiting up to ms. */
static int alert_of(int port, const char *patient, char key[128], int ms)
{
    for (int64_t end = now_ms() + ms; now_ms() < end; usleep(50000)) {
        char *out, path[256];
        snprintf(path, sizeof path, "/v1/alerts?patient=%s", patient);
        int st = http(port, "GET", path, TOKEN_A, NULL, &out);
        json_t *j = st == 200 ? json_loads(out, 0, NULL) : NULL;
        free(out);
        json_t *a = json_array_get(json_object_get(j, "alerts"), 0);
        int found = a != NULL;
        if (found)
            snprintf(key, 128, "%s", json_string_value(json_object_get(a, "key")));
        json_decref(j);
        if (found)
            return 1;
    }
    return 0;
}

/* The causes of the alert's transitions, in order, joined by "|". */
static void causes_of(int port, const char *key, char *buf, size_t len)
{
    char *out, path[256];
    snprintf(path, sizeof path, "/v1/alerts/%s", key);
    cr_assert_eq(http(port, "GET", path, TOKEN_A, NULL, &out), 200, "%s", out);
    json_t *j = json_loads(out, 0, NULL);
    cr_assert_not_null(j, "%s", out);
    free(out);
    buf[0] = '\0';
    size_t i;
    json_t *t;
    json_array_foreach(json_object_get(j, "transitions"), i, t) {
        size_t n = strlen(buf);
        snprintf(buf + n, len - n, "%s%s", i ? "|" : "",
                 json_string_value(json_object_get(t, "cause")));
    }
    json_decref(j);
}

Test(cause, an_event_post_names_the_key_a_wake_up_the_clock, .timeout = 60)
{
    server s = {0};
    char cfg[1024], hex[65], key[128], causes[512], *out;
    unsigned char h[crypto_hash_sha256_BYTES];
    cr_assert_geq(sodium_init(), 0);
    crypto_hash_sha256(h, (const unsigned char *)KEY_EHR, strlen(KEY_EHR));
    sodium_bin2hex(hex, sizeof hex, h, sizeof h);
    server_setup(&s, fast_protocol, fast_protocol);
    snprintf(cfg, sizeof cfg,
             "{ \"listen\": \"127.0.0.1:0\", \"clinics\": { \"north\": { \"protocols\": \"a\","
             " \"tokens\": [\"" TOKEN_A "\"], \"api_keys\": [ {\"name\": \"ehr-feed\", \"role\":"
             " \"integration\", \"sha256\": \"%s\"} ] } } }\n",
             hex);
    rg_test_write(s.dir, "config.json", cfg);
    server_start(&s);

    /* overdue at once: the key's post opens it */
    char *ev = ping("north", "e1", "p1", now_ms() - 5000, "ping");
    cr_assert_eq(http(s.port, "POST", "/v1/events", KEY_EHR, ev, &out), 200, "%s", out);
    free(out);
    free(ev);
    cr_assert(alert_of(s.port, "p1", key, 10000));
    causes_of(s.port, key, causes, sizeof causes);
    cr_assert_str_eq(causes, "key ehr-feed (integration)");
    /* the token's pong resolves it */
    ev = ping("north", "e2", "p1", now_ms(), "pong");
    cr_assert_eq(http(s.port, "POST", "/v1/events", TOKEN_A, ev, &out), 200, "%s", out);
    free(out);
    free(ev);
    causes_of(s.port, key, causes, sizeof causes);
    cr_assert_str_eq(causes, "key ehr-feed (integration)|clinic token");
    char path[256];
    snprintf(path, sizeof path, "/v1/alerts/%s/explain", key);
    cr_assert_eq(http(s.port, "GET", path, TOKEN_A, NULL, &out), 200, "%s", out);
    cr_assert(strstr(out, "caused by: key ehr-feed (integration)") &&
                  strstr(out, "caused by: clinic token"),
              "%s", out);
    free(out);

    /* due in 2 s: the wake-up opens it */
    ev = ping("north", "e3", "p2", now_ms(), "ping");
    cr_assert_eq(http(s.port, "POST", "/v1/events", KEY_EHR, ev, &out), 200, "%s", out);
    free(out);
    free(ev);
    cr_assert(alert_of(s.port, "p2", key, 10000));
    causes_of(s.port, key, causes, sizeof causes);
    cr_assert_str_eq(causes, "clock");
    cr_assert_eq(server_stop(&s, SIGTERM), 0);
    rg_test_rmdir(s.dir);
}

/* Rows from before schema 13 (transitions.cause NULL, as the migration that
 * added the column leaves them) read as unknown. */
Test(cause, rows_from_before_schema_13_read_as_unknown, .timeout = 30)
{
    char dir[256], db[512], err[512];
    rg_test_tmpdir(dir);
    snprintf(db, sizeof db, "%s/old.db", dir);
    rg_store *st;
    rg_store_opts so = {0};
    cr_assert_eq(rg_store_open(&st, db, &so, err, sizeof err), RG_OK, "%s", err);
    rg_transition t = {.at = 1000, .due = 1000, .open = 1, .clinic = "north", .patient = "p1",
                       .key = "k-old", .protocol = "fast", .version = "1.0",
                       .rule = "fast.ping-overdue", .severity = "warning", .message = "no pong",
                       .cause = "someone"};
    int64_t id = 0;
    cr_assert_eq(rg_store_begin(st), RG_OK);
    cr_assert_eq(rg_store_transition(st, &t, &id), RG_OK);
    cr_assert_eq(rg_store_commit(st), RG_OK);
    rg_store_close(st);
    sqlite3 *raw;
    cr_assert_eq(sqlite3_open(db, &raw), SQLITE_OK);
    /* (what migration 13 leaves in the rows it found: no cause; the chain of
     * migrations itself is tested from real old files in test_store.c) */
    cr_assert_eq(sqlite3_exec(raw, "UPDATE transitions SET cause = NULL;", NULL, NULL, NULL),
                 SQLITE_OK, "%s", sqlite3_errmsg(raw));
    sqlite3_close(raw);
    char *out, *e;
    const char *args[] = {"explain", "k-old", "--db", db, NULL};
    cr_assert_eq(rg_test_run(args, NULL, &out, &e), 0, "%s", e);
    cr_assert(strstr(out, "caused by: unknown"), "%s", out);
    free(out);
    free(e);
    cr_assert_eq(count_rows(db, "PRAGMA user_version"), RG_SCHEMA_VERSION);
    rg_test_rmdir(dir);
}
