/* SPDX-License-Identifier: ISC */
/* check_proxy.c - handler "proxy" on the real daemon: forwarding both ways, half-close, resets, upstream choice, timeouts. */
#include "config.h"

#include <check.h>
#include <errno.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "testlib.h"

#define BIG (8u << 20)

static char conf[4096];

/* preforkctl status --json, malloc'd. */
static char *status_json(struct daemon *d)
{
	char sock[256], *out;
	char *argv[] = { (char *)PREFORKCTL, (char *)"-s", sock, (char *)"status", (char *)"--json",
			 NULL };

	snprintf(sock, sizeof(sock), "%s/control.sock", d->dir);
	ck_assert_int_eq(tl_run_timeout(&out, 10000, argv), 0);
	return out;
}

/* The number after key in the status, after from when given (a service's
 * "name":"..."). */
static unsigned status_number_after(struct daemon *d, const char *from, const char *key)
{
	char *out = status_json(d), *at = from ? strstr(out, from) : out;
	unsigned n;

	at = at ? strstr(at, key) : NULL;
	ck_assert_msg(at, "no %s after %s in %s", key, from ? from : "the start", out);
	n = (unsigned)strtoul(at + strlen(key), NULL, 10);
	free(out);
	return n;
}

static unsigned status_number(struct daemon *d, const char *key)
{
	return status_number_after(d, NULL, key);
}

/* The "accepted" count of service name. */
static unsigned accepted(struct daemon *d, const char *name)
{
	char from[96];

	snprintf(from, sizeof(from), "\"name\":\"%s\"", name);
	return status_number_after(d, from, "\"accepted\":");
}

/* Echo back ends on unix:@DIR@/back.sock and 127.0.0.1:back_port (and
 * [::1] when there is one), a proxy in front with upstream and extra lines. */
static const char *proxy_conf(uint16_t back_port, uint16_t front_port, const char *upstream,
			      const char *extra)
{
	snprintf(conf, sizeof(conf),
		 "service back {\n  listen = { \"unix:@DIR@/back.sock\", \"127.0.0.1:%u\"%s }\n"
		 "  handler = \"echo\"\n}\n"
		 "service front {\n  listen = { \"127.0.0.1:%u\", \"unix:@DIR@/front.sock\"%s }\n"
		 "  handler = \"proxy\"\n  upstream = { %s }\n%s}\n",
		 back_port, tl_ipv6_loopback() ? ", \"[::1]:BACK6\"" : "", front_port,
		 tl_ipv6_loopback() ? ", \"[::1]:FRONT6\"" : "", upstream, extra);
	return conf;
}

/* conf with BACK6 and BACKPORT replaced by the back end's port, FRONT6 by
 * the front's (the same numbers over IPv6). */
static const char *with_v6(const char *text, uint16_t back_port, uint16_t front_port)
{
	static char out[4096];
	char b[8], f[8];
	size_t o = 0;

	snprintf(b, sizeof(b), "%u", back_port);
	snprintf(f, sizeof(f), "%u", front_port);
	for (const char *p = text; *p && o < sizeof(out) - 8;) {
		if (strncmp(p, "BACK6", 5) == 0) {
			o += (size_t)sprintf(out + o, "%s", b);
			p += 5;
		} else if (strncmp(p, "BACKPORT", 8) == 0) {
			o += (size_t)sprintf(out + o, "%s", b);
			p += 8;
		} else if (strncmp(p, "FRONT6", 6) == 0) {
			o += (size_t)sprintf(out + o, "%s", f);
			p += 6;
		} else {
			out[o++] = *p++;
		}
	}
	out[o] = '\0';
	return out;
}

/* upstream may say BACKPORT for the back end's TCP port. */
static void start(struct daemon *d, uint16_t *back, uint16_t *front, const char *upstream,
		  const char *extra)
{
	*back = tl_free_port();
	*front = tl_free_port();
	daemon_start_ready(d, with_v6(proxy_conf(*back, *front, upstream, extra), *back, *front), NULL);
}

/* Every way round: TCP to unix, unix to TCP, TCP to TCP, IPv6. */
START_TEST(forwards_every_way)
{
	struct daemon d;
	uint16_t back, front;
	int fd;

	start(&d, &back, &front, "\"unix:@DIR@/back.sock\"", "");
	ck_assert(tl_echo_tcp(front, "tcp to unix\n"));
	ck_assert(tl_echo_unix(daemon_path(&d, "front.sock"), "unix to unix\n"));
	daemon_stop(&d);

	start(&d, &back, &front, "\"127.0.0.1:BACKPORT\"", "");
	ck_assert(tl_echo_unix(daemon_path(&d, "front.sock"), "unix to tcp\n"));
	ck_assert(tl_echo_tcp(front, "tcp to tcp\n"));
	daemon_stop(&d);

	if (tl_ipv6_loopback()) {
		start(&d, &back, &front, "\"[::1]:BACKPORT\"", "");
		fd = tl_connect_tcp("::1", front);
		ck_assert_int_ge(fd, 0);
		ck_assert(tl_echo(fd, "v6 to v6\n", 9, 5000));
		close(fd);
		daemon_stop(&d);
	}
}
END_TEST

struct writer {
	pthread_t thread;
	int fd;
	const unsigned char *buf;
	size_t len;
	bool ok;
};

static void *write_all(void *arg)
{
	struct writer *w = arg;
	size_t off = 0;

	while (off < w->len) {
		ssize_t n = send(w->fd, w->buf + off, w->len - off, MSG_NOSIGNAL);

		if (n <= 0)
			break;
		off += (size_t)n;
	}
	shutdown(w->fd, SHUT_WR);
	w->ok = off == w->len;
	return NULL;
}

/* 8 MiB through the proxy and back (it goes each way) while the client
 * reads slowly: every byte comes back in order, then the end. */
START_TEST(big_transfer_with_a_slow_reader)
{
	struct daemon d;
	uint16_t back, front;
	unsigned char *buf = malloc(BIG), *got = malloc(BIG), chunk[65536];
	struct writer w;
	size_t have = 0;
	struct timeval tv = { 20, 0 };

	ck_assert(buf && got);
	for (size_t i = 0; i < BIG; i++)
		buf[i] = (unsigned char)(i * 7 + i / 4096);
	start(&d, &back, &front, "\"unix:@DIR@/back.sock\"", "");
	w = (struct writer){ .fd = tl_connect_tcp("127.0.0.1", front), .buf = buf, .len = BIG };
	ck_assert_int_ge(w.fd, 0);
	setsockopt(w.fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	pthread_create(&w.thread, NULL, write_all, &w);
	for (;;) {
		ssize_t n = recv(w.fd, chunk, sizeof(chunk), 0);

		if (n <= 0)
			break;
		ck_assert_uint_le(have + (size_t)n, BIG);
		memcpy(got + have, chunk, (size_t)n);
		have += (size_t)n;
		if (have < BIG / 2)
			usleep(1000);	/* slow for the first half: the writer is held back */
	}
	pthread_join(w.thread, NULL);
	ck_assert(w.ok);
	ck_assert_uint_eq(have, BIG);
	ck_assert(memcmp(buf, got, BIG) == 0);
	close(w.fd);
	free(buf);
	free(got);
	daemon_stop(&d);
}
END_TEST

/* A back end of its own for one connection (a unix socket; RESET: TCP,
 * where a close with SO_LINGER 0 is a reset), and what it does. */
enum backend_kind { BANNER_THEN_READ, RESET };
struct backend {
	pthread_t thread;
	char path[256];
	uint16_t port;
	int lfd;
	enum backend_kind kind;
	char got[256];		/* BANNER_THEN_READ: what it read until the end */
};

static void *backend_run(void *arg)
{
	struct backend *b = arg;
	int fd = accept(b->lfd, NULL, NULL);
	size_t len = 0;

	if (fd < 0)
		return NULL;
	if (b->kind == RESET) {
		struct linger l = { 1, 0 };
		char tmp[64];

		recv(fd, tmp, sizeof(tmp), 0);	/* the client's first bytes, then the reset */
		setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof(l));
		close(fd);
		return NULL;
	}
	send(fd, "banner\n", 7, MSG_NOSIGNAL);
	shutdown(fd, SHUT_WR);
	for (ssize_t n; len < sizeof(b->got) - 1 &&
	     (n = recv(fd, b->got + len, sizeof(b->got) - 1 - len, 0)) > 0;)
		len += (size_t)n;
	b->got[len] = '\0';
	close(fd);
	return NULL;
}

static void backend_start(struct backend *b, const char *dir, enum backend_kind kind)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };

	b->kind = kind;
	if (kind == RESET) {
		b->port = tl_free_port();
		b->lfd = tl_listen_loopback(b->port, false);
		pthread_create(&b->thread, NULL, backend_run, b);
		return;
	}
	snprintf(b->path, sizeof(b->path), "%s/own.sock", dir);
	snprintf(sun.sun_path, sizeof(sun.sun_path), "%.*s", (int)sizeof(sun.sun_path) - 1, b->path);
	b->lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	ck_assert_int_ge(b->lfd, 0);
	ck_assert_int_eq(bind(b->lfd, (struct sockaddr *)&sun, sizeof(sun)), 0);
	ck_assert_int_eq(listen(b->lfd, 8), 0);
	pthread_create(&b->thread, NULL, backend_run, b);
}

/* Half-close both ways: a request ended by the client's EOF is answered
 * (echo answers at EOF and closes), and an upstream that has said all it
 * will (banner, then its EOF) still hears what the client sends after. */
START_TEST(half_close_both_ways)
{
	struct daemon d;
	uint16_t back, front;
	struct backend b;
	char *reply;
	int fd;
	bool reset;

	start(&d, &back, &front, "\"unix:@DIR@/back.sock\"", "");
	fd = tl_connect_tcp("127.0.0.1", front);
	ck_assert_int_eq(send(fd, "request\n", 8, 0), 8);
	ck_assert_int_eq(shutdown(fd, SHUT_WR), 0);
	reply = tl_read_to_eof(fd, 5000, &reset);
	ck_assert_ptr_nonnull(reply);
	ck_assert_str_eq(reply, "request\n");
	ck_assert(!reset);
	free(reply);
	close(fd);
	daemon_stop(&d);

	/* The own back end's socket lives in a directory of its own, made
	 * before the daemon's config names it. */
	char dir[128], upstream[300];

	tl_mkdtemp(dir, sizeof(dir));
	backend_start(&b, dir, BANNER_THEN_READ);
	snprintf(upstream, sizeof(upstream), "\"unix:%s\"", b.path);
	back = tl_free_port();
	front = tl_free_port();
	daemon_start_ready(&d, with_v6(proxy_conf(back, front, upstream, ""), back, front), NULL);
	fd = tl_connect_tcp("127.0.0.1", front);
	{
		char banner[16] = "";
		ssize_t n = recv(fd, banner, sizeof(banner) - 1, MSG_WAITALL);

		ck_assert_int_eq(n, 7);	/* then its EOF: MSG_WAITALL returns early */
		ck_assert_str_eq(banner, "banner\n");
	}
	ck_assert_int_eq(send(fd, "after the banner\n", 17, MSG_NOSIGNAL), 17);
	ck_assert_int_eq(shutdown(fd, SHUT_WR), 0);
	pthread_join(b.thread, NULL);
	ck_assert_str_eq(b.got, "after the banner\n");
	close(fd);
	close(b.lfd);
	daemon_stop(&d);
	tl_rmtree(dir);
}
END_TEST

/* An upstream that resets: the client sees a reset, not an orderly end. */
START_TEST(reset_is_passed_on)
{
	struct daemon d;
	struct backend b;
	char dir[128], upstream[300], *reply;
	uint16_t back = tl_free_port(), front = tl_free_port();
	bool reset = false;
	int fd;

	tl_mkdtemp(dir, sizeof(dir));
	backend_start(&b, dir, RESET);
	snprintf(upstream, sizeof(upstream), "\"127.0.0.1:%u\"", b.port);
	daemon_start_ready(&d, with_v6(proxy_conf(back, front, upstream, ""), back, front), NULL);
	fd = tl_connect_tcp("127.0.0.1", front);
	ck_assert_int_eq(send(fd, "hello\n", 6, MSG_NOSIGNAL), 6);
	pthread_join(b.thread, NULL);
	reply = tl_read_to_eof(fd, 5000, &reset);
	ck_assert_msg(reset, "no reset; read \"%s\"", reply ? reply : "(timeout)");
	free(reply);
	close(fd);
	close(b.lfd);
	daemon_stop(&d);
	tl_rmtree(dir);
}
END_TEST

/* Nobody listens at the upstream: the client is closed and counted, said
 * once; once it listens, the next client is served. Failover: a dead
 * first upstream, then a live one. */
START_TEST(upstream_down_then_up_and_failover)
{
	struct daemon d;
	uint16_t back, front, dead = tl_free_port();
	char upstream[128], *reply;
	int fd, lfd;

	back = tl_free_port();
	front = tl_free_port();
	snprintf(upstream, sizeof(upstream), "\"127.0.0.1:%u\"", dead);
	daemon_start_ready(&d, with_v6(proxy_conf(back, front, upstream, ""), back, front), NULL);
	for (int i = 0; i < 3; i++) {
		fd = tl_connect_tcp("127.0.0.1", front);
		reply = tl_read_to_eof(fd, 5000, NULL);
		ck_assert_ptr_nonnull(reply);
		ck_assert_str_eq(reply, "");
		free(reply);
		close(fd);
	}
	ck_assert_uint_eq(status_number(&d, "\"upstream_failed\":"), 3);
	ck_assert_uint_eq(daemon_log_count(&d, "skipped for"), 1);
	ck_assert(daemon_log_contains(&d, "Connection refused"));
	/* Now someone listens there: a plain listener, its queue is enough
	 * to see the proxy connect and the client's bytes arrive. */
	lfd = tl_listen_loopback(dead, false);
	fd = tl_connect_tcp("127.0.0.1", front);
	ck_assert_int_eq(send(fd, "x", 1, MSG_NOSIGNAL), 1);
	{
		int up = accept(lfd, NULL, NULL);
		char c = 0;

		ck_assert_int_ge(up, 0);
		ck_assert_int_eq(recv(up, &c, 1, 0), 1);
		ck_assert_int_eq(c, 'x');
		close(up);
	}
	close(fd);
	close(lfd);
	ck_assert(daemon_wait_log(&d, "answers again", 5000));
	daemon_stop(&d);

	dead = tl_free_port();
	back = tl_free_port();
	front = tl_free_port();
	snprintf(upstream, sizeof(upstream), "\"127.0.0.1:%u\", \"unix:@DIR@/back.sock\"", dead);
	daemon_start_ready(&d, with_v6(proxy_conf(back, front, upstream, "  balance = \"first\"\n"),
				       back, front), NULL);
	for (int i = 0; i < 5; i++)
		ck_assert(tl_echo_tcp(front, "failover\n"));
	ck_assert_uint_eq(daemon_log_count(&d, "skipped for"), 1);
	ck_assert_uint_eq(status_number(&d, "\"upstream_failed\":"), 0);
	daemon_stop(&d);
}
END_TEST

/* Two echo back ends: round-robin alternates; least-connections sends new
 * clients where fewer are open. */
static const char *two_backends(uint16_t b1, uint16_t b2, uint16_t front, const char *balance)
{
	snprintf(conf, sizeof(conf),
		 "service b1 {\n  listen = { \"127.0.0.1:%u\" }\n  handler = \"echo\"\n}\n"
		 "service b2 {\n  listen = { \"127.0.0.1:%u\" }\n  handler = \"echo\"\n}\n"
		 "service front {\n  listen = { \"127.0.0.1:%u\" }\n  handler = \"proxy\"\n"
		 "  upstream = { \"127.0.0.1:%u\", \"127.0.0.1:%u\" }\n  balance = \"%s\"\n}\n",
		 b1, b2, front, b1, b2, balance);
	return conf;
}

/* A plain echo server of the test's, one client at a time, counting them. */
struct echo_server {
	pthread_t thread;
	int lfd;
	unsigned clients;
};

static void *echo_server_run(void *arg)
{
	struct echo_server *e = arg;
	char buf[4096];
	int fd;

	while ((fd = accept(e->lfd, NULL, NULL)) >= 0) {
		ssize_t n;

		e->clients++;
		while ((n = recv(fd, buf, sizeof(buf), 0)) > 0)
			send(fd, buf, (size_t)n, MSG_NOSIGNAL);
		close(fd);
	}
	return NULL;
}

START_TEST(round_robin_and_least_connections)
{
	struct daemon d;
	uint16_t b1 = tl_free_port(), b2 = tl_free_port(), front = tl_free_port();
	int held[3];

	daemon_start_ready(&d, two_backends(b1, b2, front, "round-robin"), NULL);
	for (int i = 0; i < 10; i++)
		ck_assert(tl_echo_tcp(front, "rr\n"));
	ck_assert_uint_eq(accepted(&d, "b1"), 5);
	ck_assert_uint_eq(accepted(&d, "b2"), 5);
	daemon_stop(&d);

	/* least-connections: b2 is the test's own, not listening yet, so
	 * three clients held open all go to b1 (b2 refuses: skipped). */
	b1 = tl_free_port();
	b2 = tl_free_port();
	front = tl_free_port();
	snprintf(conf, sizeof(conf),
		 "service b1 {\n  listen = { \"127.0.0.1:%u\" }\n  handler = \"echo\"\n}\n"
		 "service front {\n  listen = { \"127.0.0.1:%u\" }\n  handler = \"proxy\"\n"
		 "  upstream = { \"127.0.0.1:%u\", \"127.0.0.1:%u\" }\n"
		 "  balance = \"least-connections\"\n}\n", b1, front, b2, b1);
	daemon_start_ready(&d, conf, NULL);
	for (int i = 0; i < 3; i++) {
		held[i] = tl_connect_tcp("127.0.0.1", front);
		ck_assert(tl_echo(held[i], "held\n", 5, 5000));
	}
	ck_assert_uint_eq(accepted(&d, "b1"), 3);
	/* Once b2 listens and its skip has passed, every short client goes
	 * there: it has at most the one before still closing, b1 has three. */
	{
		struct echo_server e = { .lfd = tl_listen_loopback(b2, false) };

		pthread_create(&e.thread, NULL, echo_server_run, &e);
		usleep(1100 * 1000);
		for (int i = 0; i < 10; i++)
			ck_assert(tl_echo_tcp(front, "lc\n"));
		ck_assert_uint_eq(accepted(&d, "b1"), 3);
		ck_assert_uint_eq(e.clients, 10);
		shutdown(e.lfd, SHUT_RDWR);
		pthread_join(e.thread, NULL);
		close(e.lfd);
	}
	for (int i = 0; i < 3; i++)
		close(held[i]);
	daemon_stop(&d);
}
END_TEST

/* A black hole: a listener on loopback whose accept queue is full drops
 * the SYN, so a connect to it neither succeeds nor fails. After
 * connect-timeout the next upstream serves the client. */
START_TEST(connect_timeout_against_a_black_hole)
{
	struct daemon d;
	uint16_t hole = tl_free_port(), back = tl_free_port(), front = tl_free_port();
	struct sockaddr_in sin = { .sin_family = AF_INET, .sin_port = htons(hole),
				   .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	char upstream[160];
	int lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), one = 1, fillers[4];
	uint64_t t0, took;

	setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	ck_assert_int_eq(bind(lfd, (struct sockaddr *)&sin, sizeof(sin)), 0);
	ck_assert_int_eq(listen(lfd, 0), 0);
	for (int i = 0; i < 4; i++) {	/* fills it: later SYNs go unanswered */
		fillers[i] = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
		connect(fillers[i], (struct sockaddr *)&sin, sizeof(sin));
	}
	usleep(100000);
	snprintf(upstream, sizeof(upstream), "\"127.0.0.1:%u\", \"unix:@DIR@/back.sock\"", hole);
	daemon_start_ready(&d, with_v6(proxy_conf(back, front, upstream,
						  "  balance = \"first\"\n  connect-timeout = 300ms\n"),
				       back, front), NULL);
	t0 = tl_now_ms();
	ck_assert(tl_echo_tcp(front, "around the hole\n"));
	took = tl_now_ms() - t0;
	ck_assert_msg(took >= 280 && took < 3000, "took %llu ms", (unsigned long long)took);
	ck_assert(daemon_log_contains(&d, "did not answer within connect-timeout"));
	for (int i = 0; i < 4; i++)
		close(fillers[i]);
	close(lfd);
	daemon_stop(&d);
}
END_TEST

#define STARVED 24
/* Out of descriptors (RLIMIT_NOFILE 32, 2 a proxied connection, 6 when it
 * splices): a client that cannot have its upstream socket waits, as it would in
 * the accept queue, and the worker accepts no more meanwhile (as after
 * EMFILE at accept): nobody is closed, the worker does not spin, and each
 * is served as held connections close. */
START_TEST(out_of_descriptors_pauses)
{
	struct daemon d;
	struct daemon_opts opts = { .nofile = 32 };
	uint16_t back = tl_free_port(), front = tl_free_port();
	int fds[STARVED], served[STARVED], waiting[STARVED], nserved = 0, nwaiting = 0, nclosed = 0;
	pid_t workers[4], worker = 0;
	long cpu;
	size_t n;

	daemon_start(&d, with_v6(proxy_conf(back, front, "\"unix:@DIR@/back.sock\"",
					    "  idle-timeout = 0\n"), back, front), &opts);
	ck_assert(daemon_wait_ready(&d, 10000));
	for (int i = 0; i < STARVED; i++) {
		fds[i] = tl_connect_tcp("127.0.0.1", front);
		ck_assert_int_ge(fds[i], 0);
		send(fds[i], "x", 1, MSG_NOSIGNAL);
	}
	ck_assert_msg(daemon_wait_log(&d, "Too many open files", 5000), "log:\n%s",
		      tl_read_file(d.log));
	n = daemon_workers(&d, workers, 4);
	for (size_t i = 0; i < n; i++) {
		char needle[64];

		snprintf(needle, sizeof(needle), "preforkd[%ld] front#0", (long)workers[i]);
		if (daemon_log_contains(&d, needle))
			worker = workers[i];
	}
	ck_assert_int_gt(worker, 0);
	cpu = tl_cpu_ms(worker);
	usleep(300 * 1000);
	for (int i = 0; i < STARVED; i++) {
		struct pollfd pfd = { .fd = fds[i], .events = POLLIN };
		char c;

		if (poll(&pfd, 1, 0) == 0)
			waiting[nwaiting++] = fds[i];
		else if (recv(fds[i], &c, 1, MSG_DONTWAIT) == 1)
			served[nserved++] = fds[i];
		else
			nclosed++;
	}
	ck_assert_msg(nwaiting > 0 && nserved > 0 && nclosed == 0, "served %d, closed %d, waiting %d",
		      nserved, nclosed, nwaiting);
	ck_assert_msg(tl_cpu_ms(worker) - cpu < 100, "the proxy used %ld ms CPU in 300 ms while "
		      "starved", tl_cpu_ms(worker) - cpu);
	ck_assert_uint_le(daemon_log_count(&d, "Too many open files"), 2);	/* said, not per client */
	for (int i = 0; i < nserved; i++)
		close(served[i]);
	/* Descriptors come free as served clients close: each one still
	 * waiting gets its echo in turn (closed at once here, freeing its). */
	for (uint64_t t0 = tl_now_ms(); nwaiting > 0 && tl_now_ms() - t0 < 10000;) {
		struct pollfd pfd[STARVED];

		for (int i = 0; i < nwaiting; i++)
			pfd[i] = (struct pollfd){ .fd = waiting[i], .events = POLLIN };
		if (poll(pfd, (nfds_t)nwaiting, 100) <= 0)
			continue;
		for (int i = nwaiting - 1; i >= 0; i--) {
			char c = 0;

			if (!pfd[i].revents)
				continue;
			ck_assert_msg(recv(waiting[i], &c, 1, 0) == 1 && c == 'x',
				      "a waiting client was closed");
			close(waiting[i]);
			waiting[i] = waiting[--nwaiting];
		}
	}
	ck_assert_msg(nwaiting == 0, "%d clients still waiting after 10 s", nwaiting);
	ck_assert(tl_echo_tcp(front, "after\n"));
	daemon_stop(&d);
}
END_TEST

/* A reload: a connection in flight stays with the old workers and its
 * upstream; a new one goes to the new upstream list. */
START_TEST(reload_changes_upstreams_for_new_connections)
{
	struct daemon d;
	uint16_t b1 = tl_free_port(), b2 = tl_free_port(), front = tl_free_port();
	int held;

	snprintf(conf, sizeof(conf),
		 "service b1 {\n  listen = { \"127.0.0.1:%u\" }\n  handler = \"echo\"\n}\n"
		 "service b2 {\n  listen = { \"127.0.0.1:%u\" }\n  handler = \"echo\"\n}\n"
		 "service front {\n  listen = { \"127.0.0.1:%u\" }\n  handler = \"proxy\"\n"
		 "  upstream = { \"127.0.0.1:%u\" }\n}\n", b1, b2, front, b1);
	daemon_start_ready(&d, conf, NULL);
	held = tl_connect_tcp("127.0.0.1", front);
	ck_assert(tl_echo(held, "held\n", 5, 5000));
	snprintf(conf, sizeof(conf),
		 "service b1 {\n  listen = { \"127.0.0.1:%u\" }\n  handler = \"echo\"\n}\n"
		 "service b2 {\n  listen = { \"127.0.0.1:%u\" }\n  handler = \"echo\"\n}\n"
		 "service front {\n  listen = { \"127.0.0.1:%u\" }\n  handler = \"proxy\"\n"
		 "  upstream = { \"127.0.0.1:%u\" }\n}\n", b1, b2, front, b2);
	daemon_write_conf(&d, conf);
	ck_assert_int_eq(daemon_reload(&d, 10000), 1);
	/* An old worker accepts until it has read its SIGTERM: every one of
	 * the three has said it stops before a new client comes. */
	for (uint64_t t0 = tl_now_ms(); daemon_log_count(&d, "stopping (SIGTERM)") < 3 &&
	     tl_now_ms() - t0 < 5000;)
		usleep(10000);
	ck_assert(tl_echo_tcp(front, "new\n"));
	ck_assert(tl_echo(held, "still\n", 6, 5000));
	ck_assert_uint_eq(accepted(&d, "b1"), 1);
	ck_assert_uint_eq(accepted(&d, "b2"), 1);
	close(held);
	daemon_stop(&d);
}
END_TEST

/* The config refuses what cannot be an upstream. */
START_TEST(bad_upstreams_refused)
{
	static const struct {
		const char *upstream, *why;
	} bad[] = {
		{ "\"*:80\"", "is an address to listen on" },
		{ "\"0.0.0.0:80\"", "is an address to listen on" },
		{ "\"udp:127.0.0.1:53\"", "the proxy forwards streams" },
		{ "\"nonsense\"", "bad address" },
	};
	char *out, path[256], dir[128];

	tl_mkdtemp(dir, sizeof(dir));
	snprintf(path, sizeof(path), "%s/p.conf", dir);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		snprintf(conf, sizeof(conf),
			 "service front {\n  listen = { \"127.0.0.1:9\" }\n  handler = \"proxy\"\n"
			 "  upstream = { %s }\n}\n", bad[i].upstream);
		tl_write_file(path, conf);
		ck_assert_int_eq(tl_run_preforkd(&out, "-t", "-c", path, NULL), 78);
		ck_assert_msg(strstr(out, bad[i].why), "%s: %s", bad[i].upstream, out);
		free(out);
	}
	snprintf(conf, sizeof(conf),
		 "service front {\n  listen = { \"127.0.0.1:9\" }\n  handler = \"proxy\"\n}\n");
	tl_write_file(path, conf);
	ck_assert_int_eq(tl_run_preforkd(&out, "-t", "-c", path, NULL), 78);
	ck_assert_msg(strstr(out, "upstream"), "%s", out);
	free(out);
	/* Datagrams are not forwarded, nor do they carry a PROXY header. */
	snprintf(conf, sizeof(conf),
		 "service front {\n  listen = { \"udp:127.0.0.1:9\" }\n  handler = \"proxy\"\n"
		 "  upstream = { \"127.0.0.1:1\" }\n}\n");
	tl_write_file(path, conf);
	ck_assert_int_eq(tl_run_preforkd(&out, "-t", "-c", path, NULL), 78);
	ck_assert_msg(strstr(out, "forwards streams"), "%s", out);
	free(out);
	snprintf(conf, sizeof(conf),
		 "service lb {\n  listen = { \"udp:127.0.0.1:9\" }\n  handler = \"echo\"\n"
		 "  accept-proxy-protocol = \"yes\"\n  proxy-protocol-from = { \"10.0.0.0/8\" }\n}\n");
	tl_write_file(path, conf);
	ck_assert_int_eq(tl_run_preforkd(&out, "-t", "-c", path, NULL), 78);
	ck_assert_msg(strstr(out, "applies to streams"), "%s", out);
	free(out);
	snprintf(conf, sizeof(conf),
		 "service lb {\n  listen = { \"127.0.0.1:9\" }\n  handler = \"echo\"\n"
		 "  accept-proxy-protocol = \"yes\"\n}\n");
	tl_write_file(path, conf);
	ck_assert_int_eq(tl_run_preforkd(&out, "-t", "-c", path, NULL), 78);
	ck_assert_msg(strstr(out, "needs proxy-protocol-from"), "%s", out);
	free(out);
	tl_rmtree(dir);
}
END_TEST

/* A unix back end that reads what one connection sends until EOF. */
struct reader_backend {
	pthread_t thread;
	int lfd;
	unsigned char got[2048];
	size_t len;
};

static void *reader_run(void *arg)
{
	struct reader_backend *b = arg;
	int fd = accept(b->lfd, NULL, NULL);

	for (ssize_t n; fd >= 0 && b->len < sizeof(b->got) &&
	     (n = recv(fd, b->got + b->len, sizeof(b->got) - b->len, 0)) > 0;)
		b->len += (size_t)n;
	if (fd >= 0)
		close(fd);
	return NULL;
}

/* What a proxy with send-proxy-protocol VERSION sends its upstream when a
 * TCP client on 127.0.0.1 sends "payload\n" and closes: into b. The
 * client's port in *cport, the front's in *front. */
static void sent_upstream(const char *version, struct reader_backend *b, uint16_t *cport,
			  uint16_t *front)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	struct sockaddr_in me;
	socklen_t melen = sizeof(me);
	char dir[128], extra[64], upstream[300];
	uint16_t back = tl_free_port();
	struct daemon d;
	int fd;

	tl_mkdtemp(dir, sizeof(dir));
	snprintf(sun.sun_path, sizeof(sun.sun_path), "%.80s/rb.sock", dir);
	*b = (struct reader_backend){ .lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0) };
	ck_assert_int_eq(bind(b->lfd, (struct sockaddr *)&sun, sizeof(sun)), 0);
	ck_assert_int_eq(listen(b->lfd, 4), 0);
	pthread_create(&b->thread, NULL, reader_run, b);
	*front = tl_free_port();
	snprintf(upstream, sizeof(upstream), "\"unix:%s\"", sun.sun_path);
	snprintf(extra, sizeof(extra), "  send-proxy-protocol = \"%s\"\n", version);
	daemon_start_ready(&d, with_v6(proxy_conf(back, *front, upstream, extra), back, *front),
			   NULL);
	fd = tl_connect_tcp("127.0.0.1", *front);
	ck_assert_int_eq(getsockname(fd, (struct sockaddr *)&me, &melen), 0);
	*cport = ntohs(me.sin_port);
	ck_assert_int_eq(send(fd, "payload\n", 8, MSG_NOSIGNAL), 8);
	shutdown(fd, SHUT_WR);
	pthread_join(b->thread, NULL);
	close(fd);
	close(b->lfd);
	daemon_stop(&d);
	tl_rmtree(dir);
}

/* send-proxy-protocol v1 and v2: the upstream gets the header, read back
 * here by hand from the specification, then the client's bytes. */
START_TEST(proxy_protocol_sent)
{
	struct reader_backend b;
	uint16_t cport, front;
	char want[128];
	size_t n;

	sent_upstream("v1", &b, &cport, &front);
	n = (size_t)snprintf(want, sizeof(want), "PROXY TCP4 127.0.0.1 127.0.0.1 %u %u\r\npayload\n",
			     cport, front);
	ck_assert_uint_eq(b.len, n);
	ck_assert(memcmp(b.got, want, n) == 0);

	sent_upstream("v2", &b, &cport, &front);
	{
		static const unsigned char sig[12] = { 0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A,
						       0x51, 0x55, 0x49, 0x54, 0x0A };
		const unsigned char *h = b.got;

		ck_assert_uint_eq(b.len, 16 + 12 + 8);
		ck_assert(memcmp(h, sig, 12) == 0);
		ck_assert_uint_eq(h[12], 0x21);		/* version 2, PROXY */
		ck_assert_uint_eq(h[13], 0x11);		/* TCP over IPv4 */
		ck_assert_uint_eq((unsigned)h[14] << 8 | h[15], 12);
		ck_assert(memcmp(h + 16, "\x7f\0\0\x01\x7f\0\0\x01", 8) == 0);
		ck_assert_uint_eq((unsigned)h[24] << 8 | h[25], cport);
		ck_assert_uint_eq((unsigned)h[26] << 8 | h[27], front);
		ck_assert(memcmp(h + 28, "payload\n", 8) == 0);
	}
}
END_TEST

/* An echo (or exec) service behind a load balancer on 127.0.0.1. */
static const char *accepting_conf(uint16_t port, const char *from, const char *extra)
{
	snprintf(conf, sizeof(conf),
		 "service lb {\n  listen = { \"127.0.0.1:%u\" }\n  handler = \"echo\"\n"
		 "  accept-proxy-protocol = \"yes\"\n  proxy-protocol-from = { \"%s\" }\n%s}\n",
		 port, from, extra);
	return conf;
}

/* Sends the pieces, 30 ms apart, then reads to EOF (at most 5 s). */
static char *exchange(uint16_t port, const char *const *pieces, const size_t *lens, size_t n,
		      bool close_after)
{
	int fd = tl_connect_tcp("127.0.0.1", port);
	char *reply;

	ck_assert_int_ge(fd, 0);
	for (size_t i = 0; i < n; i++) {
		if (i)
			usleep(30000);
		ck_assert_int_eq(send(fd, pieces[i], lens[i], MSG_NOSIGNAL), (ssize_t)lens[i]);
	}
	if (close_after)
		shutdown(fd, SHUT_WR);
	reply = tl_read_to_eof(fd, 5000, NULL);
	close(fd);
	ck_assert_ptr_nonnull(reply);
	return reply;
}

static char *one_exchange(uint16_t port, const char *text, size_t len)
{
	const char *pieces[] = { text };
	size_t lens[] = { len };

	return exchange(port, pieces, lens, 1, true);
}

static char *say(uint16_t port, const char *text)
{
	return one_exchange(port, text, strlen(text));
}

/* accept-proxy-protocol: the header's client is the one allow/deny sees,
 * the bytes after it are the connection's, a header split over several
 * segments is waited for; a source not in proxy-protocol-from, a
 * malformed, oversized or truncated header is closed and counted. */
START_TEST(proxy_protocol_accepted)
{
	static const unsigned char v2[] = {
		0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A,
		0x21, 0x11, 0x00, 0x0C, 203, 0, 113, 8, 127, 0, 0, 1, 0x13, 0x88, 0x00, 0x50,
	};
	uint16_t port = tl_free_port();
	struct daemon d;
	char *r, longline[160];

	daemon_start_ready(&d, accepting_conf(port, "127.0.0.0/8",
					      "  allow = { \"203.0.113.0/24\" }\n"), NULL);
	/* Malformed first: the first one turned away is logged at once. */
	r = say(port, "PROXY TCP4 999.0.113.7 127.0.0.1 5000 80\r\nhello\n");
	ck_assert_str_eq(r, "");
	free(r);
	ck_assert(daemon_wait_log(&d, "a version 1 address that is not one", 5000));
	r = say(port, "PROXY TCP4 203.0.113.7 127.0.0.1 5000 80\r\nhello\n");
	ck_assert_str_eq(r, "hello\n");
	free(r);
	{
		char buf[64];

		memcpy(buf, v2, sizeof(v2));
		memcpy(buf + sizeof(v2), "v2 hello\n", 9);
		r = one_exchange(port, buf, sizeof(v2) + 9);
		ck_assert_str_eq(r, "v2 hello\n");
		free(r);
	}
	/* A client the allow list does not have, by its header. */
	r = say(port, "PROXY TCP4 198.51.100.1 127.0.0.1 5000 80\r\nhello\n");
	ck_assert_str_eq(r, "");
	free(r);
	{
		const char *pieces[] = { "PROX", "Y TCP4 203.0.113.9 127.0.0.1 1 2\r", "\nsplit\n" };
		size_t lens[] = { strlen(pieces[0]), strlen(pieces[1]), strlen(pieces[2]) };
		pid_t worker;
		long cpu;

		/* While it waits for the rest of a header it does not spin. */
		ck_assert_uint_eq(daemon_workers(&d, &worker, 1), 1);
		cpu = tl_cpu_ms(worker);
		r = exchange(port, pieces, lens, 3, true);
		ck_assert_str_eq(r, "split\n");
		free(r);
		ck_assert_int_lt(tl_cpu_ms(worker) - cpu, 30);
	}
	{
		const char *pieces[] = { (const char *)v2, (const char *)v2 + 5, "v2 split\n" };
		size_t lens[] = { 5, sizeof(v2) - 5, 9 };

		r = exchange(port, pieces, lens, 3, true);
		ck_assert_str_eq(r, "v2 split\n");
		free(r);
	}
	/* Oversized, truncated, none at all. */
	memset(longline, 'x', sizeof(longline));
	memcpy(longline, "PROXY TCP4 ", 11);
	r = one_exchange(port, longline, sizeof(longline));
	ck_assert_str_eq(r, "");
	free(r);
	r = say(port, "PROXY TCP4 203.0.113.7 127.0");
	ck_assert_str_eq(r, "");
	free(r);
	r = say(port, "hello\n");
	ck_assert_str_eq(r, "");
	free(r);
	ck_assert_uint_eq(status_number(&d, "\"proxy_header\":"), 4);
	ck_assert_uint_eq(status_number(&d, "\"denied\":"), 1);
	daemon_stop(&d);

	/* Not from proxy-protocol-from: closed before a header is read. */
	port = tl_free_port();
	daemon_start_ready(&d, accepting_conf(port, "10.0.0.0/8", ""), NULL);
	r = say(port, "PROXY TCP4 203.0.113.7 127.0.0.1 5000 80\r\nhello\n");
	ck_assert_str_eq(r, "");
	free(r);
	ck_assert_uint_eq(status_number(&d, "\"proxy_header\":"), 1);
	daemon_stop(&d);
}
END_TEST

/* Sends text on fd and reads back exactly want (5 s at most). */
static bool exchange_on(int fd, const char *text, const char *want)
{
	size_t len = strlen(want), got = 0;
	char buf[128];

	if (send(fd, text, strlen(text), MSG_NOSIGNAL) != (ssize_t)strlen(text) || len >= sizeof(buf))
		return false;
	while (got < len) {
		struct pollfd pfd = { .fd = fd, .events = POLLIN };
		ssize_t n;

		if (poll(&pfd, 1, 5000) != 1 || (n = recv(fd, buf + got, len - got, 0)) <= 0)
			return false;
		got += (size_t)n;
	}
	return memcmp(buf, want, len) == 0;
}

/* max-per-source counts the client the header names: a second connection
 * of one such client is over the limit, another client's is not. */
START_TEST(proxy_protocol_max_per_source_follows_the_header)
{
	uint16_t port = tl_free_port();
	struct daemon d;
	int a, other;
	char *r;

	daemon_start_ready(&d, accepting_conf(port, "127.0.0.0/8",
					      "  max-per-source = 1\n  busy-message = \"busy\\n\"\n"),
			   NULL);
	a = tl_connect_tcp("127.0.0.1", port);
	ck_assert(exchange_on(a, "PROXY TCP4 203.0.113.1 127.0.0.1 1000 80\r\nfirst\n", "first\n"));
	other = tl_connect_tcp("127.0.0.1", port);
	ck_assert(exchange_on(other, "PROXY TCP4 203.0.113.2 127.0.0.1 1000 80\r\nother\n",
			      "other\n"));
	/* The same client as a, by its header, though from the same address as both. */
	r = say(port, "PROXY TCP4 203.0.113.1 127.0.0.1 1001 80\r\nsecond\n");
	ck_assert_str_eq(r, "busy\n");
	free(r);
	ck_assert_uint_eq(status_number(&d, "\"per_source\":"), 1);
	close(a);
	close(other);
	daemon_stop(&d);
}
END_TEST

/* An exec helper behind a load balancer sees the header's client. */
START_TEST(proxy_protocol_ucspi_follows_the_header)
{
	uint16_t port = tl_free_port();
	struct daemon d;
	char *r;

	snprintf(conf, sizeof(conf),
		 "service lb {\n  listen = { \"127.0.0.1:%u\" }\n  handler = \"exec\"\n"
		 "  exec = { \"/bin/sh\", \"-c\", \"echo $TCPREMOTEIP $TCPREMOTEPORT\" }\n"
		 "  accept-proxy-protocol = \"yes\"\n  proxy-protocol-from = { \"127.0.0.1\" }\n}\n",
		 port);
	daemon_start_ready(&d, conf, NULL);
	r = say(port, "PROXY TCP6 2001:db8::7 ::1 4242 80\r\n");
	ck_assert_str_eq(r, "2001:db8::7 4242\n");
	free(r);
	daemon_stop(&d);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("proxy");
	TCase *tc = tcase_create("proxy");

	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, forwards_every_way);
	tcase_add_test(tc, big_transfer_with_a_slow_reader);
	tcase_add_test(tc, half_close_both_ways);
	tcase_add_test(tc, reset_is_passed_on);
	tcase_add_test(tc, upstream_down_then_up_and_failover);
	tcase_add_test(tc, round_robin_and_least_connections);
	tcase_add_test(tc, connect_timeout_against_a_black_hole);
	tcase_add_test(tc, bad_upstreams_refused);
	tcase_add_test(tc, out_of_descriptors_pauses);
	tcase_add_test(tc, reload_changes_upstreams_for_new_connections);
	tcase_add_test(tc, proxy_protocol_sent);
	tcase_add_test(tc, proxy_protocol_accepted);
	tcase_add_test(tc, proxy_protocol_ucspi_follows_the_header);
	tcase_add_test(tc, proxy_protocol_max_per_source_follows_the_header);
	suite_add_tcase(s, tc);
	return tl_run_suite(s);
}
