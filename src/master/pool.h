/* SPDX-License-Identifier: ISC */
/* pool.h - a service's workers in the serving generation: their number (scale) and their replacement one at a time (recycle). */
#ifndef PREFORKD_POOL_H
#define PREFORKD_POOL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "master/slot.h"

struct master;
struct generation;

/* What a scale or a recycle ends with, for the control client that asked. */
struct pool_result {
	bool ok;
	const char *text;
	const char *service;
	const char *count_name;	/* "workers" (scale) or "recycled" */
	unsigned count;
	uint64_t duration_ms;
};

/* "scale SERVICE N": the serving generation's pool of service gets n
 * workers until the next reload. The operation's number (its end is
 * reported with control_pool_finished), or 0 with why. */
unsigned pool_scale(struct master *m, size_t service, unsigned n, char *why, size_t len);
/* "recycle SERVICE": each of its workers is replaced in turn, the
 * replacement ready before the old one is told to stop. A second request
 * during one joins it. The operation's number, or 0 with why. */
unsigned pool_recycle(struct master *m, size_t service, enum retire_reason reason, char *why,
		      size_t len);

/* Makes the serving generation's pools what they should be: slots added
 * or stopped for each target, the next replacement of a recycle begun,
 * operations that ended answered, slots that are done freed. Between
 * batches of events only. */
void pool_tend(struct master *m);
uint64_t pool_next_deadline(const struct master *m);

/* s is replaced at once, whatever else is being recycled (it is hung),
 * or, when it is not ready, when it is. */
void pool_replace_now(struct master *m, struct slot *s, enum retire_reason why);
/* The replacement s is ready: the worker it replaces is told to stop. */
void pool_replacement_ready(struct master *m, struct slot *s);
/* The replacement s died before it was ready (how): the worker it
 * replaces serves on, and the recycle ends. */
void pool_replacement_failed(struct master *m, struct slot *s, const char *how);
/* The worker s died while its replacement was starting: that one takes
 * its place. */
void pool_retiring_died(struct slot *s);
/* g stops serving (a reload's switch, a stop): what was asked of its
 * pools ends, with why. */
void pool_abandon(struct master *m, struct generation *g, const char *why);
/* A reload: an elastic pool of the new generation starts as large as the
 * same service's is now (within its new min and max), not at min-workers;
 * a pinned one (scale) does not carry over. -1 without memory. */
int pool_inherit(const struct generation *from, struct generation *to);
/* The workers g's pools want in all. */
unsigned pool_targets(const struct generation *g);

#endif
