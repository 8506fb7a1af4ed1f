/* SPDX-License-Identifier: ISC */
/* exec.c - the exec handler: runs a program per connection, inetd/UCSPI style, and supervises it.
 *
 * The connection becomes the helper's stdin and stdout, the worker's pipe
 * into the log (helperlog.c), or /dev/null, its stderr. Nothing else
 * reaches it: every other descriptor of a worker is close-on-exec. The
 * worker keeps no copy of the connection, only a pidfd of the helper in its
 * epoll set, so the client sees EOF when the helper is done and the helper
 * cannot keep a listener alive. What the helper left running in its process
 * group is sent SIGTERM when it exits, and SIGKILL exec-kill-grace later;
 * until the group is gone the connection still counts against the limits
 * (the master, a subreaper, reaps what it leaves).
 *
 * A helper is started by spawn_start() (common/spawn.c) in its own process
 * group (so a timeout can end what it forked, and a "kill 0" in a helper
 * script cannot reach the worker), and dies with its worker. */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/pidfd.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/array.h"
#include "common/clock.h"
#include "common/log.h"
#include "common/spawn.h"
#include "conf/conf.h"
#include "handlers/handler.h"
#include "worker/conn.h"
#include "worker/dgram.h"
#include "worker/socket.h"

#define DEFAULT_PATH "PATH=/usr/local/bin:/usr/bin:/bin"
#define UCSPI_VARS 6		/* PROTO and at most five more */
#define REPLY_MAX 65536		/* the largest datagram a helper may answer with */
/* Room in the helper's stdout pipe for the largest reply and then some, so
 * that a helper is not blocked writing a reply it is allowed to give. */
#define REPLY_PIPE_SIZE (2 * REPLY_MAX)
#define REAP_WAIT_MS 1000	/* after SIGKILL, for the exit to show up */
#define CLOSE_REAP_WAIT_MS 100	/* the same, when the worker is closing everything */
#define GROUP_POLL_MS 20	/* how often a helper's leftovers are looked for */

struct exec_state {
	pid_t pid;		/* 0 once reaped */
	pid_t group;		/* the helper's process group, kept after it is reaped */
	unsigned signals_sent;	/* 0, then SIGTERM, then SIGKILL */
	int reply_fd;		/* datagram jobs: the helper's stdout; else -1 */
	bool started;		/* the helper ran (spawned, watched) */
	bool settled;		/* datagram jobs: replied, or counted as unanswered */
	bool ended_by_signal;
	bool lingering;		/* the helper is gone, what it left in its group is not */
	bool group_killed;	/* ...and was sent SIGKILL */
	uint64_t linger_until;	/* then SIGKILL; after it, give up */
};



/* "PREFIX" "IP=..." and "PREFIX" "PORT=..." from "1.2.3.4:80" or "[::1]:80",
 * the form every log line shows. */
static size_t ip_vars(const struct sockaddr_storage *ss, socklen_t len, const char *prefix,
		      char vars[][160])
{
	char text[ADDRESS_TEXT_MAX], *colon, *host = text;

	address_format((const struct sockaddr *)ss, len, text, sizeof(text));
	colon = strrchr(text, ':');
	if (!colon)
		return 0;
	*colon = '\0';
	if (text[0] == '[') {
		host = text + 1;
		colon[-1] = '\0';
	}
	snprintf(vars[0], 160, "%sIP=%s", prefix, host);
	snprintf(vars[1], 160, "%sPORT=%s", prefix, colon + 1);
	return 2;
}

bool exec_env_name_reserved(const char *name, size_t len)
{
	static const char *const prefixes[] = {
		"TCPLOCAL", "TCPREMOTE", "UDPLOCAL", "UDPREMOTE", "UNIXLOCAL", "UNIXREMOTE",
	};

	if (len == strlen("PROTO") && strncmp(name, "PROTO", len) == 0)
		return true;
	for (size_t i = 0; i < ARRAY_SIZE(prefixes); i++)
		if (len >= strlen(prefixes[i]) && strncmp(name, prefixes[i], strlen(prefixes[i])) == 0)
			return true;
	return false;
}

/* The UCSPI variables of tcpserver and unixserver, so their programs run
 * unchanged; for datagrams PROTO is UDP (UDPREMOTEIP, ...) or UNIX. */
static size_t ucspi_env(const struct conn *c, char vars[UCSPI_VARS][160])
{
	struct sockaddr_storage local, remote;
	socklen_t llen = sizeof(local), rlen = sizeof(remote);
	int fd = c->from_datagram ? c->origin.l->fd : c->fd;
	char text[ADDRESS_TEXT_MAX];
	size_t n = 0;

	if (getsockname(fd, (struct sockaddr *)&local, &llen) < 0)
		return 0;
	if (c->from_datagram) {
		remote = c->origin.from;
		rlen = c->origin.fromlen;
	} else if (getpeername(fd, (struct sockaddr *)&remote, &rlen) < 0) {
		rlen = 0;
	}
	if (local.ss_family == AF_UNIX) {
		address_format((struct sockaddr *)&local, llen, text, sizeof(text));
		snprintf(vars[n++], 160, "PROTO=UNIX");
		snprintf(vars[n++], 160, "UNIXLOCALPATH=%s", text + strlen("unix:"));
		if (c->from_datagram && rlen > sizeof(sa_family_t)) {
			address_format((struct sockaddr *)&remote, rlen, text, sizeof(text));
			snprintf(vars[n++], 160, "UNIXREMOTEPATH=%s", text + strlen("unix:"));
		}
		if (c->client.has_cred) {
			snprintf(vars[n++], 160, "UNIXREMOTEPID=%ld", (long)c->client.pid);
			snprintf(vars[n++], 160, "UNIXREMOTEEUID=%u", (unsigned)c->client.uid);
			snprintf(vars[n++], 160, "UNIXREMOTEEGID=%u", (unsigned)c->client.gid);
		}
		return n;
	}
	snprintf(vars[n++], 160, "PROTO=%s", c->from_datagram ? "UDP" : "TCP");
	n += ip_vars(&local, llen, c->from_datagram ? "UDPLOCAL" : "TCPLOCAL", vars + n);
	if (rlen > 0)
		n += ip_vars(&remote, rlen, c->from_datagram ? "UDPREMOTE" : "TCPREMOTE", vars + n);
	return n;
}

static void log_child_failure(const struct conn *c, const struct spawn_failure *f)
{
	const struct service *svc = c->svc;

	if (strcmp(f->step, "chdir") == 0)
		log_errno(LOG_ERR, f->err, "%s: exec helper: chdir failed for %s", c->peer,
			  svc->directory);
	else
		log_errno(LOG_ERR, f->err, "%s: exec helper: %s failed for %s", c->peer, f->step,
			  svc->exec_argv[0]);
}

/* The helper, in its own process group, killed with its worker, with the
 * connection (or the datagram and the reply pipe) on stdin and stdout. */
static pid_t spawn(const struct conn *c, int in, int out)
{
	const struct service *svc = c->svc;
	char vars[UCSPI_VARS][160];
	size_t nenv = 0, nvars = ucspi_env(c, vars), i;
	const struct spawn_fd fds[] = { { in, STDIN_FILENO }, { out, STDOUT_FILENO },
					{ c->stderr_fd, STDERR_FILENO } };
	struct spawn_plan plan = {
		.argv = svc->exec_argv, .directory = svc->directory,
		.fds = fds, .nfds = ARRAY_SIZE(fds),
		.new_group = true, .death_signal = SIGKILL,
	};
	struct spawn_failure failed;
	bool has_path = false;
	char **envp;
	pid_t pid;

	for (i = 0; svc->exec_env[i]; i++)
		has_path |= strncmp(svc->exec_env[i], "PATH=", 5) == 0;
	envp = calloc(i + nvars + 2, sizeof(*envp));
	if (!envp)
		return -1;
	if (!has_path)
		envp[nenv++] = (char *)DEFAULT_PATH;
	for (i = 0; svc->exec_env[i]; i++)
		envp[nenv++] = svc->exec_env[i];
	for (i = 0; i < nvars; i++)
		envp[nenv++] = vars[i];
	plan.envp = envp;
	pid = spawn_start(&plan, &failed);
	free(envp);
	if (pid > 0 && failed.step)
		log_child_failure(c, &failed);
	return pid;
}

/* A datagram job: the datagram (in c->fd) on stdin, stdout into a pipe
 * that is read once the helper has exited. */
static pid_t spawn_for_datagram(struct conn *c, struct exec_state *st)
{
	int out[2];
	pid_t pid;

	if (pipe2(out, O_CLOEXEC) < 0) {
		log_errno(LOG_ERR, errno, "%s: pipe2", c->peer);
		return -1;
	}
	if (fcntl(out[0], F_SETPIPE_SZ, REPLY_PIPE_SIZE) < 0)
		log_errno(LOG_DEBUG, errno, "%s: F_SETPIPE_SZ", c->peer);
	fcntl(out[0], F_SETFL, O_NONBLOCK);
	pid = spawn(c, c->fd, out[1]);
	close(out[1]);
	if (pid < 0)
		close(out[0]);
	else
		st->reply_fd = out[0];
	return pid;
}

/* A stream: the connection itself, made blocking again (accept4 made it
 * non-blocking for us; programs expect a blocking stdin). */
static pid_t spawn_for_stream(struct conn *c)
{
	int flags = fcntl(c->fd, F_GETFL);

	if (flags < 0 || fcntl(c->fd, F_SETFL, flags & ~O_NONBLOCK) < 0) {
		log_errno(LOG_ERR, errno, "%s: fcntl", c->peer);
		return -1;
	}
	return spawn(c, c->fd, c->fd);
}

static int exec_open(struct conn *c)
{
	struct exec_state *st = (struct exec_state *)c->state;
	const struct service *svc = c->svc;
	int pidfd;

	st->reply_fd = -1;
	st->pid = c->from_datagram ? spawn_for_datagram(c, st) : spawn_for_stream(c);
	if (st->pid < 0) {
		log_errno(LOG_ERR, errno, "%s: vfork for %s", c->peer, svc->exec_argv[0]);
		st->pid = 0;
		return HANDLER_CLOSE;
	}
	pidfd = pidfd_open(st->pid, 0);	/* close-on-exec by design */
	if (pidfd < 0) {
		log_errno(LOG_ERR, errno, "%s: pidfd_open %ld", c->peer, (long)st->pid);
		kill(-st->pid, SIGKILL);
		waitpid(st->pid, NULL, 0);	/* SIGKILL cannot be refused */
		st->pid = 0;
		return HANDLER_CLOSE;
	}
	/* The helper has the connection now; from here on we watch the helper. */
	close(c->fd);
	c->fd = pidfd;
	st->started = true;
	st->group = st->pid;
	log_debug("%s: started %s, pid %ld", c->peer, svc->exec_argv[0], (long)st->pid);
	return EPOLLIN;
}

/* Reaps the helper if it has exited; logs an exit that was not clean. */
static bool reap(struct conn *c)
{
	struct exec_state *st = (struct exec_state *)c->state;
	siginfo_t si = { 0 };

	if (!st->pid)
		return true;
	if (waitid(P_PIDFD, (id_t)c->fd, &si, WEXITED | WNOHANG | WNOWAIT) < 0) {
		log_errno(LOG_ERR, errno, "%s: waitid helper %ld", c->peer, (long)st->pid);
		st->pid = 0;
		return true;
	}
	if (si.si_pid == 0)
		return false;
	/* What the helper left running in its group would hold the client
	 * forever; it ends with the helper. The zombie still holds the group
	 * id here, so the signal cannot reach anyone else. */
	kill(-st->pid, SIGTERM);
	waitid(P_PIDFD, (id_t)c->fd, &si, WEXITED | WNOHANG);
	st->ended_by_signal = si.si_code != CLD_EXITED;
	if (si.si_code == CLD_EXITED && si.si_status != 0)
		log_warn("%s: helper %s (pid %ld) exited with status %d", c->peer,
			 c->svc->exec_argv[0], (long)st->pid, si.si_status);
	else if (si.si_code != CLD_EXITED)
		log_warn("%s: helper %s (pid %ld) killed by signal %d (%s)", c->peer,
			 c->svc->exec_argv[0], (long)st->pid, si.si_status, strsignal(si.si_status));
	st->pid = 0;
	return true;
}

/* A datagram job is over: what the helper wrote is the reply, if it ended
 * by itself and the reply fits in a datagram. */
static void settle_datagram(struct conn *c, bool finished)
{
	struct exec_state *st = (struct exec_state *)c->state;
	static char reply[REPLY_MAX + 1];
	size_t len = 0;
	ssize_t n;

	st->settled = true;
	if (!st->started) {
		dgram_unanswered(&c->origin, "the helper could not be started");
		return;
	}
	if (!finished) {
		dgram_unanswered(&c->origin, "helper killed: the worker is stopping");
		return;
	}
	if (st->ended_by_signal) {
		dgram_unanswered(&c->origin, "helper killed by a signal");
		return;
	}
	while (len < sizeof(reply) &&
	       ((n = read(st->reply_fd, reply + len, sizeof(reply) - len)) > 0 ||
		(n < 0 && errno == EINTR)))
		len += n > 0 ? (size_t)n : 0;
	if (len > REPLY_MAX)
		dgram_unanswered(&c->origin, "helper's reply is longer than 65536 bytes");
	else
		dgram_reply(&c->origin, reply, len, clock_now_ms());
}

/* Whether anything runs in the helper's process group. Its id is the
 * helper's pid, which no new process can take while the group has members;
 * the members that ended are reaped by the master (a subreaper), so the
 * group is soon gone once they all have. */
static bool group_alive(pid_t group)
{
	return kill(-group, 0) == 0 || errno == EPERM;
}

/* The helper has been reaped (and its group sent SIGTERM): a datagram job
 * answers now; the connection waits for what the helper left in its group,
 * which holds the client as long as it runs. */
static int helper_ended(struct conn *c)
{
	struct exec_state *st = (struct exec_state *)c->state;

	if (c->from_datagram && !st->settled)
		settle_datagram(c, true);
	if (!group_alive(st->group))
		return HANDLER_CLOSE;
	st->lingering = true;
	st->linger_until = clock_now_ms() + c->svc->exec_kill_grace_ms;
	log_debug("%s: helper %s (pid %ld) left processes in its group; waiting up to %u ms",
		  c->peer, c->svc->exec_argv[0], (long)st->group, c->svc->exec_kill_grace_ms);
	return HANDLER_TIMER;
}

/* After the helper: its group gets exec-kill-grace to end after SIGTERM,
 * then SIGKILL, then REAP_WAIT_MS to be gone. */
static int linger(struct conn *c)
{
	struct exec_state *st = (struct exec_state *)c->state;
	uint64_t now = clock_now_ms();

	if (!group_alive(st->group))
		return HANDLER_CLOSE;
	if (now < st->linger_until)
		return st->linger_until - now < GROUP_POLL_MS ? (int)(st->linger_until - now) :
								  GROUP_POLL_MS;
	if (!st->group_killed) {
		log_warn("%s: helper %s (pid %ld) has exited, what it left running in its group "
			 "outlived SIGTERM by %u ms: sending SIGKILL", c->peer, c->svc->exec_argv[0],
			 (long)st->group, c->svc->exec_kill_grace_ms);
		kill(-st->group, SIGKILL);
		st->group_killed = true;
		st->linger_until = now + REAP_WAIT_MS;
		return GROUP_POLL_MS;
	}
	log_warn("%s: what helper %s (pid %ld) left in its group is still there %u ms after "
		 "SIGKILL; no longer waiting for it", c->peer, c->svc->exec_argv[0],
		 (long)st->group, REAP_WAIT_MS);
	return HANDLER_CLOSE;
}

static int exec_ready(struct conn *c, uint32_t revents)
{
	struct exec_state *st = (struct exec_state *)c->state;

	(void)revents;
	if (st->lingering)
		return HANDLER_TIMER;	/* the reaped helper's pidfd stays readable */
	return reap(c) ? helper_ended(c) : EPOLLIN;
}

/* exec-timeout: SIGTERM to the helper's group, SIGKILL after the grace;
 * after the helper, the wait for its group. */
static int exec_expire(struct conn *c)
{
	struct exec_state *st = (struct exec_state *)c->state;

	if (st->lingering)
		return linger(c);
	if (reap(c)) {
		int next = helper_ended(c);

		return next == HANDLER_TIMER ? GROUP_POLL_MS : next;
	}
	switch (st->signals_sent++) {
	case 0:
		log_warn("%s: helper %s (pid %ld) still running after exec-timeout (%u ms): "
			 "sending SIGTERM", c->peer, c->svc->exec_argv[0], (long)st->pid,
			 c->svc->exec_timeout_ms);
		kill(-st->pid, SIGTERM);
		return c->svc->exec_kill_grace_ms ? (int)c->svc->exec_kill_grace_ms : 1;
	case 1:
		log_warn("%s: helper %s (pid %ld) ignored SIGTERM: sending SIGKILL", c->peer,
			 c->svc->exec_argv[0], (long)st->pid);
		kill(-st->pid, SIGKILL);
		return REAP_WAIT_MS;
	default:
		return HANDLER_CLOSE;	/* unkillable for now; the master reaps it later */
	}
}

/* The worker is quitting (or gave up waiting): the helper and its group go with it. */
static void exec_close(struct conn *c)
{
	struct exec_state *st = (struct exec_state *)c->state;
	bool finished = reap(c);

	if (!finished) {
		log_notice("%s: killing helper %s (pid %ld)", c->peer, c->svc->exec_argv[0],
			   (long)st->pid);
		kill(-st->pid, SIGKILL);
		/* Reap it ourselves if it dies in time (SIGKILL is not refused, only a
		 * process stuck in the kernel takes longer); the master gets it otherwise. */
		if (poll(&(struct pollfd){ .fd = c->fd, .events = POLLIN }, 1,
			 CLOSE_REAP_WAIT_MS) > 0)
			reap(c);
	} else if (st->lingering && !st->group_killed && group_alive(st->group)) {
		log_notice("%s: killing what helper %s (pid %ld) left running", c->peer,
			   c->svc->exec_argv[0], (long)st->group);
		kill(-st->group, SIGKILL);
	}
	if (c->from_datagram && !st->settled)
		settle_datagram(c, finished);
	if (st->reply_fd >= 0)
		close(st->reply_fd);
	st->reply_fd = -1;
}

static unsigned exec_timeout(const struct service *svc)
{
	return svc->exec_timeout_ms;
}

const struct handler handler_exec = {
	.name = "exec",
	.state_size = sizeof(struct exec_state),
	.open = exec_open,
	.ready = exec_ready,
	.close = exec_close,
	.expire = exec_expire,
	.timeout = exec_timeout,
	.wants_peer_credentials = true,
	.spawns = true,
};
