/* SPDX-License-Identifier: ISC */
/* appworker.h - handler "app": the service's own program as each worker, started with systemd's socket-activation protocol. */
#ifndef PREFORKD_APPWORKER_H
#define PREFORKD_APPWORKER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct slot;

/* Starts the program of app slot s (its own process group, killed when we
 * die) with the service's listeners at 3, 4, ... and LISTEN_FDS; its output
 * is read into the log through epfd. The slot learns it started
 * (SLOT_SPAWNED), or when to try again (SLOT_SPAWN_FAILED, -1, logged).
 * notify_socket: the NOTIFY_SOCKET value to hand on. */
int appworker_spawn(struct slot *s, int epfd, const char *notify_socket, uint64_t now);
/* An upgrade's handover: the app worker of s runs already, its output
 * arrives on out_fd (the read end the last image had), read through epfd. */
int appworker_adopt(struct slot *s, int epfd, int out_fd);
/* The read end of its output, for the handover; -1. */
int appworker_output_fd(const struct slot *s);
/* sig to the process group of a live app worker. */
void appworker_signal(const struct slot *s, int sig);
/* stop-signal to its process group, SIGKILL stop-timeout later (appworker_tend). */
void appworker_stop(struct slot *s, uint64_t now);
/* Its main process was reaped: the rest of its output is logged, and
 * whatever it left running in its process group is killed. */
void appworker_exited(struct slot *s, int epfd);
/* EV_APP_OUTPUT: s's stdout and stderr have something to read. */
void appworker_output(struct slot *s, int epfd, uint64_t now);
/* What appworker_tend() leaves to the caller. */
enum appworker_due {
	APPWORKER_NOTHING,
	APPWORKER_READY,	/* ready = "started": it runs, so it is ready */
	APPWORKER_START_FAILED,	/* no READY=1 within start-timeout: told to stop, logged */
	APPWORKER_HUNG,		/* its watchdog ran out (or it triggered it): appworker_abort() */
};

/* The start and stop deadlines, and the watchdog, of a live app worker:
 * what is due now is done (logged). A start that took too long fails a
 * reload, or counts in the slot's back-off when it exits. */
enum appworker_due appworker_tend(struct slot *s, uint64_t now);
/* A hung worker: logged, SIGABRT (a core can be taken), SIGKILL to its
 * group stop-timeout later. With replace, it leaves its slot at once (the
 * caller makes the slot respawn, SLOT_REPLACED) and is reaped and killed
 * from a list of its own; else it keeps the slot until it exits. */
void appworker_abort(struct slot *s, int epfd, uint64_t now, bool replace);
/* pid was a hung worker set aside: forgotten, its group killed, its
 * "service#index[pid]" in label; false when it is not one. */
bool appworker_reap_condemned(pid_t pid, char *label, size_t len);
/* SIGKILL to those whose time is up, or to all when stopping. */
void appworker_tend_condemned(uint64_t now, bool stopping);
uint64_t appworker_condemned_deadline(void);
bool appworker_condemned_alive(void);
/* When appworker_tend() has something to do for s next (0: nothing). */
uint64_t appworker_next_deadline(const struct slot *s);
/* The notifications of s (sd_notify): READY=1 is the caller's; these are not. */
void appworker_watchdog_kick(struct slot *s, uint64_t now);
void appworker_watchdog_trigger(struct slot *s, uint64_t now);
void appworker_extend_timeout(struct slot *s, uint64_t usec, uint64_t now);
/* After READY=1: the watchdog starts, if the service has one. */
void appworker_ready(struct slot *s, uint64_t now);

#endif
