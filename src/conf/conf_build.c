/* SPDX-License-Identifier: ISC */
/* conf_build.c - the snapshot (struct config) made from a parsed and checked file, and its free. */
#include "config.h"

#include "conf/conf_private.h"

#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "handlers/handler.h"

static void *free_list(char **v)
{
	for (size_t i = 0; v && v[i]; i++)
		free(v[i]);
	free(v);
	return NULL;
}

static char *xstrdup_or_null(const char *s)
{
	return s ? strdup(s) : NULL;
}

/* A NULL-terminated copy of a string list option. */
static char **copy_list(cfg_t *sec, const char *name)
{
	size_t n = cfg_size(sec, name);
	char **v = calloc(n + 1, sizeof(*v));

	for (size_t i = 0; v && i < n; i++) {
		v[i] = strdup(cfg_getnstr(sec, name, (unsigned)i));
		if (!v[i])
			return free_list(v);
	}
	return v;
}

static int build_exec(cfg_t *sec, struct service *svc)
{
	if (cfg_size(sec, "exec") == 0)
		return 0;
	svc->exec_argv = copy_list(sec, "exec");
	svc->exec_env = copy_list(sec, "env");
	svc->directory = strdup(cfg_getstr(sec, "directory"));
	svc->exec_timeout_ms = (unsigned)cfg_getint(sec, "exec-timeout");
	svc->exec_kill_grace_ms = (unsigned)cfg_getint(sec, "exec-kill-grace");
	svc->exec_stderr_null = strcmp(cfg_getstr(sec, "exec-stderr"), "null") == 0;
	return svc->exec_argv && svc->exec_env && svc->directory ? 0 : -1;
}

/* Everything was checked as it was parsed; only memory can fail here. */
static int build_access(cfg_t *sec, struct service *svc)
{
	char why[CONF_ERR_MAX];
	const char *busy = cfg_getstr(sec, "busy-message");

	svc->nallow = cfg_size(sec, "allow");
	svc->ndeny = cfg_size(sec, "deny");
	svc->nallow_users = cfg_size(sec, "allow-users");
	svc->nallow_groups = cfg_size(sec, "allow-groups");
	svc->allow = calloc(svc->nallow + 1, sizeof(*svc->allow));
	svc->deny = calloc(svc->ndeny + 1, sizeof(*svc->deny));
	svc->allow_users = calloc(svc->nallow_users + 1, sizeof(*svc->allow_users));
	svc->allow_groups = calloc(svc->nallow_groups + 1, sizeof(*svc->allow_groups));
	svc->busy_message = xstrdup_or_null(busy);
	if (!svc->allow || !svc->deny || !svc->allow_users || !svc->allow_groups ||
	    (busy && !svc->busy_message))
		return -1;
	for (size_t i = 0; i < svc->nallow; i++)
		cidr_parse(cfg_getnstr(sec, "allow", (unsigned)i), &svc->allow[i], why, sizeof(why));
	for (size_t i = 0; i < svc->ndeny; i++)
		cidr_parse(cfg_getnstr(sec, "deny", (unsigned)i), &svc->deny[i], why, sizeof(why));
	for (size_t i = 0; i < svc->nallow_users; i++)
		conf_lookup_user(cfg_getnstr(sec, "allow-users", (unsigned)i), &svc->allow_users[i], NULL);
	for (size_t i = 0; i < svc->nallow_groups; i++)
		conf_lookup_group(cfg_getnstr(sec, "allow-groups", (unsigned)i), &svc->allow_groups[i]);
	svc->max_per_source = (unsigned)cfg_getint(sec, "max-per-source");
	svc->max_service_connections = (unsigned)cfg_getint(sec, "max-service-connections");
	return 0;
}

/* A service's user replaces the global user and its group; a service's
 * group alone replaces the global group only. */
static int build_identity(cfg_t *sec, const struct identity *inherit, struct identity *id)
{
	const char *user = cfg_getstr(sec, "user"), *group = cfg_getstr(sec, "group");

	*id = (struct identity){ .uid = (uid_t)-1, .gid = (gid_t)-1 };
	if (!user && inherit) {
		user = inherit->user;
		id->uid = inherit->uid;
		id->gid = inherit->gid;
		if (!group)
			group = inherit->group;
	}
	id->user = xstrdup_or_null(user);
	id->group = xstrdup_or_null(group);
	if ((user && !id->user) || (group && !id->group))
		return -1;
	if (user)
		conf_lookup_user(user, &id->uid, &id->gid);
	if (group)
		conf_lookup_group(group, &id->gid);
	return 0;
}

static void free_identity(struct identity *id)
{
	free(id->user);
	free(id->group);
}

static int build_service(cfg_t *sec, const struct config *conf, struct service *svc)
{
	char why[CONF_ERR_MAX];
	const char *owner = cfg_getstr(sec, "socket-owner");
	const char *group = cfg_getstr(sec, "socket-group");

	svc->name = strdup(cfg_title(sec));
	svc->handler = handler_find(cfg_getstr(sec, "handler"));
	svc->workers = (unsigned)cfg_getint(sec, "workers");
	svc->backlog = (int)cfg_getint(sec, "backlog");
	svc->max_connections = (unsigned)cfg_getint(sec, "max-connections");
	svc->idle_timeout_ms = (unsigned)cfg_getint(sec, "idle-timeout");
	svc->socket_mode = (int)cfg_getint(sec, "socket-mode");
	svc->socket_uid = (uid_t)-1;
	svc->socket_gid = (gid_t)-1;
	if (owner)
		conf_lookup_user(owner, &svc->socket_uid, NULL);
	if (group)
		conf_lookup_group(group, &svc->socket_gid);
	if (build_exec(sec, svc) < 0 || build_access(sec, svc) < 0 ||
	    build_identity(sec, &conf->run_as, &svc->run_as) < 0)
		return -1;
	svc->nlisten = cfg_size(sec, "listen");
	svc->listen = calloc(svc->nlisten, sizeof(*svc->listen));
	if (!svc->name || !svc->listen)
		return -1;
	for (size_t i = 0; i < svc->nlisten; i++)
		if (address_parse(cfg_getnstr(sec, "listen", (unsigned)i), &svc->listen[i],
				  why, sizeof(why)) < 0)
			return -1;	/* parsed once already: cannot happen */
	return 0;
}

struct config *conf_build(cfg_t *cfg, const char *path)
{
	struct config *conf = calloc(1, sizeof(*conf));

	if (!conf)
		return NULL;
	conf->path = strdup(path);
	conf->pidfile = xstrdup_or_null(cfg_getstr(cfg, "pidfile"));
	if (build_identity(cfg, NULL, &conf->run_as) < 0)
		goto fail;
	conf->log_level = log_level_from_name(cfg_getstr(cfg, "log-level"));
	conf->shutdown_timeout_ms = (unsigned)cfg_getint(cfg, "shutdown-timeout");
	conf->nservices = cfg_size(cfg, "service");
	conf->services = calloc(conf->nservices, sizeof(*conf->services));
	if (!conf->path || !conf->services)
		goto fail;
	for (size_t i = 0; i < conf->nservices; i++)
		if (build_service(cfg_getnsec(cfg, "service", (unsigned)i), conf,
				  &conf->services[i]) < 0)
			goto fail;
	return conf;
fail:
	conf_free(conf);
	return NULL;
}

void conf_free(struct config *conf)
{
	if (!conf)
		return;
	for (size_t i = 0; i < conf->nservices; i++) {
		free(conf->services[i].name);
		free(conf->services[i].listen);
		free_list(conf->services[i].exec_argv);
		free_list(conf->services[i].exec_env);
		free(conf->services[i].directory);
		free(conf->services[i].allow);
		free(conf->services[i].deny);
		free(conf->services[i].allow_users);
		free(conf->services[i].allow_groups);
		free(conf->services[i].busy_message);
		free_identity(&conf->services[i].run_as);
	}
	free(conf->services);
	free(conf->path);
	free_identity(&conf->run_as);
	free(conf->pidfile);
	free(conf);
}
