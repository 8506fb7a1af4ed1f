/* conf.c - reading a config file: the libconfuse schema and callbacks, the records of what each section holds, the public API.
 *
 * Every check that can point at a line runs inside a libconfuse callback,
 * the only place where the parser's line number is known. libconfuse
 * callbacks carry no user pointer, so the parse in progress lives in
 * conf_parsing; parsing is single-threaded and never re-entered. */
#include "config.h"

#include "conf/conf.h"
#include "conf/conf_private.h"

#include <confuse.h>
#include <errno.h>
#include <fcntl.h>
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

struct conf_parse *conf_parsing;

__attribute__((format(printf, 2, 0)))
static void conf_errfunc(cfg_t *cfg, const char *fmt, va_list ap)
{
	char msg[CONF_ERR_MAX];

	if (conf_parsing->failed++)
		return;	/* the first error is the one that explains the rest */
	vsnprintf(msg, sizeof(msg), fmt, ap);
	if (cfg && cfg->line > 0)
		snprintf(conf_parsing->err, conf_parsing->errlen, "%s:%d: %s", conf_parsing->path, cfg->line, msg);
	else
		snprintf(conf_parsing->err, conf_parsing->errlen, "%s: %s", conf_parsing->path, msg);
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
struct seen_section *conf_seen_section(cfg_t *section)
{
	struct seen_section *last = conf_parsing->nsections ? &conf_parsing->sections[conf_parsing->nsections - 1] : NULL;

	if (last && last->section == section)
		return last;
	if (conf_parsing->nsections && conf_parsing->sections[0].section == section)
		return &conf_parsing->sections[0];
	if (grow((void **)&conf_parsing->sections, &conf_parsing->sections_cap, conf_parsing->nsections,
		 sizeof(*conf_parsing->sections)) < 0)
		return NULL;
	last = &conf_parsing->sections[conf_parsing->nsections++];
	*last = (struct seen_section){ .section = section };
	return last;
}

const struct seen_option *conf_seen_in(const struct seen_section *rec, const char *option)
{
	for (size_t i = 0; rec && i < rec->nopts; i++)
		if (strcmp(rec->opts[i].option, option) == 0)
			return &rec->opts[i];
	return NULL;
}

/* libconfuse lets a later "workers = 3" silently replace an earlier one;
 * an operator who wrote it twice made a mistake worth hearing about. */
static int seen_once(cfg_t *cfg, cfg_opt_t *opt)
{
	struct seen_section *rec = conf_seen_section(cfg);
	const struct seen_option *prev = conf_seen_in(rec, opt->name);

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
	    conf_lookup_user(value, &uid, NULL) < 0) {
		cfg_error(cfg, "option '%s': no such user \"%s\"", opt->name, value);
		return -1;
	}
	if ((strcmp(opt->name, "group") == 0 || strcmp(opt->name, "socket-group") == 0) &&
	    conf_lookup_group(value, &gid) < 0) {
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
	tdestroy(conf_parsing->env_names, env_name_free);
	conf_parsing->env_names = NULL;
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
	found = tsearch(n, &conf_parsing->env_names, env_name_cmp);
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
	if (users ? conf_lookup_user(value, &uid, NULL) < 0 : conf_lookup_group(value, &gid) < 0) {
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

static int cb_listen(cfg_t *cfg, cfg_opt_t *opt, const char *value, void *result)
{
	struct seen_section *rec = conf_seen_section(cfg);
	struct address addr;
	char why[CONF_ERR_MAX / 2];

	(void)opt;	/* the list is checked whole at the service's closing brace */
	if (address_parse(value, &addr, why, sizeof(why)) < 0) {
		cfg_error(cfg, "bad listen address %s", why);
		return -1;
	}
	if (check_listen_unique(cfg, &addr) < 0)
		return -1;
	if (!rec || grow((void **)&conf_parsing->addrs, &conf_parsing->addrs_cap, conf_parsing->naddrs,
			 sizeof(*conf_parsing->addrs)) < 0 ||
	    addr_index_add(&conf_parsing->addr_ix, &addr, conf_parsing->naddrs) < 0) {
		cfg_error(cfg, "out of memory");
		return -1;
	}
	conf_parsing->addrs[conf_parsing->naddrs++] = (struct seen_address){ addr, (size_t)(rec - conf_parsing->sections),
							   cfg->line };
	if (rec->naddrs++ == 0)
		rec->first_listen_line = cfg->line;
	for (int kind = 0; kind < LISTEN_KINDS; kind++)
		rec->listens[kind] |= address_is(&addr, kind);
	*(const char **)result = value;
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
	cfg_set_validate_func(cfg, "service", conf_check_service);
	if (!conf_seen_section(cfg)) {	/* record 0: the root */
		snprintf(err, errlen, "%s: out of memory", path);
		cfg_free(cfg);
		free(clean);
		return NULL;
	}
	if (cfg_parse_buf(cfg, clean) != CFG_SUCCESS) {
		if (!conf_parsing->failed)
			report_silent_failure(cfg, path, err, errlen);
		cfg_free(cfg);
		cfg = NULL;
	}
	free(clean);
	return cfg;
}

struct config *conf_load(const char *path, char *err, size_t errlen)
{
	struct conf_parse pc = { .path = path, .err = err, .errlen = errlen };
	struct config *conf = NULL;
	char *text;
	cfg_t *cfg = NULL;

	err[0] = '\0';
	text = read_file(path, err, errlen);
	if (!text)
		goto out;
	conf_parsing = &pc;
	cfg = parse_text(path, text, err, errlen);
	if (!cfg)
		goto out;
	if (cfg_size(cfg, "service") == 0) {
		snprintf(err, errlen, "%s: no service is defined", path);
		goto out;
	}
	conf = conf_build(cfg, path);
	if (!conf)
		snprintf(err, errlen, "%s: out of memory", path);
	else if (conf_check_config(conf, err, errlen) < 0)
		conf = conf_free_null(conf);
out:
	if (conf_parsing)
		env_names_reset();
	conf_parsing = NULL;
	addr_index_clear(&pc.addr_ix);
	free(pc.addrs);
	free(pc.sections);
	if (cfg)
		cfg_free(cfg);
	free(text);
	return conf;
}

const struct service *conf_find_service(const struct config *conf, const char *name)
{
	for (size_t i = 0; i < conf->nservices; i++)
		if (strcmp(conf->services[i].name, name) == 0)
			return &conf->services[i];
	return NULL;
}
