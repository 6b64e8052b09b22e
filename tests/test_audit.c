/*
 * test_audit.c - the audit trail end to end: the real `regimen serve` on
 * loopback records every read and change of patient data (posts, alerts,
 * explain, timeline, the stream, acks) with clinic, patient, identity,
 * address, route and outcome; GET /v1/audit reads the token's clinic's;
 * `regimen audit verify` passes on the trail as written and fails, naming
 * the entry, once a row is deleted or edited with sqlite3; `regimen audit
 * show` filters by patient and user.
 */
#define RG_TEST_SERVE
#include "helpers.h"
#include "core/digest.h"

#define AUDITOR_A "north-auditor-key-0123456789abcdef"
#define AUDITOR_B "south-auditor-key-0123456789abcdef"

#include "core/rg.h"

static int run(char **out, const char *a0, const char *a1, const char *a2, const char *a3,
               const char *a4, const char *a5)
{
    const char *args[] = {a0, a1, a2, a3, a4, a5, NULL};
    char *err = NULL;
    int rc = rg_test_run(args, NULL, out, &err);
    if (rc == 2)
        fprintf(stderr, "%s", err);
    free(err);
    return rc;
}

static void sql(const char *db, const char *text)
{
    sqlite3 *h;
    cr_assert_eq(sqlite3_open(db, &h), SQLITE_OK);
    cr_assert_eq(sqlite3_exec(h, text, NULL, NULL, NULL), SQLITE_OK, "%s", sqlite3_errmsg(h));
    sqlite3_close(h);
}

/* The alert key in a GET /v1/alerts answer. */
static void first_key(const char *alerts, char key[64])
{
    const char *k = strstr(alerts, "\"key\":\"");
    cr_assert_not_null(k, "%s", alerts);
    snprintf(key, 64, "%.*s", (int)strcspn(k + 7, "\""), k + 7);
}

Test(audit, reads_and_changes_are_recorded_and_a_deleted_or_edited_row_is_found,
     .timeout = 60)
{
    server s = {0};
    char *out, key[64], path[160];
    server_setup(&s, fast_protocol, fast_protocol);
    /* each clinic has an auditor's key besides its (legacy) token: the trail
     * is the auditor's to read */
    char cfg[2048], ha[RG_SHA256_HEX + 1], hb[RG_SHA256_HEX + 1];
    rg_sha256_hex(AUDITOR_A, strlen(AUDITOR_A), ha);
    rg_sha256_hex(AUDITOR_B, strlen(AUDITOR_B), hb);
    snprintf(cfg, sizeof cfg,
             "{ \"listen\": \"127.0.0.1:0\", \"clinics\": {\n"
             "  \"north\": { \"protocols\": \"a\", \"tokens\": [\"" TOKEN_A "\"],\n"
             "    \"api_keys\": [ { \"name\": \"audit-n\", \"role\": \"auditor\", \"sha256\": \"%s\" } ] },\n"
             "  \"south\": { \"protocols\": \"b\", \"tokens\": [\"" TOKEN_B "\"],\n"
             "    \"api_keys\": [ { \"name\": \"audit-s\", \"role\": \"auditor\", \"sha256\": \"%s\" } ] } } }\n",
             ha, hb);
    rg_test_write(s.dir, "config.json", cfg);
    server_start(&s);
    char *ev = ping("north", "a1", "pat-7", now_ms() - 5000, "ping"); /* overdue at once */
    cr_assert_eq(http(s.port, "POST", "/v1/events", TOKEN_A, ev, &out), 200, "%s", out);
    free(out);
    free(ev);
    ev = ping("south", "b1", "pat-9", now_ms(), "ping");
    cr_assert_eq(http(s.port, "POST", "/v1/events", TOKEN_B, ev, &out), 200, "%s", out);
    free(out);
    free(ev);
    cr_assert_eq(http(s.port, "GET", "/v1/alerts?patient=pat-7", TOKEN_A, NULL, &out), 200);
    first_key(out, key);
    free(out);
    cr_assert_eq(http(s.port, "GET", "/v1/alerts", TOKEN_A, NULL, &out), 200);
    free(out);
    snprintf(path, sizeof path, "/v1/alerts/%s/explain", key);
    cr_assert_eq(http(s.port, "GET", path, TOKEN_A, NULL, &out), 200, "%s", out);
    free(out);
    cr_assert_eq(http(s.port, "GET", "/v1/patients/pat-7/timeline", TOKEN_A, NULL, &out), 200);
    free(out);
    snprintf(path, sizeof path, "/v1/alerts/%s/ack", key);
    cr_assert_eq(http(s.port, "POST", path, TOKEN_A, "{\"who\":\"ann\",\"note\":\"seen\"}", &out),
                 200, "%s", out);
    free(out);
    stream st;
    stream_open(&st, s.port, TOKEN_A, NULL);
    cr_assert_neq(stream_wait(&st, "text/event-stream", 2000), -1, "%s", st.buf);
    close(st.fd);
    /* another clinic's data is not there for a clinic's token */
    cr_assert_eq(http(s.port, "GET", "/v1/patients/pat-9/timeline", TOKEN_A, NULL, &out), 404);
    free(out);

    /* over HTTP: the token's clinic's entries, filtered by patient; the
     * entries waiting for a group commit are stored before the read, so it
     * sees them */
    cr_assert_eq(http(s.port, "GET", "/v1/audit?patient=pat-7", TOKEN_A, NULL, &out), 403,
                 "a clinic token is no auditor");
    free(out);
    cr_assert_eq(http(s.port, "GET", "/v1/audit?patient=pat-7", AUDITOR_A, NULL, &out), 200);
    cr_assert(strstr(out, "\"route\":\"POST /v1/events\"") &&
                  strstr(out, "\"route\":\"GET /v1/alerts?patient=pat-7\"") &&
                  strstr(out, "/explain\"") && strstr(out, "\"route\":\"GET /v1/patients/pat-7/timeline\"") &&
                  strstr(out, "/ack\",\"outcome\":\"200\"") &&
                  strstr(out, "\"patients\":[\"pat-7\"],\"route\":\"GET /v1/alerts\""),
              "an unfiltered list names the patients it showed: %s", out);
    cr_assert(strstr(out, "\"clinic\":\"north\"") && strstr(out, "\"patients\":[\"pat-7\"]") &&
                  strstr(out, "\"address\":\"127.0.0.1:") && strstr(out, "\"who\":\"token:"),
              "%s", out);
    cr_assert_null(strstr(out, "pat-9"), "south's entries are not north's: %s", out);
    cr_assert_null(strstr(out, TOKEN_A), "the token itself is never kept");
    free(out);
    cr_assert_eq(http(s.port, "GET", "/v1/audit?patient=pat-9", AUDITOR_B, NULL, &out), 200);
    cr_assert(strstr(out, "\"clinic\":\"south\"") && !strstr(out, "\"clinic\":\"north\""), "%s",
              out);
    free(out);
    cr_assert_eq(http(s.port, "GET", "/v1/audit?since=yesterday", AUDITOR_A, NULL, &out), 400);
    free(out);
    cr_assert_eq(server_stop(&s, SIGTERM), 0);

    /* the command line: whole, then filtered */
    cr_assert_eq(run(&out, "audit", "verify", "--db", s.db, NULL, NULL), 0, "%s", out);
    cr_assert(strstr(out, "audit trail verified"), "%s", out);
    free(out);
    cr_assert_eq(run(&out, "audit", "show", "--patient", "pat-7", "--db", s.db), 0);
    cr_assert(strstr(out, "GET /v1/patients/pat-7/timeline") && strstr(out, "/explain") &&
                  strstr(out, "GET /v1/transitions/stream") == NULL,
              "%s", out);
    cr_assert(strstr(out, "\tnorth\t"), "%s", out);
    free(out);
    cr_assert_eq(run(&out, "audit", "show", "--db", s.db, NULL, NULL), 0);
    cr_assert(strstr(out, "GET /v1/transitions/stream\t200") &&
                  strstr(out, "GET /v1/patients/pat-9/timeline\t404"),
              "the stream opened and the refusal are there too:\n%s", out);
    free(out);
    cr_assert_eq(run(&out, "audit", "show", "--user", "token:nobody", "--db", s.db), 0);
    cr_assert_str_empty(out);
    free(out);

    /* an entry edited in place: found at that entry */
    sql(s.db, "UPDATE audit SET patients = '[\"someone-else\"]' WHERE seq = 3");
    cr_assert_eq(run(&out, "audit", "verify", "--db", s.db, NULL, NULL), 1, "%s", out);
    cr_assert(strstr(out, "BROKEN at entry 3") && strstr(out, "changed"), "%s", out);
    free(out);
    /* its hash recomputed by whoever edited it: the next entry no longer follows */
    sql(s.db, "UPDATE audit SET hash = 'f00d' WHERE seq = 3");
    cr_assert_eq(run(&out, "audit", "verify", "--db", s.db, NULL, NULL), 1, "%s", out);
    cr_assert(strstr(out, "BROKEN at entry 3"), "%s", out);
    free(out);
    sql(s.db, "DELETE FROM audit WHERE seq = 3");
    cr_assert_eq(run(&out, "audit", "verify", "--db", s.db, NULL, NULL), 1, "%s", out);
    cr_assert(strstr(out, "BROKEN at entry 3: entry 3 is missing"), "%s", out);
    free(out);
    rg_test_rmdir(s.dir);
}

Test(audit, a_deleted_last_entry_is_found_and_usage_errors_exit_2)
{
    server s = {0};
    char *out;
    server_setup(&s, fast_protocol, fast_protocol);
    server_start(&s);
    cr_assert_eq(http(s.port, "GET", "/v1/alerts", TOKEN_A, NULL, &out), 200);
    free(out);
    cr_assert_eq(http(s.port, "GET", "/v1/alerts", TOKEN_B, NULL, &out), 200);
    free(out);
    cr_assert_eq(server_stop(&s, SIGTERM), 0);
    cr_assert_eq(count_rows(s.db, "SELECT count(*) FROM audit"), 2);
    sql(s.db, "DELETE FROM audit WHERE seq = 2");
    cr_assert_eq(run(&out, "audit", "verify", "--db", s.db, NULL, NULL), 1, "%s", out);
    cr_assert(strstr(out, "entry 2 is missing: the chain's tip is entry 2"), "%s", out);
    free(out);
    cr_assert_eq(run(&out, "audit", "frobnicate", NULL, NULL, NULL, NULL), 2);
    free(out);
    cr_assert_eq(run(&out, "audit", "verify", "--db", "/nonexistent/x.db", NULL, NULL), 2);
    free(out);
    cr_assert_eq(run(&out, "audit", "show", "--since", "soon", "--db", s.db), 2);
    free(out);
    rg_test_rmdir(s.dir);
}

/* audit.retention_days: the entries older than that are archived a second
 * after start (and hourly), and the chain still verifies from the hash of
 * the last one archived. (Backdating entries breaks their hashes: only
 * archiving them makes the trail whole again.) */
Test(audit, retention_archives_old_entries_and_the_chain_still_verifies, .timeout = 60)
{
    server s = {0};
    char *out;
    server_setup(&s, fast_protocol, fast_protocol);
    server_start(&s);
    for (int i = 0; i < 3; i++) {
        cr_assert_eq(http(s.port, "GET", "/v1/alerts", TOKEN_A, NULL, &out), 200);
        free(out);
    }
    cr_assert_eq(server_stop(&s, SIGTERM), 0);
    sql(s.db, "UPDATE audit SET at = at - 3 * 86400000 WHERE seq <= 2");
    cr_assert_eq(run(&out, "audit", "verify", "--db", s.db, NULL, NULL), 1, "%s", out);
    free(out);
    char *cfg = rg_test_read(s.config);
    char *brace = strrchr(cfg, '}');
    *brace = '\0';
    char with[4096];
    snprintf(with, sizeof with, "%s, \"audit\": { \"retention_days\": 2 } }\n", cfg);
    free(cfg);
    rg_test_write(s.dir, "config.json", with);
    server_start(&s);
    char *log = NULL;
    for (int i = 0; i < 50; i++) {
        free(log);
        log = rg_test_read(s.log);
        if (strstr(log, "archived"))
            break;
        usleep(100000);
    }
    cr_assert(strstr(log, "audit: 2 entries older than 2 days archived"), "%s", log);
    free(log);
    cr_assert_eq(server_stop(&s, SIGTERM), 0);
    cr_assert_eq(run(&out, "audit", "verify", "--db", s.db, NULL, NULL), 0, "%s", out);
    cr_assert(strstr(out, "entries 1 to 2 archived"), "%s", out);
    free(out);
    cr_assert_eq(count_rows(s.db, "SELECT min(seq) FROM audit"), 3);
    rg_test_rmdir(s.dir);
}
