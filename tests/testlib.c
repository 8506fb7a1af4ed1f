/* SPDX-License-Identifier: ISC */
/* testlib.c - starts and watches the real daemon for the integration tests. */
#include "config.h"

#include "testlib.h"

#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#ifndef PREFORKD_BIN
#error "PREFORKD_BIN must name the built daemon"
#endif

extern char **environ;

int tl_run_suite(Suite *s)
{
	SRunner *sr = srunner_create(s);
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}

uint64_t tl_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void sleep_ms(int ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000 };

	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

void tl_mkdtemp(char *buf, size_t len)
{
	snprintf(buf, len, "/tmp/preforkd-test.XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(buf));
}

void tl_rmtree(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	char path[512];

	if (!d)
		return;
	while ((e = readdir(d))) {
		if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
		if (unlink(path) < 0 && errno == EISDIR)
			tl_rmtree(path);
	}
	closedir(d);
	rmdir(dir);
}

/* The first port the kernel hands to connect() (ip_local_port_range). */
static unsigned ephemeral_low(void)
{
	FILE *f = fopen("/proc/sys/net/ipv4/ip_local_port_range", "re");
	unsigned low = 32768;

	if (f) {
		if (fscanf(f, "%u", &low) != 1)
			low = 32768;
		fclose(f);
	}
	return low;
}

static bool port_bindable(int family, uint16_t port)
{
	struct sockaddr_in sin = { .sin_family = AF_INET, .sin_port = htons(port),
				   .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	struct sockaddr_in6 sin6 = { .sin6_family = AF_INET6, .sin6_port = htons(port),
				     .sin6_addr = IN6ADDR_LOOPBACK_INIT };
	int fd = socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	bool ok;

	if (fd < 0)
		return family == AF_INET6;	/* no IPv6 here: nothing to collide with */
	ok = family == AF_INET ? bind(fd, (struct sockaddr *)&sin, sizeof(sin)) == 0
			       : bind(fd, (struct sockaddr *)&sin6, sizeof(sin6)) == 0 ||
				 errno == EADDRNOTAVAIL;
	close(fd);
	return ok;
}

/* A port free on 127.0.0.1 and ::1, below the range connect() takes its
 * local ports from: between our check and the daemon's (or an activator's)
 * bind, the clients of tests running beside us cannot take it. */
uint16_t tl_free_port(void)
{
	static unsigned next;
	unsigned low = ephemeral_low(), span = low > 20000 ? low - 10000 : 0;

	if (!next)
		next = (unsigned)getpid() * 7919u;
	for (int tries = 0; tries < 200 && span; tries++) {
		uint16_t port = (uint16_t)(10000 + (next += 104729u) % span);

		if (port_bindable(AF_INET, port) && port_bindable(AF_INET6, port))
			return port;
	}
	ck_abort_msg("no free port below %u", low);
	return 0;
}

void tl_write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "we");

	ck_assert_msg(f != NULL, "fopen %s: %s", path, strerror(errno));
	fputs(text, f);
	ck_assert_int_eq(fclose(f), 0);
}

char *tl_read_file(const char *path)
{
	FILE *f = fopen(path, "re");
	char *buf = NULL;
	size_t cap = 0, len = 0, n;

	if (f) {
		do {
			if (cap - len < 4096) {
				cap = cap ? cap * 2 : 8192;
				buf = realloc(buf, cap);
				ck_assert_ptr_nonnull(buf);
			}
			n = fread(buf + len, 1, cap - len - 1, f);
			len += n;
		} while (n > 0);
		fclose(f);
	}
	if (!buf)
		buf = calloc(1, 1);
	buf[len] = '\0';
	return buf;
}

static char *substitute_dir(const char *text, const char *dir)
{
	size_t cap = strlen(text) * 2 + 4096, len = 0;
	char *out = malloc(cap);

	ck_assert_ptr_nonnull(out);
	for (const char *p = text; *p;) {
		if (strncmp(p, "@DIR@", 5) == 0) {
			len += (size_t)snprintf(out + len, cap - len, "%s", dir);
			p += 5;
		} else {
			out[len++] = *p++;
		}
		ck_assert_uint_lt(len, cap - 256);
	}
	out[len] = '\0';
	return out;
}

static int notify_socket_open(const char *path)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);

	ck_assert_int_ge(fd, 0);
	ck_assert_uint_lt(strlen(path), sizeof(sun.sun_path));
	memcpy(sun.sun_path, path, strlen(path));
	ck_assert_int_eq(bind(fd, (struct sockaddr *)&sun, sizeof(sun)), 0);
	return fd;
}

const char *tl_echo_conf(uint16_t port, unsigned workers, const char *global)
{
	static char text[4096];

	snprintf(text, sizeof(text),
		 "%s\n"
		 "service echo {\n"
		 "  listen = { \"127.0.0.1:%u\", \"unix:@DIR@/echo.sock\" }\n"
		 "  handler = \"echo\"\n"
		 "  workers = %u\n"
		 "}\n", global, port, workers);
	return text;
}

void daemon_start_ready(struct daemon *d, const char *conf_text, const struct daemon_opts *opts)
{
	daemon_start(d, conf_text, opts);
	ck_assert_msg(daemon_wait_ready(d, 10000), "not ready; log:\n%s", tl_read_file(d->log));
}

int tl_exit_code(int status)
{
	ck_assert_msg(status != -1, "daemon did not exit in time");
	ck_assert_msg(WIFEXITED(status), "daemon died by signal %d", WTERMSIG(status));
	return WEXITSTATUS(status);
}

const char *daemon_path(const struct daemon *d, const char *name)
{
	static char path[256];

	snprintf(path, sizeof(path), "%s/%s", d->dir, name);
	return path;
}

void daemon_write_conf(struct daemon *d, const char *conf_text)
{
	char *text = substitute_dir(conf_text, d->dir), tmp[256];
	size_t len = strlen(text);

	/* Each daemon's control socket in its own directory, unless the test
	 * says where: the default /run/preforkd/control.sock is one for all. */
	if (!strstr(text, "control-socket")) {
		char *more = malloc(len + strlen(d->dir) + 64);

		ck_assert_ptr_nonnull(more);
		snprintf(more, len + strlen(d->dir) + 64, "%s%scontrol-socket = \"%s/control.sock\"\n",
			 text, len && text[len - 1] != '\n' ? "\n" : "", d->dir);
		free(text);
		text = more;
	}
	/* Whole or not at all: a reload must never read half a file. */
	snprintf(tmp, sizeof(tmp), "%s.new", d->conf);
	tl_write_file(tmp, text);
	ck_assert_int_eq(rename(tmp, d->conf), 0);
	free(text);
}

static void exec_daemon(struct daemon *d, int logfd, const char *env_notify,
			const struct daemon_opts *opts)
{
	char *argv[32];
	int argc = 0;

	/* A failed test must not leave a daemon holding ports. */
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (opts && opts->nofile) {
		struct rlimit rl = { (rlim_t)(opts->nofile_soft ? opts->nofile_soft : opts->nofile),
				     (rlim_t)opts->nofile };

		setrlimit(RLIMIT_NOFILE, &rl);
	}
	dup2(logfd, STDOUT_FILENO);
	dup2(opts && opts->stderr_fd > 0 ? opts->stderr_fd : logfd, STDERR_FILENO);
	/* Only stdio (and what is passed), as a service manager starts us:
	 * Check's own files would otherwise show up as descriptors of the daemon. */
	if (opts && opts->npass) {
		char names[4096] = "", env[64];
		int high[16];

		for (size_t i = 0; i < opts->npass && i < 16; i++)
			high[i] = fcntl(opts->pass_fds[i], F_DUPFD, 100);
		for (size_t i = 0; i < opts->npass && i < 16; i++) {
			dup2(high[i], 3 + (int)i);	/* dup2 clears close-on-exec */
			snprintf(names + strlen(names), sizeof(names) - strlen(names), "%s%s",
				 i ? ":" : "", opts->pass_names[i]);
		}
		close_range(3 + (unsigned)opts->npass, ~0U, 0);
		snprintf(env, sizeof(env), "%zu", opts->npass);
		setenv("LISTEN_FDS", env, 1);
		snprintf(env, sizeof(env), "%ld", (long)getpid());
		setenv("LISTEN_PID", env, 1);
		setenv("LISTEN_FDNAMES", names, 1);
	} else {
		close_range(3, ~0U, 0);
	}
	putenv((char *)env_notify);
	unsetenv("JOURNAL_STREAM");
	setenv("TMPDIR", d->dir, 1);	/* what it makes there goes with the test */
	for (size_t i = 0; opts && opts->env && opts->env[i]; i++)
		putenv((char *)opts->env[i]);
	for (size_t i = 0; opts && opts->wrapper && opts->wrapper[i] && argc < 28; i++)
		argv[argc++] = substitute_dir(opts->wrapper[i], d->dir);
	argv[argc++] = (char *)(opts && opts->binary ? opts->binary : PREFORKD_BIN);
	argv[argc++] = (char *)"-c";
	argv[argc++] = d->conf;
	argv[argc] = NULL;
	execvp(argv[0], argv);
	_exit(127);
}

void daemon_start(struct daemon *d, const char *conf_text, const struct daemon_opts *opts)
{
	char notify_path[256];
	static char env_notify[300];	/* putenv keeps the pointer */
	int logfd;

	memset(d, 0, sizeof(*d));
	d->exit_status = -1;
	d->notified = calloc(1, 1);
	ck_assert_ptr_nonnull(d->notified);
	tl_mkdtemp(d->dir, sizeof(d->dir));
	/* Workers running as another user (nobody) reach what is made here. */
	ck_assert_int_eq(chmod(d->dir, 0711), 0);
	snprintf(d->conf, sizeof(d->conf), "%s/preforkd.conf", d->dir);
	snprintf(d->log, sizeof(d->log), "%s/preforkd.log", d->dir);
	snprintf(notify_path, sizeof(notify_path), "%s/notify.sock", d->dir);
	snprintf(env_notify, sizeof(env_notify), "NOTIFY_SOCKET=%s", notify_path);
	daemon_write_conf(d, conf_text);
	d->notify_fd = notify_socket_open(notify_path);
	logfd = open(d->log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
	ck_assert_int_ge(logfd, 0);

	d->pid = fork();
	if (d->pid == 0)	/* no Check in the child (see tl_run_timeout) */
		exec_daemon(d, logfd, env_notify, opts);
	ck_assert_int_ge(d->pid, 0);
	close(logfd);
}

/* A descriptor that came with FDSTORE=1 is kept, as the store would. */
static void keep_stored(struct daemon *d, const char *msg, size_t len, struct msghdr *mh)
{
	const char *name = memmem(msg, len, "FDNAME=", 7);
	const char *end = name ? memchr(name, '\n', (size_t)(msg + len - name)) : NULL;
	int name_len = name ? (int)((end ? end : msg + len) - name - 7) : 0;

	for (struct cmsghdr *c = CMSG_FIRSTHDR(mh); c; c = CMSG_NXTHDR(mh, c)) {
		int fd;

		if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
			continue;
		memcpy(&fd, CMSG_DATA(c), sizeof(fd));
		if (!memmem(msg, len, "FDSTORE=1", 9) || d->nstored == 16) {
			close(fd);
			continue;
		}
		snprintf(d->stored_names[d->nstored], sizeof(d->stored_names[0]), "%.*s", name_len,
			 name ? name + 7 : "");
		d->stored_fds[d->nstored++] = fd;
	}
}

static void drain_notify(struct daemon *d)
{
	char buf[4096];
	union {
		struct cmsghdr h;
		char buf[CMSG_SPACE(4 * sizeof(int))];
	} control;
	ssize_t n;

	for (;;) {
		struct iovec iov = { buf, sizeof(buf) - 1 };
		struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = control.buf,
				     .msg_controllen = sizeof(control.buf) };
		char *grown;

		n = recvmsg(d->notify_fd, &mh, MSG_CMSG_CLOEXEC);
		if (n <= 0)
			break;
		keep_stored(d, buf, (size_t)n, &mh);
		grown = realloc(d->notified, d->notified_len + (size_t)n + 5);

		ck_assert_ptr_nonnull(grown);
		d->notified = grown;
		memcpy(d->notified + d->notified_len, buf, (size_t)n);
		d->notified_len += (size_t)n;
		memcpy(d->notified + d->notified_len, "\n--\n", 5);
		d->notified_len += 4;
	}
}

static bool daemon_exited(struct daemon *d)
{
	int status;

	if (d->exit_status != -1)
		return true;
	if (waitpid(d->pid, &status, WNOHANG) == d->pid) {
		d->exit_status = status;
		return true;
	}
	return false;
}

bool daemon_wait_notify(struct daemon *d, const char *needle, int timeout_ms)
{
	uint64_t deadline = tl_now_ms() + (uint64_t)timeout_ms;

	for (;;) {
		struct pollfd pfd = { .fd = d->notify_fd, .events = POLLIN };

		drain_notify(d);
		if (strstr(d->notified, needle))
			return true;
		if (daemon_exited(d) || tl_now_ms() >= deadline)
			return false;
		poll(&pfd, 1, 20);
	}
}

unsigned tl_count_in(const char *text, const char *needle)
{
	unsigned n = 0;

	for (const char *p = text; (p = strstr(p, needle)); p += strlen(needle))
		n++;
	return n;
}

unsigned daemon_count_notify(struct daemon *d, const char *needle)
{
	drain_notify(d);
	return tl_count_in(d->notified, needle);
}

bool daemon_wait_ready(struct daemon *d, int timeout_ms)
{
	return daemon_wait_notify(d, "READY=1", timeout_ms);
}

int daemon_reload(struct daemon *d, int timeout_ms)
{
	uint64_t deadline = tl_now_ms() + (uint64_t)timeout_ms;
	unsigned before = daemon_count_notify(d, "READY=1");
	const char *last = NULL, *end;
	char *msg;
	int ok;

	ck_assert_int_eq(kill(d->pid, SIGHUP), 0);
	while (daemon_count_notify(d, "READY=1") == before) {
		struct pollfd pfd = { .fd = d->notify_fd, .events = POLLIN };

		if (daemon_exited(d) || tl_now_ms() >= deadline)
			return -1;
		poll(&pfd, 1, 20);
	}
	/* The message that ended the reload is the last READY=1; its STATUS=
	 * ends with how the reload went. */
	for (const char *p = d->notified; (p = strstr(p, "READY=1")); p++)
		last = p;
	end = strstr(last, "\n--\n");
	msg = strndup(last, (size_t)(end - last));
	ck_assert_ptr_nonnull(msg);
	ok = strstr(msg, "; reload ok") != NULL;
	free(msg);
	return ok;
}

int daemon_wait_exit(struct daemon *d, int timeout_ms)
{
	uint64_t deadline = tl_now_ms() + (uint64_t)timeout_ms;

	while (!daemon_exited(d)) {
		if (tl_now_ms() >= deadline)
			return -1;
		sleep_ms(5);
	}
	return d->exit_status;
}

bool daemon_log_contains(struct daemon *d, const char *needle)
{
	char *log = tl_read_file(d->log);
	bool found = strstr(log, needle) != NULL;

	free(log);
	return found;
}

unsigned daemon_log_count(struct daemon *d, const char *needle)
{
	char *log = tl_read_file(d->log);
	unsigned n = tl_count_in(log, needle);

	free(log);
	return n;
}

bool daemon_wait_log(struct daemon *d, const char *needle, int timeout_ms)
{
	uint64_t deadline = tl_now_ms() + (uint64_t)timeout_ms;

	for (;;) {
		if (daemon_log_contains(d, needle))
			return true;
		if (tl_now_ms() >= deadline)
			return false;
		sleep_ms(10);
	}
}

size_t daemon_take_stored(struct daemon *d, int *fds, char (*names)[256], size_t max)
{
	size_t n = 0;

	drain_notify(d);
	for (; n < d->nstored && n < max; n++) {
		fds[n] = d->stored_fds[n];
		memcpy(names[n], d->stored_names[n], sizeof(names[n]));
	}
	for (size_t i = n; i < d->nstored; i++)
		close(d->stored_fds[i]);
	d->nstored = 0;
	return n;
}

void daemon_stop(struct daemon *d)
{
	if (!daemon_exited(d)) {
		kill(d->pid, SIGTERM);
		if (daemon_wait_exit(d, 15000) == -1) {
			kill(d->pid, SIGKILL);
			daemon_wait_exit(d, 5000);
		}
	}
	if (d->notify_fd > 0)
		close(d->notify_fd);
	d->notify_fd = -1;
	for (size_t i = 0; i < d->nstored; i++)
		close(d->stored_fds[i]);
	d->nstored = 0;
	free(d->notified);
	d->notified = NULL;
	tl_rmtree(d->dir);
}

size_t daemon_workers(const struct daemon *d, pid_t *pids, size_t max)
{
	return tl_children(d->pid, pids, max);
}

bool daemon_wait_workers(const struct daemon *d, size_t n, int timeout_ms)
{
	uint64_t deadline = tl_now_ms() + (uint64_t)timeout_ms;
	pid_t pids[256];

	while (daemon_workers(d, pids, 256) != n) {
		if (tl_now_ms() >= deadline)
			return false;
		sleep_ms(10);
	}
	return true;
}

int tl_run_timeout(char **out, int timeout_ms, char *const argv[])
{
	char outpath[] = "/tmp/preforkd-run.XXXXXX";
	int fd = mkstemp(outpath), status;
	uint64_t deadline = tl_now_ms() + (uint64_t)timeout_ms;
	pid_t pid, done;

	ck_assert_int_ge(fd, 0);
	pid = fork();
	/* Nothing of Check's in the child: another thread of the test may
	 * hold its lock, and a forked child would wait for it forever. */
	if (pid == 0) {
		dup2(fd, STDOUT_FILENO);
		dup2(fd, STDERR_FILENO);
		unsetenv("NOTIFY_SOCKET");
		unsetenv("JOURNAL_STREAM");
		execvp(argv[0], argv);
		fprintf(stderr, "cannot run %s: %s\n", argv[0], strerror(errno));
		_exit(127);
	}
	ck_assert_int_ge(pid, 0);
	close(fd);
	while ((done = waitpid(pid, &status, timeout_ms < 0 ? 0 : WNOHANG)) == 0) {
		if (tl_now_ms() >= deadline) {
			kill(pid, SIGKILL);
			ck_assert_int_eq(waitpid(pid, &status, 0), pid);
			*out = tl_read_file(outpath);
			unlink(outpath);
			return -1;
		}
		sleep_ms(5);
	}
	ck_assert_int_eq(done, pid);
	*out = tl_read_file(outpath);
	unlink(outpath);
	return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

int tl_run(char **out, char *const argv[])
{
	return tl_run_timeout(out, -1, argv);
}

int tl_run_preforkd(char **out, const char *arg, ...)
{
	char *argv[16] = { (char *)PREFORKD_BIN };
	int argc = 1;
	va_list ap;

	va_start(ap, arg);
	for (const char *a = arg; a && argc < 15; a = va_arg(ap, const char *))
		argv[argc++] = (char *)a;
	va_end(ap);
	return tl_run_timeout(out, TL_RUN_PREFORKD_MS, argv);
}

int tl_listen_loopback(uint16_t port, bool reuseport)
{
	struct sockaddr_in sin = { .sin_family = AF_INET, .sin_port = htons(port),
				   .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	int one = 1, fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	ck_assert_int_ge(fd, 0);
	if (reuseport)
		ck_assert_int_eq(setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)), 0);
	ck_assert_int_eq(setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)), 0);
	ck_assert_msg(bind(fd, (struct sockaddr *)&sin, sizeof(sin)) == 0, "bind port %u: %s",
		      port, strerror(errno));
	ck_assert_int_eq(listen(fd, 64), 0);
	return fd;
}

socklen_t tl_ip_sockaddr(const char *ip, uint16_t port, struct sockaddr_storage *ss)
{
	memset(ss, 0, sizeof(*ss));
	if (strchr(ip, ':')) {
		struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)ss;

		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = htons(port);
		ck_assert_int_eq(inet_pton(AF_INET6, ip, &sin6->sin6_addr), 1);
		return sizeof(*sin6);
	}
	struct sockaddr_in *sin = (struct sockaddr_in *)ss;

	sin->sin_family = AF_INET;
	sin->sin_port = htons(port);
	ck_assert_int_eq(inet_pton(AF_INET, ip, &sin->sin_addr), 1);
	return sizeof(*sin);
}

int tl_connect_tcp_from(const char *src, const char *ip, uint16_t port)
{
	struct sockaddr_storage ss, from;
	socklen_t len = tl_ip_sockaddr(ip, port, &ss);
	int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0), err;

	if (fd < 0)
		return -1;
	if (src && bind(fd, (struct sockaddr *)&from, tl_ip_sockaddr(src, 0, &from)) < 0)
		goto fail;
	if (connect(fd, (struct sockaddr *)&ss, len) < 0)
		goto fail;
	return fd;
fail:
	err = errno;
	close(fd);
	errno = err;
	return -1;
}

const char *tl_service_conf(const char *listen, unsigned workers, const char *extra)
{
	static char text[4096];

	snprintf(text, sizeof(text),
		 "service a {\n  listen = { %s }\n  handler = \"echo\"\n  workers = %u\n%s}\n",
		 listen, workers, extra);
	return text;
}

int tl_connect_tcp(const char *ip, uint16_t port)
{
	return tl_connect_tcp_from(NULL, ip, port);
}

/* path as a unix socket address ("@name": abstract); its length, 0 if too long. */
static socklen_t unix_sockaddr(const char *path, struct sockaddr_un *sun)
{
	memset(sun, 0, sizeof(*sun));
	sun->sun_family = AF_UNIX;
	/* An abstract name has no NUL at its end: 107 bytes after the '@' fit. */
	if (strlen(path) > sizeof(sun->sun_path) - (path[0] == '@' ? 0 : 1))
		return 0;
	memcpy(sun->sun_path, path, strlen(path));
	if (path[0] != '@')
		return sizeof(*sun);
	sun->sun_path[0] = '\0';	/* abstract, as preforkd writes it */
	return (socklen_t)(offsetof(struct sockaddr_un, sun_path) + strlen(path));
}

int tl_connect_unix_from(const char *src, const char *path)
{
	struct sockaddr_un sun, from;
	socklen_t len = unix_sockaddr(path, &sun), from_len = src ? unix_sockaddr(src, &from) : 0;
	int fd, err;

	if (!len || (src && !from_len)) {
		errno = ENAMETOOLONG;
		return -1;
	}
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	if (src && bind(fd, (struct sockaddr *)&from, from_len) < 0)
		goto fail;
	if (connect(fd, (struct sockaddr *)&sun, len) < 0)
		goto fail;
	return fd;
fail:
	err = errno;
	close(fd);
	errno = err;
	return -1;
}

int tl_connect_unix(const char *path)
{
	return tl_connect_unix_from(NULL, path);
}

static bool echo_once(int fd, const char *msg)
{
	bool ok = fd >= 0 && tl_echo(fd, msg, strlen(msg), 5000);

	if (fd >= 0)
		close(fd);
	return ok;
}

bool tl_echo_tcp(uint16_t port, const char *msg)
{
	return echo_once(tl_connect_tcp("127.0.0.1", port), msg);
}

bool tl_echo_unix(const char *path, const char *msg)
{
	return echo_once(tl_connect_unix(path), msg);
}

/* Everything the peer sends until EOF, within timeout_ms; NULL on timeout. */
char *tl_request_line(int fd, const char *request, int timeout_ms)
{
	char buf[4096];
	size_t len = 0;
	uint64_t deadline = tl_now_ms() + (uint64_t)timeout_ms;

	if (fd < 0)
		return NULL;
	if (send(fd, request, strlen(request), MSG_NOSIGNAL) != (ssize_t)strlen(request)) {
		close(fd);
		return NULL;
	}
	while (len < sizeof(buf) - 1 && !memchr(buf, '\n', len) && tl_now_ms() < deadline) {
		struct pollfd p = { fd, POLLIN, 0 };
		ssize_t n;

		if (poll(&p, 1, 100) <= 0)
			continue;
		n = recv(fd, buf + len, sizeof(buf) - 1 - len, 0);
		if (n <= 0)
			break;
		len += (size_t)n;
	}
	close(fd);
	buf[len] = '\0';
	return memchr(buf, '\n', len) ? strdup(buf) : NULL;
}

char *tl_read_to_eof(int fd, int timeout_ms, bool *reset)
{
	uint64_t deadline = tl_now_ms() + (uint64_t)timeout_ms;
	size_t len = 0, cap = 8192;
	char *buf = malloc(cap);

	ck_assert_ptr_nonnull(buf);
	if (reset)
		*reset = false;
	for (;;) {
		struct pollfd pfd = { .fd = fd, .events = POLLIN };
		ssize_t n;

		if (tl_now_ms() >= deadline) {
			free(buf);
			return NULL;
		}
		if (poll(&pfd, 1, 50) <= 0)
			continue;
		n = recv(fd, buf + len, cap - len - 1, 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && reset)
			*reset = errno == ECONNRESET;
		if (n <= 0)
			break;
		len += (size_t)n;
		if (cap - len < 1024) {
			cap *= 2;
			buf = realloc(buf, cap);
			ck_assert_ptr_nonnull(buf);
		}
	}
	buf[len] = '\0';
	return buf;
}

bool tl_echo(int fd, const void *buf, size_t len, int timeout_ms)
{
	const char *out = buf;
	char *in = malloc(len ? len : 1);
	size_t sent = 0, got = 0;
	uint64_t deadline = tl_now_ms() + (uint64_t)timeout_ms;
	bool ok = false;
	int fl = fcntl(fd, F_GETFL);

	ck_assert_ptr_nonnull(in);
	fcntl(fd, F_SETFL, fl | O_NONBLOCK);
	while (got < len && tl_now_ms() < deadline) {
		struct pollfd pfd = { .fd = fd, .events = POLLIN | (sent < len ? POLLOUT : 0) };
		ssize_t n;

		if (poll(&pfd, 1, 50) <= 0)
			continue;
		if (sent < len && (pfd.revents & POLLOUT)) {
			n = send(fd, out + sent, len - sent > 65536 ? 65536 : len - sent, MSG_NOSIGNAL);
			if (n > 0)
				sent += (size_t)n;
			else if (n < 0 && errno != EAGAIN)
				goto out;
		}
		if (pfd.revents & (POLLIN | POLLHUP | POLLERR)) {
			n = recv(fd, in + got, len - got, 0);
			if (n == 0 || (n < 0 && errno != EAGAIN))
				goto out;
			if (n > 0)
				got += (size_t)n;
		}
	}
	ok = got == len && memcmp(in, out, len) == 0;
out:
	fcntl(fd, F_SETFL, fl);
	free(in);
	return ok;
}

void tl_reader_init(struct tl_reader *r, int fd)
{
	memset(r, 0, sizeof(*r));
	r->fd = fd;
	ck_assert_int_eq(fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK), 0);
	r->cap = 1 << 20;
	r->text = calloc(1, r->cap);
	ck_assert_ptr_nonnull(r->text);
}

bool tl_reader_take(struct tl_reader *r)
{
	for (;;) {
		ssize_t n;

		if (r->cap - r->len < 65536) {
			r->cap *= 2;
			r->text = realloc(r->text, r->cap);
			ck_assert_ptr_nonnull(r->text);
		}
		n = read(r->fd, r->text + r->len, r->cap - r->len - 1);
		if (n > 0)
			r->len += (size_t)n;
		r->text[r->len] = '\0';
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return n < 0 && errno == EAGAIN;
	}
}

void tl_reader_free(struct tl_reader *r)
{
	free(r->text);
	r->text = NULL;
}

long tl_cpu_ms(pid_t pid)
{
	char path[64], *text, *p;
	unsigned long utime, stime;
	long ticks = sysconf(_SC_CLK_TCK);

	snprintf(path, sizeof(path), "/proc/%ld/stat", (long)pid);
	text = tl_read_file(path);
	p = strrchr(text, ')');	/* comm may contain spaces */
	if (!p || sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu",
			  &utime, &stime) != 2) {
		free(text);
		return -1;
	}
	free(text);
	return (long)((utime + stime) * 1000 / (unsigned long)ticks);
}

static unsigned long listen_inode_in(const char *table, uint16_t port)
{
	char *text = tl_read_file(table), *line = text;
	unsigned long inode = 0;

	/* "sl local rem st ... inode": st 0A is LISTEN. */
	while ((line = strchr(line, '\n')) && !inode) {
		unsigned lport, st;
		unsigned long ino;

		line++;
		if (sscanf(line, "%*d: %*[0-9A-Fa-f]:%x %*[0-9A-Fa-f]:%*x %x %*s %*s %*s %*d %*d %lu",
			   &lport, &st, &ino) == 3 && lport == port && st == 0x0A)
			inode = ino;
	}
	free(text);
	return inode;
}

unsigned long tl_listen_inode(uint16_t port)
{
	unsigned long inode = listen_inode_in("/proc/net/tcp", port);

	return inode ? inode : listen_inode_in("/proc/net/tcp6", port);
}

long tl_fd_flags(pid_t pid, int fd)
{
	char path[64], *text, *p;
	long flags = -1;

	snprintf(path, sizeof(path), "/proc/%ld/fdinfo/%d", (long)pid, fd);
	text = tl_read_file(path);
	p = strstr(text, "flags:");
	if (p)
		flags = strtol(p + 6, NULL, 8);
	free(text);
	return flags;
}

void tl_raise_nofile(void)
{
	struct rlimit rl;

	ck_assert_int_eq(getrlimit(RLIMIT_NOFILE, &rl), 0);
	rl.rlim_cur = rl.rlim_max;
	ck_assert_int_eq(setrlimit(RLIMIT_NOFILE, &rl), 0);
}

bool tl_ipv6_loopback(void)
{
	struct sockaddr_in6 sin6 = { .sin6_family = AF_INET6, .sin6_addr = IN6ADDR_LOOPBACK_INIT };
	int fd = socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0);
	bool ok = fd >= 0 && bind(fd, (struct sockaddr *)&sin6, sizeof(sin6)) == 0;

	if (fd >= 0)
		close(fd);
	return ok;
}

size_t tl_children(pid_t pid, pid_t *pids, size_t max)
{
	char path[64], *text, *p, *end;
	size_t n = 0;

	snprintf(path, sizeof(path), "/proc/%ld/task/%ld/children", (long)pid, (long)pid);
	text = tl_read_file(path);
	for (p = text; n < max; p = end) {
		long v = strtol(p, &end, 10);

		if (end == p)
			break;
		pids[n++] = (pid_t)v;
	}
	free(text);
	return n;
}

/* A zombie still answers kill(pid, 0): read its state. */
static bool process_gone(pid_t pid)
{
	char path[64], *text, *state;
	bool gone;

	if (waitpid(pid, NULL, WNOHANG) == pid)
		return true;	/* ours (a subreaper's): reaped now */
	snprintf(path, sizeof(path), "/proc/%ld/stat", (long)pid);
	text = tl_read_file(path);
	state = strrchr(text, ')');
	gone = !state || (state[1] == ' ' && (state[2] == 'Z' || state[2] == 'X'));
	free(text);
	return gone;
}

bool tl_wait_gone(pid_t pid, int timeout_ms)
{
	uint64_t deadline = tl_now_ms() + (uint64_t)timeout_ms;

	while (!process_gone(pid)) {
		if (tl_now_ms() >= deadline)
			return false;
		sleep_ms(5);
	}
	return true;
}

bool tl_udp_bindable(const char *ip, uint16_t port)
{
	struct sockaddr_storage ss;
	socklen_t len = tl_ip_sockaddr(ip, port, &ss);
	int fd = socket(ss.ss_family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	bool ok;

	ck_assert_int_ge(fd, 0);
	ok = bind(fd, (struct sockaddr *)&ss, len) == 0;	/* no SO_REUSEADDR: exclusive */
	close(fd);
	return ok;
}

bool tl_http_get_ok(int fd, int timeout_ms)
{
	static const char get[] = "GET / HTTP/1.0\r\nHost: preforkd-test\r\n\r\n";
	char *reply = NULL;
	bool ok;

	if (send(fd, get, sizeof(get) - 1, MSG_NOSIGNAL) == (ssize_t)sizeof(get) - 1)
		reply = tl_read_to_eof(fd, timeout_ms, NULL);
	ok = reply && (strncmp(reply, "HTTP/1.0 200 ", 13) == 0 ||
		       strncmp(reply, "HTTP/1.1 200 ", 13) == 0);
	free(reply);
	close(fd);
	return ok;
}

static void *load_run(void *arg)
{
	struct tl_load *l = arg;
	uint64_t deadline = tl_now_ms() + TL_LOAD_MAX_MS;

	for (unsigned i = 0; i < TL_LOAD_MAX && !atomic_load(l->stop) && tl_now_ms() < deadline;
	     i++) {
		char msg[17];
		int fd = l->unix_path ? tl_connect_unix(l->unix_path) :
					tl_connect_tcp("127.0.0.1", l->port);

		if (fd < 0) {
			l->connect_failed++;
			l->last_errno = errno;
			continue;
		}
		snprintf(msg, sizeof(msg), "%016u", i);
		if (l->http ? tl_http_get_ok(fd, 5000) : tl_echo(fd, msg, 16, 5000))
			l->ok++;
		else
			l->echo_failed++;
		if (!l->http)
			close(fd);
	}
	return NULL;
}

void tl_load_start(struct tl_load *l)
{
	/* Its own copy: a path from daemon_path() is overwritten by the next call. */
	if (l->unix_path)
		ck_assert_ptr_nonnull(l->unix_path = strdup(l->unix_path));
	ck_assert_int_eq(pthread_create(&l->thread, NULL, load_run, l), 0);
}

void tl_load_join(struct tl_load *l)
{
	pthread_join(l->thread, NULL);
	free((char *)l->unix_path);
	l->unix_path = NULL;
}

unsigned tl_loads_finish(struct tl_load *loads, size_t n)
{
	unsigned total = 0;

	for (size_t i = 0; i < n; i++)
		atomic_store(loads[i].stop, true);
	for (size_t i = 0; i < n; i++) {
		const char *kind = loads[i].unix_path ? "unix" : "tcp";

		tl_load_join(&loads[i]);
		total += loads[i].ok;
		ck_assert_msg(loads[i].connect_failed == 0 && loads[i].echo_failed == 0,
			      "%s client: %u connects failed (last: %s), %u exchanges failed",
			      kind, loads[i].connect_failed,
			      strerror(loads[i].last_errno), loads[i].echo_failed);
	}
	return total;
}

bool tl_has_line(const char *text, const char *line)
{
	size_t len = strlen(line);

	for (const char *p = text; (p = strstr(p, line)); p += len)
		if ((p == text || p[-1] == '\n') && (p[len] == '\n' || p[len] == '\0'))
			return true;
	return false;
}
