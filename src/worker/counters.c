/* SPDX-License-Identifier: ISC */
/* counters.c - what each worker has done, counted in a row of shared memory the master reads.
 *
 * As with the limits (limits.c): one region per generation, mapped by the
 * master before it forks, a memfd with its size sealed so that it can be
 * handed on. A row belongs to a slot; the master folds an exited worker's
 * row into its service's totals, which live in the master and survive
 * reloads, and zeroes it for the next worker of the slot. */
#include "config.h"

#include "worker/counters.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/log.h"

struct counters {
	int fd;
	unsigned nrows;
	size_t map_size;
	struct counter_row *rows;
};

/* Maps fd's nrows rows into c, which owns fd from then on: 0, or -1 (logged). */
static int map_rows(struct counters *c, int fd, unsigned nrows)
{
	size_t size = (size_t)(nrows ? nrows : 1) * sizeof(struct counter_row);

	c->rows = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (c->rows == MAP_FAILED) {
		log_errno(LOG_ERR, errno, "mmap %zu bytes for the workers' counters", size);
		return -1;
	}
	c->fd = fd;
	c->nrows = nrows;
	c->map_size = size;
	return 0;
}

struct counters *counters_new(unsigned nrows)
{
	struct counters *c = calloc(1, sizeof(*c));
	size_t size = (size_t)(nrows ? nrows : 1) * sizeof(struct counter_row);
	int fd;

	if (!c) {
		log_error("out of memory for the workers' counters");
		return NULL;
	}
	fd = memfd_create("preforkd-counters", MFD_CLOEXEC | MFD_ALLOW_SEALING);
	if (fd < 0 || ftruncate(fd, (off_t)size) < 0 ||
	    fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL) < 0) {
		log_errno(LOG_ERR, errno, "memfd of %zu bytes for the workers' counters", size);
		if (fd >= 0)
			close(fd);
		free(c);
		return NULL;
	}
	if (map_rows(c, fd, nrows) < 0) {
		close(fd);
		free(c);
		return NULL;
	}
	return c;
}

struct counters *counters_adopt(int fd, unsigned nrows)
{
	struct counters *c = calloc(1, sizeof(*c));
	size_t size = (size_t)(nrows ? nrows : 1) * sizeof(struct counter_row);
	struct stat st;

	if (!c || fstat(fd, &st) < 0 || (size_t)st.st_size != size) {
		log_error("handover: the counters' memfd (fd %d) is not of %u rows", fd, nrows);
		free(c);
		return NULL;
	}
	if (map_rows(c, fd, nrows) < 0) {
		free(c);
		return NULL;
	}
	return c;
}

int counters_fd(const struct counters *c)
{
	return c ? c->fd : -1;
}

void counters_free(struct counters *c)
{
	if (!c)
		return;
	munmap(c->rows, c->map_size);
	close(c->fd);
	free(c);
}

struct counter_row *counters_row(struct counters *c, unsigned i)
{
	return c && i < c->nrows ? &c->rows[i] : NULL;
}

void counters_fold(struct counter_row *r, uint64_t totals[COUNTERS])
{
	for (int k = 0; r && k < COUNTERS; k++) {
		if (!counter_is_gauge((enum counter)k))
			totals[k] += atomic_load_explicit(&r->v[k], memory_order_relaxed);
		atomic_store_explicit(&r->v[k], 0, memory_order_relaxed);
	}
}
