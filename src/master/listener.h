/* SPDX-License-Identifier: ISC */
/* listener.h - listening sockets: bound exclusively, options by family, unix files cleaned up. */
#ifndef PREFORKD_LISTENER_H
#define PREFORKD_LISTENER_H

#include <stdbool.h>
#include <sys/types.h>

#include "common/address.h"

struct service;

struct listener {
	struct address addr;	/* what the socket is bound to */
	struct address spec;	/* the configured address it serves: equal to addr unless adopted */
	int fd;
	int backlog;		/* the one we passed to listen(); 0 when adopted */
	bool adopted;		/* from socket activation: the service manager owns its options */
	bool marked;		/* used by a live generation (listen_set mark and sweep) */
	bool in_store;		/* the service manager's fd store holds it (fdstore.c) */
	bool store_refused;	/* its name is too long for the store: said once */
	/* The unix socket file we created, so we remove that one and no other. */
	bool owns_file;
	dev_t file_dev;
	ino_t file_ino;
};

/* Binds and listens on addr with the service's backlog and unix file options.
 * Refuses, with a logged reason naming the address, when anything else is
 * bound there. Returns 0, or -1 with l->fd == -1. */
int listener_open(struct listener *l, const struct address *addr, const struct service *svc);
/* Takes over a listening socket passed by the service manager (already
 * non-blocking and close-on-exec), for the configured address spec: a
 * socket unit's (its options are the unit's), or, stored, one we bound
 * in the last run and kept in the fd store (ours, file included). */
int listener_adopt(struct listener *l, const struct address *spec, int fd,
		   const struct address *actual, const struct service *svc, bool stored);
/* A listener kept across a reload: applies the new service's backlog and unix
 * file mode and owner. Failures are logged; the listener keeps serving. */
void listener_update(struct listener *l, const struct service *svc);
/* Closes the socket; with remove_file, unlinks the unix socket file if it is still ours. */
void listener_close(struct listener *l, bool remove_file);

#endif
