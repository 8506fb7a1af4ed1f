/* SPDX-License-Identifier: ISC */
/* spawn.h - one way to start a child process: a plan, and vfork+execve to carry it out. */
#ifndef PREFORKD_SPAWN_H
#define PREFORKD_SPAWN_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#define SPAWN_FDS_MAX 4096	/* descriptors a plan may hand on */
/* What a program started with a clean environment finds its programs by,
 * unless the config's "env" sets PATH. */
#define SPAWN_DEFAULT_PATH "PATH=/usr/local/bin:/usr/bin:/bin"

/* A descriptor the child gets: from (ours, close-on-exec like every one of
 * ours) becomes to in the child, the only place it is made inheritable. */
struct spawn_fd {
	int from, to;
};

/* Who the child becomes before execve; the caller resolves the groups
 * (getgrouplist), since the child may call nothing that is not
 * async-signal-safe. */
struct spawn_credentials {
	uid_t uid;
	gid_t gid;
	const gid_t *groups;
	size_t ngroups;
};

struct spawn_plan {
	char *const *argv;		/* argv[0]: an absolute path, no PATH search */
	char *const *envp;		/* the whole environment */
	const char *directory;		/* chdir there first; NULL: stay */
	const struct spawn_fd *fds;	/* the child has these and no other above 2; */
	size_t nfds;			/* 0, 1, 2 not in it are ours, as they are */
	bool new_group;			/* its own process group, so a group signal ends what it forks */
	bool signals_default;		/* the caller's dispositions are all the defaults already */
	pid_t parent;			/* with death_signal: our pid, if known; 0: asked */
	int death_signal;		/* sent when we die (PR_SET_PDEATHSIG); 0: none */
	const struct spawn_credentials *as;	/* NULL: as we are */
	/* Where the child writes its own pid in decimal before its execve
	 * (LISTEN_PID=, WATCHDOG_PID=): each a buffer of SPAWN_PID_TEXT bytes,
	 * typically inside a string of envp. */
	char *const *pid_texts;
	size_t npid_texts;
};

#define SPAWN_PID_TEXT 12	/* a pid in decimal and its NUL */

/* What went wrong in the child before its program ran. */
struct spawn_failure {
	const char *step;	/* "dup2", "setgroups", "setgid", "setuid", "chdir", "execve"; NULL: none */
	int err;		/* errno */
};

/* Starts plan's program; returns its pid (-1 with errno when vfork fails,
 * or E2BIG for more than SPAWN_FDS_MAX descriptors).
 * Every signal is at its default in the child, nothing blocked, the soft
 * descriptor limit the one preforkd started with. When the child could not
 * run the program, *failed says where and why (the child then exits 126,
 * or 127 when execve failed): vfork returns only once it has run it or
 * given up. */
pid_t spawn_start(const struct spawn_plan *plan, struct spawn_failure *failed);
/* The same, and *pidfd a descriptor of the child (close-on-exec), made with
 * it: the child cannot be reaped and its pid reused before we have it. */
pid_t spawn_start_pidfd(const struct spawn_plan *plan, struct spawn_failure *failed, int *pidfd);
/* Whether a child has closed every descriptor of ours it was not given by
 * the time spawn_start() returns (close_range, Linux 5.9). When not, copies
 * of them live until its execve is done, which the parent does not wait
 * for: a descriptor it closes meanwhile stays in its epoll sets. */
bool spawn_closes_the_rest(void);

#endif
