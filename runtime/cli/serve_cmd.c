/*
 * serve_cmd.c - `regimen serve --config FILE [--db PATH]`: the service's
 * command line and its usage (the service itself is service/serve.c).
 */
#include "cli/cli.h"

#include "service/serve.h"

#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>

static const char rg__serve_usage[] =
    "usage: regimen serve --config FILE [--db PATH]\n"
    "\n"
    "Runs the alerting service: an HTTP/1.1 JSON API on one event loop that stores\n"
    "events durably, evaluates the patient they concern at once, and wakes exactly\n"
    "when a protocol says something falls due (no polling).\n"
    "\n"
    "The configuration is JSON (relative paths are relative to the file):\n"
    "  { \"listen\": \"127.0.0.1:7878\",\n"
    "    \"clinics\": { \"north\": { \"protocols\": \"clinics/north\",\n"
    "        \"users\": [ { \"name\": \"ann\", \"role\": \"nurse\",\n"
    "                     \"password\": \"$argon2id$... (regimen passwd)\" } ],\n"
    "        \"api_keys\": [ { \"name\": \"ehr-feed\", \"role\": \"integration\",\n"
    "                        \"sha256\": \"<printf %s KEY | sha256sum>\" } ] } },\n"
    "    \"api_keys\": [ { \"name\": \"prometheus\", \"role\": \"metrics\", \"sha256\": \"...\" } ],\n"
    "    \"sessions\": { \"idle_timeout_s\": 1800, \"max_age_s\": 43200 },\n"
    "    \"limits\": { \"max_memory_mb\": 64, \"max_instructions\": 10000000,\n"
    "                \"deadline_ms\": 2000, \"max_body_bytes\": 1048576,\n"
    "                \"max_header_bytes\": 16384, \"max_connections\": 256,\n"
    "                \"idle_timeout_ms\": 30000, \"request_timeout_ms\": 10000,\n"
    "                \"max_events_per_request\": 1000, \"history_cache_mb\": 64,\n"
    "                \"future_skew_minutes\": 15,\n"
    "                \"max_unauthenticated_connections\": 128,\n"
    "                \"max_connections_per_address\": 32,\n"
    "                \"first_request_timeout_ms\": 5000, \"max_unsent_bytes\": 1048576,\n"
    "                \"stream_max_unsent_bytes\": 1048576, \"stream_stall_ms\": 10000,\n"
    "                \"max_streams_per_clinic\": 64, \"max_streams_per_token\": 32,\n"
    "                \"max_stream_tickets_per_clinic\": 64,\n"
    "                \"clinic_cpu_ms\": 0, \"clinic_cpu_window_s\": 60,\n"
    "                \"quarantine_hits\": 3, \"quarantine_window_s\": 60,\n"
    "                \"quarantine_backoff_s\": 60,\n"
    "                \"evaluation_threads\": 4 },\n"
    "    \"audit\": { \"retention_days\": 2190 } }\n"
    "A token belongs to one clinic: one listed for two clinics is refused.\n"
    "\"listen\" may instead be { \"address\": \"0.0.0.0:7443\", \"certificate\": PEM,\n"
    "\"key\": PEM } for TLS (read again on SIGHUP); plain HTTP listens on loopback\n"
    "only, unless { \"address\": ..., \"behind_tls_proxy\": true }.\n"
    "A clinic's \"webhook\" is a URL, or { \"url\": URL, \"secret\": \"whsec_...\" } (or\n"
    "\"secrets\": [new, old] during a rotation): deliveries are then signed as the\n"
    "Standard Webhooks specification says (docs/service.md, \"Signed webhooks\").\n"
    "Protocols run on evaluation_threads threads (default: the processors\n"
    "available), one clinic on one thread at a time; the loop only does I/O.\n"
    "\n"
    "Roles: nurse (read, ack, snooze), prescriber, admin (reload, the clinic's\n"
    "metrics), auditor, integration (events and FHIR only), metrics (/metrics of\n"
    "every clinic). Endpoints (all but /healthz and POST /v1/session need an API\n"
    "key, Authorization: Bearer <key>, or a signed-in session cookie):\n"
    "  POST /v1/session                {\"clinic\", \"user\", \"password\"}: sign in\n"
    "                                  (cookie; send csrf in X-CSRF-Token); DELETE: out\n"
    "  POST /v1/events                 one event or an array; per-event outcome\n"
    "  GET  /v1/alerts?patient=&state=&limit=&cursor= the clinic's alerts, paged\n"
    "  GET  /v1/alerts/{key}           an alert, its transitions and actions\n"
    "  POST /v1/alerts/{key}/ack       {\"note\": ...} (recorded as the user or key)\n"
    "  POST /v1/alerts/{key}/snooze    {\"until\": RFC 3339, \"reason\": ...}\n"
    "  GET  /v1/transitions?after=SEQ  the clinic's transitions, gap-free sequence\n"
    "  GET  /v1/transitions/stream     the same, live, as Server-Sent Events\n"
    "  GET  /v1/reports/compliance?from=&to=&format=text|csv|html\n"
    "                                  the esketamine (Spravato REMS) compliance report\n"
    "  POST /v1/admin/reload           (admin) as SIGHUP\n"
    "  GET  /v1/audit?since=&patient=&user=  (auditor) the clinic's audit trail (regimen audit)\n"
    "  GET  /healthz, GET /metrics     liveness; Prometheus text (metrics key or admin)\n"
    "\n"
    "Signals: SIGHUP reloads the configuration (users, keys, roles: a removed\n"
    "one stops at once) and the protocols (a changed protocol file too); a\n"
    "version that fails to load is refused and the old one keeps running. SIGTERM/SIGINT\n"
    "stop accepting, finish in-flight work and exit 0. SIGUSR1 (sent by regimen\n"
    "ingest after it stores events in the same database) makes the service read\n"
    "the store again and evaluate them at once.\n"
    "\n"
    "One service per database: a second serve on the file (or a sweep, or a\n"
    "simulate --db beside the service) is refused, naming the process holding it.\n";

int rg_cmd_serve(int argc, char **argv)
{
    rg_cli_opts o = {.db = "regimen.db"};
    char shipped_buf[PATH_MAX];
    for (int i = 1; i < argc; i++)
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            fputs(rg__serve_usage, stdout);
            return 0;
        }
    int rc = rg_cli_parse_serve(argc, argv, &o);
    if (rc)
        return rc;
    if (!o.config || optind != argc) {
        fputs(rg__serve_usage, stderr);
        return 2;
    }
    return rg_serve_main(o.db, o.config, rg_cli_shipped(shipped_buf, sizeof shipped_buf));
}

