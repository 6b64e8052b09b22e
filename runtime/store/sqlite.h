/*
 * sqlite.h - what the SQLite backend's files share (sqlite.c, protosets.c),
 * and what tests read of it: never the front door's business. Nothing
 * outside runtime/store/ and the SQLite tests includes this header; the
 * rest of the program sees the backend only through store.h.
 */
#ifndef RG_STORE_SQLITE_H
#define RG_STORE_SQLITE_H

#include "store/backend.h"

/* The SQLite backend's state (struct rg_backend of sqlite.c). */
typedef struct rg_backend rg_sqlite;

/* Its connection, for protosets.c, which prepares its statements when
 * called. */
struct sqlite3;
struct sqlite3 *rg_sqlite_db(rg_sqlite *st);

/* The SQL text of the wake-up read (rg_store_due_patients) of every clinic
 * (0) or of one (1), and those of
 * the reads by (clinic, key), 0, 1, ... until NULL: the key's transitions,
 * its alert instances, its staff actions, its last transition. For the
 * tests of their query plans (tests/test_store.c). */
const char *rg_sqlite_due_sql(int one_clinic);
const char *rg_sqlite_key_sql(int which);

/* Protocol versions and shadow feeds (protosets.c), as store.h's. */
int rg_sqlite_protoset_add(rg_sqlite *st, const rg_protoset *v, const char *const *paths,
                           const char *const *contents, const size_t *lens, int nfiles);
int rg_sqlite_protoset_each(rg_sqlite *st, const char *clinic,
                            int (*fn)(void *ud, const rg_protoset *v), void *ud);
int rg_sqlite_protoset_files(rg_sqlite *st, const char *clinic, const char *id,
                             int (*fn)(void *ud, const char *path, const char *content,
                                       size_t len),
                             void *ud);
int rg_sqlite_protoset_update(rg_sqlite *st, const rg_protoset *v);
int rg_sqlite_protoset_log(rg_sqlite *st, const char *clinic, const char *id,
                           const char *action, const char *by, rg_time at, rg_time effective);
int rg_sqlite_protoset_each_log(rg_sqlite *st, const char *clinic, const char *id,
                                int (*fn)(void *ud, const char *id, const char *action,
                                          const char *by, rg_time at, rg_time effective),
                                void *ud);
int rg_sqlite_each_event_body(rg_sqlite *st, const char *clinic,
                              int (*fn)(void *ud, const char *body, size_t len), void *ud);
int rg_sqlite_each_event_body_after(rg_sqlite *st, const char *clinic, int64_t after,
                                    int (*fn)(void *ud, int64_t seq, const char *body,
                                              size_t len),
                                    void *ud);
int rg_sqlite_shadow_put(rg_sqlite *st, const char *set, const rg_transition *t);
int rg_sqlite_shadow_each(rg_sqlite *st, const char *clinic, const char *set, rg_time since,
                          int (*fn)(void *ud, const rg_transition *t), void *ud);

/* Binding and reading, for the backend's files (sqlite.c, protosets.c):
 * text bound as SQLITE_STATIC (the caller's string must live until the
 * statement is stepped), NULL as SQL NULL; a time bound or read with
 * RG_TIME_NONE as SQL NULL. */
struct sqlite3_stmt;
void rg_sqlite_text(struct sqlite3_stmt *s, int i, const char *v);
void rg_sqlite_time(struct sqlite3_stmt *s, int i, rg_time t);
rg_time rg_sqlite_col_time(struct sqlite3_stmt *s, int i);

#endif
