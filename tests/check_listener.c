/* SPDX-License-Identifier: ISC */
/* check_listener.c - listener sockets: options by family, exclusive bind, unix socket files. */
#include "config.h"

#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "common/address.h"
#include "conf/conf.h"
#include "master/listener.h"
#include "testlib.h"

static char dir[64];
#define UNIX_PATH_LEN 108	/* sizeof(sockaddr_un.sun_path) */
static struct service svc = {
	.name = (char *)"test", .backlog = 16, .socket_mode = 0660,
	.socket_uid = (uid_t)-1, .socket_gid = (gid_t)-1,
};

static void setup(void)
{
	tl_mkdtemp(dir, sizeof(dir));
}

static void teardown(void)
{
	tl_rmtree(dir);
}

static struct address parse(const char *spec)
{
	struct address a;
	char err[256];

	ck_assert_msg(address_parse(spec, &a, err, sizeof(err)) == 0, "%s", err);
	return a;
}

/* "unix:DIR/name" parsed, with the socket file's path copied to path. */
static struct address unix_in_dir(const char *name, char path[UNIX_PATH_LEN])
{
	char spec[UNIX_PATH_LEN + 8];

	snprintf(path, UNIX_PATH_LEN, "%s/%s", dir, name);
	snprintf(spec, sizeof(spec), "unix:%s", path);
	return parse(spec);
}

static int get_int_opt(int fd, int level, int name)
{
	int v = -1;
	socklen_t len = sizeof(v);

	ck_assert_int_eq(getsockopt(fd, level, name, &v, &len), 0);
	return v;
}

static void assert_cloexec_nonblock(int fd)
{
	ck_assert(fcntl(fd, F_GETFD) & FD_CLOEXEC);
	ck_assert(fcntl(fd, F_GETFL) & O_NONBLOCK);
}

START_TEST(tcp_options)
{
	char spec[64];
	struct address a;
	struct listener l;

	snprintf(spec, sizeof(spec), "127.0.0.1:%u", tl_free_port());
	a = parse(spec);
	ck_assert_int_eq(listener_open(&l, &a, &svc), 0);
	ck_assert_int_eq(get_int_opt(l.fd, SOL_SOCKET, SO_REUSEADDR), 1);
	ck_assert_int_eq(get_int_opt(l.fd, SOL_SOCKET, SO_REUSEPORT), 1);
	ck_assert_int_eq(get_int_opt(l.fd, SOL_SOCKET, SO_ACCEPTCONN), 1);
	assert_cloexec_nonblock(l.fd);
	listener_close(&l, true);
	ck_assert_int_eq(l.fd, -1);
}
END_TEST

START_TEST(ipv6_options)
{
	char spec[64];
	struct address a;
	struct listener l;

	if (!tl_ipv6_loopback())
		return;	/* no IPv6 on this host: nothing to check */
	snprintf(spec, sizeof(spec), "[::1]:%u", tl_free_port());
	a = parse(spec);
	ck_assert_int_eq(listener_open(&l, &a, &svc), 0);
	ck_assert_int_eq(get_int_opt(l.fd, IPPROTO_IPV6, IPV6_V6ONLY), 1);
	ck_assert_int_eq(get_int_opt(l.fd, SOL_SOCKET, SO_REUSEPORT), 1);
	assert_cloexec_nonblock(l.fd);
	listener_close(&l, true);

	/* "*:PORT" is one dual-stack socket: IPv4 clients reach it too. */
	uint16_t port = tl_free_port();
	int c;

	snprintf(spec, sizeof(spec), "*:%u", port);
	a = parse(spec);
	ck_assert_int_eq(listener_open(&l, &a, &svc), 0);
	ck_assert_int_eq(get_int_opt(l.fd, IPPROTO_IPV6, IPV6_V6ONLY), 0);
	c = tl_connect_tcp("127.0.0.1", port);
	ck_assert_int_ge(c, 0);
	close(c);
	listener_close(&l, true);
}
END_TEST

/* Linux refuses SO_REUSEPORT on AF_UNIX; setting it would fail the start. */
START_TEST(unix_options)
{
	char path[UNIX_PATH_LEN];
	struct address a = unix_in_dir("s.sock", path);
	struct listener l;
	struct stat st;

	ck_assert_int_eq(listener_open(&l, &a, &svc), 0);
	ck_assert_int_eq(get_int_opt(l.fd, SOL_SOCKET, SO_REUSEPORT), 0);
	ck_assert_int_eq(get_int_opt(l.fd, SOL_SOCKET, SO_ACCEPTCONN), 1);
	assert_cloexec_nonblock(l.fd);
	ck_assert_int_eq(lstat(path, &st), 0);
	ck_assert(S_ISSOCK(st.st_mode));
	ck_assert_int_eq(st.st_mode & 07777, 0660);
	listener_close(&l, true);
	ck_assert_int_eq(lstat(path, &st), -1);	/* removed on close */
}
END_TEST

START_TEST(unix_owner_and_group)
{
	struct passwd *pw = getpwnam("nobody");
	struct service owned = svc;
	char path[UNIX_PATH_LEN];
	struct address a = unix_in_dir("o.sock", path);
	struct listener l;
	struct stat st;

	if (geteuid() != 0 || !pw) {
		fprintf(stderr, "unix_owner_and_group: needs root and user nobody; not run\n");
		return;
	}
	owned.socket_uid = pw->pw_uid;
	owned.socket_gid = pw->pw_gid;
	owned.socket_mode = 0600;
	ck_assert_int_eq(listener_open(&l, &a, &owned), 0);
	ck_assert_int_eq(lstat(path, &st), 0);
	ck_assert_uint_eq(st.st_uid, pw->pw_uid);
	ck_assert_uint_eq(st.st_gid, pw->pw_gid);
	ck_assert_int_eq(st.st_mode & 07777, 0600);
	listener_close(&l, true);
}
END_TEST

START_TEST(unix_stale_file_is_replaced)
{
	char path[UNIX_PATH_LEN];
	struct address a = unix_in_dir("stale.sock", path);
	struct listener l;
	int fd, c;

	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	ck_assert_int_eq(bind(fd, (struct sockaddr *)&a.sa, a.len), 0);
	close(fd);	/* the file stays, nobody listens: a crashed server's leftover */
	ck_assert_int_eq(listener_open(&l, &a, &svc), 0);
	c = tl_connect_unix(path);
	ck_assert_int_ge(c, 0);
	close(c);
	listener_close(&l, true);
}
END_TEST

START_TEST(unix_live_socket_is_left_alone)
{
	char path[UNIX_PATH_LEN];
	struct address a = unix_in_dir("live.sock", path);
	struct listener l;
	struct stat before, after;
	int fd, c;

	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	ck_assert_int_eq(bind(fd, (struct sockaddr *)&a.sa, a.len), 0);
	ck_assert_int_eq(listen(fd, 4), 0);
	ck_assert_int_eq(stat(path, &before), 0);
	ck_assert_int_eq(listener_open(&l, &a, &svc), -1);
	ck_assert_int_eq(l.fd, -1);
	/* Same file, still reaching the other server. */
	ck_assert_int_eq(stat(path, &after), 0);
	ck_assert_uint_eq(before.st_ino, after.st_ino);
	c = tl_connect_unix(path);
	ck_assert_int_ge(c, 0);
	close(c);
	close(fd);
}
END_TEST

START_TEST(unix_path_not_a_socket)
{
	char path[UNIX_PATH_LEN];
	struct address a = unix_in_dir("regular", path);
	struct listener l;
	struct stat st;

	tl_write_file(path, "precious\n");
	ck_assert_int_eq(listener_open(&l, &a, &svc), -1);
	ck_assert_int_eq(stat(path, &st), 0);
	ck_assert(S_ISREG(st.st_mode));
}
END_TEST

/* A file we did not bind (replaced after us) is not ours to remove. */
START_TEST(unix_close_spares_replaced_file)
{
	char path[UNIX_PATH_LEN];
	struct address a = unix_in_dir("r.sock", path);
	struct listener l;
	struct stat st;

	ck_assert_int_eq(listener_open(&l, &a, &svc), 0);
	ck_assert_int_eq(unlink(path), 0);
	tl_write_file(path, "someone else's\n");
	listener_close(&l, true);
	ck_assert_int_eq(stat(path, &st), 0);
}
END_TEST

START_TEST(abstract_unix)
{
	char spec[96];
	struct address a;
	struct listener l, again;

	snprintf(spec, sizeof(spec), "unix:@preforkd-test-%ld", (long)getpid());
	a = parse(spec);
	ck_assert_int_eq(listener_open(&l, &a, &svc), 0);
	ck_assert_int_eq(get_int_opt(l.fd, SOL_SOCKET, SO_REUSEPORT), 0);
	ck_assert_int_eq(listener_open(&again, &a, &svc), -1);	/* in use */
	listener_close(&l, true);
}
END_TEST

/* SO_REUSEPORT would let a second server share the port and take half the
 * connections; the probe refuses that loudly. */
START_TEST(second_bind_refused)
{
	char spec[64];
	struct address a;
	struct listener l, second;

	snprintf(spec, sizeof(spec), "127.0.0.1:%u", tl_free_port());
	a = parse(spec);
	ck_assert_int_eq(listener_open(&l, &a, &svc), 0);
	ck_assert_int_eq(listener_open(&second, &a, &svc), -1);
	ck_assert_int_eq(second.fd, -1);
	listener_close(&l, true);
	/* And free again once we let go. */
	ck_assert_int_eq(listener_open(&second, &a, &svc), 0);
	listener_close(&second, true);
}
END_TEST

START_TEST(foreign_reuseport_listener_refused)
{
	uint16_t port = tl_free_port();
	int foreign = tl_listen_loopback(port, true);
	char spec[64];
	struct address a;
	struct listener l;

	snprintf(spec, sizeof(spec), "127.0.0.1:%u", port);
	a = parse(spec);
	ck_assert_int_eq(listener_open(&l, &a, &svc), -1);
	/* The wildcard overlaps it as well. */
	snprintf(spec, sizeof(spec), "*:%u", port);
	a = parse(spec);
	ck_assert_int_eq(listener_open(&l, &a, &svc), -1);
	close(foreign);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("listener");
	TCase *tc = tcase_create("listener");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, tcp_options);
	tcase_add_test(tc, ipv6_options);
	tcase_add_test(tc, unix_options);
	tcase_add_test(tc, unix_owner_and_group);
	tcase_add_test(tc, unix_stale_file_is_replaced);
	tcase_add_test(tc, unix_live_socket_is_left_alone);
	tcase_add_test(tc, unix_path_not_a_socket);
	tcase_add_test(tc, unix_close_spares_replaced_file);
	tcase_add_test(tc, abstract_unix);
	tcase_add_test(tc, second_bind_refused);
	tcase_add_test(tc, foreign_reuseport_listener_refused);
	suite_add_tcase(s, tc);
	return tl_run_suite(s);
}
