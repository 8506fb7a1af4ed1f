/* SPDX-License-Identifier: ISC */
/* fuzz_notify.c - libFuzzer target: an app worker's sd_notify message of any bytes, line by line. */
#include "config.h"

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "master/notifyline.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *text = malloc(size + 1);

	if (!text)
		return 0;
	memcpy(text, data, size);
	text[size] = '\0';
	/* As workernotify.c cuts a datagram into lines. */
	for (char *line = text, *next; line && *line; line = next) {
		struct notify_line n;

		next = strchr(line, '\n');
		if (next)
			*next++ = '\0';
		notifyline_parse(line, &n);
		if ((n.kind == NOTIFY_STATUS && !n.text) ||
		    (n.kind == NOTIFY_ERRNO && (n.number == 0 || n.number >= 4096)))
			abort();
	}
	free(text);
	return 0;
}
