/*
 * regimen.c - the `regimen` module: the words a protocol is written in.
 *
 * Durations are integers of milliseconds (days(2), hours(72)), so that a time
 * plus a duration is a time and comparisons are exact. R.protocol checks what
 * an author wrote as soon as it runs and raises at the author's line with the
 * field that is wrong, because a typo in a care plan must not become a
 * silently missing alert; R.alert does so in regimen check (elsewhere the
 * engine checks an alert when the rule returns it, in full when it opens).
 * Message templates ({ "text {name:day}", name = ... }) are made here
 * (rg_message_format), when the alert opens.
 *
 * Times are exact instants; what a person reads (R.day, R.date, R.time) and
 * the calendar helpers (R.calendar_add, R.calendar_days, R.business_days,
 * R.next_open, R.is_open) use the clinic's calendar (zone, opening hours,
 * closures: runtime/core/calendar.h), which clinic.c installs in the
 * registry. Depends on Lua 5.4, runtime/core/rfc3339.c and calendar.c.
 */
#include "bindings/bindings.h"

#include <lauxlib.h>

#include <ctype.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static const char *const rg__severities[] = {"info", "warning", "critical", NULL};

void rg_host_oom(lua_State *L)
{
    if (lua_getfield(L, LUA_REGISTRYINDEX, RG_HOST_OOM) == LUA_TFUNCTION)
        lua_call(L, 0, 0);
    else
        lua_pop(L, 1);
}

int rg_severity_ok(const char *s)
{
    for (int i = 0; rg__severities[i]; i++)
        if (!strcmp(s, rg__severities[i]))
            return 1;
    return 0;
}

/* n units as integer milliseconds; fractions allowed (hours(1.5)). */
static int rg__duration(lua_State *L, int64_t unit, const char *name)
{
    int isint;
    lua_Integer i = lua_tointegerx(L, 1, &isint);
    if (isint) {
        if (i > INT64_MAX / unit || i < -INT64_MAX / unit)
            return luaL_error(L, "%s(%I) is too long a duration", name, i);
        lua_pushinteger(L, i * unit);
        return 1;
    }
    if (lua_type(L, 1) != LUA_TNUMBER)
        return luaL_error(L, "%s(n) needs a number, got %s", name, luaL_typename(L, 1));
    lua_Number n = lua_tonumber(L, 1) * (lua_Number)unit;
    if (!isfinite(n) || fabs(n) > 9e18)
        return luaL_error(L, "%s(n) needs a finite number", name);
    lua_pushinteger(L, (lua_Integer)floor(n));
    return 1;
}

static int rg__seconds(lua_State *L) { return rg__duration(L, RG_MS_SECOND, "seconds"); }
static int rg__minutes(lua_State *L) { return rg__duration(L, RG_MS_MINUTE, "minutes"); }
static int rg__hours(lua_State *L) { return rg__duration(L, RG_MS_HOUR, "hours"); }
static int rg__days(lua_State *L) { return rg__duration(L, RG_MS_DAY, "days"); }
static int rg__weeks(lua_State *L) { return rg__duration(L, 7 * RG_MS_DAY, "weeks"); }

/* A time argument: an integer of ms. */
static rg_time rg__checktime(lua_State *L, int idx, const char *fn)
{
    int isint;
    lua_Integer t = lua_tointegerx(L, idx, &isint);
    if (!isint)
        luaL_error(L, "%s: expected a time (an integer such as event.at or now), got %s", fn,
                   lua_type(L, idx) == LUA_TNUMBER ? "a fraction" : luaL_typename(L, idx));
    return t;
}

static const char rg__k_cal = 'c'; /* registry: the clinic's rg_calendar (userdata) */

static rg_calendar rg__utc_cal; /* UTC always open: set once, read-only after */
static pthread_once_t rg__utc_once = PTHREAD_ONCE_INIT;
static void rg__utc_init(void) { rg_calendar_default(&rg__utc_cal); }

const rg_calendar *rg_calendar_of(lua_State *L)
{
    lua_rawgetp(L, LUA_REGISTRYINDEX, &rg__k_cal);
    const rg_calendar *c = lua_touserdata(L, -1);
    lua_pop(L, 1);
    if (c)
        return c;
    pthread_once(&rg__utc_once, rg__utc_init); /* a sweep's threads may come here at once */
    return &rg__utc_cal;
}

const rg_calendar *rg_calendar_install(lua_State *L, const rg_calendar *c)
{
    rg_calendar *u = lua_newuserdatauv(L, sizeof *u, 0);
    *u = *c;
    lua_rawsetp(L, LUA_REGISTRYINDEX, &rg__k_cal);
    return u;
}

/* The wall-clock instant as if it were UTC, so rfc3339.c can print it. */
static rg_time rg__local(lua_State *L, rg_time t)
{
    return t + (int64_t)rg_zone_offset(rg_calendar_of(L)->zone, t) * 1000;
}

/* R.time(t) -> "2026-03-09T09:05:00-05:00": RFC 3339 with the clinic's offset. */
static int rg__time(lua_State *L)
{
    char buf[RG_TIME_BUFSZ];
    lua_pushstring(L, rg_zone_format(rg_calendar_of(L)->zone, rg__checktime(L, 1, "time"), buf));
    return 1;
}

/* R.date(t) -> "2026-03-09", the clinic's local date. */
static int rg__date(lua_State *L)
{
    char buf[RG_TIME_BUFSZ];
    lua_pushstring(L, rg_time_date(rg__local(L, rg__checktime(L, 1, "date")), buf));
    return 1;
}

/* R.day(t) -> "9 Mar 2026", the clinic's local date. */
static int rg__day(lua_State *L)
{
    char buf[RG_TIME_BUFSZ];
    lua_pushstring(L, rg_time_day(rg__local(L, rg__checktime(L, 1, "day")), buf));
    return 1;
}

/* R.clock(t) -> "09:05", the local time of day. */
static int rg__clock(lua_State *L)
{
    char buf[RG_TIME_BUFSZ];
    rg_time_format(rg__local(L, rg__checktime(L, 1, "clock")), buf);
    lua_pushlstring(L, buf + 11, 5);
    return 1;
}

/* "HH:MM" argument at idx as ms after midnight; -1 when absent. */
static int64_t rg__checkclock(lua_State *L, int idx, const char *fn)
{
    if (lua_isnoneornil(L, idx))
        return -1;
    const char *s = lua_type(L, idx) == LUA_TSTRING ? lua_tostring(L, idx) : NULL;
    int min = rg_calendar_parse_clock(s, 0);
    if (min < 0)
        luaL_error(L, "%s: the time of day must be \"HH:MM\" such as \"09:00\", got %s", fn,
                   s ? s : luaL_typename(L, idx));
    return min * RG_MS_MINUTE;
}

static lua_Integer rg__checkcount(lua_State *L, int idx, const char *fn)
{
    int isint;
    lua_Integer n = lua_tointegerx(L, idx, &isint);
    if (!isint || n < -100000 || n > 100000)
        luaL_error(L, "%s: the number of days must be a whole number (up to 100000), got %s", fn,
                   lua_type(L, idx) == LUA_TNUMBER ? "a fraction" : luaL_typename(L, idx));
    return n;
}

/* R.calendar_days(t, n [, "HH:MM"]) -> the instant n days after t's local
 * day, at the same wall-clock time as t (or at HH:MM). */
static int rg__calendar_days(lua_State *L)
{
    const rg_calendar *c = rg_calendar_of(L);
    rg_time t = rg__checktime(L, 1, "calendar_days");
    lua_Integer n = rg__checkcount(L, 2, "calendar_days");
    int64_t at = rg__checkclock(L, 3, "calendar_days");
    lua_pushinteger(L, rg_calendar_at(c, rg_calendar_day(c, t) + n,
                                      at < 0 ? rg_calendar_clock(c, t) : at));
    return 1;
}

/* R.calendar_add(t, d) -> t plus duration d, its whole days counted on the
 * clinic's calendar (same wall-clock time), the rest exact. In UTC it is
 * t + d. */
static int rg__calendar_add(lua_State *L)
{
    const rg_calendar *c = rg_calendar_of(L);
    rg_time t = rg__checktime(L, 1, "calendar_add");
    rg_time d = rg__checktime(L, 2, "calendar_add");
    int64_t days = d / RG_MS_DAY, rest = d % RG_MS_DAY;
    if (days > 100000 || days < -100000)
        return luaL_error(L, "calendar_add: too long a duration");
    rg_time r = rg_calendar_at(c, rg_calendar_day(c, t) + days, rg_calendar_clock(c, t));
    lua_pushinteger(L, r + rest);
    return 1;
}

/* R.business_days(t, n [, "HH:MM"]) -> the n-th day after t's local day on
 * which the clinic opens (n = 0: t's day if it opens, else the next such
 * day), at HH:MM or, without it, at that day's opening. */
static int rg__business_days(lua_State *L)
{
    const rg_calendar *c = rg_calendar_of(L);
    rg_time t = rg__checktime(L, 1, "business_days");
    lua_Integer n = rg__checkcount(L, 2, "business_days");
    int64_t at = rg__checkclock(L, 3, "business_days");
    if (n < 0)
        return luaL_error(L, "business_days: the number of days must not be negative");
    int64_t day = rg_calendar_day(c, t) + (n > 0);
    for (int guard = 0;; day++) {
        if (rg_calendar_day_open(c, day) && n-- <= 1)
            break;
        if (++guard > 100000 + 550)
            return luaL_error(L, "business_days: the clinic never opens");
    }
    if (at < 0)
        at = c->has_hours ? c->open[((day + 3) % 7 + 7) % 7] * RG_MS_MINUTE : 0;
    lua_pushinteger(L, rg_calendar_at(c, day, at));
    return 1;
}

/* R.next_open(t) -> t when the clinic is open then, else its next opening. */
static int rg__next_open(lua_State *L)
{
    rg_time r = rg_calendar_next_open(rg_calendar_of(L), rg__checktime(L, 1, "next_open"));
    if (r == RG_TIME_NONE)
        return luaL_error(L, "next_open: the clinic does not open in the next 18 months");
    lua_pushinteger(L, r);
    return 1;
}

/* R.is_open(t) -> whether the clinic's hours and closures have it open at t. */
static int rg__is_open(lua_State *L)
{
    lua_pushboolean(L, rg_calendar_is_open(rg_calendar_of(L), rg__checktime(L, 1, "is_open")));
    return 1;
}

/* R.at("2026-03-02T14:05:00-05:00") -> time */
static int rg__at(lua_State *L)
{
    size_t len;
    const char *s = luaL_checklstring(L, 1, &len);
    rg_time t;
    char why[160];
    if (rg_time_parse(s, len, &t, NULL, why, sizeof why))
        return luaL_error(L, "at(\"%s\"): %s", s, why);
    lua_pushinteger(L, t);
    return 1;
}

/* R.in_days(duration) -> number of days (fractional), for messages. */
static int rg__in_days(lua_State *L)
{
    lua_pushnumber(L, (lua_Number)rg__checktime(L, 1, "in_days") / (lua_Number)RG_MS_DAY);
    return 1;
}

static int rg__in_hours(lua_State *L)
{
    lua_pushnumber(L, (lua_Number)rg__checktime(L, 1, "in_hours") / (lua_Number)RG_MS_HOUR);
    return 1;
}

/* ---- parameters and their kinds --------------------------------------------
 *
 * A parameter is declared by its default (a bare value: its kind is guessed)
 * or by R.param { default, kind = ..., unit = ..., ... }. Durations are plain
 * integers of milliseconds, so a bare 42 where a duration is meant is 42 ms:
 * the kind is what lets clinic.lua and patient plans be checked. */

static const char *const rg__kinds[] = {"duration", "count", "number", "score",
                                        "string", "flag", "choice", NULL};
static const char *const rg__param_fields[] = {"default", "kind", "unit", "min", "max",
                                               "choices", "shared", "plan", "description",
                                               NULL};
static const struct {
    const char *name;
    int64_t ms;
} rg__plan_units[] = {{"minutes", RG_MS_MINUTE}, {"hours", RG_MS_HOUR}, {"days", RG_MS_DAY},
                      {"weeks", 7 * RG_MS_DAY}};

/* The kind a bare default suggests: whole minutes (days(2), hours(24)) are a
 * duration, other whole numbers a count, fractions a number. */
static const char *rg__guess_kind(lua_State *L, int v)
{
    switch (lua_type(L, v)) {
    case LUA_TBOOLEAN: return "flag";
    case LUA_TSTRING: return "string";
    case LUA_TNUMBER:
        if (lua_isinteger(L, v)) {
            lua_Integer i = lua_tointeger(L, v);
            return i >= RG_MS_MINUTE && i % RG_MS_MINUTE == 0 ? "duration"
                                                              : i >= 0 ? "count" : "number";
        }
        return "number";
    default: return NULL;
    }
}

/* [-0, +0] Raw t[k] is a string (or absent: NULL). */
static const char *rg__rawstr(lua_State *L, int t, const char *k)
{
    lua_pushstring(L, k);
    lua_rawget(L, t);
    const char *s = lua_tostring(L, -1); /* kept alive by t */
    lua_pop(L, 1);
    return s;
}

int rg_param_declare(lua_State *L, int idx, const char *name)
{
    idx = lua_absindex(L, idx);
    luaL_checkstack(L, 8, "declaring a parameter");
    lua_createtable(L, 0, 9);
    int d = lua_gettop(L);
    if (lua_type(L, idx) != LUA_TTABLE) {
        const char *kind = rg__guess_kind(L, idx);
        if (!kind)
            return luaL_error(L, "parameter '%s' must be a number, string, boolean or "
                                 "R.param { default, kind = ... }, not a %s", name,
                              luaL_typename(L, idx));
        lua_pushvalue(L, idx);
        lua_setfield(L, d, "default");
        lua_pushstring(L, kind);
        lua_setfield(L, d, "kind");
        return 1;
    }
    /* a declaration from a module (course.params.x) is a read-only proxy
     * (sandbox.c): read the table behind it */
    if (lua_getmetatable(L, idx)) {
        lua_pushliteral(L, "__index");
        if (lua_rawget(L, -2) == LUA_TTABLE) {
            lua_remove(L, -2);
            idx = lua_gettop(L); /* d, the table behind the proxy */
        } else {
            lua_pop(L, 2);
        }
    }
    int ndef = 0;
    for (lua_pushnil(L); lua_next(L, idx); lua_pop(L, 1)) {
        const char *k = lua_type(L, -2) == LUA_TSTRING ? lua_tostring(L, -2) : NULL;
        int ok = lua_isinteger(L, -2) && lua_tointeger(L, -2) == 1;
        for (int i = 0; k && !ok && rg__param_fields[i]; i++)
            ok = !strcmp(k, rg__param_fields[i]);
        ndef += ok && (!k || !strcmp(k, "default"));
        if (!ok) {
            const char *near = k ? rg_suggest(k, rg__param_fields,
                                              RG_COUNTOF(rg__param_fields) - 1) : NULL;
            return luaL_error(L, "parameter '%s': unknown field '%s'%s%s%s (known: default, "
                                 "kind, unit, min, max, choices, shared, plan, description)",
                              name, k ? k : luaL_typename(L, -2), near ? " (did you mean '" : "",
                              near ? near : "", near ? "'?)" : "");
        }
    }
    if (ndef != 1)
        return luaL_error(L, "parameter '%s': give its default once, as R.param { 6, ... } or "
                             "R.param { default = 6, ... }", name);
    if (lua_rawgeti(L, idx, 1) == LUA_TNIL) {
        lua_pop(L, 1);
        lua_getfield(L, idx, "default");
    }
    int def = lua_gettop(L);
    const char *kind = rg__rawstr(L, idx, "kind");
    if (!kind && !(kind = rg__guess_kind(L, def)))
        return luaL_error(L, "parameter '%s': the default must be a number, string or boolean",
                          name);
    int k = 0;
    while (rg__kinds[k] && strcmp(rg__kinds[k], kind))
        k++;
    if (!rg__kinds[k]) {
        const char *near = rg_suggest(kind, rg__kinds, RG_COUNTOF(rg__kinds) - 1);
        return luaL_error(L, "parameter '%s': kind must be duration, count, number, score, "
                             "string, flag or choice, not '%s'%s%s%s", name, kind,
                          near ? " (did you mean '" : "", near ? near : "", near ? "'?)" : "");
    }
    int t = lua_type(L, def), isint = lua_isinteger(L, def);
    int good = (k <= 1 && isint && lua_tointeger(L, def) >= 0) ||
               ((k == 2 || k == 3) && t == LUA_TNUMBER) || ((k == 4 || k == 6) && t == LUA_TSTRING) ||
               (k == 5 && t == LUA_TBOOLEAN);
    if (!good)
        return luaL_error(L, "parameter '%s': a %s's default must be %s, not %s %s", name, kind,
                          k == 0 ? "a duration such as R.days(2)" : k == 1 ? "a whole number "
                          "such as 6" : k <= 3 ? "a number" : k == 5 ? "true or false" : "a string",
                          isint ? "the integer" : "a", isint ? lua_tostring(L, def) :
                          luaL_typename(L, def));
    lua_setfield(L, d, "default");
    lua_pushstring(L, rg__kinds[k]);
    lua_setfield(L, d, "kind");
    static const char *const strs[] = {"unit", "shared", "description", "plan"};
    for (int i = 0; i < 4; i++) {
        int ty = lua_getfield(L, idx, strs[i]);
        if (ty != LUA_TNIL && (ty != LUA_TSTRING || !lua_rawlen(L, -1)))
            return luaL_error(L, "parameter '%s': field '%s' must be a non-empty string", name,
                              strs[i]);
        lua_setfield(L, d, strs[i]);
    }
    const char *plan = rg__rawstr(L, d, "plan");
    if (plan) {
        int u = 0;
        while (u < 4 && strcmp(plan, rg__plan_units[u].name))
            u++;
        if (k != 0 || u == 4)
            return luaL_error(L, "parameter '%s': plan = \"days\" (or minutes, hours, weeks) "
                                 "says what a number in a patient's plan event counts, for a "
                                 "duration only", name);
    }
    for (int i = 0; i < 2; i++) {
        const char *f = i ? "max" : "min";
        int ty = lua_getfield(L, idx, f);
        if (ty != LUA_TNIL && (ty != LUA_TNUMBER || (k != 2 && k != 3 && k != 1)))
            return luaL_error(L, "parameter '%s': '%s' must be a number, for a count, number "
                                 "or score", name, f);
        lua_setfield(L, d, f);
    }
    lua_getfield(L, d, "default");
    lua_getfield(L, d, "min");
    lua_getfield(L, d, "max");
    if ((!lua_isnil(L, -2) && lua_compare(L, -3, -2, LUA_OPLT)) ||
        (!lua_isnil(L, -1) && lua_compare(L, -1, -3, LUA_OPLT)))
        return luaL_error(L, "parameter '%s': the default is outside min..max", name);
    lua_pop(L, 3);
    int ty = lua_getfield(L, idx, "choices");
    if ((k == 6) != (ty != LUA_TNIL))
        return luaL_error(L, "parameter '%s': %s", name, k == 6 ? "a choice needs choices = "
                          "{ \"mild\", \"moderate\", ... }" : "choices are for kind = \"choice\"");
    if (k == 6) {
        if (ty != LUA_TTABLE || lua_rawlen(L, -1) == 0)
            return luaL_error(L, "parameter '%s': choices must be a list of strings", name);
        lua_newtable(L);
        int found = 0;
        const char *dv = rg__rawstr(L, d, "default");
        for (lua_Integer i = 1; lua_rawgeti(L, -2, i) != LUA_TNIL; i++) {
            if (lua_type(L, -1) != LUA_TSTRING)
                return luaL_error(L, "parameter '%s': choices[%I] must be a string", name, i);
            found |= !strcmp(lua_tostring(L, -1), dv);
            lua_rawseti(L, -2, i);
        }
        lua_pop(L, 1);
        if (!found)
            return luaL_error(L, "parameter '%s': the default \"%s\" is not one of its choices",
                              name, dv);
        lua_setfield(L, d, "choices");
    }
    lua_settop(L, d);
    return 1;
}

/* "42", "\"8\"", "true", "a table": a value as the author wrote it (a
 * copy is converted: lua_tostring changes a number in place). */
static void rg__show(lua_State *L, int v, char *buf, size_t n)
{
    switch (lua_type(L, v)) {
    case LUA_TNUMBER:
        lua_pushvalue(L, v);
        snprintf(buf, n, "%s", lua_tostring(L, -1));
        lua_pop(L, 1);
        break;
    case LUA_TBOOLEAN: snprintf(buf, n, "%s", lua_toboolean(L, v) ? "true" : "false"); break;
    case LUA_TSTRING: snprintf(buf, n, "\"%.60s\"", lua_tostring(L, v)); break;
    default: snprintf(buf, n, "a %s", luaL_typename(L, v)); break;
    }
}

int rg_param_fits(lua_State *L, int d, int v, int from_plan, char *why, size_t n)
{
    d = lua_absindex(L, d);
    v = lua_absindex(L, v);
    char shown[80]; /* the value as written: made only for a message */
#define RG__SHOWN (rg__show(L, v, shown, sizeof shown), shown)
    const char *kind = rg__rawstr(L, d, "kind"), *unit = rg__rawstr(L, d, "unit");
    const char *plan = rg__rawstr(L, d, "plan");
    lua_pushliteral(L, "default");
    lua_rawget(L, d);
    lua_Integer def = lua_tointeger(L, -1);
    lua_pop(L, 1);
    int t = lua_type(L, v);
    double x = lua_tonumber(L, v);
    int whole = t == LUA_TNUMBER && x == floor(x) && fabs(x) < 9e15;
    if (!strcmp(kind, "duration")) {
        if (from_plan && plan && t == LUA_TNUMBER) {
            int u = 0;
            while (strcmp(plan, rg__plan_units[u].name))
                u++;
            double ms = x * (double)rg__plan_units[u].ms;
            if (isfinite(ms) && ms >= 0 && ms < 9e15) {
                lua_pushinteger(L, (lua_Integer)floor(ms));
                lua_replace(L, v);
                return 1;
            }
            snprintf(why, n, "is a number of %s from 0, not %s", plan, RG__SHOWN);
            return 0;
        }
        if (from_plan && plan) {
            int u = 0;
            while (strcmp(plan, rg__plan_units[u].name))
                u++;
            snprintf(why, n, "is a number of %s (such as %lld), not %s", plan,
                     (long long)(def / rg__plan_units[u].ms), RG__SHOWN);
            return 0;
        }
        if (whole && (x == 0 || x >= 1000)) {
            lua_pushinteger(L, (lua_Integer)x);
            lua_replace(L, v);
            return 1;
        }
        if (from_plan) {
            snprintf(why, n, "is a duration in milliseconds (such as %lld), not %s",
                     (long long)def, RG__SHOWN);
            return 0;
        }
        int days = def % RG_MS_DAY == 0;
        long long c = t == LUA_TNUMBER && whole && x > 0 ? (long long)x
                                                         : (long long)(def / (days ? RG_MS_DAY
                                                                                   : RG_MS_HOUR));
        if (days && c > 0 && c % 7 == 0)
            snprintf(why, n, "is a duration: write R.weeks(%lld) or R.days(%lld) (local R = "
                     "require \"regimen\"), not %s", c / 7, c, RG__SHOWN);
        else
            snprintf(why, n, "is a duration: write R.%s(%lld) or R.%s(%lld) (local R = "
                     "require \"regimen\"), not %s", days ? "days" : "hours", c,
                     days ? "hours" : "minutes", c * (days ? 24 : 60), RG__SHOWN);
        return 0;
    }
    if (!strcmp(kind, "count") || !strcmp(kind, "number") || !strcmp(kind, "score")) {
        int count = kind[0] == 'c';
        if (t != LUA_TNUMBER || (count && (!whole || x < 0))) {
            snprintf(why, n, "is a %s%s%s%s: write %s such as %lld, not %s", kind,
                     unit ? " (" : "", unit ? unit : "", unit ? ")" : "",
                     count ? "a whole number" : "a number", (long long)def, RG__SHOWN);
            return 0;
        }
        if (count && x >= (double)RG_MS_MINUTE && fmod(x, (double)RG_MS_MINUTE) == 0 &&
            def < RG_MS_MINUTE) {
            snprintf(why, n, "is a count (a whole number such as %lld), not a duration (%s ms)",
                     (long long)def, RG__SHOWN);
            return 0;
        }
        for (int i = 0; i < 2; i++) {
            lua_pushstring(L, i ? "max" : "min");
            if (lua_rawget(L, d) == LUA_TNUMBER &&
                (i ? x > lua_tonumber(L, -1) : x < lua_tonumber(L, -1))) {
                lua_pushliteral(L, "min");
                lua_rawget(L, d);
                lua_pushliteral(L, "max");
                lua_rawget(L, d);
                snprintf(why, n, "is a %s from %s to %s%s%s, not %s", kind,
                         lua_isnil(L, -2) ? "-" : lua_tostring(L, -2),
                         lua_isnil(L, -1) ? "-" : lua_tostring(L, -1), unit ? " " : "",
                         unit ? unit : "", RG__SHOWN);
                lua_pop(L, 3);
                return 0;
            }
            lua_pop(L, 1);
        }
        if (count && !lua_isinteger(L, v)) {
            lua_pushinteger(L, (lua_Integer)x);
            lua_replace(L, v);
        }
        return 1;
    }
    if (!strcmp(kind, "flag")) {
        if (t == LUA_TBOOLEAN)
            return 1;
        snprintf(why, n, "is a flag: write true or false, not %s", RG__SHOWN);
        return 0;
    }
    if (!strcmp(kind, "string")) {
        if (t == LUA_TSTRING)
            return 1;
        snprintf(why, n, "is a text: write it in quotes, not %s", RG__SHOWN);
        return 0;
    }
    /* a choice */
    const char *s = t == LUA_TSTRING ? lua_tostring(L, v) : NULL;
    const char *opts[32];
    size_t no = 0;
    lua_pushliteral(L, "choices");
    lua_rawget(L, d);
    for (lua_Integer i = 1; no < 32 && lua_rawgeti(L, -1, i) == LUA_TSTRING; i++, no++) {
        opts[no] = lua_tostring(L, -1);
        lua_pop(L, 1);
        if (s && !strcmp(s, opts[no])) {
            lua_pop(L, 1);
            return 1;
        }
    }
    lua_pop(L, 1);
    size_t len = (size_t)snprintf(why, n, "is one of");
    for (size_t i = 0; i < no && len < n; i++)
        len += (size_t)snprintf(why + len, n - len, "%s\"%s\"", i ? ", " : " ", opts[i]);
    const char *near = s ? rg_suggest(s, opts, no) : NULL;
    if (len < n)
        snprintf(why + len, n - len, ", not %s%s%s%s", RG__SHOWN, near ? " (did you mean \"" : "",
                 near ? near : "", near ? "\"?)" : "");
    lua_pop(L, 1);
    return 0;
}
#undef RG__SHOWN

/* R.param { default, kind = "duration", ... }: a declaration, checked where
 * the author wrote it and kept as a plain table for the loader. */
static int rg__param(lua_State *L)
{
    luaL_checktype(L, 1, LUA_TTABLE);
    lua_settop(L, 1);
    rg_param_declare(L, 1, "?");
    lua_pop(L, 1);
    return 1;
}

static int rg__name_ok(const char *s, int allow_dash)
{
    if (!*s)
        return 0;
    for (; *s; s++) {
        char c = *s;
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '.' ||
              (allow_dash && c == '-')))
            return 0;
    }
    return 1;
}

/* Raises unless every key of the table at idx is one of the names. */
static void rg__only_fields(lua_State *L, int idx, const char *const *names, const char *what)
{
    lua_pushnil(L);
    while (lua_next(L, idx)) {
        lua_pop(L, 1);
        const char *k = lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1) : NULL;
        int ok = 0;
        for (int i = 0; k && names[i]; i++)
            ok |= !strcmp(k, names[i]);
        if (!ok) {
            luaL_Buffer b;
            luaL_buffinit(L, &b);
            for (int i = 0; names[i]; i++) {
                luaL_addstring(&b, i ? ", " : "");
                luaL_addstring(&b, names[i]);
            }
            luaL_pushresult(&b);
            size_t n = 0;
            while (names[n])
                n++;
            const char *near = k ? rg_suggest(k, names, n) : NULL;
            luaL_error(L, "%s: unknown field '%s'%s%s%s (known fields: %s)", what,
                       k ? k : luaL_typename(L, -2), near ? " (did you mean '" : "",
                       near ? near : "", near ? "'?)" : "", lua_tostring(L, -1));
        }
    }
}

static const char *rg__field_string(lua_State *L, int idx, const char *f, int required,
                                    const char *what)
{
    int t = lua_getfield(L, idx, f);
    if (t == LUA_TNIL && !required) {
        lua_pop(L, 1);
        return NULL;
    }
    if (t != LUA_TSTRING || lua_rawlen(L, -1) == 0)
        luaL_error(L, "%s: field '%s' must be a non-empty string%s", what, f,
                   t == LUA_TNIL ? " (it is missing)" : "");
    const char *s = lua_tostring(L, -1);
    lua_pop(L, 1); /* the table still holds the string */
    return s;
}

/* [-2, +0, e] (value, name) Raises unless value declares a parameter. */
static int rg__param_check(lua_State *L)
{
    rg_param_declare(L, 1, lua_tostring(L, 2));
    return 0;
}

int rg_protocol_validate(lua_State *L)
{
    static const char *const fields[] = {"id", "version", "description", "params", "rules",
                                         "applies", "plan_events", NULL};
    static const char *const rule_fields[] = {"id", "severity", "check", "description", NULL};
    luaL_checkstack(L, 10, "validating a protocol");
    int p = lua_gettop(L);
    if (lua_type(L, p) != LUA_TTABLE)
        return luaL_error(L, "a protocol file must return a protocol table "
                             "(return regimen.protocol { id = ..., rules = { ... } }), got %s",
                          luaL_typename(L, p));
    rg__only_fields(L, p, fields, "protocol");
    const char *id = rg__field_string(L, p, "id", 1, "protocol");
    if (!rg__name_ok(id, 1))
        return luaL_error(L, "protocol id '%s' may hold only a-z, 0-9, '_', '-' and '.'", id);
    rg__field_string(L, p, "version", 1, "protocol");
    rg__field_string(L, p, "description", 0, "protocol");
    int t = lua_getfield(L, p, "applies");
    if (t != LUA_TNIL && t != LUA_TFUNCTION)
        return luaL_error(L, "protocol '%s': field 'applies' must be a function(h, now, p)", id);
    lua_pop(L, 1);
    t = lua_getfield(L, p, "plan_events");
    if (t != LUA_TNIL) {
        if (t != LUA_TTABLE)
            return luaL_error(L, "protocol '%s': field 'plan_events' must be a list of event "
                                 "types", id);
        for (lua_Integer i = 1; lua_rawgeti(L, -1, i) != LUA_TNIL; i++) {
            if (lua_type(L, -1) != LUA_TSTRING)
                return luaL_error(L, "protocol '%s': plan_events[%I] must be a string", id, i);
            lua_pop(L, 1);
        }
        lua_pop(L, 1);
    }
    lua_pop(L, 1);
    t = lua_getfield(L, p, "params");
    if (t != LUA_TNIL) {
        if (t != LUA_TTABLE)
            return luaL_error(L, "protocol '%s': field 'params' must be a table", id);
        lua_pushnil(L);
        while (lua_next(L, -2)) {
            if (lua_type(L, -2) != LUA_TSTRING || !rg__name_ok(lua_tostring(L, -2), 0))
                return luaL_error(L, "protocol '%s': parameter names must be words like "
                                     "'acute_infusions'", id);
            char pname[96];
            snprintf(pname, sizeof pname, "%s", lua_tostring(L, -2));
            lua_pushfstring(L, "protocol '%s': ", id); /* a prefix for the message */
            lua_pushcfunction(L, rg__param_check);
            lua_pushvalue(L, -3);
            lua_pushstring(L, pname);
            if (lua_pcall(L, 2, 0, 0) != LUA_OK) {
                lua_concat(L, 2);
                return lua_error(L);
            }
            lua_pop(L, 2);
        }
    }
    lua_pop(L, 1);
    if (lua_getfield(L, p, "rules") != LUA_TTABLE || lua_rawlen(L, -1) == 0)
        return luaL_error(L, "protocol '%s': field 'rules' must be a non-empty list of rules", id);
    int rules = lua_gettop(L);
    lua_Integer n = (lua_Integer)lua_rawlen(L, rules);
    for (lua_Integer i = 1; i <= n; i++) {
        char what[96];
        if (lua_rawgeti(L, rules, i) != LUA_TTABLE)
            return luaL_error(L, "protocol '%s': rules[%I] must be a table with id, severity "
                                 "and check", id, i);
        int r = lua_gettop(L);
        snprintf(what, sizeof what, "protocol '%s', rules[%d]", id, (int)i);
        rg__only_fields(L, r, rule_fields, what);
        const char *rid = rg__field_string(L, r, "id", 1, what);
        if (!rg__name_ok(rid, 1))
            return luaL_error(L, "%s: rule id '%s' may hold only a-z, 0-9, '_', '-' and '.'",
                              what, rid);
        snprintf(what, sizeof what, "rule '%s'", rid);
        const char *sev = rg__field_string(L, r, "severity", 1, what);
        if (!rg_severity_ok(sev))
            return luaL_error(L, "%s: severity must be \"info\", \"warning\" or \"critical\", "
                                 "not \"%s\"", what, sev);
        if (lua_getfield(L, r, "check") != LUA_TFUNCTION)
            return luaL_error(L, "%s: field 'check' must be a function(h, now, p)", what);
        rg__field_string(L, r, "description", 0, what);
        lua_settop(L, rules);
    }
    /* count entries: a hole or a hash key in rules is a mistake */
    lua_Integer count = 0;
    lua_pushnil(L);
    while (lua_next(L, rules)) {
        lua_pop(L, 1);
        count++;
    }
    if (count != n)
        return luaL_error(L, "protocol '%s': 'rules' must be a plain list (found keys that are "
                             "not 1..%I)", id, n);
    lua_settop(L, p);
    return 1;
}

static int rg__protocol(lua_State *L)
{
    lua_settop(L, 1);
    return rg_protocol_validate(L);
}

/* ---- message templates -------------------------------------------------------
 *
 * message = { "BP {sys}/{dia} above {limit}", sys = v.data.systolic, ... }:
 * the text and its arguments, made into the alert's message only when the
 * alert opens (engine.c, rg__alert_slots), so an alert that stays open costs
 * no formatting. A placeholder is {name} or {name:format}; {{ and }} are
 * braces. Every placeholder needs its argument, of the kind its format
 * reads, and every argument a placeholder. */

#define RG__TMPL_MAX 4096 /* bytes a template makes at most (the engine's limit is lower) */
#define RG__TMPL_NAMES 32 /* placeholders (distinct names) per template */

static const char *const rg__tmpl_formats[] = {"day", "date", "time", "clock", "days",
                                               "hours", "minutes", NULL};

/* [-0, +0, e] Raises about the template at tidx (its text at -1 is not
 * needed): "who: message template "text...": why". */
static int rg__tmpl_error(lua_State *L, const char *who, const char *text, const char *fmt, ...)
{
    char why[600], shown[80];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, sizeof why, fmt, ap);
    va_end(ap);
    size_t n = strlen(text);
    snprintf(shown, sizeof shown, "%.*s%s", n > 60 ? 57 : (int)n, text, n > 60 ? "..." : "");
    return luaL_error(L, "%s: message template \"%s\": %s", who, shown, why);
}

/* Appends n bytes to out (at *len), raising past the limit. */
static void rg__tmpl_add(lua_State *L, char *out, size_t *len, const char *s, size_t n,
                         const char *who, const char *text)
{
    if (*len + n >= RG__TMPL_MAX)
        rg__tmpl_error(L, who, text, "the message would be longer than %d bytes",
                       RG__TMPL_MAX - 1);
    memcpy(out + *len, s, n);
    *len += n;
}

/* The argument names of the template at t, for a message ("a, b"). */
static void rg__tmpl_args(lua_State *L, int t, char *buf, size_t n)
{
    size_t len = 0;
    buf[0] = '\0';
    lua_pushnil(L);
    while (lua_next(L, t)) {
        lua_pop(L, 1);
        if (lua_type(L, -1) == LUA_TSTRING && len + 2 < n)
            len += (size_t)snprintf(buf + len, n - len, "%s%s", len ? ", " : "",
                                    lua_tostring(L, -1));
        if (len >= n)
            len = n - 1;
    }
    if (!len)
        snprintf(buf, n, "none");
}

void rg_message_format(lua_State *L, int t, const char *who)
{
    t = lua_absindex(L, t);
    luaL_checkstack(L, 8, "message template");
    if (lua_rawgeti(L, t, 1) != LUA_TSTRING)
        luaL_error(L, "%s: a message template is a table whose first item is the text, "
                      "such as { \"BP {sys} above {limit}\", sys = v.data.systolic, limit = "
                      "p.bp_max }; its first item is %s%s", who,
                   lua_isnil(L, -1) ? "missing" : "a ",
                   lua_isnil(L, -1) ? "" : luaL_typename(L, -1));
    lua_pop(L, 1);
    /* the text: items 1..n, strings, joined (a long text may be split) */
    char joined[RG__TMPL_MAX];
    size_t tlen = 0;
    lua_Integer items = 0;
    for (;; items++) {
        int it = lua_rawgeti(L, t, items + 1);
        if (it == LUA_TNIL) {
            lua_pop(L, 1);
            break;
        }
        size_t plen;
        const char *piece = it == LUA_TSTRING ? lua_tolstring(L, -1, &plen) : NULL;
        if (!piece || tlen + plen >= sizeof joined) {
            joined[tlen < sizeof joined ? tlen : sizeof joined - 1] = '\0';
            if (!piece)
                rg__tmpl_error(L, who, joined, "item %d is a %s: the text is given as strings "
                               "(items 1, 2, ... joined), the arguments by name", (int)items + 1,
                               luaL_typename(L, -1));
            rg__tmpl_error(L, who, joined, "the text is longer than %d bytes",
                           RG__TMPL_MAX - 1);
        }
        memcpy(joined + tlen, piece, plen);
        tlen += plen;
        lua_pop(L, 1);
    }
    joined[tlen] = '\0';
    const char *text = joined;
    char out[RG__TMPL_MAX];
    size_t len = 0;
    const char *names[RG__TMPL_NAMES];
    size_t nlens[RG__TMPL_NAMES];
    int nnames = 0;
    for (size_t i = 0; i < tlen;) {
        const char *c = text + i;
        if (*c == '}') {
            if (i + 1 < tlen && c[1] == '}') {
                rg__tmpl_add(L, out, &len, "}", 1, who, text);
                i += 2;
                continue;
            }
            rg__tmpl_error(L, who, text, "a '}' with no '{' (write }} for a brace)");
        }
        if (*c != '{') {
            size_t run = 0;
            while (i + run < tlen && c[run] != '{' && c[run] != '}')
                run++;
            rg__tmpl_add(L, out, &len, c, run, who, text);
            i += run;
            continue;
        }
        if (i + 1 < tlen && c[1] == '{') {
            rg__tmpl_add(L, out, &len, "{", 1, who, text);
            i += 2;
            continue;
        }
        const char *end = memchr(c, '}', tlen - i);
        if (!end)
            rg__tmpl_error(L, who, text, "a '{' with no '}' (write {{ for a brace)");
        const char *name = c + 1, *colon = memchr(name, ':', (size_t)(end - name));
        size_t nlen = (size_t)((colon ? colon : end) - name);
        char nm[64], fmt[16] = "";
        int ok = nlen > 0 && nlen < sizeof nm &&
                 (isalpha((unsigned char)name[0]) || name[0] == '_');
        for (size_t j = 0; ok && j < nlen; j++)
            ok = isalnum((unsigned char)name[j]) || name[j] == '_';
        if (!ok)
            rg__tmpl_error(L, who, text, "'{%.*s}' is not a placeholder: write {name} or "
                           "{name:format} with a name of letters, digits and '_'",
                           (int)(end - name) > 40 ? 40 : (int)(end - name), name);
        memcpy(nm, name, nlen);
        nm[nlen] = '\0';
        if (colon) {
            size_t flen = (size_t)(end - colon - 1);
            if (flen >= sizeof fmt)
                flen = sizeof fmt - 1;
            memcpy(fmt, colon + 1, flen);
            fmt[flen] = '\0';
        }
        /* the format: "", ".N", a time's (day ...), a duration's (days ...)
         * with an optional ".N" */
        char unit[16];
        int prec = -1;
        const char *dot = strchr(fmt, '.');
        size_t ulen = dot ? (size_t)(dot - fmt) : strlen(fmt);
        memcpy(unit, fmt, ulen);
        unit[ulen] = '\0';
        if (dot) {
            if (dot[1] < '0' || dot[1] > '9' || dot[2])
                prec = -2;
            else
                prec = dot[1] - '0';
        }
        int kind = -1; /* index in rg__tmpl_formats, -1 for a plain value */
        for (int j = 0; unit[0] && rg__tmpl_formats[j]; j++)
            if (!strcmp(unit, rg__tmpl_formats[j]))
                kind = j;
        if (prec == -2 || (unit[0] && kind < 0) || (kind >= 0 && kind < 4 && dot)) {
            const char *near = unit[0] ? rg_suggest(unit, rg__tmpl_formats, 7) : NULL;
            rg__tmpl_error(L, who, text, "{%s:%s}: unknown format '%s'%s%s%s (formats: .1 for "
                           "one decimal, day, date, time and clock for a time, days, hours "
                           "and minutes for a duration, such as hours.1)", nm, fmt, fmt,
                           near ? " (did you mean '" : "", near ? near : "", near ? "'?)" : "");
        }
        /* the argument */
        int at = lua_getfield(L, t, nm);
        if (at == LUA_TNIL) {
            const char *cands[RG__TMPL_NAMES];
            int nc = 0;
            lua_pushnil(L);
            while (nc < RG__TMPL_NAMES && lua_next(L, t)) {
                lua_pop(L, 1);
                if (lua_type(L, -1) == LUA_TSTRING)
                    cands[nc++] = lua_tostring(L, -1);
            }
            const char *near = rg_suggest(nm, cands, (size_t)nc);
            char args[300];
            rg__tmpl_args(L, t, args, sizeof args);
            rg__tmpl_error(L, who, text, "{%s} has no argument: give %s = ... beside the "
                           "text%s%s%s (the arguments given: %s)", nm, nm,
                           near ? " (did you mean " : "", near ? near : "", near ? "?)" : "",
                           args);
        }
        char buf[RG_TIME_BUFSZ + 48];
        const char *piece = buf;
        size_t plen;
        int isint = lua_isinteger(L, -1);
        if (kind >= 0 && !isint)
            rg__tmpl_error(L, who, text, "{%s:%s} needs %s (an integer%s), not %s%s", nm, fmt,
                           kind < 4 ? "a time" : "a duration",
                           kind < 4 ? " such as event.at" : " such as p.remind_after or R.days(2)",
                           at == LUA_TNUMBER ? "" : "a ",
                           at == LUA_TNUMBER ? "a fraction" : luaL_typename(L, -1));
        if (kind < 0 && prec >= 0 && at != LUA_TNUMBER)
            rg__tmpl_error(L, who, text, "{%s:%s} needs a number, not a %s", nm, fmt,
                           luaL_typename(L, -1));
        if (kind < 0 && at != LUA_TNUMBER && at != LUA_TSTRING)
            rg__tmpl_error(L, who, text, "{%s} needs a number or text, not a %s (make it one, "
                           "e.g. with tostring)", nm, luaL_typename(L, -1));
        if (kind >= 0 && kind < 4) {
            rg_time v = lua_tointeger(L, -1);
            switch (kind) {
            case 0: rg_time_day(rg__local(L, v), buf); break;
            case 1: rg_time_date(rg__local(L, v), buf); break;
            case 2: rg_zone_format(rg_calendar_of(L)->zone, v, buf); break;
            default:
                rg_time_format(rg__local(L, v), buf);
                memmove(buf, buf + 11, 5);
                buf[5] = '\0';
                break;
            }
            plen = strlen(buf);
        } else if (kind >= 4) {
            static const int64_t per[] = {RG_MS_DAY, RG_MS_HOUR, RG_MS_MINUTE};
            double n = (double)lua_tointeger(L, -1) / (double)per[kind - 4];
            if (prec >= 0)
                snprintf(buf, sizeof buf, "%.*f", prec, n);
            else
                snprintf(buf, sizeof buf, "%g", n);
            plen = strlen(buf);
        } else if (at == LUA_TSTRING) {
            piece = lua_tolstring(L, -1, &plen);
        } else if (prec >= 0) {
            snprintf(buf, sizeof buf, "%.*f", prec, (double)lua_tonumber(L, -1));
            plen = strlen(buf);
        } else if (isint) { /* as LUA_INTEGER_FMT prints it, without printf */
            lua_Integer v = lua_tointeger(L, -1);
            unsigned long long u = v < 0 ? 0ULL - (unsigned long long)v : (unsigned long long)v;
            char *e = buf + sizeof buf, *d = e;
            do
                *--d = (char)('0' + u % 10);
            while (u /= 10);
            if (v < 0)
                *--d = '-';
            piece = d;
            plen = (size_t)(e - d);
        } else {
            snprintf(buf, sizeof buf, "%g", (double)lua_tonumber(L, -1));
            plen = strlen(buf);
        }
        rg__tmpl_add(L, out, &len, piece, plen, who, text);
        lua_pop(L, 1);
        int seen = 0;
        for (int j = 0; j < nnames && !seen; j++)
            seen = nlens[j] == nlen && !memcmp(names[j], name, nlen);
        if (!seen) {
            if (nnames == RG__TMPL_NAMES)
                rg__tmpl_error(L, who, text, "more than %d placeholders", RG__TMPL_NAMES);
            names[nnames] = name;
            nlens[nnames++] = nlen;
        }
        i = (size_t)(end - text) + 1;
    }
    /* the rest of the table: arguments by name, each used (an unused one is
     * a misspelt placeholder) */
    lua_pushnil(L);
    while (lua_next(L, t)) {
        lua_pop(L, 1);
        if (lua_type(L, -1) != LUA_TSTRING) {
            if (lua_isinteger(L, -1) && lua_tointeger(L, -1) >= 1 &&
                lua_tointeger(L, -1) <= items)
                continue;
            rg__tmpl_error(L, who, text, "arguments are given by name (name = value), not as "
                           "item %s", lua_type(L, -1) == LUA_TNUMBER ? lua_tostring(L, -1)
                                                                     : luaL_typename(L, -1));
        }
        size_t alen;
        const char *a = lua_tolstring(L, -1, &alen);
        int used = 0;
        for (int j = 0; j < nnames && !used; j++)
            used = nlens[j] == alen && !memcmp(names[j], a, alen);
        if (!used)
            rg__tmpl_error(L, who, text, "the argument '%s' is not used: the text has no "
                           "{%s}", a, a);
    }
    lua_pushlstring(L, out, len);
}

static const char rg__k_check = 'k'; /* registry: true in regimen check's state */

void rg_check_mode_set(lua_State *L)
{
    lua_pushboolean(L, 1);
    lua_rawsetp(L, LUA_REGISTRYINDEX, &rg__k_check);
}

int rg_check_mode(lua_State *L)
{
    int on = lua_rawgetp(L, LUA_REGISTRYINDEX, &rg__k_check) != LUA_TNIL;
    lua_pop(L, 1);
    return on;
}

/* The fields the engine takes (engine.c's own list says the same): a field
 * check let through would fail every evaluation that opens the alert. */
static const char *const rg__alert_fields[] = {"key", "message", "severity", "due", "ends", NULL};

/* R.alert{...}: the alert table itself. In regimen check (rg_check_mode)
 * its fields are checked now, a template's message made, so the author
 * sees their own line; elsewhere the engine checks an alert when a rule
 * returns it, in full when it opens (engine.c, rg__alert_slots), so an
 * alert that is open already, or not yet due, costs no checking here. */
static int rg__alert(lua_State *L)
{
    luaL_checktype(L, 1, LUA_TTABLE);
    lua_settop(L, 1);
    if (!rg_check_mode(L))
        return 1;
    rg__only_fields(L, 1, rg__alert_fields, "alert");
    int t = lua_getfield(L, 1, "message");
    if (t != LUA_TSTRING && t != LUA_TFUNCTION && t != LUA_TTABLE)
        return luaL_error(L, "alert: field 'message' must be a string, a template such as "
                          "{ \"BP {sys} above {limit}\", sys = ..., limit = ... } or a "
                          "function that returns a string%s", t == LUA_TNIL ? " (it is missing)"
                                                                            : "");
    if (t == LUA_TTABLE) /* a template: made now, so a mistake names this line */
        rg_message_format(L, 2, "alert");
    t = lua_getfield(L, 1, "key");
    if (t != LUA_TNIL && t != LUA_TSTRING && t != LUA_TNUMBER)
        return luaL_error(L, "alert: field 'key' must be a string or number");
    for (int i = 0; i < 2; i++) {
        const char *f = i ? "ends" : "due";
        t = lua_getfield(L, 1, f);
        if (t != LUA_TNIL && !lua_isinteger(L, -1))
            return luaL_error(L, "alert: field '%s' must be a time (like event.at + days(2))", f);
    }
    t = lua_getfield(L, 1, "severity");
    if (t != LUA_TNIL && (t != LUA_TSTRING || !rg_severity_ok(lua_tostring(L, -1))))
        return luaL_error(L, "alert: severity must be \"info\", \"warning\" or \"critical\"");
    lua_settop(L, 1);
    return 1;
}

int rg_open_regimen(lua_State *L)
{
    static const luaL_Reg fns[] = {
        {"seconds", rg__seconds}, {"minutes", rg__minutes}, {"hours", rg__hours},
        {"days", rg__days},       {"weeks", rg__weeks},     {"time", rg__time},
        {"date", rg__date},       {"day", rg__day},         {"at", rg__at},
        {"in_days", rg__in_days}, {"in_hours", rg__in_hours},
        {"clock", rg__clock},     {"calendar_days", rg__calendar_days},
        {"calendar_add", rg__calendar_add}, {"business_days", rg__business_days},
        {"next_open", rg__next_open}, {"is_open", rg__is_open},
        {"protocol", rg__protocol}, {"alert", rg__alert},   {"param", rg__param},
        {NULL, NULL},
    };
    luaL_newlib(L, fns);
    return 1;
}
