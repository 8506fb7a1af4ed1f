/* SPDX-License-Identifier: ISC */
/* dgram.h - the datagram side of a worker: batched reads, replies that never block, counts. */
#ifndef PREFORKD_DGRAM_H
#define PREFORKD_DGRAM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

struct worker_socket;
struct peer;
struct service;
struct dgram;
struct counter_row;

/* Where a datagram came from, so that a reply made later can go back. */
struct dgram_origin {
	struct dgram *dg;
	struct worker_socket *l;		/* the socket it came in on (the worker's copy) */
	struct sockaddr_storage from;
	socklen_t fromlen;
};

/* For handlers without a datagram hook (exec): starts a job for one
 * datagram, which ends in dgram_reply() or dgram_unanswered(). */
typedef void dgram_job_fn(void *ctx, const struct dgram_origin *origin, const void *data,
			  size_t len, const struct peer *client);

/* NULL (logged) when memory is short. */
struct dgram *dgram_new(const struct service *svc, dgram_job_fn *job, void *job_ctx);
/* Counts what is still queued as dropped, logs the totals, frees. */
void dgram_free(struct dgram *dg);

/* Reads at most max datagrams (one batch) from l and answers them, or
 * starts their jobs: a handler without a datagram hook reads only as many
 * as it can serve, the rest wait in the kernel's queue. True when more may
 * be waiting. */
bool dgram_read(struct dgram *dg, struct worker_socket *l, uint64_t now, unsigned max);
/* Reads one batch from l and counts every datagram in it as dropped, why:
 * what was queued on a socket that is about to close unserved. True when
 * more may be waiting. */
bool dgram_discard(struct dgram *dg, struct worker_socket *l, const char *why);
/* l is about to be closed: the replies waiting to go out on it are tried
 * once more, then counted as dropped. A reply made later for a datagram of
 * l (a job still running) is counted as dropped too. */
void dgram_release(struct dgram *dg, struct worker_socket *l);
/* Retries the replies waiting for a full receiver; drops those that waited too long. */
void dgram_flush(struct dgram *dg, uint64_t now);
/* Drops every waiting reply now (a fast stop). */
void dgram_drop_queue(struct dgram *dg);
/* When dgram_flush() wants to run next; 0: nothing waits. */
uint64_t dgram_next_deadline(const struct dgram *dg, uint64_t now);
bool dgram_idle(const struct dgram *dg);
/* The end of a job: its reply (len 0: the helper had nothing to say, no
 * datagram is sent), or why there is none. Each counts the datagram once. */
void dgram_reply(const struct dgram_origin *o, const void *data, size_t len, uint64_t now);
void dgram_unanswered(const struct dgram_origin *o, const char *why);

/* The rate-limited report of lost datagrams, if one is due. */
void dgram_report(struct dgram *dg, uint64_t now);
/* The counts so far into the worker's shared row (for the master's metrics). */
void dgram_publish(const struct dgram *dg, struct counter_row *row);

#endif
