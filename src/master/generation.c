/* SPDX-License-Identifier: ISC */
/* generation.c - forks, signals and tracks the workers of one configuration generation.
 *
 * Workers are signalled by their recorded pid only, and only while the slot
 * says the process is ours and alive. */
#include "config.h"

#include "master/generation.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/clock.h"
#include "conf/conf.h"
#include "common/fdutil.h"
#include "handlers/handler.h"
#include "worker/counters.h"
#include "worker/limits.h"
#include "master/appworker.h"
#include "master/listener.h"
#include "master/procmem.h"
#include "master/workernotify.h"
#include "common/log.h"
#include "worker/socket.h"
#include "worker/worker.h"

/* Room for a worker being replaced beside its replacement, and for the
 * workers of a scale-down still finishing while new ones start. */
static unsigned pool_rows(unsigned ceiling)
{
	return 2 * ceiling;
}

/* Everything but conf, which the caller of a failed generation_new keeps. */
static void free_parts(struct generation *g)
{
	for (size_t i = 0; g->svc_ls && i < g->conf->nservices; i++)
		free(g->svc_ls[i].ls);
	for (size_t i = 0; g->limits && i < g->conf->nservices; i++)
		limits_free(g->limits[i]);
	for (size_t i = 0; g->pools && i < g->conf->nservices; i++)
		free(g->pools[i].row_taken);
	for (size_t i = 0; i < g->nslots; i++) {
		free(g->slots[i]->status);
		free(g->slots[i]);
	}
	free(g->slots);
	free(g->pools);
	free(g->limits);
	free(g->svc_ls);
	counters_free(g->counters);
	free(g);
}

static struct generation *generation_make(struct config *conf, unsigned id,
					  enum generation_role role, bool with_slots)
{
	struct generation *g = calloc(1, sizeof(*g));
	unsigned rows = 0;

	if (!g)
		return NULL;
	g->id = id;
	g->role = role;
	g->conf = conf;
	g->svc_ls = calloc(conf->nservices, sizeof(*g->svc_ls));
	g->limits = calloc(conf->nservices, sizeof(*g->limits));
	g->pools = calloc(conf->nservices, sizeof(*g->pools));
	if (!g->svc_ls || !g->limits || !g->pools)
		goto fail;
	for (size_t i = 0; i < conf->nservices; i++) {
		const struct service *svc = &conf->services[i];
		struct pool *p = &g->pools[i];

		*p = (struct pool){ .target = svc->workers, .ceiling = svc->max_workers,
				    .first_row = rows, .nrows = pool_rows(svc->max_workers),
				    .last_change = -1 };
		rows += p->nrows;
		p->row_taken = calloc(p->nrows, 1);
		if (!p->row_taken)
			goto fail;
		if (!svc->max_per_source && !svc->max_service_connections)
			continue;
		g->limits[i] = limits_new(p->nrows, svc->max_per_source,
					  svc->max_service_connections, svc->max_connections);
		if (!g->limits[i])
			goto fail;
	}
	/* Without them the workers serve all the same; the counts are 0. */
	g->counters = counters_new(rows);
	for (size_t i = 0; with_slots && i < conf->nservices; i++)
		for (unsigned j = 0; j < g->pools[i].target; j++)
			if (!generation_add_slot(g, i, j))
				goto fail;
	return g;
fail:
	free_parts(g);
	return NULL;
}

struct generation *generation_new(struct config *conf, unsigned id, enum generation_role role)
{
	return generation_make(conf, id, role, true);
}

struct generation *generation_new_empty(struct config *conf, unsigned id,
					enum generation_role role)
{
	return generation_make(conf, id, role, false);
}

unsigned generation_rows(const struct generation *g)
{
	unsigned rows = 0;

	for (size_t i = 0; i < g->conf->nservices; i++)
		rows += g->pools[i].nrows;
	return rows;
}

struct slot *generation_add_slot(struct generation *g, size_t service, unsigned index)
{
	struct slot *s;

	if (g->nslots == g->slots_cap) {
		size_t cap = g->slots_cap ? 2 * g->slots_cap : 8;
		struct slot **more = realloc(g->slots, cap * sizeof(*more));

		if (!more)
			return NULL;
		g->slots = more;
		g->slots_cap = cap;
	}
	s = calloc(1, sizeof(*s));
	if (!s)
		return NULL;
	*s = (struct slot){
		.src = { EV_CHANNEL }, .gen = g, .service = service, .index = index,
		.state = SLOT_WAITING, .channel_fd = -1,
		.app = g->conf->services[service].handler->app, .out_src = { EV_APP_OUTPUT },
	};
	g->slots[g->nslots++] = s;
	return s;
}

void generation_remove_done(struct generation *g)
{
	size_t kept = 0;

	for (size_t i = 0; i < g->nslots; i++) {
		struct slot *s = g->slots[i];

		if (s->state == SLOT_DONE && !s->replaces && !s->replaced_by && !s->has_row &&
		    s->channel_fd < 0 && !s->out) {
			free(s->status);
			free(s);
			continue;
		}
		g->slots[kept++] = s;
	}
	g->nslots = kept;
}

void generation_free(struct generation *g)
{
	struct config *conf;

	if (!g)
		return;
	conf = g->conf;
	free_parts(g);
	conf_free(conf);
}

/* A row of its pool's for the process about to start in s; false when
 * every row is taken (workers of a scale-down still finishing). */
static bool take_row(struct slot *s)
{
	struct pool *p = &s->gen->pools[s->service];

	if (s->has_row)
		return true;
	for (unsigned r = 0; r < p->nrows; r++)
		if (!p->row_taken[r]) {
			p->row_taken[r] = 1;
			s->row = r;
			s->has_row = true;
			p->short_of_rows = false;
			return true;
		}
	if (!p->short_of_rows)
		log_warn("service '%s': all %u rows of shared counters are held by workers still "
			 "finishing; new workers wait for one to exit", slot_name(s), p->nrows);
	p->short_of_rows = true;
	return false;
}

int generation_take_row(struct slot *s, unsigned row)
{
	struct pool *p = &s->gen->pools[s->service];

	if (row >= p->nrows || p->row_taken[row])
		return -1;
	p->row_taken[row] = 1;
	s->row = row;
	s->has_row = true;
	return 0;
}

static void give_row_back(struct slot *s)
{
	if (!s->has_row)
		return;
	s->gen->pools[s->service].row_taken[s->row] = 0;
	s->has_row = false;
}

/* In the child: keep our service's listeners, our channel and stdio. */
static void __attribute__((noreturn)) run_worker(struct slot *s, int channel_fd, pid_t master_pid)
{
	const struct service_listeners *sl = &s->gen->svc_ls[s->service];
	struct worker_socket *ls = calloc(sl->n ? sl->n : 1, sizeof(*ls));
	int *keep = calloc(sl->n + 1, sizeof(*keep));
	struct worker_params p = {
		.conf = s->gen->conf, .svc = &s->gen->conf->services[s->service],
		.listeners = ls, .nlisteners = sl->n, .channel_fd = channel_fd,
		.slot = s->index, .row = s->row, .generation = s->gen->id, .master_pid = master_pid,
		.limits = s->gen->limits[s->service], .counters = generation_counters(s),
	};
	int rc;

	log_forked();
	if (!ls || !keep)
		_exit(WORKER_EXIT_FATAL);
	for (size_t i = 0; i < sl->n; i++) {
		ls[i] = (struct worker_socket){ .src = { EV_LISTENER }, .addr = sl->ls[i]->addr,
						.fd = sl->ls[i]->fd };
		keep[i] = ls[i].fd;
	}
	keep[sl->n] = channel_fd;
	fd_close_all_except(keep, sl->n + 1);
	free(keep);
	rc = worker_main(&p);
	log_drain(LOG_EXIT_DRAIN_MS);
	_exit(rc);
}

int generation_spawn(struct slot *s, int epfd, pid_t master_pid, uint64_t now)
{
	struct epoll_event ev = { .events = EPOLLIN, .data.ptr = s };
	int sv[2];
	pid_t pid;

	if (!take_row(s)) {
		slot_event(s, SLOT_SPAWN_FAILED, &(struct slot_event_data){ .now = now });
		return -1;
	}
	if (s->app) {
		const char *notify_socket = workernotify_address(epfd);

		if (!notify_socket && s->gen->conf->services[s->service].app_ready_notify) {
			slot_event(s, SLOT_SPAWN_FAILED, &(struct slot_event_data){ .now = now });
			return -1;	/* it could never say it is ready */
		}
		return appworker_spawn(s, epfd, notify_socket, now);
	}
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0, sv) < 0) {
		log_errno(LOG_ERR, errno, "socketpair for worker %s#%u", slot_name(s), s->index);
		slot_event(s, SLOT_SPAWN_FAILED, &(struct slot_event_data){ .now = now });
		return -1;
	}
	pid = fork();
	if (pid == 0) {
		close(sv[0]);
		run_worker(s, sv[1], master_pid);
	}
	close(sv[1]);
	if (pid < 0) {
		log_errno(LOG_ERR, errno, "fork worker %s#%u", slot_name(s), s->index);
		close(sv[0]);
		slot_event(s, SLOT_SPAWN_FAILED, &(struct slot_event_data){ .now = now });
		return -1;
	}
	s->channel_fd = sv[0];
	slot_event(s, SLOT_SPAWNED, &(struct slot_event_data){ .now = now, .pid = pid });
	if (epoll_ctl(epfd, EPOLL_CTL_ADD, s->channel_fd, &ev) < 0)
		log_errno(LOG_ERR, errno, "epoll_ctl(ADD) worker %ld", (long)pid);
	log_debug("started worker %s#%u, pid %ld, generation %u", slot_name(s), s->index,
		  (long)pid, s->gen->id);
	return 0;
}

void generation_close_channel(struct slot *s, int epfd)
{
	if (s->channel_fd < 0)
		return;
	epoll_ctl(epfd, EPOLL_CTL_DEL, s->channel_fd, NULL);
	fd_close(&s->channel_fd);
}

void generation_slot_exited(struct slot *s)
{
	if (s->has_row)
		limits_row_dead(s->gen->limits[s->service], s->row);
	give_row_back(s);
}

unsigned long long generation_rss(const struct slot *s)
{
	return slot_alive(s) ? procmem_resident_kib(s->pid) * 1024 : 0;
}

struct counter_row *generation_counters(const struct slot *s)
{
	if (!s->has_row)
		return NULL;
	return counters_row(s->gen->counters, s->gen->pools[s->service].first_row + s->row);
}

uint64_t generation_served(const struct slot *s)
{
	const struct counter_row *r = generation_counters(s);

	return counter_get(r, COUNTER_ACCEPTED) + counter_datagrams(r);
}

struct slot *generation_find_pid(struct generation *g, pid_t pid)
{
	for (size_t i = 0; g && i < g->nslots; i++)
		if (g->slots[i]->pid == pid && slot_alive(g->slots[i]))
			return g->slots[i];
	return NULL;
}

unsigned generation_count(const struct generation *g, enum slot_state state)
{
	unsigned n = 0;

	for (size_t i = 0; g && i < g->nslots; i++)
		n += g->slots[i]->state == state;
	return n;
}

unsigned generation_count_service(const struct generation *g, size_t service,
				  enum slot_state state)
{
	unsigned n = 0;

	for (size_t i = 0; g && i < g->nslots; i++)
		n += g->slots[i]->service == service && g->slots[i]->state == state;
	return n;
}

bool generation_alive(const struct generation *g)
{
	for (size_t i = 0; g && i < g->nslots; i++)
		if (slot_alive(g->slots[i]))
			return true;
	return false;
}

static void slot_signal(const struct slot *s, int sig)
{
	if (s->app) {
		appworker_signal(s, sig);
		return;
	}
	if (kill(s->pid, sig) < 0 && errno != ESRCH)
		log_errno(LOG_ERR, errno, "kill(%s) worker %s#%u pid %ld", sigabbrev_np(sig),
			  slot_name(s), s->index, (long)s->pid);
}

/* WORKER_MSG_KEEP: which of the worker's listeners the master still holds
 * (marked), so that the worker keeps those datagram sockets for the replies
 * of its jobs and lets go of every other socket at once. Without it (no
 * memory, a full control socket) the worker keeps none: a port is freed,
 * the replies still to come are lost and counted. */
static void slot_send_keep(const struct slot *s)
{
	const struct service_listeners *sl = &s->gen->svc_ls[s->service];
	size_t len = 1 + (sl->n + 7) / 8;
	unsigned char *msg = calloc(1, len);

	if (!msg || s->channel_fd < 0) {
		free(msg);
		return;
	}
	msg[0] = WORKER_MSG_KEEP;
	for (size_t j = 0; j < sl->n; j++)
		if (sl->ls[j] && sl->ls[j]->marked)
			msg[1 + j / 8] |= (unsigned char)(1u << (j % 8));
	if (send(s->channel_fd, msg, len, MSG_NOSIGNAL | MSG_DONTWAIT) < 0 && errno != EPIPE)
		log_errno(LOG_WARNING, errno, "send keep to worker %s#%u", slot_name(s), s->index);
	free(msg);
}

void generation_stop_slot(struct slot *s)
{
	if (slot_alive(s) && s->app) {
		appworker_stop(s, clock_now_ms());	/* once: it may take a second as "now" */
	} else if (slot_alive(s)) {
		slot_send_keep(s);
		slot_signal(s, SIGTERM);
	}
	slot_event(s, SLOT_STOP, &(struct slot_event_data){ 0 });
}

void generation_stop(struct generation *g)
{
	for (size_t i = 0; i < g->nslots; i++)
		generation_stop_slot(g->slots[i]);
}

bool generation_forget_unmarked(struct generation *g)
{
	bool forgot = false;

	for (size_t i = 0; i < g->conf->nservices; i++)
		for (size_t j = 0; j < g->svc_ls[i].n; j++)
			if (g->svc_ls[i].ls[j] && !g->svc_ls[i].ls[j]->marked) {
				g->svc_ls[i].ls[j] = NULL;
				forgot = true;
			}
	return forgot;
}

void generation_quit(struct generation *g)
{
	char msg = WORKER_MSG_QUIT;

	for (size_t i = 0; i < g->nslots; i++) {
		struct slot *s = g->slots[i];

		slot_event(s, SLOT_STOP, &(struct slot_event_data){ 0 });
		if (!slot_alive(s) || s->app)
			continue;	/* an app worker has had its stop-signal; SIGKILL is next */
		/* No channel: the worker is already on its way out. */
		if (s->channel_fd >= 0 && send(s->channel_fd, &msg, 1, MSG_NOSIGNAL | MSG_DONTWAIT) < 0 &&
		    errno != EPIPE)
			log_errno(LOG_WARNING, errno, "send quit to worker %s#%u", slot_name(s),
				  s->index);
	}
}

void generation_kill(struct generation *g, const char *why)
{
	for (size_t i = 0; i < g->nslots; i++) {
		struct slot *s = g->slots[i];

		if (!slot_alive(s))
			continue;
		log_warn("worker %s#%u (pid %ld, generation %u) %s: killing it", slot_name(s),
			 s->index, (long)s->pid, g->id, why);
		slot_signal(s, SIGKILL);
	}
}
