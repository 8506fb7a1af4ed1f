/* SPDX-License-Identifier: ISC */
/* listener.c - creates the listening sockets of the master.
 *
 * TCP listeners get SO_REUSEADDR and SO_REUSEPORT on purpose. Every worker
 * of every generation shares one socket per address (its descriptor is
 * inherited, so a reload refuses nothing), which needs neither; SO_REUSEPORT
 * is there so that a second socket of ours for the same address can join
 * it later (a re-exec'd master's, per-worker sockets). It also lets any
 * other server bind the same port silently and take half the connections, so
 * before binding we probe the address with a socket that does not set it: the
 * probe fails if anyone, of any uid, with or without SO_REUSEPORT, holds it.
 * Unix sockets never get SO_REUSEPORT: Linux refuses it for AF_UNIX. */
#include "config.h"

#include "master/listener.h"

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "conf/conf.h"
#include "common/log.h"

static int set_int_opt(int fd, int level, int name, int value)
{
	return setsockopt(fd, level, name, &value, sizeof(value));
}

/* shared: the listener itself (SO_REUSEADDR and SO_REUSEPORT); else the
 * probe of the exclusive-bind guard, which must collide with anyone there.
 * The TCP probe still sets SO_REUSEADDR, or connections of an earlier run
 * in TIME_WAIT would fail it; on UDP, SO_REUSEADDR on both sides is
 * itself a way to share the port, so the UDP probe goes without. */
static int inet_socket(const struct address *addr, bool shared)
{
	int fd = socket(addr->family, addr->socktype | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);

	if (fd < 0) {
		log_errno(LOG_ERR, errno, "socket %s", addr->text);
		return -1;
	}
	if ((shared || addr->socktype == SOCK_STREAM) &&
	    set_int_opt(fd, SOL_SOCKET, SO_REUSEADDR, 1) < 0) {
		log_errno(LOG_ERR, errno, "setsockopt(SO_REUSEADDR) %s", addr->text);
		goto fail;
	}
	if (shared && set_int_opt(fd, SOL_SOCKET, SO_REUSEPORT, 1) < 0) {
		log_errno(LOG_ERR, errno, "setsockopt(SO_REUSEPORT) %s", addr->text);
		goto fail;
	}
	/* Explicit either way: the sysctl default (bindv6only) must not decide
	 * whether "[::]:80" also takes IPv4. Only "*:PORT" is dual-stack. */
	if (addr->family == AF_INET6 &&
	    set_int_opt(fd, IPPROTO_IPV6, IPV6_V6ONLY, addr->wildcard ? 0 : 1) < 0) {
		log_errno(LOG_ERR, errno, "setsockopt(IPV6_V6ONLY) %s", addr->text);
		goto fail;
	}
	return fd;
fail:
	close(fd);
	return -1;
}

/* The exclusive-bind guard: see the top of this file. */
static int inet_probe_free(const struct address *addr)
{
	int fd = inet_socket(addr, false), err;

	if (fd < 0)
		return -1;
	if (bind(fd, (const struct sockaddr *)&addr->sa, addr->len) == 0) {
		close(fd);
		return 0;
	}
	err = errno;
	close(fd);
	if (err == EADDRINUSE)
		log_error("bind %s: address already in use by another process "
			  "(preforkd does not share a port; stop the other server first)", addr->text);
	else
		log_errno(LOG_ERR, err, "bind %s", addr->text);
	return -1;
}

static bool ipv6_available(void)
{
	int fd = socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (fd < 0)
		return errno != EAFNOSUPPORT;
	close(fd);
	return true;
}

static int inet_open(struct listener *l, const struct address *addr)
{
	struct address v4;

	if (addr->wildcard && !ipv6_available()) {
		/* "*:PORT" on a host without IPv6: serve IPv4 only. */
		struct sockaddr_in *sin = (struct sockaddr_in *)&v4.sa;

		v4 = *addr;
		memset(&v4.sa, 0, sizeof(v4.sa));
		sin->sin_family = AF_INET;
		sin->sin_addr.s_addr = htonl(INADDR_ANY);
		sin->sin_port = htons(address_port(addr));
		v4.family = AF_INET;
		v4.len = sizeof(*sin);
		v4.wildcard = false;
		addr = &v4;
		log_notice("%s: IPv6 is not available, listening on IPv4 only", addr->text);
	}
	if (inet_probe_free(addr) < 0)
		return -1;
	l->fd = inet_socket(addr, true);
	if (l->fd < 0)
		return -1;
	if (bind(l->fd, (const struct sockaddr *)&addr->sa, addr->len) < 0) {
		log_errno(LOG_ERR, errno, "bind %s", addr->text);
		return -1;
	}
	return 0;
}

/* Unlinks a leftover socket file only when nobody answers on it. */
static int unix_clear_stale(const struct address *addr)
{
	const char *path = address_unix_path(addr);
	struct stat st;
	int fd, rc, err;

	if (lstat(path, &st) < 0) {
		if (errno == ENOENT)
			return 0;
		log_errno(LOG_ERR, errno, "stat %s", addr->text);
		return -1;
	}
	if (!S_ISSOCK(st.st_mode)) {
		log_error("%s: the path exists and is not a socket; refusing to replace it",
			  addr->text);
		return -1;
	}
	fd = socket(AF_UNIX, addr->socktype | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0) {
		log_errno(LOG_ERR, errno, "socket %s", addr->text);
		return -1;
	}
	/* A datagram socket connects too, and is refused the same way when
	 * nobody has the file bound. */
	rc = connect(fd, (const struct sockaddr *)&addr->sa, addr->len);
	err = errno;
	close(fd);
	if (rc < 0 && err == ECONNREFUSED) {
		if (unlink(path) < 0 && errno != ENOENT) {
			log_errno(LOG_ERR, errno, "unlink stale socket %s", addr->text);
			return -1;
		}
		log_notice("%s: removed stale socket file (nobody was listening)", addr->text);
		return 0;
	}
	/* Connected, EAGAIN (a full backlog) or a socket of another type: alive. */
	if (rc == 0 || err == EAGAIN || err == EPROTOTYPE)
		log_error("%s: another process is listening on this socket; refusing to start "
			  "(the file is left in place)", addr->text);
	else
		log_errno(LOG_ERR, err, "connect %s (to tell a stale socket file from a live "
			  "one); refusing to start, the file is left in place", addr->text);
	return -1;
}

/* Mode and owner of the unix socket file we created: applied after bind, and
 * again at every reload. Without socket-owner or socket-group the file is
 * the master's user's or group's: a reload that drops them takes back the
 * access they gave. */
static int unix_set_file_options(const struct listener *l, const struct service *svc)
{
	const char *path = address_unix_path(&l->addr);
	uid_t uid = svc->socket_uid != (uid_t)-1 ? svc->socket_uid : geteuid();
	gid_t gid = svc->socket_gid != (gid_t)-1 ? svc->socket_gid : getegid();

	if (fchmodat(AT_FDCWD, path, (mode_t)svc->socket_mode, 0) < 0) {
		log_errno(LOG_ERR, errno, "chmod %s", l->addr.text);
		return -1;
	}
	if (fchownat(AT_FDCWD, path, uid, gid, AT_SYMLINK_NOFOLLOW) < 0) {
		log_errno(LOG_ERR, errno, "chown %s", l->addr.text);
		return -1;
	}
	return 0;
}

static int unix_open(struct listener *l, const struct address *addr, const struct service *svc)
{
	const char *path = address_unix_path(addr);
	struct stat st;
	mode_t old_umask;
	int rc;

	if (path && unix_clear_stale(addr) < 0)
		return -1;
	l->fd = socket(AF_UNIX, addr->socktype | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (l->fd < 0) {
		log_errno(LOG_ERR, errno, "socket %s", addr->text);
		return -1;
	}
	/* Born with the final mode: no window in which the umask decides. */
	old_umask = umask(path ? (mode_t)(~svc->socket_mode & 0777) : 0);
	rc = bind(l->fd, (const struct sockaddr *)&addr->sa, addr->len);
	umask(old_umask);
	if (rc < 0) {
		if (errno == EADDRINUSE)
			log_error("bind %s: address already in use by another process", addr->text);
		else
			log_errno(LOG_ERR, errno, "bind %s", addr->text);
		return -1;
	}
	/* Each datagram then carries its sender's pid, uid and gid, for
	 * allow-users and the UCSPI variables. */
	if (addr->socktype == SOCK_DGRAM && set_int_opt(l->fd, SOL_SOCKET, SO_PASSCRED, 1) < 0) {
		log_errno(LOG_ERR, errno, "setsockopt(SO_PASSCRED) %s", addr->text);
		return -1;
	}
	if (!path)
		return 0;
	if (lstat(path, &st) < 0) {
		log_errno(LOG_ERR, errno, "stat %s", addr->text);
		return -1;
	}
	l->owns_file = true;
	l->file_dev = st.st_dev;
	l->file_ino = st.st_ino;
	return unix_set_file_options(l, svc);
}

static void warn_backlog_capped(const struct address *addr, int backlog)
{
	FILE *f = fopen("/proc/sys/net/core/somaxconn", "re");
	int somaxconn;

	if (!f)
		return;
	if (fscanf(f, "%d", &somaxconn) == 1 && backlog > somaxconn)
		log_warn("%s: backlog %d is capped by net.core.somaxconn (%d)",
			 addr->text, backlog, somaxconn);
	fclose(f);
}

int listener_open(struct listener *l, const struct address *addr, const struct service *svc)
{
	int rc;

	*l = (struct listener){ .addr = *addr, .spec = *addr, .fd = -1,
				.backlog = svc->backlog };
	rc = addr->family == AF_UNIX ? unix_open(l, addr, svc) : inet_open(l, addr);
	if (rc == 0 && addr->socktype == SOCK_STREAM && listen(l->fd, svc->backlog) < 0) {
		log_errno(LOG_ERR, errno, "listen %s", addr->text);
		rc = -1;
	}
	if (rc < 0) {
		listener_close(l, true);
		return -1;
	}
	if (addr->socktype == SOCK_STREAM)
		warn_backlog_capped(addr, svc->backlog);
	else
		l->backlog = 0;	/* datagram sockets have no queue of connections */
	log_info("listening on %s (service %s)", addr->text, svc->name);
	return 0;
}

int listener_adopt(struct listener *l, const struct address *spec, int fd,
		   const struct address *actual, const struct service *svc, bool stored)
{
	int listening = 0;
	socklen_t len = sizeof(listening);
	const char *path = address_unix_path(actual);
	struct stat st;

	if (stored) {
		/* Ours from the last run, kept by the fd store: its options are
		 * ours, and so is its file, still there for us. */
		*l = (struct listener){ .addr = *actual, .spec = *spec, .fd = fd, .in_store = true };
		if (path && lstat(path, &st) == 0 && S_ISSOCK(st.st_mode)) {
			l->owns_file = true;
			l->file_dev = st.st_dev;
			l->file_ino = st.st_ino;
		}
		listener_update(l, svc);
		log_info("listening on %s (service %s, kept in the service manager's fd store)",
			 actual->text, svc->name);
		return 0;
	}
	*l = (struct listener){ .addr = *actual, .spec = *spec, .fd = fd,
				.adopted = true };
	if (actual->family == AF_UNIX && actual->socktype == SOCK_DGRAM &&
	    set_int_opt(fd, SOL_SOCKET, SO_PASSCRED, 1) < 0)
		log_errno(LOG_WARNING, errno, "setsockopt(SO_PASSCRED) %s: senders' credentials "
			  "will be unknown", actual->text);
	/* SO_REUSEPORT, backlog, mode and owner are the socket unit's to set;
	 * a socket passed before listen() gets the service's backlog. */
	if (actual->socktype == SOCK_STREAM &&
	    (getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &listening, &len) < 0 || !listening)) {
		if (listen(fd, svc->backlog) < 0) {
			log_errno(LOG_ERR, errno, "listen %s (from socket activation)", actual->text);
			return -1;
		}
		l->backlog = svc->backlog;
	}
	log_info("listening on %s (service %s, from socket activation)", actual->text, svc->name);
	return 0;
}

void listener_update(struct listener *l, const struct service *svc)
{
	if (l->adopted)
		return;
	if (l->addr.socktype == SOCK_STREAM && svc->backlog != l->backlog) {
		/* listen() again on a listening socket only resizes its queue. */
		if (listen(l->fd, svc->backlog) < 0)
			log_errno(LOG_ERR, errno, "listen %s (new backlog %d)", l->addr.text,
				  svc->backlog);
		else
			l->backlog = svc->backlog;
	}
	if (l->owns_file)
		unix_set_file_options(l, svc);
}

void listener_close(struct listener *l, bool remove_file)
{
	const char *path = address_unix_path(&l->addr);
	struct stat st;

	if (l->fd >= 0) {
		close(l->fd);
		l->fd = -1;
	}
	/* Only the file we bound: another instance may have replaced it since. */
	if (remove_file && l->owns_file && path && lstat(path, &st) == 0 &&
	    st.st_dev == l->file_dev && st.st_ino == l->file_ino) {
		if (unlink(path) < 0)
			log_errno(LOG_WARNING, errno, "unlink %s", l->addr.text);
	}
	l->owns_file = false;
}
