/*
 * smtp.c - e-mail over SMTP with libcurl (see smtp.h).
 *
 * The message is plain text in UTF-8 with the headers a mail server expects
 * (Date, From, To, Subject, Message-ID); header values lose any CR or LF so
 * alert text cannot add headers, and the body's line ends become CRLF
 * (libcurl escapes a leading dot). Depends on libcurl.
 */
#include "service/smtp.h"

#include "core/rg.h"

#include <curl/curl.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef struct rg__upload {
    const char *text;
    size_t len, at;
} rg__upload;

static size_t rg__read(char *buf, size_t size, size_t n, void *ud)
{
    rg__upload *u = ud;
    size_t room = size * n, left = u->len - u->at;
    size_t k = left < room ? left : room;
    memcpy(buf, u->text + u->at, k);
    u->at += k;
    return k;
}

/* Appends s to f as one header line's value: CR and LF become spaces. */
static void rg__header_value(FILE *f, const char *s)
{
    for (; s && *s; s++)
        fputc(*s == '\r' || *s == '\n' ? ' ' : *s, f);
}

int rg_smtp_send(const rg_smtp_msg *m, char *err, size_t errlen)
{
    char *text = NULL, date[64], rcpt[600], from[600];
    size_t len = 0;
    time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    static const char *const wd[] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
    static const char *const mo[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                     "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
    snprintf(date, sizeof date, "%s, %02d %s %04d %02d:%02d:%02d +0000", wd[tm.tm_wday],
             tm.tm_mday, mo[tm.tm_mon], tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec);
    FILE *f = open_memstream(&text, &len);
    if (!f)
        return rg_fail(err, errlen, RG_ENOMEM, "out of memory");
    fprintf(f, "Date: %s\r\nFrom: ", date);
    rg__header_value(f, m->from);
    fputs("\r\nTo: ", f);
    rg__header_value(f, m->to);
    fputs("\r\nSubject: ", f);
    rg__header_value(f, m->subject);
    if (m->id) {
        fputs("\r\nMessage-ID: <", f);
        rg__header_value(f, m->id);
        fputs("@regimen>", f);
    }
    fputs("\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n"
          "Content-Transfer-Encoding: 8bit\r\n\r\n", f);
    for (const char *b = m->body ? m->body : ""; *b; b++) {
        if (*b == '\n' && (b == m->body || b[-1] != '\r'))
            fputc('\r', f);
        fputc(*b, f);
    }
    fputs("\r\n", f);
    if (fclose(f) || !text) {
        free(text);
        return rg_fail(err, errlen, RG_ENOMEM, "out of memory");
    }
    snprintf(rcpt, sizeof rcpt, "<%s>", m->to);
    snprintf(from, sizeof from, "<%s>", m->from);
    rg__upload u = {text, len, 0};
    char curl_err[CURL_ERROR_SIZE] = "";
    struct curl_slist *to = curl_slist_append(NULL, rcpt);
    CURL *c = curl_easy_init();
    int rc = RG_OK;
    if (!c || !to) {
        rc = rg_fail(err, errlen, RG_ENOMEM, "out of memory");
        goto done;
    }
    curl_easy_setopt(c, CURLOPT_URL, m->url);
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "smtp,smtps");
    curl_easy_setopt(c, CURLOPT_USE_SSL, (long)CURLUSESSL_TRY);
    curl_easy_setopt(c, CURLOPT_MAIL_FROM, from);
    curl_easy_setopt(c, CURLOPT_MAIL_RCPT, to);
    curl_easy_setopt(c, CURLOPT_READFUNCTION, rg__read);
    curl_easy_setopt(c, CURLOPT_READDATA, &u);
    curl_easy_setopt(c, CURLOPT_UPLOAD, 1L);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, m->timeout_ms > 0 ? m->timeout_ms : 10000L);
    curl_easy_setopt(c, CURLOPT_ERRORBUFFER, curl_err);
    CURLcode cc = curl_easy_perform(c);
    if (cc != CURLE_OK) {
        long code = 0;
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
        rc = rg_fail(err, errlen, RG_EIO, "e-mail to %s via %s failed: %s%s%.0ld", m->to, m->url,
                     *curl_err ? curl_err : curl_easy_strerror(cc),
                     code ? " (server said " : "", code);
        if (code && strlen(err) + 2 < errlen)
            strcat(err, ")");
    }
done:
    curl_easy_cleanup(c);
    curl_slist_free_all(to);
    free(text);
    return rc;
}
