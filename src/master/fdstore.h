/* SPDX-License-Identifier: ISC */
/* fdstore.h - listeners kept in the service manager's fd store, so that a restart refuses nobody. */
#ifndef PREFORKD_FDSTORE_H
#define PREFORKD_FDSTORE_H

#include <stdbool.h>
#include <stddef.h>

struct listener;
struct listen_set;

/* The FDNAME= of the listener for configured address text: "preforkd."
 * and the text, every byte but [A-Za-z0-9._/@*[]-] as %XX (':' may not
 * stand in a name); -1 when it would be longer than systemd takes. */
int fdstore_name(const char *text, char *buf, size_t len);
/* The configured address text of one of our names; false for a name that
 * is not ours (a socket unit's FileDescriptorName=). */
bool fdstore_decode(const char *name, char *text, size_t len);
/* Pushes every listener of set that preforkd bound itself and that is not
 * in the store yet (FDSTORE=1); one the manager's queue would not take now
 * is tried again at the next call. A no-op without a service manager. */
void fdstore_push(struct listen_set *set);
/* l is closed for good (a reload dropped it): FDSTOREREMOVE=1. */
void fdstore_forget(struct listener *l);
/* Some push is still to be tried again. */
bool fdstore_pending(void);

#endif
