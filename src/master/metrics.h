/* SPDX-License-Identifier: ISC */
/* metrics.h - metrics-listen: HTTP GET /metrics for Prometheus, served from the master's loop without ever blocking it. */
#ifndef PREFORKD_METRICS_H
#define PREFORKD_METRICS_H

#include <stddef.h>
#include <stdint.h>

struct master;
struct ev_source;

/* Binds every metrics-listen address of the config: 0, or -1 (logged). */
int metrics_open(struct master *m);
void metrics_close(void);
/* EV_METRICS: a scraper connects. */
void metrics_accept(struct master *m, struct ev_source *src);
/* EV_METRICS_CLIENT: one can be read or written. */
void metrics_client_ready(struct master *m, struct ev_source *src, uint32_t events);
/* Drops the clients that stalled; when that is due next (0: never). */
void metrics_tend(uint64_t now);
uint64_t metrics_next_deadline(void);

struct listener;
/* Its listeners, for an upgrade's handover: how many it put in out. */
size_t metrics_listeners(const struct listener **out, size_t max);
/* The next image takes one on (metrics_open then opens nothing): 0, or -1. */
int metrics_adopt(struct master *m, const struct listener *l);

#endif
