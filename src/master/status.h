/* SPDX-License-Identifier: ISC */
/* status.h - what the master is doing, as one JSON object: the control socket's "status". */
#ifndef PREFORKD_STATUS_H
#define PREFORKD_STATUS_H

#include <stddef.h>

struct master;

/* Malloc'd, ending in "\n"; NULL when out of memory. */
char *status_json(struct master *m, size_t *len);

#endif
