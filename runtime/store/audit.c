/*
 * audit.c - the audit trail's hash chain (see audit.h). The store keeps the
 * rows (rg_store_audit_*, SQLite and PostgreSQL alike); this file decides
 * what is hashed and how a chain is checked, once for both backends.
 *
 * The canonical encoding of an entry is each field, in a fixed order, as
 * "<length>:<bytes>\n" (seq and at in decimal): no field's content can be
 * read as another's. SHA-256 comes from OpenSSL's libcrypto (EVP_Digest).
 */
#include "store/audit.h"

#include "core/feed.h"

#include <openssl/evp.h>

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int rg__field(EVP_MD_CTX *ctx, const char *v)
{
    char len[24];
    size_t n = v ? strlen(v) : 0;
    int k = snprintf(len, sizeof len, "%zu:", n);
    return EVP_DigestUpdate(ctx, len, (size_t)k) && (!n || EVP_DigestUpdate(ctx, v, n)) &&
           EVP_DigestUpdate(ctx, "\n", 1);
}

int rg_audit_hash(const rg_audit_entry *e, char out[65])
{
    char seq[24], at[24];
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    snprintf(seq, sizeof seq, "%" PRId64, e->seq);
    snprintf(at, sizeof at, "%" PRId64, (int64_t)e->at);
    const char *f[] = {seq,         at,        e->who,   e->role,    e->address, e->clinic,
                       e->patients, e->route,  e->outcome, e->prev};
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    int ok = ctx && EVP_DigestInit_ex(ctx, EVP_sha256(), NULL);
    for (size_t i = 0; ok && i < sizeof f / sizeof f[0]; i++)
        ok = rg__field(ctx, f[i]);
    ok = ok && EVP_DigestFinal_ex(ctx, md, &mdlen) && mdlen == 32;
    EVP_MD_CTX_free(ctx);
    if (!ok)
        return RG_ENOMEM;
    for (unsigned i = 0; i < 32; i++)
        snprintf(out + 2 * i, 3, "%02x", md[i]);
    return RG_OK;
}

int rg_audit_append(rg_store *st, rg_audit_entry *e)
{
    rg_audit_chain c;
    char hash[65];
    int rc = rg_store_audit_chain(st, 1, &c);
    if (rc)
        return rc;
    e->seq = c.tip_seq + 1;
    e->prev = c.tip_hash;
    if ((rc = rg_audit_hash(e, hash)))
        return rc;
    e->hash = hash;
    rc = rg_store_audit_insert(st, e);
    e->prev = e->hash = NULL; /* (they pointed here) */
    return rc;
}

typedef struct rg__walk {
    rg_audit_report *r;
    int64_t seq;      /* the last entry checked (the base at first) */
    char hash[65];    /* its hash */
} rg__walk;

static int rg__broken(rg_audit_report *r, int64_t seq, const char *fmt, const char *a,
                      const char *b)
{
    r->ok = 0;
    r->broken_seq = seq;
    snprintf(r->why, sizeof r->why, fmt, a, b);
    return 1;
}

static int rg__check(void *ud, const rg_audit_entry *e)
{
    rg__walk *w = ud;
    char want[65], n1[24], n2[24];
    if (e->seq != w->seq + 1) {
        snprintf(n1, sizeof n1, "%" PRId64, w->seq + 1);
        snprintf(n2, sizeof n2, "%" PRId64, e->seq);
        return rg__broken(w->r, w->seq + 1,
                          "entry %s is missing: the trail goes on at entry %s (deleted)", n1, n2);
    }
    if (strcmp(e->prev, w->hash)) {
        snprintf(n1, sizeof n1, "%" PRId64, w->seq);
        return rg__broken(w->r, e->seq,
                          "its prev hash is not the hash of entry %s (that entry or this one "
                          "was changed)%s",
                          n1, "");
    }
    if (rg_audit_hash(e, want))
        return RG_ENOMEM;
    if (strcmp(want, e->hash))
        return rg__broken(w->r, e->seq,
                          "its content does not match its hash (it was changed)%s%s", "", "");
    w->seq = e->seq;
    snprintf(w->hash, sizeof w->hash, "%s", e->hash);
    w->r->checked++;
    return 0;
}

int rg_audit_verify(rg_store *st, rg_audit_report *r)
{
    memset(r, 0, sizeof *r);
    r->ok = 1;
    int rc = rg_store_begin_read(st);
    if (!rc)
        rc = rg_store_audit_chain(st, 0, &r->chain);
    rg__walk w = {r, r->chain.base_seq, ""};
    snprintf(w.hash, sizeof w.hash, "%s", r->chain.base_hash);
    rg_audit_filter f = {.after = r->chain.base_seq, .since = RG_TIME_NONE};
    if (!rc) {
        rc = rg_store_audit_each(st, &f, rg__check, &w);
        if (rc == 1)
            rc = RG_OK; /* stopped at the break */
    }
    rg_store_rollback(st);
    if (rc || !r->ok)
        return rc;
    /* the trail ends where the chain's tip says: nothing cut off its end */
    if (w.seq != r->chain.tip_seq || strcmp(w.hash, r->chain.tip_hash)) {
        char n1[24], n2[24];
        snprintf(n1, sizeof n1, "%" PRId64, w.seq + 1);
        snprintf(n2, sizeof n2, "%" PRId64, r->chain.tip_seq);
        if (w.seq < r->chain.tip_seq)
            rg__broken(r, w.seq + 1, "entry %s is missing: the chain's tip is entry %s (deleted)",
                       n1, n2);
        else
            rg__broken(r, r->chain.tip_seq, "the trail goes on past the chain's tip, entry %s%s",
                       n2, " (entries were added or the tip was changed)");
    }
    return RG_OK;
}

json_t *rg_audit_json(const rg_audit_entry *e)
{
    json_error_t je;
    json_t *patients = json_loads(e->patients, 0, &je);
    return json_pack("{s:I,s:o,s:s,s:s,s:s,s:s,s:o,s:s,s:s,s:s,s:s}", "seq", (json_int_t)e->seq,
                     "at", rg_time_json(e->at), "who", e->who, "role", e->role, "address",
                     e->address, "clinic", e->clinic, "patients",
                     patients ? patients : json_array(), "route", e->route, "outcome",
                     e->outcome, "prev", e->prev, "hash", e->hash);
}
