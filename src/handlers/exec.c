/* SPDX-License-Identifier: ISC */
/* exec.c - the exec handler: runs a program per connection, inetd/UCSPI style, and supervises it.
 *
 * The connection becomes the helper's stdin and stdout, the worker's pipe
 * into the log (common/outlog.c), or /dev/null, its stderr. Nothing else
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

#include <arpa/inet.h>
#include <net/if.h>
#include <netdb.h>
#include <netinet/in.h>
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

#define UCSPI_VARS 6		/* PROTO and at most five more */
#define UCSPI_VAR_MAX 160	/* bytes of one, its NUL included */
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
	bool leftovers;		/* its group outlived it (SIGTERM reached someone) */
	bool lingering;		/* the helper is gone, what it left in its group is not */
	bool group_killed;	/* ...and was sent SIGKILL */
	uint64_t linger_until;	/* then SIGKILL; after it, give up */
	char peer[ADDRESS_TEXT_MAX];	/* the client, named in every message (the socket goes) */
};

static const char *peer_of(const struct conn *c)
{
	return ((const struct exec_state *)c->state)->peer;
}

/* NAME=value into var (UCSPI_VAR_MAX bytes), without printf: a helper's
 * environment is made for every connection. */
static void put_var(char *var, const char *prefix, const char *name, const char *value)
{
	size_t n = 0;

	for (const char *parts[] = { prefix, name, "=", value }, **p = parts;
	     p < parts + ARRAY_SIZE(parts); p++)
		for (const char *q = *p; *q && n < UCSPI_VAR_MAX - 1; q++)
			var[n++] = *q;
	var[n] = '\0';
}

static void put_number(char *var, const char *prefix, const char *name, unsigned long v)
{
	char digits[24], *d = digits + sizeof(digits);

	*--d = '\0';
	do
		*--d = (char)('0' + v % 10);
	while (v /= 10);
	put_var(var, prefix, name, d);
}

/* PREFIX"IP" and PREFIX"PORT" of an IP socket address: IPv4 (also a client
 * of a dual-stack socket) in dotted form, IPv6 without brackets. */
static size_t ip_vars(const struct sockaddr_storage *ss, socklen_t len, const char *prefix,
		      char vars[][UCSPI_VAR_MAX])
{
	char host[INET6_ADDRSTRLEN + IF_NAMESIZE + 2];
	uint16_t port;

	if (ss->ss_family == AF_INET) {
		const struct sockaddr_in *sin = (const struct sockaddr_in *)ss;

		inet_ntop(AF_INET, &sin->sin_addr, host, sizeof(host));
		port = ntohs(sin->sin_port);
	} else if (ss->ss_family == AF_INET6) {
		const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)ss;

		if (IN6_IS_ADDR_V4MAPPED(&sin6->sin6_addr))
			inet_ntop(AF_INET, &sin6->sin6_addr.s6_addr[12], host, sizeof(host));
		else if (sin6->sin6_scope_id == 0 ||
			 getnameinfo((const struct sockaddr *)ss, len, host, sizeof(host), NULL, 0,
				     NI_NUMERICHOST) != 0)
			inet_ntop(AF_INET6, &sin6->sin6_addr, host, sizeof(host));
		port = ntohs(sin6->sin6_port);
	} else {
		return 0;
	}
	put_var(vars[0], prefix, "IP", host);
	put_number(vars[1], prefix, "PORT", port);
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

/* Where the client reached us. The listener's own address unless it takes
 * every local address (0.0.0.0, [::], "*:P"): then the connection says. */
static socklen_t local_address(const struct conn *c, struct sockaddr_storage *ss)
{
	const struct address *a = &c->via->addr;
	socklen_t len = sizeof(*ss);

	if (c->origin || a->family == AF_UNIX || !address_is_any(a)) {
		memcpy(ss, &a->sa, a->len);
		return a->len;
	}
	return getsockname(c->fd, (struct sockaddr *)ss, &len) == 0 ? len : 0;
}

/* The UCSPI variables of tcpserver and unixserver, so their programs run
 * unchanged; for datagrams PROTO is UDP (UDPREMOTEIP, ...) or UNIX. */
static size_t ucspi_env(const struct conn *c, char vars[UCSPI_VARS][UCSPI_VAR_MAX])
{
	struct sockaddr_storage local, remote;
	socklen_t llen = local_address(c, &local), rlen;
	const bool dgram = c->origin != NULL;
	char text[ADDRESS_TEXT_MAX];
	size_t n = 0;

	if (!llen)
		return 0;
	if (dgram) {
		remote = c->origin->from;
		rlen = c->origin->fromlen;
	} else {
		rlen = access_peer_sockaddr(&c->client, &remote);
	}
	if (local.ss_family == AF_UNIX) {
		address_format((struct sockaddr *)&local, llen, text, sizeof(text));
		put_var(vars[n++], "", "PROTO", "UNIX");
		put_var(vars[n++], "UNIXLOCAL", "PATH", text + strlen("unix:"));
		if (dgram && rlen > sizeof(sa_family_t)) {
			address_format((struct sockaddr *)&remote, rlen, text, sizeof(text));
			put_var(vars[n++], "UNIXREMOTE", "PATH", text + strlen("unix:"));
		}
		if (c->client.has_cred) {
			put_number(vars[n++], "UNIXREMOTE", "PID", (unsigned long)c->client.pid);
			put_number(vars[n++], "UNIXREMOTE", "EUID", c->client.uid);
			put_number(vars[n++], "UNIXREMOTE", "EGID", c->client.gid);
		}
		return n;
	}
	put_var(vars[n++], "", "PROTO", dgram ? "UDP" : "TCP");
	n += ip_vars(&local, llen, dgram ? "UDPLOCAL" : "TCPLOCAL", vars + n);
	if (rlen > 0)
		n += ip_vars(&remote, rlen, dgram ? "UDPREMOTE" : "TCPREMOTE", vars + n);
	return n;
}

static void log_child_failure(const struct conn *c, const struct spawn_failure *f)
{
	const struct service *svc = c->svc;

	if (strcmp(f->step, "chdir") == 0)
		log_errno(LOG_ERR, f->err, "%s: exec helper: chdir failed for %s", peer_of(c),
			  svc->directory);
	else
		log_errno(LOG_ERR, f->err, "%s: exec helper: %s failed for %s", peer_of(c), f->step,
			  svc->exec_argv[0]);
}

/* Our pid, for the helpers' check that their parent is alive (a worker
 * never forks another process that runs this code). */
static pid_t worker_pid(void)
{
	static pid_t pid;

	if (!pid)
		pid = getpid();
	return pid;
}

/* The helper, in its own process group, killed with its worker, with the
 * connection (or the datagram and the reply pipe) on stdin and stdout; its
 * pidfd in *pidfd. */
static pid_t spawn(const struct conn *c, int in, int out, int *pidfd)
{
	const struct service *svc = c->svc;
	char vars[UCSPI_VARS][UCSPI_VAR_MAX];
	size_t nenv = 0, nvars = ucspi_env(c, vars), i;
	const struct spawn_fd fds[] = { { in, STDIN_FILENO }, { out, STDOUT_FILENO },
					{ c->stderr_fd, STDERR_FILENO } };
	struct spawn_plan plan = {
		.argv = svc->exec_argv, .directory = svc->directory,
		.fds = fds, .nfds = ARRAY_SIZE(fds),
		.new_group = true, .death_signal = SIGKILL, .parent = worker_pid(),
		.signals_default = true,	/* the worker blocks, it ignores nothing */
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
		envp[nenv++] = (char *)SPAWN_DEFAULT_PATH;
	for (i = 0; svc->exec_env[i]; i++)
		envp[nenv++] = svc->exec_env[i];
	for (i = 0; i < nvars; i++)
		envp[nenv++] = vars[i];
	plan.envp = envp;
	pid = spawn_start_pidfd(&plan, &failed, pidfd);
	free(envp);
	if (pid > 0 && failed.step)
		log_child_failure(c, &failed);
	return pid;
}

/* A datagram job: the datagram (in c->fd) on stdin, stdout into a pipe
 * that is read once the helper has exited. */
static pid_t spawn_for_datagram(struct conn *c, struct exec_state *st, int *pidfd)
{
	int out[2];
	pid_t pid;

	if (pipe2(out, O_CLOEXEC) < 0) {
		log_errno(LOG_ERR, errno, "%s: pipe2", peer_of(c));
		return -1;
	}
	if (fcntl(out[0], F_SETPIPE_SZ, REPLY_PIPE_SIZE) < 0)
		log_errno(LOG_DEBUG, errno, "%s: F_SETPIPE_SZ", peer_of(c));
	fcntl(out[0], F_SETFL, O_NONBLOCK);
	pid = spawn(c, c->fd, out[1], pidfd);
	close(out[1]);
	if (pid < 0)
		close(out[0]);
	else
		st->reply_fd = out[0];
	return pid;
}

/* A stream: the connection itself, which a worker of a spawning handler
 * accepts blocking, as programs expect their stdin. */
static pid_t spawn_for_stream(struct conn *c, int *pidfd)
{
	return spawn(c, c->fd, c->fd, pidfd);
}

static int exec_open(struct conn *c)
{
	struct exec_state *st = (struct exec_state *)c->state;
	const struct service *svc = c->svc;
	int pidfd;

	st->reply_fd = -1;
	conn_peer_text(c, st->peer);
	st->pid = c->origin ? spawn_for_datagram(c, st, &pidfd) : spawn_for_stream(c, &pidfd);
	if (st->pid < 0) {
		log_errno(LOG_ERR, errno, "%s: clone for %s", peer_of(c), svc->exec_argv[0]);
		st->pid = 0;
		conn_count(c, COUNTER_HELPERS_FAILED);
		return HANDLER_CLOSE;
	}
	conn_count(c, COUNTER_HELPERS_STARTED);
	/* The helper has the connection now; from here on we watch the helper. */
	close(c->fd);
	c->fd = pidfd;
	st->started = true;
	st->group = st->pid;
	log_debug("%s: started %s, pid %ld", peer_of(c), svc->exec_argv[0], (long)st->pid);
	return EPOLLIN;
}

/* Reaps the helper if it has exited; logs an exit that was not clean. */
static bool reap(struct conn *c)
{
	struct exec_state *st = (struct exec_state *)c->state;
	siginfo_t si = { 0 };

	if (!st->pid)
		return true;
	if (waitid(P_PIDFD, (id_t)c->fd, &si, WEXITED | WNOHANG) < 0) {
		log_errno(LOG_ERR, errno, "%s: waitid helper %ld", peer_of(c), (long)st->pid);
		st->pid = 0;
		return true;
	}
	if (si.si_pid == 0)
		return false;
	/* What the helper left running in its group would hold the client
	 * forever; it is told to end with the helper, and whether the signal
	 * reached anyone says whether there is anything to wait for. The group
	 * keeps its id while it has members: with none, kill() finds no one
	 * (a new group of that id would take a wrap of the pids in between). */
	st->leftovers = kill(-st->group, SIGTERM) == 0 || errno == EPERM;
	st->ended_by_signal = si.si_code != CLD_EXITED;
	if (si.si_code != CLD_EXITED || si.si_status != 0)
		conn_count(c, COUNTER_HELPERS_FAILED);
	if (si.si_code == CLD_EXITED && si.si_status != 0)
		log_warn("%s: helper %s (pid %ld) exited with status %d", peer_of(c),
			 c->svc->exec_argv[0], (long)st->pid, si.si_status);
	else if (si.si_code != CLD_EXITED)
		log_warn("%s: helper %s (pid %ld) killed by signal %d (%s)", peer_of(c),
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
		dgram_unanswered(c->origin, "the helper could not be started");
		return;
	}
	if (!finished) {
		dgram_unanswered(c->origin, "helper killed: the worker is stopping");
		return;
	}
	if (st->ended_by_signal) {
		dgram_unanswered(c->origin, "helper killed by a signal");
		return;
	}
	while (len < sizeof(reply) &&
	       ((n = read(st->reply_fd, reply + len, sizeof(reply) - len)) > 0 ||
		(n < 0 && errno == EINTR)))
		len += n > 0 ? (size_t)n : 0;
	if (len > REPLY_MAX)
		dgram_unanswered(c->origin, "helper's reply is longer than 65536 bytes");
	else
		dgram_reply(c->origin, reply, len, clock_now_ms());
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

	if (c->origin && !st->settled)
		settle_datagram(c, true);
	if (!st->leftovers)
		return HANDLER_CLOSE;
	st->lingering = true;
	st->linger_until = clock_now_ms() + c->svc->exec_kill_grace_ms;
	log_debug("%s: helper %s (pid %ld) left processes in its group; waiting up to %u ms",
		  peer_of(c), c->svc->exec_argv[0], (long)st->group, c->svc->exec_kill_grace_ms);
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
			 "outlived SIGTERM by %u ms: sending SIGKILL", peer_of(c), c->svc->exec_argv[0],
			 (long)st->group, c->svc->exec_kill_grace_ms);
		kill(-st->group, SIGKILL);
		st->group_killed = true;
		st->linger_until = now + REAP_WAIT_MS;
		return GROUP_POLL_MS;
	}
	log_warn("%s: what helper %s (pid %ld) left in its group is still there %u ms after "
		 "SIGKILL; no longer waiting for it", peer_of(c), c->svc->exec_argv[0],
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
			 "sending SIGTERM", peer_of(c), c->svc->exec_argv[0], (long)st->pid,
			 c->svc->exec_timeout_ms);
		kill(-st->pid, SIGTERM);
		return c->svc->exec_kill_grace_ms ? (int)c->svc->exec_kill_grace_ms : 1;
	case 1:
		log_warn("%s: helper %s (pid %ld) ignored SIGTERM: sending SIGKILL", peer_of(c),
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
		log_notice("%s: killing helper %s (pid %ld)", peer_of(c), c->svc->exec_argv[0],
			   (long)st->pid);
		kill(-st->pid, SIGKILL);
		/* Reap it ourselves if it dies in time (SIGKILL is not refused, only a
		 * process stuck in the kernel takes longer); the master gets it otherwise. */
		if (poll(&(struct pollfd){ .fd = c->fd, .events = POLLIN }, 1,
			 CLOSE_REAP_WAIT_MS) > 0)
			reap(c);
	} else if (st->lingering && !st->group_killed && group_alive(st->group)) {
		log_notice("%s: killing what helper %s (pid %ld) left running", peer_of(c),
			   c->svc->exec_argv[0], (long)st->group);
		kill(-st->group, SIGKILL);
	}
	if (c->origin && !st->settled)
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
