/*
 * holder.c - one holder per store, and the notice writers give it (see
 * holder.h). POSIX only: fcntl record locks and kill(2).
 *
 * Classic fcntl locks, not flock or OFD locks, because F_GETLK on them tells
 * a writer the pid of the process that holds the lock right now, from the
 * kernel: a pid read from the file alone could be that of a holder long gone
 * (and of an unrelated process by now). A writer signals only when both
 * agree, and only a holder of kind "serve". Probing with F_GETLK takes no
 * lock, so it can never make a service starting at that moment fail.
 *
 * A record lock belongs to the process and is released when the process
 * closes ANY descriptor of the file, so the holder opens the lock file once
 * and keeps that one descriptor until rg_holder_release.
 */
#include "store/holder.h"
#include "store/store.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct rg_holder {
    int fd;
    char kind[16];
};

/* The lock file this process holds, if any: rg_holder_find never opens (and
 * closes) it, which would release our own lock. */
static char rg__held[PATH_MAX];
static pid_t rg__held_by; /* a child made by fork holds no lock of ours */

/* "<db>.lock" beside the file itself: a symlink to the database, or a path
 * spelt another way, finds the same lock (the callers open the database
 * first, so it exists; if it does not, the path as given). */
static int rg__lock_path(const char *db_path, char *out, size_t len)
{
    char *real = realpath(db_path, NULL);
    int n = snprintf(out, len, "%s.lock", real ? real : db_path);
    free(real);
    return n > 0 && (size_t)n < len ? RG_OK : RG_EINVAL;
}

/* Writes "<kind> <pid> <addr>\n" in place of what the file said: over it,
 * then cut to its length, so a reader never finds the file empty (rg__probe
 * reads the first line's words only). */
static int rg__write(rg_holder *h, const char *addr)
{
    char line[256];
    int n = snprintf(line, sizeof line, "%s %ld %s\n", h->kind, (long)getpid(), addr);
    if (n < 0 || (size_t)n >= sizeof line || pwrite(h->fd, line, (size_t)n, 0) != n ||
        ftruncate(h->fd, n) != 0)
        return RG_EIO;
    return RG_OK;
}

/* What the lock file at fd says, with the pid the kernel gives for its lock
 * (0 when nobody holds it). */
static int rg__probe(int fd, rg_holder_info *info)
{
    struct flock fl = {.l_type = F_WRLCK, .l_whence = SEEK_SET};
    char text[256];
    info->pid = 0;
    info->kind[0] = info->addr[0] = '\0';
    if (fcntl(fd, F_GETLK, &fl) != 0)
        return RG_EIO;
    if (fl.l_type == F_UNLCK)
        return 0;
    info->pid = fl.l_pid;
    ssize_t n = pread(fd, text, sizeof text - 1, 0);
    text[n > 0 ? n : 0] = '\0';
    long pid = 0;
    char kind[16] = "", addr[128] = "";
    /* a holder that has not written yet, or a file from an older holder:
     * the kind is only believed when the pid in it is the lock's */
    if (sscanf(text, "%15s %ld %127s", kind, &pid, addr) >= 2 && pid == (long)fl.l_pid) {
        snprintf(info->kind, sizeof info->kind, "%s", kind);
        snprintf(info->addr, sizeof info->addr, "%s", addr);
    }
    return 1;
}

const char *rg_holder_who(const rg_holder_info *info, char *buf, size_t len)
{
    if (!strcmp(info->kind, "serve") && info->addr[0] && strcmp(info->addr, "starting"))
        snprintf(buf, len, "regimen serve (pid %ld, listening on %s)", (long)info->pid,
                 info->addr);
    else if (info->kind[0])
        snprintf(buf, len, "regimen %s (pid %ld)", info->kind, (long)info->pid);
    else
        snprintf(buf, len, "process %ld", (long)info->pid);
    return buf;
}

int rg_holder_take(rg_holder **out, const char *db_path, const char *kind, char *err,
                   size_t errlen)
{
    char lock[PATH_MAX];
    *out = NULL;
    if (!strcmp(db_path, ":memory:") || rg_store_is_server(db_path))
        return RG_OK; /* PostgreSQL: the database arbitrates (pg.c) */
    if (rg__lock_path(db_path, lock, sizeof lock))
        return rg_fail(err, errlen, RG_EINVAL, "database path %s is too long", db_path);
    int fd = open(lock, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0)
        return rg_fail(err, errlen, RG_EIO, "cannot create lock file %s: %s", lock,
                       strerror(errno));
    struct flock fl = {.l_type = F_WRLCK, .l_whence = SEEK_SET};
    if (fcntl(fd, F_SETLK, &fl) != 0) {
        int e = errno;
        rg_holder_info info;
        char who[256];
        int held = (e == EACCES || e == EAGAIN) && rg__probe(fd, &info) == 1;
        close(fd);
        if (!held)
            return rg_fail(err, errlen, RG_EIO, "cannot lock %s: %s", lock, strerror(e));
        return rg_fail(err, errlen, RG_EBUSY,
                       "database %s is in use by %s; one service (or sweep, or simulation) "
                       "per database at a time (lock file %s)",
                       db_path, rg_holder_who(&info, who, sizeof who), lock);
    }
    rg_holder *h = calloc(1, sizeof *h);
    if (!h) {
        close(fd);
        return rg_fail(err, errlen, RG_ENOMEM, "out of memory");
    }
    h->fd = fd;
    snprintf(rg__held, sizeof rg__held, "%s", lock);
    rg__held_by = getpid();
    snprintf(h->kind, sizeof h->kind, "%s", kind);
    if (rg__write(h, "starting")) {
        rg_holder_release(h);
        return rg_fail(err, errlen, RG_EIO, "cannot write lock file %s: %s", lock,
                       strerror(errno));
    }
    *out = h;
    return RG_OK;
}

int rg_holder_describe(rg_holder *h, const char *addr) { return h ? rg__write(h, addr) : RG_OK; }

void rg_holder_release(rg_holder *h)
{
    if (!h)
        return;
    close(h->fd); /* releases the lock; the file stays (see holder.h) */
    rg__held[0] = '\0';
    free(h);
}

int rg_holder_find(const char *db_path, rg_holder_info *info)
{
    memset(info, 0, sizeof *info);
    if (!strcmp(db_path, ":memory:") || rg_store_is_server(db_path) ||
        rg__lock_path(db_path, info->lock, sizeof info->lock))
        return 0;
    if (rg__held_by == getpid() && !strcmp(info->lock, rg__held))
        return 0; /* we hold it ourselves */
    int fd = open(info->lock, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return errno == ENOENT ? 0 : RG_EIO;
    int rc = rg__probe(fd, info);
    close(fd); /* we hold no lock on it: closing releases nothing of ours */
    return rc;
}

int rg_holder_notify(const char *db_path)
{
    rg_holder_info info;
    if (rg_holder_find(db_path, &info) != 1 || strcmp(info.kind, "serve") != 0)
        return 0;
    return kill(info.pid, RG_HOLDER_SIGNAL) == 0 ? 1 : RG_EIO; /* EPERM: another user's */
}
