/*
 * history.c - the patient's history as protocols see it: `h:last("infusion")`,
 * `h:count("assessment", {instrument = "phq9"})`, `h:after(e, "integration_session")`.
 *
 * The history is compiled before a rule sees it: the engine hands over a C
 * array of events in (at, seq) order, an index of each type's events, and
 * each event's data as compiled fields (runtime/core/fields.h, decoded once at
 * ingest). Queries walk those arrays in C; a filter table such as
 * {instrument = "phq9"} is compared against the compiled fields without
 * making a Lua value. An event becomes a Lua table only when a query returns
 * it, cached for the rest of the patient's evaluation, and its `data` table
 * is made only when a rule reads it. Only events at or before `now` are
 * visible, so the same object serves every step of a replay. Nested data
 * (objects, arrays) and the clinic's JSON overrides are decoded with jansson,
 * held by a userdata box while they become Lua values, so an error on the way
 * (memory) leaks nothing (the liolib recipe: box first, then acquire).
 * Depends on Lua 5.4, jansson and runtime/core/fields.c.
 */
#include "bindings/bindings.h"
#include "core/digest.h"
#include "core/fields.h"

#include <lauxlib.h>
#include <jansson.h>

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define RG_HISTORY_MT "regimen.history"
#define RG_JBOX_MT "regimen.jsonbox"
#define RG_JSON_MAX_DEPTH 32

/* The history at idx. Every method is called with it as self; a cheap check
 * (userdata of the history's size carrying its magic) instead of a registry
 * lookup per call. */
static rg_history *rg__check(lua_State *L, int idx)
{
    rg_history *h = lua_touserdata(L, idx);
    if (!h || lua_type(L, idx) != LUA_TUSERDATA || lua_rawlen(L, idx) != sizeof *h ||
        h->magic != RG_HISTORY_MAGIC)
        luaL_typeerror(L, idx, "history (call its methods with ':', as h:last(...))");
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

/* [-0, +1] JSON text (n bytes) as Lua values ({} for NULL text). */
static void rg__push_json_text(lua_State *L, const char *text, size_t n)
{
    if (!text) {
        lua_newtable(L);
        return;
    }
    json_t **box = lua_newuserdatauv(L, sizeof *box, 0);
    *box = NULL;
    luaL_setmetatable(L, RG_JBOX_MT);
    json_error_t je;
    *box = json_loadb(text, n, JSON_DECODE_ANY, &je);
    /* The text was valid JSON when it was stored (or configured); jansson
     * reports a failed allocation as a syntax error ("string expected"). So
     * a failure here is the host's memory: the evaluation fails as a whole
     * rather than commit a rule error that is not the protocol's. */
    if (!*box) {
        rg_host_oom(L);
        luaL_error(L, "stored event data could not be decoded (out of memory?): %s", je.text);
    }
    rg__push_json(L, *box, 0);
    json_decref(*box);
    *box = NULL;
    lua_remove(L, -2);
}

void rg_field_push(lua_State *L, const rg_field *f)
{
    switch (f->tag) {
    case RG_F_INT: lua_pushinteger(L, (lua_Integer)f->i); break;
    case RG_F_REAL: lua_pushnumber(L, f->r); break;
    case RG_F_STR: lua_pushlstring(L, f->s, f->slen); break;
    case RG_F_TRUE: lua_pushboolean(L, 1); break;
    case RG_F_FALSE: lua_pushboolean(L, 0); break;
    case RG_F_JSON: rg__push_json_text(L, f->s, f->slen); break;
    default: lua_pushnil(L); break;
    }
}

/* [-0, +1] The data table of event e, from its compiled fields. */
static void rg__push_data(lua_State *L, const rg_hevent *e)
{
    lua_createtable(L, 0, 4);
    if (!e->fields)
        return;
    luaL_checkstack(L, 4, "event data");
    size_t pos = 0;
    rg_field f;
    int r;
    while ((r = rg_fields_next(e->fields, e->nfields, &pos, &f)) == 1) {
        if (f.tag == RG_F_NULL)
            continue; /* data.x is nil, as for a missing field */
        lua_pushlstring(L, f.key, f.klen);
        rg_field_push(L, &f);
        lua_rawset(L, -3);
    }
    if (r < 0)
        luaL_error(L, "the stored data of event %s is damaged", e->id);
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

static json_t *rg__to_json(lua_State *L, int idx, int depth, int empty_list, char *why,
                           size_t whylen)
{
    idx = lua_absindex(L, idx);
    switch (lua_type(L, idx)) {
    case LUA_TSTRING: {
        size_t n;
        const char *s = lua_tolstring(L, idx, &n);
        return json_stringn(s, n);
    }
    case LUA_TNUMBER:
        return lua_isinteger(L, idx) ? json_integer((json_int_t)lua_tointeger(L, idx))
                                     : json_real(lua_tonumber(L, idx));
    case LUA_TBOOLEAN:
        return json_boolean(lua_toboolean(L, idx));
    case LUA_TTABLE:
        break;
    default:
        snprintf(why, whylen, "a %s cannot be used here", lua_typename(L, lua_type(L, idx)));
        return NULL;
    }
    if (depth > 16 || !lua_checkstack(L, 4)) {
        snprintf(why, whylen, "tables nested too deeply");
        return NULL;
    }
    size_t n = lua_rawlen(L, idx), count = 0;
    lua_pushnil(L);
    while (lua_next(L, idx)) {
        lua_pop(L, 1);
        count++;
    }
    int is_array = count == n && (n || empty_list);
    json_t *out = is_array ? json_array() : json_object();
    lua_pushnil(L);
    while (out && lua_next(L, idx)) {
        json_t *v = rg__to_json(L, -1, depth + 1, empty_list, why, whylen);
        if (!v) {
            lua_pop(L, 2);
            json_decref(out);
            return NULL;
        }
        if (is_array) {
            json_array_append_new(out, v); /* lua_next over 1..n: order fixed below */
        } else if (lua_type(L, -2) == LUA_TSTRING) {
            json_object_set_new(out, lua_tostring(L, -2), v);
        } else if (lua_isinteger(L, -2)) {
            char k[32];
            snprintf(k, sizeof k, "%lld", (long long)lua_tointeger(L, -2));
            json_object_set_new(out, k, v);
        } else {
            json_decref(v);
            json_decref(out);
            lua_pop(L, 2);
            snprintf(why, whylen, "table keys must be names or positions");
            return NULL;
        }
        lua_pop(L, 1);
    }
    if (is_array) { /* rebuild in index order: lua_next need not visit 1..n in order */
        json_decref(out);
        out = json_array();
        for (size_t i = 1; i <= n; i++) {
            lua_rawgeti(L, idx, (lua_Integer)i);
            json_t *v = rg__to_json(L, -1, depth + 1, empty_list, why, whylen);
            lua_pop(L, 1);
            if (!v) {
                json_decref(out);
                return NULL;
            }
            json_array_append_new(out, v);
        }
    }
    return out;
}

json_t *rg_lua_to_json(lua_State *L, int idx, int empty_list, char *why, size_t whylen)
{
    return rg__to_json(L, idx, 0, empty_list, why, whylen);
}

void rg_json_push(lua_State *L, const char *text)
{
    rg__jbox_mt(L); /* before any history exists */
    rg__push_json_text(L, text, text ? strlen(text) : 0);
}

/* The first event index with at >= t (strict: at > t) in [0, n). */
static int rg__bound(const rg_history *h, int n, rg_time t, int strict)
{
    int lo = 0, hi = n;
    while (lo < hi) {
        int mid = lo + (hi - lo) / 2;
        if (strict ? h->ev[mid].at <= t : h->ev[mid].at < t)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

/* Which event of h the table at tidx is (-1: none of them): the events at its
 * instant whose cached table it is. */
static int rg__index_of(lua_State *L, int hidx, const rg_history *h, int tidx)
{
    tidx = lua_absindex(L, tidx);
    if (lua_getfield(L, tidx, "at") != LUA_TNUMBER || !lua_isinteger(L, -1)) {
        lua_pop(L, 1);
        return -1;
    }
    rg_time at = lua_tointeger(L, -1);
    lua_pop(L, 1);
    int found = -1;
    lua_getiuservalue(L, hidx, 1); /* cache */
    for (int i = rg__bound(h, h->nev, at, 0); found < 0 && i < h->nev && h->ev[i].at == at; i++) {
        lua_rawgeti(L, -1, i + 1);
        if (lua_rawequal(L, -1, tidx))
            found = i;
        lua_pop(L, 1);
    }
    lua_pop(L, 1);
    return found;
}

/* __index of event tables (upvalue 1: the history): `data` is made from the
 * compiled fields the first time it is read, then stored in the table. Most
 * events are only counted or compared by type and time. */
static int rg__ev_index(lua_State *L)
{
    if (lua_type(L, 2) != LUA_TSTRING || strcmp(lua_tostring(L, 2), "data") != 0)
        return 0;
    rg_history *h = lua_touserdata(L, lua_upvalueindex(1));
    int i = h->ev ? rg__index_of(L, lua_upvalueindex(1), h, 1) : -1;
    if (i < 0)
        return luaL_error(L, "event data read outside the evaluation the event was given to");
    rg__push_data(L, &h->ev[i]);
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

/* [-0, +1] The Lua string of an event's type, made once per history. */
static void rg__push_type(lua_State *L, int hidx, const rg_hevent *e)
{
    if (!e->tid) {
        lua_pushstring(L, e->type);
        return;
    }
    lua_getiuservalue(L, hidx, 2);
    if (lua_rawgeti(L, -1, e->tid) != LUA_TSTRING) {
        lua_pop(L, 1);
        lua_pushstring(L, e->type);
        lua_pushvalue(L, -1);
        lua_rawseti(L, -3, e->tid);
    }
    lua_remove(L, -2);
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
    rg__push_type(L, hidx, e);
    lua_setfield(L, -2, "type");
    lua_pushinteger(L, e->at);
    lua_setfield(L, -2, "at");
    lua_getiuservalue(L, hidx, 4); /* data comes when read (rg__ev_index) */
    lua_setmetatable(L, -2);
    lua_pushvalue(L, -1);
    lua_rawseti(L, -3, i + 1); /* cache[i+1] = ev */
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

unsigned rg_reads_type_bit(const char *type)
{
    uint64_t x = rg_fnv1a(RG_FNV1A_SEED, type, strlen(type));
    return (unsigned)((x ^ (x >> 32)) & 255);
}

void rg_reads_type(rg_reads *r, const char *type)
{
    if (!type) {
        r->all = 1;
        return;
    }
    unsigned b = rg_reads_type_bit(type);
    r->types[b >> 6] |= (uint64_t)1 << (b & 63);
}

void rg_reads_merge(rg_reads *a, const rg_reads *b)
{
    for (int i = 0; i < 4; i++)
        a->types[i] |= b->types[i];
    a->all |= b->all;
    a->clock |= b->clock;
}

int rg_reads_hit(const rg_reads *r, const rg_reads *changed)
{
    int any = 0;
    for (int i = 0; i < 4; i++)
        any |= (r->types[i] & changed->types[i]) != 0;
    int changed_any = changed->all;
    for (int i = 0; i < 4 && !changed_any; i++)
        changed_any = changed->types[i] != 0;
    return any || changed->all || (r->all && changed_any);
}

/* What the running reader read (a type, with its interned id tid or 0;
 * NULL: every type; or the clock): into its set and every h:memo computation
 * under way (so a computation that raises and is caught loses nothing). */
static void rg__read(rg_history *h, const char *type, int tid, int clock)
{
    int d = h->depth < RG_READS_DEPTH ? h->depth : RG_READS_DEPTH;
    unsigned bit = 0;
    if (type && !clock) {
        if (tid > 0 && tid <= 256 && h->tbit[tid - 1])
            bit = h->tbit[tid - 1] - 1u;
        else
            bit = rg_reads_type_bit(type);
        if (tid > 0 && tid <= 256)
            h->tbit[tid - 1] = (unsigned short)(bit + 1);
    }
    for (int i = h->reads ? 0 : 1; i <= d; i++) {
        rg_reads *r = i ? &h->acc[i] : h->reads;
        if (clock)
            r->clock = 1;
        else if (!type)
            r->all = 1;
        else
            r->types[bit >> 6] |= (uint64_t)1 << (bit & 63);
    }
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

/* Lua's == between a compiled field and the Lua value at idx (1 == 1.0). */
static int rg__field_eq(lua_State *L, const rg_field *f, int idx)
{
    switch (f->tag) {
    case RG_F_INT:
    case RG_F_REAL: {
        if (lua_type(L, idx) != LUA_TNUMBER)
            return 0;
        if (f->tag == RG_F_INT && lua_isinteger(L, idx))
            return f->i == lua_tointeger(L, idx);
        double d = f->tag == RG_F_REAL ? f->r : lua_tonumber(L, idx);
        if (f->tag == RG_F_REAL && !lua_isinteger(L, idx))
            return d == lua_tonumber(L, idx);
        int64_t i = f->tag == RG_F_INT ? f->i : lua_tointeger(L, idx);
        /* a float equals an integer only when it is that integer exactly */
        return d >= -0x1p63 && d < 0x1p63 && floor(d) == d && (int64_t)d == i;
    }
    case RG_F_STR: {
        size_t n;
        const char *s = lua_type(L, idx) == LUA_TSTRING ? lua_tolstring(L, idx, &n) : NULL;
        return s && n == f->slen && memcmp(s, f->s, n) == 0;
    }
    case RG_F_TRUE:
    case RG_F_FALSE:
        return lua_type(L, idx) == LUA_TBOOLEAN && lua_toboolean(L, idx) == (f->tag == RG_F_TRUE);
    default: /* null reads as nil; nested values are tables equal to nothing given */
        return 0;
    }
}

/* Does event e's data have every field of the filter table at fidx, equal? */
static int rg__fields_match(lua_State *L, const rg_hevent *e, int fidx)
{
    luaL_checkstack(L, 3, "filter");
    lua_pushnil(L);
    while (lua_next(L, fidx)) {
        size_t kl = 0;
        rg_field f;
        const char *k = lua_type(L, -2) == LUA_TSTRING ? lua_tolstring(L, -2, &kl) : NULL;
        int ok = k && e->fields && rg_fields_get(e->fields, e->nfields, k, kl, &f) == 1 &&
                 rg__field_eq(L, &f, -1);
        lua_pop(L, 1);
        if (!ok) {
            lua_pop(L, 1); /* the key left by the interrupted traversal */
            return 0;
        }
    }
    return 1;
}

/* Does event i pass the filter at fidx (0: none)? A function filter gets the
 * event's table; a filter table is compared with the compiled fields. */
static int rg__filter(lua_State *L, int hidx, rg_history *h, int i, int fidx)
{
    if (!fidx)
        return 1;
    if (lua_type(L, fidx) != LUA_TFUNCTION)
        return rg__fields_match(L, &h->ev[i], fidx);
    lua_pushvalue(L, fidx);
    rg_history_push_event(L, hidx, i);
    lua_call(L, 1, 1);
    int ok = lua_toboolean(L, -1);
    lua_pop(L, 1);
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

/* The events of one query: those of `type` (NULL: any) among the visible
 * events [from, to), walked through the type's index when it has one. */
typedef struct rg__sel {
    const int *list; /* positions map to event indexes through it; NULL: identity */
    int lo, hi;      /* positions */
    const char *slow; /* a type no event was interned for: compare strings */
} rg__sel;

static int rg__lower(const int *v, int n, int x)
{
    int lo = 0, hi = n;
    while (lo < hi) {
        int mid = lo + (hi - lo) / 2;
        if (v[mid] < x)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

int rg_history_type_lower(const rg_history *h, int tid, int i)
{
    return rg__lower(h->tix + h->toff[tid - 1], h->toff[tid] - h->toff[tid - 1], i);
}

static rg__sel rg__select(rg_history *h, const char *type, int from, int to)
{
    rg__sel s = {NULL, from, to, NULL};
    int tid = rg__tid(h, type);
    rg__read(h, type, tid, 0);
    if (type && tid && h->tix) {
        s.list = h->tix + h->toff[tid - 1];
        int n = h->toff[tid] - h->toff[tid - 1];
        s.lo = rg__lower(s.list, n, from);
        s.hi = rg__lower(s.list, n, to);
    } else if (type) {
        s.slow = type;
    }
    return s;
}

/* Event index at position p of the selection, or -1 when it is not of the type. */
static int rg__at(const rg_history *h, const rg__sel *s, int p)
{
    int i = s->list ? s->list[p] : p;
    if (s->slow && (h->ev[i].tid || strcmp(h->ev[i].type, s->slow) != 0))
        return -1;
    return i;
}

/* Position of a reference (event or time): events strictly before it are
 * [0, pos), events strictly after it are [after, n). */
static void rg__ref(lua_State *L, int hidx, rg_history *h, int ridx, int *before, int *after)
{
    if (lua_type(L, ridx) == LUA_TTABLE) {
        int i = rg__index_of(L, hidx, h, ridx);
        if (i >= 0) {
            *before = i < h->n ? i : h->n;
            *after = i + 1 < h->n ? i + 1 : h->n;
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
    *before = rg__bound(h, h->n, t, 0);
    *after = rg__bound(h, h->n, t, 1);
}

/* Pushes the matching events of [from, to) as a list, oldest first. */
static int rg__list_range(lua_State *L, int hidx, rg_history *h, int from, int to,
                          const char *type, int fidx)
{
    rg__sel s = rg__select(h, type, from, to);
    lua_createtable(L, s.hi - s.lo < 64 ? s.hi - s.lo : 64, 0);
    lua_Integer k = 0;
    for (int p = s.lo; p < s.hi; p++) {
        int i = rg__at(h, &s, p);
        if (i < 0 || !rg__filter(L, hidx, h, i, fidx))
            continue;
        rg_history_push_event(L, hidx, i);
        lua_rawseti(L, -2, ++k);
        rg__touch(h, i);
    }
    return 1;
}

/* [-0, +1] The first (or, from_end, the latest) matching event of [from,
 * to), or nil. */
static int rg__find_range(lua_State *L, int hidx, rg_history *h, int from, int to,
                          const char *type, int fidx, int from_end)
{
    rg__sel s = rg__select(h, type, from, to);
    for (int k = 0; k < s.hi - s.lo; k++) {
        int i = rg__at(h, &s, from_end ? s.hi - 1 - k : s.lo + k);
        if (i >= 0 && rg__filter(L, hidx, h, i, fidx)) {
            rg__touch(h, i);
            rg_history_push_event(L, hidx, i);
            return 1;
        }
    }
    lua_pushnil(L);
    return 1;
}

static int rg__find(lua_State *L, int from_end)
{
    rg_history *h = rg__check(L, 1);
    int fidx;
    const char *type = rg__args(L, 2, &fidx);
    return rg__find_range(L, 1, h, 0, h->n, type, fidx, from_end);
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
    rg__sel s = rg__select(h, type, 0, h->n);
    lua_Integer c = 0;
    for (int p = s.lo; p < s.hi; p++) {
        int i = rg__at(h, &s, p);
        if (i >= 0 && rg__filter(L, 1, h, i, fidx)) {
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

/* The queries relative to an event or a time: which events (after it or
 * before it), as a list or only the nearest one. */
enum { RG__AFTER, RG__BEFORE, RG__FIRST_AFTER, RG__LAST_BEFORE };

static int rg__relative(lua_State *L, int which)
{
    rg_history *h = rg__check(L, 1);
    int before, after, fidx;
    luaL_checkany(L, 2);
    const char *type = rg__args(L, 3, &fidx);
    rg__ref(L, 1, h, 2, &before, &after);
    switch (which) {
    case RG__AFTER: return rg__list_range(L, 1, h, after, h->n, type, fidx);
    case RG__BEFORE: return rg__list_range(L, 1, h, 0, before, type, fidx);
    case RG__FIRST_AFTER: return rg__find_range(L, 1, h, after, h->n, type, fidx, 0);
    default: return rg__find_range(L, 1, h, 0, before, type, fidx, 1);
    }
}

/* h:after(event_or_time [, type [, filter]]) -> matching events after it */
static int rg__h_after(lua_State *L) { return rg__relative(L, RG__AFTER); }

/* h:before(event_or_time [, type [, filter]]) -> matching events before it */
static int rg__h_before(lua_State *L) { return rg__relative(L, RG__BEFORE); }

/* h:first_after(event_or_time [, type [, filter]]) -> the first matching
 * event after it, or nil (what h:after(...)[1] gives, without the list) */
static int rg__h_first_after(lua_State *L) { return rg__relative(L, RG__FIRST_AFTER); }

/* h:last_before(event_or_time [, type [, filter]]) -> the latest matching
 * event before it, or nil */
static int rg__h_last_before(lua_State *L) { return rg__relative(L, RG__LAST_BEFORE); }

/* h:since(time [, type [, filter]]) -> matching events at or after time */
static int rg__h_since(lua_State *L)
{
    rg_history *h = rg__check(L, 1);
    int isint, fidx;
    rg_time t = lua_tointegerx(L, 2, &isint);
    if (!isint)
        luaL_argerror(L, 2, "expected a time (like now - days(30))");
    const char *type = rg__args(L, 3, &fidx);
    return rg__list_range(L, 1, h, rg__bound(h, h->n, t, 0), h->n, type, fidx);
}

/* h:values(type, field [, filter]) -> the values of data[field] of the
 * matching events, oldest first (events without the field are left out) */
static int rg__h_values(lua_State *L)
{
    rg_history *h = rg__check(L, 1);
    int fidx;
    const char *type = luaL_checkstring(L, 2);
    size_t klen;
    const char *key = luaL_checklstring(L, 3, &klen);
    lua_remove(L, 3); /* so the filter is argument 3 */
    rg__args(L, 2, &fidx);
    rg__sel s = rg__select(h, type, 0, h->n);
    lua_createtable(L, s.hi - s.lo < 64 ? s.hi - s.lo : 64, 0);
    lua_Integer k = 0;
    for (int p = s.lo; p < s.hi; p++) {
        int i = rg__at(h, &s, p);
        rg_field f;
        if (i < 0 || !h->ev[i].fields ||
            rg_fields_get(h->ev[i].fields, h->ev[i].nfields, key, klen, &f) != 1 ||
            f.tag == RG_F_NULL || !rg__filter(L, 1, h, i, fidx))
            continue;
        rg_field_push(L, &f);
        lua_rawseti(L, -2, ++k);
        rg__touch(h, i);
    }
    return 1;
}

/* h:memo(key, fn, ...) -> fn(h, ...), computed once and shared by every rule
 * of the patient (the building blocks of lib/ use it so sixteen rules do not
 * recount the same course). Within a step the key alone finds the value.
 * With h->memo_keep (the engine's incremental evaluation) a value also
 * stands at later steps of the evaluation while nothing it read changed
 * (rg_history_memo_step drops the others), as long as it is asked for with
 * the same function and the same arguments other than tables (which the key
 * must describe, as course.series's key holds p.acute_infusions): a
 * function made anew at each call, or `now` passed along, computes it
 * again. Without memo_keep, and in the table the engine's verification uses
 * (memo_fresh), values last one step. Treat the value as read-only. The
 * entry: { value, touched events (ints), step, reads, fn, nargs, args... }. */
static int rg__h_memo(lua_State *L)
{
    static const char nil_marker = 'n';
    rg_history *h = rg__check(L, 1);
    luaL_checkany(L, 2);
    luaL_checktype(L, 3, LUA_TFUNCTION);
    int top = lua_gettop(L);
    int fresh = !h->memo_keep || h->memo_fresh;
    int uv = h->memo_fresh ? 5 : 3;
    if (lua_getiuservalue(L, 1, uv) != LUA_TTABLE ||
        (fresh && (h->memo_now != h->now || h->memo_n != h->n))) {
        lua_pop(L, 1);
        lua_newtable(L);
        lua_pushvalue(L, -1);
        lua_setiuservalue(L, 1, uv);
        h->memo_now = h->now;
        h->memo_n = h->n;
    }
    int memo = lua_gettop(L);
    lua_pushvalue(L, 2);
    int found = lua_rawget(L, memo) == LUA_TTABLE;
    int entry = lua_gettop(L);
    int earlier = 0; /* kept from an earlier step */
    if (found && !fresh) {
        lua_rawgeti(L, entry, 3);
        earlier = lua_tointeger(L, -1) != (lua_Integer)h->memo_step;
        lua_pop(L, 1);
    }
    if (earlier) { /* asked for with the same function and plain arguments? */
        lua_rawgeti(L, entry, 5);
        found = lua_rawequal(L, -1, 3);
        lua_rawgeti(L, entry, 6);
        found = found && lua_tointeger(L, -1) == top - 3;
        lua_pop(L, 2);
        for (int i = 4; found && i <= top; i++) {
            lua_rawgeti(L, entry, 7 + (i - 4));
            found = lua_type(L, i) == LUA_TTABLE ? lua_type(L, -1) == LUA_TTABLE
                                                 : lua_rawequal(L, -1, i);
            lua_pop(L, 1);
        }
        if (found) {
            lua_pushinteger(L, (lua_Integer)h->memo_step);
            lua_rawseti(L, entry, 3);
        }
    }
    if (found) {
        size_t rlen = 0, tlen = 0;
        lua_rawgeti(L, entry, 4);
        const char *rs = lua_tolstring(L, -1, &rlen);
        rg_reads r; /* what it read, this reader read too */
        if (rs && rlen == sizeof r)
            memcpy(&r, rs, sizeof r);
        else
            memset(&r, 0, sizeof r), r.all = r.clock = 1;
        int d = h->depth < RG_READS_DEPTH ? h->depth : RG_READS_DEPTH;
        for (int i = h->reads ? 0 : 1; i <= d; i++)
            rg_reads_merge(i ? &h->acc[i] : h->reads, &r);
        lua_pop(L, 1);
        lua_rawgeti(L, entry, 2);
        const char *ts = lua_tolstring(L, -1, &tlen);
        for (size_t i = 0; ts && i + sizeof(int) <= tlen; i += sizeof(int)) {
            int ev;
            memcpy(&ev, ts + i, sizeof ev);
            if (ev < h->n)
                rg__touch(h, ev); /* the events it rested on, for this rule too */
        }
        lua_pop(L, 1);
        if (lua_rawgeti(L, entry, 1) == LUA_TLIGHTUSERDATA &&
            lua_touserdata(L, -1) == (void *)&nil_marker)
            lua_pushnil(L);
        return 1;
    }
    lua_settop(L, memo);
    int from = h->log ? h->log->n : 0;
    /* its reads are gathered apart (acc[d]) as well as the reader's: the
     * rules that reuse the value read them too. Deeper than RG_READS_DEPTH:
     * the value counts as reading everything. */
    int d = ++h->depth;
    if (d <= RG_READS_DEPTH)
        memset(&h->acc[d], 0, sizeof h->acc[d]);
    lua_pushvalue(L, 3);
    lua_pushvalue(L, 1);
    for (int i = 4; i <= top; i++)
        lua_pushvalue(L, i);
    lua_call(L, top - 2, 1);
    h->depth = d - 1; /* (a raise leaves it deeper: the engine resets it per reader) */
    rg_reads mr;
    if (d <= RG_READS_DEPTH)
        mr = h->acc[d];
    else
        memset(&mr, 0, sizeof mr), mr.all = mr.clock = 1;
    int value = lua_gettop(L);
    lua_createtable(L, 6 + (top - 3), 0);
    int ne = value + 1;
    if (lua_isnil(L, value))
        lua_pushlightuserdata(L, (void *)&nil_marker);
    else
        lua_pushvalue(L, value);
    lua_rawseti(L, ne, 1);
    /* the events it touched, by index: they stay the same events for as
     * long as the history is bound */
    int to = h->log ? h->log->n : 0;
    luaL_Buffer b;
    luaL_buffinit(L, &b);
    for (int i = from; h->log && i < to; i++)
        luaL_addlstring(&b, (const char *)&h->log->v[i].ev, sizeof(int));
    luaL_pushresult(&b);
    lua_rawseti(L, ne, 2);
    lua_pushinteger(L, (lua_Integer)h->memo_step);
    lua_rawseti(L, ne, 3);
    lua_pushlstring(L, (const char *)&mr, sizeof mr);
    lua_rawseti(L, ne, 4);
    lua_pushvalue(L, 3);
    lua_rawseti(L, ne, 5);
    lua_pushinteger(L, top - 3);
    lua_rawseti(L, ne, 6);
    for (int i = 4; i <= top; i++) {
        lua_pushvalue(L, i);
        lua_rawseti(L, ne, 7 + (i - 4));
    }
    lua_pushvalue(L, 2);
    lua_insert(L, -2);
    lua_rawset(L, memo);
    lua_settop(L, value);
    return 1;
}

void rg_history_memo_step(lua_State *L, int hidx, const rg_reads *changed)
{
    rg_history *h = lua_touserdata(L, hidx);
    h->memo_step++;
    if (!h->memo_keep || !lua_checkstack(L, 4))
        return;
    if (lua_getiuservalue(L, hidx, 3) != LUA_TTABLE) {
        lua_pop(L, 1);
        return;
    }
    int memo = lua_gettop(L);
    lua_pushnil(L);
    while (lua_next(L, memo)) {
        int stale = 1;
        size_t rlen = 0;
        if (lua_type(L, -1) == LUA_TTABLE && lua_rawgeti(L, -1, 4) == LUA_TSTRING) {
            const char *rs = lua_tolstring(L, -1, &rlen);
            rg_reads r;
            if (rlen == sizeof r) {
                memcpy(&r, rs, sizeof r);
                stale = r.clock || rg_reads_hit(&r, changed);
            }
        }
        lua_settop(L, memo + 1); /* the key */
        if (stale) { /* (clearing a field while traversing is allowed) */
            lua_pushvalue(L, -1);
            lua_pushnil(L);
            lua_rawset(L, memo);
        }
    }
    lua_pop(L, 1);
}

static int rg__h_index(lua_State *L)
{
    rg_history *h = rg__check(L, 1);
    const char *k = luaL_checkstring(L, 2);
    lua_pushvalue(L, 2);
    if (lua_rawget(L, lua_upvalueindex(1)) != LUA_TNIL) /* a method */
        return 1;
    if (!strcmp(k, "now")) {
        rg__read(h, NULL, 0, 1);
        lua_pushinteger(L, h->now);
    }
    else if (!strcmp(k, "patient"))
        lua_pushstring(L, h->patient ? h->patient : "");
    else if (!strcmp(k, "clinic"))
        lua_pushstring(L, h->clinic ? h->clinic : "");
    else {
        static const char *const known[] = {"last", "first", "count", "list", "after",
                                            "before", "first_after", "last_before", "since",
                                            "values", "memo", "now", "patient", "clinic"};
        const char *near = rg_suggest(k, known, RG_COUNTOF(known));
        return luaL_error(L, "history has no field or method '%s'%s%s%s (it has last, first, "
                             "count, list, after, before, first_after, last_before, since, "
                             "values, memo, now, patient, clinic)", k,
                          near ? " (did you mean h:" : "", near ? near : "", near ? "?)" : "");
    }
    return 1;
}

static int rg__h_newindex(lua_State *L)
{
    return luaL_error(L, "the history is read-only");
}

static int rg__h_tostring(lua_State *L)
{
    rg_history *h = luaL_checkudata(L, 1, RG_HISTORY_MT);
    rg__read(h, NULL, 0, 0); /* the count of every event so far */
    lua_pushfstring(L, "history of %s (%d events so far)", h->patient ? h->patient : "?", h->n);
    return 1;
}

rg_history *rg_history_new(lua_State *L)
{
    rg_history *h = lua_newuserdatauv(L, sizeof *h, 5);
    memset(h, 0, sizeof *h);
    h->magic = RG_HISTORY_MAGIC;
    if (luaL_getmetatable(L, RG_HISTORY_MT) == LUA_TNIL) {
        lua_pop(L, 1);
        rg__jbox_mt(L);
        lua_createtable(L, 0, 5);
        static const luaL_Reg methods[] = {
            {"last", rg__h_last},
            {"first", rg__h_first},
            {"count", rg__h_count},
            {"list", rg__h_list},
            {"after", rg__h_after},
            {"before", rg__h_before},
            {"first_after", rg__h_first_after},
            {"last_before", rg__h_last_before},
            {"since", rg__h_since},
            {"values", rg__h_values},
            {"memo", rg__h_memo},
            {NULL, NULL},
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
    lua_setiuservalue(L, -2, 1); /* 1: event tables by index + 1 */
    lua_newtable(L);
    lua_setiuservalue(L, -2, 2); /* 2: type names by type id */
    lua_createtable(L, 0, 3); /* the metatable of this history's event tables */
    lua_pushvalue(L, -2);
    lua_pushcclosure(L, rg__ev_index, 1);
    lua_setfield(L, -2, "__index");
    lua_pushcfunction(L, rg__ev_pairs);
    lua_setfield(L, -2, "__pairs");
    lua_pushboolean(L, 0);
    lua_setfield(L, -2, "__metatable");
    lua_setiuservalue(L, -2, 4); /* 4: the event tables' metatable; 3: h:memo's values;
                                  * 5: those of the engine's verification (memo_fresh) */
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
