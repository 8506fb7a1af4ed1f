/* SPDX-License-Identifier: ISC */
/* retire.h - which workers are to be replaced: past max-requests, max-lifetime or max-memory, or hung. */
#ifndef PREFORKD_RETIRE_H
#define PREFORKD_RETIRE_H

#include <stdint.h>

struct master;

/* Marks the workers of the serving generation past a limit (pool.c
 * replaces them one at a time), aborts the hung ones (replaced at once)
 * and kills those that did not end in time; at most every 100 ms, memory
 * every 5 s. */
void retire_tend(struct master *m);
/* When retire_tend() wants to look next; 0 when nothing asks for it. */
uint64_t retire_next_deadline(const struct master *m);
struct slot;
/* The worker of s said it has served its max-requests (WORKER_MSG_LIMIT):
 * marked now, not at the next look. */
void retire_asked(struct master *m, struct slot *s);

#endif
