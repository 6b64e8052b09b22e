/*
 * holder.h - who holds a store: one service (or one sweep or simulation) per
 * SQLite file, and the notice other writers give it after they commit.
 *
 * The holder keeps an exclusive fcntl lock on a file beside the database,
 * "<db>.lock" (never on the database itself: SQLite's own fcntl locks on it
 * would be released when we closed a descriptor of ours). The kernel drops
 * the lock when the holder exits, kill -9 included, so a lock file left
 * behind means nothing; the file is never removed (removing it would let two
 * processes lock two different files of the same name). It also says who
 * holds it: "<kind> <pid> <address>".
 *
 * A writer that is not the holder (regimen ingest, and any command storing
 * events) calls rg_holder_notify after each commit: when a service holds the
 * store, it gets RG_HOLDER_SIGNAL, on which it reads the store's earliest
 * wake-up again. Nothing is sent, and nothing costs, while nobody writes.
 *
 * Ownership: rg_holder_take creates the handle, the caller owns it and frees
 * it (releasing the lock) with rg_holder_release.
 */
#ifndef RG_HOLDER_H
#define RG_HOLDER_H

#include "core/rg.h"

#include <limits.h>
#include <signal.h>
#include <sys/types.h>

#define RG_HOLDER_SIGNAL SIGUSR1

typedef struct rg_holder rg_holder;

/* Who holds a store: the pid the kernel gives for the lock, and what the
 * holder wrote (kind "serve", "sweep", "simulate"; address "127.0.0.1:7878"
 * for a service, "" otherwise). */
typedef struct rg_holder_info {
    pid_t pid;
    char kind[16], addr[128];
    char lock[PATH_MAX];
} rg_holder_info;

/* Takes the store at db_path for kind. When another process holds it, fails
 * with RG_EBUSY and one line naming the file and that process. ":memory:"
 * has no holder (*out stays NULL, RG_OK). */
int rg_holder_take(rg_holder **out, const char *db_path, const char *kind, char *err,
                   size_t errlen);
/* Records the address the holder serves on (after it listens). */
int rg_holder_describe(rg_holder *h, const char *addr);
void rg_holder_release(rg_holder *h);

/* 1 when another process holds db_path (info filled in), 0 when nobody does,
 * RG_EIO when the lock file cannot be read. Does not take the lock, so it
 * never makes a service that starts at that moment think the store taken. */
int rg_holder_find(const char *db_path, rg_holder_info *info);

/* After a commit to db_path: tells the service holding it, if any, to look
 * at the store again. Returns 1 when a service was told, 0 when no service
 * holds it, RG_EIO when one does but cannot be signalled (errno says why:
 * EPERM for a service of another user). */
int rg_holder_notify(const char *db_path);

/* "regimen serve (pid 123, listening on 127.0.0.1:7878)" for messages. */
const char *rg_holder_who(const rg_holder_info *info, char *buf, size_t len);

#endif
