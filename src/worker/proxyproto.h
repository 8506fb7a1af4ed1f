/* SPDX-License-Identifier: ISC */
/* proxyproto.h - the PROXY protocol's header (HAProxy's, versions 1 and 2): read from a load balancer, written to an upstream. */
#ifndef PREFORKD_PROXYPROTO_H
#define PREFORKD_PROXYPROTO_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>

#define PROXYPROTO_V1_MAX 107		/* the longest version 1 line, CRLF included */
#define PROXYPROTO_V2_MAX 1024		/* the most of a version 2 header we take */

enum proxyproto_result {
	PROXYPROTO_MORE,	/* a header so far: more bytes are needed */
	PROXYPROTO_OK,		/* one whole header */
	PROXYPROTO_BAD,		/* not one (why says what) */
};

struct proxyproto {
	int version;		/* 1 or 2 */
	bool local;		/* no address (v1 UNKNOWN, v2 LOCAL or UNSPEC): the peer is itself */
	struct sockaddr_storage src, dst;
	socklen_t srclen, dstlen;
	size_t len;		/* bytes of the header */
	const char *why;	/* PROXYPROTO_BAD: a static string */
};

/* Reads the header at the start of buf[0..len) (bytes a peer sent: any
 * length, any content). */
enum proxyproto_result proxyproto_parse(const unsigned char *buf, size_t len, struct proxyproto *out);
/* Writes the header of version 1 or 2 for a connection from src to dst
 * into buf: its length, 0 when cap is too small. An address that is not
 * IPv4 or IPv6 (unix) gives v1 "UNKNOWN" and v2 AF_UNIX (or UNSPEC). */
size_t proxyproto_build(int version, const struct sockaddr *src, socklen_t srclen,
			const struct sockaddr *dst, socklen_t dstlen, unsigned char *buf, size_t cap);

#endif
