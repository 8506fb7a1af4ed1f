/* SPDX-License-Identifier: ISC */
/* ctlreq.c - one request line of the control socket, read into what it asks.
 *
 * The line comes from any client the socket lets in, up to 1024 bytes: it
 * is only cut into words here, never copied, and a number of workers is
 * digits only (fuzz_control holds it to that). */
#include "config.h"

#include "master/ctlreq.h"

#include <stdlib.h>
#include <string.h>

#define WORDS_MAX 4

void ctlreq_parse(char *line, struct ctl_request *r)
{
	char *words[WORDS_MAX] = { 0 }, *save = NULL, *end;
	size_t n = 0;

	*r = (struct ctl_request){ .kind = CTL_NONE };
	for (char *w = strtok_r(line, " \t", &save); w && n < WORDS_MAX;
	     w = strtok_r(NULL, " \t", &save))
		words[n++] = w;
	if (n == 0)
		return;
	r->word = words[0];
	r->more = n > 1;
	if (n == 1 && strcmp(words[0], "status") == 0)
		r->kind = CTL_STATUS;
	else if (n == 1 && strcmp(words[0], "reload") == 0)
		r->kind = CTL_RELOAD;
	else if (n == 1 && strcmp(words[0], "upgrade") == 0)
		r->kind = CTL_UPGRADE;
	else if (n == 1 && strcmp(words[0], "stop") == 0)
		r->kind = CTL_STOP;
	else if (n == 2 && strcmp(words[0], "stop") == 0 && strcmp(words[1], "fast") == 0)
		r->kind = CTL_STOP_FAST;
	else if (n == 2 && strcmp(words[0], "recycle") == 0)
		r->kind = CTL_RECYCLE;
	else if (n == 3 && strcmp(words[0], "scale") == 0)
		r->kind = CTL_SCALE;
	else
		r->kind = CTL_UNKNOWN;
	if (r->kind == CTL_RECYCLE || r->kind == CTL_SCALE)
		r->service = words[1];
	if (r->kind == CTL_SCALE) {
		r->count_text = words[2];
		r->count = strtoul(words[2], &end, 10);
		r->count_ok = words[2][0] >= '0' && words[2][0] <= '9' && !*end &&
			      r->count <= 1000000;
	}
}
