/* SPDX-License-Identifier: ISC */
/* nofile.h - RLIMIT_NOFILE: raised at start, given back to helpers. */
#ifndef PREFORKD_NOFILE_H
#define PREFORKD_NOFILE_H

/* The master at start: the soft limit up to the hard one, as systemd
 * advises for services (its default soft limit is 1024, for the sake of
 * select()); the limit it had is kept for exec helpers. */
void nofile_raise(void);
/* In a vfork child before execve (async-signal-safe): the soft limit
 * preforkd was started with, for programs that still use select(). */
void nofile_restore_for_exec(void);
/* The most descriptors a process of ours can have: the hard limit. */
unsigned long nofile_limit(void);

#endif
