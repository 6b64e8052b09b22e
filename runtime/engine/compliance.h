/*
 * compliance.h - the esketamine (Spravato REMS) compliance report of a
 * clinic over a period: its sessions, the share with a pre-dose and a
 * 40-minute blood pressure and with at least 2 hours of monitoring, the
 * monitoring forms submitted within 7 days (and which are late or missing),
 * and the PHQ-9 response and remission at the end of induction. Written as
 * text, CSV or one self-contained HTML page, by `regimen report` and by
 * GET /v1/reports/compliance.
 *
 * It reads the stored events (current versions; see rg_store_each_event_data)
 * with the same vocabulary and the same numbers as protocols/esketamine: the
 * numbers are read from the clinic's loaded esketamine protocols, so a clinic
 * that overrides them in clinic.lua reports by its own (patient plans are not
 * applied: a report is about the clinic). The rules themselves raise the
 * alerts; this only counts, so it never evaluates a protocol.
 *
 * Ownership: rg_compliance_build creates the report; the caller frees it with
 * rg_compliance_free.
 */
#ifndef RG_COMPLIANCE_H
#define RG_COMPLIANCE_H

#include "core/calendar.h"
#include "engine/clinic.h"
#include "store/store.h"

#include <stdio.h>

/* The numbers the report counts by (durations in ms), as the esketamine
 * protocols name them. */
typedef struct rg_compliance_params {
    rg_time pre_dose_bp_within; /* esketamine.session: a pre-dose reading counts this long before */
    rg_time post_dose_bp_from;  /* a post-dose reading this long after the dose or later is "40-minute" */
    rg_time monitoring_min;     /* at least this long from the dose to monitoring_end */
    rg_time form_within;        /* esketamine.rems: the form is due this long after its dose */
    int induction_weeks;        /* esketamine.induction twice_weekly_weeks: induction ends then */
    rg_time assessment_window;  /* a PHQ-9 this long around the end of induction counts */
    double response_fall;       /* a fall of at least this share of the baseline is a response */
    double remission_below;     /* a PHQ-9 below this is a remission */
} rg_compliance_params;

/* The shipped defaults (protocols/esketamine). */
void rg_compliance_defaults(rg_compliance_params *p);
/* Reads the parameters of the clinic's esketamine.session, esketamine.rems
 * and esketamine.induction protocols into p (the others keep their values).
 * Returns RG_OK, RG_ENOTFOUND when the clinic runs none of them (p then
 * keeps the defaults), or RG_ENOMEM. */
int rg_compliance_params_of(rg_clinic *c, rg_compliance_params *p);

typedef struct rg_compliance rg_compliance;

/* The report of clinic's esketamine doses given in [from, to) and of the
 * courses whose induction ends in [from, to), from the events stored in st.
 * A form is "not yet due" while its deadline is after as_of (usually now).
 * cal gives the clinic's calendar (the end of induction is 7 x weeks days
 * later on it, at the same local time) and the zone of what is shown; NULL:
 * UTC. Returns RG_OK, RG_EDB or RG_ENOMEM. */
int rg_compliance_build(rg_compliance **out, rg_store *st, const char *clinic, rg_time from,
                        rg_time to, rg_time as_of, const rg_compliance_params *p,
                        const rg_calendar *cal);
void rg_compliance_free(rg_compliance *r);

/* Writes the report in format "text", "csv" or "html". Returns RG_OK,
 * RG_EINVAL for another format, or RG_EIO when writing failed. */
int rg_compliance_write(const rg_compliance *r, const char *format, FILE *out);
/* 1 when format is one rg_compliance_write knows. */
int rg_compliance_format_ok(const char *format);
/* The media type of a format ("text/csv; charset=utf-8", ...). */
const char *rg_compliance_media_type(const char *format);

#endif
