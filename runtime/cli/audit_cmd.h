/*
 * audit_cmd.h - `regimen audit verify|show`, the audit trail on the command
 * line (audit_cmd.c; the chain itself is store/audit.c).
 */
#ifndef RG_AUDIT_CMD_H
#define RG_AUDIT_CMD_H

/* Runs `regimen audit` with argv[0] = "audit". Returns the exit code. */
int rg_audit_cmd(int argc, char **argv);

#endif
