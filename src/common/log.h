/* SPDX-License-Identifier: ISC */
/* log.h - the one logging path of preforkd: levelled lines on stderr, journald-aware. */
#ifndef PREFORKD_LOG_H
#define PREFORKD_LOG_H

#include <stdarg.h>
#include <stdint.h>
#include <syslog.h>	/* LOG_ERR ... LOG_DEBUG: the level numbers journald understands */

#define LOG_EXIT_DRAIN_MS 100	/* how long a process exiting waits for stderr to take its lines */

/* Looks at stderr: a pipe or terminal gets a non-blocking open file
 * description of its own, a socket is sent to without waiting. Lines stderr
 * does not take at once wait in a bounded queue; what does not fit is counted
 * and the count logged once stderr takes lines again. */
void log_init(void);
/* In a child just forked: the parent's waiting lines are the parent's. */
void log_forked(void);
/* Retries the waiting lines when due; the loops call it every turn. */
void log_flush(void);
/* When log_flush() wants to run next (clock.h milliseconds), 0 if nothing waits. */
uint64_t log_next_deadline(void);
/* Before exiting: retries for up to timeout_ms, then counts the rest as lost. */
void log_drain(unsigned timeout_ms);
void log_set_level(int level);
/* Name shown after "preforkd[pid]" so a worker's lines say which worker wrote them. */
void log_set_role(const char *role);
/* Parses "error", "warning", "notice", "info" or "debug"; -1 if unknown. */
int log_level_from_name(const char *name);
const char *log_level_name(int level);

void log_msg(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Like log_msg, appending ": strerror(err)". Name the syscall and object in fmt. */
void log_errno(int level, int err, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

#define log_error(...)  log_msg(LOG_ERR, __VA_ARGS__)
#define log_warn(...)   log_msg(LOG_WARNING, __VA_ARGS__)
#define log_notice(...) log_msg(LOG_NOTICE, __VA_ARGS__)
#define log_info(...)   log_msg(LOG_INFO, __VA_ARGS__)
#define log_debug(...)  log_msg(LOG_DEBUG, __VA_ARGS__)

#endif
