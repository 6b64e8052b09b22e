/*
 * digest.h - SHA-256 for what the record must not lose or confuse: the
 * checksum of a stored event's body and an alert's key (digest.c); and the
 * one FNV-1a, for what need only be quick and stable: hash tables, the
 * fingerprint of a clinic's files, a rule's source hash and the alert keys
 * made before schema version 8.
 */
#ifndef RG_DIGEST_H
#define RG_DIGEST_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define RG_SHA256_HEX 64 /* hex digits of a whole digest */
/* Hex digits of an alert key: 128 bits. A key need only be unique within
 * its clinic (the clinic is hashed in, and every read by key is scoped by
 * clinic). 128 bits put a key equal to a given one (a second preimage) at
 * 2^128 work, two of a clinic's own keys made to collide on purpose at
 * 2^64, and a chance collision below 10^-18 for a billion keys, in a URL
 * segment half the length of a whole digest. */
#define RG_KEY_HEX 32

/* FNV-1a (64-bit): start from RG_FNV1A_SEED, then feed n bytes at p into h
 * as often as needed; the value is part of what is stored (legacy alert
 * keys, rule source hashes), so it must never change. Inline: it runs on
 * every cache and key lookup. */
#define RG_FNV1A_SEED UINT64_C(14695981039346656037)
static inline uint64_t rg_fnv1a(uint64_t h, const void *p, size_t n)
{
    const unsigned char *b = p;
    for (size_t i = 0; i < n; i++)
        h = (h ^ b[i]) * UINT64_C(1099511628211);
    return h;
}

/* The SHA-256 of n bytes at p, as 64 lowercase hex digits and a NUL. */
void rg_sha256_hex(const void *p, size_t n, char out[RG_SHA256_HEX + 1]);
/* The same as 32 bytes (an event's stored digest since schema v12). */
void rg_sha256(const void *p, size_t n, unsigned char out[32]);
/* Bytes of it an event row keeps since schema v18: SHA-256 truncated to
 * 128 bits (a second body with the same digest still costs 2^128 tries), 16
 * bytes a row instead of 32; verify compares that many (rg_store_row_intact). */
#define RG_EVENT_DIGEST 16

/* SHA-256 over an unambiguous encoding of n strings (each as its length,
 * 8 bytes big-endian, then its bytes), the first hexlen hex digits of it
 * (at most 64) and a NUL in out: no two lists of strings encode alike. */
void rg_sha256_parts(const char *const *parts, int n, char *out, size_t hexlen);

/* Writes s with every control character escaped (C0 and DEL as \r, \n, \t
 * or \xNN, C1 as \u0080..\u009f), so text from a protocol or an event
 * cannot move a terminal's cursor, colour it or forge a line. Other bytes
 * (the rest of UTF-8 included) are written as they are. */
void rg_fput_printable(FILE *f, const char *s);
/* The same into buf (truncated to fit, always NUL-terminated); returns buf. */
char *rg_printable(const char *s, char *buf, size_t size);

#endif
