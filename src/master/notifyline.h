/* SPDX-License-Identifier: ISC */
/* notifyline.h - one NAME=VALUE line of an sd_notify message from an app worker, read into what it says. */
#ifndef PREFORKD_NOTIFYLINE_H
#define PREFORKD_NOTIFYLINE_H

#include <stdint.h>

enum notify_kind {
	NOTIFY_OTHER,		/* MAINPID=, FDSTORE=, RELOADING=1, ...: nothing to us */
	NOTIFY_READY,
	NOTIFY_STATUS,		/* text */
	NOTIFY_WATCHDOG,
	NOTIFY_WATCHDOG_TRIGGER,
	NOTIFY_STOPPING,
	NOTIFY_EXTEND_TIMEOUT,	/* usec */
	NOTIFY_ERRNO,		/* number: 1 to 4095 */
};

struct notify_line {
	enum notify_kind kind;
	const char *text;	/* STATUS=: points into the line */
	uint64_t number;
};

/* What line (one line, NUL-terminated) says; a value that is not what its
 * name needs makes it NOTIFY_OTHER. */
void notifyline_parse(const char *line, struct notify_line *n);

#endif
