/* SPDX-License-Identifier: ISC */
/* access.h - who may connect to a service: the peer of a connection, address ranges, local users. */
#ifndef PREFORKD_ACCESS_H
#define PREFORKD_ACCESS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>

struct service;

/* An IPv4 or IPv6 range. IPv4 is kept as ::ffff:a.b.c.d with the prefix
 * counted from bit 0 of that form, so one comparison serves both families. */
struct cidr {
	bool v4;
	unsigned prefix;	/* 0..128 */
	uint8_t addr[16];
};

/* Who is on the other end of an accepted connection. */
struct peer {
	int family;		/* AF_INET (also IPv4 on a dual-stack socket), AF_INET6, AF_UNIX */
	uint8_t addr[16];	/* IP peers: IPv4 as ::ffff:a.b.c.d */
	uint16_t port;		/* IP peers, host order */
	bool has_cred;		/* unix peers: SO_PEERCRED worked */
	uint32_t scope_id;	/* IPv6 link-local peers */
	pid_t pid;
	uid_t uid;
	gid_t gid;
};

/* Parses "10.0.0.0/8", "2001:db8::/32" or a bare address (one host).
 * Host bits set past the prefix are an error: "10.1.2.3/8" is a typo. */
int access_parse_cidr(const char *text, struct cidr *out, char *err, size_t errlen);

/* Fills p from the address accept4() returned, and a unix client's
 * credentials from cred_fd, the accepted socket; cred_fd -1 when nobody
 * needs them, or for a datagram, whose credentials come with it. */
void access_identify_peer(int cred_fd, const struct sockaddr *sa, socklen_t len, struct peer *p);
/* An IP peer as its socket address again (for its text, or a helper's
 * environment); its length, 0 for a unix peer, whose name is not kept. */
socklen_t access_peer_sockaddr(const struct peer *p, struct sockaddr_storage *ss);
/* The service looks at unix clients' credentials: allow-users, allow-groups,
 * max-per-source (counted per user), or a handler that shows them. */
bool access_needs_credentials(const struct service *svc);
/* The service has an allow or deny rule at all: else everyone is let in. */
bool access_has_rules(const struct service *svc);

/* The service's allow/deny ranges (IP peers) or allowed users and groups
 * (unix peers) let p in. fd is the connection, for the peer's groups. */
bool access_allows(const struct service *svc, const struct peer *p, int fd);

/* p is an IP peer within one of list[0..n). */
bool access_in_ranges(const struct cidr *list, size_t n, const struct peer *p);

#endif
