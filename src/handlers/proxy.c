/* SPDX-License-Identifier: ISC */
/* proxy.c - handler "proxy": each connection forwarded to an upstream (TCP or unix), bytes moved with splice.
 *
 * One upstream is chosen per client (balance: round-robin, least-connections
 * or first), connected without blocking; one that refuses, or does not
 * answer within connect-timeout, is skipped for a while (1 s, doubling up
 * to 30 s: passive health, per worker, said once when it goes and once
 * when it is back) and the next is tried, each at most once, before the
 * client is closed and counted. Each direction has a pipe: splice() moves
 * bytes from one socket into it and out into the other without copying
 * them through us (a buffer where the kernel cannot splice). A side is
 * read only while its pipe has room, so a peer that does not read holds
 * the other back (flow control both ways); the end of one side's bytes is
 * passed on as a half-close (shutdown(SHUT_WR)), and a reset as a reset.
 * Pipes of closed connections are kept for the next, within
 * max-connections. What the client sends while the upstream is being
 * connected waits in its pipe. With send-proxy-protocol, a PROXY header
 * (version 1 or 2) naming the client goes to the upstream first. */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/clock.h"
#include "common/log.h"
#include "common/ratelimit.h"
#include "conf/conf.h"
#include "handlers/handler.h"
#include "worker/access.h"
#include "worker/conn.h"
#include "worker/proxyproto.h"

#define PROXY_BUFSIZE 65536		/* a direction's buffer where splice cannot be used */
#define PROXY_ROUNDS 4			/* fill and drain per event, then others get a turn */
#define HEALTH_BACKOFF_MIN_MS 1000
#define HEALTH_BACKOFF_MAX_MS 30000
#define PIPES_KEPT_MAX 256
#define PROXY_PIPE_SIZE (256 * 1024)	/* asked for each new pipe */
#define PROXY_RETRY_MS 100		/* a client waiting for descriptors tries again */

/* What one worker knows of an upstream. */
struct upstream_health {
	uint64_t down_until;		/* skipped until then; 0: up */
	unsigned backoff_ms;		/* the next time it fails */
	unsigned active;		/* this worker's connections to it */
	bool said_down;
};

/* One direction's bytes in flight: a pipe, or a buffer when splice cannot be used. */
struct flow {
	int pr, pw;			/* the pipe's ends; -1 without */
	unsigned len, cap;		/* bytes in it, and its size */
	char *buf;			/* buffer mode: len bytes from off */
	unsigned off;
	bool eof;			/* its source has no more */
	bool shut;			/* and that was passed on */
};

struct proxy_state {
	struct conn_peer up;		/* the upstream socket */
	struct flow c2u, u2c;		/* client to upstream, upstream to client */
	unsigned current;		/* index of the upstream in use */
	unsigned long tried;		/* bit i: upstream i was tried (the first 64) */
	bool connected, counted_up;
	bool starved;			/* accepted with no descriptors for its pipes: waits */
	bool reset;			/* a side was reset: so is the other */
};

static struct {
	const struct service *svc;
	struct upstream_health *health;
	unsigned next;			/* round-robin's turn */
	int (*kept)[2];			/* empty pipes for the next connections */
	size_t nkept;
	struct ratelimit failed;	/* clients no upstream could take */
	struct ratelimit starved;	/* clients that found no descriptor */
} px;

/* socket() or pipe() failed for a client (it is closed, or waits: the
 * caller's); out of descriptors, the worker pauses accepting. Said at most
 * every 10 s. */
static void starved(struct conn *c, const char *what)
{
	int err = errno;

	if (err == EMFILE || err == ENFILE)
		conn_out_of_descriptors(c);
	if (ratelimit_event(&px.starved, clock_now_ms())) {
		log_errno(LOG_WARNING, err, "service '%s': %s (%lu times so far)", c->svc->name,
			  what, px.starved.total);
		ratelimit_logged(&px.starved, clock_now_ms());
	}
}

static struct upstream_health *health_of(const struct service *svc)
{
	if (px.svc != svc) {
		free(px.health);
		px.health = calloc(svc->nupstream, sizeof(*px.health));
		px.svc = px.health ? svc : NULL;
	}
	return px.health;
}

static bool take_pipe(struct flow *f)
{
	int fds[2];

	if (px.nkept) {
		px.nkept--;
		fds[0] = px.kept[px.nkept][0];
		fds[1] = px.kept[px.nkept][1];
	} else if (pipe2(fds, O_NONBLOCK | O_CLOEXEC) < 0) {
		return false;
	} else {
		/* Bigger than the default 64 KiB: a bulk transfer then takes
		 * fewer splices and fewer wakeups per byte. Over the user's
		 * pipe-user-pages-soft, the kernel keeps the default. */
		fcntl(fds[1], F_SETPIPE_SZ, PROXY_PIPE_SIZE);
	}
	f->pr = fds[0];
	f->pw = fds[1];
	f->cap = (unsigned)fcntl(fds[1], F_GETPIPE_SZ);
	if ((int)f->cap <= 0)
		f->cap = 65536;
	return true;
}

/* An empty pipe is kept for the next connection; one with bytes left, closed. */
static void put_pipe(const struct service *svc, struct flow *f)
{
	int (*more)[2];

	free(f->buf);
	f->buf = NULL;
	if (f->pr < 0)
		return;
	if (f->len == 0 && px.nkept < PIPES_KEPT_MAX && px.nkept < 2 * svc->max_connections) {
		if (!px.kept && !(px.kept = calloc(PIPES_KEPT_MAX, sizeof(*px.kept))))
			goto close;
		more = px.kept;
		more[px.nkept][0] = f->pr;
		more[px.nkept][1] = f->pw;
		px.nkept++;
		f->pr = f->pw = -1;
		return;
	}
close:
	close(f->pr);
	close(f->pw);
	f->pr = f->pw = -1;
}

static void mark_down(const struct conn *c, unsigned i, const char *why)
{
	struct upstream_health *h = &health_of(c->svc)[i];
	uint64_t now = clock_now_ms();

	h->backoff_ms = h->backoff_ms ? h->backoff_ms : HEALTH_BACKOFF_MIN_MS;
	h->down_until = now + h->backoff_ms;
	if (!h->said_down)
		log_warn("service '%s': upstream %s: %s; skipped for %u ms (longer while it goes "
			 "on)", c->svc->name, c->svc->upstream[i].text, why, h->backoff_ms);
	h->said_down = true;
	h->backoff_ms = h->backoff_ms * 2 > HEALTH_BACKOFF_MAX_MS ? HEALTH_BACKOFF_MAX_MS :
								      h->backoff_ms * 2;
}

static void mark_up(const struct conn *c, unsigned i)
{
	struct upstream_health *h = &health_of(c->svc)[i];

	if (h->said_down)
		log_notice("service '%s': upstream %s answers again", c->svc->name,
			   c->svc->upstream[i].text);
	*h = (struct upstream_health){ .active = h->active };
}

static bool tried(const struct proxy_state *st, unsigned i)
{
	return i < 64 && (st->tried >> i) & 1;
}

/* The next upstream to try for this client: by the balance among those up
 * and not tried yet, else any not tried (all down: try them anyway, once);
 * -1 when every one was. */
static int choose(const struct conn *c, const struct proxy_state *st)
{
	const struct service *svc = c->svc;
	struct upstream_health *h = health_of(svc);
	uint64_t now = clock_now_ms();
	unsigned n = (unsigned)svc->nupstream;
	int best = -1;

	for (int pass = 0; pass < 2 && best < 0; pass++)
		for (unsigned k = 0; k < n; k++) {
			unsigned i = svc->balance == BALANCE_FIRST ? k : (px.next + k) % n;

			if (tried(st, i) || (pass == 0 && h[i].down_until > now))
				continue;
			if (svc->balance != BALANCE_LEAST_CONNECTIONS) {
				best = (int)i;
				break;
			}
			if (best < 0 || h[i].active < h[best].active)
				best = (int)i;
		}
	if (best >= 0 && svc->balance != BALANCE_FIRST)
		px.next = ((unsigned)best + 1) % n;
	return best;
}

static void leave_upstream(struct conn *c, struct proxy_state *st)
{
	if (st->counted_up)
		health_of(c->svc)[st->current].active--;
	st->counted_up = false;
	conn_peer_close(c, &st->up);
	st->connected = false;
}

/* Connects to the next upstream: 0 while one is connecting or connected,
 * -1 when none is left (the client is to be closed, counted), -2 when the
 * worker is out of descriptors for the socket. */
static int connect_next(struct conn *c, struct proxy_state *st)
{
	char peer[ADDRESS_TEXT_MAX];
	int i;

	leave_upstream(c, st);
	while ((i = choose(c, st)) >= 0) {
		const struct address *a = &c->svc->upstream[i];
		int fd = socket(a->family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

		if (i < 64)
			st->tried |= 1UL << i;
		if (fd < 0 && (errno == EMFILE || errno == ENFILE)) {
			if (i < 64)
				st->tried &= ~(1UL << i);	/* not the upstream's fault */
			return -2;
		}
		if (fd < 0) {
			starved(c, "no socket for an upstream");
			return -1;
		}
		st->current = (unsigned)i;
		st->up.fd = fd;
		health_of(c->svc)[i].active++;
		st->counted_up = true;
		/* Connected at once (a unix socket) or not: its writability says. */
		if (connect(fd, (const struct sockaddr *)&a->sa, a->len) == 0 || errno == EINPROGRESS)
			return conn_peer_watch(c, &st->up, EPOLLOUT);
		/* A unix listener with a full backlog says EAGAIN at once. */
		mark_down(c, (unsigned)i, errno == EAGAIN ? "has a full accept queue" :
			  strerror(errno));
		leave_upstream(c, st);
	}
	conn_count(c, COUNTER_UPSTREAM_FAILED);
	if (ratelimit_event(&px.failed, clock_now_ms())) {
		log_warn("service '%s': no upstream took %s (%lu clients closed so)", c->svc->name,
			 conn_peer_text(c, peer), px.failed.total);
		ratelimit_logged(&px.failed, clock_now_ms());
	}
	return -1;
}

/* From fd into f: the bytes moved, or -1 when fd failed (reset). *more
 * says whether fd may hold more: the read filled all the room there was. */
static ssize_t fill(struct flow *f, int fd, bool *more)
{
	size_t room = f->cap - f->len;
	ssize_t n;

	if (f->eof) {
		*more = false;
		return 0;
	}
	if (f->len >= f->cap)
		return 0;	/* *more as it was: read again once there is room */
	if (f->buf) {
		n = recv(fd, f->buf + f->len, room, 0);
	} else {
		n = splice(fd, NULL, f->pw, NULL, room, SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
		if (n < 0 && errno == EINVAL && (f->buf = malloc(PROXY_BUFSIZE))) {
			/* Not a file the kernel splices: a buffer from now on. */
			close(f->pr);
			close(f->pw);
			f->pr = f->pw = -1;
			f->cap = PROXY_BUFSIZE;
			room = f->cap - f->len;
			n = recv(fd, f->buf + f->len, room, 0);
		}
	}
	*more = n > 0 && (size_t)n == room;
	if (n > 0)
		f->len += (unsigned)n;
	else if (n == 0)
		f->eof = true;
	else if (errno != EAGAIN && errno != EINTR)
		return -1;
	return n > 0 ? n : 0;
}

/* From f into fd: the bytes moved, or -1 when fd failed (reset, or gone). */
static ssize_t drain(struct flow *f, int fd)
{
	ssize_t n;

	if (f->len == 0)
		return 0;
	if (f->buf) {
		n = send(fd, f->buf + f->off, f->len - f->off, MSG_NOSIGNAL);
		if (n > 0 && (f->off += (unsigned)n) == f->len)
			f->off = f->len = 0;
	} else {
		n = splice(f->pr, NULL, fd, NULL, f->len, SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
		if (n > 0)
			f->len -= (unsigned)n;
	}
	if (n < 0 && errno != EAGAIN && errno != EINTR)
		return -1;
	return n > 0 ? n : 0;
}

/* Its source is done and everything went: the other side hears the end. */
static void pass_eof(struct flow *f, int fd)
{
	if (f->eof && f->len == 0 && !f->shut) {
		shutdown(fd, SHUT_WR);
		f->shut = true;
	}
}

/* A reset on one side is one on the other: closed with SO_LINGER 0. */
static void reset_on_close(int fd)
{
	struct linger l = { 1, 0 };

	if (fd >= 0)
		setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof(l));
}

/* Moves what can be moved both ways: a side is read only while it may
 * have more (its event said so, or its last read took all the room there
 * was), so a ping-pong costs a read and a write each way and nothing else.
 * The client's events to wait for, or HANDLER_CLOSE. */
static int pump(struct conn *c, struct proxy_state *st, bool client_in, bool up_in)
{
	uint32_t up = 0, client = 0;
	int upfd = st->up.fd;

	for (int round = 0; round < PROXY_ROUNDS; round++) {
		ssize_t moved = 0, n;	/* bytes drained: room made */

		if (client_in && (n = fill(&st->c2u, c->fd, &client_in)) < 0) {
			reset_on_close(upfd);
			return HANDLER_CLOSE;
		}
		if (st->connected && up_in && (n = fill(&st->u2c, upfd, &up_in)) < 0) {
			reset_on_close(c->fd);
			return HANDLER_CLOSE;
		}
		if (st->connected && (n = drain(&st->c2u, upfd)) != 0) {
			if (n < 0) {
				reset_on_close(c->fd);
				return HANDLER_CLOSE;
			}
			moved += n;
		}
		if ((n = drain(&st->u2c, c->fd)) != 0) {
			if (n < 0) {
				reset_on_close(upfd);
				return HANDLER_CLOSE;
			}
			moved += n;
		}
		if (st->connected)
			pass_eof(&st->c2u, upfd);
		pass_eof(&st->u2c, c->fd);
		/* Again only if a drain made room for a side that has more. */
		if (!moved || (!client_in && !up_in))
			break;
	}
	if (st->c2u.shut && st->u2c.shut)
		return HANDLER_CLOSE;	/* both ends said all they had */
	if (!st->c2u.eof && st->c2u.len < st->c2u.cap)
		client |= EPOLLIN;
	if (st->u2c.len)
		client |= EPOLLOUT;
	if (st->connected) {
		if (!st->u2c.eof && st->u2c.len < st->u2c.cap)
			up |= EPOLLIN;
		if (st->c2u.len)
			up |= EPOLLOUT;
		if (conn_peer_watch(c, &st->up, up) < 0)
			return HANDLER_CLOSE;
	}
	return client ? (int)client : HANDLER_IDLE;
}

/* send-proxy-protocol: the header goes first, into an empty socket just
 * connected, so all of it goes at once. false when it could not. */
static bool send_header(struct conn *c, struct proxy_state *st)
{
	unsigned char hdr[PROXYPROTO_V2_MAX];
	struct sockaddr_storage src, dst;
	socklen_t srclen = access_peer_sockaddr(&c->client, &src), dstlen = sizeof(dst);
	size_t len;

	if (!c->svc->send_proxy_protocol)
		return true;
	if (getsockname(c->fd, (struct sockaddr *)&dst, &dstlen) < 0)
		dstlen = 0;
	if (!srclen) {
		srclen = sizeof(src);
		if (getpeername(c->fd, (struct sockaddr *)&src, &srclen) < 0)
			srclen = 0;
	}
	if (!srclen || !dstlen) {
		src.ss_family = dst.ss_family = AF_UNSPEC;
		srclen = dstlen = sizeof(sa_family_t);
	}
	len = proxyproto_build(c->svc->send_proxy_protocol, (struct sockaddr *)&src, srclen,
			       (struct sockaddr *)&dst, dstlen, hdr, sizeof(hdr));
	return len && send(st->up.fd, hdr, len, MSG_NOSIGNAL) == (ssize_t)len;
}

/* Closes the pipes of a flow, and every kept one: descriptors are short. */
static void drop_pipes(struct flow *f)
{
	if (f->pr >= 0) {
		close(f->pr);
		close(f->pw);
	}
	f->pr = f->pw = -1;
	f->len = 0;
	while (px.nkept) {
		px.nkept--;
		close(px.kept[px.nkept][0]);
		close(px.kept[px.nkept][1]);
	}
}

/* Its pipes and its upstream: the client's events, HANDLER_IDLE while
 * it waits for descriptors, or HANDLER_CLOSE. */
static int start(struct conn *c, struct proxy_state *st)
{
	int up = -2;

	if (take_pipe(&st->c2u) && take_pipe(&st->u2c)) {
		up = connect_next(c, st);
		if (up == 0) {
			st->starved = false;
			c->starved = false;	/* it holds what it frees from now on */
			return pump(c, st, true, false);
		}
		if (up == -1)
			return HANDLER_CLOSE;
	} else if (errno != EMFILE && errno != ENFILE) {
		starved(c, "no pipe for a connection");
		return HANDLER_CLOSE;
	}
	/* Out of descriptors. As a client in the accept queue would, it waits
	 * (holding one), the worker accepts no more meanwhile, and it is
	 * tried again as the pause ends; what it took is given back. */
	leave_upstream(c, st);
	drop_pipes(&st->c2u);
	drop_pipes(&st->u2c);
	if (!st->starved)
		starved(c, "no descriptors for a connection: it waits");
	else
		conn_out_of_descriptors(c);
	st->starved = true;
	conn_expire_in(c, PROXY_RETRY_MS);
	return HANDLER_IDLE;
}

static int proxy_open(struct conn *c)
{
	struct proxy_state *st = (struct proxy_state *)c->state;

	st->up.fd = st->c2u.pr = st->c2u.pw = st->u2c.pr = st->u2c.pw = -1;
	return start(c, st);
}

static int proxy_ready(struct conn *c, uint32_t revents)
{
	struct proxy_state *st = (struct proxy_state *)c->state;

	if (st->starved)	/* only errors and hangups come while it waits */
		return revents & (EPOLLERR | EPOLLHUP) ? HANDLER_CLOSE : HANDLER_IDLE;
	/* An error or a hangup with nothing to read says itself in the calls. */
	return pump(c, st, revents & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR), false);
}

static int proxy_ready_peer(struct conn *c, uint32_t revents)
{
	struct proxy_state *st = (struct proxy_state *)c->state;
	int err = 0;
	socklen_t len = sizeof(err);

	if (!st->connected) {
		if (!(revents & (EPOLLOUT | EPOLLERR | EPOLLHUP)))
			return (int)c->events;
		if (getsockopt(st->up.fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
			err = errno;
		if (err) {
			mark_down(c, st->current, strerror(err));
			return connect_next(c, st) != 0 ? HANDLER_CLOSE : pump(c, st, false, false);
		}
		st->connected = true;
		mark_up(c, st->current);
		if (!send_header(c, st)) {
			reset_on_close(c->fd);
			return HANDLER_CLOSE;
		}
		/* What the client sent meanwhile may not all be in its pipe. */
		return pump(c, st, true, false);
	}
	return pump(c, st, false, revents & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR));
}

static void proxy_close(struct conn *c)
{
	struct proxy_state *st = (struct proxy_state *)c->state;

	leave_upstream(c, st);
	put_pipe(c->svc, &st->c2u);
	put_pipe(c->svc, &st->u2c);
}

/* connect-timeout while connecting (then the next upstream), idle-timeout after. */
static int proxy_expire(struct conn *c)
{
	struct proxy_state *st = (struct proxy_state *)c->state;
	uint64_t now = clock_now_ms(), idle = c->svc->idle_timeout_ms;

	if (st->starved) {
		int want = start(c, st);

		if (want == HANDLER_CLOSE)
			return HANDLER_CLOSE;
		if (st->starved)
			return PROXY_RETRY_MS;
		conn_set_events(c, want);
		return (int)c->svc->connect_timeout_ms;
	}
	if (!st->connected) {
		mark_down(c, st->current, "did not answer within connect-timeout");
		if (connect_next(c, st) != 0)
			return HANDLER_CLOSE;
		return st->connected ? (int)(idle ? idle : 3600000) : (int)c->svc->connect_timeout_ms;
	}
	if (!idle)
		return 3600000;		/* never idle: looked at again in an hour */
	if (now - c->active_ms >= idle)
		return HANDLER_CLOSE;
	return (int)(c->active_ms + idle - now);
}

static unsigned proxy_timeout(const struct service *svc)
{
	return svc->connect_timeout_ms;
}

const struct handler handler_proxy = {
	.name = "proxy",
	.state_size = sizeof(struct proxy_state),
	.open = proxy_open,
	.ready = proxy_ready,
	.ready_peer = proxy_ready_peer,
	.close = proxy_close,
	.expire = proxy_expire,
	.timeout = proxy_timeout,
};
