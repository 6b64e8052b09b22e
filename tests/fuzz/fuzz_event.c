/*
 * fuzz_event.c - libFuzzer harness for event validation and ingest:
 * rg_event_parse (runtime/core/event.c), rg_ingest_one (runtime/store/ingest.c) and
 * rg_store_put_event / rg_store_reject (runtime/store/store.c).
 *
 * The input is read as JSON Lines: each line is parsed with rg_event_parse
 * and ingested with rg_ingest_one into one in-memory store, inside a
 * transaction that is rolled back after each input (so every input starts
 * from an empty store, without the cost of opening one). Checks: ingest
 * never fails with a store error; a line that parses is stored, a duplicate
 * or a conflict (never rejected) and one that does not is rejected; a parsed
 * event's fields keep the contract; when a line was stored or was a
 * duplicate, sending it again as is, or re-printed with sorted keys, is a
 * duplicate. And the one-pass parser (yajl) agrees with the reference path
 * (jansson, rg_event_parse_ref) on every line: the same code, field and
 * message, and the same event; read whole as an HTTP body
 * (rg_event_parse_body), what the one-pass read accepts the tree accepts
 * with the same events.
 */
#include "store/ingest.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CHECK(cond)                                                                    \
    do {                                                                               \
        if (!(cond)) {                                                                 \
            fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond);   \
            abort();                                                                   \
        }                                                                              \
    } while (0)

static void check_event(const rg_event *ev)
{
    CHECK(ev->id && ev->clinic && ev->patient && ev->type && ev->body && (ev->json || ev->mem));
    CHECK(strlen(ev->id) >= 1 && strlen(ev->id) <= RG_EVENT_MAX_ID);
    CHECK(strlen(ev->clinic) >= 1 && strlen(ev->clinic) <= RG_EVENT_MAX_CLINIC);
    CHECK(strlen(ev->patient) >= 1 && strlen(ev->patient) <= RG_EVENT_MAX_ID);
    CHECK(rg_event_type_ok(ev->type) && strlen(ev->type) <= RG_EVENT_MAX_TYPE);
    char *data = rg_event_data_text(ev->body, strlen(ev->body)); /* as the store shows it */
    CHECK(!data || (data[0] == '{' && strlen(data) <= RG_EVENT_MAX_DATA));
    CHECK(!data == !ev->fields.len);
    free(data);
}

/* Ingests one line; returns the outcome (an rg_put or RG_INGEST_REJECTED). */
static int ingest(rg_store *st, const char *text, size_t len, long line, rg_ingest_counts *n)
{
    int r = rg_ingest_one(st, text, len, "fuzz", line, n, NULL, NULL);
    if (r < 0) {
        fprintf(stderr, "line %ld: ingest failed: %s (%s)\n", line, rg_strerror(r),
                rg_store_errmsg(st));
        abort();
    }
    return r;
}

static int same_str(const char *a, const char *b)
{
    return (!a && !b) || (a && b && !strcmp(a, b));
}

/* The one-pass parser's answer (ev, rc, field, err) is the reference path's. */
static void check_ref(const rg_event *ev, int rc, const char *field, const char *err,
                      const char *text, size_t len)
{
    rg_event ref;
    char rfield[RG_FIELD_MAX], rerr[512];
    int rrc = rg_event_parse_ref(&ref, text, len, rfield, rerr, sizeof rerr);
    CHECK(rrc == rc);
    if (rc != RG_OK) {
        CHECK(!strcmp(rfield, field) && !strcmp(rerr, err));
        return;
    }
    CHECK(same_str(ev->id, ref.id) && same_str(ev->clinic, ref.clinic) &&
          same_str(ev->patient, ref.patient) && same_str(ev->type, ref.type) &&
          same_str(ev->corrected_by, ref.corrected_by) && same_str(ev->body, ref.body));
    CHECK(ev->at == ref.at && ev->offset_min == ref.offset_min && ev->version == ref.version &&
          ev->status == ref.status && ev->corrected_at == ref.corrected_at);
    CHECK(ev->fields.len == ref.fields.len &&
          (!ev->fields.len || !memcmp(ev->fields.p, ref.fields.p, ev->fields.len)));
    rg_event_clear(&ref);
}

static void one_line(rg_store *st, const char *text, size_t len, long line, rg_ingest_counts *n)
{
    rg_event ev;
    char field[RG_FIELD_MAX], err[512];
    int parsed = rg_event_parse(&ev, text, len, field, err, sizeof err);
    CHECK(parsed == RG_OK || parsed == RG_EINVAL);
    check_ref(&ev, parsed, field, err, text, len);
    char *again = NULL;
    if (parsed == RG_OK) {
        check_event(&ev);
        json_t *tree = json_loads(ev.body, 0, NULL); /* the one-pass parser keeps none */
        CHECK(tree);
        again = json_dumps(tree, JSON_COMPACT | JSON_SORT_KEYS);
        json_decref(tree);
        CHECK(again);
        rg_event_clear(&ev);
    } else {
        CHECK(memchr(err, '\0', sizeof err) && memchr(field, '\0', RG_FIELD_MAX));
        CHECK(!ev.id && !ev.fields.len && !ev.body && !ev.json && !ev.mem);
    }
    int r = ingest(st, text, len, line, n);
    if (parsed != RG_OK) {
        CHECK(r == RG_INGEST_REJECTED);
        return;
    }
    CHECK(r == RG_PUT_STORED || r == RG_PUT_DUPLICATE || r == RG_PUT_CONFLICT ||
          r == RG_PUT_CORRECTED);
    if (r != RG_PUT_CONFLICT) {
        CHECK(ingest(st, text, len, line, n) == RG_PUT_DUPLICATE);
        if (strlen(again) <= RG_EVENT_MAX_LINE)
            CHECK(ingest(st, again, strlen(again), line, n) == RG_PUT_DUPLICATE);
    }
    free(again);
}

/* The whole input as a POST /v1/events body: when the one-pass read
 * accepts it, jansson's tree of it holds as many events, each valid and the
 * same event (rg_event_from_json), each body the element's text. */
static void one_body(const char *text, size_t len)
{
    rg_event *evs;
    size_t n;
    if (rg_event_parse_body(text, len, &evs, &n) != RG_OK)
        return;
    json_error_t je;
    json_t *tree = rg_json_loadb(text, len, JSON_REJECT_DUPLICATES, &je);
    CHECK(tree && (json_is_object(tree) || json_is_array(tree)));
    CHECK(n == (json_is_object(tree) ? 1 : json_array_size(tree)));
    for (size_t i = 0; i < n; i++) {
        json_t *item = json_is_object(tree) ? tree : json_array_get(tree, i);
        rg_event ref;
        char field[RG_FIELD_MAX], err[512];
        CHECK(rg_event_from_json(&ref, item, field, err, sizeof err) == RG_OK);
        const rg_event *ev = &evs[i];
        check_event(ev);
        CHECK(same_str(ev->id, ref.id) && same_str(ev->clinic, ref.clinic) &&
              same_str(ev->patient, ref.patient) && same_str(ev->type, ref.type) &&
              same_str(ev->corrected_by, ref.corrected_by));
        CHECK(ev->at == ref.at && ev->offset_min == ref.offset_min &&
              ev->version == ref.version && ev->status == ref.status &&
              ev->corrected_at == ref.corrected_at);
        CHECK(ev->fields.len == ref.fields.len &&
              (!ev->fields.len || !memcmp(ev->fields.p, ref.fields.p, ev->fields.len)));
        json_t *back = json_loads(ev->body, 0, NULL);
        CHECK(back && json_equal(back, item));
        json_decref(back);
        rg_event_clear(&ref);
    }
    json_decref(tree);
    rg_event_free_all(evs, n);
}

static rg_store *st;

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    char err[256];
    (void)argc, (void)argv;
    if (rg_store_open(&st, ":memory:", NULL, err, sizeof err) != RG_OK) {
        fprintf(stderr, "cannot open the store: %s\n", err);
        abort();
    }
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    rg_ingest_counts n = {0};
    char *body = malloc(size ? size : 1); /* exactly size bytes, as above */
    CHECK(body);
    memcpy(body, data, size);
    one_body(body, size);
    free(body);
    CHECK(rg_store_begin(st) == RG_OK); /* one batch, as rg_ingest_file does */
    const char *p = (const char *)data, *end = p + size;
    for (long line = 1; p < end; line++) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        size_t len = (size_t)((nl ? nl : end) - p);
        /* a copy of exactly len bytes, so a read past the line is caught */
        char *text = malloc(len ? len : 1);
        CHECK(text);
        memcpy(text, p, len);
        one_line(st, text, len, line, &n);
        free(text);
        p += len + 1;
    }
    rg_store_rollback(st);
    return 0;
}
