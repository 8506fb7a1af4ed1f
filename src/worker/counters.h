/* SPDX-License-Identifier: ISC */
/* counters.h - what each worker has done, counted in a row of shared memory the master reads. */
#ifndef PREFORKD_COUNTERS_H
#define PREFORKD_COUNTERS_H

#include <stdatomic.h>
#include <stdint.h>

enum counter {
	COUNTER_ACCEPTED,	/* connections accepted */
	COUNTER_ACTIVE,		/* connections open now (a gauge, not summed into totals) */
	COUNTER_DENIED,		/* turned away by allow/deny, allow-users/allow-groups */
	COUNTER_PER_SOURCE,	/* by max-per-source */
	COUNTER_SERVICE_LIMIT,	/* by max-service-connections */
	COUNTER_UNAVAILABLE,	/* the shared counts could not be had */
	COUNTER_PROXY_HEADER,	/* accept-proxy-protocol: no good header, or not from proxy-protocol-from */
	COUNTER_HELPERS_STARTED,	/* exec */
	COUNTER_HELPERS_FAILED,		/* exec: could not start, or ended with a status or a signal */
	/* Datagrams, each counted once, by what became of it (dgram.c). */
	COUNTER_DGRAM_ANSWERED, COUNTER_DGRAM_TRUNCATED, COUNTER_DGRAM_DENIED,
	COUNTER_DGRAM_UNDELIVERABLE, COUNTER_DGRAM_DROPPED, COUNTER_DGRAM_FAILED,
	COUNTER_UPSTREAM_FAILED,	/* proxy: clients closed, no upstream took them */
	COUNTER_HEARTBEAT,	/* when its loop last turned (monotonic ms; a gauge) */
	COUNTERS
};

/* A count that says how things stand, not what was done: not summed into totals. */
static inline int counter_is_gauge(enum counter k)
{
	return k == COUNTER_ACTIVE || k == COUNTER_HEARTBEAT;
}

/* One worker's: only it writes (relaxed stores, no locked instruction on
 * the path of a connection), the master reads at any time. */
struct counter_row {
	_Alignas(64) _Atomic uint64_t v[COUNTERS];
};

struct counters;

/* A region of nrows zeroed rows, a memfd (sealed size) mapped shared, made
 * by the master before it forks; NULL (logged) without memory. */
struct counters *counters_new(unsigned nrows);
/* The region of an earlier image of the master (an upgrade): fd is mapped
 * again, and owned; NULL (logged) when it is not of nrows rows. */
struct counters *counters_adopt(int fd, unsigned nrows);
int counters_fd(const struct counters *c);
void counters_free(struct counters *c);
struct counter_row *counters_row(struct counters *c, unsigned i);

static inline void counter_add(struct counter_row *r, enum counter k, int64_t n)
{
	if (r)
		atomic_store_explicit(&r->v[k], atomic_load_explicit(&r->v[k], memory_order_relaxed) +
				      (uint64_t)n, memory_order_relaxed);
}

/* A count the worker keeps itself, as it stands now. */
static inline void counter_set(struct counter_row *r, enum counter k, uint64_t v)
{
	if (r)
		atomic_store_explicit(&r->v[k], v, memory_order_relaxed);
}

static inline uint64_t counter_get(const struct counter_row *r, enum counter k)
{
	return r ? atomic_load_explicit(&r->v[k], memory_order_relaxed) : 0;
}

/* Datagrams received, each counted once under its outcome. */
static inline uint64_t counter_datagrams(const struct counter_row *r)
{
	uint64_t n = 0;

	for (int k = COUNTER_DGRAM_ANSWERED; k <= COUNTER_DGRAM_FAILED; k++)
		n += counter_get(r, (enum counter)k);
	return n;
}

/* The master, once the row's worker has exited: its counts added into
 * totals, and the row zeroed for the slot's next worker. */
void counters_fold(struct counter_row *r, uint64_t totals[COUNTERS]);

#endif
