/*
 * smtp.h - one e-mail sent over SMTP with libcurl (smtp:// with STARTTLS
 * when the server offers it, or smtps://), for the notification policy's
 * e-mail receivers (docs/notifications.md).
 */
#ifndef RG_SMTP_H
#define RG_SMTP_H

#include <stddef.h>

typedef struct rg_smtp_msg {
    const char *url;   /* "smtp://host:port" or "smtps://host:port" */
    const char *from, *to, *subject, *body; /* body: plain text, "\n" line ends */
    const char *id;    /* the Message-ID's left part (an idempotency key), or NULL */
    long timeout_ms;   /* 0: 10 s */
} rg_smtp_msg;

/* Sends m and waits for the server's answer. RG_OK, or RG_EIO with err
 * saying what the server or the connection said. Blocks: call it from a
 * command or a worker thread, never from the service's event loop. */
int rg_smtp_send(const rg_smtp_msg *m, char *err, size_t errlen);

#endif
