/*
 * config.c - the service's configuration file (see serve.c for its form).
 */
#include "service.h"

#include <errno.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ---- configuration ------------------------------------------------------------ */

static int rg__cfg_fail(char *err, size_t errlen, const char *file, const char *field,
                        const char *what)
{
    return rg_fail(err, errlen, RG_EINVAL, "%s: %s: %s", file, field, what);
}

/* The file as JSON, through rg_json_loadb as every outside text (a NUL byte
 * is refused, not skipped); NULL with err set. */
static json_t *rg__cfg_read(const char *path, char *err, size_t errlen)
{
    size_t len;
    char *text = rg_slurp(path, &len);
    json_error_t je;
    json_t *root = NULL;
    if (!text)
        rg_fail(err, errlen, RG_EINVAL, "%s: cannot read the configuration: %s", path,
                strerror(errno));
    else if (!(root = rg_json_loadb(text, len, JSON_REJECT_DUPLICATES, &je)))
        rg_fail(err, errlen, RG_EINVAL, "%s:%d:%d: not valid JSON: %s", path, je.line, je.column,
                je.text);
    free(text);
    return root;
}

int rg_svc_load_config(rg_svc *sv, const char *path, char *err, size_t errlen)
{
    json_t *root = rg__cfg_read(path, err, errlen);
    char base[PATH_MAX], field[128];
    if (!root)
        return RG_EINVAL;
    char tmp[PATH_MAX];
    snprintf(tmp, sizeof tmp, "%s", path);
    snprintf(base, sizeof base, "%s", dirname(tmp));
    int rc = RG_EINVAL;
    const char *key;
    json_t *v;
    snprintf(sv->host, sizeof sv->host, "127.0.0.1");
    sv->port = 7878;
    sv->limits = RG_LIMITS_DEFAULT;
    sv->http_limits = RG_HTTP_LIMITS_DEFAULT;
    sv->max_events = 1000;
    sv->history_cache = (size_t)64 << 20;
    if (!json_is_object(root)) {
        rc = rg__cfg_fail(err, errlen, path, "(top)", "expected a JSON object");
        goto done;
    }
    snprintf(sv->config_path, sizeof sv->config_path, "%s", path);
    json_object_foreach(root, key, v) {
        if (strcmp(key, "listen") && strcmp(key, "clinics") && strcmp(key, "limits") &&
            strcmp(key, "api_keys") && strcmp(key, "sessions") &&
            strcmp(key, "protocol_changes")) {
            rc = rg__cfg_fail(err, errlen, path, key,
                              "unknown setting (known: listen, clinics, limits, api_keys, "
                              "sessions, protocol_changes)");
            goto done;
        }
    }
    /* docs/governance.md: "approval" runs only versions activated in the
     * store; "development" (the default) reloads the directories */
    json_t *changes = json_object_get(root, "protocol_changes");
    if (changes) {
        const char *s = json_string_value(changes);
        if (!s || (strcmp(s, "approval") && strcmp(s, "development"))) {
            rc = rg__cfg_fail(err, errlen, path, "protocol_changes",
                              "expected \"approval\" or \"development\"");
            goto done;
        }
        sv->approval = !strcmp(s, "approval");
    }
    json_t *listen = json_object_get(root, "listen");
    if (listen) {
        const char *s = json_string_value(listen);
        const char *colon = s ? strrchr(s, ':') : NULL;
        char *end;
        long port = colon ? strtol(colon + 1, &end, 10) : -1;
        if (!colon || colon == s || *end || port < 0 || port > 65535 ||
            (size_t)(colon - s) >= sizeof sv->host) {
            rc = rg__cfg_fail(err, errlen, path, "listen", "expected \"HOST:PORT\" such as \"127.0.0.1:7878\"");
            goto done;
        }
        snprintf(sv->host, sizeof sv->host, "%.*s", (int)(colon - s), s);
        sv->port = (int)port;
    }
    json_t *limits = json_object_get(root, "limits");
    if (limits) {
        static const char *const names[] = {"max_memory_mb", "max_instructions", "deadline_ms",
                                            "max_body_bytes", "max_header_bytes", "max_connections",
                                            "idle_timeout_ms", "request_timeout_ms",
                                            "max_events_per_request", "history_cache_mb",
                                            "future_skew_minutes", NULL};
        if (!json_is_object(limits)) {
            rc = rg__cfg_fail(err, errlen, path, "limits", "expected an object");
            goto done;
        }
        json_object_foreach(limits, key, v) {
            int i;
            for (i = 0; names[i] && strcmp(names[i], key); i++)
                ;
            snprintf(field, sizeof field, "limits.%s", key);
            if (!names[i]) {
                rc = rg__cfg_fail(err, errlen, path, field, "unknown limit");
                goto done;
            }
            if (!json_is_integer(v) || json_integer_value(v) < (i >= 9 ? 0 : 1)) {
                /* history_cache_mb may be 0: no cache; future_skew_minutes 0: no check */
                rc = rg__cfg_fail(err, errlen, path, field,
                                  i == 9   ? "expected a whole number (0: no cache)"
                                  : i == 10 ? "expected a whole number of minutes (0: no check)"
                                           : "expected a positive whole number");
                goto done;
            }
            json_int_t n = json_integer_value(v);
            switch (i) {
            case 0: sv->limits.max_memory = (size_t)n << 20; break;
            case 1: sv->limits.max_instructions = n; break;
            case 2: sv->limits.deadline_ms = (int)n; break;
            case 3: sv->http_limits.max_body_bytes = (size_t)n; break;
            case 4: sv->http_limits.max_header_bytes = (size_t)n; break;
            case 5: sv->http_limits.max_connections = (int)n; break;
            case 6: sv->http_limits.idle_timeout_ms = (int)n; break;
            case 7: sv->http_limits.request_timeout_ms = (int)n; break;
            case 8: sv->max_events = (int)n; break;
            case 9: sv->history_cache = (size_t)n << 20; break;
            case 10: sv->future_skew = n ? (rg_time)n * RG_MS_MINUTE : -1; break;
            }
        }
    }
    json_t *clinics = json_object_get(root, "clinics");
    if (!json_is_object(clinics) || json_object_size(clinics) == 0) {
        rc = rg__cfg_fail(err, errlen, path, "clinics",
                          "expected an object of clinics: { \"north\": { \"protocols\": \"...\", "
                          "\"users\": [...], \"api_keys\": [...] } }");
        goto done;
    }
    json_object_foreach(clinics, key, v) {
        if (sv->nclinics == RG_MAX_CLINICS) {
            rc = rg__cfg_fail(err, errlen, path, "clinics", "too many clinics");
            goto done;
        }
        rg_svc_clinic *c = &sv->clinics[sv->nclinics];
        snprintf(field, sizeof field, "clinics.%.60s", key);
        if (strlen(key) > RG_EVENT_MAX_CLINIC || !*key || !json_is_object(v)) {
            rc = rg__cfg_fail(err, errlen, path, field,
                              "expected { \"protocols\": DIR, \"users\": [...], \"api_keys\": [...] }");
            goto done;
        }
        snprintf(c->name, sizeof c->name, "%s", key);
        const char *dir = json_string_value(json_object_get(v, "protocols"));
        if (!dir) {
            rc = rg__cfg_fail(err, errlen, path, field, "'protocols' (a directory) is required");
            goto done;
        }
        if (strlen(dir) + strlen(base) + 2 > sizeof c->dir) {
            rc = rg__cfg_fail(err, errlen, path, field, "'protocols' path is too long");
            goto done;
        }
        if (dir[0] == '/')
            snprintf(c->dir, sizeof c->dir, "%s", dir);
        else
            snprintf(c->dir, sizeof c->dir, "%.2000s/%.2000s", base, dir);
        json_t *tokens = json_object_get(v, "tokens");
        size_t i;
        json_t *t;
        /* deprecated (auth.c warns): users and api_keys instead */
        if (tokens && (!json_is_array(tokens) || json_array_size(tokens) == 0 ||
                       json_array_size(tokens) > RG_MAX_TOKENS)) {
            rc = rg__cfg_fail(err, errlen, path, field, "'tokens' must list 1 to 8 API tokens");
            goto done;
        }
        json_array_foreach(tokens, i, t) {
            const char *tok = json_string_value(t);
            if (!tok || strlen(tok) < 16) {
                rc = rg__cfg_fail(err, errlen, path, field,
                                  "each token must be a string of at least 16 characters");
                goto done;
            }
            if (!(c->tokens[c->ntokens++] = strdup(tok))) {
                rc = rg_fail(err, errlen, RG_ENOMEM, "out of memory");
                goto done;
            }
        }
        const char *ck;
        json_object_foreach(v, ck, t) {
            if (strcmp(ck, "protocols") && strcmp(ck, "tokens") && strcmp(ck, "webhook") &&
                strcmp(ck, "users") && strcmp(ck, "api_keys")) {
                rc = rg__cfg_fail(err, errlen, path, field,
                                  "unknown setting (known: protocols, users, api_keys, webhook, "
                                  "tokens)");
                goto done;
            }
        }
        json_t *hook = json_object_get(v, "webhook");
        if (hook) {
            const char *url = json_string_value(hook);
            if (!url || (strncmp(url, "http://", 7) && strncmp(url, "https://", 8))) {
                rc = rg__cfg_fail(err, errlen, path, field,
                                  "'webhook' must be an http:// or https:// URL");
                goto done;
            }
            if (!(c->webhook = strdup(url))) {
                rc = rg_fail(err, errlen, RG_ENOMEM, "out of memory");
                goto done;
            }
        }
        sv->nclinics++;
    }
    rc = rg_svc_auth_load(sv, root, path, err, errlen); /* users, api_keys, sessions */
done:
    json_decref(root);
    return rc;
}

