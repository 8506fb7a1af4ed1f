/* SPDX-License-Identifier: ISC */
/* pidfile.c - creates, locks and removes the pidfile. */
#include "config.h"

#include "master/pidfile.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

#include "common/log.h"

int pidfile_acquire(const char *path)
{
	char buf[32];
	int fd, len;

	fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY, 0644);
	if (fd < 0) {
		log_errno(LOG_ERR, errno, "open pidfile %s", path);
		return -1;
	}
	if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
		int err = errno;
		ssize_t n = read(fd, buf, sizeof(buf) - 1);

		buf[n > 0 ? n : 0] = '\0';
		buf[strcspn(buf, "\n")] = '\0';
		if (err == EWOULDBLOCK)
			log_error("pidfile %s is locked by another preforkd (pid %s); "
				  "refusing to start a second instance", path, buf[0] ? buf : "unknown");
		else
			log_errno(LOG_ERR, err, "flock pidfile %s", path);
		close(fd);
		return -1;
	}
	len = snprintf(buf, sizeof(buf), "%ld\n", (long)getpid());
	if (ftruncate(fd, 0) < 0 || pwrite(fd, buf, (size_t)len, 0) != len) {
		log_errno(LOG_ERR, errno, "write pidfile %s", path);
		close(fd);
		return -1;
	}
	return fd;
}

void pidfile_release(const char *path, int fd)
{
	if (fd < 0)
		return;
	/* Unlink while still holding the lock, so no one can lock the old inode. */
	if (unlink(path) < 0)
		log_errno(LOG_WARNING, errno, "unlink pidfile %s", path);
	close(fd);
}
