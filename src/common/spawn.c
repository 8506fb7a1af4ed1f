/* SPDX-License-Identifier: ISC */
/* spawn.c - one way to start a child process: a plan, and vfork+execve to carry it out.
 *
 * vfork rather than posix_spawn: the child needs PR_SET_PDEATHSIG (a worker
 * killed with SIGKILL must not leave helpers holding clients), which
 * posix_spawn cannot set. The child shares our memory until its execve, so
 * it only makes system calls, and writes nothing of ours but *failed. The
 * credentials are set with raw system calls: glibc's setuid() would try to
 * tell the threads of a process the child only borrows the memory of. */
#include "config.h"

#include "common/spawn.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/close_range.h>
#include <signal.h>
#include <sched.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "common/nofile.h"
#include "common/signals.h"

/* An exit before the execve: ours are closed first, since the vfork
 * parent resumes before an exit closes them (see move_fds). */
static void __attribute__((noreturn)) child_exit(int status)
{
	close_range(3, ~0U, 0);
	_exit(status);
}

static void __attribute__((noreturn)) fail(volatile struct spawn_failure *failed,
					  const char *step, int status)
{
	failed->err = errno;
	failed->step = step;
	child_exit(status);
}

/* Each descriptor to its number, and nothing else above stdio. One whose
 * number another one is to take is moved out of the way first; one already
 * at its number only loses close-on-exec (dup2 onto itself would keep it).
 * The rest are closed here, not left to the execve: a vfork parent resumes
 * once the execve has replaced the memory, before the kernel closes
 * close-on-exec descriptors (an exit too: child_exit), and a socket the
 * parent closes then would live on in its epoll set through our copy
 * (spawn_closes_the_rest()). */
static void move_fds(const struct spawn_plan *plan, volatile struct spawn_failure *failed)
{
	int from[SPAWN_FDS_MAX], highest = 2;

	for (size_t i = 0; i < plan->nfds; i++)
		if (plan->fds[i].to > highest)
			highest = plan->fds[i].to;
	/* Below the highest, what no descriptor takes goes at the execve
	 * (ours are close-on-exec anyway; a caller's may not be). */
	if (highest > 2)
		close_range(3, (unsigned)highest, CLOSE_RANGE_CLOEXEC);
	for (size_t i = 0; i < plan->nfds; i++) {
		from[i] = plan->fds[i].from;
		if (from[i] != plan->fds[i].to && from[i] <= highest &&
		    (from[i] = fcntl(from[i], F_DUPFD_CLOEXEC, highest + 1)) < 0)
			fail(failed, "dup2", 126);
	}
	for (size_t i = 0; i < plan->nfds; i++) {
		int to = plan->fds[i].to;

		if (from[i] == to ? fcntl(to, F_SETFD, 0) < 0 : dup2(from[i], to) < 0)
			fail(failed, "dup2", 126);
	}
	/* Before Linux 5.9 this fails: the execve closes them, later. */
	close_range((unsigned)highest + 1, ~0U, 0);
}

bool spawn_closes_the_rest(void)
{
	/* Closing a range that holds no descriptor: only the call is tried. */
	return close_range(~0U, ~0U, 0) == 0;
}

static void become(const struct spawn_credentials *as, volatile struct spawn_failure *failed)
{
	if (syscall(SYS_setgroups, as->ngroups, as->groups) < 0)
		fail(failed, "setgroups", 126);
	if (syscall(SYS_setresgid, as->gid, as->gid, as->gid) < 0)
		fail(failed, "setgid", 126);
	if (syscall(SYS_setresuid, as->uid, as->uid, as->uid) < 0)
		fail(failed, "setuid", 126);
}

/* Our pid into each of the plan's buffers. No array of its own: the child
 * may run on child_stack, which every child shares and none returns from,
 * and AddressSanitizer would leave such an array's redzones poisoned there
 * for the next child. */
static void write_pid(const struct spawn_plan *plan)
{
	unsigned long pid = (unsigned long)syscall(SYS_getpid);

	for (size_t i = 0; i < plan->npid_texts; i++) {
		char *text = plan->pid_texts[i];
		size_t n = 1;

		for (unsigned long p = pid; p >= 10; p /= 10)
			n++;
		text[n] = '\0';
		for (unsigned long p = pid; n > 0; p /= 10)
			text[--n] = (char)('0' + p % 10);
	}
}

static void __attribute__((noreturn)) run_child(const struct spawn_plan *plan, pid_t parent,
					       volatile struct spawn_failure *failed)
{
	if (plan->new_group)
		setpgid(0, 0);
	signals_reset_for_exec(plan->signals_default);
	nofile_restore_for_exec();
	move_fds(plan, failed);
	if (plan->as)
		become(plan->as, failed);
	/* After become(): a change of credentials clears the death signal. */
	if (plan->death_signal) {
		prctl(PR_SET_PDEATHSIG, plan->death_signal);
		if (getppid() != parent)
			child_exit(126);	/* we died before the signal was set: nobody to serve */
	}
	write_pid(plan);
	if (plan->directory && chdir(plan->directory) < 0)
		fail(failed, "chdir", 126);
	execve(plan->argv[0], plan->argv, plan->envp);
	fail(failed, "execve", 127);
}

/* With a pidfd the child is started by clone(CLONE_VFORK | CLONE_PIDFD) on
 * a stack of its own, which is vfork with the descriptor made at once. The
 * parent waits while the child runs, so one stack serves every child. */
#define CHILD_STACK_SIZE (256 * 1024)
static char child_stack[CHILD_STACK_SIZE] __attribute__((aligned(64)));

struct child_args {
	const struct spawn_plan *plan;
	pid_t parent;
	volatile struct spawn_failure *failed;
};

static int child_main(void *arg)
{
	const struct child_args *a = arg;

	run_child(a->plan, a->parent, a->failed);
}

static pid_t start(const struct spawn_plan *plan, struct spawn_failure *failed, int *pidfd)
{
	volatile struct spawn_failure result = { NULL, 0 };
	struct child_args args = { plan, plan->parent ? plan->parent : getpid(), &result };
	pid_t pid;

	if (plan->nfds > SPAWN_FDS_MAX) {
		errno = E2BIG;
		return -1;
	}
	if (pidfd) {
		*pidfd = -1;
		pid = clone(child_main, child_stack + sizeof(child_stack),
			    CLONE_VM | CLONE_VFORK | CLONE_PIDFD | SIGCHLD, &args, pidfd);
	} else {
		pid = vfork();
		if (pid == 0)
			run_child(plan, args.parent, &result);
	}
	failed->step = result.step;
	failed->err = result.err;
	return pid;
}

pid_t spawn_start(const struct spawn_plan *plan, struct spawn_failure *failed)
{
	return start(plan, failed, NULL);
}

pid_t spawn_start_pidfd(const struct spawn_plan *plan, struct spawn_failure *failed, int *pidfd)
{
	return start(plan, failed, pidfd);
}
