/* SPDX-License-Identifier: ISC */
/* helperlog.h - exec helpers' stderr: a pipe the worker reads into its log, line by line, rate-limited. */
#ifndef PREFORKD_HELPERLOG_H
#define PREFORKD_HELPERLOG_H

#include <stdint.h>

#include "common/evsource.h"

struct helperlog;

/* A pipe for the helpers of program (named in every line); NULL (logged)
 * when it cannot be had. Its source is of kind EV_HELPER_LOG. */
struct helperlog *helperlog_new(const char *program);
/* Drains what is left (bounded), logs a last partial line and the drops. */
void helperlog_free(struct helperlog *hl);
/* The end the helpers write to, as their stderr (blocking, close-on-exec). */
int helperlog_write_fd(const struct helperlog *hl);
/* The end the worker reads, for its epoll set, and the source to tag it with. */
int helperlog_read_fd(const struct helperlog *hl);
struct ev_source *helperlog_source(struct helperlog *hl);
/* Reads what the helpers wrote (a bounded amount per call: level-triggered
 * epoll calls again) and logs its lines, at most HELPERLOG_LINES_PER_S;
 * the rest is read all the same (no helper blocks on a full pipe) and
 * counted. */
void helperlog_read(struct helperlog *hl, uint64_t now);
/* The report of dropped lines, at most every 10 s; when it is next due (0: none). */
void helperlog_report(struct helperlog *hl, uint64_t now);
uint64_t helperlog_next_deadline(const struct helperlog *hl);

#endif
