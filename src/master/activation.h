/* SPDX-License-Identifier: ISC */
/* activation.h - listening sockets handed over by systemd socket activation (LISTEN_FDS). */
#ifndef PREFORKD_ACTIVATION_H
#define PREFORKD_ACTIVATION_H

#include <stdbool.h>
#include <stddef.h>

#include "common/address.h"

struct config;

struct activated_fd {
	int fd;
	char name[256];		/* FileDescriptorName=, "unknown" when not set */
	struct address addr;	/* what the socket really is */
	size_t service, listen;	/* the configured address it serves */
	bool taken;
	bool stored;		/* from our fd store (fdstore.c), not a socket unit */
};

struct activation {
	struct activated_fd *fds;
	size_t n;
};

/* Takes the descriptors the service manager passed us (and LISTEN_* out of
 * the environment), makes them non-blocking and close-on-exec, and pairs each
 * with a configured listen address: by name (FileDescriptorName = service
 * name), then by family, type and port. Returns 0, or -1 after logging a
 * descriptor that matches nothing. */
int activation_collect(struct activation *act, const struct config *conf);
/* The descriptor paired with services[svc].listen[idx], or NULL. */
struct activated_fd *activation_find(struct activation *act, size_t svc, size_t idx);
/* Closes every descriptor that was not taken. */
void activation_free(struct activation *act);

/* Exposed for tests: 2 exact, 1 a loose match (a wildcard on either side), 0 none. */
int activation_match_score(const struct address *want, const struct address *have);

#endif
