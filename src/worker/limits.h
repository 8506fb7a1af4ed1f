/* SPDX-License-Identifier: ISC */
/* limits.h - connection counts shared by the workers of a service: per source, and in all. */
#ifndef PREFORKD_LIMITS_H
#define PREFORKD_LIMITS_H

#include <stdint.h>

struct peer;

/* Who a connection is counted against: an IP address (IPv4 as
 * ::ffff:a.b.c.d), or the user id of a unix client. */
struct source_key {
	uint32_t kind;
	uint8_t id[16];
};

enum limits_verdict {
	LIMITS_OK,		/* counted; limits_release() when it closes */
	LIMITS_SOURCE,		/* max-per-source reached */
	LIMITS_TOTAL,		/* max-service-connections reached */
	LIMITS_UNAVAILABLE,	/* the counts could not be read in time or are full */
};

struct limits;

/* Shared memory for nrows workers, made by the master before it forks them.
 * max_per_source or max_total may be 0 (no such limit); NULL if both are. */
struct limits *limits_new(unsigned nrows, unsigned max_per_source, unsigned max_total,
			  unsigned max_connections_per_row);
/* The sizes of the region's parts, as one number: two images of the master
 * share a region only if theirs are equal. */
unsigned long limits_layout(void);
/* The region of an earlier image of the master (an upgrade), mapped again
 * from fd, which it names itself; NULL (logged) when it does not fit. */
struct limits *limits_adopt(int fd);
void limits_free(struct limits *l);
/* The master's descriptor of the region (a sealed memfd), to hand it on. */
int limits_fd(const struct limits *l);

/* Master: the worker of row has exited; what it counted no longer counts. */
void limits_row_dead(struct limits *l, unsigned row);
/* Worker, at start: row is ours, starting from zero. */
void limits_row_claim(struct limits *l, unsigned row);

void limits_key_of(const struct peer *p, struct source_key *k);
enum limits_verdict limits_take(struct limits *l, unsigned row, const struct source_key *k);
void limits_release(struct limits *l, unsigned row, const struct source_key *k);

#endif
