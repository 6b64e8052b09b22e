/*
 * oidc.c - OpenID Connect bearer tokens (oidc.h): a JWT's three base64url
 * parts decoded with OpenSSL's EVP_DecodeBlock (base64url turned into base64
 * first), its header and claims read with jansson, its signature checked
 * with OpenSSL's EVP_DigestVerify against the key of the JWKS file whose
 * "kid" it names: RS256 (RSASSA-PKCS1-v1_5 with SHA-256, the key built from
 * the JWK's n and e) or ES256 (ECDSA P-256 with SHA-256, the key from x and
 * y; the JWS signature's raw r||s turned into the DER OpenSSL verifies).
 * "none" and every other algorithm are refused, and the algorithm must be the
 * key's (a JWK's "alg" when it has one, else its kty's).
 */
#include "service/oidc.h"

#include "core/event.h"

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define RG__MAX_KEYS 16
#define RG__MAX_JWT 16384

typedef struct rg__jwk {
    char kid[128];
    int es; /* 1: ES256 (an EC P-256 key), 0: RS256 (RSA) */
    EVP_PKEY *key;
} rg__jwk;

struct rg_oidc {
    char *issuer, *audience, *role_claim, *name_claim;
    json_t *roles; /* claim value -> role name, or NULL: the value is the role */
    const char *const *role_names;
    int nroles, leeway;
    rg__jwk keys[RG__MAX_KEYS];
    int nkeys;
};

/* ---- base64url ------------------------------------------------------------- */

/* Decodes n characters of base64url (no padding) into a new buffer (*len
 * bytes, NUL-terminated); NULL when it is not base64url. */
static unsigned char *rg__b64url(const char *s, size_t n, size_t *len)
{
    if (n % 4 == 1 || n > RG__MAX_JWT)
        return NULL;
    size_t pad = (4 - n % 4) % 4, m = n + pad;
    char *std = malloc(m + 1);
    unsigned char *out = malloc(m / 4 * 3 + 1);
    if (!std || !out) {
        free(std);
        free(out);
        return NULL;
    }
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (c == '+' || c == '/' || c == '=') { /* base64, not base64url */
            free(std);
            free(out);
            return NULL;
        }
        std[i] = c == '-' ? '+' : c == '_' ? '/' : c;
    }
    memset(std + n, '=', pad);
    std[m] = '\0';
    int got = m ? EVP_DecodeBlock(out, (const unsigned char *)std, (int)m) : 0;
    free(std);
    if (got < 0 || (size_t)got < pad) {
        free(out);
        return NULL;
    }
    *len = (size_t)got - pad; /* EVP_DecodeBlock counts the padding as zero bytes */
    out[*len] = '\0';
    return out;
}

/* A base64url JSON member of a JWK as a BIGNUM (NULL when missing or bad). */
static BIGNUM *rg__bn(json_t *jwk, const char *name)
{
    const char *v = json_string_value(json_object_get(jwk, name));
    size_t len;
    unsigned char *b = v ? rg__b64url(v, strlen(v), &len) : NULL;
    BIGNUM *bn = b && len ? BN_bin2bn(b, (int)len, NULL) : NULL;
    free(b);
    return bn;
}

/* ---- keys ------------------------------------------------------------------- */

static EVP_PKEY *rg__fromdata(const char *type, OSSL_PARAM_BLD *bld)
{
    OSSL_PARAM *params = OSSL_PARAM_BLD_to_param(bld);
    EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_name(NULL, type, NULL);
    EVP_PKEY *key = NULL;
    if (!params || !ctx || EVP_PKEY_fromdata_init(ctx) <= 0 ||
        EVP_PKEY_fromdata(ctx, &key, EVP_PKEY_PUBLIC_KEY, params) <= 0)
        key = NULL;
    EVP_PKEY_CTX_free(ctx);
    OSSL_PARAM_free(params);
    return key;
}

static EVP_PKEY *rg__rsa_key(json_t *jwk)
{
    BIGNUM *n = rg__bn(jwk, "n"), *e = rg__bn(jwk, "e");
    OSSL_PARAM_BLD *bld = OSSL_PARAM_BLD_new();
    EVP_PKEY *key = NULL;
    if (n && e && bld && BN_num_bits(n) >= 2048 &&
        OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_N, n) &&
        OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_E, e))
        key = rg__fromdata("RSA", bld);
    OSSL_PARAM_BLD_free(bld);
    BN_free(n);
    BN_free(e);
    return key;
}

static EVP_PKEY *rg__ec_key(json_t *jwk)
{
    const char *crv = json_string_value(json_object_get(jwk, "crv"));
    const char *xs = json_string_value(json_object_get(jwk, "x"));
    const char *ys = json_string_value(json_object_get(jwk, "y"));
    size_t xl = 0, yl = 0;
    unsigned char *x = xs ? rg__b64url(xs, strlen(xs), &xl) : NULL;
    unsigned char *y = ys ? rg__b64url(ys, strlen(ys), &yl) : NULL;
    EVP_PKEY *key = NULL;
    if (crv && !strcmp(crv, "P-256") && x && y && xl == 32 && yl == 32) {
        unsigned char pub[65] = {0x04}; /* an uncompressed point */
        memcpy(pub + 1, x, 32);
        memcpy(pub + 33, y, 32);
        OSSL_PARAM_BLD *bld = OSSL_PARAM_BLD_new();
        if (bld && OSSL_PARAM_BLD_push_utf8_string(bld, OSSL_PKEY_PARAM_GROUP_NAME, "prime256v1",
                                                   0) &&
            OSSL_PARAM_BLD_push_octet_string(bld, OSSL_PKEY_PARAM_PUB_KEY, pub, sizeof pub))
            key = rg__fromdata("EC", bld);
        OSSL_PARAM_BLD_free(bld);
    }
    free(x);
    free(y);
    return key;
}

/* The JWKS file's signing keys: RSA (2048 bits or more) and EC P-256. */
static int rg__load_jwks(rg_oidc *o, const char *file, const char *path, const char *field,
                         char *err, size_t errlen)
{
    size_t len = 0;
    errno = 0;
    char *text = rg_slurp(file, &len);
    json_error_t je;
    json_t *root = text ? rg_json_loadb(text, len, 0, &je) : NULL;
    free(text);
    if (!root)
        return rg_fail(err, errlen, RG_EINVAL, "%s: %s.jwks: %s: %s", path, field, file,
                       errno && !len ? strerror(errno)
                                     : "expected a JWKS (JSON {\"keys\": [...]})");
    json_t *keys = json_object_get(root, "keys"), *jwk;
    size_t i;
    json_array_foreach(keys, i, jwk) {
        const char *kty = json_string_value(json_object_get(jwk, "kty"));
        const char *use = json_string_value(json_object_get(jwk, "use"));
        const char *alg = json_string_value(json_object_get(jwk, "alg"));
        const char *kid = json_string_value(json_object_get(jwk, "kid"));
        if (!kty || (use && strcmp(use, "sig")))
            continue;
        int es = !strcmp(kty, "EC");
        if ((!es && strcmp(kty, "RSA")) || (alg && strcmp(alg, es ? "ES256" : "RS256")))
            continue; /* a key this service does not verify with */
        if (o->nkeys == RG__MAX_KEYS)
            break;
        EVP_PKEY *k = es ? rg__ec_key(jwk) : rg__rsa_key(jwk);
        if (!k) {
            json_decref(root);
            return rg_fail(err, errlen, RG_EINVAL,
                           "%s: %s.jwks: %s: key %zu (kid %s) is not a usable %s key (RSA: n "
                           "and e of 2048 bits or more; EC: crv P-256, x and y)",
                           path, field, file, i, kid ? kid : "none", kty);
        }
        rg__jwk *slot = &o->keys[o->nkeys++];
        snprintf(slot->kid, sizeof slot->kid, "%s", kid ? kid : "");
        slot->es = es;
        slot->key = k;
    }
    json_decref(root);
    if (!o->nkeys)
        return rg_fail(err, errlen, RG_EINVAL,
                       "%s: %s.jwks: %s: expected at least one signing key (RSA for RS256, EC "
                       "P-256 for ES256)",
                       path, field, file);
    return RG_OK;
}

/* ---- configuration ------------------------------------------------------------ */

int rg_oidc_load(json_t *cfg, const char *base, const char *path, const char *field,
                 const char *const *roles, int nroles, rg_oidc **out, char *err, size_t errlen)
{
    const char *k;
    json_t *v;
    *out = NULL;
    if (!json_is_object(cfg))
        return rg_fail(err, errlen, RG_EINVAL,
                       "%s: %s: expected { \"issuer\", \"audience\", \"jwks\", \"role_claim\" }",
                       path, field);
    json_object_foreach(cfg, k, v) {
        static const char *const known[] = {"issuer", "audience", "jwks", "role_claim", "roles",
                                            "name_claim", "leeway_s"};
        size_t i;
        for (i = 0; i < sizeof known / sizeof *known && strcmp(known[i], k); i++)
            ;
        if (i == sizeof known / sizeof *known)
            return rg_fail(err, errlen, RG_EINVAL,
                           "%s: %s.%s: unknown setting (known: issuer, audience, jwks, role_claim, "
                           "roles, name_claim, leeway_s)",
                           path, field, k);
    }
    static const char *const need[] = {"issuer", "audience", "jwks", "role_claim"};
    for (size_t i = 0; i < 4; i++) {
        const char *s = json_string_value(json_object_get(cfg, need[i]));
        if (!s || !*s)
            return rg_fail(err, errlen, RG_EINVAL, "%s: %s.%s: expected a string", path, field,
                           need[i]);
    }
    json_t *map = json_object_get(cfg, "roles"), *lee = json_object_get(cfg, "leeway_s");
    json_t *name = json_object_get(cfg, "name_claim");
    if (map) {
        if (!json_is_object(map))
            return rg_fail(err, errlen, RG_EINVAL,
                           "%s: %s.roles: expected { \"claim value\": \"role\", ... }", path,
                           field);
        json_object_foreach(map, k, v) {
            int r = 0;
            while (r < nroles && (!json_is_string(v) || strcmp(roles[r], json_string_value(v))))
                r++;
            if (r == nroles)
                return rg_fail(err, errlen, RG_EINVAL,
                               "%s: %s.roles.%s: expected a role (nurse, prescriber, admin, "
                               "auditor, integration)",
                               path, field, k);
        }
    }
    if (lee && (!json_is_integer(lee) || json_integer_value(lee) < 0 ||
                json_integer_value(lee) > 600))
        return rg_fail(err, errlen, RG_EINVAL, "%s: %s.leeway_s: expected 0 to 600 seconds", path,
                       field);
    if (name && !json_is_string(name))
        return rg_fail(err, errlen, RG_EINVAL, "%s: %s.name_claim: expected a claim's name",
                       path, field);
    rg_oidc *o = calloc(1, sizeof *o);
    if (!o)
        return rg_fail(err, errlen, RG_ENOMEM, "out of memory");
    o->issuer = strdup(json_string_value(json_object_get(cfg, "issuer")));
    o->audience = strdup(json_string_value(json_object_get(cfg, "audience")));
    o->role_claim = strdup(json_string_value(json_object_get(cfg, "role_claim")));
    o->name_claim = strdup(name ? json_string_value(name) : "sub");
    o->roles = map ? json_incref(map) : NULL;
    o->role_names = roles;
    o->nroles = nroles;
    o->leeway = lee ? (int)json_integer_value(lee) : 60;
    if (!o->issuer || !o->audience || !o->role_claim || !o->name_claim) {
        rg_oidc_free(o);
        return rg_fail(err, errlen, RG_ENOMEM, "out of memory");
    }
    const char *jwks = json_string_value(json_object_get(cfg, "jwks"));
    char file[4096];
    snprintf(file, sizeof file, "%.2000s%s%.2000s", jwks[0] == '/' ? "" : base,
             jwks[0] == '/' ? "" : "/", jwks);
    int rc = rg__load_jwks(o, file, path, field, err, errlen);
    if (rc) {
        rg_oidc_free(o);
        return rc;
    }
    *out = o;
    return RG_OK;
}

void rg_oidc_free(rg_oidc *o)
{
    if (!o)
        return;
    for (int i = 0; i < o->nkeys; i++)
        EVP_PKEY_free(o->keys[i].key);
    free(o->issuer);
    free(o->audience);
    free(o->role_claim);
    free(o->name_claim);
    json_decref(o->roles);
    free(o);
}

const char *rg_oidc_issuer(const rg_oidc *o) { return o->issuer; }

/* ---- verification -------------------------------------------------------------- */

int rg_oidc_is_jwt(const char *jwt)
{
    const char *a = strchr(jwt, '.'), *b = a ? strchr(a + 1, '.') : NULL;
    return a && b && !strchr(b + 1, '.') && a > jwt && b > a + 1 && b[1];
}

/* A decoded JSON part of the token, or NULL. */
static json_t *rg__part(const char *s, size_t n)
{
    size_t len;
    unsigned char *b = rg__b64url(s, n, &len);
    json_error_t je;
    json_t *j = b ? rg_json_loadb((const char *)b, len, 0, &je) : NULL;
    free(b);
    if (j && !json_is_object(j)) {
        json_decref(j);
        j = NULL;
    }
    return j;
}

/* The JWS signature of an ES256 token (r||s, 32 bytes each) as DER. */
static unsigned char *rg__es_der(const unsigned char *sig, size_t len, size_t *dlen)
{
    if (len != 64)
        return NULL;
    ECDSA_SIG *es = ECDSA_SIG_new();
    BIGNUM *r = BN_bin2bn(sig, 32, NULL), *s = BN_bin2bn(sig + 32, 32, NULL);
    unsigned char *der = NULL;
    if (es && r && s && ECDSA_SIG_set0(es, r, s)) {
        r = s = NULL; /* the signature's now */
        int n = i2d_ECDSA_SIG(es, &der);
        if (n <= 0)
            der = NULL;
        else
            *dlen = (size_t)n;
    }
    BN_free(r);
    BN_free(s);
    ECDSA_SIG_free(es);
    return der;
}

static int rg__sig_ok(const rg__jwk *k, const char *signed_part, size_t slen,
                      const unsigned char *sig, size_t siglen)
{
    unsigned char *der = NULL;
    size_t dlen = 0;
    if (k->es && !(der = rg__es_der(sig, siglen, &dlen)))
        return 0;
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    int ok = ctx && EVP_DigestVerifyInit(ctx, NULL, EVP_sha256(), NULL, k->key) == 1 &&
             EVP_DigestVerify(ctx, der ? der : sig, der ? dlen : siglen,
                              (const unsigned char *)signed_part, slen) == 1;
    EVP_MD_CTX_free(ctx);
    OPENSSL_free(der);
    return ok;
}

/* The audience claim names ours (a string, or an array of strings). */
static int rg__aud_ok(json_t *aud, const char *want)
{
    if (json_is_string(aud))
        return !strcmp(json_string_value(aud), want);
    size_t i;
    json_t *a;
    json_array_foreach(aud, i, a) {
        if (json_is_string(a) && !strcmp(json_string_value(a), want))
            return 1;
    }
    return 0;
}

/* The role a claim value maps to, or -1. */
static int rg__role(const rg_oidc *o, const char *value)
{
    const char *name = value;
    if (o->roles)
        name = json_string_value(json_object_get(o->roles, value));
    for (int r = 0; name && r < o->nroles; r++)
        if (!strcmp(o->role_names[r], name))
            return r;
    return -1;
}

int rg_oidc_verify(const rg_oidc *o, const char *jwt, long long now, char *name, size_t namelen,
                   int *role, char *why, size_t whylen)
{
    size_t n = strlen(jwt);
    const char *d1 = strchr(jwt, '.'), *d2 = d1 ? strchr(d1 + 1, '.') : NULL;
    if (n > RG__MAX_JWT || !d1 || !d2)
        return RG_ENOTFOUND;
    json_t *head = rg__part(jwt, (size_t)(d1 - jwt));
    json_t *claims = rg__part(d1 + 1, (size_t)(d2 - d1 - 1));
    size_t siglen = 0;
    unsigned char *sig = rg__b64url(d2 + 1, strlen(d2 + 1), &siglen);
    int rc = RG_ENOTFOUND;
    if (!head || !claims || !sig)
        goto done; /* not a JWT of anyone's */
    const char *iss = json_string_value(json_object_get(claims, "iss"));
    if (!iss || strcmp(iss, o->issuer) || !rg__aud_ok(json_object_get(claims, "aud"), o->audience))
        goto done; /* another provider's, or for another audience */
    rc = RG_EINVAL;
    const char *alg = json_string_value(json_object_get(head, "alg"));
    const char *kid = json_string_value(json_object_get(head, "kid"));
    int es = alg && !strcmp(alg, "ES256");
    if (!alg || (!es && strcmp(alg, "RS256"))) {
        rg_fail(why, whylen, rc, "the token's alg must be RS256 or ES256");
        goto done;
    }
    const rg__jwk *key = NULL;
    for (int i = 0; i < o->nkeys && !key; i++)
        if (o->keys[i].es == es && (kid ? !strcmp(o->keys[i].kid, kid) : o->nkeys == 1))
            key = &o->keys[i];
    if (!key) {
        rg_fail(why, whylen, rc, "no key of the identity provider's JWKS matches the token "
                "(kid %.100s, %s)", kid ? kid : "none", alg);
        goto done;
    }
    if (!rg__sig_ok(key, jwt, (size_t)(d2 - jwt), sig, siglen)) {
        rg_fail(why, whylen, rc, "the token's signature does not verify");
        goto done;
    }
    json_t *exp = json_object_get(claims, "exp"), *nbf = json_object_get(claims, "nbf");
    if (!json_is_number(exp) || now > (long long)json_number_value(exp) + o->leeway) {
        rg_fail(why, whylen, rc, "the token has expired (or has no exp)");
        goto done;
    }
    if (nbf && (!json_is_number(nbf) || now + o->leeway < (long long)json_number_value(nbf))) {
        rg_fail(why, whylen, rc, "the token is not valid yet (nbf)");
        goto done;
    }
    const char *who = json_string_value(json_object_get(claims, o->name_claim));
    if (!who || !*who) {
        rg_fail(why, whylen, rc, "the token has no %s claim", o->name_claim);
        goto done;
    }
    json_t *rv = json_object_get(claims, o->role_claim), *x;
    int r = -1;
    size_t i;
    if (json_is_string(rv))
        r = rg__role(o, json_string_value(rv));
    json_array_foreach(rv, i, x) {
        if (r < 0 && json_is_string(x))
            r = rg__role(o, json_string_value(x));
    }
    if (r < 0) {
        rg_fail(why, whylen, rc, "the token's %s claim gives no role of this service",
                o->role_claim);
        goto done;
    }
    snprintf(name, namelen, "%s", who);
    *role = r;
    rc = RG_OK;
done:
    json_decref(head);
    json_decref(claims);
    free(sig);
    return rc;
}
