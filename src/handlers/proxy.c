/* SPDX-License-Identifier: ISC */
/* proxy.c - handler "proxy": each connection forwarded to an upstream (TCP or unix), bulk bytes moved with splice.
 *
 * One upstream is chosen per client (balance: round-robin, least-connections
 * or first), connected without blocking; one that refuses, or does not
 * answer within connect-timeout, is skipped for a while (1 s, doubling up
 * to 30 s: passive health, per worker, said once when it goes and once
 * when it is back) and the next is tried, each at most once, before the
 * client is closed and counted. Each direction starts by copying: a read
 * into the worker's one buffer, sent on at once, only what the other side
 * does not take kept (a request and its answer cost a recv and a send each
 * way, and no memory of the connection's own). A read that fills that
 * buffer makes it a bulk transfer, and from then on splice() moves its
 * bytes through a pipe of its own, never through us (unless the kernel
 * cannot splice those sockets). A side is read only while there is room
 * for what it sends, so a peer that does not read holds the other back
 * (flow control both ways); the end of one side's bytes is passed on as a
 * half-close (shutdown(SHUT_WR)), and a reset as a reset. Pipes of closed
 * connections are kept for the next, within max-connections. What the
 * client sends while the upstream is being connected waits (kept, or in
 * its socket). With send-proxy-protocol, a PROXY header (version 1 or 2)
 * naming the client goes to the upstream first. */
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

#define PROXY_COPY_MAX 65536		/* read at once while copying; a full read starts splicing */
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

/* One direction's bytes in flight. It starts by copying: what is read goes
 * through the worker's one buffer straight to the other side, and only
 * what that side did not take is kept (buf). Once a read fills that buffer
 * it is a bulk transfer: from then on it splices through a pipe of its own. */
struct flow {
	int pr, pw;			/* its pipe once it splices; -1 before */
	unsigned len;			/* bytes held: in the pipe, or in buf from off */
	unsigned cap;			/* the pipe's size */
	char *buf;			/* copying: what the other side did not take yet */
	unsigned off;
	bool eof;			/* its source has no more */
	bool shut;			/* and that was passed on */
	bool no_splice;			/* splice refused these sockets: it copies for good */
};

struct proxy_state {
	struct conn_peer up;		/* the upstream socket */
	struct flow c2u, u2c;		/* client to upstream, upstream to client */
	unsigned current;		/* index of the upstream in use */
	unsigned long tried;		/* bit i: upstream i was tried (the first 64) */
	bool connected, counted_up;
	bool starved;			/* no descriptor for its upstream socket: it waits */
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

/* The worker is one thread: every copying flow reads into this. */
static char scratch[PROXY_COPY_MAX];

enum forwarded { FORWARD_OK, FORWARD_SRC_FAILED, FORWARD_DST_FAILED };

/* Room to read into: the pipe's, or (copying) none while bytes are held. */
static bool has_room(const struct flow *f)
{
	return f->pr >= 0 ? f->len < f->cap : f->len == 0;
}

/* What f holds, to dst: the bytes that went, or -1 when dst failed. */
static ssize_t send_held(struct flow *f, int dst)
{
	ssize_t n;

	if (f->len == 0)
		return 0;
	if (f->pr >= 0) {
		n = splice(f->pr, NULL, dst, NULL, f->len, SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
		if (n > 0)
			f->len -= (unsigned)n;
	} else {
		n = send(dst, f->buf + f->off, f->len - f->off, MSG_NOSIGNAL);
		if (n > 0 && (f->off += (unsigned)n) == f->len) {
			free(f->buf);
			f->buf = NULL;
			f->off = f->len = 0;
		}
	}
	if (n < 0 && errno != EAGAIN && errno != EINTR)
		return -1;
	return n > 0 ? n : 0;
}

/* A read of n copied bytes: to dst at once (dst_ready), the rest kept. */
static enum forwarded copy_on(struct flow *f, int dst, bool dst_ready, size_t n, ssize_t *moved)
{
	ssize_t m = dst_ready ? send(dst, scratch, n, MSG_NOSIGNAL) : 0;

	if (m < 0 && errno != EAGAIN && errno != EINTR)
		return FORWARD_DST_FAILED;
	m = m > 0 ? m : 0;
	*moved += m;
	if ((size_t)m == n)
		return FORWARD_OK;
	f->buf = malloc(n - (size_t)m);
	if (!f->buf)
		return FORWARD_DST_FAILED;	/* the bytes cannot be kept: as if it failed */
	memcpy(f->buf, scratch + m, n - (size_t)m);
	f->off = 0;
	f->len = (unsigned)(n - (size_t)m);
	return FORWARD_OK;
}

/* Moves what it can from src through f to dst (dst_ready: it can take
 * bytes). *more: src may hold more (its event said so, or the last read
 * took all the room there was); *moved: the bytes that reached dst. */
static enum forwarded forward(struct flow *f, int src, int dst, bool dst_ready, bool *more,
			      ssize_t *moved)
{
	ssize_t n;

	*moved = 0;
	if (dst_ready && (n = send_held(f, dst)) != 0) {
		if (n < 0)
			return FORWARD_DST_FAILED;
		*moved += n;
	}
	if (!*more || f->eof || !has_room(f))
		return FORWARD_OK;	/* *more as it was: read again once there is room */
	if (f->pr >= 0) {
		size_t room = f->cap - f->len;

		n = splice(src, NULL, f->pw, NULL, room, SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
		if (n < 0 && errno == EINVAL && f->len == 0) {
			/* Not a socket the kernel splices from: it copies for good. */
			close(f->pr);
			close(f->pw);
			f->pr = f->pw = -1;
			f->no_splice = true;
			return FORWARD_OK;	/* *more still true: the next round copies */
		}
		*more = n > 0 && (size_t)n == room;
		if (n > 0)
			f->len += (unsigned)n;
	} else {
		n = recv(src, scratch, sizeof(scratch), 0);
		*more = n == (ssize_t)sizeof(scratch);
	}
	if (n == 0)
		f->eof = true;
	if (n < 0)
		return errno == EAGAIN || errno == EINTR ? (*more = false, FORWARD_OK) :
							   FORWARD_SRC_FAILED;
	if (n > 0 && f->pr < 0) {
		enum forwarded r = copy_on(f, dst, dst_ready, (size_t)n, moved);

		/* A full read, all of it taken: a bulk transfer, spliced from now on. */
		if (r == FORWARD_OK && *more && f->len == 0 && !f->no_splice)
			take_pipe(f);
		return r;
	}
	if (n > 0 && dst_ready && (n = send_held(f, dst)) != 0) {
		if (n < 0)
			return FORWARD_DST_FAILED;
		*moved += n;
	}
	return FORWARD_OK;
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
 * was), so a ping-pong costs a read and a send each way and nothing else.
 * The client's events to wait for, or HANDLER_CLOSE. */
static int pump(struct conn *c, struct proxy_state *st, bool client_in, bool up_in)
{
	uint32_t up = 0, client = 0;
	int upfd = st->up.fd;

	for (int round = 0; round < PROXY_ROUNDS; round++) {
		ssize_t to_up = 0, to_client = 0;
		enum forwarded r;

		r = forward(&st->c2u, c->fd, upfd, st->connected, &client_in, &to_up);
		if (r != FORWARD_OK) {
			reset_on_close(r == FORWARD_SRC_FAILED ? upfd : c->fd);
			return HANDLER_CLOSE;
		}
		if (st->connected) {
			r = forward(&st->u2c, upfd, c->fd, true, &up_in, &to_client);
			if (r != FORWARD_OK) {
				reset_on_close(r == FORWARD_SRC_FAILED ? c->fd : upfd);
				return HANDLER_CLOSE;
			}
			pass_eof(&st->c2u, upfd);
		}
		pass_eof(&st->u2c, c->fd);
		/* Again only if bytes went and a side has more. */
		if (!(to_up + to_client) || (!client_in && !up_in))
			break;
	}
	if (st->c2u.shut && st->u2c.shut)
		return HANDLER_CLOSE;	/* both ends said all they had */
	if (!st->c2u.eof && has_room(&st->c2u))
		client |= EPOLLIN;
	if (st->u2c.len)
		client |= EPOLLOUT;
	if (st->connected) {
		if (!st->u2c.eof && has_room(&st->u2c))
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

/* Closes every kept pipe: descriptors are short. */
static void drop_kept_pipes(void)
{
	while (px.nkept) {
		px.nkept--;
		close(px.kept[px.nkept][0]);
		close(px.kept[px.nkept][1]);
	}
}

/* Its upstream: the client's events, HANDLER_IDLE while it waits for a
 * descriptor, or HANDLER_CLOSE. */
static int start(struct conn *c, struct proxy_state *st)
{
	int up = connect_next(c, st);

	if (up == 0) {
		st->starved = false;
		c->starved = false;	/* it holds what it frees from now on */
		return pump(c, st, true, false);
	}
	if (up == -1)
		return HANDLER_CLOSE;
	/* Out of descriptors. As a client in the accept queue would, it waits
	 * (holding one), the worker accepts no more meanwhile, and it is
	 * tried again as the pause ends; kept pipes are given back. */
	leave_upstream(c, st);
	drop_kept_pipes();
	if (!st->starved)
		starved(c, "no descriptor for an upstream: it waits");
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
