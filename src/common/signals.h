/* SPDX-License-Identifier: ISC */
/* signals.h - which signals preforkd's processes ignore, and the clean slate a helper gets. */
#ifndef PREFORKD_SIGNALS_H
#define PREFORKD_SIGNALS_H

#include <signal.h>
#include <stdbool.h>

/* Ignores every signal that would end the process by default and only
 * ever comes from outside (a terminal, kill, "systemctl kill" to the whole
 * cgroup), except those in handled (read through a signalfd). Faults
 * (SIGSEGV, SIGBUS, ...), SIGTERM, SIGKILL, SIGSTOP and SIGCHLD keep their
 * defaults, and so does SIGXCPU: a CPU limit is meant to end us. */
void signals_ignore_stray(const sigset_t *handled);
/* Adds to set every signal signals_ignore_stray() ignores: a process that
 * starts programs blocks them instead and reads them off a signalfd, so
 * that its children need no disposition set back. */
void signals_add_stray(sigset_t *set);
/* Every signal's disposition back to its default (but glibc's own two,
 * which only it may set). */
void signals_default_all(void);
/* In a child about to execve (async-signal-safe): every signal at its
 * default and nothing blocked, as a program expects. With
 * dispositions_default the caller vouches for the first part. */
void signals_reset_for_exec(bool dispositions_default);

#endif
