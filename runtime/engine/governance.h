/*
 * governance.h - a clinic's protocol set as an immutable version
 * (docs/governance.md): captured from a directory, named by the SHA-256 of
 * its files, written back out to a private directory to be evaluated by the
 * normal loader, and replayed over the clinic's stored history so that two
 * versions can be compared (rg_diff_compute, engine/diff.h, the engine of
 * `regimen diff`). What a comparison finds goes to a writer (rg_gov_writer;
 * present/diff.h prints it); nothing here prints.
 */
#ifndef RG_GOVERNANCE_H
#define RG_GOVERNANCE_H

#include "engine/diff.h"
#include "engine/engine.h"
#include "store/store.h"

#include <stddef.h>

/* A version's files: "clinic/..." (the clinic's directory) and
 * "shipped/..." (the shipped sets it may include), in path order. */
typedef struct rg_gov_files {
    char **paths, **contents;
    size_t *lens;
    int n;
    char id[65]; /* SHA-256 of the paths and contents, lower-case hex */
} rg_gov_files;

/* Reads every regular file under dir (as clinic/...) and under shipped (as
 * shipped/..., when not NULL) into f, and computes f->id. Dot files are
 * left out. RG_EINVAL with err when dir cannot be read. */
int rg_gov_capture(rg_gov_files *f, const char *dir, const char *shipped, char *err,
                   size_t errlen);
/* Adds one file (a copy of content); rg_gov_hash then names the set. */
int rg_gov_add(rg_gov_files *f, const char *path, const char *content, size_t len);
void rg_gov_hash(rg_gov_files *f);
void rg_gov_free(rg_gov_files *f);

/* Writes f into a new private directory (mkdtemp) whose path goes to root
 * (PATH_MAX bytes): root/clinic is the clinic's directory, root/shipped the
 * shipped root. rg_gov_remove deletes it again. */
int rg_gov_materialize(const rg_gov_files *f, char *root, size_t rootlen, char *err,
                       size_t errlen);
void rg_gov_remove(const char *root);

/* The clinic's stored events in src (every version, as received) replayed
 * into a new in-memory store evaluated under dir (with shipped) to until:
 * the caller owns *out and *eng. errors counts evaluation errors. */
int rg_gov_replay(rg_store *src, const char *clinic, const char *dir, const char *shipped,
                  const rg_limits *lim, rg_time until, rg_store **out, rg_engine **eng,
                  char *err, size_t errlen);

/* A clinic's versions, copied out of the store (rg_gov_versions). */
typedef struct rg_gov_ver {
    char id[65], state[16], by[256], approved_by[256], message[1024];
    int64_t n;
    rg_time proposed_at, approved_at, active_from;
    int approved;
} rg_gov_ver;

typedef struct rg_gov_vers {
    rg_gov_ver *v;
    int n;
} rg_gov_vers;

/* The clinic's versions, oldest first (free vs->v). */
int rg_gov_versions(rg_store *st, const char *clinic, rg_gov_vers *vs);
/* The version named by ref (its id or a unique prefix), or NULL with why
 * (no such version, or more than one). */
rg_gov_ver *rg_gov_find(rg_gov_vers *vs, const char *clinic, const char *ref, char *why,
                        size_t whylen);
/* The version whose state is "active", or NULL. */
rg_gov_ver *rg_gov_active(rg_gov_vers *vs);

/* what ("approve", "activate" or "rollback") done to version ref of clinic
 * by the person by; at: when an activation or rollback takes effect.
 * RG_OK with what was done in msg ("version 0415b3e39c26 approved by bob
 * at ..."); RG_ENOTFOUND (no such version) or RG_ECONFLICT (refused: the
 * proposer approving, a version not approved, ...) with why in msg; another
 * error when the store failed. */
int rg_gov_change(rg_store *st, const char *clinic, const char *what, const char *ref,
                  const char *by, rg_time at, char *msg, size_t msglen);

/* What rg_gov_propose and rg_gov_diff find, told to a writer as they go
 * (present/diff.h's rg_gov_printer prints it as `regimen protocols` does):
 * stored: the proposal was stored as version id; no_active: no version of
 * clinic is active, and the old side is the shipped default (shipped 1) or
 * there is nothing to compare with (0); errors: the "active" or "new" side
 * had that many evaluation errors on the history, so no diff; diff: the
 * comparison, OLD against NEW, eng knowing the clinic's zone. */
typedef struct rg_gov_writer {
    void (*stored)(void *ud, const char *id);
    void (*no_active)(void *ud, const char *clinic, int shipped);
    void (*errors)(void *ud, const char *side, long long errors);
    void (*diff)(void *ud, const rg_diff *d, rg_engine *eng);
    void *ud;
} rg_gov_writer;

/* Proposes the directory dir (with the shipped root, when not NULL) as the
 * next version of clinic, as `regimen protocols propose` does: the files
 * captured, proven by the full check (rg_clinic_gate, scenario tests
 * included) on the very files stored, stored by `by` with message, then
 * the version stored and the diff over the clinic's stored history up to
 * until (the active version, or the shipped default, against it) told to w.
 * RG_OK with id set (the diff may have failed after: see why); RG_ECONFLICT
 * refused (the same files again, or the check failed: why names the file and
 * line, the clinic directory shown as `shown`, or the files' own relative
 * paths when shown is NULL); RG_EINVAL dir unreadable; other errors. */
int rg_gov_propose(rg_store *st, const char *clinic, const char *dir, const char *shown,
                   const char *shipped, const char *by, const char *message, rg_time until,
                   const rg_gov_writer *w, char id[65], char *why, size_t whylen);
/* Writes stored version id out (rg_gov_materialize) into root. */
int rg_gov_write_out(rg_store *st, const char *clinic, const char *id, char *root,
                     size_t rootlen, char *err, size_t errlen);
/* What replacing old_root's version by new_root's does to clinic's stored
 * history up to until (as `regimen diff`), told to w. old_root
 * NULL: no version is active, and the old side is the shipped default (the
 * ketamine set, as simulate runs a clinic without a directory). */
int rg_gov_diff(rg_store *st, const char *clinic, const char *old_root, const char *new_root,
                const char *shipped_root, rg_time until, const rg_gov_writer *w, char *err,
                size_t errlen);

/* ---- shadow (docs/governance.md, "Shadow"): a proposed or approved version
 * runs beside the active one, its transitions in shadow_transitions. The
 * clinic's shadow is the last version "shadowed" in protocol_set_log, until
 * a "shadow stopped", or an activation or rollback of that version, comes
 * after it; a new shadow replaces the one before. */
/* The clinic's shadow now: id ("" for none), since when, and who set it. */
int rg_gov_shadow_of(rg_store *st, const char *clinic, char id[65], rg_time *since,
                     char *by, size_t bylen);
/* Makes version ref the clinic's shadow from now (ref NULL: stops the
 * shadow). Answers as rg_gov_change. */
int rg_gov_shadow(rg_store *st, const char *clinic, const char *ref, const char *by, char *msg,
                  size_t msglen);
/* The running comparison of shadow version id (since: when it began) with
 * the clinic's feed over the same time into d (rg_diff_free, also after an
 * error): OLD is the active feed, NEW the shadow. The number of
 * differences, or a negative error. */
long rg_gov_shadow_report(rg_store *st, const char *clinic, const char *id, rg_time since,
                          rg_diff *d);

#endif
