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

static int echo_ready(struct conn *c, uint32_t revents)
{
	struct echo_state *st = (struct echo_state *)c->state;
	int want = st->pending ? flush_pending(c, st) : 0;

	(void)revents;	/* the calls below report errors and hang-ups themselves */
	if (want != 0)
		return want;
	for (int round = 0; round < ECHO_ROUNDS; round++) {
		ssize_t n = recv(c->fd, scratch, sizeof(scratch), 0), sent;

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			return EPOLLIN;
		if (n < 0) {
			char peer[ADDRESS_TEXT_MAX];

			log_errno(LOG_DEBUG, errno, "%s: recv", conn_peer_text(c, peer));
		}
		if (n <= 0)
			return HANDLER_CLOSE;	/* at EOF, everything the client sent went back */
		/* Nearly always the socket takes it all at once; else the rest
		 * goes the careful way (EINTR, EAGAIN, errors). */
		sent = send(c->fd, scratch, (size_t)n, MSG_NOSIGNAL);
		if (sent < n) {
			size_t done = sent > 0 ? (size_t)sent : 0;
			ssize_t more = send_what_fits(c, scratch + done, (size_t)n - done);

			if (more < 0)
				return HANDLER_CLOSE;
			sent = (ssize_t)done + more;
		}
		if (sent < n)
			return keep(c, st, scratch + sent, (size_t)(n - sent)) ? EPOLLOUT : HANDLER_CLOSE;
		/* A short read took everything there was: another recv would only
		 * say EAGAIN, and epoll (level-triggered) reports what comes next. */
		if ((size_t)n < sizeof(scratch))
			return EPOLLIN;
	}
	return EPOLLIN;
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
