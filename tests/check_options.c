/* SPDX-License-Identifier: ISC */
/* check_options.c - the option table: sound in itself, and held against preforkd.conf(5) and the bundled config. */
#include "config.h"

#include <check.h>
#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/array.h"
#include "conf/conf.h"
#include "conf/options.h"
#include "handlers/handler.h"
#include "testlib.h"

#define MAN_PAGE SRCDIR "/man/preforkd.conf.5"
#define BUNDLED_CONFIG SRCDIR "/conf/preforkd.conf"

/* Every problem found, one a line, so that one run shows them all. */
struct problems {
	char text[8192];
	size_t len;
};

__attribute__((format(printf, 2, 3)))
static void problem(struct problems *p, const char *fmt, ...)
{
	size_t room = sizeof(p->text) - p->len;
	va_list ap;
	int n;

	if (room < 2)
		return;
	va_start(ap, fmt);
	n = vsnprintf(p->text + p->len, room - 1, fmt, ap);
	va_end(ap);
	p->len += n < 0 ? 0 : (size_t)n < room - 2 ? (size_t)n : room - 2;
	p->text[p->len++] = '\n';
	p->text[p->len] = '\0';
}

static const char *scope_name(enum conf_scope scope)
{
	return scope == CONF_ROOT ? "global" : "service";
}

static int parse_number(const struct conf_option *o, const char *s, long *v)
{
	switch (o->type) {
	case CONF_COUNT:
		return conf_parse_decimal(s, 0, 0x7fffffffL, v);
	case CONF_DURATION:
		return conf_parse_duration_ms(s, 0, 0x7fffffffL, v);
	case CONF_SIZE:
		return conf_parse_size_kib(s, 0, 1L << 40, v);
	default: {
		char *end;

		*v = strtol(s, &end, 8);
		return *s && !*end ? 0 : -1;
	}
	}
}

/* "1 to 1024", "0 (never) to 24h": the ends, in the option's own syntax. */
static int parse_range(const struct conf_option *o, long *min, long *max)
{
	char low[32], high[32];
	const char *to = strstr(o->range, " to ");
	size_t n = strcspn(o->range, " ");

	if (!to || n >= sizeof(low) || strlen(to + 4) >= sizeof(high))
		return -1;
	memcpy(low, o->range, n);
	low[n] = '\0';
	strcpy(high, to + 4);
	return parse_number(o, low, min) < 0 || parse_number(o, high, max) < 0 ? -1 : 0;
}

/* An option built by the kind of its field: that kind holds its type. */
static bool field_holds(const struct conf_option *o)
{
	switch (o->field.kind) {
	case CONF_FIELD_UNSIGNED:
	case CONF_FIELD_INT:
		return conf_option_is_number(o) || o->type == CONF_ENUM;
	case CONF_FIELD_BOOL:
		return o->type == CONF_ENUM && o->names[0] && o->names[1] && !o->names[2];
	case CONF_FIELD_STRING:
		return o->type == CONF_STRING || o->type == CONF_ENUM;
	case CONF_FIELD_STRINGS:
		return o->type == CONF_STRINGS;
	default:
		return false;
	}
}

/* What the parser needs to trust the table. */
START_TEST(table_is_sound)
{
	struct problems p = { .len = 0 };
	char buf[64];

	for (size_t i = 0; i < CONF_NOPTIONS; i++) {
		const struct conf_option *o = &conf_options[i];
		const char *def = conf_option_default_text(o, buf, sizeof(buf));
		long min, max, v;

		if (!o->name || !*o->name || conf_option_find(o->name) != o) {
			problem(&p, "option %zu: no name, or not the only one with its name", i);
			continue;
		}
		if (conf_option_is_number(o)) {
			if (!o->range || parse_range(o, &min, &max) < 0 || min != o->min || max != o->max)
				problem(&p, "%s: range text \"%s\" is not %ld to %ld", o->name,
					o->range ? o->range : "", o->min, o->max);
			/* A default said in words depends on another option (0 here). */
			if (o->def_str ? o->def != 0 :
			    (o->def < o->min || o->def > o->max || parse_number(o, def, &v) < 0 ||
			     v != o->def))
				problem(&p, "%s: default %ld (\"%s\") is not in its range", o->name,
					o->def, def);
		} else if (o->range || o->def) {
			problem(&p, "%s: a range or a numeric default on a %s", o->name,
				o->type == CONF_ENUM ? "enum" : "string or list");
		}
		if (o->type == CONF_ENUM && (!o->names || !o->names[0] || !o->def_str ||
					     conf_option_name_index(o, o->def_str) < 0))
			problem(&p, "%s: an enum without names, or its default not among them", o->name);
		for (size_t h = 0; o->handlers && o->handlers[h]; h++)
			if (!handler_find(o->handlers[h]))
				problem(&p, "%s: applies to handler \"%s\", which does not exist",
					o->name, o->handlers[h]);
		if (o->handlers && o->accepting)
			problem(&p, "%s: both a list of handlers and 'accepting'", o->name);
		if ((o->needs || o->handlers || o->accepting || o->required) &&
		    o->scope != CONF_SERVICE)
			problem(&p, "%s: a handler, listen address or requirement outside a service",
				o->name);
		/* A field belongs to one struct; user and group go to run_as together. */
		if ((o->scope == CONF_BOTH) != (o->field.kind == CONF_FIELD_NONE))
			problem(&p, "%s: a field needs one scope, and every single-scope option a field",
				o->name);
		if ((o->field.kind == CONF_FIELD_ARRAY) != (o->field.count != 0) ||
		    (o->field.kind == CONF_FIELD_ARRAY && !o->build))
			problem(&p, "%s: an array needs a count and a build function", o->name);
		if (!o->build && o->field.kind != CONF_FIELD_NONE && !field_holds(o))
			problem(&p, "%s: its field's kind cannot hold its type", o->name);
	}
	ck_assert_msg(p.len == 0, "option table:\n%s", p.text);
}
END_TEST

struct man_entry {
	char name[64];
	enum conf_scope scope;	/* its section: GLOBAL OPTIONS or SERVICE OPTIONS */
	char handler[32];	/* under "Options of the HANDLER handler" or "... the H1 and
				 * H2 handlers": "H1 and H2"; "" otherwise */
	char *text;		/* its description, as plain text */
};

struct man_page {
	struct man_entry entries[128];
	size_t n;
	char *file;
};

/* An mdoc macro among the words of a macro line ("No", "Ic", "Pa"). */
static bool is_macro(const char *word, size_t len)
{
	return (len == 2 || len == 3) && isupper((unsigned char)word[0]) &&
	       islower((unsigned char)word[1]) && (len == 2 || islower((unsigned char)word[2]));
}

/* A line as it reads: a macro line's words without the macros, "\&" gone. */
static void append_rendered(char **text, const char *line, size_t len)
{
	size_t have = *text ? strlen(*text) : 0;
	char *out = realloc(*text, have + len + 2), *o;
	const char *end = line + len, *p = line;

	ck_assert_ptr_nonnull(out);
	*text = out;
	o = out + have;
	if (*p == '.')
		while (p < end && *p != ' ')
			p++;	/* the line's own macro */
	while (p < end) {
		const char *word;

		while (p < end && *p == ' ')
			p++;
		for (word = p; p < end && *p != ' '; p++)
			;
		if (p == word || (line[0] == '.' && is_macro(word, (size_t)(p - word))))
			continue;
		/* mdoc puts a space before closing punctuation: ".Cm info ." */
		if (o > out && !(p - word == 1 && strchr(".,;:)", *word)))
			*o++ = ' ';
		for (const char *c = word; c < p; c++)
			if (c[0] == '\\' && c + 1 < p && c[1] == '&')
				c++;
			else
				*o++ = *c;
	}
	*o = '\0';
}

/* The handlers of o as the man page's subsections name them: "exec and app". */
static void handlers_text(const struct conf_option *o, char *buf, size_t len)
{
	size_t n = 0;

	buf[0] = '\0';
	for (size_t i = 0; o->handlers && o->handlers[i] && n < len; i++)
		n += (size_t)snprintf(buf + n, len - n, "%s%s", i ? " and " : "", o->handlers[i]);
}

static void man_page_read(struct man_page *m)
{
	enum conf_scope scope = 0;
	char handler[32] = "";
	size_t group = 0;	/* the first entry of the .It lines that share a description */
	bool described = false;

	m->n = 0;
	m->file = tl_read_file(MAN_PAGE);
	ck_assert_msg(m->file[0], "cannot read %s", MAN_PAGE);
	for (char *line = m->file, *next; *line; line = next) {
		size_t len = strcspn(line, "\n");

		next = line + len + (line[len] == '\n');
		if (strncmp(line, ".Sh ", 4) == 0) {
			scope = strncmp(line, ".Sh GLOBAL OPTIONS\n", 19) == 0 ? CONF_ROOT :
				strncmp(line, ".Sh SERVICE OPTIONS\n", 20) == 0 ? CONF_SERVICE : 0;
			handler[0] = '\0';
			group = m->n;
		} else if (strncmp(line, ".Ss Options of the ", 19) == 0) {
			const char *end = strstr(line, " handler");

			snprintf(handler, sizeof(handler), "%.*s",
				 end && end < line + len ? (int)(end - line - 19) : 0, line + 19);
		} else if (strncmp(line, ".Ss ", 4) == 0) {
			handler[0] = '\0';
		} else if (!scope) {
			continue;
		} else if (strncmp(line, ".It", 3) == 0) {
			if (described)
				group = m->n;
			described = false;
			if (strncmp(line, ".It Ic ", 7) == 0) {
				struct man_entry *e = &m->entries[m->n++];

				ck_assert_uint_lt(m->n, sizeof(m->entries) / sizeof(m->entries[0]));
				*e = (struct man_entry){ .scope = scope };
				snprintf(e->name, sizeof(e->name), "%.*s", (int)strcspn(line + 7, " \n"),
					 line + 7);
				snprintf(e->handler, sizeof(e->handler), "%s", handler);
			}
		} else if (strncmp(line, ".El", 3) == 0) {
			group = m->n;
			described = false;
		} else if (group < m->n) {
			for (size_t i = group; i < m->n; i++)
				append_rendered(&m->entries[i].text, line, len);
			described = true;
		}
	}
}

static void man_page_free(struct man_page *m)
{
	for (size_t i = 0; i < m->n; i++)
		free(m->entries[i].text);
	free(m->file);
}

static const struct man_entry *man_find(const struct man_page *m, const char *name,
					enum conf_scope scope)
{
	for (size_t i = 0; i < m->n; i++)
		if (m->entries[i].scope == scope && strcmp(m->entries[i].name, name) == 0)
			return &m->entries[i];
	return NULL;
}

/* What follows "Default: " or "Range " up to the end of its clause ("," or
 * "." before a space or the end), in buf; "" when the entry does not say. */
static const char *man_clause(const struct man_entry *e, const char *lead, char *buf, size_t len)
{
	const char *p = e->text ? strstr(e->text, lead) : NULL;
	size_t n = 0;

	buf[0] = '\0';
	if (!p)
		return buf;
	p += strlen(lead);
	while (p[n] && !(strchr(",.", p[n]) && (p[n + 1] == ' ' || p[n + 1] == '\0')))
		n++;
	snprintf(buf, len, "%.*s", (int)n, p);
	return buf;
}

/* Every option in its section of the man page with the table's default,
 * range and handler; nothing documented that the table does not have. */
START_TEST(man_page_documents_every_option)
{
	struct problems p = { .len = 0 };
	struct man_page m;
	char want[64], said[256];

	man_page_read(&m);
	ck_assert_uint_gt(m.n, 20);
	for (size_t i = 0; i < CONF_NOPTIONS; i++) {
		const struct conf_option *o = &conf_options[i];

		for (enum conf_scope scope = CONF_ROOT; scope <= CONF_SERVICE; scope++) {
			const struct man_entry *e = man_find(&m, o->name, scope);
			const char *def = conf_option_default_text(o, want, sizeof(want));

			if (!(o->scope & scope))
				continue;
			if (!e) {
				problem(&p, "%s: no \".It Ic %s\" under %s OPTIONS", o->name, o->name,
					scope == CONF_ROOT ? "GLOBAL" : "SERVICE");
				continue;
			}
			man_clause(e, "Default: ", said, sizeof(said));
			if (o->required) {
				if (!strstr(e->text, "Required") || said[0])
					problem(&p, "%s: required, but the man page says neither "
						"\"Required\" nor only that", o->name);
			} else if (def) {
				if (strcmp(said, def) != 0)
					problem(&p, "%s (%s): the man page says \"Default: %s\", the "
						"table %s", o->name, scope_name(scope), said, def);
			} else if (o->scope == CONF_BOTH && scope == CONF_SERVICE) {
				if (strncmp(said, "the global", 10) != 0)
					problem(&p, "%s (service): \"Default: %s\", not the global one",
						o->name, said);
			} else if (strncmp(said, "not set", 7) != 0 && strncmp(said, "none", 4) != 0 &&
				   strncmp(said, "no ", 3) != 0) {
				problem(&p, "%s (%s): not set by default, but the man page says "
					"\"Default: %s\"", o->name, scope_name(scope), said);
			}
			if (conf_option_is_number(o) &&
			    strcmp(man_clause(e, "Range ", said, sizeof(said)), o->range) != 0)
				problem(&p, "%s: the man page says \"Range %s\", the table %s", o->name,
					said, o->range);
			if (!conf_option_is_number(o) && o->max) {
				snprintf(said, sizeof(said), "At most %ld bytes.", o->max);
				if (!strstr(e->text, said))
					problem(&p, "%s: at most %ld bytes, which the man page does not "
						"say", o->name, o->max);
			}
			handlers_text(o, said, sizeof(said));
			if (strcmp(e->handler, said) != 0)
				problem(&p, "%s: applies to handler \"%s\", documented under \"%s\"",
					o->name, said, e->handler);
		}
	}
	for (size_t i = 0; i < m.n; i++) {
		const struct conf_option *o = conf_option_find(m.entries[i].name);

		if (!o || !(o->scope & m.entries[i].scope))
			problem(&p, "%s: documented as a %s option, which the table does not have",
				m.entries[i].name, scope_name(m.entries[i].scope));
	}
	man_page_free(&m);
	ck_assert_msg(p.len == 0, "%s:\n%s", MAN_PAGE, p.text);
}
END_TEST

struct config_mention {
	char name[64];
	enum conf_scope scope;
	int line;
};

/* Every "name =" or "name +=" of the file, commented out or not, with the
 * scope it stands in ("service NAME {" to "}", commented or not). */
static size_t bundled_config_read(struct config_mention *v, size_t max)
{
	char *file = tl_read_file(BUNDLED_CONFIG), *next;
	enum conf_scope scope = CONF_ROOT;
	size_t n = 0;
	int lineno = 0;

	ck_assert_msg(file[0], "cannot read %s", BUNDLED_CONFIG);
	for (char *line = file; *line; line = next) {
		size_t len = strcspn(line, "\n"), name;
		char *t = line;

		next = line + len + (line[len] == '\n');
		line[len] = '\0';
		lineno++;
		t += strspn(t, " \t");
		t += strspn(t, "#");
		t += strspn(t, " \t");
		name = strspn(t, "abcdefghijklmnopqrstuvwxyz-");
		if (strncmp(t, "service ", 8) == 0 && strchr(t, '{')) {
			scope = CONF_SERVICE;
		} else if (t[0] == '}') {
			scope = CONF_ROOT;
		} else if (name && name < sizeof(v->name) &&
			   (strncmp(t + name + strspn(t + name, " \t"), "=", 1) == 0 ||
			    strncmp(t + name + strspn(t + name, " \t"), "+=", 2) == 0)) {
			ck_assert_uint_lt(n, max);
			v[n] = (struct config_mention){ .scope = scope, .line = lineno };
			memcpy(v[n].name, t, name);
			v[n++].name[name] = '\0';
		}
	}
	free(file);
	return n;
}

/* Every option shown in the bundled config where it may stand; nothing
 * shown that the table does not have. */
START_TEST(bundled_config_shows_every_option)
{
	struct problems p = { .len = 0 };
	struct config_mention seen[256];
	size_t n = bundled_config_read(seen, ARRAY_SIZE(seen));

	for (size_t i = 0; i < CONF_NOPTIONS; i++) {
		const struct conf_option *o = &conf_options[i];

		for (enum conf_scope scope = CONF_ROOT; scope <= CONF_SERVICE; scope++) {
			size_t j = 0;

			while (j < n && !(seen[j].scope == scope && strcmp(seen[j].name, o->name) == 0))
				j++;
			if ((o->scope & scope) && j == n)
				problem(&p, "%s: not shown as a %s option", o->name, scope_name(scope));
		}
	}
	for (size_t j = 0; j < n; j++) {
		const struct conf_option *o = conf_option_find(seen[j].name);

		if (!o || !(o->scope & seen[j].scope))
			problem(&p, "line %d: %s is not a %s option", seen[j].line, seen[j].name,
				scope_name(seen[j].scope));
	}
	ck_assert_msg(p.len == 0, "%s:\n%s", BUNDLED_CONFIG, p.text);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("options");
	TCase *tc = tcase_create("options");

	tcase_add_test(tc, table_is_sound);
	tcase_add_test(tc, man_page_documents_every_option);
	tcase_add_test(tc, bundled_config_shows_every_option);
	suite_add_tcase(s, tc);
	return tl_run_suite(s);
}
