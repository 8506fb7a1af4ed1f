/* SPDX-License-Identifier: ISC */
/* fuzz_json.c - libFuzzer target: preforkctl's JSON reader on any reply a daemon (or not) might send. */
#include "config.h"

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ctl/jsonread.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *text = malloc(size + 1), why[128];

	if (!text)
		return 0;
	memcpy(text, data, size);
	text[size] = '\0';
	jv_free(jv_parse(text, why, sizeof(why)));
	free(text);
	return 0;
}
