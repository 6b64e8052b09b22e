/*
 * bound.c - the lower bound of a sweep: read every patient's events from the
 * store in the engine's order and hand each one to a trivial Lua rule.
 *
 *   bound DB [patient|scan|both|alerts]
 *
 * patient: the engine's own access path, one query per patient
 *   (SELECT seq, at, id, type, fields FROM events WHERE clinic=? AND patient=?
 *   ORDER BY at, seq: the compiled data the engine reads), patients taken from
 *   the patients table in (clinic, patient) order;
 * scan: one query over all events ordered by (clinic, patient, at, seq),
 *   which SQLite answers from the table itself (its key since schema v12).
 * Each event is pushed to Lua (lua_pushinteger/lua_pushstring) and passed to
 * one Lua function that counts infusions. Nothing is decoded, evaluated or
 * written: this is what reading the data and handing it over costs. Prints
 * one line per mode:
 *   bound MODE patients=N events=E infusions=K seconds=S events_per_s=X patients_per_s=Y
 * Default mode: both. `bound DB alerts` instead prints the open alerts per rule
 * (`alerts RULE=N ...`), for run.sh to check that regimen and the peer agree.
 * Depends on SQLite and Lua 5.4 only.
 */
#define _POSIX_C_SOURCE 200809L
#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>
#include <sqlite3.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef struct bound_run {
    long patients, events;
    double seconds;
    lua_Integer infusions;
} bound_run;

static double bound_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void bound_die(sqlite3 *db, const char *what)
{
    fprintf(stderr, "bound: %s: %s\n", what, db ? sqlite3_errmsg(db) : "error");
    exit(2);
}

/* The trivial rule: counts infusions in an upvalue-free global counter. */
static const char bound_rule[] =
    "local n = 0\n"
    "function rule(seq, at, id, type, data)\n"
    "  if type == 'infusion' then n = n + 1 end\n"
    "end\n"
    "function count() return n end\n";

static lua_State *bound_lua(void)
{
    lua_State *L = luaL_newstate();
    if (!L)
        exit(2);
    luaL_openlibs(L);
    if (luaL_dostring(L, bound_rule) != LUA_OK) {
        fprintf(stderr, "bound: %s\n", lua_tostring(L, -1));
        exit(2);
    }
    return L;
}

/* [-0, +0] Hands the current row (seq, at, id, type, data at columns c..c+4)
 * to the rule function at stack index 1. */
static void bound_hand(lua_State *L, sqlite3_stmt *s, int c)
{
    lua_pushvalue(L, 1);
    lua_pushinteger(L, sqlite3_column_int64(s, c));
    lua_pushinteger(L, sqlite3_column_int64(s, c + 1));
    lua_pushstring(L, (const char *)sqlite3_column_text(s, c + 2));
    lua_pushstring(L, (const char *)sqlite3_column_text(s, c + 3));
    if (sqlite3_column_type(s, c + 4) == SQLITE_NULL)
        lua_pushnil(L);
    else
        lua_pushlstring(L, (const char *)sqlite3_column_blob(s, c + 4),
                        (size_t)sqlite3_column_bytes(s, c + 4));
    lua_call(L, 5, 0);
}

static lua_Integer bound_count(lua_State *L)
{
    lua_getglobal(L, "count");
    lua_call(L, 0, 1);
    lua_Integer n = lua_tointeger(L, -1);
    lua_pop(L, 1);
    return n;
}

/* Per patient, exactly the engine's query. */
static bound_run bound_per_patient(sqlite3 *db)
{
    bound_run r = {0};
    lua_State *L = bound_lua();
    lua_getglobal(L, "rule");
    sqlite3_stmt *pat, *ev;
    double t0 = bound_now();
    if (sqlite3_prepare_v2(db, "SELECT clinic, patient FROM patients ORDER BY clinic, patient", -1,
                           &pat, NULL) != SQLITE_OK)
        bound_die(db, "patients");
    if (sqlite3_prepare_v2(db, "SELECT seq, at, id, type, fields FROM events"
                               " WHERE clinic = ?1 AND patient = ?2 ORDER BY at, seq",
                           -1, &ev, NULL) != SQLITE_OK)
        bound_die(db, "events");
    int rc;
    while ((rc = sqlite3_step(pat)) == SQLITE_ROW) {
        sqlite3_bind_text(ev, 1, (const char *)sqlite3_column_text(pat, 0), -1, SQLITE_STATIC);
        sqlite3_bind_text(ev, 2, (const char *)sqlite3_column_text(pat, 1), -1, SQLITE_STATIC);
        while ((rc = sqlite3_step(ev)) == SQLITE_ROW) {
            bound_hand(L, ev, 0);
            r.events++;
        }
        if (rc != SQLITE_DONE)
            bound_die(db, "events");
        sqlite3_reset(ev);
        r.patients++;
    }
    if (rc != SQLITE_DONE)
        bound_die(db, "patients");
    r.seconds = bound_now() - t0;
    sqlite3_finalize(pat);
    sqlite3_finalize(ev);
    r.infusions = bound_count(L);
    lua_close(L);
    return r;
}

/* One ordered scan; a patient ends where (clinic, patient) changes. */
static bound_run bound_scan(sqlite3 *db)
{
    bound_run r = {0};
    lua_State *L = bound_lua();
    lua_getglobal(L, "rule");
    sqlite3_stmt *s;
    char clinic[256] = "", patient[256] = "";
    double t0 = bound_now();
    if (sqlite3_prepare_v2(db, "SELECT clinic, patient, seq, at, id, type, fields FROM events"
                               " ORDER BY clinic, patient, at, seq",
                           -1, &s, NULL) != SQLITE_OK)
        bound_die(db, "scan");
    int rc;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        const char *c = (const char *)sqlite3_column_text(s, 0);
        const char *p = (const char *)sqlite3_column_text(s, 1);
        if (strcmp(c, clinic) || strcmp(p, patient)) {
            snprintf(clinic, sizeof clinic, "%s", c);
            snprintf(patient, sizeof patient, "%s", p);
            r.patients++;
        }
        bound_hand(L, s, 2);
        r.events++;
    }
    if (rc != SQLITE_DONE)
        bound_die(db, "scan");
    r.seconds = bound_now() - t0;
    sqlite3_finalize(s);
    r.infusions = bound_count(L);
    lua_close(L);
    return r;
}

/* Open alerts per rule, one line. Schema v4 keeps an alert's state in the
 * alerts table; from v5 an alert is its opening transition, open until a
 * resolution names it (alert_id): the first query that prepares is the
 * store's schema. */
static void bound_alerts(sqlite3 *db)
{
    static const char *const queries[] = {
        "SELECT t.rule, count(*) FROM alerts a JOIN transitions t"
        " ON t.seq = a.opened_seq WHERE a.state = 'open' GROUP BY t.rule ORDER BY t.rule",
        "SELECT o.rule, count(*) FROM transitions o WHERE o.state = 'open' AND NOT EXISTS"
        " (SELECT 1 FROM transitions r WHERE r.state = 'resolved' AND r.alert_id = o.seq)"
        " GROUP BY o.rule ORDER BY o.rule",
    };
    sqlite3_stmt *s = NULL;
    for (size_t i = 0; i < sizeof queries / sizeof *queries && !s; i++)
        if (sqlite3_prepare_v2(db, queries[i], -1, &s, NULL) != SQLITE_OK)
            s = NULL;
    if (!s)
        bound_die(db, "alerts");
    printf("alerts");
    while (sqlite3_step(s) == SQLITE_ROW)
        printf(" %s=%lld", (const char *)sqlite3_column_text(s, 0),
               (long long)sqlite3_column_int64(s, 1));
    printf("\n");
    sqlite3_finalize(s);
}

static void bound_print(const char *mode, const bound_run *r)
{
    printf("bound %s patients=%ld events=%ld infusions=%lld seconds=%.3f events_per_s=%.0f "
           "patients_per_s=%.0f\n", mode, r->patients, r->events, (long long)r->infusions,
           r->seconds, r->seconds > 0 ? (double)r->events / r->seconds : 0,
           r->seconds > 0 ? (double)r->patients / r->seconds : 0);
}

int main(int argc, char **argv)
{
    if (argc < 2 || argc > 3) {
        fprintf(stderr, "usage: bound DB [patient|scan|both|alerts]\n");
        return 2;
    }
    const char *mode = argc > 2 ? argv[2] : "both";
    sqlite3 *db;
    if (sqlite3_open_v2(argv[1], &db, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK)
        bound_die(db, argv[1]);
    /* the same cache as regimen's store (runtime/store/sqlite.c) */
    if (sqlite3_exec(db, "PRAGMA cache_size=-65536; PRAGMA mmap_size=268435456;", NULL, NULL,
                     NULL) != SQLITE_OK)
        bound_die(db, argv[1]);
    if (!strcmp(mode, "alerts")) {
        bound_alerts(db);
        sqlite3_close(db);
        return 0;
    }
    int all = !strcmp(mode, "both");
    if (!all && strcmp(mode, "patient") && strcmp(mode, "scan")) {
        fprintf(stderr, "bound: mode must be patient, scan or both\n");
        return 2;
    }
    if (all || !strcmp(mode, "patient")) {
        bound_run r = bound_per_patient(db);
        bound_print("patient", &r);
    }
    if (all || !strcmp(mode, "scan")) {
        bound_run r = bound_scan(db);
        bound_print("scan", &r);
    }
    sqlite3_close(db);
    return 0;
}
