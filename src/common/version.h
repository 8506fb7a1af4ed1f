/* SPDX-License-Identifier: ISC */
/* version.h - the version this binary reports (-V, status, metrics, the upgrade's log lines). */
#ifndef PREFORKD_VERSION_H
#define PREFORKD_VERSION_H

/* PACKAGE_VERSION, unless main() says otherwise (a test build tagged apart). */
extern const char *preforkd_version;

#endif
