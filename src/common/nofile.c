/* nofile.c - RLIMIT_NOFILE: raised at start, given back to helpers, and what a config needs of it. */
#include "config.h"

#include "common/nofile.h"

#include <errno.h>
#include <stdbool.h>
#include <sys/resource.h>

#include "conf/conf.h"
#include "handlers/handler.h"
#include "common/log.h"

/* A process's own: stdio, epoll, signalfd, control socket, log, the
 * helpers' stderr pipe, /dev/null, and a margin. */
#define FIXED_FDS 24
/* Clients turned away by a limit, read until they close (worker_admit.c). */
#define LINGERING_FDS 32

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

unsigned long nofile_worker_needs(const struct service *svc, unsigned max_connections)
{
	/* A helper's connection is a pidfd, and for a datagram job the pipe of its reply too. */
	unsigned long per_connection = svc->handler->spawns ? 2 : 1;

	return FIXED_FDS + svc->nlisten + LINGERING_FDS + per_connection * max_connections;
}

unsigned long nofile_master_needs(const struct config *conf)
{
	unsigned long n = FIXED_FDS;

	/* A control socket per worker, of the old and the new generation. */
	for (size_t i = 0; i < conf->nservices; i++)
		n += conf->services[i].nlisten + 2UL * conf->services[i].workers;
	return n;
}
