/* SPDX-License-Identifier: ISC */
/* check_address.c - listen address syntax: good forms, canonical text, malformed input. */
#include "config.h"

#include <check.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>

#include "common/array.h"
#include "common/address.h"
#include "common/addrindex.h"
#include "testlib.h"

static void assert_parses(const char *spec, int family, const char *text)
{
	struct address a;
	char err[256] = "";

	ck_assert_msg(address_parse(spec, &a, err, sizeof(err)) == 0, "%s: %s", spec, err);
	ck_assert_int_eq(a.family, family);
	ck_assert_int_eq(a.socktype, SOCK_STREAM);
	ck_assert_str_eq(a.text, text);
}

static void assert_rejected(const char *spec, const char *reason)
{
	struct address a;
	char err[256] = "";

	ck_assert_msg(address_parse(spec, &a, err, sizeof(err)) < 0, "%s was accepted", spec);
	ck_assert_msg(strstr(err, reason) != NULL, "%s: error \"%s\" lacks \"%s\"", spec, err, reason);
}

START_TEST(ipv4)
{
	struct address a;
	char err[128];

	assert_parses("127.0.0.1:7007", AF_INET, "127.0.0.1:7007");
	assert_parses("tcp:10.1.2.3:1", AF_INET, "10.1.2.3:1");
	assert_parses("0.0.0.0:65535", AF_INET, "0.0.0.0:65535");
	ck_assert_int_eq(address_parse("127.0.0.1:7007", &a, err, sizeof(err)), 0);
	ck_assert_uint_eq(address_port(&a), 7007);
	ck_assert_ptr_null(address_unix_path(&a));
}
END_TEST

START_TEST(ipv6)
{
	assert_parses("[::1]:7007", AF_INET6, "[::1]:7007");
	assert_parses("[2001:DB8::0:1]:80", AF_INET6, "[2001:db8::1]:80");
	assert_parses("[::]:80", AF_INET6, "[::]:80");
}
END_TEST

START_TEST(wildcard)
{
	struct address a;
	char err[128];

	ck_assert_int_eq(address_parse("*:8080", &a, err, sizeof(err)), 0);
	ck_assert(a.wildcard);
	ck_assert_int_eq(a.family, AF_INET6);
	ck_assert_str_eq(a.text, "*:8080");
	ck_assert_uint_eq(address_port(&a), 8080);
}
END_TEST

START_TEST(unix_paths)
{
	struct address a;
	char err[128];

	assert_parses("unix:/run/preforkd/echo.sock", AF_UNIX, "unix:/run/preforkd/echo.sock");
	ck_assert_int_eq(address_parse("unix:/tmp/x.sock", &a, err, sizeof(err)), 0);
	ck_assert_str_eq(address_unix_path(&a), "/tmp/x.sock");
	/* Abstract sockets have no file to clean up. */
	ck_assert_int_eq(address_parse("unix:@preforkd-test", &a, err, sizeof(err)), 0);
	ck_assert_ptr_null(address_unix_path(&a));
	ck_assert_str_eq(a.text, "unix:@preforkd-test");
	ck_assert_int_eq(a.len, offsetof(struct sockaddr_un, sun_path) + strlen("@preforkd-test"));
}
END_TEST

START_TEST(malformed)
{
	char longpath[200] = "unix:/";

	memset(longpath + 6, 'x', 150);
	assert_rejected("127.0.0.1", "expected HOST:PORT");
	assert_rejected("127.0.0.1:", "port must be");
	assert_rejected("127.0.0.1:0", "port must be");
	assert_rejected("127.0.0.1:65536", "port must be");
	assert_rejected("127.0.0.1:07007", "port must be");
	assert_rejected("127.0.0.1:+80", "port must be");
	assert_rejected("127.0.0.1:80x", "port must be");
	assert_rejected("256.0.0.1:80", "not a numeric IPv4");
	assert_rejected("1.2.3:80", "not a numeric IPv4");
	assert_rejected("localhost:80", "host names are not resolved");
	assert_rejected("::1:80", "write IPv6 addresses as [IPV6]:PORT");
	assert_rejected("[::1]80", "expected [IPV6]:PORT");
	assert_rejected("[::1", "expected [IPV6]:PORT");
	assert_rejected("[]:80", "bad IPv6");
	assert_rejected("[127.0.0.1]:80", "not a numeric IPv6");
	assert_rejected(":80", "expected HOST:PORT");
	assert_rejected("", "expected HOST:PORT");
	assert_rejected("unix:", "empty unix socket path");
	assert_rejected("unix:@", "empty unix socket path");
	assert_rejected("unix:relative.sock", "not absolute");
	assert_rejected(longpath, "longer than 107 bytes");
}
END_TEST

/* One socket file written two ways must be one address, or the duplicate
 * check passes it and the second bind finds preforkd itself "listening". */
START_TEST(unix_paths_are_normalised)
{
	static const struct { const char *spec, *text; } same[] = {
		{ "unix:/tmp/x//a.sock", "unix:/tmp/x/a.sock" },
		{ "unix:/tmp/x/./a.sock", "unix:/tmp/x/a.sock" },
		{ "unix://tmp/.//x///a.sock", "unix:/tmp/x/a.sock" },
		{ "unix:/tmp/x/a.sock", "unix:/tmp/x/a.sock" },
		{ "unix:/tmp/x/.a", "unix:/tmp/x/.a" },
		{ "unix:/tmp/x/..a", "unix:/tmp/x/..a" },
		{ "unixgram:/tmp//y", "unixgram:/tmp/y" },
	};
	struct address a, first;
	char err[256];

	ck_assert_int_eq(address_parse("unix:/tmp/x/a.sock", &first, err, sizeof(err)), 0);
	for (size_t i = 0; i < ARRAY_SIZE(same); i++) {
		ck_assert_msg(address_parse(same[i].spec, &a, err, sizeof(err)) == 0, "%s: %s",
			      same[i].spec, err);
		ck_assert_str_eq(a.text, same[i].text);
		if (strstr(same[i].text, "/a.sock")) {
			ck_assert(address_equal(&a, &first));
			ck_assert_str_eq(address_unix_path(&a), "/tmp/x/a.sock");
		}
	}
	assert_rejected("unix:/tmp/x/../a.sock", "has a '..' component; write the path without it");
	assert_rejected("unix:/tmp/x/..", "has a '..' component");
	assert_rejected("unix:/tmp/x/", "ends with '/': it names a directory");
	assert_rejected("unix:/tmp/x/.", "ends with '/'");
	assert_rejected("unix:/", "ends with '/'");
	assert_rejected("unixgram:/tmp/x//", "ends with '/'");
	/* Abstract names are bytes, not paths. */
	ck_assert_int_eq(address_parse("unix:@a//b/../c", &a, err, sizeof(err)), 0);
	ck_assert_str_eq(a.text, "unix:@a//b/../c");
}
END_TEST

/* Linux takes 107 bytes of abstract name (no terminating NUL) and 107 of a
 * path (plus its NUL). */
START_TEST(unix_name_lengths)
{
	char spec[200], want[256], err[256];
	struct address a;

	snprintf(spec, sizeof(spec), "unix:@%0107d", 7);
	ck_assert_msg(address_parse(spec, &a, err, sizeof(err)) == 0, "%s", err);
	ck_assert_int_eq(a.len, sizeof(struct sockaddr_un));
	ck_assert_str_eq(a.text, spec);
	snprintf(spec, sizeof(spec), "unix:@%0108d", 8);
	ck_assert_int_eq(address_parse(spec, &a, err, sizeof(err)), -1);
	snprintf(want, sizeof(want), "abstract unix socket name \"@%.59s...\" is longer than "
		 "107 bytes (108)", spec + 6);
	ck_assert_str_eq(err, want);

	snprintf(spec, sizeof(spec), "unix:/%0106d", 6);
	ck_assert_msg(address_parse(spec, &a, err, sizeof(err)) == 0, "%s", err);
	ck_assert_str_eq(address_unix_path(&a), spec + 5);
	snprintf(spec, sizeof(spec), "unix:/%0107d", 7);
	ck_assert_int_eq(address_parse(spec, &a, err, sizeof(err)), -1);
	snprintf(want, sizeof(want), "unix socket path \"%.60s...\" is longer than 107 bytes (108)",
		 spec + 5);
	ck_assert_str_eq(err, want);
	/* The limit is on the path as written to the socket, after normalising. */
	snprintf(spec, sizeof(spec), "unix:/%0104d//", 4);
	memcpy(spec + strlen(spec), "x", 2);
	ck_assert_msg(address_parse(spec, &a, err, sizeof(err)) == 0, "%s", err);
}
END_TEST

/* A listener of ours with IPV6_V6ONLY cannot bind ::ffff:a.b.c.d (EINVAL at start). */
START_TEST(ipv4_mapped_refused)
{
	assert_rejected("[::ffff:127.0.0.1]:80", "\"[::ffff:127.0.0.1]:80\" is an IPv4-mapped "
			"IPv6 address; write it as 127.0.0.1:80");
	assert_rejected("udp:[::ffff:10.1.2.3]:53", "write it as udp:10.1.2.3:53");
	assert_rejected("[::ffff:0.0.0.0]:80", "write it as 0.0.0.0:80");
	assert_parses("[::fffe:127.0.0.1]:80", AF_INET6, "[::fffe:7f00:1]:80");
}
END_TEST

START_TEST(overlaps)
{
	struct address a, b, c, d, u1, u2;
	char err[128];

	ck_assert_int_eq(address_parse("127.0.0.1:80", &a, err, sizeof(err)), 0);
	ck_assert_int_eq(address_parse("tcp:127.0.0.1:80", &b, err, sizeof(err)), 0);
	ck_assert_int_eq(address_parse("*:80", &c, err, sizeof(err)), 0);
	ck_assert_int_eq(address_parse("127.0.0.1:81", &d, err, sizeof(err)), 0);
	ck_assert_int_eq(address_parse("unix:/a", &u1, err, sizeof(err)), 0);
	ck_assert_int_eq(address_parse("unix:/b", &u2, err, sizeof(err)), 0);
	ck_assert(address_equal(&a, &b));
	ck_assert(address_overlaps(&a, &c));	/* the wildcard takes 127.0.0.1:80 too */
	ck_assert(address_overlaps(&c, &a));
	ck_assert(!address_overlaps(&a, &d));
	ck_assert(!address_overlaps(&c, &d));
	ck_assert(!address_overlaps(&u1, &u2));
	ck_assert(address_overlaps(&u1, &u1));

	struct address any4, any6, lo6, lo4_other;

	ck_assert_int_eq(address_parse("0.0.0.0:80", &any4, err, sizeof(err)), 0);
	ck_assert_int_eq(address_parse("[::]:80", &any6, err, sizeof(err)), 0);
	ck_assert_int_eq(address_parse("[::1]:80", &lo6, err, sizeof(err)), 0);
	ck_assert_int_eq(address_parse("10.0.0.1:81", &lo4_other, err, sizeof(err)), 0);
	ck_assert(address_overlaps(&any4, &a));		/* 0.0.0.0:80 vs 127.0.0.1:80 */
	ck_assert(address_overlaps(&a, &any4));
	ck_assert(address_overlaps(&any6, &lo6));	/* [::]:80 vs [::1]:80 */
	ck_assert(!address_overlaps(&any4, &lo6));	/* [::]:80 is IPv6-only */
	ck_assert(!address_overlaps(&any4, &any6));
	ck_assert(address_overlaps(&c, &any6));		/* *:80 is both */
	ck_assert(!address_overlaps(&any4, &lo4_other));
}
END_TEST

START_TEST(datagram_forms)
{
	static const struct { const char *spec; int family; const char *text; } ok[] = {
		{ "udp:127.0.0.1:53", AF_INET, "udp:127.0.0.1:53" },
		{ "udp:[::1]:53", AF_INET6, "udp:[::1]:53" },
		{ "udp:*:53", AF_INET6, "udp:*:53" },
		{ "unixgram:/run/x.sock", AF_UNIX, "unixgram:/run/x.sock" },
		{ "unixgram:@x", AF_UNIX, "unixgram:@x" },
	};
	struct address a, tcp, udp, ustream, ugram;
	char err[128];

	for (size_t i = 0; i < ARRAY_SIZE(ok); i++) {
		ck_assert_msg(address_parse(ok[i].spec, &a, err, sizeof(err)) == 0, "%s: %s",
			      ok[i].spec, err);
		ck_assert_int_eq(a.family, ok[i].family);
		ck_assert_int_eq(a.socktype, SOCK_DGRAM);
		ck_assert_str_eq(a.text, ok[i].text);
	}
	assert_rejected("udp:localhost:53", "not a numeric IPv4 address");
	assert_rejected("unixgram:relative", "is not absolute");
	assert_rejected("udp:127.0.0.1:0", "port must be");
	/* TCP and UDP on one port are two addresses; one unix path is one address. */
	ck_assert_int_eq(address_parse("*:53", &tcp, err, sizeof(err)), 0);
	ck_assert_int_eq(address_parse("udp:*:53", &udp, err, sizeof(err)), 0);
	ck_assert(!address_overlaps(&tcp, &udp));
	ck_assert_int_eq(address_parse("unix:/run/x", &ustream, err, sizeof(err)), 0);
	ck_assert_int_eq(address_parse("unixgram:/run/x", &ugram, err, sizeof(err)), 0);
	ck_assert(!address_equal(&ustream, &ugram));
	ck_assert(address_overlaps(&ustream, &ugram));
}
END_TEST

/* The index must answer exactly what comparing every pair would: the same
 * first equal and first overlapping address, on a pool small enough that
 * most addresses collide with something. */
START_TEST(index_matches_pairwise_rule)
{
	static const char *const schemes[] = { "", "tcp:", "udp:" };
	static const char *const hosts[] = {
		"0.0.0.0", "127.0.0.1", "127.0.0.2", "10.0.0.1", "[::]", "[::1]", "[2001:db8::1]",
		"[fe80::1%1]", "[fe80::1%2]", "*",
	};
	static const char *const unixes[] = {
		"unix:/a", "unix:/b", "unix://a", "unix:/x/./a", "unixgram:/a", "unixgram:/b",
		"unix:@a", "unix:@b", "unixgram:@a", "unix:@/a",
	};
	enum { N = 3000 };
	struct address *all = calloc(N, sizeof(*all));
	struct addr_index ix = { 0 };
	unsigned seed = 12345;
	char spec[96], err[256];
	size_t hits = 0;

	ck_assert_ptr_nonnull(all);
	for (size_t k = 0; k < N; k++) {
		unsigned r = rand_r(&seed);

		if (r % 4 == 0)
			snprintf(spec, sizeof(spec), "%s", unixes[(r / 4) % 10]);
		else
			snprintf(spec, sizeof(spec), "%s%s:%u", schemes[(r / 4) % 3],
				 hosts[(r / 12) % 10], 1 + (r / 120) % 4);
		ck_assert_msg(address_parse(spec, &all[k], err, sizeof(err)) == 0, "%s: %s", spec, err);
		for (int equal = 0; equal < 2; equal++) {
			size_t want = N, got = N;
			bool found;

			for (size_t j = 0; j < k && want == N; j++) {
				bool match = equal ? address_equal(&all[j], &all[k]) :
						     address_overlaps(&all[j], &all[k]);

				ck_assert(match == (equal ? address_equal(&all[k], &all[j]) :
							    address_overlaps(&all[k], &all[j])));
				if (match)
					want = j;
			}
			found = equal ? addr_index_find_equal(&ix, &all[k], &got) :
					addr_index_find_overlap(&ix, &all[k], &got);
			ck_assert_msg(found == (want < N) && (!found || got == want),
				      "%s (%s): index says %s %zu, pairs say %zu", all[k].text,
				      equal ? "equal" : "overlap", found ? "found" : "none", got, want);
			hits += found;
		}
		ck_assert_int_eq(addr_index_add(&ix, &all[k], k), 0);
	}
	ck_assert_uint_gt(hits, N);	/* collisions were the common case */
	addr_index_clear(&ix);
	free(all);
}
END_TEST

START_TEST(format_peers)
{
	struct sockaddr_in6 mapped = { .sin6_family = AF_INET6, .sin6_port = htons(5) };
	char buf[ADDRESS_TEXT_MAX];

	mapped.sin6_addr.s6_addr[10] = 0xff;
	mapped.sin6_addr.s6_addr[11] = 0xff;
	mapped.sin6_addr.s6_addr[12] = 127;
	mapped.sin6_addr.s6_addr[15] = 1;
	address_format((struct sockaddr *)&mapped, sizeof(mapped), buf, sizeof(buf));
	ck_assert_str_eq(buf, "127.0.0.1:5");	/* IPv4 client of a dual-stack socket */
	struct sockaddr_un unnamed = { .sun_family = AF_UNIX };

	address_format((struct sockaddr *)&unnamed, sizeof(sa_family_t), buf, sizeof(buf));
	ck_assert_str_eq(buf, "unix:(unnamed)");
}
END_TEST

int main(void)
{
	Suite *s = suite_create("address");
	TCase *tc = tcase_create("parse");

	tcase_add_test(tc, ipv4);
	tcase_add_test(tc, ipv6);
	tcase_add_test(tc, wildcard);
	tcase_add_test(tc, unix_paths);
	tcase_add_test(tc, malformed);
	tcase_add_test(tc, overlaps);
	tcase_add_test(tc, unix_paths_are_normalised);
	tcase_add_test(tc, unix_name_lengths);
	tcase_add_test(tc, ipv4_mapped_refused);
	tcase_add_test(tc, datagram_forms);
	tcase_add_test(tc, format_peers);
	tcase_add_test(tc, index_matches_pairwise_rule);
	suite_add_tcase(s, tc);
	return tl_run_suite(s);
}
