/* SPDX-License-Identifier: ISC */
/* fuzz_proxy.c - libFuzzer target: a PROXY protocol header of any bytes, read; one read whole is written again and read back the same. */
#include "config.h"

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <netinet/in.h>

#include "worker/proxyproto.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The address of a sockaddr_in or _in6, and its port. */
static int same_address(const struct sockaddr_storage *a, const struct sockaddr_storage *b)
{
	if (a->ss_family != b->ss_family)
		return 0;
	if (a->ss_family == AF_INET)
		return memcmp(&((const struct sockaddr_in *)a)->sin_addr,
			      &((const struct sockaddr_in *)b)->sin_addr, 4) == 0 &&
		       ((const struct sockaddr_in *)a)->sin_port ==
			       ((const struct sockaddr_in *)b)->sin_port;
	return memcmp(&((const struct sockaddr_in6 *)a)->sin6_addr,
		      &((const struct sockaddr_in6 *)b)->sin6_addr, 16) == 0 &&
	       ((const struct sockaddr_in6 *)a)->sin6_port ==
		       ((const struct sockaddr_in6 *)b)->sin6_port;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	unsigned char *copy = malloc(size ? size : 1), again[PROXYPROTO_V2_MAX];
	struct proxyproto h, h2;
	enum proxyproto_result r;

	if (!copy)
		return 0;
	memcpy(copy, data, size);	/* exactly size bytes: ASan sees a read past them */
	r = proxyproto_parse(copy, size, &h);
	if (r == PROXYPROTO_BAD && !h.why)
		abort();
	if (r == PROXYPROTO_MORE && size >= PROXYPROTO_V2_MAX)
		abort();	/* nothing waits for more than it may take */
	if (r == PROXYPROTO_OK) {
		if (h.len == 0 || h.len > size || (h.version == 1 && h.len > PROXYPROTO_V1_MAX) ||
		    h.len > PROXYPROTO_V2_MAX)
			abort();
		if (!h.local) {
			for (int v = 1; v <= 2; v++) {
				size_t n = proxyproto_build(v, (struct sockaddr *)&h.src, h.srclen,
							    (struct sockaddr *)&h.dst, h.dstlen,
							    again, sizeof(again));

				if (!n || proxyproto_parse(again, n, &h2) != PROXYPROTO_OK ||
				    h2.len != n || !same_address(&h.src, &h2.src) ||
				    !same_address(&h.dst, &h2.dst))
					abort();
			}
		}
	}
	free(copy);
	return 0;
}
