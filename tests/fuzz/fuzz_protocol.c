/*
 * fuzz_protocol.c - libFuzzer harness for the protocol loader:
 * rg_clinic_load (runtime/engine/clinic.c) with the sandbox (runtime/engine/sandbox.c,
 * runtime/engine/pattern.c) and the regimen module (bindings/).
 *
 * The input is Lua text written into a private temporary directory: the
 * text before the first marker line "--@@ NAME" becomes fuzz.lua, and each
 * marker line starts another file NAME (clinic.lua, a second protocol, or a
 * module such as lib/m.lua; NAME is [a-z0-9_]+.lua, optionally under one
 * [a-z0-9_]+/ directory). The clinic is loaded with small limits (16 MiB,
 * 200000 instructions, 200 ms) and freed. Loading may fail; it must never
 * crash, abort or hang, and its message must not show a NULL string as
 * "(null)" (unless the input itself says "(null)").
 */
#include "engine/clinic.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define MARK "--@@ "
#define MAX_FILES 8

static char dir[256];
static char made[MAX_FILES][352]; /* files written for this input */
static char subdirs[MAX_FILES][352];
static int nmade, nsub;

static void remove_dir(void) { rmdir(dir); }

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc, (void)argv;
    const char *tmp = getenv("TMPDIR");
    if (!tmp || !*tmp || strlen(tmp) > 200)
        tmp = "/tmp";
    snprintf(dir, sizeof dir, "%s/rgfuzz-XXXXXX", tmp);
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        abort();
    }
    atexit(remove_dir);
    return 0;
}

/* 1 when name is a file this harness may write: x.lua or d/x.lua. */
static int name_ok(const char *name, size_t n)
{
    size_t seg = 0, slashes = 0;
    if (n < 5 || n > 60 || memcmp(name + n - 4, ".lua", 4) != 0)
        return 0;
    for (size_t i = 0; i < n - 4; i++) {
        char c = name[i];
        if (c == '/') {
            if (seg == 0 || ++slashes > 1)
                return 0;
            seg = 0;
        } else if ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_') {
            seg++;
        } else {
            return 0;
        }
    }
    return seg > 0;
}

static void write_file(const char *name, size_t n, const char *text, size_t len)
{
    char path[352];
    if (nmade == MAX_FILES || !name_ok(name, n))
        return;
    const char *slash = memchr(name, '/', n);
    if (slash) {
        snprintf(path, sizeof path, "%s/%.*s", dir, (int)(slash - name), name);
        if (mkdir(path, 0700) == 0)
            snprintf(subdirs[nsub++], sizeof subdirs[0], "%s", path);
    }
    snprintf(path, sizeof path, "%s/%.*s", dir, (int)n, name);
    FILE *f = fopen(path, "wbx"); /* a name given twice keeps its first text */
    if (!f)
        return;
    if (fwrite(text, 1, len, f) != len || fclose(f) != 0) {
        perror(path);
        abort();
    }
    snprintf(made[nmade++], sizeof made[0], "%s", path);
}

/* The next marker line at or after s, which starts a line; NULL if none. */
static const char *next_marker(const char *s, const char *end)
{
    if ((size_t)(end - s) >= strlen(MARK) && memcmp(s, MARK, strlen(MARK)) == 0)
        return s;
    const char *m = memmem(s, (size_t)(end - s), "\n" MARK, strlen(MARK) + 1);
    return m ? m + 1 : NULL;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *body = (const char *)data, *end = body + size, *name = "fuzz.lua";
    size_t nlen = strlen(name);
    nmade = nsub = 0;
    for (;;) { /* one file per section */
        const char *m = next_marker(body, end);
        if (m != (const char *)data)
            write_file(name, nlen, body, (size_t)((m ? m : end) - body));
        if (!m)
            break;
        name = m + strlen(MARK);
        const char *eol = memchr(name, '\n', (size_t)(end - name));
        nlen = (size_t)((eol ? eol : end) - name);
        body = eol ? eol + 1 : end;
    }

    rg_limits lim = {16u << 20, 200000, 200};
    rg_clinic *c = NULL;
    char err[1024];
    int rc = rg_clinic_load(&c, "fuzz", dir, NULL, NULL, &lim, err, sizeof err);
    if (rc == RG_OK) {
        if (!c || c->nprotos < 1)
            abort();
        rg_clinic_free(c);
    } else if (c || !memchr(err, '\0', sizeof err)) {
        abort();
    } else if (strstr(err, "(null)") && !memmem(data, size, "(null)", 6)) {
        fprintf(stderr, "fuzz_protocol: a NULL string in the message: %s\n", err);
        abort();
    }
    for (int i = 0; i < nmade; i++)
        unlink(made[i]);
    for (int i = nsub - 1; i >= 0; i--)
        rmdir(subdirs[i]);
    return 0;
}
