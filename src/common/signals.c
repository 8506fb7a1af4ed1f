/* SPDX-License-Identifier: ISC */
/* signals.c - which signals preforkd's processes ignore, and the clean slate a helper gets.
 *
 * A worker takes orders from its master only: a signal the master does not
 * forward, sent to every process of the service ("systemctl kill -s USR1"
 * signals the whole cgroup, ^C the whole process group), must not drop its
 * connections. Ignored dispositions survive execve, so a helper gets them
 * back to their defaults. */
#include "config.h"

#include "common/signals.h"

#include <stdbool.h>
#include <stddef.h>

#include "common/array.h"

static const int stray[] = {
	SIGHUP, SIGINT, SIGQUIT, SIGUSR1, SIGUSR2, SIGPIPE, SIGALRM, SIGVTALRM, SIGPROF,
	SIGIO, SIGPWR, SIGSTKFLT, SIGXFSZ,
};

static void set_action(int sig, void (*handler)(int))
{
	struct sigaction sa = { .sa_handler = handler };

	sigemptyset(&sa.sa_mask);
	sigaction(sig, &sa, NULL);	/* fails only for a signal that cannot be caught */
}

void signals_ignore_stray(const sigset_t *handled)
{
	for (size_t i = 0; i < ARRAY_SIZE(stray); i++)
		if (!handled || !sigismember(handled, stray[i]))
			set_action(stray[i], SIG_IGN);
	for (int sig = SIGRTMIN; sig <= SIGRTMAX; sig++)
		if (!handled || !sigismember(handled, sig))
			set_action(sig, SIG_IGN);
}

void signals_add_stray(sigset_t *set)
{
	for (size_t i = 0; i < ARRAY_SIZE(stray); i++)
		sigaddset(set, stray[i]);
	for (int sig = SIGRTMIN; sig <= SIGRTMAX; sig++)
		sigaddset(set, sig);
}

void signals_default_all(void)
{
	/* Whatever we or our own parent ignored. SIGKILL and SIGSTOP cannot be
	 * set, nor can the two signals glibc keeps for itself below SIGRTMIN
	 * (the program's own C library sets them up). */
	for (int sig = 1; sig <= SIGRTMAX; sig++)
		set_action(sig, SIG_DFL);
}

void signals_reset_for_exec(bool dispositions_default)
{
	sigset_t none;

	if (!dispositions_default)
		signals_default_all();
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
}
