/*
 * protocols_live.c - the service runs the protocol versions activated in the
 * store (docs/governance.md) when its configuration says
 * "protocol_changes": "approval". The version in force for a clinic is the
 * latest activation or rollback (protocol_set_log) whose time has come; it
 * is written out to a private directory (governance.c) and goes live through
 * serve.c's reload, the same gate and the same re-evaluation as a file
 * saved in development. serve.c asks at start, on every notice of another
 * writer (RG_HOLDER_SIGNAL: `regimen protocols activate` sends it) and once
 * a second (activations --at a later time). The same reads find each
 * clinic's shadow version (in any mode), which the evaluation threads run
 * beside the active one (evaluate.c).
 */
#include "service/service.h"

#include "engine/governance.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct rg__in_force {
    rg_time now, best_at;
    char id[65], by[100];
} rg__in_force;

static int rg__consider(void *ud, const char *id, const char *action, const char *by,
                        rg_time at, rg_time effective)
{
    rg__in_force *f = ud;
    (void)at;
    if (strcmp(action, "activated") && strcmp(action, "rolled back to"))
        return 0;
    if (effective <= f->now && effective >= f->best_at) { /* a later entry wins a tie */
        f->best_at = effective;
        snprintf(f->id, sizeof f->id, "%s", id);
        snprintf(f->by, sizeof f->by, "%s", by);
    }
    return 0;
}

/* Directories of versions replaced while the service runs: the clinic may
 * still run one (a refused reload keeps it), so they go at shutdown. */
static char **rg__retired;
static int rg__nretired;

/* 1 when root could not be kept for later (remove it now). */
static int rg__retire(const char *root)
{
    char **grown = realloc(rg__retired, (size_t)(rg__nretired + 1) * sizeof *grown);
    if (!grown)
        return 1;
    rg__retired = grown;
    return !(rg__retired[rg__nretired] = strdup(root)) ? 1 : (rg__nretired++, 0);
}

static int rg__keep_file(void *ud, const char *path, const char *content, size_t len)
{
    return rg_gov_add(ud, path, content, len);
}

/* Each clinic's shadow version as the store has it now (any mode): the
 * next job of the clinic runs it, or stops it (evaluate.c). */
void rg_svc_shadows_take(rg_svc *sv)
{
    for (int i = 0; i < sv->nclinics; i++) {
        rg_svc_clinic *c = &sv->clinics[i];
        char id[65];
        rg_time since;
        if (rg_gov_shadow_of(sv->st, c->name, id, &since, NULL, 0) != RG_OK)
            continue; /* (PostgreSQL before it keeps versions; a store error: next time) */
        if (!strcmp(id, c->shadow) && (!id[0] || since == c->shadow_since))
            continue;
        if (id[0])
            rg_log("info", "clinic %s: protocol version %.12s runs as a shadow", c->name, id);
        else
            rg_log("info", "clinic %s: the shadow version %.12s stopped", c->name, c->shadow);
        snprintf(c->shadow, sizeof c->shadow, "%s", id);
        c->shadow_since = since;
        c->wake = 1; /* its next job builds (or drops) the shadow */
        rg_svc_flush_soon(sv);
    }
}

int rg_svc_versions_take(rg_svc *sv)
{
    int changed = 0;
    rg_svc_shadows_take(sv);
    if (!sv->approval)
        return 0;
    for (int i = 0; i < sv->nclinics; i++) {
        rg_svc_clinic *c = &sv->clinics[i];
        if (c->gone)
            continue;
        rg__in_force f = {.now = rg_now(), .best_at = RG_TIME_NONE};
        if (rg_store_protoset_each_log(sv->st, c->name, NULL, rg__consider, &f) != RG_OK ||
            !f.id[0] || !strcmp(f.id, c->version))
            continue;
        rg_gov_files files = {0};
        char root[PATH_MAX], err[1024];
        int rc = rg_store_protoset_files(sv->st, c->name, f.id, rg__keep_file, &files);
        if (rc == RG_OK)
            rc = rg_gov_materialize(&files, root, sizeof root, err, sizeof err);
        else
            snprintf(err, sizeof err, "reading its files: %s", rg_strerror(rc));
        rg_gov_free(&files);
        if (rc) {
            rg_log("error", "clinic %s: protocol version %.12s cannot be taken up: %s", c->name,
                   f.id, err);
            continue;
        }
        rg_log("info", "clinic %s: protocol version %.12s is in force", c->name, f.id);
        if (c->version_root[0] && rg__retire(c->version_root)) /* loaded code may still read it */
            rg_gov_remove(c->version_root);
        snprintf(c->version, sizeof c->version, "%s", f.id);
        snprintf(c->version_root, sizeof c->version_root, "%s", root);
        c->version_new = 1;
        /* the re-evaluation's transitions name who activated it */
        snprintf(c->wake_by, sizeof c->wake_by, "protocol activation by %s", f.by);
        changed++;
    }
    return changed;
}

void rg_svc_clinic_source_r(rg_svc *sv, int i, char *d, char *s, size_t size, const char **dir,
                            const char **shipped)
{
    const rg_svc_clinic *c = &sv->clinics[i];
    if (!c->version[0]) {
        *dir = c->dir;
        *shipped = sv->shipped[0] ? sv->shipped : NULL;
        return;
    }
    snprintf(d, size, "%s/clinic", c->version_root);
    snprintf(s, size, "%s/shipped", c->version_root);
    *dir = d;
    *shipped = s;
}

void rg_svc_clinic_source(rg_svc *sv, int i, const char **dir, const char **shipped)
{
    static char d[PATH_MAX + 16], s[PATH_MAX + 16]; /* the loop's */
    rg_svc_clinic_source_r(sv, i, d, s, sizeof d, dir, shipped);
}

void rg_svc_versions_free(rg_svc *sv)
{
    for (int i = 0; i < rg__nretired; i++) {
        rg_gov_remove(rg__retired[i]);
        free(rg__retired[i]);
    }
    free(rg__retired);
    rg__retired = NULL;
    rg__nretired = 0;
    for (int i = 0; i < sv->nclinics; i++)
        if (sv->clinics[i].version_root[0]) {
            rg_gov_remove(sv->clinics[i].version_root);
            sv->clinics[i].version_root[0] = sv->clinics[i].version[0] = '\0';
        }
}
