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
	if (!copy)
		return;	/* the title stays what it was */
	for (size_t i = 0; i < n; i++) {
		if (environ[i] == end)
			end = environ[i] + strlen(environ[i]) + 1;
		copy[i] = strdup(environ[i]);
		if (!copy[i])
			return;	/* leaks a little, once, and keeps the old title */
	}
	environ = copy;
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
