/* log.c - formats and writes every log line of master and workers to stderr. */
#include "config.h"

#include "log.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "fdutil.h"

#define LOG_LINE_MAX 1024	/* bytes of a line, its '\n' included */

static int log_level = LOG_INFO;
static bool log_to_journal;
static char log_role[48];

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

void log_init(void)
{
	log_to_journal = stderr_is_journal();
}

void log_set_level(int level)
{
	log_level = level;
}

int log_get_level(void)
{
	return log_level;
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

/* One write() per line, so lines of concurrent workers never interleave. */
static void log_write(const char *buf, size_t len)
{
	(void)fd_write_all(STDERR_FILENO, buf, len);	/* a failure has nowhere to go */
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

/* A backslash as \\, a byte outside 0x20..0x7e as \xHH, anything else as is. */
static size_t escape_byte(unsigned char c, char out[4])
{
	static const char hex[] = "0123456789abcdef";

	if (c == '\\') {
		out[0] = out[1] = '\\';
		return 2;
	}
	if (c >= 0x20 && c <= 0x7e) {
		out[0] = (char)c;
		return 1;
	}
	out[0] = '\\';
	out[1] = 'x';
	out[2] = hex[c >> 4];
	out[3] = hex[c & 0xf];
	return 4;
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

void log_vmsg(int level, int err, const char *fmt, va_list ap)
{
	struct raw_line raw = { .len = 0 };
	char line[LOG_LINE_MAX];
	size_t len;

	if (level > log_level)
		return;
	line_prefix(&raw, level);
	line_vappend(&raw, fmt, ap);
	if (err)
		line_append(&raw, ": %s", strerror(err));
	len = line_escape(&raw, line, sizeof(line) - 1);	/* room for '\n' */
	line[len++] = '\n';
	log_write(line, len);
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
