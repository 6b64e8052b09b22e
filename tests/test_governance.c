/*
 * test_governance.c - `regimen protocols` (docs/governance.md) through the
 * real binary: a proposal must pass the check with its scenario tests, the
 * proposer cannot approve, the diff shown at proposal is `regimen diff`'s
 * over the same history, activation and rollback move the version in force,
 * and list/show say so. The clinic is examples/clinics/north with its
 * timeline; run from the repository root (make test does).
 */
#include <criterion/criterion.h>

#include "helpers.h"

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
    cr_assert_not_null(strstr(first_diff, "no version of clinic north is active"), "%s",
                       first_diff);
    char *err;
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
    char *out;
    const char *args[] = {"diff", "--events", TIMELINE, "--until", UNTIL, g.path[0], g.path[1],
                          NULL};
    cr_assert_eq(rg_test_run(args, NULL, &out, &err), 1, "regimen diff finds differences: %s",
                 err);
    cr_assert_str_eq(diff, out, "the proposal's diff is regimen diff's");
    cr_assert_not_null(strstr(diff, "safety.bp-high"), "%s", diff);
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
