/* SPDX-License-Identifier: ISC */
/* fuzz_http.c - libFuzzer target: the metrics endpoint's reading of a request head of any bytes. */
#include "config.h"

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "master/httpreq.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *head = malloc(size + 1);
	struct http_request r;

	if (!head)
		return 0;
	memcpy(head, data, size);
	head[size] = '\0';
	httpreq_parse(head, &r);
	if (r.status != 200 && r.status != 400 && r.status != 404 && r.status != 405)
		abort();
	if (r.status != 200 && !r.why)
		abort();
	free(head);
	return 0;
}
