/* SPDX-License-Identifier: ISC */
/* check_proxy.c - handler "proxy" on the real daemon: forwarding both ways, half-close, resets, upstream choice, timeouts. */
#include "config.h"

#include <check.h>
#include <errno.h>
#include <netinet/in.h>
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
	tl_rmtree(dir);
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
	suite_add_tcase(s, tc);
	return tl_run_suite(s);
}
