/* SPDX-License-Identifier: ISC */
/* ratelimit.h - counting events that are logged at most once per interval. */
#ifndef PREFORKD_RATELIMIT_H
#define PREFORKD_RATELIMIT_H

#include <stdbool.h>
#include <stdint.h>

#define RATELIMIT_INTERVAL_MS 10000

struct ratelimit {
	uint64_t last_log;		/* 0: never logged */
	unsigned long since_log;	/* events since then */
	unsigned long total;
};

/* Counts one event; true when the caller should log now (the first event,
 * then at most once per interval). The caller reports since_log, then
 * calls ratelimit_logged(). */
static inline bool ratelimit_event(struct ratelimit *rl, uint64_t now)
{
	rl->since_log++;
	rl->total++;
	return !rl->last_log || now - rl->last_log >= RATELIMIT_INTERVAL_MS;
}

/* True when events are waiting to be reported: at an interval, or at exit (final). */
static inline bool ratelimit_pending(const struct ratelimit *rl, uint64_t now, bool final)
{
	return rl->since_log && (final || !rl->last_log || now - rl->last_log >= RATELIMIT_INTERVAL_MS);
}

/* When a report of waiting events falls due; 0: nothing waits. */
static inline uint64_t ratelimit_next(const struct ratelimit *rl)
{
	return rl->since_log ? rl->last_log + RATELIMIT_INTERVAL_MS : 0;
}

static inline void ratelimit_logged(struct ratelimit *rl, uint64_t now)
{
	rl->last_log = now ? now : 1;
	rl->since_log = 0;
}

#endif
