/*
 * clinic.c - loading a clinic's protocol directory into its sandbox (see
 * clinic.h).
 *
 * All Lua work happens inside protected calls (rg_pcall), under the same
 * limits as an evaluation, because a protocol's top-level code is the
 * clinic's code too. C copies what it needs by name only after the last call
 * that can raise. Tables a file returns are read raw (no metamethods) and
 * must not have a metatable: the loader reads them twice (to validate, then
 * to copy), and __index could answer differently the second time.
 * Depends on sandbox.c and the regimen module.
 */
#include "engine/clinic.h"

#include "bindings/bindings.h"
#include "core/digest.h"
#include "core/event.h"

#include <jansson.h>
#include <lauxlib.h>

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static const char rg__k_desc = 'd'; /* registry: list of protocol descriptions */
static const char rg__k_fhir = 'f'; /* registry: clinic.lua's fhir table, or absent */
static const char rg__k_notify = 'n'; /* registry: clinic.lua's notify table, or absent */
static const char rg__k_events = 'e'; /* registry: clinic.lua's events table, or absent */

/* FNV-1a of the file's bytes, as 16 hex digits: which text produced a rule. */
static int rg__hash_file(const char *path, char out[17])
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return RG_EIO;
    uint64_t h = RG_FNV1A_SEED;
    unsigned char buf[8192]; /* by blocks: a getc and a call per byte was 0.5% of a sweep */
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, f)) > 0)
        h = rg_fnv1a(h, buf, n);
    fclose(f);
    snprintf(out, 17, "%016llx", (unsigned long long)h);
    return RG_OK;
}

static int rg__cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Appends dir's top-level protocol files (sorted) to *files. */
static int rg__list_dir(const char *dir, char ***files, int *n, char *err, size_t errlen)
{
    DIR *d = opendir(dir);
    if (!d)
        return rg_fail(err, errlen, RG_EIO, "%s: cannot open protocol directory: %s", dir,
                       strerror(errno));
    int first = *n;
    struct dirent *de;
    while ((de = readdir(d))) {
        size_t len = strlen(de->d_name);
        if (len < 5 || strcmp(de->d_name + len - 4, ".lua") != 0 || de->d_name[0] == '.' ||
            !strcmp(de->d_name, "clinic.lua"))
            continue;
        char path[4096];
        struct stat sbuf;
        snprintf(path, sizeof path, "%s/%s", dir, de->d_name);
        if (stat(path, &sbuf) != 0 || !S_ISREG(sbuf.st_mode))
            continue;
        char **grown = realloc(*files, (size_t)(*n + 1) * sizeof **files);
        if (!grown || !(grown[*n] = strdup(path))) {
            if (grown)
                *files = grown;
            closedir(d);
            return rg_fail(err, errlen, RG_ENOMEM, "out of memory");
        }
        *files = grown;
        (*n)++;
    }
    closedir(d);
    if (*n > first)
        qsort(*files + first, (size_t)(*n - first), sizeof **files, rg__cmp);
    return RG_OK;
}

/* [-1, +1] Runs the chunk on top (a file's top-level code); an error that
 * does not say where (a memory error has no message handler) gets the file
 * named in front. */
static void rg__run_chunk(lua_State *L, const char *path)
{
    int status = lua_pcall(L, 0, 1, 0);
    if (status == LUA_OK)
        return;
    const char *msg = lua_tostring(L, -1);
    if (status == LUA_ERRMEM) {
        lua_pop(L, 1);
        lua_gc(L, LUA_GCCOLLECT); /* what the chunk built is garbage now */
        luaL_error(L, "%s: memory limit exceeded while loading", path);
    }
    if (msg && strstr(msg, path))
        lua_error(L);
    if (!msg)
        luaL_error(L, "%s: (error object is a %s value)", path, luaL_typename(L, -1));
    luaL_error(L, "%s: %s", path, msg);
}

/* [-0, +1] Pushes t[k], t at idx, without metamethods; returns its type. */
static int rg__rawfield(lua_State *L, int idx, const char *k)
{
    idx = lua_absindex(L, idx);
    lua_pushstring(L, k);
    return lua_rawget(L, idx);
}

/* [-1, +0] Copies the fields of the table on top (if it is one) into the
 * table below it, raw, and pops it. */
static void rg__copy_fields(lua_State *L)
{
    if (lua_type(L, -1) == LUA_TTABLE) {
        lua_pushnil(L);
        while (lua_next(L, -2)) {
            lua_pushvalue(L, -2);
            lua_insert(L, -2);
            lua_rawset(L, -5);
        }
    }
    lua_pop(L, 1);
}

/* Raises if the value at idx is a table with a metatable (see the top). */
static void rg__plain(lua_State *L, int idx, const char *path, const char *what)
{
    if (lua_type(L, idx) == LUA_TTABLE && lua_getmetatable(L, idx))
        luaL_error(L, "%s: %s must be a plain table, without a metatable", path, what);
}

/* Raises unless the protocol table on top, its rules list, each rule and its
 * plan_events and params tables are plain. */
static void rg__plain_protocol(lua_State *L, const char *path)
{
    static const char *const fields[] = {"rules", "plan_events", "params"};
    char what[64];
    int p = lua_gettop(L);
    rg__plain(L, p, path, "the protocol table");
    if (lua_type(L, p) != LUA_TTABLE)
        return;
    for (int i = 0; i < 3; i++) {
        snprintf(what, sizeof what, "field '%s'", fields[i]);
        rg__rawfield(L, p, fields[i]);
        rg__plain(L, -1, path, what);
        lua_pop(L, 1);
    }
    if (rg__rawfield(L, p, "rules") == LUA_TTABLE) {
        lua_Integer n = (lua_Integer)lua_rawlen(L, -1);
        for (lua_Integer r = 1; r <= n; r++) {
            lua_rawgeti(L, -1, r);
            snprintf(what, sizeof what, "rules[%lld]", (long long)r);
            rg__plain(L, -1, path, what);
            lua_pop(L, 1);
        }
    }
    lua_settop(L, p);
}

static int rg__read_settings(lua_State *L);

/* The first line of path holding needle (1-based), 0 if none: Lua keeps no
 * line for a table field, so a settings error finds its text instead. */
static int rg__line_of(const char *path, const char *needle)
{
    FILE *f = fopen(path, "r");
    char line[1024];
    int n = 0, found = 0;
    while (f && !found && fgets(line, sizeof line, f))
        n++, found = strstr(line, needle) != NULL;
    if (f)
        fclose(f);
    return found ? n : 0;
}

/* Raises "clinic.lua:LINE: key: message", the line being where needle is. */
static int rg__setting_error(lua_State *L, const char *path, const char *needle,
                             const char *fmt, ...) __attribute__((format(printf, 4, 5)));
static int rg__setting_error(lua_State *L, const char *path, const char *needle,
                             const char *fmt, ...)
{
    char msg[600];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    int line = rg__line_of(path, needle);
    if (line)
        return luaL_error(L, "%s:%d: %s", path, line, msg);
    return luaL_error(L, "%s: %s", path, msg);
}

static int rg__cmp_day(const void *a, const void *b)
{
    int32_t x = *(const int32_t *)a, y = *(const int32_t *)b;
    return (x > y) - (x < y);
}

/* [-0, +0] Reads the clinic's time settings from the settings table t
 * (timezone, hours, closures, notify_at_once) and installs the calendar in
 * the registry; raises naming the file, line and key. */
static void rg__read_calendar(lua_State *L, int t, const char *path)
{
    static const char *const wd[7] = {"mon", "tue", "wed", "thu", "fri", "sat", "sun"};
    rg_calendar cal;
    rg_calendar_default(&cal);
    char err[300];
    int ty = rg__rawfield(L, t, "timezone");
    if (ty != LUA_TNIL) {
        if (ty != LUA_TSTRING)
            rg__setting_error(L, path, "timezone", "timezone must be an IANA zone name such as "
                              "\"America/New_York\", not %s", luaL_typename(L, -1));
        if (rg_zone_get(&cal.zone, lua_tostring(L, -1), err, sizeof err))
            rg__setting_error(L, path, "timezone", "timezone: %s", err);
    }
    lua_pop(L, 1);
    ty = rg__rawfield(L, t, "hours");
    rg__plain(L, -1, path, "'hours'");
    if (ty != LUA_TNIL) {
        if (ty != LUA_TTABLE)
            rg__setting_error(L, path, "hours", "hours must be a table such as { mon = "
                              "{\"08:00\", \"18:00\"}, ..., sun = false }");
        cal.has_hours = 1;
        for (int i = 0; i < 7; i++)
            cal.open[i] = cal.close[i] = -1; /* a day not named is closed */
        lua_pushnil(L);
        while (lua_next(L, -2)) {
            const char *k = lua_type(L, -2) == LUA_TSTRING ? lua_tostring(L, -2) : "";
            int d = 0;
            while (d < 7 && strcmp(k, wd[d]))
                d++;
            if (d == 7)
                rg__setting_error(L, path, *k ? k : "hours", "hours: unknown day '%s' (days are mon, tue, "
                                  "wed, thu, fri, sat, sun)", luaL_tolstring(L, -2, NULL));
            if (lua_type(L, -1) == LUA_TBOOLEAN && !lua_toboolean(L, -1)) {
                lua_pop(L, 1);
                continue;
            }
            const char *o = NULL, *c = NULL;
            if (lua_type(L, -1) == LUA_TTABLE && lua_rawlen(L, -1) == 2) {
                lua_rawgeti(L, -1, 1);
                lua_rawgeti(L, -2, 2);
                o = lua_tostring(L, -2);
                c = lua_tostring(L, -1);
                lua_pop(L, 2); /* the table keeps them */
            }
            if (!o || !c || rg_calendar_parse_clock(o, 0) < 0 || rg_calendar_parse_clock(c, 1) < 0)
                rg__setting_error(L, path, k, "hours.%s must be {\"HH:MM\", \"HH:MM\"} "
                                  "(opening, closing; \"24:00\" for midnight) or false", k);
            cal.open[d] = rg_calendar_parse_clock(o, 0);
            cal.close[d] = rg_calendar_parse_clock(c, 1);
            if (cal.close[d] <= cal.open[d])
                rg__setting_error(L, path, k, "hours.%s: closing %s is not after opening %s",
                                  k, c, o);
            lua_pop(L, 1);
        }
    }
    lua_pop(L, 1);
    ty = rg__rawfield(L, t, "closures");
    rg__plain(L, -1, path, "'closures'");
    if (ty != LUA_TNIL) {
        if (ty != LUA_TTABLE)
            rg__setting_error(L, path, "closures", "closures must be a list of local dates "
                              "such as {\"2026-12-25\"}");
        lua_Integer n = (lua_Integer)lua_rawlen(L, -1);
        if (n > RG_CAL_MAX_CLOSURES)
            rg__setting_error(L, path, "closures", "closures: at most %d days",
                              RG_CAL_MAX_CLOSURES);
        for (lua_Integer i = 1; i <= n; i++) {
            lua_rawgeti(L, -1, i);
            const char *d = lua_tostring(L, -1);
            rg_time at;
            char full[40];
            snprintf(full, sizeof full, "%.10sT00:00:00Z", d ? d : "");
            if (lua_type(L, -1) != LUA_TSTRING || strlen(d) != 10 ||
                rg_time_parse(full, strlen(full), &at, NULL, err, sizeof err))
                rg__setting_error(L, path, d && lua_type(L, -1) == LUA_TSTRING ? d : "closures",
                                  "closures[%d] must be a date \"YYYY-MM-DD\" that exists%s%s",
                                  (int)i, d ? ", not " : "", d ? d : "");
            cal.closed[cal.nclosed++] = (int32_t)(at / RG_MS_DAY);
            lua_pop(L, 1);
        }
        qsort(cal.closed, (size_t)cal.nclosed, sizeof *cal.closed, rg__cmp_day);
    }
    lua_pop(L, 1);
    ty = rg__rawfield(L, t, "notify_at_once");
    rg__plain(L, -1, path, "'notify_at_once'");
    if (ty != LUA_TNIL) {
        if (ty != LUA_TTABLE)
            rg__setting_error(L, path, "notify_at_once", "notify_at_once must be a list of "
                              "severities such as {\"critical\"}");
        cal.at_once = 0;
        for (lua_Integer i = 1; lua_rawgeti(L, -1, i) != LUA_TNIL; i++) {
            const char *sv = lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1) : "";
            if (!rg_calendar_severity_bit(sv))
                rg__setting_error(L, path, "notify_at_once", "notify_at_once[%d] must be "
                                  "\"info\", \"warning\" or \"critical\"", (int)i);
            cal.at_once |= rg_calendar_severity_bit(sv);
            lua_pop(L, 1);
        }
        lua_pop(L, 1);
    }
    lua_pop(L, 1);
    rg_calendar_install(L, &cal);
}

/* [-2, +2] (settings path|NULL, overrides JSON|NULL, as light userdata: no
 * Lua call outside the protected call) Loads clinic.lua, merges the
 * overrides into its params and seals its globals. Returns the settings
 * table and its include list (or an empty one). */
static int rg__load_settings(lua_State *L)
{
    const char *path = lua_touserdata(L, 1), *overrides = lua_touserdata(L, 2);
    lua_settop(L, 0);
    lua_pushcfunction(L, rg__read_settings);
    if (path)
        lua_pushstring(L, path);
    else
        lua_pushnil(L);
    lua_call(L, 1, 1); /* 1: settings */
    if (overrides) {
        if (rg__rawfield(L, 1, "params") != LUA_TTABLE) {
            lua_pop(L, 1);
            lua_newtable(L);
            lua_pushvalue(L, -1);
            lua_setfield(L, 1, "params");
        }
        rg_json_push(L, overrides);
        rg__copy_fields(L);
        lua_settop(L, 1);
    }
    if (rg__rawfield(L, 1, "include") != LUA_TTABLE) {
        lua_pop(L, 1);
        lua_newtable(L);
    }
    rg_sandbox_seal(rg_sandbox_of(L));
    return 2;
}

/* [-0, +0, e] Checks clinic.lua's fhir = { codes = { list = {"system|code", ...} },
 * map = function(resource, event) ... end } and keeps it in the registry. */
static void rg__check_fhir(lua_State *L, int t, const char *path)
{
    int ft = rg__rawfield(L, t, "fhir");
    if (ft == LUA_TNIL) {
        lua_pop(L, 1);
        return;
    }
    int f = lua_gettop(L);
    rg__plain(L, f, path, "'fhir'");
    if (ft != LUA_TTABLE)
        luaL_error(L, "%s: 'fhir' must be a table like { codes = { followup_visit = "
                      "{\"http://snomed.info/sct|390906007\"} }, map = function(resource, "
                      "event) ... end }", path);
    for (lua_pushnil(L); lua_next(L, f); lua_pop(L, 1)) {
        const char *k = lua_type(L, -2) == LUA_TSTRING ? lua_tostring(L, -2) : "";
        if (strcmp(k, "codes") && strcmp(k, "map"))
            luaL_error(L, "%s: fhir: unknown field '%s' (known: codes, map)", path,
                       luaL_tolstring(L, -2, NULL));
    }
    int mt = rg__rawfield(L, f, "map");
    if (mt != LUA_TNIL && mt != LUA_TFUNCTION)
        luaL_error(L, "%s: fhir.map must be a function(resource, event)", path);
    lua_pop(L, 1);
    int ct = rg__rawfield(L, f, "codes");
    rg__plain(L, -1, path, "'fhir.codes'");
    if (ct != LUA_TNIL && ct != LUA_TTABLE)
        luaL_error(L, "%s: fhir.codes must be a table of list name -> {\"system|code\", ...}",
                   path);
    for (lua_pushnil(L); ct == LUA_TTABLE && lua_next(L, f + 1); lua_pop(L, 1)) {
        const char *k = lua_type(L, -2) == LUA_TSTRING ? lua_tostring(L, -2) : "";
        int known = 0;
        for (int i = 0; i < RG_FHIR_NLISTS; i++)
            known |= !strcmp(k, rg_fhir_list_name[i]);
        if (!known)
            luaL_error(L, "%s: fhir.codes: no code list named '%s' (known: ketamine, infusion, "
                          "enrolled, discharged, preparation_session, integration_session, "
                          "followup_visit, pcl5)", path, luaL_tolstring(L, -2, NULL));
        rg__plain(L, -1, path, "a list in 'fhir.codes'");
        if (lua_type(L, -1) != LUA_TTABLE)
            luaL_error(L, "%s: fhir.codes.%s must be a list of \"system|code\" strings", path, k);
        lua_Integer n = (lua_Integer)lua_rawlen(L, -1);
        for (lua_Integer i = 1; i <= n; i++)
            if (lua_rawgeti(L, -1, i) != LUA_TSTRING || !lua_rawlen(L, -1))
                luaL_error(L, "%s: fhir.codes.%s[%I] must be a string like "
                              "\"http://snomed.info/sct|390906007\" or a bare code", path, k, i);
            else
                lua_pop(L, 1);
    }
    lua_settop(L, f);
    lua_rawsetp(L, LUA_REGISTRYINDEX, &rg__k_fhir);
}

/* [-0, +0, e] Checks clinic.lua's events = { type = { "field", ... }, ... }:
 * the clinic's own event types, and data fields it adds to known ones, that
 * `regimen check` accepts besides lib/events.lua's. Keeps it in the registry
 * (rg_clinic_push_events). */
static void rg__check_events(lua_State *L, int t, const char *path)
{
    int ty = rg__rawfield(L, t, "events"), e = lua_gettop(L);
    rg__plain(L, e, path, "'events'");
    if (ty != LUA_TNIL && ty != LUA_TTABLE)
        rg__setting_error(L, path, "events", "events must be a table of event type -> its data "
                          "fields, such as { vitals = { \"spo2\" }, phone_call = {} }");
    for (lua_pushnil(L); ty == LUA_TTABLE && lua_next(L, e); lua_pop(L, 1)) {
        const char *k = lua_type(L, -2) == LUA_TSTRING ? lua_tostring(L, -2) : "";
        if (!*k || strlen(k) > RG_EVENT_MAX_TYPE)
            rg__setting_error(L, path, "events", "events: a key must be an event type such as "
                              "phone_call (at most %d bytes), not %s", RG_EVENT_MAX_TYPE,
                              luaL_tolstring(L, -2, NULL));
        rg__plain(L, -1, path, "a list in 'events'");
        if (lua_type(L, -1) != LUA_TTABLE)
            rg__setting_error(L, path, k, "events.%s must be a list of data field names such as "
                              "{ \"spo2\" } ({} for none), not %s", k, luaL_typename(L, -1));
        lua_Integer n = (lua_Integer)lua_rawlen(L, -1);
        for (lua_pushnil(L); lua_next(L, -2); lua_pop(L, 1)) {
            if (!lua_isinteger(L, -2) || lua_tointeger(L, -2) < 1 || lua_tointeger(L, -2) > n) {
                const char *bad = luaL_tolstring(L, -2, NULL);
                rg__setting_error(L, path, lua_type(L, -3) == LUA_TSTRING ? bad : k,
                                  "events.%s: unknown key '%s' (a type's data fields are a "
                                  "list: %s = { \"spo2\", \"pulse\" })", k, bad, k);
            }
            if (lua_type(L, -1) != LUA_TSTRING || !lua_rawlen(L, -1))
                rg__setting_error(L, path, k, "events.%s[%d] must be a data field name such as "
                                  "\"spo2\", not %s", k, (int)lua_tointeger(L, -2),
                                  lua_type(L, -1) == LUA_TSTRING ? "\"\"" : luaL_typename(L, -1));
        }
    }
    lua_settop(L, e);
    lua_rawsetp(L, LUA_REGISTRYINDEX, &rg__k_events);
}

/* [-1, +1] (settings_path|nil) Reads clinic.lua, or gives an empty table. */
static int rg__read_settings(lua_State *L)
{
    static const char *const known[] = {"include", "params", "description", "fhir",
                                        "timezone", "hours", "closures", "notify_at_once",
                                        "notify", "events", NULL};
    rg_sandbox *sb = rg_sandbox_of(L);
    const char *path = lua_tostring(L, 1);
    if (!path) {
        lua_newtable(L);
        return 1;
    }
    char why[1024];
    if (rg_sandbox_loadfile(sb, path, why, sizeof why))
        return luaL_error(L, "%s", why);
    rg__run_chunk(L, path);
    if (lua_type(L, -1) != LUA_TTABLE)
        return luaL_error(L, "%s: clinic settings must return a table like "
                             "{ include = {\"ketamine\"}, params = { ... } }", path);
    int t = lua_gettop(L);
    rg__plain(L, t, path, "the settings table");
    lua_pushnil(L);
    while (lua_next(L, t)) {
        lua_pop(L, 1);
        int ok = 0;
        for (int i = 0; known[i] && lua_type(L, -1) == LUA_TSTRING; i++)
            ok |= !strcmp(lua_tostring(L, -1), known[i]);
        if (!ok)
            return luaL_error(L, "%s: unknown setting '%s' (known: include, params, "
                                 "description, fhir, timezone, hours, closures, "
                                 "notify_at_once, notify, events)", path,
                              luaL_tolstring(L, -1, NULL));
    }
    int it = rg__rawfield(L, t, "include");
    rg__plain(L, -1, path, "'include'");
    if (it != LUA_TNIL && it != LUA_TTABLE)
        return luaL_error(L, "%s: 'include' must be a list of shipped protocol sets, like "
                             "{\"ketamine\"}", path);
    if (it == LUA_TTABLE) {
        for (lua_Integer i = 1; lua_rawgeti(L, -1, i) != LUA_TNIL; i++) {
            const char *s = lua_tostring(L, -1);
            if (lua_type(L, -1) != LUA_TSTRING || !*s || strchr(s, '/') || s[0] == '.')
                return luaL_error(L, "%s: include[%I] must be the name of a shipped protocol "
                                     "set such as \"ketamine\"", path, i);
            lua_pop(L, 1);
        }
        lua_pop(L, 1);
    }
    lua_pop(L, 1);
    it = rg__rawfield(L, t, "params");
    rg__plain(L, -1, path, "'params'");
    if (it != LUA_TNIL && it != LUA_TTABLE)
        return luaL_error(L, "%s: 'params' must be a table of protocol id -> { name = value }",
                          path);
    for (lua_pushnil(L); it == LUA_TTABLE && lua_next(L, t + 1); lua_pop(L, 1))
        rg__plain(L, -1, path, "a protocol's table in 'params'");
    lua_settop(L, t);
    rg__check_fhir(L, t, path);
    rg__check_events(L, t, path);
    rg__read_calendar(L, t, path);
    it = rg__rawfield(L, t, "notify"); /* checked in C by rg__mirror_notify */
    rg__plain(L, -1, path, "'notify'");
    lua_rawsetp(L, LUA_REGISTRYINDEX, &rg__k_notify);
    return 1;
}

/* Lists the parameter names of the table at idx, for error messages. */
static const char *rg__names(lua_State *L, int idx)
{
    luaL_Buffer b;
    luaL_buffinit(L, &b);
    lua_pushnil(L);
    while (lua_next(L, idx)) {
        lua_pop(L, 1);
        if (luaL_bufflen(&b))
            luaL_addstring(&b, ", ");
        lua_pushvalue(L, -1);
        luaL_addvalue(&b);
    }
    luaL_pushresult(&b);
    return lua_tostring(L, -1);
}

/* Does line assign name ("name =", "["name"] =", not "==")? */
static int rg__assigns(const char *line, const char *name)
{
    size_t n = strlen(name);
    for (const char *s = line; (s = strstr(s, name)); s++) {
        const char *e = s + n;
        if ((s > line && (isalnum((unsigned char)s[-1]) || s[-1] == '_')) ||
            isalnum((unsigned char)*e) || *e == '_')
            continue;
        if (*e == '"' || *e == '\'')
            e += 1 + (e[1] == ']');
        while (*e == ' ' || *e == '\t')
            e++;
        if (*e == '=' && e[1] != '=')
            return 1;
    }
    return 0;
}

/* The clinic.lua line (1-based, 0 if not found) that sets parameter name:
 * the first assignment of it at or after the line naming the protocol id pid
 * (["ketamine.acute"] = { ... }), or anywhere when pid is NULL. Lua keeps no
 * line for a table constructor's fields, so the text is read; comments are
 * left out. */
static int rg__param_line(const char *path, const char *pid, const char *name)
{
    FILE *f = fopen(path, "r");
    char line[2048], quoted[2][200];
    int n = 0, found = 0, armed = pid == NULL;
    if (pid) {
        snprintf(quoted[0], sizeof quoted[0], "\"%s\"", pid);
        snprintf(quoted[1], sizeof quoted[1], "'%s'", pid);
    }
    while (f && !found && fgets(line, sizeof line, f)) {
        n++;
        char *c = strstr(line, "--");
        if (c)
            *c = '\0';
        if (!armed && (strstr(line, quoted[0]) || strstr(line, quoted[1]) ||
                       rg__assigns(line, pid)))
            armed = 1;
        found = armed && rg__assigns(line, name);
    }
    if (f)
        fclose(f);
    return found ? n : 0;
}

/* Raises "where:LINE: params[ for 'pid']: message", the line being the one
 * that sets name (see rg__param_line). */
static int rg__param_error(lua_State *L, const char *where, const char *pid, const char *name,
                           const char *fmt, ...) __attribute__((format(printf, 5, 6)));
static int rg__param_error(lua_State *L, const char *where, const char *pid, const char *name,
                           const char *fmt, ...)
{
    char msg[1200], at[32] = "";
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    int line = rg__param_line(where, pid, name);
    if (line)
        snprintf(at, sizeof at, ":%d", line);
    if (pid)
        return luaL_error(L, "%s%s: params for '%s': %s", where, at, pid, msg);
    return luaL_error(L, "%s%s: params: %s", where, at, msg);
}

/* " (did you mean 'x'?)" for word among the parameter names of the
 * descriptions in list (of protocol pid only, when given), or among the
 * protocol ids (ids = 1); "" when none is close. */
static const char *rg__near(lua_State *L, int list, const char *pid, const char *word, int ids)
{
    const char *cands[512];
    size_t nc = 0;
    lua_Integer n = (lua_Integer)lua_rawlen(L, list);
    for (lua_Integer i = 1; i <= n; i++) {
        lua_rawgeti(L, list, i);
        const char *id = (rg__rawfield(L, -1, "id"), lua_tostring(L, -1));
        lua_pop(L, 1);
        if (ids && nc < 512) {
            cands[nc++] = id; /* kept alive by the list */
        } else if (!ids && (!pid || !strcmp(pid, id))) {
            rg__rawfield(L, -1, "kinds");
            for (lua_pushnil(L); lua_next(L, -2); lua_pop(L, 1))
                if (nc < 512)
                    cands[nc++] = lua_tostring(L, -2);
            lua_pop(L, 1);
        }
        lua_pop(L, 1);
    }
    const char *best = rg_suggest(word, cands, nc);
    if (!best)
        return "";
    lua_pushfstring(L, " (did you mean '%s'?)", best);
    return lua_tostring(L, -1);
}

/* [-0, +1] The declaration of name in the first protocol of list that
 * declares it shared (R.param { shared = ... }), or nil. */
static void rg__shared_decl(lua_State *L, int list, const char *name)
{
    lua_Integer n = (lua_Integer)lua_rawlen(L, list);
    for (lua_Integer i = 1; i <= n; i++) {
        lua_rawgeti(L, list, i);
        rg__rawfield(L, -1, "kinds");
        if (rg__rawfield(L, -1, name) == LUA_TTABLE) {
            lua_pushliteral(L, "shared");
            if (lua_rawget(L, -2) != LUA_TNIL) {
                lua_pop(L, 1);
                lua_replace(L, -3);
                lua_pop(L, 1);
                return;
            }
            lua_pop(L, 1);
        }
        lua_pop(L, 3);
    }
    lua_pushnil(L);
}

/* [-0, +0] A parameter the course shares must mean the same in every
 * protocol that has it: one declaring it with another kind or default would
 * disagree with the others about where the course stands. Raises naming the
 * file. */
static void rg__check_shared(lua_State *L, int list)
{
    lua_Integer n = (lua_Integer)lua_rawlen(L, list);
    for (lua_Integer i = 1; i <= n; i++) {
        lua_rawgeti(L, list, i);
        int d = lua_gettop(L);
        rg__rawfield(L, d, "kinds");
        for (lua_pushnil(L); lua_next(L, d + 1); lua_pop(L, 1)) {
            const char *name = lua_tostring(L, -2);
            rg__shared_decl(L, list, name);
            if (lua_type(L, -1) == LUA_TTABLE) {
                rg__rawfield(L, -1, "kind");
                rg__rawfield(L, -3, "kind");
                rg__rawfield(L, -3, "default");
                rg__rawfield(L, -5, "default");
                if (!lua_rawequal(L, -4, -3) || !lua_rawequal(L, -2, -1)) {
                    int top = lua_gettop(L);
                    char sd[64], vd[64];
                    const char *sk = lua_tostring(L, top - 3), *vk = lua_tostring(L, top - 2);
                    snprintf(sd, sizeof sd, "%s", luaL_tolstring(L, top - 1, NULL));
                    snprintf(vd, sizeof vd, "%s", luaL_tolstring(L, top, NULL));
                    rg__rawfield(L, d, "file");
                    luaL_error(L, "%s: parameter '%s' is shared by the course (a %s, default "
                               "%s) but declared here as a %s with default %s: declare it as "
                               "course.params.%s (lib/course.lua)", lua_tostring(L, -1), name,
                               sk ? sk : "?", sd, vk ? vk : "?", vd, name);
                }
                lua_pop(L, 4);
            }
            lua_pop(L, 1);
        }
        lua_settop(L, d - 1);
    }
}

/* Sets the parameter name of description desc to the value on top (popped),
 * checked against its declared kind; pid: the protocol's own block in
 * clinic.lua (["ketamine.acute"] = { ... }), NULL for a name at the top of
 * params. Records where it was set, for `check --describe`. */
static void rg__override(lua_State *L, int list, int desc, const char *name, const char *pid,
                         const char *where)
{
    int v = lua_gettop(L);
    rg__rawfield(L, desc, "kinds");
    if (rg__rawfield(L, v + 1, name) == LUA_TNIL)
        rg__param_error(L, where, pid, name, "no parameter named '%s'%s (known: %s)", name,
                        rg__near(L, list, pid, name, 0), rg__names(L, v + 1));
    int decl = v + 2;
    lua_pushliteral(L, "shared");
    lua_rawget(L, decl);
    if (pid && lua_isnil(L, -1)) { /* shared by the course for another protocol: so here too */
        lua_pop(L, 1);
        rg__shared_decl(L, list, name);
        if (lua_type(L, -1) == LUA_TTABLE) {
            lua_pushliteral(L, "shared");
            lua_rawget(L, -2);
            lua_remove(L, -2);
        }
    }
    if (pid && lua_isstring(L, -1)) {
        luaL_Buffer b;
        luaL_buffinit(L, &b);
        lua_Integer n = (lua_Integer)lua_rawlen(L, list);
        for (lua_Integer i = 1; i <= n; i++) {
            lua_rawgeti(L, list, i);
            rg__rawfield(L, -1, "kinds");
            int has = rg__rawfield(L, -1, name) != LUA_TNIL;
            rg__rawfield(L, -3, "id");
            lua_replace(L, -4);
            lua_pop(L, 2);
            if (has) {
                if (luaL_bufflen(&b))
                    luaL_addstring(&b, ", ");
                luaL_addvalue(&b);
            } else {
                lua_pop(L, 1);
            }
        }
        luaL_pushresult(&b);
        char shown[64];
        snprintf(shown, sizeof shown, "%s", luaL_tolstring(L, v, NULL));
        lua_pop(L, 1);
        rg__param_error(L, where, pid, name, "'%s' is a %s parameter, shared by %s: set it "
                        "once for all of them at the top of params (%s = %s), not under "
                        "[\"%s\"]", name, lua_tostring(L, -2), lua_tostring(L, -1), name,
                        lua_type(L, v) == LUA_TSTRING ? "\"...\"" : shown, pid);
    }
    lua_pop(L, 1);
    char why[600];
    if (!rg_param_fits(L, decl, v, 0, why, sizeof why))
        rg__param_error(L, where, pid, name, "'%s' %s", name, why);
    rg__rawfield(L, desc, "params");
    lua_pushvalue(L, v);
    lua_setfield(L, -2, name);
    rg__rawfield(L, desc, "set");
    int line = rg__param_line(where, pid, name);
    lua_pushfstring(L, line ? "%s:%d" : "%s", where, line);
    lua_setfield(L, -2, name);
    lua_settop(L, v - 1);
}

/* [-0, +0] Applies settings.params to the descriptions in list. A table value
 * keyed by a protocol id overrides that protocol; a plain value overrides the
 * parameter of that name in every protocol that has it (the only way to set a
 * shared parameter, declared with shared = ...). */
static void rg__apply_overrides(lua_State *L, int settings, int list, const char *where)
{
    if (rg__rawfield(L, settings, "params") != LUA_TTABLE) {
        lua_pop(L, 1);
        return;
    }
    int ov = lua_gettop(L);
    lua_Integer n = (lua_Integer)lua_rawlen(L, list);
    lua_pushnil(L);
    while (lua_next(L, ov)) {
        if (lua_type(L, -2) != LUA_TSTRING)
            luaL_error(L, "%s: params keys must be parameter names or protocol ids", where);
        const char *key = lua_tostring(L, -2);
        int vals = lua_gettop(L), hits = 0;
        for (lua_Integer i = 1; i <= n; i++) {
            lua_rawgeti(L, list, i);
            int desc = lua_gettop(L);
            rg__rawfield(L, desc, "id");
            const char *pid = lua_tostring(L, -1);
            if (lua_type(L, vals) == LUA_TTABLE && !strcmp(pid, key)) {
                hits++;
                lua_pushnil(L);
                while (lua_next(L, vals)) {
                    if (lua_type(L, -2) != LUA_TSTRING)
                        luaL_error(L, "%s: params for '%s': names must be strings", where, pid);
                    rg__override(L, list, desc, lua_tostring(L, -2), pid, where); /* pops it */
                }
            } else if (lua_type(L, vals) != LUA_TTABLE) {
                rg__rawfield(L, desc, "kinds");
                int has = rg__rawfield(L, -1, key) != LUA_TNIL;
                lua_pop(L, 2);
                if (has) {
                    hits++;
                    lua_pushvalue(L, vals);
                    rg__override(L, list, desc, key, NULL, where);
                }
            }
            lua_settop(L, vals);
        }
        if (!hits && lua_type(L, vals) == LUA_TTABLE) {
            int line = rg__line_of(where, key);
            luaL_error(L, "%s%s%s: params for '%s': no protocol with that id is loaded%s", where,
                       line ? ":" : "", line ? lua_pushfstring(L, "%d", line) : "", key,
                       rg__near(L, list, NULL, key, 1));
        }
        if (!hits)
            rg__param_error(L, where, NULL, key, "no loaded protocol has a parameter named "
                            "'%s'%s", key, rg__near(L, list, NULL, key, 0));
        lua_pop(L, 1);
    }
    lua_pop(L, 1);
}

/* [-4, +1] (settings, char **files, nfiles, where; files and where as light
 * userdata) Loads and validates every protocol file, builds the description
 * list and keeps it in the registry. */
static int rg__load_protocols(lua_State *L)
{
    rg_sandbox *sb = rg_sandbox_of(L);
    int settings = 1;
    char **files = lua_touserdata(L, 2);
    lua_Integer nfiles = lua_tointeger(L, 3);
    const char *where = lua_touserdata(L, 4);
    lua_settop(L, 1);
    lua_newtable(L);
    int list = lua_gettop(L);
    lua_newtable(L); /* rule id -> "file:line", to catch duplicates */
    int seen = lua_gettop(L);
    for (lua_Integer f = 1; f <= nfiles; f++) {
        const char *path = lua_pushstring(L, files[f - 1]);
        char why[1024];
        if (rg_sandbox_loadfile(sb, path, why, sizeof why))
            return luaL_error(L, "%s", why);
        rg__run_chunk(L, path);
        rg__plain_protocol(L, path);
        lua_pushcfunction(L, rg_protocol_validate);
        lua_insert(L, -2);
        if (lua_pcall(L, 1, 1, 0) != LUA_OK) {
            const char *m = lua_tostring(L, -1);
            if (m && strncmp(m, path, strlen(path)) != 0)
                return luaL_error(L, "%s: %s", path, m);
            return lua_error(L);
        }
        int p = lua_gettop(L);
        lua_createtable(L, 0, 10); /* the description */
        int d = p + 1;
        rg__rawfield(L, p, "id");
        for (lua_Integer i = 1; i < f; i++) {
            lua_rawgeti(L, list, i);
            rg__rawfield(L, -1, "id");
            if (lua_rawequal(L, -1, -3)) {
                rg__rawfield(L, -2, "file");
                return luaL_error(L, "%s: protocol id '%s' is already used by %s", path,
                                  lua_tostring(L, -2), lua_tostring(L, -1));
            }
            lua_pop(L, 2);
        }
        lua_setfield(L, d, "id");
        rg__rawfield(L, p, "version");
        lua_setfield(L, d, "version");
        rg__rawfield(L, p, "description");
        lua_setfield(L, d, "description");
        lua_pushvalue(L, p - 1); /* the path */
        lua_setfield(L, d, "file");
        rg__rawfield(L, p, "applies");
        lua_setfield(L, d, "applies");
        lua_newtable(L); /* params: the defaults (the protocol's own table stays untouched) */
        lua_newtable(L); /* kinds: name -> declaration (bindings.h, rg_param_declare) */
        if (rg__rawfield(L, p, "params") == LUA_TTABLE)
            for (lua_pushnil(L); lua_next(L, -2); lua_pop(L, 1)) {
                rg_param_declare(L, -1, lua_tostring(L, -2)); /* key, value, decl */
                lua_getfield(L, -1, "default");
                lua_pushvalue(L, -4);
                lua_insert(L, -2);
                lua_rawset(L, -8); /* params[key] = default */
                lua_pushvalue(L, -3);
                lua_insert(L, -2);
                lua_rawset(L, -6); /* kinds[key] = decl */
            }
        lua_pop(L, 1);
        lua_setfield(L, d, "kinds");
        lua_setfield(L, d, "params");
        lua_newtable(L); /* set: name -> "clinic.lua:LINE" where the clinic set it */
        lua_setfield(L, d, "set");
        lua_newtable(L); /* plan event types, as a list */
        if (rg__rawfield(L, p, "plan_events") == LUA_TTABLE) {
            for (lua_Integer i = 1; lua_rawgeti(L, -1, i) != LUA_TNIL; i++)
                lua_rawseti(L, -3, i);
            lua_pop(L, 1);
        } else {
            lua_pushliteral(L, "enrolled");
            lua_rawseti(L, -3, 1);
            lua_pushliteral(L, "plan_adjusted");
            lua_rawseti(L, -3, 2);
        }
        lua_pop(L, 1);
        lua_setfield(L, d, "plan");
        lua_newtable(L); /* rules */
        rg__rawfield(L, p, "rules");
        lua_Integer nr = (lua_Integer)lua_rawlen(L, -1);
        for (lua_Integer r = 1; r <= nr; r++) {
            lua_rawgeti(L, -1, r);
            lua_createtable(L, 0, 4);
            rg__rawfield(L, -2, "id");
            const char *rid = lua_tostring(L, -1);
            rg__rawfield(L, -3, "check");
            lua_Debug ar;
            lua_pushvalue(L, -1);
            lua_getinfo(L, ">S", &ar);
            char at[300];
            snprintf(at, sizeof at, "%s:%d", ar.short_src, ar.linedefined);
            if (lua_getfield(L, seen, rid) == LUA_TSTRING)
                return luaL_error(L, "%s: rule id '%s' is already defined at %s", at, rid,
                                  lua_tostring(L, -1));
            lua_pop(L, 1);
            lua_pushstring(L, at);
            lua_setfield(L, seen, rid);
            lua_setfield(L, -3, "check");
            lua_setfield(L, -2, "id");
            rg__rawfield(L, -2, "severity");
            lua_setfield(L, -2, "severity");
            rg__rawfield(L, -2, "description"); /* for `check --describe` */
            lua_setfield(L, -2, "description");
            lua_pushstring(L, at);
            lua_setfield(L, -2, "where");
            lua_rawseti(L, -4, r);
            lua_pop(L, 1);
        }
        lua_pop(L, 1);
        lua_setfield(L, d, "rules");
        lua_rawseti(L, list, f);
        lua_settop(L, seen);
    }
    rg__check_shared(L, list);
    rg__apply_overrides(L, settings, list, where);
    /* read-only view of each base, handed to rules of patients without a plan */
    lua_Integer n = (lua_Integer)lua_rawlen(L, list);
    for (lua_Integer i = 1; i <= n; i++) {
        lua_rawgeti(L, list, i);
        lua_newtable(L);
        rg__rawfield(L, -2, "params");
        rg__copy_fields(L);
        rg_sandbox_freeze(L, "the parameter table p");
        lua_setfield(L, -2, "params_ro");
        lua_pop(L, 1);
    }
    rg_sandbox_seal(sb);
    lua_pushvalue(L, list);
    lua_rawsetp(L, LUA_REGISTRYINDEX, &rg__k_desc);
    lua_pushvalue(L, list);
    return 1;
}

void rg_clinic_push_protocol(rg_clinic *c, int i)
{
    lua_State *L = rg_sandbox_state(c->sb);
    lua_rawgetp(L, LUA_REGISTRYINDEX, &rg__k_desc);
    lua_rawgeti(L, -1, i + 1);
    lua_remove(L, -2);
}

void rg_clinic_push_events(rg_clinic *c)
{
    lua_rawgetp(rg_sandbox_state(c->sb), LUA_REGISTRYINDEX, &rg__k_events);
}

static char *rg__dupfield(lua_State *L, int idx, const char *f)
{
    lua_getfield(L, idx, f);
    char *s = strdup(lua_tostring(L, -1) ? lua_tostring(L, -1) : "");
    lua_pop(L, 1);
    return s;
}

/* Mirrors the descriptions (on top of the stack) into C. No Lua call here
 * can raise: fields are plain strings in plain tables. */
static int rg__mirror(rg_clinic *c, lua_State *L)
{
    int list = lua_gettop(L);
    int n = (int)lua_rawlen(L, list);
    c->protos = calloc((size_t)(n ? n : 1), sizeof *c->protos);
    if (!c->protos)
        return RG_ENOMEM;
    for (int i = 0; i < n; i++) {
        rg_protocol *p = &c->protos[i];
        c->nprotos = i + 1;
        lua_rawgeti(L, list, i + 1);
        int d = lua_gettop(L);
        p->id = rg__dupfield(L, d, "id");
        p->version = rg__dupfield(L, d, "version");
        p->file = rg__dupfield(L, d, "file");
        p->hash = calloc(1, 17);
        if (!p->id || !p->version || !p->file || !p->hash)
            return RG_ENOMEM;
        rg__hash_file(p->file, p->hash);
        lua_getfield(L, d, "plan");
        p->nplan = (int)lua_rawlen(L, -1);
        p->plan_events = calloc((size_t)p->nplan + 1, sizeof *p->plan_events);
        if (!p->plan_events)
            return RG_ENOMEM;
        for (int j = 0; j < p->nplan; j++) {
            lua_rawgeti(L, -1, j + 1);
            if (!(p->plan_events[j] = strdup(lua_tostring(L, -1))))
                return RG_ENOMEM;
            lua_pop(L, 1);
        }
        lua_pop(L, 1);
        lua_getfield(L, d, "rules");
        int nr = (int)lua_rawlen(L, -1);
        p->rules = calloc((size_t)nr, sizeof *p->rules);
        if (!p->rules)
            return RG_ENOMEM;
        for (int j = 0; j < nr; j++) {
            p->nrules = j + 1;
            lua_rawgeti(L, -1, j + 1);
            p->rules[j].id = rg__dupfield(L, -1, "id");
            p->rules[j].severity = rg__dupfield(L, -1, "severity");
            p->rules[j].where = rg__dupfield(L, -1, "where");
            lua_pop(L, 1);
            if (!p->rules[j].id || !p->rules[j].severity || !p->rules[j].where)
                return RG_ENOMEM;
        }
        lua_settop(L, list);
    }
    return RG_OK;
}

/* [-0, +0] Mirrors clinic.lua's fhir.codes into C (raw reads of checked strings:
 * nothing here raises). */
static int rg__mirror_fhir(rg_clinic *c, lua_State *L)
{
    int top = lua_gettop(L), rc = RG_OK;
    if (lua_rawgetp(L, LUA_REGISTRYINDEX, &rg__k_fhir) == LUA_TTABLE) {
        c->fhir_map = rg__rawfield(L, top + 1, "map") == LUA_TFUNCTION;
        lua_pop(L, 1);
        if (rg__rawfield(L, top + 1, "codes") == LUA_TTABLE)
            for (int i = 0; i < RG_FHIR_NLISTS && !rc; i++) {
                if (rg__rawfield(L, top + 2, rg_fhir_list_name[i]) == LUA_TTABLE) {
                    size_t n = lua_rawlen(L, -1);
                    if (!(c->fhir_codes[i] = calloc(n + 1, sizeof *c->fhir_codes[i])))
                        rc = RG_ENOMEM;
                    for (size_t j = 0; j < n && !rc; j++) {
                        lua_rawgeti(L, -1, (lua_Integer)j + 1);
                        if (!(c->fhir_codes[i][j] = strdup(lua_tostring(L, -1))))
                            rc = RG_ENOMEM;
                        lua_pop(L, 1);
                    }
                }
                lua_pop(L, 1);
            }
    }
    lua_settop(L, top);
    return rc;
}

/* [-0, +0] Checks clinic.lua's notify table and keeps it as c->notify; an
 * error names clinic.lua, the line of the field and what was expected (raw
 * reads only: nothing here raises). */
static int rg__mirror_notify(rg_clinic *c, lua_State *L, const char *path, char *err,
                             size_t errlen)
{
    int top = lua_gettop(L), rc = RG_OK;
    if (lua_rawgetp(L, LUA_REGISTRYINDEX, &rg__k_notify) != LUA_TNIL) {
        char why[600], needle[200];
        json_t *j = rg_lua_to_json(L, top + 1, 0, why, sizeof why);
        if (!j)
            rc = rg_fail(err, errlen, RG_EINVAL, "%s:%d: notify: %s", path,
                         rg__line_of(path, "notify"), why);
        else if (!(rc = rg_notify_parse(j, &c->notify, why, sizeof why, needle,
                                        sizeof needle))) {
            c->notify->zone = c->cal.zone;
            c->notify->cal = c->cal;
            /* counting in opening hours needs hours that open some time in the week */
            int open = 0;
            for (int d = 0; d < 7; d++)
                open |= c->cal.has_hours && c->cal.open[d] >= 0;
            for (int r = 0; r < c->notify->nroutes && !rc; r++)
                if (c->notify->routes[r].count_open && !open)
                    rc = rg_fail(err, errlen, RG_EINVAL, "%s:%d: notify.routes[%d].count = "
                                 "\"opening hours\" needs opening hours: %s", path,
                                 rg__line_of(path, "\"opening hours\""), r + 1,
                                 c->cal.has_hours ? "clinic.lua's hours open on no day of the"
                                 " week" : "clinic.lua has no hours (the clinic is open around "
                                 "the clock); add hours = { mon = {\"08:00\", \"18:00\"}, ... }"
                                 " or count on the \"wall clock\"");
        } else {
            int line = rg__line_of(path, needle);
            if (!line)
                line = rg__line_of(path, "notify");
            rg_fail(err, errlen, rc, "%s:%d: %s", path, line, why);
        }
        json_decref(j);
    }
    lua_settop(L, top);
    return rc;
}

typedef struct rg__fhir_call {
    const char *resource, *event; /* JSON text; event NULL: nil */
} rg__fhir_call;

/* [-1, +1, e] (call as light userdata) Calls fhir.map(resource, event) with
 * both as plain tables and returns its result. */
static int rg__fhir_map_call(lua_State *L)
{
    rg__fhir_call *call = lua_touserdata(L, 1);
    lua_settop(L, 0);
    lua_rawgetp(L, LUA_REGISTRYINDEX, &rg__k_fhir);
    rg__rawfield(L, 1, "map");
    rg_json_push(L, call->resource);
    if (call->event)
        rg_json_push(L, call->event);
    else
        lua_pushnil(L);
    lua_call(L, 2, 1);
    return 1;
}

/* rg_fhir_hook: fhir.map once per default event (once with nil when there is
 * none); what it returns replaces the event, nil or false drops it. */
static int rg__fhir_hook(void *ud, rg_fhir_entry *e, char *err, size_t errlen)
{
    rg_clinic *c = ud;
    lua_State *L = rg_sandbox_state(c->sb);
    size_t n = json_array_size(e->events);
    char why[2048], where[320];
    char *res = json_dumps(e->resource, JSON_COMPACT);
    json_t *out = json_array();
    int rc = res && out ? RG_OK : RG_ENOMEM;
    snprintf(where, sizeof where, "%s/%s (entry %ld)", e->type, e->id, e->index);
    for (size_t i = 0; i < (n ? n : 1) && !rc; i++) {
        json_t *ev = n ? json_array_get(e->events, i) : NULL;
        if (c->fhir_until && rg_monotonic_ms() >= c->fhir_until) {
            /* the budget is spent between two calls: named at the map */
            lua_rawgetp(L, LUA_REGISTRYINDEX, &rg__k_fhir);
            rg__rawfield(L, -1, "map");
            lua_Debug ar;
            lua_getinfo(L, ">S", &ar);
            lua_pop(L, 1);
            rc = rg_fail(err, errlen, RG_ELIMIT, "clinic %s: fhir.map failed on %s: %s:%d: "
                         "deadline of %d ms for fhir.map over the whole request exceeded",
                         c->name, where, ar.short_src, ar.linedefined, c->fhir_total_ms);
            break;
        }
        rg__fhir_call call = {res, ev ? json_dumps(ev, JSON_COMPACT) : NULL};
        rg_sandbox_enter_by(c->sb, c->fhir_until, c->fhir_total_ms,
                            "fhir.map over the whole request");
        lua_pushcfunction(L, rg__fhir_map_call);
        lua_pushlightuserdata(L, &call);
        rc = rg_pcall(c->sb, 1, 1, why, sizeof why);
        rg_sandbox_leave(c->sb);
        free((char *)call.event);
        if (rc) {
            rg_fail(err, errlen, rc, "clinic %s: fhir.map failed on %s: %s", c->name, where, why);
            break;
        }
        if (lua_type(L, -1) == LUA_TTABLE) {
            json_t *j = rg_lua_to_json(L, -1, 0, why, sizeof why);
            if (!json_is_object(j)) {
                json_decref(j);
                lua_pop(L, 1);
                rc = rg_fail(err, errlen, RG_EPROTOCOL, "clinic %s: fhir.map on %s returned a "
                             "table that is not an event object (keys must be strings, values "
                             "data)%s%s", c->name, where, j ? "" : ": ", j ? "" : why);
                break;
            }
            if (!json_object_get(j, "id")) {
                char id[RG_EVENT_MAX_ID * 2];
                snprintf(id, sizeof id, "fhir:%s/%s", e->type, e->id);
                json_object_set(j, "id", ev ? json_object_get(ev, "id") : json_string(id));
                if (!ev)
                    json_decref(json_object_get(j, "id"));
            }
            json_object_set_new(j, "clinic", json_string(c->name));
            json_array_append_new(out, j);
        } else if (lua_type(L, -1) != LUA_TNIL && !(lua_type(L, -1) == LUA_TBOOLEAN &&
                                                    !lua_toboolean(L, -1))) {
            rc = rg_fail(err, errlen, RG_EPROTOCOL, "clinic %s: fhir.map on %s must return an "
                         "event table, or nil / false for none (got a %s)", c->name, where,
                         luaL_typename(L, -1));
        }
        lua_pop(L, 1);
    }
    free(res);
    if (rc) {
        json_decref(out);
        return rc;
    }
    json_array_clear(e->events);
    json_array_extend(e->events, out);
    json_decref(out);
    if (json_array_size(e->events)) {
        e->kind = RG_FHIR_EVENTS;
        e->reason[0] = '\0';
    } else if (n) {
        e->kind = RG_FHIR_UNMAPPED;
        snprintf(e->reason, sizeof e->reason, "the clinic's fhir.map (clinic.lua) returned no "
                 "event");
    }
    return RG_OK;
}

void rg_clinic_fhir_opts(rg_clinic *c, rg_fhir_opts *o)
{
    memset(o, 0, sizeof *o);
    o->clinic = c->name;
    for (int i = 0; i < RG_FHIR_NLISTS; i++)
        o->codes[i] = (const char *const *)c->fhir_codes[i];
    if (c->fhir_map) {
        o->hook = rg__fhir_hook;
        o->hook_ud = c;
    }
}

void rg_clinic_fhir_budget(rg_clinic *c, int total_ms)
{
    c->fhir_total_ms = total_ms;
    c->fhir_until = total_ms > 0 ? rg_monotonic_ms() + total_ms : 0;
}

/* rg_clinic_load, or with settings_only its settings alone (no protocol) */
static int rg__clinic_load(rg_clinic **out, const char *name, const char *dir,
                           const char *shipped, const char *overrides, const rg_limits *lim,
                           char *err, size_t errlen, int settings_only)
{
    *out = NULL;
    char settings_path[4096], where[4200];
    const char *path[2] = {dir, shipped};
    char **files = NULL;
    int nfiles = 0, rc;
    rg_clinic *c = calloc(1, sizeof *c);
    if (!c || !(c->name = strdup(name)) || !(c->dir = strdup(dir))) {
        rc = rg_fail(err, errlen, RG_ENOMEM, "out of memory");
        goto done;
    }
    struct stat sbuf;
    if (stat(dir, &sbuf) != 0 || !S_ISDIR(sbuf.st_mode)) {
        rc = rg_fail(err, errlen, RG_EIO, "%s: not a protocol directory (%s)", dir,
                     errno ? strerror(errno) : "not a directory");
        goto done;
    }
    if ((rc = rg_sandbox_new(&c->sb, name, lim, path, shipped ? 2 : 1, err, errlen)))
        goto done;
    lua_State *L = rg_sandbox_state(c->sb);
    snprintf(settings_path, sizeof settings_path, "%s/clinic.lua", dir);
    snprintf(where, sizeof where, "%s", settings_path);

    /* Outside the protected calls only calls that cannot raise (pushing C
     * functions, light userdata, integers; raw reads by index). */
    rg_sandbox_enter(c->sb);
    lua_pushcfunction(L, rg__load_settings);
    lua_pushlightuserdata(L, access(settings_path, F_OK) == 0 ? settings_path : NULL);
    lua_pushlightuserdata(L, (void *)overrides);
    rc = rg_pcall(c->sb, 2, 2, err, errlen);
    rg_sandbox_leave(c->sb);
    if (rc)
        goto done;
    c->cal = *rg_calendar_of(L);
    int settings = lua_gettop(L) - 1; /* and its include list on top */
    if ((rc = rg__mirror_fhir(c, L))) {
        rg_fail(err, errlen, rc, "out of memory");
        goto done;
    }
    if ((rc = rg__mirror_notify(c, L, settings_path, err, errlen)))
        goto done;
    if (settings_only)
        goto done;

    /* the directory's own protocols, then the included shipped sets */
    if ((rc = rg__list_dir(dir, &files, &nfiles, err, errlen)))
        goto done;
    for (int i = 1; lua_rawgeti(L, settings + 1, i) == LUA_TSTRING; i++) {
        char inc[4096];
        if (!shipped) {
            rc = rg_fail(err, errlen, RG_EIO, "%s: include needs the shipped protocol "
                         "directory, which was not found", settings_path);
            goto done;
        }
        snprintf(inc, sizeof inc, "%s/%s", shipped, lua_tostring(L, -1));
        lua_pop(L, 1);
        if ((rc = rg__list_dir(inc, &files, &nfiles, err, errlen)))
            goto done;
    }
    lua_settop(L, settings);
    if (nfiles == 0) {
        rc = rg_fail(err, errlen, RG_EPROTOCOL, "%s: no protocol files (*.lua) found", dir);
        goto done;
    }

    rg_sandbox_enter(c->sb);
    lua_pushcfunction(L, rg__load_protocols);
    lua_pushvalue(L, settings);
    lua_pushlightuserdata(L, files);
    lua_pushinteger(L, nfiles);
    lua_pushlightuserdata(L, where);
    rc = rg_pcall(c->sb, 4, 1, err, errlen);
    rg_sandbox_leave(c->sb);
    if (rc)
        goto done;
    rc = rg__mirror(c, L);
    lua_settop(L, 0);
    if (rc)
        rg_fail(err, errlen, rc, "out of memory");
done:
    for (int i = 0; i < nfiles; i++)
        free(files[i]);
    free(files);
    if (rc) {
        rg_clinic_free(c);
        return rc;
    }
    *out = c;
    return RG_OK;
}

int rg_clinic_load(rg_clinic **out, const char *name, const char *dir, const char *shipped,
                   const char *overrides, const rg_limits *lim, char *err, size_t errlen)
{
    return rg__clinic_load(out, name, dir, shipped, overrides, lim, err, errlen, 0);
}

const rg_zone *rg_clinic_zone(const char *name, const char *dir, const char *shipped,
                              const rg_limits *lim)
{
    rg_clinic *c;
    char err[512];
    if (rg__clinic_load(&c, name, dir, shipped, NULL, lim, err, sizeof err, 1))
        return NULL;
    const rg_zone *z = c->cal.zone; /* (zones are kept for the process: core/zone.h) */
    rg_clinic_free(c);
    return z;
}

void rg_clinic_free(rg_clinic *c)
{
    if (!c)
        return;
    for (int i = 0; i < c->nprotos; i++) {
        rg_protocol *p = &c->protos[i];
        free(p->id);
        free(p->version);
        free(p->file);
        free(p->hash);
        for (int j = 0; j < p->nplan; j++)
            free(p->plan_events[j]);
        free(p->plan_events);
        for (int j = 0; j < p->nrules; j++) {
            free(p->rules[j].id);
            free(p->rules[j].severity);
            free(p->rules[j].where);
        }
        free(p->rules);
    }
    free(c->protos);
    for (int i = 0; i < RG_FHIR_NLISTS; i++) {
        for (int j = 0; c->fhir_codes[i] && c->fhir_codes[i][j]; j++)
            free(c->fhir_codes[i][j]);
        free(c->fhir_codes[i]);
    }
    rg_notify_free(c->notify);
    rg_sandbox_free(c->sb);
    free(c->name);
    free(c->dir);
    free(c);
}

const rg_rule *rg_clinic_find_rule(const rg_clinic *c, const char *rule, int *proto)
{
    for (int i = 0; i < c->nprotos; i++)
        for (int j = 0; j < c->protos[i].nrules; j++)
            if (!strcmp(c->protos[i].rules[j].id, rule)) {
                if (proto)
                    *proto = i;
                return &c->protos[i].rules[j];
            }
    return NULL;
}
