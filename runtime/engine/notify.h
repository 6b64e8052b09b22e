/*
 * notify.h - a clinic's notification policy (clinic.lua's `notify`) and the
 * one planner that says, from an alert's transitions, its acknowledgements
 * and a clock, which notification is due when, to whom, and which are held
 * back (inhibited, grouped, outside hours).
 *
 * The policy: receivers (name -> { webhook = url } | { email = address } |
 * { sms = url } | { role = name }), schedules (kept for on-call roles),
 * routes ({ match = { severity, rule, protocol, patient }, steps = { { to,
 * after } }, repeat_every, repeat_times, group_by = "patient", hold_down };
 * the first
 * route whose match holds takes the alert) and inhibit ({ when = match,
 * hold = match }: while an alert matching `when` is open for a patient,
 * notifications of that patient's alerts matching `hold` are suppressed).
 * A step's `after` counts from the alert's notification time (its opening,
 * or the clinic's next opening for what happened while it was closed), on
 * the wall clock or (route count = "opening hours") only while the clinic
 * is open (rg_calendar_add_open over the policy's calendar).
 *
 * Pure C over plain values: simulate, `regimen test` and the service plan
 * with the same rg_notify_plan (docs/notifications.md).
 */
#ifndef RG_NOTIFY_H
#define RG_NOTIFY_H

#include "core/calendar.h"
#include "core/rg.h"

#include <stdint.h>

struct json_t;

enum { RG_NOTIFY_WEBHOOK, RG_NOTIFY_EMAIL, RG_NOTIFY_SMS, RG_NOTIFY_ROLE };

typedef struct rg_notify_receiver {
    char *name, *target; /* target: the URL, the address or the role */
    int kind;            /* RG_NOTIFY_* */
} rg_notify_receiver;

/* One match: each field a list of accepted values (NULL: any). */
typedef struct rg_notify_match {
    char **field[4]; /* severity, rule, protocol, patient; NULL-terminated */
} rg_notify_match;

typedef struct rg_notify_step {
    rg_time after;
    int receiver; /* index into receivers */
} rg_notify_step;

typedef struct rg_notify_route {
    rg_notify_match match;
    rg_notify_step *steps;
    int nsteps;
    rg_time repeat_every;
    rg_time hold_down; /* an alert re-opened this soon after it resolved: first step held */
    int repeat_times, group_by_patient;
    int count_open; /* count = "opening hours": after and repeat_every count only open time */
} rg_notify_route;

typedef struct rg_notify_inhibit {
    rg_notify_match when, hold;
} rg_notify_inhibit;

/* An on-call schedule: rotation members (receiver indexes) take turns of
 * `every`, counted in the clinic's wall-clock time from `start` (so a
 * handoff stays at its local hour across daylight-saving changes);
 * overrides put one receiver on call from one local time to another. */
typedef struct rg_notify_override {
    int64_t from, to; /* local wall-clock ms (counted as if UTC) */
    int receiver;
} rg_notify_override;
typedef struct rg_notify_schedule {
    char *name;
    int *rotation, nrotation;
    int64_t start; /* local wall-clock ms */
    rg_time every;
    rg_notify_override *overrides;
    int noverrides;
} rg_notify_schedule;

typedef struct rg_notify_policy {
    rg_notify_receiver *receivers;
    int nreceivers;
    rg_notify_schedule *schedules;
    int nschedules;
    const struct rg_zone *zone; /* the clinic's (set by clinic.c; NULL: UTC) */
    rg_calendar cal; /* the clinic's hours and closures (a copy set by clinic.c; default:
                        UTC, always open), for routes counted in opening hours */
    rg_notify_route *routes;
    int nroutes;
    rg_notify_inhibit *inhibits;
    int ninhibits;
    char *smtp_url, *smtp_from; /* notify.smtp = { url, from }, for e-mail receivers */
} rg_notify_policy;

/* Reads the policy from its JSON form (clinic.lua's notify table as
 * rg_lua_to_json gives it). On failure returns RG_EINVAL with err naming the
 * field ("notify.routes[2].steps[1].to: ...") and needle set to the text to
 * look for in clinic.lua (for the line). */
int rg_notify_parse(struct json_t *j, rg_notify_policy **out, char *err, size_t errlen,
                    char *needle, size_t needlelen);
void rg_notify_free(rg_notify_policy *p);

/* What the planner reads of one alert transition (open, resolved). */
typedef struct rg_notify_alert_tx {
    rg_time at, notify_at;
    int open; /* 1 opened (or re-raised), 0 resolved */
    const char *clinic, *patient, *key, *protocol, *rule, *severity;
} rg_notify_alert_tx;

/* An acknowledgement: of the open alert of key, or (key NULL) of the open
 * alerts of clinic/patient with rule at that time. */
typedef struct rg_notify_ack {
    rg_time at;
    const char *clinic, *patient, *rule, *key;
} rg_notify_ack;

/* Acknowledgements read from a JSON-lines file, one per line:
 * {"at": RFC 3339, "clinic": ..., "key": ...} or {"at", "clinic", "patient",
 * "rule"}. The strings belong to the list. */
typedef struct rg_notify_acks {
    rg_notify_ack *a;
    size_t n;
} rg_notify_acks;
/* RG_OK, or RG_EINVAL/RG_EIO with err naming the file, line and field. */
int rg_notify_acks_read(rg_notify_acks *out, const char *path, char *err, size_t errlen);
void rg_notify_acks_free(rg_notify_acks *l);

/* One planned notification. reason is NULL for "sent". */
typedef struct rg_notify_line {
    rg_time at;
    const char *clinic, *patient, *key, *rule, *receiver;
    rg_time opened;          /* when the alert's life began (its opening transition) */
    int route, step, repeat; /* route and step 1-based; repeat 0 for the step itself */
    int grouped;             /* on a sent line: how many alerts it carries (1: itself) */
    const char *on_call;     /* a role receiver: who its schedule puts on call, else NULL */
    const char *reason;      /* NULL (sent), "inhibited", "grouped", "outside hours",
                                "held down" */
} rg_notify_line;

/* Plans the notifications of one clinic's alerts: txs in (at, seq) order,
 * acks in any order, nothing after until. Calls fn for each line in time
 * order; stops at a non-zero return and gives it. */
int rg_notify_plan(const rg_notify_policy *p, const rg_notify_alert_tx *txs, size_t ntx,
                   const rg_notify_ack *acks, size_t nacks, rg_time until,
                   int (*fn)(void *ud, const rg_notify_line *l), void *ud);

/* The receiver on call for role receiver r at t (r itself when it is no
 * role); its index. */
int rg_notify_on_call(const rg_notify_policy *p, int r, rg_time t);

/* The line as simulate's jsonl prints it: {"kind":"notification", ...}. */
struct json_t *rg_notify_line_json(const rg_notify_line *l, const void *zone);

/* One entry of the service's notification history (store.h,
 * rg_notify_entry) as GET /v1/alerts/{key} and `regimen notifications`
 * show it; zone (when not NULL) adds at_local. */
struct rg_notify_entry;
struct json_t *rg_notify_entry_json(const struct rg_notify_entry *e, const void *zone);

/* The notifications of a simulation: every clinic's alerts in a store
 * planned with its policy (clinics without one give nothing). Lines are in
 * time order; their strings belong to the set. */
struct rg_engine;
struct rg_store;
typedef struct rg_notify_set {
    rg_notify_line *lines;
    size_t n, cap;
    rg_notify_alert_tx *txs;
    size_t ntx, txcap;
    struct rg_engine *eng;
} rg_notify_set;
int rg_notify_set_build(rg_notify_set *s, struct rg_engine *eng, struct rg_store *st,
                        const rg_notify_ack *acks, size_t nacks, rg_time until);
void rg_notify_set_free(rg_notify_set *s);

#endif
