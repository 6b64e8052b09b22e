/*
 * test_pattern.c - Criterion tests for runtime/engine/pattern.c.
 *
 * The main tests are differential: Lua 5.4's own string.find/match/gmatch/gsub
 * and the guarded versions are called with the same arguments from the same
 * Lua line, and everything they produce (all results with their types, or the
 * error message) must be identical. Then the guard: a catastrophic pattern
 * must be stopped within well under a second, and an expired guard must keep
 * firing through a protocol's own pcall.
 *
 * Build: gcc -std=c11 $(pkg-config --cflags lua5.4) runtime/engine/pattern.c
 *        tests/test_pattern.c $(pkg-config --libs lua5.4) -lcriterion
 */
#ifndef _POSIX_C_SOURCE
#define _POSIX_C_SOURCE 200809L /* clock_gettime */
#endif
#include "engine/pattern.h"

#include <criterion/criterion.h>
/* Criterion's assertion macros declare variables after statements. */
#pragma GCC diagnostic ignored "-Wdeclaration-after-statement"
#include <lauxlib.h>
#include <lualib.h>

#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

/* ---- a wall-clock guard ---------------------------------------------------- */

typedef struct tguard {
    int64_t deadline; /* monotonic ns */
    int fired;        /* sticky, like the sandbox's */
    long calls;
} tguard;

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void tguard_arm(tguard *t, int64_t ms)
{
    t->deadline = now_ns() + ms * 1000000;
    t->fired = 0;
    t->calls = 0;
}

static int tguard_expired(void *ud, const char **msg)
{
    tguard *t = ud;
    t->calls++;
    if (t->fired || now_ns() > t->deadline) {
        t->fired = 1;
        *msg = "deadline of 50 ms exceeded";
        return 1;
    }
    return 0;
}

/* ---- the differential harness ---------------------------------------------- */

/* Globals after it runs: ALL (bytes 0..255), REPLS (replacements for the
 * random test), compare_src(fname, argsrc) and compare(fname, ...), each
 * returning same, original's outcome, mine's outcome. */
static const char harness[] =
    "local orig, mine = string, mine\n"
    "local fmt, concat, pack, unpack = string.format, table.concat, table.pack, table.unpack\n"
    "local t = {} for i = 0, 255 do t[#t + 1] = string.char(i) end\n"
    "ALL = concat(t)\n"
    "REPLS = { '<%0>', '%1', '%2', 'x', '%', '%%', '', 7, {a = 'A', b = false, ['('] = 1},\n"
    "  function(a, b) if b then return a .. '|' .. tostring(b) end return nil end,\n"
    "  function(a) return a == 'a' and {} or false end, '%0%1', '[%1]' }\n"
    "local function ser(r)\n"
    "  local out = {}\n"
    "  for i = 1, r.n do\n"
    "    local v = r[i]\n"
    "    if type(v) == 'string' then out[i] = fmt('%q', v)\n"
    "    elseif type(v) == 'number' then out[i] = math.type(v) .. ':' .. tostring(v)\n"
    "    else out[i] = tostring(v) end\n"
    "  end\n"
    "  return r.n .. '[' .. concat(out, ',') .. ']'\n"
    "end\n"
    "local function call(fn, args)\n"
    "  local r = pack(fn(unpack(args, 1, args.n)))\n"
    "  return ser(r)\n"
    "end\n"
    "local function iterate(fn, args)\n"
    "  local it = fn(unpack(args, 1, args.n))\n"
    "  local acc = {}\n"
    "  for _ = 1, 300 do\n"
    "    local r = pack(it())\n"
    "    acc[#acc + 1] = ser(r)\n"
    "    if r[1] == nil then break end\n"
    "  end\n"
    "  return concat(acc, ';')\n"
    "end\n"
    "local function run(lib, fname, args)\n"
    "  local ok, r = pcall(fname == 'gmatch' and iterate or call, lib[fname], args)\n"
    "  return (ok and '' or 'error: ') .. tostring(r)\n"
    "end\n"
    "function compare_src(fname, src)\n"
    "  local mk = assert(load('return table.pack(' .. src .. ')', '=case', 't'))\n"
    "  local a, b = run(orig, fname, mk()), run(mine, fname, mk())\n"
    "  return a == b, a, b\n"
    "end\n"
    "function compare(fname, ...)\n"
    "  local args = pack(...)\n"
    "  local a, b = run(orig, fname, args), run(mine, fname, args)\n"
    "  return a == b, a, b\n"
    "end\n";

static tguard never; /* armed far in the future by new_diff_state */
static rg_guard never_guard = {tguard_expired, &never};

static lua_State *new_diff_state(void)
{
    lua_State *L = luaL_newstate();
    cr_assert_not_null(L);
    luaL_openlibs(L);
    tguard_arm(&never, INT64_C(1) << 40);
    lua_newtable(L);
    rg_pattern_register(L, -1, &never_guard);
    lua_setglobal(L, "mine");
    if (luaL_loadbuffer(L, harness, sizeof harness - 1, "=harness") || lua_pcall(L, 0, 0, 0))
        cr_assert_fail("harness: %s", lua_tostring(L, -1));
    return L;
}

/* Calls the global compare function already set up with nargs arguments on
 * top of the stack (below them: the function). Returns 1 when both agree. */
static int diff_call(lua_State *L, int nargs, const char *what)
{
    int same;
    if (lua_pcall(L, nargs, 3, 0) != LUA_OK) {
        cr_expect_fail("%s: harness error %s", what, lua_tostring(L, -1));
        lua_pop(L, 1);
        return 0;
    }
    same = lua_toboolean(L, -3);
    cr_expect(same, "%s\n  lua : %s\n  mine: %s", what, lua_tostring(L, -2), lua_tostring(L, -1));
    lua_pop(L, 3);
    return same;
}

/* (function, Lua source of its arguments) */
static const char *const cases[][2] = {
    /* init, plain, anchors */
    {"find", "'hello world', 'o'"},
    {"find", "'hello world', 'o', 6"},
    {"find", "'hello world', 'o', -3"},
    {"find", "'hello world', 'o', -100"},
    {"find", "'hello world', 'o', 0"},
    {"find", "'hello world', 'd', 11"},
    {"find", "'hello world', 'd', 12"},
    {"find", "'hello world', 'd', 13"},
    {"find", "'hello world', 'd', math.maxinteger"},
    {"find", "'hello world', 'd', math.mininteger"},
    {"find", "'hello', '', 6"},
    {"find", "'hello', '', 7"},
    {"find", "'hello', '', -10"},
    {"find", "'hello', '()', 6"},
    {"find", "'hello', 'x*', 7"},
    {"find", "'', ''"},
    {"find", "'', 'a'"},
    {"find", "'', '^'"},
    {"find", "'', '$'"},
    {"find", "'', '^$'"},
    {"find", "'a', '^$'"},
    {"find", "'hello', '^'"},
    {"find", "'hello', '$'"},
    {"find", "'hello', '^', 3"},
    {"find", "'a.b', '.', 1, true"},
    {"find", "'a.b', '.', 2, true"},
    {"find", "'a+b', 'a+b', 1, 1"},
    {"find", "'a+b', 'a+b', 1, false"},
    {"find", "'a+b', 'a+b', 1, nil"},
    {"find", "'a+b', '+b', -2, true"},
    {"find", "'abc', 'c', 4, true"},
    {"find", "'abc', '', 4, true"},
    {"find", "'abc', '', 5, true"},
    {"find", "'abc', 'abcd', 1, true"},
    {"find", "'aaab', 'aab', 1, true"},
    {"find", "'a(b', '(', 1, true"},
    {"find", "'a)', ')'"},
    {"find", "'a]', ']'"},
    {"find", "'a\\0b', '\\0'"},
    {"find", "'a\\0b', '%z'"},
    {"find", "'a\\0b', '[\\0]'"},
    {"find", "'a\\0b', '.\\0.'"},
    {"find", "'a\\0b', 'b\\0'"},
    {"find", "'abc', '^abc'"},
    {"find", "'abc', '^b'"},
    {"find", "'abc', '^b', 2"},
    {"find", "'abc', 'c$'"},
    {"find", "'abc', 'b$'"},
    {"find", "'a$b', 'a$b'"},
    {"find", "'a$b', '$b'"},
    {"find", "'ab$', 'b$$'"},
    {"find", "'^a', '^^a'"},
    {"find", "'a^', 'a^'"},
    {"find", "'$$$', '$*'"},
    {"find", "'x', '$x'"},
    /* quantifiers */
    {"find", "'aaab', 'a*'"},
    {"find", "'aaab', 'a+'"},
    {"find", "'aaab', 'a-'"},
    {"find", "'aaab', 'a-b'"},
    {"find", "'aaab', 'a?'"},
    {"find", "'aaab', 'a?b'"},
    {"find", "'aaab', 'a?a?a?a?b'"},
    {"find", "'b', 'a+'"},
    {"find", "'aaa', 'a-$'"},
    {"find", "'aaa', '.-'"},
    {"find", "'aaa', '^.-$'"},
    {"find", "'abc', '.-c'"},
    {"find", "'xaaay', 'a*y'"},
    {"find", "'aaa', 'a**'"},
    {"find", "'a**', 'a**'"},
    {"find", "'*', '**'"},
    {"find", "'a', '*a'"},
    {"find", "'+', '+'"},
    {"find", "'++', '++'"},
    {"find", "'?x', '?'"},
    {"find", "'-', '-'"},
    {"find", "'--', '--'"},
    {"find", "'abcabc', '[abc]+-'"},
    {"find", "'aaa', 'a-a-a-a'"},
    {"find", "'aaa', 'a-a-a-a-$'"},
    {"find", "'a  b', '%s*'"},
    {"find", "'ab', '.?.?.?'"},
    /* captures */
    {"find", "'hello world', '(h)(e)(l)'"},
    {"find", "'hello', '()ll()'"},
    {"find", "'hello', '(l)(l)'"},
    {"find", "'hello', '((l)(l))'"},
    {"find", "'hello', '(h(e(l)))'"},
    {"find", "'hello', '(()l)'"},
    {"find", "'a', '(a'"},
    {"find", "'a', 'a)'"},
    {"find", "'a', '(a))'"},
    {"find", "'a', '()'"},
    {"find", "'', '()'"},
    {"find", "'b', '(a'"},
    {"find", "'ab', '(a)(b'"},
    {"match", "'a', '(a'"},
    {"match", "'a', '((a)'"},
    {"match", "'abc', '(.)(.)(.)'"},
    {"match", "'abc', '()(.)()'"},
    {"match", "string.rep('a', 40), string.rep('(a)', 32)"},
    {"match", "string.rep('a', 40), string.rep('(a)', 33)"},
    {"match", "string.rep('a', 40), string.rep('()', 33)"},
    {"match", "string.rep('a', 40), string.rep('()', 32)"},
    {"find", "string.rep('a', 40), string.rep('(a)', 32)"},
    {"match", "'a', string.rep('(', 33)"},
    {"match", "'a', string.rep('(', 32) .. string.rep(')', 32)"},
    /* back references */
    {"find", "'abab', '(ab)%1'"},
    {"find", "'aXa', '(.)X%1'"},
    {"find", "'aa', '%1'"},
    {"find", "'aa', '(a)%2'"},
    {"find", "'aa', '(a%1)'"},
    {"find", "'aa', '%0'"},
    {"find", "'aa', '()%1'"},
    {"find", "'aa', '()a%1'"},
    {"match", "'say \"hi\" now', '([\"\\'])(.-)%1'"},
    {"match", "'abcabc', '(a(b)c)%1'"},
    {"match", "'abcabc', '(a(b)c)%2'"},
    {"match", "'abcbc', '(a(b)c)%2'"},
    {"match", "'xx', '(x*)%1'"},
    {"match", "'xxx', '^(x*)%1$'"},
    {"match", "'aaaa', '^(a-)%1$'"},
    {"match", "'ab', '(a)%9'"},
    /* %b */
    {"find", "'f(a(b)c) d', '%b()'"},
    {"find", "'f(a(b c) d', '%b()'"},
    {"find", "'((', '%b()'"},
    {"find", "'x', '%b'"},
    {"find", "'x', '%bx'"},
    {"find", "'', '%bx'"},
    {"find", "'', '%b()'"},
    {"match", "\"'a' 'b'\", \"%b''\""},
    {"match", "'[[x]]y', '%b[]'"},
    {"match", "'(a)', '%b()$'"},
    {"match", "'x  y', '%b  '"},
    {"match", "'(a)(b)', '%b()%b()'"},
    {"match", "'(a)(b)', '(%b())'"},
    {"match", "'(a)', '%b()*'"},
    {"gsub", "'f(a) g(b(c))', '%b()', '[]'"},
    /* %f */
    {"match", "'THE (quick) fox', '%f[%a]%a+'"},
    {"find", "'hello', '%f[%a]'"},
    {"find", "'hello', '%f[%A]'"},
    {"find", "'hello', '%f[\\0]'"},
    {"find", "'hello', '%f[^\\0]'"},
    {"find", "'hello', '%f[%z]'"},
    {"find", "'', '%f[%a]'"},
    {"find", "'', '%f[^%a]'"},
    {"find", "'a', '%f'"},
    {"find", "'a', '%fa'"},
    {"find", "'a', '%f[a'"},
    {"find", "'a', '%f[]'"},
    {"find", "'aba', '%f[b]'"},
    {"find", "'aba', '%f[^b]'"},
    {"find", "'aba', '%f[b]', 3"},
    {"find", "'a]', '%f[]]'"},
    {"gsub", "'THE (quick) brown fox', '%f[%a]%a+%f[%A]', '<%0>'"},
    {"gsub", "'hello world', '%f[%w]', '|'"},
    {"gsub", "'hello world', '%f[%W]', '|'"},
    /* sets */
    {"gsub", "ALL, '[a-f]', '.'"},
    {"gsub", "ALL, '[f-a]', '.'"},
    {"gsub", "ALL, '[%a-z]', '.'"},
    {"gsub", "ALL, '[a-]', '.'"},
    {"gsub", "ALL, '[-a]', '.'"},
    {"gsub", "ALL, '[]]', '.'"},
    {"gsub", "ALL, '[^]]', '.'"},
    {"gsub", "ALL, '[]-a]', '.'"},
    {"gsub", "ALL, '[^%d%s]', '.'"},
    {"gsub", "ALL, '[\\128-\\255]', '.'"},
    {"gsub", "ALL, '[%w_]', '.'"},
    {"gsub", "ALL, '[a%-z]', '.'"},
    {"gsub", "ALL, '[%]]', '.'"},
    {"gsub", "ALL, '[%%]', '.'"},
    {"gsub", "ALL, '[%a%d]', '.'"},
    {"gsub", "ALL, '[^%a%d]', '.'"},
    {"gsub", "ALL, '[a-c-e]', '.'"},
    {"gsub", "ALL, '[%a-]', '.'"},
    {"gsub", "ALL, '[\\0-\\31]', '.'"},
    {"gsub", "ALL, '[^\\0-\\127]+', '.'"},
    {"gsub", "ALL, '[^]', '.'"},
    {"gsub", "ALL, '[]', '.'"},
    {"gsub", "ALL, '[^', '.'"},
    {"gsub", "ALL, '[%', '.'"},
    {"gsub", "ALL, '[%]', '.'"},
    {"gsub", "ALL, '[a', '.'"},
    {"gsub", "ALL, '.', '.'"},
    {"find", "'a', '['"},
    {"find", "'', '['"},
    {"find", "'a', '%'"},
    {"find", "'a', 'a%'"},
    {"find", "'a', 'b%'"},
    {"find", "'%', '%%'"},
    {"find", "'a.b', '%.'"},
    {"find", "'a', '%Q'"},
    {"find", "'Q', '%Q'"},
    {"find", "'q', '%Q'"},
    /* utf-8 bytes > 127 */
    {"find", "'h\\u{e9}llo w\\u{f6}rld', '[\\128-\\255]+'"},
    {"match", "'h\\u{e9}llo', '%a+'"},
    {"match", "'\\200\\201', '%A+'"},
    {"match", "'h\\u{e9}llo', '[^%w]+'"},
    {"gmatch", "'\\u{65e5}\\u{672c}\\u{8a9e}', utf8.charpattern"},
    {"gmatch", "'\\u{65e5}\\u{672c}', '.'"},
    {"gsub", "'\\u{e9}t\\u{e9}', '%W', '?'"},
    {"gsub", "'\\255\\254', '\\255', 'x'"},
    /* pattern too complex */
    {"find", "'', ('a-'):rep(198)"},
    {"find", "'', ('a-'):rep(199)"},
    {"find", "'', ('a-'):rep(200)"},
    {"find", "'', ('a-'):rep(201)"},
    {"find", "'b', ('a*'):rep(199) .. 'b'"},
    {"find", "'b', ('a*'):rep(200) .. 'b'"},
    {"find", "'b', ('a*'):rep(201) .. 'b'"},
    {"find", "('a'):rep(250), ('a?'):rep(198)"},
    {"find", "('a'):rep(250), ('a?'):rep(199)"},
    {"find", "('a'):rep(250), ('a?'):rep(200)"},
    {"find", "('a'):rep(250), ('a?'):rep(250)"},
    {"find", "'aaa', ('a?'):rep(300)"},
    {"find", "'a', ('a-'):rep(199)"},
    {"find", "'a', ('a-'):rep(200)"},
    {"find", "('ab'):rep(200), ('a*b'):rep(199)"},
    {"find", "('ab'):rep(200), ('a*b'):rep(200)"},
    {"match", "('ab'):rep(200), ('(a*b)'):rep(32) .. ('a*b'):rep(103)"},
    {"match", "('ab'):rep(200), ('(a*b)'):rep(32) .. ('a*b'):rep(104)"},
    {"find", "('a'):rep(300), ('.-'):rep(100) .. ('()'):rep(30) .. ('.-'):rep(70)"},
    {"match", "('a'):rep(300), ('(a)'):rep(30) .. ('a?'):rep(150)"},
    {"gsub", "'x', ('x?'):rep(201), 'y'"},
    {"gmatch", "'x', ('x?'):rep(201)"},
    /* match */
    {"match", "'key = value', '(%w+)%s*=%s*(%w+)'"},
    {"match", "'  trim  ', '^%s*(.-)%s*$'"},
    {"match", "'2024-01-05', '(%d+)-(%d+)-(%d+)'"},
    {"match", "'abc', '()b()'"},
    {"match", "'abc', 'b', -1"},
    {"match", "'abc', 'b', 3"},
    {"match", "'abc', 'b', 2"},
    {"match", "'abc', '.', 4"},
    {"match", "'abc', '.*', 4"},
    {"match", "'abc', '.', 5"},
    {"match", "'abc', '^(.)', 2"},
    {"match", "'abc', ''"},
    {"match", "'', ''"},
    {"match", "'', '.*'"},
    {"match", "'ab', '^(a)(b)$'"},
    /* argument conversion and errors */
    {"find", "nil, 'a'"},
    {"find", "'a', nil"},
    {"find", "{}, 'a'"},
    {"find", "12345, 3"},
    {"find", "12.5, '%.'"},
    {"find", "'a', 'a', 'x'"},
    {"find", "'a', 'a', 1.5"},
    {"find", "'a', 'a', '1'"},
    {"find", "'a', 'a', 1.0"},
    {"find", ""},
    {"match", "'a'"},
    {"gmatch", "nil, 'a'"},
    {"gmatch", "'a', {}"},
    {"gmatch", "'a', 'a', 'z'"},
    {"gmatch", "1234, 3"},
    {"gsub", "'abc', 'b'"},
    {"gsub", "'abc', 'b', nil"},
    {"gsub", "'abc', 'b', true"},
    {"gsub", "'abc', 'b', 'x', 'y'"},
    {"gsub", "'abc', 'b', true, 'y'"},
    {"gsub", "'abc', 'b', 'x', 1.5"},
    {"gsub", "'abc', 'b', 'x', 1.0"},
    {"gsub", "123, 2, 5"},
    {"gsub", "123, 2, 5.5"},
    {"gsub", "123, 4, 5"},
    /* gmatch */
    {"gmatch", "'hello world from lua', '%a+'"},
    {"gmatch", "'k=v, a=b', '(%w+)=(%w+)'"},
    {"gmatch", "'abc', ''"},
    {"gmatch", "'', ''"},
    {"gmatch", "'abc', '()'"},
    {"gmatch", "'abc', 'a*'"},
    {"gmatch", "'aaa', 'a-'"},
    {"gmatch", "'abc', '.', 2"},
    {"gmatch", "'abc', '.', -1"},
    {"gmatch", "'abc', '.', -10"},
    {"gmatch", "'abc', '.', 0"},
    {"gmatch", "'abc', '.', 10"},
    {"gmatch", "'abc', '', 4"},
    {"gmatch", "'abc', '', 5"},
    {"gmatch", "'aaa', '^a'"},
    {"gmatch", "'^a^a', '^a'"},
    {"gmatch", "'abc', '%'"},
    {"gmatch", "'abc', '(a'"},
    {"gmatch", "'ab', '(a)%2'"},
    {"gmatch", "'abab', 'b*'"},
    {"gmatch", "'hello', '$'"},
    {"gmatch", "'x$y$', '$'"},
    {"gmatch", "'a,b,,c', '([^,]*)'"},
    {"gmatch", "'a1b22c333', '%d*'"},
    {"gmatch", "'one two  three', '%S+'"},
    {"gmatch", "'(a)(b(c))', '%b()'"},
    {"gmatch", "'THE (quick) fox', '%f[%a]%a+'"},
    {"gmatch", "'abc', '()(.)()'"},
    {"gmatch", "'aaa', '()a-()'"},
    /* gsub: string replacements */
    {"gsub", "'hello world', 'o', '0'"},
    {"gsub", "'hello world', 'o', '0', 1"},
    {"gsub", "'hello', 'l', 'L', 0"},
    {"gsub", "'hello', 'l', 'L', -1"},
    {"gsub", "'hello', 'l', 'L', math.maxinteger"},
    {"gsub", "'hello', 'l', 'L', math.mininteger"},
    {"gsub", "'hello', '', '-'"},
    {"gsub", "'hello', '', '-', 2"},
    {"gsub", "'abc', '%w', '%0%0'"},
    {"gsub", "'abc', '%w', '%1'"},
    {"gsub", "'abc', '(%w)', '%2'"},
    {"gsub", "'abc', '%w', '%%'"},
    {"gsub", "'abc', '%w', '%'"},
    {"gsub", "'abc', '%w', 'x%'"},
    {"gsub", "'abc', '%w', '%a'"},
    {"gsub", "'abc', 'x', '%a'"},
    {"gsub", "'abc', '()', '%1'"},
    {"gsub", "'abc', '(b)()', '[%1%2]'"},
    {"gsub", "'abc', '(b)', '%0%1%0'"},
    {"gsub", "'abc', '(b', '%1'"},
    {"gsub", "'abc', '(b', 'x'"},
    {"gsub", "'abc', '(', 'x'"},
    {"gsub", "'hello world', '(%w+)', '<%1>'"},
    {"gsub", "'hello world', '%w+', '%0 %0', 1"},
    {"gsub", "'hello world', '(%w+) (%w+)', '%2 %1'"},
    {"gsub", "'abc', '^a', 'x'"},
    {"gsub", "'aaa', '^a', 'x'"},
    {"gsub", "'abc', '^', 'x'"},
    {"gsub", "'abc', '$', 'x'"},
    {"gsub", "'abc', '^$', 'x'"},
    {"gsub", "'', '^$', 'x'"},
    {"gsub", "'', '', 'x'"},
    {"gsub", "'', '^', 'x'"},
    {"gsub", "'abc', '^b', 'x'"},
    {"gsub", "'abc', '^%w*', 'x'"},
    {"gsub", "'abc', 'b*', '-'"},
    {"gsub", "'abc', 'x*', '-'"},
    {"gsub", "'a b c', '%s', '%%s'"},
    {"gsub", "'aaa', 'a', 'b', 2"},
    {"gsub", "'abc', '.', 1.0"},
    {"gsub", "'abc', '.', 2.5"},
    {"gsub", "'a.b', '%.', '%%'"},
    {"gsub", "'a\\0b', '%z', '0'"},
    {"gsub", "'a\\0b', '\\0', '%0%0'"},
    {"gsub", "'abc', '.', 'x\\0y'"},
    /* gsub: tables */
    {"gsub", "'hello', '.', {h = 'H', l = false}"},
    {"gsub", "'hello', '(.)(.)', {he = 'HE'}"},
    {"gsub", "'hello', '.', {e = {}}"},
    {"gsub", "'hello', '.', {e = true}"},
    {"gsub", "'hello', '.', {h = 1, e = 2.5}"},
    {"gsub", "'hello', '.', setmetatable({}, {__index = function(_, k) return k:upper() end})"},
    {"gsub", "'hello', '()', {[1] = 'one', [3] = 'three'}"},
    {"gsub", "'$name and $x', '%$(%w+)', {name = 'Lua'}"},
    {"gsub", "'hello', '(l', {}"},
    /* gsub: functions */
    {"gsub", "'hello world', '%w+', function(w) return w:upper() end"},
    {"gsub", "'abc', '.', function(c) return false end"},
    {"gsub", "'abc', '.', function(c) return nil end"},
    {"gsub", "'abc', '.', function(c) end"},
    {"gsub", "'abc', '.', function(c) return 42 end"},
    {"gsub", "'abc', '.', function(c) return 4.5 end"},
    {"gsub", "'abc', '.', function(c) return {} end"},
    {"gsub", "'abc', '.', function(c) return true end"},
    {"gsub", "'abc', '(.)()', function(a, b) return a .. b end"},
    {"gsub", "'abc', '.', function(...) return select('#', ...) end"},
    {"gsub", "'abc', '', function(...) return select('#', ...) end"},
    {"gsub", "'abc', '.', function() error('boom') end"},
    {"gsub", "'abc', '.', function() error('boom', 0) end"},
    {"gsub", "'abc', '.', (function() local n = 0 return function(c) n = n + 1 return c .. n end end)()"},
    {"gsub", "'abc', '.', (function() local n = 0 return function(c) n = n + 1 if n % 2 == 0 then return c:upper() end end end)()"},
    {"gsub", "'a,b', '([^,]*)', function(x) return '<' .. x .. '>' end"},
    {"gsub", "'abc', '(a', function(x) return 'z' end"},
    {"gsub", "'abc', '%w', function(c) return string.gsub(c, '.', '%0%0') end"},
};

Test(pattern, differential_table)
{
    lua_State *L = new_diff_state();
    size_t i, n = sizeof cases / sizeof cases[0], agree = 0;
    for (i = 0; i < n; i++) {
        char what[512];
        snprintf(what, sizeof what, "string.%s(%s)", cases[i][0], cases[i][1]);
        lua_getglobal(L, "compare_src");
        lua_pushstring(L, cases[i][0]);
        lua_pushstring(L, cases[i][1]);
        agree += (size_t)diff_call(L, 2, what);
    }
    cr_expect_eq(agree, n, "%zu of %zu cases agree", agree, n);
    lua_close(L);
}

/* Every class letter (and some that are not classes), alone, in a set and in
 * a negated set, over all 256 byte values. */
Test(pattern, differential_classes)
{
    static const char letters[] = "acdglpsuwxACDGLPSUWXbzZqQ.%[]-^$";
    static const char *const forms[] = {"%%%c", "[%%%c]", "[^%%%c]+", "%%%c+", "%%%c-$", "[x%%%c]"};
    lua_State *L = new_diff_state();
    size_t i, j;
    for (i = 0; letters[i]; i++) {
        for (j = 0; j < sizeof forms / sizeof forms[0]; j++) {
            char pat[16], what[64];
            snprintf(pat, sizeof pat, forms[j], letters[i]);
            snprintf(what, sizeof what, "gsub(ALL, '%s', '<%%0>')", pat);
            lua_getglobal(L, "compare");
            lua_pushstring(L, "gsub");
            lua_getglobal(L, "ALL");
            lua_pushstring(L, pat);
            lua_pushstring(L, "<%0>");
            diff_call(L, 4, what);
            snprintf(what, sizeof what, "find(ALL, '%s')", pat);
            lua_getglobal(L, "compare");
            lua_pushstring(L, "find");
            lua_getglobal(L, "ALL");
            lua_pushstring(L, pat);
            diff_call(L, 3, what);
        }
    }
    lua_close(L);
}

/* ---- random differential --------------------------------------------------- */

static uint64_t rng_state;

static unsigned rnd(unsigned n)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return (unsigned)(rng_state % n);
}

static const char *const atoms[] = {
    "a", "b", ".", "%a", "%d", "%s", "%w", "%A", "%p", "[ab]", "[^a]", "[a-c]", "[%d(]", "[]",
    "[^", "]", "(", ")", "()", "%1", "%2", "%b()", "%bab", "%f[%w]", "%f[%W]", "%f[a]", "^",
    "$", "*", "+", "-", "?", "%", "%%", "%(", "x", "\xe9", "[\x80-\xff]", "%0", "%b", "%f",
    "%z", "%x", "(a)", "(.-)", "a*", ".-", "[", "%]", "[]]", "\0",
};
static const char subject_chars[] = "ab()1 x.%\xe9" "aab";

static void push_random_pattern(lua_State *L, char *buf, size_t cap)
{
    size_t len = 0;
    unsigned k, natoms = rnd(8);
    for (k = 0; k < natoms; k++) {
        const char *a = atoms[rnd(sizeof atoms / sizeof atoms[0])];
        size_t al = a[0] ? strlen(a) : 1;
        if (len + al < cap) {
            memcpy(buf + len, a, al);
            len += al;
        }
    }
    lua_pushlstring(L, buf, len);
}

static void push_random_subject(lua_State *L, char *buf, size_t cap)
{
    size_t k, len = rnd(15);
    for (k = 0; k < len && k < cap; k++)
        buf[k] = subject_chars[rnd(sizeof subject_chars - 1)];
    lua_pushlstring(L, buf, k);
}

static void push_random_init(lua_State *L)
{
    if (rnd(3) == 0)
        lua_pushnil(L);
    else
        lua_pushinteger(L, (lua_Integer)rnd(41) - 20);
}

Test(pattern, differential_random)
{
    lua_State *L = new_diff_state();
    int iter, agree = 0, total = 0;
    rng_state = UINT64_C(0x9E3779B97F4A7C15);
    for (iter = 0; iter < 4000; iter++) {
        char pbuf[64], sbuf[32], what[256];
        int fn, nargs;
        static const char *const fnames[] = {"find", "match", "gmatch", "gsub"};
        for (fn = 0; fn < 4; fn++) {
            lua_getglobal(L, "compare");
            lua_pushstring(L, fnames[fn]);
            push_random_subject(L, sbuf, sizeof sbuf);
            push_random_pattern(L, pbuf, sizeof pbuf);
            nargs = 3;
            if (fn == 3) {
                lua_getglobal(L, "REPLS");
                lua_rawgeti(L, -1, 1 + (lua_Integer)rnd(13));
                lua_remove(L, -2);
                if (rnd(3) == 0)
                    lua_pushnil(L);
                else
                    lua_pushinteger(L, (lua_Integer)rnd(4) - 1);
                nargs = 5;
            } else {
                push_random_init(L);
                nargs = 4;
                if (fn == 0) {
                    lua_pushboolean(L, rnd(4) == 0);
                    nargs = 5;
                }
            }
            {
                size_t sl, pl;
                const char *s = lua_tolstring(L, -nargs + 1, &sl);
                const char *p = lua_tolstring(L, -nargs + 2, &pl);
                snprintf(what, sizeof what, "random #%d string.%s(%.*s | %.*s)", iter, fnames[fn],
                         (int)sl, s, (int)pl, p);
            }
            agree += diff_call(L, nargs, what);
            total++;
        }
    }
    cr_expect_eq(agree, total, "%d of %d random cases agree", agree, total);
    fprintf(stderr, "differential_random: %d of %d cases agree\n", agree, total);
    lua_close(L);
}

/* ---- the guard ------------------------------------------------------------- */

static lua_State *new_guarded_state(rg_guard *g)
{
    lua_State *L = luaL_newstate();
    cr_assert_not_null(L);
    luaL_openlibs(L);
    lua_getglobal(L, "string"); /* as the sandbox does: also ("x"):find() */
    rg_pattern_register(L, -1, g);
    lua_pop(L, 1);
    return L;
}

Test(pattern, guard_stops_catastrophic_pattern)
{
    tguard tg;
    rg_guard g = {tguard_expired, &tg};
    lua_State *L = new_guarded_state(&g);
    int64_t t0, ms;
    int rc;
    cr_assert_eq(luaL_loadstring(L, "return string.find(('a'):rep(40), ('a*'):rep(40) .. 'b')"),
                 LUA_OK);
    tguard_arm(&tg, 50);
    t0 = now_ns();
    rc = lua_pcall(L, 0, LUA_MULTRET, 0);
    ms = (now_ns() - t0) / 1000000;
    fprintf(stderr, "catastrophic pattern aborted after %lld ms (%ld guard calls)\n",
            (long long)ms, tg.calls);
    cr_assert_eq(rc, LUA_ERRRUN);
    cr_assert_str_eq(lua_tostring(L, -1), "deadline of 50 ms exceeded");
    cr_assert_geq(ms, 45);
    cr_assert_lt(ms, 300, "took %lld ms", (long long)ms);
    lua_settop(L, 0);

    /* a new evaluation: the state still works */
    tguard_arm(&tg, 10000);
    cr_assert_eq(luaL_dostring(L, "return ('hello'):find('l+')"), LUA_OK);
    cr_assert_eq(lua_tointeger(L, 1), 3);
    cr_assert_eq(lua_tointeger(L, 2), 4);
    lua_settop(L, 0);
    cr_assert_eq(luaL_dostring(L, "return ('x'):rep(100):gsub('x', 'y') == ('y'):rep(100)"),
                 LUA_OK);
    cr_assert(lua_toboolean(L, 1));
    lua_close(L);
}

Test(pattern, guard_keeps_firing_through_pcall)
{
    static const char chunk[] =
        "local s, p = ('a'):rep(40), ('a*'):rep(40) .. 'b'\n"
        "local r = {}\n"
        "local function try(...) local ok, e = pcall(...) r[#r + 1] = ok r[#r + 1] = e end\n"
        "try(string.find, s, p)\n"
        "try(string.find, 'abc', 'b')\n"
        "try(string.match, 'abc', '(b)')\n"
        "try(string.gsub, s, p, 'x')\n"
        "try(function() for w in ('a b'):gmatch('%a') do end end)\n"
        "try(function() return ('abc'):gsub('.', function(c) return c end) end)\n"
        "return table.unpack(r)\n";
    tguard tg;
    rg_guard g = {tguard_expired, &tg};
    lua_State *L = new_guarded_state(&g);
    int i;
    tguard_arm(&tg, 50);
    cr_assert_eq(luaL_loadstring(L, chunk), LUA_OK);
    cr_assert_eq(lua_pcall(L, 0, LUA_MULTRET, 0), LUA_OK, "%s", lua_tostring(L, -1));
    cr_assert_eq(lua_gettop(L), 12);
    for (i = 1; i <= 12; i += 2) {
        cr_expect(lua_isboolean(L, i) && !lua_toboolean(L, i), "call %d succeeded", i / 2 + 1);
        cr_expect(lua_isstring(L, i + 1) &&
                      strstr(lua_tostring(L, i + 1), "deadline of 50 ms exceeded") != NULL,
                  "call %d: %s", i / 2 + 1, lua_tostring(L, i + 1));
    }
    lua_close(L);
}

/* The guard is consulted periodically during a long match, not only on entry. */
Test(pattern, guard_consulted_periodically)
{
    tguard tg;
    rg_guard g = {tguard_expired, &tg};
    lua_State *L = new_guarded_state(&g);
    tguard_arm(&tg, 100000);
    cr_assert_eq(luaL_dostring(L, "return string.find(('a'):rep(12), ('a*'):rep(12) .. 'b')"),
                 LUA_OK);
    cr_assert(lua_isnil(L, -1));
    cr_assert_gt(tg.calls, 50, "only %ld guard calls", tg.calls);
    lua_close(L);
}

Test(pattern, register_is_stack_neutral)
{
    lua_State *L = luaL_newstate();
    static const char *const names[] = {"find", "match", "gmatch", "gsub"};
    int i;
    luaL_openlibs(L);
    lua_newtable(L);
    lua_pushinteger(L, 1); /* the table is not on top */
    rg_pattern_register(L, -2, &never_guard);
    cr_assert_eq(lua_gettop(L), 2);
    for (i = 0; i < 4; i++) {
        cr_assert_eq(lua_getfield(L, 1, names[i]), LUA_TFUNCTION, "%s", names[i]);
        cr_assert(lua_iscfunction(L, -1));
        lua_pop(L, 1);
    }
    lua_close(L);
}

Test(pattern, null_guard_is_no_guard)
{
    rg_guard none = {NULL, NULL};
    lua_State *L = new_guarded_state(&none);
    cr_assert_eq(luaL_dostring(L, "return ('k=v'):match('(%w+)=(%w+)')"), LUA_OK);
    cr_assert_str_eq(lua_tostring(L, 1), "k");
    cr_assert_str_eq(lua_tostring(L, 2), "v");
    lua_close(L);
}
