/* SPDX-License-Identifier: ISC */
/* appworker.c - handler "app": the service's own program as each worker, started with systemd's socket-activation protocol.
 *
 * The master starts the program itself, through the one spawn path: the
 * service's listeners at descriptors 3, 4, ... in listen order (the only
 * ones it inherits), LISTEN_FDS, LISTEN_PID (the child's own pid, written
 * by the child before its execve), LISTEN_FDNAMES, the variables programs
 * written for einhorn and Server::Starter read, NOTIFY_SOCKET (ours:
 * workernotify.c), and a clean environment besides, as systemd gives a
 * service. Its stdout and stderr go to a pipe the master reads into the
 * log. It has its own process group, which is what stop-signal and
 * SIGKILL are sent to, and it dies with the master (PR_SET_PDEATHSIG). */
#include "config.h"

#include "master/appworker.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

#include "common/clock.h"
#include "common/log.h"
#include "common/outlog.h"
#include "common/spawn.h"
#include "conf/conf.h"
#include "master/generation.h"
#include "master/listener.h"

/* An app worker's lines: each worker may log this many a second; more are
 * read all the same (it never blocks on its output) and counted. */
static const struct outlog_style app_output = {
	.level = LOG_INFO, .priorities = true, .lines_per_s = 1000, .what = "output",
};

#define ENV_FIXED 16	/* the variables besides env, EINHORN_FD_n and the fixed ones */
#define GROUPS_MAX 256

static const struct service *service_of(const struct slot *s)
{
	return &s->gen->conf->services[s->service];
}

/* An fd name as systemd allows one (LISTEN_FDNAMES is ':'-separated). */
static void fd_name(const char *service, char *buf, size_t len)
{
	size_t i;

	for (i = 0; service[i] && i + 1 < len; i++)
		buf[i] = strchr(":\n\r\t =", service[i]) || (unsigned char)service[i] < 0x20 ||
			 (unsigned char)service[i] >= 0x7f ? '_' : service[i];
	buf[i] = '\0';
}

/* A listener as Server::Starter names it: "host:port", "port" for every
 * local address, a socket file's path, "@name" for an abstract socket. */
static const char *starter_name(const struct address *a, char *buf, size_t len)
{
	static const char *const prefixes[] = { "tcp:", "udp:", "unixgram:", "unix:" };
	const char *t = a->text;

	if (a->wildcard || address_is_any(a)) {
		snprintf(buf, len, "%u", (unsigned)address_port(a));
		return buf;
	}
	for (size_t i = 0; i < sizeof(prefixes) / sizeof(prefixes[0]); i++)
		if (strncmp(t, prefixes[i], strlen(prefixes[i])) == 0) {
			t += strlen(prefixes[i]);
			break;
		}
	return t;
}

struct app_env {
	char **envp;		/* NULL-terminated; the strings below, and the config's */
	char **owned;		/* what to free */
	size_t n, nowned, cap;
	char *pid_texts[2];	/* where the child writes its pid */
	size_t npid_texts;
};

static char *env_add(struct app_env *e, char *s)
{
	if (!s)
		return NULL;
	e->owned[e->nowned++] = s;
	e->envp[e->n++] = s;
	return s;
}

static char *env_printf(struct app_env *e, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static char *env_printf(struct app_env *e, const char *fmt, ...)
{
	va_list ap;
	char *s;
	int rc;

	va_start(ap, fmt);
	rc = vasprintf(&s, fmt, ap);
	va_end(ap);
	return env_add(e, rc < 0 ? NULL : s);
}

/* NAME= and room for a pid the child writes in. */
static bool env_pid(struct app_env *e, const char *name)
{
	size_t len = strlen(name);
	char *s = calloc(1, len + 1 + SPAWN_PID_TEXT);

	if (!env_add(e, s))
		return false;
	memcpy(s, name, len);
	s[len] = '=';
	e->pid_texts[e->npid_texts++] = s + len + 1;
	return true;
}

static void env_free(struct app_env *e)
{
	for (size_t i = 0; i < e->nowned; i++)
		free(e->owned[i]);
	free(e->owned);
	free(e->envp);
}

/* A ':'- or ';'-joined list of one entry per listener. */
static char *listener_list(const struct service_listeners *sl, const char *service, bool starter)
{
	size_t len = 0, cap = 64;
	char *out = malloc(cap), name[ADDRESS_TEXT_MAX + 16];

	for (size_t i = 0; out && i < sl->n; i++) {
		size_t need;

		if (starter)
			snprintf(name, sizeof(name), "%s=%zu",
				 starter_name(&sl->ls[i]->spec, name + ADDRESS_TEXT_MAX / 2,
					      ADDRESS_TEXT_MAX / 2), (size_t)3 + i);
		else
			fd_name(service, name, sizeof(name));
		need = len + strlen(name) + 2;
		if (need > cap) {
			char *bigger = realloc(out, cap = need * 2);

			if (!bigger) {
				free(out);
				return NULL;
			}
			out = bigger;
		}
		len += (size_t)sprintf(out + len, "%s%s", i ? (starter ? ";" : ":") : "", name);
	}
	if (out)
		out[len] = '\0';
	return out;
}

static int build_env(struct app_env *e, const struct slot *s, const char *notify_socket)
{
	const struct service *svc = service_of(s);
	const struct service_listeners *sl = &s->gen->svc_ls[s->service];
	size_t nconf = 0;
	bool has_path = false;
	char *names, *ports;

	while (svc->exec_env[nconf])
		has_path |= strncmp(svc->exec_env[nconf++], "PATH=", 5) == 0;
	e->cap = nconf + sl->n + ENV_FIXED + 1;
	e->envp = calloc(e->cap, sizeof(*e->envp));
	e->owned = calloc(e->cap, sizeof(*e->owned));
	if (!e->envp || !e->owned)
		return -1;
	if (!has_path)
		e->envp[e->n++] = (char *)SPAWN_DEFAULT_PATH;
	for (size_t i = 0; i < nconf; i++)
		e->envp[e->n++] = svc->exec_env[i];
	names = listener_list(sl, svc->name, false);
	ports = listener_list(sl, svc->name, true);
	if (!names || !ports || !env_printf(e, "LISTEN_FDS=%zu", sl->n) ||
	    !env_pid(e, "LISTEN_PID") || !env_printf(e, "LISTEN_FDNAMES=%s", names) ||
	    !env_printf(e, "SERVER_STARTER_PORT=%s", ports) ||
	    !env_printf(e, "EINHORN_FD_COUNT=%zu", sl->n)) {
		free(names);
		free(ports);
		return -1;
	}
	free(names);
	free(ports);
	for (size_t i = 0; i < sl->n; i++)
		if (!env_printf(e, "EINHORN_FD_%zu=%zu", i, 3 + i))
			return -1;
	if (notify_socket && !env_printf(e, "NOTIFY_SOCKET=%s", notify_socket))
		return -1;
	if (svc->watchdog_ms && (!env_printf(e, "WATCHDOG_USEC=%llu",
					     (unsigned long long)svc->watchdog_ms * 1000) ||
				 !env_pid(e, "WATCHDOG_PID")))
		return -1;
	if (!env_printf(e, "PREFORKD_SERVICE=%s", svc->name) ||
	    !env_printf(e, "PREFORKD_WORKER=%u", s->index) ||
	    !env_printf(e, "PREFORKD_GENERATION=%u", s->gen->id))
		return -1;
	return 0;
}

/* Who the program runs as: the service's user and group, when we are root. */
static const struct spawn_credentials *credentials(const struct service *svc,
						   struct spawn_credentials *as, gid_t *groups)
{
	const struct identity *id = &svc->run_as;
	int n = GROUPS_MAX;

	if (geteuid() != 0 || (!id->user && !id->group))
		return NULL;	/* not root: the master said so once, at start-up */
	*as = (struct spawn_credentials){ .uid = id->uid, .gid = id->gid, .groups = groups };
	if (id->user && getgrouplist(id->user, id->gid, groups, &n) >= 0) {
		as->ngroups = (size_t)n;
	} else {
		if (id->user)
			log_warn("service '%s': user %s is in more than %d groups: only its "
				 "primary group is kept", svc->name, id->user, GROUPS_MAX);
		groups[0] = id->gid;
		as->ngroups = 1;
	}
	return as;
}

static void spawn_failed(struct slot *s, uint64_t now)
{
	slot_event(s, SLOT_SPAWN_FAILED, &(struct slot_event_data){ .now = now });
}

int appworker_adopt(struct slot *s, int epfd, int out_fd)
{
	struct epoll_event ev = { .events = EPOLLIN, .data.ptr = &s->out_src };
	char label[160];

	snprintf(label, sizeof(label), "%s#%u[%ld]", slot_name(s), s->index, (long)s->pid);
	s->out = outlog_adopt(label, &app_output, EV_APP_OUTPUT, out_fd);
	if (!s->out) {
		close(out_fd);
		return -1;
	}
	if (epoll_ctl(epfd, EPOLL_CTL_ADD, out_fd, &ev) < 0) {
		log_errno(LOG_ERR, errno, "epoll_ctl(ADD) output of %s", label);
		return -1;
	}
	return 0;
}

int appworker_output_fd(const struct slot *s)
{
	return s->out ? outlog_read_fd(s->out) : -1;
}

int appworker_spawn(struct slot *s, int epfd, const char *notify_socket, uint64_t now)
{
	const struct service *svc = service_of(s);
	const struct service_listeners *sl = &s->gen->svc_ls[s->service];
	struct spawn_fd *fds = calloc(sl->n + 3, sizeof(*fds));
	struct app_env env = { 0 };
	struct spawn_credentials as;
	struct spawn_failure failed;
	gid_t groups[GROUPS_MAX];
	int in = open("/dev/null", O_RDONLY | O_CLOEXEC), out = -1, rc = -1;
	char label[256];
	pid_t pid;

	snprintf(label, sizeof(label), "%s#%u", slot_name(s), s->index);
	if (!fds || in < 0 || build_env(&env, s, notify_socket) < 0) {
		log_errno(LOG_ERR, in < 0 ? errno : ENOMEM, "app worker %s: %s", label,
			  in < 0 ? "open /dev/null" : "its environment");
		goto out;
	}
	if (svc->exec_stderr_null) {
		out = open("/dev/null", O_WRONLY | O_CLOEXEC);
		if (out < 0) {
			log_errno(LOG_ERR, errno, "app worker %s: open /dev/null", label);
			goto out;
		}
	} else {
		s->out = outlog_new(label, &app_output, EV_APP_OUTPUT);
		if (!s->out)
			goto out;
		out = outlog_write_fd(s->out);
	}
	fds[0] = (struct spawn_fd){ in, STDIN_FILENO };
	fds[1] = (struct spawn_fd){ out, STDOUT_FILENO };
	fds[2] = (struct spawn_fd){ out, STDERR_FILENO };
	for (size_t i = 0; i < sl->n; i++)
		fds[3 + i] = (struct spawn_fd){ sl->ls[i]->fd, 3 + (int)i };
	pid = spawn_start(&(struct spawn_plan){
		.argv = svc->exec_argv, .envp = env.envp, .directory = svc->directory,
		.fds = fds, .nfds = sl->n + 3, .new_group = true, .death_signal = SIGKILL,
		.as = credentials(svc, &as, groups),
		.pid_texts = env.pid_texts, .npid_texts = env.npid_texts,
	}, &failed);
	if (pid < 0) {
		log_errno(LOG_ERR, errno, "app worker %s: vfork", label);
		goto out;
	}
	if (failed.step)
		log_errno(LOG_ERR, failed.err, "app worker %s: %s %s", label, failed.step,
			  strcmp(failed.step, "chdir") == 0 ? svc->directory : svc->exec_argv[0]);
	slot_event(s, SLOT_SPAWNED, &(struct slot_event_data){ .now = now, .pid = pid });
	s->start_deadline = svc->app_ready_notify ? now + svc->start_timeout_ms : 0;
	s->stop_deadline = s->watchdog_due = 0;
	s->said_errno = 0;
	free(s->status);
	s->status = NULL;
	if (s->out) {
		struct epoll_event ev = { .events = EPOLLIN, .data.ptr = &s->out_src };

		snprintf(label, sizeof(label), "%s#%u[%ld]", slot_name(s), s->index, (long)pid);
		outlog_relabel(s->out, label);
		outlog_close_write_fd(s->out);	/* EOF once the program and its children are gone */
		if (epoll_ctl(epfd, EPOLL_CTL_ADD, outlog_read_fd(s->out), &ev) < 0)
			log_errno(LOG_ERR, errno, "epoll_ctl(ADD) output of %s", label);
	}
	log_debug("started app worker %s#%u, pid %ld, generation %u", slot_name(s), s->index,
		  (long)pid, s->gen->id);
	rc = 0;
out:
	if (in >= 0)
		close(in);
	if (svc->exec_stderr_null && out >= 0)
		close(out);
	if (rc < 0) {
		outlog_free(s->out);
		s->out = NULL;
		spawn_failed(s, now);
	}
	env_free(&env);
	free(fds);
	return rc;
}

void appworker_signal(const struct slot *s, int sig)
{
	if (!slot_alive(s) || s->pid <= 0)
		return;
	if (kill(-s->pid, sig) < 0 && errno != ESRCH)
		log_errno(LOG_ERR, errno, "kill(%s) app worker %s#%u process group %ld",
			  sigabbrev_np(sig), slot_name(s), s->index, (long)s->pid);
}

void appworker_stop(struct slot *s, uint64_t now)
{
	const struct service *svc = service_of(s);

	if (!slot_alive(s) || s->stop_deadline)
		return;	/* told already: a second signal may mean "now" to it */
	appworker_signal(s, svc->stop_signal);
	s->stop_deadline = now + svc->stop_timeout_ms;
	if (!s->stop_deadline)
		s->stop_deadline = 1;
	s->start_deadline = s->watchdog_due = 0;
}

void appworker_exited(struct slot *s, int epfd)
{
	/* The group outlives its leader only if the program left something
	 * behind; nothing of it may go on holding the listeners. The group
	 * id is not reused while any member lives, so this reaches no one else. */
	if (s->pid > 0)
		kill(-s->pid, SIGKILL);
	if (s->out) {
		epoll_ctl(epfd, EPOLL_CTL_DEL, outlog_read_fd(s->out), NULL);
		outlog_free(s->out);
		s->out = NULL;
	}
	s->start_deadline = s->stop_deadline = s->watchdog_due = 0;
}

void appworker_output(struct slot *s, int epfd, uint64_t now)
{
	/* At EOF nothing writes any more (its exit follows): level-triggered
	 * epoll would report the pipe on every turn until then. */
	if (s->out && !outlog_read(s->out, now))
		epoll_ctl(epfd, EPOLL_CTL_DEL, outlog_read_fd(s->out), NULL);
}

/* Hung workers set aside from their slot, whose replacements already run:
 * each is reaped by pid like any child, and killed at kill_at. */
struct condemned {
	pid_t pid;
	uint64_t kill_at;		/* 0: SIGKILL sent */
	char label[96];
	struct condemned *next;
};

static struct condemned *condemned;

void appworker_abort(struct slot *s, int epfd, uint64_t now, bool replace)
{
	const struct service *svc = service_of(s);
	struct condemned *c = replace ? calloc(1, sizeof(*c)) : NULL;
	char why[96];

	if (s->watchdog_triggered)
		snprintf(why, sizeof(why), "sent WATCHDOG=trigger");
	else
		snprintf(why, sizeof(why), "sent no WATCHDOG=1 for %u ms (watchdog)",
			 svc->watchdog_ms);
	log_error("app worker %s#%u (pid %ld, generation %u) %s: aborting it (SIGABRT), "
		  "SIGKILL in %u ms%s", slot_name(s), s->index, (long)s->pid, s->gen->id, why,
		  svc->stop_timeout_ms, c ? "; its replacement starts now" : "");
	if (kill(s->pid, SIGABRT) < 0 && errno != ESRCH)
		log_errno(LOG_ERR, errno, "kill(ABRT) app worker %ld", (long)s->pid);
	s->watchdog_due = 0;
	s->watchdog_triggered = false;
	if (!c) {
		s->stop_deadline = now + svc->stop_timeout_ms;
		if (!s->stop_deadline)
			s->stop_deadline = 1;
		return;
	}
	/* Its output goes with it: a hung worker writes nothing more. */
	*c = (struct condemned){ .pid = s->pid, .kill_at = now + svc->stop_timeout_ms,
				 .next = condemned };
	if (!c->kill_at)
		c->kill_at = 1;
	snprintf(c->label, sizeof(c->label), "%s#%u[%ld]", slot_name(s), s->index, (long)s->pid);
	condemned = c;
	if (s->out) {
		epoll_ctl(epfd, EPOLL_CTL_DEL, outlog_read_fd(s->out), NULL);
		outlog_free(s->out);
		s->out = NULL;
	}
	s->start_deadline = s->stop_deadline = 0;
}

bool appworker_reap_condemned(pid_t pid, char *label, size_t len)
{
	for (struct condemned **link = &condemned; *link; link = &(*link)->next) {
		struct condemned *c = *link;

		if (c->pid != pid)
			continue;
		kill(-pid, SIGKILL);	/* what it left in its group; see appworker_exited() */
		snprintf(label, len, "%s", c->label);
		*link = c->next;
		free(c);
		return true;
	}
	return false;
}

void appworker_tend_condemned(uint64_t now, bool stopping)
{
	for (struct condemned *c = condemned; c; c = c->next) {
		if (!c->kill_at || (now < c->kill_at && !stopping))
			continue;
		log_warn("hung app worker %s still running: killing its process group", c->label);
		if (kill(-c->pid, SIGKILL) < 0 && errno != ESRCH)
			log_errno(LOG_ERR, errno, "kill(KILL) process group %ld", (long)c->pid);
		c->kill_at = 0;
	}
}

uint64_t appworker_condemned_deadline(void)
{
	uint64_t d = 0;

	for (const struct condemned *c = condemned; c; c = c->next)
		d = clock_sooner(d, c->kill_at);
	return d;
}

bool appworker_condemned_alive(void)
{
	return condemned != NULL;
}

enum appworker_due appworker_tend(struct slot *s, uint64_t now)
{
	const struct service *svc = service_of(s);

	if (!slot_alive(s))
		return APPWORKER_NOTHING;
	outlog_report(s->out, now);
	if (s->stop_deadline && now >= s->stop_deadline) {
		log_warn("app worker %s#%u (pid %ld, generation %u) still running %u ms after "
			 "SIG%s: killing its process group", slot_name(s), s->index, (long)s->pid,
			 s->gen->id, svc->stop_timeout_ms, sigabbrev_np(svc->stop_signal));
		appworker_signal(s, SIGKILL);
		s->stop_deadline = 0;
		return APPWORKER_NOTHING;
	}
	if (s->state == SLOT_STARTING && !svc->app_ready_notify)
		return APPWORKER_READY;
	if (s->state == SLOT_STARTING && s->start_deadline && now >= s->start_deadline) {
		log_error("app worker %s#%u (pid %ld, generation %u) did not send READY=1 within "
			  "%u ms (start-timeout): stopping it", slot_name(s), s->index,
			  (long)s->pid, s->gen->id, svc->start_timeout_ms);
		appworker_stop(s, now);
		return APPWORKER_START_FAILED;
	}
	if ((s->state == SLOT_READY || s->state == SLOT_RETIRING) && s->watchdog_due &&
	    now >= s->watchdog_due)
		return APPWORKER_HUNG;
	return APPWORKER_NOTHING;
}

uint64_t appworker_next_deadline(const struct slot *s)
{
	uint64_t d = 0;

	if (!slot_alive(s))
		return 0;
	if (s->state == SLOT_STARTING && !service_of(s)->app_ready_notify)
		return 1;	/* now */
	d = clock_sooner(d, s->stop_deadline);
	if (s->state == SLOT_STARTING)
		d = clock_sooner(d, s->start_deadline);
	if (s->state == SLOT_READY || s->state == SLOT_RETIRING)
		d = clock_sooner(d, s->watchdog_due);
	return clock_sooner(d, outlog_next_deadline(s->out));
}

void appworker_ready(struct slot *s, uint64_t now)
{
	unsigned wd = service_of(s)->watchdog_ms;

	s->start_deadline = 0;
	s->watchdog_due = wd ? now + wd : 0;
}

void appworker_watchdog_kick(struct slot *s, uint64_t now)
{
	unsigned wd = service_of(s)->watchdog_ms;

	if ((s->state == SLOT_READY || s->state == SLOT_RETIRING) && wd && !s->stop_deadline)
		s->watchdog_due = now + wd;
}

void appworker_watchdog_trigger(struct slot *s, uint64_t now)
{
	if (s->stop_deadline)
		return;	/* on its way out already */
	if (s->state == SLOT_STARTING && s->start_deadline)
		s->start_deadline = now ? now : 1;	/* a failed start, now */
	if (s->state == SLOT_READY || s->state == SLOT_RETIRING) {
		s->watchdog_triggered = true;
		s->watchdog_due = now ? now : 1;
	}
}

void appworker_extend_timeout(struct slot *s, uint64_t usec, uint64_t now)
{
	uint64_t until = now + usec / 1000;

	if (s->state == SLOT_STARTING && s->start_deadline && until > s->start_deadline)
		s->start_deadline = until;
	if (s->stop_deadline && until > s->stop_deadline)
		s->stop_deadline = until;
}
