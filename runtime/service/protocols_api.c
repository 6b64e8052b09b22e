/*
 * protocols_api.c - a clinic's protocol versions over HTTP
 * (docs/governance.md, docs/openapi.yaml):
 *
 *   GET  /v1/protocols/versions                  the clinic's versions (read)
 *   POST /v1/protocols/versions                  an admin proposes a version (files)
 *   POST /v1/protocols/versions/{id}/approve     a prescriber, not the proposer
 *   POST /v1/protocols/versions/{id}/activate    an admin; body {"at": TIME} optional
 *   POST /v1/protocols/versions/{id}/rollback    an admin
 *   POST /v1/protocols/versions/{id}/shadow      a prescriber or admin: runs it as the shadow
 *   GET  /v1/protocols/shadow                    the shadow and its running comparison
 *   DELETE /v1/protocols/shadow                  a prescriber or admin: stops it
 *
 * {id} is a version's id or a unique prefix; the person is the signed-in
 * user (or the key's name). The changes are governance.c's rg_gov_change,
 * the one `regimen protocols` runs; a service under "protocol_changes":
 * "approval" takes an activation up within a second (protocols_live.c).
 * A proposal over HTTP is a JSON object of the clinic directory's files
 * (path -> text); they are written to a private directory and proposed by
 * governance.c's rg_gov_propose, the command line's, on a libuv work
 * thread with a store connection of its own: the full check with the
 * scenario tests and the replay for the diff never stall the loop.
 */
#include "service/service.h"

#include "engine/governance.h"
#include "present/diff.h"

#include <errno.h>
#include <jansson.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static json_t *rg__time_json(rg_time t)
{
    char buf[RG_TIME_BUFSZ];
    return t == RG_TIME_NONE ? json_null() : json_string(rg_time_format(t, buf));
}

/* 501: a store that keeps no protocol versions. */
static void rg__unkept(rg_http_conn *c)
{
    rg_svc_reply_json(c, 501, json_pack("{s:s}", "error", "protocol versions are kept in "
                                        "SQLite stores only for now"));
}

/* Answers a failed read of the clinic's versions (rc from rg_gov_versions or
 * rg_gov_shadow_of): 501 for a store that keeps none, 503 otherwise.
 * Returns 1 when it answered, 0 when rc is RG_OK. */
static int rg__unread(rg_svc *sv, rg_http_conn *c, int rc)
{
    if (rc == RG_EUSAGE)
        rg__unkept(c);
    else if (rc)
        rg_svc_unavailable(sv, c, "the protocol versions could not be read");
    return rc != RG_OK;
}

static void rg__list(rg_svc *sv, int ci, rg_http_conn *c)
{
    rg_gov_vers vs;
    int rc = rg_gov_versions(sv->st, sv->clinics[ci].name, &vs);
    if (rg__unread(sv, c, rc))
        return;
    json_t *list = json_array();
    for (int i = 0; i < vs.n; i++) {
        const rg_gov_ver *v = &vs.v[i];
        json_array_append_new(
            list, json_pack("{s:s,s:I,s:s,s:s,s:o,s:s,s:o,s:o,s:o}", "id", v->id, "n",
                            (json_int_t)v->n, "state", v->state, "proposed_by", v->by,
                            "proposed_at", rg__time_json(v->proposed_at), "message", v->message,
                            "approved_by", v->approved ? json_string(v->approved_by) : json_null(),
                            "approved_at", rg__time_json(v->approved ? v->approved_at
                                                                     : RG_TIME_NONE),
                            "active_from", rg__time_json(v->active_from)));
    }
    free(vs.v);
    rg_svc_reply_json(c, 200, json_pack("{s:s,s:o,s:o}", "clinic", sv->clinics[ci].name,
                                        "versions", list, "in_force",
                                        sv->clinics[ci].version[0]
                                            ? json_string(sv->clinics[ci].version)
                                            : json_null()));
}

/* The answer to a change of the clinic's versions that failed (rc: 404,
 * 409, 501 or 503 with msg), or its log line when it was made; 1 when made. */
static int rg__changed(rg_svc *sv, int ci, rg_http_conn *c, int rc, const char *msg)
{
    if (rc == RG_ENOTFOUND || rc == RG_ECONFLICT) {
        rg_svc_reply_json(c, rc == RG_ENOTFOUND ? 404 : 409, json_pack("{s:s}", "error", msg));
        return 0;
    }
    if (rc == RG_EUSAGE) {
        rg__unkept(c);
        return 0;
    }
    if (rc) {
        rg_svc_unavailable(sv, c, msg);
        return 0;
    }
    rg_log("info", "clinic %s: %s", sv->clinics[ci].name, msg);
    return 1;
}

/* POST .../{ref}/{what}: what is "approve", "activate" or "rollback". */
static void rg__change(rg_svc *sv, int ci, rg_http_conn *c, const rg_http_req *req,
                       const rg_svc_who *w, const char *ref, const char *what)
{
    rg_time at = rg_now();
    if (req->body_len) {
        json_error_t je;
        json_t *body = rg_json_loadb(req->body, req->body_len, JSON_REJECT_DUPLICATES, &je);
        json_t *v = json_is_object(body) ? json_object_get(body, "at") : NULL;
        const char *s = json_string_value(v);
        char err[256];
        int bad = !json_is_object(body) || (v && !s) ||
                  (v && strcmp(what, "activate")) ||
                  (s && rg_time_parse(s, strlen(s), &at, NULL, err, sizeof err));
        json_decref(body);
        if (bad) {
            rg_svc_reply_json(c, 400, json_pack("{s:s}", "error",
                                                "expected a JSON object, with \"at\" (an RFC "
                                                "3339 time) for activate only"));
            return;
        }
    }
    char who[200], msg[2048];
    const char *by = w->name[0] ? w->name : rg_svc_who_text(w, who, sizeof who);
    int rc = rg_gov_change(sv->st, sv->clinics[ci].name, what, ref, by, at, msg, sizeof msg);
    if (!rg__changed(sv, ci, c, rc, msg))
        return;
    rg_svc_reply_json(c, 200, json_pack("{s:s}", "result", msg));
}

/* ---- POST /v1/protocols/versions: a proposal ----------------------------------------- */

typedef struct rg__proposal {
    uv_work_t work;
    rg_svc *sv;
    rg_http_conn *conn;
    char clinic[RG_EVENT_MAX_CLINIC + 1], by[200], db[PATH_MAX], shipped[PATH_MAX];
    char dir[PATH_MAX], *message;
    rg_time until;
    /* the work's answer */
    int rc;
    char id[65], why[4096];
    char *text; /* "version ID\n" and the diff */
    size_t len;
} rg__proposal;

/* A path of the clinic's directory as a proposal names it: relative, with
 * no empty, "." or ".." part and no hidden file (the capture leaves those
 * out), at most 8 directories deep. NULL when fine, else why. */
static const char *rg__bad_path(const char *p)
{
    if (!*p || *p == '/' || strlen(p) > 200)
        return "a relative path of at most 200 bytes";
    int depth = 0;
    for (const char *part = p; part; part = strchr(part, '/') ? strchr(part, '/') + 1 : NULL) {
        if (*part == '/' || !*part)
            return "no empty part";
        if (*part == '.')
            return "no part that starts with '.' (no '..', no hidden file)";
        if (++depth > 8)
            return "at most 8 directories deep";
    }
    for (const unsigned char *c = (const unsigned char *)p; *c; c++)
        if (*c < 0x20 || *c == '\\')
            return "no control character or backslash";
    return NULL;
}

/* Writes text to dir/path, making its directories. */
static int rg__put_file(const char *dir, const char *path, const char *text, size_t len)
{
    char full[PATH_MAX];
    if (snprintf(full, sizeof full, "%s/%s", dir, path) >= (int)sizeof full)
        return RG_ELIMIT;
    for (char *s = full + strlen(dir) + 1; (s = strchr(s, '/')); s++) {
        *s = '\0';
        int rc = mkdir(full, 0700);
        *s = '/';
        if (rc && errno != EEXIST)
            return RG_EIO;
    }
    FILE *f = fopen(full, "wbx");
    int ok = f && fwrite(text, 1, len, f) == len;
    if (f && fclose(f))
        ok = 0;
    return ok ? RG_OK : RG_EIO;
}

static void rg__propose_work(uv_work_t *w)
{
    rg__proposal *p = w->data;
    rg_store *st = NULL;
    rg_store_opts so = {.durable = 1};
    FILE *out = open_memstream(&p->text, &p->len);
    if (!out) {
        p->rc = RG_ENOMEM;
        snprintf(p->why, sizeof p->why, "out of memory");
        return;
    }
    p->rc = rg_store_open(&st, p->db, &so, p->why, sizeof p->why);
    rg_gov_writer gw = rg_gov_printer(out);
    if (!p->rc)
        p->rc = rg_gov_propose(st, p->clinic, p->dir, NULL, p->shipped[0] ? p->shipped : NULL,
                               p->by, p->message, p->until, &gw, p->id, p->why, sizeof p->why);
    fclose(out);
    rg_store_close(st);
}

static void rg__propose_done(uv_work_t *w, int status)
{
    rg__proposal *p = w->data;
    (void)status;
    rg_gov_remove(p->dir);
    if (p->id[0]) {
        rg_log("info", "clinic %s: version %.12s proposed by %s", p->clinic, p->id, p->by);
        /* (a diff that failed after the version was stored is said in it) */
        const char *diff = p->text ? strchr(p->text, '\n') : NULL;
        rg_svc_reply_json(p->conn, 201,
                          json_pack("{s:s,s:s,s:o}", "version", p->id, "diff",
                                    diff ? diff + 1 : "", "diff_error",
                                    p->rc ? json_string(p->why) : json_null()));
    } else if (p->rc == RG_ECONFLICT) {
        rg_svc_reply_json(p->conn, 409, json_pack("{s:s}", "error", p->why));
    } else if (p->rc == RG_EINVAL) {
        rg_svc_reply_json(p->conn, 400, json_pack("{s:s}", "error", p->why));
    } else {
        rg_log("error", "clinic %s: a proposal by %s could not be stored: %s", p->clinic, p->by,
               p->why);
        rg_svc_unavailable(p->sv, p->conn, "the proposal could not be stored");
    }
    free(p->text);
    free(p->message);
    free(p);
}

static void rg__propose(rg_svc *sv, int ci, rg_http_conn *c, const rg_http_req *req,
                        const rg_svc_who *w)
{
    json_error_t je;
    json_t *body = rg_json_loadb(req->body, req->body_len, JSON_REJECT_DUPLICATES, &je);
    json_t *files = json_is_object(body) ? json_object_get(body, "files") : NULL, *v;
    json_t *msg = json_is_object(body) ? json_object_get(body, "message") : NULL;
    json_t *until = json_is_object(body) ? json_object_get(body, "until") : NULL;
    char err[512] = "";
    const char *key;
    rg_time t_until = rg_now();
    if (!json_is_object(body))
        snprintf(err, sizeof err, "expected a JSON object {\"files\": {PATH: TEXT, ...}, "
                 "\"message\": TEXT} (%s)", body ? "not an object" : je.text);
    else if (!json_is_object(files) || !json_object_size(files))
        snprintf(err, sizeof err, "files: expected an object of the clinic directory's files, "
                 "path -> text, with at least clinic.lua");
    else if (msg && !json_is_string(msg))
        snprintf(err, sizeof err, "message: expected a string");
    else if (until && (!json_is_string(until) ||
                       rg_time_parse(json_string_value(until), json_string_length(until),
                                     &t_until, NULL, err, sizeof err)))
        snprintf(err, sizeof err, "until: expected an RFC 3339 time");
    json_object_foreach(err[0] ? NULL : files, key, v) {
        const char *why = rg__bad_path(key);
        if (why)
            snprintf(err, sizeof err, "files: \"%.200s\": %s", key, why);
        else if (!json_is_string(v))
            snprintf(err, sizeof err, "files: \"%.200s\": expected the file's text (a string)",
                     key);
        if (err[0])
            break;
    }
    if (!err[0] && !json_object_get(files, "clinic.lua"))
        snprintf(err, sizeof err, "files: no clinic.lua (the clinic's settings and protocols)");
    if (err[0]) {
        json_decref(body);
        rg_svc_reply_json(c, 400, json_pack("{s:s}", "error", err));
        return;
    }
    rg__proposal *p = calloc(1, sizeof *p);
    const char *tmp = getenv("TMPDIR");
    if (p)
        snprintf(p->dir, sizeof p->dir, "%s/regimen-proposal-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (!p || !mkdtemp(p->dir) || !(p->message = strdup(msg ? json_string_value(msg) : ""))) {
        if (p && p->dir[0] && !strstr(p->dir, "XXXXXX"))
            rg_gov_remove(p->dir);
        free(p ? p->message : NULL);
        free(p);
        json_decref(body);
        rg_svc_unavailable(sv, c, "no room for the proposal's files");
        return;
    }
    int rc = RG_OK;
    json_object_foreach(files, key, v) {
        if ((rc = rg__put_file(p->dir, key, json_string_value(v), json_string_length(v))))
            break;
    }
    json_decref(body);
    const char *db = rg_svc_pool_db(sv);
    if (rc || !db) {
        rg_gov_remove(p->dir);
        free(p->message);
        free(p);
        rg_svc_unavailable(sv, c, "the proposal's files could not be written");
        return;
    }
    char who[200];
    snprintf(p->by, sizeof p->by, "%s", w->name[0] ? w->name : rg_svc_who_text(w, who, sizeof who));
    snprintf(p->clinic, sizeof p->clinic, "%s", sv->clinics[ci].name);
    snprintf(p->db, sizeof p->db, "%s", db);
    snprintf(p->shipped, sizeof p->shipped, "%s", sv->shipped);
    p->until = t_until;
    p->sv = sv;
    p->conn = c;
    p->work.data = p;
    if (uv_queue_work(&sv->loop, &p->work, rg__propose_work, rg__propose_done)) {
        rg_gov_remove(p->dir);
        free(p->message);
        free(p);
        rg_svc_unavailable(sv, c, "the proposal could not be started");
    }
}

/* GET /v1/protocols/shadow: the shadow (null: none) and what it did beside
 * the active version since it began (governance.c, rg_gov_shadow_report). */
static void rg__shadow_get(rg_svc *sv, int ci, rg_http_conn *c)
{
    const char *clinic = sv->clinics[ci].name;
    char id[65], by[256];
    rg_time since;
    int rc = rg_gov_shadow_of(sv->st, clinic, id, &since, by, sizeof by);
    if (rg__unread(sv, c, rc))
        return;
    if (!id[0]) {
        rg_svc_reply_json(c, 200, json_pack("{s:s,s:n}", "clinic", clinic, "shadow"));
        return;
    }
    char *text = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&text, &len);
    rg_diff d;
    long n = rg_gov_shadow_report(sv->st, clinic, id, since, &d);
    if (n >= 0 && out)
        rg_diff_print(&d, "ACTIVE", "SHADOW", sv->eng, out);
    if (out)
        fclose(out);
    else if (n >= 0)
        n = RG_ENOMEM;
    const rg_diff_summary sum = d.sum;
    if (n < 0) {
        free(text);
        rg_diff_free(&d);
        rg_svc_unavailable(sv, c, "the shadow feed could not be read");
        return;
    }
    json_t *rules = json_array();
    for (int i = 0; i < sum.n; i++) {
        const rg_diff_rule *r = &sum.v[i];
        json_array_append_new(
            rules, json_pack("{s:s,s:I,s:I,s:I,s:I,s:I,s:I}", "rule", r->rule,
                             "opened_only_by_shadow", (json_int_t)r->new_opened,
                             "opened_only_by_active", (json_int_t)r->old_opened,
                             "resolved_only_by_shadow", (json_int_t)r->new_resolved,
                             "resolved_only_by_active", (json_int_t)r->old_resolved,
                             "moved", (json_int_t)r->moved, "severity_changed",
                             (json_int_t)r->severity));
    }
    json_t *shadow = json_pack("{s:s,s:o,s:s,s:I,s:I,s:I,s:o,s:s}", "version", id, "since",
                               rg__time_json(since), "set_by", by, "differences",
                               (json_int_t)sum.differences, "active_transitions",
                               (json_int_t)sum.old_n, "shadow_transitions",
                               (json_int_t)sum.new_n, "rules", rules, "report",
                               text ? text : "");
    free(text);
    rg_diff_free(&d);
    rg_svc_reply_json(c, 200, json_pack("{s:s,s:o}", "clinic", clinic, "shadow", shadow));
}

/* POST .../{ref}/shadow (ref) and DELETE /v1/protocols/shadow (ref NULL). */
static void rg__shadow_set(rg_svc *sv, int ci, rg_http_conn *c, const rg_svc_who *w,
                           const char *ref)
{
    char who[200], msg[2048];
    const char *by = w->name[0] ? w->name : rg_svc_who_text(w, who, sizeof who);
    int rc = rg_gov_shadow(sv->st, sv->clinics[ci].name, ref, by, msg, sizeof msg);
    if (!rg__changed(sv, ci, c, rc, msg))
        return;
    rg_svc_shadows_take(sv); /* the next job runs it (or stops it) */
    rg_svc_reply_json(c, 200, json_pack("{s:s}", "result", msg));
}

int rg_svc_protocols_route(rg_svc *sv, int ci, rg_http_conn *c, const rg_http_req *req,
                           const rg_svc_who *w)
{
    static const char base[] = "/v1/protocols/versions";
    const char *p = req->path;
    int get = !strcmp(req->method, "GET"), post = !strcmp(req->method, "POST");
    if (!strcmp(p, "/v1/protocols/shadow")) {
        if (ci < 0)
            rg_svc_reply_json(c, 403, json_pack("{s:s}", "error", "protocol versions belong "
                                                "to a clinic: use a clinic's user or key"));
        else if (get) {
            if (rg_svc_allowed(sv, c, w, RG_NEED_READ, "read protocol versions"))
                rg__shadow_get(sv, ci, c);
        } else if (!strcmp(req->method, "DELETE")) {
            if (rg_svc_allowed(sv, c, w, RG_NEED_APPROVE | RG_NEED_ADMIN,
                               "stop a shadow version"))
                rg__shadow_set(sv, ci, c, w, NULL);
        } else
            rg_svc_reply_json(c, 405, json_pack("{s:s}", "error", "GET or DELETE"));
        return 1;
    }
    if (strncmp(p, base, sizeof base - 1))
        return 0;
    const char *rest = p + sizeof base - 1;
    if (ci < 0) { /* a key of every clinic (metrics) has no clinic's versions */
        rg_svc_reply_json(c, 403, json_pack("{s:s}", "error", "protocol versions belong to a "
                                            "clinic: use a clinic's user or key"));
        return 1;
    }
    if (!*rest && get) {
        if (rg_svc_allowed(sv, c, w, RG_NEED_READ, "read protocol versions"))
            rg__list(sv, ci, c);
        return 1;
    }
    if (!*rest && post) {
        if (rg_svc_allowed(sv, c, w, RG_NEED_ADMIN, "propose protocol versions"))
            rg__propose(sv, ci, c, req, w);
        return 1;
    }
    const char *slash = *rest == '/' ? strchr(rest + 1, '/') : NULL;
    if (post && slash && slash > rest + 1 && slash - rest - 1 < 65) {
        char ref[65];
        snprintf(ref, sizeof ref, "%.*s", (int)(slash - rest - 1), rest + 1);
        const char *what = slash + 1;
        if (!strcmp(what, "approve")) {
            if (rg_svc_allowed(sv, c, w, RG_NEED_APPROVE, "approve protocol versions"))
                rg__change(sv, ci, c, req, w, ref, what);
            return 1;
        }
        if (!strcmp(what, "shadow")) {
            if (rg_svc_allowed(sv, c, w, RG_NEED_APPROVE | RG_NEED_ADMIN,
                               "run protocol versions as a shadow"))
                rg__shadow_set(sv, ci, c, w, ref);
            return 1;
        }
        if (!strcmp(what, "activate") || !strcmp(what, "rollback")) {
            if (rg_svc_allowed(sv, c, w, RG_NEED_ADMIN, "activate protocol versions"))
                rg__change(sv, ci, c, req, w, ref, what);
            return 1;
        }
    }
    rg_svc_reply_json(c, 404, json_pack("{s:s}", "error", "no such route"));
    return 1;
}
