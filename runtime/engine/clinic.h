/*
 * clinic.h - a clinic's protocols, loaded into its own sandbox.
 *
 * A protocol directory holds protocol files (*.lua at its top level, each
 * returning regimen.protocol{...}), modules in subdirectories (required as
 * "lib.course" -> lib/course.lua), and optionally clinic.lua, the clinic's
 * settings: { include = {"ketamine"}, params = {["ketamine.acute"] = {...}},
 * timezone = "America/New_York", hours = { mon = {"08:00", "18:00"}, ...,
 * sun = false }, closures = {"2026-12-25"}, notify_at_once = {"critical"},
 * notify = { receivers, routes, inhibit } (notify.h),
 * events = { phone_call = {}, vitals = { "spo2" } } }.
 * include names directories of the shipped protocol root whose protocols the
 * clinic also runs; params overrides protocol defaults for every patient;
 * fhir = { codes = {...}, map = function(resource, event) } adjusts the FHIR
 * import (docs/fhir.md); the rest is the clinic's calendar (runtime/core/calendar.h): without it,
 * UTC and always open.
 *
 * Ownership: rg_clinic_load creates the clinic (and its sandbox); the caller
 * owns it and frees it with rg_clinic_free. The protocol descriptions live in
 * the sandbox's registry; the C arrays below mirror what C needs by name.
 */
#ifndef RG_CLINIC_H
#define RG_CLINIC_H

#include "core/fhir.h"
#include "core/calendar.h"
#include "engine/notify.h"
#include "engine/sandbox.h"

typedef struct rg_rule {
    char *id, *severity, *where; /* where: "file:line" of the rule's check */
} rg_rule;

typedef struct rg_protocol {
    char *id, *version, *file, *hash;
    char **plan_events; /* event types whose data override parameters per patient */
    int nplan;
    rg_rule *rules;
    int nrules;
    uint64_t evaluations; /* protected calls made, and their wall time: for metrics */
    double seconds;
    /* Quarantine (runtime/engine/engine.c): the monotonic ms of the latest
     * limit hits, and, while quarantined, until when; a reload makes a new
     * rg_protocol, so it starts clean. */
    int64_t hits[8];
    int nhits;
    int64_t quarantined_until; /* 0: not quarantined */
    int quarantines;           /* times quarantined since loaded (the back-off doubles) */
} rg_protocol;

typedef struct rg_clinic {
    char *name, *dir;
    rg_sandbox *sb;
    rg_protocol *protos;
    int nprotos;
    char **fhir_codes[RG_FHIR_NLISTS]; /* clinic.lua's fhir.codes (NULL: the default) */
    int fhir_map;                      /* clinic.lua defines fhir.map */
    int64_t fhir_until; /* monotonic ms the fhir.map calls of one import end by (0: none) */
    int fhir_total_ms;  /* ... the length of that budget (rg_clinic_fhir_budget) */
    rg_calendar cal; /* its zone, hours, closures (a copy of the sandbox's) */
    rg_notify_policy *notify; /* clinic.lua's notify (NULL: none; runtime/engine/notify.h) */
} rg_clinic;

/* Loads every protocol of dir for clinic `name`. shipped is the root of the
 * shipped protocol set (for require and include); may be NULL. overrides, if
 * not NULL, is a JSON object of parameter overrides applied after clinic.lua's
 * (same shape as its `params`). On failure, err names the file and line and
 * nothing is returned. */
int rg_clinic_load(rg_clinic **out, const char *name, const char *dir, const char *shipped,
                   const char *overrides, const rg_limits *lim, char *err, size_t errlen);
void rg_clinic_free(rg_clinic *c);
/* The time zone dir's clinic.lua gives clinic `name` (its settings run, no
 * protocol loaded: what printing a clinic's transitions needs), or NULL
 * when they do not load. */
const rg_zone *rg_clinic_zone(const char *name, const char *dir, const char *shipped,
                              const rg_limits *lim);

/* [-0, +1] Pushes the Lua description of protocol i (0-based): a table with
 * applies, params (the clinic's base, a plain table), params_ro (read-only
 * proxy of it), plan (set of types) and rules[j] = {id, severity, check}. */
void rg_clinic_push_protocol(rg_clinic *c, int i);

/* [-0, +1] Pushes clinic.lua's events (event type -> list of data field
 * names, checked at load: the clinic's own, for regimen check), or nil. */
void rg_clinic_push_events(rg_clinic *c);

/* The clinic's FHIR import options: its code lists and, when clinic.lua
 * defines fhir.map, a hook that calls it in the clinic's sandbox (under the
 * evaluation limits; an error names clinic.lua and its line). o->clinic is
 * the clinic's name. */
void rg_clinic_fhir_opts(rg_clinic *c, rg_fhir_opts *o);
/* One budget for all the fhir.map calls of the next import (POST /v1/fhir):
 * they end total_ms from now, summed, or the import fails with the message
 * naming clinic.lua and its line; total_ms 0 lifts it (each call keeps its
 * own deadline). */
void rg_clinic_fhir_budget(rg_clinic *c, int total_ms);

/* Finds a rule by id; sets *proto (index) and returns it, or NULL. */
const rg_rule *rg_clinic_find_rule(const rg_clinic *c, const char *rule, int *proto);

#endif
