/* SPDX-License-Identifier: ISC */
/* activation.c - adopts the sockets of systemd socket activation and pairs them with the config.
 *
 * Addresses are matched loosely on purpose: a bare ListenStream=8080 arrives
 * as [::]:8080 and must serve a service configured with "*:8080" or
 * "0.0.0.0:8080". Exact matches are paired first, so a loose match never
 * takes the address another descriptor matches exactly. Descriptors our
 * own fd store hands back (fdstore.c) are paired by the address their name
 * says, first; one the config no longer has is closed and removed from
 * the store, which is no error. */
#include "config.h"

#include "master/activation.h"

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#ifdef HAVE_SYSTEMD
#include <systemd/sd-daemon.h>
#endif

#include "conf/conf.h"
#include "common/fdutil.h"
#include "common/log.h"
#include "master/fdstore.h"
#include "master/notify.h"

#define UNPAIRED SIZE_MAX

int activation_match_score(const struct address *want, const struct address *have)
{
	bool want_ip = want->family != AF_UNIX, have_ip = have->family != AF_UNIX;

	if (want->socktype != have->socktype || want_ip != have_ip)
		return 0;
	if (!want_ip)
		return strcmp(want->text, have->text) == 0 ? 2 : 0;
	if (address_port(want) != address_port(have))
		return 0;
	if (address_equal(want, have) || (want->wildcard && have->family == AF_INET6 &&
					  address_is_any(have)))
		return 2;
	return address_is_any(want) || address_is_any(have) ? 1 : 0;
}

static bool listen_taken(const struct activation *act, size_t svc, size_t idx)
{
	for (size_t i = 0; i < act->n; i++)
		if (act->fds[i].service == svc && act->fds[i].listen == idx)
			return true;
	return false;
}

/* Pairs a with the configured address it matches at exactly score, if that
 * is unambiguous. Returns -1 (logged) when two addresses match equally. */
static int pair_fd(struct activation *act, struct activated_fd *a, const struct config *conf,
		   int score)
{
	const struct service *named = conf_find_service(conf, a->name);
	size_t found_svc = UNPAIRED, found_idx = 0;

	for (size_t s = 0; s < conf->nservices; s++) {
		const struct service *svc = &conf->services[s];

		if (named && svc != named)
			continue;
		for (size_t j = 0; j < svc->nlisten; j++) {
			if (listen_taken(act, s, j) ||
			    activation_match_score(&svc->listen[j], &a->addr) != score)
				continue;
			if (found_svc != UNPAIRED) {
				log_error("socket activation: fd %d (%s, name \"%s\") matches both %s "
					  "(service %s) and %s (service %s); give the socket "
					  "FileDescriptorName= of one service", a->fd, a->addr.text,
					  a->name, conf->services[found_svc].listen[found_idx].text,
					  conf->services[found_svc].name, svc->listen[j].text, svc->name);
				return -1;
			}
			found_svc = s;
			found_idx = j;
		}
	}
	a->service = found_svc;
	a->listen = found_idx;
	return 0;
}

/* A stored descriptor serves the configured address its name says, if
 * the socket is of that kind. */
static void pair_stored(struct activation *act, struct activated_fd *a, const struct config *conf)
{
	char text[256];

	fdstore_decode(a->name, text, sizeof(text));
	for (size_t s = 0; s < conf->nservices; s++)
		for (size_t j = 0; j < conf->services[s].nlisten; j++) {
			const struct address *want = &conf->services[s].listen[j];

			if (!listen_taken(act, s, j) && strcmp(want->text, text) == 0 &&
			    activation_match_score(want, &a->addr) > 0) {
				a->service = s;
				a->listen = j;
				return;
			}
		}
}

static int pair_all(struct activation *act, const struct config *conf)
{
	for (size_t i = 0; i < act->n; i++)
		if (act->fds[i].stored)
			pair_stored(act, &act->fds[i], conf);
	for (int score = 2; score >= 1; score--)
		for (size_t i = 0; i < act->n; i++)
			if (act->fds[i].service == UNPAIRED && !act->fds[i].stored &&
			    pair_fd(act, &act->fds[i], conf, score) < 0)
				return -1;
	for (size_t i = 0; i < act->n; i++) {
		struct activated_fd *a = &act->fds[i];
		const struct service *named = conf_find_service(conf, a->name);

		if (a->stored && a->service == UNPAIRED) {
			log_notice("fd store: %s (fd %d, %s) is no longer in the config: closed and "
				   "removed from the store", a->name, a->fd, a->addr.text);
			notify_fdstore_remove(a->name);
			close(a->fd);
			a->taken = true;
			continue;
		}
		if (a->service != UNPAIRED && a->stored) {
			log_info("fd store: fd %d (%s) serves %s of service %s", a->fd, a->addr.text,
				 conf->services[a->service].listen[a->listen].text,
				 conf->services[a->service].name);
			continue;
		}
		if (a->service != UNPAIRED) {
			log_info("socket activation: fd %d (%s) serves %s of service %s", a->fd,
				 a->addr.text, conf->services[a->service].listen[a->listen].text,
				 conf->services[a->service].name);
			continue;
		}
		log_error("socket activation: fd %d (%s, name \"%s\") matches no listen address of %s%s; "
			  "add it to the config or remove it from the socket unit",
			  a->fd, a->addr.text, a->name, named ? "service " : "the config",
			  named ? named->name : "");
		return -1;
	}
	return 0;
}

#ifdef HAVE_SYSTEMD
static int take_fds(struct activation *act)
{
	char **names = NULL;
	int n = sd_listen_fds_with_names(1, &names);

	if (n < 0) {
		log_errno(LOG_ERR, -n, "sd_listen_fds_with_names");
		return -1;
	}
	act->fds = n ? calloc((size_t)n, sizeof(*act->fds)) : NULL;
	if (n && !act->fds) {
		log_error("out of memory for %d activated sockets", n);
		for (int i = 0; i < n; i++)
			close(SD_LISTEN_FDS_START + i);
		n = 0;
	}
	for (int i = 0; i < n; i++) {
		struct activated_fd *a = &act->fds[act->n++];

		a->fd = SD_LISTEN_FDS_START + i;
		a->service = UNPAIRED;
		snprintf(a->name, sizeof(a->name), "%s", names && names[i] ? names[i] : "unknown");
		a->stored = fdstore_decode(a->name, (char[2]){ 0 }, 2);
	}
	for (int i = 0; names && names[i]; i++)
		free(names[i]);
	free(names);
	return act->fds || n == 0 ? 0 : -1;
}
#else
static int take_fds(struct activation *act)
{
	const char *pid = getenv("LISTEN_PID");

	(void)act;
	if (getenv("LISTEN_FDS") && pid && strtol(pid, NULL, 10) == (long)getpid()) {
		log_error("socket activation: LISTEN_FDS is set but preforkd was built without "
			  "libsystemd; rebuild it with libsystemd or remove the socket unit");
		return -1;
	}
	return 0;
}
#endif

int activation_collect(struct activation *act, const struct config *conf)
{
	*act = (struct activation){ 0 };
	if (take_fds(act) < 0)
		return -1;
	for (size_t i = 0; i < act->n; i++) {
		struct activated_fd *a = &act->fds[i];

		/* Some activators pass blocking descriptors that survive exec. */
		if (fd_set_nonblock_cloexec(a->fd) < 0) {
			log_errno(LOG_ERR, errno, "socket activation: fcntl fd %d", a->fd);
			return -1;
		}
		if (address_of_socket(a->fd, &a->addr) < 0) {
			log_errno(LOG_ERR, errno, "socket activation: fd %d is not a usable socket",
				  a->fd);
			return -1;
		}
	}
	return act->n ? pair_all(act, conf) : 0;
}

struct activated_fd *activation_find(struct activation *act, size_t svc, size_t idx)
{
	for (size_t i = 0; i < act->n; i++)
		if (act->fds[i].service == svc && act->fds[i].listen == idx && !act->fds[i].taken)
			return &act->fds[i];
	return NULL;
}

void activation_free(struct activation *act)
{
	for (size_t i = 0; i < act->n; i++)
		if (!act->fds[i].taken)
			close(act->fds[i].fd);
	free(act->fds);
	*act = (struct activation){ 0 };
}
