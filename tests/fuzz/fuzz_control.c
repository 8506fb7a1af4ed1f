/* SPDX-License-Identifier: ISC */
/* fuzz_control.c - libFuzzer target: control-socket request lines of any bytes, one per line. */
#include "config.h"

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "master/ctlreq.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *text = malloc(size + 1), *save = NULL;

	if (!text)
		return 0;
	memcpy(text, data, size);
	text[size] = '\0';
	for (char *line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		struct ctl_request r;

		ctlreq_parse(line, &r);
		/* What it points at lies within the line. */
		if ((r.word && (r.word < line || r.word > line + size)) ||
		    ((r.kind == CTL_SCALE || r.kind == CTL_RECYCLE) && !r.service) ||
		    (r.kind == CTL_SCALE && r.count_ok && r.count > 1000000))
			abort();
	}
	free(text);
	return 0;
}
