/* SPDX-License-Identifier: ISC */
/* evsource.h - the tag every epoll registration points at, so one loop can tell sources apart. */
#ifndef PREFORKD_EVSOURCE_H
#define PREFORKD_EVSOURCE_H

enum ev_kind {
	EV_LISTENER,
	EV_CONN,
	EV_SIGNAL,
	EV_CHANNEL,
	EV_HELPER_LOG,
};

struct ev_source {
	enum ev_kind kind;
};

#endif
