/* SPDX-License-Identifier: ISC */
/* check_log.c - the log line format, plain and under journald, escaping, and writes that never wait. */
#include "config.h"

#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/log.h"
#include "testlib.h"

static char dir[64], path[128];

/* Puts fd on stderr, JOURNAL_STREAM naming it (or not), and runs log_init();
 * returns the stderr to restore. */
static int stderr_onto(int fd, bool as_journal)
{
	int saved = dup(STDERR_FILENO);
	struct stat st;
	char env[64];

	ck_assert_int_ge(saved, 0);
	ck_assert_int_eq(dup2(fd, STDERR_FILENO), STDERR_FILENO);
	ck_assert_int_eq(fstat(STDERR_FILENO, &st), 0);
	snprintf(env, sizeof(env), "%llu:%llu", (unsigned long long)st.st_dev,
		 (unsigned long long)(as_journal ? st.st_ino : st.st_ino + 1));
	setenv("JOURNAL_STREAM", env, 1);
	log_init();
	return saved;
}

static void stderr_restore(int saved)
{
	dup2(saved, STDERR_FILENO);
	close(saved);
}

/* Runs fn with stderr going to a file; returns what it wrote. */
static char *capture_stderr(void (*fn)(void), bool as_journal)
{
	FILE *f;
	int saved;

	tl_mkdtemp(dir, sizeof(dir));
	snprintf(path, sizeof(path), "%s/stderr", dir);
	f = fopen(path, "we");
	ck_assert_ptr_nonnull(f);
	saved = stderr_onto(fileno(f), as_journal);
	fn();
	stderr_restore(saved);
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

/* Reads while the log retries, until nothing waits any more. */
static void reader_drain_log(struct tl_reader *r)
{
	uint64_t give_up = tl_now_ms() + 3000;

	tl_reader_take(r);
	while (log_next_deadline()) {
		uint64_t due = log_next_deadline(), now = tl_now_ms();	/* both CLOCK_MONOTONIC */

		ck_assert_msg(now < give_up, "log lines still waiting after 3 s");
		poll(NULL, 0, due > now ? (int)(due - now) : 0);
		log_flush();
		tl_reader_take(r);
	}
}

/* A pipe holding one page: a few dozen lines fill it. */
static void small_pipe(int p[2])
{
	ck_assert_int_eq(pipe2(p, O_CLOEXEC), 0);
	ck_assert_int_ge(fcntl(p[1], F_SETPIPE_SZ, 4096), 4096);
}

/* Lines "<tag> N" (perhaps followed by more after a space), whole and in
 * order, and reports of the ones dropped where they went missing ("<report>M
 * log lines dropped"): N goes on after a report from where the M dropped ones
 * end, up to total. Returns how many lines arrived. */
static unsigned assert_arrived_or_counted(const char *out, const char *tag, unsigned total,
					  const char *report)
{
	unsigned next = 0, arrived = 0;
	const char *line = out, *end;
	char want[64];

	for (; (end = strchr(line, '\n')); line = end + 1) {
		const char *at = strstr(line, tag), *rep = strstr(line, report);
		unsigned long dropped;

		if (at && at < end) {
			snprintf(want, sizeof(want), "%s %u", tag, next);
			ck_assert_msg(strncmp(at, want, strlen(want)) == 0 &&
				      (at[strlen(want)] == ' ' || at[strlen(want)] == '\n'),
				      "expected %s got %.*s", want, (int)(end - line), line);
			next++;
			arrived++;
			continue;
		}
		ck_assert_msg(rep && rep < end &&
			      sscanf(rep + strlen(report), "%lu log lines dropped: stderr was "
				     "not being read\n", &dropped) == 1, "unexpected line %.*s",
			      (int)(end - line), line);
		next += (unsigned)dropped;
	}
	ck_assert_str_eq(line, "");	/* whole lines only */
	ck_assert_msg(next == total, "%u arrived, %u dropped, total %u", arrived, next - arrived,
		      total);
	return arrived;
}

/* stderr a pipe (or a terminal): fd 2 becomes a non-blocking open file
 * description of its own, the one we were given is left as it was. */
START_TEST(pipe_is_reopened_nonblocking)
{
	struct stat ours, theirs;
	struct tl_reader r;
	int p[2], saved;

	ck_assert_int_eq(pipe2(p, O_CLOEXEC), 0);
	saved = stderr_onto(p[1], false);
	ck_assert(fcntl(STDERR_FILENO, F_GETFL) & O_NONBLOCK);
	ck_assert(!(fcntl(STDERR_FILENO, F_GETFD) & FD_CLOEXEC));
	ck_assert(!(fcntl(p[1], F_GETFL) & O_NONBLOCK));
	ck_assert_int_eq(fstat(STDERR_FILENO, &ours), 0);
	ck_assert_int_eq(fstat(p[1], &theirs), 0);
	ck_assert(ours.st_ino == theirs.st_ino && ours.st_dev == theirs.st_dev);
	log_warn("through the pipe");
	stderr_restore(saved);
	tl_reader_init(&r, p[0]);
	tl_reader_take(&r);
	ck_assert_ptr_nonnull(strstr(r.text, ": warning: through the pipe\n"));
	tl_reader_free(&r);
}
END_TEST

/* Nobody reads the pipe: logging never waits, every line either arrives
 * whole or is counted, and the count comes where the lines went missing,
 * once a reader takes lines again. */
START_TEST(full_pipe_drops_are_counted)
{
	enum { LINES = 2000 };
	struct tl_reader r;
	int p[2], saved;
	uint64_t start;
	unsigned arrived;
	size_t before;

	small_pipe(p);
	saved = stderr_onto(p[1], false);
	log_set_level(LOG_INFO);
	start = tl_now_ms();
	for (unsigned i = 0; i < LINES; i++)
		log_info("line %u", i);
	ck_assert_uint_lt(tl_now_ms() - start, 1000);
	ck_assert_uint_ne(log_next_deadline(), 0);
	/* A reader at last, and room for everything waiting. */
	ck_assert_int_ge(fcntl(p[0], F_SETPIPE_SZ, 1 << 20), 1 << 18);
	tl_reader_init(&r, p[0]);
	reader_drain_log(&r);
	arrived = assert_arrived_or_counted(r.text, ": info: line", LINES, ": warning: ");
	/* The pipe's page and the 64 KiB queue of them, and no more. */
	ck_assert_uint_gt(arrived, 600);
	ck_assert_uint_lt(arrived, LINES);
	before = r.len;
	log_info("after");
	tl_reader_take(&r);
	ck_assert_ptr_nonnull(strstr(r.text + before, ": info: after\n"));
	stderr_restore(saved);
	tl_reader_free(&r);
}
END_TEST

/* A forked child writes its own lines, not the parent's that wait. */
START_TEST(forked_child_starts_empty)
{
	struct tl_reader r;
	int p[2], saved;

	small_pipe(p);
	saved = stderr_onto(p[1], false);
	log_set_level(LOG_INFO);
	for (unsigned i = 0; i < 500; i++)
		log_info("parent %u", i);
	ck_assert_uint_ne(log_next_deadline(), 0);
	log_forked();
	ck_assert_uint_eq(log_next_deadline(), 0);
	ck_assert_int_ge(fcntl(p[0], F_SETPIPE_SZ, 1 << 20), 1 << 18);
	tl_reader_init(&r, p[0]);
	tl_reader_take(&r);
	log_info("child");
	reader_drain_log(&r);
	ck_assert_ptr_null(strstr(r.text, "dropped"));
	ck_assert_ptr_nonnull(strstr(r.text, ": info: child\n"));
	ck_assert_uint_lt(strlen(strstr(r.text, ": info: child\n")), 16);	/* the last line */
	stderr_restore(saved);
	tl_reader_free(&r);
}
END_TEST

/* At exit the wait for a reader is bounded; what is left is given up. */
START_TEST(drain_is_bounded)
{
	struct tl_reader r;
	int p[2], saved;
	uint64_t start;
	unsigned arrived;

	small_pipe(p);
	saved = stderr_onto(p[1], false);
	log_set_level(LOG_INFO);
	for (unsigned i = 0; i < 500; i++)
		log_info("line %u", i);
	start = tl_now_ms();
	log_drain(100);
	ck_assert_uint_ge(tl_now_ms() - start, 100);
	ck_assert_uint_lt(tl_now_ms() - start, 1000);
	ck_assert_int_ge(fcntl(p[0], F_SETPIPE_SZ, 1 << 20), 1 << 18);
	tl_reader_init(&r, p[0]);
	tl_reader_take(&r);
	log_info("line 500");	/* after the count of those given up */
	reader_drain_log(&r);
	arrived = assert_arrived_or_counted(r.text, ": info: line", 501, ": warning: ");
	ck_assert_uint_gt(arrived, 10);
	ck_assert_uint_lt(arrived, 501);
	stderr_restore(saved);
	tl_reader_free(&r);
}
END_TEST

/* The journal's stream is a socket: sent to without waiting (our open file
 * description of it stays blocking), with priority prefixes, escaped. */
START_TEST(journal_socket_never_waits)
{
	enum { LINES = 3000 };
	struct tl_reader r;
	int sv[2], saved, small = 4096, large = 1 << 20;
	uint64_t start;
	unsigned arrived;

	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	ck_assert_int_eq(setsockopt(sv[1], SOL_SOCKET, SO_SNDBUF, &small, sizeof(small)), 0);
	saved = stderr_onto(sv[1], true);
	ck_assert(!(fcntl(STDERR_FILENO, F_GETFL) & O_NONBLOCK));
	log_set_level(LOG_INFO);
	log_error("x\n<0>forged");
	start = tl_now_ms();
	for (unsigned i = 0; i < LINES; i++)
		log_info("line %u%s", i, i % 2 ? "" : " and some more text to fill the queue sooner");
	ck_assert_uint_lt(tl_now_ms() - start, 1000);
	ck_assert_uint_ne(log_next_deadline(), 0);
	ck_assert_int_eq(setsockopt(sv[1], SOL_SOCKET, SO_SNDBUF, &large, sizeof(large)), 0);
	tl_reader_init(&r, sv[0]);
	reader_drain_log(&r);
	ck_assert_str_eq(strtok(r.text, "\n"), "<3>x\\x0a<0>forged");
	arrived = assert_arrived_or_counted(r.text + strlen(r.text) + 1, "<6>line", LINES, "<4>");
	ck_assert_uint_gt(arrived, 10);
	ck_assert_uint_lt(arrived, LINES);
	stderr_restore(saved);
	tl_reader_free(&r);
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
	tcase_add_test(tc, pipe_is_reopened_nonblocking);
	tcase_add_test(tc, full_pipe_drops_are_counted);
	tcase_add_test(tc, forked_child_starts_empty);
	tcase_add_test(tc, drain_is_bounded);
	tcase_add_test(tc, journal_socket_never_waits);
	tcase_add_test(tc, level_names);
	suite_add_tcase(s, tc);
	return tl_run_suite(s);
}
