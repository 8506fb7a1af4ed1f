/* SPDX-License-Identifier: ISC */
/* ctlreq.h - one request line of the control socket, read into what it asks. */
#ifndef PREFORKD_CTLREQ_H
#define PREFORKD_CTLREQ_H

#include <stdbool.h>

enum ctl_request_kind {
	CTL_NONE,		/* an empty line asks nothing */
	CTL_STATUS,
	CTL_RELOAD,
	CTL_STOP,
	CTL_STOP_FAST,
	CTL_SCALE,		/* service, count (count_ok: it is a number of workers) */
	CTL_RECYCLE,		/* service */
	CTL_UPGRADE,		/* the binary at the path we run from, in place */
	CTL_UNKNOWN,		/* word (the first), more (there were others) */
};

struct ctl_request {
	enum ctl_request_kind kind;
	const char *word;	/* points into the line */
	const char *service;
	const char *count_text;	/* scale: the word that should be a number */
	unsigned long count;
	bool count_ok;
	bool more;
};

/* Splits line (changed in place: words are cut out of it) into words
 * separated by spaces or tabs, and says what they ask. */
void ctlreq_parse(char *line, struct ctl_request *r);

#endif
