/*
 * compliance.h - the esketamine (Spravato REMS) compliance report of a
 * clinic over a period: its sessions, the share with a pre-dose and a
 * 40-minute blood pressure and with at least 2 hours of monitoring, the
 * monitoring forms submitted within 7 days (and which are late or missing),
 * and the PHQ-9 response and remission at the end of induction. Built and
 * counted here; written as text, CSV or one self-contained HTML page by
 * present/compliance.h, for `regimen report` and GET /v1/reports/compliance.
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

/* A session's monitoring form. */
enum { RG_COMPLIANCE_FORM_IN_TIME, RG_COMPLIANCE_FORM_LATE, RG_COMPLIANCE_FORM_MISSING,
       RG_COMPLIANCE_FORM_NOT_DUE };

/* One esketamine dose. */
typedef struct rg_compliance_session {
    char *patient, *id;
    rg_time at, ended, form_at;
    double dose_mg;
    int pre, post40, form; /* form: RG_COMPLIANCE_FORM_* */
} rg_compliance_session;

/* One course, to the end of its induction. */
typedef struct rg_compliance_course {
    char *patient;
    rg_time first_dose, end; /* end: of induction */
    int ended_early;         /* discharged before the end of induction */
    double baseline, outcome; /* PHQ-9 scores; < 0: none */
} rg_compliance_course;

/* The report: what a writer (present/compliance.h) reads. */
typedef struct rg_compliance {
    char *clinic;
    rg_time from, to, as_of;
    rg_compliance_params p;
    rg_calendar cal;
    rg_compliance_session *s;
    size_t ns, caps;
    rg_compliance_course *c;
    size_t nc, capc;
} rg_compliance;

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

/* What the report counts. */
typedef struct rg_compliance_counts {
    size_t sessions, pre, post40, both, monitored, in_time, late, missing, not_due;
    size_t courses, assessed, response, remission, ended_early;
} rg_compliance_counts;
rg_compliance_counts rg_compliance_count(const rg_compliance *r);
/* A session monitored long enough; a course's response; its remission. */
int rg_compliance_monitored(const rg_compliance *r, const rg_compliance_session *s);
int rg_compliance_responded(const rg_compliance *r, const rg_compliance_course *c);
int rg_compliance_remitted(const rg_compliance *r, const rg_compliance_course *c);

#endif
