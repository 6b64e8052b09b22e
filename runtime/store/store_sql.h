/*
 * store_sql.h - what the SQLite store asks of its file: the schema's
 * migrations and the text of every prepared statement (store_sql.c), named
 * by the Q_* numbers sqlite.c runs them by. Private to runtime/store/.
 */
#ifndef RG_STORE_SQL_H
#define RG_STORE_SQL_H

#include <stddef.h>

/* Events one Q_EVENT_INSERT_MANY stores (RG_STORE_MANY_COLS parameters each);
 * Q_EVENT_INSERT_PLAIN stores as many plain ones (version 1, final, no
 * correction) with ?1 their received time and RG_STORE_PLAIN_COLS more each. */
#define RG_STORE_MANY 32
#define RG_STORE_MANY_COLS 15
#define RG_STORE_PLAIN_COLS 10

enum {
    Q_EVENT_INSERT,
    Q_EVENT_INSERT_MANY,
    Q_EVENT_INSERT_PLAIN,
    Q_EVENT_UNDO,
    Q_EVENT_INSERT_VERSION,
    Q_EVENT_CURRENT,
    Q_EVENT_VERSION_BODY,
    Q_EVENT_VERSIONS,
    Q_CORRECTIONS,
    Q_PATIENT_SCHEDULE,
    Q_REJECT,
    Q_REJECTED_ALL,
    Q_EVENTS_OF,
    Q_EVENTS_AFTER,
    Q_EVENTS_OF_DATA,
    Q_PATIENT_GET,
    Q_PATIENT_PUT,
    Q_PATIENTS_PAGE,
    Q_PATIENTS_DUE_PAGE,
    Q_PATIENTS_DUE,
    Q_CLINIC_DUE,
    Q_NEXT_WAKE,
    Q_OPEN_ALERTS,
    Q_KEY_LAST,
    Q_TRANSITION,
    Q_OPEN_ADD,
    Q_OPEN_DEL,
    Q_OPEN_HAS,
    Q_LAST_SEQ,
    Q_TRANSITIONS_SEQ,
    Q_TRANSITIONS_TIME,
    Q_EVAL_ERROR,
    Q_PROTOCOL_LOADED,
    Q_FAILING_ADD,
    Q_FAILING_DEL,
    Q_FAILING_COUNT,
    Q_FAILING_OF,
    Q_FAILING_ALL,
    Q_CLINIC_TRANSITIONS,
    Q_ALERTS_VIEW,
    Q_ALERT_ACK,
    Q_ALERT_SNOOZE,
    Q_ALERT_UNSNOOZE,
    Q_ACTION_ADD,
    Q_ACTIONS_OF,
    Q_NEXT_SNOOZE,
    Q_DUE_SNOOZES,
    Q_WAKE_CLINIC,
    Q_OPEN_BY_SEVERITY,
    Q_LAST_CSEQ,
    Q_EVENT_GET,
    Q_HOOK_GET,
    Q_HOOK_DELIVERED,
    Q_HOOK_FAILED,
    Q_HOOK_NEXT,
    Q_HOOK_WAIT,
    Q_HOOK_AHEAD_ADD,
    Q_HOOK_AHEAD_TAKE,
    Q_KEY_TRANSITIONS,
    Q_KEY_CLINICS,
    Q_ALERT_BY_KEY,
    Q_EVENT_ROWS,
    Q_EVENT_ROWS_OF,
    Q_EVENT_SEQ_GET,
    Q_EVENT_SEQ_PUT,
    Q_AUDIT_CHAIN,
    Q_AUDIT_INSERT,
    Q_AUDIT_TIP,
    Q_AUDIT_EACH,
    Q_AUDIT_LAST_BEFORE,
    Q_AUDIT_DELETE,
    Q_AUDIT_BASE,
    Q_BEGIN,
    Q_BEGIN_READ,
    Q_COMMIT,
    Q_ROLLBACK,
    Q_WAKE_ORDER,
    Q__COUNT
};

/* The statements, prepared once per connection. */
extern const char *const rg_store_sql[Q__COUNT];

/* rg_store_migrations[i] brings a file from schema version i to i + 1;
 * rg_store_nmigrations is the current version (RG_SCHEMA_VERSION). */
extern const char *const rg_store_migrations[];
extern const size_t rg_store_nmigrations;

/* The indexes a scratch store (rg_store_opts.scratch: simulate's and diff's
 * own file) drops once it is made: none of the queries such a run makes
 * reads them, and each cost every transition written an index insert.
 * NULL-terminated; each name must be an index of the current schema
 * (test_store checks it, so a renamed index cannot slip through). */
extern const char *const rg_store_scratch_drop[];

#endif
