/* SPDX-License-Identifier: ISC */
/* evsource.h - the tag every epoll registration points at, so one loop can tell sources apart. */
#ifndef PREFORKD_EVSOURCE_H
#define PREFORKD_EVSOURCE_H

#include <stddef.h>

enum ev_kind {
	EV_LISTENER,
	EV_CONN,
	EV_CONN_PEER,		/* a connection's second descriptor (proxy: the upstream) */
	EV_CONN_CLOSED,		/* either, closed earlier in this batch of events: skipped */
	EV_SIGNAL,
	EV_CHANNEL,
	EV_HELPER_LOG,
	EV_APP_OUTPUT,		/* an app worker's stdout and stderr, in the master */
	EV_WORKER_NOTIFY,	/* the master's NOTIFY_SOCKET for its app workers */
	EV_CONTROL,		/* the master's control socket */
	EV_CONTROL_CLIENT,	/* one connection to it */
	EV_METRICS,		/* a metrics-listen socket */
	EV_METRICS_CLIENT,	/* a scraper's connection */
};

struct ev_source {
	enum ev_kind kind;
};

/* The struct a source is the member of. */
#define container_of(ptr, type, member) \
	((type *)(void *)((char *)(ptr) - offsetof(type, member)))

#endif
