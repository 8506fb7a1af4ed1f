/* SPDX-License-Identifier: ISC */
/* generation.h - one config's set of worker slots: forked, signalled and counted together. */
#ifndef PREFORKD_GENERATION_H
#define PREFORKD_GENERATION_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "master/listenset.h"
#include "master/slot.h"

struct config;
struct limits;
struct counters;
struct counter_row;

/* A service's workers in one generation: how many it wants, and the rows
 * of shared memory its workers count in. A row is a process's, not a
 * slot's: a worker and its replacement run side by side, each in its own. */
struct pool {
	unsigned target;	/* workers wanted: 'workers', or what "scale" said */
	unsigned ceiling;	/* 'max-workers' */
	unsigned first_row;	/* its rows in the counters: first_row .. + nrows */
	unsigned nrows;		/* and in its limits: 0 .. nrows */
	unsigned char *row_taken;
	bool short_of_rows;	/* said once, until a row frees up */
	/* What the control socket asked for, until it ends (pool.c). */
	unsigned scale_op, recycle_op;	/* the operation a client waits for; 0: none */
	unsigned scale_from;		/* the target before */
	uint64_t scale_started, scale_deadline, recycle_started;
	unsigned recycled;		/* replaced so far in this recycle */
	/* Recycles that are not asked for wait after a failed replacement. */
	uint64_t recycle_retry_at;
	unsigned recycle_backoff_ms;
	/* An elastic pool (autoscale.c). */
	bool pinned;			/* "scale" set it: no scaling until the next reload */
	uint64_t busy_since, quiet_since;	/* 0: not busy, not quiet */
	uint64_t last_up, last_down;
	int last_change;		/* enum scale_reason of the last change; -1 */
};

struct generation {
	unsigned id;
	enum generation_role role;
	struct config *conf;
	struct service_listeners *svc_ls;	/* per service */
	struct limits **limits;			/* per service; NULL where it sets none */
	struct counters *counters;		/* the rows of every pool; NULL without memory */
	struct pool *pools;			/* per service */
	struct slot **slots;	/* each its own allocation: epoll data points at them */
	size_t nslots, slots_cap;
	uint64_t deadline;	/* to be ready (reload) or to finish (drain); 0: none */
	bool quit_sent;		/* drain overran: told to close everything, kill next */
	struct generation *next;	/* in the master's list of draining generations */
};

/* Takes ownership of conf; every slot starts WAITING and due now. */
struct generation *generation_new(struct config *conf, unsigned id, enum generation_role role);
/* The same without slots (an upgrade's handover adds the ones it had). */
struct generation *generation_new_empty(struct config *conf, unsigned id,
					enum generation_role role);
/* Rows of shared counters its pools have in all. */
unsigned generation_rows(const struct generation *g);
/* s holds row of its pool (handed over with its running worker): 0, or -1
 * when the row is not there or taken. */
int generation_take_row(struct slot *s, unsigned row);
/* A new slot of service, WAITING and due now; NULL without memory. */
struct slot *generation_add_slot(struct generation *g, size_t service, unsigned index);
/* Frees the slots that are done and that nothing links to any more. Only
 * between batches of events: an event may point at one. */
void generation_remove_done(struct generation *g);
/* Frees the slots, listener references and conf (the listeners stay open). */
void generation_free(struct generation *g);

/* Forks the worker of a waiting slot, its channel added to epfd; the slot
 * learns it started (SLOT_SPAWNED), or when to try again (SLOT_SPAWN_FAILED,
 * -1, logged). */
int generation_spawn(struct slot *s, int epfd, pid_t master_pid, uint64_t now);
/* Takes the channel out of epfd and closes it. */
void generation_close_channel(struct slot *s, int epfd);
/* The worker of s has exited: what it held in shared memory is released. */
void generation_slot_exited(struct slot *s);
/* Resident memory of the slot's live worker (its main process), from
 * /proc; 0 when it has none or it cannot be read. */
unsigned long long generation_rss(const struct slot *s);
/* The counters of the slot's worker: NULL when there are none. */
struct counter_row *generation_counters(const struct slot *s);
/* Connections accepted and datagrams received by the slot's worker. */
uint64_t generation_served(const struct slot *s);
struct slot *generation_find_pid(struct generation *g, pid_t pid);
unsigned generation_count(const struct generation *g, enum slot_state state);
/* The same among the slots of one service. */
unsigned generation_count_service(const struct generation *g, size_t service,
				  enum slot_state state);
bool generation_alive(const struct generation *g);

/* One worker, gracefully (as generation_stop does it): it keeps the
 * datagram sockets of its listeners for the replies of its jobs. */
void generation_stop_slot(struct slot *s);
/* Graceful: SIGTERM to every live worker (finish in-flight connections, then
 * exit); slots without a process are done. Each worker is told first which
 * of its listeners are still marked in the master's listen set (the caller
 * marks): it keeps those datagram sockets for the replies of its jobs, and
 * lets go of everything else at once. Sent again to a stopping worker, it
 * lets go of what is no longer marked. */
void generation_stop(struct generation *g);
/* Drops the generation's references to listeners that are not marked,
 * before the sweep closes them; true when there were any (its workers
 * should then be told again with generation_stop). */
bool generation_forget_unmarked(struct generation *g);
/* Fast: every live worker closes its connections and exits now (it was
 * sent SIGTERM already, or dies of the quit all the same). */
void generation_quit(struct generation *g);
void generation_kill(struct generation *g, const char *why);

#endif
