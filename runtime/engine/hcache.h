/*
 * hcache.h - a bounded cache of patients' compiled histories.
 *
 * The service evaluates a patient each time one of its events arrives; with
 * the cache it reads from the store only the events newer than the ones it
 * already holds. It is an optimisation only: the store stays the truth. An
 * entry holds the events exactly as the engine collected them (positions into
 * its own text, not pointers), with the newest sequence number they cover.
 * The owner drops everything when the store rolled back a transaction (what
 * was cached in it may never have been stored), and the least recently used
 * entries go when the cache is over its byte cap.
 *
 * Beside a history an entry may keep the engine's last answers for the
 * patient (its rules' results and what they read, an opaque blob the engine
 * writes and reads: engine.c, "kept answers"), so that the next evaluation
 * runs only the rules whose inputs changed. They count in the entry's bytes,
 * go with it (eviction, clear) and survive a new history for the patient.
 *
 * Ownership: the engine creates, owns and frees its cache. Not thread-safe.
 */
#ifndef RG_HCACHE_H
#define RG_HCACHE_H

#include "bindings/bindings.h"

#include <stddef.h>
#include <stdint.h>

typedef struct rg_hcache rg_hcache;

typedef struct rg_hcache_stats {
    int64_t hits, misses, evictions, entries;
    int64_t kept_hits, kept_misses; /* evaluations that started from kept answers, or could not */
    size_t bytes, cap;
} rg_hcache_stats;

/* NULL when out of memory. */
rg_hcache *rg_hcache_new(size_t cap_bytes);
void rg_hcache_free(rg_hcache *c);
/* Forgets every entry (counted as evictions). */
void rg_hcache_clear(rg_hcache *c);

/* The patient's cached events, or 0 when none: *ev (n of them) and *text
 * (len bytes) stay valid until the next call on the cache. */
int rg_hcache_get(rg_hcache *c, const char *clinic, const char *patient, const rg_hevent **ev,
                  int *n, const char **text, size_t *len, int64_t *max_seq);
/* The seq the patient's cached history holds up to, or -1 when none; no
 * lookup is counted and nothing moves. */
int64_t rg_hcache_peek(const rg_hcache *c, const char *clinic, const char *patient);
/* Keeps a copy (replacing the patient's entry); on failure (memory) the
 * patient simply has no entry. */
void rg_hcache_put(rg_hcache *c, const char *clinic, const char *patient, const rg_hevent *ev,
                   int n, const char *text, size_t len, int64_t max_seq);

/* The patient's kept answers (*blob, len bytes; valid until the next call
 * on the cache), or 0 when it has none; nothing moves or is counted. */
int rg_hcache_kept(const rg_hcache *c, const char *clinic, const char *patient,
                   const void **blob, size_t *len);
/* Keeps a copy of blob (len 0: none) as the patient's kept answers, in
 * place of what it had; only beside a cached history (else nothing is kept),
 * evicting the least recently used other entries to fit. */
void rg_hcache_keep(rg_hcache *c, const char *clinic, const char *patient, const void *blob,
                    size_t len);
/* Counts an evaluation that started from kept answers (hit) or could not. */
void rg_hcache_kept_count(rg_hcache *c, int hit);

void rg_hcache_stats_get(const rg_hcache *c, rg_hcache_stats *s);

#endif
