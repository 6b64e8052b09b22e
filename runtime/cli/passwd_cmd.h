/*
 * passwd_cmd.h - `regimen passwd`: a password read on standard input,
 * printed as the argon2id hash a user's "password" holds in the service's
 * configuration (passwd_cmd.c).
 */
#ifndef RG_PASSWD_CMD_H
#define RG_PASSWD_CMD_H

/* Runs `regimen passwd` with argv[0] = "passwd". Returns the exit code. */
int rg_passwd_cmd(int argc, char **argv);

#endif
