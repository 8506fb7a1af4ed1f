/* SPDX-License-Identifier: ISC */
/* signals.h - which signals preforkd's processes ignore, and the clean slate a helper gets. */
#ifndef PREFORKD_SIGNALS_H
#define PREFORKD_SIGNALS_H

#include <signal.h>

/* Ignores every signal that would end the process by default and only
 * ever comes from outside (a terminal, kill, "systemctl kill" to the whole
 * cgroup), except those in handled (read through a signalfd). Faults
 * (SIGSEGV, SIGBUS, ...), SIGTERM, SIGKILL, SIGSTOP and SIGCHLD keep their
 * defaults, and so does SIGXCPU: a CPU limit is meant to end us. */
void signals_ignore_stray(const sigset_t *handled);
/* In a child about to execve (async-signal-safe): every signal back to its
 * default (but glibc's own two, which only it may set), nothing blocked,
 * as a program expects. */
void signals_reset_for_exec(void);

#endif
