/* master.h - the master process: owns the listeners, forks and supervises the workers. */
#ifndef PREFORKD_MASTER_H
#define PREFORKD_MASTER_H

struct config;

/* Exit statuses of preforkd (documented in preforkd(8)). */
#define EXIT_OK 0
#define EXIT_RUNTIME 1
#define EXIT_USAGE 2
#define EXIT_CONFIG 78	/* EX_CONFIG: systemd's RestartPreventExitStatus= candidate */

/* Binds, forks the workers and supervises them until stopped. Takes ownership
 * of conf. Returns the process exit status. */
int master_run(struct config *conf);

#endif
