/*
 * pattern.h - guarded Lua 5.4 pattern matching for sandboxed code.
 *
 * Lua's own string.find/match/gmatch/gsub run inside C, where the sandbox's
 * instruction-count hook never fires, so a pathological pattern can spin for
 * hours. These replacements behave like Lua 5.4's functions but consult a
 * guard every ~1024 matcher steps and raise a Lua error once it has expired.
 */
#ifndef RG_PATTERN_H
#define RG_PATTERN_H

#include <lua.h>

/* Guard consulted by the matcher; returns non-zero when the evaluation must stop.
 * msg receives a static, human-readable reason (e.g. "deadline of 250 ms exceeded"). */
typedef struct rg_guard {
    int (*expired)(void *ud, const char **msg);
    void *ud;
} rg_guard;

/* [-0, +0] Sets fields find, match, gmatch, gsub in the table at stack index idx
 * to guarded implementations. g must outlive every use of those functions (store it as a
 * light userdata upvalue). When g->expired returns non-zero the running function raises
 * a Lua error whose message is the msg it returned. */
void rg_pattern_register(lua_State *L, int idx, const rg_guard *g);

#endif
