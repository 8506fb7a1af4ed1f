/* SPDX-License-Identifier: ISC */
/* admit.c - who a worker serves: access control, shared limits, clients turned away, datagram jobs. */
#include "config.h"

#include <errno.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <stdio.h>
#include <sys/mman.h>
#include <unistd.h>

#include "conf/conf.h"
#include "common/fdutil.h"
#include "handlers/handler.h"
#include "common/log.h"
#include "worker/proxyproto.h"
#include "worker/conn.h"
#include "worker/counters.h"
#include "worker/worker_private.h"

/* Clients turned away by a limit, each read until it closes (refuse.c); past
 * this many at once, the next ones are closed at once. */
#define LINGERING_MAX 32
#define PROXY_HEADER_TIMEOUT_MS 5000	/* for a whole PROXY header, from the accept */

static const enum counter limit_counters[] = {
	[LIMITS_SOURCE] = COUNTER_PER_SOURCE,
	[LIMITS_TOTAL] = COUNTER_SERVICE_LIMIT,
	[LIMITS_UNAVAILABLE] = COUNTER_UNAVAILABLE,
};

static const char *const limit_reasons[] = {
	[LIMITS_SOURCE] = "max-per-source reached",
	[LIMITS_TOTAL] = "max-service-connections reached",
	[LIMITS_UNAVAILABLE] = "connection counts unavailable",
};

/* A datagram as input, in a descriptor a helper can read to its end. */
static int datagram_input(const void *data, size_t len)
{
	int fd = memfd_create("preforkd-datagram", MFD_CLOEXEC);

	if (fd >= 0 && (fd_write_all(fd, data, len) < 0 || lseek(fd, 0, SEEK_SET) < 0)) {
		int err = errno;

		close(fd);
		errno = err;
		return -1;
	}
	return fd;
}

void admit_datagram(void *ctx, const struct dgram_origin *origin, const void *data, size_t len,
		    const struct peer *client)
{
	struct worker *w = ctx;
	struct source_key key;
	enum limits_verdict v = LIMITS_OK;
	int in;

	/* Reading stops at max-connections; the rest of a batch gets here. */
	if (serving(w) >= w->svc->max_connections) {
		dgram_unanswered(origin, "max-connections helpers already running");
		return;
	}
	if (w->limits) {
		limits_key_of(client, &key);
		v = limits_take(w->limits, w->row, &key);
	}
	if (v != LIMITS_OK) {
		dgram_unanswered(origin, limit_reasons[v]);
		return;
	}
	in = datagram_input(data, len);
	if (in < 0) {
		int err = errno;

		if (err == EMFILE || err == ENFILE) {
			w->accept_paused_until = w->now + ACCEPT_PAUSE_MS;
			w->sockets_dirty = true;
			worker_due(w, w->accept_paused_until);
		}
		if (ratelimit_event(&w->starved, w->now)) {
			char peer[ADDRESS_TEXT_MAX];

			address_format((const struct sockaddr *)&origin->from, origin->fromlen, peer,
				       sizeof(peer));
			log_errno(LOG_WARNING, err, "%s: memfd for a datagram: pausing reads, "
				  "%lu times since last report", peer, w->starved.since_log);
			ratelimit_logged(&w->starved, w->now);
		}
		if (w->limits)
			limits_release(w->limits, w->row, &key);
		dgram_unanswered(origin, "no descriptor for its input");
		return;
	}
	conn_open(w, in, w->svc->handler, origin->l, client, w->limits ? &key : NULL, origin);
}

void admit_report(struct worker *w, bool final)
{
	for (int k = 0; k < TURNED_AWAY_KINDS; k++) {
		struct turned_away *t = &w->turned_away[k];

		if (!ratelimit_pending(&t->rl, w->now, final))
			continue;
		log_notice("%s %lu connection%s (last: %s, %s), %lu in all", t->verb,
			   t->rl.since_log, t->rl.since_log == 1 ? "" : "s", t->peer, t->why,
			   t->rl.total);
		ratelimit_logged(&t->rl, w->now);
	}
}

/* Only a client turned away is named at once (the rest when a message
 * needs it): formatting every peer's address costs more than its echo. */
static void note_turned_away(struct worker *w, int kind, enum counter counted, const char *why,
			     const struct sockaddr *sa, socklen_t len)
{
	struct turned_away *t = &w->turned_away[kind];

	counter_add(w->counters, counted, 1);
	address_format(sa, len, t->peer, sizeof(t->peer));
	t->why = why;
	if (ratelimit_event(&t->rl, w->now))
		admit_report(w, false);
	worker_due(w, w->now);	/* the next report's time is known there */
}

/* A new connection, or c (after its header) going to handler h. Inlined,
 * as the rest of admission: it runs for every accepted connection. */
static inline __attribute__((always_inline)) void conn_start(struct worker *w, struct conn *c, int fd, const struct handler *h,
		       const struct worker_socket *via, const struct peer *client,
		       const struct source_key *counted)
{
	if (c)
		conn_reopen(w, c, h, client, counted);
	else
		conn_open(w, fd, h, via, client, counted, NULL);
}

/* Access rules and limits for client: the service's handler, the refusal,
 * or nothing (closed). Into c when it is open already (the PROXY header
 * was read on it), else a new connection. */
static inline __attribute__((always_inline)) void admit_client(struct worker *w, struct conn *c,
		int fd, const struct peer *client, const struct worker_socket *via,
		const struct sockaddr *sa, socklen_t len);

void admit_connection(struct worker *w, int fd, const struct sockaddr *sa, socklen_t len,
		      const struct worker_socket *via)
{
	struct peer client;

	access_identify_peer(w->needs_credentials ? fd : -1, sa, len, &client);
	if (w->svc->accept_proxy_protocol) {
		/* Only a source it is told to believe may say who the client is. */
		if (!access_in_ranges(w->svc->proxy_protocol_from, w->svc->nproxy_protocol_from,
				      &client)) {
			note_turned_away(w, DENIED, COUNTER_PROXY_HEADER,
					 "a PROXY header expected, not from proxy-protocol-from",
					 sa, len);
			close(fd);
			return;
		}
		conn_open(w, fd, &handler_proxy_header, via, &client, NULL, NULL);
		return;
	}
	admit_client(w, NULL, fd, &client, via, sa, len);
}

/* The header is read with MSG_PEEK, so that the bytes after it stay in the
 * socket for the service's handler, and taken once it is whole; its parts
 * are waited for edge-triggered (peeked bytes would wake a level-triggered
 * wait at once, again and again). */
static int header_ready(struct conn *c, uint32_t revents)
{
	struct worker *w = c->worker;
	unsigned char buf[PROXYPROTO_V2_MAX];
	struct proxyproto h;
	struct sockaddr_storage ss;
	socklen_t sslen = access_peer_sockaddr(&c->client, &ss);
	struct peer client = c->client;
	enum proxyproto_result r;
	ssize_t n;

	(void)revents;
	n = recv(c->fd, buf, sizeof(buf), MSG_PEEK);
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return EPOLLIN | EPOLLET;
	r = n > 0 ? proxyproto_parse(buf, (size_t)n, &h) : PROXYPROTO_BAD;
	if (r == PROXYPROTO_MORE)
		return EPOLLIN | EPOLLET;
	if (r == PROXYPROTO_BAD || recv(c->fd, buf, h.len, 0) != (ssize_t)h.len) {
		note_turned_away(w, DENIED, COUNTER_PROXY_HEADER,
				 n <= 0 ? "closed or reset before its PROXY header" : h.why,
				 (struct sockaddr *)&ss, sslen);
		return HANDLER_CLOSE;
	}
	if (!h.local)
		access_identify_peer(-1, (struct sockaddr *)&h.src, h.srclen, &client);
	sslen = access_peer_sockaddr(&client, &ss);
	admit_client(w, c, c->fd, &client, c->via, (struct sockaddr *)&ss, sslen);
	return HANDLER_HANDED_OVER;
}

static int header_expire(struct conn *c)
{
	struct sockaddr_storage ss;
	socklen_t len = access_peer_sockaddr(&c->client, &ss);

	note_turned_away(c->worker, DENIED, COUNTER_PROXY_HEADER, "no whole PROXY header in 5 s",
			 (struct sockaddr *)&ss, len);
	return HANDLER_CLOSE;
}

static unsigned header_timeout(const struct service *svc)
{
	(void)svc;
	return PROXY_HEADER_TIMEOUT_MS;
}

static int header_open(struct conn *c)
{
	return header_ready(c, 0);
}

const struct handler handler_proxy_header = {
	.name = "proxy-header",
	.open = header_open,
	.ready = header_ready,
	.expire = header_expire,
	.timeout = header_timeout,
};

static inline __attribute__((always_inline)) void admit_client(struct worker *w, struct conn *c,
		int fd, const struct peer *client, const struct worker_socket *via,
		const struct sockaddr *sa, socklen_t len)
{
	struct source_key key;
	enum limits_verdict v;

	if (w->svc_has_access_rules && !access_allows(w->svc, client, fd)) {
		note_turned_away(w, DENIED, COUNTER_DENIED,
				 client->family == AF_UNIX ? "user not allowed" : "address not allowed",
				 sa, len);
		if (c)
			conn_close(w, c);
		else
			close(fd);
		return;
	}
	if (!w->limits) {
		conn_start(w, c, fd, w->svc->handler, via, client, NULL);
		return;
	}
	limits_key_of(client, &key);
	v = limits_take(w->limits, w->row, &key);
	if (v == LIMITS_OK) {
		conn_start(w, c, fd, w->svc->handler, via, client, &key);
		return;
	}
	note_turned_away(w, REFUSED, limit_counters[v], limit_reasons[v], sa, len);
	if (w->nlingering < LINGERING_MAX) {
		conn_start(w, c, fd, &handler_refuse, via, client, NULL);
		return;
	}
	if (c)
		conn_close(w, c);
	else
		close(fd);
}
