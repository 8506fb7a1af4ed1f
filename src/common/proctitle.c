/* SPDX-License-Identifier: ISC */
/* proctitle.c - what ps shows for a process: "preforkd: master (generation 3)", "preforkd: worker echo#1 (generation 3)".
 *
 * ps reads /proc/PID/cmdline, which is the memory argv points into: the
 * strings of argv, and after them the environment's. Those are moved out
 * of the way once (environ to copies of its strings), and the title is
 * written over the whole area, NUL-padded, so ps shows it as one
 * argument, as nginx and PostgreSQL do. */
#include "config.h"

#include "common/proctitle.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

extern char **environ;

static char *area;
static size_t area_len;
/* The copy of the environment, kept: setenv() and unsetenv() replace
 * environ or drop strings from it, and these are the process's for its
 * whole life. */
static char **volatile env_array, **volatile env_strings;	/* volatile: kept, though never read */

void proctitle_init(int argc, char **argv)
{
	char *end = argv[0] + strlen(argv[0]) + 1;
	size_t n = 0;
	char **copy;

	/* The area: every argv and environment string that follows the one
	 * before it without a gap. */
	for (int i = 1; i < argc && argv[i] == end; i++)
		end = argv[i] + strlen(argv[i]) + 1;
	while (environ[n])
		n++;
	copy = calloc(n + 1, sizeof(*copy));
	env_strings = calloc(n + 1, sizeof(*env_strings));
	if (!copy || !env_strings) {
		free(copy);
		free(env_strings);
		env_strings = NULL;
		return;	/* the title stays what it was */
	}
	for (size_t i = 0; i < n; i++) {
		if (environ[i] == end)
			end = environ[i] + strlen(environ[i]) + 1;
		copy[i] = env_strings[i] = strdup(environ[i]);
		if (!copy[i])
			return;	/* keeps the old title */
	}
	environ = env_array = copy;
	area = argv[0];
	area_len = (size_t)(end - argv[0]);
}

void proctitle_set(const char *fmt, ...)
{
	va_list ap;
	int n;

	if (!area || area_len < 2)
		return;
	va_start(ap, fmt);
	n = vsnprintf(area, area_len, fmt, ap);
	va_end(ap);
	if (n >= 0 && (size_t)n < area_len)
		memset(area + n, '\0', area_len - (size_t)n);
}
