/* SPDX-License-Identifier: ISC */
/* check_app.c - handler "app" through the real daemon: tests/appworker (libsystemd's sd_listen_fds and
 * sd_notify) as each worker; its environment, readiness-gated reloads under load, failed reloads,
 * watchdog, output, stop, crashes, and notifications from strangers. */
#include "config.h"

#include <check.h>
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "testlib.h"

#define LOAD_THREADS 4

static char conf_text[4096];

/* Service "web": APPWORKER with args (quoted, comma-separated, may be ""),
 * on 127.0.0.1:port and @DIR@/web.sock, with extra option lines. */
static const char *app_conf(uint16_t port, unsigned workers, const char *args, const char *extra)
{
	snprintf(conf_text, sizeof(conf_text),
		 "log-level = \"debug\"\n"
		 "shutdown-timeout = 20s\n"
		 "service web {\n"
		 "  listen = { \"127.0.0.1:%u\", \"unix:@DIR@/web.sock\" }\n"
		 "  handler = \"app\"\n"
		 "  exec = { \"%s\"%s%s }\n"
		 "  workers = %u\n"
		 "%s"
		 "}\n", port, APPWORKER, args[0] ? ", " : "", args, workers, extra);
	return conf_text;
}

/* The worker's answer to "who" over a new connection (fd < 0: TCP to
 * port), malloc'd, or NULL when none came within 5 s. */
static char *who_on(int fd)
{
	return tl_request_line(fd, "who\n", 5000);
}

static char *who(uint16_t port)
{
	return who_on(tl_connect_tcp("127.0.0.1", port));
}

/* The generation the worker answering now belongs to, or -1. */
static int generation_serving(uint16_t port)
{
	char *w = who(port);
	const char *g = w ? strstr(w, " gen=") : NULL;
	int gen = g ? atoi(g + 5) : -1;

	free(w);
	return gen;
}

/* After a switch, generation gen answers: an old worker may take one more
 * connection before its stop signal reaches its loop, then only the new
 * ones do. */
static void wait_generation(uint16_t port, int gen)
{
	for (uint64_t t0 = tl_now_ms(); generation_serving(port) != gen; usleep(20000))
		ck_assert_msg(tl_now_ms() - t0 < 3000, "generation %d does not answer", gen);
}

/* The lines of a --dump-env file, once it is there (within 5 s). */
static char *wait_file(const char *path)
{
	for (uint64_t t0 = tl_now_ms(); tl_now_ms() - t0 < 5000; usleep(20000)) {
		char *text = tl_read_file(path);

		if (text[0])
			return text;
		free(text);
	}
	return NULL;
}

/* Some line of the log has both a and b. */
static bool log_has_line_with(struct daemon *d, const char *a, const char *b)
{
	char *log = tl_read_file(d->log);
	bool found = false;

	for (char *line = log, *next; *line && !found; line = next) {
		size_t len = strcspn(line, "\n");

		next = line + len + (line[len] == '\n');
		line[len] = '\0';
		found = strstr(line, a) && strstr(line, b);
	}
	free(log);
	return found;
}

/* What a worker gets: descriptors 0, 1, 2 and one per listener from 3 in
 * listen order, LISTEN_PID its own pid, the names and the einhorn and
 * Server::Starter variables, NOTIFY_SOCKET and WATCHDOG_* of the master's
 * making, PREFORKD_*, env and PATH; nothing of the daemon's environment. */
START_TEST(worker_environment)
{
	static const char *const leaks[] = {
		"LISTEN_FDS=9", "LISTEN_PID=1", "LISTEN_FDNAMES=x", "WATCHDOG_USEC=5",
		"WATCHDOG_PID=1", "INVOCATION_ID=0123", "LEAKED_VAR=1", NULL,
	};
	struct daemon_opts opts = { .env = leaks };
	uint16_t port = tl_free_port();
	char extra[256], args[256], line[512], *env, *w, *ns, *notify_dir;
	struct stat st;
	struct daemon d;
	pid_t pids[4];
	const char *pid_line;
	long pid;
	unsigned lines = 0;

	snprintf(extra, sizeof(extra), "  listen += { \"udp:127.0.0.1:%u\" }\n  watchdog = 10s\n"
		 "  env = { \"GREETING=hello there\" }\n", port);
	snprintf(args, sizeof(args), "\"--watchdog\", \"--dump-env=@DIR@/env.txt\"");
	daemon_start_ready(&d, app_conf(port, 1, args, extra), &opts);
	env = wait_file(daemon_path(&d, "env.txt"));
	ck_assert_msg(env, "no env.txt; log:\n%s", tl_read_file(d.log));
	ck_assert_uint_eq(daemon_workers(&d, pids, 4), 1);
	pid_line = strstr(env, "pid=");
	ck_assert_ptr_nonnull(pid_line);
	pid = atol(pid_line + 4);
	ck_assert_int_eq(pid, pids[0]);
	snprintf(line, sizeof(line), "LISTEN_PID=%ld", pid);
	ck_assert_msg(tl_has_line(env, line), "%s", env);
	snprintf(line, sizeof(line), "WATCHDOG_PID=%ld", pid);
	ck_assert_msg(tl_has_line(env, line), "%s", env);
	snprintf(line, sizeof(line), "SERVER_STARTER_PORT=127.0.0.1:%u=3;%s/web.sock=4;"
		 "127.0.0.1:%u=5", port, d.dir, port);
	ck_assert_msg(tl_has_line(env, line), "%s", env);
	{
		static const char *const want[] = {
			"fds=0,1,2,3,4,5", "LISTEN_FDS=3", "LISTEN_FDNAMES=web:web:web",
			"EINHORN_FD_COUNT=3", "EINHORN_FD_0=3", "EINHORN_FD_1=4", "EINHORN_FD_2=5",
			"WATCHDOG_USEC=10000000", "PREFORKD_SERVICE=web", "PREFORKD_WORKER=0",
			"PREFORKD_GENERATION=1", "GREETING=hello there",
			"PATH=/usr/local/bin:/usr/bin:/bin",
		};

		for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++)
			ck_assert_msg(tl_has_line(env, want[i]), "no %s in:\n%s", want[i], env);
	}
	/* Ours, not the daemon's: a socket in a directory of the master's own
	 * in $TMPDIR (the test's directory), gone when it stops. */
	snprintf(line, sizeof(line), "\nNOTIFY_SOCKET=%s/preforkd-notify.", d.dir);
	ck_assert_msg(strstr(env, line), "%s", env);
	ns = strstr(env, "\nNOTIFY_SOCKET=") + strlen("\nNOTIFY_SOCKET=");
	notify_dir = strndup(ns, strcspn(ns, "\n") - strlen("/notify"));
	ck_assert_int_eq(stat(notify_dir, &st), 0);
	ck_assert_int_eq(st.st_mode & 07777, 0711);
	for (const char *p = env; *p; p += strcspn(p, "\n") + (p[strcspn(p, "\n")] == '\n'))
		lines++;
	/* pid, the 13 above, LISTEN_PID, WATCHDOG_PID, SERVER_STARTER_PORT,
	 * NOTIFY_SOCKET: nothing else. */
	ck_assert_msg(lines == 18, "%u lines:\n%s", lines, env);
	ck_assert(!strstr(env, "LEAKED_VAR") && !strstr(env, "INVOCATION_ID"));
	/* It serves what it was given: TCP, unix and UDP. */
	w = who(port);
	ck_assert_msg(w && strstr(w, "gen=1 worker=0 service=web"), "%s", w ? w : "(nothing)");
	free(w);
	ck_assert(tl_echo_unix(daemon_path(&d, "web.sock"), "over unix"));
	{
		int u = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
		struct sockaddr_storage ss;
		socklen_t len = tl_ip_sockaddr("127.0.0.1", port, &ss);
		struct timeval tv = { 5, 0 };
		char back[16] = "";

		setsockopt(u, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
		ck_assert_int_eq(sendto(u, "dgram", 5, 0, (struct sockaddr *)&ss, len), 5);
		ck_assert_int_eq(recv(u, back, sizeof(back), 0), 5);
		ck_assert(memcmp(back, "dgram", 5) == 0);
		close(u);
	}
	free(env);
	kill(d.pid, SIGTERM);
	ck_assert_int_eq(tl_exit_code(daemon_wait_exit(&d, 5000)), 0);
	ck_assert_msg(stat(notify_dir, &st) < 0 && errno == ENOENT, "%s is left behind", notify_dir);
	free(notify_dir);
	daemon_stop(&d);
}
END_TEST

/* A reload whose new workers take 2 s to send READY=1, under continuous
 * load over TCP and unix: the old workers serve until then, nothing is
 * refused or reset, and the switch happens only once they are ready. */
START_TEST(reload_waits_for_ready)
{
	uint16_t port = tl_free_port();
	struct tl_load loads[LOAD_THREADS];
	atomic_bool stop = false;
	unsigned total;
	struct daemon d;

	tl_raise_nofile();
	daemon_start_ready(&d, app_conf(port, 2, "", ""), NULL);
	for (int i = 0; i < LOAD_THREADS; i++) {
		loads[i] = (struct tl_load){ .port = port, .stop = &stop,
					     .unix_path = i % 2 ? daemon_path(&d, "web.sock") : NULL };
		tl_load_start(&loads[i]);
	}
	for (int r = 0; r < 2; r++) {
		char done[64];
		uint64_t t0;

		daemon_write_conf(&d, app_conf(port, 2, "\"--ready-delay=2000\"", ""));
		t0 = tl_now_ms();
		kill(d.pid, SIGHUP);
		usleep(1000000);
		ck_assert_int_eq(generation_serving(port), 1 + r);	/* the old one, still */
		snprintf(done, sizeof(done), "reload ok: generation %d serving", 2 + r);
		ck_assert_msg(daemon_wait_log(&d, done, 10000), "log:\n%s", tl_read_file(d.log));
		ck_assert_uint_ge(tl_now_ms() - t0, 2000);
		wait_generation(port, 2 + r);
	}
	total = tl_loads_finish(loads, LOAD_THREADS);
	fprintf(stderr, "reload_waits_for_ready: %u connections, none failed\n", total);
	ck_assert_uint_ge(total, 200);
	daemon_stop(&d);
}
END_TEST

/* A new generation that never gets ready, and one that exits at once: the
 * reload fails, the old workers serve on, the new ones are gone. */
START_TEST(failed_reload_keeps_old_workers)
{
	uint16_t port = tl_free_port();
	struct daemon d;

	daemon_start_ready(&d, app_conf(port, 2, "", ""), NULL);
	daemon_write_conf(&d, app_conf(port, 2, "\"--no-ready\"", "  start-timeout = 1s\n"
				       "  stop-timeout = 1s\n"));
	ck_assert_int_eq(daemon_reload(&d, 10000), 0);
	ck_assert(daemon_log_contains(&d, "reload failed: new worker web#"));
	ck_assert(daemon_log_contains(&d, "did not send READY=1 within 1000 ms"));
	ck_assert_int_eq(generation_serving(port), 1);
	ck_assert(daemon_wait_log(&d, "generation 2: every worker has exited", 5000));
	daemon_write_conf(&d, app_conf(port, 2, "\"--exit-at-start=3\"", ""));
	ck_assert_int_eq(daemon_reload(&d, 10000), 0);
	ck_assert(daemon_log_contains(&d, "exited with status 3 before it was ready"));
	ck_assert_int_eq(generation_serving(port), 1);
	daemon_stop(&d);
}
END_TEST

/* The service "web" of watchdog_conf(): worker 0 stops sending WATCHDOG=1
 * (and serving) 300 ms after it is ready; sh execs, so the pid stays
 * LISTEN_PID. */
static const char *watchdog_conf(uint16_t port, unsigned workers)
{
	char args[512];

	snprintf(args, sizeof(args), "\"-c\", \"if [ \\\"$PREFORKD_WORKER\\\" = 0 ]; then exec %s "
		 "--watchdog --hang-after=300; else exec %s --watchdog; fi\"", APPWORKER, APPWORKER);
	snprintf(conf_text, sizeof(conf_text),
		 "log-level = \"debug\"\n"
		 "service web {\n"
		 "  listen = { \"127.0.0.1:%u\" }\n"
		 "  handler = \"app\"\n"
		 "  exec = { \"/bin/sh\", %s }\n"
		 "  workers = %u\n"
		 "  watchdog = 1s\n"
		 "  stop-timeout = 1s\n"
		 "}\n", port, args, workers);
	return conf_text;
}

/* Where needle first occurs in the log after offset from; -1 if not. */
static long log_offset(struct daemon *d, const char *needle, long from)
{
	char *log = tl_read_file(d->log);
	const char *at = (size_t)from <= strlen(log) ? strstr(log + from, needle) : NULL;
	long off = at ? at - log : -1;

	free(log);
	return off;
}

/* Watchdog: the worker that stops sending WATCHDOG=1 is aborted, and its
 * replacement started before it is gone; the other one serves throughout. */
START_TEST(watchdog_replaces_hung_worker)
{
	uint16_t port = tl_free_port();
	struct daemon d;
	unsigned served = 0, missed = 0;
	long aborted, started, reaped;

	daemon_start_ready(&d, watchdog_conf(port, 2), NULL);
	/* A connection worker 0 accepted just as it hung is lost with it;
	 * every other one is served by worker 1 (or a fresh worker 0). */
	for (uint64_t t0 = tl_now_ms(); tl_now_ms() - t0 < 3000; usleep(20000)) {
		char *w = who_on(tl_connect_tcp("127.0.0.1", port));

		if (w)
			served++;
		else
			missed++;
		free(w);
	}
	ck_assert_msg(daemon_wait_log(&d, "sent no WATCHDOG=1 for 1000 ms (watchdog): aborting it "
				      "(SIGABRT), SIGKILL in 1000 ms; its replacement starts now", 3000),
		      "log:\n%s", tl_read_file(d.log));
	ck_assert(daemon_wait_log(&d, "(replaced) killed by signal 6", 3000));
	aborted = log_offset(&d, "its replacement starts now", 0);
	started = log_offset(&d, "started app worker web#0", aborted);
	reaped = log_offset(&d, "(replaced) killed by signal 6", aborted);
	ck_assert_msg(aborted >= 0 && started > aborted && reaped > started, "log:\n%s",
		      tl_read_file(d.log));
	ck_assert(!log_has_line_with(&d, "app worker web#1 (pid", "aborting it"));
	ck_assert(!daemon_log_contains(&d, "respawning worker web#0"));	/* not a crash */
	ck_assert_msg(served > 20 && missed <= 3, "%u served, %u missed", served, missed);
	daemon_stop(&d);
}
END_TEST

/* Alone, a hung worker goes first: it serves nothing, and then it is
 * respawned as after any exit. */
START_TEST(watchdog_single_worker)
{
	uint16_t port = tl_free_port();
	struct daemon d;

	daemon_start_ready(&d, watchdog_conf(port, 1), NULL);
	ck_assert_msg(daemon_wait_log(&d, "sent no WATCHDOG=1 for 1000 ms (watchdog): aborting it "
				      "(SIGABRT), SIGKILL in 1000 ms\n", 5000), "log:\n%s",
		      tl_read_file(d.log));
	ck_assert(daemon_wait_log(&d, "killed by signal 6", 3000));
	ck_assert(daemon_wait_log(&d, "respawning worker web#0", 3000));
	daemon_stop(&d);
}
END_TEST

/* stdout and stderr reach the log line by line, prefixed, with an
 * sd-daemon priority honoured; a worker writing 100 MB stalls nothing: a
 * reload during its flood completes, and the lines over the rate are
 * counted. */
START_TEST(output_is_logged_and_bounded)
{
	uint16_t port = tl_free_port();
	struct daemon d;
	pid_t pids[2];
	char needle[128];

	daemon_start_ready(&d, app_conf(port, 1, "\"--say=hello\", \"--priority-line\"", ""), NULL);
	ck_assert_uint_eq(daemon_workers(&d, pids, 2), 1);
	snprintf(needle, sizeof(needle), "info: web#0[%ld]: hello (stdout)", (long)pids[0]);
	ck_assert_msg(daemon_wait_log(&d, needle, 5000), "log:\n%s", tl_read_file(d.log));
	snprintf(needle, sizeof(needle), "info: web#0[%ld]: hello (stderr)", (long)pids[0]);
	ck_assert(daemon_wait_log(&d, needle, 5000));
	snprintf(needle, sizeof(needle), "error: web#0[%ld]: an error line", (long)pids[0]);
	ck_assert(daemon_wait_log(&d, needle, 5000));
	daemon_write_conf(&d, app_conf(port, 1, "\"--flood=100000000\"", ""));
	ck_assert_int_eq(daemon_reload(&d, 10000), 1);
	daemon_write_conf(&d, app_conf(port, 1, "", ""));
	ck_assert_int_eq(daemon_reload(&d, 10000), 1);
	wait_generation(port, 3);
	ck_assert_msg(daemon_wait_log(&d, "lines of output not logged (over 1000 lines/s)", 20000),
		      "log:\n%s", tl_read_file(d.log));
	daemon_stop(&d);
}
END_TEST

/* A worker that ignores stop-signal is killed stop-timeout after it. */
START_TEST(stop_timeout_kills_stubborn_worker)
{
	uint16_t port = tl_free_port();
	struct daemon d;
	uint64_t t0;

	daemon_start_ready(&d, app_conf(port, 2, "\"--ignore-stop\"", "  stop-timeout = 500ms\n"),
			   NULL);
	t0 = tl_now_ms();
	kill(d.pid, SIGTERM);
	ck_assert_int_eq(tl_exit_code(daemon_wait_exit(&d, 5000)), 0);
	ck_assert_uint_lt(tl_now_ms() - t0, 3000);
	ck_assert(daemon_log_contains(&d, "still running 500 ms after SIGTERM: killing its process "
				      "group"));
	daemon_stop(&d);
}
END_TEST

/* stop-signal is what a worker gets, to its process group. */
START_TEST(stop_signal_is_sent)
{
	uint16_t port = tl_free_port();
	struct daemon d;

	daemon_start_ready(&d, app_conf(port, 1, "\"--stop-signal=USR2\"", "  stop-signal = \"USR2\"\n"),
			   NULL);
	kill(d.pid, SIGTERM);
	ck_assert_int_eq(tl_exit_code(daemon_wait_exit(&d, 5000)), 0);
	ck_assert(daemon_log_contains(&d, "exited with status 0"));
	ck_assert(!daemon_log_contains(&d, "killing its process group"));
	/* Its STOPPING=1 was read before its exit, while its pid still named it. */
	ck_assert_msg(daemon_log_contains(&d, "says it is stopping") ||
		      !daemon_log_contains(&d, "NOTIFY_SOCKET of app workers: ignored"),
		      "log:\n%s", tl_read_file(d.log));
	daemon_stop(&d);
}
END_TEST

/* A master killed with SIGKILL takes its app workers with it: nothing
 * goes on serving the port. As root they run as nobody: the death signal
 * must be set after the change of user, which clears it. */
START_TEST(workers_die_with_master)
{
	uint16_t port = tl_free_port();
	struct daemon d;
	pid_t pids[4];
	size_t n;

	daemon_start_ready(&d, app_conf(port, 3, "", geteuid() == 0 ? "  user = \"nobody\"\n" : ""),
			   NULL);
	n = daemon_workers(&d, pids, 4);
	ck_assert_uint_eq(n, 3);
	kill(d.pid, SIGKILL);
	daemon_wait_exit(&d, 5000);
	for (size_t i = 0; i < n; i++)
		ck_assert_msg(tl_wait_gone(pids[i], 5000), "worker %ld outlived the master",
			      (long)pids[i]);
	ck_assert_int_lt(tl_connect_tcp("127.0.0.1", port), 0);
	daemon_stop(&d);
}
END_TEST

/* A crash is respawned, with what the program said (ERRNO=) in the log; a
 * program that exits at once is given up after five tries, with its status. */
START_TEST(crash_respawn_and_give_up)
{
	uint16_t port = tl_free_port();
	struct daemon d;

	daemon_start_ready(&d, app_conf(port, 1, "\"--notify-extra=ERRNO=5\", \"--crash-after=300\"",
					""), NULL);
	ck_assert_msg(daemon_wait_log(&d, "killed by signal 6 (Aborted)", 5000), "log:\n%s",
		      tl_read_file(d.log));
	ck_assert(daemon_log_contains(&d, "(it said ERRNO=5: Input/output error)"));
	ck_assert(daemon_wait_log(&d, "respawning worker web#0", 5000));
	daemon_stop(&d);

	daemon_start(&d, app_conf(port, 1, "\"--exit-at-start=3\"", ""), NULL);
	ck_assert_int_eq(tl_exit_code(daemon_wait_exit(&d, 15000)), 1);
	ck_assert_uint_eq(daemon_log_count(&d, "exited with status 3"), 5);
	ck_assert(daemon_log_contains(&d, "failed 5 times in a row"));
	daemon_stop(&d);
}
END_TEST

/* ready = "started": ready once it runs, READY=1 or not. */
START_TEST(ready_when_started)
{
	uint16_t port = tl_free_port();
	struct daemon d;

	daemon_start_ready(&d, app_conf(port, 2, "\"--no-ready\"", "  ready = \"started\"\n"), NULL);
	ck_assert_int_eq(generation_serving(port), 1);
	daemon_stop(&d);
}
END_TEST

/* Anyone can send to an abstract socket: a READY=1 from a process that is
 * not an app worker readies nothing, and is counted. */
START_TEST(stranger_notifications_ignored)
{
	uint16_t port = tl_free_port();
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	char *env, *ns, needle[128];
	struct daemon d;
	int fd;

	daemon_start(&d, app_conf(port, 1, "\"--no-ready\", \"--dump-env=@DIR@/env.txt\"", ""), NULL);
	env = wait_file(daemon_path(&d, "env.txt"));
	ck_assert_ptr_nonnull(env);
	ns = strstr(env, "NOTIFY_SOCKET=/");
	ck_assert_ptr_nonnull(ns);
	ns += strlen("NOTIFY_SOCKET=");
	memcpy(sa.sun_path, ns, strcspn(ns, "\n"));
	fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	ck_assert_int_eq(sendto(fd, "READY=1", 7, 0, (struct sockaddr *)&sa, sizeof(sa)), 7);
	close(fd);
	snprintf(needle, sizeof(needle), "ignored 1 notification (last: pid %ld, not an app worker)",
		 (long)getpid());
	ck_assert_msg(daemon_wait_log(&d, needle, 5000), "log:\n%s", tl_read_file(d.log));
	ck_assert(!daemon_wait_ready(&d, 500));
	free(env);
	daemon_stop(&d);
}
END_TEST

/* Notifications flooding the NOTIFY_SOCKET (a stranger's, as fast as it
 * can send) starve nothing: reloads complete meanwhile, and the flood is
 * counted. */
struct flood {
	pthread_t thread;
	const char *path;
	atomic_bool stop;
	unsigned sent;
};

static void *flood_run(void *arg)
{
	struct flood *f = arg;
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	uint64_t deadline = tl_now_ms() + 20000;

	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", f->path);
	while (!atomic_load(&f->stop) && tl_now_ms() < deadline && f->sent < 5000000) {
		if (sendto(fd, "READY=1\nSTATUS=flood", 20, 0, (struct sockaddr *)&sa, sizeof(sa)) == 20)
			f->sent++;
		else if (errno == EAGAIN)
			usleep(100);
	}
	close(fd);
	return NULL;
}

START_TEST(notification_flood_starves_nothing)
{
	uint16_t port = tl_free_port();
	struct flood f = { .stop = false };
	char *env, *ns, path[108];
	struct daemon d;

	daemon_start_ready(&d, app_conf(port, 2, "\"--dump-env=@DIR@/env.txt\"", ""), NULL);
	env = wait_file(daemon_path(&d, "env.txt"));
	ck_assert_ptr_nonnull(env);
	ns = strstr(env, "NOTIFY_SOCKET=/");
	ck_assert_ptr_nonnull(ns);
	ns += strlen("NOTIFY_SOCKET=");
	snprintf(path, sizeof(path), "%.*s", (int)strcspn(ns, "\n"), ns);
	f.path = path;
	ck_assert_int_eq(pthread_create(&f.thread, NULL, flood_run, &f), 0);
	for (int r = 0; r < 3; r++) {
		daemon_write_conf(&d, app_conf(port, 2, "\"--ready-delay=200\"", ""));
		ck_assert_msg(daemon_reload(&d, 10000) == 1, "reload %d; log:\n%s", r,
			      tl_read_file(d.log));
	}
	wait_generation(port, 4);
	atomic_store(&f.stop, true);
	pthread_join(f.thread, NULL);
	fprintf(stderr, "notification_flood_starves_nothing: %u notifications sent\n", f.sent);
	ck_assert_uint_gt(f.sent, 1000);
	ck_assert(daemon_wait_log(&d, "NOTIFY_SOCKET of app workers: ignored", 5000));
	free(env);
	daemon_stop(&d);
}
END_TEST

/* One request on the control socket, its reply (malloc'd) or NULL. */
static char *control_ask(struct daemon *d, const char *request, int timeout_ms)
{
	int fd = tl_connect_unix(daemon_path(d, "control.sock"));
	char *reply;

	if (fd < 0)
		return NULL;
	if (send(fd, request, strlen(request), MSG_NOSIGNAL) != (ssize_t)strlen(request)) {
		close(fd);
		return NULL;
	}
	shutdown(fd, SHUT_WR);
	reply = tl_read_to_eof(fd, timeout_ms, NULL);
	close(fd);
	return reply;
}

/* A real server from Debian that speaks LISTEN_FDS and sd_notify,
 * gunicorn, as two app workers serving HTTP over TCP and unix through 20
 * reloads and 3 recycles under load: not one request fails. */
#define GUNICORN "/usr/bin/gunicorn"
#define GUNICORN_RELOADS 20
#define GUNICORN_RECYCLES 3
START_TEST(gunicorn_reloads_under_load)
{
	uint16_t port = tl_free_port();
	struct tl_load loads[LOAD_THREADS];
	atomic_bool stop = false;
	unsigned total;
	struct daemon d;
	char appdir[64], app[128];

	ck_assert_msg(access(GUNICORN, X_OK) == 0, GUNICORN " is missing: apt-get install gunicorn "
		      "(the README's test command does)");
	tl_mkdtemp(appdir, sizeof(appdir));
	snprintf(app, sizeof(app), "%s/app.py", appdir);
	tl_write_file(app, "def application(environ, start_response):\n"
		      "    start_response('200 OK', [('Content-Type', 'text/plain')])\n"
		      "    return [b'ok\\n']\n");
	snprintf(conf_text, sizeof(conf_text),
		 "service web {\n"
		 "  listen = { \"127.0.0.1:%u\", \"unix:@DIR@/web.sock\" }\n"
		 "  handler = \"app\"\n"
		 "  exec = { \"" GUNICORN "\", \"-c\", \"/dev/null\", \"--preload\", \"--workers\", "
		 "\"1\", \"--graceful-timeout\", \"5\", \"--chdir\", \"%s\", \"app:application\" }\n"
		 "  workers = 2\n"
		 "  start-timeout = 20s\n"
		 "}\n", port, appdir);
	daemon_start(&d, conf_text, NULL);
	ck_assert_msg(daemon_wait_ready(&d, 20000), "log:\n%s", tl_read_file(d.log));
	ck_assert(tl_http_get_ok(tl_connect_tcp("127.0.0.1", port), 5000));
	ck_assert(tl_http_get_ok(tl_connect_unix(daemon_path(&d, "web.sock")), 5000));
	for (int i = 0; i < LOAD_THREADS; i++) {
		loads[i] = (struct tl_load){ .port = port, .stop = &stop, .http = true,
					     .unix_path = i % 2 ? daemon_path(&d, "web.sock") : NULL };
		tl_load_start(&loads[i]);
	}
	for (int r = 0; r < GUNICORN_RELOADS; r++)
		ck_assert_msg(daemon_reload(&d, 20000) == 1, "reload %d failed; log:\n%s", r,
			      tl_read_file(d.log));
	for (int r = 0; r < GUNICORN_RECYCLES; r++) {
		char *reply = control_ask(&d, "recycle web\n", 40000);

		ck_assert_msg(reply && strstr(reply, "\"ok\":true") && strstr(reply, "\"recycled\":2"),
			      "recycle %d: %s; log:\n%s", r, reply ? reply : "(no reply)",
			      tl_read_file(d.log));
		free(reply);
	}
	total = tl_loads_finish(loads, LOAD_THREADS);
	fprintf(stderr, "gunicorn_reloads_under_load: %d reloads, %d recycles, %u requests, none "
		"failed\n", GUNICORN_RELOADS, GUNICORN_RECYCLES, total);
	ck_assert_uint_ge(total, 200);
	ck_assert_uint_eq(daemon_log_count(&d, "reload ok"), GUNICORN_RELOADS);
	ck_assert(!daemon_log_contains(&d, "respawning"));
	daemon_stop(&d);
	tl_rmtree(appdir);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("app");
	TCase *tc = tcase_create("app");

	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, worker_environment);
	tcase_add_test(tc, reload_waits_for_ready);
	tcase_add_test(tc, failed_reload_keeps_old_workers);
	tcase_add_test(tc, watchdog_replaces_hung_worker);
	tcase_add_test(tc, watchdog_single_worker);
	tcase_add_test(tc, output_is_logged_and_bounded);
	tcase_add_test(tc, stop_timeout_kills_stubborn_worker);
	tcase_add_test(tc, stop_signal_is_sent);
	tcase_add_test(tc, workers_die_with_master);
	tcase_add_test(tc, crash_respawn_and_give_up);
	tcase_add_test(tc, ready_when_started);
	tcase_add_test(tc, stranger_notifications_ignored);
	tcase_add_test(tc, notification_flood_starves_nothing);
	tcase_add_test(tc, gunicorn_reloads_under_load);
	suite_add_tcase(s, tc);
	return tl_run_suite(s);
}
