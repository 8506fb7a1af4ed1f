/* SPDX-License-Identifier: ISC */
/* refserver.c - the benchmark's reference: the floor cost of the preforking model.
 *
 *   refserver -w WORKERS 127.x.y.z:PORT|[::1]:PORT|unix:/path
 *
 * A master binds one listener and forks N workers; each runs a
 * level-triggered epoll loop with accept4 and a non-blocking echo, and
 * nothing else: no config, no limits, no supervision, no socket options.
 * It is the floor: per connection exactly what a minimal echo worker must
 * do (accept4 until EAGAIN on an EPOLLEXCLUSIVE listener, epoll_ctl ADD,
 * one recv and its send per readiness, close at EOF). The master waits for
 * SIGTERM or SIGINT, then ends the workers it forked, by pid. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "benchaddr.h"

#define MAX_WORKERS 64
#define BUFSIZE 16384

/* Echoes what is readable; -1 when the connection is done. Level-triggered:
 * one read per readiness (another only when the buffer came back full), as
 * epoll reports again whatever is left. */
static int echo(int fd)
{
	char buf[BUFSIZE];

	for (;;) {
		ssize_t n = recv(fd, buf, sizeof(buf), 0), off = 0;

		if (n < 0 && errno == EAGAIN)
			return 0;
		if (n <= 0)
			return -1;
		while (off < n) {
			ssize_t w = send(fd, buf + off, (size_t)(n - off), MSG_NOSIGNAL);

			/* Benchmark payloads are 16 bytes and never fill a send
			 * buffer; a client that lets it fill is given 1 s. */
			if (w < 0 && errno == EAGAIN &&
			    poll(&(struct pollfd){ .fd = fd, .events = POLLOUT }, 1, 1000) == 1)
				continue;
			if (w < 0)
				return -1;
			off += w;
		}
		if (n < (ssize_t)sizeof(buf))
			return 0;
	}
}

static void __attribute__((noreturn)) worker(int lfd)
{
	struct epoll_event ev = { .events = EPOLLIN | EPOLLEXCLUSIVE, .data.fd = lfd }, events[64];
	int epfd = epoll_create1(EPOLL_CLOEXEC);

	prctl(PR_SET_PDEATHSIG, SIGTERM);
	signal(SIGTERM, SIG_DFL);
	signal(SIGINT, SIG_IGN);
	if (epfd < 0 || epoll_ctl(epfd, EPOLL_CTL_ADD, lfd, &ev) < 0)
		_exit(1);
	for (;;) {
		int n = epoll_wait(epfd, events, 64, -1);

		for (int i = 0; i < n; i++) {
			int fd = events[i].data.fd;

			if (fd != lfd) {
				if (echo(fd) < 0)
					close(fd);
				continue;
			}
			for (int k = 0; k < 64; k++) {
				int c = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
				struct epoll_event cev = { .events = EPOLLIN, .data.fd = c };

				if (c < 0)
					break;
				if (epoll_ctl(epfd, EPOLL_CTL_ADD, c, &cev) < 0)
					close(c);
			}
		}
	}
}

int main(int argc, char **argv)
{
	struct sockaddr_storage ss;
	socklen_t len;
	pid_t pids[MAX_WORKERS];
	int workers = 1, opt, lfd, one = 1;
	sigset_t stop;

	while ((opt = getopt(argc, argv, "w:")) != -1) {
		if (opt != 'w')
			return 2;
		workers = atoi(optarg);
	}
	if (optind != argc - 1 || workers < 1 || workers > MAX_WORKERS ||
	    bench_parse_address(argv[optind], &ss, &len) < 0) {
		fprintf(stderr, "usage: refserver -w 1..%d 127.x.y.z:PORT|[::1]:PORT|unix:/path\n",
			MAX_WORKERS);
		return 2;
	}
	lfd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (ss.ss_family != AF_UNIX)
		setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	else
		unlink(((struct sockaddr_un *)&ss)->sun_path);
	if (lfd < 0 || bind(lfd, (struct sockaddr *)&ss, len) < 0 || listen(lfd, 511) < 0) {
		perror("refserver: listen");
		return 1;
	}
	sigemptyset(&stop);
	sigaddset(&stop, SIGTERM);
	sigaddset(&stop, SIGINT);
	sigprocmask(SIG_BLOCK, &stop, NULL);
	for (int i = 0; i < workers; i++) {
		pids[i] = fork();
		if (pids[i] == 0) {
			sigprocmask(SIG_UNBLOCK, &stop, NULL);
			worker(lfd);
		}
	}
	printf("ready\n");
	fflush(stdout);
	sigwaitinfo(&stop, NULL);
	for (int i = 0; i < workers; i++)
		if (pids[i] > 0)
			kill(pids[i], SIGTERM);
	for (int i = 0; i < workers; i++)
		if (pids[i] > 0)
			waitpid(pids[i], NULL, 0);
	if (ss.ss_family == AF_UNIX)
		unlink(((struct sockaddr_un *)&ss)->sun_path);
	return 0;
}
