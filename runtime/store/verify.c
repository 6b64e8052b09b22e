/*
 * verify.c - is the stored record as it was stored? Each event version
 * keeps the SHA-256 of its body (schema 8, digest.h; its first 16 bytes
 * since schema 18, RG_EVENT_DIGEST); a row is intact when
 * its body still matches that digest and the columns the store derived
 * from the body (what evaluations and explain read: clinic, id, patient,
 * type, at, data, fields, the correction fields) still say what the body
 * says. `regimen verify` checks every row this way (rg_store_verify),
 * explain each event it shows (explain.c). Reads only, through store.h, on
 * either backend; never repairs anything.
 */
#include "store/store.h"
#include "core/digest.h"
#include "core/fields.h"

#include <stdlib.h>
#include <string.h>

static int rg__same(const char *a, const char *b)
{
    return (!a && !b) || (a && b && !strcmp(a, b));
}

int rg_store_row_intact(const rg_event_row *r, char *why, size_t whylen)
{
    char hex[RG_SHA256_HEX + 1], field[RG_FIELD_MAX], err[256];
    if (!r->digest)
        return snprintf(why, whylen, "it has no digest"), 0;
    /* the first RG_EVENT_DIGEST bytes since v18, the whole digest before */
    size_t n = strlen(r->digest);
    rg_sha256_hex(r->body, strlen(r->body), hex);
    if ((n != 2 * RG_EVENT_DIGEST && n != RG_SHA256_HEX) || memcmp(hex, r->digest, n))
        return snprintf(why, whylen, "its body does not match its digest (the stored text "
                        "was changed)"), 0;
    rg_event ev;
    int rc = rg_event_parse(&ev, r->body, strlen(r->body), field, err, sizeof err);
    if (rc == RG_ENOMEM)
        return RG_ENOMEM;
    if (rc)
        return snprintf(why, whylen, "its body is no longer a valid event (%s: %s)",
                        *field ? field : "event", err), 0;
    const char *col = NULL;
    if (strcmp(ev.clinic, r->clinic))
        col = "clinic";
    else if (strcmp(ev.id, r->id))
        col = "id";
    else if (strcmp(ev.patient, r->patient))
        col = "patient";
    else if (strcmp(ev.type, r->type))
        col = "type";
    else if (ev.at != r->at)
        col = "at";
    else if ((ev.fields.len == 0) != (r->nfields == 0) ||
             (r->nfields && !rg_fields_same(ev.fields.p, ev.fields.len, r->fields, r->nfields)))
        col = "fields";
    else if (ev.version != r->version)
        col = "version";
    else if (!rg__same(ev.status == RG_STATUS_FINAL ? NULL : rg_event_status_name(ev.status),
                       r->status))
        col = "status";
    else if (ev.corrected_at != r->corrected_at)
        col = "corrected_at";
    else if (!rg__same(ev.corrected_by, r->corrected_by))
        col = "corrected_by";
    rg_event_clear(&ev);
    if (col)
        return snprintf(why, whylen, "its column %s does not say what its body says", col), 0;
    return 1;
}

typedef struct rg__verify {
    FILE *out;
    int64_t checked, bad;
    char clinic[RG_EVENT_MAX_CLINIC + 1], patient[RG_EVENT_MAX_ID + 1];
    rg_time at;
    int64_t seq;
    int rc;
} rg__verify;

static int rg__verify_row(void *ud, const rg_event_row *r)
{
    rg__verify *v = ud;
    char why[512], id[4 * RG_EVENT_MAX_ID + 1], clinic[4 * RG_EVENT_MAX_CLINIC + 1];
    int ok = rg_store_row_intact(r, why, sizeof why);
    if (ok < 0)
        return v->rc = ok;
    v->checked++;
    snprintf(v->clinic, sizeof v->clinic, "%s", r->clinic);
    snprintf(v->patient, sizeof v->patient, "%s", r->patient);
    v->at = r->at;
    v->seq = r->seq;
    if (!ok) {
        v->bad++;
        fprintf(v->out, "damaged: event clinic %s, id %s, seq %lld (version %lld): %s\n",
                rg_printable(r->clinic, clinic, sizeof clinic), rg_printable(r->id, id, sizeof id),
                (long long)r->seq, (long long)r->version, why);
    }
    return 0;
}

int rg_store_verify(rg_store *st, FILE *out, int64_t *checked, int64_t *bad)
{
    rg__verify v = {out, 0, 0, "", "", INT64_MIN, 0, 0};
    int n;
    do {
        char after[RG_EVENT_MAX_CLINIC + 1], patient[RG_EVENT_MAX_ID + 1];
        snprintf(after, sizeof after, "%s", v.clinic);
        snprintf(patient, sizeof patient, "%s", v.patient);
        n = rg_store_event_rows(st, after, patient, v.at, v.seq, 1000, rg__verify_row, &v);
    } while (n > 0);
    *checked = v.checked;
    *bad = v.bad;
    return v.rc ? v.rc : n;
}
