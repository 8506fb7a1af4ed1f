/* SPDX-License-Identifier: ISC */
/* bulk.c - the benchmark's bulk client: C connections stream BYTES in all through an echo path and read every byte back.
 *
 *   bulk [-c CONNECTIONS] [-b BYTES] ADDRESS
 *
 * ADDRESS is 127.x.y.z:PORT, [::1]:PORT or unix:/path only (benchaddr.c).
 * Each connection sends its share of BYTES (a pattern that depends on the
 * offset) and reads it back at the same time, one epoll loop for all; what
 * comes back is checked byte for byte. Prints one line of key=value: bytes
 * each way, seconds, MB/s (bytes sent per second, 10^6), errors, and the
 * client's own CPU time, which the benchmark leaves out of the server's. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "benchaddr.h"

#define MAX_CONNECTIONS 1024
#define CHUNK 65536
#define TIMEOUT_MS 60000	/* no progress for this long: the run fails */

struct conn {
	int fd;
	uint64_t share, sent, got;
};

/* The bytes at offset off of a stream: a table of a prime period, so that a
 * byte out of place does not match by chance, read with memcpy and memcmp. */
#define PERIOD 65521
static unsigned char table[PERIOD + CHUNK];

static const unsigned char *pattern_at(uint64_t off)
{
	return table + off % PERIOD;
}

static double seconds_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
	unsigned n = 1;
	unsigned long long total = 1ULL << 30;
	struct sockaddr_storage ss;
	socklen_t sslen;
	static unsigned char in[CHUNK];
	struct conn *c;
	struct rusage ru;
	unsigned done = 0, errors = 0;
	double t0, t;
	int epfd, opt;

	while ((opt = getopt(argc, argv, "c:b:")) != -1) {
		if (opt == 'c')
			n = (unsigned)strtoul(optarg, NULL, 10);
		else if (opt == 'b')
			total = strtoull(optarg, NULL, 10);
		else
			return 2;
	}
	if (optind != argc - 1 || n == 0 || n > MAX_CONNECTIONS || total < n ||
	    bench_parse_address(argv[optind], &ss, &sslen) < 0) {
		fprintf(stderr, "usage: bulk [-c 1..%d] [-b BYTES] 127.x.y.z:PORT|[::1]:PORT|unix:/path\n",
			MAX_CONNECTIONS);
		return 2;
	}
	for (size_t i = 0; i < sizeof(table); i++)
		table[i] = (unsigned char)((i % PERIOD) * 131 + (i % PERIOD) / 251);
	c = calloc(n, sizeof(*c));
	epfd = epoll_create1(EPOLL_CLOEXEC);
	if (!c || epfd < 0)
		return 1;
	for (unsigned i = 0; i < n; i++) {
		c[i].share = total / n + (i < total % n);
		c[i].fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (c[i].fd < 0 || connect(c[i].fd, (struct sockaddr *)&ss, sslen) < 0) {
			perror("bulk: connect");
			return 1;
		}
		fcntl(c[i].fd, F_SETFL, O_NONBLOCK);
		epoll_ctl(epfd, EPOLL_CTL_ADD, c[i].fd,
			  &(struct epoll_event){ .events = EPOLLIN | EPOLLOUT, .data.u32 = i });
	}
	t0 = seconds_now();
	while (done < n) {
		struct epoll_event ev[64];
		int k = epoll_wait(epfd, ev, 64, TIMEOUT_MS);

		if (k <= 0) {
			fprintf(stderr, "bulk: no progress for %d ms\n", TIMEOUT_MS);
			errors++;
			break;
		}
		for (int e = 0; e < k; e++) {
			struct conn *x = &c[ev[e].data.u32];
			ssize_t m;

			if (x->fd < 0)
				continue;
			if ((ev[e].events & EPOLLOUT) && x->sent < x->share) {
				size_t len = x->share - x->sent < CHUNK ? x->share - x->sent : CHUNK;

				m = send(x->fd, pattern_at(x->sent), len, MSG_NOSIGNAL);
				if (m > 0)
					x->sent += (uint64_t)m;
				else if (m < 0 && errno != EAGAIN)
					goto failed;
				if (x->sent == x->share)
					epoll_ctl(epfd, EPOLL_CTL_MOD, x->fd,
						  &(struct epoll_event){ .events = EPOLLIN, .data.u32 = ev[e].data.u32 });
			}
			if (ev[e].events & (EPOLLIN | EPOLLHUP | EPOLLERR)) {
				m = recv(x->fd, in, sizeof(in), 0);
				if (m == 0 || (m < 0 && errno != EAGAIN))
					goto failed;
				if (m > 0 && memcmp(in, pattern_at(x->got), (size_t)m) != 0)
					goto failed;
				if (m > 0)
					x->got += (uint64_t)m;
				if (x->got == x->share) {
					close(x->fd);
					x->fd = -1;
					done++;
				}
			}
			continue;
failed:
			errors++;
			close(x->fd);
			x->fd = -1;
			done++;
		}
	}
	t = seconds_now() - t0;
	getrusage(RUSAGE_SELF, &ru);
	printf("connections=%u bytes=%llu seconds=%.3f mbps=%.1f errors=%u bulk_cpu_s=%.3f\n", n, total,
	       t, (double)total / t / 1e6, errors,
	       (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
		       (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6);
	return errors ? 1 : 0;
}
