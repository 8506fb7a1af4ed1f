/* SPDX-License-Identifier: ISC */
/* listenqueue.c - how many clients wait in a listener's accept queue, and its limit: TCP and Unix alike.
 *
 * TCP says it for a listening socket through TCP_INFO (tcpi_unacked is the
 * queue's length, tcpi_sacked its limit). A Unix stream socket says it
 * only through sock_diag: a NETLINK_SOCK_DIAG request for exactly that
 * socket, by inode, with UDIAG_SHOW_RQLEN (udiag_rqueue, udiag_wqueue),
 * which needs no privilege. php-fpm and uWSGI report 0 for Unix sockets. */
#include "config.h"

#include "master/listenqueue.h"

#include <errno.h>
#include <linux/inet_diag.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <linux/sock_diag.h>
#include <linux/unix_diag.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/address.h"

static int tcp_queue(int fd, struct listen_queue *q)
{
	struct tcp_info ti;
	socklen_t len = sizeof(ti);

	if (getsockopt(fd, IPPROTO_TCP, TCP_INFO, &ti, &len) < 0)
		return -1;
	q->length = ti.tcpi_unacked;
	q->limit = ti.tcpi_sacked;
	return 0;
}

static int unix_queue(int fd, struct listen_queue *q)
{
	struct {
		struct nlmsghdr nh;
		struct unix_diag_req req;
	} request = {
		.nh = { .nlmsg_len = sizeof(request), .nlmsg_type = SOCK_DIAG_BY_FAMILY,
			.nlmsg_flags = NLM_F_REQUEST },
		.req = { .sdiag_family = AF_UNIX, .udiag_states = 1u << 10 /* TCP_LISTEN */,
			 .udiag_show = UDIAG_SHOW_RQLEN,
			 .udiag_cookie = { INET_DIAG_NOCOOKIE, INET_DIAG_NOCOOKIE } },
	};
	struct sockaddr_nl kernel = { .nl_family = AF_NETLINK };
	long reply[2048 / sizeof(long)];
	struct stat st;
	ssize_t n;
	int nl, rc = -1;

	if (fstat(fd, &st) < 0)
		return -1;
	request.req.udiag_ino = (unsigned)st.st_ino;
	nl = socket(AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC, NETLINK_SOCK_DIAG);
	if (nl < 0)
		return -1;
	if (sendto(nl, &request, sizeof(request), 0, (struct sockaddr *)&kernel, sizeof(kernel)) < 0)
		goto out;
	/* The kernel answers at once, before sendto returns: this never waits. */
	n = recv(nl, reply, sizeof(reply), MSG_DONTWAIT);
	for (struct nlmsghdr *h = (struct nlmsghdr *)reply; n > 0 && NLMSG_OK(h, (size_t)n);
	     h = NLMSG_NEXT(h, n)) {
		struct unix_diag_msg *m = NLMSG_DATA(h);
		struct rtattr *a;
		int alen;

		if (h->nlmsg_type == NLMSG_ERROR || h->nlmsg_type != SOCK_DIAG_BY_FAMILY)
			break;
		alen = (int)(h->nlmsg_len - NLMSG_LENGTH(sizeof(*m)));
		for (a = (struct rtattr *)(m + 1); RTA_OK(a, alen); a = RTA_NEXT(a, alen)) {
			struct unix_diag_rqlen rq;

			if (a->rta_type != UNIX_DIAG_RQLEN || RTA_PAYLOAD(a) < (int)sizeof(rq))
				continue;
			memcpy(&rq, RTA_DATA(a), sizeof(rq));
			q->length = rq.udiag_rqueue;
			q->limit = rq.udiag_wqueue;
			rc = 0;
		}
		break;
	}
out:
	close(nl);
	return rc;
}

int listen_queue_read(int fd, const struct address *addr, struct listen_queue *q)
{
	*q = (struct listen_queue){ 0 };
	if (addr->socktype != SOCK_STREAM)
		return -1;	/* datagram sockets queue bytes, not clients */
	return addr->family == AF_UNIX ? unix_queue(fd, q) : tcp_queue(fd, q);
}
