/*
 * sandbox.c - the per-clinic Lua state and its limits (see sandbox.h).
 *
 * Learnt from lua_sandbox (allocator cap lifted while the libraries load),
 * Redis (allow-list of globals, text-only load, a kill hook that re-arms so a
 * pcall cannot swallow it) and lua.c (one protected entry point, a hook set
 * from a signal handler to stop a running chunk). Depends on
 * Lua 5.4, runtime/engine/pattern.c (the guarded string matcher) and the regimen
 * module in bindings/.
 */
#include "engine/sandbox.h"

#include "bindings/bindings.h"
#include "engine/pattern.h"

#include <lauxlib.h>
#include <lualib.h>

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define RG_HOOK_EVERY 1000 /* instructions between two hook calls */
#define RG_HOOK_MASK (LUA_MASKCOUNT | LUA_MASKCALL)
/* The watchdog's period: an evaluation still running after one full period
 * (1 to 2 periods after it began) gets the count and call hook, and from
 * then on the limits are enforced as the hook always did. Shorter ones run
 * with no hook at all: Lua 5.4 sends every instruction through
 * luaG_traceexec while a count hook is set, whatever its count. */
#define RG_WATCH_MS 1
/* Idle periods after which the watchdog sleeps until the next evaluation
 * wakes it: soon, so that a quiet service has no thread ticking (a ticking
 * one shifted the service's timing under load, see test_serve). */
#define RG_WATCH_IDLE 5
#define RG_MSGH_HEADROOM (1u << 20)
/* Bytes of one piece the parser is handed at a time: the deadline is checked
 * between pieces, so even a chunk whose parse is quadratic (thousands of
 * labels and gotos) stops in time. */
#define RG_LOAD_PIECE 1024
/* Bytes of one print line kept in the log; more is cut and counted. */
#define RG_PRINT_LINE_MAX 1024

/* Registry keys (addresses are unique). */
static const char rg__k_envs = 'e';    /* list of {E, B} environment pairs */
static const char rg__k_loaded = 'l';  /* module name -> frozen module */
static const char rg__k_globals = 'g'; /* the allow-listed globals (G) */
static const char rg__k_frozen = 'f';  /* weak: table -> its proxy */

/* Small blocks of one Lua state, by size class (RG_POOL_STEP bytes apart,
 * up to RG_POOL_MAX): an evaluation makes and drops tens of thousands of
 * tables, event strings and lists, and the collector frees them in bursts
 * that overflow glibc's per-thread cache (its _int_free and _int_malloc were
 * 5% of a sweep). A freed block goes on its class's list and is handed out
 * again; blocks are cut from chunks that go back to the system when the
 * state closes. Only the thread running the state uses it (as the state). */
#define RG_POOL_STEP 16
#if defined(__SANITIZE_ADDRESS__)
#define RG_POOL_MAX 0 /* under AddressSanitizer (make asan) every block is its own */
#else
#define RG_POOL_MAX 512
#endif
#define RG_POOL_CHUNK (64 * 1024)
typedef struct rg__pool {
    void *free[RG_POOL_MAX / RG_POOL_STEP + 1]; /* each free block starts with the next */
    char *cur, *end;                        /* the rest of the newest chunk */
    void *chunks;                           /* each starts with the one before */
} rg__pool;

struct rg_sandbox {
    lua_State *L;
    char *clinic;
    char **path;
    char **real; /* path[i] resolved (realpath), or NULL */
    int npath;
    rg_limits lim;
    size_t mem, peak;
    int enforce_mem;   /* 0 while the libraries load */
    int in_msgh;       /* error handler running: small headroom over the cap */
    int mem_hit;       /* the allocator refused since enter */
    int oom;           /* the host refused memory (not the cap) in this rg_pcall */
    int64_t ticks;     /* instructions since enter (in RG_HOOK_EVERY steps) */
    uint32_t calls;    /* function calls seen by the hook */
    int active;        /* inside rg_sandbox_enter .. rg_sandbox_leave */
    int64_t deadline;  /* monotonic ms */
    int64_t cap;       /* rg_sandbox_enter_by: an earlier end for a whole request (0: none) */
    int cap_ms;        /* ... its length, for the message */
    const char *cap_what;
    int expired;       /* a limit fired; the hook keeps raising */
    int limit_hits;
    int str_hit;       /* the allocator refused a string over RG_MAX_STRING since enter */
    int print_lines;   /* print calls since enter */
    size_t print_bytes;
    char why[320];
    rg_guard guard;
    int nenvs_at_enter;
    /* The watchdog (see rg__watch_main). run is odd while an evaluation is
     * running (enter and leave each add one); armed says the hook is set for
     * this one; running is the Lua thread executing now (the main state, or a
     * coroutine the resume wrappers entered), which the signal handler hooks. */
    _Atomic uint64_t run;
    uint64_t watch_seen;          /* run at the watchdog's previous look */
    _Atomic uint64_t watch_target; /* the run the signal is meant for */
    _Atomic int armed;
    struct rg_sandbox *watch_outer; /* the sandbox evaluating on this thread before enter */
    lua_State *volatile running;
    pthread_t thread;             /* the thread inside rg_sandbox_enter */
    struct rg_sandbox *watch_next, *watch_prev;
    rg__pool pool;                /* the Lua state's small blocks (rg__alloc) */
    /* the text of each file rg_sandbox_loadfile loaded, as it was read
     * (rg_sandbox_source): what the loaded code came from, whatever the
     * file holds by now */
    struct rg__source {
        struct rg__source *next;
        char *path, *text;
        size_t len;
    } *sources;
};

static lua_Integer rg__nenvs(lua_State *L);

/* [-0, +0] Removes every field of the table on top (lua_next allows clearing
 * fields during the traversal). */
static void rg__clear(lua_State *L)
{
    lua_pushnil(L);
    while (lua_next(L, -2)) {
        lua_pop(L, 1);
        lua_pushvalue(L, -1);
        lua_pushnil(L);
        lua_rawset(L, -4);
    }
}
static void rg__seal_from(lua_State *L, lua_Integer first);

rg_sandbox *rg_sandbox_of(lua_State *L) { return *(rg_sandbox **)lua_getextraspace(L); }
lua_State *rg_sandbox_state(rg_sandbox *sb) { return sb->L; }
const char *rg_sandbox_clinic(const rg_sandbox *sb) { return sb->clinic; }

static void *rg__pool_get(rg__pool *pl, size_t n)
{
    size_t c = (n - 1) / RG_POOL_STEP, size = (c + 1) * RG_POOL_STEP;
    void *p = pl->free[c];
    if (p) {
        memcpy(&pl->free[c], p, sizeof p);
        return p;
    }
    if ((size_t)(pl->end - pl->cur) < size) {
        char *chunk = malloc(RG_POOL_CHUNK);
        if (!chunk)
            return NULL;
        memcpy(chunk, &pl->chunks, sizeof pl->chunks);
        pl->chunks = chunk;
        pl->cur = chunk + RG_POOL_STEP; /* the link, keeping blocks aligned */
        pl->end = chunk + RG_POOL_CHUNK;
    }
    p = pl->cur;
    pl->cur += size;
    return p;
}

static void rg__pool_put(rg__pool *pl, void *p, size_t n)
{
    size_t c = (n - 1) / RG_POOL_STEP;
    memcpy(p, &pl->free[c], sizeof p);
    pl->free[c] = p;
}

static void rg__pool_free(rg__pool *pl)
{
    while (pl->chunks) {
        void *next;
        memcpy(&next, pl->chunks, sizeof next);
        free(pl->chunks);
        pl->chunks = next;
    }
    memset(pl, 0, sizeof *pl);
}

/* Blocks of up to RG_POOL_MAX bytes come from the pool, larger ones from
 * realloc; Lua gives the old size of every block it frees or resizes. */
static void *rg__realloc(rg__pool *pl, void *ptr, size_t old, size_t nsize)
{
    if (old > RG_POOL_MAX && nsize > RG_POOL_MAX)
        return realloc(ptr, nsize);
    if (ptr && old <= RG_POOL_MAX && nsize <= RG_POOL_MAX &&
        (old - 1) / RG_POOL_STEP == (nsize - 1) / RG_POOL_STEP)
        return ptr; /* the same class */
    void *p = nsize <= RG_POOL_MAX ? rg__pool_get(pl, nsize) : malloc(nsize);
    if (!p || !ptr)
        return p;
    memcpy(p, ptr, old < nsize ? old : nsize);
    if (old <= RG_POOL_MAX)
        rg__pool_put(pl, ptr, old);
    else
        free(ptr);
    return p;
}

static void *rg__alloc(void *ud, void *ptr, size_t osize, size_t nsize)
{
    rg_sandbox *sb = ud;
    size_t old = ptr ? osize : 0;
    if (nsize == 0) {
        if (ptr && old <= RG_POOL_MAX)
            rg__pool_put(&sb->pool, ptr, old);
        else
            free(ptr);
        sb->mem -= old;
        return NULL;
    }
    if (sb->enforce_mem && nsize > old) {
        /* A new string (osize is then the object's type) longer than the
         * limit per string: comparing, hashing or copying one must stay
         * far within the deadline, since no hook runs inside those. */
        if (!ptr && osize == LUA_TSTRING && nsize > RG_MAX_STRING + 64) {
            sb->str_hit = sb->mem_hit = 1;
            return NULL;
        }
        size_t cap = sb->lim.max_memory + (sb->in_msgh ? RG_MSGH_HEADROOM : 0);
        if (sb->mem - old + nsize > cap) {
            sb->mem_hit = 1;
            return NULL;
        }
    }
    void *p = rg__realloc(&sb->pool, ptr, old, nsize);
    if (!p) {
        sb->oom = 1;
        return NULL;
    }
    sb->mem = sb->mem - old + nsize;
    if (sb->mem > sb->peak)
        sb->peak = sb->mem;
    return p;
}

/* Which limit has fired, if any; remembers the first reason. */
static const char *rg__expired(rg_sandbox *sb)
{
    if (sb->expired)
        return sb->why;
    if (sb->ticks > sb->lim.max_instructions)
        snprintf(sb->why, sizeof sb->why,
                 "instruction budget of %lld per evaluation exceeded (endless loop?)",
                 (long long)sb->lim.max_instructions);
    else if (rg_monotonic_ms() > sb->deadline && sb->cap && sb->deadline == sb->cap)
        snprintf(sb->why, sizeof sb->why, "deadline of %d ms for %s exceeded", sb->cap_ms,
                 sb->cap_what);
    else if (rg_monotonic_ms() > sb->deadline)
        snprintf(sb->why, sizeof sb->why, "deadline of %d ms per evaluation exceeded",
                 sb->lim.deadline_ms);
    else
        return NULL;
    sb->expired = 1;
    sb->limit_hits++;
    return sb->why;
}

static int rg__guard_expired(void *ud, const char **msg)
{
    const char *why = rg__expired(ud);
    *msg = why;
    return why != NULL;
}

/* ---- the watchdog --------------------------------------------------------
 *
 * No hook is set while an evaluation starts: most end within microseconds and
 * pay nothing for the limits. One thread for the process looks at every
 * sandbox each RG_WATCH_MS; an evaluation it finds running at two looks in a
 * row (so after one to two periods) is sent a signal, and the handler, on
 * the evaluating thread itself, sets the count and call hook on the Lua
 * thread running there (lua_sethook is meant to be called from a signal
 * handler: lua.c stops a chunk on SIGINT the same way). From then on the
 * hook enforces the instruction budget and the deadline as before. So the
 * instruction budget counts from the moment the hook is set, and the first
 * period or two of an evaluation are bounded by the clock alone.
 *
 * Coroutines: a Lua thread created before the hook was set has none, so
 * coroutine.resume, wrap and close are wrapped to keep `running` current and
 * to pass the hook on to the thread they enter and back to the one they
 * return to. */
static pthread_mutex_t rg__watch_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t rg__watch_cv = PTHREAD_COND_INITIALIZER;
static rg_sandbox *rg__watch_list;        /* every sandbox, under rg__watch_mu */
static int rg__watch_started;             /* under rg__watch_mu */
static _Atomic int rg__watch_sleeping = 1; /* 1: the thread waits (or is not started) */
#define RG_WATCH_SIGNAL SIGURG            /* ignored by default: a stray one is harmless */
static _Thread_local rg_sandbox *volatile rg__watch_self; /* the sandbox evaluating here */
static _Thread_local int rg__watch_unblocked;

static void rg__hook(lua_State *L, lua_Debug *ar);

/* Sets the hook on L (the Lua thread running on this OS thread). */
static void rg__arm(rg_sandbox *sb, lua_State *L, int count)
{
    atomic_store_explicit(&sb->armed, 1, memory_order_relaxed);
    lua_sethook(L, rg__hook, RG_HOOK_MASK, count);
}

static void rg__watch_signal(int sig)
{
    (void)sig;
    int saved = errno;
    rg_sandbox *sb = rg__watch_self;
    if (sb) {
        uint64_t r = atomic_load(&sb->run);
        if ((r & 1) && r == atomic_load(&sb->watch_target) &&
            !atomic_load_explicit(&sb->armed, memory_order_relaxed))
            rg__arm(sb, sb->running, RG_HOOK_EVERY);
    }
    errno = saved;
}

static void *rg__watch_main(void *arg)
{
    (void)arg;
    int idle = 0;
    pthread_mutex_lock(&rg__watch_mu);
    for (;;) {
        if (idle >= RG_WATCH_IDLE) {
            /* nothing ran for a while: sleep until rg_sandbox_enter wakes us.
             * enter stores run, then reads rg__watch_sleeping; this stores
             * rg__watch_sleeping, then reads run: one of them sees the other. */
            atomic_store(&rg__watch_sleeping, 1);
            int running = 0;
            for (rg_sandbox *sb = rg__watch_list; sb; sb = sb->watch_next)
                running |= (int)(atomic_load(&sb->run) & 1);
            if (!running)
                pthread_cond_wait(&rg__watch_cv, &rg__watch_mu);
            atomic_store(&rg__watch_sleeping, 0);
            idle = 0;
            continue;
        }
        pthread_mutex_unlock(&rg__watch_mu);
        struct timespec ts = {0, RG_WATCH_MS * 1000000L};
        nanosleep(&ts, NULL);
        pthread_mutex_lock(&rg__watch_mu);
        int busy = 0;
        for (rg_sandbox *sb = rg__watch_list; sb; sb = sb->watch_next) {
            uint64_t r = atomic_load(&sb->run);
            busy |= r != sb->watch_seen || (r & 1);
            if ((r & 1) && r == sb->watch_seen &&
                !atomic_load_explicit(&sb->armed, memory_order_relaxed) &&
                atomic_load(&sb->watch_target) != r) {
                /* target first, then run again: rg_sandbox_leave stores run,
                 * then reads the target, and waits for this lock when it
                 * matches, so the thread cannot be gone when it is signalled */
                atomic_store(&sb->watch_target, r);
                if (atomic_load(&sb->run) == r)
                    pthread_kill(sb->thread, RG_WATCH_SIGNAL);
            }
            sb->watch_seen = r;
        }
        idle = busy ? 0 : idle + 1;
    }
    return NULL;
}

/* In a child after fork the thread is gone: the next evaluation starts one. */
static void rg__watch_atfork_child(void)
{
    pthread_mutex_init(&rg__watch_mu, NULL);
    pthread_cond_init(&rg__watch_cv, NULL);
    rg__watch_started = 0;
    atomic_store(&rg__watch_sleeping, 1);
}

static void rg__watch_install(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = rg__watch_signal;
    sa.sa_flags = SA_RESTART;
    sigemptyset(&sa.sa_mask);
    sigaction(RG_WATCH_SIGNAL, &sa, NULL);
    pthread_atfork(NULL, NULL, rg__watch_atfork_child);
}

/* Wakes the watchdog, starting it the first time. */
static void rg__watch_wake(void)
{
    pthread_mutex_lock(&rg__watch_mu);
    if (!rg__watch_started) {
        static pthread_once_t once = PTHREAD_ONCE_INIT;
        pthread_once(&once, rg__watch_install);
        pthread_attr_t a;
        pthread_t t;
        pthread_attr_init(&a);
        pthread_attr_setdetachstate(&a, PTHREAD_CREATE_DETACHED);
        /* the watchdog takes no signal of its own */
        sigset_t all, old;
        sigfillset(&all);
        pthread_sigmask(SIG_SETMASK, &all, &old);
        if (pthread_create(&t, &a, rg__watch_main, NULL) == 0)
            rg__watch_started = 1;
        pthread_sigmask(SIG_SETMASK, &old, NULL);
        pthread_attr_destroy(&a);
        if (!rg__watch_started) { /* no thread: the hook from the start, as before */
            pthread_mutex_unlock(&rg__watch_mu);
            return;
        }
    }
    atomic_store(&rg__watch_sleeping, 0);
    pthread_cond_signal(&rg__watch_cv);
    pthread_mutex_unlock(&rg__watch_mu);
}

static void rg__watch_add(rg_sandbox *sb)
{
    pthread_mutex_lock(&rg__watch_mu);
    sb->watch_next = rg__watch_list;
    if (rg__watch_list)
        rg__watch_list->watch_prev = sb;
    rg__watch_list = sb;
    pthread_mutex_unlock(&rg__watch_mu);
}

static void rg__watch_remove(rg_sandbox *sb)
{
    pthread_mutex_lock(&rg__watch_mu);
    if (sb->watch_prev)
        sb->watch_prev->watch_next = sb->watch_next;
    else if (rg__watch_list == sb)
        rg__watch_list = sb->watch_next;
    if (sb->watch_next)
        sb->watch_next->watch_prev = sb->watch_prev;
    sb->watch_next = sb->watch_prev = NULL;
    pthread_mutex_unlock(&rg__watch_mu);
}

/* The thread now running Lua code of sb changes to to: it gets the hook when
 * the evaluation has it, and none when not (a coroutine hooked in an earlier
 * evaluation). Returns the thread that ran before. */
static lua_State *rg__switch(rg_sandbox *sb, lua_State *to)
{
    lua_State *from = sb->running;
    sb->running = to; /* first: a signal from now on hooks `to` */
    atomic_signal_fence(memory_order_seq_cst);
    if (atomic_load_explicit(&sb->armed, memory_order_relaxed) && sb->active)
        lua_sethook(to, rg__hook, RG_HOOK_MASK, sb->expired ? 1 : RG_HOOK_EVERY);
    else if (lua_gethook(to))
        lua_sethook(to, NULL, 0, 0);
    return from;
}

/* [-(n), +r, e] coroutine.resume, close and the function wrap returns: the
 * original (upvalue 1) called with the thread it enters made `running`. */
static int rg__co_call(lua_State *L, lua_State *co)
{
    rg_sandbox *sb = rg_sandbox_of(L);
    int n = lua_gettop(L);
    lua_pushvalue(L, lua_upvalueindex(1));
    lua_insert(L, 1);
    lua_State *from = co ? rg__switch(sb, co) : sb->running;
    int st = lua_pcall(L, n, LUA_MULTRET, 0);
    rg__switch(sb, from);
    if (st != LUA_OK)
        return lua_error(L);
    return lua_gettop(L);
}
static int rg__co_resume(lua_State *L) { return rg__co_call(L, lua_tothread(L, 1)); }
static int rg__co_close(lua_State *L) { return rg__co_call(L, lua_tothread(L, 1)); }
static int rg__co_wrapped(lua_State *L)
{
    return rg__co_call(L, lua_tothread(L, lua_upvalueindex(2)));
}
/* [-1, +1, e] coroutine.wrap: the original's function, with its thread
 * (the original's upvalue) for rg__co_wrapped. */
static int rg__co_wrap(lua_State *L)
{
    lua_pushvalue(L, lua_upvalueindex(1));
    lua_insert(L, 1);
    lua_call(L, lua_gettop(L) - 1, 1);
    if (!lua_getupvalue(L, -1, 1) || !lua_isthread(L, -1))
        return luaL_error(L, "coroutine.wrap: unexpected function");
    lua_pushcclosure(L, rg__co_wrapped, 2);
    return 1;
}

/* The count hook. Once a limit fires it re-arms itself to run at every
 * instruction, so an error caught by the protocol's own pcall is raised again
 * at the next instruction, until control is back in rg_pcall. */
static void rg__hook(lua_State *L, lua_Debug *ar)
{
    rg_sandbox *sb = rg_sandbox_of(L);
    if (!sb->active) /* the runtime's own calls between evaluations */
        return;
    if (ar->event == LUA_HOOKCALL) {
        /* Calls are watched too: a library loop inside C (table.move,
         * table.concat) driven by C-function metamethods runs no Lua
         * instruction, but every iteration is a call. Check the clock now
         * and then, not at every call. */
        if ((++sb->calls & 255) != 0 && !sb->expired)
            return;
    } else {
        sb->ticks += RG_HOOK_EVERY;
    }
    const char *why = rg__expired(sb);
    if (why) {
        if (ar->event == LUA_HOOKCALL) { /* never inside the error handler itself */
            lua_getinfo(L, "f", ar);
            lua_CFunction f = lua_tocfunction(L, -1);
            lua_pop(L, 1);
            if (f == rg_sandbox_msgh)
                return;
        }
        rg__arm(sb, L, 1);
        luaL_error(L, "%s", why);
    }
}

/* [-0, +0, e] Fires a limit from inside a C function: like the hook, it
 * keeps raising at every instruction until control is back in rg_pcall, so a
 * protocol's pcall cannot swallow it. */
static int rg__limit_error(lua_State *L, rg_sandbox *sb, const char *fmt, ...)
{
    if (!sb->expired) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(sb->why, sizeof sb->why, fmt, ap);
        va_end(ap);
        sb->expired = 1;
        sb->limit_hits++;
    }
    if (sb->active)
        rg__arm(sb, L, 1);
    luaL_where(L, 1);
    lua_pushstring(L, sb->why);
    lua_concat(L, 2);
    return lua_error(L);
}

void rg_sandbox_enter(rg_sandbox *sb)
{
    sb->active = 1;
    sb->ticks = 0;
    sb->expired = 0;
    sb->mem_hit = 0;
    sb->str_hit = 0;
    sb->print_lines = 0;
    sb->print_bytes = 0;
    sb->why[0] = '\0';
    sb->deadline = rg_monotonic_ms() + sb->lim.deadline_ms;
    sb->cap = 0;
    /* no hook: the watchdog sets it if this runs long (see above) */
    atomic_store_explicit(&sb->armed, 0, memory_order_relaxed);
    lua_sethook(sb->L, NULL, 0, 0);
    sb->running = sb->L;
    sb->thread = pthread_self();
    if (!rg__watch_unblocked) {
        sigset_t set;
        sigemptyset(&set);
        sigaddset(&set, RG_WATCH_SIGNAL);
        pthread_sigmask(SIG_UNBLOCK, &set, NULL);
        rg__watch_unblocked = 1;
    }
    sb->watch_outer = rg__watch_self;
    rg__watch_self = sb;
    atomic_store(&sb->run, atomic_load_explicit(&sb->run, memory_order_relaxed) + 1);
    if (atomic_load(&rg__watch_sleeping)) {
        rg__watch_wake();
        if (!rg__watch_started) /* no watchdog thread: hook from the start */
            rg__arm(sb, sb->L, RG_HOOK_EVERY);
    }
}

void rg_sandbox_enter_by(rg_sandbox *sb, int64_t by, int total_ms, const char *what)
{
    rg_sandbox_enter(sb);
    if (by && by < sb->deadline) {
        sb->deadline = sb->cap = by;
        sb->cap_ms = total_ms;
        sb->cap_what = what;
    }
}

void rg_sandbox_leave(rg_sandbox *sb)
{
    lua_State *L = sb->L;
    int top = lua_gettop(L);
    lua_rawgetp(L, LUA_REGISTRYINDEX, &rg__k_envs);
    lua_Integer n = luaL_len(L, -1);
    for (lua_Integer i = 1; i <= n; i++) {
        lua_rawgeti(L, -1, i);
        lua_rawgeti(L, -1, 1); /* E */
        rg__clear(L);
        lua_pop(L, 2);
    }
    lua_settop(L, top);
    /* Past any limit: stop raising. Code outside an evaluation never runs. */
    uint64_t r = atomic_load_explicit(&sb->run, memory_order_relaxed);
    atomic_store(&sb->run, r + 1);
    if (atomic_load(&sb->watch_target) == r) { /* the watchdog may be signalling us */
        pthread_mutex_lock(&rg__watch_mu);
        pthread_mutex_unlock(&rg__watch_mu);
    }
    rg__watch_self = sb->watch_outer;
    sb->active = 0;
    sb->expired = 0;
    sb->ticks = 0;
    atomic_store_explicit(&sb->armed, 0, memory_order_relaxed);
    lua_sethook(L, NULL, 0, 0);
}

int rg_sandbox_limit_fired(const rg_sandbox *sb) { return sb->expired || sb->mem_hit; }

void rg_sandbox_errmem(rg_sandbox *sb)
{
    if (!sb->mem_hit)
        sb->oom = 1;
}

/* [-0, +0] RG_HOST_OOM: a binding's own allocation failed. */
static int rg__host_oom(lua_State *L)
{
    rg_sandbox_errmem(rg_sandbox_of(L));
    return 0;
}

/* [-1, +1] Message handler: the error as text, plus where it came from in
 * protocol files (Lua frames only), innermost first. */
int rg_sandbox_msgh(lua_State *L)
{
    rg_sandbox *sb = rg_sandbox_of(L);
    sb->in_msgh = 1;
    luaL_Buffer b;
    const char *msg = lua_tostring(L, 1);
    if (!msg) {
        if (luaL_callmeta(L, 1, "__tostring") && lua_type(L, -1) == LUA_TSTRING)
            msg = lua_tostring(L, -1);
        else
            msg = lua_pushfstring(L, "(error object is a %s value)", luaL_typename(L, 1));
    }
    luaL_buffinit(L, &b);
    luaL_addstring(&b, msg);
    lua_Debug ar;
    int frames = 0;
    for (int level = 1; lua_getstack(L, level, &ar) && frames < 6; level++) {
        if (!lua_getinfo(L, "Sln", &ar) || ar.currentline <= 0 || ar.source[0] != '@')
            continue;
        char line[256];
        snprintf(line, sizeof line, "\n    at %s:%d%s%s", ar.short_src, ar.currentline,
                 ar.name ? " in " : "", ar.name ? ar.name : "");
        luaL_addstring(&b, line);
        frames++;
    }
    luaL_pushresult(&b);
    sb->in_msgh = 0;
    return 1;
}

int rg_pcall(rg_sandbox *sb, int nargs, int nres, char *err, size_t errlen)
{
    lua_State *L = sb->L;
    int base = lua_gettop(L) - nargs;
    lua_pushcfunction(L, rg_sandbox_msgh);
    lua_insert(L, base);
    sb->oom = 0;
    int status = lua_pcall(L, nargs, nres, base);
    sb->in_msgh = 0;
    if (status == LUA_ERRMEM)
        rg_sandbox_errmem(sb);
    if (sb->oom) { /* even if the call returned: a pcall inside may have hidden it */
        lua_settop(L, base - 1);
        return rg_fail(err, errlen, RG_ENOMEM, "out of memory");
    }
    /* A call that returned well past the deadline spent it inside one C
     * call no hook can interrupt (a table resize over colliding keys): its
     * result is not used, and it counts as a limit hit (so a protocol that
     * does it again is quarantined). */
    int64_t late = status == LUA_OK && sb->active && !sb->expired
                       ? rg_monotonic_ms() - sb->deadline : 0;
    if (late > sb->lim.deadline_ms / 10) {
        int capped = sb->cap && sb->deadline == sb->cap;
        snprintf(sb->why, sizeof sb->why, "deadline of %d ms %s%s exceeded: one call into the "
                 "Lua core ran %lld ms past it (it cannot be interrupted; what it returned is "
                 "not used)", capped ? sb->cap_ms : sb->lim.deadline_ms,
                 capped ? "for " : "per evaluation", capped ? sb->cap_what : "",
                 (long long)late);
        sb->expired = 1;
        sb->limit_hits++;
        lua_settop(L, base - 1);
        return rg_fail(err, errlen, RG_ELIMIT, "%s", sb->why);
    }
    if (status == LUA_OK) {
        lua_remove(L, base);
        return RG_OK;
    }
    int limit = sb->expired || sb->mem_hit;
    if (sb->expired)
        rg_fail(err, errlen, RG_ELIMIT, "%s", lua_tostring(L, -1) ? lua_tostring(L, -1) : sb->why);
    else if (sb->str_hit && (status == LUA_ERRMEM || status == LUA_ERRERR ||
                             (lua_tostring(L, -1) && strstr(lua_tostring(L, -1), "not enough memory"))))
        rg_fail(err, errlen, RG_ELIMIT, "memory limit of %u bytes per string exceeded (a "
                "longer string could not be compared or copied within the deadline)%s%s",
                (unsigned)RG_MAX_STRING, status == LUA_ERRRUN && lua_tostring(L, -1) ? ": " : "",
                status == LUA_ERRRUN && lua_tostring(L, -1) ? lua_tostring(L, -1) : "");
    else if (status == LUA_ERRMEM || (status == LUA_ERRERR && sb->mem_hit))
        rg_fail(err, errlen, RG_ELIMIT, "memory limit of %zu bytes exceeded",
                sb->lim.max_memory);
    else if (sb->mem_hit && lua_tostring(L, -1) && strstr(lua_tostring(L, -1), "not enough memory"))
        rg_fail(err, errlen, RG_ELIMIT, "memory limit of %zu bytes exceeded: %s",
                sb->lim.max_memory, lua_tostring(L, -1));
    else {
        limit = 0;
        rg_fail(err, errlen, RG_EPROTOCOL, "%s",
                lua_tostring(L, -1) ? lua_tostring(L, -1) : "error in error handling");
    }
    if (limit && !sb->expired)
        sb->limit_hits++;
    lua_settop(L, base - 1);
    return limit ? RG_ELIMIT : RG_EPROTOCOL;
}

/* ---- read-only proxies ---------------------------------------------------- */

static int rg__ro_newindex(lua_State *L)
{
    return luaL_error(L, "%s is read-only in protocols (cannot set field '%s')",
                      lua_tostring(L, lua_upvalueindex(1)),
                      lua_type(L, 2) == LUA_TSTRING ? lua_tostring(L, 2) : "?");
}

static int rg__ro_next(lua_State *L)
{
    lua_settop(L, 2);
    if (lua_next(L, lua_upvalueindex(1)))
        return 2;
    lua_pushnil(L);
    return 1;
}

static int rg__ro_pairs(lua_State *L)
{
    lua_pushvalue(L, lua_upvalueindex(1)); /* the iterator closure */
    lua_pushvalue(L, 1);
    lua_pushnil(L);
    return 3;
}

static int rg__ro_len(lua_State *L)
{
    lua_pushinteger(L, (lua_Integer)lua_rawlen(L, lua_upvalueindex(1)));
    return 1;
}

static void rg__freeze_at(lua_State *L, const char *name, int depth)
{
    luaL_checkstack(L, 8, "freezing a module");
    int t = lua_gettop(L);
    lua_rawgetp(L, LUA_REGISTRYINDEX, &rg__k_frozen);
    lua_pushvalue(L, t);
    if (lua_rawget(L, -2) == LUA_TTABLE) { /* already frozen: reuse the proxy */
        lua_replace(L, t);
        lua_pop(L, 1);
        return;
    }
    lua_pop(L, 1);
    if (depth < 16) { /* freeze nested tables in place first */
        lua_pushnil(L);
        while (lua_next(L, t)) {
            if (lua_type(L, -1) == LUA_TTABLE) {
                rg__freeze_at(L, name, depth + 1);
                lua_pushvalue(L, -2);
                lua_insert(L, -2);
                lua_rawset(L, t);
            } else {
                lua_pop(L, 1);
            }
        }
    }
    lua_newtable(L); /* proxy */
    lua_createtable(L, 0, 6);
    lua_pushvalue(L, t);
    lua_setfield(L, -2, "__index");
    lua_pushstring(L, name);
    lua_pushcclosure(L, rg__ro_newindex, 1);
    lua_setfield(L, -2, "__newindex");
    lua_pushvalue(L, t);
    lua_pushcclosure(L, rg__ro_next, 1);
    lua_pushcclosure(L, rg__ro_pairs, 1);
    lua_setfield(L, -2, "__pairs");
    lua_pushvalue(L, t);
    lua_pushcclosure(L, rg__ro_len, 1);
    lua_setfield(L, -2, "__len");
    lua_pushboolean(L, 0);
    lua_setfield(L, -2, "__metatable");
    lua_setmetatable(L, -2);
    /* remember table -> proxy and proxy -> proxy */
    lua_pushvalue(L, t);
    lua_pushvalue(L, -2);
    lua_rawset(L, -4);
    lua_pushvalue(L, -1);
    lua_pushvalue(L, -2);
    lua_rawset(L, -4);
    lua_replace(L, t);
    lua_settop(L, t);
}

void rg_sandbox_freeze(lua_State *L, const char *name)
{
    rg__freeze_at(L, name, 0);
}

/* [-0, +1, e] __index of the regimen module's proxy (upvalue 1: the module):
 * R.alrt raises at the author's line with the name meant, where a plain
 * proxy would give nil and "attempt to call a nil value (field 'alrt')". */
static int rg__regimen_index(lua_State *L)
{
    lua_settop(L, 2);
    lua_pushvalue(L, 2);
    if (lua_rawget(L, lua_upvalueindex(1)) != LUA_TNIL || lua_type(L, 2) != LUA_TSTRING)
        return 1;
    const char *names[64];
    size_t n = 0;
    for (lua_pushnil(L); n < 64 && lua_next(L, lua_upvalueindex(1)); lua_pop(L, 1))
        if (lua_type(L, -2) == LUA_TSTRING)
            names[n++] = lua_tostring(L, -2); /* kept alive by the module */
    const char *near = rg_suggest(lua_tostring(L, 2), names, n);
    luaL_where(L, 2);
    return luaL_error(L, "%sthe regimen module has no '%s'%s%s%s (see docs/protocols.md, "
                         "\"Reference: the regimen module\")", lua_tostring(L, -1),
                      lua_tostring(L, 2), near ? " (did you mean R." : "", near ? near : "",
                      near ? "?)" : "");
}

/* ---- the globals protocols see -------------------------------------------- */

static const char *const rg__forbidden[] = {
    "io", "os", "debug", "package", "dofile", "loadfile", "collectgarbage",
    "rawset", "_G", "loadstring", "module", "setfenv", "getfenv", NULL,
};

/* __index of G: reading an unknown global is an error, because for a
 * protocol author it is almost always a typo. */
static int rg__strict(lua_State *L)
{
    const char *k = lua_tostring(L, 2);
    if (!k)
        return luaL_error(L, "unknown global variable");
    for (int i = 0; rg__forbidden[i]; i++)
        if (!strcmp(k, rg__forbidden[i]))
            return luaL_error(L, "'%s' is not available to protocols (they run in a sandbox "
                                 "without file, system or debug access)", k);
    return luaL_error(L, "unknown global '%s' (a typo? declare it with 'local')", k);
}

/* Hands the parser a chunk in pieces of RG_LOAD_PIECE bytes and ends it
 * early (as if the text stopped there) once a limit has fired: lua_load has
 * no hook of its own, and some parses (labels, gotos) are quadratic. */
typedef struct rg__reader {
    rg_sandbox *sb;
    const char *s;
    size_t left;
    int stopped;
} rg__reader;

static const char *rg__read_piece(lua_State *L, void *ud, size_t *size)
{
    (void)L;
    rg__reader *r = ud;
    if (r->left == 0 || (r->sb->active && rg__expired(r->sb))) {
        r->stopped = r->left > 0;
        *size = 0;
        return NULL;
    }
    *size = r->left < RG_LOAD_PIECE ? r->left : RG_LOAD_PIECE;
    const char *p = r->s;
    r->s += *size;
    r->left -= *size;
    return p;
}

/* load(chunk [, name [, mode [, env]]]): text only, into the sandbox. */
static int rg__load(lua_State *L)
{
    size_t len;
    const char *s = luaL_checklstring(L, 1, &len);
    const char *name = luaL_optstring(L, 2, "=(load)");
    const char *mode = luaL_optstring(L, 3, "t");
    if (strcmp(mode, "t") != 0) {
        luaL_pushfail(L);
        lua_pushstring(L, "only text chunks can be loaded in protocols (mode must be \"t\")");
        return 2;
    }
    rg_sandbox *sb = rg_sandbox_of(L);
    rg__reader rd = {sb, s, len, 0};
    int status = lua_load(L, rg__read_piece, &rd, name, "t");
    if (rd.stopped) /* the parse was cut short by the deadline */
        return rg__limit_error(L, sb, "%s", sb->why);
    if (status != LUA_OK) {
        luaL_pushfail(L);
        lua_insert(L, -2);
        return 2;
    }
    if (!lua_isnoneornil(L, 4)) {
        lua_pushvalue(L, 4);
    } else { /* a throw-away environment over the sandbox globals */
        lua_newtable(L);
        lua_createtable(L, 0, 2);
        lua_rawgetp(L, LUA_REGISTRYINDEX, &rg__k_globals);
        lua_setfield(L, -2, "__index");
        lua_setmetatable(L, -2);
    }
    if (!lua_setupvalue(L, -2, 1))
        lua_pop(L, 1);
    return 1;
}

/* setmetatable without __gc: finalizers run with hooks off, so no limit
 * could stop one that loops. */
static int rg__setmetatable(lua_State *L)
{
    luaL_checktype(L, 1, LUA_TTABLE);
    if (lua_type(L, 2) == LUA_TTABLE) {
        if (lua_getfield(L, 2, "__gc") != LUA_TNIL)
            return luaL_error(L, "__gc metamethods are not available to protocols");
        lua_pop(L, 1);
    } else if (!lua_isnil(L, 2)) {
        return luaL_typeerror(L, 2, "nil or table");
    }
    if (luaL_getmetafield(L, 1, "__metatable") != LUA_TNIL)
        return luaL_error(L, "cannot change a protected metatable");
    lua_settop(L, 2);
    lua_setmetatable(L, 1);
    return 1;
}

/* [-n, +0, e] print goes to the service log, tagged with the clinic: one
 * line per call, cut at RG_PRINT_LINE_MAX bytes, written with one write, and
 * at most RG_PRINT_MAX_LINES lines or RG_PRINT_MAX_BYTES bytes per evaluation
 * (a limit: a flood stops the evaluation, as a loop would). */
static int rg__print(lua_State *L)
{
    rg_sandbox *sb = rg_sandbox_of(L);
    int n = lua_gettop(L);
    if (sb->print_lines >= RG_PRINT_MAX_LINES || sb->print_bytes >= RG_PRINT_MAX_BYTES)
        return rg__limit_error(L, sb, "print limit of %d lines or %d bytes per evaluation "
                               "exceeded", RG_PRINT_MAX_LINES, RG_PRINT_MAX_BYTES);
    char line[RG_PRINT_LINE_MAX * 2 + 1024];
    luaL_where(L, 1);
    /* one log line per print: a protocol cannot forge lines of its own */
    int used = snprintf(line, sizeof line, "[%s] %sprint: ", sb->clinic, lua_tostring(L, -1));
    lua_pop(L, 1);
    if (used < 0 || used > 900)
        used = 900;
    size_t kept = 0, total = 0;
    for (int i = 1; i <= n; i++) {
        size_t len;
        const char *c = luaL_tolstring(L, i, &len);
        if (i > 1) {
            total++;
            if (kept < RG_PRINT_LINE_MAX)
                line[used++] = '\t', kept++;
        }
        for (size_t k = 0; k < len && kept < RG_PRINT_LINE_MAX; k++, kept++) {
            if (c[k] == '\n') {
                line[used++] = '\\';
                line[used++] = 'n';
            } else {
                line[used++] = (unsigned char)c[k] < 0x20 && c[k] != '\t' ? '?' : c[k];
            }
        }
        total += len;
        lua_pop(L, 1);
    }
    if (total > kept)
        used += snprintf(line + used, sizeof line - (size_t)used, "... (%zu more bytes not logged)",
                         total - kept);
    line[used++] = '\n';
    fwrite(line, 1, (size_t)used, stderr);
    sb->print_lines++;
    sb->print_bytes += kept;
    return 0;
}

static int rg__valid_module_name(const char *s)
{
    int start = 1;
    for (; *s; s++) {
        if (*s == '.') {
            if (start)
                return 0;
            start = 1;
        } else if ((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') ||
                   (*s >= '0' && *s <= '9') || *s == '_' || *s == '-') {
            start = 0;
        } else {
            return 0;
        }
    }
    return !start;
}

/* require(name): modules come only from the protocol directories, as text,
 * each with its own environment, and are handed out read-only. */
static int rg__require(lua_State *L)
{
    rg_sandbox *sb = rg_sandbox_of(L);
    const char *name = luaL_checkstring(L, 1);
    lua_settop(L, 1);
    lua_rawgetp(L, LUA_REGISTRYINDEX, &rg__k_loaded); /* 2 */
    int t = lua_getfield(L, 2, name);
    if (t == LUA_TBOOLEAN && !lua_toboolean(L, -1))
        return luaL_error(L, "module '%s' requires itself (circular require)", name);
    if (t != LUA_TNIL)
        return 1;
    lua_pop(L, 1);
    if (!rg__valid_module_name(name))
        return luaL_error(L, "module name '%s' is not valid: use names like 'lib.course' "
                             "(modules load only from the protocol directories)", name);
    char file[4096];
    int found = 0;
    for (int i = 0; i < sb->npath && !found; i++) {
        int n = snprintf(file, sizeof file, "%s/%s.lua", sb->path[i], name);
        if (n <= 0 || (size_t)n >= sizeof file)
            continue;
        for (char *p = file + strlen(sb->path[i]) + 1; *p; p++)
            if (*p == '.' && strcmp(p, ".lua") != 0)
                *p = '/';
        found = access(file, R_OK) == 0;
    }
    if (!found) {
        luaL_Buffer b;
        luaL_buffinit(L, &b);
        lua_pushfstring(L, "module '%s' not found in the protocol directories:", name);
        luaL_addvalue(&b);
        for (int i = 0; i < sb->npath; i++) {
            lua_pushfstring(L, " %s", sb->path[i]);
            luaL_addvalue(&b);
        }
        luaL_pushresult(&b);
        return lua_error(L);
    }
    lua_pushboolean(L, 0); /* loading marker */
    lua_setfield(L, 2, name);
    char why[512];
    lua_Integer first_env = rg__nenvs(L) + 1;
    if (rg_sandbox_loadfile(sb, file, why, sizeof why) != RG_OK) {
        lua_pushnil(L);
        lua_setfield(L, 2, name);
        return luaL_error(L, "%s", why);
    }
    lua_pushstring(L, name);
    if (lua_pcall(L, 1, 1, 0) != LUA_OK) {
        lua_pushnil(L);
        lua_setfield(L, 2, name);
        return lua_error(L);
    }
    if (lua_isnil(L, -1)) {
        lua_pop(L, 1);
        lua_pushboolean(L, 1);
    }
    rg__seal_from(L, first_env);
    if (lua_type(L, -1) == LUA_TTABLE) {
        char what[160];
        snprintf(what, sizeof what, "module '%s'", name);
        rg_sandbox_freeze(L, what);
    }
    lua_pushvalue(L, -1);
    lua_setfield(L, 2, name);
    return 1;
}

/* string.rep with an empty result answered at once: the library's own loop
 * would copy zero bytes n times, outside every limit. */
static int rg__rep(lua_State *L)
{
    size_t l, lsep = 0;
    luaL_checklstring(L, 1, &l);
    luaL_checkinteger(L, 2);
    luaL_optlstring(L, 3, "", &lsep);
    if (l == 0 && lsep == 0) {
        lua_pushliteral(L, "");
        return 1;
    }
    lua_Integer n = lua_tointeger(L, 2);
    /* a result over the limit per string is refused before it is built */
    if (n > 0 && (double)l * (double)n + (double)lsep * (double)(n - 1) > (double)RG_MAX_STRING) {
        rg_sandbox *sb = rg_sandbox_of(L);
        sb->str_hit = sb->mem_hit = 1;
        return luaL_error(L, "not enough memory: string.rep would make %f bytes",
                          (lua_Number)((double)l * (double)n + (double)lsep * (double)(n - 1)));
    }
    lua_pushvalue(L, lua_upvalueindex(1));
    lua_insert(L, 1);
    lua_call(L, lua_gettop(L) - 1, 1);
    return 1;
}

/* Elements table.move, insert and remove handle between two checks of the
 * limits: their loops run in C, where no hook fires, and a __len metamethod
 * (or a move of a range) can make them a billion steps long. */
#define RG_TABLE_CHUNK 65536

/* [-0, +0, e] Raises the limit that has fired, if one has (called between
 * pieces of a long loop in C). */
static void rg__check_limits(lua_State *L)
{
    rg_sandbox *sb = rg_sandbox_of(L);
    if (sb->active && rg__expired(sb))
        rg__limit_error(L, sb, "%s", sb->why);
}

/* [-(4|5), +1, e] table.move(a1, f, e, t [, a2]): a long range is moved in
 * pieces of RG_TABLE_CHUNK elements by the library's own function, in the
 * order it would use (backwards when the ranges overlap that way), with the
 * limits checked between pieces. */
static int rg__move(lua_State *L)
{
    lua_Integer f = luaL_checkinteger(L, 2), e = luaL_checkinteger(L, 3);
    lua_Integer t = luaL_checkinteger(L, 4);
    int tt = lua_isnoneornil(L, 5) ? 1 : 5;
    lua_settop(L, 5);
    if (e < f || !(f > 0 || e < LUA_MAXINTEGER + f) || e - f < RG_TABLE_CHUNK ||
        t > LUA_MAXINTEGER - (e - f)) {
        /* short, empty or invalid: the library's own answer (or error) */
        lua_pushvalue(L, lua_upvalueindex(1));
        lua_insert(L, 1);
        lua_call(L, 5, 1);
        return 1;
    }
    int forward = t > e || t <= f || (tt != 1 && !lua_compare(L, 1, tt, LUA_OPEQ));
    lua_Integer n = e - f + 1;
    for (lua_Integer done = 0; done < n;) {
        lua_Integer len = n - done < RG_TABLE_CHUNK ? n - done : RG_TABLE_CHUNK;
        lua_Integer off = forward ? done : n - done - len;
        lua_pushvalue(L, lua_upvalueindex(1));
        lua_pushvalue(L, 1);
        lua_pushinteger(L, f + off);
        lua_pushinteger(L, f + off + len - 1);
        lua_pushinteger(L, t + off);
        lua_pushvalue(L, tt);
        lua_call(L, 5, 1);
        lua_pop(L, 1);
        done += len;
        rg__check_limits(L);
    }
    lua_pushvalue(L, tt);
    return 1;
}

/* [-(2|3), +0, e] table.insert: the shift for table.insert(t, pos, v) runs
 * here, with the limits checked every RG_TABLE_CHUNK elements (the length
 * may come from a __len metamethod). Anything but a table with three
 * arguments goes to the library's function. */
static int rg__insert(lua_State *L)
{
    if (lua_gettop(L) != 3 || !lua_istable(L, 1)) {
        lua_pushvalue(L, lua_upvalueindex(1));
        lua_insert(L, 1);
        lua_call(L, lua_gettop(L) - 1, 0);
        return 0;
    }
    lua_Integer end = luaL_len(L, 1) + 1; /* where a new element would go */
    lua_Integer pos = luaL_checkinteger(L, 2);
    luaL_argcheck(L, (lua_Unsigned)pos - 1u < (lua_Unsigned)end, 2, "position out of bounds");
    for (lua_Integer i = end; i > pos; i--) {
        if (((end - i) & (RG_TABLE_CHUNK - 1)) == RG_TABLE_CHUNK - 1)
            rg__check_limits(L);
        lua_geti(L, 1, i - 1);
        lua_seti(L, 1, i);
    }
    lua_seti(L, 1, pos); /* the value, on top */
    return 0;
}

/* [-(1|2), +1, e] table.remove, with the limits checked during the shift as
 * in rg__insert. */
static int rg__remove(lua_State *L)
{
    if (!lua_istable(L, 1)) {
        lua_pushvalue(L, lua_upvalueindex(1));
        lua_insert(L, 1);
        lua_call(L, lua_gettop(L) - 1, 1);
        return 1;
    }
    lua_Integer size = luaL_len(L, 1);
    lua_Integer pos = luaL_optinteger(L, 2, size);
    if (pos != size) /* a size + 1 position is allowed: removes nothing */
        luaL_argcheck(L, (lua_Unsigned)pos - 1u <= (lua_Unsigned)size, 2,
                      "position out of bounds");
    lua_geti(L, 1, pos); /* the result */
    for (; pos < size; pos++) {
        if ((pos & (RG_TABLE_CHUNK - 1)) == 0)
            rg__check_limits(L);
        lua_geti(L, 1, pos + 1);
        lua_seti(L, 1, pos);
    }
    lua_pushnil(L);
    lua_seti(L, 1, pos);
    return 1;
}

/* [-2, +1, e] The default order of table.sort, as a call the hook sees. */
static int rg__sort_lt(lua_State *L)
{
    lua_pushboolean(L, lua_compare(L, 1, 2, LUA_OPLT));
    return 1;
}

/* [-(1|2), +0, e] table.sort: without a comparator, the library would
 * compare in C with no hook between comparisons; sorting with rg__sort_lt
 * instead lets the hook stop a sort that outlasts the deadline. */
static int rg__sort(lua_State *L)
{
    luaL_checktype(L, 1, LUA_TTABLE);
    if (lua_isnoneornil(L, 2)) {
        lua_settop(L, 1);
        lua_pushcfunction(L, rg__sort_lt);
    }
    lua_settop(L, 2);
    lua_pushvalue(L, lua_upvalueindex(1));
    lua_insert(L, 1);
    lua_call(L, 2, 0);
    return 0;
}

static const luaL_Reg rg__base_allowed[] = {
    {"assert", NULL}, {"error", NULL},    {"ipairs", NULL},   {"next", NULL},
    {"pairs", NULL},  {"pcall", NULL},    {"rawequal", NULL}, {"rawget", NULL},
    {"rawlen", NULL}, {"select", NULL},   {"tonumber", NULL}, {"tostring", NULL},
    {"type", NULL},   {"xpcall", NULL},   {"getmetatable", NULL},
    {"_VERSION", NULL}, {NULL, NULL},
};

static const char *const rg__libs[] = {"string", "table", "math", "utf8", "coroutine", NULL};
/* The only standard libraries the state ever has (as Redis's
 * luaLoadLibraries): io, os, package and debug are never loaded, so no path
 * to them exists even in the registry. The base library is opened for the
 * functions in rg__base_allowed; G is built from these below. */
static const luaL_Reg rg__libs_open[] = {
    {LUA_GNAME, luaopen_base},       {LUA_STRLIBNAME, luaopen_string},
    {LUA_TABLIBNAME, luaopen_table}, {LUA_MATHLIBNAME, luaopen_math},
    {LUA_UTF8LIBNAME, luaopen_utf8}, {LUA_COLIBNAME, luaopen_coroutine},
    {NULL, NULL},
};
static const char *const rg__denied_fields[] = {"string.dump", "math.random", "math.randomseed",
                                                NULL};

/* [-0, +0] Opens the allowed libraries and builds G from them. */
static void rg__build_globals(rg_sandbox *sb)
{
    lua_State *L = sb->L;
    for (const luaL_Reg *r = rg__libs_open; r->name; r++) {
        luaL_requiref(L, r->name, r->func, 1);
        lua_pop(L, 1);
    }
    /* The string library gets the guarded matcher, both for string.find and
     * for ("..."):find(), which go through the same table. */
    lua_getglobal(L, "string");
    rg_pattern_register(L, lua_gettop(L), &sb->guard);
    lua_getfield(L, -1, "rep");
    lua_pushcclosure(L, rg__rep, 1);
    lua_setfield(L, -2, "rep");
    lua_pop(L, 1);
    lua_getglobal(L, "table");
    static const luaL_Reg wrapped[] = {
        {"sort", rg__sort}, {"move", rg__move}, {"insert", rg__insert}, {"remove", rg__remove},
        {NULL, NULL},
    };
    for (const luaL_Reg *r = wrapped; r->name; r++) {
        lua_getfield(L, -1, r->name);
        lua_pushcclosure(L, r->func, 1);
        lua_setfield(L, -2, r->name);
    }
    lua_pop(L, 1);
    lua_getglobal(L, "coroutine"); /* see the watchdog */
    static const luaL_Reg co[] = {
        {"resume", rg__co_resume}, {"close", rg__co_close}, {"wrap", rg__co_wrap}, {NULL, NULL},
    };
    for (const luaL_Reg *r = co; r->name; r++) {
        lua_getfield(L, -1, r->name);
        lua_pushcclosure(L, r->func, 1);
        lua_setfield(L, -2, r->name);
    }
    lua_pop(L, 1);
    for (int i = 0; rg__denied_fields[i]; i++) {
        char lib[32];
        const char *dot = strchr(rg__denied_fields[i], '.');
        snprintf(lib, sizeof lib, "%.*s", (int)(dot - rg__denied_fields[i]), rg__denied_fields[i]);
        lua_getglobal(L, lib);
        lua_pushnil(L);
        lua_setfield(L, -2, dot + 1);
        lua_pop(L, 1);
    }
    /* Lock the string metatable: getmetatable("") gives nothing to change. */
    lua_pushliteral(L, "");
    lua_getmetatable(L, -1);
    lua_pushboolean(L, 0);
    lua_setfield(L, -2, "__metatable");
    lua_pop(L, 2);

    lua_newtable(L); /* G */
    for (const luaL_Reg *r = rg__base_allowed; r->name; r++) {
        lua_getglobal(L, r->name);
        lua_setfield(L, -2, r->name);
    }
    for (int i = 0; rg__libs[i]; i++) {
        lua_getglobal(L, rg__libs[i]);
        rg_sandbox_freeze(L, rg__libs[i]);
        lua_setfield(L, -2, rg__libs[i]);
    }
    lua_pushcfunction(L, rg__load);
    lua_setfield(L, -2, "load");
    lua_pushcfunction(L, rg__setmetatable);
    lua_setfield(L, -2, "setmetatable");
    lua_pushcfunction(L, rg__print);
    lua_setfield(L, -2, "print");
    lua_pushcfunction(L, rg__require);
    lua_setfield(L, -2, "require");
    lua_createtable(L, 0, 3);
    lua_pushcfunction(L, rg__strict);
    lua_setfield(L, -2, "__index");
    lua_pushboolean(L, 0);
    lua_setfield(L, -2, "__metatable");
    lua_setmetatable(L, -2);
    lua_rawsetp(L, LUA_REGISTRYINDEX, &rg__k_globals);

    /* The real globals table is left empty: nothing reaches it. */
    lua_pushglobaltable(L);
    rg__clear(L);
    lua_pop(L, 1);

    /* regimen, the module every protocol uses, is there from the start; it
     * tells the sandbox when its own memory fails (bindings.h). */
    lua_pushcfunction(L, rg__host_oom);
    lua_setfield(L, LUA_REGISTRYINDEX, RG_HOST_OOM);
    lua_rawgetp(L, LUA_REGISTRYINDEX, &rg__k_loaded);
    rg_open_regimen(L);
    rg_sandbox_freeze(L, "module 'regimen'");
    lua_getmetatable(L, -1); /* a name it does not have is a typo: say so */
    lua_getfield(L, -1, "__index");
    lua_pushcclosure(L, rg__regimen_index, 1);
    lua_setfield(L, -2, "__index");
    lua_pop(L, 1);
    lua_setfield(L, -2, "regimen");
    lua_pop(L, 1);
}

int rg_sandbox_new(rg_sandbox **out, const char *clinic, const rg_limits *lim,
                   const char *const *path, int npath, char *err, size_t errlen)
{
    *out = NULL;
    rg_sandbox *sb = calloc(1, sizeof *sb);
    if (!sb)
        return rg_fail(err, errlen, RG_ENOMEM, "out of memory");
    sb->lim = lim ? *lim : RG_LIMITS_DEFAULT;
    sb->clinic = strdup(clinic);
    sb->path = calloc((size_t)(npath > 0 ? npath : 1), sizeof *sb->path);
    sb->real = calloc((size_t)(npath > 0 ? npath : 1), sizeof *sb->real);
    if (!sb->clinic || !sb->path || !sb->real)
        goto nomem;
    for (int i = 0; i < npath; i++) {
        if (!(sb->path[i] = strdup(path[i])))
            goto nomem;
        sb->real[i] = realpath(path[i], NULL); /* NULL: not there (yet) */
        sb->npath++;
    }
    sb->guard.expired = rg__guard_expired;
    sb->guard.ud = sb;
    sb->L = lua_newstate(rg__alloc, sb);
    if (!sb->L)
        goto nomem;
    *(rg_sandbox **)lua_getextraspace(sb->L) = sb;
    lua_State *L = sb->L;
    lua_newtable(L);
    lua_rawsetp(L, LUA_REGISTRYINDEX, &rg__k_envs);
    lua_newtable(L);
    lua_rawsetp(L, LUA_REGISTRYINDEX, &rg__k_loaded);
    lua_newtable(L);
    lua_createtable(L, 0, 1);
    lua_pushliteral(L, "k");
    lua_setfield(L, -2, "__mode");
    lua_setmetatable(L, -2);
    lua_rawsetp(L, LUA_REGISTRYINDEX, &rg__k_frozen);
    rg__build_globals(sb);
    lua_gc(L, LUA_GCCOLLECT);
    /* an evaluation makes many short-lived tables (events, alerts, lists):
     * the generational collector reclaims them young, for less work */
    lua_gc(L, LUA_GCGEN, 0, 0);
    sb->enforce_mem = 1;
    if (sb->mem > sb->lim.max_memory) {
        rg_fail(err, errlen, RG_ELIMIT, "memory limit of %zu bytes is below what the Lua "
                "libraries need (%zu bytes)", sb->lim.max_memory, sb->mem);
        rg_sandbox_free(sb);
        return RG_ELIMIT;
    }
    sb->running = L;
    rg__watch_add(sb);
    *out = sb;
    return RG_OK;
nomem:
    rg_sandbox_free(sb);
    return rg_fail(err, errlen, RG_ENOMEM, "out of memory");
}

void rg_sandbox_free(rg_sandbox *sb)
{
    if (!sb)
        return;
    rg__watch_remove(sb);
    if (sb->L) {
        sb->enforce_mem = 0;
        lua_close(sb->L);
    }
    rg__pool_free(&sb->pool);
    for (int i = 0; i < sb->npath; i++) {
        free(sb->path[i]);
        free(sb->real ? sb->real[i] : NULL);
    }
    free(sb->path);
    free(sb->real);
    free(sb->clinic);
    for (struct rg__source *x = sb->sources, *next; x; x = next) {
        next = x->next;
        free(x->path);
        free(x->text);
        free(x);
    }
    free(sb);
}

const char *rg_sandbox_source(rg_sandbox *sb, const char *path, size_t *len)
{
    for (struct rg__source *x = sb->sources; x; x = x->next)
        if (!strcmp(x->path, path)) {
            *len = x->len;
            return x->text;
        }
    return NULL;
}

/* ---- compiled chunks, shared by the sandboxes of the process -------------
 *
 * Every clinic's sandbox loads its protocol files, most often the same
 * shipped set: ten clinics parsed the same twelve files ten times (1.7% of a
 * 2,000-patient sweep). A file's text, once parsed under the deadline, is
 * kept here with its bytecode (lua_dump, debug information kept: the same
 * chunk name, lines and messages); a later load of the same name and the
 * same bytes takes the bytecode. Only what this process compiled from text
 * is ever loaded as binary: a file holding bytecode is refused as before.
 * Bounded: past RG_CHUNKS_MAX bytes everything kept is dropped. */
#define RG_CHUNKS_MAX (16u << 20)
static pthread_mutex_t rg__chunks_mu = PTHREAD_MUTEX_INITIALIZER;
static struct rg__chunk {
    struct rg__chunk *next;
    char *name, *text, *code;
    size_t tlen, clen;
} *rg__chunks; /* under rg__chunks_mu */
static size_t rg__chunks_bytes;
static unsigned long rg__chunks_hits;

static int rg__chunk_write(lua_State *L, const void *p, size_t n, void *ud)
{
    (void)L;
    return rg_buf_add(ud, p, n) != RG_OK;
}

typedef struct {
    const char *p;
    size_t n;
} rg__whole;

static const char *rg__chunk_read(lua_State *L, void *ud, size_t *size)
{
    (void)L;
    rg__whole *w = ud;
    *size = w->n;
    w->n = 0;
    return *size ? w->p : NULL;
}

/* Loads the kept bytecode of (name, text) onto L: LUA_OK, an error status
 * (with its message pushed, as lua_load), or -1 when none is kept. */
static int rg__chunk_load(lua_State *L, const char *name, const char *text, size_t tlen)
{
    int status = -1;
    pthread_mutex_lock(&rg__chunks_mu);
    for (struct rg__chunk *c = rg__chunks; c; c = c->next)
        if (c->tlen == tlen && !strcmp(c->name, name) && !memcmp(c->text, text, tlen)) {
            rg__whole w = {c->code, c->clen}; /* read under the lock: no drop meanwhile */
            status = lua_load(L, rg__chunk_read, &w, name, "b");
            rg__chunks_hits++;
            break;
        }
    pthread_mutex_unlock(&rg__chunks_mu);
    return status;
}

unsigned long rg_sandbox_chunk_hits(void)
{
    pthread_mutex_lock(&rg__chunks_mu);
    unsigned long n = rg__chunks_hits;
    pthread_mutex_unlock(&rg__chunks_mu);
    return n;
}

/* Keeps the bytecode of the function on top of L (just loaded from text). */
static void rg__chunk_keep(lua_State *L, const char *name, const char *text, size_t tlen)
{
    rg_buf code = {0};
    struct rg__chunk *c = calloc(1, sizeof *c);
    if (!c || lua_dump(L, rg__chunk_write, &code, 0) != 0 || !(c->name = strdup(name)) ||
        !(c->text = malloc(tlen ? tlen : 1))) {
        if (c)
            free(c->name);
        free(c);
        rg_buf_free(&code);
        return; /* best effort: the next load parses again */
    }
    memcpy(c->text, text, tlen);
    c->tlen = tlen;
    c->code = code.p;
    c->clen = code.len;
    pthread_mutex_lock(&rg__chunks_mu);
    if (rg__chunks_bytes + tlen + code.len > RG_CHUNKS_MAX) {
        while (rg__chunks) {
            struct rg__chunk *d = rg__chunks;
            rg__chunks = d->next;
            free(d->name), free(d->text), free(d->code), free(d);
        }
        rg__chunks_bytes = 0;
    }
    c->next = rg__chunks;
    rg__chunks = c;
    rg__chunks_bytes += tlen + code.len;
    pthread_mutex_unlock(&rg__chunks_mu);
}

int rg_sandbox_loadfile(rg_sandbox *sb, const char *path, char *err, size_t errlen)
{
    lua_State *L = sb->L;
    luaL_checkstack(L, 6, "loading a protocol");
    /* Only a regular file, opened without blocking (a FIFO or a device would
     * hold the thread in open or read with no hook to stop it), and read
     * whole before it is parsed in pieces under the deadline. */
    int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
    if (fd < 0)
        return rg_fail(err, errlen, RG_EPROTOCOL, "%s: cannot open: %s", path, strerror(errno));
    struct stat stt;
    if (fstat(fd, &stt) != 0 || !S_ISREG(stt.st_mode)) {
        close(fd);
        return rg_fail(err, errlen, RG_EPROTOCOL, "%s: is not a regular file (protocols and "
                       "modules must be plain files)", path);
    }
    /* and one under the protocol directories, as opened (a symlink out of
     * them, e.g. to another clinic's files, is refused) */
    char link[64], *real = NULL;
    snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
    real = realpath(link, NULL);
    if (!real)
        real = realpath(path, NULL);
    int inside = sb->npath == 0;
    for (int i = 0; real && i < sb->npath && !inside; i++) {
        size_t n = sb->real[i] ? strlen(sb->real[i]) : 0;
        inside = n && !strncmp(real, sb->real[i], n) && (real[n] == '/' || sb->real[i][n - 1] == '/');
    }
    if (!inside) {
        rg_fail(err, errlen, RG_EPROTOCOL, "%s: is outside the protocol directories (it is "
                "%s); protocols and modules must be files under them", path,
                real ? real : "a file that cannot be resolved");
        free(real);
        close(fd);
        return RG_EPROTOCOL;
    }
    free(real);
    if (stt.st_size > (off_t)RG_MAX_CHUNK) {
        close(fd);
        return rg_fail(err, errlen, RG_ELIMIT, "%s: is %lld bytes; a protocol or module file "
                       "may hold at most %u", path, (long long)stt.st_size, (unsigned)RG_MAX_CHUNK);
    }
    char *text = malloc((size_t)stt.st_size + 1);
    size_t got = 0;
    while (text && got < (size_t)stt.st_size) {
        ssize_t r = read(fd, text + got, (size_t)stt.st_size - got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        got += (size_t)r;
    }
    close(fd);
    if (!text)
        return rg_fail(err, errlen, RG_ENOMEM, "out of memory");
    /* as luaL_loadfile: a UTF-8 BOM is skipped, a first line starting with
     * '#' is blanked (its newline kept, so line numbers hold) */
    size_t skip = got >= 3 && !memcmp(text, "\xEF\xBB\xBF", 3) ? 3 : 0;
    if (skip < got && text[skip] == '#')
        while (skip < got && text[skip] != '\n')
            skip++;
    char chunkname[4200];
    snprintf(chunkname, sizeof chunkname, "@%s", path);
    rg__reader rd = {sb, text + skip, got - skip, 0};
    int status = rg__chunk_load(L, chunkname, text + skip, got - skip);
    if (status < 0) {
        status = lua_load(L, rg__read_piece, &rd, chunkname, "t");
        if (status == LUA_OK && !rd.stopped)
            rg__chunk_keep(L, chunkname, text + skip, got - skip);
    }
    struct rg__source *src = status == LUA_OK ? calloc(1, sizeof *src) : NULL;
    if (src && (src->path = strdup(path))) { /* (else: rg_sandbox_source answers NULL) */
        src->text = text;
        src->len = got;
        src->next = sb->sources;
        sb->sources = src;
    } else {
        free(src);
        free(text);
    }
    if (rd.stopped) {
        lua_pop(L, 1);
        return rg_fail(err, errlen, RG_ELIMIT, "%s: %s (while parsing)", path, sb->why);
    }
    if (status != LUA_OK) {
        const char *m = lua_tostring(L, -1);
        if (m && strstr(m, "binary chunk"))
            rg_fail(err, errlen, RG_EPROTOCOL, "%s: is a compiled (bytecode) chunk; protocols "
                    "must be Lua source text", path);
        else
            rg_fail(err, errlen, status == LUA_ERRMEM ? RG_ELIMIT : RG_EPROTOCOL, "%s",
                    m ? m : "cannot load");
        lua_pop(L, 1);
        return status == LUA_ERRMEM ? RG_ELIMIT : RG_EPROTOCOL;
    }
    /* E (per-evaluation scratch) -> B (what the chunk defined) -> G */
    lua_newtable(L);                 /* E */
    lua_newtable(L);                 /* B */
    lua_createtable(L, 0, 2);
    lua_rawgetp(L, LUA_REGISTRYINDEX, &rg__k_globals);
    lua_setfield(L, -2, "__index");
    lua_pushboolean(L, 0);
    lua_setfield(L, -2, "__metatable");
    lua_setmetatable(L, -2);         /* B's metatable */
    lua_createtable(L, 0, 2);
    lua_pushvalue(L, -2);
    lua_setfield(L, -2, "__index");
    lua_pushboolean(L, 0);
    lua_setfield(L, -2, "__metatable");
    lua_setmetatable(L, -3);         /* E's metatable */
    /* remember the pair */
    lua_rawgetp(L, LUA_REGISTRYINDEX, &rg__k_envs);
    lua_createtable(L, 2, 0);
    lua_pushvalue(L, -4);
    lua_rawseti(L, -2, 1);
    lua_pushvalue(L, -3);
    lua_rawseti(L, -2, 2);
    lua_rawseti(L, -2, (lua_Integer)lua_rawlen(L, -2) + 1);
    lua_pop(L, 2);                   /* envs, B */
    lua_setupvalue(L, -2, 1);        /* chunk's _ENV = E */
    return RG_OK;
}

static lua_Integer rg__nenvs(lua_State *L)
{
    lua_rawgetp(L, LUA_REGISTRYINDEX, &rg__k_envs);
    lua_Integer n = (lua_Integer)lua_rawlen(L, -1);
    lua_pop(L, 1);
    return n;
}

/* Moves E into B for environments first..last. */
static void rg__seal_from(lua_State *L, lua_Integer first)
{
    int top = lua_gettop(L);
    luaL_checkstack(L, 8, "sealing environments");
    lua_rawgetp(L, LUA_REGISTRYINDEX, &rg__k_envs);
    lua_Integer n = (lua_Integer)lua_rawlen(L, -1);
    for (lua_Integer i = first; i <= n; i++) {
        lua_rawgeti(L, -1, i);
        lua_rawgeti(L, -1, 1); /* E */
        lua_rawgeti(L, -2, 2); /* B */
        lua_pushnil(L);
        while (lua_next(L, -3)) {
            lua_pushvalue(L, -2);
            lua_insert(L, -2);
            lua_rawset(L, -4);   /* B[k] = v */
            lua_pushvalue(L, -1);
            lua_pushnil(L);
            lua_rawset(L, -5);   /* E[k] = nil */
        }
        lua_pop(L, 3);
    }
    lua_settop(L, top);
}

void rg_sandbox_seal(rg_sandbox *sb) { rg__seal_from(sb->L, 1); }

void rg_sandbox_stats_get(const rg_sandbox *sb, rg_sandbox_stats *st)
{
    st->memory = sb->mem;
    st->peak_memory = sb->peak;
    st->instructions = sb->ticks;
    st->limit_hits = sb->limit_hits;
}
