/* SPDX-License-Identifier: ISC */
/* address.h - listen address syntax: parsing, canonical text, comparison. */
#ifndef PREFORKD_ADDRESS_H
#define PREFORKD_ADDRESS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#define ADDRESS_TEXT_MAX 128

struct address {
	int family;		/* AF_INET, AF_INET6 or AF_UNIX */
	int socktype;		/* SOCK_STREAM, or SOCK_DGRAM for udp: and unixgram: */
	bool wildcard;		/* "*:PORT": every local address, IPv4 and IPv6 */
	socklen_t len;
	struct sockaddr_storage sa;
	char text[ADDRESS_TEXT_MAX];	/* canonical form, used in every message */
};

/* Parses HOST:PORT, [IPV6]:PORT, *:PORT, unix:/path or unix:@abstract, each
 * with an optional tcp: before the IP forms; udp: and unixgram: before the
 * same forms make datagram addresses.
 * On error returns -1 with a reason in err. */
int address_parse(const char *spec, struct address *out, char *err, size_t errlen);
bool address_equal(const struct address *a, const struct address *b);
/* True when binding both would collide: equal, or same port with a wildcard. */
bool address_overlaps(const struct address *a, const struct address *b);
/* 0.0.0.0:P or [::]:P (and so *:P). */
bool address_is_any(const struct address *a);
uint16_t address_port(const struct address *a);
/* Unix socket file path, or NULL for IP and abstract addresses. */
const char *address_unix_path(const struct address *a);
/* The local address and socket type of a socket we did not create. */
int address_of_socket(int fd, struct address *out);
/* Text form of a peer or local socket address ("1.2.3.4:5", "[::1]:5", "unix:/p"). */
void address_format(const struct sockaddr *sa, socklen_t len, char *buf, size_t buflen);

#endif
