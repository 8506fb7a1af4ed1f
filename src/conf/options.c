/* SPDX-License-Identifier: ISC */
/* options.c - the table of config options, made from options.def, and how its defaults are written. */
#include "config.h"

#include "conf/options.h"

#include <stdio.h>
#include <string.h>

#include "conf/conf.h"
#include "conf/conf_private.h"

#define SECONDS(n) ((n) * 1000L)
#define HOURS(n) ((n) * 3600000L)
#define NAMES(...) ((const char *const[]){ __VA_ARGS__, NULL })

/* The kind of a snapshot field, from its C type: a field of any other type
 * does not compile. */
#define FIELD_KIND(lvalue) _Generic((lvalue),					\
	unsigned: CONF_FIELD_UNSIGNED, int: CONF_FIELD_INT, bool: CONF_FIELD_BOOL,	\
	char *: CONF_FIELD_STRING, char **: CONF_FIELD_STRINGS,			\
	const struct handler *: CONF_FIELD_REFERENCE,				\
	struct address *: CONF_FIELD_ARRAY, struct cidr *: CONF_FIELD_ARRAY,	\
	unsigned *: CONF_FIELD_ARRAY)
#define SERVICE_FIELD(f) { FIELD_KIND(((struct service *)0)->f), offsetof(struct service, f), 0 }
#define ROOT_FIELD(f) { FIELD_KIND(((struct config *)0)->f), offsetof(struct config, f), 0 }
#define ROOT_ARRAY(f, n) { FIELD_KIND(((struct config *)0)->f), offsetof(struct config, f), \
			   offsetof(struct config, n) }
#define SERVICE_ARRAY(f, n) { FIELD_KIND(((struct service *)0)->f), offsetof(struct service, f), \
			      offsetof(struct service, n) }

const struct conf_option conf_options[CONF_NOPTIONS] = {
#define OPTION(id, ...) [CONF_OPT_##id] = { __VA_ARGS__ },
#include "conf/options.def"
#undef OPTION
};

const struct conf_option *conf_option_find(const char *name)
{
	for (size_t i = 0; i < CONF_NOPTIONS; i++)
		if (strcmp(conf_options[i].name, name) == 0)
			return &conf_options[i];
	return NULL;
}

int conf_option_name_index(const struct conf_option *o, const char *value)
{
	for (int i = 0; o->names && o->names[i]; i++)
		if (strcmp(o->names[i], value) == 0)
			return i;
	return -1;
}

bool conf_option_applies(const struct conf_option *o, const char *handler)
{
	for (size_t i = 0; o->handlers && o->handlers[i]; i++)
		if (strcmp(o->handlers[i], handler) == 0)
			return true;
	return !o->handlers && !(o->accepting && strcmp(handler, "app") == 0);
}

const char *conf_option_handlers_text(const struct conf_option *o, char *buf, size_t len)
{
	size_t n = 0;

	buf[0] = '\0';
	for (size_t i = 0; o->handlers && o->handlers[i] && n < len; i++)
		n += (size_t)snprintf(buf + n, len - n, "%s\"%s\"", i == 0 ? "" :
				      o->handlers[i + 1] ? ", " : " and ", o->handlers[i]);
	return buf;
}

const char *conf_option_default_text(const struct conf_option *o, char *buf, size_t len)
{
	if (o->def_str)
		return o->def_str;	/* a number's default that depends on another option */
	switch (o->type) {
	case CONF_COUNT:
		snprintf(buf, len, "%ld", o->def);
		return buf;
	case CONF_DURATION:
		if (o->def == 0)
			snprintf(buf, len, "0");
		else if (o->def % 1000 == 0)
			snprintf(buf, len, "%lds", o->def / 1000);
		else
			snprintf(buf, len, "%ldms", o->def);
		return buf;
	case CONF_OCTAL:
		snprintf(buf, len, "%04lo", o->def);
		return buf;
	case CONF_SIZE:
		snprintf(buf, len, "%ld%s", o->def ? o->def >> 10 : 0, o->def ? "M" : "");
		return buf;
	case CONF_STRING:
	case CONF_ENUM:
		return o->def_str;
	default:
		return NULL;	/* a list starts empty */
	}
}
