/*
 * pg.h - what the PostgreSQL backend's files share (pg.c, pg_protosets.c).
 *
 * The rest of the program sees the backend only through store.h: the front
 * door (store.c) reaches it through its table of operations, rg_pg_ops
 * (backend.h), chosen when rg_store_open is given a "postgresql://" or
 * "postgres://" URL. Nothing outside runtime/store/ includes this header.
 *
 * Ownership: rg_pg_ops.open creates the backend's state (one libpq
 * connection), the front door owns it and frees it with rg_pg_ops.close.
 */
#ifndef RG_PG_H
#define RG_PG_H

#include "store/backend.h"

/* The PostgreSQL backend's state (struct rg_backend of pg.c). */
typedef struct rg_backend rg_pg;

/* Runs sql with n text (fmt NULL or 0) or binary (1) parameters: its
 * result, or NULL with the error kept (rg_store_errmsg); *constraint (may
 * be NULL) 1 when a constraint refused it. For statements that run now and
 * then (pg_protosets.c), which are not prepared. */
struct pg_result;
struct pg_result *rg_pg_query(rg_pg *pg, const char *sql, int n, const char *const *v,
                              const int *len, const int *fmt, int *constraint);

/* Protocol versions, event bodies and shadow feeds (pg_protosets.c), as
 * store.h's. */
int rg_pg_protoset_add(rg_pg *pg, const rg_protoset *v, const char *const *paths,
                       const char *const *contents, const size_t *lens, int nfiles);
int rg_pg_protoset_each(rg_pg *pg, const char *clinic,
                        int (*fn)(void *ud, const rg_protoset *v), void *ud);
int rg_pg_protoset_files(rg_pg *pg, const char *clinic, const char *id,
                         int (*fn)(void *ud, const char *path, const char *content, size_t len),
                         void *ud);
int rg_pg_protoset_update(rg_pg *pg, const rg_protoset *v);
int rg_pg_protoset_log(rg_pg *pg, const char *clinic, const char *id, const char *action,
                       const char *by, rg_time at, rg_time effective);
int rg_pg_protoset_each_log(rg_pg *pg, const char *clinic, const char *id,
                            int (*fn)(void *ud, const char *id, const char *action,
                                      const char *by, rg_time at, rg_time effective),
                            void *ud);
int rg_pg_each_event_body(rg_pg *pg, const char *clinic,
                          int (*fn)(void *ud, const char *body, size_t len), void *ud);
int rg_pg_each_event_body_after(rg_pg *pg, const char *clinic, int64_t after,
                                int (*fn)(void *ud, int64_t seq, const char *body, size_t len),
                                void *ud);
int rg_pg_shadow_put(rg_pg *pg, const char *set, const rg_transition *t);
int rg_pg_shadow_each(rg_pg *pg, const char *clinic, const char *set, rg_time since,
                      int (*fn)(void *ud, const rg_transition *t), void *ud);

#endif
