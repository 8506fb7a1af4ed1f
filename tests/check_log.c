/* check_log.c - the log line format, plain and under journald. */
#include "config.h"

#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"
#include "testlib.h"

static char dir[64], path[128];

/* Runs fn with stderr going to a file; returns what it wrote. */
static char *capture_stderr(void (*fn)(void), bool as_journal)
{
	FILE *f;
	int saved = dup(STDERR_FILENO);
	struct stat st;
	char env[64];

	tl_mkdtemp(dir, sizeof(dir));
	snprintf(path, sizeof(path), "%s/stderr", dir);
	f = fopen(path, "we");
	ck_assert_ptr_nonnull(f);
	dup2(fileno(f), STDERR_FILENO);
	ck_assert_int_eq(fstat(STDERR_FILENO, &st), 0);
	snprintf(env, sizeof(env), "%llu:%llu", (unsigned long long)st.st_dev,
		 (unsigned long long)(as_journal ? st.st_ino : st.st_ino + 1));
	setenv("JOURNAL_STREAM", env, 1);
	log_init();
	fn();
	dup2(saved, STDERR_FILENO);
	close(saved);
	fclose(f);
	char *out = tl_read_file(path);

	tl_rmtree(dir);
	return out;
}

static void emit(void)
{
	log_set_level(LOG_INFO);
	log_set_role("echo#1");
	log_errno(LOG_ERR, ECONNREFUSED, "connect %s", "unix:/x");
	log_warn("careful");
	log_debug("not shown at info");
	log_set_role(NULL);
	log_notice("from the master");
}

START_TEST(journal_lines_carry_priority)
{
	char *out = capture_stderr(emit, true);

	ck_assert_str_eq(out, "<3>echo#1: connect unix:/x: Connection refused\n"
			      "<4>echo#1: careful\n"
			      "<5>from the master\n");
	free(out);
}
END_TEST

/* JOURNAL_STREAM inherited by a process whose stderr is elsewhere: plain lines. */
START_TEST(plain_lines_carry_level_names)
{
	char *out = capture_stderr(emit, false), pid[32];

	snprintf(pid, sizeof(pid), "preforkd[%ld]", (long)getpid());
	ck_assert_msg(strstr(out, " echo#1: error: connect unix:/x: Connection refused\n") != NULL, "%s", out);
	ck_assert_msg(strstr(out, " echo#1: warning: careful\n") != NULL, "%s", out);
	ck_assert_msg(strstr(out, ": notice: from the master\n") != NULL, "%s", out);
	ck_assert_msg(strstr(out, pid) != NULL, "%s", out);
	ck_assert(strstr(out, "not shown") == NULL);
	ck_assert(strchr(out, '<') == NULL);
	free(out);
}
END_TEST

static void emit_big(void)
{
	static char big[4000];

	memset(big, 'x', sizeof(big) - 1);
	log_set_level(LOG_INFO);
	log_errno(LOG_ERR, EIO, "%s", big);
}

START_TEST(long_lines_are_cut_not_overflowed)
{
	char *out = capture_stderr(emit_big, true);

	ck_assert_uint_le(strlen(out), 1024);
	ck_assert_int_eq(out[strlen(out) - 1], '\n');
	free(out);
}
END_TEST

static void emit_controls(void)
{
	log_set_level(LOG_INFO);
	log_set_role("echo\t#1");
	log_error("a\nb\rc\x1b[31md%ce\x01" "f\x7fg\xffh\\x0ai", '\0');
	log_set_role(NULL);
	log_error("\n2026-01-01 00:00:00.000 preforkd[1]: error: forged\n<0>forged");
}

/* A newline, CR, ESC or NUL from a peer never reaches the log raw, and a
 * backslash is doubled, so "\x0a" in the text cannot pass for an escape. */
START_TEST(control_bytes_are_escaped)
{
	char *out = capture_stderr(emit_controls, true);

	ck_assert_str_eq(out, "<3>echo\\x09#1: a\\x0ab\\x0dc\\x1b[31md\\x00e\\x01f\\x7fg\\xffh\\\\x0ai\n"
			      "<3>\\x0a2026-01-01 00:00:00.000 preforkd[1]: error: forged\\x0a<0>forged\n");
	free(out);
}
END_TEST

static void emit_every_byte(void)
{
	char bytes[256];

	for (int i = 1; i < 256; i++)
		bytes[i - 1] = (char)i;
	bytes[255] = '\0';
	log_set_level(LOG_INFO);
	log_error("%s%c", bytes, '\0');
	log_set_role("\n");
	log_error("role");
	log_set_role(NULL);
}

/* Plain lines too: one line per message, nothing outside 0x20..0x7e. */
START_TEST(every_byte_is_printable_or_escaped)
{
	char *out = capture_stderr(emit_every_byte, false), *second;

	second = strchr(out, '\n');
	ck_assert_ptr_nonnull(second);
	ck_assert_ptr_nonnull(strstr(out, "\\x1f !\"#$%&'()*+,-./0123456789"));
	ck_assert_ptr_nonnull(strstr(out, "xyz{|}~\\x7f\\x80\\x81"));
	ck_assert_ptr_nonnull(strstr(out, "\\xfe\\xff\\x00\n"));
	ck_assert_ptr_nonnull(strstr(second, "] \\x0a: error: role\n"));
	for (const char *p = out; *p; p++)
		ck_assert_msg((*p >= 0x20 && *p <= 0x7e) || (*p == '\n' && (p == second || !p[1])),
			      "byte 0x%02x at %zu", (unsigned char)*p, (size_t)(p - out));
	free(out);
}
END_TEST

static char cut_case[2048];

static void emit_cut_case(void)
{
	log_set_level(LOG_INFO);
	log_error("%s", cut_case);
}

/* The line as journald gets it ("<3>" and the message), cut_case made of
 * fill bytes 'x' and then tail. */
static char *cut_line(size_t fill, const char *tail)
{
	memset(cut_case, 'x', fill);
	snprintf(cut_case + fill, sizeof(cut_case) - fill, "%s", tail);
	return capture_stderr(emit_cut_case, true);
}

static char *repeated(const char *prefix, size_t n, const char *unit, const char *suffix)
{
	static char buf[2048];
	size_t len = (size_t)snprintf(buf, sizeof(buf), "%s", prefix);

	for (size_t i = 0; i < n; i++)
		len += (size_t)snprintf(buf + len, sizeof(buf) - len, "%s", unit);
	snprintf(buf + len, sizeof(buf) - len, "%s", suffix);
	return buf;
}

/* 1024 bytes a line at most, '\n' included; a cut line ends in "..." and
 * never in half an escape. */
START_TEST(cuts_keep_escapes_whole)
{
	char *out;

	out = cut_line(1020, "");	/* exactly full: not cut */
	ck_assert_str_eq(out, repeated("<3>", 1020, "x", "\n"));
	free(out);
	out = cut_line(1021, "");	/* one byte over */
	ck_assert_str_eq(out, repeated("<3>", 1017, "x", "...\n"));
	free(out);
	out = cut_line(1018, "\n");	/* "\x0a" would end 2 bytes past the edge */
	ck_assert_str_eq(out, repeated("<3>", 1017, "x", "...\n"));
	free(out);
	out = cut_line(0, repeated("", 300, "\n", ""));	/* escapes only */
	ck_assert_str_eq(out, repeated("<3>", 254, "\\x0a", "...\n"));
	ck_assert_uint_eq(strlen(out), 1023);
	free(out);
	out = cut_line(1017, "\\\\");	/* "\\" ends at the edge, the next one does not fit */
	ck_assert_str_eq(out, repeated("<3>", 1017, "x", "...\n"));
	free(out);
}
END_TEST

START_TEST(level_names)
{
	ck_assert_int_eq(log_level_from_name("warning"), LOG_WARNING);
	ck_assert_int_eq(log_level_from_name("debug"), LOG_DEBUG);
	ck_assert_int_eq(log_level_from_name("warn"), -1);
	ck_assert_str_eq(log_level_name(LOG_NOTICE), "notice");
}
END_TEST

int main(void)
{
	Suite *s = suite_create("log");
	TCase *tc = tcase_create("log");

	tcase_add_test(tc, journal_lines_carry_priority);
	tcase_add_test(tc, plain_lines_carry_level_names);
	tcase_add_test(tc, long_lines_are_cut_not_overflowed);
	tcase_add_test(tc, control_bytes_are_escaped);
	tcase_add_test(tc, every_byte_is_printable_or_escaped);
	tcase_add_test(tc, cuts_keep_escapes_whole);
	tcase_add_test(tc, level_names);
	suite_add_tcase(s, tc);
	return tl_run_suite(s);
}
