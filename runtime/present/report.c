/*
 * report.c - the HTML timeline report: one self-contained page (inline SVG
 * and CSS, no scripts, no fonts, no network) with a row per patient: events
 * as marks on a time axis, alerts as bars from open to resolve coloured by
 * severity, one section per clinic, a header with the horizon and counts.
 *
 * Streamed: patients are paged from the store twice (once for the axis and
 * the counts, once to draw), and each row is written as soon as it is laid
 * out. Only the alert bars are held in memory, sorted by (clinic, patient,
 * opened) so that the walk over patients meets them in order: O(n log n).
 * Every string that came from users goes through rg__put, which escapes it.
 */
#include "present/report.h"
#include "core/grow.h"

#include <stdlib.h>
#include <string.h>

#define RG__PAGE 256  /* patients per store page */
#define RG__W 1100.0  /* width of a row's SVG */
#define RG__X0 6.0    /* the axis runs from X0 ... */
#define RG__X1 1060.0 /* ... to X1, the horizon */
#define RG__CW 6.4    /* estimated width of a character of a bar label (11px) */
#define RG__EW 5.9    /* the same for event labels (10px) */
#define RG__NTYPES 10 /* event types with a colour of their own */
#define RG__LROWS 2   /* rows of event labels */
#define RG__TOP 40.0  /* y of the first alert lane */
#define RG__LANE 18.0
#define RG__DOT " \xc2\xb7 " /* " · " */

typedef struct rg__bar {
    char *mem; /* one block holding the strings below */
    const char *clinic, *patient, *key, *rule, *severity, *message, *protocol, *version;
    rg_time from, to; /* to: RG_TIME_NONE while open at the horizon */
    int64_t seq;
    int open, lane;
} rg__bar;

typedef struct rg__ctx {
    rg_store *st;
    FILE *out;
    rg_time until, t0, t1, tmin, tmax; /* asked horizon, axis, data range */
    rg__bar *bars;
    size_t nbars, cap, next; /* next: the first bar no row has taken yet */
    double *lane_end, label_end[RG__LROWS];
    size_t nlanes;
    long patients, clinics, events, later, open, sev[4];
    char *types[RG__NTYPES], *clinic; /* clinic: the one being walked */
    int ntypes, other;                /* other: more types than colours */
    const rg_zone *zone;              /* the times people read are in it */
} rg__ctx;

/* The wall-clock reading of t in the report's zone, as if it were UTC. */
static rg_time rg__local(const rg__ctx *c, rg_time t)
{
    return t + (int64_t)rg_zone_offset(c->zone, t) * 1000;
}

static const char *const rg__sev_name[4] = {"info", "warning", "critical", "other"};

static int rg__sev(const char *s)
{
    int i = 0;
    while (i < 3 && strcmp(s, rg__sev_name[i]))
        i++;
    return i;
}

/* Writes pre as it is, then s escaped for text and attribute values: markup
 * characters as entities, control characters (not allowed in XML) as '?'. */
static void rg__put(FILE *o, const char *pre, const char *s)
{
    fputs(pre, o);
    for (; s && *s; s++) {
        unsigned char ch = (unsigned char)*s;
        switch (ch) {
        case '&': fputs("&amp;", o); break;
        case '<': fputs("&lt;", o); break;
        case '>': fputs("&gt;", o); break;
        case '"': fputs("&quot;", o); break;
        case '\'': fputs("&#39;", o); break;
        default: putc(ch < 0x20 && ch != '\n' && ch != '\t' ? '?' : ch, o);
        }
    }
}

static double rg__x(const rg__ctx *c, rg_time t)
{
    t = t < c->t0 ? c->t0 : t > c->t1 ? c->t1 : t;
    return RG__X0 + (RG__X1 - RG__X0) * (double)(t - c->t0) / (double)(c->t1 - c->t0);
}

static void rg__seen(rg__ctx *c, rg_time t)
{
    if (c->tmin == RG_TIME_NONE || t < c->tmin)
        c->tmin = t;
    if (c->tmax == RG_TIME_NONE || t > c->tmax)
        c->tmax = t;
}

/* --- alert bars: copied from the transitions, paired, sorted --------------- */

/* Adds a bar with copies of its strings (clinic, patient, key, rule,
 * severity, message, protocol, version). */
static int rg__bar_add(rg__ctx *c, const char *const src[8], rg_time from, rg_time to,
                       int64_t seq, int open)
{
    rg__bar *nb = rg_grow(c->bars, &c->cap, c->nbars, sizeof *nb, 256);
    if (!nb)
        return RG_ENOMEM;
    c->bars = nb;
    rg__bar *b = &c->bars[c->nbars];
    const char **dst[8] = {&b->clinic, &b->patient, &b->key, &b->rule,
                           &b->severity, &b->message, &b->protocol, &b->version};
    size_t len[8], total = 0, off = 0;
    for (int i = 0; i < 8; i++)
        total += len[i] = strlen(src[i] ? src[i] : "") + 1;
    if (!(b->mem = malloc(total)))
        return RG_ENOMEM;
    for (int i = 0; i < 8; off += len[i++])
        *dst[i] = memcpy(b->mem + off, src[i] ? src[i] : "", len[i]);
    b->from = from;
    b->to = to;
    b->seq = seq;
    b->open = open;
    c->nbars++;
    return 0;
}

static int rg__collect(void *ud, const rg_transition *t)
{
    rg__ctx *c = ud;
    if ((c->until != RG_TIME_NONE && t->at > c->until) || t->open == RG_TRANSITION_RERAISED)
        return 0;
    const char *const src[8] = {t->clinic, t->patient, t->key, t->rule,
                                t->severity, t->message, t->protocol, t->version};
    return rg__bar_add(c, src, t->at, RG_TIME_NONE, t->seq, t->open);
}

static int rg__cmp_who(const rg__bar *a, const char *clinic, const char *patient)
{
    int r = strcmp(a->clinic, clinic);
    return r ? r : strcmp(a->patient, patient);
}

static int rg__cmp_row(const void *pa, const void *pb)
{
    const rg__bar *a = pa, *b = pb;
    int r = rg__cmp_who(a, b->clinic, b->patient);
    if (r || a->from != b->from)
        return r ? r : a->from < b->from ? -1 : 1;
    return (a->seq > b->seq) - (a->seq < b->seq);
}

static int rg__cmp_key(const void *pa, const void *pb)
{
    const rg__bar *a = pa, *b = pb;
    int r = rg__cmp_who(a, b->clinic, b->patient);
    return r ? r : (r = strcmp(a->key, b->key)) ? r : rg__cmp_row(a, b);
}

/* Sorted by key and time, an alert's resolve follows its open: make one bar
 * of the two, then order the bars the way rows are drawn. */
static void rg__pair(rg__ctx *c)
{
    size_t k = 0;
    if (!c->nbars)
        return; /* qsort wants a non-null array */
    qsort(c->bars, c->nbars, sizeof *c->bars, rg__cmp_key);
    for (size_t i = 0; i < c->nbars; i++) {
        rg__bar b = c->bars[i], *n = i + 1 < c->nbars ? &c->bars[i + 1] : NULL;
        if (!b.open) {
            free(b.mem);
            continue;
        }
        if (n && !n->open && !rg__cmp_who(n, b.clinic, b.patient) && !strcmp(n->key, b.key))
            rg__seen(c, b.to = n->from);
        c->open += b.to == RG_TIME_NONE;
        c->sev[rg__sev(b.severity)]++;
        rg__seen(c, b.from);
        c->bars[k++] = b;
    }
    c->nbars = k;
    qsort(c->bars, c->nbars, sizeof *c->bars, rg__cmp_row);
}

/* --- patients, page by page -------------------------------------------------- */

typedef struct rg__page {
    char *s[2 * RG__PAGE];
    int n, nomem;
} rg__page;

static int rg__page_add(void *ud, const char *clinic, const char *patient)
{
    rg__page *p = ud;
    p->s[2 * p->n] = strdup(clinic);
    p->s[2 * p->n + 1] = strdup(patient);
    p->nomem |= !p->s[2 * p->n] || !p->s[2 * p->n + 1];
    p->n++;
    return 0;
}

static void rg__page_free(rg__page *p)
{
    for (int i = 0; i < 2 * p->n; i++)
        free(p->s[i]);
}

/* Calls fn for every patient, in (clinic, patient) order. */
static int rg__each_patient(rg__ctx *c, int (*fn)(rg__ctx *, const char *, const char *))
{
    rg__page p = {0}, q;
    int n, rc;
    do {
        memset(&q, 0, sizeof q);
        n = rg_store_patients_page(c->st, p.n ? p.s[2 * p.n - 2] : "",
                                   p.n ? p.s[2 * p.n - 1] : "", RG_TIME_NONE, RG__PAGE,
                                   rg__page_add, &q);
        rg__page_free(&p);
        p = q;
        rc = n < 0 ? RG_EDB : p.nomem ? RG_ENOMEM : RG_OK;
        for (int i = 0; !rc && i < p.n; i++)
            rc = fn(c, p.s[2 * i], p.s[2 * i + 1]);
    } while (!rc && n == RG__PAGE);
    rg__page_free(&p);
    return rc;
}

/* 1 when clinic starts a new section (then it becomes c->clinic), -1 on NOMEM. */
static int rg__new_clinic(rg__ctx *c, const char *clinic)
{
    if (c->clinic && !strcmp(c->clinic, clinic))
        return 0;
    free(c->clinic);
    return (c->clinic = strdup(clinic)) ? 1 : -1;
}

/* --- first pass: counts, time range, event types ------------------------------ */

static int rg__scan_event(void *ud, const rg_stored_event *e)
{
    rg__ctx *c = ud;
    int i = 0;
    if (c->until != RG_TIME_NONE && e->at > c->until)
        return c->later++, 0;
    c->events++;
    rg__seen(c, e->at);
    while (i < c->ntypes && strcmp(c->types[i], e->type))
        i++;
    c->other |= i == RG__NTYPES;
    if (i == c->ntypes && i < RG__NTYPES && !(c->types[c->ntypes++] = strdup(e->type)))
        return RG_ENOMEM;
    return 0;
}

static int rg__scan(rg__ctx *c, const char *clinic, const char *patient)
{
    int rc = rg__new_clinic(c, clinic);
    if (rc < 0)
        return RG_ENOMEM;
    c->clinics += rc;
    c->patients++;
    /* the current versions, as the drawing pass reads them (a report shows
     * neither an amended reading's old value nor a retracted one) */
    rc = rg_store_each_event_data(c->st, clinic, patient, rg__scan_event, c);
    return rc == RG_ENOMEM || !rc ? rc : RG_EDB;
}

/* --- second pass: drawing -------------------------------------------------------- */

/* Grid lines (and with labels, dates) at whole days or hours from the axis
 * start, at least 90px apart. */
static void rg__ticks(rg__ctx *c, int labels, double height)
{
    static const rg_time steps[] = {RG_MS_HOUR, 3 * RG_MS_HOUR, 6 * RG_MS_HOUR, 12 * RG_MS_HOUR,
                                    RG_MS_DAY, 2 * RG_MS_DAY, 7 * RG_MS_DAY, 14 * RG_MS_DAY,
                                    28 * RG_MS_DAY, 91 * RG_MS_DAY, 364 * RG_MS_DAY};
    double px = (RG__X1 - RG__X0) / (double)(c->t1 - c->t0);
    rg_time step = steps[0];
    for (size_t i = 1; i < RG_COUNTOF(steps) && (double)step * px < 90; i++)
        step = steps[i];
    while ((double)step * px < 90)
        step *= 2;
    for (rg_time t = c->t0; t <= c->t1; t += step) {
        char buf[RG_TIME_BUFSZ], full[RG_TIME_BUFSZ];
        double x = rg__x(c, t);
        int end = x + 80 > RG__W; /* a label at the right edge ends at its tick */
        fprintf(c->out, "<line class=\"grid\" x1=\"%.1f\" x2=\"%.1f\" y1=\"%d\" y2=\"%.0f\"/>", x,
                x, labels ? 18 : 0, height);
        if (!labels)
            continue;
        if (step < RG_MS_DAY && t % RG_MS_DAY)
            snprintf(buf, sizeof buf, "%.5s", rg_time_format(rg__local(c, t), full) + 11);
        else
            rg_time_day(rg__local(c, t), buf);
        fprintf(c->out, "<text class=\"tick\" x=\"%.1f\" y=\"14\"%s>%s</text>", end ? x - 3 : x + 3,
                end ? " text-anchor=\"end\"" : "", buf);
    }
}

/* One event: a mark coloured by type, the type as a label where a label row
 * has room, and a tooltip with everything. */
static int rg__draw_event(void *ud, const rg_stored_event *e)
{
    rg__ctx *c = ud;
    char at[RG_TIME_BUFSZ];
    int type = 0;
    if (c->until != RG_TIME_NONE && e->at > c->until)
        return 0;
    while (type < c->ntypes && strcmp(c->types[type], e->type))
        type++;
    double x = rg__x(c, e->at), w = RG__EW * (double)strlen(e->type);
    double lx = x - 3 + w > RG__W ? RG__W - w : x - 3;
    fprintf(c->out, "<g class=\"ev t%d\">", type < c->ntypes ? type : RG__NTYPES);
    rg__put(c->out, "<title>", e->type);
    rg__put(c->out, RG__DOT, e->id);
    rg__put(c->out, "\n", rg_zone_display(c->zone, e->at, at));
    rg__put(c->out, e->data ? "\n" : "", e->data);
    fprintf(c->out, "</title><line x1=\"%.1f\" x2=\"%.1f\" y1=\"25\" y2=\"35\"/>"
                    "<circle cx=\"%.1f\" cy=\"31\" r=\"4\"/>", x, x, x);
    for (int r = 0; r < RG__LROWS; r++) {
        if (c->label_end[r] > lx)
            continue;
        fprintf(c->out, "<text x=\"%.1f\" y=\"%d\">", lx, 10 + 11 * r);
        rg__put(c->out, "", e->type);
        fputs("</text>", c->out);
        c->label_end[r] = lx + w + 6;
        break;
    }
    fputs("</g>\n", c->out);
    return 0;
}

/* Where a bar's label starts: inside the bar if it fits, else after the bar,
 * else (at the right edge) before it. */
static double rg__label_x(const rg__bar *b, double x1, double x2, double *w)
{
    *w = RG__CW * (double)(strlen(b->rule) + (b->to == RG_TIME_NONE ? 7 : 0));
    if (x1 + 4 + *w <= x2 || x2 + 4 + *w <= RG__W)
        return x1 + 4 + *w <= x2 ? x1 + 4 : x2 + 4;
    return x1 - 4 - *w > 0 ? x1 - 4 - *w : 0;
}

static void rg__draw_bar(rg__ctx *c, const rg__bar *b)
{
    char from[RG_TIME_BUFSZ], to[RG_TIME_BUFSZ];
    int open = b->to == RG_TIME_NONE;
    double x1 = rg__x(c, b->from), x2 = open ? RG__X1 : rg__x(c, b->to), w;
    x2 = x2 - x1 < 3 ? x1 + 3 : x2;
    double y = RG__TOP + RG__LANE * b->lane, lx = rg__label_x(b, x1, x2, &w);
    rg__put(c->out, "<g class=\"alert\"><title>", b->message);
    rg__put(c->out, "\nrule ", b->rule);
    rg__put(c->out, RG__DOT, b->severity);
    rg__put(c->out, "\nprotocol ", b->protocol);
    rg__put(c->out, " version ", b->version);
    fprintf(c->out, "\nopened %s\n%s %s", rg_zone_display(c->zone, b->from, from),
            open ? "still open at" : "resolved",
            rg_zone_display(c->zone, open ? c->t1 : b->to, to));
    fprintf(c->out, "</title><rect class=\"bar sev-%s%s\" x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" "
                    "height=\"14\" rx=\"3\"/>",
            rg__sev_name[rg__sev(b->severity)], open ? " open" : "", x1, y, x2 - x1);
    fprintf(c->out, "<text x=\"%.1f\" y=\"%.1f\">", lx, y + 11);
    rg__put(c->out, "", b->rule);
    fprintf(c->out, "%s</text></g>\n", open ? RG__DOT "open" : "");
}

static void rg__section(rg__ctx *c, const char *clinic, int first)
{
    rg__put(c->out, first ? "<section><h2>Clinic " : "</section>\n<section><h2>Clinic ", clinic);
    fprintf(c->out, "</h2>\n<div class=\"row axis\"><div class=\"pid\">patient</div>"
                    "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%.0f\" height=\"24\">",
            RG__W);
    rg__ticks(c, 1, 24);
    fputs("</svg></div>\n", c->out);
}

/* Puts each bar of [first, last) (with its label) in the first lane that is
 * free there; the height of the row. */
static int rg__lanes(rg__ctx *c, size_t first, size_t last, double *height)
{
    size_t nlanes = 0;
    if (last - first > c->nlanes) {
        double *le = realloc(c->lane_end, (last - first) * sizeof *le);
        if (!le)
            return RG_ENOMEM;
        c->lane_end = le;
        c->nlanes = last - first;
    }
    for (size_t i = first; i < last; i++) {
        rg__bar *b = &c->bars[i];
        double w, x1 = rg__x(c, b->from), x2 = b->to == RG_TIME_NONE ? RG__X1 : rg__x(c, b->to);
        double lx = rg__label_x(b, x1, x2 - x1 < 3 ? x1 + 3 : x2, &w);
        size_t l = 0;
        while (l < nlanes && c->lane_end[l] > (lx < x1 ? lx : x1))
            l++;
        nlanes += l == nlanes;
        c->lane_end[l] = (x2 > lx + w ? x2 : lx + w) + 8;
        b->lane = (int)l;
    }
    *height = RG__TOP + RG__LANE * (double)nlanes + 2;
    return RG_OK;
}

/* The inside of a patient's row SVG: grid, horizon, the bars of [first,
 * last), the events' marks. */
static int rg__row_body(rg__ctx *c, const char *clinic, const char *patient, size_t first,
                        size_t last, double height)
{
    rg__ticks(c, 0, height);
    fprintf(c->out, "<line class=\"horizon\" x1=\"%.1f\" x2=\"%.1f\" y1=\"0\" y2=\"%.0f\"/>\n",
            RG__X1, RG__X1, height);
    for (size_t i = first; i < last; i++)
        rg__draw_bar(c, &c->bars[i]);
    for (int r = 0; r < RG__LROWS; r++)
        c->label_end[r] = -1e9;
    return rg_store_each_event_data(c->st, clinic, patient, rg__draw_event, c) ? RG_EDB : RG_OK;
}

static int rg__row(rg__ctx *c, const char *clinic, const char *patient)
{
    size_t first = c->next, last, nopen = 0;
    int first_section = !c->clinic, rc = rg__new_clinic(c, clinic);
    double height;
    if (rc < 0)
        return RG_ENOMEM;
    if (rc) {
        rg__section(c, clinic, first_section);
        /* the clinic's own alerts (patient "": a rule failing to evaluate, a
         * refused reload) sort first: a row of their own */
        while (c->next < c->nbars && rg__cmp_who(&c->bars[c->next], clinic, "") < 0)
            c->next++;
        if (*patient && c->next < c->nbars && !rg__cmp_who(&c->bars[c->next], clinic, "") &&
            (rc = rg__row(c, clinic, "")) != RG_OK)
            return rc;
        first = c->next;
    }
    while (first < c->nbars && rg__cmp_who(&c->bars[first], clinic, patient) < 0)
        first++; /* transitions of a patient the store does not list: not drawn */
    for (last = first; last < c->nbars && !rg__cmp_who(&c->bars[last], clinic, patient);)
        nopen += c->bars[last++].to == RG_TIME_NONE;
    c->next = last;
    if ((rc = rg__lanes(c, first, last, &height)))
        return rc;
    rg__put(c->out, *patient ? "<div class=\"row\"><div class=\"pid\"><b>"
                             : "<div class=\"row clinic\"><div class=\"pid\"><b>",
            *patient ? patient : "(clinic)");
    fprintf(c->out, "</b><small>%zu alert%s", last - first, last - first == 1 ? "" : "s");
    if (nopen)
        fprintf(c->out, ", %zu open", nopen);
    fprintf(c->out, "</small></div><svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%.0f\" "
                    "height=\"%.0f\">", RG__W, height);
    rc = rg__row_body(c, clinic, patient, first, last, height);
    fputs("</svg></div>\n", c->out);
    return rc;
}

/* The report page's own style; rg__svg_css is the drawing's, shared with
 * whoever shows rg_report_patient_svg (the worklist). */
static const char rg__css[] =
    "body{font:14px system-ui,sans-serif;color:#1f2937;margin:16px 24px;background:#fff}"
    "h1{font-size:22px;margin:0 0 4px}h2{font-size:17px;margin:22px 0 4px}.meta{margin:2px 0}"
    ".legend{margin:8px 0;display:flex;flex-wrap:wrap;gap:4px 14px}.empty{color:#6b7280}"
    ".sw{display:inline-block;width:22px;height:11px;border:1.5px solid #374151;"
    "border-radius:3px;vertical-align:-1px;margin-right:4px}.sw.open{border-style:dashed}"
    ".dot{display:inline-block;width:9px;height:9px;border-radius:50%;margin-right:4px}"
    ".row{display:flex;align-items:flex-start;border-bottom:1px solid #e5e7eb}"
    ".pid{width:150px;flex:none;padding:4px 6px;overflow-wrap:anywhere}"
    ".pid small{display:block;color:#6b7280;font-size:12px}svg{display:block;flex:none}"
    ".axis{position:sticky;top:0;background:#fff;z-index:1;border-bottom:1px solid #9ca3af}"
    ".axis .pid{color:#6b7280;font-size:12px}";

static const char rg__svg_css[] =
    "svg text{font:10px system-ui,sans-serif;fill:#374151}"
    ".alert text{font-size:11px;fill:#111827}text.tick{font-size:11px}.ev line{stroke:#9ca3af}"
    ".grid{stroke:#e5e7eb}.horizon{stroke:#6b7280;stroke-dasharray:3 3}"
    ".bar{stroke-width:1.5}.bar.open{stroke-dasharray:5 2}"
    ".sev-info{fill:#dbeafe;stroke:#2563eb;background:#dbeafe;border-color:#2563eb}"
    ".sev-warning{fill:#fde68a;stroke:#d97706;background:#fde68a;border-color:#d97706}"
    ".sev-critical{fill:#fca5a5;stroke:#b91c1c;background:#fca5a5;border-color:#b91c1c}"
    ".sev-other{fill:#e5e7eb;stroke:#4b5563;background:#e5e7eb;border-color:#4b5563}";

/* Event types' colours, in order of first appearance; the last for the rest. */
static const char *const rg__palette[RG__NTYPES + 1] = {
    "#1f77b4", "#ff7f0e", "#2ca02c", "#9467bd", "#e377c2", "#17becf",
    "#8c564b", "#bcbd22", "#393b79", "#d62728", "#9ca3af"};

void rg_report_svg_css(FILE *out)
{
    fputs(rg__svg_css, out);
    for (int i = 0; i <= RG__NTYPES; i++)
        fprintf(out, ".t%d{fill:%s;background:%s}", i, rg__palette[i], rg__palette[i]);
}

static void rg__header(rg__ctx *c, const char *title)
{
    char a[RG_TIME_BUFSZ], b[RG_TIME_BUFSZ], u[RG_TIME_BUFSZ];
    FILE *o = c->out;
    rg__put(o, "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n"
               "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; "
               "style-src 'unsafe-inline'\">\n<title>", title);
    fprintf(o, "</title>\n<style>%s", rg__css);
    rg_report_svg_css(o);
    fputs("</style></head><body>\n", o);
    rg__put(o, "<header><h1>", title);
    fprintf(o, "</h1>\n<p class=\"meta\">Horizon: %s to %s (%s). All times %s%s.</p>\n",
            rg_time_day(rg__local(c, c->t0), a), rg_time_day(rg__local(c, c->t1), b),
            rg_zone_display(c->zone, c->t1, u), c->zone == rg_zone_utc() ? "UTC" : "local, ",
            c->zone == rg_zone_utc() ? "" : rg_zone_name(c->zone));
    fprintf(o, "<p class=\"meta\">%ld patient%s in %ld clinic%s" RG__DOT "%ld event%s", c->patients,
            c->patients == 1 ? "" : "s", c->clinics, c->clinics == 1 ? "" : "s", c->events,
            c->events == 1 ? "" : "s");
    if (c->later)
        fprintf(o, " (%ld later ones not shown)", c->later);
    fprintf(o, RG__DOT "%zu alert%s, %ld still open</p>\n<div class=\"legend\">Alerts:", c->nbars,
            c->nbars == 1 ? "" : "s", c->open);
    for (int i = 2; i >= 0; i--) /* (the engine allows no other severities) */
        fprintf(o, "<span><span class=\"sw sev-%s\"></span>%s (%ld)</span>", rg__sev_name[i],
                rg__sev_name[i], c->sev[i]);
    fputs("<span><span class=\"sw open\"></span>dashed: still open at the horizon</span></div>\n"
          "<div class=\"legend\">Events:", o);
    for (int i = 0; i < c->ntypes + c->other; i++) {
        fprintf(o, "<span><span class=\"dot t%d\"></span>", i < c->ntypes ? i : RG__NTYPES);
        rg__put(o, "", i < c->ntypes ? c->types[i] : "other");
        fputs("</span>", o);
    }
    fputs("</div>\n<p class=\"meta\"><small>Hover over a mark or a bar for its details."
          "</small></p></header>\n", o);
}

/* The axis: from the local midnight before the first data to until, or to
 * the newest data. */
static void rg__axis(rg__ctx *c)
{
    c->t1 = c->until != RG_TIME_NONE ? c->until : c->tmax != RG_TIME_NONE ? c->tmax : 0;
    c->t0 = c->tmin != RG_TIME_NONE && c->tmin < c->t1 ? c->tmin : c->t1 - RG_MS_DAY;
    c->t0 -= ((rg__local(c, c->t0) % RG_MS_DAY) + RG_MS_DAY) % RG_MS_DAY; /* local midnight before */
}

static void rg__ctx_free(rg__ctx *c)
{
    for (size_t i = 0; i < c->nbars; i++)
        free(c->bars[i].mem);
    for (int i = 0; i < c->ntypes; i++)
        free(c->types[i]);
    free(c->bars);
    free(c->lane_end);
    free(c->clinic);
}

static int rg__view_bar(void *ud, const rg_alert_view *a)
{
    rg__ctx *c = ud;
    if (c->until != RG_TIME_NONE && a->opened_at > c->until)
        return 0;
    const char *const src[8] = {"", a->patient, a->key, a->rule,
                                a->severity, a->message, a->protocol, a->version};
    int late = a->resolved_at == RG_TIME_NONE || (c->until != RG_TIME_NONE && a->resolved_at > c->until);
    rg_time to = late ? RG_TIME_NONE : a->resolved_at;
    rg__seen(c, a->opened_at);
    if (to != RG_TIME_NONE)
        rg__seen(c, to);
    return rg__bar_add(c, src, a->opened_at, to, a->id, 1);
}

int rg_report_patient_svg(rg_store *st, const char *clinic, const char *patient, rg_time until,
                          const rg_zone *zone, FILE *out)
{
    rg__ctx c = {.st = st, .out = out, .until = until, .tmin = RG_TIME_NONE,
                 .tmax = RG_TIME_NONE, .zone = zone ? zone : rg_zone_utc()};
    double height = 0;
    int rc = rg_store_each_alert(st, clinic, patient, NULL, NULL, 100000, rg__view_bar, &c);
    rc = rc == RG_ENOMEM || !rc ? rc : RG_EDB;
    if (!rc)
        rc = rg__scan(&c, clinic, patient);
    if (!rc && c.nbars)
        qsort(c.bars, c.nbars, sizeof *c.bars, rg__cmp_row);
    if (!rc) {
        rg__axis(&c);
        rc = rg__lanes(&c, 0, c.nbars, &height);
    }
    if (!rc) {
        fprintf(out, "<svg xmlns=\"http://www.w3.org/2000/svg\" class=\"timeline\" width=\"%.0f\" "
                     "height=\"%.0f\" viewBox=\"0 0 %.0f %.0f\">", RG__W, height + 24, RG__W,
                height + 24);
        rg__ticks(&c, 1, 24); /* the axis with its dates above the row */
        fputs("<g transform=\"translate(0,24)\">", out);
        rc = rg__row_body(&c, clinic, patient, 0, c.nbars, height);
        fputs("</g></svg>\n", out);
    }
    rg__ctx_free(&c);
    if (fflush(out) || ferror(out))
        rc = rc ? rc : RG_EIO;
    return rc;
}

int rg_report_html(rg_store *st, FILE *out, const char *title, rg_time until,
                   const rg_zone *zone)
{
    rg__ctx c = {.st = st, .out = out, .until = until, .tmin = RG_TIME_NONE,
                 .tmax = RG_TIME_NONE, .zone = zone ? zone : rg_zone_utc()};
    int rc = rg_store_each_transition(st, 0, 1, rg__collect, &c);
    rc = rc == RG_ENOMEM || !rc ? rc : RG_EDB;
    if (!rc) {
        rg__pair(&c);
        rc = rg__each_patient(&c, rg__scan);
    }
    if (!rc) {
        rg__axis(&c);
        rg__header(&c, title && *title ? title : "regimen timeline");
        free(c.clinic);
        c.clinic = NULL;
        rc = rg__each_patient(&c, rg__row);
        fputs(c.clinic ? "</section>\n" : "<p class=\"empty\">No patients in the store.</p>\n",
              out);
        fputs("</body></html>\n", out);
    }
    rg__ctx_free(&c);
    if (fflush(out) || ferror(out))
        rc = rc ? rc : RG_EIO;
    return rc;
}
