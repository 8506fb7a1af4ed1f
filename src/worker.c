/* worker.c - the accept loop of a worker: level-triggered listeners, connections, timeouts.
 *
 * Listeners are level-triggered with EPOLLEXCLUSIVE: an edge-triggered
 * listener loses connections that arrive during a burst. The price of level
 * triggering is that a listener we cannot accept from (EMFILE, ENFILE, or our
 * own max-connections) stays readable forever, so in those states we take the
 * listeners out of the epoll set and leave the clients in the kernel backlog
 * until descriptors or slots free up. */
#include "config.h"

#include "worker.h"

#include <errno.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include "clock.h"
#include "conf.h"
#include "conn.h"
#include "fdutil.h"
#include "handler.h"
#include "listener.h"
#include "log.h"
#include "privdrop.h"

#define ACCEPT_BATCH 64		/* per listener per wakeup: others get a turn */
#define ACCEPT_PAUSE_MS 100	/* after EMFILE/ENFILE, unless a close frees one sooner */
#define RATELIMIT_MS 10000
#define MAX_EVENTS 64

struct worker {
	const struct service *svc;
	int epfd;
	struct ev_source sig_src;
	int sigfd;
	struct ev_source ctl_src;
	int ctlfd;
	struct listener *ls;
	size_t nls;
	bool armed;
	uint64_t accept_paused_until;
	uint64_t last_starved_log;
	unsigned long starved_since_log;
	unsigned nconns;
	struct conn *oldest, *newest;
	unsigned conn_timeout_ms;	/* 0: none */
	bool stopping;
	uint64_t now;
	unsigned long accepted, idle_closed;
};

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

static void deadline_set(struct worker *w, struct conn *c, uint64_t deadline)
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

/* Renews an idle timeout; a handler with its own timeout set it at open. */
static void conn_touch(struct worker *w, struct conn *c)
{
	if (!c->handler->timeout && w->conn_timeout_ms)
		deadline_set(w, c, w->now + w->conn_timeout_ms);
}

static void conn_close(struct worker *w, struct conn *c)
{
	if (c->handler->close)
		c->handler->close(c);
	/* Explicit: a descriptor shared with a child stays in the set after close(). */
	epoll_ctl(w->epfd, EPOLL_CTL_DEL, c->fd, NULL);
	close(c->fd);
	deadline_unlink(w, c);
	free(c);
	w->nconns--;
	/* A descriptor just came free: stop waiting out an EMFILE pause. */
	w->accept_paused_until = 0;
}

/* Applies a handler's answer: new event mask, or close. */
static void conn_apply(struct worker *w, struct conn *c, int want)
{
	if (want == HANDLER_CLOSE || want == 0) {
		conn_close(w, c);
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

static void conn_open(struct worker *w, int fd, const struct sockaddr *peer, socklen_t plen)
{
	const struct handler *h = w->svc->handler;
	struct conn *c = calloc(1, sizeof(*c) + h->state_size);
	struct epoll_event ev;
	int want;

	if (!c) {
		log_error("out of memory for a connection; closing it");
		close(fd);
		return;
	}
	c->src.kind = EV_CONN;
	c->fd = fd;
	c->worker = w;
	c->handler = h;
	c->svc = w->svc;
	address_format(peer, plen, c->peer, sizeof(c->peer));
	w->nconns++;
	deadline_set(w, c, w->conn_timeout_ms ? w->now + w->conn_timeout_ms : UINT64_MAX);
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

static bool want_accepting(const struct worker *w)
{
	return !w->stopping && w->accept_paused_until == 0 && w->nconns < w->svc->max_connections;
}

/* Puts the listeners in or takes them out of the epoll set. EPOLLEXCLUSIVE
 * registrations cannot be modified, only deleted and added again. */
static void update_accepting(struct worker *w)
{
	bool want = want_accepting(w);

	if (want == w->armed)
		return;
	for (size_t i = 0; i < w->nls; i++) {
		struct epoll_event ev = { .events = EPOLLIN | EPOLLEXCLUSIVE, .data.ptr = &w->ls[i] };

		if (w->ls[i].fd < 0)
			continue;
		if (epoll_ctl(w->epfd, want ? EPOLL_CTL_ADD : EPOLL_CTL_DEL, w->ls[i].fd, &ev) < 0)
			log_errno(LOG_ERR, errno, "epoll_ctl(%s) %s", want ? "ADD" : "DEL",
				  w->ls[i].addr.text);
	}
	w->armed = want;
}

static void note_starved(struct worker *w, const struct listener *l, int err)
{
	w->accept_paused_until = w->now + ACCEPT_PAUSE_MS;
	w->starved_since_log++;
	if (w->last_starved_log && w->now - w->last_starved_log < RATELIMIT_MS)
		return;
	log_errno(LOG_WARNING, err, "accept4 %s: pausing accepts, %u connections open, "
		  "%lu times since last report", l->addr.text, w->nconns, w->starved_since_log);
	w->last_starved_log = w->now;
	w->starved_since_log = 0;
}

/* Accepts up to ACCEPT_BATCH connections; true when the queue may hold more. */
static bool accept_batch(struct worker *w, struct listener *l)
{
	for (int i = 0; i < ACCEPT_BATCH; i++) {
		struct sockaddr_storage ss;
		socklen_t len = sizeof(ss);
		int fd;

		if (l->fd < 0 || w->nconns >= w->svc->max_connections)
			return false;
		fd = accept4(l->fd, (struct sockaddr *)&ss, &len, SOCK_CLOEXEC | SOCK_NONBLOCK);
		if (fd >= 0) {
			w->accepted++;
			conn_open(w, fd, (struct sockaddr *)&ss, len);
			continue;
		}
		switch (errno) {
		case EINTR:
		case ECONNABORTED:
		case EPROTO:
			continue;	/* that client is gone; the next one may be waiting */
		case EAGAIN:
			return false;
		case EMFILE:
		case ENFILE:
		case ENOBUFS:
		case ENOMEM:
			note_starved(w, l, errno);
			return false;
		default:
			log_errno(LOG_ERR, errno, "accept4 %s", l->addr.text);
			return false;
		}
	}
	return true;
}

/* Stop accepting. Out of the epoll set first, so that no wakeup is spent on
 * us any more (clients arriving later wake the workers of a generation that
 * shares the listener), then, when graceful, take every client the kernel
 * had already queued, then let go of the port. */
static void begin_stop(struct worker *w, const char *why, bool take_queued)
{
	if (!w->stopping) {
		w->stopping = true;
		update_accepting(w);
		for (size_t i = 0; i < w->nls && take_queued; i++)
			while (accept_batch(w, &w->ls[i]))
				;
		for (size_t i = 0; i < w->nls; i++)
			fd_close(&w->ls[i].fd);
		log_info("stopping (%s), %u connections in flight", why, w->nconns);
	}
	if (!take_queued) {
		while (w->oldest)
			conn_close(w, w->oldest);
	}
}

static void handle_signal(struct worker *w)
{
	struct signalfd_siginfo si;

	while (read(w->sigfd, &si, sizeof(si)) == sizeof(si))
		if (si.ssi_signo == SIGTERM)
			begin_stop(w, "SIGTERM", true);
}

static void handle_control(struct worker *w, uint32_t events)
{
	char msg[16];
	ssize_t n;

	while ((n = recv(w->ctlfd, msg, sizeof(msg), 0)) > 0)
		if (msg[0] == WORKER_MSG_QUIT)
			begin_stop(w, "told to quit now", false);
	if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR) || (events & EPOLLHUP)) {
		epoll_ctl(w->epfd, EPOLL_CTL_DEL, w->ctlfd, NULL);
		fd_close(&w->ctlfd);
		begin_stop(w, "master went away", true);
	}
}

static void expire_deadlines(struct worker *w)
{
	while (w->oldest && w->oldest->deadline_ms <= w->now) {
		struct conn *c = w->oldest;
		int more = c->handler->expire ? c->handler->expire(c) : HANDLER_CLOSE;

		if (more > 0) {
			deadline_set(w, c, w->now + (unsigned)more);
			continue;
		}
		if (!c->handler->expire) {
			log_debug("%s: idle for %u ms, closing", c->peer, w->conn_timeout_ms);
			w->idle_closed++;
		}
		conn_close(w, c);
	}
}

static int next_timeout(const struct worker *w)
{
	uint64_t deadline = w->accept_paused_until;

	if (w->oldest && w->oldest->deadline_ms != UINT64_MAX &&
	    (!deadline || w->oldest->deadline_ms < deadline))
		deadline = w->oldest->deadline_ms;
	return clock_timeout_until(deadline, w->now);
}

static void dispatch(struct worker *w, struct epoll_event *ev)
{
	struct ev_source *src = ev->data.ptr;

	switch (src->kind) {
	case EV_LISTENER:
		accept_batch(w, (struct listener *)src);
		break;
	case EV_CONN: {
		struct conn *c = (struct conn *)src;

		conn_touch(w, c);
		conn_apply(w, c, c->handler->ready(c, ev->events));
		break;
	}
	case EV_SIGNAL:
		handle_signal(w);
		break;
	case EV_CONTROL:
		handle_control(w, ev->events);
		break;
	}
}

static int setup_signals(struct worker *w)
{
	sigset_t term;

	/* Terminal signals (^C, ^\, a hangup) are for the master, which tells us. */
	signal(SIGINT, SIG_IGN);
	signal(SIGQUIT, SIG_IGN);
	signal(SIGHUP, SIG_IGN);
	signal(SIGPIPE, SIG_IGN);
	signal(SIGCHLD, SIG_DFL);
	sigemptyset(&term);
	sigaddset(&term, SIGTERM);
	sigprocmask(SIG_SETMASK, &term, NULL);
	w->sigfd = signalfd(-1, &term, SFD_CLOEXEC | SFD_NONBLOCK);
	if (w->sigfd < 0) {
		log_errno(LOG_ERR, errno, "signalfd");
		return -1;
	}
	return 0;
}

static int add_fd(struct worker *w, int fd, struct ev_source *src)
{
	struct epoll_event ev = { .events = EPOLLIN, .data.ptr = src };

	if (epoll_ctl(w->epfd, EPOLL_CTL_ADD, fd, &ev) < 0) {
		log_errno(LOG_ERR, errno, "epoll_ctl(ADD)");
		return -1;
	}
	return 0;
}

static int worker_setup(struct worker *w, const struct worker_params *p)
{
	char role[48], ready = WORKER_MSG_READY;

	snprintf(role, sizeof(role), "%s#%u", p->svc->name, p->slot);
	log_set_role(role);
	prctl(PR_SET_NAME, role);
	/* The master dying must not leave us serving alone; the check after
	 * arming catches a master that died before the prctl. */
	prctl(PR_SET_PDEATHSIG, SIGTERM);
	if (getppid() != p->master_pid)
		return -1;
	if (setup_signals(w) < 0)
		return WORKER_EXIT_FATAL;
	if (privdrop_apply(p->conf) < 0)
		return WORKER_EXIT_FATAL;
	w->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (w->epfd < 0) {
		log_errno(LOG_ERR, errno, "epoll_create1");
		return WORKER_EXIT_FATAL;
	}
	w->sig_src.kind = EV_SIGNAL;
	w->ctl_src.kind = EV_CONTROL;
	if (add_fd(w, w->sigfd, &w->sig_src) < 0 || add_fd(w, w->ctlfd, &w->ctl_src) < 0)
		return WORKER_EXIT_FATAL;
	update_accepting(w);
	if (send(w->ctlfd, &ready, 1, MSG_NOSIGNAL) < 0)
		log_errno(LOG_WARNING, errno, "send ready to master");
	return 0;
}

int worker_main(const struct worker_params *p)
{
	struct worker w = {
		.svc = p->svc, .epfd = -1, .sigfd = -1, .ctlfd = p->ctl_fd,
		.ls = p->listeners, .nls = p->nlisteners,
		.conn_timeout_ms = p->svc->handler->timeout ? p->svc->handler->timeout(p->svc) :
							      p->svc->idle_timeout_ms,
	};
	struct epoll_event events[MAX_EVENTS];
	int rc;

	w.now = clock_now_ms();
	rc = worker_setup(&w, p);
	if (rc != 0)
		return rc < 0 ? 0 : rc;
	log_debug("serving (generation %u, pid %ld)", p->generation, (long)getpid());
	while (!(w.stopping && w.nconns == 0)) {
		int n = epoll_wait(w.epfd, events, MAX_EVENTS, next_timeout(&w));

		if (n < 0 && errno != EINTR) {
			log_errno(LOG_ERR, errno, "epoll_wait");
			return 1;
		}
		w.now = clock_now_ms();
		for (int i = 0; i < n; i++)
			dispatch(&w, &events[i]);
		if (w.accept_paused_until && w.now >= w.accept_paused_until)
			w.accept_paused_until = 0;
		expire_deadlines(&w);
		update_accepting(&w);
	}
	log_debug("exiting: %lu connections served, %lu closed idle", w.accepted, w.idle_closed);
	return 0;
}
