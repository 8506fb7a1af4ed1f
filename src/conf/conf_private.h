/* SPDX-License-Identifier: ISC */
/* conf_private.h - what the files of src/conf/ share: the parse in progress and their entry points. */
#ifndef PREFORKD_CONF_PRIVATE_H
#define PREFORKD_CONF_PRIVATE_H

#include <confuse.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "common/address.h"
#include "common/addrindex.h"
#include "conf/conf.h"
#include "conf/options.h"

/* What the callbacks saw in one section: the root (record 0) or a service
 * (record i + 1 is service i). */
struct seen_section {
	cfg_t *section;
	int lines[CONF_NOPTIONS];	/* where each option was given; 0: not given */
	size_t naddrs;			/* listen addresses parsed in it */
	bool listens[CONF_LISTEN_KINDS];	/* has a listen address of that kind */
};

struct seen_address {
	struct address addr;
	size_t section;		/* its seen_section */
	int line;
};

/* The parse in progress. libconfuse callbacks carry no user pointer, so it
 * is global; parsing is single-threaded and never re-entered. */
struct conf_parse {
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
};
extern struct conf_parse *conf_parsing;

/* conf.c: the records of the parse. */
struct seen_section *conf_seen_section(cfg_t *section);
/* The record of a section already parsed (for building the snapshot); NULL. */
const struct seen_section *conf_seen_lookup(cfg_t *section);
/* The line where this "env" list gave name before (0: it did not), or -1
 * when out of memory; a list that starts anew forgets the names. */
int conf_env_name_seen(cfg_t *cfg, const char *name, size_t len, bool new_list);

/* conf_check.c */
/* A name or a decimal id; the id is what a chown() needs. 0, or -1. */
int conf_lookup_user(const char *name, uid_t *uid, gid_t *gid);
int conf_lookup_group(const char *name, gid_t *gid);
/* A value of o as it is parsed, index its place in its list: 0 (a number
 * in *number), or -1 after cfg_error(). */
int conf_check_value(cfg_t *cfg, const struct conf_option *o, const char *value, unsigned index,
		     long *number);
/* A listen address, parsed into *addr and checked against those before it. */
int conf_check_listen(cfg_t *cfg, const char *value, struct address *addr);
/* libconfuse's validate callback of a service, at its closing brace. */
int conf_check_service(cfg_t *cfg, cfg_opt_t *opt);
/* What needs the whole file: exec access, descriptors. 0, or -1 with err. */
int conf_check_config(const struct config *conf, char *err, size_t errlen);
/* The special rules the option table names. */
conf_check_fn conf_check_user, conf_check_group, conf_check_log_level, conf_check_handler,
	conf_check_absolute_path, conf_check_directory, conf_check_exec, conf_check_env,
	conf_check_range, conf_check_control_socket, conf_check_metrics_listen,
	conf_check_upstream;

/* conf_build.c: the snapshot of a parsed file; NULL when out of memory. */
struct config *conf_build(cfg_t *cfg, const char *path);
/* What builds the options the kind of their field does not say how. */
conf_build_fn conf_build_log_level, conf_build_handler, conf_build_uid, conf_build_gid,
	conf_build_addresses, conf_build_ranges, conf_build_uids, conf_build_gids, conf_build_signal;

/* conf_access.c: where a service's options are. */
struct conf_lines {
	int exec, directory;	/* 0: not given */
};
/* Checks that every exec service's identity can execute exec[0] and search
 * its directory: 0, or -1 with "FILE:LINE: ..." in err. */
int conf_check_exec_access(const struct config *conf, const struct conf_lines *lines,
			   char *err, size_t errlen);

/* conf_text.c: a copy of text with comments blanked (newlines kept).
 * *bad_line is the line of the first construct libconfuse would read as
 * something else than what it says (0: none), with the reason in why. */
char *conf_clean_text(const char *text, int *bad_line, char *why, size_t whylen);
/* One to five octal digits: 0, -1 (not octal) or -2 (out of range). */
int conf_parse_octal(const char *s, long min, long max, long *out);

#endif
