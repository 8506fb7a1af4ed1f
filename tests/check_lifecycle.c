/* SPDX-License-Identifier: ISC */
/* check_lifecycle.c - the daemon as a process: start refusals, graceful stop,
 * respawn and its throttling, signals, privileges, systemd notifications. */
#include "config.h"

#include <arpa/inet.h>
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/array.h"

#include "testlib.h"

/* A fast stop that does not wait for shutdown-timeout (1 h in the test). */
#define FAST_STOP_BOUND_MS 3000

static bool port_bindable(uint16_t port)
{
	struct sockaddr_in sin = { .sin_family = AF_INET, .sin_port = htons(port),
				   .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	int one = 1, fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	bool ok;

	/* SO_REUSEADDR as any restarted server sets it; no SO_REUSEPORT. */
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	ok = bind(fd, (struct sockaddr *)&sin, sizeof(sin)) == 0 && listen(fd, 1) == 0;
	close(fd);
	return ok;
}

static bool wait_port_bindable(uint16_t port, int timeout_ms)
{
	uint64_t deadline = tl_now_ms() + (uint64_t)timeout_ms;

	while (!port_bindable(port)) {
		if (tl_now_ms() >= deadline)
			return false;
		usleep(5000);
	}
	return true;
}

static bool path_exists(const char *dir, const char *name)
{
	char path[256];
	struct stat st;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	return lstat(path, &st) == 0;
}

/* SIGTERM: stop accepting, free the port at once, finish what is in flight,
 * remove the socket file and pidfile, exit 0. */
START_TEST(sigterm_drains_in_flight)
{
	uint16_t port = tl_free_port();
	struct daemon d;
	int fd;

	daemon_start_ready(&d, tl_echo_conf(port, 2, "pidfile = \"@DIR@/preforkd.pid\"\n"
					   "shutdown-timeout = 20s"), NULL);
	ck_assert(path_exists(d.dir, "preforkd.pid"));
	ck_assert(path_exists(d.dir, "echo.sock"));
	fd = tl_connect_tcp("127.0.0.1", port);
	ck_assert_int_ge(fd, 0);
	ck_assert(tl_echo(fd, "before", 6, 5000));
	ck_assert_int_eq(kill(d.pid, SIGTERM), 0);
	ck_assert(daemon_wait_notify(&d, "STOPPING=1", 5000));
	ck_assert(daemon_wait_log(&d, "stopping (SIGTERM), 1 connections in flight", 5000));
	/* Nobody listens any more (each worker drops its listeners on SIGTERM):
	 * a restarted server can bind while the old connection is still served. */
	ck_assert(wait_port_bindable(port, 5000));
	ck_assert_int_lt(tl_connect_tcp("127.0.0.1", port), 0);
	ck_assert(!path_exists(d.dir, "echo.sock"));
	/* ...while the client opened before the stop is still served. */
	ck_assert(tl_echo(fd, "during the stop", 15, 5000));
	ck_assert_int_eq(daemon_wait_exit(&d, 300), -1);	/* still draining */
	close(fd);
	ck_assert_int_eq(tl_exit_code(daemon_wait_exit(&d, 10000)), 0);
	ck_assert(!path_exists(d.dir, "preforkd.pid"));
	ck_assert(port_bindable(port));
	daemon_stop(&d);
}
END_TEST

/* A client that never finishes cannot hold the stop beyond shutdown-timeout,
 * and a second stop signal ends the wait at once. */
START_TEST(shutdown_timeout_and_second_signal)
{
	uint16_t port = tl_free_port();
	struct daemon d;
	uint64_t t0;
	int fd;

	daemon_start_ready(&d, tl_echo_conf(port, 1, "shutdown-timeout = 700ms"), NULL);
	fd = tl_connect_tcp("127.0.0.1", port);
	ck_assert(tl_echo(fd, "x", 1, 5000));
	t0 = tl_now_ms();
	kill(d.pid, SIGTERM);
	ck_assert_int_eq(tl_exit_code(daemon_wait_exit(&d, 10000)), 0);
	ck_assert_uint_ge(tl_now_ms() - t0, 600);
	ck_assert(daemon_log_contains(&d, "shutdown-timeout passed: closing every connection"));
	close(fd);
	daemon_stop(&d);

	daemon_start_ready(&d, tl_echo_conf(port, 1, "shutdown-timeout = 1h"), NULL);
	fd = tl_connect_tcp("127.0.0.1", port);
	ck_assert(tl_echo(fd, "x", 1, 5000));
	kill(d.pid, SIGQUIT);
	ck_assert(daemon_wait_log(&d, "stopping (Quit)", 5000));
	ck_assert(tl_echo(fd, "y", 1, 5000));	/* QUIT is graceful: still served */
	kill(d.pid, SIGTERM);
	ck_assert_int_eq(tl_exit_code(daemon_wait_exit(&d, 5000)), 0);
	ck_assert(daemon_log_contains(&d, "Terminated: closing every connection and stopping now"));
	close(fd);
	daemon_stop(&d);
}
END_TEST

/* SIGINT (^C) is the fast stop: connections are closed, not waited for. */
START_TEST(sigint_stops_fast)
{
	uint16_t port = tl_free_port();
	struct daemon d;
	uint64_t t0;
	char c;
	int fd;

	daemon_start_ready(&d, tl_echo_conf(port, 2, "shutdown-timeout = 1h"), NULL);
	fd = tl_connect_tcp("127.0.0.1", port);
	ck_assert(tl_echo(fd, "x", 1, 5000));
	t0 = tl_now_ms();
	kill(d.pid, SIGINT);
	ck_assert_int_eq(tl_exit_code(daemon_wait_exit(&d, 5000)), 0);
	ck_assert_uint_lt(tl_now_ms() - t0, FAST_STOP_BOUND_MS);
	/* Closed by the worker (EOF), not killed with the data unread. */
	ck_assert_int_eq(recv(fd, &c, 1, 0), 0);
	ck_assert(!daemon_log_contains(&d, "killing it"));
	ck_assert(port_bindable(port));
	close(fd);
	daemon_stop(&d);
}
END_TEST

/* SO_REUSEPORT would let the second daemon share the port silently. */
START_TEST(second_instance_refused)
{
	uint16_t port = tl_free_port();
	struct daemon a, b;
	char needle[96];

	daemon_start_ready(&a, tl_echo_conf(port, 1, ""), NULL);
	daemon_start(&b, tl_echo_conf(port, 1, ""), NULL);
	ck_assert_int_eq(tl_exit_code(daemon_wait_exit(&b, 10000)), 1);
	snprintf(needle, sizeof(needle), "bind 127.0.0.1:%u: address already in use", port);
	ck_assert_msg(daemon_log_contains(&b, needle), "log:\n%s", tl_read_file(b.log));
	ck_assert(!daemon_log_contains(&b, ": ready: "));
	daemon_stop(&b);
	/* The first one is untouched and gets every connection. */
	for (int i = 0; i < 20; i++)
		ck_assert(tl_echo_tcp(port, "a"));
	daemon_stop(&a);
}
END_TEST

START_TEST(foreign_reuseport_listener_refused)
{
	uint16_t port = tl_free_port();
	int foreign = tl_listen_loopback(port, true);
	struct daemon d;

	daemon_start(&d, tl_echo_conf(port, 1, ""), NULL);
	ck_assert_int_eq(tl_exit_code(daemon_wait_exit(&d, 10000)), 1);
	ck_assert(daemon_log_contains(&d, "address already in use by another process"));
	/* Nothing was stolen: all connections reach the foreign server. */
	for (int i = 0; i < 10; i++) {
		int c = tl_connect_tcp("127.0.0.1", port), s;

		ck_assert_int_ge(c, 0);
		s = accept(foreign, NULL, NULL);
		ck_assert_int_ge(s, 0);
		close(s);
		close(c);
	}
	close(foreign);
	daemon_stop(&d);
}
END_TEST

START_TEST(unix_socket_stale_and_live)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	char dir[64], conf[512];
	struct daemon d;
	int fd, c;

	tl_mkdtemp(dir, sizeof(dir));
	snprintf(sun.sun_path, sizeof(sun.sun_path), "%s/shared.sock", dir);
	snprintf(conf, sizeof(conf), "service echo {\n  listen = { \"unix:%s\" }\n"
		 "  handler = \"echo\"\n}\n", sun.sun_path);

	/* Stale: bound, closed, file left behind. */
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	ck_assert_int_eq(bind(fd, (struct sockaddr *)&sun, sizeof(sun)), 0);
	close(fd);
	daemon_start_ready(&d, conf, NULL);
	ck_assert(daemon_log_contains(&d, "removed stale socket file"));
	c = tl_connect_unix(sun.sun_path);
	ck_assert(tl_echo(c, "s", 1, 5000));
	close(c);
	daemon_stop(&d);
	ck_assert(!path_exists(dir, "shared.sock"));

	/* Live: someone listens there; refuse and leave it working. */
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	ck_assert_int_eq(bind(fd, (struct sockaddr *)&sun, sizeof(sun)), 0);
	ck_assert_int_eq(listen(fd, 4), 0);
	daemon_start(&d, conf, NULL);
	ck_assert_int_eq(tl_exit_code(daemon_wait_exit(&d, 10000)), 1);
	ck_assert(daemon_log_contains(&d, "another process is listening on this socket"));
	c = tl_connect_unix(sun.sun_path);
	ck_assert_int_ge(c, 0);
	close(c);
	close(fd);
	daemon_stop(&d);
	tl_rmtree(dir);
}
END_TEST

/* One socket file by two paths (a symlinked directory) passes the config
 * check; at start the second is preforkd's own socket, and is called that. */
START_TEST(unix_socket_file_reached_twice)
{
	char dir[64], real[128], link[128], conf[768];
	struct daemon d;

	tl_mkdtemp(dir, sizeof(dir));
	snprintf(real, sizeof(real), "%s/real", dir);
	snprintf(link, sizeof(link), "%s/link", dir);
	ck_assert_int_eq(mkdir(real, 0755), 0);
	ck_assert_int_eq(symlink(real, link), 0);
	snprintf(conf, sizeof(conf), "service a {\n  listen = { \"unix:%s/s.sock\" }\n"
		 "  handler = \"echo\"\n}\nservice b {\n  listen = { \"unix:%s/s.sock\" }\n"
		 "  handler = \"echo\"\n}\n", real, link);
	daemon_start(&d, conf, NULL);
	ck_assert_int_eq(tl_exit_code(daemon_wait_exit(&d, 10000)), 1);
	ck_assert_msg(daemon_log_contains(&d, "(service b): this is the socket file of unix:"),
		      "%s", tl_read_file(d.log));
	ck_assert(daemon_log_contains(&d, "which preforkd already listens on"));
	ck_assert(!daemon_log_contains(&d, "another process is listening"));
	daemon_stop(&d);
	tl_rmtree(real);
	tl_rmtree(dir);
}
END_TEST

/* Linux allows 107 bytes of abstract name; such a listener binds and serves. */
START_TEST(abstract_name_of_107_bytes_serves)
{
	char name[120], conf[512];
	struct daemon d;
	int fd;

	snprintf(name, sizeof(name), "@preforkd-%ld-", (long)getpid());
	memset(name + strlen(name), 'n', 108 - strlen(name));
	name[108] = '\0';
	snprintf(conf, sizeof(conf), "service a {\n  listen = { \"unix:%s\" }\n  handler = \"echo\"\n}\n",
		 name);
	daemon_start_ready(&d, conf, NULL);
	fd = tl_connect_unix(name);
	ck_assert_int_ge(fd, 0);
	ck_assert(tl_echo(fd, "107", 3, 5000));
	close(fd);
	daemon_stop(&d);
}
END_TEST

START_TEST(pidfile_locked)
{
	char dir[64], global[128], needle[64];
	struct daemon a, b;

	tl_mkdtemp(dir, sizeof(dir));
	snprintf(global, sizeof(global), "pidfile = \"%s/p.pid\"", dir);
	daemon_start_ready(&a, tl_echo_conf(tl_free_port(), 1, global), NULL);
	daemon_start(&b, tl_echo_conf(tl_free_port(), 1, global), NULL);
	ck_assert_int_eq(tl_exit_code(daemon_wait_exit(&b, 10000)), 1);
	snprintf(needle, sizeof(needle), "locked by another preforkd (pid %ld)", (long)a.pid);
	ck_assert_msg(daemon_log_contains(&b, needle), "log:\n%s", tl_read_file(b.log));
	daemon_stop(&b);
	ck_assert(path_exists(dir, "p.pid"));	/* still a's */
	daemon_stop(&a);
	ck_assert(!path_exists(dir, "p.pid"));
	tl_rmtree(dir);
}
END_TEST

START_TEST(killed_worker_is_respawned)
{
	uint16_t port = tl_free_port();
	struct daemon d;
	pid_t before[4], after[4];

	daemon_start_ready(&d, tl_echo_conf(port, 2, ""), NULL);
	ck_assert_uint_eq(daemon_workers(&d, before, 4), 2);
	ck_assert_int_eq(kill(before[0], SIGKILL), 0);
	ck_assert(daemon_wait_log(&d, "killed by signal 9", 5000));
	ck_assert(daemon_wait_log(&d, "respawning worker echo#", 5000));
	ck_assert(daemon_wait_workers(&d, 2, 5000));
	daemon_workers(&d, after, 4);
	ck_assert(after[0] != before[0] && after[1] != before[0]);
	for (int i = 0; i < 10; i++)
		ck_assert(tl_echo_tcp(port, "r"));
	daemon_stop(&d);
}
END_TEST

/* A worker that dies right after start, again and again, is respawned with a
 * growing delay and then given up; with no worker left the master exits 1. */
START_TEST(crash_loop_is_throttled)
{
	struct daemon d;
	pid_t pids[4], last = 0;
	uint64_t first_kill = 0;
	int kills = 0;

	daemon_start_ready(&d, tl_echo_conf(tl_free_port(), 1, ""), NULL);
	/* Exactly the five workers the throttle allows: a sixth would keep the
	 * master alive and fail the exit check below. */
	while (daemon_wait_exit(&d, 0) == -1 && kills < 5) {
		if (daemon_workers(&d, pids, 4) == 1 && pids[0] != last) {
			kill(pids[0], SIGKILL);
			last = pids[0];
			if (!kills++)
				first_kill = tl_now_ms();
		}
		usleep(2000);
	}
	ck_assert_int_eq(tl_exit_code(daemon_wait_exit(&d, 10000)), 1);
	/* 5 failures: delays 100 + 200 + 400 + 800 ms between them. */
	ck_assert_int_eq(kills, 5);
	ck_assert_uint_ge(tl_now_ms() - first_kill, 1400);
	ck_assert(daemon_log_contains(&d, "respawning worker echo#0 in 800 ms"));
	ck_assert(daemon_log_contains(&d, "failed 5 times in a row"));
	ck_assert(daemon_log_contains(&d, "no worker is left running"));
	daemon_stop(&d);
}
END_TEST

/* ^C in a terminal signals the whole process group: only the master acts. */
START_TEST(workers_ignore_terminal_signals)
{
	uint16_t port = tl_free_port();
	struct daemon d;
	pid_t before[2], after[2];

	daemon_start_ready(&d, tl_echo_conf(port, 2, ""), NULL);
	ck_assert_uint_eq(daemon_workers(&d, before, 2), 2);
	kill(before[0], SIGINT);
	kill(before[0], SIGQUIT);
	kill(before[1], SIGHUP);
	/* Signals to one process arrive in order: once the master has logged
	 * this one, the workers have had theirs. */
	kill(d.pid, SIGUSR1);
	ck_assert(daemon_wait_log(&d, "SIGUSR1: nothing to do", 5000));
	ck_assert(tl_echo_tcp(port, "still here"));
	ck_assert_uint_eq(daemon_workers(&d, after, 2), 2);
	ck_assert(after[0] == before[0] && after[1] == before[1]);
	ck_assert_int_eq(daemon_wait_exit(&d, 0), -1);
	daemon_stop(&d);
}
END_TEST

/* True once pid has no signal pending (an ignored one is dropped when it is
 * sent, one that kills is pending until it does), or is gone. */
static bool signals_taken(pid_t pid, int timeout_ms)
{
	uint64_t deadline = tl_now_ms() + (uint64_t)timeout_ms;
	char path[64];

	snprintf(path, sizeof(path), "/proc/%ld/status", (long)pid);
	while (tl_now_ms() < deadline) {
		char *status = tl_read_file(path);
		bool idle = !*status || (strstr(status, "SigPnd:\t0000000000000000") &&
					 strstr(status, "ShdPnd:\t0000000000000000"));

		free(status);
		if (idle)
			return true;
		usleep(2000);
	}
	return false;
}

/* "systemctl kill -s SIG" signals every process of the service: a signal
 * the master does not act on changes nothing, for the master or a worker.
 * (SIGUSR2 upgrades the master's binary, check_upgrade: to workers only.) */
START_TEST(stray_signals_drop_nothing)
{
	const int stray[] = { SIGUSR1, SIGUSR2, SIGALRM, SIGVTALRM, SIGPROF, SIGIO, SIGPWR,
			      SIGXFSZ, SIGPIPE, SIGSTKFLT, SIGRTMIN, SIGRTMIN + 5, SIGRTMAX };
	uint16_t port = tl_free_port();
	struct daemon d;
	pid_t before[2], after[2];
	int fd;

	daemon_start_ready(&d, tl_echo_conf(port, 2, ""), NULL);
	ck_assert_uint_eq(daemon_workers(&d, before, 2), 2);
	fd = tl_connect_tcp("127.0.0.1", port);
	ck_assert(tl_echo(fd, "x", 1, 5000));
	for (size_t i = 0; i < ARRAY_SIZE(stray); i++) {
		if (stray[i] != SIGUSR2)
			kill(d.pid, stray[i]);
		kill(before[0], stray[i]);
		kill(before[1], stray[i]);
	}
	kill(before[0], SIGHUP);	/* a worker leaves reloads to the master */
	/* Signals to one process arrive in order: once the master has logged
	 * this one, it has had the others. */
	kill(d.pid, SIGUSR1);
	ck_assert(daemon_wait_log(&d, "SIGUSR1: nothing to do", 5000));
	ck_assert(signals_taken(before[0], 5000) && signals_taken(before[1], 5000));
	ck_assert(tl_echo(fd, "in flight", 9, 5000));
	ck_assert(tl_echo_tcp(port, "new"));
	ck_assert_uint_eq(daemon_workers(&d, after, 2), 2);
	ck_assert(after[0] == before[0] && after[1] == before[1]);
	ck_assert(!daemon_log_contains(&d, "killed by signal"));
	close(fd);
	daemon_stop(&d);
}
END_TEST

/* A worker told to stop by someone else than its master (kill, an
 * operator): the master does not end that stop, so the worker does, two
 * seconds after shutdown-timeout, and is replaced. */
START_TEST(stray_sigterm_stop_ends_by_itself)
{
	uint16_t port = tl_free_port();
	struct daemon d;
	pid_t worker;
	uint64_t t0;
	char *rest;
	int fd;

	daemon_start_ready(&d, tl_echo_conf(port, 1, "shutdown-timeout = 1s"), NULL);
	fd = tl_connect_tcp("127.0.0.1", port);
	ck_assert(tl_echo(fd, "x", 1, 5000));
	ck_assert_uint_eq(daemon_workers(&d, &worker, 1), 1);
	t0 = tl_now_ms();
	kill(worker, SIGTERM);
	rest = tl_read_to_eof(fd, 6000, NULL);
	ck_assert_msg(rest, "the stop never ended");
	ck_assert_uint_ge(tl_now_ms() - t0, 2500);
	free(rest);
	close(fd);
	ck_assert(daemon_wait_log(&d, "shutdown-timeout passed and the master has not ended the stop",
				  2000));
	ck_assert(daemon_wait_log(&d, "respawning worker echo#0", 5000));
	ck_assert(daemon_wait_workers(&d, 1, 5000));
	ck_assert(tl_echo_tcp(port, "replaced"));
	daemon_stop(&d);
}
END_TEST

/* The soft and hard limits on descriptors in /proc/pid/limits. */
static bool open_files_limits(pid_t pid, long *soft, long *hard)
{
	char path[64], *text, *p;
	bool ok;

	snprintf(path, sizeof(path), "/proc/%ld/limits", (long)pid);
	text = tl_read_file(path);
	p = strstr(text, "Max open files");
	ok = p && sscanf(p + strlen("Max open files"), "%ld %ld", soft, hard) == 2;
	free(text);
	return ok;
}

/* The master raises its soft descriptor limit to the hard one, as systemd
 * advises services (its soft default is 1024), so a worker serves more
 * connections than the soft limit it was started with; an exec helper gets
 * the limit preforkd was started with back. */
START_TEST(descriptor_limit_raised)
{
	enum { CLIENTS = 600 };
	struct daemon_opts opts = { .nofile = 4096, .nofile_soft = 256 };
	uint16_t port = tl_free_port(), port2 = tl_free_port();
	pid_t workers[2];
	long soft, hard, helper_soft, helper_hard;
	int fds[CLIENTS];
	char conf[1024], *out;
	struct daemon d;

	tl_raise_nofile();
	snprintf(conf, sizeof(conf),
		 "service a {\n  listen = { \"127.0.0.1:%u\" }\n  handler = \"echo\"\n"
		 "  workers = 1\n  max-connections = 1500\n  idle-timeout = 0\n}\n"
		 "service x {\n  listen = { \"127.0.0.1:%u\" }\n  handler = \"exec\"\n"
		 "  exec = { \"/bin/grep\", \"Max open files\", \"/proc/self/limits\" }\n"
		 "  workers = 1\n}\n", port, port2);
	daemon_start_ready(&d, conf, &opts);
	ck_assert(open_files_limits(d.pid, &soft, &hard));
	ck_assert_int_eq(soft, 4096);
	ck_assert_uint_eq(daemon_workers(&d, workers, 2), 2);
	ck_assert(open_files_limits(workers[0], &soft, &hard) && soft == 4096);
	for (int i = 0; i < CLIENTS; i++) {
		fds[i] = tl_connect_tcp("127.0.0.1", port);
		ck_assert_int_ge(fds[i], 0);
		ck_assert_msg(tl_echo(fds[i], "x", 1, 3000), "client %d of %d not served", i + 1,
			      CLIENTS);
	}
	for (int i = 0; i < CLIENTS; i++)
		close(fds[i]);
	out = tl_read_to_eof(tl_connect_tcp("127.0.0.1", port2), 5000, NULL);
	ck_assert_ptr_nonnull(out);
	ck_assert_msg(sscanf(out, "Max open files %ld %ld", &helper_soft, &helper_hard) == 2, "%s", out);
	ck_assert_int_eq(helper_soft, 256);
	ck_assert_int_eq(helper_hard, 4096);
	free(out);
	daemon_stop(&d);
}
END_TEST

/* A connection's peer is named in its messages as it was before the text
 * became lazy: "127.0.0.1:P", "[::1]:P", "unix:@name" (asked of the socket). */
START_TEST(peer_named_in_messages)
{
	uint16_t port = tl_free_port();
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);
	char conf[512], want[192], name[64], path[192];
	struct daemon d;
	int fd;

	snprintf(conf, sizeof(conf),
		 "log-level = \"debug\"\nservice a {\n  listen = { \"127.0.0.1:%u\", \"[::1]:%u\", "
		 "\"unix:@DIR@/a.sock\" }\n  handler = \"echo\"\n  workers = 1\n"
		 "  idle-timeout = 200ms\n}\n", port, port);
	if (!tl_ipv6_loopback())
		snprintf(conf, sizeof(conf),
			 "log-level = \"debug\"\nservice a {\n  listen = { \"127.0.0.1:%u\", "
			 "\"unix:@DIR@/a.sock\" }\n  handler = \"echo\"\n  workers = 1\n"
			 "  idle-timeout = 200ms\n}\n", port);
	daemon_start_ready(&d, conf, NULL);
	fd = tl_connect_tcp("127.0.0.1", port);
	ck_assert(tl_echo(fd, "x", 1, 5000));
	ck_assert_int_eq(getsockname(fd, (struct sockaddr *)&ss, &len), 0);
	snprintf(want, sizeof(want), "127.0.0.1:%u: idle for 200 ms, closing",
		 ntohs(((struct sockaddr_in *)&ss)->sin_port));
	ck_assert_msg(daemon_wait_log(&d, want, 5000), "no \"%s\"", want);
	close(fd);
	if (tl_ipv6_loopback()) {
		fd = tl_connect_tcp("::1", port);
		ck_assert(tl_echo(fd, "x", 1, 5000));
		len = sizeof(ss);
		ck_assert_int_eq(getsockname(fd, (struct sockaddr *)&ss, &len), 0);
		snprintf(want, sizeof(want), "[::1]:%u: idle for 200 ms, closing",
			 ntohs(((struct sockaddr_in6 *)&ss)->sin6_port));
		ck_assert_msg(daemon_wait_log(&d, want, 5000), "no \"%s\"", want);
		close(fd);
	}
	snprintf(name, sizeof(name), "@preforkd-test-%ld", (long)getpid());
	snprintf(path, sizeof(path), "%s/a.sock", d.dir);
	fd = tl_connect_unix_from(name, path);
	ck_assert_int_ge(fd, 0);
	ck_assert(tl_echo(fd, "x", 1, 5000));
	snprintf(want, sizeof(want), "unix:%s: idle for 200 ms, closing", name);
	ck_assert_msg(daemon_wait_log(&d, want, 5000), "no \"%s\"", want);
	close(fd);
	daemon_stop(&d);
}
END_TEST

/* Workers must not outlive a dead master and keep the port. */
START_TEST(master_death_stops_workers)
{
	uint16_t port = tl_free_port();
	struct daemon d;
	pid_t workers[2];
	uint64_t deadline;

	daemon_start_ready(&d, tl_echo_conf(port, 2, ""), NULL);
	ck_assert_uint_eq(daemon_workers(&d, workers, 2), 2);
	kill(d.pid, SIGKILL);
	daemon_wait_exit(&d, 5000);
	deadline = tl_now_ms() + 5000;
	while ((kill(workers[0], 0) == 0 || kill(workers[1], 0) == 0) && tl_now_ms() < deadline)
		usleep(10000);
	ck_assert_int_ne(kill(workers[0], 0), 0);
	ck_assert_int_ne(kill(workers[1], 0), 0);
	ck_assert(wait_port_bindable(port, 5000));
	daemon_stop(&d);
}
END_TEST

/* No socket is bound to path any more, whether or not the file is still
 * there (the kernel lists bound unix sockets by name in /proc/net/unix). */
static bool unixgram_released(const char *path)
{
	char *table = tl_read_file("/proc/net/unix"), *line, *save = NULL;
	size_t plen = strlen(path);
	bool held = false;

	for (line = strtok_r(table, "\n", &save); line && !held; line = strtok_r(NULL, "\n", &save)) {
		size_t len = strlen(line);

		held = len > plen && strcmp(line + len - plen, path) == 0 && line[len - plen - 1] == ' ';
	}
	free(table);
	return !held;
}

/* The datagram sockets go at a stop's start like the stream listeners,
 * although a stream connection keeps its worker busy: a new instance can
 * start at once. */
START_TEST(stop_frees_datagram_ports_at_once)
{
	uint16_t port = tl_free_port();
	char conf[512], path[256];
	struct daemon d;
	uint64_t deadline;
	int fd;

	snprintf(conf, sizeof(conf),
		 "shutdown-timeout = 20s\n"
		 "service a {\n  listen = { \"127.0.0.1:%u\", \"udp:127.0.0.1:%u\", "
		 "\"unixgram:@DIR@/d.sock\" }\n  handler = \"echo\"\n  workers = 2\n}\n", port, port);
	daemon_start_ready(&d, conf, NULL);
	snprintf(path, sizeof(path), "%s/d.sock", d.dir);
	fd = tl_connect_tcp("127.0.0.1", port);
	ck_assert(tl_echo(fd, "x", 1, 5000));
	kill(d.pid, SIGTERM);
	ck_assert(daemon_wait_log(&d, "stopping (SIGTERM), 1 connections in flight", 5000));
	deadline = tl_now_ms() + 2000;
	while (!(tl_udp_bindable("127.0.0.1", port) && unixgram_released(path)) &&
	       tl_now_ms() < deadline)
		usleep(5000);
	ck_assert_msg(tl_udp_bindable("127.0.0.1", port), "udp:127.0.0.1:%u still held", port);
	ck_assert(unixgram_released(path));
	ck_assert(tl_echo(fd, "still served", 12, 5000));
	ck_assert_int_eq(daemon_wait_exit(&d, 200), -1);
	close(fd);
	ck_assert_int_eq(tl_exit_code(daemon_wait_exit(&d, 10000)), 0);
	daemon_stop(&d);
}
END_TEST

/* A SIGKILLed master: its workers let go of every socket at once (a
 * restarted preforkd can bind them, datagrams are not swallowed), then end
 * within shutdown-timeout by themselves, helpers included, even with a
 * client that never goes idle-timeout and a helper that never ends. */
START_TEST(orphaned_workers_release_and_end)
{
	uint16_t port = tl_free_port(), port2 = tl_free_port();
	char conf[1024], path[256];
	pid_t workers[2], helper[1] = { 0 }, exec_worker = 0;
	struct daemon d, again;
	uint64_t t0, deadline;
	bool reset;
	char *eof;
	int idle, busy;

	ck_assert_int_eq(prctl(PR_SET_CHILD_SUBREAPER, 1), 0);	/* the orphans come to us */
	snprintf(conf, sizeof(conf),
		 "shutdown-timeout = 3s\n"
		 "service a {\n  listen = { \"127.0.0.1:%u\", \"udp:127.0.0.1:%u\", "
		 "\"unixgram:@DIR@/d.sock\" }\n  handler = \"echo\"\n  workers = 1\n"
		 "  idle-timeout = 0\n}\n"
		 "service x {\n  listen = { \"127.0.0.1:%u\" }\n  handler = \"exec\"\n"
		 "  exec = { \"/bin/sleep\", \"1000\" }\n  workers = 1\n}\n", port, port, port2);
	daemon_start_ready(&d, conf, NULL);
	snprintf(path, sizeof(path), "%s/d.sock", d.dir);
	idle = tl_connect_tcp("127.0.0.1", port);
	ck_assert(tl_echo(idle, "x", 1, 5000));
	busy = tl_connect_tcp("127.0.0.1", port2);
	ck_assert_int_ge(busy, 0);
	ck_assert_uint_eq(daemon_workers(&d, workers, 2), 2);
	deadline = tl_now_ms() + 5000;
	while (!helper[0] && tl_now_ms() < deadline)
		for (int i = 0; i < 2; i++)
			if (tl_children(workers[i], helper, 1) == 1)
				exec_worker = workers[i];
	ck_assert_msg(helper[0], "the exec helper did not start");
	ck_assert_int_ne(exec_worker, 0);

	kill(d.pid, SIGKILL);
	ck_assert_int_ne(daemon_wait_exit(&d, 5000), -1);
	t0 = tl_now_ms();
	/* Let go at once, long before shutdown-timeout. */
	deadline = t0 + 1500;
	while (!(tl_udp_bindable("127.0.0.1", port) && unixgram_released(path) &&
		 port_bindable(port) && port_bindable(port2)) && tl_now_ms() < deadline)
		usleep(5000);
	ck_assert_msg(tl_udp_bindable("127.0.0.1", port), "udp:127.0.0.1:%u still held", port);
	ck_assert_msg(unixgram_released(path), "unixgram:%s still held", path);
	ck_assert(port_bindable(port) && port_bindable(port2));
	/* The idle client is served until shutdown-timeout, then closed. */
	ck_assert(tl_echo(idle, "y", 1, 5000));
	eof = tl_read_to_eof(idle, 6000, &reset);
	ck_assert_ptr_nonnull(eof);
	ck_assert_uint_ge(tl_now_ms() - t0, 2000);
	free(eof);
	/* Every worker and the helper are gone by then. */
	ck_assert(tl_wait_gone(workers[0], 3000));
	ck_assert(tl_wait_gone(workers[1], 3000));
	ck_assert(tl_wait_gone(helper[0], 3000));
	close(idle);
	close(busy);

	daemon_start_ready(&again, conf, NULL);
	ck_assert(tl_echo_tcp(port, "again"));
	daemon_stop(&again);
	daemon_stop(&d);
}
END_TEST

/* True when the real, effective, saved and filesystem ids on the "Uid:" or
 * "Gid:" line of pid's status are all want. */
static bool ids_are(pid_t pid, const char *field, long want)
{
	char path[64], *text, *p;
	long v[4];
	bool ok;

	snprintf(path, sizeof(path), "/proc/%ld/status", (long)pid);
	text = tl_read_file(path);
	p = strstr(text, field);
	ok = p && sscanf(p + strlen(field), "%ld %ld %ld %ld", &v[0], &v[1], &v[2], &v[3]) == 4 &&
	     v[0] == want && v[1] == want && v[2] == want && v[3] == want;
	free(text);
	return ok;
}

/* Started as root: the workers run as user and group, real and effective,
 * with no way back; the master keeps root, so a reload can switch users. */
START_TEST(workers_drop_privileges)
{
	struct passwd *pw;
	long nobody_uid, nobody_gid, daemon_uid, daemon_gid;
	uint16_t port = tl_free_port();
	struct daemon d;
	pid_t w[1];

	/* getpwnam() returns the same static buffer each time: copy. */
	pw = getpwnam("nobody");
	nobody_uid = pw ? (long)pw->pw_uid : -1;
	nobody_gid = pw ? (long)pw->pw_gid : -1;
	pw = getpwnam("daemon");
	daemon_uid = pw ? (long)pw->pw_uid : -1;
	daemon_gid = pw ? (long)pw->pw_gid : -1;
	if (geteuid() != 0 || nobody_uid < 0 || daemon_uid < 0) {
		fprintf(stderr, "workers_drop_privileges: needs root and users nobody and daemon; "
			"not run\n");
		return;
	}
	daemon_start_ready(&d, tl_echo_conf(port, 1, "user = \"nobody\""), NULL);
	ck_assert_uint_eq(daemon_workers(&d, w, 1), 1);
	ck_assert(ids_are(w[0], "Uid:", nobody_uid));
	ck_assert(ids_are(w[0], "Gid:", nobody_gid));
	ck_assert(ids_are(d.pid, "Uid:", 0));	/* the master keeps root */
	ck_assert(tl_echo_tcp(port, "n"));

	daemon_write_conf(&d, tl_echo_conf(port, 1, "user = \"daemon\""));
	ck_assert_int_eq(daemon_reload(&d, 10000), 1);
	ck_assert(daemon_wait_workers(&d, 1, 5000));
	ck_assert_uint_eq(daemon_workers(&d, w, 1), 1);
	ck_assert(ids_are(w[0], "Uid:", daemon_uid));
	ck_assert(ids_are(w[0], "Gid:", daemon_gid));
	ck_assert(tl_echo_tcp(port, "d"));
	daemon_stop(&d);
}
END_TEST

/* A service's own user: its workers, and the helpers they run, are that user. */
START_TEST(service_runs_as_its_own_user)
{
	struct passwd *pw = getpwnam("daemon");
	uint16_t port = tl_free_port(), port2 = tl_free_port();
	char conf[1024], *out;
	long daemon_uid = pw ? (long)pw->pw_uid : -1;
	struct daemon d;
	int fd;

	if (geteuid() != 0 || daemon_uid < 0 || !getpwnam("nobody")) {
		fprintf(stderr, "service_runs_as_its_own_user: needs root, nobody and daemon; not run\n");
		return;
	}
	snprintf(conf, sizeof(conf),
		 "user = \"nobody\"\n"
		 "service a {\n  listen = { \"127.0.0.1:%u\" }\n  handler = \"echo\"\n}\n"
		 "service b {\n  listen = { \"127.0.0.1:%u\" }\n  handler = \"exec\"\n"
		 "  exec = { \"/usr/bin/id\", \"-u\" }\n  user = \"daemon\"\n}\n", port, port2);
	daemon_start_ready(&d, conf, NULL);
	fd = tl_connect_tcp("127.0.0.1", port2);
	ck_assert_int_ge(fd, 0);
	out = tl_read_to_eof(fd, 5000, NULL);
	close(fd);
	ck_assert_ptr_nonnull(out);
	ck_assert_int_eq(strtol(out, NULL, 10), daemon_uid);
	ck_assert_str_ne(out, "");
	free(out);
	ck_assert(tl_echo_tcp(port, "a"));
	daemon_stop(&d);
}
END_TEST

/* Connections that say nothing, n of them, at most 100 open at once: with
 * idle-timeout = 1ms the worker closes each one, logging a debug line. True
 * when every one was closed within 5 s. */
static bool idle_closes(uint16_t port, unsigned n)
{
	int fds[100];

	while (n > 0) {
		unsigned k = n < 100 ? n : 100, opened = 0;
		bool ok = true;

		while (opened < k && (fds[opened] = tl_connect_tcp("127.0.0.1", port)) >= 0)
			opened++;
		for (unsigned i = 0; i < opened; i++) {
			char *got = ok ? tl_read_to_eof(fds[i], 5000, NULL) : NULL;

			ok = got != NULL;
			free(got);
			close(fds[i]);
		}
		if (!ok || opened < k)
			return false;
		n -= k;
	}
	return true;
}

/* Reads until needle has come (true) or timeout_ms have passed. */
static bool pipe_wait_for(struct tl_reader *t, const char *needle, int timeout_ms)
{
	uint64_t deadline = tl_now_ms() + (uint64_t)timeout_ms;

	for (;;) {
		struct pollfd pfd = { .fd = t->fd, .events = POLLIN };
		bool open = tl_reader_take(t);

		if (strstr(t->text, needle))
			return true;
		if (!open || tl_now_ms() >= deadline)
			return false;
		poll(&pfd, 1, 50);
	}
}

/* Each line whole: a time stamp, preforkd[, and one '\n' at its end. */
static void assert_whole_lines(const char *text)
{
	static const char shape[] = "9999-99-99 99:99:99.999 preforkd[";	/* 9: a digit */
	const char *line = text, *end;

	for (; (end = strchr(line, '\n')); line = end + 1)
		for (size_t i = 0; shape[i]; i++)
			ck_assert_msg(shape[i] == '9' ? line[i] >= '0' && line[i] <= '9'
						      : line[i] == shape[i],
				      "not a whole line: %.*s", (int)(end - line), line);
	ck_assert_msg(*line == '\0', "a line without its end: %s", line);
}

/* Lines of "N log lines dropped: stderr was not being read", summed. */
static unsigned long dropped_in(const char *text)
{
	static const char what[] = " log lines dropped: stderr was not being read\n";
	unsigned long sum = 0;

	for (const char *p = text; (p = strstr(p, what)); p += strlen(what)) {
		const char *digits = p;

		while (digits > text && digits[-1] >= '0' && digits[-1] <= '9')
			digits--;
		sum += strtoul(digits, NULL, 10);
	}
	return sum;
}

/* stderr a pipe that nobody reads: the worker serves on and the master stops
 * in time (neither waits in write()); what did not fit is counted, and the
 * count is logged once the pipe is read; every line arrives whole. */
START_TEST(stalled_stderr_blocks_nothing)
{
	enum { IDLE = 2000 };
	uint16_t port = tl_free_port();
	struct tl_reader t;
	char conf[1024], listen[64];
	struct daemon d;
	int p[2], queued;

	ck_assert_int_eq(pipe2(p, O_CLOEXEC), 0);
	ck_assert_int_ge(fcntl(p[0], F_SETPIPE_SZ, 4096), 4096);	/* a page: full soon */
	tl_reader_init(&t, p[0]);
	snprintf(listen, sizeof(listen), "\"127.0.0.1:%u\"", port);
	snprintf(conf, sizeof(conf), "log-level = \"debug\"\n%s",
		 tl_service_conf(listen, 1, "  idle-timeout = 1ms\n"));
	daemon_start_ready(&d, conf, &(struct daemon_opts){ .stderr_fd = p[1] });
	close(p[1]);

	ck_assert_msg(idle_closes(port, IDLE), "the worker stopped serving: stalled in a log write");
	ck_assert_int_eq(ioctl(t.fd, FIONREAD, &queued), 0);
	ck_assert_int_gt(queued, 4096 - 1024);	/* it really was full */
	ck_assert_msg(pipe_wait_for(&t, " log lines dropped: stderr was not being read\n", 5000),
		      "no count of dropped lines; read %zu bytes, ending in:\n%s", t.len,
		      t.text + (t.len > 1000 ? t.len - 1000 : 0));
	ck_assert_uint_eq(tl_count_in(t.text, ": idle for 1 ms, closing\n") +
			  dropped_in(t.text), IDLE);

	/* Stalled again, then stopped: the master must not wait for a reader. */
	ck_assert(idle_closes(port, IDLE / 2));
	ck_assert_int_eq(kill(d.pid, SIGTERM), 0);
	ck_assert_int_eq(tl_exit_code(daemon_wait_exit(&d, 5000)), 0);
	while (tl_reader_take(&t))
		;
	assert_whole_lines(t.text);
	tl_reader_free(&t);
	close(p[0]);
	daemon_stop(&d);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("lifecycle");
	TCase *tc = tcase_create("lifecycle");

	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, sigterm_drains_in_flight);
	tcase_add_test(tc, shutdown_timeout_and_second_signal);
	tcase_add_test(tc, sigint_stops_fast);
	tcase_add_test(tc, second_instance_refused);
	tcase_add_test(tc, foreign_reuseport_listener_refused);
	tcase_add_test(tc, unix_socket_stale_and_live);
	tcase_add_test(tc, unix_socket_file_reached_twice);
	tcase_add_test(tc, abstract_name_of_107_bytes_serves);
	tcase_add_test(tc, pidfile_locked);
	tcase_add_test(tc, killed_worker_is_respawned);
	tcase_add_test(tc, crash_loop_is_throttled);
	tcase_add_test(tc, workers_ignore_terminal_signals);
	tcase_add_test(tc, stray_signals_drop_nothing);
	tcase_add_test(tc, peer_named_in_messages);
	tcase_add_test(tc, stray_sigterm_stop_ends_by_itself);
	tcase_add_test(tc, descriptor_limit_raised);
	tcase_add_test(tc, master_death_stops_workers);
	tcase_add_test(tc, orphaned_workers_release_and_end);
	tcase_add_test(tc, stop_frees_datagram_ports_at_once);
	tcase_add_test(tc, workers_drop_privileges);
	tcase_add_test(tc, service_runs_as_its_own_user);
	tcase_add_test(tc, stalled_stderr_blocks_nothing);
	suite_add_tcase(s, tc);
	return tl_run_suite(s);
}
