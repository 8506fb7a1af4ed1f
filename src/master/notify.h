/* SPDX-License-Identifier: ISC */
/* notify.h - what the master tells the service manager over NOTIFY_SOCKET, without ever blocking. */
#ifndef PREFORKD_NOTIFY_H
#define PREFORKD_NOTIFY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Takes NOTIFY_SOCKET, WATCHDOG_USEC and WATCHDOG_PID out of the environment
 * (no worker or helper may talk to the service manager) and opens the socket.
 * Without NOTIFY_SOCKET every notify_* call does nothing. */
void notify_init(void);
/* Logs what was dropped and closes the socket. */
void notify_close(void);

/* Milliseconds between WATCHDOG=1 pings (half of WATCHDOG_USEC), 0 for none. */
uint64_t notify_watchdog_interval_ms(void);

void notify_ready(const char *status);
/* RELOADING=1 with MONOTONIC_USEC=, as Type=notify-reload expects. */
void notify_reloading(const char *status);
void notify_stopping(const char *status);
void notify_status(const char *status);
void notify_watchdog(void);
/* The service manager listens and keeps an fd store for us ($FDSTORE > 0). */
bool notify_fdstore_enabled(void);
/* FDSTORE=1 with FDNAME=name and fd: 0 when the manager took the message;
 * -1 when it could not be sent now (queue full: try again later). */
int notify_fdstore(int fd, const char *name);
/* FDSTOREREMOVE=1 for name. */
void notify_fdstore_remove(const char *name);


#define NOTIFY_ENV_MAX 160
/* What the service manager told us in the environment (and we took out of
 * it), as NAME=VALUE strings for the next image of an upgrade: NOTIFY_SOCKET,
 * WATCHDOG_USEC and WATCHDOG_PID, FDSTORE. Returns how many it wrote. */
size_t notify_exec_env(char env[][NOTIFY_ENV_MAX], size_t max);
/* The image before this one (an upgrade) sent READY=1 and MAINPID= already. */
void notify_adopt_ready(void);

#endif
