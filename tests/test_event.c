/*
 * test_event.c - Criterion tests for runtime/core/event.c: validation of one event
 * line against the "Events in" contract (required string fields, lower-case
 * dotted type, RFC 3339 `at` with an offset, object `data`, no unknown
 * fields, bounded sizes) and the canonical body used for duplicate detection.
 *
 * Every refusal is checked for RG_EINVAL, the field it names ("" for the
 * line as a whole), a specific phrase in the message, and an emptied event.
 */
#include "core/digest.h"
#include "core/event.h"
#include "core/fields.h"
#include "store/store.h"

#include <criterion/criterion.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- helpers ------------------------------------------------------------ */

#define ID "\"ev-0193\""
#define CL "\"north\""
#define PT "\"p-17\""
#define TY "\"infusion\""
#define AT "\"2026-03-02T14:05:00-05:00\""
#define DATA "{\"dose_mg_per_kg\":0.5}"

/* Builds an event line from raw JSON member values; NULL leaves the member
 * out. extra (raw text like "\"x\":1") is appended as further members. */
static char *mk(const char *id, const char *clinic, const char *patient, const char *type,
                const char *at, const char *data, const char *extra)
{
    size_t cap = 256 + (id ? strlen(id) : 0) + (clinic ? strlen(clinic) : 0) +
                 (patient ? strlen(patient) : 0) + (type ? strlen(type) : 0) +
                 (at ? strlen(at) : 0) + (data ? strlen(data) : 0) + (extra ? strlen(extra) : 0);
    char *s = malloc(cap);
    cr_assert_not_null(s);
    size_t n = 0;
    const char *names[7] = {"id", "clinic", "patient", "type", "at", "data", NULL};
    const char *vals[7] = {id, clinic, patient, type, at, data, extra};
    s[n++] = '{';
    int first = 1;
    for (int i = 0; i < 7; i++) {
        if (!vals[i])
            continue;
        if (!first)
            s[n++] = ',';
        first = 0;
        if (names[i])
            n += (size_t)snprintf(s + n, cap - n, "\"%s\":%s", names[i], vals[i]);
        else
            n += (size_t)snprintf(s + n, cap - n, "%s", vals[i]);
    }
    s[n++] = '}';
    s[n] = '\0';
    return s;
}

/* A JSON string literal "<c repeated n times>", malloc'd. */
static char *jstr(char c, size_t n)
{
    char *s = malloc(n + 3);
    cr_assert_not_null(s);
    s[0] = '"';
    memset(s + 1, c, n);
    s[n + 1] = '"';
    s[n + 2] = '\0';
    return s;
}

/* The canonical text of ev's data as the store shows it (derived from the
 * body since schema v12; validation keeps no second copy), or NULL. Two
 * buffers in turn, so that two answers can be compared. */
static const char *data_of(const rg_event *ev)
{
    static char buf[2][RG_EVENT_MAX_DATA + 1];
    static int k;
    char *t = rg_event_data_text(ev->body, strlen(ev->body));
    if (!t)
        return NULL;
    k = !k;
    snprintf(buf[k], sizeof buf[k], "%s", t);
    free(t);
    return buf[k];
}

static void assert_empty(const rg_event *ev, const char *what)
{
    cr_assert_null(ev->id, "%s: ev.id not cleared", what);
    cr_assert_null(ev->clinic, "%s: ev.clinic not cleared", what);
    cr_assert_null(ev->patient, "%s: ev.patient not cleared", what);
    cr_assert_null(ev->type, "%s: ev.type not cleared", what);
    cr_assert_eq(ev->fields.len, 0, "%s: ev.fields not cleared", what);
    cr_assert_null(ev->body, "%s: ev.body not cleared", what);
    cr_assert_null(ev->json, "%s: ev.json not cleared", what);
    cr_assert_eq(ev->at, 0, "%s: ev.at not cleared", what);
}

/* Asserts that text[0..len) is refused: RG_EINVAL, field == want_field, the
 * message contains phrase, the event is left empty. */
static void bad_n(const char *text, size_t len, const char *want_field, const char *phrase)
{
    rg_event ev;
    memset(&ev, 0xA5, sizeof ev);
    char field[RG_FIELD_MAX];
    memset(field, 'Z', sizeof field);
    field[RG_FIELD_MAX - 1] = '\0';
    char err[512] = "";
    int rc = rg_event_parse(&ev, text, len, field, err, sizeof err);
    cr_assert_eq(rc, RG_EINVAL, "line %.200s: rc %d, expected RG_EINVAL (err: %s)", text, rc, err);
    cr_assert_str_eq(field, want_field, "line %.200s: field \"%s\", expected \"%s\" (err: %s)", text,
                     field, want_field, err);
    cr_assert_not_null(strstr(err, phrase), "line %.200s: error \"%s\" does not mention \"%s\"",
                       text, err, phrase);
    assert_empty(&ev, text);
}

static void bad(const char *text, const char *want_field, const char *phrase)
{
    bad_n(text, strlen(text), want_field, phrase);
}

/* Same, for a line built by mk() (and frees it). */
static void bad_mk(char *text, const char *want_field, const char *phrase)
{
    bad(text, want_field, phrase);
    free(text);
}

/* Parses text, asserting success; caller clears ev. */
static void good_n(rg_event *ev, const char *text, size_t len)
{
    char field[RG_FIELD_MAX] = "junk";
    char err[512] = "";
    int rc = rg_event_parse(ev, text, len, field, err, sizeof err);
    cr_assert_eq(rc, RG_OK, "line %.200s refused: rc %d field '%s': %s", text, rc, field, err);
    cr_assert_str_eq(field, "", "field not cleared on success");
    cr_assert_not_null(ev->body);
    cr_assert(ev->json || ev->mem, "neither parser's strings are kept");
}

static void good(rg_event *ev, const char *text) { good_n(ev, text, strlen(text)); }

/* ---- good lines --------------------------------------------------------- */

Test(event, design_example_every_field)
{
    const char *line = "{\"id\":\"ev-0193\",\"clinic\":\"north\",\"patient\":\"p-17\","
                       "\"type\":\"infusion\",\"at\":\"2026-03-02T14:05:00-05:00\","
                       "\"data\":{\"dose_mg_per_kg\":0.5}}";
    rg_event ev;
    good(&ev, line);
    cr_assert_str_eq(ev.id, "ev-0193");
    cr_assert_str_eq(ev.clinic, "north");
    cr_assert_str_eq(ev.patient, "p-17");
    cr_assert_str_eq(ev.type, "infusion");
    cr_assert_eq(ev.at, INT64_C(1772478300000));
    cr_assert_eq(ev.offset_min, -300);
    cr_assert_not_null(data_of(&ev));
    cr_assert_str_eq(data_of(&ev), "{\"dose_mg_per_kg\":0.5}");
    cr_assert_str_eq(ev.body, line, "the body is the line as received");
    /* a plain line is read in one pass: no tree, the strings in ev.mem */
    cr_assert_null(ev.json);
    cr_assert_eq(ev.id, ev.mem);
    rg_event_clear(&ev);
    /* the reference path keeps the tree, and its strings point into it */
    char field[RG_FIELD_MAX], err[256];
    cr_assert_eq(rg_event_parse_ref(&ev, line, strlen(line), field, err, sizeof err), RG_OK);
    cr_assert_eq(ev.id, json_string_value(json_object_get(ev.json, "id")));
    cr_assert_eq(ev.patient, json_string_value(json_object_get(ev.json, "patient")));
    rg_event_clear(&ev);
    assert_empty(&ev, "after rg_event_clear");
}

Test(event, without_data_and_with_utc_time)
{
    rg_event ev;
    char *line = mk("\"e1\"", "\"South_2.b\"", "\"p 1 / x\"", "\"lab.result\"",
                    "\"2026-03-09T14:05:00.123Z\"", NULL, NULL);
    good(&ev, line);
    cr_assert_str_eq(ev.id, "e1");
    cr_assert_str_eq(ev.clinic, "South_2.b");
    cr_assert_str_eq(ev.patient, "p 1 / x");
    cr_assert_str_eq(ev.type, "lab.result");
    cr_assert_eq(ev.at, INT64_C(1773065100123));
    cr_assert_eq(ev.offset_min, 0);
    cr_assert_null(data_of(&ev));
    cr_assert_str_eq(ev.body, line, "the body is the line as received");
    rg_event_clear(&ev);
    free(line);
}

Test(event, positive_offset_and_empty_data_object)
{
    rg_event ev;
    char *line = mk(ID, CL, PT, TY, "\"2026-03-09T16:05:00+02:00\"", "{}", NULL);
    good(&ev, line);
    cr_assert_eq(ev.at, INT64_C(1773065100000));
    cr_assert_eq(ev.offset_min, 120);
    cr_assert_str_eq(data_of(&ev), "{}");
    rg_event_clear(&ev);
    free(line);
}

Test(event, type_words_with_dots_digits_underscores)
{
    static const char *const types[] = {"\"a\"", "\"lab.result\"", "\"vital_sign.bp2\"",
                                        "\"a.b.c.d\"", "\"x9\"", "\"dose.mg_per_kg\""};
    for (size_t i = 0; i < RG_COUNTOF(types); i++) {
        rg_event ev;
        char *line = mk(ID, CL, PT, types[i], AT, NULL, NULL);
        good(&ev, line);
        cr_assert_eq(strncmp(ev.type, types[i] + 1, strlen(types[i]) - 2), 0);
        cr_assert_eq(strlen(ev.type), strlen(types[i]) - 2);
        rg_event_clear(&ev);
        free(line);
    }
}

/* Puts a then b into a fresh store: the outcome of b. */
static rg_put store_pair(const rg_event *a, const rg_event *b)
{
    rg_store *st;
    char err[256];
    rg_put put;
    cr_assert_eq(rg_store_open(&st, ":memory:", NULL, err, sizeof err), 0, "%s", err);
    cr_assert_eq(rg_store_put_event(st, a, 0, &put), 0);
    cr_assert_eq(put, RG_PUT_STORED);
    cr_assert_eq(rg_store_put_event(st, b, 0, &put), 0);
    rg_store_close(st);
    return put;
}

Test(event, identity_ignores_key_order_and_whitespace)
{
    const char *a = "{\"id\":\"ev-1\",\"clinic\":\"north\",\"patient\":\"p-17\",\"type\":\"infusion\","
                    "\"at\":\"2026-03-02T14:05:00-05:00\",\"data\":{\"dose\":0.5,\"route\":\"iv\","
                    "\"nested\":{\"b\":[1,2],\"a\":null}}}";
    const char *b = "  {\n \"data\" : { \"nested\" : {\"a\": null, \"b\" : [ 1 , 2 ] },\t\"route\":"
                    "\"iv\", \"dose\" : 0.5 } ,\r\n \"at\":\"2026-03-02T14:05:00-05:00\" , \"type\" :"
                    " \"infusion\", \"patient\":\"p-17\",\"clinic\":\"north\" , \"id\" : \"ev-1\" } ";
    rg_event ea, eb;
    good(&ea, a);
    good(&eb, b);
    cr_assert(json_equal(ea.json, eb.json));
    cr_assert_eq(store_pair(&ea, &eb), RG_PUT_DUPLICATE, "re-sent in another layout: a duplicate");
    cr_assert_str_eq(data_of(&ea), data_of(&eb));
    cr_assert_str_eq(data_of(&ea), "{\"dose\":0.5,\"nested\":{\"a\":null,\"b\":[1,2]},\"route\":\"iv\"}");
    cr_assert_eq(ea.at, eb.at);
    rg_event_clear(&ea);
    rg_event_clear(&eb);
}

Test(event, identity_of_unicode_escapes_equals_raw_utf8)
{
    const char *a = "{\"id\":\"e\",\"clinic\":\"c\",\"patient\":\"Ren\\u00e9e\",\"type\":\"t\","
                    "\"at\":\"2026-03-02T14:05:00Z\",\"data\":{\"note\":\"caf\\u00e9\"}}";
    const char *b = "{\"id\":\"e\",\"clinic\":\"c\",\"patient\":\"Ren\xc3\xa9" "e\",\"type\":\"t\","
                    "\"at\":\"2026-03-02T14:05:00Z\",\"data\":{\"note\":\"caf\xc3\xa9\"}}";
    rg_event ea, eb;
    good(&ea, a);
    good(&eb, b);
    cr_assert_str_eq(ea.patient, "Ren\xc3\xa9" "e");
    cr_assert_eq(store_pair(&ea, &eb), RG_PUT_DUPLICATE);
    cr_assert_str_eq(data_of(&ea), "{\"note\":\"caf\\u00E9\"}"); /* ASCII-only canonical form */
    rg_event_clear(&ea);
    rg_event_clear(&eb);
}

Test(event, identity_differs_when_content_differs)
{
    char *base = mk(ID, CL, PT, TY, AT, DATA, NULL);
    char *other_data = mk(ID, CL, PT, TY, AT, "{\"dose_mg_per_kg\":0.6}", NULL);
    char *no_data = mk(ID, CL, PT, TY, AT, NULL, NULL);
    char *other_type = mk(ID, CL, PT, "\"infusion.end\"", AT, DATA, NULL);
    /* the same instant spelt differently is different content */
    char *other_at = mk(ID, CL, PT, TY, "\"2026-03-02T19:05:00Z\"", DATA, NULL);
    rg_event e0, e;
    good(&e0, base);
    char *lines[] = {other_data, no_data, other_type, other_at};
    for (size_t i = 0; i < RG_COUNTOF(lines); i++) {
        good(&e, lines[i]);
        cr_assert_eq(store_pair(&e0, &e), RG_PUT_CONFLICT, "%s", lines[i]);
        rg_event_clear(&e);
        free(lines[i]);
    }
    good(&e, base); /* the same line again is a duplicate */
    cr_assert_eq(store_pair(&e0, &e), RG_PUT_DUPLICATE);
    rg_event_clear(&e);
    rg_event_clear(&e0);
    free(base);
}

Test(event, length_argument_bounds_the_line)
{
    /* ingest hands over lines with their newline still in the buffer */
    char *line = mk(ID, CL, PT, TY, AT, DATA, NULL);
    size_t n = strlen(line);
    char *withnl = malloc(n + 8);
    memcpy(withnl, line, n);
    memcpy(withnl + n, "\nXYZ{", 6);
    rg_event ev;
    good_n(&ev, withnl, n);
    cr_assert_str_eq(ev.id, "ev-0193");
    rg_event_clear(&ev);
    /* and one byte short of the closing brace is refused */
    bad_n(withnl, n - 1, "", "not valid JSON");
    free(withnl);
    free(line);
}

Test(event, size_limits_are_inclusive)
{
    rg_event ev;
    char *id = jstr('i', RG_EVENT_MAX_ID), *pt = jstr('p', RG_EVENT_MAX_ID),
         *cl = jstr('c', RG_EVENT_MAX_CLINIC), *ty = jstr('t', RG_EVENT_MAX_TYPE);
    char *line = mk(id, cl, pt, ty, AT, NULL, NULL);
    good(&ev, line);
    cr_assert_eq(strlen(ev.id), RG_EVENT_MAX_ID);
    cr_assert_eq(strlen(ev.patient), RG_EVENT_MAX_ID);
    cr_assert_eq(strlen(ev.clinic), RG_EVENT_MAX_CLINIC);
    cr_assert_eq(strlen(ev.type), RG_EVENT_MAX_TYPE);
    rg_event_clear(&ev);
    free(line);
    /* data of exactly RG_EVENT_MAX_DATA bytes in canonical form: {"s":"xxx"} */
    char *sv = jstr('x', RG_EVENT_MAX_DATA - 8);
    char data[RG_EVENT_MAX_DATA + 64];
    snprintf(data, sizeof data, "{\"s\":%s}", sv);
    line = mk(ID, CL, PT, TY, AT, data, NULL);
    good(&ev, line);
    cr_assert_eq(strlen(data_of(&ev)), RG_EVENT_MAX_DATA);
    rg_event_clear(&ev);
    free(line);
    free(sv);
    free(id);
    free(pt);
    free(cl);
    free(ty);
}

Test(event, line_of_exactly_max_bytes_is_accepted)
{
    char *line = mk(ID, CL, PT, TY, AT, DATA, NULL);
    size_t n = strlen(line);
    char *big = malloc(RG_EVENT_MAX_LINE + 2);
    big[0] = '{';
    memset(big + 1, ' ', RG_EVENT_MAX_LINE - n);
    memcpy(big + 1 + (RG_EVENT_MAX_LINE - n), line + 1, n - 1);
    big[RG_EVENT_MAX_LINE] = '\0';
    cr_assert_eq(strlen(big), RG_EVENT_MAX_LINE);
    rg_event ev;
    good(&ev, big);
    cr_assert_str_eq(ev.id, "ev-0193");
    rg_event_clear(&ev);
    /* one more byte of whitespace: refused before parsing */
    char *bigger = malloc(RG_EVENT_MAX_LINE + 2);
    bigger[0] = ' ';
    memcpy(bigger + 1, big, RG_EVENT_MAX_LINE + 1);
    cr_assert_eq(strlen(bigger), RG_EVENT_MAX_LINE + 1);
    bad(bigger, "", "limit is 65536");
    bad(bigger, "", "65537 bytes");
    free(bigger);
    free(big);
    free(line);
}

Test(event, from_json_takes_a_reference_only_on_success)
{
    char *line = mk(ID, CL, PT, TY, AT, DATA, NULL);
    json_error_t je;
    json_t *obj = json_loads(line, 0, &je);
    cr_assert_not_null(obj);
    cr_assert_eq(obj->refcount, 1);
    rg_event ev;
    char field[RG_FIELD_MAX], err[256];
    cr_assert_eq(rg_event_from_json(&ev, obj, field, err, sizeof err), RG_OK, "%s", err);
    cr_assert_eq(obj->refcount, 2);
    cr_assert_eq(ev.json, obj);
    cr_assert_eq(ev.at, INT64_C(1772478300000));
    rg_event_clear(&ev);
    cr_assert_eq(obj->refcount, 1);
    /* a refused object keeps its count */
    json_object_set_new(obj, "type", json_string("Bad Type"));
    cr_assert_eq(rg_event_from_json(&ev, obj, field, err, sizeof err), RG_EINVAL);
    cr_assert_str_eq(field, "type");
    cr_assert_eq(obj->refcount, 1);
    assert_empty(&ev, "from_json failure");
    json_decref(obj);
    /* non-object values */
    json_t *arr = json_array();
    cr_assert_eq(rg_event_from_json(&ev, arr, field, err, sizeof err), RG_EINVAL);
    cr_assert_str_eq(field, "");
    cr_assert_not_null(strstr(err, "expected a JSON object"), "%s", err);
    cr_assert_eq(arr->refcount, 1);
    json_decref(arr);
    free(line);
}

Test(event, type_ok_predicate)
{
    static const char *const yes[] = {"a", "infusion", "lab.result", "a_b", "a1.b2.c3", "x.y_",
                                      "a__"};
    static const char *const no[] = {"",         "Infusion", "in fusion", "infusion.", ".x",
                                     "a..b",     "1a",       "_a",        "a.1b",      "a-b",
                                     "a.B",      "infusioN", "a.",        ".",         "a/b",
                                     "caf\xc3\xa9"};
    for (size_t i = 0; i < RG_COUNTOF(yes); i++)
        cr_assert_eq(rg_event_type_ok(yes[i]), 1, "\"%s\" should be a type", yes[i]);
    for (size_t i = 0; i < RG_COUNTOF(no); i++)
        cr_assert_eq(rg_event_type_ok(no[i]), 0, "\"%s\" should not be a type", no[i]);
}

/* ---- bad lines: the line as a whole ------------------------------------- */

Test(event, not_json)
{
    bad("not json", "", "not valid JSON");
    bad("{\"id\":\"ev-1\",", "", "not valid JSON");
    bad("{id:\"ev-1\"}", "", "not valid JSON");
    bad("", "", "not valid JSON");
    bad("   ", "", "not valid JSON");
    /* a second value after the object */
    char *line = mk(ID, CL, PT, TY, AT, NULL, NULL);
    char buf[512];
    snprintf(buf, sizeof buf, "%s {}", line);
    bad(buf, "", "not valid JSON");
    snprintf(buf, sizeof buf, "%s%s", line, line);
    bad(buf, "", "not valid JSON");
    free(line);
}

/* jansson skips a raw NUL byte between tokens: {"a": 4\0} loads as {"a": 4}.
 * The line as received, kept as the event's body, would end at the NUL and
 * be stored as text that is not JSON (a re-sent copy then failed ingest as
 * "out of memory"; fuzz regression event/nul-byte-between-tokens). */
Test(event, nul_byte_anywhere_is_refused_with_its_column)
{
    char *line = mk(ID, CL, PT, TY, AT, "{\"dose_mg_per_kg\":0.5,\"duration_min\":4}", NULL);
    size_t n = strlen(line);
    const char *after[] = {"4", "{", ",", ":", "\"id\""};
    for (size_t i = 0; i < RG_COUNTOF(after); i++) {
        char *copy = strdup(line);
        char *at = strstr(copy, after[i]);
        cr_assert(at);
        size_t k = (size_t)(at - copy) + strlen(after[i]);
        copy[k] = '\0'; /* overwrite the byte after the token */
        rg_event ev;
        char field[RG_FIELD_MAX], err[256];
        cr_assert_eq(rg_event_parse(&ev, copy, n, field, err, sizeof err), RG_EINVAL,
                     "NUL after %s accepted", after[i]);
        assert_empty(&ev, after[i]);
        char want[64];
        snprintf(want, sizeof want, "(column %zu)", k + 1);
        cr_assert(strstr(err, "NUL byte") && strstr(err, want), "%s: %s", after[i], err);
        free(copy);
    }
    /* inserted (not overwriting) before the closing brace: the case jansson accepts */
    char *ins = malloc(n + 1);
    memcpy(ins, line, n - 1);
    ins[n - 1] = '\0';
    ins[n] = '}';
    bad_n(ins, n + 1, "", "NUL byte");
    free(ins);
    free(line);
}

Test(event, json_array_is_not_an_event)
{
    bad("[1,2]", "", "expected a JSON object");
    bad("[]", "", "expected a JSON object");
    char *line = mk(ID, CL, PT, TY, AT, NULL, NULL);
    char buf[512];
    snprintf(buf, sizeof buf, "[%s]", line);
    bad(buf, "", "expected a JSON object");
    free(line);
}

Test(event, json_scalars_are_not_events)
{
    /* refused by the JSON reader itself (no JSON_DECODE_ANY): '[' or '{' expected */
    bad("\"infusion\"", "", "JSON");
    bad("\"infusion\"", "", "'{'");
    bad("42", "", "'{'");
    bad("null", "", "'{'");
    bad("true", "", "'{'");
}

Test(event, duplicate_keys)
{
    bad("{\"id\":\"a\",\"id\":\"a\",\"clinic\":\"north\",\"patient\":\"p\",\"type\":\"t\","
        "\"at\":\"2026-03-02T14:05:00Z\"}",
        "", "duplicate");
    bad("{\"id\":\"a\",\"clinic\":\"north\",\"patient\":\"p\",\"type\":\"t\","
        "\"at\":\"2026-03-02T14:05:00Z\",\"id\":\"b\"}",
        "", "duplicate");
    /* inside data too */
    bad_mk(mk(ID, CL, PT, TY, AT, "{\"dose\":1,\"dose\":2}", NULL), "", "duplicate");
}

Test(event, oversize_line)
{
    /* more than RG_EVENT_MAX_LINE bytes, even if it is otherwise JSON */
    size_t n = RG_EVENT_MAX_LINE + 100;
    char *sv = jstr('x', n);
    char *line = mk(ID, CL, PT, TY, AT, NULL, NULL);
    char *big = malloc(strlen(line) + n + 64);
    sprintf(big, "{\"pad\":%s,%s", sv, line + 1);
    bad(big, "", "the limit is 65536");
    /* the length, not the NUL, decides */
    cr_assert_gt(strlen(big), RG_EVENT_MAX_LINE);
    bad_n(big, strlen(big), "", "bytes");
    free(big);
    free(line);
    free(sv);
}

/* ---- bad lines: one field ----------------------------------------------- */

Test(event, missing_each_required_field)
{
    bad_mk(mk(NULL, CL, PT, TY, AT, DATA, NULL), "id", "required field 'id' is missing");
    bad_mk(mk(ID, NULL, PT, TY, AT, DATA, NULL), "clinic", "required field 'clinic' is missing");
    bad_mk(mk(ID, CL, NULL, TY, AT, DATA, NULL), "patient", "required field 'patient' is missing");
    bad_mk(mk(ID, CL, PT, NULL, AT, DATA, NULL), "type", "required field 'type' is missing");
    bad_mk(mk(ID, CL, PT, TY, NULL, DATA, NULL), "at", "required field 'at' is missing");
    bad("{}", "id", "required field 'id' is missing");
}

Test(event, wrong_type_of_each_field)
{
    static const char *const wrong[] = {"17", "1.5", "true", "false", "null", "[\"x\"]",
                                        "{\"v\":\"x\"}"};
    for (size_t i = 0; i < RG_COUNTOF(wrong); i++) {
        const char *w = wrong[i];
        bad_mk(mk(w, CL, PT, TY, AT, NULL, NULL), "id", "field 'id' must be a string");
        bad_mk(mk(ID, w, PT, TY, AT, NULL, NULL), "clinic", "field 'clinic' must be a string");
        bad_mk(mk(ID, CL, w, TY, AT, NULL, NULL), "patient", "field 'patient' must be a string");
        bad_mk(mk(ID, CL, PT, w, AT, NULL, NULL), "type", "field 'type' must be a string");
        bad_mk(mk(ID, CL, PT, TY, w, NULL, NULL), "at", "field 'at' must be a string");
    }
    /* a time as a number of ms is not accepted either */
    bad_mk(mk(ID, CL, PT, TY, "1772478300000", NULL, NULL), "at", "must be a string");
}

Test(event, empty_strings)
{
    bad_mk(mk("\"\"", CL, PT, TY, AT, NULL, NULL), "id", "1 to 128 characters (has 0)");
    bad_mk(mk(ID, "\"\"", PT, TY, AT, NULL, NULL), "clinic", "1 to 64 characters (has 0)");
    bad_mk(mk(ID, CL, "\"\"", TY, AT, NULL, NULL), "patient", "1 to 128 characters (has 0)");
    bad_mk(mk(ID, CL, PT, "\"\"", AT, NULL, NULL), "type", "1 to 64 characters (has 0)");
    bad_mk(mk(ID, CL, PT, TY, "\"\"", NULL, NULL), "at", "(has 0)");
}

Test(event, strings_over_their_limits)
{
    char *s;
    s = jstr('i', RG_EVENT_MAX_ID + 1);
    bad_mk(mk(s, CL, PT, TY, AT, NULL, NULL), "id", "1 to 128 characters (has 129)");
    free(s);
    s = jstr('p', RG_EVENT_MAX_ID + 1);
    bad_mk(mk(ID, CL, s, TY, AT, NULL, NULL), "patient", "(has 129)");
    free(s);
    s = jstr('c', RG_EVENT_MAX_CLINIC + 1);
    bad_mk(mk(ID, s, PT, TY, AT, NULL, NULL), "clinic", "1 to 64 characters (has 65)");
    free(s);
    s = jstr('t', RG_EVENT_MAX_TYPE + 1);
    bad_mk(mk(ID, CL, PT, s, AT, NULL, NULL), "type", "(has 65)");
    free(s);
    /* limits are bytes: 65 two-byte characters are 130 bytes */
    char big[512];
    size_t n = 0;
    big[n++] = '"';
    for (int i = 0; i < 65; i++) {
        big[n++] = '\xc3';
        big[n++] = '\xa9';
    }
    big[n++] = '"';
    big[n] = '\0';
    bad_mk(mk(big, CL, PT, TY, AT, NULL, NULL), "id", "(has 130)");
}

Test(event, type_not_a_lower_case_word)
{
    static const char *const types[] = {"\"Infusion\"", "\"in fusion\"", "\"infusion.\"",
                                        "\".x\"",       "\"a..b\"",      "\"lab-result\"",
                                        "\"1st\"",      "\"INFUSION\"",  "\"lab.Result\"",
                                        "\"_x\"",       "\".\"",         "\"a/b\""};
    for (size_t i = 0; i < RG_COUNTOF(types); i++)
        bad_mk(mk(ID, CL, PT, types[i], AT, NULL, NULL), "type", "lower-case word");
    /* the message quotes the offending value */
    bad_mk(mk(ID, CL, PT, "\"in fusion\"", AT, NULL, NULL), "type", "not \"in fusion\"");
}

Test(event, bad_at)
{
    bad_mk(mk(ID, CL, PT, TY, "\"2026-02-30T10:00:00Z\"", NULL, NULL), "at", "not a date");
    bad_mk(mk(ID, CL, PT, TY, "\"2026-02-30T10:00:00Z\"", NULL, NULL), "at",
           "\"2026-02-30T10:00:00Z\" is not a valid time");
    bad_mk(mk(ID, CL, PT, TY, "\"2026-03-02T14:05:00\"", NULL, NULL), "at", "missing UTC offset");
    bad_mk(mk(ID, CL, PT, TY, "\"2026-03-02 14:05:00Z\"", NULL, NULL), "at", "'T'");
    bad_mk(mk(ID, CL, PT, TY, "\"2026-03-02\"", NULL, NULL), "at", "not a valid time");
    bad_mk(mk(ID, CL, PT, TY, "\"yesterday\"", NULL, NULL), "at", "not a valid time");
    bad_mk(mk(ID, CL, PT, TY, "\"2026-03-02T14:05:00+0500\"", NULL, NULL), "at", "+HH:MM");
    char *s = jstr('9', 65);
    bad_mk(mk(ID, CL, PT, TY, s, NULL, NULL), "at", "(has 65)");
    free(s);
}

Test(event, data_not_an_object)
{
    static const char *const vals[] = {"[1,2]", "[]", "\"x\"", "null", "0.5", "true", "\"{}\""};
    for (size_t i = 0; i < RG_COUNTOF(vals); i++)
        bad_mk(mk(ID, CL, PT, TY, AT, vals[i], NULL), "data", "field 'data' must be a JSON object");
}

Test(event, oversize_data)
{
    char *sv = jstr('x', RG_EVENT_MAX_DATA - 7); /* canonical {"s":"..."} is MAX+1 */
    char data[RG_EVENT_MAX_DATA + 64];
    snprintf(data, sizeof data, "{\"s\":%s}", sv);
    bad_mk(mk(ID, CL, PT, TY, AT, data, NULL), "data", "larger than 16384 bytes");
    free(sv);
    /* whitespace does not count (canonical form), escapes do: 3000 x "é" is
     * 6000 bytes of UTF-8 but 18000 bytes as \u00e9 */
    char *wide = malloc(RG_EVENT_MAX_DATA * 2);
    size_t n = (size_t)sprintf(wide, "{\"s\":\"");
    for (int i = 0; i < 3000; i++) {
        wide[n++] = '\xc3';
        wide[n++] = '\xa9';
    }
    strcpy(wide + n, "\"}");
    bad_mk(mk(ID, CL, PT, TY, AT, wide, NULL), "data", "larger than");
    free(wide);
    /* many spaces around a small object are fine */
    char *padded = malloc(RG_EVENT_MAX_DATA + 1000);
    n = (size_t)sprintf(padded, "{\"a\":");
    memset(padded + n, ' ', RG_EVENT_MAX_DATA + 10);
    strcpy(padded + n + RG_EVENT_MAX_DATA + 10, "1}");
    char *line = mk(ID, CL, PT, TY, AT, padded, NULL);
    rg_event ev;
    good(&ev, line);
    cr_assert_str_eq(data_of(&ev), "{\"a\":1}");
    rg_event_clear(&ev);
    free(line);
    free(padded);
}

Test(event, unknown_field_is_named)
{
    /* a misspelt patient */
    bad("{\"id\":\"ev-1\",\"clinic\":\"north\",\"pateint\":\"p-17\",\"type\":\"infusion\","
        "\"at\":\"2026-03-02T14:05:00Z\"}",
        "pateint", "unknown field 'pateint'");
    /* extra field on an otherwise complete event */
    bad_mk(mk(ID, CL, PT, TY, AT, DATA, "\"note\":\"hi\""), "note", "unknown field 'note'");
    bad_mk(mk(ID, CL, PT, TY, AT, DATA, "\"Data\":{}"), "Data", "unknown field 'Data'");
    bad_mk(mk(ID, CL, PT, TY, AT, DATA, "\"\":1"), "", "unknown field ''");
    /* reported before anything else is checked */
    bad("{\"extra\":1}", "extra", "an event has id, clinic, patient, type, at, data");
}

Test(event, long_unknown_field_name_is_truncated_safely)
{
    char name[301];
    memset(name, 'k', 300);
    name[300] = '\0';
    char extra[400];
    snprintf(extra, sizeof extra, "\"%s\":1", name);
    char *line = mk(ID, CL, PT, TY, AT, NULL, extra);
    rg_event ev;
    char field[RG_FIELD_MAX], err[512];
    cr_assert_eq(rg_event_parse(&ev, line, strlen(line), field, err, sizeof err), RG_EINVAL);
    cr_assert_eq(strlen(field), RG_FIELD_MAX - 1);
    cr_assert_eq(strncmp(field, name, RG_FIELD_MAX - 1), 0);
    cr_assert_not_null(strstr(err, "unknown field"), "%s", err);
    free(line);
}

Test(event, control_characters_in_id_and_patient)
{
    static const char *const ctl[] = {"\"ev\\u0001x\"", "\"ev\\nx\"", "\"ev\\tx\"",
                                      "\"ev\\u001fx\"", "\"ev\\u007fx\"", "\"\\r\"",
                                      "\"ev\x01x\""};
    for (size_t i = 0; i < RG_COUNTOF(ctl); i++) {
        char *l1 = mk(ctl[i], CL, PT, TY, AT, NULL, NULL);
        char *l2 = mk(ID, CL, ctl[i], TY, AT, NULL, NULL);
        rg_event ev;
        char field[RG_FIELD_MAX], err[512] = "";
        int rc = rg_event_parse(&ev, l1, strlen(l1), field, err, sizeof err);
        cr_assert_eq(rc, RG_EINVAL, "%s accepted as id", ctl[i]);
        /* a raw control byte is already invalid JSON; escaped ones reach the check */
        if (strchr(ctl[i], '\\')) {
            cr_assert_str_eq(field, "id", "%s: field %s", ctl[i], field);
            cr_assert_not_null(strstr(err, "control characters"), "%s: %s", ctl[i], err);
        } else {
            cr_assert_str_eq(field, "", "%s: field %s", ctl[i], field);
        }
        rc = rg_event_parse(&ev, l2, strlen(l2), field, err, sizeof err);
        cr_assert_eq(rc, RG_EINVAL, "%s accepted as patient", ctl[i]);
        if (strchr(ctl[i], '\\')) {
            cr_assert_str_eq(field, "patient", "%s: field %s", ctl[i], field);
            cr_assert_not_null(strstr(err, "field 'patient' must not contain control characters"),
                               "%s: %s", ctl[i], err);
        }
        free(l1);
        free(l2);
    }
    /* an escaped NUL is refused too (by the JSON reader) */
    bad_mk(mk("\"ev\\u0000x\"", CL, PT, TY, AT, NULL, NULL), "", "not valid JSON");
    bad_mk(mk(ID, CL, "\"p\\u0000\"", TY, AT, NULL, NULL), "", "not valid JSON");
}

Test(event, clinic_characters)
{
    static const char *const bads[] = {"\"north/east\"", "\"../north\"", "\"north east\"",
                                       "\"north\\\\x\"", "\"n:1\"",      "\"caf\\u00e9\"",
                                       "\"north\\n\"",   "\"a*\""};
    for (size_t i = 0; i < RG_COUNTOF(bads); i++)
        bad_mk(mk(ID, bads[i], PT, TY, AT, NULL, NULL), "clinic",
               "may hold only letters, digits, '-', '_' and '.'");
}

Test(event, err_buffer_may_be_null)
{
    rg_event ev;
    char field[RG_FIELD_MAX];
    char *line = mk(ID, CL, PT, "\"Infusion\"", AT, NULL, NULL);
    cr_assert_eq(rg_event_parse(&ev, line, strlen(line), field, NULL, 0), RG_EINVAL);
    cr_assert_str_eq(field, "type");
    free(line);
    /* and a tiny one is truncated, not overrun */
    char err[8];
    memset(err, 'Q', sizeof err);
    cr_assert_eq(rg_event_parse(&ev, "x", 1, field, err, 4), RG_EINVAL);
    cr_assert_eq(err[3], '\0');
    cr_assert_eq(err[4], 'Q');
}

/* ---- corrections (docs/corrections.md) ---------------------------------------- */

#define EV_HEAD "{\"id\":\"a\",\"clinic\":\"c\",\"patient\":\"p\",\"type\":\"vitals\"," \
                "\"at\":\"2026-03-02T10:00:00Z\""

Test(event, correction_fields_default_and_parse)
{
    rg_event ev;
    char field[RG_FIELD_MAX], err[256];
    const char *plain = EV_HEAD "}";
    cr_assert_eq(rg_event_parse(&ev, plain, strlen(plain), field, err, sizeof err), RG_OK, "%s", err);
    cr_assert_eq(ev.version, 1);
    cr_assert_eq(ev.status, RG_STATUS_FINAL);
    cr_assert_eq(ev.corrected_at, RG_TIME_NONE);
    cr_assert_null(ev.corrected_by);
    rg_event_clear(&ev);
    const char *fix = EV_HEAD ",\"version\":3,\"status\":\"entered-in-error\","
                              "\"corrected_at\":\"2026-03-02T12:00:00+01:00\",\"corrected_by\":\"dr x\"}";
    cr_assert_eq(rg_event_parse(&ev, fix, strlen(fix), field, err, sizeof err), RG_OK, "%s", err);
    cr_assert_eq(ev.version, 3);
    cr_assert_eq(ev.status, RG_STATUS_ERROR);
    cr_assert_eq(ev.corrected_at, 1772449200000); /* 11:00Z */
    cr_assert_str_eq(ev.corrected_by, "dr x");
    cr_assert_null(data_of(&ev), "a retraction may omit data");
    cr_assert_str_eq(rg_event_status_name(ev.status), "entered-in-error");
    rg_event_clear(&ev);
}

Test(event, correction_fields_are_checked_and_named)
{
    bad(EV_HEAD ",\"version\":0}", "version", "whole number from 1");
    bad(EV_HEAD ",\"version\":1.5}", "version", "whole number from 1");
    bad(EV_HEAD ",\"version\":\"2\"}", "version", "whole number from 1");
    bad(EV_HEAD ",\"version\":2147483648}", "version", "whole number from 1");
    bad(EV_HEAD ",\"version\":2}", "corrected_at", "required field 'corrected_at' is missing");
    bad(EV_HEAD ",\"status\":\"preliminary\"}", "status", "\"entered-in-error\"");
    bad(EV_HEAD ",\"status\":1}", "status", "must be \"final\"");
    bad(EV_HEAD ",\"version\":2,\"corrected_at\":\"2026-03-02T12:00:00\"}", "corrected_at",
        "not a valid time");
    bad(EV_HEAD ",\"version\":2,\"corrected_at\":5}", "corrected_at", "must be a string");
    bad(EV_HEAD ",\"corrected_by\":\"\"}", "corrected_by", "1 to");
    bad(EV_HEAD ",\"corrected_by\":\"a\\nb\"}", "corrected_by", "control characters");
}

/* ---- the one-pass parser against the reference path ------------------------ */

/* Parses text with rg_event_parse (the one-pass parser, or the reference
 * path when it declines) and with rg_event_parse_ref (jansson only) and
 * asserts the same answer: code, field, message, and the same event. Returns
 * 1 when the one-pass parser read it (no tree kept). */
static int agree_n(const char *text, size_t len)
{
    rg_event a, b;
    char fa[RG_FIELD_MAX], fb[RG_FIELD_MAX], ea[512] = "", eb[512] = "";
    int ra = rg_event_parse(&a, text, len, fa, ea, sizeof ea);
    int rb = rg_event_parse_ref(&b, text, len, fb, eb, sizeof eb);
    cr_assert_eq(ra, rb, "line %.300s: rc %d against the reference's %d (%s / %s)", text, ra, rb,
                 ea, eb);
    int fast = ra == RG_OK && !a.json;
    if (ra != RG_OK) {
        cr_assert_str_eq(fa, fb, "line %.300s: field", text);
        cr_assert_str_eq(ea, eb, "line %.300s: message", text);
        assert_empty(&a, text);
        return 0;
    }
    cr_assert_str_eq(a.id, b.id);
    cr_assert_str_eq(a.clinic, b.clinic);
    cr_assert_str_eq(a.patient, b.patient);
    cr_assert_str_eq(a.type, b.type);
    cr_assert_eq(a.at, b.at);
    cr_assert_eq(a.offset_min, b.offset_min);
    cr_assert_eq(a.version, b.version);
    cr_assert_eq(a.status, b.status);
    cr_assert_eq(a.corrected_at, b.corrected_at);
    cr_assert_eq(!a.corrected_by, !b.corrected_by);
    if (a.corrected_by)
        cr_assert_str_eq(a.corrected_by, b.corrected_by);
    cr_assert_eq(a.fields.len, b.fields.len, "line %.300s: compiled fields %zu bytes against %zu",
                 text, a.fields.len, b.fields.len);
    cr_assert(a.fields.len == 0 || !memcmp(a.fields.p, b.fields.p, a.fields.len),
              "line %.300s: compiled fields differ", text);
    cr_assert_str_eq(a.body, b.body);
    rg_event_clear(&a);
    rg_event_clear(&b);
    return fast;
}

static int agree(const char *text) { return agree_n(text, strlen(text)); }

#define HEAD "{\"id\":\"e1\",\"clinic\":\"c\",\"patient\":\"p\",\"type\":\"t\",\"at\":\"2026-03-02T14:05:00Z\""

Test(one_pass, plain_lines_take_it)
{
    cr_assert(agree(HEAD "}"));
    cr_assert(agree(HEAD ",\"data\":{}}"));
    cr_assert(agree(HEAD ",\"data\":{\"dose_mg_per_kg\":0.50,\"duration_min\":40}}"));
    cr_assert(agree(HEAD ",\"data\":{\"b\":1,\"a\":\"x\",\"ab\":true,\"B\":false,\"a b\":null,"
                    "\"\":2.5e-3}}"));
    cr_assert(agree("{\"data\":{\"x\":1},\"at\":\"2026-03-02T14:05:00+01:00\",\"type\":\"a.b\","
                    "\"patient\":\"p 2\",\"clinic\":\"c-1\",\"id\":\"e\\\"2\\\\\"}"));
    cr_assert(agree(" " HEAD " , \"data\" : { \"a\" : 1 } } "));
    cr_assert(agree(HEAD ",\"version\":2,\"status\":\"corrected\",\"corrected_at\":"
                    "\"2026-03-03T10:00:00Z\",\"corrected_by\":\"dr \\/ x\"}"));
    cr_assert(agree(HEAD ",\"version\":1,\"status\":\"final\"}"));
    /* what it leaves to the reference path, which accepts them */
    cr_assert_not(agree(HEAD ",\"data\":{\"n\":\"caf\\u00e9\"}}"), "a \\u escape");
    cr_assert_not(agree(HEAD ",\"data\":{\"n\":\"caf\xc3\xa9\"}}"), "UTF-8");
    cr_assert_not(agree(HEAD ",\t\"data\":{}}"), "a tab");
    cr_assert_not(agree(HEAD ",\"data\":{\"n\":{\"b\":1,\"a\":2}}}"), "an object in data");
    cr_assert_not(agree(HEAD ",\"data\":{\"n\":[1,2]}}"), "an array in data");
    cr_assert_not(agree(HEAD ",\"data\":{\"n\":1,\"m\":1234567890123456789012345678901234567890"
                        "12345678901234567890123456.5}}"),
                  "a number of 64 characters or more");
}

Test(one_pass, numbers_as_jansson_reads_them)
{
    static const char *const nums[] = {
        "0", "-0", "-0.0", "1.0", "1e2", "1E2", "1e+2", "1e-2", "0.1", "0.50", "-1.5e-3",
        "9007199254740993", "-9007199254740993", "9223372036854775807", "-9223372036854775808",
        "9223372036854775808", "-9223372036854775809", "1e308", "1e400", "-1e400", "1e-400",
        "4.9e-324", "01", "-01", "00", "1.", "1.e5", ".5", "-.5", "-", "+1", "1e", "1e+", "0x10",
        "NaN", "Infinity", "-Infinity", "1 2", "2147483647", "12345678901234567890123456789",
    };
    for (size_t i = 0; i < RG_COUNTOF(nums); i++) {
        char line[512];
        snprintf(line, sizeof line, HEAD ",\"data\":{\"a\":%s}}", nums[i]);
        agree(line);
        snprintf(line, sizeof line, HEAD ",\"version\":%s}", nums[i]);
        agree(line);
    }
    /* an integer beyond 2^53 is kept exactly, not as a double */
    rg_event ev;
    good(&ev, HEAD ",\"data\":{\"a\":9007199254740993}}");
    rg_field f;
    cr_assert(rg_fields_get(ev.fields.p, ev.fields.len, "a", 1, &f));
    cr_assert_eq(f.tag, RG_F_INT);
    cr_assert_eq(f.i, INT64_C(9007199254740993));
    rg_event_clear(&ev);
    good(&ev, HEAD ",\"data\":{\"a\":1.0}}");
    cr_assert(rg_fields_get(ev.fields.p, ev.fields.len, "a", 1, &f));
    cr_assert_eq(f.tag, RG_F_REAL, "1.0 is a real, as jansson reads it");
    rg_event_clear(&ev);
}

Test(one_pass, duplicates_structure_and_members)
{
    static const char *const lines[] = {
        HEAD ",\"data\":{\"a\":1,\"a\":2}}", HEAD ",\"data\":{\"a\":1,\"b\":2,\"a\":1}}",
        "{\"id\":\"e1\",\"id\":\"e2\",\"clinic\":\"c\",\"patient\":\"p\",\"type\":\"t\","
        "\"at\":\"2026-03-02T14:05:00Z\"}",
        HEAD ",\"data\":{},\"data\":{}}", HEAD ",\"data\":{\"a\":{\"b\":1,\"b\":2}}}",
        HEAD "} x", HEAD "}\" ", HEAD "}\"}", HEAD "} \"", HEAD "}  ", HEAD "}" HEAD "}", HEAD "}}", HEAD, "[" HEAD "}]", "\"x\"", "1", "null", "",
        " ", "{", "{}", HEAD ",\"data\":{\"a\":1} /* c */}", HEAD ",'data':{}}",
        HEAD ",\"data\":{\"a\":tru}}", HEAD ",\"data\":{\"a\":nulls}}", HEAD ",\"data\":null}",
        HEAD ",\"data\":[]}", HEAD ",\"data\":\"x\"}", HEAD ",\"data\":1}", HEAD ",\"data\":true}",
        HEAD ",\"version\":2}", HEAD ",\"version\":1.0}", HEAD ",\"version\":0}",
        HEAD ",\"version\":2147483648}", HEAD ",\"version\":\"2\"}", HEAD ",\"version\":null}",
        HEAD ",\"status\":\"bogus\"}", HEAD ",\"status\":1}", HEAD ",\"status\":null}",
        HEAD ",\"status\":\"entered-in-error\"}", HEAD ",\"corrected_at\":\"2026-03-03\"}",
        HEAD ",\"corrected_at\":null}", HEAD ",\"corrected_by\":\"a\\tb\"}",
        HEAD ",\"corrected_by\":\"\"}", HEAD ",\"pateint\":\"p\"}", HEAD ",\"\":1}",
        "{\"clinic\":\"c\",\"patient\":\"p\",\"type\":\"t\",\"at\":\"2026-03-02T14:05:00Z\"}",
        "{\"id\":\"\",\"clinic\":\"c\",\"patient\":\"p\",\"type\":\"t\",\"at\":\"2026-03-02T14:05:00Z\"}",
        "{\"id\":\"a\\nb\",\"clinic\":\"c\",\"patient\":\"p\",\"type\":\"t\",\"at\":\"2026-03-02T14:05:00Z\"}",
        "{\"id\":\"e\",\"clinic\":\"c d\",\"patient\":\"p\",\"type\":\"t\",\"at\":\"2026-03-02T14:05:00Z\"}",
        "{\"id\":\"e\",\"clinic\":\"c\",\"patient\":\"p\",\"type\":\"Bad\",\"at\":\"2026-03-02T14:05:00Z\"}",
        "{\"id\":\"e\",\"clinic\":\"c\",\"patient\":\"p\",\"type\":\"t\",\"at\":\"2026-03-02T14:05:00\"}",
        "{\"id\":\"e\",\"clinic\":\"c\",\"patient\":\"p\",\"type\":\"t\",\"at\":5}",
        "{\"id\":1,\"clinic\":\"c\",\"patient\":\"p\",\"type\":\"t\",\"at\":\"2026-03-02T14:05:00Z\"}",
        "{\"id\":\"e\",\"clinic\":\"c\",\"patient\":{},\"type\":\"t\",\"at\":\"2026-03-02T14:05:00Z\"}",
        "{\"id\":\"e\",\"clinic\":[],\"patient\":\"p\",\"type\":\"t\",\"at\":\"2026-03-02T14:05:00Z\"}",
        HEAD ",\"data\":{\"a\":\"x\x7fy\"}}", HEAD ",\"data\":{\"a\":\"x\\u0000y\"}}",
        HEAD ",\"data\":{\"a\\u0000\":1}}", HEAD ",\"data\":{\"a\":\"\\ud800\"}}",
        HEAD ",\"data\":{\"a\":\"\\udc00x\"}}", HEAD ",\"data\":{\"a\":\"\\ud83d\\ude00\"}}",
        HEAD ",\"data\":{\"a\":\"\\\\u0041\"}}", HEAD ",\"data\":{\"a\":\"\\x\"}}",
        HEAD ",\"data\":{\"a\":\"\xff\"}}", HEAD ",\"data\":{\"a\":\"\xc0\x80\"}}",
        HEAD ",\"data\":{\"a\":\"\xed\xa0\x80\"}}", HEAD ",\"data\":{\"a\":\"\xf4\x90\x80\x80\"}}",
        HEAD ",\"data\":{\"a\":\"\xe2\x82\"}}", "\xef\xbb\xbf" HEAD "}", HEAD ",\f\"data\":{}}",
        HEAD ",\v\"data\":{}}", HEAD ",\r\n\"data\":{}}", HEAD ",\"data\":{\"a\":\"x\ty\"}}",
    };
    for (size_t i = 0; i < RG_COUNTOF(lines); i++)
        agree(lines[i]);
    /* a raw NUL byte, which jansson would skip between tokens */
    const char nul[] = HEAD ",\"data\":{\"a\":4\0}}";
    agree_n(nul, sizeof nul - 1);
    const char nul2[] = HEAD ",\"data\":{\"a\":\"x\0y\"}}";
    agree_n(nul2, sizeof nul2 - 1);
}

Test(one_pass, many_members_deep_nesting_and_long_lines)
{
    /* 32 members of data (the one-pass limit), then 33 */
    for (int n = 31; n <= 34; n++) {
        char line[2048];
        size_t k = (size_t)snprintf(line, sizeof line, HEAD ",\"data\":{");
        for (int i = n; i > 0; i--)
            k += (size_t)snprintf(line + k, sizeof line - k, "\"k%02d\":%d%s", i, i, i > 1 ? "," : "");
        snprintf(line + k, sizeof line - k, "}}");
        cr_assert_eq(agree(line), n <= 32);
    }
    /* nesting: jansson stops at 2048 levels */
    for (int depth = 100; depth <= 3000; depth += 2900) {
        size_t cap = strlen(HEAD) + 2 * (size_t)depth + 64;
        char *line = malloc(cap);
        cr_assert_not_null(line);
        size_t k = (size_t)snprintf(line, cap, HEAD ",\"data\":{\"a\":");
        memset(line + k, '[', (size_t)depth);
        k += (size_t)depth;
        memset(line + k, ']', (size_t)depth);
        k += (size_t)depth;
        snprintf(line + k, cap - k, "}}");
        agree(line);
        free(line);
    }
    /* around the one-pass length limit, and data near its size limit */
    for (size_t n = 2600; n <= 2800; n += 100) {
        char *v = jstr('x', n);
        char *line = malloc(n + 256);
        cr_assert_not_null(line);
        snprintf(line, n + 256, HEAD ",\"data\":{\"a\":%s}}", v);
        agree(line);
        free(v);
        free(line);
    }
    for (size_t n = RG_EVENT_MAX_DATA - 16; n <= RG_EVENT_MAX_DATA; n += 8) {
        char *v = jstr('y', n);
        char *line = malloc(n + 256);
        cr_assert_not_null(line);
        snprintf(line, n + 256, HEAD ",\"data\":{\"a\":%s}}", v);
        agree(line);
        free(v);
        free(line);
    }
}

Test(one_pass, stored_identity_without_a_tree)
{
    /* both read in one pass (no tree): the store compares the bodies as JSON */
    const char *a = HEAD ",\"data\":{\"x\":1,\"y\":\"z\"}}";
    const char *b = "{\"data\":{\"y\":\"z\",\"x\":1},\"at\":\"2026-03-02T14:05:00Z\",\"type\":\"t\","
                    "\"patient\":\"p\",\"clinic\":\"c\",\"id\":\"e1\",\"version\":1}";
    const char *c = HEAD ",\"data\":{\"x\":2,\"y\":\"z\"}}";
    rg_event ea, eb, ec;
    good(&ea, a);
    good(&eb, b);
    good(&ec, c);
    cr_assert(!ea.json && !eb.json && !ec.json, "all three take the one-pass path");
    cr_assert_eq(store_pair(&ea, &eb), RG_PUT_DUPLICATE, "the same event in another key order");
    cr_assert_eq(store_pair(&ea, &ec), RG_PUT_CONFLICT, "other data under the same id");
    rg_event_clear(&ea);
    rg_event_clear(&eb);
    rg_event_clear(&ec);
}

/* ---- a request body read in one pass (POST /v1/events) ------------------- */

/* Reads body with rg_event_parse_body and, when it accepts, checks every
 * event against the reference path of the HTTP API (jansson's tree of the
 * body, then rg_event_from_json per element): the tree must load, hold as
 * many events, each valid and the same event, its body the element's text
 * as received (the same JSON value as the element). Returns 1 when the
 * one-pass read accepted the body. */
static int body_agrees(const char *text)
{
    rg_event *evs = (rg_event *)1;
    size_t n = 7;
    int rc = rg_event_parse_body(text, strlen(text), &evs, &n);
    if (rc != RG_OK) {
        cr_assert(!evs && n == 0, "body %.300s: declined, but events left", text);
        return 0;
    }
    json_error_t je;
    json_t *tree = rg_json_loadb(text, strlen(text), JSON_REJECT_DUPLICATES, &je);
    cr_assert_not_null(tree, "body %.300s: read in one pass, but jansson says %s", text, je.text);
    cr_assert(json_is_object(tree) || json_is_array(tree));
    size_t want = json_is_object(tree) ? 1 : json_array_size(tree);
    cr_assert_eq(n, want, "body %.300s: %zu events against the tree's %zu", text, n, want);
    for (size_t i = 0; i < n; i++) {
        json_t *item = json_is_object(tree) ? tree : json_array_get(tree, i);
        rg_event b;
        char f[RG_FIELD_MAX], e[512];
        cr_assert_eq(rg_event_from_json(&b, item, f, e, sizeof e), RG_OK, "%s", e);
        const rg_event *a = &evs[i];
        cr_assert(!a->json && a->mem, "event %zu: read without a tree", i);
        cr_assert_str_eq(a->id, b.id);
        cr_assert_str_eq(a->clinic, b.clinic);
        cr_assert_str_eq(a->patient, b.patient);
        cr_assert_str_eq(a->type, b.type);
        cr_assert_eq(a->at, b.at);
        cr_assert_eq(a->offset_min, b.offset_min);
        cr_assert_eq(a->version, b.version);
        cr_assert_eq(a->status, b.status);
        cr_assert_eq(a->corrected_at, b.corrected_at);
        cr_assert_eq(!a->corrected_by, !b.corrected_by);
        cr_assert_eq(a->fields.len, b.fields.len);
        cr_assert(a->fields.len == 0 || !memcmp(a->fields.p, b.fields.p, a->fields.len));
        cr_assert_not_null(strstr(text, a->body), "event %zu: its body is its text as received", i);
        cr_assert_eq(a->body[0], '{');
        cr_assert_eq(a->body[strlen(a->body) - 1], '}');
        json_t *back = json_loads(a->body, 0, &je);
        cr_assert(back && json_equal(back, item), "event %zu: body %s", i, a->body);
        json_decref(back);
        rg_event_clear(&b);
    }
    json_decref(tree);
    rg_event_free_all(evs, n);
    return 1;
}

#define EV1 HEAD ",\"data\":{\"a\":1,\"b\":\"x\"}}"
#define EV2 "{\"id\":\"e2\",\"clinic\":\"c\",\"patient\":\"q\",\"type\":\"lab.result\",\"at\":\"2026-03-02T14:06:00+01:00\",\"data\":{\"v\":0.5}}"

Test(one_pass_body, one_event_or_a_list_of_plain_events)
{
    cr_assert(body_agrees(EV1));
    cr_assert(body_agrees("  " EV1 "\n"));
    cr_assert(body_agrees("[" EV1 "]"));
    cr_assert(body_agrees("[" EV1 "," EV2 "]"));
    cr_assert(body_agrees("[\n " EV1 " ,\r\n\t" EV2 "\n]\n"), "whitespace between events");
    cr_assert(body_agrees("[" EV1 "," EV1 "," EV1 "]"), "the same event twice: the store decides");
    cr_assert(body_agrees("[{ \"id\" : \"e3\", \"clinic\":\"c\",\"patient\":\"p\",\"type\":\"t\","
                          "\"at\":\"2026-03-02T14:05:00Z\", \"data\" : { } }]"));
    cr_assert(body_agrees("[" HEAD ",\"version\":2,\"status\":\"corrected\",\"corrected_at\":"
                          "\"2026-03-03T10:00:00Z\",\"corrected_by\":\"dr x\"}]"));
    /* a hundred events */
    char *big = malloc(100 * (sizeof EV2 + 1) + 4);
    cr_assert_not_null(big);
    size_t k = 0;
    big[k++] = '[';
    for (int i = 0; i < 100; i++)
        k += (size_t)sprintf(big + k, "%s%s", i ? "," : "", EV2);
    big[k++] = ']';
    big[k] = '\0';
    cr_assert(body_agrees(big));
    free(big);
}

Test(one_pass_body, anything_else_goes_to_the_tree)
{
    static const char *const bodies[] = {
        "", " ", "[]", "{}", "null", "7", "\"x\"", "not json", "[" EV1, EV1 "]", EV1 EV1,
        EV1 " x", "[" EV1 "] x", "[" EV1 "][" EV1 "]", "[" EV1 ",]", "[," EV1 "]",
        "[" EV1 ",7]", "[7," EV1 "]", "[" EV1 ",null]", "[" EV1 ",[" EV1 "]]", "[[" EV1 "]]",
        "[" EV1 ",{\"id\":\"bad\",\"clinic\":\"c\"}]", /* one refused event: the tree says why */
        "[" EV1 ",{\"id\":\"x\",\"clinic\":\"c\",\"patient\":\"p\",\"type\":\"t\",\"at\":\"soon\"}]",
        "[" HEAD ",\"data\":{\"a\":1,\"a\":2}}]", /* a duplicate key: the tree refuses the body */
        "[" EV1 ",{\"id\":\"e\",\"id\":\"f\",\"clinic\":\"c\",\"patient\":\"p\",\"type\":\"t\","
        "\"at\":\"2026-03-02T14:05:00Z\"}]",
        "[" HEAD ",\n\"data\":{}}]", /* a line feed inside an event: not stored as received */
        "[" HEAD ",\"data\":{\"n\":\"caf\\u00e9\"}}]", "[" HEAD ",\"data\":{\"n\":\"caf\xc3\xa9\"}}]",
        "[" HEAD ",\"data\":{\"n\":[1]}}]", "[" HEAD ",\"data\":{\"n\":{\"m\":1}}}]",
        "[" HEAD ",\"extra\":1}]", "[" EV1 ",\"" EV1 "\"]",
    };
    for (size_t i = 0; i < RG_COUNTOF(bodies); i++)
        cr_assert_not(body_agrees(bodies[i]), "body %zu (%s) should go to the tree", i, bodies[i]);
    const char nul[] = "[" EV1 "\0]";
    rg_event *evs;
    size_t n;
    cr_assert_neq(rg_event_parse_body(nul, sizeof nul - 1, &evs, &n), RG_OK, "a NUL byte");
}

/* The lean row (schema 17): what is kept of a body, and the body given back
 * from it and the columns, byte for byte. "" when the rest is the compiled
 * fields printed back; the rest after the head when the data is as sent
 * otherwise (key order, "0.50", escapes the printer would not use); the
 * whole body when the head is another. */
Test(lean_body, kept_part_and_the_body_given_back)
{
    static const struct {
        const char *line;
        char kept; /* '0': "", ',' or '}': the rest, '{' or ' ': all of it */
    } cases[] = {
        {"{\"id\":\"e1\",\"clinic\":\"c\",\"patient\":\"p\",\"type\":\"t\",\"at\":\"2026-01-05T10:00:00Z\"}", '0'},
        {"{\"id\":\"e1\",\"clinic\":\"c\",\"patient\":\"p\",\"type\":\"t\",\"at\":\"2026-01-05T10:00:00Z\",\"data\":{\"a\":1,\"b\":-2.5,\"c\":\"x\",\"d\":true,\"e\":null,\"f\":[1,{\"g\":2}]}}", '0'},
        {"{\"id\":\"e1\",\"clinic\":\"c\",\"patient\":\"p\",\"type\":\"t\",\"at\":\"2026-01-05T10:00:00Z\",\"data\":{\"r\":0.1,\"s\":1e-7,\"m\":-9223372036854775808}}", ','},
        {"{\"id\":\"e1\",\"clinic\":\"c\",\"patient\":\"p\",\"type\":\"t\",\"at\":\"2026-01-05T10:00:00Z\",\"data\":{\"m\":-9223372036854775808,\"r\":0.1}}", '0'},
        {"{\"id\":\"e1\",\"clinic\":\"c\",\"patient\":\"p\",\"type\":\"t\",\"at\":\"2026-01-05T10:00:00Z\",\"data\":{\"dose\":0.50}}", ','},
        {"{\"id\":\"e1\",\"clinic\":\"c\",\"patient\":\"p\",\"type\":\"t\",\"at\":\"2026-01-05T10:00:00Z\",\"data\":{\"b\":1,\"a\":1}}", ','},
        {"{\"id\":\"e1\",\"clinic\":\"c\",\"patient\":\"p\",\"type\":\"t\",\"at\":\"2026-01-05T10:00:00Z\",\"data\":{\"s\":\"\\u00e9\"}}", ','},
        {"{\"id\":\"e1\",\"clinic\":\"c\",\"patient\":\"p\",\"type\":\"t\",\"at\":\"2026-01-05T10:00:00Z\",\"data\":{\"s\":\"\u00e9 \\\" \\\\ \\n \\u001f\"}}", '0'},
        {"{\"id\":\"e\\\"1\",\"clinic\":\"c\",\"patient\":\"p\\\\\",\"type\":\"t\",\"at\":\"2026-01-05T10:00:00Z\"}", '0'},
        {"{\"id\":\"e\\u0022\",\"clinic\":\"c\",\"patient\":\"p\",\"type\":\"t\",\"at\":\"2026-01-05T10:00:00Z\"}", '{'},
        {"{\"id\":\"e1\",\"clinic\":\"c\",\"patient\":\"p\",\"type\":\"t\",\"at\":\"2026-01-05T10:00:00.007-03:30\"}", '0'},
        {"{\"id\":\"e1\",\"clinic\":\"c\",\"patient\":\"p\",\"type\":\"t\",\"at\":\"2026-01-05T10:00:00.5Z\"}", '{'},
        {"{\"id\":\"e1\",\"clinic\":\"c\",\"patient\":\"p\",\"type\":\"t\",\"at\":\"2026-01-05T10:00:00+00:00\"}", '{'},
        {"{\"id\":\"e1\",\"clinic\":\"c\",\"patient\":\"p\",\"type\":\"t\",\"at\":\"2026-01-05T10:00:00Z\",\"version\":2,\"corrected_at\":\"2026-01-05T11:00:00Z\"}", ','},
        {"{\"clinic\":\"c\",\"id\":\"e1\",\"patient\":\"p\",\"type\":\"t\",\"at\":\"2026-01-05T10:00:00Z\"}", '{'},
        {"{\"id\":\"e1\",\"clinic\":\"c\",\"patient\":\"p\",\"type\":\"t\",\"at\":\"2026-01-05T10:00:00Z\" }", '{'},
        {"  {\"id\":\"e1\",\"clinic\":\"c\",\"patient\":\"p\",\"type\":\"t\",\"at\":\"2026-01-05T10:00:00Z\"}", ' '},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const char *line = cases[i].line;
        rg_event ev;
        char field[RG_FIELD_MAX], err[256];
        cr_assert_eq(rg_event_parse(&ev, line, strlen(line), field, err, sizeof err), RG_OK,
                     "%s: %s %s", line, field, err);
        const char *kept = rg_event_body_rest(ev.body, ev.id, ev.clinic, ev.patient, ev.type,
                                              ev.at, ev.offset_min, ev.fields.p, ev.fields.len);
        cr_assert_eq(*kept ? *kept : '0', cases[i].kept, "%s: kept %s", line, kept);
        cr_assert_eq(rg_event_body_is_rest(kept), cases[i].kept != '{' && cases[i].kept != ' ');
        char *whole = rg_event_body_whole(kept, strlen(kept), ev.id, ev.clinic, ev.patient,
                                          ev.type, ev.at, ev.offset_min, ev.fields.p,
                                          ev.fields.len);
        cr_assert_str_eq(whole, line);
        free(whole);
        rg_event_clear(&ev);
    }
}

/* Since schema 18 integers are zigzag varints and string lengths varints
 * (fields.h): every integer comes back exactly, small ones in one byte; a
 * record written with the old tags ('i' 8 bytes, 's' a 4-byte length) reads
 * the same and rg_fields_same says so; a varint cut short is malformed. */
Test(fields, varints_round_trip_and_old_records_read_the_same)
{
    static const int64_t ints[] = {0, 1, -1, 63, -64, 64, -65, 127, 128, 8191, -8192, 8192,
                                   INT32_MAX, INT32_MIN, INT64_MAX, INT64_MIN};
    rg_buf b = {0};
    cr_assert_eq(rg_fields_begin(&b), RG_OK);
    for (size_t i = 0; i < RG_COUNTOF(ints); i++) {
        char key[8];
        snprintf(key, sizeof key, "k%02zu", i);
        cr_assert_eq(rg_fields_add_int(&b, key, 3, ints[i]), RG_OK);
    }
    cr_assert_eq(rg_fields_add_str(&b, "s", 1, "caf\xc3\xa9", 5), RG_OK);
    size_t pos = 0, i = 0;
    rg_field f;
    while (rg_fields_next(b.p, b.len, &pos, &f) == 1) {
        if (i < RG_COUNTOF(ints)) {
            cr_assert_eq(f.tag, RG_F_INT);
            cr_assert_eq(f.i, ints[i], "%zu: %lld", i, (long long)f.i);
        } else {
            cr_assert_eq(f.tag, RG_F_STR);
            cr_assert_eq(f.slen, 5);
            cr_assert_eq(memcmp(f.s, "caf\xc3\xa9", 5), 0);
        }
        i++;
    }
    cr_assert_eq(i, RG_COUNTOF(ints) + 1);
    cr_assert_eq(pos, b.len, "read to its end");

    /* {"a":1,"b":"x"} as a record of v17 and before, and as one of now */
    static const unsigned char old[] = {1, 1, 0, 'a', 'i', 1, 0, 0, 0, 0, 0, 0, 0,
                                        1, 0, 'b', 's', 1, 0, 0, 0, 'x'};
    rg_buf now = {0};
    cr_assert_eq(rg_fields_from_json(&now, "{\"b\":\"x\",\"a\":1}"), RG_OK);
    cr_assert_eq(now.len, sizeof old - 7 - 3, "7 bytes fewer for the integer, 3 for the length");
    cr_assert(rg_fields_same(old, sizeof old, now.p, now.len));
    cr_assert(rg_fields_get(old, sizeof old, "a", 1, &f) == 1 && f.tag == RG_F_INT && f.i == 1);
    rg_buf other = {0};
    cr_assert_eq(rg_fields_from_json(&other, "{\"b\":\"x\",\"a\":2}"), RG_OK);
    cr_assert_not(rg_fields_same(old, sizeof old, other.p, other.len));
    cr_assert_eq(rg_fields_from_json(&other, "{\"b\":\"x\",\"a\":1.0}"), RG_OK);
    cr_assert_not(rg_fields_same(old, sizeof old, other.p, other.len), "1.0 is a real");
    cr_assert_not(rg_fields_same(old, sizeof old, now.p, now.len - 1), "one cut short");
    /* a varint whose last byte still says "more" */
    static const unsigned char cut[] = {1, 1, 0, 'a', 'n', 0x80};
    pos = 0;
    cr_assert_eq(rg_fields_next(cut, sizeof cut, &pos, &f), RG_EINVAL);
    static const unsigned char far[] = {1, 1, 0, 'a', 'S', 5, 'x'};
    pos = 0;
    cr_assert_eq(rg_fields_next(far, sizeof far, &pos, &f), RG_EINVAL);
    rg_buf_free(&b);
    rg_buf_free(&now);
    rg_buf_free(&other);
}

/* Alert keys (rg_sha256_parts): SHA-256 of each part's length (8 bytes
 * big-endian) then its bytes, as hex. Expected digests from Python's
 * hashlib over the same encoding: one block, and three parts crossing block
 * boundaries with an empty one between them. Cut to hexlen digits. */
Test(digest, alert_keys_are_sha256_of_length_prefixed_parts)
{
    const char *one[] = {"c0", "p0001", "ketamine.safety", "bp_high", "e17"};
    char out[RG_SHA256_HEX + 1];
    rg_sha256_parts(one, 5, out, RG_SHA256_HEX);
    cr_assert_str_eq(out, "4160db42a59e2d2ea061a68a90900217506a1be20da62142c26998d8e09449a0");
    char x[71], y[131];
    memset(x, 'x', 70), x[70] = 0;
    memset(y, 'y', 130), y[130] = 0;
    const char *three[] = {x, "", y};
    rg_sha256_parts(three, 3, out, 16);
    cr_assert_str_eq(out, "b6fd545b8d41146e");
}
