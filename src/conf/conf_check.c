/* SPDX-License-Identifier: ISC */
/* conf_check.c - what a config must be beyond its syntax: each service at its closing brace, then the whole file.
 *
 * A check that can point at a line runs inside a libconfuse callback, the
 * only place where the parser's line number is known; one that needs the
 * whole file (a user given after the service) takes the line from the
 * records of the parse. */
#include "config.h"

#include "conf/conf_private.h"

#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "common/nofile.h"
#include "handlers/handler.h"

int conf_lookup_user(const char *name, uid_t *uid, gid_t *gid)
{
	struct passwd *pw;
	long id;

	errno = 0;
	pw = getpwnam(name);
	if (!pw && conf_parse_decimal(name, 0, 0x7fffffff, &id) == 0)
		pw = getpwuid((uid_t)id);
	if (!pw)
		return -1;
	*uid = pw->pw_uid;
	if (gid)
		*gid = pw->pw_gid;
	return 0;
}

int conf_lookup_group(const char *name, gid_t *gid)
{
	struct group *gr = getgrnam(name);
	long id;

	if (!gr && conf_parse_decimal(name, 0, 0x7fffffff, &id) == 0)
		gr = getgrgid((gid_t)id);
	if (!gr)
		return -1;
	*gid = gr->gr_gid;
	return 0;
}

/* Options that mean something only for some kinds of listen address. */
static int check_listen_kinds(cfg_t *cfg, cfg_t *sec)
{
	static const struct {
		const char *option;
		enum listen_kind needs;
		const char *what;
	} rules[] = {
		{ "socket-mode", LISTEN_UNIX_PATH, "a unix:/path" },
		{ "socket-owner", LISTEN_UNIX_PATH, "a unix:/path" },
		{ "socket-group", LISTEN_UNIX_PATH, "a unix:/path" },
		{ "allow-users", LISTEN_UNIX, "a unix:" },
		{ "allow-groups", LISTEN_UNIX, "a unix:" },
		{ "allow", LISTEN_IP, "an IPv4 or IPv6" },
		{ "deny", LISTEN_IP, "an IPv4 or IPv6" },
	};

	for (size_t i = 0; i < sizeof(rules) / sizeof(rules[0]); i++) {
		const struct seen_option *s = conf_seen_in(conf_seen_section(sec), rules[i].option);

		if (s && !conf_seen_section(sec)->listens[rules[i].needs]) {
			cfg_error(cfg, "service '%s': '%s' (line %d) needs %s listen address",
				  cfg_title(sec), rules[i].option, s->line, rules[i].what);
			return -1;
		}
	}
	return 0;
}

/* "exec" is what handler "exec" runs, and the other exec options mean
 * nothing to any other handler. */
static int check_exec_options(cfg_t *cfg, cfg_t *sec)
{
	static const char *const exec_only[] = {
		"exec", "env", "directory", "exec-timeout", "exec-kill-grace", "exec-stderr",
	};
	bool is_exec = strcmp(cfg_getstr(sec, "handler"), "exec") == 0;

	if (is_exec && cfg_size(sec, "exec") == 0) {
		cfg_error(cfg, "service '%s': handler \"exec\" needs 'exec = { \"/path/to/program\", "
			  "... }'", cfg_title(sec));
		return -1;
	}
	for (size_t i = 0; !is_exec && i < sizeof(exec_only) / sizeof(exec_only[0]); i++) {
		const struct seen_option *s = conf_seen_in(conf_seen_section(sec), exec_only[i]);

		if (s) {
			cfg_error(cfg, "service '%s': '%s' (line %d) applies to handler \"exec\" only",
				  cfg_title(sec), exec_only[i], s->line);
			return -1;
		}
	}
	return 0;
}

/* Runs at a service's closing brace, so cfg->line points there. */
int conf_check_service(cfg_t *cfg, cfg_opt_t *opt)
{
	cfg_t *sec = cfg_opt_getnsec(opt, cfg_opt_size(opt) - 1);
	const struct seen_section *rec = conf_seen_section(sec);
	const struct seen_option *busy = conf_seen_in(rec, "busy-message");

	if (cfg_title(sec)[0] == '\0') {
		cfg_error(cfg, "a service name is empty");
		return -1;
	}
	if (cfg_size(sec, "listen") == 0) {
		cfg_error(cfg, "service '%s' has no 'listen' address", cfg_title(sec));
		return -1;
	}
	if (!rec) {
		cfg_error(cfg, "out of memory");
		return -1;
	}
	/* A second "listen = {...}" silently replaces the first in libconfuse
	 * ("+=" appends): more addresses seen than kept means one was dropped. */
	if (rec->naddrs != cfg_size(sec, "listen")) {
		cfg_error(cfg, "service '%s': 'listen' is given more than once (first at line %d); "
			  "list every address in one 'listen', or append with +=",
			  cfg_title(sec), rec->first_listen_line);
		return -1;
	}
	if (!cfg_getstr(sec, "handler")) {
		cfg_error(cfg, "service '%s' has no 'handler' (known: %s)", cfg_title(sec),
			  handler_names());
		return -1;
	}
	if (check_exec_options(cfg, sec) < 0 || check_listen_kinds(cfg, sec) < 0)
		return -1;
	if (busy && !cfg_getint(sec, "max-per-source") && !cfg_getint(sec, "max-service-connections")) {
		cfg_error(cfg, "service '%s': 'busy-message' (line %d) is sent when max-per-source "
			  "or max-service-connections turns a client away; neither is set",
			  cfg_title(sec), busy->line);
		return -1;
	}
	return 0;
}

/* Run after the whole file is read: a service's user or the global one may
 * come after it. The lines are from the seen-option records. */
static int check_exec_access(const struct config *conf, char *err, size_t errlen)
{
	struct conf_lines *lines = calloc(conf->nservices + 1, sizeof(*lines));
	int rc;

	if (!lines) {
		snprintf(err, errlen, "%s: out of memory", conf->path);
		return -1;
	}
	for (size_t i = 0; i < conf->nservices && i + 1 < conf_parsing->nsections; i++) {
		const struct seen_option *exec = conf_seen_in(&conf_parsing->sections[i + 1], "exec");
		const struct seen_option *dir = conf_seen_in(&conf_parsing->sections[i + 1], "directory");

		lines[i] = (struct conf_lines){ exec ? exec->line : 0, dir ? dir->line : 0 };
	}
	rc = conf_check_exec_access(conf, lines, err, errlen);
	free(lines);
	return rc;
}

/* A process's own descriptors: stdio, epoll, signalfd, channel, log, the
 * helpers' stderr pipe, /dev/null, and a margin. */
#define FIXED_FDS 24
/* Clients turned away by a limit, read until they close (admit.c). */
#define LINGERING_FDS 32

/* At most how many descriptors a worker of svc holds at max_connections. */
static unsigned long worker_fds_needed(const struct service *svc, unsigned max_connections)
{
	/* A helper's connection is a pidfd, and for a datagram job the pipe of its reply too. */
	unsigned long per_connection = svc->handler->spawns ? 2 : 1;

	return FIXED_FDS + svc->nlisten + LINGERING_FDS + per_connection * max_connections;
}

/* ...and the master, while a reload runs two generations of conf's size. */
static unsigned long master_fds_needed(const struct config *conf)
{
	unsigned long n = FIXED_FDS;

	/* A control socket per worker, of the old and the new generation. */
	for (size_t i = 0; i < conf->nservices; i++)
		n += conf->services[i].nlisten + 2UL * conf->services[i].workers;
	return n;
}

/* Run after the whole file is read, against the hard limit the master
 * raises its own to (nofile.c). An explicit max-connections it cannot hold
 * is an error; the default, or a master that would run short during a
 * reload, is a warning: a worker pauses accepting at EMFILE, and a reload
 * whose workers cannot start fails while the old ones serve on. */
static int check_descriptors(const struct config *conf, char *err, size_t errlen)
{
	unsigned long limit = nofile_limit(), need;

	for (size_t i = 0; i < conf->nservices && i + 1 < conf_parsing->nsections; i++) {
		const struct service *svc = &conf->services[i];
		const struct seen_option *mc = conf_seen_in(&conf_parsing->sections[i + 1], "max-connections");
		unsigned long base = worker_fds_needed(svc, 0);

		need = worker_fds_needed(svc, svc->max_connections);
		if (need <= limit)
			continue;
		if (mc) {
			snprintf(err, errlen, "%s:%d: service '%s': max-connections %u needs up to "
				 "%lu descriptors per worker, RLIMIT_NOFILE allows %lu (raise "
				 "LimitNOFILE=, or lower max-connections)", conf->path, mc->line,
				 svc->name, svc->max_connections, need, limit);
			return -1;
		}
		log_warn("%s: service '%s': the default max-connections (%u) needs up to %lu "
			 "descriptors per worker, RLIMIT_NOFILE allows %lu: a worker pauses accepting "
			 "at about %lu connections", conf->path, svc->name, svc->max_connections, need,
			 limit, limit > base ? (limit - base) * svc->max_connections / (need - base) : 0);
	}
	need = master_fds_needed(conf);
	if (need > limit)
		log_warn("%s: the master needs up to %lu descriptors while a reload runs two "
			 "generations of these workers, RLIMIT_NOFILE allows %lu: such a reload fails",
			 conf->path, need, limit);
	return 0;
}

int conf_check_config(const struct config *conf, char *err, size_t errlen)
{
	if (check_exec_access(conf, err, errlen) < 0 || check_descriptors(conf, err, errlen) < 0)
		return -1;
	return 0;
}
