/*
 * test_fhir.c - FHIR R4 import (runtime/core/fhir.c, `regimen import-fhir`,
 * POST /v1/fhir): the default mapping on the official HL7 R4 examples and a
 * Synthea bulk export (tests/fhir/README.md names their sources), re-import
 * as a no-op, unmapped resources listed, malformed ones rejected with their
 * location, corrections emitted only for corrections, and a clinic's Lua
 * override (clinic.lua fhir = {...}) in the CLI and the service.
 * Run from the repository root (make test does).
 */
#define RG_TEST_SERVE
#include "helpers.h"

#include "core/fhir.h"

#include <jansson.h>

/* ---- the mapping, in process ------------------------------------------------------- */

static rg_fhir_opts north = {.clinic = "north"};

static void read_file(rg_fhir_import *im, const char *path)
{
    char err[512];
    char *text = rg_test_read(path);
    int rc = rg_fhir_read(im, text, strlen(text), &north, err, sizeof err);
    free(text);
    cr_assert_eq(rc, RG_OK, "%s: %s", path, err);
}

static void read_text(rg_fhir_import *im, const char *text)
{
    char err[512];
    int rc = rg_fhir_read(im, text, strlen(text), &north, err, sizeof err);
    cr_assert_eq(rc, RG_OK, "%s", err);
}

static json_t *only_event(rg_fhir_import *im, size_t entry)
{
    cr_assert_gt(im->n, entry);
    cr_assert_eq(im->v[entry].kind, RG_FHIR_EVENTS, "entry %zu: %s (%s)", entry,
                 rg_fhir_kind_name(im->v[entry].kind), im->v[entry].reason);
    cr_assert_eq(json_array_size(im->v[entry].events), 1);
    return json_array_get(im->v[entry].events, 0);
}

static const char *str(json_t *o, const char *k) { return json_string_value(json_object_get(o, k)); }
static double num(json_t *o, const char *k) { return json_number_value(json_object_get(o, k)); }

Test(fhir, hl7_blood_pressure_example_is_vitals)
{
    rg_fhir_import im;
    read_file(&im, "tests/fhir/observation-example-bloodpressure.json");
    json_t *ev = only_event(&im, 0);
    cr_assert_str_eq(str(ev, "id"), "fhir:Observation/blood-pressure");
    cr_assert_str_eq(str(ev, "clinic"), "north");
    cr_assert_str_eq(str(ev, "patient"), "example");
    cr_assert_str_eq(str(ev, "type"), "vitals");
    cr_assert_str_eq(str(ev, "at"), "2012-09-17T00:00:00Z", "a bare date is its midnight UTC");
    json_t *d = json_object_get(ev, "data");
    cr_assert_eq(num(d, "systolic"), 107);
    cr_assert_eq(num(d, "diastolic"), 60);
    /* an ordinary resource carries no correction fields: valid events today */
    cr_assert_null(json_object_get(ev, "version"));
    cr_assert_null(json_object_get(ev, "status"));
    cr_assert_null(json_object_get(ev, "corrected_at"));
    rg_fhir_free(&im);
}

Test(fhir, hl7_examples_bundle_maps_each_entry)
{
    rg_fhir_import im;
    read_file(&im, "tests/fhir/bundle-hl7-examples.json");
    cr_assert_eq(im.n, 9);
    cr_assert(im.bundle);
    cr_assert_eq(im.v[0].kind, RG_FHIR_CONTEXT, "the body weight: %s", im.v[0].reason);
    cr_assert_eq(im.v[2].kind, RG_FHIR_UNMAPPED, "a cancelled blood pressure");
    cr_assert_eq(im.v[3].kind, RG_FHIR_UNMAPPED, "a lone heart rate: %s", im.v[3].reason);
    json_t *ae = only_event(&im, 4);
    cr_assert_str_eq(str(ae, "type"), "adverse_event");
    cr_assert_str_eq(str(json_object_get(ae, "data"), "severity"), "mild");
    json_t *en = only_event(&im, 5);
    cr_assert_str_eq(str(en, "type"), "enrolled");
    cr_assert_str_eq(str(json_object_get(en, "data"), "program"), "ketamine");
    cr_assert_eq(im.v[6].kind, RG_FHIR_UNMAPPED, "an Encounter of no configured type");
    cr_assert(strstr(im.v[7].reason, "not ketamine"), "vancomycin: %s", im.v[7].reason);
    /* 35 mg, and the example's body weight of 185 [lb_av] = 83.915 kg */
    json_t *inf = only_event(&im, 8);
    cr_assert_str_eq(str(inf, "type"), "infusion");
    cr_assert_float_eq(num(json_object_get(inf, "data"), "dose_mg_per_kg"), 0.417, 1e-9);
    cr_assert_eq(num(json_object_get(inf, "data"), "duration_min"), 40);
    rg_fhir_free(&im);
}

Test(fhir, malformed_value_is_rejected_with_its_location)
{
    rg_fhir_import im;
    read_file(&im, "tests/fhir/bundle-malformed.json");
    cr_assert_eq(im.v[3].kind, RG_FHIR_REJECTED);
    cr_assert_str_eq(im.v[3].location, "entry[3].resource.component[0].valueQuantity.value");
    cr_assert_str_eq(im.v[3].reason, "expected a number");
    cr_assert_eq(json_array_size(im.v[3].events), 0, "nothing half-converted");
    cr_assert_eq(im.v[1].kind, RG_FHIR_EVENTS, "the good entries still map");
    rg_fhir_free(&im);
}

Test(fhir, heart_rate_joins_the_blood_pressure_of_the_same_instant)
{
    rg_fhir_import im;
    read_text(&im,
              "{\"resourceType\":\"Bundle\",\"type\":\"collection\",\"entry\":["
              "{\"resource\":{\"resourceType\":\"Observation\",\"id\":\"hr\",\"status\":\"final\","
              "\"code\":{\"coding\":[{\"system\":\"http://loinc.org\",\"code\":\"8867-4\"}]},"
              "\"subject\":{\"reference\":\"Patient/p1\"},\"effectiveDateTime\":\"2026-03-02T14:00:00-05:00\","
              "\"valueQuantity\":{\"value\":72,\"code\":\"/min\"}}},"
              "{\"resource\":{\"resourceType\":\"Observation\",\"id\":\"bp\",\"status\":\"final\","
              "\"code\":{\"coding\":[{\"system\":\"http://loinc.org\",\"code\":\"85354-9\"}]},"
              "\"subject\":{\"reference\":\"Patient/p1\"},\"effectiveDateTime\":\"2026-03-02T19:00:00Z\","
              "\"component\":[{\"code\":{\"coding\":[{\"system\":\"http://loinc.org\",\"code\":\"8480-6\"}]},"
              "\"valueQuantity\":{\"value\":171}},{\"code\":{\"coding\":[{\"system\":\"http://loinc.org\","
              "\"code\":\"8462-4\"}]},\"valueQuantity\":{\"value\":99}}]}}]}");
    json_t *bp = only_event(&im, 1);
    cr_assert_eq(num(json_object_get(bp, "data"), "heart_rate"), 72);
    cr_assert_eq(im.v[0].kind, RG_FHIR_CONTEXT);
    cr_assert(strstr(im.v[0].reason, "fhir:Observation/bp"), "%s", im.v[0].reason);
    rg_fhir_free(&im);
}

Test(fhir, phq9_questionnaire_response_is_an_assessment)
{
    rg_fhir_import im;
    read_file(&im, "tests/fhir/questionnaireresponse-phq9.json");
    json_t *ev = only_event(&im, 0);
    cr_assert_str_eq(str(ev, "type"), "assessment");
    json_t *d = json_object_get(ev, "data");
    cr_assert_str_eq(str(d, "instrument"), "phq9");
    cr_assert_eq(num(d, "score"), 7);
    cr_assert_eq(num(d, "item9"), 1, "LA6569-3 (several days) scores 1");
    rg_fhir_free(&im);
}

Test(fhir, corrections_carry_version_status_and_who)
{
    rg_fhir_import im;
    read_file(&im, "tests/fhir/observation-bloodpressure-amended.json");
    json_t *ev = only_event(&im, 0);
    cr_assert_eq(json_integer_value(json_object_get(ev, "version")), 2);
    cr_assert_str_eq(str(ev, "status"), "amended");
    cr_assert_str_eq(str(ev, "corrected_at"), "2012-09-18T09:30:00+02:00");
    cr_assert_str_eq(str(ev, "corrected_by"), "ehr.example.org");
    cr_assert_eq(num(json_object_get(ev, "data"), "systolic"), 117);
    rg_fhir_free(&im);
    read_file(&im, "tests/fhir/observation-bloodpressure-entered-in-error.json");
    ev = only_event(&im, 0);
    cr_assert_str_eq(str(ev, "status"), "entered-in-error");
    cr_assert_eq(json_integer_value(json_object_get(ev, "version")), 3);
    cr_assert_str_eq(str(ev, "type"), "vitals", "the type of the event it withdraws");
    rg_fhir_free(&im);
    read_text(&im, "{\"resourceType\":\"AdverseEvent\",\"id\":\"a\",\"meta\":{\"versionId\":\"v2\"},"
                   "\"subject\":{\"reference\":\"Patient/p\"},\"date\":\"2026-01-01T00:00:00Z\","
                   "\"severity\":{\"coding\":[{\"code\":\"mild\"}]}}");
    cr_assert_eq(im.v[0].kind, RG_FHIR_REJECTED);
    cr_assert_str_eq(im.v[0].location, "AdverseEvent.meta.versionId");
    rg_fhir_free(&im);
}

Test(fhir, ndjson_lines_and_bad_resources)
{
    rg_fhir_import im;
    read_text(&im, "{\"resourceType\":\"Patient\",\"id\":\"p\"}\n"
                   "{not json\n"
                   "\n"
                   "{\"resourceType\":\"MedicationAdministration\",\"id\":\"m\",\"status\":\"completed\","
                   "\"medicationCodeableConcept\":{\"coding\":[{\"system\":"
                   "\"http://www.nlm.nih.gov/research/umls/rxnorm\",\"code\":\"6130\"}]},"
                   "\"subject\":{\"reference\":\"Patient/p\"},\"effectiveDateTime\":\"2026-01-01T10:00:00Z\","
                   "\"dosage\":{\"dose\":{\"value\":40,\"code\":\"mg\"}}}\n"
                   "{\"resourceType\":\"Observation\",\"status\":\"final\"}\n");
    cr_assert_not(im.bundle);
    cr_assert_eq(im.n, 4);
    cr_assert_eq(im.v[0].kind, RG_FHIR_CONTEXT);
    cr_assert_eq(im.v[1].kind, RG_FHIR_REJECTED);
    cr_assert_eq(im.v[1].index, 2);
    cr_assert_str_eq(im.v[1].location, "line 2");
    cr_assert_eq(im.v[2].index, 4);
    cr_assert_eq(im.v[2].kind, RG_FHIR_REJECTED, "mg without a body weight");
    cr_assert_str_eq(im.v[2].location, "MedicationAdministration.dosage.dose");
    cr_assert_str_eq(im.v[3].location, "Observation.id");
    rg_fhir_free(&im);
}

/* A bulk export puts Medications in a file of their own: an administration
 * finds its Medication (and the patient's weight) anywhere in the import. */
Test(fhir, referenced_medication_and_weight_elsewhere_in_the_import)
{
    rg_fhir_import im;
    read_text(&im, "{\"resourceType\":\"MedicationAdministration\",\"id\":\"m\",\"status\":\"completed\","
                   "\"medicationReference\":{\"reference\":\"Medication/ket\"},\"subject\":"
                   "{\"reference\":\"Patient/p\"},\"effectiveDateTime\":\"2026-01-01T10:00:00Z\","
                   "\"dosage\":{\"dose\":{\"value\":40,\"code\":\"mg\"}}}\n"
                   "{\"resourceType\":\"Observation\",\"id\":\"w\",\"status\":\"final\",\"code\":"
                   "{\"coding\":[{\"system\":\"http://loinc.org\",\"code\":\"29463-7\"}]},\"subject\":"
                   "{\"reference\":\"Patient/p\"},\"effectiveDateTime\":\"2025-12-30\",\"valueQuantity\":"
                   "{\"value\":80,\"code\":\"kg\"}}\n"
                   "{\"resourceType\":\"Medication\",\"id\":\"ket\",\"code\":{\"coding\":[{\"system\":"
                   "\"http://www.nlm.nih.gov/research/umls/rxnorm\",\"code\":\"6130\"}]}}\n");
    json_t *ev = only_event(&im, 0);
    cr_assert_eq(num(json_object_get(ev, "data"), "dose_mg_per_kg"), 0.5);
    cr_assert_eq(im.v[1].kind, RG_FHIR_CONTEXT);
    cr_assert_eq(im.v[2].kind, RG_FHIR_CONTEXT);
    rg_fhir_free(&im);
    /* a Medication the import does not hold cannot be told to be ketamine */
    read_text(&im, "{\"resourceType\":\"MedicationAdministration\",\"id\":\"m\",\"status\":\"completed\","
                   "\"medicationReference\":{\"reference\":\"Medication/elsewhere\"},\"subject\":"
                   "{\"reference\":\"Patient/p\"},\"effectiveDateTime\":\"2026-01-01T10:00:00Z\"}");
    cr_assert_eq(im.v[0].kind, RG_FHIR_UNMAPPED);
    cr_assert(strstr(im.v[0].reason, "Medication/elsewhere is not in this import"), "%s",
              im.v[0].reason);
    rg_fhir_free(&im);
}

Test(fhir, input_that_is_no_fhir_is_refused)
{
    rg_fhir_import im;
    char err[256];
    const char *doc = "{\"resourceType\":\"Bundle\",\"type\":\"document\",\"entry\":[]}";
    cr_assert_eq(rg_fhir_read(&im, doc, strlen(doc), &north, err, sizeof err), RG_EINVAL);
    cr_assert(strstr(err, "Bundle.type"), "%s", err);
    cr_assert_eq(rg_fhir_read(&im, "", 0, &north, err, sizeof err), RG_EINVAL);
}

Test(fhir, code_lists_replace_the_defaults)
{
    static const char *const pcl5[] = {"http://example.org/ehr|PCL5-total", NULL};
    static const char *const none[] = {NULL};
    rg_fhir_opts o = {.clinic = "north"};
    o.codes[RG_FHIR_PCL5] = pcl5;
    o.codes[RG_FHIR_FOLLOWUP] = none;
    rg_fhir_import im;
    char err[256];
    const char *qr = "{\"resourceType\":\"QuestionnaireResponse\",\"id\":\"pcl\",\"status\":"
                     "\"completed\",\"subject\":{\"reference\":\"Patient/x\"},\"authored\":"
                     "\"2026-01-02T10:00:00Z\",\"item\":[{\"linkId\":\"/PCL5-total\",\"answer\":"
                     "[{\"valueInteger\":41}]}]}";
    cr_assert_eq(rg_fhir_read(&im, qr, strlen(qr), &o, err, sizeof err), RG_OK, "%s", err);
    json_t *ev = only_event(&im, 0);
    cr_assert_str_eq(str(json_object_get(ev, "data"), "instrument"), "pcl5");
    cr_assert_eq(num(json_object_get(ev, "data"), "score"), 41);
    rg_fhir_free(&im);
    /* an emptied list: Synthea's follow-up encounter is no longer mapped */
    char *text = rg_test_read("tests/fhir/synthea-bulk.ndjson");
    cr_assert_eq(rg_fhir_read(&im, text, strlen(text), &o, err, sizeof err), RG_OK, "%s", err);
    cr_assert_eq(im.v[1].kind, RG_FHIR_UNMAPPED);
    free(text);
    rg_fhir_free(&im);
}

/* ---- the real binary ------------------------------------------------------------------- */

static int run(const char *const *args, char **out, char **err)
{
    return rg_test_run(args, NULL, out, err);
}

Test(fhir_cli, import_store_reimport_is_a_noop)
{
    char dir[256], db[300], *out, *err;
    rg_test_tmpdir(dir);
    snprintf(db, sizeof db, "%s/f.db", dir);
    const char *args[] = {"import-fhir", "--db", db, "--clinic", "north",
                          "tests/fhir/bundle-hl7-examples.json", NULL};
    int rc = run(args, &out, &err);
    cr_assert_eq(rc, 0, "exit %d\n%s%s", rc, out, err);
    cr_assert(strstr(out, "stored 4, duplicates 0, conflicts 0, rejected 0, unmapped 4, "
                          "context 1, corrected 0\n"), "%s", out);
    /* unmapped resources are listed by type and id */
    cr_assert(strstr(out, "unmapped Observation: 2 (blood-pressure-cancel, heart-rate)"), "%s", out);
    cr_assert(strstr(out, "unmapped Encounter: 1 (home)"), "%s", out);
    cr_assert(strstr(out, "entry[8] MedicationAdministration/medadmin-ketamine: stored "
                          "fhir:MedicationAdministration/medadmin-ketamine"), "%s", out);
    free(out);
    free(err);
    cr_assert_eq(count_rows(db, "SELECT count(*) FROM events"), 4);
    rc = run(args, &out, &err);
    cr_assert_eq(rc, 0, "%s", err);
    cr_assert(strstr(out, "stored 0, duplicates 4, conflicts 0"), "%s", out);
    free(out);
    free(err);
    cr_assert_eq(count_rows(db, "SELECT count(*) FROM events"), 4);
    rg_test_rmdir(dir);
}

/* FHIR corrections reach the store as corrections (docs/corrections.md):
 * versionId 2 amended, then versionId 3 entered-in-error, of the stored
 * blood pressure; every version is kept, the current one withdraws it. */
Test(fhir_cli, amended_and_entered_in_error_are_stored_as_corrections)
{
    char dir[256], db[300], *out, *err;
    rg_test_tmpdir(dir);
    snprintf(db, sizeof db, "%s/f.db", dir);
    const char *first[] = {"import-fhir", "--db", db, "--clinic", "north",
                           "tests/fhir/bundle-hl7-examples.json", NULL};
    cr_assert_eq(run(first, &out, &err), 0, "%s", err);
    free(out);
    free(err);
    const char *amend[] = {"import-fhir", "--db", db, "--clinic", "north",
                           "tests/fhir/observation-bloodpressure-amended.json", NULL};
    int rc = run(amend, &out, &err);
    cr_assert_eq(rc, 0, "exit %d\n%s%s", rc, out, err);
    cr_assert(strstr(out, "stored 0, duplicates 0, conflicts 0, rejected 0, unmapped 0, "
                          "context 0, corrected 1\n"), "%s", out);
    free(out);
    free(err);
    rc = run(amend, &out, &err); /* the same version again: a duplicate */
    cr_assert_eq(rc, 0, "%s", err);
    cr_assert(strstr(out, "duplicates 1"), "%s", out);
    free(out);
    free(err);
    const char *retract[] = {"import-fhir", "--db", db, "--clinic", "north",
                             "tests/fhir/observation-bloodpressure-entered-in-error.json", NULL};
    rc = run(retract, &out, &err);
    cr_assert_eq(rc, 0, "exit %d\n%s%s", rc, out, err);
    cr_assert(strstr(out, "corrected 1\n"), "%s", out);
    free(out);
    free(err);
    cr_assert_eq(count_rows(db, "SELECT count(*) FROM events WHERE id = "
                                "'fhir:Observation/blood-pressure'"), 3, "every version is kept");
    cr_assert_eq(count_rows(db, "SELECT max(version) FROM events WHERE id = "
                                "'fhir:Observation/blood-pressure' AND status = 'entered-in-error'"),
                 3);
    rg_test_rmdir(dir);
}

Test(fhir_cli, malformed_entry_is_kept_with_its_location)
{
    char dir[256], db[300], *out, *err;
    rg_test_tmpdir(dir);
    snprintf(db, sizeof db, "%s/f.db", dir);
    const char *args[] = {"import-fhir", "--db", db, "--clinic", "north",
                          "tests/fhir/bundle-malformed.json", NULL};
    int rc = run(args, &out, &err);
    cr_assert_eq(rc, 1, "a rejected entry is exit 1: %d\n%s%s", rc, out, err);
    cr_assert(strstr(out, "entry[3] Observation/bp-bad: rejected at "
                          "entry[3].resource.component[0].valueQuantity.value: expected a number"),
              "%s", out);
    free(out);
    free(err);
    const char *rej[] = {"rejected", "--db", db, NULL};
    rc = run(rej, &out, &err);
    cr_assert(strstr(out, "field 'entry[3].resource.component[0].valueQuantity.value'"), "%s", out);
    cr_assert(strstr(out, "\"id\":\"bp-bad\""), "the resource is kept for the operator: %s", out);
    free(out);
    free(err);
    cr_assert_eq(count_rows(db, "SELECT count(*) FROM events"), 1);
    rg_test_rmdir(dir);
}

Test(fhir_cli, synthea_bulk_export_ndjson_from_stdin)
{
    char dir[256], db[300], *out, *err;
    rg_test_tmpdir(dir);
    snprintf(db, sizeof db, "%s/f.db", dir);
    char *text = rg_test_read("tests/fhir/synthea-bulk.ndjson");
    const char *args[] = {"import-fhir", "--db", db, "--clinic", "north", "-", NULL};
    int rc = rg_test_run(args, text, &out, &err);
    cr_assert_eq(rc, 0, "%s%s", out, err);
    /* the Synthea follow-up encounter (SNOMED 390906007) is a followup_visit of the patient
     * its urn-less Patient/<uuid> reference names */
    cr_assert(strstr(out, "<stdin>:2: Encounter/01ed1572-71b6-3787-d30a-952295a96665: stored"),
              "%s", out);
    cr_assert(strstr(out, "unmapped Encounter: 2"), "%s", out);
    cr_assert(strstr(out, "unmapped Procedure: 1"), "%s", out);
    cr_assert_eq(count_rows(db, "SELECT count(*) FROM events WHERE type = 'followup_visit' AND "
                                "patient = 'a5cb8ce9-cec6-6b23-0990-cbaf753578a4'"), 1);
    free(text);
    free(out);
    free(err);
    rg_test_rmdir(dir);
}

Test(fhir_cli, print_shows_the_events_and_stores_nothing)
{
    char *out, *err;
    const char *args[] = {"import-fhir", "--db", "/nonexistent/dir/x.db", "--clinic", "north",
                          "--print", "tests/fhir/observation-bloodpressure-amended.json", NULL};
    int rc = run(args, &out, &err);
    cr_assert_eq(rc, 0, "%s", err);
    cr_assert_str_eq(out, "{\"at\":\"2012-09-17T00:00:00Z\",\"clinic\":\"north\","
                          "\"corrected_at\":\"2012-09-18T09:30:00+02:00\",\"corrected_by\":"
                          "\"ehr.example.org\",\"data\":{\"diastolic\":60,\"systolic\":117},"
                          "\"id\":\"fhir:Observation/blood-pressure\",\"patient\":\"example\","
                          "\"status\":\"amended\",\"type\":\"vitals\",\"version\":2}\n");
    free(out);
    free(err);
}

static const char override_clinic[] =
    "return {\n"
    "  include = { 'ketamine' },\n"
    "  fhir = {\n"
    "    codes = { integration_session = { 'http://snomed.info/sct|162673000' } },\n"
    "    map = function(resource, event)\n"
    "      if resource.resourceType == 'Encounter' and resource.id == 'home' then\n"
    "        return { patient = 'example', type = 'preparation_session',\n"
    "                 at = resource.period.start }\n"
    "      end\n"
    "      if event and event.type == 'vitals' then event.data.phase = 'pre' end\n"
    "      return event\n"
    "    end,\n"
    "  },\n"
    "}\n";

Test(fhir_cli, clinic_lua_overrides_the_mapping)
{
    char dir[256], clinic[300], *out, *err;
    rg_test_tmpdir(dir);
    rg_test_write(dir, "north/clinic.lua", override_clinic);
    snprintf(clinic, sizeof clinic, "north=%s/north", dir);
    const char *args[] = {"import-fhir", "--clinic", clinic, "--print",
                          "tests/fhir/bundle-hl7-examples.json", NULL};
    int rc = run(args, &out, &err);
    cr_assert_eq(rc, 0, "%s", err);
    cr_assert(strstr(out, "\"data\":{\"diastolic\":60,\"phase\":\"pre\",\"systolic\":107}"), "%s",
              out);
    cr_assert(strstr(out, "{\"at\":\"2015-01-17T16:00:00+10:00\",\"clinic\":\"north\","
                          "\"id\":\"fhir:Encounter/home\",\"patient\":\"example\","
                          "\"type\":\"preparation_session\"}"), "%s", out);
    free(out);
    free(err);
    /* the code list: Synthea's general examinations become integration sessions */
    const char *syn[] = {"import-fhir", "--clinic", clinic, "--print",
                         "tests/fhir/synthea-bulk.ndjson", NULL};
    rc = run(syn, &out, &err);
    cr_assert_eq(rc, 0, "%s", err);
    cr_assert(strstr(out, "\"type\":\"integration_session\""), "%s", out);
    free(out);
    free(err);
    rg_test_rmdir(dir);
}

Test(fhir_cli, lua_error_in_map_names_clinic_file_and_line)
{
    char dir[256], clinic[300], *out, *err;
    rg_test_tmpdir(dir);
    rg_test_write(dir, "north/clinic.lua",
                  "return { include = { 'ketamine' },\n"
                  "  fhir = { map = function(resource, event)\n"
                  "    return event.data.nothing.here\n"
                  "  end } }\n");
    snprintf(clinic, sizeof clinic, "north=%s/north", dir);
    const char *args[] = {"import-fhir", "--clinic", clinic, "--print",
                          "tests/fhir/observation-example-bloodpressure.json", NULL};
    int rc = run(args, &out, &err);
    cr_assert_eq(rc, 2, "%s", err);
    cr_assert(strstr(err, "clinic.lua:3:"), "%s", err);
    cr_assert(strstr(err, "Observation/blood-pressure"), "%s", err);
    free(out);
    free(err);
    rg_test_write(dir, "north/clinic.lua",
                  "return { include = { 'ketamine' }, fhir = { codes = { ketamin = {} } } }\n");
    rc = run(args, &out, &err);
    cr_assert_eq(rc, 2);
    cr_assert(strstr(err, "clinic.lua: fhir.codes: no code list named 'ketamin'"), "%s", err);
    free(out);
    free(err);
    rg_test_rmdir(dir);
}

/* ---- POST /v1/fhir on loopback ----------------------------------------------------------- */

static void fhir_server(server *s)
{
    char cfg[1024];
    rg_test_tmpdir(s->dir);
    snprintf(s->db, sizeof s->db, "%s/serve.db", s->dir);
    snprintf(s->config, sizeof s->config, "%s/config.json", s->dir);
    snprintf(s->log, sizeof s->log, "%s/serve.log", s->dir);
    rg_test_write(s->dir, "north/clinic.lua", override_clinic);
    rg_test_write(s->dir, "south/p.lua", fast_protocol);
    snprintf(cfg, sizeof cfg,
             "{ \"listen\": \"127.0.0.1:0\", \"clinics\": {\n"
             "  \"north\": { \"protocols\": \"north\", \"tokens\": [\"" TOKEN_A "\"] },\n"
             "  \"south\": { \"protocols\": \"south\", \"tokens\": [\"" TOKEN_B "\"] } } }\n");
    rg_test_write(s->dir, "config.json", cfg);
}

Test(fhir_serve, post_bundle_stores_reports_and_reimports_as_duplicates)
{
    server s;
    char *body, *bundle = rg_test_read("tests/fhir/bundle-hl7-examples.json");
    fhir_server(&s);
    server_start(&s);
    int st = http(s.port, "POST", "/v1/fhir", TOKEN_A, bundle, &body);
    cr_assert_eq(st, 200, "%d %s", st, body);
    json_t *r = json_loads(body, 0, NULL);
    cr_assert_not_null(r, "%s", body);
    cr_assert_eq(json_integer_value(json_object_get(r, "stored")), 5, "%s", body);
    cr_assert_eq(json_integer_value(json_object_get(r, "unmapped")), 3, "%s", body);
    cr_assert_eq(json_integer_value(json_object_get(r, "context")), 1, "%s", body);
    json_t *e6 = json_array_get(json_object_get(r, "entries"), 6);
    cr_assert_str_eq(str(e6, "status"), "stored", "north's fhir.map: %s", body);
    cr_assert_eq(json_integer_value(json_object_get(e6, "entry")), 6);
    json_t *e3 = json_array_get(json_object_get(r, "entries"), 3);
    cr_assert_str_eq(str(e3, "status"), "unmapped");
    cr_assert_str_eq(str(e3, "resourceType"), "Observation");
    cr_assert_str_eq(str(e3, "id"), "heart-rate");
    json_decref(r);
    free(body);
    /* the same Bundle again: nothing new; under south's token: south's events */
    st = http(s.port, "POST", "/v1/fhir", TOKEN_A, bundle, &body);
    cr_assert_eq(st, 200);
    cr_assert(strstr(body, "\"stored\":0,\"duplicates\":5"), "%s", body);
    free(body);
    st = http(s.port, "POST", "/v1/fhir", TOKEN_B, bundle, &body);
    cr_assert_eq(st, 200);
    cr_assert(strstr(body, "\"stored\":4"), "south has no override: %s", body);
    free(body);
    /* malformed */
    char *bad = rg_test_read("tests/fhir/bundle-malformed.json");
    st = http(s.port, "POST", "/v1/fhir", TOKEN_A, bad, &body);
    cr_assert_eq(st, 200);
    cr_assert(strstr(body, "\"location\":\"entry[3].resource.component[0].valueQuantity.value\""),
              "%s", body);
    cr_assert(strstr(body, "\"duplicates\":1,\"conflicts\":0,\"rejected\":1"), "%s", body);
    free(body);
    free(bad);
    st = http(s.port, "POST", "/v1/fhir", TOKEN_A, "{\"resourceType\":\"Patient\"}", &body);
    cr_assert_eq(st, 400, "%s", body);
    cr_assert(strstr(body, "Bundle"), "%s", body);
    free(body);
    st = http(s.port, "POST", "/v1/fhir", NULL, bundle, &body);
    cr_assert_eq(st, 401);
    free(body);
    cr_assert_eq(server_stop(&s, SIGTERM), 0);
    cr_assert_eq(count_rows(s.db, "SELECT count(*) FROM events WHERE clinic = 'north'"), 5);
    cr_assert_eq(count_rows(s.db, "SELECT count(*) FROM events WHERE clinic = 'south'"), 4);
    free(bundle);
    rg_test_rmdir(s.dir);
}

/* FHIR events are evaluated like any others: a 171/99 reading from the EHR opens
 * safety.bp-high for an enrolled patient, through the same engine path. */
Test(fhir_serve, imported_blood_pressure_opens_its_alert)
{
    server s;
    char *body;
    fhir_server(&s);
    server_start(&s);
    const char *bundle =
        "{\"resourceType\":\"Bundle\",\"type\":\"transaction\",\"entry\":["
        "{\"fullUrl\":\"urn:uuid:7d1c3a52-0c1e-4d0a-9a57-2f5e3b8c9d01\",\"resource\":"
        "{\"resourceType\":\"Patient\",\"id\":\"p-fhir\"}},"
        "{\"resource\":{\"resourceType\":\"EpisodeOfCare\",\"id\":\"ep1\",\"status\":\"active\","
        "\"patient\":{\"reference\":\"urn:uuid:7d1c3a52-0c1e-4d0a-9a57-2f5e3b8c9d01\"},"
        "\"period\":{\"start\":\"2026-03-01T09:00:00-05:00\"}}},"
        "{\"resource\":{\"resourceType\":\"Observation\",\"id\":\"bp-high\",\"status\":\"final\","
        "\"code\":{\"coding\":[{\"system\":\"http://loinc.org\",\"code\":\"85354-9\"}]},"
        "\"subject\":{\"reference\":\"urn:uuid:7d1c3a52-0c1e-4d0a-9a57-2f5e3b8c9d01\"},"
        "\"effectiveDateTime\":\"2026-03-02T14:00:00-05:00\",\"component\":["
        "{\"code\":{\"coding\":[{\"system\":\"http://loinc.org\",\"code\":\"8480-6\"}]},"
        "\"valueQuantity\":{\"value\":171,\"code\":\"mm[Hg]\"}},"
        "{\"code\":{\"coding\":[{\"system\":\"http://loinc.org\",\"code\":\"8462-4\"}]},"
        "\"valueQuantity\":{\"value\":99,\"code\":\"mm[Hg]\"}}]}}]}";
    int st = http(s.port, "POST", "/v1/fhir", TOKEN_A, bundle, &body);
    cr_assert_eq(st, 200, "%s", body);
    cr_assert(strstr(body, "\"stored\":2"), "%s", body);
    free(body);
    st = http(s.port, "GET", "/v1/alerts?patient=p-fhir&state=open", TOKEN_A, NULL, &body);
    cr_assert_eq(st, 200);
    cr_assert(strstr(body, "\"rule\":\"safety.bp-high\""), "%s", body);
    free(body);
    cr_assert_eq(server_stop(&s, SIGTERM), 0);
    rg_test_rmdir(s.dir);
}
