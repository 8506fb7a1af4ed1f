/* SPDX-License-Identifier: ISC */
/* master.h - the master process: owns the listeners, forks and supervises the workers. */
#ifndef PREFORKD_MASTER_H
#define PREFORKD_MASTER_H

#include <stdbool.h>

struct config;

struct master_opts {
	const char *conf_path;	/* read again on every SIGHUP */
	bool verbose;		/* -v: debug level whatever log-level says */
};

/* Exit statuses of preforkd (documented in preforkd(8)). */
#define EXIT_OK 0
#define EXIT_RUNTIME 1
#define EXIT_USAGE 2
#define EXIT_CONFIG 78	/* EX_CONFIG: systemd's RestartPreventExitStatus= candidate */

/* Binds, forks the workers and supervises them until stopped, reloading on
 * SIGHUP. Takes ownership of conf. Returns the process exit status. */
int master_run(struct config *conf, const struct master_opts *opts);

#endif
