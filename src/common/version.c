/* SPDX-License-Identifier: ISC */
/* version.c - the version this binary reports. */
#include "config.h"

#include "common/version.h"

const char *preforkd_version = PACKAGE_VERSION;
