/* SPDX-License-Identifier: ISC */
/* jsonread.c - reading one JSON value (the control socket's reply) into a tree, strictly.
 *
 * RFC 8259 without extensions; nesting is bounded, so a hostile reply
 * cannot exhaust the stack. */
#include "config.h"

#include "ctl/jsonread.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DEPTH_MAX 32

struct reader {
	const char *p;
	char *why;
	size_t whylen;
	bool failed;
};

static void fail(struct reader *r, const char *what)
{
	if (!r->failed)
		snprintf(r->why, r->whylen, "%s", what);
	r->failed = true;
}

static void skip_space(struct reader *r)
{
	while (*r->p == ' ' || *r->p == '\t' || *r->p == '\n' || *r->p == '\r')
		r->p++;
}

static struct jv *value(struct reader *r, unsigned depth);

static int hex4(const char *p)
{
	int v = 0;

	for (int i = 0; i < 4; i++) {
		char c = p[i];

		v <<= 4;
		if (c >= '0' && c <= '9')
			v |= c - '0';
		else if (c >= 'a' && c <= 'f')
			v |= c - 'a' + 10;
		else if (c >= 'A' && c <= 'F')
			v |= c - 'A' + 10;
		else
			return -1;
	}
	return v;
}

/* UTF-8 of code point c into out; how many bytes. */
static size_t utf8(unsigned c, char *out)
{
	if (c < 0x80) {
		out[0] = (char)c;
		return 1;
	}
	if (c < 0x800) {
		out[0] = (char)(0xc0 | c >> 6);
		out[1] = (char)(0x80 | (c & 0x3f));
		return 2;
	}
	if (c < 0x10000) {
		out[0] = (char)(0xe0 | c >> 12);
		out[1] = (char)(0x80 | ((c >> 6) & 0x3f));
		out[2] = (char)(0x80 | (c & 0x3f));
		return 3;
	}
	out[0] = (char)(0xf0 | c >> 18);
	out[1] = (char)(0x80 | ((c >> 12) & 0x3f));
	out[2] = (char)(0x80 | ((c >> 6) & 0x3f));
	out[3] = (char)(0x80 | (c & 0x3f));
	return 4;
}

static char *string(struct reader *r)
{
	const char *start = ++r->p;	/* past the quote */
	char *out = malloc(strlen(start) + 1), *o = out;

	if (!out) {
		fail(r, "out of memory");
		return NULL;
	}
	while (*r->p && *r->p != '"') {
		unsigned char c = (unsigned char)*r->p;

		if (c < 0x20) {
			fail(r, "a control character in a string");
			break;
		}
		if (c != '\\') {
			*o++ = *r->p++;
			continue;
		}
		r->p++;
		switch (*r->p) {
		case '"': case '\\': case '/':
			*o++ = *r->p;
			break;
		case 'b': *o++ = '\b'; break;
		case 'f': *o++ = '\f'; break;
		case 'n': *o++ = '\n'; break;
		case 'r': *o++ = '\r'; break;
		case 't': *o++ = '\t'; break;
		case 'u': {
			int cp = hex4(r->p + 1);

			if (cp < 0) {
				fail(r, "a bad \\u escape");
				break;
			}
			r->p += 4;
			if (cp >= 0xd800 && cp < 0xdc00 && r->p[1] == '\\' && r->p[2] == 'u') {
				int lo = hex4(r->p + 3);

				if (lo >= 0xdc00 && lo < 0xe000) {
					cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
					r->p += 6;
				}
			}
			o += utf8((unsigned)cp, o);
			break;
		}
		default:
			fail(r, "a bad escape in a string");
			break;
		}
		if (r->failed)
			break;
		r->p++;
	}
	if (!r->failed && *r->p != '"')
		fail(r, "a string that does not end");
	if (r->failed) {
		free(out);
		return NULL;
	}
	r->p++;
	*o = '\0';
	return out;
}

static struct jv *node(struct reader *r, enum jv_type type)
{
	struct jv *v = calloc(1, sizeof(*v));

	if (!v)
		fail(r, "out of memory");
	else
		v->type = type;
	return v;
}

/* Elements of an array or members of an object, up to close. */
static struct jv *container(struct reader *r, unsigned depth, bool object)
{
	struct jv *v = node(r, object ? JV_OBJECT : JV_ARRAY), **tail;
	char close = object ? '}' : ']';

	if (!v)
		return NULL;
	tail = &v->child;
	r->p++;
	skip_space(r);
	if (*r->p == close) {
		r->p++;
		return v;
	}
	for (;;) {
		char *key = NULL;
		struct jv *e;

		skip_space(r);
		if (object) {
			if (*r->p != '"') {
				fail(r, "an object member without a name");
				break;
			}
			key = string(r);
			skip_space(r);
			if (!key || *r->p != ':') {
				free(key);
				fail(r, "no ':' after a member's name");
				break;
			}
			r->p++;
		}
		e = value(r, depth + 1);
		if (!e) {
			free(key);
			break;
		}
		e->key = key;
		*tail = e;
		tail = &e->next;
		skip_space(r);
		if (*r->p == ',') {
			r->p++;
			continue;
		}
		if (*r->p == close) {
			r->p++;
			return v;
		}
		fail(r, object ? "no ',' or '}' in an object" : "no ',' or ']' in an array");
		break;
	}
	jv_free(v);
	return NULL;
}

static struct jv *value(struct reader *r, unsigned depth)
{
	struct jv *v;

	if (depth > DEPTH_MAX) {
		fail(r, "nested too deep");
		return NULL;
	}
	skip_space(r);
	switch (*r->p) {
	case '{':
		return container(r, depth, true);
	case '[':
		return container(r, depth, false);
	case '"':
		v = node(r, JV_STRING);
		if (v && !(v->s = string(r))) {
			free(v);
			v = NULL;
		}
		return v;
	case 't':
	case 'f':
	case 'n': {
		static const char *const words[] = { "true", "false", "null" };

		for (size_t i = 0; i < 3; i++)
			if (strncmp(r->p, words[i], strlen(words[i])) == 0) {
				v = node(r, i == 2 ? JV_NULL : JV_BOOL);
				if (v)
					v->b = i == 0;
				r->p += strlen(words[i]);
				return v;
			}
		break;
	}
	default:
		if (*r->p == '-' || (*r->p >= '0' && *r->p <= '9')) {
			char *end;
			double n = strtod(r->p, &end);

			if (end == r->p)
				break;
			v = node(r, JV_NUMBER);
			if (v)
				v->n = n;
			r->p = end;
			return v;
		}
		break;
	}
	fail(r, *r->p ? "not a JSON value" : "the reply ends early");
	return NULL;
}

struct jv *jv_parse(const char *text, char *why, size_t whylen)
{
	struct reader r = { text, why, whylen, false };
	struct jv *v = value(&r, 0);

	skip_space(&r);
	if (v && *r.p) {
		fail(&r, "something after the value");
		jv_free(v);
		v = NULL;
	}
	return v;
}

void jv_free(struct jv *v)
{
	while (v) {
		struct jv *next = v->next;

		jv_free(v->child);
		free(v->s);
		free(v->key);
		free(v);
		v = next;
	}
}

const struct jv *jv_get(const struct jv *obj, const char *key)
{
	for (const struct jv *m = obj && obj->type == JV_OBJECT ? obj->child : NULL; m; m = m->next)
		if (m->key && strcmp(m->key, key) == 0)
			return m;
	return NULL;
}

const char *jv_str(const struct jv *obj, const char *key)
{
	const struct jv *v = jv_get(obj, key);

	return v && v->type == JV_STRING ? v->s : NULL;
}

double jv_num(const struct jv *obj, const char *key, double def)
{
	const struct jv *v = jv_get(obj, key);

	return v && v->type == JV_NUMBER ? v->n : def;
}
