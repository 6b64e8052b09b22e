/*
 * pg.c - the PostgreSQL backend of the event store (see store.h; its table
 * of operations, rg_pg_ops, is at the end: store.c calls nothing else).
 *
 * One libpq connection, statements prepared once at open. The schema has
 * the same version numbers as the SQLite one (RG_SCHEMA_VERSION), kept in
 * the one-row table schema_version; rg_pg_steps[] (pg_sql.c, beside every
 * statement's text) brings a database from one version to the next, inside
 * one transaction that holds an advisory lock, so two processes opening a
 * new database at once are safe.
 *
 * Every table is keyed by clinic first and hash-partitioned by clinic, so
 * the same schema distributes unchanged on Citus (docs/scale-out.md). Text
 * keys use the "C" collation: rows come back in the byte order SQLite gives.
 *
 * Sequence numbers. A clinic's transitions are numbered (cseq) from its row
 * in `counters`, incremented in the transaction that inserts them: the row
 * lock is held to the commit, so the feed is gap-free (a rollback undoes the
 * increment) and in commit order. Events are numbered the same way per
 * clinic, so within a clinic event seq order is commit order: the history
 * cache (hcache.c), which reads "events with a newer seq", stays correct.
 * Transition seq (an alert's id) comes from one PostgreSQL SEQUENCE: unique
 * and in insertion order per connection, which is all it is used for.
 *
 * Corrections (schema v6, docs/corrections.md): an event's versions are
 * rows of their own under UNIQUE(clinic, id, replaces), and rg__decide
 * answers a known id as sqlite.c does (the same words; rg_store_same_body is
 * shared). When two transactions correct the same version at once, the
 * second's insert waits for the first and, once it commits, does nothing:
 * that event is decided again against the version then current (READ
 * COMMITTED: each statement sees what was committed before it).
 *
 * A failed statement aborts the PostgreSQL transaction (SQLite keeps it
 * open): every caller rolls back on an error, so this changes nothing for
 * them, and a COMMIT of an aborted transaction is reported as a failure.
 */
#include "store/pg.h"
#include "store/pg_sql.h"
#include "store/audit.h"
#include "core/digest.h"

#include <libpq-fe.h>

#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Statements sent and round trips made, by every connection of the process
 * (rg_store_db_counts: /metrics and the benchmark's "per evaluated patient"). */
static atomic_ullong rg__n_stmts, rg__n_trips;
/* (a statement sent also ends what the last commit's transitions answer:
 * rg_pg_clinic_transitions) */
#define RG__SENT(pg, stmts, trips)                                              \
    ((pg)->feed_ok = 0,                                                          \
     atomic_fetch_add_explicit(&rg__n_stmts, (stmts), memory_order_relaxed),     \
     atomic_fetch_add_explicit(&rg__n_trips, (trips), memory_order_relaxed))

typedef struct rg__pre rg__pre;
typedef struct rg__args rg__args;
static int rg__puts_flush(rg_pg *pg);
static void rg__puts_drop(rg_pg *pg);
static void rg__pre_free(rg_pg *pg);
static void rg_pg_rollback(rg_pg *pg);
static void rg__analyze(rg_pg *pg, int txs, int evs);
static void rg__txs_drop(rg_pg *pg);
static int rg__writes_flush(rg_pg *pg);
static int rg__puts_add(rg_pg *pg, const char *clinic, const char *patient,
                        const rg_patient_state *ps);
static int rg__txs_add(rg_pg *pg, const rg_transition *t, int64_t *alert_idp);
static int rg__pipe_result(rg_pg *pg, PGresult **keep, int ok);
static PGresult *rg__kept_and(rg_pg *pg, const char *final, const rg__args *fa);
static PGresult *rg__commit_pipelined(rg_pg *pg);
static void rg__fed_drop(rg_pg *pg);
static int rg__feed(rg_pg *pg, const char *clinic, int64_t after_cseq, int limit,
                    int (*fn)(void *ud, const rg_transition *t), void *ud, int *rc);

/* Patient states written in a write transaction, sent as one statement
 * before the transaction's next statement (rg_pg_patient_put). */
typedef struct rg__puts {
    rg_buf col[8]; /* array literals of P_PATIENTS_PUT_MANY */
    char **keys;   /* "clinic\037patient" of each, to send a second one apart */
    int n, cap;
} rg__puts;

/* Audit entries appended inside a write transaction that locked the
 * chain (rg_pg_audit_insert), sent as one statement (P_AUDIT_INSERT_MANY)
 * before the transaction's next statement or with its COMMIT: the chain's
 * tip moves in memory meanwhile (pg->chain), so each entry's hash follows
 * the one before it as when each was written at once. */
typedef struct rg__aud {
    rg_audit_entry e;
    char *mem; /* its strings */
} rg__aud;

typedef struct rg__auds {
    rg_buf col[11]; /* the array literals $1..$11 */
    rg__aud *e;     /* a copy of each, to chain them again (rg__auds_check) */
    int n, cap;
} rg__auds;

/* Transitions recorded inside a write transaction while writes are deferred
 * (rg_store_defer_writes), sent as one statement (P_TRANSITIONS_MANY) before
 * the next statement, at COMMIT, or past RG__TXS_MAX; an opening's id is a
 * token until then (map: token -> the id it got, until the transaction
 * ends), and a resolution of an opening in the same batch names its place. */
#define RG__TXS_MAX 1024
enum { RG__TXS, RG__EVS }; /* rg_pg.grown's rows: transitions, events */
#define RG__TOKEN0 (-((int64_t)1 << 40)) /* tokens: RG__TOKEN0 - k, k >= 0 */

/* A transition as written, its strings in mem (one block), for the feed's
 * read after the commit (rg_pg_clinic_transitions). */
typedef struct rg__fed {
    rg_transition t;
    char *mem;
} rg__fed;

typedef struct rg__txs {
    rg_buf col[17]; /* the array literals $1..$17 */
    int64_t tok[RG__TXS_MAX]; /* an opening's token, else 0 */
    rg__fed *cp; /* [RG__TXS_MAX]: a copy of each */
    uint64_t kh[RG__TXS_MAX]; /* a hash of each one's (clinic, key): rg__txs_once */
    int n;
    int64_t *map_tok, *map_id;
    int nmap, cap_map;
    int64_t next; /* tokens handed out in this connection */
} rg__txs;

struct rg_backend {
    PGconn *conn;
    uint64_t rollbacks;
    char msg[256];   /* the last error, one line */
    char fault[256]; /* why the last write failed; "" once a commit succeeded */
    rg_time fault_since;
    void (*on_commit)(void *ud);
    void *on_commit_ud;
    /* the clinics whose leases this connection holds, as an array literal
     * ("{a,b}") for the wake-up reads once rg_pg_lease_only is on */
    rg_buf leased;
    int only, listening;
    int watch_fd; /* (listening) a copy of the connection's socket (rg_store_changes_fd) */
    rg__pre *pre;  /* a group's reads, taken in advance (rg_pg_prefetch) */
    rg__puts puts; /* patient states not yet sent */
    rg__txs txs;   /* transitions not yet sent */
    rg__auds auds; /* audit entries not yet sent */
    int defer;     /* rg_store_defer_writes */
    /* the rows this connection inserted, [RG__TXS] transitions and
     * [RG__EVS] events, and at how many it runs ANALYZE of their tables
     * next (after a commit: rg__grown) */
    int64_t grown[2], analyze_at[2];
    int alone; /* rg_store_opts.alone: ANALYZE once, at close (rg__grown) */
    int flushing;  /* (rg__puts_flush runs its own statement) */
    /* The transitions the transaction sent in P_TRANSITIONS_MANY, with the
     * seq and cseq they got (fed_bad: it wrote another, P_TRANSITION); once
     * committed, the feed's read that follows (the service publishing them,
     * nothing sent in between: feed_ok) is answered from them when they
     * are the clinic's next ones (rg_pg_clinic_transitions). */
    rg__fed *fed;
    int nfed, capfed, fed_bad, feed_ok;
    /* a BEGIN not sent yet (rg_pg_begin): a transaction that sends nothing
     * sends neither it nor its COMMIT. Its first statement sent by rg__run
     * or with the kept writes goes in pipeline mode without it (ptx): */
    const char *lazy;
    /* the transaction is the server's implicit one of a pipeline not
     * synced yet: its statements are sent with a flush request, not a sync
     * (rg__run_piped), and its Sync commits it (rg_pg_commit): no BEGIN and
     * no COMMIT sent. A statement that must go another way first turns it
     * into a transaction block (rg__begin_now: BEGIN and the Sync) */
    int ptx;
    /* the audit chain's row as this transaction locked and moved it
     * (rg_pg_audit_chain, rg_pg_audit_insert): a second entry of the same
     * transaction reads it here, not again; forgotten at its end */
    rg_audit_chain chain;
    int chain_ok;
    /* The chain as this connection's last commit left it (known_ok): a
     * transaction's entries chain from it without a read of their own
     * (guess: P_AUDIT_INSERT_MANY locks the row and checks that tip, the
     * entries chained again from the one it found when another session
     * moved it, rg__auds_check) */
    rg_audit_chain known;
    int known_ok, guess;
    int64_t guess_seq;
    char guess_hash[65];
    char put_why[512];     /* why rg_pg_put_event answered a conflict */
    const char *put_field; /* and the field it is about */
};

/* (defined below, called before) */
static void rg_pg_close(rg_pg *pg);

/* The parameters of one statement, as libpq takes them. */
#define RG__MAXARGS 32 /* (P_TRANSITIONS_MANY: 26) */
struct rg__args {
    const char *v[RG__MAXARGS];
    int len[RG__MAXARGS], fmt[RG__MAXARGS], n;
    int bin; /* 1: the result in binary (rg__col_* read either form) */
    char num[RG__MAXARGS][24];
};

static void rg__text(rg__args *a, const char *s)
{
    a->fmt[a->n] = 0;
    a->len[a->n] = 0;
    a->v[a->n++] = s;
}

static void rg__int(rg__args *a, int64_t v)
{
    snprintf(a->num[a->n], sizeof a->num[0], "%lld", (long long)v);
    rg__text(a, a->num[a->n]);
}

static void rg__time(rg__args *a, rg_time t)
{
    if (t == RG_TIME_NONE)
        rg__text(a, NULL);
    else
        rg__int(a, t);
}

/* The wake-up reads' last parameter: the leased clinics, or NULL for all. */
static void rg__leased(rg__args *a, const rg_pg *pg)
{
    rg__text(a, pg->only ? (pg->leased.len ? pg->leased.p : "{}") : NULL);
}

/* Raw bytes (a bytea), sent as they are: NULL or empty is SQL NULL. */
static void rg__bytes(rg__args *a, const void *p, size_t n)
{
    a->fmt[a->n] = 1;
    a->len[a->n] = (int)n;
    a->v[a->n++] = n ? p : NULL;
}

static int rg_pg_url(const char *path)
{
    return path && (!strncmp(path, "postgresql://", 13) || !strncmp(path, "postgres://", 11));
}

/* libpq's message as one line. */
static void rg__msg(rg_pg *pg, const char *m)
{
    snprintf(pg->msg, sizeof pg->msg, "%s", m && *m ? m : "unknown PostgreSQL error");
    for (char *c = pg->msg; *c; c++)
        if (*c == '\n')
            *c = *(c + 1) ? ' ' : '\0';
}

static void rg__fault(rg_pg *pg)
{
    if (pg->fault[0])
        return; /* the first cause, not what followed from it */
    pg->fault_since = rg_now();
    snprintf(pg->fault, sizeof pg->fault, "%s", pg->msg);
}

/* A failure found without a statement's result: its message kept, the
 * fault noted (rg_store_fault). */
static void rg_pg_failed(rg_pg *pg, const char *msg)
{
    rg__msg(pg, msg);
    rg__fault(pg);
}

/* Writes kept for the transaction's next statement. */
static int rg__pending(const rg_pg *pg) { return pg->puts.n || pg->txs.n || pg->auds.n; }

static void rg__auds_drop(rg_pg *pg)
{
    for (int i = 0; i < pg->auds.n; i++)
        free(pg->auds.e[i].mem);
    pg->auds.n = 0;
    for (int k = 0; k < 11; k++)
        pg->auds.col[k].len = 0;
}

/* The kept audit entries' parameters (their columns closed), in a. */
static int rg__auds_args(rg_pg *pg, rg__args *a)
{
    int rc = RG_OK;
    for (int k = 0; k < 11 && rc == RG_OK; k++)
        if ((rc = rg_buf_add(&pg->auds.col[k], "}", 1)) == RG_OK)
            rg__text(a, pg->auds.col[k].p);
    if (rc == RG_OK) {
        rg__int(a, pg->chain.tip_seq);
        rg__text(a, pg->chain.tip_hash);
        if (pg->guess) {
            rg__int(a, pg->guess_seq);
            rg__text(a, pg->guess_hash);
        } else {
            rg__text(a, NULL);
            rg__text(a, NULL);
        }
    }
    return rc;
}

/* Inside a transaction, its BEGIN sent or not. */
static int rg__in_tx(const rg_pg *pg)
{
    return pg->lazy || pg->ptx || PQtransactionStatus(pg->conn) == PQTRANS_INTRANS;
}

static int rg__pipe_sync(rg_pg *pg);
static int rg__pipe_off(rg_pg *pg);

/* The pipeline's implicit transaction (pg->ptx) turned into a transaction
 * block, what was sent in it part of the block: BEGIN, then the Sync that
 * ends the pipeline (it commits nothing inside a block). */
static int rg__ptx_block(rg_pg *pg)
{
    pg->ptx = 0;
    RG__SENT(pg, 1, 1);
    int ok = PQsendQueryParams(pg->conn, "BEGIN", 0, NULL, NULL, NULL, NULL, 0) &&
             PQpipelineSync(pg->conn);
    if (!ok)
        rg__msg(pg, PQerrorMessage(pg->conn));
    else { /* the Sync's result read even after a failed BEGIN (an aborted
            * pipeline): left unread, it would make the pipeline mode's exit fail
            * and answer the connection's next piped statement */
        ok = rg__pipe_result(pg, NULL, ok);
        ok = rg__pipe_sync(pg) && ok;
    }
    ok = rg__pipe_off(pg) && ok;
    if (!ok)
        rg__fault(pg);
    return ok ? RG_OK : RG_EDB;
}

/* Sends the BEGIN kept by rg_pg_begin, before a statement that cannot
 * carry it (nor go in the pipeline of pg->ptx). */
static int rg__begin_now(rg_pg *pg)
{
    const char *sql = pg->lazy;
    if (pg->ptx)
        return rg__ptx_block(pg);
    if (!sql)
        return RG_OK;
    pg->lazy = NULL;
    RG__SENT(pg, 1, 1);
    PGresult *r = PQexec(pg->conn, sql);
    int ok = PQresultStatus(r) == PGRES_COMMAND_OK;
    if (!ok) {
        rg__msg(pg, r ? PQresultErrorMessage(r) : PQerrorMessage(pg->conn));
        rg__fault(pg);
    }
    PQclear(r);
    return ok ? RG_OK : RG_EDB;
}

/* The end of a pipeline: its sync point read (1 when it came), and pipeline
 * mode left (1 when it is off). */
static int rg__pipe_sync(rg_pg *pg)
{
    PGresult *sync = PQgetResult(pg->conn);
    int ok = sync && PQresultStatus(sync) == PGRES_PIPELINE_SYNC;
    PQclear(sync);
    return ok;
}

static int rg__pipe_off(rg_pg *pg)
{
    return PQpipelineStatus(pg->conn) == PQ_PIPELINE_OFF || PQexitPipelineMode(pg->conn);
}

/* Into the pipeline of the transaction's implicit one (pg->ptx), its
 * BEGIN kept (pg->lazy) not sent: 1, or 0 with the message kept. */
static int rg__ptx_enter(rg_pg *pg)
{
    pg->lazy = NULL;
    if (pg->ptx)
        return 1;
    if (!PQenterPipelineMode(pg->conn)) {
        rg__msg(pg, PQerrorMessage(pg->conn));
        return 0;
    }
    pg->ptx = 1;
    return 1;
}

/* The statements sent in pg->ptx's pipeline go to the server, their
 * results come back, the transaction stays open: 1, or 0. */
static int rg__ptx_flush(rg_pg *pg)
{
    return PQsendFlushRequest(pg->conn) && PQflush(pg->conn) == 0;
}

/* A prepared statement in the transaction's pipeline (pg->ptx): its result,
 * or NULL with the message kept (the pipeline is then aborted up to its
 * Sync: the caller's rollback sends it). */
static PGresult *rg__run_piped(rg_pg *pg, const char *name, const rg__args *a)
{
    RG__SENT(pg, 1, 1);
    int ok = rg__ptx_enter(pg) &&
             PQsendQueryPrepared(pg->conn, name, a ? a->n : 0, a ? a->v : NULL,
                                 a ? a->len : NULL, a ? a->fmt : NULL, a ? a->bin : 0) &&
             rg__ptx_flush(pg);
    PGresult *r = NULL;
    if (!ok)
        rg__msg(pg, PQerrorMessage(pg->conn));
    else
        ok = rg__pipe_result(pg, &r, ok);
    if (ok)
        return r;
    PQclear(r);
    rg__fault(pg);
    return NULL;
}

/* Runs prepared statement q: its result, or NULL (the error kept) on failure. */
static PGresult *rg__run(rg_pg *pg, int q, const rg__args *a)
{
    char name[16];
    snprintf(name, sizeof name, "q%d", q);
    if (rg__pending(pg) && !pg->flushing) /* the kept writes and this, one round trip */
        return rg__kept_and(pg, name, a);
    if (pg->lazy || pg->ptx)
        return rg__run_piped(pg, name, a);
    RG__SENT(pg, 1, 1);
    PGresult *r = PQexecPrepared(pg->conn, name, a ? a->n : 0, a ? a->v : NULL,
                                 a ? a->len : NULL, a ? a->fmt : NULL, a ? a->bin : 0);
    ExecStatusType s = r ? PQresultStatus(r) : PGRES_FATAL_ERROR;
    if (s == PGRES_COMMAND_OK || s == PGRES_TUPLES_OK)
        return r;
    rg__msg(pg, r ? PQresultErrorMessage(r) : PQerrorMessage(pg->conn));
    rg__fault(pg);
    PQclear(r);
    return NULL;
}

/* A statement run for its effect only. */
static int rg__do(rg_pg *pg, int q, const rg__args *a)
{
    PGresult *r = rg__run(pg, q, a);
    PQclear(r);
    return r ? RG_OK : RG_EDB;
}

static int rg__exec(rg_pg *pg, const char *sql)
{
    if (rg__pending(pg) && rg__writes_flush(pg))
        return RG_EDB;
    if (rg__begin_now(pg))
        return RG_EDB;
    RG__SENT(pg, 1, 1);
    PGresult *r = PQexec(pg->conn, sql);
    ExecStatusType s = r ? PQresultStatus(r) : PGRES_FATAL_ERROR;
    int ok = s == PGRES_COMMAND_OK || s == PGRES_TUPLES_OK;
    if (!ok)
        rg__msg(pg, r ? PQresultErrorMessage(r) : PQerrorMessage(pg->conn));
    PQclear(r);
    return ok ? RG_OK : RG_EDB;
}

static int64_t rg__col_int(const PGresult *r, int row, int col)
{
    if (PQfformat(r, col) == 1) { /* binary (the prefetch's events): big-endian int8 or int4 */
        const unsigned char *b = (const unsigned char *)PQgetvalue(r, row, col);
        int n = PQgetlength(r, row, col);
        uint64_t v = 0;
        for (int i = 0; i < n && i < 8; i++)
            v = v << 8 | b[i];
        return n == 4 ? (int64_t)(int32_t)(uint32_t)v : n == 8 ? (int64_t)v : 0;
    }
    return strtoll(PQgetvalue(r, row, col), NULL, 10);
}

static rg_time rg__col_time(const PGresult *r, int row, int col)
{
    return PQgetisnull(r, row, col) ? RG_TIME_NONE : rg__col_int(r, row, col);
}

static const char *rg__col_text(const PGresult *r, int row, int col)
{
    return PQgetvalue(r, row, col); /* "" for NULL */
}

/* A bytea column in text form ("\x0a1b...") decoded into b; in binary form
 * (the prefetch's events) its bytes as they are. */
static int rg__col_bytes(const PGresult *r, int row, int col, rg_buf *b)
{
    const char *h = PQgetvalue(r, row, col);
    b->len = 0;
    if (PQfformat(r, col) == 1) {
        size_t n = PQgetisnull(r, row, col) ? 0 : (size_t)PQgetlength(r, row, col);
        return n ? rg_buf_add(b, h, n) : RG_OK;
    }
    if (PQgetisnull(r, row, col) || strncmp(h, "\\x", 2))
        return RG_OK;
    h += 2;
    size_t n = strlen(h) / 2;
    if (b->cap < n + 1) {
        char *p = realloc(b->p, n + 1);
        if (!p)
            return RG_ENOMEM;
        b->p = p;
        b->cap = n + 1;
    }
    for (size_t i = 0; i < n; i++) {
        unsigned hi = (unsigned)h[2 * i], lo = (unsigned)h[2 * i + 1];
        hi = hi <= '9' ? hi - '0' : (hi | 0x20) - 'a' + 10;
        lo = lo <= '9' ? lo - '0' : (lo | 0x20) - 'a' + 10;
        b->p[i] = (char)(hi << 4 | lo);
    }
    b->p[n] = '\0';
    b->len = n;
    return RG_OK;
}

/* A row's place in an order worked out here rather than by the server
 * (rg__order): a server's sort of wide rows (the prefetch's, every
 * transition's) cost it more than the query (bench/profile.md). Key: k,
 * then s (strcmp, the "C" collation's; NULL: none), a, b, the row. */
typedef struct rg__rowkey {
    int64_t k, a, b;
    const char *s;
    int row;
} rg__rowkey;

static int rg__rowkey_cmp(const void *x, const void *y)
{
    const rg__rowkey *p = x, *q = y;
    int c = p->k != q->k ? (p->k < q->k ? -1 : 1) : p->s && q->s ? strcmp(p->s, q->s) : 0;
    if (!c && p->a != q->a)
        c = p->a < q->a ? -1 : 1;
    if (!c && p->b != q->b)
        c = p->b < q->b ? -1 : 1;
    return c ? c : (p->row > q->row) - (p->row < q->row);
}

/* The rows of v[0..n) (each key's row set) in key order: v sorted, unless
 * the server sent them in that order already (its plans usually do:
 * checked, not assumed). */
static void rg__order(rg__rowkey *v, int n)
{
    for (int i = 1; i < n; i++)
        if (rg__rowkey_cmp(&v[i - 1], &v[i]) > 0) {
            qsort(v, (size_t)n, sizeof *v, rg__rowkey_cmp);
            return;
        }
}

/* Brings the schema to the current version under an advisory lock: a
 * second process opening a new database waits, then finds it current. */
static int rg__migrate(rg_pg *pg, const char *url, char *err, size_t errlen)
{
    int version = -1;
    if (rg__exec(pg, "BEGIN") ||
        rg__exec(pg, "SELECT pg_advisory_xact_lock(7468353)") || /* "rg" + schema */
        rg__exec(pg, "CREATE TABLE IF NOT EXISTS schema_version(version integer NOT NULL)"))
        goto fail;
    PGresult *r = PQexec(pg->conn, "SELECT version FROM schema_version");
    if (PQresultStatus(r) == PGRES_TUPLES_OK)
        version = PQntuples(r) ? (int)rg__col_int(r, 0, 0) : 0;
    else
        rg__msg(pg, PQresultErrorMessage(r));
    PQclear(r);
    if (version < 0)
        goto fail;
    if (version > RG_SCHEMA_VERSION) {
        rg__exec(pg, "ROLLBACK");
        return rg_fail(err, errlen, RG_EDB,
                       "database %s: schema version %d is newer than this program (%d); "
                       "use a newer regimen", url, version, RG_SCHEMA_VERSION);
    }
    int from = version;
    for (size_t i = 0; i < rg_pg_nsteps; i++) {
        if (rg_pg_steps[i].from != version)
            continue;
        char set[96];
        snprintf(set, sizeof set, "DELETE FROM schema_version; INSERT INTO schema_version"
                 " VALUES(%d)", rg_pg_steps[i].to);
        if (rg__exec(pg, rg_pg_steps[i].sql) || rg__exec(pg, set))
            goto fail_at;
        version = rg_pg_steps[i].to;
    }
    if (version != RG_SCHEMA_VERSION) {
        snprintf(pg->msg, sizeof pg->msg, "no upgrade step from version %d", version);
        goto fail_at;
    }
    if (rg__exec(pg, "COMMIT"))
        goto fail_at;
    return RG_OK;
fail_at:
    rg_fail(err, errlen, RG_EDB, "database %s: cannot upgrade the schema from version %d: %s",
            url, from, pg->msg);
    rg__exec(pg, "ROLLBACK");
    return RG_EDB;
fail:
    rg_fail(err, errlen, RG_EDB, "database %s: cannot read the schema version: %s", url, pg->msg);
    rg__exec(pg, "ROLLBACK");
    return RG_EDB;
}

/* The URL without its password, for messages. */
static const char *rg__safe_url(const char *url, char *buf, size_t len)
{
    const char *at = strchr(url, '@'), *scheme = strstr(url, "://");
    const char *colon = scheme ? strchr(scheme + 3, ':') : NULL;
    if (at && colon && colon < at)
        snprintf(buf, len, "%.*s:***%s", (int)(colon - url), url, at);
    else
        snprintf(buf, len, "%s", url);
    return buf;
}

static int rg_pg_open(rg_pg **out, const char *url, const rg_store_opts *opts, char *err,
                      size_t errlen)
{
    char safe[512];
    /* (commits are durable, synchronous_commit, and pages checked by the server) */
    *out = NULL;
    rg__safe_url(url, safe, sizeof safe);
    rg_pg *pg = calloc(1, sizeof *pg);
    if (!pg)
        return rg_fail(err, errlen, RG_ENOMEM, "out of memory");
    pg->conn = PQconnectdb(url);
    if (!pg->conn || PQstatus(pg->conn) != CONNECTION_OK) {
        rg__msg(pg, pg->conn ? PQerrorMessage(pg->conn) : "out of memory");
        rg_fail(err, errlen, RG_EDB, "cannot connect to database %s: %s", safe, pg->msg);
        rg_pg_close(pg);
        return RG_EDB;
    }
    /* quiet NOTICEs ("relation already exists, skipping") on stderr */
    rg__exec(pg, "SET client_min_messages = warning");
    int rc = rg__migrate(pg, safe, err, errlen);
    if (!rc && rg__exec(pg, rg_pg_txs_fn)) /* (P_TRANSITIONS_MANY's, this session's own) */
        rc = rg_fail(err, errlen, RG_EDB, "database %s: %s", safe, pg->msg);
    for (int i = 0; !rc && i < P__COUNT; i++) {
        char name[16];
        snprintf(name, sizeof name, "q%d", i);
        PGresult *r = PQprepare(pg->conn, name, rg_pg_sql[i], 0, NULL);
        if (PQresultStatus(r) != PGRES_COMMAND_OK) {
            rg__msg(pg, PQresultErrorMessage(r));
            rc = rg_fail(err, errlen, RG_EDB, "database %s: %s", safe, pg->msg);
        }
        PQclear(r);
    }
    /* a reader's transactions read one snapshot and write nothing, BEGIN
     * sent or not, as in BEGIN REPEATABLE READ READ ONLY */
    if (!rc && opts && opts->reader &&
        rg__exec(pg, "SET default_transaction_isolation = 'repeatable read';"
                     " SET default_transaction_read_only = on"))
        rc = rg_fail(err, errlen, RG_EDB, "database %s: %s", safe, pg->msg);
    pg->alone = !rc && opts && opts->alone;
    if (rc) {
        rg_pg_close(pg);
        return rc;
    }
    *out = pg;
    return RG_OK;
}

static void rg_pg_close(rg_pg *pg)
{
    if (!pg)
        return;
    if (pg->alone && PQtransactionStatus(pg->conn) == PQTRANS_IDLE)
        rg__analyze(pg, pg->grown[RG__TXS] >= 1000, pg->grown[RG__EVS] >= 1000);
    rg__pre_free(pg);
    rg__puts_drop(pg);
    free(pg->puts.keys);
    for (int k = 0; k < 8; k++)
        rg_buf_free(&pg->puts.col[k]);
    rg__txs_drop(pg);
    for (int k = 0; k < 17; k++)
        rg_buf_free(&pg->txs.col[k]);
    rg__auds_drop(pg);
    free(pg->auds.e);
    for (int k = 0; k < 11; k++)
        rg_buf_free(&pg->auds.col[k]);
    free(pg->txs.map_tok);
    free(pg->txs.map_id);
    free(pg->txs.cp);
    rg__fed_drop(pg);
    free(pg->fed);
    PQfinish(pg->conn);
    if (pg->listening)
        close(pg->watch_fd);
    rg_buf_free(&pg->leased);
    free(pg);
}

static const char *rg_pg_errmsg(rg_pg *pg) { return pg->msg[0] ? pg->msg : "not an error"; }

/* (the server checkpoints its own write-ahead log) */
static void rg_pg_wal_state(rg_pg *pg, rg_store_wal *out)
{
    (void)pg;
    (void)out;
}

static const char *rg_pg_fault(rg_pg *pg, rg_time *since)
{
    if (since)
        *since = pg->fault[0] ? pg->fault_since : RG_TIME_NONE;
    return pg->fault[0] ? pg->fault : NULL;
}

/* Kept, and sent with the transaction's first statement (pg->lazy). */
static int rg_pg_begin(rg_pg *pg)
{
    if (rg__in_tx(pg)) { /* (as PostgreSQL would: a warning, nothing more) */
        return RG_OK;
    }
    rg__fed_drop(pg);
    pg->lazy = "BEGIN";
    return RG_OK;
}

/* One snapshot for everything the transaction reads. */
static int rg_pg_begin_read(rg_pg *pg)
{
    return rg__exec(pg, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY");
}

static uint64_t rg_pg_rollbacks(const rg_pg *pg) { return pg->rollbacks; }

/* The "still open" reads (RG__STILL_OPEN) need statistics: before
 * PostgreSQL has any on a freshly grown transitions table it may scan the
 * clinic's rows for each open alert (40 ms a read at 71,000 transitions,
 * docs/scale-out.md). Autovacuum gathers them late (and never on the
 * partitioned parent), so a connection that inserted transitions runs
 * ANALYZE itself after a commit each time its count doubled since the last
 * (1,000, 2,000, 4,000, ...): a few times in all. Measured (docs/scale-out.md,
 * 66,629 transitions, autovacuum off): the open alerts of 256 patients in
 * 4.1-6.8 s before, 35-76 ms after; ANALYZE itself 0.5 s. Since schema 18
 * those reads start from open_alerts (open_alerts_by_patient), analysed
 * with it. The same for events (and patients, which their inserts
 * schedule) by the events a connection inserted: without statistics a
 * group's prefetch (P_BATCH_ALL) read every event and patient row of the
 * clinic through a bitmap scan by clinic, 11 ms a call at 13,000 pings where
 * the index lookups of its patients take 1.5 ms (bench/profile.md, session
 * 3). Each connection analyses only the tables it grew: the service's
 * ingest and evaluation connections do not analyse each other's. */
/* The columns the statements filter, join, order or group by: the wide
 * ones (bodies, fields, digests, messages, params, evidence) cost a third
 * of ANALYZE's CPU and no plan reads their statistics (bench/profile.md,
 * session 3) */
#define RG__AN_TXS                                                                       \
    "transitions (clinic, seq, cseq, key, patient, state, alert_id, at, notify_at,"      \
    " severity), open_alerts"
#define RG__AN_EVS                                                                       \
    "events (clinic, seq, id, patient, at, replaces, version, corrected_at, status),"    \
    " patients"
#define RG__AN(tables) "BEGIN; SET LOCAL default_statistics_target = 10; ANALYZE " tables "; COMMIT"
static void rg__analyze(rg_pg *pg, int txs, int evs)
{
    static const char *const sql[] = {NULL, RG__AN(RG__AN_TXS), RG__AN(RG__AN_EVS),
                                      RG__AN(RG__AN_TXS ", " RG__AN_EVS)};
    if (!txs && !evs)
        return;
    RG__SENT(pg, 4, 1);
    /* a small sample (3,000 rows a table): enough to choose the index, 0.5 s
     * at 67,000 transitions here where the default sample took 2.4 s */
    PGresult *r = PQexec(pg->conn, sql[(txs ? 1 : 0) + (evs ? 2 : 0)]);
    PQclear(r); /* (a failure costs only the statistics) */
    if (PQtransactionStatus(pg->conn) != PQTRANS_IDLE)
        PQclear(PQexec(pg->conn, "ROLLBACK"));
}

/* A run that holds the store alone (rg_store_opts.alone: sweep, simulate
 * --db) reads the open alerts only of the patients it evaluates, from
 * open_alerts' index, and gathers the statistics once at its close (for the
 * service after it) rather than at each doubling: the sweep of 16,654
 * openings ran ANALYZE 4 times, 0.77 s of its writer's server time
 * (bench/profile.md, session 2). */
static void rg__grown(rg_pg *pg)
{
    int due[2] = {0, 0};
    for (int k = 0; k < 2 && !pg->alone; k++) {
        if (!pg->analyze_at[k])
            pg->analyze_at[k] = 1000;
        if ((due[k] = pg->grown[k] >= pg->analyze_at[k]))
            pg->analyze_at[k] = 2 * pg->grown[k];
    }
    rg__analyze(pg, due[RG__TXS], due[RG__EVS]);
}


/* COMMIT of an aborted transaction "succeeds" as a ROLLBACK: that is a failure. */
static int rg_pg_commit(rg_pg *pg)
{
    PGresult *r = NULL;
    if (pg->lazy && !rg__pending(pg)) { /* nothing was sent: nothing to end */
        pg->lazy = NULL;
        pg->chain_ok = pg->guess = 0;
        if (pg->on_commit)
            pg->on_commit(pg->on_commit_ud);
        return RG_OK;
    }
    /* the pipeline's implicit transaction: its Sync commits (none after an
     * error, which rolled it back) */
    int piped = pg->lazy || pg->ptx;
    if (pg->ptx && PQpipelineStatus(pg->conn) == PQ_PIPELINE_ABORTED) {
        rg_pg_failed(pg, "the transaction was aborted by an earlier error");
        rg_pg_rollback(pg);
        return RG_EDB;
    }
    if (rg__pending(pg) || piped) {
        /* the writes kept and the COMMIT (or the Sync) in one round trip */
        if (!(r = rg__commit_pipelined(pg))) {
            rg_pg_rollback(pg);
            return RG_EDB;
        }
    }
    pg->txs.nmap = 0; /* (its tokens name nothing after the commit) */
    int chained = pg->chain_ok;
    pg->chain_ok = pg->guess = 0;
    if (!r) {
        RG__SENT(pg, 1, 1);
        r = PQexec(pg->conn, "COMMIT");
    }
    int ok = PQresultStatus(r) == PGRES_COMMAND_OK &&
             (piped || !strcmp(PQcmdStatus(r), "COMMIT"));
    if (!ok) {
        rg__msg(pg, PQresultStatus(r) == PGRES_COMMAND_OK
                        ? "the transaction was aborted by an earlier error"
                        : PQresultErrorMessage(r));
        rg__fault(pg);
        pg->rollbacks++;
    }
    PQclear(r);
    if (!ok)
        return RG_EDB;
    pg->fault[0] = '\0';
    if (chained) { /* the chain as it left it: the next transaction's entries chain from it */
        pg->known = pg->chain;
        pg->known_ok = 1;
    }
    rg__grown(pg);
    pg->feed_ok = !pg->fed_bad; /* (after the statements of the commit) */
    if (pg->on_commit)
        pg->on_commit(pg->on_commit_ud);
    return RG_OK;
}

/* The pipeline's implicit transaction (pg->ptx) rolled back: BEGIN makes it
 * a block and ROLLBACK ends it; after an error both are skipped, and the
 * Sync rolls it back. */
static void rg__ptx_abort(rg_pg *pg)
{
    pg->ptx = 0;
    RG__SENT(pg, 2, 1);
    if (PQsendQueryParams(pg->conn, "BEGIN", 0, NULL, NULL, NULL, NULL, 0) &&
        PQsendQueryParams(pg->conn, "ROLLBACK", 0, NULL, NULL, NULL, NULL, 0) &&
        PQpipelineSync(pg->conn)) {
        rg__pipe_result(pg, NULL, 0);
        rg__pipe_result(pg, NULL, 0);
        rg__pipe_sync(pg);
    }
    rg__pipe_off(pg);
}

static void rg_pg_rollback(rg_pg *pg)
{
    pg->rollbacks++;
    pg->chain_ok = pg->guess = pg->known_ok = 0;
    pg->lazy = NULL;
    rg__puts_drop(pg);
    rg__txs_drop(pg);
    rg__auds_drop(pg);
    rg__fed_drop(pg);
    pg->txs.nmap = 0;
    if (pg->ptx) {
        rg__ptx_abort(pg);
        return;
    }
    if (PQtransactionStatus(pg->conn) != PQTRANS_IDLE) {
        RG__SENT(pg, 1, 1);
        PGresult *r = PQexec(pg->conn, "ROLLBACK");
        PQclear(r);
    }
}

static void rg_pg_on_commit(rg_pg *pg, void (*fn)(void *ud), void *ud)
{
    pg->on_commit = fn;
    pg->on_commit_ud = ud;
}

/* Binds ev as $1..$13 of an event insert. */
static void rg__bind_event(rg__args *a, const rg_event *ev, rg_time received)
{
    rg__text(a, ev->clinic);
    rg__text(a, ev->id);
    rg__text(a, ev->patient);
    rg__text(a, ev->type);
    rg__int(a, ev->at);
    rg__int(a, ev->offset_min);
    rg__text(a, ev->body);
    rg__int(a, received);
    rg__bytes(a, ev->fields.p, ev->fields.len);
    rg__int(a, ev->version);
    rg__text(a, ev->status == RG_STATUS_FINAL ? NULL : rg_event_status_name(ev->status));
    rg__time(a, ev->corrected_at);
    rg__text(a, ev->corrected_by);
}

#define RG__AGAIN 1 /* rg__decide: another transaction corrected it first */
#define RG__CONFLICT(f, ...)                                        \
    do {                                                            \
        pg->put_field = (f);                                        \
        snprintf(pg->put_why, sizeof pg->put_why, __VA_ARGS__);     \
        *res = RG_PUT_CONFLICT;                                     \
        return RG_OK;                                               \
    } while (0)

/* ev's (clinic, id) is stored: a duplicate, a conflict or a correction,
 * decided against the id's current version (seq, version, patient, type,
 * body in columns k.. of row 0 of cur) as sqlite.c's rg_store_put_event
 * decides, in the same words. A correction is stored and schedules its
 * patient at its corrected_at. */
static int rg__decide(rg_pg *pg, const rg_event *ev, rg_time received, const PGresult *cur,
                      int k, rg_put *res)
{
    int64_t cur_seq = rg__col_int(cur, 0, k), cur_version = rg__col_int(cur, 0, k + 1);
    const char *cur_patient = rg__col_text(cur, 0, k + 2), *cur_type = rg__col_text(cur, 0, k + 3);
    if (ev->version == cur_version) {
        int same = rg_store_same_body(rg__col_text(cur, 0, k + 4), ev);
        if (same < 0)
            return same;
        if (!same)
            RG__CONFLICT("id", "an event with this clinic and id is already stored with "
                         "different content; it was not overwritten (a correction has a higher "
                         "version)");
        *res = RG_PUT_DUPLICATE;
        return RG_OK;
    }
    if (ev->version < cur_version) {
        rg__args a = {0};
        rg__text(&a, ev->clinic);
        rg__text(&a, ev->id);
        rg__int(&a, ev->version);
        PGresult *r = rg__run(pg, P_EVENT_VERSION_BODY, &a);
        if (!r)
            return RG_EDB;
        int same = PQntuples(r) ? rg_store_same_body(rg__col_text(r, 0, 0), ev) : 0;
        int found = PQntuples(r) > 0;
        PQclear(r);
        if (same < 0)
            return same;
        if (same) {
            *res = RG_PUT_DUPLICATE;
            return RG_OK;
        }
        if (found)
            RG__CONFLICT("id", "version %lld of this event is already stored with different "
                         "content; it was not overwritten", (long long)ev->version);
        RG__CONFLICT("version", "stale version %lld, stored is %lld; it was not stored",
                     (long long)ev->version, (long long)cur_version);
    }
    if (strcmp(cur_patient, ev->patient) != 0)
        RG__CONFLICT("patient", "a correction must keep the patient: version %lld is stored "
                     "for patient '%.128s', not '%.128s'", (long long)cur_version, cur_patient,
                     ev->patient);
    if (ev->status == RG_STATUS_ERROR && strcmp(cur_type, ev->type) != 0)
        RG__CONFLICT("type", "an entered-in-error correction must keep the type: version %lld "
                     "is a '%.64s' event, not '%.64s'", (long long)cur_version, cur_type,
                     ev->type);
    rg__args a = {0};
    rg__bind_event(&a, ev, received);
    rg__int(&a, cur_seq);
    PGresult *r = rg__run(pg, P_EVENT_INSERT_VERSION, &a);
    if (!r)
        return RG_EDB;
    int stored = !PQgetisnull(r, 0, 0);
    PQclear(r);
    if (!stored)
        return RG__AGAIN;
    *res = RG_PUT_CORRECTED;
    return RG_OK;
}
#undef RG__CONFLICT

/* The same, reading the current version first: for an event that another
 * transaction stored after this one's statement began, and again each time
 * another transaction corrects it first (each statement sees what was
 * committed before it: READ COMMITTED). */
static int rg__put_known(rg_pg *pg, const rg_event *ev, rg_time received, rg_put *res)
{
    for (int tries = 0; tries < 16; tries++) {
        rg__args a = {0};
        rg__text(&a, ev->clinic);
        rg__text(&a, ev->id);
        PGresult *r = rg__run(pg, P_EVENT_CURRENT, &a);
        if (!r)
            return RG_EDB;
        int rc = PQntuples(r) ? rg__decide(pg, ev, received, r, 0, res) : RG_EDB;
        if (!PQntuples(r))
            rg__msg(pg, "a stored event disappeared");
        PQclear(r);
        if (rc != RG__AGAIN)
            return rc;
    }
    rg__msg(pg, "the event was corrected by others 16 times while this correction was stored");
    return RG_EDB;
}

static int rg_pg_put_event(rg_pg *pg, const rg_event *ev, rg_time received, rg_put *res)
{
    rg__args a = {0};
    rg__bind_event(&a, ev, received);
    PGresult *r = rg__run(pg, P_EVENT_INSERT, &a);
    if (!r)
        return RG_EDB;
    int rc = RG_OK;
    if (!PQgetisnull(r, 0, 0)) {
        *res = RG_PUT_STORED;
        pg->grown[RG__EVS]++;
    } else if (PQgetisnull(r, 0, 1) || (rc = rg__decide(pg, ev, received, r, 1, res)) == RG__AGAIN)
        rc = rg__put_known(pg, ev, received, res);
    PQclear(r);
    return rc;
}

static const char *rg_pg_put_reason(const rg_pg *pg) { return pg->put_why; }
static const char *rg_pg_put_field(const rg_pg *pg) { return pg->put_field; }

/* An element of an array literal after its "{": "text" with " and \
 * escaped, "\\x..." for bytes, or NULL. */
static int rg__elem(rg_buf *b, const char *v, const void *bytes, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    if (b->len > 1 && rg_buf_add(b, ",", 1))
        return RG_ENOMEM;
    if (!v && !n)
        return rg_buf_add(b, "NULL", 4);
    if (rg_buf_add(b, bytes ? "\"\\\\x" : "\"", bytes ? 4 : 1))
        return RG_ENOMEM;
    for (size_t i = 0; bytes && i < n; i++) {
        unsigned char c = ((const unsigned char *)bytes)[i];
        char two[2] = {hex[c >> 4], hex[c & 15]};
        if (rg_buf_add(b, two, 2))
            return RG_ENOMEM;
    }
    for (const char *p = v, *q; p && *p; p = q) {
        for (q = p; *q && *q != '"' && *q != '\\'; q++)
            ;
        if (rg_buf_add(b, p, (size_t)(q - p)) || (*q && (rg_buf_add(b, "\\", 1) ||
                                                         rg_buf_add(b, q++, 1))))
            return RG_ENOMEM;
    }
    return rg_buf_add(b, "\"", 1);
}

/* The digest an event row keeps (RG__DIGEST16's text: the first
 * RG_EVENT_DIGEST bytes of the body's SHA-256, in lowercase hex), from the
 * one its parser worked out or from the body. */
static void rg__digest16(const rg_event *ev, char hex[RG_SHA256_HEX + 1])
{
    static const char digits[] = "0123456789abcdef";
    if (!ev->digested) {
        rg_sha256_hex(ev->body, strlen(ev->body), hex);
    } else {
        for (int i = 0; i < RG_EVENT_DIGEST; i++) {
            hex[2 * i] = digits[ev->digest[i] >> 4];
            hex[2 * i + 1] = digits[ev->digest[i] & 15];
        }
    }
    hex[2 * RG_EVENT_DIGEST] = '\0';
}

static int rg_pg_put_events(rg_pg *pg, const rg_event *const *evs, int n, rg_time received,
                            rg_put *res)
{
    if (n == 1)
        return rg_pg_put_event(pg, evs[0], received, res);
    enum { NCOL = 13 };
    rg_buf col[NCOL] = {{0}};
    char num[24], hex[RG_SHA256_HEX + 1];
    int rc = RG_OK;
    for (int k = 0; k < NCOL && rc == RG_OK; k++)
        rc = rg_buf_add(&col[k], "{", 1);
    for (int i = 0; i < n && rc == RG_OK; i++) {
        const rg_event *ev = evs[i];
        const char *text[] = {ev->clinic, ev->id, ev->patient, ev->type};
        for (int k = 0; k < 4 && rc == RG_OK; k++)
            rc = rg__elem(&col[k], text[k], NULL, 0);
        snprintf(num, sizeof num, "%lld", (long long)ev->at);
        rc = rc ? rc : rg__elem(&col[4], num, NULL, 0);
        snprintf(num, sizeof num, "%d", ev->offset_min);
        rc = rc ? rc : rg__elem(&col[5], num, NULL, 0);
        rc = rc ? rc : rg__elem(&col[6], ev->body, NULL, 0);
        rc = rc ? rc : rg__elem(&col[7], NULL, ev->fields.len ? ev->fields.p : NULL,
                                ev->fields.len);
        snprintf(num, sizeof num, "%lld", (long long)ev->version);
        rc = rc ? rc : rg__elem(&col[8], num, NULL, 0);
        rc = rc ? rc : rg__elem(&col[9], ev->status == RG_STATUS_FINAL
                                              ? NULL : rg_event_status_name(ev->status), NULL, 0);
        snprintf(num, sizeof num, "%lld", (long long)ev->corrected_at);
        rc = rc ? rc : rg__elem(&col[10], ev->corrected_at == RG_TIME_NONE ? NULL : num, NULL, 0);
        rc = rc ? rc : rg__elem(&col[11], ev->corrected_by, NULL, 0);
        rg__digest16(ev, hex);
        rc = rc ? rc : rg__elem(&col[12], hex, NULL, 0);
        res[i] = RG_PUT_DUPLICATE; /* until the answer says it was stored */
    }
    rg__args a = {0};
    for (int k = 0; k < NCOL && rc == RG_OK; k++)
        if ((rc = rg_buf_add(&col[k], "}", 1)) == RG_OK && k < 12)
            rg__text(&a, col[k].p); /* $1..$12 */
    PGresult *r = NULL;
    if (rc == RG_OK) {
        rg__int(&a, received);
        rg__text(&a, col[12].p); /* $14 */
        r = rg__run(pg, P_EVENTS_INSERT, &a);
        rc = r ? RG_OK : RG_EDB;
    }
    for (int k = 0; k < NCOL; k++)
        rg_buf_free(&col[k]);
    for (int i = 0; r && i < PQntuples(r); i++) {
        int64_t ord = rg__col_int(r, i, 0);
        if (ord >= 1 && ord <= n)
            res[ord - 1] = RG_PUT_STORED;
    }
    if (r)
        pg->grown[RG__EVS] += PQntuples(r);
    PQclear(r);
    /* the others in order, as one by one: duplicates, conflicts, corrections */
    for (int i = 0; i < n && rc == RG_OK; i++)
        if (res[i] != RG_PUT_STORED)
            rc = rg__put_known(pg, evs[i], received, &res[i]);
    return rc;
}

static int rg_pg_reject(rg_pg *pg, const char *source, long line, const char *field,
                        const char *reason, const char *raw, size_t rawlen)
{
    rg__args a = {0};
    rg__int(&a, rg_now());
    rg__text(&a, source);
    rg__int(&a, line);
    rg__text(&a, field ? field : "");
    rg__text(&a, reason);
    rg__bytes(&a, raw, rawlen);
    if (!rawlen)
        a.v[a.n - 1] = ""; /* an empty line is kept as empty, not NULL */
    return rg__do(pg, P_REJECT, &a);
}

static int rg_pg_each_rejected(rg_pg *pg, int (*fn)(void *ud, const rg_rejected *r), void *ud)
{
    PGresult *r = rg__run(pg, P_REJECTED_ALL, NULL);
    if (!r)
        return RG_EDB;
    rg_buf raw = {0};
    int rc = RG_OK;
    for (int i = 0; i < PQntuples(r) && rc == RG_OK; i++) {
        if ((rc = rg__col_bytes(r, i, 6, &raw)))
            break;
        rg_rejected x = {
            .seq = rg__col_int(r, i, 0),
            .received = rg__col_int(r, i, 1),
            .source = rg__col_text(r, i, 2),
            .line = (long)rg__col_int(r, i, 3),
            .field = rg__col_text(r, i, 4),
            .reason = rg__col_text(r, i, 5),
            .raw = raw.len ? raw.p : "",
        };
        if ((rc = fn(ud, &x)) != 0)
            break;
    }
    rg_buf_free(&raw);
    PQclear(r);
    return rc;
}

/* An event row (RG__EV_COLS, or RG__EV_WIDE) of row i from column k on;
 * its compiled fields decoded into f, which must outlive e; when wide, its
 * data text derived from the body into *data (the caller frees it after e:
 * v12 keeps the body, not a second copy). */
static int rg__col_event(const PGresult *r, int i, int k, int wide, rg_buf *f, char **data,
                         rg_stored_event *e)
{
    int rc = rg__col_bytes(r, i, k + 4, f);
    free(*data);
    *data = NULL;
    if (wide && !PQgetisnull(r, i, k + 8)) {
        *data = rg_event_data_text(PQgetvalue(r, i, k + 8), (size_t)PQgetlength(r, i, k + 8));
        /* a body without data, or no longer JSON, has none; only memory fails */
    }
    e->seq = rg__col_int(r, i, k);
    e->at = rg__col_int(r, i, k + 1);
    e->id = rg__col_text(r, i, k + 2);
    e->type = rg__col_text(r, i, k + 3);
    e->fields = f->len ? f->p : NULL;
    e->nfields = f->len;
    e->replaces = rg__col_int(r, i, k + 5);
    e->corrected_at = rg__col_time(r, i, k + 6);
    e->status = rg_store_status_of(PQgetisnull(r, i, k + 7) ? NULL : rg__col_text(r, i, k + 7));
    e->retracted = e->status == RG_STATUS_ERROR;
    e->data = *data;
    e->version = wide ? rg__col_int(r, i, k + 9) : 0;
    e->corrected_by = wide && !PQgetisnull(r, i, k + 10) ? rg__col_text(r, i, k + 10) : NULL;
    return rc;
}

/* Event rows to fn (r freed): fn's non-zero answer, or 0. */
static int rg__each_event_row(PGresult *r, int (*fn)(void *ud, const rg_stored_event *e),
                              void *ud)
{
    rg_buf f = {0};
    char *data = NULL;
    int rc = 0;
    for (int i = 0; i < PQntuples(r) && !rc; i++) {
        rg_stored_event e;
        if ((rc = rg__col_event(r, i, 0, PQnfields(r) > 8, &f, &data, &e)))
            break;
        rc = fn(ud, &e);
    }
    free(data);
    rg_buf_free(&f);
    PQclear(r);
    return rc;
}

static int rg__pre_events(rg_pg *pg, const char *clinic, const char *patient, int64_t after,
                          int (*fn)(void *ud, const rg_stored_event *e), void *ud, int *rc);
static int rg__pre_state(rg_pg *pg, const char *clinic, const char *patient,
                         rg_patient_state *ps, int *rc);
static int rg__pre_alerts(rg_pg *pg, const char *clinic, const char *patient,
                          int (*fn)(void *ud, int64_t alert_id, const rg_transition *t),
                          void *ud, int *rc);

static int rg__events(rg_pg *pg, int q, const char *clinic, const char *patient,
                      int64_t after_seq, int (*fn)(void *ud, const rg_stored_event *e), void *ud)
{
    rg__args a = {0};
    rg__text(&a, clinic);
    rg__text(&a, patient);
    if (q == P_EVENTS_AFTER)
        rg__int(&a, after_seq);
    PGresult *r = rg__run(pg, q, &a);
    return r ? rg__each_event_row(r, fn, ud) : RG_EDB;
}

static int rg_pg_each_event(rg_pg *pg, const char *clinic, const char *patient,
                            int (*fn)(void *ud, const rg_stored_event *e), void *ud)
{
    return rg__events(pg, P_EVENTS_OF, clinic, patient, -1, fn, ud);
}

static int rg_pg_each_event_after(rg_pg *pg, const char *clinic, const char *patient,
                                  int64_t after_seq, int (*fn)(void *ud, const rg_stored_event *e),
                                  void *ud)
{
    int rc;
    if (rg__pre_events(pg, clinic, patient, after_seq, fn, ud, &rc))
        return rc;
    return rg__events(pg, after_seq < 0 ? P_EVENTS_OF : P_EVENTS_AFTER, clinic, patient,
                      after_seq, fn, ud);
}

static int rg_pg_each_event_data(rg_pg *pg, const char *clinic, const char *patient,
                                 int (*fn)(void *ud, const rg_stored_event *e), void *ud)
{
    return rg__events(pg, P_EVENTS_OF_DATA, clinic, patient, -1, fn, ud);
}

static int rg_pg_patient_get(rg_pg *pg, const char *clinic, const char *patient,
                             rg_patient_state *ps)
{
    int rc;
    if (rg__pre_state(pg, clinic, patient, ps, &rc))
        return rc;
    rg__args a = {0};
    rg__text(&a, clinic);
    rg__text(&a, patient);
    PGresult *r = rg__run(pg, P_PATIENT_GET, &a);
    if (!r)
        return RG_EDB;
    int found = PQntuples(r) == 1;
    ps->clock = found ? rg__col_time(r, 0, 0) : RG_TIME_NONE;
    ps->wake = found ? rg__col_time(r, 0, 1) : RG_TIME_NONE;
    ps->next_wake = found ? rg__col_time(r, 0, 2) : RG_TIME_NONE;
    ps->last_seq = found ? rg__col_int(r, 0, 3) : 0;
    ps->scheduled = found ? rg__col_int(r, 0, 4) : 0;
    ps->failing = found ? rg__col_int(r, 0, 5) : 0;
    PQclear(r);
    return found ? RG_OK : RG_ENOTFOUND;
}

static int rg_pg_patient_put(rg_pg *pg, const char *clinic, const char *patient,
                             const rg_patient_state *ps)
{
    int rc = rg__puts_add(pg, clinic, patient, ps);
    if (rc != RG__AGAIN)
        return rc;
    rg__args a = {0};
    rg__text(&a, clinic);
    rg__text(&a, patient);
    rg__time(&a, ps->clock);
    rg__time(&a, ps->wake);
    rg__time(&a, ps->next_wake);
    rg__int(&a, ps->last_seq);
    rg__int(&a, ps->scheduled);
    rg__int(&a, ps->failing);
    return rg__do(pg, P_PATIENT_PUT, &a);
}

/* (clinic, patient) rows to fn: how many went to fn, or RG_EDB. */
static int rg__each_patient(PGresult *r,
                            int (*fn)(void *ud, const char *clinic, const char *patient), void *ud)
{
    if (!r)
        return RG_EDB;
    int n = 0, frc = 0;
    for (int i = 0; i < PQntuples(r); i++) {
        n++;
        if ((frc = fn(ud, rg__col_text(r, i, 0), rg__col_text(r, i, 1))) != 0)
            break;
    }
    PQclear(r);
    return frc ? frc : n;
}

static int rg_pg_patients_page(rg_pg *pg, const char *after_clinic, const char *after_patient,
                               rg_time due, int limit,
                               int (*fn)(void *ud, const char *clinic, const char *patient),
                               void *ud)
{
    rg__args a = {0};
    rg__text(&a, after_clinic);
    rg__text(&a, after_patient);
    rg__int(&a, limit);
    if (due != RG_TIME_NONE) {
        rg__int(&a, due);
        rg__leased(&a, pg);
    }
    return rg__each_patient(
        rg__run(pg, due == RG_TIME_NONE ? P_PATIENTS_PAGE : P_PATIENTS_DUE_PAGE, &a), fn, ud);
}

static int rg_pg_due_patients(rg_pg *pg, const char *clinic, rg_time due, int limit,
                              int (*fn)(void *ud, const char *clinic, const char *patient),
                              void *ud)
{
    rg__args a = {0};
    rg__int(&a, due);
    rg__int(&a, limit);
    if (clinic)
        rg__text(&a, clinic);
    else
        rg__leased(&a, pg);
    return rg__each_patient(rg__run(pg, clinic ? P_CLINIC_DUE : P_PATIENTS_DUE, &a), fn, ud);
}

/* A query answering one time (or NULL). */
static int rg__one_time(rg_pg *pg, int q, rg_time *out)
{
    rg__args a = {0};
    rg__leased(&a, pg);
    PGresult *r = rg__run(pg, q, &a);
    *out = r && PQntuples(r) ? rg__col_time(r, 0, 0) : RG_TIME_NONE;
    PQclear(r);
    return r ? RG_OK : RG_EDB;
}

static int rg_pg_next_wake(rg_pg *pg, rg_time *out) { return rg__one_time(pg, P_NEXT_WAKE, out); }

/* One row of an open-alert read (P_OPEN_ALERTS, or P_BATCH_ALERTS whose
 * rows start with the patient: c0 1) handed to fn as the alert's id and its
 * last transition. */
static int rg__open_alert_row(const PGresult *r, int i, int c0, const char *clinic,
                              const char *patient,
                              int (*fn)(void *ud, int64_t alert_id, const rg_transition *t),
                              void *ud)
{
    rg_transition t = {
        .at = rg__col_int(r, i, c0 + 1),
        .due = rg__col_int(r, i, c0 + 2),
        .open = 1,
        .clinic = clinic,
        .patient = patient,
        .key = rg__col_text(r, i, c0 + 3),
        .protocol = rg__col_text(r, i, c0 + 4),
        .version = rg__col_text(r, i, c0 + 5),
        .rule = rg__col_text(r, i, c0 + 6),
        .severity = rg__col_text(r, i, c0 + 7),
        .message = rg__col_text(r, i, c0 + 8),
        .seq = rg__col_int(r, i, c0 + 9),
        .params = rg__col_text(r, i, c0 + 10),
        .evidence = rg__col_text(r, i, c0 + 11),
        .cseq = rg__col_int(r, i, c0 + 12),
    };
    return fn(ud, rg__col_int(r, i, c0), &t);
}

static int rg_pg_each_open_alert(rg_pg *pg, const char *clinic, const char *patient,
                                 int (*fn)(void *ud, int64_t alert_id, const rg_transition *t),
                                 void *ud)
{
    int prc;
    if (rg__pre_alerts(pg, clinic, patient, fn, ud, &prc))
        return prc;
    rg__args a = {0};
    rg__text(&a, clinic);
    rg__text(&a, patient);
    PGresult *r = rg__run(pg, P_OPEN_ALERTS, &a);
    if (!r)
        return RG_EDB;
    int frc = 0;
    for (int i = 0; i < PQntuples(r) && !frc; i++)
        frc = rg__open_alert_row(r, i, 0, clinic, patient, fn, ud);
    PQclear(r);
    return frc;
}

/* The last transition of the clinic's key: its seq and whether it opened
 * (seq 0 when the key has none). */
static int rg__key_last(rg_pg *pg, const char *clinic, const char *key, int64_t *seq, int *open)
{
    rg__args a = {0};
    rg__text(&a, clinic);
    rg__text(&a, key);
    PGresult *r = rg__run(pg, P_KEY_LAST, &a);
    if (!r)
        return RG_EDB;
    *seq = PQntuples(r) ? rg__col_int(r, 0, 0) : 0;
    *open = PQntuples(r) && !strcmp(rg__col_text(r, 0, 1), "open");
    PQclear(r);
    return RG_OK;
}

static int rg_pg_transition(rg_pg *pg, rg_transition *t, int64_t *alert_idp)
{
    int drc = rg__txs_add(pg, t, alert_idp);
    if (drc != RG__AGAIN)
        return drc;
    pg->fed_bad = 1; /* (not among the transaction's pg->fed) */
    int opening = t->open == 1;
    rg__args a = {0};
    if (opening)
        rg__text(&a, NULL);
    else
        rg__int(&a, *alert_idp);
    rg__int(&a, t->at);
    rg__text(&a, RG_TRANSITION_STATE(t));
    rg__text(&a, t->clinic);
    rg__text(&a, t->patient);
    rg__text(&a, t->key);
    rg__text(&a, t->protocol);
    rg__text(&a, t->version);
    rg__text(&a, t->rule);
    rg__text(&a, t->severity);
    rg__text(&a, t->message);
    rg__int(&a, t->due);
    rg__text(&a, t->params ? t->params : "{}");
    rg__text(&a, t->evidence ? t->evidence : "[]");
    rg__int(&a, rg_now());
    if (t->notify_at > t->at) /* never earlier; unset (0, RG_TIME_NONE) means at */
        rg__int(&a, t->notify_at);
    else
        rg__text(&a, NULL);
    rg__text(&a, t->cause); /* (NULL: not known) */
    PGresult *r = rg__run(pg, P_TRANSITION, &a);
    if (!r)
        return RG_EDB;
    if (!PQntuples(r)) { /* refused by the statement's guard: nothing written */
        PQclear(r);
        return opening ? RG_EDB /* the key is open already */ : RG_ENOTFOUND;
    }
    t->seq = rg__col_int(r, 0, 0);
    t->cseq = rg__col_int(r, 0, 1);
    pg->grown[RG__TXS]++;
    PQclear(r);
    if (opening)
        *alert_idp = t->seq;
    return RG_OK;
}

/* Transition rows to fn (r freed), in the order they came, or (ord, the
 * rows' places in the order wanted: rg__order) in that order: fn's non-zero
 * answer, or 0. */
static int rg__each_transition_in(PGresult *r, const rg__rowkey *ord,
                                  int (*fn)(void *ud, const rg_transition *t), void *ud)
{
    if (!r)
        return RG_EDB;
    int frc = 0;
    for (int j = 0; j < PQntuples(r) && !frc; j++) {
        int i = ord ? ord[j].row : j;
        rg_transition t = {
            .seq = rg__col_int(r, i, 0),
            .at = rg__col_int(r, i, 1),
            .open = !strcmp(rg__col_text(r, i, 2), "open")       ? 1
                    : !strcmp(rg__col_text(r, i, 2), "reraised") ? RG_TRANSITION_RERAISED
                                                                 : 0,
            .clinic = rg__col_text(r, i, 3),
            .patient = rg__col_text(r, i, 4),
            .key = rg__col_text(r, i, 5),
            .protocol = rg__col_text(r, i, 6),
            .version = rg__col_text(r, i, 7),
            .rule = rg__col_text(r, i, 8),
            .severity = rg__col_text(r, i, 9),
            .message = rg__col_text(r, i, 10),
            .due = rg__col_int(r, i, 11),
            .params = rg__col_text(r, i, 12),
            .evidence = rg__col_text(r, i, 13),
            .cseq = rg__col_int(r, i, 14),
            .notify_at = rg__col_int(r, i, 15),
            .cause = PQgetisnull(r, i, 16) ? NULL : rg__col_text(r, i, 16),
        };
        frc = fn(ud, &t);
    }
    PQclear(r);
    return frc;
}

static int rg__each_transition(PGresult *r, int (*fn)(void *ud, const rg_transition *t),
                               void *ud)
{
    return rg__each_transition_in(r, NULL, fn, ud);
}

/* Every transition after a seq, by seq or by (at, seq): the rows come
 * unsorted and in binary (P_TRANSITIONS_AFTER), sorted here by their
 * numbers: the server's sort of every wide row spilled to disk and cost
 * simulate --db more than the scan (bench/profile.md). */
static int rg_pg_each_transition(rg_pg *pg, int64_t after, int by_time,
                                 int (*fn)(void *ud, const rg_transition *t), void *ud)
{
    rg__args a = {.bin = 1};
    rg__int(&a, after);
    PGresult *r = rg__run(pg, P_TRANSITIONS_AFTER, &a);
    if (!r)
        return RG_EDB;
    int n = PQntuples(r);
    rg__rowkey *ord = malloc((size_t)(n ? n : 1) * sizeof *ord);
    if (!ord) {
        PQclear(r);
        return RG_ENOMEM;
    }
    for (int i = 0; i < n; i++) {
        int64_t seq = rg__col_int(r, i, 0);
        ord[i] = (rg__rowkey){.a = by_time ? rg__col_int(r, i, 1) : seq, .b = seq, .row = i};
    }
    rg__order(ord, n);
    int rc = rg__each_transition_in(r, ord, fn, ud);
    free(ord);
    return rc;
}

static int rg_pg_clinic_transitions(rg_pg *pg, const char *clinic, int64_t after_cseq, int limit,
                                    int (*fn)(void *ud, const rg_transition *t), void *ud)
{
    int frc;
    if (rg__feed(pg, clinic, after_cseq, limit, fn, ud, &frc))
        return frc;
    rg__args a = {0};
    rg__text(&a, clinic);
    rg__int(&a, after_cseq);
    rg__int(&a, limit);
    return rg__each_transition(rg__run(pg, P_CLINIC_TRANSITIONS, &a), fn, ud);
}

static int rg_pg_each_alert(rg_pg *pg, const char *clinic, const char *patient, const char *state,
                            const char *key, int64_t after, int limit,
                            int (*fn)(void *ud, const rg_alert_view *a), void *ud)
{
    rg__args a = {0};
    rg__text(&a, clinic);
    rg__text(&a, patient);
    rg__text(&a, state);
    rg__text(&a, key);
    rg__int(&a, limit);
    rg__int(&a, after);
    PGresult *r = rg__run(pg, key ? P_ALERT_BY_KEY : P_ALERTS_VIEW, &a);
    if (!r)
        return RG_EDB;
    int frc = 0;
    for (int i = 0; i < PQntuples(r) && !frc; i++) {
        rg_alert_view v = {
            .id = rg__col_int(r, i, 0),
            .key = rg__col_text(r, i, 1),
            .state = rg__col_text(r, i, 2),
            .patient = rg__col_text(r, i, 3),
            .protocol = rg__col_text(r, i, 4),
            .version = rg__col_text(r, i, 5),
            .rule = rg__col_text(r, i, 6),
            .severity = rg__col_text(r, i, 7),
            .message = rg__col_text(r, i, 8),
            .opened_at = rg__col_int(r, i, 9),
            .due = rg__col_int(r, i, 10),
            .resolved_at = rg__col_time(r, i, 11),
            .acked_by = PQgetisnull(r, i, 12) ? NULL : rg__col_text(r, i, 12),
            .acked_at = rg__col_time(r, i, 13),
            .snoozed_until = rg__col_time(r, i, 14),
            .notify_at = rg__col_time(r, i, 15),
        };
        frc = fn(ud, &v);
    }
    PQclear(r);
    return frc;
}

static int rg_pg_alert_action(rg_pg *pg, const char *clinic, const char *key, const char *action,
                              const char *who, const char *note, rg_time until, rg_time at)
{
    int64_t id;
    int open, q;
    if (rg__key_last(pg, clinic, key, &id, &open))
        return RG_EDB;
    if (!open)
        return RG_ENOTFOUND;
    rg__args a = {0};
    rg__text(&a, clinic);
    rg__int(&a, id);
    if (!strcmp(action, "ack")) {
        q = P_ALERT_ACK;
        rg__text(&a, who);
        rg__int(&a, at);
    } else if (!strcmp(action, "snooze")) {
        q = P_ALERT_SNOOZE;
        rg__int(&a, until);
    } else {
        q = P_ALERT_UNSNOOZE;
    }
    if (rg__do(pg, q, &a))
        return RG_EDB;
    rg__args b = {0};
    rg__int(&b, id);
    rg__text(&b, clinic);
    rg__text(&b, key);
    rg__text(&b, action);
    rg__text(&b, who ? who : "");
    rg__text(&b, note ? note : "");
    rg__time(&b, until);
    rg__int(&b, at);
    return rg__do(pg, P_ACTION_ADD, &b);
}

static int rg_pg_each_action(rg_pg *pg, const char *clinic, const char *key,
                             int (*fn)(void *ud, const rg_alert_action *a), void *ud)
{
    rg__args a = {0};
    rg__text(&a, clinic);
    rg__text(&a, key);
    PGresult *r = rg__run(pg, P_ACTIONS_OF, &a);
    if (!r)
        return RG_EDB;
    int frc = 0;
    for (int i = 0; i < PQntuples(r); i++) {
        rg_alert_action x = {
            .action = rg__col_text(r, i, 0),
            .who = rg__col_text(r, i, 1),
            .note = rg__col_text(r, i, 2),
            .until = rg__col_time(r, i, 3),
            .at = rg__col_int(r, i, 4),
        };
        if ((frc = fn(ud, &x)) != 0)
            break;
    }
    PQclear(r);
    return frc;
}

static int rg_pg_next_snooze(rg_pg *pg, rg_time *out)
{
    return rg__one_time(pg, P_NEXT_SNOOZE, out);
}

static int rg_pg_next_due(rg_pg *pg, const char *const *skip, int nskip, rg_time *wake,
                          rg_time *snooze)
{
    rg__args a = {0};
    rg_buf keys = {0};
    int bad = rg_buf_add(&keys, "{", 1);
    for (int i = 0; i < nskip && !bad; i++)
        bad = rg__elem(&keys, skip[i], NULL, 0);
    if (bad || rg_buf_add(&keys, "}", 1)) {
        rg_buf_free(&keys);
        rg_pg_failed(pg, "out of memory");
        return RG_ENOMEM;
    }
    rg__leased(&a, pg);
    rg__text(&a, keys.p);
    PGresult *r = rg__run(pg, P_NEXT_DUE, &a);
    rg_buf_free(&keys);
    int got = r && PQntuples(r);
    *wake = got ? rg__col_time(r, 0, 0) : RG_TIME_NONE;
    *snooze = got ? rg__col_time(r, 0, 1) : RG_TIME_NONE;
    PQclear(r);
    return r ? RG_OK : RG_EDB;
}

static int rg_pg_each_due_snooze(rg_pg *pg, rg_time now,
                                 int (*fn)(void *ud, const char *clinic, const char *key,
                                           const char *patient),
                                 void *ud, int *count)
{
    rg__args a = {0};
    rg__int(&a, now);
    rg__leased(&a, pg);
    PGresult *r = rg__run(pg, P_DUE_SNOOZES, &a);
    if (!r)
        return RG_EDB;
    int out = RG_OK, n = PQntuples(r);
    for (int i = 0; i < n && out == RG_OK; i++) /* the rows are all read: fn may write */
        out = fn(ud, rg__col_text(r, i, 1), rg__col_text(r, i, 2), rg__col_text(r, i, 3));
    PQclear(r);
    if (count)
        *count = n;
    return out;
}

static int rg_pg_wake_clinic(rg_pg *pg, const char *clinic, rg_time at)
{
    rg__args a = {0};
    rg__text(&a, clinic);
    rg__int(&a, at);
    rg__int(&a, 0);
    return rg__do(pg, P_WAKE_CLINIC, &a);
}

static int rg_pg_wake_failing(rg_pg *pg, const char *clinic, rg_time at)
{
    rg__args a = {0};
    rg__text(&a, clinic);
    rg__int(&a, at);
    rg__int(&a, 1);
    return rg__do(pg, P_WAKE_CLINIC, &a);
}

static int rg_pg_open_by_severity(rg_pg *pg, const char *clinic,
                                  int (*fn)(void *ud, const char *clinic, const char *severity,
                                            int64_t n),
                                  void *ud)
{
    rg__args a = {0};
    rg__text(&a, clinic);
    PGresult *r = rg__run(pg, P_OPEN_BY_SEVERITY, &a);
    if (!r)
        return RG_EDB;
    int frc = 0;
    for (int i = 0; i < PQntuples(r); i++)
        if ((frc = fn(ud, rg__col_text(r, i, 0), rg__col_text(r, i, 1), rg__col_int(r, i, 2))))
            break;
    PQclear(r);
    return frc;
}

static int rg_pg_last_cseq(rg_pg *pg, const char *clinic, int64_t *out)
{
    rg__args a = {0};
    rg__text(&a, clinic);
    PGresult *r = rg__run(pg, P_LAST_CSEQ, &a);
    *out = r ? rg__col_int(r, 0, 0) : 0;
    PQclear(r);
    return r ? RG_OK : RG_EDB;
}

static int rg_pg_get_event(rg_pg *pg, const char *clinic, const char *id,
                           int (*fn)(void *ud, const rg_stored_event *e), void *ud)
{
    rg__args a = {0};
    rg__text(&a, clinic);
    rg__text(&a, id);
    PGresult *r = rg__run(pg, P_EVENT_GET, &a);
    if (!r)
        return RG_EDB;
    /* nothing of a retracted event (its current version withdraws it) */
    if (PQntuples(r) == 0 || (!PQgetisnull(r, 0, 7) &&
                              rg_store_status_of(rg__col_text(r, 0, 7)) == RG_STATUS_ERROR)) {
        PQclear(r);
        return RG_ENOTFOUND;
    }
    return rg__each_event_row(r, fn, ud);
}

static int rg_pg_each_version(rg_pg *pg, const char *clinic, const char *id,
                              int (*fn)(void *ud, const rg_stored_event *e), void *ud)
{
    rg__args a = {0};
    rg__text(&a, clinic);
    rg__text(&a, id);
    PGresult *r = rg__run(pg, P_EVENT_VERSIONS, &a);
    return r ? rg__each_event_row(r, fn, ud) : RG_EDB;
}

static int rg_pg_each_correction(rg_pg *pg, const char *clinic, const char *patient, rg_time after,
                                 rg_time upto,
                                 int (*fn)(void *ud, const rg_stored_event *c,
                                           const rg_stored_event *replaced),
                                 void *ud)
{
    rg__args a = {0};
    rg__text(&a, clinic);
    rg__text(&a, patient);
    rg__int(&a, after);
    rg__int(&a, upto);
    PGresult *r = rg__run(pg, P_CORRECTIONS, &a);
    if (!r)
        return RG_EDB;
    rg_buf fc = {0}, fr = {0};
    char *dc = NULL, *dr = NULL;
    int rc = 0;
    for (int i = 0; i < PQntuples(r) && !rc; i++) {
        rg_stored_event c, x;
        if ((rc = rg__col_event(r, i, 0, 1, &fc, &dc, &c)) ||
            (rc = rg__col_event(r, i, 11, 1, &fr, &dr, &x)))
            break;
        rc = fn(ud, &c, &x);
    }
    free(dc);
    free(dr);
    rg_buf_free(&fc);
    rg_buf_free(&fr);
    PQclear(r);
    return rc;
}

static int rg_pg_key_transitions(rg_pg *pg, const char *clinic, const char *key,
                                 int (*fn)(void *ud, const rg_transition *t), void *ud)
{
    rg__args a = {0};
    rg__text(&a, clinic);
    rg__text(&a, key);
    return rg__each_transition(rg__run(pg, P_KEY_TRANSITIONS, &a), fn, ud);
}

static int rg__each_row(PGresult *r, int (*fn)(void *ud, const rg_event_row *e), void *ud,
                        int *count)
{
    *count = 0;
    if (!r)
        return RG_EDB;
    rg_buf f = {0};
    char *data = NULL;
    int frc = 0, i;
    for (i = 0; i < PQntuples(r) && !frc; i++) {
        if ((frc = rg__col_bytes(r, i, 10, &f)))
            break;
        free(data); /* data is derived from the body (v12) */
        data = rg_event_data_text(PQgetvalue(r, i, 8), (size_t)PQgetlength(r, i, 8));
        rg_event_row e = {
            .seq = rg__col_int(r, i, 0),
            .version = rg__col_int(r, i, 1),
            .at = rg__col_int(r, i, 2),
            .clinic = rg__col_text(r, i, 3),
            .id = rg__col_text(r, i, 4),
            .patient = rg__col_text(r, i, 5),
            .type = rg__col_text(r, i, 6),
            .data = data,
            .body = rg__col_text(r, i, 8),
            .digest = PQgetisnull(r, i, 9) ? NULL : rg__col_text(r, i, 9),
            .status = PQgetisnull(r, i, 11) ? NULL : rg__col_text(r, i, 11),
            .corrected_at = rg__col_time(r, i, 12),
            .corrected_by = PQgetisnull(r, i, 13) ? NULL : rg__col_text(r, i, 13),
        };
        e.fields = f.len ? f.p : NULL;
        e.nfields = f.len;
        frc = fn(ud, &e);
    }
    free(data);
    rg_buf_free(&f);
    PQclear(r);
    *count = i;
    return frc;
}

static int rg_pg_event_rows(rg_pg *pg, const char *after_clinic, const char *after_patient,
                            rg_time after_at, int64_t after_seq, int limit,
                            int (*fn)(void *ud, const rg_event_row *r), void *ud)
{
    rg__args a = {0};
    rg__text(&a, after_clinic);
    rg__int(&a, after_seq);
    rg__int(&a, limit);
    rg__text(&a, after_patient);
    rg__int(&a, after_at);
    int n, rc = rg__each_row(rg__run(pg, P_EVENT_ROWS, &a), fn, ud, &n);
    return rc ? rc : n;
}

static int rg_pg_event_rows_of(rg_pg *pg, const char *clinic, const char *id,
                               int (*fn)(void *ud, const rg_event_row *r), void *ud)
{
    rg__args a = {0};
    rg__text(&a, clinic);
    rg__text(&a, id);
    int n;
    return rg__each_row(rg__run(pg, P_EVENT_ROWS_OF, &a), fn, ud, &n);
}

static int rg_pg_key_clinics(rg_pg *pg, const char *key, int (*fn)(void *ud, const char *clinic),
                             void *ud)
{
    rg__args a = {0};
    rg__text(&a, key);
    PGresult *r = rg__run(pg, P_KEY_CLINICS, &a);
    if (!r)
        return RG_EDB;
    int frc = 0;
    for (int i = 0; i < PQntuples(r) && !frc; i++)
        frc = fn(ud, rg__col_text(r, i, 0));
    PQclear(r);
    return frc;
}

static int rg_pg_webhook_get(rg_pg *pg, const char *clinic, int64_t *delivered, int *attempts)
{
    rg__args a = {0};
    rg__text(&a, clinic);
    PGresult *r = rg__run(pg, P_HOOK_GET, &a);
    int found = r && PQntuples(r);
    *delivered = found ? rg__col_int(r, 0, 0) : 0;
    *attempts = found ? (int)rg__col_int(r, 0, 1) : 0;
    PQclear(r);
    return r ? RG_OK : RG_EDB;
}

static int rg_pg_webhook_delivered(rg_pg *pg, const char *clinic, int64_t cseq)
{
    rg__args a = {0};
    rg__text(&a, clinic);
    rg__int(&a, cseq);
    rg__int(&a, rg_now());
    return rg__do(pg, P_HOOK_DELIVERED, &a);
}

/* As sqlite.c's rg_store_webhook_next and rg_store_webhook_sent. */
static int rg_pg_webhook_next(rg_pg *pg, const char *clinic, rg_time now,
                              int (*fn)(void *ud, const rg_transition *t), void *ud, rg_time *wait)
{
    int64_t delivered;
    int attempts, rc;
    *wait = RG_TIME_NONE;
    if ((rc = rg_pg_webhook_get(pg, clinic, &delivered, &attempts)))
        return rc;
    rg__args a = {0};
    rg__text(&a, clinic);
    rg__int(&a, delivered);
    rg__int(&a, now);
    PGresult *r = rg__run(pg, P_HOOK_WAIT, &a);
    if (!r)
        return RG_EDB;
    *wait = PQntuples(r) ? rg__col_time(r, 0, 0) : RG_TIME_NONE;
    PQclear(r);
    return rg__each_transition(rg__run(pg, P_HOOK_NEXT, &a), fn, ud);
}

static int rg_pg_webhook_sent(rg_pg *pg, const char *clinic, int64_t cseq)
{
    int64_t delivered;
    int attempts, rc;
    if ((rc = rg_pg_webhook_get(pg, clinic, &delivered, &attempts)))
        return rc;
    if (cseq != delivered + 1) { /* it overtook one that waits for an opening */
        rg__args a = {0};
        rg__text(&a, clinic);
        rg__int(&a, cseq);
        return rg__do(pg, P_HOOK_AHEAD_ADD, &a) ? RG_EDB
                                                : rg_pg_webhook_delivered(pg, clinic, delivered);
    }
    /* the cursor moves on over what was sent ahead of it */
    for (;;) {
        rg__args a = {0};
        rg__text(&a, clinic);
        rg__int(&a, cseq + 1);
        PGresult *r = rg__run(pg, P_HOOK_AHEAD_TAKE, &a);
        if (!r)
            return RG_EDB;
        int taken = atoi(PQcmdTuples(r));
        PQclear(r);
        if (!taken)
            break;
        cseq++;
    }
    return rg_pg_webhook_delivered(pg, clinic, cseq);
}

static int rg_pg_webhook_failed(rg_pg *pg, const char *clinic, const char *error)
{
    rg__args a = {0};
    rg__text(&a, clinic);
    rg__text(&a, error);
    rg__int(&a, rg_now());
    return rg__do(pg, P_HOOK_FAILED, &a);
}

static int rg_pg_eval_error(rg_pg *pg, const char *clinic, const char *patient,
                            const char *protocol, const char *rule, rg_time at, const char *msg)
{
    rg__args a = {0};
    rg__text(&a, clinic);
    rg__text(&a, patient);
    rg__text(&a, protocol ? protocol : "");
    rg__text(&a, rule ? rule : "");
    rg__int(&a, at);
    rg__text(&a, msg);
    rg__int(&a, rg_now());
    return rg__do(pg, P_EVAL_ERROR, &a);
}

/* How many patients (clinic, protocol, rule) fails for, and since when. */
static int rg__failing_count(rg_pg *pg, const char *clinic, const char *protocol,
                             const char *rule, int64_t *n, rg_time *since)
{
    rg__args a = {0};
    rg__text(&a, clinic);
    rg__text(&a, protocol);
    rg__text(&a, rule);
    PGresult *r = rg__run(pg, P_FAILING_COUNT, &a);
    if (!r)
        return RG_EDB;
    *n = rg__col_int(r, 0, 0);
    *since = rg__col_time(r, 0, 1);
    PQclear(r);
    return RG_OK;
}

static int rg_pg_rule_failing(rg_pg *pg, const char *clinic, const char *patient,
                              const char *protocol, const char *rule, rg_time at, const char *msg,
                              int64_t *before, int64_t *after, rg_time *since)
{
    if (rg__failing_count(pg, clinic, protocol, rule, before, since))
        return RG_EDB;
    rg__args a = {0};
    rg__text(&a, clinic);
    rg__text(&a, protocol);
    rg__text(&a, rule);
    rg__text(&a, patient);
    if (msg) {
        rg__int(&a, at);
        rg__text(&a, msg);
    }
    PGresult *r = rg__run(pg, msg ? P_FAILING_ADD : P_FAILING_DEL, &a);
    if (!r)
        return RG_EDB;
    int changed = PQntuples(r) > 0;
    PQclear(r);
    if (!changed) {
        *after = *before;
        return RG_OK;
    }
    return rg__failing_count(pg, clinic, protocol, rule, after, since);
}

static int rg_pg_each_failing(rg_pg *pg, const char *clinic, const char *patient,
                              int (*fn)(void *ud, const char *protocol, const char *rule), void *ud)
{
    rg__args a = {0};
    rg__text(&a, clinic);
    rg__text(&a, patient);
    PGresult *r = rg__run(pg, P_FAILING_OF, &a);
    if (!r)
        return RG_EDB;
    int frc = 0;
    for (int i = 0; i < PQntuples(r) && !frc; i++)
        frc = fn(ud, rg__col_text(r, i, 0), rg__col_text(r, i, 1));
    PQclear(r);
    return frc;
}

static int rg_pg_failing_summary(rg_pg *pg,
                                 int (*fn)(void *ud, const char *clinic, const char *protocol,
                                           const char *rule, int64_t patients, rg_time since,
                                           const char *message),
                                 void *ud)
{
    PGresult *r = rg__run(pg, P_FAILING_ALL, NULL);
    if (!r)
        return RG_EDB;
    int frc = 0;
    for (int i = 0; i < PQntuples(r) && !frc; i++)
        frc = fn(ud, rg__col_text(r, i, 0), rg__col_text(r, i, 1), rg__col_text(r, i, 2),
                 rg__col_int(r, i, 3), rg__col_time(r, i, 4), rg__col_text(r, i, 5));
    PQclear(r);
    return frc;
}

static int rg_pg_protocol_loaded(rg_pg *pg, const char *clinic, const char *protocol,
                                 const char *version, const char *file, const char *hash)
{
    rg__args a = {0};
    rg__text(&a, clinic);
    rg__text(&a, protocol);
    rg__text(&a, version);
    rg__text(&a, file);
    rg__text(&a, hash);
    rg__int(&a, rg_now());
    return rg__do(pg, P_PROTOCOL_LOADED, &a);
}

/* ---- many workers: leases and notices ---------------------------------------------- */

/* The advisory-lock key of clinic $1's lease. */
#define RG__LEASE_KEY "hashtextextended('regimen:' || current_schema() || ':' || $1, 0)"

/* Where clinic is in pg->leased: *off and *len span its quoted name and the
 * comma before it (after it, for the first); 0 when not there. */
static int rg__leased_at(const rg_pg *pg, const char *clinic, size_t *off, size_t *len)
{
    for (size_t at = 1; pg->leased.p && at < pg->leased.len;) {
        const char *end = strpbrk(pg->leased.p + at, ",}");
        size_t n = (size_t)(end - pg->leased.p - at) - 2; /* without the quotes */
        if (n == strlen(clinic) && !memcmp(pg->leased.p + at + 1, clinic, n)) {
            int first = at == 1, last = *end == '}';
            *off = first ? at : at - 1;
            *len = n + 2 + (first && last ? 0 : 1);
            return 1;
        }
        at = (size_t)(end - pg->leased.p) + 1;
    }
    return 0;
}

/* A clinic's lease is a session advisory lock on this connection, keyed by
 * a hash of the schema's and the clinic's names (advisory locks are per
 * database; two stores in two schemas are two): PostgreSQL grants it to one session at a
 * time and drops it the moment that session ends, kill -9 of the worker
 * included (its socket closes). Held until released or the connection ends. */
static int rg_pg_lease(rg_pg *pg, const char *clinic, int *held)
{
    size_t off, len;
    *held = 0;
    if (PQstatus(pg->conn) != CONNECTION_OK) { /* the session, and every lease, ended */
        rg__msg(pg, "the connection to the database was lost, and the leases with it");
        rg__fault(pg);
        return RG_EIO;
    }
    if (rg__leased_at(pg, clinic, &off, &len)) { /* already ours */
        *held = 1;
        return RG_OK;
    }
    rg_buf name = {0};
    const char *v[1] = {clinic};
    if (rg__begin_now(pg))
        return RG_EDB;
    RG__SENT(pg, 1, 1);
    PGresult *r = PQexecParams(pg->conn, "SELECT pg_try_advisory_lock(" RG__LEASE_KEY ")", 1,
                               NULL, v, NULL, NULL, 0);
    if (PQresultStatus(r) != PGRES_TUPLES_OK) {
        rg__msg(pg, PQresultErrorMessage(r));
        PQclear(r);
        return RG_EDB;
    }
    *held = !strcmp(PQgetvalue(r, 0, 0), "t");
    PQclear(r);
    if (!*held)
        return RG_OK;
    /* names are plain (event.h: letters, digits, - _ .), yet quoted */
    if (rg_buf_add(&name, "\"", 1) || rg_buf_add(&name, clinic, strlen(clinic)) ||
        rg_buf_add(&name, "\"", 1))
        goto nomem;
    if (pg->leased.len)
        pg->leased.p[--pg->leased.len] = '\0'; /* the closing brace */
    if (rg_buf_add(&pg->leased, pg->leased.len ? "," : "{", 1) ||
        rg_buf_add(&pg->leased, name.p, name.len) || rg_buf_add(&pg->leased, "}", 1))
        goto nomem;
    rg_buf_free(&name);
    return RG_OK;
nomem:
    rg_buf_free(&name);
    return RG_ENOMEM;
}

/* Gives the lease back: off the wake-up reads' list first, so nothing of
 * the clinic is read as ours once another session may hold it. */
static int rg_pg_unlease(rg_pg *pg, const char *clinic)
{
    size_t off, len;
    if (!rg__leased_at(pg, clinic, &off, &len))
        return RG_OK;
    memmove(pg->leased.p + off, pg->leased.p + off + len, pg->leased.len - off - len + 1);
    pg->leased.len -= len;
    if (pg->leased.len == 2) /* "{}": none left, as before the first */
        pg->leased.p[pg->leased.len = 0] = '\0';
    const char *v[1] = {clinic};
    if (rg__begin_now(pg))
        return RG_EDB;
    RG__SENT(pg, 1, 1);
    PGresult *r = PQexecParams(pg->conn, "SELECT pg_advisory_unlock(" RG__LEASE_KEY ")", 1,
                               NULL, v, NULL, NULL, 0);
    int ok = PQresultStatus(r) == PGRES_TUPLES_OK;
    if (!ok)
        rg__msg(pg, PQresultErrorMessage(r));
    PQclear(r);
    return ok ? RG_OK : RG_EDB;
}

/* The workers on this store now: the sessions that hold the store's key
 * shared (rg_store_hold), as pg_locks shows them (a bigint key is its high
 * half in classid and its low half in objid, objsubid 1). */
static int rg_pg_workers(rg_pg *pg, int *n)
{
    if (rg__begin_now(pg))
        return RG_EDB;
    RG__SENT(pg, 1, 1);
    PGresult *r = PQexec(pg->conn,
                         "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted"
                         " AND mode = 'ShareLock' AND objsubid = 1 AND database ="
                         " (SELECT oid FROM pg_database WHERE datname = current_database())"
                         " AND ((classid::bigint << 32) | objid::bigint) = " RG__HOLD_KEY);
    int ok = PQresultStatus(r) == PGRES_TUPLES_OK;
    if (ok)
        *n = (int)rg__col_int(r, 0, 0);
    else
        rg__msg(pg, PQresultErrorMessage(r));
    PQclear(r);
    return ok ? RG_OK : RG_EDB;
}

static void rg_pg_lease_only(rg_pg *pg, int on) { pg->only = on; }

/* Other workers' writes come as NOTIFYs on the connection's socket. The
 * caller polls a copy of it: libpq closes its own when the session ends (a
 * failed read, any statement's), and libuv aborts on a watched descriptor
 * closed under it. The copy stays open until rg_pg_close; an ended session
 * leaves it readable, and the next rg_store_changed reports the loss. */
static int rg_pg_changes_fd(rg_pg *pg, int *fd)
{
    *fd = -1;
    if (!pg->listening) {
        /* (the channel's name is the schema's: RG__CHANNEL) */
        if (rg__begin_now(pg))
            return RG_EDB;
        RG__SENT(pg, 1, 1);
        PGresult *r = PQexec(pg->conn, "SELECT " RG__CHANNEL);
        char *id = PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1
                       ? PQescapeIdentifier(pg->conn, PQgetvalue(r, 0, 0),
                                            (size_t)PQgetlength(r, 0, 0))
                       : NULL;
        char sql[160] = "";
        if (!id)
            rg__msg(pg, PQresultStatus(r) == PGRES_TUPLES_OK ? PQerrorMessage(pg->conn)
                                                             : PQresultErrorMessage(r));
        else
            snprintf(sql, sizeof sql, "LISTEN %s", id);
        PQclear(r);
        PQfreemem(id);
        if (!sql[0] || rg__exec(pg, sql))
            return RG_EDB;
        pg->watch_fd = fcntl(PQsocket(pg->conn), F_DUPFD_CLOEXEC, 0);
        if (pg->watch_fd < 0) {
            rg__msg(pg, strerror(errno));
            return RG_EIO;
        }
        pg->listening = 1;
    }
    *fd = pg->watch_fd;
    return RG_OK;
}

/* Reads what the server sent and counts the notices in it (libpq also
 * keeps those that arrived during other statements). A LISTENing session
 * is sent its own NOTIFYs too: those are not counted, as SQLite's
 * data_version never moves for a connection's own commits. The service
 * publishes and re-arms after its own commits anyway; counting them woke
 * it once more after every commit, for the streams' read and the timer's
 * two: three statements a commit for nothing. */
static int rg_pg_changed(rg_pg *pg, void (*fn)(void *ud, const char *clinic), void *ud)
{
    int n = 0, self = PQbackendPID(pg->conn);
    if (!PQconsumeInput(pg->conn)) {
        rg__msg(pg, PQerrorMessage(pg->conn));
        rg__fault(pg);
        return RG_EDB;
    }
    for (PGnotify *x; (x = PQnotifies(pg->conn)) != NULL; PQfreemem(x)) {
        if (x->be_pid == self)
            continue;
        n++;
        if (fn) /* (the payload is the clinic, pg_sql.h) */
            fn(ud, x->extra && x->extra[0] ? x->extra : NULL);
    }
    return n;
}

/* The database as a whole, beside the per-clinic leases: every worker holds
 * it shared, a sweep or `simulate --db` alone (their transitions must never
 * enter a live feed), as holder.c does for a SQLite file. */
static int rg_pg_hold(rg_pg *pg, int alone, int *ok)
{
    *ok = 1;
    if (rg__begin_now(pg))
        return RG_EDB;
    PGresult *r = PQexec(pg->conn, alone ? "SELECT pg_try_advisory_lock(" RG__HOLD_KEY ")"
                                         : "SELECT pg_try_advisory_lock_shared(" RG__HOLD_KEY ")");
    if (PQresultStatus(r) != PGRES_TUPLES_OK) {
        rg__msg(pg, PQresultErrorMessage(r));
        PQclear(r);
        return RG_EDB;
    }
    *ok = !strcmp(PQgetvalue(r, 0, 0), "t");
    PQclear(r);
    return RG_OK;
}

/* ---- the audit trail: as sqlite.c's rg_store_audit_* ---------------------------------- */

static int rg__chain_read(rg_pg *pg, int lock, rg_audit_chain *c);

static int rg_pg_audit_chain(rg_pg *pg, int lock, rg_audit_chain *c)
{
    if (lock && pg->chain_ok && rg__in_tx(pg)) {
        *c = pg->chain; /* (locked by this transaction, or checked when its entries go in) */
        return RG_OK;
    }
    if (lock && pg->known_ok && rg__in_tx(pg) && !pg->auds.n) {
        pg->chain = *c = pg->known;
        pg->chain_ok = pg->guess = 1;
        pg->guess_seq = pg->known.tip_seq;
        snprintf(pg->guess_hash, sizeof pg->guess_hash, "%s", pg->known.tip_hash);
        return RG_OK;
    }
    return rg__chain_read(pg, lock, c);
}

/* The chain's row read, locked when lock. */
static int rg__chain_read(rg_pg *pg, int lock, rg_audit_chain *c)
{
    pg->chain_ok = pg->guess = 0;
    PGresult *r = rg__run(pg, lock ? P_AUDIT_CHAIN_LOCK : P_AUDIT_CHAIN, NULL);
    int ok = r && PQntuples(r) == 1;
    if (ok) {
        c->base_seq = rg__col_int(r, 0, 0);
        snprintf(c->base_hash, sizeof c->base_hash, "%s", rg__col_text(r, 0, 1));
        c->tip_seq = rg__col_int(r, 0, 2);
        snprintf(c->tip_hash, sizeof c->tip_hash, "%s", rg__col_text(r, 0, 3));
        c->archived_at = rg__col_time(r, 0, 4);
        if (lock) {
            pg->chain = *c;
            pg->chain_ok = 1;
        }
    }
    PQclear(r);
    return ok ? RG_OK : RG_EDB;
}

/* An entry's fields as the columns of P_AUDIT_INSERT_MANY. */
static int rg__auds_add(rg_pg *pg, const rg_audit_entry *e)
{
    char seq[24], at[24];
    snprintf(seq, sizeof seq, "%lld", (long long)e->seq);
    snprintf(at, sizeof at, "%lld", (long long)e->at);
    const char *v[11] = {seq, at, e->who, e->role, e->address, e->clinic, e->patients, e->route,
                         e->outcome, e->prev, e->hash};
    int rc = RG_OK;
    for (int k = 0; k < 11 && rc == RG_OK; k++) {
        rg_buf *b = &pg->auds.col[k];
        if (b->len && b->p[b->len - 1] == '}')
            b->len--; /* (a failed send left its closing brace) */
        if (!b->len)
            rc = rg_buf_add(b, "{", 1);
        if (rc == RG_OK)
            rc = rg__elem(b, v[k] ? v[k] : "", NULL, 0);
    }
    rg__auds *u = &pg->auds;
    if (rc == RG_OK && u->n == u->cap) {
        int cap = u->cap ? 2 * u->cap : 16;
        rg__aud *g = realloc(u->e, (size_t)cap * sizeof *g);
        if (g) {
            u->e = g;
            u->cap = cap;
        }
        rc = g ? RG_OK : RG_ENOMEM;
    }
    if (rc == RG_OK) { /* its strings in one block (seq, prev and hash set again) */
        const char *f[7] = {e->who, e->role, e->address, e->clinic, e->patients, e->route,
                            e->outcome};
        size_t len[7], n = 1;
        for (int k = 0; k < 7; k++)
            n += len[k] = strlen(f[k] ? f[k] : "") + 1;
        char *m = u->e[u->n].mem = malloc(n);
        const char *to[7];
        for (int k = 0; m && k < 7; m += len[k], k++)
            to[k] = memcpy(m, f[k] ? f[k] : "", len[k]);
        rc = u->e[u->n].mem ? RG_OK : RG_ENOMEM;
        if (rc == RG_OK)
            u->e[u->n].e = (rg_audit_entry){.at = e->at, .who = to[0], .role = to[1],
                                            .address = to[2], .clinic = to[3],
                                            .patients = to[4], .route = to[5],
                                            .outcome = to[6]};
    }
    if (rc) {
        rg__auds_drop(pg);
        pg->chain_ok = pg->guess = 0;
        return rc;
    }
    pg->auds.n++;
    return RG_OK;
}

/* The answer of P_AUDIT_INSERT_MANY (r) for the n entries kept: when they
 * did not go in (another session moved the chain's tip since this one's
 * last commit: the row is locked now), they are chained again from the tip
 * it found and sent again. RG_OK, or the error (kept). */
static int rg__auds_check(rg_pg *pg, const PGresult *r, int n)
{
    int guessed = pg->guess;
    pg->guess = 0; /* (the row is locked from here on) */
    if (!r || PQntuples(r) != 1) {
        rg_pg_failed(pg, "the audit chain's row is missing");
        return RG_EDB;
    }
    if (!strcmp(rg__col_text(r, 0, 0), "t"))
        return RG_OK;
    if (!guessed || n > pg->auds.cap) {
        rg_pg_failed(pg, "the audit entries did not go in");
        return RG_EDB;
    }
    int64_t seq = rg__col_int(r, 0, 1);
    char prev[65], hash[65];
    snprintf(prev, sizeof prev, "%s", rg__col_text(r, 0, 2));
    /* the copies taken out: the n entries again, from the tip found */
    rg__aud *v = pg->auds.e;
    pg->auds.e = NULL;
    pg->auds.n = pg->auds.cap = 0;
    rg__auds_drop(pg);
    int rc = RG_OK;
    for (int i = 0; i < n && rc == RG_OK; i++) {
        v[i].e.seq = ++seq;
        v[i].e.prev = prev;
        if ((rc = rg_audit_hash(&v[i].e, hash)) == RG_OK) {
            v[i].e.hash = hash;
            rc = rg__auds_add(pg, &v[i].e);
            snprintf(prev, sizeof prev, "%s", hash);
        }
    }
    for (int i = 0; i < n; i++)
        free(v[i].mem);
    free(v);
    pg->chain.tip_seq = seq;
    snprintf(pg->chain.tip_hash, sizeof pg->chain.tip_hash, "%s", prev);
    if (rc) {
        rg_pg_failed(pg, "out of memory");
        return rc;
    }
    rg__args a = {0};
    int kept = pg->auds.n;
    rc = rg__auds_args(pg, &a);
    PGresult *again = NULL;
    if (rc == RG_OK) {
        pg->flushing = 1;
        again = rg__run(pg, P_AUDIT_INSERT_MANY, &a);
        pg->flushing = 0;
    }
    pg->auds.n = kept;
    rg__auds_drop(pg);
    rc = again && PQntuples(again) == 1 && !strcmp(rg__col_text(again, 0, 0), "t") ? RG_OK
                                                                                 : RG_EDB;
    PQclear(again);
    return rc;
}

/* The statement of a kept batch (its arguments built with rc), run as a
 * flush: RG_OK, or the error, said (an argument not built is memory). */
static int rg__flush_do(rg_pg *pg, int rc, int stmt, rg__args *a)
{
    if (rc != RG_OK) {
        rg_pg_failed(pg, "out of memory");
        return rc;
    }
    pg->flushing = 1;
    rc = rg__do(pg, stmt, a);
    pg->flushing = 0;
    return rc;
}

static int rg__auds_flush(rg_pg *pg)
{
    rg__args a = {0};
    int n = pg->auds.n, rc = rg__auds_args(pg, &a);
    PGresult *r = NULL;
    if (rc == RG_OK) {
        pg->flushing = 1;
        r = rg__run(pg, P_AUDIT_INSERT_MANY, &a);
        pg->flushing = 0;
        rc = r ? rg__auds_check(pg, r, n) : RG_EDB;
    } else {
        rg_pg_failed(pg, "out of memory");
    }
    PQclear(r);
    rg__auds_drop(pg);
    if (rc)
        pg->chain_ok = pg->guess = 0;
    return rc;
}

static int rg_pg_audit_insert(rg_pg *pg, const rg_audit_entry *e)
{
    if (pg->chain_ok && rg__in_tx(pg)) { /* kept: sent with what follows */
        int rc = rg__auds_add(pg, e);
        if (rc == RG_OK) {
            pg->chain.tip_seq = e->seq;
            snprintf(pg->chain.tip_hash, sizeof pg->chain.tip_hash, "%s", e->hash ? e->hash : "");
        }
        return rc;
    }
    rg__args a = {0};
    rg__int(&a, e->seq);
    rg__int(&a, e->at);
    const char *v[] = {e->who, e->role, e->address, e->clinic, e->patients, e->route, e->outcome,
                       e->prev, e->hash};
    for (int i = 0; i < 9; i++)
        rg__text(&a, v[i] ? v[i] : "");
    /* (the entry and the chain's new tip in one statement) */
    if (rg__do(pg, P_AUDIT_INSERT, &a)) {
        pg->chain_ok = 0;
        return RG_EDB;
    }
    if (pg->chain_ok) {
        pg->chain.tip_seq = e->seq;
        snprintf(pg->chain.tip_hash, sizeof pg->chain.tip_hash, "%s", e->hash ? e->hash : "");
    }
    return RG_OK;
}

static int rg_pg_audit_each(rg_pg *pg, const rg_audit_filter *f,
                            int (*fn)(void *ud, const rg_audit_entry *e), void *ud)
{
    rg__args a = {0};
    rg__int(&a, f->after);
    rg__text(&a, f->clinic);
    rg__text(&a, f->who);
    rg__time(&a, f->since);
    rg__text(&a, f->patient);
    rg__int(&a, f->limit > 0 ? f->limit : INT64_MAX);
    PGresult *r = rg__run(pg, P_AUDIT_EACH, &a);
    if (!r)
        return RG_EDB;
    int frc = 0;
    for (int i = 0; i < PQntuples(r) && !frc; i++) {
        rg_audit_entry e = {
            .seq = rg__col_int(r, i, 0), .at = rg__col_int(r, i, 1),
            .who = rg__col_text(r, i, 2), .role = rg__col_text(r, i, 3),
            .address = rg__col_text(r, i, 4), .clinic = rg__col_text(r, i, 5),
            .patients = rg__col_text(r, i, 6), .route = rg__col_text(r, i, 7),
            .outcome = rg__col_text(r, i, 8), .prev = rg__col_text(r, i, 9),
            .hash = rg__col_text(r, i, 10)};
        frc = fn(ud, &e);
    }
    PQclear(r);
    return frc;
}

static int rg_pg_audit_archive(rg_pg *pg, rg_time before, int64_t *n)
{
    rg_audit_chain c;
    *n = 0;
    if (rg__chain_read(pg, 1, &c)) /* (locked now: its base moves) */
        return RG_EDB;
    rg__args a = {0};
    rg__int(&a, before);
    PGresult *r = rg__run(pg, P_AUDIT_LAST_BEFORE, &a);
    if (!r)
        return RG_EDB;
    if (PQntuples(r) == 0) {
        PQclear(r);
        return RG_OK;
    }
    int64_t last = rg__col_int(r, 0, 0);
    char hash[65];
    snprintf(hash, sizeof hash, "%s", rg__col_text(r, 0, 1));
    PQclear(r);
    rg__args d = {0};
    rg__int(&d, last);
    if (!(r = rg__run(pg, P_AUDIT_DELETE, &d)))
        return RG_EDB;
    *n = strtoll(PQcmdTuples(r), NULL, 10);
    PQclear(r);
    rg__args b = {0};
    rg__int(&b, last);
    rg__text(&b, hash);
    rg__int(&b, rg_now());
    pg->chain_ok = 0; /* (its base moves) */
    return rg__do(pg, P_AUDIT_BASE, &b);
}

/* ---- statements run now and then (pg_protosets.c): not prepared --------------------------- */

PGresult *rg_pg_query(rg_pg *pg, const char *sql, int n, const char *const *v, const int *len,
                      const int *fmt, int *constraint)
{
    if (constraint)
        *constraint = 0;
    if (rg__pending(pg) && rg__writes_flush(pg))
        return NULL;
    if (rg__begin_now(pg))
        return NULL;
    RG__SENT(pg, 1, 1);
    PGresult *r = PQexecParams(pg->conn, sql, n, NULL, v, len, fmt, 0);
    ExecStatusType s = r ? PQresultStatus(r) : PGRES_FATAL_ERROR;
    if (constraint)
        *constraint = 0;
    if (s == PGRES_COMMAND_OK || s == PGRES_TUPLES_OK)
        return r;
    const char *state = r ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : NULL;
    if (constraint && state && !strncmp(state, "23", 2)) /* integrity constraint violation */
        *constraint = 1;
    rg__msg(pg, r ? PQresultErrorMessage(r) : PQerrorMessage(pg->conn));
    rg__fault(pg);
    PQclear(r);
    return NULL;
}

/* backend.h's run_sql: the statement is sent with its text each time. */
static int rg_pg_run_sql(rg_pg *pg, const char *sql, const rg_store_arg *args, int nargs,
                         int (*fn)(void *ud, const char *const *cols, int ncols), void *ud,
                         int64_t *changed)
{
    /* (its statement comes after the states and transitions written before
     * it; a failure there aborts the transaction, and its COMMIT says so) */
    if (rg__pending(pg))
        rg__writes_flush(pg);
    if (rg__begin_now(pg))
        return RG_EDB;
    RG__SENT(pg, 1, 1);
    const char *v[RG_STORE_MAX_ARGS];
    char num[RG_STORE_MAX_ARGS][24];
    for (int i = 0; i < nargs; i++) {
        if (args[i].is_int) {
            snprintf(num[i], sizeof num[i], "%lld", (long long)args[i].i);
            v[i] = num[i];
        } else
            v[i] = args[i].v;
    }
    PGresult *r = PQexecParams(pg->conn, sql, nargs, NULL, v, NULL, NULL, 0);
    ExecStatusType s = r ? PQresultStatus(r) : PGRES_FATAL_ERROR;
    if (s != PGRES_COMMAND_OK && s != PGRES_TUPLES_OK) {
        rg__msg(pg, r ? PQresultErrorMessage(r) : PQerrorMessage(pg->conn));
        rg__fault(pg);
        PQclear(r);
        return RG_EDB;
    }
    int rc = RG_OK, n = PQntuples(r), nc = PQnfields(r);
    if (changed)
        *changed = strtoll(PQcmdTuples(r), NULL, 10);
    for (int row = 0; row < n && !rc && fn; row++) {
        const char *cols[RG_STORE_MAX_ARGS];
        for (int c = 0; c < nc && c < RG_STORE_MAX_ARGS; c++)
            cols[c] = PQgetisnull(r, row, c) ? NULL : PQgetvalue(r, row, c);
        rc = fn(ud, cols, nc);
    }
    PQclear(r);
    return rc;
}

/* ---- a group's reads and writes in few round trips ------------------------------------
 *
 * An evaluation thread about to evaluate a page of a clinic's patients reads
 * their states, their new events and their open alerts in one statement
 * (rg_pg_prefetch, P_BATCH_ALL) with every patient's name in one array: one
 * round trip and one snapshot (states and events from the same moment:
 * rg_patient_state's count of schedulings still covers what a later event
 * adds). The engine's
 * reads of a patient (rg_pg_patient_get, rg_pg_each_event_after,
 * rg_pg_each_open_alert) are then answered from those rows, once each; a
 * read the prefetch cannot answer (another patient, a second read, a
 * history cache that holds less than the prefetch assumed) goes to the
 * database as before. rg_pg_prefetch_end forgets them.
 *
 * The writes: a patient state written inside a transaction is kept and sent
 * with the others as one multi-row statement (P_PATIENTS_PUT_MANY) before
 * the transaction's next statement or its COMMIT; a rollback drops them. A
 * second state of the same patient sends the first ones before it (one
 * INSERT ... ON CONFLICT may touch a row once). */

/* Where each kind's columns start in P_BATCH_ALL's rows (0: the patient,
 * 1: the kind). */
#define RG__PRE_STATE 2
#define RG__PRE_EVENT 8
#define RG__PRE_ALERT 16

struct rg__pre {
    char clinic[RG_EVENT_MAX_ID + 1];
    PGresult *r;   /* P_BATCH_ALL's rows, binary */
    rg__rowkey *ord; /* their places in kind, patient, (at, seq) or alert order */
    int lo[4], hi[4]; /* kind k's places in ord: [lo[k], hi[k]) */
    char **names;      /* the patients asked for, sorted (strcmp) */
    int64_t *after;    /* the event seq each one's rows start after */
    unsigned char *used; /* per name: bit 1 state, 2 events, 4 alerts served */
    int n;
};

static void rg__pre_free(rg_pg *pg)
{
    rg__pre *p = pg->pre;
    if (!p)
        return;
    PQclear(p->r);
    free(p->ord);
    for (int i = 0; i < p->n; i++)
        free(p->names[i]);
    free(p->names);
    free(p->after);
    free(p->used);
    free(p);
    pg->pre = NULL;
}

static void rg_pg_prefetch_end(rg_pg *pg) { rg__pre_free(pg); }

static int rg__cmp_name(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The index of patient among the names asked for, or -1. */
static int rg__pre_find(const rg__pre *p, const char *clinic, const char *patient)
{
    if (!p || strcmp(p->clinic, clinic))
        return -1;
    int lo = 0, hi = p->n - 1;
    while (lo <= hi) {
        int mid = (lo + hi) / 2, c = strcmp(p->names[mid], patient);
        if (!c)
            return mid;
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid - 1;
    }
    return -1;
}

/* The first place of kind k's (in patient order) whose patient is not
 * below patient. */
static int rg__pre_first(const rg__pre *p, int k, const char *patient)
{
    int lo = p->lo[k], hi = p->hi[k];
    while (lo < hi) {
        int mid = (lo + hi) / 2;
        if (strcmp(p->ord[mid].s, patient) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

/* Served from the prefetch: 1 (*rc the answer), else 0. */
static int rg__pre_state(rg_pg *pg, const char *clinic, const char *patient,
                         rg_patient_state *ps, int *rc)
{
    rg__pre *p = pg->pre;
    int k = rg__pre_find(p, clinic, patient);
    if (k < 0 || (p->used[k] & 1))
        return 0;
    p->used[k] |= 1;
    const PGresult *r = p->r;
    int j = rg__pre_first(p, 1, patient), c = RG__PRE_STATE;
    int found = j < p->hi[1] && !strcmp(p->ord[j].s, patient), i = found ? p->ord[j].row : 0;
    ps->clock = found ? rg__col_time(r, i, c) : RG_TIME_NONE;
    ps->wake = found ? rg__col_time(r, i, c + 1) : RG_TIME_NONE;
    ps->next_wake = found ? rg__col_time(r, i, c + 2) : RG_TIME_NONE;
    ps->last_seq = found ? rg__col_int(r, i, c + 3) : 0;
    ps->scheduled = found ? rg__col_int(r, i, c + 4) : 0;
    ps->failing = found ? rg__col_int(r, i, c + 5) : 0;
    *rc = found ? RG_OK : RG_ENOTFOUND;
    return 1;
}

static int rg__pre_events(rg_pg *pg, const char *clinic, const char *patient, int64_t after,
                          int (*fn)(void *ud, const rg_stored_event *e), void *ud, int *rc)
{
    rg__pre *p = pg->pre;
    int k = rg__pre_find(p, clinic, patient);
    /* (rows after p->after[k]: a superset of what is asked when after is not lower) */
    if (k < 0 || (p->used[k] & 2) || after < p->after[k])
        return 0;
    p->used[k] |= 2;
    rg_buf f = {0};
    char *data = NULL;
    *rc = 0;
    for (int j = rg__pre_first(p, 2, patient);
         j < p->hi[2] && !*rc && !strcmp(p->ord[j].s, patient); j++) {
        int i = p->ord[j].row;
        rg_stored_event e;
        if (rg__col_int(p->r, i, RG__PRE_EVENT) <= after)
            continue;
        if ((*rc = rg__col_event(p->r, i, RG__PRE_EVENT, 0, &f, &data, &e)))
            break;
        *rc = fn(ud, &e);
    }
    free(data);
    rg_buf_free(&f);
    return 1;
}

static int rg__pre_alerts(rg_pg *pg, const char *clinic, const char *patient,
                          int (*fn)(void *ud, int64_t alert_id, const rg_transition *t),
                          void *ud, int *rc)
{
    rg__pre *p = pg->pre;
    int k = rg__pre_find(p, clinic, patient);
    if (k < 0 || (p->used[k] & 4))
        return 0;
    p->used[k] |= 4;
    const PGresult *r = p->r;
    *rc = 0;
    for (int j = rg__pre_first(p, 3, patient);
         j < p->hi[3] && !*rc && !strcmp(p->ord[j].s, patient); j++)
        *rc = rg__open_alert_row(r, p->ord[j].row, RG__PRE_ALERT, clinic, patient, fn, ud);
    return 1;
}

/* One result of the pipeline: r (kept when keep) or NULL on failure (the
 * message kept); reads up to the NULL that ends the statement's results. */
static int rg__pipe_result(rg_pg *pg, PGresult **keep, int ok)
{
    PGresult *r = PQgetResult(pg->conn), *x;
    ExecStatusType st = r ? PQresultStatus(r) : PGRES_FATAL_ERROR;
    int good = st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK;
    if (!good && ok)
        rg__msg(pg, r && st != PGRES_PIPELINE_ABORTED ? PQresultErrorMessage(r)
                                                      : PQerrorMessage(pg->conn));
    while (r && (x = PQgetResult(pg->conn)) != NULL) /* (the NULL after each statement) */
        PQclear(x);
    if (good && keep)
        *keep = r;
    else
        PQclear(r);
    return good;
}

static int rg_pg_prefetch(rg_pg *pg, const char *clinic, const char *const *patients,
                   const int64_t *after, int n)
{
    rg__pre_free(pg);
    if (n <= 0 || rg__in_tx(pg) || PQtransactionStatus(pg->conn) != PQTRANS_IDLE)
        return 0; /* (inside a transaction: its reads stay its own) */
    rg__pre *p = calloc(1, sizeof *p);
    int rc = RG_ENOMEM;
    if (!p)
        return RG_ENOMEM;
    pg->pre = p;
    snprintf(p->clinic, sizeof p->clinic, "%s", clinic);
    p->names = calloc((size_t)n, sizeof *p->names);
    p->after = calloc((size_t)n, sizeof *p->after);
    p->used = calloc((size_t)n, 1);
    if (!p->names || !p->after || !p->used)
        goto fail;
    /* (sorted, each once: a name asked twice keeps its lowest after) */
    typedef struct { const char *name; int64_t after; } one;
    one *v = malloc((size_t)n * sizeof *v);
    if (!v)
        goto fail;
    for (int i = 0; i < n; i++)
        v[i] = (one){patients[i], after ? after[i] : -1};
    qsort(v, (size_t)n, sizeof *v, rg__cmp_name);
    rg_buf names = {0}, afters = {0};
    char num[24];
    int bad = rg_buf_add(&names, "{", 1) || rg_buf_add(&afters, "{", 1);
    for (int i = 0; i < n && !bad; i++) {
        if (p->n && !strcmp(p->names[p->n - 1], v[i].name)) {
            if (v[i].after < p->after[p->n - 1])
                p->after[p->n - 1] = v[i].after;
            continue;
        }
        if (!(p->names[p->n] = strdup(v[i].name))) {
            bad = 1;
            break;
        }
        p->after[p->n++] = v[i].after;
    }
    free(v);
    for (int i = 0; i < p->n && !bad; i++) {
        snprintf(num, sizeof num, "%lld", (long long)p->after[i]);
        bad = rg__elem(&names, p->names[i], NULL, 0) || rg__elem(&afters, num, NULL, 0);
    }
    bad = bad || rg_buf_add(&names, "}", 1) || rg_buf_add(&afters, "}", 1);
    if (bad) {
        rg_buf_free(&names);
        rg_buf_free(&afters);
        goto fail;
    }
    const char *args[3] = {clinic, names.p, afters.p};
    char q[16];
    snprintf(q, sizeof q, "q%d", P_BATCH_ALL);
    /* in binary: the fields as bytes, not hex (half what crosses the
     * socket, no byteaout on the server), numbers as int8 (rg__col_int and
     * rg__col_bytes read either form) */
    RG__SENT(pg, 1, 1);
    p->r = PQexecPrepared(pg->conn, q, 3, args, NULL, NULL, 1);
    rg_buf_free(&names);
    rg_buf_free(&afters);
    if (PQresultStatus(p->r) != PGRES_TUPLES_OK) {
        rg__msg(pg, p->r ? PQresultErrorMessage(p->r) : PQerrorMessage(pg->conn));
        rg__fault(pg);
        rc = RG_EDB;
        goto fail;
    }
    /* the rows in order, then each kind's (1 states, 2 events, 3 alerts) */
    int rows = PQntuples(p->r);
    if (!(p->ord = malloc((size_t)(rows ? rows : 1) * sizeof *p->ord)))
        goto fail;
    for (int i = 0; i < rows; i++) {
        int64_t k = rg__col_int(p->r, i, 1);
        p->ord[i] = (rg__rowkey){.k = k, .s = PQgetvalue(p->r, i, 0), .row = i};
        if (k == 2) {
            p->ord[i].a = rg__col_int(p->r, i, RG__PRE_EVENT + 1);
            p->ord[i].b = rg__col_int(p->r, i, RG__PRE_EVENT);
        } else if (k == 3) {
            p->ord[i].a = rg__col_int(p->r, i, RG__PRE_ALERT);
        }
    }
    /* (the plan's Append gives the kinds in turn: each kind's rows ordered
     * on their own, the states' by a sort, the events' usually not at all;
     * else all of them at once) */
    for (int again = 0; again < 2; again++) {
        int i = 0;
        for (int k = 1; k <= 3; k++) {
            p->lo[k] = i;
            while (i < rows && p->ord[i].k == k)
                i++;
            p->hi[k] = i;
            rg__order(p->ord + p->lo[k], i - p->lo[k]);
        }
        if (i == rows)
            break;
        rg__order(p->ord, rows);
    }
    return 1;
fail:
    rg__pre_free(pg);
    return rc;
}

static void rg__puts_drop(rg_pg *pg)
{
    for (int i = 0; i < pg->puts.n; i++)
        free(pg->puts.keys[i]);
    pg->puts.n = 0;
    for (int k = 0; k < 8; k++)
        pg->puts.col[k].len = 0;
}

static int rg__puts_flush(rg_pg *pg)
{
    rg__puts *u = &pg->puts;
    rg__args a = {0};
    int rc = RG_OK;
    for (int k = 0; k < 8 && rc == RG_OK; k++)
        if ((rc = rg_buf_add(&u->col[k], "}", 1)) == RG_OK)
            rg__text(&a, u->col[k].p);
    rc = rg__flush_do(pg, rc, P_PATIENTS_PUT_MANY, &a);
    rg__puts_drop(pg);
    return rc;
}

/* RG__AGAIN: not inside a transaction, written at once by the caller. */
static int rg__puts_add(rg_pg *pg, const char *clinic, const char *patient,
                        const rg_patient_state *ps)
{
    rg__puts *u = &pg->puts;
    if (!rg__in_tx(pg))
        return RG__AGAIN;
    size_t lc = strlen(clinic), lp = strlen(patient);
    for (int i = 0; i < u->n; i++)
        if (!strncmp(u->keys[i], clinic, lc) && u->keys[i][lc] == '\037' &&
            !strcmp(u->keys[i] + lc + 1, patient)) {
            int rc = rg__puts_flush(pg);
            if (rc)
                return rc;
            break;
        }
    if (u->n == u->cap) {
        int cap = u->cap ? 2 * u->cap : 64;
        char **grown = realloc(u->keys, (size_t)cap * sizeof *grown);
        if (!grown)
            return RG_ENOMEM;
        u->keys = grown;
        u->cap = cap;
    }
    char *key = malloc(lc + lp + 2);
    if (!key)
        return RG_ENOMEM;
    memcpy(key, clinic, lc);
    key[lc] = '\037';
    memcpy(key + lc + 1, patient, lp + 1);
    char num[6][24];
    const rg_time t[3] = {ps->clock, ps->wake, ps->next_wake};
    for (int k = 0; k < 3; k++)
        snprintf(num[k], sizeof num[k], "%lld", (long long)t[k]);
    snprintf(num[3], sizeof num[3], "%lld", (long long)ps->last_seq);
    snprintf(num[4], sizeof num[4], "%lld", (long long)ps->scheduled);
    snprintf(num[5], sizeof num[5], "%lld", (long long)ps->failing);
    const char *v[8] = {clinic, patient,
                        ps->clock == RG_TIME_NONE ? NULL : num[0],
                        ps->wake == RG_TIME_NONE ? NULL : num[1],
                        ps->next_wake == RG_TIME_NONE ? NULL : num[2], num[3], num[4], num[5]};
    int rc = RG_OK;
    for (int k = 0; k < 8 && rc == RG_OK; k++) {
        rg_buf *b = &u->col[k];
        if (b->len && b->p[b->len - 1] == '}')
            b->len--; /* (a failed flush left its closing brace) */
        if (!b->len)
            rc = rg_buf_add(b, "{", 1);
        if (rc == RG_OK)
            rc = rg__elem(b, v[k], NULL, 0);
    }
    if (rc) {
        free(key);
        rg__puts_drop(pg);
        return rc;
    }
    u->keys[u->n++] = key;
    return RG_OK;
}

static void rg_pg_db_counts(uint64_t *statements, uint64_t *round_trips)
{
    *statements = atomic_load_explicit(&rg__n_stmts, memory_order_relaxed);
    *round_trips = atomic_load_explicit(&rg__n_trips, memory_order_relaxed);
}

static int rg_pg_due_count(rg_pg *pg, const char *clinic, rg_time now, int max, int *n)
{
    rg__args a = {0};
    rg__text(&a, clinic);
    rg__int(&a, now);
    rg__int(&a, (int64_t)max + 1);
    PGresult *r = rg__run(pg, P_DUE_COUNT, &a);
    *n = r ? (int)rg__col_int(r, 0, 0) : 0;
    PQclear(r);
    return r ? RG_OK : RG_EDB;
}

/* ---- transitions in one statement (rg_store_defer_writes) ---------------------------- */

static void rg__txs_drop(rg_pg *pg)
{
    rg__txs *x = &pg->txs;
    for (int i = 0; x->cp && i < x->n; i++) {
        free(x->cp[i].mem);
        x->cp[i].mem = NULL;
    }
    x->n = 0;
    for (int k = 0; k < 17; k++)
        x->col[k].len = 0;
}

static int rg__txs_took(rg_pg *pg, const PGresult *r, int n);

static void rg__fed_drop(rg_pg *pg)
{
    for (int i = 0; i < pg->nfed; i++)
        free(pg->fed[i].mem);
    pg->nfed = pg->fed_bad = pg->feed_ok = 0;
}

/* A copy of t in f, its strings in one block (NULL kept NULL, params and
 * evidence as stored), notify_at as read back: RG_OK or RG_ENOMEM. */
static int rg__fed_copy(rg__fed *f, const rg_transition *t)
{
    const char *v[11] = {t->clinic, t->patient, t->key, t->protocol, t->version, t->rule,
                         t->severity, t->message, t->params ? t->params : "{}",
                         t->evidence ? t->evidence : "[]", t->cause};
    const char *out[11];
    size_t len[11], n = 1;
    for (int k = 0; k < 11; k++)
        n += len[k] = v[k] ? strlen(v[k]) + 1 : 0;
    if (!(f->mem = malloc(n)))
        return RG_ENOMEM;
    for (size_t k = 0, at = 0; k < 11; at += len[k], k++)
        out[k] = v[k] ? memcpy(f->mem + at, v[k], len[k]) : NULL;
    f->t = *t;
    f->t.clinic = out[0], f->t.patient = out[1], f->t.key = out[2], f->t.protocol = out[3];
    f->t.version = out[4], f->t.rule = out[5], f->t.severity = out[6], f->t.message = out[7];
    f->t.params = out[8], f->t.evidence = out[9], f->t.cause = out[10];
    f->t.notify_at = t->notify_at > t->at ? t->notify_at : t->at;
    return RG_OK;
}

/* The n kept transitions' copies, with the seq and cseq P_TRANSITIONS_MANY
 * answered (r), moved to the transaction's (pg->fed). */
static void rg__txs_fed(rg_pg *pg, const PGresult *r, int n)
{
    rg__fed *cp = pg->txs.cp;
    for (int i = 0; i < PQntuples(r); i++) {
        int o = (int)rg__col_int(r, i, 0);
        if (o < 1 || o > n || !cp || !cp[o - 1].mem) {
            pg->fed_bad = 1;
            continue;
        }
        if (pg->nfed == pg->capfed) {
            int cap = pg->capfed ? 2 * pg->capfed : 64;
            rg__fed *g = realloc(pg->fed, (size_t)cap * sizeof *g);
            if (!g) {
                pg->fed_bad = 1;
                continue;
            }
            pg->fed = g;
            pg->capfed = cap;
        }
        rg__fed *f = &pg->fed[pg->nfed++];
        *f = cp[o - 1];
        cp[o - 1].mem = NULL;
        f->t.seq = rg__col_int(r, i, 1);
        f->t.cseq = rg__col_int(r, i, 2);
    }
}

/* The feed's read of clinic after a commit, answered from what it wrote
 * (pg->fed) when nothing was sent since (pg->feed_ok) and its transitions
 * of clinic are the ones after after_cseq, without a gap: the same rows the
 * read gives, but those another session committed after this one (its
 * NOTICE brings the service back for them). 1 (*rc fn's answer), or 0. */
static int rg__feed(rg_pg *pg, const char *clinic, int64_t after_cseq, int limit,
                    int (*fn)(void *ud, const rg_transition *t), void *ud, int *rc)
{
    int64_t next = after_cseq + 1;
    int n = 0;
    for (int i = 0; i < pg->nfed; i++) {
        if (strcmp(pg->fed[i].t.clinic, clinic))
            continue;
        if (pg->fed[i].t.cseq != next++)
            return 0;
        n++;
    }
    if (!pg->feed_ok || !n || n > limit)
        return 0;
    *rc = 0;
    int kept = 0;
    for (int i = 0; i < pg->nfed; i++) {
        if (strcmp(pg->fed[i].t.clinic, clinic)) {
            pg->fed[kept++] = pg->fed[i];
            continue;
        }
        if (!*rc)
            *rc = fn(ud, &pg->fed[i].t);
        free(pg->fed[i].mem);
    }
    pg->nfed = kept;
    return 1;
}

static int rg__u64_cmp(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return (x > y) - (x < y);
}

/* P_TRANSITIONS_MANY's last argument: "t" when no two of the kept
 * transitions share a (clinic, key), so that rg_transitions' guard skips
 * its search for keys met more than once in the call (a sweep's batches
 * have none: each patient's evaluation is one call's rows at most once per
 * key; 91 ms of a 3,000-patient sweep's server time, bench/profile.md).
 * Distinct hashes prove distinct keys; two equal ones (a repeat, or a
 * collision) answer "f": the server then searches as it always did. */
static const char *rg__txs_once(const rg__txs *x)
{
    uint64_t h[RG__TXS_MAX];
    memcpy(h, x->kh, (size_t)x->n * sizeof *h);
    qsort(h, (size_t)x->n, sizeof *h, rg__u64_cmp);
    for (int i = 1; i < x->n; i++)
        if (h[i] == h[i - 1])
            return "f";
    return "t";
}

static int rg__txs_flush(rg_pg *pg)
{
    rg__txs *x = &pg->txs;
    rg__args a = {0};
    int rc = RG_OK, n = x->n;
    for (int k = 0; k < 8; k++) /* (no patient states) */
        rg__text(&a, NULL);
    for (int k = 0; k < 17 && rc == RG_OK; k++)
        if ((rc = rg_buf_add(&x->col[k], "}", 1)) == RG_OK)
            rg__text(&a, x->col[k].p);
    rg__text(&a, rg__txs_once(x));
    PGresult *r = NULL;
    pg->flushing = 1;
    if (rc == RG_OK && !(r = rg__run(pg, P_TRANSITIONS_MANY, &a)))
        rc = RG_EDB;
    pg->flushing = 0;
    if (rc == RG_OK && PQntuples(r) != n) {
        rg_pg_failed(pg, "a transition was refused: its key's last transition does not allow it "
                         "(an opening of an open key, or a resolution of another alert)");
        rc = RG_EDB;
    }
    if (rc == RG_OK)
        rc = rg__txs_took(pg, r, n);
    PQclear(r);
    rg__txs_drop(pg);
    return rc;
}

/* The answer of P_TRANSITIONS_MANY for the n kept transitions (inside the
 * transaction, not yet dropped): the ids their tokens stand for. */
static int rg__txs_took(rg_pg *pg, const PGresult *r, int n)
{
    rg__txs *x = &pg->txs;
    int rc = RG_OK;
    pg->grown[RG__TXS] += n;
    rg__txs_fed(pg, r, n);
    for (int i = 0; rc == RG_OK && i < PQntuples(r); i++) {
        int o = (int)rg__col_int(r, i, 0);
        if (o < 1 || o > n || !x->tok[o - 1])
            continue;
        if (x->nmap == x->cap_map) {
            int cap = x->cap_map ? 2 * x->cap_map : 256;
            int64_t *t2 = realloc(x->map_tok, (size_t)cap * sizeof *t2);
            if (t2)
                x->map_tok = t2;
            int64_t *i2 = t2 ? realloc(x->map_id, (size_t)cap * sizeof *i2) : NULL;
            if (!i2) {
                rc = RG_ENOMEM;
                break;
            }
            x->map_id = i2;
            x->cap_map = cap;
        }
        x->map_tok[x->nmap] = x->tok[o - 1];
        x->map_id[x->nmap++] = rg__col_int(r, i, 1);
    }
    return rc;
}

/* The writes kept (patient states, transitions, audit entries) and the
 * statement that made them go, in one pipeline, one round trip where they
 * took one each: final is a prepared statement's name (fa its parameters:
 * the transaction goes on, rg__run) or NULL for COMMIT (rg_pg_commit).
 * Nothing reads the transitions' answer after a commit (their ids name
 * nothing outside the transaction: the service reads the new ones from the
 * feed) but their count; before another statement it gives their tokens'
 * ids. A refused transition makes pg_temp.rg_transitions raise: PostgreSQL
 * then skips what follows it in the pipeline, the COMMIT too, and the
 * caller's rollback ends the transaction. Answers the final statement's
 * result (a COMMIT's for rg_pg_commit to judge), or NULL on a failure
 * before it or of it, its message kept. */
static PGresult *rg__kept_and(rg_pg *pg, const char *final, const rg__args *fa)
{
    rg__args pa = {0}, ta = {0}, aa = {0};
    int rc = RG_OK, nputs = pg->puts.n, ntxs = pg->txs.n, nauds = pg->auds.n;
    for (int k = 0; nputs && k < 8 && rc == RG_OK; k++)
        if ((rc = rg_buf_add(&pg->puts.col[k], "}", 1)) == RG_OK)
            rg__text(&pa, pg->puts.col[k].p);
    /* the states and the transitions: one statement (P_TRANSITIONS_MANY's
     * first eight arrays) */
    for (int k = 0; ntxs && k < 8; k++)
        rg__text(&ta, nputs ? pa.v[k] : NULL);
    if (ntxs)
        nputs = 0;
    for (int k = 0; ntxs && k < 17 && rc == RG_OK; k++)
        if ((rc = rg_buf_add(&pg->txs.col[k], "}", 1)) == RG_OK)
            rg__text(&ta, pg->txs.col[k].p);
    if (ntxs)
        rg__text(&ta, rg__txs_once(&pg->txs));
    if (nauds && rc == RG_OK)
        rc = rg__auds_args(pg, &aa);
    if (rc) {
        rg_pg_failed(pg, "out of memory");
        rg__puts_drop(pg);
        rg__txs_drop(pg);
        rg__auds_drop(pg);
        return NULL;
    }
    char q[16];
    /* in the pipeline's implicit transaction (no BEGIN: pg->ptx), a Sync
     * only to commit; in a transaction block, one after the statements */
    int piped = pg->lazy || pg->ptx, sync = !final || !piped;
    /* entries chained from the tip of this connection's last commit: their
     * answer read before the commit (its Sync or COMMIT sent after it) */
    int check = nauds && pg->guess, later = check && !final;
    if (later && piped)
        sync = 0;
    int sent = piped ? rg__ptx_enter(pg) : PQenterPipelineMode(pg->conn);
    if (sent && nputs) {
        snprintf(q, sizeof q, "q%d", P_PATIENTS_PUT_MANY);
        sent = PQsendQueryPrepared(pg->conn, q, pa.n, pa.v, pa.len, pa.fmt, 0);
    }
    if (sent && ntxs) {
        snprintf(q, sizeof q, "q%d", P_TRANSITIONS_MANY);
        sent = PQsendQueryPrepared(pg->conn, q, ta.n, ta.v, ta.len, ta.fmt, 0);
    }
    if (sent && nauds) {
        snprintf(q, sizeof q, "q%d", P_AUDIT_INSERT_MANY);
        sent = PQsendQueryPrepared(pg->conn, q, aa.n, aa.v, aa.len, aa.fmt, 0);
    }
    if (sent && final)
        sent = PQsendQueryPrepared(pg->conn, final, fa ? fa->n : 0, fa ? fa->v : NULL,
                                   fa ? fa->len : NULL, fa ? fa->fmt : NULL, fa ? fa->bin : 0);
    else if (sent && !piped && !later)
        sent = PQsendQueryParams(pg->conn, "COMMIT", 0, NULL, NULL, NULL, NULL, 0);
    sent = sent && (sync ? PQpipelineSync(pg->conn) : rg__ptx_flush(pg));
    int ends = final || (!piped && !later); /* (a statement's result closes the batch) */
    RG__SENT(pg, (uint64_t)(ends + (nputs > 0) + (ntxs > 0) + (nauds > 0)), 1);
    rg__puts_drop(pg);
    if (!check) /* (else their copies are kept for rg__auds_check) */
        rg__auds_drop(pg);
    int ok = sent;
    PGresult *tx = NULL, *last = NULL, *ar = NULL;
    if (!sent) {
        rg__msg(pg, PQerrorMessage(pg->conn));
    } else {
        if (nputs)
            ok = rg__pipe_result(pg, NULL, ok) && ok;
        if (ntxs)
            ok = rg__pipe_result(pg, &tx, ok) && ok;
        if (nauds)
            ok = rg__pipe_result(pg, check ? &ar : NULL, ok) && ok;
        /* (the final statement's own result; after a failure before it,
         * PGRES_PIPELINE_ABORTED) */
        last = ends ? PQgetResult(pg->conn) : PQmakeEmptyPGresult(pg->conn, PGRES_COMMAND_OK);
        for (PGresult *x; last && ends && (x = PQgetResult(pg->conn)) != NULL;)
            PQclear(x);
        ExecStatusType st = last ? PQresultStatus(last) : PGRES_FATAL_ERROR;
        if (st != PGRES_COMMAND_OK && (!final || st != PGRES_TUPLES_OK)) {
            if (ok)
                rg__msg(pg, last ? PQresultErrorMessage(last) : PQerrorMessage(pg->conn));
            ok = 0;
        }
        if (sync)
            ok = rg__pipe_sync(pg) && ok;
    }
    if (sync) {
        pg->ptx = 0;
        ok = rg__pipe_off(pg) && ok;
    }
    if (ok && check)
        ok = rg__auds_check(pg, ar, nauds) == RG_OK;
    PQclear(ar);
    rg__auds_drop(pg);
    if (ok && later && piped) { /* the commit: the pipeline's Sync */
        RG__SENT(pg, 0, 1);
        ok = PQpipelineSync(pg->conn) && rg__pipe_sync(pg);
        pg->ptx = 0;
        ok = rg__pipe_off(pg) && ok;
    } else if (ok && later) { /* a transaction block's COMMIT */
        RG__SENT(pg, 1, 1);
        PQclear(last);
        last = PQexec(pg->conn, "COMMIT");
    }
    if (ok && tx && PQntuples(tx) != ntxs) { /* (the function raises first: not reached) */
        rg_pg_failed(pg, "a transition was refused: its key's last transition does not allow it");
        ok = 0;
    }
    if (ok && ntxs && final && rg__txs_took(pg, tx, ntxs)) {
        rg_pg_failed(pg, "out of memory");
        ok = 0;
    } else if (ok && ntxs && !final) {
        pg->grown[RG__TXS] += ntxs;
        rg__txs_fed(pg, tx, ntxs);
    }
    rg__txs_drop(pg);
    PQclear(tx);
    if (ok)
        return last;
    PQclear(last);
    rg__fault(pg);
    return NULL;
}

static PGresult *rg__commit_pipelined(rg_pg *pg) { return rg__kept_and(pg, NULL, NULL); }

static int rg__writes_flush(rg_pg *pg)
{
    int rc = pg->puts.n ? rg__puts_flush(pg) : RG_OK;
    if (rc == RG_OK && pg->txs.n)
        rc = rg__txs_flush(pg);
    if (rc == RG_OK && pg->auds.n)
        rc = rg__auds_flush(pg);
    rg__puts_drop(pg);
    rg__txs_drop(pg);
    rg__auds_drop(pg);
    return rc;
}

/* RG__AGAIN: not deferred, the caller runs P_TRANSITION (a token it was
 * given turned into the alert's id first). */
static int rg__txs_add(rg_pg *pg, const rg_transition *t, int64_t *alert_idp)
{
    rg__txs *x = &pg->txs;
    int opening = t->open == 1, rc;
    int deferred = pg->defer && rg__in_tx(pg);
    if (x->n && (!deferred || x->n == RG__TXS_MAX) && (rc = rg__writes_flush(pg)))
        return rc;
    int64_t aid = opening ? 0 : *alert_idp;
    if (!opening && aid <= RG__TOKEN0) { /* an opening of this transaction */
        int at = x->n - 1;
        while (at >= 0 && x->tok[at] != aid)
            at--;
        if (at >= 0) { /* in this batch: its place */
            aid = -(int64_t)(at + 1);
        } else {
            int i = x->nmap - 1;
            while (i >= 0 && x->map_tok[i] != aid)
                i--;
            if (i < 0) {
                rg_pg_failed(pg, "a resolution names an alert whose opening was not stored");
                return RG_ENOTFOUND;
            }
            aid = x->map_id[i];
        }
        if (!deferred)
            *alert_idp = aid;
    }
    if (!deferred)
        return RG__AGAIN;
    char num[5][24];
    snprintf(num[0], sizeof num[0], "%lld", (long long)aid);
    snprintf(num[1], sizeof num[1], "%lld", (long long)t->at);
    snprintf(num[2], sizeof num[2], "%lld", (long long)t->due);
    snprintf(num[3], sizeof num[3], "%lld", (long long)rg_now());
    snprintf(num[4], sizeof num[4], "%lld", (long long)t->notify_at);
    const char *v[17] = {t->clinic, opening ? NULL : num[0], num[1], RG_TRANSITION_STATE(t),
                         t->patient, t->key, t->protocol, t->version, t->rule, t->severity,
                         t->message, num[2], t->params ? t->params : "{}",
                         t->evidence ? t->evidence : "[]", num[3],
                         t->notify_at > t->at ? num[4] : NULL, t->cause};
    for (int k = 0; k < 17; k++) {
        rg_buf *b = &x->col[k];
        if ((!b->len && rg_buf_add(b, "{", 1)) || rg__elem(b, v[k], NULL, 0)) {
            rg__txs_drop(pg);
            return RG_ENOMEM;
        }
    }
    if (!x->cp)
        x->cp = calloc(RG__TXS_MAX, sizeof *x->cp);
    if (!x->cp || rg__fed_copy(&x->cp[x->n], t))
        pg->fed_bad = 1; /* (the feed is read from the database, as before) */
    x->kh[x->n] = rg_fnv1a(rg_fnv1a(RG_FNV1A_SEED, t->clinic, strlen(t->clinic) + 1), t->key,
                           strlen(t->key));
    x->tok[x->n] = opening ? RG__TOKEN0 - x->next++ : 0;
    if (opening)
        *alert_idp = x->tok[x->n];
    x->n++;
    return RG_OK;
}

static void rg_pg_defer_writes(rg_pg *pg, int on) { pg->defer = on; }

/* ---- the table of operations (backend.h) ---------------------------------------------- */

/* One round trip for all n: on an error *failed is 0 (the statement of all
 * n failed as one). */
static int rg__put_events(rg_pg *pg, const rg_event *const *evs, int n, rg_time received,
                          rg_put *res, int *failed)
{
    if (failed)
        *failed = 0;
    return rg_pg_put_events(pg, evs, n, received, res);
}

const rg_store_ops rg_pg_ops = {
    .name = "postgresql",
    .server = 1,
    .claims = rg_pg_url,
    .open = rg_pg_open,
    .close = rg_pg_close,
    .errmsg = rg_pg_errmsg,
    .fault = rg_pg_fault,
    .wal_state = rg_pg_wal_state,
    .begin = rg_pg_begin,
    .begin_read = rg_pg_begin_read,
    .rollbacks = rg_pg_rollbacks,
    .commit = rg_pg_commit,
    .rollback = rg_pg_rollback,
    .on_commit = rg_pg_on_commit,
    .changes_fd = rg_pg_changes_fd,
    .changed = rg_pg_changed,
    .put_event = rg_pg_put_event,
    .put_reason = rg_pg_put_reason,
    .put_field = rg_pg_put_field,
    .put_events = rg__put_events,
    .reject = rg_pg_reject,
    .each_rejected = rg_pg_each_rejected,
    .each_event = rg_pg_each_event,
    .each_event_after = rg_pg_each_event_after,
    .each_event_data = rg_pg_each_event_data,
    .get_event = rg_pg_get_event,
    .each_version = rg_pg_each_version,
    .each_correction = rg_pg_each_correction,
    .event_rows = rg_pg_event_rows,
    .event_rows_of = rg_pg_event_rows_of,
    .each_event_body = rg_pg_each_event_body,
    .each_event_body_after = rg_pg_each_event_body_after,
    .patient_get = rg_pg_patient_get,
    .patient_put = rg_pg_patient_put,
    .patients_page = rg_pg_patients_page,
    .due_patients = rg_pg_due_patients,
    .next_wake = rg_pg_next_wake,
    .wake_clinic = rg_pg_wake_clinic,
    .wake_failing = rg_pg_wake_failing,
    .each_open_alert = rg_pg_each_open_alert,
    .transition = rg_pg_transition,
    .each_transition = rg_pg_each_transition,
    .clinic_transitions = rg_pg_clinic_transitions,
    .key_transitions = rg_pg_key_transitions,
    .key_clinics = rg_pg_key_clinics,
    .last_cseq = rg_pg_last_cseq,
    .each_alert = rg_pg_each_alert,
    .alert_action = rg_pg_alert_action,
    .each_action = rg_pg_each_action,
    .next_snooze = rg_pg_next_snooze,
    .next_due = rg_pg_next_due,
    .each_due_snooze = rg_pg_each_due_snooze,
    .open_by_severity = rg_pg_open_by_severity,
    .webhook_get = rg_pg_webhook_get,
    .webhook_delivered = rg_pg_webhook_delivered,
    .webhook_failed = rg_pg_webhook_failed,
    .webhook_next = rg_pg_webhook_next,
    .webhook_sent = rg_pg_webhook_sent,
    .eval_error = rg_pg_eval_error,
    .rule_failing = rg_pg_rule_failing,
    .each_failing = rg_pg_each_failing,
    .failing_summary = rg_pg_failing_summary,
    .protocol_loaded = rg_pg_protocol_loaded,
    .audit_chain = rg_pg_audit_chain,
    .audit_insert = rg_pg_audit_insert,
    .audit_each = rg_pg_audit_each,
    .audit_archive = rg_pg_audit_archive,
    .protoset_add = rg_pg_protoset_add,
    .protoset_each = rg_pg_protoset_each,
    .protoset_files = rg_pg_protoset_files,
    .protoset_update = rg_pg_protoset_update,
    .protoset_log = rg_pg_protoset_log,
    .protoset_each_log = rg_pg_protoset_each_log,
    .shadow_put = rg_pg_shadow_put,
    .shadow_each = rg_pg_shadow_each,
    .lease = rg_pg_lease,
    .unlease = rg_pg_unlease,
    .workers = rg_pg_workers,
    .lease_only = rg_pg_lease_only,
    .hold = rg_pg_hold,
    .run_sql = rg_pg_run_sql,
    .prefetch = rg_pg_prefetch,
    .prefetch_end = rg_pg_prefetch_end,
    .due_count = rg_pg_due_count,
    .defer_writes = rg_pg_defer_writes,
    .db_counts = rg_pg_db_counts,
};
