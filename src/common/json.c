/* SPDX-License-Identifier: ISC */
/* json.c - writing one JSON object into a growing buffer: the control socket's replies.
 *
 * Strings are written as RFC 8259 wants them: quote, backslash and control
 * characters escaped; any other byte as it is (names and addresses are
 * ours or the config's; a byte that is not UTF-8 comes through as it is,
 * which is what every JSON reader of Unix tools tolerates). */
#include "config.h"

#include "common/json.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void json_init(struct json *j)
{
	*j = (struct json){ 0 };
}

static void put(struct json *j, const char *s, size_t n)
{
	if (j->failed)
		return;
	if (j->len + n + 2 > j->cap) {
		size_t cap = j->cap ? j->cap : 256;
		char *bigger;

		while (j->len + n + 2 > cap)
			cap *= 2;
		bigger = realloc(j->buf, cap);
		if (!bigger) {
			j->failed = true;
			return;
		}
		j->buf = bigger;
		j->cap = cap;
	}
	memcpy(j->buf + j->len, s, n);
	j->len += n;
}

static void puts_(struct json *j, const char *s)
{
	put(j, s, strlen(s));
}

static void put_quoted(struct json *j, const char *s)
{
	put(j, "\"", 1);
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;
		char esc[8];

		if (c == '"' || c == '\\') {
			esc[0] = '\\';
			esc[1] = (char)c;
			put(j, esc, 2);
		} else if (c < 0x20 || c == 0x7f) {
			snprintf(esc, sizeof(esc), "\\u%04x", c);
			puts_(j, esc);
		} else {
			put(j, s, 1);
		}
	}
	put(j, "\"", 1);
}

/* The comma before an element, and its key. */
static void member(struct json *j, const char *key)
{
	if (j->depth > 0 && j->need_comma[j->depth - 1])
		put(j, ",", 1);
	if (j->depth > 0)
		j->need_comma[j->depth - 1] = true;
	if (key) {
		put_quoted(j, key);
		put(j, ":", 1);
	}
}

static void open_level(struct json *j, const char *key, char bracket)
{
	member(j, key);
	put(j, &bracket, 1);
	if (j->depth < sizeof(j->need_comma) / sizeof(j->need_comma[0])) {
		j->closer[j->depth] = bracket == '{' ? '}' : ']';
		j->need_comma[j->depth++] = false;
	} else {
		j->failed = true;
	}
}

void json_object(struct json *j, const char *key)
{
	open_level(j, key, '{');
}

void json_array(struct json *j, const char *key)
{
	open_level(j, key, '[');
}

void json_end(struct json *j)
{
	if (j->depth == 0) {
		j->failed = true;
		return;
	}
	j->depth--;
	put(j, &j->closer[j->depth], 1);
}

void json_string(struct json *j, const char *key, const char *value)
{
	member(j, key);
	if (value)
		put_quoted(j, value);
	else
		puts_(j, "null");
}

void json_int(struct json *j, const char *key, long long value)
{
	char n[32];

	member(j, key);
	snprintf(n, sizeof(n), "%lld", value);
	puts_(j, n);
}

void json_uint(struct json *j, const char *key, unsigned long long value)
{
	char n[32];

	member(j, key);
	snprintf(n, sizeof(n), "%llu", value);
	puts_(j, n);
}

void json_bool(struct json *j, const char *key, bool value)
{
	member(j, key);
	puts_(j, value ? "true" : "false");
}

char *json_finish(struct json *j, size_t *len)
{
	if (j->depth != 0)
		j->failed = true;
	put(j, "\n", 1);
	if (j->failed) {
		free(j->buf);
		*j = (struct json){ 0 };
		*len = 0;
		return NULL;
	}
	j->buf[j->len] = '\0';
	*len = j->len;
	return j->buf;
}
