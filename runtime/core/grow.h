/*
 * grow.h - one way to grow an array by doubling, for the many "if full,
 * realloc to twice the size" blocks (issue 25: one rg_grow). Header-only:
 * a static inline function with no state, usable from every layer.
 */
#ifndef RG_GROW_H
#define RG_GROW_H

#include <stdlib.h>

/* Makes room for one more item in v, an array of *cap items of size bytes
 * each, n of them used: when n == *cap, doubles *cap (to first when it is
 * 0) and reallocates. Returns the array (moved or not), or NULL when out of
 * memory, leaving v and *cap as they were. */
static inline void *rg_grow(void *v, size_t *cap, size_t n, size_t size, size_t first)
{
    if (n < *cap)
        return v;
    size_t c = *cap ? 2 * *cap : first;
    void *g = realloc(v, c * size);
    if (g)
        *cap = c;
    return g;
}

#endif
