/* SPDX-License-Identifier: ISC */
/* log.c - formats, escapes and writes every log line of master and workers to stderr, never waiting for it. */
#include "config.h"

#include "common/log.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "common/clock.h"
#include "common/escape.h"

#define LOG_LINE_MAX 1024	/* bytes of a line, its '\n' included */
#define LOG_QUEUE_MAX 65536	/* bytes of whole lines waiting for stderr, per process */
#define LOG_RETRY_MS 50		/* between attempts while lines wait */
#define LOG_DRAIN_POLL_MS 10	/* between attempts at exit */

static int log_level = LOG_INFO;
static bool log_to_journal;
static bool log_to_socket;	/* stderr is a socket: send(), which can be told not to wait */
static char log_role[48];

/* Lines stderr did not take at once, in order, each ending in its only '\n'
 * (escaping leaves no other), so a line is found by its end. */
static struct {
	char buf[LOG_QUEUE_MAX];
	size_t head, len;	/* waiting: buf[head .. head + len) */
	uint64_t retry_at;	/* monotonic ms of the next attempt while lines wait */
	unsigned long dropped;	/* lines lost since the last report */
	int dropped_level;	/* the most severe of them */
} queue;

static const char *const level_names[] = {
	[LOG_ERR] = "error", [LOG_WARNING] = "warning", [LOG_NOTICE] = "notice",
	[LOG_INFO] = "info", [LOG_DEBUG] = "debug",
};

/* systemd sets JOURNAL_STREAM to the dev:ino of the stream it connected to our
 * stderr; only when they match is stderr really the journal (a shell redirect
 * inherits the variable but not the stream). */
static bool stderr_is_journal(void)
{
	const char *env = getenv("JOURNAL_STREAM");
	unsigned long long dev, ino;
	struct stat st;

	if (!env || sscanf(env, "%llu:%llu", &dev, &ino) != 2)
		return false;
	if (fstat(STDERR_FILENO, &st) < 0)
		return false;
	return st.st_dev == dev && st.st_ino == ino;
}

/* Our own open file description of the pipe or terminal on stderr, made
 * non-blocking: setting O_NONBLOCK on the inherited one would change it for
 * whoever shares it too (the shell that started us, after we exit). */
static void stderr_reopen_nonblocking(void)
{
	int fd = open("/proc/self/fd/2", O_WRONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY), err;

	/* dup2() leaves fd 2 inheritable, as stderr must be. */
	if (fd >= 0 && dup2(fd, STDERR_FILENO) == STDERR_FILENO) {
		close(fd);
		return;
	}
	err = errno;
	if (fd >= 0)
		close(fd);
	log_errno(LOG_WARNING, err, "open /proc/self/fd/2 non-blocking: log lines may block "
		  "when stderr is not read");
}

static void queue_reset(void)
{
	queue.head = queue.len = 0;
	queue.retry_at = 0;
	queue.dropped = 0;
}

void log_init(void)
{
	struct stat st;

	log_to_journal = stderr_is_journal();
	log_to_socket = false;
	queue_reset();
	if (fstat(STDERR_FILENO, &st) < 0)
		return;
	/* A regular file takes plain write()s: it does not stall, and the
	 * offset we share with our workers keeps lines from overwriting. */
	if (S_ISSOCK(st.st_mode))
		log_to_socket = true;
	else if (S_ISFIFO(st.st_mode) || S_ISCHR(st.st_mode))
		stderr_reopen_nonblocking();
}

void log_forked(void)
{
	queue_reset();
}

void log_set_level(int level)
{
	log_level = level;
}

void log_set_role(const char *role)
{
	snprintf(log_role, sizeof(log_role), "%s", role ? role : "");
}

int log_level_from_name(const char *name)
{
	for (int i = LOG_ERR; i <= LOG_DEBUG; i++)
		if (strcmp(name, level_names[i]) == 0)
			return i;
	return -1;
}

const char *log_level_name(int level)
{
	if (level < LOG_ERR)
		level = LOG_ERR;
	if (level > LOG_DEBUG)
		level = LOG_DEBUG;
	return level_names[level];
}

/* A line as formatted, before escaping; cut when the text did not fit. */
struct raw_line {
	char text[LOG_LINE_MAX];
	size_t len;
	bool cut;
};

/* Appends to a line, truncating rather than overflowing. */
__attribute__((format(printf, 2, 0)))
static void line_vappend(struct raw_line *l, const char *fmt, va_list ap)
{
	size_t room = sizeof(l->text) - l->len;
	int n;

	n = vsnprintf(l->text + l->len, room, fmt, ap);
	if (n < 0)
		return;
	if ((size_t)n >= room) {
		l->len = sizeof(l->text) - 1;
		l->cut = true;
	} else {
		l->len += (size_t)n;
	}
}

__attribute__((format(printf, 2, 3)))
static void line_append(struct raw_line *l, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	line_vappend(l, fmt, ap);
	va_end(ap);
}

/* Writes l escaped into out (at most cap bytes): a peer's bytes (a unix
 * client's bound name, a path) can then neither end the line nor forge an
 * escape. A line that does not fit ends in "..." after its last whole escape. */
static size_t line_escape(const struct raw_line *l, char *out, size_t cap)
{
	size_t len = 0, whole = 0;	/* whole: the longest cut that leaves room for "..." */
	bool cut = l->cut;

	for (size_t i = 0; i < l->len; i++) {
		char esc[4];
		size_t n = escape_byte((unsigned char)l->text[i], esc);

		if (len + n > cap) {
			cut = true;
			break;
		}
		memcpy(out + len, esc, n);
		len += n;
		if (len + 3 <= cap)
			whole = len;
	}
	if (!cut)
		return len;
	memcpy(out + whole, "...", 3);
	return whole + 3;
}

static void line_prefix(struct raw_line *l, int level)
{
	struct timespec ts;
	struct tm tm;
	char stamp[32];

	if (log_to_journal) {
		line_append(l, "<%d>%s%s", level, log_role, log_role[0] ? ": " : "");
		return;
	}
	clock_gettime(CLOCK_REALTIME, &ts);
	localtime_r(&ts.tv_sec, &tm);
	strftime(stamp, sizeof(stamp), "%Y-%m-%d %H:%M:%S", &tm);
	line_append(l, "%s.%03ld preforkd[%ld]%s%s: %s: ", stamp, ts.tv_nsec / 1000000,
		    (long)getpid(), log_role[0] ? " " : "", log_role, log_level_name(level));
}

/* One line: prefix, message and error text, escaped, ending in '\n'. */
__attribute__((format(printf, 4, 0)))
static size_t line_vformat(char out[LOG_LINE_MAX], int level, int err, const char *fmt, va_list ap)
{
	struct raw_line raw = { .len = 0 };
	size_t len;

	line_prefix(&raw, level);
	line_vappend(&raw, fmt, ap);
	if (err)
		line_append(&raw, ": %s", strerror(err));
	len = line_escape(&raw, out, LOG_LINE_MAX - 1);	/* room for '\n' */
	out[len++] = '\n';
	return len;
}

__attribute__((format(printf, 3, 4)))
static size_t line_format(char out[LOG_LINE_MAX], int level, const char *fmt, ...)
{
	va_list ap;
	size_t len;

	va_start(ap, fmt);
	len = line_vformat(out, level, 0, fmt, ap);
	va_end(ap);
	return len;
}

/* One attempt, never waiting: bytes written, or -1 with errno (EAGAIN: not now). */
static ssize_t stderr_write(const char *buf, size_t len)
{
	ssize_t n;

	do
		n = log_to_socket ? send(STDERR_FILENO, buf, len, MSG_DONTWAIT | MSG_NOSIGNAL)
				  : write(STDERR_FILENO, buf, len);
	while (n < 0 && errno == EINTR);
	return n;
}

/* Writes waiting lines, one write() each (a pipe takes up to PIPE_BUF bytes
 * whole, so lines of concurrent workers never interleave), until stderr is
 * full; true when none is left. */
static bool queue_write(void)
{
	while (queue.len > 0) {
		const char *line = queue.buf + queue.head;
		const char *end = memchr(line, '\n', queue.len);
		size_t len = end ? (size_t)(end - line) + 1 : queue.len;
		ssize_t n = stderr_write(line, len);

		if (n < 0 && errno == EAGAIN)
			return false;
		if (n <= 0)
			n = (ssize_t)len;	/* a failure has nowhere to go: the line is lost */
		queue.head += (size_t)n;
		queue.len -= (size_t)n;
	}
	queue.head = 0;
	return true;
}

/* Appends a whole line behind those waiting; false if it does not fit. */
static bool queue_push(const char *line, size_t len)
{
	if (len > sizeof(queue.buf) - queue.len)
		return false;
	if (queue.head + queue.len + len > sizeof(queue.buf)) {
		memmove(queue.buf, queue.buf + queue.head, queue.len);
		queue.head = 0;
	}
	memcpy(queue.buf + queue.head + queue.len, line, len);
	queue.len += len;
	return true;
}

/* Writes a line now if none waits before it, else queues it; false when it
 * is lost for want of room. */
static bool line_put(const char *line, size_t len)
{
	if (queue.len == 0) {
		ssize_t n = stderr_write(line, len);

		if (n == (ssize_t)len || (n < 0 && errno != EAGAIN))
			return true;	/* written, or failed with nowhere to say so */
		if (n > 0) {
			line += n;
			len -= (size_t)n;
		}
		queue.retry_at = clock_now_ms() + LOG_RETRY_MS;
	}
	return queue_push(line, len);
}

static void drops_add(unsigned long n, int level)
{
	if (!queue.dropped || level < queue.dropped_level)
		queue.dropped_level = level;
	queue.dropped += n;
}

/* The count of lost lines, in the place they went missing, once it fits:
 * until then every new line is lost too (and counted). */
static void drops_report(void)
{
	char line[LOG_LINE_MAX];
	size_t len;
	int level = queue.dropped_level < LOG_WARNING ? queue.dropped_level : LOG_WARNING;

	if (!queue.dropped)
		return;
	len = line_format(line, level, "%lu log line%s dropped: stderr was not being read",
			  queue.dropped, queue.dropped == 1 ? "" : "s");
	if (line_put(line, len))
		queue.dropped = 0;
}

void log_flush(void)
{
	if (queue.len == 0 || clock_now_ms() < queue.retry_at)
		return;
	if (!queue_write())
		queue.retry_at = clock_now_ms() + LOG_RETRY_MS;
	drops_report();
}

uint64_t log_next_deadline(void)
{
	return queue.len ? queue.retry_at : 0;
}

static unsigned long queue_lines(void)
{
	unsigned long n = 0;

	for (size_t i = 0; i < queue.len; i++)
		n += queue.buf[queue.head + i] == '\n';
	return n;
}

void log_drain(unsigned timeout_ms)
{
	uint64_t deadline = clock_now_ms() + timeout_ms;

	for (;;) {
		queue.retry_at = 0;
		log_flush();
		if (queue.len == 0 || clock_now_ms() >= deadline)
			break;
		poll(NULL, 0, LOG_DRAIN_POLL_MS);
	}
	if (queue.len == 0)
		return;
	/* Given up: what waits is lost; one more line may still get through to say so. */
	drops_add(queue_lines(), LOG_WARNING);
	queue.head = queue.len = 0;
	drops_report();
}

__attribute__((format(printf, 3, 0)))
static void log_vmsg(int level, int err, const char *fmt, va_list ap)
{
	char line[LOG_LINE_MAX];
	size_t len;

	if (level > log_level)
		return;
	len = line_vformat(line, level, err, fmt, ap);
	log_flush();
	drops_report();
	if (queue.dropped || !line_put(line, len))
		drops_add(1, level);
}

void log_msg(int level, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_vmsg(level, 0, fmt, ap);
	va_end(ap);
}

void log_errno(int level, int err, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_vmsg(level, err, fmt, ap);
	va_end(ap);
}
