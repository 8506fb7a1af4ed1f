/* SPDX-License-Identifier: ISC */
/* procmem.h - how much memory a process, or a process group, uses: from /proc. */
#ifndef PREFORKD_PROCMEM_H
#define PREFORKD_PROCMEM_H

#include <sys/types.h>

/* The resident set of pid in KiB (/proc/PID/statm); 0 when it is gone. */
unsigned long long procmem_resident_kib(pid_t pid);
/* The proportional set size of pid in KiB (Pss of /proc/PID/smaps_rollup),
 * or its resident set where that cannot be read; 0 when it is gone. */
unsigned long long procmem_kib(pid_t pid);
/* The same, summed over every process of process group pgid. */
unsigned long long procmem_group_kib(pid_t pgid);

#endif
