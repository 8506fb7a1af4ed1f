/* SPDX-License-Identifier: ISC */
/* check_spawn.c - spawn_start(), the one way preforkd starts a child: descriptors
 * moved to their numbers and nothing else inherited, group, death signal,
 * credentials, signals, and each failure reported with its step. */
#include "config.h"

#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/spawn.h"
#include "testlib.h"

static char *const no_env[] = { (char *)"PATH=/usr/bin:/bin", NULL };

/* Everything from a pipe until EOF (tl_read_to_eof() is for sockets). */
static char *read_pipe(int fd)
{
	size_t len = 0, cap = 4096;
	char *buf = malloc(cap);
	ssize_t n;

	ck_assert_ptr_nonnull(buf);
	while ((n = read(fd, buf + len, cap - len - 1)) > 0 || (n < 0 && errno == EINTR)) {
		len += n > 0 ? (size_t)n : 0;
		if (cap - len < 2)
			ck_assert_ptr_nonnull(buf = realloc(buf, cap *= 2));
	}
	buf[len] = '\0';
	return buf;
}

/* Runs /bin/sh -c script with fds (stdout: a pipe we read); its output and exit status. */
static char *run(const char *script, struct spawn_plan *plan, int *status)
{
	char *argv[] = { (char *)"/bin/sh", (char *)"-c", (char *)script, NULL };
	struct spawn_failure failed;
	int out[2];
	pid_t pid;
	char *text;

	ck_assert_int_eq(pipe2(out, O_CLOEXEC), 0);
	plan->argv = argv;
	if (!plan->envp)
		plan->envp = no_env;
	if (!plan->nfds) {
		static struct spawn_fd fds[3];
		int null = open("/dev/null", O_RDWR | O_CLOEXEC);

		fds[0] = (struct spawn_fd){ null, STDIN_FILENO };
		fds[1] = (struct spawn_fd){ out[1], STDOUT_FILENO };
		fds[2] = (struct spawn_fd){ null, STDERR_FILENO };
		plan->fds = fds;
		plan->nfds = 3;
	}
	pid = spawn_start(plan, &failed);
	ck_assert_int_gt(pid, 0);
	ck_assert_msg(!failed.step, "%s: %s", failed.step ? failed.step : "", strerror(failed.err));
	close(out[1]);
	if (plan->nfds == 3 && plan->fds[0].to == STDIN_FILENO)
		close(plan->fds[0].from);
	text = read_pipe(out[0]);
	close(out[0]);
	ck_assert_int_eq(waitpid(pid, status, 0), pid);
	return text;
}

/* Starts argv[0] with plan and waits for it; its exit status. */
static int spawn_wait(char **argv, struct spawn_plan *plan)
{
	struct spawn_failure failed;
	int status;
	pid_t pid;

	plan->argv = argv;
	plan->envp = no_env;
	pid = spawn_start(plan, &failed);
	ck_assert_int_gt(pid, 0);
	ck_assert_msg(!failed.step, "%s: %s", failed.step ? failed.step : "", strerror(failed.err));
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	return status;
}

/* Only the planned descriptors, at their numbers, inheritable there; ours
 * stay close-on-exec. A number another one is to take is moved out of the
 * way first, and one already at its number is handed on too. */
START_TEST(descriptors_moved_and_nothing_else)
{
	char *ls[] = { (char *)"/bin/ls", (char *)"-v", (char *)"/proc/self/fd", NULL };
	char *write_each[] = { (char *)"/bin/bash", (char *)"-c",
			       (char *)"echo thirty >&30; echo thirty-one >&31; echo thirty-two >&32",
			       NULL };
	int listing[2], a[2], b[2], c[2], null = open("/dev/null", O_RDWR | O_CLOEXEC);
	struct spawn_fd fds[6];
	struct spawn_plan plan = { .fds = fds, .nfds = 6 };
	char *text;

	ck_assert_int_eq(pipe2(listing, O_CLOEXEC), 0);
	ck_assert_int_eq(pipe2(a, O_CLOEXEC), 0);
	ck_assert_int_eq(pipe2(b, O_CLOEXEC), 0);
	ck_assert_int_eq(pipe2(c, O_CLOEXEC), 0);
	/* Our 40 (a) is to be 31, and our 31 (b), listed after it, is to be 30:
	 * moved in that order without care, b would be lost. Our 32 (c) stays. */
	ck_assert_int_eq(dup3(a[1], 40, O_CLOEXEC), 40);
	ck_assert_int_eq(dup3(b[1], 31, O_CLOEXEC), 31);
	ck_assert_int_eq(dup3(c[1], 32, O_CLOEXEC), 32);
	fds[0] = (struct spawn_fd){ null, STDIN_FILENO };
	fds[1] = (struct spawn_fd){ listing[1], STDOUT_FILENO };
	fds[2] = (struct spawn_fd){ null, STDERR_FILENO };
	fds[3] = (struct spawn_fd){ 40, 31 };
	fds[4] = (struct spawn_fd){ 31, 30 };
	fds[5] = (struct spawn_fd){ 32, 32 };
	ck_assert_int_eq(spawn_wait(ls, &plan), 0);
	ck_assert_int_eq(spawn_wait(write_each, &plan), 0);
	for (int fd = 30; fd <= 40; fd++)
		if (fd == 31 || fd == 32 || fd == 40)
			close(fd);
	close(listing[1]);
	close(a[1]);
	close(b[1]);
	close(c[1]);
	close(null);
	text = read_pipe(listing[0]);
	ck_assert_str_eq(text, "0\n1\n2\n3\n30\n31\n32\n");	/* ls adds its own 3 */
	free(text);
	text = read_pipe(b[0]);
	ck_assert_str_eq(text, "thirty\n");
	free(text);
	text = read_pipe(a[0]);
	ck_assert_str_eq(text, "thirty-one\n");
	free(text);
	text = read_pipe(c[0]);
	ck_assert_str_eq(text, "thirty-two\n");
	free(text);
	close(listing[0]);
	close(a[0]);
	close(b[0]);
	close(c[0]);
}
END_TEST

/* Its own process group, the environment given and nothing else, every
 * signal at its default and none blocked, in its directory. */
#define ENV_LINE "\nONLY=this PATH=/usr/bin:/bin \n"
START_TEST(group_environment_signals_directory)
{
	char *const env[] = { (char *)"PATH=/usr/bin:/bin", (char *)"ONLY=this", NULL };
	struct spawn_plan plan = { .envp = env, .new_group = true, .directory = "/tmp" };
	unsigned long long blocked, ignored;
	long group;
	sigset_t block;
	char *out, *env_line;
	int status;

	sigemptyset(&block);
	sigaddset(&block, SIGUSR1);
	sigprocmask(SIG_BLOCK, &block, NULL);
	signal(SIGUSR2, SIG_IGN);
	out = run("ps -o pgid= -p $$ | tr -d ' '; env | grep -v '^PWD=' | sort | tr '\\n' ' '; "
		  "echo; grep -E '^Sig(Blk|Ign)' /proc/self/status | tr '\\t\\n' '  '; pwd",
		  &plan, &status);
	ck_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	env_line = strchr(out, '\n');
	ck_assert_ptr_nonnull(env_line);
	ck_assert_msg(sscanf(out, "%ld\n", &group) == 1 && group != (long)getpgrp(),
		      "same group as ours: %s", out);
	ck_assert_msg(strncmp(env_line, ENV_LINE, strlen(ENV_LINE)) == 0, "%s", out);
	/* 32 and 33 are glibc's own: no program may set them (some test
	 * runners leave them ignored). */
	ck_assert_msg(sscanf(env_line + strlen(ENV_LINE), "SigBlk: %llx SigIgn: %llx /tmp\n", &blocked,
			     &ignored) == 2, "%s", out);
	ck_assert_msg(blocked == 0 && (ignored & ~0x180000000ULL) == 0, "%s", out);
	ck_assert_ptr_nonnull(strstr(out, " /tmp\n"));
	free(out);
	signal(SIGUSR2, SIG_DFL);
	sigprocmask(SIG_UNBLOCK, &block, NULL);
}
END_TEST

/* The death signal reaches the child when its parent dies. */
START_TEST(dies_with_its_parent)
{
	char *argv[] = { (char *)"/bin/sleep", (char *)"30", NULL };
	struct spawn_plan plan = { .argv = argv, .envp = no_env, .death_signal = SIGKILL };
	int p[2];
	pid_t parent, child = 0;

	ck_assert_int_eq(prctl(PR_SET_CHILD_SUBREAPER, 1), 0);
	ck_assert_int_eq(pipe(p), 0);
	parent = fork();
	if (parent == 0) {
		struct spawn_failure failed;
		pid_t pid = spawn_start(&plan, &failed);

		(void)!write(p[1], &pid, sizeof(pid));
		pause();
		_exit(0);
	}
	ck_assert_int_eq(read(p[0], &child, sizeof(child)), (ssize_t)sizeof(child));
	ck_assert_int_gt(child, 0);
	kill(parent, SIGKILL);
	ck_assert_int_eq(waitpid(parent, NULL, 0), parent);
	ck_assert(tl_wait_gone(child, 5000));
}
END_TEST

/* Each way it can fail, named, with errno; the child exits 126 or 127. */
START_TEST(failures_are_reported)
{
	char *missing[] = { (char *)"/nonexistent/program", NULL };
	char *sh[] = { (char *)"/bin/sh", (char *)"-c", (char *)"exit 0", NULL };
	struct spawn_fd bad_fd[] = { { 999, 3 } };
	struct spawn_plan plan = { .argv = missing, .envp = no_env };
	struct spawn_failure failed;
	int status;
	pid_t pid;

	pid = spawn_start(&plan, &failed);
	ck_assert_int_gt(pid, 0);
	ck_assert_str_eq(failed.step, "execve");
	ck_assert_int_eq(failed.err, ENOENT);
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	ck_assert(WIFEXITED(status) && WEXITSTATUS(status) == 127);

	plan.argv = sh;
	plan.directory = "/nonexistent";
	pid = spawn_start(&plan, &failed);
	ck_assert_str_eq(failed.step, "chdir");
	ck_assert_int_eq(failed.err, ENOENT);
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	ck_assert(WIFEXITED(status) && WEXITSTATUS(status) == 126);

	plan.directory = NULL;
	plan.fds = bad_fd;
	plan.nfds = 1;
	pid = spawn_start(&plan, &failed);
	ck_assert_str_eq(failed.step, "dup2");
	ck_assert_int_eq(failed.err, EBADF);
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);

	plan.nfds = SPAWN_FDS_MAX + 1;
	ck_assert_int_eq(spawn_start(&plan, &failed), -1);
	ck_assert_int_eq(errno, E2BIG);
}
END_TEST

/* As root: the child becomes the given user, groups and all, and cannot go back. */
START_TEST(credentials)
{
	struct passwd *pw = getpwnam("nobody");
	gid_t groups[] = { 4242 };
	struct spawn_credentials as;
	struct spawn_plan plan = { .as = &as };
	char *out;
	int status;

	if (geteuid() != 0 || !pw) {
		fprintf(stderr, "credentials: needs root and user nobody; skipped\n");
		return;
	}
	as = (struct spawn_credentials){ pw->pw_uid, pw->pw_gid, groups, 1 };
	out = run("id -u; id -g; id -G; grep -E '^(Uid|Gid):' /proc/self/status | tr '\\t' ' '",
		  &plan, &status);
	{
		char want[256];

		snprintf(want, sizeof(want), "%u\n%u\n%u 4242\nUid: %u %u %u %u\nGid: %u %u %u %u\n",
			 (unsigned)pw->pw_uid, (unsigned)pw->pw_gid, (unsigned)pw->pw_gid,
			 (unsigned)pw->pw_uid, (unsigned)pw->pw_uid, (unsigned)pw->pw_uid,
			 (unsigned)pw->pw_uid, (unsigned)pw->pw_gid, (unsigned)pw->pw_gid,
			 (unsigned)pw->pw_gid, (unsigned)pw->pw_gid);
		ck_assert_str_eq(out, want);
	}
	free(out);
	ck_assert_int_eq(geteuid(), 0);	/* ours are untouched */
}
END_TEST

int main(void)
{
	Suite *s = suite_create("spawn");
	TCase *tc = tcase_create("spawn");

	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, descriptors_moved_and_nothing_else);
	tcase_add_test(tc, group_environment_signals_directory);
	tcase_add_test(tc, dies_with_its_parent);
	tcase_add_test(tc, failures_are_reported);
	tcase_add_test(tc, credentials);
	suite_add_tcase(s, tc);
	return tl_run_suite(s);
}
