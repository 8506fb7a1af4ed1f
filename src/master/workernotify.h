/* SPDX-License-Identifier: ISC */
/* workernotify.h - the master as an sd_notify server: the NOTIFY_SOCKET its app workers send to. */
#ifndef PREFORKD_WORKERNOTIFY_H
#define PREFORKD_WORKERNOTIFY_H

#include <stdint.h>

struct master;

/* NOTIFY_SOCKET for an app worker ("@" and an abstract name the kernel
 * chose), the socket opened and added to epfd the first time; NULL
 * (logged) when it cannot be had. */
const char *workernotify_address(int epfd);
/* EV_WORKER_NOTIFY: reads a bounded number of notifications (level-
 * triggered epoll calls again) and applies each to the app worker that
 * sent it, found by the sender's pid the kernel vouches for. */
void workernotify_read(struct master *m);
/* The report of ignored notifications, at most every 10 s; when next due (0: none). */
void workernotify_report(uint64_t now);
uint64_t workernotify_next_deadline(void);
/* For an upgrade's handover: the socket (-1: none), its address and the
 * directory made for it ("" when abstract). */
int workernotify_handover(const char **address, const char **dir);
/* The next image takes them on: 0, or -1 (logged). */
int workernotify_adopt(int fd, const char *address, const char *dir, int epfd);
void workernotify_close(void);

#endif
