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
const struct seen_option *conf_seen_in(const struct seen_section *rec, const char *option);

/* conf_check.c */
/* A name or a decimal id; the id is what a chown() needs. 0, or -1. */
int conf_lookup_user(const char *name, uid_t *uid, gid_t *gid);
int conf_lookup_group(const char *name, gid_t *gid);
/* libconfuse's validate callback of a service, at its closing brace. */
int conf_check_service(cfg_t *cfg, cfg_opt_t *opt);
/* What needs the whole file: exec access, descriptors. 0, or -1 with err. */
int conf_check_config(const struct config *conf, char *err, size_t errlen);

/* conf_build.c: the snapshot of a parsed file; NULL when out of memory. */
struct config *conf_build(cfg_t *cfg, const char *path);

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

#endif
