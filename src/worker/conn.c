/* SPDX-License-Identifier: ISC */
/* conn.c - a worker's connections: open, handler answers, deadlines, close.
 *
 * Connections come from a free list of the worker's: a busy worker opens
 * and closes one per client, and malloc and free with it cost more than
 * the rest of an echo. */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "conf/conf.h"
#include "worker/conn.h"
#include "handlers/handler.h"
#include "common/log.h"
#include "worker/worker_private.h"

/* A connection's memory: any handler's state fits (the service's, or the
 * refusal of a client over a limit). */
static size_t conn_size(const struct worker *w)
{
	size_t state = w->svc->handler->state_size;

	if (handler_refuse.state_size > state)
		state = handler_refuse.state_size;
	return sizeof(struct conn) + state;
}

/* Its fields are set by the caller, all of them; the state is zeroed here. */
static struct conn *conn_get(struct worker *w)
{
	struct conn *c = w->free_conns;

	if (!c)
		return malloc(conn_size(w));
	w->free_conns = c->newer;
	w->nfree--;
	return c;
}

static void conn_put(struct worker *w, struct conn *c)
{
	if (w->nfree >= CONN_FREE_MAX) {
		free(c);
		return;
	}
	c->newer = w->free_conns;
	w->free_conns = c;
	w->nfree++;
}

void conn_reuse_closed(struct worker *w)
{
	while (w->closed_conns) {
		struct conn *c = w->closed_conns;

		w->closed_conns = c->newer;
		conn_put(w, c);
	}
}

void conn_free_all(struct worker *w)
{
	conn_reuse_closed(w);
	while (w->free_conns) {
		struct conn *c = w->free_conns;

		w->free_conns = c->newer;
		free(c);
	}
	w->nfree = 0;
}

void conn_count(const struct conn *c, enum counter k)
{
	counter_add(c->worker->counters, k, 1);
}

const char *conn_peer_text(const struct conn *c, char buf[ADDRESS_TEXT_MAX])
{
	struct sockaddr_storage ss;
	socklen_t len;

	if (c->origin) {
		address_format((const struct sockaddr *)&c->origin->from, c->origin->fromlen, buf,
			       ADDRESS_TEXT_MAX);
		return buf;
	}
	len = access_peer_sockaddr(&c->client, &ss);
	if (!len) {
		len = sizeof(ss);
		if (getpeername(c->fd, (struct sockaddr *)&ss, &len) < 0)
			len = 0;
		ss.ss_family = AF_UNIX;
	}
	address_format((const struct sockaddr *)&ss, len, buf, ADDRESS_TEXT_MAX);
	return buf;
}

/* Every connection is on one list ordered by deadline, soonest first;
 * UINT64_MAX (no deadline) sorts last. */
static void deadline_unlink(struct worker *w, struct conn *c)
{
	if (c->older)
		c->older->newer = c->newer;
	else if (w->oldest == c)
		w->oldest = c->newer;
	if (c->newer)
		c->newer->older = c->older;
	else if (w->newest == c)
		w->newest = c->older;
	c->older = c->newer = NULL;
}

void conn_set_deadline(struct worker *w, struct conn *c, uint64_t deadline)
{
	struct conn *before;

	deadline_unlink(w, c);
	c->deadline_ms = deadline;
	worker_due(w, deadline);
	/* From the latest back: a renewed timeout lands at the end in one step. */
	for (before = w->newest; before && before->deadline_ms > deadline; before = before->older)
		;
	c->older = before;
	c->newer = before ? before->newer : w->oldest;
	if (c->newer)
		c->newer->older = c;
	else
		w->newest = c;
	if (before)
		before->newer = c;
	else
		w->oldest = c;
}

void conn_close(struct worker *w, struct conn *c)
{
	bool starved;

	if (c->handler->close)
		c->handler->close(c);
	/* Before the close: a client that saw its EOF may connect again at
	 * once, to another worker, and must find its place free. */
	if (c->counted)
		limits_release(w->limits, w->row, &c->source);
	/* The set forgets a descriptor only when its last copy is closed:
	 * where a helper just spawned keeps copies of ours until its execve is
	 * done (spawn_closes_the_rest()), an event could come for a connection
	 * already freed. Elsewhere the close is enough, one system call fewer. */
	if (w->helper_copies_linger)
		epoll_ctl(w->epfd, EPOLL_CTL_DEL, c->fd, NULL);
	close(c->fd);
	deadline_unlink(w, c);
	if (c->handler == &handler_refuse)
		w->nlingering--;
	if (c->origin)	/* rare, and free() is a call */
		free(c->origin);
	/* Read before c goes: the free list may free it. */
	starved = c->starved;
	if (c->handler->ready_peer) {
		/* Its other descriptor's event may come later in this batch:
		 * its kind says to skip it (conn_peer_close marks the peer's). */
		c->src.kind = EV_CONN_CLOSED;
		c->newer = w->closed_conns;
		w->closed_conns = c;
	} else {
		conn_put(w, c);
	}
	/* A place came free, and a descriptor: stop waiting out an EMFILE pause
	 * (not one this very connection began: it found no descriptor). */
	if (serving(w) == w->svc->max_connections || (w->accept_paused_until && !starved))
		w->sockets_dirty = true;
	w->nconns--;
	counter_add(w->counters, COUNTER_ACTIVE, -1);
	if (!starved)
		w->accept_paused_until = 0;
}

int conn_peer_watch(struct conn *c, struct conn_peer *p, uint32_t events)
{
	struct epoll_event ev = { .events = events, .data.ptr = p };
	char peer[ADDRESS_TEXT_MAX];

	if (p->watched && p->events == events)
		return 0;
	p->src.kind = EV_CONN_PEER;
	p->conn = c;
	if (epoll_ctl(c->worker->epfd, p->watched ? EPOLL_CTL_MOD : EPOLL_CTL_ADD, p->fd, &ev) < 0) {
		log_errno(LOG_ERR, errno, "epoll_ctl for the peer of %s", conn_peer_text(c, peer));
		return -1;
	}
	p->watched = true;
	p->events = events;
	return 0;
}

void conn_peer_close(struct conn *c, struct conn_peer *p)
{
	(void)c;
	if (p->fd < 0)
		return;
	/* The close takes it out of the set: nobody else holds a copy. An
	 * event for it already in this batch is skipped by its kind. */
	close(p->fd);
	p->src.kind = EV_CONN_CLOSED;
	p->fd = -1;
	p->watched = false;
	p->events = 0;
}

void conn_out_of_descriptors(struct conn *c)
{
	struct worker *w = c->worker;

	c->starved = true;
	w->accept_paused_until = w->now + ACCEPT_PAUSE_MS;
	w->sockets_dirty = true;
	worker_due(w, w->accept_paused_until);
}

void conn_set_events(struct conn *c, int want)
{
	conn_apply(c->worker, c, want);
}

void conn_expire_in(struct conn *c, unsigned ms)
{
	conn_set_deadline(c->worker, c, c->worker->now + ms);
}

void conn_apply(struct worker *w, struct conn *c, int want)
{
	char peer[ADDRESS_TEXT_MAX];

	if (want == HANDLER_CLOSE || want == 0) {
		conn_close(w, c);
		return;
	}
	if (want == HANDLER_IDLE)
		want = 0;	/* stays in the set: its errors and hangups still come */
	if (want == HANDLER_HANDED_OVER)
		return;
	if (want == HANDLER_TIMER) {
		if (c->events && epoll_ctl(w->epfd, EPOLL_CTL_DEL, c->fd, NULL) < 0)
			log_errno(LOG_ERR, errno, "epoll_ctl(DEL) %s", conn_peer_text(c, peer));
		c->events = 0;
		c->in_epoll = false;
		c->renews_idle = false;	/* the handler's timer is its deadline now */
		conn_set_deadline(w, c, w->now);
		return;
	}
	if ((uint32_t)want == c->events)
		return;
	struct epoll_event ev = { .events = (uint32_t)want, .data.ptr = c };

	if (epoll_ctl(w->epfd, EPOLL_CTL_MOD, c->fd, &ev) < 0) {
		log_errno(LOG_ERR, errno, "epoll_ctl(MOD) %s", conn_peer_text(c, peer));
		conn_close(w, c);
		return;
	}
	c->events = (uint32_t)want;
}

/* What a handler's open said: closed, handed over, or its events, the
 * descriptor put in the set the first time. Inlined: every connection. */
static inline __attribute__((always_inline)) void apply_open(struct worker *w, struct conn *c, int want)
{
	char peer[ADDRESS_TEXT_MAX];
	struct epoll_event ev;

	if (want == HANDLER_HANDED_OVER)
		return;
	if (want == HANDLER_CLOSE || want == 0) {
		conn_close(w, c);
		return;
	}
	if (c->in_epoll) {
		conn_apply(w, c, want);
		return;
	}
	if (want == HANDLER_IDLE)
		want = 0;
	/* The handler may watch another descriptor than the socket (exec: a pidfd). */
	ev = (struct epoll_event){ .events = (uint32_t)want, .data.ptr = c };
	if (epoll_ctl(w->epfd, EPOLL_CTL_ADD, c->fd, &ev) < 0) {
		log_errno(LOG_ERR, errno, "epoll_ctl(ADD) %s", conn_peer_text(c, peer));
		conn_close(w, c);
		return;
	}
	c->events = (uint32_t)want;
	c->in_epoll = true;
}

/* c, its descriptor and counts set, goes to handler h for client: its
 * state zeroed, its deadline, and what h's open says. Inlined: every
 * connection, and a PROXY header's again (conn_reopen). */
static inline __attribute__((always_inline)) void give_to(struct worker *w, struct conn *c,
		const struct handler *h, const struct peer *client, const struct source_key *counted)
{
	unsigned timeout = h->timeout ? h->timeout(w->svc) : w->svc->idle_timeout_ms;

	c->handler = h;
	c->client = *client;
	c->counted = counted != NULL;
	if (counted)
		c->source = *counted;
	c->renews_idle = !h->timeout && w->svc->idle_timeout_ms;
	c->active_ms = w->now;
	memset(c->state, 0, h->state_size);
	w->nlingering += h == &handler_refuse;
	conn_set_deadline(w, c, timeout ? w->now + timeout : UINT64_MAX);
	apply_open(w, c, h->open(c));
}

void conn_open(struct worker *w, int fd, const struct handler *h, const struct worker_socket *via,
	       const struct peer *client, const struct source_key *counted,
	       const struct dgram_origin *origin)
{
	struct conn *c = conn_get(w);
	struct dgram_origin *copy = origin ? malloc(sizeof(*origin)) : NULL;

	if (!c || (origin && !copy)) {
		if (c)
			conn_put(w, c);
		free(copy);
		log_error("out of memory for a connection; closing it");
		if (counted)
			limits_release(w->limits, w->row, counted);
		if (origin)
			dgram_unanswered(origin, "out of memory");
		close(fd);
		return;
	}
	/* Field by field: zeroing the whole struct first costs more than the rest. */
	c->src.kind = EV_CONN;
	c->fd = fd;
	c->events = 0;
	c->older = c->newer = NULL;
	c->worker = w;
	c->svc = w->svc;
	c->via = via;
	c->starved = false;
	c->in_epoll = false;
	c->stderr_fd = w->helper_stderr_fd;
	c->origin = copy;
	if (origin)
		*copy = *origin;
	w->nconns++;
	counter_add(w->counters, COUNTER_ACTIVE, 1);
	if (serving(w) >= w->svc->max_connections)
		w->sockets_dirty = true;	/* full: the listeners rest */
	give_to(w, c, h, client, counted);
}

void conn_reopen(struct worker *w, struct conn *c, const struct handler *h,
		 const struct peer *client, const struct source_key *counted)
{
	give_to(w, c, h, client, counted);
}
