/*
 * report_cmd.h - `regimen report`, the esketamine compliance report on the
 * command line (report_cmd.c; the report itself is engine/compliance.c).
 */
#ifndef RG_REPORT_CMD_H
#define RG_REPORT_CMD_H

#include "engine/sandbox.h"

/* Runs `regimen report` with argv[0] = "report"; shipped is the shipped
 * protocol root (NULL when not found). Returns the exit code. */
int rg_report_cmd(int argc, char **argv, const char *shipped, const rg_limits *lim);

#endif
