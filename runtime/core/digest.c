/*
 * digest.c - SHA-256 digests from OpenSSL's libcrypto (the EVP interface),
 * and the escaping of control characters for text meant for a terminal or
 * a log.
 *
 * An event's checksum is the digest of its body as received (the stores
 * keep it beside the body: rg_store_verify, explain). An alert's key is a
 * digest of (clinic, patient, protocol, rule, subkey) with each part's
 * length before it: unlike the separator-joined FNV-1a used before, two
 * different tuples cannot encode alike, and finding a tuple whose key is
 * another's means a second preimage of SHA-256. Deliberately not keyed
 * with a per-store secret: simulate, test and serve give the same keys for
 * the same events, run after run. Nothing here allocates.
 */
#include "core/digest.h"

#include <openssl/evp.h>

#include <pthread.h>
#include <stdint.h>
#include <string.h>

/* SHA-256 fetched once: an implicit fetch (EVP_sha256()) looks the
 * algorithm up under a lock at every digest, and keys are made for every
 * alert of every evaluation step, from sweep's threads too. */
static EVP_MD *rg__md;
static pthread_once_t rg__md_once = PTHREAD_ONCE_INIT;

static void rg__md_fetch(void) { rg__md = EVP_MD_fetch(NULL, "SHA256", NULL); }

static const EVP_MD *rg__sha256(void)
{
    pthread_once(&rg__md_once, rg__md_fetch);
    return rg__md ? rg__md : EVP_sha256();
}

static void rg__hex(const unsigned char *md, size_t hexlen, char *out)
{
    static const char hex[] = "0123456789abcdef";
    for (size_t i = 0; i < hexlen; i++)
        out[i] = hex[(md[i / 2] >> (i % 2 ? 0 : 4)) & 15];
    out[hexlen] = '\0';
}

void rg_sha256_hex(const void *p, size_t n, char out[RG_SHA256_HEX + 1])
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    if (!EVP_Digest(p, n, md, &len, rg__sha256(), NULL) || len != 32)
        memset(md, 0, sizeof md); /* never: SHA-256 is built into libcrypto */
    rg__hex(md, RG_SHA256_HEX, out);
}

void rg_sha256(const void *p, size_t n, unsigned char out[32])
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    if (!EVP_Digest(p, n, md, &len, rg__sha256(), NULL) || len != 32)
        memset(md, 0, sizeof md); /* never: SHA-256 is built into libcrypto */
    memcpy(out, md, 32);
}

void rg_sha256_parts(const char *const *parts, int n, char *out, size_t hexlen)
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    EVP_MD_CTX *cx = EVP_MD_CTX_new();
    int ok = cx && EVP_DigestInit_ex(cx, rg__sha256(), NULL);
    for (int i = 0; ok && i < n; i++) {
        uint64_t l = strlen(parts[i]);
        unsigned char be[8];
        for (int k = 0; k < 8; k++)
            be[k] = (unsigned char)(l >> (56 - 8 * k));
        ok = EVP_DigestUpdate(cx, be, sizeof be) && EVP_DigestUpdate(cx, parts[i], (size_t)l);
    }
    ok = ok && EVP_DigestFinal_ex(cx, md, &len) && len == 32;
    EVP_MD_CTX_free(cx);
    if (!ok)
        memset(md, 0, sizeof md); /* out of memory in libcrypto: an all-zero key, never seen */
    rg__hex(md, hexlen > RG_SHA256_HEX ? RG_SHA256_HEX : hexlen, out);
}

/* The escape of the character at s ("" when it is printed as it is) and
 * in *len how many bytes it takes: C0 controls and DEL, and the C1
 * controls as UTF-8 (U+0080..U+009F: some terminals take U+009B as CSI). */
static const char *rg__escape(const char *s, char tmp[8], size_t *len)
{
    static const char hex[] = "0123456789abcdef";
    unsigned char c = (unsigned char)s[0], c1 = (unsigned char)s[1];
    *len = 1;
    switch (c) {
    case '\n': return "\\n";
    case '\r': return "\\r";
    case '\t': return "\\t";
    default:
        if (c < 0x20 || c == 0x7f) {
            tmp[0] = '\\', tmp[1] = 'x', tmp[2] = hex[c >> 4], tmp[3] = hex[c & 15], tmp[4] = 0;
            return tmp;
        }
        if (c == 0xc2 && c1 >= 0x80 && c1 <= 0x9f) {
            *len = 2;
            snprintf(tmp, 8, "\\u%04x", (unsigned)c1);
            return tmp;
        }
        return "";
    }
}

/* Whether the byte c is printed as it is whatever follows it (most are:
 * the loops below skip them without rg__escape's call, simulate prints a
 * message a line). */
static int rg__plain(unsigned char c)
{
    return c >= 0x20 && c != 0x7f && c != 0xc2;
}

void rg_fput_printable(FILE *f, const char *s)
{
    const char *run = s;
    char tmp[8];
    size_t len;
    for (; *s; s += len) {
        if (rg__plain((unsigned char)*s)) {
            len = 1;
            continue;
        }
        const char *e = rg__escape(s, tmp, &len);
        if (!*e)
            continue;
        fwrite(run, 1, (size_t)(s - run), f);
        fputs(e, f);
        run = s + len;
    }
    fwrite(run, 1, (size_t)(s - run), f);
}

char *rg_printable(const char *s, char *buf, size_t size)
{
    size_t n = 0, len;
    char tmp[8];
    if (!size)
        return buf;
    for (; *s; s += len) {
        const char *e = rg__plain((unsigned char)*s) ? "" : rg__escape(s, tmp, &len);
        if (!*e)
            len = 1;
        size_t el = *e ? strlen(e) : 1;
        if (n + el >= size)
            break;
        if (*e)
            memcpy(buf + n, e, el);
        else
            buf[n] = *s;
        n += el;
    }
    buf[n] = '\0';
    return buf;
}
