/*
 * event.c - validation of one event (JSON via jansson).
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

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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
    static const char *const known[] = {"id", "clinic", "patient", "type", "at", "data",
                                        "version", "status", "corrected_at", "corrected_by"};
    int rc = RG_EINVAL;
    memset(ev, 0, sizeof *ev);
    field[0] = '\0';
    if (!json_is_object(obj))
        FAIL("", "expected a JSON object, one event per line");

    const char *key;
    json_t *val;
    json_object_foreach(obj, key, val) {
        size_t i;
        for (i = 0; i < RG_COUNTOF(known); i++)
            if (!strcmp(key, known[i]))
                break;
        if (i == RG_COUNTOF(known))
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

int rg_event_parse(rg_event *ev, const char *text, size_t len, char field[RG_FIELD_MAX],
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

void rg_event_clear(rg_event *ev)
{
    free(ev->body);
    rg_buf_free(&ev->fields);
    if (ev->json)
        json_decref(ev->json);
    memset(ev, 0, sizeof *ev);
}
