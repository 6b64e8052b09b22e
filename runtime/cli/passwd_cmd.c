/*
 * passwd_cmd.c - `regimen passwd` (passwd_cmd.h). Reads one password, the
 * first line of standard input (its line end removed; nothing is echoed
 * because nothing is prompted: pipe it in or type it on a terminal), and
 * prints its argon2id hash with libsodium's crypto_pwhash_str.
 *
 * Parameters: libsodium's INTERACTIVE limits (2 passes over 64 MiB). The
 * service verifies sign-ins on libuv's thread pool (4 threads), so at most
 * 4 verifications run at once: 256 MiB at the worst moment, about a tenth
 * of a second each. MODERATE (256 MiB, about 0.7 s) would let four sign-ins
 * take 1 GiB of a small server and make every nurse wait; the failed
 * sign-in slowing (auth.c) is what stops guessing online. The parameters are
 * inside each hash, so stronger ones can be chosen later without a change
 * to the service: it verifies whatever the hash says.
 */
#include "cli/cli.h"

#include <sodium.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define RG__MIN_PASSWORD 8

int rg_cmd_passwd(int argc, char **argv)
{
    if (argc > 1) {
        fprintf(stderr, "usage: regimen passwd < password\n"
                        "  (reads the password on standard input, prints its argon2id hash)\n");
        return !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") ? 0 : 2;
    }
    if (sodium_init() < 0) {
        fprintf(stderr, "regimen passwd: libsodium could not start\n");
        return 1;
    }
    char pw[1026];
    if (!fgets(pw, sizeof pw, stdin)) {
        fprintf(stderr, "regimen passwd: no password on standard input\n");
        return 2;
    }
    size_t n = strcspn(pw, "\r\n");
    if (pw[n] == '\0' && n == sizeof pw - 1) {
        sodium_memzero(pw, sizeof pw);
        fprintf(stderr, "regimen passwd: the password is longer than 1024 bytes\n");
        return 2;
    }
    pw[n] = '\0';
    if (n < RG__MIN_PASSWORD) {
        sodium_memzero(pw, sizeof pw);
        fprintf(stderr, "regimen passwd: the password must have at least %d characters\n",
                RG__MIN_PASSWORD);
        return 2;
    }
    char hash[crypto_pwhash_STRBYTES];
    int rc = crypto_pwhash_str(hash, pw, n, crypto_pwhash_OPSLIMIT_INTERACTIVE,
                               crypto_pwhash_MEMLIMIT_INTERACTIVE);
    sodium_memzero(pw, sizeof pw);
    if (rc) {
        fprintf(stderr, "regimen passwd: out of memory for the hash (64 MiB)\n");
        return 1;
    }
    puts(hash);
    return 0;
}
