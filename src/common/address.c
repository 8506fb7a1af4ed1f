/* SPDX-License-Identifier: ISC */
/* address.c - parses and formats the listen addresses of the configuration. */
#include "config.h"

#include "common/address.h"

#include <arpa/inet.h>
#include <net/if.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/un.h>

#include "common/array.h"

/* Scheme prefixes. */
static const struct address_scheme {
	const char *prefix;
	int family;		/* AF_UNIX, or 0 for "an IP address follows" */
	int socktype;
} schemes[] = {
	{ "unixgram:", AF_UNIX, SOCK_DGRAM },
	{ "unix:", AF_UNIX, SOCK_STREAM },
	{ "udp:", 0, SOCK_DGRAM },
	{ "tcp:", 0, SOCK_STREAM },
	{ "", 0, SOCK_STREAM },
};

/* Datagram addresses say so in every message: "udp:1.2.3.4:53", "unixgram:/p". */
static void mark_datagram(struct address *a)
{
	char plain[ADDRESS_TEXT_MAX];

	if (a->socktype != SOCK_DGRAM)
		return;
	snprintf(plain, sizeof(plain), "%s", a->text);
	if (a->family == AF_UNIX)
		snprintf(a->text, sizeof(a->text), "unixgram:%.110s", plain + strlen("unix:"));
	else
		snprintf(a->text, sizeof(a->text), "udp:%.120s", plain);
}

__attribute__((format(printf, 3, 4)))
static int fail(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
	return -1;
}

/* Strict decimal port: 1..65535, digits only, no sign, no leading zero. */
static int parse_port(const char *s, uint16_t *port)
{
	unsigned long v = 0;

	if (*s == '\0' || *s == '0' || strlen(s) > 5)
		return -1;
	for (const char *p = s; *p; p++) {
		if (*p < '0' || *p > '9')
			return -1;
		v = v * 10 + (unsigned long)(*p - '0');
	}
	if (v > 65535)
		return -1;
	*port = (uint16_t)v;
	return 0;
}

#define UNIX_NAME_MAX (sizeof(((struct sockaddr_un *)0)->sun_path) - 1)	/* 107 */

/* "/a//b" and "/a/./b" name the file "/a/b", so they are written so: the
 * duplicate check then sees one address, not two that collide at bind. A
 * ".." is refused rather than removed, since "/a/link/../b" need not be
 * "/a/b"; a path that ends in "/" or "/." names a directory. */
static int unix_path_normalise(const char *path, char *out, size_t outlen, char *err,
			       size_t errlen)
{
	size_t o = 0, len = strlen(path);

	if (path[len - 1] == '/' || (len >= 2 && strcmp(path + len - 2, "/.") == 0))
		return fail(err, errlen, "unix socket path \"%.80s\" ends with '/': it names "
			    "a directory, not a socket file", path);
	for (const char *p = path; *p; ) {
		size_t n;

		p += strspn(p, "/");
		n = strcspn(p, "/");
		if (n == 2 && strncmp(p, "..", 2) == 0)
			return fail(err, errlen, "unix socket path \"%.80s\" has a '..' component; "
				    "write the path without it", path);
		if (n == 0 || (n == 1 && *p == '.')) {
			p += n;
			continue;
		}
		if (o + 1 + n >= outlen)
			return fail(err, errlen, "unix socket path \"%.60s...\" is longer than "
				    "%zu bytes (%zu)", path, UNIX_NAME_MAX, len);
		out[o++] = '/';
		memcpy(out + o, p, n);
		o += n;
		p += n;
	}
	out[o] = '\0';
	return 0;
}

static int parse_unix(const char *path, struct address *out, char *err, size_t errlen)
{
	struct sockaddr_un *sun = (struct sockaddr_un *)&out->sa;
	char clean[UNIX_NAME_MAX + 1];
	size_t len = strlen(path);
	bool abstract = path[0] == '@';

	if (len == 0 || (abstract && len == 1))
		return fail(err, errlen, "%s", "empty unix socket path");
	if (!abstract && path[0] != '/')
		return fail(err, errlen, "unix socket path \"%s\" is not absolute", path);
	/* An abstract name has no terminating NUL: all 108 bytes of sun_path
	 * are the leading NUL and 107 of the name. */
	if (abstract && len - 1 > UNIX_NAME_MAX)
		return fail(err, errlen, "abstract unix socket name \"%.60s...\" is longer than "
			    "%zu bytes (%zu)", path, UNIX_NAME_MAX, len - 1);
	if (!abstract) {
		if (unix_path_normalise(path, clean, sizeof(clean), err, errlen) < 0)
			return -1;
		path = clean;
		len = strlen(clean);
	}
	sun->sun_family = AF_UNIX;
	memcpy(sun->sun_path, path, len);
	if (abstract) {
		/* Linux abstract namespace: leading NUL, length counts exactly. */
		sun->sun_path[0] = '\0';
		out->len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len);
	} else {
		out->len = (socklen_t)sizeof(*sun);
	}
	out->family = AF_UNIX;
	snprintf(out->text, sizeof(out->text), "unix:%s", path);
	return 0;
}

/* A socket of ours with IPV6_V6ONLY cannot bind ::ffff:a.b.c.d (EINVAL at
 * start), and the IPv4 form says the same thing. */
static int refuse_v4_mapped(const char *spec, const struct address *a, char *err, size_t errlen)
{
	const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)&a->sa;
	char v4[INET_ADDRSTRLEN];

	if (!IN6_IS_ADDR_V4MAPPED(&sin6->sin6_addr))
		return 0;
	inet_ntop(AF_INET, &sin6->sin6_addr.s6_addr[12], v4, sizeof(v4));
	return fail(err, errlen, "\"%s\" is an IPv4-mapped IPv6 address; write it as %s%s:%u",
		    spec, a->socktype == SOCK_DGRAM ? "udp:" : "", v4, ntohs(sin6->sin6_port));
}

static int parse_ip(const char *spec, struct address *out, char *err, size_t errlen)
{
	char host[INET6_ADDRSTRLEN + IF_NAMESIZE + 2];
	const char *colon, *port_s;
	uint16_t port;
	size_t hlen;

	if (spec[0] == '[') {
		const char *end = strchr(spec, ']');

		if (!end || end[1] != ':')
			return fail(err, errlen, "\"%s\": expected [IPV6]:PORT", spec);
		hlen = (size_t)(end - spec - 1);
		if (hlen == 0 || hlen >= sizeof(host))
			return fail(err, errlen, "\"%s\": bad IPv6 address", spec);
		memcpy(host, spec + 1, hlen);
		port_s = end + 2;
	} else {
		colon = strrchr(spec, ':');
		if (!colon)
			return fail(err, errlen, "\"%s\": expected HOST:PORT, [IPV6]:PORT, *:PORT or unix:/path", spec);
		hlen = (size_t)(colon - spec);
		if (hlen == 0 || hlen >= sizeof(host) || memchr(spec, ':', hlen))
			return fail(err, errlen, "\"%s\": expected HOST:PORT (write IPv6 addresses as [IPV6]:PORT)", spec);
		memcpy(host, spec, hlen);
		port_s = colon + 1;
	}
	host[hlen] = '\0';
	if (parse_port(port_s, &port) < 0)
		return fail(err, errlen, "\"%s\": port must be a decimal number from 1 to 65535", spec);

	if (spec[0] != '[' && strcmp(host, "*") == 0) {
		/* One dual-stack socket, as systemd binds ListenStream=PORT. */
		struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&out->sa;

		sin6->sin6_family = AF_INET6;
		sin6->sin6_addr = in6addr_any;
		sin6->sin6_port = htons(port);
		out->family = AF_INET6;
		out->len = sizeof(*sin6);
		out->wildcard = true;
		snprintf(out->text, sizeof(out->text), "*:%u", port);
		return 0;
	}

	if (spec[0] != '[') {
		/* inet_pton, not getaddrinfo: it refuses "1.2.3" and "0x7f.1". */
		struct sockaddr_in *sin = (struct sockaddr_in *)&out->sa;

		if (inet_pton(AF_INET, host, &sin->sin_addr) != 1)
			return fail(err, errlen, "\"%s\": not a numeric IPv4 address "
				    "(host names are not resolved)", spec);
		sin->sin_family = AF_INET;
		sin->sin_port = htons(port);
		out->family = AF_INET;
		out->len = sizeof(*sin);
	} else {
		/* getaddrinfo for the scope id of link-local addresses ("fe80::1%eth0"). */
		struct addrinfo hints = {
			.ai_flags = AI_NUMERICHOST | AI_NUMERICSERV,
			.ai_family = AF_INET6,
			.ai_socktype = out->socktype,
		}, *res;

		if (getaddrinfo(host, port_s, &hints, &res) != 0)
			return fail(err, errlen, "\"%s\": not a numeric IPv6 address", spec);
		memcpy(&out->sa, res->ai_addr, res->ai_addrlen);
		out->len = res->ai_addrlen;
		out->family = AF_INET6;
		freeaddrinfo(res);
		if (refuse_v4_mapped(spec, out, err, errlen) < 0)
			return -1;
	}
	address_format((struct sockaddr *)&out->sa, out->len, out->text, sizeof(out->text));
	return 0;
}

int address_parse(const char *spec, struct address *out, char *err, size_t errlen)
{
	memset(out, 0, sizeof(*out));
	for (size_t i = 0; i < ARRAY_SIZE(schemes); i++) {
		size_t plen = strlen(schemes[i].prefix);

		if (strncmp(spec, schemes[i].prefix, plen) != 0)
			continue;
		out->socktype = schemes[i].socktype;
		if ((schemes[i].family == AF_UNIX ? parse_unix(spec + plen, out, err, errlen) :
						    parse_ip(spec + plen, out, err, errlen)) < 0)
			return -1;
		mark_datagram(out);
		return 0;
	}
	return fail(err, errlen, "\"%s\": unknown address form", spec);
}

bool address_equal(const struct address *a, const struct address *b)
{
	return a->socktype == b->socktype && a->len == b->len && a->family == b->family &&
	       a->wildcard == b->wildcard && memcmp(&a->sa, &b->sa, a->len) == 0;
}

/* 0.0.0.0:P takes every IPv4 address on P, [::]:P every IPv6 one (we set
 * IPV6_V6ONLY on it), and *:P both. */
bool address_is_any(const struct address *a)
{
	if (a->family == AF_INET)
		return ((const struct sockaddr_in *)&a->sa)->sin_addr.s_addr == htonl(INADDR_ANY);
	if (a->family == AF_INET6)
		return IN6_IS_ADDR_UNSPECIFIED(&((const struct sockaddr_in6 *)&a->sa)->sin6_addr);
	return false;
}

bool address_overlaps(const struct address *a, const struct address *b)
{
	if (address_equal(a, b))
		return true;
	/* One file or abstract name holds one socket, of whatever type. */
	if (a->family == AF_UNIX && b->family == AF_UNIX)
		return a->len == b->len && memcmp(&a->sa, &b->sa, a->len) == 0;
	if (a->family == AF_UNIX || b->family == AF_UNIX || a->socktype != b->socktype ||
	    address_port(a) != address_port(b))
		return false;
	if (a->wildcard || b->wildcard)
		return true;
	return a->family == b->family && (address_is_any(a) || address_is_any(b));
}

uint16_t address_port(const struct address *a)
{
	if (a->family == AF_INET)
		return ntohs(((const struct sockaddr_in *)&a->sa)->sin_port);
	if (a->family == AF_INET6)
		return ntohs(((const struct sockaddr_in6 *)&a->sa)->sin6_port);
	return 0;
}

const char *address_unix_path(const struct address *a)
{
	const struct sockaddr_un *sun = (const struct sockaddr_un *)&a->sa;

	if (a->family != AF_UNIX || sun->sun_path[0] == '\0')
		return NULL;
	return sun->sun_path;
}

int address_of_socket(int fd, struct address *out)
{
	socklen_t optlen = sizeof(out->socktype);

	memset(out, 0, sizeof(*out));
	out->len = sizeof(out->sa);
	if (getsockname(fd, (struct sockaddr *)&out->sa, &out->len) < 0 ||
	    getsockopt(fd, SOL_SOCKET, SO_TYPE, &out->socktype, &optlen) < 0)
		return -1;
	out->family = out->sa.ss_family;
	address_format((struct sockaddr *)&out->sa, out->len, out->text, sizeof(out->text));
	mark_datagram(out);
	return 0;
}

void address_format(const struct sockaddr *sa, socklen_t len, char *buf, size_t buflen)
{
	char host[INET6_ADDRSTRLEN + IF_NAMESIZE + 2];

	switch (sa->sa_family) {
	case AF_INET: {
		const struct sockaddr_in *sin = (const struct sockaddr_in *)sa;

		inet_ntop(AF_INET, &sin->sin_addr, host, sizeof(host));
		snprintf(buf, buflen, "%s:%u", host, ntohs(sin->sin_port));
		return;
	}
	case AF_INET6: {
		const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)sa;

		/* An IPv4 client of a dual-stack socket: show it as IPv4. */
		if (IN6_IS_ADDR_V4MAPPED(&sin6->sin6_addr)) {
			inet_ntop(AF_INET, &sin6->sin6_addr.s6_addr[12], host, sizeof(host));
			snprintf(buf, buflen, "%s:%u", host, ntohs(sin6->sin6_port));
			return;
		}
		if (getnameinfo(sa, len, host, sizeof(host), NULL, 0, NI_NUMERICHOST) != 0)
			inet_ntop(AF_INET6, &sin6->sin6_addr, host, sizeof(host));
		snprintf(buf, buflen, "[%s]:%u", host, ntohs(sin6->sin6_port));
		return;
	}
	case AF_UNIX: {
		const struct sockaddr_un *sun = (const struct sockaddr_un *)sa;
		size_t plen = len > offsetof(struct sockaddr_un, sun_path) ?
			      len - offsetof(struct sockaddr_un, sun_path) : 0;

		if (plen == 0 || (sun->sun_path[0] == '\0' && plen == 1))
			snprintf(buf, buflen, "unix:(unnamed)");
		else if (sun->sun_path[0] == '\0')
			snprintf(buf, buflen, "unix:@%.*s", (int)plen - 1, sun->sun_path + 1);
		else
			snprintf(buf, buflen, "unix:%.*s", (int)strnlen(sun->sun_path, plen), sun->sun_path);
		return;
	}
	default:
		snprintf(buf, buflen, "(family %d)", sa->sa_family);
	}
}
