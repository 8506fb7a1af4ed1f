/* echo.c - the built-in echo handler (RFC 862): every byte read is written back.
 *
 * It reads only when its buffer is empty, so a client that sends faster than
 * it reads is held back by TCP flow control instead of growing our memory. */
#include "config.h"

#include <errno.h>
#include <stdbool.h>
#include <sys/epoll.h>
#include <sys/socket.h>

#include "conn.h"
#include "handler.h"
#include "log.h"

#define ECHO_BUFSIZE 16384
#define ECHO_ROUNDS 16		/* then yield to other connections; level-triggered resumes us */

struct echo_state {
	size_t len, off;
	bool eof;
	char buf[ECHO_BUFSIZE];
};

static int echo_open(struct conn *c)
{
	(void)c;
	return EPOLLIN;
}

static int echo_ready(struct conn *c, uint32_t revents)
{
	struct echo_state *st = (struct echo_state *)c->state;
	ssize_t n;

	(void)revents;	/* the calls below report errors and hang-ups themselves */
	for (int round = 0; round < ECHO_ROUNDS; round++) {
		if (st->off < st->len) {
			n = send(c->fd, st->buf + st->off, st->len - st->off, MSG_NOSIGNAL);
			if (n < 0 && errno == EINTR)
				continue;
			if (n < 0 && errno == EAGAIN)
				return EPOLLOUT;
			if (n < 0) {
				log_errno(LOG_DEBUG, errno, "%s: send", c->peer);
				return HANDLER_CLOSE;
			}
			st->off += (size_t)n;
			continue;
		}
		st->off = st->len = 0;
		if (st->eof)
			return HANDLER_CLOSE;	/* everything the client sent went back */
		n = recv(c->fd, st->buf, sizeof(st->buf), 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			return EPOLLIN;
		if (n < 0) {
			log_errno(LOG_DEBUG, errno, "%s: recv", c->peer);
			return HANDLER_CLOSE;
		}
		if (n == 0)
			st->eof = true;
		st->len = (size_t)n;
	}
	return st->off < st->len ? EPOLLOUT : EPOLLIN;
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
	.datagram = echo_datagram,
};
