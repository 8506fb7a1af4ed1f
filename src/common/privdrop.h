/* SPDX-License-Identifier: ISC */
/* privdrop.h - giving up root in a worker after the master has bound everything. */
#ifndef PREFORKD_PRIVDROP_H
#define PREFORKD_PRIVDROP_H

#include <sys/types.h>

/* Who a worker (and what it runs) is when preforkd starts as root. */
struct identity {
	char *user, *group;	/* NULL: not set */
	uid_t uid;		/* (uid_t)-1 without user */
	gid_t gid;		/* user's primary group, or group; (gid_t)-1 without either */
};

/* Switches to id's user and group when running as root. Returns 0, or -1
 * after logging; a worker that cannot drop privileges must not serve. */
int privdrop_apply(const struct identity *id);

#endif
