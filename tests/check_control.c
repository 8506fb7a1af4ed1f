/* SPDX-License-Identifier: ISC */
/* check_control.c - the control socket and preforkctl through the real daemon: status, reload (its
 * result and its error), stop, who may ask, clients that stall or flood, stale and live sockets, and
 * the accept-queue depth of TCP and Unix listeners. */
#include "config.h"

#include <check.h>
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "testlib.h"

static char conf_text[2048];

/* An echo service on 127.0.0.1:port and @DIR@/echo.sock, the control
 * socket at @DIR@/ctl.sock with the extra global lines. */
static const char *ctl_conf(uint16_t port, unsigned workers, const char *global)
{
	snprintf(conf_text, sizeof(conf_text),
		 "control-socket = \"@DIR@/ctl.sock\"\n"
		 "%s"
		 "service echo {\n"
		 "  listen = { \"127.0.0.1:%u\", \"unix:@DIR@/echo.sock\" }\n"
		 "  handler = \"echo\"\n"
		 "  workers = %u\n"
		 "}\n", global, port, workers);
	return conf_text;
}

/* preforkctl -s DIR/ctl.sock ARGS...; its exit status, its output in *out. */
static int ctl(struct daemon *d, char **out, const char *a1, const char *a2)
{
	char sock[256];
	char *argv[] = { (char *)PREFORKCTL, (char *)"-s", sock, (char *)a1, (char *)a2, NULL };

	snprintf(sock, sizeof(sock), "%s/ctl.sock", d->dir);
	return tl_run_timeout(out, 30000, argv);
}

/* The same as user nobody (setpriv, util-linux), with group gid. */
static int ctl_as_nobody(struct daemon *d, char **out, const char *gid)
{
	char sock[256], regid[32];
	char *argv[] = { (char *)"setpriv", (char *)"--reuid=65534", regid, (char *)"--clear-groups",
			 (char *)PREFORKCTL, (char *)"-s", sock, (char *)"status", NULL };

	snprintf(sock, sizeof(sock), "%s/ctl.sock", d->dir);
	snprintf(regid, sizeof(regid), "--regid=%s", gid);
	return tl_run_timeout(out, 30000, argv);
}

/* A raw client: connected to the control socket. */
static int raw_client(struct daemon *d)
{
	int fd = tl_connect_unix(daemon_path(d, "ctl.sock"));

	ck_assert_msg(fd >= 0, "connect: %s", strerror(errno));
	return fd;
}

START_TEST(status_shows_services_and_workers)
{
	uint16_t port = tl_free_port();
	struct daemon d;
	pid_t pids[2];
	char *out, needle[128];

	daemon_start_ready(&d, ctl_conf(port, 2, ""), NULL);
	ck_assert_uint_eq(daemon_workers(&d, pids, 2), 2);
	ck_assert_int_eq(ctl(&d, &out, "status", NULL), 0);
	ck_assert_msg(strstr(out, "generation 1") && strstr(out, "service echo (echo, 2 workers, at most 8)"), "%s", out);
	snprintf(needle, sizeof(needle), "127.0.0.1:%u", port);
	ck_assert_msg(strstr(out, needle) && strstr(out, "/echo.sock"), "%s", out);
	snprintf(needle, sizeof(needle), "%ld", (long)pids[0]);
	ck_assert_msg(strstr(out, needle) && strstr(out, "ready"), "%s", out);
	free(out);
	ck_assert_int_eq(ctl(&d, &out, "status", "--json"), 0);
	ck_assert_msg(strncmp(out, "{\"ok\":true,\"version\":\"", 22) == 0, "%s", out);
	ck_assert_msg(strstr(out, "\"queue\":0,\"queue_limit\":511") &&
		      strstr(out, "\"state\":\"ready\"") && strstr(out, "\"ready\":2"), "%s", out);
	free(out);
	/* Through socat as the README shows, and a last request without its newline. */
	{
		int fd = raw_client(&d);
		char *reply;

		ck_assert_int_eq(send(fd, "status", 6, 0), 6);
		shutdown(fd, SHUT_WR);
		reply = tl_read_to_eof(fd, 5000, NULL);
		ck_assert_msg(reply && strncmp(reply, "{\"ok\":true", 10) == 0, "%s", reply);
		free(reply);
		close(fd);
	}
	ck_assert_int_eq(ctl(&d, &out, "frobnicate", NULL), 2);	/* preforkctl's usage */
	free(out);
	{
		int fd = raw_client(&d);
		char *reply;

		ck_assert_int_eq(send(fd, "frobnicate\n", 11, 0), 11);
		shutdown(fd, SHUT_WR);
		reply = tl_read_to_eof(fd, 5000, NULL);
		ck_assert_msg(reply && strstr(reply, "\"ok\":false,\"error\":\"unknown request "
					      "\\\"frobnicate\\\""), "%s", reply);
		free(reply);
		close(fd);
	}
	daemon_stop(&d);
}
END_TEST

/* reload answers when the reload has ended: its generation, or the
 * file:line error (exit status 1) while the old workers serve on. */
START_TEST(reload_reports_its_result)
{
	uint16_t port = tl_free_port();
	struct daemon d;
	char *out;

	daemon_start_ready(&d, ctl_conf(port, 1, ""), NULL);
	daemon_write_conf(&d, ctl_conf(port, 2, ""));
	ck_assert_int_eq(ctl(&d, &out, "reload", NULL), 0);
	ck_assert_msg(strstr(out, "reload ok: generation 2 serving"), "%s", out);
	free(out);
	daemon_write_conf(&d, "control-socket = \"@DIR@/ctl.sock\"\nservice echo {\n"
			  "  listen = { \"127.0.0.1:1\" }\n  handler = \"echo\"\n  workers = 0\n}\n");
	ck_assert_int_eq(ctl(&d, &out, "reload", NULL), 1);
	ck_assert_msg(strstr(out, "preforkctl: reload failed: ") &&
		      strstr(out, "preforkd.conf:5: option 'workers': 0 is out of range"), "%s", out);
	free(out);
	ck_assert(tl_echo_tcp(port, "still here"));
	/* A reload that fails at once, asked by a client that has already
	 * closed its side (no newline, then EOF), twice in a row in one
	 * request: each gets its answer, in order. */
	{
		int fd = raw_client(&d);
		char *reply;

		ck_assert_int_eq(send(fd, "reload\nreload", 13, 0), 13);
		shutdown(fd, SHUT_WR);
		reply = tl_read_to_eof(fd, 10000, NULL);
		ck_assert_msg(reply && tl_count_in(reply, "\"ok\":false,\"error\":\"reload failed: ")
			      == 2, "%s", reply ? reply : "(timeout)");
		free(reply);
		close(fd);
	}
	ck_assert_int_eq(ctl(&d, &out, "status", NULL), 0);
	ck_assert_msg(strstr(out, "last reload: reload failed"), "%s", out);
	free(out);
	daemon_stop(&d);
}
END_TEST

START_TEST(stop_and_stop_fast)
{
	uint16_t port = tl_free_port();
	struct daemon d;
	char *out;

	daemon_start_ready(&d, ctl_conf(port, 1, ""), NULL);
	ck_assert_int_eq(ctl(&d, &out, "stop", NULL), 0);
	ck_assert_msg(strstr(out, "stopping"), "%s", out);
	free(out);
	ck_assert_int_eq(tl_exit_code(daemon_wait_exit(&d, 10000)), 0);
	ck_assert(daemon_log_contains(&d, "stopping (control socket: stop)"));
	ck_assert_int_eq(access(daemon_path(&d, "ctl.sock"), F_OK), -1);	/* removed */
	daemon_stop(&d);
	daemon_start_ready(&d, ctl_conf(port, 1, "shutdown-timeout = 1h\n"), NULL);
	{
		int held = tl_connect_tcp("127.0.0.1", port);

		ck_assert(tl_echo(held, "x", 1, 5000));
		ck_assert_int_eq(ctl(&d, &out, "stop", "fast"), 0);
		free(out);
		/* Not an hour: the connection is closed now. */
		ck_assert_int_eq(tl_exit_code(daemon_wait_exit(&d, 5000)), 0);
		close(held);
	}
	daemon_stop(&d);
}
END_TEST

/* Without a daemon: a clear message and its own exit status. */
START_TEST(no_daemon)
{
	char *out;
	char *argv[] = { (char *)PREFORKCTL, (char *)"-s", (char *)"/tmp/preforkd-no-such.sock",
			 (char *)"status", NULL };

	ck_assert_int_eq(tl_run_timeout(&out, 10000, argv), 3);
	ck_assert_msg(strstr(out, "is preforkd running"), "%s", out);
	free(out);
}
END_TEST

/* Who may ask: the file's mode keeps others out; with a mode that lets
 * them in, the daemon refuses them itself (and logs it); control-group
 * lets its members in. */
START_TEST(only_root_owner_and_group)
{
	uint16_t port = tl_free_port();
	struct daemon d;
	char *out;

	if (geteuid() != 0)
		return;	/* nobody to be other than ourselves */
	daemon_start_ready(&d, ctl_conf(port, 1, ""), NULL);
	ck_assert_int_eq(ctl_as_nobody(&d, &out, "65534"), 4);
	ck_assert_msg(strstr(out, "Permission denied"), "%s", out);	/* mode 0600 */
	free(out);
	daemon_stop(&d);
	daemon_start_ready(&d, ctl_conf(port, 1, "control-mode = 0666\n"), NULL);
	ck_assert_int_eq(ctl_as_nobody(&d, &out, "65534"), 4);
	ck_assert_msg(strstr(out, "preforkctl: permission denied"), "%s", out);
	free(out);
	ck_assert(daemon_wait_log(&d, "control socket: refused uid 65534", 5000));
	daemon_stop(&d);
	daemon_start_ready(&d, ctl_conf(port, 1, "control-mode = 0660\ncontrol-group = \"nogroup\"\n"),
			   NULL);
	ck_assert_int_eq(ctl_as_nobody(&d, &out, "65534"), 0);
	ck_assert_msg(strstr(out, "service echo"), "%s", out);
	free(out);
	daemon_stop(&d);
}
END_TEST

/* A client that sends nothing, and one that sends 1 MB without a newline,
 * block nothing: a reload is answered meanwhile, the long one is refused
 * and dropped, the silent one dropped after 10 s. */
START_TEST(stalled_and_flooding_clients)
{
	uint16_t port = tl_free_port();
	struct daemon d;
	char *out, *reply, *big = malloc(1 << 20);
	int idle, flood;
	bool reset = false;
	ssize_t sent = 0;

	ck_assert_ptr_nonnull(big);
	memset(big, 'x', 1 << 20);
	daemon_start_ready(&d, ctl_conf(port, 1, ""), NULL);
	idle = raw_client(&d);
	flood = raw_client(&d);
	/* The daemon stops reading at 1024 bytes and closes: the rest may fail. */
	for (ssize_t n; sent < (1 << 20) && (n = send(flood, big + sent, (size_t)((1 << 20) - sent),
						      MSG_NOSIGNAL | MSG_DONTWAIT)) > 0;)
		sent += n;
	ck_assert_int_eq(ctl(&d, &out, "reload", NULL), 0);
	ck_assert_msg(strstr(out, "reload ok"), "%s", out);
	free(out);
	reply = tl_read_to_eof(flood, 5000, &reset);
	ck_assert_msg(reply && strstr(reply, "request longer than 1024 bytes"), "%s",
		      reply ? reply : (reset ? "(reset)" : "(nothing)"));
	free(reply);
	close(flood);
	reply = tl_read_to_eof(idle, 15000, NULL);	/* dropped at 10 s */
	ck_assert_msg(reply && reply[0] == '\0', "%s", reply ? reply : "(timeout)");
	free(reply);
	close(idle);
	free(big);
	daemon_stop(&d);
}
END_TEST

/* A leftover socket file nobody listens on is replaced; one a live
 * preforkd listens on refuses the second one's start. */
START_TEST(stale_and_live_sockets)
{
	uint16_t port = tl_free_port();
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct daemon a, b;
	char text[512];
	int fd;

	daemon_start_ready(&a, ctl_conf(port, 1, ""), NULL);
	snprintf(text, sizeof(text), "control-socket = \"%s/ctl.sock\"\nservice other {\n"
		 "  listen = { \"127.0.0.1:%u\" }\n  handler = \"echo\"\n}\n", a.dir, tl_free_port());
	daemon_start(&b, text, NULL);
	ck_assert_int_eq(tl_exit_code(daemon_wait_exit(&b, 10000)), 1);
	ck_assert(daemon_log_contains(&b, "another process is listening on this socket"));
	ck_assert(daemon_log_contains(&b, "set control-socket = \"\" to run without one"));
	daemon_stop(&b);
	/* a's socket still answers, and a stale one is taken over. */
	ck_assert_uint_lt(strlen(a.dir) + strlen("/ctl.sock"), sizeof(sa.sun_path));
	memcpy(sa.sun_path, a.dir, strlen(a.dir));
	memcpy(sa.sun_path + strlen(a.dir), "/ctl.sock", sizeof("/ctl.sock"));
	kill(a.pid, SIGKILL);
	daemon_wait_exit(&a, 5000);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	ck_assert_int_lt(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);	/* stale now */
	close(fd);
	daemon_start_ready(&b, text, NULL);
	ck_assert(daemon_log_contains(&b, "removed stale socket file"));
	daemon_stop(&b);
	daemon_stop(&a);
}
END_TEST

/* The clients waiting in the accept queue, for TCP and for Unix: with the
 * workers stopped, K connections wait; after SIGCONT, none. */
START_TEST(accept_queue_depth_tcp_and_unix)
{
	enum { K = 5 };
	uint16_t port = tl_free_port();
	struct daemon d;
	pid_t pid[1];
	int c[2 * K];
	char *out;

	daemon_start_ready(&d, ctl_conf(port, 1, ""), NULL);
	ck_assert_uint_eq(daemon_workers(&d, pid, 1), 1);
	kill(pid[0], SIGSTOP);
	for (int i = 0; i < K; i++) {
		c[i] = tl_connect_tcp("127.0.0.1", port);
		c[K + i] = tl_connect_unix(daemon_path(&d, "echo.sock"));
		ck_assert(c[i] >= 0 && c[K + i] >= 0);
	}
	ck_assert_int_eq(ctl(&d, &out, "status", "--json"), 0);
	ck_assert_msg(tl_count_in(out, "\"queue\":5,\"queue_limit\":511") == 2, "%s", out);
	free(out);
	kill(pid[0], SIGCONT);
	for (int i = 0; i < 2 * K; i++) {
		ck_assert(tl_echo(c[i], "x", 1, 5000));
		close(c[i]);
	}
	ck_assert_int_eq(ctl(&d, &out, "status", "--json"), 0);
	ck_assert_msg(tl_count_in(out, "\"queue\":0,\"queue_limit\":511") == 2, "%s", out);
	free(out);
	daemon_stop(&d);
}
END_TEST

/* The counts are exact: N connections are N accepted, whatever happened
 * to the workers that took them (SIGKILLed, reloaded away). */
static void connect_echo(uint16_t port, unsigned n)
{
	for (unsigned i = 0; i < n; i++)
		ck_assert(tl_echo_tcp(port, "count me"));
}

START_TEST(counts_survive_kills_and_reloads)
{
	uint16_t port = tl_free_port();
	struct daemon d;
	pid_t pids[2];
	char *out;

	daemon_start_ready(&d, ctl_conf(port, 2, ""), NULL);
	connect_echo(port, 50);
	ck_assert_uint_eq(daemon_workers(&d, pids, 2), 2);
	kill(pids[0], SIGKILL);
	ck_assert(daemon_wait_log(&d, "respawning worker echo#", 5000));
	connect_echo(port, 30);
	ck_assert_int_eq(daemon_reload(&d, 10000), 1);
	connect_echo(port, 20);
	/* A client has its echo before its worker has seen it close: "open"
	 * comes to 0 a moment later. */
	for (uint64_t t0 = tl_now_ms();; usleep(20000)) {
		ck_assert_int_eq(ctl(&d, &out, "status", "--json"), 0);
		if (strstr(out, "\"connections\":{\"accepted\":100,\"open\":0,\"rejected\":"
				"{\"denied\":0,") || tl_now_ms() - t0 > 3000)
			break;
		free(out);
	}
	ck_assert_msg(strstr(out, "\"connections\":{\"accepted\":100,\"open\":0,\"rejected\":"
			      "{\"denied\":0,"), "%s", out);
	free(out);
	ck_assert_int_eq(ctl(&d, &out, "status", NULL), 0);
	ck_assert_msg(strstr(out, "100 connections accepted, 0 open"), "%s", out);
	free(out);
	daemon_stop(&d);
	/* Turned away is counted by why. */
	snprintf(conf_text, sizeof(conf_text), "control-socket = \"@DIR@/ctl.sock\"\nservice echo {\n"
		 "  listen = { \"127.0.0.1:%u\" }\n  handler = \"echo\"\n  allow = { \"10.0.0.0/8\" }\n"
		 "}\n", port);
	daemon_start_ready(&d, conf_text, NULL);
	for (int i = 0; i < 7; i++) {
		int fd = tl_connect_tcp("127.0.0.1", port);
		char *gone = tl_read_to_eof(fd, 5000, NULL);

		free(gone);
		close(fd);
	}
	ck_assert_int_eq(ctl(&d, &out, "status", "--json"), 0);
	ck_assert_msg(strstr(out, "\"accepted\":7,\"open\":0,\"rejected\":{\"denied\":7,"), "%s", out);
	free(out);
	daemon_stop(&d);
}
END_TEST

/* What ps shows: /proc/PID/cmdline of the master and of each worker. */
static char *cmdline(pid_t pid)
{
	char path[64];

	snprintf(path, sizeof(path), "/proc/%ld/cmdline", (long)pid);
	return tl_read_file(path);	/* one string: the title and its NUL padding */
}

START_TEST(process_titles)
{
	uint16_t port = tl_free_port();
	struct daemon d;
	pid_t pids[2];
	char *t, want[64];

	daemon_start_ready(&d, ctl_conf(port, 2, ""), NULL);
	t = cmdline(d.pid);
	ck_assert_str_eq(t, "preforkd: master (generation 1)");
	free(t);
	ck_assert_uint_eq(daemon_workers(&d, pids, 2), 2);
	for (int i = 0; i < 2; i++) {
		t = cmdline(pids[i]);
		ck_assert_msg(strcmp(t, "preforkd: worker echo#0 (generation 1)") == 0 ||
			      strcmp(t, "preforkd: worker echo#1 (generation 1)") == 0, "%s", t);
		free(t);
	}
	ck_assert_int_eq(daemon_reload(&d, 10000), 1);
	t = cmdline(d.pid);
	ck_assert_str_eq(t, "preforkd: master (generation 2)");
	free(t);
	/* The old workers go once the new ones serve: then every child is of generation 2. */
	snprintf(want, sizeof(want), "(generation 2)");
	for (uint64_t t0 = tl_now_ms();; usleep(20000)) {
		size_t n = daemon_workers(&d, pids, 2), new = 0;

		for (size_t i = 0; i < n; i++) {
			t = cmdline(pids[i]);
			new += strstr(t, "preforkd: worker echo#") == t && strstr(t, want);
			free(t);
		}
		if (n == 2 && new == 2)
			break;
		ck_assert_msg(tl_now_ms() - t0 < 5000, "%zu workers, %zu of generation 2", n, new);
	}
	daemon_stop(&d);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("control");
	TCase *tc = tcase_create("control");

	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, status_shows_services_and_workers);
	tcase_add_test(tc, reload_reports_its_result);
	tcase_add_test(tc, stop_and_stop_fast);
	tcase_add_test(tc, no_daemon);
	tcase_add_test(tc, only_root_owner_and_group);
	tcase_add_test(tc, stalled_and_flooding_clients);
	tcase_add_test(tc, stale_and_live_sockets);
	tcase_add_test(tc, accept_queue_depth_tcp_and_unix);
	tcase_add_test(tc, process_titles);
	tcase_add_test(tc, counts_survive_kills_and_reloads);
	suite_add_tcase(s, tc);
	return tl_run_suite(s);
}
