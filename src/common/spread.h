/* SPDX-License-Identifier: ISC */
/* spread.h - a per-worker limit spread over +-10 % by the worker's number, so that workers started together do not all reach it together. */
#ifndef PREFORKD_SPREAD_H
#define PREFORKD_SPREAD_H

#include <stdint.h>

/* limit, +-10 % by number n: n times the golden ratio, modulo 1, spreads
 * any count of workers evenly; the same for n every time. */
static inline uint64_t limit_spread(uint64_t limit, unsigned n)
{
	uint64_t frac = (uint32_t)(n * 2654435769u);	/* 2^32 / phi */

	return limit * (900 + (frac * 200 >> 32)) / 1000;
}

#endif
