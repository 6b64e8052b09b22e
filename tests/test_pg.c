/*
 * test_pg.c - the real binary on PostgreSQL (RG_TEST_PG_URL, set by
 * `make test-postgres`; skipped without it): `simulate --db postgresql://`
 * gives exactly the transitions of the SQLite run, on the example clinics
 * and on a generated 1,000-patient cohort (bench/gen.c), and the commands
 * that read a store (rejected, sweep) take the URL; a server that cannot be
 * reached is named in one line. Each test gets
 * a schema of its own on the cluster's database.
 */
#include "helpers.h"

#include <criterion/criterion.h>
#include <libpq-fe.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char dir[256], url[1200], schema[64];

static void sql(const char *text)
{
    PGconn *c = PQconnectdb(getenv("RG_TEST_PG_URL"));
    cr_assert_eq(PQstatus(c), CONNECTION_OK, "%s", PQerrorMessage(c));
    PQclear(PQexec(c, "SET client_min_messages = warning"));
    PGresult *r = PQexec(c, text);
    cr_assert_eq(PQresultStatus(r), PGRES_COMMAND_OK, "%s: %s", text, PQresultErrorMessage(r));
    PQclear(r);
    PQfinish(c);
}

/* A new empty schema (name suffix n) and the URL that uses it. */
static void fresh_schema(int n)
{
    const char *base = getenv("RG_TEST_PG_URL");
    char text[256];
    snprintf(schema, sizeof schema, "e2e_%d_%d", (int)getpid(), n);
    snprintf(text, sizeof text, "DROP SCHEMA IF EXISTS %s CASCADE; CREATE SCHEMA %s", schema,
             schema);
    sql(text);
    snprintf(url, sizeof url, "%s%soptions=-csearch_path%%3D%s", base,
             strchr(base, '?') ? "&" : "?", schema);
}

static void setup(void)
{
    if (!getenv("RG_TEST_PG_URL") || !*getenv("RG_TEST_PG_URL"))
        cr_skip_test("no PostgreSQL (RG_TEST_PG_URL): make test-postgres runs this");
    rg_test_tmpdir(dir);
}

static void teardown(void)
{
    if (dir[0])
        rg_test_rmdir(dir);
}

TestSuite(pg, .init = setup, .fini = teardown, .timeout = 300);

/* simulate's JSON Lines on SQLite (a file in dir) and on PostgreSQL: equal. */
static void same_transitions(const char *events, const char *until, const char *clinic, int n)
{
    char db[300], *sq = NULL, *pg = NULL, *err = NULL;
    snprintf(db, sizeof db, "%s/sim-%d.db", dir, n);
    fresh_schema(n);
    const char *a1[] = {"simulate", "--events", events, "--until", until, "--format", "jsonl",
                        "--db", db, clinic ? "--clinic" : NULL, clinic, NULL};
    cr_assert_eq(rg_test_run(a1, NULL, &sq, &err), 0, "sqlite: %s", err);
    free(err);
    const char *a2[] = {"simulate", "--events", events, "--until", until, "--format", "jsonl",
                        "--db", url, clinic ? "--clinic" : NULL, clinic, NULL};
    cr_assert_eq(rg_test_run(a2, NULL, &pg, &err), 0, "postgresql: %s", err);
    free(err);
    cr_assert_gt(strlen(sq), 100, "the run gave transitions");
    size_t i = 0;
    while (sq[i] && sq[i] == pg[i])
        i++;
    cr_assert(sq[i] == pg[i], "%s: outputs differ at byte %zu:\nsqlite: %.200s\npg:     %.200s",
              events, i, sq + i, pg + i);
    free(sq);
    free(pg);
}

Test(pg, simulate_gives_the_sqlite_transitions_on_the_example_clinics)
{
    same_transitions("examples/clinics/north/timeline.jsonl", "2026-06-01T00:00:00Z",
                     "north=examples/clinics/north", 1);
    same_transitions("examples/clinics/south/timeline.jsonl", "2026-06-01T00:00:00Z",
                     "south=examples/clinics/south", 2);
}

Test(pg, simulate_gives_the_sqlite_transitions_on_a_1000_patient_cohort)
{
    char cmd[1024], gen[300], cohort[300];
    snprintf(gen, sizeof gen, "%s/gen", dir);
    snprintf(cohort, sizeof cohort, "%s/cohort.jsonl", dir);
    snprintf(cmd, sizeof cmd, "cc -std=c11 -O2 bench/gen.c -o %s && %s 1000 4 42 > %s", gen, gen,
             cohort);
    cr_assert_eq(system(cmd), 0, "%s", cmd);
    same_transitions(cohort, "2028-01-01T00:00:00Z", NULL, 3);
}

Test(pg, ingest_rejected_and_sweep_take_the_url)
{
    fresh_schema(4);
    char *out = NULL, *err = NULL;
    rg_test_write(dir, "in.jsonl",
                  "{\"id\":\"e1\",\"clinic\":\"north\",\"patient\":\"p1\",\"type\":\"session\","
                  "\"at\":\"2026-03-02T10:00:00Z\"}\n{broken\n");
    char in[300];
    snprintf(in, sizeof in, "%s/in.jsonl", dir);
    const char *ing[] = {"ingest", "--db", url, in, NULL};
    cr_assert_eq(rg_test_run(ing, NULL, &out, &err), 1, "%s%s", out, err);
    cr_assert_not_null(strstr(out, "stored 1"), "%s", out);
    free(out);
    free(err);
    const char *rej[] = {"rejected", "--db", url, NULL};
    cr_assert_eq(rg_test_run(rej, NULL, &out, &err), 0, "%s", err);
    cr_assert_not_null(strstr(out, "in.jsonl:2"), "%s", out);
    free(out);
    free(err);
    const char *sw[] = {"sweep", "--db", url, "--at", "2026-06-01T00:00:00Z", "--jobs", "2", NULL};
    cr_assert_eq(rg_test_run(sw, NULL, &out, &err), 0, "%s", err);
    cr_assert_not_null(strstr(err, "swept 1 patients"), "%s%s", out, err);
    free(out);
    free(err);
    const char *bad[] = {"ingest", "--db", "postgresql:///nodb?host=/nonexistent", in, NULL};
    cr_assert_eq(rg_test_run(bad, NULL, &out, &err), 2);
    cr_assert_not_null(strstr(err, "cannot connect to database postgresql:///nodb"), "%s", err);
    free(out);
    free(err);
}
