/* SPDX-License-Identifier: ISC */
/* worker_private.h - what the parts of a worker share: its state, its connections, admission. */
#ifndef PREFORKD_WORKER_PRIVATE_H
#define PREFORKD_WORKER_PRIVATE_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

#include "worker/access.h"
#include "common/address.h"
#include "worker/dgram.h"
#include "common/evsource.h"
#include "worker/limits.h"
#include "worker/socket.h"
#include "common/ratelimit.h"

struct conn;
struct handler;
struct outlog;

#define ACCEPT_PAUSE_MS 100	/* after EMFILE/ENFILE, unless a close frees one sooner */
#define CONN_FREE_MAX 64	/* closed connections kept for reuse */

/* Clients turned away, of one kind: counted, the last one kept for the report. */
enum { DENIED, REFUSED, TURNED_AWAY_KINDS };
struct turned_away {
	const char *verb;
	struct ratelimit rl;
	const char *why;
	char peer[ADDRESS_TEXT_MAX];
};

struct worker {
	const struct service *svc;
	int epfd;
	struct ev_source sig_src;
	int sigfd;
	struct ev_source channel_src;
	int channel_fd;			/* -1 once the master is gone */
	unsigned char *channel_buf;		/* one control message (a type, a bitmap of listeners)... */
	size_t channel_buf_len;
	const unsigned char *kept;	/* ...and after it WORKER_MSG_KEEP's bitmap, or NULL */
	struct worker_socket *ls;
	size_t nls;
	struct dgram *dgram;		/* the service has datagram sockets; else NULL */
	struct outlog *helperlog;	/* where helpers' stderr is read; or NULL */
	int helper_stderr_fd;		/* its write end, /dev/null, or -1 (no helpers) */
	uint64_t due;			/* housekeeping may be needed from then on (UINT64_MAX: none) */
	uint64_t accept_paused_until;
	bool accepting;			/* the listeners are armed for it (update_accepting) */
	bool sockets_dirty;		/* arm or rearm them anyway: a stop, a busy listener */
	struct ratelimit starved;
	unsigned nconns;		/* every open connection, served or turned away */
	unsigned nlingering;		/* of those, turned away (handler_refuse) */
	struct conn *oldest, *newest;
	struct conn *free_conns;	/* closed ones, for the next (linked by newer) */
	/* Closed ones with a second descriptor (conn_peer): an event for it may
	 * still be in this batch, so they are reused only after it. */
	struct conn *closed_conns;
	unsigned nfree;
	struct limits *limits;
	struct counter_row *counters;	/* what the master reads of us */
	unsigned row;			/* our row in limits */
	uint64_t served_limit;		/* max-requests, spread for us; UINT64_MAX: none */
	bool limit_told;		/* WORKER_MSG_LIMIT sent */
	bool needs_credentials;		/* of unix clients, at accept (SO_PEERCRED) */
	bool svc_has_access_rules;	/* else nobody is turned away by access_allows() */
	int accept_flags;		/* for accept4() */
	unsigned accept_batch;		/* accepts per wakeup and listener */
	bool helper_copies_linger;	/* see conn_close() */
	struct turned_away turned_away[TURNED_AWAY_KINDS];
	bool stopping;
	uint64_t stop_deadline;		/* a stop ends by itself then (quit); 0: none */
	unsigned shutdown_timeout_ms;
	uint64_t now;
	unsigned long accepted, idle_closed;
};

/* Something will need the loop's housekeeping (worker_housekeep) at t. */
static inline void worker_due(struct worker *w, uint64_t t)
{
	if (t < w->due)
		w->due = t;
}

/* Connections we serve, the ones max-connections counts. */
static inline unsigned serving(const struct worker *w)
{
	return w->nconns - w->nlingering;
}

/* conn.c: the connections of a worker, on one list by deadline. */
void conn_set_deadline(struct worker *w, struct conn *c, uint64_t deadline);
/* Takes over fd (closed on every failure) and what the admission counted;
 * origin: a job for one datagram, fd its contents. */
void conn_open(struct worker *w, int fd, const struct handler *h, const struct worker_socket *via,
	       const struct peer *client, const struct source_key *counted,
	       const struct dgram_origin *origin);
/* At exit: the connections kept for reuse. */
void conn_free_all(struct worker *w);
/* c (open, its fd maybe in the set) goes to handler h for client: as
 * conn_open, without a new accept (after its PROXY header). */
void conn_reopen(struct worker *w, struct conn *c, const struct handler *h,
		 const struct peer *client, const struct source_key *counted);
/* The connections closed in this batch of events may be reused now. */
void conn_reuse_closed(struct worker *w);
/* Applies a handler's answer: new event mask, or close. */
void conn_apply(struct worker *w, struct conn *c, int want);
void conn_close(struct worker *w, struct conn *c);

/* admit.c: who is served. */
/* Access control and limits for a connection just accepted; then it is
 * served, turned away with the busy message, or closed. */
void admit_connection(struct worker *w, int fd, const struct sockaddr *sa, socklen_t len,
		      const struct worker_socket *via);
/* A handler without a datagram hook (exec) runs a job per datagram, counted
 * like a connection: max-connections and the limits apply to it. */
void admit_datagram(void *ctx, const struct dgram_origin *origin, const void *data, size_t len,
		    const struct peer *client);
/* Denials and refusals: the first is logged at once, the rest summed up
 * every RATELIMIT_INTERVAL_MS and at exit (final), so a flood cannot flood the log. */
void admit_report(struct worker *w, bool final);

#endif
