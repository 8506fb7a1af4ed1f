/* SPDX-License-Identifier: ISC */
/* check_metrics.c - metrics-listen through the real daemon: both formats checked by Prometheus's own
 * promtool, exact values across a worker SIGKILL and a reload, the accept-queue depth of TCP and Unix
 * listeners, and requests that are not a GET of /metrics. */
#include "config.h"

#include <check.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "testlib.h"

#define PROMTOOL "/usr/bin/promtool"

static char conf_text[2048];

static const char *metrics_conf(uint16_t port, uint16_t mport, unsigned workers)
{
	snprintf(conf_text, sizeof(conf_text),
		 "metrics-listen = { \"127.0.0.1:%u\", \"unix:@DIR@/metrics.sock\" }\n"
		 "service echo {\n"
		 "  listen = { \"127.0.0.1:%u\", \"unix:@DIR@/echo.sock\" }\n"
		 "  handler = \"echo\"\n"
		 "  workers = %u\n"
		 "}\n", mport, port, workers);
	return conf_text;
}

/* The whole reply to request (malloc'd), over TCP to mport or unix path. */
static char *http(uint16_t mport, const char *path, const char *request)
{
	int fd = path ? tl_connect_unix(path) : tl_connect_tcp("127.0.0.1", mport);
	char *reply;

	ck_assert_msg(fd >= 0, "connect: %s", strerror(errno));
	ck_assert_int_eq(send(fd, request, strlen(request), MSG_NOSIGNAL), (ssize_t)strlen(request));
	reply = tl_read_to_eof(fd, 5000, NULL);
	close(fd);
	ck_assert_ptr_nonnull(reply);
	return reply;
}

static char *scrape(uint16_t mport)
{
	return http(mport, NULL, "GET /metrics HTTP/1.1\r\nHost: test\r\n\r\n");
}

/* The value of the sample line that starts with series, or -1. */
static double sample(const char *reply, const char *series)
{
	for (const char *p = reply; (p = strstr(p, series)); p++)
		if ((p == reply || p[-1] == '\n') && p[strlen(series)] == ' ')
			return atof(p + strlen(series) + 1);
	return -1;
}

/* "promtool check metrics < file" and the like: its exit status, its output in *out. */
static int promtool(char **out, const char *shell)
{
	char *argv[] = { (char *)"/bin/sh", (char *)"-c", (char *)shell, NULL };

	return tl_run_timeout(out, 30000, argv);
}

/* Both formats, as Prometheus's own tools read them. */
START_TEST(promtool_reads_both_formats)
{
	uint16_t port = tl_free_port(), mport = tl_free_port();
	struct daemon d;
	char *reply, *body, file[256], cmd[1200], *out;

	ck_assert_msg(access(PROMTOOL, X_OK) == 0, PROMTOOL " is missing: apt-get install prometheus "
		      "(the README's test command does)");
	daemon_start_ready(&d, metrics_conf(port, mport, 2), NULL);
	ck_assert(tl_echo_tcp(port, "one"));
	reply = scrape(mport);
	ck_assert_msg(strncmp(reply, "HTTP/1.1 200 OK\r\n", 17) == 0 &&
		      strstr(reply, "Content-Type: text/plain; version=0.0.4; charset=utf-8\r\n"),
		      "%s", reply);
	body = strstr(reply, "\r\n\r\n") + 4;
	snprintf(file, sizeof(file), "%s/prom.txt", d.dir);
	tl_write_file(file, body);
	snprintf(cmd, sizeof(cmd), PROMTOOL " check metrics < %s", file);
	ck_assert_msg(promtool(&out, cmd) == 0, "promtool: %s\n%s", out, body);
	free(out);
	free(reply);
	/* OpenMetrics when asked, over the unix address. */
	snprintf(file, sizeof(file), "%s/metrics.sock", d.dir);
	reply = http(0, file, "GET /metrics HTTP/1.1\r\nAccept: application/openmetrics-text; "
		     "version=1.0.0, text/plain;q=0.5\r\n\r\n");
	ck_assert_msg(strstr(reply, "Content-Type: application/openmetrics-text; version=1.0.0; "
			      "charset=utf-8\r\n"), "%s", reply);
	body = strstr(reply, "\r\n\r\n") + 4;
	ck_assert_msg(strlen(body) > 6 && strcmp(body + strlen(body) - 6, "# EOF\n") == 0, "%s", body);
	ck_assert(strstr(body, "# TYPE preforkd_connections_accepted counter\n"));
	ck_assert(strstr(body, "# TYPE preforkd_build info\n"));
	snprintf(file, sizeof(file), "%s/om.txt", d.dir);
	tl_write_file(file, body);
	/* promtool reads OpenMetrics where it backfills: samples need a timestamp there. */
	snprintf(cmd, sizeof(cmd), "sed -E '/^#/!s/$/ 1700000000/' %s > %s.ts && " PROMTOOL
		 " tsdb create-blocks-from openmetrics %s.ts %s/blocks", file, file, file, d.dir);
	ck_assert_msg(promtool(&out, cmd) == 0, "promtool: %s\n%s", out, body);
	free(out);
	free(reply);
	daemon_stop(&d);
}
END_TEST

/* After known traffic the values are exact: accepted connections survive a
 * SIGKILLed worker and a reload; the restart and the reload are counted. */
START_TEST(values_are_exact)
{
	uint16_t port = tl_free_port(), mport = tl_free_port();
	struct daemon d;
	pid_t pids[2];
	char *reply;

	daemon_start_ready(&d, metrics_conf(port, mport, 2), NULL);
	for (int i = 0; i < 40; i++)
		ck_assert(tl_echo_tcp(port, "counted"));
	ck_assert_uint_eq(daemon_workers(&d, pids, 2), 2);
	kill(pids[1], SIGKILL);
	ck_assert(daemon_wait_log(&d, "respawning worker echo#", 5000));
	for (int i = 0; i < 25; i++)
		ck_assert(tl_echo_unix(strcat(strcpy((char[256]){ 0 }, d.dir), "/echo.sock"), "c"));
	ck_assert_int_eq(daemon_reload(&d, 10000), 1);
	for (int i = 0; i < 10; i++)
		ck_assert(tl_echo_tcp(port, "counted"));
	/* A client has its echo before its worker has seen it close: the
	 * active gauge comes to 0 a moment later. */
	for (uint64_t t0 = tl_now_ms();; usleep(20000)) {
		reply = scrape(mport);
		if (sample(reply, "preforkd_connections_active{service=\"echo\"}") == 0 ||
		    tl_now_ms() - t0 > 3000)
			break;
		free(reply);
	}
	ck_assert_msg(sample(reply, "preforkd_connections_accepted_total{service=\"echo\"}") == 75,
		      "%s", reply);
	ck_assert_msg(sample(reply, "preforkd_connections_active{service=\"echo\"}") == 0, "%s",
		      reply);
	ck_assert(sample(reply, "preforkd_reloads_total{result=\"ok\"}") == 1);
	ck_assert(sample(reply, "preforkd_reloads_total{result=\"failed\"}") == 0);
	ck_assert(sample(reply, "preforkd_generation") == 2);
	ck_assert(sample(reply,
			 "preforkd_worker_restarts_total{service=\"echo\",reason=\"signal\"}") == 1);
	ck_assert(sample(reply, "preforkd_workers{service=\"echo\",state=\"ready\"}") == 2);
	free(reply);
	daemon_stop(&d);
}
END_TEST

/* With the worker stopped, K clients wait in each listener's queue, TCP
 * and Unix alike; after SIGCONT, none. */
START_TEST(queue_depth_tcp_and_unix)
{
	enum { K = 4 };
	uint16_t port = tl_free_port(), mport = tl_free_port();
	struct daemon d;
	pid_t pid[1];
	int c[2 * K];
	char *reply, tcp[128], unx[320];

	daemon_start_ready(&d, metrics_conf(port, mport, 1), NULL);
	ck_assert_uint_eq(daemon_workers(&d, pid, 1), 1);
	snprintf(tcp, sizeof(tcp), "preforkd_listen_queue_length{service=\"echo\",address="
		 "\"127.0.0.1:%u\"}", port);
	snprintf(unx, sizeof(unx), "preforkd_listen_queue_length{service=\"echo\",address="
		 "\"unix:%s/echo.sock\"}", d.dir);
	kill(pid[0], SIGSTOP);
	for (int i = 0; i < K; i++) {
		char path[256];

		snprintf(path, sizeof(path), "%s/echo.sock", d.dir);
		c[i] = tl_connect_tcp("127.0.0.1", port);
		c[K + i] = tl_connect_unix(path);
		ck_assert(c[i] >= 0 && c[K + i] >= 0);
	}
	reply = scrape(mport);
	ck_assert_msg(sample(reply, tcp) == K && sample(reply, unx) == K, "%s", reply);
	free(reply);
	kill(pid[0], SIGCONT);
	for (int i = 0; i < 2 * K; i++) {
		ck_assert(tl_echo(c[i], "x", 1, 5000));
		close(c[i]);
	}
	reply = scrape(mport);
	ck_assert_msg(sample(reply, tcp) == 0 && sample(reply, unx) == 0, "%s", reply);
	free(reply);
	daemon_stop(&d);
}
END_TEST

/* What is not a well-formed GET of /metrics gets a 4xx and a close, and
 * the daemon serves on. */
START_TEST(bad_requests_refused)
{
	static const struct { const char *request, *status; } cases[] = {
		{ "garbage\r\n\r\n", "HTTP/1.1 400 " },
		{ "GET /metrics SPDY/3\r\n\r\n", "HTTP/1.1 400 " },
		{ "POST /metrics HTTP/1.1\r\nContent-Length: 0\r\n\r\n", "HTTP/1.1 405 " },
		{ "GET /admin HTTP/1.1\r\n\r\n", "HTTP/1.1 404 " },
		{ "GET /metrics?x=1 HTTP/1.0\r\n\r\n", "HTTP/1.1 200 " },
		{ "HEAD /metrics HTTP/1.1\r\n\r\n", "HTTP/1.1 200 " },
	};
	uint16_t port = tl_free_port(), mport = tl_free_port();
	struct daemon d;
	char *reply, *big = malloc(20000);

	ck_assert_ptr_nonnull(big);
	daemon_start_ready(&d, metrics_conf(port, mport, 1), NULL);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		reply = http(mport, NULL, cases[i].request);
		ck_assert_msg(strncmp(reply, cases[i].status, strlen(cases[i].status)) == 0,
			      "%s: %s", cases[i].request, reply);
		free(reply);
	}
	/* A head that never ends. */
	memset(big, 'a', 19999);
	big[19999] = '\0';
	memcpy(big, "GET /metrics HTTP/1.1\r\nX: ", 26);
	{
		int fd = tl_connect_tcp("127.0.0.1", mport);

		send(fd, big, 19999, MSG_NOSIGNAL);
		reply = tl_read_to_eof(fd, 5000, NULL);
		ck_assert_msg(reply && strncmp(reply, "HTTP/1.1 431 ", 13) == 0, "%s",
			      reply ? reply : "(nothing)");
		free(reply);
		close(fd);
	}
	reply = scrape(mport);
	ck_assert_msg(strncmp(reply, "HTTP/1.1 200 OK", 15) == 0, "%s", reply);
	free(reply);
	ck_assert(tl_echo_tcp(port, "still serving"));
	free(big);
	daemon_stop(&d);
}
END_TEST

/* Datagrams, each counted once by outcome. */
START_TEST(datagrams_counted)
{
	uint16_t port = tl_free_port(), mport = tl_free_port();
	struct sockaddr_storage ss;
	socklen_t len = tl_ip_sockaddr("127.0.0.1", port, &ss);
	struct timeval tv = { 5, 0 };
	struct daemon d;
	double answered = -1;
	int u = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	char back[16];

	snprintf(conf_text, sizeof(conf_text),
		 "metrics-listen = { \"127.0.0.1:%u\" }\n"
		 "service dg {\n  listen = { \"udp:127.0.0.1:%u\" }\n  handler = \"echo\"\n}\n",
		 mport, port);
	daemon_start_ready(&d, conf_text, NULL);
	setsockopt(u, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	for (int i = 0; i < 5; i++) {
		ck_assert_int_eq(sendto(u, "ping", 4, 0, (struct sockaddr *)&ss, len), 4);
		ck_assert_int_eq(recv(u, back, sizeof(back), 0), 4);
	}
	close(u);
	/* A worker publishes its counts once per turn of its loop. */
	for (uint64_t t0 = tl_now_ms(); answered != 5 && tl_now_ms() - t0 < 3000; usleep(20000)) {
		char *reply = scrape(mport);

		answered = sample(reply, "preforkd_datagrams_total{service=\"dg\",outcome=\"answered\"}");
		ck_assert(sample(reply, "preforkd_datagrams_total{service=\"dg\",outcome=\"dropped\"}")
			  == 0);
		free(reply);
	}
	ck_assert_msg(answered == 5, "answered %g", answered);
	daemon_stop(&d);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("metrics");
	TCase *tc = tcase_create("metrics");

	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, promtool_reads_both_formats);
	tcase_add_test(tc, values_are_exact);
	tcase_add_test(tc, queue_depth_tcp_and_unix);
	tcase_add_test(tc, bad_requests_refused);
	tcase_add_test(tc, datagrams_counted);
	suite_add_tcase(s, tc);
	return tl_run_suite(s);
}
