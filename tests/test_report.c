/*
 * test_report.c - the HTML timeline report: well-formed markup, one row per
 * patient in id order, one bar per alert with its severity's colour class,
 * still-open alerts marked, user strings escaped, nothing fetched from the
 * network, an empty store, write errors, and a store of thousands of
 * patients in reasonable time.
 */
#include "helpers.h"

#include "engine/engine.h"
#include "store/ingest.h"
#include "present/report.h"

#include <time.h>

typedef struct fixture {
    rg_store *st;
    rg_engine *eng;
} fixture;

static rg_time T(const char *s)
{
    rg_time t;
    cr_assert_eq(rg_time_parse(s, strlen(s), &t, NULL, NULL, 0), 0, "bad time %s", s);
    return t;
}

static void fx_open(fixture *f)
{
    char err[4096];
    cr_assert_eq(rg_store_open(&f->st, ":memory:", NULL, err, sizeof err), 0, "%s", err);
    rg_engine_opts o = {.limits = RG_LIMITS_DEFAULT, .shipped = "protocols"};
    cr_assert_eq(rg_engine_new(&f->eng, f->st, &o), 0);
    cr_assert_eq(rg_engine_set_clinic(f->eng, "north", "protocols/ketamine", err, sizeof err), 0,
                 "%s", err);
    cr_assert_eq(rg_engine_set_clinic(f->eng, "south", "protocols/ketamine", err, sizeof err), 0,
                 "%s", err);
}

static void fx_close(fixture *f)
{
    rg_engine_free(f->eng);
    rg_store_close(f->st);
}

/* Stores one event (patient and data are JSON string/object text). */
static void put(fixture *f, const char *id, const char *clinic, const char *patient_json,
                const char *type, const char *at, const char *data)
{
    char line[2048];
    rg_ingest_counts c = {0};
    snprintf(line, sizeof line,
             "{\"id\":\"%s\",\"clinic\":\"%s\",\"patient\":%s,\"type\":\"%s\",\"at\":\"%s\"%s%s}",
             id, clinic, patient_json, type, at, data ? ",\"data\":" : "", data ? data : "");
    cr_assert_eq(rg_ingest_one(f->st, line, strlen(line), "test", 1, &c, NULL, NULL),
                 RG_PUT_STORED, "%s", line);
}

static char *render(rg_store *st, const char *title, rg_time until)
{
    char *text = NULL;
    size_t len = 0;
    FILE *m = open_memstream(&text, &len);
    cr_assert_not_null(m);
    cr_assert_eq(rg_report_html(st, m, title, until, NULL), RG_OK);
    fclose(m);
    return text;
}

static int count(const char *hay, const char *needle)
{
    int n = 0;
    for (const char *p = hay; (p = strstr(p, needle)); p += strlen(needle))
        n++;
    return n;
}

/* Tags balance (HTML void elements aside) and every '&' starts an entity. */
static void assert_well_formed(const char *s)
{
    static const char *const voids[] = {"meta", "br", "hr", "img", "link", "input"};
    char stack[64][16];
    int depth = 0;
    for (const char *p = s; *p; p++) {
        if (*p == '&') {
            size_t n = strspn(p + 1, "abcdefghijklmnopqrstuvwxyz#0123456789");
            cr_assert(n > 0 && p[1 + n] == ';', "a bare '&' near: %.60s", p);
        }
        if (*p != '<')
            continue;
        const char *end = strchr(p, '>');
        cr_assert_not_null(end, "unterminated tag near: %.60s", p);
        if (p[1] == '!') {
            p = end;
            continue;
        }
        int closing = p[1] == '/';
        const char *name = p + 1 + closing;
        size_t n = strspn(name, "abcdefghijklmnopqrstuvwxyz0123456789");
        cr_assert(n > 0 && n < 16, "odd tag near: %.60s", p);
        int is_void = end[-1] == '/';
        for (size_t i = 0; i < RG_COUNTOF(voids); i++)
            is_void |= strlen(voids[i]) == n && !strncmp(name, voids[i], n);
        if (closing) {
            cr_assert_gt(depth, 0, "</%.*s> closes nothing", (int)n, name);
            depth--;
            cr_assert(strlen(stack[depth]) == n && !strncmp(stack[depth], name, n),
                      "<%s> closed by </%.*s>", stack[depth], (int)n, name);
        } else if (!is_void) {
            cr_assert_lt(depth, 64);
            snprintf(stack[depth++], 16, "%.*s", (int)n, name);
        }
        p = end;
    }
    cr_assert_eq(depth, 0, "<%s> is never closed", depth ? stack[depth - 1] : "");
    cr_assert_eq(count(s, "<svg"), count(s, "</svg>"));
}

/* Nothing that loads anything: no URL but the SVG namespace, no scripts. */
static void assert_offline(const char *s)
{
    char *copy = strdup(s), *p;
    const char ns[] = "xmlns=\"http://www.w3.org/2000/svg\"";
    while ((p = strstr(copy, ns)))
        memset(p, 'x', strlen(ns));
    cr_assert_null(strstr(copy, "http://"), "%s", strstr(copy, "http://"));
    cr_assert_null(strstr(copy, "https://"));
    cr_assert_null(strstr(copy, "<script"));
    cr_assert_null(strstr(copy, "url("));
    cr_assert_null(strstr(copy, "@import"));
    cr_assert_null(strstr(copy, "src="));
    free(copy);
}

typedef struct alerts {
    int opened[4], still_open;
} alerts;

static int count_alerts(void *ud, const rg_transition *t)
{
    alerts *a = ud;
    int s = !strcmp(t->severity, "info") ? 0 : !strcmp(t->severity, "warning") ? 1
          : !strcmp(t->severity, "critical") ? 2 : 3;
    a->opened[s] += t->open;
    a->still_open += t->open ? 1 : -1;
    return 0;
}

Test(report, draws_every_patient_alert_and_event_escaped)
{
    fixture f;
    fx_open(&f);
    const char *odd = "\"<b>&\\\"x\\\"\""; /* the JSON string "<b>&\"x\"" */
    put(&f, "e1", "north", "\"p-2\"", "enrolled", "2026-03-01T09:00:00Z",
        "{\"program\":\"ketamine\"}");
    put(&f, "e2", "north", "\"p-2\"", "vitals", "2026-03-02T09:45:00Z",
        "{\"systolic\":175,\"diastolic\":104,\"phase\":\"pre\"}");
    put(&f, "e3", "north", "\"p-2\"", "infusion", "2026-03-02T10:00:00Z",
        "{\"dose_mg_per_kg\":0.5,\"note\":\"</title><script>alert('x')</script>\"}");
    put(&f, "e4", "north", "\"p-10\"", "enrolled", "2026-03-03T09:00:00Z",
        "{\"program\":\"ketamine\"}");
    put(&f, "e5", "north", "\"p-10\"", "infusion", "2026-03-04T10:00:00Z", NULL);
    put(&f, "e6", "north", odd, "enrolled", "2026-03-05T09:00:00Z", "{\"program\":\"ketamine\"}");
    put(&f, "e7", "south", "\"s-1\"", "enrolled", "2026-03-05T09:00:00Z",
        "{\"program\":\"ketamine\"}");
    put(&f, "late", "south", "\"s-1\"", "infusion", "2026-06-01T10:00:00Z", NULL);
    rg_time until = T("2026-04-01T00:00:00Z");
    cr_assert_gt(rg_engine_advance_all(f.eng, RG_TIME_NONE, until), 0);
    char *html = render(f.st, "Report <&>", until);

    assert_well_formed(html);
    assert_offline(html);
    cr_assert(strstr(html, "<title>Report &lt;&amp;&gt;</title>"));
    cr_assert(strstr(html, "1 Apr 2026"), "the horizon is in the header");
    cr_assert(strstr(html, "4 patients in 2 clinics"));
    cr_assert(strstr(html, "(1 later ones not shown)"));
    cr_assert(strstr(html, "class=\"tick\""));
    cr_assert(strstr(html, "<h2>Clinic north</h2>") < strstr(html, "<h2>Clinic south</h2>"));

    /* patients in id order within their clinic, the odd one escaped */
    const char *esc = strstr(html, "<b>&lt;b&gt;&amp;&quot;x&quot;</b>");
    const char *p10 = strstr(html, "<b>p-10</b>"), *p2 = strstr(html, "<b>p-2</b>");
    cr_assert(esc && p10 && p2 && esc < p10 && p10 < p2, "rows in (clinic, patient) order");
    cr_assert(strstr(html, "<b>s-1</b>") > p2);
    cr_assert_null(strstr(html, "<b>&\"x\"</b>"));
    cr_assert_null(strstr(html, "</title><script>"));
    cr_assert(strstr(html, "&lt;/title&gt;&lt;script&gt;alert(&#39;x&#39;)"));

    /* events: a mark with a tooltip of id, type, time and data; none after until */
    cr_assert_eq(count(html, "<g class=\"ev "), 7);
    cr_assert(strstr(html, "<title>infusion \xc2\xb7 e3\n2026-03-02T10:00:00Z\n{"));
    cr_assert_null(strstr(html, "2026-06-01T10:00:00Z"));

    /* one bar per alert, coloured by severity; the open ones run to the end */
    alerts a = {0};
    cr_assert_eq(rg_store_each_transition(f.st, 0, 1, count_alerts, &a), 0);
    cr_assert_gt(a.opened[2], 0, "the high blood pressure raised a critical alert");
    cr_assert_gt(a.opened[0], 0);
    cr_assert_gt(a.still_open, 0);
    cr_assert_eq(count(html, "class=\"bar sev-info"), a.opened[0]);
    cr_assert_eq(count(html, "class=\"bar sev-warning"), a.opened[1]);
    cr_assert_eq(count(html, "class=\"bar sev-critical"), a.opened[2]);
    /* e5 has no dose: the clinic's own alert (a rule failing) has a row of its own */
    cr_assert(strstr(html, "<div class=\"row clinic\"><div class=\"pid\"><b>(clinic)</b>"), "%s",
              html);
    cr_assert(strstr(html, "regimen.evaluation-failed"));
    cr_assert_eq(count(html, "class=\"bar "), a.opened[0] + a.opened[1] + a.opened[2]);
    cr_assert_eq(count(html, " open\" x="), a.still_open);
    cr_assert_eq(count(html, "\xc2\xb7 open</text>"), a.still_open);
    cr_assert_eq(count(html, "still open at 2026-04-01T00:00:00Z"), a.still_open);
    cr_assert(strstr(html, "safety.bp-high"));
    cr_assert(strstr(html, "version 1.0.0"));
    free(html);
    fx_close(&f);
}

Test(report, an_empty_store_renders_a_page)
{
    fixture f;
    fx_open(&f);
    char *html = render(f.st, NULL, T("2026-05-01T00:00:00Z"));
    assert_well_formed(html);
    assert_offline(html);
    cr_assert(strstr(html, "No patients in the store."));
    cr_assert(strstr(html, "0 patients in 0 clinics"));
    cr_assert(strstr(html, "</html>\n"));
    free(html);
    html = render(f.st, "", RG_TIME_NONE);
    assert_well_formed(html);
    free(html);
    fx_close(&f);
}

Test(report, reports_write_errors)
{
    fixture f;
    fx_open(&f);
    put(&f, "e1", "north", "\"p\"", "enrolled", "2026-03-01T09:00:00Z", NULL);
    FILE *full = fopen("/dev/full", "w");
    cr_assert_not_null(full);
    cr_assert_eq(rg_report_html(f.st, full, "x", T("2026-03-02T00:00:00Z"), NULL), RG_EIO);
    fclose(full);
    fx_close(&f);
}

Test(report, thousands_of_patients_in_reasonable_time, .timeout = 120)
{
    fixture f;
    fx_open(&f);
    char id[64], patient[64];
    cr_assert_eq(rg_store_begin(f.st), 0);
    for (int i = 0; i < 2000; i++) {
        snprintf(patient, sizeof patient, "\"p%05d\"", i);
        snprintf(id, sizeof id, "e%d-1", i);
        put(&f, id, "north", patient, "enrolled", "2026-03-01T09:00:00Z",
            "{\"program\":\"ketamine\"}");
        snprintf(id, sizeof id, "e%d-2", i);
        put(&f, id, "north", patient, "infusion", "2026-03-02T10:00:00Z", NULL);
    }
    cr_assert_eq(rg_store_commit(f.st), 0);
    rg_time until = T("2026-04-01T00:00:00Z");
    cr_assert_eq(rg_engine_advance_all(f.eng, RG_TIME_NONE, until), 2000);
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    char *html = render(f.st, "big", until);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double secs = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
    cr_assert_lt(secs, 20.0, "rendering 2000 patients took %.1f s", secs);
    cr_assert_eq(count(html, "<div class=\"row\">"), 2000);
    cr_assert(strstr(html, "<b>p00000</b>") < strstr(html, "<b>p01999</b>"));
    assert_well_formed(html);
    free(html);
    fx_close(&f);
}

/* The worklist's patient view (rg_report_patient_svg, GET
 * /v1/patients/{id}/timeline) draws the same row as the report: the
 * patient's bars and marks, none of another patient's, escaped, offline. */
Test(report, one_patient_svg_is_the_report_row_of_that_patient)
{
    fixture f;
    fx_open(&f);
    put(&f, "e1", "north", "\"p-2\"", "enrolled", "2026-03-01T09:00:00Z",
        "{\"program\":\"ketamine\"}");
    put(&f, "e2", "north", "\"p-2\"", "vitals", "2026-03-02T09:45:00Z",
        "{\"systolic\":175,\"diastolic\":104,\"phase\":\"pre\",\"n\":\"<script>x</script>\"}");
    put(&f, "e3", "north", "\"p-3\"", "enrolled", "2026-03-01T09:00:00Z",
        "{\"program\":\"ketamine\"}");
    put(&f, "e4", "north", "\"p-3\"", "vitals", "2026-03-03T09:45:00Z",
        "{\"systolic\":190,\"diastolic\":110,\"phase\":\"pre\"}");
    put(&f, "e5", "north", "\"p-2\"", "infusion", "2026-05-01T10:00:00Z", NULL);
    rg_time until = T("2026-04-01T00:00:00Z");
    cr_assert_gt(rg_engine_advance_all(f.eng, RG_TIME_NONE, until), 0);
    char *html = render(f.st, "r", until), *svg = NULL;
    size_t len = 0;
    FILE *m = open_memstream(&svg, &len);
    cr_assert_eq(rg_report_patient_svg(f.st, "north", "p-2", until, NULL, m), RG_OK);
    fclose(m);

    assert_well_formed(svg);
    assert_offline(svg);
    cr_assert(!strncmp(svg, "<svg xmlns=\"http://www.w3.org/2000/svg\" class=\"timeline\"", 56), "%s", svg);
    cr_assert(strstr(svg, "class=\"tick\""), "with its date axis");
    cr_assert(strstr(svg, "class=\"bar sev-critical"), "the high pressure's bar");
    cr_assert_eq(count(svg, "<g class=\"ev "), 2, "p-2's events up to until: %s", svg);
    cr_assert_null(strstr(svg, "e4"), "nothing of p-3");
    cr_assert_null(strstr(svg, "<script>"));
    cr_assert(strstr(svg, "&lt;script&gt;"));
    /* the same bars as p-2's row of the report */
    const char *row = strstr(html, "<b>p-2</b>"), *end = strstr(row, "</svg>");
    int bars_row = 0;
    for (const char *p = row; (p = strstr(p, "<rect class=\"bar")) && p < end; p++)
        bars_row++;
    cr_assert_eq(count(svg, "<rect class=\"bar"), bars_row);

    char *css = NULL;
    m = open_memstream(&css, &len);
    rg_report_svg_css(m);
    fclose(m);
    cr_assert(strstr(css, ".sev-critical{") && strstr(css, ".t0{") && strstr(html, css),
              "the report is styled by the same CSS");
    free(css);
    free(svg);
    free(html);
    fx_close(&f);
}
