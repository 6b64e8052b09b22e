/*
 * check.c - `regimen check`: proving a clinic's configuration, and
 * `regimen check --describe` (see check.h).
 *
 * What the protocols read is found two ways. Event types, and the data
 * fields a filter table compares ({ program = "ketamine" }), by running
 * them: the history's methods in the check's own sandbox are wrapped by
 * recorders (never in serve or simulate), so a type is known once a rule
 * asks for it. Data fields read from an event (e.data.x, course.number(e,
 * "x"), h:values(type, "x"), e.data.x == "value") from the protocol and
 * module sources, as text. Histories are then generated from what was found
 * and evaluated again, until nothing new turns up: an enrolment-only
 * patient, one with every type every day (long enough for the largest count
 * parameter twice over, so every phase of a course is reached), and one for
 * each type that leaves that type out (a `discharged` ends the course on its
 * first day in the others). Each history runs to 200 days after its last
 * event, so due dates a year ahead fire too.
 *
 * The sources are also read for `R.name` (R being any local bound to
 * require "regimen"): a name the module does not have is reported with its
 * line, whether or not a generated history reaches it. And every data field
 * they read and event type they name, with those the recorders see asked
 * for, is looked up in the vocabulary (the shipped lib/events.lua and
 * clinic.lua's events): the generated histories carry whatever the sources
 * name, so a misspelt one would pass them and never match a real event.
 *
 * Nothing here runs protocol code outside the engine's protected calls; the
 * recorders only note their arguments and call the method they wrap.
 * Depends on clinic.c, engine.c, ingest.c, jansson and Lua.
 */
#include "engine/check.h"
#include "core/grow.h"

#include "bindings/bindings.h"
#include "engine/clinic.h"
#include "engine/engine.h"
#include "store/ingest.h"

#include <lauxlib.h>
#include <lualib.h>
#include <jansson.h>

#include <ctype.h>
#include <dirent.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define RG__MAX 256         /* types, fields, values kept (more are ignored) */
#define RG__MAX_ERRORS 64   /* distinct errors kept */
#define RG__STOP_AFTER 24   /* errors (not distinct) after which evaluation stops */
#define RG__ROUNDS 5        /* discovery rounds at most */
#define RG__SEED_TYPE "check_seed"

typedef struct rg__pair {
    char *type, *field, *value; /* value: text, "#12" for a number, NULL for any */
} rg__pair;

typedef struct rg__found {
    char *types[RG__MAX];
    int ntypes;
    rg__pair pairs[RG__MAX]; /* (type, field, value) from filters, at run time */
    int npairs;
    char *fields[RG__MAX];   /* data fields the sources name */
    int nfields;
    rg__pair svals[RG__MAX]; /* (NULL, field, value) from `data.x == "v"` in the sources */
    int nsvals;
    char *typos[64];         /* "file:LINE: R.alrt: ..." found in the sources */
    int ntypos;
    /* the vocabulary: the event types known (lib/events.lua's and clinic.lua's
     * events) and every data field one of them carries; vocab is 0 when
     * there is none (no shipped root), and nothing is checked against it */
    char *vtypes[RG__MAX], *vfields[RG__MAX];
    int nvtypes, nvfields, vocab;
    char lib[4096]; /* "<shipped>/lib/": frames in it pass on what a protocol asks */
} rg__found;

typedef struct rg__error {
    char *msg, *patient;
    rg_time at;
    int count;
} rg__error;

typedef struct rg__errors {
    rg__error e[RG__MAX_ERRORS];
    int n, total;
} rg__errors;

static void rg__add_str(char **v, int *n, const char *s)
{
    for (int i = 0; i < *n; i++)
        if (!strcmp(v[i], s))
            return;
    if (*n < RG__MAX && (v[*n] = strdup(s)))
        (*n)++;
}

static int rg__same(const char *a, const char *b)
{
    return a == b || (a && b && !strcmp(a, b));
}

static void rg__add_pair(rg__pair *v, int *n, const char *t, const char *f, const char *val)
{
    for (int i = 0; i < *n; i++)
        if (rg__same(v[i].type, t) && !strcmp(v[i].field, f) && rg__same(v[i].value, val))
            return;
    if (*n == RG__MAX)
        return;
    rg__pair p = {t ? strdup(t) : NULL, strdup(f), val ? strdup(val) : NULL};
    if ((t && !p.type) || !p.field || (val && !p.value)) {
        free(p.type), free(p.field), free(p.value);
        return;
    }
    v[(*n)++] = p;
}

static void rg__found_free(rg__found *f)
{
    for (int i = 0; i < f->ntypes; i++)
        free(f->types[i]);
    for (int i = 0; i < f->nfields; i++)
        free(f->fields[i]);
    for (int i = 0; i < f->npairs; i++)
        free(f->pairs[i].type), free(f->pairs[i].field), free(f->pairs[i].value);
    for (int i = 0; i < f->nsvals; i++)
        free(f->svals[i].field), free(f->svals[i].value);
    for (int i = 0; i < f->ntypos; i++)
        free(f->typos[i]);
    for (int i = 0; i < f->nvtypes; i++)
        free(f->vtypes[i]);
    for (int i = 0; i < f->nvfields; i++)
        free(f->vfields[i]);
    memset(f, 0, sizeof *f);
}

/* Keeps one error found in the sources (once). */
static void rg__note(rg__found *f, const char *msg)
{
    for (int i = 0; i < f->ntypos; i++)
        if (!strcmp(f->typos[i], msg))
            return;
    if (f->ntypos < 64 && (f->typos[f->ntypos] = strdup(msg)))
        f->ntypos++;
}

static int rg__has(char *const *v, int n, const char *s)
{
    for (int i = 0; i < n; i++)
        if (!strcmp(v[i], s))
            return 1;
    return 0;
}

/* Notes "AT: WHAT: ..." when name, a data field (type 0) or an event type
 * (type 1) read at AT, is not in the vocabulary, with the nearest known
 * name, or how to declare it. */
static void rg__unknown(rg__found *f, const char *at, const char *what, const char *name,
                        int type)
{
    if (!f->vocab || rg__has(type ? f->vtypes : f->vfields, type ? f->nvtypes : f->nvfields, name))
        return;
    const char *near = rg_suggest(name, (const char *const *)(type ? f->vtypes : f->vfields),
                                  (size_t)(type ? f->nvtypes : f->nvfields));
    char msg[900], hint[300];
    if (near)
        snprintf(hint, sizeof hint, " (did you mean '%s'?)", near);
    else if (type)
        snprintf(hint, sizeof hint, " (declare a type of the clinic's own in clinic.lua: "
                 "events = { %s = { ... } })", name);
    else
        snprintf(hint, sizeof hint, " (declare a field of the clinic's own in clinic.lua, "
                 "under the type that carries it: events = { <type> = { \"%s\" } })", name);
    snprintf(msg, sizeof msg, "%s: %s: no event type %s '%s'%s", at, what,
             type ? "is named" : "carries a data field", name, hint);
    rg__note(f, msg);
}

/* ---- what the rules ask the history for ---------------------------------- */

static const struct {
    const char *name;
    int type_at; /* argument index of the type (self is 1) */
} rg__watched[] = {{"last", 2},  {"first", 2},       {"count", 2},       {"list", 2},
                   {"values", 2}, {"after", 3},      {"before", 3},      {"first_after", 3},
                   {"last_before", 3}, {"since", 3}};

/* Where the code that called a history method asked: "file:LINE" of the
 * innermost Lua frame outside the shipped modules (lib/course.lua passes on
 * the type a protocol names), and " (through lib/x.lua:LINE)" when the
 * method was called from another frame than that. */
static void rg__asked_at(lua_State *L, const rg__found *f, char *at, size_t n)
{
    lua_Debug ar;
    char first[600] = "";
    size_t ll = strlen(f->lib), shipped = ll > 4 ? ll - 4 : 0; /* "lib/..." */
    at[0] = '\0';
    for (int lv = 1; lua_getstack(L, lv, &ar); lv++) {
        if (!lua_getinfo(L, "Sl", &ar) || ar.currentline <= 0 || ar.source[0] != '@')
            continue;
        const char *src = ar.source + 1;
        int in_lib = ll && !strncmp(src, f->lib, ll), innermost = !first[0];
        if (innermost)
            snprintf(first, sizeof first, "%s:%d", in_lib ? src + shipped : src,
                     ar.currentline);
        if (!in_lib) {
            snprintf(at, n, "%s:%d", src, ar.currentline);
            if (!innermost)
                snprintf(at + strlen(at), n - strlen(at), " (through %s)", first);
            return;
        }
    }
    snprintf(at, n, "%s", first[0] ? first : "?");
}

/* [-n, +r, e] A history method as the check sees it (upvalues: the method,
 * the rg__found, the type's argument index, 1 for h:values, its name): notes
 * the type and the filter table's fields, and those the vocabulary does not
 * know, then calls the method with the same arguments. Allocation failures
 * only lose a note. */
static int rg__spy(lua_State *L)
{
    rg__found *f = lua_touserdata(L, lua_upvalueindex(2));
    int at = (int)lua_tointeger(L, lua_upvalueindex(3));
    int values = lua_toboolean(L, lua_upvalueindex(4));
    const char *name = lua_tostring(L, lua_upvalueindex(5));
    int n = lua_gettop(L);
    if (at <= n && lua_type(L, at) == LUA_TSTRING) {
        const char *type = lua_tostring(L, at);
        char where[1300] = "", what[300];
        rg__add_str(f->types, &f->ntypes, type);
        if (f->vocab && !rg__has(f->vtypes, f->nvtypes, type)) {
            rg__asked_at(L, f, where, sizeof where);
            snprintf(what, sizeof what, "h:%s(%s\"%s\")", name, at == 3 ? "..., " : "", type);
            rg__unknown(f, where, what, type, 1);
        }
        if (values && at + 1 <= n && lua_type(L, at + 1) == LUA_TSTRING) {
            const char *field = lua_tostring(L, at + 1);
            rg__add_pair(f->pairs, &f->npairs, type, field, NULL);
            if (f->vocab && !rg__has(f->vfields, f->nvfields, field)) {
                rg__asked_at(L, f, where, sizeof where);
                snprintf(what, sizeof what, "h:values(\"%s\", \"%s\")", type, field);
                rg__unknown(f, where, what, field, 0);
            }
        }
        int fi = at + 1 + values;
        if (fi <= n && lua_type(L, fi) == LUA_TTABLE) {
            luaL_checkstack(L, 4, "noting a filter");
            lua_pushnil(L);
            while (lua_next(L, fi)) {
                if (lua_type(L, -2) == LUA_TSTRING) {
                    char v[160] = "";
                    if (lua_type(L, -1) == LUA_TSTRING)
                        snprintf(v, sizeof v, "%s", lua_tostring(L, -1));
                    else if (lua_type(L, -1) == LUA_TNUMBER) {
                        lua_pushvalue(L, -1); /* a copy: lua_tostring converts in place */
                        snprintf(v, sizeof v, "#%s", lua_tostring(L, -1));
                        lua_pop(L, 1);
                    }
                    const char *field = lua_tostring(L, -2);
                    rg__add_pair(f->pairs, &f->npairs, type, field, v[0] ? v : NULL);
                    if (f->vocab && !rg__has(f->vfields, f->nvfields, field)) {
                        rg__asked_at(L, f, where, sizeof where);
                        snprintf(what, sizeof what, "h:%s(\"%s\", { %s = ... })", name, type,
                                 field);
                        rg__unknown(f, where, what, field, 0);
                    }
                }
                lua_pop(L, 1);
            }
        }
    }
    lua_pushvalue(L, lua_upvalueindex(1));
    lua_insert(L, 1);
    lua_call(L, n, LUA_MULTRET);
    return lua_gettop(L);
}

/* [-1, +0, e] (found as light userdata) Wraps the history methods of this
 * state (rg__spy). */
static int rg__install_spy(lua_State *L)
{
    rg__found *f = lua_touserdata(L, 1);
    rg_history_new(L);
    lua_getmetatable(L, -1);
    lua_pushliteral(L, "__index");
    lua_rawget(L, -2);
    if (!lua_getupvalue(L, -1, 1) || lua_type(L, -1) != LUA_TTABLE)
        return luaL_error(L, "the history's methods were not found");
    int m = lua_gettop(L);
    for (size_t i = 0; i < RG_COUNTOF(rg__watched); i++) {
        lua_pushstring(L, rg__watched[i].name);
        if (lua_rawget(L, m) != LUA_TFUNCTION) {
            lua_pop(L, 1);
            continue;
        }
        lua_pushlightuserdata(L, f);
        lua_pushinteger(L, rg__watched[i].type_at);
        lua_pushboolean(L, !strcmp(rg__watched[i].name, "values"));
        lua_pushstring(L, rg__watched[i].name);
        lua_pushcclosure(L, rg__spy, 5);
        lua_setfield(L, m, rg__watched[i].name);
    }
    rg_check_mode_set(L); /* every alert looked at in full, open or not */
    return 0;
}

/* ---- what the sources read ----------------------------------------------- */

static const char rg__scan_lua[] =
    "local text, add, addv = ...\n"
    "for f in text:gmatch('data%.([%a_][%w_]*)') do add(f) end\n"
    "for f in text:gmatch('data%[%s*[\"\\']([%w_]+)[\"\\']%s*%]') do add(f) end\n"
    "for f in text:gmatch('number%(%s*[%w_%.]+%s*,%s*[\"\\']([%w_]+)[\"\\']') do add(f) end\n"
    "for f in text:gmatch(':values%(%s*[\"\\'][%w_]+[\"\\']%s*,%s*[\"\\']([%w_]+)[\"\\']') do\n"
    "  add(f) end\n"
    "for f, v in text:gmatch('data%.([%a_][%w_]*)%s*[=~]=%s*\"([^\"]*)\"') do addv(f, v) end\n";

/* Every `R.name` of a file that requires "regimen" as R (any local name)
 * must be a function of the module: a typo fails only when its line runs,
 * which generated histories may not reach. */
static const char rg__names_lua[] =
    "local text, known, report = ...\n"
    "local aliases = {}\n"
    "for a in text:gmatch('local%s+([%a_][%w_]*)%s*=%s*require%s*%(?%s*[\\\"\\']regimen[\\\"\\']') do\n"
    "  aliases[#aliases + 1] = a end\n"
    "if #aliases == 0 then return end\n"
    "local n = 0\n"
    "for line in (text .. '\\n'):gmatch('(.-)\\n') do\n"
    "  n = n + 1\n"
    "  local code = line:gsub('%-%-.*', ''):gsub('\"[^\"]*\"', ''):gsub(\"'[^']*'\", '')\n"
    "  for _, a in ipairs(aliases) do\n"
    "    for fn in code:gmatch('%f[%w_]' .. a .. '%.([%a_][%w_]*)') do\n"
    "      if known[fn] == nil then report(n, a, fn) end\n"
    "    end\n"
    "  end\n"
    "end\n";

/* [-3, +0] (line, alias, name; upvalues: the rg__found, the file) Notes a
 * module function that does not exist, with the one meant. */
static int rg__scan_typo(lua_State *L)
{
    rg__found *f = lua_touserdata(L, lua_upvalueindex(1));
    const char *names[64];
    size_t n = 0;
    lua_rawgetp(L, LUA_REGISTRYINDEX, rg__names_lua); /* the module, kept by rg__scan_sources */
    for (lua_pushnil(L); lua_next(L, -2); lua_pop(L, 1))
        if (n < 64 && lua_type(L, -2) == LUA_TSTRING)
            names[n++] = lua_tostring(L, -2);
    const char *near = rg_suggest(luaL_checkstring(L, 3), names, n);
    char msg[600];
    snprintf(msg, sizeof msg, "%s:%d: %s.%s: the regimen module has no '%s'%s%s%s",
             lua_tostring(L, lua_upvalueindex(2)), (int)luaL_checkinteger(L, 1),
             luaL_checkstring(L, 2), lua_tostring(L, 3), lua_tostring(L, 3),
             near ? " (did you mean R." : "", near ? near : "", near ? "?)" : "");
    rg__note(f, msg);
    return 0;
}

/* Every data field a line reads as e.data.x, e.data["x"], course.number(e,
 * "x") or h:values(type, "x") (comments left out) must be one an event type
 * of the vocabulary carries, and every type it asks the history for by name
 * (h:last("x"), h:after(e, "x"), ...) a known one: a misspelt field is nil on
 * every real event, a misspelt type is never sent, and a rule that reads
 * them never fires. Read from the text, so also in a branch no generated
 * history reaches (the recorders find the rest, rg__spy). */
static const char rg__reads_lua[] =
    "local text, known, types, report = ...\n"
    "local n = 0\n"
    "local function read(expr, f) if not known[f] then report(n, expr, f, false) end end\n"
    "local function ask(expr, t) if not types[t] then report(n, expr, t, true) end end\n"
    "local first = { last = 1, first = 1, count = 1, list = 1, values = 1 }\n"
    "local second = { after = 1, before = 1, first_after = 1, last_before = 1, since = 1 }\n"
    "-- block comments and long strings left out, their lines kept\n"
    "local function blank(s) return (s:gsub('[^\\n]', ' ')) end\n"
    "text = text:gsub('(%-%-%[(=*)%[.-%]%2%])', blank):gsub('(%[(=*)%[.-%]%2%])', blank)\n"
    "for line in (text .. '\\n'):gmatch('(.-)\\n') do\n"
    "  n = n + 1\n"
    "  local c = line:find('--', 1, true)\n"
    "  local code = c and line:sub(1, c - 1) or line\n"
    "  if code:find('.data', 1, true) then\n"
    "    for v, f in code:gmatch('([%w_]*)%.data%.([%a_][%w_]*)') do\n"
    "      read(v .. '.data.' .. f, f) end\n"
    "    for v, f in code:gmatch('([%w_]*)%.data%[%s*[\"\\']([%w_]+)[\"\\']%s*%]') do\n"
    "      read(v .. '.data[\"' .. f .. '\"]', f) end\n"
    "  end\n"
    "  if code:find('number(', 1, true) then\n"
    "    for pre, e, f in code:gmatch('([%w_%.]*)number%(%s*([%w_%.]+)%s*,%s*[\"\\']([%w_]+)[\"\\']') do\n"
    "      if pre == '' or pre:sub(-1) == '.' then read(pre .. 'number(' .. e .. ', \"' .. f .. '\")', f) end\n"
    "    end\n"
    "  end\n"
    "  if code:find(':', 1, true) then\n"
    "    for h, m, args in code:gmatch('([%w_]*):([%a_][%w_]*)%(([^)]*)') do\n"
    "      local t = first[m] and args:match('^%s*[\"\\']([%w_]+)[\"\\']')\n"
    "      if t then ask(h .. ':' .. m .. '(\"' .. t .. '\")', t) end\n"
    "      t = second[m] and args:match('^[^,(]+,%s*[\"\\']([%w_]+)[\"\\']')\n"
    "      if t then ask(h .. ':' .. m .. '(..., \"' .. t .. '\")', t) end\n"
    "      local f = m == 'values' and args:match('^%s*[\"\\'][%w_]+[\"\\']%s*,%s*[\"\\']([%w_]+)[\"\\']')\n"
    "      if f then read(h .. ':values(\"' .. args:match('^%s*[\"\\']([%w_]+)') .. '\", \"' .. f .. '\")', f) end\n"
    "    end\n"
    "  end\n"
    "end\n";

/* [-4, +0] (line, expression, name, is a type; upvalues: the rg__found,
 * the file) Notes a data field no event type carries, or a type not known. */
static int rg__scan_read(lua_State *L)
{
    rg__found *f = lua_touserdata(L, lua_upvalueindex(1));
    char at[4200];
    snprintf(at, sizeof at, "%s:%d", lua_tostring(L, lua_upvalueindex(2)),
             (int)luaL_checkinteger(L, 1));
    rg__unknown(f, at, luaL_checkstring(L, 2), luaL_checkstring(L, 3), lua_toboolean(L, 4));
    return 0;
}

static int rg__scan_add(lua_State *L)
{
    rg__found *f = lua_touserdata(L, lua_upvalueindex(1));
    rg__add_str(f->fields, &f->nfields, luaL_checkstring(L, 1));
    return 0;
}

static int rg__scan_addv(lua_State *L)
{
    rg__found *f = lua_touserdata(L, lua_upvalueindex(1));
    rg__add_pair(f->svals, &f->nsvals, NULL, luaL_checkstring(L, 1), luaL_checkstring(L, 2));
    return 0;
}

/* Notes the data fields file's text names (a plain Lua state of its own, for
 * string.gmatch: no protocol code runs in it). */
static void rg__scan_file(lua_State *L, rg__found *f, const char *file)
{
    size_t len;
    struct stat sb; /* only regular files: a FIFO would block (the loader names it) */
    char *text = stat(file, &sb) == 0 && S_ISREG(sb.st_mode) ? rg_slurp(file, &len) : NULL;
    if (!text)
        return;
    if (luaL_loadstring(L, rg__scan_lua) == LUA_OK) {
        lua_pushlstring(L, text, len);
        lua_pushlightuserdata(L, f);
        lua_pushcclosure(L, rg__scan_add, 1);
        lua_pushlightuserdata(L, f);
        lua_pushcclosure(L, rg__scan_addv, 1);
        lua_pcall(L, 3, 0, 0);
    }
    lua_settop(L, 0);
    if (luaL_loadstring(L, rg__names_lua) == LUA_OK) {
        lua_pushlstring(L, text, len);
        lua_rawgetp(L, LUA_REGISTRYINDEX, rg__names_lua);
        lua_pushlightuserdata(L, f);
        lua_pushstring(L, file);
        lua_pushcclosure(L, rg__scan_typo, 2);
        lua_pcall(L, 3, 0, 0);
    }
    lua_settop(L, 0);
    if (f->vocab && luaL_loadstring(L, rg__reads_lua) == LUA_OK) {
        lua_pushlstring(L, text, len);
        lua_rawgetp(L, LUA_REGISTRYINDEX, rg__reads_lua); /* the fields known, as a set */
        lua_rawgetp(L, LUA_REGISTRYINDEX, &f->vtypes);    /* and the types */
        lua_pushlightuserdata(L, f);
        lua_pushstring(L, file);
        lua_pushcclosure(L, rg__scan_read, 2);
        lua_pcall(L, 4, 0, 0);
    }
    lua_settop(L, 0);
    free(text);
}

/* Scans the *.lua files of dir and its subdirectories (tests/ left out). */
static void rg__scan_dir(lua_State *L, rg__found *f, const char *dir, int depth)
{
    DIR *d = opendir(dir);
    struct dirent *de;
    while (d && (de = readdir(d))) {
        char path[4096];
        struct stat sb;
        size_t n = strlen(de->d_name);
        if (de->d_name[0] == '.' || !strcmp(de->d_name, "tests"))
            continue;
        snprintf(path, sizeof path, "%s/%s", dir, de->d_name);
        if (stat(path, &sb) != 0)
            continue;
        if (S_ISDIR(sb.st_mode) && depth < 3)
            rg__scan_dir(L, f, path, depth + 1);
        else if (S_ISREG(sb.st_mode) && n > 4 && !strcmp(de->d_name + n - 4, ".lua") &&
                 strcmp(de->d_name, "clinic.lua"))
            rg__scan_file(L, f, path);
    }
    if (d)
        closedir(d);
}

static void rg__scan_sources(rg__found *f, const rg_clinic *c, const char *dir,
                             const char *shipped)
{
    lua_State *L = luaL_newstate();
    if (!L)
        return;
    luaL_requiref(L, "string", luaopen_string, 1);
    luaL_requiref(L, "_G", luaopen_base, 1); /* ipairs */
    lua_settop(L, 0);
    rg_open_regimen(L); /* the module's names, for rg__scan_typo */
    lua_rawsetp(L, LUA_REGISTRYINDEX, rg__names_lua);
    lua_createtable(L, 0, f->nvfields); /* the fields and types known, for rg__reads_lua */
    for (int i = 0; i < f->nvfields; i++) {
        lua_pushboolean(L, 1);
        lua_setfield(L, -2, f->vfields[i]);
    }
    lua_rawsetp(L, LUA_REGISTRYINDEX, rg__reads_lua);
    lua_createtable(L, 0, f->nvtypes);
    for (int i = 0; i < f->nvtypes; i++) {
        lua_pushboolean(L, 1);
        lua_setfield(L, -2, f->vtypes[i]);
    }
    lua_rawsetp(L, LUA_REGISTRYINDEX, &f->vtypes);
    for (int i = 0; i < c->nprotos; i++)
        rg__scan_file(L, f, c->protos[i].file);
    rg__scan_dir(L, f, dir, 0);
    if (shipped) {
        char lib[4096];
        snprintf(lib, sizeof lib, "%s/lib", shipped);
        rg__scan_dir(L, f, lib, 1);
    }
    lua_close(L);
}

/* ---- generated histories -------------------------------------------------- */

static void rg__on_error(void *ud, const char *clinic, const char *patient, rg_time at,
                         const char *msg)
{
    rg__errors *es = ud;
    (void)clinic;
    es->total++;
    size_t first = strcspn(msg, "\n");
    for (int i = 0; i < es->n; i++)
        if (!strncmp(es->e[i].msg, msg, first) && strcspn(es->e[i].msg, "\n") == first) {
            es->e[i].count++;
            return;
        }
    if (es->n == RG__MAX_ERRORS)
        return;
    rg__error *e = &es->e[es->n];
    e->msg = strdup(msg);
    e->patient = strdup(patient ? patient : "");
    if (!e->msg || !e->patient) {
        free(e->msg), free(e->patient);
        return;
    }
    e->at = at;
    e->count = 1;
    es->n++;
}

/* A value for field of an event of type on day: what a filter compared it
 * with, else what a source compared it with, else a number from a spread
 * that crosses the usual limits (0, 0.5, 1, 3, 15, 27, 180). */
static json_t *rg__value(const rg__found *f, const char *type, const char *field, int day)
{
    const char *vals[32];
    int n = 0;
    for (int i = 0; i < f->npairs && n < 32; i++)
        if (f->pairs[i].value && !strcmp(f->pairs[i].type, type) &&
            !strcmp(f->pairs[i].field, field))
            vals[n++] = f->pairs[i].value;
    for (int i = 0; i < f->nsvals && n == 0; i++)
        if (!strcmp(f->svals[i].field, field)) {
            for (int j = i; j < f->nsvals && n < 32; j++)
                if (!strcmp(f->svals[j].field, field))
                    vals[n++] = f->svals[j].value;
        }
    if (n) {
        const char *v = vals[day % n];
        return v[0] == '#' ? json_real(atof(v + 1)) : json_string(v);
    }
    static const double spread[] = {1, 0.5, 15, 0, 180, 3, 27};
    unsigned h = 0;
    for (const char *s = field; *s; s++)
        h = h * 31 + (unsigned char)*s;
    return json_real(spread[(h + (unsigned)day) % RG_COUNTOF(spread)]);
}

typedef struct rg__gen {
    rg_store *st;
    const rg__found *f;
    const char *start; /* the first plan type (enrolled), when the rules read it */
    rg_time t0;
    int days, seq;
    char patients[RG__MAX + 4][64];
    int npatients;
} rg__gen;

static int rg__put(rg__gen *g, const char *patient, const char *type, int day, int slot)
{
    json_t *ev = json_object(), *data = json_object();
    char id[96], at[RG_TIME_BUFSZ];
    snprintf(id, sizeof id, "g%d", ++g->seq);
    rg_time_format(g->t0 + day * RG_MS_DAY + slot * RG_MS_MINUTE, at);
    int start = g->start && !strcmp(type, g->start);
    for (int i = 0; i < g->f->npairs; i++) /* the fields a filter compares */
        if (!strcmp(g->f->pairs[i].type, type) &&
            !json_object_get(data, g->f->pairs[i].field))
            json_object_set_new(data, g->f->pairs[i].field,
                                rg__value(g->f, type, g->f->pairs[i].field, day));
    for (int i = 0; i < g->f->nfields && !start; i++) /* and every field the sources read */
        if (!json_object_get(data, g->f->fields[i]))
            json_object_set_new(data, g->f->fields[i], rg__value(g->f, type, g->f->fields[i], day));
    json_object_set_new(ev, "id", json_string(id));
    json_object_set_new(ev, "clinic", json_string("check"));
    json_object_set_new(ev, "patient", json_string(patient));
    json_object_set_new(ev, "type", json_string(type));
    json_object_set_new(ev, "at", json_string(at));
    json_object_set_new(ev, "data", data);
    char *text = json_dumps(ev, JSON_COMPACT);
    json_decref(ev);
    if (!text)
        return RG_ENOMEM;
    rg_ingest_counts counts = {0};
    int rc = rg_ingest_one(g->st, text, strlen(text), "check", g->seq, &counts, NULL, NULL);
    free(text);
    return rc < 0 ? rc : RG_OK;
}

/* One patient: the start event, then (unless only_start) every other type
 * each day but `without`. */
static int rg__patient(rg__gen *g, const char *name, int only_start, const char *without)
{
    if (g->npatients == RG__MAX + 4)
        return RG_OK;
    snprintf(g->patients[g->npatients++], sizeof g->patients[0], "%s", name);
    int rc = g->start ? rg__put(g, name, g->start, 0, 0) : RG_OK;
    for (int d = 1; d <= g->days && !only_start && !rc; d++)
        for (int i = 0; i < g->f->ntypes && !rc; i++) {
            const char *t = g->f->types[i];
            if ((g->start && !strcmp(t, g->start)) || (without && !strcmp(t, without)))
                continue;
            rc = rg__put(g, name, t, d, i + 1);
        }
    return rc;
}

static int rg__generate(rg__gen *g)
{
    int rc = rg__put(g, "check-seed", RG__SEED_TYPE, 0, 0);
    snprintf(g->patients[g->npatients++], sizeof g->patients[0], "check-seed");
    if (!rc && g->start)
        rc = rg__patient(g, "check-enrolment-only", 1, NULL);
    int others = g->f->ntypes - (g->start != NULL);
    if (!rc && others > 0)
        rc = rg__patient(g, "check-every-type", 0, NULL);
    for (int i = 0; i < g->f->ntypes && others > 1 && !rc; i++) {
        char name[64];
        if (g->start && !strcmp(g->f->types[i], g->start))
            continue;
        snprintf(name, sizeof name, "check-without-%.40s", g->f->types[i]);
        rc = rg__patient(g, name, 0, g->f->types[i]);
    }
    return rc;
}

/* [-0, +0] The largest count parameter in force (at most 60), so that a
 * generated course runs past the acute series whatever its length. Reads
 * plain tables raw: nothing raises. */
static int rg__largest_count(rg_clinic *c)
{
    lua_State *L = rg_sandbox_state(c->sb);
    int top = lua_gettop(L), most = 0;
    for (int i = 0; i < c->nprotos; i++) {
        rg_clinic_push_protocol(c, i);
        lua_pushliteral(L, "kinds");
        lua_rawget(L, -2);
        lua_pushliteral(L, "params");
        lua_rawget(L, -3);
        for (lua_pushnil(L); lua_next(L, -3); lua_pop(L, 1)) {
            lua_pushliteral(L, "kind");
            lua_rawget(L, -2);
            int count = lua_type(L, -1) == LUA_TSTRING && !strcmp(lua_tostring(L, -1), "count");
            lua_pop(L, 1);
            lua_pushvalue(L, -2);
            lua_rawget(L, -4);
            lua_Integer v = lua_isinteger(L, -1) ? lua_tointeger(L, -1) : 0;
            lua_pop(L, 1);
            if (count && v > most && v <= 60)
                most = (int)v;
        }
        lua_settop(L, top);
    }
    return most;
}

typedef struct rg__round {
    rg_limits lim;
    const char *dir, *shipped;
    rg__found *f;
    rg__errors *errs;
    int histories;
    long steps;
} rg__round;

/* One round: a fresh store and engine, the recorders, histories generated
 * from what is known so far, every patient advanced to 200 days after its
 * last event. */
static int rg__run_round(rg__round *r, char *err, size_t errlen)
{
    rg_store *st = NULL;
    rg_engine *eng = NULL;
    int rc = rg_store_open(&st, ":memory:", NULL, err, errlen);
    if (rc)
        return rc;
    /* a round is bounded as a whole too, not only each evaluation: rules
     * that stay under the per-evaluation limits but are slow at every step
     * (a protocol that would stall a service) use up the round's CPU
     * budget, which is an error check reports, and are then quarantined */
    rg_engine_opts eo = {.limits = r->lim, .shipped = r->shipped, .on_error = rg__on_error,
                         .ud = r->errs,
                         .budget = {.hits = 3, .window_s = 3600, .backoff_s = 3600,
                                    .cpu_ms = 2 * r->lim.deadline_ms, .cpu_window_s = 3600}};
    if ((rc = rg_engine_new(&eng, st, &eo))) {
        rg_store_close(st);
        return rg_fail(err, errlen, rc, "out of memory");
    }
    if ((rc = rg_engine_set_clinic(eng, "check", r->dir, err, errlen)))
        goto done;
    rg_clinic *c = rg_engine_clinic(eng, "check");
    lua_State *L = rg_sandbox_state(c->sb);
    rg_sandbox_enter(c->sb);
    lua_pushcfunction(L, rg__install_spy);
    lua_pushlightuserdata(L, r->f);
    rc = rg_pcall(c->sb, 1, 0, err, errlen);
    rg_sandbox_leave(c->sb);
    if (rc)
        goto done;
    rg__gen *g = calloc(1, sizeof *g);
    if (!g) {
        rc = rg_fail(err, errlen, RG_ENOMEM, "out of memory");
        goto done;
    }
    g->st = st;
    g->f = r->f;
    g->t0 = INT64_C(1767603600000); /* 2026-01-05T09:00:00Z, a Monday */
    int most = rg__largest_count(c);
    g->days = 2 * most + 4 < 10 ? 10 : 2 * most + 4;
    for (int i = 0; i < c->nprotos && !g->start; i++)
        for (int j = 0; j < r->f->ntypes && !g->start && c->protos[i].nplan > 0; j++)
            if (!strcmp(r->f->types[j], c->protos[i].plan_events[0]))
                g->start = r->f->types[j];
    /* the types known now: generating must not see the ones found meanwhile */
    rg__found snap = *r->f;
    g->f = &snap;
    if ((rc = rg_store_begin(st)) == RG_OK) {
        rc = rg__generate(g);
        rc = rc ? (rg_store_rollback(st), rc) : rg_store_commit(st);
    }
    if (rc) {
        rg_fail(err, errlen, rc, "generating histories: %s", rg_store_errmsg(st));
        free(g);
        goto done;
    }
    rg_time until = g->t0 + (g->days + 200) * RG_MS_DAY;
    for (int i = 0; i < g->npatients && r->errs->total < RG__STOP_AFTER && !rc; i++) {
        if ((rc = rg_store_begin(st)) == RG_OK) {
            rc = rg_engine_advance(eng, "check", g->patients[i], until);
            rc = rc ? (rg_store_rollback(st), rc) : rg_store_commit(st);
        }
        r->histories++;
    }
    if (rc)
        rg_fail(err, errlen, rc, "evaluating generated histories: %s", rg_store_errmsg(st));
    r->steps += rg_engine_stats_get(eng)->steps;
    free(g);
done:
    rg_engine_free(eng);
    rg_store_close(st);
    return rc;
}

/* Runs rounds until a round finds nothing new (or errors stop it). */
static int rg__discover(rg__round *r, char *err, size_t errlen)
{
    int rc = RG_OK;
    for (int round = 0; round < RG__ROUNDS && !rc; round++) {
        int nt = r->f->ntypes, np = r->f->npairs;
        rc = rg__run_round(r, err, errlen);
        if (r->errs->total >= RG__STOP_AFTER ||
            (round > 0 && nt == r->f->ntypes && np == r->f->npairs))
            break;
    }
    return rc;
}

/* ---- reporting ------------------------------------------------------------ */

/* The path as a reader knows it: relative to the shipped root or to dir. */
static const char *rg__rel(const char *path, const char *dir, const char *shipped)
{
    const char *roots[2] = {shipped, dir};
    for (int i = 0; i < 2; i++) {
        size_t n = roots[i] ? strlen(roots[i]) : 0;
        if (n && !strncmp(path, roots[i], n) && path[n] == '/')
            return path + n + 1;
    }
    return path;
}

/* "R.days(28)", "6", "\"moderate\"", "true": a value as clinic.lua writes it;
 * human: "28 days", "6", "moderate" for prose. [-0, +0] */
static void rg__render(lua_State *L, int v, const char *kind, int human, char *buf, size_t n)
{
    v = lua_absindex(L, v);
    if (kind && !strcmp(kind, "duration") && lua_isinteger(L, v)) {
        static const struct { int64_t ms; const char *fn, *one, *many; } u[] = {
            {7 * RG_MS_DAY, "weeks", "week", "weeks"}, {RG_MS_DAY, "days", "day", "days"},
            {RG_MS_HOUR, "hours", "h", "h"}, {RG_MS_MINUTE, "minutes", "min", "min"},
            {RG_MS_SECOND, "seconds", "s", "s"}};
        lua_Integer ms = lua_tointeger(L, v);
        for (size_t i = 1; i < RG_COUNTOF(u); i++) /* days, as the protocols count */
            if (ms && ms % u[i].ms == 0 && (!human || i != 1 || ms >= 2 * RG_MS_DAY)) {
                long long k = (long long)(ms / u[i].ms);
                if (human)
                    snprintf(buf, n, "%lld %s", k, k == 1 ? u[i].one : u[i].many);
                else
                    snprintf(buf, n, "R.%s(%lld)", u[i].fn, k);
                return;
            }
        snprintf(buf, n, "%lld%s", (long long)ms, human ? " ms" : "");
        return;
    }
    switch (lua_type(L, v)) {
    case LUA_TSTRING: snprintf(buf, n, human ? "%s" : "\"%s\"", lua_tostring(L, v)); break;
    case LUA_TBOOLEAN: snprintf(buf, n, "%s", lua_toboolean(L, v) ? "true" : "false"); break;
    case LUA_TNUMBER:
        lua_pushvalue(L, v);
        snprintf(buf, n, "%s", lua_tostring(L, -1));
        lua_pop(L, 1);
        break;
    default: snprintf(buf, n, "%s", luaL_typename(L, v)); break;
    }
}

/* [-0, +0] The kind of parameter name of the description on top. */
static const char *rg__kind_of(lua_State *L, const char *name, char *buf, size_t n)
{
    lua_pushliteral(L, "kinds");
    lua_rawget(L, -2);
    lua_pushstring(L, name);
    lua_rawget(L, -2);
    buf[0] = '\0';
    if (lua_type(L, -1) == LUA_TTABLE) {
        lua_pushliteral(L, "kind");
        lua_rawget(L, -2);
        snprintf(buf, n, "%s", lua_isstring(L, -1) ? lua_tostring(L, -1) : "");
        lua_pop(L, 1);
    }
    lua_pop(L, 2);
    return buf;
}

/* Prints, for protocol i, what clinic.lua set: "name = value (where)". */
static void rg__print_overrides(rg_clinic *c, int i, const char *dir, const char *shipped,
                                FILE *out)
{
    lua_State *L = rg_sandbox_state(c->sb);
    int top = lua_gettop(L), any = 0;
    rg_clinic_push_protocol(c, i);
    int d = top + 1;
    lua_pushliteral(L, "set");
    lua_rawget(L, d);
    for (lua_pushnil(L); lua_type(L, d + 1) == LUA_TTABLE && lua_next(L, d + 1); lua_pop(L, 1)) {
        char val[128], kind[32];
        const char *name = lua_tostring(L, -2);
        lua_pushliteral(L, "params");
        lua_rawget(L, d);
        lua_pushstring(L, name);
        lua_rawget(L, -2);
        lua_pushvalue(L, d);
        rg__kind_of(L, name, kind, sizeof kind);
        lua_pop(L, 1);
        rg__render(L, -1, kind, 0, val, sizeof val);
        lua_pop(L, 2);
        if (!any++)
            fprintf(out, "      the clinic's overrides for %s:", c->protos[i].id);
        fprintf(out, " %s = %s (%s)", name, val, rg__rel(lua_tostring(L, -1), dir, shipped));
    }
    if (any)
        fputc('\n', out);
    lua_settop(L, top);
}

/* The rule an error came from: the outermost frame in a protocol file of
 * the traceback (its check function), mapped to the rule defined last at or
 * before that line. */
static const rg_rule *rg__rule_of(const rg_clinic *c, const char *msg, int *proto)
{
    const rg_rule *best = NULL;
    const char *best_pos = NULL;
    for (int i = 0; i < c->nprotos; i++)
        for (int j = 0; j < c->protos[i].nrules; j++) {
            const rg_rule *r = &c->protos[i].rules[j];
            const char *colon = strrchr(r->where, ':');
            if (!colon)
                continue;
            size_t flen = (size_t)(colon - r->where);
            long defined = atol(colon + 1);
            /* every "file:LINE" of this rule's file in the message */
            for (const char *p = msg; *p; p++) {
                if (strncmp(p, r->where, flen) || p[flen] != ':' || !isdigit((unsigned char)p[flen + 1]))
                    continue;
                long line = atol(p + flen + 1);
                if (line < defined)
                    continue;
                /* a later rule of the same file defined at or before line wins */
                int later = 0;
                for (int k = 0; k < c->protos[i].nrules; k++) {
                    const char *w = c->protos[i].rules[k].where, *wc = strrchr(w, ':');
                    if (wc && (size_t)(wc - w) == flen && !strncmp(w, r->where, flen) &&
                        atol(wc + 1) > defined && atol(wc + 1) <= line)
                        later = 1;
                }
                if (!later && (!best_pos || p > best_pos)) {
                    best = r;
                    best_pos = p;
                    *proto = i;
                }
            }
        }
    for (int i = 0; i < c->nprotos && *proto < 0; i++) /* a helper above the rules */
        for (int j = 0; j < c->protos[i].nrules && *proto < 0; j++) {
            const char *w = c->protos[i].rules[j].where, *wc = strrchr(w, ':');
            char file[512];
            snprintf(file, sizeof file, "%.*s:", wc ? (int)(wc - w) : 0, w);
            if (wc && strstr(msg, file))
                *proto = i;
        }
    return best;
}

/* [-0, +0] Adds the types and fields of the vocabulary table at idx
 * (type -> list of field names; checked before, or shipped) to f. */
static void rg__vocab_add(lua_State *L, int idx, rg__found *f)
{
    for (lua_pushnil(L); lua_next(L, idx); lua_pop(L, 1)) {
        if (lua_type(L, -2) != LUA_TSTRING)
            continue;
        rg__add_str(f->vtypes, &f->nvtypes, lua_tostring(L, -2));
        if (lua_type(L, -1) != LUA_TTABLE)
            continue;
        for (lua_Integer i = 1; lua_rawgeti(L, -1, i) == LUA_TSTRING; i++) {
            rg__add_str(f->vfields, &f->nvfields, lua_tostring(L, -1));
            lua_pop(L, 1);
        }
        lua_pop(L, 1); /* what ended the list */
    }
}

/* The vocabulary: the shipped lib/events.lua (a table of plain data, run in
 * a state of its own without libraries) and clinic.lua's events. Without a
 * shipped root there is none, and nothing is checked against it. */
static int rg__vocab_load(rg__found *f, rg_clinic *c, const char *shipped, char *err,
                          size_t errlen)
{
    if (!shipped)
        return RG_OK;
    char path[4096];
    snprintf(f->lib, sizeof f->lib, "%s/lib/", shipped);
    snprintf(path, sizeof path, "%s/lib/events.lua", shipped);
    lua_State *L = luaL_newstate();
    if (!L)
        return rg_fail(err, errlen, RG_ENOMEM, "out of memory");
    int st = luaL_loadfilex(L, path, "t");
    if (st == LUA_OK)
        st = lua_pcall(L, 0, 1, 0);
    if (st != LUA_OK || lua_type(L, -1) != LUA_TTABLE) {
        rg_fail(err, errlen, RG_EPROTOCOL, "%s: the event vocabulary does not load: %s", path,
                st != LUA_OK && lua_tostring(L, -1) ? lua_tostring(L, -1)
                                                    : "it does not return a table");
        lua_close(L);
        return RG_EPROTOCOL;
    }
    rg__vocab_add(L, 1, f);
    lua_close(L);
    L = rg_sandbox_state(c->sb);
    rg_clinic_push_events(c);
    if (lua_type(L, -1) == LUA_TTABLE)
        rg__vocab_add(L, lua_gettop(L), f);
    lua_pop(L, 1);
    if (f->nvtypes == RG__MAX || f->nvfields == RG__MAX) /* (a name past the cap: refused) */
        return rg_fail(err, errlen, RG_EPROTOCOL, "%s/clinic.lua: events: the vocabulary "
                       "(lib/events.lua and the clinic's events) names %d event types or data "
                       "fields or more, the most check reads", c->dir, RG__MAX);
    f->vocab = 1;
    return RG_OK;
}

/* What check and --describe share: the clinic at dir loaded, its sources
 * scanned (into *f) and the generated histories run (rg__discover, errors into
 * *es, counts into *r). *c is set only when the clinic loaded; whatever it
 * returns, rg__round_end(*c, *f, *es) frees what was made. */
static int rg__round_begin(const char *dir, const rg_check_opts *o, rg_clinic **c, rg__found **f,
                           rg__errors **es, rg__round *r, char *err, size_t errlen)
{
    *f = NULL;
    *es = NULL;
    int rc = rg_clinic_load(c, "check", dir, o->shipped, NULL, &o->limits, err, errlen);
    if (rc)
        return rc;
    *f = calloc(1, sizeof **f);
    *es = calloc(1, sizeof **es);
    if (!*f || !*es)
        return rg_fail(err, errlen, RG_ENOMEM, "out of memory");
    if ((rc = rg__vocab_load(*f, *c, o->shipped, err, errlen)))
        return rc;
    rg__scan_sources(*f, *c, dir, o->shipped);
    *r = (rg__round){.lim = o->limits, .dir = dir, .shipped = o->shipped, .f = *f, .errs = *es};
    return rg__discover(r, err, errlen);
}

static void rg__round_end(rg_clinic *c, rg__found *f, rg__errors *es)
{
    for (int i = 0; es && i < es->n; i++)
        free(es->e[i].msg), free(es->e[i].patient);
    free(es);
    if (f)
        rg__found_free(f);
    free(f);
    rg_clinic_free(c);
}

int rg_check_sources(const char *dir, const char *shipped, const rg_limits *lim,
                     void (*each)(void *ud, const char *msg), void *ud, char *err, size_t errlen)
{
    rg_clinic *c = NULL;
    int rc = rg_clinic_load(&c, "check", dir, shipped, NULL, lim, err, errlen);
    if (rc)
        return rc;
    rg__found *f = calloc(1, sizeof *f);
    if (!f)
        rc = rg_fail(err, errlen, RG_ENOMEM, "out of memory");
    else if (!(rc = rg__vocab_load(f, c, shipped, err, errlen))) {
        rg__scan_sources(f, c, dir, shipped);
        for (int i = 0; i < f->ntypos; i++)
            each(ud, rg__rel(f->typos[i], dir, shipped));
    }
    if (f)
        rg__found_free(f);
    free(f);
    rg_clinic_free(c);
    return rc;
}

int rg_check_clinic(const char *dir, const rg_check_opts *o, rg_check_result *res, char *err,
                    size_t errlen)
{
    memset(res, 0, sizeof *res);
    rg_clinic *c = NULL;
    rg__found *f;
    rg__errors *es;
    rg__round r;
    int rc = rg__round_begin(dir, o, &c, &f, &es, &r, err, errlen);
    if (c) {
        res->protocols = c->nprotos;
        for (int i = 0; i < c->nprotos; i++)
            res->rules += c->protos[i].nrules;
    }
    if (rc)
        goto done;
    res->histories = r.histories;
    res->steps = r.steps;
    res->errors = es->n + f->ntypos;
    res->types = f->ntypes;
    FILE *out = o->out;
    for (int i = 0; i < f->ntypos && out; i++)
        fprintf(out, "  error: %s\n", rg__rel(f->typos[i], dir, o->shipped));
    if (out)
        fprintf(out, "  evaluated %d rule%s on %d generated histor%s (%ld steps, %d event "
                "type%s read): %d error%s%s\n", res->rules, res->rules == 1 ? "" : "s",
                res->histories, res->histories == 1 ? "y" : "ies", res->steps, f->ntypes,
                f->ntypes == 1 ? "" : "s", es->n, es->n == 1 ? "" : "s",
                es->total >= RG__STOP_AFTER ? " (stopped early)" : "");
    for (int i = 0; i < es->n && out; i++) {
        int p = -1;
        char when[RG_TIME_BUFSZ];
        const rg_rule *rule = rg__rule_of(c, es->e[i].msg, &p);
        fprintf(out, "  error: %s%s (%s) (patient %s at %s, %d time%s): %.*s\n",
                rule ? "rule " : p >= 0 ? "protocol " : "a protocol",
                rule ? rule->id : p >= 0 ? c->protos[p].id : "",
                rule ? rg__rel(rule->where, dir, o->shipped)
                     : p >= 0 ? rg__rel(c->protos[p].file, dir, o->shipped) : "?",
                es->e[i].patient, rg_zone_format(c->cal.zone, es->e[i].at, when),
                es->e[i].count, es->e[i].count == 1 ? "" : "s",
                (int)strcspn(es->e[i].msg, "\n"), es->e[i].msg);
        if (p >= 0)
            rg__print_overrides(c, p, dir, o->shipped, out);
    }
    char tests[4096];
    struct stat sb;
    snprintf(tests, sizeof tests, "%s/tests", dir);
    if (o->tests && stat(tests, &sb) == 0 && S_ISDIR(sb.st_mode)) {
        rc = o->tests(tests, o->shipped, &o->limits, out, &res->scenarios_passed,
                      &res->scenarios_failed);
        if (rc)
            goto done;
        if (out)
            fprintf(out, "  scenarios (%s): %d passed, %d failed\n",
                    rg__rel(tests, dir, o->shipped), res->scenarios_passed,
                    res->scenarios_failed);
    }
    rc = res->errors || res->scenarios_failed ? RG_EPROTOCOL : RG_OK;
    if (rc)
        rg_fail(err, errlen, rc, "%s: %d error%s in the sources, %d evaluation error%s, %d "
                "scenario%s failed", dir, f->ntypos, f->ntypos == 1 ? "" : "s", es->n,
                es->n == 1 ? "" : "s", res->scenarios_failed,
                res->scenarios_failed == 1 ? "" : "s");
done:
    rg__round_end(c, f, es);
    return rc;
}

/* ---- the reference (check --describe) -------------------------------------- */

typedef struct rg__prow {
    char name[64], pids[512], kind[16], unit[48], def[96], val[96], set[300], about[400];
    int shared;
} rg__prow;

static int rg__cmp_prow(const void *a, const void *b)
{
    const rg__prow *x = a, *y = b;
    int c = strcmp(x->name, y->name);
    return c ? c : strcmp(x->pids, y->pids);
}

static int rg__cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The comment that explains parameter name in file: the end of the line
 * declaring it, else the comment line above it. */
static void rg__param_comment(const char *file, const char *name, char *buf, size_t n)
{
    struct stat sb;
    FILE *fp = stat(file, &sb) == 0 && S_ISREG(sb.st_mode) ? fopen(file, "r") : NULL;
    char line[1024], prev[1024] = "";
    size_t len = strlen(name);
    buf[0] = '\0';
    while (fp && fgets(line, sizeof line, fp)) {
        char *s = line;
        while (*s == ' ' || *s == '\t')
            s++;
        if (!strncmp(s, name, len) && (s[len] == ' ' || s[len] == '=')) {
            const char *c = strstr(s, "--");
            const char *src = c ? c + 2 : NULL;
            if (!src) {
                const char *p = prev;
                while (*p == ' ' || *p == '\t')
                    p++;
                src = !strncmp(p, "--", 2) ? p + 2 : NULL;
            }
            while (src && *src == ' ')
                src++;
            snprintf(buf, n, "%s", src ? src : "");
            buf[strcspn(buf, "\n")] = '\0';
            break;
        }
        snprintf(prev, sizeof prev, "%s", line);
    }
    if (fp)
        fclose(fp);
}

/* text with each {name} replaced by parameter name's value in force (for
 * prose) in the description on top of L's stack. [-0, +0] */
static void rg__expand(lua_State *L, const char *text, char *out, size_t n)
{
    size_t o = 0;
    for (const char *s = text; *s && o + 1 < n;) {
        const char *close = *s == '{' ? strchr(s, '}') : NULL;
        if (close && close - s < 64) {
            char name[64], kind[32], val[96];
            snprintf(name, sizeof name, "%.*s", (int)(close - s - 1), s + 1);
            lua_pushliteral(L, "params");
            lua_rawget(L, -2);
            lua_pushstring(L, name);
            if (lua_rawget(L, -2) != LUA_TNIL) {
                lua_pushvalue(L, -3);
                rg__kind_of(L, name, kind, sizeof kind);
                lua_pop(L, 1);
                rg__render(L, -1, kind, 1, val, sizeof val);
                o += (size_t)snprintf(out + o, n - o, "%s", val);
                lua_pop(L, 2);
                s = close + 1;
                continue;
            }
            lua_pop(L, 2);
        }
        out[o++] = *s++;
    }
    out[o < n ? o : n - 1] = '\0';
}

/* [-0, +0] The field f of the table on top as text ("" when absent). */
static void rg__field_text(lua_State *L, const char *f, char *buf, size_t n)
{
    lua_pushstring(L, f);
    lua_rawget(L, -2);
    snprintf(buf, n, "%s", lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1) : "");
    lua_pop(L, 1);
}

/* A table cell: no line breaks, '|' escaped. */
static void rg__cell(FILE *out, const char *s)
{
    for (; *s; s++)
        if (*s == '|')
            fputs("\\|", out);
        else
            fputc(*s == '\n' ? ' ' : *s, out);
}

static void rg__describe_protocols(rg_clinic *c, const char *dir, const char *shipped,
                                   FILE *out)
{
    lua_State *L = rg_sandbox_state(c->sb);
    int top = lua_gettop(L);
    fprintf(out, "## Protocols and rules\n\n");
    for (int i = 0; i < c->nprotos; i++) {
        char about[1200];
        rg_clinic_push_protocol(c, i);
        fprintf(out, "### `%s` %s (%s)\n\n", c->protos[i].id, c->protos[i].version,
                rg__rel(c->protos[i].file, dir, shipped));
        rg__field_text(L, "description", about, sizeof about);
        if (about[0])
            fprintf(out, "%s\n\n", about);
        fprintf(out, "| rule | severity | defined at | what it watches |\n|---|---|---|---|\n");
        lua_pushliteral(L, "rules");
        lua_rawget(L, -2);
        for (int j = 0; j < c->protos[i].nrules; j++) {
            char text[1200] = "", shown[1600];
            lua_rawgeti(L, -1, j + 1);
            rg__field_text(L, "description", text, sizeof text);
            lua_pop(L, 1);
            lua_pushvalue(L, -2); /* the description, for the values in force */
            rg__expand(L, text, shown, sizeof shown);
            lua_pop(L, 1);
            const rg_rule *r = &c->protos[i].rules[j];
            fprintf(out, "| `%s` | %s | %s | ", r->id, r->severity,
                    rg__rel(r->where, dir, shipped));
            rg__cell(out, shown);
            fprintf(out, " |\n");
        }
        fprintf(out, "\n");
        lua_settop(L, top);
    }
}

static int rg__describe_params(rg_clinic *c, const char *dir, const char *shipped, FILE *out)
{
    lua_State *L = rg_sandbox_state(c->sb);
    int top = lua_gettop(L), n = 0;
    size_t cap = 0;
    rg__prow *rows = NULL;
    for (int i = 0; i < c->nprotos; i++) {
        rg_clinic_push_protocol(c, i);
        int d = lua_gettop(L);
        lua_pushliteral(L, "kinds");
        lua_rawget(L, d);
        for (lua_pushnil(L); lua_next(L, d + 1); lua_pop(L, 1)) {
            rg__prow *g = rg_grow(rows, &cap, (size_t)n, sizeof *g, 32);
            if (!g) {
                free(rows);
                lua_settop(L, top);
                return RG_ENOMEM;
            }
            rows = g;
            rg__prow *r = &rows[n++];
            memset(r, 0, sizeof *r);
            snprintf(r->name, sizeof r->name, "%s", lua_tostring(L, -2));
            snprintf(r->pids, sizeof r->pids, "%s", c->protos[i].id);
            rg__field_text(L, "kind", r->kind, sizeof r->kind);
            rg__field_text(L, "unit", r->unit, sizeof r->unit);
            rg__field_text(L, "description", r->about, sizeof r->about);
            char shared[32], plan[16];
            rg__field_text(L, "shared", shared, sizeof shared);
            rg__field_text(L, "plan", plan, sizeof plan);
            r->shared = shared[0] != '\0';
            if (!r->about[0])
                rg__param_comment(c->protos[i].file, r->name, r->about, sizeof r->about);
            if (plan[0] && !strstr(r->about, "plan")) {
                size_t l = strlen(r->about);
                snprintf(r->about + l, sizeof r->about - l, "%sin a plan event: a number of %s",
                         l ? "; " : "", plan);
            }
            lua_pushliteral(L, "default");
            lua_rawget(L, -2);
            rg__render(L, -1, r->kind, 0, r->def, sizeof r->def);
            lua_pop(L, 1);
            lua_pushliteral(L, "params");
            lua_rawget(L, d);
            lua_pushstring(L, r->name);
            lua_rawget(L, -2);
            rg__render(L, -1, r->kind, 0, r->val, sizeof r->val);
            lua_pop(L, 2);
            lua_pushliteral(L, "set");
            lua_rawget(L, d);
            lua_pushstring(L, r->name);
            lua_rawget(L, -2);
            snprintf(r->set, sizeof r->set, "%s", lua_type(L, -1) == LUA_TSTRING
                     ? rg__rel(lua_tostring(L, -1), dir, shipped) : "default");
            lua_pop(L, 2);
        }
        lua_settop(L, top);
    }
    qsort(rows, (size_t)n, sizeof *rows, rg__cmp_prow);
    fprintf(out, "## Parameters\n\n"
            "A clinic sets them in clinic.lua's `params`: a name at the top sets it for every "
            "protocol that has it (the only way for a parameter shared by the course); "
            "`[\"protocol.id\"] = { name = value }` sets it for one protocol. A duration is "
            "written `R.days(2)`, `R.weeks(6)`, `R.hours(72)` (`local R = require "
            "\"regimen\"`). A patient's plan events (`enrolled`, `plan_adjusted`) set them "
            "for that patient: their data's fields of the same names.\n\n"
            "| parameter | protocols | kind | default | in force | set at | meaning |\n"
            "|---|---|---|---|---|---|---|\n");
    for (int i = 0; i < n; i++) {
        rg__prow *r = &rows[i];
        int j = i + 1;
        while (j < n && !strcmp(rows[j].name, r->name) && !strcmp(rows[j].val, r->val) &&
               !strcmp(rows[j].set, r->set)) {
            size_t l = strlen(r->pids);
            snprintf(r->pids + l, sizeof r->pids - l, ", %s", rows[j].pids);
            j++;
        }
        fprintf(out, "| `%s` | %s%s | %s%s%s%s | `%s` | `%s` | %s | ", r->name, r->pids,
                r->shared ? " (shared by the course)" : "", r->kind, r->unit[0] ? " (" : "",
                r->unit, r->unit[0] ? ")" : "", r->def, r->val, r->set);
        rg__cell(out, r->about);
        fprintf(out, " |\n");
        i = j - 1;
    }
    fprintf(out, "\n");
    free(rows);
    return RG_OK;
}

static void rg__describe_events(const rg_clinic *c, const rg__found *f, FILE *out)
{
    const char *types[RG__MAX], *fields[RG__MAX];
    int nt = 0, nf = 0;
    for (int i = 0; i < f->ntypes; i++)
        if (strcmp(f->types[i], RG__SEED_TYPE))
            types[nt++] = f->types[i];
    qsort(types, (size_t)nt, sizeof *types, rg__cmp_str);
    fprintf(out, "## Event types the rules read\n\n"
            "Found by running the rules on generated histories (`regimen check`): the types "
            "they ask the history for, and the data fields their filters compare, with the "
            "values compared.\n\n| type | data the rules filter on |\n|---|---|\n");
    for (int i = 0; i < nt; i++) {
        fprintf(out, "| `%s` | ", types[i]);
        const char *seen[RG__MAX];
        int ns = 0;
        for (int j = 0; j < f->npairs; j++) {
            const rg__pair *p = &f->pairs[j];
            int dup = 0;
            for (int k = 0; k < ns; k++)
                dup |= !strcmp(seen[k], p->field);
            if (strcmp(p->type, types[i]) || dup)
                continue;
            seen[ns++] = p->field;
            fprintf(out, "%s`%s`", ns > 1 ? "; " : "", p->field);
            int nv = 0;
            for (int k = j; k < f->npairs; k++) /* its values, in the order found */
                if (!strcmp(f->pairs[k].type, types[i]) && !strcmp(f->pairs[k].field, p->field) &&
                    f->pairs[k].value)
                    fprintf(out, "%s%s%s%s", nv++ ? ", " : " = ",
                            f->pairs[k].value[0] == '#' ? "" : "\"",
                            f->pairs[k].value + (f->pairs[k].value[0] == '#'),
                            f->pairs[k].value[0] == '#' ? "" : "\"");
        }
        fprintf(out, " |\n");
    }
    for (int i = 0; i < f->nfields; i++)
        fields[nf++] = f->fields[i];
    qsort(fields, (size_t)nf, sizeof *fields, rg__cmp_str);
    fprintf(out, "\nData fields the protocol sources read (`e.data.x`, `course.number(e, \"x\")`, "
            "`h:values(type, \"x\")`):");
    for (int i = 0; i < nf; i++)
        fprintf(out, "%s`%s`", i ? ", " : " ", fields[i]);
    fprintf(out, ".\n\nPlan event types (their data sets parameters per patient):");
    const char *plans[64];
    int np = 0;
    for (int i = 0; i < c->nprotos; i++)
        for (int j = 0; j < c->protos[i].nplan; j++) {
            int dup = 0;
            for (int k = 0; k < np; k++)
                dup |= !strcmp(plans[k], c->protos[i].plan_events[j]);
            if (!dup && np < 64)
                plans[np++] = c->protos[i].plan_events[j];
        }
    for (int i = 0; i < np; i++)
        fprintf(out, "%s`%s`", i ? ", " : " ", plans[i]);
    fprintf(out, ".\n");
}

int rg_check_describe(const char *dir, const rg_check_opts *o, FILE *out, char *err,
                      size_t errlen)
{
    rg_clinic *c = NULL;
    rg__found *f;
    rg__errors *es;
    rg__round r;
    int rc = rg__round_begin(dir, o, &c, &f, &es, &r, err, errlen);
    if (rc)
        goto done;
    const char *name = rg__rel(dir, dir, o->shipped);
    fprintf(out, "# Reference: what a clinic can set and send\n\n"
            "<!-- Generated by `regimen check --describe` for %s; tests/test_check.c "
            "regenerates it and fails when it differs. Do not edit by hand. -->\n\n"
            "What the protocols of `%s` read and what a clinic can set, generated from the "
            "protocols themselves by `regimen check --describe [DIR]`. Run it on a clinic "
            "directory to see that clinic's values in force and the clinic.lua line that set "
            "each.\n\n", name, name);
    rg__describe_protocols(c, dir, o->shipped, out);
    if ((rc = rg__describe_params(c, dir, o->shipped, out)))
        rg_fail(err, errlen, rc, "out of memory");
    else
        rg__describe_events(c, f, out);
done:
    rg__round_end(c, f, es);
    return rc;
}
