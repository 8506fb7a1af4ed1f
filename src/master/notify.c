/* SPDX-License-Identifier: ISC */
/* notify.c - the sd_notify protocol, sent from the master with a non-blocking socket.
 *
 * libsystemd's sd_notify() sends on a blocking socket: when the receiver's
 * datagram queue is full (net.unix.max_dgram_qlen, 10 by default) it waits,
 * and the master with it. The protocol is one datagram of NAME=VALUE lines,
 * so we send it ourselves with MSG_DONTWAIT, retry EINTR, and count what the
 * kernel would not take instead of waiting for it. */
#include "config.h"

#include "master/notify.h"

#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "common/clock.h"
#include "common/escape.h"
#include "common/log.h"
#include "common/ratelimit.h"

static struct {
	int fd;
	struct sockaddr_un addr;
	socklen_t addrlen;
	char path[sizeof(((struct sockaddr_un *)0)->sun_path) + 1];
	uint64_t watchdog_ms;
	char watchdog_usec[24];		/* WATCHDOG_USEC= as given, for an upgrade's image */
	struct ratelimit drops;
	bool ready_sent;
	unsigned long fdstore_max;	/* $FDSTORE: the manager keeps this many fds for us */
} notify = { .fd = -1 };

/* WATCHDOG_USEC applies to us only if WATCHDOG_PID is unset or names us. */
static void watchdog_init(void)
{
	const char *usec = getenv("WATCHDOG_USEC"), *pid = getenv("WATCHDOG_PID");
	char *end;
	unsigned long long v;

	if (!usec)
		return;
	errno = 0;
	v = strtoull(usec, &end, 10);
	if (errno || end == usec || *end || v == 0) {
		log_warn("WATCHDOG_USEC=%s is not a positive number; no watchdog pings", usec);
		return;
	}
	if (pid && strtol(pid, NULL, 10) != (long)getpid())
		return;
	notify.watchdog_ms = v / 2000 ? v / 2000 : 1;
	snprintf(notify.watchdog_usec, sizeof(notify.watchdog_usec), "%llu", v);
}

void notify_init(void)
{
	const char *path = getenv("NOTIFY_SOCKET");
	size_t len;

	watchdog_init();
	/* systemd 254 and later set it from FileDescriptorStoreMax=; our unit
	 * sets it too, for 252. Without it nobody keeps what we would push. */
	if (getenv("FDSTORE"))
		notify.fdstore_max = strtoul(getenv("FDSTORE"), NULL, 10);
	unsetenv("FDSTORE");
	if (path && *path) {
		len = strlen(path);
		if ((path[0] != '/' && path[0] != '@') || len >= sizeof(notify.addr.sun_path)) {
			log_warn("NOTIFY_SOCKET=%s is not a unix socket path preforkd can use; "
				 "the service manager will not hear from us", path);
		} else {
			notify.addr.sun_family = AF_UNIX;
			memcpy(notify.addr.sun_path, path, len);
			if (path[0] == '@')
				notify.addr.sun_path[0] = '\0';	/* abstract namespace */
			notify.addrlen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len);
			snprintf(notify.path, sizeof(notify.path), "%s", path);
			notify.fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
			if (notify.fd < 0)
				log_errno(LOG_WARNING, errno, "socket for NOTIFY_SOCKET");
		}
	}
	unsetenv("NOTIFY_SOCKET");
	unsetenv("WATCHDOG_USEC");
	unsetenv("WATCHDOG_PID");
}

static void report_drops(bool final)
{
	uint64_t now = clock_now_ms();

	if (!ratelimit_pending(&notify.drops, now, final))
		return;
	log_warn("NOTIFY_SOCKET %s: %lu notification%s dropped since the last report, %lu in all "
		 "(the service manager is not reading)", notify.path, notify.drops.since_log,
		 notify.drops.since_log == 1 ? "" : "s", notify.drops.total);
	ratelimit_logged(&notify.drops, now);
}

static void notify_send(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static void notify_send(const char *fmt, ...)
{
	char msg[1024];
	va_list ap;
	int len;
	ssize_t n;

	if (notify.fd < 0)
		return;
	va_start(ap, fmt);
	len = vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (len < 0)
		return;
	if ((size_t)len >= sizeof(msg))
		len = sizeof(msg) - 1;	/* a STATUS= line cut short is still a message */
	do
		n = sendto(notify.fd, msg, (size_t)len, MSG_DONTWAIT | MSG_NOSIGNAL,
			   (const struct sockaddr *)&notify.addr, notify.addrlen);
	while (n < 0 && errno == EINTR);
	if (n >= 0)
		return;
	ratelimit_event(&notify.drops, clock_now_ms());
	if (errno != EAGAIN && errno != ENOBUFS && notify.drops.total == 1)
		log_errno(LOG_WARNING, errno, "sendto NOTIFY_SOCKET %s", notify.path);
	report_drops(false);
}

int notify_fdstore(int fd, const char *name)
{
	char msg[320];
	union {
		struct cmsghdr h;
		char buf[CMSG_SPACE(sizeof(int))];
	} control = { 0 };
	struct iovec iov = { msg, 0 };
	struct msghdr mh = {
		.msg_name = &notify.addr, .msg_namelen = notify.addrlen, .msg_iov = &iov,
		.msg_iovlen = 1, .msg_control = control.buf, .msg_controllen = sizeof(control.buf),
	};
	struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
	ssize_t n;
	int len;

	if (notify.fd < 0)
		return -1;
	len = snprintf(msg, sizeof(msg), "FDSTORE=1\nFDNAME=%s", name);
	if (len < 0 || (size_t)len >= sizeof(msg))
		return -1;
	iov.iov_len = (size_t)len;
	c->cmsg_level = SOL_SOCKET;
	c->cmsg_type = SCM_RIGHTS;
	c->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(c), &fd, sizeof(int));
	do
		n = sendmsg(notify.fd, &mh, MSG_DONTWAIT | MSG_NOSIGNAL);
	while (n < 0 && errno == EINTR);
	if (n >= 0)
		return 0;
	if (errno != EAGAIN && errno != ENOBUFS)
		log_errno(LOG_WARNING, errno, "sendmsg FDSTORE=1 %s to NOTIFY_SOCKET %s", name,
			  notify.path);
	return -1;
}

void notify_fdstore_remove(const char *name)
{
	notify_send("FDSTOREREMOVE=1\nFDNAME=%s", name);
}

bool notify_fdstore_enabled(void)
{
	return notify.fd >= 0 && notify.fdstore_max > 0;
}

static unsigned long long monotonic_usec(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (unsigned long long)ts.tv_sec * 1000000ULL + (unsigned long long)ts.tv_nsec / 1000;
}

uint64_t notify_watchdog_interval_ms(void)
{
	return notify.fd >= 0 ? notify.watchdog_ms : 0;
}

/* STATUS= is one line of the notification: what a file or a peer put in
 * it (a config error quotes the file) is escaped as in the log. */
static void notify_with_status(const char *head, const char *status)
{
	char escaped[900];

	escape_string(status, escaped, sizeof(escaped));
	notify_send("%s%sSTATUS=%s", head, *head ? "\n" : "", escaped);
}

void notify_ready(const char *status)
{
	char head[64];

	/* MAINPID= once: it matters when a wrapper forked us (with NotifyAccess=all). */
	if (!notify.ready_sent)
		snprintf(head, sizeof(head), "READY=1\nMAINPID=%ld", (long)getpid());
	else
		snprintf(head, sizeof(head), "READY=1");
	notify_with_status(head, status);
	notify.ready_sent = true;
}

void notify_reloading(const char *status)
{
	char head[64];

	snprintf(head, sizeof(head), "RELOADING=1\nMONOTONIC_USEC=%llu", monotonic_usec());
	notify_with_status(head, status);
}

void notify_stopping(const char *status)
{
	notify_with_status("STOPPING=1", status);
}

void notify_status(const char *status)
{
	notify_with_status("", status);
}

void notify_watchdog(void)
{
	notify_send("WATCHDOG=1");
}

size_t notify_exec_env(char env[][NOTIFY_ENV_MAX], size_t max)
{
	size_t n = 0;

	if (notify.fd >= 0 && n < max)
		snprintf(env[n++], NOTIFY_ENV_MAX, "NOTIFY_SOCKET=%s", notify.path);
	if (notify.fd >= 0 && notify.watchdog_ms && n + 1 < max) {
		snprintf(env[n++], NOTIFY_ENV_MAX, "WATCHDOG_USEC=%s", notify.watchdog_usec);
		snprintf(env[n++], NOTIFY_ENV_MAX, "WATCHDOG_PID=%ld", (long)getpid());
	}
	if (notify.fdstore_max && n < max)
		snprintf(env[n++], NOTIFY_ENV_MAX, "FDSTORE=%lu", notify.fdstore_max);
	return n;
}

void notify_adopt_ready(void)
{
	notify.ready_sent = true;
}

void notify_close(void)
{
	report_drops(true);
	if (notify.fd >= 0)
		close(notify.fd);
	notify.fd = -1;
}
