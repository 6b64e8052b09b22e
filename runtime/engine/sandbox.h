/*
 * sandbox.h - one Lua 5.4 state per clinic, with an allow-list of globals and
 * limits that a protocol cannot escape.
 *
 * Limits: a memory cap enforced by the state's allocator (lifted while the
 * standard library loads), an instruction budget per evaluation enforced by a
 * count hook that re-raises until control is back in C (so a protocol's pcall
 * cannot swallow it), and a wall-clock deadline checked by the same hook and
 * by the guarded string matcher (a count hook never fires inside a C function).
 * The hook is not set when an evaluation starts: a watchdog thread sets it
 * (through a signal handled on the evaluating thread) in an evaluation that
 * has run for one to two milliseconds, so short ones pay nothing for it and
 * the instruction budget counts from then.
 *
 * Isolation: every chunk runs with its own _ENV. What a chunk defines while it
 * loads is kept; what it writes to globals during an evaluation is wiped when
 * the evaluation ends (rg_sandbox_leave). Library tables and required modules
 * are read-only proxies, and the string metatable is locked.
 *
 * Ownership: rg_sandbox_new creates the sandbox and its lua_State; the caller
 * owns both and frees them with rg_sandbox_free. The lua_State must not be
 * closed by anyone else.
 */
#ifndef RG_SANDBOX_H
#define RG_SANDBOX_H

#include "core/rg.h"

#include <lua.h>

typedef struct rg_limits {
    size_t max_memory;        /* bytes the clinic's state may hold */
    int64_t max_instructions; /* Lua VM instructions per evaluation */
    int deadline_ms;          /* wall-clock milliseconds per evaluation */
} rg_limits;

#define RG_LIMITS_DEFAULT ((rg_limits){64u << 20, 10 * 1000 * 1000, 2000})

/* Fixed limits, so that no single C call outlasts the deadline by much (the
 * count hook never runs inside one):
 * - no string longer than RG_MAX_STRING bytes can be made (the allocator
 *   refuses it: "memory limit of ... bytes per string"): one comparison,
 *   concatenation or string.format of strings this long takes well under a
 *   millisecond, and table.sort's comparisons go through a call the hook sees;
 * - load() and protocol or module files are parsed in pieces with the
 *   deadline checked between them, and a file may hold at most RG_MAX_CHUNK
 *   bytes (a chunk given to load() is a string, so at most RG_MAX_STRING);
 * - print writes at most RG_PRINT_MAX_LINES lines or RG_PRINT_MAX_BYTES bytes
 *   per evaluation (each line cut at 1,024 bytes); more is a limit error. */
#define RG_MAX_STRING (256u << 10)
#define RG_MAX_CHUNK (4u << 20)
#define RG_PRINT_MAX_LINES 100
#define RG_PRINT_MAX_BYTES 16384

typedef struct rg_sandbox rg_sandbox;

/* Creates a state for clinic; path lists the directories (in order) where
 * require looks for modules. The strings are copied. */
int rg_sandbox_new(rg_sandbox **out, const char *clinic, const rg_limits *lim,
                   const char *const *path, int npath, char *err, size_t errlen);
void rg_sandbox_free(rg_sandbox *sb);

lua_State *rg_sandbox_state(rg_sandbox *sb);
const char *rg_sandbox_clinic(const rg_sandbox *sb);
/* The sandbox that owns L (any thread of it). */
rg_sandbox *rg_sandbox_of(lua_State *L);

/* Starts a budgeted evaluation (or load): resets the instruction count and
 * the deadline. */
void rg_sandbox_enter(rg_sandbox *sb);
/* The same, ending by the monotonic ms `by` when that comes before the
 * evaluation's own deadline: one budget of total_ms over several calls (the
 * fhir.map calls of one request); the message then says "deadline of
 * total_ms ms for <what> exceeded". by 0: rg_sandbox_enter. */
void rg_sandbox_enter_by(rg_sandbox *sb, int64_t by, int total_ms, const char *what);
/* Ends it: wipes globals written since enter and re-arms the hook. */
void rg_sandbox_leave(rg_sandbox *sb);

/* [-(nargs+1), +nres|0] Calls the function below the nargs arguments under
 * protection. On error returns RG_EPROTOCOL (the protocol raised an error),
 * RG_ELIMIT (a limit fired) or RG_ENOMEM (the host refused memory, not the
 * cap: nothing the protocol did, so its result is not one to keep), pops
 * everything, and writes the message, which names the protocol file and line
 * and the chain of protocol calls, to err. */
int rg_pcall(rg_sandbox *sb, int nargs, int nres, char *err, size_t errlen);

/* 1 when a limit fired (or the allocator refused) since rg_sandbox_enter. */
int rg_sandbox_limit_fired(const rg_sandbox *sb);
/* A nested protected call made from C ended with LUA_ERRMEM: unless the cap
 * refused, the host is out of memory and the running rg_pcall returns
 * RG_ENOMEM. */
void rg_sandbox_errmem(rg_sandbox *sb);
/* The message handler rg_pcall uses, for nested protected calls made from C
 * inside an evaluation ([-1, +1]). */
int rg_sandbox_msgh(lua_State *L);

/* [-0, +1|0] Loads a protocol or module file as text (bytecode is refused)
 * with a fresh environment and pushes the chunk. */
int rg_sandbox_loadfile(rg_sandbox *sb, const char *path, char *err, size_t errlen);
/* How many loads of this process took the bytecode kept from an earlier
 * parse of the same file name and text (sandbox.c, compiled chunks). */
unsigned long rg_sandbox_chunk_hits(void);
/* The text rg_sandbox_loadfile read from path (the loaded code's source,
 * whatever the file holds now) and its length, or NULL when it loaded no
 * file of that name. */
const char *rg_sandbox_source(rg_sandbox *sb, const char *path, size_t *len);

/* [-0, +0] Moves what the chunks loaded so far defined into their
 * persistent environments (call after running top-level code). */
void rg_sandbox_seal(rg_sandbox *sb);

/* [-1, +1] Replaces the table on top by a read-only proxy of it, recursively
 * freezing nested tables; name is used in the error message on writes. */
void rg_sandbox_freeze(lua_State *L, const char *name);

typedef struct rg_sandbox_stats {
    size_t memory, peak_memory;
    int64_t instructions; /* in the current or last evaluation */
    int limit_hits;
} rg_sandbox_stats;
void rg_sandbox_stats_get(const rg_sandbox *sb, rg_sandbox_stats *st);

#endif
