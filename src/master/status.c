/* SPDX-License-Identifier: ISC */
/* status.c - what the master is doing, as one JSON object: the control socket's "status".
 *
 * Per service: its listeners with the clients waiting in their accept
 * queues, and every worker of every generation alive (a reload shows the
 * old and the new), with its state, age, resident memory and, for an app
 * worker, its last STATUS=. */
#include "config.h"

#include "master/status.h"

#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "common/json.h"
#include "common/version.h"
#include "conf/conf.h"
#include "handlers/handler.h"
#include "master/generation.h"
#include "master/listener.h"
#include "master/listenqueue.h"
#include "master/master.h"
#include "master/master_private.h"
#include "master/autoscale.h"

static void listeners(struct json *j, const struct generation *g, size_t svc)
{
	const struct service_listeners *sl = &g->svc_ls[svc];

	json_array(j, "listeners");
	for (size_t i = 0; i < sl->n; i++) {
		const struct listener *l = sl->ls[i];
		struct listen_queue q;

		if (!l)
			continue;
		json_object(j, NULL);
		json_string(j, "address", l->spec.text);
		json_int(j, "fd", l->fd);
		json_bool(j, "adopted", l->adopted);
		if (listen_queue_read(l->fd, &l->addr, &q) == 0) {
			json_uint(j, "queue", q.length);
			json_uint(j, "queue_limit", q.limit);
		}
		json_end(j);
	}
	json_end(j);
}

static void workers_of(struct json *j, const struct generation *g, const char *name, uint64_t now)
{
	for (size_t i = 0; g && i < g->nslots; i++) {
		const struct slot *s = g->slots[i];

		if (strcmp(slot_name(s), name) != 0)
			continue;
		json_object(j, NULL);
		json_uint(j, "slot", s->index);
		json_uint(j, "generation", g->id);
		json_string(j, "state", slot_state_name(s->state));
		if (s->retire != RETIRE_NONE)
			json_string(j, "recycle", slot_retire_name(s->retire));
		if (s->replaces && slot_alive(s->replaces))
			json_int(j, "replaces", s->replaces->pid);
		if (slot_alive(s)) {
			json_int(j, "pid", s->pid);
			json_uint(j, "uptime_ms", now - s->started_ms);
			json_uint(j, "rss_bytes", generation_rss(s));
		}
		if (!s->app) {
			json_uint(j, "connections_open", counter_get(generation_counters(s),
								     COUNTER_ACTIVE));
			json_uint(j, "accepted", counter_get(generation_counters(s),
							     COUNTER_ACCEPTED));
		}
		if (s->app)
			json_string(j, "app_status", s->status);
		json_end(j);
	}
}

static void counts(struct json *j, struct master *m, const struct service *svc)
{
	uint64_t v[COUNTERS];

	master_service_counts(m, svc->name, v);
	json_object(j, "connections");
	json_uint(j, "accepted", v[COUNTER_ACCEPTED]);
	json_uint(j, "open", v[COUNTER_ACTIVE]);
	json_object(j, "rejected");
	json_uint(j, "denied", v[COUNTER_DENIED]);
	json_uint(j, "per_source", v[COUNTER_PER_SOURCE]);
	json_uint(j, "service_limit", v[COUNTER_SERVICE_LIMIT]);
	json_uint(j, "unavailable", v[COUNTER_UNAVAILABLE]);
	json_uint(j, "proxy_header", v[COUNTER_PROXY_HEADER]);
	json_end(j);
	json_end(j);
	if (svc->handler == &handler_proxy) {
		json_object(j, "proxy");
		json_uint(j, "upstream_failed", v[COUNTER_UPSTREAM_FAILED]);
		json_end(j);
	}
	if (svc->handler->spawns) {
		json_object(j, "helpers");
		json_uint(j, "started", v[COUNTER_HELPERS_STARTED]);
		json_uint(j, "failed", v[COUNTER_HELPERS_FAILED]);
		json_end(j);
	}
}

/* What happened to the pool: recycles by why, hangs, scale events. */
static void pool_counts(struct json *j, struct master *m, const char *name)
{
	const struct service_totals *t = master_totals(m, name);

	if (!t)
		return;
	json_object(j, "recycled");
	for (int r = RETIRE_ASKED; r < RETIRE_REASONS; r++)
		json_uint(j, slot_retire_name((enum retire_reason)r), t->recycles[r]);
	json_end(j);
	json_uint(j, "hangs", t->hangs);
	json_uint(j, "restarts", t->restarts_exit + t->restarts_signal);
}

static unsigned count_all(const struct master *m, enum slot_state state)
{
	unsigned n = 0;

	for (const struct generation *g = master_generation_next(m, NULL); g;
	     g = master_generation_next(m, g))
		n += generation_count(g, state);
	return n;
}

char *status_json(struct master *m, size_t *len)
{
	const struct generation *g = m->current ? m->current : m->draining;
	struct json j;

	json_init(&j);
	json_object(&j, NULL);
	json_bool(&j, "ok", true);
	json_string(&j, "version", preforkd_version);
	json_int(&j, "pid", m->pid);
	json_int(&j, "started", (long long)m->started_wall);
	json_uint(&j, "uptime_ms", m->now - m->started_ms);
	json_string(&j, "config", m->opts->conf_path);
	json_uint(&j, "generation", g ? g->id : 0);
	json_bool(&j, "reloading", m->pending != NULL);
	json_bool(&j, "stopping", m->stopping);
	if (m->reload_seq) {
		json_object(&j, "last_reload");
		json_int(&j, "at", (long long)m->last_reload_wall);
		json_bool(&j, "ok", m->last_reload_ok);
		json_string(&j, "result", m->last_reload);
		json_uint(&j, "duration_ms", m->last_reload_ms);
		json_end(&j);
	}
	json_array(&j, "services");
	for (size_t i = 0; g && i < g->conf->nservices; i++) {
		const struct service *svc = &g->conf->services[i];

		json_object(&j, NULL);
		json_string(&j, "name", svc->name);
		json_string(&j, "handler", svc->handler->name);
		json_uint(&j, "target", g->pools[i].target);
		json_uint(&j, "max_workers", g->pools[i].ceiling);
		json_bool(&j, "elastic", svc->elastic);
		if (svc->elastic)
			json_uint(&j, "min_workers", svc->min_workers);
		json_bool(&j, "pinned", g->pools[i].pinned);
		json_string(&j, "last_change", autoscale_reason_name(g->pools[i].last_change));
		pool_counts(&j, m, svc->name);
		if (!svc->handler->app)
			counts(&j, m, svc);
		listeners(&j, g, i);
		json_array(&j, "workers");
		for (const struct generation *w = master_generation_next(m, NULL); w;
		     w = master_generation_next(m, w))
			workers_of(&j, w, svc->name, m->now);
		json_end(&j);
		json_end(&j);
	}
	json_end(&j);
	json_object(&j, "totals");
	json_uint(&j, "ready", count_all(m, SLOT_READY));
	json_uint(&j, "retiring", count_all(m, SLOT_RETIRING));
	json_uint(&j, "starting", count_all(m, SLOT_STARTING));
	json_uint(&j, "stopping", count_all(m, SLOT_STOPPING));
	json_uint(&j, "waiting", count_all(m, SLOT_WAITING));
	json_uint(&j, "failed", count_all(m, SLOT_FAILED));
	json_end(&j);
	json_end(&j);
	return json_finish(&j, len);
}
