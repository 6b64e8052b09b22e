/*
 * pg_sql.c - the PostgreSQL backend's SQL (see pg_sql.h): the schema, its
 * upgrade steps and every statement pg.c prepares. What the statements rest
 * on (sequence numbers, leases, the partitioning) is told in pg.c's header.
 */
#include "store/pg_sql.h"

#define RG__PARTS 8 /* hash partitions per table */
#define RG__S(x) #x
#define RG__STR(x) RG__S(x)
/* An event body's digest (SHA-256 of its UTF-8 bytes, hex): the bytes
 * sqlite.c's rg_sha256() and rg_store_verify hash. */
#define RG__DIGEST(body) "encode(sha256(convert_to(" body ", 'UTF8')), 'hex')"
/* What a row keeps of it since v18: its first 16 bytes (RG_EVENT_DIGEST). */
#define RG__DIGEST16(body) "left(" RG__DIGEST(body) ", 32)"
/* rg_head's value (schema 17): an event's head as its body begins,
 * {"id":..,"clinic":..,"patient":..,"type":..,"at":"..", from its columns,
 * with l its local instant in ms and ms that instant's milliseconds
 * (RG__LOCAL's). Written out in the statements that cut many bodies
 * (P_EVENTS_INSERT): a SQL function with a FROM is never inlined, and
 * PostgreSQL's SQL function executor ran rg_head at about five times the
 * cost of this expression (bench/profile.md, session 2). The schema's
 * rg_head is this same text, so what is cut off and what rg_body puts back
 * stay the same by construction. */
#define RG__HEAD(id, clinic, patient, type, off, l, ms)                                        \
    "'{\"id\":' || to_json(" id ")::text || ',\"clinic\":' || to_json(" clinic ")::text"         \
    "  || ',\"patient\":' || to_json(" patient ")::text || ',\"type\":' || to_json(" type      \
    ")::text || ',\"at\":\"' || to_char(to_timestamp(((" l " - " ms ") / 1000)::double precision)" \
    "  AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS')"                                        \
    "  || CASE WHEN " ms " = 0 THEN '' ELSE '.' || lpad(" ms "::text, 3, '0') END"                \
    "  || CASE WHEN " off " = 0 THEN 'Z' ELSE CASE WHEN " off " < 0 THEN '-' ELSE '+' END"        \
    "  || lpad((abs(" off ") / 60)::text, 2, '0') || ':' || lpad((abs(" off ") % 60)::text, 2,"  \
    " '0') END || '\"'"
/* The subquery that gives RG__HEAD its l and ms from an event's at and
 * utc_offset (minutes). */
#define RG__LOCAL(at, off)                                                                    \
    "(SELECT l, mod(mod(l, 1000) + 1000, 1000) AS ms FROM (SELECT " at " + " off             \
    " * 60000::bigint AS l) a)"

const rg_pg_step rg_pg_steps[] = {
    {0, 5,
     "CREATE SEQUENCE transition_seq;"
     "CREATE TABLE counters("
     "  clinic text COLLATE \"C\" NOT NULL, name text NOT NULL, value bigint NOT NULL,"
     "  PRIMARY KEY(clinic, name)) PARTITION BY HASH (clinic);"
     "CREATE TABLE events("
     "  clinic text COLLATE \"C\" NOT NULL, seq bigint NOT NULL, id text COLLATE \"C\" NOT NULL,"
     "  patient text COLLATE \"C\" NOT NULL, type text NOT NULL, at bigint NOT NULL,"
     "  utc_offset integer NOT NULL, data text, body text NOT NULL, received bigint NOT NULL,"
     "  fields bytea, PRIMARY KEY(clinic, seq), UNIQUE(clinic, id)) PARTITION BY HASH (clinic);"
     "CREATE INDEX events_by_patient ON events(clinic, patient, at, seq);"
     /* a refused line may have no clinic at all: '' */
     "CREATE TABLE rejected("
     "  clinic text COLLATE \"C\" NOT NULL DEFAULT '', seq bigserial, received bigint NOT NULL,"
     "  source text NOT NULL, line bigint NOT NULL, field text NOT NULL, reason text NOT NULL,"
     "  raw bytea NOT NULL, PRIMARY KEY(clinic, seq)) PARTITION BY HASH (clinic);"
     "CREATE TABLE patients("
     "  clinic text COLLATE \"C\" NOT NULL, patient text COLLATE \"C\" NOT NULL, clock bigint,"
     "  wake bigint, next_wake bigint, last_seq bigint NOT NULL DEFAULT 0,"
     "  PRIMARY KEY(clinic, patient)) PARTITION BY HASH (clinic);"
     "CREATE INDEX patients_by_wake ON patients(next_wake) WHERE next_wake IS NOT NULL;"
     "CREATE TABLE transitions("
     "  clinic text COLLATE \"C\" NOT NULL, seq bigint NOT NULL DEFAULT nextval('transition_seq'),"
     "  alert_id bigint, at bigint NOT NULL, state text NOT NULL CHECK(state IN ('open','resolved')),"
     "  patient text COLLATE \"C\" NOT NULL, key text COLLATE \"C\" NOT NULL, protocol text NOT NULL,"
     "  version text NOT NULL, rule text NOT NULL, severity text NOT NULL, message text NOT NULL,"
     "  due bigint NOT NULL, params text NOT NULL, evidence text NOT NULL,"
     "  recorded bigint NOT NULL, cseq bigint NOT NULL,"
     "  PRIMARY KEY(clinic, seq), UNIQUE(clinic, cseq)) PARTITION BY HASH (clinic);"
     "CREATE INDEX transitions_by_key ON transitions(clinic, key, seq);"
     "CREATE INDEX transitions_open ON transitions(clinic, patient) WHERE state = 'open';"
     "CREATE TABLE alerts("
     "  clinic text COLLATE \"C\" NOT NULL, id bigint NOT NULL, acked_by text, acked_at bigint,"
     "  snoozed_until bigint, PRIMARY KEY(clinic, id)) PARTITION BY HASH (clinic);"
     "CREATE INDEX alerts_snoozed ON alerts(snoozed_until) WHERE snoozed_until IS NOT NULL;"
     "CREATE TABLE alert_actions("
     "  clinic text COLLATE \"C\" NOT NULL, seq bigserial, alert_id bigint NOT NULL,"
     "  key text COLLATE \"C\" NOT NULL, action text NOT NULL, who text NOT NULL,"
     "  note text NOT NULL, \"until\" bigint, at bigint NOT NULL,"
     "  PRIMARY KEY(clinic, seq)) PARTITION BY HASH (clinic);"
     "CREATE TABLE eval_errors("
     "  clinic text COLLATE \"C\" NOT NULL, seq bigserial, patient text NOT NULL,"
     "  protocol text NOT NULL, rule text NOT NULL, at bigint NOT NULL, message text NOT NULL,"
     "  recorded bigint NOT NULL, PRIMARY KEY(clinic, seq)) PARTITION BY HASH (clinic);"
     "CREATE TABLE protocol_versions("
     "  clinic text COLLATE \"C\" NOT NULL, protocol text NOT NULL, version text NOT NULL,"
     "  file text NOT NULL, hash text NOT NULL, first_loaded bigint NOT NULL,"
     "  PRIMARY KEY(clinic, protocol, version, hash)) PARTITION BY HASH (clinic);"
     "CREATE TABLE webhook_cursor("
     "  clinic text COLLATE \"C\" NOT NULL PRIMARY KEY, delivered bigint NOT NULL DEFAULT 0,"
     "  attempts integer NOT NULL DEFAULT 0, last_error text, updated bigint)"
     "  PARTITION BY HASH (clinic);"
     "DO $$ DECLARE t text; BEGIN"
     "  FOREACH t IN ARRAY ARRAY['counters','events','rejected','patients','transitions',"
     "    'alerts','alert_actions','eval_errors','protocol_versions','webhook_cursor'] LOOP"
     "    FOR i IN 0.." RG__STR(RG__PARTS) " - 1 LOOP"
     "      EXECUTE format('CREATE TABLE %I PARTITION OF %I FOR VALUES WITH"
     " (MODULUS " RG__STR(RG__PARTS) ", REMAINDER %s)', t || '_p' || i, t, i);"
     "    END LOOP;"
     "  END LOOP; END $$;"},
    /* 5 -> 6, as store_sql.c's step: corrections keep every version of an event
     * (UNIQUE(clinic, id, replaces) instead of UNIQUE(clinic, id); replaces
     * 0 for an id's first stored version), and clinic time: a transition's
     * notify_at (NULL: at) and the webhook deliveries sent ahead of the
     * cursor. Rows of v5 are version 1, final, told at their `at`. */
    {5, 6,
     "ALTER TABLE events ADD COLUMN version bigint NOT NULL DEFAULT 1,"
     "  ADD COLUMN status text, ADD COLUMN corrected_at bigint, ADD COLUMN corrected_by text,"
     "  ADD COLUMN replaces bigint NOT NULL DEFAULT 0;"
     "ALTER TABLE events DROP CONSTRAINT events_clinic_id_key;"
     "ALTER TABLE events ADD CONSTRAINT events_clinic_id_replaces_key"
     "  UNIQUE(clinic, id, replaces);"
     "ALTER TABLE transitions ADD COLUMN notify_at bigint;"
     "CREATE TABLE webhook_ahead("
     "  clinic text COLLATE \"C\" NOT NULL, cseq bigint NOT NULL, PRIMARY KEY(clinic, cseq))"
     "  PARTITION BY HASH (clinic);"
     "DO $$ BEGIN"
     "  FOR i IN 0.." RG__STR(RG__PARTS) " - 1 LOOP"
     "    EXECUTE format('CREATE TABLE %I PARTITION OF webhook_ahead FOR VALUES WITH"
     " (MODULUS " RG__STR(RG__PARTS) ", REMAINDER %s)', 'webhook_ahead_p' || i, i);"
     "  END LOOP; END $$;"},
    /* 6 -> 7, as store_sql.c's step: the times a writer scheduled the patient
     * (rg_patient_state), so that the owner's answer never unschedules an
     * event another worker stored during its evaluation; a row's creation by
     * an event counts as one */
    {6, 7, "ALTER TABLE patients ADD COLUMN scheduled bigint NOT NULL DEFAULT 1;"},
    /* 7 -> 8, as store_sql.c's step: failures are alerts. The (protocol,
     * rule) pairs whose last evaluation failed for a patient, since when,
     * and per patient how many there are; snooze expiries in the feed. */
    {7, 8,
     "CREATE TABLE failing_rules("
     "  clinic text COLLATE \"C\" NOT NULL, protocol text COLLATE \"C\" NOT NULL,"
     "  rule text COLLATE \"C\" NOT NULL, patient text COLLATE \"C\" NOT NULL,"
     "  since bigint NOT NULL, message text NOT NULL,"
     "  PRIMARY KEY(clinic, protocol, rule, patient)) PARTITION BY HASH (clinic);"
     "DO $$ BEGIN"
     "  FOR i IN 0.." RG__STR(RG__PARTS) " - 1 LOOP"
     "    EXECUTE format('CREATE TABLE %I PARTITION OF failing_rules FOR VALUES WITH"
     " (MODULUS " RG__STR(RG__PARTS) ", REMAINDER %s)', 'failing_rules_p' || i, i);"
     "  END LOOP; END $$;"
     "ALTER TABLE patients ADD COLUMN failing bigint NOT NULL DEFAULT 0;"
     /* and a snooze that expires is a transition of its own ('reraised') */
     "ALTER TABLE transitions DROP CONSTRAINT transitions_state_check;"
     "ALTER TABLE transitions ADD CONSTRAINT transitions_state_check"
     "  CHECK (state IN ('open','resolved','reraised'));"},
    /* 8 -> 9, as store_sql.c's step: each event's digest (SHA-256 of its
     * body, hex), and the index for a key's staff actions */
    {8, 9,
     "ALTER TABLE events ADD COLUMN digest text;"
     "UPDATE events SET digest = " RG__DIGEST("body") ";"
     "CREATE INDEX alert_actions_by_key ON alert_actions(clinic, key, seq);"},
    /* 9 -> 10, as store_sql.c's step: the audit trail and its chain's tip
     * and base (one row, locked FOR UPDATE by each append, so the workers'
     * entries form one chain) */
    {9, 10,
     "CREATE TABLE audit("
     "  seq bigint PRIMARY KEY, at bigint NOT NULL, who text NOT NULL, role text NOT NULL,"
     "  address text NOT NULL, clinic text COLLATE \"C\" NOT NULL, patients text NOT NULL,"
     "  route text NOT NULL, outcome text NOT NULL, prev text NOT NULL, hash text NOT NULL);"
     "CREATE INDEX audit_by_clinic ON audit(clinic, at);"
     "CREATE TABLE audit_chain("
     "  id integer PRIMARY KEY CHECK(id = 1), base_seq bigint NOT NULL, base_hash text NOT NULL,"
     "  tip_seq bigint NOT NULL, tip_hash text NOT NULL, archived_at bigint);"
     "INSERT INTO audit_chain VALUES(1, 0,"
     " '0000000000000000000000000000000000000000000000000000000000000000', 0,"
     " '0000000000000000000000000000000000000000000000000000000000000000', NULL);"},
    /* 10 -> 11, as store_sql.c's step: protocol versions, their files and
     * what was done to them (docs/governance.md) */
    {10, 11,
     "CREATE TABLE protocol_sets("
     "  clinic text COLLATE \"C\" NOT NULL, id text COLLATE \"C\" NOT NULL, n bigint NOT NULL,"
     "  state text NOT NULL, proposed_by text NOT NULL, proposed_at bigint NOT NULL,"
     "  message text NOT NULL, approved_by text, approved_at bigint, active_from bigint,"
     "  PRIMARY KEY(clinic, id));"
     "CREATE TABLE protocol_set_files("
     "  clinic text COLLATE \"C\" NOT NULL, id text COLLATE \"C\" NOT NULL,"
     "  path text COLLATE \"C\" NOT NULL, content bytea NOT NULL, PRIMARY KEY(clinic, id, path));"
     "CREATE TABLE protocol_set_log("
     "  seq bigserial PRIMARY KEY, clinic text COLLATE \"C\" NOT NULL, id text NOT NULL,"
     "  action text NOT NULL, by text NOT NULL, at bigint NOT NULL, effective bigint NOT NULL);"},
    /* 11 -> 12, as store_sql.c's step: a shadow version's transitions,
     * apart from the feed (docs/governance.md, "Shadow") */
    {11, 12,
     "CREATE TABLE shadow_transitions("
     "  seq bigserial PRIMARY KEY, clinic text COLLATE \"C\" NOT NULL,"
     "  set_id text COLLATE \"C\" NOT NULL, patient text COLLATE \"C\" NOT NULL,"
     "  key text COLLATE \"C\" NOT NULL, state text NOT NULL, at bigint NOT NULL, due bigint,"
     "  protocol text NOT NULL, version text NOT NULL, rule text NOT NULL,"
     "  severity text NOT NULL, message text NOT NULL,"
     "  UNIQUE(clinic, set_id, patient, key, state, at));"},
    /* 12 -> 13, as store_sql.c's step: who or what caused each transition */
    {12, 13, "ALTER TABLE transitions ADD COLUMN cause text;"},
    /* 13 -> 14, as store_sql.c's step: the service's notification steps
     * and their history (docs/notifications.md) */
    {13, 14,
     "CREATE TABLE notify_steps("
     "  id bigserial PRIMARY KEY, clinic text COLLATE \"C\" NOT NULL,"
     "  patient text COLLATE \"C\" NOT NULL, key text COLLATE \"C\" NOT NULL,"
     "  opened bigint NOT NULL, route bigint NOT NULL, step bigint NOT NULL,"
     "  round bigint NOT NULL, part bigint NOT NULL, rule text NOT NULL,"
     "  receiver text NOT NULL, on_call text, due bigint NOT NULL, reason text,"
     "  state text NOT NULL, attempts bigint NOT NULL, next_try bigint NOT NULL,"
     "  claimed_until bigint,"
     "  UNIQUE(clinic, key, opened, route, step, round, part));"
     "CREATE INDEX notify_steps_due ON notify_steps(clinic, next_try) WHERE state = 'pending';"
     "CREATE TABLE notify_log("
     "  seq bigserial PRIMARY KEY, clinic text COLLATE \"C\" NOT NULL,"
     "  patient text COLLATE \"C\" NOT NULL, key text COLLATE \"C\" NOT NULL,"
     "  opened bigint NOT NULL, route bigint NOT NULL, step bigint NOT NULL,"
     "  round bigint NOT NULL, rule text NOT NULL, receiver text NOT NULL, kind text NOT NULL,"
     "  on_call text, at bigint NOT NULL, outcome text NOT NULL, reason text,"
     "  alerts bigint NOT NULL, attempt bigint NOT NULL);"
     "CREATE INDEX notify_log_by_key ON notify_log(clinic, key, seq);"
     "CREATE INDEX notify_log_by_patient ON notify_log(clinic, patient, seq);"},
    /* 14 -> 15, as store_sql.c's step: a lean event row. The canonical data
     * text goes (pg.c derives it from the body when shown), and the primary
     * key becomes the order an evaluation reads, (clinic, patient, at, seq),
     * so the table has two indexes instead of three (events_by_patient was
     * that key beside a (clinic, seq) one). Digests stay hex text here. */
    {14, 15,
     "ALTER TABLE events DROP COLUMN data;"
     "ALTER TABLE events DROP CONSTRAINT events_pkey;"
     "ALTER TABLE events ADD PRIMARY KEY (clinic, patient, at, seq);"
     "DROP INDEX events_by_patient;"},
    /* 15 -> 16, as store_sql.c's step: the alerts open now by (clinic, key)
     * (open_alerts), whose primary key keeps a key's openings and
     * resolutions alternating: an opening's insert of its row waits for a
     * concurrent one of the same key (another worker's) and then does
     * nothing, so a transition is refused by the index, not by a read that
     * two writers could both pass. Filled from the openings nothing came
     * after. */
    {15, 16,
     "CREATE TABLE open_alerts("
     "  clinic text COLLATE \"C\" NOT NULL, key text COLLATE \"C\" NOT NULL,"
     "  alert bigint NOT NULL, patient text COLLATE \"C\" NOT NULL,"
     "  PRIMARY KEY(clinic, key)) PARTITION BY HASH (clinic);"
     "DO $$ BEGIN"
     "  FOR i IN 0.." RG__STR(RG__PARTS) " - 1 LOOP"
     "    EXECUTE format('CREATE TABLE %I PARTITION OF open_alerts FOR VALUES WITH"
     " (MODULUS " RG__STR(RG__PARTS) ", REMAINDER %s)', 'open_alerts_p' || i, i);"
     "  END LOOP; END $$;"
     "INSERT INTO open_alerts SELECT o.clinic, o.key, o.seq, o.patient FROM transitions o"
     "  WHERE o.state = 'open' AND NOT EXISTS (SELECT 1 FROM transitions n"
     "  WHERE n.clinic = o.clinic AND n.key = o.key AND n.seq > o.seq"
     "  AND n.state <> 'reraised');"},
    /* 16 -> 17, as store_sql.c's step: the body kept once. A body that
     * begins with exactly the head its columns give back (rg_head:
     * {"id":..,"clinic":..,"patient":..,"type":..,"at":"..") keeps only the
     * rest after it, `}` or `,"data":...}` (rg_lean, on every insert);
     * readers get the whole body from rg_body. The three are SQL functions
     * of this schema, so what is cut off and what is put back are the same
     * text by construction (the SQLite store does the same in C). */
    {16, 17,
     "CREATE OR REPLACE FUNCTION rg_head(id text, clinic text, patient text, type text, at bigint,"
     "  off integer) RETURNS text LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $f$"
     " SELECT " RG__HEAD("id", "clinic", "patient", "type", "off", "l", "ms")
     " FROM " RG__LOCAL("at", "off") " b $f$;"
     "CREATE OR REPLACE FUNCTION rg_lean(body text, id text, clinic text, patient text, type text,"
     "  at bigint, off integer) RETURNS text LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $f$"
     " SELECT CASE WHEN starts_with(body, h) AND substr(body, length(h) + 1, 1) IN (',', '}')"
     "  THEN substr(body, length(h) + 1) ELSE body END"
     " FROM (SELECT rg_head(id, clinic, patient, type, at, off) AS h) x $f$;"
     "CREATE OR REPLACE FUNCTION rg_body(body text, id text, clinic text, patient text, type text,"
     "  at bigint, off integer) RETURNS text LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $f$"
     " SELECT CASE WHEN left(body, 1) IN (',', '}')"
     "  THEN rg_head(id, clinic, patient, type, at, off) || body ELSE body END $f$;"
     "UPDATE events SET body = rg_lean(body, id, clinic, patient, type, at, utc_offset);"},
    /* 17 -> 18, as store_sql.c's step: the digest is the SHA-256 of the
     * body truncated to 16 bytes (32 hex digits, RG__DIGEST16); whole ones
     * are cut to that, a damaged one (not 64 hex digits) stays for verify
     * to report. New rows' compiled fields use the varint tags (fields.h). */
    {17, 18,
     "UPDATE events SET digest = left(digest, 32) WHERE digest ~ '^[0-9a-f]{64}$';"},

    /* 18 -> 19, as store_sql.c's step: a patient's open alerts read from
     * open_alerts by (clinic, patient), each transition by its primary key,
     * instead of every opening the patient ever had through
     * transitions_open. */
    {18, 19, "CREATE INDEX open_alerts_by_patient ON open_alerts(clinic, patient, alert);"},

    /* 19 -> 20: nothing to change here. store_sql.c's step rewrites the
     * SQLite CHECK on a transition's state, which SQLite ran through an
     * ephemeral table at each insert; PostgreSQL tests an IN list of
     * constants directly. */
    {19, 20, "SELECT 1;"},

    /* 20 -> 21, as store_sql.c's step: one clinic's due patients read from
     * (clinic, next_wake), not from patients_by_wake filtered by clinic
     * (a page of one clinic cost every due patient of the clinics earlier in
     * wake order). patients_by_wake stays for the reads over every leased
     * clinic (P_PATIENTS_DUE, P_NEXT_WAKE, P_NEXT_DUE). */
    {20, 21, "CREATE INDEX patients_by_clinic_wake ON patients(clinic, next_wake)"
             " WHERE next_wake IS NOT NULL;"},
};
const size_t rg_pg_nsteps = sizeof rg_pg_steps / sizeof rg_pg_steps[0];

/* See RG__STILL_OPEN in store_sql.c: one lookup of open_alerts' primary
 * key (schema 16); `also`: more of the lookup's conditions on k. */
#define RG__STILL_OPEN(o, also)                                                             \
    "EXISTS (SELECT 1 FROM open_alerts k WHERE k.clinic = " o ".clinic AND k.key = " o \
    ".key AND k.alert = " o ".seq" also ")"

#define RG__TRANSITION_COLS                                                                 \
    "seq, at, state, clinic, patient, key, protocol, version, rule, severity, message, due," \
    " params, evidence, cseq, coalesce(notify_at, at), cause"

/* An event row as rg__col_event reads it; WIDE adds the body (pg.c derives
 * data from it: v12 keeps no second copy), version, corrected_by
 * (store_sql.c's RG__EV_COLS and RG__EV_WIDE). */
#define RG__EV_COLS "seq, at, id, type, fields, replaces, corrected_at, status"
/* An event's whole body from its row (v17 keeps the rest after the head). */
#define RG__BODY(e)                                                                       \
    "rg_body(" e "body, " e "id, " e "clinic, " e "patient, " e "type, " e "at, " e "utc_offset)"
#define RG__EV_WIDE RG__EV_COLS ", " RG__BODY("") ", version, corrected_by"
/* An event row as stored (rg_event_row; store_sql.c's RG__EV_ROW); data
 * (NULL here) is derived from the body by pg.c. */
#define RG__EV_ROW                                                                          \
    "seq, version, at, clinic, id, patient, type, NULL::text, " RG__BODY("") ", digest,"     \
    " fields, status,"                                                                      \
    " corrected_at, corrected_by"
/* rg_lean(body, ...) written out in the statement, with h its head
 * (rg_head's value, worked out once): the same text as the schema's rg_lean.
 * Called as a function, rg_lean runs its subquery through PostgreSQL's SQL
 * function executor on every row (a function with a FROM is never inlined):
 * 730 us a row against 20 us for rg_head alone here, most of simulate
 * --db's and ingest's server time (bench/profile.md, 2026-12-07, sweep and
 * simulate on PostgreSQL). */
#define RG__CUT(body, h)                                                                   \
    "CASE WHEN starts_with(" body ", " h ") AND substr(" body ", length(" h ") + 1, 1)"   \
    " IN (',', '}') THEN substr(" body ", length(" h ") + 1) ELSE " body " END"
/* What a one-event insert keeps of the body given as parameter b (v17). */
#define RG__LEAN(b)                                                                       \
    "(SELECT " RG__CUT(b "::text", "h") " FROM (SELECT rg_head($2, $1, $3, $4, $5::bigint,"  \
    " $6::integer) AS h) x)"
/* Row e is its id's current version: no later version was stored. */
#define RG__CURRENT(e)                                                                     \
    "NOT EXISTS (SELECT 1 FROM events n WHERE n.clinic = " e ".clinic AND n.id = " e ".id" \
    " AND n.version > " e ".version)"
/* The current version of (clinic $1, id $2) as rg__decide reads it. */
#define RG__CURRENT_OF                                                                   \
    "SELECT seq, version, patient, type, " RG__BODY("") " FROM events WHERE clinic = $1"  \
    " AND id = $2"                                                                       \
    " ORDER BY version DESC LIMIT 1"
/* Schedules the patient of the rows of e at `at` (store_sql.c's
 * Q_PATIENT_SCHEDULE): at its instant, or at its clock if that is later. */
#define RG__SCHEDULE(select)                                                             \
    " p AS (INSERT INTO patients(clinic, patient, next_wake) " select                    \
    "  ON CONFLICT (clinic, patient) DO UPDATE SET next_wake ="                          \
    "  LEAST(coalesce(patients.next_wake, 9223372036854775807),"                         \
    "  GREATEST(excluded.next_wake, coalesce(patients.clock, excluded.next_wake))),"     \
    "  scheduled = patients.scheduled + 1)"

/* The clinic's counter `name`, one more, locked to the end of the transaction. */
#define RG__NEXT(clinic, name)                                                          \
    "INSERT INTO counters(clinic, name, value) VALUES(" clinic ", '" name "', 1)"      \
    " ON CONFLICT (clinic, name) DO UPDATE SET value = counters.value + 1 RETURNING value"

/* An alert as the service lists it (store_sql.c's RG__ALERTS_VIEW, as a
 * subquery v so that its state can be filtered); P_ALERTS_VIEW and
 * P_ALERT_BY_KEY add their WHERE. */
#define RG__ALERTS_VIEW                                                                            \
    "SELECT * FROM (SELECT o.seq, o.key,"                                                          \
    " CASE WHEN r.seq IS NULL THEN 'open' ELSE 'resolved' END AS st,"                              \
    " o.patient, o.protocol, o.version, o.rule, o.severity, o.message, o.at, o.due, r.at,"         \
    " a.acked_by, a.acked_at, a.snoozed_until, coalesce(o.notify_at, o.at) FROM transitions o"     \
    " LEFT JOIN transitions r ON r.clinic = o.clinic AND r.key = o.key AND r.alert_id = o.seq"     \
    " AND r.state = 'resolved'"                                                                    \
    " LEFT JOIN alerts a ON a.clinic = o.clinic AND a.id = o.seq"

/* P_PATIENTS_PUT_MANY, also the first statement of rg_pg_txs_fn (whose
 * first eight parameters are its $1..$8) */
#define RG__PUTS_MANY                                                                       \
    "INSERT INTO patients(clinic, patient, clock, wake, next_wake, last_seq, scheduled,"   \
    " failing) SELECT * FROM unnest($1::text[], $2::text[], $3::bigint[], $4::bigint[],"   \
    " $5::bigint[], $6::bigint[], $7::bigint[], $8::bigint[])"                             \
    " ON CONFLICT (clinic, patient) DO UPDATE SET"                                         \
    " clock = excluded.clock, wake = excluded.wake, next_wake = CASE WHEN"                 \
    " patients.scheduled = excluded.scheduled THEN excluded.next_wake"                     \
    " ELSE LEAST(excluded.next_wake, patients.next_wake) END, last_seq = excluded.last_seq," \
    " failing = excluded.failing"

const char *const rg_pg_sql[P__COUNT] = {
    /* One round trip: the event's number, the event as its id's first
     * stored version (whatever its number: replaces 0, stored only when the
     * id is new), its patient scheduled at its instant when it was stored;
     * then its seq when stored, else the id's current version to decide
     * against (columns 1-5; NULL when another transaction stored it
     * meanwhile: P_EVENT_CURRENT reads it then). */
    [P_EVENT_INSERT] =
        "WITH c AS (" RG__NEXT("$1::text", "event") "),"
        " e AS (INSERT INTO events(clinic, seq, id, patient, type, at, utc_offset, body,"
        "  received, fields, version, status, corrected_at, corrected_by, digest)"
        "  SELECT $1, c.value, $2, $3, $4, $5::bigint, $6::integer, " RG__LEAN("$7") ","
        "  $8::bigint, $9::bytea, $10::bigint, $11, $12::bigint, $13, " RG__DIGEST16("$7::text")
        "  FROM c"
        "  ON CONFLICT (clinic, id, replaces) DO NOTHING RETURNING seq),"
        RG__SCHEDULE("SELECT $1, $3, $5 FROM e")
        " SELECT (SELECT seq FROM e), x.*, (SELECT count(pg_notify(" RG__CHANNEL ", $1))"
        "  FROM e) FROM (SELECT 1) o LEFT JOIN (" RG__CURRENT_OF ") x ON true",
    /* A correction: the version that replaces row $15, unless another
     * transaction replaced it first (then nothing: rg__put_known decides
     * again); its patient scheduled at its corrected_at. */
    [P_EVENT_INSERT_VERSION] =
        "WITH c AS (" RG__NEXT("$1::text", "event") "),"
        " e AS (INSERT INTO events(clinic, seq, id, patient, type, at, utc_offset, body,"
        "  received, fields, version, status, corrected_at, corrected_by, replaces, digest)"
        "  SELECT $1, c.value, $2, $3, $4, $5::bigint, $6::integer, " RG__LEAN("$7") ","
        "  $8::bigint, $9::bytea, $10::bigint, $11, $12::bigint, $13, $14::bigint, "
        RG__DIGEST16("$7::text")
        "  FROM c"
        "  ON CONFLICT (clinic, id, replaces) DO NOTHING RETURNING seq),"
        RG__SCHEDULE("SELECT $1, $3, $12::bigint FROM e")
        " SELECT (SELECT seq FROM e), (SELECT count(pg_notify(" RG__CHANNEL ", $1)) FROM e)",
    [P_EVENT_CURRENT] = RG__CURRENT_OF,
    [P_EVENT_VERSION_BODY] =
        "SELECT " RG__BODY("") " FROM events WHERE clinic = $1 AND id = $2 AND version = $3",
    [P_EVENT_VERSIONS] = "SELECT " RG__EV_WIDE " FROM events WHERE clinic = $1 AND id = $2"
                         " ORDER BY version",
    [P_CORRECTIONS] =
        "SELECT c.seq, c.at, c.id, c.type, c.fields, c.replaces, c.corrected_at, c.status, " RG__BODY("c.") ","
        " c.version, c.corrected_by, r.seq, r.at, r.id, r.type, r.fields, r.replaces,"
        " r.corrected_at, r.status, " RG__BODY("r.") ", r.version, r.corrected_by"
        " FROM events c JOIN events r ON r.clinic = c.clinic AND r.id = c.id"
        " AND r.seq = c.replaces"
        " WHERE c.clinic = $1 AND c.patient = $2 AND c.replaces <> 0 AND c.corrected_at > $3"
        " AND c.corrected_at <= $4 ORDER BY c.corrected_at, c.seq",
    /* Many events in one round trip (ingest's batches): the rows come as
     * arrays, numbered per clinic in their order (ord), inserted in that
     * order so that of two with one id the first is stored; each patient is
     * scheduled once, at its earliest new event (the same as scheduling at
     * each: the clock does not move meanwhile). Answers the ord of each row
     * stored; the others are duplicates or conflicts, told apart after.
     * $14: each body's digest (RG__DIGEST16's text, worked out by pg.c from
     * the same bytes: sha256 of every body cost the server 1-4 us of CPU an
     * event, bench/profile.md, session 3). */
    [P_EVENTS_INSERT] =
        "WITH v AS (SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[],"
        "  $5::bigint[], $6::integer[], $7::text[], $8::bytea[], $9::bigint[],"
        "  $10::text[], $11::bigint[], $12::text[], $14::text[]) WITH ORDINALITY"
        "  AS v(clinic, id, patient, type, at, utc_offset, body, fields, version, status,"
        "  corrected_at, corrected_by, digest, ord)),"
        " n AS (SELECT clinic, count(*) AS k FROM v GROUP BY clinic ORDER BY clinic),"
        " c AS (INSERT INTO counters(clinic, name, value) SELECT clinic, 'event', k FROM n"
        "  ON CONFLICT (clinic, name) DO UPDATE SET value = counters.value + excluded.value"
        "  RETURNING clinic, value),"
        " s AS (SELECT v.*, c.value - n.k + row_number() OVER (PARTITION BY v.clinic"
        "  ORDER BY v.ord) AS seq, "
        RG__HEAD("v.id", "v.clinic", "v.patient", "v.type", "v.utc_offset", "t.l", "t.ms")
        " AS h FROM v JOIN n USING (clinic) JOIN c USING (clinic),"
        " LATERAL " RG__LOCAL("v.at", "v.utc_offset") " t),"
        " e AS (INSERT INTO events(clinic, seq, id, patient, type, at, utc_offset, body,"
        "  received, fields, version, status, corrected_at, corrected_by, digest)"
        "  SELECT clinic, seq, id, patient, type, at, utc_offset,"
        "  " RG__CUT("body", "h") ", $13::bigint,"
        "  fields, version, status, corrected_at, corrected_by, digest"
        "  FROM s ORDER BY ord"
        "  ON CONFLICT (clinic, id, replaces) DO NOTHING RETURNING clinic, seq, patient, at),"
        RG__SCHEDULE("SELECT clinic, patient, min(at) FROM e GROUP BY clinic, patient")
        " SELECT s.ord, (SELECT count(pg_notify(" RG__CHANNEL ", x.clinic))"
        "  FROM (SELECT DISTINCT clinic FROM e) x) FROM s JOIN e USING (clinic, seq)",
    [P_REJECT] = "INSERT INTO rejected(received, source, line, field, reason, raw)"
                 " VALUES($1, $2, $3, $4, $5, $6)",
    [P_REJECTED_ALL] =
        "SELECT seq, received, source, line, field, reason, raw FROM rejected ORDER BY seq",
    [P_EVENTS_OF] = "SELECT " RG__EV_COLS " FROM events"
                    " WHERE clinic = $1 AND patient = $2 ORDER BY at, seq",
    [P_EVENTS_AFTER] = "SELECT " RG__EV_COLS " FROM events"
                       " WHERE clinic = $1 AND patient = $2 AND seq > $3 ORDER BY at, seq",
    /* the current versions, nothing of a retracted event */
    [P_EVENTS_OF_DATA] = "SELECT " RG__EV_WIDE " FROM events e"
                         " WHERE clinic = $1 AND patient = $2 AND " RG__CURRENT("e")
                         " AND (status IS NULL OR status <> 'entered-in-error') ORDER BY at, seq",
    [P_PATIENT_GET] = "SELECT clock, wake, next_wake, last_seq, scheduled, failing FROM patients"
                      " WHERE clinic = $1 AND patient = $2",
    /* scheduled moved since the evaluation read it (another worker stored
     * an event meanwhile): the earlier next_wake. When that worker's insert
     * holds the row, this waits for its commit and is then applied to the
     * row as committed (READ COMMITTED), so the count is the newest. */
    [P_PATIENT_PUT] =
        "INSERT INTO patients(clinic, patient, clock, wake, next_wake, last_seq, failing)"
        " VALUES($1, $2, $3, $4, $5, $6, $8) ON CONFLICT (clinic, patient) DO UPDATE SET"
        " clock = excluded.clock, wake = excluded.wake, next_wake = CASE WHEN"
        " patients.scheduled = $7 THEN excluded.next_wake"
        " ELSE LEAST(excluded.next_wake, patients.next_wake) END, last_seq = excluded.last_seq,"
        " failing = excluded.failing",
    [P_PATIENTS_PAGE] = "SELECT clinic, patient FROM patients WHERE (clinic, patient) > ($1, $2)"
                        " ORDER BY clinic, patient LIMIT $3",
    [P_PATIENTS_DUE_PAGE] =
        "SELECT clinic, patient FROM patients WHERE (clinic, patient) > ($1, $2)"
        " AND next_wake <= $4 AND ($5::text[] IS NULL OR clinic = ANY($5::text[])) ORDER BY clinic, patient LIMIT $3",
    [P_PATIENTS_DUE] =
        "SELECT clinic, patient FROM (SELECT clinic, patient FROM patients"
        " WHERE next_wake <= $1 AND ($3::text[] IS NULL OR clinic = ANY($3::text[])) ORDER BY next_wake LIMIT $2) d"
        " ORDER BY clinic, patient",
    /* one clinic's ($3, the service's wake-up job): its partition, through
     * patients_by_clinic_wake (schema 21) */
    [P_CLINIC_DUE] =
        "SELECT clinic, patient FROM (SELECT clinic, patient FROM patients"
        " WHERE clinic = $3 AND next_wake <= $1 ORDER BY next_wake LIMIT $2) d"
        " ORDER BY clinic, patient",
    [P_NEXT_WAKE] = "SELECT min(next_wake) FROM patients WHERE next_wake IS NOT NULL"
                    " AND ($1::text[] IS NULL OR clinic = ANY($1::text[]))",
    [P_OPEN_ALERTS] =
        "SELECT t.seq, t.at, t.due, t.key, t.protocol, t.version, t.rule, t.severity, t.message,"
        " t.seq, t.params, t.evidence, t.cseq FROM open_alerts k JOIN transitions t"
        " ON t.clinic = k.clinic AND t.seq = k.alert WHERE k.clinic = $1 AND k.patient = $2"
        " ORDER BY k.alert",
    [P_KEY_LAST] = "SELECT seq, state FROM transitions WHERE clinic = $1 AND key = $2"
                   " AND state <> 'reraised' ORDER BY seq DESC LIMIT 1",
    /* One round trip, no read before it: the key's row in open_alerts is
     * the guard (openings and resolutions of a key alternate; a resolution
     * or a re-raise names the key's open alert, $1). An opening adds it
     * (k: nothing when the key is open, after waiting for a concurrent
     * writer of the same key), a resolution takes it out (d), a re-raise
     * locks it (u); the clinic's counter moves and the row goes in only
     * when one of them found its row. A refused transition answers no row
     * and writes nothing (its seq, s, is skipped: seq has gaps). */
    [P_TRANSITION] =
        "WITH s AS (SELECT nextval('transition_seq') AS n),"
        " k AS (INSERT INTO open_alerts(clinic, key, alert, patient) SELECT $4, $6, s.n, $5"
        "  FROM s WHERE $3 = 'open' ON CONFLICT (clinic, key) DO NOTHING RETURNING alert),"
        " d AS (DELETE FROM open_alerts WHERE $3 = 'resolved' AND clinic = $4 AND key = $6"
        "  AND alert = $1::bigint RETURNING alert),"
        " u AS (UPDATE open_alerts SET alert = alert WHERE $3 = 'reraised' AND clinic = $4"
        "  AND key = $6 AND alert = $1::bigint RETURNING alert),"
        " g AS (SELECT alert FROM k UNION ALL SELECT alert FROM d UNION ALL SELECT alert FROM u),"
        " c AS (INSERT INTO counters(clinic, name, value) SELECT $4::text, 'cseq', 1 FROM g"
        "  ON CONFLICT (clinic, name) DO UPDATE SET value = counters.value + 1 RETURNING value),"
        " t AS ("
        " INSERT INTO transitions(seq, alert_id, at, state, clinic, patient, key, protocol,"
        " version, rule, severity, message, due, params, evidence, recorded, cseq, notify_at,"
        " cause)"
        " SELECT s.n, $1::bigint, $2::bigint, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12::bigint,"
        " $13, $14, $15::bigint, c.value, $16::bigint, $17 FROM c, s RETURNING seq, cseq)"
        " SELECT seq, cseq, pg_notify(" RG__CHANNEL ", $4) FROM t",
    /* in no order: pg.c sorts them by seq or by (at, seq) (rg_pg_each_transition) */
    [P_TRANSITIONS_AFTER] = "SELECT " RG__TRANSITION_COLS " FROM transitions WHERE seq > $1",
    [P_CLINIC_TRANSITIONS] = "SELECT " RG__TRANSITION_COLS " FROM transitions"
                             " WHERE clinic = $1 AND cseq > $2 ORDER BY cseq LIMIT $3",
    [P_ALERTS_VIEW] = RG__ALERTS_VIEW
        " WHERE o.clinic = $1 AND o.state = 'open' AND ($2::text IS NULL OR o.patient = $2)"
        " AND ($4::text IS NULL OR o.key = $4) AND o.seq > $6) v"
        " WHERE ($3::text IS NULL OR v.st = $3) ORDER BY v.seq LIMIT $5",
    [P_ALERT_ACK] = "INSERT INTO alerts(clinic, id, acked_by, acked_at) VALUES($1, $2, $3, $4)"
                    " ON CONFLICT (clinic, id) DO UPDATE SET acked_by = excluded.acked_by,"
                    " acked_at = excluded.acked_at",
    [P_ALERT_SNOOZE] = "WITH x AS (INSERT INTO alerts(clinic, id, snoozed_until)"
                       " VALUES($1, $2, $3) ON CONFLICT (clinic, id) DO UPDATE SET"
                       " snoozed_until = excluded.snoozed_until RETURNING clinic)"
                       " SELECT pg_notify(" RG__CHANNEL ", clinic) FROM x",
    [P_ALERT_UNSNOOZE] = "UPDATE alerts SET snoozed_until = NULL WHERE clinic = $1 AND id = $2",
    [P_ACTION_ADD] = "INSERT INTO alert_actions(alert_id, clinic, key, action, who, note,"
                     " \"until\", at) VALUES($1, $2, $3, $4, $5, $6, $7, $8)",
    [P_ACTIONS_OF] = "SELECT action, who, note, \"until\", at FROM alert_actions"
                     " WHERE clinic = $1 AND key = $2 ORDER BY seq",
/* The leased clinics named on every table of the join, not only on alerts:
 * the custom plan then keeps one partition of transitions and of open_alerts
 * for a worker's one clinic instead of all eight (their clinic follows from
 * the join, which the planner does not prune by): the timer's read is made
 * after every group, and its planning cost the server more than any
 * statement's execution on pings (bench/profile.md, session 5). */
#define RG__LEASED_ON(leased, col) " AND (" leased "::text[] IS NULL OR " col " = ANY(" leased "::text[]))"
#define RG__NEXT_SNOOZE(leased)                                                             \
    "SELECT min(a.snoozed_until) FROM alerts a JOIN transitions o"                          \
    " ON o.clinic = a.clinic AND o.seq = a.id"                                              \
    " WHERE a.snoozed_until IS NOT NULL AND "                                               \
    RG__STILL_OPEN("o", RG__LEASED_ON(leased, "k.clinic"))                                  \
    RG__LEASED_ON(leased, "a.clinic") RG__LEASED_ON(leased, "o.clinic")
    /* the timer's two reads in one statement (rg_store_next_due) */
    [P_NEXT_DUE] = "SELECT (SELECT min(next_wake) FROM patients WHERE next_wake IS NOT NULL"
                   " AND ($1::text[] IS NULL OR clinic = ANY($1::text[]))"
                   " AND clinic || '/' || patient NOT IN (SELECT unnest($2::text[]))),"
                   " (" RG__NEXT_SNOOZE("$1") ")",
    [P_NEXT_SNOOZE] = RG__NEXT_SNOOZE("$1"),
    [P_DUE_SNOOZES] = "SELECT o.seq, o.clinic, o.key, o.patient FROM alerts a JOIN transitions o"
                      " ON o.clinic = a.clinic AND o.seq = a.id WHERE a.snoozed_until <= $1 AND "
                      RG__STILL_OPEN("o", RG__LEASED_ON("$2", "k.clinic"))
                      RG__LEASED_ON("$2", "a.clinic") RG__LEASED_ON("$2", "o.clinic")
                      " ORDER BY a.snoozed_until LIMIT 256",
    [P_WAKE_CLINIC] =
        "UPDATE patients SET wake = $2, next_wake = LEAST(coalesce(next_wake, $2), $2),"
        " scheduled = scheduled + 1 WHERE clinic = $1 AND (clock IS NULL OR clock < $2)"
        " AND ($3 = 0 OR failing > 0)",
    [P_OPEN_BY_SEVERITY] =
        "SELECT k.clinic, o.severity, count(*) FROM open_alerts k JOIN transitions o"
        " ON o.clinic = k.clinic AND o.seq = k.alert WHERE ($1::text IS NULL OR k.clinic = $1)"
        " GROUP BY k.clinic, o.severity ORDER BY k.clinic, o.severity",
    [P_EVAL_ERROR] = "INSERT INTO eval_errors(clinic, patient, protocol, rule, at, message,"
                     " recorded) VALUES($1, $2, $3, $4, $5, $6, $7)",
    [P_FAILING_ADD] = "INSERT INTO failing_rules(clinic, protocol, rule, patient, since, message)"
                      " VALUES($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING RETURNING 1",
    [P_FAILING_DEL] = "DELETE FROM failing_rules WHERE clinic = $1 AND protocol = $2"
                      " AND rule = $3 AND patient = $4 RETURNING 1",
    [P_FAILING_COUNT] = "SELECT count(*), min(since) FROM failing_rules WHERE clinic = $1"
                        " AND protocol = $2 AND rule = $3",
    [P_FAILING_OF] = "SELECT protocol, rule FROM failing_rules WHERE clinic = $1 AND patient = $2"
                     " ORDER BY protocol, rule",
    [P_FAILING_ALL] = "SELECT clinic, protocol, rule, count(*), min(since), min(message)"
                      " FROM failing_rules GROUP BY clinic, protocol, rule"
                      " ORDER BY clinic, protocol, rule",
    [P_PROTOCOL_LOADED] = "INSERT INTO protocol_versions(clinic, protocol, version, file, hash,"
                          " first_loaded) VALUES($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING",
    /* the counter is the last cseq: the sequence has no gaps */
    [P_LAST_CSEQ] = "SELECT coalesce((SELECT value FROM counters"
                    " WHERE clinic = $1 AND name = 'cseq'), 0)",
    [P_AUDIT_CHAIN] = "SELECT base_seq, base_hash, tip_seq, tip_hash, archived_at FROM audit_chain",
    [P_AUDIT_CHAIN_LOCK] = "SELECT base_seq, base_hash, tip_seq, tip_hash, archived_at"
                           " FROM audit_chain FOR UPDATE",
    /* an entry and the chain's new tip in one statement */
    [P_AUDIT_INSERT] = "WITH i AS (INSERT INTO audit(seq, at, who, role, address, clinic, patients,"
                       " route, outcome, prev, hash) VALUES($1, $2, $3, $4, $5, $6, $7, $8, $9,"
                       " $10, $11)) UPDATE audit_chain SET tip_seq = $1, tip_hash = $11",
    /* P_AUDIT_INSERT for the entries of one transaction, in one statement
     * (the chain's tip: the last one's seq and hash, $12 and $13), the
     * chain's row locked; when the first was chained from a tip not read
     * under the lock ($14 and $15, else NULL), only if that is still the
     * tip. Answers whether they went in, and the tip it found. */
    [P_AUDIT_INSERT_MANY] =
        "WITH c AS (SELECT tip_seq, tip_hash FROM audit_chain FOR UPDATE),"
        " g AS (SELECT $14::bigint IS NULL OR (c.tip_seq = $14 AND c.tip_hash = $15) AS ok"
        "  FROM c),"
        " i AS (INSERT INTO audit(seq, at, who, role, address, clinic, patients, route,"
        " outcome, prev, hash) SELECT * FROM unnest($1::bigint[], $2::bigint[], $3::text[],"
        " $4::text[], $5::text[], $6::text[], $7::text[], $8::text[], $9::text[], $10::text[],"
        " $11::text[]) WHERE (SELECT ok FROM g)),"
        " u AS (UPDATE audit_chain SET tip_seq = $12, tip_hash = $13 WHERE (SELECT ok FROM g))"
        " SELECT g.ok, c.tip_seq, c.tip_hash FROM g, c",
    /* patients is a JSON array of ids */
    [P_AUDIT_EACH] =
        "SELECT seq, at, who, role, address, clinic, patients, route, outcome, prev, hash"
        " FROM audit WHERE seq > $1::bigint AND ($2::text IS NULL OR clinic = $2)"
        " AND ($3::text IS NULL OR who = $3) AND ($4::bigint IS NULL OR at >= $4)"
        " AND ($5::text IS NULL OR patients::jsonb ? $5) ORDER BY seq LIMIT $6",
    [P_AUDIT_LAST_BEFORE] = "SELECT seq, hash FROM audit WHERE at < $1 ORDER BY seq DESC LIMIT 1",
    [P_AUDIT_DELETE] = "DELETE FROM audit WHERE seq <= $1",
    [P_AUDIT_BASE] = "UPDATE audit_chain SET base_seq = $1, base_hash = $2, archived_at = $3",
    [P_HOOK_GET] = "SELECT delivered, attempts FROM webhook_cursor WHERE clinic = $1",
    [P_HOOK_DELIVERED] =
        "INSERT INTO webhook_cursor(clinic, delivered, attempts, last_error, updated)"
        " VALUES($1, $2, 0, NULL, $3) ON CONFLICT (clinic) DO UPDATE SET"
        " delivered = excluded.delivered, attempts = 0, last_error = NULL,"
        " updated = excluded.updated",
    [P_HOOK_FAILED] =
        "INSERT INTO webhook_cursor(clinic, delivered, attempts, last_error, updated)"
        " VALUES($1, 0, 1, $2, $3) ON CONFLICT (clinic) DO UPDATE SET"
        " attempts = webhook_cursor.attempts + 1, last_error = excluded.last_error,"
        " updated = excluded.updated",
    /* the first undelivered transition whose notification time has come */
    [P_HOOK_NEXT] =
        "SELECT " RG__TRANSITION_COLS " FROM transitions t WHERE clinic = $1 AND cseq > $2"
        " AND coalesce(notify_at, at) <= $3 AND NOT EXISTS (SELECT 1 FROM webhook_ahead w"
        " WHERE w.clinic = $1 AND w.cseq = t.cseq) ORDER BY cseq LIMIT 1",
    [P_HOOK_WAIT] = "SELECT min(notify_at) FROM transitions WHERE clinic = $1 AND cseq > $2"
                    " AND notify_at > $3",
    [P_HOOK_AHEAD_ADD] =
        "INSERT INTO webhook_ahead(clinic, cseq) VALUES($1, $2) ON CONFLICT DO NOTHING",
    [P_HOOK_AHEAD_TAKE] = "DELETE FROM webhook_ahead WHERE clinic = $1 AND cseq = $2",
    [P_EVENT_GET] = "SELECT " RG__EV_WIDE " FROM events WHERE clinic = $1 AND id = $2"
                    " ORDER BY version DESC LIMIT 1",
    /* a key's transitions in one clinic, through transitions_by_key */
    [P_KEY_TRANSITIONS] = "SELECT " RG__TRANSITION_COLS " FROM transitions"
                          " WHERE clinic = $1 AND key = $2 ORDER BY seq",
    /* the clinics that have a key (the operator's `regimen explain KEY`) */
    [P_KEY_CLINICS] = "SELECT DISTINCT clinic FROM transitions WHERE key = $1 ORDER BY clinic",
    /* events as stored, for verify.c: all of them in (clinic, patient, at,
     * seq) order (the primary key since v12), and one event's versions */
    [P_EVENT_ROWS] = "SELECT " RG__EV_ROW " FROM events WHERE (clinic, patient, at, seq) >"
                     " ($1, $4, $5::bigint, $2::bigint) ORDER BY clinic, patient, at, seq LIMIT $3",
    [P_EVENT_ROWS_OF] = "SELECT " RG__EV_ROW " FROM events WHERE clinic = $1 AND id = $2"
                        " ORDER BY version",
    /* P_ALERTS_VIEW for one key, by transitions_by_key (store_sql.c) */
    [P_ALERT_BY_KEY] = RG__ALERTS_VIEW
        " WHERE o.clinic = $1 AND o.key = $4 AND o.state = 'open'"
        " AND ($2::text IS NULL OR o.patient = $2) AND o.seq > $6) v"
        " WHERE ($3::text IS NULL OR v.st = $3) ORDER BY v.seq LIMIT $5",
    /* A group's inputs in one statement (one snapshot) for every patient the
     * evaluation thread is about to evaluate ($2: their names; $3: for each,
     * the event seq its history cache holds up to, -1 for none): the rows of
     * P_PATIENT_GET (kind 1), P_EVENTS_AFTER (2) and P_OPEN_ALERTS (3), each
     * led by its patient and its kind, a kind's columns at places of their
     * own (pg.c's RG__PRE_STATE, RG__PRE_EVENT, RG__PRE_ALERT), NULL in the
     * others'. In no order: pg.c puts them in kind, patient ("C" collation:
     * strcmp's) and (at, seq) or alert order (rg__order), which the plan
     * usually gives already: each patient's events by its own scan of the
     * primary key, in key order (OFFSET 0: never one hash join of the
     * clinic's events and a sort of the wide rows, which cost the server
     * more than the reads did, bench/profile.md). */
    [P_BATCH_ALL] =
        "SELECT patient, 1 AS kind, clock::bigint AS s1, wake::bigint AS s2,"
        " next_wake::bigint AS s3, last_seq::bigint AS s4, scheduled::bigint AS s5,"
        " failing::bigint AS s6, NULL::bigint AS e1, NULL::bigint AS e2, NULL::text AS e3,"
        " NULL::text AS e4, NULL::bytea AS e5, NULL::bigint AS e6, NULL::bigint AS e7,"
        " NULL::text AS e8, NULL::bigint AS a1, NULL::bigint AS a2, NULL::bigint AS a3,"
        " NULL::text AS a4, NULL::text AS a5, NULL::text AS a6, NULL::text AS a7,"
        " NULL::text AS a8, NULL::text AS a9, NULL::bigint AS a10, NULL::text AS a11,"
        " NULL::text AS a12, NULL::bigint AS a13"
        " FROM patients WHERE clinic = $1 AND patient = ANY($2::text[])"
        " UNION ALL SELECT e.patient, 2, NULL, NULL, NULL, NULL, NULL, NULL,"
        " e.seq, e.at, e.id, e.type, e.fields, e.replaces::bigint, e.corrected_at::bigint,"
        " e.status::text, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,"
        " NULL FROM unnest($2::text[], $3::bigint[]) AS p(pp, pa) CROSS JOIN LATERAL"
        " (SELECT e.patient, e.seq, e.at, e.id, e.type, e.fields, e.replaces, e.corrected_at,"
        " e.status FROM events e WHERE e.clinic = $1 AND e.patient = p.pp AND e.seq > p.pa"
        " ORDER BY e.at, e.seq OFFSET 0) e"
        " UNION ALL SELECT t.patient, 3, NULL, NULL, NULL, NULL, NULL, NULL, NULL,"
        " NULL, NULL, NULL, NULL, NULL, NULL, NULL, t.seq, t.at, t.due::bigint, t.key, t.protocol,"
        " t.version, t.rule, t.severity, t.message, t.seq, t.params, t.evidence, t.cseq"
        " FROM open_alerts k JOIN transitions t ON t.clinic = k.clinic AND t.seq = k.alert"
        " WHERE k.clinic = $1 AND k.patient = ANY($2::text[])",
    /* P_PATIENT_PUT for many patients (each once) in one statement: the
     * count of schedulings each evaluation read rides in the scheduled
     * column, which an update leaves as it is (a new row starts with it:
     * the patient was not there when read, so it is 0) */
    [P_PATIENTS_PUT_MANY] = RG__PUTS_MANY,
    /* a clinic's due patients, counted up to a bound (back-pressure) */
    [P_DUE_COUNT] = "SELECT count(*) FROM (SELECT 1 FROM patients WHERE clinic = $1"
                    " AND next_wake <= $2 LIMIT $3) d",
    /* P_TRANSITION for many transitions in one statement, in array order,
     * after P_PATIENTS_PUT_MANY's patient states ($1..$8, NULL for none)
     * (rg_pg_txs_fn, a function of the session) */
    [P_TRANSITIONS_MANY] =
        "SELECT o, s, q FROM pg_temp.rg_transitions($1::text[], $2::text[], $3::bigint[],"
        " $4::bigint[], $5::bigint[], $6::bigint[], $7::bigint[], $8::bigint[],"
        " $9::text[], $10::bigint[], $11::bigint[],"
        " $12::text[], $13::text[], $14::text[], $15::text[], $16::text[], $17::text[], $18::text[],"
        " $19::text[], $20::bigint[], $21::text[], $22::text[], $23::bigint[], $24::bigint[],"
        " $25::text[], $26::boolean)",
};

/* P_TRANSITION for each element of the arrays (one round trip for a group's
 * transitions), made in each session's own temporary schema at connect: no
 * schema change. First the patient states of its first eight arrays, when
 * given (P_PATIENTS_PUT_MANY's statement: a group's states and transitions
 * are one statement). The guard (open_alerts) in two statements whatever the
 * call holds. First every key's first row of the call against what is
 * stored, one statement for the three kinds (openings, resolutions,
 * re-raises), whose rows must all take; then a key met more than once is
 * checked against its row before in the call (an opening after a
 * resolution, a resolution or a re-raise of the alert open then), which
 * the first statement already held against the store, and its open_alerts
 * row set once to what its last row leaves (the rows are this
 * transaction's: the first statement inserted, deleted or locked them). An
 * alert id below 0 names the opening at that position (1-based) of the same
 * call. A call that breaks the alternation raises (the transaction fails,
 * as the caller's check of the answer's count made it before). Round by
 * round (every key's r-th row, a statement each) this cost simulate --db a
 * statement per round, 5.2 of its 8.3 s in the function (bench/profile.md).
 * Then the rows in one statement: each clinic's cseq counter moved once by
 * its count (clinics in order, as the events' insert takes its counters),
 * the rows numbered from it in array order, so still one number a
 * transition and no gaps; one NOTIFY per clinic. Row by row (a counter
 * update, an insert and a NOTIFY each) this was 150 us a transition of the
 * sweep's server time (bench/profile.md). */
const char rg_pg_txs_fn[] =
    "CREATE FUNCTION pg_temp.rg_transitions(p_clinic text[], p_patient text[], p_clock bigint[],"
    " p_wake bigint[], p_next bigint[], p_last bigint[], p_scheduled bigint[], p_failing bigint[],"
    " a_clinic text[], a_alert bigint[], a_at bigint[],"
    " a_state text[], a_patient text[], a_key text[], a_protocol text[], a_version text[],"
    " a_rule text[], a_severity text[], a_message text[], a_due bigint[], a_params text[],"
    " a_evidence text[], a_recorded bigint[], a_notify bigint[], a_cause text[], a_once boolean)"
    " RETURNS TABLE(o int, s bigint, q bigint) LANGUAGE plpgsql AS $f$"
    " #variable_conflict use_column\n"
    " DECLARE seqs bigint[]; aids bigint[] := '{}'; occ bigint[];"
    "  fst text[]; m int := coalesce(array_length(a_key, 1), 0); many bigint; bad bigint;"
    "  want bigint; got bigint;"
    " BEGIN"
    "  IF p_clinic IS NOT NULL THEN " RG__PUTS_MANY "; END IF;"
    "  IF m = 0 THEN RETURN; END IF;"
    /* the rows' seqs in array order, then the alert ids with an opening
     * of the call (below 0) replaced by its seq: in two statements, not a
     * PL/pgSQL loop of m steps (bench/profile.md) */
    "  SELECT array_agg(nextval('transition_seq') ORDER BY g) INTO seqs"
    "   FROM generate_series(1, m) g;"
    "  aids := ARRAY(SELECT CASE WHEN u.a < 0 THEN seqs[-u.a] ELSE u.a END"
    "   FROM unnest(a_alert) WITH ORDINALITY AS u(a, i) ORDER BY u.i);"
    /* occ[i]: row i is its key's occ[i]-th in the call; fst[i]: for the
     * last row of a key met more than once, the state of its first; bad:
     * the rows that do not follow the row before them of their key; when
     * the client knows no key is met twice (a_once), each row is its key's
     * first and only one, and nothing is searched */
    "  IF a_once THEN"
    "   occ := array_fill(1::bigint, ARRAY[m]); many := 0; bad := 0; want := m;"
    "  ELSE"
    "  SELECT array_agg(z.n ORDER BY z.ord), array_agg(CASE WHEN z.n = z.k AND z.k > 1"
    "   THEN z.f END ORDER BY z.ord), count(*) FILTER (WHERE z.n = z.k AND z.k > 1),"
    "   count(*) FILTER (WHERE z.n > 1 AND NOT coalesce(CASE WHEN z.st = 'open'"
    "   THEN z.ps = 'resolved' ELSE z.ps <> 'resolved' AND z.al = z.pa END, false))"
    "   INTO occ, fst, many, bad FROM (SELECT u.ord, u.st, u.al,"
    "   row_number() OVER w AS n, count(*) OVER (PARTITION BY u.c, u.k) AS k,"
    "   first_value(u.st) OVER w AS f, lag(u.st) OVER w AS ps,"
    "   lag(CASE WHEN u.st = 'open' THEN u.sq ELSE u.al END) OVER w AS pa"
    "   FROM unnest(a_clinic, a_key, seqs, aids, a_state) WITH ORDINALITY"
    "   AS u(c, k, sq, al, st, ord) WINDOW w AS (PARTITION BY u.c, u.k ORDER BY u.ord)) z;"
    "  SELECT count(*) INTO want FROM unnest(occ) AS u(n) WHERE u.n = 1;"
    "  END IF;"
    "  WITH u AS (SELECT * FROM unnest(a_clinic, a_key, seqs, aids, a_state, a_patient, occ)"
    "   AS u(c, k, sq, al, st, pa, n) WHERE u.n = 1),"
    "  a AS (INSERT INTO open_alerts(clinic, key, alert, patient) SELECT u.c, u.k, u.sq, u.pa"
    "   FROM u WHERE u.st = 'open' ON CONFLICT (clinic, key) DO NOTHING RETURNING 1),"
    "  d AS (DELETE FROM open_alerts oa USING u WHERE u.st = 'resolved' AND oa.clinic = u.c"
    "   AND oa.key = u.k AND oa.alert = u.al RETURNING 1),"
    "  e AS (UPDATE open_alerts oa SET alert = oa.alert FROM u"
    "   WHERE u.st NOT IN ('open', 'resolved') AND oa.clinic = u.c AND oa.key = u.k"
    "   AND oa.alert = u.al RETURNING 1)"
    "  SELECT (SELECT count(*) FROM a) + (SELECT count(*) FROM d) + (SELECT count(*) FROM e)"
    "   INTO got;"
    "  IF got <> want OR bad > 0 THEN"
    /* (the transaction fails: rg_pg_commit sends its COMMIT right behind) */
    "   RAISE EXCEPTION 'a transition was refused: its key''s last transition does not allow"
    " it (an opening of an open key, or a resolution of another alert)';"
    "  END IF;"
    /* a key met more than once: its row as its last leaves it (v: the alert
     * then open, NULL for none), from what its first left (f) */
    "  IF many > 0 THEN"
    "   WITH l AS (SELECT u.c, u.k, u.pa, u.f, CASE WHEN u.st = 'open' THEN u.sq"
    "    WHEN u.st = 'resolved' THEN NULL ELSE u.al END AS v FROM unnest(a_clinic, a_key,"
    "    seqs, aids, a_state, a_patient, fst) AS u(c, k, sq, al, st, pa, f)"
    "    WHERE u.f IS NOT NULL),"
    "   d AS (DELETE FROM open_alerts oa USING l WHERE l.v IS NULL AND l.f <> 'resolved'"
    "    AND oa.clinic = l.c AND oa.key = l.k),"
    "   e AS (UPDATE open_alerts oa SET alert = l.v FROM l WHERE l.v IS NOT NULL"
    "    AND l.f <> 'resolved' AND oa.clinic = l.c AND oa.key = l.k)"
    "   INSERT INTO open_alerts(clinic, key, alert, patient) SELECT l.c, l.k, l.v, l.pa FROM l"
    "    WHERE l.v IS NOT NULL AND l.f = 'resolved';"
    "  END IF;"
    "  RETURN QUERY WITH x AS (SELECT * FROM unnest(a_clinic, seqs, aids, a_at, a_state,"
    "   a_patient, a_key, a_protocol, a_version, a_rule, a_severity, a_message, a_due, a_params,"
    "   a_evidence, a_recorded, a_notify, a_cause) WITH ORDINALITY AS x(clinic, seq, alert, at,"
    "   state, patient, key, protocol, version, rule, severity, message, due, params, evidence,"
    "   recorded, notify_at, cause, ord)),"
    "  n AS (SELECT clinic, count(*) AS k FROM x GROUP BY clinic ORDER BY clinic),"
    "  c AS (INSERT INTO counters(clinic, name, value) SELECT clinic, 'cseq', k FROM n"
    "   ON CONFLICT (clinic, name) DO UPDATE SET value = counters.value + excluded.value"
    "   RETURNING clinic, value),"
    "  y AS (SELECT x.*, c.value - n.k + row_number() OVER (PARTITION BY x.clinic"
    "   ORDER BY x.ord) AS cseq FROM x JOIN n USING (clinic) JOIN c USING (clinic)),"
    "  w AS (INSERT INTO transitions(seq, alert_id, at, state, clinic, patient, key, protocol,"
    "   version, rule, severity, message, due, params, evidence, recorded, cseq, notify_at, cause)"
    "   SELECT seq, alert, at, state, clinic, patient, key, protocol, version, rule, severity,"
    "   message, due, params, evidence, recorded, cseq, notify_at, cause FROM y ORDER BY ord"
    "   RETURNING 1)"
    "  SELECT y.ord::int, y.seq, y.cseq FROM y WHERE (SELECT count(*) FROM w) >= 0"
    "   ORDER BY y.ord;"
    "  PERFORM pg_notify(" RG__CHANNEL ", d.clinic) FROM (SELECT DISTINCT unnest(a_clinic)"
    "   AS clinic) d;"
    " END $f$";
