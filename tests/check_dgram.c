/* SPDX-License-Identifier: ISC */
/* check_dgram.c - datagram services through the real daemon: UDP over IPv4 and IPv6 and
 * unix datagram sockets, sizes up to 64 KiB, truncation, the exclusive bind, access
 * control, a stopped worker, and a client that never reads during a storm of reloads. */
#include "config.h"

#include <arpa/inet.h>
#include <check.h>
#include <errno.h>
#include <grp.h>
#include <netinet/in.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/array.h"

#include "testlib.h"

#define FLOOD_DATAGRAMS 3000
#define FLOOD_SECONDS 20	/* bound on the flood loop */
#define RELOADS 25

struct target {
	struct sockaddr_storage ss;
	socklen_t len;
};

static struct target ip_target(const char *ip, uint16_t port)
{
	struct target t;

	t.len = tl_ip_sockaddr(ip, port, &t.ss);
	return t;
}

/* A unix path, or "@name" in the abstract namespace. */
static struct target unix_target(const char *path)
{
	struct target t = { 0 };
	struct sockaddr_un *sun = (struct sockaddr_un *)&t.ss;

	sun->sun_family = AF_UNIX;
	ck_assert_uint_lt(strlen(path), sizeof(sun->sun_path));
	memcpy(sun->sun_path, path, strlen(path));
	t.len = sizeof(*sun);
	if (path[0] == '@') {
		sun->sun_path[0] = '\0';
		t.len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + strlen(path));
	}
	return t;
}

/* A datagram client of family, bound to src (an IP, a unix path, or NULL:
 * any address; an unbound unix client cannot be answered). */
static int client(int family, const char *src)
{
	int fd = socket(family, SOCK_DGRAM | SOCK_CLOEXEC, 0);

	ck_assert_int_ge(fd, 0);
	if (family == AF_UNIX && src) {
		struct target t = unix_target(src);

		unlink(src);
		ck_assert_int_eq(bind(fd, (struct sockaddr *)&t.ss, t.len), 0);
	} else if (src) {
		struct target t = ip_target(src, 0);

		ck_assert_int_eq(bind(fd, (struct sockaddr *)&t.ss, t.len), 0);
	}
	return fd;
}

/* The reply to one datagram of len bytes, within timeout_ms: its length, -1 if none came. */
/* Sends len bytes of out to to; the reply's length in in (at most cap
 * bytes), or -1 if none came within timeout_ms. */
static ssize_t send_and_receive(int fd, const struct target *to, const void *out, size_t len,
				char *in, size_t cap, int timeout_ms)
{
	ck_assert_int_eq(sendto(fd, out, len, 0, (const struct sockaddr *)&to->ss, to->len),
			 (ssize_t)len);
	if (poll(&(struct pollfd){ .fd = fd, .events = POLLIN }, 1, timeout_ms) != 1)
		return -1;
	return recv(fd, in, cap, 0);
}

static ssize_t roundtrip_within(int fd, const struct target *to, size_t len, int timeout_ms)
{
	static char out[70000], in[70000];
	ssize_t n;

	for (size_t i = 0; i < len; i++)
		out[i] = (char)('a' + i % 26);
	n = send_and_receive(fd, to, out, len, in, sizeof(in), timeout_ms);
	ck_assert_msg(n < 0 || memcmp(in, out, (size_t)n) == 0, "reply differs");
	return n;
}

static ssize_t roundtrip(int fd, const struct target *to, size_t len)
{
	return roundtrip_within(fd, to, len, 5000);
}

static bool no_reply(int fd, const struct target *to)
{
	char in[16];

	return send_and_receive(fd, to, "x", 1, in, sizeof(in), 300) < 0;
}

START_TEST(echo_all_sizes)
{
	static const size_t sizes[] = { 1, 100, 1472, 9000, 32768, 65507 };
	uint16_t port = tl_free_port();
	char listen[256], path[192], cpath[192];
	struct target v4 = ip_target("127.0.0.1", port), v6 = ip_target("::1", port), ux;
	bool have_v6 = tl_ipv6_loopback();
	struct daemon d;
	int c4, c6 = -1, cu;

	snprintf(listen, sizeof(listen), "\"udp:*:%u\", \"unixgram:@DIR@/d.sock\"", port);
	daemon_start_ready(&d, tl_service_conf(listen, 1, ""), NULL);	/* one worker: one total line */
	snprintf(path, sizeof(path), "%s/d.sock", d.dir);
	snprintf(cpath, sizeof(cpath), "%s/client.sock", d.dir);
	ux = unix_target(path);
	c4 = client(AF_INET, "127.0.0.1");
	if (have_v6)
		c6 = client(AF_INET6, "::1");
	cu = client(AF_UNIX, cpath);
	for (size_t i = 0; i < ARRAY_SIZE(sizes); i++) {
		ck_assert_int_eq(roundtrip(c4, &v4, sizes[i]), (ssize_t)sizes[i]);
		if (have_v6)
			ck_assert_int_eq(roundtrip(c6, &v6, sizes[i]), (ssize_t)sizes[i]);
		ck_assert_int_eq(roundtrip(cu, &ux, sizes[i]), (ssize_t)sizes[i]);
	}
	ck_assert_int_eq(roundtrip(cu, &ux, 65536), 65536);	/* the largest read whole */
	/* One byte more is cut short by the kernel: reported, not answered as if whole. */
	ck_assert_int_eq(roundtrip_within(cu, &ux, 65537, 300), -1);
	ck_assert(daemon_wait_log(&d, "datagram larger than 65536 bytes, truncated", 5000));
	ck_assert_int_eq(roundtrip(cu, &ux, 5), 5);
	/* An unbound unix client cannot be answered: counted as such. */
	close(cu);
	cu = client(AF_UNIX, NULL);
	ck_assert(no_reply(cu, &ux));
	close(cu);
	close(c4);
	if (c6 >= 0)
		close(c6);
	kill(d.pid, SIGTERM);
	ck_assert_int_eq(tl_exit_code(daemon_wait_exit(&d, 5000)), 0);
	ck_assert(daemon_log_contains(&d, "truncated 1, denied 0, undeliverable 1,"));
	daemon_stop(&d);
}
END_TEST

/* A UDP port someone holds (with SO_REUSEPORT, even) is refused, not shared. */
START_TEST(udp_port_taken_is_refused)
{
	uint16_t port = tl_free_port();
	struct target t = ip_target("127.0.0.1", port);
	int foreign = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0), one = 1;
	char listen[64];
	struct daemon d;

	ck_assert_int_eq(setsockopt(foreign, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)), 0);
	ck_assert_int_eq(bind(foreign, (struct sockaddr *)&t.ss, t.len), 0);
	snprintf(listen, sizeof(listen), "\"udp:127.0.0.1:%u\"", port);
	daemon_start(&d, tl_service_conf(listen, 1, ""), NULL);
	ck_assert_int_eq(tl_exit_code(daemon_wait_exit(&d, 10000)), 1);
	ck_assert(daemon_log_contains(&d, "address already in use by another process"));
	daemon_stop(&d);
	close(foreign);

	/* And a second preforkd on a UDP port the first one serves. */
	struct daemon a, b;

	daemon_start_ready(&a, tl_service_conf(listen, 1, ""), NULL);
	daemon_start(&b, tl_service_conf(listen, 1, ""), NULL);
	ck_assert_int_eq(tl_exit_code(daemon_wait_exit(&b, 10000)), 1);
	daemon_stop(&b);
	int c = client(AF_INET, NULL);

	for (int i = 0; i < 10; i++)
		ck_assert_int_eq(roundtrip(c, &t, 10), 10);
	close(c);
	daemon_stop(&a);
}
END_TEST

/* A leftover unix datagram socket file is replaced; a live one is not. */
START_TEST(unixgram_stale_and_live_files)
{
	char dir[128], path[192], listen[256], cpath[192];
	struct target t;
	struct daemon a, b;
	int stale, c;

	tl_mkdtemp(dir, sizeof(dir));
	snprintf(path, sizeof(path), "%s/g.sock", dir);
	snprintf(cpath, sizeof(cpath), "%s/c.sock", dir);
	t = unix_target(path);
	stale = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	ck_assert_int_eq(bind(stale, (struct sockaddr *)&t.ss, t.len), 0);
	close(stale);	/* the file stays, nobody behind it */
	snprintf(listen, sizeof(listen), "\"unixgram:%s\"", path);
	daemon_start_ready(&a, tl_service_conf(listen, 1, ""), NULL);
	ck_assert(daemon_log_contains(&a, "removed stale socket file"));
	c = client(AF_UNIX, cpath);
	ck_assert_int_eq(roundtrip(c, &t, 3), 3);
	daemon_start(&b, tl_service_conf(listen, 1, ""), NULL);
	ck_assert_int_eq(tl_exit_code(daemon_wait_exit(&b, 10000)), 1);
	ck_assert(daemon_log_contains(&b, "another process is listening on this socket"));
	daemon_stop(&b);
	ck_assert_int_eq(roundtrip(c, &t, 3), 3);	/* a's file is still a's */
	daemon_stop(&a);
	ck_assert_int_ne(access(path, F_OK), 0);	/* removed at stop */
	close(c);
	tl_rmtree(dir);
}
END_TEST

START_TEST(access_control)
{
	uint16_t port = tl_free_port();
	struct passwd *nobody = getpwnam("nobody");
	char listen[256];
	struct target t = ip_target("127.0.0.1", port), u;
	struct daemon d;
	int c1 = client(AF_INET, "127.0.0.1"), c2 = client(AF_INET, "127.0.0.2");
	char name[64];

	snprintf(name, sizeof(name), "@preforkd-dgram-%ld", (long)getpid());
	snprintf(listen, sizeof(listen), "\"udp:127.0.0.1:%u\", \"unixgram:%s\"", port, name);
	daemon_start_ready(&d, tl_service_conf(listen, 1, "  deny = { \"127.0.0.2\" }\n"
					  "  allow-users = { \"nobody\" }\n"), NULL);
	ck_assert_int_eq(roundtrip(c1, &t, 4), 4);
	ck_assert(no_reply(c2, &t));
	ck_assert(daemon_wait_log(&d, "127.0.0.2", 5000));
	ck_assert(daemon_log_contains(&d, "address not allowed"));

	/* Unix senders by their credentials (SCM_CREDENTIALS). */
	u = unix_target(name);
	if (geteuid() == 0 && nobody) {
		for (int as_nobody = 0; as_nobody < 2; as_nobody++) {
			pid_t pid = fork();
			int status;

			ck_assert_int_ge(pid, 0);
			if (pid == 0) {
				char cname[64];
				struct sockaddr_un me = { .sun_family = AF_UNIX };
				int fd;

				if (as_nobody && (setgroups(0, NULL) < 0 ||
						  setresgid(nobody->pw_gid, nobody->pw_gid, nobody->pw_gid) < 0 ||
						  setresuid(nobody->pw_uid, nobody->pw_uid, nobody->pw_uid) < 0))
					_exit(3);
				fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
				snprintf(cname, sizeof(cname), "preforkd-dgram-c-%ld", (long)getpid());
				memcpy(me.sun_path + 1, cname, strlen(cname));
				if (bind(fd, (struct sockaddr *)&me,
					 (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + strlen(cname))) < 0)
					_exit(4);
				if (sendto(fd, "who", 3, 0, (struct sockaddr *)&u.ss, u.len) != 3)
					_exit(5);
				_exit(poll(&(struct pollfd){ .fd = fd, .events = POLLIN }, 1, 1000) == 1);
			}
			ck_assert_int_eq(waitpid(pid, &status, 0), pid);
			ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == (as_nobody ? 1 : 0),
				      "as %s: status %d", as_nobody ? "nobody" : "root", status);
		}
	}
	close(c1);
	close(c2);
	kill(d.pid, SIGTERM);
	ck_assert_int_eq(tl_exit_code(daemon_wait_exit(&d, 5000)), 0);
	ck_assert_msg(daemon_log_contains(&d, geteuid() == 0 && nobody ?
					  "received 4, answered 2, truncated 0, denied 2," :
					  "received 2, answered 1, truncated 0, denied 1,"),
		      "%s", tl_read_file(d.log));
	daemon_stop(&d);
}
END_TEST

/* A worker stopped while clients send resumes and answers what queued up. */
START_TEST(stopped_worker_recovers)
{
	uint16_t port = tl_free_port();
	char listen[256], path[192], cpath[192], buf[16];
	struct target t = ip_target("127.0.0.1", port), ux;
	struct daemon d;
	pid_t w[1];
	int c, cu;

	snprintf(listen, sizeof(listen), "\"udp:127.0.0.1:%u\", \"unixgram:@DIR@/d.sock\"", port);
	daemon_start_ready(&d, tl_service_conf(listen, 1, ""), NULL);
	snprintf(path, sizeof(path), "%s/d.sock", d.dir);
	snprintf(cpath, sizeof(cpath), "%s/c.sock", d.dir);
	ux = unix_target(path);
	c = client(AF_INET, NULL);
	cu = client(AF_UNIX, cpath);
	ck_assert_uint_eq(daemon_workers(&d, w, 1), 1);
	kill(w[0], SIGSTOP);
	for (int i = 0; i < 8; i++) {
		ck_assert_int_eq(sendto(c, "s", 1, 0, (struct sockaddr *)&t.ss, t.len), 1);
		ck_assert_int_eq(sendto(cu, "u", 1, 0, (struct sockaddr *)&ux.ss, ux.len), 1);
	}
	ck_assert_int_eq(poll(&(struct pollfd){ .fd = c, .events = POLLIN }, 1, 300), 0);
	kill(w[0], SIGCONT);
	for (int i = 0; i < 8; i++) {
		ck_assert_int_eq(poll(&(struct pollfd){ .fd = c, .events = POLLIN }, 1, 5000), 1);
		ck_assert_int_eq(recv(c, buf, sizeof(buf), 0), 1);
		ck_assert_int_eq(poll(&(struct pollfd){ .fd = cu, .events = POLLIN }, 1, 5000), 1);
		ck_assert_int_eq(recv(cu, buf, sizeof(buf), 0), 1);
	}
	close(c);
	close(cu);
	daemon_stop(&d);
}
END_TEST

/* Sums the "datagrams: received R, answered A, ..." totals every worker logs at exit. */
static void sum_counts(struct daemon *d, unsigned long sum[7])
{
	char *log = tl_read_file(d->log), *p = log;
	unsigned long v[7];

	memset(sum, 0, 7 * sizeof(sum[0]));
	while ((p = strstr(p, "datagrams: received "))) {
		ck_assert_int_eq(sscanf(p, "datagrams: received %lu, answered %lu, truncated %lu, "
				       "denied %lu, undeliverable %lu, dropped %lu, failed %lu",
				       &v[0], &v[1], &v[2], &v[3], &v[4], &v[5], &v[6]), 7);
		for (int i = 0; i < 7; i++)
			sum[i] += v[i];
		p++;
	}
	free(log);
}

/* A unix client that never reads its replies: its queue (net.unix.max_dgram_qlen)
 * fills, replies wait, then are dropped and counted. Meanwhile the master gets a
 * storm of SIGHUPs and SIGUSR1s. Every datagram the client got in is accounted
 * for, the replies that were sent are exactly the ones in its queue, and the
 * TCP service of the same daemon keeps answering. */
START_TEST(flood_with_reload_storm)
{
	uint16_t tcp_port = tl_free_port();
	char conf[1024], path[192], cpath[192], buf[256];
	struct target ux;
	unsigned long sent = 0, queued_replies = 0, sum[7];
	unsigned reloads = 0;
	struct daemon d;
	uint64_t end, next_signal = 0;
	int cu;

	snprintf(conf, sizeof(conf),
		 "service d {\n  listen = { \"unixgram:@DIR@/d.sock\" }\n  handler = \"echo\"\n"
		 "  workers = 2\n}\n"
		 "service t {\n  listen = { \"127.0.0.1:%u\" }\n  handler = \"echo\"\n}\n", tcp_port);
	daemon_start_ready(&d, conf, NULL);
	snprintf(path, sizeof(path), "%s/d.sock", d.dir);
	snprintf(cpath, sizeof(cpath), "%s/c.sock", d.dir);
	ux = unix_target(path);
	cu = client(AF_UNIX, cpath);
	memset(buf, 'f', sizeof(buf));
	end = tl_now_ms() + FLOOD_SECONDS * 1000;
	while ((sent < FLOOD_DATAGRAMS || reloads < RELOADS) && tl_now_ms() < end) {
		ssize_t n = sent < FLOOD_DATAGRAMS ?
			    sendto(cu, buf, sizeof(buf), MSG_DONTWAIT, (struct sockaddr *)&ux.ss, ux.len) :
			    -1;

		if (sent >= FLOOD_DATAGRAMS)
			poll(NULL, 0, 5);	/* the signals go on */
		else if (n == (ssize_t)sizeof(buf))
			sent++;
		else if (n < 0 && errno != EAGAIN && errno != EINTR)
			ck_abort_msg("sendto: %s", strerror(errno));
		else
			poll(&(struct pollfd){ .fd = cu, .events = POLLOUT }, 1, 10);
		if (tl_now_ms() >= next_signal && reloads < RELOADS) {
			kill(d.pid, reloads % 2 ? SIGUSR1 : SIGHUP);
			reloads++;
			next_signal = tl_now_ms() + 20;
			if (reloads % 5 == 0)
				ck_assert(tl_echo_tcp(tcp_port, "still here"));
		}
	}
	ck_assert_uint_eq(sent, FLOOD_DATAGRAMS);
	ck_assert(tl_echo_tcp(tcp_port, "after"));
	kill(d.pid, SIGTERM);
	ck_assert_int_eq(tl_exit_code(daemon_wait_exit(&d, 10000)), 0);
	while (recv(cu, buf, sizeof(buf), MSG_DONTWAIT) > 0)
		queued_replies++;
	close(cu);
	sum_counts(&d, sum);
	ck_assert_msg(sum[0] == sent, "received %lu of %lu sent", sum[0], sent);
	ck_assert_msg(sum[1] + sum[2] + sum[3] + sum[4] + sum[5] + sum[6] == sum[0],
		      "received %lu = answered %lu + truncated %lu + denied %lu + undeliverable "
		      "%lu + dropped %lu + failed %lu?", sum[0], sum[1], sum[2], sum[3], sum[4],
		      sum[5], sum[6]);
	ck_assert_msg(sum[1] == queued_replies, "answered %lu, in the client's queue %lu",
		      sum[1], queued_replies);
	ck_assert_uint_gt(sum[5], 0);	/* the limit was in play */
	fprintf(stderr, "flood: %lu sent, %u signals: answered %lu, dropped %lu, other %lu\n",
		sent, reloads, sum[1], sum[5], sum[2] + sum[3] + sum[4] + sum[6]);
	ck_assert(!daemon_log_contains(&d, "killed by signal"));
	ck_assert(daemon_log_contains(&d, "receiver full for too long"));
	daemon_stop(&d);
}
END_TEST

static char exec_conf_text[1024];

static const char *exec_conf(uint16_t port, const char *exec, const char *extra)
{
	snprintf(exec_conf_text, sizeof(exec_conf_text),
		 "service x {\n  listen = { \"udp:*:%u\", \"unixgram:@DIR@/x.sock\" }\n"
		 "  handler = \"exec\"\n  exec = { %s }\n%s}\n", port, exec, extra);
	return exec_conf_text;
}

/* The reply to one datagram, as a string, within timeout_ms; "" if none came. */
static const char *ask_within(int fd, const struct target *to, const char *msg, int timeout_ms)
{
	static char in[70000];
	ssize_t n = send_and_receive(fd, to, msg, strlen(msg), in, sizeof(in) - 1, timeout_ms);

	in[n > 0 ? n : 0] = '\0';
	return in;
}

static const char *ask(int fd, const struct target *to, const char *msg)
{
	return ask_within(fd, to, msg, 5000);
}

static void assert_port_of(int fd, const char *ip, const char *reply)
{
	struct sockaddr_storage me;
	socklen_t len = sizeof(me);
	char want[96];

	ck_assert_int_eq(getsockname(fd, (struct sockaddr *)&me, &len), 0);
	snprintf(want, sizeof(want), "UDP %s %u\n", ip,
		 ntohs(me.ss_family == AF_INET ? ((struct sockaddr_in *)&me)->sin_port :
						 ((struct sockaddr_in6 *)&me)->sin6_port));
	ck_assert_msg(strncmp(reply, want, strlen(want)) == 0, "reply \"%s\", want \"%s...\"",
		      reply, want);
}

/* One helper per datagram: its stdout goes back to the sender, each sender
 * gets its own answer, with the UCSPI variables of UDP and unix senders. */
START_TEST(exec_answers_each_sender)
{
	uint16_t port = tl_free_port();
	struct target t4 = ip_target("127.0.0.1", port), t6 = ip_target("::1", port), ux;
	char path[192], cpath[192], want[256];
	struct daemon d;
	int a = client(AF_INET, "127.0.0.1"), b = client(AF_INET, "127.0.0.2"), c6, cu;
	const char *r;

	daemon_start_ready(&d, exec_conf(port, "\"/bin/sh\", \"-c\", "
					 "\"echo $PROTO $UDPREMOTEIP $UDPREMOTEPORT; "
					 "echo $UNIXREMOTEPATH $UNIXREMOTEEUID; tr a-z A-Z\"", ""), NULL);
	r = ask(a, &t4, "from a");
	assert_port_of(a, "127.0.0.1", r);
	ck_assert_ptr_nonnull(strstr(r, "\nFROM A"));
	r = ask(b, &t4, "from b");
	assert_port_of(b, "127.0.0.2", r);
	ck_assert_ptr_nonnull(strstr(r, "\nFROM B"));
	if (tl_ipv6_loopback()) {
		c6 = client(AF_INET6, "::1");
		assert_port_of(c6, "::1", ask(c6, &t6, "six"));
		close(c6);
	}
	snprintf(path, sizeof(path), "%s/x.sock", d.dir);
	snprintf(cpath, sizeof(cpath), "%s/c.sock", d.dir);
	ux = unix_target(path);
	cu = client(AF_UNIX, cpath);
	snprintf(want, sizeof(want), "UNIX\n%s %u\nUNIX", cpath, (unsigned)geteuid());
	ck_assert_str_eq(ask(cu, &ux, "unix"), want);
	close(a);
	close(b);
	close(cu);
	daemon_stop(&d);
}
END_TEST

/* A helper sees only stdin, stdout and stderr (and ls its own directory). */
START_TEST(exec_helper_gets_only_stdio)
{
	uint16_t port = tl_free_port();
	struct target t = ip_target("127.0.0.1", port);
	struct daemon d;
	int c = client(AF_INET, NULL);

	daemon_start_ready(&d, exec_conf(port, "\"/bin/ls\", \"/proc/self/fd\"", ""), NULL);
	ck_assert_str_eq(ask(c, &t, "x"), "0\n1\n2\n3\n");
	close(c);
	daemon_stop(&d);
}
END_TEST

/* Many helpers at once, a timeout, a reply too long for a datagram: each
 * datagram ends in one count. */
START_TEST(exec_jobs_concurrent_and_counted)
{
	enum { CLIENTS = 20 };
	uint16_t port = tl_free_port(), port2 = tl_free_port();
	struct target t = ip_target("127.0.0.1", port), t2 = ip_target("127.0.0.1", port2);
	int c[CLIENTS];
	struct daemon d;
	uint64_t t0;
	char buf[64];

	daemon_start_ready(&d, exec_conf(port, "\"/bin/sh\", \"-c\", \"sleep 1; cat\"", ""), NULL);
	t0 = tl_now_ms();
	for (int i = 0; i < CLIENTS; i++) {
		c[i] = client(AF_INET, NULL);
		snprintf(buf, sizeof(buf), "job %d", i);
		ck_assert_int_eq(sendto(c[i], buf, strlen(buf), 0, (struct sockaddr *)&t.ss, t.len),
				 (ssize_t)strlen(buf));
	}
	for (int i = 0; i < CLIENTS; i++) {
		char want[32], got[64];
		ssize_t n;

		ck_assert_int_eq(poll(&(struct pollfd){ .fd = c[i], .events = POLLIN }, 1, 10000), 1);
		n = recv(c[i], got, sizeof(got) - 1, 0);
		ck_assert_int_gt(n, 0);
		got[n] = '\0';
		snprintf(want, sizeof(want), "job %d", i);
		ck_assert_str_eq(got, want);
		close(c[i]);
	}
	/* Twenty 1 s helpers in parallel, not one after the other. */
	ck_assert_uint_lt(tl_now_ms() - t0, 8000);
	daemon_stop(&d);

	daemon_start_ready(&d, exec_conf(port2, "\"/bin/sh\", \"-c\", "
					 "\"read x; case $x in hang) sleep 300;; big) head -c 70000 /dev/zero;; "
					 "*) echo ok;; esac\"", "  exec-timeout = 300ms\n"), NULL);
	c[0] = client(AF_INET, NULL);
	/* The timeout is 300 ms: an answer would have come within 1.5 s. */
	ck_assert_str_eq(ask_within(c[0], &t2, "hang\n", 1500), "");
	ck_assert_str_eq(ask_within(c[0], &t2, "big\n", 1500), "");
	ck_assert_str_eq(ask(c[0], &t2, "x\n"), "ok\n");
	close(c[0]);
	kill(d.pid, SIGTERM);
	ck_assert_int_eq(tl_exit_code(daemon_wait_exit(&d, 5000)), 0);
	ck_assert_msg(daemon_log_contains(&d, "datagrams: received 3, answered 1, truncated 0, "
					  "denied 0, undeliverable 0, dropped 0, failed 2"),
		      "%s", tl_read_file(d.log));
	daemon_stop(&d);
}
END_TEST

/* A reload that drops udp:P frees it at once, though the old worker still
 * finishes a stream connection; a later reload can take it back. */
START_TEST(reload_releases_dropped_address)
{
	uint16_t port = tl_free_port();
	char with[512], without[512];
	struct target t = ip_target("127.0.0.1", port);
	struct daemon d;
	uint64_t deadline;
	int fd, c;

	snprintf(with, sizeof(with),
		 "shutdown-timeout = 20s\nservice a {\n  listen = { \"127.0.0.1:%u\", "
		 "\"udp:127.0.0.1:%u\" }\n  handler = \"echo\"\n  workers = 1\n}\n", port, port);
	snprintf(without, sizeof(without),
		 "shutdown-timeout = 20s\nservice a {\n  listen = { \"127.0.0.1:%u\" }\n"
		 "  handler = \"echo\"\n  workers = 1\n}\n", port);
	daemon_start_ready(&d, with, NULL);
	fd = tl_connect_tcp("127.0.0.1", port);
	ck_assert(tl_echo(fd, "x", 1, 5000));
	daemon_write_conf(&d, without);
	ck_assert_int_eq(daemon_reload(&d, 10000), 1);
	deadline = tl_now_ms() + 2000;
	while (!tl_udp_bindable("127.0.0.1", port) && tl_now_ms() < deadline)
		usleep(5000);
	ck_assert_msg(tl_udp_bindable("127.0.0.1", port), "udp:127.0.0.1:%u still held", port);
	ck_assert(tl_echo(fd, "old worker", 10, 5000));	/* still draining */
	daemon_write_conf(&d, with);
	ck_assert_int_eq(daemon_reload(&d, 10000), 1);
	c = client(AF_INET, NULL);
	ck_assert_int_eq(roundtrip(c, &t, 100), 100);
	close(c);
	close(fd);

	/* Two steps: a reload keeps udp:P (the old worker, still busy, keeps
	 * its copy for its jobs), the next one drops it: the old worker is
	 * told, and lets go of it too. */
	fd = tl_connect_tcp("127.0.0.1", port);
	ck_assert(tl_echo(fd, "x", 1, 5000));
	daemon_write_conf(&d, with);
	ck_assert_int_eq(daemon_reload(&d, 10000), 1);
	daemon_write_conf(&d, without);
	ck_assert_int_eq(daemon_reload(&d, 10000), 1);
	deadline = tl_now_ms() + 2000;
	while (!tl_udp_bindable("127.0.0.1", port) && tl_now_ms() < deadline)
		usleep(5000);
	ck_assert_msg(tl_udp_bindable("127.0.0.1", port), "udp:127.0.0.1:%u still held after "
		      "two reloads", port);
	ck_assert(tl_echo(fd, "oldest worker", 13, 5000));
	close(fd);
	daemon_stop(&d);
}
END_TEST

/* A reload that keeps udp:P: a job still running in the old worker answers
 * from the same socket after the switch. */
START_TEST(reload_keeps_replies_of_jobs_in_flight)
{
	uint16_t port = tl_free_port();
	struct target t = ip_target("127.0.0.1", port);
	pid_t workers[1], helper[1];
	struct daemon d;
	uint64_t deadline;
	char got[64];
	ssize_t n;
	int c = client(AF_INET, NULL);

	daemon_start_ready(&d, exec_conf(port, "\"/bin/sh\", \"-c\", \"sleep 1; cat\"",
					 "  workers = 1\n"), NULL);
	ck_assert_uint_eq(daemon_workers(&d, workers, 1), 1);
	ck_assert_int_eq(sendto(c, "late", 4, 0, (struct sockaddr *)&t.ss, t.len), 4);
	deadline = tl_now_ms() + 5000;
	while (tl_children(workers[0], helper, 1) == 0 && tl_now_ms() < deadline)
		usleep(2000);
	ck_assert_uint_eq(tl_children(workers[0], helper, 1), 1);
	ck_assert_int_eq(daemon_reload(&d, 10000), 1);
	ck_assert_int_eq(poll(&(struct pollfd){ .fd = c, .events = POLLIN }, 1, 5000), 1);
	n = recv(c, got, sizeof(got) - 1, 0);
	ck_assert_int_eq(n, 4);
	got[n] = '\0';
	ck_assert_str_eq(got, "late");
	close(c);
	daemon_stop(&d);
}
END_TEST

/* At max-connections a job per datagram waits its turn in the kernel's
 * queue: all are answered, none is read only to be dropped. */
START_TEST(exec_at_max_connections_queues)
{
	enum { CLIENTS = 20 };
	uint16_t port = tl_free_port();
	struct target t = ip_target("127.0.0.1", port), ux;
	char path[192], cpath[192];
	struct timeval tv = { 10, 0 };
	int c[CLIENTS];
	struct daemon d;

	daemon_start_ready(&d, exec_conf(port, "\"/bin/sh\", \"-c\", \"sleep 0.2; cat\"",
					 "  workers = 1\n  max-connections = 2\n"), NULL);
	for (int round = 0; round < 2; round++) {
		snprintf(path, sizeof(path), "%s/x.sock", d.dir);
		ux = unix_target(path);
		for (int i = 0; i < CLIENTS; i++) {
			char msg[32];

			snprintf(cpath, sizeof(cpath), "%s/c%d.sock", d.dir, i);
			c[i] = round == 0 ? client(AF_INET, NULL) : client(AF_UNIX, cpath);
			/* Blocking: a unix receiver's queue holds max_dgram_qlen (10). */
			setsockopt(c[i], SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
			snprintf(msg, sizeof(msg), "job %d", i);
			ck_assert_int_eq(sendto(c[i], msg, strlen(msg), 0,
						round == 0 ? (struct sockaddr *)&t.ss : (struct sockaddr *)&ux.ss,
						round == 0 ? t.len : ux.len), (ssize_t)strlen(msg));
		}
		for (int i = 0; i < CLIENTS; i++) {
			char want[32], got[64];
			ssize_t n;

			ck_assert_msg(poll(&(struct pollfd){ .fd = c[i], .events = POLLIN }, 1, 15000) == 1,
				      "round %d: no answer to job %d", round, i);
			n = recv(c[i], got, sizeof(got) - 1, 0);
			ck_assert_int_gt(n, 0);
			got[n] = '\0';
			snprintf(want, sizeof(want), "job %d", i);
			ck_assert_str_eq(got, want);
			close(c[i]);
		}
	}
	kill(d.pid, SIGTERM);
	ck_assert_int_eq(tl_exit_code(daemon_wait_exit(&d, 10000)), 0);
	ck_assert_msg(daemon_log_contains(&d, "datagrams: received 40, answered 40, truncated 0, "
					  "denied 0, undeliverable 0, dropped 0, failed 0"),
		      "%s", tl_read_file(d.log));
	daemon_stop(&d);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("dgram");
	TCase *tc = tcase_create("dgram");

	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, echo_all_sizes);
	tcase_add_test(tc, udp_port_taken_is_refused);
	tcase_add_test(tc, unixgram_stale_and_live_files);
	tcase_add_test(tc, access_control);
	tcase_add_test(tc, stopped_worker_recovers);
	tcase_add_test(tc, flood_with_reload_storm);
	tcase_add_test(tc, exec_answers_each_sender);
	tcase_add_test(tc, exec_helper_gets_only_stdio);
	tcase_add_test(tc, exec_jobs_concurrent_and_counted);
	tcase_add_test(tc, reload_releases_dropped_address);
	tcase_add_test(tc, reload_keeps_replies_of_jobs_in_flight);
	tcase_add_test(tc, exec_at_max_connections_queues);
	suite_add_tcase(s, tc);
	return tl_run_suite(s);
}
