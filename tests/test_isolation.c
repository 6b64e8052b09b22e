/*
 * test_isolation.c - one clinic cannot read or bend another's record,
 * through the real `regimen serve` (helpers.h starts it on a free loopback
 * port with clinics north, token A, and south, token B): explain and the
 * reads by key are scoped to the caller's clinic even when two clinics hold
 * the same key text, /metrics shows a clinic only its own series, and one
 * token configured for two clinics is refused at start.
 */
#define RG_TEST_SERVE
#include "helpers.h"

#include "rg.h"
#include "store.h"

#include <sqlite3.h>

/* An overdue ping: the alert opens with the POST (its due time has passed). */
static void post_overdue(const server *s, const char *token, const char *clinic, const char *id,
                         const char *patient)
{
    char *out, *ev = ping(clinic, id, patient, now_ms() - 60000, "ping");
    cr_assert_eq(http(s->port, "POST", "/v1/events", token, ev, &out), 200, "%s", out);
    cr_assert(strstr(out, "\"status\":\"stored\""), "%s", out);
    free(out);
    free(ev);
}

/* The key of the caller's only open alert, waited for. */
static void open_key(const server *s, const char *token, char *key, size_t len)
{
    for (int i = 0; i < 300; i++) {
        char *out;
        cr_assert_eq(http(s->port, "GET", "/v1/alerts?state=open", token, NULL, &out), 200);
        const char *k = strstr(out, "\"key\":\"");
        if (k) {
            k += 7;
            snprintf(key, len, "%.*s", (int)strcspn(k, "\""), k);
            free(out);
            return;
        }
        free(out);
        usleep(20000);
    }
    cr_assert_fail("no alert opened");
}

static void exec_sql(const char *db, const char *sql)
{
    sqlite3 *h;
    char *msg = NULL;
    cr_assert_eq(sqlite3_open_v2(db, &h, SQLITE_OPEN_READWRITE, NULL), SQLITE_OK);
    sqlite3_busy_timeout(h, 5000);
    cr_assert_eq(sqlite3_exec(h, sql, NULL, NULL, &msg), SQLITE_OK, "%s: %s", sql, msg);
    sqlite3_close(h);
}

/* A key of clinic south asked for with north's token: 404 and nothing of
 * south in the answer; and when south's alert carries the very key text of
 * north's (a forged or colliding key: the transition rewritten here), north's
 * explain shows north's alert only. Before, the route checked only that north
 * had some alert with that key and then printed every clinic's transitions. */
Test(isolation, explain_by_a_forged_key_reads_only_the_callers_clinic, .timeout = 30)
{
    server s = {0};
    char *out, ka[80], kb[80], path[160], sql[512];
    server_setup(&s, fast_protocol, fast_protocol);
    server_start(&s);
    post_overdue(&s, TOKEN_A, "north", "n-ev-1", "north-patient");
    post_overdue(&s, TOKEN_B, "south", "s-ev-1", "south-secret-patient");
    open_key(&s, TOKEN_A, ka, sizeof ka);
    open_key(&s, TOKEN_B, kb, sizeof kb);
    cr_assert_str_neq(ka, kb);

    /* south's key, north's token */
    snprintf(path, sizeof path, "/v1/alerts/%s/explain", kb);
    cr_assert_eq(http(s.port, "GET", path, TOKEN_A, NULL, &out), 404, "%s", out);
    cr_assert_null(strstr(out, "south"), "%s", out);
    cr_assert_null(strstr(out, "s-ev-1"), "%s", out);
    free(out);
    snprintf(path, sizeof path, "/v1/alerts/%s", kb);
    cr_assert_eq(http(s.port, "GET", path, TOKEN_A, NULL, &out), 404, "%s", out);
    free(out);

    /* south's alert now under north's key text */
    snprintf(sql, sizeof sql, "UPDATE transitions SET key = '%s' WHERE clinic = 'south'", ka);
    exec_sql(s.db, sql);
    snprintf(path, sizeof path, "/v1/alerts/%s/explain", ka);
    cr_assert_eq(http(s.port, "GET", path, TOKEN_A, NULL, &out), 200, "%s", out);
    cr_assert(strstr(out, "north-patient") && strstr(out, "n-ev-1"), "%s", out);
    cr_assert_null(strstr(out, "south"), "south leaked into north's explain:\n%s", out);
    cr_assert_null(strstr(out, "s-ev-1"), "%s", out);
    free(out);
    snprintf(path, sizeof path, "/v1/alerts/%s", ka);
    cr_assert_eq(http(s.port, "GET", path, TOKEN_A, NULL, &out), 200, "%s", out);
    cr_assert_null(strstr(out, "south"), "%s", out);
    free(out);
    /* and south, asking for the same text, sees its own */
    snprintf(path, sizeof path, "/v1/alerts/%s/explain", ka);
    cr_assert_eq(http(s.port, "GET", path, TOKEN_B, NULL, &out), 200, "%s", out);
    cr_assert(strstr(out, "south-secret-patient"), "%s", out);
    cr_assert_null(strstr(out, "north-patient"), "%s", out);
    free(out);
    cr_assert_eq(server_stop(&s, SIGTERM), 0);
    rg_test_rmdir(s.dir);
}

/* The feed of clinic north as text, waited for until it holds `want`. */
static char *feed_until(const server *s, const char *want)
{
    for (int i = 0; i < 300; i++) {
        char *out;
        cr_assert_eq(http(s->port, "GET", "/v1/transitions?after=0", TOKEN_A, NULL, &out), 200);
        if (strstr(out, want))
            return out;
        free(out);
        usleep(20000);
    }
    cr_assert_fail("the feed never showed %s", want);
    return NULL;
}

static int count_of(const char *text, const char *what)
{
    int n = 0;
    for (const char *p = text; (p = strstr(p, what)); p += strlen(what))
        n++;
    return n;
}

/* A store of schema 7 (tests/fixtures/v7_open_alert.sql, made by the
 * program before SHA-256 keys) with alert 251ef46df84491ef open: after the
 * upgrade the alert stays open under that key while its rule still returns
 * it (an event that changes nothing), resolves under it when the pong comes,
 * and GET and explain by the old key answer. Without the engine's match by
 * the old form of a key, the first evaluation would resolve it and open a
 * second alert under the new key. */
Test(isolation, an_alert_opened_under_an_old_key_keeps_it_after_the_upgrade, .timeout = 30)
{
    server s = {0};
    char *out, *fixture = rg_test_read("tests/fixtures/v7_open_alert.sql"), *msg = NULL;
    const char *old = "251ef46df84491ef";
    cr_assert_not_null(fixture, "run from the repository root");
    server_setup(&s, fast_protocol, fast_protocol);
    sqlite3 *h;
    cr_assert_eq(sqlite3_open(s.db, &h), SQLITE_OK);
    cr_assert_eq(sqlite3_exec(h, fixture, NULL, NULL, &msg), SQLITE_OK, "%s", msg);
    sqlite3_close(h);
    free(fixture);
    server_start(&s);
    cr_assert_eq(count_rows(s.db, "PRAGMA user_version"), RG_SCHEMA_VERSION);
    cr_assert_eq(count_rows(s.db, "SELECT count(*) FROM events WHERE length(digest) = 64"), 1,
                 "the upgrade gave the stored event its digest");

    char path[128];
    snprintf(path, sizeof path, "/v1/alerts/%s", old);
    cr_assert_eq(http(s.port, "GET", path, TOKEN_A, NULL, &out), 200, "%s", out);
    cr_assert(strstr(out, "\"state\":\"open\""), "%s", out);
    free(out);

    /* an event that changes nothing for the rule: the alert stays as it is */
    char *note = ping("north", "n1", "p1", now_ms(), "note");
    cr_assert_eq(http(s.port, "POST", "/v1/events", TOKEN_A, note, &out), 200, "%s", out);
    free(out);
    free(note);
    char *pong = ping("north", "e2", "p1", now_ms(), "pong");
    cr_assert_eq(http(s.port, "POST", "/v1/events", TOKEN_A, pong, &out), 200, "%s", out);
    free(out);
    free(pong);
    char *feed = feed_until(&s, "\"state\":\"resolved\"");
    cr_assert_eq(count_of(feed, "\"state\":"), 2, "one opening, one resolution:\n%s", feed);
    cr_assert_eq(count_of(feed, old), 2, "both under the old key:\n%s", feed);
    free(feed);

    cr_assert_eq(http(s.port, "GET", path, TOKEN_A, NULL, &out), 200, "%s", out);
    cr_assert(strstr(out, "\"state\":\"resolved\""), "%s", out);
    free(out);
    snprintf(path, sizeof path, "/v1/alerts/%s/explain", old);
    cr_assert_eq(http(s.port, "GET", path, TOKEN_A, NULL, &out), 200, "%s", out);
    cr_assert(strstr(out, "resolved") && strstr(out, "e1"), "%s", out);
    free(out);
    cr_assert_eq(server_stop(&s, SIGTERM), 0);
    rg_test_rmdir(s.dir);
}
