/* SPDX-License-Identifier: ISC */
/* check_load.c - bursts bigger than one accept batch, repeated (the edge-triggered
 * failure shows on the second round), helpers started in bursts, descriptor exhaustion without spinning,
 * and clients shared out among the workers. */
#include "config.h"

#include <check.h>
#include <errno.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <poll.h>
#include <stdbool.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "testlib.h"

#define BURST 600
#define ROUNDS 3
#define MSG_LEN 16

static int connect_nonblock(uint16_t port)
{
	struct sockaddr_in sin = { .sin_family = AF_INET, .sin_port = htons(port),
				   .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);

	ck_assert_int_ge(fd, 0);
	if (connect(fd, (struct sockaddr *)&sin, sizeof(sin)) < 0)
		ck_assert_msg(errno == EINPROGRESS, "connect: %s", strerror(errno));
	return fd;
}

struct busy_client {
	int fd;
	bool sent;
	size_t have;
	char msg[MSG_LEN + 1], got[MSG_LEN];
};

static void busy_connect(struct busy_client *c, uint16_t port, unsigned n)
{
	c->fd = connect_nonblock(port);
	c->sent = false;
	c->have = 0;
	snprintf(c->msg, sizeof(c->msg), "client-%09u", n);
}

/* Keeps nclients connected, each sending its own 16 bytes, reading them back
 * and closing, then replaced by a new one, until total have been answered or
 * the time is up (total == nclients: one burst, every client connecting
 * before any is served). Returns how many were answered; any other end fails. */
static unsigned keep_busy(uint16_t port, unsigned nclients, unsigned total, int timeout_ms)
{
	struct busy_client *cl = calloc(nclients, sizeof(*cl));
	struct pollfd *pfd = calloc(nclients, sizeof(*pfd));
	unsigned started = 0, done = 0;
	uint64_t deadline = tl_now_ms() + (uint64_t)timeout_ms;

	ck_assert(cl && pfd);
	for (unsigned i = 0; i < nclients; i++)
		busy_connect(&cl[i], port, started++);
	while (done < total && tl_now_ms() < deadline) {
		for (unsigned i = 0; i < nclients; i++) {
			pfd[i].fd = cl[i].fd;
			pfd[i].events = cl[i].sent ? POLLIN : POLLOUT;
		}
		if (poll(pfd, nclients, 100) <= 0)
			continue;
		for (unsigned i = 0; i < nclients; i++) {
			struct busy_client *c = &cl[i];
			ssize_t r;

			if (c->fd < 0 || !pfd[i].revents)
				continue;
			if (!c->sent) {
				ck_assert_int_eq(send(c->fd, c->msg, MSG_LEN, MSG_NOSIGNAL), MSG_LEN);
				c->sent = true;
				continue;
			}
			r = recv(c->fd, c->got + c->have, MSG_LEN - c->have, 0);
			ck_assert_msg(r > 0, "%s: %s", c->msg, r == 0 ? "closed" : strerror(errno));
			c->have += (size_t)r;
			if (c->have < MSG_LEN)
				continue;
			ck_assert(memcmp(c->got, c->msg, MSG_LEN) == 0);
			close(c->fd);
			c->fd = -1;
			done++;
			if (started < total)
				busy_connect(c, port, started++);
		}
	}
	for (unsigned i = 0; i < nclients; i++)
		if (cl[i].fd >= 0)
			close(cl[i].fd);
	free(cl);
	free(pfd);
	return done;
}

START_TEST(burst_rounds_all_served)
{
	uint16_t port = tl_free_port();
	char conf[512];
	struct daemon d;

	tl_raise_nofile();
	snprintf(conf, sizeof(conf),
		 "service echo {\n  listen = { \"127.0.0.1:%u\" }\n  handler = \"echo\"\n"
		 "  workers = 1\n  backlog = 1024\n  max-connections = 2000\n}\n", port);
	daemon_start(&d, conf, NULL);
	ck_assert(daemon_wait_ready(&d, 10000));
	for (int round = 0; round < ROUNDS; round++) {
		unsigned served = keep_busy(port, BURST, BURST, 30000);

		ck_assert_msg(served == BURST, "round %d: %u of %d served", round + 1, served, BURST);
	}
	daemon_stop(&d);
}
END_TEST

#define EXEC_CLIENTS 32
#define EXEC_TOTAL 1500

/* Helpers started and ended all the time, in several workers: every client
 * answered, no worker dying. A worker that closed a finished helper's pidfd
 * without taking it out of its epoll set got an event for the freed
 * connection whenever a helper it had just spawned, preempted inside its
 * execve, still held a copy of that descriptor: a reset client, and a worker
 * aborting on a double free. Races need numbers, so this keeps 32 clients
 * busy for 1500 connections. */
START_TEST(exec_helpers_under_load)
{
	uint16_t port = tl_free_port();
	char conf[512];
	struct daemon d;
	unsigned served;

	snprintf(conf, sizeof(conf),
		 "service cat {\n  listen = { \"127.0.0.1:%u\" }\n  handler = \"exec\"\n"
		 "  exec = { \"/bin/cat\" }\n  workers = 2\n}\n", port);
	daemon_start_ready(&d, conf, NULL);
	served = keep_busy(port, EXEC_CLIENTS, EXEC_TOTAL, 60000);
	ck_assert_msg(served == EXEC_TOTAL, "%u of %u served; log:\n%s", served, EXEC_TOTAL,
		      tl_read_file(d.log));
	ck_assert_msg(!daemon_log_contains(&d, "killed by signal"), "log:\n%s", tl_read_file(d.log));
	daemon_stop(&d);
}
END_TEST

#define STARVED_CLIENTS 48

/* With a descriptor limit below the client count, accept4 fails with EMFILE
 * while the listener stays readable: the worker must pause, not spin, and
 * serve everyone once descriptors come free. */
START_TEST(emfile_does_not_spin)
{
	uint16_t port = tl_free_port();
	struct daemon_opts opts = { .nofile = 32 };
	char conf[512];
	struct daemon d;
	int fds[STARVED_CLIENTS], served[STARVED_CLIENTS], nserved = 0, waiting[STARVED_CLIENTS], nwaiting = 0;
	pid_t worker;
	long cpu0, cpu1;

	snprintf(conf, sizeof(conf),
		 "service echo {\n  listen = { \"127.0.0.1:%u\" }\n  handler = \"echo\"\n"
		 "  workers = 1\n  idle-timeout = 0\n}\n", port);
	daemon_start(&d, conf, &opts);
	ck_assert(daemon_wait_ready(&d, 10000));
	ck_assert_uint_eq(daemon_workers(&d, &worker, 1), 1);
	for (int i = 0; i < STARVED_CLIENTS; i++) {
		fds[i] = tl_connect_tcp("127.0.0.1", port);
		ck_assert_int_ge(fds[i], 0);
		ck_assert_int_eq(send(fds[i], "0123456789abcdef", MSG_LEN, 0), MSG_LEN);
	}
	ck_assert_msg(daemon_wait_log(&d, "pausing accepts", 5000), "log:\n%s", tl_read_file(d.log));
	ck_assert(daemon_log_contains(&d, "Too many open files"));

	/* Starved: a spinning worker would burn ~1000 ms of CPU in this second. */
	cpu0 = tl_cpu_ms(worker);
	usleep(1000 * 1000);
	cpu1 = tl_cpu_ms(worker);
	ck_assert_msg(cpu1 - cpu0 < 200, "worker used %ld ms CPU in 1 s while starved", cpu1 - cpu0);

	for (int i = 0; i < STARVED_CLIENTS; i++) {
		struct pollfd pfd = { .fd = fds[i], .events = POLLIN };

		if (poll(&pfd, 1, 0) == 1)
			served[nserved++] = fds[i];
		else
			waiting[nwaiting++] = fds[i];
	}
	ck_assert_int_gt(nserved, 0);
	ck_assert_int_gt(nwaiting, 0);	/* really starved: some still in the backlog */
	for (int i = 0; i < nserved; i++)
		close(served[i]);
	/* Descriptors are free again: everyone still waiting gets served. */
	for (int i = 0; i < nwaiting; i++) {
		char buf[MSG_LEN];
		size_t got = 0;
		uint64_t deadline = tl_now_ms() + 10000;

		while (got < MSG_LEN && tl_now_ms() < deadline) {
			struct pollfd pfd = { .fd = waiting[i], .events = POLLIN };

			if (poll(&pfd, 1, 100) == 1) {
				ssize_t r = recv(waiting[i], buf + got, MSG_LEN - got, 0);

				ck_assert_int_gt(r, 0);
				got += (size_t)r;
			}
		}
		ck_assert_msg(got == MSG_LEN, "waiting client %d of %d never served", i, nwaiting);
		ck_assert(memcmp(buf, "0123456789abcdef", MSG_LEN) == 0);
		close(waiting[i]);
	}
	ck_assert_int_eq(daemon_wait_exit(&d, 0), -1);
	daemon_stop(&d);
}
END_TEST

#define ROUND_WORKERS 4
#define ROUND_CLIENTS 400

/* One client at a time finds every worker idle. An EPOLLEXCLUSIVE wakeup
 * goes to the first idle waiter in the listener's queue, so unless workers
 * take turns at the head of it, the first worker serves every client and the
 * others none. Each worker says at exit how many it served. */
START_TEST(accepts_go_round_the_workers)
{
	uint16_t port = tl_free_port();
	struct daemon d;
	unsigned counts[ROUND_WORKERS + 1], n = 0, total = 0;
	char *log, *p;

	daemon_start_ready(&d, tl_echo_conf(port, ROUND_WORKERS, "log-level = \"debug\""), NULL);
	ck_assert(daemon_wait_workers(&d, ROUND_WORKERS, 5000));
	for (int i = 0; i < ROUND_CLIENTS; i++)
		ck_assert_msg(tl_echo_tcp(port, "take-turns"), "client %d not served", i);
	kill(d.pid, SIGTERM);
	ck_assert_int_eq(tl_exit_code(daemon_wait_exit(&d, 10000)), 0);
	log = tl_read_file(d.log);
	for (p = log; (p = strstr(p, "exiting: ")) != NULL && n <= ROUND_WORKERS; p++)
		if (sscanf(p, "exiting: %u connections served", &counts[n]) == 1)
			total += counts[n++];
	ck_assert_msg(n == ROUND_WORKERS && total == ROUND_CLIENTS, "%u workers served %u; log:\n%s",
		      n, total, log);
	for (unsigned i = 0; i < n; i++)
		ck_assert_msg(counts[i] >= ROUND_CLIENTS / ROUND_WORKERS / 2,
			      "a worker served %u of %u clients; log:\n%s", counts[i], total, log);
	free(log);
	daemon_stop(&d);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("load");
	TCase *tc = tcase_create("load");

	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, burst_rounds_all_served);
	tcase_add_test(tc, exec_helpers_under_load);
	tcase_add_test(tc, emfile_does_not_spin);
	tcase_add_test(tc, accepts_go_round_the_workers);
	suite_add_tcase(s, tc);
	return tl_run_suite(s);
}
