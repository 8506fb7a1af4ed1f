/* SPDX-License-Identifier: ISC */
/* jsonread.h - reading one JSON value (the control socket's reply) into a tree, strictly. */
#ifndef PREFORKD_JSONREAD_H
#define PREFORKD_JSONREAD_H

#include <stdbool.h>
#include <stddef.h>

enum jv_type { JV_NULL, JV_BOOL, JV_NUMBER, JV_STRING, JV_ARRAY, JV_OBJECT };

struct jv {
	enum jv_type type;
	bool b;
	double n;
	char *s;		/* JV_STRING: NUL-terminated (a \u0000 cuts it) */
	char *key;		/* a member of an object: its name */
	struct jv *child;	/* JV_ARRAY, JV_OBJECT: the first element */
	struct jv *next;	/* the next element of the parent */
};

/* The value text holds (nothing but white space after it), or NULL with a
 * reason in why. */
struct jv *jv_parse(const char *text, char *why, size_t whylen);
void jv_free(struct jv *v);
/* The member called key of an object, or NULL. */
const struct jv *jv_get(const struct jv *obj, const char *key);
/* The member's string, or NULL when missing or not a string. */
const char *jv_str(const struct jv *obj, const char *key);
/* The member's number, or def. */
double jv_num(const struct jv *obj, const char *key, double def);

#endif
