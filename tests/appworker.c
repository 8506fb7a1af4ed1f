/* SPDX-License-Identifier: ISC */
/* appworker.c - a test app worker: serves the sockets systemd's protocol hands it, speaks sd_notify, misbehaves on request. */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <systemd/sd-daemon.h>

#define MS_MAX		INT_MAX
#define FLOOD_MAX	(1ULL << 50)
#define FLOOD_LINE	100		/* 99 'x' and a newline */
#define FLOOD_CHUNK	(64 * 1024)
#define SEND_TIMEOUT_MS	1000
#define ACCEPT_BATCH	64
#define DGRAM_BATCH	64
#define ACCEPT_PAUSE_US	(100 * 1000)
#define NO_DEADLINE	INT64_MIN

struct opts {
	long long ready_delay_ms;
	bool no_ready;
	const char *status;
	int exit_at_start;		/* -1: no */
	long long crash_after_ms;	/* -1: no */
	long long hang_after_ms;	/* -1: no */
	bool watchdog;
	bool ignore_stop;
	int stop_signal;
	long long linger_ms;
	const char *say;
	bool priority_line;
	unsigned long long flood;
	const char *dump_env;
	const char *notify_extra;
	const char *fail_if_exists;	/* exit 3 at start while this path exists */
	long long grow_mb;		/* after READY: this much memory, touched */
	long long grow_worker;		/* only as PREFORKD_WORKER this; -1: any */
	const char *grow_once;		/* only if this file can be made (O_EXCL) */
};

enum source_kind {
	SOURCE_SIGNAL,
	SOURCE_LISTENER,	/* SOCK_STREAM or SOCK_SEQPACKET, listening */
	SOURCE_DGRAM,
	SOURCE_CONN,
};

struct source {
	enum source_kind kind;
	int fd;			/* -1 once closed */
};

struct app {
	const struct opts *o;
	int epfd;
	struct source sig;	/* fd -1 when the stop signal is ignored */
	struct source *socks;	/* the inherited listeners and datagram sockets */
	int nsocks;
	unsigned nconns;
	bool serving, stopping, socks_closed, accept_paused;
	bool accept_failing;	/* warned already, until an accept succeeds */
	int64_t ready_at, crash_at, hang_at, linger_at, watchdog_at, accept_resume_at;
	int64_t watchdog_interval;
};

static const struct {
	const char *name;
	int signo;
} stop_signals[] = {
	{ "TERM", SIGTERM }, { "QUIT", SIGQUIT }, { "INT", SIGINT }, { "HUP", SIGHUP },
	{ "USR1", SIGUSR1 }, { "USR2", SIGUSR2 }, { "WINCH", SIGWINCH },
};

static void warnmsg(int err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void fatal(int err, const char *fmt, ...) __attribute__((format(printf, 2, 3), noreturn));

static void vwarnmsg(int err, const char *fmt, va_list ap)
{
	char msg[512];

	vsnprintf(msg, sizeof(msg), fmt, ap);
	if (err)
		dprintf(STDERR_FILENO, "appworker: %s: %s\n", msg, strerror(err));
	else
		dprintf(STDERR_FILENO, "appworker: %s\n", msg);
}

static void warnmsg(int err, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vwarnmsg(err, fmt, ap);
	va_end(ap);
}

static void fatal(int err, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vwarnmsg(err, fmt, ap);
	va_end(ap);
	exit(1);
}

static int64_t now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static void usage(FILE *out)
{
	fprintf(out,
		"Usage: appworker [options]\n"
		"A test app worker for preforkd: serves LISTEN_FDS sockets, speaks sd_notify.\n"
		"\n"
		"  --ready-delay=MS       send READY=1 MS ms after start, not serving meanwhile (0)\n"
		"  --no-ready             never send READY=1 (still serve)\n"
		"  --status=TEXT          send STATUS=TEXT right after READY=1\n"
		"  --exit-at-start=CODE   exit with CODE right after reading the fds\n"
		"  --crash-after=MS       abort() MS ms after READY\n"
		"  --hang-after=MS        stop serving and notifying MS ms after READY, pause forever\n"
		"  --watchdog             send WATCHDOG=1 every WATCHDOG_USEC/3 if the watchdog is on\n"
		"  --ignore-stop          ignore SIGTERM and the stop signal\n"
		"  --stop-signal=NAME     graceful stop signal: TERM QUIT INT HUP USR1 USR2 WINCH (TERM)\n"
		"  --linger-ms=MS         on the stop signal, keep the listeners MS ms longer (0)\n"
		"  --say=TEXT             write \"TEXT (stdout)\" to stdout, \"TEXT (stderr)\" to stderr\n"
		"  --priority-line        write \"<3>an error line\" to stderr\n"
		"  --flood=BYTES          after READY, write BYTES bytes of 'x' lines to stdout\n"
		"  --dump-env=FILE        write pid, open fds and the environment to FILE\n"
		"  --notify-extra=TEXT    send TEXT as a notification before READY\n"
		"  --fail-if-exists=PATH  exit 3 at start while PATH exists\n"
		"  --grow-mb=N            after READY, allocate and touch N MiB\n"
		"  --grow-worker=I        ... only as worker I (PREFORKD_WORKER)\n"
		"  --grow-once=PATH       ... only if PATH can be created (once in all)\n"
		"  -h, --help             print this help and exit\n"
		"\n"
		"Exit status: 0 stopped gracefully, 1 failure, 2 usage error, 3 no sockets.\n");
}

/* Only plain decimal digits: strtoll would also take a sign or leading blanks. */
static bool parse_num(const char *s, long long max, long long *out)
{
	char *end;
	long long v;

	if (*s < '0' || *s > '9')
		return false;
	errno = 0;
	v = strtoll(s, &end, 10);
	if (errno || *end || v > max)
		return false;
	*out = v;
	return true;
}

static int parse_stop_signal(const char *s)
{
	size_t i;

	if (strncasecmp(s, "SIG", 3) == 0)
		s += 3;
	for (i = 0; i < sizeof(stop_signals) / sizeof(stop_signals[0]); i++)
		if (strcasecmp(s, stop_signals[i].name) == 0)
			return stop_signals[i].signo;
	return -1;
}

enum {
	OPT_READY_DELAY = 256, OPT_NO_READY, OPT_STATUS, OPT_EXIT_AT_START, OPT_CRASH_AFTER,
	OPT_HANG_AFTER, OPT_WATCHDOG, OPT_IGNORE_STOP, OPT_STOP_SIGNAL, OPT_LINGER_MS, OPT_SAY,
	OPT_PRIORITY_LINE, OPT_FLOOD, OPT_DUMP_ENV, OPT_NOTIFY_EXTRA, OPT_FAIL_IF_EXISTS,
	OPT_GROW_MB, OPT_GROW_WORKER, OPT_GROW_ONCE,
};

static const struct option long_options[] = {
	{ "ready-delay", required_argument, NULL, OPT_READY_DELAY },
	{ "no-ready", no_argument, NULL, OPT_NO_READY },
	{ "status", required_argument, NULL, OPT_STATUS },
	{ "exit-at-start", required_argument, NULL, OPT_EXIT_AT_START },
	{ "crash-after", required_argument, NULL, OPT_CRASH_AFTER },
	{ "hang-after", required_argument, NULL, OPT_HANG_AFTER },
	{ "watchdog", no_argument, NULL, OPT_WATCHDOG },
	{ "ignore-stop", no_argument, NULL, OPT_IGNORE_STOP },
	{ "stop-signal", required_argument, NULL, OPT_STOP_SIGNAL },
	{ "linger-ms", required_argument, NULL, OPT_LINGER_MS },
	{ "say", required_argument, NULL, OPT_SAY },
	{ "priority-line", no_argument, NULL, OPT_PRIORITY_LINE },
	{ "flood", required_argument, NULL, OPT_FLOOD },
	{ "dump-env", required_argument, NULL, OPT_DUMP_ENV },
	{ "notify-extra", required_argument, NULL, OPT_NOTIFY_EXTRA },
	{ "fail-if-exists", required_argument, NULL, OPT_FAIL_IF_EXISTS },
	{ "grow-mb", required_argument, NULL, OPT_GROW_MB },
	{ "grow-worker", required_argument, NULL, OPT_GROW_WORKER },
	{ "grow-once", required_argument, NULL, OPT_GROW_ONCE },
	{ "help", no_argument, NULL, 'h' },
	{ NULL, 0, NULL, 0 },
};

static void __attribute__((noreturn)) bad_value(const char *opt, const char *val)
{
	fprintf(stderr, "appworker: invalid value for --%s: '%s'\n", opt, val);
	exit(2);
}

static void opts_parse(struct opts *o, int argc, char **argv)
{
	long long v;
	int c, idx = 0;

	*o = (struct opts){
		.exit_at_start = -1,
		.crash_after_ms = -1,
		.hang_after_ms = -1,
		.stop_signal = SIGTERM,
		.grow_worker = -1,
	};
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":h", long_options, &idx)) != -1) {
		const char *name = c >= 256 ? long_options[idx].name : "";

		switch (c) {
		case OPT_READY_DELAY:
			if (!parse_num(optarg, MS_MAX, &o->ready_delay_ms))
				bad_value(name, optarg);
			break;
		case OPT_NO_READY:
			o->no_ready = true;
			break;
		case OPT_STATUS:
			o->status = optarg;
			break;
		case OPT_EXIT_AT_START:
			if (!parse_num(optarg, 255, &v))
				bad_value(name, optarg);
			o->exit_at_start = (int)v;
			break;
		case OPT_CRASH_AFTER:
			if (!parse_num(optarg, MS_MAX, &o->crash_after_ms))
				bad_value(name, optarg);
			break;
		case OPT_HANG_AFTER:
			if (!parse_num(optarg, MS_MAX, &o->hang_after_ms))
				bad_value(name, optarg);
			break;
		case OPT_WATCHDOG:
			o->watchdog = true;
			break;
		case OPT_IGNORE_STOP:
			o->ignore_stop = true;
			break;
		case OPT_FAIL_IF_EXISTS:
			o->fail_if_exists = optarg;
			break;
		case OPT_GROW_MB:
			if (!parse_num(optarg, 4096, &o->grow_mb))
				bad_value(name, optarg);
			break;
		case OPT_GROW_WORKER:
			if (!parse_num(optarg, 1024, &o->grow_worker))
				bad_value(name, optarg);
			break;
		case OPT_GROW_ONCE:
			o->grow_once = optarg;
			break;
		case OPT_STOP_SIGNAL:
			o->stop_signal = parse_stop_signal(optarg);
			if (o->stop_signal < 0)
				bad_value(name, optarg);
			break;
		case OPT_LINGER_MS:
			if (!parse_num(optarg, MS_MAX, &o->linger_ms))
				bad_value(name, optarg);
			break;
		case OPT_SAY:
			o->say = optarg;
			break;
		case OPT_PRIORITY_LINE:
			o->priority_line = true;
			break;
		case OPT_FLOOD:
			if (!parse_num(optarg, (long long)FLOOD_MAX, &v))
				bad_value(name, optarg);
			o->flood = (unsigned long long)v;
			break;
		case OPT_DUMP_ENV:
			o->dump_env = optarg;
			break;
		case OPT_NOTIFY_EXTRA:
			o->notify_extra = optarg;
			break;
		case 'h':
			usage(stdout);
			exit(0);
		case ':':
			fprintf(stderr, "appworker: option '%s' needs a value\n", argv[optind - 1]);
			exit(2);
		default:
			/* optopt: 0 for an unknown long option, the option's val for
			 * "--no-ready=x", the letter for an unknown short one */
			if (optopt > 0 && optopt < 256)
				fprintf(stderr, "appworker: unknown option '-%c'\n", optopt);
			else if (optopt)
				fprintf(stderr, "appworker: option '%s' takes no value\n", argv[optind - 1]);
			else
				fprintf(stderr, "appworker: unknown option '%s'\n", argv[optind - 1]);
			exit(2);
		}
	}
	if (optind < argc) {
		fprintf(stderr, "appworker: unexpected argument '%s'\n", argv[optind]);
		exit(2);
	}
}

/* Blocks (in poll) while fd is non-blocking and full: the flood and --say want
 * every byte written, however slow the reader. */
static int write_all(int fd, const char *p, size_t len)
{
	struct pollfd pfd = { .fd = fd, .events = POLLOUT };

	while (len > 0) {
		ssize_t n = write(fd, p, len);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN || errno == EWOULDBLOCK) {
				if (poll(&pfd, 1, -1) < 0 && errno != EINTR)
					return -1;
				continue;
			}
			return -1;
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

/* One write per line, so lines from stdout and stderr do not interleave mid-line. */
static void write_line(int fd, const char *text, const char *suffix)
{
	size_t len = strlen(text) + strlen(suffix) + 2;
	char *buf = malloc(len);

	if (!buf)
		fatal(ENOMEM, "malloc");
	snprintf(buf, len, "%s%s\n", text, suffix);
	write_all(fd, buf, strlen(buf));
	free(buf);
}

static void notify(const char *text)
{
	int r = sd_notify(0, text);

	if (r < 0)
		warnmsg(-r, "sd_notify %.*s", (int)strcspn(text, "\n"), text);
}

static int cmp_int(const void *a, const void *b)
{
	int x = *(const int *)a, y = *(const int *)b;

	return (x > y) - (x < y);
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Lists the open descriptors, excluding the one reading the directory. */
static int *list_fds(size_t *count)
{
	int dfd = open("/proc/self/fd", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	size_t n = 0, cap = 16;
	int *fds = malloc(cap * sizeof(*fds));
	struct dirent *de;
	DIR *d;

	if (!fds)
		fatal(ENOMEM, "malloc");
	if (dfd < 0)
		fatal(errno, "open /proc/self/fd");
	d = fdopendir(dfd);
	if (!d)
		fatal(errno, "fdopendir /proc/self/fd");
	while ((de = readdir(d))) {
		long long fd;

		if (!parse_num(de->d_name, INT_MAX, &fd) || fd == dfd)
			continue;
		if (n == cap) {
			cap *= 2;
			fds = realloc(fds, cap * sizeof(*fds));
			if (!fds)
				fatal(ENOMEM, "realloc");
		}
		fds[n++] = (int)fd;
	}
	closedir(d);
	qsort(fds, n, sizeof(*fds), cmp_int);
	*count = n;
	return fds;
}

/* Written to FILE.tmp and renamed, so a test polling for FILE never reads half of it. */
static void dump_env(const char *path)
{
	size_t nfds, nenv = 0, i;
	int *fds = list_fds(&nfds);
	char **env, *tmp;
	FILE *f;
	int fd;

	while (environ[nenv])
		nenv++;
	env = malloc((nenv + 1) * sizeof(*env));
	if (!env || asprintf(&tmp, "%s.tmp", path) < 0)
		fatal(ENOMEM, "malloc");
	memcpy(env, environ, nenv * sizeof(*env));
	qsort(env, nenv, sizeof(*env), cmp_str);

	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		fatal(errno, "open %s", tmp);
	if (fchmod(fd, 0644) < 0)
		fatal(errno, "fchmod %s", tmp);
	f = fdopen(fd, "w");
	if (!f)
		fatal(errno, "fdopen %s", tmp);
	fprintf(f, "pid=%d\nfds=", (int)getpid());
	for (i = 0; i < nfds; i++)
		fprintf(f, "%s%d", i ? "," : "", fds[i]);
	fputc('\n', f);
	for (i = 0; i < nenv; i++)
		fprintf(f, "%s\n", env[i]);
	if (fflush(f) != 0 || ferror(f))
		fatal(errno, "write %s", tmp);
	if (fclose(f) != 0)
		fatal(errno, "close %s", tmp);
	if (rename(tmp, path) < 0)
		fatal(errno, "rename %s to %s", tmp, path);
	free(tmp);
	free(env);
	free(fds);
}

static void set_disposition(int signo, void (*handler)(int))
{
	struct sigaction sa = { .sa_handler = handler };

	sigemptyset(&sa.sa_mask);
	if (sigaction(signo, &sa, NULL) < 0)
		fatal(errno, "sigaction %d", signo);
}

/* The mask is set outright: a signal blocked by whoever started us must not
 * keep SIGTERM from killing us.  The stop signal stays blocked for the
 * signalfd; it is queued until then, even while --dump-env runs. */
static void signals_setup(const struct opts *o, sigset_t *stopset)
{
	sigemptyset(stopset);
	set_disposition(SIGPIPE, SIG_IGN);
	if (o->ignore_stop) {
		set_disposition(SIGTERM, SIG_IGN);
		set_disposition(o->stop_signal, SIG_IGN);
	} else {
		set_disposition(SIGTERM, SIG_DFL);
		set_disposition(o->stop_signal, SIG_DFL);
		sigaddset(stopset, o->stop_signal);
	}
	if (sigprocmask(SIG_SETMASK, stopset, NULL) < 0)
		fatal(errno, "sigprocmask");
}

static void flood_stdout(unsigned long long bytes)
{
	/* Writing from offset (done % FLOOD_LINE) keeps the lines whole across chunks. */
	static char pattern[FLOOD_CHUNK + FLOOD_LINE];
	unsigned long long done = 0;
	size_t i;

	for (i = 0; i < sizeof(pattern); i++)
		pattern[i] = i % FLOOD_LINE == FLOOD_LINE - 1 ? '\n' : 'x';
	while (done < bytes) {
		size_t off = done % FLOOD_LINE;
		size_t len = bytes - done < FLOOD_CHUNK ? (size_t)(bytes - done) : FLOOD_CHUNK;

		if (write_all(STDOUT_FILENO, pattern + off, len) < 0) {
			warnmsg(errno, "flood: write stdout after %llu bytes", done);
			return;
		}
		done += len;
	}
}

static void epoll_add(struct app *a, struct source *s)
{
	struct epoll_event ev = { .events = EPOLLIN, .data.ptr = s };

	if (epoll_ctl(a->epfd, EPOLL_CTL_ADD, s->fd, &ev) < 0)
		fatal(errno, "epoll_ctl add fd %d", s->fd);
}

static void conn_add(struct app *a, int fd)
{
	struct source *c = malloc(sizeof(*c));
	struct epoll_event ev = { .events = EPOLLIN };

	if (!c) {
		warnmsg(ENOMEM, "malloc");
		close(fd);
		return;
	}
	*c = (struct source){ .kind = SOURCE_CONN, .fd = fd };
	ev.data.ptr = c;
	if (epoll_ctl(a->epfd, EPOLL_CTL_ADD, fd, &ev) < 0) {
		warnmsg(errno, "epoll_ctl add connection fd %d", fd);
		close(fd);
		free(c);
		return;
	}
	a->nconns++;
}

static void conn_close(struct app *a, struct source *c)
{
	epoll_ctl(a->epfd, EPOLL_CTL_DEL, c->fd, NULL);
	close(c->fd);
	free(c);
	a->nconns--;
}

/* MSG_DONTWAIT and a poll with a deadline: a client that stops reading costs
 * the loop at most SEND_TIMEOUT_MS, then loses its connection. */
static int conn_send(int fd, const char *p, size_t len)
{
	int64_t deadline = now_us() + SEND_TIMEOUT_MS * 1000LL;
	struct pollfd pfd = { .fd = fd, .events = POLLOUT };

	while (len > 0) {
		ssize_t n = send(fd, p, len, MSG_DONTWAIT | MSG_NOSIGNAL);
		int64_t left;

		if (n >= 0) {
			p += n;
			len -= (size_t)n;
			continue;
		}
		if (errno == EINTR)
			continue;
		if (errno != EAGAIN && errno != EWOULDBLOCK)
			return -1;
		left = deadline - now_us();
		if (left <= 0)
			return -1;
		if (poll(&pfd, 1, (int)((left + 999) / 1000)) < 0 && errno != EINTR)
			return -1;
	}
	return 0;
}

static const char *env_or_dash(const char *name)
{
	const char *v = getenv(name);

	return v ? v : "-";
}

static void conn_readable(struct app *a, struct source *c)
{
	static char buf[16384];
	char who[1024];
	ssize_t n = recv(c->fd, buf, sizeof(buf), MSG_DONTWAIT);
	int r;

	if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
		return;
	if (n <= 0) {
		conn_close(a, c);
		return;
	}
	if (n == 4 && memcmp(buf, "who\n", 4) == 0) {
		snprintf(who, sizeof(who), "pid=%d gen=%s worker=%s service=%s\n", (int)getpid(),
			 env_or_dash("PREFORKD_GENERATION"), env_or_dash("PREFORKD_WORKER"),
			 env_or_dash("PREFORKD_SERVICE"));
		r = conn_send(c->fd, who, strlen(who));
	} else {
		r = conn_send(c->fd, buf, (size_t)n);
	}
	if (r < 0)
		conn_close(a, c);
}

static void listeners_set_events(struct app *a, uint32_t events)
{
	int i;

	for (i = 0; i < a->nsocks; i++) {
		struct source *s = &a->socks[i];
		struct epoll_event ev = { .events = events, .data.ptr = s };

		if (s->kind == SOURCE_LISTENER && s->fd >= 0)
			epoll_ctl(a->epfd, EPOLL_CTL_MOD, s->fd, &ev);
	}
}

/* Out of descriptors or memory: the listener stays readable, so stop
 * watching it for a moment instead of spinning on accept. */
static void accept_pause(struct app *a)
{
	if (a->accept_paused)
		return;
	listeners_set_events(a, 0);
	a->accept_paused = true;
	a->accept_resume_at = now_us() + ACCEPT_PAUSE_US;
}

static void listener_readable(struct app *a, struct source *l)
{
	int i, fd;

	for (i = 0; i < ACCEPT_BATCH; i++) {
		fd = accept4(l->fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
		if (fd >= 0) {
			a->accept_failing = false;
			conn_add(a, fd);
			continue;
		}
		switch (errno) {
		case EAGAIN:
#if EWOULDBLOCK != EAGAIN
		case EWOULDBLOCK:
#endif
			return;
		/* a connection that died in the queue, or a pending network error */
		case EINTR:
		case ECONNABORTED:
		case EPROTO:
		case ENETDOWN:
		case ENOPROTOOPT:
		case EHOSTDOWN:
		case ENONET:
		case EHOSTUNREACH:
		case EOPNOTSUPP:
		case ENETUNREACH:
			continue;
		default:
			if (!a->accept_failing)
				warnmsg(errno, "accept4 fd %d", l->fd);
			a->accept_failing = true;
			accept_pause(a);
			return;
		}
	}
}

static void dgram_readable(struct source *s)
{
	static char buf[65536];
	int i;

	for (i = 0; i < DGRAM_BATCH; i++) {
		struct sockaddr_storage ss;
		socklen_t sl = sizeof(ss);
		ssize_t n = recvfrom(s->fd, buf, sizeof(buf), MSG_DONTWAIT, (struct sockaddr *)&ss, &sl);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return;
		}
		sendto(s->fd, buf, (size_t)n, MSG_DONTWAIT | MSG_NOSIGNAL, (struct sockaddr *)&ss, sl);
	}
}

static void socks_close(struct app *a)
{
	int i;

	for (i = 0; i < a->nsocks; i++) {
		struct source *s = &a->socks[i];

		if (s->fd < 0)
			continue;
		if (a->serving)
			epoll_ctl(a->epfd, EPOLL_CTL_DEL, s->fd, NULL);
		close(s->fd);
		s->fd = -1;
	}
	a->socks_closed = true;
	a->linger_at = NO_DEADLINE;
	a->accept_resume_at = NO_DEADLINE;
}

static void stop_begin(struct app *a)
{
	if (a->stopping)
		return;
	a->stopping = true;
	/* not ready yet: it stays that way; --crash-after and --hang-after still apply */
	a->ready_at = NO_DEADLINE;
	notify("STOPPING=1");
	if (a->o->linger_ms > 0)
		a->linger_at = now_us() + a->o->linger_ms * 1000;
	else
		socks_close(a);
}

static void signal_readable(struct app *a)
{
	struct signalfd_siginfo si;
	ssize_t n;

	while ((n = read(a->sig.fd, &si, sizeof(si))) == (ssize_t)sizeof(si))
		if ((int)si.ssi_signo == a->o->stop_signal)
			stop_begin(a);
	if (n < 0 && errno != EAGAIN && errno != EINTR)
		fatal(errno, "read signalfd");
}

static void __attribute__((noreturn)) crash(void)
{
	struct rlimit rl = { 0, 0 };

	/* no core files in the test directory */
	setrlimit(RLIMIT_CORE, &rl);
	abort();
}

/* Signals go back to their dispositions so SIGTERM kills (unless ignored). */
static void __attribute__((noreturn)) hang(void)
{
	sigset_t none;

	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	for (;;)
		pause();
}

/* Memory that counts (touched), for max-memory. */
static void grow(const struct opts *o)
{
	static char *held;	/* reachable: a leak checker must not mind it */
	const char *me = getenv("PREFORKD_WORKER");
	size_t len = (size_t)o->grow_mb << 20;
	int fd;

	if (!o->grow_mb || (o->grow_worker >= 0 && (!me || atoll(me) != o->grow_worker)))
		return;
	if (o->grow_once) {
		fd = open(o->grow_once, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
		if (fd < 0)
			return;
		close(fd);
	}
	held = malloc(len);
	if (!held)
		fatal(ENOMEM, "malloc %zu", len);
	memset(held, 1, len);
}

static void become_ready(struct app *a)
{
	const struct opts *o = a->o;
	uint64_t usec = 0;
	int64_t now = now_us();
	int i;

	if (!o->no_ready)
		notify("READY=1\nSTATUS=serving");
	grow(o);
	if (o->status) {
		char *text;

		if (asprintf(&text, "STATUS=%s", o->status) < 0)
			fatal(ENOMEM, "asprintf");
		notify(text);
		free(text);
	}
	if (o->watchdog && sd_watchdog_enabled(0, &usec) > 0) {
		a->watchdog_interval = usec / 3 > 0 ? (int64_t)(usec / 3) : 1;
		a->watchdog_at = now;
	}
	if (o->crash_after_ms >= 0)
		a->crash_at = now + o->crash_after_ms * 1000;
	if (o->hang_after_ms >= 0)
		a->hang_at = now + o->hang_after_ms * 1000;
	a->ready_at = NO_DEADLINE;

	if (o->flood)
		flood_stdout(o->flood);

	for (i = 0; i < a->nsocks; i++)
		epoll_add(a, &a->socks[i]);
	a->serving = true;
}

/* Whatever is due now, in the order a test would expect it. */
static void timers_run(struct app *a)
{
	int64_t now = now_us();

	if (a->ready_at != NO_DEADLINE && now >= a->ready_at)
		become_ready(a);
	now = now_us();
	if (a->crash_at != NO_DEADLINE && now >= a->crash_at)
		crash();
	if (a->hang_at != NO_DEADLINE && now >= a->hang_at)
		hang();
	if (a->linger_at != NO_DEADLINE && now >= a->linger_at)
		socks_close(a);
	if (a->accept_resume_at != NO_DEADLINE && now >= a->accept_resume_at) {
		listeners_set_events(a, EPOLLIN);
		a->accept_paused = false;
		a->accept_resume_at = NO_DEADLINE;
	}
	if (a->watchdog_at != NO_DEADLINE && now >= a->watchdog_at) {
		notify("WATCHDOG=1");
		a->watchdog_at = now + a->watchdog_interval;
	}
}

static int timers_timeout_ms(const struct app *a)
{
	const int64_t deadlines[] = { a->ready_at, a->crash_at, a->hang_at, a->linger_at,
				      a->accept_resume_at, a->watchdog_at };
	int64_t next = NO_DEADLINE, now, ms;
	size_t i;

	for (i = 0; i < sizeof(deadlines) / sizeof(deadlines[0]); i++)
		if (deadlines[i] != NO_DEADLINE && (next == NO_DEADLINE || deadlines[i] < next))
			next = deadlines[i];
	if (next == NO_DEADLINE)
		return -1;
	now = now_us();
	if (next <= now)
		return 0;
	ms = (next - now + 999) / 1000;
	return ms > INT_MAX ? INT_MAX : (int)ms;
}

static void socks_classify(struct app *a, int n)
{
	int i;

	a->socks = calloc((size_t)n, sizeof(*a->socks));
	if (!a->socks)
		fatal(ENOMEM, "calloc");
	for (i = 0; i < n; i++) {
		int fd = SD_LISTEN_FDS_START + i, type, listening = 0, fl;
		socklen_t len = sizeof(type);

		if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) < 0) {
			warnmsg(errno, "fd %d: getsockopt SO_TYPE, ignored", fd);
			close(fd);
			continue;
		}
		len = sizeof(listening);
		if (type == SOCK_DGRAM) {
			a->socks[a->nsocks++] = (struct source){ .kind = SOURCE_DGRAM, .fd = fd };
		} else if (type != SOCK_STREAM && type != SOCK_SEQPACKET) {
			warnmsg(0, "fd %d: socket type %d, ignored", fd, type);
			close(fd);
		} else if (getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &listening, &len) == 0 &&
			   !listening) {
			/* an Accept=yes style connection: serve it like an accepted one */
			conn_add(a, fd);
		} else {
			/* accept4 must not block when another worker took the connection */
			fl = fcntl(fd, F_GETFL);
			if (fl < 0 || (!(fl & O_NONBLOCK) && fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0))
				fatal(errno, "fd %d: fcntl O_NONBLOCK", fd);
			a->socks[a->nsocks++] = (struct source){ .kind = SOURCE_LISTENER, .fd = fd };
		}
	}
}

int main(int argc, char **argv)
{
	struct epoll_event evs[64];
	struct opts o;
	struct app a = {
		.o = &o,
		.sig = { .kind = SOURCE_SIGNAL, .fd = -1 },
		.ready_at = NO_DEADLINE, .crash_at = NO_DEADLINE, .hang_at = NO_DEADLINE,
		.linger_at = NO_DEADLINE, .watchdog_at = NO_DEADLINE,
		.accept_resume_at = NO_DEADLINE,
	};
	sigset_t stopset;
	int64_t start;
	int nfds, n, i;

	opts_parse(&o, argc, argv);
	start = now_us();
	nfds = sd_listen_fds(0);
	if (nfds <= 0) {
		fprintf(stderr, "appworker: no listening sockets (LISTEN_FDS/LISTEN_PID)\n");
		exit(3);
	}
	if (o.exit_at_start >= 0)
		exit(o.exit_at_start);
	if (o.fail_if_exists && access(o.fail_if_exists, F_OK) == 0) {
		fprintf(stderr, "appworker: %s exists: failing at start\n", o.fail_if_exists);
		exit(3);
	}
	signals_setup(&o, &stopset);

	if (o.say) {
		write_line(STDOUT_FILENO, o.say, " (stdout)");
		write_line(STDERR_FILENO, o.say, " (stderr)");
	}
	if (o.priority_line)
		write_line(STDERR_FILENO, "<3>an error line", "");
	/* before any descriptor of our own exists, so fds= shows what we inherited */
	if (o.dump_env)
		dump_env(o.dump_env);
	if (o.notify_extra)
		notify(o.notify_extra);

	a.epfd = epoll_create1(EPOLL_CLOEXEC);
	if (a.epfd < 0)
		fatal(errno, "epoll_create1");
	if (!o.ignore_stop) {
		a.sig.fd = signalfd(-1, &stopset, SFD_CLOEXEC | SFD_NONBLOCK);
		if (a.sig.fd < 0)
			fatal(errno, "signalfd");
		epoll_add(&a, &a.sig);
	}
	socks_classify(&a, nfds);
	/* the sockets join the epoll set only once ready: no accepting during the delay */
	a.ready_at = start + o.ready_delay_ms * 1000;

	for (;;) {
		timers_run(&a);
		if (a.stopping && a.socks_closed && a.nconns == 0)
			break;
		n = epoll_wait(a.epfd, evs, sizeof(evs) / sizeof(evs[0]), timers_timeout_ms(&a));
		if (n < 0) {
			if (errno == EINTR)
				continue;
			fatal(errno, "epoll_wait");
		}
		for (i = 0; i < n; i++) {
			struct source *s = evs[i].data.ptr;

			switch (s->kind) {
			case SOURCE_SIGNAL:
				signal_readable(&a);
				break;
			case SOURCE_LISTENER:
				if (s->fd >= 0)
					listener_readable(&a, s);
				break;
			case SOURCE_DGRAM:
				if (s->fd >= 0)
					dgram_readable(s);
				break;
			case SOURCE_CONN:
				conn_readable(&a, s);
				break;
			}
		}
	}
	free(a.socks);
	return 0;
}
