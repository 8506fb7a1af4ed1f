/* SPDX-License-Identifier: ISC */
/* outlog.h - a child's output: a pipe read into the log, line by line, prefixed, rate-limited. */
#ifndef PREFORKD_OUTLOG_H
#define PREFORKD_OUTLOG_H

#include <stdbool.h>
#include <stdint.h>

#include "common/evsource.h"

struct outlog;

/* How the lines of a pipe are logged. */
struct outlog_style {
	int level;		/* of a line that names none */
	bool priorities;	/* a line may start with "<N>", N its level (sd-daemon) */
	unsigned lines_per_s;	/* logged; the rest is read all the same and counted */
	const char *what;	/* in the report of dropped lines: "stderr", "output" */
};

/* A pipe whose lines are logged as "LABEL: line"; NULL (logged) when it
 * cannot be had. Its source is of kind kind, for the caller's epoll set. */
struct outlog *outlog_new(const char *label, const struct outlog_style *style, int kind);
/* The same around the read end of a pipe an earlier image of the master
 * made (an upgrade): only the read end, non-blocking and close-on-exec. */
struct outlog *outlog_adopt(const char *label, const struct outlog_style *style, int kind,
			    int rfd);
/* The label from now on (an app worker's once its pid is known): 0, or -1
 * when out of memory (the old one stays). */
int outlog_relabel(struct outlog *ol, const char *label);
/* Drains what is left (bounded), logs a last partial line and the drops. */
void outlog_free(struct outlog *ol);
/* The end the children write to (blocking, close-on-exec). */
int outlog_write_fd(const struct outlog *ol);
/* Closes our copy of the write end, once the only child that writes has it:
 * then the read end sees EOF when the child and what it forked are gone. */
void outlog_close_write_fd(struct outlog *ol);
/* The end the caller reads, for its epoll set, and the source to tag it with. */
int outlog_read_fd(const struct outlog *ol);
struct ev_source *outlog_source(struct outlog *ol);
/* Reads what the children wrote (a bounded amount per call: level-triggered
 * epoll calls again) and logs its lines, at most lines_per_s; the rest is
 * read all the same (no child blocks on a full pipe) and counted. Returns
 * false at EOF (nobody holds the write end any more). */
bool outlog_read(struct outlog *ol, uint64_t now);
/* The report of dropped lines, at most every 10 s; when it is next due (0: none). */
void outlog_report(struct outlog *ol, uint64_t now);
uint64_t outlog_next_deadline(const struct outlog *ol);

#endif
