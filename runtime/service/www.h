/*
 * www.h - the worklist's files (runtime/service/www/), embedded into the
 * binary: the Makefile generates $(B)/gen/www.c from them with xxd -i, so
 * `regimen serve` needs no files beside it to serve its page.
 */
#ifndef RG_WWW_H
#define RG_WWW_H

#include <stddef.h>

typedef struct rg_www_file {
    const char *name; /* "/app.js" */
    const unsigned char *data;
    size_t len;
} rg_www_file;

/* Every file, ended by one whose name is NULL. */
extern const rg_www_file rg_www_files[];

#endif
