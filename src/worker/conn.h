/* SPDX-License-Identifier: ISC */
/* conn.h - one accepted connection as a worker tracks it and a handler sees it. */
#ifndef PREFORKD_CONN_H
#define PREFORKD_CONN_H

#include <stdbool.h>
#include <stdint.h>

#include "worker/access.h"
#include "common/address.h"
#include "worker/dgram.h"
#include "common/evsource.h"
#include "worker/limits.h"

struct worker;
struct handler;
struct service;

struct conn {
	struct ev_source src;		/* first: epoll data points here */
	int fd;				/* the socket, or whatever the handler watches instead */
	uint32_t events;		/* what epoll waits for now */
	uint64_t deadline_ms;		/* UINT64_MAX: none */
	struct conn *older, *newer;	/* the worker's list, soonest deadline first */
	struct worker *worker;
	const struct handler *handler;
	const struct service *svc;
	char peer[ADDRESS_TEXT_MAX];	/* text form, for every message */
	struct peer client;		/* address or credentials, for access and UCSPI */
	bool counted;			/* holds a place in the service's limits */
	struct source_key source;
	int stderr_fd;			/* what a helper gets as stderr (the worker's) */
	bool from_datagram;		/* a job for one datagram (exec): fd is its input */
	struct dgram_origin origin;
	_Alignas(16) unsigned char state[];	/* handler->state_size bytes */
};

#endif
