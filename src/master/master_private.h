/* SPDX-License-Identifier: ISC */
/* master_private.h - what the master's loop (master.c) and its reloads (reload.c) share. */
#ifndef PREFORKD_MASTER_PRIVATE_H
#define PREFORKD_MASTER_PRIVATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>

#include "common/evsource.h"
#include "conf/conf.h"
#include "master/listenset.h"
#include "master/slot.h"
#include "worker/counters.h"

struct generation;

/* What the exited workers of a service did, by service name: the totals
 * outlive generations (a reload keeps them), the live rows add to them. */
/* Why an elastic pool grew or shrank (autoscale.c), and who else changed it. */
enum scale_reason {
	SCALE_QUEUE,		/* clients waited in an accept queue */
	SCALE_SATURATED,	/* every worker at max-connections */
	SCALE_IDLE,		/* a worker served nothing for scale-down-after */
	SCALE_ASKED,		/* "scale SERVICE N" */
	SCALE_REASONS
};

struct service_totals {
	char *name;
	uint64_t v[COUNTERS];
	uint64_t restarts_exit, restarts_signal;	/* ended without being told to */
	uint64_t hangs;					/* hang-timeout */
	uint64_t recycles[RETIRE_REASONS];		/* replaced, replacement first */
	uint64_t scale_events[2][SCALE_REASONS];	/* [0] up, [1] down */
};

struct master {
	const struct master_opts *opts;
	struct listen_set listeners;
	struct generation *current;	/* serving */
	struct generation *pending;	/* starting up for a reload */
	struct generation *draining;	/* told to stop, finishing connections */
	unsigned last_generation;
	int epfd, sigfd;
	struct ev_source sig_src;
	int pidfile_fd;
	char *pidfile;
	pid_t pid;
	uint64_t now;
	bool ready_announced;
	bool reload_queued;
	uint64_t reload_started;
	unsigned reload_seq;		/* reloads begun so far */
	unsigned op_seq;		/* scales and recycles asked so far (pool.c) */
	char last_reload[CONF_ERR_MAX + 64];	/* for STATUS=: how the last reload went */
	char upgraded_from[64];		/* the version an upgrade came from, until its reload ends */
	bool last_reload_ok;
	uint64_t reloads_ok, reloads_failed;
	uint64_t last_reload_ms;	/* how long it took */
	time_t last_reload_wall;	/* when it ended */
	uint64_t started_ms;
	time_t started_wall;
	struct service_totals *totals;
	size_t ntotals;
	bool stopping, fast_stop;
	uint64_t watchdog_due;
	int exit_status;
};

/* master.c */
void master_status_text(const struct master *m, char *buf, size_t len);
/* READY=1 once every slot of the first generation is ready or given up;
 * after that, STATUS= whenever something changed. */
void master_announce_status(struct master *m);
void master_apply_log_level(const struct master *m);
/* Moves g to the draining list and tells its workers to finish up; the
 * listeners must be marked (master_mark_listeners) as they will be kept. */
void master_drain(struct master *m, struct generation *g);
/* Marks the listeners the serving and the starting generation use. */
void master_mark_listeners(struct master *m);
/* Closes the listeners left unmarked; the draining generations let go of them first. */
void master_sweep_listeners(struct master *m);
/* Begins a stop (graceful, or fast: connections closed now); a second one
 * turns a graceful stop into a fast one. */
void master_stop(struct master *m, const char *why, bool fast);
/* The totals of the service called name (made when first asked; NULL
 * without memory). */
struct service_totals *master_totals(struct master *m, const char *name);
/* Every live generation in turn, the serving one first, then the one
 * starting, then the draining ones: the first for g NULL, NULL after the last. */
const struct generation *master_generation_next(const struct master *m,
						const struct generation *g);
/* A service's counts: what its exited workers left in its totals, and what
 * its live ones (every generation) have counted. */
void master_service_counts(struct master *m, const char *name, uint64_t v[COUNTERS]);
/* The slot whose live worker has pid, in any generation; NULL. */
struct slot *master_find_slot(struct master *m, pid_t pid);
/* A starting worker of s said it is ready (its channel, or READY=1 from an app worker). */
void master_worker_ready(struct master *m, struct slot *s);

/* reload.c */
/* SIGHUP: begins a reload now, or queues it (during a reload, before READY=1). */
void reload_request(struct master *m);
/* Reads the file and starts the new generation; a failure is reported, the old one serves on. */
void reload_begin(struct master *m);
/* Every new worker is ready: the new generation serves, the old one drains. */
void reload_commit(struct master *m);
/* The new generation could not start: it goes, the old one stays. */
void reload_abort(struct master *m, const char *why);
/* Options a reload cannot apply (pidfile), or that need root: said once. */
void master_warn_restart_only(const struct master *m, const struct config *conf);

#endif
