/*
 * bindings.h - the C side of the `regimen` Lua module that protocols use.
 *
 * regimen.c: durations, time formatting, the protocol and alert constructors
 * (which validate what an author wrote and point at their line).
 * history.c: the patient's history, a userdata over events the engine owns.
 */
#ifndef RG_BINDINGS_H
#define RG_BINDINGS_H

#include "core/calendar.h"
#include "core/rg.h"

#include <lua.h>
#include <stdint.h>

/* [-0, +1] Pushes a new table holding the regimen module's functions. */
int rg_open_regimen(lua_State *L);

/* [-1, +1] Validates the protocol definition on top of the stack (a table as
 * a protocol file returns it) and leaves it there; raises a Lua error naming
 * the offending field otherwise. Run it under rg_pcall. */
int rg_protocol_validate(lua_State *L);

/* [-0, +1, e] The declaration of parameter name, from the value at idx (a
 * bare default, whose kind is guessed, or an R.param { ... } table): a new
 * plain table { default, kind, unit?, min?, max?, choices?, shared?, plan?,
 * description? }. Raises naming the parameter when it is not valid. */
int rg_param_declare(lua_State *L, int idx, const char *name);
/* [-0, +0] Whether the value at v suits the declaration at d (from
 * rg_param_declare). A whole number where a count or duration is meant is
 * made an integer in place; from_plan: v comes from a patient's plan event,
 * where a duration declared with plan = "days" is a number of days (replaced
 * in place by milliseconds). When it does not suit, why says so after the
 * parameter's name ("is a duration: write R.weeks(6) or R.days(42) ..."). */
int rg_param_fits(lua_State *L, int d, int v, int from_plan, char *why, size_t n);

/* The clinic's calendar the time helpers (R.day, R.next_open, ...) use:
 * the one rg_calendar_install left in L's registry, or UTC always open.
 * [-0, +0] never raises. */
const rg_calendar *rg_calendar_of(lua_State *L);
/* [-0, +0, m] Keeps a copy of c in L's registry (a userdata the state
 * owns) and returns it. */
const rg_calendar *rg_calendar_install(lua_State *L, const rg_calendar *c);

/* A binding whose own allocation failed (not the protocol's: decoding
 * stored data) tells the host so, and the evaluation then fails as out of
 * memory rather than as the protocol's error. The host registers how it
 * wants to hear it: a C function at RG_HOST_OOM in the registry (the sandbox
 * sets one); without one this does nothing. [-0, +0] */
#define RG_HOST_OOM "regimen.host_oom"
void rg_host_oom(lua_State *L);

/* [-0, +1, e] The message of the template table at idx ({ "text with
 * {name} and {when:day}", name = ..., when = ... }: docs/protocols.md,
 * "Message templates"), made with the clinic's calendar. Raises, prefixed
 * by who ("rule 'x'", "alert"), on a placeholder without its argument, an
 * argument no placeholder uses, an unknown format, or an argument of the
 * wrong kind for its format. */
void rg_message_format(lua_State *L, int idx, const char *who);

/* The Lua state of `regimen check` is marked (rg_check_mode_set): there
 * R.alert checks every field and makes a template's message as it is
 * built, at the author's line, and the engine looks at every alert a rule
 * returns in full, so a mistake is found whether the alert opens or not.
 * Elsewhere what only an alert that opens needs (its message, its fields
 * beyond key, severity, due and ends) is looked at when it opens.
 * [-0, +0, m] / [-0, +0] */
void rg_check_mode_set(lua_State *L);
int rg_check_mode(lua_State *L);

/* Severity names, in increasing order; rg_severity_ok says if s is one. */
int rg_severity_ok(const char *s);

/* One event as the engine hands it to Lua; the engine owns the memory. Its
 * data is compiled (runtime/core/fields.h): rules read numbers and strings from
 * these bytes, never by parsing JSON. */
typedef struct rg_hevent {
    int64_t seq;
    rg_time at;
    const char *id, *type;
    const unsigned char *fields; /* compiled data, NULL when the event has none */
    size_t nfields;
    int tid;                     /* index+1 of type in rg_history.types, 0 if not there */
    /* a correction (docs/corrections.md): the seq of the version it replaced
     * (0: the first stored version), the instant it takes effect, and whether
     * it withdraws the event. The engine hands Lua only the versions in force
     * at the step's instant; these fields are for it, not for rules. */
    int64_t replaces;
    rg_time corrected_at;
    int retracted;
} rg_hevent;

/* The history object protocols query. The engine creates one per patient it
 * evaluates, binds it to that patient's compiled events, moves its `now` from
 * step to step, and unbinds it when done; after that every method raises, so
 * a protocol that kept it cannot reach freed memory. Every event returned to
 * Lua is appended to the touch log with the current mark (which rule was
 * running): that is the evidence of the rule's alerts. h:memo replays the
 * touches of a cached computation for each rule that reuses it. */
typedef struct rg_touch {
    int ev;
    uint32_t mark;
} rg_touch;

/* Owned by the engine, emptied at each evaluation step. */
typedef struct rg_touch_log {
    rg_touch *v;
    int n, cap;
} rg_touch_log;

/* What one reader (a rule's check, a protocol's applies, an h:memo
 * computation) read through the history, for re-running it only when that
 * changed (docs/protocols.md, "What makes a rule run again"): the event
 * types it queried, as a 256-bit set of rg_reads_type_bit of each name (a
 * superset test: two types may share a bit, which only costs a re-run);
 * every type (a query without a type, tostring(h)); the clock (h.now). The
 * `now` argument of a check is not seen here: the engine finds a use of it in
 * the function's source. */
typedef struct rg_reads {
    uint64_t types[4];
    unsigned char all, clock;
} rg_reads;

#define RG_READS_DEPTH 8 /* nested h:memo computations tracked apart */

/* The bit of an event type in rg_reads.types (0..255). */
unsigned rg_reads_type_bit(const char *type);
/* Marks type as read (NULL: every type) in r. */
void rg_reads_type(rg_reads *r, const char *type);
/* Adds what b read to a. */
void rg_reads_merge(rg_reads *a, const rg_reads *b);
/* Did r read any type whose bit is set in changed (or every type)? */
int rg_reads_hit(const rg_reads *r, const rg_reads *changed);

typedef struct rg_history {
    uint32_t magic;           /* RG_HISTORY_MAGIC: a cheap check that self is a history */
    const rg_hevent *ev;
    int nev;   /* events of the patient, in (at, seq) order */
    int n;     /* how many of them are visible (at <= now) */
    rg_time now;
    const char *clinic, *patient;
    rg_touch_log *log;
    uint32_t mark;
    const char *const *types; /* interned event types: compare ids, not strings */
    int ntypes;
    /* per type: the indexes of its events in time order, tix[toff[tid-1] ..
     * toff[tid]) for type id tid (1..ntypes) */
    const int *tix, *toff;
    const char *tid_key[8];   /* last queried type strings (Lua-interned pointers) */
    int tid_val[8], tid_next;
    rg_time memo_now;         /* h:memo values belong to this step (without memo_keep) */
    int memo_n;
    /* h:memo values stand across steps while what they read is unchanged
     * (rg_history_memo_step); memo_fresh: this reader uses values of its
     * step only, kept apart (the engine's REGIMEN_VERIFY_INCREMENTAL) */
    int memo_keep, memo_fresh;
    uint32_t memo_step;       /* counts the steps (rg_history_memo_step) */
    /* Whether the alert (protocol, rule, key) of this patient is open and
     * stays so unless the rule drops it (set by the engine; NULL: never):
     * its message, when given as a function, is then not called. */
    int (*is_open)(void *ud, const char *clinic, const char *patient, const char *proto,
                   const char *rule, const char *subkey);
    void *open_ud;
    int eager; /* every alert is looked at in full, open or not (rg_check_mode) */
    /* Read tracking (set by the engine, NULL: none): what the running reader
     * reads is added to *reads and to acc[1 .. depth] (the h:memo
     * computations under way, innermost last). */
    rg_reads *reads;
    rg_reads acc[RG_READS_DEPTH + 1];
    int depth;
    unsigned short tbit[256]; /* per interned type (id - 1): its type bit + 1 (0: not yet) */
} rg_history;

#define RG_HISTORY_MAGIC 0x68697374u

/* [-0, +1] Pushes a new, unbound history userdata and returns it. */
rg_history *rg_history_new(lua_State *L);
/* Makes the history at idx empty again and drops its cached event tables. */
void rg_history_unbind(lua_State *L, int idx);

/* [-0, +0] A new step of the history at idx, at which the event types in
 * changed came into view (changed->all: anything may differ): with
 * memo_keep, the h:memo values that read one of them, or the clock, are
 * dropped; the others stand. Never raises. */
void rg_history_memo_step(lua_State *L, int idx, const rg_reads *changed);

/* The position in the list of type id tid's events (tix, toff) of its first
 * event at index >= i. */
int rg_history_type_lower(const rg_history *h, int tid, int i);

/* [-0, +1] Pushes the Lua table for event i of h (cached per history);
 * raises on memory. */
void rg_history_push_event(lua_State *L, int hidx, int i);

/* [-0, +1] Pushes the JSON text (an object or array) as Lua tables; raises on
 * malformed text or memory. NULL pushes an empty table. */
void rg_json_push(lua_State *L, const char *text);

/* [-0, +0] The Lua value at idx as JSON: strings, numbers, booleans, and
 * tables (a sequence 1..n as an array, else an object; an empty table as
 * an array when empty_list, else an object). NULL, with why, for what JSON
 * cannot hold (a function, a key that is neither a name nor a position,
 * nesting deeper than 16, text that is not UTF-8). Raw reads only, so
 * nothing raises outside a protected call. */
struct json_t;
struct json_t *rg_lua_to_json(lua_State *L, int idx, int empty_list, char *why, size_t whylen);

struct rg_field;
/* [-0, +1] Pushes one compiled field's value as Lua sees it in `data` (null
 * as nil, objects and arrays as tables); raises on memory. */
void rg_field_push(lua_State *L, const struct rg_field *f);

#endif
