/* SPDX-License-Identifier: ISC */
/* fdutil.h - descriptor flags and the close-everything-else step a new worker takes. */
#ifndef PREFORKD_FDUTIL_H
#define PREFORKD_FDUTIL_H

#include <stddef.h>

/* Sets O_NONBLOCK and FD_CLOEXEC on fd (descriptors we did not create ourselves). */
int fd_set_nonblock_cloexec(int fd);
/* Closes every descriptor >= 3 that is not in keep[0..n). */
void fd_close_all_except(const int *keep, size_t n);
/* Every descriptor >= 3 close-on-exec: what we were started with stays
 * ours (socket activation takes its own) and is never handed on, not even
 * to the next image of an upgrade. */
void fd_cloexec_all(void);
void fd_close(int *fd);
/* Writes all of buf, retrying EINTR and short writes; 0, or -1 with errno. */
int fd_write_all(int fd, const void *buf, size_t len);

#endif
