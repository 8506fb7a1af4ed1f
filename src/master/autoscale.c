/* SPDX-License-Identifier: ISC */
/* autoscale.c - an elastic pool's policy: grow while clients wait in the accept queue, shrink by idle workers.
 *
 * Every AUTOSCALE_TICK_MS the master reads, for each elastic service of
 * the serving generation, what the kernel holds in its listeners' accept
 * queues (TCP_INFO, sock_diag: listenqueue.c) and what each worker has
 * served (its row of counters). Busy is clients waiting, or every worker
 * at max-connections; busy for scale-up-after adds a worker, one at a
 * time (the next once the last is ready) and at most one per
 * AUTOSCALE_MIN_SPAWN_MS. A worker that has served nothing and held no
 * connection for scale-down-after is let go, at most one per
 * AUTOSCALE_DOWN_EVERY_MS; app workers, whose connections we do not see,
 * are let go one per scale-down-after of empty queues. The pool only sets
 * a target: pool.c adds and stops the slots. */
#include "config.h"

#include "master/autoscale.h"

#include <stdio.h>

#include "common/clock.h"
#include "common/log.h"
#include "conf/conf.h"
#include "handlers/handler.h"
#include "master/generation.h"
#include "master/listener.h"
#include "master/listenqueue.h"
#include "master/master_private.h"
#include "worker/counters.h"

#define AUTOSCALE_TICK_MS 100
#define AUTOSCALE_MIN_SPAWN_MS 100
#define AUTOSCALE_DOWN_EVERY_MS 1000

static uint64_t next_tick;	/* the master's loop turns more often than this reads */

/* Clients wait in a stream listener's accept queue. */
static bool queued(const struct generation *g, size_t service)
{
	const struct service_listeners *sl = &g->svc_ls[service];

	for (size_t i = 0; i < sl->n; i++) {
		struct listen_queue q;

		if (sl->ls[i] && listen_queue_read(sl->ls[i]->fd, &sl->ls[i]->addr, &q) == 0 &&
		    q.length > 0)
			return true;
	}
	return false;
}

/* Every ready worker holds max-connections (preforkd's own workers only). */
static bool saturated(const struct generation *g, size_t service)
{
	const struct service *svc = &g->conf->services[service];
	unsigned ready = 0;

	if (svc->handler->app)
		return false;
	for (size_t i = 0; i < g->nslots; i++) {
		const struct slot *s = g->slots[i];

		if (s->service != service || s->state != SLOT_READY)
			continue;
		if (counter_get(generation_counters(s), COUNTER_ACTIVE) < svc->max_connections)
			return false;
		ready++;
	}
	return ready > 0;
}

static bool starting(const struct generation *g, size_t service)
{
	return generation_count_service(g, service, SLOT_STARTING) ||
	       generation_count_service(g, service, SLOT_WAITING);
}

/* Notes who served since the last look; the ready worker idle the longest. */
static struct slot *idlest(const struct generation *g, size_t service, uint64_t now)
{
	struct slot *best = NULL;

	for (size_t i = 0; i < g->nslots; i++) {
		struct slot *s = g->slots[i];
		uint64_t n;

		if (s->service != service || s->state != SLOT_READY)
			continue;
		n = generation_served(s);
		if (!s->idle_since || n != s->served_seen ||
		    counter_get(generation_counters(s), COUNTER_ACTIVE) > 0)
			s->idle_since = now;
		s->served_seen = n;
		if (!s->replaces && s->retire == RETIRE_NONE &&
		    (!best || s->idle_since < best->idle_since))
			best = s;
	}
	return best;
}

static void change(struct master *m, struct generation *g, size_t service, bool up,
		   enum scale_reason why, const char *text)
{
	struct pool *p = &g->pools[service];
	struct service_totals *t = master_totals(m, g->conf->services[service].name);

	p->target += up ? 1 : -1;
	p->last_change = why;
	if (up)
		p->last_up = m->now;
	else
		p->last_down = m->now;
	if (t)
		t->scale_events[!up][why]++;
	log_info("service '%s': %s to %u worker%s (%s)", g->conf->services[service].name,
		 up ? "growing" : "shrinking", p->target, p->target == 1 ? "" : "s", text);
}

static void tend_service(struct master *m, struct generation *g, size_t service)
{
	const struct service *svc = &g->conf->services[service];
	struct pool *p = &g->pools[service];
	bool waiting = queued(g, service), full = !waiting && saturated(g, service);
	struct slot *idle = idlest(g, service, m->now);
	char text[128];

	if (p->pinned)
		return;
	if (waiting || full) {
		p->quiet_since = 0;
		if (!p->busy_since)
			p->busy_since = m->now;
	} else {
		p->busy_since = 0;
		if (!p->quiet_since)
			p->quiet_since = m->now;
	}
	if (p->busy_since && m->now - p->busy_since >= svc->scale_up_after_ms &&
	    p->target < p->ceiling && !starting(g, service) &&
	    m->now - p->last_up >= AUTOSCALE_MIN_SPAWN_MS) {
		snprintf(text, sizeof(text), "%s for %llu ms",
			 waiting ? "clients waiting in the accept queue" :
				   "every worker at max-connections",
			 (unsigned long long)(m->now - p->busy_since));
		change(m, g, service, true, waiting ? SCALE_QUEUE : SCALE_SATURATED, text);
		return;
	}
	if (p->busy_since || p->target <= svc->min_workers)
		return;
	if (svc->handler->app) {
		/* Their connections are not ours to see: empty queues are the sign. */
		if (m->now - p->quiet_since < svc->scale_down_after_ms ||
		    m->now - p->last_down < svc->scale_down_after_ms)
			return;
		snprintf(text, sizeof(text), "accept queues empty for %llu ms",
			 (unsigned long long)(m->now - p->quiet_since));
		change(m, g, service, false, SCALE_IDLE, text);
		return;
	}
	if (!idle || m->now - idle->idle_since < svc->scale_down_after_ms ||
	    m->now - p->last_down < AUTOSCALE_DOWN_EVERY_MS)
		return;
	snprintf(text, sizeof(text), "worker #%u (pid %ld) idle for %llu ms", idle->index,
		 (long)idle->pid, (unsigned long long)(m->now - idle->idle_since));
	change(m, g, service, false, SCALE_IDLE, text);
	/* That one goes, not the one the pool would pick. */
	generation_stop_slot(idle);
}

void autoscale_tend(struct master *m)
{
	struct generation *g = m->current;

	if (!g || m->stopping || m->pending || m->now < next_tick)
		return;
	next_tick = m->now + AUTOSCALE_TICK_MS;
	for (size_t i = 0; i < g->conf->nservices; i++)
		if (g->conf->services[i].elastic)
			tend_service(m, g, i);
}

uint64_t autoscale_next_deadline(const struct master *m)
{
	const struct generation *g = m->current;

	for (size_t i = 0; g && i < g->conf->nservices; i++)
		if (g->conf->services[i].elastic && !g->pools[i].pinned)
			return next_tick > m->now ? next_tick : m->now + 1;
	return 0;
}

const char *autoscale_reason_name(int why)
{
	static const char *const names[SCALE_REASONS] = {
		[SCALE_QUEUE] = "queue", [SCALE_SATURATED] = "saturated", [SCALE_IDLE] = "idle",
		[SCALE_ASKED] = "asked",
	};

	return why >= 0 && why < SCALE_REASONS ? names[why] : "none";
}
