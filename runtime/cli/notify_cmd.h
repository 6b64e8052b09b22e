/*
 * notify_cmd.h - `regimen notify-test DIR RECEIVER`: sends a test message to
 * one receiver of DIR/clinic.lua's notification policy (a webhook or SMS
 * gateway gets a JSON POST, an e-mail address a message over notify.smtp),
 * so a clinic can prove a receiver works before it relies on it
 * (notify_cmd.c, docs/notifications.md).
 */
#ifndef RG_NOTIFY_CMD_H
#define RG_NOTIFY_CMD_H

/* argv[0] = "notify-test"; shipped is the shipped protocol root (or NULL).
 * Returns the exit code: 0 sent, 1 the receiver refused or was unreachable,
 * 2 bad usage or a clinic that does not load. */
int rg_notify_test_cmd(int argc, char **argv, const char *shipped);

/* `regimen notifications --clinic NAME [--patient P] [--key K] [--format
 * text|json] [--db PATH]`: the service's notification history, oldest
 * first, one attempt a line (argv[0] = "notifications"). Exit 0, or 2. */
int rg_notifications_cmd(int argc, char **argv);

#endif
