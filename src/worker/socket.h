/* SPDX-License-Identifier: ISC */
/* socket.h - a listening or datagram socket as a worker serves it: its copy of one the master opened. */
#ifndef PREFORKD_WORKER_SOCKET_H
#define PREFORKD_WORKER_SOCKET_H

#include <stdbool.h>
#include <sys/socket.h>

#include "common/address.h"
#include "common/evsource.h"

struct worker_socket {
	struct ev_source src;	/* first: epoll data points here (EV_LISTENER) */
	struct address addr;	/* what it is bound to */
	int fd;			/* inherited across fork; -1 once let go of */
	bool armed;		/* in the worker's epoll set */
	unsigned wakeups;	/* since it was last armed */
};

static inline bool worker_socket_is_datagram(const struct worker_socket *s)
{
	return s->addr.socktype == SOCK_DGRAM;
}

#endif
