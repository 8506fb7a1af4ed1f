/* SPDX-License-Identifier: ISC */
/* benchaddr.h - the only targets the benchmark tools accept: loopback and unix paths. */
#ifndef PREFORKD_BENCHADDR_H
#define PREFORKD_BENCHADDR_H

#include <sys/socket.h>

/* Parses 127.x.y.z:PORT, [::1]:PORT or unix:/path into ss; -1 for anything
 * else, so that no benchmark can send traffic off the machine. */
int bench_parse_address(const char *s, struct sockaddr_storage *ss, socklen_t *len);

#endif
