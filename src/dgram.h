/* dgram.h - the datagram side of a worker: batched reads, replies that never block, counts. */
#ifndef PREFORKD_DGRAM_H
#define PREFORKD_DGRAM_H

#include <stdbool.h>
#include <stdint.h>

struct listener;
struct service;
struct dgram;

/* NULL (logged) when memory is short. */
struct dgram *dgram_new(const struct service *svc);
/* Counts what is still queued as dropped, logs the totals, frees. */
void dgram_free(struct dgram *dg);

/* Reads one batch from l and answers it; true when more may be waiting. */
bool dgram_read(struct dgram *dg, struct listener *l, uint64_t now);
/* Retries the replies waiting for a full receiver; drops those that waited too long. */
void dgram_flush(struct dgram *dg, uint64_t now);
/* Drops every waiting reply now (a fast stop). */
void dgram_drop_queue(struct dgram *dg);
/* When dgram_flush() wants to run next; 0: nothing waits. */
uint64_t dgram_next_deadline(const struct dgram *dg, uint64_t now);
bool dgram_idle(const struct dgram *dg);
/* The rate-limited report of lost datagrams, if one is due. */
void dgram_report(struct dgram *dg, uint64_t now);

#endif
