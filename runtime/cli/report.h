/*
 * report.h - the HTML timeline report (`regimen simulate --format html`): one
 * self-contained page, inline SVG and CSS, no scripts and no network access,
 * with a timeline per patient (events as marks, alerts as bars coloured by
 * severity) and one section per clinic.
 */
#ifndef RG_REPORT_H
#define RG_REPORT_H

#include "store.h"
#include "zone.h"

#include <stdio.h>

/* Writes the HTML timeline of everything in st (events of every patient and
 * every transition up to `until`) to out. title is shown in the header.
 * until may be RG_TIME_NONE (the axis then ends at the newest data).
 * Returns RG_OK, RG_EDB (store), RG_ENOMEM or RG_EIO (writing out). */
/* Times are shown in zone (NULL: UTC), "All times local, <zone>". */
int rg_report_html(rg_store *st, FILE *out, const char *title, rg_time until,
                   const rg_zone *zone);

#endif
