/* SPDX-License-Identifier: ISC */
/* worker.h - a forked worker process: accepts on its service's listeners and runs the handler. */
#ifndef PREFORKD_WORKER_H
#define PREFORKD_WORKER_H

#include <stddef.h>
#include <sys/types.h>

struct config;
struct service;
struct worker_socket;
struct limits;
struct counter_row;

/* Exit status that tells the master not to respawn this slot: the worker can
 * never work (privileges cannot be dropped, the kernel refuses epoll...). */
#define WORKER_EXIT_FATAL 100

/* Control messages: a worker sends READY once its epoll set is armed; the
 * master sends QUIT for a fast stop (close every connection, exit now), and
 * KEEP just before the SIGTERM of a graceful stop: one bit per listener of
 * the worker (in worker_params order, bit i of byte i / 8), set where the
 * master keeps the socket open. A stop without KEEP keeps none. LIMIT:
 * the worker has served its max-requests, once. */
#define WORKER_MSG_READY 'R'
#define WORKER_MSG_QUIT 'Q'
#define WORKER_MSG_KEEP 'K'
/* Worker to master: it has served its max-requests (spread.h): replace it. */
#define WORKER_MSG_LIMIT 'L'

struct worker_params {
	const struct config *conf;
	const struct service *svc;
	struct worker_socket *listeners;	/* the service's, fds inherited across fork */
	size_t nlisteners;
	int channel_fd;			/* our end of the socketpair to the master */
	unsigned slot;			/* its number in the service: echo#1 */
	unsigned row;			/* its row in limits */
	unsigned generation;
	pid_t master_pid;
	struct limits *limits;		/* shared with the service's other workers; or NULL */
	struct counter_row *counters;	/* this worker's row, the master reads it; or NULL */
};

/* Runs in the child after fork; returns the process exit status. */
int worker_main(const struct worker_params *p);

#endif
