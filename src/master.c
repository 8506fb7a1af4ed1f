/* master.c - process table, signals, respawn with back-off, readiness and graceful stop.
 *
 * Signals arrive through a signalfd in the master's epoll loop: no work is
 * done in a signal handler. Workers are signalled by their recorded pid only. */
#include "config.h"

#include "master.h"

#include <errno.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "clock.h"
#include "conf.h"
#include "evsource.h"
#include "fdutil.h"
#include "listener.h"
#include "log.h"
#include "notify.h"
#include "pidfile.h"
#include "worker.h"

#define QUICK_EXIT_MS 1000	/* a worker dying sooner than this failed at start-up */
#define MAX_QUICK_FAILURES 5	/* in a row, then the slot is given up */
#define RESPAWN_DELAY_MIN_MS 100
#define RESPAWN_DELAY_MAX_MS 5000

enum slot_state {
	SLOT_WAITING,		/* no process; respawn_at says when */
	SLOT_STARTING,		/* forked, not ready yet */
	SLOT_READY,
	SLOT_STOPPING,		/* told to stop, still running */
	SLOT_FAILED,		/* given up on */
	SLOT_DONE,		/* exited during the stop */
};

struct slot {
	struct ev_source src;	/* first: the control socket's epoll data */
	size_t service;		/* index into conf->services */
	unsigned index;		/* within the service */
	enum slot_state state;
	pid_t pid;
	int ctl_fd;
	uint64_t started_ms, respawn_at_ms;
	unsigned quick_failures;
};

struct service_listeners {
	struct listener *ls;
	size_t n;
};

struct master {
	struct config *conf;
	struct service_listeners *svc_ls;	/* per service */
	struct slot *slots;
	size_t nslots;
	int epfd, sigfd;
	struct ev_source sig_src;
	int pidfile_fd;
	unsigned generation;
	bool ready_announced;
	bool stopping;
	uint64_t stop_deadline;
	int exit_status;
	pid_t pid;
	uint64_t now;
};

static const char *slot_service_name(const struct master *m, const struct slot *s)
{
	return m->conf->services[s->service].name;
}

static void close_listeners(struct master *m, bool remove_files)
{
	for (size_t i = 0; i < m->conf->nservices && m->svc_ls; i++)
		for (size_t j = 0; j < m->svc_ls[i].n; j++)
			listener_close(&m->svc_ls[i].ls[j], remove_files);
}

static int open_listeners(struct master *m)
{
	m->svc_ls = calloc(m->conf->nservices, sizeof(*m->svc_ls));
	if (!m->svc_ls)
		return -1;
	for (size_t i = 0; i < m->conf->nservices; i++) {
		const struct service *svc = &m->conf->services[i];

		m->svc_ls[i].ls = calloc(svc->nlisten, sizeof(struct listener));
		if (!m->svc_ls[i].ls)
			return -1;
		for (size_t j = 0; j < svc->nlisten; j++) {
			m->svc_ls[i].ls[j].fd = -1;
			if (listener_open(&m->svc_ls[i].ls[j], &svc->listen[j], svc) < 0)
				return -1;
			m->svc_ls[i].n = j + 1;
		}
	}
	return 0;
}

static void free_listeners(struct master *m)
{
	for (size_t i = 0; i < m->conf->nservices && m->svc_ls; i++)
		free(m->svc_ls[i].ls);
	free(m->svc_ls);
	m->svc_ls = NULL;
}

/* In the child: keep our service's listeners, our control socket and stdio. */
static void __attribute__((noreturn)) run_worker(struct master *m, struct slot *s, int ctl_fd)
{
	struct service_listeners *sl = &m->svc_ls[s->service];
	int *keep = calloc(sl->n + 1, sizeof(int));
	struct worker_params p = {
		.conf = m->conf, .svc = &m->conf->services[s->service],
		.listeners = sl->ls, .nlisteners = sl->n, .ctl_fd = ctl_fd,
		.slot = s->index, .generation = m->generation, .master_pid = m->pid,
	};

	if (!keep)
		_exit(EXIT_RUNTIME);
	for (size_t i = 0; i < sl->n; i++)
		keep[i] = sl->ls[i].fd;
	keep[sl->n] = ctl_fd;
	fd_close_all_except(keep, sl->n + 1);
	free(keep);
	_exit(worker_main(&p));
}

static void slot_spawn(struct master *m, struct slot *s)
{
	int sv[2];
	pid_t pid;
	struct epoll_event ev = { .events = EPOLLIN, .data.ptr = s };

	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0, sv) < 0) {
		log_errno(LOG_ERR, errno, "socketpair for worker %s#%u", slot_service_name(m, s), s->index);
		s->state = SLOT_WAITING;
		s->respawn_at_ms = m->now + RESPAWN_DELAY_MAX_MS;
		return;
	}
	pid = fork();
	if (pid == 0) {
		close(sv[0]);
		run_worker(m, s, sv[1]);
	}
	close(sv[1]);
	if (pid < 0) {
		log_errno(LOG_ERR, errno, "fork worker %s#%u", slot_service_name(m, s), s->index);
		close(sv[0]);
		s->state = SLOT_WAITING;
		s->respawn_at_ms = m->now + RESPAWN_DELAY_MAX_MS;
		return;
	}
	s->pid = pid;
	s->ctl_fd = sv[0];
	s->state = SLOT_STARTING;
	s->started_ms = m->now;
	if (epoll_ctl(m->epfd, EPOLL_CTL_ADD, s->ctl_fd, &ev) < 0)
		log_errno(LOG_ERR, errno, "epoll_ctl(ADD) worker %ld", (long)pid);
	log_debug("started worker %s#%u, pid %ld", slot_service_name(m, s), s->index, (long)pid);
}

static unsigned count_slots(const struct master *m, enum slot_state state)
{
	unsigned n = 0;

	for (size_t i = 0; i < m->nslots; i++)
		n += m->slots[i].state == state;
	return n;
}

static bool slot_alive(const struct slot *s)
{
	return s->state == SLOT_STARTING || s->state == SLOT_READY || s->state == SLOT_STOPPING;
}

static void announce_status(struct master *m)
{
	char status[160];
	unsigned ready = count_slots(m, SLOT_READY), failed = count_slots(m, SLOT_FAILED);

	snprintf(status, sizeof(status), "%zu service%s, %u of %zu workers ready%s",
		 m->conf->nservices, m->conf->nservices == 1 ? "" : "s", ready, m->nslots,
		 failed ? ", some slots failed" : "");
	if (!m->ready_announced && count_slots(m, SLOT_STARTING) == 0 &&
	    count_slots(m, SLOT_WAITING) == 0 && ready > 0) {
		m->ready_announced = true;
		log_notice("ready: %s", status);
		notify_ready(status);
		return;
	}
	if (m->ready_announced)
		notify_status(status);
}

static void begin_stop(struct master *m, const char *why, int status)
{
	if (m->stopping) {
		log_notice("%s again: killing the remaining workers now", why);
		m->stop_deadline = m->now;
		return;
	}
	m->stopping = true;
	m->exit_status = status;
	m->stop_deadline = m->now + m->conf->shutdown_timeout_ms;
	log_notice("stopping (%s): finishing in-flight connections for up to %u ms",
		   why, m->conf->shutdown_timeout_ms);
	notify_stopping("stopping");
	/* Our copies go first: the port is free as soon as the workers drop theirs. */
	close_listeners(m, true);
	for (size_t i = 0; i < m->nslots; i++) {
		struct slot *s = &m->slots[i];

		if (slot_alive(s)) {
			if (kill(s->pid, SIGTERM) < 0 && errno != ESRCH)
				log_errno(LOG_ERR, errno, "kill worker %ld", (long)s->pid);
			s->state = SLOT_STOPPING;
		} else if (s->state == SLOT_WAITING) {
			s->state = SLOT_DONE;
		}
	}
}

static void kill_stragglers(struct master *m)
{
	for (size_t i = 0; i < m->nslots; i++) {
		struct slot *s = &m->slots[i];

		if (!slot_alive(s))
			continue;
		log_warn("worker %s#%u (pid %ld) still busy after shutdown-timeout: killing it",
			 slot_service_name(m, s), s->index, (long)s->pid);
		if (kill(s->pid, SIGKILL) < 0 && errno != ESRCH)
			log_errno(LOG_ERR, errno, "kill worker %ld", (long)s->pid);
	}
	m->stop_deadline = 0;
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

/* Stops respawning a slot; the reason has been logged by the caller. */
static void slot_give_up(struct master *m, struct slot *s)
{
	s->state = SLOT_FAILED;
	announce_status(m);
}

/* Decides what happens to a slot whose worker died while we were running. */
static void schedule_respawn(struct master *m, struct slot *s, int status)
{
	const char *name = slot_service_name(m, s);
	unsigned delay;

	if (WIFEXITED(status) && WEXITSTATUS(status) == WORKER_EXIT_FATAL) {
		log_error("worker %s#%u cannot work (see above); not respawning it", name, s->index);
		slot_give_up(m, s);
		return;
	}
	if (m->now - s->started_ms < QUICK_EXIT_MS)
		s->quick_failures++;
	else
		s->quick_failures = 0;
	if (s->quick_failures >= MAX_QUICK_FAILURES) {
		log_error("worker %s#%u failed %u times in a row within %u ms of starting; "
			  "not respawning it", name, s->index, s->quick_failures, QUICK_EXIT_MS);
		slot_give_up(m, s);
		return;
	}
	delay = 0;
	if (s->quick_failures > 0) {
		delay = RESPAWN_DELAY_MIN_MS << (s->quick_failures - 1);
		if (delay > RESPAWN_DELAY_MAX_MS)
			delay = RESPAWN_DELAY_MAX_MS;
	}
	s->state = SLOT_WAITING;
	s->respawn_at_ms = m->now + delay;
	log_notice("respawning worker %s#%u in %u ms", name, s->index, delay);
}

static struct slot *slot_by_pid(struct master *m, pid_t pid)
{
	for (size_t i = 0; i < m->nslots; i++)
		if (m->slots[i].pid == pid && slot_alive(&m->slots[i]))
			return &m->slots[i];
	return NULL;
}

static void reap_children(struct master *m)
{
	for (;;) {
		int status;
		pid_t pid = waitpid(-1, &status, WNOHANG);
		struct slot *s;
		char how[96];

		if (pid < 0 && errno == EINTR)
			continue;
		if (pid <= 0)
			return;
		s = slot_by_pid(m, pid);
		if (!s) {
			log_debug("reaped unknown child %ld", (long)pid);
			continue;
		}
		describe_exit(status, how, sizeof(how));
		if (s->ctl_fd >= 0) {
			epoll_ctl(m->epfd, EPOLL_CTL_DEL, s->ctl_fd, NULL);
			fd_close(&s->ctl_fd);
		}
		s->pid = 0;
		if (s->state == SLOT_STOPPING) {
			log_info("worker %s#%u (pid %ld) %s", slot_service_name(m, s), s->index,
				 (long)pid, how);
			s->state = SLOT_DONE;
			continue;
		}
		log_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0 ? LOG_WARNING : LOG_ERR,
			"worker %s#%u (pid %ld) %s", slot_service_name(m, s), s->index, (long)pid, how);
		schedule_respawn(m, s, status);
	}
}

static void handle_signals(struct master *m)
{
	struct signalfd_siginfo si;

	while (read(m->sigfd, &si, sizeof(si)) == sizeof(si)) {
		switch (si.ssi_signo) {
		case SIGCHLD:
			reap_children(m);
			break;
		case SIGTERM:
		case SIGINT:
		case SIGQUIT:
			begin_stop(m, strsignal((int)si.ssi_signo), EXIT_OK);
			break;
		case SIGHUP:
			log_notice("SIGHUP: configuration reload is not available in this version; "
				   "restart preforkd to apply changes");
			break;
		}
	}
}

static void handle_control(struct master *m, struct slot *s)
{
	char msg[16];
	ssize_t n;

	while ((n = recv(s->ctl_fd, msg, sizeof(msg), 0)) > 0) {
		if (msg[0] == WORKER_MSG_READY && s->state == SLOT_STARTING) {
			s->state = SLOT_READY;
			log_debug("worker %s#%u (pid %ld) ready", slot_service_name(m, s), s->index,
				  (long)s->pid);
			announce_status(m);
		}
	}
	if (n == 0) {	/* the worker is exiting; SIGCHLD does the rest */
		epoll_ctl(m->epfd, EPOLL_CTL_DEL, s->ctl_fd, NULL);
		fd_close(&s->ctl_fd);
	}
}

static void respawn_due(struct master *m)
{
	bool spawned = false;

	for (size_t i = 0; i < m->nslots; i++) {
		struct slot *s = &m->slots[i];

		if (s->state == SLOT_WAITING && s->respawn_at_ms <= m->now) {
			slot_spawn(m, s);
			spawned = true;
		}
	}
	if (spawned)
		announce_status(m);
}

static int next_timeout(const struct master *m)
{
	uint64_t deadline = m->stopping ? m->stop_deadline : 0;

	for (size_t i = 0; i < m->nslots; i++) {
		const struct slot *s = &m->slots[i];

		if (s->state == SLOT_WAITING && (!deadline || s->respawn_at_ms < deadline))
			deadline = s->respawn_at_ms ? s->respawn_at_ms : 1;
	}
	return clock_timeout_until(deadline, m->now);
}

static bool any_alive(const struct master *m)
{
	for (size_t i = 0; i < m->nslots; i++)
		if (slot_alive(&m->slots[i]) || m->slots[i].state == SLOT_WAITING)
			return true;
	return false;
}

static int setup_signals(struct master *m)
{
	sigset_t set;
	struct epoll_event ev = { .events = EPOLLIN, .data.ptr = &m->sig_src };

	signal(SIGPIPE, SIG_IGN);
	sigemptyset(&set);
	sigaddset(&set, SIGCHLD);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGQUIT);
	sigaddset(&set, SIGHUP);
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

static int make_slots(struct master *m)
{
	size_t n = 0;

	for (size_t i = 0; i < m->conf->nservices; i++)
		n += m->conf->services[i].workers;
	m->slots = calloc(n, sizeof(*m->slots));
	if (!m->slots)
		return -1;
	for (size_t i = 0; i < m->conf->nservices; i++)
		for (unsigned j = 0; j < m->conf->services[i].workers; j++)
			m->slots[m->nslots++] = (struct slot){
				.src = { EV_CONTROL }, .service = i, .index = j,
				.state = SLOT_WAITING, .ctl_fd = -1,
			};
	return 0;
}

static void warn_privileges(const struct config *conf)
{
	if ((conf->user || conf->group) && geteuid() != 0)
		log_warn("not started as root: 'user'/'group' ignored, workers run as uid %u",
			 (unsigned)geteuid());
}

static void run_loop(struct master *m)
{
	struct epoll_event events[32];

	while (!(m->stopping && !any_alive(m))) {
		int n = epoll_wait(m->epfd, events, 32, next_timeout(m));

		if (n < 0 && errno != EINTR) {
			log_errno(LOG_ERR, errno, "epoll_wait");
			begin_stop(m, "internal error", EXIT_RUNTIME);
			continue;
		}
		m->now = clock_now_ms();
		for (int i = 0; i < n; i++) {
			struct ev_source *src = events[i].data.ptr;

			if (src->kind == EV_SIGNAL)
				handle_signals(m);
			else
				handle_control(m, (struct slot *)src);
		}
		if (m->stopping) {
			if (m->stop_deadline && m->now >= m->stop_deadline)
				kill_stragglers(m);
			continue;
		}
		respawn_due(m);
		if (!any_alive(m)) {
			log_error("no worker is left running; exiting");
			begin_stop(m, "no workers", EXIT_RUNTIME);
		}
	}
}

int master_run(struct config *conf)
{
	struct master m = {
		.conf = conf, .epfd = -1, .sigfd = -1, .pidfile_fd = -1, .generation = 1,
		.exit_status = EXIT_OK,
	};

	m.now = clock_now_ms();
	m.pid = getpid();
	if (conf->pidfile) {
		m.pidfile_fd = pidfile_acquire(conf->pidfile);
		if (m.pidfile_fd < 0) {
			m.exit_status = EXIT_RUNTIME;
			goto out;
		}
	}
	if (open_listeners(&m) < 0 || setup_signals(&m) < 0 || make_slots(&m) < 0) {
		m.exit_status = EXIT_RUNTIME;
		goto out;
	}
	warn_privileges(conf);
	respawn_due(&m);
	run_loop(&m);
	log_notice("stopped");
out:
	close_listeners(&m, true);
	free_listeners(&m);
	free(m.slots);
	fd_close(&m.sigfd);
	fd_close(&m.epfd);
	if (conf->pidfile && m.pidfile_fd >= 0)
		pidfile_release(conf->pidfile, m.pidfile_fd);
	conf_free(conf);
	return m.exit_status;
}
