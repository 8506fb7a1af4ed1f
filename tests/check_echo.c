/* SPDX-License-Identifier: ISC */
/* check_echo.c - the running daemon's echo service: IPv4, IPv6, Unix, large payloads,
 * descriptor flags in every process, idle timeout and max-connections. */
#include "config.h"

#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "worker/conn.h"
#include "handlers/handler.h"
#include "testlib.h"

static struct daemon d;
static uint16_t port;

static void start(const char *extra)
{
	char conf[1024], v6[64] = "";

	port = tl_free_port();
	if (tl_ipv6_loopback())
		snprintf(v6, sizeof(v6), "\"[::1]:%u\", ", port);
	snprintf(conf, sizeof(conf),
		 "log-level = \"debug\"\n"
		 "service echo {\n"
		 "  listen = { \"127.0.0.1:%u\", %s\"unix:@DIR@/echo.sock\" }\n"
		 "  handler = \"echo\"\n"
		 "  workers = 2\n"
		 "%s"
		 "}\n", port, v6, extra);
	daemon_start(&d, conf, NULL);
	ck_assert_msg(daemon_wait_ready(&d, 10000), "daemon not ready; log:\n%s", tl_read_file(d.log));
}

static void stop(void)
{
	daemon_stop(&d);
}

static char *pattern(size_t len)
{
	char *buf = malloc(len);

	ck_assert_ptr_nonnull(buf);
	for (size_t i = 0; i < len; i++)
		buf[i] = (char)(i * 7 + i / 251);
	return buf;
}

static int connect_unix(void)
{
	char path[256];

	snprintf(path, sizeof(path), "%s/echo.sock", d.dir);
	return tl_connect_unix(path);
}

START_TEST(echo_ipv4_ipv6_unix)
{
	int fds[3], n = 0;

	start("");
	fds[n++] = tl_connect_tcp("127.0.0.1", port);
	if (tl_ipv6_loopback())
		fds[n++] = tl_connect_tcp("::1", port);
	fds[n++] = connect_unix();
	for (int i = 0; i < n; i++) {
		ck_assert_msg(fds[i] >= 0, "connect %d: %s", i, strerror(errno));
		ck_assert(tl_echo(fds[i], "hello\n", 6, 5000));
		ck_assert(tl_echo(fds[i], "x", 1, 5000));
		close(fds[i]);
	}
	stop();
}
END_TEST

/* 8 MiB written while reading: the handler must stop reading while it cannot
 * write (backpressure) and lose nothing across partial writes. */
START_TEST(large_payload)
{
	size_t len = 8 << 20;
	char *buf = pattern(len);
	int fd;

	start("");
	fd = tl_connect_tcp("127.0.0.1", port);
	ck_assert_int_ge(fd, 0);
	ck_assert(tl_echo(fd, buf, len, 30000));
	close(fd);
	fd = connect_unix();
	ck_assert_int_ge(fd, 0);
	ck_assert(tl_echo(fd, buf, len, 30000));
	close(fd);
	free(buf);
	stop();
}
END_TEST

/* A client that half-closes still gets every byte back, then EOF. */
START_TEST(half_close)
{
	size_t len = 1 << 20, got = 0;
	char *buf = pattern(len), *in = malloc(len + 1);
	int fd;
	ssize_t n;

	start("");
	fd = connect_unix();
	ck_assert_int_ge(fd, 0);
	/* A child writes and half-closes while we read, so neither side blocks. */
	pid_t pid = fork();

	if (pid == 0) {
		size_t off = 0;

		while (off < len) {
			n = write(fd, buf + off, len - off);
			if (n <= 0)
				_exit(1);
			off += (size_t)n;
		}
		shutdown(fd, SHUT_WR);
		_exit(0);
	}
	while ((n = read(fd, in + got, len + 1 - got)) > 0)
		got += (size_t)n;
	ck_assert_int_eq(n, 0);	/* EOF after the echo, no reset */
	ck_assert_int_eq(waitpid(pid, NULL, 0), pid);
	ck_assert_uint_eq(got, len);
	ck_assert(memcmp(in, buf, len) == 0);
	close(fd);
	free(buf);
	free(in);
	stop();
}
END_TEST

#define FLOOD_CAP (64u << 20)

/* Writes pattern bytes without reading until the socket will take no more
 * for 500 ms, or FLOOD_CAP is reached; returns how many went in. */
static size_t write_until_blocked(int fd, const char *buf, size_t cap)
{
	size_t off = 0;

	while (off < cap) {
		struct pollfd pfd = { .fd = fd, .events = POLLOUT };
		ssize_t n;

		if (poll(&pfd, 1, 500) != 1)
			break;
		n = send(fd, buf + off, cap - off < 65536 ? cap - off : 65536, MSG_DONTWAIT);
		if (n < 0 && errno == EAGAIN)
			continue;
		ck_assert_int_gt(n, 0);
		off += (size_t)n;
	}
	return off;
}

/* A client that writes and never reads: the echo must stop reading from it
 * once it cannot send back (so the client blocks, instead of the worker
 * buffering without end), keep what it read but could not send, and give
 * every byte back in order when the client reads at last. */
START_TEST(slow_reader_held_back)
{
	char *buf = pattern(FLOOD_CAP), *in = malloc(FLOOD_CAP);
	int fds[2];

	ck_assert_ptr_nonnull(in);
	start("");
	fds[0] = tl_connect_tcp("127.0.0.1", port);
	fds[1] = connect_unix();
	for (int i = 0; i < 2; i++) {
		size_t sent, got = 0;

		ck_assert_int_ge(fds[i], 0);
		sent = write_until_blocked(fds[i], buf, FLOOD_CAP);
		ck_assert_msg(sent > 0 && sent < FLOOD_CAP, "%zu bytes went in without a read", sent);
		shutdown(fds[i], SHUT_WR);
		while (got <= sent) {
			struct pollfd pfd = { .fd = fds[i], .events = POLLIN };
			ssize_t n;

			ck_assert_int_eq(poll(&pfd, 1, 5000), 1);
			/* Small reads first: the echo's sends resume a few bytes at a time. */
			n = recv(fds[i], in + got, got < (1u << 20) ? 1000 : FLOOD_CAP - got, 0);
			ck_assert_int_ge(n, 0);
			if (n == 0)
				break;
			got += (size_t)n;
		}
		ck_assert_uint_eq(got, sent);
		ck_assert(memcmp(in, buf, sent) == 0);
		close(fds[i]);
	}
	free(buf);
	free(in);
	stop();
}
END_TEST

#define PARTIAL_LEN (1u << 20)

/* The handler alone, on a socketpair whose echo side has the smallest send
 * buffer the kernel allows: most sends are partial, and what is kept is
 * itself sent in pieces. The client writes in large and reads in small,
 * odd-sized pieces; every byte must come back once, in order, then EOF. */
START_TEST(echo_handler_partial_sends)
{
	char *out = pattern(PARTIAL_LEN), *in = malloc(PARTIAL_LEN);
	struct conn *c = calloc(1, sizeof(*c) + handler_echo.state_size);
	size_t sent = 0, got = 0;
	int sv[2], want;

	ck_assert(in && c);
	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv), 0);
	ck_assert_int_eq(setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &(int){ 1 }, sizeof(int)), 0);
	c->fd = sv[0];
	c->handler = &handler_echo;
	c->client.family = AF_UNIX;
	want = handler_echo.open(c);
	for (int step = 0; step < 1000000 && want != HANDLER_CLOSE; step++) {
		ssize_t n;

		if (sent < PARTIAL_LEN) {
			n = send(sv[1], out + sent, PARTIAL_LEN - sent < 50000 ? PARTIAL_LEN - sent : 50000,
				 MSG_DONTWAIT);
			sent += n > 0 ? (size_t)n : 0;
			if (sent == PARTIAL_LEN)
				shutdown(sv[1], SHUT_WR);
		}
		want = handler_echo.ready(c, (uint32_t)want);
		n = recv(sv[1], in + got, PARTIAL_LEN - got < 777 ? PARTIAL_LEN - got : 777, MSG_DONTWAIT);
		got += n > 0 ? (size_t)n : 0;
	}
	ck_assert_int_eq(want, HANDLER_CLOSE);
	while (got < PARTIAL_LEN) {
		ssize_t n = recv(sv[1], in + got, PARTIAL_LEN - got, MSG_DONTWAIT);

		ck_assert_int_gt(n, 0);
		got += (size_t)n;
	}
	ck_assert(memcmp(in, out, PARTIAL_LEN) == 0);
	handler_echo.close(c);
	close(sv[0]);
	ck_assert_int_eq(recv(sv[1], in, 1, MSG_DONTWAIT), 0);
	close(sv[1]);
	free(c);
	free(in);
	free(out);
}
END_TEST

/* Every descriptor in master and workers is close-on-exec; sockets are non-blocking. */
static void check_process_fds(pid_t pid, int *sockets)
{
	char path[64], link[256], target[256];
	struct dirent *e;
	DIR *dir;

	snprintf(path, sizeof(path), "/proc/%ld/fd", (long)pid);
	dir = opendir(path);
	ck_assert_ptr_nonnull(dir);
	while ((e = readdir(dir))) {
		int fd = atoi(e->d_name);
		long flags;
		ssize_t n;

		if (e->d_name[0] == '.' || fd <= 2)
			continue;
		flags = tl_fd_flags(pid, fd);
		snprintf(link, sizeof(link), "%s/%d", path, fd);
		n = readlink(link, target, sizeof(target) - 1);
		target[n > 0 ? n : 0] = '\0';
		ck_assert_msg(flags >= 0, "pid %ld fd %d unreadable", (long)pid, fd);
		ck_assert_msg(flags & O_CLOEXEC, "pid %ld fd %d (%s) lacks O_CLOEXEC", (long)pid, fd, target);
		if (strncmp(target, "socket:", 7) == 0) {
			ck_assert_msg(flags & O_NONBLOCK, "pid %ld fd %d (%s) is blocking", (long)pid, fd, target);
			(*sockets)++;
		}
	}
	closedir(dir);
}

START_TEST(descriptors_cloexec_nonblock)
{
	pid_t workers[8];
	size_t n;
	int clients[6], sockets = 0;

	start("");
	/* Open connections so accepted sockets are among the descriptors checked. */
	for (int i = 0; i < 6; i++) {
		clients[i] = i % 2 ? connect_unix() : tl_connect_tcp("127.0.0.1", port);
		ck_assert_int_ge(clients[i], 0);
		ck_assert(tl_echo(clients[i], "ping", 4, 5000));
	}
	check_process_fds(d.pid, &sockets);
	n = daemon_workers(&d, workers, 8);
	ck_assert_uint_eq(n, 2);
	for (size_t i = 0; i < n; i++)
		check_process_fds(workers[i], &sockets);
	/* listeners in master and both workers, plus the six accepted ones */
	ck_assert_int_ge(sockets, 6 + 3 * 2);
	for (int i = 0; i < 6; i++)
		close(clients[i]);
	stop();
}
END_TEST

/* After a last exchange on fd, the server closes it idle-timeout (300 ms)
 * later: not sooner, and not much later. */
static void assert_closed_idle(int fd)
{
	char buf[8];
	struct pollfd pfd = { .fd = fd, .events = POLLIN };
	uint64_t t0;

	ck_assert(tl_echo(fd, "z", 1, 5000));
	t0 = tl_now_ms();
	ck_assert_int_eq(poll(&pfd, 1, 5000), 1);
	ck_assert_int_eq(read(fd, buf, sizeof(buf)), 0);	/* closed by the server */
	ck_assert_uint_ge(tl_now_ms() - t0, 250);
	ck_assert_uint_lt(tl_now_ms() - t0, 2000);
	close(fd);
}

START_TEST(idle_timeout_closes)
{
	int fd;

	start("  idle-timeout = 300ms\n");
	fd = tl_connect_tcp("127.0.0.1", port);
	ck_assert_int_ge(fd, 0);
	assert_closed_idle(fd);
	stop();
}
END_TEST

/* Each exchange renews idle-timeout: a client that talks every 100 ms
 * stays for three timeouts and more, and is closed a timeout after it
 * stops (the worker renews lazily, when the old deadline comes). */
START_TEST(idle_timeout_renewed_by_activity)
{
	int fd;

	start("  idle-timeout = 300ms\n");
	fd = tl_connect_tcp("127.0.0.1", port);
	ck_assert_int_ge(fd, 0);
	for (int i = 0; i < 10; i++) {
		ck_assert_msg(tl_echo(fd, "a", 1, 5000), "closed after %d exchanges 100 ms apart", i);
		usleep(100 * 1000);
	}
	assert_closed_idle(fd);
	stop();
}
END_TEST

/* At max-connections a worker stops accepting: the next client waits in the
 * backlog and is served as soon as a slot frees, instead of being dropped. */
START_TEST(max_connections_waits_in_backlog)
{
	int held[4], extra;

	start("  max-connections = 2\n  idle-timeout = 0\n");
	/* 2 workers x 2 connections. */
	for (int i = 0; i < 4; i++) {
		held[i] = tl_connect_tcp("127.0.0.1", port);
		ck_assert_int_ge(held[i], 0);
		ck_assert(tl_echo(held[i], "h", 1, 5000));
	}
	extra = tl_connect_tcp("127.0.0.1", port);	/* completes in the kernel backlog */
	ck_assert_int_ge(extra, 0);
	ck_assert_int_eq(send(extra, "e", 1, 0), 1);
	struct pollfd pfd = { .fd = extra, .events = POLLIN };

	ck_assert_int_eq(poll(&pfd, 1, 500), 0);	/* not served yet, not reset either */
	close(held[0]);
	close(held[1]);
	ck_assert_int_eq(poll(&pfd, 1, 5000), 1);
	char c = 0;

	ck_assert_int_eq(read(extra, &c, 1), 1);
	ck_assert_int_eq(c, 'e');
	close(extra);
	for (int i = 2; i < 4; i++)
		close(held[i]);
	stop();
}
END_TEST

int main(void)
{
	Suite *s = suite_create("echo");
	TCase *tc = tcase_create("echo");

	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, echo_ipv4_ipv6_unix);
	tcase_add_test(tc, large_payload);
	tcase_add_test(tc, half_close);
	tcase_add_test(tc, slow_reader_held_back);
	tcase_add_test(tc, echo_handler_partial_sends);
	tcase_add_test(tc, descriptors_cloexec_nonblock);
	tcase_add_test(tc, idle_timeout_closes);
	tcase_add_test(tc, idle_timeout_renewed_by_activity);
	tcase_add_test(tc, max_connections_waits_in_backlog);
	suite_add_tcase(s, tc);
	return tl_run_suite(s);
}
