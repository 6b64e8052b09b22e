/*
 * governance.c - protocol versions as files (see governance.h): capture a
 * directory, name it by SHA-256 (libsodium), write a stored version back out
 * to a private directory so the one loader (clinic.c) and the one engine
 * (rg_engine_advance) evaluate it, and replay a clinic's stored history
 * under a version for rg_diff_compute. Depends on engine.c, ingest.c and the store.
 */
#include "engine/governance.h"

#include "engine/gate.h"
#include "store/ingest.h"

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define RG__MAX_FILE (4u << 20) /* bytes of one file of a version */
#define RG__MAX_FILES 4096

int rg_gov_add(rg_gov_files *f, const char *path, const char *content, size_t len)
{
    if (f->n >= RG__MAX_FILES)
        return RG_ELIMIT;
    char **p = realloc(f->paths, (size_t)(f->n + 1) * sizeof *p);
    if (!p)
        return RG_ENOMEM;
    f->paths = p;
    char **c = realloc(f->contents, (size_t)(f->n + 1) * sizeof *c);
    if (!c)
        return RG_ENOMEM;
    f->contents = c;
    size_t *l = realloc(f->lens, (size_t)(f->n + 1) * sizeof *l);
    if (!l)
        return RG_ENOMEM;
    f->lens = l;
    char *copy = malloc(len + 1);
    char *name = strdup(path);
    if (!copy || !name) {
        free(copy);
        free(name);
        return RG_ENOMEM;
    }
    memcpy(copy, content, len);
    copy[len] = '\0';
    f->paths[f->n] = name;
    f->contents[f->n] = copy;
    f->lens[f->n++] = len;
    return RG_OK;
}

void rg_gov_free(rg_gov_files *f)
{
    for (int i = 0; i < f->n; i++) {
        free(f->paths[i]);
        free(f->contents[i]);
    }
    free(f->paths);
    free(f->contents);
    free(f->lens);
    memset(f, 0, sizeof *f);
}

static int rg__cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Every regular file under path (shown as prefix/...), names in order. */
static int rg__walk(rg_gov_files *f, const char *path, const char *prefix, int depth,
                    char *err, size_t errlen)
{
    DIR *d = depth < 8 ? opendir(path) : NULL;
    if (!d)
        return depth ? RG_OK
                     : rg_fail(err, errlen, RG_EINVAL, "%s: cannot read the directory (%s)",
                               path, strerror(errno));
    char **names = NULL;
    int n = 0, rc = RG_OK;
    struct dirent *de;
    while ((de = readdir(d))) {
        if (de->d_name[0] == '.')
            continue;
        char **grown = realloc(names, (size_t)(n + 1) * sizeof *names);
        if (!grown || !(grown[n] = strdup(de->d_name))) {
            names = grown ? grown : names;
            rc = RG_ENOMEM;
            break;
        }
        names = grown;
        n++;
    }
    closedir(d);
    if (n)
        qsort(names, (size_t)n, sizeof *names, rg__cmp);
    for (int i = 0; i < n; i++) {
        char full[PATH_MAX], rel[PATH_MAX];
        struct stat sb;
        snprintf(full, sizeof full, "%s/%s", path, names[i]);
        snprintf(rel, sizeof rel, "%s/%s", prefix, names[i]);
        if (rc == RG_OK && stat(full, &sb) == 0) {
            if (S_ISDIR(sb.st_mode)) {
                rc = rg__walk(f, full, rel, depth + 1, err, errlen);
            } else if (S_ISREG(sb.st_mode)) {
                if ((size_t)sb.st_size > RG__MAX_FILE) {
                    rc = rg_fail(err, errlen, RG_ELIMIT, "%s: %lld bytes, more than a protocol "
                                 "version keeps of one file (%u)", full,
                                 (long long)sb.st_size, RG__MAX_FILE);
                } else {
                    size_t len = 0;
                    char *text = rg_slurp(full, &len);
                    rc = text ? rg_gov_add(f, rel, text, len)
                              : rg_fail(err, errlen, RG_EIO, "%s: cannot read (%s)", full,
                                        strerror(errno));
                    free(text);
                }
            }
        }
        free(names[i]);
    }
    free(names);
    if (rc == RG_ENOMEM || rc == RG_ELIMIT)
        if (!err[0])
            rg_fail(err, errlen, rc, "%s: %s", path, rg_strerror(rc));
    return rc;
}

void rg_gov_hash(rg_gov_files *f)
{
    /* paths in order, each as path NUL length(8 bytes) content */
    int *order = malloc((size_t)(f->n ? f->n : 1) * sizeof *order);
    crypto_hash_sha256_state h;
    crypto_hash_sha256_init(&h);
    for (int i = 0; order && i < f->n; i++)
        order[i] = i;
    for (int i = 1; order && i < f->n; i++) /* insertion sort: files come mostly in order */
        for (int j = i; j > 0 && strcmp(f->paths[order[j - 1]], f->paths[order[j]]) > 0; j--) {
            int t = order[j];
            order[j] = order[j - 1];
            order[j - 1] = t;
        }
    for (int k = 0; k < f->n; k++) {
        int i = order ? order[k] : k;
        unsigned char len[8];
        for (int b = 0; b < 8; b++)
            len[b] = (unsigned char)((uint64_t)f->lens[i] >> (8 * b));
        crypto_hash_sha256_update(&h, (const unsigned char *)f->paths[i],
                                  strlen(f->paths[i]) + 1);
        crypto_hash_sha256_update(&h, len, sizeof len);
        crypto_hash_sha256_update(&h, (const unsigned char *)f->contents[i], f->lens[i]);
    }
    unsigned char out[crypto_hash_sha256_BYTES];
    crypto_hash_sha256_final(&h, out);
    sodium_bin2hex(f->id, sizeof f->id, out, sizeof out);
    free(order);
}

int rg_gov_capture(rg_gov_files *f, const char *dir, const char *shipped, char *err,
                   size_t errlen)
{
    memset(f, 0, sizeof *f);
    err[0] = '\0';
    int rc = rg__walk(f, dir, "clinic", 0, err, errlen);
    if (rc == RG_OK && shipped)
        rc = rg__walk(f, shipped, "shipped", 0, err, errlen);
    if (rc == RG_OK && sodium_init() < 0)
        rc = rg_fail(err, errlen, RG_EIO, "%s", "libsodium could not start");
    if (rc) {
        rg_gov_free(f);
        return rc;
    }
    rg_gov_hash(f);
    return RG_OK;
}

/* mkdir -p for the directories of path (not path itself). */
static int rg__mkdirs(char *path)
{
    for (char *s = strchr(path + 1, '/'); s; s = strchr(s + 1, '/')) {
        *s = '\0';
        int rc = mkdir(path, 0700);
        *s = '/';
        if (rc && errno != EEXIST)
            return RG_EIO;
    }
    return RG_OK;
}

int rg_gov_materialize(const rg_gov_files *f, char *root, size_t rootlen, char *err,
                       size_t errlen)
{
    const char *tmp = getenv("TMPDIR");
    snprintf(root, rootlen, "%s/regimen-version-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (!mkdtemp(root))
        return rg_fail(err, errlen, RG_EIO, "%s: cannot make a directory (%s)", root,
                       strerror(errno));
    char clinic[PATH_MAX];
    snprintf(clinic, sizeof clinic, "%s/clinic", root);
    mkdir(clinic, 0700);
    for (int i = 0; i < f->n; i++) {
        char full[PATH_MAX];
        /* a stored path is relative and never climbs out */
        if (f->paths[i][0] == '/' || strstr(f->paths[i], "..")) {
            rg_gov_remove(root);
            return rg_fail(err, errlen, RG_EINVAL, "version file %s: not a plain relative path",
                           f->paths[i]);
        }
        snprintf(full, sizeof full, "%s/%s", root, f->paths[i]);
        FILE *out = rg__mkdirs(full) ? NULL : fopen(full, "wb");
        int ok = out && fwrite(f->contents[i], 1, f->lens[i], out) == f->lens[i];
        if (out && fclose(out))
            ok = 0;
        if (!ok) {
            rg_gov_remove(root);
            return rg_fail(err, errlen, RG_EIO, "%s: cannot write (%s)", full, strerror(errno));
        }
    }
    return RG_OK;
}

static void rg__rm(const char *path, int depth)
{
    DIR *d = depth < 10 ? opendir(path) : NULL;
    if (d) {
        struct dirent *de;
        while ((de = readdir(d))) {
            if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
                continue;
            char full[PATH_MAX];
            struct stat sb;
            snprintf(full, sizeof full, "%s/%s", path, de->d_name);
            if (lstat(full, &sb) == 0 && S_ISDIR(sb.st_mode))
                rg__rm(full, depth + 1);
            else
                unlink(full);
        }
        closedir(d);
    }
    rmdir(path);
}

void rg_gov_remove(const char *root)
{
    if (root && *root)
        rg__rm(root, 0);
}

typedef struct rg__replay {
    rg_store *dst;
    rg_ingest_counts counts;
    long line;
    int rc;
} rg__replay;

static int rg__replay_one(void *ud, const char *body, size_t len)
{
    rg__replay *r = ud;
    int rc = rg_ingest_one(r->dst, body, len, "store", ++r->line, &r->counts, NULL, NULL);
    if (rc < 0) {
        r->rc = rc;
        return 1;
    }
    return 0;
}

int rg_gov_replay(rg_store *src, const char *clinic, const char *dir, const char *shipped,
                  const rg_limits *lim, rg_time until, rg_store **out, rg_engine **eng,
                  char *err, size_t errlen)
{
    rg_store *st = NULL;
    rg_engine *e = NULL;
    *out = NULL;
    *eng = NULL;
    int rc = rg_store_open(&st, ":memory:", NULL, err, errlen);
    if (rc)
        return rc;
    rg__replay r = {.dst = st, .counts = {.skew = -1}};
    if ((rc = rg_store_begin(st)) == RG_OK) {
        int frc = rg_store_each_event_body(src, clinic, rg__replay_one, &r);
        rc = r.rc ? r.rc : frc < 0 ? frc : RG_OK;
        if (rc == RG_OK)
            rc = rg_store_commit(st);
        else
            rg_store_rollback(st);
    }
    if (rc) {
        rg_fail(err, errlen, rc, "reading clinic %s's stored events: %s", clinic,
                rg_strerror(rc));
        goto fail;
    }
    rg_engine_opts eo = {.limits = *lim, .shipped = shipped, .default_dir = dir};
    if ((rc = rg_engine_new(&e, st, &eo))) {
        rg_fail(err, errlen, rc, "%s", "out of memory");
        goto fail;
    }
    if ((rc = rg_engine_set_clinic(e, clinic, dir, err, errlen)))
        goto fail;
    long n = rg_engine_advance_all(e, RG_TIME_NONE, until);
    if (n < 0) {
        rc = (int)n;
        rg_fail(err, errlen, rc, "replaying clinic %s: %s", clinic, rg_strerror(rc));
        goto fail;
    }
    *out = st;
    *eng = e;
    return RG_OK;
fail:
    rg_engine_free(e);
    rg_store_close(st);
    return rc;
}

static int rg__keep_ver(void *ud, const rg_protoset *p)
{
    rg_gov_vers *vs = ud;
    rg_gov_ver *grown = realloc(vs->v, (size_t)(vs->n + 1) * sizeof *grown);
    if (!grown)
        return RG_ENOMEM;
    vs->v = grown;
    rg_gov_ver *v = &vs->v[vs->n++];
    memset(v, 0, sizeof *v);
    snprintf(v->id, sizeof v->id, "%s", p->id);
    snprintf(v->state, sizeof v->state, "%s", p->state);
    snprintf(v->by, sizeof v->by, "%s", p->proposed_by);
    snprintf(v->message, sizeof v->message, "%s", p->message ? p->message : "");
    if ((v->approved = p->approved_by != NULL))
        snprintf(v->approved_by, sizeof v->approved_by, "%s", p->approved_by);
    v->n = p->n;
    v->proposed_at = p->proposed_at;
    v->approved_at = p->approved_at;
    v->active_from = p->active_from;
    return 0;
}

int rg_gov_versions(rg_store *st, const char *clinic, rg_gov_vers *vs)
{
    memset(vs, 0, sizeof *vs);
    int rc = rg_store_protoset_each(st, clinic, rg__keep_ver, vs);
    if (rc) {
        free(vs->v);
        memset(vs, 0, sizeof *vs);
    }
    return rc;
}

rg_gov_ver *rg_gov_find(rg_gov_vers *vs, const char *clinic, const char *ref, char *why,
                        size_t whylen)
{
    rg_gov_ver *found = NULL;
    size_t len = strlen(ref);
    int n = 0;
    for (int i = 0; i < vs->n && len; i++)
        if (!strncmp(vs->v[i].id, ref, len)) {
            found = &vs->v[i];
            n++;
        }
    if (n == 1)
        return found;
    if (n)
        snprintf(why, whylen, "%s names more than one version; give more of its id", ref);
    else
        snprintf(why, whylen, "no version %s of clinic %s", ref, clinic);
    return NULL;
}

rg_gov_ver *rg_gov_active(rg_gov_vers *vs)
{
    for (int i = 0; i < vs->n; i++)
        if (!strcmp(vs->v[i].state, "active"))
            return &vs->v[i];
    return NULL;
}

/* Stores v's state, approval and time in force. */
static int rg__put_ver(rg_store *st, const char *clinic, const rg_gov_ver *v)
{
    rg_protoset p = {.clinic = clinic, .id = v->id, .state = v->state,
                     .approved_by = v->approved ? v->approved_by : NULL,
                     .approved_at = v->approved ? v->approved_at : RG_TIME_NONE,
                     .active_from = v->active_from};
    return rg_store_protoset_update(st, &p);
}

/* Ends a change's transaction: commits it when rc (what went before) is
 * RG_OK, else rolls it back; a failure is said in msg. */
static int rg__finish(rg_store *st, int rc, char *msg, size_t msglen)
{
    if (!rc)
        rc = rg_store_commit(st);
    else
        rg_store_rollback(st);
    if (rc)
        snprintf(msg, msglen, "storing: %s (%s)", rg_strerror(rc), rg_store_errmsg(st));
    return rc;
}

int rg_gov_change(rg_store *st, const char *clinic, const char *what, const char *ref,
                  const char *by, rg_time at, char *msg, size_t msglen)
{
    rg_gov_vers vs;
    int rc = rg_gov_versions(st, clinic, &vs);
    if (rc) {
        snprintf(msg, msglen, "reading the versions: %s", rg_strerror(rc));
        return rc;
    }
    rg_gov_ver *v = rg_gov_find(&vs, clinic, ref, msg, msglen);
    rg_gov_ver *act = rg_gov_active(&vs);
    rg_time now = rg_now();
    const char *action = what;
    int approve = !strcmp(what, "approve"), rollback = !strcmp(what, "rollback");
    rc = RG_ECONFLICT;
    if (!v) {
        rc = RG_ENOTFOUND;
        goto done;
    }
    if (approve) {
        if (v->approved) {
            snprintf(msg, msglen, "version %.12s is approved already (by %s)", v->id,
                     v->approved_by);
            goto done;
        }
        if (strcmp(v->state, "proposed")) {
            snprintf(msg, msglen, "version %.12s is %s: only a proposed version is approved",
                     v->id, v->state);
            goto done;
        }
        if (!strcmp(v->by, by)) {
            snprintf(msg, msglen, "%s proposed version %.12s: another person must approve it",
                     by, v->id);
            goto done;
        }
        v->approved = 1;
        snprintf(v->approved_by, sizeof v->approved_by, "%s", by);
        v->approved_at = now;
        snprintf(v->state, sizeof v->state, "approved");
        action = "approved";
    } else if (!rollback) {
        if (!v->approved) {
            snprintf(msg, msglen, "version %.12s is not approved: it needs the approval of "
                     "someone other than who proposed it first", v->id);
            goto done;
        }
        if (strcmp(v->state, "approved")) {
            snprintf(msg, msglen, "version %.12s is %s: activate an approved version, roll "
                     "back to an earlier one", v->id, v->state);
            goto done;
        }
        action = "activated";
    } else {
        if (v == act) {
            snprintf(msg, msglen, "version %.12s is the active one already", v->id);
            goto done;
        }
        if (strcmp(v->state, "superseded") && strcmp(v->state, "rolled back")) {
            snprintf(msg, msglen, "version %.12s is %s: roll back only to a version that was "
                     "active before", v->id, v->state);
            goto done;
        }
        action = "rolled back to";
    }
    if (!approve) {
        snprintf(v->state, sizeof v->state, "active");
        v->active_from = at;
        if (act)
            snprintf(act->state, sizeof act->state, "%s", rollback ? "rolled back" : "superseded");
    }
    rc = rg_store_begin(st);
    if (!rc)
        rc = rg__put_ver(st, clinic, v);
    if (!rc)
        rc = rg_store_protoset_log(st, clinic, v->id, action, by, now, approve ? now : at);
    if (!rc && act && act != v && !approve)
        rc = rg__put_ver(st, clinic, act);
    if ((rc = rg__finish(st, rc, msg, msglen)))
        goto done;
    char when[RG_TIME_BUFSZ];
    if (rollback)
        snprintf(msg, msglen, "version %.12s active again: rolled back by %s at %s", v->id, by,
                 rg_time_format(at, when));
    else
        snprintf(msg, msglen, "version %.12s %s by %s at %s", v->id, action, by,
                 rg_time_format(approve ? now : at, when));
done:
    free(vs.v);
    return rc;
}

/* ---- shadow ------------------------------------------------------------------------------ */

typedef struct rg__shadow_scan {
    char id[65];
    rg_time since;
    char by[256];
} rg__shadow_scan;

static int rg__shadow_consider(void *ud, const char *id, const char *action, const char *by,
                               rg_time at, rg_time effective)
{
    rg__shadow_scan *s = ud;
    (void)effective;
    if (!strcmp(action, "shadowed")) {
        snprintf(s->id, sizeof s->id, "%s", id);
        snprintf(s->by, sizeof s->by, "%s", by);
        s->since = at;
    } else if (!strcmp(action, "shadow stopped") ||
               ((!strcmp(action, "activated") || !strcmp(action, "rolled back to")) &&
                !strcmp(id, s->id))) {
        s->id[0] = '\0';
    }
    return 0;
}

int rg_gov_shadow_of(rg_store *st, const char *clinic, char id[65], rg_time *since, char *by,
                     size_t bylen)
{
    rg__shadow_scan s = {.since = RG_TIME_NONE};
    int rc = rg_store_protoset_each_log(st, clinic, NULL, rg__shadow_consider, &s);
    snprintf(id, 65, "%s", rc ? "" : s.id);
    *since = s.id[0] ? s.since : RG_TIME_NONE;
    if (by && bylen)
        snprintf(by, bylen, "%s", s.id[0] ? s.by : "");
    return rc;
}

int rg_gov_shadow(rg_store *st, const char *clinic, const char *ref, const char *by, char *msg,
                  size_t msglen)
{
    char cur[65], when[RG_TIME_BUFSZ];
    rg_time since, now = rg_now();
    rg_gov_vers vs = {0};
    int rc = rg_gov_shadow_of(st, clinic, cur, &since, NULL, 0);
    if (!rc)
        rc = rg_gov_versions(st, clinic, &vs);
    if (rc) {
        snprintf(msg, msglen, "reading the versions: %s", rg_strerror(rc));
        return rc;
    }
    rg_gov_ver *v = NULL;
    if (!ref) {
        if (!cur[0]) {
            snprintf(msg, msglen, "clinic %s has no shadow version", clinic);
            rc = RG_ECONFLICT;
            goto done;
        }
    } else if (!(v = rg_gov_find(&vs, clinic, ref, msg, msglen))) {
        rc = RG_ENOTFOUND;
        goto done;
    } else if (strcmp(v->state, "proposed") && strcmp(v->state, "approved")) {
        snprintf(msg, msglen, "version %.12s is %s: only a proposed or approved version runs as "
                 "a shadow", v->id, v->state);
        rc = RG_ECONFLICT;
        goto done;
    } else if (!strcmp(cur, v->id)) {
        snprintf(msg, msglen, "version %.12s is the shadow already (since %s)", v->id,
                 rg_time_format(since, when));
        rc = RG_ECONFLICT;
        goto done;
    }
    rc = rg_store_begin(st);
    if (!rc)
        rc = rg_store_protoset_log(st, clinic, v ? v->id : cur, v ? "shadowed" : "shadow stopped",
                                   by, now, now);
    if ((rc = rg__finish(st, rc, msg, msglen)))
        goto done;
    rg_time_format(now, when);
    if (!v)
        snprintf(msg, msglen, "version %.12s no longer runs as a shadow: stopped by %s at %s",
                 cur, by, when);
    else if (cur[0])
        snprintf(msg, msglen, "version %.12s runs as a shadow from %s (set by %s), in place of "
                 "version %.12s", v->id, when, by, cur);
    else
        snprintf(msg, msglen, "version %.12s runs as a shadow from %s (set by %s)", v->id, when,
                 by);
done:
    free(vs.v);
    return rc;
}

typedef struct rg__since {
    rg_store *st;
    const char *clinic, *id;
    rg_time since;
    int (*fn)(void *ud, const rg_transition *t);
    void *ud;
    int64_t last; /* cseq read up to */
} rg__since;

static int rg__since_one(void *ud, const rg_transition *t)
{
    rg__since *s = ud;
    s->last = t->cseq;
    return t->at >= s->since ? s->fn(s->ud, t) : 0;
}

/* The clinic's feed from since on (a page at a time). */
static int rg__active_each(void *src, int (*fn)(void *ud, const rg_transition *t), void *ud)
{
    rg__since *s = src;
    s->fn = fn;
    s->ud = ud;
    s->last = 0;
    for (;;) {
        int64_t before = s->last;
        int rc = rg_store_clinic_transitions(s->st, s->clinic, before, 1000, rg__since_one, s);
        if (rc)
            return rc;
        if (s->last == before)
            return RG_OK;
    }
}

static int rg__shadow_each(void *src, int (*fn)(void *ud, const rg_transition *t), void *ud)
{
    rg__since *s = src;
    return rg_store_shadow_each(s->st, s->clinic, s->id, s->since, fn, ud);
}

long rg_gov_shadow_report(rg_store *st, const char *clinic, const char *id, rg_time since,
                          rg_diff *d)
{
    rg__since s = {.st = st, .clinic = clinic, .id = id, .since = since};
    return rg_diff_compute(rg__active_each, &s, rg__shadow_each, &s, d);
}

/* ---- propose (the command line's and the service's) ------------------------------------- */

static int rg__gov_file(void *ud, const char *path, const char *content, size_t len)
{
    return rg_gov_add(ud, path, content, len);
}

int rg_gov_write_out(rg_store *st, const char *clinic, const char *id, char *root,
                     size_t rootlen, char *err, size_t errlen)
{
    rg_gov_files f = {0};
    int rc = rg_store_protoset_files(st, clinic, id, rg__gov_file, &f);
    if (rc)
        rg_fail(err, errlen, rc, "reading version %.12s: %s", id, rg_strerror(rc));
    else
        rc = rg_gov_materialize(&f, root, rootlen, err, errlen);
    rg_gov_free(&f);
    return rc;
}

int rg_gov_diff(rg_store *st, const char *clinic, const char *old_root, const char *new_root,
                const char *shipped_root, rg_time until, const rg_gov_writer *w, char *err,
                size_t errlen)
{
    if (!old_root && !shipped_root) {
        w->no_active(w->ud, clinic, 0);
        return RG_OK;
    }
    if (!old_root)
        w->no_active(w->ud, clinic, 1);
    rg_store *s[2] = {NULL, NULL};
    rg_engine *e[2] = {NULL, NULL};
    const char *roots[2] = {old_root, new_root};
    rg_limits lim = RG_LIMITS_DEFAULT;
    int rc = RG_OK, skip = 0;
    for (int i = 0; i < 2 && !rc && !skip; i++) {
        char dir[PATH_MAX + 16], shipped[PATH_MAX + 16];
        if (roots[i]) {
            snprintf(dir, sizeof dir, "%s/clinic", roots[i]);
            snprintf(shipped, sizeof shipped, "%s/shipped", roots[i]);
        } else {
            snprintf(dir, sizeof dir, "%s/ketamine", shipped_root);
            snprintf(shipped, sizeof shipped, "%s", shipped_root);
        }
        if ((rc = rg_gov_replay(st, clinic, dir, shipped, &lim, until, &s[i], &e[i], err,
                                errlen))) {
        } else if (rg_engine_stats_get(e[i])->errors) {
            w->errors(w->ud, i ? "new" : "active", (long long)rg_engine_stats_get(e[i])->errors);
            skip = 1;
        }
    }
    if (!rc && !skip) {
        rg_diff d;
        long n = rg_diff_compute_stores(s[0], s[1], &d);
        if (n < 0)
            rc = rg_fail(err, errlen, (int)n, "comparing: %s", rg_strerror((int)n));
        else
            w->diff(w->ud, &d, e[1]);
        rg_diff_free(&d);
    }
    for (int i = 0; i < 2; i++) {
        rg_engine_free(e[i]);
        rg_store_close(s[i]);
    }
    return rc;
}

/* text with every "from" replaced by "to", into out (outlen bytes). */
static void rg__replace(const char *text, const char *from, const char *to, char *out,
                        size_t outlen)
{
    size_t len = 0, fl = strlen(from);
    out[0] = '\0';
    for (const char *p = text, *hit; *p && len < outlen - 1; p = hit + fl) {
        if (!fl || !(hit = strstr(p, from))) {
            snprintf(out + len, outlen - len, "%s", p);
            break;
        }
        len += (size_t)snprintf(out + len, outlen - len, "%.*s%s", (int)(hit - p), p, to);
    }
    out[outlen - 1] = '\0';
}

int rg_gov_propose(rg_store *st, const char *clinic, const char *dir, const char *shown,
                   const char *shipped, const char *by, const char *message, rg_time until,
                   const rg_gov_writer *w, char id[65], char *why, size_t whylen)
{
    rg_gov_files f;
    char err[4096], root[PATH_MAX], active_root[PATH_MAX];
    id[0] = '\0';
    why[0] = '\0';
    int rc = rg_gov_capture(&f, dir, shipped, err, sizeof err);
    if (rc) {
        snprintf(why, whylen, "%s", err);
        return rc == RG_EINVAL || rc == RG_ELIMIT ? RG_EINVAL : rc;
    }
    rg_gov_vers vs;
    if ((rc = rg_gov_versions(st, clinic, &vs))) {
        rg_gov_free(&f);
        snprintf(why, whylen, "reading the versions: %s (%s)", rg_strerror(rc),
                 rg_store_errmsg(st));
        return rc;
    }
    for (int i = 0; i < vs.n; i++)
        if (!strcmp(vs.v[i].id, f.id)) {
            snprintf(why, whylen, "these files are version %.12s already (%s)", f.id,
                     vs.v[i].state);
            rc = RG_ECONFLICT;
            goto done;
        }
    /* the check runs on the files as they will be stored */
    if ((rc = rg_gov_materialize(&f, root, sizeof root, why, whylen)))
        goto done;
    char cdir[PATH_MAX + 16], sdir[PATH_MAX + 16];
    snprintf(cdir, sizeof cdir, "%s/clinic", root);
    snprintf(sdir, sizeof sdir, "%s/shipped", root);
    rg_limits lim = RG_LIMITS_DEFAULT;
    int g = rg_clinic_gate(clinic, cdir, shipped ? sdir : NULL, &lim, err, sizeof err);
    if (g) {
        /* one line: the first of the reason and the first failure, with
         * the temporary path put back */
        char *nl = strchr(err, '\n');
        if (nl) {
            *nl = '\0';
            char *fail = strstr(nl + 1, "FAIL");
            if (!fail)
                fail = strstr(nl + 1, "error:");
            if (fail) {
                fail[strcspn(fail, "\n")] = '\0';
                memmove(err + strlen(err) + 2, fail, strlen(fail) + 1);
                memcpy(err + strlen(err), ": ", 2);
            }
        }
        char line[4096], from[PATH_MAX + 32];
        if (shown) {
            rg__replace(err, cdir, shown, line, sizeof line);
        } else { /* the files' own paths, as they were given */
            snprintf(from, sizeof from, "%s/", cdir);
            rg__replace(err, from, "", line, sizeof line);
        }
        rg_gov_remove(root);
        if (g == RG_ENOMEM) {
            snprintf(why, whylen, "out of memory");
            rc = RG_ENOMEM;
        } else {
            snprintf(why, whylen, "%s does not pass regimen check: %s",
                     shown ? shown : "the proposal", line);
            rc = RG_ECONFLICT;
        }
        goto done;
    }
    rg_protoset v = {.clinic = clinic, .id = f.id, .proposed_by = by,
                     .message = message ? message : "", .proposed_at = rg_now()};
    if ((rc = rg_store_begin(st)) ||
        (rc = rg_store_protoset_add(st, &v, (const char *const *)f.paths,
                                    (const char *const *)f.contents, f.lens, f.n)) ||
        (rc = rg_store_protoset_log(st, clinic, f.id, "proposed", by, v.proposed_at,
                                    v.proposed_at)) ||
        (rc = rg_store_commit(st))) {
        snprintf(why, whylen, "storing the version: %s", rg_store_errmsg(st));
        rg_store_rollback(st);
        rg_gov_remove(root);
        rc = rc == RG_ECONFLICT ? RG_EDB : rc; /* (the same id was checked above) */
        goto done;
    }
    snprintf(id, 65, "%s", f.id);
    w->stored(w->ud, f.id);
    rg_gov_ver *act = rg_gov_active(&vs);
    if (act && (rc = rg_gov_write_out(st, clinic, act->id, active_root, sizeof active_root, why,
                                      whylen)))
        act = NULL;
    if (!rc)
        rc = rg_gov_diff(st, clinic, act ? active_root : NULL, root, shipped, until, w, why,
                         whylen);
    if (act)
        rg_gov_remove(active_root);
    rg_gov_remove(root);
done:
    free(vs.v);
    rg_gov_free(&f);
    return rc;
}
