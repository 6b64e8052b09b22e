/*
 * gen.c - deterministic cohort generator for benchmarks and tests.
 *
 *   gen PATIENTS [CLINICS] [SEED] [START] > cohort.jsonl
 *
 * Each patient gets a realistic course of about 30 events in the event format:
 * enrolment, preparation, six acute infusions (each with pre-infusion vitals
 * and, mostly, an integration session), PHQ-9/GAD-7 assessments, a follow-up
 * visit, maintenance boosters and now and then an adverse event or a plan
 * change. The same arguments always give the same bytes (a private xorshift
 * generator, no libc rand). Courses start spread over the 300 days from START
 * (a date, YYYY-MM-DD; default 2026-01-01) and last about 200 days: the
 * benchmark of the service moves START back so that every event is past.
 */
#define _GNU_SOURCE /* strptime, timegm */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static uint64_t rng_state;

static uint32_t rnd(uint32_t n)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return (uint32_t)(rng_state % n);
}

static void stamp(int64_t t, char *buf, size_t len)
{
    time_t s = (time_t)t;
    struct tm tm;
    gmtime_r(&s, &tm);
    strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

static long seq;

static void event(int clinic, long patient, const char *type, int64_t t, const char *data)
{
    char at[32];
    stamp(t, at, sizeof at);
    printf("{\"id\":\"e%ld\",\"clinic\":\"c%d\",\"patient\":\"p%ld\",\"type\":\"%s\",\"at\":\"%s\"%s%s}\n",
           ++seq, clinic, patient, type, at, data ? ",\"data\":" : "", data ? data : "");
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: gen PATIENTS [CLINICS] [SEED] [START]\n");
        return 2;
    }
    long patients = atol(argv[1]);
    int clinics = argc > 2 ? atoi(argv[2]) : 10;
    rng_state = argc > 3 ? strtoull(argv[3], NULL, 10) : 42;
    if (rng_state == 0)
        rng_state = 42;
    if (clinics < 1)
        clinics = 1;
    const int64_t day = 86400;
    int64_t base = 1767225600; /* 2026-01-01T00:00:00Z */
    if (argc > 4) {
        struct tm tm = {0};
        const char *end = strptime(argv[4], "%Y-%m-%d", &tm);
        if (!end || *end) {
            fprintf(stderr, "gen: START must be a date like 2026-01-01, not '%s'\n", argv[4]);
            return 2;
        }
        base = (int64_t)timegm(&tm);
    }
    char d[256];
    for (long p = 0; p < patients; p++) {
        int c = (int)(p % clinics);
        int64_t t = base + (int64_t)rnd(300) * day + 9 * 3600 + rnd(8) * 3600;
        int acute = rnd(10) == 0 ? 8 : 6;
        snprintf(d, sizeof d, "{\"program\":\"ketamine\"%s}", acute == 8 ? ",\"acute_infusions\":8" : "");
        event(c, p, "enrolled", t, d);
        event(c, p, "preparation_session", t + 3600, NULL);
        snprintf(d, sizeof d, "{\"instrument\":\"phq9\",\"score\":%u,\"item9\":%u}", 15 + rnd(10), rnd(8) == 0);
        event(c, p, "assessment", t + 2 * 3600, d);
        int64_t inf = t + day;
        double dose = 0.5;
        for (int i = 0; i < acute; i++) {
            snprintf(d, sizeof d, "{\"systolic\":%u,\"diastolic\":%u,\"heart_rate\":%u,\"phase\":\"pre\"}",
                     115 + rnd(50), 70 + rnd(32), 60 + rnd(30));
            event(c, p, "vitals", inf - 900, d);
            snprintf(d, sizeof d, "{\"dose_mg_per_kg\":%.2f,\"duration_min\":40}", dose);
            event(c, p, "infusion", inf, d);
            if (rnd(6) != 0)
                event(c, p, "integration_session", inf + (int64_t)(20 + rnd(60)) * 3600, "{\"modality\":\"talk\"}");
            if (rnd(25) == 0) {
                static const char *const kinds[] = {"nausea", "dizziness", "dissociation", "urinary"};
                static const char *const sev[] = {"mild", "moderate", "severe"};
                snprintf(d, sizeof d, "{\"kind\":\"%s\",\"severity\":\"%s\"}", kinds[rnd(4)], sev[rnd(3)]);
                event(c, p, "adverse_event", inf + 1800, d);
            }
            inf += (int64_t)(2 + rnd(3)) * day;
        }
        snprintf(d, sizeof d, "{\"instrument\":\"phq9\",\"score\":%u,\"item9\":0}", 4 + rnd(8));
        event(c, p, "assessment", inf, d);
        snprintf(d, sizeof d, "{\"instrument\":\"gad7\",\"score\":%u}", 3 + rnd(10));
        event(c, p, "assessment", inf + 3600, d);
        event(c, p, "followup_visit", inf + 7 * day, NULL);
        int64_t b = inf + (int64_t)(28 + rnd(20)) * day;
        for (int k = 0; k < 2; k++) {
            snprintf(d, sizeof d, "{\"systolic\":%u,\"diastolic\":%u,\"phase\":\"pre\"}", 115 + rnd(40), 70 + rnd(25));
            event(c, p, "vitals", b - 900, d);
            snprintf(d, sizeof d, "{\"dose_mg_per_kg\":%.2f}", dose + 0.05 * rnd(3));
            event(c, p, "infusion", b, d);
            snprintf(d, sizeof d, "{\"instrument\":\"phq9\",\"score\":%u,\"item9\":0}", 5 + rnd(12));
            event(c, p, "assessment", b + 14 * day, d);
            b += (int64_t)(28 + rnd(28)) * day;
        }
        if (rnd(5) == 0)
            event(c, p, "plan_adjusted", b, "{\"booster_interval_days\":42}");
    }
    return 0;
}
