/* SPDX-License-Identifier: ISC */
/* httpreq.c - what a metrics client asked for: the request line and Accept of an HTTP/1.x request head.
 *
 * Only "GET /metrics" (or HEAD) over HTTP/1.0 or 1.1 is served; a query
 * string is ignored. Nothing here allocates or writes outside the caller's
 * struct: the head comes from any client (fuzz_http holds it to that). */
#include "config.h"

#include "master/httpreq.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

/* Does the value of the Accept header ask for OpenMetrics? */
static bool wants_openmetrics(const char *head)
{
	for (const char *line = strstr(head, "\r\n"); line && line[2]; line = strstr(line + 2, "\r\n")) {
		const char *h = line + 2;
		size_t end = strcspn(h, "\r");

		if (end >= 7 && strncasecmp(h, "Accept:", 7) == 0) {
			char value[1024];

			snprintf(value, sizeof(value), "%.*s", (int)(end - 7), h + 7);
			return strstr(value, "application/openmetrics-text") != NULL;
		}
	}
	return false;
}

void httpreq_parse(const char *head, struct http_request *r)
{
	char method[16], target[256], version[16];
	size_t line = strcspn(head, "\r\n");

	*r = (struct http_request){ .status = 400,
				    .why = "a request line is GET /metrics HTTP/1.1\n" };
	if (line >= 300 || sscanf(head, "%15s %255s %15s", method, target, version) != 3 ||
	    (strcmp(version, "HTTP/1.1") != 0 && strcmp(version, "HTTP/1.0") != 0))
		return;
	r->head_only = strcmp(method, "HEAD") == 0;
	if (strcmp(method, "GET") != 0 && !r->head_only) {
		*r = (struct http_request){ .status = 405, .why = "only GET /metrics\n" };
		return;
	}
	target[strcspn(target, "?")] = '\0';
	if (strcmp(target, "/metrics") != 0) {
		*r = (struct http_request){ .status = 404, .why = "the metrics are at /metrics\n" };
		return;
	}
	r->status = 200;
	r->why = NULL;
	r->openmetrics = wants_openmetrics(head);
}
