/*
 * pattern.c - Lua 5.4 patterns (string.find, match, gmatch, gsub) with a guard.
 *
 * What for: sandboxed protocols must not be able to hold the CPU inside a C
 * function, where the instruction-count hook never fires. This matcher is a
 * plain backtracking implementation of the Lua 5.4 manual's §6.4.1 that calls
 * the guard (see pattern.h) every PAT_TICK steps and raises the guard's
 * message as a Lua error once it has expired. Results, error messages, the
 * lazy detection of malformed patterns (an error is raised only when the
 * matcher reaches the bad item) and the "pattern too complex" recursion limit
 * are those of Lua 5.4's lstrlib.c, so protocols see no difference.
 *
 * Depends on: the Lua 5.4 C API and <ctype.h> (classes follow the C locale,
 * as Lua's do). Allocates nothing: every string is built in a luaL_Buffer, so
 * a Lua error (longjmp) can never leak memory.
 */
#include "engine/pattern.h"

#include <lauxlib.h>

#include <ctype.h>
#include <stdint.h>
#include <string.h>

#define PAT_MAXCAP 32    /* LUA_MAXCAPTURES */
#define PAT_MAXDEPTH 200 /* MAXCCALLS of lstrlib.c: nested matcher calls */
#define PAT_TICK 1024    /* matcher steps between two guard checks */
#define PAT_OPEN (-1)    /* capture length: not closed yet */
#define PAT_POS (-2)     /* capture length: position capture "()" */
#define PAT_SPECIALS "^$*+?.([%-"

typedef struct pat_state {
    lua_State *L;
    const rg_guard *g;
    const char *s0, *se; /* subject and its end */
    const char *pe;      /* end of the pattern */
    unsigned steps;      /* since the last guard check */
    int depth;           /* nested matcher calls still allowed */
    int level;           /* captures in use */
    struct {
        const char *at;
        ptrdiff_t len; /* or PAT_OPEN, PAT_POS */
    } cap[PAT_MAXCAP];
} pat_state;

static const char *pat_match(pat_state *ms, const char *s, const char *p);

/* [-0, +0, e] Raises the guard's message if it has expired. */
static void pat_guard(lua_State *L, const rg_guard *g)
{
    const char *msg = NULL;
    if (g && g->expired && g->expired(g->ud, &msg)) {
        lua_pushstring(L, msg ? msg : "evaluation stopped");
        lua_error(L);
    }
}

/* [-0, +0, e] Counts cost steps; consults the guard every PAT_TICK. */
static void pat_tick(pat_state *ms, size_t cost)
{
    ms->steps += (unsigned)(cost < PAT_TICK ? cost : PAT_TICK);
    if (ms->steps >= PAT_TICK) {
        ms->steps = 0;
        pat_guard(ms->L, ms->g);
    }
}

/* [-0, +0] */
static void pat_init(pat_state *ms, lua_State *L, const rg_guard *g, const char *s, size_t ls,
                     const char *pe)
{
    ms->L = L;
    ms->g = g;
    ms->s0 = s;
    ms->se = s + ls;
    ms->pe = pe;
    ms->steps = 0;
}

/* [-0, +0] Ready for a fresh match attempt. */
static void pat_reset(pat_state *ms)
{
    ms->level = 0;
    ms->depth = PAT_MAXDEPTH;
}

/* 1-based start position from an init argument (negative counts from the end). */
static size_t pat_start(lua_Integer pos, size_t len)
{
    if (pos > 0)
        return (size_t)pos;
    if (pos == 0 || pos < -(lua_Integer)len)
        return 1;
    return len + (size_t)pos + 1;
}

/* Does character c belong to class %cl (cl a letter: a class; else literal)? */
static int pat_class(int c, int cl)
{
    int r;
    switch (tolower(cl)) {
    case 'a': r = isalpha(c); break;
    case 'c': r = iscntrl(c); break;
    case 'd': r = isdigit(c); break;
    case 'g': r = isgraph(c); break;
    case 'l': r = islower(c); break;
    case 'p': r = ispunct(c); break;
    case 's': r = isspace(c); break;
    case 'u': r = isupper(c); break;
    case 'w': r = isalnum(c); break;
    case 'x': r = isxdigit(c); break;
    case 'z': r = c == 0; break; /* deprecated, still in Lua 5.4 */
    default: return cl == c;
    }
    return isupper(cl) ? !r : r != 0;
}

/* Does c belong to the set from p (at its '[') to ec (at its closing ']')? */
static int pat_set(int c, const char *p, const char *ec)
{
    int in = 1;
    if (p[1] == '^') {
        in = 0;
        p++;
    }
    while (++p < ec) {
        if (*p == '%') {
            p++;
            if (pat_class(c, (unsigned char)*p))
                return in;
        } else if (p[1] == '-' && p + 2 < ec) {
            if ((unsigned char)p[0] <= c && c <= (unsigned char)p[2])
                return in;
            p += 2;
        } else if ((unsigned char)*p == c) {
            return in;
        }
    }
    return !in;
}

/* [-0, +0, e] End of the single-character class starting at p. A ']' right
 * after '[' or '[^' belongs to the set. */
static const char *pat_class_end(pat_state *ms, const char *p)
{
    char c = *p++;
    if (c == '%') {
        if (p >= ms->pe)
            luaL_error(ms->L, "malformed pattern (ends with '%%')");
        return p + 1;
    }
    if (c == '[') {
        if (p < ms->pe && *p == '^')
            p++;
        do {
            if (p >= ms->pe)
                luaL_error(ms->L, "malformed pattern (missing ']')");
            if (*p++ == '%' && p < ms->pe)
                p++; /* an escaped char, e.g. '%]' */
        } while (p >= ms->pe || *p != ']');
        return p + 1;
    }
    return p;
}

/* Does the subject char at s match the class from p to ep? */
static int pat_single(const pat_state *ms, const char *s, const char *p, const char *ep)
{
    int c;
    if (s >= ms->se)
        return 0;
    c = (unsigned char)*s;
    switch (*p) {
    case '.': return 1;
    case '%': return pat_class(c, (unsigned char)p[1]);
    case '[': return pat_set(c, p, ep - 1);
    default: return (unsigned char)*p == c;
    }
}

/* [-0, +0, e] %bxy at p (pointing at x): end of the balanced run at s, or NULL. */
static const char *pat_balance(pat_state *ms, const char *s, const char *p)
{
    int open = 1;
    if (p + 1 >= ms->pe)
        luaL_error(ms->L, "malformed pattern (missing arguments to '%%b')");
    if (s >= ms->se || *s != p[0])
        return NULL;
    while (++s < ms->se) {
        pat_tick(ms, 1);
        if (*s == p[1]) {
            if (--open == 0)
                return s + 1;
        } else if (*s == p[0]) {
            open++;
        }
    }
    return NULL;
}

/* [-0, +0, e] Back reference %d (d a digit char) at s. */
static const char *pat_backref(pat_state *ms, const char *s, int d)
{
    int l = d - '1';
    ptrdiff_t len;
    if (l < 0 || l >= ms->level || ms->cap[l].len == PAT_OPEN)
        luaL_error(ms->L, "invalid capture index %%%d", l + 1);
    len = ms->cap[l].len; /* a position capture (< 0) never matches */
    pat_tick(ms, len > 0 ? (size_t)len / 64 : 0);
    if (len >= 0 && ms->se - s >= len && memcmp(ms->cap[l].at, s, (size_t)len) == 0)
        return s + len;
    return NULL;
}

/* [-0, +0, e] Greedy repetition of the class p..ep at s, then the rest after ep. */
static const char *pat_max(pat_state *ms, const char *s, const char *p, const char *ep)
{
    ptrdiff_t i = 0;
    while (pat_single(ms, s + i, p, ep)) {
        pat_tick(ms, 1);
        i++;
    }
    for (; i >= 0; i--) {
        const char *r = pat_match(ms, s + i, ep + 1);
        if (r)
            return r;
    }
    return NULL;
}

/* [-0, +0, e] Lazy repetition ('-') of the class p..ep at s. */
static const char *pat_min(pat_state *ms, const char *s, const char *p, const char *ep)
{
    for (;;) {
        const char *r = pat_match(ms, s, ep + 1);
        if (r)
            return r;
        if (!pat_single(ms, s, p, ep))
            return NULL;
        s++;
    }
}

/* [-0, +0, e] Opens a capture at s (what: PAT_OPEN or PAT_POS), matches p. */
static const char *pat_open(pat_state *ms, const char *s, const char *p, ptrdiff_t what)
{
    const char *r;
    if (ms->level >= PAT_MAXCAP)
        luaL_error(ms->L, "too many captures");
    ms->cap[ms->level].at = s;
    ms->cap[ms->level].len = what;
    ms->level++;
    r = pat_match(ms, s, p);
    if (!r)
        ms->level--;
    return r;
}

/* [-0, +0, e] Closes the innermost open capture at s, matches p. */
static const char *pat_close(pat_state *ms, const char *s, const char *p)
{
    const char *r;
    int l = ms->level - 1;
    while (l >= 0 && ms->cap[l].len != PAT_OPEN)
        l--;
    if (l < 0)
        luaL_error(ms->L, "invalid pattern capture");
    ms->cap[l].len = s - ms->cap[l].at;
    r = pat_match(ms, s, p);
    if (!r)
        ms->cap[l].len = PAT_OPEN;
    return r;
}

/* [-0, +0, e] Matches pattern p (up to ms->pe) at s: end of the match or NULL.
 * Recursion happens only where lstrlib.c recurses (captures, '?', '*', '+',
 * '-'), so the depth limit triggers on the same patterns; every other item
 * continues the loop. */
static const char *pat_match(pat_state *ms, const char *s, const char *p)
{
    const char *pe = ms->pe;
    if (ms->depth-- == 0)
        luaL_error(ms->L, "pattern too complex");
    while (s && p < pe) {
        const char *ep;
        pat_tick(ms, 1);
        if (*p == '(') {
            if (p + 1 < pe && p[1] == ')')
                s = pat_open(ms, s, p + 2, PAT_POS);
            else
                s = pat_open(ms, s, p + 1, PAT_OPEN);
            break;
        }
        if (*p == ')') {
            s = pat_close(ms, s, p + 1);
            break;
        }
        if (*p == '$' && p + 1 == pe) { /* '$' elsewhere is a literal */
            s = s == ms->se ? s : NULL;
            break;
        }
        if (*p == '%' && p + 1 < pe && p[1] == 'b') {
            s = pat_balance(ms, s, p + 2);
            p += 4;
            continue;
        }
        if (*p == '%' && p + 1 < pe && p[1] == 'f') {
            int prev, cur;
            p += 2;
            if (p >= pe || *p != '[')
                luaL_error(ms->L, "missing '[' after '%%f' in pattern");
            ep = pat_class_end(ms, p);
            prev = s == ms->s0 ? 0 : (unsigned char)s[-1];
            cur = s < ms->se ? (unsigned char)*s : 0;
            if (pat_set(prev, p, ep - 1) || !pat_set(cur, p, ep - 1))
                s = NULL;
            p = ep;
            continue;
        }
        if (*p == '%' && p + 1 < pe && isdigit((unsigned char)p[1])) {
            s = pat_backref(ms, s, (unsigned char)p[1]);
            p += 2;
            continue;
        }
        /* a single-character class with an optional quantifier */
        ep = pat_class_end(ms, p);
        if (!pat_single(ms, s, p, ep)) {
            if (ep < pe && (*ep == '*' || *ep == '?' || *ep == '-'))
                p = ep + 1; /* zero repetitions are fine */
            else
                s = NULL;
            continue;
        }
        switch (ep < pe ? *ep : '\0') {
        case '?': {
            const char *r = pat_match(ms, s + 1, ep + 1); /* try with one */
            if (r) {
                s = r;
                break;
            }
            p = ep + 1; /* else without */
            continue;
        }
        case '+': s = pat_max(ms, s + 1, p, ep); break;
        case '*': s = pat_max(ms, s, p, ep); break;
        case '-': s = pat_min(ms, s, p, ep); break;
        default: s++; p = ep; continue;
        }
        break;
    }
    ms->depth++;
    return s;
}

/* [-0, +1, e] Pushes capture i; with no captures, i == 0 is the whole match s..e. */
static void pat_push_cap(pat_state *ms, int i, const char *s, const char *e)
{
    if (i >= ms->level) {
        if (i != 0)
            luaL_error(ms->L, "invalid capture index %%%d", i + 1);
        lua_pushlstring(ms->L, s, (size_t)(e - s));
    } else if (ms->cap[i].len == PAT_OPEN) {
        luaL_error(ms->L, "unfinished capture");
    } else if (ms->cap[i].len == PAT_POS) {
        lua_pushinteger(ms->L, (lua_Integer)(ms->cap[i].at - ms->s0) + 1);
    } else {
        lua_pushlstring(ms->L, ms->cap[i].at, (size_t)ms->cap[i].len);
    }
}

/* [-0, +n, e] Pushes all captures, or the whole match when there are none and
 * s is not NULL. Returns n. */
static int pat_push_caps(pat_state *ms, const char *s, const char *e)
{
    int i, n = (ms->level == 0 && s) ? 1 : ms->level;
    luaL_checkstack(ms->L, n + 1, "too many captures");
    for (i = 0; i < n; i++)
        pat_push_cap(ms, i, s, e);
    return n;
}

/* [-0, +0, e] Plain substring search with guard ticks. */
static const char *pat_plain(pat_state *ms, const char *s, size_t ls, const char *p, size_t lp)
{
    const char *end = s + ls, *c;
    if (lp == 0)
        return s;
    while (lp <= (size_t)(end - s) && (c = memchr(s, p[0], (size_t)(end - s) - lp + 1)) != NULL) {
        pat_tick(ms, 1 + lp / 64);
        if (memcmp(c + 1, p + 1, lp - 1) == 0)
            return c;
        s = c + 1;
    }
    return NULL;
}

/* Does the pattern have none of the special characters? (NULs are plain.) */
static int pat_is_plain(const char *p, size_t lp)
{
    size_t i;
    for (i = 0; i < lp; i++)
        if (p[i] && strchr(PAT_SPECIALS, p[i]))
            return 0;
    return 1;
}

/* [-(2|3|4), +(1|2+n), e] string.find (find != 0) and string.match. */
static int pat_find_aux(lua_State *L, int find)
{
    size_t ls, lp;
    const char *s = luaL_checklstring(L, 1, &ls);
    const char *p = luaL_checklstring(L, 2, &lp);
    size_t init = pat_start(luaL_optinteger(L, 3, 1), ls) - 1;
    const rg_guard *g = lua_touserdata(L, lua_upvalueindex(1));
    pat_state ms;
    pat_guard(L, g);
    if (init > ls) {
        luaL_pushfail(L);
        return 1;
    }
    pat_init(&ms, L, g, s, ls, p + lp);
    if (find && (lua_toboolean(L, 4) || pat_is_plain(p, lp))) {
        const char *r = pat_plain(&ms, s + init, ls - init, p, lp);
        if (r) {
            lua_pushinteger(L, (lua_Integer)(r - s) + 1);
            lua_pushinteger(L, (lua_Integer)(r - s + lp));
            return 2;
        }
    } else {
        const char *s1 = s + init;
        int anchor = (*p == '^');
        if (anchor)
            p++;
        do {
            const char *e;
            pat_reset(&ms);
            if ((e = pat_match(&ms, s1, p)) != NULL) {
                if (!find)
                    return pat_push_caps(&ms, s1, e);
                lua_pushinteger(L, (lua_Integer)(s1 - s) + 1);
                lua_pushinteger(L, (lua_Integer)(e - s));
                return pat_push_caps(&ms, NULL, NULL) + 2;
            }
        } while (s1++ < ms.se && !anchor);
    }
    luaL_pushfail(L);
    return 1;
}

/* [-(2|3|4), +(1|2+n), e] string.find(s, pattern [, init [, plain]]) */
static int pat_find(lua_State *L) { return pat_find_aux(L, 1); }

/* [-(2|3), +(1|n), e] string.match(s, pattern [, init]) */
static int pat_match_fn(lua_State *L) { return pat_find_aux(L, 0); }

typedef struct pat_iter {
    size_t pos;  /* where the next search starts */
    size_t last; /* end of the previous match, or SIZE_MAX */
} pat_iter;

/* [-0, +(0|n), e] The gmatch iterator. Upvalues: subject, pattern, pat_iter,
 * guard. An empty match ending where the previous match ended is skipped. */
static int pat_gmatch_next(lua_State *L)
{
    size_t ls, lp, i;
    const char *s = lua_tolstring(L, lua_upvalueindex(1), &ls);
    const char *p = lua_tolstring(L, lua_upvalueindex(2), &lp);
    pat_iter *it = lua_touserdata(L, lua_upvalueindex(3));
    const rg_guard *g = lua_touserdata(L, lua_upvalueindex(4));
    pat_state ms;
    pat_guard(L, g);
    pat_init(&ms, L, g, s, ls, p + lp);
    for (i = it->pos; i <= ls; i++) {
        const char *e;
        pat_reset(&ms);
        if ((e = pat_match(&ms, s + i, p)) != NULL && (size_t)(e - s) != it->last) {
            it->pos = it->last = (size_t)(e - s);
            return pat_push_caps(&ms, s + i, e);
        }
    }
    return 0;
}

/* [-(2|3), +1, e] string.gmatch(s, pattern [, init]); '^' is not an anchor. */
static int pat_gmatch(lua_State *L)
{
    size_t ls, lp, init;
    pat_iter *it;
    luaL_checklstring(L, 1, &ls);
    luaL_checklstring(L, 2, &lp);
    init = pat_start(luaL_optinteger(L, 3, 1), ls) - 1;
    lua_settop(L, 2); /* the (converted) strings become upvalues */
    it = lua_newuserdatauv(L, sizeof *it, 0);
    it->pos = init > ls ? ls + 1 : init;
    it->last = SIZE_MAX;
    lua_pushvalue(L, lua_upvalueindex(1));
    lua_pushcclosure(L, pat_gmatch_next, 4);
    return 1;
}

/* [-0, +0, e] Appends the replacement string (argument 3) for match s..e,
 * expanding %0-%9 and %%. */
static void pat_add_string(pat_state *ms, luaL_Buffer *b, const char *s, const char *e)
{
    size_t l;
    const char *r = lua_tolstring(ms->L, 3, &l);
    const char *end = r + l, *q;
    while ((q = memchr(r, '%', (size_t)(end - r))) != NULL) {
        pat_tick(ms, 1); /* "%0" of an empty match adds nothing but costs a step */
        luaL_addlstring(b, r, (size_t)(q - r));
        q++;
        if (q < end && *q == '%') {
            luaL_addchar(b, '%');
        } else if (q < end && *q == '0') {
            luaL_addlstring(b, s, (size_t)(e - s));
        } else if (q < end && isdigit((unsigned char)*q)) {
            pat_push_cap(ms, *q - '1', s, e);
            luaL_addvalue(b); /* converts a position capture to text */
        } else {
            luaL_error(ms->L, "invalid use of '%%' in replacement string");
        }
        r = q + 1;
    }
    luaL_addlstring(b, r, (size_t)(end - r));
}

/* [-0, +0, e] Appends the replacement for match s..e given replacement type
 * tr; returns whether the text changed (false/nil keeps the original). */
static int pat_add_value(pat_state *ms, luaL_Buffer *b, const char *s, const char *e, int tr)
{
    lua_State *L = ms->L;
    if (tr == LUA_TFUNCTION) {
        int n;
        lua_pushvalue(L, 3);
        n = pat_push_caps(ms, s, e);
        lua_call(L, n, 1);
    } else if (tr == LUA_TTABLE) {
        pat_push_cap(ms, 0, s, e);
        lua_gettable(L, 3);
    } else {
        pat_add_string(ms, b, s, e);
        return 1;
    }
    if (!lua_toboolean(L, -1)) {
        lua_pop(L, 1);
        luaL_addlstring(b, s, (size_t)(e - s));
        return 0;
    }
    if (!lua_isstring(L, -1))
        return luaL_error(L, "invalid replacement value (a %s)", luaL_typename(L, -1));
    luaL_addvalue(b);
    return 1;
}

/* [-(3|4), +2, e] string.gsub(s, pattern, repl [, n]) */
static int pat_gsub(lua_State *L)
{
    size_t ls, lp;
    const char *src = luaL_checklstring(L, 1, &ls);
    const char *p = luaL_checklstring(L, 2, &lp);
    const char *last = NULL;
    int tr = lua_type(L, 3);
    lua_Integer max = luaL_optinteger(L, 4, (lua_Integer)ls + 1);
    const rg_guard *g = lua_touserdata(L, lua_upvalueindex(1));
    int anchor = (*p == '^'), changed = 0;
    lua_Integer n = 0;
    pat_state ms;
    luaL_Buffer b;
    luaL_argexpected(L, tr == LUA_TNUMBER || tr == LUA_TSTRING || tr == LUA_TFUNCTION ||
                            tr == LUA_TTABLE,
                     3, "string/function/table");
    pat_guard(L, g);
    pat_init(&ms, L, g, src, ls, p + lp);
    if (anchor)
        p++;
    luaL_buffinit(L, &b);
    while (n < max) {
        const char *e;
        pat_tick(&ms, 1); /* an empty pattern matches without a step of its own */
        pat_reset(&ms);
        if ((e = pat_match(&ms, src, p)) != NULL && e != last) {
            n++;
            changed |= pat_add_value(&ms, &b, src, e, tr);
            src = last = e;
        } else if (src < ms.se) {
            luaL_addchar(&b, *src++);
        } else {
            break;
        }
        if (anchor)
            break;
    }
    if (!changed) {
        lua_pushvalue(L, 1);
    } else {
        luaL_addlstring(&b, src, (size_t)(ms.se - src));
        luaL_pushresult(&b);
    }
    lua_pushinteger(L, n);
    return 2;
}

void rg_pattern_register(lua_State *L, int idx, const rg_guard *g)
{
    static const luaL_Reg fns[] = {
        {"find", pat_find}, {"match", pat_match_fn}, {"gmatch", pat_gmatch}, {"gsub", pat_gsub},
        {NULL, NULL}};
    const luaL_Reg *r;
    idx = lua_absindex(L, idx);
    luaL_checkstack(L, 2, "rg_pattern_register");
    for (r = fns; r->name; r++) {
        lua_pushlightuserdata(L, (void *)(uintptr_t)g); /* never written through */
        lua_pushcclosure(L, r->func, 1);
        lua_setfield(L, idx, r->name);
    }
}
