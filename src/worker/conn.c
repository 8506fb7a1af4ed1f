/* SPDX-License-Identifier: ISC */
/* conn.c - a worker's connections: open, handler answers, deadlines, close. */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <unistd.h>

#include "conf/conf.h"
#include "worker/conn.h"
#include "handlers/handler.h"
#include "common/log.h"
#include "worker/worker_private.h"

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

void conn_touch(struct worker *w, struct conn *c)
{
	if (!c->handler->timeout && w->svc->idle_timeout_ms)
		conn_set_deadline(w, c, w->now + w->svc->idle_timeout_ms);
}

void conn_close(struct worker *w, struct conn *c)
{
	if (c->handler->close)
		c->handler->close(c);
	/* Before the close: a client that saw its EOF may connect again at
	 * once, to another worker, and must find its place free. */
	if (c->counted)
		limits_release(w->limits, w->slot, &c->source);
	/* The set forgets a descriptor only when its last copy is closed, and
	 * a helper just spawned still holds copies of ours until its execve is
	 * done closing them (the vfork parent resumes before that): an event
	 * would then come for a connection already freed. Where nothing is
	 * spawned, the close is enough, and one system call fewer. */
	if (w->svc->handler->spawns)
		epoll_ctl(w->epfd, EPOLL_CTL_DEL, c->fd, NULL);
	close(c->fd);
	deadline_unlink(w, c);
	if (c->handler == &handler_refuse)
		w->nlingering--;
	free(c);
	w->nconns--;
	/* A descriptor just came free: stop waiting out an EMFILE pause. */
	w->accept_paused_until = 0;
}

void conn_apply(struct worker *w, struct conn *c, int want)
{
	if (want == HANDLER_CLOSE || want == 0) {
		conn_close(w, c);
		return;
	}
	if (want == HANDLER_TIMER) {
		if (c->events && epoll_ctl(w->epfd, EPOLL_CTL_DEL, c->fd, NULL) < 0)
			log_errno(LOG_ERR, errno, "epoll_ctl(DEL) %s", c->peer);
		c->events = 0;
		conn_set_deadline(w, c, w->now);
		return;
	}
	if ((uint32_t)want == c->events)
		return;
	struct epoll_event ev = { .events = (uint32_t)want, .data.ptr = c };

	if (epoll_ctl(w->epfd, EPOLL_CTL_MOD, c->fd, &ev) < 0) {
		log_errno(LOG_ERR, errno, "epoll_ctl(MOD) %s", c->peer);
		conn_close(w, c);
		return;
	}
	c->events = (uint32_t)want;
}

void conn_open(struct worker *w, int fd, const struct handler *h, const char *peer,
		      const struct peer *client, const struct source_key *counted,
		      const struct dgram_origin *origin)
{
	struct conn *c = calloc(1, sizeof(*c) + h->state_size);
	unsigned timeout = h->timeout ? h->timeout(w->svc) : w->svc->idle_timeout_ms;
	struct epoll_event ev;
	int want;

	if (!c) {
		log_error("out of memory for a connection; closing it");
		if (counted)
			limits_release(w->limits, w->slot, counted);
		if (origin)
			dgram_unanswered(origin, "out of memory");
		close(fd);
		return;
	}
	c->src.kind = EV_CONN;
	c->fd = fd;
	c->worker = w;
	c->handler = h;
	c->svc = w->svc;
	c->stderr_fd = w->helper_stderr_fd;
	snprintf(c->peer, sizeof(c->peer), "%s", peer);
	c->client = *client;
	c->counted = counted != NULL;
	if (counted)
		c->source = *counted;
	c->from_datagram = origin != NULL;
	if (origin)
		c->origin = *origin;
	w->nconns++;
	w->nlingering += h == &handler_refuse;
	conn_set_deadline(w, c, timeout ? w->now + timeout : UINT64_MAX);
	want = h->open(c);
	if (want == HANDLER_CLOSE || want == 0) {
		conn_close(w, c);
		return;
	}
	/* The handler may watch another descriptor than the socket (exec: a pidfd). */
	ev = (struct epoll_event){ .events = (uint32_t)want, .data.ptr = c };
	if (epoll_ctl(w->epfd, EPOLL_CTL_ADD, c->fd, &ev) < 0) {
		log_errno(LOG_ERR, errno, "epoll_ctl(ADD) %s", c->peer);
		conn_close(w, c);
		return;
	}
	c->events = (uint32_t)want;
}
