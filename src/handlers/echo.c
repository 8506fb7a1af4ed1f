/* SPDX-License-Identifier: ISC */
/* echo.c - the built-in echo handler (RFC 862): every byte read is written back.
 *
 * Bytes are read into one buffer the whole worker shares and sent back at
 * once, so a connection costs no buffer while its client keeps up (nearly
 * always: a short echo fits in any socket buffer). Only what a slow reader
 * leaves unsent is kept, and nothing more is read from it until that is
 * gone, so a client that sends faster than it reads is held back by flow
 * control instead of growing our memory. */
#include "config.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>

#include "worker/conn.h"
#include "handlers/handler.h"
#include "common/log.h"

#define ECHO_BUFSIZE 16384
#define ECHO_ROUNDS 16		/* then yield to other connections; level-triggered resumes us */

struct echo_state {
	char *pending;		/* read but not yet sent back; NULL when there is none */
	size_t len, off;	/* of pending: its size, and how much of it went */
};

/* A worker is one thread: every connection reads into the same buffer. */
static char scratch[ECHO_BUFSIZE];

static int echo_open(struct conn *c)
{
	(void)c;
	return EPOLLIN;
}

static void echo_close(struct conn *c)
{
	free(((struct echo_state *)c->state)->pending);
}

/* Sends as much of buf as the socket takes now: how much went, or -1 on an
 * error (logged), after which the connection is done. */
static ssize_t send_what_fits(struct conn *c, const char *buf, size_t len)
{
	size_t off = 0;

	while (off < len) {
		ssize_t n = send(c->fd, buf + off, len - off, MSG_NOSIGNAL);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			break;
		if (n < 0) {
			char peer[ADDRESS_TEXT_MAX];

			log_errno(LOG_DEBUG, errno, "%s: send", conn_peer_text(c, peer));
			return -1;
		}
		off += (size_t)n;
	}
	return (ssize_t)off;
}

/* Sends what was kept from an earlier read: 0 once all of it is gone,
 * EPOLLOUT while some still waits, HANDLER_CLOSE on an error. */
static int flush_pending(struct conn *c, struct echo_state *st)
{
	ssize_t n = send_what_fits(c, st->pending + st->off, st->len - st->off);

	if (n < 0)
		return HANDLER_CLOSE;
	st->off += (size_t)n;
	if (st->off < st->len)
		return EPOLLOUT;
	free(st->pending);
	st->pending = NULL;
	return 0;
}

/* Keeps the len bytes the socket would not take: false when out of memory. */
static bool keep(struct conn *c, struct echo_state *st, const char *buf, size_t len)
{
	char peer[ADDRESS_TEXT_MAX];

	st->pending = malloc(len);
	if (!st->pending) {
		log_error("%s: out of memory for %zu unsent bytes; closing", conn_peer_text(c, peer),
			  len);
		return false;
	}
	memcpy(st->pending, buf, len);
	st->off = 0;
	st->len = len;
	return true;
}

/* What echo_back() does when the socket did not take everything at once:
 * the rest goes the careful way (EINTR, EAGAIN, errors). Cold: kept out of
 * the common path, whose every instruction counts. */
static __attribute__((cold)) int echo_back_rest(struct conn *c, struct echo_state *st, size_t n,
						  ssize_t sent)
{
	size_t done = sent > 0 ? (size_t)sent : 0;
	ssize_t more = send_what_fits(c, scratch + done, n - done);

	if (more < 0)
		return HANDLER_CLOSE;
	done += (size_t)more;
	if (done < n)
		return keep(c, st, scratch + done, n - done) ? EPOLLOUT : HANDLER_CLOSE;
	return EPOLLIN;
}

/* Sends back the n bytes just read into scratch: EPOLLIN when all of them
 * went, EPOLLOUT when the socket left some (kept), HANDLER_CLOSE on an
 * error. Nearly always the socket takes them at once. */
static inline int echo_back(struct conn *c, struct echo_state *st, size_t n)
{
	ssize_t sent = send(c->fd, scratch, n, MSG_NOSIGNAL);

	return sent == (ssize_t)n ? EPOLLIN : echo_back_rest(c, st, n, sent);
}

/* Serves what a recv() returned (n) and reads on, ECHO_ROUNDS buffers at
 * most: everything but the common case (cold, like echo_back_rest). */
static __attribute__((cold)) int echo_rounds(struct conn *c, struct echo_state *st, ssize_t n)
{
	for (int round = 1;; round++) {
		int want;

		if (n < 0 && errno == EAGAIN)
			return EPOLLIN;
		if (n < 0 && errno != EINTR) {
			char peer[ADDRESS_TEXT_MAX];

			log_errno(LOG_DEBUG, errno, "%s: recv", conn_peer_text(c, peer));
			return HANDLER_CLOSE;
		}
		if (n == 0)
			return HANDLER_CLOSE;	/* at EOF, everything the client sent went back */
		if (n > 0) {
			want = echo_back(c, st, (size_t)n);
			/* A short read took everything there was: another recv would
			 * only say EAGAIN, and epoll (level-triggered) reports what
			 * comes next. */
			if (want != EPOLLIN || (size_t)n < sizeof(scratch))
				return want;
		}
		if (round == ECHO_ROUNDS)
			return EPOLLIN;
		n = recv(c->fd, scratch, sizeof(scratch), 0);
	}
}

/* Sends what a slow reader left, then reads on. */
static __attribute__((cold)) int echo_resume(struct conn *c, struct echo_state *st)
{
	int want = flush_pending(c, st);

	if (want != 0)
		return want;
	return echo_rounds(c, st, recv(c->fd, scratch, sizeof(scratch), 0));
}

static int echo_ready(struct conn *c, uint32_t revents)
{
	struct echo_state *st = (struct echo_state *)c->state;
	ssize_t n;

	(void)revents;	/* the calls below report errors and hang-ups themselves */
	if (st->pending)
		return echo_resume(c, st);
	n = recv(c->fd, scratch, sizeof(scratch), 0);
	/* The common case on its own, the shortest path: one read that took
	 * everything there was, to send back. */
	if (n > 0 && (size_t)n < sizeof(scratch))
		return echo_back(c, st, (size_t)n);
	if (n == 0)
		return HANDLER_CLOSE;	/* at EOF, everything the client sent went back */
	return echo_rounds(c, st, n);
}

/* RFC 862 over UDP: the datagram goes back as it came. */
static const void *echo_datagram(const struct service *svc, const void *in, size_t len,
				 size_t *reply_len)
{
	(void)svc;
	*reply_len = len;
	return in;
}

const struct handler handler_echo = {
	.name = "echo",
	.state_size = sizeof(struct echo_state),
	.open = echo_open,
	.ready = echo_ready,
	.close = echo_close,
	.datagram = echo_datagram,
};
