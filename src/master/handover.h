/* SPDX-License-Identifier: ISC */
/* handover.h - what one image of the master hands the next across an upgrade's execve: a manifest in a memfd. */
#ifndef PREFORKD_HANDOVER_H
#define PREFORKD_HANDOVER_H

#include <stddef.h>

struct config;
struct master;

#define HANDOVER_ENV "PREFORKD_HANDOVER"	/* the manifest's descriptor */
#define HANDOVER_FORMAT 1			/* its first line: "preforkd-handover 1" */

/* What a manifest's reader must share with its writer besides the format:
 * the layout of the shared memory the running workers write ("counters
 * 17x192 limits 4211..."), printed by "preforkd -L". */
const char *handover_layout(void);

/* The descriptors a manifest names, to lose close-on-exec just before
 * execve; owned: the ones handover_write made (closed by _free). */
struct handover_fds {
	int *fds;
	size_t n, cap;
	int *owned;
	size_t nowned, owned_cap;
};

/* Writes the manifest of m (listeners, generations and their workers,
 * shared memory, the pidfile, control and metrics sockets, the app
 * workers' notify socket, the control clients waiting for the upgrade)
 * into a sealed memfd: its descriptor, or -1 (logged). */
int handover_write(struct master *m, struct handover_fds *fds);
void handover_fds_free(struct handover_fds *fds);

/* At start: 1 when the last image handed everything over and m now has it
 * (serving and draining generations, listeners, sockets, counts); 0 when
 * there is no handover; -1 when there was one that could not be taken
 * (missing, truncated, another format: logged): what could be (the
 * listeners) is kept, the rest is closed and the last image's workers are
 * stopped (handover_abandon), and m starts from conf as after a restart.
 * Either way no descriptor it did not claim stays open. */
int handover_adopt(struct master *m);
/* After a refused handover: stops the last image's workers (our children)
 * and waits for them, up to conf's shutdown-timeout, then kills them. */
void handover_abandon(struct master *m, const struct config *conf);

#endif
