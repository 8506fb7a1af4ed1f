/* SPDX-License-Identifier: ISC */
/* autoscale.h - an elastic pool's policy: grow while clients wait in the accept queue, shrink by idle workers. */
#ifndef PREFORKD_AUTOSCALE_H
#define PREFORKD_AUTOSCALE_H

#include <stdint.h>

struct master;

/* Sets the target of every elastic pool of the serving generation from
 * its accept queues and its workers' counts; at most every 100 ms. */
void autoscale_tend(struct master *m);
/* When autoscale_tend() wants to look next; 0 when no pool is elastic. */
uint64_t autoscale_next_deadline(const struct master *m);
/* enum scale_reason as metrics and status say it ("queue", "idle", ...). */
const char *autoscale_reason_name(int why);

#endif
