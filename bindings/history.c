/*
 * history.c - the patient's history as protocols see it: `h:last("infusion")`,
 * `h:count("assessment", {instrument = "phq9"})`, `h:after(e, "integration_session")`.
 *
 * The events stay in C arrays the engine owns; an event becomes a Lua table
 * only when a query returns it, and that table is cached for the rest of the
 * patient's evaluation; its `data` is decoded only when a rule reads it. Only
 * events at or before `now` are visible, so the same object serves every step
 * of a replay. Event data is JSON text decoded
 * with jansson; the decoded tree is held by a userdata box while it is turned
 * into Lua values, so an error on the way (memory) leaks nothing (the liolib
 * recipe: box first, then acquire). Depends on Lua 5.4 and jansson.
 */
#include "bindings.h"
#include "../runtime/sandbox.h"

#include <lauxlib.h>
#include <jansson.h>

#include <stdlib.h>
#include <string.h>

#define RG_HISTORY_MT "regimen.history"
#define RG_JBOX_MT "regimen.jsonbox"
#define RG_JSON_MAX_DEPTH 32

static rg_history *rg__check(lua_State *L, int idx)
{
    rg_history *h = luaL_checkudata(L, idx, RG_HISTORY_MT);
    if (!h->ev && h->nev)
        luaL_error(L, "the history was used outside the evaluation it was given to");
    return h;
}

static int rg__jbox_gc(lua_State *L)
{
    json_t **box = luaL_checkudata(L, 1, RG_JBOX_MT);
    if (*box) {
        json_decref(*box);
        *box = NULL;
    }
    return 0;
}

/* [-0, +1] */
static void rg__push_json(lua_State *L, json_t *j, int depth)
{
    luaL_checkstack(L, 4, "decoding event data");
    if (depth > RG_JSON_MAX_DEPTH)
        luaL_error(L, "event data is nested too deeply");
    switch (json_typeof(j)) {
    case JSON_OBJECT: {
        const char *k;
        json_t *v;
        lua_createtable(L, 0, (int)json_object_size(j));
        json_object_foreach(j, k, v) {
            if (json_is_null(v))
                continue;
            rg__push_json(L, v, depth + 1);
            lua_setfield(L, -2, k);
        }
        break;
    }
    case JSON_ARRAY: {
        size_t i;
        json_t *v;
        lua_createtable(L, (int)json_array_size(j), 0);
        json_array_foreach(j, i, v) {
            if (json_is_null(v))
                continue;
            rg__push_json(L, v, depth + 1);
            lua_rawseti(L, -2, (lua_Integer)i + 1);
        }
        break;
    }
    case JSON_STRING:
        lua_pushlstring(L, json_string_value(j), json_string_length(j));
        break;
    case JSON_INTEGER:
        lua_pushinteger(L, (lua_Integer)json_integer_value(j));
        break;
    case JSON_REAL:
        lua_pushnumber(L, json_real_value(j));
        break;
    case JSON_TRUE:
        lua_pushboolean(L, 1);
        break;
    case JSON_FALSE:
        lua_pushboolean(L, 0);
        break;
    case JSON_NULL:
        lua_pushnil(L);
        break;
    }
}

/* [-0, +1] data of an event as a table ({} when it has none). */
static void rg__push_data(lua_State *L, const char *text)
{
    if (!text) {
        lua_newtable(L);
        return;
    }
    json_t **box = lua_newuserdatauv(L, sizeof *box, 0);
    *box = NULL;
    luaL_setmetatable(L, RG_JBOX_MT);
    json_error_t je;
    *box = json_loads(text, JSON_DECODE_ANY, &je);
    /* The text was valid JSON when it was stored (or configured); jansson
     * reports a failed allocation as a syntax error ("string expected"). So
     * a failure here is the host's memory: the evaluation fails as a whole
     * rather than commit a rule error that is not the protocol's. */
    if (!*box) {
        rg_sandbox_errmem(rg_sandbox_of(L));
        luaL_error(L, "stored event data could not be decoded (out of memory?): %s", je.text);
    }
    rg__push_json(L, *box, 0);
    json_decref(*box);
    *box = NULL;
    lua_remove(L, -2);
}

/* [-1, +0] Registers the complete metatable on top as name. Built first and
 * registered last: a memory error half-way leaves nothing registered, rather
 * than an incomplete metatable that every later call would take as made. */
static void rg__register_mt(lua_State *L, const char *name)
{
    lua_pushstring(L, name);
    lua_setfield(L, -2, "__name");
    lua_setfield(L, LUA_REGISTRYINDEX, name);
}

/* [-0, +0] The json box metatable (its __gc frees the box). */
static void rg__jbox_mt(lua_State *L)
{
    if (luaL_getmetatable(L, RG_JBOX_MT) == LUA_TNIL) {
        lua_createtable(L, 0, 2);
        lua_pushcfunction(L, rg__jbox_gc);
        lua_setfield(L, -2, "__gc");
        rg__register_mt(L, RG_JBOX_MT);
    }
    lua_pop(L, 1);
}

void rg_json_push(lua_State *L, const char *text)
{
    rg__jbox_mt(L); /* before any history exists */
    rg__push_data(L, text);
}

/* __index of event tables (upvalue 1: the history): `data` is decoded from
 * its JSON text the first time it is read, then stored in the table. Most
 * events are only counted or compared by type and time. */
static int rg__ev_index(lua_State *L)
{
    if (lua_type(L, 2) != LUA_TSTRING || strcmp(lua_tostring(L, 2), "data") != 0)
        return 0;
    rg_history *h = lua_touserdata(L, lua_upvalueindex(1));
    lua_getiuservalue(L, lua_upvalueindex(1), 2); /* reverse map */
    lua_pushvalue(L, 1);
    int isnum = lua_rawget(L, -2) == LUA_TNUMBER;
    int i = (int)lua_tointeger(L, -1);
    lua_pop(L, 2);
    if (!h->ev || !isnum || i < 0 || i >= h->nev)
        return luaL_error(L, "event data read outside the evaluation the event was given to");
    rg__push_data(L, h->ev[i].data);
    lua_pushvalue(L, -1);
    lua_setfield(L, 1, "data"); /* no __newindex: a raw set */
    return 1;
}

static int rg__ev_next(lua_State *L)
{
    lua_settop(L, 2);
    if (lua_next(L, 1))
        return 2;
    lua_pushnil(L);
    return 1;
}

/* __pairs of event tables: every field, data included. */
static int rg__ev_pairs(lua_State *L)
{
    lua_getfield(L, 1, "data");
    lua_pop(L, 1);
    lua_pushcfunction(L, rg__ev_next);
    lua_pushvalue(L, 1);
    lua_pushnil(L);
    return 3;
}

void rg_history_push_event(lua_State *L, int hidx, int i)
{
    hidx = lua_absindex(L, hidx);
    rg_history *h = lua_touserdata(L, hidx);
    luaL_checkstack(L, 6, "history");
    lua_getiuservalue(L, hidx, 1); /* cache */
    if (lua_rawgeti(L, -1, i + 1) == LUA_TTABLE) {
        lua_remove(L, -2);
        return;
    }
    lua_pop(L, 1);
    const rg_hevent *e = &h->ev[i];
    lua_createtable(L, 0, 4);
    lua_pushstring(L, e->id);
    lua_setfield(L, -2, "id");
    lua_pushstring(L, e->type);
    lua_setfield(L, -2, "type");
    lua_pushinteger(L, e->at);
    lua_setfield(L, -2, "at");
    lua_getiuservalue(L, hidx, 4); /* data comes when read (rg__ev_index) */
    lua_setmetatable(L, -2);
    lua_pushvalue(L, -1);
    lua_rawseti(L, -3, i + 1); /* cache[i+1] = ev */
    lua_getiuservalue(L, hidx, 2); /* reverse map */
    lua_pushvalue(L, -2);
    lua_pushinteger(L, i);
    lua_rawset(L, -3);
    lua_pop(L, 1);
    lua_remove(L, -2);
}

static void rg__touch(rg_history *h, int i)
{
    rg_touch_log *log = h->log;
    if (!log)
        return;
    if (log->n == log->cap) { /* plain C memory: nothing here can raise */
        int cap = log->cap ? log->cap * 2 : 256;
        rg_touch *grown = realloc(log->v, (size_t)cap * sizeof *grown);
        if (!grown)
            return; /* evidence is best effort; the evaluation goes on */
        log->v = grown;
        log->cap = cap;
    }
    log->v[log->n++] = (rg_touch){i, h->mark};
}

/* The interned id of a queried type: 0 when no event of the patient could
 * carry an interned copy of it (then strings are compared). */
static int rg__tid(rg_history *h, const char *type)
{
    if (!type)
        return 0;
    /* a rule asks for the same few types again and again, with the same
     * (interned) Lua string: remember the answers by pointer */
    for (int i = 0; i < 8; i++) /* a pointer can be reused after a GC: check the text */
        if (h->tid_key[i] == type && h->tid_val[i] && !strcmp(h->types[h->tid_val[i] - 1], type))
            return h->tid_val[i];
    int tid = 0;
    for (int i = 0; i < h->ntypes && !tid; i++)
        if (!strcmp(h->types[i], type))
            tid = i + 1;
    h->tid_key[h->tid_next] = type;
    h->tid_val[h->tid_next] = tid;
    h->tid_next = (h->tid_next + 1) % 8;
    return tid;
}

/* Does event i match type (NULL: any; tid its interned id) and the filter at
 * fidx (0: none)? */
static int rg__match(lua_State *L, int hidx, rg_history *h, int i, const char *type, int tid,
                     int fidx)
{
    if (type) {
        const rg_hevent *e = &h->ev[i];
        if (e->tid ? e->tid != tid : strcmp(e->type, type) != 0)
            return 0;
    }
    if (!fidx)
        return 1;
    rg_history_push_event(L, hidx, i);
    int ok = 1;
    if (lua_type(L, fidx) == LUA_TFUNCTION) {
        lua_pushvalue(L, fidx);
        lua_pushvalue(L, -2);
        lua_call(L, 1, 1);
        ok = lua_toboolean(L, -1);
        lua_pop(L, 2);
        return ok;
    }
    lua_getfield(L, -1, "data");
    lua_pushnil(L);
    while (ok && lua_next(L, fidx)) {
        lua_pushvalue(L, -2);
        lua_rawget(L, -4); /* data[k] */
        ok = lua_rawequal(L, -1, -2);
        lua_pop(L, 2);
    }
    if (!ok)
        lua_pop(L, 1); /* the key left by the interrupted traversal */
    lua_pop(L, 2);
    return ok;
}

/* Reads (type, filter) starting at argument a; returns the filter's index. */
static const char *rg__args(lua_State *L, int a, int *fidx)
{
    const char *type = NULL;
    if (!lua_isnoneornil(L, a))
        type = luaL_checkstring(L, a);
    *fidx = 0;
    int ft = lua_type(L, a + 1);
    if (ft == LUA_TTABLE || ft == LUA_TFUNCTION)
        *fidx = a + 1;
    else if (ft != LUA_TNONE && ft != LUA_TNIL)
        luaL_typeerror(L, a + 1, "filter table (like {instrument = \"phq9\"}) or function");
    return type;
}

/* Position of a reference (event or time): events strictly before it are
 * [0, pos), events strictly after it are [after, n). */
static void rg__ref(lua_State *L, int hidx, rg_history *h, int ridx, int *before, int *after)
{
    if (lua_type(L, ridx) == LUA_TTABLE) {
        lua_getiuservalue(L, hidx, 2);
        lua_pushvalue(L, ridx);
        int known = lua_rawget(L, -2) == LUA_TNUMBER;
        int i = (int)lua_tointeger(L, -1);
        lua_pop(L, 2);
        if (known) {
            *before = i;
            *after = i + 1;
            return;
        }
        if (lua_getfield(L, ridx, "at") != LUA_TNUMBER)
            luaL_argerror(L, ridx, "expected an event from this history or a time");
        lua_replace(L, ridx);
    }
    int isint;
    rg_time t = lua_tointegerx(L, ridx, &isint);
    if (!isint)
        luaL_argerror(L, ridx, "expected an event from this history or a time");
    int i = 0;
    while (i < h->n && h->ev[i].at < t)
        i++;
    *before = i;
    while (i < h->n && h->ev[i].at <= t)
        i++;
    *after = i;
}

/* Pushes the matching events of [from, to) as a list, oldest first. */
static int rg__list_range(lua_State *L, int hidx, rg_history *h, int from, int to,
                          const char *type, int fidx)
{
    int tid = rg__tid(h, type);
    lua_newtable(L);
    lua_Integer k = 0;
    for (int i = from; i < to; i++) {
        if (!rg__match(L, hidx, h, i, type, tid, fidx))
            continue;
        rg_history_push_event(L, hidx, i);
        lua_rawseti(L, -2, ++k);
        rg__touch(h, i);
    }
    return 1;
}

/* The latest (from_end) or earliest matching event, or nil. */
static int rg__find(lua_State *L, int from_end)
{
    rg_history *h = rg__check(L, 1);
    int fidx;
    const char *type = rg__args(L, 2, &fidx);
    int tid = rg__tid(h, type);
    for (int k = 0; k < h->n; k++) {
        int i = from_end ? h->n - 1 - k : k;
        if (rg__match(L, 1, h, i, type, tid, fidx)) {
            rg__touch(h, i);
            rg_history_push_event(L, 1, i);
            return 1;
        }
    }
    lua_pushnil(L);
    return 1;
}

/* h:last([type [, filter]]) -> the latest matching event, or nil */
static int rg__h_last(lua_State *L) { return rg__find(L, 1); }

/* h:first([type [, filter]]) -> the earliest matching event, or nil */
static int rg__h_first(lua_State *L) { return rg__find(L, 0); }

/* h:count([type [, filter]]) -> how many matching events so far */
static int rg__h_count(lua_State *L)
{
    rg_history *h = rg__check(L, 1);
    int fidx;
    const char *type = rg__args(L, 2, &fidx);
    lua_Integer c = 0;
    int tid = rg__tid(h, type);
    for (int i = 0; i < h->n; i++) {
        if (rg__match(L, 1, h, i, type, tid, fidx)) {
            rg__touch(h, i);
            c++;
        }
    }
    lua_pushinteger(L, c);
    return 1;
}

/* h:list([type [, filter]]) -> every matching event so far, oldest first */
static int rg__h_list(lua_State *L)
{
    rg_history *h = rg__check(L, 1);
    int fidx;
    const char *type = rg__args(L, 2, &fidx);
    return rg__list_range(L, 1, h, 0, h->n, type, fidx);
}

/* h:after(event_or_time [, type [, filter]]) -> matching events after it */
static int rg__h_after(lua_State *L)
{
    rg_history *h = rg__check(L, 1);
    int before, after, fidx;
    luaL_checkany(L, 2);
    const char *type = rg__args(L, 3, &fidx);
    rg__ref(L, 1, h, 2, &before, &after);
    return rg__list_range(L, 1, h, after, h->n, type, fidx);
}

/* h:before(event_or_time [, type [, filter]]) -> matching events before it */
static int rg__h_before(lua_State *L)
{
    rg_history *h = rg__check(L, 1);
    int before, after, fidx;
    luaL_checkany(L, 2);
    const char *type = rg__args(L, 3, &fidx);
    rg__ref(L, 1, h, 2, &before, &after);
    return rg__list_range(L, 1, h, 0, before, type, fidx);
}

/* h:memo(key, fn, ...) -> fn(h, ...), computed once per evaluation step and
 * shared by every rule of the patient at that moment (the building blocks of
 * lib/ use it so sixteen rules do not recount the same course). Treat the
 * value as read-only. */
static int rg__h_memo(lua_State *L)
{
    static const char nil_marker = 'n';
    rg_history *h = rg__check(L, 1);
    luaL_checkany(L, 2);
    luaL_checktype(L, 3, LUA_TFUNCTION);
    int top = lua_gettop(L);
    if (lua_getiuservalue(L, 1, 3) != LUA_TTABLE || h->memo_now != h->now || h->memo_n != h->n) {
        lua_pop(L, 1);
        lua_newtable(L);
        lua_pushvalue(L, -1);
        lua_setiuservalue(L, 1, 3);
        h->memo_now = h->now;
        h->memo_n = h->n;
    }
    int memo = lua_gettop(L);
    lua_pushvalue(L, 2);
    if (lua_rawget(L, memo) == LUA_TTABLE) { /* {value, first touch, last touch} */
        int entry = lua_gettop(L);
        lua_rawgeti(L, entry, 2);
        lua_rawgeti(L, entry, 3);
        int from = (int)lua_tointeger(L, -2), to = (int)lua_tointeger(L, -1);
        lua_pop(L, 2);
        for (int i = from; h->log && i < to && i < h->log->n; i++)
            rg__touch(h, h->log->v[i].ev); /* the events it rested on, for this rule too */
        if (lua_rawgeti(L, entry, 1) == LUA_TLIGHTUSERDATA &&
            lua_touserdata(L, -1) == (void *)&nil_marker)
            lua_pushnil(L);
        return 1;
    }
    lua_pop(L, 1);
    int from = h->log ? h->log->n : 0;
    lua_pushvalue(L, 3);
    lua_pushvalue(L, 1);
    for (int i = 4; i <= top; i++)
        lua_pushvalue(L, i);
    lua_call(L, top - 2, 1);
    lua_createtable(L, 3, 0);
    if (lua_isnil(L, -2))
        lua_pushlightuserdata(L, (void *)&nil_marker);
    else
        lua_pushvalue(L, -2);
    lua_rawseti(L, -2, 1);
    lua_pushinteger(L, from);
    lua_rawseti(L, -2, 2);
    lua_pushinteger(L, h->log ? h->log->n : 0);
    lua_rawseti(L, -2, 3);
    lua_pushvalue(L, 2);
    lua_insert(L, -2);
    lua_rawset(L, memo);
    return 1;
}

static int rg__h_index(lua_State *L)
{
    rg_history *h = rg__check(L, 1);
    const char *k = luaL_checkstring(L, 2);
    if (lua_getfield(L, lua_upvalueindex(1), k) != LUA_TNIL)
        return 1;
    if (!strcmp(k, "now"))
        lua_pushinteger(L, h->now);
    else if (!strcmp(k, "patient"))
        lua_pushstring(L, h->patient ? h->patient : "");
    else if (!strcmp(k, "clinic"))
        lua_pushstring(L, h->clinic ? h->clinic : "");
    else
        return luaL_error(L, "history has no field or method '%s' (it has last, first, count, "
                             "list, after, before, memo, now, patient, clinic)", k);
    return 1;
}

static int rg__h_newindex(lua_State *L)
{
    return luaL_error(L, "the history is read-only");
}

static int rg__h_tostring(lua_State *L)
{
    rg_history *h = luaL_checkudata(L, 1, RG_HISTORY_MT);
    lua_pushfstring(L, "history of %s (%d events so far)", h->patient ? h->patient : "?", h->n);
    return 1;
}

rg_history *rg_history_new(lua_State *L)
{
    rg_history *h = lua_newuserdatauv(L, sizeof *h, 4);
    memset(h, 0, sizeof *h);
    if (luaL_getmetatable(L, RG_HISTORY_MT) == LUA_TNIL) {
        lua_pop(L, 1);
        rg__jbox_mt(L);
        lua_createtable(L, 0, 5);
        static const luaL_Reg methods[] = {
            {"last", rg__h_last},   {"first", rg__h_first}, {"count", rg__h_count},
            {"list", rg__h_list},   {"after", rg__h_after}, {"before", rg__h_before},
            {"memo", rg__h_memo},   {NULL, NULL},
        };
        luaL_newlib(L, methods);
        lua_pushcclosure(L, rg__h_index, 1);
        lua_setfield(L, -2, "__index");
        lua_pushcfunction(L, rg__h_newindex);
        lua_setfield(L, -2, "__newindex");
        lua_pushcfunction(L, rg__h_tostring);
        lua_setfield(L, -2, "__tostring");
        lua_pushboolean(L, 0);
        lua_setfield(L, -2, "__metatable");
        lua_pushvalue(L, -1);
        rg__register_mt(L, RG_HISTORY_MT);
    }
    lua_setmetatable(L, -2);
    lua_newtable(L);
    lua_setiuservalue(L, -2, 1);
    lua_newtable(L);
    lua_createtable(L, 0, 1);
    lua_pushliteral(L, "k");
    lua_setfield(L, -2, "__mode");
    lua_setmetatable(L, -2);
    lua_setiuservalue(L, -2, 2);
    lua_createtable(L, 0, 3); /* the metatable of this history's event tables */
    lua_pushvalue(L, -2);
    lua_pushcclosure(L, rg__ev_index, 1);
    lua_setfield(L, -2, "__index");
    lua_pushcfunction(L, rg__ev_pairs);
    lua_setfield(L, -2, "__pairs");
    lua_pushboolean(L, 0);
    lua_setfield(L, -2, "__metatable");
    lua_setiuservalue(L, -2, 4);
    return h;
}

void rg_history_unbind(lua_State *L, int idx)
{
    /* No allocation here: the cached tables become garbage with the userdata. */
    rg_history *h = lua_touserdata(L, idx);
    h->ev = NULL;
    h->nev = h->n = 1; /* marks it closed: rg__check raises */
    h->log = NULL;
    h->clinic = h->patient = NULL;
}
