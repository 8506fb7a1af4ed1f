/* SPDX-License-Identifier: ISC */
/* escape.h - the one rule for text that leaves preforkd (log lines, systemd STATUS=). */
#ifndef PREFORKD_ESCAPE_H
#define PREFORKD_ESCAPE_H

#include <stddef.h>

/* A backslash as \\, a byte outside 0x20..0x7e as \xHH, anything else as
 * is: bytes a peer or a file supplied (a unix client's bound name, a path,
 * a value in the config) can then neither end a line nor forge an escape.
 * Writes 1 to 4 bytes to out; returns how many. */
size_t escape_byte(unsigned char c, char out[4]);
/* in, escaped, into out (NUL-terminated); what does not fit is cut before
 * an escape, never inside one. */
void escape_string(const char *in, char *out, size_t outlen);

#endif
