/* SPDX-License-Identifier: ISC */
/* control.c - the control socket: a line protocol answered in JSON, served from the master's loop without ever blocking it.
 *
 * One request a line ("status", "reload", "stop", "stop fast", "scale
 * SERVICE N", "recycle SERVICE", "upgrade"), one JSON object a reply, as HAProxy's
 * runtime API does it: simple enough for socat, parseable by a script. Every client is non-blocking and bounded:
 * CONTROL_CLIENTS_MAX at once, CONTROL_REQUEST_MAX bytes a line, and one
 * that sends no whole line, or does not read its reply, for
 * CONTROL_IDLE_MS is dropped. "reload", "scale", "recycle" and "upgrade" are
 * answered when they have ended, with their result. Who may ask: root, the daemon's own user, and
 * members of control-group, by the kernel's peer credentials; the file's
 * mode (control-mode, 0600) keeps the others out first. */
#include "config.h"

#include "master/control.h"
#include "master/ctlreq.h"

#include <errno.h>
#include <grp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/address.h"
#include "common/clock.h"
#include "common/evsource.h"
#include "common/json.h"
#include "common/log.h"
#include "common/ratelimit.h"
#include "conf/conf.h"
#include "master/generation.h"
#include "master/listener.h"
#include "master/master_private.h"
#include "master/pool.h"
#include "master/status.h"
#include "master/upgrade.h"

#define CONTROL_CLIENTS_MAX 16
#define CONTROL_REQUEST_MAX 1024	/* bytes of one request line */
#define CONTROL_REPLY_MAX (4u << 20)	/* a status of many workers fits */
#define CONTROL_IDLE_MS 10000
#define CONTROL_GROUPS_MAX 64

struct client {
	struct ev_source src;		/* first: epoll data points here */
	int fd;
	pid_t pid;
	char in[CONTROL_REQUEST_MAX + 1];
	size_t inlen;
	char *out;
	size_t outlen, outoff;
	uint64_t deadline;		/* no whole line, or no progress writing, by then: dropped */
	unsigned reload_wait;		/* the reload whose end it waits for; 0: none */
	unsigned op_wait;		/* the scale or recycle whose end it waits for; 0 */
	bool upgrade_wait;		/* "upgrade": its check or its execve; the next image answers */
	bool eof, closing;		/* its side is closed; ours closes once the reply is out */
	bool woken;			/* a reload's reply is queued: control_tend() sends it */
	uint32_t events;		/* in the epoll set now */
	struct client *next;
};

static struct {
	struct ev_source src;
	struct listener l;
	bool open;
	gid_t group;
	struct client *clients;
	unsigned nclients;
	struct ratelimit refused;
} ctl = { .src = { EV_CONTROL }, .l = { .fd = -1 } };

int control_open(struct master *m)
{
	const struct config *conf = m->current->conf;
	struct epoll_event ev = { .events = EPOLLIN, .data.ptr = &ctl.src };
	struct service svc = {
		.name = (char *)"preforkd control", .backlog = CONTROL_CLIENTS_MAX,
		.socket_mode = conf->control_mode, .socket_uid = (uid_t)-1,
		.socket_gid = conf->control_gid,
	};
	struct address addr;
	char spec[sizeof(addr.sa) + 8], why[128];

	if (ctl.open) {
		ctl.group = conf->control_gid;	/* handed over by an upgrade; restart-only */
		return 0;
	}
	if (!conf->control_socket || !conf->control_socket[0])
		return 0;
	snprintf(spec, sizeof(spec), "unix:%s", conf->control_socket);
	if (address_parse(spec, &addr, why, sizeof(why)) < 0) {
		log_error("control-socket %s: %s", conf->control_socket, why);
		return -1;
	}
	/* The rules of every unix listener: a stale file is replaced, a live
	 * one (another instance) refuses the start. */
	if (listener_open(&ctl.l, &addr, &svc) < 0) {
		log_error("control-socket %s cannot be had (see above); set control-socket = \"\" "
			  "to run without one", conf->control_socket);
		return -1;
	}
	if (epoll_ctl(m->epfd, EPOLL_CTL_ADD, ctl.l.fd, &ev) < 0) {
		log_errno(LOG_ERR, errno, "epoll_ctl(ADD) control socket");
		listener_close(&ctl.l, true);
		return -1;
	}
	ctl.group = conf->control_gid;
	ctl.open = true;
	return 0;
}

const char *control_path(void)
{
	const char *path = ctl.open ? address_unix_path(&ctl.l.addr) : NULL;

	return path ? path : "";
}

static void client_free(struct client *c)
{
	close(c->fd);
	free(c->out);
	free(c);
	ctl.nclients--;
}

void control_close(void)
{
	while (ctl.clients) {
		struct client *c = ctl.clients;

		ctl.clients = c->next;
		client_free(c);
	}
	if (ctl.open)
		listener_close(&ctl.l, true);
	ctl.open = false;
}

static void drop(struct master *m, struct client *c)
{
	for (struct client **link = &ctl.clients; *link; link = &(*link)->next)
		if (*link == c) {
			*link = c->next;
			break;
		}
	epoll_ctl(m->epfd, EPOLL_CTL_DEL, c->fd, NULL);
	client_free(c);
}

static bool waiting(const struct client *c)
{
	return c->reload_wait || c->op_wait || c->upgrade_wait;
}

/* What the client should be woken for now: its reply going out, or its
 * next request (not while it waits for a reload, nor after its EOF). */
static void watch(struct master *m, struct client *c)
{
	uint32_t want = 0;
	struct epoll_event ev = { .data.ptr = &c->src };

	if (c->outoff < c->outlen)
		want |= EPOLLOUT;
	else if (!waiting(c) && !c->eof && !c->closing)
		want |= EPOLLIN;
	if (want == c->events)
		return;
	ev.events = want;
	if (epoll_ctl(m->epfd, EPOLL_CTL_MOD, c->fd, &ev) == 0)
		c->events = want;
}

/* As much of the reply as the socket takes now; the client stays. */
static void send_pending(struct client *c)
{
	while (c->outoff < c->outlen) {
		ssize_t n = send(c->fd, c->out + c->outoff, c->outlen - c->outoff,
				 MSG_NOSIGNAL | MSG_DONTWAIT);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return;
		c->outoff += (size_t)n;
	}
}

/* Sends what is pending; false when the client is gone (dropped). */
static bool flush(struct master *m, struct client *c)
{
	while (c->outoff < c->outlen) {
		ssize_t n = send(c->fd, c->out + c->outoff, c->outlen - c->outoff,
				 MSG_NOSIGNAL | MSG_DONTWAIT);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			break;
		if (n <= 0) {
			drop(m, c);
			return false;
		}
		c->outoff += (size_t)n;
		c->deadline = m->now + CONTROL_IDLE_MS;	/* it reads: it may take its time */
	}
	if (c->outoff == c->outlen) {
		c->outoff = c->outlen = 0;
		if (c->closing || (c->eof && !waiting(c))) {
			drop(m, c);
			return false;
		}
	}
	watch(m, c);
	return true;
}

static void reply(struct master *m, struct client *c, const char *text, size_t len)
{
	char *bigger;

	if (!text || c->outlen + len > CONTROL_REPLY_MAX ||
	    !(bigger = realloc(c->out, c->outlen + len))) {
		c->closing = true;
		return;
	}
	c->out = bigger;
	memcpy(c->out + c->outlen, text, len);
	c->outlen += len;
	c->deadline = m->now + CONTROL_IDLE_MS;
}

/* {"ok":...,"result"/"error":text}, and a reload's generation and duration. */
static void reply_result(struct master *m, struct client *c, bool ok, const char *text,
			 bool reload)
{
	struct json j;
	size_t len;
	char *reply_json;

	json_init(&j);
	json_object(&j, NULL);
	json_bool(&j, "ok", ok);
	json_string(&j, ok ? "result" : "error", text);
	if (reload) {
		json_uint(&j, "generation", m->current ? m->current->id : 0);
		json_uint(&j, "duration_ms", m->now - m->reload_started);
	}
	json_end(&j);
	reply_json = json_finish(&j, &len);
	reply(m, c, reply_json, len);
	free(reply_json);
}

static void reply_text(struct master *m, struct client *c, bool ok, const char *text)
{
	reply_result(m, c, ok, text, false);
}

static void reply_pool(struct master *m, struct client *c, const struct pool_result *r)
{
	struct json j;
	size_t len;
	char *reply_json;

	json_init(&j);
	json_object(&j, NULL);
	json_bool(&j, "ok", r->ok);
	json_string(&j, r->ok ? "result" : "error", r->text);
	json_string(&j, "service", r->service);
	json_uint(&j, r->count_name, r->count);
	json_uint(&j, "duration_ms", r->duration_ms);
	json_end(&j);
	reply_json = json_finish(&j, &len);
	reply(m, c, reply_json, len);
	free(reply_json);
}

/* Root, our own user, or control-group (primary or supplementary). */
static bool allowed(int fd, const struct ucred *cred)
{
	gid_t groups[CONTROL_GROUPS_MAX];
	socklen_t len = sizeof(groups);

	if (cred->uid == 0 || cred->uid == geteuid())
		return true;
	if (ctl.group == (gid_t)-1)
		return false;
	if (cred->gid == ctl.group)
		return true;
	if (getsockopt(fd, SOL_SOCKET, SO_PEERGROUPS, groups, &len) < 0)
		return false;
	for (size_t i = 0; i < len / sizeof(gid_t); i++)
		if (groups[i] == ctl.group)
			return true;
	return false;
}

void control_accept(struct master *m)
{
	for (int i = 0; i < CONTROL_CLIENTS_MAX; i++) {
		struct ucred cred = { 0 };
		socklen_t len = sizeof(cred);
		struct epoll_event ev = { .events = EPOLLIN };
		struct client *c;
		int fd = accept4(ctl.l.fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);

		if (fd < 0) {
			if (errno != EAGAIN && errno != EINTR && errno != ECONNABORTED)
				log_errno(LOG_ERR, errno, "accept on the control socket");
			return;
		}
		if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0 || !allowed(fd, &cred)) {
			static const char no[] = "{\"ok\":false,\"error\":\"permission denied\"}\n";

			if (ratelimit_event(&ctl.refused, m->now)) {
				log_warn("control socket: refused uid %u (pid %ld): neither root, the "
					 "daemon's user nor in control-group; %lu refused in all",
					 (unsigned)cred.uid, (long)cred.pid, ctl.refused.total);
				ratelimit_logged(&ctl.refused, m->now);
			}
			send(fd, no, sizeof(no) - 1, MSG_NOSIGNAL | MSG_DONTWAIT);
			close(fd);
			continue;
		}
		if (ctl.nclients >= CONTROL_CLIENTS_MAX || !(c = calloc(1, sizeof(*c)))) {
			static const char busy[] = "{\"ok\":false,\"error\":\"too many control clients\"}\n";

			send(fd, busy, sizeof(busy) - 1, MSG_NOSIGNAL | MSG_DONTWAIT);
			close(fd);
			continue;
		}
		*c = (struct client){ .src = { EV_CONTROL_CLIENT }, .fd = fd, .pid = cred.pid,
				      .deadline = m->now + CONTROL_IDLE_MS, .events = EPOLLIN,
				      .next = ctl.clients };
		ev.data.ptr = &c->src;
		if (epoll_ctl(m->epfd, EPOLL_CTL_ADD, fd, &ev) < 0) {
			log_errno(LOG_ERR, errno, "epoll_ctl(ADD) control client");
			close(fd);
			free(c);
			continue;
		}
		ctl.clients = c;
		ctl.nclients++;
	}
}

/* "scale SERVICE N" or "recycle SERVICE": answered when it has ended. */
static void ask_pool(struct master *m, struct client *c, const struct ctl_request *r)
{
	const struct config *conf = m->current ? m->current->conf : NULL;
	char why[256];
	size_t service = 0;

	while (conf && service < conf->nservices && strcmp(conf->services[service].name, r->service))
		service++;
	if (!conf || service == conf->nservices) {
		snprintf(why, sizeof(why), "no service called \"%.64s\"", r->service);
		reply_text(m, c, false, why);
		return;
	}
	if (r->kind == CTL_SCALE) {
		if (!r->count_ok) {
			snprintf(why, sizeof(why), "scale %s: \"%.32s\" is not a number of workers",
				 conf->services[service].name, r->count_text);
			reply_text(m, c, false, why);
			return;
		}
		log_notice("scale %s %lu asked on the control socket (pid %ld)",
			   conf->services[service].name, r->count, (long)c->pid);
		c->op_wait = pool_scale(m, service, (unsigned)r->count, why, sizeof(why));
	} else {
		log_notice("recycle %s asked on the control socket (pid %ld)",
			   conf->services[service].name, (long)c->pid);
		c->op_wait = pool_recycle(m, service, RETIRE_ASKED, why, sizeof(why));
	}
	if (!c->op_wait)
		reply_text(m, c, false, why);
}

/* One request. */
static void handle(struct master *m, struct client *c, char *line)
{
	struct ctl_request r;
	char error[200];
	size_t len;
	char *text;

	ctlreq_parse(line, &r);
	switch (r.kind) {
	case CTL_NONE:
		return;
	case CTL_STATUS:
		text = status_json(m, &len);
		if (text)
			reply(m, c, text, len);
		else
			reply_text(m, c, false, "out of memory");
		free(text);
		return;
	case CTL_RELOAD:
		if (m->stopping) {
			reply_text(m, c, false, "stopping: no reload");
			return;
		}
		/* The first reload to begin from now on: this one, or the one
		 * queued behind a reload running (reload_request). */
		c->reload_wait = m->reload_seq + 1;
		log_notice("reload asked on the control socket (pid %ld)", (long)c->pid);
		reload_request(m);
		return;
	case CTL_STOP:
	case CTL_STOP_FAST:
		reply_text(m, c, true, r.kind == CTL_STOP_FAST ? "stopping now" : "stopping");
		c->closing = true;
		/* Out before the stop begins: a fast stop may end the loop soon. */
		send_pending(c);
		master_stop(m, r.kind == CTL_STOP_FAST ? "control socket: stop fast" :
			    "control socket: stop", r.kind == CTL_STOP_FAST);
		return;
	case CTL_SCALE:
	case CTL_RECYCLE:
		ask_pool(m, c, &r);
		return;
	case CTL_UPGRADE:
		snprintf(error, sizeof(error), "the control socket (pid %ld)", (long)c->pid);
		c->upgrade_wait = true;
		upgrade_request(m, error);
		return;
	case CTL_UNKNOWN:
		snprintf(error, sizeof(error), "unknown request \"%.64s%s\" (known: status, reload, "
			 "stop, stop fast, scale SERVICE N, recycle SERVICE, upgrade)", r.word,
			 r.more ? " ..." : "");
		reply_text(m, c, false, error);
		return;
	}
}

/* Requests are taken one at a time: a reload's reply comes before the
 * next one is read. */
static void take_lines(struct master *m, struct client *c)
{
	char *nl;

	while (!waiting(c) && !c->closing && (nl = memchr(c->in, '\n', c->inlen))) {
		size_t len = (size_t)(nl - c->in);

		*nl = '\0';
		if (len && c->in[len - 1] == '\r')
			c->in[len - 1] = '\0';
		handle(m, c, c->in);
		memmove(c->in, nl + 1, c->inlen - len - 1);
		c->inlen -= len + 1;
		c->deadline = m->now + CONTROL_IDLE_MS;
	}
	if (c->inlen == CONTROL_REQUEST_MAX && !memchr(c->in, '\n', c->inlen)) {
		reply_text(m, c, false, "request longer than 1024 bytes");
		c->closing = true;
	}
}

void control_client_ready(struct master *m, struct ev_source *src, uint32_t events)
{
	struct client *c = container_of(src, struct client, src);

	if (events & EPOLLOUT && !flush(m, c))
		return;
	if (events & (EPOLLIN | EPOLLHUP | EPOLLERR) && !c->eof && !c->closing && !waiting(c)) {
		ssize_t n = recv(c->fd, c->in + c->inlen, CONTROL_REQUEST_MAX - c->inlen, 0);

		if (n < 0 && (errno == EAGAIN || errno == EINTR))
			return;
		if (n <= 0) {
			c->eof = true;
			if (n < 0) {
				drop(m, c);
				return;
			}
			/* A last request without its newline is a request all the same. */
			if (c->inlen && !memchr(c->in, '\n', c->inlen) && c->inlen < CONTROL_REQUEST_MAX)
				c->in[c->inlen++] = '\n';
		} else {
			c->inlen += (size_t)n;
		}
		take_lines(m, c);
	}
	flush(m, c);
}

void control_reload_finished(struct master *m, bool ok, const char *result)
{
	struct client *c = ctl.clients;

	while (c) {
		struct client *next = c->next;

		if (c->reload_wait && c->reload_wait <= m->reload_seq) {
			c->reload_wait = 0;
			reply_result(m, c, ok, result, true);
			/* Sent from the loop, not here: a reload can end inside the
			 * very request that began it (a file with an error), and the
			 * client must outlive that request's handling. */
			c->woken = true;
		}
		c = next;
	}
}

void control_pool_finished(struct master *m, unsigned op, const struct pool_result *r)
{
	for (struct client *c = ctl.clients; c; c = c->next)
		if (op && c->op_wait == op) {
			c->op_wait = 0;
			reply_pool(m, c, r);
			c->woken = true;	/* sent from the loop, as a reload's reply */
		}
}

void control_upgrade_finished(struct master *m, bool ok, const char *result)
{
	char text[CONF_ERR_MAX + 64];

	snprintf(text, sizeof(text), "upgrade failed: %s", result);
	for (struct client *c = ctl.clients; c; c = c->next)
		if (c->upgrade_wait) {
			c->upgrade_wait = false;
			reply_result(m, c, ok, ok ? result : text, false);
			c->woken = true;
		}
}

size_t control_upgrade_clients(int *fds, pid_t *pids, size_t max)
{
	size_t n = 0;

	for (const struct client *c = ctl.clients; c; c = c->next) {
		if (!c->upgrade_wait)
			continue;
		if (n < max) {
			fds[n] = c->fd;
			pids[n] = c->pid;
		}
		n++;
	}
	return n;
}

const struct listener *control_listener(void)
{
	return ctl.open ? &ctl.l : NULL;
}

int control_adopt(struct master *m, const struct listener *l)
{
	struct epoll_event ev = { .events = EPOLLIN, .data.ptr = &ctl.src };

	ctl.l = *l;
	ctl.open = true;
	if (epoll_ctl(m->epfd, EPOLL_CTL_ADD, ctl.l.fd, &ev) < 0) {
		log_errno(LOG_ERR, errno, "epoll_ctl(ADD) control socket");
		return -1;
	}
	return 0;
}

int control_adopt_client(struct master *m, int fd, pid_t pid)
{
	struct epoll_event ev = { .events = 0 };
	struct client *c = calloc(1, sizeof(*c));

	if (!c) {
		close(fd);
		return -1;
	}
	/* It waits for the reload this image begins to replace the workers. */
	*c = (struct client){ .src = { EV_CONTROL_CLIENT }, .fd = fd, .pid = pid,
			      .deadline = m->now + CONTROL_IDLE_MS,
			      .reload_wait = m->reload_seq + 1, .next = ctl.clients };
	ev.data.ptr = &c->src;
	if (epoll_ctl(m->epfd, EPOLL_CTL_ADD, fd, &ev) < 0) {
		log_errno(LOG_ERR, errno, "epoll_ctl(ADD) control client");
		close(fd);
		free(c);
		return -1;
	}
	ctl.clients = c;
	ctl.nclients++;
	return 0;
}

void control_tend(struct master *m)
{
	struct client **link = &ctl.clients;
	uint64_t now = m->now;

	for (struct client *c = ctl.clients, *next; c; c = next) {
		next = c->next;
		if (!c->woken)
			continue;
		c->woken = false;
		/* A request that came behind the reload is taken now. */
		if (flush(m, c)) {
			take_lines(m, c);
			flush(m, c);
		}
	}
	while (*link) {
		struct client *c = *link;

		/* Waiting for a reload is not idling: the reload has its own
		 * deadline, as have a scale and each step of a recycle. */
		if (waiting(c) || now < c->deadline) {
			link = &c->next;
			continue;
		}
		*link = c->next;
		client_free(c);	/* closing the descriptor takes it out of the epoll set */
	}
}

uint64_t control_next_deadline(void)
{
	uint64_t d = 0;

	for (const struct client *c = ctl.clients; c; c = c->next)
		if (!waiting(c))
			d = clock_sooner(d, c->deadline);
	return d;
}
