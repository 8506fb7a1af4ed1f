/* SPDX-License-Identifier: ISC */
/* dgram.c - the datagram side of a worker: batched reads, replies that never block, counts.
 *
 * Sockets are read with recvmmsg(), a batch per wakeup (level-triggered,
 * EPOLLEXCLUSIVE, like the stream listeners). A datagram larger than
 * DGRAM_MAX arrives cut short; it is counted and not answered as if whole.
 *
 * A reply goes out with MSG_DONTWAIT. When the receiver's queue is full
 * (EAGAIN: a unix client that does not read, whose queue holds
 * net.unix.max_dgram_qlen datagrams; ENOBUFS) the reply waits in a bounded
 * queue and is retried every SEND_RETRY_MS for SEND_WAIT_MS at most. A unix
 * socket is writable to epoll even while its receiver is full, so the retry
 * is on a timer, not on EPOLLOUT. Every datagram received ends in exactly one
 * count: answered, truncated, denied, undeliverable, dropped or failed. */
#include "config.h"

#include "worker/dgram.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>

#include "worker/access.h"
#include "common/address.h"
#include "conf/conf.h"
#include "handlers/handler.h"
#include "worker/socket.h"
#include "common/log.h"
#include "worker/counters.h"
#include "common/ratelimit.h"

#define DGRAM_BATCH 8
#define DGRAM_MAX 65536		/* bytes read of one datagram; larger ones are truncated */
#define SEND_WAIT_MS 200	/* how long a reply may wait for a full receiver */
#define SEND_RETRY_MS 5
#define QUEUE_MAX 256		/* replies waiting at once... */
#define QUEUE_BYTES_MAX (4 << 20)	/* ...and their bytes */

struct pending {
	struct pending *next;
	struct worker_socket *l;		/* the socket the datagram came in on */
	uint64_t deadline;
	struct sockaddr_storage peer;
	socklen_t peerlen;
	size_t len;
	char data[];
};

struct dgram_counts {
	unsigned long received, answered, truncated, denied, undeliverable, dropped, failed;
};

struct dgram {
	const struct service *svc;
	dgram_job_fn *job;
	void *job_ctx;
	struct mmsghdr msgs[DGRAM_BATCH];
	struct iovec iov[DGRAM_BATCH];
	struct sockaddr_storage peers[DGRAM_BATCH];
	union {
		char buf[CMSG_SPACE(sizeof(struct ucred))];
		struct cmsghdr align;
	} control[DGRAM_BATCH];
	char *bufs;			/* DGRAM_BATCH * DGRAM_MAX */
	struct pending *queue, **queue_tail;
	unsigned queued;
	size_t queued_bytes;
	struct dgram_counts n;
	struct ratelimit trouble;
	char last_trouble[ADDRESS_TEXT_MAX + 128];
};

struct dgram *dgram_new(const struct service *svc, dgram_job_fn *job, void *job_ctx)
{
	struct dgram *dg = calloc(1, sizeof(*dg));

	if (dg)
		dg->bufs = malloc((size_t)DGRAM_BATCH * DGRAM_MAX);
	if (!dg || !dg->bufs) {
		log_error("out of memory for datagram buffers");
		free(dg);
		return NULL;
	}
	dg->svc = svc;
	dg->job = job;
	dg->job_ctx = job_ctx;
	dg->queue_tail = &dg->queue;
	return dg;
}

static void log_counts(const struct dgram *dg, int level, const char *what)
{
	log_msg(level, "datagrams%s: received %lu, answered %lu, truncated %lu, denied %lu, "
		"undeliverable %lu, dropped %lu, failed %lu", what, dg->n.received, dg->n.answered,
		dg->n.truncated, dg->n.denied, dg->n.undeliverable, dg->n.dropped, dg->n.failed);
}

/* Counts a datagram of sender from that got no reply; says why at a
 * bounded rate. Only then is the sender named: formatting every datagram's
 * address would cost more than answering it. */
static void lost(struct dgram *dg, unsigned long *counter, const struct sockaddr_storage *from,
		 socklen_t fromlen, const char *why)
{
	char peer[ADDRESS_TEXT_MAX];

	(*counter)++;
	address_format((const struct sockaddr *)from, fromlen, peer, sizeof(peer));
	snprintf(dg->last_trouble, sizeof(dg->last_trouble), "%.127s: %.120s", peer, why);
	ratelimit_event(&dg->trouble, 0);	/* reported from the loop, by dgram_report() */
}

void dgram_report(struct dgram *dg, uint64_t now)
{
	char what[sizeof(dg->last_trouble) + 96];

	if (!dg || !ratelimit_pending(&dg->trouble, now, false))
		return;
	snprintf(what, sizeof(what), " not answered: %lu since the last report (last %s); in all",
		 dg->trouble.since_log, dg->last_trouble);
	log_counts(dg, LOG_WARNING, what);
	ratelimit_logged(&dg->trouble, now);
}

static void unqueue(struct dgram *dg, struct pending **link)
{
	struct pending *p = *link;

	*link = p->next;
	if (dg->queue_tail == &p->next)
		dg->queue_tail = link;
	dg->queued--;
	dg->queued_bytes -= p->len;
	free(p);
}

void dgram_drop_queue(struct dgram *dg)
{
	while (dg && dg->queue) {
		lost(dg, &dg->n.dropped, &dg->queue->peer, dg->queue->peerlen,
		     "stopping with the reply still queued");
		unqueue(dg, &dg->queue);
	}
}

void dgram_publish(const struct dgram *dg, struct counter_row *row)
{
	counter_set(row, COUNTER_DGRAM_ANSWERED, dg->n.answered);
	counter_set(row, COUNTER_DGRAM_TRUNCATED, dg->n.truncated);
	counter_set(row, COUNTER_DGRAM_DENIED, dg->n.denied);
	counter_set(row, COUNTER_DGRAM_UNDELIVERABLE, dg->n.undeliverable);
	counter_set(row, COUNTER_DGRAM_DROPPED, dg->n.dropped);
	counter_set(row, COUNTER_DGRAM_FAILED, dg->n.failed);
}

void dgram_free(struct dgram *dg)
{
	if (!dg)
		return;
	dgram_drop_queue(dg);
	if (dg->n.received)
		log_counts(dg, dg->trouble.total ? LOG_NOTICE : LOG_INFO, "");
	free(dg->bufs);
	free(dg);
}

/* An unbound unix client has no address to answer to. */
static bool has_return_address(const struct sockaddr_storage *ss, socklen_t len)
{
	return ss->ss_family != AF_UNIX || len > sizeof(sa_family_t);
}

/* 0 sent, 1 "not now" (a full receiver), -1 failed for good (errno set;
 * EBADF: a stop closed the socket, see dgram_release()). */
static int try_send(const struct worker_socket *l, const void *data, size_t len,
		    const struct sockaddr_storage *to, socklen_t tolen)
{
	ssize_t n;

	if (l->fd < 0) {
		errno = EBADF;
		return -1;
	}
	do
		n = sendto(l->fd, data, len, MSG_DONTWAIT | MSG_NOSIGNAL, (const struct sockaddr *)to,
			   tolen);
	while (n < 0 && errno == EINTR);
	if (n >= 0)
		return 0;
	return errno == EAGAIN || errno == EWOULDBLOCK || errno == ENOBUFS ? 1 : -1;
}

/* A receiver that is gone, or never could receive, versus our own failure. */
static void send_failed(struct dgram *dg, int err, const struct sockaddr_storage *to,
			socklen_t tolen)
{
	char why[96];

	snprintf(why, sizeof(why), "sendto: %s", strerror(err));
	if (err == EBADF)
		lost(dg, &dg->n.dropped, to, tolen, "its socket was closed by a stop");
	else if (err == ECONNREFUSED || err == ENOENT || err == ENOTCONN || err == EPERM)
		lost(dg, &dg->n.undeliverable, to, tolen, why);
	else
		lost(dg, &dg->n.failed, to, tolen, why);
}

static void enqueue(struct dgram *dg, struct worker_socket *l, const void *data, size_t len,
		    const struct sockaddr_storage *to, socklen_t tolen, uint64_t now)
{
	struct pending *p;

	if (dg->queued >= QUEUE_MAX || dg->queued_bytes + len > QUEUE_BYTES_MAX) {
		lost(dg, &dg->n.dropped, to, tolen, "receiver full and the reply queue too");
		return;
	}
	p = malloc(sizeof(*p) + len);
	if (!p) {
		lost(dg, &dg->n.failed, to, tolen, "out of memory for a queued reply");
		return;
	}
	*p = (struct pending){ .l = l, .deadline = now + SEND_WAIT_MS, .peer = *to,
			       .peerlen = tolen, .len = len };
	memcpy(p->data, data, len);
	*dg->queue_tail = p;
	dg->queue_tail = &p->next;
	dg->queued++;
	dg->queued_bytes += len;
}

static void reply(struct dgram *dg, struct worker_socket *l, const void *data, size_t len,
		  const struct sockaddr_storage *to, socklen_t tolen, uint64_t now)
{
	int rc;

	if (!has_return_address(to, tolen)) {
		lost(dg, &dg->n.undeliverable, to, tolen,
		     "unix client without an address to answer to");
		return;
	}
	rc = try_send(l, data, len, to, tolen);
	if (rc == 0)
		dg->n.answered++;
	else if (rc > 0)
		enqueue(dg, l, data, len, to, tolen, now);
	else
		send_failed(dg, errno, to, tolen);
}

/* Tries the waiting replies, of socket only or of all: one sent, or failed
 * for good, leaves the queue; one still "not now" waits until its
 * deadline, or is dropped at once when final. */
static void retry_queued(struct dgram *dg, const struct worker_socket *only, uint64_t now, bool final,
			 const char *why_full)
{
	struct pending **link = dg ? &dg->queue : NULL;

	while (link && *link) {
		struct pending *p = *link;
		int rc;

		if (only && p->l != only) {
			link = &p->next;
			continue;
		}
		rc = try_send(p->l, p->data, p->len, &p->peer, p->peerlen);
		if (rc > 0 && !final && now < p->deadline) {
			link = &p->next;
			continue;
		}
		if (rc == 0)
			dg->n.answered++;
		else if (rc > 0)
			lost(dg, &dg->n.dropped, &p->peer, p->peerlen, why_full);
		else
			send_failed(dg, errno, &p->peer, p->peerlen);
		unqueue(dg, link);
	}
}

void dgram_flush(struct dgram *dg, uint64_t now)
{
	retry_queued(dg, NULL, now, false, "receiver full for too long");
}

uint64_t dgram_next_deadline(const struct dgram *dg, uint64_t now)
{
	uint64_t report;

	if (!dg)
		return 0;
	if (dg->queue)
		return now + SEND_RETRY_MS;	/* sooner than any report */
	report = ratelimit_next(&dg->trouble);
	return report && report < now ? now : report;
}

bool dgram_idle(const struct dgram *dg)
{
	return !dg || !dg->queue;
}

/* The sender's credentials (SO_PASSCRED on unix datagram sockets). */
static void peer_credentials(struct msghdr *h, struct peer *p)
{
	for (struct cmsghdr *c = CMSG_FIRSTHDR(h); c; c = CMSG_NXTHDR(h, c))
		if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_CREDENTIALS) {
			struct ucred cred;

			memcpy(&cred, CMSG_DATA(c), sizeof(cred));
			p->has_cred = true;
			p->pid = cred.pid;
			p->uid = cred.uid;
			p->gid = cred.gid;
		}
}

static void answer(struct dgram *dg, struct worker_socket *l, struct mmsghdr *m, const char *data, uint64_t now)
{
	struct msghdr *h = &m->msg_hdr;
	const struct sockaddr_storage *from = h->msg_name;
	socklen_t fromlen = h->msg_namelen;
	struct peer client;
	const void *out;
	size_t outlen = 0;

	dg->n.received++;
	if (h->msg_flags & MSG_TRUNC) {
		lost(dg, &dg->n.truncated, from, fromlen, "datagram larger than 65536 bytes, truncated");
		return;
	}
	access_identify_peer(-1, h->msg_name, h->msg_namelen, &client);
	peer_credentials(h, &client);
	if (!access_allows(dg->svc, &client, -1)) {
		lost(dg, &dg->n.denied, from, fromlen,
		     client.family == AF_UNIX ? "user not allowed" : "address not allowed");
		return;
	}
	if (!dg->svc->handler->datagram) {
		struct dgram_origin origin = { dg, l, *from, fromlen };

		dg->job(dg->job_ctx, &origin, data, m->msg_len, &client);
		return;
	}
	out = dg->svc->handler->datagram(dg->svc, data, m->msg_len, &outlen);
	if (out)
		reply(dg, l, out, outlen, from, fromlen, now);
	else
		lost(dg, &dg->n.failed, from, fromlen, "the handler gave no reply");
}

void dgram_reply(const struct dgram_origin *o, const void *data, size_t len, uint64_t now)
{
	if (len == 0) {
		o->dg->n.answered++;	/* answered with silence: nothing was lost */
		return;
	}
	reply(o->dg, o->l, data, len, &o->from, o->fromlen, now);
}

void dgram_unanswered(const struct dgram_origin *o, const char *why)
{
	lost(o->dg, &o->dg->n.failed, &o->from, o->fromlen, why);
}

/* Up to max datagrams from l into dg->msgs; how many, or -1 (logged, or EAGAIN). */
static int receive_batch(struct dgram *dg, struct worker_socket *l, unsigned max)
{
	int n;

	if (max > DGRAM_BATCH)
		max = DGRAM_BATCH;
	for (unsigned i = 0; i < max; i++) {
		dg->iov[i] = (struct iovec){ dg->bufs + (size_t)i * DGRAM_MAX, DGRAM_MAX };
		dg->msgs[i].msg_hdr = (struct msghdr){
			.msg_name = &dg->peers[i], .msg_namelen = sizeof(dg->peers[i]),
			.msg_iov = &dg->iov[i], .msg_iovlen = 1,
			.msg_control = dg->control[i].buf, .msg_controllen = sizeof(dg->control[i].buf),
		};
	}
	do
		n = recvmmsg(l->fd, dg->msgs, max, MSG_DONTWAIT, NULL);
	while (n < 0 && errno == EINTR);
	if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK)
		log_errno(LOG_ERR, errno, "recvmmsg %s", l->addr.text);
	return n;
}

bool dgram_read(struct dgram *dg, struct worker_socket *l, uint64_t now, unsigned max)
{
	int n = max ? receive_batch(dg, l, max) : 0;

	for (int i = 0; i < n; i++)
		answer(dg, l, &dg->msgs[i], dg->iov[i].iov_base, now);
	return n > 0 && (unsigned)n == (max < DGRAM_BATCH ? max : DGRAM_BATCH);
}

bool dgram_discard(struct dgram *dg, struct worker_socket *l, const char *why)
{
	int n = receive_batch(dg, l, DGRAM_BATCH);

	for (int i = 0; i < n; i++) {
		struct msghdr *h = &dg->msgs[i].msg_hdr;

		dg->n.received++;
		lost(dg, &dg->n.dropped, h->msg_name, h->msg_namelen, why);
	}
	return n == DGRAM_BATCH;
}

void dgram_release(struct dgram *dg, struct worker_socket *l)
{
	retry_queued(dg, l, 0, true, "receiver full when its socket was closed by a stop");
}
