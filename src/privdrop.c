/* privdrop.c - sets groups, gid and uid of a worker, and checks root cannot be regained. */
#include "config.h"

#include "privdrop.h"

#include <errno.h>
#include <grp.h>
#include <unistd.h>

#include "conf.h"
#include "log.h"

int privdrop_apply(const struct config *conf)
{
	if (!conf->user && !conf->group)
		return 0;
	if (geteuid() != 0)
		return 0;	/* the master said so once, at start-up */
	if (conf->user) {
		if (initgroups(conf->user, conf->gid) < 0) {
			log_errno(LOG_ERR, errno, "initgroups %s", conf->user);
			return -1;
		}
	} else if (setgroups(1, &conf->gid) < 0) {
		log_errno(LOG_ERR, errno, "setgroups %s", conf->group);
		return -1;
	}
	if (setresgid(conf->gid, conf->gid, conf->gid) < 0) {
		log_errno(LOG_ERR, errno, "setresgid %u", (unsigned)conf->gid);
		return -1;
	}
	if (!conf->user)
		return 0;
	if (setresuid(conf->uid, conf->uid, conf->uid) < 0) {
		log_errno(LOG_ERR, errno, "setresuid %s", conf->user);
		return -1;
	}
	if (conf->uid != 0 && (setuid(0) == 0 || seteuid(0) == 0)) {
		log_error("privilege drop to %s failed: root could be regained", conf->user);
		return -1;
	}
	return 0;
}
