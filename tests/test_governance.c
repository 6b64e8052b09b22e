/*
 * test_governance.c - `regimen protocols` (docs/governance.md) through the
 * real binary: a proposal must pass the check with its scenario tests, the
 * proposer cannot approve, the diff shown at proposal is `regimen diff`'s
 * over the same history, activation and rollback move the version in force,
 * and list/show say so. The clinic is examples/clinics/north with its
 * timeline; run from the repository root (make test does).
 */
#include <criterion/criterion.h>

#define RG_TEST_SERVE
#include "helpers.h"

#include "core/rg.h"

#include <jansson.h>
#include <pthread.h>
#include <sodium.h>
#include <sqlite3.h>

#define TIMELINE "examples/clinics/north/timeline.jsonl"
#define UNTIL "2026-07-01T00:00:00Z"

/* north's clinic.lua with bp_systolic_max set to limit. */
static void clinic_dir(const char *root, const char *name, int limit)
{
    char *text = rg_test_read("examples/clinics/north/clinic.lua");
    char *at = strstr(text, "bp_systolic_max = 150");
    cr_assert_not_null(at, "north's clinic.lua no longer sets bp_systolic_max = 150");
    char num[8];
    snprintf(num, sizeof num, "%d", limit);
    memcpy(at + strlen("bp_systolic_max = "), num, 3);
    char path[512];
    snprintf(path, sizeof path, "%s/clinic.lua", name);
    rg_test_write(root, path, text);
    free(text);
}

typedef struct gov {
    char dir[256], db[300], path[3][320];
} gov;

/* A store with north's timeline, and three clinic directories: limit 150
 * (as shipped in the example), 130 and 145. */
static void gov_setup(gov *g)
{
    rg_test_tmpdir(g->dir);
    snprintf(g->db, sizeof g->db, "%s/g.db", g->dir);
    static const char *const names[] = {"v150", "v130", "v145"};
    static const int limits[] = {150, 130, 145};
    for (int i = 0; i < 3; i++) {
        clinic_dir(g->dir, names[i], limits[i]);
        snprintf(g->path[i], sizeof g->path[i], "%s/%s", g->dir, names[i]);
    }
    const char *args[] = {"ingest", "--db", g->db, TIMELINE, NULL};
    char *out, *err;
    cr_assert_eq(rg_test_run(args, NULL, &out, &err), 0, "ingest: %s", err);
    free(out);
    free(err);
}

/* Runs `regimen protocols CMD --db DB --clinic north` with more args; the
 * exit status, stdout and stderr. */
static int prot(const gov *g, const char *cmd, const char *const *more, char **out, char **err)
{
    const char *args[16] = {"protocols", cmd, "--db", g->db, "--clinic", "north"};
    int n = 6;
    for (int i = 0; more[i] && n < 15; i++)
        args[n++] = more[i];
    args[n] = NULL;
    return rg_test_run(args, NULL, out, err);
}

/* Proposes dir as by; returns the version id (malloc'd) and the rest of the
 * answer in *diff. */
static char *propose(const gov *g, const char *dir, const char *by, char **diff)
{
    char *out, *err;
    const char *more[] = {"--by", by, "-m", "a change", "--until", UNTIL, dir, NULL};
    int rc = prot(g, "propose", more, &out, &err);
    cr_assert_eq(rc, 0, "propose %s: exit %d: %s%s", dir, rc, out, err);
    cr_assert(!strncmp(out, "version ", 8), "the answer starts with the version: %s", out);
    char *nl = strchr(out, '\n');
    cr_assert_not_null(nl);
    *nl = '\0';
    char *id = strdup(out + 8);
    cr_assert_eq(strlen(id), 64, "a SHA-256 id: %s", id);
    if (diff)
        *diff = strdup(nl + 1);
    free(out);
    free(err);
    return id;
}

static int step(const gov *g, const char *cmd, const char *by, const char *id, char **err)
{
    char *out;
    const char *more[] = {"--by", by, id, NULL};
    int rc = prot(g, cmd, more, &out, err);
    free(out);
    return rc;
}

static char *list(const gov *g)
{
    char *out, *err;
    const char *more[] = {NULL};
    cr_assert_eq(prot(g, "list", more, &out, &err), 0, "list: %s", err);
    free(err);
    return out;
}

/* The line of list for id (its first 12 characters), copied. */
static char *list_line(const gov *g, const char *id)
{
    char *all = list(g), *line = NULL;
    for (char *l = all; l && *l; l = strchr(l, '\n') ? strchr(l, '\n') + 1 : NULL)
        if (!strncmp(l, id, 12)) {
            line = strndup(l, strcspn(l, "\n"));
            break;
        }
    cr_assert_not_null(line, "list has no line for %.12s:\n%s", id, all);
    free(all);
    return line;
}

Test(governance, failing_scenarios_refuse_the_proposal)
{
    gov g;
    gov_setup(&g);
    rg_test_write(g.path[1], "tests/never_test.lua",
                  "return {\n"
                  "  {\n"
                  "    name = 'an alert this clinic never opens',\n"
                  "    events = { { '2026-03-02T08:00:00Z', 'enrolled', { program = 'ketamine' } } },\n"
                  "    horizon = '2026-03-03T00:00:00Z',\n"
                  "    expect = { { '2026-03-02T08:00:00Z', 'open', 'safety.bp-high' } },\n"
                  "  },\n"
                  "}\n");
    char *out, *err;
    const char *more[] = {"--by", "alice", g.path[1], NULL};
    int rc = prot(&g, "propose", more, &out, &err);
    cr_assert_eq(rc, 1, "a failing scenario refuses the proposal (exit 1), got %d: %s%s", rc, out,
                 err);
    cr_assert_not_null(strstr(err, "refused"), "%s", err);
    cr_assert_not_null(strstr(err, "1 scenario failed"), "the reason: %s", err);
    cr_assert_eq(strchr(err, '\n'), err + strlen(err) - 1, "one line: %s", err);
    free(out);
    free(err);
    char *l = list(&g);
    cr_assert_not_null(strstr(l, "no versions of clinic north"), "nothing stored: %s", l);
    free(l);
    rg_test_rmdir(g.dir);
}

Test(governance, four_eyes_and_the_diff_is_regimen_diff)
{
    gov g;
    gov_setup(&g);
    char *first_diff;
    char *v1 = propose(&g, g.path[0], "alice", &first_diff);
    cr_assert_not_null(strstr(first_diff, "no version of clinic north is active: compared "
                                          "with the shipped default"), "%s", first_diff);
    char *err, *out;
    /* with nothing active the old side is the shipped default, as simulate
     * runs a clinic without a directory */
    const char *vs_default[] = {"diff", "--events", TIMELINE, "--until", UNTIL,
                                "protocols/ketamine", g.path[0], NULL};
    cr_assert_eq(rg_test_run(vs_default, NULL, &out, &err), 1, "%s", err);
    cr_assert_str_eq(strchr(first_diff, '\n') + 1, out, "the first proposal's diff");
    free(out);
    free(err);
    cr_assert_eq(step(&g, "approve", "alice", v1, &err), 1, "the proposer cannot approve");
    cr_assert_not_null(strstr(err, "another person must approve"), "%s", err);
    free(err);
    cr_assert_eq(step(&g, "activate", "alice", v1, &err), 1, "not approved: not activated");
    free(err);
    char prefix[9];
    snprintf(prefix, sizeof prefix, "%.8s", v1);
    cr_assert_eq(step(&g, "approve", "bob", prefix, &err), 0, "bob approves: %s", err);
    free(err);
    cr_assert_eq(step(&g, "activate", "bob", v1, &err), 0, "%s", err);
    free(err);

    char *diff;
    char *v2 = propose(&g, g.path[1], "alice", &diff);
    const char *args[] = {"diff", "--events", TIMELINE, "--until", UNTIL, g.path[0], g.path[1],
                          NULL};
    cr_assert_eq(rg_test_run(args, NULL, &out, &err), 1, "regimen diff finds differences: %s",
                 err);
    cr_assert_str_eq(diff, out, "the proposal's diff is regimen diff's");
    cr_assert_not_null(strstr(diff, "by rule:\n  safety.bp-high            1 resolved only "
                                    "under OLD\n"), "per rule, with counts: %s", diff);
    free(out);
    free(err);

    /* the same files again are the same version */
    const char *again[] = {"--by", "carol", g.path[1], NULL};
    cr_assert_eq(prot(&g, "propose", again, &out, &err), 1, "%s", err);
    cr_assert_not_null(strstr(err, "already"), "%s", err);
    free(out);
    free(err);

    char *line = list_line(&g, v1);
    cr_assert(strstr(line, "active") && strstr(line, "alice") && strstr(line, "approved by bob"),
              "%s", line);
    free(line);
    line = list_line(&g, v2);
    cr_assert(strstr(line, "proposed") && strstr(line, "alice"), "%s", line);
    free(line);
    free(diff);
    free(first_diff);
    free(v1);
    free(v2);
    rg_test_rmdir(g.dir);
}

Test(governance, activate_and_roll_back)
{
    gov g;
    gov_setup(&g);
    char *err;
    char *v[3];
    for (int i = 0; i < 3; i++) {
        v[i] = propose(&g, g.path[i], "alice", NULL);
        cr_assert_eq(step(&g, "approve", "bob", v[i], &err), 0, "%s", err);
        free(err);
    }
    cr_assert_eq(step(&g, "rollback", "bob", v[0], &err), 1, "never active: no rollback to it");
    free(err);
    cr_assert_eq(step(&g, "activate", "bob", v[0], &err), 0, "%s", err);
    free(err);
    cr_assert_eq(step(&g, "activate", "bob", v[1], &err), 0, "%s", err);
    free(err);
    char *line = list_line(&g, v[0]);
    cr_assert_not_null(strstr(line, "superseded"), "%s", line);
    free(line);
    cr_assert_eq(step(&g, "rollback", "carol", v[0], &err), 0, "%s", err);
    free(err);
    line = list_line(&g, v[0]);
    cr_assert_not_null(strstr(line, "active"), "%s", line);
    free(line);
    line = list_line(&g, v[1]);
    cr_assert_not_null(strstr(line, "rolled back"), "%s", line);
    free(line);

    /* show: its files, its history, its diff against the active version */
    char *out;
    const char *more[] = {"--until", UNTIL, v[1], NULL};
    cr_assert_eq(prot(&g, "show", more, &out, &err), 0, "%s", err);
    cr_assert_not_null(strstr(out, "clinic/clinic.lua"), "%s", out);
    cr_assert_not_null(strstr(out, "shipped/ketamine/safety.lua"), "%s", out);
    const char *history[] = {"proposed        by alice", "approved        by bob",
                             "activated       by bob", NULL};
    for (int i = 0; history[i]; i++)
        cr_assert_not_null(strstr(out, history[i]), "history names '%s':\n%s", history[i], out);
    cr_assert_not_null(strstr(out, "1 difference"), "%s", out);
    free(out);
    free(err);
    const char *unknown[] = {"ffffffff", NULL};
    cr_assert_eq(prot(&g, "show", unknown, &out, &err), 1, "an unknown version is refused");
    cr_assert_not_null(strstr(err, "no version ffffffff"), "%s", err);
    free(out);
    free(err);
    for (int i = 0; i < 3; i++)
        free(v[i]);
    rg_test_rmdir(g.dir);
}

/* The open alerts (patient rule, sorted, one a line) of a JSON array of
 * alerts or of simulate's JSON Lines transitions. */
static char *open_set_alerts(const char *body)
{
    json_error_t je;
    json_t *root = json_loads(body, 0, &je), *a;
    cr_assert_not_null(root, "alerts: %s: %s", je.text, body);
    char *lines[256];
    int n = 0;
    size_t i;
    json_array_foreach(json_object_get(root, "alerts"), i, a) {
        cr_assert_lt(n, 256);
        cr_assert(asprintf(&lines[n++], "%s %s", json_string_value(json_object_get(a, "patient")),
                           json_string_value(json_object_get(a, "rule"))) > 0);
    }
    json_decref(root);
    qsort(lines, (size_t)n, sizeof *lines, rg_test_cmp_str);
    rg_buf b = {0};
    for (int k = 0; k < n; k++) {
        rg_buf_printf(&b, "%s\n", lines[k]);
        free(lines[k]);
    }
    return b.p ? b.p : strdup("");
}

static char *open_set_simulated(const char *dir)
{
    char until[40], spec[400], *out, *err;
    iso(now_ms(), until);
    snprintf(spec, sizeof spec, "north=%s", dir);
    const char *args[] = {"simulate", "--events", TIMELINE, "--until", until, "--clinic", spec,
                          "--format", "jsonl", NULL};
    cr_assert_eq(rg_test_run(args, NULL, &out, &err), 0, "simulate: %s", err);
    /* the last transition of each key says whether it is open */
    json_t *last = json_object();
    for (char *l = strtok(out, "\n"); l; l = strtok(NULL, "\n")) {
        json_t *t = json_loads(l, 0, NULL);
        cr_assert_not_null(t, "%s", l);
        const char *state = json_string_value(json_object_get(t, "state"));
        if (strcmp(state, "reraised"))
            json_object_set(last, json_string_value(json_object_get(t, "key")), t);
        json_decref(t);
    }
    json_t *alerts = json_array(), *t;
    const char *key;
    json_object_foreach(last, key, t)
        if (!strcmp(json_string_value(json_object_get(t, "state")), "open"))
            json_array_append(alerts, t);
    json_t *root = json_pack("{s:o}", "alerts", alerts);
    char *body = json_dumps(root, 0);
    char *set = open_set_alerts(body);
    free(body);
    json_decref(root);
    json_decref(last);
    free(out);
    free(err);
    return set;
}

/* Waits until the service's log says version id went live and its patients
 * were evaluated again after that. */
static void wait_in_force(const server *s, const char *id)
{
    char want[80];
    snprintf(want, sizeof want, "protocol version %.12s is in force", id);
    for (int i = 0; i < 1000; i++) {
        char *log = rg_test_read(s->log);
        const char *at = NULL;
        for (const char *p = log; (p = strstr(p, want)); p++)
            at = p;
        int done = at && strstr(at, "reload: ");
        free(log);
        if (done)
            return;
        usleep(10000);
    }
    cr_assert_fail("the service did not take up %.12s:\n%s", id, rg_test_read(s->log));
}

static char *service_open_set(const server *s)
{
    char *body;
    cr_assert_eq(http(s->port, "GET", "/v1/alerts?state=open&limit=500", TOKEN_A, NULL, &body),
                 200, "%s", body);
    char *set = open_set_alerts(body);
    free(body);
    return set;
}

/* "protocol_changes": "approval": the service runs what is activated in the
 * store, taken up at the CLI's notice; after each activation and rollback
 * its open alerts are a fresh evaluation's under the version in force
 * (simulate), and its feed has no gap. */
Test(governance, the_service_takes_up_activation_and_rollback, .timeout = 120)
{
    gov g;
    gov_setup(&g);
    server s;
    snprintf(s.dir, sizeof s.dir, "%s", g.dir);
    snprintf(s.db, sizeof s.db, "%s", g.db);
    snprintf(s.config, sizeof s.config, "%s/config.json", g.dir);
    snprintf(s.log, sizeof s.log, "%s/serve.log", g.dir);
    rg_test_write(g.dir, "config.json",
                  "{ \"listen\": \"127.0.0.1:0\", \"protocol_changes\": \"approval\",\n"
                  "  \"clinics\": { \"north\": { \"protocols\": \"v150\",\n"
                  "                            \"tokens\": [\"" TOKEN_A "\"] } } }\n");
    server_start(&s);
    char *err, *v[2];
    for (int i = 0; i < 2; i++) {
        v[i] = propose(&g, g.path[i], "alice", NULL);
        cr_assert_eq(step(&g, "approve", "bob", v[i], &err), 0, "%s", err);
        free(err);
    }
    const int order[] = {0, 1, 0}; /* activate 150, activate 130, roll back to 150 */
    for (int k = 0; k < 3; k++) {
        int i = order[k];
        cr_assert_eq(step(&g, k == 2 ? "rollback" : "activate", "carol", v[i], &err), 0, "%s",
                     err);
        free(err);
        wait_in_force(&s, v[i]);
        /* the clinic's patients are re-evaluated under it by the evaluation
         * threads after it is taken up: wait for that, then compare */
        char *want = open_set_simulated(g.path[i]), *got = service_open_set(&s);
        for (int t = 0; t < 200 && strcmp(got, want); t++) {
            usleep(50000);
            free(got);
            got = service_open_set(&s);
        }
        cr_assert_str_eq(got, want, "step %d: the service's open alerts are simulate's under "
                         "%s", k, g.path[i]);
        if (k == 1)
            cr_assert_not_null(strstr(got, "p-200 safety.bp-high"), "130 keeps it open: %s",
                               got);
        free(got);
        free(want);
        int n = count_rows(g.db, "SELECT count(*) FROM transitions WHERE clinic = 'north'");
        int top = count_rows(g.db, "SELECT max(cseq) FROM transitions WHERE clinic = 'north'");
        cr_assert_eq(n, top, "the feed 1..%d has no gap (%d transitions)", top, n);
    }
    cr_assert_eq(server_stop(&s, SIGTERM), 0);
    for (int i = 0; i < 2; i++)
        free(v[i]);
    rg_test_rmdir(g.dir);
}

/* The versions over HTTP: a prescriber approves (not the proposer), an
 * admin activates, a nurse can read but not activate; the service under
 * approval takes the activation up. Keys name who acts. */
Test(governance, http_approve_activate_list, .timeout = 120)
{
    gov g;
    gov_setup(&g);
    server s;
    snprintf(s.dir, sizeof s.dir, "%s", g.dir);
    snprintf(s.db, sizeof s.db, "%s", g.db);
    snprintf(s.config, sizeof s.config, "%s/config.json", g.dir);
    snprintf(s.log, sizeof s.log, "%s/serve.log", g.dir);
    char cfg[2048], h[3][65];
    const char *keys[3] = {"pat-key-0123456789abcdef", "adam-key-0123456789abcdef",
                           "ann-key-0123456789abcdef"};
    for (int i = 0; i < 3; i++) {
        unsigned char d[crypto_hash_sha256_BYTES];
        crypto_hash_sha256(d, (const unsigned char *)keys[i], strlen(keys[i]));
        sodium_bin2hex(h[i], 65, d, sizeof d);
    }
    snprintf(cfg, sizeof cfg,
             "{ \"listen\": \"127.0.0.1:0\", \"protocol_changes\": \"approval\",\n"
             "  \"clinics\": { \"north\": { \"protocols\": \"v150\", \"api_keys\": [\n"
             "    {\"name\": \"pat\", \"role\": \"prescriber\", \"sha256\": \"%s\"},\n"
             "    {\"name\": \"adam\", \"role\": \"admin\", \"sha256\": \"%s\"},\n"
             "    {\"name\": \"ann\", \"role\": \"nurse\", \"sha256\": \"%s\"} ] } } }\n",
             h[0], h[1], h[2]);
    rg_test_write(g.dir, "config.json", cfg);
    char *v1 = propose(&g, g.path[1], "pat", NULL);
    server_start(&s);
    char path[256], *body;
    snprintf(path, sizeof path, "/v1/protocols/versions/%.10s/approve", v1);
    cr_assert_eq(http(s.port, "POST", path, keys[0], NULL, &body), 409, "pat proposed: %s", body);
    cr_assert_not_null(strstr(body, "another person must approve"), "%s", body);
    free(body);
    cr_assert_eq(http(s.port, "POST", path, keys[2], NULL, &body), 403, "a nurse: %s", body);
    free(body);
    free(v1);
    /* proposed by someone else: pat approves */
    char *v2 = propose(&g, g.path[2], "alice", NULL);
    snprintf(path, sizeof path, "/v1/protocols/versions/%.10s/approve", v2);
    cr_assert_eq(http(s.port, "POST", path, keys[0], NULL, &body), 200, "%s", body);
    cr_assert_not_null(strstr(body, "approved by pat"), "%s", body);
    free(body);
    snprintf(path, sizeof path, "/v1/protocols/versions/%.10s/activate", v2);
    cr_assert_eq(http(s.port, "POST", path, keys[0], NULL, &body), 403, "a prescriber: %s",
                 body);
    free(body);
    cr_assert_eq(http(s.port, "POST", path, keys[1], "{\"at\": \"soon\"}", &body), 400, "%s",
                 body);
    free(body);
    cr_assert_eq(http(s.port, "POST", path, keys[1], NULL, &body), 200, "%s", body);
    cr_assert_not_null(strstr(body, "activated by adam"), "%s", body);
    free(body);
    cr_assert_eq(http(s.port, "POST", "/v1/protocols/versions/ffff/rollback", keys[1], NULL,
                      &body), 404, "%s", body);
    free(body);
    wait_in_force(&s, v2);
    cr_assert_eq(http(s.port, "GET", "/v1/protocols/versions", keys[2], NULL, &body), 200, "%s",
                 body);
    json_t *root = json_loads(body, 0, NULL);
    cr_assert_not_null(root, "%s", body);
    cr_assert_str_eq(json_string_value(json_object_get(root, "in_force")), v2, "%s", body);
    json_t *vs = json_object_get(root, "versions");
    cr_assert_eq(json_array_size(vs), 2, "%s", body);
    json_t *second = json_array_get(vs, 1);
    cr_assert_str_eq(json_string_value(json_object_get(second, "state")), "active");
    cr_assert_str_eq(json_string_value(json_object_get(second, "approved_by")), "pat");
    json_decref(root);
    free(body);
    cr_assert_eq(server_stop(&s, SIGTERM), 0);
    free(v2);
    rg_test_rmdir(g.dir);
}

/* ---- shadow: a real webhook receiver on loopback (helpers.h) that keeps the bodies ---- */

/* How many bodies the receiver got that hold every one of a and b. */
static int hook_seen(receiver *r, const char *a, const char *b)
{
    int k = 0, n = __atomic_load_n(&r->n, __ATOMIC_SEQ_CST);
    for (int i = 0; i < n && i < 64; i++)
        k += strstr(r->body[i], a) && strstr(r->body[i], b);
    return k;
}

/* An enrolment and a pre-infusion blood pressure of patient at ms. */
static void post_bp(const server *s, const char *patient, int systolic, int64_t ms, FILE *also)
{
    char at[40], ev[2][512], *body;
    iso(ms, at);
    snprintf(ev[0], sizeof ev[0], "{\"id\":\"%s-e\",\"clinic\":\"north\",\"patient\":\"%s\","
             "\"type\":\"enrolled\",\"at\":\"%s\",\"data\":{\"program\":\"ketamine\"}}",
             patient, patient, at);
    snprintf(ev[1], sizeof ev[1], "{\"id\":\"%s-v\",\"clinic\":\"north\",\"patient\":\"%s\","
             "\"type\":\"vitals\",\"at\":\"%s\",\"data\":{\"systolic\":%d,\"diastolic\":80,"
             "\"phase\":\"pre\"}}", patient, patient, at, systolic);
    for (int i = 0; i < 2; i++) {
        cr_assert_eq(http(s->port, "POST", "/v1/events", TOKEN_A, ev[i], &body), 200, "%s",
                     body);
        free(body);
        fprintf(also, "%s\n", ev[i]);
    }
}

/* The shadow's comparison as the service answers it. */
static json_t *shadow_get(const server *s)
{
    char *body;
    cr_assert_eq(http(s->port, "GET", "/v1/protocols/shadow", TOKEN_A, NULL, &body), 200, "%s",
                 body);
    json_t *root = json_loads(body, 0, NULL);
    cr_assert_not_null(root, "%s", body);
    free(body);
    return root;
}

/* "patient rule state at_ms" lines, sorted, of simulate's JSON Lines at or
 * after since. */
static char *simulated_since(const char *events, const char *dir, rg_time since)
{
    char until[40], spec[400], *out, *err;
    iso(now_ms(), until);
    snprintf(spec, sizeof spec, "north=%s", dir);
    const char *args[] = {"simulate", "--events", events, "--until", until, "--clinic", spec,
                          "--format", "jsonl", NULL};
    cr_assert_eq(rg_test_run(args, NULL, &out, &err), 0, "simulate: %s", err);
    char *lines[512];
    int n = 0;
    for (char *l = strtok(out, "\n"); l; l = strtok(NULL, "\n")) {
        json_t *t = json_loads(l, 0, NULL);
        cr_assert_not_null(t, "%s", l);
        const char *at = json_string_value(json_object_get(t, "at"));
        rg_time ms;
        char why[200];
        cr_assert_eq(rg_time_parse(at, strlen(at), &ms, NULL, why, sizeof why), 0, "%s", at);
        if (ms >= since) {
            cr_assert_lt(n, 512);
            cr_assert(asprintf(&lines[n++], "%s %s %s %lld",
                               json_string_value(json_object_get(t, "patient")),
                               json_string_value(json_object_get(t, "rule")),
                               json_string_value(json_object_get(t, "state")),
                               (long long)ms) > 0);
        }
        json_decref(t);
    }
    qsort(lines, (size_t)n, sizeof *lines, rg_test_cmp_str);
    rg_buf b = {0};
    for (int k = 0; k < n; k++) {
        rg_buf_printf(&b, "%s\n", lines[k]);
        free(lines[k]);
    }
    free(out);
    free(err);
    return b.p ? b.p : strdup("");
}

/* The same lines of the store's shadow_transitions. */
static char *shadow_rows(const char *db)
{
    sqlite3 *h;
    sqlite3_stmt *st;
    cr_assert_eq(sqlite3_open_v2(db, &h, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    sqlite3_busy_timeout(h, 5000);
    cr_assert_eq(sqlite3_prepare_v2(h, "SELECT patient || ' ' || rule || ' ' || state || ' ' ||"
                                       " at FROM shadow_transitions", -1, &st, NULL),
                 SQLITE_OK, "%s", sqlite3_errmsg(h));
    char *lines[512];
    int n = 0;
    while (sqlite3_step(st) == SQLITE_ROW && n < 512)
        lines[n++] = strdup((const char *)sqlite3_column_text(st, 0));
    sqlite3_finalize(st);
    sqlite3_close(h);
    qsort(lines, (size_t)n, sizeof *lines, rg_test_cmp_str);
    rg_buf b = {0};
    for (int k = 0; k < n; k++) {
        rg_buf_printf(&b, "%s\n", lines[k]);
        free(lines[k]);
    }
    return b.p ? b.p : strdup("");
}

/* A shadow version runs live beside the active one: its transitions are
 * simulate's for it over the same events (from its start on), they reach
 * neither the webhook (a real receiver) nor the stream, the running
 * comparison says what it opened that the active did not, and show says
 * the same; stopping it is recorded. */
Test(governance, shadow_runs_beside_the_active_version_and_notifies_nobody, .timeout = 120)
{
    gov g;
    gov_setup(&g);
    receiver r = {0};
    receiver_start(&r);
    server s;
    snprintf(s.dir, sizeof s.dir, "%s", g.dir);
    snprintf(s.db, sizeof s.db, "%s", g.db);
    snprintf(s.config, sizeof s.config, "%s/config.json", g.dir);
    snprintf(s.log, sizeof s.log, "%s/serve.log", g.dir);
    char cfg[1024], *err, *body;
    snprintf(cfg, sizeof cfg,
             "{ \"listen\": \"127.0.0.1:0\", \"protocol_changes\": \"approval\",\n"
             "  \"clinics\": { \"north\": { \"protocols\": \"v150\", \"tokens\": [\"" TOKEN_A "\"],"
             " \"webhook\": \"http://127.0.0.1:%d/hook\" } } }\n", r.port);
    rg_test_write(g.dir, "config.json", cfg);
    char *active = propose(&g, g.path[0], "alice", NULL);
    cr_assert_eq(step(&g, "approve", "bob", active, &err), 0, "%s", err);
    free(err);
    cr_assert_eq(step(&g, "activate", "bob", active, &err), 0, "%s", err);
    free(err);
    char *cand = propose(&g, g.path[1], "alice", NULL); /* limit 130: proposed only */
    server_start(&s);
    stream sse;
    stream_open(&sse, s.port, TOKEN_A, NULL);
    /* the active version cannot be a shadow; the candidate can */
    cr_assert_eq(step(&g, "shadow", "bob", active, &err), 1, "the active one: %s", err);
    cr_assert_not_null(strstr(err, "only a proposed or approved version"), "%s", err);
    free(err);
    char path[256];
    snprintf(path, sizeof path, "/v1/protocols/versions/%.10s/shadow", cand);
    cr_assert_eq(http(s.port, "POST", path, TOKEN_A, NULL, &body), 403, "a clinic token: %s",
                 body);
    free(body);
    cr_assert_eq(step(&g, "shadow", "bob", cand, &err), 0, "%s", err);
    free(err);
    json_t *sh = shadow_get(&s);
    json_t *o = json_object_get(sh, "shadow");
    cr_assert_str_eq(json_string_value(json_object_get(o, "version")), cand);
    const char *since_text = json_string_value(json_object_get(o, "since"));
    rg_time since;
    char why[200];
    cr_assert_eq(rg_time_parse(since_text, strlen(since_text), &since, NULL, why, sizeof why), 0);
    json_decref(sh);
    char want_log[80];
    snprintf(want_log, sizeof want_log, "protocol version %.12s runs as a shadow", cand);
    for (int i = 0; i < 300; i++) {
        char *log = rg_test_read(s.log);
        int seen = strstr(log, want_log) != NULL;
        free(log);
        if (seen)
            break;
        cr_assert_lt(i, 299, "the service did not take the shadow up");
        usleep(10000);
    }
    /* the events: north's timeline, then two new patients */
    char events[320];
    snprintf(events, sizeof events, "%s/events.jsonl", g.dir);
    FILE *ev = fopen(events, "w");
    char *timeline = rg_test_read(TIMELINE);
    fputs(timeline, ev);
    free(timeline);
    /* 140 systolic: over the shadow's 130, under the active 150 */
    post_bp(&s, "p-900", 140, now_ms() + 1, ev);
    long opened = 0;
    for (int i = 0; i < 500 && opened != 1; i++) {
        usleep(10000);
        sh = shadow_get(&s);
        json_t *rules = json_object_get(json_object_get(sh, "shadow"), "rules"), *x;
        size_t k;
        json_array_foreach(rules, k, x)
            if (!strcmp(json_string_value(json_object_get(x, "rule")), "safety.bp-high"))
                opened = json_integer_value(json_object_get(x, "opened_only_by_shadow"));
        if (opened == 1) {
            const char *rep = json_string_value(json_object_get(json_object_get(sh, "shadow"),
                                                                "report"));
            cr_assert_not_null(strstr(rep, "only SHADOW north p-900 safety.bp-high"), "%s", rep);
        }
        json_decref(sh);
    }
    cr_assert_eq(opened, 1, "the shadow opened p-900's blood-pressure alert, the active not");
    /* 165: both open one; once the active's reached the webhook and the
     * stream, nothing of p-900 came before it (the feed is in order) */
    post_bp(&s, "p-901", 165, now_ms() + 1, ev);
    fclose(ev);
    cr_assert_geq(stream_wait(&sse, "p-901", 10000), 0, "the stream has the active's alert");
    for (int i = 0; i < 500 && !hook_seen(&r, "p-901", "safety.bp-high"); i++)
        usleep(10000);
    cr_assert_eq(hook_seen(&r, "p-901", "safety.bp-high"), 1, "the webhook has it");
    cr_assert_eq(hook_seen(&r, "p-900", "safety.bp-high"), 0, "no shadow transition at the "
                 "webhook");
    cr_assert_null(strstr(sse.buf, "p-900"), "no shadow transition on the stream: %s", sse.buf);
    cr_assert_eq(count_rows(g.db, "SELECT count(*) FROM transitions WHERE patient = 'p-900'"
                                  " AND rule = 'safety.bp-high'"), 0, "nor in the feed");
    /* the shadow's transitions are simulate's under it over the same events
     * (p-901's opens under both) */
    char *want = simulated_since(events, g.path[1], since), *got = shadow_rows(g.db);
    for (int i = 0; i < 200 && strcmp(got, want); i++) { /* (p-901's job) */
        usleep(10000);
        free(got);
        got = shadow_rows(g.db);
    }
    cr_assert_str_eq(got, want, "the shadow's transitions are simulate's");
    cr_assert_not_null(strstr(got, "p-900 safety.bp-high open"), "%s", got);
    cr_assert_not_null(strstr(got, "p-901 safety.bp-high open"), "%s", got);
    free(want);
    free(got);
    /* show and list say so; stopping is recorded and the service stops it */
    char *out;
    const char *more[] = {cand, NULL};
    cr_assert_eq(prot(&g, "show", more, &out, &err), 0, "%s", err);
    cr_assert_not_null(strstr(out, "shadow since"), "%s", out);
    cr_assert_not_null(strstr(out, "only SHADOW north p-900 safety.bp-high"), "%s", out);
    free(out);
    free(err);
    char *line = list_line(&g, cand);
    cr_assert_not_null(strstr(line, "shadow since"), "%s", line);
    free(line);
    const char *stop[] = {"--by", "bob", "--stop", NULL};
    cr_assert_eq(prot(&g, "shadow", stop, &out, &err), 0, "%s", err);
    cr_assert_not_null(strstr(out, "no longer runs as a shadow"), "%s", out);
    free(out);
    free(err);
    snprintf(want_log, sizeof want_log, "the shadow version %.12s stopped", cand);
    for (int i = 0; i < 300; i++) {
        char *log = rg_test_read(s.log);
        int seen = strstr(log, want_log) != NULL;
        free(log);
        if (seen)
            break;
        cr_assert_lt(i, 299, "the service did not stop the shadow");
        usleep(10000);
    }
    sh = shadow_get(&s);
    cr_assert(json_is_null(json_object_get(sh, "shadow")));
    json_decref(sh);
    cr_assert_eq(prot(&g, "shadow", stop, &out, &err), 1, "no shadow to stop");
    free(out);
    free(err);
    cr_assert_eq(server_stop(&s, SIGTERM), 0);
    close(sse.fd);
    receiver_stop(&r);
    free(active);
    free(cand);
    rg_test_rmdir(g.dir);
}

/* A body {"message", "until", "files": {"clinic.lua": text}} of dir's clinic.lua,
 * with from replaced by to in it (from NULL: as it is). */
static char *proposal_body(const char *dir, const char *from, const char *to)
{
    char path[400];
    snprintf(path, sizeof path, "%s/clinic.lua", dir);
    char *text = rg_test_read(path);
    rg_buf b = {0};
    char *at = from ? strstr(text, from) : NULL;
    if (at)
        rg_buf_printf(&b, "%.*s%s%s", (int)(at - text), text, to, at + strlen(from));
    else
        rg_buf_printf(&b, "%s", text);
    json_t *root = json_pack("{s:s,s:s,s:{s:s}}", "message", "over HTTP", "until", UNTIL,
                             "files", "clinic.lua", b.p);
    char *body = json_dumps(root, 0);
    json_decref(root);
    free(b.p);
    free(text);
    return body;
}

/* A proposal over HTTP: an admin posts the clinic directory's files; a
 * file that does not load is refused naming its file and line, a bad path
 * is refused, the same files are refused twice; a good one answers its
 * version (the command line's id for the same files) and the diff over the
 * clinic's history, the one `regimen protocols show` prints for it. */
Test(governance, http_propose_checks_and_answers_the_diff, .timeout = 120)
{
    gov g;
    gov_setup(&g);
    server s;
    snprintf(s.dir, sizeof s.dir, "%s", g.dir);
    snprintf(s.db, sizeof s.db, "%s", g.db);
    snprintf(s.config, sizeof s.config, "%s/config.json", g.dir);
    snprintf(s.log, sizeof s.log, "%s/serve.log", g.dir);
    const char *keys[2] = {"adam-key-0123456789abcdef", "pat-key-0123456789abcdef"};
    char h[2][65], cfg[2048], *body, *sent;
    for (int i = 0; i < 2; i++) {
        unsigned char d[crypto_hash_sha256_BYTES];
        crypto_hash_sha256(d, (const unsigned char *)keys[i], strlen(keys[i]));
        sodium_bin2hex(h[i], 65, d, sizeof d);
    }
    snprintf(cfg, sizeof cfg,
             "{ \"listen\": \"127.0.0.1:0\",\n"
             "  \"clinics\": { \"north\": { \"protocols\": \"v150\", \"api_keys\": [\n"
             "    {\"name\": \"adam\", \"role\": \"admin\", \"sha256\": \"%s\"},\n"
             "    {\"name\": \"pat\", \"role\": \"prescriber\", \"sha256\": \"%s\"} ] } } }\n",
             h[0], h[1]);
    rg_test_write(g.dir, "config.json", cfg);
    server_start(&s);
    const char *P = "/v1/protocols/versions";
    /* a syntax error: refused with its file and line, nothing stored */
    sent = proposal_body(g.path[1], "bp_systolic_max = 130", "bp_systolic_max = = 130");
    cr_assert_eq(http(s.port, "POST", P, keys[0], sent, &body), 409, "%s", body);
    cr_assert_not_null(strstr(body, "does not pass regimen check: clinic.lua:"), "%s", body);
    free(body);
    free(sent);
    cr_assert_eq(count_rows(g.db, "SELECT count(*) FROM protocol_sets"), 0);
    cr_assert_eq(http(s.port, "POST", P, keys[0], "{\"files\": {\"../clinic.lua\": \"x\"}}",
                      &body), 400, "%s", body);
    cr_assert_not_null(strstr(body, "../clinic.lua"), "%s", body);
    free(body);
    cr_assert_eq(http(s.port, "POST", P, keys[0], "{\"files\": {\"p.lua\": 1}}", &body), 400,
                 "%s", body);
    free(body);
    sent = proposal_body(g.path[1], NULL, NULL);
    cr_assert_eq(http(s.port, "POST", P, keys[1], sent, &body), 403, "a prescriber: %s", body);
    free(body);
    /* the good one */
    cr_assert_eq(http(s.port, "POST", P, keys[0], sent, &body), 201, "%s", body);
    json_t *root = json_loads(body, 0, NULL);
    cr_assert_not_null(root, "%s", body);
    const char *id = json_string_value(json_object_get(root, "version"));
    const char *diff = json_string_value(json_object_get(root, "diff"));
    cr_assert(id && diff, "%s", body);
    cr_assert_not_null(strstr(diff, "safety.bp-high"), "%s", diff);
    free(body);
    cr_assert_eq(http(s.port, "POST", P, keys[0], sent, &body), 409, "twice: %s", body);
    cr_assert_not_null(strstr(body, "already"), "%s", body);
    free(body);
    free(sent);
    /* the command line names the same files the same version, and shows
     * the same diff */
    char *out, *err;
    const char *more[] = {"--by", "carol", "--until", UNTIL, g.path[1], NULL};
    cr_assert_eq(prot(&g, "propose", more, &out, &err), 1, "the same files: %s", out);
    char want[120];
    snprintf(want, sizeof want, "these files are version %.12s already", id);
    cr_assert_not_null(strstr(err, want), "%s", err);
    free(out);
    free(err);
    const char *show[] = {"--until", UNTIL, id, NULL};
    cr_assert_eq(prot(&g, "show", show, &out, &err), 0, "%s", err);
    const char *d = strstr(out, "diff against the active version:\n");
    cr_assert_not_null(d, "%s", out);
    cr_assert_str_eq(d + strlen("diff against the active version:\n"), diff);
    cr_assert_not_null(strstr(out, "proposed by adam"), "%s", out);
    free(out);
    free(err);
    json_decref(root);
    cr_assert_eq(server_stop(&s, SIGTERM), 0);
    rg_test_rmdir(g.dir);
}

/* How a shadow stops, on the command line: another shadow replaces it, an
 * activation of it ends it, and each is in the version's history. */
Test(governance, a_shadow_is_replaced_by_another_and_ended_by_its_activation)
{
    gov g;
    gov_setup(&g);
    char *err, *out, *v[3];
    for (int i = 0; i < 3; i++)
        v[i] = propose(&g, g.path[i], "alice", NULL);
    cr_assert_eq(step(&g, "approve", "bob", v[0], &err), 0, "%s", err);
    free(err);
    cr_assert_eq(step(&g, "activate", "bob", v[0], &err), 0, "%s", err);
    free(err);
    cr_assert_eq(step(&g, "shadow", "bob", v[1], &err), 0, "%s", err);
    free(err);
    const char *again[] = {"--by", "carol", v[2], NULL};
    cr_assert_eq(prot(&g, "shadow", again, &out, &err), 0, "%s", err);
    char want[80];
    snprintf(want, sizeof want, "in place of version %.12s", v[1]);
    cr_assert_not_null(strstr(out, want), "%s", out);
    free(out);
    free(err);
    char *line = list_line(&g, v[1]);
    cr_assert_null(strstr(line, "shadow since"), "replaced: %s", line);
    free(line);
    line = list_line(&g, v[2]);
    cr_assert_not_null(strstr(line, "shadow since"), "%s", line);
    free(line);
    cr_assert_eq(step(&g, "approve", "bob", v[2], &err), 0, "%s", err);
    free(err);
    cr_assert_eq(step(&g, "activate", "bob", v[2], &err), 0, "%s", err);
    free(err);
    line = list_line(&g, v[2]);
    cr_assert_null(strstr(line, "shadow since"), "activated: %s", line);
    cr_assert_not_null(strstr(line, "active"), "%s", line);
    free(line);
    const char *stop[] = {"--by", "bob", "--stop", NULL};
    cr_assert_eq(prot(&g, "shadow", stop, &out, &err), 1, "nothing to stop: %s", out);
    cr_assert_not_null(strstr(err, "has no shadow version"), "%s", err);
    free(out);
    free(err);
    const char *show[] = {"--until", UNTIL, v[2], NULL};
    cr_assert_eq(prot(&g, "show", show, &out, &err), 0, "%s", err);
    cr_assert_not_null(strstr(out, "shadowed        by carol"), "%s", out);
    cr_assert_null(strstr(out, "shadow since"), "%s", out);
    free(out);
    free(err);
    for (int i = 0; i < 3; i++)
        free(v[i]);
    rg_test_rmdir(g.dir);
}
