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
#include "worker/counters.h"
#include "worker/limits.h"

struct worker;
struct worker_socket;
struct handler;
struct service;

/* Small on purpose: an idle connection costs this and its handler's state.
 * The peer's address is kept, not its text, which is made only when a
 * message needs it (conn_peer_text). */
struct conn {
	struct ev_source src;		/* first: epoll data points here */
	int fd;				/* the socket, or whatever the handler watches instead */
	uint32_t events;		/* what epoll waits for now */
	uint64_t deadline_ms;		/* UINT64_MAX: none */
	uint64_t active_ms;		/* its last event; with renews_idle, see expire_deadlines() */
	struct conn *older, *newer;	/* the worker's list, soonest deadline first */
	struct worker *worker;
	const struct handler *handler;
	const struct service *svc;
	const struct worker_socket *via;	/* the listener it came in on */
	struct peer client;		/* address or credentials, for access and UCSPI */
	bool counted;			/* holds a place in the service's limits */
	bool renews_idle;		/* idle-timeout counts from the last event (active_ms) */
	bool in_epoll;			/* fd is in the worker's epoll set */
	bool starved;			/* its handler had no descriptor for it: its close frees none */
	struct source_key source;
	int stderr_fd;			/* what a helper gets as stderr (the worker's) */
	struct dgram_origin *origin;	/* a job for one datagram (exec): fd is its input; else NULL */
	_Alignas(16) unsigned char state[];	/* handler->state_size bytes */
};

/* A second descriptor a handler watches for a connection (proxy: the
 * upstream socket), in its state: the epoll data of its events, which go
 * to the handler's ready_peer. */
struct conn_peer {
	struct ev_source src;		/* EV_CONN_PEER */
	struct conn *conn;
	int fd;				/* -1: none */
	uint32_t events;		/* what epoll waits for now */
	bool watched;			/* in the epoll set */
};

/* Sets what epoll waits for on p->fd (added the first time): 0, or -1
 * (logged), after which the handler closes the connection. */
int conn_peer_watch(struct conn *c, struct conn_peer *p, uint32_t events);
/* Out of the epoll set and closed. */
void conn_peer_close(struct conn *c, struct conn_peer *p);
/* socket() or pipe() for c failed with EMFILE/ENFILE: the worker stops
 * accepting for a moment, as after EMFILE at accept (no spin). */
void conn_out_of_descriptors(struct conn *c);
/* From outside ready (expire): what epoll waits for on c->fd now, as ready
 * returns it (HANDLER_CLOSE closes c: not to be touched after). */
void conn_set_events(struct conn *c, int want);
/* expire() is asked again in ms, sooner than the deadline it has. */
void conn_expire_in(struct conn *c, unsigned ms);

/* The peer as every message names it ("1.2.3.4:5", "[::1]:5", "unix:@name"),
 * in buf; a unix peer's name is asked of the socket, which must still be
 * c->fd (a handler that replaces it keeps the text itself). */
const char *conn_peer_text(const struct conn *c, char buf[ADDRESS_TEXT_MAX]);
/* One more of k in the worker's counters (a handler's own: helpers). */
void conn_count(const struct conn *c, enum counter k);

#endif
