/* SPDX-License-Identifier: ISC */
/* notifyline.c - one NAME=VALUE line of an sd_notify message from an app worker, read into what it says.
 *
 * The line is whatever an app worker (or anything in its process group)
 * sent: nothing is copied or allocated here (fuzz_notify holds it to that). */
#include "config.h"

#include "master/notifyline.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

/* A number of microseconds, as sd_notify's values are written. */
static bool parse_number(const char *v, uint64_t *out)
{
	char *end;
	unsigned long long n;

	errno = 0;
	n = strtoull(v, &end, 10);
	if (errno || end == v || *end || v[0] < '0' || v[0] > '9')
		return false;
	*out = n;
	return true;
}

void notifyline_parse(const char *line, struct notify_line *n)
{
	*n = (struct notify_line){ .kind = NOTIFY_OTHER };
	if (strcmp(line, "READY=1") == 0) {
		n->kind = NOTIFY_READY;
	} else if (strncmp(line, "STATUS=", 7) == 0) {
		n->kind = NOTIFY_STATUS;
		n->text = line + 7;
	} else if (strcmp(line, "WATCHDOG=1") == 0) {
		n->kind = NOTIFY_WATCHDOG;
	} else if (strcmp(line, "WATCHDOG=trigger") == 0) {
		n->kind = NOTIFY_WATCHDOG_TRIGGER;
	} else if (strcmp(line, "STOPPING=1") == 0) {
		n->kind = NOTIFY_STOPPING;
	} else if (strncmp(line, "EXTEND_TIMEOUT_USEC=", 20) == 0) {
		if (parse_number(line + 20, &n->number))
			n->kind = NOTIFY_EXTEND_TIMEOUT;
	} else if (strncmp(line, "ERRNO=", 6) == 0) {
		if (parse_number(line + 6, &n->number) && n->number > 0 && n->number < 4096)
			n->kind = NOTIFY_ERRNO;
	}
}
