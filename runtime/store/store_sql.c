/*
 * store_sql.c - the SQLite store's SQL (see store_sql.h): the schema as
 * migrations from version 0, and every statement sqlite.c prepares.
 * pg_sql.c holds the PostgreSQL twins, with the same version numbers.
 */
#include "store/store_sql.h"

const char *const rg_store_migrations[] = {
    /* 0 -> 1: the first schema */
    "CREATE TABLE events("
    "  seq INTEGER PRIMARY KEY,"
    "  clinic TEXT NOT NULL, id TEXT NOT NULL, patient TEXT NOT NULL, type TEXT NOT NULL,"
    "  at INTEGER NOT NULL, utc_offset INTEGER NOT NULL, data TEXT, body TEXT NOT NULL,"
    "  received INTEGER NOT NULL,"
    "  UNIQUE(clinic, id));"
    "CREATE INDEX events_by_patient ON events(clinic, patient, at, seq);"
    "CREATE TABLE rejected("
    "  seq INTEGER PRIMARY KEY, received INTEGER NOT NULL, source TEXT NOT NULL,"
    "  line INTEGER NOT NULL, field TEXT NOT NULL, reason TEXT NOT NULL, raw TEXT NOT NULL);"
    "CREATE TABLE patients("
    "  clinic TEXT NOT NULL, patient TEXT NOT NULL, clock INTEGER, wake INTEGER,"
    "  next_wake INTEGER, last_seq INTEGER NOT NULL DEFAULT 0,"
    "  PRIMARY KEY(clinic, patient)) WITHOUT ROWID;"
    "CREATE INDEX patients_by_wake ON patients(next_wake) WHERE next_wake IS NOT NULL;"
    "CREATE TABLE alerts("
    "  id INTEGER PRIMARY KEY, clinic TEXT NOT NULL, patient TEXT NOT NULL, key TEXT NOT NULL,"
    "  state TEXT NOT NULL CHECK(state IN ('open','resolved')),"
    "  opened_seq INTEGER NOT NULL, resolved_seq INTEGER);"
    "CREATE UNIQUE INDEX alerts_open ON alerts(clinic, key) WHERE state = 'open';"
    "CREATE INDEX alerts_by_patient ON alerts(clinic, patient, state);"
    "CREATE TABLE transitions("
    "  seq INTEGER PRIMARY KEY, alert_id INTEGER NOT NULL REFERENCES alerts(id),"
    "  at INTEGER NOT NULL, state TEXT NOT NULL, clinic TEXT NOT NULL, patient TEXT NOT NULL,"
    "  key TEXT NOT NULL, protocol TEXT NOT NULL, version TEXT NOT NULL, rule TEXT NOT NULL,"
    "  severity TEXT NOT NULL, message TEXT NOT NULL, due INTEGER NOT NULL,"
    "  params TEXT NOT NULL, evidence TEXT NOT NULL, recorded INTEGER NOT NULL);"
    "CREATE TABLE eval_errors("
    "  seq INTEGER PRIMARY KEY, clinic TEXT NOT NULL, patient TEXT NOT NULL,"
    "  protocol TEXT NOT NULL, rule TEXT NOT NULL, at INTEGER NOT NULL, message TEXT NOT NULL,"
    "  recorded INTEGER NOT NULL);"
    "CREATE TABLE protocol_versions("
    "  clinic TEXT NOT NULL, protocol TEXT NOT NULL, version TEXT NOT NULL, file TEXT NOT NULL,"
    "  hash TEXT NOT NULL, first_loaded INTEGER NOT NULL,"
    "  PRIMARY KEY(clinic, protocol, version, hash)) WITHOUT ROWID;",
    /* 1 -> 2: the service. A per-clinic transition sequence without gaps (a
     * consumer of one clinic's feed must see 1, 2, 3, ...), and what staff
     * did with an alert (acknowledged, snoozed, re-raised). */
    "ALTER TABLE transitions ADD COLUMN cseq INTEGER;"
    "UPDATE transitions SET cseq = (SELECT count(*) FROM transitions t2"
    "  WHERE t2.clinic = transitions.clinic AND t2.seq <= transitions.seq);"
    "CREATE UNIQUE INDEX transitions_by_clinic ON transitions(clinic, cseq);"
    "ALTER TABLE alerts ADD COLUMN acked_by TEXT;"
    "ALTER TABLE alerts ADD COLUMN acked_at INTEGER;"
    "ALTER TABLE alerts ADD COLUMN snoozed_until INTEGER;"
    "CREATE INDEX alerts_snoozed ON alerts(snoozed_until) WHERE snoozed_until IS NOT NULL;"
    "CREATE TABLE alert_actions("
    "  seq INTEGER PRIMARY KEY, alert_id INTEGER NOT NULL REFERENCES alerts(id),"
    "  clinic TEXT NOT NULL, key TEXT NOT NULL, action TEXT NOT NULL, who TEXT NOT NULL,"
    "  note TEXT NOT NULL, until INTEGER, at INTEGER NOT NULL);",
    /* 2 -> 3: webhook delivery. Transitions go out in each clinic's order;
     * `delivered` is the last sequence number the receiver acknowledged, so
     * a restart resumes after it (re-sending at most the one in flight, with
     * the same idempotency key). */
    "CREATE TABLE webhook_cursor("
    "  clinic TEXT PRIMARY KEY, delivered INTEGER NOT NULL DEFAULT 0,"
    "  attempts INTEGER NOT NULL DEFAULT 0, last_error TEXT, updated INTEGER) WITHOUT ROWID;",
    /* 3 -> 4: events_by_patient covers what an evaluation reads (Q_EVENTS_OF),
     * so a patient's events come from the index alone, without a second
     * b-tree descent into the table for every event. */
    "DROP INDEX events_by_patient;"
    "CREATE INDEX events_by_patient ON events(clinic, patient, at, seq, id, type, data);",
    /* 4 -> 5: evaluation at the speed of the store.
     * Events keep their data compiled (fields.h) beside the canonical text,
     * and events_by_patient covers the compiled form instead of the text:
     * an evaluation reads no JSON, and the index is no larger than before.
     * rg_fields() is the reference compiler (rg_fields_from_json), registered
     * on the connection.
     * One write per transition: an alert is its opening transition (the
     * alert's id is that row's seq); a resolution is one row whose alert_id
     * names it. An opening is still open while it is the last transition of
     * its (clinic, key), which transitions_by_key answers; openings and
     * resolutions of a key alternate (rg_store_transition sees to it). The
     * alerts table keeps only what staff did to an alert (ack, snooze). */
    "ALTER TABLE events ADD COLUMN fields BLOB;"
    "UPDATE events SET fields = rg_fields(data) WHERE data IS NOT NULL;"
    "DROP INDEX events_by_patient;"
    "CREATE INDEX events_by_patient ON events(clinic, patient, at, seq, id, type, fields);"
    "CREATE TABLE transitions_v5("
    "  seq INTEGER PRIMARY KEY, alert_id INTEGER,"
    "  at INTEGER NOT NULL, state TEXT NOT NULL CHECK(state IN ('open','resolved')),"
    "  clinic TEXT NOT NULL, patient TEXT NOT NULL, key TEXT NOT NULL, protocol TEXT NOT NULL,"
    "  version TEXT NOT NULL, rule TEXT NOT NULL, severity TEXT NOT NULL, message TEXT NOT NULL,"
    "  due INTEGER NOT NULL, params TEXT NOT NULL, evidence TEXT NOT NULL,"
    "  recorded INTEGER NOT NULL, cseq INTEGER);"
    "INSERT INTO transitions_v5 SELECT t.seq,"
    "  CASE WHEN t.state = 'open' THEN NULL ELSE a.opened_seq END, t.at, t.state, t.clinic,"
    "  t.patient, t.key, t.protocol, t.version, t.rule, t.severity, t.message, t.due, t.params,"
    "  t.evidence, t.recorded, t.cseq FROM transitions t JOIN alerts a ON a.id = t.alert_id;"
    "CREATE TABLE alerts_v5("
    "  id INTEGER PRIMARY KEY, acked_by TEXT, acked_at INTEGER, snoozed_until INTEGER);"
    "INSERT INTO alerts_v5 SELECT opened_seq, acked_by, acked_at, snoozed_until FROM alerts"
    "  WHERE acked_by IS NOT NULL OR acked_at IS NOT NULL OR snoozed_until IS NOT NULL;"
    "CREATE TABLE alert_actions_v5("
    "  seq INTEGER PRIMARY KEY, alert_id INTEGER NOT NULL,"
    "  clinic TEXT NOT NULL, key TEXT NOT NULL, action TEXT NOT NULL, who TEXT NOT NULL,"
    "  note TEXT NOT NULL, until INTEGER, at INTEGER NOT NULL);"
    "INSERT INTO alert_actions_v5 SELECT x.seq, a.opened_seq, x.clinic, x.key, x.action, x.who,"
    "  x.note, x.until, x.at FROM alert_actions x JOIN alerts a ON a.id = x.alert_id;"
    "DROP TABLE alert_actions;"
    "DROP TABLE transitions;"
    "DROP TABLE alerts;"
    "ALTER TABLE transitions_v5 RENAME TO transitions;"
    "ALTER TABLE alerts_v5 RENAME TO alerts;"
    "ALTER TABLE alert_actions_v5 RENAME TO alert_actions;"
    "CREATE UNIQUE INDEX transitions_by_clinic ON transitions(clinic, cseq);"
    "CREATE INDEX transitions_by_key ON transitions(clinic, key, seq);"
    "CREATE INDEX transitions_open ON transitions(clinic, patient) WHERE state = 'open';"
    "CREATE INDEX alerts_snoozed ON alerts(snoozed_until) WHERE snoozed_until IS NOT NULL;",
    /* 5 -> 6: corrections (docs/corrections.md). Every version of an event
     * is a row of its own, so the table is rebuilt without the old
     * UNIQUE(clinic, id). A correction names the row it replaced (replaces;
     * 0 for an id's first stored version) and when it was made
     * (corrected_at); status is NULL for "final". UNIQUE(clinic, id,
     * replaces) makes an id's first version unique (a plain insert that does
     * nothing when the id is known: as fast as before) and lets a version be
     * replaced once; versions only grow (rg_store_put_event). events_by_patient covers the correction fields too:
     * the engine picks the version in force at each instant from the index
     * alone. */
    "CREATE TABLE events_v6("
    "  seq INTEGER PRIMARY KEY,"
    "  clinic TEXT NOT NULL, id TEXT NOT NULL, patient TEXT NOT NULL, type TEXT NOT NULL,"
    "  at INTEGER NOT NULL, utc_offset INTEGER NOT NULL, data TEXT, body TEXT NOT NULL,"
    "  received INTEGER NOT NULL, fields BLOB,"
    "  version INTEGER NOT NULL DEFAULT 1, status TEXT, corrected_at INTEGER,"
    "  corrected_by TEXT, replaces INTEGER NOT NULL DEFAULT 0,"
    "  UNIQUE(clinic, id, replaces));"
    "INSERT INTO events_v6(seq, clinic, id, patient, type, at, utc_offset, data, body, received,"
    "  fields) SELECT seq, clinic, id, patient, type, at, utc_offset, data, body, received, fields"
    "  FROM events ORDER BY seq;"
    "DROP TABLE events;"
    "ALTER TABLE events_v6 RENAME TO events;"
    "CREATE INDEX events_by_patient ON events(clinic, patient, at, seq, id, type, fields,"
    "  replaces, corrected_at, status);"
    /* and clinic time. notify_at is when staff should hear of a
     * transition (the next opening when it happened while the clinic was
     * closed); NULL in rows of before means "at", as it was then. Webhooks
     * deliver in each clinic's order, but what waits for an opening must not
     * hold back a critical one behind it: deliveries past the cursor are kept
     * in webhook_ahead until the cursor reaches them. */
    "ALTER TABLE transitions ADD COLUMN notify_at INTEGER;"
    "CREATE TABLE webhook_ahead("
    "  clinic TEXT NOT NULL, cseq INTEGER NOT NULL, PRIMARY KEY(clinic, cseq)) WITHOUT ROWID;",
    /* 6 -> 7: how many times a writer scheduled the patient, so that an
     * evaluation's answer never unschedules what it did not see
     * (rg_patient_state; with one writer here it never moves meanwhile, but
     * the two stores keep one schema and one contract); a row's creation
     * by an event counts as one */
    "ALTER TABLE patients ADD COLUMN scheduled INTEGER NOT NULL DEFAULT 1;",
    /* 7 -> 8: failures are alerts, and nothing is only ephemeral (docs/service.md). A row per (clinic,
     * protocol, rule, patient) whose last evaluation of that rule failed,
     * since its first failure; the clinic's system alert
     * regimen.evaluation-failed is open while the (protocol, rule) has rows.
     * patients.failing counts a patient's rows, so that an evaluation of a
     * patient without any reads nothing more than before. */
    "CREATE TABLE failing_rules("
    "  clinic TEXT NOT NULL, protocol TEXT NOT NULL, rule TEXT NOT NULL, patient TEXT NOT NULL,"
    "  since INTEGER NOT NULL, message TEXT NOT NULL,"
    "  PRIMARY KEY(clinic, protocol, rule, patient)) WITHOUT ROWID;"
    "ALTER TABLE patients ADD COLUMN failing INTEGER NOT NULL DEFAULT 0;"
    /* and a snooze that expires is a transition of its own (state
     * 'reraised', naming its alert like a resolution), so the table is
     * rebuilt with the wider CHECK; openings and resolutions of a key still
     * alternate, re-raises in between */
    "CREATE TABLE transitions_v8("
    "  seq INTEGER PRIMARY KEY, alert_id INTEGER,"
    "  at INTEGER NOT NULL, state TEXT NOT NULL CHECK(state IN ('open','resolved','reraised')),"
    "  clinic TEXT NOT NULL, patient TEXT NOT NULL, key TEXT NOT NULL, protocol TEXT NOT NULL,"
    "  version TEXT NOT NULL, rule TEXT NOT NULL, severity TEXT NOT NULL, message TEXT NOT NULL,"
    "  due INTEGER NOT NULL, params TEXT NOT NULL, evidence TEXT NOT NULL,"
    "  recorded INTEGER NOT NULL, cseq INTEGER, notify_at INTEGER);"
    "INSERT INTO transitions_v8 SELECT seq, alert_id, at, state, clinic, patient, key, protocol,"
    "  version, rule, severity, message, due, params, evidence, recorded, cseq, notify_at"
    "  FROM transitions;"
    "DROP TABLE transitions;"
    "ALTER TABLE transitions_v8 RENAME TO transitions;"
    "CREATE UNIQUE INDEX transitions_by_clinic ON transitions(clinic, cseq);"
    "CREATE INDEX transitions_by_key ON transitions(clinic, key, seq);"
    "CREATE INDEX transitions_open ON transitions(clinic, patient) WHERE state = 'open';",
    /* 8 -> 9: a record nobody can bend, and one clinic's reads by key
     * (issue 22). Each event keeps the SHA-256 of its body as received
     * (digest, hex), set when it is stored and checked when explain shows
     * the event and by `regimen verify`: a changed byte is found and the
     * event named. rg_sha256() is registered for this step only. A key's
     * staff actions are read by (clinic, key) through an index, as its
     * transitions are through transitions_by_key. Alert keys keep their
     * stored text: keys made before this version (16 hex digits, FNV-1a)
     * stay open under them, the engine matching a rule's result to such an
     * alert by the old form of its key (engine.c). */
    "ALTER TABLE events ADD COLUMN digest TEXT;"
    "UPDATE events SET digest = rg_sha256(body);"
    "CREATE INDEX alert_actions_by_key ON alert_actions(clinic, key, seq);",
    /* 9 -> 10: the audit trail (runtime/store/audit.c, docs/audit.md): who
     * read or changed which patient's data, an entry per request, each
     * carrying the SHA-256 of the one before it (prev) and its own (hash)
     * over a canonical encoding. audit_chain's one row keeps the chain's tip
     * (so a deleted last entry is seen too) and its base: the last entry
     * archived (deleted by retention), where verification starts. */
    "CREATE TABLE audit("
    "  seq INTEGER PRIMARY KEY, at INTEGER NOT NULL, who TEXT NOT NULL, role TEXT NOT NULL,"
    "  address TEXT NOT NULL, clinic TEXT NOT NULL, patients TEXT NOT NULL, route TEXT NOT NULL,"
    "  outcome TEXT NOT NULL, prev TEXT NOT NULL, hash TEXT NOT NULL);"
    "CREATE INDEX audit_by_clinic ON audit(clinic, at);"
    "CREATE TABLE audit_chain("
    "  id INTEGER PRIMARY KEY CHECK(id = 1), base_seq INTEGER NOT NULL, base_hash TEXT NOT NULL,"
    "  tip_seq INTEGER NOT NULL, tip_hash TEXT NOT NULL, archived_at INTEGER);"
    "INSERT INTO audit_chain VALUES(1, 0,"
    " '0000000000000000000000000000000000000000000000000000000000000000', 0,"
    " '0000000000000000000000000000000000000000000000000000000000000000', NULL);",
    /* 10 -> 11: protocol changes a clinic can trust (docs/governance.md). A
     * clinic's protocol set captured as an immutable version (id: the
     * SHA-256 of its files), its files, and what was done to it by whom */
    "CREATE TABLE protocol_sets("
    "  clinic TEXT NOT NULL, id TEXT NOT NULL, n INTEGER NOT NULL, state TEXT NOT NULL,"
    "  proposed_by TEXT NOT NULL, proposed_at INTEGER NOT NULL, message TEXT NOT NULL,"
    "  approved_by TEXT, approved_at INTEGER, active_from INTEGER,"
    "  PRIMARY KEY(clinic, id)) WITHOUT ROWID;"
    "CREATE TABLE protocol_set_files("
    "  clinic TEXT NOT NULL, id TEXT NOT NULL, path TEXT NOT NULL, content BLOB NOT NULL,"
    "  PRIMARY KEY(clinic, id, path)) WITHOUT ROWID;"
    "CREATE TABLE protocol_set_log("
    "  seq INTEGER PRIMARY KEY, clinic TEXT NOT NULL, id TEXT NOT NULL, action TEXT NOT NULL,"
    "  by TEXT NOT NULL, at INTEGER NOT NULL, effective INTEGER NOT NULL);",
    /* 11 -> 12: a shadow version runs beside the active one and its
     * transitions go here, not to the feed: nothing reads this table to
     * notify anyone (docs/governance.md, "Shadow"). Keyed by what makes a
     * transition the same one (a takeover replays), one b-tree: the
     * full-disk test (test_ops.c) fills a 1 MB file system, and a table with
     * a separate index moved where it fills */
    "CREATE TABLE shadow_transitions("
    "  clinic TEXT NOT NULL, set_id TEXT NOT NULL, patient TEXT NOT NULL, key TEXT NOT NULL,"
    "  state TEXT NOT NULL, at INTEGER NOT NULL, due INTEGER, protocol TEXT NOT NULL,"
    "  version TEXT NOT NULL, rule TEXT NOT NULL, severity TEXT NOT NULL,"
    "  message TEXT NOT NULL,"
    "  PRIMARY KEY(clinic, set_id, patient, key, state, at)) WITHOUT ROWID;",
    /* 12 -> 13: who or what caused each transition (rg_transition.cause);
     * NULL in the rows from before: read as unknown */
    "ALTER TABLE transitions ADD COLUMN cause TEXT;",
    /* 13 -> 14: the service's notifications (docs/notifications.md). Each
     * step the planner laid out, under its idempotency key (clinic, alert
     * key, opening, route, step, round, part), with when it is due and how
     * far it got; and every attempt, the notification history */
    "CREATE TABLE notify_steps("
    "  id INTEGER PRIMARY KEY, clinic TEXT NOT NULL, patient TEXT NOT NULL, key TEXT NOT NULL,"
    "  opened INTEGER NOT NULL, route INTEGER NOT NULL, step INTEGER NOT NULL,"
    "  round INTEGER NOT NULL, part INTEGER NOT NULL, rule TEXT NOT NULL,"
    "  receiver TEXT NOT NULL, on_call TEXT, due INTEGER NOT NULL, reason TEXT,"
    "  state TEXT NOT NULL, attempts INTEGER NOT NULL, next_try INTEGER NOT NULL,"
    "  claimed_until INTEGER,"
    "  UNIQUE(clinic, key, opened, route, step, round, part));"
    "CREATE INDEX notify_steps_due ON notify_steps(clinic, next_try) WHERE state = 'pending';"
    "CREATE TABLE notify_log("
    "  seq INTEGER PRIMARY KEY, clinic TEXT NOT NULL, patient TEXT NOT NULL, key TEXT NOT NULL,"
    "  opened INTEGER NOT NULL, route INTEGER NOT NULL, step INTEGER NOT NULL,"
    "  round INTEGER NOT NULL, rule TEXT NOT NULL, receiver TEXT NOT NULL, kind TEXT NOT NULL,"
    "  on_call TEXT, at INTEGER NOT NULL, outcome TEXT NOT NULL, reason TEXT,"
    "  alerts INTEGER NOT NULL, attempt INTEGER NOT NULL);"
    "CREATE INDEX notify_log_by_key ON notify_log(clinic, key, seq);"
    "CREATE INDEX notify_log_by_patient ON notify_log(clinic, patient, seq);",
    /* 14 -> 15: a lean event row (issue 27). Each fact once: the body as
     * received (the audit's truth, its digest 32 bytes instead of 64 hex
     * characters) and what rules read (the compiled fields, the key
     * columns). The canonical data text is no longer kept beside them: it
     * is derived from the body when shown (rg_data(), rg_event_data_text).
     * The table is clustered by (clinic, patient, at, seq), the order an
     * evaluation reads, so events_by_patient, a second copy of every
     * field, goes. Without a rowid, seq is given by the store from
     * event_seq's one row (read once per write transaction, written back
     * before its commit). A digest that is not 64 hex digits (a damaged
     * row) is kept as it was, for verify to report. */
    "CREATE TABLE events_v15("
    "  clinic TEXT NOT NULL, patient TEXT NOT NULL, at INTEGER NOT NULL, seq INTEGER NOT NULL,"
    "  id TEXT NOT NULL, type TEXT NOT NULL, utc_offset INTEGER NOT NULL, body TEXT NOT NULL,"
    "  received INTEGER NOT NULL, fields BLOB, version INTEGER NOT NULL DEFAULT 1, status TEXT,"
    "  corrected_at INTEGER, corrected_by TEXT, replaces INTEGER NOT NULL DEFAULT 0,"
    "  digest BLOB, PRIMARY KEY(clinic, patient, at, seq), UNIQUE(clinic, id, replaces))"
    "  WITHOUT ROWID;"
    "INSERT INTO events_v15 SELECT clinic, patient, at, seq, id, type, utc_offset, body,"
    "  received, fields, version, status, corrected_at, corrected_by, replaces,"
    "  rg_unhex(digest) FROM events ORDER BY clinic, patient, at, seq;"
    "CREATE TABLE event_seq(n INTEGER NOT NULL);"
    "INSERT INTO event_seq SELECT coalesce(max(seq), 0) FROM events;"
    "DROP TABLE events;"
    "ALTER TABLE events_v15 RENAME TO events;",
    /* 15 -> 16: cheaper transitions (issue 26). The alerts open now, one
     * row per (clinic, key) naming its opening (alert) and its patient: an
     * opening adds its row, a resolution takes it out, so the primary key
     * refuses what would break the alternation of a key's openings and
     * resolutions (an opening of an open key, a resolution of another
     * alert), for any writer, without the read of the key's last transition
     * that each insert made before (rg_store_transition). "Still open" is a
     * lookup here (RG__STILL_OPEN). Filled from the openings nothing came
     * after. */
    "CREATE TABLE open_alerts("
    "  clinic TEXT NOT NULL, key TEXT NOT NULL, alert INTEGER NOT NULL, patient TEXT NOT NULL,"
    "  PRIMARY KEY(clinic, key)) WITHOUT ROWID;"
    "INSERT INTO open_alerts SELECT o.clinic, o.key, o.seq, o.patient FROM transitions o"
    "  WHERE o.state = 'open' AND NOT EXISTS (SELECT 1 FROM transitions n"
    "  WHERE n.clinic = o.clinic AND n.key = o.key AND n.seq > o.seq AND n.state <> 'reraised');",

    /* 16 -> 17: the body kept once (issue 27). What a body's head says,
     * {"id":..,"clinic":..,"patient":..,"type":..,"at":"..", the columns
     * already say: a body that begins with exactly the head they give back
     * keeps only the rest after it (`}` or `,"data":...}`), or "" when that
     * rest is the compiled fields printed back; readers get the whole body,
     * byte for byte, from rg_body() (rg_event_body_whole, core/event.h).
     * Any other body stays whole (it begins with `{`, a rest never does).
     * The digest stays the SHA-256 of the whole body. */
    "UPDATE events SET body = rg_lean(body, id, clinic, patient, type, at, utc_offset, fields);",
    /* 17 -> 18: a leaner event row (issue 27: the database within twice the
     * naive program's). The digest is the SHA-256 of the whole body
     * truncated to its first 16 bytes (RG_EVENT_DIGEST, digest.h): still a
     * 2^128 search for a changed body that keeps it, 16 bytes a row fewer.
     * Whole digests are cut to that here; one that is not 32 bytes (a
     * damaged row) stays as it was, for verify to report. The compiled
     * fields of new rows write small integers and string lengths as varints
     * (fields.h tags 'n' and 'S'); rows from before keep tags 'i' and 's',
     * which readers still read. */
    "UPDATE events SET digest = substr(digest, 1, 16)"
    "  WHERE typeof(digest) = 'blob' AND length(digest) = 32;",

    /* 18 -> 19: a patient's open alerts read from open_alerts (issue 26).
     * Q_OPEN_ALERTS walked every opening the patient ever had
     * (transitions_open covers closed ones too) and looked each up in
     * open_alerts; with this index it reads the patient's rows of
     * open_alerts, in opening order, and each transition by its seq: the
     * cost of what is open now, not of the history. */
    "CREATE INDEX open_alerts_by_patient ON open_alerts(clinic, patient, alert);",

    /* 19 -> 20: the CHECK on a transition's state as comparisons (issue 26,
     * the sweep). SQLite codes `state IN ('open','resolved','reraised')` in
     * every insert as an ephemeral table built and filled anew for each
     * row: 56,000 instructions an insert against 24,500 for the same row
     * under `state = 'open' OR ...` (a prepared insert of 4,000 rows, the
     * table and its three indexes, measured apart). Same states allowed;
     * the table is rebuilt (as at 7 -> 8) because SQLite cannot change a
     * CHECK in place. */
    "CREATE TABLE transitions_v20("
    "  seq INTEGER PRIMARY KEY, alert_id INTEGER,"
    "  at INTEGER NOT NULL,"
    "  state TEXT NOT NULL CHECK(state = 'open' OR state = 'resolved' OR state = 'reraised'),"
    "  clinic TEXT NOT NULL, patient TEXT NOT NULL, key TEXT NOT NULL, protocol TEXT NOT NULL,"
    "  version TEXT NOT NULL, rule TEXT NOT NULL, severity TEXT NOT NULL, message TEXT NOT NULL,"
    "  due INTEGER NOT NULL, params TEXT NOT NULL, evidence TEXT NOT NULL,"
    "  recorded INTEGER NOT NULL, cseq INTEGER, notify_at INTEGER, cause TEXT);"
    "INSERT INTO transitions_v20 SELECT seq, alert_id, at, state, clinic, patient, key, protocol,"
    "  version, rule, severity, message, due, params, evidence, recorded, cseq, notify_at, cause"
    "  FROM transitions;"
    "DROP TABLE transitions;"
    "ALTER TABLE transitions_v20 RENAME TO transitions;"
    "CREATE UNIQUE INDEX transitions_by_clinic ON transitions(clinic, cseq);"
    "CREATE INDEX transitions_by_key ON transitions(clinic, key, seq);"
    "CREATE INDEX transitions_open ON transitions(clinic, patient) WHERE state = 'open';",

    /* 20 -> 21: one clinic's due patients read from their own index (tenant
     * isolation, issue 26). Q_CLINIC_DUE went through patients_by_wake and
     * dropped the other clinics' rows afterwards: a page of clinic B read
     * every due patient of every clinic earlier in wake order (a backlog of
     * clinic A, the stuck patients of a clinic no longer served). With
     * (clinic, next_wake) it reads B's earliest due only. patients_by_wake
     * stays: the all-clinics reads (Q_PATIENTS_DUE, Q_NEXT_WAKE, the timer's
     * Q_WAKE_ORDER) walk it in wake order across clinics. */
    "CREATE INDEX patients_by_clinic_wake ON patients(clinic, next_wake)"
    " WHERE next_wake IS NOT NULL;",
};
const size_t rg_store_nmigrations = sizeof rg_store_migrations / sizeof rg_store_migrations[0];

/* A simulation writes transitions and reads them back by seq or by (at,
 * seq) (the primary key, or a scan and a sort), a key's open alert through
 * open_alerts, a patient's through open_alerts_by_patient, a clinic's last
 * cseq through transitions_by_clinic: these two serve only the service's
 * reads (a key's history, the alerts view, an action on a key). */
const char *const rg_store_scratch_drop[] = {"transitions_by_key", "transitions_open", NULL};

/* An opening transition (row o) whose alert is still open: open_alerts
 * names it (schema 16; one lookup of its primary key). */
#define RG__STILL_OPEN(o)                                                                   \
    "EXISTS (SELECT 1 FROM open_alerts k WHERE k.clinic = " o ".clinic AND k.key = " o \
    ".key AND k.alert = " o ".seq)"

/* The last transition of a key that is not a re-raise: open, or resolved,
 * or no row. */
#define RG__KEY_LAST(clinic, key)                                                         \
    "SELECT seq, state FROM transitions WHERE clinic = " clinic " AND key = " key         \
    " AND state <> 'reraised' ORDER BY seq DESC LIMIT 1"

/* An event row as rg__col_event reads it; WIDE adds data, version, corrected_by. */
#define RG__EV_COLS "seq, at, id, type, fields, replaces, corrected_at, status"
/* An event's whole body from its row (v17 keeps the rest after the head). */
#define RG__BODY(e)                                                                       \
    "rg_body(" e "body, " e "id, " e "clinic, " e "patient, " e "type, " e "at, " e "utc_offset, " \
    e "fields)"
#define RG__EV_WIDE RG__EV_COLS ", rg_data(" RG__BODY("") "), version, corrected_by"
/* A stored digest as hex (32 bytes since v12; a damaged one as it is). */
#define RG__DIGEST_HEX "CASE WHEN typeof(digest) = 'blob' THEN lower(hex(digest)) ELSE digest END"
/* An event row as stored (rg_event_row). */
#define RG__EV_ROW                                                                          \
    "seq, version, at, clinic, id, patient, type, rg_data(" RG__BODY("") "), " RG__BODY("")    \
    ", " RG__DIGEST_HEX ","                                                                  \
    " fields, status, corrected_at, corrected_by"
/* Row e is its id's current version: no later version was stored. */
#define RG__CURRENT(e)                                                                     \
    "NOT EXISTS (SELECT 1 FROM events n WHERE n.clinic = " e ".clinic AND n.id = " e ".id" \
    " AND n.version > " e ".version)"

/* An alert as the service lists it: its opening, its resolution (a re-raise
 * is not one) and what staff did; Q_ALERTS_VIEW and Q_ALERT_BY_KEY add
 * their WHERE. */
#define RG__ALERTS_VIEW                                                                            \
    "SELECT o.seq, o.key, CASE WHEN r.seq IS NULL THEN 'open' ELSE 'resolved' END AS st,"          \
    " o.patient, o.protocol, o.version, o.rule, o.severity, o.message, o.at, o.due, r.at,"         \
    " a.acked_by, a.acked_at, a.snoozed_until, coalesce(o.notify_at, o.at) FROM transitions o"     \
    " LEFT JOIN transitions r ON r.clinic = o.clinic AND r.key = o.key AND r.alert_id = o.seq"     \
    " AND r.state = 'resolved'"                                                                    \
    " LEFT JOIN alerts a ON a.id = o.seq"

/* One event row of Q_EVENT_INSERT_MANY (RG_STORE_MANY_COLS parameters), and
 * RG_STORE_MANY of them. */
#define RG__MANY1 "(?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)"
#define RG__MANY2 RG__MANY1 "," RG__MANY1
#define RG__MANY4 RG__MANY2 "," RG__MANY2
#define RG__MANY8 RG__MANY4 "," RG__MANY4
#define RG__MANY16 RG__MANY8 "," RG__MANY8
#define RG__MANY32 RG__MANY16 "," RG__MANY16
/* and of Q_EVENT_INSERT_PLAIN: ?1 (received) and RG_STORE_PLAIN_COLS more */
#define RG__PLAIN1 "(?1,?,?,?,?,?,?,?,?,?,?)"
#define RG__PLAIN2 RG__PLAIN1 "," RG__PLAIN1
#define RG__PLAIN4 RG__PLAIN2 "," RG__PLAIN2
#define RG__PLAIN8 RG__PLAIN4 "," RG__PLAIN4
#define RG__PLAIN16 RG__PLAIN8 "," RG__PLAIN8
#define RG__PLAIN32 RG__PLAIN16 "," RG__PLAIN16

const char *const rg_store_sql[Q__COUNT] = {
    /* the first stored version of an id (whatever its number): stored only
     * when the id is new (replaces 0 is taken), so the common case is one
     * statement */
    [Q_EVENT_INSERT] =
        "INSERT INTO events(clinic, id, patient, type, at, utc_offset, body, received,"
        " fields, version, status, corrected_at, corrected_by, digest, seq)"
        " VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?16, ?7)"
        " ON CONFLICT(clinic, id, replaces) DO NOTHING",
    /* RG_STORE_MANY new events in one statement (bulk ingest). OR IGNORE: no
     * row can abort it, so SQLite keeps no statement journal (a multi-row
     * insert that could abort half-way writes one, to a temporary file);
     * when one of their ids is stored already, or comes twice among them,
     * fewer rows go in: those are taken out again (Q_EVENT_UNDO) and the
     * events go one by one */
    [Q_EVENT_INSERT_MANY] =
        "INSERT OR IGNORE INTO events(clinic, id, patient, type, at, utc_offset, body, received,"
        " fields, version, status, corrected_at, corrected_by, digest, seq) VALUES " RG__MANY32,
    /* the same for events that are all plain (version 1, final, no correction:
     * the columns' defaults), the usual feed: 4 parameters fewer a row, and
     * the received time bound once (issue 27) */
    [Q_EVENT_INSERT_PLAIN] =
        "INSERT OR IGNORE INTO events(received, clinic, id, patient, type, at, utc_offset, body,"
        " fields, digest, seq) VALUES " RG__PLAIN32,
    [Q_EVENT_UNDO] = "DELETE FROM events WHERE clinic = ?1 AND id = ?2 AND replaces = 0 AND seq = ?3",
    [Q_EVENT_INSERT_VERSION] =
        "INSERT INTO events(clinic, id, patient, type, at, utc_offset, body, received,"
        " fields, version, status, corrected_at, corrected_by, replaces, digest, seq)"
        " VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?7)",
    [Q_EVENT_CURRENT] = "SELECT seq, version, patient, type, " RG__BODY("") " FROM events"
                        " WHERE clinic = ?1 AND id = ?2 ORDER BY version DESC LIMIT 1",
    [Q_EVENT_VERSION_BODY] =
        "SELECT " RG__BODY("") " FROM events WHERE clinic = ?1 AND id = ?2 AND version = ?3",
    [Q_EVENT_VERSIONS] = "SELECT " RG__EV_WIDE " FROM events WHERE clinic = ?1 AND id = ?2"
                         " ORDER BY version",
    [Q_CORRECTIONS] =
        "SELECT c.seq, c.at, c.id, c.type, c.fields, c.replaces, c.corrected_at, c.status,"
        " rg_data(" RG__BODY("c.") "), c.version, c.corrected_by, r.seq, r.at, r.id, r.type, r.fields,"
        " r.replaces, r.corrected_at, r.status, rg_data(" RG__BODY("r.") "), r.version, r.corrected_by"
        " FROM events c JOIN events r ON r.clinic = c.clinic AND r.id = c.id"
        " AND r.seq = c.replaces WHERE c.clinic = ?1"
        " AND c.patient = ?2 AND c.replaces <> 0 AND c.corrected_at > ?3"
        " AND c.corrected_at <= ?4 ORDER BY c.corrected_at, c.seq",
    /* A new event is due at its own instant, or at once (the patient's clock)
     * when it is older than what was already evaluated. */
    [Q_PATIENT_SCHEDULE] =
        "INSERT INTO patients(clinic, patient, next_wake) VALUES(?1, ?2, ?3)"
        " ON CONFLICT(clinic, patient) DO UPDATE SET next_wake ="
        " min(coalesce(next_wake, 9223372036854775807), max(?3, coalesce(clock, ?3))),"
        " scheduled = scheduled + 1",
    [Q_REJECT] = "INSERT INTO rejected(received, source, line, field, reason, raw)"
                 " VALUES(?1, ?2, ?3, ?4, ?5, ?6)",
    [Q_REJECTED_ALL] =
        "SELECT seq, received, source, line, field, reason, raw FROM rejected ORDER BY seq",
    [Q_EVENTS_OF] = "SELECT " RG__EV_COLS " FROM events"
                    " WHERE clinic = ?1 AND patient = ?2 ORDER BY at, seq",
    [Q_EVENTS_AFTER] = "SELECT " RG__EV_COLS " FROM events"
                       " WHERE clinic = ?1 AND patient = ?2 AND seq > ?3 ORDER BY at, seq",
    /* the current versions, nothing of a retracted event */
    [Q_EVENTS_OF_DATA] = "SELECT " RG__EV_WIDE " FROM events e"
                         " WHERE clinic = ?1 AND patient = ?2 AND " RG__CURRENT("e")
                         " AND (status IS NULL OR status <> 'entered-in-error') ORDER BY at, seq",
    [Q_PATIENT_GET] = "SELECT clock, wake, next_wake, last_seq, scheduled, failing FROM patients"
                      " WHERE clinic = ?1 AND patient = ?2",
    /* scheduled moved since the evaluation read it: the earlier next_wake */
    [Q_PATIENT_PUT] =
        "INSERT INTO patients(clinic, patient, clock, wake, next_wake, last_seq, failing)"
        " VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?8) ON CONFLICT(clinic, patient) DO UPDATE SET"
        " clock = ?3, wake = ?4, next_wake = CASE WHEN scheduled = ?7 THEN ?5"
        " ELSE min(coalesce(?5, next_wake), coalesce(next_wake, ?5)) END, last_seq = ?6,"
        " failing = ?8",
    [Q_PATIENTS_PAGE] = "SELECT clinic, patient FROM patients WHERE (clinic, patient) > (?1, ?2)"
                        " ORDER BY clinic, patient LIMIT ?3",
    /* Paged after a (clinic, patient) cursor, this walks the primary key: one
     * pass over the table in all (linear when most patients are due, as after
     * a reload). Through patients_by_wake each page would re-read and sort
     * every due patient: 3.5 s instead of 0.06 s for 60,000 due patients. */
    [Q_PATIENTS_DUE_PAGE] =
        "SELECT clinic, patient FROM patients WHERE (clinic, patient) > (?1, ?2)"
        " AND next_wake <= ?4 ORDER BY clinic, patient LIMIT ?3",
    /* A wake-up of every clinic: the earliest due first, read through
     * patients_by_wake (so it costs what is due, not the size of the store),
     * then that small set in the engine's (clinic, patient) order. */
    [Q_PATIENTS_DUE] =
        "SELECT clinic, patient FROM (SELECT clinic, patient FROM patients"
        " INDEXED BY patients_by_wake WHERE next_wake <= ?1"
        " ORDER BY next_wake LIMIT ?2)"
        " ORDER BY clinic, patient",
    /* The same for one clinic (?3, the service's wake-up job): through
     * patients_by_clinic_wake, so it costs that clinic's due patients alone,
     * whatever the other clinics have due before them (schema 21). */
    [Q_CLINIC_DUE] =
        "SELECT clinic, patient FROM (SELECT clinic, patient FROM patients"
        " WHERE clinic = ?3 AND next_wake <= ?1 ORDER BY next_wake LIMIT ?2)"
        " ORDER BY clinic, patient",
    [Q_NEXT_WAKE] = "SELECT min(next_wake) FROM patients WHERE next_wake IS NOT NULL",
    /* the wake-ups in order, for one that is not being evaluated already
     * (rg_store_next_due's skip) */
    [Q_WAKE_ORDER] = "SELECT clinic, patient, next_wake FROM patients INDEXED BY patients_by_wake"
                     " WHERE next_wake IS NOT NULL ORDER BY next_wake",
    [Q_OPEN_ALERTS] =
        "SELECT t.seq, t.at, t.due, t.key, t.protocol, t.version, t.rule, t.severity, t.message,"
        " t.seq, t.params, t.evidence, t.cseq FROM open_alerts k"
        " JOIN transitions t ON t.seq = k.alert WHERE k.clinic = ?1 AND k.patient = ?2"
        " ORDER BY k.alert",
    /* the last transition of a key: open, or resolved, or none */
    [Q_KEY_LAST] = RG__KEY_LAST("?1", "?2"),
    /* No read before it: rg_store_transition first claims the key in
     * open_alerts (Q_OPEN_ADD, Q_OPEN_DEL, Q_OPEN_HAS: openings and
     * resolutions of a key alternate; a resolution or a re-raise names the
     * key's open alert), so a refused transition writes nothing, then
     * inserts the row with the seq it gave the opening (?19). */
    [Q_TRANSITION] =
        "INSERT INTO transitions(alert_id, at, state, clinic, patient, key, protocol, version,"
        " rule, severity, message, due, params, evidence, recorded, cseq, notify_at, cause, seq)"
        " VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18,"
        " ?19)",
    /* an opening: refused (no row) when its key is open already */
    [Q_OPEN_ADD] = "INSERT INTO open_alerts(clinic, key, alert, patient) VALUES(?1, ?2, ?3, ?4)"
                   " ON CONFLICT(clinic, key) DO NOTHING",
    /* a resolution: refused (no row) unless it names the key's open alert */
    [Q_OPEN_DEL] = "DELETE FROM open_alerts WHERE clinic = ?1 AND key = ?2 AND alert = ?3",
    /* a re-raise: the alert it names is open */
    [Q_OPEN_HAS] = "SELECT 1 FROM open_alerts WHERE clinic = ?1 AND key = ?2 AND alert = ?3",
    [Q_LAST_SEQ] = "SELECT coalesce(max(seq), 0) FROM transitions",
    [Q_TRANSITIONS_SEQ] =
        "SELECT seq, at, state, clinic, patient, key, protocol, version, rule, severity,"
        " message, due, params, evidence, cseq, coalesce(notify_at, at), cause FROM transitions WHERE seq > ?1 ORDER BY seq",
    [Q_TRANSITIONS_TIME] =
        "SELECT seq, at, state, clinic, patient, key, protocol, version, rule, severity,"
        " message, due, params, evidence, cseq, coalesce(notify_at, at), cause FROM transitions WHERE seq > ?1 ORDER BY at, seq",
    [Q_CLINIC_TRANSITIONS] =
        "SELECT seq, at, state, clinic, patient, key, protocol, version, rule, severity,"
        " message, due, params, evidence, cseq, coalesce(notify_at, at), cause FROM transitions WHERE clinic = ?1 AND cseq > ?2"
        " ORDER BY cseq LIMIT ?3",
    [Q_ALERTS_VIEW] = RG__ALERTS_VIEW
        " WHERE o.clinic = ?1 AND o.state = 'open' AND (?2 IS NULL OR o.patient = ?2)"
        " AND (?3 IS NULL OR st = ?3) AND (?4 IS NULL OR o.key = ?4) AND o.seq > ?6"
        " ORDER BY o.seq LIMIT ?5",
    /* Q_ALERTS_VIEW for one key (?4): the key in the WHERE as a plain
     * equality, so the rows come from transitions_by_key, not from a walk
     * through every transition of the clinic */
    [Q_ALERT_BY_KEY] = RG__ALERTS_VIEW
        " WHERE o.clinic = ?1 AND o.key = ?4 AND o.state = 'open' AND (?2 IS NULL OR o.patient = ?2)"
        " AND (?3 IS NULL OR st = ?3) AND o.seq > ?6 ORDER BY o.seq LIMIT ?5",
    [Q_ALERT_ACK] = "INSERT INTO alerts(id, acked_by, acked_at) VALUES(?1, ?2, ?3)"
                    " ON CONFLICT(id) DO UPDATE SET acked_by = ?2, acked_at = ?3",
    [Q_ALERT_SNOOZE] = "INSERT INTO alerts(id, snoozed_until) VALUES(?1, ?2)"
                       " ON CONFLICT(id) DO UPDATE SET snoozed_until = ?2",
    [Q_ALERT_UNSNOOZE] = "UPDATE alerts SET snoozed_until = NULL WHERE id = ?1",
    [Q_ACTION_ADD] = "INSERT INTO alert_actions(alert_id, clinic, key, action, who, note, until, at)"
                     " VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
    [Q_ACTIONS_OF] = "SELECT action, who, note, until, at FROM alert_actions"
                     " WHERE clinic = ?1 AND key = ?2 ORDER BY seq",
    [Q_NEXT_SNOOZE] = "SELECT min(a.snoozed_until) FROM alerts a JOIN transitions o"
                      " ON o.seq = a.id WHERE a.snoozed_until IS NOT NULL AND "
                      RG__STILL_OPEN("o"),
    [Q_DUE_SNOOZES] = "SELECT o.seq, o.clinic, o.key, o.patient FROM alerts a JOIN transitions o"
                      " ON o.seq = a.id WHERE a.snoozed_until <= ?1 AND " RG__STILL_OPEN("o")
                      " ORDER BY a.snoozed_until LIMIT 256",
    [Q_WAKE_CLINIC] =
        "UPDATE patients SET wake = ?2, next_wake = min(coalesce(next_wake, ?2), ?2),"
        " scheduled = scheduled + 1 WHERE clinic = ?1 AND (clock IS NULL OR clock < ?2)"
        " AND (?3 = 0 OR failing > 0)",
    [Q_OPEN_BY_SEVERITY] =
        "SELECT k.clinic, o.severity, count(*) FROM open_alerts k JOIN transitions o"
        " ON o.seq = k.alert WHERE (?1 IS NULL OR k.clinic = ?1) GROUP BY k.clinic, o.severity",
    [Q_EVAL_ERROR] = "INSERT INTO eval_errors(clinic, patient, protocol, rule, at, message,"
                     " recorded) VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    [Q_FAILING_ADD] = "INSERT INTO failing_rules(clinic, protocol, rule, patient, since, message)"
                      " VALUES(?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT DO NOTHING",
    [Q_FAILING_DEL] = "DELETE FROM failing_rules WHERE clinic = ?1 AND protocol = ?2"
                      " AND rule = ?3 AND patient = ?4",
    [Q_FAILING_COUNT] = "SELECT count(*), min(since) FROM failing_rules WHERE clinic = ?1"
                        " AND protocol = ?2 AND rule = ?3",
    [Q_FAILING_OF] = "SELECT protocol, rule FROM failing_rules WHERE clinic = ?1 AND patient = ?2"
                     " ORDER BY protocol, rule",
    [Q_FAILING_ALL] = "SELECT clinic, protocol, rule, count(*), min(since), min(message)"
                      " FROM failing_rules GROUP BY clinic, protocol, rule"
                      " ORDER BY clinic, protocol, rule",
    [Q_PROTOCOL_LOADED] = "INSERT OR IGNORE INTO protocol_versions(clinic, protocol, version,"
                          " file, hash, first_loaded) VALUES(?1, ?2, ?3, ?4, ?5, ?6)",
    [Q_LAST_CSEQ] = "SELECT coalesce(max(cseq), 0) FROM transitions WHERE clinic = ?1",
    [Q_HOOK_GET] = "SELECT delivered, attempts FROM webhook_cursor WHERE clinic = ?1",
    [Q_HOOK_DELIVERED] =
        "INSERT INTO webhook_cursor(clinic, delivered, attempts, last_error, updated)"
        " VALUES(?1, ?2, 0, NULL, ?3) ON CONFLICT(clinic) DO UPDATE SET delivered = ?2,"
        " attempts = 0, last_error = NULL, updated = ?3",
    [Q_HOOK_FAILED] =
        "INSERT INTO webhook_cursor(clinic, delivered, attempts, last_error, updated)"
        " VALUES(?1, 0, 1, ?2, ?3) ON CONFLICT(clinic) DO UPDATE SET attempts = attempts + 1,"
        " last_error = ?2, updated = ?3",
    /* the first undelivered transition whose notification time has come */
    [Q_HOOK_NEXT] =
        "SELECT seq, at, state, clinic, patient, key, protocol, version, rule, severity,"
        " message, due, params, evidence, cseq, coalesce(notify_at, at), cause FROM transitions t"
        " WHERE clinic = ?1 AND cseq > ?2 AND coalesce(notify_at, at) <= ?3 AND NOT EXISTS"
        " (SELECT 1 FROM webhook_ahead w WHERE w.clinic = ?1 AND w.cseq = t.cseq)"
        " ORDER BY cseq LIMIT 1",
    [Q_HOOK_WAIT] = "SELECT min(notify_at) FROM transitions WHERE clinic = ?1 AND cseq > ?2"
                    " AND notify_at > ?3",
    [Q_HOOK_AHEAD_ADD] = "INSERT OR IGNORE INTO webhook_ahead(clinic, cseq) VALUES(?1, ?2)",
    [Q_HOOK_AHEAD_TAKE] = "DELETE FROM webhook_ahead WHERE clinic = ?1 AND cseq = ?2",
    [Q_EVENT_GET] = "SELECT " RG__EV_WIDE " FROM events WHERE clinic = ?1 AND id = ?2"
                    " ORDER BY version DESC LIMIT 1",
    /* a key's transitions in one clinic, through transitions_by_key */
    [Q_KEY_TRANSITIONS] =
        "SELECT seq, at, state, clinic, patient, key, protocol, version, rule, severity,"
        " message, due, params, evidence, cseq, coalesce(notify_at, at), cause FROM transitions"
        " WHERE clinic = ?1 AND key = ?2 ORDER BY seq",
    /* the clinics that have a key (the operator's `regimen explain KEY`,
     * never a request: those are scoped to the caller's clinic) */
    [Q_KEY_CLINICS] = "SELECT DISTINCT clinic FROM transitions WHERE key = ?1 ORDER BY clinic",
    /* events as stored, every column verify.c checks: all of them in seq
     * order (the primary key), and one event's versions */
    [Q_EVENT_ROWS] = "SELECT " RG__EV_ROW " FROM events WHERE (clinic, patient, at, seq) >"
                     " (?1, ?4, ?5, ?2) ORDER BY clinic, patient, at, seq LIMIT ?3",
    /* the last event seq given (v12: events has no rowid to number it) */
    [Q_EVENT_SEQ_GET] = "SELECT n FROM event_seq",
    [Q_EVENT_SEQ_PUT] = "UPDATE event_seq SET n = ?1",
    [Q_EVENT_ROWS_OF] = "SELECT " RG__EV_ROW " FROM events WHERE clinic = ?1 AND id = ?2"
                        " ORDER BY version",
    [Q_AUDIT_CHAIN] = "SELECT base_seq, base_hash, tip_seq, tip_hash, archived_at FROM audit_chain",
    [Q_AUDIT_INSERT] = "INSERT INTO audit(seq, at, who, role, address, clinic, patients, route,"
                       " outcome, prev, hash) VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
    [Q_AUDIT_TIP] = "UPDATE audit_chain SET tip_seq = ?1, tip_hash = ?2",
    /* patients is a JSON array of ids */
    [Q_AUDIT_EACH] =
        "SELECT seq, at, who, role, address, clinic, patients, route, outcome, prev, hash"
        " FROM audit a WHERE seq > ?1 AND (?2 IS NULL OR clinic = ?2) AND (?3 IS NULL OR who = ?3)"
        " AND (?4 IS NULL OR at >= ?4) AND (?5 IS NULL OR EXISTS (SELECT 1 FROM"
        " json_each(a.patients) WHERE value = ?5)) ORDER BY seq LIMIT ?6",
    [Q_AUDIT_LAST_BEFORE] = "SELECT seq, hash FROM audit WHERE at < ?1 ORDER BY seq DESC LIMIT 1",
    [Q_AUDIT_DELETE] = "DELETE FROM audit WHERE seq <= ?1",
    [Q_AUDIT_BASE] = "UPDATE audit_chain SET base_seq = ?1, base_hash = ?2, archived_at = ?3",
    [Q_BEGIN] = "BEGIN IMMEDIATE",
    [Q_BEGIN_READ] = "BEGIN DEFERRED",
    [Q_COMMIT] = "COMMIT",
    [Q_ROLLBACK] = "ROLLBACK",
};
