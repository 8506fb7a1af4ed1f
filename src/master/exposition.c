/* SPDX-License-Identifier: ISC */
/* exposition.c - the master's metrics in the Prometheus text format 0.0.4, or OpenMetrics 1.0.
 *
 * Names follow Prometheus's conventions: the preforkd_ prefix, base units
 * (seconds, bytes), counters ending in _total, metadata as an _info gauge
 * of 1. Counters are the workers' shared rows plus what the exited ones
 * left in their service's totals (counters.c), so they only ever grow,
 * across reloads and killed workers. The two formats differ in little:
 * OpenMetrics names a counter family without its _total, has an "info"
 * type, and ends with "# EOF". */
#include "config.h"

#include "common/version.h"
#include "master/exposition.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "conf/conf.h"
#include "handlers/handler.h"
#include "master/generation.h"
#include "master/listener.h"
#include "master/listenqueue.h"
#include "master/master_private.h"
#include "master/autoscale.h"

struct text {
	char *buf;
	size_t len, cap;
	bool failed, om;
};

static void add(struct text *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void add(struct text *t, const char *fmt, ...)
{
	va_list ap;
	int n;

	for (int tries = 0; !t->failed && tries < 2; tries++) {
		va_start(ap, fmt);
		n = vsnprintf(t->buf + t->len, t->cap - t->len, fmt, ap);
		va_end(ap);
		if (n < 0) {
			t->failed = true;
			return;
		}
		if ((size_t)n < t->cap - t->len) {
			t->len += (size_t)n;
			return;
		}
		{
			size_t cap = (t->cap + (size_t)n + 1) * 2;
			char *bigger = realloc(t->buf, cap);

			if (!bigger) {
				t->failed = true;
				return;
			}
			t->buf = bigger;
			t->cap = cap;
		}
	}
}

/* A label value: backslash, double quote and newline escaped. */
static const char *label(const char *v, char *buf, size_t len)
{
	size_t n = 0;

	for (; *v && n + 3 < len; v++) {
		if (*v == '\\' || *v == '"') {
			buf[n++] = '\\';
			buf[n++] = *v;
		} else if (*v == '\n') {
			buf[n++] = '\\';
			buf[n++] = 'n';
		} else {
			buf[n++] = *v;
		}
	}
	buf[n] = '\0';
	return buf;
}

/* # HELP and # TYPE of a family; name is the sample name (with _total for
 * a counter, _info for an info). */
static void family(struct text *t, const char *name, const char *type, const char *help)
{
	size_t len = strlen(name);

	if (t->om && strcmp(type, "counter") == 0 && len > 6)
		len -= 6;	/* _total */
	else if (t->om && strcmp(type, "info") == 0 && len > 5)
		len -= 5;	/* _info */
	else if (!t->om && strcmp(type, "info") == 0)
		type = "gauge";
	add(t, "# HELP %.*s %s\n# TYPE %.*s %s\n", (int)len, name, help, (int)len, name, type);
}

/* The accept queues of the serving generation's listeners, each read
 * once (a netlink request for a unix one): their lengths, then limits. */
static void queue_families(struct text *t, struct master *m, const struct config *conf)
{
	struct reading {
		size_t svc;
		const struct listener *l;
		struct listen_queue q;
	} *r = NULL;
	size_t n = 0, cap = 0;
	char name[256], addr[512];

	for (size_t i = 0; m->current && i < conf->nservices; i++)
		for (size_t j = 0; j < m->current->svc_ls[i].n; j++) {
			const struct listener *l = m->current->svc_ls[i].ls[j];
			struct listen_queue q;

			if (!l || listen_queue_read(l->fd, &l->addr, &q) < 0)
				continue;
			if (n == cap) {
				struct reading *more = realloc(r, (cap = cap ? 2 * cap : 8) * sizeof(*r));

				if (!more) {
					free(r);
					t->failed = true;
					return;
				}
				r = more;
			}
			r[n++] = (struct reading){ i, l, q };
		}
	for (int limit = 0; limit < 2; limit++) {
		const char *metric = limit ? "preforkd_listen_queue_limit" :
				     "preforkd_listen_queue_length";

		family(t, metric, "gauge", limit ? "The backlog a listener's queue holds up to." :
		       "Clients waiting in a listener's accept queue (TCP and Unix stream).");
		for (size_t i = 0; i < n; i++)
			add(t, "%s{service=\"%s\",address=\"%s\"} %u\n", metric,
			    label(conf->services[r[i].svc].name, name, sizeof(name)),
			    label(r[i].l->spec.text, addr, sizeof(addr)),
			    limit ? r[i].q.limit : r[i].q.length);
	}
	free(r);
}

static bool accepts(const struct service *svc)
{
	return !svc->handler->app;
}

static bool proxies(const struct service *svc)
{
	return svc->handler == &handler_proxy;
}

static bool spawns(const struct service *svc)
{
	return svc->handler->spawns;
}

static bool has_datagrams(const struct service *svc)
{
	for (size_t i = 0; i < svc->nlisten; i++)
		if (svc->listen[i].socktype == SOCK_DGRAM)
			return !svc->handler->app;
	return false;
}

struct named_counter {
	enum counter k;
	const char *name;
};

/* A counter or gauge of each service keep() admits, from its counts v:
 * one sample of counter k, or with by, one per entry labelled key="name". */
static void counter_family(struct text *t, const struct config *conf,
			   uint64_t (*v)[COUNTERS], const char *metric, const char *type,
			   const char *help, bool (*keep)(const struct service *), enum counter k,
			   const char *key, const struct named_counter *by, size_t nby)
{
	char name[256];

	family(t, metric, type, help);
	for (size_t i = 0; i < conf->nservices; i++) {
		if (!keep(&conf->services[i]))
			continue;
		label(conf->services[i].name, name, sizeof(name));
		if (!by)
			add(t, "%s{service=\"%s\"} %llu\n", metric, name,
			    (unsigned long long)v[i][k]);
		for (size_t b = 0; by && b < nby; b++)
			add(t, "%s{service=\"%s\",%s=\"%s\"} %llu\n", metric, name, key, by[b].name,
			    (unsigned long long)v[i][by[b].k]);
	}
}

static void per_service(struct text *t, struct master *m, const struct config *conf)
{
	static const struct named_counter rejected[] = {
		{ COUNTER_DENIED, "denied" }, { COUNTER_PER_SOURCE, "per_source_limit" },
		{ COUNTER_SERVICE_LIMIT, "service_limit" }, { COUNTER_UNAVAILABLE, "unavailable" },
		{ COUNTER_PROXY_HEADER, "proxy_header" },
	};
	static const struct named_counter outcomes[] = {
		{ COUNTER_DGRAM_ANSWERED, "answered" }, { COUNTER_DGRAM_TRUNCATED, "truncated" },
		{ COUNTER_DGRAM_DENIED, "denied" }, { COUNTER_DGRAM_UNDELIVERABLE, "undeliverable" },
		{ COUNTER_DGRAM_DROPPED, "dropped" }, { COUNTER_DGRAM_FAILED, "failed" },
	};
	static const enum slot_state states[] = {
		SLOT_STARTING, SLOT_READY, SLOT_RETIRING, SLOT_STOPPING, SLOT_WAITING, SLOT_FAILED,
	};
	uint64_t (*v)[COUNTERS] = calloc(conf->nservices ? conf->nservices : 1, sizeof(*v));
	char name[256];

	if (!v) {
		t->failed = true;
		return;
	}
	for (size_t i = 0; i < conf->nservices; i++)
		master_service_counts(m, conf->services[i].name, v[i]);
	family(t, "preforkd_workers", "gauge", "Worker slots by state, every generation alive.");
	for (size_t i = 0; i < conf->nservices; i++)
		for (size_t s = 0; s < sizeof(states) / sizeof(states[0]); s++) {
			unsigned n = 0;

			for (const struct generation *g = master_generation_next(m, NULL); g;
			     g = master_generation_next(m, g))
				for (size_t j = 0; j < g->nslots; j++)
					n += g->slots[j]->state == states[s] &&
					     strcmp(slot_name(g->slots[j]), conf->services[i].name) == 0;
			add(t, "preforkd_workers{service=\"%s\",state=\"%s\"} %u\n",
			    label(conf->services[i].name, name, sizeof(name)),
			    slot_state_name(states[s]), n);
		}
	family(t, "preforkd_worker_restarts_total", "counter",
	       "Workers that ended without being told to, and were respawned or given up.");
	for (size_t i = 0; i < conf->nservices; i++) {
		const struct service_totals *st = master_totals(m, conf->services[i].name);

		label(conf->services[i].name, name, sizeof(name));
		add(t, "preforkd_worker_restarts_total{service=\"%s\",reason=\"exit\"} %llu\n", name,
		    st ? (unsigned long long)st->restarts_exit : 0ULL);
		add(t, "preforkd_worker_restarts_total{service=\"%s\",reason=\"signal\"} %llu\n", name,
		    st ? (unsigned long long)st->restarts_signal : 0ULL);
		add(t, "preforkd_worker_restarts_total{service=\"%s\",reason=\"hang\"} %llu\n", name,
		    st ? (unsigned long long)st->hangs : 0ULL);
	}
	family(t, "preforkd_worker_recycles_total", "counter",
	       "Workers replaced while they worked, replacement first, by why.");
	for (size_t i = 0; i < conf->nservices; i++) {
		const struct service_totals *st = master_totals(m, conf->services[i].name);

		label(conf->services[i].name, name, sizeof(name));
		for (int r = RETIRE_ASKED; r < RETIRE_REASONS; r++)
			add(t, "preforkd_worker_recycles_total{service=\"%s\",reason=\"%s\"} %llu\n",
			    name, slot_retire_name((enum retire_reason)r),
			    st ? (unsigned long long)st->recycles[r] : 0ULL);
	}
	family(t, "preforkd_pool_scale_events_total", "counter",
	       "Changes of a pool's number of workers, by direction and why.");
	for (size_t i = 0; i < conf->nservices; i++) {
		const struct service_totals *st = master_totals(m, conf->services[i].name);

		label(conf->services[i].name, name, sizeof(name));
		for (int d = 0; d < 2; d++)
			for (int r = 0; r < SCALE_REASONS; r++)
				/* Only what can happen: up for clients waiting, down for idling. */
				if (r == SCALE_ASKED || (r == SCALE_IDLE) == (d == 1))
					add(t, "preforkd_pool_scale_events_total{service=\"%s\","
					    "direction=\"%s\",reason=\"%s\"} %llu\n", name,
					    d ? "down" : "up", autoscale_reason_name(r),
					    st ? (unsigned long long)st->scale_events[d][r] : 0ULL);
	}
	counter_family(t, conf, v,
		       "preforkd_connections_accepted_total", "counter",
		       "Connections accepted (those turned away included).", accepts,
		       COUNTER_ACCEPTED, NULL, NULL, 0);
	counter_family(t, conf, v, "preforkd_connections_active",
		       "gauge", "Connections open now.", accepts, COUNTER_ACTIVE, NULL, NULL, 0);
	counter_family(t, conf, v,
		       "preforkd_connections_rejected_total", "counter",
		       "Connections turned away, by why.", accepts, 0, "reason", rejected,
		       sizeof(rejected) / sizeof(rejected[0]));
	counter_family(t, conf, v, "preforkd_helpers_started_total",
		       "counter", "Exec helpers started.", spawns, COUNTER_HELPERS_STARTED, NULL,
		       NULL, 0);
	counter_family(t, conf, v, "preforkd_helpers_failed_total",
		       "counter", "Exec helpers that could not start, or ended with a status or a "
		       "signal.", spawns, COUNTER_HELPERS_FAILED, NULL, NULL, 0);
	counter_family(t, conf, v, "preforkd_proxy_upstream_failures_total", "counter",
		       "Clients closed because no upstream could be connected.", proxies,
		       COUNTER_UPSTREAM_FAILED, NULL, NULL, 0);
	counter_family(t, conf, v, "preforkd_datagrams_total",
		       "counter", "Datagrams received, each counted once by what became of it.",
		       has_datagrams, 0, "outcome", outcomes, sizeof(outcomes) / sizeof(outcomes[0]));
	free(v);
	queue_families(t, m, conf);
	family(t, "preforkd_worker_resident_memory_bytes", "gauge",
	       "Resident memory of each live worker (its main process).");
	/* By pid too: a worker and its replacement share their number for a while. */
	for (const struct generation *g = master_generation_next(m, NULL); g;
	     g = master_generation_next(m, g))
		for (size_t j = 0; j < g->nslots; j++) {
			const struct slot *s = g->slots[j];

			if (slot_alive(s))
				add(t, "preforkd_worker_resident_memory_bytes{service=\"%s\",worker=\"%u\","
				    "generation=\"%u\",pid=\"%ld\"} %llu\n",
				    label(slot_name(s), name, sizeof(name)), s->index, g->id,
				    (long)s->pid, generation_rss(s));
		}
}

char *exposition_text(struct master *m, bool openmetrics, size_t *len)
{
	struct text t = { .om = openmetrics };
	const struct generation *g = m->current ? m->current : m->draining;

	family(&t, "preforkd_build_info", "info", "The preforkd that runs.");
	add(&t, "preforkd_build_info{version=\"%s\"} 1\n", preforkd_version);
	family(&t, "preforkd_start_time_seconds", "gauge", "When the master started, in Unix time.");
	add(&t, "preforkd_start_time_seconds %lld\n", (long long)m->started_wall);
	family(&t, "preforkd_generation", "gauge", "The configuration generation serving.");
	add(&t, "preforkd_generation %u\n", g ? g->id : 0);
	family(&t, "preforkd_reloads_total", "counter", "Reloads that ended, by result.");
	add(&t, "preforkd_reloads_total{result=\"ok\"} %llu\n", (unsigned long long)m->reloads_ok);
	add(&t, "preforkd_reloads_total{result=\"failed\"} %llu\n",
	    (unsigned long long)m->reloads_failed);
	family(&t, "preforkd_last_reload_duration_seconds", "gauge",
	       "How long the last reload took (0 before the first).");
	add(&t, "preforkd_last_reload_duration_seconds %.3f\n", (double)m->last_reload_ms / 1000);
	if (g)
		per_service(&t, m, g->conf);
	if (g) {
		char name[256];

		family(&t, "preforkd_pool_target_workers", "gauge",
		       "The workers each service's pool wants now ('workers', a scale, an elastic "
		       "pool's choice).");
		for (size_t i = 0; i < g->conf->nservices; i++)
			add(&t, "preforkd_pool_target_workers{service=\"%s\"} %u\n",
			    label(g->conf->services[i].name, name, sizeof(name)), g->pools[i].target);
	}
	if (openmetrics)
		add(&t, "# EOF\n");
	if (t.failed) {
		free(t.buf);
		return NULL;
	}
	*len = t.len;
	return t.buf;
}
