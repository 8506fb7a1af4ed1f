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

/* Appends to a line buffer, truncating rather than overflowing. */
__attribute__((format(printf, 4, 0)))
static void line_vappend(char *line, size_t *len, size_t cap, const char *fmt, va_list ap)
{
	int n;

	if (*len >= cap)
		return;
	n = vsnprintf(line + *len, cap - *len, fmt, ap);
	if (n > 0)
		*len = *len + (size_t)n < cap ? *len + (size_t)n : cap - 1;
}

__attribute__((format(printf, 4, 5)))
static void line_append(char *line, size_t *len, size_t cap, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	line_vappend(line, len, cap, fmt, ap);
	va_end(ap);
}

void log_vmsg(int level, int err, const char *fmt, va_list ap)
{
	char line[1024];
	size_t len = 0, cap = sizeof(line) - 1;	/* room for '\n' */

	if (level > log_level)
		return;
	if (log_to_journal) {
		line_append(line, &len, cap, "<%d>%s%s", level, log_role, log_role[0] ? ": " : "");
	} else {
		struct timespec ts;
		struct tm tm;
		char stamp[32];

		clock_gettime(CLOCK_REALTIME, &ts);
		localtime_r(&ts.tv_sec, &tm);
		strftime(stamp, sizeof(stamp), "%Y-%m-%d %H:%M:%S", &tm);
		line_append(line, &len, cap, "%s.%03ld preforkd[%ld]%s%s: %s: ", stamp,
			    ts.tv_nsec / 1000000, (long)getpid(), log_role[0] ? " " : "",
			    log_role, log_level_name(level));
	}
	line_vappend(line, &len, cap, fmt, ap);
	if (err)
		line_append(line, &len, cap, ": %s", strerror(err));
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
