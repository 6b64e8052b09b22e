/*
 * diff.h - a comparison of two protocol versions' transitions (the engine's
 * rg_diff, engine/diff.h) written for people: `regimen diff`, `regimen
 * protocols propose|diff|shadow` and the protocols API's texts.
 */
#ifndef RG_PRESENT_DIFF_H
#define RG_PRESENT_DIFF_H

#include "engine/diff.h"
#include "engine/engine.h"
#include "engine/governance.h"
#include "store/store.h"

#include <stdio.h>

/* Prints d on out: a line a difference, the count, then the counts by rule.
 * old_name and new_name name the sides ("OLD", "NEW"); times are shown in
 * each clinic's zone as eng has it (NULL: UTC). */
void rg_diff_print(const rg_diff *d, const char *old_name, const char *new_name,
                   rg_engine *eng, FILE *out);

/* Compares the transitions of two stores (every clinic) and prints the
 * comparison as rg_diff_print, OLD and NEW named old_name and new_name.
 * Returns the number of differences (0: same) or a negative error (nothing
 * printed). */
long rg_diff_stores(rg_store *old, rg_store *new, const char *old_name, const char *new_name,
                    rg_engine *eng, FILE *out);

/* A writer for rg_gov_diff and rg_gov_propose that prints what they find
 * on out, as `regimen protocols` shows it. */
rg_gov_writer rg_gov_printer(FILE *out);

#endif
