/*
 * oidc.h - OpenID Connect bearer tokens for `regimen serve` (oidc.c): a
 * clinic's identity provider signs an ID or access token (a JWT, RS256 or
 * ES256); the service verifies it against the provider's keys, read from a
 * JWKS file named in the configuration, checks iss, aud, exp and nbf (with a
 * small leeway) and maps a configured claim to one of the roles
 * (docs/service.md, "OpenID Connect").
 *
 * Ownership: rg_oidc_load makes a verifier from a clinic's "oidc" object
 * (its keys read at once); rg_oidc_free frees it.
 */
#ifndef RG_OIDC_H
#define RG_OIDC_H

#include "core/rg.h"

#include <jansson.h>
#include <stddef.h>

typedef struct rg_oidc rg_oidc;

/* cfg: {"issuer", "audience", "jwks" (a file, relative to base), "role_claim",
 * "roles" (claim value -> role, optional), "name_claim" (default "sub"),
 * "leeway_s" (default 60)}; roles[nroles] are the role names a claim may
 * give. An error names path and field. */
int rg_oidc_load(json_t *cfg, const char *base, const char *path, const char *field,
                 const char *const *roles, int nroles, rg_oidc **out, char *err, size_t errlen);
void rg_oidc_free(rg_oidc *o);
const char *rg_oidc_issuer(const rg_oidc *o);

/* 1 when jwt looks like a JWT (three base64url parts): a bearer value that
 * is not one is an API key. */
int rg_oidc_is_jwt(const char *jwt);

/* Verifies jwt for this provider at now (Unix seconds): RG_OK with the
 * person's name (name_claim) and role index; RG_ENOTFOUND when the token is
 * not this provider's (another iss or aud); RG_EINVAL when it is but fails
 * (signature, time, role), why saying which. */
int rg_oidc_verify(const rg_oidc *o, const char *jwt, long long now, char *name, size_t namelen,
                   int *role, char *why, size_t whylen);

#endif
