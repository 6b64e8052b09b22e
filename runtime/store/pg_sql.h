/*
 * pg_sql.h - what the PostgreSQL backend asks of the database: the schema's
 * upgrade steps and the text of every prepared statement (pg_sql.c), named
 * by the P_* numbers pg.c runs them by. Private to runtime/store/.
 */
#ifndef RG_PG_SQL_H
#define RG_PG_SQL_H

#include <stddef.h>

/* NOTIFY channel: a clinic's events, transitions or snoozes changed (the
 * payload is the clinic), for the workers LISTENing (rg_store_changed). An
 * SQL expression: the store's schema's own channel, "regimen." and the
 * schema's name (or its md5, where the name would pass PostgreSQL's 63
 * bytes), since PostgreSQL's channels are the database's and a database
 * may hold several stores, one a schema, which must not wake each other's
 * workers. LISTEN takes the name it gives (rg_pg_changes_fd). */
#define RG__CHANNEL                                                                 \
    "(CASE WHEN octet_length(current_schema()) <= 55 THEN 'regimen.' || current_schema()" \
    " ELSE 'regimen.' || md5(current_schema()) END)"
/* rg_store_hold's advisory lock: the store (its schema) as a whole */
#define RG__HOLD_KEY "hashtextextended('regimen:' || current_schema() || ':*', 0)"

enum {
    P_EVENT_INSERT,
    P_EVENT_INSERT_VERSION,
    P_EVENT_CURRENT,
    P_EVENT_VERSION_BODY,
    P_EVENT_VERSIONS,
    P_CORRECTIONS,
    P_EVENTS_INSERT,
    P_REJECT,
    P_REJECTED_ALL,
    P_EVENTS_OF,
    P_EVENTS_AFTER,
    P_EVENTS_OF_DATA,
    P_PATIENT_GET,
    P_PATIENT_PUT,
    P_PATIENTS_PAGE,
    P_PATIENTS_DUE_PAGE,
    P_PATIENTS_DUE,
    P_CLINIC_DUE,
    P_NEXT_WAKE,
    P_OPEN_ALERTS,
    P_KEY_LAST,
    P_TRANSITION,
    P_TRANSITIONS_AFTER,
    P_EVAL_ERROR,
    P_PROTOCOL_LOADED,
    P_FAILING_ADD,
    P_FAILING_DEL,
    P_FAILING_COUNT,
    P_FAILING_OF,
    P_FAILING_ALL,
    P_CLINIC_TRANSITIONS,
    P_ALERTS_VIEW,
    P_ALERT_ACK,
    P_ALERT_SNOOZE,
    P_ALERT_UNSNOOZE,
    P_ACTION_ADD,
    P_ACTIONS_OF,
    P_NEXT_SNOOZE,
    P_DUE_SNOOZES,
    P_WAKE_CLINIC,
    P_OPEN_BY_SEVERITY,
    P_LAST_CSEQ,
    P_EVENT_GET,
    P_AUDIT_CHAIN,
    P_AUDIT_CHAIN_LOCK,
    P_AUDIT_INSERT,
    P_AUDIT_EACH,
    P_AUDIT_LAST_BEFORE,
    P_AUDIT_DELETE,
    P_AUDIT_BASE,
    P_HOOK_GET,
    P_HOOK_DELIVERED,
    P_HOOK_FAILED,
    P_HOOK_NEXT,
    P_HOOK_WAIT,
    P_HOOK_AHEAD_ADD,
    P_HOOK_AHEAD_TAKE,
    P_KEY_TRANSITIONS,
    P_KEY_CLINICS,
    P_ALERT_BY_KEY,
    P_EVENT_ROWS,
    P_EVENT_ROWS_OF,
    /* a group's reads and writes in few round trips (pg.c, "a group's reads") */
    P_BATCH_ALL,
    P_PATIENTS_PUT_MANY,
    P_DUE_COUNT,
    P_TRANSITIONS_MANY,
    P_NEXT_DUE,
    P_AUDIT_INSERT_MANY,
    P__COUNT
};

/* The statements, prepared once per connection as "q<number>". */
extern const char *const rg_pg_sql[P__COUNT];
/* The session's function behind P_TRANSITIONS_MANY (made at connect). */
extern const char rg_pg_txs_fn[];

/* Schema version from -> to, applied in this order: a new database goes
 * from 0 to 5 at once, then one step per version after it (as in sqlite.c). */
typedef struct rg_pg_step {
    int from, to;
    const char *sql;
} rg_pg_step;
extern const rg_pg_step rg_pg_steps[];
extern const size_t rg_pg_nsteps;

#endif
