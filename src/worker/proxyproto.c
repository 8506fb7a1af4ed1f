/* SPDX-License-Identifier: ISC */
/* proxyproto.c - the PROXY protocol's header, versions 1 and 2: read, checked byte by byte, and written.
 *
 * Version 1 is one line of at most 107 bytes ("PROXY TCP4 1.2.3.4 5.6.7.8
 * 1234 80\r\n"), version 2 a 12-byte signature, a version and command, a
 * family, a length and the addresses (then TLVs, which are skipped). What
 * comes in is what any peer in proxy-protocol-from sent: every field is
 * checked, a line without its CRLF within 107 bytes or a version 2 header
 * longer than we take is refused, and nothing is read past the header. An
 * address of no IP family (v1 UNKNOWN; v2 LOCAL, UNSPEC or unix) names
 * nobody: the connection's own peer stays the client. */
#include "config.h"

#include "worker/proxyproto.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/un.h>

static const unsigned char v2_signature[12] = {
	0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A,
};

#define V2_HEAD 16
#define V2_TCP4 0x11
#define V2_TCP6 0x21
#define V2_UNIX_STREAM 0x31
#define V2_UNIX_ADDRESSES 216

static enum proxyproto_result bad(struct proxyproto *out, const char *why)
{
	out->why = why;
	return PROXYPROTO_BAD;
}

/* A port in decimal: 1 to 5 digits, no leading zero, at most 65535. */
static bool port_of(const char *s, size_t n, uint16_t *port)
{
	unsigned long v = 0;

	if (n == 0 || n > 5 || (s[0] == '0' && n > 1))
		return false;
	for (size_t i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return false;
		v = v * 10 + (unsigned long)(s[i] - '0');
	}
	if (v > 65535)
		return false;
	*port = (uint16_t)v;
	return true;
}

/* An IP address of family in s[0..n): into ss, with port. */
static bool ip_of(int family, const char *s, size_t n, uint16_t port, struct sockaddr_storage *ss,
		  socklen_t *len)
{
	char text[INET6_ADDRSTRLEN];

	if (n == 0 || n >= sizeof(text))
		return false;
	memcpy(text, s, n);
	text[n] = '\0';
	memset(ss, 0, sizeof(*ss));
	if (family == AF_INET) {
		struct sockaddr_in *sin = (struct sockaddr_in *)ss;

		sin->sin_family = AF_INET;
		sin->sin_port = htons(port);
		*len = sizeof(*sin);
		return inet_pton(AF_INET, text, &sin->sin_addr) == 1;
	}
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)ss;

	sin6->sin6_family = AF_INET6;
	sin6->sin6_port = htons(port);
	*len = sizeof(*sin6);
	return inet_pton(AF_INET6, text, &sin6->sin6_addr) == 1;
}

static enum proxyproto_result parse_v1(const unsigned char *buf, size_t len, struct proxyproto *out)
{
	static const char prefix[] = "PROXY ";
	const char *line = (const char *)buf, *f[6], *end;
	size_t flen[6], nf = 0, n;
	uint16_t sport, dport;
	int family;

	n = len < sizeof(prefix) - 1 ? len : sizeof(prefix) - 1;
	if (memcmp(buf, prefix, n) != 0)
		return bad(out, "not a PROXY protocol header");
	end = memchr(line, '\n', len < PROXYPROTO_V1_MAX ? len : PROXYPROTO_V1_MAX);
	if (!end)
		return len >= PROXYPROTO_V1_MAX ? bad(out, "a version 1 line longer than 107 bytes") :
						    PROXYPROTO_MORE;
	if (end == line || end[-1] != '\r')
		return bad(out, "a version 1 line not ended by CRLF");
	out->version = 1;
	out->len = (size_t)(end - line) + 1;
	for (const char *p = line; p < end - 1;) {
		const char *sp = memchr(p, ' ', (size_t)(end - 1 - p));
		size_t l = sp ? (size_t)(sp - p) : (size_t)(end - 1 - p);

		if (nf == 6)
			return bad(out, "a version 1 line with more than 6 fields");
		f[nf] = p;
		flen[nf++] = l;
		p += l + (sp != NULL);
		if (sp && p == end - 1)
			return bad(out, "a version 1 line ending in a space");
	}
	if (nf >= 2 && flen[1] == 7 && memcmp(f[1], "UNKNOWN", 7) == 0) {
		out->local = true;	/* the rest of the line is to be ignored */
		return PROXYPROTO_OK;
	}
	if (nf != 6)
		return bad(out, "a version 1 line without its 6 fields");
	if (flen[1] == 4 && memcmp(f[1], "TCP4", 4) == 0)
		family = AF_INET;
	else if (flen[1] == 4 && memcmp(f[1], "TCP6", 4) == 0)
		family = AF_INET6;
	else
		return bad(out, "a version 1 protocol other than TCP4, TCP6, UNKNOWN");
	if (!port_of(f[4], flen[4], &sport) || !port_of(f[5], flen[5], &dport))
		return bad(out, "a version 1 port that is not one");
	if (!ip_of(family, f[2], flen[2], sport, &out->src, &out->srclen) ||
	    !ip_of(family, f[3], flen[3], dport, &out->dst, &out->dstlen))
		return bad(out, "a version 1 address that is not one of its family");
	return PROXYPROTO_OK;
}

static void v2_ip(int family, const unsigned char *addr, const unsigned char *port,
		  struct sockaddr_storage *ss, socklen_t *len)
{
	memset(ss, 0, sizeof(*ss));
	if (family == AF_INET) {
		struct sockaddr_in *sin = (struct sockaddr_in *)ss;

		sin->sin_family = AF_INET;
		memcpy(&sin->sin_addr, addr, 4);
		memcpy(&sin->sin_port, port, 2);
		*len = sizeof(*sin);
		return;
	}
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)ss;

	sin6->sin6_family = AF_INET6;
	memcpy(&sin6->sin6_addr, addr, 16);
	memcpy(&sin6->sin6_port, port, 2);
	*len = sizeof(*sin6);
}

static enum proxyproto_result parse_v2(const unsigned char *buf, size_t len, struct proxyproto *out)
{
	size_t n = len < sizeof(v2_signature) ? len : sizeof(v2_signature), body;
	const unsigned char *a = buf + V2_HEAD;

	if (memcmp(buf, v2_signature, n) != 0)
		return bad(out, "not a PROXY protocol header");
	if (len < V2_HEAD)
		return PROXYPROTO_MORE;
	if (buf[12] >> 4 != 2)
		return bad(out, "a version 2 signature with another version");
	if ((buf[12] & 0xF) > 1)
		return bad(out, "a version 2 command other than LOCAL and PROXY");
	body = (size_t)buf[14] << 8 | buf[15];
	if (V2_HEAD + body > PROXYPROTO_V2_MAX)
		return bad(out, "a version 2 header longer than 1024 bytes");
	if (len < V2_HEAD + body)
		return PROXYPROTO_MORE;
	out->version = 2;
	out->len = V2_HEAD + body;
	if ((buf[12] & 0xF) == 0 || buf[13] == 0x00) {
		out->local = true;	/* LOCAL (a health check), or UNSPEC */
		return PROXYPROTO_OK;
	}
	switch (buf[13]) {
	case V2_TCP4:
		if (body < 12)
			return bad(out, "a version 2 TCP over IPv4 header too short for its addresses");
		v2_ip(AF_INET, a, a + 8, &out->src, &out->srclen);
		v2_ip(AF_INET, a + 4, a + 10, &out->dst, &out->dstlen);
		return PROXYPROTO_OK;
	case V2_TCP6:
		if (body < 36)
			return bad(out, "a version 2 TCP over IPv6 header too short for its addresses");
		v2_ip(AF_INET6, a, a + 32, &out->src, &out->srclen);
		v2_ip(AF_INET6, a + 16, a + 34, &out->dst, &out->dstlen);
		return PROXYPROTO_OK;
	case V2_UNIX_STREAM:
		if (body < V2_UNIX_ADDRESSES)
			return bad(out, "a version 2 unix header too short for its addresses");
		out->local = true;	/* a unix path names no client to us */
		return PROXYPROTO_OK;
	default:
		return bad(out, "a version 2 family that is not a stream (TCP or unix)");
	}
}

enum proxyproto_result proxyproto_parse(const unsigned char *buf, size_t len, struct proxyproto *out)
{
	memset(out, 0, sizeof(*out));
	if (len == 0)
		return PROXYPROTO_MORE;
	if (buf[0] == 'P')
		return parse_v1(buf, len, out);
	if (buf[0] == v2_signature[0])
		return parse_v2(buf, len, out);
	return bad(out, "not a PROXY protocol header");
}

/* Both of one IP family, as a header can say them. */
static int ip_family(const struct sockaddr *src, const struct sockaddr *dst)
{
	if (src->sa_family == dst->sa_family &&
	    (src->sa_family == AF_INET || src->sa_family == AF_INET6))
		return src->sa_family;
	return AF_UNSPEC;
}

static size_t build_v1(const struct sockaddr *src, const struct sockaddr *dst, unsigned char *buf,
		       size_t cap)
{
	char s[INET6_ADDRSTRLEN], d[INET6_ADDRSTRLEN];
	int family = ip_family(src, dst), n;
	unsigned sport, dport;

	if (family == AF_INET) {
		const struct sockaddr_in *a = (const void *)src, *b = (const void *)dst;

		inet_ntop(AF_INET, &a->sin_addr, s, sizeof(s));
		inet_ntop(AF_INET, &b->sin_addr, d, sizeof(d));
		sport = ntohs(a->sin_port);
		dport = ntohs(b->sin_port);
	} else if (family == AF_INET6) {
		const struct sockaddr_in6 *a = (const void *)src, *b = (const void *)dst;

		inet_ntop(AF_INET6, &a->sin6_addr, s, sizeof(s));
		inet_ntop(AF_INET6, &b->sin6_addr, d, sizeof(d));
		sport = ntohs(a->sin6_port);
		dport = ntohs(b->sin6_port);
	}
	if (family == AF_UNSPEC)
		n = snprintf((char *)buf, cap, "PROXY UNKNOWN\r\n");
	else
		n = snprintf((char *)buf, cap, "PROXY %s %s %s %u %u\r\n",
			     family == AF_INET ? "TCP4" : "TCP6", s, d, sport, dport);
	return n > 0 && (size_t)n < cap ? (size_t)n : 0;
}

static size_t build_v2(const struct sockaddr *src, socklen_t srclen, const struct sockaddr *dst,
		       socklen_t dstlen, unsigned char *buf, size_t cap)
{
	int family = ip_family(src, dst);
	size_t body = family == AF_INET ? 12 : family == AF_INET6 ? 36 :
		      src->sa_family == AF_UNIX ? V2_UNIX_ADDRESSES : 0;
	unsigned char *a = buf + V2_HEAD;

	if (cap < V2_HEAD + body)
		return 0;
	memcpy(buf, v2_signature, sizeof(v2_signature));
	buf[12] = 0x21;		/* version 2, PROXY */
	buf[14] = (unsigned char)(body >> 8);
	buf[15] = (unsigned char)body;
	memset(a, 0, body);
	if (family == AF_INET) {
		const struct sockaddr_in *s = (const void *)src, *d = (const void *)dst;

		buf[13] = V2_TCP4;
		memcpy(a, &s->sin_addr, 4);
		memcpy(a + 4, &d->sin_addr, 4);
		memcpy(a + 8, &s->sin_port, 2);
		memcpy(a + 10, &d->sin_port, 2);
	} else if (family == AF_INET6) {
		const struct sockaddr_in6 *s = (const void *)src, *d = (const void *)dst;

		buf[13] = V2_TCP6;
		memcpy(a, &s->sin6_addr, 16);
		memcpy(a + 16, &d->sin6_addr, 16);
		memcpy(a + 32, &s->sin6_port, 2);
		memcpy(a + 34, &d->sin6_port, 2);
	} else if (body) {
		size_t off = offsetof(struct sockaddr_un, sun_path);

		buf[13] = V2_UNIX_STREAM;
		if (srclen > off)
			memcpy(a, ((const struct sockaddr_un *)src)->sun_path,
			       srclen - off < 108 ? srclen - off : 108);
		if (dst->sa_family == AF_UNIX && dstlen > off)
			memcpy(a + 108, ((const struct sockaddr_un *)dst)->sun_path,
			       dstlen - off < 108 ? dstlen - off : 108);
	} else {
		buf[13] = 0x00;	/* UNSPEC */
	}
	return V2_HEAD + body;
}

size_t proxyproto_build(int version, const struct sockaddr *src, socklen_t srclen,
			const struct sockaddr *dst, socklen_t dstlen, unsigned char *buf, size_t cap)
{
	return version == 1 ? build_v1(src, dst, buf, cap) :
			      build_v2(src, srclen, dst, dstlen, buf, cap);
}
