/*
 * fields.c - compiled event data (see fields.h for the layout and why).
 *
 * The builder never fails half-way silently: each add returns RG_ENOMEM and
 * the caller drops the buffer. The reader checks every length against the
 * record's end, so a damaged row reads as "malformed", never out of bounds.
 */
#include "core/fields.h"

#include <jansson.h>

#include <stdlib.h>
#include <string.h>

/* The tags written since schema 18 (fields.h): an integer as a zigzag
 * varint, a string's length as a varint. Read as RG_F_INT and RG_F_STR. */
#define RG__W_VARINT 'n'
#define RG__W_VARSTR 'S'

static int rg__put_u16(rg_buf *b, size_t v)
{
    unsigned char x[2] = {(unsigned char)(v & 0xff), (unsigned char)((v >> 8) & 0xff)};
    return rg_buf_add(b, (const char *)x, 2);
}

static int rg__put_u32(rg_buf *b, size_t v)
{
    unsigned char x[4];
    for (int i = 0; i < 4; i++)
        x[i] = (unsigned char)((v >> (8 * i)) & 0xff);
    return rg_buf_add(b, (const char *)x, 4);
}

static int rg__put_u64(rg_buf *b, uint64_t v)
{
    unsigned char x[8];
    for (int i = 0; i < 8; i++)
        x[i] = (unsigned char)((v >> (8 * i)) & 0xff);
    return rg_buf_add(b, (const char *)x, 8);
}

/* An unsigned LEB128 varint: 7 bits a byte, low first, the high bit set on
 * every byte but the last (1 byte below 128, at most 10). */
static int rg__put_var(rg_buf *b, uint64_t v)
{
    unsigned char x[10];
    int n = 0;
    do {
        x[n] = (unsigned char)(v & 0x7f);
        v >>= 7;
        if (v)
            x[n] |= 0x80;
        n++;
    } while (v);
    return rg_buf_add(b, (const char *)x, (size_t)n);
}

static int rg__key(rg_buf *b, const char *key, size_t klen, rg_field_tag tag)
{
    if (klen > 0xffff)
        return RG_EINVAL;
    char t = (char)tag;
    int rc = rg__put_u16(b, klen);
    if (rc == RG_OK)
        rc = rg_buf_add(b, key, klen);
    return rc ? rc : rg_buf_add(b, &t, 1);
}

int rg_fields_begin(rg_buf *b)
{
    const char v = RG_FIELDS_V1;
    return rg_buf_add(b, &v, 1);
}

int rg_fields_add_int(rg_buf *b, const char *key, size_t klen, int64_t v)
{
    /* zigzag: small magnitudes of either sign take few bytes */
    uint64_t u = v < 0 ? ~((uint64_t)v << 1) : (uint64_t)v << 1;
    int rc = rg__key(b, key, klen, (rg_field_tag)RG__W_VARINT);
    return rc ? rc : rg__put_var(b, u);
}

int rg_fields_add_real(rg_buf *b, const char *key, size_t klen, double v)
{
    uint64_t u;
    memcpy(&u, &v, sizeof u);
    int rc = rg__key(b, key, klen, RG_F_REAL);
    return rc ? rc : rg__put_u64(b, u);
}

static int rg__add_text(rg_buf *b, const char *key, size_t klen, rg_field_tag tag, const char *s,
                        size_t n)
{
    if (n > UINT32_MAX)
        return RG_EINVAL;
    int rc = rg__key(b, key, klen, tag);
    if (rc == RG_OK)
        rc = tag == (rg_field_tag)RG__W_VARSTR ? rg__put_var(b, n) : rg__put_u32(b, n);
    return rc ? rc : rg_buf_add(b, s, n);
}

int rg_fields_add_str(rg_buf *b, const char *key, size_t klen, const char *s, size_t n)
{
    return rg__add_text(b, key, klen, (rg_field_tag)RG__W_VARSTR, s, n);
}

int rg_fields_add_json(rg_buf *b, const char *key, size_t klen, const char *json, size_t n)
{
    return rg__add_text(b, key, klen, RG_F_JSON, json, n);
}

int rg_fields_add_bool(rg_buf *b, const char *key, size_t klen, int v)
{
    return rg__key(b, key, klen, v ? RG_F_TRUE : RG_F_FALSE);
}

int rg_fields_add_null(rg_buf *b, const char *key, size_t klen)
{
    return rg__key(b, key, klen, RG_F_NULL);
}

static int rg__cmp_keys(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

int rg_fields_from_value(rg_buf *b, const json_t *o)
{
    b->len = 0;
    if (!json_is_object(o))
        return RG_EINVAL;
    size_t n = json_object_size(o), k = 0;
    const char **keys = malloc((n ? n : 1) * sizeof *keys);
    if (!keys)
        return RG_ENOMEM;
    const char *key;
    json_t *v;
    json_object_foreach((json_t *)o, key, v) keys[k++] = key;
    qsort(keys, n, sizeof *keys, rg__cmp_keys);
    int rc = rg_fields_begin(b);
    for (size_t i = 0; i < n && rc == RG_OK; i++) {
        v = json_object_get(o, keys[i]);
        size_t kl = strlen(keys[i]);
        switch (json_typeof(v)) {
        case JSON_INTEGER:
            rc = rg_fields_add_int(b, keys[i], kl, (int64_t)json_integer_value(v));
            break;
        case JSON_REAL:
            rc = rg_fields_add_real(b, keys[i], kl, json_real_value(v));
            break;
        case JSON_STRING:
            rc = rg_fields_add_str(b, keys[i], kl, json_string_value(v), json_string_length(v));
            break;
        case JSON_TRUE:
        case JSON_FALSE:
            rc = rg_fields_add_bool(b, keys[i], kl, json_is_true(v));
            break;
        case JSON_NULL:
            rc = rg_fields_add_null(b, keys[i], kl);
            break;
        default: {
            char *s = json_dumps(v, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENSURE_ASCII);
            rc = s ? rg_fields_add_json(b, keys[i], kl, s, strlen(s)) : RG_ENOMEM;
            free(s);
        }
        }
    }
    free(keys);
    return rc;
}

int rg_fields_from_json(rg_buf *b, const char *text)
{
    b->len = 0;
    json_error_t je;
    json_t *o = json_loads(text, JSON_REJECT_DUPLICATES, &je);
    if (!o)
        return RG_EINVAL;
    int rc = rg_fields_from_value(b, o);
    json_decref(o);
    return rc;
}

static uint64_t rg__get(const unsigned char *p, int n)
{
    uint64_t v = 0;
    for (int i = 0; i < n; i++)
        v |= (uint64_t)p[i] << (8 * i);
    return v;
}

int rg_fields_next(const void *rec, size_t len, size_t *pos, rg_field *f)
{
    const unsigned char *p = rec;
    if (!rec || len == 0)
        return 0;
    if (p[0] != (unsigned char)RG_FIELDS_V1)
        return RG_EINVAL;
    size_t at = *pos ? *pos : 1;
    if (at == len)
        return 0;
    if (len - at < 3)
        return RG_EINVAL;
    size_t klen = (size_t)rg__get(p + at, 2);
    at += 2;
    if (len - at < klen + 1)
        return RG_EINVAL;
    f->key = (const char *)p + at;
    f->klen = klen;
    at += klen;
    f->tag = (rg_field_tag)p[at++];
    f->s = NULL;
    f->slen = 0;
    if (f->tag == RG__W_VARINT || f->tag == RG__W_VARSTR) {
        uint64_t u = 0;
        int shift = 0;
        for (;;) {
            if (at == len || shift > 63)
                return RG_EINVAL;
            unsigned char c = p[at++];
            u |= (uint64_t)(c & 0x7f) << shift;
            if (!(c & 0x80))
                break;
            shift += 7;
        }
        if (f->tag == RG__W_VARINT) {
            f->tag = RG_F_INT;
            f->i = (int64_t)((u >> 1) ^ (0 - (u & 1)));
        } else {
            if (len - at < u)
                return RG_EINVAL;
            f->tag = RG_F_STR;
            f->s = (const char *)p + at;
            f->slen = (size_t)u;
            at += (size_t)u;
        }
        *pos = at;
        return 1;
    }
    switch (f->tag) {
    case RG_F_INT:
    case RG_F_REAL: {
        if (len - at < 8)
            return RG_EINVAL;
        uint64_t u = rg__get(p + at, 8);
        at += 8;
        if (f->tag == RG_F_INT)
            f->i = (int64_t)u;
        else
            memcpy(&f->r, &u, sizeof f->r);
        break;
    }
    case RG_F_STR:
    case RG_F_JSON: {
        if (len - at < 4)
            return RG_EINVAL;
        size_t n = (size_t)rg__get(p + at, 4);
        at += 4;
        if (len - at < n)
            return RG_EINVAL;
        f->s = (const char *)p + at;
        f->slen = n;
        at += n;
        break;
    }
    case RG_F_TRUE:
    case RG_F_FALSE:
    case RG_F_NULL:
        break;
    default:
        return RG_EINVAL;
    }
    *pos = at;
    return 1;
}

int rg_fields_get(const void *rec, size_t len, const char *key, size_t klen, rg_field *f)
{
    size_t pos = 0;
    int r;
    while ((r = rg_fields_next(rec, len, &pos, f)) == 1)
        if (f->klen == klen && memcmp(f->key, key, klen) == 0)
            return 1;
    return 0;
}

int rg_fields_same(const void *a, size_t alen, const void *b, size_t blen)
{
    size_t pa = 0, pb = 0;
    rg_field fa, fb;
    for (;;) {
        int ra = rg_fields_next(a, alen, &pa, &fa), rb = rg_fields_next(b, blen, &pb, &fb);
        if (ra < 0 || rb < 0 || ra != rb)
            return 0;
        if (ra == 0)
            return 1;
        if (fa.tag != fb.tag || fa.klen != fb.klen || memcmp(fa.key, fb.key, fa.klen))
            return 0;
        if ((fa.tag == RG_F_INT && fa.i != fb.i) ||
            (fa.tag == RG_F_REAL && memcmp(&fa.r, &fb.r, sizeof fa.r)) ||
            ((fa.tag == RG_F_STR || fa.tag == RG_F_JSON) &&
             (fa.slen != fb.slen || memcmp(fa.s, fb.s, fa.slen))))
            return 0;
    }
}
