/* conf_text.c - comment removal before libconfuse, and the strict number syntax of the config.
 *
 * libconfuse 3.3 (Debian 12) miscounts lines after comments (a '#' line adds
 * two) and rejects a comment inside a list. Blanking comments ourselves, while
 * keeping every newline, makes its line numbers exact and lists commentable. */
#include "config.h"

#include "conf.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

static bool at_token_start(const char *text, const char *p)
{
	return p == text || strchr(" \t\r\n{}()=,;", p[-1]) != NULL;
}

char *conf_strip_comments(const char *text)
{
	char *out = strdup(text);
	char quote = 0;

	if (!out)
		return NULL;
	for (char *p = out; *p; p++) {
		if (quote) {
			if (*p == '\\' && quote == '"' && p[1])
				p++;
			else if (*p == quote)
				quote = 0;
			continue;
		}
		if (*p == '"' || *p == '\'') {
			quote = *p;
		} else if (*p == '#' || (*p == '/' && p[1] == '/' && at_token_start(out, p))) {
			while (*p && *p != '\n')
				*p++ = ' ';
			if (!*p)
				break;
		} else if (*p == '/' && p[1] == '*' && at_token_start(out, p)) {
			char *end = strstr(p + 2, "*/");
			char *stop = end ? end + 2 : p + strlen(p);

			for (; p < stop; p++)
				if (*p != '\n')
					*p = ' ';
			p--;
		}
	}
	return out;
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

/* "30" (seconds), "500ms", "30s", "5m", "1h". */
int conf_parse_duration_ms(const char *s, long min_ms, long max_ms, long *out)
{
	static const struct { const char *suffix; long ms; } units[] = {
		{ "ms", 1 }, { "s", 1000 }, { "m", 60000 }, { "h", 3600000 }, { "", 1000 },
	};
	size_t digits = strspn(s, "0123456789");
	char number[24];
	long v;

	if (digits == 0 || digits >= sizeof(number))
		return digits == 0 ? -1 : -2;
	memcpy(number, s, digits);
	number[digits] = '\0';
	for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
		if (strcmp(s + digits, units[i].suffix) != 0)
			continue;
		int rc = conf_parse_decimal(number, 0, max_ms / units[i].ms, &v);

		if (rc < 0)
			return rc;
		v *= units[i].ms;
		if (v < min_ms || v > max_ms)
			return -2;
		*out = v;
		return 0;
	}
	return -1;
}
