/* SPDX-License-Identifier: ISC */
/* check_exec.c - the exec handler through the real daemon: descriptor hygiene,
 * UCSPI environment, many helpers at once, timeouts, stop, bytes through cat. */
#include "config.h"

#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "testlib.h"

#define CAT_ROUNDS 1000
#define CONCURRENT_HELPERS 50

static char conf_text[4096];

/* One exec service on 127.0.0.1:port, [::1]:port (where there is IPv6) and
 * @DIR@/x.sock. */
static const char *exec_conf(uint16_t port, const char *exec, const char *extra)
{
	char v6[32] = "";

	if (tl_ipv6_loopback())
		snprintf(v6, sizeof(v6), ", \"[::1]:%u\"", port);
	snprintf(conf_text, sizeof(conf_text),
		 "shutdown-timeout = 1h\n"
		 "service x {\n"
		 "  listen = { \"127.0.0.1:%u\", \"unix:@DIR@/x.sock\"%s }\n"
		 "  handler = \"exec\"\n"
		 "  exec = { %s }\n"
		 "  workers = 1\n"
		 "  max-connections = 200\n"
		 "%s"
		 "}\n", port, v6, exec, extra);
	return conf_text;
}

/* SIGINT: helpers still running are killed, not waited for (shutdown-timeout is 1 h). */
static void stop_fast(struct daemon *d)
{
	kill(d->pid, SIGINT);
	ck_assert_int_eq(tl_exit_code(daemon_wait_exit(d, 5000)), 0);
	daemon_stop(d);
}

/* What a new connection's helper writes until EOF (within 5 s); closes fd. */
static char *output_of(int fd)
{
	char *out;

	ck_assert_int_ge(fd, 0);
	out = tl_read_to_eof(fd, 5000, NULL);
	ck_assert_ptr_nonnull(out);
	close(fd);
	return out;
}

/* The next bytes from fd, within 5 s, are want (and the connection stays open). */
static bool reads(int fd, const char *want)
{
	char buf[256];
	size_t got = 0, len = strlen(want);
	uint64_t end = tl_now_ms() + 5000;

	while (got < len && tl_now_ms() < end) {
		ssize_t n;

		if (poll(&(struct pollfd){ .fd = fd, .events = POLLIN }, 1, 100) <= 0)
			continue;
		n = recv(fd, buf + got, len - got, 0);
		if (n <= 0)
			return false;
		got += (size_t)n;
	}
	return got == len && memcmp(buf, want, len) == 0;
}

/* A helper starts with every signal at its default and none blocked,
 * though its worker ignores most of them. Signals 32 and 33 are glibc's
 * own (no program may set them; they are ignored in some test runners). */
START_TEST(helper_gets_default_signals)
{
	uint16_t port = tl_free_port();
	unsigned long long blocked, ignored;
	struct daemon d;
	char *out;

	daemon_start_ready(&d, exec_conf(port, "\"/bin/grep\", \"-E\", \"^Sig(Blk|Ign)\", "
					 "\"/proc/self/status\"", ""), NULL);
	out = output_of(tl_connect_tcp("127.0.0.1", port));
	ck_assert_msg(sscanf(out, "SigBlk:\t%llx\nSigIgn:\t%llx\n", &blocked, &ignored) == 2,
		      "%s", out);
	ck_assert_msg(blocked == 0, "blocked %llx", blocked);
	ck_assert_msg((ignored & ~0x180000000ULL) == 0, "ignored %llx", ignored);
	free(out);
	stop_fast(&d);
}
END_TEST

/* The helper's only descriptors are 0, 1 and 2: seen by the helper itself
 * (ls adds its own directory fd, 3) and from outside, in /proc. */
START_TEST(helper_gets_only_stdio)
{
	uint16_t port = tl_free_port();
	struct daemon d;
	char *out, path[64];
	pid_t workers[1], helper = 0;
	int fd, n = 0;
	DIR *dir;
	struct dirent *e;

	daemon_start_ready(&d, exec_conf(port, "\"/bin/ls\", \"/proc/self/fd\"", ""), NULL);
	out = output_of(tl_connect_tcp("127.0.0.1", port));
	ck_assert_str_eq(out, "0\n1\n2\n3\n");
	free(out);
	daemon_stop(&d);

	daemon_start_ready(&d, exec_conf(port, "\"/bin/sleep\", \"30\"", ""), NULL);
	fd = tl_connect_tcp("127.0.0.1", port);
	ck_assert_uint_eq(daemon_workers(&d, workers, 1), 1);
	for (uint64_t t0 = tl_now_ms(); !helper; usleep(5000)) {
		char *kids;

		snprintf(path, sizeof(path), "/proc/%ld/task/%ld/children", (long)workers[0],
			 (long)workers[0]);
		kids = tl_read_file(path);
		helper = (pid_t)strtol(kids, NULL, 10);
		free(kids);
		/* Between vfork and execve the child still has the worker's
		 * descriptors (close-on-exec closes them at the exec): wait for it. */
		if (helper) {
			char *comm;

			snprintf(path, sizeof(path), "/proc/%ld/comm", (long)helper);
			comm = tl_read_file(path);
			if (strcmp(comm, "sleep\n") != 0)
				helper = 0;
			free(comm);
		}
		ck_assert_msg(tl_now_ms() - t0 < 5000, "no helper started");
	}
	snprintf(path, sizeof(path), "/proc/%ld/fd", (long)helper);
	ck_assert_ptr_nonnull(dir = opendir(path));
	while ((e = readdir(dir)))
		if (e->d_name[0] != '.') {
			ck_assert_msg(strcmp(e->d_name, "0") == 0 || strcmp(e->d_name, "1") == 0 ||
				      strcmp(e->d_name, "2") == 0, "helper has fd %s", e->d_name);
			n++;
		}
	closedir(dir);
	ck_assert_int_eq(n, 3);
	close(fd);
	stop_fast(&d);
	ck_assert_int_eq(kill(helper, 0), -1);	/* the helper went with the worker */
}
END_TEST

/* tcpserver's and unixserver's variables, a clean environment, nothing of ours. */
START_TEST(ucspi_environment)
{
	uint16_t port = tl_free_port();
	struct daemon d;
	char line[320], *out;
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);
	int fd;

	daemon_start_ready(&d, exec_conf(port, "\"/usr/bin/env\"", "  env = { \"GREETING=hi\" }\n"),
			   NULL);
	fd = tl_connect_tcp("127.0.0.1", port);
	ck_assert_int_eq(getsockname(fd, (struct sockaddr *)&ss, &len), 0);
	out = output_of(fd);
	ck_assert_msg(tl_has_line(out, "PROTO=TCP"), "%s", out);
	ck_assert(tl_has_line(out, "TCPLOCALIP=127.0.0.1"));
	snprintf(line, sizeof(line), "TCPLOCALPORT=%u", port);
	ck_assert(tl_has_line(out, line));
	ck_assert(tl_has_line(out, "TCPREMOTEIP=127.0.0.1"));
	snprintf(line, sizeof(line), "TCPREMOTEPORT=%u", ntohs(((struct sockaddr_in *)&ss)->sin_port));
	ck_assert(tl_has_line(out, line));
	ck_assert(tl_has_line(out, "GREETING=hi"));
	ck_assert(tl_has_line(out, "PATH=/usr/local/bin:/usr/bin:/bin"));
	ck_assert(!strstr(out, "NOTIFY_SOCKET") && !strstr(out, "HOME=") && !strstr(out, "LISTEN_"));
	free(out);

	if (tl_ipv6_loopback()) {
		out = output_of(tl_connect_tcp("::1", port));
		ck_assert_msg(tl_has_line(out, "TCPLOCALIP=::1"), "%s", out);
		ck_assert(tl_has_line(out, "TCPREMOTEIP=::1"));
		free(out);
	}

	out = output_of(tl_connect_unix(daemon_path(&d, "x.sock")));
	ck_assert_msg(tl_has_line(out, "PROTO=UNIX"), "%s", out);
	snprintf(line, sizeof(line), "UNIXLOCALPATH=%s", daemon_path(&d, "x.sock"));
	ck_assert(tl_has_line(out, line));
	snprintf(line, sizeof(line), "UNIXREMOTEPID=%ld", (long)getpid());
	ck_assert(tl_has_line(out, line));
	snprintf(line, sizeof(line), "UNIXREMOTEEUID=%u", (unsigned)geteuid());
	ck_assert(tl_has_line(out, line));
	snprintf(line, sizeof(line), "UNIXREMOTEEGID=%u", (unsigned)getegid());
	ck_assert(tl_has_line(out, line));
	ck_assert(!tl_has_line(out, "PROTO=TCP"));
	free(out);
	daemon_stop(&d);
}
END_TEST

/* On a listener that takes every local address ("*:P", 0.0.0.0:P) the
 * helper is told the address the client really reached, not the wildcard. */
START_TEST(ucspi_local_address_of_wildcard_listeners)
{
	uint16_t port = tl_free_port(), port2 = tl_free_port();
	char conf[768], line[64], *out;
	struct daemon d;

	snprintf(conf, sizeof(conf),
		 "service x {\n  listen = { \"*:%u\", \"0.0.0.0:%u\" }\n  handler = \"exec\"\n"
		 "  exec = { \"/usr/bin/env\" }\n  workers = 1\n}\n", port, port2);
	daemon_start_ready(&d, conf, NULL);
	out = output_of(tl_connect_tcp("127.0.0.2", port));
	ck_assert_msg(tl_has_line(out, "TCPLOCALIP=127.0.0.2"), "%s", out);
	snprintf(line, sizeof(line), "TCPLOCALPORT=%u", port);
	ck_assert(tl_has_line(out, line));
	free(out);
	out = output_of(tl_connect_tcp("127.0.0.3", port2));
	ck_assert_msg(tl_has_line(out, "TCPLOCALIP=127.0.0.3"), "%s", out);
	free(out);
	if (tl_ipv6_loopback()) {
		out = output_of(tl_connect_tcp("::1", port));
		ck_assert_msg(tl_has_line(out, "TCPLOCALIP=::1"), "%s", out);
		free(out);
	}
	stop_fast(&d);
}
END_TEST

/* A thousand connections through /bin/cat: every byte back, in order. */
START_TEST(cat_round_trips_exactly)
{
	uint16_t port = tl_free_port();
	struct daemon d;
	char buf[4096];

	daemon_start_ready(&d, exec_conf(port, "\"/bin/cat\"", ""), NULL);
	srand(42);
	for (int i = 0; i < CAT_ROUNDS; i++) {
		size_t len = 1 + (size_t)rand() % sizeof(buf);
		int fd = i % 2 ? tl_connect_unix(daemon_path(&d, "x.sock")) :
				 tl_connect_tcp("127.0.0.1", port);
		char c;

		for (size_t j = 0; j < len; j++)
			buf[j] = (char)rand();
		ck_assert_int_ge(fd, 0);
		ck_assert_msg(tl_echo(fd, buf, len, 5000), "round %d", i);
		shutdown(fd, SHUT_WR);
		ck_assert_int_eq(recv(fd, &c, 1, 0), 0);	/* cat saw EOF and exited */
		close(fd);
	}
	ck_assert(!daemon_log_contains(&d, "warning:"));
	daemon_stop(&d);
}
END_TEST

/* One worker supervises many helpers at once and keeps accepting. */
START_TEST(many_helpers_at_once)
{
	uint16_t port = tl_free_port();
	int fds[CONCURRENT_HELPERS];
	struct daemon d;

	daemon_start_ready(&d, exec_conf(port, "\"/bin/cat\"", ""), NULL);
	for (int i = 0; i < CONCURRENT_HELPERS; i++) {
		fds[i] = tl_connect_tcp("127.0.0.1", port);
		ck_assert_int_ge(fds[i], 0);
		ck_assert_msg(tl_echo(fds[i], "held", 4, 5000), "helper %d", i);
	}
	ck_assert(tl_echo_tcp(port, "one more while 50 run"));
	for (int i = 0; i < CONCURRENT_HELPERS; i++)
		ck_assert(tl_echo(fds[i], "still", 5, 5000));
	for (int i = 0; i < CONCURRENT_HELPERS; i++)
		close(fds[i]);
	daemon_stop(&d);
}
END_TEST

/* Helpers that exit at once, fail, never read, or leave a background child. */
START_TEST(helper_behaviours)
{
	uint16_t port = tl_free_port();
	struct daemon d;
	char *out, needle[96];

	daemon_start_ready(&d, exec_conf(port, "\"/bin/false\"", ""), NULL);
	free(output_of(tl_connect_tcp("127.0.0.1", port)));	/* EOF at once */
	snprintf(needle, sizeof(needle), "helper /bin/false (pid ");
	ck_assert(daemon_wait_log(&d, needle, 5000));
	ck_assert(daemon_log_contains(&d, ") exited with status 1"));
	daemon_stop(&d);

	/* The shell answers and exits; its background sleep would hold the
	 * client for 300 s, but it ends with the helper. */
	daemon_start_ready(&d, exec_conf(port, "\"/bin/sh\", \"-c\", \"sleep 300 & echo started\"", ""),
			   NULL);
	out = output_of(tl_connect_tcp("127.0.0.1", port));
	ck_assert_str_eq(out, "started\n");
	free(out);
	daemon_stop(&d);
}
END_TEST

/* What a helper leaves in its group that ignores SIGTERM is killed
 * exec-kill-grace after the helper exits: the client gets its EOF then,
 * and until then the connection holds its place (max-connections). */
START_TEST(leftover_ignoring_term_is_killed)
{
	uint16_t port = tl_free_port();
	struct daemon d;
	char *first, *second;
	uint64_t t0, eof_at;
	long leftover;
	int a, b;

	char conf[512];

	snprintf(conf, sizeof(conf),
		 "service x {\n  listen = { \"127.0.0.1:%u\" }\n  handler = \"exec\"\n"
		 "  exec = { \"/bin/sh\", \"-c\", \"(trap '' TERM; exec sleep 30) & echo $!; sleep 0.2\" }\n"
		 "  exec-kill-grace = 500ms\n  workers = 1\n  max-connections = 1\n}\n", port);
	daemon_start_ready(&d, conf, NULL);
	for (int round = 0; round < 2; round++) {
		t0 = tl_now_ms();
		a = tl_connect_tcp("127.0.0.1", port);
		ck_assert_int_ge(a, 0);
		first = tl_read_to_eof(a, 5000, NULL);
		eof_at = tl_now_ms();
		ck_assert_msg(first, "no EOF within 5 s: the leftover still holds the client");
		ck_assert_int_eq(sscanf(first, "%ld", &leftover), 1);
		/* 0.2 s of helper, then 0.5 s of grace for what ignores SIGTERM. */
		ck_assert_uint_ge(eof_at - t0, 600);
		ck_assert(tl_wait_gone((pid_t)leftover, 2000));
		free(first);
		close(a);
		if (round == 1)
			break;
		/* While a client's leftover runs, the one place is taken. */
		a = tl_connect_tcp("127.0.0.1", port);
		ck_assert_int_eq(poll(&(struct pollfd){ .fd = a, .events = POLLIN }, 1, 5000), 1);
		b = tl_connect_tcp("127.0.0.1", port);
		second = tl_read_to_eof(b, 5000, NULL);
		ck_assert_ptr_nonnull(second);
		ck_assert_uint_ge(tl_now_ms() - t0, 1300);	/* after a's 0.7 s, then its own */
		free(second);
		free(tl_read_to_eof(a, 5000, NULL));
		close(a);
		close(b);
	}
	ck_assert(daemon_log_contains(&d, "outlived SIGTERM by 500 ms: sending SIGKILL"));
	/* Nor does it outlive a stop. */
	a = tl_connect_tcp("127.0.0.1", port);
	ck_assert_int_eq(poll(&(struct pollfd){ .fd = a, .events = POLLIN }, 1, 5000), 1);
	ck_assert_int_eq(recv(a, conf, sizeof(conf) - 1, 0) > 0, 1);
	ck_assert_int_eq(sscanf(conf, "%ld", &leftover), 1);
	kill(d.pid, SIGTERM);
	ck_assert_int_eq(tl_exit_code(daemon_wait_exit(&d, 5000)), 0);
	ck_assert(tl_wait_gone((pid_t)leftover, 2000));
	close(a);
	daemon_stop(&d);
}
END_TEST

/* A helper's stderr reaches the log through the worker: line by line,
 * prefixed and escaped, at a bounded rate, without ever blocking the helper. */
START_TEST(helper_stderr_is_logged_and_bounded)
{
	uint16_t port = tl_free_port();
	struct daemon d;
	char *out, *log;
	unsigned lines;

	daemon_start_ready(&d, exec_conf(port, "\"/bin/sh\", \"-c\", "
					 "\"printf 'one\\\\033line\\\\n' >&2; echo two >&2; "
					 "head -c 2000000 /dev/zero | tr '\\\\0' x | fold -w 100 >&2; "
					 "echo done\"", ""), NULL);
	out = output_of(tl_connect_tcp("127.0.0.1", port));
	ck_assert_str_eq(out, "done\n");
	free(out);
	ck_assert(daemon_wait_log(&d, "lines of stderr not logged (over 100 lines/s)", 5000));
	ck_assert(daemon_log_contains(&d, ": helper /bin/sh: one\\x1bline\n"));
	ck_assert(daemon_log_contains(&d, ": helper /bin/sh: two\n"));
	log = tl_read_file(d.log);
	lines = tl_count_in(log, ": helper /bin/sh: xxxx");
	ck_assert_msg(lines >= 50 && lines <= 300, "%u lines of 20000 logged", lines);
	ck_assert_uint_lt(strlen(log), 200000);
	free(log);
	daemon_stop(&d);
}
END_TEST

/* A helper that cannot be started any more (removed after the config was
 * read): the client gets EOF, the failure is logged with the helper's exit
 * status, and the worker goes on serving once the program is back. */
START_TEST(helper_removed_after_start)
{
	uint16_t port = tl_free_port();
	char dir[64], helper[96], exec[128], why[192], *out;
	struct daemon d;

	tl_mkdtemp(dir, sizeof(dir));
	snprintf(helper, sizeof(helper), "%s/hello", dir);
	tl_write_file(helper, "#!/bin/sh\necho hello\n");
	ck_assert_int_eq(chmod(helper, 0755), 0);
	snprintf(exec, sizeof(exec), "\"%s\"", helper);
	daemon_start_ready(&d, exec_conf(port, exec, ""), NULL);
	out = output_of(tl_connect_tcp("127.0.0.1", port));
	ck_assert_str_eq(out, "hello\n");
	free(out);

	ck_assert_int_eq(unlink(helper), 0);
	out = output_of(tl_connect_tcp("127.0.0.1", port));
	ck_assert_str_eq(out, "");	/* EOF, nothing else */
	free(out);
	ck_assert(daemon_wait_log(&d, "exited with status 127", 5000));
	ck_assert(daemon_log_contains(&d, "exec helper: execve failed"));
	snprintf(why, sizeof(why), "exec helper: execve failed for %s: No such file or directory",
		 helper);
	ck_assert_msg(daemon_log_contains(&d, why), "%s", tl_read_file(d.log));

	tl_write_file(helper, "#!/bin/sh\necho back\n");
	ck_assert_int_eq(chmod(helper, 0755), 0);
	out = output_of(tl_connect_tcp("127.0.0.1", port));
	ck_assert_str_eq(out, "back\n");
	free(out);
	stop_fast(&d);
	tl_rmtree(dir);
}
END_TEST

/* A helper that never reads: the client's bytes fill the socket buffers,
 * but only that client waits; the worker serves others meanwhile, and the
 * timeout ends it. */
START_TEST(helper_that_never_reads)
{
	uint16_t port = tl_free_port();
	static char chunk[65536];
	size_t sent = 0;
	struct daemon d;
	uint64_t t0;
	char *out;
	int fd;

	daemon_start_ready(&d, exec_conf(port, "\"/bin/sh\", \"-c\", \"echo ready; exec sleep 300\"",
					 "  exec-timeout = 1s\n"), NULL);
	fd = tl_connect_tcp("127.0.0.1", port);
	ck_assert_int_ge(fd, 0);
	for (int i = 0; i < 1000; i++) {
		ssize_t n = send(fd, chunk, sizeof(chunk), MSG_DONTWAIT | MSG_NOSIGNAL);

		if (n < 0)
			break;
		sent += (size_t)n;
	}
	ck_assert_int_eq(errno, EAGAIN);	/* full, not closed */
	ck_assert_uint_gt(sent, 0);
	ck_assert(reads(fd, "ready\n"));
	/* Another client is served meanwhile, by the same worker. */
	t0 = tl_now_ms();
	ck_assert_str_eq(out = output_of(tl_connect_tcp("127.0.0.1", port)), "ready\n");
	free(out);
	ck_assert_uint_lt(tl_now_ms() - t0, 3000);
	/* The stuck one ends too (a reset: the helper left bytes unread). */
	out = tl_read_to_eof(fd, 5000, NULL);
	ck_assert_ptr_nonnull(out);
	ck_assert_str_eq(out, "");
	free(out);
	close(fd);
	ck_assert(daemon_wait_log(&d, "still running after exec-timeout", 2000));
	daemon_stop(&d);
}
END_TEST

/* A helper that closes its end of the connection and runs on: the client
 * sees EOF then, not when the helper ends; the helper is still supervised. */
START_TEST(helper_closes_its_end_early)
{
	uint16_t port = tl_free_port();
	struct daemon d;
	uint64_t t0;
	char *out;

	daemon_start_ready(&d, exec_conf(port, "\"/bin/sh\", \"-c\", "
					 "\"echo bye; exec 0<&- 1>&-; exec sleep 300\"",
					 "  exec-timeout = 500ms\n"), NULL);
	t0 = tl_now_ms();
	ck_assert_str_eq(out = output_of(tl_connect_tcp("127.0.0.1", port)), "bye\n");
	free(out);
	ck_assert_uint_lt(tl_now_ms() - t0, 400);	/* before the timeout */
	ck_assert(daemon_wait_log(&d, "still running after exec-timeout (500 ms)", 3000));
	daemon_stop(&d);
}
END_TEST

/* After a reload, within 5 s: an old worker may take a client or two in
 * the moment before it takes its SIGTERM. */
static bool new_generation_answers(uint16_t port, const char *want)
{
	for (uint64_t end = tl_now_ms() + 5000; tl_now_ms() < end; ) {
		int fd = tl_connect_tcp("127.0.0.1", port);
		char *out;

		/* An old helper waits for a line: give it one, so it answers and ends. */
		if (fd >= 0) {
			(void)!send(fd, "probe\n", 6, MSG_NOSIGNAL);
			shutdown(fd, SHUT_WR);
		}
		out = fd >= 0 ? tl_read_to_eof(fd, 5000, NULL) : NULL;
		bool ok = out && strcmp(out, want) == 0;

		if (fd >= 0)
			close(fd);
		free(out);
		if (ok)
			return true;
	}
	return false;
}

/* A reload leaves a running helper of the old generation to finish; one
 * that outlives shutdown-timeout is killed with what it started. */
START_TEST(reload_with_helper_running)
{
	uint16_t port = tl_free_port();
	char conf[4096];
	struct daemon d;
	char *out;
	int talking, stuck;

	snprintf(conf, sizeof(conf), "%s",
		 exec_conf(port, "\"/bin/sh\", \"-c\", \"read line; echo old:$line\"", ""));
	daemon_start_ready(&d, strstr(conf, "service"), NULL);	/* shutdown-timeout: 30 s */
	talking = tl_connect_tcp("127.0.0.1", port);
	ck_assert_int_ge(talking, 0);
	/* The old worker has it once its helper runs; before that the
	 * connection waits in the shared queue, which the new generation
	 * may serve. */
	{
		pid_t worker, helper;
		uint64_t end = tl_now_ms() + 5000;

		ck_assert_uint_eq(daemon_workers(&d, &worker, 1), 1);
		while (tl_children(worker, &helper, 1) == 0)
			ck_assert_msg(tl_now_ms() < end, "the old worker never took the connection");
	}
	daemon_write_conf(&d, exec_conf(port, "\"/bin/echo\", \"new\"", ""));
	ck_assert_int_eq(daemon_reload(&d, 10000), 1);
	ck_assert(new_generation_answers(port, "new\n"));
	ck_assert_int_eq(send(talking, "x\n", 2, MSG_NOSIGNAL), 2);
	ck_assert_str_eq(out = output_of(talking), "old:x\n");
	free(out);

	/* Now one that would run for 300 s, with its own child, and a 1 s drain. */
	snprintf(conf, sizeof(conf), "shutdown-timeout = 1s\n%s",
		 strstr(exec_conf(port, "\"/bin/sh\", \"-c\", \"echo up; sleep 300 & sleep 300\"",
				  ""), "service"));
	daemon_write_conf(&d, conf);
	ck_assert_int_eq(daemon_reload(&d, 10000), 1);
	/* Until the new helper has it (an old worker may still take one). */
	for (uint64_t end = tl_now_ms() + 5000; ; ) {
		stuck = tl_connect_tcp("127.0.0.1", port);
		ck_assert_int_ge(stuck, 0);
		if (reads(stuck, "up\n"))
			break;
		close(stuck);
		ck_assert_msg(tl_now_ms() < end, "the new generation never answered");
	}
	daemon_write_conf(&d, exec_conf(port, "\"/bin/echo\", \"newer\"", ""));
	ck_assert_int_eq(daemon_reload(&d, 10000), 1);
	ck_assert(new_generation_answers(port, "newer\n"));
	/* EOF once the drain is over: both sleeps are gone. */
	ck_assert_str_eq(out = output_of(stuck), "");
	free(out);
	ck_assert(daemon_wait_log(&d, "killing helper /bin/sh", 3000));
	daemon_stop(&d);
}
END_TEST

/* exec-timeout: SIGTERM first, SIGKILL for a helper that ignores it. */
/* A client of a hung helper gets EOF well before the helper's own 300 s. */
static void assert_ended_by_timeout(uint16_t port)
{
	uint64_t t0 = tl_now_ms();

	free(output_of(tl_connect_tcp("127.0.0.1", port)));
	ck_assert_uint_lt(tl_now_ms() - t0, 3000);
}

START_TEST(exec_timeout_ends_hung_helpers)
{
	uint16_t port = tl_free_port();
	struct daemon d;

	daemon_start_ready(&d, exec_conf(port, "\"/bin/sleep\", \"300\"", "  exec-timeout = 300ms\n"),
			   NULL);
	assert_ended_by_timeout(port);
	ck_assert(daemon_wait_log(&d, "still running after exec-timeout (300 ms): sending SIGTERM",
				  2000));
	daemon_stop(&d);

	daemon_start_ready(&d, exec_conf(port, "\"/bin/sh\", \"-c\", \"trap '' TERM; sleep 300\"",
					 "  exec-timeout = 300ms\n  exec-kill-grace = 300ms\n"), NULL);
	assert_ended_by_timeout(port);
	ck_assert(daemon_wait_log(&d, "ignored SIGTERM: sending SIGKILL", 2000));
	ck_assert(daemon_wait_log(&d, "killed by signal 9", 2000));
	daemon_stop(&d);
}
END_TEST

/* A stop while a helper still runs: the port and the path are free at once
 * for a new instance, and a fast stop then ends the helper. */
START_TEST(stop_with_helper_running)
{
	uint16_t port = tl_free_port();
	struct daemon a, b;
	char conf[4096], path[256], *p, *out;
	int fd;

	daemon_start_ready(&a, exec_conf(port, "\"/bin/sleep\", \"300\"", ""), NULL);
	fd = tl_connect_tcp("127.0.0.1", port);
	ck_assert_int_ge(fd, 0);
	ck_assert(daemon_wait_log(&a, "stopping", 0) == false);
	kill(a.pid, SIGTERM);
	ck_assert(daemon_wait_log(&a, "1 connections in flight", 5000));

	/* b: the same port and a's socket path, helpers that answer at once. */
	snprintf(conf, sizeof(conf), "%s", exec_conf(port, "\"/bin/echo\", \"b\"", ""));
	p = strstr(conf, "@DIR@");
	snprintf(path, sizeof(path), "%s%s", a.dir, p + 5);
	snprintf(p, sizeof(conf) - (size_t)(p - conf), "%s", path);
	daemon_start_ready(&b, conf, NULL);
	ck_assert_str_eq(out = output_of(tl_connect_tcp("127.0.0.1", port)), "b\n");
	free(out);
	ck_assert_str_eq(out = output_of(tl_connect_unix(daemon_path(&a, "x.sock"))), "b\n");
	free(out);
	daemon_stop(&b);

	kill(a.pid, SIGINT);
	ck_assert_int_eq(tl_exit_code(daemon_wait_exit(&a, 5000)), 0);
	free(output_of(fd));	/* the helper is gone: EOF */
	daemon_stop(&a);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("exec");
	TCase *tc = tcase_create("exec");

	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, helper_gets_only_stdio);
	tcase_add_test(tc, helper_gets_default_signals);
	tcase_add_test(tc, ucspi_environment);
	tcase_add_test(tc, ucspi_local_address_of_wildcard_listeners);
	tcase_add_test(tc, cat_round_trips_exactly);
	tcase_add_test(tc, many_helpers_at_once);
	tcase_add_test(tc, helper_behaviours);
	tcase_add_test(tc, helper_that_never_reads);
	tcase_add_test(tc, helper_closes_its_end_early);
	tcase_add_test(tc, reload_with_helper_running);
	tcase_add_test(tc, exec_timeout_ends_hung_helpers);
	tcase_add_test(tc, stop_with_helper_running);
	tcase_add_test(tc, helper_removed_after_start);
	tcase_add_test(tc, leftover_ignoring_term_is_killed);
	tcase_add_test(tc, helper_stderr_is_logged_and_bounded);
	suite_add_tcase(s, tc);
	return tl_run_suite(s);
}
