/*
 * protocols_cmd.h - `regimen protocols`: propose, approve, activate, roll
 * back, list and show a clinic's protocol versions (protocols_cmd.c,
 * docs/governance.md).
 */
#ifndef RG_PROTOCOLS_CMD_H
#define RG_PROTOCOLS_CMD_H

/* Runs `regimen protocols` with argv[0] = "protocols"; shipped is the
 * shipped protocol root (NULL when not found). Returns the exit code. */
int rg_protocols_cmd(int argc, char **argv, const char *shipped);

#endif
