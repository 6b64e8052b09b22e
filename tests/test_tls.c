/*
 * test_tls.c - TLS in the service (runtime/service/tls.c): the real binary
 * with a certificate made for the test (openssl req -x509), talked to by
 * curl over https: the API answers, plain HTTP on the TLS port gets nothing,
 * SIGHUP loads a new certificate for the next connections. Without TLS the
 * service listens only on loopback unless a TLS proxy is declared: 0.0.0.0
 * is refused at start, exit 2, one line.
 */
#define RG_TEST_SERVE
#include "helpers.h"

#include "core/rg.h"

/* A self-signed certificate for 127.0.0.1 (cert.pem, key.pem in dir/sub). */
static void make_cert(const char *dir, const char *sub)
{
    char cmd[2048];
    snprintf(cmd, sizeof cmd,
             "mkdir -p %s/%s && openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj "
             "/CN=127.0.0.1 -addext subjectAltName=IP:127.0.0.1 -keyout %s/%s/key.pem "
             "-out %s/%s/cert.pem >/dev/null 2>&1",
             dir, sub, dir, sub, dir, sub);
    cr_assert_eq(system(cmd), 0, "openssl req -x509 failed");
}

/* curl over https trusting dir/sub/cert.pem; returns the HTTP status (0:
 * no TLS session), *out the body. */
static int curl_https(const char *dir, const char *sub, int port, const char *path,
                      const char *token, char **out)
{
    char ca[600], url[200], auth[200], code[16];
    snprintf(ca, sizeof ca, "%s/%s/cert.pem", dir, sub);
    snprintf(url, sizeof url, "https://127.0.0.1:%d%s", port, path);
    snprintf(auth, sizeof auth, "Authorization: Bearer %s", token ? token : "");
    int pfd[2];
    cr_assert_eq(pipe(pfd), 0);
    pid_t pid = fork();
    if (pid == 0) {
        dup2(pfd[1], 1);
        close(pfd[0]);
        int devnull = open("/dev/null", O_WRONLY);
        dup2(devnull, 2);
        execlp("curl", "curl", "-s", "--max-time", "10", "--cacert", ca, "-H", auth, "-w",
               "\n%{http_code}", url, (char *)NULL);
        _exit(127);
    }
    close(pfd[1]);
    size_t cap = 1 << 16, len = 0;
    char *buf = calloc(1, cap);
    ssize_t r;
    while (len + 1 < cap && (r = read(pfd[0], buf + len, cap - len - 1)) > 0)
        len += (size_t)r;
    close(pfd[0]);
    waitpid(pid, NULL, 0);
    char *nl = strrchr(buf, '\n');
    snprintf(code, sizeof code, "%s", nl ? nl + 1 : "0");
    if (nl)
        *nl = '\0';
    if (out)
        *out = buf;
    else
        free(buf);
    return atoi(code);
}

static void tls_config(server *s, const char *listen_extra)
{
    char cfg[1024];
    snprintf(cfg, sizeof cfg,
             "{ \"listen\": { \"address\": \"127.0.0.1:0\"%s },\n"
             "  \"clinics\": { \"north\": { \"protocols\": \"a\", \"tokens\": [\"" TOKEN_A "\"] } } }\n",
             listen_extra);
    rg_test_write(s->dir, "config.json", cfg);
}

Test(tls, https_answers_plain_http_does_not_and_sighup_loads_a_new_certificate, .timeout = 60)
{
    server s = {0};
    char *out;
    server_setup(&s, fast_protocol, fast_protocol);
    make_cert(s.dir, "one");
    tls_config(&s, ", \"certificate\": \"one/cert.pem\", \"key\": \"one/key.pem\"");
    server_start(&s);
    char *log = rg_test_read(s.log);
    cr_assert(strstr(log, ", TLS)"), "%s", log);
    free(log);
    cr_assert_eq(curl_https(s.dir, "one", s.port, "/healthz", NULL, &out), 200, "%s", out);
    cr_assert(strstr(out, "\"status\":\"ok\""), "%s", out);
    free(out);
    cr_assert_eq(curl_https(s.dir, "one", s.port, "/v1/alerts", TOKEN_A, &out), 200, "%s", out);
    cr_assert(strstr(out, "\"alerts\""), "%s", out);
    free(out);
    cr_assert_eq(curl_https(s.dir, "one", s.port, "/v1/alerts", "wrong-token-0123456789", &out),
                 401);
    free(out);
    /* a large answer crosses many TLS records */
    cr_assert_eq(curl_https(s.dir, "one", s.port, "/app.js", NULL, &out), 200);
    cr_assert_gt(strlen(out), 4096);
    free(out);
    /* plain HTTP on the TLS port: no answer, and the service goes on */
    cr_assert_eq(http(s.port, "GET", "/healthz", NULL, NULL, &out), 0, "%s", out);
    free(out);

    /* a new certificate in place of the old: SIGHUP, then the next
     * connection is served with it (curl trusting only the new one) */
    make_cert(s.dir, "two");
    char cmd[1200];
    snprintf(cmd, sizeof cmd, "cp %s/two/cert.pem %s/two/key.pem %s/one/", s.dir, s.dir, s.dir);
    cr_assert_eq(system(cmd), 0);
    cr_assert_eq(curl_https(s.dir, "two", s.port, "/healthz", NULL, NULL), 0,
                 "before SIGHUP the old certificate is still served");
    kill(s.pid, SIGHUP);
    int st = 0;
    for (int i = 0; i < 50 && (st = curl_https(s.dir, "two", s.port, "/healthz", NULL, NULL)) != 200;
         i++)
        usleep(100000);
    cr_assert_eq(st, 200, "the new certificate after SIGHUP");
    log = rg_test_read(s.log);
    cr_assert(strstr(log, "TLS certificate") && strstr(log, "reloaded"), "%s", log);
    free(log);
    cr_assert_eq(server_stop(&s, SIGTERM), 0);
    rg_test_rmdir(s.dir);
}

static int serve_config(const char *dir, const char *cfg, char **err)
{
    char path[512], db[512];
    rg_test_write(dir, "c.json", cfg);
    snprintf(path, sizeof path, "%s/c.json", dir);
    snprintf(db, sizeof db, "%s/x.db", dir);
    const char *args[] = {"serve", "--config", path, "--db", db, NULL};
    return rg_test_run(args, NULL, NULL, err);
}

Test(tls, plain_listen_beyond_loopback_is_refused_without_a_proxy, .timeout = 30)
{
    char dir[256], *err;
    rg_test_tmpdir(dir);
    rg_test_write(dir, "a/p.lua", fast_protocol);
    cr_assert_eq(serve_config(dir,
                              "{ \"listen\": \"0.0.0.0:0\", \"clinics\": { \"north\": { "
                              "\"protocols\": \"a\", \"tokens\": [\"" TOKEN_A "\"] } } }",
                              &err),
                 2);
    cr_assert(strstr(err, "listen") && strstr(err, "loopback") && strstr(err, "behind_tls_proxy"),
              "%s", err);
    cr_assert_eq(strchr(err, '\n'), err + strlen(err) - 1, "one line: %s", err);
    free(err);
    cr_assert_eq(serve_config(dir,
                              "{ \"listen\": { \"address\": \"127.0.0.1:0\", \"certificate\": "
                              "\"nope.pem\", \"key\": \"nope.key\" }, \"clinics\": { \"north\": { "
                              "\"protocols\": \"a\", \"tokens\": [\"" TOKEN_A "\"] } } }",
                              &err),
                 2);
    cr_assert(strstr(err, "nope.pem"), "a certificate that does not load is named: %s", err);
    free(err);
    rg_test_rmdir(dir);

    /* declared behind a TLS proxy, 0.0.0.0 is taken */
    server s = {0};
    server_setup(&s, fast_protocol, fast_protocol);
    rg_test_write(s.dir, "config.json",
                  "{ \"listen\": { \"address\": \"0.0.0.0:0\", \"behind_tls_proxy\": true },\n"
                  "  \"clinics\": { \"north\": { \"protocols\": \"a\", \"tokens\": [\"" TOKEN_A
                  "\"] } } }\n");
    s.pid = fork();
    if (s.pid == 0) {
        rg_test_child();
        int fd = open(s.log, O_WRONLY | O_CREAT | O_APPEND, 0600);
        dup2(fd, 2);
        execl(rg_test_bin(), rg_test_bin(), "serve", "--config", s.config, "--db", s.db,
              (char *)NULL);
        _exit(127);
    }
    char *log = NULL;
    for (int i = 0; i < 100; i++) {
        usleep(50000);
        free(log);
        log = access(s.log, F_OK) == 0 ? rg_test_read(s.log) : strdup("");
        if (strstr(log, "listening on 0.0.0.0:"))
            break;
    }
    cr_assert(strstr(log, "listening on 0.0.0.0:") && strstr(log, "behind a TLS proxy"), "%s",
              log);
    free(log);
    cr_assert_eq(server_stop(&s, SIGTERM), 0);
    rg_test_rmdir(s.dir);
}
