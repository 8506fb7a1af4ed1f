/* SPDX-License-Identifier: ISC */
/* helperlog.c - exec helpers' stderr: a pipe the worker reads into its log, line by line, rate-limited.
 *
 * Helpers do not share the daemon's stderr: a helper that writes a lot would
 * fill it (a pipe nobody drains blocks, the journal throttles) and its
 * bytes would reach the log unmarked. Every helper of a worker writes to
 * one pipe instead; the worker reads it without ever blocking and logs each
 * line through the one logging path (escaped, prefixed, with a priority),
 * naming the program. Writes of up to PIPE_BUF bytes are atomic, so lines
 * of helpers running at once stay whole unless a helper writes one line in
 * pieces. */
#include "config.h"

#include "worker/helperlog.h"

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
#define HELPERLOG_LINES_PER_S 100	/* logged; the rest is counted */

struct helperlog {
	struct ev_source src;		/* first: epoll data points here */
	int rfd, wfd;
	char *program;
	char line[LINE_MAX_BYTES];
	size_t len;
	uint64_t window_start;		/* of the current second */
	unsigned window_lines;
	struct ratelimit dropped;	/* lines over the rate, reported every 10 s */
};

struct helperlog *helperlog_new(const char *program)
{
	struct helperlog *hl = calloc(1, sizeof(*hl));
	int fds[2];

	if (!hl || !(hl->program = strdup(program))) {
		log_error("out of memory for the helpers' stderr");
		free(hl);
		return NULL;
	}
	if (pipe2(fds, O_CLOEXEC) < 0) {
		log_errno(LOG_ERR, errno, "pipe2 for the helpers' stderr");
		free(hl->program);
		free(hl);
		return NULL;
	}
	/* Only our end: a helper expects a blocking stderr. */
	fcntl(fds[0], F_SETFL, O_NONBLOCK);
	hl->src.kind = EV_HELPER_LOG;
	hl->rfd = fds[0];
	hl->wfd = fds[1];
	return hl;
}

int helperlog_write_fd(const struct helperlog *hl)
{
	return hl->wfd;
}

int helperlog_read_fd(const struct helperlog *hl)
{
	return hl->rfd;
}

struct ev_source *helperlog_source(struct helperlog *hl)
{
	return &hl->src;
}

static bool within_rate(struct helperlog *hl, uint64_t now)
{
	if (now - hl->window_start >= 1000) {
		hl->window_start = now;
		hl->window_lines = 0;
	}
	return hl->window_lines++ < HELPERLOG_LINES_PER_S;
}

static void emit_line(struct helperlog *hl, uint64_t now, bool cut)
{
	if (within_rate(hl, now)) {
		log_notice("helper %s: %.*s%s", hl->program, (int)hl->len, hl->line,
			   cut ? "..." : "");
	} else {
		ratelimit_event(&hl->dropped, now);
	}
	hl->len = 0;
}

static void take(struct helperlog *hl, const char *buf, size_t n, uint64_t now)
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

void helperlog_read(struct helperlog *hl, uint64_t now)
{
	char buf[4096];
	size_t total = 0;

	while (total < READ_MAX_PER_CALL) {
		ssize_t n = read(hl->rfd, buf, sizeof(buf));

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			if (n < 0 && errno != EAGAIN)
				log_errno(LOG_ERR, errno, "read the helpers' stderr");
			return;
		}
		take(hl, buf, (size_t)n, now);
		total += (size_t)n;
	}
}

static void report(struct helperlog *hl, uint64_t now, bool final)
{
	if (!ratelimit_pending(&hl->dropped, now, final))
		return;
	log_warn("helper %s: %lu lines of stderr not logged (over %u lines/s), %lu in all",
		 hl->program, hl->dropped.since_log, HELPERLOG_LINES_PER_S, hl->dropped.total);
	ratelimit_logged(&hl->dropped, now);
}

void helperlog_report(struct helperlog *hl, uint64_t now)
{
	if (hl)
		report(hl, now, false);
}

uint64_t helperlog_next_deadline(const struct helperlog *hl)
{
	return hl ? ratelimit_next(&hl->dropped) : 0;
}

void helperlog_free(struct helperlog *hl)
{
	uint64_t now = clock_now_ms();

	if (!hl)
		return;
	close(hl->wfd);
	helperlog_read(hl, now);
	if (hl->len)
		emit_line(hl, now, false);
	report(hl, now, true);
	close(hl->rfd);
	free(hl->program);
	free(hl);
}
