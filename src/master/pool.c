/* SPDX-License-Identifier: ISC */
/* pool.c - a service's workers in the serving generation: their number (scale) and their replacement one at a time (recycle).
 *
 * A pool is reconciled between batches of events, as a count: slots are
 * added while fewer than its target hold a place (slot_counted), and the
 * least useful are stopped while more do (a slot with no process first,
 * then one given up, one starting, and of the ready ones the highest
 * number). A recycle marks the workers it is to replace; one at a time,
 * the lowest marked one gets a replacement of the same number in a slot
 * of its own, and is told to stop only when that one is ready, so the
 * service never has fewer ready workers than before. A replacement that
 * fails leaves the old worker serving, and ends the recycle. */
#include "config.h"

#include "master/pool.h"

#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "common/clock.h"
#include "common/log.h"
#include "conf/conf.h"
#include "handlers/handler.h"
#include "master/control.h"
#include "master/generation.h"
#include "master/master_private.h"

#define POOL_READY_TIMEOUT_MS 30000	/* for a built-in worker's replacement to be ready */
#define POOL_RETRY_MIN_MS 1000		/* after a failed replacement, doubling... */
#define POOL_RETRY_MAX_MS 60000		/* ...up to this */
#define POOL_SCALE_TIMEOUT_MS 30000	/* for a scale to be answered, beyond start-timeout */

static struct pool *pool_of(const struct slot *s)
{
	return &s->gen->pools[s->service];
}

static unsigned counted(const struct generation *g, size_t service)
{
	unsigned n = 0;

	for (size_t i = 0; i < g->nslots; i++)
		n += g->slots[i]->service == service && slot_counted(g->slots[i]);
	return n;
}

/* A number is taken while a slot that serves, or will, has it. */
static bool index_taken(const struct generation *g, size_t service, unsigned index)
{
	for (size_t i = 0; i < g->nslots; i++) {
		const struct slot *s = g->slots[i];

		if (s->service == service && s->index == index &&
		    (slot_counted(s) || s->state == SLOT_RETIRING))
			return true;
	}
	return false;
}

static struct slot *replacement_in_flight(const struct generation *g, size_t service)
{
	for (size_t i = 0; i < g->nslots; i++)
		if (g->slots[i]->service == service && g->slots[i]->replaces)
			return g->slots[i];
	return NULL;
}

/* The slot to stop first when a pool shrinks; never a replacement (its
 * pair counts as one). */
static struct slot *least_useful(const struct generation *g, size_t service)
{
	static const int rank[SLOT_STATES] = {
		[SLOT_WAITING] = 1, [SLOT_FAILED] = 2, [SLOT_STARTING] = 3, [SLOT_READY] = 4,
	};
	struct slot *best = NULL;

	for (size_t i = 0; i < g->nslots; i++) {
		struct slot *s = g->slots[i];

		if (s->service != service || !slot_counted(s) || s->replaces)
			continue;
		if (!best || rank[s->state] < rank[best->state] ||
		    (rank[s->state] == rank[best->state] && s->index > best->index))
			best = s;
	}
	return best;
}

/* An operation of the pool's ends: the client waiting for it is answered. */
static void finish(struct master *m, struct generation *g, size_t service, bool recycle, bool ok,
		   const char *text)
{
	struct pool *p = &g->pools[service];
	unsigned *op = recycle ? &p->recycle_op : &p->scale_op;
	struct pool_result r = {
		.ok = ok, .text = text, .service = g->conf->services[service].name,
		.count_name = recycle ? "recycled" : "workers",
		.count = recycle ? p->recycled : p->target,
		.duration_ms = m->now - (recycle ? p->recycle_started : p->scale_started),
	};

	if (*op)
		control_pool_finished(m, *op, &r);
	*op = 0;
	if (recycle)
		p->recycled = 0;
}

static void unmark(struct generation *g, size_t service)
{
	for (size_t i = 0; i < g->nslots; i++)
		if (g->slots[i]->service == service && slot_counted(g->slots[i]))
			g->slots[i]->retire = RETIRE_NONE;
}

/* Marked for a recycle, and not on its way out yet. */
static bool marked(const struct generation *g, size_t service)
{
	for (size_t i = 0; i < g->nslots; i++) {
		const struct slot *s = g->slots[i];

		if (s->service == service && s->retire != RETIRE_NONE &&
		    (slot_counted(s) || s->state == SLOT_RETIRING))
			return true;
	}
	return false;
}

static void reconcile(struct generation *g, size_t service)
{
	const struct pool *p = &g->pools[service];
	unsigned n = counted(g, service);

	for (; n < p->target; n++) {
		unsigned index = 0;

		while (index_taken(g, service, index))
			index++;
		if (!generation_add_slot(g, service, index)) {
			log_error("service '%s': out of memory for a new worker slot",
				  g->conf->services[service].name);
			return;
		}
	}
	for (; n > p->target; n--) {
		struct slot *s = least_useful(g, service);

		if (!s)
			return;
		if (slot_alive(s))
			log_info("worker %s#%u (pid %ld, generation %u): stopping it, its service "
				 "is scaled to %u", slot_name(s), s->index, (long)s->pid, g->id,
				 p->target);
		s->retire = RETIRE_NONE;
		generation_stop_slot(s);
	}
}

static void begin_replacement(struct master *m, struct generation *g, struct slot *s)
{
	unsigned index = s->index;
	size_t service = s->service;
	struct slot *r = generation_add_slot(g, service, index);

	(void)m;
	if (!r) {
		log_error("service '%s': out of memory for a replacement of worker #%u; the "
			  "recycle ends", g->conf->services[service].name, index);
		unmark(g, service);
		finish(m, g, service, true, false, "out of memory");
		return;
	}
	r->replaces = s;
	s->replaced_by = r;
	slot_event(s, SLOT_RETIRE, &(struct slot_event_data){ .now = m->now });
	log_info("recycling worker %s#%u (pid %ld, generation %u; %s): its replacement starts",
		 slot_name(s), index, (long)s->pid, g->id, slot_retire_name(s->retire));
}

/* The next worker of the recycle: the lowest marked one. */
static void recycle_step(struct master *m, struct generation *g, size_t service)
{
	struct slot *r = replacement_in_flight(g, service);

	if (m->now < g->pools[service].recycle_retry_at)
		return;
	if (r) {
		/* An app worker has its start-timeout (appworker.c). */
		if (!r->app && r->state == SLOT_STARTING && !r->start_timed_out &&
		    m->now >= r->started_ms + POOL_READY_TIMEOUT_MS) {
			log_error("replacement of worker %s#%u (pid %ld) not ready within %u ms: "
				  "killing it", slot_name(r), r->index, (long)r->pid,
				  POOL_READY_TIMEOUT_MS);
			kill(r->pid, SIGKILL);
			r->start_timed_out = true;
		}
		return;
	}
	for (;;) {
		struct slot *next = NULL;

		for (size_t i = 0; i < g->nslots; i++) {
			struct slot *s = g->slots[i];

			if (s->service == service && s->retire != RETIRE_NONE && slot_counted(s) &&
			    (!next || s->index < next->index))
				next = s;
		}
		if (!next)
			return;
		switch (next->state) {
		case SLOT_WAITING:	/* no process: the one it starts is new */
			next->retire = RETIRE_NONE;
			continue;
		case SLOT_FAILED:
			log_notice("worker %s#%u was given up on; the recycle tries it again",
				   slot_name(next), next->index);
			next->retire = RETIRE_NONE;
			slot_event(next, SLOT_RETIRE, &(struct slot_event_data){ .now = m->now });
			continue;
		case SLOT_STARTING:	/* replaced once it is ready */
			return;
		default:
			begin_replacement(m, g, next);
			return;
		}
	}
}

static void answer_ops(struct master *m, struct generation *g, size_t service)
{
	struct pool *p = &g->pools[service];
	const char *name = g->conf->services[service].name;
	char text[256];
	unsigned ready = generation_count_service(g, service, SLOT_READY);
	unsigned failed = generation_count_service(g, service, SLOT_FAILED);

	if (p->scale_op && counted(g, service) == p->target &&
	    !generation_count_service(g, service, SLOT_WAITING) && !generation_count_service(g, service, SLOT_STARTING)) {
		if (failed)
			snprintf(text, sizeof(text), "service '%s': %u of %u workers ready, %u given "
				 "up on (see the log)", name, ready, p->target, failed);
		else
			snprintf(text, sizeof(text), "service '%s': %u worker%s ready (was %u)",
				 name, p->target, p->target == 1 ? "" : "s", p->scale_from);
		finish(m, g, service, false, !failed, text);
	} else if (p->scale_op && m->now >= p->scale_deadline) {
		snprintf(text, sizeof(text), "service '%s': %u of %u workers ready after %llu ms; "
			 "the pool carries on", name, ready, p->target,
			 (unsigned long long)(m->now - p->scale_started));
		finish(m, g, service, false, false, text);
	}
	if (p->recycle_op && !marked(g, service) && !replacement_in_flight(g, service)) {
		snprintf(text, sizeof(text), "recycled %u worker%s of service '%s' in %llu ms",
			 p->recycled, p->recycled == 1 ? "" : "s", name,
			 (unsigned long long)(m->now - p->recycle_started));
		log_notice("%s", text);
		finish(m, g, service, true, true, text);
	}
}

void pool_tend(struct master *m)
{
	struct generation *g = m->current;

	if (!g || m->stopping)
		return;
	for (size_t i = 0; i < g->conf->nservices; i++) {
		reconcile(g, i);
		recycle_step(m, g, i);
		answer_ops(m, g, i);
	}
	generation_remove_done(g);
}

uint64_t pool_next_deadline(const struct master *m)
{
	const struct generation *g = m->current;
	uint64_t d = 0;

	for (size_t i = 0; g && i < g->conf->nservices; i++)
		if (g->pools[i].scale_op)
			d = clock_sooner(d, g->pools[i].scale_deadline);
	for (size_t i = 0; g && i < g->nslots; i++) {
		const struct slot *s = g->slots[i];

		if (s->replaces && !s->app && s->state == SLOT_STARTING && !s->start_timed_out)
			d = clock_sooner(d, s->started_ms + POOL_READY_TIMEOUT_MS);
	}
	return d;
}

/* The serving generation's service called name, if it may be asked now. */
static int check_request(struct master *m, size_t service, char *why, size_t len)
{
	if (m->stopping || !m->current) {
		snprintf(why, len, "stopping");
		return -1;
	}
	if (m->pending) {
		snprintf(why, len, "a reload is in progress: ask again when it has ended");
		return -1;
	}
	if (service >= m->current->conf->nservices) {
		snprintf(why, len, "no such service");
		return -1;
	}
	return 0;
}

unsigned pool_scale(struct master *m, size_t service, unsigned n, char *why, size_t len)
{
	struct generation *g = m->current;
	const struct service *svc;
	struct service_totals *t;
	struct pool *p;

	if (check_request(m, service, why, len) < 0)
		return 0;
	svc = &g->conf->services[service];
	p = &g->pools[service];
	if (n < 1 || n > p->ceiling) {
		snprintf(why, len, "service '%s': %u workers is not within 1 to max-workers (%u)",
			 svc->name, n, p->ceiling);
		return 0;
	}
	if (p->scale_op)
		finish(m, g, service, false, false, "superseded by a later scale");
	log_notice("service '%s': scaled from %u to %u workers, until the next reload%s",
		   svc->name, p->target, n, svc->elastic ? " (the elastic pool stays there)" : "");
	if (n != p->target && (t = master_totals(m, svc->name)))
		t->scale_events[n < p->target][SCALE_ASKED]++;
	p->pinned = true;
	p->last_change = SCALE_ASKED;
	p->scale_from = p->target;
	p->target = n;
	p->scale_op = ++m->op_seq;
	p->scale_started = m->now;
	p->scale_deadline = m->now + POOL_SCALE_TIMEOUT_MS + (svc->handler->app ?
							     svc->start_timeout_ms : 0);
	return p->scale_op;
}

unsigned pool_recycle(struct master *m, size_t service, enum retire_reason reason, char *why,
		      size_t len)
{
	struct generation *g = m->current;
	struct pool *p;
	unsigned n = 0;

	if (check_request(m, service, why, len) < 0)
		return 0;
	p = &g->pools[service];
	if (p->recycle_op)
		return p->recycle_op;	/* it replaces every worker this one would */
	for (size_t i = 0; i < g->nslots; i++) {
		struct slot *s = g->slots[i];

		if (s->service == service && slot_counted(s) && !s->replaces) {
			s->retire = reason;
			n++;
		}
	}
	log_notice("service '%s': recycling its %u worker%s one at a time, each replacement "
		   "ready before the old one stops", g->conf->services[service].name, n,
		   n == 1 ? "" : "s");
	p->recycle_op = ++m->op_seq;
	p->recycle_started = m->now;
	p->recycled = 0;
	p->recycle_retry_at = 0;	/* asked: now, whatever failed before */
	return p->recycle_op;
}

void pool_replacement_ready(struct master *m, struct slot *r)
{
	struct slot *old = r->replaces;
	struct service_totals *t = master_totals(m, slot_name(r));

	r->replaces = NULL;
	old->replaced_by = NULL;
	log_info("worker %s#%u (pid %ld) %s (%s): pid %ld serves in its place", slot_name(old),
		 old->index, (long)old->pid, old->retire == RETIRE_HUNG ? "replaced" : "recycled",
		 slot_retire_name(old->retire), (long)r->pid);
	if (t)
		t->recycles[old->retire]++;
	/* A hung one keeps its reason: it is still to be killed (retire.c). */
	if (old->retire != RETIRE_HUNG)
		old->retire = RETIRE_NONE;
	generation_stop_slot(old);
	pool_of(r)->recycled++;
	pool_of(r)->recycle_backoff_ms = 0;
}

void pool_replace_now(struct master *m, struct slot *s, enum retire_reason why)
{
	s->retire = why;
	if (s->state == SLOT_READY)
		begin_replacement(m, s->gen, s);
}

void pool_replacement_failed(struct master *m, struct slot *r, const char *how)
{
	struct slot *old = r->replaces;
	char text[256];

	struct pool *p = pool_of(old);

	r->replaces = NULL;
	old->replaced_by = NULL;
	if (old->retire == RETIRE_HUNG) {
		/* It is being killed all the same: its slot respawns when it dies. */
		snprintf(text, sizeof(text), "the replacement of hung worker %s#%u %s before it "
			 "was ready", slot_name(old), old->index, how);
		log_error("%s", text);
		return;
	}
	old->retire = RETIRE_NONE;
	slot_event(old, SLOT_KEEP, &(struct slot_event_data){ .now = m->now });
	p->recycle_backoff_ms = p->recycle_backoff_ms ? 2 * p->recycle_backoff_ms :
				POOL_RETRY_MIN_MS;
	if (p->recycle_backoff_ms > POOL_RETRY_MAX_MS)
		p->recycle_backoff_ms = POOL_RETRY_MAX_MS;
	p->recycle_retry_at = m->now + p->recycle_backoff_ms;
	snprintf(text, sizeof(text), "the replacement of worker %s#%u %s before it was ready; "
		 "pid %ld serves on (recycles of service '%s' wait %u ms)", slot_name(old),
		 old->index, how, (long)old->pid, slot_name(old), p->recycle_backoff_ms);
	log_error("%s", text);
	unmark(old->gen, old->service);
	finish(m, old->gen, old->service, true, false, text);
}

void pool_retiring_died(struct slot *s)
{
	if (s->replaced_by)
		s->replaced_by->replaces = NULL;
	s->replaced_by = NULL;
	s->retire = RETIRE_NONE;
}

void pool_abandon(struct master *m, struct generation *g, const char *why)
{
	for (size_t i = 0; g && i < g->conf->nservices; i++) {
		if (g->pools[i].scale_op)
			finish(m, g, i, false, false, why);
		if (g->pools[i].recycle_op)
			finish(m, g, i, true, false, why);
	}
}

int pool_inherit(const struct generation *from, struct generation *to)
{
	for (size_t i = 0; from && i < to->conf->nservices; i++) {
		const struct service *svc = &to->conf->services[i];
		struct pool *p = &to->pools[i];
		unsigned n = 0;

		if (!svc->elastic)
			continue;
		for (size_t j = 0; j < from->conf->nservices; j++)
			if (from->conf->services[j].elastic && !from->pools[j].pinned &&
			    strcmp(from->conf->services[j].name, svc->name) == 0)
				n = from->pools[j].target;
		if (n > p->ceiling)
			n = p->ceiling;
		for (; p->target < n; p->target++)
			if (!generation_add_slot(to, i, p->target))
				return -1;
	}
	return 0;
}

unsigned pool_targets(const struct generation *g)
{
	unsigned n = 0;

	for (size_t i = 0; i < g->conf->nservices; i++)
		n += g->pools[i].target;
	return n;
}
