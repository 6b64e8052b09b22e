/*
 * serve.h - `regimen serve`: the alerting service on one libuv loop.
 *
 * Events come in over HTTP (runtime/service/http.c), are stored durably, and the
 * patient they concern is advanced through the same rg_engine_advance as
 * `simulate`, to the wall clock. One timer is armed at the earliest wake-up
 * over all patients (and snooze expiry); nothing polls. Transitions are read
 * back from the store in each clinic's gap-free sequence and pushed to
 * Server-Sent-Event subscribers.
 */
#ifndef RG_SERVE_H
#define RG_SERVE_H

#include "engine/sandbox.h"

/* Runs the service until SIGTERM/SIGINT; returns the process exit code. */
int rg_serve_main(const char *db_path, const char *config_path, const char *shipped);

#endif
