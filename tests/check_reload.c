/* SPDX-License-Identifier: ISC */
/* check_reload.c - SIGHUP reloads of the real daemon: under load, with broken
 * configs, with every kind of change, failing and queued. */
#include "config.h"

#include <check.h>
#include <errno.h>
#include <pthread.h>
#include <pwd.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "testlib.h"

#define LOAD_THREADS 4
#define RELOADS_UNDER_LOAD 25

static const char *echo_conf(uint16_t port, unsigned workers, const char *global)
{
	static char text[4096];

	snprintf(text, sizeof(text), "shutdown-timeout = 30s\n%s", global);
	return tl_echo_conf(port, workers, text);
}

static bool same_pids(const pid_t *a, size_t na, const pid_t *b, size_t nb)
{
	if (na != nb)
		return false;
	for (size_t i = 0; i < na; i++) {
		bool found = false;

		for (size_t j = 0; j < nb; j++)
			found |= a[i] == b[j];
		if (!found)
			return false;
	}
	return true;
}

static bool pid_gone(const struct daemon *d, pid_t pid, int timeout_ms)
{
	uint64_t deadline = tl_now_ms() + (uint64_t)timeout_ms;

	for (;;) {
		pid_t pids[64];
		size_t n = daemon_workers(d, pids, 64);
		bool found = false;

		for (size_t i = 0; i < n; i++)
			found |= pids[i] == pid;
		if (!found)
			return true;
		if (tl_now_ms() >= deadline)
			return false;
		usleep(10000);
	}
}

/* Reload after reload while clients keep connecting over TCP and Unix and
 * one connection stays open throughout: not one refused, reset or lost. */
START_TEST(reload_under_load)
{
	uint16_t port = tl_free_port();
	struct tl_load loads[LOAD_THREADS];
	atomic_bool stop = false;
	unsigned total = 0;
	struct daemon d;
	int held;

	tl_raise_nofile();
	daemon_start_ready(&d, echo_conf(port, 2, ""), NULL);
	held = tl_connect_tcp("127.0.0.1", port);
	ck_assert(tl_echo(held, "opened before", 13, 5000));
	for (int i = 0; i < LOAD_THREADS; i++) {
		loads[i] = (struct tl_load){ .port = port, .stop = &stop,
					     .unix_path = i % 2 ? daemon_path(&d, "echo.sock") : NULL };
		tl_load_start(&loads[i]);
	}
	for (int r = 0; r < RELOADS_UNDER_LOAD; r++) {
		/* The new generation differs from the old one in shape. */
		daemon_write_conf(&d, echo_conf(port, 2 + (unsigned)r % 3, ""));
		ck_assert_msg(daemon_reload(&d, 15000) == 1, "reload %d failed; log:\n%s", r,
			      tl_read_file(d.log));
		ck_assert(tl_echo(held, "still here", 10, 5000));
	}
	/* Thousands of connections, not a handful, saw the reloads. */
	for (uint64_t t0 = tl_now_ms(); tl_now_ms() - t0 < 20000;) {
		total = 0;
		for (int i = 0; i < LOAD_THREADS; i++)
			total += loads[i].ok;
		if (total >= 2000)
			break;
		usleep(20000);
	}
	total = tl_loads_finish(loads, LOAD_THREADS);
	fprintf(stderr, "reload_under_load: %d reloads, %u connections served, none failed\n",
		RELOADS_UNDER_LOAD, total);
	ck_assert_uint_ge(total, 2000);
	ck_assert_uint_eq(daemon_log_count(&d, "reload ok"), RELOADS_UNDER_LOAD);
	ck_assert(tl_echo(held, "closing", 7, 5000));
	close(held);
	daemon_stop(&d);
}
END_TEST

/* A connection opened before a reload is finished by the old worker, which
 * exits once that client is done. */
START_TEST(in_flight_connection_outlives_reload)
{
	uint16_t port = tl_free_port();
	struct daemon d;
	pid_t old[1], now[4];
	int fd;

	daemon_start_ready(&d, echo_conf(port, 1, ""), NULL);
	ck_assert_uint_eq(daemon_workers(&d, old, 1), 1);
	fd = tl_connect_tcp("127.0.0.1", port);
	ck_assert(tl_echo(fd, "before", 6, 5000));
	ck_assert_int_eq(daemon_reload(&d, 10000), 1);
	ck_assert(tl_echo(fd, "after the reload", 16, 5000));
	/* Both generations run while the old one finishes. */
	ck_assert_uint_eq(daemon_workers(&d, now, 4), 2);
	ck_assert(tl_echo_tcp(port, "new client"));
	close(fd);
	ck_assert(pid_gone(&d, old[0], 5000));
	ck_assert(daemon_wait_workers(&d, 1, 5000));
	daemon_stop(&d);
}
END_TEST

/* A config with an error is refused whole: same workers, same listeners,
 * the error with file and line in the log and in STATUS=. */
START_TEST(broken_config_keeps_old_one)
{
	uint16_t port = tl_free_port();
	struct daemon d;
	pid_t before[2], after[2];
	char where[300];

	daemon_start_ready(&d, echo_conf(port, 2, ""), NULL);
	ck_assert_uint_eq(daemon_workers(&d, before, 2), 2);
	daemon_write_conf(&d, "service echo {\n  listen = { \"127.0.0.1:1\" }\n  workers = 0\n}\n");
	ck_assert_int_eq(daemon_reload(&d, 10000), 0);
	snprintf(where, sizeof(where), "reload failed: %s:3: option 'workers'", d.conf);
	ck_assert_msg(daemon_count_notify(&d, where) == 1, "no STATUS with %s in:\n%s", where,
		      d.notified);
	ck_assert(daemon_log_contains(&d, "still serving the previous configuration"));
	ck_assert_uint_eq(daemon_workers(&d, after, 2), 2);
	ck_assert(same_pids(before, 2, after, 2));
	ck_assert(tl_echo_tcp(port, "still the old config"));
	ck_assert(tl_echo_unix(daemon_path(&d, "echo.sock"), "and its unix socket"));
	ck_assert_int_eq(daemon_wait_exit(&d, 0), -1);

	/* Fixed, it applies. */
	daemon_write_conf(&d, echo_conf(port, 1, ""));
	ck_assert_int_eq(daemon_reload(&d, 10000), 1);
	ck_assert(daemon_wait_workers(&d, 1, 5000));
	daemon_stop(&d);
}
END_TEST

/* A config replaced by a FIFO: opening it for reading would wait for a
 * writer and stall the master's loop. The reload fails at once instead. */
START_TEST(reload_onto_fifo_fails_cleanly)
{
	uint16_t port = tl_free_port();
	struct daemon d;
	char where[300];

	daemon_start_ready(&d, echo_conf(port, 1, ""), NULL);
	ck_assert_int_eq(unlink(d.conf), 0);
	ck_assert_int_eq(mkfifo(d.conf, 0600), 0);
	ck_assert_int_eq(daemon_reload(&d, 5000), 0);
	snprintf(where, sizeof(where), "reload failed: %s: not a regular file", d.conf);
	ck_assert_msg(daemon_count_notify(&d, where) == 1, "no STATUS with %s in:\n%s", where,
		      d.notified);
	ck_assert(tl_echo_tcp(port, "still serving"));
	ck_assert(tl_echo_unix(daemon_path(&d, "echo.sock"), "over unix too"));
	daemon_stop(&d);
}
END_TEST

/* Add a service, remove one, change workers and listen addresses: each
 * takes effect, a kept listener is the very same socket, a removed unix
 * socket file disappears. */
START_TEST(reload_applies_every_change)
{
	uint16_t p1 = tl_free_port(), p2 = tl_free_port(), p3 = tl_free_port();
	unsigned long inode;
	struct daemon d;
	struct stat st;
	char conf[2048];

	snprintf(conf, sizeof(conf),
		 "service a {\n listen = { \"127.0.0.1:%u\", \"unix:@DIR@/a.sock\" }\n"
		 " handler = \"echo\"\n workers = 2\n}\n"
		 "service b {\n listen = { \"127.0.0.1:%u\" }\n handler = \"echo\"\n workers = 1\n}\n",
		 p1, p2);
	daemon_start_ready(&d, conf, NULL);
	ck_assert_uint_eq(daemon_workers(&d, (pid_t[8]){ 0 }, 8), 3);
	ck_assert(tl_echo_tcp(p2, "b"));
	inode = tl_listen_inode(p1);
	ck_assert_uint_ne(inode, 0);

	snprintf(conf, sizeof(conf),
		 "service a {\n listen = { \"127.0.0.1:%u\", \"127.0.0.1:%u\" }\n"
		 " handler = \"echo\"\n workers = 3\n}\n"
		 "service c {\n listen = { \"unix:@DIR@/c.sock\" }\n handler = \"echo\"\n workers = 1\n}\n",
		 p1, p3);
	daemon_write_conf(&d, conf);
	ck_assert_int_eq(daemon_reload(&d, 10000), 1);
	ck_assert(daemon_wait_workers(&d, 4, 5000));
	ck_assert_uint_eq(tl_listen_inode(p1), inode);		/* not closed, not rebound */
	ck_assert(tl_echo_tcp(p1, "kept"));
	ck_assert(tl_echo_tcp(p3, "added address"));
	ck_assert(tl_echo_unix(daemon_path(&d, "c.sock"), "added service"));
	ck_assert_int_lt(tl_connect_tcp("127.0.0.1", p2), 0);	/* removed service */
	ck_assert_int_eq(errno, ECONNREFUSED);
	ck_assert_int_lt(lstat(daemon_path(&d, "a.sock"), &st), 0);	/* removed address */
	ck_assert_int_lt(tl_connect_unix(daemon_path(&d, "a.sock")), 0);
	ck_assert(daemon_count_notify(&d, "STATUS=2 services, 4 of 4 workers ready") >= 1);
	daemon_stop(&d);
}
END_TEST

/* A kept unix socket file takes the new socket-mode. */
START_TEST(reload_applies_socket_mode)
{
	struct daemon d;
	struct stat st;
	char conf[1024];

	snprintf(conf, sizeof(conf), "service echo {\n listen = { \"unix:@DIR@/m.sock\" }\n"
		 " handler = \"echo\"\n socket-mode = %s\n}\n", "666");
	daemon_start_ready(&d, conf, NULL);
	ck_assert_int_eq(lstat(daemon_path(&d, "m.sock"), &st), 0);
	ck_assert_uint_eq(st.st_mode & 0777, 0666);
	snprintf(conf, sizeof(conf), "service echo {\n listen = { \"unix:@DIR@/m.sock\" }\n"
		 " handler = \"echo\"\n socket-mode = %s\n}\n", "600");
	daemon_write_conf(&d, conf);
	ck_assert_int_eq(daemon_reload(&d, 10000), 1);
	ck_assert_int_eq(lstat(daemon_path(&d, "m.sock"), &st), 0);
	ck_assert_uint_eq(st.st_mode & 0777, 0600);
	ck_assert(tl_echo_unix(daemon_path(&d, "m.sock"), "mode"));
	daemon_stop(&d);
}
END_TEST

/* A reload that drops socket-owner and socket-group gives the file back to
 * the master's user and group: the access they gave is taken back. */
START_TEST(reload_drops_socket_owner)
{
	struct passwd *pw = getpwnam("nobody");
	struct daemon d;
	struct stat st;
	char conf[1024];

	if (geteuid() != 0 || !pw) {
		fprintf(stderr, "reload_drops_socket_owner: needs root and user nobody; skipped\n");
		return;
	}
	snprintf(conf, sizeof(conf), "service echo {\n listen = { \"unix:@DIR@/o.sock\" }\n"
		 " handler = \"echo\"\n socket-owner = \"nobody\"\n socket-group = \"%u\"\n}\n",
		 (unsigned)pw->pw_gid);
	daemon_start_ready(&d, conf, NULL);
	ck_assert_int_eq(lstat(daemon_path(&d, "o.sock"), &st), 0);
	ck_assert(st.st_uid == pw->pw_uid && st.st_gid == pw->pw_gid);
	daemon_write_conf(&d, "service echo {\n listen = { \"unix:@DIR@/o.sock\" }\n"
			  " handler = \"echo\"\n}\n");
	ck_assert_int_eq(daemon_reload(&d, 10000), 1);
	ck_assert_int_eq(lstat(daemon_path(&d, "o.sock"), &st), 0);
	ck_assert_msg(st.st_uid == 0 && st.st_gid == getegid(), "owner %u:%u",
		      (unsigned)st.st_uid, (unsigned)st.st_gid);
	ck_assert(tl_echo_unix(daemon_path(&d, "o.sock"), "owner"));
	daemon_stop(&d);
}
END_TEST

/* A new address that cannot be had fails the reload; nothing changes. An
 * address that overlaps one still open says how to change it. */
START_TEST(reload_bind_failure_keeps_old_one)
{
	uint16_t port = tl_free_port(), busy = tl_free_port();
	int foreign = tl_listen_loopback(busy, true);
	struct daemon d;
	pid_t before[2], after[2];
	char conf[4096 + 256], needle[160];

	daemon_start_ready(&d, echo_conf(port, 2, ""), NULL);
	ck_assert_uint_eq(daemon_workers(&d, before, 2), 2);
	snprintf(conf, sizeof(conf), "%s\nservice taken {\n listen = { \"127.0.0.1:%u\" }\n"
		 " handler = \"echo\"\n}\n", echo_conf(port, 2, ""), busy);
	daemon_write_conf(&d, conf);
	ck_assert_int_eq(daemon_reload(&d, 10000), 0);
	snprintf(needle, sizeof(needle), "bind 127.0.0.1:%u: address already in use", busy);
	ck_assert(daemon_log_contains(&d, needle));
	ck_assert_uint_eq(daemon_workers(&d, after, 2), 2);
	ck_assert(same_pids(before, 2, after, 2));
	ck_assert(tl_echo_tcp(port, "unchanged"));

	snprintf(conf, sizeof(conf), "service echo {\n listen = { \"*:%u\" }\n handler = \"echo\"\n}\n",
		 port);
	daemon_write_conf(&d, conf);
	ck_assert_int_eq(daemon_reload(&d, 10000), 0);
	snprintf(needle, sizeof(needle), "listen *:%u (service echo) overlaps 127.0.0.1:%u, which "
		 "is still open: change it in two reloads", port, port);
	ck_assert(daemon_log_contains(&d, needle));
	ck_assert(tl_echo_tcp(port, "unchanged"));
	close(foreign);
	daemon_stop(&d);
}
END_TEST

/* The new generation cannot start (here: the master runs out of descriptors
 * for their control sockets): the reload fails, the new workers that did
 * start are stopped, the old generation serves on. */
START_TEST(reload_fails_when_new_workers_cannot_start)
{
	struct daemon_opts opts = { .nofile = 24 };
	uint16_t port = tl_free_port();
	struct daemon d;
	pid_t before[2], after[2];

	daemon_start_ready(&d, echo_conf(port, 2, ""), &opts);
	ck_assert_uint_eq(daemon_workers(&d, before, 2), 2);
	daemon_write_conf(&d, echo_conf(port, 40, ""));
	ck_assert_int_eq(daemon_reload(&d, 10000), 0);
	ck_assert(daemon_log_contains(&d, "reload failed: a new worker could not be started"));
	ck_assert(daemon_wait_workers(&d, 2, 5000));
	ck_assert_uint_eq(daemon_workers(&d, after, 2), 2);
	ck_assert(same_pids(before, 2, after, 2));
	ck_assert(tl_echo_tcp(port, "old generation"));
	ck_assert(tl_echo_unix(daemon_path(&d, "echo.sock"), "old generation"));
	daemon_stop(&d);
}
END_TEST

/* A SIGHUP during a reload waits for it: reloads never interleave. */
START_TEST(sighup_during_reload_is_queued)
{
	uint16_t port = tl_free_port();
	char *log, *p;
	struct daemon d;
	int depth = 0;

	daemon_start_ready(&d, echo_conf(port, 32, ""), NULL);
	ck_assert_int_eq(kill(d.pid, SIGHUP), 0);
	ck_assert(daemon_wait_notify(&d, "RELOADING=1", 5000));
	ck_assert_int_eq(kill(d.pid, SIGHUP), 0);
	ck_assert(daemon_wait_log(&d, "queued", 5000));
	for (uint64_t t0 = tl_now_ms(); daemon_log_count(&d, "reload ok") < 2;)
		ck_assert_msg(tl_now_ms() - t0 < 20000, "log:\n%s", tl_read_file(d.log));
	/* Each "reloading" is closed by its result before the next begins. */
	log = tl_read_file(d.log);
	for (p = log; (p = strstr(p, "notice: reload")); p++) {
		if (strncmp(p, "notice: reloading", 17) == 0)
			depth++;
		else
			depth--;
		ck_assert_int_ge(depth, 0);
		ck_assert_int_le(depth, 1);
	}
	free(log);
	ck_assert(tl_echo_tcp(port, "after both"));
	daemon_stop(&d);
}
END_TEST

/* A stop that follows a long reload (here the master is stopped in the
 * middle of forking the new workers) still gives in-flight connections
 * their shutdown-timeout: its deadline counts from when the stop began,
 * not from when the reload did. */
START_TEST(stop_after_slow_reload_keeps_its_timeout)
{
	uint16_t port = tl_free_port();
	pid_t kids[64];
	struct daemon d;
	uint64_t t0;
	int fd;

	daemon_start_ready(&d, tl_echo_conf(port, 1, "shutdown-timeout = 3s"), NULL);
	fd = tl_connect_tcp("127.0.0.1", port);
	ck_assert(tl_echo(fd, "x", 1, 5000));
	daemon_write_conf(&d, tl_echo_conf(port, 400, "shutdown-timeout = 3s"));
	ck_assert_int_eq(kill(d.pid, SIGHUP), 0);
	for (t0 = tl_now_ms(); daemon_workers(&d, kids, 64) < 20; )
		ck_assert_msg(tl_now_ms() - t0 < 10000, "the reload forked no workers");
	/* The master is in its reload, forking: it loses 4 s there, more than
	 * shutdown-timeout, and the stop is waiting when it goes on. */
	ck_assert_int_eq(kill(d.pid, SIGSTOP), 0);
	ck_assert_int_lt(daemon_workers(&d, kids, 64), 64);
	usleep(4000 * 1000);
	ck_assert_int_eq(kill(d.pid, SIGTERM), 0);
	ck_assert_int_eq(kill(d.pid, SIGCONT), 0);
	ck_assert(daemon_wait_log(&d, "stopping (Terminated)", 10000));
	/* 3 s from the stop, not from the reload 4 s before it: any wakeup
	 * of the master (this signal) would find a deadline counted from the
	 * reload passed. */
	ck_assert_int_eq(kill(d.pid, SIGUSR1), 0);
	ck_assert(daemon_wait_log(&d, "SIGUSR1: nothing to do", 5000));
	ck_assert(!daemon_wait_log(&d, "shutdown-timeout passed", 500));
	ck_assert(tl_echo(fd, "still served", 12, 1000));
	close(fd);
	ck_assert_int_eq(tl_exit_code(daemon_wait_exit(&d, 10000)), 0);
	ck_assert(!daemon_log_contains(&d, "shutdown-timeout passed"));
	daemon_stop(&d);
}
END_TEST

/* log-level changes on reload; pidfile needs a restart, and says so. */
START_TEST(reload_changes_log_level_not_pidfile)
{
	uint16_t port = tl_free_port();
	struct daemon d;
	struct stat st;

	daemon_start_ready(&d, echo_conf(port, 1, "log-level = \"notice\"\n"
					 "pidfile = \"@DIR@/a.pid\""), NULL);
	ck_assert(!daemon_log_contains(&d, "debug:"));
	daemon_write_conf(&d, echo_conf(port, 1, "log-level = \"debug\"\n"
					"pidfile = \"@DIR@/b.pid\""));
	ck_assert_int_eq(daemon_reload(&d, 10000), 1);
	ck_assert(tl_echo_tcp(port, "x"));
	ck_assert(daemon_wait_log(&d, "debug:", 5000));
	ck_assert(daemon_log_contains(&d, "pidfile changes take effect on restart only"));
	ck_assert_int_eq(lstat(daemon_path(&d, "a.pid"), &st), 0);
	ck_assert_int_lt(lstat(daemon_path(&d, "b.pid"), &st), 0);
	daemon_stop(&d);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("reload");
	TCase *tc = tcase_create("reload");

	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, reload_under_load);
	tcase_add_test(tc, in_flight_connection_outlives_reload);
	tcase_add_test(tc, broken_config_keeps_old_one);
	tcase_add_test(tc, reload_onto_fifo_fails_cleanly);
	tcase_add_test(tc, reload_applies_every_change);
	tcase_add_test(tc, reload_applies_socket_mode);
	tcase_add_test(tc, reload_drops_socket_owner);
	tcase_add_test(tc, reload_bind_failure_keeps_old_one);
	tcase_add_test(tc, reload_fails_when_new_workers_cannot_start);
	tcase_add_test(tc, sighup_during_reload_is_queued);
	tcase_add_test(tc, stop_after_slow_reload_keeps_its_timeout);
	tcase_add_test(tc, reload_changes_log_level_not_pidfile);
	suite_add_tcase(s, tc);
	return tl_run_suite(s);
}
