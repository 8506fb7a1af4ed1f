/* SPDX-License-Identifier: ISC */
/* escape.c - the one rule for text that leaves preforkd (log lines, systemd STATUS=). */
#include "config.h"

#include "common/escape.h"

#include <string.h>

size_t escape_byte(unsigned char c, char out[4])
{
	static const char hex[] = "0123456789abcdef";

	if (c == '\\') {
		out[0] = out[1] = '\\';
		return 2;
	}
	if (c >= 0x20 && c <= 0x7e) {
		out[0] = (char)c;
		return 1;
	}
	out[0] = '\\';
	out[1] = 'x';
	out[2] = hex[c >> 4];
	out[3] = hex[c & 0xf];
	return 4;
}

void escape_string(const char *in, char *out, size_t outlen)
{
	size_t len = 0;

	if (!outlen)
		return;
	for (const unsigned char *p = (const unsigned char *)in; *p; p++) {
		char esc[4];
		size_t n = escape_byte(*p, esc);

		if (len + n >= outlen)
			break;
		memcpy(out + len, esc, n);
		len += n;
	}
	out[len] = '\0';
}
