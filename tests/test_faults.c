/*
 * test_faults.c - injected faults: SQLite write/sync/truncate errors
 * (SQLITE_IOERR, SQLITE_FULL), SQLite's allocator, the clinic's Lua allocator
 * and jansson's failing on the Nth call (or from the Nth on), for every N
 * across one ingest of a small JSONL batch and one evaluation of a patient
 * with the shipped ketamine protocols (next to a patient of a clinic whose
 * protocol fails, so that evaluation errors are written too).
 *
 * Nothing here hooks production code: a VFS shim registered as the default
 * (the store opens its file with the default VFS), SQLite's allocator set
 * with sqlite3_config before sqlite3_initialize, the Lua allocator of the
 * clinic's state wrapped with lua_getallocf/lua_setallocf, and jansson's set
 * with json_set_alloc_funcs.
 *
 * After every faulted run: the call said so (or succeeded when nothing
 * failed), PRAGMA integrity_check is ok, the database is exactly the state
 * before (rolled back) or exactly the fault-free state after (committed),
 * the per-clinic sequence has no gap, what was reported as rejected is
 * stored; then, the fault cleared, the same call on the same handles gives
 * the fault-free result. Each sweep prints one summary line.
 */
#include "helpers.h"

#include "engine/engine.h"
#include "store/ingest.h"

#include <jansson.h>
#include <lua.h>
#include <sqlite3.h>

/* ---- the fault switch ----------------------------------------------------------- */

enum { F_NONE, F_IO, F_SQL_MALLOC, F_LUA_MALLOC, F_JSON_MALLOC };

static struct {
    int kind;       /* what is armed */
    int ioerr;      /* F_IO: the error to return (SQLITE_IOERR or SQLITE_FULL) */
    int persistent; /* fail every call from the Nth on, not only the Nth */
    long n, calls, hits;
} F;

static void fault_arm(int kind, long n, int persistent, int ioerr)
{
    F.kind = kind;
    F.n = n;
    F.persistent = persistent;
    F.ioerr = ioerr;
    F.calls = F.hits = 0;
}

static void fault_clear(void) { F.kind = F_NONE; }

static int fault_now(int kind)
{
    if (F.kind != kind)
        return 0;
    F.calls++;
    if (F.calls == F.n || (F.persistent && F.calls > F.n)) {
        F.hits++;
        return 1;
    }
    return 0;
}

/* ---- a VFS shim over the default one: xWrite, xSync, xTruncate can fail ---------- */

typedef struct shim_file {
    sqlite3_file base;
    sqlite3_file *real; /* the default VFS's file, right after this struct */
} shim_file;

static sqlite3_vfs *real_vfs;
static sqlite3_vfs shim_vfs;

#define REAL(f) (((shim_file *)(f))->real)

static int shim_close(sqlite3_file *f) { return REAL(f)->pMethods->xClose(REAL(f)); }
static int shim_read(sqlite3_file *f, void *b, int n, sqlite3_int64 off)
{
    return REAL(f)->pMethods->xRead(REAL(f), b, n, off);
}
static int shim_write(sqlite3_file *f, const void *b, int n, sqlite3_int64 off)
{
    if (fault_now(F_IO))
        return F.ioerr == SQLITE_FULL ? SQLITE_FULL : SQLITE_IOERR_WRITE;
    return REAL(f)->pMethods->xWrite(REAL(f), b, n, off);
}
static int shim_truncate(sqlite3_file *f, sqlite3_int64 size)
{
    if (fault_now(F_IO))
        return F.ioerr == SQLITE_FULL ? SQLITE_FULL : SQLITE_IOERR_TRUNCATE;
    return REAL(f)->pMethods->xTruncate(REAL(f), size);
}
/* 1 in sweeps of allocations: they do not depend on the disk, and thousands
 * of runs with an fsync at each checkpoint take minutes (eatmydata's trick). */
static int skip_sync;

static int shim_sync(sqlite3_file *f, int flags)
{
    if (fault_now(F_IO))
        return F.ioerr == SQLITE_FULL ? SQLITE_FULL : SQLITE_IOERR_FSYNC;
    return skip_sync ? SQLITE_OK : REAL(f)->pMethods->xSync(REAL(f), flags);
}
static int shim_size(sqlite3_file *f, sqlite3_int64 *out)
{
    return REAL(f)->pMethods->xFileSize(REAL(f), out);
}
static int shim_lock(sqlite3_file *f, int l) { return REAL(f)->pMethods->xLock(REAL(f), l); }
static int shim_unlock(sqlite3_file *f, int l) { return REAL(f)->pMethods->xUnlock(REAL(f), l); }
static int shim_reserved(sqlite3_file *f, int *out)
{
    return REAL(f)->pMethods->xCheckReservedLock(REAL(f), out);
}
static int shim_fcntl(sqlite3_file *f, int op, void *arg)
{
    return REAL(f)->pMethods->xFileControl(REAL(f), op, arg);
}
static int shim_sector(sqlite3_file *f) { return REAL(f)->pMethods->xSectorSize(REAL(f)); }
static int shim_devchar(sqlite3_file *f)
{
    return REAL(f)->pMethods->xDeviceCharacteristics(REAL(f));
}
static int shim_shm_map(sqlite3_file *f, int pg, int sz, int extend, void volatile **out)
{
    return REAL(f)->pMethods->xShmMap(REAL(f), pg, sz, extend, out);
}
static int shim_shm_lock(sqlite3_file *f, int off, int n, int flags)
{
    return REAL(f)->pMethods->xShmLock(REAL(f), off, n, flags);
}
static void shim_shm_barrier(sqlite3_file *f) { REAL(f)->pMethods->xShmBarrier(REAL(f)); }
static int shim_shm_unmap(sqlite3_file *f, int del)
{
    return REAL(f)->pMethods->xShmUnmap(REAL(f), del);
}
static int shim_fetch(sqlite3_file *f, sqlite3_int64 off, int n, void **out)
{
    if (REAL(f)->pMethods->iVersion < 3) {
        *out = NULL;
        return SQLITE_OK;
    }
    return REAL(f)->pMethods->xFetch(REAL(f), off, n, out);
}
static int shim_unfetch(sqlite3_file *f, sqlite3_int64 off, void *p)
{
    if (REAL(f)->pMethods->iVersion < 3)
        return SQLITE_OK;
    return REAL(f)->pMethods->xUnfetch(REAL(f), off, p);
}

static const sqlite3_io_methods shim_io = {
    3, shim_close, shim_read, shim_write, shim_truncate, shim_sync, shim_size, shim_lock,
    shim_unlock, shim_reserved, shim_fcntl, shim_sector, shim_devchar, shim_shm_map,
    shim_shm_lock, shim_shm_barrier, shim_shm_unmap, shim_fetch, shim_unfetch,
};

static int shim_open(sqlite3_vfs *vfs, const char *name, sqlite3_file *f, int flags, int *out)
{
    shim_file *s = (shim_file *)f;
    (void)vfs;
    s->real = (sqlite3_file *)(s + 1);
    s->real->pMethods = NULL;
    int rc = real_vfs->xOpen(real_vfs, name, s->real, flags, out);
    s->base.pMethods = s->real->pMethods ? &shim_io : NULL;
    return rc;
}

/* ---- SQLite's allocator, failing on the Nth allocation --------------------------- */

static sqlite3_mem_methods mem_real;

static void *mem_malloc(int n) { return fault_now(F_SQL_MALLOC) ? NULL : mem_real.xMalloc(n); }
static void *mem_realloc(void *p, int n)
{
    return fault_now(F_SQL_MALLOC) ? NULL : mem_real.xRealloc(p, n);
}

/* jansson's allocator (events, parameters and evidence as JSON), the same. */
static void *json_fault_malloc(size_t n) { return fault_now(F_JSON_MALLOC) ? NULL : malloc(n); }

/* Once per test process (Criterion runs each test in its own): the allocator
 * before sqlite3_initialize, then the shim as the default VFS. */
static void faults_install(void)
{
    static int done;
    if (done)
        return;
    done = 1;
    sqlite3_shutdown();
    cr_assert_eq(sqlite3_config(SQLITE_CONFIG_GETMALLOC, &mem_real), SQLITE_OK);
    sqlite3_mem_methods m = mem_real;
    m.xMalloc = mem_malloc;
    m.xRealloc = mem_realloc;
    cr_assert_eq(sqlite3_config(SQLITE_CONFIG_MALLOC, &m), SQLITE_OK);
    cr_assert_eq(sqlite3_initialize(), SQLITE_OK);
    real_vfs = sqlite3_vfs_find(NULL);
    cr_assert_not_null(real_vfs);
    shim_vfs = *real_vfs;
    shim_vfs.pNext = NULL;
    shim_vfs.zName = "faultshim";
    shim_vfs.szOsFile = (int)sizeof(shim_file) + real_vfs->szOsFile;
    shim_vfs.xOpen = shim_open;
    cr_assert_eq(sqlite3_vfs_register(&shim_vfs, 1), SQLITE_OK);
    json_set_alloc_funcs(json_fault_malloc, free);
}

/* ---- the Lua allocator of a clinic's state, failing from the Nth allocation ------ */

typedef struct lua_wrap {
    lua_Alloc f;
    void *ud;
} lua_wrap;

static void *lua_fault_alloc(void *ud, void *ptr, size_t osize, size_t nsize)
{
    lua_wrap *w = ud;
    /* only growth can fail (a free or a shrink never does in real allocators) */
    if (nsize > (ptr ? osize : 0) && fault_now(F_LUA_MALLOC))
        return NULL;
    return w->f(w->ud, ptr, osize, nsize);
}

/* ---- looking at the database from the outside ------------------------------------ */

static int dump_row(void *ud, int n, char **v, char **names)
{
    rg_buf *b = ud;
    (void)names;
    for (int i = 0; i < n; i++)
        rg_buf_printf(b, "%s%s", i ? "|" : "", v[i] ? v[i] : "NULL");
    rg_buf_add(b, "\n", 1);
    return 0;
}

/* Everything stored, minus the wall-clock stamps (received, recorded, ...). */
static const char dump_sql[] =
    "SELECT 'events', seq, clinic, id, patient, type, at, utc_offset, body, hex(fields)"
    " FROM events"
    " ORDER BY seq;"
    "SELECT 'rejected', seq, source, line, field, reason, raw FROM rejected ORDER BY seq;"
    "SELECT 'patients', * FROM patients ORDER BY clinic, patient;"
    "SELECT 'alerts', * FROM alerts ORDER BY id;"
    "SELECT 'transitions', seq, cseq, alert_id, at, state, clinic, patient, key, protocol,"
    " version, rule, severity, message, due, params, evidence FROM transitions ORDER BY seq;"
    "SELECT 'eval_errors', seq, clinic, patient, protocol, rule, at, message FROM eval_errors"
    " ORDER BY seq;"
    "SELECT 'failing_rules', * FROM failing_rules ORDER BY 2, 3, 4, 5;"
    "SELECT 'alert_actions', * FROM alert_actions ORDER BY seq;"
    "SELECT 'webhook', clinic, delivered, attempts, last_error FROM webhook_cursor;"
    "SELECT 'versions', clinic, protocol, version, file, hash FROM protocol_versions"
    " ORDER BY 2, 3, 4, 6;";

/* The database's content as text (malloc'd); asserts integrity_check and the
 * invariants that must hold in any committed state. */
static char *db_check(const char *path)
{
    sqlite3 *db;
    rg_buf b = {0}, ic = {0};
    char *msg = NULL;
    cr_assert_eq(sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE, NULL), SQLITE_OK);
    cr_assert_eq(sqlite3_exec(db, "PRAGMA integrity_check", dump_row, &ic, &msg), SQLITE_OK,
                 "%s", msg ? msg : "");
    cr_assert_str_eq(ic.p, "ok\n", "integrity_check: %s", ic.p);
    rg_buf_free(&ic);
    cr_assert_eq(sqlite3_exec(db, dump_sql, dump_row, &b, &msg), SQLITE_OK, "%s",
                 msg ? msg : "");
    /* each clinic's sequence is 1, 2, 3, ... with no gap */
    static const char gaps[] =
        "SELECT clinic, count(*), max(cseq), min(cseq) FROM transitions GROUP BY clinic"
        " HAVING count(*) != max(cseq) OR min(cseq) != 1 OR count(DISTINCT cseq) != count(*)";
    rg_buf g = {0};
    cr_assert_eq(sqlite3_exec(db, gaps, dump_row, &g, &msg), SQLITE_OK, "%s", msg ? msg : "");
    cr_assert_null(g.p, "a gap in a clinic's transition sequence: %s", g.p);
    /* a patient with transitions has had its evaluation state stored with
     * them (patient '': a clinic's system alert, which belongs to none), and
     * the count of its failing rules with the rows that name them */
    static const char wake[] =
        "SELECT clinic, patient FROM patients p WHERE failing != (SELECT count(*)"
        " FROM failing_rules f WHERE f.clinic = p.clinic AND f.patient = p.patient) UNION ALL "
        "SELECT clinic, patient FROM (SELECT DISTINCT clinic, patient FROM transitions"
        " WHERE patient != '') t"
        " WHERE NOT EXISTS (SELECT 1 FROM patients p WHERE p.clinic = t.clinic AND"
        " p.patient = t.patient AND p.clock IS NOT NULL AND p.last_seq >= (SELECT max(seq)"
        " FROM events e WHERE e.clinic = t.clinic AND e.patient = t.patient AND e.at <= p.clock))";
    cr_assert_eq(sqlite3_exec(db, wake, dump_row, &g, &msg), SQLITE_OK, "%s", msg ? msg : "");
    cr_assert_null(g.p, "transitions without their patient's state: %s", g.p);
    /* an alert is its opening transition: a resolution or what staff did
     * names a stored opening of the same key */
    static const char orphans[] =
        "SELECT seq FROM transitions r WHERE r.state = 'resolved' AND NOT EXISTS (SELECT 1"
        " FROM transitions o WHERE o.seq = r.alert_id AND o.state = 'open' AND"
        " o.clinic = r.clinic AND o.key = r.key) UNION ALL SELECT id FROM alerts a"
        " WHERE NOT EXISTS (SELECT 1 FROM transitions t WHERE t.seq = a.id AND t.state = 'open')";
    cr_assert_eq(sqlite3_exec(db, orphans, dump_row, &g, &msg), SQLITE_OK, "%s",
                 msg ? msg : "");
    cr_assert_null(g.p, "alerts without their transition: %s", g.p);
    /* a key's transitions alternate: open, resolved, open, ... */
    static const char alternate[] =
        "SELECT a.seq FROM transitions a JOIN transitions b ON b.clinic = a.clinic AND"
        " b.key = a.key AND b.seq = (SELECT min(seq) FROM transitions c WHERE"
        " c.clinic = a.clinic AND c.key = a.key AND c.seq > a.seq) WHERE a.state = b.state";
    cr_assert_eq(sqlite3_exec(db, alternate, dump_row, &g, &msg), SQLITE_OK, "%s",
                 msg ? msg : "");
    cr_assert_null(g.p, "a key opened or resolved twice in a row: %s", g.p);
    cr_assert_eq(sqlite3_close(db), SQLITE_OK);
    return b.p ? b.p : strdup("");
}

static int db_has_rejected(const char *path, const char *source, long line)
{
    sqlite3 *db;
    sqlite3_stmt *s;
    cr_assert_eq(sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE, NULL), SQLITE_OK);
    cr_assert_eq(sqlite3_prepare_v2(db, "SELECT count(*) FROM rejected WHERE source = ?1 AND"
                                        " line = ?2", -1, &s, NULL), SQLITE_OK);
    sqlite3_bind_text(s, 1, source, -1, SQLITE_STATIC);
    sqlite3_bind_int64(s, 2, line);
    cr_assert_eq(sqlite3_step(s), SQLITE_ROW);
    int n = sqlite3_column_int(s, 0);
    sqlite3_finalize(s);
    sqlite3_close(db);
    return n;
}

static void copy_file(const char *from, const char *to)
{
    char *text;
    FILE *f = fopen(from, "rb");
    cr_assert_not_null(f, "%s", from);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    text = malloc((size_t)n);
    cr_assert_eq(fread(text, 1, (size_t)n, f), (size_t)n);
    fclose(f);
    char wal[1100];
    snprintf(wal, sizeof wal, "%s-wal", to);
    unlink(wal);
    snprintf(wal, sizeof wal, "%s-shm", to);
    unlink(wal);
    f = fopen(to, "wb");
    cr_assert_not_null(f, "%s", to);
    cr_assert_eq(fwrite(text, 1, (size_t)n, f), (size_t)n);
    fclose(f);
    free(text);
}

/* Asserts that the database text is `want`; on a difference keeps both in
 * dir (got.txt, want.txt) and shows the first differing line. */
static void expect_db(const char *dir, long n, const char *got, const char *want,
                      const char *what)
{
    if (!strcmp(got, want))
        return;
    char path[512];
    snprintf(path, sizeof path, "%s/got.txt", dir);
    FILE *f = fopen(path, "w");
    if (f)
        fputs(got, f), fclose(f);
    snprintf(path, sizeof path, "%s/want.txt", dir);
    if ((f = fopen(path, "w")))
        fputs(want, f), fclose(f);
    size_t i = 0, line = 0;
    while (got[i] && got[i] == want[i])
        if (got[i++] == '\n')
            line = i;
    cr_assert_fail("N=%ld: %s\n  got:  %.300s\n  want: %.300s\n  (both kept in %s)", n, what,
                   got + line, want + line, dir);
}

/* Puts the template's content into the database at path, under the store's
 * open connection (which sees the change at its next read). */
static void db_restore(const char *tmpl, const char *path)
{
    sqlite3 *src, *dst;
    cr_assert_eq(sqlite3_open_v2(tmpl, &src, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    cr_assert_eq(sqlite3_open_v2(path, &dst, SQLITE_OPEN_READWRITE, NULL), SQLITE_OK);
    sqlite3_backup *b = sqlite3_backup_init(dst, "main", src, "main");
    cr_assert_not_null(b, "%s", sqlite3_errmsg(dst));
    cr_assert_eq(sqlite3_backup_step(b, -1), SQLITE_DONE);
    cr_assert_eq(sqlite3_backup_finish(b), SQLITE_OK);
    cr_assert_eq(sqlite3_close(src), SQLITE_OK);
    cr_assert_eq(sqlite3_close(dst), SQLITE_OK);
}

/* ---- the operations -------------------------------------------------------------- */

#define SOURCE "batch.jsonl"
#define EV(id, patient, type, at, data)                                                      \
    "{\"id\":\"" id "\",\"clinic\":\"north\",\"patient\":\"" patient "\",\"type\":\"" type \
    "\",\"at\":\"" at "\"" data "}\n"

/* Already stored before the batch (so that the batch meets a duplicate and a
 * conflict). */
static const char ingest_before[] =
    EV("e0", "p-0", "enrolled", "2026-03-01T09:00:00Z", ",\"data\":{\"program\":\"ketamine\"}");
/* Stored, stored, duplicate, conflict, rejected, stored, rejected, stored. */
static const char ingest_batch[] =
    EV("e1", "p-1", "enrolled", "2026-03-01T09:00:00Z", ",\"data\":{\"program\":\"ketamine\"}")
    EV("e2", "p-1", "infusion", "2026-03-02T10:00:00-05:00", ",\"data\":{\"dose_mg_per_kg\":0.5}")
    EV("e0", "p-0", "enrolled", "2026-03-01T09:00:00Z", ",\"data\":{\"program\":\"ketamine\"}")
    EV("e0", "p-0", "enrolled", "2026-03-01T10:00:00Z", ",\"data\":{\"program\":\"ketamine\"}")
    "{\"id\":\"e9\",\"clinic\":\"north\",\"type\":\"infusion\",\"at\":\"2026-03-02T10:00:00Z\"}\n"
    EV("e3", "p-2", "enrolled", "2026-03-03T09:00:00Z", ",\"data\":{\"program\":\"ketamine\"}")
    "not json at all\n"
    EV("e4", "p-1", "vitals", "2026-03-02T09:50:00-05:00",
       ",\"data\":{\"systolic\":165,\"diastolic\":95,\"phase\":\"pre\"}");

/* One patient's first days: too-soon infusions, high blood pressure, a
 * PHQ-9 with item 9 set; evaluated up to EVAL_UNTIL this opens and resolves
 * alerts at several instants. */
static const char eval_events[] =
    EV("k1", "p-1", "enrolled", "2026-03-01T09:00:00Z", ",\"data\":{\"program\":\"ketamine\"}")
    EV("k2", "p-1", "vitals", "2026-03-02T09:00:00Z",
       ",\"data\":{\"systolic\":170,\"diastolic\":90,\"phase\":\"pre\"}")
    EV("k3", "p-1", "infusion", "2026-03-02T10:00:00Z", ",\"data\":{\"dose_mg_per_kg\":0.5}")
    EV("k4", "p-1", "assessment", "2026-03-02T12:00:00Z",
       ",\"data\":{\"instrument\":\"phq9\",\"score\":18,\"item9\":1}")
    EV("k5", "p-1", "vitals", "2026-03-02T20:00:00Z",
       ",\"data\":{\"systolic\":130,\"diastolic\":80,\"phase\":\"pre\"}")
    EV("k6", "p-1", "infusion", "2026-03-02T22:00:00Z", ",\"data\":{\"dose_mg_per_kg\":0.6}")
    EV("k7", "p-1", "adverse_event", "2026-03-03T08:00:00Z",
       ",\"data\":{\"kind\":\"nausea\",\"severity\":\"moderate\"}")
    EV("k8", "p-1", "followup_visit", "2026-03-04T09:00:00Z", "")
    /* a patient plan: the parameters in force are then written as JSON per
     * transition (evaluation reads compiled data, so this is where jansson
     * still allocates during an evaluation) */
    EV("k9", "p-1", "plan_adjusted", "2026-03-04T10:00:00Z", ",\"data\":{\"acute_infusions\":4}")
    /* and a patient of a clinic whose protocol fails: evaluation errors are
     * written in the same transaction */
    "{\"id\":\"w1\",\"clinic\":\"west\",\"patient\":\"q-1\",\"type\":\"enrolled\","
    "\"at\":\"2026-03-01T09:00:00Z\"}\n"
    "{\"id\":\"w2\",\"clinic\":\"west\",\"patient\":\"q-1\",\"type\":\"infusion\","
    "\"at\":\"2026-03-02T09:00:00Z\"}\n";
static const char west_protocol[] =
    "local R = require 'regimen'\n"
    "return R.protocol { id = 'west.boom', version = '1',\n"
    "  rules = {\n"
    "    { id = 'west.boom', severity = 'info', check = function(h, now, p)\n"
    "        if h:last('infusion') then error('boom') end\n"
    "        return R.alert { message = 'enrolled' }\n"
    "      end } } }\n";
static char west_dir[512];
#define EVAL_UNTIL "2026-03-09T00:00:00Z"

typedef struct notes {
    long lines[16];
    int n;
} notes;

static void on_reject(void *ud, const char *source, long line, const char *field,
                      const char *reason)
{
    notes *nt = ud;
    (void)field;
    (void)reason;
    cr_assert_str_eq(source, SOURCE);
    if (nt->n < (int)RG_COUNTOF(nt->lines))
        nt->lines[nt->n++] = line;
}

static int ingest_text(rg_store *st, const char *text, rg_ingest_counts *c, notes *nt,
                       char *err, size_t errlen)
{
    FILE *f = fmemopen((void *)text, strlen(text), "r");
    cr_assert_not_null(f);
    int rc = rg_ingest_file(st, f, SOURCE, c, on_reject, nt, err, errlen);
    fclose(f);
    return rc;
}

/* durable as `regimen ingest` and serve open it, or not as simulate does */
static rg_store *store_open(const char *path, int durable)
{
    rg_store *st;
    char err[1024];
    rg_store_opts so = {.durable = durable};
    cr_assert_eq(rg_store_open(&st, path, &so, err, sizeof err), RG_OK, "%s", err);
    return st;
}

static long eval_errors;
static void on_eval_error(void *ud, const char *clinic, const char *patient, rg_time at,
                          const char *msg)
{
    (void)ud, (void)patient, (void)at;
    cr_assert(!strcmp(clinic, "west") && strstr(msg, "boom"),
              "an injected fault was reported as a protocol error: %s: %s", clinic, msg);
    eval_errors++;
}

static rg_engine *engine_new(rg_store *st)
{
    rg_engine *e;
    char err[2048];
    rg_engine_opts o = {.limits = RG_LIMITS_DEFAULT, .shipped = "protocols",
                        .on_error = on_eval_error};
    cr_assert_eq(rg_engine_new(&e, st, &o), RG_OK);
    cr_assert_eq(rg_engine_set_clinic(e, "north", "protocols/ketamine", err, sizeof err), RG_OK,
                 "%s", err);
    if (west_dir[0])
        cr_assert_eq(rg_engine_set_clinic(e, "west", west_dir, err, sizeof err), RG_OK, "%s", err);
    return e;
}

static rg_time eval_until(void)
{
    rg_time t;
    cr_assert_eq(rg_time_parse(EVAL_UNTIL, strlen(EVAL_UNTIL), &t, NULL, NULL, 0), RG_OK);
    return t;
}

/* ---- the sweeps ------------------------------------------------------------------ */

typedef struct sweep {
    const char *name;
    int kind, persistent, ioerr;
} sweep;

static const sweep sweeps[] = {
    {"write/sync/truncate SQLITE_IOERR on the Nth call", F_IO, 0, SQLITE_IOERR},
    {"write/sync/truncate SQLITE_FULL from the Nth call on", F_IO, 1, SQLITE_FULL},
    {"SQLite allocation N fails", F_SQL_MALLOC, 0, 0},
    {"SQLite allocations from the Nth on fail", F_SQL_MALLOC, 1, 0},
    {"Lua allocations from the Nth on fail", F_LUA_MALLOC, 1, 0},
    {"Lua allocation N fails", F_LUA_MALLOC, 0, 0},
    {"jansson allocations from the Nth on fail", F_JSON_MALLOC, 1, 0},
};

#define MAX_N 200000

typedef struct tally {
    long points, failed, committed, late; /* late: failed after the commit */
} tally;

static void summary(const char *op, const sweep *sw, const tally *t)
{
    fprintf(stderr, "faults: %s: %s: %ld injection points, %ld failed and rolled back, "
                    "%ld failed after their commit, %ld absorbed (committed complete)\n",
            op, sw->name, t->points, t->failed - t->late, t->late, t->committed);
}

typedef struct world {
    char dir[256], tmpl[512], path[512];
} world;


/* A template database holding events (and, with_engine, the provenance rows
 * that loading the clinic writes, so that each run only evaluates). */
static void world_new(world *w, const char *events, int with_engine)
{
    faults_install();
    rg_test_tmpdir(w->dir);
    snprintf(w->tmpl, sizeof w->tmpl, "%s/template.db", w->dir);
    snprintf(w->path, sizeof w->path, "%s/work.db", w->dir);
    rg_store *st = store_open(w->tmpl, 1);
    rg_ingest_counts c = {0};
    char err[1024];
    FILE *f = fmemopen((void *)events, strlen(events), "r");
    cr_assert_eq(rg_ingest_file(st, f, "setup", &c, NULL, NULL, err, sizeof err), RG_OK, "%s",
                 err);
    fclose(f);
    if (with_engine)
        rg_engine_free(engine_new(st));
    rg_store_close(st); /* checkpoints: the template is one file */
}

/* Ingest: one batch, each sweep. */
static void ingest_sweep(const sweep *sw)
{
    world w;
    skip_sync = sw->kind != F_IO;
    char err[1024];
    world_new(&w, ingest_before, 0);

    /* the fault-free run */
    copy_file(w.tmpl, w.path);
    rg_store *st = store_open(w.path, 1);
    char *before = db_check(w.path);
    rg_ingest_counts want = {0};
    notes nt = {0};
    cr_assert_eq(ingest_text(st, ingest_batch, &want, &nt, err, sizeof err), RG_OK, "%s", err);
    rg_store_close(st);
    char *after = db_check(w.path);
    cr_assert_eq(want.stored, 4);
    cr_assert_eq(want.duplicates, 1);
    cr_assert_eq(want.conflicts, 1);
    cr_assert_eq(want.rejected, 2);
    cr_assert_eq(nt.n, 3);
    cr_assert_str_neq(before, after);

    tally t = {0};
    long n;
    for (n = 1; n < MAX_N; n++) {
        copy_file(w.tmpl, w.path);
        st = store_open(w.path, 1);
        rg_ingest_counts c = {0};
        notes got = {0};
        err[0] = '\0';
        fault_arm(sw->kind, n, sw->persistent, sw->ioerr);
        int rc = ingest_text(st, ingest_batch, &c, &got, err, sizeof err);
        long hits = F.hits;
        fault_clear();
        char *now = db_check(w.path);
        if (rc == RG_OK) {
            expect_db(w.dir, n, now, after, "success reported, but the database is not the "
                                         "fault-free one");
            cr_assert(c.stored == want.stored && c.duplicates == want.duplicates &&
                      c.conflicts == want.conflicts && c.rejected == want.rejected,
                      "N=%ld: counts differ from the fault-free run", n);
            cr_assert_eq(got.n, nt.n);
        } else {
            cr_assert_gt(hits, 0, "N=%ld: failed without a fault: %s", n, err);
            cr_assert(strstr(err, SOURCE), "N=%ld: the error does not name the source: %s", n,
                      err);
            expect_db(w.dir, n, now, before, "failed, but the database changed");
            cr_assert(c.stored == 0 && c.duplicates == 0 && c.conflicts == 0 && c.rejected == 0,
                      "N=%ld: counts report lines that were rolled back", n);
        }
        /* whatever was reported as rejected is kept where an operator sees it */
        for (int i = 0; i < got.n; i++)
            cr_assert_eq(db_has_rejected(w.path, SOURCE, got.lines[i]), 1,
                         "N=%ld: line %ld reported rejected but not stored (rc %d)", n,
                         got.lines[i], rc);
        if (rc != RG_OK) { /* the fault cleared, the same call on the same store works */
            rg_ingest_counts c2 = {0};
            notes got2 = {0};
            cr_assert_eq(ingest_text(st, ingest_batch, &c2, &got2, err, sizeof err), RG_OK,
                         "N=%ld: retry: %s", n, err);
            cr_assert(c2.stored == want.stored && c2.duplicates == want.duplicates &&
                      c2.conflicts == want.conflicts && c2.rejected == want.rejected,
                      "N=%ld: retry counts differ", n);
            free(now);
            now = db_check(w.path);
            expect_db(w.dir, n, now, after, "the retry gave another database");
        }
        rg_store_close(st);
        free(now);
        if (hits == 0)
            break;
        t.points++;
        rc == RG_OK ? t.committed++ : t.failed++;
    }
    cr_assert_lt(n, MAX_N);
    cr_assert_gt(t.failed, 0, "no fault was ever reported: the sweep tests nothing");
    summary("ingest", sw, &t);
    free(before);
    free(after);
    rg_test_rmdir(w.dir);
}

/* Evaluation: every patient advanced to EVAL_UNTIL (two patients, one page,
 * one transaction: rg_engine_advance_all as simulate runs it). */
static void eval_sweep(const sweep *sw)
{
    world w;
    skip_sync = sw->kind != F_IO;
    char dir[256];
    rg_test_tmpdir(dir);
    rg_test_write(dir, "boom.lua", west_protocol);
    snprintf(west_dir, sizeof west_dir, "%s", dir);
    world_new(&w, eval_events, 1);
    rg_time until = eval_until();

    copy_file(w.tmpl, w.path);
    /* durable as serve opens it when writes can fail; as simulate otherwise
     * (allocations do not depend on it, and the sweep is faster) */
    int durable = sw->kind == F_IO;
    rg_store *st = store_open(w.path, durable);
    rg_engine *e = engine_new(st);
    char *before = db_check(w.path);
    eval_errors = 0;
    cr_assert_eq(rg_engine_advance_all(e, RG_TIME_NONE, until), 2);
    long want_errors = eval_errors;
    cr_assert_gt(want_errors, 0);
    char *after = db_check(w.path);
    cr_assert(strstr(after, "eval_errors|"), "the fault-free run stores no evaluation error");
    cr_assert(strstr(after, "transitions|"), "the fault-free run writes no transition");
    cr_assert(strstr(after, "resolved|"), "the fault-free run resolves nothing");

    /* One store and one engine through the whole sweep, as in the service:
     * whatever a fault leaves behind in them meets every later run. */
    lua_wrap lw = {0};
    if (sw->kind == F_LUA_MALLOC) {
        rg_clinic *c = rg_engine_clinic(e, "north");
        cr_assert_not_null(c);
        lua_State *L = rg_sandbox_state(c->sb);
        lw.f = lua_getallocf(L, &lw.ud);
        lua_setallocf(L, lua_fault_alloc, &lw);
    }
    tally t = {0};
    long n;
    for (n = 1; n < MAX_N; n++) {
        db_restore(w.tmpl, w.path);
        char *start = db_check(w.path);
        cr_assert_str_eq(start, before);
        free(start);
        eval_errors = 0;
        fault_arm(sw->kind, n, sw->persistent, sw->ioerr);
        long rc = rg_engine_advance_all(e, RG_TIME_NONE, until);
        long hits = F.hits;
        fault_clear();
        char *now = db_check(w.path);
        if (rc >= 0) {
            cr_assert_eq(rc, 2);
            cr_assert_eq(eval_errors, want_errors);
            expect_db(w.dir, n, now, after, "success reported, but the database is not the "
                                         "fault-free one");
        } else {
            cr_assert_gt(hits, 0, "N=%ld: failed without a fault: %s", n, rg_strerror((int)rc));
            /* the patient's page may have been committed before the query
             * for the next page failed: then it is there complete */
            int late = strcmp(now, after) == 0;
            if (late)
                t.late++;
            else
                expect_db(w.dir, n, now, before, "failed, but the database changed");
            /* the fault cleared, the same engine and store give the fault-free result */
            eval_errors = 0;
            cr_assert_eq(rg_engine_advance_all(e, RG_TIME_NONE, until), 2, "N=%ld: retry", n);
            cr_assert_eq(eval_errors, late ? 0 : want_errors); /* late: nothing left to do */
            free(now);
            now = db_check(w.path);
            expect_db(w.dir, n, now, after, "the retry gave another database");
        }
        free(now);
        if (hits == 0)
            break;
        t.points++;
        rc >= 0 ? t.committed++ : t.failed++;
    }
    cr_assert_lt(n, MAX_N);
    cr_assert_gt(t.points, 0, "no fault was ever injected: the sweep tests nothing");
    /* one failed Lua allocation is absorbed: Lua collects garbage and tries
     * again; every other kind of fault must surface */
    if (sw->kind != F_LUA_MALLOC || sw->persistent)
        cr_assert_gt(t.failed, 0, "no fault was ever reported: the sweep tests nothing");
    summary("evaluation", sw, &t);
    rg_engine_free(e);
    rg_store_close(st);
    free(before);
    free(after);
    rg_test_rmdir(w.dir);
    rg_test_rmdir(dir);
    west_dir[0] = '\0';
}

Test(faults, ingest_io_error) { ingest_sweep(&sweeps[0]); }
Test(faults, ingest_disk_full) { ingest_sweep(&sweeps[1]); }
Test(faults, ingest_sqlite_malloc_once) { ingest_sweep(&sweeps[2]); }
Test(faults, ingest_sqlite_malloc_from_n) { ingest_sweep(&sweeps[3]); }
Test(faults, eval_io_error) { eval_sweep(&sweeps[0]); }
Test(faults, eval_disk_full) { eval_sweep(&sweeps[1]); }
Test(faults, eval_sqlite_malloc_once) { eval_sweep(&sweeps[2]); }
Test(faults, eval_sqlite_malloc_from_n) { eval_sweep(&sweeps[3]); }
Test(faults, eval_lua_malloc_from_n) { eval_sweep(&sweeps[4]); }
Test(faults, eval_lua_malloc_once) { eval_sweep(&sweeps[5]); }
/* Not ingest: jansson's lexer reports a failed allocation as a syntax error
 * ("string or '}' expected"), so a valid line can be refused as bad JSON when
 * memory runs out (it is kept in the rejected table, not lost). */
Test(faults, eval_json_malloc) { eval_sweep(&sweeps[6]); }
