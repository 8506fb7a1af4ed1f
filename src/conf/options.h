/* SPDX-License-Identifier: ISC */
/* options.h - the config options: one entry each in options.def, read through struct conf_option. */
#ifndef PREFORKD_CONF_OPTIONS_H
#define PREFORKD_CONF_OPTIONS_H

#include <confuse.h>
#include <stdbool.h>
#include <stddef.h>

/* Where an option may be given. One given in both means a service's own
 * value replaces the global one. */
enum conf_scope { CONF_ROOT = 1, CONF_SERVICE = 2, CONF_BOTH = CONF_ROOT | CONF_SERVICE };

enum conf_type {
	CONF_COUNT,	/* decimal, no leading zero */
	CONF_DURATION,	/* seconds, or a number with ms, s, m or h; kept in ms */
	CONF_OCTAL,	/* a mode: one to five octal digits */
	CONF_SIZE,	/* bytes, or a number with K, M, G or T; kept in KiB */
	CONF_STRING,
	CONF_ENUM,	/* one of names */
	CONF_STRINGS,	/* a list of strings */
	CONF_ADDRESSES,	/* "listen": a list of addresses, counted per service */
};

/* The kind of listen address an option needs in its service. */
enum conf_listen_kind {
	CONF_LISTEN_ANY,
	CONF_LISTEN_UNIX_PATH,	/* unix:/path (a socket file) */
	CONF_LISTEN_UNIX,	/* unix:, unixgram:, a path or abstract */
	CONF_LISTEN_IP,		/* IPv4 or IPv6, stream or datagram */
	CONF_LISTEN_KINDS
};

/* What an option's field in the snapshot holds, from its C type. */
enum conf_field_kind {
	CONF_FIELD_NONE,	/* no field of its own (user and group: run_as) */
	CONF_FIELD_UNSIGNED,
	CONF_FIELD_INT,
	CONF_FIELD_BOOL,	/* an enum of two names: the second is true */
	CONF_FIELD_STRING,	/* owned; NULL when not set */
	CONF_FIELD_STRINGS,	/* owned, NULL-terminated */
	CONF_FIELD_REFERENCE,	/* not owned */
	CONF_FIELD_ARRAY,	/* owned, with a size_t count beside it */
};

/* Where a value goes: in struct service, or in struct config for a root option. */
struct conf_field {
	enum conf_field_kind kind;
	size_t offset;
	size_t count;		/* arrays: the offset of their count */
};

struct conf_option;
/* What a value must be beyond its type: 0, or -1 after cfg_error(). index
 * is the value's place in its list (0 for a single value). */
typedef int conf_check_fn(cfg_t *cfg, const struct conf_option *o, const char *value,
			  unsigned index);
/* Fills field (and *count, for an array) from section sec: 0, or -1 when
 * out of memory; the values were checked as they were parsed. */
typedef int conf_build_fn(cfg_t *sec, const struct conf_option *o, void *field, size_t *count);

struct conf_option {
	const char *name;
	enum conf_scope scope;
	enum conf_type type;
	long def;			/* numbers: the default (durations in ms) */
	const char *def_str;		/* strings and enums: the default; NULL: not set */
	bool required;			/* a service must have it where it applies (each is
					 * checked with its own message; the man page says so) */
	long min, max;			/* numbers: the range; strings: max is the longest, in bytes */
	const char *range;		/* numbers: the range as messages and the man page say it */
	const char *const *names;	/* enums: the values, NULL-terminated */
	const char *const *handlers;	/* applies to these handlers only; NULL: to every handler */
	bool may_be_empty;		/* strings: "" is a value (it turns something off) */
	bool accepting;			/* means something only where preforkd accepts the
					 * connections (not for handler "app") */
	enum conf_listen_kind needs;	/* the listen address it needs in its service */
	conf_check_fn *check;		/* special rules of a value, or NULL */
	struct conf_field field;	/* where it goes in the snapshot */
	conf_build_fn *build;		/* how it gets there, when not by its field's kind */
};

enum conf_option_id {
#define OPTION(id, ...) CONF_OPT_##id,
#include "conf/options.def"
#undef OPTION
	CONF_NOPTIONS
};

extern const struct conf_option conf_options[CONF_NOPTIONS];

/* The name of an option by its id, as code that means one option says it. */
#define CONF_NAME(id) (conf_options[CONF_OPT_##id].name)

static inline bool conf_option_is_number(const struct conf_option *o)
{
	return o->type == CONF_COUNT || o->type == CONF_DURATION || o->type == CONF_OCTAL ||
	       o->type == CONF_SIZE;
}

/* The option called name, or NULL. */
const struct conf_option *conf_option_find(const char *name);
/* The place of value among the names of an enum option, or -1. */
int conf_option_name_index(const struct conf_option *o, const char *value);
/* Whether o applies to the handler called name. */
bool conf_option_applies(const struct conf_option *o, const char *handler);
/* The handlers o applies to as messages and the man page say them:
 * "exec", "exec" and "app". */
const char *conf_option_handlers_text(const struct conf_option *o, char *buf, size_t len);
/* The default as the man page writes it (30s, 0666, info) into buf, or
 * NULL when the option has none. */
const char *conf_option_default_text(const struct conf_option *o, char *buf, size_t len);

#endif
