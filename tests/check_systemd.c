/* SPDX-License-Identifier: ISC */
/* check_systemd.c - the daemon as a systemd service: the notify protocol on a
 * private NOTIFY_SOCKET, a service manager that stops reading, socket
 * activation through systemd-socket-activate, and the unit files. */
#include "config.h"

#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "master/activation.h"
#include "testlib.h"

#ifndef UNITDIR
#error "UNITDIR must name the unit files generated for the tests"
#endif

#define STUCK_RELOADS 20

static char conf_text[2048];

static const char *echo_conf(const char *listen, unsigned workers)
{
	snprintf(conf_text, sizeof(conf_text),
		 "service web {\n"
		 "  listen = { %s }\n"
		 "  handler = \"echo\"\n"
		 "  workers = %u\n"
		 "}\n", listen, workers);
	return conf_text;
}

static const char *tcp_conf(uint16_t port)
{
	static char listen[64];

	snprintf(listen, sizeof(listen), "\"127.0.0.1:%u\"", port);
	return echo_conf(listen, 2);
}

static unsigned long long monotonic_usec(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (unsigned long long)ts.tv_sec * 1000000ULL + (unsigned long long)ts.tv_nsec / 1000;
}

/* READY=1 (with MAINPID=), STATUS=, RELOADING=1 with a MONOTONIC_USEC= taken
 * during the reload, READY=1 after it, STOPPING=1. */
START_TEST(notify_protocol)
{
	uint16_t port = tl_free_port();
	unsigned long long before, after, stamp = 0;
	char mainpid[32];
	const char *reloading, *p;
	struct daemon d;

	daemon_start(&d, tcp_conf(port), NULL);
	ck_assert(daemon_wait_ready(&d, 10000));
	snprintf(mainpid, sizeof(mainpid), "MAINPID=%ld", (long)d.pid);
	ck_assert_uint_eq(daemon_count_notify(&d, mainpid), 1);
	ck_assert_uint_eq(daemon_count_notify(&d, "STATUS=1 service, 2 of 2 workers ready"), 1);

	before = monotonic_usec();
	ck_assert_int_eq(daemon_reload(&d, 10000), 1);
	after = monotonic_usec();
	reloading = strstr(d.notified, "RELOADING=1");
	ck_assert_ptr_nonnull(reloading);
	p = strstr(reloading, "MONOTONIC_USEC=");
	ck_assert_ptr_nonnull(p);
	ck_assert(p < strstr(reloading, "\n--\n"));	/* in the same message */
	ck_assert_int_eq(sscanf(p, "MONOTONIC_USEC=%llu", &stamp), 1);
	ck_assert(stamp >= before && stamp <= after);
	/* The READY=1 that ends the reload comes after RELOADING=1. */
	ck_assert_ptr_nonnull(strstr(reloading, "READY=1"));
	ck_assert_uint_eq(daemon_count_notify(&d, "READY=1"), 2);
	ck_assert_uint_ge(daemon_count_notify(&d, "reload ok: generation 2 serving"), 1);

	kill(d.pid, SIGTERM);
	ck_assert(daemon_wait_notify(&d, "STOPPING=1", 5000));
	ck_assert_int_eq(tl_exit_code(daemon_wait_exit(&d, 10000)), 0);
	daemon_stop(&d);
}
END_TEST

/* A reload that fails on a value with a newline in it: the STATUS= line
 * that quotes it stays one line (the protocol is one field a line). */
START_TEST(status_escapes_what_the_file_says)
{
	uint16_t port = tl_free_port();
	char bad[256];
	struct daemon d;

	daemon_start(&d, tcp_conf(port), NULL);
	ck_assert(daemon_wait_ready(&d, 10000));
	snprintf(bad, sizeof(bad), "service a {\n  listen = { \"127.0.0.1:%u\" }\n"
		 "  handler = \"ec\\nho\"\n}\n", port);
	daemon_write_conf(&d, bad);
	ck_assert_int_eq(daemon_reload(&d, 10000), 0);
	ck_assert_msg(daemon_count_notify(&d, "unknown handler \"ec\\x0aho\" (known: ") >= 1,
		      "%s", d.notified);
	ck_assert_uint_eq(daemon_count_notify(&d, "\nho\""), 0);
	daemon_stop(&d);
}
END_TEST

/* WATCHDOG=1 every half WATCHDOG_USEC, and only for the pid it names. */
START_TEST(watchdog_pings)
{
	const char *env[] = { "WATCHDOG_USEC=200000", NULL };
	const char *other_pid[] = { "WATCHDOG_USEC=200000", "WATCHDOG_PID=1", NULL };
	struct daemon_opts opts = { .env = env };
	struct daemon d;
	uint64_t t0;

	daemon_start(&d, tcp_conf(tl_free_port()), &opts);
	ck_assert(daemon_wait_ready(&d, 10000));
	t0 = tl_now_ms();
	ck_assert(daemon_wait_notify(&d, "WATCHDOG=1", 2000));
	while (daemon_count_notify(&d, "WATCHDOG=1") < 6)
		ck_assert_msg(tl_now_ms() - t0 < 3000, "%u pings in 3 s",
			      daemon_count_notify(&d, "WATCHDOG=1"));
	daemon_stop(&d);

	opts.env = other_pid;
	daemon_start(&d, tcp_conf(tl_free_port()), &opts);
	ck_assert(daemon_wait_ready(&d, 10000));
	ck_assert(!daemon_wait_notify(&d, "WATCHDOG=1", 500));
	daemon_stop(&d);
}
END_TEST

/* A service manager that stops reading: its queue fills after
 * net.unix.max_dgram_qlen messages. The master must not wait for it. */
START_TEST(stuck_notify_socket_does_not_block)
{
	uint16_t port = tl_free_port();
	struct daemon d;

	daemon_start(&d, tcp_conf(port), NULL);	/* the fixture reads only when asked */
	ck_assert(daemon_wait_log(&d, ": ready: ", 10000));
	for (unsigned i = 1; i <= STUCK_RELOADS; i++) {
		uint64_t t0 = tl_now_ms();

		ck_assert_int_eq(kill(d.pid, SIGHUP), 0);
		while (daemon_log_count(&d, "reload ok") < i)
			ck_assert_msg(tl_now_ms() - t0 < 5000, "reload %u stuck; log:\n%s", i,
				      tl_read_file(d.log));
	}
	ck_assert(tl_echo_tcp(port, "still serving"));
	ck_assert(daemon_log_contains(&d, "dropped since the last report"));
	kill(d.pid, SIGTERM);
	ck_assert_int_eq(tl_exit_code(daemon_wait_exit(&d, 10000)), 0);
	daemon_stop(&d);
}
END_TEST

static int score(const char *want_spec, const char *have_spec)
{
	struct address want, have;
	char err[128];

	ck_assert_int_eq(address_parse(want_spec, &want, err, sizeof(err)), 0);
	ck_assert_int_eq(address_parse(have_spec, &have, err, sizeof(err)), 0);
	return activation_match_score(&want, &have);
}

START_TEST(activation_match_rules)
{
	ck_assert_int_eq(score("127.0.0.1:80", "127.0.0.1:80"), 2);
	ck_assert_int_eq(score("*:80", "[::]:80"), 2);		/* ListenStream=80 */
	ck_assert_int_eq(score("0.0.0.0:80", "[::]:80"), 1);
	ck_assert_int_eq(score("127.0.0.1:80", "[::]:80"), 1);
	ck_assert_int_eq(score("[::1]:80", "0.0.0.0:80"), 1);
	ck_assert_int_eq(score("127.0.0.1:80", "127.0.0.2:80"), 0);
	ck_assert_int_eq(score("127.0.0.1:80", "127.0.0.1:81"), 0);
	ck_assert_int_eq(score("*:80", "[::]:81"), 0);
	ck_assert_int_eq(score("unix:/run/a.sock", "unix:/run/a.sock"), 2);
	ck_assert_int_eq(score("unix:/run/a.sock", "unix:/run/b.sock"), 0);
	ck_assert_int_eq(score("unix:@a", "unix:@a"), 2);
	ck_assert_int_eq(score("unix:/run/a.sock", "127.0.0.1:80"), 0);
}
END_TEST

/* systemd-socket-activate listens before it runs the daemon: once connect()
 * succeeds, the client waits in the backlog until the daemon accepts it. */
static int connect_activator(uint16_t port)
{
	int fd;

	for (uint64_t t0 = tl_now_ms(); (fd = tl_connect_tcp("127.0.0.1", port)) < 0;)
		ck_assert_msg(tl_now_ms() - t0 < 5000, "activator not listening");
	return fd;
}

#ifdef HAVE_SYSTEMD
/* systemd-socket-activate binds, waits for the first client, then runs the
 * daemon with the sockets: TCP and Unix, named after the service. */
START_TEST(socket_activation_tcp_and_unix)
{
	uint16_t port = tl_free_port(), own = tl_free_port();
	char listen[160], tcp_arg[32], needle[96];
	const char *wrapper[] = { "systemd-socket-activate", "-l", tcp_arg, "-l", "@DIR@/web.sock",
				  "--fdname=web:web", "-E", "NOTIFY_SOCKET", NULL };
	struct daemon_opts opts = { .wrapper = wrapper };
	unsigned long inode;
	struct daemon d;
	struct stat st;
	char sock[256];
	int fd;

	snprintf(tcp_arg, sizeof(tcp_arg), "127.0.0.1:%u", port);
	/* The third address has no socket from the activator: we bind it. */
	snprintf(listen, sizeof(listen), "\"127.0.0.1:%u\", \"unix:@DIR@/web.sock\", "
		 "\"127.0.0.1:%u\"", port, own);
	daemon_start(&d, echo_conf(listen, 2), &opts);
	snprintf(sock, sizeof(sock), "%s/web.sock", d.dir);
	/* The first client is queued by the activator and served by us. */
	fd = connect_activator(port);
	ck_assert(tl_echo(fd, "first", 5, 10000));
	close(fd);
	ck_assert(daemon_wait_ready(&d, 10000));
	ck_assert(daemon_log_contains(&d, "fd 3 (127.0.0.1:"));
	ck_assert(daemon_log_contains(&d, "(service web, from socket activation)"));
	snprintf(needle, sizeof(needle), "listening on 127.0.0.1:%u (service web)\n", port);
	ck_assert(!daemon_log_contains(&d, needle));	/* adopted, not bound again */
	snprintf(needle, sizeof(needle), "listening on 127.0.0.1:%u (service web)\n", own);
	ck_assert(daemon_log_contains(&d, needle));
	ck_assert(tl_echo_tcp(own, "bound by preforkd"));
	/* Made non-blocking and close-on-exec, whatever the activator passed. */
	for (int i = 3; i <= 4; i++)
		ck_assert_int_eq(tl_fd_flags(d.pid, i) & (O_NONBLOCK | O_CLOEXEC),
				 O_NONBLOCK | O_CLOEXEC);
	fd = tl_connect_unix(sock);
	ck_assert(tl_echo(fd, "over unix", 9, 5000));
	close(fd);

	/* Adopted listeners survive a reload like any other. */
	inode = tl_listen_inode(port);
	ck_assert_int_eq(daemon_reload(&d, 10000), 1);
	ck_assert_uint_eq(tl_listen_inode(port), inode);
	ck_assert(tl_echo_tcp(port, "after reload"));
	kill(d.pid, SIGTERM);
	ck_assert_int_eq(tl_exit_code(daemon_wait_exit(&d, 10000)), 0);
	/* The socket file is the socket unit's: preforkd leaves it. */
	ck_assert_int_eq(lstat(sock, &st), 0);
	daemon_stop(&d);
}
END_TEST

/* A bare ListenStream=PORT arrives as [::]:PORT; it serves "0.0.0.0:PORT". */
START_TEST(socket_activation_loose_match)
{
	uint16_t port = tl_free_port();
	char listen[64], port_arg[16];
	const char *wrapper[] = { "systemd-socket-activate", "-l", port_arg, "-E", "NOTIFY_SOCKET",
				  NULL };
	struct daemon_opts opts = { .wrapper = wrapper };
	struct daemon d;
	int fd;

	snprintf(port_arg, sizeof(port_arg), "%u", port);
	snprintf(listen, sizeof(listen), "\"0.0.0.0:%u\"", port);
	daemon_start(&d, echo_conf(listen, 1), &opts);
	fd = connect_activator(port);
	ck_assert(tl_echo(fd, "v4 client", 9, 10000));
	close(fd);
	ck_assert(daemon_wait_ready(&d, 10000));
	ck_assert(daemon_log_contains(&d, "serves 0.0.0.0:"));
	daemon_stop(&d);
}
END_TEST

/* A socket the config does not mention is an error, not a silent leak. */
START_TEST(socket_activation_unmatched_socket_refused)
{
	uint16_t port = tl_free_port(), extra = tl_free_port();
	char tcp_arg[32], extra_arg[32], needle[128];
	const char *wrapper[] = { "systemd-socket-activate", "-l", tcp_arg, "-l", extra_arg,
				  "-E", "NOTIFY_SOCKET", NULL };
	struct daemon_opts opts = { .wrapper = wrapper };
	struct daemon d;
	int fd;

	snprintf(tcp_arg, sizeof(tcp_arg), "127.0.0.1:%u", port);
	snprintf(extra_arg, sizeof(extra_arg), "127.0.0.1:%u", extra);
	daemon_start(&d, tcp_conf(port), &opts);
	fd = connect_activator(extra);
	ck_assert_int_eq(tl_exit_code(daemon_wait_exit(&d, 10000)), 78);
	snprintf(needle, sizeof(needle), "fd 4 (127.0.0.1:%u, name \"unknown\") matches no listen "
		 "address of the config", extra);
	ck_assert_msg(daemon_log_contains(&d, needle), "log:\n%s", tl_read_file(d.log));
	close(fd);
	daemon_stop(&d);
}
END_TEST

static const char *store_conf(const char *dir, uint16_t port, uint16_t port2, bool with_unix,
			      bool with_port2)
{
	static char text[1024];

	snprintf(text, sizeof(text),
		 "service echo {\n  listen = { \"127.0.0.1:%u\"%s%s%s }\n  handler = \"echo\"\n}\n",
		 port, with_unix ? ", \"unix:" : "", with_unix ? dir : "",
		 with_unix ? "/echo.sock\"" : "");
	if (with_port2)
		snprintf(text + strlen(text), sizeof(text) - strlen(text),
			 "service two {\n  listen = { \"127.0.0.1:%u\" }\n  handler = \"echo\"\n}\n",
			 port2);
	return text;
}

/* What was sent on fd before the server had it comes back (the write
 * side shut, the server closes after its echo). */
static bool answered(int fd, const char *sent)
{
	char *back;
	bool ok;

	shutdown(fd, SHUT_WR);
	back = tl_read_to_eof(fd, 5000, NULL);
	ok = back && strcmp(back, sent) == 0;
	free(back);
	close(fd);
	return ok;
}

/* What a store does with FDSTOREREMOVE=1: closes that one. How many are left. */
static size_t store_remove(int *fds, char (*names)[256], size_t n, const char *name)
{
	size_t kept = 0;

	for (size_t i = 0; i < n; i++) {
		if (strcmp(names[i], name) == 0) {
			close(fds[i]);
			continue;
		}
		fds[kept] = fds[i];
		memmove(names[kept++], names[i], sizeof(names[0]));
	}
	return kept;
}

static bool has_stored(char (*names)[256], size_t n, const char *want)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(names[i], want) == 0)
			return true;
	return false;
}

#define STORE_RESTARTS 3

/* The fd store, as systemd keeps it across "systemctl restart": every
 * listener preforkd bound is pushed (FDSTORE=1, named after its address);
 * after a stop the sockets stay open in the store (the unix file stays
 * too), clients that connect in the gap wait in the kernel's queue, and
 * the next preforkd, handed the descriptors back by name, serves them. A
 * stored descriptor the config no longer has is closed and removed
 * (FDSTOREREMOVE=1), and so is one a reload drops. */
START_TEST(fd_store_keeps_listeners_across_a_restart)
{
	uint16_t port = tl_free_port(), port2 = tl_free_port();
	struct daemon d1, d2;
	struct tl_load loads[2];
	atomic_bool stop = false;
	unsigned total;
	int fds[16], more[16], tcp, unx;
	char names[16][256], more_names[16][256], want[320], dir[128], sock[192];
	const char *pass_names[16];
	const char *const env[] = { "FDSTORE=16", NULL };
	struct daemon_opts store = { .env = env };
	struct daemon_opts opts = { .pass_fds = fds, .pass_names = pass_names, .env = env };
	size_t n;
	struct stat st;

	tl_mkdtemp(dir, sizeof(dir));
	chmod(dir, 0711);
	snprintf(sock, sizeof(sock), "%s/echo.sock", dir);
	/* No $FDSTORE: no store to push to, the files go at a stop. */
	daemon_start_ready(&d1, store_conf(dir, port, port2, true, true), NULL);
	ck_assert_uint_eq(daemon_take_stored(&d1, fds, names, 16), 0);
	daemon_stop(&d1);
	ck_assert_int_ne(stat(sock, &st), 0);
	daemon_start_ready(&d1, store_conf(dir, port, port2, true, true), &store);
	n = daemon_take_stored(&d1, fds, names, 16);
	ck_assert_uint_eq(n, 3);
	snprintf(want, sizeof(want), "preforkd.127.0.0.1%%3A%u", port);
	ck_assert_msg(has_stored(names, n, want), "%s not among the %zu stored", want, n);
	snprintf(want, sizeof(want), "preforkd.unix%%3A%s", sock);
	ck_assert_msg(has_stored(names, n, want), "%s not among the stored", want);
	/* The stop: the store keeps the sockets, the file stays. */
	ck_assert_int_eq(kill(d1.pid, SIGTERM), 0);
	ck_assert_int_eq(tl_exit_code(daemon_wait_exit(&d1, 10000)), 0);
	ck_assert_int_eq(stat(sock, &st), 0);
	tcp = tl_connect_tcp("127.0.0.1", port);
	unx = tl_connect_unix(sock);
	ck_assert_int_ge(tcp, 0);
	ck_assert_int_ge(unx, 0);
	ck_assert_int_eq(send(tcp, "gap tcp\n", 8, MSG_NOSIGNAL), 8);
	ck_assert_int_eq(send(unx, "gap unix\n", 9, MSG_NOSIGNAL), 9);
	/* The next start, without service "two": its socket goes from the store. */
	for (size_t i = 0; i < n; i++)
		pass_names[i] = names[i];
	opts.npass = n;
	daemon_start_ready(&d2, store_conf(dir, port, port2, true, false), &opts);
	ck_assert(answered(tcp, "gap tcp\n"));
	ck_assert(answered(unx, "gap unix\n"));
	ck_assert(tl_echo_tcp(port, "after\n"));
	ck_assert(tl_echo_unix(sock, "after\n"));
	snprintf(want, sizeof(want), "fd store: preforkd.127.0.0.1%%3A%u (fd ", port2);
	ck_assert_msg(daemon_log_contains(&d2, want), "log:\n%s", tl_read_file(d2.log));
	ck_assert(daemon_log_contains(&d2, "is no longer in the config: closed and removed"));
	snprintf(want, sizeof(want), "FDSTOREREMOVE=1\nFDNAME=preforkd.127.0.0.1%%3A%u", port2);
	ck_assert(daemon_wait_notify(&d2, want, 2000));
	n = store_remove(fds, names, n, want + strlen("FDSTOREREMOVE=1\nFDNAME="));
	ck_assert_uint_eq(n, 2);
	ck_assert_int_lt(tl_connect_tcp("127.0.0.1", port2), 0);
	/* Adopted from the store, they are in it already: nothing pushed again. */
	ck_assert_uint_eq(daemon_take_stored(&d2, more, more_names, 16), 0);
	/* Restarts under continuous TCP and unix clients: none refused, none lost. */
	for (int i = 0; i < 2; i++) {
		loads[i] = (struct tl_load){ .port = port, .stop = &stop,
					     .unix_path = i ? sock : NULL };
		tl_load_start(&loads[i]);
	}
	for (int r = 0; r < STORE_RESTARTS; r++) {
		usleep(200 * 1000);
		ck_assert_int_eq(kill(d2.pid, SIGTERM), 0);
		ck_assert_int_eq(tl_exit_code(daemon_wait_exit(&d2, 10000)), 0);
		daemon_stop(&d2);
		for (size_t i = 0; i < n; i++)
			pass_names[i] = names[i];
		opts.npass = n;
		daemon_start_ready(&d2, store_conf(dir, port, port2, true, false), &opts);
	}
	usleep(200 * 1000);
	total = tl_loads_finish(loads, 2);
	fprintf(stderr, "fd_store_keeps_listeners_across_a_restart: %d restarts, %u connections, "
		"none failed\n", STORE_RESTARTS, total);
	ck_assert_uint_ge(total, 100);
	/* A reload that drops the unix address removes it from the store, and its file. */
	daemon_write_conf(&d2, store_conf(dir, port, port2, false, false));
	ck_assert_int_eq(daemon_reload(&d2, 10000), 1);
	snprintf(want, sizeof(want), "FDSTOREREMOVE=1\nFDNAME=preforkd.unix%%3A%s", sock);
	ck_assert(daemon_wait_notify(&d2, want, 2000));
	ck_assert_int_ne(stat(sock, &st), 0);
	/* One that adds an address pushes it. */
	daemon_write_conf(&d2, store_conf(dir, port, port2, false, true));
	ck_assert_int_eq(daemon_reload(&d2, 10000), 1);
	snprintf(want, sizeof(want), "preforkd.127.0.0.1%%3A%u", port2);
	ck_assert_uint_eq(daemon_take_stored(&d2, more, more_names, 16), 1);
	ck_assert_str_eq(more_names[0], want);
	close(more[0]);
	for (size_t i = 0; i < n; i++)
		close(fds[i]);
	daemon_stop(&d2);
	daemon_stop(&d1);
	tl_rmtree(dir);
}
END_TEST
#else
/* Without libsystemd, inherited sockets are refused loudly, not leaked. */
START_TEST(socket_activation_needs_libsystemd)
{
	uint16_t port = tl_free_port();
	char tcp_arg[32];
	const char *wrapper[] = { "systemd-socket-activate", "-l", tcp_arg, NULL };
	struct daemon_opts opts = { .wrapper = wrapper };
	struct daemon d;
	int fd;

	snprintf(tcp_arg, sizeof(tcp_arg), "127.0.0.1:%u", port);
	daemon_start(&d, tcp_conf(port), &opts);
	fd = connect_activator(port);
	ck_assert_int_eq(tl_exit_code(daemon_wait_exit(&d, 10000)), 78);
	ck_assert(daemon_log_contains(&d, "built without libsystemd"));
	close(fd);
	daemon_stop(&d);
}
END_TEST
#endif

/* "systemd-analyze verify" finds nothing to say about the units. */
START_TEST(unit_files_verify)
{
	char *argv[] = { (char *)"systemd-analyze", (char *)"verify", (char *)"--man=no",
			 (char *)UNITDIR "/preforkd.service", (char *)UNITDIR "/preforkd.socket", NULL };
	char *out;
	int rc = tl_run(&out, argv);
	size_t kept = 0;

	/* What it says about other units installed here (one with a bad line
	 * in /lib/systemd/system, say) is not ours to fix. */
	for (char *line = out, *next; *line; line = next) {
		size_t len = strcspn(line, "\n");

		next = line + len + (line[len] == '\n');
		if (line[0] == '/' && strncmp(line, UNITDIR "/", strlen(UNITDIR) + 1) != 0)
			continue;
		memmove(out + kept, line, (size_t)(next - line));
		kept += (size_t)(next - line);
	}
	out[kept] = '\0';
	ck_assert_msg(rc == 0 && out[0] == '\0', "systemd-analyze verify: exit %d:\n%s", rc, out);
	free(out);
	/* RestartPreventExitStatus=78 counts the main process only: a config
	 * check in ExecStartPre= that exits 78 restarts the unit in a loop. */
	out = tl_read_file(UNITDIR "/preforkd.service");
	ck_assert_ptr_null(strstr(out, "\nExecStartPre="));
	ck_assert_ptr_nonnull(strstr(out, "\nRestartPreventExitStatus=78\n"));
	free(out);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("systemd");
	TCase *tc = tcase_create("systemd");

	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, notify_protocol);
	tcase_add_test(tc, status_escapes_what_the_file_says);
	tcase_add_test(tc, watchdog_pings);
	tcase_add_test(tc, stuck_notify_socket_does_not_block);
	tcase_add_test(tc, activation_match_rules);
#ifdef HAVE_SYSTEMD
	tcase_add_test(tc, socket_activation_tcp_and_unix);
	tcase_add_test(tc, socket_activation_loose_match);
	tcase_add_test(tc, socket_activation_unmatched_socket_refused);
	tcase_add_test(tc, fd_store_keeps_listeners_across_a_restart);
#else
	tcase_add_test(tc, socket_activation_needs_libsystemd);
#endif
	tcase_add_test(tc, unit_files_verify);
	suite_add_tcase(s, tc);
	return tl_run_suite(s);
}
