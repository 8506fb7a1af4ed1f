/* SPDX-License-Identifier: ISC */
/* json.h - writing one JSON object into a growing buffer: the control socket's replies. */
#ifndef PREFORKD_JSON_H
#define PREFORKD_JSON_H

#include <stdbool.h>
#include <stddef.h>

/* Commas and nesting are kept track of: keys and values are added in
 * order, objects and arrays closed in the reverse order. Out of memory
 * makes the whole text NULL (json_finish). */
struct json {
	char *buf;
	size_t len, cap;
	bool failed;
	bool need_comma[16];	/* per open level */
	char closer[16];	/* per open level: '}' or ']' */
	unsigned depth;
};

void json_init(struct json *j);
/* key may be NULL inside an array. */
void json_object(struct json *j, const char *key);
void json_array(struct json *j, const char *key);
void json_end(struct json *j);		/* of the innermost object or array */
void json_string(struct json *j, const char *key, const char *value);	/* NULL: null */
void json_int(struct json *j, const char *key, long long value);
void json_uint(struct json *j, const char *key, unsigned long long value);
void json_bool(struct json *j, const char *key, bool value);
/* The text with a final "\n", malloc'd (the caller frees it); NULL when
 * memory ran out. *len: its length. */
char *json_finish(struct json *j, size_t *len);

#endif
