/* SPDX-License-Identifier: ISC */
/* httpreq.h - what a metrics client asked for: the request line and Accept of an HTTP/1.x request head. */
#ifndef PREFORKD_HTTPREQ_H
#define PREFORKD_HTTPREQ_H

#include <stdbool.h>

/* What to answer a request head (NUL-terminated, up to its blank line). */
struct http_request {
	int status;		/* 200, or 400, 404, 405 */
	const char *why;	/* the body of a refusal */
	bool head_only;		/* HEAD */
	bool openmetrics;	/* Accept: application/openmetrics-text */
};

void httpreq_parse(const char *head, struct http_request *r);

#endif
