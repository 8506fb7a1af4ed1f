/* SPDX-License-Identifier: ISC */
/* handler.h - the interface a connection handler implements, and the registry of handlers. */
#ifndef PREFORKD_HANDLER_H
#define PREFORKD_HANDLER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct conn;
struct service;

/* Returned by open/ready instead of an epoll event mask: close the connection. */
#define HANDLER_CLOSE (-1)
/* Returned by ready: stop watching the descriptor; from now on expire()
 * alone decides, starting at once (exec: waiting for what a helper left). */
#define HANDLER_TIMER (-2)
/* Returned by open/ready/ready_peer: keep the connection, wait for nothing
 * on its descriptor for now (errors and hangups still come). */
#define HANDLER_IDLE (-3)
/* Returned by open/ready: the connection went to another handler (or was
 * closed) meanwhile, which has set its events itself. */
#define HANDLER_HANDED_OVER (-4)

struct handler {
	const char *name;
	/* Bytes of per-connection state, allocated with the connection, zeroed. */
	size_t state_size;
	/* After accept: the epoll events to wait for (EPOLLIN/EPOLLOUT) or HANDLER_CLOSE. */
	int (*open)(struct conn *c);
	/* When the connection is ready: same convention. Must not block. */
	int (*ready)(struct conn *c, uint32_t revents);
	/* Events on the handler's second descriptor (conn_peer_watch): the
	 * connection's events, as ready returns them. NULL: it has none. */
	int (*ready_peer)(struct conn *c, uint32_t revents);
	/* Before the descriptor is closed; may be NULL. */
	void (*close)(struct conn *c);
	/* When the connection's timeout has passed: milliseconds until it is
	 * asked again, or HANDLER_CLOSE. NULL: close it. */
	int (*expire)(struct conn *c);
	/* The connection timeout of a service (0: none). NULL: idle-timeout,
	 * renewed by every event of the connection. */
	unsigned (*timeout)(const struct service *svc);
	/* It shows unix clients their credentials (exec: the UCSPI variables),
	 * so the worker asks the kernel for them at accept. */
	bool wants_peer_credentials;
	/* It starts processes (exec). A child holds copies of the worker's
	 * descriptors for a moment after vfork returns, so the worker must take
	 * a descriptor out of its epoll set itself before closing it. */
	bool spawns;
	/* Datagram services: the reply to a datagram (it may be the datagram
	 * itself) and its length in *reply_len; NULL if there is none. NULL
	 * hook: the handler serves streams only. Must not block. */
	const void *(*datagram)(const struct service *svc, const void *in, size_t len,
				size_t *reply_len);
	/* Not a handler of connections: the service's program is each worker
	 * and accepts them itself (master/appworker.c); no hook above is set. */
	bool app;
};

const struct handler *handler_find(const char *name);
/* Comma-separated names, for error messages. */
const char *handler_names(void);

extern const struct handler handler_echo;
extern const struct handler handler_exec;
extern const struct handler handler_app;
extern const struct handler handler_proxy;
/* PROTO and the names that start with TCPLOCAL, TCPREMOTE, UDPLOCAL,
 * UDPREMOTE, UNIXLOCAL or UNIXREMOTE (the UCSPI namespace): the exec handler
 * sets them itself for each connection, so "env" must not. */
bool exec_env_name_reserved(const char *name, size_t len);
/* Not for the config: what a worker uses to turn away a client over a limit,
 * and to read a PROXY header before it knows who the client is (admit.c). */
extern const struct handler handler_refuse;
extern const struct handler handler_proxy_header;

#endif
