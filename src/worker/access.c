/* SPDX-License-Identifier: ISC */
/* access.c - allow/deny by address range for IP clients, by user and group for unix clients.
 *
 * Ranges: the longest matching prefix decides, a tie goes to deny, and a
 * client no range matches is let in only when the service has no allow list.
 * So "deny everything, allow one network" and "allow everything, deny one
 * network" both read as written, and so do exceptions inside either. */
#include "config.h"

#include "worker/access.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>

#include "conf/conf.h"
#include "handlers/handler.h"
#include "common/log.h"

#define PEER_GROUPS_MAX 256

static const uint8_t v4_mapped_prefix[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };

static bool prefix_matches(const uint8_t *a, const uint8_t *b, unsigned bits)
{
	unsigned bytes = bits / 8, rest = bits % 8;

	if (memcmp(a, b, bytes) != 0)
		return false;
	return rest == 0 || ((a[bytes] ^ b[bytes]) & (0xff << (8 - rest))) == 0;
}

int access_parse_cidr(const char *text, struct cidr *out, char *err, size_t errlen)
{
	char host[INET6_ADDRSTRLEN + 1];
	const char *slash = strchr(text, '/');
	size_t hostlen = slash ? (size_t)(slash - text) : strlen(text);
	struct in_addr a4;
	long prefix;
	char *end;

	memset(out, 0, sizeof(*out));
	if (hostlen == 0 || hostlen >= sizeof(host)) {
		snprintf(err, errlen, "\"%s\" is not an address range like 10.0.0.0/8 or "
			 "2001:db8::/32", text);
		return -1;
	}
	memcpy(host, text, hostlen);
	host[hostlen] = '\0';
	if (inet_pton(AF_INET, host, &a4) == 1) {
		out->v4 = true;
		memcpy(out->addr, v4_mapped_prefix, sizeof(v4_mapped_prefix));
		memcpy(out->addr + 12, &a4, 4);
	} else if (inet_pton(AF_INET6, host, out->addr) != 1) {
		snprintf(err, errlen, "\"%s\" is not an IPv4 or IPv6 address", host);
		return -1;
	}
	prefix = out->v4 ? 32 : 128;
	if (slash) {
		long max = prefix;

		errno = 0;
		prefix = strtol(slash + 1, &end, 10);
		if (errno || end == slash + 1 || *end || prefix < 0 || prefix > max ||
		    (slash[1] == '0' && slash[2] != '\0') || slash[1] == '+' || slash[1] == '-') {
			snprintf(err, errlen, "\"%s\": the prefix length must be 0 to %ld", text, max);
			return -1;
		}
	}
	if (!out->v4 && prefix >= 96 && memcmp(out->addr, v4_mapped_prefix, 12) == 0) {
		/* An IPv4 client of a dual-stack socket is matched as IPv4. */
		inet_ntop(AF_INET, out->addr + 12, host, sizeof(host));
		snprintf(err, errlen, "\"%s\" is an IPv4-mapped IPv6 range, which no client "
			 "matches (IPv4 clients are matched as IPv4); write it as %s/%ld", text, host,
			 prefix - 96);
		return -1;
	}
	out->prefix = (unsigned)prefix + (out->v4 ? 96 : 0);
	for (unsigned bit = out->prefix; bit < 128; bit++)
		if (out->addr[bit / 8] & (0x80 >> (bit % 8))) {
			snprintf(err, errlen, "\"%s\" has bits set past its /%ld prefix "
				 "(a network address is needed)", text, prefix);
			return -1;
		}
	return 0;
}

bool access_needs_credentials(const struct service *svc)
{
	return svc->nallow_users || svc->nallow_groups || svc->max_per_source ||
	       svc->handler->wants_peer_credentials;
}

void access_identify_peer(int cred_fd, const struct sockaddr *sa, socklen_t len, struct peer *p)
{
	memset(p, 0, sizeof(*p));
	p->family = sa->sa_family;
	if (sa->sa_family == AF_INET && len >= sizeof(struct sockaddr_in)) {
		memcpy(p->addr, v4_mapped_prefix, sizeof(v4_mapped_prefix));
		memcpy(p->addr + 12, &((const struct sockaddr_in *)sa)->sin_addr, 4);
		p->port = ntohs(((const struct sockaddr_in *)sa)->sin_port);
	} else if (sa->sa_family == AF_INET6 && len >= sizeof(struct sockaddr_in6)) {
		memcpy(p->addr, &((const struct sockaddr_in6 *)sa)->sin6_addr, 16);
		p->port = ntohs(((const struct sockaddr_in6 *)sa)->sin6_port);
		p->scope_id = ((const struct sockaddr_in6 *)sa)->sin6_scope_id;
		/* An IPv4 client of a dual-stack socket is an IPv4 client. */
		if (memcmp(p->addr, v4_mapped_prefix, sizeof(v4_mapped_prefix)) == 0)
			p->family = AF_INET;
	} else if (sa->sa_family == AF_UNIX) {
		struct ucred cred;
		socklen_t clen = sizeof(cred);

		/* An unbound unix client comes back with an empty address. */
		p->family = AF_UNIX;
		if (cred_fd >= 0 && getsockopt(cred_fd, SOL_SOCKET, SO_PEERCRED, &cred, &clen) == 0) {
			p->has_cred = true;
			p->pid = cred.pid;
			p->uid = cred.uid;
			p->gid = cred.gid;
		}
	}
}

socklen_t access_peer_sockaddr(const struct peer *p, struct sockaddr_storage *ss)
{
	memset(ss, 0, sizeof(*ss));
	if (p->family == AF_INET) {
		struct sockaddr_in *sin = (struct sockaddr_in *)ss;

		sin->sin_family = AF_INET;
		sin->sin_port = htons(p->port);
		memcpy(&sin->sin_addr, p->addr + 12, 4);
		return sizeof(*sin);
	}
	if (p->family == AF_INET6) {
		struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)ss;

		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = htons(p->port);
		sin6->sin6_scope_id = p->scope_id;
		memcpy(&sin6->sin6_addr, p->addr, 16);
		return sizeof(*sin6);
	}
	return 0;
}

/* Longest matching prefix in list, or -1. */
static int longest_match(const struct cidr *list, size_t n, const struct peer *p)
{
	int best = -1;

	for (size_t i = 0; i < n; i++)
		if (list[i].v4 == (p->family == AF_INET) && (int)list[i].prefix > best &&
		    prefix_matches(list[i].addr, p->addr, list[i].prefix))
			best = (int)list[i].prefix;
	return best;
}

bool access_in_ranges(const struct cidr *list, size_t n, const struct peer *p)
{
	return p->family != AF_UNIX && longest_match(list, n, p) >= 0;
}

static bool address_allowed(const struct service *svc, const struct peer *p)
{
	int allow = longest_match(svc->allow, svc->nallow, p);
	int deny = longest_match(svc->deny, svc->ndeny, p);

	if (deny >= 0 && deny >= allow)
		return false;
	return allow >= 0 || svc->nallow == 0;
}

static bool gid_listed(const struct service *svc, gid_t gid)
{
	for (size_t i = 0; i < svc->nallow_groups; i++)
		if (svc->allow_groups[i] == gid)
			return true;
	return false;
}

/* The peer's primary group, then its supplementary groups (SO_PEERGROUPS, Linux 4.13). */
static bool peer_in_allowed_group(const struct service *svc, const struct peer *p, int fd)
{
	gid_t groups[PEER_GROUPS_MAX];
	socklen_t len = sizeof(groups);

	if (gid_listed(svc, p->gid))
		return true;
	if (getsockopt(fd, SOL_SOCKET, SO_PEERGROUPS, groups, &len) < 0) {
		if (errno != ERANGE)
			log_errno(LOG_WARNING, errno, "getsockopt(SO_PEERGROUPS) of pid %ld",
				  (long)p->pid);
		return false;	/* more groups than we look at: the primary one decided */
	}
	for (size_t i = 0; i < len / sizeof(groups[0]); i++)
		if (gid_listed(svc, groups[i]))
			return true;
	return false;
}

static bool user_allowed(const struct service *svc, const struct peer *p, int fd)
{
	if (svc->nallow_users == 0 && svc->nallow_groups == 0)
		return true;
	if (!p->has_cred)
		return false;
	for (size_t i = 0; i < svc->nallow_users; i++)
		if (svc->allow_users[i] == p->uid)
			return true;
	return svc->nallow_groups > 0 && peer_in_allowed_group(svc, p, fd);
}

bool access_has_rules(const struct service *svc)
{
	return svc->nallow || svc->ndeny || svc->nallow_users || svc->nallow_groups;
}

bool access_allows(const struct service *svc, const struct peer *p, int fd)
{
	if (p->family == AF_UNIX)
		return user_allowed(svc, p, fd);
	return address_allowed(svc, p);
}
