/* SPDX-License-Identifier: ISC */
/* listenqueue.h - how many clients wait in a listener's accept queue, and its limit: TCP and Unix alike. */
#ifndef PREFORKD_LISTENQUEUE_H
#define PREFORKD_LISTENQUEUE_H

struct address;

struct listen_queue {
	unsigned length;	/* connections the kernel holds, not yet accepted */
	unsigned limit;		/* the backlog it holds them up to */
};

/* For a stream listener fd bound to addr: 0, or -1 (errno) when the kernel
 * does not say (a datagram socket, no sock_diag). */
int listen_queue_read(int fd, const struct address *addr, struct listen_queue *q);

#endif
