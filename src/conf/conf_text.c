/* SPDX-License-Identifier: ISC */
/* conf_text.c - the text before libconfuse reads it (comments, what it would misread), and number syntax.
 *
 * libconfuse 3.3 (Debian 12) miscounts lines after comments (a '#' line adds
 * two) and rejects a comment inside a list. Blanking comments ourselves, while
 * keeping every newline, makes its line numbers exact and lists commentable.
 * The same walk refuses what libconfuse would silently read as something
 * else: ${VAR} (expanded from the environment, even in double quotes, with
 * no flag to turn it off), a \0 escape (ends the string), and a '+' or '*'
 * outside quotes (dropped by its lexer). */
#include "config.h"

#include "conf/conf.h"
#include "conf/conf_private.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/array.h"

/* The walk over the text before libconfuse sees it: comments blanked in
 * out, lines counted, the first problem kept. */
struct text_scan {
	char *out;
	int line;
	int bad_line;		/* 0: no problem so far */
	char *why;
	size_t whylen;
};

__attribute__((format(printf, 2, 3)))
static void scan_problem(struct text_scan *s, const char *fmt, ...)
{
	va_list ap;

	if (s->bad_line)
		return;	/* the first one explains the rest */
	s->bad_line = s->line;
	if (!s->why)
		return;
	va_start(ap, fmt);
	vsnprintf(s->why, s->whylen, fmt, ap);
	va_end(ap);
}

static bool at_token_start(const char *text, const char *p)
{
	return p == text || strchr(" \t\r\n{}()=,;", p[-1]) != NULL;
}

/* libconfuse turns \0, \00, \000, \x0 and \x00 into a NUL, which silently
 * ends the string there. */
static bool escape_is_nul(const char *p)
{
	size_t n;

	if (p[1] >= '0' && p[1] <= '7') {
		n = strspn(p + 1, "01234567");
		n = n > 3 ? 3 : n;
		return strspn(p + 1, "0") >= n;
	}
	if (p[1] == 'x') {
		n = strspn(p + 2, "0123456789abcdefABCDEF");
		n = n > 2 ? 2 : n;
		return n > 0 && strspn(p + 2, "0") >= n;
	}
	return false;
}

static void scan_env_reference(struct text_scan *s)
{
	scan_problem(s, "\"${\" outside single quotes: preforkd does not expand environment "
		     "variables (the config means the same in every environment); for a "
		     "literal ${ write '${...}' or \"\\${...}\"");
}

/* From just after the opening quote to the closing one (or the end). In
 * double quotes libconfuse expands ${VAR} and reads escapes; in single
 * quotes only \\ and \' are escapes. A backslash-newline continues the line. */
static char *scan_quoted(struct text_scan *s, char *p, char quote)
{
	for (; *p && *p != quote; p++) {
		if (*p == '\n')
			s->line++;
		if (quote == '"' && *p == '$' && p[1] == '{')
			scan_env_reference(s);
		if (*p != '\\' || !p[1])
			continue;
		if (quote == '"' && escape_is_nul(p))
			scan_problem(s, "a \\0 or \\x00 escape in a quoted string: libconfuse "
				     "would end the string there; a value cannot hold a NUL byte");
		if (*++p == '\n')
			s->line++;
	}
	return *p ? p : p - 1;
}

static char *scan_comment(struct text_scan *s, char *p)
{
	if (*p == '/' && p[1] == '*') {
		char *end = strstr(p + 2, "*/");
		char *stop = end ? end + 2 : p + strlen(p);

		for (; p < stop; p++) {
			if (*p == '\n')
				s->line++;
			else
				*p = ' ';
		}
		return p - 1;
	}
	while (*p && *p != '\n')
		*p++ = ' ';
	return p - 1;	/* the newline is counted by the caller */
}

/* What libconfuse's lexer drops without a word outside quotes: a '+' not
 * followed by '=' ("+5" reads as 5) and any '*'. */
static void scan_bare(struct text_scan *s, const char *p)
{
	if (*p == '$' && p[1] == '{')
		scan_env_reference(s);
	else if (*p == '+' && p[1] != '=')
		scan_problem(s, "a '+' that is not '+=': libconfuse would ignore it (\"+5\" "
			     "would read as 5); numbers are written without a sign");
	else if (*p == '*')
		scan_problem(s, "a '*' outside quotes: libconfuse would ignore it; quote the "
			     "value, as in \"*:80\"");
}

char *conf_clean_text(const char *text, int *bad_line, char *why, size_t whylen)
{
	struct text_scan s = { .out = strdup(text), .line = 1, .why = why, .whylen = whylen };

	if (!s.out)
		return NULL;
	for (char *p = s.out; *p; p++) {
		if (*p == '\n')
			s.line++;
		else if (*p == '"' || *p == '\'')
			p = scan_quoted(&s, p + 1, *p);
		else if (*p == '#' || ((*p == '/' && (p[1] == '/' || p[1] == '*')) &&
				       at_token_start(s.out, p)))
			p = scan_comment(&s, p);
		else
			scan_bare(&s, p);
	}
	if (bad_line)
		*bad_line = s.bad_line;
	return s.out;
}

char *conf_strip_comments(const char *text)
{
	return conf_clean_text(text, NULL, NULL, 0);
}

/* Decimal only: libconfuse would read "010" as octal 8 and "0x10" as 16,
 * which nobody writing "workers = 010" means. */
int conf_parse_decimal(const char *s, long min, long max, long *out)
{
	long v = 0;
	const char *p = s;

	if (*p == '-' || *p == '+')
		return -1;
	if (*p == '0' && p[1] != '\0')
		return -1;
	if (*p == '\0')
		return -1;
	for (; *p; p++) {
		if (*p < '0' || *p > '9')
			return -1;
		if (v > (max - (*p - '0')) / 10)
			return -2;	/* out of range, before it can overflow */
		v = v * 10 + (*p - '0');
	}
	if (v < min)
		return -2;
	*out = v;
	return 0;
}

int conf_parse_octal(const char *s, long min, long max, long *out)
{
	long v = 0;

	if (*s == '\0' || strlen(s) > 5)
		return -1;
	for (; *s; s++) {
		if (*s < '0' || *s > '7')
			return -1;
		v = v * 8 + (*s - '0');
	}
	if (v < min || v > max)
		return -2;
	*out = v;
	return 0;
}

struct unit {
	const char *suffix;
	long per;	/* of the smallest unit written */
};

/* Digits and one of units' suffixes, as a count of 1/div of the smallest
 * unit, rounded up: a duration in ms (div 1), a size in KiB from bytes
 * (div 1024). */
static int parse_with_unit(const char *s, const struct unit *units, size_t nunits, long div,
			   long min, long max, long *out)
{
	size_t digits = strspn(s, "0123456789");
	char number[24];
	long v;

	if (digits == 0 || digits >= 16)
		return digits == 0 ? -1 : -2;
	memcpy(number, s, digits);
	number[digits] = '\0';
	for (size_t i = 0; i < nunits; i++) {
		if (strcmp(s + digits, units[i].suffix) != 0)
			continue;
		int rc = conf_parse_decimal(number, 0, max * div / units[i].per, &v);

		if (rc < 0)
			return rc;
		v = (v * units[i].per + div - 1) / div;
		if (v < min || v > max)
			return -2;
		*out = v;
		return 0;
	}
	return -1;
}

/* "512M": bytes, or K, M, G, T (powers of 1024). */
int conf_parse_size_kib(const char *s, long min_kib, long max_kib, long *out)
{
	static const struct unit units[] = {
		{ "", 1 }, { "K", 1L << 10 }, { "M", 1L << 20 }, { "G", 1L << 30 }, { "T", 1L << 40 },
	};

	return parse_with_unit(s, units, ARRAY_SIZE(units), 1024, min_kib, max_kib, out);
}

/* "30" (seconds), "500ms", "30s", "5m", "1h". */
int conf_parse_duration_ms(const char *s, long min_ms, long max_ms, long *out)
{
	static const struct unit units[] = {
		{ "ms", 1 }, { "s", 1000 }, { "m", 60000 }, { "h", 3600000 }, { "", 1000 },
	};

	return parse_with_unit(s, units, ARRAY_SIZE(units), 1, min_ms, max_ms, out);
}
