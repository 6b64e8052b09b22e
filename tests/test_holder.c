/*
 * test_holder.c - Criterion tests for runtime/store/holder.c: one holder per
 * store, what other processes learn of it, and the notice a writer sends.
 * The other processes are real ones (fork): record locks do not conflict
 * within one process.
 */
#include "store/holder.h"

#include <criterion/criterion.h>

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static char dir[256], db[512];

static void setup(void)
{
    snprintf(dir, sizeof dir, "/tmp/regimen-holder-test-XXXXXX");
    cr_assert_not_null(mkdtemp(dir), "mkdtemp: %s", strerror(errno));
    snprintf(db, sizeof db, "%s/q.db", dir);
}

static void teardown(void)
{
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    cr_assert_eq(system(cmd), 0);
}

TestSuite(holder, .init = setup, .fini = teardown);

/* Runs fn in a child process; returns its exit status. */
static int in_child(int (*fn)(void))
{
    fflush(NULL);
    pid_t pid = fork();
    cr_assert_neq(pid, -1);
    if (pid == 0)
        _exit(fn());
    int status;
    cr_assert_eq(waitpid(pid, &status, 0), pid);
    return WIFEXITED(status) ? WEXITSTATUS(status) : 100 + WTERMSIG(status);
}

static int child_takes(void)
{
    rg_holder *h;
    char err[1024], want[700];
    int rc = rg_holder_take(&h, db, "serve", err, sizeof err);
    if (rc == RG_OK) {
        rg_holder_release(h);
        return 0;
    }
    snprintf(want, sizeof want,
             "database %s is in use by regimen serve (pid %d, listening on 127.0.0.1:7878)", db,
             (int)getppid());
    return rc == RG_EBUSY && strstr(err, want) && !strchr(err, '\n') ? 1 : 2;
}

static int child_finds(void)
{
    rg_holder_info info;
    int rc = rg_holder_find(db, &info);
    if (rc == 0)
        return 0;
    return rc == 1 && info.pid == getppid() && !strcmp(info.kind, "serve") &&
                   !strcmp(info.addr, "127.0.0.1:7878")
               ? 1
               : 2;
}

static int child_notifies(void) { return rg_holder_notify(db); }

static volatile sig_atomic_t notices;
static void on_notice(int sig)
{
    (void)sig;
    notices++;
}

Test(holder, one_holder_at_a_time_and_others_learn_who)
{
    rg_holder *h;
    char err[1024];
    cr_assert_eq(in_child(child_finds), 0, "nobody holds a store without a lock file");
    cr_assert_eq(rg_holder_take(&h, db, "serve", err, sizeof err), RG_OK, "%s", err);
    cr_assert_eq(rg_holder_describe(h, "127.0.0.1:7878"), RG_OK);
    cr_assert_eq(in_child(child_takes), 1, "a second holder is refused, naming the first");
    cr_assert_eq(in_child(child_finds), 1, "a writer learns the holder's pid, kind, address");

    /* a writer's notice reaches the holder */
    signal(RG_HOLDER_SIGNAL, on_notice);
    notices = 0;
    cr_assert_eq(in_child(child_notifies), 1);
    for (int i = 0; i < 100 && !notices; i++)
        usleep(10000);
    cr_assert_eq(notices, 1);

    rg_holder_release(h);
    cr_assert_eq(in_child(child_finds), 0, "released: nobody holds it");
    cr_assert_eq(in_child(child_notifies), 0, "and nobody is told");
    cr_assert_eq(in_child(child_takes), 0, "and it can be taken again");
    signal(RG_HOLDER_SIGNAL, SIG_DFL);
}

/* Only a service is sent the notice: a sweep holding the store is left alone
 * (the signal would stop a process that does not handle it). */
Test(holder, a_sweep_holding_the_store_is_not_signalled)
{
    rg_holder *h;
    char err[1024];
    cr_assert_eq(rg_holder_take(&h, db, "sweep", err, sizeof err), RG_OK, "%s", err);
    cr_assert_eq(in_child(child_notifies), 0);
    rg_holder_release(h);
}

/* The holder's own process does not find itself (which would, by opening and
 * closing the lock file, release its own lock). */
Test(holder, the_holder_does_not_find_itself_nor_lose_its_lock)
{
    rg_holder *h;
    rg_holder_info info;
    char err[1024];
    cr_assert_eq(rg_holder_take(&h, db, "serve", err, sizeof err), RG_OK, "%s", err);
    cr_assert_eq(rg_holder_describe(h, "127.0.0.1:7878"), RG_OK);
    cr_assert_eq(rg_holder_find(db, &info), 0);
    cr_assert_eq(rg_holder_notify(db), 0);
    cr_assert_eq(in_child(child_takes), 1, "still held");
    rg_holder_release(h);
}

static char link_db[600];
static int child_takes_the_link(void)
{
    rg_holder *h;
    char err[1024];
    int rc = rg_holder_take(&h, link_db, "serve", err, sizeof err);
    rg_holder_release(h);
    return rc == RG_EBUSY ? 1 : 0;
}

/* A symlink to the database (or a path spelt another way) finds the same
 * lock: the lock file is named after the file itself. */
Test(holder, a_symlink_to_the_database_finds_the_same_holder)
{
    rg_holder *h;
    char err[1024];
    FILE *f = fopen(db, "w");
    cr_assert_not_null(f);
    fclose(f);
    snprintf(link_db, sizeof link_db, "%s/other-name.db", dir);
    cr_assert_eq(symlink(db, link_db), 0, "%s", strerror(errno));
    cr_assert_eq(rg_holder_take(&h, db, "serve", err, sizeof err), RG_OK, "%s", err);
    cr_assert_eq(in_child(child_takes_the_link), 1);
    rg_holder_release(h);
    cr_assert_eq(in_child(child_takes_the_link), 0);
}

Test(holder, memory_stores_have_no_holder)
{
    rg_holder *h = (rg_holder *)1;
    char err[64];
    rg_holder_info info;
    cr_assert_eq(rg_holder_take(&h, ":memory:", "simulate", err, sizeof err), RG_OK);
    cr_assert_null(h);
    cr_assert_eq(rg_holder_find(":memory:", &info), 0);
}

Test(holder, a_lock_file_that_cannot_be_made_names_the_path)
{
    rg_holder *h;
    char err[1024], path[600];
    snprintf(path, sizeof path, "%s/missing/q.db", dir);
    cr_assert_eq(rg_holder_take(&h, path, "serve", err, sizeof err), RG_EIO);
    cr_assert(strstr(err, "cannot create lock file") && strstr(err, "missing/q.db.lock") &&
                  strstr(err, "No such file or directory"),
              "%s", err);
}
