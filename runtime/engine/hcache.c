/*
 * hcache.c - the compiled-history cache (see hcache.h): a hash table of
 * entries on one least-recently-used list, bounded by bytes. Plain C memory;
 * nothing here can fail half-way: an entry is built whole before it replaces
 * the old one.
 */
#include "engine/hcache.h"
#include "core/digest.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>

typedef struct rg__entry {
    struct rg__entry *next_in_bucket, *older, *newer;
    uint64_t hash;
    char *key; /* clinic "\x1f" patient */
    rg_hevent *ev;
    int n;
    char *text;
    size_t len, bytes;
    int64_t max_seq;
    char *kept; /* the engine's kept answers (rg_hcache_keep), or NULL */
    size_t kept_len;
} rg__entry;

struct rg_hcache {
    rg__entry **buckets;
    size_t nbuckets;
    rg__entry *oldest, *newest;
    rg_hcache_stats st;
};

static uint64_t rg__hash(const char *clinic, const char *patient)
{
    uint64_t h = rg_fnv1a(RG_FNV1A_SEED, clinic, strlen(clinic));
    h = rg_fnv1a(h, "\x1f", 1);
    return rg_fnv1a(h, patient, strlen(patient));
}

static int rg__same(const rg__entry *en, const char *clinic, const char *patient)
{
    size_t cl = strlen(clinic);
    return !strncmp(en->key, clinic, cl) && en->key[cl] == '\x1f' &&
           !strcmp(en->key + cl + 1, patient);
}

rg_hcache *rg_hcache_new(size_t cap_bytes)
{
    rg_hcache *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    c->nbuckets = 1024;
    if (!(c->buckets = calloc(c->nbuckets, sizeof *c->buckets))) {
        free(c);
        return NULL;
    }
    c->st.cap = cap_bytes;
    return c;
}

static void rg__unlink(rg_hcache *c, rg__entry *en)
{
    rg__entry **p = &c->buckets[en->hash % c->nbuckets];
    while (*p != en)
        p = &(*p)->next_in_bucket;
    *p = en->next_in_bucket;
    if (en->older)
        en->older->newer = en->newer;
    else
        c->oldest = en->newer;
    if (en->newer)
        en->newer->older = en->older;
    else
        c->newest = en->older;
    /* byte accounting: the total is the sum of the entries' bytes, so it
     * never goes below one of them, and an empty cache holds none */
    assert(c->st.entries > 0 && c->st.bytes >= en->bytes);
    c->st.bytes -= en->bytes;
    c->st.entries--;
    assert(c->st.entries > 0 || (c->st.bytes == 0 && !c->oldest && !c->newest));
}

static void rg__entry_free(rg__entry *en)
{
    free(en->key);
    free(en->ev);
    free(en->text);
    free(en->kept);
    free(en);
}

static void rg__link_newest(rg_hcache *c, rg__entry *en)
{
    en->older = c->newest;
    en->newer = NULL;
    if (c->newest)
        c->newest->newer = en;
    else
        c->oldest = en;
    c->newest = en;
}

/* Whether st.bytes and st.entries are the sum of the kept entries' bytes
 * and their number, walking the list (asserted where the whole list is
 * walked anyway). */
static inline int rg__accounted(const rg_hcache *c)
{
    size_t sum = 0;
    int64_t n = 0;
    for (const rg__entry *en = c->oldest; en; en = en->newer, n++)
        sum += en->bytes;
    return sum == c->st.bytes && n == c->st.entries;
}

void rg_hcache_clear(rg_hcache *c)
{
    assert(!c || rg__accounted(c));
    while (c && c->oldest) {
        rg__entry *en = c->oldest;
        rg__unlink(c, en);
        rg__entry_free(en);
        c->st.evictions++;
    }
}

void rg_hcache_free(rg_hcache *c)
{
    if (!c)
        return;
    int64_t evictions = c->st.evictions;
    rg_hcache_clear(c);
    c->st.evictions = evictions;
    free(c->buckets);
    free(c);
}

static rg__entry *rg__find(rg_hcache *c, uint64_t h, const char *clinic, const char *patient)
{
    for (rg__entry *en = c->buckets[h % c->nbuckets]; en; en = en->next_in_bucket)
        if (en->hash == h && rg__same(en, clinic, patient))
            return en;
    return NULL;
}

int rg_hcache_get(rg_hcache *c, const char *clinic, const char *patient, const rg_hevent **ev,
                  int *n, const char **text, size_t *len, int64_t *max_seq)
{
    uint64_t h = rg__hash(clinic, patient);
    rg__entry *en = rg__find(c, h, clinic, patient);
    if (!en) {
        c->st.misses++;
        return 0;
    }
    c->st.hits++;
    if (c->newest != en) { /* most recently used */
        if (en->older)
            en->older->newer = en->newer;
        else
            c->oldest = en->newer;
        en->newer->older = en->older;
        rg__link_newest(c, en);
    }
    *ev = en->ev;
    *n = en->n;
    *text = en->text;
    *len = en->len;
    *max_seq = en->max_seq;
    return 1;
}

int64_t rg_hcache_peek(const rg_hcache *c, const char *clinic, const char *patient)
{
    rg__entry *en = rg__find((rg_hcache *)c, rg__hash(clinic, patient), clinic, patient);
    return en ? en->max_seq : -1;
}

/* Doubles the table when it holds more entries than buckets. */
static void rg__grow(rg_hcache *c)
{
    if ((size_t)c->st.entries < c->nbuckets)
        return;
    size_t nb = c->nbuckets * 2;
    rg__entry **b = calloc(nb, sizeof *b);
    if (!b)
        return; /* longer chains, still correct */
    for (size_t i = 0; i < c->nbuckets; i++)
        for (rg__entry *en = c->buckets[i], *next; en; en = next) {
            next = en->next_in_bucket;
            en->next_in_bucket = b[en->hash % nb];
            b[en->hash % nb] = en;
        }
    free(c->buckets);
    c->buckets = b;
    c->nbuckets = nb;
}

void rg_hcache_put(rg_hcache *c, const char *clinic, const char *patient, const rg_hevent *ev,
                   int n, const char *text, size_t len, int64_t max_seq)
{
    uint64_t h = rg__hash(clinic, patient);
    rg__entry *old = rg__find(c, h, clinic, patient);
    char *kept = NULL; /* the kept answers stay with the patient's new history */
    size_t kept_len = 0;
    if (old) {
        rg__unlink(c, old);
        kept = old->kept, kept_len = old->kept_len;
        old->kept = NULL;
        rg__entry_free(old);
    }
    size_t klen = strlen(clinic) + strlen(patient) + 2;
    size_t bytes = sizeof(rg__entry) + klen + (size_t)n * sizeof *ev + len;
    if (kept && bytes + kept_len > c->st.cap) {
        free(kept);
        kept = NULL, kept_len = 0;
    }
    bytes += kept_len;
    if (bytes > c->st.cap) {
        free(kept);
        return; /* larger than the whole cache: not kept */
    }
    rg__entry *en = calloc(1, sizeof *en);
    if (en) {
        en->key = malloc(klen);
        en->ev = malloc((size_t)(n ? n : 1) * sizeof *ev);
        en->text = malloc(len ? len : 1);
    }
    if (!en || !en->key || !en->ev || !en->text) {
        if (en)
            rg__entry_free(en);
        free(kept);
        return;
    }
    en->kept = kept;
    en->kept_len = kept_len;
    memcpy(en->key, clinic, strlen(clinic));
    en->key[strlen(clinic)] = '\x1f';
    strcpy(en->key + strlen(clinic) + 1, patient);
    if (n)
        memcpy(en->ev, ev, (size_t)n * sizeof *ev);
    if (len)
        memcpy(en->text, text, len);
    en->n = n;
    en->len = len;
    en->bytes = bytes;
    en->hash = h;
    en->max_seq = max_seq;
    while (c->oldest && c->st.bytes + bytes > c->st.cap) {
        rg__entry *victim = c->oldest;
        rg__unlink(c, victim);
        rg__entry_free(victim);
        c->st.evictions++;
    }
    rg__grow(c);
    en->next_in_bucket = c->buckets[h % c->nbuckets];
    c->buckets[h % c->nbuckets] = en;
    rg__link_newest(c, en);
    c->st.bytes += bytes;
    c->st.entries++;
    assert(c->st.bytes <= c->st.cap && c->st.bytes >= bytes); /* evicted to fit, no wrap */
}

int rg_hcache_kept(const rg_hcache *c, const char *clinic, const char *patient,
                   const void **blob, size_t *len)
{
    rg__entry *en = rg__find((rg_hcache *)c, rg__hash(clinic, patient), clinic, patient);
    if (!en || !en->kept)
        return 0;
    *blob = en->kept;
    *len = en->kept_len;
    return 1;
}

void rg_hcache_keep(rg_hcache *c, const char *clinic, const char *patient, const void *blob,
                    size_t len)
{
    rg__entry *en = rg__find(c, rg__hash(clinic, patient), clinic, patient);
    if (!en)
        return; /* kept only beside a cached history */
    char *copy = len ? malloc(len) : NULL;
    if (len && copy)
        memcpy(copy, blob, len);
    /* the entry's bytes change: out of the total, then back in */
    assert(c->st.bytes >= en->bytes && en->bytes >= en->kept_len);
    c->st.bytes -= en->bytes;
    en->bytes -= en->kept_len;
    free(en->kept);
    en->kept = NULL;
    en->kept_len = 0;
    if (copy && en->bytes + len <= c->st.cap) {
        en->kept = copy;
        en->kept_len = len;
        en->bytes += len;
    } else {
        free(copy); /* out of memory, or larger than the cache: none kept */
    }
    c->st.bytes += en->bytes;
    while (c->oldest && c->oldest != en && c->st.bytes > c->st.cap) {
        rg__entry *victim = c->oldest;
        rg__unlink(c, victim);
        rg__entry_free(victim);
        c->st.evictions++;
    }
    if (c->st.bytes > c->st.cap) { /* (en alone, over the cap: cannot be, see above) */
        c->st.bytes -= en->kept_len;
        en->bytes -= en->kept_len;
        free(en->kept);
        en->kept = NULL;
        en->kept_len = 0;
    }
    assert(c->st.bytes <= c->st.cap);
}

void rg_hcache_kept_count(rg_hcache *c, int hit)
{
    if (hit)
        c->st.kept_hits++;
    else
        c->st.kept_misses++;
}

void rg_hcache_stats_get(const rg_hcache *c, rg_hcache_stats *s)
{
    if (c)
        *s = c->st;
    else
        memset(s, 0, sizeof *s);
}
