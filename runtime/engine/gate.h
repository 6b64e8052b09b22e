/*
 * gate.h - what a clinic's protocol directory must pass before it goes live
 * in a running service (docs/service.md, "Reload is a deployment").
 *
 * One function decides it, rg_clinic_gate, so that what `regimen check`
 * proves and what a reload demands stay one thing: rg_check_clinic
 * (check.h): the directory loads (every protocol, clinic.lua with its
 * parameters' kinds), every rule evaluates without error on the generated
 * histories, and its own scenario tests (*_test.lua, run by the same code as
 * `regimen test`, scenario.c) pass.
 */
#ifndef RG_GATE_H
#define RG_GATE_H

#include "engine/sandbox.h"

#include <stdint.h>

/* RG_OK when dir may go live as clinic's protocols; otherwise an error code
 * and, in err, why: the load error with its file and line, or the scenario
 * tests that failed with what differed. */
int rg_clinic_gate(const char *clinic, const char *dir, const char *shipped, const rg_limits *lim,
                   char *err, size_t errlen);

/* A fingerprint of what the gate reads: every .lua file under dir and under
 * shipped (may be NULL), by path and content. Equal fingerprints: the gate
 * would answer the same, so a reload that changed nothing need not run it. */
uint64_t rg_clinic_fingerprint(const char *dir, const char *shipped);

#endif
