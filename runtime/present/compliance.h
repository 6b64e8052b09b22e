/*
 * compliance.h - the esketamine compliance report (engine/compliance.h)
 * written as text, CSV or one self-contained HTML page (compliance.c), for
 * `regimen report` and GET /v1/reports/compliance.
 */
#ifndef RG_PRESENT_COMPLIANCE_H
#define RG_PRESENT_COMPLIANCE_H

#include "engine/compliance.h"

#include <stdio.h>

/* Writes the report in format "text", "csv" or "html". Returns RG_OK,
 * RG_EINVAL for another format, or RG_EIO when writing failed. */
int rg_compliance_write(const rg_compliance *r, const char *format, FILE *out);
/* 1 when format is one rg_compliance_write knows. */
int rg_compliance_format_ok(const char *format);
/* The media type of a format ("text/csv; charset=utf-8", ...). */
const char *rg_compliance_media_type(const char *format);

#endif
