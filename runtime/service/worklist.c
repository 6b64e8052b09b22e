/*
 * worklist.c - the staff worklist of `regimen serve`: GET / and its assets
 * (runtime/service/www/, embedded into the binary at build time as
 * rg_www_files), the stream tickets that let the page's EventSource open the
 * transition stream without the clinic's token in a URL, and the two read
 * endpoints the page shows: an alert's explanation (rg_explain, the code of
 * `regimen explain`) and a patient's timeline (rg_report_patient_svg, the
 * drawing of `simulate --format html`). docs/service.md says why tickets.
 */
#include "service/service.h"

#include "present/explain.h"
#include "present/report.h"
#include "service/www.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

/* The page runs only its own script and style: nothing inline, nothing from
 * elsewhere, no framing, no forms posted anywhere. */
#define RG__PAGE_HEADERS                                                                    \
    "Content-Security-Policy: default-src 'none'; script-src 'self'; style-src 'self'; "    \
    "img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'none'; "       \
    "frame-ancestors 'none'\r\n"                                                             \
    "X-Content-Type-Options: nosniff\r\nReferrer-Policy: no-referrer\r\n"                    \
    "X-Frame-Options: DENY\r\n"

static void rg__error(rg_http_conn *c, int status, const char *msg)
{
    rg_svc_reply_json(c, status, json_pack("{s:s}", "error", msg));
}

/* Sends what fn wrote to a memory stream, or 503 when it failed. */
static void rg__send_stream(rg_svc *sv, rg_http_conn *c, const char *type, char *text, size_t n,
                            int rc, const char *what)
{
    if (rc) {
        free(text);
        rg_svc_unavailable(sv, c, what);
        return;
    }
    rg_http_respond_headers(c, 200, type, RG__PAGE_HEADERS, text, n);
    free(text);
}

int rg_svc_www(rg_http_conn *c, const char *path)
{
    if (!strcmp(path, "/timeline.css")) { /* the drawing's style, shared with the report */
        char *text = NULL;
        size_t n = 0;
        FILE *m = open_memstream(&text, &n);
        if (m) {
            rg_report_svg_css(m);
            fclose(m);
        }
        rg_http_respond_headers(c, text ? 200 : 500, "text/css; charset=utf-8", RG__PAGE_HEADERS,
                                text ? text : "", text ? n : 0);
        free(text);
        return 1;
    }
    const char *name = !strcmp(path, "/") ? "/index.html" : path;
    for (const rg_www_file *f = rg_www_files; f->name; f++) {
        if (strcmp(f->name, name))
            continue;
        const char *ext = strrchr(name, '.');
        const char *type = !strcmp(ext, ".html") ? "text/html; charset=utf-8"
                           : !strcmp(ext, ".js") ? "text/javascript; charset=utf-8"
                           : !strcmp(ext, ".css") ? "text/css; charset=utf-8"
                           : !strcmp(ext, ".svg") ? "image/svg+xml"
                                                  : "application/octet-stream";
        rg_http_respond_headers(c, 200, type, RG__PAGE_HEADERS, (const char *)f->data, f->len);
        return 1;
    }
    return 0;
}

/* ---- stream tickets -------------------------------------------------------- */

static void rg__tickets_expire(rg_svc *sv, uint64_t now)
{
    for (int i = 0; i < sv->ntickets;)
        if (sv->tickets[i].expires <= now)
            sv->tickets[i] = sv->tickets[--sv->ntickets];
        else
            i++;
}

/* POST /v1/stream-tickets: 32 bytes from getrandom, usable once within
 * RG_TICKET_MS, for the clinic of the identity that asked. A clinic has at
 * most limits.max_tickets_per_clinic outstanding, so that one clinic cannot
 * take the shared RG_MAX_TICKETS. */
void rg_svc_post_ticket(rg_svc *sv, int ci, rg_http_conn *c, const rg_svc_who *w)
{
    uint64_t now = uv_now(&sv->loop);
    unsigned char raw[32];
    rg__tickets_expire(sv, now);
    int mine = 0;
    for (int i = 0; i < sv->ntickets; i++)
        mine += !strcmp(sv->tickets[i].clinic, sv->clinics[ci].name);
    if (mine >= sv->max_tickets_clinic) {
        char msg[160];
        snprintf(msg, sizeof msg, "too many stream tickets outstanding for this clinic (%d); "
                                  "try again in 30 seconds", sv->max_tickets_clinic);
        rg__error(c, 503, msg);
        return;
    }
    if (sv->ntickets == RG_MAX_TICKETS) {
        rg__error(c, 503, "too many stream tickets outstanding; try again in 30 seconds");
        return;
    }
    if (getrandom(raw, sizeof raw, 0) != (ssize_t)sizeof raw) {
        rg__error(c, 503, "no random bytes for a ticket");
        return;
    }
    rg_svc_ticket *t = &sv->tickets[sv->ntickets++];
    for (size_t i = 0; i < sizeof raw; i++)
        snprintf(t->id + 2 * i, 3, "%02x", raw[i]);
    memcpy(t->clinic, sv->clinics[ci].name, sizeof t->clinic); /* the same size */
    t->expires = now + RG_TICKET_MS;
    t->who = *w;
    rg_svc_reply_json(c, 201, json_pack("{s:s,s:s,s:i}", "ticket", t->id, "clinic", t->clinic,
                                        "expires_in", RG_TICKET_MS / 1000));
}

int rg_svc_ticket_use(rg_svc *sv, const char *ticket, rg_svc_who *w)
{
    rg__tickets_expire(sv, uv_now(&sv->loop));
    if (strlen(ticket) != 64)
        return RG_ENOTFOUND;
    int found = -1;
    for (int i = 0; i < sv->ntickets; i++) {
        unsigned char diff = 0; /* every byte compared: no timing tells the prefix */
        for (int k = 0; k < 64; k++)
            diff |= (unsigned char)(sv->tickets[i].id[k] ^ ticket[k]);
        if (!diff)
            found = i;
    }
    if (found < 0)
        return RG_ENOTFOUND;
    int ci = RG_ENOTFOUND; /* by name: the clinic list may have changed since */
    for (int i = 0; i < sv->nclinics; i++)
        if (!sv->clinics[i].gone && !strcmp(sv->clinics[i].name, sv->tickets[found].clinic))
            ci = i;
    *w = sv->tickets[found].who;
    sv->tickets[found] = sv->tickets[--sv->ntickets]; /* once */
    return ci;
}

/* ---- explain, timeline ------------------------------------------------------ */

/* GET /v1/alerts/{key}/explain: what `regimen explain KEY` prints, read
 * from the caller's clinic only: a key of another clinic is as unknown as
 * no key (whatever alerts of the caller's own carry the same text). */
void rg_svc_get_explain(rg_svc *sv, int ci, rg_http_conn *c, const char *key)
{
    char *text = NULL;
    size_t len = 0;
    FILE *m = open_memstream(&text, &len);
    int rc = m ? rg_explain(sv->st, sv->eng, sv->clinics[ci].name, key, m) : RG_ENOMEM;
    if (m)
        fclose(m);
    if (rc == RG_ENOTFOUND) {
        free(text);
        rg__error(c, 404, "no alert with this key in your clinic");
        return;
    }
    rg__send_stream(sv, c, "text/plain; charset=utf-8", text, len, rc,
                    "the explanation could not be read");
}

/* GET /v1/patients/{id}/timeline: the patient's row of the HTML report, up
 * to now, as one SVG. */
void rg_svc_get_timeline(rg_svc *sv, int ci, rg_http_conn *c, const char *patient)
{
    rg_patient_state ps;
    int rc = rg_store_patient_get(sv->st, sv->clinics[ci].name, patient, &ps);
    if (rc == RG_ENOTFOUND) {
        rg__error(c, 404, "no patient with this id in your clinic");
        return;
    }
    char *text = NULL;
    size_t len = 0;
    FILE *m = rc ? NULL : open_memstream(&text, &len);
    if (!rc)
        rc = m ? rg_report_patient_svg(sv->st, sv->clinics[ci].name, patient, rg_now(),
                                       rg_engine_zone(sv->eng, sv->clinics[ci].name), m)
               : RG_ENOMEM;
    if (m)
        fclose(m);
    rg__send_stream(sv, c, "image/svg+xml", text, len, rc, "the timeline could not be read");
}
