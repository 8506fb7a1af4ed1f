/* SPDX-License-Identifier: ISC */
/* loadgen.c - the benchmark's load generator: C concurrent echo clients for D seconds.
 *
 *   loadgen [-m conn|persist] [-c CLIENTS] [-d SECONDS] [-s BYTES] ADDRESS
 *
 * ADDRESS is 127.x.y.z:PORT, [::1]:PORT or unix:/path: nothing else is
 * accepted, so a benchmark cannot send traffic off the machine.
 * conn:    each client connects, writes S bytes, reads them back, closes; again.
 * persist: each client keeps one connection and does S-byte request/response.
 * One thread, one epoll set, non-blocking sockets: the generator should not
 * be what limits the rate. Prints one line of key=value results. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "benchaddr.h"

#define MAX_CLIENTS 10000
#define MAX_SECONDS 600
#define MAX_BYTES 4096
#define OP_TIMEOUT_US 5000000	/* an operation that takes longer is an error */
#define SUB_BUCKETS 64		/* per power of two: latencies to about 1.5% */
#define BUCKETS (64 * SUB_BUCKETS)

enum err_kind { ERR_REFUSED, ERR_RESET, ERR_TIMEOUT, ERR_EOF, ERR_MISMATCH, ERR_OTHER, ERR_KINDS };
static const char *const err_names[ERR_KINDS] = {
	"refused", "reset", "timeout", "eof", "mismatch", "other",
};

struct client {
	int fd;
	bool connecting;
	size_t sent, got;
	uint64_t started_us;
};

static struct {
	bool persist;
	unsigned clients, seconds;
	size_t bytes;
	struct sockaddr_storage addr;
	socklen_t addrlen;
	int epfd;
	char payload[MAX_BYTES];
	uint64_t ops, errors[ERR_KINDS], hist[BUCKETS], max_us;
} lg;

static uint64_t now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
}

static unsigned bucket_of(uint64_t us)
{
	unsigned exp;

	if (us < SUB_BUCKETS)
		return (unsigned)us;
	exp = 63 - (unsigned)__builtin_clzll(us);	/* us >= 2^exp */
	return (exp - 5) * SUB_BUCKETS + (unsigned)((us >> (exp - 6)) - SUB_BUCKETS);
}

static uint64_t bucket_value(unsigned b)
{
	unsigned exp = b / SUB_BUCKETS + 5, sub = b % SUB_BUCKETS;

	if (b < SUB_BUCKETS)
		return b;
	return (uint64_t)(SUB_BUCKETS + sub) << (exp - 6);
}

static uint64_t percentile(double p)
{
	uint64_t want = (uint64_t)((double)lg.ops * p), seen = 0;

	for (unsigned b = 0; b < BUCKETS; b++) {
		seen += lg.hist[b];
		if (seen > want)
			return bucket_value(b);
	}
	return lg.max_us;
}

static void record(uint64_t us)
{
	unsigned b = bucket_of(us);

	lg.ops++;
	lg.hist[b < BUCKETS ? b : BUCKETS - 1]++;
	if (us > lg.max_us)
		lg.max_us = us;
}

static void fail(struct client *c, enum err_kind kind);

static void start(struct client *c)
{
	int one = 1;
	struct epoll_event ev = { .events = EPOLLOUT, .data.ptr = c };

	c->fd = socket(lg.addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (c->fd < 0) {
		perror("socket");
		exit(1);
	}
	if (lg.addr.ss_family != AF_UNIX)
		setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	c->sent = c->got = 0;
	c->started_us = now_us();
	c->connecting = true;
	if (connect(c->fd, (struct sockaddr *)&lg.addr, lg.addrlen) < 0 && errno != EINPROGRESS &&
	    errno != EAGAIN) {
		fail(c, errno == ECONNREFUSED ? ERR_REFUSED : ERR_OTHER);
		return;
	}
	epoll_ctl(lg.epfd, EPOLL_CTL_ADD, c->fd, &ev);
}

/* Counted; the client starts again at the next tick, not at once, so that
 * a server that refuses everything cannot make us spin. */
static void fail(struct client *c, enum err_kind kind)
{
	lg.errors[kind]++;
	if (c->fd >= 0)
		close(c->fd);
	c->fd = -1;
}

static void next_request(struct client *c)
{
	struct epoll_event ev = { .events = EPOLLOUT, .data.ptr = c };

	c->sent = c->got = 0;
	c->started_us = now_us();
	epoll_ctl(lg.epfd, EPOLL_CTL_MOD, c->fd, &ev);
}

static void progress(struct client *c, uint32_t events)
{
	char buf[MAX_BYTES];
	ssize_t n;

	if (c->connecting) {
		int err = 0;
		socklen_t len = sizeof(err);

		getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len);
		if (err) {
			fail(c, err == ECONNREFUSED ? ERR_REFUSED : err == ECONNRESET ? ERR_RESET : ERR_OTHER);
			return;
		}
		c->connecting = false;
	}
	if (c->sent < lg.bytes && (events & EPOLLOUT)) {
		n = send(c->fd, lg.payload + c->sent, lg.bytes - c->sent, MSG_NOSIGNAL);
		if (n < 0 && errno != EAGAIN) {
			fail(c, errno == ECONNRESET || errno == EPIPE ? ERR_RESET : ERR_OTHER);
			return;
		}
		if (n > 0)
			c->sent += (size_t)n;
		if (c->sent == lg.bytes) {
			struct epoll_event ev = { .events = EPOLLIN, .data.ptr = c };

			epoll_ctl(lg.epfd, EPOLL_CTL_MOD, c->fd, &ev);
		}
		return;
	}
	n = recv(c->fd, buf, lg.bytes - c->got, 0);
	if (n < 0 && errno == EAGAIN)
		return;
	if (n <= 0) {
		fail(c, n == 0 ? ERR_EOF : errno == ECONNRESET ? ERR_RESET : ERR_OTHER);
		return;
	}
	if (memcmp(buf, lg.payload + c->got, (size_t)n) != 0) {
		fail(c, ERR_MISMATCH);
		return;
	}
	c->got += (size_t)n;
	if (c->got < lg.bytes)
		return;
	record(now_us() - c->started_us);
	if (lg.persist) {
		next_request(c);
		return;
	}
	close(c->fd);
	start(c);
}

/* Every tick: operations past their time fail, failed clients start again. */
static void tick(struct client *cl, uint64_t now)
{
	for (unsigned i = 0; i < lg.clients; i++) {
		if (cl[i].fd >= 0 && now > cl[i].started_us + OP_TIMEOUT_US)
			fail(&cl[i], ERR_TIMEOUT);
		if (cl[i].fd < 0)
			start(&cl[i]);
	}
}

static void usage(void)
{
	fprintf(stderr, "usage: loadgen [-m conn|persist] [-c 1..%d] [-d 1..%d] [-s 1..%d] "
		"127.x.y.z:PORT|[::1]:PORT|unix:/path\n", MAX_CLIENTS, MAX_SECONDS, MAX_BYTES);
	exit(2);
}

int main(int argc, char **argv)
{
	struct epoll_event events[256];
	struct client *cl;
	uint64_t t0, end, last_expire;
	unsigned long errors = 0;
	int opt;

	lg.clients = 32;
	lg.seconds = 5;
	lg.bytes = 16;
	while ((opt = getopt(argc, argv, "m:c:d:s:")) != -1) {
		switch (opt) {
		case 'm':
			if (strcmp(optarg, "persist") != 0 && strcmp(optarg, "conn") != 0)
				usage();
			lg.persist = strcmp(optarg, "persist") == 0;
			break;
		case 'c':
			lg.clients = (unsigned)atoi(optarg);
			break;
		case 'd':
			lg.seconds = (unsigned)atoi(optarg);
			break;
		case 's':
			lg.bytes = (size_t)atoi(optarg);
			break;
		default:
			usage();
		}
	}
	if (optind != argc - 1 || lg.clients < 1 || lg.clients > MAX_CLIENTS || lg.seconds < 1 ||
	    lg.seconds > MAX_SECONDS || lg.bytes < 1 || lg.bytes > MAX_BYTES)
		usage();
	if (bench_parse_address(argv[optind], &lg.addr, &lg.addrlen) < 0) {
		fprintf(stderr, "loadgen: %s: only 127.0.0.0/8, [::1] and unix:/path targets\n",
			argv[optind]);
		return 2;
	}
	signal(SIGPIPE, SIG_IGN);
	for (size_t i = 0; i < lg.bytes; i++)
		lg.payload[i] = (char)('a' + i % 26);
	lg.epfd = epoll_create1(EPOLL_CLOEXEC);
	cl = calloc(lg.clients, sizeof(*cl));
	if (lg.epfd < 0 || !cl) {
		perror("loadgen");
		return 1;
	}
	t0 = last_expire = now_us();
	end = t0 + (uint64_t)lg.seconds * 1000000;
	for (unsigned i = 0; i < lg.clients; i++)
		start(&cl[i]);
	for (uint64_t now = t0; now < end; now = now_us()) {
		int n = epoll_wait(lg.epfd, events, 256, 100);

		for (int i = 0; i < n; i++)
			progress(events[i].data.ptr, events[i].events);
		if (now - last_expire > 100000) {
			tick(cl, now);
			last_expire = now;
		}
	}
	for (int k = 0; k < ERR_KINDS; k++)
		errors += lg.errors[k];
	printf("mode=%s clients=%u seconds=%u bytes=%zu ops=%llu rate=%.0f p50_us=%llu "
	       "p99_us=%llu max_us=%llu errors=%lu", lg.persist ? "persist" : "conn", lg.clients,
	       lg.seconds, lg.bytes, (unsigned long long)lg.ops,
	       (double)lg.ops / ((double)(now_us() - t0) / 1e6),
	       (unsigned long long)percentile(0.50), (unsigned long long)percentile(0.99),
	       (unsigned long long)lg.max_us, errors);
	for (int k = 0; k < ERR_KINDS; k++)
		printf(" err_%s=%llu", err_names[k], (unsigned long long)lg.errors[k]);
	printf("\n");
	return 0;
}
