/* SPDX-License-Identifier: ISC */
/* slot.h - a worker slot's life as one state machine: states, events, and the respawn back-off. */
#ifndef PREFORKD_SLOT_H
#define PREFORKD_SLOT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "common/evsource.h"

enum slot_state {
	SLOT_WAITING,		/* no process; respawn_at_ms says when */
	SLOT_STARTING,		/* forked, not ready yet */
	SLOT_READY,
	SLOT_RETIRING,		/* ready and serving while its replacement starts */
	SLOT_STOPPING,		/* told to stop, still running */
	SLOT_FAILED,		/* given up on */
	SLOT_DONE,		/* exited after being told to stop */
	SLOT_STATES
};

enum slot_event {
	SLOT_SPAWNED,		/* its worker was forked (pid, now) */
	SLOT_SPAWN_FAILED,	/* fork or socketpair failed (now) */
	SLOT_READY_SAID,	/* its worker said it is accepting */
	SLOT_EXITED,		/* its worker was reaped (status, now) */
	SLOT_STOP,		/* the generation is being stopped */
	SLOT_REPLACED,		/* its hung process was set aside to be killed: respawn now */
	SLOT_RETIRE,		/* a replacement is starting for it (recycle, scale) */
	SLOT_KEEP,		/* its replacement failed: it serves on */
	SLOT_EVENTS
};

/* What a generation is to the master: the slot's fate when a worker dies
 * depends on it. */
enum generation_role {
	GEN_PENDING,		/* starting up for a reload */
	GEN_SERVING,
	GEN_DRAINING,		/* told to stop, finishing connections */
};

struct generation;
struct outlog;

/* Why a worker is being replaced while it works (a recycle). */
enum retire_reason {
	RETIRE_NONE,
	RETIRE_ASKED,		/* "recycle SERVICE" on the control socket */
	RETIRE_MAX_REQUESTS,
	RETIRE_MAX_LIFETIME,
	RETIRE_MAX_MEMORY,
	RETIRE_HUNG,		/* hang-timeout: aborted, its replacement started at once */
	RETIRE_REASONS
};

struct slot {
	struct ev_source src;	/* first: the channel's epoll data (EV_CHANNEL) */
	struct generation *gen;
	size_t service;		/* index into gen->conf->services */
	unsigned index;		/* within the service: its name, echo#1; a replacement takes it on */
	unsigned row;		/* its row in the shared counters and limits, while it has a process */
	bool has_row;
	enum slot_state state;
	/* A replacement and the worker it replaces (RETIRING), linked while
	 * the replacement starts: if it fails, the old one serves on. */
	struct slot *replaces, *replaced_by;
	enum retire_reason retire;	/* to be replaced, and why; RETIRE_NONE */
	bool start_timed_out;	/* a replacement not ready in time: killed */
	/* An elastic pool's view of it (autoscale.c). */
	uint64_t idle_since;		/* nothing served, no connection open, since */
	uint64_t served_seen;		/* what it had served at the last look */
	uint64_t hung_kill_at;		/* hung (built-in, exec): SIGKILL then; 0 */
	uint64_t memory_due;		/* max-memory: when to look at its memory next */
	pid_t pid;
	int channel_fd;		/* our end of the socketpair to the worker; -1 */
	uint64_t started_ms, respawn_at_ms;
	unsigned quick_failures;	/* deaths in a row within SLOT_QUICK_EXIT_MS of start */
	/* handler "app": the service's program is the worker (appworker.c). */
	bool app;
	struct ev_source out_src;	/* its output's epoll data (EV_APP_OUTPUT) */
	struct outlog *out;		/* its stdout and stderr; NULL */
	uint64_t start_deadline;	/* no READY=1 by then: stopped, a failed start; 0 */
	uint64_t stop_deadline;		/* SIGKILL to its process group then; 0 */
	uint64_t watchdog_due;		/* no WATCHDOG=1 by then: hung; 0: off */
	char *status;			/* its last STATUS=, or NULL */
	int said_errno;			/* its ERRNO=, or 0 */
	bool watchdog_triggered;	/* it sent WATCHDOG=trigger */
};

/* What an event came with. */
struct slot_event_data {
	uint64_t now;
	pid_t pid;		/* SLOT_SPAWNED */
	int status;		/* SLOT_EXITED: the wait status */
	enum generation_role role;	/* SLOT_EXITED: of the slot's generation */
};

/* What the master is to do, or say, after an event. */
enum slot_outcome {
	SLOT_NOTHING,		/* nothing to add (or the event did not apply) */
	SLOT_RESPAWN,		/* a new worker is due at respawn_at_ms */
	SLOT_GAVE_UP_FATAL,	/* it exited WORKER_EXIT_FATAL: it can never work */
	SLOT_GAVE_UP_QUICK,	/* it died SLOT_MAX_QUICK_FAILURES times in a row at start */
	SLOT_FAILED_PENDING,	/* a new worker died before it was ready: the reload fails */
	SLOT_FAILED_REPLACEMENT,	/* a replacement died before it was ready: the old one stays */
	SLOT_DIED_RETIRING,	/* it died while its replacement starts: that one takes over */
};

#define SLOT_QUICK_EXIT_MS 1000		/* a worker dying sooner than this failed at start-up */
#define SLOT_MAX_QUICK_FAILURES 5	/* in a row, then the slot is given up */
#define SLOT_RESPAWN_DELAY_MIN_MS 100	/* after the first quick failure, doubling... */
#define SLOT_RESPAWN_DELAY_MAX_MS 5000	/* ...up to this; also after a failed fork */

/* Applies ev to s: one state x event table. Returns what follows. */
enum slot_outcome slot_event(struct slot *s, enum slot_event ev, const struct slot_event_data *d);
/* The process of s is ours and running (STARTING, READY, RETIRING, STOPPING). */
bool slot_alive(const struct slot *s);
/* s holds a place in its service's pool: it serves, will, or was given up
 * (FAILED, so that a pool does not undo giving up); not a worker being
 * replaced, stopped or done. */
bool slot_counted(const struct slot *s);
const char *slot_retire_name(enum retire_reason why);
const char *slot_state_name(enum slot_state state);
/* The name of the service s is a worker of, for messages. */
const char *slot_name(const struct slot *s);

#endif
