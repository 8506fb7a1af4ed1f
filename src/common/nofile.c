/* SPDX-License-Identifier: ISC */
/* nofile.c - RLIMIT_NOFILE: raised at start, given back to helpers. */
#include "config.h"

#include "common/nofile.h"

#include <errno.h>
#include <stdbool.h>
#include <sys/resource.h>

#include "common/log.h"

static struct rlimit started_with;
static bool raised;

void nofile_raise(void)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) < 0 || rl.rlim_cur >= rl.rlim_max)
		return;
	started_with = rl;
	rl.rlim_cur = rl.rlim_max;
	if (setrlimit(RLIMIT_NOFILE, &rl) < 0) {
		log_errno(LOG_WARNING, errno, "setrlimit(RLIMIT_NOFILE, %llu)",
			  (unsigned long long)rl.rlim_max);
		return;
	}
	raised = true;
	log_info("descriptor limit raised from %llu to %llu", (unsigned long long)started_with.rlim_cur,
		 (unsigned long long)rl.rlim_max);
}

void nofile_restore_for_exec(void)
{
	if (raised)
		setrlimit(RLIMIT_NOFILE, &started_with);
}

unsigned long nofile_limit(void)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) < 0 || rl.rlim_max == RLIM_INFINITY)
		return ~0UL;
	return (unsigned long)rl.rlim_max;
}
