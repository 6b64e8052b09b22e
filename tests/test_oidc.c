/*
 * test_oidc.c - OpenID Connect bearer tokens (runtime/service/oidc.c)
 * through the real binary: the test makes an RSA and an EC P-256 key pair
 * with the openssl command, writes the JWKS file the configuration names,
 * and signs its own tokens (openssl dgst). An RS256 token whose groups claim
 * maps to nurse reads alerts and acknowledges as "oidc ann (nurse)", but
 * posts no events (403); an ES256 token of an admin reads the clinic's
 * metrics; an expired token, one not valid yet, one for another audience,
 * one tampered with and one with alg "none" are refused (401, saying why).
 */
#define RG_TEST_SERVE
#include "helpers.h"

#include <jansson.h>
#include <openssl/ecdsa.h>
#include <openssl/evp.h>

/* base64url of n bytes, no padding (malloc'd). */
static char *b64url(const unsigned char *p, size_t n)
{
    char *out = malloc(4 * ((n + 2) / 3) + 1);
    int len = EVP_EncodeBlock((unsigned char *)out, p, (int)n);
    while (len > 0 && out[len - 1] == '=')
        len--;
    out[len] = '\0';
    for (char *c = out; *c; c++)
        *c = *c == '+' ? '-' : *c == '/' ? '_' : *c;
    return out;
}

static char *b64url_s(const char *s)
{
    return b64url((const unsigned char *)s, strlen(s));
}

/* Runs a shell command, asserting it worked. */
static void sh(const char *cmd)
{
    int rc = system(cmd);
    cr_assert_eq(rc, 0, "%s: exit %d", cmd, rc);
}

static unsigned char *slurp_bin(const char *path, size_t *n)
{
    FILE *f = fopen(path, "rb");
    cr_assert_not_null(f, "%s", path);
    unsigned char *b = malloc(1 << 16);
    *n = fread(b, 1, 1 << 16, f);
    fclose(f);
    return b;
}

/* A signed token: header {"alg", "kid"} and the claims, signed with the PEM
 * key at keyfile (ES256: the DER signature made raw r||s, as JWS wants). */
static char *sign(const char *dir, const char *alg, const char *kid, const char *keyfile,
                  const char *claims)
{
    char head[128], path[512], cmd[2048];
    snprintf(head, sizeof head, "{\"alg\":\"%s\",\"kid\":\"%s\",\"typ\":\"JWT\"}", alg, kid);
    char *h = b64url_s(head), *c = b64url_s(claims);
    char *input = malloc(strlen(h) + strlen(c) + 2);
    sprintf(input, "%s.%s", h, c);
    rg_test_write(dir, "input", input);
    snprintf(path, sizeof path, "%s/input", dir);
    snprintf(cmd, sizeof cmd, "openssl dgst -sha256 -sign %s -out %s/sig %s", keyfile, dir, path);
    sh(cmd);
    snprintf(path, sizeof path, "%s/sig", dir);
    size_t n;
    unsigned char *sig = slurp_bin(path, &n), raw[64];
    char *s;
    if (!strcmp(alg, "ES256")) {
        const unsigned char *p = sig;
        ECDSA_SIG *es = d2i_ECDSA_SIG(NULL, &p, (long)n);
        cr_assert_not_null(es);
        cr_assert_eq(BN_bn2binpad(ECDSA_SIG_get0_r(es), raw, 32), 32);
        cr_assert_eq(BN_bn2binpad(ECDSA_SIG_get0_s(es), raw + 32, 32), 32);
        ECDSA_SIG_free(es);
        s = b64url(raw, 64);
    } else {
        s = b64url(sig, n);
    }
    char *jwt = malloc(strlen(input) + strlen(s) + 2);
    sprintf(jwt, "%s.%s", input, s);
    free(h);
    free(c);
    free(input);
    free(sig);
    free(s);
    return jwt;
}

/* The JWKS of the two keys, from the openssl command's output. */
static void write_jwks(const char *dir)
{
    char cmd[1024], path[512];
    snprintf(cmd, sizeof cmd,
             "cd %s && openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out rsa.pem "
             "2>/dev/null && openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 "
             "-out ec.pem 2>/dev/null && openssl rsa -in rsa.pem -noout -modulus > rsa.mod && "
             "openssl pkey -in ec.pem -pubout -outform DER | tail -c 65 > ec.pub",
             dir);
    sh(cmd);
    snprintf(path, sizeof path, "%s/rsa.mod", dir);
    char *mod = rg_test_read(path); /* "Modulus=HEX\n" */
    unsigned char n[512];
    size_t nlen = 0;
    for (const char *p = strchr(mod, '=') + 1; p[0] && p[1] && p[0] != '\n'; p += 2) {
        unsigned v;
        sscanf(p, "%2x", &v);
        n[nlen++] = (unsigned char)v;
    }
    free(mod);
    snprintf(path, sizeof path, "%s/ec.pub", dir);
    size_t publen;
    unsigned char *pub = slurp_bin(path, &publen);
    cr_assert_eq(publen, 65);
    char *nb = b64url(n, nlen), *x = b64url(pub + 1, 32), *y = b64url(pub + 33, 32);
    char jwks[4096];
    snprintf(jwks, sizeof jwks,
             "{\"keys\": [ {\"kty\": \"RSA\", \"kid\": \"r1\", \"use\": \"sig\", \"alg\": \"RS256\","
             " \"n\": \"%s\", \"e\": \"AQAB\"},\n"
             " {\"kty\": \"EC\", \"kid\": \"e1\", \"crv\": \"P-256\", \"x\": \"%s\", \"y\": \"%s\"} ] }\n",
             nb, x, y);
    rg_test_write(dir, "idp/jwks.json", jwks);
    free(nb);
    free(x);
    free(y);
    free(pub);
}

static char *claims(const char *aud, long long exp, long long nbf, const char *group)
{
    char *c = malloc(512);
    snprintf(c, 512,
             "{\"iss\":\"https://idp.example.org/realms/north\",\"aud\":[\"%s\",\"other\"],"
             "\"sub\":\"u-123\",\"preferred_username\":\"ann\",\"exp\":%lld,\"nbf\":%lld,"
             "\"groups\":[\"staff\",\"%s\"]}",
             aud, exp, nbf, group);
    return c;
}

Test(oidc, tokens_of_the_clinics_provider_verified_and_mapped_to_roles, .timeout = 90)
{
    server s = {0};
    char *out, keyfile[512], eckey[512];
    server_setup(&s, fast_protocol, fast_protocol);
    write_jwks(s.dir);
    rg_test_write(s.dir, "config.json",
                  "{ \"listen\": \"127.0.0.1:0\", \"clinics\": { \"north\": { \"protocols\": \"a\","
                  " \"tokens\": [\"" TOKEN_A "\"],\n"
                  "  \"oidc\": { \"issuer\": \"https://idp.example.org/realms/north\","
                  " \"audience\": \"regimen\", \"jwks\": \"idp/jwks.json\", \"role_claim\": "
                  "\"groups\", \"roles\": { \"regimen-nurses\": \"nurse\", \"regimen-admins\": "
                  "\"admin\" }, \"name_claim\": \"preferred_username\", \"leeway_s\": 30 } } } }\n");
    server_start(&s);
    snprintf(keyfile, sizeof keyfile, "%s/rsa.pem", s.dir);
    snprintf(eckey, sizeof eckey, "%s/ec.pem", s.dir);
    long long now = now_ms() / 1000;

    /* RS256, a nurse: reads, acknowledges as itself, posts no events */
    char *c = claims("regimen", now + 300, now - 10, "regimen-nurses");
    char *nurse = sign(s.dir, "RS256", "r1", keyfile, c);
    free(c);
    cr_assert_eq(http(s.port, "GET", "/v1/alerts", nurse, NULL, &out), 200, "%s", out);
    free(out);
    char *ev = ping("north", "o1", "p1", now_ms() - 5000, "ping");
    cr_assert_eq(http(s.port, "POST", "/v1/events", nurse, ev, &out), 403, "%s", out);
    cr_assert(strstr(out, "\"needed\":[\"integration\"]"), "%s", out);
    free(out);
    cr_assert_eq(http(s.port, "POST", "/v1/events", TOKEN_A, ev, &out), 200, "%s", out);
    free(out);
    free(ev);
    char key[128] = "";
    for (int64_t end = now_ms() + 10000; !key[0] && now_ms() < end; usleep(50000)) {
        cr_assert_eq(http(s.port, "GET", "/v1/alerts?patient=p1", nurse, NULL, &out), 200);
        json_t *j = json_loads(out, 0, NULL);
        const char *k = json_string_value(
            json_object_get(json_array_get(json_object_get(j, "alerts"), 0), "key"));
        if (k)
            snprintf(key, sizeof key, "%s", k);
        json_decref(j);
        free(out);
    }
    cr_assert(key[0], "the alert did not open");
    char path[256];
    snprintf(path, sizeof path, "/v1/alerts/%s/ack", key);
    cr_assert_eq(http(s.port, "POST", path, nurse, "{\"who\":\"someone else\"}", &out), 200, "%s",
                 out);
    cr_assert(strstr(out, "\"acknowledged_by\":\"oidc ann (nurse)\""), "%s", out);
    free(out);
    cr_assert(log_wait(&s, "acknowledged by oidc ann (nurse)", 2000));

    /* ES256, an admin: the clinic's metrics */
    c = claims("regimen", now + 300, now - 10, "regimen-admins");
    char *admin = sign(s.dir, "ES256", "e1", eckey, c);
    free(c);
    cr_assert_eq(http(s.port, "GET", "/metrics", admin, NULL, &out), 200, "%s", out);
    cr_assert(strstr(out, "clinic=\"north\""), "%s", out);
    free(out);
    cr_assert_eq(http(s.port, "GET", "/metrics", nurse, NULL, &out), 403, "%s", out);
    free(out);

    /* refused: expired past the leeway, not valid yet, another audience, a
     * claim changed under the signature, alg none, a group with no role */
    struct {
        const char *what, *aud, *group, *alg;
        long long exp, nbf;
        const char *says;
    } bad[] = {
        {"expired", "regimen", "regimen-nurses", "RS256", now - 120, now - 600, "expired"},
        {"not yet", "regimen", "regimen-nurses", "RS256", now + 900, now + 300, "not valid yet"},
        {"audience", "billing", "regimen-nurses", "RS256", now + 300, now - 10, "not from an identity provider"},
        {"no role", "regimen", "visitors", "ES256", now + 300, now - 10, "gives no role"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        c = claims(bad[i].aud, bad[i].exp, bad[i].nbf, bad[i].group);
        char *t = sign(s.dir, bad[i].alg, bad[i].alg[0] == 'E' ? "e1" : "r1",
                       bad[i].alg[0] == 'E' ? eckey : keyfile, c);
        free(c);
        cr_assert_eq(http(s.port, "GET", "/v1/alerts", t, NULL, &out), 401, "%s: %s", bad[i].what,
                     out);
        cr_assert(strstr(out, bad[i].says), "%s: %s", bad[i].what, out);
        free(out);
        free(t);
    }
    /* the nurse's token with the role claim swapped for admin's: the
     * signature no longer verifies */
    c = claims("regimen", now + 300, now - 10, "regimen-admins");
    char *forged_claims = b64url_s(c), *dot1 = strchr(nurse, '.'), *dot2 = strchr(dot1 + 1, '.');
    char forged[8192];
    snprintf(forged, sizeof forged, "%.*s.%s%s", (int)(dot1 - nurse), nurse, forged_claims, dot2);
    cr_assert_eq(http(s.port, "GET", "/metrics", forged, NULL, &out), 401, "%s", out);
    cr_assert(strstr(out, "signature does not verify"), "%s", out);
    free(out);
    /* alg none, no signature */
    char *none_head = b64url_s("{\"alg\":\"none\",\"kid\":\"r1\"}");
    snprintf(forged, sizeof forged, "%s.%s.e30", none_head, forged_claims);
    cr_assert_eq(http(s.port, "GET", "/v1/alerts", forged, NULL, &out), 401, "%s", out);
    cr_assert(strstr(out, "RS256 or ES256"), "%s", out);
    free(out);
    free(none_head);
    free(forged_claims);
    free(c);
    free(nurse);
    free(admin);
    cr_assert_eq(server_stop(&s, SIGTERM), 0);
    rg_test_rmdir(s.dir);
}

Test(oidc, a_jwks_without_a_usable_key_is_refused_naming_the_field)
{
    char dir[256], cfg[512], db[512], *out, *err;
    rg_test_tmpdir(dir);
    rg_test_write(dir, "a/p.lua", fast_protocol);
    rg_test_write(dir, "jwks.json", "{\"keys\": [ {\"kty\": \"oct\", \"k\": \"c2VjcmV0\"} ]}");
    rg_test_write(dir, "config.json",
                  "{ \"clinics\": { \"north\": { \"protocols\": \"a\", \"oidc\": { \"issuer\": "
                  "\"https://idp\", \"audience\": \"regimen\", \"jwks\": \"jwks.json\", "
                  "\"role_claim\": \"role\" } } } }\n");
    snprintf(cfg, sizeof cfg, "%s/config.json", dir);
    snprintf(db, sizeof db, "%s/x.db", dir);
    const char *args[] = {"serve", "--config", cfg, "--db", db, NULL};
    cr_assert_eq(rg_test_run(args, NULL, &out, &err), 2, "%s", err);
    cr_assert(strstr(err, "config.json: clinics.north.oidc.jwks") &&
                  strstr(err, "expected at least one signing key"),
              "%s", err);
    free(out);
    free(err);
    rg_test_rmdir(dir);
}
