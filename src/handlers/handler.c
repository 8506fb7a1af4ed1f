/* SPDX-License-Identifier: ISC */
/* handler.c - the table of built-in handlers, looked up by the name used in the config. */
#include "config.h"

#include "handlers/handler.h"

#include <string.h>

#include "common/array.h"

const struct handler handler_app = { .name = "app", .app = true };

static const struct handler *const handlers[] = {
	&handler_echo,
	&handler_exec,
	&handler_app,
	&handler_proxy,
};

const struct handler *handler_find(const char *name)
{
	for (size_t i = 0; i < ARRAY_SIZE(handlers); i++)
		if (strcmp(handlers[i]->name, name) == 0)
			return handlers[i];
	return NULL;
}

const char *handler_names(void)
{
	static char names[128];

	if (names[0] == '\0')
		for (size_t i = 0; i < ARRAY_SIZE(handlers); i++) {
			if (i > 0)
				strncat(names, ", ", sizeof(names) - strlen(names) - 1);
			strncat(names, handlers[i]->name, sizeof(names) - strlen(names) - 1);
		}
	return names;
}
