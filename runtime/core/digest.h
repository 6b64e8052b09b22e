/*
 * digest.h - SHA-256 for what the record must not lose or confuse: the
 * checksum of a stored event's body and an alert's key (digest.c).
 */
#ifndef RG_DIGEST_H
#define RG_DIGEST_H

#include <stddef.h>
#include <stdio.h>

#define RG_SHA256_HEX 64 /* hex digits of a whole digest */
/* Hex digits of an alert key: 128 bits. A key need only be unique within
 * its clinic (the clinic is hashed in, and every read by key is scoped by
 * clinic). 128 bits put a key equal to a given one (a second preimage) at
 * 2^128 work, two of a clinic's own keys made to collide on purpose at
 * 2^64, and a chance collision below 10^-18 for a billion keys, in a URL
 * segment half the length of a whole digest. */
#define RG_KEY_HEX 32

/* The SHA-256 of n bytes at p, as 64 lowercase hex digits and a NUL. */
void rg_sha256_hex(const void *p, size_t n, char out[RG_SHA256_HEX + 1]);
/* The same as 32 bytes (an event's stored digest since schema v12). */
void rg_sha256(const void *p, size_t n, unsigned char out[32]);

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
