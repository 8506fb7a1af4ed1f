/* SPDX-License-Identifier: ISC */
/* benchaddr.c - the only targets the benchmark tools accept: loopback and unix paths. */
#define _GNU_SOURCE
#include "benchaddr.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>

static int parse_port(const char *s, uint16_t *port)
{
	char *end;
	long v = strtol(s, &end, 10);

	if (end == s || *end || v < 1 || v > 65535)
		return -1;
	*port = htons((uint16_t)v);
	return 0;
}

int bench_parse_address(const char *s, struct sockaddr_storage *ss, socklen_t *len)
{
	char host[64];
	const char *end;

	memset(ss, 0, sizeof(*ss));
	if (strncmp(s, "unix:/", 6) == 0) {
		struct sockaddr_un *sun = (struct sockaddr_un *)ss;

		if (strlen(s + 5) >= sizeof(sun->sun_path))
			return -1;
		sun->sun_family = AF_UNIX;
		memcpy(sun->sun_path, s + 5, strlen(s + 5));
		*len = sizeof(*sun);
		return 0;
	}
	if (s[0] == '[') {
		struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)ss;

		end = strchr(s, ']');
		if (!end || end[1] != ':' || (size_t)(end - s - 1) >= sizeof(host))
			return -1;
		memcpy(host, s + 1, (size_t)(end - s - 1));
		host[end - s - 1] = '\0';
		if (inet_pton(AF_INET6, host, &sin6->sin6_addr) != 1 ||
		    !IN6_IS_ADDR_LOOPBACK(&sin6->sin6_addr))
			return -1;
		sin6->sin6_family = AF_INET6;
		*len = sizeof(*sin6);
		return parse_port(end + 2, &sin6->sin6_port);
	}
	struct sockaddr_in *sin = (struct sockaddr_in *)ss;

	end = strrchr(s, ':');
	if (!end || (size_t)(end - s) >= sizeof(host))
		return -1;
	memcpy(host, s, (size_t)(end - s));
	host[end - s] = '\0';
	if (inet_pton(AF_INET, host, &sin->sin_addr) != 1 ||
	    (ntohl(sin->sin_addr.s_addr) >> 24) != 127)
		return -1;
	sin->sin_family = AF_INET;
	*len = sizeof(*sin);
	return parse_port(end + 1, &sin->sin_port);
}
