/* SPDX-License-Identifier: ISC */
/* conf.c - reading a config: the libconfuse schema from the option table, its callbacks, the records of each section, the API.
 *
 * Every check that can point at a line runs inside a libconfuse callback,
 * the only place where the parser's line number is known. The callbacks
 * record what each section holds (the line of each option, its listen
 * addresses) and hand the values to conf_check.c. libconfuse callbacks
 * carry no user pointer, so the parse in progress is conf_parsing. */
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

#define CONF_FILE_MAX (1024 * 1024)

struct conf_parse *conf_parsing;

__attribute__((format(printf, 2, 0)))
static void conf_errfunc(cfg_t *cfg, const char *fmt, va_list ap)
{
	struct conf_parse *p = conf_parsing;
	char msg[CONF_ERR_MAX];

	if (p->failed++)
		return;	/* the first error is the one that explains the rest */
	vsnprintf(msg, sizeof(msg), fmt, ap);
	if (cfg && cfg->line > 0)
		snprintf(p->err, p->errlen, "%s:%d: %s", p->path, cfg->line, msg);
	else
		snprintf(p->err, p->errlen, "%s: %s", p->path, msg);
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
	struct conf_parse *p = conf_parsing;
	struct seen_section *last = p->nsections ? &p->sections[p->nsections - 1] : NULL;

	if (last && last->section == section)
		return last;
	if (p->nsections && p->sections[0].section == section)
		return &p->sections[0];
	if (grow((void **)&p->sections, &p->sections_cap, p->nsections, sizeof(*p->sections)) < 0)
		return NULL;
	last = &p->sections[p->nsections++];
	*last = (struct seen_section){ .section = section };
	return last;
}

const struct seen_section *conf_seen_lookup(cfg_t *section)
{
	for (size_t i = 0; conf_parsing && i < conf_parsing->nsections; i++)
		if (conf_parsing->sections[i].section == section)
			return &conf_parsing->sections[i];
	return NULL;
}

/* libconfuse lets a later "workers = 3" silently replace an earlier one;
 * an operator who wrote it twice made a mistake worth hearing about. */
static int seen_once(cfg_t *cfg, const struct conf_option *o)
{
	struct seen_section *rec = conf_seen_section(cfg);
	int *line = rec ? &rec->lines[o - conf_options] : NULL;

	if (!rec) {
		cfg_error(cfg, "out of memory");
		return -1;
	}
	if (*line) {
		cfg_error(cfg, "option '%s' is given twice (first at line %d)", o->name, *line);
		return -1;
	}
	*line = cfg->line;
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

int conf_env_name_seen(cfg_t *cfg, const char *name, size_t len, bool new_list)
{
	struct env_name *n = malloc(sizeof(*n)), **found;
	int line;

	if (new_list)
		env_names_reset();
	if (!n || !(n->name = strndup(name, len))) {
		free(n);
		return -1;
	}
	n->line = cfg->line;
	found = tsearch(n, &conf_parsing->env_names, env_name_cmp);
	if (!found) {
		env_name_free(n);
		return -1;
	}
	if (*found == n)
		return 0;
	line = (*found)->line;
	env_name_free(n);
	return line;
}

/* Every value of every option but "listen". */
static int cb_value(cfg_t *cfg, cfg_opt_t *opt, const char *value, void *result)
{
	const struct conf_option *o = conf_option_find(opt->name);
	/* A list's first value (libconfuse has added its slot already) starts it. */
	unsigned index = o->type == CONF_STRINGS ? opt->nvalues - 1 : 0;
	long number = 0;

	if (index == 0 && seen_once(cfg, o) < 0)
		return -1;
	if (conf_check_value(cfg, o, value, index, &number) < 0)
		return -1;
	if (opt->type == CFGT_INT)
		*(long *)result = number;
	else
		*(const char **)result = value;
	return 0;
}

static bool address_is(const struct address *a, enum conf_listen_kind kind)
{
	switch (kind) {
	case CONF_LISTEN_UNIX_PATH:
		return address_unix_path(a) != NULL;
	case CONF_LISTEN_UNIX:
		return a->family == AF_UNIX;
	case CONF_LISTEN_IP:
		return a->family != AF_UNIX;
	default:
		return true;
	}
}

/* A "listen" address. The list is checked whole at the service's closing
 * brace: a second "listen =" shows as more addresses seen than kept. */
static int cb_listen(cfg_t *cfg, cfg_opt_t *opt, const char *value, void *result)
{
	struct conf_parse *p = conf_parsing;
	struct seen_section *rec = conf_seen_section(cfg);
	struct address addr;

	(void)opt;
	if (conf_check_listen(cfg, value, &addr) < 0)
		return -1;
	if (!rec || grow((void **)&p->addrs, &p->addrs_cap, p->naddrs, sizeof(*p->addrs)) < 0 ||
	    addr_index_add(&p->addr_ix, &addr, p->naddrs) < 0) {
		cfg_error(cfg, "out of memory");
		return -1;
	}
	p->addrs[p->naddrs++] = (struct seen_address){ addr, (size_t)(rec - p->sections), cfg->line };
	if (rec->naddrs++ == 0)
		rec->lines[CONF_OPT_LISTEN] = cfg->line;
	for (int kind = 0; kind < CONF_LISTEN_KINDS; kind++)
		rec->listens[kind] |= address_is(&addr, kind);
	*(const char **)result = value;
	return 0;
}

/* libconfuse's schema of one scope, from the option table, ended by
 * CFG_END() at the count it returns. A list has no default, a number always one. */
static size_t schema_of(enum conf_scope scope, cfg_opt_t *opts)
{
	size_t n = 0;

	for (size_t i = 0; i < CONF_NOPTIONS; i++) {
		const struct conf_option *o = &conf_options[i];
		cfg_flag_t flags = o->def_str ? CFGF_NONE : CFGF_NODEFAULT;

		if (!(o->scope & scope))
			continue;
		switch (o->type) {
		case CONF_COUNT:
		case CONF_DURATION:
		case CONF_OCTAL:
		case CONF_SIZE:
			opts[n++] = (cfg_opt_t)CFG_INT_CB(o->name, o->def, CFGF_NONE, cb_value);
			break;
		case CONF_STRING:
		case CONF_ENUM:
			opts[n++] = (cfg_opt_t)CFG_STR_CB(o->name, o->def_str, flags, cb_value);
			break;
		case CONF_STRINGS:
			opts[n++] = (cfg_opt_t)CFG_STR_LIST_CB(o->name, NULL, CFGF_NODEFAULT, cb_value);
			break;
		case CONF_ADDRESSES:
			opts[n++] = (cfg_opt_t)CFG_STR_LIST_CB(o->name, NULL, CFGF_NODEFAULT, cb_listen);
			break;
		}
	}
	opts[n] = (cfg_opt_t)CFG_END();
	return n;
}

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
	cfg_opt_t service_opts[CONF_NOPTIONS + 1], root_opts[CONF_NOPTIONS + 2];
	char why[CONF_ERR_MAX / 2], *clean;
	int bad_line = 0;
	size_t nroot;
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
	/* cfg_init() copies the schema: it may live on the stack. */
	schema_of(CONF_SERVICE, service_opts);
	nroot = schema_of(CONF_ROOT, root_opts);
	root_opts[nroot] = (cfg_opt_t)CFG_SEC("service", service_opts,
					      CFGF_MULTI | CFGF_TITLE | CFGF_NO_TITLE_DUPES);
	root_opts[nroot + 1] = (cfg_opt_t)CFG_END();
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

/* Parses text (NUL-terminated; path names it in messages) into a checked config. */
static struct config *load_text(const char *path, const char *text, char *err, size_t errlen)
{
	struct conf_parse pc = { .path = path, .err = err, .errlen = errlen };
	struct config *conf = NULL;
	cfg_t *cfg = NULL;

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
	return conf;
}

struct config *conf_load(const char *path, char *err, size_t errlen)
{
	struct config *conf;
	char *text;

	err[0] = '\0';
	text = read_file(path, err, errlen);
	if (!text)
		return NULL;
	conf = load_text(path, text, err, errlen);
	if (conf)
		conf->text = text;	/* what an upgrade hands on (handover.c) */
	else
		free(text);
	return conf;
}

struct config *conf_load_text(const char *path, const char *text, char *err, size_t errlen)
{
	struct config *conf;

	err[0] = '\0';
	if (strlen(text) > CONF_FILE_MAX) {
		snprintf(err, errlen, "%s: larger than %d bytes", path, CONF_FILE_MAX);
		return NULL;
	}
	conf = load_text(path, text, err, errlen);
	if (conf && !(conf->text = strdup(text))) {
		snprintf(err, errlen, "%s: out of memory", path);
		conf = conf_free_null(conf);
	}
	return conf;
}

const struct service *conf_find_service(const struct config *conf, const char *name)
{
	for (size_t i = 0; i < conf->nservices; i++)
		if (strcmp(conf->services[i].name, name) == 0)
			return &conf->services[i];
	return NULL;
}
