/* SPDX-License-Identifier: ISC */
/* fuzz_address.c - libFuzzer target: listen addresses and CIDR ranges of any bytes, each line on its own. */
#include "config.h"

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/address.h"
#include "worker/access.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *text = malloc(size + 1), err[256], *save = NULL;

	if (!text)
		return 0;
	memcpy(text, data, size);
	text[size] = '\0';
	for (char *line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		struct address a;
		struct cidr c;

		address_parse(line, &a, err, sizeof(err));
		access_parse_cidr(line, &c, err, sizeof(err));
	}
	free(text);
	return 0;
}
