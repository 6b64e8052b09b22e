/*
 * governance.h - a clinic's protocol set as an immutable version
 * (docs/governance.md): captured from a directory, named by the SHA-256 of
 * its files, written back out to a private directory to be evaluated by the
 * normal loader, and replayed over the clinic's stored history so that two
 * versions can be compared with rg_diff (the engine of `regimen diff`).
 */
#ifndef RG_GOVERNANCE_H
#define RG_GOVERNANCE_H

#include "engine.h"
#include "store.h"

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

#endif
