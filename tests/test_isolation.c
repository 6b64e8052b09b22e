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

#include "core/rg.h"
#include "store/store.h"

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
    /* the operator's explain over the whole store: each clinic on its own */
    char *err;
    const char *ex[] = {"explain", ka, "--db", s.db, NULL};
    cr_assert_eq(rg_test_run(ex, NULL, &out, &err), 0, "%s", err);
    const char *n = strstr(out, "clinic north, patient north-patient");
    const char *so = strstr(out, "clinic south, patient south-secret-patient");
    cr_assert(n && so && n < so, "%s", out);
    cr_assert_eq(count_of(out, "\nalert "), 1, "two explanations:\n%s", out);
    free(out);
    free(err);
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
    cr_assert_eq(count_rows(s.db, "SELECT count(*) FROM events WHERE length(digest) = 16"), 1,
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

/* South's protocol: an id and version that need escaping as label values. */
static const char quoted_protocol[] =
    "local R = require 'regimen'\n"
    "return R.protocol { id = 'south-only', version = '2 \"beta\" \\\\ x',\n"
    "  rules = { { id = 's.quiet', severity = 'info', check = function(h, now, p)\n"
    "      return nil end } } }\n";

/* /metrics with north's token: north's series and the service's own,
 * nothing labelled with south (before: every clinic's); label values
 * escaped as the text format wants (south's token shows its version). */
Test(isolation, metrics_show_a_clinic_only_its_own_series, .timeout = 30)
{
    server s = {0};
    char *out;
    server_setup(&s, fast_protocol, quoted_protocol);
    server_start(&s);
    post_overdue(&s, TOKEN_A, "north", "n-ev-1", "north-patient");
    post_overdue(&s, TOKEN_B, "south", "s-ev-1", "south-patient");
    char key[80];
    open_key(&s, TOKEN_A, key, sizeof key);
    cr_assert_eq(http(s.port, "GET", "/metrics", TOKEN_A, NULL, &out), 200, "%s", out);
    cr_assert(strstr(out, "regimen_events_total{clinic=\"north\",outcome=\"stored\"} 1"), "%s", out);
    cr_assert(strstr(out, "regimen_open_alerts{clinic=\"north\",severity=\"warning\"} 1"), "%s",
              out);
    cr_assert(strstr(out, "regimen_http_requests_total"), "the service's own series: %s", out);
    cr_assert_null(strstr(out, "south"), "south's series shown to north:\n%s", out);
    free(out);
    cr_assert_eq(http(s.port, "GET", "/metrics", TOKEN_B, NULL, &out), 200, "%s", out);
    cr_assert(strstr(out, "regimen_events_total{clinic=\"south\",outcome=\"stored\"} 1"), "%s", out);
    cr_assert(strstr(out, "protocol=\"south-only\",version=\"2 \\\"beta\\\" \\\\ x\"}"),
              "label escaped:\n%s", out);
    cr_assert_null(strstr(out, "north"), "north's series shown to south:\n%s", out);
    free(out);
    cr_assert_eq(server_stop(&s, SIGTERM), 0);
    rg_test_rmdir(s.dir);
}

/* One token configured for two clinics: serve refuses to start (exit 2),
 * one line that names both clinics and not the token. */
Test(isolation, a_token_shared_by_two_clinics_is_refused_at_start, .timeout = 15)
{
    char dir[256], config[512], *out, *err;
    rg_test_tmpdir(dir);
    rg_test_write(dir, "a/p.lua", fast_protocol);
    rg_test_write(dir, "config.json",
                  "{ \"listen\": \"127.0.0.1:0\", \"clinics\": {\n"
                  "  \"north\": { \"protocols\": \"a\", \"tokens\": [\"own-north-token-0123456789\","
                  " \"shared-secret-token-0123456789\"] },\n"
                  "  \"west\": { \"protocols\": \"a\", \"tokens\": [\"own-west-token-0123456789\"] },\n"
                  "  \"south\": { \"protocols\": \"a\", \"tokens\": [\"shared-secret-token-0123456789\"] }"
                  " } }\n");
    snprintf(config, sizeof config, "%s/config.json", dir);
    char db[512];
    snprintf(db, sizeof db, "%s/serve.db", dir);
    const char *args[] = {"serve", "--config", config, "--db", db, NULL};
    cr_assert_eq(rg_test_run(args, NULL, &out, &err), 2, "%s%s", out, err);
    cr_assert(strstr(err, "clinics.north and clinics.south"), "%s", err);
    cr_assert(strstr(err, "same API token"), "%s", err);
    cr_assert_null(strstr(err, "shared-secret"), "the token is never printed: %s", err);
    cr_assert_null(strstr(err, "west"), "%s", err);
    cr_assert_eq(strchr(err, '\n'), err + strlen(err) - 1, "one line: %s", err);
    free(out);
    free(err);
    rg_test_rmdir(dir);
}

/* A byte of a stored event's body changed behind the program's back
 * (sqlite3 here): explain says so beside the event, and `regimen verify`
 * names it (clinic, id, seq) and exits 1; untouched, it exits 0. */
Test(isolation, a_changed_event_body_is_reported_by_verify_and_explain, .timeout = 30)
{
    server s = {0};
    char *out, *err, key[80], path[160];
    server_setup(&s, fast_protocol, fast_protocol);
    server_start(&s);
    post_overdue(&s, TOKEN_A, "north", "n-ev-1", "north-patient");
    open_key(&s, TOKEN_A, key, sizeof key);
    const char *verify[] = {"verify", "--db", s.db, NULL};
    cr_assert_eq(rg_test_run(verify, NULL, &out, &err), 0, "%s%s", out, err);
    cr_assert(strstr(out, "1 event version checked: all intact"), "%s", out);
    free(out);
    free(err);
    snprintf(path, sizeof path, "/v1/alerts/%s/explain", key);
    cr_assert_eq(http(s.port, "GET", path, TOKEN_A, NULL, &out), 200, "%s", out);
    cr_assert_null(strstr(out, "DAMAGED"), "%s", out);
    free(out);

    /* one byte of the body: the ping becomes a pong (the type is kept once,
     * in its column, since v17: the body's head is what the columns say) */
    exec_sql(s.db, "UPDATE events SET type = 'pong' WHERE id = 'n-ev-1'");
    cr_assert_eq(http(s.port, "GET", path, TOKEN_A, NULL, &out), 200, "%s", out);
    cr_assert(strstr(out, "DAMAGED: event n-ev-1, seq 1 (version 1): its body does not match "
                          "its digest"), "%s", out);
    free(out);
    cr_assert_eq(server_stop(&s, SIGTERM), 0);
    cr_assert_eq(rg_test_run(verify, NULL, &out, &err), 1, "%s%s", out, err);
    cr_assert(strstr(out, "damaged: event clinic north, id n-ev-1, seq 1 (version 1): its body "
                          "does not match its digest"), "%s", out);
    cr_assert(strstr(out, "1 event version checked: 1 damaged"), "%s", out);
    free(out);
    free(err);
    /* another column changed: the body it gives back is not the one
     * received (a body kept whole against a changed column is told as "its
     * column ... does not say what its body says": test_store_conformance.c) */
    exec_sql(s.db, "UPDATE events SET type = 'ping', patient = 'someone-else'"
                   " WHERE id = 'n-ev-1'");
    cr_assert_eq(rg_test_run(verify, NULL, &out, &err), 1, "%s%s", out, err);
    cr_assert(strstr(out, "id n-ev-1, seq 1 (version 1): its body does not match its digest"),
              "%s", out);
    free(out);
    free(err);
    rg_test_rmdir(s.dir);
}

/* A protocol's message with CR, LF and a terminal escape: the text table
 * and explain show them escaped, never raw (a forged line, a cleared
 * screen); the JSON keeps the message as it is, JSON-escaped. */
Test(isolation, control_characters_are_escaped_in_the_text_table_and_explain)
{
    char dir[256], events[512], protos[512], *out, *err;
    rg_test_tmpdir(dir);
    rg_test_write(dir, "p/p.lua",
                  "local R = require 'regimen'\n"
                  "return R.protocol { id = 'forge', version = '1',\n"
                  "  rules = { { id = 'forge.line', severity = 'info', check = function(h, now, p)\n"
                  "      if h:last('ping') then return R.alert { message =\n"
                  "        'real\\r\\n2026-03-01T00:00:00Z     open      north       p-forged\\27[2J'\n"
                  "        .. ' \\194\\155' .. '31m' }\n"
                  "      end end } } }\n");
    rg_test_write(dir, "events.jsonl",
                  "{\"id\":\"e1\",\"clinic\":\"north\",\"patient\":\"p1\",\"type\":\"ping\","
                  "\"at\":\"2026-03-01T09:00:00Z\"}\n");
    snprintf(events, sizeof events, "%s/events.jsonl", dir);
    snprintf(protos, sizeof protos, "north=%s/p", dir);
    const char *text[] = {"simulate", "--events", events, "--until", "2026-03-02T00:00:00Z",
                          "--clinic", protos, NULL};
    cr_assert_eq(rg_test_run(text, NULL, &out, &err), 0, "%s", err);
    cr_assert(strstr(out, "real\\r\\n2026-03-01T00:00:00Z     open      north       p-forged"
                          "\\x1b[2J"), "%s", out);
    cr_assert_null(strchr(out, '\r'), "%s", out);
    cr_assert_null(strchr(out, '\x1b'), "%s", out);
    cr_assert(strstr(out, " \\u009b31m"), "a C1 control (CSI) escaped too: %s", out);
    cr_assert_null(strstr(out, "\xc2\x9b"), "%s", out);
    cr_assert_eq(count_of(out, "\n"), 2, "a header and one line:\n%s", out);
    free(out);
    free(err);
    const char *jsonl[] = {"simulate", "--events", events, "--until", "2026-03-02T00:00:00Z",
                           "--clinic", protos, "--format", "jsonl", NULL};
    cr_assert_eq(rg_test_run(jsonl, NULL, &out, &err), 0, "%s", err);
    cr_assert(strstr(out, "\"message\":\"real\\r\\n2026-03-01T00:00:00Z"), "%s", out);
    const char *k = strstr(out, "\"key\":\"");
    cr_assert_not_null(k);
    char key[40];
    snprintf(key, sizeof key, "%.*s", (int)strcspn(k + 7, "\""), k + 7);
    free(out);
    free(err);
    const char *ex[] = {"explain", key, "--events", events, "--until", "2026-03-02T00:00:00Z",
                        "--clinic", protos, NULL};
    cr_assert_eq(rg_test_run(ex, NULL, &out, &err), 0, "%s", err);
    cr_assert(strstr(out, "\"real\\r\\n2026-03-01T00:00:00Z     open      north       p-forged"
                          "\\x1b[2J \\u009b31m\""), "%s", out);
    cr_assert_null(strstr(out, "\xc2\x9b"), "%s", out);
    cr_assert_null(strchr(out, '\r'), "%s", out);
    cr_assert_null(strchr(out, '\x1b'), "%s", out);
    free(out);
    free(err);
    rg_test_rmdir(dir);
}
