/* SPDX-License-Identifier: ISC */
/* worker.c - the loop of a worker: listeners armed and taken turns on, signals, stop, timeouts.
 *
 * Its connections are in conn.c, the choice of whom to serve in
 * admit.c; worker_private.h is what the three share.
 *
 * Listeners are level-triggered with EPOLLEXCLUSIVE: an edge-triggered
 * listener loses connections that arrive during a burst. The price of level
 * triggering is that a listener we cannot accept from (EMFILE, ENFILE, or our
 * own max-connections) stays readable forever, so in those states we take the
 * listeners out of the epoll set and leave the clients in the kernel backlog
 * until descriptors or slots free up. */
#include "config.h"

#include "worker/worker.h"
#include "common/spread.h"

#include <errno.h>
#include <limits.h>
#include <fcntl.h>
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

#include "common/clock.h"
#include "conf/conf.h"
#include "worker/conn.h"
#include "common/fdutil.h"
#include "handlers/handler.h"
#include "common/outlog.h"
#include "worker/counters.h"
#include "common/proctitle.h"
#include "common/log.h"
#include "common/privdrop.h"
#include "common/signals.h"
#include "common/spawn.h"
#include "worker/worker_private.h"

#define ACCEPT_BATCH 64		/* per listener per wakeup: others get a turn */
/* A spawning handler accepts one at a time: a helper's start costs more
 * than the wakeup for the next, and the accept that would only say EAGAIN
 * is saved where clients come one by one. */
#define ACCEPT_BATCH_SPAWNING 1
/* Wakeups on a listener before this worker moves to the back of its wait
 * queue (see rearm_busy): rare enough to cost nothing, often enough that
 * every idle worker gets its turn within a few ms under load. */
#define REARM_WAKEUPS 16
#define MAX_EVENTS 64
#define STOP_DGRAM_BATCHES 64	/* datagrams taken at a graceful stop: this many batches at most */
/* A stop the master does not end (it is stuck, or a SIGTERM came from
 * someone else) ends this long after shutdown-timeout: later than the
 * master's own deadline, so that normally the master decides. */
#define STOP_OVERRUN_MS 2000

/* Told once, replaced replacement first: we serve on until the master stops us. */
static void worker_limit_reached(struct worker *w)
{
	char msg = WORKER_MSG_LIMIT;

	if (w->limit_told || w->stopping)
		return;
	w->limit_told = true;
	if (send(w->channel_fd, &msg, 1, MSG_NOSIGNAL | MSG_DONTWAIT) < 0 && errno != EPIPE)
		log_errno(LOG_WARNING, errno, "send limit to the master");
}

static bool want_accepting(const struct worker *w)
{
	return !w->stopping && w->accept_paused_until == 0 && serving(w) < w->svc->max_connections;
}

static bool arm(struct worker *w, struct worker_socket *l, bool want)
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
static void rearm_busy(struct worker *w, struct worker_socket *l)
{
	if (l->armed && l->wakeups >= REARM_WAKEUPS && arm(w, l, false))
		arm(w, l, true);
}

/* Puts the listeners in or takes them out of the epoll set. EPOLLEXCLUSIVE
 * registrations cannot be modified, only deleted and added again. Called
 * after every batch of events, it does nothing unless something changed. */
static void update_accepting(struct worker *w)
{
	bool accepting = want_accepting(w);

	w->accepting = accepting;
	w->sockets_dirty = false;
	for (size_t i = 0; i < w->nls; i++) {
		struct worker_socket *l = &w->ls[i];
		/* A datagram answered at once holds no connection and takes no
		 * descriptor: only a stop stops reading it. Where each datagram
		 * runs a helper, the socket pauses like a listener. */
		bool want = worker_socket_is_datagram(l) && w->svc->handler->datagram ? !w->stopping : accepting;

		if (l->fd < 0)
			continue;
		if (want != l->armed)
			arm(w, l, want);
		else
			rearm_busy(w, l);
	}
}

static void note_starved(struct worker *w, const struct worker_socket *l, int err)
{
	w->accept_paused_until = w->now + ACCEPT_PAUSE_MS;
	w->sockets_dirty = true;
	worker_due(w, w->accept_paused_until);
	if (!ratelimit_event(&w->starved, w->now))
		return;
	log_errno(LOG_WARNING, err, "accept4 %s: pausing accepts, %u connections open, "
		  "%lu times since last report", l->addr.text, w->nconns, w->starved.since_log);
	ratelimit_logged(&w->starved, w->now);
}

/* Accepts up to w->accept_batch connections; true when the queue may hold more. */
static bool accept_batch(struct worker *w, struct worker_socket *l)
{
	for (unsigned i = 0; i < w->accept_batch; i++) {
		struct sockaddr_storage ss;
		socklen_t len = sizeof(ss);
		int fd;

		if (l->fd < 0 || serving(w) >= w->svc->max_connections)
			return false;
		fd = accept4(l->fd, (struct sockaddr *)&ss, &len, w->accept_flags);
		if (fd >= 0) {
			/* Counted first: the master reads the row when told. */
			counter_add(w->counters, COUNTER_ACCEPTED, 1);
			if (++w->accepted >= w->served_limit)
				worker_limit_reached(w);
			admit_connection(w, fd, (struct sockaddr *)&ss, len, l);
			if (w->accept_paused_until)
				return false;	/* its handler found no descriptor for it */
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

/* How many datagrams may be read now: a job per datagram (exec) takes a
 * connection's place, and what cannot be served waits in the kernel's queue. */
static unsigned dgram_room(const struct worker *w)
{
	if (w->svc->handler->datagram)
		return ~0u;
	return serving(w) < w->svc->max_connections ? w->svc->max_connections - serving(w) : 0;
}

/* Takes what the kernel has queued on l when a graceful stop begins. A
 * datagram flood could keep a socket readable forever: batches are bounded.
 * Datagrams on a socket about to close cannot be answered by a job (its
 * reply would have no socket to go out on): they are counted, not run. */
static void take_queued(struct worker *w, struct worker_socket *l, bool keep)
{
	bool answers_now = keep || w->svc->handler->datagram;

	if (!worker_socket_is_datagram(l)) {
		while (accept_batch(w, l))
			;
		return;
	}
	for (int batch = 0; batch < STOP_DGRAM_BATCHES; batch++)
		if (!(answers_now ? dgram_read(w->dgram, l, w->now, dgram_room(w)) :
				    dgram_discard(w->dgram, l, "its socket was closed by a stop")))
			break;
}

static void release_listener(struct worker *w, struct worker_socket *l)
{
	if (worker_socket_is_datagram(l))
		dgram_release(w->dgram, l);
	fd_close(&l->fd);
}

static bool listener_kept(const struct worker *w, size_t i)
{
	return w->kept && (w->kept[i / 8] >> (i % 8)) & 1;
}

/* Lets go of every listener but the datagram sockets the master keeps (a
 * reload keeps their address, the master said so with WORKER_MSG_KEEP): a
 * port is free as soon as nobody holds it. What the kernel had queued is
 * taken first when graceful. */
static void release_unkept(struct worker *w, bool graceful)
{
	for (size_t i = 0; i < w->nls; i++) {
		struct worker_socket *l = &w->ls[i];
		bool keep = worker_socket_is_datagram(l) && listener_kept(w, i);

		if (l->fd < 0)
			continue;
		if (graceful)
			take_queued(w, l, keep);
		if (!keep)
			release_listener(w, l);
	}
}

/* Stop accepting. Out of the epoll set first, so that no wakeup is spent on
 * us any more (clients arriving later wake the workers of a generation that
 * shares the listener), then, when graceful, take every client the kernel
 * had already queued, then let go of the port, keeping only the datagram
 * sockets still needed for the replies of the jobs in flight. A stop ends
 * by itself STOP_OVERRUN_MS after shutdown-timeout, in case the master
 * cannot end it. */
static void begin_stop(struct worker *w, const char *why, bool graceful)
{
	if (!w->stopping) {
		w->stopping = true;
		w->stop_deadline = w->now + w->shutdown_timeout_ms + STOP_OVERRUN_MS;
		worker_due(w, w->stop_deadline);
		w->sockets_dirty = true;	/* datagram sockets stop too */
		update_accepting(w);
		release_unkept(w, graceful);
		log_info("stopping (%s), %u connections in flight", why, w->nconns);
	}
	if (!graceful) {
		while (w->oldest)
			conn_close(w, w->oldest);
		dgram_drop_queue(w->dgram);
	}
}

/* The master is gone (killed, or it crashed): nobody will end our stop, and
 * nobody else should hold our sockets, so a restarted preforkd can bind
 * them. Everything is released now; in-flight connections get
 * shutdown-timeout, then they and their helpers are ended. */
static void orphaned(struct worker *w)
{
	begin_stop(w, "master went away", true);
	for (size_t i = 0; i < w->nls; i++)
		if (w->ls[i].fd >= 0)
			release_listener(w, &w->ls[i]);
	if (w->stop_deadline > w->now + w->shutdown_timeout_ms)
		w->stop_deadline = w->now + w->shutdown_timeout_ms;
	worker_due(w, w->stop_deadline);
}

/* Control messages from the master, and its end of the socket closing. */
static void handle_channel(struct worker *w, uint32_t events)
{
	ssize_t n;

	if (w->channel_fd < 0)
		return;
	while ((n = recv(w->channel_fd, w->channel_buf, w->channel_buf_len, 0)) > 0) {
		if (w->channel_buf[0] == WORKER_MSG_QUIT)
			begin_stop(w, "told to quit now", false);
		else if (w->channel_buf[0] == WORKER_MSG_KEEP && (size_t)n == w->channel_buf_len)
			w->kept = memcpy(w->channel_buf + w->channel_buf_len, w->channel_buf + 1, w->channel_buf_len - 1);
	}
	if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR) || (events & EPOLLHUP)) {
		epoll_ctl(w->epfd, EPOLL_CTL_DEL, w->channel_fd, NULL);
		fd_close(&w->channel_fd);
		orphaned(w);
	}
}

static void handle_signal(struct worker *w)
{
	struct signalfd_siginfo si;

	while (read(w->sigfd, &si, sizeof(si)) == sizeof(si)) {
		if (si.ssi_signo != SIGTERM)
			continue;
		/* The master sends WORKER_MSG_KEEP before SIGTERM: it is read first.
		 * A stopping worker is told again when a reload closes a socket it
		 * kept; a SIGTERM without KEEP keeps nothing. */
		handle_channel(w, 0);
		if (!w->stopping)
			begin_stop(w, "SIGTERM", true);
		else
			release_unkept(w, true);
		w->kept = NULL;
	}
}

/* An idle timeout is renewed lazily: an event only notes its time
 * (active_ms), and a connection whose deadline comes while it has been
 * active since moves to its real one then. Moving it on every event, to the
 * end of the list, cost a third of an echo request. */
static void expire_deadlines(struct worker *w)
{
	while (w->oldest && w->oldest->deadline_ms <= w->now) {
		struct conn *c = w->oldest;
		uint64_t idle_until = c->active_ms + w->svc->idle_timeout_ms;
		int more;

		if (c->renews_idle && idle_until > w->now) {
			conn_set_deadline(w, c, idle_until);
			continue;
		}
		more = c->handler->expire ? c->handler->expire(c) : HANDLER_CLOSE;
		if (more > 0) {
			conn_set_deadline(w, c, w->now + (unsigned)more);
			continue;
		}
		if (!c->handler->timeout) {
			char peer[ADDRESS_TEXT_MAX];

			log_debug("%s: idle for %u ms, closing", conn_peer_text(c, peer),
				  w->svc->idle_timeout_ms);
			w->idle_closed++;
		}
		conn_close(w, c);
	}
}

/* The timers of the loop's housekeeping, the soonest first: 0 when none. */
static uint64_t housekeeping_due(const struct worker *w)
{
	uint64_t deadline = clock_sooner(w->accept_paused_until, w->stop_deadline);

	/* A summary of turned-away clients is due even if nothing else happens. */
	for (int k = 0; k < TURNED_AWAY_KINDS; k++)
		if (w->turned_away[k].rl.since_log)
			deadline = clock_sooner(deadline, ratelimit_next(&w->turned_away[k].rl));
	if (w->oldest && w->oldest->deadline_ms != UINT64_MAX)
		deadline = clock_sooner(deadline, w->oldest->deadline_ms);
	/* The master reads our heartbeat: an idle loop turns often enough. */
	if (w->svc->hang_timeout_ms)
		deadline = clock_sooner(deadline, w->now + (w->svc->hang_timeout_ms + 2) / 3);
	return deadline;
}

static int next_timeout(const struct worker *w)
{
	uint64_t deadline = w->due == UINT64_MAX ? 0 : w->due;

	if (w->dgram)
		deadline = clock_sooner(deadline, dgram_next_deadline(w->dgram, w->now));
	if (w->helperlog)
		deadline = clock_sooner(deadline, outlog_next_deadline(w->helperlog));
	deadline = clock_sooner(deadline, log_next_deadline());
	return clock_timeout_until(deadline, w->now);
}

/* What the loop does after a batch of events, when anything is due. */
static void housekeep(struct worker *w)
{
	/* With hang-timeout, housekeeping is due at least three times per
	 * hang-timeout however busy we are (housekeeping_due): a loop that
	 * turns gets here, one that is stuck does not. Not on every turn:
	 * that would cost every connection a store. */
	counter_set(w->counters, COUNTER_HEARTBEAT, w->now);
	if (w->accept_paused_until && w->now >= w->accept_paused_until) {
		w->accept_paused_until = 0;
		w->sockets_dirty = true;
	}
	if (w->stop_deadline && w->now >= w->stop_deadline) {
		log_warn("shutdown-timeout passed and the %s: closing every connection",
			 w->channel_fd < 0 ? "master is gone" : "master has not ended the stop");
		w->stop_deadline = 0;
		begin_stop(w, "shutdown-timeout passed", false);
	}
	expire_deadlines(w);
	if (w->dgram) {
		dgram_flush(w->dgram, w->now);
		dgram_report(w->dgram, w->now);
		dgram_publish(w->dgram, w->counters);
		if (w->served_limit != UINT64_MAX && w->accepted + counter_datagrams(w->counters) >= w->served_limit)
			worker_limit_reached(w);
	}
	if (w->helperlog)
		outlog_report(w->helperlog, w->now);
	if (w->turned_away[DENIED].rl.since_log || w->turned_away[REFUSED].rl.since_log)
		admit_report(w, false);
	if (w->sockets_dirty || want_accepting(w) != w->accepting)
		update_accepting(w);
	log_flush();
	w->due = housekeeping_due(w);
	if (!w->due)
		w->due = UINT64_MAX;
}

static void dispatch(struct worker *w, struct epoll_event *ev)
{
	struct ev_source *src = ev->data.ptr;

	if (src->kind == EV_CONN) {	/* the common case first */
		struct conn *c = (struct conn *)src;
		int want;

		c->active_ms = w->now;	/* renews an idle timeout: expire_deadlines() */
		want = c->handler->ready(c, ev->events);
		/* Handed over, c may be gone: the new handler has set its events. */
		if (want != HANDLER_HANDED_OVER && want != (int)c->events)
			conn_apply(w, c, want);	/* else nothing changes: the common case */
		return;
	}
	switch (src->kind) {
	case EV_LISTENER:
		if (++((struct worker_socket *)src)->wakeups >= REARM_WAKEUPS)
			w->sockets_dirty = true;	/* its turn to go to the back: rearm_busy() */
		if (worker_socket_is_datagram((struct worker_socket *)src))
			dgram_read(w->dgram, (struct worker_socket *)src, w->now, dgram_room(w));
		else
			accept_batch(w, (struct worker_socket *)src);
		break;
	case EV_CONN:	/* above */
		break;
	case EV_CONN_CLOSED:
		break;	/* by its other descriptor's event, earlier in this batch */
	case EV_CONN_PEER: {
		struct conn *c = ((struct conn_peer *)src)->conn;
		int want;

		c->active_ms = w->now;
		want = c->handler->ready_peer(c, ev->events);
		if (want != HANDLER_HANDED_OVER && want != (int)c->events)
			conn_apply(w, c, want);
		break;
	}
	case EV_SIGNAL:
		handle_signal(w);
		break;
	case EV_CHANNEL:
		handle_channel(w, ev->events);
		break;
	case EV_HELPER_LOG:
		outlog_read(w->helperlog, w->now);
		break;
	case EV_APP_OUTPUT:
	case EV_WORKER_NOTIFY:
	case EV_CONTROL:
	case EV_CONTROL_CLIENT:
	case EV_METRICS:
	case EV_METRICS_CLIENT:
		break;	/* the master's */
	}
}

static int setup_signals(struct worker *w)
{
	sigset_t mask;

	/* SIGTERM, and every other signal that would end us (signals.c), is
	 * blocked and read through the signalfd: the master tells us what to
	 * do, the rest is dropped there. Blocked rather than ignored, every
	 * disposition stays at its default, so an exec helper starts clean
	 * without a system call per signal. */
	sigset_t blocked;

	sigemptyset(&mask);
	sigaddset(&mask, SIGTERM);
	signals_add_stray(&mask);
	/* SIGCHLD too, but not read: helpers are watched through pidfds, and a
	 * blocked SIGCHLD costs no delivery per helper. */
	blocked = mask;
	sigaddset(&blocked, SIGCHLD);
	sigprocmask(SIG_SETMASK, &blocked, NULL);
	signals_default_all();	/* the master ignores those it does not handle */
	w->sigfd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
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

/* Where the helpers of a spawning handler write their stderr: into our log
 * through a pipe we read, or /dev/null (exec-stderr). */
static int setup_helper_stderr(struct worker *w)
{
	static const struct outlog_style helper_stderr = {
		.level = LOG_NOTICE, .lines_per_s = 100, .what = "stderr",
	};
	char label[PATH_MAX + 16];

	if (!w->svc->handler->spawns)
		return 0;
	if (w->svc->exec_stderr_null) {
		w->helper_stderr_fd = open("/dev/null", O_WRONLY | O_CLOEXEC);
		if (w->helper_stderr_fd < 0)
			log_errno(LOG_ERR, errno, "open /dev/null for the helpers' stderr");
		return w->helper_stderr_fd < 0 ? -1 : 0;
	}
	snprintf(label, sizeof(label), "helper %s", w->svc->exec_argv[0]);
	w->helperlog = outlog_new(label, &helper_stderr, EV_HELPER_LOG);
	if (!w->helperlog)
		return -1;
	w->helper_stderr_fd = outlog_write_fd(w->helperlog);
	return add_fd(w, outlog_read_fd(w->helperlog), outlog_source(w->helperlog));
}

static int worker_setup(struct worker *w, const struct worker_params *p)
{
	char role[48], ready = WORKER_MSG_READY;

	snprintf(role, sizeof(role), "%s#%u", p->svc->name, p->slot);
	log_set_role(role);
	prctl(PR_SET_NAME, role);
	proctitle_set("preforkd: worker %s (generation %u)", role, p->generation);
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
	w->channel_buf_len = 1 + (w->nls + 7) / 8;
	w->channel_buf = calloc(2, w->channel_buf_len);	/* and room for the kept bitmap */
	if (!w->channel_buf) {
		log_error("out of memory for the control buffer");
		return WORKER_EXIT_FATAL;
	}
	w->sig_src.kind = EV_SIGNAL;
	w->channel_src.kind = EV_CHANNEL;
	limits_row_claim(w->limits, w->row);
	if (add_fd(w, w->sigfd, &w->sig_src) < 0 || add_fd(w, w->channel_fd, &w->channel_src) < 0 ||
	    setup_helper_stderr(w) < 0)
		return WORKER_EXIT_FATAL;
	for (size_t i = 0; i < w->nls && !w->dgram; i++)
		if (worker_socket_is_datagram(&w->ls[i]) && !(w->dgram = dgram_new(w->svc, admit_datagram, w)))
			return WORKER_EXIT_FATAL;
	update_accepting(w);
	if (send(w->channel_fd, &ready, 1, MSG_NOSIGNAL) < 0)
		log_errno(LOG_WARNING, errno, "send ready to master");
	return 0;
}

int worker_main(const struct worker_params *p)
{
	struct worker w = {
		.svc = p->svc, .epfd = -1, .sigfd = -1, .channel_fd = p->channel_fd,
		.ls = p->listeners, .nls = p->nlisteners, .helper_stderr_fd = -1,
		.sockets_dirty = true, .due = UINT64_MAX,
		.shutdown_timeout_ms = p->conf->shutdown_timeout_ms,
		.limits = p->limits, .counters = p->counters, .row = p->row,
		.served_limit = p->svc->max_requests ? limit_spread(p->svc->max_requests, p->slot) :
						       UINT64_MAX,
		.needs_credentials = access_needs_credentials(p->svc),
		.svc_has_access_rules = access_has_rules(p->svc),
		/* A helper gets the connection as its stdin and stdout, which programs
		 * expect blocking; everything the worker itself does with a socket
		 * must not block. */
		.accept_flags = SOCK_CLOEXEC | (p->svc->handler->spawns ? 0 : SOCK_NONBLOCK),
		.accept_batch = p->svc->handler->spawns ? ACCEPT_BATCH_SPAWNING : ACCEPT_BATCH,
		.helper_copies_linger = p->svc->handler->spawns && !spawn_closes_the_rest(),
		.turned_away = { [DENIED] = { .verb = "denied" },
				 [REFUSED] = { .verb = "turned away" } },
	};
	struct epoll_event events[MAX_EVENTS];
	bool every_loop;
	int rc, timeout;

	w.now = clock_now_ms();
	rc = worker_setup(&w, p);
	if (rc != 0)
		return rc < 0 ? 0 : rc;
	counter_set(w.counters, COUNTER_HEARTBEAT, w.now);
	w.due = housekeeping_due(&w);	/* the heartbeat's, from the first turn on */
	if (!w.due)
		w.due = UINT64_MAX;
	/* Datagrams and helpers' stderr have queues of their own, looked at
	 * after every batch. */
	every_loop = w.dgram || w.helperlog;
	timeout = next_timeout(&w);
	log_debug("serving (generation %u, pid %ld)", p->generation, (long)getpid());
	while (!(w.stopping && w.nconns == 0 && dgram_idle(w.dgram))) {
		int n = epoll_wait(w.epfd, events, MAX_EVENTS, timeout);

		if (n < 0 && errno != EINTR) {
			log_errno(LOG_ERR, errno, "epoll_wait");
			return 1;
		}
		w.now = clock_now_ms();
		for (int i = 0; i < n; i++)
			dispatch(&w, &events[i]);
		if (w.closed_conns)
			conn_reuse_closed(&w);
		/* Deadlines, reports, arming: only when one is due or something
		 * changed (w.due, sockets_dirty, a log line waiting). Else the
		 * only timer is w.due's. */
		if (w.now >= w.due || w.sockets_dirty || every_loop || log_next_deadline()) {
			housekeep(&w);
			timeout = next_timeout(&w);
		} else if (w.due == UINT64_MAX) {
			timeout = -1;
		} else {	/* w.now < w.due */
			uint64_t left = w.due - w.now;

			timeout = left > CLOCK_TIMEOUT_MAX_MS ? CLOCK_TIMEOUT_MAX_MS : (int)left;
		}
	}
	admit_report(&w, true);
	conn_free_all(&w);
	if (w.dgram) {
		dgram_drop_queue(w.dgram);	/* the replies still queued count as dropped */
		dgram_publish(w.dgram, w.counters);
	}
	dgram_free(w.dgram);
	outlog_free(w.helperlog);
	log_debug("exiting: %lu connections served, %lu closed idle", w.accepted, w.idle_closed);
	return 0;
}
