/* SPDX-License-Identifier: ISC */
/* workernotify.c - the master as an sd_notify server: the NOTIFY_SOCKET its app workers send to.
 *
 * One datagram socket for every app worker, a file in a directory of our
 * own making (mkdtemp) in $RUNTIME_DIRECTORY or $TMPDIR or /tmp: some
 * sd_notify implementations (Ruby's sd_notify, used by Puma) cannot send
 * to an abstract name, which is the fallback when no such directory can
 * be had. Workers may run as another user, so anyone may send to it; the
 * sender is whoever the kernel says it is (SO_PASSCRED): a message from a
 * process that is not an app worker, or in one's process group, is
 * ignored and counted. A message is read whole or not at all, descriptors sent with it
 * are closed, and a bounded number is read per turn of the loop: a worker
 * flooding it cannot starve the rest of the master. */
#include "config.h"

#include "master/workernotify.h"
#include "master/notifyline.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "common/clock.h"
#include "common/evsource.h"
#include "common/log.h"
#include "common/ratelimit.h"
#include "master/appworker.h"
#include "master/generation.h"
#include "master/master_private.h"

#define NOTIFY_MESSAGE_MAX 4096		/* systemd's own limit is larger; ours are short */
#define NOTIFY_READS_PER_TURN 64
#define STATUS_MAX 256			/* bytes of STATUS= kept */

static struct {
	struct ev_source src;
	int fd;
	char dir[sizeof(((struct sockaddr_un *)0)->sun_path)];	/* ours, or "" */
	char address[sizeof(((struct sockaddr_un *)0)->sun_path) + 1];	/* path, or "@name" */
	struct ratelimit ignored;
	pid_t last_ignored;
	const char *why_ignored;
} wn = { .src = { EV_WORKER_NOTIFY }, .fd = -1 };

/* Where our directory goes: the first of $RUNTIME_DIRECTORY (systemd's
 * RuntimeDirectory=), $TMPDIR and /tmp that a worker of any user can pass
 * through; NULL when none can. */
static const char *base_directory(char *buf, size_t len)
{
	const char *rt = getenv("RUNTIME_DIRECTORY");
	const char *candidates[] = { buf, getenv("TMPDIR"), "/tmp" };
	struct stat st;

	snprintf(buf, len, "%.*s", rt ? (int)strcspn(rt, ":") : 0, rt ? rt : "");
	for (size_t i = 0; i < sizeof(candidates) / sizeof(candidates[0]); i++)
		if (candidates[i] && candidates[i][0] == '/' && stat(candidates[i], &st) == 0 &&
		    S_ISDIR(st.st_mode) && (st.st_mode & S_IXOTH))
			return candidates[i];
	return NULL;
}

/* Binds fd to DIR/notify in a new private directory: 0, or -1 (nothing left behind). */
static int bind_file(int fd, struct sockaddr_un *sa)
{
	char buf[sizeof(sa->sun_path)];
	const char *base = base_directory(buf, sizeof(buf));

	if (!base || snprintf(wn.dir, sizeof(wn.dir), "%s/preforkd-notify.XXXXXX", base) >=
			     (int)sizeof(wn.dir) - 8 || !mkdtemp(wn.dir)) {
		wn.dir[0] = '\0';
		return -1;
	}
	/* It fits: the directory's name left room for it. */
	memcpy(sa->sun_path, wn.dir, strlen(wn.dir));
	memcpy(sa->sun_path + strlen(wn.dir), "/notify", sizeof("/notify"));
	/* Workers of other users reach the socket, and cannot list the directory. */
	if (chmod(wn.dir, 0711) < 0 || bind(fd, (struct sockaddr *)sa, sizeof(*sa)) < 0 ||
	    chmod(sa->sun_path, 0666) < 0) {
		unlink(sa->sun_path);
		rmdir(wn.dir);
		wn.dir[0] = '\0';
		return -1;
	}
	snprintf(wn.address, sizeof(wn.address), "%s", sa->sun_path);
	return 0;
}

/* Binds fd to an abstract name the kernel picks (a bind with the family only). */
static int bind_abstract(int fd, struct sockaddr_un *sa)
{
	socklen_t len = sizeof(sa_family_t);

	if (bind(fd, (struct sockaddr *)sa, len) < 0 ||
	    (len = sizeof(*sa), getsockname(fd, (struct sockaddr *)sa, &len)) < 0 ||
	    len <= offsetof(struct sockaddr_un, sun_path) + 1)
		return -1;
	snprintf(wn.address, sizeof(wn.address), "@%.*s",
		 (int)(len - offsetof(struct sockaddr_un, sun_path) - 1), sa->sun_path + 1);
	return 0;
}

const char *workernotify_address(int epfd)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct epoll_event ev = { .events = EPOLLIN, .data.ptr = &wn.src };
	int one = 1;

	if (wn.fd >= 0)
		return wn.address;
	wn.fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (wn.fd < 0 || setsockopt(wn.fd, SOL_SOCKET, SO_PASSCRED, &one, sizeof(one)) < 0 ||
	    (bind_file(wn.fd, &sa) < 0 &&
	     (sa = (struct sockaddr_un){ .sun_family = AF_UNIX }, bind_abstract(wn.fd, &sa) < 0)) ||
	    epoll_ctl(epfd, EPOLL_CTL_ADD, wn.fd, &ev) < 0) {
		log_errno(LOG_ERR, errno, "the NOTIFY_SOCKET of app workers");
		workernotify_close();
		return NULL;
	}
	log_debug("NOTIFY_SOCKET of app workers: %s", wn.address);
	return wn.address;
}

int workernotify_handover(const char **address, const char **dir)
{
	*address = wn.address;
	*dir = wn.dir;
	return wn.fd;
}

int workernotify_adopt(int fd, const char *address, const char *dir, int epfd)
{
	struct epoll_event ev = { .events = EPOLLIN, .data.ptr = &wn.src };

	if (snprintf(wn.address, sizeof(wn.address), "%s", address) >= (int)sizeof(wn.address) ||
	    snprintf(wn.dir, sizeof(wn.dir), "%s", dir) >= (int)sizeof(wn.dir)) {
		wn.dir[0] = '\0';
		return -1;
	}
	wn.fd = fd;
	if (epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev) < 0) {
		log_errno(LOG_ERR, errno, "epoll_ctl(ADD) the NOTIFY_SOCKET of app workers");
		return -1;
	}
	return 0;
}

void workernotify_close(void)
{
	if (wn.fd >= 0)
		close(wn.fd);
	wn.fd = -1;
	if (wn.dir[0]) {
		unlink(wn.address);
		rmdir(wn.dir);
		wn.dir[0] = '\0';
	}
}

static void ignore(pid_t pid, const char *why)
{
	wn.last_ignored = pid;
	wn.why_ignored = why;
	if (ratelimit_event(&wn.ignored, clock_now_ms()))
		workernotify_report(clock_now_ms());
}

void workernotify_report(uint64_t now)
{
	if (!ratelimit_pending(&wn.ignored, now, false))
		return;
	log_notice("NOTIFY_SOCKET of app workers: ignored %lu notification%s (last: pid %ld, %s), "
		   "%lu in all", wn.ignored.since_log, wn.ignored.since_log == 1 ? "" : "s",
		   (long)wn.last_ignored, wn.why_ignored, wn.ignored.total);
	ratelimit_logged(&wn.ignored, now);
}

uint64_t workernotify_next_deadline(void)
{
	return ratelimit_next(&wn.ignored);
}

/* The slot of the app worker pid is, or is in the process group of. */
static struct slot *sender_slot(struct master *m, pid_t pid)
{
	struct slot *s = master_find_slot(m, pid);
	pid_t group;

	if (!s && (group = getpgid(pid)) > 0 && group != pid)
		s = master_find_slot(m, group);
	return s && s->app ? s : NULL;
}

static void set_status(struct slot *s, const char *v)
{
	free(s->status);
	s->status = strndup(v, STATUS_MAX);
	log_debug("app worker %s#%u (pid %ld): STATUS=%s", slot_name(s), s->index, (long)s->pid,
		  s->status ? s->status : "");
}

/* One KEY=VALUE line of a notification from s. */
static void apply(struct master *m, struct slot *s, const char *line)
{
	struct notify_line n;

	notifyline_parse(line, &n);
	switch (n.kind) {
	case NOTIFY_READY:
		master_worker_ready(m, s);
		break;
	case NOTIFY_STATUS:
		set_status(s, n.text);
		break;
	case NOTIFY_WATCHDOG:
		appworker_watchdog_kick(s, m->now);
		break;
	case NOTIFY_WATCHDOG_TRIGGER:
		appworker_watchdog_trigger(s, m->now);
		break;
	case NOTIFY_STOPPING:
		if (s->state != SLOT_STOPPING)
			log_info("app worker %s#%u (pid %ld) says it is stopping", slot_name(s),
				 s->index, (long)s->pid);
		break;
	case NOTIFY_EXTEND_TIMEOUT:
		appworker_extend_timeout(s, n.number, m->now);
		break;
	case NOTIFY_ERRNO:
		s->said_errno = (int)n.number;
		break;
	case NOTIFY_OTHER:
		break;
	}
}

static void close_passed_fds(struct msghdr *mh)
{
	for (struct cmsghdr *c = CMSG_FIRSTHDR(mh); c; c = CMSG_NXTHDR(mh, c)) {
		if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
			continue;
		for (size_t i = 0; i < (c->cmsg_len - CMSG_LEN(0)) / sizeof(int); i++) {
			int fd;

			memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof(fd));
			close(fd);
		}
	}
}

static const struct ucred *credentials_of(struct msghdr *mh)
{
	for (struct cmsghdr *c = CMSG_FIRSTHDR(mh); c; c = CMSG_NXTHDR(mh, c))
		if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_CREDENTIALS &&
		    c->cmsg_len >= CMSG_LEN(sizeof(struct ucred)))
			return (const struct ucred *)(void *)CMSG_DATA(c);
	return NULL;
}

void workernotify_read(struct master *m)
{
	char buf[NOTIFY_MESSAGE_MAX + 1];
	union {
		struct cmsghdr align;
		char space[CMSG_SPACE(sizeof(struct ucred)) + CMSG_SPACE(sizeof(int) * 16)];
	} control;

	for (int turn = 0; wn.fd >= 0 && turn < NOTIFY_READS_PER_TURN; turn++) {
		struct iovec iov = { buf, sizeof(buf) - 1 };
		struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = &control,
				     .msg_controllen = sizeof(control) };
		const struct ucred *cred;
		struct slot *s;
		ssize_t n = recvmsg(wn.fd, &mh, MSG_DONTWAIT | MSG_CMSG_CLOEXEC | MSG_TRUNC);
		char *line, *next;

		if (n < 0) {
			if (errno != EAGAIN && errno != EINTR)
				log_errno(LOG_ERR, errno, "recvmsg NOTIFY_SOCKET of app workers");
			return;
		}
		close_passed_fds(&mh);
		cred = credentials_of(&mh);
		if (!cred) {
			ignore(0, "no credentials");
			continue;
		}
		if ((size_t)n >= sizeof(buf) || (mh.msg_flags & (MSG_TRUNC | MSG_CTRUNC))) {
			ignore(cred->pid, "too long");
			continue;
		}
		s = sender_slot(m, cred->pid);
		if (!s) {
			ignore(cred->pid, "not an app worker");
			continue;
		}
		buf[n] = '\0';
		for (line = buf; line && *line; line = next) {
			next = strchr(line, '\n');
			if (next)
				*next++ = '\0';
			apply(m, s, line);
		}
	}
}
