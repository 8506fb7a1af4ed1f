/* SPDX-License-Identifier: ISC */
/* upgrade.h - a new binary in place (SIGUSR2, "upgrade"): checked, then exec'd by the master, same pid. */
#ifndef PREFORKD_UPGRADE_H
#define PREFORKD_UPGRADE_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

struct master;

/* Notes the path of the running binary (at start, before it can be replaced). */
void upgrade_init(void);
/* Begins an upgrade: refused (logged, control_upgrade_finished) when the
 * master is not settled, else the binary at that path is run with -t. */
void upgrade_request(struct master *m, const char *who);
/* pid was reaped: true when it was the check, which then ends the upgrade
 * (failed, logged) or goes on to execve, which returns only if it failed. */
bool upgrade_reaped(struct master *m, pid_t pid, int status);
/* A check that overran is killed. */
void upgrade_tend(struct master *m);
uint64_t upgrade_next_deadline(void);
bool upgrade_checking(void);

#endif
