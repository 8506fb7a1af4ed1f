/* SPDX-License-Identifier: ISC */
/* fuzz_conf.c - libFuzzer target: a config file of any bytes through conf_load (libconfuse, our checks and build). */
#include "config.h"

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/mman.h>
#include <syslog.h>
#include <unistd.h>

#include "common/log.h"
#include "conf/conf.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static int fd = -1;
	char path[64], err[CONF_ERR_MAX];
	struct config *conf;

	if (fd < 0) {
		log_set_level(LOG_EMERG);	/* warnings about a config are not findings */
		fd = memfd_create("fuzz-conf", MFD_CLOEXEC);
		if (fd < 0)
			return 0;
	}
	if (ftruncate(fd, 0) < 0 || pwrite(fd, data, size, 0) != (ssize_t)size)
		return 0;
	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	conf = conf_load(path, err, sizeof(err));
	conf_free(conf);
	return 0;
}
