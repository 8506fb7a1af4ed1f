/* SPDX-License-Identifier: ISC */
/* retire.c - which workers are to be replaced: past max-requests, max-lifetime or max-memory, or hung.
 *
 * A worker past a limit is marked; pool.c replaces the marked ones one at a
 * time, replacement first. Each worker's limit is spread over +-10 % by its
 * number, so that the workers of a service, started together, do not
 * reach their limits together. Memory is read for one worker per turn at
 * most (a large worker's smaps_rollup takes milliseconds: the kernel walks
 * its page tables), each every RETIRE_MEMORY_EVERY_MS. A hung worker (its loop's heartbeat in the
 * counters older than hang-timeout) is not waited for: SIGABRT now, so
 * that a core can be taken, SIGKILL RETIRE_KILL_GRACE later, and its
 * replacement starts at once. */
#include "config.h"

#include "master/retire.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "common/clock.h"
#include "common/log.h"
#include "common/spread.h"
#include "conf/conf.h"
#include "handlers/handler.h"
#include "master/generation.h"
#include "master/master_private.h"
#include "master/pool.h"
#include "master/procmem.h"
#include "worker/counters.h"

#define RETIRE_TICK_MS 100		/* counts, ages, heartbeats */
#define RETIRE_MEMORY_EVERY_MS 5000	/* each worker's memory (procmem.c) */
#define RETIRE_KILL_GRACE_MAX_MS 10000	/* after SIGABRT: hang-timeout, at most this */

static uint64_t next_tick;


static bool wants_checks(const struct service *svc)
{
	return svc->max_requests || svc->max_lifetime_ms || svc->max_memory_kib ||
	       (svc->hang_timeout_ms && !svc->handler->app);
}

/* What /proc says the process is doing: its state and where it sleeps. */
static void describe_process(pid_t pid, char *buf, size_t len)
{
	char path[64], stat[512], wchan[64] = "?", *p;
	FILE *f;
	size_t n = 0;

	snprintf(path, sizeof(path), "/proc/%ld/stat", (long)pid);
	if ((f = fopen(path, "re"))) {
		n = fread(stat, 1, sizeof(stat) - 1, f);
		fclose(f);
	}
	stat[n] = '\0';
	snprintf(path, sizeof(path), "/proc/%ld/wchan", (long)pid);
	if ((f = fopen(path, "re"))) {
		n = fread(wchan, 1, sizeof(wchan) - 1, f);
		wchan[n] = '\0';
		fclose(f);
	}
	/* Kernel symbols are [a-z0-9_]: nothing to escape, but cut at anything else. */
	wchan[strspn(wchan, "abcdefghijklmnopqrstuvwxyz0123456789_")] = '\0';
	p = strrchr(stat, ')');
	snprintf(buf, len, "process state %c, waiting in %s", p && p[1] == ' ' && p[2] ? p[2] : '?',
		 wchan[0] && strcmp(wchan, "0") ? wchan : "nothing");
}

static void hung(struct master *m, struct slot *s, uint64_t beat)
{
	const struct service *svc = &s->gen->conf->services[s->service];
	uint64_t grace = svc->hang_timeout_ms < RETIRE_KILL_GRACE_MAX_MS ?
			 svc->hang_timeout_ms : RETIRE_KILL_GRACE_MAX_MS;
	char what[160];

	describe_process(s->pid, what, sizeof(what));
	log_error("worker %s#%u (pid %ld, generation %u) hung: its loop has not turned for %llu "
		  "ms (hang-timeout %u ms; %s; %llu connections open): SIGABRT, SIGKILL in %llu "
		  "ms, its replacement starts now", slot_name(s), s->index, (long)s->pid,
		  s->gen->id, (unsigned long long)(m->now - beat), svc->hang_timeout_ms, what,
		  (unsigned long long)counter_get(generation_counters(s), COUNTER_ACTIVE),
		  (unsigned long long)grace);
	if (kill(s->pid, SIGABRT) < 0 && errno != ESRCH)
		log_errno(LOG_ERR, errno, "kill(ABRT) worker %ld", (long)s->pid);
	s->hung_kill_at = m->now + grace;
	pool_replace_now(m, s, RETIRE_HUNG);
}

static void mark(struct slot *s, enum retire_reason why, const char *text)
{
	s->retire = why;
	log_info("worker %s#%u (pid %ld, generation %u) %s: to be recycled", slot_name(s),
		 s->index, (long)s->pid, s->gen->id, text);
}

/* Marks s if it has served its max-requests, or (told) its worker said
 * so; true when it is marked. */
static bool check_requests(struct slot *s, bool told)
{
	const struct service *svc = &s->gen->conf->services[s->service];
	uint64_t limit, n;
	char text[160];

	if (!svc->max_requests || svc->handler->app)
		return false;
	limit = limit_spread(svc->max_requests, s->index);
	n = generation_served(s);
	if (n < limit && !told)
		return false;
	snprintf(text, sizeof(text), "served %llu (max-requests %u, %llu for it)",
		 (unsigned long long)n, svc->max_requests, (unsigned long long)limit);
	mark(s, RETIRE_MAX_REQUESTS, text);
	return true;
}

void retire_asked(struct master *m, struct slot *s)
{
	if (!m->stopping && s->gen == m->current && s->state == SLOT_READY &&
	    s->retire == RETIRE_NONE && !s->replaces)
		check_requests(s, true);
}

/* *memory_read: a worker's memory was read this turn already. */
static void check_limits(struct master *m, struct slot *s, bool *memory_read)
{
	const struct service *svc = &s->gen->conf->services[s->service];
	char text[160];

	if (s->state != SLOT_READY || s->retire != RETIRE_NONE || s->replaces)
		return;
	if (check_requests(s, false))
		return;
	if (svc->max_lifetime_ms) {
		uint64_t limit = limit_spread(svc->max_lifetime_ms, s->index);

		if (m->now - s->started_ms >= limit) {
			snprintf(text, sizeof(text), "is %llu ms old (max-lifetime %u ms, %llu for it)",
				 (unsigned long long)(m->now - s->started_ms), svc->max_lifetime_ms,
				 (unsigned long long)limit);
			mark(s, RETIRE_MAX_LIFETIME, text);
			return;
		}
	}
	if (svc->max_memory_kib && !*memory_read && m->now >= s->memory_due) {
		uint64_t limit = limit_spread(svc->max_memory_kib, s->index);
		unsigned long long kib = s->app ? procmem_group_kib(s->pid) : procmem_kib(s->pid);

		*memory_read = true;
		s->memory_due = m->now + RETIRE_MEMORY_EVERY_MS;
		if (kib > limit) {
			snprintf(text, sizeof(text), "uses %llu KiB (max-memory %u KiB, %llu for it)",
				 kib, svc->max_memory_kib, (unsigned long long)limit);
			mark(s, RETIRE_MAX_MEMORY, text);
		}
	}
}

void retire_tend(struct master *m)
{
	struct generation *g = m->current;
	bool memory_read = false;

	if (!g || m->stopping || m->now < next_tick)
		return;
	next_tick = m->now + RETIRE_TICK_MS;
	/* By index: a replacement added on the way is looked at next time. */
	for (size_t i = 0, n = g->nslots; i < n; i++) {
		struct slot *s = g->slots[i];
		const struct service *svc = &g->conf->services[s->service];
		uint64_t beat;

		if (s->hung_kill_at && m->now >= s->hung_kill_at && slot_alive(s)) {
			log_warn("hung worker %s#%u (pid %ld) still there: SIGKILL", slot_name(s),
				 s->index, (long)s->pid);
			kill(s->pid, SIGKILL);
			s->hung_kill_at = 0;
		}
		if (!wants_checks(svc))
			continue;
		if (svc->hang_timeout_ms && !s->app && s->retire != RETIRE_HUNG &&
		    (s->state == SLOT_READY || s->state == SLOT_RETIRING) &&
		    (beat = counter_get(generation_counters(s), COUNTER_HEARTBEAT)) &&
		    m->now > beat + svc->hang_timeout_ms) {
			hung(m, s, beat);
			continue;
		}
		check_limits(m, s, &memory_read);
	}
}

uint64_t retire_next_deadline(const struct master *m)
{
	const struct generation *g = m->current;
	uint64_t d = 0;

	for (size_t i = 0; g && i < g->nslots; i++) {
		if (g->slots[i]->hung_kill_at)
			d = clock_sooner(d, g->slots[i]->hung_kill_at);
		if (wants_checks(&g->conf->services[g->slots[i]->service]))
			d = clock_sooner(d, next_tick > m->now ? next_tick : m->now + 1);
	}
	return d;
}
