/*
 * protosets.c - protocol versions in the SQLite store (store.h, "protocol
 * versions"; docs/governance.md): the tables protocol_sets,
 * protocol_set_files and protocol_set_log of schema version 9. These run a
 * few times a day, by hand, so each prepares its statement when called
 * instead of holding one in sqlite.c's table; they are part of the SQLite
 * backend (its rg_sqlite_ops). PostgreSQL's are in pg_protosets.c.
 */
#include "store/sqlite.h"

#include <sqlite3.h>
#include <string.h>

/* The statement sql on st's connection, or NULL (an error). */
static sqlite3_stmt *rg__prep(rg_sqlite *st, const char *sql)
{
    sqlite3 *db = rg_sqlite_db(st);
    sqlite3_stmt *s = NULL;
    if (!db || sqlite3_prepare_v2(db, sql, -1, &s, NULL) != SQLITE_OK) {
        sqlite3_finalize(s);
        return NULL;
    }
    return s;
}

static int rg__fail(rg_sqlite *st)
{
    (void)st;
    return RG_EDB;
}

static const char *rg__col_text(sqlite3_stmt *s, int i)
{
    return (const char *)sqlite3_column_text(s, i);
}

/* Steps s to its end and frees it. */
static int rg__run(sqlite3_stmt *s)
{
    int rc = sqlite3_step(s);
    sqlite3_finalize(s);
    return rc == SQLITE_DONE ? RG_OK : rc == SQLITE_CONSTRAINT ? RG_ECONFLICT : RG_EDB;
}

int rg_sqlite_protoset_add(rg_sqlite *st, const rg_protoset *v, const char *const *paths,
                           const char *const *contents, const size_t *lens, int nfiles)
{
    sqlite3_stmt *s = rg__prep(st, "INSERT INTO protocol_sets(clinic, id, n, state, proposed_by,"
                                   " proposed_at, message) VALUES(?1, ?2, 1 + (SELECT count(*)"
                                   " FROM protocol_sets WHERE clinic = ?1), 'proposed', ?3, ?4,"
                                   " ?5)");
    if (!s)
        return rg__fail(st);
    rg_sqlite_text(s, 1, v->clinic);
    rg_sqlite_text(s, 2, v->id);
    rg_sqlite_text(s, 3, v->proposed_by);
    sqlite3_bind_int64(s, 4, v->proposed_at);
    rg_sqlite_text(s, 5, v->message ? v->message : "");
    int rc = rg__run(s);
    for (int i = 0; i < nfiles && rc == RG_OK; i++) {
        if (!(s = rg__prep(st, "INSERT INTO protocol_set_files(clinic, id, path, content)"
                               " VALUES(?1, ?2, ?3, ?4)")))
            return rg__fail(st);
        rg_sqlite_text(s, 1, v->clinic);
        rg_sqlite_text(s, 2, v->id);
        rg_sqlite_text(s, 3, paths[i]);
        sqlite3_bind_blob64(s, 4, lens[i] ? contents[i] : "", lens[i], SQLITE_TRANSIENT);
        rc = rg__run(s);
        if (rc == RG_ECONFLICT) /* one path twice: the caller's list is wrong */
            rc = RG_EINVAL;
    }
    return rc;
}

int rg_sqlite_protoset_each(rg_sqlite *st, const char *clinic,
                            int (*fn)(void *ud, const rg_protoset *v), void *ud)
{
    sqlite3_stmt *s = rg__prep(st, "SELECT clinic, id, n, state, proposed_by, proposed_at,"
                                   " message, approved_by, approved_at, active_from"
                                   " FROM protocol_sets WHERE clinic = ?1 ORDER BY n");
    if (!s)
        return rg__fail(st);
    rg_sqlite_text(s, 1, clinic);
    int rc, frc = 0;
    while (!frc && (rc = sqlite3_step(s)) == SQLITE_ROW) {
        rg_protoset v = {.clinic = rg__col_text(s, 0), .id = rg__col_text(s, 1),
                         .n = sqlite3_column_int64(s, 2), .state = rg__col_text(s, 3),
                         .proposed_by = rg__col_text(s, 4), .proposed_at = rg_sqlite_col_time(s, 5),
                         .message = rg__col_text(s, 6), .approved_by = rg__col_text(s, 7),
                         .approved_at = rg_sqlite_col_time(s, 8), .active_from = rg_sqlite_col_time(s, 9)};
        frc = fn(ud, &v);
    }
    sqlite3_finalize(s);
    return frc ? frc : rc == SQLITE_DONE ? RG_OK : RG_EDB;
}

int rg_sqlite_protoset_files(rg_sqlite *st, const char *clinic, const char *id,
                             int (*fn)(void *ud, const char *path, const char *content,
                                       size_t len),
                             void *ud)
{
    sqlite3_stmt *s = rg__prep(st, "SELECT path, content FROM protocol_set_files"
                                   " WHERE clinic = ?1 AND id = ?2 ORDER BY path");
    if (!s)
        return rg__fail(st);
    rg_sqlite_text(s, 1, clinic);
    rg_sqlite_text(s, 2, id);
    int rc, frc = 0;
    while (!frc && (rc = sqlite3_step(s)) == SQLITE_ROW) {
        const char *blob = sqlite3_column_blob(s, 1);
        frc = fn(ud, rg__col_text(s, 0), blob ? blob : "", (size_t)sqlite3_column_bytes(s, 1));
    }
    sqlite3_finalize(s);
    return frc ? frc : rc == SQLITE_DONE ? RG_OK : RG_EDB;
}

int rg_sqlite_protoset_update(rg_sqlite *st, const rg_protoset *v)
{
    sqlite3_stmt *s = rg__prep(st, "UPDATE protocol_sets SET state = ?3, approved_by = ?4,"
                                   " approved_at = ?5, active_from = ?6"
                                   " WHERE clinic = ?1 AND id = ?2");
    if (!s)
        return rg__fail(st);
    rg_sqlite_text(s, 1, v->clinic);
    rg_sqlite_text(s, 2, v->id);
    rg_sqlite_text(s, 3, v->state);
    rg_sqlite_text(s, 4, v->approved_by);
    rg_sqlite_time(s, 5, v->approved_at);
    rg_sqlite_time(s, 6, v->active_from);
    return rg__run(s);
}

int rg_sqlite_protoset_log(rg_sqlite *st, const char *clinic, const char *id,
                           const char *action, const char *by, rg_time at, rg_time effective)
{
    sqlite3_stmt *s = rg__prep(st, "INSERT INTO protocol_set_log(clinic, id, action, by, at,"
                                   " effective) VALUES(?1, ?2, ?3, ?4, ?5, ?6)");
    if (!s)
        return rg__fail(st);
    rg_sqlite_text(s, 1, clinic);
    rg_sqlite_text(s, 2, id);
    rg_sqlite_text(s, 3, action);
    rg_sqlite_text(s, 4, by);
    sqlite3_bind_int64(s, 5, at);
    sqlite3_bind_int64(s, 6, effective);
    return rg__run(s);
}

int rg_sqlite_protoset_each_log(rg_sqlite *st, const char *clinic, const char *id,
                                int (*fn)(void *ud, const char *id, const char *action,
                                          const char *by, rg_time at, rg_time effective),
                                void *ud)
{
    sqlite3_stmt *s = rg__prep(st, "SELECT id, action, by, at, effective FROM protocol_set_log"
                                   " WHERE clinic = ?1 AND (?2 IS NULL OR id = ?2) ORDER BY seq");
    if (!s)
        return rg__fail(st);
    rg_sqlite_text(s, 1, clinic);
    rg_sqlite_text(s, 2, id);
    int rc, frc = 0;
    while (!frc && (rc = sqlite3_step(s)) == SQLITE_ROW)
        frc = fn(ud, rg__col_text(s, 0), rg__col_text(s, 1), rg__col_text(s, 2),
                 sqlite3_column_int64(s, 3), sqlite3_column_int64(s, 4));
    sqlite3_finalize(s);
    return frc ? frc : rc == SQLITE_DONE ? RG_OK : RG_EDB;
}

int rg_sqlite_each_event_body(rg_sqlite *st, const char *clinic,
                              int (*fn)(void *ud, const char *body, size_t len), void *ud)
{
    /* the whole body (rg_body: schema 17 keeps the rest after its head) */
    sqlite3_stmt *s = rg__prep(st, "SELECT rg_body(body, id, clinic, patient, type, at,"
                                   " utc_offset, fields) FROM events WHERE clinic = ?1 ORDER BY seq");
    if (!s)
        return rg__fail(st);
    rg_sqlite_text(s, 1, clinic);
    int rc, frc = 0;
    while (!frc && (rc = sqlite3_step(s)) == SQLITE_ROW)
        frc = fn(ud, rg__col_text(s, 0), (size_t)sqlite3_column_bytes(s, 0));
    sqlite3_finalize(s);
    return frc ? frc : rc == SQLITE_DONE ? RG_OK : RG_EDB;
}

int rg_sqlite_each_event_body_after(rg_sqlite *st, const char *clinic, int64_t after,
                                    int (*fn)(void *ud, int64_t seq, const char *body,
                                              size_t len),
                                    void *ud)
{
    /* the clinic's range of the table's key (the lean row of schema 15 is
     * clustered by clinic, patient, at, seq: no index on seq alone) */
    sqlite3_stmt *s = rg__prep(st, "SELECT seq, rg_body(body, id, clinic, patient, type, at,"
                                   " utc_offset, fields) FROM events WHERE clinic = ?1"
                                   " AND seq > ?2 ORDER BY seq");
    if (!s)
        return rg__fail(st);
    rg_sqlite_text(s, 1, clinic);
    sqlite3_bind_int64(s, 2, after);
    int rc, frc = 0;
    while (!frc && (rc = sqlite3_step(s)) == SQLITE_ROW)
        frc = fn(ud, sqlite3_column_int64(s, 0), rg__col_text(s, 1),
                 (size_t)sqlite3_column_bytes(s, 1));
    sqlite3_finalize(s);
    return frc ? frc : rc == SQLITE_DONE ? RG_OK : RG_EDB;
}

int rg_sqlite_shadow_put(rg_sqlite *st, const char *set, const rg_transition *t)
{
    sqlite3_stmt *s = rg__prep(st, "INSERT OR IGNORE INTO shadow_transitions(clinic, set_id,"
                                   " patient, key, state, at, due, protocol, version, rule,"
                                   " severity, message) VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8,"
                                   " ?9, ?10, ?11, ?12)");
    if (!s)
        return rg__fail(st);
    rg_sqlite_text(s, 1, t->clinic);
    rg_sqlite_text(s, 2, set);
    rg_sqlite_text(s, 3, t->patient);
    rg_sqlite_text(s, 4, t->key);
    rg_sqlite_text(s, 5, RG_TRANSITION_STATE(t));
    sqlite3_bind_int64(s, 6, t->at);
    rg_sqlite_time(s, 7, t->due);
    rg_sqlite_text(s, 8, t->protocol ? t->protocol : "");
    rg_sqlite_text(s, 9, t->version ? t->version : "");
    rg_sqlite_text(s, 10, t->rule ? t->rule : "");
    rg_sqlite_text(s, 11, t->severity ? t->severity : "");
    rg_sqlite_text(s, 12, t->message ? t->message : "");
    return rg__run(s);
}

int rg_sqlite_shadow_each(rg_sqlite *st, const char *clinic, const char *set, rg_time since,
                          int (*fn)(void *ud, const rg_transition *t), void *ud)
{
    sqlite3_stmt *s = rg__prep(st, "SELECT 0, patient, key, state, at, due, protocol, version,"
                                   " rule, severity, message FROM shadow_transitions"
                                   " WHERE clinic = ?1 AND set_id = ?2 AND at >= ?3"
                                   " ORDER BY at, patient, key, state");
    if (!s)
        return rg__fail(st);
    rg_sqlite_text(s, 1, clinic);
    rg_sqlite_text(s, 2, set);
    sqlite3_bind_int64(s, 3, since);
    int rc, frc = 0;
    while (!frc && (rc = sqlite3_step(s)) == SQLITE_ROW) {
        const char *state = rg__col_text(s, 3);
        rg_transition t = {.seq = sqlite3_column_int64(s, 0), .clinic = clinic,
                           .patient = rg__col_text(s, 1), .key = rg__col_text(s, 2),
                           .open = !strcmp(state, "open")       ? 1
                                   : !strcmp(state, "reraised") ? RG_TRANSITION_RERAISED
                                                                : 0,
                           .at = sqlite3_column_int64(s, 4), .due = rg_sqlite_col_time(s, 5),
                           .protocol = rg__col_text(s, 6), .version = rg__col_text(s, 7),
                           .rule = rg__col_text(s, 8), .severity = rg__col_text(s, 9),
                           .message = rg__col_text(s, 10)};
        t.notify_at = t.at;
        frc = fn(ud, &t);
    }
    sqlite3_finalize(s);
    return frc ? frc : rc == SQLITE_DONE ? RG_OK : RG_EDB;
}
