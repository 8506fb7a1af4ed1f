/* SPDX-License-Identifier: ISC */
/* reload.c - a reload as a transaction: read the file, start a new generation beside the old, switch or give up.
 *
 * A reload builds a whole new generation of workers beside the serving one
 * and switches over only when every new worker says it is ready; until
 * then, and whenever the reload fails, the old generation keeps serving.
 * Listeners that stay in the config are shared by both generations, so the
 * switch refuses no connection. Reloads never overlap. */
#include "config.h"

#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common/clock.h"
#include "common/log.h"
#include "common/proctitle.h"
#include "common/version.h"
#include "conf/conf.h"
#include "master/control.h"
#include "master/fdstore.h"
#include "master/generation.h"
#include "master/listenset.h"
#include "master/master.h"
#include "master/master_private.h"
#include "master/notify.h"
#include "master/pool.h"

#define RELOAD_READY_TIMEOUT_MS 30000	/* for a new generation to be ready */

static void reload_finish(struct master *m, const char *result, bool ok)
{
	char status[CONF_ERR_MAX + 160], upgraded[CONF_ERR_MAX + 256];

	/* The reload an upgrade's new image begins to replace the workers. */
	if (m->upgraded_from[0]) {
		snprintf(upgraded, sizeof(upgraded), "upgraded to preforkd %s from %s; %s",
			 preforkd_version, m->upgraded_from, result);
		m->upgraded_from[0] = '\0';
		result = upgraded;
	}
	snprintf(m->last_reload, sizeof(m->last_reload), "%.*s", (int)sizeof(m->last_reload) - 1, result);
	m->last_reload_ok = ok;
	if (ok)
		m->reloads_ok++;
	else
		m->reloads_failed++;
	m->last_reload_ms = m->now - m->reload_started;
	m->last_reload_wall = time(NULL);
	master_status_text(m, status, sizeof(status));
	if (ok)
		log_notice("%s", result);
	else
		log_error("%s; still serving the previous configuration", result);
	notify_ready(status);
	control_reload_finished(m, ok, result);
}

/* The new generation could not start: it goes, the old one stays. */
void reload_abort(struct master *m, const char *why)
{
	char result[CONF_ERR_MAX + 64];
	struct generation *g = m->pending;

	m->pending = NULL;
	master_mark_listeners(m);
	master_drain(m, g);
	master_sweep_listeners(m);
	snprintf(result, sizeof(result), "reload failed: %s", why);
	reload_finish(m, result, false);
}

void reload_commit(struct master *m)
{
	struct generation *old = m->current;
	char result[96];

	m->current = m->pending;
	m->current->role = GEN_SERVING;
	m->pending = NULL;
	master_mark_listeners(m);
	master_drain(m, old);
	master_sweep_listeners(m);
	master_apply_log_level(m);
	proctitle_set("preforkd: master (generation %u)", m->current->id);
	snprintf(result, sizeof(result), "reload ok: generation %u serving (%llu ms)",
		 m->current->id, (unsigned long long)(m->now - m->reload_started));
	reload_finish(m, result, true);
}

void master_warn_restart_only(const struct master *m, const struct config *conf)
{
	const char *now = m->pidfile ? m->pidfile : "(none)";
	const char *want = conf->pidfile ? conf->pidfile : "(none)";

	if (strcmp(now, want) != 0)
		log_warn("reload: pidfile changes take effect on restart only; still %s", now);
	if (m->ready_announced &&
	    strcmp(control_path(), conf->control_socket ? conf->control_socket : "") != 0)
		log_warn("reload: control-socket changes take effect on restart only; still %s",
			 control_path()[0] ? control_path() : "(none)");
	for (size_t i = 0; i < conf->nservices && geteuid() != 0; i++)
		if (conf->services[i].run_as.user || conf->services[i].run_as.group) {
			log_warn("not started as root: 'user'/'group' ignored, workers run as "
				 "uid %u", (unsigned)geteuid());
			break;
		}
}

void reload_begin(struct master *m)
{
	char err[CONF_ERR_MAX], why[CONF_ERR_MAX + 32];
	struct config *conf;
	struct generation *g;

	m->reload_queued = false;
	m->reload_started = m->now;
	m->reload_seq++;
	log_notice("reloading %s", m->opts->conf_path);
	notify_reloading("reloading the configuration");
	conf = conf_load(m->opts->conf_path, err, sizeof(err));
	if (!conf) {
		snprintf(why, sizeof(why), "reload failed: %s", err);
		reload_finish(m, why, false);
		return;
	}
	master_warn_restart_only(m, conf);
	g = generation_new(conf, m->last_generation + 1, GEN_PENDING);
	if (!g) {
		conf_free(conf);
		reload_finish(m, "reload failed: out of memory", false);
		return;
	}
	if (pool_inherit(m->current, g) < 0) {
		generation_free(g);
		reload_finish(m, "reload failed: out of memory", false);
		return;
	}
	m->last_generation = g->id;
	m->pending = g;
	if (listen_set_acquire(&m->listeners, conf, NULL, g->svc_ls) < 0) {
		m->pending = NULL;
		generation_free(g);
		master_mark_listeners(m);
		master_sweep_listeners(m);
		reload_finish(m, "reload failed: a listen address could not be had (see above)",
			      false);
		return;
	}
	fdstore_push(&m->listeners);	/* the new ones */
	for (size_t i = 0; i < g->nslots; i++) {
		if (generation_spawn(g->slots[i], m->epfd, m->pid, m->now) < 0) {
			reload_abort(m, "a new worker could not be started");
			return;
		}
	}
	/* Reading, binding and forking can take long: every deadline set from
	 * here on (the readiness one, a stop's, a drain's) counts from now. */
	m->now = clock_now_ms();
	g->deadline = m->now + RELOAD_READY_TIMEOUT_MS;
	/* An app worker's own start-timeout may be longer (tend_apps() follows
	 * it, and EXTEND_TIMEOUT_USEC=). */
	for (size_t i = 0; i < g->nslots; i++)
		if (g->slots[i]->start_deadline > g->deadline)
			g->deadline = g->slots[i]->start_deadline;
}

void reload_request(struct master *m)
{
	if (m->stopping) {
		log_notice("SIGHUP during stop: ignored");
		return;
	}
	if (m->pending) {
		/* Never two at once: the next one reads the file after this one ends. */
		log_notice("SIGHUP during a reload: queued, it runs when this one ends");
		m->reload_queued = true;
		return;
	}
	if (!m->ready_announced) {
		/* The service manager has not heard READY=1 yet; a reload's READY=1
		 * must not stand in for it. */
		log_notice("SIGHUP while starting: queued, it runs once every worker is ready");
		m->reload_queued = true;
		return;
	}
	reload_begin(m);
}

