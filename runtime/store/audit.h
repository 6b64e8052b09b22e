/*
 * audit.h - the audit trail as a hash chain, on the store's audit table
 * (store.h, rg_store_audit_*; both backends).
 *
 * Each entry carries the SHA-256 of the entry before it and its own, over a
 * canonical encoding of its fields (audit.c), so an entry deleted, inserted
 * or edited afterwards breaks the chain where it happened, and
 * rg_audit_verify names that entry. The chain's tip (its last entry) is kept
 * beside it, so the last entry cannot go unnoticed either; retention deletes
 * old entries and keeps the hash of the last one deleted as the chain's base.
 */
#ifndef RG_AUDIT_H
#define RG_AUDIT_H

#include "store/store.h"

#include <jansson.h>

#define RG_AUDIT_GENESIS "0000000000000000000000000000000000000000000000000000000000000000"

/* The hex SHA-256 of e's canonical encoding (with e->seq and e->prev). */
int rg_audit_hash(const rg_audit_entry *e, char out[65]);
/* Appends e (at, who, role, address, clinic, patients, route, outcome set)
 * at the end of the chain, setting e->seq; inside a write transaction of
 * the caller's (the group commit's), which it locks the chain for. */
int rg_audit_append(rg_store *st, rg_audit_entry *e);

/* An entry as GET /v1/audit and `regimen audit show --format json` give it
 * (a new reference). */
json_t *rg_audit_json(const rg_audit_entry *e);

typedef struct rg_audit_report {
    int ok;             /* 1: the chain is whole */
    int64_t checked;    /* entries checked */
    int64_t broken_seq; /* the first entry where it breaks (0 when ok) */
    char why[320];      /* what is wrong there */
    rg_audit_chain chain;
} rg_audit_report;
/* Walks the whole chain from its base to its tip in one read snapshot. */
int rg_audit_verify(rg_store *st, rg_audit_report *r);

#endif
