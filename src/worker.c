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
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include "clock.h"
#include "conf.h"
#include "access.h"
#include "conn.h"
#include "dgram.h"
#include "fdutil.h"
#include "handler.h"
#include "limits.h"
#include "listener.h"
#include "log.h"
#include "privdrop.h"
#include "ratelimit.h"

#define ACCEPT_BATCH 64		/* per listener per wakeup: others get a turn */
#define ACCEPT_PAUSE_MS 100	/* after EMFILE/ENFILE, unless a close frees one sooner */
/* Wakeups on a listener before this worker moves to the back of its wait
 * queue (see rearm_busy): rare enough to cost nothing, often enough that
 * every idle worker gets its turn within a few ms under load. */
#define REARM_WAKEUPS 16
#define MAX_EVENTS 64
#define STOP_DGRAM_BATCHES 64	/* datagrams taken at a graceful stop: this many batches at most */
/* Clients turned away by a limit, each read until it closes (refuse.c); past
 * this many at once, the next ones are closed at once. */
#define LINGERING_MAX 32

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
	struct ev_source ctl_src;
	int ctlfd;
	struct listener *ls;
	size_t nls;
	struct dgram *dgram;		/* the service has datagram sockets; else NULL */
	uint64_t accept_paused_until;
	struct ratelimit starved;
	unsigned nconns;		/* every open connection, served or turned away */
	unsigned nlingering;		/* of those, turned away (handler_refuse) */
	struct conn *oldest, *newest;
	struct limits *limits;
	unsigned slot;			/* our row in limits */
	bool needs_credentials;		/* of unix clients, at accept (SO_PEERCRED) */
	struct turned_away turned_away[TURNED_AWAY_KINDS];
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
	if (!c->handler->timeout && w->svc->idle_timeout_ms)
		deadline_set(w, c, w->now + w->svc->idle_timeout_ms);
}

/* Connections we serve, the ones max-connections counts. */
static unsigned serving(const struct worker *w)
{
	return w->nconns - w->nlingering;
}

static void conn_close(struct worker *w, struct conn *c)
{
	if (c->handler->close)
		c->handler->close(c);
	/* Before the close: a client that saw its EOF may connect again at
	 * once, to another worker, and must find its place free. */
	if (c->counted)
		limits_release(w->limits, w->slot, &c->source);
	/* Leaves the epoll set with it: no other process holds it (handler.h). */
	close(c->fd);
	deadline_unlink(w, c);
	if (c->handler == &handler_refuse)
		w->nlingering--;
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

/* Takes over fd (closed on every failure) and what the admission counted;
 * origin: a job for one datagram, fd its contents. */
static void conn_open(struct worker *w, int fd, const struct handler *h, const char *peer,
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
	deadline_set(w, c, timeout ? w->now + timeout : UINT64_MAX);
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
	return !w->stopping && w->accept_paused_until == 0 && serving(w) < w->svc->max_connections;
}

static const char *const limit_reasons[] = {
	[LIMITS_SOURCE] = "max-per-source reached",
	[LIMITS_TOTAL] = "max-service-connections reached",
	[LIMITS_UNAVAILABLE] = "connection counts unavailable",
};

static bool is_datagram(const struct listener *l)
{
	return l->addr.socktype == SOCK_DGRAM;
}

/* A datagram as input, in a descriptor a helper can read to its end. */
static int datagram_input(const void *data, size_t len)
{
	int fd = memfd_create("preforkd-datagram", MFD_CLOEXEC);

	if (fd >= 0 && (fd_write_all(fd, data, len) < 0 || lseek(fd, 0, SEEK_SET) < 0)) {
		int err = errno;

		close(fd);
		errno = err;
		return -1;
	}
	return fd;
}

/* A handler without a datagram hook (exec) runs a job per datagram, counted
 * like a connection: max-connections and the limits apply to it. */
static void start_datagram_job(void *ctx, const struct dgram_origin *origin, const void *data,
			       size_t len, const struct peer *client, const char *peer)
{
	struct worker *w = ctx;
	struct source_key key;
	enum limits_verdict v = LIMITS_OK;
	int in;

	/* Reading stops at max-connections; the rest of a batch gets here. */
	if (serving(w) >= w->svc->max_connections) {
		dgram_unanswered(origin, "max-connections helpers already running");
		return;
	}
	if (w->limits) {
		source_key_of(client, &key);
		v = limits_take(w->limits, w->slot, &key);
	}
	if (v != LIMITS_OK) {
		dgram_unanswered(origin, limit_reasons[v]);
		return;
	}
	in = datagram_input(data, len);
	if (in < 0) {
		int err = errno;

		if (err == EMFILE || err == ENFILE)
			w->accept_paused_until = w->now + ACCEPT_PAUSE_MS;
		if (ratelimit_event(&w->starved, w->now)) {
			log_errno(LOG_WARNING, err, "%s: memfd for a datagram: pausing reads, "
				  "%lu times since last report", peer, w->starved.since_log);
			ratelimit_logged(&w->starved, w->now);
		}
		if (w->limits)
			limits_release(w->limits, w->slot, &key);
		dgram_unanswered(origin, "no descriptor for its input");
		return;
	}
	conn_open(w, in, w->svc->handler, peer, client, w->limits ? &key : NULL, origin);
}

static bool arm(struct worker *w, struct listener *l, bool want)
{
	struct epoll_event ev = { .events = EPOLLIN | EPOLLEXCLUSIVE, .data.ptr = l };

	if (epoll_ctl(w->epfd, want ? EPOLL_CTL_ADD : EPOLL_CTL_DEL, l->fd, &ev) < 0) {
		log_errno(LOG_ERR, errno, "epoll_ctl(%s) %s", want ? "ADD" : "DEL", l->addr.text);
		return false;
	}
	l->armed = want;
	l->wakeups = 0;
	return true;
}

/* An EPOLLEXCLUSIVE wakeup goes to the first idle waiter in the socket's
 * wait queue, and a worker stays where it was added: the first worker would
 * take nearly every client while the others sleep. Like nginx, a worker that
 * has been woken REARM_WAKEUPS times leaves the queue and joins it again at
 * the back, so the clients go round the workers. */
static void rearm_busy(struct worker *w, struct listener *l)
{
	if (l->armed && l->wakeups >= REARM_WAKEUPS && arm(w, l, false))
		arm(w, l, true);
}

/* Puts the listeners in or takes them out of the epoll set. EPOLLEXCLUSIVE
 * registrations cannot be modified, only deleted and added again. */
static void update_accepting(struct worker *w)
{
	bool accepting = want_accepting(w);

	for (size_t i = 0; i < w->nls; i++) {
		struct listener *l = &w->ls[i];
		/* A datagram answered at once holds no connection and takes no
		 * descriptor: only a stop stops reading it. Where each datagram
		 * runs a helper, the socket pauses like a listener. */
		bool want = is_datagram(l) && w->svc->handler->datagram ? !w->stopping : accepting;

		if (l->fd < 0)
			continue;
		if (want != l->armed)
			arm(w, l, want);
		else
			rearm_busy(w, l);
	}
}

static void note_starved(struct worker *w, const struct listener *l, int err)
{
	w->accept_paused_until = w->now + ACCEPT_PAUSE_MS;
	if (!ratelimit_event(&w->starved, w->now))
		return;
	log_errno(LOG_WARNING, err, "accept4 %s: pausing accepts, %u connections open, "
		  "%lu times since last report", l->addr.text, w->nconns, w->starved.since_log);
	ratelimit_logged(&w->starved, w->now);
}

/* Denials and refusals: the first is logged at once, the rest summed up
 * every RATELIMIT_INTERVAL_MS and at exit, so a flood cannot flood the log. */
static void report_turned_away(struct worker *w, bool final)
{
	for (int k = 0; k < TURNED_AWAY_KINDS; k++) {
		struct turned_away *t = &w->turned_away[k];

		if (!ratelimit_pending(&t->rl, w->now, final))
			continue;
		log_notice("%s %lu connection%s (last: %s, %s), %lu in all", t->verb,
			   t->rl.since_log, t->rl.since_log == 1 ? "" : "s", t->peer, t->why,
			   t->rl.total);
		ratelimit_logged(&t->rl, w->now);
	}
}

static void note_turned_away(struct worker *w, int kind, const char *why, const char *peer)
{
	struct turned_away *t = &w->turned_away[kind];

	snprintf(t->peer, sizeof(t->peer), "%s", peer);
	t->why = why;
	if (ratelimit_event(&t->rl, w->now))
		report_turned_away(w, false);
}

/* Access control and limits for a connection just accepted; then it is
 * served, turned away with the busy message, or closed. */
static void admit(struct worker *w, int fd, const struct sockaddr *sa, socklen_t len)
{
	char peer[ADDRESS_TEXT_MAX];
	struct peer client;
	struct source_key key;
	enum limits_verdict v;

	address_format(sa, len, peer, sizeof(peer));
	peer_identify(w->needs_credentials ? fd : -1, sa, len, &client);
	if (!access_allows(w->svc, &client, fd)) {
		note_turned_away(w, DENIED,
				 client.family == AF_UNIX ? "user not allowed" : "address not allowed",
				 peer);
		close(fd);
		return;
	}
	if (!w->limits) {
		conn_open(w, fd, w->svc->handler, peer, &client, NULL, NULL);
		return;
	}
	source_key_of(&client, &key);
	v = limits_take(w->limits, w->slot, &key);
	if (v == LIMITS_OK) {
		conn_open(w, fd, w->svc->handler, peer, &client, &key, NULL);
		return;
	}
	note_turned_away(w, REFUSED, limit_reasons[v], peer);
	if (w->nlingering < LINGERING_MAX) {
		conn_open(w, fd, &handler_refuse, peer, &client, NULL, NULL);
		return;
	}
	close(fd);
}

/* Accepts up to ACCEPT_BATCH connections; true when the queue may hold more. */
static bool accept_batch(struct worker *w, struct listener *l)
{
	for (int i = 0; i < ACCEPT_BATCH; i++) {
		struct sockaddr_storage ss;
		socklen_t len = sizeof(ss);
		int fd;

		if (l->fd < 0 || serving(w) >= w->svc->max_connections)
			return false;
		fd = accept4(l->fd, (struct sockaddr *)&ss, &len, SOCK_CLOEXEC | SOCK_NONBLOCK);
		if (fd >= 0) {
			w->accepted++;
			admit(w, fd, (struct sockaddr *)&ss, len);
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

/* Takes what the kernel has queued on l when a graceful stop begins. A
 * datagram flood could keep a socket readable forever: batches are bounded. */
static void take_queued(struct worker *w, struct listener *l)
{
	if (!is_datagram(l)) {
		while (accept_batch(w, l))
			;
		return;
	}
	for (int batch = 0; batch < STOP_DGRAM_BATCHES && dgram_read(w->dgram, l, w->now); batch++)
		;
}

/* Stop accepting. Out of the epoll set first, so that no wakeup is spent on
 * us any more (clients arriving later wake the workers of a generation that
 * shares the listener), then, when graceful, take every client the kernel
 * had already queued, then let go of the port. A datagram socket is kept
 * until the replies queued on it are sent or dropped. */
static void begin_stop(struct worker *w, const char *why, bool graceful)
{
	if (!w->stopping) {
		w->stopping = true;
		update_accepting(w);
		for (size_t i = 0; i < w->nls && graceful; i++)
			if (w->ls[i].fd >= 0)
				take_queued(w, &w->ls[i]);
		for (size_t i = 0; i < w->nls; i++)
			if (!is_datagram(&w->ls[i]))
				fd_close(&w->ls[i].fd);
		log_info("stopping (%s), %u connections in flight", why, w->nconns);
	}
	if (!graceful) {
		while (w->oldest)
			conn_close(w, w->oldest);
		dgram_drop_queue(w->dgram);
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
		if (!c->handler->timeout) {
			log_debug("%s: idle for %u ms, closing", c->peer, w->svc->idle_timeout_ms);
			w->idle_closed++;
		}
		conn_close(w, c);
	}
}

/* The sooner of two deadlines, 0 meaning none. */
static uint64_t sooner(uint64_t a, uint64_t b)
{
	return !a || (b && b < a) ? b : a;
}

static int next_timeout(const struct worker *w)
{
	uint64_t deadline = w->accept_paused_until;

	/* A summary of turned-away clients is due even if nothing else happens. */
	for (int k = 0; k < TURNED_AWAY_KINDS; k++)
		deadline = sooner(deadline, ratelimit_next(&w->turned_away[k].rl));
	deadline = sooner(deadline, dgram_next_deadline(w->dgram, w->now));
	if (w->oldest && w->oldest->deadline_ms != UINT64_MAX)
		deadline = sooner(deadline, w->oldest->deadline_ms);
	return clock_timeout_until(deadline, w->now);
}

static void dispatch(struct worker *w, struct epoll_event *ev)
{
	struct ev_source *src = ev->data.ptr;

	switch (src->kind) {
	case EV_LISTENER:
		((struct listener *)src)->wakeups++;
		if (is_datagram((struct listener *)src))
			dgram_read(w->dgram, (struct listener *)src, w->now);
		else
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
	if (privdrop_apply(&p->svc->run_as) < 0)
		return WORKER_EXIT_FATAL;
	w->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (w->epfd < 0) {
		log_errno(LOG_ERR, errno, "epoll_create1");
		return WORKER_EXIT_FATAL;
	}
	w->sig_src.kind = EV_SIGNAL;
	w->ctl_src.kind = EV_CONTROL;
	limits_row_claim(w->limits, w->slot);
	if (add_fd(w, w->sigfd, &w->sig_src) < 0 || add_fd(w, w->ctlfd, &w->ctl_src) < 0)
		return WORKER_EXIT_FATAL;
	for (size_t i = 0; i < w->nls && !w->dgram; i++)
		if (is_datagram(&w->ls[i]) && !(w->dgram = dgram_new(w->svc, start_datagram_job, w)))
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
		.limits = p->limits, .slot = p->slot,
		.needs_credentials = access_needs_credentials(p->svc),
		.turned_away = { [DENIED] = { .verb = "denied" },
				 [REFUSED] = { .verb = "turned away" } },
	};
	struct epoll_event events[MAX_EVENTS];
	int rc;

	w.now = clock_now_ms();
	rc = worker_setup(&w, p);
	if (rc != 0)
		return rc < 0 ? 0 : rc;
	log_debug("serving (generation %u, pid %ld)", p->generation, (long)getpid());
	while (!(w.stopping && w.nconns == 0 && dgram_idle(w.dgram))) {
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
		dgram_flush(w.dgram, w.now);
		dgram_report(w.dgram, w.now);
		report_turned_away(&w, false);
		update_accepting(&w);
	}
	report_turned_away(&w, true);
	dgram_free(w.dgram);
	log_debug("exiting: %lu connections served, %lu closed idle", w.accepted, w.idle_closed);
	return 0;
}
