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

#include "rg.h"

#include <jansson.h>
#include <sodium.h>

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
