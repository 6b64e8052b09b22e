/*
 * event.h - one patient event, validated against the "Events in" contract
 * (docs/design.md).
 *
 * Ownership: an rg_event is a value the caller owns (usually on the stack).
 * rg_event_parse / rg_event_from_json fill it; rg_event_clear frees what they
 * allocated. The string fields point into ev->json (jansson's tree) or, when
 * the one-pass parser read the line, into ev->mem, and live as long as it.
 * Validation also compiles data (fields.h) from the same parse: the store
 * keeps the body and the compiled fields, not a second text of data.
 */
#ifndef RG_EVENT_H
#define RG_EVENT_H

#include "core/rg.h"
#include <jansson.h>

#define RG_EVENT_MAX_LINE 65536   /* bytes of one JSON line or HTTP event */
#define RG_EVENT_MAX_ID 128       /* bytes of id and patient */
#define RG_EVENT_MAX_CLINIC 64
#define RG_EVENT_MAX_TYPE 64
#define RG_EVENT_MAX_DATA 16384   /* bytes of data in canonical form */
#define RG_FIELD_MAX 64

/* An event's status (the correction contract, docs/corrections.md). */
enum { RG_STATUS_FINAL, RG_STATUS_AMENDED, RG_STATUS_CORRECTED, RG_STATUS_ERROR };
#define RG_EVENT_MAX_VERSION 2147483647

typedef struct rg_event {
    const char *id, *clinic, *patient, *type;
    rg_time at;
    int offset_min;
    /* corrections: version (1 when not given), status (RG_STATUS_*),
     * corrected_at (RG_TIME_NONE when not given; required when version > 1)
     * and corrected_by (NULL when not given) */
    int64_t version;
    int status;
    rg_time corrected_at;
    const char *corrected_by;
    rg_buf fields; /* data compiled (fields.h); len 0 when there is no data (its
                      canonical text, when shown: rg_event_data_text(body)) */
    char *body; /* the event as received (a line, or an HTTP body's event read by
                   the one-pass parser) or printed compactly (HTTP, otherwise);
                   the store compares bodies as JSON values, not as text */
    json_t *json; /* NULL when the one-pass parser read the line */
    char *mem;    /* the one-pass parser's strings (id, clinic, ...), and body after
                     them in the same block (freed with it) */
    int digested; /* digest holds the SHA-256 of body: computed where the line was
                     parsed (the bulk pipeline's parse thread), not by the writer */
    unsigned char digest[32];
    const char *kept; /* what a lean row keeps of body (rg_event_body_rest), found
                         where the line was parsed, as digest is; NULL: by the writer */
} rg_event;

/* json_loadb for text from outside (a line, a request body, a FHIR file).
 * jansson skips raw NUL bytes between tokens, so "{\"a\": 4\0}" would load
 * as {"a": 4} while the text itself, kept or stored, ends at the NUL: such
 * text is refused here as invalid JSON, with the NUL's column in je. */
json_t *rg_json_loadb(const char *text, size_t len, size_t flags, json_error_t *je);
/* 1 when a failed load was memory, not the text: jansson says so, or leaves
 * the message empty (it does on some allocation paths). */
int rg_json_failed_for_memory(const json_error_t *je);

/* Parses one line of JSON text and validates it. On RG_EINVAL, field names the
 * offending field ("" when the line as a whole is wrong) and err says what was
 * expected; ev is left empty. */
int rg_event_parse(rg_event *ev, const char *text, size_t len, char field[RG_FIELD_MAX],
                   char *err, size_t errlen);
/* The same with jansson's tree only (the reference path rg_event_parse
 * takes for every line its one-pass parser does not accept): the tests and
 * the fuzz target check that both give the same answer, message and event. */
int rg_event_parse_ref(rg_event *ev, const char *text, size_t len, char field[RG_FIELD_MAX],
                       char *err, size_t errlen);
/* The events of a request body (POST /v1/events: one event object, or an
 * array of them) read in one pass, each as rg_event_parse reads a plain
 * line, its body the event's text as received (not printed again). RG_OK
 * only when every event is one that pass accepts, and so one the reference
 * path (jansson's tree of the body, then rg_event_from_json per element)
 * would accept with the same event; anything else - an invalid or unusual
 * body, a refused event, an empty list, no memory - returns nonzero with
 * nothing allocated, and the caller asks the reference path, which gives
 * the answer and the messages. Free *evs with rg_event_free_all. */
int rg_event_parse_body(const char *text, size_t len, rg_event **evs, size_t *n);
void rg_event_free_all(rg_event *evs, size_t n);
/* Same for an already-parsed value (the HTTP API's array elements). Takes a
 * new reference to obj on success. */
int rg_event_from_json(rg_event *ev, json_t *obj, char field[RG_FIELD_MAX], char *err,
                       size_t errlen);
void rg_event_clear(rg_event *ev);

/* The canonical text of a body's data (sorted keys, compact, ASCII; what
 * schema v11 stored as events.data), malloc'd; NULL when the body has no data
 * object (or is no longer JSON). The store keeps the body, not this second
 * copy (schema v12), and derives it for the readers that show it. */
char *rg_event_data_text(const char *body, size_t len);

/* The lean event row (schema 17): a body is kept as the rest of it after
 * the head the store's columns say, {"id":ID,"clinic":C,"patient":P,
 * "type":T,"at":"AT", when it begins with exactly that head: the rest is
 * `}` or `,"data":...}`, which a whole body never begins with (a JSON
 * object starts with `{` or white space). When the rest is also exactly
 * the compiled fields printed back (keys in their sorted order, numbers as
 * sent), it is kept as "" (the SQLite store; fields as stored with it).
 * rg_event_body_rest gives what to keep: "", the rest (a pointer into
 * body) or body itself when its head is another (other key order,
 * spacing, escapes, "+00:00" for Z, correction keys, ...).
 * rg_event_body_whole gives back the body, byte for byte, from what was
 * kept and the same columns (malloc'd; NULL when memory runs out). */
#define RG_EVENT_MAX_HEAD (6 * (2 * RG_EVENT_MAX_ID + RG_EVENT_MAX_CLINIC + RG_EVENT_MAX_TYPE) + 128)
#define RG_EVENT_MAX_REST 1024 /* a longer rest is kept as it is */
const char *rg_event_body_rest(const char *body, const char *id, const char *clinic,
                               const char *patient, const char *type, rg_time at, int offset_min,
                               const void *fields, size_t nfields);
/* 1 when stored is what rg_event_body_rest keeps of a body ("", or begins
 * with `,` or `}`), 0 when it is a whole body. */
int rg_event_body_is_rest(const char *stored);
char *rg_event_body_whole(const char *stored, size_t len, const char *id, const char *clinic,
                          const char *patient, const char *type, rg_time at, int offset_min,
                          const void *fields, size_t nfields);

/* "final", "amended", "corrected", "entered-in-error"; the stored text of a
 * status is NULL for final. */
const char *rg_event_status_name(int status);

/* 1 when s is a lower-case word with dots allowed: [a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)* */
int rg_event_type_ok(const char *s);

#endif
