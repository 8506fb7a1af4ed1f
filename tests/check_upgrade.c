/* SPDX-License-Identifier: ISC */
/* check_upgrade.c - a new binary in place (preforkctl upgrade, SIGUSR2) on the real daemon, under load. */
#include "config.h"

#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "testlib.h"

#define UPGRADES 10
#define LOAD_THREADS 4

/* preforkctl -s DIR/control.sock a1 [a2]: its exit status, its output in *out. */
static int ctl(struct daemon *d, char **out, const char *a1, const char *a2)
{
	char sock[256];
	char *argv[] = { (char *)PREFORKCTL, (char *)"-s", sock, (char *)a1, (char *)a2, NULL };

	snprintf(sock, sizeof(sock), "%s/control.sock", d->dir);
	return tl_run_timeout(out, 60000, argv);
}

/* Puts a copy of from at DIR/bin/preforkd the way a package manager does:
 * written beside it, then renamed over it (the running image keeps the old
 * inode). */
static void install(struct daemon *d, const char *dir, const char *from, mode_t mode)
{
	char tmp[256], path[256], *out = NULL;
	char *argv[] = { (char *)"cp", (char *)from, tmp, NULL };

	snprintf(tmp, sizeof(tmp), "%s/bin/.preforkd.new", dir);
	snprintf(path, sizeof(path), "%s/bin/preforkd", dir);
	ck_assert_msg(tl_run(&out, argv) == 0, "cp %s: %s", from, out);
	free(out);
	ck_assert_int_eq(chmod(tmp, mode), 0);
	ck_assert_int_eq(rename(tmp, path), 0);
	(void)d;
}

static void install_script(const char *dir, const char *text)
{
	char path[256], tmp[256];

	snprintf(tmp, sizeof(tmp), "%s/bin/.preforkd.new", dir);
	snprintf(path, sizeof(path), "%s/bin/preforkd", dir);
	tl_write_file(tmp, text);
	ck_assert_int_eq(chmod(tmp, 0755), 0);
	ck_assert_int_eq(rename(tmp, path), 0);
}

/* A place for the binary, outside the daemon's own directory (made by daemon_start). */
static void bin_dir(char *dir, size_t len)
{
	char bin[256];

	tl_mkdtemp(dir, len);
	snprintf(bin, sizeof(bin), "%s/bin", dir);
	ck_assert_int_eq(mkdir(bin, 0755), 0);
	ck_assert_int_eq(chmod(dir, 0755), 0);
}

static int cmp_line(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* What pid holds above stdio, one line per descriptor: its kind (the target without
 * its inode), sorted, so that two sets compare whatever their numbers. */
static char *descriptors(pid_t pid)
{
	char path[64], link[256], *lines[512], *text;
	size_t n = 0, len = 0;
	struct dirent *e;
	DIR *dir;

	snprintf(path, sizeof(path), "/proc/%ld/fd", (long)pid);
	dir = opendir(path);
	ck_assert_ptr_nonnull(dir);
	while ((e = readdir(dir)) && n < 512) {
		char full[320];
		ssize_t l;

		if (e->d_name[0] == '.' || atoi(e->d_name) < 3)
			continue;	/* stdio: whatever the test runner gave */
		snprintf(full, sizeof(full), "%s/%s", path, e->d_name);
		l = readlink(full, link, sizeof(link) - 1);
		link[l > 0 ? l : 0] = '\0';
		link[strcspn(link, "[")] = '\0';
		lines[n++] = strdup(link);
	}
	closedir(dir);
	qsort(lines, n, sizeof(*lines), cmp_line);
	text = calloc(1, 1);
	for (size_t i = 0; i < n; i++) {
		text = realloc(text, len + strlen(lines[i]) + 2);
		len += (size_t)sprintf(text + len, "%s\n", lines[i]);
		free(lines[i]);
	}
	return text;
}

/* "version" and "pid" of the status reply. */
static void status_of(struct daemon *d, char *version, size_t vlen, long *pid)
{
	char *out, *v, *p;

	ck_assert_int_eq(ctl(d, &out, "status", "--json"), 0);
	v = strstr(out, "\"version\":\"");
	p = strstr(out, "\"pid\":");
	ck_assert_msg(v && p, "status: %s", out);
	v += strlen("\"version\":\"");
	snprintf(version, vlen, "%.*s", (int)strcspn(v, "\""), v);
	*pid = strtol(p + strlen("\"pid\":"), NULL, 10);
	free(out);
}

/* Starts the daemon on conf from a copy of the built binary at
 * DIR/bin/preforkd (dir made here), which the test then replaces. */
static void start_from_copy(struct daemon *d, char *dir, size_t dlen, const char *conf)
{
	static char binary[192];

	bin_dir(dir, dlen);
	snprintf(binary, sizeof(binary), "%s/bin/preforkd", dir);
	install(d, dir, PREFORKD_BIN_FOR_TESTS, 0755);
	daemon_start_ready(d, conf, &(struct daemon_opts){ .binary = binary });
}

static const char *conf_for(uint16_t port, unsigned workers)
{
	char listen[96];

	snprintf(listen, sizeof(listen), "\"127.0.0.1:%u\", \"unix:@DIR@/echo.sock\"", port);
	return tl_service_conf(listen, workers, "");
}

/* Ten upgrades in a row under TCP and unix clients, alternating between two
 * builds installed over the path it runs from: no client fails, the pid
 * stays, the version reported changes each time, a connection held open
 * from the start still answers, and the master holds the same descriptors. */
START_TEST(upgrades_under_load_lose_nothing)
{
	uint16_t port = tl_free_port();
	struct tl_load loads[LOAD_THREADS];
	atomic_bool stop = false;
	struct daemon d;
	char dir[128], version[64], want[160], *out, *fds_before, *fds_after;
	long pid;
	unsigned total;
	int held;

	start_from_copy(&d, dir, sizeof(dir), conf_for(port, 2));
	status_of(&d, version, sizeof(version), &pid);
	ck_assert_int_eq(pid, d.pid);
	ck_assert_str_eq(version, PACKAGE_VERSION);
	fds_before = descriptors(d.pid);
	held = tl_connect_tcp("127.0.0.1", port);
	ck_assert(tl_echo(held, "before\n", 7, 5000));
	for (int i = 0; i < LOAD_THREADS; i++) {
		loads[i] = (struct tl_load){ .port = port, .stop = &stop,
					     .unix_path = i % 2 ? daemon_path(&d, "echo.sock") : NULL };
		tl_load_start(&loads[i]);
	}
	for (int u = 0; u < UPGRADES; u++) {
		const char *to = u % 2 == 0 ? PACKAGE_VERSION "+alt" : PACKAGE_VERSION;
		const char *from = u % 2 == 0 ? PACKAGE_VERSION : PACKAGE_VERSION "+alt";
		int rc;

		unsigned reloading = daemon_count_notify(&d, "RELOADING=1");
		unsigned ready = daemon_count_notify(&d, "READY=1");

		install(&d, dir, u % 2 == 0 ? PREFORKD_ALT : PREFORKD_BIN_FOR_TESTS, 0755);
		rc = ctl(&d, &out, "upgrade", NULL);
		snprintf(want, sizeof(want), "upgraded to preforkd %s from %s; reload ok", to, from);
		ck_assert_msg(rc == 0 && strstr(out, want), "upgrade %d: %d: %s\nlog:\n%s", u, rc, out,
			      tl_read_file(d.log));
		free(out);
		status_of(&d, version, sizeof(version), &pid);
		ck_assert_int_eq(pid, d.pid);
		ck_assert_str_eq(version, to);
		/* The service manager heard RELOADING=1 from each image and then
		 * READY=1 (read each time: its queue holds 10 datagrams). */
		ck_assert_uint_ge(daemon_count_notify(&d, "RELOADING=1"), reloading + 2);
		ck_assert_uint_ge(daemon_count_notify(&d, "READY=1"), ready + 1);
	}
	total = tl_loads_finish(loads, LOAD_THREADS);
	fprintf(stderr, "upgrades_under_load_lose_nothing: %d upgrades, %u connections, none "
		"failed\n", UPGRADES, total);
	ck_assert_uint_ge(total, 200);
	ck_assert(tl_echo(held, "after\n", 6, 5000));
	close(held);
	/* Every old worker is gone but the held connection's, now done too. */
	ck_assert(daemon_wait_workers(&d, 2, 10000));
	fds_after = descriptors(d.pid);
	ck_assert_msg(strcmp(fds_before, fds_after) == 0, "descriptors before:\n%s\nafter:\n%s",
		      fds_before, fds_after);
	ck_assert_uint_eq(daemon_log_count(&d, "upgraded in place from preforkd"), UPGRADES);
	ck_assert(!daemon_log_contains(&d, "not claimed"));
	ck_assert(!daemon_log_contains(&d, "respawning"));
	/* Each READY=1 of an upgrade came after its RELOADING=1, nothing else. */
	ck_assert_uint_ge(daemon_count_notify(&d, "RELOADING=1"), 2 * UPGRADES);
	ck_assert_uint_eq(daemon_count_notify(&d, "MAINPID="), 1);
	free(fds_before);
	free(fds_after);
	daemon_stop(&d);
	tl_rmtree(dir);
}
END_TEST

/* A new worker sees only its listeners, its channel and stdio, upgraded or not. */
START_TEST(workers_of_the_new_image_hold_only_theirs)
{
	uint16_t port = tl_free_port();
	struct daemon d;
	char dir[128], *out, *fds;
	pid_t pids[4];

	start_from_copy(&d, dir, sizeof(dir), conf_for(port, 1));
	install(&d, dir, PREFORKD_ALT, 0755);
	ck_assert_int_eq(ctl(&d, &out, "upgrade", NULL), 0);
	free(out);
	ck_assert(daemon_wait_workers(&d, 1, 10000));
	ck_assert_uint_eq(daemon_workers(&d, pids, 4), 1);
	fds = descriptors(pids[0]);
	/* Its epoll and signalfd, the two listeners, the channel: nothing
	 * of the handover, no memfd (its counters are mapped). */
	ck_assert_msg(tl_count_in(fds, "\n") == 5 && tl_count_in(fds, "socket:") == 3 &&
		      tl_count_in(fds, "anon_inode:") == 2 && !strstr(fds, "memfd"),
		      "worker descriptors:\n%s", fds);
	free(fds);
	daemon_stop(&d);
	tl_rmtree(dir);
}
END_TEST

/* What the daemon was started with beyond stdio (a pipe, here) stays its
 * own: an upgrade does not hand it on. */
START_TEST(upgrade_hands_on_only_what_it_names)
{
	uint16_t port = tl_free_port();
	const char *wrapper[] = { FORGER, "stray", "0", NULL };
	struct daemon d;
	char *out, *fds;

	daemon_start_ready(&d, conf_for(port, 1), &(struct daemon_opts){ .wrapper = wrapper });
	fds = descriptors(d.pid);
	ck_assert_uint_eq(tl_count_in(fds, "pipe:"), 2);
	free(fds);
	ck_assert_int_eq(ctl(&d, &out, "upgrade", NULL), 0);
	free(out);
	fds = descriptors(d.pid);
	ck_assert_msg(!strstr(fds, "pipe:"), "%s", fds);
	ck_assert(!daemon_log_contains(&d, "not claimed"));
	free(fds);
	daemon_stop(&d);
}
END_TEST

/* A binary that fails its check, one whose shared memory is laid out
 * otherwise, one that knows no handover, one that cannot be executed:
 * refused with the reason, the daemon serves on with the same workers.
 * SIGUSR2 asks the same. */
START_TEST(bad_binaries_leave_it_serving)
{
	uint16_t port = tl_free_port();
	struct daemon d;
	char dir[128], *out;
	pid_t before[4], after[4];
	int rc;

	start_from_copy(&d, dir, sizeof(dir), conf_for(port, 2));
	ck_assert_uint_eq(daemon_workers(&d, before, 4), 2);

	install_script(dir, "#!/bin/sh\necho \"unknown option 'frobnicate' at line 3\" >&2\nexit 78\n");
	rc = ctl(&d, &out, "upgrade", NULL);
	ck_assert_msg(rc == 1 && strstr(out, "exited with status 78: unknown option "
					      "'frobnicate' at line 3"), "%d: %s", rc, out);
	free(out);

	/* One whose workers would lay out their shared memory otherwise. */
	install_script(dir, "#!/bin/sh\necho handover-layout counters=1x64,limits=1\n"
			    "echo \"$4: configuration OK\"\n");
	rc = ctl(&d, &out, "upgrade", NULL);
	ck_assert_msg(rc == 1 && strstr(out, "lays out the workers' shared memory as "
					      "counters=1x64,limits=1") &&
		      strstr(out, "restart instead"), "%d: %s", rc, out);
	free(out);

	/* One that knows nothing of handovers (an older preforkd): -L is a usage error. */
	install_script(dir, "#!/bin/sh\necho \"preforkd: invalid option -- 'L'\" >&2\nexit 2\n");
	rc = ctl(&d, &out, "upgrade", NULL);
	ck_assert_msg(rc == 1 && strstr(out, "does not know -L"), "%d: %s", rc, out);
	free(out);

	install(&d, dir, PREFORKD_ALT, 0644);
	rc = ctl(&d, &out, "upgrade", NULL);
	ck_assert_msg(rc == 1 && strstr(out, "cannot run") && strstr(out, "Permission denied"),
		      "%d: %s", rc, out);
	free(out);

	install(&d, dir, PREFORKD_ALT, 0755);
	ck_assert_int_eq(kill(d.pid, SIGUSR2), 0);
	ck_assert(daemon_wait_notify(&d, "upgraded to preforkd " PACKAGE_VERSION "+alt", 10000));
	ck_assert(daemon_log_contains(&d, "upgrade asked by SIGUSR2"));

	ck_assert(daemon_wait_workers(&d, 2, 10000));
	ck_assert_uint_eq(daemon_workers(&d, after, 4), 2);
	ck_assert(after[0] != before[0] && after[0] != before[1]);
	ck_assert(tl_echo_tcp(port, "still here\n"));
	ck_assert(tl_echo_unix(daemon_path(&d, "echo.sock"), "still here\n"));
	ck_assert_uint_eq(daemon_log_count(&d, "upgrade failed:"), 4);
	daemon_stop(&d);
	tl_rmtree(dir);
}
END_TEST

/* Refused while a reload runs: said, nothing else happens. A request with
 * more words is a usage error. */
START_TEST(upgrade_refused_while_not_settled)
{
	uint16_t port = tl_free_port();
	struct daemon d;
	char dir[128], *out;
	int rc;

	start_from_copy(&d, dir, sizeof(dir), conf_for(port, 1));
	rc = ctl(&d, &out, "upgrade", "now");
	ck_assert_msg(rc == 2, "%d: %s", rc, out);
	free(out);
	/* Stopped, it takes both at once: SIGHUP (1) is read before SIGUSR2 (12). */
	ck_assert_int_eq(kill(d.pid, SIGSTOP), 0);
	ck_assert_int_eq(kill(d.pid, SIGHUP), 0);
	ck_assert_int_eq(kill(d.pid, SIGUSR2), 0);
	ck_assert_int_eq(kill(d.pid, SIGCONT), 0);
	ck_assert(daemon_wait_log(&d, "refused: a reload is in progress", 10000));
	ck_assert(!daemon_log_contains(&d, "executing"));
	daemon_stop(&d);
	tl_rmtree(dir);
}
END_TEST

/* A binary that passes its check and then dies at start: the master is
 * gone (its pid with it, as with any crash); its workers finish and exit,
 * nothing keeps the port, and a fresh start has it at once. */
START_TEST(crashing_binary_loses_the_master_not_the_port)
{
	uint16_t port = tl_free_port();
	struct daemon d, again;
	char dir[128], *out;
	pid_t workers[4];
	size_t n;
	int rc;

	start_from_copy(&d, dir, sizeof(dir), conf_for(port, 2));
	n = daemon_workers(&d, workers, 4);
	ck_assert_uint_eq(n, 2);
	install_script(dir, "#!/bin/sh\n[ \"$1\" = -t ] && exec " PREFORKD_BIN_FOR_TESTS " -L\n"
			    "kill -SEGV $$\n");
	rc = ctl(&d, &out, "upgrade", NULL);
	ck_assert_msg(rc != 0, "%d: %s", rc, out);
	free(out);
	rc = daemon_wait_exit(&d, 10000);
	ck_assert_msg(rc != -1 && WIFSIGNALED(rc) && WTERMSIG(rc) == SIGSEGV, "status %#x", rc);
	for (size_t i = 0; i < n; i++)
		ck_assert_msg(tl_wait_gone(workers[i], 10000), "worker %ld stayed", (long)workers[i]);
	ck_assert_uint_eq(tl_listen_inode(port), 0);
	daemon_start_ready(&again, conf_for(port, 1), NULL);
	ck_assert(tl_echo_tcp(port, "again\n"));
	daemon_stop(&again);
	daemon_stop(&d);
	tl_rmtree(dir);
}
END_TEST

/* Handovers that cannot be taken: refused with the reason, every
 * descriptor the daemon did not claim closed, a fresh start on the config;
 * the listener of a manifest cut short is kept (it was bound without
 * SO_REUSEPORT by the forger: a new bind would be refused). */
static void refused_handover(const char *mode, const char *why, bool listener_kept)
{
	uint16_t port = tl_free_port();
	char port_text[8];
	const char *wrapper[] = { FORGER, mode, port_text, NULL };
	struct daemon d;
	char *fds;

	snprintf(port_text, sizeof(port_text), "%u", port);
	daemon_start_ready(&d, conf_for(port, 1), &(struct daemon_opts){ .wrapper = wrapper });
	ck_assert_msg(daemon_log_contains(&d, why), "%s: no \"%s\" in:\n%s", mode, why,
		      tl_read_file(d.log));
	ck_assert(daemon_log_contains(&d, "handover refused: starting afresh"));
	ck_assert(daemon_log_contains(&d, listener_kept ? "with the 1 listener" : "with the 0 listeners"));
	ck_assert(tl_echo_tcp(port, "fresh\n"));
	ck_assert(tl_echo_unix(daemon_path(&d, "echo.sock"), "fresh\n"));
	fds = descriptors(d.pid);
	ck_assert_msg(!strstr(fds, "pipe:") && !strstr(fds, "forged-handover"), "%s", fds);
	free(fds);
	daemon_stop(&d);
}

START_TEST(truncated_handover_keeps_its_listeners)
{
	refused_handover("truncated", "the manifest was cut short", true);
}
END_TEST

START_TEST(handover_of_another_format_refused)
{
	refused_handover("format", "the manifest is not of format 1", false);
}
END_TEST

START_TEST(missing_handover_refused)
{
	refused_handover("missing", "names no open descriptor", false);
}
END_TEST

#ifdef APPWORKER
/* App workers cross an upgrade: the old ones serve until the new image's
 * have sent READY=1, then the new image stops and reaps them. */
START_TEST(app_workers_cross_an_upgrade)
{
	uint16_t port = tl_free_port();
	struct daemon d;
	char dir[128], conf[1024], *out;
	pid_t before[4], after[4];

	snprintf(conf, sizeof(conf),
		 "service web {\n  listen = { \"127.0.0.1:%u\" }\n  handler = \"app\"\n"
		 "  exec = { \"%s\", \"--ready-delay=200\" }\n  workers = 2\n}\n",
		 port, APPWORKER);
	start_from_copy(&d, dir, sizeof(dir), conf);
	ck_assert_uint_eq(daemon_workers(&d, before, 4), 2);
	install(&d, dir, PREFORKD_ALT, 0755);
	ck_assert_int_eq(ctl(&d, &out, "upgrade", NULL), 0);
	ck_assert_msg(strstr(out, "reload ok"), "%s", out);
	free(out);
	ck_assert(daemon_wait_workers(&d, 2, 10000));
	ck_assert_uint_eq(daemon_workers(&d, after, 4), 2);
	for (int i = 0; i < 2; i++)
		ck_assert(after[i] != before[0] && after[i] != before[1]);
	ck_assert(tl_echo_tcp(port, "app\n"));
	/* The old ones were told to stop by the new image, and reaped by it. */
	ck_assert_msg(daemon_log_count(&d, "generation 1) exited with status 0") == 2, "log:\n%s",
		      tl_read_file(d.log));
	daemon_stop(&d);
	tl_rmtree(dir);
}
END_TEST
#endif

int main(void)
{
	Suite *s = suite_create("upgrade");
	TCase *tc = tcase_create("upgrade");

	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, upgrades_under_load_lose_nothing);
	tcase_add_test(tc, workers_of_the_new_image_hold_only_theirs);
	tcase_add_test(tc, upgrade_hands_on_only_what_it_names);
	tcase_add_test(tc, bad_binaries_leave_it_serving);
	tcase_add_test(tc, upgrade_refused_while_not_settled);
	tcase_add_test(tc, crashing_binary_loses_the_master_not_the_port);
	tcase_add_test(tc, truncated_handover_keeps_its_listeners);
	tcase_add_test(tc, handover_of_another_format_refused);
	tcase_add_test(tc, missing_handover_refused);
#ifdef APPWORKER
	tcase_add_test(tc, app_workers_cross_an_upgrade);
#endif
	suite_add_tcase(s, tc);
	return tl_run_suite(s);
}
