/* conn.h - one accepted connection as a worker tracks it and a handler sees it. */
#ifndef PREFORKD_CONN_H
#define PREFORKD_CONN_H

#include <stdint.h>

#include "address.h"
#include "evsource.h"

struct worker;
struct handler;

struct conn {
	struct ev_source src;		/* first: epoll data points here */
	int fd;
	uint32_t events;		/* what epoll waits for now */
	uint64_t last_active_ms;
	struct conn *older, *newer;	/* idle order: the worker's oldest first */
	struct worker *worker;
	const struct handler *handler;
	char peer[ADDRESS_TEXT_MAX];
	_Alignas(16) unsigned char state[];	/* handler->state_size bytes */
};

#endif
