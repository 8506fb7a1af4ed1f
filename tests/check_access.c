/* SPDX-License-Identifier: ISC */
/* check_access.c - allow/deny ranges, allowed unix users, per-source and per-service limits:
 * the matching rules on their own, the shared counts across real processes, and all of it
 * through the real daemon over IPv4, IPv6 and unix sockets. */
#include "config.h"

#include <arpa/inet.h>
#include <check.h>
#include <sys/stat.h>
#include <sys/mman.h>
#include <fcntl.h>
#include <errno.h>
#include <grp.h>
#include <netinet/in.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "worker/access.h"
#include "conf/conf.h"
#include "worker/limits.h"
#include "testlib.h"

#define FLOOD 200

/* ---- matching rules ---- */

static struct peer ip_peer(const char *text)
{
	struct sockaddr_storage ss = { 0 };
	socklen_t len;
	struct peer p;

	if (strchr(text, ':')) {
		struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&ss;

		sin6->sin6_family = AF_INET6;
		ck_assert_int_eq(inet_pton(AF_INET6, text, &sin6->sin6_addr), 1);
		len = sizeof(*sin6);
	} else {
		struct sockaddr_in *sin = (struct sockaddr_in *)&ss;

		sin->sin_family = AF_INET;
		ck_assert_int_eq(inet_pton(AF_INET, text, &sin->sin_addr), 1);
		len = sizeof(*sin);
	}
	access_identify_peer(-1, (struct sockaddr *)&ss, len, &p);
	return p;
}

/* Ranges from space-separated text into a service. */
static void set_ranges(struct cidr **list, size_t *n, const char *text)
{
	char buf[256], *tok, *save, err[128];

	*n = 0;
	*list = calloc(16, sizeof(**list));
	snprintf(buf, sizeof(buf), "%s", text);
	for (tok = strtok_r(buf, " ", &save); tok; tok = strtok_r(NULL, " ", &save)) {
		ck_assert_msg(access_parse_cidr(tok, &(*list)[*n], err, sizeof(err)) == 0, "%s", err);
		(*n)++;
	}
}

static bool allows(const char *allow, const char *deny, const char *client)
{
	struct service svc = { 0 };
	struct peer p = ip_peer(client);
	bool ok;

	set_ranges(&svc.allow, &svc.nallow, allow);
	set_ranges(&svc.deny, &svc.ndeny, deny);
	ok = access_allows(&svc, &p, -1);
	free(svc.allow);
	free(svc.deny);
	return ok;
}

START_TEST(longest_prefix_decides)
{
	/* No lists: everyone. An allow list: only those in it. */
	ck_assert(allows("", "", "192.0.2.1"));
	ck_assert(allows("192.0.2.0/24", "", "192.0.2.200"));
	ck_assert(!allows("192.0.2.0/24", "", "192.0.3.1"));
	/* A deny list alone: everyone else. */
	ck_assert(!allows("", "192.0.2.0/24", "192.0.2.1"));
	ck_assert(allows("", "192.0.2.0/24", "198.51.100.1"));
	/* Deny everything, allow one network; and an exception inside it. */
	ck_assert(allows("10.0.0.0/8", "0.0.0.0/0", "10.9.9.9"));
	ck_assert(!allows("10.0.0.0/8", "0.0.0.0/0", "11.0.0.1"));
	ck_assert(!allows("10.0.0.0/8", "0.0.0.0/0 10.66.0.0/16", "10.66.1.1"));
	ck_assert(allows("10.0.0.0/8 10.66.6.6", "0.0.0.0/0 10.66.0.0/16", "10.66.6.6"));
	/* The same range in both: deny. */
	ck_assert(!allows("10.0.0.0/8", "10.0.0.0/8", "10.1.1.1"));
	/* IPv6, and the families kept apart. */
	ck_assert(allows("2001:db8::/32", "", "2001:db8:1::5"));
	ck_assert(!allows("2001:db8::/32", "", "2001:db9::1"));
	ck_assert(allows("", "::/0", "127.0.0.1"));
	ck_assert(!allows("", "::/0", "::1"));
	ck_assert(!allows("", "0.0.0.0/0", "127.0.0.1"));
	/* An IPv4 client of a dual-stack socket is matched as IPv4. */
	ck_assert(allows("127.0.0.0/8", "", "::ffff:127.0.0.9"));
	ck_assert(!allows("", "127.0.0.9", "::ffff:127.0.0.9"));
	/* Prefixes that do not end on a byte. */
	ck_assert(allows("192.0.2.64/26", "", "192.0.2.127"));
	ck_assert(!allows("192.0.2.64/26", "", "192.0.2.128"));
	ck_assert(allows("2001:db8:8000::/33", "", "2001:db8:ffff::1"));
	ck_assert(!allows("2001:db8:8000::/33", "", "2001:db8:7fff::1"));
}
END_TEST

/* ---- shared counts across processes ---- */

static struct source_key key_of(const char *ip)
{
	struct peer p = ip_peer(ip);
	struct source_key k;

	limits_key_of(&p, &k);
	return k;
}

/* Runs in a forked child as the worker of row: takes n places for ip, then
 * says so on the pipe and waits to be killed. */
static pid_t hold_in_child(struct limits *l, unsigned row, const char *ip, unsigned n)
{
	int pfd[2];
	char c;
	pid_t pid;

	ck_assert_int_eq(pipe(pfd), 0);
	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		struct source_key k = key_of(ip);

		limits_row_claim(l, row);
		for (unsigned i = 0; i < n; i++)
			if (limits_take(l, row, &k) != LIMITS_OK)
				_exit(1);
		(void)!write(pfd[1], "x", 1);
		pause();
		_exit(0);
	}
	close(pfd[1]);
	ck_assert_int_eq(read(pfd[0], &c, 1), 1);
	close(pfd[0]);
	return pid;
}

START_TEST(counts_are_shared_and_die_with_their_worker)
{
	struct limits *l = limits_new(3, 2, 5, 16);
	struct source_key a = key_of("192.0.2.1"), b = key_of("2001:db8::1");
	pid_t other;

	ck_assert_ptr_nonnull(l);
	limits_row_claim(l, 0);
	other = hold_in_child(l, 1, "192.0.2.1", 2);
	/* The other process holds both places of a; b is a different source. */
	ck_assert_int_eq(limits_take(l, 0, &a), LIMITS_SOURCE);
	ck_assert_int_eq(limits_take(l, 0, &b), LIMITS_OK);
	ck_assert_int_eq(limits_take(l, 0, &b), LIMITS_OK);
	ck_assert_int_eq(limits_take(l, 0, &b), LIMITS_SOURCE);
	/* 2 + 2 of 5: one more from anyone, then the service is full. */
	ck_assert_int_eq(limits_take(l, 0, &(struct source_key){ .kind = 1, .id = { 9 } }),
			 LIMITS_OK);
	ck_assert_int_eq(limits_take(l, 0, &(struct source_key){ .kind = 1, .id = { 8 } }),
			 LIMITS_TOTAL);
	/* The other worker dies (SIGKILL: it releases nothing itself). */
	kill(other, SIGKILL);
	ck_assert_int_eq(waitpid(other, NULL, 0), other);
	limits_row_dead(l, 1);
	ck_assert_int_eq(limits_take(l, 0, &a), LIMITS_OK);
	/* A released place can be taken again. */
	limits_release(l, 0, &b);
	ck_assert_int_eq(limits_take(l, 0, &b), LIMITS_OK);
	ck_assert_int_eq(limits_take(l, 0, &b), LIMITS_SOURCE);
	limits_free(l);
}
END_TEST

/* The region is a sealed memfd: a second mapping of its descriptor (what a
 * re-exec'd master would make) sees the same counts, the same lock. */
START_TEST(region_is_a_sealed_memfd)
{
	struct limits *l = limits_new(2, 1, 0, 16), *again;
	struct source_key a = key_of("192.0.2.7");
	struct stat st;
	int fd;

	ck_assert_ptr_nonnull(l);
	fd = limits_fd(l);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(fcntl(fd, F_GET_SEALS) & (F_SEAL_SHRINK | F_SEAL_GROW),
			 F_SEAL_SHRINK | F_SEAL_GROW);
	ck_assert_int_eq(fcntl(fd, F_GETFD) & FD_CLOEXEC, FD_CLOEXEC);
	ck_assert_int_eq(fstat(fd, &st), 0);
	ck_assert_int_lt(ftruncate(fd, st.st_size * 2), 0);	/* sealed */
	limits_row_claim(l, 0);
	ck_assert_int_eq(limits_take(l, 0, &a), LIMITS_OK);
	again = mmap(NULL, (size_t)st.st_size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	ck_assert_ptr_ne(again, MAP_FAILED);
	limits_row_claim(again, 1);
	ck_assert_int_eq(limits_take(again, 1, &a), LIMITS_SOURCE);	/* max-per-source 1 */
	limits_release(again, 0, &a);
	ck_assert_int_eq(limits_take(l, 1, &a), LIMITS_OK);
	munmap(again, (size_t)st.st_size);
	limits_free(l);
	ck_assert_int_eq(fcntl(fd, F_GETFD), -1);	/* closed with it */
}
END_TEST

/* Random takes and releases against a plain model, with more sources than
 * one probe run holds, so that removal has to move entries back. */
START_TEST(counts_match_a_model)
{
	enum { SOURCES = 40, MAX_CONN = 32, PER_SOURCE = 3, STEPS = 20000 };
	struct limits *l = limits_new(1, PER_SOURCE, 0, MAX_CONN);
	unsigned model[SOURCES] = { 0 }, held = 0;
	unsigned seed = 12345;

	ck_assert_ptr_nonnull(l);
	limits_row_claim(l, 0);
	for (int step = 0; step < STEPS; step++) {
		unsigned s = (unsigned)rand_r(&seed) % SOURCES;
		struct source_key k = { .kind = 1, .id = { (uint8_t)s, (uint8_t)(s * 7) } };

		if ((rand_r(&seed) & 1) && model[s] > 0) {
			limits_release(l, 0, &k);
			model[s]--;
			held--;
		} else if (held < MAX_CONN) {
			enum limits_verdict v = limits_take(l, 0, &k);

			ck_assert_int_eq(v, model[s] < PER_SOURCE ? LIMITS_OK : LIMITS_SOURCE);
			if (v == LIMITS_OK) {
				model[s]++;
				held++;
			}
		}
	}
	limits_free(l);
}
END_TEST

/* ---- through the daemon ---- */

/* Connects from src; sends msg, half-closes, and returns what comes back until
 * EOF ("" for a client closed at once, "RESET" for a reset). */
static char *exchange(const char *src, const char *ip, uint16_t port, const char *msg)
{
	static char out[256];
	int fd = tl_connect_tcp_from(src, ip, port);
	bool reset;
	char *got;

	ck_assert_msg(fd >= 0, "connect %s from %s: %m", ip, src);
	(void)!send(fd, msg, strlen(msg), MSG_NOSIGNAL);
	shutdown(fd, SHUT_WR);
	got = tl_read_to_eof(fd, 5000, &reset);
	ck_assert_msg(got != NULL, "no EOF from %s:%u", ip, port);
	snprintf(out, sizeof(out), "%s", reset ? "RESET" : got);
	free(got);
	close(fd);
	return out;
}

/* Turned away: the connection closes without the echo. A reset is a fine
 * answer to a client that was denied, not to one told it is busy. */
static bool denied(const char *src, const char *ip, uint16_t port)
{
	const char *got = exchange(src, ip, port, "ping");

	return strcmp(got, "") == 0 || strcmp(got, "RESET") == 0;
}

static bool served(const char *src, const char *ip, uint16_t port)
{
	return strcmp(exchange(src, ip, port, "ping"), "ping") == 0;
}

/* A place comes free once the worker has seen the client's close. */
static bool served_soon(const char *src, const char *ip, uint16_t port)
{
	for (uint64_t end = tl_now_ms() + 5000; tl_now_ms() < end; )
		if (served(src, ip, port))
			return true;
	return false;
}

/* An open connection from src that has been served once (so it is counted). */
static int hold(const char *src, const char *ip, uint16_t port)
{
	int fd = tl_connect_tcp_from(src, ip, port);

	ck_assert_int_ge(fd, 0);
	ck_assert(tl_echo(fd, "held", 4, 5000));
	return fd;
}

START_TEST(ranges_over_ipv4)
{
	uint16_t port = tl_free_port();
	char listen[64];
	struct daemon d;

	snprintf(listen, sizeof(listen), "\"127.0.0.1:%u\"", port);
	daemon_start_ready(&d, tl_service_conf(listen, 1, "  allow = { \"127.0.0.0/8\" }\n"
					   "  deny = { \"127.0.0.0/24\" }\n"
					   "  allow += { \"127.0.0.3\" }\n"), NULL);
	ck_assert(served("127.0.1.1", "127.0.0.1", port));
	ck_assert(denied("127.0.0.2", "127.0.0.1", port));	/* /24 beats /8 */
	ck_assert(served("127.0.0.3", "127.0.0.1", port));	/* /32 beats /24 */
	ck_assert(daemon_wait_log(&d, "denied 1 connection (last: 127.0.0.2:", 5000));
	ck_assert(served("127.0.1.1", "127.0.0.1", port));	/* still serving */
	daemon_stop(&d);
}
END_TEST

START_TEST(ranges_over_ipv6)
{
	uint16_t port = tl_free_port(), port6 = tl_free_port();
	char listen[96];
	struct daemon d;

	if (!tl_ipv6_loopback())
		return;
	/* A dual-stack socket: IPv4 clients are matched by IPv4 ranges. */
	snprintf(listen, sizeof(listen), "\"*:%u\"", port);
	daemon_start_ready(&d, tl_service_conf(listen, 1, "  allow = { \"127.0.0.0/8\" }\n"), NULL);
	ck_assert(served("127.0.0.5", "127.0.0.1", port));
	ck_assert(denied("::1", "::1", port));
	daemon_stop(&d);

	snprintf(listen, sizeof(listen), "\"*:%u\"", port6);
	daemon_start_ready(&d, tl_service_conf(listen, 1, "  deny = { \"::/0\" }\n"
					   "  allow = { \"::1/128\" }\n"), NULL);
	ck_assert(served("::1", "::1", port6));
	ck_assert(denied("127.0.0.1", "127.0.0.1", port6));	/* not in the allow list */
	daemon_stop(&d);

	daemon_start_ready(&d, tl_service_conf(listen, 1, "  deny = { \"::1\" }\n"), NULL);
	ck_assert(denied("::1", "::1", port6));
	ck_assert(served("127.0.0.1", "127.0.0.1", port6));
	daemon_stop(&d);
}
END_TEST

/* Three workers that take one connection each: the second and third
 * connections from a source necessarily go to other workers than the first,
 * so only a count shared between them can turn the third away. */
START_TEST(per_source_limit_across_workers)
{
	uint16_t port = tl_free_port();
	char listen[64];
	struct daemon d;
	int a, b;

	snprintf(listen, sizeof(listen), "\"127.0.0.1:%u\"", port);
	daemon_start_ready(&d, tl_service_conf(listen, 3, "  max-connections = 1\n  max-per-source = 2\n"
					   "  busy-message = \"busy\\n\"\n"), NULL);
	a = hold("127.0.0.1", "127.0.0.1", port);
	b = hold("127.0.0.1", "127.0.0.1", port);
	/* Busy: the message, then EOF, also when the client has sent bytes first. */
	ck_assert_str_eq(exchange("127.0.0.1", "127.0.0.1", port, "a request"), "busy\n");
	ck_assert(daemon_wait_log(&d, "turned away 1 connection (last: 127.0.0.1:", 5000));
	ck_assert(daemon_log_contains(&d, "max-per-source reached"));
	ck_assert(served("127.0.0.2", "127.0.0.1", port));
	close(a);
	ck_assert(served_soon("127.0.0.1", "127.0.0.1", port));
	close(b);
	daemon_stop(&d);
}
END_TEST

START_TEST(per_source_limit_over_ipv6)
{
	uint16_t port = tl_free_port();
	char listen[64];
	struct daemon d;
	int a;

	if (!tl_ipv6_loopback())
		return;
	snprintf(listen, sizeof(listen), "\"*:%u\"", port);
	daemon_start_ready(&d, tl_service_conf(listen, 2, "  max-per-source = 1\n"
					   "  busy-message = \"busy\\n\"\n"), NULL);
	a = hold("::1", "::1", port);
	ck_assert_str_eq(exchange("::1", "::1", port, "x"), "busy\n");
	ck_assert(served("127.0.0.1", "127.0.0.1", port));
	close(a);
	daemon_stop(&d);
}
END_TEST

START_TEST(service_limit)
{
	uint16_t port = tl_free_port();
	char listen[64];
	struct daemon d;
	int a, b;

	snprintf(listen, sizeof(listen), "\"127.0.0.1:%u\"", port);
	daemon_start_ready(&d, tl_service_conf(listen, 2, "  max-service-connections = 2\n"), NULL);
	a = hold("127.0.0.1", "127.0.0.1", port);
	b = hold("127.0.0.2", "127.0.0.1", port);
	/* No busy-message: a clean close, not a reset, even after a request. */
	ck_assert_str_eq(exchange("127.0.0.3", "127.0.0.1", port, "a request"), "");
	ck_assert(daemon_wait_log(&d, "max-service-connections reached", 5000));
	close(b);
	ck_assert(served_soon("127.0.0.3", "127.0.0.1", port));
	close(a);
	daemon_stop(&d);
}
END_TEST

/* A worker killed with SIGKILL releases nothing itself; its place must not
 * stay taken. */
START_TEST(dead_worker_releases_its_count)
{
	uint16_t port = tl_free_port();
	char listen[64];
	struct daemon d;
	pid_t worker[2];
	int a;

	snprintf(listen, sizeof(listen), "\"127.0.0.1:%u\"", port);
	daemon_start_ready(&d, tl_service_conf(listen, 1, "  max-per-source = 1\n"), NULL);
	a = hold("127.0.0.1", "127.0.0.1", port);
	ck_assert_uint_eq(daemon_workers(&d, worker, 2), 1);
	kill(worker[0], SIGKILL);
	ck_assert(daemon_wait_log(&d, "respawning worker a#0", 5000));
	ck_assert(daemon_wait_workers(&d, 1, 5000));
	ck_assert(served("127.0.0.1", "127.0.0.1", port));
	close(a);
	daemon_stop(&d);
}
END_TEST

/* In a child with the given ids: 1 if a unix connection to path is echoed,
 * 0 if it is closed unanswered. */
static int unix_served_as(const char *path, uid_t uid, gid_t gid, gid_t extra_group, int hold_fd)
{
	pid_t pid = fork();
	int status;

	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		gid_t groups[1] = { extra_group };
		int fd;
		char *got;

		if (hold_fd >= 0)
			close(hold_fd);
		if (setgroups(extra_group != (gid_t)-1 ? 1 : 0, groups) < 0 ||
		    setresgid(gid, gid, gid) < 0 || setresuid(uid, uid, uid) < 0)
			_exit(3);
		fd = tl_connect_unix(path);
		if (fd < 0)
			_exit(4);
		(void)!send(fd, "ping", 4, MSG_NOSIGNAL);
		shutdown(fd, SHUT_WR);
		got = tl_read_to_eof(fd, 5000, NULL);
		_exit(got && strcmp(got, "ping") == 0 ? 1 : 0);
	}
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) <= 1, "child status %d", status);
	return WEXITSTATUS(status);
}

START_TEST(unix_users_and_groups)
{
	struct passwd *nobody = getpwnam("nobody");
	struct group *daemon_group = getgrnam("daemon");
	char listen[160], path[128], extra[256];
	struct daemon d;
	int held;

	ck_assert_ptr_nonnull(nobody);
	ck_assert_ptr_nonnull(daemon_group);
	if (geteuid() != 0)
		return;	/* changing ids needs root */
	snprintf(path, sizeof(path), "@preforkd-access-%ld", (long)getpid());
	snprintf(listen, sizeof(listen), "\"unix:%s\"", path);

	daemon_start_ready(&d, tl_service_conf(listen, 1, "  allow-users = { \"nobody\" }\n"), NULL);
	ck_assert_int_eq(unix_served_as(path, 0, 0, (gid_t)-1, -1), 0);
	ck_assert_int_eq(unix_served_as(path, nobody->pw_uid, nobody->pw_gid, (gid_t)-1, -1), 1);
	ck_assert(daemon_wait_log(&d, "user not allowed", 5000));
	daemon_stop(&d);

	/* A group matches as the primary group or as a supplementary one. */
	daemon_start_ready(&d, tl_service_conf(listen, 1, "  allow-groups = { \"daemon\" }\n"), NULL);
	ck_assert_int_eq(unix_served_as(path, nobody->pw_uid, nobody->pw_gid, (gid_t)-1, -1), 0);
	ck_assert_int_eq(unix_served_as(path, nobody->pw_uid, daemon_group->gr_gid, (gid_t)-1, -1),
			 1);
	ck_assert_int_eq(unix_served_as(path, nobody->pw_uid, nobody->pw_gid,
					daemon_group->gr_gid, -1), 1);
	daemon_stop(&d);

	/* Per source, a unix client's source is its user. */
	snprintf(extra, sizeof(extra), "  max-per-source = 1\n  busy-message = \"busy\\n\"\n");
	daemon_start_ready(&d, tl_service_conf(listen, 1, extra), NULL);
	held = tl_connect_unix(path);
	ck_assert_int_ge(held, 0);
	ck_assert(tl_echo(held, "held", 4, 5000));
	ck_assert_int_eq(unix_served_as(path, 0, 0, (gid_t)-1, held), 0);
	ck_assert_int_eq(unix_served_as(path, nobody->pw_uid, nobody->pw_gid, (gid_t)-1, held), 1);
	close(held);
	daemon_stop(&d);
}
END_TEST

/* A flood of denied clients is one line at once and a sum later, not a
 * line each; the sum adds up to every one of them. */
START_TEST(denials_are_counted_not_flooded)
{
	uint16_t port = tl_free_port();
	char listen[64], line[128];
	struct daemon d;

	snprintf(listen, sizeof(listen), "\"127.0.0.1:%u\"", port);
	daemon_start_ready(&d, tl_service_conf(listen, 1, "  deny = { \"127.0.0.2\" }\n"), NULL);
	for (int i = 0; i < FLOOD; i++)
		ck_assert(denied("127.0.0.2", "127.0.0.1", port));
	ck_assert(served("127.0.0.1", "127.0.0.1", port));
	kill(d.pid, SIGTERM);
	ck_assert_int_eq(tl_exit_code(daemon_wait_exit(&d, 5000)), 0);
	snprintf(line, sizeof(line), "denied %d connections (last: 127.0.0.2:", FLOOD - 1);
	ck_assert_msg(daemon_log_count(&d, "denied 1 connection (") == 1 &&
		      daemon_log_contains(&d, line), "log:\n%s", tl_read_file(d.log));
	snprintf(line, sizeof(line), "address not allowed), %d in all", FLOOD);
	ck_assert(daemon_log_contains(&d, line));
	ck_assert_uint_eq(daemon_log_count(&d, "denied "), 2);
	daemon_stop(&d);
}
END_TEST

static bool some_line_starts_with(const char *text, const char *start)
{
	for (const char *line = text; *line;) {
		const char *end = strchr(line, '\n');

		if (strncmp(line, start, strlen(start)) == 0)
			return true;
		if (!end)
			break;
		line = end + 1;
	}
	return false;
}

/* A unix client chooses its bound name, newlines and all: even a denied one
 * must not be able to write a line of its own into the log. */
START_TEST(client_names_cannot_forge_log_lines)
{
	static const char forged[] = "\n2026-01-01 00:00:00.000 preforkd[1]: error: forged\n<0>forged";
	char listen[160], path[128], name[128];
	struct daemon d;
	char *log, *got;
	int fd;

	snprintf(path, sizeof(path), "@preforkd-access-%ld", (long)getpid());
	snprintf(listen, sizeof(listen), "\"unix:%s\"", path);
	snprintf(name, sizeof(name), "@%s", forged);
	/* Denied: we are not nobody (as root or as anyone else). */
	daemon_start_ready(&d, tl_service_conf(listen, 1, "  allow-users = { \"nobody\" }\n"), NULL);
	fd = tl_connect_unix_from(name, path);
	ck_assert_msg(fd >= 0, "connect from %s: %s", name, strerror(errno));
	got = tl_read_to_eof(fd, 5000, NULL);
	ck_assert_str_eq(got, "");
	free(got);
	close(fd);
	ck_assert(daemon_wait_log(&d, "user not allowed", 5000));
	log = tl_read_file(d.log);
	ck_assert_msg(!some_line_starts_with(log, "2026-01-01") && !some_line_starts_with(log, "<0>"),
		      "log:\n%s", log);
	ck_assert_msg(strstr(log, "(last: unix:@\\x0a2026-01-01 00:00:00.000 preforkd[1]: error: "
				  "forged\\x0a<0>forged, user not allowed)") != NULL, "log:\n%s", log);
	free(log);
	daemon_stop(&d);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("access");
	TCase *rules = tcase_create("rules");
	TCase *tc = tcase_create("daemon");

	tcase_add_test(rules, longest_prefix_decides);
	tcase_add_test(rules, counts_are_shared_and_die_with_their_worker);
	tcase_add_test(rules, region_is_a_sealed_memfd);
	tcase_add_test(rules, counts_match_a_model);
	suite_add_tcase(s, rules);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, ranges_over_ipv4);
	tcase_add_test(tc, ranges_over_ipv6);
	tcase_add_test(tc, per_source_limit_across_workers);
	tcase_add_test(tc, per_source_limit_over_ipv6);
	tcase_add_test(tc, service_limit);
	tcase_add_test(tc, dead_worker_releases_its_count);
	tcase_add_test(tc, unix_users_and_groups);
	tcase_add_test(tc, denials_are_counted_not_flooded);
	tcase_add_test(tc, client_names_cannot_forge_log_lines);
	suite_add_tcase(s, tc);
	return tl_run_suite(s);
}
