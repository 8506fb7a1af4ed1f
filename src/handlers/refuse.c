/* SPDX-License-Identifier: ISC */
/* refuse.c - how a client turned away by a connection limit is closed: the busy message, then EOF.
 *
 * Closing a socket that still holds unread client bytes makes the kernel
 * send a reset, and the client may lose the message with it. So the
 * connection is half-closed after the message and what the client sends is
 * read and dropped until it closes too, for REFUSE_LINGER_MS at most. */
#include "config.h"

#include <errno.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>

#include "conf/conf.h"
#include "worker/conn.h"
#include "handlers/handler.h"

#define REFUSE_LINGER_MS 2000
#define DRAIN_MAX 65536		/* per wakeup: a client cannot keep us here */

static int refuse_open(struct conn *c)
{
	const char *msg = c->svc->busy_message;

	if (msg && send(c->fd, msg, strlen(msg), MSG_DONTWAIT | MSG_NOSIGNAL) < 0)
		return HANDLER_CLOSE;	/* a fresh socket takes a short message: it is gone */
	if (shutdown(c->fd, SHUT_WR) < 0)
		return HANDLER_CLOSE;
	return EPOLLIN;
}

static int refuse_ready(struct conn *c, uint32_t revents)
{
	char buf[4096];

	(void)revents;
	for (size_t drained = 0; drained < DRAIN_MAX; ) {
		ssize_t n = recv(c->fd, buf, sizeof(buf), MSG_DONTWAIT);

		if (n > 0) {
			drained += (size_t)n;
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			return EPOLLIN;
		return HANDLER_CLOSE;	/* EOF or an error: the client is done */
	}
	return EPOLLIN;
}

static unsigned refuse_timeout(const struct service *svc)
{
	(void)svc;
	return REFUSE_LINGER_MS;
}

const struct handler handler_refuse = {
	.name = "refuse",
	.open = refuse_open,
	.ready = refuse_ready,
	.timeout = refuse_timeout,
};
