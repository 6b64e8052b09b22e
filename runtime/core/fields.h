/*
 * fields.h - an event's `data`, compiled: the form rules read.
 *
 * At ingest an event's data object is decoded once into a compact binary
 * record of its top-level fields, kept beside the canonical JSON text (which
 * stays the audit truth). Reading a history then costs no JSON parsing: the
 * history binding walks these bytes and hands numbers and strings to Lua.
 *
 * Layout (stable: it is stored in the database; all integers little-endian):
 *   record := RG_FIELDS_V1 entry*
 *   entry  := klen:u16 key[klen] tag:u8 payload
 *   tag 'i' int64 (8 bytes)        a JSON integer
 *   tag 'r' IEEE double (8 bytes)  a JSON number with a fraction or exponent
 *   tag 's' len:u32 bytes[len]     a JSON string, unescaped (UTF-8)
 *   tag 't' / 'f' / 'z'            true / false / null (no payload)
 *   tag 'j' len:u32 text[len]      an object or array, as compact JSON text
 *   tag 'n' varint                 a JSON integer, zigzag-encoded (since v18)
 *   tag 'S' len:varint bytes[len]  a JSON string (since v18)
 * (varint: unsigned LEB128, 7 bits a byte, low first.) Since schema 18 the
 * builder writes integers as 'n' and strings as 'S', 2 and 1 bytes where 'i'
 * and 's' took 8 and 4; rows stored before keep 'i' and 's', which the
 * reader still reads, reporting both as RG_F_INT and RG_F_STR. Compare
 * records with rg_fields_same, not byte for byte.
 * Entries come in the order of the canonical text (keys sorted bytewise), so
 * equal data gives equal bytes from one builder. A NULL record (length 0) means "no data".
 *
 * The builder appends to an rg_buf the caller owns; the reader only reads.
 * Depends on rg.h and, for rg_fields_from_json, jansson.
 */
#ifndef RG_FIELDS_H
#define RG_FIELDS_H

#include "core/rg.h"

#include <stddef.h>
#include <stdint.h>

#define RG_FIELDS_V1 '\x01'

typedef enum {
    RG_F_INT = 'i',
    RG_F_REAL = 'r',
    RG_F_STR = 's',
    RG_F_TRUE = 't',
    RG_F_FALSE = 'f',
    RG_F_NULL = 'z',
    RG_F_JSON = 'j',
} rg_field_tag;

/* One field as the reader sees it: key and s point into the record. */
typedef struct rg_field {
    const char *key;
    size_t klen;
    rg_field_tag tag;
    int64_t i;
    double r;
    const char *s; /* RG_F_STR: the string; RG_F_JSON: the JSON text */
    size_t slen;
} rg_field;

/* ---- building ---------------------------------------------------------------- */
/* Starts a record in b (appends the version byte). Then add the fields in the
 * canonical (sorted) key order. Each returns RG_OK or RG_ENOMEM. */
int rg_fields_begin(rg_buf *b);
int rg_fields_add_int(rg_buf *b, const char *key, size_t klen, int64_t v);
int rg_fields_add_real(rg_buf *b, const char *key, size_t klen, double v);
int rg_fields_add_str(rg_buf *b, const char *key, size_t klen, const char *s, size_t n);
int rg_fields_add_bool(rg_buf *b, const char *key, size_t klen, int v);
int rg_fields_add_null(rg_buf *b, const char *key, size_t klen);
int rg_fields_add_json(rg_buf *b, const char *key, size_t klen, const char *json, size_t n);

/* Compiles canonical data text (a JSON object) into b (emptied first): the
 * reference path, used for rows stored before schema v5 and in tests.
 * RG_EINVAL when text is not an object. */
int rg_fields_from_json(rg_buf *b, const char *text);
/* The same from a parsed object (what validation holds): equal values give
 * equal bytes whichever way they came in. */
struct json_t;
int rg_fields_from_value(rg_buf *b, const struct json_t *obj);

/* ---- reading ----------------------------------------------------------------- */
/* Iterates: *pos starts at 0; returns 1 and fills f for each field, 0 at the
 * end, RG_EINVAL when the record is malformed (never past len). */
int rg_fields_next(const void *rec, size_t len, size_t *pos, rg_field *f);
/* The field named key, or 0 when there is none (or the record is malformed). */
int rg_fields_get(const void *rec, size_t len, const char *key, size_t klen, rg_field *f);
/* Whether two records say the same (the same keys, tags and values in the
 * same order), whichever tags wrote them: 1 or 0 (0 when one is malformed). */
int rg_fields_same(const void *a, size_t alen, const void *b, size_t blen);

#endif
