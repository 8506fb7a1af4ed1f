/* SPDX-License-Identifier: ISC */
/* privdrop.c - sets groups, gid and uid of a worker, and checks root cannot be regained. */
#include "config.h"

#include "common/privdrop.h"

#include <errno.h>
#include <grp.h>
#include <unistd.h>

#include "common/log.h"

int privdrop_apply(const struct identity *id)
{
	if (!id->user && !id->group)
		return 0;
	if (geteuid() != 0)
		return 0;	/* the master said so once, at start-up */
	if (id->user) {
		if (initgroups(id->user, id->gid) < 0) {
			log_errno(LOG_ERR, errno, "initgroups %s", id->user);
			return -1;
		}
	} else if (setgroups(1, &id->gid) < 0) {
		log_errno(LOG_ERR, errno, "setgroups %s", id->group);
		return -1;
	}
	if (setresgid(id->gid, id->gid, id->gid) < 0) {
		log_errno(LOG_ERR, errno, "setresgid %u", (unsigned)id->gid);
		return -1;
	}
	if (!id->user)
		return 0;
	if (setresuid(id->uid, id->uid, id->uid) < 0) {
		log_errno(LOG_ERR, errno, "setresuid %s", id->user);
		return -1;
	}
	if (id->uid != 0 && (setuid(0) == 0 || seteuid(0) == 0)) {
		log_error("privilege drop to %s failed: root could be regained", id->user);
		return -1;
	}
	return 0;
}
