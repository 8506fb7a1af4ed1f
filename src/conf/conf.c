/* conf.c - the configuration schema (libconfuse), its checks, and the snapshot built from it.
 *
 * Every check that can point at a line runs inside a libconfuse callback,
 * the only place where the parser's line number is known. libconfuse
 * callbacks carry no user pointer, so the parse in progress lives in
 * parse_ctx; parsing is single-threaded and never re-entered. */
#include "config.h"

#include "conf/conf.h"

#include <confuse.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <search.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/addrindex.h"
#include "handlers/handler.h"
#include "common/log.h"
#include "common/nofile.h"

#define CONF_FILE_MAX (1024 * 1024)

enum number_kind { NUM_COUNT, NUM_DURATION, NUM_OCTAL };

static const struct number_rule {
	const char *option;
	enum number_kind kind;
	long min, max;
	const char *range;
} number_rules[] = {
	{ "workers", NUM_COUNT, 1, 1024, "1 to 1024" },
	{ "backlog", NUM_COUNT, 1, 65535, "1 to 65535" },
	{ "max-connections", NUM_COUNT, 1, 1000000, "1 to 1000000" },
	{ "idle-timeout", NUM_DURATION, 0, 24 * 3600000L, "0 (never) to 24h" },
	{ "shutdown-timeout", NUM_DURATION, 0, 3600000L, "0 to 1h" },
	{ "socket-mode", NUM_OCTAL, 0, 07777, "0000 to 7777" },
	{ "exec-timeout", NUM_DURATION, 0, 24 * 3600000L, "0 (none) to 24h" },
	{ "exec-kill-grace", NUM_DURATION, 0, 3600000L, "0 to 1h" },
	{ "max-per-source", NUM_COUNT, 0, 1000000, "0 (no limit) to 1000000" },
	{ "max-service-connections", NUM_COUNT, 0, 1000000, "0 (no limit) to 1000000" },
};

#define BUSY_MESSAGE_MAX 1024	/* sent without waiting: must fit a fresh socket's buffer */

struct seen_option {
	const char *option;
	int line;
};

enum listen_kind { LISTEN_UNIX_PATH, LISTEN_UNIX, LISTEN_IP, LISTEN_KINDS };

/* What the callbacks saw in one section: the root (record 0) or a service
 * (record i + 1 is service i). A section holds each option at most once, so
 * its options fit and are looked up among a few dozen, not the whole file. */
#define SEEN_OPTIONS_MAX 32
struct seen_section {
	cfg_t *section;
	struct seen_option opts[SEEN_OPTIONS_MAX];
	size_t nopts;
	size_t naddrs;			/* listen addresses parsed in it */
	int first_listen_line;
	bool listens[LISTEN_KINDS];	/* has a listen address of that kind */
};

struct seen_address {
	struct address addr;
	size_t section;		/* its seen_section */
	int line;
};

static struct parse_ctx {
	const char *path;
	char *err;
	size_t errlen;
	int failed;
	struct seen_section *sections;
	size_t nsections, sections_cap;
	struct seen_address *addrs;	/* every listen address, in file order */
	size_t naddrs, addrs_cap;
	struct addr_index addr_ix;	/* addrs, by the index in it */
	void *env_names;	/* struct env_name of the "env" list being parsed */
} *ctx;

__attribute__((format(printf, 2, 0)))
static void conf_errfunc(cfg_t *cfg, const char *fmt, va_list ap)
{
	char msg[CONF_ERR_MAX];

	if (ctx->failed++)
		return;	/* the first error is the one that explains the rest */
	vsnprintf(msg, sizeof(msg), fmt, ap);
	if (cfg && cfg->line > 0)
		snprintf(ctx->err, ctx->errlen, "%s:%d: %s", ctx->path, cfg->line, msg);
	else
		snprintf(ctx->err, ctx->errlen, "%s: %s", ctx->path, msg);
}

/* Room for n + 1 elements of size bytes in *v, doubling: linear in all. */
static int grow(void **v, size_t *cap, size_t n, size_t size)
{
	void *grown;

	if (n < *cap)
		return 0;
	grown = reallocarray(*v, *cap ? *cap * 2 : 16, size);
	if (!grown)
		return -1;
	*v = grown;
	*cap = *cap ? *cap * 2 : 16;
	return 0;
}

/* The record of section: the root's, or the one being parsed (libconfuse
 * parses one service at a time), or a new one for the next service. */
static struct seen_section *seen_section_of(cfg_t *section)
{
	struct seen_section *last = ctx->nsections ? &ctx->sections[ctx->nsections - 1] : NULL;

	if (last && last->section == section)
		return last;
	if (ctx->nsections && ctx->sections[0].section == section)
		return &ctx->sections[0];
	if (grow((void **)&ctx->sections, &ctx->sections_cap, ctx->nsections,
		 sizeof(*ctx->sections)) < 0)
		return NULL;
	last = &ctx->sections[ctx->nsections++];
	*last = (struct seen_section){ .section = section };
	return last;
}

static const struct seen_option *seen_in(const struct seen_section *rec, const char *option)
{
	for (size_t i = 0; rec && i < rec->nopts; i++)
		if (strcmp(rec->opts[i].option, option) == 0)
			return &rec->opts[i];
	return NULL;
}

static const struct seen_option *seen_find(cfg_t *section, const char *option)
{
	return seen_in(seen_section_of(section), option);
}

/* libconfuse lets a later "workers = 3" silently replace an earlier one;
 * an operator who wrote it twice made a mistake worth hearing about. */
static int seen_once(cfg_t *cfg, cfg_opt_t *opt)
{
	struct seen_section *rec = seen_section_of(cfg);
	const struct seen_option *prev = seen_in(rec, opt->name);

	if (!rec || rec->nopts == SEEN_OPTIONS_MAX) {
		cfg_error(cfg, "out of memory");
		return -1;
	}
	if (prev) {
		cfg_error(cfg, "option '%s' is given twice (first at line %d)", opt->name, prev->line);
		return -1;
	}
	rec->opts[rec->nopts++] = (struct seen_option){ opt->name, cfg->line };
	return 0;
}

static const struct number_rule *number_rule_for(const char *option)
{
	for (size_t i = 0; i < sizeof(number_rules) / sizeof(number_rules[0]); i++)
		if (strcmp(number_rules[i].option, option) == 0)
			return &number_rules[i];
	return NULL;
}

static int parse_octal(const char *s, long max, long *out)
{
	long v = 0;

	if (*s == '\0' || strlen(s) > 5)
		return -1;
	for (; *s; s++) {
		if (*s < '0' || *s > '7')
			return -1;
		v = v * 8 + (*s - '0');
	}
	if (v > max)
		return -2;
	*out = v;
	return 0;
}

static int cb_number(cfg_t *cfg, cfg_opt_t *opt, const char *value, void *result)
{
	const struct number_rule *rule = number_rule_for(opt->name);
	long v = 0;
	int rc;

	if (seen_once(cfg, opt) < 0)
		return -1;
	switch (rule->kind) {
	case NUM_COUNT:
		rc = conf_parse_decimal(value, rule->min, rule->max, &v);
		if (rc == -1) {
			cfg_error(cfg, "option '%s': \"%s\" is not a decimal number "
				  "(digits only, no leading zero)", opt->name, value);
			return -1;
		}
		break;
	case NUM_DURATION:
		rc = conf_parse_duration_ms(value, rule->min, rule->max, &v);
		if (rc == -1) {
			cfg_error(cfg, "option '%s': \"%s\" is not a duration "
				  "(seconds, or a number with ms, s, m or h)", opt->name, value);
			return -1;
		}
		break;
	case NUM_OCTAL:
		rc = parse_octal(value, rule->max, &v);
		if (rc == -1) {
			cfg_error(cfg, "option '%s': \"%s\" is not an octal mode like 0660",
				  opt->name, value);
			return -1;
		}
		break;
	default:
		return -1;
	}
	if (rc < 0) {
		cfg_error(cfg, "option '%s': %s is out of range (%s)", opt->name, value, rule->range);
		return -1;
	}
	*(long *)result = v;
	return 0;
}

/* Accepts a name or a decimal id; the id is what a chown() needs. */
static int lookup_user(const char *name, uid_t *uid, gid_t *gid)
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

static int lookup_group(const char *name, gid_t *gid)
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

static int check_directory(cfg_t *cfg, const char *value)
{
	struct stat st;

	if (value[0] != '/') {
		cfg_error(cfg, "option 'directory': \"%s\" is not an absolute path", value);
		return -1;
	}
	if (stat(value, &st) < 0 || !S_ISDIR(st.st_mode)) {
		cfg_error(cfg, "option 'directory': \"%s\" is not a directory", value);
		return -1;
	}
	return 0;
}

static int cb_string(cfg_t *cfg, cfg_opt_t *opt, const char *value, void *result)
{
	uid_t uid;
	gid_t gid;

	if (seen_once(cfg, opt) < 0)
		return -1;
	if (value[0] == '\0') {
		cfg_error(cfg, "option '%s' is empty", opt->name);
		return -1;
	}
	if ((strcmp(opt->name, "user") == 0 || strcmp(opt->name, "socket-owner") == 0) &&
	    lookup_user(value, &uid, NULL) < 0) {
		cfg_error(cfg, "option '%s': no such user \"%s\"", opt->name, value);
		return -1;
	}
	if ((strcmp(opt->name, "group") == 0 || strcmp(opt->name, "socket-group") == 0) &&
	    lookup_group(value, &gid) < 0) {
		cfg_error(cfg, "option '%s': no such group \"%s\"", opt->name, value);
		return -1;
	}
	if (strcmp(opt->name, "log-level") == 0 && log_level_from_name(value) < 0) {
		cfg_error(cfg, "option 'log-level': \"%s\" is not one of error, warning, "
			  "notice, info, debug", value);
		return -1;
	}
	if (strcmp(opt->name, "handler") == 0 && !handler_find(value)) {
		cfg_error(cfg, "option 'handler': unknown handler \"%s\" (known: %s)",
			  value, handler_names());
		return -1;
	}
	if (strcmp(opt->name, "pidfile") == 0 && value[0] != '/') {
		cfg_error(cfg, "option 'pidfile': \"%s\" is not an absolute path", value);
		return -1;
	}
	if (strcmp(opt->name, "directory") == 0 && check_directory(cfg, value) < 0)
		return -1;
	if (strcmp(opt->name, "busy-message") == 0 && strlen(value) > BUSY_MESSAGE_MAX) {
		cfg_error(cfg, "option 'busy-message' is longer than %d bytes", BUSY_MESSAGE_MAX);
		return -1;
	}
	if (strcmp(opt->name, "exec-stderr") == 0 && strcmp(value, "log") != 0 &&
	    strcmp(value, "null") != 0) {
		cfg_error(cfg, "option 'exec-stderr': \"%s\" is not \"log\" or \"null\"", value);
		return -1;
	}
	*(const char **)result = value;
	return 0;
}

/* The program of "exec = {...}": checked now, so that a typo is an error
 * with a line number rather than a failure on every connection. */
static int cb_exec(cfg_t *cfg, cfg_opt_t *opt, const char *value, void *result)
{
	struct stat st;

	/* libconfuse has added the slot for this value already. */
	if (opt->nvalues == 1) {
		if (seen_once(cfg, opt) < 0)
			return -1;
		if (value[0] != '/') {
			cfg_error(cfg, "option 'exec': \"%s\" is not an absolute path "
				  "(no PATH search, no shell)", value);
			return -1;
		}
		if (stat(value, &st) < 0) {
			cfg_error(cfg, "option 'exec': \"%s\": %s", value, strerror(errno));
			return -1;
		}
		if (!S_ISREG(st.st_mode) || !(st.st_mode & 0111)) {
			cfg_error(cfg, "option 'exec': \"%s\" is not an executable file", value);
			return -1;
		}
	}
	*(const char **)result = value;
	return 0;
}

struct env_name {
	char *name;
	int line;
};

static int env_name_cmp(const void *a, const void *b)
{
	return strcmp(((const struct env_name *)a)->name, ((const struct env_name *)b)->name);
}

static void env_name_free(void *node)
{
	free(((struct env_name *)node)->name);
	free(node);
}

static void env_names_reset(void)
{
	tdestroy(ctx->env_names, env_name_free);
	ctx->env_names = NULL;
}

/* The names of the "env" list being parsed, so that a second A=... is an
 * error rather than a question of which one the helper's libc reads. */
static int env_name_record(cfg_t *cfg, const char *value, size_t len)
{
	struct env_name *n = malloc(sizeof(*n)), **found;

	if (!n || !(n->name = strndup(value, len))) {
		free(n);
		cfg_error(cfg, "out of memory");
		return -1;
	}
	n->line = cfg->line;
	found = tsearch(n, &ctx->env_names, env_name_cmp);
	if (!found) {
		env_name_free(n);
		cfg_error(cfg, "out of memory");
		return -1;
	}
	if (*found != n) {
		cfg_error(cfg, "option 'env': \"%s\": %s is given twice (first at line %d)", value,
			  n->name, (*found)->line);
		env_name_free(n);
		return -1;
	}
	return 0;
}

static int cb_env(cfg_t *cfg, cfg_opt_t *opt, const char *value, void *result)
{
	const char *eq = strchr(value, '=');

	if (opt->nvalues == 1) {
		if (seen_once(cfg, opt) < 0)
			return -1;
		env_names_reset();
	}
	if (!eq || eq == value || strspn(value, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
						 "0123456789_") != (size_t)(eq - value) ||
	    (value[0] >= '0' && value[0] <= '9')) {
		cfg_error(cfg, "option 'env': \"%s\" is not NAME=value", value);
		return -1;
	}
	if (exec_env_name_reserved(value, (size_t)(eq - value))) {
		cfg_error(cfg, "option 'env': \"%s\": the exec handler sets %.*s itself for each "
			  "connection (PROTO and the TCPLOCAL, TCPREMOTE, UDPLOCAL, UDPREMOTE, "
			  "UNIXLOCAL and UNIXREMOTE names are its own)", value, (int)(eq - value), value);
		return -1;
	}
	if (env_name_record(cfg, value, (size_t)(eq - value)) < 0)
		return -1;
	*(const char **)result = value;
	return 0;
}

/* "allow" and "deny": address ranges. */
static int cb_range(cfg_t *cfg, cfg_opt_t *opt, const char *value, void *result)
{
	char why[CONF_ERR_MAX / 2];
	struct cidr range;

	if (opt->nvalues == 1 && seen_once(cfg, opt) < 0)
		return -1;
	if (cidr_parse(value, &range, why, sizeof(why)) < 0) {
		cfg_error(cfg, "option '%s': %s", opt->name, why);
		return -1;
	}
	*(const char **)result = value;
	return 0;
}

/* "allow-users" and "allow-groups": names or ids that exist now. */
static int cb_principal(cfg_t *cfg, cfg_opt_t *opt, const char *value, void *result)
{
	bool users = strcmp(opt->name, "allow-users") == 0;
	uid_t uid;
	gid_t gid;

	if (opt->nvalues == 1 && seen_once(cfg, opt) < 0)
		return -1;
	if (users ? lookup_user(value, &uid, NULL) < 0 : lookup_group(value, &gid) < 0) {
		cfg_error(cfg, "option '%s': no such %s \"%s\"", opt->name,
			  users ? "user" : "group", value);
		return -1;
	}
	*(const char **)result = value;
	return 0;
}

static bool address_is(const struct address *a, enum listen_kind kind)
{
	switch (kind) {
	case LISTEN_UNIX_PATH:
		return address_unix_path(a) != NULL;
	case LISTEN_UNIX:
		return a->family == AF_UNIX;
	default:
		return a->family != AF_UNIX;
	}
}

/* Refuses an address that would collide at bind with one seen before. */
static int check_listen_unique(cfg_t *cfg, const struct address *addr)
{
	const struct seen_address *s;
	const char *other;
	size_t id;

	if (!addr_index_find_overlap(&ctx->addr_ix, addr, &id))
		return 0;
	s = &ctx->addrs[id];
	other = cfg_title(ctx->sections[s->section].section);
	if (strcmp(other, cfg_title(cfg)) == 0)
		cfg_error(cfg, "listen address %s is listed twice in service '%s' (line %d)",
			  addr->text, other, s->line);
	else
		cfg_error(cfg, "listen address %s is already used by service '%s' (%s at line %d)",
			  addr->text, other, s->addr.text, s->line);
	return -1;
}

static int cb_listen(cfg_t *cfg, cfg_opt_t *opt, const char *value, void *result)
{
	struct seen_section *rec = seen_section_of(cfg);
	struct address addr;
	char why[CONF_ERR_MAX / 2];

	(void)opt;	/* the list is checked whole at the service's closing brace */
	if (address_parse(value, &addr, why, sizeof(why)) < 0) {
		cfg_error(cfg, "bad listen address %s", why);
		return -1;
	}
	if (check_listen_unique(cfg, &addr) < 0)
		return -1;
	if (!rec || grow((void **)&ctx->addrs, &ctx->addrs_cap, ctx->naddrs,
			 sizeof(*ctx->addrs)) < 0 ||
	    addr_index_add(&ctx->addr_ix, &addr, ctx->naddrs) < 0) {
		cfg_error(cfg, "out of memory");
		return -1;
	}
	ctx->addrs[ctx->naddrs++] = (struct seen_address){ addr, (size_t)(rec - ctx->sections),
							   cfg->line };
	if (rec->naddrs++ == 0)
		rec->first_listen_line = cfg->line;
	for (int kind = 0; kind < LISTEN_KINDS; kind++)
		rec->listens[kind] |= address_is(&addr, kind);
	*(const char **)result = value;
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
		const struct seen_option *s = seen_find(sec, rules[i].option);

		if (s && !seen_section_of(sec)->listens[rules[i].needs]) {
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
		const struct seen_option *s = seen_find(sec, exec_only[i]);

		if (s) {
			cfg_error(cfg, "service '%s': '%s' (line %d) applies to handler \"exec\" only",
				  cfg_title(sec), exec_only[i], s->line);
			return -1;
		}
	}
	return 0;
}

/* Runs at a service's closing brace, so cfg->line points there. */
static int cb_service_done(cfg_t *cfg, cfg_opt_t *opt)
{
	cfg_t *sec = cfg_opt_getnsec(opt, cfg_opt_size(opt) - 1);
	const struct seen_section *rec = seen_section_of(sec);
	const struct seen_option *busy = seen_in(rec, "busy-message");

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

static cfg_opt_t service_opts[] = {
	CFG_STR_LIST_CB("listen", NULL, CFGF_NODEFAULT, cb_listen),
	CFG_STR_CB("handler", NULL, CFGF_NODEFAULT, cb_string),
	CFG_INT_CB("workers", 1, CFGF_NONE, cb_number),
	CFG_INT_CB("backlog", 511, CFGF_NONE, cb_number),
	CFG_INT_CB("max-connections", 1024, CFGF_NONE, cb_number),
	CFG_INT_CB("idle-timeout", 60000, CFGF_NONE, cb_number),
	CFG_INT_CB("socket-mode", 0666, CFGF_NONE, cb_number),
	CFG_STR_CB("socket-owner", NULL, CFGF_NODEFAULT, cb_string),
	CFG_STR_CB("socket-group", NULL, CFGF_NODEFAULT, cb_string),
	CFG_STR_LIST_CB("exec", NULL, CFGF_NODEFAULT, cb_exec),
	CFG_STR_LIST_CB("env", NULL, CFGF_NODEFAULT, cb_env),
	CFG_STR_CB("directory", "/", CFGF_NONE, cb_string),
	CFG_INT_CB("exec-timeout", 0, CFGF_NONE, cb_number),
	CFG_INT_CB("exec-kill-grace", 5000, CFGF_NONE, cb_number),
	CFG_STR_CB("exec-stderr", "log", CFGF_NONE, cb_string),
	CFG_STR_LIST_CB("allow", NULL, CFGF_NODEFAULT, cb_range),
	CFG_STR_LIST_CB("deny", NULL, CFGF_NODEFAULT, cb_range),
	CFG_STR_LIST_CB("allow-users", NULL, CFGF_NODEFAULT, cb_principal),
	CFG_STR_LIST_CB("allow-groups", NULL, CFGF_NODEFAULT, cb_principal),
	CFG_INT_CB("max-per-source", 0, CFGF_NONE, cb_number),
	CFG_INT_CB("max-service-connections", 0, CFGF_NONE, cb_number),
	CFG_STR_CB("busy-message", NULL, CFGF_NODEFAULT, cb_string),
	CFG_STR_CB("user", NULL, CFGF_NODEFAULT, cb_string),
	CFG_STR_CB("group", NULL, CFGF_NODEFAULT, cb_string),
	CFG_END()
};

_Static_assert(sizeof(service_opts) / sizeof(service_opts[0]) <= SEEN_OPTIONS_MAX,
	       "a seen_section holds every option of a service");

static cfg_opt_t root_opts[] = {
	CFG_STR_CB("user", NULL, CFGF_NODEFAULT, cb_string),
	CFG_STR_CB("group", NULL, CFGF_NODEFAULT, cb_string),
	CFG_STR_CB("pidfile", NULL, CFGF_NODEFAULT, cb_string),
	CFG_STR_CB("log-level", "info", CFGF_NONE, cb_string),
	CFG_INT_CB("shutdown-timeout", 30000, CFGF_NONE, cb_number),
	CFG_SEC("service", service_opts, CFGF_MULTI | CFGF_TITLE | CFGF_NO_TITLE_DUPES),
	CFG_END()
};

static int line_of(const char *text, const char *at)
{
	int line = 1;

	for (const char *p = text; p < at; p++)
		line += *p == '\n';
	return line;
}

/* O_NONBLOCK: opening a FIFO for reading would otherwise wait for a writer,
 * and the master reads the file in its loop. A regular file ignores it. */
static char *read_file(const char *path, char *err, size_t errlen)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	char *buf = NULL, *nul;
	size_t len = 0;
	struct stat st;

	if (fd < 0) {
		snprintf(err, errlen, "%s: cannot open: %s", path, strerror(errno));
		return NULL;
	}
	if (fstat(fd, &st) < 0) {
		snprintf(err, errlen, "%s: fstat: %s", path, strerror(errno));
		goto fail;
	}
	if (!S_ISREG(st.st_mode)) {
		snprintf(err, errlen, "%s: not a regular file (a FIFO, device, socket or directory "
			 "is not read as a config)", path);
		goto fail;
	}
	if (st.st_size > CONF_FILE_MAX) {
		snprintf(err, errlen, "%s: larger than %d bytes", path, CONF_FILE_MAX);
		goto fail;
	}
	buf = malloc((size_t)st.st_size + 1);
	if (!buf) {
		snprintf(err, errlen, "%s: out of memory", path);
		goto fail;
	}
	while (len < (size_t)st.st_size) {
		ssize_t n = read(fd, buf + len, (size_t)st.st_size - len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			snprintf(err, errlen, "%s: read: %s", path, strerror(errno));
			goto fail;
		}
		if (n == 0)
			break;
		len += (size_t)n;
	}
	buf[len] = '\0';
	nul = memchr(buf, '\0', len);
	if (nul) {
		snprintf(err, errlen, "%s:%d: contains a NUL byte; not a text file", path,
			 line_of(buf, nul));
		goto fail;
	}
	close(fd);
	return buf;
fail:
	free(buf);
	close(fd);
	return NULL;
}

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
		lookup_user(cfg_getnstr(sec, "allow-users", (unsigned)i), &svc->allow_users[i], NULL);
	for (size_t i = 0; i < svc->nallow_groups; i++)
		lookup_group(cfg_getnstr(sec, "allow-groups", (unsigned)i), &svc->allow_groups[i]);
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
		lookup_user(user, &id->uid, &id->gid);
	if (group)
		lookup_group(group, &id->gid);
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
		lookup_user(owner, &svc->socket_uid, NULL);
	if (group)
		lookup_group(group, &svc->socket_gid);
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

static struct config *build_config(cfg_t *cfg, const char *path)
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
	for (size_t i = 0; i < conf->nservices && i + 1 < ctx->nsections; i++) {
		const struct seen_option *exec = seen_in(&ctx->sections[i + 1], "exec");
		const struct seen_option *dir = seen_in(&ctx->sections[i + 1], "directory");

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

	for (size_t i = 0; i < conf->nservices && i + 1 < ctx->nsections; i++) {
		const struct service *svc = &conf->services[i];
		const struct seen_option *mc = seen_in(&ctx->sections[i + 1], "max-connections");
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

static struct config *conf_free_null(struct config *conf)
{
	conf_free(conf);
	return NULL;
}

/* libconfuse 3.3 fails without a word on an empty option name ("" = 1):
 * cfg_getopt() refuses "" with EINVAL before anything would report it. The
 * line is the innermost section's: a section that fails does not hand its
 * line count back to the root. */
static void report_silent_failure(cfg_t *cfg, const char *path, char *err, size_t errlen)
{
	unsigned n = cfg_size(cfg, "service");
	int line = cfg->line;

	if (n > 0 && cfg_getnsec(cfg, "service", n - 1)->line > line)
		line = cfg_getnsec(cfg, "service", n - 1)->line;
	snprintf(err, errlen, "%s:%d: an option name is empty (\"\" or '' where a name belongs)",
		 path, line);
}

static cfg_t *parse_text(const char *path, const char *text, char *err, size_t errlen)
{
	char why[CONF_ERR_MAX / 2], *clean;
	int bad_line = 0;
	cfg_t *cfg;

	clean = conf_clean_text(text, &bad_line, why, sizeof(why));
	if (!clean) {
		snprintf(err, errlen, "%s: out of memory", path);
		return NULL;
	}
	if (bad_line) {
		snprintf(err, errlen, "%s:%d: %s", path, bad_line, why);
		free(clean);
		return NULL;
	}
	cfg = cfg_init(root_opts, CFGF_NONE);
	if (!cfg) {
		snprintf(err, errlen, "%s: out of memory", path);
		free(clean);
		return NULL;
	}
	cfg_set_error_function(cfg, conf_errfunc);
	cfg_set_validate_func(cfg, "service", cb_service_done);
	if (!seen_section_of(cfg)) {	/* record 0: the root */
		snprintf(err, errlen, "%s: out of memory", path);
		cfg_free(cfg);
		free(clean);
		return NULL;
	}
	if (cfg_parse_buf(cfg, clean) != CFG_SUCCESS) {
		if (!ctx->failed)
			report_silent_failure(cfg, path, err, errlen);
		cfg_free(cfg);
		cfg = NULL;
	}
	free(clean);
	return cfg;
}

struct config *conf_load(const char *path, char *err, size_t errlen)
{
	struct parse_ctx pc = { .path = path, .err = err, .errlen = errlen };
	struct config *conf = NULL;
	char *text;
	cfg_t *cfg = NULL;

	err[0] = '\0';
	text = read_file(path, err, errlen);
	if (!text)
		goto out;
	ctx = &pc;
	cfg = parse_text(path, text, err, errlen);
	if (!cfg)
		goto out;
	if (cfg_size(cfg, "service") == 0) {
		snprintf(err, errlen, "%s: no service is defined", path);
		goto out;
	}
	conf = build_config(cfg, path);
	if (!conf)
		snprintf(err, errlen, "%s: out of memory", path);
	else if (check_exec_access(conf, err, errlen) < 0 || check_descriptors(conf, err, errlen) < 0)
		conf = conf_free_null(conf);
out:
	if (ctx)
		env_names_reset();
	ctx = NULL;
	addr_index_clear(&pc.addr_ix);
	free(pc.addrs);
	free(pc.sections);
	if (cfg)
		cfg_free(cfg);
	free(text);
	return conf;
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

const struct service *conf_find_service(const struct config *conf, const char *name)
{
	for (size_t i = 0; i < conf->nservices; i++)
		if (strcmp(conf->services[i].name, name) == 0)
			return &conf->services[i];
	return NULL;
}
