/* SPDX-License-Identifier: ISC */
/* check_pool.c - scale and recycle through the control socket and preforkctl, on the real daemon, under load. */
#include "config.h"

#include <check.h>
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "testlib.h"

#define LOAD_THREADS 4
#define RECYCLES 20

static char conf_text[4096];

/* Echo service "a" on 127.0.0.1:port and @DIR@/echo.sock with extra lines. */
static const char *echo_conf(uint16_t port, unsigned workers, const char *extra)
{
	char listen[96];

	snprintf(listen, sizeof(listen), "\"127.0.0.1:%u\", \"unix:@DIR@/echo.sock\"", port);
	return tl_service_conf(listen, workers, extra);
}

#ifdef APPWORKER
/* Service "web": APPWORKER with args (quoted, comma-separated), extra lines. */
static const char *app_conf(uint16_t port, unsigned workers, const char *args, const char *extra)
{
	snprintf(conf_text, sizeof(conf_text),
		 "shutdown-timeout = 20s\n"
		 "service web {\n"
		 "  listen = { \"127.0.0.1:%u\", \"unix:@DIR@/web.sock\" }\n"
		 "  handler = \"app\"\n"
		 "  exec = { \"%s\", %s }\n"
		 "  workers = %u\n"
		 "%s"
		 "}\n", port, APPWORKER, args, workers, extra);
	return conf_text;
}
#endif

/* preforkctl -s DIR/control.sock a1 a2 a3: its exit status, its output in *out. */
static int ctl(struct daemon *d, char **out, const char *a1, const char *a2, const char *a3)
{
	char sock[256];
	char *argv[] = { (char *)PREFORKCTL, (char *)"-s", sock, (char *)a1, (char *)a2,
			 (char *)a3, NULL };

	snprintf(sock, sizeof(sock), "%s/control.sock", d->dir);
	return tl_run_timeout(out, 60000, argv);
}

static void ctl_ok(struct daemon *d, const char *a1, const char *a2, const char *a3,
		   const char *want)
{
	char *out;
	int rc = ctl(d, &out, a1, a2, a3);

	ck_assert_msg(rc == 0 && strstr(out, want), "preforkctl %s %s %s: %d: %s\nlog:\n%s", a1,
		      a2 ? a2 : "", a3 ? a3 : "", rc, out, tl_read_file(d->log));
	free(out);
}

static void ctl_fails(struct daemon *d, int status, const char *a1, const char *a2,
		      const char *a3, const char *want)
{
	char *out;
	int rc = ctl(d, &out, a1, a2, a3);

	ck_assert_msg(rc == status && strstr(out, want), "preforkctl %s %s %s: %d: %s", a1,
		      a2 ? a2 : "", a3 ? a3 : "", rc, out);
	free(out);
}

static bool contains_pid(const pid_t *pids, size_t n, pid_t pid)
{
	for (size_t i = 0; i < n; i++)
		if (pids[i] == pid)
			return true;
	return false;
}

/* Waits until the master has exactly n children. */
static void wait_children(struct daemon *d, size_t n)
{
	pid_t pids[64];
	size_t got = 0;

	for (uint64_t t0 = tl_now_ms(); tl_now_ms() - t0 < 10000; usleep(20000))
		if ((got = daemon_workers(d, pids, 64)) == n)
			return;
	ck_abort_msg("%zu workers, not %zu; log:\n%s", got, n, tl_read_file(d->log));
}

/* A scale sets the number of workers until the next reload, within 1 to
 * max-workers; every new worker serves, the ones let go finish. */
START_TEST(scale_grows_and_shrinks_the_pool)
{
	uint16_t port = tl_free_port();
	struct daemon d;
	pid_t pids[16];

	daemon_start_ready(&d, echo_conf(port, 2, ""), NULL);
	ctl_ok(&d, "scale", "a", "5", "service 'a': 5 workers ready (was 2)");
	ck_assert_uint_eq(daemon_workers(&d, pids, 16), 5);
	for (int i = 0; i < 40; i++) {
		ck_assert(tl_echo_tcp(port, "grown\n"));
		ck_assert(tl_echo_unix(daemon_path(&d, "echo.sock"), "grown\n"));
	}
	ctl_ok(&d, "status", NULL, NULL, "a (echo, 5 workers, at most 8)");
	ctl_ok(&d, "scale", "a", "1", "1 worker ready (was 5)");
	wait_children(&d, 1);
	ck_assert(tl_echo_tcp(port, "shrunk\n"));
	ck_assert_uint_eq(daemon_log_count(&d, "its service is scaled to 1"), 4);
	/* Out of range, unknown, malformed: refused with the reason, nothing changes. */
	ctl_fails(&d, 1, "scale", "a", "9", "9 workers is not within 1 to max-workers (8)");
	ctl_fails(&d, 1, "scale", "a", "0", "not within 1 to max-workers");
	ctl_fails(&d, 1, "scale", "nope", "2", "no service called \"nope\"");
	ctl_fails(&d, 2, "scale", "a", "two", "is not a number of workers");
	ctl_fails(&d, 2, "scale", "a b", "2", "one word");
	ck_assert_uint_eq(daemon_workers(&d, pids, 16), 1);
	/* A reload brings the config's number back. */
	ctl_ok(&d, "scale", "a", "3", "3 workers ready (was 1)");
	ctl_ok(&d, "reload", NULL, NULL, "reload ok");
	wait_children(&d, 2);
	ctl_ok(&d, "status", NULL, NULL, "a (echo, 2 workers, at most 8)");
	daemon_stop(&d);
}
END_TEST

/* max-workers is the ceiling; fewer than workers is a config error. */
START_TEST(max_workers_bounds_the_scale)
{
	uint16_t port = tl_free_port();
	struct daemon d;
	char *out;

	daemon_start_ready(&d, echo_conf(port, 2, "  max-workers = 3\n"), NULL);
	ctl_fails(&d, 1, "scale", "a", "4", "not within 1 to max-workers (3)");
	ctl_ok(&d, "scale", "a", "3", "3 workers ready");
	daemon_stop(&d);
	tl_mkdtemp(d.dir, sizeof(d.dir));
	snprintf(d.conf, sizeof(d.conf), "%s/bad.conf", d.dir);
	tl_write_file(d.conf, tl_service_conf("\"127.0.0.1:1\"", 4, "  max-workers = 2\n"));
	ck_assert_int_eq(tl_run_preforkd(&out, "-t", "-c", d.conf, NULL), 78);
	ck_assert_msg(strstr(out, "bad.conf:6: service 'a': max-workers 2 (line 5) is fewer "
			      "than workers 4"), "%s", out);
	free(out);
	tl_rmtree(d.dir);
}
END_TEST

/* The control socket's "status", read raw, again and again: the least
 * number of workers that served (ready, or retiring while their
 * replacement starts) at any one time. */
struct sampler {
	pthread_t thread;
	const char *path;
	atomic_bool *stop;
	unsigned least, samples;
};

static unsigned json_uint_after(const char *text, const char *from, const char *key)
{
	const char *p = strstr(text, from);

	p = p ? strstr(p, key) : NULL;
	return p ? (unsigned)strtoul(p + strlen(key), NULL, 10) : 0;
}

static void *sample(void *arg)
{
	struct sampler *s = arg;

	s->least = ~0u;
	while (!atomic_load(s->stop)) {
		int fd = tl_connect_unix(s->path);
		char *text;

		if (fd < 0)
			break;
		send(fd, "status\n", 7, MSG_NOSIGNAL);
		shutdown(fd, SHUT_WR);
		text = tl_read_to_eof(fd, 5000, NULL);
		close(fd);
		if (text && strstr(text, "\"totals\"")) {
			unsigned serving = json_uint_after(text, "\"totals\"", "\"ready\":") +
					   json_uint_after(text, "\"totals\"", "\"retiring\":");

			if (serving < s->least)
				s->least = serving;
			s->samples++;
		}
		free(text);
		usleep(2000);
	}
	return NULL;
}

/* Every worker replaced, one at a time, five times over, under continuous
 * TCP and unix clients and with a connection held open across it: no
 * client fails, never fewer than three workers serve, the held connection
 * is finished by its old worker. */
START_TEST(recycle_under_load_loses_nothing)
{
	uint16_t port = tl_free_port();
	struct tl_load loads[LOAD_THREADS];
	struct sampler smp;
	atomic_bool stop = false, stop_sampling = false;
	struct daemon d;
	pid_t before[8], after[8];
	size_t nbefore, nafter;
	unsigned total;
	int held;

	daemon_start_ready(&d, echo_conf(port, 3, ""), NULL);
	nbefore = daemon_workers(&d, before, 8);
	ck_assert_uint_eq(nbefore, 3);
	held = tl_connect_tcp("127.0.0.1", port);
	ck_assert(tl_echo(held, "before\n", 7, 5000));
	for (int i = 0; i < LOAD_THREADS; i++) {
		loads[i] = (struct tl_load){ .port = port, .stop = &stop,
					     .unix_path = i % 2 ? daemon_path(&d, "echo.sock") : NULL };
		tl_load_start(&loads[i]);
	}
	smp = (struct sampler){ .path = strdup(daemon_path(&d, "control.sock")),
				.stop = &stop_sampling };
	pthread_create(&smp.thread, NULL, sample, &smp);
	for (int r = 0; r < RECYCLES; r++)
		ctl_ok(&d, "recycle", "a", NULL, "recycled 3 workers of service 'a'");
	atomic_store(&stop_sampling, true);
	pthread_join(smp.thread, NULL);
	total = tl_loads_finish(loads, LOAD_THREADS);
	fprintf(stderr, "recycle_under_load_loses_nothing: %d recycles, %u connections, none "
		"failed; %u status samples, at least %u serving\n", RECYCLES, total, smp.samples,
		smp.least);
	ck_assert_uint_ge(total, 200);
	ck_assert_uint_ge(smp.samples, 5);
	ck_assert_uint_ge(smp.least, 3);
	/* The held connection's worker was told to stop, and waits for it. */
	ck_assert(tl_echo(held, "after\n", 6, 5000));
	close(held);
	wait_children(&d, 3);
	nafter = daemon_workers(&d, after, 8);
	for (size_t i = 0; i < nafter; i++)
		ck_assert(!contains_pid(before, nbefore, after[i]));
	ck_assert_uint_eq(daemon_log_count(&d, "recycled (asked)"), 3 * RECYCLES);
	ck_assert(!daemon_log_contains(&d, "respawning"));
	free((char *)smp.path);
	daemon_stop(&d);
}
END_TEST

/* Parallel clients of a slow service: each sends a line and waits for
 * its answer (up to 20 s). */
struct slow_client {
	pthread_t thread;
	uint16_t port;
	int n;
	bool ok;
};

static void *slow_client_run(void *arg)
{
	struct slow_client *c = arg;
	char msg[32], want[40], *reply = NULL;
	int fd = tl_connect_tcp("127.0.0.1", c->port);

	snprintf(msg, sizeof(msg), "client%d\n", c->n);
	snprintf(want, sizeof(want), "done client%d\n", c->n);
	if (fd >= 0 && send(fd, msg, strlen(msg), MSG_NOSIGNAL) == (ssize_t)strlen(msg))
		reply = tl_read_to_eof(fd, 20000, NULL);
	c->ok = reply && strcmp(reply, want) == 0;
	free(reply);
	if (fd >= 0)
		close(fd);
	return NULL;
}

/* GET /metrics from 127.0.0.1:port: the body, malloc'd. */
static char *scrape(uint16_t port)
{
	static const char get[] = "GET /metrics HTTP/1.0\r\n\r\n";
	int fd = tl_connect_tcp("127.0.0.1", port);
	char *text;

	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(send(fd, get, sizeof(get) - 1, MSG_NOSIGNAL), (ssize_t)sizeof(get) - 1);
	text = tl_read_to_eof(fd, 5000, NULL);
	close(fd);
	ck_assert_ptr_nonnull(text);
	return text;
}

static unsigned status_number(struct daemon *d, const char *key)
{
	char *out;
	unsigned n;

	ck_assert_int_eq(ctl(d, &out, "status", "--json", NULL), 0);
	n = json_uint_after(out, "\"services\"", key);
	free(out);
	return n;
}

/* min-workers 1, max-workers 4, a helper that takes 1 s per client and one
 * client per worker: 12 clients queue, the pool grows to 4 within a few
 * seconds, every client is answered; idle, it shrinks back to 1 after
 * scale-down-after. A scale pins it. */
#define SLOW_CLIENTS 12
START_TEST(elastic_pool_grows_and_shrinks)
{
	uint16_t port = tl_free_port();
	uint16_t metrics_port = tl_free_port();
	struct slow_client clients[SLOW_CLIENTS];
	struct daemon d;
	uint64_t t0;
	unsigned most = 0;
	char listen[64], *text;

	snprintf(listen, sizeof(listen), "\"127.0.0.1:%u\"", port);
	snprintf(conf_text, sizeof(conf_text),
		 "service slow {\n  listen = { %s }\n  handler = \"exec\"\n"
		 "  exec = { \"/bin/sh\", \"-c\", \"read x; sleep 1; echo done $x\" }\n"
		 "  min-workers = 1\n  max-workers = 4\n  max-connections = 1\n"
		 "  scale-up-after = 200ms\n  scale-down-after = 2s\n}\n"
		 "metrics-listen = { \"127.0.0.1:%u\" }\n", listen, metrics_port);
	daemon_start_ready(&d, conf_text, NULL);
	ck_assert_uint_eq(daemon_workers(&d, (pid_t[8]){ 0 }, 8), 1);
	ck_assert_uint_eq(status_number(&d, "\"target\":"), 1);
	t0 = tl_now_ms();
	for (int i = 0; i < SLOW_CLIENTS; i++) {
		clients[i] = (struct slow_client){ .port = port, .n = i };
		pthread_create(&clients[i].thread, NULL, slow_client_run, &clients[i]);
	}
	while (tl_now_ms() - t0 < 5000 && most < 4) {
		unsigned n = status_number(&d, "\"target\":");

		most = n > most ? n : most;
		usleep(50000);
	}
	fprintf(stderr, "elastic_pool_grows_and_shrinks: 4 workers after %llu ms\n",
		(unsigned long long)(tl_now_ms() - t0));
	ck_assert_uint_eq(most, 4);
	for (int i = 0; i < SLOW_CLIENTS; i++) {
		pthread_join(clients[i].thread, NULL);
		ck_assert_msg(clients[i].ok, "client %d got no answer", i);
	}
	/* With 1 worker the 12 would take 12 s. */
	ck_assert_uint_lt(tl_now_ms() - t0, 9000);
	ck_assert(daemon_log_contains(&d, "growing to 4 workers (clients waiting in the accept queue"));
	/* A reload keeps the size the pool has grown to. */
	ctl_ok(&d, "reload", NULL, NULL, "reload ok: generation 2");
	ck_assert_uint_eq(status_number(&d, "\"target\":"), 4);
	/* Idle now: back to 1 after scale-down-after (2 s) and one a second. */
	t0 = tl_now_ms();
	wait_children(&d, 1);
	ck_assert_uint_ge(tl_now_ms() - t0, 1000);
	ck_assert_uint_eq(status_number(&d, "\"target\":"), 1);
	ck_assert_uint_eq(daemon_log_count(&d, "(worker #"), 3);
	ctl_ok(&d, "status", NULL, NULL, "slow (exec, 1 worker, at most 4, elastic from 1)");
	text = scrape(metrics_port);
	ck_assert_msg(tl_has_line(text, "preforkd_pool_scale_events_total{service=\"slow\","
				  "direction=\"up\",reason=\"queue\"} 3") &&
		      tl_has_line(text, "preforkd_generation 2") &&
		      tl_has_line(text, "preforkd_pool_scale_events_total{service=\"slow\","
				  "direction=\"down\",reason=\"idle\"} 3") &&
		      tl_has_line(text, "preforkd_pool_target_workers{service=\"slow\"} 1"), "%s", text);
	free(text);
	ctl_ok(&d, "scale", "slow", "3", "3 workers ready");
	usleep(2500 * 1000);	/* idle, but pinned: it stays at 3 */
	ctl_ok(&d, "status", "--json", NULL, "\"target\":3,\"max_workers\":4,\"elastic\":true,"
	       "\"min_workers\":1,\"pinned\":true,\"last_change\":\"asked\"");
	daemon_stop(&d);
}
END_TEST

/* max-requests 100 with 4 workers under 5,000 connections: workers are
 * recycled one at a time, replacement first; no client fails, never
 * fewer than 4 serve. */
START_TEST(max_requests_recycles_under_load)
{
	uint16_t port = tl_free_port();
	struct tl_load loads[LOAD_THREADS];
	struct sampler smp;
	atomic_bool stop = false, stop_sampling = false;
	struct daemon d;
	unsigned total = 0, recycled;
	uint64_t t0;
	char *out;

	daemon_start_ready(&d, echo_conf(port, 4, "  max-requests = 100\n"), NULL);
	smp = (struct sampler){ .path = strdup(daemon_path(&d, "control.sock")),
				.stop = &stop_sampling };
	pthread_create(&smp.thread, NULL, sample, &smp);
	for (int i = 0; i < LOAD_THREADS; i++) {
		loads[i] = (struct tl_load){ .port = port, .stop = &stop,
					     .unix_path = i % 2 ? daemon_path(&d, "echo.sock") : NULL };
		tl_load_start(&loads[i]);
	}
	for (t0 = tl_now_ms(); total < 5000 && tl_now_ms() - t0 < 30000; usleep(20000)) {
		total = 0;
		for (int i = 0; i < LOAD_THREADS; i++)
			total += loads[i].ok;
	}
	total = tl_loads_finish(loads, LOAD_THREADS);
	atomic_store(&stop_sampling, true);
	pthread_join(smp.thread, NULL);
	ck_assert_int_eq(ctl(&d, &out, "status", "--json", NULL), 0);
	recycled = json_uint_after(out, "\"recycled\"", "\"max-requests\":");
	free(out);
	fprintf(stderr, "max_requests_recycles_under_load: %u connections, %u recycles, at least "
		"%u serving (%u samples)\n", total, recycled, smp.least, smp.samples);
	ck_assert_uint_ge(total, 5000);
	ck_assert_uint_ge(recycled, 4);
	ck_assert_uint_ge(smp.least, 4);
	ck_assert(daemon_log_contains(&d, "recycled (max-requests)"));
	ck_assert(!daemon_log_contains(&d, "respawning"));
	free((char *)smp.path);
	daemon_stop(&d);
}
END_TEST

/* hang-timeout 1 s: idle workers are not taken for hung; one stopped
 * with SIGSTOP is, and is killed and replaced within hang-timeout and
 * the grace period (1 s each); the service goes on. */
START_TEST(hung_worker_replaced)
{
	uint16_t port = tl_free_port(), metrics_port = tl_free_port();
	struct daemon d;
	pid_t pids[8], now[8];
	char *out;

	snprintf(conf_text, sizeof(conf_text), "metrics-listen = { \"127.0.0.1:%u\" }\n%s",
		 metrics_port, echo_conf(port, 2, "  hang-timeout = 1s\n"));
	daemon_start_ready(&d, conf_text, NULL);
	ck_assert_uint_eq(daemon_workers(&d, pids, 8), 2);
	usleep(2500 * 1000);	/* idle for more than hang-timeout */
	ck_assert_msg(!daemon_log_contains(&d, "hung"), "%s", tl_read_file(d.log));
	ck_assert_int_eq(kill(pids[0], SIGSTOP), 0);
	ck_assert(tl_wait_gone(pids[0], 4000));
	ck_assert(daemon_log_contains(&d, "hung: its loop has not turned for"));
	ck_assert(daemon_log_contains(&d, "process state T"));
	wait_children(&d, 2);
	daemon_workers(&d, now, 8);
	ck_assert(contains_pid(now, 2, pids[1]) && !contains_pid(now, 2, pids[0]));
	for (int i = 0; i < 20; i++)
		ck_assert(tl_echo_tcp(port, "still\n"));
	ck_assert_int_eq(ctl(&d, &out, "status", "--json", NULL), 0);
	ck_assert_msg(strstr(out, "\"hangs\":1,\"restarts\":0"), "%s", out);
	free(out);
	out = scrape(metrics_port);
	ck_assert_msg(tl_has_line(out, "preforkd_worker_restarts_total{service=\"a\",reason=\"hang\"} 1") &&
		      tl_has_line(out, "preforkd_worker_restarts_total{service=\"a\",reason=\"signal\"} 0"),
		      "%s", out);
	free(out);
	usleep(1500 * 1000);
	ck_assert_uint_eq(daemon_log_count(&d, "hung: its loop"), 1);
	daemon_stop(&d);
}
END_TEST

#ifdef APPWORKER
/* App workers are replaced only once the replacement has said READY=1;
 * one that cannot start leaves the old one serving, and the recycle
 * says so. */
START_TEST(recycle_app_waits_for_ready_and_keeps_old_on_failure)
{
	uint16_t port = tl_free_port();
	struct daemon d;
	struct sampler smp;
	atomic_bool stop_sampling = false;
	pid_t before[8], now[8];
	char args[512], dir[128], *out;
	int rc;

	tl_mkdtemp(dir, sizeof(dir));
	snprintf(args, sizeof(args), "\"--ready-delay=300\", \"--fail-if-exists=%s/broken\"",
		 dir);
	daemon_start_ready(&d, app_conf(port, 2, args, ""), NULL);
	ck_assert_uint_eq(daemon_workers(&d, before, 8), 2);
	smp = (struct sampler){ .path = strdup(daemon_path(&d, "control.sock")),
				.stop = &stop_sampling };
	pthread_create(&smp.thread, NULL, sample, &smp);
	ctl_ok(&d, "recycle", "web", NULL, "recycled 2 workers of service 'web'");
	atomic_store(&stop_sampling, true);
	pthread_join(smp.thread, NULL);
	ck_assert_uint_ge(smp.least, 2);
	ck_assert_uint_ge(smp.samples, 5);	/* 2 x 300 ms at 2 ms each */
	wait_children(&d, 2);
	daemon_workers(&d, before, 8);
	/* Now its replacement cannot start. */
	snprintf(args, sizeof(args), "%s/broken", dir);
	tl_write_file(args, "");
	rc = ctl(&d, &out, "recycle", "web", NULL);
	ck_assert_msg(rc == 1 && strstr(out, "the replacement of worker web#0 exited with status 3 "
					"before it was ready; pid"), "%d: %s", rc, out);
	free(out);
	ck_assert_uint_eq(daemon_workers(&d, now, 8), 2);
	ck_assert(contains_pid(now, 2, before[0]) && contains_pid(now, 2, before[1]));
	ctl_ok(&d, "status", NULL, NULL, "ready");
	unlink(args);
	ctl_ok(&d, "recycle", "web", NULL, "recycled 2 workers");
	wait_children(&d, 2);
	daemon_workers(&d, now, 8);
	ck_assert(!contains_pid(now, 2, before[0]) && !contains_pid(now, 2, before[1]));
	free((char *)smp.path);
	daemon_stop(&d);
	tl_rmtree(dir);
}
END_TEST

/* max-memory 40M: worker 0 grows by 64 MiB once and is recycled,
 * replacement first; worker 1 is left alone. */
START_TEST(max_memory_recycles_the_grown_worker)
{
	uint16_t port = tl_free_port();
	struct daemon d;
	pid_t before[8], now[8];
	char dir[128], args[512];

	tl_mkdtemp(dir, sizeof(dir));
	snprintf(args, sizeof(args), "\"--grow-mb=64\", \"--grow-worker=0\", "
		 "\"--grow-once=%s/grown\"", dir);
	app_conf(port, 2, args, "  max-memory = 40M\n");
	strcat(conf_text, "service other {\n  listen = { \"unix:@DIR@/other.sock\" }\n"
		 "  handler = \"echo\"\n  max-memory = 40M\n}\n");
	daemon_start_ready(&d, conf_text, NULL);
	ck_assert_uint_eq(daemon_workers(&d, before, 8), 3);
	ck_assert(daemon_wait_log(&d, "recycled (max-memory)", 15000));
	ck_assert(daemon_log_contains(&d, "web#0"));
	ck_assert(daemon_log_contains(&d, "(max-memory 40960 KiB,"));
	wait_children(&d, 3);
	daemon_workers(&d, now, 8);
	/* Only web#0 changed: the other web worker and the echo worker did not. */
	{
		unsigned kept = 0;

		for (int i = 0; i < 3; i++)
			kept += contains_pid(now, 3, before[i]);
		ck_assert_uint_eq(kept, 2);
	}
	ck_assert_uint_eq(daemon_log_count(&d, "to be recycled"), 1);
	daemon_stop(&d);
	tl_rmtree(dir);
}
END_TEST

/* max-lifetime 1 s with replacements that cannot start: the old workers
 * serve on, the next tries wait (1 s, 2 s, ...), and once the program
 * starts again the workers are replaced. */
START_TEST(failing_replacement_keeps_old_and_backs_off)
{
	uint16_t port = tl_free_port();
	struct daemon d;
	pid_t before[8], now[8];
	char dir[128], args[512], broken[160];
	bool replaced = false;

	tl_mkdtemp(dir, sizeof(dir));
	snprintf(broken, sizeof(broken), "%s/broken", dir);
	snprintf(args, sizeof(args), "\"--fail-if-exists=%s\"", broken);
	app_conf(port, 2, args, "  max-lifetime = 1s\n");
	/* The first workers start: the file comes after them. */
	daemon_start_ready(&d, conf_text, NULL);
	tl_write_file(broken, "");
	ck_assert_uint_eq(daemon_workers(&d, before, 8), 2);
	ck_assert(daemon_wait_log(&d, "serves on (recycles of service 'web' wait 1000 ms)", 5000));
	ck_assert(daemon_wait_log(&d, "wait 2000 ms", 8000));
	daemon_workers(&d, now, 8);
	ck_assert(contains_pid(now, 2, before[0]) && contains_pid(now, 2, before[1]));
	unlink(broken);
	for (uint64_t t0 = tl_now_ms(); !replaced && tl_now_ms() - t0 < 15000; usleep(50000)) {
		size_t n = daemon_workers(&d, now, 8);

		replaced = n >= 2 && !contains_pid(now, n, before[0]) &&
			   !contains_pid(now, n, before[1]);
	}
	ck_assert_msg(replaced, "log:\n%s", tl_read_file(d.log));
	ck_assert(!daemon_log_contains(&d, "respawning"));
	daemon_stop(&d);
	tl_rmtree(dir);
}
END_TEST

/* The app worker's answer to "who" on a new connection, within 10 s. */
static bool app_answers(uint16_t port)
{
	char *line = tl_request_line(tl_connect_tcp("127.0.0.1", port), "who\n", 10000);

	free(line);
	return line != NULL;
}

struct app_client {
	pthread_t thread;
	uint16_t port;
	bool ok;
};

static void *app_client_run(void *arg)
{
	struct app_client *c = arg;

	c->ok = app_answers(c->port);
	return NULL;
}

/* An elastic pool of app workers grows on its accept queue alone: with
 * its only worker stopped (SIGSTOP), clients wait, a second worker starts
 * and answers them; with the queue empty for scale-down-after, it goes. */
START_TEST(elastic_app_pool_follows_the_queue)
{
	uint16_t port = tl_free_port();
	struct app_client clients[4];
	struct daemon d;
	pid_t pids[8];

	snprintf(conf_text, sizeof(conf_text),
		 "service web {\n  listen = { \"127.0.0.1:%u\" }\n  handler = \"app\"\n"
		 "  exec = { \"%s\" }\n  min-workers = 1\n  max-workers = 2\n"
		 "  scale-up-after = 200ms\n  scale-down-after = 2s\n}\n", port, APPWORKER);
	daemon_start_ready(&d, conf_text, NULL);
	ck_assert_uint_eq(daemon_workers(&d, pids, 8), 1);
	ck_assert(app_answers(port));
	ck_assert_int_eq(kill(pids[0], SIGSTOP), 0);
	for (int i = 0; i < 4; i++) {
		clients[i] = (struct app_client){ .port = port };
		pthread_create(&clients[i].thread, NULL, app_client_run, &clients[i]);
	}
	for (int i = 0; i < 4; i++) {
		pthread_join(clients[i].thread, NULL);
		ck_assert_msg(clients[i].ok, "client %d: no answer; log:\n%s", i, tl_read_file(d.log));
	}
	ck_assert(daemon_log_contains(&d, "growing to 2 workers (clients waiting in the accept "
				      "queue"));
	ck_assert_int_eq(kill(pids[0], SIGCONT), 0);
	ck_assert(daemon_wait_log(&d, "shrinking to 1 worker (accept queues empty for", 8000));
	wait_children(&d, 1);
	ck_assert(app_answers(port));
	daemon_stop(&d);
}
END_TEST

/* A reload during a recycle ends it (the new generation replaces every
 * worker anyway), and the client that asked is told so. */
START_TEST(reload_ends_a_recycle)
{
	uint16_t port = tl_free_port();
	struct daemon d;
	char *reply;
	int fd;

	daemon_start_ready(&d, app_conf(port, 2, "\"--ready-delay=1500\"", ""), NULL);
	fd = tl_connect_unix(daemon_path(&d, "control.sock"));
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(send(fd, "recycle web\n", 12, MSG_NOSIGNAL), 12);
	ck_assert(daemon_wait_log(&d, "its replacement starts", 5000));
	ck_assert_int_eq(kill(d.pid, SIGHUP), 0);
	shutdown(fd, SHUT_WR);
	reply = tl_read_to_eof(fd, 20000, NULL);
	close(fd);
	ck_assert_msg(reply && strstr(reply, "\"ok\":false") &&
		      strstr(reply, "ended by a reload: generation 2 serves now"), "%s",
		      reply ? reply : "(none)");
	free(reply);
	daemon_stop(&d);
}
END_TEST
#endif

int main(void)
{
	Suite *s = suite_create("pool");
	TCase *tc = tcase_create("pool");

	tcase_set_timeout(tc, 90);
	tcase_add_test(tc, scale_grows_and_shrinks_the_pool);
	tcase_add_test(tc, max_workers_bounds_the_scale);
	tcase_add_test(tc, recycle_under_load_loses_nothing);
	tcase_add_test(tc, elastic_pool_grows_and_shrinks);
	tcase_add_test(tc, max_requests_recycles_under_load);
	tcase_add_test(tc, hung_worker_replaced);
#ifdef APPWORKER
	tcase_add_test(tc, recycle_app_waits_for_ready_and_keeps_old_on_failure);
	tcase_add_test(tc, reload_ends_a_recycle);
	tcase_add_test(tc, max_memory_recycles_the_grown_worker);
	tcase_add_test(tc, elastic_app_pool_follows_the_queue);
	tcase_add_test(tc, failing_replacement_keeps_old_and_backs_off);
#endif
	suite_add_tcase(s, tc);
	return tl_run_suite(s);
}
