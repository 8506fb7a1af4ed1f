/* SPDX-License-Identifier: ISC */
/* slot.c - a worker slot's life as one state machine: states, events, and the respawn back-off.
 *
 * In the manner of s6-supervise: every transition is an action in one table
 * indexed by state and event; an event a state does not expect is ignored.
 * Nothing here forks, signals or logs: the master does what the outcome
 * says. That keeps the policy (when to respawn, when to give up) in one
 * place, and testable without processes. */
#include "config.h"

#include "master/slot.h"

#include <stdbool.h>
#include <sys/wait.h>

#include "conf/conf.h"
#include "master/generation.h"
#include "worker/worker.h"

typedef enum slot_outcome slot_action(struct slot *s, const struct slot_event_data *d);

static enum slot_outcome ignore(struct slot *s, const struct slot_event_data *d)
{
	(void)s;
	(void)d;
	return SLOT_NOTHING;
}

static enum slot_outcome started(struct slot *s, const struct slot_event_data *d)
{
	s->state = SLOT_STARTING;
	s->pid = d->pid;
	s->started_ms = d->now;
	return SLOT_NOTHING;
}

static enum slot_outcome retry_later(struct slot *s, const struct slot_event_data *d)
{
	s->respawn_at_ms = d->now + SLOT_RESPAWN_DELAY_MAX_MS;
	return SLOT_RESPAWN;
}

static enum slot_outcome ready(struct slot *s, const struct slot_event_data *d)
{
	(void)d;
	s->state = SLOT_READY;
	return SLOT_NOTHING;
}

static enum slot_outcome stopping(struct slot *s, const struct slot_event_data *d)
{
	(void)d;
	s->state = SLOT_STOPPING;
	return SLOT_NOTHING;
}

static enum slot_outcome done(struct slot *s, const struct slot_event_data *d)
{
	(void)d;
	s->state = SLOT_DONE;
	s->pid = 0;
	return SLOT_NOTHING;
}

/* A worker that was not told to stop has died: respawn it, with a back-off
 * that doubles while it keeps dying at start, and give up when it cannot
 * work or keeps failing. */
static enum slot_outcome died(struct slot *s, const struct slot_event_data *d)
{
	unsigned delay = 0;

	s->pid = 0;
	if (d->role == GEN_DRAINING) {
		s->state = SLOT_DONE;
		return SLOT_NOTHING;
	}
	if (d->role == GEN_PENDING) {
		s->state = SLOT_FAILED;
		return SLOT_FAILED_PENDING;
	}
	if (s->replaces && s->state == SLOT_STARTING) {
		s->state = SLOT_DONE;
		return SLOT_FAILED_REPLACEMENT;
	}
	/* An app worker's exit status is its program's, not ours. */
	if (!s->app && WIFEXITED(d->status) && WEXITSTATUS(d->status) == WORKER_EXIT_FATAL) {
		s->state = SLOT_FAILED;
		return SLOT_GAVE_UP_FATAL;
	}
	/* Never ready is a failed start however long it took (an app worker
	 * that did not say READY=1 within start-timeout). */
	if (s->state == SLOT_STARTING || d->now - s->started_ms < SLOT_QUICK_EXIT_MS)
		s->quick_failures++;
	else
		s->quick_failures = 0;
	if (s->quick_failures >= SLOT_MAX_QUICK_FAILURES) {
		s->state = SLOT_FAILED;
		return SLOT_GAVE_UP_QUICK;
	}
	if (s->quick_failures > 0) {
		delay = SLOT_RESPAWN_DELAY_MIN_MS << (s->quick_failures - 1);
		if (delay > SLOT_RESPAWN_DELAY_MAX_MS)
			delay = SLOT_RESPAWN_DELAY_MAX_MS;
	}
	s->state = SLOT_WAITING;
	s->respawn_at_ms = d->now + delay;
	return SLOT_RESPAWN;
}

/* A hung worker left the slot to be killed elsewhere: its replacement
 * starts now, and its end is not a failure of the slot's. */
static enum slot_outcome replaced(struct slot *s, const struct slot_event_data *d)
{
	s->pid = 0;
	s->state = SLOT_WAITING;
	s->respawn_at_ms = d->now;
	return SLOT_RESPAWN;
}

static enum slot_outcome retiring(struct slot *s, const struct slot_event_data *d)
{
	(void)d;
	s->state = SLOT_RETIRING;
	return SLOT_NOTHING;
}

/* Its replacement is on the way, and takes its place in the pool. */
static enum slot_outcome died_retiring(struct slot *s, const struct slot_event_data *d)
{
	done(s, d);
	return d->role == GEN_SERVING ? SLOT_DIED_RETIRING : SLOT_NOTHING;
}

/* A slot given up on is taken up again (a recycle asked for it). */
static enum slot_outcome retry_now(struct slot *s, const struct slot_event_data *d)
{
	s->state = SLOT_WAITING;
	s->quick_failures = 0;
	s->respawn_at_ms = d->now;
	return SLOT_RESPAWN;
}

static slot_action *const table[SLOT_STATES][SLOT_EVENTS] = {
	/*		   SPAWNED  SPAWN_FAILED READY_SAID EXITED  STOP      REPLACED  RETIRE    KEEP */
	[SLOT_WAITING]	= { started, retry_later, ignore,  ignore,  done,     ignore,   ignore,   ignore },
	[SLOT_STARTING]	= { ignore,  ignore,      ready,   died,    stopping, ignore,   ignore,   ignore },
	[SLOT_READY]	= { ignore,  ignore,      ignore,  died,    stopping, replaced, retiring, ignore },
	[SLOT_RETIRING]	= { ignore,  ignore,      ignore,  died_retiring, stopping, ignore, ignore, ready },
	[SLOT_STOPPING]	= { ignore,  ignore,      ignore,  done,    ignore,   ignore,   ignore,   ignore },
	[SLOT_FAILED]	= { ignore,  ignore,      ignore,  ignore,  done,     ignore,   retry_now, ignore },
	[SLOT_DONE]	= { ignore,  ignore,      ignore,  ignore,  ignore,   ignore,   ignore,   ignore },
};

enum slot_outcome slot_event(struct slot *s, enum slot_event ev, const struct slot_event_data *d)
{
	return table[s->state][ev](s, d);
}

bool slot_alive(const struct slot *s)
{
	return s->state == SLOT_STARTING || s->state == SLOT_READY || s->state == SLOT_RETIRING ||
	       s->state == SLOT_STOPPING;
}

bool slot_counted(const struct slot *s)
{
	return s->state == SLOT_WAITING || s->state == SLOT_STARTING || s->state == SLOT_READY ||
	       s->state == SLOT_FAILED;
}

const char *slot_retire_name(enum retire_reason why)
{
	static const char *const names[RETIRE_REASONS] = {
		[RETIRE_NONE] = "none", [RETIRE_ASKED] = "asked",
		[RETIRE_MAX_REQUESTS] = "max-requests", [RETIRE_MAX_LIFETIME] = "max-lifetime",
		[RETIRE_MAX_MEMORY] = "max-memory", [RETIRE_HUNG] = "hung",
	};

	return why < RETIRE_REASONS ? names[why] : "?";
}

const char *slot_state_name(enum slot_state state)
{
	static const char *const names[SLOT_STATES] = {
		[SLOT_WAITING] = "waiting", [SLOT_STARTING] = "starting", [SLOT_READY] = "ready",
		[SLOT_RETIRING] = "retiring", [SLOT_STOPPING] = "stopping",
		[SLOT_FAILED] = "failed", [SLOT_DONE] = "done",
	};

	return state < SLOT_STATES ? names[state] : "?";
}

const char *slot_name(const struct slot *s)
{
	return s->gen->conf->services[s->service].name;
}
