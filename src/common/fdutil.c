/* SPDX-License-Identifier: ISC */
/* fdutil.c - descriptor flags, writing all of a buffer, and close_range()-based cleanup. */
#include "config.h"

#include "common/fdutil.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <linux/close_range.h>
#include <unistd.h>

int fd_set_nonblock_cloexec(int fd)
{
	int fl = fcntl(fd, F_GETFL);

	if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0)
		return -1;
	fl = fcntl(fd, F_GETFD);
	if (fl < 0 || fcntl(fd, F_SETFD, fl | FD_CLOEXEC) < 0)
		return -1;
	return 0;
}

static int cmp_int(const void *a, const void *b)
{
	int x = *(const int *)a, y = *(const int *)b;

	return (x > y) - (x < y);
}

static void close_span(unsigned lo, unsigned hi)
{
	if (lo > hi)
		return;
	if (close_range(lo, hi, 0) == 0)
		return;
	/* Kernels before 5.9: walk the span (bounded by the fd limit). */
	long max = sysconf(_SC_OPEN_MAX);

	for (long fd = lo; fd <= (long)hi && fd < max; fd++)
		close((int)fd);
}

void fd_close_all_except(const int *keep, size_t n)
{
	int *sorted = malloc((n ? n : 1) * sizeof(int));
	unsigned next = 3;

	if (!sorted)
		abort();	/* a fresh worker with no memory cannot run anyway */
	for (size_t i = 0; i < n; i++)
		sorted[i] = keep[i];
	qsort(sorted, n, sizeof(int), cmp_int);
	for (size_t i = 0; i < n; i++) {
		if (sorted[i] < (int)next)
			continue;
		close_span(next, (unsigned)sorted[i] - 1);
		next = (unsigned)sorted[i] + 1;
	}
	close_span(next, ~0U);
	free(sorted);
}

void fd_cloexec_all(void)
{
	long max;

	if (close_range(3, ~0U, CLOSE_RANGE_CLOEXEC) == 0)
		return;
	/* Kernels before 5.11: each open one (bounded by the fd limit). */
	max = sysconf(_SC_OPEN_MAX);
	for (long fd = 3; fd < max; fd++) {
		int fl = fcntl((int)fd, F_GETFD);

		if (fl >= 0 && !(fl & FD_CLOEXEC))
			fcntl((int)fd, F_SETFD, fl | FD_CLOEXEC);
	}
}

void fd_close(int *fd)
{
	if (*fd >= 0) {
		close(*fd);
		*fd = -1;
	}
}

int fd_write_all(int fd, const void *buf, size_t len)
{
	const char *p = buf;

	while (len > 0) {
		ssize_t n = write(fd, p, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -1;
		if (n == 0) {
			errno = EIO;
			return -1;
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}
