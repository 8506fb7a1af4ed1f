/* SPDX-License-Identifier: ISC */
/* master.c - the master's loop: signals, workers' channels and exits, respawn, readiness, stop.
 *
 * Signals arrive through a signalfd in the master's epoll loop: no work is
 * done in a signal handler. Reloads are in reload.c. */
#include "config.h"

#include "master/master.h"
#include "master/master_private.h"

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
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "master/activation.h"
#include "master/appworker.h"
#include "master/autoscale.h"
#include "master/control.h"
#include "master/metrics.h"
#include "common/array.h"
#include "common/clock.h"
#include "conf/conf.h"
#include "common/evsource.h"
#include "common/fdutil.h"
#include "master/fdstore.h"
#include "master/generation.h"
#include "master/listenset.h"
#include "common/log.h"
#include "common/nofile.h"
#include "common/proctitle.h"
#include "master/notify.h"
#include "master/pidfile.h"
#include "master/pool.h"
#include "master/retire.h"
#include "master/handover.h"
#include "master/upgrade.h"
#include "master/workernotify.h"
#include "common/signals.h"
#include "worker/worker.h"

#define FAST_STOP_GRACE_MS 1000		/* after "quit now", before SIGKILL */

void master_status_text(const struct master *m, char *buf, size_t len)
{
	const struct generation *g = m->current;
	unsigned draining = 0;

	for (const struct generation *d = m->draining; d; d = d->next)
		draining += generation_count(d, SLOT_STOPPING);
	snprintf(buf, len, "%zu service%s, %u of %u workers ready%s", g->conf->nservices,
		 g->conf->nservices == 1 ? "" : "s", generation_count(g, SLOT_READY) + generation_count(g, SLOT_RETIRING), pool_targets(g),
		 generation_count(g, SLOT_FAILED) ? " (some slots failed)" : "");
	if (draining)
		snprintf(buf + strlen(buf), len - strlen(buf), ", %u finishing", draining);
	if (m->last_reload[0])
		snprintf(buf + strlen(buf), len - strlen(buf), "; %s", m->last_reload);
}

/* READY=1 once every slot of the first generation is ready or given up;
 * after that, STATUS= whenever something changed. */
void master_announce_status(struct master *m)
{
	char status[CONF_ERR_MAX + 160];
	const struct generation *g = m->current;

	master_status_text(m, status, sizeof(status));
	if (!m->ready_announced && generation_count(g, SLOT_STARTING) == 0 &&
	    generation_count(g, SLOT_WAITING) == 0 && generation_count(g, SLOT_READY) > 0) {
		m->ready_announced = true;
		log_notice("ready: %s", status);
		notify_ready(status);
		return;
	}
	if (m->ready_announced && !m->stopping)
		notify_status(status);
}

void master_apply_log_level(const struct master *m)
{
	log_set_level(m->opts->verbose ? LOG_DEBUG : m->current->conf->log_level);
}

/* Moves g to the draining list and tells its workers to finish up; the
 * listeners must be marked (mark_listeners) as they will be kept. */
void master_drain(struct master *m, struct generation *g)
{
	char why[96];

	if (!g)
		return;
	if (m->stopping)
		snprintf(why, sizeof(why), "ended by the stop");
	else
		snprintf(why, sizeof(why), "ended by a reload: generation %u serves now",
			 m->current ? m->current->id : 0);
	pool_abandon(m, g, why);
	g->role = GEN_DRAINING;
	generation_stop(g);
	g->deadline = m->now + g->conf->shutdown_timeout_ms;
	g->next = m->draining;
	m->draining = g;
}

/* Marks the listeners the serving and the starting generation use. */
void master_mark_listeners(struct master *m)
{
	listen_set_unmark(&m->listeners);
	if (m->current)
		listen_set_mark(m->current->svc_ls, m->current->conf->nservices);
	if (m->pending)
		listen_set_mark(m->pending->svc_ls, m->pending->conf->nservices);
}

/* The draining generations drop the listeners left unmarked, which are
 * about to be closed, and their workers are told to let go of their copies
 * too: a port is free only once nobody holds it. */
static void tell_draining(struct master *m)
{
	for (struct generation *g = m->draining; g; g = g->next)
		if (generation_forget_unmarked(g))
			generation_stop(g);
}

/* Closes the listeners left unmarked. */
void master_sweep_listeners(struct master *m)
{
	tell_draining(m);
	listen_set_sweep(&m->listeners);
}

/* The second phase of every drain that must end now: workers close what is
 * left themselves (an exec helper is killed with its process group), and are
 * killed if still there FAST_STOP_GRACE_MS later. */
static void quit_generation(struct master *m, struct generation *g)
{
	generation_quit(g);
	g->quit_sent = true;
	g->deadline = m->now + FAST_STOP_GRACE_MS;
}

static void begin_fast_stop(struct master *m, const char *why)
{
	log_notice("%s: closing every connection and stopping now", why);
	m->fast_stop = true;
	for (struct generation *g = m->draining; g; g = g->next)
		if (!g->quit_sent)
			quit_generation(m, g);
}

/* Graceful unless fast: the listeners close at once (the port is free as soon
 * as the workers drop their copies), the workers finish what they have. */
static void begin_stop(struct master *m, const char *why, int status, bool fast)
{
	uint64_t stop_at;

	if (m->stopping) {
		if (!m->fast_stop)
			begin_fast_stop(m, why);
		return;
	}
	m->stopping = true;
	m->exit_status = status;
	proctitle_set("preforkd: master (stopping)");
	stop_at = m->now + m->current->conf->shutdown_timeout_ms;
	if (!fast)
		log_notice("stopping (%s): finishing in-flight connections for up to %u ms",
			   why, m->current->conf->shutdown_timeout_ms);
	notify_stopping("stopping");
	listen_set_unmark(&m->listeners);	/* nothing is kept */
	tell_draining(m);
	master_drain(m, m->pending);
	master_drain(m, m->current);
	m->pending = NULL;
	m->current = NULL;
	/* The new drains were told to keep nothing; none may point at a closed listener. */
	for (struct generation *g = m->draining; g; g = g->next)
		generation_forget_unmarked(g);
	listen_set_close_all(&m->listeners, true);
	/* No drain outlasts the stop's own shutdown-timeout. */
	for (struct generation *g = m->draining; g; g = g->next)
		if (!g->quit_sent && g->deadline > stop_at)
			g->deadline = stop_at;
	if (fast)
		begin_fast_stop(m, why);
}

struct service_totals *master_totals(struct master *m, const char *name)
{
	struct service_totals *more;

	for (size_t i = 0; i < m->ntotals; i++)
		if (strcmp(m->totals[i].name, name) == 0)
			return &m->totals[i];
	more = realloc(m->totals, (m->ntotals + 1) * sizeof(*more));
	if (!more)
		return NULL;
	m->totals = more;
	more[m->ntotals] = (struct service_totals){ .name = strdup(name) };
	if (!more[m->ntotals].name)
		return NULL;
	return &m->totals[m->ntotals++];
}

const struct generation *master_generation_next(const struct master *m,
						const struct generation *g)
{
	if (!g && m->current)
		return m->current;
	if ((!g || g == m->current) && m->pending)
		return m->pending;
	if (!g || g == m->current || g == m->pending)
		return m->draining;
	return g->next;
}

void master_service_counts(struct master *m, const char *name, uint64_t v[COUNTERS])
{
	const struct service_totals *t = master_totals(m, name);

	for (int k = 0; k < COUNTERS; k++)
		v[k] = t ? t->v[k] : 0;
	for (const struct generation *g = master_generation_next(m, NULL); g;
	     g = master_generation_next(m, g))
		for (size_t j = 0; j < g->nslots; j++)
			if (strcmp(slot_name(g->slots[j]), name) == 0)
				for (int k = 0; k < COUNTERS; k++)
					v[k] += counter_get(generation_counters(g->slots[j]), k);
}

void master_stop(struct master *m, const char *why, bool fast)
{
	begin_stop(m, why, EXIT_OK, fast);
}

static void describe_exit(int status, char *buf, size_t len)
{
	if (WIFEXITED(status))
		snprintf(buf, len, "exited with status %d", WEXITSTATUS(status));
	else if (WIFSIGNALED(status))
		snprintf(buf, len, "killed by signal %d (%s)%s", WTERMSIG(status),
			 strsignal(WTERMSIG(status)), WCOREDUMP(status) ? ", core dumped" : "");
	else
		snprintf(buf, len, "ended with wait status %#x", status);
}

struct slot *master_find_slot(struct master *m, pid_t pid)
{
	struct slot *s = generation_find_pid(m->current, pid);

	if (!s)
		s = generation_find_pid(m->pending, pid);
	for (struct generation *g = m->draining; g && !s; g = g->next)
		s = generation_find_pid(g, pid);
	return s;
}

static void worker_exited(struct master *m, struct slot *s, int status)
{
	char how[160], why[256];
	pid_t pid = s->pid;
	bool told_to_stop = s->state == SLOT_STOPPING;
	struct service_totals *totals = master_totals(m, slot_name(s));
	enum slot_outcome outcome;

	describe_exit(status, how, sizeof(how));
	if (s->said_errno)
		snprintf(how + strlen(how), sizeof(how) - strlen(how), " (it said ERRNO=%d: %s)",
			 s->said_errno, strerror(s->said_errno));
	if (s->app)
		appworker_exited(s, m->epfd);
	if (totals)
		counters_fold(generation_counters(s), totals->v);
	generation_close_channel(s, m->epfd);
	generation_slot_exited(s);
	outcome = slot_event(s, SLOT_EXITED, &(struct slot_event_data){
		.now = m->now, .status = status, .role = s->gen->role });
	/* Aborted as hung (retire.c): counted as that, its replacement is on the way. */
	if (s->retire == RETIRE_HUNG && outcome != SLOT_RESPAWN) {
		log_notice("hung worker %s#%u (pid %ld, generation %u) %s", slot_name(s), s->index,
			   (long)pid, s->gen->id, how);
		if (totals)
			totals->hangs++;
		if (outcome == SLOT_DIED_RETIRING)
			pool_retiring_died(s);
		s->hung_kill_at = 0;
		return;
	}
	if (told_to_stop) {
		log_info("worker %s#%u (pid %ld, generation %u) %s", slot_name(s), s->index,
			 (long)pid, s->gen->id, how);
		return;
	}
	if (totals && WIFSIGNALED(status))
		totals->restarts_signal++;
	else if (totals)
		totals->restarts_exit++;
	log_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0 ? LOG_WARNING : LOG_ERR,
		"worker %s#%u (pid %ld, generation %u) %s", slot_name(s), s->index, (long)pid,
		s->gen->id, how);
	switch (outcome) {
	case SLOT_FAILED_PENDING:
		snprintf(why, sizeof(why), "new worker %s#%u %s before it was ready", slot_name(s),
			 s->index, how);
		reload_abort(m, why);
		break;
	case SLOT_GAVE_UP_FATAL:
		log_error("worker %s#%u cannot work (see above); not respawning it", slot_name(s),
			  s->index);
		master_announce_status(m);
		break;
	case SLOT_GAVE_UP_QUICK:
		log_error("worker %s#%u failed %u times in a row within %u ms of starting; "
			  "not respawning it", slot_name(s), s->index, s->quick_failures,
			  SLOT_QUICK_EXIT_MS);
		master_announce_status(m);
		break;
	case SLOT_RESPAWN:
		log_notice("respawning worker %s#%u in %llu ms", slot_name(s), s->index,
			   (unsigned long long)(s->respawn_at_ms - m->now));
		break;
	case SLOT_FAILED_REPLACEMENT:
		pool_replacement_failed(m, s, how);
		break;
	case SLOT_DIED_RETIRING:
		log_notice("worker %s#%u: its replacement, starting, takes its place", slot_name(s),
			   s->index);
		pool_retiring_died(s);
		break;
	case SLOT_NOTHING:
		break;
	}
}

static void reap_children(struct master *m)
{
	char label[96], how[96];

	for (;;) {
		int status;
		pid_t pid = waitpid(-1, &status, WNOHANG);
		struct slot *s;

		if (pid < 0 && errno == EINTR)
			continue;
		if (pid <= 0)
			return;
		s = master_find_slot(m, pid);
		if (!s && upgrade_reaped(m, pid, status))
			continue;	/* the new binary's check; an execve does not return here */
		if (s)
			worker_exited(m, s, status);
		else if (appworker_reap_condemned(pid, label, sizeof(label)))
			log_notice("hung app worker %s (replaced) %s", label,
				   (describe_exit(status, how, sizeof(how)), how));
		else
			log_debug("reaped unknown child %ld", (long)pid);
	}
}

static void handle_signals(struct master *m)
{
	struct signalfd_siginfo si;

	while (read(m->sigfd, &si, sizeof(si)) == sizeof(si)) {
		int sig = (int)si.ssi_signo;

		m->now = clock_now_ms();	/* the signal before may have taken long (a reload) */
		switch (sig) {
		case SIGCHLD:
			/* What an app worker said before it exited (STOPPING=1,
			 * ERRNO=) is read first, as systemd does: once it is
			 * reaped its pid names nobody. */
			workernotify_read(m);
			reap_children(m);
			break;
		case SIGTERM:
		case SIGQUIT:
			begin_stop(m, strsignal(sig), EXIT_OK, false);
			break;
		case SIGINT:
			begin_stop(m, strsignal(sig), EXIT_OK, true);
			break;
		case SIGHUP:
			reload_request(m);
			break;
		case SIGUSR2:
			upgrade_request(m, "SIGUSR2");
			break;
		default:
			log_notice("SIG%s: nothing to do (preforkd logs to stderr, there is no "
				   "log file to reopen; SIGUSR2 upgrades the binary)", sigabbrev_np(sig));
			break;
		}
	}
}

static bool all_ready(const struct generation *g)
{
	return generation_count(g, SLOT_READY) == g->nslots;
}


void master_worker_ready(struct master *m, struct slot *s)
{
	if (s->state != SLOT_STARTING)
		return;
	slot_event(s, SLOT_READY_SAID, &(struct slot_event_data){ .now = m->now });
	if (s->app)
		appworker_ready(s, m->now);
	log_debug("worker %s#%u (pid %ld, generation %u) ready", slot_name(s), s->index,
		  (long)s->pid, s->gen->id);
	if (s->gen->role == GEN_PENDING) {
		if (all_ready(s->gen))
			reload_commit(m);
	} else if (s->gen->role == GEN_SERVING) {
		if (s->replaces)
			pool_replacement_ready(m, s);
		master_announce_status(m);
	}
}

static void handle_channel(struct master *m, struct slot *s)
{
	char msg[16];
	ssize_t n;

	while (s->channel_fd >= 0 && (n = recv(s->channel_fd, msg, sizeof(msg), 0)) != 0) {
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN)
				return;
			break;
		}
		if (msg[0] == WORKER_MSG_READY)
			master_worker_ready(m, s);
		else if (msg[0] == WORKER_MSG_LIMIT)
			retire_asked(m, s);
	}
	/* EOF: the worker is exiting; SIGCHLD does the rest. */
	generation_close_channel(s, m->epfd);
}

static void respawn_due(struct master *m)
{
	struct generation *g = m->current;
	bool spawned = false;

	for (size_t i = 0; i < g->nslots; i++) {
		struct slot *s = g->slots[i];

		if (s->state != SLOT_WAITING || s->respawn_at_ms > m->now)
			continue;
		spawned |= generation_spawn(s, m->epfd, m->pid, m->now) == 0;
	}
	if (spawned)
		master_announce_status(m);
}

static uint64_t generation_apps_deadline(const struct generation *g)
{
	uint64_t deadline = 0;

	for (size_t i = 0; g && i < g->nslots; i++)
		if (g->slots[i]->app)
			deadline = clock_sooner(deadline, appworker_next_deadline(g->slots[i]));
	return deadline;
}

static uint64_t apps_next_deadline(const struct master *m)
{
	uint64_t deadline = clock_sooner(generation_apps_deadline(m->current),
					 generation_apps_deadline(m->pending));

	for (const struct generation *g = m->draining; g; g = g->next)
		deadline = clock_sooner(deadline, generation_apps_deadline(g));
	return deadline;
}

/* What is due for the app workers of g: start and stop deadlines,
 * watchdogs, ready = "started". A commit or an abort of the reload moves
 * g to another list, never frees it (that waits for tend_draining). */
static void tend_generation_apps(struct master *m, struct generation *g)
{
	char why[160];

	for (size_t i = 0; g && i < g->nslots; i++) {
		struct slot *s = g->slots[i];

		if (!s->app)
			continue;
		switch (appworker_tend(s, m->now)) {
		case APPWORKER_READY:
			master_worker_ready(m, s);
			break;
		case APPWORKER_START_FAILED:
			if (g != m->pending)
				break;	/* its exit counts as a failed start */
			snprintf(why, sizeof(why), "new worker %s#%u did not send READY=1 within %u ms",
				 slot_name(s), s->index, g->conf->services[s->service].start_timeout_ms);
			reload_abort(m, why);
			return;
		case APPWORKER_HUNG:
			/* With others serving beside it, its replacement starts
			 * first; alone, it goes first (it serves nothing). One
			 * being recycled has its replacement starting already. */
			if (g == m->current && g->pools[s->service].target > 1 &&
			    s->state == SLOT_READY) {
				appworker_abort(s, m->epfd, m->now, true);
				slot_event(s, SLOT_REPLACED, &(struct slot_event_data){ .now = m->now });
			} else {
				appworker_abort(s, m->epfd, m->now, false);
			}
			break;
		case APPWORKER_NOTHING:
			break;
		}
	}
}

static void tend_apps(struct master *m)
{
	struct generation *pending = m->pending;

	tend_generation_apps(m, pending);
	/* EXTEND_TIMEOUT_USEC= may have moved a start deadline past the reload's. */
	for (size_t i = 0; pending && m->pending == pending && i < pending->nslots; i++)
		if (pending->slots[i]->start_deadline > pending->deadline)
			pending->deadline = pending->slots[i]->start_deadline;
	if (m->current != pending)
		tend_generation_apps(m, m->current);
	for (struct generation *g = m->draining; g; g = g->next)
		tend_generation_apps(m, g);
	appworker_tend_condemned(m->now, m->stopping);
	workernotify_report(m->now);
}

static int next_timeout(const struct master *m)
{
	uint64_t deadline = 0;
	const struct generation *g = m->current;

	for (size_t i = 0; g && i < g->nslots; i++)
		if (g->slots[i]->state == SLOT_WAITING)
			deadline = clock_sooner(deadline, g->slots[i]->respawn_at_ms ?
						      g->slots[i]->respawn_at_ms : 1);
	deadline = clock_sooner(deadline, pool_next_deadline(m));
	deadline = clock_sooner(deadline, autoscale_next_deadline(m));
	deadline = clock_sooner(deadline, retire_next_deadline(m));
	if (m->pending)
		deadline = clock_sooner(deadline, m->pending->deadline);
	for (g = m->draining; g; g = g->next)
		deadline = clock_sooner(deadline, g->deadline);
	deadline = clock_sooner(deadline, m->watchdog_due);
	deadline = clock_sooner(deadline, log_next_deadline());
	deadline = clock_sooner(deadline, apps_next_deadline(m));
	deadline = clock_sooner(deadline, appworker_condemned_deadline());
	deadline = clock_sooner(deadline, workernotify_next_deadline());
	deadline = clock_sooner(deadline, control_next_deadline());
	deadline = clock_sooner(deadline, metrics_next_deadline());
	deadline = clock_sooner(deadline, upgrade_next_deadline());
	return clock_timeout_until(deadline, m->now);
}

static bool serving_alive(const struct generation *g)
{
	return generation_alive(g) || generation_count(g, SLOT_WAITING) > 0;
}

/* Ends the drains that overstayed (quit, then kill), frees the generations that are done. */
static void tend_draining(struct master *m)
{
	struct generation **link = &m->draining;

	while (*link) {
		struct generation *g = *link;

		if (g->deadline && m->now >= g->deadline && !g->quit_sent) {
			log_warn("shutdown-timeout passed: closing every connection of generation %u",
				 g->id);
			quit_generation(m, g);
		} else if (g->deadline && m->now >= g->deadline) {
			generation_kill(g, "did not quit in time");
			g->deadline = 0;
		}
		if (generation_alive(g)) {
			link = &g->next;
			continue;
		}
		log_debug("generation %u: every worker has exited", g->id);
		*link = g->next;
		generation_free(g);
		if (m->current)
			master_announce_status(m);
	}
}

static void tend_timers(struct master *m)
{
	uint64_t wd = notify_watchdog_interval_ms();

	if (wd && m->now >= m->watchdog_due) {
		notify_watchdog();
		m->watchdog_due = m->now + wd;
	}
	tend_apps(m);
	upgrade_tend(m);
	if (m->stopping)
		return;	/* the drains have their deadlines */
	if (m->pending && m->now >= m->pending->deadline)
		reload_abort(m, "the new workers were not ready in time");
	if (fdstore_pending())
		fdstore_push(&m->listeners);
	autoscale_tend(m);
	retire_tend(m);
	pool_tend(m);
	respawn_due(m);
	if (!m->pending && !serving_alive(m->current)) {
		log_error("no worker is left running; exiting");
		begin_stop(m, "no workers", EXIT_RUNTIME, false);
		return;
	}
	if (m->reload_queued && !m->pending && m->ready_announced)
		reload_begin(m);
}

static int setup_signals(struct master *m)
{
	static const int handled[] = { SIGCHLD, SIGTERM, SIGINT, SIGQUIT, SIGHUP, SIGUSR1, SIGUSR2 };
	struct epoll_event ev = { .events = EPOLLIN, .data.ptr = &m->sig_src };
	sigset_t set;

	sigemptyset(&set);
	for (size_t i = 0; i < ARRAY_SIZE(handled); i++)
		sigaddset(&set, handled[i]);
	signals_ignore_stray(&set);
	if (sigprocmask(SIG_BLOCK, &set, NULL) < 0) {
		log_errno(LOG_ERR, errno, "sigprocmask");
		return -1;
	}
	m->sigfd = signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
	m->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (m->sigfd < 0 || m->epfd < 0) {
		log_errno(LOG_ERR, errno, "%s", m->sigfd < 0 ? "signalfd" : "epoll_create1");
		return -1;
	}
	m->sig_src.kind = EV_SIGNAL;
	if (epoll_ctl(m->epfd, EPOLL_CTL_ADD, m->sigfd, &ev) < 0) {
		log_errno(LOG_ERR, errno, "epoll_ctl(ADD) signalfd");
		return -1;
	}
	return 0;
}

static void run_loop(struct master *m)
{
	struct epoll_event events[32];

	/* A hung app worker set aside is waited for too: SIGKILL at the stop. */
	while (!(m->stopping && !m->draining && !appworker_condemned_alive())) {
		int n = epoll_wait(m->epfd, events, 32, next_timeout(m));

		if (n < 0 && errno != EINTR) {
			log_errno(LOG_ERR, errno, "epoll_wait");
			begin_stop(m, "internal error", EXIT_RUNTIME, false);
			continue;
		}
		/* Generations are freed only below, after the batch: an event
		 * may still point at a slot of one that just finished. */
		for (int i = 0; i < n; i++) {
			struct ev_source *src = events[i].data.ptr;

			m->now = clock_now_ms();	/* the event before may have been a long reload */
			switch (src->kind) {
			case EV_SIGNAL:
				handle_signals(m);
				break;
			case EV_CHANNEL:
				handle_channel(m, (struct slot *)src);
				break;
			case EV_APP_OUTPUT:
				appworker_output(container_of(src, struct slot, out_src), m->epfd,
						 m->now);
				break;
			case EV_WORKER_NOTIFY:
				workernotify_read(m);
				break;
			case EV_CONTROL:
				control_accept(m);
				break;
			case EV_CONTROL_CLIENT:
				control_client_ready(m, src, events[i].events);
				break;
			case EV_METRICS:
				metrics_accept(m, src);
				break;
			case EV_METRICS_CLIENT:
				metrics_client_ready(m, src, events[i].events);
				break;
			default:
				log_error("event from an unknown source (kind %d)", (int)src->kind);
				break;
			}
		}
		m->now = clock_now_ms();
		tend_timers(m);
		tend_draining(m);
		control_tend(m);
		metrics_tend(m->now);
		log_flush();
	}
}

/* Binds or adopts every listener of the first generation. */
static int start_first_generation(struct master *m, struct config *conf)
{
	struct activation act;
	int rc;

	m->current = generation_new(conf, ++m->last_generation, GEN_SERVING);
	if (!m->current) {
		conf_free(conf);
		log_error("out of memory");
		return EXIT_RUNTIME;
	}
	if (activation_collect(&act, conf) < 0) {
		activation_free(&act);
		return EXIT_CONFIG;
	}
	rc = listen_set_acquire(&m->listeners, conf, &act, m->current->svc_ls);
	activation_free(&act);
	if (rc == 0)
		fdstore_push(&m->listeners);
	return rc < 0 ? EXIT_RUNTIME : EXIT_OK;
}

int master_run(struct config *conf, const struct master_opts *opts)
{
	struct master m = {
		.opts = opts, .epfd = -1, .sigfd = -1, .pidfile_fd = -1, .exit_status = EXIT_OK,
	};
	int adopted;

	m.now = m.started_ms = clock_now_ms();
	m.started_wall = time(NULL);
	m.pid = getpid();
	/* What a helper leaves behind when its worker dies, or when it exits
	 * itself, becomes ours and is reaped, and not left a zombie under an
	 * init that may not reap (a container's). */
	if (prctl(PR_SET_CHILD_SUBREAPER, 1) < 0)
		log_errno(LOG_WARNING, errno, "prctl(PR_SET_CHILD_SUBREAPER)");
	upgrade_init();
	if (!getenv(HANDOVER_ENV))
		fd_cloexec_all();	/* only what a handover names crosses an upgrade's execve */
	nofile_raise();
	notify_init();
	if (setup_signals(&m) < 0) {
		conf_free(conf);
		m.exit_status = EXIT_RUNTIME;
		goto out;
	}
	/* An upgrade's new image: the last one's listeners and workers are ours. */
	adopted = handover_adopt(&m);
	if (adopted < 0)
		handover_abandon(&m, conf);
	if (adopted > 0) {
		conf_free(conf);	/* its reload reads the file again */
		conf = m.current->conf;
	} else if (conf->pidfile && m.pidfile_fd < 0) {
		m.pidfile = strdup(conf->pidfile);
		m.pidfile_fd = m.pidfile ? pidfile_acquire(m.pidfile) : -1;
		if (m.pidfile_fd < 0) {
			conf_free(conf);
			m.exit_status = EXIT_RUNTIME;
			goto out;
		}
	}
	if (adopted <= 0) {
		m.exit_status = start_first_generation(&m, conf);
		if (m.exit_status != EXIT_OK)
			goto out;
	}
	if (control_open(&m) < 0 || metrics_open(&m) < 0) {
		m.exit_status = EXIT_RUNTIME;
		goto out;
	}
	master_warn_restart_only(&m, conf);
	proctitle_set("preforkd: master (generation %u)", m.current->id);
	m.watchdog_due = notify_watchdog_interval_ms() ? m.now : 0;
	if (adopted > 0)
		reload_begin(&m);	/* our own workers replace the last image's */
	else
		respawn_due(&m);
	run_loop(&m);
	log_notice("stopped");
out:
	listen_set_close_all(&m.listeners, true);
	generation_free(m.current);
	fd_close(&m.sigfd);
	fd_close(&m.epfd);
	if (m.pidfile && m.pidfile_fd >= 0)
		pidfile_release(m.pidfile, m.pidfile_fd);
	free(m.pidfile);
	workernotify_close();
	control_close();
	metrics_close();
	for (size_t i = 0; i < m.ntotals; i++)
		free(m.totals[i].name);
	free(m.totals);
	notify_close();
	log_drain(LOG_EXIT_DRAIN_MS);
	return m.exit_status;
}
