/* SPDX-License-Identifier: ISC */
/* control.h - the control socket: a line protocol answered in JSON, served from the master's loop without ever blocking it. */
#ifndef PREFORKD_CONTROL_H
#define PREFORKD_CONTROL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct master;
struct ev_source;

/* Creates the control socket the config names (none for ""), added to the
 * master's epoll set: 0, or -1 (logged) when it cannot be had. */
int control_open(struct master *m);
/* The path of the control socket in use, "" for none. */
const char *control_path(void);
/* Removes the socket file we made and closes everything (at exit). */
void control_close(void);
/* EV_CONTROL: a client connects. */
void control_accept(struct master *m);
/* EV_CONTROL_CLIENT: one can be read or written. */
void control_client_ready(struct master *m, struct ev_source *src, uint32_t events);
/* Sends the replies of reloads that ended, drops the clients that
 * stalled; when that is due next (0: never). */
void control_tend(struct master *m);
uint64_t control_next_deadline(void);
/* A reload ended: the clients that asked for it get its result. */
void control_reload_finished(struct master *m, bool ok, const char *result);
struct pool_result;
/* A scale or a recycle ended: the clients waiting for operation op get r. */
void control_pool_finished(struct master *m, unsigned op, const struct pool_result *r);

/* An upgrade ended here: refused, its check failed, or its execve did. */
void control_upgrade_finished(struct master *m, bool ok, const char *result);
/* For the handover: the clients waiting for the upgrade, fds[i] and
 * pids[i] for the first max; how many there are. */
size_t control_upgrade_clients(int *fds, pid_t *pids, size_t max);
struct listener;
/* The control socket, for the handover; NULL: none. */
const struct listener *control_listener(void);
/* The next image takes them on: the socket (control_open then opens
 * nothing), and a client that waits for the upgrade's result. 0, or -1. */
int control_adopt(struct master *m, const struct listener *l);
int control_adopt_client(struct master *m, int fd, pid_t pid);

#endif
