/* SPDX-License-Identifier: ISC */
/* clock.h - the monotonic millisecond clock every deadline in preforkd is measured on. */
#ifndef PREFORKD_CLOCK_H
#define PREFORKD_CLOCK_H

#include <stdint.h>
#include <time.h>

static inline uint64_t clock_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* The sooner of two deadlines, 0 meaning none. */
static inline uint64_t clock_sooner(uint64_t a, uint64_t b)
{
	return !a || (b && b < a) ? b : a;
}

/* The longest epoll_wait() timeout we give: a minute, then the clock is
 * read again. */
#define CLOCK_TIMEOUT_MAX_MS 60000

/* epoll_wait() timeout until deadline (0 = none): -1 blocks, 0 means already due. */
static inline int clock_timeout_until(uint64_t deadline, uint64_t now)
{
	if (deadline == 0)
		return -1;
	if (deadline <= now)
		return 0;
	return deadline - now > CLOCK_TIMEOUT_MAX_MS ? CLOCK_TIMEOUT_MAX_MS : (int)(deadline - now);
}

#endif
