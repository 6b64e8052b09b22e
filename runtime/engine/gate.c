/*
 * gate.c - the check a clinic's directory passes before it goes live (see
 * gate.h). The service calls it on a reload (SIGHUP, a file saved) and
 * keeps the running version when it fails. It is `regimen check`
 * (rg_check_clinic: loading, every rule on generated histories, the
 * directory's scenario tests through scenario.c's runner), whose report it
 * keeps as the reason. Depends on check.c and scenario.c.
 */
#include "engine/gate.h"

#include "engine/check.h"
#include "core/digest.h"
#include "engine/scenario.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int rg_clinic_gate(const char *clinic, const char *dir, const char *shipped, const rg_limits *lim,
                   char *err, size_t errlen)
{
    (void)clinic; /* the check loads dir under a throw-away name; errors name files */
    char *report = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&report, &len);
    if (!out)
        return rg_fail(err, errlen, RG_ENOMEM, "out of memory");
    rg_check_opts o = {.shipped = shipped, .limits = *lim, .tests = rg_scenario_check_tests,
                       .out = out};
    rg_check_result r = {0};
    err[0] = '\0';
    int rc = rg_check_clinic(dir, &o, &r, err, errlen);
    fclose(out);
    if (rc != RG_OK && rc != RG_ENOMEM) {
        /* the summary in err, then what failed (errors, scenario failures)
         * as check printed it */
        rg_buf why = {0};
        int keep = 0;
        rg_buf_printf(&why, "%s", err);
        for (char *line = report, *next; line && *line; line = next) {
            next = strchr(line, '\n');
            if (next)
                *next++ = '\0';
            /* check indents what it reports by two spaces; a failure's
             * details by more */
            const char *l = !strncmp(line, "  ", 2) ? line + 2 : line;
            if (!strncmp(l, "FAIL", 4) || !strncmp(l, "error:", 6))
                keep = 1;
            else if (l[0] != ' ')
                keep = 0;
            if (keep && why.len < 1500)
                rg_buf_printf(&why, "\n%s", l);
        }
        if (why.p)
            snprintf(err, errlen, "%s", why.p);
        rg_buf_free(&why);
    }
    free(report);
    return rc;
}

static int rg__cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Every .lua file under path, in name order (depth 8 at most: a link loop
 * ends there). */
static uint64_t rg__walk(uint64_t h, const char *path, int depth)
{
    DIR *d = depth < 8 ? opendir(path) : NULL;
    if (!d)
        return h;
    char **names = NULL;
    int n = 0;
    struct dirent *de;
    while ((de = readdir(d))) {
        if (de->d_name[0] == '.')
            continue;
        char **grown = realloc(names, (size_t)(n + 1) * sizeof *names);
        if (!grown)
            break;
        names = grown;
        if (!(names[n] = strdup(de->d_name)))
            break;
        n++;
    }
    closedir(d);
    if (n)
        qsort(names, (size_t)n, sizeof *names, rg__cmp);
    for (int i = 0; i < n; i++) {
        char full[4096];
        struct stat sb;
        snprintf(full, sizeof full, "%s/%s", path, names[i]);
        size_t len = strlen(names[i]);
        if (stat(full, &sb) == 0 && S_ISDIR(sb.st_mode)) {
            h = rg__walk(h, full, depth + 1);
        } else if (len > 4 && !strcmp(names[i] + len - 4, ".lua")) {
            /* only regular files are read (a FIFO would block the loop for
             * ever); anything else counts by its name and kind, and the
             * loader refuses it by name */
            size_t flen = 0;
            char *text = stat(full, &sb) == 0 && S_ISREG(sb.st_mode) ? rg_slurp(full, &flen) : NULL;
            h = rg_fnv1a(h, full, strlen(full) + 1);
            h = text ? rg_fnv1a(h, text, flen) : rg_fnv1a(h, "?", 1);
            free(text);
        }
        free(names[i]);
    }
    free(names);
    return h;
}

uint64_t rg_clinic_fingerprint(const char *dir, const char *shipped)
{
    uint64_t h = RG_FNV1A_SEED;
    h = rg__walk(h, dir, 0);
    return shipped ? rg__walk(rg_fnv1a(h, "|", 1), shipped, 0) : h;
}
