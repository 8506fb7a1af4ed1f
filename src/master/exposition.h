/* SPDX-License-Identifier: ISC */
/* exposition.h - the master's metrics in the Prometheus text format 0.0.4, or OpenMetrics 1.0. */
#ifndef PREFORKD_EXPOSITION_H
#define PREFORKD_EXPOSITION_H

#include <stdbool.h>
#include <stddef.h>

struct master;

/* Malloc'd, *len its length; NULL when out of memory. openmetrics: the
 * OpenMetrics 1.0 form (counter families without _total, "# EOF"). */
char *exposition_text(struct master *m, bool openmetrics, size_t *len);

#endif
