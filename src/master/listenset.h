/* SPDX-License-Identifier: ISC */
/* listenset.h - the master's open listeners, shared by worker generations across reloads. */
#ifndef PREFORKD_LISTENSET_H
#define PREFORKD_LISTENSET_H

#include <stdbool.h>
#include <stddef.h>

struct activation;
struct config;
struct listener;

struct listen_set {
	struct listener **ls;
	size_t n;
};

/* The listeners of one service in one generation: pointers into a listen_set. */
struct service_listeners {
	struct listener **ls;
	size_t n;
};

/* Finds, for every listen address of conf, the listener already open for it
 * (kept as is: same descriptor, nothing refused), or opens one: adopted from
 * act when it holds one, else bound. Fills out[0..conf->nservices). Returns
 * -1 (logged) when an address cannot be had; what this call opened stays in
 * the set until the next sweep. act may be NULL. */
int listen_set_acquire(struct listen_set *set, const struct config *conf, struct activation *act,
		       struct service_listeners *out);
/* Mark and sweep: closes every listener no marked generation uses, and
 * removes its unix socket file. */
void listen_set_unmark(struct listen_set *set);
void listen_set_mark(const struct service_listeners *svc_ls, size_t nservices);
void listen_set_sweep(struct listen_set *set);
/* Closes everything (stop): with remove_files, the unix socket files too. */
void listen_set_close_all(struct listen_set *set, bool remove_files);

#endif
