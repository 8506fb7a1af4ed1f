/* SPDX-License-Identifier: ISC */
/* metrics.c - metrics-listen: HTTP GET /metrics for Prometheus, served from the master's loop without ever blocking it.
 *
 * Just enough HTTP/1.x for a scraper: one request a connection, answered
 * and closed. The request head is read up to METRICS_HEAD_MAX bytes;
 * anything but a well-formed GET (or HEAD) of /metrics is answered with a
 * 4xx and closed. A client's Accept asking for
 * application/openmetrics-text gets OpenMetrics 1.0, any other the
 * Prometheus text format 0.0.4. METRICS_CLIENTS_MAX at once; one that does
 * not send its request, or read its reply, within METRICS_IDLE_MS is
 * dropped. */
#include "config.h"

#include "master/metrics.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/clock.h"
#include "common/evsource.h"
#include "common/log.h"
#include "conf/conf.h"
#include "master/exposition.h"
#include "master/httpreq.h"
#include "master/generation.h"
#include "master/listener.h"
#include "master/master_private.h"

#define METRICS_CLIENTS_MAX 16
#define METRICS_HEAD_MAX 8192
#define METRICS_IDLE_MS 10000
#define METRICS_LISTENERS_MAX 8

struct mclient {
	struct ev_source src;		/* first */
	int fd;
	char head[METRICS_HEAD_MAX + 1];
	size_t len;
	char *out;
	size_t outlen, outoff;
	uint64_t deadline;
	struct mclient *next;
};

struct mlistener {
	struct ev_source src;		/* first */
	struct listener l;
};

static struct {
	struct mlistener ls[METRICS_LISTENERS_MAX];
	size_t nls;
	struct mclient *clients;
	unsigned nclients;
	bool adopted;		/* from the image before this one (an upgrade) */
} mt;

int metrics_open(struct master *m)
{
	const struct config *conf = m->current->conf;
	struct service svc = { .name = (char *)"preforkd metrics", .backlog = METRICS_CLIENTS_MAX,
			       .socket_mode = 0666, .socket_uid = (uid_t)-1,
			       .socket_gid = (gid_t)-1 };

	if (mt.adopted)
		return 0;	/* an upgrade handed them over; restart-only, like the pidfile */
	for (size_t i = 0; i < conf->nmetrics_listen && i < METRICS_LISTENERS_MAX; i++) {
		struct mlistener *ml = &mt.ls[mt.nls];
		struct epoll_event ev = { .events = EPOLLIN, .data.ptr = &ml->src };

		ml->src.kind = EV_METRICS;
		if (listener_open(&ml->l, &conf->metrics_listen[i], &svc) < 0) {
			log_error("metrics-listen %s cannot be had (see above)",
				  conf->metrics_listen[i].text);
			return -1;
		}
		mt.nls++;
		if (epoll_ctl(m->epfd, EPOLL_CTL_ADD, ml->l.fd, &ev) < 0) {
			log_errno(LOG_ERR, errno, "epoll_ctl(ADD) metrics listener");
			return -1;
		}
	}
	return 0;
}

size_t metrics_listeners(const struct listener **out, size_t max)
{
	size_t n = 0;

	for (size_t i = 0; i < mt.nls && n < max; i++)
		out[n++] = &mt.ls[i].l;
	return n;
}

int metrics_adopt(struct master *m, const struct listener *l)
{
	struct mlistener *ml = &mt.ls[mt.nls];
	struct epoll_event ev = { .events = EPOLLIN, .data.ptr = &ml->src };

	if (mt.nls == METRICS_LISTENERS_MAX)
		return -1;
	ml->src.kind = EV_METRICS;
	ml->l = *l;
	mt.nls++;
	mt.adopted = true;
	if (epoll_ctl(m->epfd, EPOLL_CTL_ADD, ml->l.fd, &ev) < 0) {
		log_errno(LOG_ERR, errno, "epoll_ctl(ADD) metrics listener");
		return -1;
	}
	return 0;
}

static void client_free(struct mclient *c)
{
	close(c->fd);
	free(c->out);
	free(c);
	mt.nclients--;
}

void metrics_close(void)
{
	while (mt.clients) {
		struct mclient *c = mt.clients;

		mt.clients = c->next;
		client_free(c);
	}
	for (size_t i = 0; i < mt.nls; i++)
		listener_close(&mt.ls[i].l, true);
	mt.nls = 0;
}

static void drop(struct mclient *c)
{
	for (struct mclient **link = &mt.clients; *link; link = &(*link)->next)
		if (*link == c) {
			*link = c->next;
			break;
		}
	client_free(c);	/* closing it takes it out of the epoll set */
}

void metrics_accept(struct master *m, struct ev_source *src)
{
	struct mlistener *ml = container_of(src, struct mlistener, src);

	for (int i = 0; i < METRICS_CLIENTS_MAX; i++) {
		struct epoll_event ev = { .events = EPOLLIN };
		struct mclient *c;
		int fd = accept4(ml->l.fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);

		if (fd < 0) {
			if (errno != EAGAIN && errno != EINTR && errno != ECONNABORTED)
				log_errno(LOG_ERR, errno, "accept on metrics-listen %s", ml->l.addr.text);
			return;
		}
		if (mt.nclients >= METRICS_CLIENTS_MAX || !(c = calloc(1, sizeof(*c)))) {
			static const char busy[] = "HTTP/1.1 503 Service Unavailable\r\n"
						   "Content-Length: 0\r\nConnection: close\r\n\r\n";

			send(fd, busy, sizeof(busy) - 1, MSG_NOSIGNAL | MSG_DONTWAIT);
			close(fd);
			continue;
		}
		*c = (struct mclient){ .src = { EV_METRICS_CLIENT }, .fd = fd,
				       .deadline = m->now + METRICS_IDLE_MS, .next = mt.clients };
		ev.data.ptr = &c->src;
		if (epoll_ctl(m->epfd, EPOLL_CTL_ADD, fd, &ev) < 0) {
			close(fd);
			free(c);
			continue;
		}
		mt.clients = c;
		mt.nclients++;
	}
}

static void respond(struct mclient *c, const char *status, const char *type, const char *body,
		    size_t body_len, bool head_only)
{
	char head[256];
	int n = snprintf(head, sizeof(head), "HTTP/1.1 %s\r\nContent-Type: %s\r\n"
			 "Content-Length: %zu\r\nConnection: close\r\n\r\n", status, type, body_len);

	c->out = malloc((size_t)n + (head_only ? 0 : body_len));
	if (!c->out)
		return;
	memcpy(c->out, head, (size_t)n);
	if (!head_only)
		memcpy(c->out + n, body, body_len);
	c->outlen = (size_t)n + (head_only ? 0 : body_len);
}

static void respond_error(struct mclient *c, const char *status, const char *why)
{
	respond(c, status, "text/plain; charset=utf-8", why, strlen(why), false);
}

/* The whole head is in: the request line decides. */
static void answer(struct master *m, struct mclient *c)
{
	static const char *const refusals[] = {
		[400 - 400] = "400 Bad Request", [404 - 400] = "404 Not Found",
		[405 - 400] = "405 Method Not Allowed",
	};
	struct http_request r;
	size_t len = 0;
	char *text;

	httpreq_parse(c->head, &r);
	if (r.status != 200) {
		respond_error(c, refusals[r.status - 400], r.why);
		return;
	}
	text = exposition_text(m, r.openmetrics, &len);
	if (!text) {
		respond_error(c, "503 Service Unavailable", "out of memory\n");
		return;
	}
	respond(c, "200 OK", r.openmetrics ? "application/openmetrics-text; version=1.0.0; "
		"charset=utf-8" : "text/plain; version=0.0.4; charset=utf-8", text, len, r.head_only);
	free(text);
}

static void write_out(struct master *m, struct mclient *c)
{
	struct epoll_event ev = { .events = EPOLLOUT, .data.ptr = &c->src };

	while (c->outoff < c->outlen) {
		ssize_t n = send(c->fd, c->out + c->outoff, c->outlen - c->outoff,
				 MSG_NOSIGNAL | MSG_DONTWAIT);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN) {
			epoll_ctl(m->epfd, EPOLL_CTL_MOD, c->fd, &ev);
			return;
		}
		if (n <= 0)
			break;
		c->outoff += (size_t)n;
		c->deadline = m->now + METRICS_IDLE_MS;
	}
	drop(c);	/* all out, or the client is gone */
}

void metrics_client_ready(struct master *m, struct ev_source *src, uint32_t events)
{
	struct mclient *c = container_of(src, struct mclient, src);
	ssize_t n;

	if (c->out) {
		if (events & (EPOLLOUT | EPOLLHUP | EPOLLERR))
			write_out(m, c);
		return;
	}
	n = recv(c->fd, c->head + c->len, METRICS_HEAD_MAX - c->len, 0);
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n <= 0) {
		drop(c);
		return;
	}
	c->len += (size_t)n;
	c->head[c->len] = '\0';
	if (memchr(c->head, '\0', c->len)) {
		respond_error(c, "400 Bad Request", "a NUL in the request\n");
	} else if (strstr(c->head, "\r\n\r\n") || strstr(c->head, "\n\n")) {
		answer(m, c);
	} else if (c->len == METRICS_HEAD_MAX) {
		respond_error(c, "431 Request Header Fields Too Large", "the request is too long\n");
	} else {
		return;	/* more to come */
	}
	if (!c->out) {
		drop(c);	/* no memory for a reply */
		return;
	}
	write_out(m, c);
}

void metrics_tend(uint64_t now)
{
	struct mclient **link = &mt.clients;

	while (*link) {
		struct mclient *c = *link;

		if (now < c->deadline) {
			link = &c->next;
			continue;
		}
		*link = c->next;
		client_free(c);
	}
}

uint64_t metrics_next_deadline(void)
{
	uint64_t d = 0;

	for (const struct mclient *c = mt.clients; c; c = c->next)
		d = clock_sooner(d, c->deadline);
	return d;
}
