/*
 * naive.c - the naive program of issue 11: what a clinic's engineer would
 * write in an afternoon with cJSON, SQLite and Lua, as a second bound.
 *
 *   naive ingest DB FILE   parse each JSON line (cJSON), insert it into a
 *                          fresh table in ONE transaction, build the index the
 *                          ordered scan needs, commit (no check for repeated
 *                          ids, which regimen makes: the cohorts have none);
 *   naive sweep DB AT      one scan of the events at or before AT in
 *                          (clinic, patient, at) order, each event handed to
 *                          Lua as a table {id, type, at, data = {...}}, and per
 *                          patient the two rules of bench/two-rules/two.lua
 *                          (acute.infusion-due, safety.bp-high) run in Lua.
 *
 * Prints one line, in the key=value form run.sh parses:
 *   naive ingest events=E seconds=S events_per_s=X
 *   naive sweep patients=N events=E seconds=S events_per_s=X patients_per_s=Y
 *         infusion_due=A bp_high=B
 * A and B count the patients each rule fires for at AT: run.sh compares them
 * with the alerts regimen opens. Nothing here is shared with the runtime, on
 * purpose: it is the program regimen has to beat, not a part of it. Times are
 * RFC 3339 with an offset (Z or +HH:MM), parsed with strptime; `at` is stored
 * as integer milliseconds since the epoch, UTC. cJSON rather than jansson
 * (which the runtime uses): it is the faster of the two at this, and a bound
 * should not be slow by choice.
 */
#define _GNU_SOURCE /* timegm */
#include <cjson/cJSON.h>
#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>
#include <sqlite3.h>

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double naive_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void naive_die_db(sqlite3 *db, const char *what)
{
    fprintf(stderr, "naive: %s: %s\n", what, db ? sqlite3_errmsg(db) : "cannot open");
    exit(2);
}

/* RFC 3339 "2026-03-09T14:05:00[.123](Z|+01:00|-05:30)" to ms since the
 * epoch; -1 (with *ok = 0) when it is not one. */
static int64_t naive_time(const char *s, int *ok)
{
    struct tm tm = {0};
    const char *p = strptime(s, "%Y-%m-%dT%H:%M:%S", &tm);
    *ok = 0;
    if (!p)
        return -1;
    int64_t ms = 0;
    if (*p == '.') {
        int digits = 0;
        for (p++; *p >= '0' && *p <= '9'; p++, digits++)
            if (digits < 3)
                ms = ms * 10 + (*p - '0');
        if (!digits)
            return -1;
        for (; digits < 3; digits++)
            ms *= 10;
    }
    int64_t offset = 0; /* seconds east of UTC */
    if (*p == 'Z' || *p == 'z') {
        p++;
    } else if (*p == '+' || *p == '-') {
        int hh, mm, n = 0;
        if (sscanf(p + 1, "%2d:%2d%n", &hh, &mm, &n) != 2 || n != 5 || hh > 23 || mm > 59)
            return -1;
        offset = (int64_t)(hh * 3600 + mm * 60) * (*p == '-' ? -1 : 1);
        p += 6;
    } else {
        return -1;
    }
    if (*p)
        return -1;
    *ok = 1;
    return ((int64_t)timegm(&tm) - offset) * 1000 + ms;
}

/* ---- ingest --------------------------------------------------------------------------- */

static const char *naive_field(const cJSON *e, const char *k, const char *file, long line)
{
    const char *v = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(e, k));
    if (!v || !*v) {
        fprintf(stderr, "naive: %s:%ld: field '%s' must be a non-empty string\n", file, line, k);
        exit(1);
    }
    return v;
}

static int naive_ingest(const char *path, const char *file)
{
    FILE *in = fopen(file, "r");
    if (!in) {
        perror(file);
        return 2;
    }
    double t0 = naive_now();
    sqlite3 *db;
    if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
                        NULL) != SQLITE_OK ||
        sqlite3_exec(db, "PRAGMA cache_size=-65536", NULL, NULL, NULL) != SQLITE_OK)
        naive_die_db(db, path);
    /* the index comes after the rows: one sorted build is cheaper than
     * keeping it in order through every insert, and a naive program would
     * learn that on the first day */
    if (sqlite3_exec(db, "BEGIN;"
                         "CREATE TABLE events (id TEXT NOT NULL, clinic TEXT NOT NULL,"
                         " patient TEXT NOT NULL, type TEXT NOT NULL, at INTEGER NOT NULL,"
                         " data TEXT)",
                     NULL, NULL, NULL) != SQLITE_OK)
        naive_die_db(db, "create");
    sqlite3_stmt *ins;
    if (sqlite3_prepare_v2(db, "INSERT INTO events VALUES (?1, ?2, ?3, ?4, ?5, ?6)", -1, &ins,
                           NULL) != SQLITE_OK)
        naive_die_db(db, "insert");
    char *buf = NULL;
    size_t cap = 0;
    ssize_t len;
    long line = 0, events = 0;
    while ((len = getline(&buf, &cap, in)) > 0) {
        line++;
        if (len == 1 && buf[0] == '\n')
            continue;
        cJSON *e = cJSON_ParseWithLength(buf, (size_t)len);
        if (!cJSON_IsObject(e)) {
            fprintf(stderr, "naive: %s:%ld: not a JSON object%s%.20s\n", file, line,
                    e ? "" : ", error near: ", e ? "" : cJSON_GetErrorPtr());
            return 1; /* exit without COMMIT: nothing is stored */
        }
        const char *at = naive_field(e, "at", file, line);
        int ok;
        int64_t ms = naive_time(at, &ok);
        if (!ok) {
            fprintf(stderr, "naive: %s:%ld: field 'at' is not an RFC 3339 time: %s\n", file, line,
                    at);
            return 1;
        }
        cJSON *data = cJSON_GetObjectItemCaseSensitive(e, "data");
        char *dtext = NULL;
        if (data && !cJSON_IsNull(data)) {
            if (!cJSON_IsObject(data)) {
                fprintf(stderr, "naive: %s:%ld: field 'data' must be an object\n", file, line);
                return 1;
            }
            dtext = cJSON_PrintUnformatted(data);
        }
        sqlite3_bind_text(ins, 1, naive_field(e, "id", file, line), -1, SQLITE_STATIC);
        sqlite3_bind_text(ins, 2, naive_field(e, "clinic", file, line), -1, SQLITE_STATIC);
        sqlite3_bind_text(ins, 3, naive_field(e, "patient", file, line), -1, SQLITE_STATIC);
        sqlite3_bind_text(ins, 4, naive_field(e, "type", file, line), -1, SQLITE_STATIC);
        sqlite3_bind_int64(ins, 5, ms);
        if (dtext)
            sqlite3_bind_text(ins, 6, dtext, -1, cJSON_free);
        else
            sqlite3_bind_null(ins, 6);
        if (sqlite3_step(ins) != SQLITE_DONE)
            naive_die_db(db, "insert");
        sqlite3_reset(ins);
        cJSON_Delete(e);
        events++;
    }
    free(buf);
    fclose(in);
    sqlite3_finalize(ins);
    if (sqlite3_exec(db, "CREATE INDEX events_order ON events (clinic, patient, at); COMMIT",
                     NULL, NULL, NULL) != SQLITE_OK)
        naive_die_db(db, "commit");
    sqlite3_close(db);
    double s = naive_now() - t0;
    printf("naive ingest events=%ld seconds=%.3f events_per_s=%.0f\n", events, s,
           s > 0 ? (double)events / s : 0);
    return 0;
}

/* ---- sweep ---------------------------------------------------------------------------- */

/* The two rules of bench/two-rules/two.lua, over one patient's history h[1..n]
 * (in (at, insertion) order, events at or before now), written as plain Lua:
 * the course starts at the latest ketamine enrolment and ends at a discharge;
 * the patient's plan (enrolled, plan_adjusted data from the latest enrolment
 * on) overrides the parameters. Returns (infusion due, blood pressure high). */
static const char naive_rules[] =
    "local DAY = 86400000\n"
    "local P = { acute_infusions = 6, infusion_due_after = 2 * DAY,\n"
    "            bp_systolic_max = 160, bp_diastolic_max = 100 }\n"
    "function rules(h, n, now)\n"
    "  local p, start = P, 0\n"
    "  for i = n, 1, -1 do if h[i].type == 'enrolled' then start = i; break end end\n"
    "  for i = math.max(start, 1), n do\n"
    "    local e = h[i]\n"
    "    if start > 0 and (e.type == 'enrolled' or e.type == 'plan_adjusted') and e.data then\n"
    "      for k, v in pairs(e.data) do\n"
    "        if P[k] ~= nil and type(v) == 'number' then\n"
    "          if p == P then p = {}; for pk, pv in pairs(P) do p[pk] = pv end end\n"
    "          p[k] = v\n"
    "        end\n"
    "      end\n"
    "    end\n"
    "  end\n"
    "  local en = 0\n"
    "  for i = n, 1, -1 do\n"
    "    local e = h[i]\n"
    "    if e.type == 'enrolled' and e.data and e.data.program == 'ketamine' then en = i; break end\n"
    "  end\n"
    "  if en == 0 then return false, false end\n"
    "  local given, last, pre = 0, nil, nil\n"
    "  for i = en + 1, n do\n"
    "    local e = h[i]\n"
    "    local t = e.type\n"
    "    if t == 'discharged' then return false, false\n"
    "    elseif t == 'infusion' then given = given + 1; last = e\n"
    "    elseif t == 'vitals' then\n"
    "      local phase = e.data and e.data.phase\n"
    "      if phase == nil or phase == 'pre' then pre = i end\n"
    "    end\n"
    "  end\n"
    "  local due = last ~= nil and given < p.acute_infusions\n"
    "              and last.at + p.infusion_due_after <= now\n"
    "  local high = pre ~= nil\n"
    "  for i = pre or n + 1, n do\n"
    "    local e = h[i]\n"
    "    if e.type == 'vitals' and e.data.systolic < p.bp_systolic_max\n"
    "       and e.data.diastolic < p.bp_diastolic_max then high = false; break end\n"
    "  end\n"
    "  return due, high\n"
    "end\n";

/* [-0, +1] A JSON value as a Lua value (objects and arrays as tables; whole
 * numbers as integers, as the runtime hands them to rules). */
static void naive_push_json(lua_State *L, const cJSON *v)
{
    luaL_checkstack(L, 2, "naive: JSON nested too deep"); /* a value and its table, per level */
    const cJSON *x;
    if (cJSON_IsObject(v)) {
        lua_createtable(L, 0, 4);
        cJSON_ArrayForEach(x, v) {
            naive_push_json(L, x);
            lua_setfield(L, -2, x->string);
        }
    } else if (cJSON_IsArray(v)) {
        lua_Integer i = 0;
        lua_createtable(L, cJSON_GetArraySize(v), 0);
        cJSON_ArrayForEach(x, v) {
            naive_push_json(L, x);
            lua_rawseti(L, -2, ++i);
        }
    } else if (cJSON_IsString(v)) {
        lua_pushstring(L, v->valuestring);
    } else if (cJSON_IsNumber(v)) {
        double d = v->valuedouble;
        if (d == (double)(lua_Integer)d && d > -9007199254740992.0 && d < 9007199254740992.0)
            lua_pushinteger(L, (lua_Integer)d);
        else
            lua_pushnumber(L, d);
    } else if (cJSON_IsBool(v)) {
        lua_pushboolean(L, cJSON_IsTrue(v));
    } else {
        lua_pushnil(L);
    }
}

typedef struct naive_counts {
    long patients, due, high;
} naive_counts;

/* [-1, +0] Runs the rules on the history table on top of the stack (n events). */
static void naive_patient(lua_State *L, lua_Integer n, int64_t now, naive_counts *c)
{
    lua_getglobal(L, "rules");
    lua_insert(L, -2);
    lua_pushinteger(L, n);
    lua_pushinteger(L, now);
    if (lua_pcall(L, 3, 2, 0) != LUA_OK) {
        fprintf(stderr, "naive: rules: %s\n", lua_tostring(L, -1));
        exit(2);
    }
    c->due += lua_toboolean(L, -2);
    c->high += lua_toboolean(L, -1);
    c->patients++;
    lua_pop(L, 2);
}

static int naive_sweep(const char *path, const char *at)
{
    int ok;
    int64_t now = naive_time(at, &ok);
    if (!ok) {
        fprintf(stderr, "naive: not an RFC 3339 time: %s\n", at);
        return 2;
    }
    sqlite3 *db;
    if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY | SQLITE_OPEN_NOMUTEX, NULL) != SQLITE_OK)
        naive_die_db(db, path);
    /* the same cache as regimen's store and bench/bound.c: not a handicap */
    if (sqlite3_exec(db, "PRAGMA cache_size=-65536; PRAGMA mmap_size=268435456;", NULL, NULL,
                     NULL) != SQLITE_OK)
        naive_die_db(db, path);
    lua_State *L = luaL_newstate();
    if (!L)
        return 2;
    luaL_openlibs(L);
    if (luaL_dostring(L, naive_rules) != LUA_OK) {
        fprintf(stderr, "naive: %s\n", lua_tostring(L, -1));
        return 2;
    }
    double t0 = naive_now();
    sqlite3_stmt *s;
    /* rowid breaks ties of `at` in insertion order, as the engine's seq does;
     * the index (clinic, patient, at) carries the rowid, so no sort */
    if (sqlite3_prepare_v2(db, "SELECT clinic, patient, id, type, at, data FROM events"
                               " WHERE at <= ?1 ORDER BY clinic, patient, at, rowid",
                           -1, &s, NULL) != SQLITE_OK)
        naive_die_db(db, "scan");
    sqlite3_bind_int64(s, 1, now);
    char clinic[256] = "", patient[256] = "";
    naive_counts c = {0};
    lua_Integer n = 0;
    long events = 0;
    int rc;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        const char *cl = (const char *)sqlite3_column_text(s, 0);
        const char *pa = (const char *)sqlite3_column_text(s, 1);
        if (strcmp(cl, clinic) || strcmp(pa, patient)) {
            if (n > 0)
                naive_patient(L, n, now, &c);
            snprintf(clinic, sizeof clinic, "%s", cl);
            snprintf(patient, sizeof patient, "%s", pa);
            lua_createtable(L, 32, 0); /* the patient's history */
            n = 0;
        }
        lua_createtable(L, 0, 4);
        lua_pushstring(L, (const char *)sqlite3_column_text(s, 2));
        lua_setfield(L, -2, "id");
        lua_pushstring(L, (const char *)sqlite3_column_text(s, 3));
        lua_setfield(L, -2, "type");
        lua_pushinteger(L, sqlite3_column_int64(s, 4));
        lua_setfield(L, -2, "at");
        if (sqlite3_column_type(s, 5) != SQLITE_NULL) {
            cJSON *d = cJSON_ParseWithLength((const char *)sqlite3_column_text(s, 5),
                                             (size_t)sqlite3_column_bytes(s, 5));
            if (!d) {
                fprintf(stderr, "naive: event %s: data is not JSON\n",
                        (const char *)sqlite3_column_text(s, 2));
                return 2;
            }
            naive_push_json(L, d);
            cJSON_Delete(d);
        } else {
            lua_createtable(L, 0, 0);
        }
        lua_setfield(L, -2, "data");
        lua_rawseti(L, -2, ++n);
        events++;
    }
    if (rc != SQLITE_DONE)
        naive_die_db(db, "scan");
    if (n > 0)
        naive_patient(L, n, now, &c);
    double secs = naive_now() - t0;
    sqlite3_finalize(s);
    sqlite3_close(db);
    lua_close(L);
    printf("naive sweep patients=%ld events=%ld seconds=%.3f events_per_s=%.0f patients_per_s=%.0f"
           " infusion_due=%ld bp_high=%ld\n",
           c.patients, events, secs, secs > 0 ? (double)events / secs : 0,
           secs > 0 ? (double)c.patients / secs : 0, c.due, c.high);
    return 0;
}

int main(int argc, char **argv)
{
    /* as regimen does (rg_store_process_init): SQLite keeps no allocation
     * statistics, a global mutex at every malloc and free; the same
     * library set up the same way on both sides of the comparison */
    sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0);
    if (argc == 4 && !strcmp(argv[1], "ingest"))
        return naive_ingest(argv[2], argv[3]);
    if (argc == 4 && !strcmp(argv[1], "sweep"))
        return naive_sweep(argv[2], argv[3]);
    fprintf(stderr, "usage: naive ingest DB FILE | naive sweep DB AT\n");
    return 2;
}
