/*
 * event.c - validation of one event.
 *
 * Two parsers, one contract. A line of bulk ingest is read in one pass by
 * yajl (streaming: no tree, each value straight into the event and its
 * compiled fields) when it is of the plain kind every feed sends: printable
 * ASCII, no \u escape, at most RG__FAST_MAX bytes, scalars only (data an
 * object of scalars). Whatever that pass does not accept - any error, any
 * doubt - goes to the reference path (jansson's tree, below), which gives
 * the answer and the message. So the one-pass path only ever says "valid",
 * and says it exactly when the reference path would, with the same event
 * (tests/test_event.c and tests/fuzz/fuzz_event.c compare the two).
 *
 * Everything that reaches the store has passed here: required fields present
 * with the right types, sizes bounded, `type` a lower-case word, `at` a real
 * RFC 3339 instant with an offset, `data` an object. Unknown top-level fields
 * are refused too, because a misspelt "pateint" is far likelier than a new
 * field. A correction (docs/corrections.md) carries version, status,
 * corrected_at and corrected_by; whether it may replace what is stored is
 * the store's question (rg_store_put_event). The stored body is what makes
 * re-sending an identical event a no-op and a changed one a conflict:
 * compared as JSON values (key order and spacing do not matter), see
 * rg_store_put_event.
 */
#include "core/event.h"
#include "core/fields.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yajl/yajl_parse.h>

#define FAIL(f, ...)                                                        \
    do {                                                                    \
        snprintf(field, RG_FIELD_MAX, "%s", (f));                           \
        rc = rg_fail(err, errlen, RG_EINVAL, __VA_ARGS__);                  \
        goto fail;                                                          \
    } while (0)

int rg_event_type_ok(const char *s)
{
    int at_word_start = 1;
    for (; *s; s++) {
        char c = *s;
        if (at_word_start) {
            if (c < 'a' || c > 'z')
                return 0;
            at_word_start = 0;
        } else if (c == '.') {
            at_word_start = 1;
        } else if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_')) {
            return 0;
        }
    }
    return !at_word_start;
}

static const char *const rg__status[] = {"final", "amended", "corrected", "entered-in-error"};

const char *rg_event_status_name(int status)
{
    return status >= 0 && status < (int)RG_COUNTOF(rg__status) ? rg__status[status] : "?";
}

static int rg__printable(const char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s < 0x20 || *s == 0x7f)
            return 0;
    return 1;
}

static int rg__clinic_ok(const char *s)
{
    if (!*s)
        return 0;
    for (; *s; s++) {
        char c = *s;
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '-' || c == '_' || c == '.'))
            return 0;
    }
    return 1;
}

/* Fetches a required string member, checking presence, type and length. */
static const char *rg__string(json_t *obj, const char *name, size_t max, char *field,
                              char *err, size_t errlen, int *rc)
{
    json_t *v = json_object_get(obj, name);
    memcpy(field, name, strlen(name) + 1); /* a known short name: no printf per field */
    if (!v) {
        *rc = rg_fail(err, errlen, RG_EINVAL, "required field '%s' is missing", name);
        return NULL;
    }
    if (!json_is_string(v)) {
        *rc = rg_fail(err, errlen, RG_EINVAL, "field '%s' must be a string", name);
        return NULL;
    }
    size_t n = json_string_length(v);
    if (n == 0 || n > max) {
        *rc = rg_fail(err, errlen, RG_EINVAL, "field '%s' must have 1 to %zu characters (has %zu)",
                      name, max, n);
        return NULL;
    }
    return json_string_value(v);
}

/* json_dump_callback's sink that only counts (the length of data's text). */
static int rg__count_bytes(const char *buf, size_t size, void *data)
{
    (void)buf;
    *(size_t *)data += size;
    return 0;
}

static int rg__from_json(rg_event *ev, json_t *obj, const char *raw, size_t rawlen,
                         char field[RG_FIELD_MAX], char *err, size_t errlen);

/* An event's members, in the order the messages list them (the one-pass
 * path's RG__K_* index this). */
static const char *const rg__known[] = {"id", "clinic", "patient", "type", "at", "data",
                                        "version", "status", "corrected_at", "corrected_by"};

int rg_event_from_json(rg_event *ev, json_t *obj, char field[RG_FIELD_MAX], char *err,
                       size_t errlen)
{
    return rg__from_json(ev, obj, NULL, 0, field, err, errlen);
}

/* raw: the text obj was parsed from, kept as the body (no need to print it
 * again); NULL to print obj. */
static int rg__from_json(rg_event *ev, json_t *obj, const char *raw, size_t rawlen,
                         char field[RG_FIELD_MAX], char *err, size_t errlen)
{
    int rc = RG_EINVAL;
    memset(ev, 0, sizeof *ev);
    field[0] = '\0';
    if (!json_is_object(obj))
        FAIL("", "expected a JSON object, one event per line");

    const char *key;
    json_t *val;
    json_object_foreach(obj, key, val) {
        size_t i;
        for (i = 0; i < RG_COUNTOF(rg__known); i++)
            if (!strcmp(key, rg__known[i]))
                break;
        if (i == RG_COUNTOF(rg__known))
            FAIL(key, "unknown field '%.40s' (an event has id, clinic, patient, type, at, data, "
                      "and for a correction version, status, corrected_at, corrected_by)",
                 key);
    }

    if (!(ev->id = rg__string(obj, "id", RG_EVENT_MAX_ID, field, err, errlen, &rc)))
        goto fail;
    if (!rg__printable(ev->id))
        FAIL("id", "field 'id' must not contain control characters");
    if (!(ev->clinic = rg__string(obj, "clinic", RG_EVENT_MAX_CLINIC, field, err, errlen, &rc)))
        goto fail;
    if (!rg__clinic_ok(ev->clinic))
        FAIL("clinic", "field 'clinic' may hold only letters, digits, '-', '_' and '.'");
    if (!(ev->patient = rg__string(obj, "patient", RG_EVENT_MAX_ID, field, err, errlen, &rc)))
        goto fail;
    if (!rg__printable(ev->patient))
        FAIL("patient", "field 'patient' must not contain control characters");
    if (!(ev->type = rg__string(obj, "type", RG_EVENT_MAX_TYPE, field, err, errlen, &rc)))
        goto fail;
    if (!rg_event_type_ok(ev->type))
        FAIL("type", "field 'type' must be a lower-case word, dots allowed (like "
                     "\"infusion\" or \"lab.result\"), not \"%.64s\"", ev->type);
    const char *at = rg__string(obj, "at", 64, field, err, errlen, &rc);
    if (!at)
        goto fail;
    char why[160];
    if (rg_time_parse(at, strlen(at), &ev->at, &ev->offset_min, why, sizeof why))
        FAIL("at", "\"%.40s\" is not a valid time: %s", at, why);


    ev->version = 1;
    ev->status = RG_STATUS_FINAL;
    ev->corrected_at = RG_TIME_NONE;
    json_t *v = json_object_get(obj, "version");
    if (v && (!json_is_integer(v) || json_integer_value(v) < 1 ||
              json_integer_value(v) > RG_EVENT_MAX_VERSION))
        FAIL("version", "field 'version' must be a whole number from 1 to %d",
             RG_EVENT_MAX_VERSION);
    if (v)
        ev->version = json_integer_value(v);
    if ((v = json_object_get(obj, "status"))) {
        const char *st = json_is_string(v) ? json_string_value(v) : "";
        ev->status = -1;
        for (int i = 0; i < (int)RG_COUNTOF(rg__status); i++)
            if (!strcmp(st, rg__status[i]))
                ev->status = i;
        if (ev->status < 0)
            FAIL("status", "field 'status' must be \"final\", \"amended\", \"corrected\" or "
                           "\"entered-in-error\"");
    }
    if (json_object_get(obj, "corrected_at")) {
        const char *ca = rg__string(obj, "corrected_at", 64, field, err, errlen, &rc);
        if (!ca)
            goto fail;
        if (rg_time_parse(ca, strlen(ca), &ev->corrected_at, NULL, why, sizeof why))
            FAIL("corrected_at", "\"%.40s\" is not a valid time: %s", ca, why);
    } else if (ev->version > 1) {
        FAIL("corrected_at", "required field 'corrected_at' is missing: version %lld is a "
                             "correction, which says when it was made",
             (long long)ev->version);
    }
    if (json_object_get(obj, "corrected_by")) {
        if (!(ev->corrected_by = rg__string(obj, "corrected_by", RG_EVENT_MAX_ID, field, err,
                                            errlen, &rc)))
            goto fail;
        if (!rg__printable(ev->corrected_by))
            FAIL("corrected_by", "field 'corrected_by' must not contain control characters");
    }

    json_t *data = json_object_get(obj, "data");
    if (data) {
        if (!json_is_object(data))
            FAIL("data", "field 'data' must be a JSON object");
        /* the canonical text's length (the order of keys does not change
         * it), counted without making the text: the store keeps the body
         * and the compiled fields, not this second copy (schema v12) */
        size_t n = 0;
        if (json_dump_callback(data, rg__count_bytes, &n, JSON_COMPACT | JSON_ENSURE_ASCII)) {
            rc = rg_fail(err, errlen, RG_ENOMEM, "out of memory");
            goto fail;
        }
        if (n > RG_EVENT_MAX_DATA)
            FAIL("data", "field 'data' is larger than %d bytes", RG_EVENT_MAX_DATA);
        if ((rc = rg_fields_from_value(&ev->fields, data)) != RG_OK) {
            rc = rg_fail(err, errlen, rc, "out of memory");
            goto fail;
        }
    }
    ev->body = raw ? strndup(raw, rawlen) : json_dumps(obj, JSON_COMPACT | JSON_ENSURE_ASCII);
    if (!ev->body) {
        rc = rg_fail(err, errlen, RG_ENOMEM, "out of memory");
        goto fail;
    }
    ev->json = json_incref(obj);
    field[0] = '\0';
    return RG_OK;
fail:
    free(ev->body);
    rg_buf_free(&ev->fields);
    memset(ev, 0, sizeof *ev);
    return rc;
}

json_t *rg_json_loadb(const char *text, size_t len, size_t flags, json_error_t *je)
{
    const char *nul = memchr(text, '\0', len);
    if (!nul)
        return json_loadb(text, len, flags, je);
    memset(je, 0, sizeof *je);
    je->position = (int)(nul - text);
    je->column = je->position + 1;
    je->line = 1;
    for (const char *p = text; p < nul; p++)
        if (*p == '\n') {
            je->line++;
            je->column = (int)(nul - p);
        }
    snprintf(je->text, sizeof je->text, "a NUL byte (\\0) is not allowed in JSON text");
    snprintf(je->source, sizeof je->source, "<buffer>");
    je->text[JSON_ERROR_TEXT_LENGTH - 1] = (char)json_error_invalid_syntax;
    return NULL;
}

int rg_json_failed_for_memory(const json_error_t *je)
{
    return json_error_code(je) == json_error_out_of_memory || !je->text[0];
}

/* ---- the one-pass path (yajl) ------------------------------------------------------ */

/* The longest line it reads: data's canonical text (ASCII, escaped) is at
 * most 6 bytes per byte of the line (a 4-byte character is 12, "1e-5" is
 * 1.0000000000000001e-05), so no line this short has data over the limit:
 * the length need not be counted. */
#define RG__FAST_MAX (RG_EVENT_MAX_DATA / 6)
#define RG__FAST_FIELDS 32 /* members of data it compiles; more: the reference path */

enum { RG__K_ID, RG__K_CLINIC, RG__K_PATIENT, RG__K_TYPE, RG__K_AT, RG__K_DATA, RG__K_VERSION,
       RG__K_STATUS, RG__K_CORRECTED_AT, RG__K_CORRECTED_BY };

typedef struct rg__dfield {
    const char *key, *s; /* in rg__fast.tmp */
    size_t klen, slen;
    rg_field_tag tag;
    int64_t i;
    double r;
} rg__dfield;

typedef struct rg__fast {
    int depth;     /* 1 in the event, 2 in its data */
    int key;       /* the event's member being read (RG__K_*) */
    unsigned seen; /* members read, one bit each (a second one: a duplicate) */
    int data_map;  /* data was an object */
    const char *str[RG_COUNTOF(rg__known)]; /* string members, in mem */
    size_t slen[RG_COUNTOF(rg__known)];
    int64_t version;
    char *mem, *memend; /* the event's strings (ev->mem), NUL-terminated */
    char tmp[RG__FAST_MAX + 8], *tmpend; /* data's keys and strings while compiling */
    size_t used;
    rg__dfield df[RG__FAST_FIELDS];
    int ndf;
    const char *dkey; /* the data member being read */
    size_t dklen;
    yajl_handle h;
    size_t end; /* where the event's object ended in the line */
    size_t aused;                  /* of arena */
    _Alignas(16) char arena[4096]; /* yajl's memory for this line (rg__ar_*) */
} rg__fast;

/* yajl's handle, lexer and stacks for one line (about 1 KiB) are cut from
 * the parser's own frame and dropped with it: no malloc and free of five
 * blocks a line. A block is preceded by its size (for realloc); one that
 * does not fit comes from malloc. */
#define RG__AR_HEAD 16

static void *rg__ar_malloc(void *ctx, size_t n)
{
    rg__fast *f = ctx;
    size_t need = RG__AR_HEAD + (n + 15) / 16 * 16;
    if (n > sizeof f->arena || need > sizeof f->arena - f->aused)
        return malloc(n);
    char *p = f->arena + f->aused + RG__AR_HEAD;
    memcpy(p - RG__AR_HEAD, &n, sizeof n);
    f->aused += need;
    return p;
}

static int rg__ar_in(const rg__fast *f, const void *p)
{
    return (const char *)p >= f->arena && (const char *)p < f->arena + sizeof f->arena;
}

static void rg__ar_free(void *ctx, void *p)
{
    if (!rg__ar_in(ctx, p))
        free(p);
}

static void *rg__ar_realloc(void *ctx, void *p, size_t n)
{
    if (!p)
        return rg__ar_malloc(ctx, n);
    if (!rg__ar_in(ctx, p))
        return realloc(p, n);
    size_t old;
    memcpy(&old, (char *)p - RG__AR_HEAD, sizeof old);
    if (n <= old)
        return p;
    void *q = rg__ar_malloc(ctx, n);
    if (q)
        memcpy(q, p, old);
    return q;
}

/* A copy of s in the event's strings (mem) or the scratch (tmp); both are
 * sized so that every string of the line fits. */
static const char *rg__fast_keep(rg__fast *f, int in_event, const unsigned char *s, size_t n)
{
    char *to = in_event ? f->mem : f->tmp + f->used;
    if (to + n + 1 > (in_event ? f->memend : f->tmpend))
        return NULL;
    memcpy(to, s, n);
    to[n] = '\0';
    if (in_event)
        f->mem += n + 1;
    else
        f->used += n + 1;
    return to;
}

static int rg__fast_map_start(void *ud)
{
    rg__fast *f = ud;
    if (f->depth == 1 && f->key == RG__K_DATA)
        f->data_map = 1;
    else if (f->depth != 0)
        return 0; /* an object where a scalar belongs: the reference path says what */
    f->depth++;
    return 1;
}

static int rg__fast_map_end(void *ud)
{
    rg__fast *f = ud;
    if (--f->depth == 0) /* yajl takes a token cut off by the end after it for complete */
        f->end = yajl_get_bytes_consumed(f->h);
    f->key = -1;
    return 1;
}

static int rg__fast_array(void *ud)
{
    (void)ud;
    return 0; /* arrays (in data: canonical text with sorted keys): the reference path */
}

static int rg__fast_key(void *ud, const unsigned char *s, size_t n)
{
    rg__fast *f = ud;
    if (f->depth == 2) {
        if (f->ndf == RG__FAST_FIELDS || !(f->dkey = rg__fast_keep(f, 0, s, n)))
            return 0;
        f->dklen = n;
        return 1;
    }
    static const unsigned char klen[RG_COUNTOF(rg__known)] = {2, 6, 7, 4, 2, 4, 7, 6, 12, 12};
    for (int i = 0; i < (int)RG_COUNTOF(rg__known); i++)
        if (klen[i] == n && !memcmp(rg__known[i], s, n)) {
            if (f->seen & (1u << i))
                return 0; /* a duplicate key: jansson refuses the line */
            f->seen |= 1u << i;
            f->key = i;
            return 1;
        }
    return 0; /* an unknown member */
}

static rg__dfield *rg__fast_field(rg__fast *f, rg_field_tag tag)
{
    rg__dfield *d = &f->df[f->ndf++];
    d->key = f->dkey;
    d->klen = f->dklen;
    d->tag = tag;
    return d;
}

static int rg__fast_string(void *ud, const unsigned char *s, size_t n)
{
    rg__fast *f = ud;
    if (f->depth == 0 || memchr(s, '\0', n))
        return 0;
    if (f->depth == 2) {
        const char *t = rg__fast_keep(f, 0, s, n);
        if (!t)
            return 0;
        rg__dfield *d = rg__fast_field(f, RG_F_STR);
        d->s = t;
        d->slen = n;
        return 1;
    }
    if (f->key == RG__K_DATA || f->key == RG__K_VERSION)
        return 0;
    f->slen[f->key] = n;
    return (f->str[f->key] = rg__fast_keep(f, 1, s, n)) != NULL;
}

/* A number as jansson reads it: an integer unless it has a fraction or an
 * exponent; out of range is an error (the reference path names it). */
static int rg__fast_number(void *ud, const char *s, size_t n)
{
    rg__fast *f = ud;
    char buf[64], *end;
    if (n >= sizeof buf || f->depth == 0 || (f->depth == 1 && f->key != RG__K_VERSION))
        return 0;
    memcpy(buf, s, n);
    buf[n] = '\0';
    errno = 0;
    if (!memchr(s, '.', n) && !memchr(s, 'e', n) && !memchr(s, 'E', n)) {
        long long v = strtoll(buf, &end, 10);
        if (errno == ERANGE || end != buf + n)
            return 0;
        if (f->depth == 1) {
            f->version = v;
            return v >= 1 && v <= RG_EVENT_MAX_VERSION;
        }
        rg__fast_field(f, RG_F_INT)->i = v;
        return 1;
    }
    if (f->depth == 1)
        return 0; /* version 1.0 is not a whole number to jansson */
    double v = strtod(buf, &end);
    if (((v == HUGE_VAL || v == -HUGE_VAL) && errno == ERANGE) || end != buf + n)
        return 0;
    rg__fast_field(f, RG_F_REAL)->r = v;
    return 1;
}

static int rg__fast_null(void *ud)
{
    rg__fast *f = ud;
    return f->depth == 2 && rg__fast_field(f, RG_F_NULL);
}

static int rg__fast_bool(void *ud, int v)
{
    rg__fast *f = ud;
    return f->depth == 2 && rg__fast_field(f, v ? RG_F_TRUE : RG_F_FALSE);
}

static const yajl_callbacks rg__fast_cb = {
    .yajl_null = rg__fast_null,
    .yajl_boolean = rg__fast_bool,
    .yajl_number = rg__fast_number,
    .yajl_string = rg__fast_string,
    .yajl_start_map = rg__fast_map_start,
    .yajl_map_key = rg__fast_key,
    .yajl_end_map = rg__fast_map_end,
    .yajl_start_array = rg__fast_array,
    .yajl_end_array = rg__fast_array,
};

/* The order of the canonical text (jansson's JSON_SORT_KEYS: strcmp; keys
 * here have no NUL byte, so bytes then length is the same order). */
static int rg__fast_cmp(const void *a, const void *b)
{
    const rg__dfield *x = a, *y = b;
    int c = memcmp(x->key, y->key, x->klen < y->klen ? x->klen : y->klen);
    return c ? c : (x->klen > y->klen) - (x->klen < y->klen);
}

/* A string member the event needs: present, 1 to max bytes. */
static const char *rg__fast_str(const rg__fast *f, int k, size_t max)
{
    return (f->seen & (1u << k)) && f->str[k] && f->slen[k] >= 1 && f->slen[k] <= max
               ? f->str[k]
               : NULL;
}

/* 1 when text has no control byte, no byte of UTF-8 (jansson checks it
 * strictly) and no backslash-u escape: eight bytes at a time, a byte under
 * 0x20 found as in "has a zero byte" (a borrow runs only upwards from a
 * byte that is found anyway), then each backslash. */
static int rg__plain(const char *text, size_t len)
{
    const uint64_t ones = 0x0101010101010101u, highs = 0x8080808080808080u;
    size_t i = 0;
    for (; i + 8 <= len; i += 8) {
        uint64_t w;
        memcpy(&w, text + i, sizeof w);
        if ((w | ((w - 0x20 * ones) & ~w)) & highs)
            return 0;
    }
    for (; i < len; i++)
        if ((unsigned char)text[i] < 0x20 || (unsigned char)text[i] >= 0x80)
            return 0;
    for (const char *b = text; (b = memchr(b, '\\', len - (size_t)(b - text))); b++)
        if (b + 1 < text + len && b[1] == 'u')
            return 0;
    return 1;
}

/* Fills ev from a plain line in one pass; RG_OK only when the reference
 * path would accept the line with this very event, anything else (left
 * empty) when it has to be asked. */
static int rg__parse_fast(rg_event *ev, const char *text, size_t len)
{
    static const yajl_alloc_funcs ar = {rg__ar_malloc, rg__ar_realloc, rg__ar_free, NULL};
    if (len > RG__FAST_MAX || !rg__plain(text, len))
        return RG_EINVAL;
    rg__fast f;
    yajl_alloc_funcs af = ar;
    af.ctx = &f;
    f.depth = f.seen = f.data_map = f.ndf = 0;
    f.key = -1;
    f.version = 1;
    memset(f.str, 0, sizeof f.str);
    f.used = f.aused = 0;
    f.tmpend = f.tmp + sizeof f.tmp;
    /* one block: the event's strings (ev->mem), then the body (the line) */
    char *block = malloc(2 * (len + 1));
    if (!block)
        return RG_ENOMEM;
    f.mem = block;
    f.memend = block + len + 1;
    memcpy(f.memend, text, len);
    f.memend[len] = '\0';
    f.end = 0;
    yajl_handle h = f.h = yajl_alloc(&rg__fast_cb, &af, &f);
    int ok = h && yajl_parse(h, (const unsigned char *)text, len) == yajl_status_ok &&
             yajl_complete_parse(h) == yajl_status_ok && f.depth == 0 && f.end > 0 &&
             text[f.end - 1] == '}';
    for (size_t i = f.end; ok && i < len; i++)
        ok = text[i] == ' '; /* nothing after the object but spaces */
    if (h)
        yajl_free(h);
    char why[160];
    ok = ok && (ev->id = rg__fast_str(&f, RG__K_ID, RG_EVENT_MAX_ID)) && rg__printable(ev->id) &&
         (ev->clinic = rg__fast_str(&f, RG__K_CLINIC, RG_EVENT_MAX_CLINIC)) &&
         rg__clinic_ok(ev->clinic) &&
         (ev->patient = rg__fast_str(&f, RG__K_PATIENT, RG_EVENT_MAX_ID)) &&
         rg__printable(ev->patient) &&
         (ev->type = rg__fast_str(&f, RG__K_TYPE, RG_EVENT_MAX_TYPE)) &&
         rg_event_type_ok(ev->type) && rg__fast_str(&f, RG__K_AT, 64) &&
         !rg_time_parse(f.str[RG__K_AT], f.slen[RG__K_AT], &ev->at, &ev->offset_min, why,
                        sizeof why);
    ev->version = f.version;
    ev->status = RG_STATUS_FINAL;
    ev->corrected_at = RG_TIME_NONE;
    if (ok && (f.seen & (1u << RG__K_STATUS))) {
        ev->status = -1;
        for (int i = 0; f.str[RG__K_STATUS] && i < (int)RG_COUNTOF(rg__status); i++)
            if (!strcmp(f.str[RG__K_STATUS], rg__status[i]))
                ev->status = i;
        ok = ev->status >= 0;
    }
    if (ok && (f.seen & (1u << RG__K_CORRECTED_AT)))
        ok = rg__fast_str(&f, RG__K_CORRECTED_AT, 64) &&
             !rg_time_parse(f.str[RG__K_CORRECTED_AT], f.slen[RG__K_CORRECTED_AT],
                            &ev->corrected_at, NULL, why, sizeof why);
    else if (ev->version > 1)
        ok = 0;
    if (ok && (f.seen & (1u << RG__K_CORRECTED_BY)))
        ok = (ev->corrected_by = rg__fast_str(&f, RG__K_CORRECTED_BY, RG_EVENT_MAX_ID)) &&
             rg__printable(ev->corrected_by);
    if (ok && (f.seen & (1u << RG__K_DATA))) {
        ok = f.data_map;
        qsort(f.df, (size_t)f.ndf, sizeof f.df[0], rg__fast_cmp);
        for (int i = 1; ok && i < f.ndf; i++)
            ok = rg__fast_cmp(&f.df[i - 1], &f.df[i]) != 0; /* a duplicate key in data */
        int rc = ok ? rg_fields_begin(&ev->fields) : RG_OK;
        for (int i = 0; ok && rc == RG_OK && i < f.ndf; i++) {
            const rg__dfield *d = &f.df[i];
            switch (d->tag) {
            case RG_F_INT:
                rc = rg_fields_add_int(&ev->fields, d->key, d->klen, d->i);
                break;
            case RG_F_REAL:
                rc = rg_fields_add_real(&ev->fields, d->key, d->klen, d->r);
                break;
            case RG_F_STR:
                rc = rg_fields_add_str(&ev->fields, d->key, d->klen, d->s, d->slen);
                break;
            case RG_F_NULL:
                rc = rg_fields_add_null(&ev->fields, d->key, d->klen);
                break;
            default:
                rc = rg_fields_add_bool(&ev->fields, d->key, d->klen, d->tag == RG_F_TRUE);
            }
        }
        ok = ok && rc == RG_OK;
    }
    if (ok) {
        ev->mem = block;
        ev->body = block + len + 1; /* freed with mem (rg_event_clear) */
        return RG_OK;
    }
    rg_buf_free(&ev->fields);
    free(block);
    memset(ev, 0, sizeof *ev);
    return RG_EINVAL;
}

int rg_event_parse(rg_event *ev, const char *text, size_t len, char field[RG_FIELD_MAX],
                   char *err, size_t errlen)
{
    memset(ev, 0, sizeof *ev);
    field[0] = '\0';
    if (len <= RG__FAST_MAX && rg__parse_fast(ev, text, len) == RG_OK)
        return RG_OK;
    return rg_event_parse_ref(ev, text, len, field, err, errlen);
}

/* ---- a request body: one event or an array of them --------------------------------- */

/* The first pass over a body (yajl, no strings kept): where each event's
 * object begins and ends. base is the depth of the events: 0 for a body
 * that is one object, 1 inside a body that is an array. */
typedef struct rg__split {
    int depth, base;
    size_t start, n, cap;
    size_t (*cut)[2]; /* each event's [begin, end) in the body */
    yajl_handle h;
} rg__split;

static int rg__split_scalar(rg__split *s)
{
    return s->depth > s->base; /* a scalar where an event belongs: the reference path */
}
static int rg__split_null(void *ud) { return rg__split_scalar(ud); }
static int rg__split_bool(void *ud, int v) { (void)v; return rg__split_scalar(ud); }
static int rg__split_number(void *ud, const char *n, size_t l)
{
    (void)n, (void)l;
    return rg__split_scalar(ud);
}
static int rg__split_string(void *ud, const unsigned char *t, size_t l)
{
    (void)t, (void)l;
    return rg__split_scalar(ud);
}
static int rg__split_key(void *ud, const unsigned char *t, size_t l)
{
    (void)ud, (void)t, (void)l;
    return 1;
}

static int rg__split_map_start(void *ud)
{
    rg__split *s = ud;
    if (s->depth++ == s->base) /* (consumed counts the '{' already) */
        s->start = yajl_get_bytes_consumed(s->h) - 1;
    return 1;
}

static int rg__split_map_end(void *ud)
{
    rg__split *s = ud;
    if (--s->depth > s->base)
        return 1;
    if (s->n == s->cap) {
        size_t cap = s->cap ? 2 * s->cap : 64;
        size_t (*grown)[2] = realloc(s->cut, cap * sizeof *grown);
        if (!grown)
            return 0;
        s->cut = grown;
        s->cap = cap;
    }
    s->cut[s->n][0] = s->start;
    s->cut[s->n++][1] = yajl_get_bytes_consumed(s->h);
    return 1;
}

static int rg__split_array_start(void *ud)
{
    rg__split *s = ud;
    if (s->depth == 0) { /* the body is a list of events */
        s->base = 1;
    } else if (s->depth == s->base) {
        return 0; /* a list where an event belongs */
    }
    s->depth++;
    return 1;
}

static int rg__split_array_end(void *ud)
{
    rg__split *s = ud;
    s->depth--;
    return 1;
}

static const yajl_callbacks rg__split_cb = {
    .yajl_null = rg__split_null,
    .yajl_boolean = rg__split_bool,
    .yajl_number = rg__split_number,
    .yajl_string = rg__split_string,
    .yajl_start_map = rg__split_map_start,
    .yajl_map_key = rg__split_key,
    .yajl_end_map = rg__split_map_end,
    .yajl_start_array = rg__split_array_start,
    .yajl_end_array = rg__split_array_end,
};

int rg_event_parse_body(const char *text, size_t len, rg_event **evs, size_t *n)
{
    rg__split s = {0};
    *evs = NULL;
    *n = 0;
    if (memchr(text, '\0', len))
        return RG_EINVAL;
    yajl_handle h = s.h = yajl_alloc(&rg__split_cb, NULL, &s);
    int ok = h && yajl_parse(h, (const unsigned char *)text, len) == yajl_status_ok &&
             yajl_complete_parse(h) == yajl_status_ok && s.depth == 0 && s.n > 0;
    if (h)
        yajl_free(h);
    rg_event *v = ok ? calloc(s.n, sizeof *v) : NULL;
    size_t i = 0;
    for (; v && i < s.n; i++) /* each event as a line of bulk ingest would be read */
        if (rg__parse_fast(&v[i], text + s.cut[i][0], s.cut[i][1] - s.cut[i][0]) != RG_OK)
            break;
    free(s.cut);
    if (!v || i < s.n) {
        while (v && i > 0)
            rg_event_clear(&v[--i]);
        free(v);
        return ok && !v ? RG_ENOMEM : RG_EINVAL;
    }
    *evs = v;
    *n = s.n;
    return RG_OK;
}

void rg_event_free_all(rg_event *evs, size_t n)
{
    for (size_t i = 0; evs && i < n; i++)
        rg_event_clear(&evs[i]);
    free(evs);
}

int rg_event_parse_ref(rg_event *ev, const char *text, size_t len, char field[RG_FIELD_MAX],
                       char *err, size_t errlen)
{
    json_error_t je;
    memset(ev, 0, sizeof *ev);
    field[0] = '\0';
    if (len > RG_EVENT_MAX_LINE)
        return rg_fail(err, errlen, RG_EINVAL, "event is %zu bytes; the limit is %d", len,
                       RG_EVENT_MAX_LINE);
    json_t *obj = rg_json_loadb(text, len, JSON_REJECT_DUPLICATES, &je);
    /* memory is not the line's fault: the line must not be refused for it */
    if (!obj && rg_json_failed_for_memory(&je))
        return rg_fail(err, errlen, RG_ENOMEM, "out of memory");
    if (!obj)
        return rg_fail(err, errlen, RG_EINVAL, "not valid JSON: %s (column %d)", je.text,
                       je.column);
    int rc = rg__from_json(ev, obj, text, len, field, err, errlen);
    json_decref(obj);
    return rc;
}

char *rg_event_data_text(const char *body, size_t len)
{
    json_error_t je;
    json_t *obj = body ? rg_json_loadb(body, len, JSON_REJECT_DUPLICATES, &je) : NULL;
    json_t *data = obj ? json_object_get(obj, "data") : NULL;
    char *text = json_is_object(data)
                     ? json_dumps(data, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENSURE_ASCII)
                     : NULL;
    json_decref(obj);
    return text;
}

/* Text written into a fixed buffer (p), or compared with the text it must
 * equal (expect, elen): n counts what did not fit too; differs is set at
 * the first byte that is not as expected, and nothing is done after it. */
typedef struct rg__out {
    char *p;
    size_t n, cap;
    const char *expect;
    size_t elen;
    int differs;
} rg__out;

static void rg__put(rg__out *o, const char *s, size_t n)
{
    if (o->differs)
        return;
    if (o->expect && (o->n + n > o->elen || memcmp(o->expect + o->n, s, n)))
        o->differs = 1;
    else if (o->p && o->n + n <= o->cap)
        memcpy(o->p + o->n, s, n);
    o->n += n;
}

/* s[0..n) as a JSON string, escaped as jansson prints it compactly (what
 * JSON requires, nothing more): a body sent otherwise is kept whole. */
static void rg__put_str(rg__out *o, const char *s, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    rg__put(o, "\"", 1);
    size_t from = 0; /* a run of bytes that need no escape goes in one piece */
    for (size_t i = 0; i < n && !o->differs; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c >= 0x20 && c != '"' && c != '\\')
            continue;
        rg__put(o, s + from, i - from);
        from = i + 1;
        const char *named = c == '"' ? "\\\"" : c == '\\' ? "\\\\" : c == '\n' ? "\\n"
                          : c == '\t' ? "\\t" : c == '\r' ? "\\r" : c == '\b' ? "\\b"
                          : c == '\f' ? "\\f" : NULL;
        if (named)
            rg__put(o, named, 2);
        else {
            char u[6] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 15]};
            rg__put(o, u, 6);
        }
    }
    rg__put(o, s + from, n - from);
    rg__put(o, "\"", 1);
}

static void rg__put_field(rg__out *o, const char *key, const char *s)
{
    rg__put(o, key, strlen(key));
    rg__put_str(o, s, strlen(s));
}

/* v in decimal, at least width digits (zero-padded); v >= 0 */
static size_t rg__dec(char *out, int64_t v, int width)
{
    char t[24];
    int n = 0;
    do {
        t[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v || n < width);
    for (int i = 0; i < n; i++)
        out[i] = t[n - 1 - i];
    return (size_t)n;
}

/* `,"at":"` and the instant as the sender wrote it (local time, ms when
 * any, Z or the offset) and `"` at w (at most 64 bytes); returns the length. */
static size_t rg__at_text(char *w, rg_time at, int offset_min)
{
    int64_t local = at + (int64_t)offset_min * RG_MS_MINUTE;
    int64_t days = local / RG_MS_DAY, rem = local % RG_MS_DAY;
    if (rem < 0) {
        rem += RG_MS_DAY;
        days--;
    }
    int y, mo, d, off = offset_min < 0 ? -offset_min : offset_min;
    rg_civil_from_days(days, &y, &mo, &d);
    size_t n = 7;
    memcpy(w, ",\"at\":\"", 7);
    if (y < 0)
        w[n++] = '-';
    n += rg__dec(w + n, y < 0 ? -(int64_t)y : y, 4);
    w[n++] = '-';
    n += rg__dec(w + n, mo, 2);
    w[n++] = '-';
    n += rg__dec(w + n, d, 2);
    w[n++] = 'T';
    n += rg__dec(w + n, rem / RG_MS_HOUR, 2);
    w[n++] = ':';
    n += rg__dec(w + n, rem / RG_MS_MINUTE % 60, 2);
    w[n++] = ':';
    n += rg__dec(w + n, rem / RG_MS_SECOND % 60, 2);
    if (rem % 1000) {
        w[n++] = '.';
        n += rg__dec(w + n, rem % 1000, 3);
    }
    if (offset_min) {
        w[n++] = offset_min < 0 ? '-' : '+';
        n += rg__dec(w + n, off / 60, 2);
        w[n++] = ':';
        n += rg__dec(w + n, off % 60, 2);
    } else
        w[n++] = 'Z';
    w[n++] = '"';
    return n;
}

/* The head of a body as its columns say it (see event.h). */
static void rg__head(rg__out *o, const char *id, const char *clinic, const char *patient,
                     const char *type, rg_time at, int offset_min)
{
    char w[64];
    rg__put_field(o, "{\"id\":", id);
    rg__put_field(o, ",\"clinic\":", clinic);
    rg__put_field(o, ",\"patient\":", patient);
    rg__put_field(o, ",\"type\":", type);
    rg__put(o, w, rg__at_text(w, at, offset_min));
}

/* The head's fast path (every line of a usual feed): body at b goes on
 * with key (a literal) and s as a JSON string that needs no escape. The
 * position after it; NULL when it does not; *escapes set when s has a byte
 * JSON escapes (then rg__head decides). */
static const char *rg__head_str(const char *b, const char *key, size_t klen, const char *s,
                                int *escapes)
{
    if (!b || memcmp(b, key, klen))
        return NULL;
    for (b += klen; *s; s++, b++) {
        unsigned char c = (unsigned char)*s;
        if (c < 0x20 || c == '"' || c == '\\') {
            *escapes = 1;
            return NULL;
        }
        if (*b != *s)
            return NULL;
    }
    return *b == '"' ? b + 1 : NULL;
}

/* The rest a body has when its data is the compiled fields printed back in
 * their (sorted) order: `,"data":{...}}`, or `}` without data. 0, or -1
 * when the record is malformed. Numbers: integers in full, reals in the
 * fewest digits that read back the same. */
static int rg__fields_rest(rg__out *o, const void *rec, size_t len)
{
    if (!len) {
        rg__put(o, "}", 1);
        return 0;
    }
    rg__put(o, ",\"data\":{", 9);
    size_t pos = 0;
    rg_field f;
    int r, first = 1;
    char num[40];
    while (!o->differs && (r = rg_fields_next(rec, len, &pos, &f)) == 1) {
        if (!first)
            rg__put(o, ",", 1);
        first = 0;
        rg__put_str(o, f.key, f.klen);
        rg__put(o, ":", 1);
        if (o->differs)
            break;
        switch (f.tag) {
        case RG_F_INT: {
            size_t n = 0;
            if (f.i < 0)
                num[n++] = '-';
            /* the magnitude as unsigned: INT64_MIN has none as int64 */
            uint64_t u = f.i < 0 ? 0 - (uint64_t)f.i : (uint64_t)f.i;
            char t[24];
            int k = 0;
            do {
                t[k++] = (char)('0' + u % 10);
                u /= 10;
            } while (u);
            while (k)
                num[n++] = t[--k];
            rg__put(o, num, n);
            break;
        }
        case RG_F_REAL: {
            /* %g never ends a fraction with 0: a sender's "0.50" differs,
             * seen without printing (a number costs more than the rest) */
            if (o->expect) {
                size_t t = o->n, dot = 0, e = 0;
                for (; t < o->elen && !strchr(",}", o->expect[t]); t++)
                    dot |= o->expect[t] == '.', e |= (o->expect[t] | 0x20) == 'e';
                if (dot && !e && t > o->n && o->expect[t - 1] == '0') {
                    o->differs = 1;
                    break;
                }
            }
            int n = 0;
            for (int digits = 15; digits <= 17; digits++) {
                n = snprintf(num, sizeof num, "%.*g", digits, f.r);
                if (strtod(num, NULL) == f.r)
                    break;
            }
            rg__put(o, num, (size_t)n);
            break;
        }
        case RG_F_STR:
            rg__put_str(o, f.s, f.slen);
            break;
        case RG_F_JSON:
            rg__put(o, f.s, f.slen);
            break;
        case RG_F_TRUE:
            rg__put(o, "true", 4);
            break;
        case RG_F_FALSE:
            rg__put(o, "false", 5);
            break;
        case RG_F_NULL:
            rg__put(o, "null", 4);
            break;
        }
    }
    if (o->differs)
        return 0;
    rg__put(o, "}}", 2);
    return r ? -1 : 0;
}

/* the columns a head is made of fit RG_EVENT_MAX_HEAD */
static int rg__head_fits(const char *id, const char *clinic, const char *patient,
                         const char *type)
{
    return strlen(id) <= RG_EVENT_MAX_ID && strlen(patient) <= RG_EVENT_MAX_ID &&
           strlen(clinic) <= RG_EVENT_MAX_CLINIC && strlen(type) <= RG_EVENT_MAX_TYPE;
}

int rg_event_body_is_rest(const char *stored)
{
    return stored && (!*stored || *stored == ',' || *stored == '}');
}

const char *rg_event_body_rest(const char *body, const char *id, const char *clinic,
                               const char *patient, const char *type, rg_time at, int offset_min,
                               const void *fields, size_t nfields)
{
    /* too long for a head here: not from a valid event; kept whole */
    if (!rg__head_fits(id, clinic, patient, type))
        return body;
    size_t len = strlen(body);
    int escapes = 0;
    const char *b = rg__head_str(body, "{\"id\":\"", 7, id, &escapes);
    b = rg__head_str(b, ",\"clinic\":\"", 11, clinic, &escapes);
    b = rg__head_str(b, ",\"patient\":\"", 12, patient, &escapes);
    b = rg__head_str(b, ",\"type\":\"", 9, type, &escapes);
    if (b) {
        char w[64];
        size_t n = rg__at_text(w, at, offset_min);
        b = (size_t)(body + len - b) >= n && !memcmp(b, w, n) ? b + n : NULL;
    } else if (escapes) {
        char head[RG_EVENT_MAX_HEAD];
        rg__out h = {.p = head, .cap = sizeof head};
        rg__head(&h, id, clinic, patient, type, at, offset_min);
        b = h.n <= len && !memcmp(body, head, h.n) ? body + h.n : NULL;
    }
    if (!b || !*b || !rg_event_body_is_rest(b))
        return body;
    const char *rest = b;
    rg__out d = {.expect = rest, .elen = len - (size_t)(rest - body)};
    /* (rg_event_body_whole prints it back into RG_EVENT_MAX_REST bytes) */
    if (!rg__fields_rest(&d, fields, nfields) && !d.differs && d.n == d.elen &&
        d.n <= RG_EVENT_MAX_REST)
        return "";
    return rest;
}

char *rg_event_body_whole(const char *stored, size_t len, const char *id, const char *clinic,
                          const char *patient, const char *type, rg_time at, int offset_min,
                          const void *fields, size_t nfields)
{
    char head[RG_EVENT_MAX_HEAD], data[RG_EVENT_MAX_REST];
    rg__out h = {.p = head, .cap = sizeof head}, d = {.p = data, .cap = sizeof data};
    if (rg_event_body_is_rest(stored) && rg__head_fits(id, clinic, patient, type)) {
        rg__head(&h, id, clinic, patient, type, at, offset_min);
        if (!len && (rg__fields_rest(&d, fields, nfields) || d.n > d.cap))
            h.n = h.cap + 1; /* fields no longer what was stored: shown as stored */
    } else
        h.n = h.cap + 1;
    if (h.n > h.cap)
        h.n = d.n = 0;
    if (len)
        d.n = 0;
    char *whole = malloc(h.n + d.n + len + 1);
    if (whole) {
        memcpy(whole, head, h.n);
        memcpy(whole + h.n, data, d.n);
        memcpy(whole + h.n + d.n, stored, len);
        whole[h.n + d.n + len] = '\0';
    }
    return whole;
}

void rg_event_clear(rg_event *ev)
{
    if (!ev->mem) /* else the body is in mem's block */
        free(ev->body);
    free(ev->mem);
    rg_buf_free(&ev->fields);
    if (ev->json)
        json_decref(ev->json);
    memset(ev, 0, sizeof *ev);
}
