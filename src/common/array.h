/* SPDX-License-Identifier: ISC */
/* array.h - the number of elements of an array. */
#ifndef PREFORKD_ARRAY_H
#define PREFORKD_ARRAY_H

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

#endif
