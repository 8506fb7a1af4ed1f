/* SPDX-License-Identifier: ISC */
/* conf_build.c - the snapshot (struct config) made from a parsed and checked file, and its free.
 *
 * Each option goes to the field the option table names: a scalar by the
 * kind of its field, anything else by the build function the table names.
 * Everything was checked as it was parsed; only memory can fail here. */
#include "config.h"

#include "conf/conf_private.h"

#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include "common/array.h"
#include "common/log.h"
#include "handlers/handler.h"
#include "worker/access.h"

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

/* The value of o in sec as its field's kind holds it. */
static int build_field(cfg_t *sec, const struct conf_option *o, void *field)
{
	long v = o->type == CONF_ENUM ? conf_option_name_index(o, cfg_getstr(sec, o->name)) :
		 conf_option_is_number(o) ? cfg_getint(sec, o->name) : 0;
	const char *s;

	switch (o->field.kind) {
	case CONF_FIELD_UNSIGNED:
		*(unsigned *)field = (unsigned)v;
		return 0;
	case CONF_FIELD_INT:
		*(int *)field = (int)v;
		return 0;
	case CONF_FIELD_BOOL:
		*(bool *)field = v > 0;
		return 0;
	case CONF_FIELD_STRING:
		s = cfg_getstr(sec, o->name);
		*(char **)field = xstrdup_or_null(s);
		return s && !*(char **)field ? -1 : 0;
	case CONF_FIELD_STRINGS:
		*(char ***)field = copy_list(sec, o->name);
		return *(char ***)field ? 0 : -1;
	default:
		return -1;	/* the table names a build function for it */
	}
}

/* The options of scope into base (a struct service or struct config); an
 * option of another handler than the service's is left zero. */
static int build_options(cfg_t *sec, enum conf_scope scope, void *base, const char *handler)
{
	for (size_t i = 0; i < CONF_NOPTIONS; i++) {
		const struct conf_option *o = &conf_options[i];
		void *field = (char *)base + o->field.offset;
		size_t *count = (size_t *)(void *)((char *)base + o->field.count);
		int rc;

		if (o->scope != scope || o->field.kind == CONF_FIELD_NONE ||
		    (handler && !conf_option_applies(o, handler)))
			continue;
		if (o->build)
			rc = o->build(sec, o, field, o->field.kind == CONF_FIELD_ARRAY ? count : NULL);
		else
			rc = build_field(sec, o, field);
		if (rc < 0)
			return -1;
	}
	return 0;
}

static void free_options(enum conf_scope scope, void *base)
{
	for (size_t i = 0; i < CONF_NOPTIONS; i++) {
		const struct conf_option *o = &conf_options[i];
		void *field = (char *)base + o->field.offset, *array;

		if (o->scope != scope)
			continue;
		switch (o->field.kind) {
		case CONF_FIELD_STRING:
			free(*(char **)field);
			break;
		case CONF_FIELD_STRINGS:
			free_list(*(char ***)field);
			break;
		case CONF_FIELD_ARRAY:
			memcpy(&array, field, sizeof(array));	/* a struct cidr *, uid_t *, ... */
			free(array);
			break;
		default:
			break;
		}
	}
}

int conf_build_log_level(cfg_t *sec, const struct conf_option *o, void *field, size_t *count)
{
	(void)count;
	*(int *)field = log_level_from_name(cfg_getstr(sec, o->name));
	return 0;
}

int conf_build_handler(cfg_t *sec, const struct conf_option *o, void *field, size_t *count)
{
	(void)count;
	*(const struct handler **)field = handler_find(cfg_getstr(sec, o->name));
	return 0;
}

/* stop-signal: the number of the signal named. */
int conf_build_signal(cfg_t *sec, const struct conf_option *o, void *field, size_t *count)
{
	static const int numbers[] = { SIGTERM, SIGQUIT, SIGINT, SIGHUP, SIGUSR1, SIGUSR2, SIGWINCH };
	int i = conf_option_name_index(o, cfg_getstr(sec, o->name));

	(void)count;
	*(int *)field = i >= 0 && (size_t)i < ARRAY_SIZE(numbers) ? numbers[i] : SIGTERM;
	return 0;
}

/* socket-owner, socket-group: (uid_t)-1 and (gid_t)-1 leave the file as created. */
int conf_build_uid(cfg_t *sec, const struct conf_option *o, void *field, size_t *count)
{
	const char *name = cfg_getstr(sec, o->name);

	(void)count;
	*(uid_t *)field = (uid_t)-1;
	if (name)
		conf_lookup_user(name, field, NULL);
	return 0;
}

int conf_build_gid(cfg_t *sec, const struct conf_option *o, void *field, size_t *count)
{
	const char *name = cfg_getstr(sec, o->name);

	(void)count;
	*(gid_t *)field = (gid_t)-1;
	if (name)
		conf_lookup_group(name, field);
	return 0;
}

/* A zeroed array for the values of list o, with room for one more: an
 * empty list has an array too. */
static void *array_of(cfg_t *sec, const struct conf_option *o, size_t *count, size_t size)
{
	*count = cfg_size(sec, o->name);
	return calloc(*count + 1, size);
}

int conf_build_addresses(cfg_t *sec, const struct conf_option *o, void *field, size_t *count)
{
	char why[CONF_ERR_MAX];
	struct address *v = array_of(sec, o, count, sizeof(*v));

	*(struct address **)field = v;
	for (size_t i = 0; v && i < *count; i++)
		if (address_parse(cfg_getnstr(sec, o->name, (unsigned)i), &v[i], why, sizeof(why)) < 0)
			return -1;	/* parsed once already: cannot happen */
	return v ? 0 : -1;
}

int conf_build_ranges(cfg_t *sec, const struct conf_option *o, void *field, size_t *count)
{
	char why[CONF_ERR_MAX];
	struct cidr *v = array_of(sec, o, count, sizeof(*v));

	*(struct cidr **)field = v;
	for (size_t i = 0; v && i < *count; i++)
		access_parse_cidr(cfg_getnstr(sec, o->name, (unsigned)i), &v[i], why, sizeof(why));
	return v ? 0 : -1;
}

int conf_build_uids(cfg_t *sec, const struct conf_option *o, void *field, size_t *count)
{
	uid_t *v = array_of(sec, o, count, sizeof(*v));

	*(uid_t **)field = v;
	for (size_t i = 0; v && i < *count; i++)
		conf_lookup_user(cfg_getnstr(sec, o->name, (unsigned)i), &v[i], NULL);
	return v ? 0 : -1;
}

int conf_build_gids(cfg_t *sec, const struct conf_option *o, void *field, size_t *count)
{
	gid_t *v = array_of(sec, o, count, sizeof(*v));

	*(gid_t **)field = v;
	for (size_t i = 0; v && i < *count; i++)
		conf_lookup_group(cfg_getnstr(sec, o->name, (unsigned)i), &v[i]);
	return v ? 0 : -1;
}

/* A service's user replaces the global user and its group; a service's
 * group alone replaces the global group only. */
static int build_identity(cfg_t *sec, const struct identity *inherit, struct identity *id)
{
	const char *user = cfg_getstr(sec, CONF_NAME(USER));
	const char *group = cfg_getstr(sec, CONF_NAME(GROUP));

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
	const struct seen_section *rec;

	svc->name = strdup(cfg_title(sec));
	if (!svc->name || build_options(sec, CONF_SERVICE, svc, cfg_getstr(sec, CONF_NAME(HANDLER))) < 0)
		return -1;
	rec = conf_seen_lookup(sec);
	/* "workers" is a fixed pool; min-workers, or max-workers alone, an elastic one. */
	svc->elastic = svc->min_workers ||
		       (rec && rec->lines[CONF_OPT_MAX_WORKERS] && !rec->lines[CONF_OPT_WORKERS]);
	if (svc->elastic && !svc->min_workers)
		svc->min_workers = 1;
	if (svc->elastic)
		svc->workers = svc->min_workers;
	if (!svc->max_workers)
		svc->max_workers = svc->workers <= 256 ? 4 * svc->workers : 1024;
	return build_identity(sec, &conf->run_as, &svc->run_as);
}

struct config *conf_build(cfg_t *cfg, const char *path)
{
	struct config *conf = calloc(1, sizeof(*conf));
	size_t n = cfg_size(cfg, "service");

	if (!conf)
		return NULL;
	conf->path = strdup(path);
	if (!conf->path || build_options(cfg, CONF_ROOT, conf, NULL) < 0 ||
	    build_identity(cfg, NULL, &conf->run_as) < 0)
		goto fail;
	conf->services = calloc(n, sizeof(*conf->services));
	if (!conf->services)
		goto fail;
	conf->nservices = n;
	for (size_t i = 0; i < n; i++)
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
		free_options(CONF_SERVICE, &conf->services[i]);
		free_identity(&conf->services[i].run_as);
	}
	free(conf->services);
	free(conf->path);
	free(conf->text);
	free_options(CONF_ROOT, conf);
	free_identity(&conf->run_as);
	free(conf);
}
