/* SPDX-License-Identifier: ISC */
/* procmem.c - how much memory a process, or a process group, uses: from /proc.
 *
 * Pss, not Rss: forked workers share most of their pages with the master
 * and each other, and Rss counts every shared page in full in each. The
 * kernel walks the page tables to answer smaps_rollup, so this is for a
 * sample every few seconds, not for every turn of a loop. */
#include "config.h"

#include "master/procmem.h"

#include <ctype.h>
#include <dirent.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

unsigned long long procmem_resident_kib(pid_t pid)
{
	char path[64];
	unsigned long long size, resident = 0;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%ld/statm", (long)pid);
	f = fopen(path, "re");
	if (!f)
		return 0;
	if (fscanf(f, "%llu %llu", &size, &resident) != 2)
		resident = 0;
	fclose(f);
	return resident * (unsigned long long)sysconf(_SC_PAGESIZE) / 1024;
}

unsigned long long procmem_kib(pid_t pid)
{
	char path[64], line[128];
	unsigned long long kib = 0;
	bool found = false;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%ld/smaps_rollup", (long)pid);
	f = fopen(path, "re");
	if (!f)
		return procmem_resident_kib(pid);
	while (!found && fgets(line, sizeof(line), f))
		found = sscanf(line, "Pss: %llu kB", &kib) == 1;
	fclose(f);
	return found ? kib : procmem_resident_kib(pid);
}

/* The process group of pid, from /proc/PID/stat (after the name, which
 * may hold anything, up to its last ')'); -1 when gone. */
static pid_t group_of(pid_t pid)
{
	char path[64], buf[512], *p;
	long pgrp = -1;
	size_t n;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%ld/stat", (long)pid);
	f = fopen(path, "re");
	if (!f)
		return -1;
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	p = strrchr(buf, ')');
	if (!p || sscanf(p + 1, " %*c %*d %ld", &pgrp) != 1)
		return -1;
	return (pid_t)pgrp;
}

unsigned long long procmem_group_kib(pid_t pgid)
{
	unsigned long long kib = 0;
	struct dirent *e;
	DIR *d = opendir("/proc");

	if (!d)
		return procmem_kib(pgid);
	while ((e = readdir(d))) {
		pid_t pid;

		if (!isdigit((unsigned char)e->d_name[0]))
			continue;
		pid = (pid_t)strtol(e->d_name, NULL, 10);
		if (group_of(pid) == pgid)
			kib += procmem_kib(pid);
	}
	closedir(d);
	return kib;
}
