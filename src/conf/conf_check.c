/* SPDX-License-Identifier: ISC */
/* conf_check.c - what a config must be beyond its syntax: each value as parsed, each service at its brace, the whole file.
 *
 * A check that can point at a line runs inside a libconfuse callback, the
 * only place where the parser's line number is known; one that needs the
 * whole file (a user given after the service) takes the line from the
 * records of the parse. The rules come from the option table: types,
 * ranges, the handler and the kind of listen address an option needs, and
 * the special checks it names. */
#include "config.h"

#include "conf/conf_private.h"

#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/un.h>

#include "common/array.h"
#include "common/log.h"
#include "common/nofile.h"
#include "handlers/handler.h"
#include "worker/access.h"

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

/* How each kind of number is written, and what a value that is not is told. */
static const struct {
	int (*parse)(const char *s, long min, long max, long *out);
	const char *syntax;
} number_syntax[] = {
	[CONF_COUNT] = { conf_parse_decimal, "a decimal number (digits only, no leading zero)" },
	[CONF_DURATION] = { conf_parse_duration_ms,
			    "a duration (seconds, or a number with ms, s, m or h)" },
	[CONF_OCTAL] = { conf_parse_octal, "an octal mode like 0660" },
	[CONF_SIZE] = { conf_parse_size_kib, "a size (bytes, or a number with K, M, G or T)" },
};

static int check_number(cfg_t *cfg, const struct conf_option *o, const char *value, long *out)
{
	int rc = number_syntax[o->type].parse(value, o->min, o->max, out);

	if (rc == -1) {
		cfg_error(cfg, "option '%s': \"%s\" is not %s", o->name, value,
			  number_syntax[o->type].syntax);
		return -1;
	}
	if (rc < 0) {
		cfg_error(cfg, "option '%s': %s is out of range (%s)", o->name, value, o->range);
		return -1;
	}
	return 0;
}

/* "a", "a" or "b", "a", "b" or "c". */
static void names_text(const char *const *names, char *buf, size_t len)
{
	size_t n = 0, at = 0;

	while (names[n])
		n++;
	buf[0] = '\0';
	for (size_t i = 0; i < n && at < len; i++)
		at += (size_t)snprintf(buf + at, len - at, "%s\"%s\"",
				       i == 0 ? "" : i + 1 == n ? " or " : ", ", names[i]);
}

static int check_string(cfg_t *cfg, const struct conf_option *o, const char *value)
{
	char names[CONF_ERR_MAX / 2];

	if (value[0] == '\0' && !o->may_be_empty) {
		cfg_error(cfg, "option '%s' is empty", o->name);
		return -1;
	}
	if (o->max && strlen(value) > (size_t)o->max) {
		cfg_error(cfg, "option '%s' is longer than %ld bytes", o->name, o->max);
		return -1;
	}
	if (o->type == CONF_ENUM && conf_option_name_index(o, value) < 0) {
		names_text(o->names, names, sizeof(names));
		cfg_error(cfg, "option '%s': \"%s\" is not %s", o->name, value, names);
		return -1;
	}
	return 0;
}

int conf_check_value(cfg_t *cfg, const struct conf_option *o, const char *value, unsigned index,
		     long *number)
{
	switch (o->type) {
	case CONF_COUNT:
	case CONF_DURATION:
	case CONF_OCTAL:
	case CONF_SIZE:
		if (check_number(cfg, o, value, number) < 0)
			return -1;
		break;
	case CONF_STRING:
	case CONF_ENUM:
		if (check_string(cfg, o, value) < 0)
			return -1;
		break;
	default:
		break;
	}
	return o->check ? o->check(cfg, o, value, index) : 0;
}

int conf_check_user(cfg_t *cfg, const struct conf_option *o, const char *value, unsigned index)
{
	uid_t uid;

	(void)index;
	if (conf_lookup_user(value, &uid, NULL) < 0) {
		cfg_error(cfg, "option '%s': no such user \"%s\"", o->name, value);
		return -1;
	}
	return 0;
}

int conf_check_group(cfg_t *cfg, const struct conf_option *o, const char *value, unsigned index)
{
	gid_t gid;

	(void)index;
	if (conf_lookup_group(value, &gid) < 0) {
		cfg_error(cfg, "option '%s': no such group \"%s\"", o->name, value);
		return -1;
	}
	return 0;
}

int conf_check_log_level(cfg_t *cfg, const struct conf_option *o, const char *value, unsigned index)
{
	(void)index;
	if (log_level_from_name(value) < 0) {
		cfg_error(cfg, "option '%s': \"%s\" is not one of error, warning, notice, info, debug",
			  o->name, value);
		return -1;
	}
	return 0;
}

int conf_check_handler(cfg_t *cfg, const struct conf_option *o, const char *value, unsigned index)
{
	(void)index;
	if (!handler_find(value)) {
		cfg_error(cfg, "option '%s': unknown handler \"%s\" (known: %s)", o->name, value,
			  handler_names());
		return -1;
	}
	return 0;
}

int conf_check_absolute_path(cfg_t *cfg, const struct conf_option *o, const char *value,
			     unsigned index)
{
	(void)index;
	if (value[0] != '/') {
		cfg_error(cfg, "option '%s': \"%s\" is not an absolute path", o->name, value);
		return -1;
	}
	return 0;
}

int conf_check_control_socket(cfg_t *cfg, const struct conf_option *o, const char *value,
			      unsigned index)
{
	(void)index;
	if (value[0] == '\0')
		return 0;	/* none */
	if (value[0] != '/') {
		cfg_error(cfg, "option '%s': \"%s\" is not an absolute path (\"\" for none)", o->name,
			  value);
		return -1;
	}
	if (strlen(value) >= sizeof(((struct sockaddr_un *)0)->sun_path)) {
		cfg_error(cfg, "option '%s': \"%s\" is longer than a unix socket path may be (%zu "
			  "bytes)", o->name, value, sizeof(((struct sockaddr_un *)0)->sun_path) - 1);
		return -1;
	}
	return 0;
}

int conf_check_metrics_listen(cfg_t *cfg, const struct conf_option *o, const char *value,
			      unsigned index)
{
	char why[CONF_ERR_MAX / 2];
	struct address addr;

	(void)index;
	if (address_parse(value, &addr, why, sizeof(why)) < 0) {
		cfg_error(cfg, "option '%s': bad address %s", o->name, why);
		return -1;
	}
	if (addr.socktype != SOCK_STREAM) {
		cfg_error(cfg, "option '%s': %s: metrics are served over a stream socket (TCP or "
			  "unix:)", o->name, addr.text);
		return -1;
	}
	return 0;
}

int conf_check_upstream(cfg_t *cfg, const struct conf_option *o, const char *value,
			unsigned index)
{
	char why[CONF_ERR_MAX / 2];
	struct address addr;

	if (index >= PROXY_UPSTREAMS_MAX) {
		cfg_error(cfg, "option '%s': more than %d upstreams", o->name, PROXY_UPSTREAMS_MAX);
		return -1;
	}
	if (address_parse(value, &addr, why, sizeof(why)) < 0) {
		cfg_error(cfg, "option '%s': bad address %s", o->name, why);
		return -1;
	}
	if (addr.socktype != SOCK_STREAM) {
		cfg_error(cfg, "option '%s': %s: the proxy forwards streams (TCP or unix:)", o->name,
			  addr.text);
		return -1;
	}
	if (addr.wildcard || address_is_any(&addr)) {
		cfg_error(cfg, "option '%s': %s is an address to listen on, not one to connect to; "
			  "name the host (127.0.0.1:PORT, [::1]:PORT)", o->name, addr.text);
		return -1;
	}
	return 0;
}

int conf_check_directory(cfg_t *cfg, const struct conf_option *o, const char *value, unsigned index)
{
	struct stat st;

	if (conf_check_absolute_path(cfg, o, value, index) < 0)
		return -1;
	if (stat(value, &st) < 0 || !S_ISDIR(st.st_mode)) {
		cfg_error(cfg, "option '%s': \"%s\" is not a directory", o->name, value);
		return -1;
	}
	return 0;
}

/* The program of "exec = {...}": checked now, so that a typo is an error
 * with a line number rather than a failure on every connection. */
int conf_check_exec(cfg_t *cfg, const struct conf_option *o, const char *value, unsigned index)
{
	struct stat st;

	if (index > 0)
		return 0;	/* its arguments */
	if (value[0] != '/') {
		cfg_error(cfg, "option '%s': \"%s\" is not an absolute path "
			  "(no PATH search, no shell)", o->name, value);
		return -1;
	}
	if (stat(value, &st) < 0) {
		cfg_error(cfg, "option '%s': \"%s\": %s", o->name, value, strerror(errno));
		return -1;
	}
	if (!S_ISREG(st.st_mode) || !(st.st_mode & 0111)) {
		cfg_error(cfg, "option '%s': \"%s\" is not an executable file", o->name, value);
		return -1;
	}
	return 0;
}

/* NAME=value, with a NAME the helper's libc reads once: not the handler's
 * own, not one given before in the list. */
int conf_check_env(cfg_t *cfg, const struct conf_option *o, const char *value, unsigned index)
{
	const char *eq = strchr(value, '=');
	int first;

	if (!eq || eq == value || strspn(value, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
						 "0123456789_") != (size_t)(eq - value) ||
	    (value[0] >= '0' && value[0] <= '9')) {
		cfg_error(cfg, "option '%s': \"%s\" is not NAME=value", o->name, value);
		return -1;
	}
	if (exec_env_name_reserved(value, (size_t)(eq - value))) {
		cfg_error(cfg, "option '%s': \"%s\": the exec handler sets %.*s itself for each "
			  "connection (PROTO and the TCPLOCAL, TCPREMOTE, UDPLOCAL, UDPREMOTE, "
			  "UNIXLOCAL and UNIXREMOTE names are its own)", o->name, value,
			  (int)(eq - value), value);
		return -1;
	}
	first = conf_env_name_seen(cfg, value, (size_t)(eq - value), index == 0);
	if (first < 0) {
		cfg_error(cfg, "out of memory");
		return -1;
	}
	if (first > 0) {
		cfg_error(cfg, "option '%s': \"%s\": %.*s is given twice (first at line %d)", o->name,
			  value, (int)(eq - value), value, first);
		return -1;
	}
	return 0;
}

/* "allow" and "deny": address ranges. */
int conf_check_range(cfg_t *cfg, const struct conf_option *o, const char *value, unsigned index)
{
	char why[CONF_ERR_MAX / 2];
	struct cidr range;

	(void)index;
	if (access_parse_cidr(value, &range, why, sizeof(why)) < 0) {
		cfg_error(cfg, "option '%s': %s", o->name, why);
		return -1;
	}
	return 0;
}

/* Refuses an address that would collide at bind with one seen before. */
static int check_listen_unique(cfg_t *cfg, const struct address *addr)
{
	const struct seen_address *s;
	const char *other;
	size_t id;

	if (!addr_index_find_overlap(&conf_parsing->addr_ix, addr, &id))
		return 0;
	s = &conf_parsing->addrs[id];
	other = cfg_title(conf_parsing->sections[s->section].section);
	if (strcmp(other, cfg_title(cfg)) == 0)
		cfg_error(cfg, "listen address %s is listed twice in service '%s' (line %d)",
			  addr->text, other, s->line);
	else
		cfg_error(cfg, "listen address %s is already used by service '%s' (%s at line %d)",
			  addr->text, other, s->addr.text, s->line);
	return -1;
}

int conf_check_listen(cfg_t *cfg, const char *value, struct address *addr)
{
	char why[CONF_ERR_MAX / 2];

	if (address_parse(value, addr, why, sizeof(why)) < 0) {
		cfg_error(cfg, "bad listen address %s", why);
		return -1;
	}
	return check_listen_unique(cfg, addr);
}

/* The environment an app worker gets from preforkd: "env" must not set it. */
static bool app_env_name_reserved(const char *name, size_t len)
{
	static const char *const exact[] = {
		"LISTEN_FDS", "LISTEN_PID", "LISTEN_FDNAMES", "NOTIFY_SOCKET", "WATCHDOG_USEC",
		"WATCHDOG_PID", "EINHORN_FD_COUNT", "SERVER_STARTER_PORT",
	};

	for (size_t i = 0; i < ARRAY_SIZE(exact); i++)
		if (len == strlen(exact[i]) && strncmp(name, exact[i], len) == 0)
			return true;
	return (len > 9 && strncmp(name, "PREFORKD_", 9) == 0) ||
	       (len > 10 && strncmp(name, "EINHORN_FD", 10) == 0);
}

static int check_app_env(cfg_t *cfg, cfg_t *sec, const struct seen_section *rec)
{
	for (unsigned i = 0; i < cfg_size(sec, CONF_NAME(ENV)); i++) {
		const char *v = cfg_getnstr(sec, CONF_NAME(ENV), i);
		size_t len = strcspn(v, "=");

		if (app_env_name_reserved(v, len)) {
			cfg_error(cfg, "service '%s': 'env' (line %d): %.*s is set by preforkd for "
				  "every app worker (LISTEN_FDS, LISTEN_PID, LISTEN_FDNAMES, "
				  "NOTIFY_SOCKET, WATCHDOG_USEC, WATCHDOG_PID, EINHORN_FD_*, "
				  "SERVER_STARTER_PORT and PREFORKD_* are its own)", cfg_title(sec),
				  rec->lines[CONF_OPT_ENV], (int)len, v);
			return -1;
		}
	}
	return 0;
}

/* Options given in a service whose handler they do not apply to; and
 * "exec" is what handlers "exec" and "app" run. */
static int check_handler_options(cfg_t *cfg, cfg_t *sec, const struct seen_section *rec)
{
	const char *handler = cfg_getstr(sec, CONF_NAME(HANDLER));
	bool app = strcmp(handler, "app") == 0;
	char names[64];

	if ((app || strcmp(handler, "exec") == 0) && cfg_size(sec, CONF_NAME(EXEC)) == 0) {
		cfg_error(cfg, "service '%s': handler \"%s\" needs 'exec = { \"/path/to/program\", "
			  "... }'", cfg_title(sec), handler);
		return -1;
	}
	/* The others a handler cannot do without (proxy: upstream). */
	for (size_t i = 0; i < CONF_NOPTIONS; i++) {
		const struct conf_option *o = &conf_options[i];

		if (o->required && o->handlers && i != CONF_OPT_EXEC &&
		    conf_option_applies(o, handler) && cfg_size(sec, o->name) == 0) {
			cfg_error(cfg, "service '%s': handler \"%s\" needs '%s'", cfg_title(sec),
				  handler, o->name);
			return -1;
		}
	}
	for (size_t i = 0; i < CONF_NOPTIONS; i++) {
		const struct conf_option *o = &conf_options[i];

		if (!rec->lines[i] || conf_option_applies(o, handler))
			continue;
		if (o->handlers)
			cfg_error(cfg, "service '%s': '%s' (line %d) applies to handler%s %s only",
				  cfg_title(sec), o->name, rec->lines[i], o->handlers[1] ? "s" : "",
				  conf_option_handlers_text(o, names, sizeof(names)));
		else
			cfg_error(cfg, "service '%s': '%s' (line %d) does not apply to handler "
				  "\"app\": the program accepts its connections, not preforkd",
				  cfg_title(sec), o->name, rec->lines[i]);
		return -1;
	}
	return app ? check_app_env(cfg, sec, rec) : 0;
}

/* Options that mean something only for some kinds of listen address. */
static int check_listen_kinds(cfg_t *cfg, cfg_t *sec, const struct seen_section *rec)
{
	static const char *const what[CONF_LISTEN_KINDS] = {
		[CONF_LISTEN_UNIX_PATH] = "a unix:/path",
		[CONF_LISTEN_UNIX] = "a unix:",
		[CONF_LISTEN_IP] = "an IPv4 or IPv6",
	};

	for (size_t i = 0; i < CONF_NOPTIONS; i++) {
		const struct conf_option *o = &conf_options[i];

		if (rec->lines[i] && o->needs != CONF_LISTEN_ANY && !rec->listens[o->needs]) {
			cfg_error(cfg, "service '%s': '%s' (line %d) needs %s listen address",
				  cfg_title(sec), o->name, rec->lines[i], what[o->needs]);
			return -1;
		}
	}
	return 0;
}

/* A fixed pool ("workers") or an elastic one (min-workers, max-workers),
 * and what applies to an elastic pool only. */
static int check_pool_options(cfg_t *cfg, cfg_t *sec, const struct seen_section *rec)
{
	bool elastic = rec->lines[CONF_OPT_MIN_WORKERS] ||
		       (rec->lines[CONF_OPT_MAX_WORKERS] && !rec->lines[CONF_OPT_WORKERS]);
	static const enum conf_option_id elastic_only[] = {
		CONF_OPT_SCALE_UP_AFTER, CONF_OPT_SCALE_DOWN_AFTER,
	};

	if (rec->lines[CONF_OPT_WORKERS] && rec->lines[CONF_OPT_MIN_WORKERS]) {
		cfg_error(cfg, "service '%s': 'workers' (line %d) and 'min-workers' (line %d) are "
			  "alternatives: workers = N is a fixed pool, min-workers and max-workers "
			  "an elastic one", cfg_title(sec), rec->lines[CONF_OPT_WORKERS],
			  rec->lines[CONF_OPT_MIN_WORKERS]);
		return -1;
	}
	if (rec->lines[CONF_OPT_MIN_WORKERS] && rec->lines[CONF_OPT_MAX_WORKERS] &&
	    cfg_getint(sec, CONF_NAME(MAX_WORKERS)) < cfg_getint(sec, CONF_NAME(MIN_WORKERS))) {
		cfg_error(cfg, "service '%s': max-workers %ld (line %d) is fewer than min-workers %ld",
			  cfg_title(sec), cfg_getint(sec, CONF_NAME(MAX_WORKERS)),
			  rec->lines[CONF_OPT_MAX_WORKERS], cfg_getint(sec, CONF_NAME(MIN_WORKERS)));
		return -1;
	}
	for (size_t i = 0; i < ARRAY_SIZE(elastic_only) && !elastic; i++)
		if (rec->lines[elastic_only[i]]) {
			cfg_error(cfg, "service '%s': '%s' (line %d) applies to an elastic pool "
				  "(min-workers, or max-workers without workers)", cfg_title(sec),
				  conf_options[elastic_only[i]].name, rec->lines[elastic_only[i]]);
			return -1;
		}
	return 0;
}

/* Runs at a service's closing brace, so cfg->line points there. */
/* The first datagram listen address of sec (udp:, unixgram:), or NULL. */
static const char *datagram_listen(cfg_t *sec, struct address *addr)
{
	char why[CONF_ERR_MAX / 2];

	for (unsigned i = 0; i < cfg_size(sec, CONF_NAME(LISTEN)); i++) {
		const char *text = cfg_getnstr(sec, CONF_NAME(LISTEN), i);

		if (address_parse(text, addr, why, sizeof(why)) == 0 && addr->socktype != SOCK_STREAM)
			return text;
	}
	return NULL;
}

/* A proxy forwards streams, and a PROXY header starts one. */
static int check_stream_only(cfg_t *cfg, cfg_t *sec, const struct seen_section *rec)
{
	bool proxy = strcmp(cfg_getstr(sec, CONF_NAME(HANDLER)), "proxy") == 0;
	bool header = rec->lines[CONF_OPT_ACCEPT_PROXY_PROTOCOL] &&
		      strcmp(cfg_getstr(sec, CONF_NAME(ACCEPT_PROXY_PROTOCOL)), "yes") == 0;
	struct address addr;
	const char *dgram = proxy || header ? datagram_listen(sec, &addr) : NULL;

	if (!dgram)
		return 0;
	cfg_error(cfg, "service '%s': listen %s is a datagram address; %s", cfg_title(sec), dgram,
		  proxy ? "handler \"proxy\" forwards streams (TCP or unix:)" :
			  "accept-proxy-protocol applies to streams (a PROXY header starts a "
			  "connection)");
	return -1;
}

int conf_check_service(cfg_t *cfg, cfg_opt_t *opt)
{
	cfg_t *sec = cfg_opt_getnsec(opt, cfg_opt_size(opt) - 1);
	const struct seen_section *rec = conf_seen_section(sec);
	int busy;

	if (cfg_title(sec)[0] == '\0') {
		cfg_error(cfg, "a service name is empty");
		return -1;
	}
	if (cfg_size(sec, CONF_NAME(LISTEN)) == 0) {
		cfg_error(cfg, "service '%s' has no 'listen' address", cfg_title(sec));
		return -1;
	}
	if (!rec) {
		cfg_error(cfg, "out of memory");
		return -1;
	}
	/* A second "listen = {...}" silently replaces the first in libconfuse
	 * ("+=" appends): more addresses seen than kept means one was dropped. */
	if (rec->naddrs != cfg_size(sec, CONF_NAME(LISTEN))) {
		cfg_error(cfg, "service '%s': 'listen' is given more than once (first at line %d); "
			  "list every address in one 'listen', or append with +=",
			  cfg_title(sec), rec->lines[CONF_OPT_LISTEN]);
		return -1;
	}
	if (!cfg_getstr(sec, CONF_NAME(HANDLER))) {
		cfg_error(cfg, "service '%s' has no 'handler' (known: %s)", cfg_title(sec),
			  handler_names());
		return -1;
	}
	if (check_handler_options(cfg, sec, rec) < 0 || check_listen_kinds(cfg, sec, rec) < 0)
		return -1;
	if (check_pool_options(cfg, sec, rec) < 0 || check_stream_only(cfg, sec, rec) < 0)
		return -1;
	if (rec->lines[CONF_OPT_MAX_WORKERS] && rec->lines[CONF_OPT_WORKERS] &&
	    cfg_getint(sec, CONF_NAME(MAX_WORKERS)) < cfg_getint(sec, CONF_NAME(WORKERS))) {
		cfg_error(cfg, "service '%s': max-workers %ld (line %d) is fewer than workers %ld",
			  cfg_title(sec), cfg_getint(sec, CONF_NAME(MAX_WORKERS)),
			  rec->lines[CONF_OPT_MAX_WORKERS], cfg_getint(sec, CONF_NAME(WORKERS)));
		return -1;
	}
	if (rec->lines[CONF_OPT_ACCEPT_PROXY_PROTOCOL] &&
	    strcmp(cfg_getstr(sec, CONF_NAME(ACCEPT_PROXY_PROTOCOL)), "yes") == 0 &&
	    cfg_size(sec, CONF_NAME(PROXY_PROTOCOL_FROM)) == 0) {
		cfg_error(cfg, "service '%s': accept-proxy-protocol (line %d) needs "
			  "proxy-protocol-from: the sources (load balancers) whose headers are "
			  "believed", cfg_title(sec), rec->lines[CONF_OPT_ACCEPT_PROXY_PROTOCOL]);
		return -1;
	}
	busy = rec->lines[CONF_OPT_BUSY_MESSAGE];
	if (busy && !cfg_getint(sec, CONF_NAME(MAX_PER_SOURCE)) &&
	    !cfg_getint(sec, CONF_NAME(MAX_SERVICE_CONNECTIONS))) {
		cfg_error(cfg, "service '%s': 'busy-message' (line %d) is sent when max-per-source "
			  "or max-service-connections turns a client away; neither is set",
			  cfg_title(sec), busy);
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
		const int *seen = conf_parsing->sections[i + 1].lines;

		lines[i] = (struct conf_lines){ seen[CONF_OPT_EXEC], seen[CONF_OPT_DIRECTORY] };
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
		int line = conf_parsing->sections[i + 1].lines[CONF_OPT_MAX_CONNECTIONS];
		unsigned long base = worker_fds_needed(svc, 0);

		if (svc->handler->app)
			continue;	/* the program's own descriptors are its business */
		need = worker_fds_needed(svc, svc->max_connections);
		if (need <= limit)
			continue;
		if (line) {
			snprintf(err, errlen, "%s:%d: service '%s': max-connections %u needs up to "
				 "%lu descriptors per worker, RLIMIT_NOFILE allows %lu (raise "
				 "LimitNOFILE=, or lower max-connections)", conf->path, line,
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

/* metrics-listen shares no address with a service, nor with itself. */
static int check_metrics_addresses(const struct config *conf, char *err, size_t errlen)
{
	int line = conf_parsing->nsections ? conf_parsing->sections[0].lines[CONF_OPT_METRICS_LISTEN] : 0;

	for (size_t i = 0; i < conf->nmetrics_listen; i++) {
		const struct address *a = &conf->metrics_listen[i];

		for (size_t j = 0; j < i; j++)
			if (address_overlaps(a, &conf->metrics_listen[j])) {
				snprintf(err, errlen, "%s:%d: metrics-listen %s is listed twice",
					 conf->path, line, a->text);
				return -1;
			}
		for (size_t s = 0; s < conf->nservices; s++)
			for (size_t k = 0; k < conf->services[s].nlisten; k++)
				if (address_overlaps(a, &conf->services[s].listen[k])) {
					snprintf(err, errlen, "%s:%d: metrics-listen %s is already used "
						 "by service '%s' (%s)", conf->path, line, a->text,
						 conf->services[s].name, conf->services[s].listen[k].text);
					return -1;
				}
	}
	return 0;
}

int conf_check_config(const struct config *conf, char *err, size_t errlen)
{
	if (check_metrics_addresses(conf, err, errlen) < 0)
		return -1;
	if (check_exec_access(conf, err, errlen) < 0 || check_descriptors(conf, err, errlen) < 0)
		return -1;
	return 0;
}
