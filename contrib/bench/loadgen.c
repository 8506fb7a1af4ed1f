/* SPDX-License-Identifier: ISC */
/* loadgen.c - the benchmark's load generator: C concurrent echo clients for D seconds or N operations.
 *
 *   loadgen [-m conn|persist] [-c CLIENTS] [-d SECONDS] [-n COUNT] [-s BYTES]
 *           [-S 127.A.B.C[+N]|none] [-p USEC] ADDRESS
 *
 * ADDRESS is 127.x.y.z:PORT, [::1]:PORT or unix:/path: nothing else is
 * accepted, so a benchmark cannot send traffic off the machine.
 * conn:    each client connects, writes S bytes, reads them back, closes; again.
 * persist: each client keeps one connection and does S-byte request/response.
 * The run ends after SECONDS, or as soon as COUNT operations are done, or
 * at SIGTERM or SIGINT (what was done is reported as usual: a test can run
 * the load for exactly as long as something takes).
 *
 * Over IPv4 each new connection is bound to the next of N loopback source
 * addresses (default 127.0.0.2+16, round-robin; IP_BIND_ADDRESS_NO_PORT, so
 * the port is picked at connect() for the whole 4-tuple): from one source
 * address the ~28,000 ephemeral ports cycling through TIME_WAIT cap W3 at
 * about 14,000 connections/s, and connect()'s port search costs the client
 * more than the server's whole accept. [::1] is the only IPv6 loopback
 * address, so IPv6 clients are not spread.
 *
 * One thread, one epoll set; each socket is registered once, edge-triggered
 * for input and output, and written directly when its request is due (a
 * request always fits an empty socket buffer), so an operation costs the
 * client its socket calls and nothing more: conn does socket, [setsockopt,
 * bind,] connect, send, epoll_ctl(ADD), recv, close; persist send and recv.
 * One clock read per operation: its end is the next one's start. The line
 * of key=value results carries the generator's own CPU time (getrusage).
 *
 * -p USEC (one client only) is for counting what a server does per
 * operation: the client works step by step with blocking calls and waits
 * USEC before each connect, send and close, so the server has always gone back
 * to epoll_wait by then and takes the same path every time (without it, how
 * often a read finds the next request already there, or the client's FIN,
 * depends on how fast the server runs, and under valgrind it runs slowly). */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
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
#define MAX_COUNT 100000000
#define MAX_BYTES 4096
#define MAX_SOURCES 4096
#define MAX_PAUSE_US 1000000
#define OP_TIMEOUT_US 5000000	/* an operation that takes longer is an error */
#define TICK_US 100000
#define SUB_BUCKETS 64		/* per power of two: latencies to about 1.5% */
#define BUCKETS (64 * SUB_BUCKETS)

static volatile sig_atomic_t stop_asked;

enum err_kind { ERR_REFUSED, ERR_RESET, ERR_TIMEOUT, ERR_EOF, ERR_MISMATCH, ERR_OTHER, ERR_KINDS };
static const char *const err_names[ERR_KINDS] = {
	"refused", "reset", "timeout", "eof", "mismatch", "other",
};

enum client_state { CL_IDLE, CL_CONNECTING, CL_SENDING, CL_RECEIVING };

struct client {
	int fd;
	enum client_state state;
	size_t sent, got;
	uint64_t started_us;
};

static struct {
	bool persist;
	unsigned clients, seconds;
	uint64_t count;			/* 0: no limit but the time */
	size_t bytes;
	struct sockaddr_storage addr;
	socklen_t addrlen;
	uint32_t source_first;		/* host order; sources == 0: the kernel's choice */
	unsigned sources, next_source;
	unsigned pause_us;		/* -p: step by step, this long before each send and close */
	int epfd;
	char payload[MAX_BYTES];
	uint64_t now_us;		/* the last clock read */
	uint64_t ops, inflight, errors[ERR_KINDS], hist[BUCKETS], max_us;
} lg;

static uint64_t clock_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	lg.now_us = (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
	return lg.now_us;
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

/* Whether another operation may begin: with -n, those done and those under
 * way never pass COUNT. */
static bool may_begin(void)
{
	return lg.count == 0 || lg.ops + lg.inflight < lg.count;
}

/* Counted; the client starts again at the next tick, not at once, so that
 * a server that refuses everything cannot make us spin. */
static void fail(struct client *c, enum err_kind kind)
{
	lg.errors[kind]++;
	lg.inflight--;
	close(c->fd);
	c->fd = -1;
	c->state = CL_IDLE;
}

static enum err_kind kind_of(int err)
{
	switch (err) {
	case ECONNREFUSED:
		return ERR_REFUSED;
	case ECONNRESET:
	case EPIPE:
		return ERR_RESET;
	default:
		return ERR_OTHER;
	}
}

static int bind_source(int fd)
{
	struct sockaddr_in src = { .sin_family = AF_INET };
	int one = 1;

	src.sin_addr.s_addr = htonl(lg.source_first + lg.next_source);
	lg.next_source = (lg.next_source + 1) % lg.sources;
	if (setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof(one)) < 0)
		return -1;
	return bind(fd, (struct sockaddr *)&src, sizeof(src));
}

/* Writes what is left of the request; the answer is awaited next. */
static void send_request(struct client *c)
{
	ssize_t n = send(c->fd, lg.payload + c->sent, lg.bytes - c->sent, MSG_NOSIGNAL);

	if (n < 0) {
		/* Not connected yet, or a full buffer: the next EPOLLOUT edge. */
		if (errno == EAGAIN)
			c->state = CL_SENDING;
		else
			fail(c, kind_of(errno));
		return;
	}
	c->sent += (size_t)n;
	c->state = c->sent == lg.bytes ? CL_RECEIVING : CL_SENDING;
}

/* A new connection; on loopback it is usually established by the time
 * connect() returns, so the request goes out at once. */
static void start(struct client *c, uint64_t now)
{
	struct epoll_event ev = { .events = EPOLLIN | EPOLLOUT | EPOLLET, .data.ptr = c };

	c->fd = -1;
	c->state = CL_IDLE;
	if (!may_begin())
		return;
	c->fd = socket(lg.addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (c->fd < 0) {
		perror("loadgen: socket");
		exit(1);
	}
	lg.inflight++;
	c->sent = c->got = 0;
	c->started_us = now;
	if (lg.sources && bind_source(c->fd) < 0) {
		fail(c, ERR_OTHER);
		return;
	}
	if (connect(c->fd, (struct sockaddr *)&lg.addr, lg.addrlen) == 0 || errno == EINPROGRESS) {
		send_request(c);
	} else if (errno == EAGAIN && lg.addr.ss_family == AF_UNIX) {
		/* A unix listener with a full backlog: nothing is under way. */
		fail(c, ERR_REFUSED);
		return;
	} else {
		fail(c, kind_of(errno));
		return;
	}
	if (c->fd >= 0 && epoll_ctl(lg.epfd, EPOLL_CTL_ADD, c->fd, &ev) < 0) {
		perror("loadgen: epoll_ctl");
		exit(1);
	}
}

static void complete(struct client *c)
{
	uint64_t now = clock_us();

	record(now - c->started_us);
	lg.inflight--;
	if (lg.persist && may_begin()) {
		lg.inflight++;
		c->sent = c->got = 0;
		c->started_us = now;
		send_request(c);
		return;
	}
	close(c->fd);
	c->fd = -1;
	c->state = CL_IDLE;
	if (!lg.persist)
		start(c, now);
}

static void receive(struct client *c)
{
	char buf[MAX_BYTES];

	/* Edge-triggered: read until the answer is whole or nothing is left. */
	while (c->got < lg.bytes) {
		ssize_t n = recv(c->fd, buf, lg.bytes - c->got, 0);

		if (n < 0 && errno == EAGAIN)
			return;
		if (n <= 0) {
			fail(c, n == 0 ? ERR_EOF : kind_of(errno));
			return;
		}
		if (memcmp(buf, lg.payload + c->got, (size_t)n) != 0) {
			fail(c, ERR_MISMATCH);
			return;
		}
		c->got += (size_t)n;
	}
	complete(c);
}

static void progress(struct client *c, uint32_t events)
{
	if (c->fd < 0)
		return;
	if (c->state == CL_SENDING && (events & (EPOLLOUT | EPOLLERR | EPOLLHUP)))
		send_request(c);
	if (c->fd >= 0 && c->state == CL_RECEIVING && (events & (EPOLLIN | EPOLLERR | EPOLLHUP)))
		receive(c);
}

/* Every tick: operations past their time fail, failed clients start again. */
static void tick(struct client *cl, uint64_t now)
{
	for (unsigned i = 0; i < lg.clients; i++) {
		if (cl[i].fd >= 0 && now > cl[i].started_us + OP_TIMEOUT_US)
			fail(&cl[i], ERR_TIMEOUT);
		if (cl[i].fd < 0)
			start(&cl[i], now);
	}
}

static void pause_step(void)
{
	struct timespec ts = { .tv_nsec = (long)lg.pause_us * 1000 };

	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

/* -p: one client, blocking calls, a pause before each connect, send and close;
 * the latency is the request's alone (send to whole answer), pauses and
 * connect left out. */
static void run_stepwise(uint64_t end)
{
	struct client c = { .fd = -1 };
	char buf[MAX_BYTES];

	while (!stop_asked && clock_us() < end && lg.ops < lg.count) {
		enum err_kind kind = ERR_EOF;
		uint64_t began;

		lg.inflight++;
		if (c.fd < 0) {
			pause_step();
			c.fd = socket(lg.addr.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
			if (c.fd < 0) {
				perror("loadgen: socket");
				exit(1);
			}
			if ((lg.sources && bind_source(c.fd) < 0) ||
			    connect(c.fd, (struct sockaddr *)&lg.addr, lg.addrlen) < 0) {
				/* The stop came during the connect: no operation began. */
				if (errno == EINTR && stop_asked) {
					close(c.fd);
					c.fd = -1;
					lg.inflight--;
					break;
				}
				fail(&c, kind_of(errno));
				continue;
			}
		}
		pause_step();
		began = clock_us();
		if (send(c.fd, lg.payload, lg.bytes, MSG_NOSIGNAL) != (ssize_t)lg.bytes) {
			fail(&c, kind_of(errno));
			continue;
		}
		for (c.got = 0; c.got < lg.bytes;) {
			ssize_t n = recv(c.fd, buf, lg.bytes - c.got, 0);

			/* A stop asked for ends the run after this operation. */
			if (n < 0 && errno == EINTR)
				continue;
			if (n < 0)
				kind = kind_of(errno);
			else if (n > 0 && memcmp(buf, lg.payload + c.got, (size_t)n) != 0)
				kind = ERR_MISMATCH;
			if (n <= 0 || kind == ERR_MISMATCH)
				break;
			c.got += (size_t)n;
		}
		if (c.got < lg.bytes) {
			fail(&c, kind);
			continue;
		}
		record(clock_us() - began);
		lg.inflight--;
		if (!lg.persist || lg.ops == lg.count) {
			pause_step();
			close(c.fd);
			c.fd = -1;
		}
	}
	if (c.fd >= 0)
		close(c.fd);
}

static void on_stop(int sig)
{
	(void)sig;
	stop_asked = 1;
}

static void usage(void)
{
	fprintf(stderr, "usage: loadgen [-m conn|persist] [-c 1..%d] [-d 1..%d] [-n 1..%d] [-s 1..%d] "
		"[-S 127.A.B.C[+1..%d]|none] [-p 1..%d (with -c 1 -n N)] "
		"127.x.y.z:PORT|[::1]:PORT|unix:/path\n",
		MAX_CLIENTS, MAX_SECONDS, MAX_COUNT, MAX_BYTES, MAX_SOURCES, MAX_PAUSE_US);
	exit(2);
}

static long number(const char *s, long min, long max)
{
	char *end;
	long v = strtol(s, &end, 10);

	if (end == s || *end || v < min || v > max)
		usage();
	return v;
}

/* 127.A.B.C[+N]: N source addresses from 127.A.B.C on, all in 127.0.0.0/8. */
static void parse_sources(const char *s)
{
	char text[32];
	const char *plus = strchr(s, '+');
	size_t len = plus ? (size_t)(plus - s) : strlen(s);
	struct in_addr a;

	if (strcmp(s, "none") == 0) {
		lg.sources = 0;
		return;
	}
	if (len >= sizeof(text))
		usage();
	memcpy(text, s, len);
	text[len] = '\0';
	lg.sources = plus ? (unsigned)number(plus + 1, 1, MAX_SOURCES) : 1;
	if (inet_pton(AF_INET, text, &a) != 1 || (ntohl(a.s_addr) >> 24) != 127 ||
	    ((ntohl(a.s_addr) + lg.sources - 1) >> 24) != 127)
		usage();
	lg.source_first = ntohl(a.s_addr);
}

int main(int argc, char **argv)
{
	struct epoll_event events[256];
	struct client *cl;
	struct rusage ru;
	uint64_t t0, end, last_tick, cpu_us;
	unsigned long errors = 0;
	bool sources_given = false;
	int opt;

	lg.clients = 32;
	lg.seconds = 5;
	lg.bytes = 16;
	lg.source_first = 0x7f000002;
	lg.sources = 16;
	while ((opt = getopt(argc, argv, "m:c:d:n:s:S:p:")) != -1) {
		switch (opt) {
		case 'm':
			if (strcmp(optarg, "persist") != 0 && strcmp(optarg, "conn") != 0)
				usage();
			lg.persist = strcmp(optarg, "persist") == 0;
			break;
		case 'c':
			lg.clients = (unsigned)number(optarg, 1, MAX_CLIENTS);
			break;
		case 'd':
			lg.seconds = (unsigned)number(optarg, 1, MAX_SECONDS);
			break;
		case 'n':
			lg.count = (uint64_t)number(optarg, 1, MAX_COUNT);
			break;
		case 's':
			lg.bytes = (size_t)number(optarg, 1, MAX_BYTES);
			break;
		case 'S':
			parse_sources(optarg);
			sources_given = true;
			break;
		case 'p':
			lg.pause_us = (unsigned)number(optarg, 1, MAX_PAUSE_US);
			break;
		default:
			usage();
		}
	}
	if (optind != argc - 1 || (lg.pause_us && (lg.clients != 1 || lg.count == 0)))
		usage();
	if (bench_parse_address(argv[optind], &lg.addr, &lg.addrlen) < 0) {
		fprintf(stderr, "loadgen: %s: only 127.0.0.0/8, [::1] and unix:/path targets\n",
			argv[optind]);
		return 2;
	}
	if (lg.addr.ss_family != AF_INET) {
		if (sources_given && lg.sources) {
			fprintf(stderr, "loadgen: -S applies to 127.x.y.z targets only\n");
			return 2;
		}
		lg.sources = 0;
	}
	signal(SIGPIPE, SIG_IGN);
	/* No SA_RESTART: epoll_wait returns at once; -p finishes its operation. */
	sigaction(SIGTERM, &(struct sigaction){ .sa_handler = on_stop }, NULL);
	sigaction(SIGINT, &(struct sigaction){ .sa_handler = on_stop }, NULL);
	for (size_t i = 0; i < lg.bytes; i++)
		lg.payload[i] = (char)('a' + i % 26);
	lg.epfd = epoll_create1(EPOLL_CLOEXEC);
	cl = calloc(lg.clients, sizeof(*cl));
	if (lg.epfd < 0 || !cl) {
		perror("loadgen");
		return 1;
	}
	t0 = last_tick = clock_us();
	end = t0 + (uint64_t)lg.seconds * 1000000;
	if (lg.pause_us)
		run_stepwise(end);
	for (unsigned i = 0; i < lg.clients && !lg.pause_us; i++)
		start(&cl[i], t0);
	while (!lg.pause_us && !stop_asked && lg.now_us < end &&
	       (lg.count == 0 || lg.ops < lg.count)) {
		uint64_t before = lg.ops;
		int n = epoll_wait(lg.epfd, events, 256, 100);

		for (int i = 0; i < n; i++)
			progress(events[i].data.ptr, events[i].events);
		/* A batch that completed something has read the clock already. */
		if (lg.ops == before)
			clock_us();
		if (lg.now_us - last_tick > TICK_US) {
			tick(cl, lg.now_us);
			last_tick = lg.now_us;
		}
	}
	getrusage(RUSAGE_SELF, &ru);
	cpu_us = (uint64_t)ru.ru_utime.tv_sec * 1000000 + (uint64_t)ru.ru_utime.tv_usec +
		 (uint64_t)ru.ru_stime.tv_sec * 1000000 + (uint64_t)ru.ru_stime.tv_usec;
	for (int k = 0; k < ERR_KINDS; k++)
		errors += lg.errors[k];
	printf("mode=%s clients=%u seconds=%u bytes=%zu sources=%u ops=%llu rate=%.0f p50_us=%llu "
	       "p99_us=%llu max_us=%llu errors=%lu lg_cpu_us=%llu lg_cpu_us_op=%.2f",
	       lg.persist ? "persist" : "conn", lg.clients, lg.seconds, lg.bytes,
	       lg.sources ? lg.sources : 1, (unsigned long long)lg.ops,
	       (double)lg.ops / ((double)(clock_us() - t0) / 1e6),
	       (unsigned long long)percentile(0.50), (unsigned long long)percentile(0.99),
	       (unsigned long long)lg.max_us, errors, (unsigned long long)cpu_us,
	       lg.ops ? (double)cpu_us / (double)lg.ops : 0.0);
	for (int k = 0; k < ERR_KINDS; k++)
		printf(" err_%s=%llu", err_names[k], (unsigned long long)lg.errors[k]);
	printf("\n");
	return 0;
}
