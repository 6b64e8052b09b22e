/*
 * report.h - the HTML timeline report (`regimen simulate --format html`): one
 * self-contained page, inline SVG and CSS, no scripts and no network access,
 * with a timeline per patient (events as marks, alerts as bars coloured by
 * severity) and one section per clinic. Here in present/ beside explain.c,
 * because both the CLI and the service's worklist draw with it.
 */
#ifndef RG_REPORT_H
#define RG_REPORT_H

#include "store/store.h"
#include "core/zone.h"

#include <stdio.h>

/* Writes the HTML timeline of everything in st (events of every patient and
 * every transition up to `until`) to out. title is shown in the header.
 * until may be RG_TIME_NONE (the axis then ends at the newest data).
 * Times are shown in zone (NULL: UTC), "All times local, <zone>".
 * Returns RG_OK, RG_EDB (store), RG_ENOMEM or RG_EIO (writing out). */
int rg_report_html(rg_store *st, FILE *out, const char *title, rg_time until,
                   const rg_zone *zone);

/* The same drawing for one patient of a clinic, as one SVG element with its
 * date axis on top (the worklist's patient view, GET /v1/patients/{id}/timeline):
 * its alerts (from the alerts table) and events up to until. Its classes are
 * styled by rg_report_svg_css. Returns like rg_report_html. */
int rg_report_patient_svg(rg_store *st, const char *clinic, const char *patient, rg_time until,
                          const rg_zone *zone, FILE *out);
/* The CSS of the drawing (bars by severity, events by type, grid, labels). */
void rg_report_svg_css(FILE *out);

#endif
