/*
 * compliance.c - the esketamine compliance report written for people
 * (compliance.h): text, CSV (RFC 4180) or one self-contained HTML page, from
 * the report engine/compliance.c builds and counts. Writes only; the numbers
 * are the engine's.
 */
#include "present/compliance.h"

#include "core/rg.h"
#include "core/zone.h"

#include <stdio.h>
#include <string.h>

/* "12 of 19 (63.2%)"; "0 of 0 (-)" */
static const char *rg__share(char *buf, size_t len, size_t n, size_t of)
{
    if (of)
        snprintf(buf, len, "%zu of %zu (%.1f%%)", n, of, 100.0 * (double)n / (double)of);
    else
        snprintf(buf, len, "%zu of 0 (-)", n);
    return buf;
}

static const char *rg__form_name(int form)
{
    static const char *const names[] = {"in time", "late", "missing", "not yet due"};
    return names[form];
}

static const char *rg__when(const rg_compliance *r, rg_time t, char buf[RG_TIME_BUFSZ])
{
    return rg_zone_display(r->cal.zone ? r->cal.zone : rg_zone_utc(), t, buf);
}

static const char *rg__days(char *buf, size_t len, rg_time d)
{
    snprintf(buf, len, "%.1f days", (double)d / (double)RG_MS_DAY);
    return buf;
}

/* How long a session was monitored: "125 min", or "not ended". */
static const char *rg__monitoring(const rg_compliance_session *s, char *buf, size_t len)
{
    if (s->ended == RG_TIME_NONE)
        snprintf(buf, len, "not ended");
    else
        snprintf(buf, len, "%lld min", (long long)((s->ended - s->at) / RG_MS_MINUTE));
    return buf;
}

/* "PHQ-9 22 -> 4 (-82%): response, remission" and its variants */
static const char *rg__outcome(const rg_compliance *r, const rg_compliance_course *c, char *buf, size_t len)
{
    if (c->ended_early)
        snprintf(buf, len, "course ended before the end of induction");
    else if (c->baseline < 0 && c->outcome < 0)
        snprintf(buf, len, "no baseline PHQ-9 and no PHQ-9 at the end of induction");
    else if (c->baseline < 0)
        snprintf(buf, len, "PHQ-9 %g at the end of induction, no baseline", c->outcome);
    else if (c->outcome < 0)
        snprintf(buf, len, "baseline PHQ-9 %g, no PHQ-9 at the end of induction", c->baseline);
    else
        snprintf(buf, len, "PHQ-9 %g -> %g (%+.0f%%): %s, %s", c->baseline, c->outcome,
                 c->baseline > 0 ? 100.0 * (c->outcome - c->baseline) / c->baseline : 0.0,
                 rg_compliance_responded(r, c) ? "response" : "no response",
                 rg_compliance_remitted(r, c) ? "remission" : "no remission");
    return buf;
}

static void rg__text(const rg_compliance *r, FILE *out)
{
    char a[RG_TIME_BUFSZ], b[RG_TIME_BUFSZ], s1[64], s2[64];
    rg_compliance_counts k = rg_compliance_count(r);
    const rg_compliance_params *p = &r->p;
    fprintf(out, "Esketamine (Spravato REMS) compliance, clinic %s\n", r->clinic);
    fprintf(out, "period %s to %s%s%s\n", rg__when(r, r->from, a), rg__when(r, r->to, b),
            r->cal.zone && strcmp(rg_zone_name(r->cal.zone), "UTC") ? ", times in " : "",
            r->cal.zone && strcmp(rg_zone_name(r->cal.zone), "UTC") ? rg_zone_name(r->cal.zone)
                                                                     : "");
    fprintf(out, "counted by: a pre-dose reading within %g h before the dose, a post-dose reading "
                 "%g min or more after it, monitoring of %g h, the form within %g days, "
                 "induction of %d weeks\n\n",
            (double)p->pre_dose_bp_within / RG_MS_HOUR, (double)p->post_dose_bp_from / RG_MS_MINUTE,
            (double)p->monitoring_min / RG_MS_HOUR, (double)p->form_within / RG_MS_DAY,
            p->induction_weeks);
    fprintf(out, "%-44s %zu\n", "sessions (esketamine doses)", k.sessions);
    fprintf(out, "%-44s %s\n", "with a pre-dose blood pressure", rg__share(s1, 64, k.pre, k.sessions));
    fprintf(out, "%-44s %s\n", "with a 40-minute blood pressure", rg__share(s1, 64, k.post40, k.sessions));
    fprintf(out, "%-44s %s\n", "with both", rg__share(s1, 64, k.both, k.sessions));
    char label[64];
    snprintf(label, sizeof label, "monitored at least %g hours", (double)p->monitoring_min / RG_MS_HOUR);
    fprintf(out, "%-44s %s\n", label, rg__share(s1, 64, k.monitored, k.sessions));
    size_t due = k.sessions - k.not_due;
    snprintf(label, sizeof label, "monitoring forms submitted within %g days",
             (double)p->form_within / RG_MS_DAY);
    fprintf(out, "%-44s %s\n", label, rg__share(s1, 64, k.in_time, due));
    fprintf(out, "%-44s %zu late, %zu missing, %zu not yet due\n", "", k.late, k.missing, k.not_due);
    fprintf(out, "%-44s %zu (%zu assessed, %zu ended before)\n", "courses ending induction",
            k.courses, k.assessed, k.ended_early);
    fprintf(out, "%-44s %s\n", "PHQ-9 response (a fall of 50% or more)", rg__share(s1, 64, k.response, k.assessed));
    fprintf(out, "%-44s %s\n", "PHQ-9 remission (below 5)", rg__share(s2, 64, k.remission, k.assessed));

    if (k.late + k.missing) {
        fprintf(out, "\nmonitoring forms late or missing:\n");
        for (size_t i = 0; i < r->ns; i++) {
            const rg_compliance_session *s = &r->s[i];
            if (s->form != RG_COMPLIANCE_FORM_LATE && s->form != RG_COMPLIANCE_FORM_MISSING)
                continue;
            fprintf(out, "  %-12s %-16s dose %s: ", s->patient, s->id, rg__when(r, s->at, a));
            if (s->form == RG_COMPLIANCE_FORM_LATE)
                fprintf(out, "submitted %s, %s after\n", rg__when(r, s->form_at, b),
                        rg__days(s1, 64, s->form_at - s->at));
            else
                fprintf(out, "missing (due %s)\n", rg__when(r, s->at + p->form_within, b));
        }
    }
    if (r->nc) {
        fprintf(out, "\nend of induction:\n");
        for (size_t i = 0; i < r->nc; i++) {
            char o[200];
            fprintf(out, "  %-12s %s: %s\n", r->c[i].patient, rg__when(r, r->c[i].end, a),
                    rg__outcome(r, &r->c[i], o, sizeof o));
        }
    }
    if (r->ns) {
        fprintf(out, "\nsessions:\n  %-12s %-16s %-24s %-4s %-6s %-10s %s\n", "PATIENT", "DOSE",
                "AT", "PRE", "40-MIN", "MONITORED", "FORM");
        for (size_t i = 0; i < r->ns; i++) {
            const rg_compliance_session *s = &r->s[i];
            char mon[32];
            rg__monitoring(s, mon, sizeof mon);
            fprintf(out, "  %-12s %-16s %-24s %-4s %-6s %-10s %s\n", s->patient, s->id,
                    rg__when(r, s->at, a), s->pre ? "yes" : "no", s->post40 ? "yes" : "no", mon,
                    rg__form_name(s->form));
        }
    }
}

/* A CSV field (RFC 4180): quoted when it holds a comma, quote or line break. */
static void rg__csv(FILE *out, const char *s, int last)
{
    if (strpbrk(s, ",\"\r\n")) {
        fputc('"', out);
        for (; *s; s++) {
            if (*s == '"')
                fputc('"', out);
            fputc(*s, out);
        }
        fputc('"', out);
    } else {
        fputs(s, out);
    }
    fputs(last ? "\r\n" : ",", out);
}

/* One row per session, then one per course ending induction (record says
 * which); the same columns for both, empty where they do not apply. */
static void rg__csv_all(const rg_compliance *r, FILE *out)
{
    char a[RG_TIME_BUFSZ], b[RG_TIME_BUFSZ], n1[32], n2[32];
    fputs("record,clinic,patient,dose,at,pre_dose_bp,bp_40_min,monitoring_minutes,"
          "monitored_2h,form,form_at,phq9_baseline,phq9_end_of_induction,response,remission\r\n",
          out);
    for (size_t i = 0; i < r->ns; i++) {
        const rg_compliance_session *s = &r->s[i];
        rg__csv(out, "session", 0);
        rg__csv(out, r->clinic, 0);
        rg__csv(out, s->patient, 0);
        rg__csv(out, s->id, 0);
        rg__csv(out, rg_time_format(s->at, a), 0);
        rg__csv(out, s->pre ? "yes" : "no", 0);
        rg__csv(out, s->post40 ? "yes" : "no", 0);
        if (s->ended == RG_TIME_NONE)
            n1[0] = '\0';
        else
            snprintf(n1, sizeof n1, "%lld", (long long)((s->ended - s->at) / RG_MS_MINUTE));
        rg__csv(out, n1, 0);
        rg__csv(out, rg_compliance_monitored(r, s) ? "yes" : "no", 0);
        rg__csv(out, rg__form_name(s->form), 0);
        rg__csv(out, s->form_at == RG_TIME_NONE ? "" : rg_time_format(s->form_at, b), 0);
        fputs(",,,\r\n", out);
    }
    for (size_t i = 0; i < r->nc; i++) {
        const rg_compliance_course *c = &r->c[i];
        int both = !c->ended_early && c->baseline >= 0 && c->outcome >= 0;
        rg__csv(out, c->ended_early ? "induction_ended_early" : "induction", 0);
        rg__csv(out, r->clinic, 0);
        rg__csv(out, c->patient, 0);
        fputs(",", out);
        rg__csv(out, rg_time_format(c->end, a), 0);
        fputs(",,,,,,", out);
        snprintf(n1, sizeof n1, "%g", c->baseline);
        snprintf(n2, sizeof n2, "%g", c->outcome);
        rg__csv(out, c->baseline >= 0 ? n1 : "", 0);
        rg__csv(out, c->outcome >= 0 ? n2 : "", 0);
        rg__csv(out, !both ? "" : rg_compliance_responded(r, c) ? "yes" : "no", 0);
        rg__csv(out, !both ? "" : rg_compliance_remitted(r, c) ? "yes" : "no", 1);
    }
}

static void rg__html_text(FILE *out, const char *s)
{
    for (; *s; s++)
        switch (*s) {
        case '<': fputs("&lt;", out); break;
        case '>': fputs("&gt;", out); break;
        case '&': fputs("&amp;", out); break;
        case '"': fputs("&quot;", out); break;
        case '\'': fputs("&#39;", out); break;
        default: fputc(*s, out);
        }
}

static void rg__html_row(FILE *out, const char *label, const char *value)
{
    fputs("<tr><th scope=\"row\">", out);
    rg__html_text(out, label);
    fputs("</th><td>", out);
    rg__html_text(out, value);
    fputs("</td></tr>\n", out);
}

static void rg__html_cell(FILE *out, const char *s, const char *cls)
{
    fprintf(out, "<td%s%s%s>", cls ? " class=\"" : "", cls ? cls : "", cls ? "\"" : "");
    rg__html_text(out, s);
    fputs("</td>", out);
}

/* One row of cells, each with its class (cls NULL: none). */
static void rg__html_tr(FILE *out, const char *const *cells, const char *const *cls, int n)
{
    fputs("<tr>", out);
    for (int i = 0; i < n; i++)
        rg__html_cell(out, cells[i], cls ? cls[i] : NULL);
    fputs("</tr>\n", out);
}

/* A section of the page: its heading, then the paragraph empty when it has
 * no rows, else the table's head (cols, NULL-ended). 1 when rows follow: the
 * caller writes them (rg__html_tr), then "</table>". */
static int rg__html_table(FILE *out, const char *heading, size_t nrows, const char *empty,
                          const char *const *cols)
{
    fprintf(out, "<h2>%s</h2>\n", heading);
    if (!nrows) {
        fprintf(out, "<p>%s</p>\n", empty);
        return 0;
    }
    fputs("<table>\n<tr>", out);
    for (; *cols; cols++)
        fprintf(out, "<th>%s</th>", *cols);
    fputs("</tr>\n", out);
    return 1;
}

/* One self-contained page: inline CSS, no script, no external resource. */
static void rg__html(const rg_compliance *r, FILE *out)
{
    char a[RG_TIME_BUFSZ], b[RG_TIME_BUFSZ], s1[64];
    rg_compliance_counts k = rg_compliance_count(r);
    fputs("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
          "<title>Esketamine compliance: ", out);
    rg__html_text(out, r->clinic);
    fputs("</title>\n<style>\n"
          "body{font:14px/1.4 system-ui,sans-serif;margin:2em;color:#222}\n"
          "h1{font-size:1.4em}h2{font-size:1.1em;margin-top:2em}\n"
          "table{border-collapse:collapse}th,td{padding:.25em .8em;border-bottom:1px solid #ddd;"
          "text-align:left}\n"
          "td.no{color:#b00020;font-weight:600}td.yes{color:#1b5e20}\n"
          "p.note{color:#555}\n"
          "</style>\n</head>\n<body>\n<h1>Esketamine (Spravato REMS) compliance: ", out);
    rg__html_text(out, r->clinic);
    fputs("</h1>\n<p>", out);
    fprintf(out, "%s to %s", rg__when(r, r->from, a), rg__when(r, r->to, b));
    fputs("</p>\n<table>\n", out);
    snprintf(s1, sizeof s1, "%zu", k.sessions);
    rg__html_row(out, "sessions (esketamine doses)", s1);
    rg__html_row(out, "with a pre-dose blood pressure", rg__share(s1, 64, k.pre, k.sessions));
    rg__html_row(out, "with a 40-minute blood pressure", rg__share(s1, 64, k.post40, k.sessions));
    rg__html_row(out, "with both", rg__share(s1, 64, k.both, k.sessions));
    char label[64];
    snprintf(label, sizeof label, "monitored at least %g hours",
             (double)r->p.monitoring_min / RG_MS_HOUR);
    rg__html_row(out, label, rg__share(s1, 64, k.monitored, k.sessions));
    snprintf(label, sizeof label, "monitoring forms submitted within %g days",
             (double)r->p.form_within / RG_MS_DAY);
    rg__html_row(out, label, rg__share(s1, 64, k.in_time, k.sessions - k.not_due));
    snprintf(s1, sizeof s1, "%zu late, %zu missing, %zu not yet due", k.late, k.missing, k.not_due);
    rg__html_row(out, "forms not in time", s1);
    rg__html_row(out, "PHQ-9 response at the end of induction (a fall of 50% or more)",
                 rg__share(s1, 64, k.response, k.assessed));
    rg__html_row(out, "PHQ-9 remission at the end of induction (below 5)",
                 rg__share(s1, 64, k.remission, k.assessed));
    fputs("</table>\n", out);

    static const char *const late_cols[] = {"patient", "dose", "given", "form", NULL};
    if (rg__html_table(out, "Monitoring forms late or missing", k.late + k.missing, "None.",
                       late_cols)) {
        for (size_t i = 0; i < r->ns; i++) {
            const rg_compliance_session *s = &r->s[i];
            if (s->form != RG_COMPLIANCE_FORM_LATE && s->form != RG_COMPLIANCE_FORM_MISSING)
                continue;
            char what[120];
            if (s->form == RG_COMPLIANCE_FORM_LATE)
                snprintf(what, sizeof what, "submitted %s (%s after)", rg__when(r, s->form_at, b),
                         rg__days(s1, 64, s->form_at - s->at));
            else
                snprintf(what, sizeof what, "missing (due %s)",
                         rg__when(r, s->at + r->p.form_within, b));
            const char *cells[] = {s->patient, s->id, rg__when(r, s->at, a), what};
            const char *cls[] = {NULL, NULL, NULL, "no"};
            rg__html_tr(out, cells, cls, 4);
        }
        fputs("</table>\n", out);
    }

    static const char *const course_cols[] = {"patient", "end of induction", "PHQ-9", NULL};
    if (rg__html_table(out, "End of induction", r->nc,
                       "No course ended its induction in this period.", course_cols)) {
        for (size_t i = 0; i < r->nc; i++) {
            char o[200];
            const char *cells[] = {r->c[i].patient, rg__when(r, r->c[i].end, a),
                                   rg__outcome(r, &r->c[i], o, sizeof o)};
            rg__html_tr(out, cells, NULL, 3);
        }
        fputs("</table>\n", out);
    }

    static const char *const session_cols[] = {"patient", "dose", "given", "pre-dose BP",
                                               "40-minute BP", "monitored", "form", NULL};
    if (rg__html_table(out, "Sessions", r->ns, "No esketamine dose in this period.",
                       session_cols)) {
        for (size_t i = 0; i < r->ns; i++) {
            const rg_compliance_session *s = &r->s[i];
            char mon[32];
            rg__monitoring(s, mon, sizeof mon);
            int form_ok = s->form == RG_COMPLIANCE_FORM_IN_TIME ||
                          s->form == RG_COMPLIANCE_FORM_NOT_DUE;
            const char *cells[] = {s->patient, s->id, rg__when(r, s->at, a),
                                   s->pre ? "yes" : "no", s->post40 ? "yes" : "no", mon,
                                   rg__form_name(s->form)};
            const char *cls[] = {NULL, NULL, NULL, s->pre ? "yes" : "no",
                                 s->post40 ? "yes" : "no",
                                 rg_compliance_monitored(r, s) ? "yes" : "no",
                                 form_ok ? "yes" : "no"};
            rg__html_tr(out, cells, cls, 7);
        }
        fputs("</table>\n", out);
    }
    fputs("<p class=\"note\">Counted from the recorded events by the clinic's esketamine "
          "parameters. Illustrative, not medical or regulatory advice.</p>\n</body>\n</html>\n",
          out);
}

int rg_compliance_format_ok(const char *format)
{
    return !strcmp(format, "text") || !strcmp(format, "csv") || !strcmp(format, "html");
}

const char *rg_compliance_media_type(const char *format)
{
    return !strcmp(format, "csv")    ? "text/csv; charset=utf-8"
           : !strcmp(format, "html") ? "text/html; charset=utf-8"
                                     : "text/plain; charset=utf-8";
}

int rg_compliance_write(const rg_compliance *r, const char *format, FILE *out)
{
    if (!strcmp(format, "text"))
        rg__text(r, out);
    else if (!strcmp(format, "csv"))
        rg__csv_all(r, out);
    else if (!strcmp(format, "html"))
        rg__html(r, out);
    else
        return RG_EINVAL;
    return ferror(out) ? RG_EIO : RG_OK;
}
