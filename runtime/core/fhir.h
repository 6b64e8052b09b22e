/*
 * fhir.h - HL7 FHIR R4 resources into regimen events (the default mapping of
 * docs/fhir.md), shared by `regimen import-fhir` and POST /v1/fhir.
 *
 * Conversion only: the events it makes go through the same validation and
 * store path as any other (ingest.c, rg_store_put_event). Every resource of
 * the input gets one entry saying what became of it: events, context (read
 * for other resources: a Patient's identity, a body weight, a Medication),
 * unmapped (with why), or rejected (with a FHIRPath-like location such as
 * entry[3].resource.component[0].valueQuantity and the reason). Nothing is
 * dropped without an entry.
 *
 * Ownership: rg_fhir_read / rg_fhir_bundle fill an rg_fhir_import the caller
 * owns and frees with rg_fhir_free; entries hold their own JSON references.
 */
#ifndef RG_FHIR_H
#define RG_FHIR_H

#include "core/event.h"

/* The code lists a clinic may replace (clinic.lua: fhir = { codes = {...} }). */
enum {
    RG_FHIR_KETAMINE,    /* medication codes of ketamine */
    RG_FHIR_INFUSION,    /* Procedure.code of an infusion */
    RG_FHIR_ENROLLED,    /* Encounter.type of an enrolment */
    RG_FHIR_DISCHARGED,  /* Encounter.type of a discharge */
    RG_FHIR_PREPARATION, /* Encounter.type or Procedure.code */
    RG_FHIR_INTEGRATION,
    RG_FHIR_FOLLOWUP,
    RG_FHIR_PCL5,        /* Observation.code / item linkId of a PCL-5 total */
    RG_FHIR_NLISTS
};
/* Their names in clinic.lua and docs/fhir.md, by the index above. */
extern const char *const rg_fhir_list_name[RG_FHIR_NLISTS];

typedef enum rg_fhir_kind {
    RG_FHIR_EVENTS,   /* became events (entry->events) */
    RG_FHIR_CONTEXT,  /* read to map others (Patient, body weight, Medication) */
    RG_FHIR_UNMAPPED, /* maps to no event; reason says why */
    RG_FHIR_REJECTED  /* malformed for its mapping; location and reason */
} rg_fhir_kind;

typedef struct rg_fhir_entry {
    long index; /* Bundle: entry index from 0; NDJSON: line from 1 */
    char type[64], id[RG_EVENT_MAX_ID + 1];
    rg_fhir_kind kind;
    json_t *events;   /* an array of event objects */
    json_t *resource; /* the resource (a reference), or NULL */
    char location[256], reason[512];
} rg_fhir_entry;

/* Called per resource once the default mapping is made (events may be
 * empty). It may change events in place; it returns RG_OK, or an error (err
 * set) that stops the whole import. */
typedef int (*rg_fhir_hook)(void *ud, rg_fhir_entry *e, char *err, size_t errlen);

typedef struct rg_fhir_opts {
    const char *clinic;                      /* the events' clinic */
    const char *const *codes[RG_FHIR_NLISTS]; /* NULL-terminated "system|code" or "code";
                                                 NULL: the default list */
    rg_fhir_hook hook;
    void *hook_ud;
} rg_fhir_opts;

typedef struct rg_fhir_import {
    rg_fhir_entry *v;
    size_t n, cap;
    int bundle; /* the input was a Bundle (locations start with entry[i]) */
} rg_fhir_import;

/* text: a Bundle (collection, batch, transaction, searchset), one resource,
 * or NDJSON of resources. RG_EINVAL (err says why) when it is none of them;
 * bad resources inside are rejected entries, not an error. */
int rg_fhir_read(rg_fhir_import *im, const char *text, size_t len, const rg_fhir_opts *o,
                 char *err, size_t errlen);
/* The same for a parsed Bundle (POST /v1/fhir). */
int rg_fhir_bundle(rg_fhir_import *im, json_t *bundle, const rg_fhir_opts *o, char *err,
                   size_t errlen);
void rg_fhir_free(rg_fhir_import *im);

/* The report of one entry: {entry|line, resourceType, id, status, events,
 * location, reason}. results: its events' outcomes in order ({id, status,
 * field, reason} from the store), or NULL to list the converted events. */
json_t *rg_fhir_entry_json(const rg_fhir_import *im, const rg_fhir_entry *e, json_t *results);

/* "events", "context", "unmapped", "rejected" */
const char *rg_fhir_kind_name(rg_fhir_kind k);

#endif
