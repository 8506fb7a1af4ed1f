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
	tcase_add_test(tc, level_names);
	suite_add_tcase(s, tc);
	return tl_run_suite(s);
}
