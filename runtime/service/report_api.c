/*
 * report_api.c - GET /v1/reports/compliance?from=&to=&format=: the
 * esketamine (Spravato REMS) compliance report (engine/compliance.c) of the
 * token's clinic, counted by the parameters of the protocols the service
 * runs for it, in its time zone. The same report as `regimen report --db`.
 * Reads the store on the loop, like the other GETs: a report covers the
 * events of one clinic's patients.
 */
#include "service/service.h"

#include "engine/clinic.h"
#include "present/compliance.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The report is a document with inline style and nothing else. */
#define RG__REPORT_HEADERS                                                                  \
    "Content-Security-Policy: default-src 'none'; style-src 'unsafe-inline'; "              \
    "base-uri 'none'; form-action 'none'; frame-ancestors 'none'\r\n"                        \
    "X-Content-Type-Options: nosniff\r\nReferrer-Policy: no-referrer\r\n"

static void rg__bad(rg_http_conn *c, const char *msg)
{
    rg_svc_reply_json(c, 400, json_pack("{s:s}", "error", msg));
}

/* from= and to= as RFC 3339 times; 0, or RG_EINVAL with the 400 reply sent. */
static int rg__period(rg_http_conn *c, const char *query, rg_time *from, rg_time *to)
{
    static const char *const names[] = {"from", "to"};
    rg_time *out[] = {from, to};
    for (int i = 0; i < 2; i++) {
        char v[RG_SVC_QUERY_MAX + 1], err[256], msg[400];
        if (!rg_svc_query(query, names[i], v, sizeof v)) {
            snprintf(msg, sizeof msg, "query parameter '%s' is required: an RFC 3339 time such "
                     "as 2026-03-01T00:00:00Z", names[i]);
            rg__bad(c, msg);
            return RG_EINVAL;
        }
        if (rg_time_parse(v, strlen(v), out[i], NULL, err, sizeof err)) {
            snprintf(msg, sizeof msg, "query parameter '%s': %s", names[i], err);
            rg__bad(c, msg);
            return RG_EINVAL;
        }
    }
    if (*to <= *from) {
        rg__bad(c, "query parameter 'to' must be after 'from'");
        return RG_EINVAL;
    }
    return 0;
}

void rg_svc_get_compliance(rg_svc *sv, int ci, rg_http_conn *c, const rg_http_req *req)
{
    char format[RG_SVC_QUERY_MAX + 1];
    rg_time from, to;
    if (!rg_svc_query(req->query, "format", format, sizeof format))
        snprintf(format, sizeof format, "text");
    if (!rg_compliance_format_ok(format)) {
        rg__bad(c, "query parameter 'format' must be text, csv or html");
        return;
    }
    if (rg__period(c, req->query, &from, &to))
        return;
    const char *name = sv->clinics[ci].name;
    rg_clinic *cl = rg_engine_clinic(sv->eng, name);
    rg_compliance_params p;
    rg_compliance_defaults(&p);
    if (cl && rg_compliance_params_of(cl, &p) == RG_ENOMEM) {
        rg_svc_reply_json(c, 503, json_pack("{s:s}", "error", "out of memory"));
        return;
    }
    rg_compliance *r = NULL;
    int rc = rg_compliance_build(&r, sv->st, name, from, to, rg_now(), &p, cl ? &cl->cal : NULL);
    if (rc) {
        rg_svc_unavailable(sv, c, "the report could not be read");
        return;
    }
    char *text = NULL;
    size_t len = 0;
    FILE *m = open_memstream(&text, &len);
    rc = m ? rg_compliance_write(r, format, m) : RG_ENOMEM;
    if (m && fclose(m))
        rc = RG_ENOMEM;
    rg_compliance_free(r);
    if (rc) {
        free(text);
        rg_svc_reply_json(c, 503, json_pack("{s:s}", "error", "out of memory"));
        return;
    }
    rg_http_respond_headers(c, 200, rg_compliance_media_type(format), RG__REPORT_HEADERS, text,
                            len);
    free(text);
}
