/* SPDX-License-Identifier: ISC */
/* pidfile.h - the locked pidfile that keeps two masters from sharing one configuration. */
#ifndef PREFORKD_PIDFILE_H
#define PREFORKD_PIDFILE_H

/* Creates and flock()s path, writes our pid. Returns the fd (close-on-exec),
 * or -1 after logging why (another instance holds it, or an I/O error). */
int pidfile_acquire(const char *path);
/* Unlinks path and closes fd; the lock goes with the fd. */
void pidfile_release(const char *path, int fd);

#endif
