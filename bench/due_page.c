/*
 * due_page.c - times one clinic's due page, the read of a wake-up job
 * (rg_store_due_patients with a clinic), against a store made beforehand.
 *
 *   due_page DB SQL N PARAM3
 *
 * DB is a SQLite file or a postgresql:// URL; SQL the statement (the store's
 * text: ?1/$1 the due time, ?2/$2 the page size, ?3/$3 the clinic, or the
 * clinic array of the statement of before schema 21), run N times with due
 * 10^9, a page of 256 and PARAM3. Prints the time per read, the rows, and on
 * SQLite the virtual machine steps of one read. A PostgreSQL statement is
 * prepared and run 10 times before the timing (past the custom plans).
 * bench/profile.md (2026-12-07, tenant isolation) has the commands.
 *
 *   cc -O2 bench/due_page.c -o due_page $(pkg-config --cflags --libs sqlite3 libpq)
 */
#include <libpq-fe.h>
#include <sqlite3.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now_us(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1e6 + t.tv_nsec / 1e3;
}

static int run_pg(const char *url, const char *sql, int n, const char *p3)
{
    PGconn *c = PQconnectdb(url);
    if (PQstatus(c) != CONNECTION_OK) {
        fprintf(stderr, "due_page: %s", PQerrorMessage(c));
        return 1;
    }
    PGresult *r = PQprepare(c, "due", sql, 0, NULL);
    int ok = PQresultStatus(r) == PGRES_COMMAND_OK, rows = 0;
    PQclear(r);
    const char *v[3] = {"1000000000", "256", p3};
    double t0 = 0;
    for (int i = -10; ok && i < n; i++) {
        if (i == 0)
            t0 = now_us();
        r = PQexecPrepared(c, "due", 3, v, NULL, NULL, 0);
        ok = PQresultStatus(r) == PGRES_TUPLES_OK;
        rows = PQntuples(r);
        PQclear(r);
    }
    if (ok)
        printf("%s: %.1f us a read, %d rows\n", p3, (now_us() - t0) / n, rows);
    else
        fprintf(stderr, "due_page: %s", PQerrorMessage(c));
    PQfinish(c);
    return !ok;
}

static int run_sqlite(const char *path, const char *sql, int n, const char *p3)
{
    sqlite3 *db;
    sqlite3_stmt *s;
    if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK ||
        sqlite3_prepare_v2(db, sql, -1, &s, NULL) != SQLITE_OK) {
        fprintf(stderr, "due_page: %s\n", sqlite3_errmsg(db));
        sqlite3_close(db);
        return 1;
    }
    int rows = 0, steps = 0;
    double t0 = now_us();
    for (int i = 0; i < n; i++) {
        sqlite3_bind_int64(s, 1, 1000000000);
        sqlite3_bind_int(s, 2, 256);
        sqlite3_bind_text(s, 3, p3, -1, SQLITE_STATIC);
        for (rows = 0; sqlite3_step(s) == SQLITE_ROW; rows++)
            ;
        steps = sqlite3_stmt_status(s, SQLITE_STMTSTATUS_VM_STEP, 1);
        sqlite3_reset(s);
    }
    printf("%s: %.1f us a read, %d rows, %d VM steps\n", p3, (now_us() - t0) / n, rows, steps);
    sqlite3_finalize(s);
    sqlite3_close(db);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc != 5 || atoi(argv[3]) <= 0) {
        fprintf(stderr, "usage: due_page DB SQL N PARAM3\n");
        return 2;
    }
    int pg = !strncmp(argv[1], "postgresql://", 13) || !strncmp(argv[1], "postgres://", 11);
    return (pg ? run_pg : run_sqlite)(argv[1], argv[2], atoi(argv[3]), argv[4]);
}
