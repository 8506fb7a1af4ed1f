/* SPDX-License-Identifier: ISC */
/* outlog.c - a child's output: a pipe read into the log, line by line, prefixed, rate-limited.
 *
 * Children do not share the daemon's stderr: one that writes a lot would
 * fill it (a pipe nobody drains blocks, the journal throttles) and its
 * bytes would reach the log unmarked. They write to a pipe instead (exec
 * helpers: one per worker; app workers: one each, read by the master); it
 * is read without ever blocking and each line goes through the one logging
 * path (escaped, prefixed, with a priority), naming who wrote it. Writes
 * of up to PIPE_BUF bytes are atomic, so lines of children writing at once
 * stay whole unless one writes a line in pieces. */
#include "config.h"

#include "common/outlog.h"

#include <errno.h>
#include <stdbool.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/clock.h"
#include "common/log.h"
#include "common/ratelimit.h"

#define LINE_MAX_BYTES 1000		/* a longer line is logged in pieces */
#define READ_MAX_PER_CALL 65536

struct outlog {
	struct ev_source src;		/* first: epoll data points here */
	int rfd, wfd;
	char *label;
	struct outlog_style style;
	char line[LINE_MAX_BYTES];
	size_t len;
	uint64_t window_start;		/* of the current second */
	unsigned window_lines;
	struct ratelimit dropped;	/* lines over the rate, reported every 10 s */
};

struct outlog *outlog_new(const char *label, const struct outlog_style *style, int kind)
{
	struct outlog *hl = calloc(1, sizeof(*hl));
	int fds[2];

	if (!hl || !(hl->label = strdup(label))) {
		log_error("out of memory for the output of %s", label);
		free(hl);
		return NULL;
	}
	if (pipe2(fds, O_CLOEXEC) < 0) {
		log_errno(LOG_ERR, errno, "pipe2 for the output of %s", label);
		free(hl->label);
		free(hl);
		return NULL;
	}
	/* Only our end: a child expects a blocking stdout and stderr. */
	fcntl(fds[0], F_SETFL, O_NONBLOCK);
	hl->src.kind = kind;
	hl->style = *style;
	hl->rfd = fds[0];
	hl->wfd = fds[1];
	return hl;
}

struct outlog *outlog_adopt(const char *label, const struct outlog_style *style, int kind,
			    int rfd)
{
	struct outlog *hl = calloc(1, sizeof(*hl));

	if (!hl || !(hl->label = strdup(label))) {
		log_error("out of memory for the output of %s", label);
		free(hl);
		return NULL;
	}
	hl->src.kind = kind;
	hl->style = *style;
	hl->rfd = rfd;
	hl->wfd = -1;
	return hl;
}

int outlog_relabel(struct outlog *hl, const char *label)
{
	char *copy = strdup(label);

	if (!copy)
		return -1;
	free(hl->label);
	hl->label = copy;
	return 0;
}

int outlog_write_fd(const struct outlog *hl)
{
	return hl->wfd;
}

void outlog_close_write_fd(struct outlog *hl)
{
	if (hl->wfd >= 0)
		close(hl->wfd);
	hl->wfd = -1;
}

int outlog_read_fd(const struct outlog *hl)
{
	return hl->rfd;
}

struct ev_source *outlog_source(struct outlog *hl)
{
	return &hl->src;
}

static bool within_rate(struct outlog *hl, uint64_t now)
{
	if (now - hl->window_start >= 1000) {
		hl->window_start = now;
		hl->window_lines = 0;
	}
	return hl->window_lines++ < hl->style.lines_per_s;
}

/* "<N>" at the start of a line, N a syslog level: the sd-daemon convention. */
static int line_level(const struct outlog *hl, size_t *skip)
{
	*skip = 0;
	if (!hl->style.priorities || hl->len < 3 || hl->line[0] != '<' || hl->line[2] != '>' ||
	    hl->line[1] < '0' || hl->line[1] > '7')
		return hl->style.level;
	*skip = 3;
	return hl->line[1] - '0';
}

static void emit_line(struct outlog *hl, uint64_t now, bool cut)
{
	size_t skip;
	int level = line_level(hl, &skip);

	if (within_rate(hl, now)) {
		log_msg(level, "%s: %.*s%s", hl->label, (int)(hl->len - skip), hl->line + skip,
			cut ? "..." : "");
	} else {
		ratelimit_event(&hl->dropped, now);
	}
	hl->len = 0;
}

static void take(struct outlog *hl, const char *buf, size_t n, uint64_t now)
{
	for (size_t i = 0; i < n; i++) {
		if (buf[i] == '\n') {
			emit_line(hl, now, false);
			continue;
		}
		if (hl->len == sizeof(hl->line))
			emit_line(hl, now, true);
		hl->line[hl->len++] = buf[i];
	}
}

bool outlog_read(struct outlog *hl, uint64_t now)
{
	char buf[4096];
	size_t total = 0;

	while (total < READ_MAX_PER_CALL) {
		ssize_t n = read(hl->rfd, buf, sizeof(buf));

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			if (n < 0 && errno != EAGAIN)
				log_errno(LOG_ERR, errno, "read the output of %s", hl->label);
			return n < 0;
		}
		take(hl, buf, (size_t)n, now);
		total += (size_t)n;
	}
	return true;
}

static void report(struct outlog *hl, uint64_t now, bool final)
{
	if (!ratelimit_pending(&hl->dropped, now, final))
		return;
	log_warn("%s: %lu lines of %s not logged (over %u lines/s), %lu in all", hl->label,
		 hl->dropped.since_log, hl->style.what, hl->style.lines_per_s, hl->dropped.total);
	ratelimit_logged(&hl->dropped, now);
}

void outlog_report(struct outlog *hl, uint64_t now)
{
	if (hl)
		report(hl, now, false);
}

uint64_t outlog_next_deadline(const struct outlog *hl)
{
	return hl ? ratelimit_next(&hl->dropped) : 0;
}

void outlog_free(struct outlog *hl)
{
	uint64_t now = clock_now_ms();

	if (!hl)
		return;
	outlog_close_write_fd(hl);
	outlog_read(hl, now);
	if (hl->len)
		emit_line(hl, now, false);
	report(hl, now, true);
	close(hl->rfd);
	free(hl->label);
	free(hl);
}
